"""Top-K recommendation metrics: pure functions over ranked item-index arrays.

Every function takes ``ranked``, an ``(n, K')`` integer array holding, for each of ``n``
queries, item indices ranked best first and right-padded with ``-1`` where the recommender
had fewer than ``K'`` items to give. Only the first ``k`` columns count for a metric "@k"
(``k`` may exceed ``K'``: the missing columns count as padding). ``-1`` never matches
anything and is never a recommended item. Nothing here loops in Python over queries.

Accuracy (one held-out target per query, leave-one-out), with ``r`` the 1-based position
of the target within the first ``k`` entries (no ``r`` when absent):

* ``HR@k   = mean_u [r_u exists]``
* ``NDCG@k = mean_u 1 / log2(r_u + 1)``  (0 when absent; the ideal DCG of one relevant item is 1)
* ``MRR@k  = mean_u 1 / r_u``            (0 when absent)

If a (badly behaved) recommender lists the target twice, only its first position counts.

Beyond accuracy:

* ``coverage@k``: share of the catalogue recommended to anyone,
  ``|union_u top_k(u)| / n_items``.
* ``ILD@k`` (intra-list diversity): for every list with at least two items, the mean
  Euclidean distance ``||e_i - e_j||`` over its unordered pairs ``i < j``; then the mean
  over those lists. Lists with fewer than two items are left out of the mean.
* ``novelty@k``: for every list, the mean of ``-log2 p(i)`` over its items, then the mean
  over non-empty lists, where ``p(i) = max(c_i, 1) / N`` with ``c_i`` the item's training
  play count and ``N`` the number of training events. The floor ``max(c_i, 1)`` treats an
  item never played in training as if played once, so its novelty is the largest finite
  value, ``log2 N``, instead of infinity.

Functions over an empty set of queries return ``nan`` (there is nothing to average).
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "coverage",
    "hit_rate",
    "intra_list_diversity",
    "mrr",
    "ndcg",
    "novelty",
    "target_ranks",
]


def _top(ranked: np.ndarray, k: int) -> np.ndarray:
    ranked = np.asarray(ranked)
    if ranked.ndim != 2:
        raise ValueError(f"ranked must be a 2-d (n, K) array, got shape {ranked.shape}")
    if not np.issubdtype(ranked.dtype, np.integer):
        raise TypeError(f"ranked must hold integer item indices, got {ranked.dtype}")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    return ranked[:, :k]


def target_ranks(ranked: np.ndarray, targets: np.ndarray, k: int) -> np.ndarray:
    """1-based position of each target within the first ``k`` entries of its row; 0 when absent.

    A target of -1 (or any negative value) is never found.
    """
    top = _top(ranked, k)
    targets = np.asarray(targets).reshape(-1)
    if len(targets) != len(top):
        raise ValueError(f"ranked has {len(top)} rows but there are {len(targets)} targets")
    match = (top == targets[:, None]) & (top >= 0)
    found = match.any(axis=1)
    return np.where(found, match.argmax(axis=1) + 1, 0).astype(np.int64)


def _mean(x: np.ndarray) -> float:
    return float(x.mean()) if len(x) else float("nan")


def hit_rate(ranked: np.ndarray, targets: np.ndarray, k: int) -> float:
    """HR@k: the share of queries whose target is among the first ``k`` items."""
    return _mean((target_ranks(ranked, targets, k) > 0).astype(np.float64))


def ndcg(ranked: np.ndarray, targets: np.ndarray, k: int) -> float:
    """NDCG@k with one relevant item: mean of ``1 / log2(r + 1)`` (r the 1-based rank), 0 when absent."""
    r = target_ranks(ranked, targets, k)
    gain = np.zeros(len(r), dtype=np.float64)
    hit = r > 0
    gain[hit] = 1.0 / np.log2(r[hit] + 1.0)
    return _mean(gain)


def mrr(ranked: np.ndarray, targets: np.ndarray, k: int) -> float:
    """MRR@k: mean of ``1 / r`` (r the 1-based rank of the target), 0 when absent from the first k."""
    r = target_ranks(ranked, targets, k)
    rr = np.zeros(len(r), dtype=np.float64)
    hit = r > 0
    rr[hit] = 1.0 / r[hit]
    return _mean(rr)


def coverage(ranked: np.ndarray, k: int, n_items: int) -> float:
    """Catalogue coverage@k: distinct items in any top-k list divided by ``n_items``."""
    if n_items < 1:
        raise ValueError(f"n_items must be >= 1, got {n_items}")
    top = _top(ranked, k)
    if top.size == 0:
        return float("nan") if len(top) == 0 else 0.0
    items = top[(top >= 0) & (top < n_items)]
    return float(len(np.unique(items)) / n_items)


def intra_list_diversity(ranked: np.ndarray, embeddings: np.ndarray, k: int, block_rows: int = 4096) -> float:
    """ILD@k: mean pairwise Euclidean distance between the item embeddings of each top-k list.

    ``mean over lists with >= 2 items of  (2 / (m (m-1))) * sum_{i<j} ||e_i - e_j||``, m the
    number of (non-padding) items in the list. Computed from Gram matrices in float64, in
    blocks of ``block_rows`` lists to bound memory.
    """
    top = _top(ranked, k)
    emb = np.asarray(embeddings, dtype=np.float64)
    if emb.ndim != 2:
        raise ValueError(f"embeddings must be 2-d (n_items, d), got shape {emb.shape}")
    per_list: list[np.ndarray] = []
    kk = top.shape[1]
    upper = np.triu(np.ones((kk, kk), dtype=bool), k=1)
    for s in range(0, len(top), block_rows):
        block = top[s : s + block_rows]
        valid = block >= 0
        e = emb[np.where(valid, block, 0)]  # (b, k, d)
        sq = (e**2).sum(axis=2)
        d2 = sq[:, :, None] + sq[:, None, :] - 2.0 * np.einsum("bid,bjd->bij", e, e)
        dist = np.sqrt(np.maximum(d2, 0.0))
        pair = upper[None, :, :] & valid[:, :, None] & valid[:, None, :]
        n_pairs = pair.sum(axis=(1, 2))
        total = np.where(pair, dist, 0.0).sum(axis=(1, 2))
        keep = n_pairs > 0
        per_list.append(total[keep] / n_pairs[keep])
    return _mean(np.concatenate(per_list)) if per_list else float("nan")


def novelty(ranked: np.ndarray, counts: np.ndarray, k: int) -> float:
    """Novelty@k: mean over non-empty lists of the mean ``-log2 p(i)`` of their items.

    ``p(i) = max(counts[i], 1) / counts.sum()``: ``counts`` are training play counts
    (``Dataset.popularity()``); the floor of one play keeps unseen items finite (``log2 N``).
    """
    top = _top(ranked, k)
    counts = np.asarray(counts, dtype=np.float64)
    total = counts.sum()
    if total <= 0:
        raise ValueError("counts must hold at least one training event")
    info = -np.log2(np.maximum(counts, 1.0) / total)
    valid = top >= 0
    m = valid.sum(axis=1)
    s = np.where(valid, info[np.where(valid, top, 0)], 0.0).sum(axis=1)
    keep = m > 0
    return _mean(s[keep] / m[keep])
