"""Model selection during training: the validator scores each checkpoint on the validation split.

It ranks every validation user's slate (played items excluded, then kept), tunes the critic
re-rank weight per protocol from cached scores (``model.tune_rerank``), and fits the score
scale that turns scores into probabilities for the diversity re-rank. The engine hands it
to the training loop as ``evaluator``; its metrics pick the ``best`` checkpoint.
"""

from __future__ import annotations

from typing import Any

from whatnext.config import Config

#: rerank weights tried on validation at each checkpoint (model.tune_rerank)
RERANK_GRID = (0.0, 0.1, 0.25, 0.5, 1.0, 2.0)


#: validation rows whose slates the score scale is fitted on
CALIBRATION_ROWS = 20_000
#: ``eval.max_users = "auto"``: every validation user up to this many, a seeded sample of this many above
AUTO_MAX_USERS = 50_000


def sample_rows(max_users: str | int, n_users: int, seed: int) -> Any:
    """Indices (ascending) of the validation users scored at checkpoints, or None for all of them:
    a sample drawn from ``seed`` when there are more than ``eval.max_users`` (AUTO_MAX_USERS for auto)."""
    import numpy as np

    limit = AUTO_MAX_USERS if max_users == "auto" else int(max_users)
    if limit <= 0 or n_users <= limit:
        return None
    return np.sort(np.random.default_rng([seed, 23]).choice(n_users, limit, replace=False))


def validator(cfg: Config, ds: Any) -> Any:
    """agent -> validation metrics (lists by score, no diversity re-rank).

    For both protocols (played items excluded, kept) it scores the validation users' slates
    once, in blocks; with model.tune_rerank it ranks every block under each weight of
    RERANK_GRID from the same cached actor and critic scores and keeps the weight with the
    best validation NDCG; and it fits the score scale the diversity re-rank turns into
    probabilities (:func:`whatnext.evaluation.diversify.calibrate_scale`) on the slates of the first
    CALIBRATION_ROWS users.
    """
    import numpy as np

    from whatnext.errors import DataError
    from whatnext.evaluation.diversify import calibrate_scale
    from whatnext.evaluation.protocol import score_ranking, split_inputs
    from whatnext.rl.environment import select_metric

    key = select_metric(list(cfg.eval.ks))
    k = max(cfg.eval.ks)
    _, hists, targets = split_inputs(ds, "valid")
    if not hists:
        raise DataError(f"{ds.source}: no user has a valid target (a user needs at least 3 events)")
    rows = sample_rows(cfg.eval.max_users, len(hists), cfg.train.seed)
    if rows is not None:  # large data: a seeded sample of users at every checkpoint (eval.max_users)
        hists, targets = [hists[i] for i in rows], targets[rows]
    tune = bool(cfg.model.rerank and cfg.model.tune_rerank)

    def protocol(agent: Any, seen: bool) -> tuple[float, dict[str, float]]:
        """Choose (when tuning) and set this protocol's rerank weight and score scale; its metrics."""
        attr = "rerank_weight_seen" if seen else "rerank_weight"
        weights = sorted({*RERANK_GRID, cfg.model.rerank_weight}) if tune else [getattr(agent, attr)]
        ranked = {w: np.empty((len(hists), k), np.int64) for w in weights}
        sample = []
        for s in range(0, len(hists), 1024):
            block = hists[s : s + 1024]
            slate = agent.score_candidates(block, None if seen else block, k)
            for w in weights:
                ranked[w][s : s + len(block)] = agent.choose(slate, k, seen, plain=True, weight=w)[0]
            if s < CALIBRATION_ROWS:
                sample.append((slate, targets[s : s + len(block)]))
        best: tuple[float, float, dict[str, Any]] | None = None
        for w in weights:
            res = score_ranking(ranked[w], ds, "valid", cfg.eval.ks, seen, name=agent.name, check=False, rows=rows)
            if best is None or res[key] > best[0]:
                best = (res[key], w, res)
        assert best is not None
        setattr(agent, attr, best[1])
        scores = np.concatenate([sl.score(best[1]) for sl, _ in sample])
        hits = np.concatenate([sl.items == t[:, None] for sl, t in sample])
        setattr(agent, "score_scale_seen" if seen else "score_scale", calibrate_scale(scores, hits))
        return best[1], {n: float(v) for n, v in best[2].items() if isinstance(v, (int, float)) and not isinstance(v, bool)}

    def run(agent: Any) -> dict[str, float]:
        agent.ready()
        w, res = protocol(agent, False)
        w_seen, res_seen = protocol(agent, True)
        out = {**(res_seen if cfg.eval.include_seen else res), "eval/score_scale": agent.score_scale,
               "eval/score_scale_seen": agent.score_scale_seen}
        if tune:
            out.update({"eval/rerank_weight": w, "eval/rerank_weight_seen": w_seen})
        return out

    return run


__all__ = ["CALIBRATION_ROWS", "RERANK_GRID", "validator"]
