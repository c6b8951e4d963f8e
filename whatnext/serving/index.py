"""A nearest-neighbour index for answering one request at a time, exact and fast.

:class:`whatnext.search.ExactIndex` converts the whole item matrix to float64 on every call,
which is what a batch of a thousand queries can afford and a single request cannot (about
25 ms at 100,000 items). :class:`ServingIndex` keeps the same contract and the same answers
(the k nearest by the same float64 formula, ties to the smaller index) in two passes: float32
distances to every item pick the candidates that can be among the k nearest, allowing for
float32's rounding error, and only those are measured again in float64 and ranked.

Above a few thousand items the item matrix is faiss's flat index (:class:`whatnext.search.FaissIndex`),
and reading it is most of a request's search: at 100,000 x 72 float32 the scan moves 29 MB.
:class:`HalfScreen` scans a 16-bit copy instead (half the bytes, about half the time): bfloat16 where
the installed faiss has it (1.15.1 does; decoding it is a shift: the scan is about 10% faster than
float16's at 100,000 items), else float16. It keeps the answers exact with a proven bound: E, the
largest distance between an item and its 16-bit copy, is measured when the copy is made, so no item's
true distance differs from its screened one by more than E (plus float32's rounding of the sum). Every
item that could be among the k nearest
is then within a threshold of the screened k-th; when everything faiss fetched beyond the threshold
proves nothing was missed, those candidates are measured again in float64 and ranked as the flat
index ranks them; a row that cannot be proved (dense ties near the k-th) is searched by the flat
index itself.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from whatnext.search import (
    BLAS_FROM,
    Exclude,
    FaissIndex,
    answer_arrays,
    faiss_search,
    mask_excluded,
    member,
    remeasure,
    topk_smallest,
)

#: candidates the 16-bit scan fetches beyond k and the excluded items: room for the bound's slack
HALF_MARGIN = 32
#: the 16-bit copies HalfScreen can scan, by faiss's ScalarQuantizer names; the first one faiss has is the default
HALF_TYPES = ("bf16", "fp16")


def half_type() -> str:
    """The 16-bit type HalfScreen scans by default: bfloat16 when this faiss has it, else float16."""
    import faiss

    return next(t for t in HALF_TYPES if hasattr(faiss.ScalarQuantizer, f"QT_{t}"))


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
            d[member(cand, exclude)] = np.inf
        order, vals = topk_smallest(d[None, :], kk)
        return cand[order[0]], vals[0]


class HalfScreen:
    """A faiss ``exact`` index searched through a 16-bit copy for one to a few queries, with the same answers.

    ``kind``: ``"bf16"`` or ``"fp16"`` (default :func:`half_type`). Batches of BLAS_FROM queries or more (one
    matrix product reads the float32 matrix once for all of them) and rows the bound cannot settle go to the
    wrapped index; every other attribute is the wrapped index's.
    """

    def __init__(self, base: FaissIndex, kind: str | None = None) -> None:
        import faiss

        self.base = base
        self.kind_16 = kind or half_type()
        if self.kind_16 not in HALF_TYPES:
            raise ValueError(f"HalfScreen kind is {self.kind_16!r}, expected one of {', '.join(HALF_TYPES)}")
        v = base.vectors
        n, d = v.shape
        # float16 holds values up to 65504 (bfloat16 more, but as coarsely relative): a larger one (or an empty
        # catalogue) keeps the float32 scan
        self.usable = n > 0 and bool(np.isfinite(v).all()) and float(np.abs(v).max()) < 60_000.0
        if not self.usable:
            return
        # distances do not move with the origin: the copy holds v - centre, so the 16-bit rounding (relative
        # to each value) is measured from the middle of the catalogue, not from wherever zero happens to be
        self.centre = v.astype(np.float64).mean(axis=0)
        shifted = (v.astype(np.float64) - self.centre).astype(np.float32)
        self.half = faiss.IndexScalarQuantizer(d, getattr(faiss.ScalarQuantizer, f"QT_{self.kind_16}"), faiss.METRIC_L2)
        self.half.train(shifted)  # 16-bit copies need no training; faiss asks for the call
        self.half.add(shifted)
        copy = self.half.reconstruct_n(0, n).astype(np.float64)
        # measured, not assumed: whatever rounding faiss's encoder uses, no item's copy (moved back by the
        # centre) lies further than this from the item itself
        self.error = float(np.sqrt(((v.astype(np.float64) - self.centre - copy) ** 2).sum(1)).max())
        # float32 rounding of the screened squared distance: relative for a sum of squared differences,
        # plus an absolute term that also covers faiss summing |q|^2 - 2 q.v + |v|^2 instead
        self.rel = 2.0 * (d + 4) * float(np.finfo(np.float32).eps)
        self.max_norm = float(np.sqrt((copy**2).sum(1).max()))
        self.proved = self.fallbacks = 0  # rows settled by the bound, rows handed to the flat index

    def __getattr__(self, name: str) -> Any:
        return getattr(self.base, name)

    def __len__(self) -> int:
        return len(self.base)

    def search(self, queries: np.ndarray, k: int, exclude: Exclude = None) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` nearest items for every query, skipping ``exclude[i]``: :meth:`FaissIndex.search`'s answers."""
        queries, out_i, out_d = answer_arrays(queries, k)
        m, n = len(queries), len(self.base)
        if not self.usable or m == 0 or m >= BLAS_FROM:
            return self.base.search(queries, k, exclude)
        extra = max((len(e) for e in exclude), default=0) if exclude is not None else 0
        fetch = min(n, k + extra + HALF_MARGIN)
        shifted = (queries.astype(np.float64) - self.centre).astype(np.float32)
        screened, cand = faiss_search(self.half, shifted, fetch)
        again = []
        for r in range(m):
            got = self._settle(queries[r], shifted[r], screened[r], cand[r], k, fetch == n,
                               None if exclude is None else np.asarray(exclude[r], dtype=np.int64))
            if got is None:
                again.append(r)
                continue
            idx, dist = got
            out_i[r, : len(idx)] = idx
            out_d[r, : len(idx)] = dist
        self.proved += m - len(again)
        self.fallbacks += len(again)
        if again:
            ai, ad = self.base.search(queries[again], k, None if exclude is None else [exclude[r] for r in again])
            out_i[again], out_d[again] = ai, ad**2
        out_i[~np.isfinite(out_d)] = -1
        return out_i, np.sqrt(out_d)

    def _settle(self, q: np.ndarray, shifted: np.ndarray, screened: np.ndarray, cand: np.ndarray, k: int, whole: bool,
                exclude: np.ndarray | None) -> tuple[np.ndarray, np.ndarray] | None:
        """One row's k nearest (indices, squared float64 distances) when the screened distances prove that
        the fetched candidates hold them; None when they cannot (the row goes to the flat index)."""
        s64 = shifted.astype(np.float64)
        qn = float(np.sqrt(s64 @ s64))
        slack = self.rel * (qn + self.max_norm) ** 2
        # the shifted query's own float32 rounding, half an ulp a coordinate, moves it by at most this
        error = self.error + float(np.finfo(np.float32).eps) * (qn + 1e-30)
        ok = cand >= 0
        if exclude is not None and len(exclude):
            ok &= ~member(cand, exclude)
        allowed = np.flatnonzero(ok)
        if len(allowed) >= k:
            # an upper bound on the k-th true distance: k allowed items are no further than this
            kth = float(np.sqrt(max(float(screened[allowed[k - 1]]) + slack, 0.0) / (1.0 - self.rel))) + error
            limit = (1.0 + self.rel) * (kth + error) ** 2 + slack  # a true top-k item screens at most this far
            if not whole and not float(screened[-1]) > limit:
                return None  # an unfetched item may lie within the limit
            allowed = allowed[screened[allowed] <= limit]
        elif not whole:
            return None  # fewer than k allowed items fetched: the rest lie beyond
        c = cand[allowed].astype(np.int64)
        d = remeasure(q[None, :], self.base.vectors[c][None])[0]
        order = np.lexsort((c, d))[:k]  # by distance, ties to the smaller index
        return c[order], d[order]
