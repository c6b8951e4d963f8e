"""Reading event and item tables from files into pandas DataFrames.

Formats: Parquet, CSV/TSV with any common delimiter (detected) with or without a header,
MovieLens ``u.data`` / ``ratings.csv`` / ``u.item``, and the legacy pickle (through the
restricted unpickler in :mod:`whatnext.data.safepickle`); text files may be compressed (gzip,
bzip2, xz, zstd: recognised by their first bytes, and every detection sees the decompressed
text). Id columns are read as the text in the file (``007`` stays ``007``), and numbers written
with a decimal comma are read as numbers. Column meaning is decided later, in
:mod:`whatnext.data`; this module only turns bytes into a table, with one-line errors. What the
reader decided on its own is listed in ``df.attrs["notes"]`` for ``inspect-data``.
"""

from __future__ import annotations

import bz2
import csv
import gzip
import lzma
import re
from pathlib import Path
from typing import Any, BinaryIO

import pandas as pd

from whatnext.config import DataConfig, shown
from whatnext.errors import DataError, file_kind

DELIMITERS = ",\t;| "
MOVIELENS_DATA_COLUMNS = ["user_id", "item_id", "rating", "timestamp"]
MOVIELENS_GENRES = [
    "unknown", "action", "adventure", "animation", "children", "comedy", "crime", "documentary", "drama",
    "fantasy", "film_noir", "horror", "musical", "mystery", "romance", "sci_fi", "thriller", "war", "western",
]
MOVIELENS_ITEM_COLUMNS = ["item_id", "title", "release_date", "video_release_date", "imdb_url", *MOVIELENS_GENRES]
#: MovieLens ratings.csv header -> the config key naming that column
_RATINGS_CSV = {"userId": "user_col", "movieId": "item_col"}
#: compression by magic bytes: (pandas' name, opener)
_COMPRESSION = ((b"\x1f\x8b", "gzip"), (b"BZh", "bz2"), (b"\xfd7zXZ\x00", "xz"), (b"\x28\xb5\x2f\xfd", "zstd"))
_COMPRESSED_SUFFIXES = (".gz", ".gzip", ".bz2", ".xz", ".zst", ".zstd")
#: a number written with a decimal comma (and optional thousands dots): 0,5  -1.234,75  12
_DECIMAL_COMMA = r"^\s*[+-]?(?:\d{1,3}(?:\.\d{3})+|\d+)(?:,\d+)?\s*$"


def compression(path: Path) -> str | None:
    """'gzip', 'bz2', 'xz' or 'zstd' when the file starts like one, else None."""
    try:
        with path.open("rb") as f:
            head = f.read(6)
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror})") from None
    return next((name for magic, name in _COMPRESSION if head.startswith(magic)), None)


def _open_raw(path: Path) -> BinaryIO:
    """The file's bytes, decompressed when it is compressed."""
    kind = compression(path)
    if kind == "gzip":
        return gzip.open(path, "rb")  # type: ignore[return-value]
    if kind == "bz2":
        return bz2.open(path, "rb")  # type: ignore[return-value]
    if kind == "xz":
        return lzma.open(path, "rb")  # type: ignore[return-value]
    if kind == "zstd":
        try:
            import zstandard
        except ImportError:
            raise DataError(f"{path}: is zstd-compressed and the zstandard package is missing; pip install zstandard") from None
        return zstandard.ZstdDecompressor().stream_reader(path.open("rb"), closefd=True)  # type: ignore[return-value]
    return path.open("rb")


def _head(path: Path, n: int) -> bytes:
    """Up to ``n`` decompressed bytes from the start of the file."""
    try:
        with _open_raw(path) as fh:
            out = b""
            while len(out) < n:  # decompressing readers may return less than asked
                chunk = fh.read(n - len(out))
                if not chunk:
                    break
                out += chunk
            return out
    except (OSError, EOFError, lzma.LZMAError, *_zstd_errors()) as e:
        raise DataError(f"{path}: cannot decompress ({shown(str(e)[:100])}); the file is damaged or not what its name says") from None


def _zstd_errors() -> tuple[type[Exception], ...]:
    try:
        import zstandard
    except ImportError:
        return ()
    return (zstandard.ZstdError,)


