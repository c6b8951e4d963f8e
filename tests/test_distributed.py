"""Training across processes (whatnext/rl/distributed.py, rl/launch.py): gloo on localhost, tiny data.

The sharding is checked in process (the union of the ranks' shares is the single-process step); the
rest runs real jobs: torchrun with tests/dist_worker.py (which records each rank's weights and every file
it writes), ``whatnext train --nproc 2`` (failures, kill and resume, resume across world sizes) and a
two-"node" static rendezvous on 127.0.0.1 (two launchers with --nnodes 2). Every subprocess has a timeout.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import core_helpers as ch
import numpy as np
import pytest
import torch

from whatnext import checkpoints
from whatnext.rl import distributed
from whatnext.rl.algorithms import positions_for, steps_per_epoch
from whatnext.rl.distributed import Replica, World
from whatnext.rl.environment import learning_steps, total_steps

HERE = Path(__file__).resolve().parent
TORCHRUN = [sys.executable, "-m", "torch.distributed.run"]
LIMIT = 240  # seconds any one job may take on a loaded 2-core machine


def _env() -> dict[str, str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    for k in ("WHATNEXT_DEBUG", "RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(k, None)
    return env


def _project(tmp_path: Path, **kw) -> Path:
    kw.setdefault("algorithm", "hybrid")
    return ch.write_project(tmp_path / "proj", **kw)


def _whatnext(cfg: Path, *args: str, timeout: float = LIMIT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "whatnext", "train", "--config", cfg.name, "--quiet", *args],
                          cwd=cfg.parent, capture_output=True, text=True, timeout=timeout, env=_env(), check=False)


def _worker_job(cfg: Path, out: Path, *sets: str, nproc: int = 2, env: dict[str, str] | None = None,
                ) -> subprocess.CompletedProcess:
    cmd = [*TORCHRUN, "--nproc-per-node", str(nproc), "--rdzv-backend", "c10d", "--rdzv-endpoint", "127.0.0.1:0",
           str(HERE / "dist_worker.py"), str(cfg), str(out), *sets]
    done = subprocess.run(cmd, cwd=cfg.parent, capture_output=True, text=True, timeout=LIMIT, env={**_env(), **(env or {})},
                          check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def _final(run_dir: Path) -> dict:
    found = checkpoints.load_latest(run_dir)
    assert found is not None
    return found[1]


# -- sharding (in process) ------------------------------------------------------------------


@pytest.mark.parametrize("world", [2, 3])
def test_the_ranks_shares_are_exactly_the_single_process_epoch(tmp_path: Path, world: int) -> None:
    ds = ch.dataset(n_users=7, n_events=9)
    cfg = ch.config(tmp_path, "hybrid", epochs=2, batch_size=5)
    positions = positions_for(ds, "hybrid", cfg.model.window)
    total = total_steps(cfg, steps_per_epoch(len(positions), 5))
    assert len(positions) % 5  # the last batch is shorter; a batch of 5 never splits evenly
    solo = list(learning_steps(cfg, ds, positions, 0, total))
    ranks = [list(learning_steps(cfg, ds, positions, 0, total, Replica(World(r, world)))) for r in range(world)]
    for step, single in enumerate(solo):
        parts = [ranks[r][step][3] for r in range(world)]
        assert np.array_equal(np.concatenate([p.inputs for p in parts]), single[3].inputs)
        assert np.array_equal(np.concatenate([p.targets for p in parts]), single[3].targets)
        assert all(ranks[r][step][:3] == single[:3] for r in range(world))  # step, epoch, index in epoch
    # every rank draws the step's negatives (numpy) as one process does; rank 0 keeps the single
    # process's noise and dropout (torch), the others draw their own
    for step, single in enumerate(solo):
        assert all(ranks[r][step][4].bit_generator.state == single[4].bit_generator.state for r in range(world))
        assert torch.equal(ranks[0][step][5].get_state(), single[5].get_state())
        assert not torch.equal(ranks[1][step][5].get_state(), single[5].get_state())


def test_shard_weights_and_the_empty_share() -> None:
    batch = np.arange(5)
    shares = [distributed.shard(batch, World(r, 3)) for r in range(3)]
    assert [list(s) for s, _ in shares] == [[0, 1], [2, 3], [4]]
    assert sum(w for _, w in shares) == pytest.approx(1.0)
    part, weight = distributed.shard(np.arange(1), World(1, 2))  # nothing left for rank 1
    assert list(part) == [0] and weight == 0.0


def test_nproc_out_of_range_is_refused() -> None:
    from typer.testing import CliRunner

    from whatnext.cli import app

    res = CliRunner().invoke(app, ["train", "--nproc", "0"])
    assert res.exit_code == 2
    assert "--nproc is 0; expected a number of processes from 1 to 1024" in res.stderr


# -- real jobs --------------------------------------------------------------------------------


@pytest.mark.parametrize("sparse", ["allreduce", pytest.param("gather", marks=pytest.mark.slow)])
def test_two_processes_keep_equal_weights_and_only_rank0_writes(tmp_path: Path, sparse: str) -> None:
    """Sampled softmax (sparse item-table gradients) and the critic: after every step the ranks'
    weights are bit-identical (the weights differ if the gradients are not averaged: each rank
    sees other windows), and only rank 0 touches the run folder. ``gather``: the sparse gradients
    travel by all_gather, nccl's way, here under gloo."""
    cfg = _project(tmp_path, epochs=2, checkpoint_every=5)
    out = tmp_path / "out"
    _worker_job(cfg, out, "train.negatives=8", env={distributed.GATHER_SPARSE: "1" if sparse == "gather" else "0"})
    r0, r1 = (torch.load(out / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    for part in ("actor", "critic"):
        assert ch.state_equal(r0[part], r1[part]), part
    assert (out / "writes1.txt").read_text() == ""
    writes0 = (out / "writes0.txt").read_text()
    assert "ckpt-" in writes0 and "metrics.jsonl" in writes0 and "lock " in writes0
    s0, s1 = (json.loads((out / f"summary{r}.json").read_text()) for r in (0, 1))
    assert s0["processes"] == s1["processes"] == 2 and s0["status"] == s1["status"] == "finished"
    assert s0["steps"] == s1["steps"] == s0["total_steps"]
    assert s0["sparse_allreduce"] is (sparse == "allreduce")
    saved = _final(cfg.parent / "models" / "default")
    assert ch.state_equal(saved["actor"], r0["actor"])


@pytest.mark.slow
def test_offpolicy_heads_stay_equal_across_ranks(tmp_path: Path) -> None:
    """sqn's Q head learns beside the actor: its gradients are averaged too, so after training the
    ranks' actor and heads are bit-identical (each rank saw other windows: unsynced heads would differ)."""
    cfg = _project(tmp_path, algorithm="sqn", epochs=1, checkpoint_every=100)
    out = tmp_path / "out"
    _worker_job(cfg, out)
    r0, r1 = (torch.load(out / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    assert r0["heads"], "sqn trained without heads"
    for part in ("actor", "heads"):
        assert ch.state_equal(r0[part], r1[part]), part


@pytest.mark.slow
def test_same_world_size_gives_bit_identical_weights(tmp_path: Path) -> None:
    cfg = _project(tmp_path, algorithm="original", epochs=1, checkpoint_every=100)
    runs = []
    for name in ("a", "b"):
        _worker_job(cfg, tmp_path / name)
        runs.append(torch.load(tmp_path / name / "rank0.pt", weights_only=True))
    for part in ("actor", "critic"):
        assert ch.state_equal(runs[0][part], runs[1][part]), part


def test_a_failing_rank_ends_the_job_with_one_line(tmp_path: Path) -> None:
    """Rank 0 refuses (no checkpoint to resume from); rank 1 loses contact: the one line names rank 0's
    own cause and its exit code, not the lost contact."""
    cfg = _project(tmp_path)
    t0 = time.monotonic()
    done = _whatnext(cfg, "--nproc", "2", "--resume")
    assert done.returncode == 4, done.stderr
    lines = [ln for ln in done.stderr.splitlines() if ln.strip()]
    assert lines == ["error: rank 0: models/default: no checkpoint to resume from; start without --resume"], lines
    assert time.monotonic() - t0 < LIMIT


def _children(pid: int) -> dict[int, int]:
    """rank -> pid of the training processes a launcher started."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            if int(stat.rsplit(")", 1)[1].split()[1]) != pid:
                continue
            env = Path(f"/proc/{entry}/environ").read_bytes().split(b"\0")
        except (OSError, ValueError, IndexError):
            continue
        ranks = [e[5:] for e in env if e.startswith(b"RANK=")]
        if ranks:
            found[int(ranks[0])] = int(entry)
    return found


def _kill_a_rank(cfg: Path, victim: int, *args: str) -> int:
    """Start ``whatnext train --nproc 2 ARGS``, SIGKILL rank ``victim`` once the job has written a new
    checkpoint, check the one line and exit 7; the step of the newest checkpoint left."""
    run_dir = cfg.parent / "models" / "default"
    marker = run_dir / "latest"  # names the newest checkpoint file
    before = marker.read_text() if marker.exists() else ""
    proc = subprocess.Popen([sys.executable, "-m", "whatnext", "train", "--config", cfg.name, "--quiet", "--nproc", "2",
                             *args], cwd=cfg.parent, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())
    try:
        deadline = time.monotonic() + LIMIT
        # a checkpoint newer than the one it started from: training is under way in this job
        while not marker.exists() or marker.read_text() == before:
            assert proc.poll() is None and time.monotonic() < deadline, "the job ended before a new checkpoint"
            time.sleep(0.02)
        ranks = _children(proc.pid)
        assert sorted(ranks) == [0, 1], ranks
        os.kill(ranks[victim], signal.SIGKILL)
        _, err = proc.communicate(timeout=LIMIT)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 7, err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert lines == [(f"error: rank {victim} was killed by signal 9 (SIGKILL); the job stopped — continue it from its "
                      f"newest checkpoint with --resume")], lines
    return _final(run_dir)["step"]


@pytest.mark.slow
def test_kill_either_rank_then_resume_matches_an_uninterrupted_job(tmp_path: Path) -> None:
    """Rank 1 killed, the job resumed; rank 0 killed in the resumed job, resumed again: the end equals a
    job never interrupted, bit for bit (one chain for both victims keeps the test within CI time)."""
    cfg = _project(tmp_path, epochs=15, checkpoint_every=10)
    other = ch.copy_project(cfg, tmp_path / "uninterrupted")
    run_dir = cfg.parent / "models" / "default"
    first = _kill_a_rank(cfg, 1)
    total = _final(run_dir)["target"]["total_steps"]
    second = _kill_a_rank(cfg, 0, "--resume")
    assert first < second < total  # each job stopped early, the second after going further
    resumed = _whatnext(cfg, "--nproc", "2", "--resume")
    assert resumed.returncode == 0, resumed.stderr
    done = _whatnext(other, "--nproc", "2")
    assert done.returncode == 0, done.stderr
    a, b = _final(run_dir), _final(other.parent / "models" / "default")
    assert a["step"] == b["step"] == total
    assert ch.state_equal(a["actor"], b["actor"]) and ch.state_equal(a["critic"], b["critic"])


@pytest.mark.slow
def test_a_checkpoint_resumes_under_another_world_size(tmp_path: Path) -> None:
    """2 processes, then 1 resumes their checkpoint, then 2 resume that one: every step once, in order."""
    cfg = _project(tmp_path, epochs=1, checkpoint_every=100)
    start = _whatnext(cfg, "--nproc", "2")
    assert start.returncode == 0, start.stderr
    run_dir = cfg.parent / "models" / "default"
    one = _final(run_dir)["step"]
    for epochs, nproc in ((2, []), (3, ["--nproc", "2"])):
        more = _whatnext(cfg, "--resume", "--epochs", str(epochs), *nproc)
        assert more.returncode == 0, more.stderr
        assert _final(run_dir)["step"] == epochs * one
    log = [json.loads(ln) for ln in (run_dir / "metrics.jsonl").read_text().splitlines()]
    steps = [r["step"] for r in log if "train/actor_loss" in r]
    assert steps == list(range(1, 3 * one + 1))  # every step once, across the world sizes


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_nodes_rendezvous_on_localhost(tmp_path: Path) -> None:
    cfg = _project(tmp_path, epochs=1, checkpoint_every=100)
    port = _free_port()
    procs = [subprocess.Popen([*TORCHRUN, "--nnodes", "2", "--node-rank", str(r), "--nproc-per-node", "1",
                               "--rdzv-endpoint", f"127.0.0.1:{port}", "-m", "whatnext", "train", "--config", cfg.name,
                               "--quiet", "--json"],
                              cwd=cfg.parent, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())
             for r in (0, 1)]
    outs = []
    try:
        for p in procs:
            outs.append(p.communicate(timeout=LIMIT))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    assert [p.returncode for p in procs] == [0, 0], [o[1][-2000:] for o in outs]
    summary = json.loads(outs[0][0])  # node 0 holds rank 0: it reports; node 1 is quiet
    assert summary["processes"] == 2 and summary["status"] == "finished"
    assert outs[1][0].strip() == ""
    assert _final(cfg.parent / "models" / "default")["step"] == summary["total_steps"]


def test_a_rank_whose_config_differs_from_rank0s_is_refused(tmp_path: Path) -> None:
    """agree_on_plan against what rank 0 would send: another batch size is refused with one line; another
    target (a node that cannot read the run's recorded --epochs) follows rank 0's."""
    from whatnext.errors import ConfigError
    from whatnext.rl.agent import Agent
    from whatnext.rl.state import State

    ds = ch.dataset()
    cfg = ch.config(tmp_path, "hybrid")
    agent = Agent(State(ds), cfg)

    class FromRank0(Replica):
        def __init__(self, plan: dict) -> None:
            super().__init__(World(1, 2))
            self.plan = plan

        def share(self, obj):  # what rank 0 sent
            return {"plan": {**obj["plan"], **self.plan}, "payload": None}

        def align(self, *modules) -> None:
            pass

    total, payload = distributed.agree_on_plan(FromRank0({"total": 99}), agent, cfg, 90, 12, None)
    assert (total, payload) == (99, None)
    with pytest.raises(ConfigError) as e:
        distributed.agree_on_plan(FromRank0({"batch_size": 32}), agent, cfg, 90, 12, None)
    assert str(e.value) == (f"train.batch_size is {cfg.train.batch_size} here but 32 on rank 0; give every "
                            f"process the same data, config and --set options")
