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
from whatnext.rl import distributed, schedule
from whatnext.rl.algorithms import positions_for
from whatnext.rl.distributed import Replica, World
from whatnext.rl.environment import learning_steps
from whatnext.rl.schedule import steps_per_epoch

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


def _steps(cfg, ds, positions, world: int, rank: int, start: int = 0, walk=None, total: int | None = None) -> list:
    """The learning steps one rank of ``world`` takes (to the run's end unless ``total``)."""
    replica = Replica(World(rank, world))
    n, batch = len(positions), schedule.global_batch(cfg, world)
    if total is None:
        cursor = walk.cursor if walk is not None else schedule.at_step(start, n, batch)
        total = start + schedule.steps_left(cfg, cursor, n, batch)
    return list(learning_steps(cfg, ds, positions, start, total, replica, walk))


@pytest.mark.parametrize("world", [2, 3])
def test_per_process_batches_cover_exactly_the_single_process_epoch(tmp_path: Path, world: int) -> None:
    """train.batch_scope = process: a step takes world x batch_size positions of the seeded order, each rank
    its contiguous batch_size; over an epoch the union over the steps and ranks, in order, is exactly the
    single-process epoch, in 1/world of its steps (the last step of an epoch takes what is left)."""
    ds = ch.dataset(n_users=7, n_events=9)
    cfg = ch.config(tmp_path, "hybrid", epochs=2, batch_size=5)
    positions = positions_for(ds, "hybrid", cfg.model.window)
    assert len(positions) % (5 * world)  # the epoch's last step is short
    solo = _steps(cfg, ds, positions, 1, 0)
    ranks = [_steps(cfg, ds, positions, world, r) for r in range(world)]
    assert len(ranks[0]) == 2 * steps_per_epoch(len(positions), 5 * world)
    for epoch in (0, 1):
        single = np.concatenate([s[3].targets for s in solo if s[1] == epoch])
        mine = [s for s in ranks[0] if s[1] == epoch]
        union = np.concatenate([ranks[r][i][3].targets for i, s in enumerate(ranks[0]) if s[1] == epoch
                                for r in range(world)])
        assert np.array_equal(union, single)
        assert all(len(ranks[r][i][3].targets) == 5 for r in range(world) for i in range(len(mine) - 1))
    # every rank draws the step's negatives (numpy) as one process does at that step; rank 0 keeps the
    # single process's noise and dropout (torch), the others draw their own
    for step in range(len(ranks[0])):
        assert all(ranks[r][step][4].bit_generator.state == solo[step][4].bit_generator.state for r in range(world))
        assert torch.equal(ranks[0][step][5].get_state(), solo[step][5].get_state())
        assert not torch.equal(ranks[1][step][5].get_state(), solo[step][5].get_state())


@pytest.mark.parametrize("world", [2, 3])
def test_global_scope_splits_the_single_process_step(tmp_path: Path, world: int) -> None:
    """train.batch_scope = global: every step is the single-process step, split over the ranks."""
    ds = ch.dataset(n_users=7, n_events=9)
    cfg = ch.config(tmp_path, "hybrid", epochs=2, batch_size=5)
    cfg.train.batch_scope = "global"
    positions = positions_for(ds, "hybrid", cfg.model.window)
    solo = _steps(cfg, ds, positions, 1, 0)
    ranks = [_steps(cfg, ds, positions, world, r) for r in range(world)]
    assert all(len(r) == len(solo) == 2 * steps_per_epoch(len(positions), 5) for r in ranks)
    for step, single in enumerate(solo):
        parts = [ranks[r][step][3] for r in range(world)]
        assert np.array_equal(np.concatenate([p.inputs for p in parts]), single[3].inputs)
        assert np.array_equal(np.concatenate([p.targets for p in parts]), single[3].targets)
        assert all(ranks[r][step][:3] == single[:3] for r in range(world))  # step, epoch, index in epoch


