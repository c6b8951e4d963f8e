"""Nearest-neighbour search behind one small interface.

:class:`NeighbourIndex` is the contract: build over an (n, d) float32 matrix, then
``search(queries, k, exclude)`` returns the k nearest items per query by Euclidean
distance. :class:`ExactIndex` computes it exactly with numpy in query blocks; an ANN index
(faiss) can implement the same protocol for million-item catalogues.

Results are deterministic: ties in distance are broken by the smaller item index. Where
fewer than k items remain (k larger than the catalogue, or too many excluded), the rows
are padded with index -1 and distance inf.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

Exclude = Sequence[np.ndarray] | None


class NeighbourIndex(Protocol):
    """What recommend, eval and State.produce need from a nearest-neighbour index."""

    def __len__(self) -> int: ...

    def search(self, queries: np.ndarray, k: int, exclude: Exclude = None) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(indices, distances)``, each (len(queries), k), nearest first."""
        ...


class ExactIndex:
    """Exact Euclidean k-nearest-neighbour search with numpy, blocked to bound memory."""

    def __init__(self, vectors: np.ndarray, block_bytes: int = 64 << 20) -> None:
        self.vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        self.sq_norms = (self.vectors.astype(np.float64) ** 2).sum(axis=1)
        self.block_bytes = block_bytes

    def __len__(self) -> int:
        return len(self.vectors)

    def distances(self, queries: np.ndarray) -> np.ndarray:
        """Squared Euclidean distances (len(queries), n), in float64 so ties are exact."""
        q = np.asarray(queries, dtype=np.float64)
        d = (q**2).sum(1)[:, None] - 2.0 * q @ self.vectors.T.astype(np.float64) + self.sq_norms[None, :]
        return np.maximum(d, 0.0)

    def search(self, queries: np.ndarray, k: int, exclude: Exclude = None) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` nearest items for every query, skipping ``exclude[i]`` for query i."""
        queries = np.atleast_2d(np.asarray(queries, dtype=np.float32))
        n, m = len(self.vectors), len(queries)
        if k < 1:
            raise ValueError("k must be >= 1")
        out_i = np.full((m, k), -1, dtype=np.int64)
        out_d = np.full((m, k), np.inf, dtype=np.float64)
        if n == 0 or m == 0:
            return out_i, out_d
        rows = max(1, self.block_bytes // (8 * n))
        for s in range(0, m, rows):
            d = self.distances(queries[s : s + rows])
            if exclude is not None:
                mask_excluded(d, exclude[s : s + rows])
            idx, dist = topk_smallest(d, k)
            out_i[s : s + rows, : idx.shape[1]] = idx
            out_d[s : s + rows, : idx.shape[1]] = dist
        out_i[~np.isfinite(out_d)] = -1
        return out_i, np.sqrt(out_d)


def mask_excluded(scores: np.ndarray, exclude: Sequence[np.ndarray], value: float = np.inf) -> None:
    """Set ``scores[i, exclude[i]] = value`` in place for every row, without a loop over items."""
    lens = np.fromiter((len(e) for e in exclude), dtype=np.int64, count=len(exclude))
    if lens.sum() == 0:
        return
    rows = np.repeat(np.arange(len(exclude)), lens)
    cols = np.concatenate([np.asarray(e, dtype=np.int64) for e in exclude])
    keep = (cols >= 0) & (cols < scores.shape[1])
    scores[rows[keep], cols[keep]] = value


def topk_smallest(d: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices and values of the k smallest entries per row; ties go to the smaller index."""
    m, n = d.shape
    k = min(k, n)
    if k * 4 >= n or n <= 2048:
        order = np.argsort(d, axis=1, kind="stable")[:, :k]
        return order, np.take_along_axis(d, order, axis=1)
    kth = np.partition(d, k - 1, axis=1)[:, k - 1 : k]
    cand = d <= kth
    ties = cand.sum(axis=1) > k  # rows where equal values straddle the k-th place
    order = np.empty((m, k), dtype=np.int64)
    plain = ~ties
    if plain.any():
        # np.nonzero walks rows in order and columns ascending: exactly k per row here
        order[plain] = np.nonzero(cand[plain])[1].reshape(-1, k)
        vals = np.take_along_axis(d[plain], order[plain], axis=1)
        resort = np.argsort(vals, axis=1, kind="stable")
        order[plain] = np.take_along_axis(order[plain], resort, axis=1)
    if ties.any():
        order[ties] = np.argsort(d[ties], axis=1, kind="stable")[:, :k]
    return order, np.take_along_axis(d, order, axis=1)


def topk_largest(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices and values of the k largest entries per row; ties go to the smaller index."""
    idx, neg = topk_smallest(-scores, k)
    return idx, -neg
