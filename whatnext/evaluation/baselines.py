"""Baseline recommenders, each with the :class:`whatnext.evaluation.protocol.Recommender` shape.

* ``random``: a uniformly random ranking, seeded; the same input gives the same answer.
* ``popular``: the most played items in the training part.
* ``markov``: first-order item-to-item transitions counted over consecutive training
  events of the same user; the scores are the row of the history's last item, ties (and
  items never seen after it, and empty histories) ordered by training popularity.
* ``neighbours``: the items nearest the history's last item in embedding space (the
  catalogue's features unless embeddings are given), by Euclidean distance; the last item
  itself is never recommended. Empty histories get the popular ranking.

``fit`` reads only the training part (``train_positions`` / ``train_mask`` /
``dataset.popularity()``), so nothing of the validation or test targets is learned. Every
ranking breaks ties towards the smaller item index (:func:`whatnext.search.topk_largest`),
so results are deterministic.

* ``lstm``: the agent's own LSTM trained only with cross-entropy on the next item at every
  step (GRU4Rec-style), the supervised reference the agent must beat. It imports torch
  lazily, when fitted.
* ``sasrec``: SASRec trained with full softmax cross-entropy at every position (Klenitskiy &
  Vasilev, RecSys 2023): the transformer actor (``model.name = "transformer"``) with SASRec's
  MovieLens architecture (2 blocks, 1 head, width ``model.embedding_dim``, dropout 0.2), the
  same budget as the agent, no critic. Its scores are the actor's distance logits, not a dot
  product.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from typing import Any

import numpy as np

from whatnext.data import Dataset
from whatnext.errors import DataError
from whatnext.search import ExactIndex, mask_excluded, topk_largest

Exclude = Sequence[np.ndarray] | None

#: Largest score matrix (rows x items) a baseline builds at once, in elements (64 MiB of float64).
BLOCK_ELEMENTS = 8 << 20


def rank_scores(scores: np.ndarray, k: int, exclude: Exclude = None) -> np.ndarray:
    """Top-``k`` item indices of each score row, best first, ties to the smaller index.

    ``exclude[i]`` items are removed from row i (the matrix is modified in place). Rows are
    right-padded with -1 where fewer than k items remain (k above the catalogue size, or
    too many excluded). Scores must not be ``-inf`` (used as the exclusion mark).
    """
    m, n = scores.shape
    if k < 1:
        raise ValueError("k must be >= 1")
    if exclude is not None:
        mask_excluded(scores, exclude, value=-np.inf)
    out = np.full((m, k), -1, dtype=np.int64)
    if n == 0 or m == 0:
        return out
    idx, val = topk_largest(scores, k)
    idx = np.where(np.isneginf(val), -1, idx)
    out[:, : idx.shape[1]] = idx
    return out


def last_items(histories: Sequence[np.ndarray]) -> np.ndarray:
    """The last item of every history; -1 for an empty one."""
    lens = np.fromiter((len(h) for h in histories), dtype=np.int64, count=len(histories))
    out = np.full(len(histories), -1, dtype=np.int64)
    if lens.sum():
        flat = np.concatenate([np.asarray(h, dtype=np.int64) for h in histories])
        ends = np.cumsum(lens)
        has = lens > 0
        out[has] = flat[ends[has] - 1]
    return out


def _blocks(n_rows: int, n_items: int) -> range:
    return range(0, n_rows, max(1, BLOCK_ELEMENTS // max(1, n_items)))


class _Fitted:
    """Shared state: the catalogue size and the training popularity."""

    name = "baseline"

    def __init__(self) -> None:
        self.n_items = 0
        self.counts: np.ndarray | None = None

    def fit(self, dataset: Dataset) -> None:
        self.n_items = len(dataset.catalogue)
        self.counts = dataset.popularity().astype(np.float64)

    def _need_fit(self) -> None:
        if self.counts is None:
            raise RuntimeError(f"baseline {self.name!r}: call fit(dataset) before recommend")

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class RandomBaseline(_Fitted):
    """A random ranking. The draws are seeded by ``seed`` and the content of the batch asked for,
    so asking the same question twice gives the same answer."""

    name = "random"

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        self.seed = int(seed)

    def recommend(self, histories: Sequence[np.ndarray], k: int, exclude: Exclude = None) -> np.ndarray:
        self._need_fit()
        h = zlib.crc32(np.asarray([len(x) for x in histories], dtype=np.int64).tobytes())
        for x in histories:
            h = zlib.crc32(np.ascontiguousarray(x, dtype=np.int64).tobytes(), h)
        rng = np.random.default_rng([self.seed, h])
        out = np.full((len(histories), k), -1, dtype=np.int64)
        for s in _blocks(len(histories), self.n_items):
            rows = slice(s, s + max(1, BLOCK_ELEMENTS // max(1, self.n_items)))
            n = len(histories[rows])
            scores = rng.random((n, self.n_items))
            out[rows] = rank_scores(scores, k, None if exclude is None else exclude[rows])
        return out


class PopularBaseline(_Fitted):
    """The most played items of the training part, the same list for everyone (minus exclusions)."""

    name = "popular"

    def recommend(self, histories: Sequence[np.ndarray], k: int, exclude: Exclude = None) -> np.ndarray:
        self._need_fit()
        assert self.counts is not None
        out = np.full((len(histories), k), -1, dtype=np.int64)
        step = max(1, BLOCK_ELEMENTS // max(1, self.n_items))
        for s in _blocks(len(histories), self.n_items):
            n = len(histories[s : s + step])
            scores = np.broadcast_to(self.counts, (n, self.n_items)).copy()
            out[s : s + n] = rank_scores(scores, k, None if exclude is None else exclude[s : s + step])
        return out


class MarkovBaseline(_Fitted):
    """First-order transitions ``a -> b`` counted over consecutive training events of one user.

    Score of item b after a history ending in a: ``count(a -> b) + pop(b) / (max pop + 1)``,
    so transitions decide and training popularity (a value below 1) orders the ties and fills
    the rest of the list. Counts are kept as CSR rows (``indptr``, ``cols``, ``vals``).
    """

    name = "markov"

    def __init__(self) -> None:
        super().__init__()
        self.indptr = np.zeros(1, dtype=np.int64)
        self.cols = np.zeros(0, dtype=np.int64)
        self.vals = np.zeros(0, dtype=np.float64)

    def fit(self, dataset: Dataset) -> None:
        super().fit(dataset)
        h = dataset.histories
        n = self.n_items
        pos = h.train_positions()  # t >= 1 inside the training part: t-1 is training too
        codes = h.items[pos - 1].astype(np.int64) * n + h.items[pos]
        uniq, counts = np.unique(codes, return_counts=True)
        rows = uniq // n
        self.cols = uniq % n
        self.vals = counts.astype(np.float64)
        self.indptr = np.searchsorted(rows, np.arange(n + 1), side="left").astype(np.int64)

    def transitions(self, item: int) -> dict[int, int]:
        """Training transition counts out of ``item`` as ``{next item: count}`` (for inspection)."""
        a, b = self.indptr[item], self.indptr[item + 1]
        return {int(c): int(v) for c, v in zip(self.cols[a:b], self.vals[a:b])}

    def recommend(self, histories: Sequence[np.ndarray], k: int, exclude: Exclude = None) -> np.ndarray:
        self._need_fit()
        assert self.counts is not None
        base = self.counts / (self.counts.max() + 1.0)
        last = last_items(histories)
        out = np.full((len(histories), k), -1, dtype=np.int64)
        step = max(1, BLOCK_ELEMENTS // max(1, self.n_items))
        for s in _blocks(len(histories), self.n_items):
            li = last[s : s + step]
            n = len(li)
            scores = np.broadcast_to(base, (n, self.n_items)).copy()
            has = li >= 0
            start = np.where(has, self.indptr[np.maximum(li, 0)], 0)
            lens = np.where(has, self.indptr[np.maximum(li, 0) + 1] - start, 0)
            if lens.sum():
                row = np.repeat(np.arange(n), lens)
                within = np.arange(lens.sum()) - np.repeat(np.cumsum(lens) - lens, lens)
                at = np.repeat(start, lens) + within
                scores[row, self.cols[at]] += self.vals[at]
            out[s : s + n] = rank_scores(scores, k, None if exclude is None else exclude[s : s + step])
        return out


class NeighboursBaseline(_Fitted):
    """Nearest neighbours of the history's last item in embedding space (exact Euclidean search).

    ``embeddings`` (n_items, d) default to the catalogue's normalised features at ``fit``; a
    catalogue without features needs them given. The last item itself is always excluded;
    an empty history gets the training-popularity ranking.
    """

    name = "neighbours"

    def __init__(self, embeddings: np.ndarray | None = None) -> None:
        super().__init__()
        self.embeddings = None if embeddings is None else np.asarray(embeddings, dtype=np.float32)
        self.index: ExactIndex | None = None
        self._popular = PopularBaseline()

    def fit(self, dataset: Dataset) -> None:
        super().fit(dataset)
        emb = self.embeddings if self.embeddings is not None else dataset.catalogue.features
        if emb is None:
            raise DataError(
                f"{dataset.source}: the 'neighbours' baseline needs item embeddings and the items have no "
                f"features (set data.items_path or data.feature_cols, or pass learned embeddings)"
            )
        if emb.ndim != 2 or len(emb) != self.n_items:
            raise ValueError(f"embeddings must have shape ({self.n_items}, d), got {emb.shape}")
        self.index = ExactIndex(emb)
        self._popular.fit(dataset)

    def recommend(self, histories: Sequence[np.ndarray], k: int, exclude: Exclude = None) -> np.ndarray:
        self._need_fit()
        assert self.index is not None
        last = last_items(histories)
        has = last >= 0
        out = np.full((len(histories), k), -1, dtype=np.int64)
        if has.any():
            rows = np.flatnonzero(has)
            queries = self.index.vectors[last[rows]]
            ex = [np.append(np.asarray(exclude[r], dtype=np.int64), last[r]) if exclude is not None
                  else last[r : r + 1] for r in rows.tolist()]
            idx, _ = self.index.search(queries, k, ex)
            out[rows] = idx
        if (~has).any():
            rows = np.flatnonzero(~has)
            out[rows] = self._popular.recommend([histories[r] for r in rows.tolist()], k,
                                                None if exclude is None else [exclude[r] for r in rows.tolist()])
        return out


def epoch_steps(cfg: Any, dataset: Dataset) -> int:
    """Learning steps in one epoch of ``cfg``'s training on ``dataset`` (one process): where a baseline that
    keeps its best epoch puts its checkpoints."""
    from whatnext.rl.algorithms import positions_for
    from whatnext.rl.schedule import steps_per_epoch

    return steps_per_epoch(len(positions_for(dataset, cfg.train.algorithm, cfg.model.window)), cfg.train.batch_size)


class SupervisedLSTMBaseline(_Fitted):
    """The same LSTM as the agent's actor, trained only with cross-entropy on the next item at
    every step (GRU4Rec-style), ranking items by distance to its output. No critic, no reward.

    ``config`` supplies the model sizes, window, batch size, learning rate, epochs and seed
    (the agent's own config, so both get the same budget). ``fit`` trains in memory;
    :mod:`whatnext.evaluation.baseline_runs` trains it once as a run of its own and hands the
    loaded network to :meth:`use`: the same steps, so the same weights.
    """

    name = "lstm"
    #: the baseline trains this many times the agent's epochs (or legacy samples)
    epoch_factor = 1
    #: keep the epoch with the best validation NDCG@10 (a checkpoint scored after every epoch), not the last
    best_by_validation = False

    def __init__(self, config: Any = None, seed: int = 0) -> None:
        super().__init__()
        self.config = config
        self.seed = seed
        self.agent: Any = None

    @staticmethod
    def fix(cfg: Any) -> Any:
        """Make ``cfg`` (in place) the baseline's: the hybrid algorithm's supervised loss alone
        (rl_weight 0), no critic re-ranking, and no legacy model files (they are the agent's). The
        network is the LSTM whatever actor the agent has (``sasrec`` is the self-attention one)."""
        cfg.train.algorithm, cfg.train.rl_weight, cfg.model.rerank = "hybrid", 0.0, 0
        cfg.model.name = "lstm"
        cfg.paths.model_agent_path = cfg.paths.model_critic_path = ""
        return cfg

    @classmethod
    def budget(cls, cfg: Any) -> Any:
        """Make ``cfg`` (the agent's, in place) the baseline's training budget: ``epoch_factor`` times the
        agent's epochs (or legacy samples); with ``best_by_validation`` a checkpoint scored after every
        epoch, and no early stop (the cache counts a run as complete only at its last step)."""
        cfg.train.epochs *= cls.epoch_factor
        cfg.train.samples *= cls.epoch_factor
        if cls.best_by_validation:
            cfg.train.patience = 0
        return cfg

    def fit(self, dataset: Dataset) -> None:
        import copy

        import torch

        from whatnext.config import Config
        from whatnext.rl.agent import Agent
        from whatnext.rl.algorithms import positions_for, train_hybrid
        from whatnext.rl.environment import learning_steps, total_steps
        from whatnext.rl.schedule import follow, steps_per_epoch
        from whatnext.rl.state import State

        if self.best_by_validation:  # the cached run's training, in a folder of its own that is then deleted
            self._fit_as_run(dataset)
            return
        cfg = self.budget(self.fix(copy.deepcopy(self.config) if self.config is not None else Config()))
        torch.manual_seed(cfg.train.seed)
        agent = Agent(State(dataset), cfg)
        agent.wake()
        positions = positions_for(dataset, "hybrid", cfg.model.window)
        total = total_steps(cfg, steps_per_epoch(len(positions), cfg.train.batch_size))
        for done, _, _, batch, rng, gen in learning_steps(cfg, dataset, positions, 0, total):
            follow(agent, cfg, done, total)  # the training loop's rates
            train_hybrid(agent, batch, rng, gen)
        agent.ready()
        self.use(agent, dataset)

    def _fit_as_run(self, dataset: Dataset) -> None:
        """Train as :func:`whatnext.evaluation.baseline_runs.learned` does (the same steps, so the same weights),
        in a temporary folder, scoring every epoch on validation, and keep the best epoch."""
        import copy
        import tempfile

        from whatnext import checkpoints
        from whatnext.config import Config
        from whatnext.evaluation.validation import validator
        from whatnext.rl.environment import agent_from_payload, train

        cfg = self.budget(self.fix(copy.deepcopy(self.config) if self.config is not None else Config()))
        cfg.train.keep_last = 1
        cfg.train.checkpoint_every = epoch_steps(cfg, dataset)
        with tempfile.TemporaryDirectory() as tmp:
            cfg.paths.models_dir, cfg.paths.run = tmp, self.name
            train(cfg, dataset, evaluator=validator(cfg, dataset), force=True)
            best = checkpoints.marker(cfg.run_dir, "best")
            assert best is not None  # every checkpoint is scored: the first one is marked at least
            agent = agent_from_payload(cfg, dataset, checkpoints.load(best))
        self.use(agent, dataset)

    def use(self, agent: Any, dataset: Dataset) -> None:
        """Recommend with an already trained (inference-ready) network instead of training one."""
        self.agent = agent
        super().fit(dataset)

    def recommend(self, histories: Sequence[np.ndarray], k: int, exclude: Exclude = None) -> np.ndarray:
        self._need_fit()
        return self.agent.recommend(histories, k, exclude)


class SASRecBaseline(SupervisedLSTMBaseline):
    """SASRec with full cross-entropy at every position: the transformer actor trained only with
    the hybrid algorithm's supervised loss over the whole catalogue (never a sampled softmax),
    2 pre-norm blocks of 1 head, width ``model.embedding_dim``, dropout 0.2, Adam at 1e-3 (SASRec's
    MovieLens settings), trained as Klenitskiy & Vasilev's reference is: ``epoch_factor`` (7) times the
    agent's epochs (70 at the default 10, the reference's ~70), keeping the epoch with the best
    validation NDCG@10. Its epochs cost a fraction of the agent's (no critic, no slate), so the wall
    time stays within the agent's. Window, batch size, item vectors and seed are the agent's."""

    name = "sasrec"
    epoch_factor = 7
    best_by_validation = True

    @staticmethod
    def fix(cfg: Any) -> Any:
        SupervisedLSTMBaseline.fix(cfg)
        cfg.model.name, cfg.model.num_layers, cfg.model.heads, cfg.model.dropout = "transformer", 2, 1, 0.2
        cfg.model.hidden_size = cfg.model.embedding_dim
        cfg.train.negatives = 10**8  # at least any catalogue: the full softmax
        cfg.train.actor_lr = 1e-3
        return cfg


#: Baselines by name; each class is constructed with keyword arguments only (see :func:`make`).
#: Those that learn (``lstm``, ``sasrec``) are trained once as runs of their own by
#: :func:`whatnext.evaluation.baseline_runs.fit_baselines`; :func:`make` fits in memory.
BASELINES: dict[str, type] = {
    "random": RandomBaseline,
    "popular": PopularBaseline,
    "markov": MarkovBaseline,
    "neighbours": NeighboursBaseline,
    "lstm": SupervisedLSTMBaseline,
    "sasrec": SASRecBaseline,
}


def available(dataset: Dataset, embeddings: np.ndarray | None = None) -> list[str]:
    """Baseline names usable on ``dataset`` (``neighbours`` needs features or ``embeddings``)."""
    usable = dataset.catalogue.has_features or embeddings is not None
    return [name for name in BASELINES if name != "neighbours" or usable]


def make(name: str, dataset: Dataset, *, seed: int = 0, embeddings: np.ndarray | None = None, config: Any = None) -> Any:
    """Construct baseline ``name`` and fit it on ``dataset``'s training part."""
    if name not in BASELINES:
        from whatnext.config import did_you_mean

        raise ValueError(f"unknown baseline {name!r}{did_you_mean(name, list(BASELINES))}; known: {', '.join(BASELINES)}")
    if name == "random":
        model: Any = RandomBaseline(seed=seed)
    elif name == "neighbours":
        model = NeighboursBaseline(embeddings=embeddings)
    elif name in ("lstm", "sasrec"):
        model = BASELINES[name](config=config, seed=seed)
    else:
        model = BASELINES[name]()
    model.fit(dataset)
    return model


__all__ = [
    "BASELINES", "MarkovBaseline", "NeighboursBaseline", "PopularBaseline", "RandomBaseline",
    "SASRecBaseline", "SupervisedLSTMBaseline", "available", "last_items", "make", "rank_scores",
]
