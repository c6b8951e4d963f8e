"""The checked pieces a pickled DataFrame is rebuilt from: bytes, numbers, numpy arrays, Arrow text, time zones.

:class:`Pieces` turns the inert records of :mod:`whatnext.data.pickleops` into values, trusting nothing: a dtype
comes from an allow-list (numbers, booleans, dates, objects) and never from the file's state, an array's bytes
must match its shape, object cells must be numbers, text or empty, Arrow text is decoded here with its offsets and
validity checked against its buffers. Every array is charged to a budget of :data:`BUDGET` times the file's size.
:mod:`whatnext.data.safepickle` builds the columns, indexes and the frame from these pieces.
"""

from __future__ import annotations

import datetime
import math
from typing import Any, TypeGuard

import numpy as np

from whatnext.config import shown
from whatnext.data.pickleops import Call, Global

#: the arrays built from a pickle may take at most this many times the file's size (plus a little)
BUDGET = 32
_SLACK = 1 << 16

_NUMERIC = {"b1", "i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8", "f4", "f8"}
_TIME_UNITS = {"s", "ms", "us", "ns"}
_INT64 = 1 << 63


class _Bad(Exception):
    """The pickle is well formed but is not a DataFrame this reader builds; the message says why."""


def _check(ok: bool, what: str) -> None:
    if not ok:
        raise _Bad(what)


def _name(g: object) -> str:
    return g.name if isinstance(g, Global) else ""


def _is(node: object, *names: str) -> TypeGuard[Call]:
    return isinstance(node, Call) and node.func.name in names


def _want(node: object, names: tuple[str, ...], what: str) -> Call:
    """``node`` when it is a call of one of ``names``; else the pickle is refused with ``what``."""
    if not _is(node, *names):
        raise _Bad(what)
    return node


def _kind(v: object) -> str:
    if isinstance(v, Call):
        names = {"_reconstruct": "ndarray", "_frombuffer": "ndarray", "_new_Index": "Index", "_new_DatetimeIndex": "Index"}
        return names.get(v.func.name, shown(v.func.name)[:40])
    if isinstance(v, Global):
        return f"class {shown(v.dotted)[:60]}"
    return type(v).__name__