def base_name(path: Path) -> str:
    """The file name without a compression suffix, lower case: ``ratings.csv.gz`` -> ``ratings.csv``."""
    name = path.name.lower()
    for suffix in _COMPRESSED_SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def detect_format(path: Path, configured: str) -> str:
    """The reader for ``path``: the configured format, or one guessed from its name and first bytes."""
    if configured != "auto":
        return configured
    name = base_name(path)
    if name in ("u.data", "ratings.csv", "ratings.dat", "u.item"):
        return "movielens"
    suffix = Path(name).suffix
    if suffix in (".parquet", ".pq"):
        return "parquet"
    if suffix in (".pk", ".pkl", ".pickle"):
        return "pickle"
    head = _head(path, 8)
    if head.startswith(b"PAR1"):
        return "parquet"
    if head[:1] == b"\x80":
        return "pickle"
    return "csv"


def read_table(path: Path, cfg: DataConfig, *, items: bool = False) -> pd.DataFrame:
    """Read one table (events, or items with ``items=True``) as a DataFrame with named columns."""
    if not path.exists():
        raise DataError(f"{path}: file not found; check data.{'items_path' if items else 'path'} in the config")
    if path.is_dir():
        raise DataError(f"{path}: is a folder, expected a data file")
    kind = file_kind(path)  # a FIFO would block the reader, a device such as /dev/zero never ends
    if kind is not None:
        raise DataError(f"{path}: is {kind}, not a regular file; expected a data file")
    fmt = detect_format(path, "auto" if items else cfg.format)
    if fmt == "parquet":
        return _read_parquet(path)
    if fmt == "pickle":
        from whatnext.data.safepickle import load_dataframe

        return load_dataframe(path)
    if fmt == "movielens":
        return _read_movielens(path, cfg)
    return read_csv(path, cfg, items=items)


def id_columns(cfg: DataConfig, *, items: bool = False) -> list[str]:
    """The columns that hold ids (read as text, never as numbers)."""
    def names(key: str | list[str]) -> list[str]:
        return [key] if isinstance(key, str) else list(key)

    if items:
        return names(cfg.items_id_col or cfg.item_col)
    return [c for c in [cfg.user_col, *names(cfg.item_col)] if c]


def _read_parquet(path: Path) -> pd.DataFrame:
    try:
        df = pd.read_parquet(path)
        # Arrow-backed columns are decoded lazily: check them now (e.g. invalid UTF-8 in a damaged file),
        # so that a broken file is this one error rather than a crash on first use
        for arr in [df.index.array, *(df.iloc[:, j].array for j in range(df.shape[1]))]:
            pa_array = getattr(arr, "_pa_array", None)
            if pa_array is not None:
                pa_array.validate(full=True)
        return df
    except Exception as e:  # pyarrow raises several kinds for a broken file
        # pyarrow starts with "Could not open Parquet input source '<path>': ", which says nothing new
        detail = re.sub(r"^Could not open Parquet input source '.*?':\s*", "", str(e).strip())
        raise DataError(f"{path}: not a readable Parquet file ({type(e).__name__}: {shown(detail[:120])})") from None


def _read_movielens(path: Path, cfg: DataConfig) -> pd.DataFrame:
    name = base_name(path)
    ids = {c: str for c in ["user_id", "item_id", *id_columns(cfg)]}
    if name == "u.item":
        df = _csv(path, sep="|", header=None, names=MOVIELENS_ITEM_COLUMNS, encoding="latin-1", dtype={"item_id": str})
        return df.drop(columns=["release_date", "video_release_date", "imdb_url"])
    if name == "ratings.dat":  # ML-1M style: user::item::rating::timestamp
        return _csv(path, sep="::", header=None, names=MOVIELENS_DATA_COLUMNS, engine="python", dtype=ids)
    if name == "ratings.csv":
        df = _csv(path, sep=",", header=0, dtype={"userId": str, "movieId": str, **ids})
        # the header's own names work as written; the defaults (user_id, item_id) find userId and movieId too
        rename = {}
        for col, key in _RATINGS_CSV.items():
            wanted = getattr(cfg, key)
            if col in df.columns and isinstance(wanted, str) and wanted and wanted not in df.columns:
                rename[col] = wanted
        return df.rename(columns=rename)
    sep = cfg.delimiter or "\t"
    return _csv(path, sep=sep, header=None, names=cfg.columns or MOVIELENS_DATA_COLUMNS, dtype=ids)


