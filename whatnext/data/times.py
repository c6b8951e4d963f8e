"""Event times: one reading for the whole column, never a guess value by value.

A date column is read with a single format chosen from *all* its values: ISO 8601 (with or
without a time and an offset), or day/month/year and month/day/year with ``/``, ``-`` or ``.``
between the parts (with or without a time). Where both day-first and month-first fit every
value the column is ambiguous and loading stops, asking for ``data.time_format``: reordering a
history silently is worse than an error. Offsets and time zones are converted to UTC. Numbers
are kept as they are (only their order matters); their unit (unix seconds, milliseconds,
microseconds) is recognised for ``inspect-data``.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd

from whatnext.config import shown
from whatnext.errors import DataError

#: day.month.year or month/day/year (two or four digit year), an optional time and offset
_DMY = (r"^(?P<a>\d{1,2})(?P<sep>[/.-])(?P<b>\d{1,2})(?P=sep)(?P<year>\d{4}|\d{2})"
        r"(?:[ T]+(?P<hour>\d{1,2}):(?P<minute>\d{2})(?::(?P<second>\d{2})(?P<frac>\.\d+)?)?(?:\s*(?P<ampm>[AaPp]\.?[Mm]\.?))?)?"
        r"\s*(?P<offset>Z|UTC|[+-]\d{2}:?\d{2})?$")
#: year/month/day with / or . (ISO's year-month-day with - goes to pandas' ISO 8601 reader)
_YMD = (r"^(?P<year>\d{4})(?P<sep>[/.])(?P<b>\d{1,2})(?P=sep)(?P<a>\d{1,2})"
        r"(?:[ T]+(?P<hour>\d{1,2}):(?P<minute>\d{2})(?::(?P<second>\d{2})(?P<frac>\.\d+)?)?(?:\s*(?P<ampm>[AaPp]\.?[Mm]\.?))?)?"
        r"\s*(?P<offset>Z|UTC|[+-]\d{2}:?\d{2})?$")
_ISO = r"^\d{4}-\d{1,2}-\d{1,2}(?:[ T]\d{1,2}(?::\d{2}(?::\d{2}(?:[.,]\d+)?)?)?)?\s*(?:Z|UTC|[+-]\d{2}(?::?\d{2})?)?$"

#: magnitude of unix timestamps in each unit for dates between 1973 and 2286
UNIX_UNITS = (("seconds", 1e8, 1e10), ("milliseconds", 1e11, 1e13), ("microseconds", 1e14, 1e16),
              ("nanoseconds", 1e17, 1e19))


def unix_unit(values: np.ndarray, source: str = "data", name: str = "timestamp") -> str | None:
    """The unit of unix timestamps (seconds, milliseconds, ...) when every value fits one; else None.

    DataError when every value is a unix time but in different units (seconds beside milliseconds):
    ordering them as plain numbers would put every second-stamped event first.
    """
    v = values[np.isfinite(values)]
    if not len(v):
        return None
    lo, hi = float(v.min()), float(v.max())
    for unit, a, b in UNIX_UNITS:
        if a <= lo and hi < b:
            return unit
    found = [(unit, v[(v >= a) & (v < b)]) for unit, a, b in UNIX_UNITS]
    found = [(unit, x) for unit, x in found if len(x)]
    if len(found) > 1 and sum(len(x) for _, x in found) == len(v):
        (u1, x1), (u2, x2) = found[:2]
        raise DataError(f"{source}: column '{shown(name)}' mixes unix {u1} ({x1[0]:.0f}) and unix {u2} ({x2[0]:.0f}); "
                        f"write every time in one unit")
    return None


def parse_times(col: pd.Series, source: str, name: str, time_format: str = "") -> tuple[np.ndarray, dict[str, Any]]:
    """Event times as float64 and what they are: ``{"kind": "number"|"datetime", "unit"|"format": ...}``.

    Numbers stay numbers; dates become nanoseconds since 1970 UTC.
    """
    if pd.api.types.is_bool_dtype(col):
        raise DataError(f"{source}: column '{shown(name)}' holds true/false values, expected numbers or dates "
                        f"(set data.time_col or data.order_col)")
    if pd.api.types.is_numeric_dtype(col):
        values = col.to_numpy(dtype=np.float64)
        return values, {"kind": "number", "unit": unix_unit(values, source, name)}
    if pd.api.types.is_datetime64_any_dtype(col):
        if getattr(col.dtype, "tz", None) is not None:
            col = col.dt.tz_convert("UTC").dt.tz_localize(None)
        return _nanoseconds(col), {"kind": "datetime", "format": "datetime values"}
    text = col.astype(str).str.strip()
    if time_format:
        return _with_format(text, source, name, time_format)
    num = pd.to_numeric(text, errors="coerce")
    if num.notna().all():  # numbers written as text (e.g. a Parquet string column)
        values = num.to_numpy(dtype=np.float64)
        return values, {"kind": "number", "unit": unix_unit(values, source, name)}
    if num.notna().any():  # numbers with a stray word: name the word
        word = text[num.isna()].iloc[0]
        if any(re.match(p, word) for p in (_ISO, _DMY, _YMD)):
            raise DataError(f"{source}: column '{shown(name)}' mixes numbers ({shown(text[num.notna()].iloc[0])}) and "
                            f"dates ({shown(repr(word))}); write every time in one form")
        raise DataError(f"{source}: column '{shown(name)}' holds {shown(repr(text[num.isna()].iloc[0]))}, expected numbers "
                        f"or dates (set data.time_col or data.order_col)")
    codes, uniq_values = pd.factorize(text)
    uniq = pd.Series(uniq_values, dtype=object)
    if uniq.str.match(_ISO).all():
        try:
            parsed = pd.to_datetime(text, format="ISO8601", utc=True)
        except (ValueError, TypeError):
            _raise_bad(text, source, name, "an ISO 8601 date (YYYY-MM-DD[ HH:MM[:SS]][offset])")
        return _nanoseconds(parsed.dt.tz_localize(None)), {"kind": "datetime", "format": "ISO 8601"}
    for pattern, year_first in ((_DMY, False), (_YMD, True)):
        parts = uniq.str.extract(pattern)
        if parts["a"].notna().all():
            fmt, dates = _day_month(parts, uniq, source, name, year_first)
            return _nanoseconds(pd.Series(dates.to_numpy()[codes])), {"kind": "datetime", "format": fmt}
    # any other shape (e.g. 'Mar 31 2024'): one format guessed from the first value, then every value read with it
    from pandas.tseries.api import guess_datetime_format

    fmt = guess_datetime_format(str(uniq.iloc[0]))
    if fmt is None:
        raise DataError(f"{source}: column '{shown(name)}' holds {shown(repr(uniq.iloc[0]))}, expected numbers or dates "
                        f"(set data.time_col or data.order_col, or data.time_format for dates)")
    parsed = pd.to_datetime(text, format=fmt, errors="coerce", utc=True)
    if parsed.isna().any():
        bad = text[parsed.isna()].iloc[0]
        raise DataError(f"{source}: column '{shown(name)}' holds {shown(repr(bad))}, expected numbers or dates like "
                        f"{shown(repr(uniq.iloc[0]))} ({fmt}) as in the rest of the column; fix it or set data.time_format")
    return _nanoseconds(parsed.dt.tz_localize(None)), {"kind": "datetime", "format": fmt}


def _day_month(parts: pd.DataFrame, uniq: pd.Series, source: str, name: str,
               year_first: bool) -> tuple[str, pd.Series]:
    """Decide day-first or month-first from every value at once, then build the dates."""
    a, b = parts["a"].astype(int), parts["b"].astype(int)
    sep = parts["sep"].iloc[0]
    if (parts["sep"] != sep).any():
        other = uniq[parts["sep"] != sep].iloc[0]
        raise DataError(f"{source}: column '{shown(name)}' mixes date separators ({shown(repr(uniq.iloc[0]))} and "
                        f"{shown(repr(other))}); write every date the same way or set data.time_format")
    if year_first:
        day_first, month_first = True, False  # year/month/day: the only common order (a is the day)
    else:
        day_first = bool((a <= 31).all() and (b <= 12).all())
        month_first = bool((a <= 12).all() and (b <= 31).all())
        if day_first and month_first:
            example = uniq.iloc[0]
            raise DataError(
                f"{source}: column '{shown(name)}' holds dates like {shown(repr(example))} that read as day/month and as "
                f"month/day alike; set data.time_format to %d{sep}%m{sep}%Y or %m{sep}%d{sep}%Y (add %H:%M for times)"
            )
        if not (day_first or month_first):
            bad = uniq[((a > 12) & (b > 12)) | (a > 31) | (b > 31)]
            if len(bad):
                raise DataError(f"{source}: column '{shown(name)}' holds {shown(repr(bad.iloc[0]))}, which fits neither "
                                f"day/month/year nor month/day/year; fix it or set data.time_format")
            raise DataError(f"{source}: column '{shown(name)}' mixes day/month dates ({shown(repr(uniq[a > 12].iloc[0]))}) "
                            f"and month/day dates ({shown(repr(uniq[b > 12].iloc[0]))}); write every date the same way "
                            f"or set data.time_format")
    day, month = (a, b) if day_first else (b, a)
    year = parts["year"].astype(int)
    year = year.where(parts["year"].str.len() == 4, 2000 + year.where(year < 70, year - 100))
    frac = parts["frac"].fillna(".0").str[1:].str.ljust(9, "0").str[:9].astype(np.int64)
    hour = parts["hour"].fillna(0).astype(int)
    ampm = parts["ampm"].fillna("").str.lower().str[:1]
    if (ampm != "").any():  # 12-hour clock: 12 AM is 0h, 12 PM is 12h; an hour of 13 with PM is not a time
        bad12 = (ampm != "") & ((hour < 1) | (hour > 12))
        hour = hour.where(ampm == "", hour % 12 + np.where(ampm == "p", 12, 0)).where(~bad12, 99)
    stamp = pd.to_datetime(pd.DataFrame({
        "year": year, "month": month, "day": day, "hour": hour,
        "minute": parts["minute"].fillna(0).astype(int), "second": parts["second"].fillna(0).astype(int),
    }), errors="coerce") + pd.to_timedelta(frac, unit="ns")
    minute, second = parts["minute"].fillna(0).astype(int), parts["second"].fillna(0).astype(int)
    stamp = stamp.where((hour <= 23) & (minute <= 59) & (second <= 59))  # to_datetime would carry 25:00 into the next day
    if stamp.isna().any():
        bad = uniq[stamp.isna().to_numpy()].iloc[0]
        order = "year/month/day" if year_first else "day/month/year" if day_first else "month/day/year"
        raise DataError(f"{source}: column '{shown(name)}' holds {shown(repr(bad))}, not a date when read as {order} "
                        f"like the rest of the column; fix it or set data.time_format")
    offset = parts["offset"].fillna("Z").replace("UTC", "Z")
    minutes = pd.Series(0, index=parts.index)
    signed = offset != "Z"
    if signed.any():
        o = offset[signed].str.replace(":", "")
        sign = np.where(o.str[0] == "-", -1, 1)
        minutes[signed] = sign * (o.str[1:3].astype(int) * 60 + o.str[3:5].astype(int))
    stamp = stamp - pd.to_timedelta(minutes, unit="min")  # local time minus its offset = UTC
    order = "%Y{s}%m{s}%d" if year_first else "%d{s}%m{s}%Y" if day_first else "%m{s}%d{s}%Y"
    return order.format(s=sep), stamp


def _with_format(text: pd.Series, source: str, name: str, time_format: str) -> tuple[np.ndarray, dict[str, Any]]:
    parsed = pd.to_datetime(text, format=time_format, errors="coerce", utc=True)
    if parsed.isna().any():
        row = int(np.flatnonzero(parsed.isna().to_numpy())[0])
        raise DataError(f"{source}: row {row + 1}: column '{shown(name)}' holds {shown(repr(text.iloc[row]))}, which does "
                        f"not match data.time_format {time_format!r}; fix the value or the format (strftime, e.g. %d/%m/%Y)")
    return _nanoseconds(parsed.dt.tz_localize(None)), {"kind": "datetime", "format": time_format}


def _nanoseconds(col: pd.Series) -> np.ndarray:
    return col.to_numpy().astype("datetime64[ns]").astype(np.int64).astype(np.float64)


def _raise_bad(text: pd.Series, source: str, name: str, expected: str) -> None:
    bad = text[pd.to_datetime(text, format="ISO8601", errors="coerce", utc=True).isna()]
    value = bad.iloc[0] if len(bad) else text.iloc[0]
    raise DataError(f"{source}: column '{shown(name)}' holds {shown(repr(value))}, expected {expected} like the "
                    f"rest of the column; fix it or set data.time_format")
