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

import json
import math
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from whatnext import engine
from whatnext.config import load_config
from whatnext.evaluation.protocol import evaluate
from whatnext.rl.environment import train
from whatnext.rl.offpolicy import RANKS_BY_Q


def _fmt(value: Any, width: int, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return f"{'-':>{width}}"
    return f"{value:>{width}.{digits}f}"


def compare_algorithms(config: str | None, overrides: dict[str, Any], ds: Any, algorithms: list[str],
                       split: str, q_betas: list[float] | None = None, keep: str | None = None,
                       json_out: str | None = None) -> list[dict[str, Any]]:
    """Train and score one agent per algorithm; print the table and return its rows.

    ``q_betas``: also score ``sqn`` / ``sac`` at these ``recommend.q_beta`` values (the same trained agent, one
    row each, on the validation split too, where a default is chosen). ``keep``: train into this folder (one
    run per algorithm and seed) and reuse a run found there instead of training it again. ``json_out``: write
    the rows there.
    """
    off: Any = True
    if ds.histories.rewards is not None:
        from whatnext.evaluation.ope import OffPolicy

        off = OffPolicy.fit(ds.histories, len(ds.catalogue))
    rows = []
    weights: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]] = {}
    for alg in algorithms:
        cfg = load_config(config, {**overrides, "train.algorithm": alg})
        with tempfile.TemporaryDirectory() as tmp:
            cfg.paths.models_dir, cfg.paths.run = keep or tmp, f"{alg}-seed{cfg.train.seed}"
            done = Path(cfg.paths.models_dir) / f"{cfg.paths.run}.json"
            if keep and done.exists():
                summary = json.loads(done.read_text())
            else:
                t = time.perf_counter()
                summary = train(cfg, ds, evaluator=engine._validator(cfg, ds))
                summary = {"steps": summary["steps"], "best_metric": summary["best_metric"],
                           "fit_s": time.perf_counter() - t}
                if keep:
                    done.write_text(json.dumps(summary))
            agent, _ = engine.load_agent(cfg, ds)
            betas = [cfg.recommend.q_beta]
            if alg in RANKS_BY_Q and q_betas:
                betas = sorted({*q_betas, cfg.recommend.q_beta})
            for beta in betas:
                agent.cfg.recommend.q_beta = beta
                name = f"{alg} b={beta:g}" if alg in RANKS_BY_Q else alg
                for sp in dict.fromkeys(("valid", split) if q_betas else (split,)):
                    ev = evaluate(agent, ds, sp, (10,), include_seen=False, off_policy=off)
                    if off is not True:
                        weights[(name, sp)] = _snips_terms(agent, ds, sp, off)
                    rows.append({"algorithm": name, "split": sp, "fit_s": summary["fit_s"], "steps": summary["steps"],
                                 "valid": summary["best_metric"], "seed": cfg.train.seed, "q_beta": beta,
                                 **{k: v for k, v in ev.items() if isinstance(v, (int, float))}})
        print(f"  trained {alg}: {summary['steps']} steps in {summary['fit_s']:.0f} s, valid NDCG@10 "
              f"{summary['best_metric']:.4f}", flush=True)
    for r in rows:  # the SNIPS difference to the first row, with a paired bootstrap interval over the held-out plays
        first = rows[0]["algorithm"]
        if (r["algorithm"], r["split"]) in weights and (first, r["split"]) in weights:
            r["snips_diff"], r["snips_diff_lo"], r["snips_diff_hi"] = _paired_snips(
                weights[(r["algorithm"], r["split"])], weights[(first, r["split"])])
    for sp in dict.fromkeys(("valid", split) if q_betas else (split,)):
        _print(ds, [r for r in rows if r["split"] == sp], sp, cfg.train.seed)
    if json_out:
        Path(json_out).write_text(json.dumps(rows, indent=1))
    return rows


def _print(ds: Any, rows: list[dict[str, Any]], split: str, seed: int) -> None:
    first = rows[0]
    head = (f"{'algorithm':<14} {'fit s':>6} {'valid':>7} | {'NDCG@10':>8} {'vs 1st':>7} {'HR@10':>7} | "
            f"{'ndcg+':>7} {'reward@10':>9} {'SNIPS':>7} {'ESS':>7} | SNIPS - 1st [90% bootstrap]")
    print(f"\n{split} split, {ds.source}, full ranking, played items excluded; 'vs 1st': NDCG@10 relative to "
          f"{first['algorithm']}; seed {seed}")
    print(head)
    print("-" * len(head))
    for r in rows:
        rel = r["eval/ndcg@10"] / first["eval/ndcg@10"] - 1 if first["eval/ndcg@10"] else float("nan")
        print(f"{r['algorithm']:<14} {r['fit_s']:>6.0f} {r['valid']:>7.4f} | {r['eval/ndcg@10']:>8.4f} {rel:>+7.1%} "
              f"{r['eval/hr@10']:>7.4f} | {_fmt(r.get('eval/ndcg_pos@10'), 7)} {_fmt(r.get('eval/reward@10'), 9)} "
              f"{_fmt(r.get('eval/reward_snips@10'), 7)} {_fmt(r.get('eval/ess@10'), 7, 1)} | "
              + (f"{r['snips_diff']:+.3f} [{r['snips_diff_lo']:+.3f}, {r['snips_diff_hi']:+.3f}]" if "snips_diff" in r else ""))


def _snips_terms(agent: Any, ds: Any, split: str, off: Any, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Each held-out play's clipped importance weight under ``agent``'s top-k, and its logged reward."""
    from whatnext.evaluation.ope import clip_weights, last_songs, target_probability
    from whatnext.evaluation.protocol import rank_all, split_inputs

    h = ds.histories
    _, hists, _ = split_inputs(ds, split)
    ranked = rank_all(agent, hists, k, len(ds.catalogue), include_seen=False)
    pos = h.targets(split)[1]
    logged = h.items[pos]
    w = clip_weights(target_probability(ranked, logged, k) / off.behaviour.prob(last_songs(h, pos), logged), off.clip)
    return w, h.rewards[pos].astype(np.float64)


def _paired_snips(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray],
                  draws: int = 2000) -> tuple[float, float, float]:
    """SNIPS(a) - SNIPS(b) on the same plays, and its 5% / 95% quantiles over plays resampled together (seeded)."""
    (wa, r), (wb, _) = a, b
    idx = np.random.default_rng(0).integers(0, len(r), size=(draws, len(r)))
    def snips(w: np.ndarray, i: Any) -> Any:
        return (w[i] * r[i]).sum(-1) / np.maximum(w[i].sum(-1), 1e-12)
    diff = snips(wa, idx) - snips(wb, idx)
    return float(snips(wa, slice(None)) - snips(wb, slice(None))), float(np.quantile(diff, 0.05)), float(np.quantile(diff, 0.95))
