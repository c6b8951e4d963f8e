"""What ``whatnext inspect-data`` reports about a dataset, as one plain dict of numbers."""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np

from whatnext.data.dataset import Dataset


def gini(counts: np.ndarray) -> float:
    """Gini coefficient of non-negative counts (0 = all equal, towards 1 = concentrated)."""
    x = np.sort(np.asarray(counts, dtype=np.float64))
    n, total = len(x), x.sum()
    if n == 0 or total == 0:
        return 0.0
    return float(2.0 * (np.arange(1, n + 1) * x).sum() / (n * total) - (n + 1) / n)


def top_share(counts: np.ndarray, fraction: float = 0.01) -> float:
    """Share of all events that go to the top ``fraction`` of items (at least one item)."""
    x = np.sort(np.asarray(counts, dtype=np.float64))[::-1]
    if x.sum() == 0:
        return 0.0
    top = max(1, int(round(len(x) * fraction)))
    return float(x[:top].sum() / x.sum())


#: seconds per unit of unix timestamps (see whatnext.data.times.unix_unit)
_PER_SECOND = {"seconds": 1.0, "milliseconds": 1e3, "microseconds": 1e6, "nanoseconds": 1e9}


def _time(value: float, kind: str, unit: str | None) -> str:
    if kind == "datetime":
        return dt.datetime.fromtimestamp(value / 1e9, dt.UTC).isoformat(timespec="seconds")
    if unit in _PER_SECOND:
        return dt.datetime.fromtimestamp(value / _PER_SECOND[unit], dt.UTC).isoformat(timespec="seconds")
    return f"{value:g}"


def describe(ds: Dataset) -> dict[str, Any]:
    """Users, items, events, time span, history lengths, item concentration, features, quality."""
    h, cat, rep = ds.histories, ds.catalogue, ds.report
    lengths = h.lengths
    per_item = np.bincount(h.items, minlength=len(cat))
    kind, unit = rep.get("time_kind", "number"), rep.get("time_unit")
    t0, t1 = (float(h.times.min()), float(h.times.max())) if len(h.times) else (0.0, 0.0)
    span = (t1 - t0) / (1e9 if kind == "datetime" else _PER_SECOND.get(unit or "", 1.0))
    is_seconds = kind == "datetime" or unit is not None
    features = []
    if cat.features is not None:
        orig = cat.original_units(np.arange(len(cat)))
        missing = rep.get("missing_features", {})
        for j, name in enumerate(cat.feature_names):
            features.append({
                "name": name, "min": float(orig[:, j].min()), "mean": float(orig[:, j].mean()),
                "max": float(orig[:, j].max()), "missing": int(missing.get(name, 0)),
            })
    out = {
        "source": ds.source,
        "users": len(h),
        "items": len(cat),
        "items_played": int((per_item > 0).sum()),
        "events": int(len(h.items)),
        "time": {
            "first": _time(t0, kind, unit), "last": _time(t1, kind, unit),
            "span_days": round(span / 86400, 2) if is_seconds else None,
            "span": span, "column": rep.get("time_column"),
            # numbers: unix seconds/milliseconds/microseconds/nanoseconds, or None (plain order numbers)
            "unit": unit if kind == "number" else None,
            "format": rep.get("time_format") if kind == "datetime" else None,
        },
        "history_length": {
            "min": int(lengths.min()), "median": float(np.median(lengths)),
            "p90": float(np.percentile(lengths, 90)), "max": int(lengths.max()),
            "mean": float(lengths.mean()),
        },
        "events_per_item": {
            "top1pct_share": top_share(per_item), "gini": gini(per_item),
            "never_played": int((per_item == 0).sum()), "max": int(per_item.max()),
        },
        "features": features,
        "no_features": cat.features is None,
        # columns that could have been item features but are not, each with the reason
        "unused_columns": list(rep.get("unused_columns", [])),
        "reading": list(rep.get("notes", [])),
        "one_user": bool(rep.get("one_user", False)),
        "duplicate_events": rep["duplicate_events"],
        "single_event_users": rep["single_event_users"],
        "single_event_user_ids": rep["single_event_user_ids"],
        "split": {
            "train_events": int(h.train_len.sum()),
            "valid_targets": int((lengths >= 3).sum()),
            "test_targets": int((lengths >= 2).sum()),
            "train_positions": int(np.maximum(h.train_len - 1, 0).sum()),
        },
        "fingerprint": cat.fingerprint(),
    }
    if rep.get("rewards") is not None:  # data.reward_col: count, mean, share positive, distinct values
        out["rewards"] = rep["rewards"]
    return out
