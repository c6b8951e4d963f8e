"""The original State: the item catalogue and every user's history, with the two primary
methods ``get_random_user_history`` and ``produce``, and ``nearest`` for recommending.

All three take one request or a batch of them and never loop in Python over items.
"""

from __future__ import annotations

import numpy as np

from whatnext.data import PAD, Dataset
from whatnext.errors import DataError
from whatnext.search import Exclude, NeighbourIndex, build_index


class State:
    """Catalogue + histories + a nearest-neighbour index over the item embeddings.

    ``embeddings`` defaults to the catalogue's normalised features; a catalogue without
    features needs embeddings from elsewhere (learned ones).
    """

    def __init__(self, dataset: Dataset, embeddings: np.ndarray | None = None, index: NeighbourIndex | None = None):
        self.dataset = dataset
        self.catalogue = dataset.catalogue
        self.histories = dataset.histories
        if embeddings is None:
            # a catalogue without features gets placeholder vectors until learned ones are set
            embeddings = self.catalogue.features if self.catalogue.features is not None \
                else np.zeros((len(self.catalogue), 1), np.float32)
        self.embeddings = np.ascontiguousarray(embeddings, dtype=np.float32)
        #: recommend.index: which NeighbourIndex is built (the Agent sets the config's)
        self.index_kind = "auto"
        self._index: NeighbourIndex | None = index

    @property
    def index(self) -> NeighbourIndex:
        """The nearest-neighbour index over the embeddings, built on first use after they change."""
        if self._index is None:
            self._index = build_index(self.embeddings, self.index_kind)
        return self._index

    @index.setter
    def index(self, index: NeighbourIndex) -> None:
        self._index = index

    def set_embeddings(self, embeddings: np.ndarray) -> None:
        """Replace the item vectors (e.g. learned ones after a training step); the index is rebuilt when next used."""
        self.embeddings = np.ascontiguousarray(embeddings, dtype=np.float32)
        self._index = None

    # -- the original two methods -------------------------------------------------

    def get_random_user_history(
        self, rng: np.random.Generator, size: int | None = None, window: int | None = None
    ) -> tuple[int, np.ndarray] | tuple[np.ndarray, np.ndarray, np.ndarray]:
        """A random user's training history.

        With ``size=None``: ``(user, items)`` for one user. With ``size=n``: ``(users, histories,
        lengths)`` for n users drawn with replacement, histories right-padded with PAD to
        ``window`` (default: the longest) keeping each user's most recent items.
        Only users with at least one training event are drawn.
        """
        h = self.histories
        eligible = np.flatnonzero(h.train_len > 0)
        if len(eligible) == 0:
            raise DataError(f"{self.dataset.source}: no user has training events")
        if size is None:
            u = int(rng.choice(eligible))
            return u, h.of(u, "train").copy()
        users = rng.choice(eligible, size=size)
        ends = h.offsets[users] + h.train_len[users]
        w = int(window or h.train_len[users].max())
        hist, lengths = h.windows(ends, w, users)
        return users, hist, lengths

    def produce(self, attributes: np.ndarray, relax: float, rng: np.random.Generator) -> int | np.ndarray:
        """A random song whose embedding lies within +/- relax/2 of ``attributes`` in every dimension.

        Where no song lies in that box, the nearest song (Euclidean) is returned instead.
        ``attributes`` of shape (d,) gives one index; (b, d) gives an array of b indices.
        """
        q = np.asarray(attributes, dtype=np.float32)
        single = q.ndim == 1
        q = np.atleast_2d(q)
        out = np.empty(len(q), dtype=np.int64)
        e = self.embeddings
        rows = max(1, (32 << 20) // max(1, e.shape[0] * e.shape[1]))
        for s in range(0, len(q), rows):
            block = q[s : s + rows]
            inside = (np.abs(e[None, :, :] - block[:, None, :]) <= relax / 2 + 1e-7).all(axis=2)
            # a uniform choice among the songs inside: the largest random key among them
            keys = np.where(inside, rng.random(inside.shape), -1.0)
            out[s : s + rows] = keys.argmax(axis=1)
            none = ~inside.any(axis=1)
            if none.any():
                idx, _ = self.index.search(block[none], 1)
                out[s : s + rows][none] = idx[:, 0]
        return int(out[0]) if single else out

    # -- recommending ---------------------------------------------------------------

    def nearest(self, embeddings: np.ndarray, k: int, exclude: Exclude = None) -> tuple[np.ndarray, np.ndarray]:
        """Top-k items nearest each query embedding, skipping ``exclude[i]`` for query i.

        Returns ``(indices, distances)`` of shape (b, k), nearest first, ties to the
        smaller index, padded with -1 / inf where fewer than k items remain.
        """
        return self.index.search(np.atleast_2d(embeddings), k, exclude)

    def seen(self, users: np.ndarray, part: str = "all") -> list[np.ndarray]:
        """Items each user has played (in ``part``), for excluding from recommendations."""
        return [self.histories.of(int(u), part) for u in users]


__all__ = ["PAD", "State"]
