"""The original Agent: owns the actor and the critic; ``wake`` for training, ``ready`` for
inference, ``predict`` proto-actions, ``propagate`` one learning step, ``recommend`` items.

One learning step is an entry of :data:`whatnext.rl.algorithms.ALGORITHMS` (``train.algorithm``).
Recommending: ``score_candidates`` puts the items nearest each proto-action (plus, with
critic re-ranking, the last item's top successors) on a slate with their actor and critic
scores; ``choose`` keeps the k best, by score or diversified (:mod:`whatnext.evaluation.diversify`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
import torch

from whatnext import models
from whatnext.config import Config
from whatnext.data import Dataset, pad_histories
from whatnext.evaluation.diversify import diversify, typical_distance
from whatnext.rl import offpolicy, rewards
from whatnext.rl.algorithms import ALGORITHMS, optimisers, resolve_device, threads_for
from whatnext.rl.batch import SUCCESSORS, Batch
from whatnext.rl.cooccurrence import ppmi_vectors
from whatnext.rl.distributed import SOLO, Replica
from whatnext.rl.side import AFTER_ACTOR_FROM, SIDE_MAX, beside
from whatnext.rl.state import State
from whatnext.rl.transitions import Transitions


def model_args(cfg: Config, dataset: Dataset) -> dict[str, Any]:
    """Primitive constructor arguments of actor and critic for this config and catalogue."""
    mode = cfg.model.item_embedding
    has = dataset.catalogue.has_features
    if mode == "auto":  # the original design reads song attributes; hybrid adds a learned part
        mode = ("features" if cfg.train.algorithm == "original" else "both") if has else "learned"
    if mode in ("features", "both") and not has:
        from whatnext.errors import ConfigError

        raise ConfigError(
            f"model.item_embedding is {cfg.model.item_embedding!r} but {dataset.source} has no item features; "
            f"use 'learned' or 'auto', or give data.items_path"
        )
    feature_dim = len(dataset.catalogue.feature_names) if mode in ("features", "both") else 0
    learned_dim = cfg.model.embedding_dim if mode in ("learned", "both") else 0
    args: dict[str, Any] = {
        "n_items": len(dataset.catalogue), "feature_dim": feature_dim, "learned_dim": learned_dim,
        "hidden_size": cfg.model.hidden_size, "num_layers": cfg.model.num_layers, "dropout": cfg.model.dropout,
    }
    if cfg.model.name == "transformer" and cfg.model.hidden_size % cfg.model.heads:
        from whatnext.errors import ConfigError

        raise ConfigError(f"{cfg.source or 'the built-in defaults'}: key 'model.heads' is {cfg.model.heads} but "
                          f"model.hidden_size {cfg.model.hidden_size} is not a multiple of it; use a divisor of it")
    # architecture-specific arguments (the transformer's heads and position-table length), by config key
    args.update({key: getattr(cfg.model, key) for key in models.EXTRA_ARGS[cfg.model.name]})
    return args


def item_init(cfg: Config, args: dict[str, Any]) -> str:
    """``model.item_init`` resolved: ``auto`` starts a learned table that stands alone from
    co-occurrence and one beside the catalogue's features at random (chosen by validation
    NDCG@10 over three seeds: +8% on MovieLens, -3% on the demo's feature+learned vectors)."""
    if cfg.model.item_init != "auto":
        return cfg.model.item_init
    return "random" if args["feature_dim"] else "cooccurrence"


