"""Reading legacy pickles (the original ``clean.pk``) without running code or trusting their state.

A plain ``pickle.load`` calls whatever the file names, and even a restricted unpickler hands the file's state
to pandas, numpy and pyarrow internals, which trust it (a block placed outside its frame, a dtype hiding an
object field, an Arrow array over empty buffers: each crashed the process). Here the opcodes are read by
:mod:`whatnext.data.pickleops`, which runs nothing and admits only the names in :data:`ALLOWED`; this module
then builds the DataFrame itself from checked pieces through public constructors: numbers and booleans from
bytes whose length matches the shape, dates from int64, text only from Python ``str`` (Arrow text is decoded
here, offsets checked: :mod:`whatnext.data.pickle_pieces`), column placements that are a permutation of the
columns, every column as long as the index. The arrays it makes may take at most
:data:`whatnext.data.pickle_pieces.BUDGET` times the file's size. Anything else is a :class:`DataError` naming
the file, what was wrong and how to fix it.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from whatnext.config import shown
from whatnext.data import pickleops
from whatnext.data.pickle_pieces import Pieces, _Bad, _check, _is, _kind, _name, _want
from whatnext.data.pickleops import Call, Global, Invalid, Refused
from whatnext.errors import DataError

_PD = ("pandas", "pandas.core.frame", "pandas.core.series", "pandas.core.indexes.base", "pandas.core.indexes.range",
       "pandas.core.indexes.multi", "pandas.core.indexes.numeric", "pandas.core.indexes.datetimes", "pandas.arrays",
       "pandas.core.arrays.categorical", "pandas.core.arrays.datetimes", "pandas.core.arrays.timedeltas",
       "pandas.core.arrays.integer", "pandas.core.arrays.floating", "pandas.core.arrays.boolean",
       "pandas.core.arrays.string_", "pandas.core.arrays.string_arrow", "pandas.core.dtypes.dtypes")
_CLASSES = {
    "DataFrame", "Series", "Index", "RangeIndex", "MultiIndex", "DatetimeIndex", "Int64Index", "UInt64Index",
    "Float64Index", "Categorical", "CategoricalDtype", "DatetimeTZDtype", "DatetimeArray", "TimedeltaArray",
    "IntegerArray", "FloatingArray", "BooleanArray", "StringArray", "ArrowStringArray", "StringDtype",
    "Int8Dtype", "Int16Dtype", "Int32Dtype", "Int64Dtype", "UInt8Dtype", "UInt16Dtype", "UInt32Dtype", "UInt64Dtype",
    "Float32Dtype", "Float64Dtype", "BooleanDtype",
}
_OFFSET_NAMES = ("Day", "Hour", "Minute", "Second", "Milli", "Micro", "Nano", "Week", "BusinessDay", "MonthEnd",
                 "MonthBegin", "BusinessMonthEnd", "BusinessMonthBegin", "QuarterEnd", "QuarterBegin", "YearEnd",
                 "YearBegin")
#: every global a DataFrame pickle may name; what each stands for is decided below, never imported
ALLOWED: frozenset[tuple[str, str]] = frozenset(
    {(m, n) for m in _PD for n in _CLASSES}
    | {(m, n) for m in ("numpy.core.multiarray", "numpy._core.multiarray") for n in ("_reconstruct", "scalar")}
    | {("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"), ("numpy", "ndarray"),
       ("numpy", "dtype"), ("pandas._libs.internals", "_unpickle_block"), ("pandas.core.internals.managers", "BlockManager"),
       ("pandas.core.internals.managers", "SingleBlockManager"),
       ("pandas._libs.arrays", "__pyx_unpickle_NDArrayBacked"), ("pandas.core.indexes.base", "_new_Index"),
       ("pandas.core.indexes.datetimes", "_new_DatetimeIndex"), ("pandas._libs.missing", "NA"), ("pandas", "NA"),
       ("pyarrow.lib", "_restore_array"), ("pyarrow.lib", "py_buffer"), ("pyarrow.lib", "type_for_alias"),
       ("_codecs", "encode"), ("builtins", "slice"), ("__builtin__", "slice"), ("builtins", "bytearray"),
       ("__builtin__", "bytearray"), ("builtins", "bytes"), ("__builtin__", "bytes"), ("datetime", "timezone"),
       ("datetime", "timedelta"), ("copyreg", "_reconstructor"), ("copy_reg", "_reconstructor"),
       ("builtins", "object"), ("__builtin__", "object"), ("pytz", "_UTC"), ("pytz", "_p"), ("zoneinfo", "ZoneInfo")}
    | {("pandas._libs.tslibs.offsets", n) for n in _OFFSET_NAMES}
)


class _Builder(Pieces):
    """Builds the DataFrame: its columns (one per block row or extension array), indexes and blocks."""

    def column_values(self, node: object) -> list[Any]:
        """The columns of one block: a 2-D numpy array gives one per row, an extension array one."""
        import pandas as pd

        if _is(node, "_reconstruct", "_frombuffer"):
            arr = self.ndarray(node)
            return list(arr) if arr.ndim == 2 else [arr]
        if _is(node, "__pyx_unpickle_NDArrayBacked"):
            cls = node.args[0] if node.args else None
            st = node.state
            _check(isinstance(st, tuple) and len(st) in (2, 3) and isinstance(st[-1] if len(st) == 3 else {}, dict),
                   "a malformed pandas array")
            values = self.ndarray(st[1])
            kind = _name(cls)
            if kind in ("DatetimeArray", "TimedeltaArray"):
                _check(values.dtype.kind == ("M" if kind == "DatetimeArray" else "m"), f"a {kind} holding {values.dtype}")
                tz = self.tz_dtype(st[0]) if _is(st[0], "DatetimeTZDtype") else None
                if tz is None:
                    _check(self.dtype(st[0]) == values.dtype, f"a {kind} whose dtype does not match its values")
                    return list(values) if values.ndim == 2 else [values]
                return [pd.DatetimeIndex(v).tz_localize("UTC").tz_convert(tz).array
                        for v in (values if values.ndim == 2 else [values])]
            if kind == "Categorical":
                _check(values.ndim == 1 and values.dtype.kind == "i", "categorical codes that are not whole numbers")
                cats, ordered = self.categories(st[0])
                return [pd.Categorical.from_codes(values, dtype=pd.CategoricalDtype(cats, ordered=ordered))]
            if kind == "StringArray":
                _check(values.ndim == 1 and values.dtype == object, "a malformed text array")
                _check(all(isinstance(v, str) or v is None or v is pd.NA or (type(v) is float and math.isnan(v)) for v in values),
                       "a text column holding something other than text")
                return [pd.array(values, dtype=self.string_dtype(st[0]))]
            raise _Bad(f"a pandas array of kind {shown(kind)[:40]!r}")
        if _is(node, "DatetimeArray", "TimedeltaArray", "Categorical") and not node.args and isinstance(node.state, dict):
            # pandas before 1.3 pickled these with their attributes: the same pieces under other names
            st = node.state
            if node.func.name == "Categorical":
                codes = self.ndarray(st.get("_codes"))
                _check(codes.ndim == 1 and codes.dtype.kind == "i", "categorical codes that are not whole numbers")
                cats, ordered = self.categories(st.get("_dtype"))
                return [pd.Categorical.from_codes(codes, dtype=pd.CategoricalDtype(cats, ordered=ordered))]
            backed = Call(Global("pandas._libs.arrays", "__pyx_unpickle_NDArrayBacked"), (Global("", node.func.name),))
            backed.state = (st.get("_dtype"), st.get("_data"))
            return self.column_values(backed)
        if _is(node, "IntegerArray", "FloatingArray", "BooleanArray"):
            st = node.state
            _check(isinstance(st, dict) and not node.args, "a malformed nullable array")
            data, mask = self.ndarray(st.get("_data")), self.ndarray(st.get("_mask"))
            _check(data.ndim == 1 and mask.shape == data.shape and mask.dtype == bool, "a nullable array with a mask of another shape")
            cls = {"IntegerArray": pd.arrays.IntegerArray, "FloatingArray": pd.arrays.FloatingArray,
                   "BooleanArray": pd.arrays.BooleanArray}[node.func.name]
            want = {"IntegerArray": "iu", "FloatingArray": "f", "BooleanArray": "b"}[node.func.name]
            _check(data.dtype.kind in want, f"a {node.func.name} holding {data.dtype}")
            return [cls(data, mask)]
        if _is(node, "ArrowStringArray"):
            st = node.state
            _check(isinstance(st, dict) and not node.args, "a malformed Arrow text array")
            strings = self.arrow_strings(st.get("_pa_array", st.get("_data")))
            return [pd.array(strings, dtype=self.string_dtype(st.get("_dtype")))]
        raise _Bad(f"column values of type {_kind(node)}")

    def categories(self, node: object) -> tuple[Any, bool]:
        node = _want(node, ("CategoricalDtype",), "a malformed categorical dtype")
        _check(isinstance(node.state, dict), "a malformed categorical dtype")
        ordered = node.state.get("ordered", node.state.get("_ordered", False))
        _check(ordered in (True, False, None), "a categorical dtype with an odd 'ordered' flag")
        return self.index(node.state.get("categories")), bool(ordered)

    def index(self, node: object) -> Any:
        import pandas as pd

        if _is(node, "_new_DatetimeIndex"):
            _check(len(node.args) == 2 and isinstance(node.args[1], dict), "a malformed DatetimeIndex")
            d = node.args[1]
            (values,) = self.column_values(d.get("data"))
            freq = d.get("freq")
            data = d.get("data")
            attrs = data.state[-1] if _is(data, "__pyx_unpickle_NDArrayBacked") else data.state if isinstance(data, Call) else None
            if freq is None and isinstance(attrs, dict):  # pandas before 3 kept it on the array
                freq = attrs.get("_freq")
            freq = self.offset(freq)
            try:
                return pd.DatetimeIndex(values, name=self.label(d.get("name")), freq=freq)
            except ValueError as e:
                raise _Bad(f"a DatetimeIndex whose dates do not follow its frequency ({shown(str(e))[:60]})") from None
        node = _want(node, ("_new_Index",), f"an index expected, found {_kind(node)}")
        _check(len(node.args) == 2 and isinstance(node.args[1], dict), f"an index expected, found {_kind(node)}")
        cls, d = _name(node.args[0]), node.args[1]
        name = self.label(d.get("name"))
        if cls == "RangeIndex":
            start, stop, step = (self.int_(d.get(k, dv), f"RangeIndex {k}", -(1 << 62), 1 << 62)
                                 for k, dv in (("start", 0), ("stop", 0), ("step", 1)))
            _check(step != 0, "a RangeIndex with step 0")
            r = range(start, stop, step)
            self.charge(8 * len(r), "a RangeIndex")
            return pd.RangeIndex(start, stop, step, name=name)
        if cls == "MultiIndex":
            levels, codes, names = d.get("levels"), d.get("codes", d.get("labels")), d.get("names")
            _check(isinstance(levels, list) and isinstance(codes, list) and isinstance(names, list)
                   and len(levels) == len(codes) == len(names) >= 1, "a malformed MultiIndex")
            codes_arr = [self.ndarray(c) for c in codes]
            _check(all(c.ndim == 1 and c.dtype.kind == "i" for c in codes_arr), "MultiIndex codes that are not whole numbers")
            try:
                return pd.MultiIndex(levels=[self.index(lv) for lv in levels], codes=codes_arr,
                                     names=[self.label(n) for n in names], verify_integrity=True)
            except (ValueError, TypeError) as e:
                raise _Bad(f"an inconsistent MultiIndex ({shown(str(e))[:60]})") from None
        _check(cls in ("Index", "Int64Index", "UInt64Index", "Float64Index"), f"an index of kind {shown(cls)[:40]!r}")
        (values,) = self.column_values(d.get("data"))
        _check(getattr(values, "ndim", 1) == 1, "an index of 2 dimensions")
        return pd.Index(values, name=name, copy=False)

    def offset(self, node: object) -> Any:
        import pandas as pd

        if node is None:
            return None
        node = _want(node, _OFFSET_NAMES, "a malformed date frequency")
        _check(2 <= len(node.args) <= 3 and not node.built, "a malformed date frequency")
        n = self.int_(node.args[0], "a frequency multiple", -(10**6), 10**6)
        _check(type(node.args[1]) is bool, "a malformed date frequency")
        extra: dict[str, Any] = {}
        if len(node.args) == 3:
            if node.func.name == "Week":
                _check(node.args[2] is None or node.args[2] in range(7), "a week frequency with an odd weekday")
                extra["weekday"] = node.args[2]
            elif node.func.name == "BusinessDay":
                extra["offset"] = self.timedelta_(node.args[2])
            else:
                _check(type(node.args[2]) is int and 1 <= node.args[2] <= 12, "a malformed date frequency")
                extra["startingMonth" if "Quarter" in node.func.name else "month"] = node.args[2]
        return getattr(pd.offsets, node.func.name)(n, node.args[1], **extra)

    # ---------------------------------------------------------------- the frame
    def frame(self, root: object) -> Any:
        import pandas as pd

        if isinstance(root, Global):
            raise _Bad(f"the class {root.dotted} itself, not a table (type)")
        root = _want(root, ("DataFrame",), f"the pickle holds a {_kind(root)}, expected a pandas DataFrame")
        st = root.state
        _check(root.args == () and isinstance(st, dict), "a DataFrame with malformed state")
        mgr = st.get("_mgr", st.get("_data"))
        blocks, axes = self.manager(mgr)
        columns, index = self.index(axes[0]), self.index(axes[1])
        _check(not isinstance(columns, pd.MultiIndex), "a DataFrame with several levels of column names")
        for c in columns:
            self.label(c.item() if isinstance(c, np.integer) else c)
        placed: list[Any] = [None] * len(columns)
        for values_node, where_node in blocks:
            values = self.column_values(values_node)
            where = self.placement(where_node, len(columns))
            _check(len(where) == len(values), f"a block of {len(values)} columns placed at {len(where)} positions")
            for i, v in zip(where, values):
                _check(placed[i] is None, f"two blocks placed at column {i}")
                _check(len(v) == len(index), f"a column of {len(v)} values beside an index of {len(index)}")
                self.charge(8 * len(v), "a column")
                placed[i] = v
        _check(all(v is not None for v in placed), "a column without values (block placements miss a column)")
        # as Series of their own dtype: pandas would otherwise turn an object column of text into its str dtype
        series = {i: pd.Series(v, index=index, dtype=v.dtype, copy=False) for i, v in enumerate(placed)}
        df = pd.DataFrame(series, index=index) if series else pd.DataFrame(index=index)
        df.columns = columns
        return df

    def manager(self, node: object) -> tuple[list[tuple[object, object]], list[object]]:
        """(values, placement) of every block, and the two axes (columns, index), in either pickled form."""
        mgr = _want(node, ("BlockManager",), "a DataFrame without a block manager")
        if mgr.args == () and isinstance(mgr.state, tuple):  # pandas before 1.3: NEWOBJ, then the "0.14.1" state
            st = mgr.state
            _check(len(st) == 4 and isinstance(st[3], dict) and isinstance(st[3].get("0.14.1"), dict),
                   "a block manager in an unknown pickled form")
            state = st[3]["0.14.1"]
            axes, blocks = state.get("axes"), state.get("blocks")
            _check(isinstance(axes, list) and len(axes) == 2 and isinstance(blocks, list)
                   and all(isinstance(b, dict) for b in blocks), "a malformed block manager")
            return [(b.get("values"), b.get("mgr_locs")) for b in blocks], axes
        _check(len(mgr.args) == 2 and not mgr.built, "a DataFrame without a block manager")
        raw_blocks, axes = mgr.args
        _check(isinstance(raw_blocks, tuple) and isinstance(axes, list) and len(axes) == 2, "a malformed block manager")
        out = []
        for b in raw_blocks:
            b = _want(b, ("_unpickle_block",), "a malformed block")
            _check(len(b.args) == 3 and b.args[2] == 2 and not b.built, "a malformed block")
            out.append((b.args[0], b.args[1]))
        return out, axes

    def placement(self, node: object, ncols: int) -> list[int]:
        if _is(node, "slice"):
            _check(len(node.args) == 3 and not node.built, "a malformed block placement")
            start, stop, step = (self.int_(v, "a block placement", -(1 << 40), 1 << 40) if v is not None else None
                                 for v in node.args)
            _check(start is not None and 0 <= start and stop is not None and stop <= ncols and (step or 1) > 0,
                   f"a block placement outside the {ncols} columns")
            return list(range(start or 0, stop or 0, step or 1))
        arr = self.ndarray(node)
        _check(arr.ndim == 1 and arr.dtype.kind == "i", "a block placement that is not whole numbers")
        out = arr.tolist()
        _check(all(0 <= i < ncols for i in out), f"a block placement outside the {ncols} columns")
        return out


def load_dataframe(path: Path) -> Any:
    """Load a pickled pandas DataFrame from ``path``: nothing in it runs, every piece is checked."""
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror})") from None
    fix = "expected a pickled pandas DataFrame of numbers, text and dates; re-save the table as Parquet or CSV"
    try:
        return _Builder(len(raw)).frame(pickleops.read(raw, ALLOWED))
    except Refused as e:
        raise DataError(
            f"{path}: refused to load: the pickle asks to run '{shown(e)}', which is not part of a pandas DataFrame "
            f"(a pickle can run code; re-save the data as Parquet or CSV)"
        ) from None
    except (Invalid, RecursionError) as e:
        raise DataError(f"{path}: not a readable pickle ({shown(e)}); {fix}") from None
    except _Bad as e:
        msg = str(e)
        if msg.startswith("the pickle holds"):
            raise DataError(f"{path}: {shown(msg)}") from None
        raise DataError(f"{path}: not a readable pickle ({shown(msg)}); {fix}") from None
    except Exception as e:  # noqa: BLE001 - a constructor refused a checked piece (ValueError...), or memory ran out
        raise DataError(f"{path}: not a readable pickle ({type(e).__name__}: {shown(str(e)[:80])}); {fix}") from None