def test_resuming_under_another_world_size_continues_from_the_next_position(tmp_path: Path) -> None:
    """2 processes take 3 steps, 1 process continues from their cursor, then 3 processes: the positions seen
    are the seeded order's, each once, the partial batches where a world's batches do not divide the rest."""
    ds = ch.dataset(n_users=7, n_events=9)
    cfg = ch.config(tmp_path, "hybrid", epochs=3, batch_size=4)
    positions = positions_for(ds, "hybrid", cfg.model.window)
    n = len(positions)
    seen, step, cursor = [], 0, schedule.Cursor()
    for world, steps in ((2, 3), (1, 4), (3, None)):
        batch = schedule.global_batch(cfg, world)
        walks = [schedule.Walk(n, batch, cursor) for _ in range(world)]
        total = step + (steps if steps is not None else schedule.steps_left(cfg, cursor, n, batch))
        ranks = [_steps(cfg, ds, positions, world, r, step, walks[r], total) for r in range(world)]
        for i in range(total - step):
            seen.append(np.concatenate([ranks[r][i][3].targets for r in range(world)]))
        assert walks[0].cursor == walks[-1].cursor
        step, cursor = total, walks[0].cursor
    solo = _steps(cfg, ds, positions, 1, 0)
    assert np.array_equal(np.concatenate(seen), np.concatenate([s[3].targets for s in solo]))
    assert cursor.consumed == 3 * n
    # the cursor a checkpoint records reads back; an earlier version's checkpoint (no cursor) is its step
    assert schedule.cursor_of({"step": step, "cursor": cursor.to_dict()}, n, 4) == cursor
    assert schedule.cursor_of({"step": 7}, n, 4) == schedule.at_step(7, n, 4)


def test_steps_left_and_learning_rates() -> None:
    from whatnext.config import Config

    cfg = Config()
    cfg.train.epochs, cfg.train.batch_size = 2, 8
    assert schedule.global_batch(cfg, 2) == 16 and schedule.steps_left(cfg, schedule.Cursor(), 100, 16) == 14
    assert schedule.steps_left(cfg, schedule.Cursor(90, 96), 100, 16) == 1 + 7  # the rest of epoch 0, then one
    assert schedule.steps_left(cfg, schedule.Cursor(200, 200), 100, 16) == 0
    cfg.train.samples = 100  # the legacy budget counts every step's full batch
    assert schedule.steps_left(cfg, schedule.Cursor(), 30, 16) == 7
    assert schedule.steps_left(cfg, schedule.Cursor(60, 64), 30, 8) == 5
    assert [schedule.lr_factor(cfg, w) for w in (1, 4)] == [1.0, 2.0]  # sqrt, the default
    cfg.train.lr_scaling = "linear"
    assert schedule.lr_factor(cfg, 4) == 4.0
    cfg.train.batch_scope = "global"  # the step is the single-process one: the rates stay
    assert schedule.lr_factor(cfg, 4) == 1.0 and schedule.global_batch(cfg, 4) == 8
    from whatnext.config.schema import CHOICES

    assert set(schedule.LR_SCALINGS) == set(CHOICES[("train", "lr_scaling")])


@pytest.mark.parametrize("cursor", [[1, 2], {"consumed": -1, "samples": 0}, {"consumed": 3, "samples": True},
                                    {"consumed": 3}])
def test_a_malformed_cursor_is_a_checkpoint_error(cursor) -> None:
    from whatnext.errors import CheckpointError

    with pytest.raises(CheckpointError, match=r"^the checkpoint's cursor.* start the run again with --force$"):
        schedule.cursor_of({"step": 3, "cursor": cursor}, 10, 4)


def test_shard_weights_and_the_empty_share() -> None:
    batch = np.arange(5)
    shares = [distributed.shard(batch, World(r, 3)) for r in range(3)]
    assert [list(s) for s, _ in shares] == [[0, 1], [2, 3], [4]]
    assert sum(w for _, w in shares) == pytest.approx(1.0)
    part, weight = distributed.shard(np.arange(1), World(1, 2))  # nothing left for rank 1
    assert list(part) == [0] and weight == 0.0


def test_the_root_cause_is_the_killed_rank_not_the_one_the_agent_stopped() -> None:
    """Rank 1 SIGKILLed, rank 0 then stopped by the agent with SIGTERM in the same second: rank 1 is reported;
    a rank's own error comes before another's lost contact."""
    from types import SimpleNamespace

    from whatnext.rl.launch import root_cause

    def failure(code: int, message: str = "") -> SimpleNamespace:
        return SimpleNamespace(exitcode=code, timestamp=100, message={"message": message} if message else "",
                               error_file_data={"message": message} if message else {})

    assert root_cause({0: failure(-15), 1: failure(-9)})[0] == 1
    assert root_cause({0: failure(7, distributed.LOST + " during x"), 1: failure(4, "bad checkpoint")})[0] == 1
    assert root_cause({0: failure(-15), 1: failure(-15)})[0] == 0


def test_nproc_out_of_range_is_refused() -> None:
    from typer.testing import CliRunner

    from whatnext.cli import app

    res = CliRunner().invoke(app, ["train", "--nproc", "0"])
    assert res.exit_code == 2
    assert "--nproc is 0; expected a number of processes from 1 to 1024" in res.stderr