def sniff_delimiter(path: Path, encoding: str, *, items: bool = False) -> str:
    """The delimiter of a text table, chosen among :data:`DELIMITERS` by csv.Sniffer.

    An item table may be a single column of ids: with no candidate on any line it is read as one column.
    """
    sample = _sample(path, encoding)
    lines = [ln for ln in sample.splitlines() if ln.strip()][:50]
    if not lines:
        raise DataError(f"{path}: the file is empty; expected {_EXPECTED[items]}")
    if items and not any(d in ln for ln in lines for d in DELIMITERS):
        return ","
    try:
        return csv.Sniffer().sniff("\n".join(lines), delimiters=DELIMITERS).delimiter
    except csv.Error:
        pass
    # one consistent count per line also identifies a delimiter the sniffer missed
    for d in DELIMITERS:
        counts = {ln.count(d) for ln in lines}
        if len(counts) == 1 and counts.pop() > 0:
            return d
    # only then '::' (MovieLens 1M/10M's ratings.dat under any name): an id holding '::' beside a real delimiter
    if len({ln.count("::") for ln in lines} - {0}) == 1 and all("::" in ln for ln in lines):
        return "::"
    raise DataError(
        f"{path}: cannot tell the delimiter (tried comma, tab, semicolon, pipe, space, ::); set data.delimiter in the config"
    )


_EXPECTED = {False: "events with user, item and time columns", True: "an item table with an id column"}


def _sample(path: Path, encoding: str) -> str:
    raw = _head(path, 65536)
    if b"\x00" in raw:
        raise DataError(f"{path}: looks like a binary file, expected CSV text (or set data.format)")
    try:
        return raw.decode(encoding, errors="strict")
    except UnicodeDecodeError as e:
        if len(raw) == 65536 and e.start > len(raw) - 4:  # a multi-byte character cut by the sample's end
            return raw[: e.start].decode(encoding)
        line = raw[: e.start].count(b"\n") + 1
        raise DataError(f"{path}:{line}: not {encoding} text (byte 0x{raw[e.start]:02x}); set data.encoding (e.g. latin-1)") from None
    except LookupError:
        raise DataError(f"data.encoding is {encoding!r}, not a known text encoding (e.g. utf-8, latin-1)") from None


def read_csv(path: Path, cfg: DataConfig, *, items: bool = False) -> pd.DataFrame:
    """Read a delimited text file: delimiter detected unless configured, header detected unless configured.

    Id columns are read as text; numbers with a decimal comma become numbers (``data.decimal``).
    """
    sep = cfg.delimiter or sniff_delimiter(path, cfg.encoding, items=items)
    lines = _sample(path, cfg.encoding).splitlines() if path.stat().st_size else []
    first = lines[0] if lines else ""
    fields = [f.strip().strip('"') for f in (first.split() if sep == " " else first.split(sep))]
    # data.header and data.columns describe the events file; an item table's header is always detected
    has_header = None if items else {"yes": True, "no": False}.get(cfg.header)
    if has_header is None:
        known = {*id_columns(cfg), *id_columns(cfg, items=True), cfg.time_col, cfg.order_col, "userId", "movieId"} - {""}
        if cfg.columns and not items:  # data.columns names the events file's columns only
            has_header = fields == cfg.columns
        elif known & set(fields):
            has_header = True
        else:
            # a column name is never a number or a date: one such field makes the first row data
            # (u1,s3,1700000000 or user_0001<TAB>2009-05-04T23:08:57Z...); text everywhere reads as names
            has_header = not any(_is_number(f) or _DATE_LIKE.match(f) for f in fields if f)
    if not has_header and (items or not cfg.columns):
        shown = ", ".join(f[:24] for f in fields[:8]) + (", ..." if len(fields) > 8 else "")
        if items:  # data.columns names the events file's columns; an item table brings its own header
            ids = id_columns(cfg, items=True)
            example = ",".join([*ids, "energy", "tempo"])
            raise DataError(
                f"{path}: the item table has no header row (its first row, {len(fields)} fields: {shown}); add one "
                f"naming its columns: {', '.join(ids)} for the ids, then each feature's name (e.g. {example})"
            )
        raise DataError(
            f"{path}: the file has no header row (its first row, {len(fields)} fields: {shown}); name its columns "
            f"with data.columns, in file order (e.g. columns = {_example_columns(fields)})"
        )
    names = (cfg.columns or None) if not items else None
    kw: dict[str, Any] = {"sep": r"\s+" if sep == " " else sep, "header": 0 if has_header else None, "names": names,
                          "dtype": {c: str for c in id_columns(cfg, items=items)}, "compression": compression(path)}
    if sep == " " or len(sep) > 1:
        kw["engine"] = "python"  # pandas's C parser takes one-character delimiters only
    if cfg.decimal == ",":
        kw.update(decimal=",", thousands=".")
    df = _csv(path, encoding=cfg.encoding, **kw)
    if df.shape[1] < (1 if items else 2):
        raise DataError(
            f"{path}: found {df.shape[1]} column with delimiter {sep!r}; expected user, item and time columns "
            f"(set data.delimiter)"
        )
    ids = [c for c in kw["dtype"] if c in df.columns]
    if ids and df[ids].isna().to_numpy().any():
        # pandas reads NA, null, None, nan... as missing; as ids they are names: only an empty cell is missing
        raw = _csv(path, encoding=cfg.encoding, **{**kw, "usecols": ids, "keep_default_na": False, "na_values": [""]})
        df[ids] = raw[ids].to_numpy()
    notes: list[str] = []
    if cfg.decimal == "" and sep != ",":
        df = _decimal_commas(df, set(kw["dtype"]), notes)
    elif cfg.decimal == ",":
        notes.append("numbers read with a decimal comma (data.decimal)")
    df.attrs["notes"] = notes
    return df


