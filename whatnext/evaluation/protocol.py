"""Leave-one-out evaluation: one code path for the agent and every baseline.

The protocol (see :mod:`whatnext.data` for the split):

* ``split="valid"``: for every user with at least 3 events, the target is the
  second-to-last event and the input history is every event before it (the training
  part, ``histories.of(u, "valid")``).
* ``split="test"``: for every user with at least 2 events, the target is the last event
  and the input history is every event before it, *including* the validation target
  (``histories.of(u, "test")``): standard leave-one-out.
* Full ranking over the whole catalogue, no sampled negatives. With
  ``include_seen=False`` (the default) every item of the input history is excluded from
  the ranking, so a target the user already played cannot be hit; ``include_seen=True``
  keeps them (RecBole's published numbers rank that way).

Anything with the :class:`Recommender` shape can be evaluated. ``evaluate`` never fits a
model (fit it first, on the training part only) and uses no randomness, so the same fitted
model gives the same numbers every run. It checks each answer it gets: an ``(n, k)``
integer array of item indices in range, ``-1`` only as padding, no item twice in a row, and
no excluded item; a recommender that breaks this gets a ValueError naming it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from whatnext.data import Dataset, pad_histories
from whatnext.errors import DataError
from whatnext.evaluation import metrics

SPLITS = ("valid", "test")


@runtime_checkable
class Recommender(Protocol):
    """What :func:`evaluate` needs: a name, ``fit`` on the training part, and ``recommend``."""

    name: str

    def fit(self, dataset: Dataset) -> None:
        """Learn from the training part only: ``dataset.histories.of(u, "train")``,
        ``histories.train_mask()`` / ``train_positions()``, ``dataset.popularity()``, and the
        catalogue. Never the validation or test targets."""
        ...

    def recommend(
        self, histories: Sequence[np.ndarray], k: int, exclude: Sequence[np.ndarray] | None = None
    ) -> np.ndarray:
        """For each input history (item indices, oldest first), the ``k`` best next items.

        Returns an int array of shape ``(len(histories), k)``, best first, right-padded with
        -1 where fewer than k items are left; ``exclude[i]`` are items never to return for
        query i (``None``: exclude nothing). Deterministic for the same input.
        """
        ...


def split_inputs(dataset: Dataset, split: str) -> tuple[np.ndarray, list[np.ndarray], np.ndarray]:
    """``(users, input histories, targets)`` of ``split`` (``valid`` or ``test``), users ascending.

    The input history of each user is every event before the target (read-only views).
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    h = dataset.histories
    users, pos = h.targets(split)
    starts = h.offsets[users]
    items = h.items
    hists = [items[s:e] for s, e in zip(starts.tolist(), pos.tolist())]
    return users, hists, items[pos]


