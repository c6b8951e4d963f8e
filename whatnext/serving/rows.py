"""From ranked item indices to the rows a person or a script reads: the one place that formats a
recommendation (``whatnext recommend``, ``engine.recommend``, the HTTP answers and ``--all-users``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def rank(agent: Any, hists: Sequence[np.ndarray], k: int, exclude: Sequence[np.ndarray] | None) -> tuple[Any, Any, Any]:
    """Top-k item indices, distances to the proto-action and the score each list is ranked by
    (actor logit + re-rank weight * log critic value: non-increasing down a plain list), in blocks."""
    cfg = agent.cfg
    pool = max(k, cfg.recommend.diversity_pool if cfg.recommend.diversity > 0 else 0)
    seen = exclude is None
    weight = agent.rerank_weight_seen if seen else agent.rerank_weight
    parts = []
    for s in range(0, len(hists), 1024):
        scored = agent.score_candidates(hists[s : s + 1024], None if exclude is None else exclude[s : s + 1024], pool)
        items, dist = agent.choose(scored, k, seen=seen)
        col = (scored.items[:, None, :] == items[:, :, None]).argmax(-1)  # each chosen item's place in the slate
        score = np.where(items >= 0, np.take_along_axis(scored.score(weight), col, 1), -np.inf)
        parts.append((items, dist, score))
    if not parts:
        return np.zeros((0, k), np.int64), np.zeros((0, k)), np.zeros((0, k))
    return tuple(np.concatenate([p[j] for p in parts]) for j in range(3))  # type: ignore[return-value]


def as_written(values: Any) -> list[list[float]]:
    """Feature values as in the data: each float32 by the shortest decimal that reads back as the same
    float32 (90.4, not 90.4000015258789)."""
    a = np.asarray(values, dtype=np.float32)
    return [[float(str(x)) for x in row] for row in a]


def display_columns(cat: Any) -> dict[str, np.ndarray]:
    """The catalogue's display columns as plain arrays (reading a text column out of pandas costs milliseconds:
    a server does it once)."""
    return {col: np.asarray(cat.display[col].to_numpy(dtype=object)) for col in cat.display.columns}


def result_rows(cat: Any, idx: np.ndarray, dist: np.ndarray, score: np.ndarray,
                display: dict[str, np.ndarray] | None = None) -> list[dict[str, Any]]:
    """One list's rows: rank, item_id, score, distance, the display columns, attributes as written."""
    keep = idx >= 0
    items = idx[keep]
    attrs = as_written(cat.original_units(items))
    display = display_columns(cat) if display is None else display
    rows = []
    for r, (i, sc, d) in enumerate(zip(items.tolist(), score[keep].tolist(), dist[keep].tolist()), 1):
        row: dict[str, Any] = {"rank": r, "item_id": str(cat.ids[i]), "score": float(sc), "distance": float(d)}
        for col, values in display.items():
            row[col] = str(values[i])
        row["attributes"] = dict(zip(cat.feature_names, attrs[r - 1]))
        rows.append(row)
    return rows
