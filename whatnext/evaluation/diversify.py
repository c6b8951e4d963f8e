"""Diversified top-k lists: trade a little expected accuracy for intra-list diversity.

A recommender that follows the listener's mood returns coherent lists: ten songs that sound
alike. ``diversify`` re-orders a scored candidate pool so that each list maximises

    sum_t p(c_t) / log2(t + 1) / G   +   weight * ILD(c_1..c_10) / scale

greedily, slot by slot (maximal marginal relevance, Carbonell & Goldstein 1998, with
NDCG's position discount on the relevance side). ``p`` is the softmax of the candidates'
scores over the pool (scores are log-probabilities up to a constant, as the agent's
calibrated actor and re-rank scores are), so the first term is the list's expected
discounted gain relative to ``G``, the expected gain of the plain top-10 (the ten most
probable items in order): accuracy is counted relative to what the list could have had, so
one weight costs a similar share of accuracy whether the model is sure or unsure. ``ILD`` is
the mean pairwise Euclidean distance of the list's item vectors, the figure
``metrics.intra_list_diversity`` reports, divided by ``scale`` (the catalogue's typical
distance, so one weight means the same on every dataset). ``weight = 0.5``: one typical
distance of spread among ten items is worth half their expected accuracy. The objective is
written for ten items (:data:`HORIZON`) whatever k is asked, so a list of 20 starts with
the list of 10. ``weight = 0`` keeps the order by score; the first slot is always the most
probable item, later slots go to items that are probable *and* unlike the ones chosen.
"""

from __future__ import annotations

import numpy as np

#: the list length the objective is written for: G and ILD are those of a top-10, so a longer
#: list starts with the same ten items as a list of ten (lists are prefix-consistent)
HORIZON = 10


def typical_distance(vectors: np.ndarray, pairs: int = 20_000, seed: int = 0) -> float:
    """Median Euclidean distance between random pairs of distinct, unequal rows (deterministic); 1.0 if undefined."""
    v = np.asarray(vectors)
    n = len(v)
    if n < 2:
        return 1.0
    rng = np.random.default_rng(seed)
    a = rng.integers(0, n, pairs)
    b = (a + rng.integers(1, n, pairs)) % n  # never a == b
    d = np.sqrt(((v[a].astype(np.float64) - v[b].astype(np.float64)) ** 2).sum(axis=1))
    d = d[d > 0]  # items with identical vectors (e.g. the same genre flags) say nothing about scale
    return float(np.median(d)) if len(d) else 1.0


def diversify(candidates: np.ndarray, scores: np.ndarray, vectors: np.ndarray, k: int, weight: float,
              scale: float = 1.0) -> np.ndarray:
    """Positions (B, k) into each row of ``candidates`` forming its diversified list, best first.

    ``candidates`` (B, M) item indices, -1 = padding; ``scores`` (B, M) log-probabilities up
    to a row constant, ``-inf`` = never choose; ``vectors`` (n_items, d) item vectors the
    diversity is measured in. Rows with fewer than k choosable candidates are padded with -1.
    Ties go to the earlier candidate. Work and memory: about B * M * d per slot.
    """
    cand = np.asarray(candidates)
    s = np.asarray(scores, dtype=np.float64)
    if cand.shape != s.shape or cand.ndim != 2:
        raise ValueError(f"candidates {cand.shape} and scores {s.shape} must be the same (B, M) shape")
    if weight < 0:
        raise ValueError(f"weight must be >= 0, got {weight}")
    b, m = cand.shape
    k = int(k)
    out = np.full((b, k), -1, dtype=np.int64)
    if b == 0 or m == 0 or k == 0:
        return out
    ok = (cand >= 0) & np.isfinite(s)
    top = np.where(ok, s, -np.inf).max(axis=1, keepdims=True)
    p = np.where(ok, np.exp(s - np.where(np.isfinite(top), top, 0.0)), 0.0)
    p /= np.maximum(p.sum(axis=1, keepdims=True), 1e-300)
    if weight > 0:
        best = -np.sort(-p, axis=1)[:, :HORIZON]
        gain = (best / np.log2(np.arange(2, best.shape[1] + 2))).sum(axis=1)  # G: the plain top-10's expected gain
        # each pair's share of G * weight * ILD@10 / scale (the objective times G: the same choices)
        per_unit = gain * weight * 2.0 / (HORIZON * (HORIZON - 1) * scale)
        e = np.asarray(vectors)[np.where(cand >= 0, cand, 0)].astype(np.float64)  # (B, M, d): only the pool's rows
        sq = (e**2).sum(axis=2)
    taken = ~ok
    bonus = np.zeros((b, m))
    rows = np.arange(b)
    for t in range(min(k, m)):
        value = np.where(taken, -np.inf, p / np.log2(t + 2) + bonus)
        pick = value.argmax(axis=1)  # the first maximum: ties to the earlier candidate
        live = np.isfinite(value[rows, pick])
        out[live, t] = pick[live]
        taken[rows[live], pick[live]] = True
        if weight > 0 and t + 1 < k:  # distances to the item just chosen: B * M * d work, no M x M matrix
            c = e[rows, pick]
            d2 = sq + sq[rows, pick][:, None] - 2.0 * np.einsum("bmd,bd->bm", e, c)
            bonus += np.sqrt(np.maximum(d2, 0.0)) * (per_unit * live)[:, None]
    return out


def calibrate_scale(scores: np.ndarray, hits: np.ndarray, low: float = 1e-4, high: float = 1e3) -> float:
    """The scale a maximising the likelihood of the observed targets under softmax(a * scores).

    ``scores`` (B, M) candidate scores (``-inf`` = not a candidate), ``hits`` (B, M) bool, True
    where a candidate is the row's real next item; rows without a hit are left out (the
    likelihood is conditional on the target being in the slate). The negative log-likelihood
    is convex in a, so a golden-section search over log a in [low, high] finds its minimum;
    1.0 when no row has a hit.
    """
    s = np.asarray(scores, dtype=np.float64)
    h = np.asarray(hits, dtype=bool)
    if s.shape != h.shape or s.ndim != 2:
        raise ValueError(f"scores {s.shape} and hits {h.shape} must be the same (B, M) shape")
    rows = h.any(axis=1) & np.isfinite(np.where(h, s, -np.inf)).any(axis=1)
    if not rows.any():
        return 1.0
    s, h = s[rows], h[rows]
    s = s - s.max(axis=1, keepdims=True)  # max is finite: the hit's score is
    target = np.where(h, s, -np.inf).max(axis=1)
    finite = np.isfinite(s)

    def nll(log_a: float) -> float:
        a = np.exp(log_a)
        z = np.where(finite, a * np.where(finite, s, 0.0), -np.inf)
        return float(np.mean(np.log(np.exp(z).sum(axis=1)) - a * target))

    lo, hi = np.log(low), np.log(high)
    g = (np.sqrt(5.0) - 1.0) / 2.0
    x1, x2 = hi - g * (hi - lo), lo + g * (hi - lo)
    f1, f2 = nll(x1), nll(x2)
    for _ in range(60):  # the bracket shrinks by 0.618 a step: far below a percent of a
        if f1 <= f2:
            hi, x2, f2 = x2, x1, f1
            x1 = hi - g * (hi - lo)
            f1 = nll(x1)
        else:
            lo, x1, f1 = x1, x2, f2
            x2 = lo + g * (hi - lo)
            f2 = nll(x2)
    return float(np.exp((lo + hi) / 2.0))


__all__ = ["HORIZON", "calibrate_scale", "diversify", "typical_distance"]
