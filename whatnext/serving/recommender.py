"""The Recommender: data, checkpoint and neighbour index loaded once, answers from memory.

``Recommender.load(config, run=..., checkpoint=...)`` does what every ``whatnext recommend``
used to do per call (read the data, verify and load the checkpoint, build the index); then
``recommend(user=... | history=[...], k, include_seen, diversity)`` answers in milliseconds with
the fields ``whatnext recommend --json`` prints, and ``observe(user, items)`` appends plays to a
user's history (a user id not in the data is a new, cold user). With a play log (``plays=``)
every observed play is written to disk before ``observe`` returns and the log is replayed at
load, so a crash loses no acknowledged play (:mod:`whatnext.serving.plays`).

``reload()`` loads the run's current checkpoint beside the one in use and swaps one reference:
a request holds the model it started with until it ends, so a reload never fails a request.
"""

from __future__ import annotations

import copy
import logging
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from whatnext.config import Config, load_config
from whatnext.errors import CheckpointError, ConfigError, NotFoundError
from whatnext.serving.rows import as_written, display_columns, rank, result_rows

log = logging.getLogger(__name__)

#: most items one history may hold in a request (a longer one is refused, not cut)
MAX_HISTORY = 10_000


class Model(NamedTuple):
    """One loaded checkpoint: what a request uses from start to end."""

    agent: Any
    checkpoint: Path
    step: int
    warnings: list[str]


class Request(NamedTuple):
    """One checked recommendation request: the model (and diversity view) it is answered with, and its history."""

    model: Model
    agent: Any
    user: str | None
    history: np.ndarray
    k: int
    include_seen: bool

    @property
    def key(self) -> tuple[int, int, bool]:
        """Requests with equal keys can be ranked in one batch."""
        return id(self.agent), self.k, self.include_seen


def load_run(cfg: Config, ds: Any, run: str | None, checkpoint: str | Path | None,
             warn: list[str] | None = None) -> tuple[Any, Path, dict[str, Any]]:
    """The inference-ready agent of a run's best (else latest, else newest verified) checkpoint, or of
    an explicit checkpoint file, with the file and its payload. ``cfg`` takes the checkpoint's model settings."""
    from whatnext import checkpoints
    from whatnext.rl.environment import agent_from_payload

    pt = checkpoints.resolve(cfg.resolve(cfg.paths.models_dir), cfg.paths.run if run is None else run, checkpoint, warn=warn)
    payload = checkpoints.load(pt)
    try:
        return agent_from_payload(cfg, ds, payload), pt, payload
    except CheckpointError as e:  # name the file: "the checkpoint" alone does not say which
        raise CheckpointError(f"{pt}: {e}") from None


def prepare(agent: Any) -> Any:
    """Compute once what every request of ``agent`` reads (item vectors, the diversity space); an exact numpy
    index becomes the serving index (the same answers, without a pass over the item matrix in float64 per call),
    and faiss's flat index is screened through a 16-bit copy (the same answers, half the bytes read)."""
    from whatnext.search import ExactIndex, FaissIndex
    from whatnext.serving.index import HalfScreen, ServingIndex

    agent.item_vectors()
    agent.diversity_space()
    if type(agent.state.index) is ExactIndex:  # another index (recommend.index) is kept as configured
        agent.state.index = ServingIndex(agent.state.embeddings)
    elif type(agent.state.index) is FaissIndex and agent.state.index.kind == "exact":
        agent.state.index = HalfScreen(agent.state.index)  # the same answers from half the bytes read
    return agent


