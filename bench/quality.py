"""Recommendation quality: the agent against every baseline, leave-one-out, full ranking.

    python bench/quality.py                                         # the built-in demo data
    python bench/quality.py --data ../shared/data/ml-100k/u.data    # MovieLens 100K (read in place)
    python bench/quality.py --data ... --config examples/whatnext.toml --split test
    python bench/quality.py --data ... --model transformer --seed 1 --skip lstm   # the self-attention actor
    python bench/quality.py --data ../shared/data/ml-100k/u.data --set data.reward_col=rating \
        --set data.reward_transform=center --algorithms hybrid sqn sac reinforce   # off-policy RL on logged rewards
    python bench/quality.py ... --algorithms hybrid sqn --q-betas 0 0.5 1 2 --keep runs/   # sqn at several q_beta

Trains the agent with the given config (default: the built-in defaults) for its configured
epochs, picks the checkpoint with the best validation NDCG@10, and prints one table on the
chosen split: every baseline and the agent, with played items excluded from the ranking
(whatnext's default) and kept (as RecBole reports), plus wall time for training and
evaluation and seconds per training epoch. A second agent row shows the same trained agent
with diversified lists (``recommend.diversity``, ``--diversity``; 0 leaves the row out).
With ``--algorithms`` it instead trains the agent once per named algorithm (``train.algorithm``;
``hybrid`` with ``model.rerank = 0`` and ``rl_weight = 0`` is the supervised baseline of the same
encoder) and prints one row each: the ranking metrics beside the logged-reward ones of
:mod:`whatnext.evaluation.ope` (see README "Off-policy RL"), with the SNIPS difference to the first row and its
paired bootstrap interval; ``--q-betas`` adds a row per ``recommend.q_beta`` for ``sqn`` / ``sac`` (the same trained
agent) on the validation split too, ``--keep DIR`` trains into DIR and reuses the runs found there, ``--json FILE``
writes the rows. ``--set KEY=VALUE`` overrides any config
key, as ``whatnext --set`` does. Nothing is written outside a temporary folder.
"""

from __future__ import annotations

import argparse
import copy
import tempfile
import time
from pathlib import Path

