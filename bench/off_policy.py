"""Off-policy evaluation of every baseline on logged rewards: what the estimators say, and how much data they rest on.

Usage::

    python bench/off_policy.py                                        # the demo data, full/skip as +1/-1
    python bench/off_policy.py --data ../shared/data/ml-100k/u.data   # MovieLens 100K, ratings centred

Fits every baseline (random, popular, markov, neighbours, and the supervised LSTM and SASRec, trained with the
built-in defaults) on the training part, then prints, on the validation and test splits with played items
excluded, NDCG@10 beside the reward metrics of :mod:`whatnext.evaluation.ope`: reward@10, ndcg_pos@10 and the
IPS / SNIPS / DR estimates of the mean logged reward of a song from the top-10, with the effective sample size of
the importance weights. The behaviour policy and reward model are fitted once and shared by every row.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from whatnext.config import Config
from whatnext.data import demo, load_dataset
from whatnext.evaluation import baselines
from whatnext.evaluation.ope import OffPolicy
from whatnext.evaluation.protocol import evaluate

COLUMNS = ["ndcg@10", "reward@10", "ndcg_pos@10", "reward_ips@10", "reward_snips@10", "reward_dr@10", "ess@10"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", help="events file with a rating column (default: the demo data with its full/skip column)")
    ap.add_argument("--reward-col", default="rating", help="the reward column of --data (default rating)")
    ap.add_argument("--transform", default="center", help="data.reward_transform for --data (default center)")
    ap.add_argument("--clip", type=float, default=100.0, help="eval.ope_clip (default 100)")
    args = ap.parse_args()
    cfg = Config()
    with tempfile.TemporaryDirectory() as tmp:
        if args.data:
            cfg.data.path = str(Path(args.data).resolve())
            cfg.data.reward_col, cfg.data.reward_transform = args.reward_col, args.transform
        else:
            ev, it = demo.write(Path(tmp))
            cfg.data.path, cfg.data.items_path = str(ev), str(it)
            cfg.data.reward_col, cfg.data.reward_map = demo.REWARD_COLUMN, dict(demo.REWARD_MAP)
        ds = load_dataset(cfg)
    off = OffPolicy.fit(ds.histories, len(ds.catalogue), args.clip)
    rw = ds.report["rewards"]
    print(f"data: {ds.source}: {len(ds.histories.items):,} events, {len(ds.histories):,} users, {len(ds.catalogue):,} items; "
          f"rewards from {rw['column']} ({rw['transform']}): mean {rw['mean']:.3f}, {rw['positive_share']:.1%} positive")
    print(f"{'model':<11}{'split':<6}" + "".join(f"{c:>16}" for c in COLUMNS) + f"{'s':>7}")
    for name in baselines.available(ds):
        t = time.perf_counter()
        model = baselines.make(name, ds, seed=0)
        for split in ("valid", "test"):
            r = evaluate(model, ds, split, ks=(10,), off_policy=off)
            print(f"{name:<11}{split:<6}" + "".join(f"{r['eval/' + c]:>16.4f}" for c in COLUMNS)
                  + f"{time.perf_counter() - t:>7.1f}", flush=True)


if __name__ == "__main__":
    main()
