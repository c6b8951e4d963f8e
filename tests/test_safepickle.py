"""Legacy pickles are read without running code: malicious ones are refused, DataFrames load."""

from __future__ import annotations

import builtins
import io
import os
import pickle
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import config_for, long_frame, one_line_error
from hypothesis import given, settings
from hypothesis import strategies as st

from whatnext.data import load_dataset, pickleops
from whatnext.data.safepickle import load_dataframe
from whatnext.errors import DataError


class _Payload:
    """Pickles as a call of ``func(*args)``: what an attacker's pickle does on load."""

    def __init__(self, func: object, *args: object) -> None:
        self.func, self.args = func, args

    def __reduce__(self) -> tuple:
        return self.func, self.args


def _attacks(marker: Path) -> dict[str, object]:
    """Objects whose unpickling would create ``marker`` (each through a different route)."""
    code = f"open({str(marker)!r}, 'w').write('pwned')"
    return {
        "os.system": _Payload(os.system, f"touch '{marker}'"),
        "subprocess.run": _Payload(subprocess.run, ["touch", str(marker)]),
        "subprocess.Popen": _Payload(subprocess.Popen, ["touch", str(marker)]),
        "subprocess.check_call": _Payload(subprocess.check_call, ["touch", str(marker)]),
        "builtins.exec": _Payload(builtins.exec, code),
        "builtins.eval": _Payload(builtins.eval, f"__import__('os').system(\"touch '{marker}'\")"),
        "builtins.open": _Payload(builtins.open, str(marker), "w"),
        "builtins.__import__": _Payload(builtins.__import__, "this"),
        "os.mknod": _Payload(os.mknod, str(marker)),
        "pathlib.Path.touch": _Payload(Path.touch, marker),
        # hidden inside a legitimate-looking DataFrame cell
        "inside a DataFrame": pd.DataFrame({"user_id": [1], "item_id": [_Payload(os.system, f"touch '{marker}'")],
                                            "timestamp": [1]}),
        # hidden inside a plain container around a DataFrame
        "beside a DataFrame": [long_frame(), _Payload(builtins.exec, code)],
        # functools.partial is admitted, but what it wraps is checked too
        "partial around os.system": _Payload(__import__("functools").partial(os.system, f"touch '{marker}'")),
    }


ATTACK_NAMES = list(_attacks(Path("x")))


@pytest.mark.parametrize("protocol", [0, 2, pickle.HIGHEST_PROTOCOL])
@pytest.mark.parametrize("attack", ATTACK_NAMES)
def test_malicious_pickle_is_refused(tmp_path: Path, attack: str, protocol: int) -> None:
    marker = tmp_path / "pwned.txt"
    payload = _attacks(marker)[attack]
    p = tmp_path / "clean.pk"
    p.write_bytes(pickle.dumps(payload, protocol=protocol))
    assert not marker.exists()
    with pytest.raises(DataError) as e:
        load_dataframe(p)
    assert e.value.exit_code == 3
    msg = one_line_error(e.value)
    assert str(p) in msg and "refused" in msg
    assert not marker.exists(), "the pickle ran code"


def test_the_payloads_really_are_dangerous(tmp_path: Path) -> None:
    """A plain unpickler runs the payload: the test above guards a real danger."""
    marker = tmp_path / "pwned.txt"
    pickle.loads(pickle.dumps(_attacks(marker)["builtins.exec"]))
    assert marker.read_text() == "pwned"


def test_malicious_pickle_through_the_data_loader(tmp_path: Path) -> None:
    marker = tmp_path / "pwned.txt"
    p = tmp_path / "events.pkl"
    p.write_bytes(pickle.dumps(_Payload(os.system, f"touch '{marker}'")))
    with pytest.raises(DataError) as e:
        load_dataset(config_for(p))
    assert "refused" in one_line_error(e.value)
    assert not marker.exists()
    # a pickle without a pickle suffix is detected by its first byte and refused all the same
    q = tmp_path / "events.dat"
    q.write_bytes(p.read_bytes())
    with pytest.raises(DataError):
        load_dataset(config_for(q))
    assert not marker.exists()


def test_hand_written_global_opcodes_are_refused(tmp_path: Path) -> None:
    marker = tmp_path / "pwned.txt"
    # protocol 0 text: GLOBAL 'posix system', a string argument, TUPLE, REDUCE
    raw = f"cposix\nsystem\n(Vtouch {marker}\ntR.".encode()
    p = tmp_path / "x.pk"
    p.write_bytes(raw)
    with pytest.raises(DataError):
        load_dataframe(p)
    # INST opcode: builds an instance of a named class with arguments
    p.write_bytes(f"(Vtouch {marker}\nios\nsystem\n.".encode())
    with pytest.raises(DataError):
        load_dataframe(p)
    assert not marker.exists()
    # a dotted name reaching through an admitted class to other code
    p.write_bytes(b"\x80\x04\x95\x00\x00\x00\x00\x00\x00\x00\x00\x8c\x06pandas\x94\x8c\x1cDataFrame.to_pickle.__globals__\x94\x93\x94.")
    with pytest.raises(DataError):
        load_dataframe(p)