# -- real jobs --------------------------------------------------------------------------------


@pytest.mark.parametrize("sparse", ["allreduce", "gather"])
def test_sync_averages_dense_and_sparse_gradients_by_each_rank_s_share(tmp_path: Path, sparse: str) -> None:
    """Replica.sync on known gradients: the dense ones in one buffer, the sparse item tables of one width
    joined into one tensor (rows of one table never land in another), another width on its own; each rank
    weighted by its share (0.25 and 0.75); both ranks get the same sums, as sparse tensors."""
    cmd = [*TORCHRUN, "--nproc-per-node", "2", "--rdzv-backend", "c10d", "--rdzv-endpoint", "127.0.0.1:0",
           str(HERE / "sync_worker.py"), str(tmp_path)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=LIMIT, check=False,
                          env={**_env(), distributed.GATHER_SPARSE: "1" if sparse == "gather" else "0"})
    assert done.returncode == 0, done.stderr[-3000:]
    want = {"dense": torch.full((3,), 0.25 * 1 + 0.75 * 2),
            # rank 0: row 0 = 1, row 3 = 4 + 4; rank 1: row 1 = 12, row 3 = 14 + 14
            "t0": torch.tensor([[0.25, 0.25], [9.0, 9.0], [0.0, 0.0], [0.25 * 8 + 0.75 * 28] * 2, [0.0, 0.0]]),
            "t1": torch.tensor([[0.0, 0.0], [25.0, -0.25], [75.75, -0.75], [0.0, 0.0]]),
            "narrow": torch.tensor([[0.0], [0.0], [0.0], [0.0], [6.0], [1.75]])}
    for rank in (0, 1):
        got = torch.load(tmp_path / f"sync{rank}.pt", weights_only=True)
        assert got["sparse"] == [True, True, True]
        for key, value in want.items():
            assert torch.equal(got[key], value), (rank, key, got[key])


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
    # the process group is gone when training returns: gloo's threads joined, none left to release a collective's
    # tensors while the interpreter exits (a rare SIGABRT when torch._dynamo kept the group alive)
    for s in (s0, s1):
        assert not [t for t in s["threads"] if "gloo" in t], s["threads"]
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
    """2 processes stop inside an epoch (a Ctrl-C stand-in: --set train.samples), 1 process resumes their
    checkpoint to the end of epoch 2, then 2 processes resume that one to the end of epoch 3: each continues
    from the next unconsumed position of the seeded order (the cursor the checkpoint records), every step is
    logged once, the epochs end where one process's would, and the learning rates follow each job's world."""
    cfg = _project(tmp_path, epochs=1, checkpoint_every=100)
    run_dir = cfg.parent / "models" / "default"
    start = _whatnext(cfg, "--nproc", "2", "--set", "train.samples=48")  # 3 steps of 2 x 8 positions
    assert start.returncode == 0, start.stderr
    first = _final(run_dir)
    assert (first["step"], first["cursor"]) == (3, {"consumed": 48, "samples": 48})
    assert first["actor_opt"]["param_groups"][0]["lr"] == pytest.approx(3e-3 * 2**0.5)  # sqrt, the default
    more = _whatnext(cfg, "--resume", "--epochs", "2", "--set", "train.samples=0")
    assert more.returncode == 0, more.stderr
    second = _final(run_dir)
    positions = second["cursor"]["consumed"] // 2  # the end of epoch 2: a whole number of epochs
    assert second["cursor"]["consumed"] == 2 * positions and positions > 48
    assert second["step"] == 3 + steps_per_epoch(positions - 48, 8) + steps_per_epoch(positions, 8)
    assert second["actor_opt"]["param_groups"][0]["lr"] == 3e-3  # one process: the config's rate
    again = _whatnext(cfg, "--resume", "--epochs", "3", "--nproc", "2")
    assert again.returncode == 0, again.stderr
    third = _final(run_dir)
    assert third["cursor"]["consumed"] == 3 * positions
    assert third["step"] == second["step"] + steps_per_epoch(positions, 16)
    log = [json.loads(ln) for ln in (run_dir / "metrics.jsonl").read_text().splitlines()]
    steps = [r["step"] for r in log if "train/actor_loss" in r]
    assert steps == list(range(1, third["step"] + 1))  # every step once, across the world sizes
    assert [r["train/epoch"] for r in log if r["step"] in (second["step"], third["step"]) and "train/epoch" in r] == [2.0, 3.0]


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
