"""Do the sequences carry signal? Every baseline through ``whatnext.evaluation.protocol`` on one dataset.

Usage::

    python bench/demo_signal.py                          # the built-in demo data
    python bench/demo_signal.py --data ../shared/data/ml-100k/u.data

Fits random, popular, markov and (when the items have features) neighbours on the training
part, then evaluates each on the validation and test splits with full ranking, already played
items removed (our default) and kept (``include_seen``, as RecBole reports), and prints one
table. Sequences carry real signal when the first-order transition baseline (markov) beats
most-popular by a wide margin. Where the data folder holds ``loo-targets.json`` (MovieLens
100K), the split is also checked against it.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from whatnext.config import Config
from whatnext.data import load_dataset
from whatnext.evaluation import baselines
from whatnext.evaluation.protocol import evaluate, split_inputs


def check_loo(ds, path: Path) -> None:
    ref = json.loads(path.read_text())
    for split in ("valid", "test"):
        users, _, targets = split_inputs(ds, split)
        mine = dict(zip(ds.histories.user_ids[users].tolist(), ds.catalogue.ids[targets].tolist()))
        theirs = {str(u): str(i) for u, i in ref[split]}
        differ = sorted((u for u in theirs if mine.get(u) != theirs[u]), key=int)
        print(f"split check vs {path.name}: {split}: {len(mine)} users here, {len(theirs)} there, "
              f"{len(differ)} targets differ {differ[:10]}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", help="events file (default: the built-in demo data); read in place, never copied")
    ap.add_argument("--items", help="optional item table with features")
    ap.add_argument("--seed", type=int, default=0, help="seed of the random baseline")
    ap.add_argument("--seen", choices=("removed", "kept", "both"), default="both",
                    help="already played items removed from the ranking, kept, or both (default)")
    args = ap.parse_args()

    cfg = Config()
    if args.data:
        cfg.data.path = str(Path(args.data).resolve())
    if args.items:
        cfg.data.items_path = str(Path(args.items).resolve())
    t = time.perf_counter()
    ds = load_dataset(cfg)
    load_s = time.perf_counter() - t
    h = ds.histories
    print(f"data: {ds.source}: {len(h.items):,} events, {len(h):,} users, {len(ds.catalogue):,} items, "
          f"features: {', '.join(ds.catalogue.feature_names) or 'none'} (loaded in {load_s:.2f} s)")
    if args.data and (Path(args.data).resolve().parent / "loo-targets.json").exists():
        check_loo(ds, Path(args.data).resolve().parent / "loo-targets.json")

    emb = ds.catalogue.features
    modes = {"removed": [False], "kept": [True], "both": [False, True]}[args.seen]
    cols = ["hr@10", "ndcg@10", "mrr@10", "hr@20", "ndcg@20", "coverage@10", "ild@10", "novelty@10"]
    head = f"{'model':<11}{'split':<6}{'seen':<8}" + "".join(f"{c:>12}" for c in cols) + f"{'fit s':>8}{'eval s':>8}"
    print(head)
    print("-" * len(head))
    results: dict[tuple[str, str, bool], dict] = {}
    for name in baselines.available(ds):
        t = time.perf_counter()
        model = baselines.make(name, ds, seed=args.seed)
        fit_s = time.perf_counter() - t
        for seen in modes:
            for split in ("valid", "test"):
                t = time.perf_counter()
                r = evaluate(model, ds, split, ks=(10, 20), include_seen=seen, embeddings=emb)
                eval_s = time.perf_counter() - t
                results[(name, split, seen)] = r
                vals = "".join(f"{r[f'eval/{c}']:>12.4f}" if f"eval/{c}" in r else f"{'-':>12}" for c in cols)
                print(f"{name:<11}{split:<6}{'kept' if seen else 'removed':<8}{vals}{fit_s:>8.2f}{eval_s:>8.2f}")
    print()
    for seen in modes:
        for split in ("valid", "test"):
            m, p = results[("markov", split, seen)], results[("popular", split, seen)]
            ratio = m["eval/ndcg@10"] / p["eval/ndcg@10"] if p["eval/ndcg@10"] else float("inf")
            verdict = "signal: markov beats popular" if m["eval/ndcg@10"] > p["eval/ndcg@10"] else "NO signal beyond popularity"
            print(f"{split:<5} seen {'kept' if seen else 'removed':<8} markov NDCG@10 {m['eval/ndcg@10']:.4f} vs popular "
                  f"{p['eval/ndcg@10']:.4f} ({ratio:.1f}x): {verdict}")
    users = np.count_nonzero(h.lengths >= 2)
    print(f"({users} users with a test target; metrics are means over them)")


if __name__ == "__main__":
    main()
