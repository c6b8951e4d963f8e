"""Reward functions with one signature, and the registry behind ``train.rewards``.

A reward function takes a :class:`RewardInputs` batch and returns one float per row. The
training reward is the weighted sum ``sum(weight[name] * REWARDS[name](inputs))``.

``diversity`` (the original critic target). With sigma(S) the sample standard deviation
(ddof=1) of the pairwise Euclidean distances among the item vectors of a set S, H the
history window, P all the user's songs in the *training* part and x the produced song::

    diversity = |sigma(H) - sigma(P)| - |sigma(H + {x}) - sigma(P)|

positive when adding x brings the history's spread toward the user's usual spread.
sigma of a set with fewer than 3 items (fewer than 2 distances) is 0.

``hit``: 1 when x is the item the user played next, else 0 (what a ranking is judged by).

``logged``: the logged reward of the play that followed (``data.reward_col``: a rating, a
played-in-full flag, mapped and transformed by ``data.reward_map`` / ``data.reward_transform``)
when x is that played item, else 0. What the listener did with a song is only known for the song
that was played; without a reward column every play counts 1 and ``logged`` equals ``hit``.

``next_item``: 1 when x is the item the user actually played next, otherwise
``exp(-d(x, target) / delta)`` in [0, 1), with d the Euclidean distance between the item
vectors and delta the median distance between two random catalogue items.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from whatnext.data import PAD, Histories


@dataclass
class RewardInputs:
    """One batch of histories, each with M candidate songs to reward (M = 1 for one produced song)."""

    history: np.ndarray  # (B, W) item indices, PAD-padded on the right
    lengths: np.ndarray  # (B,)
    produced: np.ndarray  # (B, M) songs to reward (State.produce's picks, or a slate of candidates)
    target: np.ndarray  # (B,) the song the user actually played next
    users: np.ndarray  # (B,) user indices
    vectors: np.ndarray  # (n_items, d) item vectors the distances use
    population_sigma: np.ndarray  # (n_users,) sigma(P) per user
    delta: float  # distance scale of next_item
    #: (B,) the logged reward of ``target`` (Histories.rewards); None = no reward column (every play 1)
    target_reward: np.ndarray | None = None


def pairwise_distance_std(x: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Sample std (ddof=1) of the pairwise distances among the masked rows of each set.

    ``x`` is (B, N, d), ``mask`` (B, N) bool; returns (B,), 0 where a set has < 2 pairs.
    """
    n1, s1, s2 = _pair_sums(x, mask)
    return _std(n1, s1, s2)


