"""Property tests for the binary data loaders, beyond random bytes (test_properties.py): damaged copies
of real Parquet files and DataFrame pickles, and random DataFrames written as Parquet and as pickles.
For any of them the loader gives a valid dataset or a WhatnextError with a one-line message; never another
exception, and never code run from the file."""

from __future__ import annotations

import io
import pickle
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from helpers import config_for, long_frame, one_line_error
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from whatnext.data import load_dataset
from whatnext.errors import WhatnextError

SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _load(data: bytes, name: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        p = Path(tmp) / name
        p.write_bytes(data)
        try:
            ds = load_dataset(config_for(p))
        except WhatnextError as e:
            one_line_error(e)
        else:
            assert len(ds.catalogue) > 0 and len(ds.histories) > 0
        assert not (Path(tmp) / "pwned").exists()


def _parquet(df: pd.DataFrame) -> bytes:
    buf = io.BytesIO()
    df.to_parquet(buf, index=False)
    return buf.getvalue()


VALID_PARQUET = _parquet(long_frame())
VALID_PICKLES = [pickle.dumps(long_frame(), protocol=p) for p in (2, 4, 5)]

# damage: bytes overwritten, bytes cut off the end, bytes inserted
DAMAGE = st.lists(st.tuples(st.sampled_from(["set", "cut", "insert"]), st.floats(0, 1, exclude_max=True),
                            st.integers(0, 255)), min_size=1, max_size=4)


def _damage(data: bytes, edits: list[tuple[str, float, int]]) -> bytes:
    b = bytearray(data)
    for kind, where, value in edits:
        i = int(where * len(b))
        if kind == "set" and b:
            b[i] = value
        elif kind == "cut":
            del b[i:]
        else:
            b.insert(i, value)
    return bytes(b)


@SETTINGS
@given(DAMAGE)
def test_damaged_parquet(edits: list[tuple[str, float, int]]) -> None:
    _load(_damage(VALID_PARQUET, edits), "events.parquet")


@SETTINGS
@given(st.sampled_from(range(len(VALID_PICKLES))), DAMAGE)
def test_damaged_pickle(which: int, edits: list[tuple[str, float, int]]) -> None:
    _load(_damage(VALID_PICKLES[which], edits), "clean.pk")


# random tables: the expected column names (sometimes), values of every kind a DataFrame can hold
NAMES = st.sampled_from(["user_id", "item_id", "timestamp", "rating", "energy", "tempo", "title", "", "0", "user_id "])
VALUES = st.one_of(
    st.integers(-(2**62), 2**62), st.floats(allow_nan=True, allow_infinity=True), st.booleans(), st.none(),
    st.text(max_size=6), st.sampled_from(["u1", "s1", "2024-01-01", "1e400", "nan", "inf"]),
)


@st.composite
def frames(draw) -> pd.DataFrame:
    names = draw(st.lists(NAMES, min_size=1, max_size=6, unique=True))
    n = draw(st.integers(0, 8))
    cols = {}
    for name in names:
        kind = draw(st.sampled_from(["mixed", "int", "float", "text", "datetime", "category", "bool"]))
        if kind == "mixed":
            cols[name] = pd.Series(draw(st.lists(VALUES, min_size=n, max_size=n)), dtype=object)
        elif kind == "int":
            cols[name] = pd.Series(draw(st.lists(st.integers(-5, 5), min_size=n, max_size=n)), dtype="int64")
        elif kind == "float":
            cols[name] = pd.Series(draw(st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=n, max_size=n)),
                                   dtype="float64")
        elif kind == "text":
            cols[name] = pd.Series(draw(st.lists(st.sampled_from(["u1", "u2", "s1", "s2", "", "x"]), min_size=n,
                                                 max_size=n)), dtype=object)
        elif kind == "datetime":
            cols[name] = pd.Series(pd.to_datetime(draw(st.lists(st.integers(0, 2**40), min_size=n, max_size=n)), unit="s"))
        elif kind == "category":
            cols[name] = pd.Series(draw(st.lists(st.sampled_from(["a", "b"]), min_size=n, max_size=n)), dtype="category")
        else:
            cols[name] = pd.Series(draw(st.lists(st.booleans(), min_size=n, max_size=n)), dtype=bool)
    return pd.DataFrame(cols)


@SETTINGS
@given(frames())
def test_random_frames_as_pickles(df: pd.DataFrame) -> None:
    _load(pickle.dumps(df), "clean.pk")


