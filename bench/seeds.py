"""How much of a quality figure is the seed: the agent, the supervised LSTM and SASRec over several seeds.

    python bench/seeds.py                                          # the built-in demo data, seeds 0 1 2
    python bench/seeds.py --data ../shared/data/ml-100k/u.data --seeds 5
    python bench/seeds.py --json seeds.json && whatnext plot eval --baselines --seeds seeds.json --split test
    python bench/seeds.py --data ... --model transformer --set train.threads=1   # the self-attention actor

For every seed: trains the agent with the given config (best checkpoint by validation
NDCG@10) and fits the supervised LSTM and SASRec baselines with the same seed (``--skip`` leaves
them out), then prints validation
NDCG@10 and test NDCG@10 / HR@10 with played items excluded and kept, for the agent, the
agent with ``recommend.diversity = --diversity``, the LSTM and SASRec; then each column's mean and
standard deviation over the seeds. One leave-one-out target per user makes a single run's
figure move by about 1/sqrt(users); this shows by how much. Nothing is written outside a
temporary folder, except the ``--json FILE`` asked for: every model's and seed's metrics at K = 10
and 20 (ILD in the agent's item space) for the valid split and the test split with played items
excluded and kept, which ``whatnext plot eval --seeds FILE`` draws as the seed spread.
"""

from __future__ import annotations

import argparse
import copy
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from whatnext import engine
from whatnext.config import load_config
from whatnext.data import load_dataset
from whatnext.evaluation import baselines as bl
from whatnext.evaluation.protocol import evaluate
from whatnext.rl.environment import train

COLUMNS = ("valid NDCG", "excl NDCG", "excl HR", "kept NDCG", "kept HR")


PROTOCOLS = (("valid", False), ("test", False), ("test", True))


def _records(name, seed, model, ds, emb) -> list[dict]:
    """One record per protocol: the model's metrics as ``whatnext eval --json`` names them."""
    out = []
    for split, seen in PROTOCOLS:
        m = evaluate(model, ds, split, (10, 20), include_seen=seen, embeddings=emb)
        out.append({"model": name, "seed": seed, "split": split, "include_seen": seen,
                    "metrics": {k: v for k, v in m.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}})
    return out


def _scores(records) -> list[float]:
    v, ex, kept = (r["metrics"] for r in records)
    return [v["eval/ndcg@10"], ex["eval/ndcg@10"], ex["eval/hr@10"], kept["eval/ndcg@10"], kept["eval/hr@10"]]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", help="events file (default: the built-in demo data)")
    ap.add_argument("--config", help="whatnext.toml or setup.txt (default: built-in defaults)")
    ap.add_argument("--seeds", type=int, default=3, help="how many seeds, from --first (default 3)")
    ap.add_argument("--first", type=int, default=0, help="the first seed (default 0): two processes can share the seeds")
    ap.add_argument("--diversity", type=float, default=0.5, help="the diversified agent's recommend.diversity (default 0.5)")
    ap.add_argument("--json", metavar="FILE", help="also write every seed's metrics to FILE (for 'whatnext plot eval --seeds FILE')")
    ap.add_argument("--model", help="override model.name (lstm, transformer)")
    ap.add_argument("--skip", nargs="*", default=[], choices=("lstm", "sasrec"), help="leave out these baselines")
    ap.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                    help="override a config key (repeatable), e.g. --set train.threads=1")
    args = ap.parse_args()

    from whatnext.cli.common import parse_sets

    learned = [b for b in ("lstm", "sasrec") if b not in args.skip]
    rows: dict[str, list[list[float]]] = {"agent": [], f"agent d={args.diversity:g}": [], **{b: [] for b in learned}}
    results: list[dict] = []
    header = f"{'model':<13} {'seed':>4} " + " ".join(f"{c:>10}" for c in COLUMNS)
    print(header)
    print("-" * len(header))
    seeds = list(range(args.first, args.first + args.seeds))
    for seed in seeds:
        flags = {"data.path": str(Path(args.data).resolve()) if args.data else None, "train.seed": seed,
                 "model.name": args.model}
        cfg = load_config(args.config, {**parse_sets(args.sets), **{k: v for k, v in flags.items() if v is not None}})
        ds = load_dataset(cfg)
        with tempfile.TemporaryDirectory() as tmp:
            cfg.paths.models_dir, cfg.paths.run = tmp, "seed"
            t = time.perf_counter()
            train(cfg, ds, evaluator=engine._validator(cfg, ds))
            agent, _ = engine.load_agent(cfg, ds, "seed")
            diverse, _ = engine.load_agent(cfg, ds, "seed")
            diverse.cfg = copy.deepcopy(diverse.cfg)
            diverse.cfg.recommend.diversity = args.diversity
            train_s = time.perf_counter() - t
        t = time.perf_counter()
        fitted = [bl.make(b, ds, seed=seed, embeddings=None, config=cfg) for b in learned]
        base_s = time.perf_counter() - t
        emb = agent.diversity_space()[0]  # ILD in the agent's item space, as 'whatnext eval' reports it
        for name, model in zip(rows, (agent, diverse, *fitted)):
            records = _records(name, seed, model, ds, emb)
            results += records
            rows[name].append(_scores(records))
            print(f"{name:<13} {seed:>4} " + " ".join(f"{x:>10.4f}" for x in rows[name][-1]), flush=True)
        print(f"{'':<13} {'':>4} (agent trained in {train_s:.1f} s, {' and '.join(learned) or 'no baseline'} in {base_s:.1f} s)")
        if args.json:  # after every seed: a long run stopped early still leaves the seeds it finished
            Path(args.json).write_text(json.dumps({"data": args.data or "demo", "config": args.config,
                                                   "seeds": seeds[: seeds.index(seed) + 1], "diversity": args.diversity,
                                                   "results": results}, indent=1) + "\n")
    print("-" * len(header))
    for name, vals in rows.items():
        a = np.asarray(vals)
        print(f"{name:<13} {'mean':>4} " + " ".join(f"{x:>10.4f}" for x in a.mean(axis=0)))
        print(f"{'':<13} {'std':>4} " + " ".join(f"{x:>10.4f}" for x in a.std(axis=0, ddof=1 if len(a) > 1 else 0)))
    if args.json:
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