def _pair_sums(x: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Count, sum and sum of squares of the pairwise distances within each masked set."""
    x = x.astype(np.float64)
    diff = x[:, :, None, :] - x[:, None, :, :]
    dist = np.sqrt((diff * diff).sum(-1))
    n = x.shape[1]
    pair = mask[:, :, None] & mask[:, None, :] & np.triu(np.ones((n, n), dtype=bool), k=1)[None]
    d = np.where(pair, dist, 0.0)
    return pair.sum((1, 2)).astype(np.float64), d.sum((1, 2)), (d * d).sum((1, 2))


def _std(n: np.ndarray, s1: np.ndarray, s2: np.ndarray) -> np.ndarray:
    var = (s2 - s1 * s1 / np.maximum(n, 1)) / np.maximum(n - 1, 1)
    return np.where(n >= 2, np.sqrt(np.maximum(var, 0.0)), 0.0)


def population_sigma(histories: Histories, vectors: np.ndarray, max_items: int = 100,
                     block: int = 64) -> np.ndarray:
    """sigma(P) for every user over the training part (the most recent ``max_items`` songs).

    Held-out events never enter. Users are processed in blocks of padded arrays, not one by one.
    """
    ends = histories.offsets[:-1] + histories.train_len
    hist, _ = histories.windows(ends, max_items, np.arange(len(histories)))
    out = np.zeros(len(histories))
    for s in range(0, len(histories), block):
        h = hist[s : s + block]
        out[s : s + block] = pairwise_distance_std(vectors[np.maximum(h, 0)], h != PAD)
    return out


def diversity(r: RewardInputs) -> np.ndarray:
    """|sigma(H) - sigma(P)| - |sigma(H + {x}) - sigma(P)| for every candidate x: (B, M).

    sigma(H + {x}) comes from the sums over H's pairs plus x's distances to H's items, so a
    slate of M candidates costs O(B * M * W * d), not M recomputations of all pairs.
    """
    h = r.history
    mask = h != PAD
    hv = r.vectors[np.maximum(h, 0)].astype(np.float64)  # (B, W, d)
    n, s1, s2 = _pair_sums(hv, mask)
    xv = r.vectors[r.produced].astype(np.float64)  # (B, M, d)
    dx = np.sqrt(((xv[:, :, None, :] - hv[:, None, :, :]) ** 2).sum(-1))  # (B, M, W)
    dx = np.where(mask[:, None, :], dx, 0.0)
    cnt = mask.sum(1).astype(np.float64)[:, None]
    s_h = _std(n, s1, s2)[:, None]
    s_hx = _std(n[:, None] + cnt, s1[:, None] + dx.sum(-1), s2[:, None] + (dx * dx).sum(-1))
    s_p = r.population_sigma[r.users][:, None]
    return np.abs(s_h - s_p) - np.abs(s_hx - s_p)


def next_item(r: RewardInputs) -> np.ndarray:
    """1 for the logged next item, else exp(-distance / delta) (see the module doc): (B, M)."""
    diff = r.vectors[r.produced].astype(np.float64) - r.vectors[r.target][:, None, :]
    d = np.sqrt((diff * diff).sum(-1))
    near = np.minimum(np.exp(-d / max(r.delta, 1e-12)), np.nextafter(1.0, 0.0))  # a different item stays below 1
    return np.where(r.produced == r.target[:, None], 1.0, near)


def hit(r: RewardInputs) -> np.ndarray:
    """1 when x is the item the user actually played next, else 0: (B, M)."""
    return (r.produced == r.target[:, None]).astype(np.float64)


def logged(r: RewardInputs) -> np.ndarray:
    """The logged reward of the played item when x is that item, else 0: (B, M)."""
    value = np.ones(len(r.target)) if r.target_reward is None else np.asarray(r.target_reward, dtype=np.float64)
    return np.where(r.produced == r.target[:, None], value[:, None], 0.0)


def distance_scale(vectors: np.ndarray, seed: int = 0, pairs: int = 20000) -> float:
    """Median Euclidean distance between random pairs of distinct items (next_item's delta)."""
    n = len(vectors)
    if n < 2:
        return 1.0
    rng = np.random.default_rng(seed)
    a, b = rng.integers(0, n, pairs), rng.integers(0, n, pairs)
    keep = a != b
    d = np.sqrt(((vectors[a[keep]].astype(np.float64) - vectors[b[keep]]) ** 2).sum(-1))
    med = float(np.median(d)) if len(d) else 1.0
    return med if med > 0 else 1.0


RewardFn = Callable[[RewardInputs], np.ndarray]

#: train.rewards names -> functions. config.REWARD_NAMES must list the same names.
REWARDS: dict[str, RewardFn] = {
    "diversity": diversity,
    "next_item": next_item,
    "hit": hit,
    "logged": logged,
}


def combined(weights: dict[str, float], inputs: RewardInputs) -> tuple[np.ndarray, dict[str, float]]:
    """The weighted sum of the configured rewards (B, M), and each one's batch mean for logging."""
    total = np.zeros(inputs.produced.shape)
    parts: dict[str, float] = {}
    for name, w in weights.items():
        if w == 0:
            continue
        value = REWARDS[name](inputs)
        parts[f"train/reward_{name}"] = float(value.mean())
        total += w * value
    return total, parts
