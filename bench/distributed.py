"""1 process vs 2 processes (torch.distributed, gloo, 1 thread each): training throughput and test quality (#14).

    python bench/distributed.py                  # the defaults that matter: about 5 minutes on a quiet 2-core machine
    python bench/distributed.py --plays 0 --seeds 0,1,2 --scalings none,sqrt,linear   # the lr rule's evidence (--nproc 4 too)
    python bench/distributed.py --steps 600 --epochs 10 --ml ../shared/data/ml-100k/u.data

Every run is ``whatnext train`` (``--nproc 2`` for two processes) with the built-in config, 1 thread per
process (train.threads = 1, OMP_NUM_THREADS = 1), a checkpoint only at the end (no validation inside the timed
loop), in a temporary folder. ``train.batch_size`` (``--batch``, 32 by default) is the batch of each process
(``train.batch_scope = "process"``, the default): 2 processes take 64 positions a step, and their learning
rates are raised by ``train.lr_scaling`` (the default, or each of ``--scalings``). ``--global-scope`` adds a
row with ``train.batch_scope = "global"`` (the batch of 32 split over the 2 processes, as before #14).

- synthetic log of 1e6 plays (bench/scale.py's generator: 100,000 items, 20,000 users, sampled softmax):
  ``--steps`` steps of one process's batch (``train.samples = steps x batch``: 2 processes make half the steps
  over the same windows), throughput only; plays/s is extrapolated from those windows to an epoch;
- MovieLens 100K (read in place): ``--epochs`` epochs (the same number for every row), then test NDCG@10 /
  HR@10 of the final checkpoint (``whatnext eval --split test``, played items excluded), for each of ``--seeds``
  (the seed standard deviation of test NDCG@10 on MovieLens 100K is about 0.0046: README "Measured quality").

Throughput is the training loop's own ``train/samples_per_s`` at its last step (training windows of all the
processes per second, start-up and the final checkpoint excluded), turned into plays/s with the epoch's plays
per window. The 1-minute load average before and after each run is printed beside every figure: on a shared
machine the ratio is pessimistic (the 2 processes need both cores); the quality columns do not depend on load.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
ML = ROOT.parent / "shared" / "data" / "ml-100k" / "u.data"
ENV = {**os.environ, "OMP_NUM_THREADS": "1",
       "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}


def epoch_plays(data: str, items: str | None) -> tuple[int, int]:
    """(training plays, training windows) of one epoch under the default config."""
    from whatnext.config import load_config
    from whatnext.data import load_dataset
    from whatnext.rl.algorithms import positions_for

    cfg = load_config(None, {"data.path": data, "data.items_path": items})
    ds = load_dataset(cfg)
    windows = len(positions_for(ds, cfg.train.algorithm, cfg.model.window))
    return int(ds.histories.train_len.sum()), windows


def run(folder: Path, data: str, items: str | None, nproc: int, sets: list[str]) -> dict:
    """One ``whatnext train`` run in a fresh folder; its summary, last throughput and the load around it."""
    folder.mkdir(parents=True)
    cfg = folder / "whatnext.toml"
    cfg.write_text(f'[data]\npath = "{data}"\n' + (f'items_path = "{items}"\n' if items else "")
                   + '\n[paths]\nmodels_dir = "models"\n')
    cmd = [sys.executable, "-m", "whatnext", "train", "--config", str(cfg), "--json", "--quiet",
           "--set", "train.threads=1", "--set", "train.checkpoint_every=1000000000", *[a for s in sets for a in ("--set", s)]]
    if nproc > 1:
        cmd += ["--nproc", str(nproc)]
    before = os.getloadavg()[0]
    t = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env=ENV, check=False)
    wall = time.perf_counter() - t
    if done.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed ({done.returncode}): {done.stderr[-2000:]}")
    summary = json.loads(done.stdout)
    rows = [json.loads(ln) for ln in (folder / "models" / "default" / "metrics.jsonl").read_text().splitlines()]
    last = [r for r in rows if "train/samples_per_s" in r][-1]
    return {"summary": summary, "windows_per_s": last["train/samples_per_s"], "wall_s": wall,
            "load": f"{before:.1f}-{os.getloadavg()[0]:.1f}", "cfg": cfg}


def test_quality(cfg: Path) -> tuple[float, float]:
    """Test NDCG@10 and HR@10 (played items excluded) of a run's final checkpoint."""
    cmd = [sys.executable, "-m", "whatnext", "eval", "--config", str(cfg), "--split", "test", "--json"]
    done = subprocess.run(cmd, capture_output=True, text=True, env=ENV, check=True)
    row = next(r for r in json.loads(done.stdout)["rows"] if r["eval/model"] == "agent")
    return float(row["eval/ndcg@10"]), float(row["eval/hr@10"])


def setups(args: argparse.Namespace) -> list[tuple[str, int, list[str]]]:
    """(label, processes, --set options) of every row: 1 process, N per process with each lr rule, N global."""
    n = args.nproc
    rows = [("1 process", 1, [])]
    for s in args.scalings:
        rows.append((f"{n} processes, batch per process, lr_scaling {s}", n, ["train.batch_scope=process",
                                                                             f"train.lr_scaling={s}"]))
    if args.global_scope:
        rows.append((f"{n} processes, global batch (split)", n, ["train.batch_scope=global"]))
    return rows


def _spread(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.4f}"
    return f"{statistics.mean(values):.4f} ± {statistics.stdev(values):.4f}"


