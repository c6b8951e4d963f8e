"""Nearest-neighbour search behind one small interface.

:class:`NeighbourIndex` is the contract: build over an (n, d) float32 matrix, then
``search(queries, k, exclude)`` returns the k nearest items per query by Euclidean
distance. :class:`ExactIndex` computes it exactly with numpy in query blocks;
:class:`FaissIndex` searches with faiss (imported lazily): ``exact`` (a flat float32 index,
then the candidates re-measured in float64 so answers equal ExactIndex's), or the
approximate ``ivf`` and ``hnsw`` for large catalogues, whose search parameter (nprobe,
efSearch) is raised at build time until recall@10 against exact search reaches
:data:`TARGET_RECALL` on a seeded sample. :func:`build_index` picks one (``recommend.index``).
An index is built in memory from the vectors and never saved: nothing is loaded that could
run code.

Results are deterministic: ties in distance are broken by the smaller item index. Where
fewer than k items remain (k larger than the catalogue, or too many excluded), the rows
are padded with index -1 and distance inf.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

Exclude = Sequence[np.ndarray] | None



def answer_arrays(queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Queries as a contiguous float32 (m, d) array, and the (m, k) answers filled with -1 / inf (the padding)."""
    q = np.ascontiguousarray(np.atleast_2d(np.asarray(queries, dtype=np.float32)))
    if k < 1:
        raise ValueError("k must be >= 1")
    return q, np.full((len(q), k), -1, dtype=np.int64), np.full((len(q), k), np.inf, dtype=np.float64)

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
        self._vectors64: np.ndarray | None = None  # converted once, on the first search
        self.sq_norms = (self.vectors.astype(np.float64) ** 2).sum(axis=1)
        self.block_bytes = block_bytes

    def __len__(self) -> int:
        return len(self.vectors)

    def distances(self, queries: np.ndarray) -> np.ndarray:
        """Squared Euclidean distances (len(queries), n), in float64 so ties are exact."""
        if self._vectors64 is None:
            self._vectors64 = self.vectors.astype(np.float64)
        q = np.asarray(queries, dtype=np.float64)
        d = (q**2).sum(1)[:, None] - 2.0 * q @ self._vectors64.T + self.sq_norms[None, :]
        return np.maximum(d, 0.0)

    def search(self, queries: np.ndarray, k: int, exclude: Exclude = None) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` nearest items for every query, skipping ``exclude[i]`` for query i."""
        queries, out_i, out_d = answer_arrays(queries, k)
        n, m = len(self.vectors), len(queries)
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


#: recall@10 against exact search that the approximate indexes are tuned to reach
TARGET_RECALL = 0.95
#: ``recommend.index = "auto"``: numpy's exact search up to this many items (faiss's import and
#: copy cost more than the search there, and the answers stay exactly what they always were)
AUTO_NUMPY_MAX = 4096
#: ``recommend.index = "auto"``: faiss's exact search up to this many items, approximate above
AUTO_EXACT_MAX = 200_000
#: ``"auto"`` above AUTO_EXACT_MAX: the approximate index measured best there (bench/scale.py)
AUTO_APPROXIMATE = "ivf"
#: extra candidates fetched beyond k (and the excluded items) so float32 rounding cannot push
#: one of the true k nearest out before the float64 re-measure
MARGIN = 8
KINDS = ("auto", "exact", "ivf", "hnsw")
#: faiss measures a batch of at least this many queries with one matrix product (the item matrix read
#: once for the batch), a smaller one with a scan per query: at 100,000 x 72 a scan costs 2.3 ms of CPU,
#: a matrix product 7.7 ms for 1 query, 9.5 ms for 4, 12.4 ms for 16 (0.8 ms a query). faiss's own
#: switch moved between versions (1.15 compares its threshold with more than the number of queries), so
#: it is set on every search. A server ranks the requests that arrive together as one batch.
#: Candidates are re-measured in float64 on either path.
BLAS_FROM = 4
#: OpenMP threads faiss searches with (set in the searching thread around every search, then put back:
#: a thread pool's threads start with OpenMP's default, every core; an IVF build keeps its threads). With two, a single query at 100,000 items cost
#: 19.8 ms of CPU instead of 2.9 ms and a batch of 16 119 ms instead of 13 ms on a busy two-core machine:
#: the idle thread spins. One thread also leaves the other cores to other requests and workers.
SEARCH_THREADS = 1


def build_index(vectors: np.ndarray, kind: str = "auto", seed: int = 0) -> NeighbourIndex:
    """The index ``recommend.index`` asks for over ``vectors``: ``auto`` is exact up to AUTO_EXACT_MAX
    items (numpy's up to AUTO_NUMPY_MAX, faiss's flat index above), approximate beyond."""
    if kind not in KINDS:
        raise ValueError(f"unknown index kind {kind!r}; expected one of {', '.join(KINDS)}")
    if kind == "auto" and len(vectors) <= AUTO_NUMPY_MAX:
        return ExactIndex(vectors)
    if kind == "auto":
        kind = "exact" if len(vectors) <= AUTO_EXACT_MAX else AUTO_APPROXIMATE
    return FaissIndex(vectors, kind, seed=seed)


class FaissIndex:
    """k-nearest-neighbour search through faiss: exact (flat) or approximate (IVF, HNSW).

    Candidates come from faiss in float32, k + the longest exclusion list + MARGIN of them;
    those are re-measured in float64 (the formula of :class:`ExactIndex`) and ranked with ties
    to the smaller index, so ``exact`` answers as ExactIndex does and the approximate kinds
    report true distances. ``param`` is nprobe (ivf) or efSearch (hnsw), tuned at build time
    until recall@10 on a seeded sample of perturbed catalogue vectors is at least TARGET_RECALL
    (``recall`` holds what it reached; 1.0 for exact).
    """

    def __init__(self, vectors: np.ndarray, kind: str = "exact", seed: int = 0, param: int | None = None) -> None:
        import faiss  # lazily: only what searches needs it

        self.vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        self.kind, self.seed = kind, seed
        n, d = self.vectors.shape
        self.recall, self.param = 1.0, 0
        self.tuned_on_queries = kind not in ("ivf", "hnsw")  # exact needs no tuning
        self.index: Any  # a faiss index (faiss ships no type information)
        if kind == "exact" or n == 0:
            self.index = faiss.IndexFlatL2(d)
        elif kind == "ivf":
            # about sqrt(n) lists, trained on 40 points each (faiss wants >= 39): seconds at a million items
            nlist = int(max(1, min(np.sqrt(n), n // 40)))
            self.index = faiss.IndexIVFFlat(faiss.IndexFlatL2(d), d, nlist)
            rng = np.random.default_rng(seed)
            train = self.vectors[np.sort(rng.choice(n, min(n, 40 * nlist), replace=False))]
            self.index.cp.seed = int(seed % (2**31))
            self.index.train(train)
        elif kind == "hnsw":
            self.index = faiss.IndexHNSWFlat(d, 32)
            self.index.hnsw.efConstruction = 64
        else:
            raise ValueError(f"unknown index kind {kind!r}; expected exact, ivf or hnsw")
        if n:
            self.index.add(self.vectors)
        if kind in ("ivf", "hnsw") and n:
            self._set(param if param is not None else self._tune())
            self.tuned_on_queries = param is not None

    def __len__(self) -> int:
        return len(self.vectors)

    def _set(self, value: int) -> None:
        self.param = int(value)
        if self.kind == "ivf":
            self.index.nprobe = self.param
        else:
            self.index.hnsw.efSearch = self.param

    def _tune(self, n_queries: int = 300) -> int:
        """The search parameter for a seeded sample of perturbed catalogue vectors (see :meth:`tune`)."""
        n = len(self.vectors)
        rng = np.random.default_rng([self.seed, 17])
        picked = self.vectors[rng.choice(n, min(n, n_queries), replace=False)]
        spread = self.vectors[rng.choice(n, min(n, 2000), replace=False)].std(axis=0)
        return self.tune((picked + 0.5 * spread * rng.standard_normal(picked.shape)).astype(np.float32))

    def tune(self, queries: np.ndarray, k: int = 10) -> int:
        """Set the smallest search parameter (doubling) whose recall@k on ``queries`` reaches
        TARGET_RECALL, and return it. The index tunes itself on perturbed catalogue vectors when
        built; the Agent tunes it again on real proto-actions, which lie elsewhere in the space."""
        import faiss

        if self.kind not in ("ivf", "hnsw") or len(self.vectors) == 0:
            return self.param
        n = len(self.vectors)
        queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        self.tuned_on_queries = True
        flat = faiss.IndexFlatL2(self.vectors.shape[1])
        flat.add(self.vectors)
        _, truth = flat.search(queries, min(k, n))
        top = self.index.nlist if self.kind == "ivf" else 4096
        value = 1 if self.kind == "ivf" else 16
        while True:
            self._set(value)
            _, got = self.index.search(queries, min(k, n))
            self.recall = recall_at(got, truth)
            if self.recall >= TARGET_RECALL or value >= top:
                self.param = value
                return value
            value = min(top, value * 2)

    def search(self, queries: np.ndarray, k: int, exclude: Exclude = None) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` nearest items for every query, skipping ``exclude[i]`` for query i."""
        queries, out_i, out_d = answer_arrays(queries, k)
        n, m = len(self.vectors), len(queries)
        if n == 0 or m == 0:
            return out_i, out_d
        extra = max((len(e) for e in exclude), default=0) if exclude is not None else 0
        fetch = min(n, k + extra + MARGIN)
        if self.kind == "hnsw" and self.index.hnsw.efSearch < fetch:
            self.index.hnsw.efSearch = fetch
        _, cand = faiss_search(self.index, queries, fetch)
        if self.kind == "hnsw":
            self.index.hnsw.efSearch = self.param
        cand = cand.astype(np.int64)
        # (m, fetch, d): only the candidates, never the catalogue
        d = np.where(cand < 0, np.inf, remeasure(queries, self.vectors[np.maximum(cand, 0)]))
        if exclude is not None:
            lens = np.fromiter((len(e) for e in exclude), dtype=np.int64, count=m)
            if lens.sum():  # (row, item) pairs as one code each: one isin for the whole batch
                items = np.concatenate([np.asarray(e, dtype=np.int64) for e in exclude])
                ok = (items >= 0) & (items < n)  # anything else excludes nothing (as in ExactIndex)
                ex = (np.repeat(np.arange(m, dtype=np.int64), lens) * n + items)[ok]
                d[np.isin(np.arange(m, dtype=np.int64)[:, None] * n + cand, ex) & (cand >= 0)] = np.inf
        order = np.lexsort((cand, d), axis=-1)[:, :k]  # by distance, ties to the smaller index
        idx = np.take_along_axis(cand, order, 1)
        dist = np.take_along_axis(d, order, 1)
        if self.kind == "exact" and fetch < n:
            # items tied (or within float32 rounding) with the k-th may lie beyond what was fetched:
            # such rows are ranked again by the full float64 search, so ties still go to the smaller index
            far = np.where(np.isfinite(d), d, -np.inf).max(1)
            again = np.flatnonzero(dist[:, -1] >= far * (1 - 1e-5) - 1e-7)
            if len(again):
                ex = None if exclude is None else [exclude[i] for i in again]
                ai, ad = ExactIndex(self.vectors).search(queries[again], k, ex)
                idx[again], dist[again] = ai[:, : idx.shape[1]], ad[:, : idx.shape[1]] ** 2
        out_i[:, : idx.shape[1]] = idx
        out_d[:, : idx.shape[1]] = dist
        out_i[~np.isfinite(out_d)] = -1
        return out_i, np.sqrt(out_d)


def faiss_search(index: Any, queries: np.ndarray, fetch: int) -> tuple[np.ndarray, np.ndarray]:
    """``index.search(queries, fetch)`` on SEARCH_THREADS OpenMP threads, by one matrix product from BLAS_FROM
    queries and a scan per query below (faiss's switch is process-wide: a search in another thread may take the
    other path, which changes its speed, not its answer)."""
    import faiss

    faiss.cvar.distance_compute_blas_threshold = 0 if len(queries) >= BLAS_FROM else 1 << 30
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(SEARCH_THREADS)
    try:
        return index.search(queries, fetch)
    finally:
        faiss.omp_set_num_threads(threads)  # what else runs in this thread (an IVF build) keeps its threads


def remeasure(queries: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """Squared Euclidean distances in float64 (m, f) from queries (m, d) to each row's candidate vectors
    (m, f, d): how every index ranks what its screening pass fetched."""
    q = queries.astype(np.float64)
    v = candidates.astype(np.float64)
    return np.maximum((q**2).sum(1)[:, None] - 2.0 * np.einsum("md,mfd->mf", q, v) + (v**2).sum(-1), 0.0)


def recall_at(found: np.ndarray, truth: np.ndarray) -> float:
    """Mean share of each row of ``truth`` (exact neighbours, -1 padded) that ``found`` holds."""
    hits = (found[:, :, None] == truth[:, None, :]).any(1) & (truth >= 0)
    return float(hits.sum() / max(1, (truth >= 0).sum()))


def member(values: np.ndarray, among: np.ndarray) -> np.ndarray:
    """``np.isin(values, among)``; a request's few hundred comparisons by broadcasting (about 8 us, where
    ``np.isin``'s sort costs about 120 us), larger sets by ``np.isin``."""
    values, among = np.asarray(values), np.asarray(among)
    if values.size * among.size <= 65_536:
        return (values[..., None] == among.reshape(-1)).any(-1)
    return np.isin(values, among)


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