def _frame() -> pd.DataFrame:
    df = long_frame()
    df["when"] = pd.to_datetime(df["timestamp"], unit="s")
    df["when_tz"] = df["when"].dt.tz_localize("UTC")
    df["genre"] = pd.Categorical(["rock", "pop", "rock", "jazz", "pop", "pop", "rock", "jazz"])
    df["plays"] = np.arange(len(df), dtype=np.int32)
    df["flag"] = df["plays"] % 2 == 0
    df["nullable"] = pd.array([1, None, 3, 4, 5, 6, 7, 8], dtype="Int64")
    df["obj"] = pd.Series(["a", None, "c", "d", "e", "f", "g", "h"], dtype=object)
    return df


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_legitimate_dataframes_load_equal(tmp_path: Path, protocol: int) -> None:
    df = _frame()
    p = tmp_path / "clean.pk"
    p.write_bytes(pickle.dumps(df, protocol=protocol))
    pd.testing.assert_frame_equal(load_dataframe(p), df)


@pytest.mark.parametrize("protocol", [0, 2, pickle.HIGHEST_PROTOCOL])
def test_other_indexes_load_equal(tmp_path: Path, protocol: int) -> None:
    p = tmp_path / "clean.pk"
    frames = [long_frame().set_index(["user_id", "item_id"]), long_frame().iloc[::2]]
    # a DatetimeIndex from pd.date_range carries its frequency (a date-offset object)
    frames += [long_frame().set_index(pd.date_range("2024-01-01", periods=8, freq=f)) for f in ("h", "D", "W", "ME", "B")]
    for frame in frames:
        p.write_bytes(pickle.dumps(frame, protocol=protocol))
        pd.testing.assert_frame_equal(load_dataframe(p), frame)


def test_pandas_to_pickle_loads(tmp_path: Path) -> None:
    df = _frame()
    p = tmp_path / "clean.pk"
    df.to_pickle(p)
    pd.testing.assert_frame_equal(load_dataframe(p), df)


@pytest.mark.parametrize(
    ("obj", "fragment"),
    [([1, 2], "list"), ({"a": 1}, "dict"), (pd.Series([1.0, 2.0]), "Series"), (np.zeros(3), "ndarray")],
)
def test_pickle_of_something_else(tmp_path: Path, obj: object, fragment: str) -> None:
    p = tmp_path / "x.pk"
    p.write_bytes(pickle.dumps(obj))
    with pytest.raises(DataError) as e:
        load_dataframe(p)
    msg = one_line_error(e.value)
    assert fragment in msg and "DataFrame" in msg


@pytest.mark.parametrize("raw", [b"", b"\x80", b"\x80\x05garbage", pickle.dumps(long_frame())[:200]])
def test_corrupt_pickles(tmp_path: Path, raw: bytes) -> None:
    p = tmp_path / "x.pk"
    p.write_bytes(raw)
    with pytest.raises(DataError) as e:
        load_dataframe(p)
    assert str(p) in one_line_error(e.value)


def test_unreadable_pickle_file(tmp_path: Path) -> None:
    with pytest.raises(DataError) as e:
        load_dataframe(tmp_path)  # a folder
    assert str(tmp_path) in one_line_error(e.value)


def test_the_dataframe_class_itself_is_not_data(tmp_path: Path) -> None:
    buf = io.BytesIO()
    pickle.Pickler(buf, protocol=2).dump(pd.DataFrame)
    p = tmp_path / "x.pk"
    p.write_bytes(buf.getvalue())
    with pytest.raises(DataError) as e:
        load_dataframe(p)
    assert "type" in one_line_error(e.value)


# ---------------------------------------------------------------- pickles written by older pandas, and round trips

LEGACY = Path(__file__).resolve().parent / "legacy_pickles"


def _recipes() -> dict[str, object]:
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_legacy_pickles", LEGACY / "make_legacy_pickles.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.RECIPES


LEGACY_FILES = sorted(p.name for p in LEGACY.glob("*.pk"))


def test_the_legacy_corpus_covers_pandas_1_and_2_and_protocols_2_to_5() -> None:
    # 1.1 pickles the block manager and its arrays in the older form (NEWOBJ and a "0.14.1" state)
    assert {f.split("-")[0] for f in LEGACY_FILES} == {"pandas1.1", "pandas1.5", "pandas2.2"}
    assert {f.split("-")[-1] for f in LEGACY_FILES} == {"p2.pk", "p3.pk", "p4.pk", "p5.pk"}
    assert {f.split("-")[1] for f in LEGACY_FILES} == set(_recipes())