from whatnext import engine
from whatnext.config import load_config
from whatnext.data import load_dataset
from whatnext.evaluation import baselines as bl
from whatnext.evaluation.protocol import evaluate
from whatnext.rl.agent import item_init
from whatnext.rl.environment import train


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", help="events file (default: the built-in demo data)")
    ap.add_argument("--config", help="whatnext.toml or setup.txt (default: built-in defaults)")
    ap.add_argument("--split", default="test", choices=("valid", "test"))
    ap.add_argument("--epochs", type=int, help="override train.epochs")
    ap.add_argument("--model", help="override model.name (lstm, transformer)")
    ap.add_argument("--seed", type=int, help="override train.seed")
    ap.add_argument("--skip-lstm", action="store_true", help="leave out the supervised LSTM baseline")
    ap.add_argument("--skip", nargs="*", default=[], help="leave out these baselines (e.g. lstm sasrec)")
    ap.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                    help="override a config key (repeatable), e.g. --set data.reward_col=rating")
    ap.add_argument("--algorithms", nargs="*", default=[],
                    help="compare these training algorithms instead (e.g. hybrid sqn sac reinforce)")
    ap.add_argument("--q-betas", nargs="*", type=float, default=[],
                    help="with --algorithms: also score sqn / sac at these recommend.q_beta values, on valid and the split")
    ap.add_argument("--keep", help="with --algorithms: train into this folder, reuse the runs found there")
    ap.add_argument("--json", help="with --algorithms: write the rows to this JSON file")
    ap.add_argument("--diversity", type=float, default=0.5,
                    help="also show the same agent with recommend.diversity = this (default 0.5; 0 = leave the row out)")
    args = ap.parse_args()

    from whatnext.cli.common import parse_sets

    flags = {"data.path": str(Path(args.data).resolve()) if args.data else None,
             "train.epochs": args.epochs, "model.name": args.model, "train.seed": args.seed}
    # a flag left out must not undo the same key's --set (None would reset it to the config file's)
    overrides = {**parse_sets(args.sets), **{k: v for k, v in flags.items() if v is not None}}
    cfg = load_config(args.config, overrides)
    t = time.perf_counter()
    ds = load_dataset(cfg)
    load_s = time.perf_counter() - t
    print(f"data: {ds.source}: {len(ds.histories)} users, {len(ds.catalogue)} items, {len(ds.histories.items)} events "
          f"(loaded in {load_s:.2f} s)")

    if args.algorithms:
        from offpolicy_table import compare_algorithms  # bench/offpolicy_table.py

        compare_algorithms(args.config, overrides, ds, args.algorithms, args.split, args.q_betas, args.keep, args.json)
        return
    with tempfile.TemporaryDirectory() as tmp:
        cfg.paths.models_dir, cfg.paths.run = tmp, "bench"
        t = time.perf_counter()
        summary = train(cfg, ds, evaluator=engine._validator(cfg, ds))
        train_s = time.perf_counter() - t
        agent, pt = engine.load_agent(cfg, ds, "bench")
        epochs = summary["metrics"].get("train/epoch", cfg.train.epochs)
        print(f"agent: {cfg.model.name} {cfg.train.algorithm}, seed {cfg.train.seed}, {summary['steps']} steps, {epochs:.2f} epochs in {train_s:.1f} s "
              f"(incl. validation at checkpoints); best checkpoint {Path(pt).name}, valid NDCG@10 {summary['best_metric']:.4f}")
        emb = agent.diversity_space()[0]
        models = [("agent", agent, train_s)]
        if args.diversity > 0:
            diverse, _ = engine.load_agent(cfg, ds, "bench")
            diverse.cfg = copy.deepcopy(diverse.cfg)
            diverse.cfg.recommend.diversity = args.diversity
            models.append((f"agent d={args.diversity:g}", diverse, train_s))
        for name in bl.available(ds, emb):
            if name in args.skip or (name == "lstm" and args.skip_lstm):
                continue
            t = time.perf_counter()
            models.append((name, bl.make(name, ds, seed=cfg.train.seed, embeddings=emb, config=cfg), time.perf_counter() - t))

        header = (f"{'model':<13} {'fit s':>7} {'eval s':>7} | {'HR@10':>7} {'NDCG@10':>8} {'MRR@10':>7} {'cov@10':>7} "
                  f"{'ILD@10':>7} {'nov@10':>7} | {'HR@10':>7} {'NDCG@10':>8}")
        print(f"\n{args.split} split, full ranking over {len(ds.catalogue)} items; left: played items excluded, "
              f"right: played items kept")
        print(header)
        print("-" * len(header))
        for name, model, fit_s in models:
            t = time.perf_counter()
            ex = evaluate(model, ds, args.split, (10,), include_seen=False, embeddings=emb)
            kept = evaluate(model, ds, args.split, (10,), include_seen=True, embeddings=emb)
            ev_s = time.perf_counter() - t
            print(f"{name:<13} {fit_s:>7.1f} {ev_s:>7.2f} | {ex['eval/hr@10']:>7.4f} {ex['eval/ndcg@10']:>8.4f} "
                  f"{ex['eval/mrr@10']:>7.4f} {ex['eval/coverage@10']:>7.4f} {ex['eval/ild@10']:>7.4f} "
                  f"{ex['eval/novelty@10']:>7.3f} | {kept['eval/hr@10']:>7.4f} {kept['eval/ndcg@10']:>8.4f}")
        steps_per_epoch = summary["total_steps"] / max(epochs, 1e-9)
        pretrained = item_init(cfg, agent.args) == "cooccurrence"
        per_epoch = _epoch_seconds(cfg, ds, round(steps_per_epoch))
        print(f"\ntraining speed: {per_epoch:.2f} s per epoch without validation ({round(steps_per_epoch)} steps)")
        if pretrained:
            from whatnext.rl.cooccurrence import ppmi_vectors

            t = time.perf_counter()
            ppmi_vectors(ds, cfg.model.embedding_dim, seed=cfg.train.seed)
            print(f"co-occurrence item vectors (once per training run): {time.perf_counter() - t:.2f} s")


def _epoch_seconds(cfg, ds, steps: int) -> float:
    """Time one epoch of training alone (no validation, no checkpoint writes between)."""
    with tempfile.TemporaryDirectory() as tmp:
        cfg.paths.models_dir, cfg.paths.run = tmp, "epoch"
        cfg.train.epochs, cfg.train.samples, cfg.train.checkpoint_every = 1, 0, 10**9
        cfg.model.item_init = "random"  # the one-off co-occurrence start is not part of an epoch
        t = time.perf_counter()
        train(cfg, ds)
        return time.perf_counter() - t


if __name__ == "__main__":
    main()
