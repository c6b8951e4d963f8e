"""Reading event and item tables from files into pandas DataFrames.

Formats: Parquet, CSV/TSV with any common delimiter (detected) with or without a header,
MovieLens ``u.data`` / ``ratings.csv`` / ``u.item``, and the legacy pickle (through the
restricted unpickler in :mod:`whatnext.data.safepickle`). Column meaning is decided later, in
:mod:`whatnext.data`; this module only turns bytes into a table, with one-line errors.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

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
_RATINGS_CSV = {"userId": "user_id", "movieId": "item_id"}


def detect_format(path: Path, configured: str) -> str:
    """The reader for ``path``: the configured format, or one guessed from its name and first bytes."""
    if configured != "auto":
        return configured
    name = path.name.lower()
    if name in ("u.data", "ratings.csv", "ratings.dat", "u.item"):
        return "movielens"
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        return "parquet"
    if suffix in (".pk", ".pkl", ".pickle"):
        return "pickle"
    try:
        with path.open("rb") as f:
            head = f.read(8)
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror})") from None
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
    return read_csv(path, cfg)


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
    name = path.name.lower()
    if name == "u.item":
        df = _csv(path, sep="|", header=None, names=MOVIELENS_ITEM_COLUMNS, encoding="latin-1")
        return df.drop(columns=["release_date", "video_release_date", "imdb_url"])
    if name == "ratings.dat":  # ML-1M style: user::item::rating::timestamp
        return _csv(path, sep="::", header=None, names=MOVIELENS_DATA_COLUMNS, engine="python")
    if name == "ratings.csv":
        return _csv(path, sep=",", header=0).rename(columns=_RATINGS_CSV)
    sep = cfg.delimiter or "\t"
    return _csv(path, sep=sep, header=None, names=cfg.columns or MOVIELENS_DATA_COLUMNS)


def sniff_delimiter(path: Path, encoding: str) -> str:
    """The delimiter of a text table, chosen among :data:`DELIMITERS` by csv.Sniffer."""
    sample = _sample(path, encoding)
    lines = [ln for ln in sample.splitlines() if ln.strip()][:50]
    if not lines:
        raise DataError(f"{path}: the file is empty; expected events with user, item and time columns")
    try:
        return csv.Sniffer().sniff("\n".join(lines), delimiters=DELIMITERS).delimiter
    except csv.Error:
        pass
    # one consistent count per line also identifies a delimiter the sniffer missed
    for d in DELIMITERS:
        counts = {ln.count(d) for ln in lines}
        if len(counts) == 1 and counts.pop() > 0:
            return d
    raise DataError(
        f"{path}: cannot tell the delimiter (tried comma, tab, semicolon, pipe, space); set data.delimiter in the config"
    )


def _sample(path: Path, encoding: str) -> str:
    with path.open("rb") as fh:
        raw = fh.read(65536)
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


def read_csv(path: Path, cfg: DataConfig) -> pd.DataFrame:
    """Read a delimited text file: delimiter detected unless configured, header detected unless configured."""
    sep = cfg.delimiter or sniff_delimiter(path, cfg.encoding)
    first = _sample(path, cfg.encoding).splitlines()[0] if path.stat().st_size else ""
    fields = [f.strip().strip('"') for f in (first.split() if sep == " " else first.split(sep))]
    has_header = {"yes": True, "no": False}.get(cfg.header)
    if has_header is None:
        known = {cfg.user_col, cfg.item_col, cfg.time_col, cfg.order_col, "userId", "movieId"} - {""}
        if cfg.columns:
            has_header = fields == cfg.columns
        elif known & set(fields):
            has_header = True
        else:
            has_header = not all(_is_number(f) for f in fields)
    if not has_header and not cfg.columns:
        raise DataError(
            f"{path}: the file has no header row; name its columns with data.columns "
            f"(e.g. columns = [\"user_id\", \"item_id\", \"timestamp\"])"
        )
    names = cfg.columns or None
    kw: dict = {"sep": r"\s+" if sep == " " else sep, "header": 0 if has_header else None, "names": names}
    if sep == " ":
        kw["engine"] = "python"
    df = _csv(path, encoding=cfg.encoding, **kw)
    if df.shape[1] < 2:
        raise DataError(
            f"{path}: found {df.shape[1]} column with delimiter {sep!r}; expected user, item and time columns "
            f"(set data.delimiter)"
        )
    return df


def _csv(path: Path, **kw: object) -> pd.DataFrame:
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
    except ValueError as e:
        raise DataError(f"{path}: cannot read as CSV ({shown(str(e)[:120])})") from None


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
