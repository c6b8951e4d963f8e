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


def _time(value: float, kind: str) -> str:
    if kind == "datetime":
        return dt.datetime.fromtimestamp(value / 1e9, dt.UTC).isoformat(timespec="seconds")
    if 1e8 <= value <= 4e9:  # plausibly unix seconds
        return dt.datetime.fromtimestamp(value, dt.UTC).isoformat(timespec="seconds")
    return f"{value:g}"


def describe(ds: Dataset) -> dict[str, Any]:
    """Users, items, events, time span, history lengths, item concentration, features, quality."""
    h, cat, rep = ds.histories, ds.catalogue, ds.report
    lengths = h.lengths
    per_item = np.bincount(h.items, minlength=len(cat))
    kind = rep.get("time_kind", "number")
    t0, t1 = (float(h.times.min()), float(h.times.max())) if len(h.times) else (0.0, 0.0)
    span = (t1 - t0) / (1e9 if kind == "datetime" else 1.0)
    is_seconds = kind == "datetime" or 1e8 <= t0 <= 4e9
    features = []
    if cat.features is not None:
        orig = cat.original_units(np.arange(len(cat)))
        missing = rep.get("missing_features", {})
        for j, name in enumerate(cat.feature_names):
            features.append({
                "name": name, "min": float(orig[:, j].min()), "mean": float(orig[:, j].mean()),
                "max": float(orig[:, j].max()), "missing": int(missing.get(name, 0)),
            })
    return {
        "source": ds.source,
        "users": len(h),
        "items": len(cat),
        "items_played": int((per_item > 0).sum()),
        "events": int(len(h.items)),
        "time": {
            "first": _time(t0, kind), "last": _time(t1, kind),
            "span_days": round(span / 86400, 2) if is_seconds else None,
            "span": span, "column": rep.get("time_column"),
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
