"""Off-policy evaluation: what a model's top-K would have earned in logged rewards.

The held-out plays are logged bandit feedback: in context ``x_i`` (the history before the play)
the listener's logging policy ``mu`` chose song ``a_i`` and the log says what they did with it,
``r_i`` (``data.reward_col``). A model is judged as the *target policy* ``pi(a | x)`` that
recommends one song drawn uniformly from its top-K list: ``pi(a | x) = 1 / K_x`` for the
``K_x`` songs of the list (``K_x = K`` unless the list is padded), 0 elsewhere. Its value
``V(pi) = E_x E_{a ~ pi} r(x, a)`` is the mean reward of a song from the list: +1 if every song
would be played in full, -1 if every one would be skipped, on the demo's full/skip rewards.

With importance weights ``w_i = min(pi(a_i | x_i) / mu(a_i | x_i), clip)`` over the n plays:

* ``IPS   = (1/n) sum_i w_i r_i``
* ``SNIPS = sum_i w_i r_i / sum_i w_i`` (nan when no weight is positive: the model never lists a played song)
* ``DR    = (1/n) sum_i [ sum_a pi(a | x_i) q(x_i, a) + w_i (r_i - q(x_i, a_i)) ]``, ``q`` a reward model
* ``ESS   = (sum_i w_i)^2 / sum_i w_i^2``: how many plays the weighted estimate is worth (0 when no weight is positive)

Beside them, with no weights: ``reward@K = (1/n) sum_i r_i [a_i in top-K]`` (hits weighted by their
reward) and ``ndcg_pos@K``, NDCG@K over the held-out plays whose reward is positive.

The behaviour policy ``mu`` is learned from the training events (:class:`BehaviourPolicy`): the
first-order chance of each song after the history's last song, smoothed toward popularity, a
proper distribution over the catalogue that is never 0. Its one smoothing constant (the prior's
pseudo-count) is the value of :data:`PRIORS` under which the validation split's held-out plays are
most likely (:meth:`BehaviourPolicy.fit_calibrated`): on MovieLens, whose timestamps are rating
times, the next film follows the last one weakly and the first fixed prior (5) made ``mu`` of the
logged films 3.4 times too small on average (mean log-likelihood -7.85 against -6.61 at 200),
inflating every weight; no model's ranking is consulted. The reward model ``q`` of DR
(:class:`RewardModel`) is each song's mean training reward shrunk toward the global mean.
Everything here is numpy: no model, no randomness.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from whatnext.data import PAD, Histories
from whatnext.evaluation import metrics

#: default cap on importance weights (eval.ope_clip)
CLIP = 100.0
#: pseudo-count of the popularity prior in the behaviour policy when it is not calibrated
BEHAVIOUR_PRIOR = 5.0
#: the pseudo-counts :meth:`BehaviourPolicy.fit_calibrated` chooses from
PRIORS = (1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0)
#: pseudo-count of the global mean in the reward model
REWARD_PRIOR = 10.0


def clip_weights(w: np.ndarray, clip: float) -> np.ndarray:
    """Importance weights capped at ``clip`` (``inf``: uncapped)."""
    return np.minimum(np.asarray(w, dtype=np.float64), clip)


def ips(w: np.ndarray, r: np.ndarray) -> float:
    """Inverse propensity scoring: ``mean(w * r)``."""
    w, r = np.asarray(w, np.float64), np.asarray(r, np.float64)
    return float((w * r).mean()) if len(w) else float("nan")


def snips(w: np.ndarray, r: np.ndarray) -> float:
    """Self-normalised IPS: ``sum(w * r) / sum(w)``; nan when the weights sum to 0."""
    w, r = np.asarray(w, np.float64), np.asarray(r, np.float64)
    total = w.sum()
    return float((w * r).sum() / total) if total > 0 else float("nan")


def dr(w: np.ndarray, r: np.ndarray, q_logged: np.ndarray, q_target: np.ndarray) -> float:
    """Doubly robust: ``mean(q_target + w * (r - q_logged))``.

    ``q_logged[i]`` is the reward model's value of the logged action, ``q_target[i]`` its
    expectation under the target policy, ``sum_a pi(a | x_i) q(x_i, a)``.
    """
    w, r = np.asarray(w, np.float64), np.asarray(r, np.float64)
    if not len(w):
        return float("nan")
    return float((np.asarray(q_target, np.float64) + w * (r - np.asarray(q_logged, np.float64))).mean())


def effective_sample_size(w: np.ndarray) -> float:
    """``sum(w)^2 / sum(w^2)``: 0 when no weight is positive, n when all are equal."""
    w = np.asarray(w, np.float64)
    sq = (w * w).sum()
    return float(w.sum() ** 2 / sq) if sq > 0 else 0.0


@dataclass
class BehaviourPolicy:
    """``mu(a | last) = (c(last, a) + b * p(a)) / (c(last) + b)`` from the training transitions.

    ``c(last, a)``: how often ``a`` directly followed ``last`` in a user's training events;
    ``c(last)``: how often ``last`` was followed at all; ``p(a) = (c(a) + 1) / (N + n_items)``
    the add-one popularity over the N training events; ``b`` = :data:`BEHAVIOUR_PRIOR`. With no
    last song (an empty history) it is ``p(a)``.
    """

    n_items: int
    codes: np.ndarray  # sorted last * n_items + next of the training transitions
    counts: np.ndarray  # their counts
    out: np.ndarray  # (n_items,) c(last)
    popularity: np.ndarray  # (n_items,) p(a)
    prior: float = BEHAVIOUR_PRIOR

    @classmethod
    def fit(cls, histories: Histories, n_items: int, prior: float = BEHAVIOUR_PRIOR) -> BehaviourPolicy:
        """Count the training part's transitions (held-out plays never enter)."""
        pos = histories.train_positions()  # training events with an earlier training event of the same user
        prev, nxt = histories.items[pos - 1], histories.items[pos]
        codes, counts = np.unique(prev.astype(np.int64) * n_items + nxt, return_counts=True)
        out = np.bincount(prev, minlength=n_items).astype(np.float64)
        played = np.bincount(histories.items[histories.train_mask()], minlength=n_items).astype(np.float64)
        popularity = (played + 1.0) / (played.sum() + n_items)
        return cls(n_items, codes, counts.astype(np.float64), out, popularity, prior)

    @classmethod
    def fit_calibrated(cls, histories: Histories, n_items: int, priors: tuple[float, ...] = PRIORS) -> BehaviourPolicy:
        """:meth:`fit` with the prior of ``priors`` that maximises the mean log ``mu`` of the validation split's
        held-out plays (each after its history's last song); :data:`BEHAVIOUR_PRIOR` when there are none."""
        base = cls.fit(histories, n_items)
        _, pos = histories.targets("valid")
        if not len(pos):
            return base
        logged, last = histories.items[pos], last_songs(histories, pos)
        ll = [float(np.log(replace(base, prior=p).prob(last, logged)).mean()) for p in priors]
        return replace(base, prior=priors[int(np.argmax(ll))])

    def prob(self, last: np.ndarray, items: np.ndarray) -> np.ndarray:
        """``mu(items | last)``; ``last`` (n,) broadcast against ``items`` (n,) or (n, m). PAD last: popularity."""
        last = np.asarray(last, np.int64)
        items = np.asarray(items, np.int64)
        lb = last.reshape(last.shape + (1,) * (items.ndim - last.ndim))
        key = np.maximum(lb, 0) * self.n_items + np.maximum(items, 0)
        c = np.zeros(key.shape)
        if len(self.codes):
            at = np.minimum(np.searchsorted(self.codes, key), len(self.codes) - 1)
            c = np.where(self.codes[at] == key, self.counts[at], 0.0)
        p = self.popularity[np.maximum(items, 0)]
        mu = (c + self.prior * p) / (self.out[np.maximum(lb, 0)] + self.prior)
        return np.where(lb == PAD, p, mu)