def _decimal_commas(df: pd.DataFrame, ids: set[str], notes: list[str]) -> pd.DataFrame:
    """Text columns whose every value is a number with a decimal comma (``0,5``) become numbers."""
    converted = []
    for c in df.columns:
        s = df[c]
        if str(c) in ids or pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s):
            continue
        values = s.dropna()
        if not len(values) or not pd.api.types.is_string_dtype(values):
            continue
        text = values.astype(str)
        if not text.str.contains(",", regex=False).any() or not text.str.match(_DECIMAL_COMMA).all():
            continue
        number = text.str.replace(".", "", regex=False).str.replace(",", ".", regex=False).str.strip()
        df[c] = pd.to_numeric(number).reindex(s.index)
        converted.append(str(c))
    if converted:
        notes.append(f"decimal comma detected in {', '.join(converted)} (read as numbers; set data.decimal to change)")
    return df


def _csv(path: Path, **kw: object) -> pd.DataFrame:
    kw.setdefault("compression", compression(path))
    try:
        return pd.read_csv(path, **kw)  # type: ignore[arg-type]
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: the file is empty; expected events with user, item and time columns") from None
    except pd.errors.ParserError as e:
        m = re.search(r"line (\d+)", str(e))
        where = f"{path}:{m.group(1)}" if m else str(path)
        raise DataError(f"{where}: malformed row ({shown((str(e).strip().splitlines() or ['?'])[-1][:120])}); check data.delimiter") from None
    except UnicodeDecodeError:
        raise DataError(f"{path}: not {kw.get('encoding', 'utf-8')} text; set data.encoding (e.g. latin-1)") from None
    except (EOFError, OSError, lzma.LZMAError, *_zstd_errors()) as e:  # a damaged compressed file
        raise DataError(f"{path}: cannot decompress ({shown(str(e)[:100])}); the file is damaged or not what its name says") from None
    except ValueError as e:
        raise DataError(f"{path}: cannot read as CSV ({shown(str(e)[:120])})") from None


def _example_columns(fields: list[str]) -> str:
    """A data.columns value for a headerless first row, as TOML. ``timestamp``: the first date-like field, else the
    last unix time (9 to 16 digits), else the third field; ``user_id`` and ``item_id``: the first two others; the
    rest ``colN`` by place."""
    dates = [i for i, f in enumerate(fields) if _DATE_LIKE.match(f)]
    unix = [i for i, f in enumerate(fields) if f.isdigit() and 9 <= len(f) <= 16]
    t = dates[0] if dates else unix[-1] if unix else 2 if len(fields) >= 3 else None  # ids come first, times last
    others = iter(["user_id", "item_id"])
    names = ["timestamp" if i == t else next(others, f"col{i + 1}") for i in range(len(fields))]
    return "[" + ", ".join(f'"{c}"' for c in names) + "]"


#: the start of a date as logs write them: 2009-05-04, 2009/05/04, 04.05.2009, 5/4/2009
_DATE_LIKE = re.compile(r"\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4}")


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
