"""Logged rewards: what the listener did with each play, read from ``data.reward_col``.

A reward column may hold numbers (a rating, listening seconds), true/false (played in full) or
text mapped by ``data.reward_map`` (``{skip = -1, full = 1}``). Values are read in three steps:

1. **map**: a value whose text is a key of ``data.reward_map`` becomes that key's number. Keys
   are compared as text, ignoring case and surrounding spaces; true/false read as ``true`` /
   ``false``, whole numbers without a decimal point (``1.0`` matches the key ``1``), an empty
   cell as the key ``""``.
2. **read**: every other value must be a number (true/false count 1/0). Text that is not a
   number, an empty cell (NaN) and an infinite number are a DataError naming the file, the
   column, the row and the value.
3. **transform** (``data.reward_transform``), with statistics over *training* events only so
   that held-out plays never shape their own reward:

   - ``none``: the values as mapped;
   - ``center``: minus the training mean (ratings 1-5 with mean 3.5 become -2.5..1.5: a rating
     above the mean is a positive reward);
   - ``standardize``: minus the training mean, divided by the training standard deviation
     (1 when the values are constant).

Rewards are event attributes, like times: they never enter the catalogue fingerprint (a
checkpoint's weights depend on the items, not on what listeners did with them).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from whatnext.config import DataConfig, shown
from whatnext.errors import DataError

#: data.reward_transform choices (config.CHOICES lists the same names)
TRANSFORMS = ("none", "center", "standardize")


def _one_key(v: object) -> str:
    """A value as the text a reward_map key is compared with: lower case, trimmed, true/false, 1.0 as 1."""
    if isinstance(v, (bool, np.bool_)):
        return "true" if v else "false"
    if isinstance(v, (float, np.floating)) and np.isfinite(v) and float(v).is_integer():
        return str(int(v))
    return str(v).strip().lower()


def _one_number(v: object) -> float:
    """A value as a number: true/false as 1/0, numbers and numeric text as themselves, anything else NaN."""
    if isinstance(v, (bool, np.bool_)):
        return float(v)
    try:
        return float(v)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return float("nan")


def read_rewards(events: pd.DataFrame, cfg: DataConfig, source: str) -> np.ndarray:
    """The raw (mapped, untransformed) reward of every event row, float64, in file order.

    Each distinct value is looked up once (``pd.factorize``), so a long log costs no loop over rows.
    """
    col = cfg.reward_col
    s = events[col].reset_index(drop=True)
    table = {str(k).strip().lower(): float(v) for k, v in cfg.reward_map.items()}
    if not table and (pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s)):
        out = s.to_numpy(dtype=np.float64, na_value=np.nan)
    else:
        codes, uniq = pd.factorize(s, use_na_sentinel=True)
        values = np.array([table[k] if (k := _one_key(v)) in table else _one_number(v) for v in uniq] + [table.get("", np.nan)],
                          dtype=np.float64)  # the last entry: empty cells (code -1)
        out = values[codes]
    bad = ~np.isfinite(out)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raw = s.iloc[row]
        n = int(bad.sum())
        missing = pd.isna(raw) if not isinstance(raw, str) else not raw.strip()
        what = "is empty" if missing else f"holds '{shown(str(raw)[:60])}'"
        fix = ("fill or drop those rows, or map empty cells with data.reward_map (key \"\")" if missing
               else f"add it to data.reward_map (e.g. reward_map = {{\"{shown(str(raw)[:30])}\" = 1}}) or fix the value")
        raise DataError(
            f"{source}: reward column '{shown(col)}' (data.reward_col) row {row + 1} {what}, expected a number, "
            f"true/false or a value of data.reward_map ({n} such rows); {fix}"
        )
    return out


def transform(raw: np.ndarray, train: np.ndarray, how: str) -> np.ndarray:
    """``raw`` rewards transformed by ``how`` (see the module doc) with training-event statistics; float32."""
    if how not in TRANSFORMS:
        raise ValueError(how)
    if how == "none":
        return raw.astype(np.float32)
    ref = raw[train] if train.any() else raw
    mean = float(ref.mean()) if len(ref) else 0.0
    out = raw - mean
    if how == "standardize":
        std = float(ref.std()) if len(ref) else 0.0
        out = out / (std if std > 0 else 1.0)
    return out.astype(np.float32)


def describe(rewards: np.ndarray | None, col: str, how: str, max_values: int = 10) -> dict | None:
    """What ``inspect-data`` says about the reward column: count, mean, share positive, distinct values."""
    if rewards is None:
        return None
    values, counts = np.unique(rewards, return_counts=True)
    top = np.argsort(-counts, kind="stable")[:max_values]
    return {
        "column": col,
        "transform": how,
        "count": len(rewards),
        "mean": float(rewards.mean()) if len(rewards) else 0.0,
        "min": float(rewards.min()) if len(rewards) else 0.0,
        "max": float(rewards.max()) if len(rewards) else 0.0,
        "positive_share": float((rewards > 0).mean()) if len(rewards) else 0.0,
        "distinct": len(values),
        "values": {f"{float(values[i]):g}": int(counts[i]) for i in top},
    }