@dataclass
class RewardModel:
    """``q(a) = (S(a) + m * mean) / (N(a) + m)``: song a's mean training reward shrunk toward the mean of all.

    ``S(a)``, ``N(a)``: sum and count of a's training rewards; m = :data:`REWARD_PRIOR`.
    """

    values: np.ndarray  # (n_items,)

    @classmethod
    def fit(cls, histories: Histories, n_items: int, prior: float = REWARD_PRIOR) -> RewardModel:
        """Average the training events' rewards per song (held-out plays never enter)."""
        if histories.rewards is None:
            raise ValueError("the histories have no rewards (data.reward_col is empty)")
        mask = histories.train_mask()
        items, r = histories.items[mask], histories.rewards[mask].astype(np.float64)
        mean = float(r.mean()) if len(r) else 0.0
        s = np.bincount(items, weights=r, minlength=n_items)
        n = np.bincount(items, minlength=n_items)
        return cls((s + prior * mean) / (n + prior))


def last_songs(histories: Histories, positions: np.ndarray) -> np.ndarray:
    """The song before each flat position (PAD for a user's first event, which has none)."""
    first = np.isin(positions, histories.offsets[:-1])
    return np.where(first, PAD, histories.items[np.maximum(positions - 1, 0)])


def target_probability(ranked: np.ndarray, items: np.ndarray, k: int) -> np.ndarray:
    """``pi(items[i] | x_i)`` of the uniform-over-top-k policy of ``ranked`` (-1 padding is not a song)."""
    top = np.asarray(ranked)[:, :k]
    size = (top >= 0).sum(1)
    listed = ((top == np.asarray(items)[:, None]) & (top >= 0)).any(1)
    return np.where(listed & (size > 0), 1.0 / np.maximum(size, 1), 0.0)


