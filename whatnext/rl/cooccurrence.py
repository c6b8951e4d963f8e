"""Item vectors pre-trained from co-occurrence in the training sequences.

Two items that users play close together in time are alike. ``ppmi_vectors`` counts, over
the training part of every history only (never the held-out events), how often item j is
played within ``window`` positions of item i, weighting a pair at distance l by 1/l (as
word2vec's shrinking window does); turns the counts into positive pointwise mutual
information with the context distribution smoothed by the power 0.75 (Levy, Goldberg & Dagan
2015, who show this matches skip-gram with negative sampling); and factorises the sparse
PPMI matrix with a randomised truncated SVD, ``vectors = U sqrt(S)``. The result starts the
learned item tables (``model.item_init = "cooccurrence"``), which training then refines.

Memory and time grow with the number of distinct co-occurring pairs, never with
n_items squared: the matrix stays sparse and the SVD multiplies it by thin blocks.
"""

from __future__ import annotations

import numpy as np
import torch

from whatnext.data import Dataset

#: pairs up to this many positions apart count as co-occurring
WINDOW = 5
#: the context distribution's smoothing power
SMOOTHING = 0.75


def pair_counts(dataset: Dataset, window: int = WINDOW) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(rows, cols, weights)``: symmetric co-occurrence counts of the training sequences,
    each distinct (i, j) pair once, a pair l positions apart weighted 1/l."""
    h = dataset.histories
    n = len(dataset.catalogue)
    train = h.train_mask()
    user = h.event_users()
    items = h.items.astype(np.int64)
    codes, weights = [], []
    for lag in range(1, window + 1):
        ok = (user[:-lag] == user[lag:]) & train[:-lag] & train[lag:]
        a, b = items[:-lag][ok], items[lag:][ok]
        keep = a != b
        a, b = a[keep], b[keep]
        codes += [a * n + b, b * n + a]
        weights += [np.full(2 * len(a), 1.0 / lag)]
    if not codes or sum(len(c) for c in codes) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
    uniq, inverse = np.unique(np.concatenate(codes), return_inverse=True)
    w = np.bincount(inverse, weights=np.concatenate(weights))
    return uniq // n, uniq % n, w


def ppmi_vectors(dataset: Dataset, dim: int, window: int = WINDOW, seed: int = 0) -> np.ndarray:
    """(n_items, dim) float32 vectors from the PPMI matrix's truncated SVD; zero rows for items
    that co-occur with nothing in training (and beyond the matrix's rank)."""
    n = len(dataset.catalogue)
    out = np.zeros((n, dim), dtype=np.float32)
    rows, cols, w = pair_counts(dataset, window)
    if len(w) == 0 or dim < 1:
        return out
    row_sum = np.bincount(rows, weights=w, minlength=n)
    context = row_sum**SMOOTHING
    context /= context.sum()
    # log(p_ij / (p_i * p_a(j))) with p_ij = w / total, p_i = row_sum / total: the totals cancel
    pmi = np.log(w) - np.log(row_sum[rows]) - np.log(context[cols])
    pos = pmi > 0
    if not pos.any():
        return out
    m = torch.sparse_coo_tensor(torch.from_numpy(np.stack([rows[pos], cols[pos]])), torch.from_numpy(pmi[pos]), (n, n),
                                check_invariants=True).coalesce()
    q = min(dim, n)
    with torch.random.fork_rng(devices=[]):  # the SVD's random projection must not move the weights' RNG
        torch.manual_seed(seed)
        u, s, _ = torch.svd_lowrank(m, q=q, niter=4)
    out[:, :q] = (u * s.sqrt()).numpy().astype(np.float32)
    return out


__all__ = ["SMOOTHING", "WINDOW", "pair_counts", "ppmi_vectors"]
