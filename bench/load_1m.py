"""Time ``whatnext.data.load_dataset`` on 1,000,000 synthetic events, CSV and Parquet.

Usage: ``python bench/load_1m.py [--events N] [--repeat 3] [--long]``

Writes synthetic events (user_id, item_id, timestamp) and an item table (item_id, title,
artist, 8 numeric features) to a temporary folder as CSV and as Parquet. Each format is
loaded in a fresh child process (so memory figures do not mix): ``--repeat`` timed loads
(best and median reported), then one load under tracemalloc for the peak of Python-tracked
allocations (numpy and pandas buffers included). ``maxrss delta`` is the growth of the
child's peak resident memory over its level after imports, i.e. the extra memory the load
needed. ``--long`` adds the one-long-table CSV (features on every event row). Target: < 5 s.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

FEATURES = ("danceability", "energy", "valence", "acousticness", "instrumentalness", "speechiness", "liveness", "tempo")


def generate(folder: Path, n_events: int, seed: int = 0) -> dict[str, tuple[Path, Path | None]]:
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    n_users, n_items = max(1, n_events // 50), max(1, n_events // 20)
    pop = 1.0 / np.arange(1, n_items + 1) ** 0.8
    events = pd.DataFrame({
        "user_id": rng.integers(1, n_users + 1, n_events),
        "item_id": rng.choice(n_items, size=n_events, p=pop / pop.sum()) + 1,
        "timestamp": rng.integers(1_600_000_000, 1_700_000_000, n_events),
    })
    items = pd.DataFrame({
        "item_id": np.arange(1, n_items + 1),
        "title": [f"Song {i}" for i in range(n_items)],
        "artist": [f"Artist {i % 997}" for i in range(n_items)],
    })
    for j, name in enumerate(FEATURES):
        items[name] = np.round(rng.random(n_items) * (200 if name == "tempo" else 1), 4)
    out = {}
    events.to_csv(folder / "events.csv", index=False)
    items.to_csv(folder / "items.csv", index=False)
    out["csv"] = (folder / "events.csv", folder / "items.csv")
    events.to_parquet(folder / "events.parquet", index=False)
    items.to_parquet(folder / "items.parquet", index=False)
    out["parquet"] = (folder / "events.parquet", folder / "items.parquet")
    return out


def child(events: str, items: str | None, repeat: int) -> None:
    """Runs in a fresh process: time the loads, then measure memory; print one JSON line."""
    from whatnext.config import Config
    from whatnext.data import load_dataset

    cfg = Config()
    cfg.data.path = events
    cfg.data.items_path = items or ""
    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        ds = load_dataset(cfg)
        times.append(time.perf_counter() - t)
        del ds
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tracemalloc.start()
    ds = load_dataset(cfg)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(json.dumps({
        "times": times, "tracemalloc_peak_mb": peak / 2**20, "maxrss_delta_mb": (rss - base_rss) / 1024,
        "maxrss_mb": rss / 1024, "events": len(ds.histories.items), "users": len(ds.histories),
        "items": len(ds.catalogue), "features": len(ds.catalogue.feature_names),
    }))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--long", action="store_true", help="also time the one-long-table CSV")
    ap.add_argument("--child", nargs=2, metavar=("EVENTS", "ITEMS"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child[0], None if args.child[1] == "-" else args.child[1], args.repeat)
        return

    import statistics

    with tempfile.TemporaryDirectory(prefix="whatnext-bench-") as tmp:
        folder = Path(tmp)
        t = time.perf_counter()
        files = generate(folder, args.events)
        if args.long:
            import pandas as pd

            ev, it = pd.read_csv(files["csv"][0]), pd.read_csv(files["csv"][1])
            ev.merge(it, on="item_id", how="left").to_csv(folder / "long.csv", index=False)
            files["csv (long table)"] = (folder / "long.csv", None)
        print(f"generated {args.events:,} events in {time.perf_counter() - t:.1f} s")
        sizes = {k: sum(p.stat().st_size for p in v if p) / 2**20 for k, v in files.items()}
        rows = []
        for fmt, (ev_path, it_path) in files.items():
            cmd = [sys.executable, __file__, "--repeat", str(args.repeat), "--child", str(ev_path), str(it_path or "-")]
            res = subprocess.run(cmd, capture_output=True, text=True, env=os.environ, check=False)
            if res.returncode:
                print(res.stderr, file=sys.stderr)
                raise SystemExit(f"{fmt}: child failed")
            r = json.loads(res.stdout.strip().splitlines()[-1])
            rows.append((fmt, sizes[fmt], min(r["times"]), statistics.median(r["times"]), r["tracemalloc_peak_mb"],
                         r["maxrss_delta_mb"], r["maxrss_mb"], r))
    first = rows[0][-1]
    print(f"dataset: {first['events']:,} events, {first['users']:,} users, {first['items']:,} items, "
          f"{first['features']} features; {args.repeat} loads per format, each format in a fresh process")
    head = f"{'format':<18}{'file MB':>9}{'best s':>9}{'median s':>10}{'tracemalloc peak MB':>21}{'maxrss delta MB':>17}{'maxrss MB':>11}"
    print(head)
    print("-" * len(head))
    for fmt, size, best, med, peak, delta, rss, _ in rows:
        print(f"{fmt:<18}{size:>9.1f}{best:>9.2f}{med:>10.2f}{peak:>21.0f}{delta:>17.0f}{rss:>11.0f}")
    worst = max(r[3] for r in rows)
    print(f"target < 5 s per load: {'met' if worst < 5 else 'NOT met'} (slowest median {worst:.2f} s)")


if __name__ == "__main__":
    main()
