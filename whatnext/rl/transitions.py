"""Item-to-item transition statistics of the training part, as features for the critic.

``count(a -> b)`` is how often item b directly followed item a in one user's training events
(held-out events never count). The critic sees, for each candidate c after a history ending
in a: ``log1p(count(a -> c))`` and ``count(a -> c) / count(a -> *)``; the re-ranking slate also
takes a's most frequent successors. Stored as sorted pair codes, looked up with searchsorted:
vectorised over any (B, M) batch of pairs.
"""

from __future__ import annotations

import numpy as np

from whatnext.data import Dataset

#: how many extra per-candidate inputs the critic's head gets: seen flag + these two
N_FEATURES = 2


class Transitions:
    """Counts of consecutive (previous, next) training events."""

    def __init__(self, dataset: Dataset) -> None:
        h = dataset.histories
        self.n = len(dataset.catalogue)
        pos = h.train_positions()  # t >= 1 inside the training part, so t - 1 is training too
        codes = h.items[pos - 1].astype(np.int64) * self.n + h.items[pos]
        self.codes, counts = np.unique(codes, return_counts=True)
        self.counts = counts.astype(np.float64)
        rows = self.codes // self.n
        self.indptr = np.searchsorted(rows, np.arange(self.n + 1), side="left")
        self.row_total = np.bincount(rows, weights=self.counts, minlength=self.n)

    def count(self, prev: np.ndarray, nxt: np.ndarray) -> np.ndarray:
        """count(prev -> nxt) for broadcastable index arrays (-1 anywhere gives 0)."""
        prev, nxt = np.broadcast_arrays(np.asarray(prev, np.int64), np.asarray(nxt, np.int64))
        code = prev * self.n + nxt
        if len(self.codes) == 0:
            return np.zeros(code.shape)
        at = np.minimum(np.searchsorted(self.codes, code), len(self.codes) - 1)
        hit = (self.codes[at] == code) & (prev >= 0) & (nxt >= 0)
        return np.where(hit, self.counts[at], 0.0)

    def features(self, prev: np.ndarray, cand: np.ndarray) -> np.ndarray:
        """(B, M, 2): log1p(count) and count / row total for candidates ``cand`` after items ``prev`` (B,)."""
        c = self.count(prev[:, None], cand)
        total = self.row_total[np.maximum(prev, 0)][:, None]
        return np.stack([np.log1p(c), np.where(total > 0, c / np.maximum(total, 1.0), 0.0)], axis=-1)

    def successors(self, prev: np.ndarray, k: int) -> np.ndarray:
        """The k most frequent successors of each item in ``prev`` (B,), -1 padded; ties to the smaller index."""
        out = np.full((len(prev), k), -1, dtype=np.int64)
        start, end = self.indptr[np.maximum(prev, 0)], self.indptr[np.maximum(prev, 0) + 1]
        width = int((end - start).max()) if len(prev) else 0
        if width == 0:
            return out
        idx = start[:, None] + np.arange(width)[None, :]
        valid = (idx < end[:, None]) & (prev[:, None] >= 0)
        idx = np.minimum(idx, len(self.codes) - 1)
        cnt = np.where(valid, self.counts[idx], -1.0)
        order = np.argsort(-cnt, axis=1, kind="stable")[:, :k]
        cols = np.where(np.take_along_axis(valid, order, 1), self.codes[np.take_along_axis(idx, order, 1)] % self.n, -1)
        out[:, : cols.shape[1]] = cols
        return out