def _batch_rows(n_items: int) -> int:
    """Queries per recommend call: keeps a (rows, n_items) float64 score matrix near 64 MiB."""
    return int(max(1, min(2048, (8 << 20) // max(1, n_items))))


def _check_answer(name: str, rec: Any, n: int, k: int, n_items: int, exclude: Sequence[np.ndarray] | None,
                  block_rows: int = 4096) -> np.ndarray:
    rec = np.asarray(rec)
    if rec.ndim != 2 or rec.shape[0] != n or rec.shape[1] < k:
        raise ValueError(f"recommender {name!r} returned shape {rec.shape}, expected ({n}, {k})")
    if not np.issubdtype(rec.dtype, np.integer):
        raise ValueError(f"recommender {name!r} returned {rec.dtype} values, expected integer item indices")
    rec = rec[:, :k].astype(np.int64, copy=False)
    if ((rec < -1) | (rec >= n_items)).any():
        raise ValueError(f"recommender {name!r} returned item indices outside [-1, {n_items})")
    for s in range(0, n, block_rows):  # in blocks: bounded memory for any number of users
        block = rec[s : s + block_rows]
        srt = np.sort(block, axis=1)
        if ((srt[:, 1:] == srt[:, :-1]) & (srt[:, 1:] >= 0)).any():
            raise ValueError(f"recommender {name!r} returned the same item twice in one list")
        ex = None if exclude is None else exclude[s : s + block_rows]
        if ex is not None and len(block):
            lens = np.fromiter((len(e) for e in ex), dtype=np.int64, count=len(block))
            if lens.sum():
                ex_codes = np.repeat(np.arange(len(block)), lens) * n_items + np.concatenate([np.asarray(e, np.int64) for e in ex])
                valid = block >= 0
                rec_codes = (np.arange(len(block))[:, None] * n_items + block)[valid]
                if np.isin(rec_codes, ex_codes).any():
                    raise ValueError(f"recommender {name!r} returned an excluded (already played) item")
    return rec


def rank_all(
    model: Recommender, histories: Sequence[np.ndarray], k: int, n_items: int, *, include_seen: bool = False,
    batch_rows: int | None = None,
) -> np.ndarray:
    """The model's top-``k`` for every history, asked in fixed-size batches and checked; (n, k)."""
    n = len(histories)
    rows = batch_rows or _batch_rows(n_items)
    out = np.full((n, k), -1, dtype=np.int64)
    name = getattr(model, "name", type(model).__name__)
    for s in range(0, n, rows):
        hist = histories[s : s + rows]
        exclude = None if include_seen else hist
        rec = model.recommend(hist, k, exclude)
        out[s : s + len(hist)] = _check_answer(name, rec, len(hist), k, n_items, exclude)
    return out


def evaluate(
    model: Recommender,
    dataset: Dataset,
    split: str = "valid",
    ks: Sequence[int] = (10, 20),
    include_seen: bool = False,
    embeddings: np.ndarray | None = None,
    *,
    batch_rows: int | None = None,
    population_sigma: np.ndarray | None = None,
    window: int = 50,
    off_policy: Any = True,
) -> dict[str, Any]:
    """Score a fitted ``model`` on ``split`` with full ranking; flat, namespaced results.

    Keys, for every K in ``ks``: ``eval/hr@K``, ``eval/ndcg@K``, ``eval/mrr@K``,
    ``eval/coverage@K``, ``eval/novelty@K`` and, when ``embeddings`` (n_items, d) are given,
    ``eval/ild@K``; plus ``eval/model``, ``eval/split``, ``eval/include_seen`` and
    ``eval/users`` (how many users had a target). See :mod:`whatnext.evaluation.metrics` for the formulas;
    novelty uses the training play counts, ``dataset.popularity()``. With ``embeddings`` and
    ``population_sigma`` (from :func:`whatnext.rl.rewards.population_sigma`) it also reports
    ``eval/diversity_reward@1``: the original diversity reward of each user's top item against
    the last ``window`` items of the history, from the same ranking.

    When the data has logged rewards (``data.reward_col``) it also reports, for every K,
    ``eval/reward@K``, ``eval/ndcg_pos@K`` and the off-policy estimates ``eval/reward_ips@K``,
    ``eval/reward_snips@K``, ``eval/reward_dr@K`` with ``eval/ess@K`` (see
    :mod:`whatnext.evaluation.ope`). ``off_policy``: True fits the behaviour policy and reward
    model here (on the training part), an :class:`~whatnext.evaluation.ope.OffPolicy` is used as
    given (fit once for many models), False leaves them out.
    """
    ks = sorted({int(k) for k in ks})
    if not ks or ks[0] < 1:
        raise ValueError(f"ks must be positive cut-offs, got {ks}")
    n_items = len(dataset.catalogue)
    if embeddings is not None:
        embeddings = np.asarray(embeddings)
        if embeddings.ndim != 2 or len(embeddings) != n_items:
            raise ValueError(f"embeddings must have shape ({n_items}, d), got {embeddings.shape}")
    users, hists, targets = split_inputs(dataset, split)
    if len(users) == 0:
        need = 3 if split == "valid" else 2
        raise DataError(f"{dataset.source}: no user has a {split} target (a user needs at least {need} events)")
    ranked = rank_all(model, hists, ks[-1], n_items, include_seen=include_seen, batch_rows=batch_rows)
    out = score_ranking(ranked, dataset, split, ks, include_seen, embeddings, name=getattr(model, "name", type(model).__name__),
                        population_sigma=population_sigma, window=window, check=False)  # rank_all checked it
    h = dataset.histories
    if off_policy is not False and h.rewards is not None:
        from whatnext.evaluation.ope import OffPolicy

        if off_policy is True:
            off_policy = OffPolicy.fit(h, n_items)
        out.update(off_policy.metrics(ranked, h, h.targets(split)[1], ks))
    return out


def score_ranking(
    ranked: np.ndarray, dataset: Dataset, split: str, ks: Sequence[int], include_seen: bool = False,
    embeddings: np.ndarray | None = None, *, name: str = "ranking", population_sigma: np.ndarray | None = None,
    window: int = 50, check: bool = True, rows: np.ndarray | None = None,
) -> dict[str, Any]:
    """The metrics of :func:`evaluate` for a ready ranking: one row per user of ``split``, in
    :func:`split_inputs` order, at least ``max(ks)`` columns (with ``check``, checked like a
    model's answer; only the first ``max(ks)`` columns are scored). ``rows`` (indices into
    :func:`split_inputs` order) scores a sample of the users instead, one ranking row each."""
    ks = sorted({int(k) for k in ks})
    users, hists, targets = split_inputs(dataset, split)
    if rows is not None:
        users, targets, hists = users[rows], targets[rows], [hists[i] for i in rows]
    n_items = len(dataset.catalogue)
    if check:
        ranked = _check_answer(name, ranked, len(users), ks[-1], n_items, None if include_seen else hists)
    else:
        ranked = np.asarray(ranked)[:, : ks[-1]]
    counts = dataset.popularity()
    out: dict[str, Any] = {
        "eval/model": name,
        "eval/split": split,
        "eval/include_seen": bool(include_seen),
        "eval/users": len(users),
    }
    for k in ks:
        out[f"eval/hr@{k}"] = metrics.hit_rate(ranked, targets, k)
        out[f"eval/ndcg@{k}"] = metrics.ndcg(ranked, targets, k)
        out[f"eval/mrr@{k}"] = metrics.mrr(ranked, targets, k)
        out[f"eval/coverage@{k}"] = metrics.coverage(ranked, k, n_items)
        if embeddings is not None:
            out[f"eval/ild@{k}"] = metrics.intra_list_diversity(ranked, embeddings, k)
        out[f"eval/novelty@{k}"] = metrics.novelty(ranked, counts, k)
    if embeddings is not None and population_sigma is not None:
        out["eval/diversity_reward@1"] = _top1_diversity(ranked, users, hists, targets, embeddings,
                                                         population_sigma, window)
    return out


def _top1_diversity(ranked: np.ndarray, users: np.ndarray, hists: list[np.ndarray], targets: np.ndarray,
                    embeddings: np.ndarray, sigma: np.ndarray, window: int) -> float:
    """Mean diversity reward of the top-1 items (users whose list is empty are left out)."""
    from whatnext.rl import rewards

    ok = ranked[:, 0] >= 0
    if not ok.any():
        return float("nan")
    inputs, lengths = pad_histories([h for h, keep in zip(hists, ok) if keep], window)
    r_in = rewards.RewardInputs(inputs, lengths, ranked[ok, :1], targets[ok], users[ok], embeddings, sigma, 1.0)
    return float(rewards.diversity(r_in).mean())


__all__ = ["SPLITS", "Recommender", "evaluate", "rank_all", "score_ranking", "split_inputs"]
