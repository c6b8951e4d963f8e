"""1 process vs 2 processes (torch.distributed, gloo, 1 thread each): training throughput and test quality (#14).

    python bench/distributed.py                       # synthetic 1e6 plays + MovieLens 100K, about 4 minutes on a quiet machine
    python bench/distributed.py --steps 600 --epochs 10 --ml ../shared/data/ml-100k/u.data

Every run is ``whatnext train`` (``--nproc 2`` for two processes) with the built-in defaults, 1 thread per
process (train.threads = 1, OMP_NUM_THREADS = 1), a checkpoint only at the end (no validation inside the timed
loop), in a temporary folder:

- synthetic log of 1e6 plays (bench/scale.py's generator: 100,000 items, 20,000 users, sampled softmax):
  ``--steps`` global steps (batch 32), throughput only; plays/s is one epoch's training plays divided by the
  epoch time extrapolated from the steps (said so in the table);
- MovieLens 100K (read in place): ``--epochs`` epochs, then test NDCG@10 / HR@10 of the final checkpoint
  (``whatnext eval --split test``, played items excluded), the same number of global steps for 1 and 2 processes.

Throughput is the training loop's own ``train/samples_per_s`` at its last step (windows of the global batch
per second, start-up and the final checkpoint excluded), turned into plays/s with the epoch's plays per window.
The load average before and after each run is printed beside it: on a shared machine the ratio is pessimistic.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
ML = ROOT.parent / "shared" / "data" / "ml-100k" / "u.data"


def epoch_plays(data: str, items: str | None) -> tuple[int, int]:
    """(training plays, training windows) of one epoch under the default config."""
    from whatnext.config import load_config
    from whatnext.data import load_dataset
    from whatnext.rl.algorithms import positions_for

    cfg = load_config(None, {"data.path": data, "data.items_path": items})
    ds = load_dataset(cfg)
    windows = len(positions_for(ds, cfg.train.algorithm, cfg.model.window))
    return int(ds.histories.train_len.sum()), windows


def run(folder: Path, data: str, items: str | None, nproc: int, sets: list[str], name: str) -> dict:
    """One ``whatnext train`` run; its summary, last throughput and the load around it."""
    cfg = folder / "whatnext.toml"
    cfg.write_text(f'[data]\npath = "{data}"\n' + (f'items_path = "{items}"\n' if items else "")
                   + '\n[paths]\nmodels_dir = "models"\n')
    cmd = [sys.executable, "-m", "whatnext", "train", "--config", str(cfg), "--run", name, "--json", "--quiet",
           "--set", "train.threads=1", "--set", "train.checkpoint_every=1000000000", *[a for s in sets for a in ("--set", s)]]
    if nproc > 1:
        cmd += ["--nproc", str(nproc)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    before = os.getloadavg()[0]
    t = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    wall = time.perf_counter() - t
    if done.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed ({done.returncode}): {done.stderr[-2000:]}")
    summary = json.loads(done.stdout)
    rows = [json.loads(ln) for ln in (folder / "models" / name / "metrics.jsonl").read_text().splitlines()]
    last = [r for r in rows if "train/samples_per_s" in r][-1]
    return {"summary": summary, "windows_per_s": last["train/samples_per_s"], "wall_s": wall,
            "load": f"{before:.1f}-{os.getloadavg()[0]:.1f}", "cfg": cfg, "run": name}


def test_quality(r: dict) -> tuple[float, float]:
    """Test NDCG@10 and HR@10 (played items excluded) of a run's final checkpoint."""
    cmd = [sys.executable, "-m", "whatnext", "eval", "--config", str(r["cfg"]), "--run", r["run"], "--split", "test",
           "--json"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
    row = next(r for r in json.loads(done.stdout)["rows"] if r["eval/model"] == "agent")
    return float(row["eval/ndcg@10"]), float(row["eval/hr@10"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--plays", type=float, default=1e6, help="size of the synthetic log (0: leave it out)")
    ap.add_argument("--steps", type=int, default=200, help="global steps timed on the synthetic log")
    ap.add_argument("--ml", default=str(ML), help="MovieLens 100K u.data ('' to leave it out)")
    ap.add_argument("--epochs", type=int, default=4, help="epochs on MovieLens (the same for 1 and 2 processes)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--batch", type=int, default=32, help="train.batch_size, the global batch (32 is the default)")
    args = ap.parse_args()
    sys.path.insert(0, str(HERE))
    sys.path.insert(0, str(ROOT))
    from scale import generate

    print(f"cores: {os.cpu_count()}; load average at start: {' '.join(f'{x:.1f}' for x in os.getloadavg())}", flush=True)
    table = []
    with tempfile.TemporaryDirectory() as tmp:
        sets: list[tuple[str, str, str | None, list[str], bool]] = []
        if args.plays:
            folder = Path(tmp) / "synthetic"
            folder.mkdir()
            ev, it = generate(folder, int(args.plays))
            sets.append((f"synthetic {int(args.plays):,} plays", str(ev), str(it),
                         [f"train.samples={args.steps * args.batch}", "eval.max_users=200"], False))
        if args.ml:
            sets.append(("MovieLens 100K", str(Path(args.ml).resolve()), None, [f"train.epochs={args.epochs}"], True))
        for label, data, items, extra, quality in sets:
            plays, windows = epoch_plays(data, items)
            rows = {}
            for nproc in (1, 2):
                folder = Path(tmp) / f"{label.split()[0]}-{nproc}"
                folder.mkdir()
                r = run(folder, data, items, nproc, [*extra, f"train.seed={args.seed}", f"train.batch_size={args.batch}"],
                        f"p{nproc}")
                r["plays_per_s"] = r["windows_per_s"] * plays / windows
                r["quality"] = test_quality(r) if quality else None
                rows[nproc] = r
                q = f", test NDCG@10 {r['quality'][0]:.4f} HR@10 {r['quality'][1]:.4f}" if quality else ""
                print(f"{label}, {nproc} process(es): {r['summary']['steps']} steps, {r['plays_per_s']:,.0f} plays/s, "
                      f"wall {r['wall_s']:.0f} s, load {r['load']}{q}", flush=True)
            table.append((label, rows, quality))
    print(f"\n| data | steps (global batch {args.batch}) | 1 process: plays/s | 2 processes: plays/s | ratio | test NDCG@10 1 / 2 "
          "| test HR@10 1 / 2 | load avg (1; 2) |")
    print("|---|---|---|---|---|---|---|---|")
    for label, rows, quality in table:
        one, two = rows[1], rows[2]
        ratio = two["plays_per_s"] / one["plays_per_s"]
        steps = f"{one['summary']['steps']}" + ("" if quality else " (extrapolated to an epoch)")
        nd = f"{one['quality'][0]:.4f} / {two['quality'][0]:.4f}" if quality else "-"
        hr = f"{one['quality'][1]:.4f} / {two['quality'][1]:.4f}" if quality else "-"
        print(f"| {label} | {steps} | {one['plays_per_s']:,.0f} | {two['plays_per_s']:,.0f} | {ratio:.2f}x | {nd} | {hr} "
              f"| {one['load']}; {two['load']} |")


if __name__ == "__main__":
    main()
