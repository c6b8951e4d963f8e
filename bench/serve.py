"""Serving latency and throughput: ``Recommender.recommend`` in process, and HTTP against a real
``whatnext serve`` process (uvicorn on 127.0.0.1, httpx clients with keep-alive).

Two catalogues: the demo (2,000 songs, trained with the defaults) and a synthetic one of
``--items`` songs (100,000 by default: 8 features, the default model, trained for a few steps:
latency depends on the sizes, not on how well the weights are trained). Each is trained once
into ``--workdir`` and reused. Prints one table: p50/p99 latency at concurrency 1 in process and
over HTTP, and throughput over HTTP at concurrency ``--concurrency`` (16), with the CPU time the
server (all its workers) and the client threads spent per request in that phase. Every phase is
bounded by ``--requests`` and ``--seconds``. The load average is printed with the figures: this
machine is shared, so a busy one shows (CPU time per request shows it least).

    python bench/serve.py                    # both catalogues
    python bench/serve.py --only demo --requests 500
    python bench/serve.py --only synthetic --workers 1 2     # one and two server processes
    python bench/serve.py --side                             # the critic beside the search, against in turn
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np


def _project_demo(root: Path) -> Path:
    from whatnext import engine

    cfg = root / "demo" / "whatnext.toml"
    if not cfg.exists():
        engine.init_project(root / "demo", demo=True)
    if not list((root / "demo" / "models" / "default").glob("ckpt-*.pt")):
        print("training the demo run once (10 epochs)...", flush=True)
        engine.train(cfg)
    return cfg


def _project_synthetic(root: Path, n_items: int, n_users: int = 2000, length: int = 20) -> Path:
    import pandas as pd

    from whatnext import engine

    folder = root / f"synthetic-{n_items}"
    cfg = folder / "whatnext.toml"
    if not cfg.exists():
        folder.mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng(0)
        items = pd.DataFrame(rng.random((n_items, 8)).round(4), columns=[f"f{j}" for j in range(8)])
        items.insert(0, "item_id", [f"s{i}" for i in range(n_items)])
        items["title"] = [f"Song {i}" for i in range(n_items)]
        items.to_csv(folder / "items.csv", index=False)
        users = np.repeat(np.arange(n_users), length)
        events = pd.DataFrame({"user_id": users, "item_id": [f"s{i}" for i in rng.integers(0, n_items, len(users))],
                               "timestamp": np.tile(np.arange(length), n_users)})
        events.to_csv(folder / "events.csv", index=False)
        # the default model; a few steps (latency does not depend on training), no weight tuning
        cfg.write_text('[data]\npath = "events.csv"\nitems_path = "items.csv"\n[model]\ntune_rerank = false\n'
                       '[train]\nsamples = 128\n', encoding="utf-8")
    if not list((folder / "models" / "default").glob("ckpt-*.pt")):
        print(f"training the synthetic {n_items}-item run once (a few steps)...", flush=True)
        engine.train(cfg)
    return cfg


def _percentiles(seconds: list[float]) -> tuple[float, float]:
    ms = np.asarray(seconds) * 1e3
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 99))


def in_process(cfg: Path, requests: int, limit: float) -> dict[str, float]:
    """p50/p99 of Recommender.recommend for random users, one at a time."""
    from whatnext.serving.recommender import Recommender

    t = time.perf_counter()
    rec = Recommender.load(cfg)
    load = time.perf_counter() - t
    users = rec.dataset.histories.user_ids
    rng = np.random.default_rng(1)
    for u in rng.choice(users, 20):  # warm-up
        rec.recommend(user=str(u), k=10)
    times: list[float] = []
    end = time.monotonic() + limit
    for u in rng.choice(users, requests):
        t = time.perf_counter()
        rec.recommend(user=str(u), k=10)
        times.append(time.perf_counter() - t)
        if time.monotonic() > end:
            break
    p50, p99 = _percentiles(times)
    return {"load_s": load, "p50": p50, "p99": p99, "n": len(times), "items": len(rec.dataset.catalogue),
            "users": [str(u) for u in users]}


def side_ab(cfg: Path, requests: int, rounds: int = 6) -> dict[int, tuple[float, float]]:
    """In process, the critic read beside the search (rl/side.py) against in turn: the same requests in
    interleaved blocks of ``requests // rounds``, so both see the same machine; p50/p99 of each."""
    import whatnext.rl.agent as agent_module
    from whatnext.serving.recommender import Recommender

    rec = Recommender.load(cfg)
    users = rec.dataset.histories.user_ids
    rng = np.random.default_rng(3)
    for u in rng.choice(users, 20):
        rec.recommend(user=str(u), k=10)
    times: dict[int, list[float]] = {0: [], agent_module.SIDE_MAX: []}
    for r in range(rounds):
        block = rng.choice(users, max(1, requests // rounds))
        for side in sorted(times, reverse=bool(r % 2)):
            agent_module.SIDE_MAX = side
            for u in block:
                t = time.perf_counter()
                rec.recommend(user=str(u), k=10)
                times[side].append(time.perf_counter() - t)
    agent_module.SIDE_MAX = max(times)
    return {side: _percentiles(v) for side, v in times.items()}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of process ``pid`` and its children (the workers), from /proc; None elsewhere."""
    try:
        tick = os.sysconf("SC_CLK_TCK")
        children: dict[int, list[int]] = {}
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                except (OSError, IndexError, ValueError):
                    continue
                children.setdefault(ppid, []).append(int(entry.name))
        total, todo = 0.0, [pid]
        while todo:
            p = todo.pop()
            todo += children.get(p, [])
            try:
                fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += (int(fields[11]) + int(fields[12])) / tick
        return total
    except (OSError, ValueError, AttributeError):
        return None


def over_http(cfg: Path, users: list[str], requests: int, limit: float, concurrency: int, workers: int) -> dict[str, float]:
    """p50/p99 at concurrency 1, then throughput and p50/p99 at ``concurrency``, against a real server."""
    import httpx

    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = cfg.parent / "bench-serve.log"
    proc = subprocess.Popen([sys.executable, "-m", "whatnext", "serve", "--config", str(cfg), "--port", str(port),
                             "--workers", str(workers), "--watch", "0"], stdout=log.open("wb"), stderr=subprocess.STDOUT)
    try:
        end = time.monotonic() + 300
        while True:
            if proc.poll() is not None or time.monotonic() > end:
                raise SystemExit(f"server did not start: {log.read_text()[-2000:]}")
            try:
                if httpx.get(url + "/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        rng = np.random.default_rng(2)
        with httpx.Client(base_url=url, timeout=30) as c:
            for u in rng.choice(users, 50):  # warm-up (and every worker's first requests)
                c.get(f"/v1/users/{u}/recommendations", params={"k": 10}).raise_for_status()
            seq: list[float] = []
            stop = time.monotonic() + limit
            for u in rng.choice(users, requests):
                t = time.perf_counter()
                c.get(f"/v1/users/{u}/recommendations", params={"k": 10}).raise_for_status()
                seq.append(time.perf_counter() - t)
                if time.monotonic() > stop:
                    break
        lat: list[list[float]] = [[] for _ in range(concurrency)]
        failed = [0]
        per = max(1, requests // concurrency)
        stop = time.monotonic() + limit

        def client(i: int) -> None:
            r = np.random.default_rng(100 + i)
            with httpx.Client(base_url=url, timeout=30) as c:
                for u in r.choice(users, per):
                    t = time.perf_counter()
                    if c.get(f"/v1/users/{u}/recommendations", params={"k": 10}).status_code != 200:
                        failed[0] += 1
                    lat[i].append(time.perf_counter() - t)
                    if time.monotonic() > stop:
                        break

        threads = [threading.Thread(target=client, args=(i,)) for i in range(concurrency)]
        # CPU time per request does not grow with other processes' load as wall time does: on a shared
        # machine it says what the server costs (and the client threads, which share the machine with it)
        cpu0, mine0 = _cpu_seconds(proc.pid), sum(os.times()[:2])
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - t0
        cpu1, mine1 = _cpu_seconds(proc.pid), sum(os.times()[:2])
        flat = [x for part in lat for x in part]
        p50, p99 = _percentiles(seq)
        c50, c99 = _percentiles(flat)
        server_ms = float("nan") if cpu0 is None or cpu1 is None else 1e3 * (cpu1 - cpu0) / max(1, len(flat))
        return {"p50": p50, "p99": p99, "n": len(seq), "rps": len(flat) / wall, "c_p50": c50, "c_p99": c99,
                "c_n": len(flat), "failed": failed[0], "server_cpu_ms": server_ms,
                "client_cpu_ms": 1e3 * (mine1 - mine0) / max(1, len(flat))}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/whatnext-bench-serve"))
    ap.add_argument("--items", type=int, default=100_000, help="size of the synthetic catalogue")
    ap.add_argument("--only", choices=["demo", "synthetic"], default=None)
    ap.add_argument("--requests", type=int, default=2000, help="requests per phase (at most)")
    ap.add_argument("--seconds", type=float, default=60.0, help="time per phase (at most)")
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--workers", type=int, nargs="+", default=[1],
                    help="server processes; several values (e.g. 1 2) measure each against the same catalogue in turn")
    ap.add_argument("--side", action="store_true",
                    help="only compare, in process, the critic read beside the search with in turn (rl/side.py)")
    args = ap.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    projects = []
    if args.only in (None, "demo"):
        projects.append(("demo", _project_demo(args.workdir)))
    if args.only in (None, "synthetic"):
        projects.append((f"synthetic {args.items:,}", _project_synthetic(args.workdir, args.items)))
    if args.side:
        for name, cfg in projects:
            ab = side_ab(cfg, args.requests)
            (b50, b99), (s50, s99) = ab[0], ab[max(ab)]
            print(f"{name}: in turn p50 {b50:.2f} / p99 {b99:.2f} ms; critic beside the search p50 {s50:.2f} / p99 {s99:.2f} ms "
                  f"(load average {os.getloadavg()[0]:.1f})", flush=True)
        return
    rows = []
    for name, cfg in projects:
        load_before = os.getloadavg()[0]
        ip = in_process(cfg, args.requests, args.seconds)
        for workers in args.workers:
            http = over_http(cfg, ip["users"], args.requests, args.seconds, args.concurrency, workers)
            rows.append((name, workers, ip, http, load_before, os.getloadavg()[0]))
            load_before = os.getloadavg()[0]
        print(f"{name}: done", flush=True)
    print(f"\nwhatnext serve bench, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} CPUs, k=10 "
          f"(in process: measured once per catalogue)\n")
    print(f"| catalogue | workers | load | in process p50 / p99 | HTTP c=1 p50 / p99 | HTTP c={args.concurrency}: req/s, "
          "p50 / p99 | CPU ms per request: server, client | failed | load average |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, workers, ip, http, l0, l1 in rows:
        print(f"| {name} ({ip['items']:,} items) | {workers} | {ip['load_s']:.1f} s | {ip['p50']:.2f} / {ip['p99']:.2f} ms "
              f"(n={ip['n']}) | {http['p50']:.2f} / {http['p99']:.2f} ms (n={http['n']}) | {http['rps']:.0f}, "
              f"{http['c_p50']:.1f} / {http['c_p99']:.1f} ms (n={http['c_n']}) | {http['server_cpu_ms']:.2f}, "
              f"{http['client_cpu_ms']:.2f} | {http['failed']} | {l0:.1f} -> {l1:.1f} |")

if __name__ == "__main__":
    main()