def estimates(ranked: np.ndarray, logged: np.ndarray, last: np.ndarray, rewards: np.ndarray,
              behaviour: BehaviourPolicy, reward_model: RewardModel, k: int, clip: float = CLIP) -> dict[str, float]:
    """IPS, SNIPS, DR and ESS of the uniform-over-top-``k`` policy of ``ranked`` on logged plays.

    ``logged`` (n,) the played songs, ``last`` (n,) the song before each (PAD: none), ``rewards`` (n,) theirs.
    """
    w = clip_weights(target_probability(ranked, logged, k) / behaviour.prob(last, logged), clip)
    top = np.asarray(ranked)[:, :k]
    valid = top >= 0
    q_list = np.where(valid, reward_model.values[np.maximum(top, 0)], 0.0).sum(1)
    q_target = np.where(valid.any(1), q_list / np.maximum(valid.sum(1), 1), 0.0)
    q_logged = reward_model.values[logged]
    return {"ips": ips(w, rewards), "snips": snips(w, rewards), "dr": dr(w, rewards, q_logged, q_target),
            "ess": effective_sample_size(w), "clipped": int((w >= clip).sum())}


def reward_at_k(ranked: np.ndarray, logged: np.ndarray, rewards: np.ndarray, k: int) -> float:
    """``mean_i r_i [a_i in top-k]``: each hit counts its logged reward."""
    top = np.asarray(ranked)[:, :k]
    hit = ((top == np.asarray(logged)[:, None]) & (top >= 0)).any(1)
    return float(np.where(hit, rewards, 0.0).mean()) if len(hit) else float("nan")


@dataclass
class OffPolicy:
    """What off-policy evaluation needs from the training part, fitted once and shared by every model row."""

    behaviour: BehaviourPolicy
    reward_model: RewardModel
    clip: float = CLIP

    @classmethod
    def fit(cls, histories: Histories, n_items: int, clip: float = CLIP, prior: float | None = None) -> OffPolicy:
        """The behaviour policy and reward model of the training part of ``histories`` (which has rewards); the
        behaviour policy's prior calibrated on the validation plays unless ``prior`` is given."""
        mu = BehaviourPolicy.fit_calibrated(histories, n_items) if prior is None else BehaviourPolicy.fit(histories, n_items, prior)
        return cls(mu, RewardModel.fit(histories, n_items), clip)

    def describe(self) -> dict[str, Any]:
        """How the estimates were made, for the eval output."""
        return {"target_policy": "uniform over the model's top-K",
                "behaviour_policy": f"first-order transitions after the last song, smoothed toward popularity "
                                    f"(prior {self.behaviour.prior:g}, the likeliest for the validation plays)",
                "reward_model": f"song's mean training reward shrunk toward the global mean (prior {REWARD_PRIOR:g})",
                "clip": self.clip}

    def metrics(self, ranked: np.ndarray, histories: Histories, positions: np.ndarray,
                ks: list[int]) -> dict[str, float]:
        """``eval/reward@K``, ``eval/ndcg_pos@K``, ``eval/reward_{ips,snips,dr}@K`` and ``eval/ess@K`` for every K.

        ``positions`` are the flat positions of the held-out plays, one per ``ranked`` row.
        """
        assert histories.rewards is not None
        logged = histories.items[positions]
        r = histories.rewards[positions].astype(np.float64)
        last = last_songs(histories, positions)
        pos = r > 0
        out: dict[str, float] = {}
        for k in ks:
            est = estimates(ranked, logged, last, r, self.behaviour, self.reward_model, k, self.clip)
            out[f"eval/reward@{k}"] = reward_at_k(ranked, logged, r, k)
            out[f"eval/ndcg_pos@{k}"] = float(metrics.ndcg(ranked[pos], logged[pos], k)) if pos.any() else float("nan")
            out[f"eval/reward_ips@{k}"] = est["ips"]
            out[f"eval/reward_snips@{k}"] = est["snips"]
            out[f"eval/reward_dr@{k}"] = est["dr"]
            out[f"eval/ess@{k}"] = est["ess"]
        return out


__all__ = ["BehaviourPolicy", "OffPolicy", "RewardModel", "clip_weights", "dr", "effective_sample_size",
           "estimates", "ips", "last_songs", "reward_at_k", "snips", "target_probability"]
