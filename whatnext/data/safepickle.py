"""Reading legacy pickles (the original ``clean.pk``) without running code from them.

A plain ``pickle.load`` calls whatever callable the file names, so a pickle can run any
command. :func:`load_dataframe` uses an unpickler whose ``find_class`` admits only the
classes and reconstruction helpers that a pandas DataFrame of numbers, strings, dates and
categories needs; anything else (``os.system``, ``subprocess``, ``builtins.eval``, ...) is
refused before it can be called.
"""

from __future__ import annotations

import contextlib
import io
import pickle
from pathlib import Path
from typing import Any

from whatnext.config import shown
from whatnext.errors import DataError

# numpy 2 renamed numpy.core to numpy._core; old pickles name the former.
_NUMPY = {
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
}
_PANDAS = {
    ("pandas", n) for n in (
        "DataFrame", "Series", "Index", "RangeIndex", "MultiIndex", "DatetimeIndex", "CategoricalIndex",
        "Categorical", "CategoricalDtype", "DatetimeTZDtype", "Int64Dtype", "Int32Dtype", "Float64Dtype",
        "BooleanDtype", "StringDtype", "NA", "NaT", "Timestamp", "Timedelta",
    )
} | {
    ("pandas.arrays", n) for n in (
        "ArrowStringArray", "DatetimeArray", "IntegerArray", "FloatingArray", "BooleanArray",
        "TimedeltaArray", "StringArray", "Categorical",
    )
} | {
    ("pandas.core.frame", "DataFrame"), ("pandas.core.series", "Series"),
    ("pandas.core.internals.managers", "BlockManager"), ("pandas.core.internals.managers", "SingleBlockManager"),
    ("pandas.core.internals.blocks", "new_block"), ("pandas.core.internals.blocks", "Block"),
    ("pandas.core.internals.blocks", "NumpyBlock"), ("pandas.core.internals.blocks", "ObjectBlock"),
    ("pandas.core.internals.blocks", "FloatBlock"), ("pandas.core.internals.blocks", "IntBlock"),
    ("pandas.core.internals.blocks", "DatetimeTZBlock"), ("pandas.core.internals.blocks", "ExtensionBlock"),
    ("pandas._libs.internals", "_unpickle_block"), ("pandas._libs.arrays", "__pyx_unpickle_NDArrayBacked"),
    ("pandas.core.indexes.base", "_new_Index"), ("pandas.core.indexes.base", "Index"),
    ("pandas.core.indexes.range", "RangeIndex"), ("pandas.core.indexes.multi", "MultiIndex"),
    ("pandas.core.indexes.datetimes", "_new_DatetimeIndex"), ("pandas.core.indexes.datetimes", "DatetimeIndex"),
    ("pandas.core.indexes.numeric", "Int64Index"), ("pandas.core.indexes.numeric", "Float64Index"),
    ("pandas.core.arrays.categorical", "Categorical"), ("pandas.core.dtypes.dtypes", "CategoricalDtype"),
    ("pandas.core.dtypes.dtypes", "DatetimeTZDtype"), ("pandas.core.arrays.datetimes", "DatetimeArray"),
    ("pandas._libs.tslibs.timestamps", "_unpickle_timestamp"), ("pandas._libs.tslibs.timestamps", "Timestamp"),
    ("pandas._libs.tslibs.timedeltas", "_timedelta_unpickle"), ("pandas._libs.missing", "NA"),
}
# the freq of a DatetimeIndex (pd.date_range): plain date-offset value classes
_OFFSETS = {
    ("pandas._libs.tslibs.offsets", n) for n in (
        "Day", "Hour", "Minute", "Second", "Milli", "Micro", "Nano", "Week", "BusinessDay",
        "MonthEnd", "MonthBegin", "BusinessMonthEnd", "BusinessMonthBegin", "QuarterEnd", "QuarterBegin",
        "YearEnd", "YearBegin",
    )
}
_PYARROW = {("pyarrow.lib", "_restore_array"), ("pyarrow.lib", "py_buffer"), ("pyarrow.lib", "type_for_alias"), ("pyarrow", "NA")}
_STDLIB = {
    ("builtins", "slice"), ("__builtin__", "slice"), ("builtins", "bytearray"), ("__builtin__", "bytearray"),
    ("builtins", "object"), ("__builtin__", "object"), ("builtins", "complex"), ("_codecs", "encode"),
    ("copyreg", "_reconstructor"), ("copy_reg", "_reconstructor"),
    ("datetime", "datetime"), ("datetime", "date"), ("datetime", "timedelta"), ("datetime", "timezone"),
    # partial is only as powerful as what it wraps, and what it wraps passes find_class too
    ("functools", "partial"),
}
ALLOWED: frozenset[tuple[str, str]] = frozenset(_NUMPY | _PANDAS | _OFFSETS | _PYARROW | _STDLIB)


class _Refused(Exception):
    """A pickle named a global outside :data:`ALLOWED`."""


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in ALLOWED:
            raise _Refused(f"{module}.{name}")
        if (module, name) == ("pyarrow.lib", "_restore_array"):
            return _restore_checked_array
        return super().find_class(module, name)


def _restore_checked_array(data: Any) -> Any:
    """pyarrow's array constructor of pickles, then a full validation of offsets and lengths.

    ``_restore_array`` builds an Arrow array from raw buffers without checking them: a damaged or
    hostile pickle with an offset past its buffer would make a later read touch memory out of bounds
    (a segmentation fault). ``validate(full=True)`` raises ArrowInvalid for such an array instead.
    """
    from pyarrow.lib import _restore_array

    arr = _restore_array(data)
    arr.validate(full=True)
    return arr


def _load_quietly(raw: bytes) -> Any:
    """Unpickle ``raw`` and let the unpickler and its stack go before returning or raising."""
    unpickler = _RestrictedUnpickler(io.BytesIO(raw))
    try:
        return unpickler.load()
    finally:
        del unpickler  # frees its stack and memo now, inside the caller's redirect


def load_dataframe(path: Path) -> Any:
    """Load a pickled pandas DataFrame from ``path``, refusing any pickle that names other code."""
    import pandas as pd

    try:
        raw = path.read_bytes()
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror})") from None
    try:
        # a damaged pickle can make CPython print an unraisable error while the half-built objects are freed
        # (e.g. "deallocated bytearray object has exported buffers"): keep stderr to the one-line error
        with contextlib.redirect_stderr(io.StringIO()):
            obj = _load_quietly(raw)
    except _Refused as e:
        raise DataError(
            f"{path}: refused to load: the pickle asks to run '{shown(e)}', which is not part of a pandas DataFrame "
            f"(a pickle can run code; re-save the data as Parquet or CSV)"
        ) from None
    except Exception as e:  # corrupt pickles raise many kinds of errors
        raise DataError(
            f"{path}: not a readable pickle ({type(e).__name__}: {shown(str(e)[:80])}); expected a pickled pandas DataFrame"
        ) from None
    if not isinstance(obj, pd.DataFrame):
        raise DataError(f"{path}: the pickle holds a {type(obj).__name__}, expected a pandas DataFrame")
    return obj