@pytest.mark.parametrize("name", LEGACY_FILES)
def test_pickles_written_by_older_pandas_load_as_the_same_table(name: str) -> None:
    """Old pandas wrote text as object columns: the loader keeps what the file says, with the same values."""
    df = load_dataframe(LEGACY / name)
    expected = _recipes()[name.split("-")[1]]()  # type: ignore[operator]
    pd.testing.assert_frame_equal(df, expected, check_dtype=False, check_index_type=False, check_column_type=False)
    kinds = {c: df[c].dtype.kind for c in ("timestamp", "energy", "tempo", "liked", "when") if c in df}
    assert kinds == {"timestamp": "i", "energy": "f", "tempo": "i", "liked": "b", "when": "M"}
    if "user_id" in df:
        assert df["user_id"].dtype == object and all(type(v) is str for v in df["user_id"])
    if "extras" in name:
        assert isinstance(df["genre"].dtype, pd.CategoricalDtype) and str(df["when_utc"].dt.tz) == "UTC"
        assert str(df["plays"].dtype) == "Int64" and df["note"][1] is None


def _roundtrip_frames() -> dict[str, pd.DataFrame]:
    n = 6
    base = pd.DataFrame({"user_id": [f"u{i % 3}" for i in range(n)], "item_id": [f"s{i}" for i in range(n)],
                         "timestamp": np.arange(n, dtype=np.int64) * 10})
    frames = {
        "ints": base.assign(i8=np.arange(n, dtype=np.int8), u16=np.arange(n, dtype=np.uint16),
                            i32=np.arange(n, dtype=np.int32)),
        "floats": base.assign(f4=np.linspace(0, 1, n, dtype=np.float32), f8=[0.5, np.nan, np.inf, -1.0, 2.0, 3.0]),
        "bools": base.assign(flag=np.arange(n) % 2 == 0),
        "object text": base.astype({"user_id": object, "item_id": object}),
        "str text with gaps": base.assign(title=pd.array(["a", None, "ç", "", "e", "f"], dtype="str")),
        "python strings": base.assign(title=pd.array(["a", None, "c", "d", "e", "f"], dtype=pd.StringDtype("python"))),
        "dates": base.assign(when=pd.to_datetime(base["timestamp"], unit="s"),
                             when_ns=pd.to_datetime(base["timestamp"], unit="s").astype("datetime64[ns]")),
        "text index": base.set_index("item_id"),
        "int index": base.iloc[::2],
        "empty": base.iloc[:0],
        "no columns": pd.DataFrame(index=pd.RangeIndex(3)),
        "int column names": pd.DataFrame(np.arange(12.0).reshape(4, 3)),
        "duplicate column names": pd.DataFrame([[1, 2], [3, 4]], columns=["a", "a"]),
    }
    return frames


ROUNDTRIP = list(_roundtrip_frames())


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
@pytest.mark.parametrize("which", ROUNDTRIP)
def test_to_pickle_round_trips(tmp_path: Path, which: str, protocol: int) -> None:
    df = _roundtrip_frames()[which]
    p = tmp_path / "clean.pk"
    df.to_pickle(p, protocol=protocol)
    pd.testing.assert_frame_equal(load_dataframe(p), df)


# ---------------------------------------------------------------- the opcode reader against CPython's pickle

_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=False),
                     st.text(max_size=8), st.binary(max_size=8))
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.tuples(inner, inner),
                            st.dictionaries(st.one_of(st.text(max_size=4), st.integers(-5, 5)), inner, max_size=4)),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(_VALUES, st.integers(0, pickle.HIGHEST_PROTOCOL))
def test_the_opcode_reader_reads_plain_values_as_pickle_does(value: object, protocol: int) -> None:
    """Every protocol's opcodes for numbers, text, bytes, lists, tuples and dicts (shared parts and all)."""
    shared = [value, value, (value,)]  # memo references to one object
    raw = pickle.dumps(shared, protocol=protocol)
    if protocol < 3 and b"_codecs" in raw or b"__builtin__\nbytes" in raw or b"builtins\nbytes" in raw:
        return  # bytes before protocol 3 are a call of _codecs.encode: a record here, built by safepickle
    assert pickleops.read(raw, ()) == shared


def test_a_large_frame_of_text_and_numbers_round_trips_within_the_budget(tmp_path: Path) -> None:
    n = 50_000
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"user_id": pd.Series([f"u{i}" for i in rng.integers(0, 500, n)], dtype=object),
                       "item_id": pd.array([f"s{i}" for i in rng.integers(0, 2000, n)], dtype="str"),
                       "timestamp": np.arange(n), "energy": rng.random(n), "liked": rng.random(n) < 0.5})
    for protocol in (2, 5):
        p = tmp_path / f"clean{protocol}.pk"
        df.to_pickle(p, protocol=protocol)
        pd.testing.assert_frame_equal(load_dataframe(p), df)