def main() -> None:
    from whatnext.config import Config

    default_scaling = Config().train.lr_scaling
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--plays", type=float, default=1e6, help="size of the synthetic log (0: leave it out)")
    ap.add_argument("--steps", type=int, default=200, help="steps of one process's batch timed on the synthetic log")
    ap.add_argument("--ml", default=str(ML), help="MovieLens 100K u.data ('' to leave it out)")
    ap.add_argument("--epochs", type=int, default=4, help="epochs on MovieLens (the same for every row)")
    ap.add_argument("--seeds", default="0", help="train.seed values on MovieLens, comma-separated (mean ± sd when several)")
    ap.add_argument("--batch", type=int, default=32, help="train.batch_size: each process's batch (32 is the default)")
    ap.add_argument("--scalings", default=default_scaling,
                    help=f"train.lr_scaling values for the multi-process rows, comma-separated (default: {default_scaling}, the built-in)")
    ap.add_argument("--global-scope", action="store_true", help="add a row with train.batch_scope = global")
    ap.add_argument("--nproc", type=int, default=2, help="processes of the multi-process rows (2: the issue's comparison)")
    ap.add_argument("--pair", action="store_true",
                    help="add a control row: two independent 1-process jobs at once (no collectives), their plays/s summed: "
                         "what the machine itself gives two processes")
    args = ap.parse_args()
    args.scalings = [s for s in args.scalings.split(",") if s]
    seeds = [int(s) for s in args.seeds.split(",")]
    sys.path.insert(0, str(HERE))
    sys.path.insert(0, str(ROOT))
    from scale import generate

    print(f"cores: {os.cpu_count()}; load average at start: {' '.join(f'{x:.1f}' for x in os.getloadavg())}", flush=True)
    table = []
    with tempfile.TemporaryDirectory() as tmp:
        data_sets: list[tuple[str, str, str | None, list[str], list[int]]] = []
        if args.plays:
            folder = Path(tmp) / "synthetic"
            folder.mkdir()
            ev, it = generate(folder, int(args.plays))
            data_sets.append((f"synthetic, {int(args.plays):,} plays", str(ev), str(it),
                              [f"train.samples={args.steps * args.batch}", "eval.max_users=200"], []))
        if args.ml:
            data_sets.append(("MovieLens 100K", str(Path(args.ml).resolve()), None, [f"train.epochs={args.epochs}"], seeds))
        for d, (label, data, items, extra, quality_seeds) in enumerate(data_sets):
            plays, windows = epoch_plays(data, items)
            for r, (setup, nproc, sets) in enumerate(setups(args)):
                found = []
                for seed in quality_seeds or [seeds[0]]:
                    res = run(Path(tmp) / f"d{d}-r{r}-s{seed}", data, items, nproc,
                              [*extra, f"train.seed={seed}", f"train.batch_size={args.batch}", *sets])
                    res["plays_per_s"] = res["windows_per_s"] * plays / windows
                    res["quality"] = test_quality(res["cfg"]) if quality_seeds else None
                    q = (f", test NDCG@10 {res['quality'][0]:.4f} HR@10 {res['quality'][1]:.4f}"
                         if quality_seeds else "")
                    print(f"{label} | {setup} | seed {seed}: {res['summary']['steps']} steps, "
                          f"{res['plays_per_s']:,.0f} plays/s, wall {res['wall_s']:.0f} s, load {res['load']}{q}", flush=True)
                    found.append(res)
                table.append((label, setup, nproc, found, bool(quality_seeds)))
            if args.pair:
                from concurrent.futures import ThreadPoolExecutor

                seed = (quality_seeds or [seeds[0]])[0]
                with ThreadPoolExecutor(2) as pool:
                    jobs = [pool.submit(run, Path(tmp) / f"d{d}-pair{j}", data, items, 1,
                                        [*extra, f"train.seed={seed}", f"train.batch_size={args.batch}"]) for j in (0, 1)]
                    both = [j.result() for j in jobs]
                res = {"summary": both[0]["summary"], "load": both[0]["load"], "quality": None,
                       "plays_per_s": sum(b["windows_per_s"] for b in both) * plays / windows}
                print(f"{label} | 2 independent 1-process jobs at once | seed {seed}: "
                      f"{res['plays_per_s']:,.0f} plays/s together, load {res['load']}", flush=True)
                # compared with the 1-process row's first seed only: the control runs one seed
                table.append((label, "2 independent 1-process jobs at once (summed; control)", 1, [res], False))
    one = {label: found for label, setup, nproc, found, _ in table if setup == "1 process"}
    print(f"\neach process's batch: {args.batch}; MovieLens: {args.epochs} epochs, seeds {args.seeds}; "
          f"plays/s: mean over the seeds; ratio: against 1 process on the same data, seed by seed")
    print("\n| data | setup | steps | plays/s | ratio | test NDCG@10 | test HR@10 | load avg (1 min, before-after) |")
    print("|---|---|---|---|---|---|---|---|")
    for label, setup, _, found, quality in table:
        pps = statistics.mean(f["plays_per_s"] for f in found)
        ratio = statistics.mean(f["plays_per_s"] / o["plays_per_s"] for f, o in zip(found, one[label]))
        steps = f"{found[0]['summary']['steps']}" + ("" if quality else " (extrapolated to an epoch)")
        nd = _spread([f["quality"][0] for f in found]) if quality else "–"
        hr = _spread([f["quality"][1] for f in found]) if quality else "–"
        print(f"| {label} | {setup} | {steps} | {pps:,.0f} | {ratio:.2f}x | {nd} | {hr} | "
              f"{'; '.join(f['load'] for f in found)} |")


if __name__ == "__main__":
    main()