class Agent:
    """Actor + critic + optimisers over one State; implements ``recommend(histories, k)``."""

    name = "agent"

    def __init__(self, state: State, cfg: Config, args: dict[str, Any] | None = None, init_items: bool = True) -> None:
        self.state, self.cfg = state, cfg
        if state.index_kind != cfg.recommend.index:
            state.index_kind, state._index = cfg.recommend.index, None
        threads = threads_for(cfg, len(state.catalogue), training=False)  # wake() sets training's count
        if threads:
            torch.set_num_threads(threads)
        self.args = args or model_args(cfg, state.dataset)
        self.device = resolve_device(cfg.train.device)
        self.actor, self.critic = models.build(cfg.model.name, self.args)
        if self.args["feature_dim"]:
            feats = torch.from_numpy(state.catalogue.features)
            for table in {self.actor.items, self.actor.out_items, self.critic.items}:
                table.set_features(feats)
        if init_items and self.args["learned_dim"] and item_init(cfg, self.args) == "cooccurrence":
            vec = torch.from_numpy(ppmi_vectors(state.dataset, self.args["learned_dim"], seed=cfg.train.seed))
            for table in (self.actor.items, self.actor.out_items, self.critic.items):
                table.init_learned(vec)
        if self.device.type != "cpu":
            self.actor.to(self.device)
            self.critic.to(self.device)
        # tuned on validation when model.tune_rerank: one weight for rankings that exclude played
        # items, one for rankings that keep them (repeats change what the critic is worth)
        self.rerank_weight = cfg.model.rerank_weight
        self.rerank_weight_seen = cfg.model.rerank_weight
        # p ~ exp(score_scale * score) is calibrated on validation (maximum likelihood of the
        # targets), one scale per protocol; the diversity re-rank needs probabilities
        self.score_scale = self.score_scale_seen = 1.0
        self.transitions = Transitions(state.dataset)
        self.actor_opt: torch.optim.Optimizer | None = None
        self.critic_opt: torch.optim.Optimizer | None = None
        # sqn / sac / reinforce: extra heads, target network and their optimiser (training only)
        self.offpolicy: offpolicy.OffPolicy | None = None
        self.offpolicy_opt: torch.optim.Optimizer | None = None
        # sqn / sac: the Q head that ranks with recommend.q_beta > 0 (training's, or a checkpoint's)
        self.q_heads: offpolicy.Heads | None = None
        self._vectors: np.ndarray | None = None
        self._div_space: tuple[np.ndarray, float] | None = None
        self.population_sigma: np.ndarray | None = None
        self.delta = 1.0
        self.replica: Replica = SOLO  # distributed training: the process's part in the job (rl/distributed.py)

    # -- the original life cycle ----------------------------------------------------------

    def wake(self) -> None:
        """Prepare for training: optimisers and the reward's per-user statistics."""
        threads = threads_for(self.cfg, len(self.state.catalogue))
        if threads:
            torch.set_num_threads(threads)
        self.actor_opt, self.critic_opt = optimisers(self)
        offpolicy.attach(self)
        self._refresh_reward_stats()

    def ready(self) -> None:
        """Prepare for inference: evaluation mode, no optimisers."""
        self.actor.eval()
        self.critic.eval()
        self._vectors = self._div_space = None

    def _refresh_reward_stats(self) -> None:
        vectors = self.item_vectors()
        if self.cfg.train.rewards.get("diversity", 0):
            self.population_sigma = rewards.population_sigma(self.state.histories, vectors)
        else:
            self.population_sigma = np.zeros(len(self.state.histories))
        self.delta = rewards.distance_scale(vectors, seed=self.cfg.train.seed)

    def item_vectors(self) -> np.ndarray:
        """Every item's vector in the actor's space (cached until the next learning step)."""
        if self._vectors is None:
            with torch.no_grad():
                self._vectors = self.actor.out_items.all().cpu().numpy().astype(np.float32)
            if self.args["learned_dim"]:
                self.state.set_embeddings(self._vectors)
        return self._vectors

    def predict(self, inputs: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """Proto-actions (B, dim) for right-padded histories."""
        _inference(self.actor)
        with torch.inference_mode():
            out = self.actor(torch.from_numpy(inputs).to(self.device), torch.from_numpy(lengths).to(self.device))
        return out.cpu().numpy()

    def propagate(self, batch: Batch, rng: np.random.Generator, gen: torch.Generator) -> dict[str, float]:
        """One learning step with the configured algorithm; returns namespaced metrics."""
        metrics = ALGORITHMS[self.cfg.train.algorithm](self, batch, rng, gen)
        self._vectors = self._div_space = None  # the item table may have moved
        return metrics

    # -- recommending -------------------------------------------------------------------

    def recommend(self, histories: Sequence[np.ndarray], k: int,
                  exclude: Sequence[np.ndarray] | None = None) -> np.ndarray:
        """Top-k item indices for each history (nearest items to the proto-action)."""
        return self.recommend_with_distances(histories, k, exclude)[0]

    def recommend_with_distances(self, histories: Sequence[np.ndarray], k: int,
                                 exclude: Sequence[np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Top-k indices and distances to the proto-action for each history, in blocks of 1024.

        With ``model.rerank = M > 0`` the max(M, k) nearest items and the last item's top
        successors are re-ranked by the critic (Wolpertinger, Dulac-Arnold et al. 2015);
        otherwise the nearest k are returned. With ``recommend.diversity > 0`` the slate holds
        max(recommend.diversity_pool, M, k) nearest items (plus the successors) and the list is
        chosen by :func:`whatnext.evaluation.diversify.diversify` instead of by score alone.
        """
        pool = max(k, self.cfg.recommend.diversity_pool if self.cfg.recommend.diversity > 0 else 0)
        out_i, out_d = [], []
        for s in range(0, len(histories), 1024):
            ex = None if exclude is None else exclude[s : s + 1024]
            i, d = self.choose(self.score_candidates(histories[s : s + 1024], ex, pool), k, seen=exclude is None)
            out_i.append(i)
            out_d.append(d)
        if not out_i:
            return np.zeros((0, k), np.int64), np.zeros((0, k))
        return np.concatenate(out_i), np.concatenate(out_d)

    def score_candidates(self, histories: Sequence[np.ndarray], exclude: Sequence[np.ndarray] | None,
                         pool: int) -> Scored:
        """The max(pool, model.rerank) items nearest each history's proto-action (plus, when
        re-ranking, the last item's top successors) with their actor and critic scores.

        A pool or re-rank slate larger than the catalogue means the whole catalogue: the slate is
        never wider than the catalogue (the extra columns would only be padding)."""
        self.item_vectors()
        self.tune_index()
        n = len(self.state.catalogue)
        m = min(self.cfg.model.rerank, n)
        padded, lengths = pad_histories(histories, self.cfg.model.window)
        # only padding lies beyond the longest history: a recurrent network need not read it (the
        # same outputs, bit for bit: tests/test_serving_speed.py); short histories gain the most
        inputs = padded[:, : int(lengths.max(initial=1))]
        actor_inputs = padded if self.actor.reads_padding else inputs
        # a request or two: the critic reads the history in another thread, beside the actor and the index or, for a
        # large catalogue, beside the index's long GIL-free scan alone (rl/side.py: AFTER_ACTOR_FROM); the same
        # outputs, bit for bit; on one core or for a batch, in turn
        aside = bool(m) and len(inputs) <= SIDE_MAX
        early = aside and n < AFTER_ACTOR_FROM
        summary = beside(self._critic_summary, inputs, lengths) if early else None
        proto = self.predict(actor_inputs, lengths)
        if aside and not early:
            summary = beside(self._critic_summary, inputs, lengths)
        beta = offpolicy.q_beta(self)  # sqn / sac: + beta * Q over the softmax's Q_POOL best
        i, d = self.state.nearest(proto, min(max(pool, m, 1, offpolicy.Q_POOL if beta else 0), n), exclude)
        log_q = None
        if m:
            i, d = self._add_successors(inputs, lengths, proto, i, d, exclude)
            log_q = self._critic_log_values(inputs, lengths, i, None if summary is None else summary.result())
        logit = self._actor_logits(d)
        if beta:
            logit = logit + beta * offpolicy.q_scores(self, actor_inputs, lengths, i)
        logit[i < 0] = -np.inf
        return Scored(i, d, logit, log_q)

    def tune_index(self, users: int = 300) -> None:
        """An approximate index (recommend.index ivf/hnsw) tunes its search parameter on the
        proto-actions of a seeded sample of users once per build: what it will really be asked."""
        index = self.state.index
        if getattr(index, "tuned_on_queries", True):
            return
        h = self.state.histories
        eligible = np.flatnonzero(h.train_len > 0)
        pick = np.random.default_rng([self.cfg.train.seed, 29]).choice(eligible, min(users, len(eligible)), replace=False)
        if len(pick) == 0:
            return
        inputs, lengths = pad_histories([h.of(int(u), "train") for u in pick], self.cfg.model.window)
        index.tune(self.predict(inputs, lengths))

    def choose(self, scored: Scored, k: int, seen: bool, plain: bool = False,
               weight: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The k best of each row of ``scored`` (items, distances), -1 / inf padded.

        By score (ties to the nearer candidate), or with ``recommend.diversity > 0`` (and not
        ``plain``) by :func:`whatnext.evaluation.diversify.diversify` over the calibrated scores. The
        re-rank ``weight`` defaults to the agent's own for the protocol (``seen``).
        """
        if weight is None:
            weight = self.rerank_weight_seen if seen else self.rerank_weight
        score = scored.score(weight)
        if self.cfg.recommend.diversity > 0 and not plain:
            vectors, scale = self.diversity_space()
            calibrated = score * (self.score_scale_seen if seen else self.score_scale)
            order = diversify(scored.items, calibrated, vectors, k, self.cfg.recommend.diversity, scale)
        else:
            order = np.argsort(-score, axis=1, kind="stable")[:, :k]
            order[~np.isfinite(np.take_along_axis(score, order, 1))] = -1
            if order.shape[1] < k:  # a slate narrower than k: pad
                order = np.concatenate([order, np.full((len(order), k - order.shape[1]), -1)], axis=1)
        keep = order >= 0
        order = np.maximum(order, 0)
        return (np.where(keep, np.take_along_axis(scored.items, order, 1), -1),
                np.where(keep, np.take_along_axis(scored.dist, order, 1), np.inf))

    def diversity_space(self) -> tuple[np.ndarray, float]:
        """The vectors diversity is measured in (catalogue features if any, else the item table)
        and their typical distance: where ``diversify`` spreads lists and ``eval`` reports ILD."""
        if self._div_space is None:
            cat = self.state.catalogue
            vec = cat.features if cat.has_features and cat.features is not None else self.item_vectors()
            self._div_space = (vec, typical_distance(vec))
        return self._div_space

    def _add_successors(self, inputs: np.ndarray, lengths: np.ndarray, proto: np.ndarray, cand: np.ndarray,
                        dist: np.ndarray, exclude: Sequence[np.ndarray] | None) -> tuple[np.ndarray, np.ndarray]:
        """Append the last item's most frequent successors (not excluded, not already there) to the slate."""
        last = inputs[np.arange(len(inputs)), lengths - 1]
        succ = self.transitions.successors(last, SUCCESSORS)
        drop = (succ[:, :, None] == cand[:, None, :]).any(-1) | (succ < 0)
        if exclude is not None:
            ex, _ = pad_histories(exclude, max(1, max((len(e) for e in exclude), default=1)))
            drop |= (succ[:, :, None] == ex[:, None, :]).any(-1)
        succ = np.where(drop, -1, succ)
        vec = self.item_vectors()[np.maximum(succ, 0)]
        d = np.sqrt(((vec - proto[:, None, :]) ** 2).sum(-1))
        return np.concatenate([cand, succ], 1), np.concatenate([dist, np.where(succ < 0, np.inf, d)], 1)

    def candidate_extra(self, inputs: np.ndarray, lengths: np.ndarray, cand: np.ndarray) -> torch.Tensor:
        """The critic's per-candidate inputs (B, M, 3): seen in the window, transition features."""
        last = inputs[np.arange(len(inputs)), lengths - 1]
        seen = in_window(cand, inputs)[..., None].astype(np.float64)
        return torch.from_numpy(np.concatenate([seen, self.transitions.features(last, cand)], -1)).float()

    def _actor_logits(self, dist: np.ndarray) -> np.ndarray:
        """The actor's log-probabilities (up to a row constant): -distance^2 * exp(log_scale)."""
        return -(dist.astype(np.float64) ** 2) * self.actor.log_scale.exp().item()

    def _critic_summary(self, inputs: np.ndarray, lengths: np.ndarray) -> torch.Tensor:
        """The critic's reading of each history (B, H), for :meth:`_critic_log_values`."""
        _inference(self.critic)
        with torch.inference_mode():
            return self.critic.encode(torch.from_numpy(inputs).to(self.device), torch.from_numpy(lengths).to(self.device))

    def _critic_log_values(self, inputs: np.ndarray, lengths: np.ndarray, cand: np.ndarray,
                           summary: torch.Tensor | None = None) -> np.ndarray:
        """log of the critic's value of each candidate, clipped to [1e-4, 1] first (``summary``: the
        histories' :meth:`_critic_summary`, when already read)."""
        vectors = self.item_vectors()
        if summary is None:
            summary = self._critic_summary(inputs, lengths)
        with torch.inference_mode():
            q = self.critic.score(summary, torch.from_numpy(vectors[np.maximum(cand, 0)]).to(self.device),
                                  self.candidate_extra(inputs, lengths, np.maximum(cand, 0)).to(self.device)
                                  ).cpu().numpy().astype(np.float64)
        return np.log(np.clip(q, 1e-4, 1.0))


class Scored(NamedTuple):
    """A slate of candidates per history with their scores (B, P) each."""

    items: np.ndarray  #: candidate item indices, -1 = padding
    dist: np.ndarray  #: distance to the proto-action (inf at padding)
    logit: np.ndarray  #: the actor's log-probability up to a row constant, -inf at padding
    log_q: np.ndarray | None  #: log critic value; None without re-ranking

    def score(self, weight: float) -> np.ndarray:
        """Re-rank score: actor logit + weight * log(critic value), a product of experts.

        The weight (``rerank_weight`` when played items are excluded, ``rerank_weight_seen``
        when they are kept) starts at the config's value and is tuned on validation
        (``model.tune_rerank``).
        """
        return self.logit if self.log_q is None else self.logit + weight * self.log_q


def _inference(module: torch.nn.Module) -> None:
    """Evaluation mode (no dropout) for ``module``; a no-op when it is in it already: ``eval()`` walks
    every submodule, a cost a single request notices."""
    if module.training:
        module.eval()


def in_window(candidates: np.ndarray, inputs: np.ndarray) -> np.ndarray:
    """(B, M) bool: is each candidate among its row's history window items."""
    return (candidates[:, :, None] == inputs[:, None, :]).any(-1)
