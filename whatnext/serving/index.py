"""A nearest-neighbour index for answering one request at a time, exact and fast.

:class:`whatnext.search.ExactIndex` converts the whole item matrix to float64 on every call,
which is what a batch of a thousand queries can afford and a single request cannot (about
25 ms at 100,000 items). :class:`ServingIndex` keeps the same contract and the same answers
(the k nearest by the same float64 formula, ties to the smaller index) in two passes: float32
distances to every item pick the candidates that can be among the k nearest, allowing for
float32's rounding error, and only those are measured again in float64 and ranked.
"""

from __future__ import annotations

import numpy as np
import torch

from whatnext.search import Exclude, answer_arrays, mask_excluded, topk_smallest


class ServingIndex:
    """Exact Euclidean k-nearest-neighbour search, float32 screening then float64 ranking."""

    def __init__(self, vectors: np.ndarray) -> None:
        self.vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        self.vectors64 = self.vectors.astype(np.float64)
        self.sq_norms = (self.vectors64**2).sum(axis=1)
        self.sq_norms32 = self.sq_norms.astype(np.float32)
        self._screen = torch.from_numpy(self.vectors)  # torch's matrix-vector product: about 2x numpy's here
        # bound on |float32 distance - float64 distance|: rounding of the norms and the dot
        # product, each at most a few ulps of |q|^2 + 2|q||v| + |v|^2 (d terms summed)
        self.max_norm = float(np.sqrt(self.sq_norms.max())) if len(self.vectors) else 0.0
        self.eps = float(np.finfo(np.float32).eps) * (self.vectors.shape[1] + 4) if len(self.vectors) else 0.0

    def __len__(self) -> int:
        return len(self.vectors)

    def search(self, queries: np.ndarray, k: int, exclude: Exclude = None) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(indices, distances)``, each (len(queries), k), nearest first; -1 / inf padded.

        A batch is screened with one matrix product (the item matrix is read once for all of its queries)."""
        queries, out_i, out_d = answer_arrays(queries, k)
        n, m = len(self.vectors), len(queries)
        if n == 0:
            return out_i, out_d
        rows = max(1, (64 << 20) // (4 * n))
        for s in range(0, m, rows):
            block = queries[s : s + rows]
            with torch.no_grad():
                q = torch.from_numpy(np.ascontiguousarray(block))
                dots = (torch.mv(self._screen, q[0])[None, :] if len(block) == 1 else q @ self._screen.T).numpy()
            d32 = self.sq_norms32[None, :] - 2.0 * dots  # |q|^2 is the same for every item: left out of the screening
            ex = None if exclude is None else exclude[s : s + rows]
            if ex is not None:
                mask_excluded(d32, ex)
            for r in range(len(block)):
                idx, dist = self._finish(block[r], d32[r], k, None if ex is None else np.asarray(ex[r]))
                out_i[s + r, : len(idx)] = idx
                out_d[s + r, : len(idx)] = dist
        out_i[~np.isfinite(out_d)] = -1
        return out_i, np.sqrt(out_d)

    def _finish(self, q: np.ndarray, d32: np.ndarray, k: int, exclude: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """The k nearest of one query from its screened float32 distances: the candidates that float32's
        rounding cannot rule out, measured again in float64, ties to the smaller index."""
        n = len(self.vectors)
        kk = min(k, n)
        if kk * 4 >= n:
            cand = np.arange(n)
        else:
            kth = np.partition(d32, kk - 1)[kk - 1]
            if not np.isfinite(kth):
                cand = np.arange(n)
            else:
                qn = float(np.sqrt(float(q.astype(np.float64) @ q.astype(np.float64))))
                slack = 2.0 * self.eps * (qn + self.max_norm) ** 2 + 1e-30
                cand = np.flatnonzero(d32 <= kth + slack)
        q64 = q.astype(np.float64)
        d = (q64 @ q64) - 2.0 * (self.vectors64[cand] @ q64) + self.sq_norms[cand]
        d = np.maximum(d, 0.0)
        if exclude is not None and len(exclude):
            d[np.isin(cand, exclude)] = np.inf
        order, vals = topk_smallest(d[None, :], kk)
        return cand[order[0]], vals[0]
