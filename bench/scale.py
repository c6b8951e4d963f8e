"""Cost per play as the log and the catalogue grow: load, train, recommend, ANN recall (#12).

    python bench/scale.py                        # 1e5, 1e6 and 1e7 plays
    python bench/scale.py --plays 100000 1000000 --steps 200
    python bench/scale.py --plays 1e7 --threads 1            # the 1e7 row with torch on one thread (auto: every core above 4,096 items)

For each size a synthetic log with sequential structure is written as Parquet (items = plays
/ 10, users = plays / 50): items form moods of 100 songs with 8 features around the mood's
centre; a user listens in sessions, each in one mood, moving mostly to the next song of the
mood (an album order), sometimes to a popular song of the mood, rarely to a random song, and
starting a new session (a new mood, drawn from the user's favourite moods) now and then. Each
size then runs in a fresh process (so memory figures do not mix): load the data, build the
agent with the default config, time ``--steps`` learning steps (after 5 warm-up steps) and
extrapolate to one epoch (said so in the table), time ``--queries`` one-user recommendations
in process (p50/p99: the actor and critic LSTMs, the index and the re-ranking), the index's
search alone for the same users (the 60-item slate, played items excluded), and the index's
recall@10 against exact search on the proto-actions of 500 users. Peak RSS is the child's whole-process maximum.
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
from pathlib import Path

MOOD = 100


def generate(folder: Path, plays: int, seed: int = 0) -> tuple[Path, Path]:
    """Write events.parquet and items.parquet for ``plays`` plays; return their paths."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    n_items, n_users = max(MOOD, plays // 10), max(1, plays // 50)
    n_moods = n_items // MOOD
    # history lengths: a long tail (gamma), at least 5, summing to `plays`
    weight = rng.gamma(0.7, 1.0, n_users)
    lengths = 5 + rng.multinomial(plays - 5 * n_users, weight / weight.sum()).astype(np.int64)
    fav = rng.integers(0, n_moods, (n_users, 3))  # each user's favourite moods
    mood_pop = 1.0 / np.arange(1, MOOD + 1) ** 1.1  # popularity of songs inside a mood
    mood_cdf = np.cumsum(mood_pop / mood_pop.sum())
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    items = np.empty(plays, dtype=np.int64)
    user_of = np.repeat(np.arange(n_users), lengths)
    pos_in = np.arange(plays) - offsets[user_of]
    cur = np.zeros(n_users, dtype=np.int64)
    for t in range(int(lengths.max())):  # one position of every active user at a time
        active = np.flatnonzero(lengths > t)
        u = rng.random(len(active))
        new_session = (u < 0.08) | (t == 0)
        mood = np.where(new_session, fav[active, rng.integers(0, 3, len(active))], cur[active] // MOOD)
        in_mood = np.minimum(np.searchsorted(mood_cdf, rng.random(len(active))), MOOD - 1)
        nxt = np.where(u < 0.65, mood * MOOD + (cur[active] % MOOD + 1) % MOOD,  # the next song of the mood
                       np.where(u < 0.93, mood * MOOD + in_mood, rng.integers(0, n_items, len(active))))
        nxt = np.where(new_session, mood * MOOD + in_mood, nxt)
        cur[active] = nxt
        items[offsets[active] + t] = nxt
    centres = rng.random((n_moods, 8))
    feats = np.clip(centres[np.arange(n_items) // MOOD] + 0.05 * rng.normal(size=(n_items, 8)), 0, 1)
    feats[:, 0] = np.round(feats[:, 0], 3)
    events = pd.DataFrame({"user_id": user_of + 1, "item_id": items + 1, "timestamp": pos_in})
    table = pd.DataFrame(feats.astype(np.float32), columns=[f"f{j}" for j in range(8)])
    table.insert(0, "item_id", np.arange(1, n_items + 1))
    ev, it = folder / "events.parquet", folder / "items.parquet"
    events.to_parquet(ev, index=False)
    table.to_parquet(it, index=False)
    return ev, it


def child(events: str, items: str, steps: int, queries: int, index_kind: str = "auto", threads: str = "auto") -> None:
    """In a fresh process: load, train ``steps`` steps, recommend, recall; print one JSON line."""
    import numpy as np
    import torch

    from whatnext.config import load_config
    from whatnext.data import load_dataset
    from whatnext.evaluation.protocol import split_inputs
    from whatnext.rl.agent import Agent
    from whatnext.rl.algorithms import negatives_for, positions_for
    from whatnext.rl.environment import learning_steps
    from whatnext.rl.schedule import steps_per_epoch
    from whatnext.rl.state import State
    from whatnext.search import FaissIndex, recall_at

    out: dict[str, float | str] = {}
    cfg = load_config(None, {"data.path": events, "data.items_path": items, "recommend.index": index_kind,
                             "train.threads": threads if threads == "auto" else int(threads)})
    t = time.perf_counter()
    ds = load_dataset(cfg)
    out["load_s"] = time.perf_counter() - t
    out["plays"], out["items"], out["users"] = len(ds.histories.items), len(ds.catalogue), len(ds.histories)
    torch.manual_seed(0)
    t = time.perf_counter()
    agent = Agent(State(ds), cfg)
    agent.wake()
    out["threads"] = torch.get_num_threads()
    positions = positions_for(ds, cfg.train.algorithm, cfg.model.window)
    out["setup_s"] = time.perf_counter() - t
    spe = steps_per_epoch(len(positions), cfg.train.batch_size)
    out["steps_per_epoch"] = spe
    out["negatives"] = str(negatives_for(cfg, len(ds.catalogue)) or "full")
    warm = 5
    t = 0.0
    for step, _, _, batch, rng, gen in learning_steps(cfg, ds, positions, 0, warm + steps):
        if step == warm:
            t = time.perf_counter()
        agent.propagate(batch, rng, gen)
    per_step = (time.perf_counter() - t) / steps
    out["step_s"] = per_step
    out["epoch_s"] = per_step * spe
    out["us_per_play"] = 1e6 * per_step * spe / len(ds.histories.items)
    agent.ready()
    t = time.perf_counter()
    agent.item_vectors()
    index = agent.state.index
    agent.tune_index()  # an approximate index tunes its search parameter on 300 users' proto-actions
    out["index_build_s"] = time.perf_counter() - t
    out["index"] = getattr(index, "kind", "numpy-exact")
    out["index_param"] = getattr(index, "param", 0)
    out["index_recall_tuned"] = getattr(index, "recall", 1.0)
    _, hists, _ = split_inputs(ds, "test")
    rng = np.random.default_rng(0)
    pick = rng.choice(len(hists), min(queries, len(hists)), replace=False)
    times = []
    for i in pick:
        h = [hists[i]]
        t = time.perf_counter()
        agent.recommend(h, 10, h)
        times.append(time.perf_counter() - t)
    out["rec_p50_ms"] = 1000 * float(np.percentile(times, 50))
    out["rec_p99_ms"] = 1000 * float(np.percentile(times, 99))
    sample = [hists[i] for i in pick[:500]]
    from whatnext.data import pad_histories

    inputs, lengths = pad_histories(sample, cfg.model.window)
    proto = agent.predict(inputs, lengths)
    times = []
    for i in range(len(sample)):  # the index alone: one user's slate (re-rank 50 + 10), played items excluded
        t = time.perf_counter()
        index.search(proto[i : i + 1], 60, sample[i : i + 1])
        times.append(time.perf_counter() - t)
    out["search_p50_ms"] = 1000 * float(np.percentile(times, 50))
    out["search_p99_ms"] = 1000 * float(np.percentile(times, 99))
    found, _ = index.search(proto, 10)
    truth, _ = FaissIndex(agent.state.embeddings, "exact").search(proto, 10)
    out["recall@10"] = recall_at(found, truth)
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(out))


def index_param(r: dict) -> str:
    return str(r["index_param"]) if r["index"] in ("ivf", "hnsw") else "-"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--plays", type=float, nargs="+", default=[1e5, 1e6, 1e7])
    ap.add_argument("--steps", type=int, default=200, help="timed learning steps per size (after 5 warm-up)")
    ap.add_argument("--queries", type=int, default=300, help="one-user recommendations timed per size")
    ap.add_argument("--index", default="auto", choices=("auto", "exact", "ivf", "hnsw"), help="recommend.index")
    ap.add_argument("--threads", default="auto", help="train.threads: auto (the default: 1 up to 4,096 items, every core above) or a count")
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child[0], args.child[1], args.steps, args.queries, args.index, args.threads)
        return
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for plays in (int(p) for p in args.plays):
            folder = Path(tmp) / str(plays)
            folder.mkdir()
            t = time.perf_counter()
            ev, it = generate(folder, plays)
            gen_s = time.perf_counter() - t
            load_before = os.getloadavg()[0]
            r = subprocess.run([sys.executable, __file__, "--child", str(ev), str(it), "--steps", str(args.steps),
                                "--queries", str(args.queries), "--index", args.index, "--threads", str(args.threads)], check=False, capture_output=True, text=True)
            if r.returncode != 0:
                print(f"{plays} plays: the child failed:\n{r.stderr[-2000:]}")
                continue
            row = json.loads(r.stdout.strip().splitlines()[-1])
            row["gen_s"], row["load_avg"] = gen_s, f"{load_before:.1f}-{os.getloadavg()[0]:.1f}"
            rows.append(row)
            print(json.dumps(row), flush=True)
    print(f"\ntraining: {args.steps} timed steps per size, extrapolated to one epoch; default config "
          f"(hybrid, batch 32 windows of 50, re-rank 50, threads {args.threads})")
    head = ("plays", "items", "users", "load s", "peak RSS MB", "softmax", "s/step", "epoch s (extrap.)",
            "us/play", "index", "build s", "rec p50 ms", "rec p99 ms", "search p50 ms", "search p99 ms", "recall@10", "load avg")
    print(" | ".join(head))
    for r in rows:
        print(" | ".join([f"{r['plays']:,}", f"{r['items']:,}", f"{r['users']:,}", f"{r['load_s']:.1f}",
                          f"{r['peak_rss_mb']:.0f}", str(r["negatives"]), f"{r['step_s']:.3f}", f"{r['epoch_s']:.0f}",
                          f"{r['us_per_play']:.1f}", f"{r['index']}({index_param(r)})", f"{r['index_build_s']:.1f}", f"{r['rec_p50_ms']:.2f}",
                          f"{r['rec_p99_ms']:.2f}", f"{r['search_p50_ms']:.2f}", f"{r['search_p99_ms']:.2f}",
                          f"{r['recall@10']:.3f}", r["load_avg"]]))


if __name__ == "__main__":
    main()