class Recommender:
    """A trained run loaded once; ``recommend`` and ``observe`` answer from memory (thread-safe)."""

    def __init__(self, cfg: Config, dataset: Any, *, run: str | None = None, checkpoint: str | Path | None = None,
                 plays: str | Path | None = None) -> None:
        self.cfg, self.dataset = cfg, dataset
        self.run = cfg.paths.run if run is None else run
        self._checkpoint_arg = checkpoint
        self._lock = threading.Lock()  # the plays: one writer at a time, in the log's order
        self._reload_lock = threading.Lock()
        self._extra: dict[str, np.ndarray] = {}  # user id -> plays observed since the data was read
        self._counts: np.ndarray | None = None  # plays per item in the data, counted on first use
        self._display = display_columns(dataset.catalogue)
        self._users = pd.Index(dataset.histories.user_ids)  # hashed once: one lookup per request
        self._model = self._load_model()
        self.plays = None
        if plays is not None:
            from whatnext.serving.plays import PlayLog

            self.plays = PlayLog(Path(plays), self._known_items)
            self.catch_up()

    @classmethod
    def load(cls, config: str | Path | Config | None = None, *, run: str | None = None,
             checkpoint: str | Path | None = None, overrides: dict[str, Any] | None = None,
             plays: str | Path | None = None) -> Recommender:
        """Read the config (file or defaults, then ``overrides``), the data and the checkpoint (``run``'s best,
        or the ``checkpoint`` file); with ``plays`` (a path) replay that play log and append to it."""
        from whatnext.data import load_dataset

        cfg = config if isinstance(config, Config) else load_config(config, overrides)
        return cls(cfg, load_dataset(cfg), run=run, checkpoint=checkpoint, plays=plays)

    # -- the model in use -------------------------------------------------------------------

    @property
    def model(self) -> Model:
        """The checkpoint in use now (a reload replaces it as a whole)."""
        return self._model

    def _load_model(self) -> Model:
        cfg = copy.deepcopy(self.cfg)  # the checkpoint's carried settings go into this copy only
        warn: list[str] = []
        agent, pt, payload = load_run(cfg, self.dataset, self.run, self._checkpoint_arg, warn)
        return Model(prepare(agent), pt, int(payload.get("step", 0)), warn)

    def reload(self) -> bool:
        """Load the run's current checkpoint (best, else latest) and switch to it; False when it is the one in use.

        Errors (a corrupt or foreign checkpoint) propagate and leave the model in use untouched.
        """
        with self._reload_lock:
            new = self._load_model()
            if new.checkpoint == self._model.checkpoint and new.step == self._model.step:
                return False
            self._model = new  # one reference: requests under way keep the model they started with
            log.info("now serving %s (step %d)", new.checkpoint, new.step)
            return True

    def health(self) -> dict[str, Any]:
        """What is loaded: model name, checkpoint, step, catalogue size, users and plays."""
        m = self._model
        return {"status": "ok", "model": m.agent.cfg.model.name, "algorithm": m.agent.cfg.train.algorithm,
                "checkpoint": str(m.checkpoint), "step": m.step, "catalogue_size": len(self.dataset.catalogue),
                "users": len(self.dataset.histories), "users_with_plays": len(self._extra),
                "plays_log": None if self.plays is None else str(self.plays.path)}

    # -- histories --------------------------------------------------------------------------

    def _known_items(self, ids: Sequence[str]) -> np.ndarray:
        return self.dataset.catalogue.index_of(list(ids))

    def items_of(self, ids: Sequence[str], where: str = "history") -> np.ndarray:
        """Catalogue indices of external item ids; NotFoundError naming the first unknown one."""
        cat = self.dataset.catalogue
        clean = [str(x).strip() for x in ids if str(x).strip()]
        if not clean:
            raise ConfigError(f"{where} is empty; give item ids separated by commas")
        if len(clean) > MAX_HISTORY:
            raise ConfigError(f"{where} holds {len(clean)} items, expected at most {MAX_HISTORY}")
        found = cat.index_of(clean)
        if (found < 0).any():
            bad = clean[int(np.flatnonzero(found < 0)[0])]
            raise NotFoundError(f"unknown item {bad!r} in {where} ({int((found < 0).sum())} unknown); "
                                f"use item ids from {self.dataset.source}")
        return found.astype(np.int64)

    def history_of(self, user: str) -> np.ndarray:
        """A user's items in time order: the data's, then the plays observed since. NotFoundError if neither."""
        h = self.dataset.histories
        self.catch_up()
        try:
            u = int(self._users.get_loc(str(user)))
        except (KeyError, TypeError):
            u = -1
        extra = self._extra.get(str(user))
        if u < 0 and extra is None:
            sample = ", ".join(h.user_ids[:5].tolist())
            raise NotFoundError(f"unknown user {user!r} in {self.dataset.source} (users look like: {sample}); "
                                f"'whatnext inspect-data --json' describes the data")
        base = h.of(u) if u >= 0 else np.zeros(0, np.int64)
        return base if extra is None else np.concatenate([base, extra])

    def observe(self, user: str, items: Sequence[str]) -> dict[str, Any]:
        """Append plays (external item ids, oldest first) to ``user``'s history; a new user id starts a history.

        With a play log the plays are on disk (flushed and fsynced) before this returns.
        """
        user = str(user)
        if not user.strip() or len(user) > 256:
            raise ConfigError(f"user id {user[:40]!r}: expected 1 to 256 characters")
        idx = self.items_of(items, "items")
        with self._lock:
            if self.plays is not None:
                self.plays.append(user, [str(self.dataset.catalogue.ids[i]) for i in idx])
                self._apply(self.plays.read_new())  # our line and any other worker's, in the log's order
            else:
                self._apply([(user, idx)])
        return {"user": user, "accepted": len(idx), "history_length": len(self.history_of(user))}

    def catch_up(self) -> None:
        """Apply the plays other processes appended to the log since the last look (one stat when none)."""
        if self.plays is not None and self.plays.has_new():
            with self._lock:
                self._apply(self.plays.read_new())

    def _apply(self, plays: list[tuple[str, np.ndarray]]) -> None:
        for user, idx in plays:
            old = self._extra.get(user)
            self._extra[user] = idx if old is None else np.concatenate([old, idx])  # a new array: readers keep theirs

    # -- recommending -----------------------------------------------------------------------

    def recommend(self, user: str | None = None, history: Sequence[str] | None = None, k: int = 10,
                  include_seen: bool = False, diversity: float | None = None, *,
                  where: str = "history") -> dict[str, Any]:
        """Top-k for a user (the data's history plus observed plays) or for a history of external item ids.

        The fields of ``whatnext recommend --json``: user, history_length, history (the last 5), k,
        include_seen, diversity, checkpoint, step, ranked_by, recommendations (rank, item_id, score,
        distance, display columns, attributes), warnings. ``diversity`` None = the config's.
        """
        req = self.request(user, history, k, include_seen, diversity, where=where)
        return self.answer(req, *self.rank_requests([req])[0])

    def request(self, user: str | None = None, history: Sequence[str] | None = None, k: int = 10,
                include_seen: bool = False, diversity: float | None = None, *, where: str = "history") -> Request:
        """A checked request, bound to the model in use now (a reload cannot change it under the request)."""
        model = self._model
        agent = self._with_diversity(model.agent, diversity)
        n = len(self.dataset.catalogue)
        if (user is None) == (history is None):
            raise ConfigError("give exactly one of a user id or a history of item ids")
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ConfigError(f"-k is {k}, expected an integer >= 1")
        if k > n:
            raise ConfigError(f"-k is {k} but the catalogue has only {n} items; ask for at most {n}")
        hist = self.history_of(str(user)) if user is not None else self.items_of(history or [], where)
        return Request(model, agent, user, hist, k, include_seen)

    @staticmethod
    def rank_requests(reqs: Sequence[Request]) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Rank requests that share a model view, k and include_seen (:meth:`Request.key`) in one batch:
        one pass of each network and of the index for all of them. Per request: (items, distances, scores)."""
        first = reqs[0]
        assert all(r.key == first.key for r in reqs), "one batch, one key"
        hists = [r.history for r in reqs]
        idx, dist, score = rank(first.agent, hists, first.k, None if first.include_seen else hists)
        return [(idx[j], dist[j], score[j]) for j in range(len(reqs))]

    def answer(self, req: Request, idx: np.ndarray, dist: np.ndarray, score: np.ndarray) -> dict[str, Any]:
        """The result dict of a ranked request (the fields of ``whatnext recommend --json``, plus the step)."""
        cat, hist, model, agent = self.dataset.catalogue, req.history, req.model, req.agent
        return {
            "user": req.user, "history_length": len(hist), "history": [str(cat.ids[i]) for i in hist[-5:]],
            "k": req.k, "include_seen": req.include_seen, "diversity": agent.cfg.recommend.diversity,
            "checkpoint": str(model.checkpoint), "step": model.step,
            "ranked_by": "score" if not agent.cfg.recommend.diversity else "score and diversity",
            "recommendations": result_rows(cat, idx, dist, score, self._display), "warnings": list(model.warnings),
        }

    def rank_all(self, k: int, include_seen: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray, Model]:
        """Every data user's top-k (item indices, distances, scores; -1 padded) in the data's user order."""
        model = self._model
        h = self.dataset.histories
        hists = [h.of(int(u)) for u in range(len(h))]
        idx, dist, score = rank(model.agent, hists, k, None if include_seen else hists)
        return idx, dist, score, model

    def item(self, item_id: str) -> dict[str, Any]:
        """One catalogue item: id, display columns, attributes as written in the data, training plays."""
        cat = self.dataset.catalogue
        i = int(cat.index_of([str(item_id)])[0])
        if i < 0:
            raise NotFoundError(f"unknown item {item_id!r}; use item ids from {self.dataset.source}")
        row: dict[str, Any] = {"item_id": str(cat.ids[i])}
        for col, values in self._display.items():
            row[col] = str(values[i])
        row["attributes"] = dict(zip(cat.feature_names, as_written(cat.original_units(np.array([i])))[0]))
        if self._counts is None:
            self._counts = np.bincount(self.dataset.histories.items, minlength=len(cat))
        row["plays"] = int(self._counts[i])  # in the data (plays observed since are not counted)
        return row

    @staticmethod
    def _with_diversity(agent: Any, diversity: float | None) -> Any:
        """``agent`` itself, or a shallow copy whose config asks for another diversity weight (nothing shared is changed)."""
        if diversity is None or float(diversity) == agent.cfg.recommend.diversity:
            return agent
        from whatnext.config.schema import BOUNDS

        low, high = BOUNDS.get(("recommend", "diversity"), (0, 1000))
        if isinstance(diversity, bool) or not isinstance(diversity, (int, float)) or not low <= float(diversity) <= high:
            raise ConfigError(f"diversity is {diversity!r}, expected a number from {low} to {high}")
        view = copy.copy(agent)
        view.cfg = copy.copy(agent.cfg)
        view.cfg.recommend = copy.copy(agent.cfg.recommend)
        view.cfg.recommend.diversity = float(diversity)
        return view