class Pieces:
    """Values from the records of :mod:`pickleops`, each checked, every array charged to a budget."""

    def __init__(self, size: int) -> None:
        self.left = BUDGET * size + _SLACK

    def charge(self, nbytes: int, what: str) -> None:
        self.left -= nbytes
        _check(self.left >= 0, f"{what} would take more memory than {BUDGET} times the file's size")

    # ---------------------------------------------------------------- primitives
    def bytes_(self, node: object) -> bytes:
        if isinstance(node, (bytes, bytearray)):
            return bytes(node)
        if _is(node, "encode") and node.func.module == "_codecs":  # protocols 0-2 write bytes as latin-1 text
            _check(len(node.args) == 2 and isinstance(node.args[0], str) and node.args[1] in ("latin1", "latin-1"),
                   "a malformed byte string")
            try:
                return node.args[0].encode("latin-1")
            except UnicodeEncodeError:
                raise _Bad("a byte string holding characters above 255") from None
        if _is(node, "bytearray", "bytes", "py_buffer"):
            _check(not node.built, "state applied to a byte string")
            if not node.args:
                return b""
            return self.bytes_(node.args[0] if len(node.args) == 1 else Call(Global("_codecs", "encode"), node.args))
        raise _Bad(f"bytes expected, found {_kind(node)}")

    def int_(self, v: Any, what: str, lo: int = -_INT64, hi: int = _INT64) -> int:
        _check(type(v) is int and lo <= v < hi, f"{what} is {_kind(v)}, expected a whole number in [{lo}, {hi})")
        return int(v)

    def label(self, v: object) -> object:
        if type(v) is int:
            self.int_(v, "a label")
        _check(v is None or type(v) in (str, int), f"a column or index name of type {_kind(v)}")
        return v

    # ---------------------------------------------------------------- numpy
    def dtype(self, node: object) -> np.dtype:
        node = _want(node, ("dtype",), "a malformed numpy dtype")
        _check(len(node.args) >= 1 and isinstance(node.args[0], str), "a malformed numpy dtype")
        code = node.args[0]
        st = node.state
        _check(isinstance(st, tuple) and len(st) in (8, 9), f"numpy dtype {shown(code)[:10]} with malformed state")
        _, order, sub, names, fields, elsize, align, flags = st[:8]
        _check(sub is None and names is None and fields is None and elsize == -1 and align == -1,
               "a numpy dtype with fields or a custom size (a structured or hidden-object dtype)")
        _check(order in ("<", "|", "="), f"numpy byte order {shown(order)[:4]!r} (big-endian data)")
        if code in _NUMERIC:
            _check(flags == 0 and len(st) == 8, f"numpy dtype {code} with flags")
            return np.dtype(code)
        if code in ("O8", "O4"):
            _check(flags == 63 and len(st) == 8, "an object dtype with unusual flags")
            return np.dtype(object)
        if code in ("M8", "m8"):
            _check(flags == 0 and len(st) == 9 and isinstance(st[8], tuple) and len(st[8]) == 2, "a malformed date dtype")
            meta = st[8][1]
            _check(isinstance(meta, tuple) and len(meta) == 4, "a malformed date dtype")
            unit = self.bytes_(meta[0]).decode("ascii", "replace")
            _check(unit in _TIME_UNITS and meta[1] == 1, f"date unit {shown(unit)[:8]!r}, expected s, ms, us or ns")
            return np.dtype(f"{code}[{unit}]")
        raise _Bad(f"numpy dtype {shown(code)[:12]!r}, expected numbers, booleans, dates or text")

    def ndarray(self, node: object) -> np.ndarray:
        if _is(node, "_frombuffer"):
            _check(len(node.args) == 4 and not node.built, "a malformed numpy array")
            buf, dt, shape, order = node.args
            return self._array(self.bytes_(buf), self.dtype(dt), shape, order == "F")
        node = _want(node, ("_reconstruct",), f"a numpy array expected, found {_kind(node)}")
        _check(len(node.args) == 3 and _name(node.args[0]) == "ndarray", f"a numpy array expected, found {_kind(node)}")
        st = node.state
        _check(isinstance(st, tuple) and len(st) == 5 and st[0] == 1, "a numpy array with malformed state")
        _, shape, dt, fortran, data = st
        dtype = self.dtype(dt)
        if dtype == object:
            return self._objects(data, shape)
        return self._array(self.bytes_(data), dtype, shape, bool(fortran))

    def _shape(self, shape: Any) -> tuple[int, ...]:
        _check(isinstance(shape, tuple) and 1 <= len(shape) <= 2, "a numpy array of more than 2 dimensions")
        return tuple(self.int_(s, "an array dimension", 0, 1 << 40) for s in shape)

    def _array(self, data: bytes, dtype: np.dtype, shape: Any, fortran: bool) -> np.ndarray:
        dims = self._shape(shape)
        n = math.prod(dims)
        _check(len(data) == n * dtype.itemsize,
               f"an array of shape {dims} and type {dtype} over {len(data)} bytes (expected {n * dtype.itemsize})")
        self.charge(len(data), "an array")
        arr = np.frombuffer(data, dtype=np.uint8 if dtype == bool else dtype)
        arr = (arr != 0) if dtype == bool else arr.copy()
        return arr.reshape(dims, order="F" if fortran else "C")

    def _objects(self, data: Any, shape: Any) -> np.ndarray:
        dims = self._shape(shape)
        _check(isinstance(data, list) and len(data) == math.prod(dims), "an object array whose length does not match its shape")
        kinds = set(map(type, data))
        # text counted as often as it appears: a long string named a million times through the memo is small in
        # the file but not in whatever copies it later (text ids become an Arrow column)
        text = sum(map(len, data)) if kinds == {str} else sum(len(v) for v in data if type(v) is str)
        self.charge(8 * len(data) + text, "an object array")
        out = np.empty(len(data), dtype=object)
        if kinds <= {str, float, bool, type(None)}:  # the common case, checked at once
            out[:] = data
        else:
            for i, v in enumerate(data):
                out[i] = self.cell(v)
        return out.reshape(dims)

    def cell(self, v: object) -> object:
        t = type(v)
        if t is int:
            return self.int_(v, "a cell")
        if v is None or t in (str, float, bool):
            return v
        if isinstance(v, Global) and v.dotted in ("pandas._libs.missing.NA", "pandas.NA"):
            import pandas as pd

            return pd.NA
        raise _Bad(f"a cell of type {_kind(v)} (cells must be numbers, text or empty)")

    # ---------------------------------------------------------------- pandas arrays (one column each)
    def string_dtype(self, node: object) -> Any:
        import pandas as pd

        if node is None:
            return pd.StringDtype()
        node = _want(node, ("StringDtype",), "a malformed text dtype")
        _check(1 <= len(node.args) <= 2 and node.args[0] in ("python", "pyarrow") and not node.built,
               "a malformed text dtype")
        if len(node.args) == 1:
            return pd.StringDtype(node.args[0])
        na = node.args[1]
        _check((type(na) is float and math.isnan(na)) or (isinstance(na, Global) and na.name == "NA"), "a text dtype with an odd missing value")
        return pd.StringDtype(node.args[0], na_value=np.nan if type(na) is float else pd.NA)

    def arrow_strings(self, node: object) -> list[str | None]:
        """Text of a pickled Arrow string array, decoded here: offsets and validity checked against the buffers."""
        node = _want(node, ("_restore_array",), "a malformed Arrow array")
        _check(len(node.args) == 1 and isinstance(node.args[0], tuple) and len(node.args[0]) == 7, "a malformed Arrow array")
        typ, length, nulls, offset, buffers, children, dictionary = node.args[0]
        typ = _want(typ, ("type_for_alias",), "an Arrow array that is not text")
        _check(len(typ.args) == 1 and typ.args[0] in ("string", "large_string"), "an Arrow array that is not text")
        _check(children == [] and dictionary is None and isinstance(buffers, list) and len(buffers) == 3,
               "an Arrow text array with children or a dictionary")
        n = self.int_(length, "an Arrow array length", 0, 1 << 40)
        off = self.int_(offset, "an Arrow array offset", 0, 1 << 40)
        self.int_(nulls, "an Arrow null count", -1, n + 1)
        width = 8 if typ.args[0] == "large_string" else 4
        raw_offsets = self.bytes_(buffers[1])
        _check(len(raw_offsets) >= (off + n + 1) * width, "an Arrow text array with fewer offsets than values")
        offsets = np.frombuffer(raw_offsets, dtype=f"<i{width}", count=off + n + 1)[off:].astype(np.int64)
        data = self.bytes_(buffers[2]) if buffers[2] is not None else b""
        _check(bool(np.all(np.diff(offsets) >= 0)) and (n == 0 or (offsets[0] >= 0 and offsets[-1] <= len(data))),
               "an Arrow text array whose offsets run outside its data")
        valid = np.ones(n, dtype=bool)
        if buffers[0] is not None:
            bits = np.frombuffer(self.bytes_(buffers[0]), dtype=np.uint8)
            _check(len(bits) * 8 >= off + n, "an Arrow validity bitmap shorter than the array")
            valid = np.unpackbits(bits, bitorder="little")[off:off + n].astype(bool)
        self.charge(64 * n + len(data), "an Arrow text array")
        try:
            return [data[a:b].decode("utf-8") if ok else None
                    for a, b, ok in zip(offsets[:-1].tolist(), offsets[1:].tolist(), valid.tolist())]
        except UnicodeDecodeError:
            raise _Bad("Arrow text that is not UTF-8") from None

    def tz_dtype(self, node: object) -> datetime.tzinfo:
        node = _want(node, ("DatetimeTZDtype",), "a malformed time-zone dtype")
        _check(isinstance(node.state, dict), "a malformed time-zone dtype")
        unit = node.state.get("unit", "ns")
        _check(unit in _TIME_UNITS, "a time-zone dtype with an odd unit")
        return self.tz(node.state.get("tz"))

    def tz(self, node: object) -> datetime.tzinfo:
        import zoneinfo

        if _is(node, "_UTC"):
            return datetime.UTC
        if _is(node, "timezone") and len(node.args) == 1 and _is(node.args[0], "timedelta"):
            minutes = self.timedelta_(node.args[0]) / datetime.timedelta(minutes=1)
            _check(abs(minutes) < 24 * 60, "a time zone offset of a day or more")
            return datetime.timezone(datetime.timedelta(minutes=minutes))
        if _is(node, "_p", "ZoneInfo") and node.args and isinstance(node.args[0], str):
            key = node.args[0]
            try:
                return zoneinfo.ZoneInfo(key)
            except (ValueError, zoneinfo.ZoneInfoNotFoundError):
                raise _Bad(f"unknown time zone {shown(key)[:40]!r}") from None
        raise _Bad(f"a time zone of type {_kind(node)}")

    def timedelta_(self, node: object) -> datetime.timedelta:
        node = _want(node, ("timedelta",), "a malformed timedelta")
        _check(len(node.args) == 3 and not node.built, "a malformed timedelta")
        d, s, us = (self.int_(v, "a timedelta part", -(10**6), 10**6) for v in node.args)
        return datetime.timedelta(days=d, seconds=s, microseconds=us)

    # ---------------------------------------------------------------- indexes
