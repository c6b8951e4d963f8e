"""Weight averaging over epoch checkpoints, measured offline: the best checkpoint against the mean of the
weights of the N checkpoints with the best validation NDCG@10 (actor and critic alike).

    python bench/average.py --data ../shared/data/ml-100k/u.data --set train.threads=1            # seeds 0-2
    python bench/average.py --data ... --model transformer --seeds 0 --top 3 5 --set train.threads=1
    python bench/average.py --set train.threads=1                                                  # the demo data

Trains one run per seed (the config's epochs, ``train.checkpoint_every = "auto"``: a validated
checkpoint every epoch) in a temporary folder, keeping every checkpoint; then, for the best
checkpoint alone and for the average of the top N by validation, re-runs the validator (which tunes
the critic's re-rank weights on the validation split, as training does) and scores the test split
(played items excluded and kept). Prints one row per seed and variant and the mean +- sd over seeds.
Nothing is written outside a temporary folder; the training itself is unchanged.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import tempfile
import time
from pathlib import Path

from whatnext import checkpoints
from whatnext.config import load_config
from whatnext.data import load_dataset
from whatnext.evaluation.protocol import evaluate
from whatnext.evaluation.validation import validator
from whatnext.rl.averaging import PARTS, mean_weights
from whatnext.rl.environment import agent_from_payload, select_metric, train


def averaged(payloads: list[dict]) -> dict:
    """The last payload with its weights (actor, critic, off-policy heads) replaced by their mean over ``payloads``:
    what ``whatnext checkpoints average`` computes (:func:`whatnext.rl.averaging.mean_weights`)."""
    out = copy.copy(payloads[-1])
    for part in PARTS:
        if part in out:
            out[part] = mean_weights([p[part] for p in payloads], part)
    return out


def score(cfg, ds, payload: dict) -> tuple[float, float, float]:
    """(valid NDCG@10 after re-tuning the re-rank weights, test NDCG@10 played excluded, kept)."""
    agent = agent_from_payload(copy.deepcopy(cfg), ds, payload)
    valid = validator(cfg, ds)(agent)[select_metric(list(cfg.eval.ks))]
    ex = evaluate(agent, ds, "test", (10,), include_seen=False, off_policy=False)["eval/ndcg@10"]
    kept = evaluate(agent, ds, "test", (10,), include_seen=True, off_policy=False)["eval/ndcg@10"]
    return valid, ex, kept


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", help="events file (default: the built-in demo data)")
    ap.add_argument("--config", help="whatnext.toml or setup.txt (default: built-in defaults)")
    ap.add_argument("--model", help="override model.name (lstm, transformer)")
    ap.add_argument("--seeds", nargs="*", type=int, default=[0, 1, 2])
    ap.add_argument("--top", nargs="*", type=int, default=[3], help="average the N best checkpoints, for each N given")
    ap.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                    help="override a config key (repeatable), e.g. --set train.threads=1")
    args = ap.parse_args()

    from whatnext.cli.common import parse_sets

    flags = {"data.path": str(Path(args.data).resolve()) if args.data else None, "model.name": args.model}
    overrides = {**parse_sets(args.sets), **{k: v for k, v in flags.items() if v is not None}}
    rows: dict[str, list[tuple[float, float, float]]] = {}
    for seed in args.seeds:
        cfg = load_config(args.config, {**overrides, "train.seed": seed})
        ds = load_dataset(cfg)
        key = select_metric(list(cfg.eval.ks))
        with tempfile.TemporaryDirectory() as tmp:
            cfg.paths.models_dir, cfg.paths.run = tmp, "average"
            cfg.train.keep_last = 10**4  # every checkpoint stays, so any N of them can be averaged
            t = time.perf_counter()
            train(cfg, ds, evaluator=validator(cfg, ds))
            train_s = time.perf_counter() - t
            infos = checkpoints.listing(cfg.run_dir)
            ranked = sorted(infos, key=lambda c: -c.metrics.get(key, float("-inf")))
            print(f"seed {seed}: {len(infos)} checkpoints in {train_s:.0f} s, valid NDCG@10 by checkpoint "
                  f"{[round(c.metrics.get(key, float('nan')), 4) for c in infos]}", flush=True)
            for n in [1, *[n for n in args.top if n > 1]]:
                chosen = sorted(ranked[:n], key=lambda c: c.step)
                res = score(cfg, ds, averaged([checkpoints.load(c.path) for c in chosen]))
                name = "best checkpoint" if n == 1 else f"mean of top {n}"
                rows.setdefault(name, []).append(res)
                print(f"  {name:<16} steps {[c.step for c in chosen]}: valid {res[0]:.4f}  test {res[1]:.4f}  "
                      f"kept {res[2]:.4f}", flush=True)
    print(f"\n{'variant':<16} | valid NDCG@10 | test NDCG@10, played excluded | played kept   (seeds {args.seeds})")
    for name, res in rows.items():
        cols = []
        for i in range(3):
            vals = [r[i] for r in res]
            cols.append(f"{statistics.mean(vals):.4f} ± {statistics.stdev(vals):.4f}" if len(vals) > 1 else f"{vals[0]:.4f}")
        print(f"{name:<16} | {cols[0]} | {cols[1]} | {cols[2]}")


if __name__ == "__main__":
    main()