@SETTINGS
@given(frames())
def test_random_frames_as_parquet(df: pd.DataFrame) -> None:
    try:
        data = _parquet(df)
    except Exception:  # pyarrow cannot store some mixed object columns: not an input a user can have
        assume(False)
        raise
    _load(data, "events.parquet")


def test_a_plausible_random_frame_loads() -> None:
    """Positive control: the generators can produce loadable tables, so the properties are not vacuous."""
    df = pd.DataFrame({"user_id": ["u1", "u1", "u2"], "item_id": ["s1", "s2", "s1"], "timestamp": [1, 2, 3],
                       "energy": np.array([0.1, 0.2, 0.1])})
    for data, name in ((pickle.dumps(df), "clean.pk"), (_parquet(df), "events.parquet")):
        with tempfile.TemporaryDirectory() as tmp:
            p = Path(tmp) / name
            p.write_bytes(data)
            assert len(load_dataset(config_for(p)).catalogue) == 2


# ---------------------------------------------------------------- what the properties found (regressions)

CORRUPT_ARROW_PICKLE = """\
import pickle, sys
from pathlib import Path
from whatnext.errors import DataError
from whatnext.data.safepickle import load_dataframe

p = Path(sys.argv[1])
try:
    df = load_dataframe(p)
    print(repr(df))  # a corrupt array slipped through: reading it touches memory out of bounds
except DataError as e:
    print("DataError:", e)
"""


def test_a_pickled_arrow_column_with_offsets_past_its_buffer_is_refused_not_a_crash(tmp_path: Path) -> None:
    """pyarrow rebuilds a pickled string column from raw buffers without checking them: an offset past the
    data made pandas read out of bounds (a segmentation fault). The loader validates such arrays."""
    import subprocess
    import sys

    df = pd.DataFrame({"user_id": ["u1", "u2", "u3"], "item_id": ["s1", "s2", "s3"], "timestamp": [1, 2, 3]})
    raw = pickle.dumps(df, protocol=5)
    if b"pyarrow" not in raw:
        import pytest

        pytest.skip("this pandas does not store strings in Arrow arrays")
    width = np.int64 if b"large_string" in raw else np.int32  # the offsets of the strings "u1", "u2", "u3"
    offsets = np.array([0, 2, 4, 6], dtype=width).tobytes()
    assert raw.count(offsets) >= 1
    bad = raw.replace(offsets, np.array([0, 2, 4, 1 << 30], dtype=width).tobytes())
    p = tmp_path / "clean.pk"
    p.write_bytes(bad)
    r = subprocess.run([sys.executable, "-c", CORRUPT_ARROW_PICKLE, str(p)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, f"the loader crashed (exit {r.returncode}): {r.stderr[-500:]}"
    assert r.stdout.startswith("DataError:") and "not a readable pickle" in r.stdout, r.stdout
    assert len(r.stdout.strip().splitlines()) == 1


def test_invalid_utf8_in_a_parquet_string_column_is_a_data_error(tmp_path: Path) -> None:
    df = pd.DataFrame({"user_id": ["uq1", "uq1", "uq2"], "item_id": ["sq1", "sq2", "sq1"], "timestamp": [1, 2, 3]})
    buf = io.BytesIO()
    df.to_parquet(buf, index=False, compression=None)
    raw = buf.getvalue()
    assert b"sq2" in raw
    p = tmp_path / "events.parquet"
    p.write_bytes(raw.replace(b"sq2", b"s\xff2"))
    try:
        load_dataset(config_for(p))
    except WhatnextError as e:
        msg = one_line_error(e)
        assert str(p) in msg and "Parquet" in msg
    else:
        raise AssertionError("invalid UTF-8 was loaded")


def test_an_object_column_of_numbers_is_a_feature_and_repeated_names_are_refused(tmp_path: Path) -> None:
    df = pd.DataFrame({"user_id": ["u1", "u1", "u2"], "item_id": ["s1", "s2", "s1"], "timestamp": [1, 2, 3],
                       "energy": pd.Series([1, 2.5, 1], dtype=object)})
    p = tmp_path / "clean.pk"
    p.write_bytes(pickle.dumps(df))
    ds = load_dataset(config_for(p))
    assert ds.catalogue.feature_names == ["energy"]
    p.write_bytes(pickle.dumps(df.rename(columns={"energy": " user_id"})))
    try:
        load_dataset(config_for(p))
    except WhatnextError as e:
        assert "'user_id' appears more than once" in one_line_error(e)
    else:
        raise AssertionError("two user_id columns were accepted")
