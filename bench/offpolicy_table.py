"""The ``--algorithms`` table of bench/quality.py: one row per training algorithm, ranking metrics beside the
logged-reward ones (README "Off-policy RL").

For each algorithm the agent is trained with the same config (``train.algorithm`` changed only), the checkpoint
with the best validation NDCG@10 is kept, and the chosen split is scored with full ranking, played items
excluded: NDCG@10 / HR@10 over every held-out play, and, when the data has a reward column, NDCG@10 over the
plays with a positive reward (``ndcg+``), the mean logged reward of the held-out plays the top-10 holds
(``reward@10``), and the SNIPS estimate of the reward of a song drawn from the top-10 with its effective
sample size (``SNIPS``, ``ESS``), from :mod:`whatnext.evaluation.ope` (fitted once, shared by every row).
"""

from __future__ import annotations

import math
import tempfile
import time
from typing import Any

from whatnext import engine
from whatnext.config import load_config
from whatnext.evaluation.protocol import evaluate
from whatnext.rl.environment import train


def _fmt(value: Any, width: int, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return f"{'-':>{width}}"
    return f"{value:>{width}.{digits}f}"


def compare_algorithms(config: str | None, overrides: dict[str, Any], ds: Any, algorithms: list[str],
                       split: str) -> list[dict[str, Any]]:
    """Train and score one agent per algorithm; print the table and return its rows."""
    off: Any = True
    if ds.histories.rewards is not None:
        from whatnext.evaluation.ope import OffPolicy

        off = OffPolicy.fit(ds.histories, len(ds.catalogue))
    rows = []
    for alg in algorithms:
        cfg = load_config(config, {**overrides, "train.algorithm": alg})
        with tempfile.TemporaryDirectory() as tmp:
            cfg.paths.models_dir, cfg.paths.run = tmp, "bench"
            t = time.perf_counter()
            summary = train(cfg, ds, evaluator=engine._validator(cfg, ds))
            fit_s = time.perf_counter() - t
            agent, _ = engine.load_agent(cfg, ds, "bench")
            ev = evaluate(agent, ds, split, (10,), include_seen=False, off_policy=off)
        rows.append({"algorithm": alg, "fit_s": fit_s, "steps": summary["steps"], "valid": summary["best_metric"], **ev})
        print(f"  trained {alg}: {summary['steps']} steps in {fit_s:.0f} s, valid NDCG@10 {summary['best_metric']:.4f}",
              flush=True)
    first = rows[0]
    head = (f"{'algorithm':<10} {'fit s':>6} {'valid':>7} | {'NDCG@10':>8} {'vs 1st':>7} {'HR@10':>7} | "
            f"{'ndcg+':>7} {'reward@10':>9} {'SNIPS':>7} {'ESS':>7}")
    print(f"\n{split} split, {ds.source}, full ranking, played items excluded; 'vs 1st': NDCG@10 relative to "
          f"{first['algorithm']}; seed {cfg.train.seed}")
    print(head)
    print("-" * len(head))
    for r in rows:
        rel = r["eval/ndcg@10"] / first["eval/ndcg@10"] - 1 if first["eval/ndcg@10"] else float("nan")
        print(f"{r['algorithm']:<10} {r['fit_s']:>6.0f} {r['valid']:>7.4f} | {r['eval/ndcg@10']:>8.4f} {rel:>+7.1%} "
              f"{r['eval/hr@10']:>7.4f} | {_fmt(r.get('eval/ndcg_pos@10'), 7)} {_fmt(r.get('eval/reward@10'), 9)} "
              f"{_fmt(r.get('eval/reward_snips@10'), 7)} {_fmt(r.get('eval/ess@10'), 7, 1)}")
    return rows
