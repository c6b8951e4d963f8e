"""Crash safety for real: `whatnext train` in a subprocess is SIGKILLed at random moments and resumed, again
and again, and must end with the same weights as a run that was never interrupted.

Each trial starts ``python -m whatnext train --quiet`` (with ``--resume`` once a good checkpoint exists;
without it before, since resuming then rightly fails), kills it with SIGKILL at a moment drawn from a seeded
random generator, then checks the run folder: every ``ckpt-*.pt`` with metadata passes its checksum, one
without metadata still loads (it was renamed into place whole), the ``latest``/``best`` markers name good
checkpoints, and the only other files are the metrics log, the lock files and temporary dot-names ending in
``.tmp``. Three kinds of moment:

* ``startup``: a random delay from the start (imports, data loading, taking the stale lock, loading the
  checkpoint to resume from);
* ``training``: a random delay after the process reported where it starts;
* ``write``: as soon as a temporary file appears in the run folder, i.e. during a checkpoint write. For
  these trials a ``sitecustomize`` on PYTHONPATH makes ``os.fsync`` sleep a few milliseconds, which widens
  the window between writing a temporary file and renaming it without changing what is written.

A killed process leaves its lock file behind with a dead pid; the next process must take it over. Two
chains of trials run side by side, one per algorithm (hybrid and original), each beside an uninterrupted run
of the same project, whose final actor and critic the killed-and-resumed run must equal tensor for tensor.
The trials and numbers are printed (``pytest -s``).
"""

from __future__ import annotations

import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import core_helpers as ch
import pytest
import torch

import whatnext
from whatnext import checkpoints

SEED = 5  # the random moments are drawn from this
TRIALS = 22  # kills; the issue asks for at least 20
CHECKPOINT_EVERY = 2
FSYNC_DELAY = "0.015"

ALLOWED = re.compile(r"ckpt-\d{8}\.(pt|json)|latest|best|metrics\.jsonl|\.lock|\.lock\.guard|\..+\.tmp")
START = re.compile(r": steps (\d+)\.\.(\d+) \(")

SITECUSTOMIZE = """\
import os, time
_delay = float(os.environ.get("WHATNEXT_TEST_SLOW_FSYNC") or 0)
if _delay:
    _fsync = os.fsync
    def _slow_fsync(fd, _fsync=_fsync, _delay=_delay):
        time.sleep(_delay)
        _fsync(fd)
    os.fsync = _slow_fsync
"""


def _env(hook: Path, slow: bool) -> dict[str, str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": os.pathsep.join(
        [str(hook), *filter(None, [os.environ.get("PYTHONPATH")])])}
    env.pop("WHATNEXT_DEBUG", None)
    env["WHATNEXT_TEST_SLOW_FSYNC"] = FSYNC_DELAY if slow else ""
    return env


def _start(project: Path, resume: bool, env: dict[str, str], log: Path) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "whatnext", "train", "--config", "whatnext.toml", "--quiet"]
    if resume:
        cmd.append("--resume")
    with open(log.with_suffix(".out"), "w") as out, open(log.with_suffix(".err"), "w") as err:
        return subprocess.Popen(cmd, cwd=project, stdout=out, stderr=err, env=env)


def _start_step(log: Path) -> int | None:
    """The first step the process reported ('training ... steps S..N'), once it has."""
    try:
        text = " ".join(log.with_suffix(".out").read_text().split())
    except OSError:
        return None
    m = START.search(text)
    return int(m.group(1)) if m else None


def _wait_for(cond, proc: subprocess.Popen, timeout: float, poll: float = 0.005) -> bool:
    """Poll ``cond()`` until true; False if the process exits first or the time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        if proc.poll() is not None:
            return bool(cond())
        time.sleep(poll)
    return False


def _temp_files(run_dir: Path) -> list[str]:
    try:
        return [n for n in os.listdir(run_dir) if n.startswith(".") and n.endswith(".tmp")]
    except FileNotFoundError:
        return []


def check_run_dir(run_dir: Path) -> list[str]:
    """Assert that nothing under a real name is half-written; return the temporary files left over."""
    if not run_dir.exists():
        return []
    names = sorted(os.listdir(run_dir))
    strange = [n for n in names if not ALLOWED.fullmatch(n)]
    assert not strange, f"unexpected files in {run_dir}: {strange}"
    for n in names:
        if n.startswith("ckpt-") and n.endswith(".pt"):
            pt = run_dir / n
            if pt.with_suffix(".json").exists():
                checkpoints.verify(pt)  # raises on a checksum mismatch
            else:  # renamed into place before its metadata: must still be a whole file
                checkpoints.load(pt, check=False)
        elif n.startswith("ckpt-") and n.endswith(".json"):
            assert (run_dir / n).with_suffix(".pt").exists(), f"{n} without its checkpoint"
    listed = {c.path.name for c in checkpoints.listing(run_dir)}
    assert listed == {n.removesuffix(".json") + ".pt" for n in names if n.startswith("ckpt-") and n.endswith(".json")}, \
        "a metadata file is not valid JSON"
    for name in ("latest", "best"):
        target = checkpoints.marker(run_dir, name)
        if (run_dir / name).exists():
            assert target is not None and target.name in listed, f"marker {name} names {target}, not a good checkpoint"
    return _temp_files(run_dir)


def _drive(proc: subprocess.Popen, kind: str, rng: random.Random, run_dir: Path, log: Path) -> bool:
    """Kill ``proc`` at a moment of the given kind; False if it exited by itself first."""
    if kind == "startup":
        _wait_for(lambda: False, proc, rng.uniform(0.3, 3.0))
    else:
        assert _wait_for(lambda: _start_step(log) is not None, proc, 90), \
            f"no start line: {log.with_suffix('.out').read_text()}{log.with_suffix('.err').read_text()}"
        if kind == "training":
            _wait_for(lambda: False, proc, rng.uniform(0.0, 0.4))
        else:
            _wait_for(lambda: False, proc, rng.uniform(0.0, 0.2))
            _wait_for(lambda: bool(_temp_files(run_dir)), proc, 30, poll=0.0005)
            time.sleep(rng.uniform(0.0, 0.01))
    if proc.poll() is not None:
        return False
    proc.send_signal(signal.SIGKILL)
    proc.wait()  # reaped: its pid is dead, so its lock is stale
    return True


def _final_payload(run_dir: Path) -> dict:
    found = checkpoints.load_latest(run_dir)
    assert found is not None
    return found[1]


def _metric_steps(run_dir: Path) -> list[int]:
    """Steps of the per-step lines in metrics.jsonl, in file order."""
    import json

    lines = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [x["step"] for x in lines if "train/ce_loss" in x or "train/actor_loss" in x]


def _chain(root: Path, hook: Path, algorithm: str, epochs: int, trials: int, seed: int) -> dict:
    """One project killed ``trials`` times and resumed each time; returns its tallies."""
    project = root / f"{algorithm}-killed"
    ch.write_project(project, algorithm=algorithm, epochs=epochs, checkpoint_every=CHECKPOINT_EVERY, keep_last=2)
    straight = root / f"{algorithm}-straight"
    shutil.copytree(project, straight)
    run_dir = project / "models" / "default"
    logs = root / f"{algorithm}-logs"
    logs.mkdir()

    # the uninterrupted run, alongside the trials
    baseline = subprocess.Popen([sys.executable, "-m", "whatnext", "train", "--config", "whatnext.toml", "--quiet"],
                                cwd=straight, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                env=_env(hook, slow=False), text=True)
    rng = random.Random(seed)
    t = {"algorithm": algorithm, "kills": 0, "startup": 0, "training": 0, "write": 0, "mid_write": 0,
         "fresh": 0, "resumes": 0, "resumes_ok": 0, "resumes_cut": 0, "failures": []}
    try:
        while t["kills"] < trials:
            found = checkpoints.load_latest(run_dir)
            expected = int(found[1]["step"]) if found else None
            kind = rng.choice(["startup", "training", "write"])
            log = logs / f"trial{t['kills']:02d}"
            before = {(n, (run_dir / n).stat().st_mtime_ns) for n in _temp_files(run_dir)}
            proc = _start(project, expected is not None, _env(hook, slow=kind == "write"), log)
            killed = _drive(proc, kind, rng, run_dir, log)
            started = _start_step(log)
            if expected is None:
                t["fresh"] += 1
            else:
                t["resumes"] += 1
                if started is None and killed:
                    t["resumes_cut"] += 1  # killed before it could report: the next trial resumes again
                elif started == expected:
                    t["resumes_ok"] += 1
                else:
                    t["failures"].append(f"{algorithm} {log.name}: resumed at {started}, expected {expected}")
            if not killed:
                err = log.with_suffix(".err").read_text()
                assert proc.returncode == 0, f"{algorithm} {log.name} failed on its own (exit {proc.returncode}): {err}"
                pytest.fail(f"the {algorithm} run finished after {t['kills']} kills; raise its epochs")
            t["kills"] += 1
            t[kind] += 1
            left = {(n, (run_dir / n).stat().st_mtime_ns) for n in check_run_dir(run_dir)}
            t["mid_write"] += bool(left - before)
            assert not t["failures"], t["failures"]

        # the last resume runs to the end
        found = checkpoints.load_latest(run_dir)
        expected = int(found[1]["step"]) if found else None
        log = logs / "final"
        t["final_start"] = expected or 0
        proc = _start(project, expected is not None, _env(hook, slow=False), log)
        assert proc.wait(timeout=300) == 0, log.with_suffix(".err").read_text()
        if expected is not None:
            t["resumes"] += 1
            if _start_step(log) == expected:
                t["resumes_ok"] += 1
            else:
                t["failures"].append(f"{algorithm} final: resumed at {_start_step(log)}, expected {expected}")
        check_run_dir(run_dir)
        assert baseline.wait(timeout=300) == 0, baseline.stderr.read() if baseline.stderr else ""
    finally:
        if baseline.poll() is None:
            baseline.kill()
            baseline.wait()

    a, b = _final_payload(straight / "models" / "default"), _final_payload(run_dir)
    assert a["step"] == b["step"]
    for part in ("actor", "critic"):
        assert a[part].keys() == b[part].keys()
        for key in a[part]:
            assert torch.equal(a[part][key], b[part][key]), f"{algorithm}: {part}.{key} differs from the uninterrupted run"
    assert a["best_metric"] == b["best_metric"]
    assert not (run_dir / checkpoints.LOCK).exists()
    t["steps"] = b["step"]
    t["best_same"] = (checkpoints.marker(straight / "models" / "default", "best").name
                      == checkpoints.marker(run_dir, "best").name)
    assert t["best_same"], f"{algorithm}: the best marker differs from the uninterrupted run's"
    t["metric_steps"] = _metric_steps(run_dir)
    return t


@pytest.mark.slow
def test_sigkill_at_random_moments_then_resume_gives_the_uninterrupted_weights(tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(SITECUSTOMIZE)
    # the subprocesses import a snapshot of the package (first on PYTHONPATH), so that every trial and the
    # uninterrupted run execute the same code even if the source is edited while this test runs
    shutil.copytree(Path(whatnext.__file__).parent, hook / "whatnext", ignore=shutil.ignore_patterns("__pycache__"))
    # two chains side by side (one per algorithm) so that the trials fit in CI time
    # epochs: hybrid 12 steps an epoch, original 45; the trials get through less than half of either run
    plans = [("hybrid", 24, TRIALS // 2, SEED), ("original", 7, TRIALS - TRIALS // 2, SEED + 1)]
    with ThreadPoolExecutor(len(plans)) as pool:
        results = list(pool.map(lambda p: _chain(tmp_path, hook, *p), plans))

    kills = sum(r["kills"] for r in results)
    resumes = sum(r["resumes"] for r in results)
    ok = sum(r["resumes_ok"] for r in results)
    cut = sum(r["resumes_cut"] for r in results)
    failures = [f for r in results for f in r["failures"]]
    for r in results:
        print(f"\n{r['algorithm']}: {r['kills']} kills ({r['startup']} at start-up, {r['training']} while training, "
              f"{r['write']} during a checkpoint write, {r['mid_write']} left a temporary file); {r['fresh']} fresh "
              f"starts; {r['resumes']} resumes, {r['resumes_ok']} succeeded, {r['resumes_cut']} killed before reporting; "
              f"{r['steps']} steps (the last resume from {r['final_start']}), weights equal the uninterrupted run's; best marker same: {r['best_same']}; "
              f"metrics lines {len(r['metric_steps'])} for {r['steps']} steps")
    print(f"kill-and-resume total: {kills} trials run, {resumes} resumes, {ok} succeeded, {cut} killed before "
          f"reporting (resumed by the next trial), {len(failures)} failed")
    assert kills >= 20
    assert not failures, failures
    assert ok == resumes - cut and ok >= 10
    assert sum(r["write"] for r in results) >= 3 and sum(r["mid_write"] for r in results) >= 1, \
        "no kill landed during a checkpoint write"


DIE_AT_CHECKPOINT = """\
import os, sys
from whatnext import engine
from whatnext.rl.callbacks import Callback

class Die(Callback):
    def on_checkpoint(self, step, path):
        if step >= int(sys.argv[2]):
            os._exit(9)  # like SIGKILL: no flush, no clean-up

engine.train(sys.argv[1], callback=Die())
"""


def test_a_kill_right_after_a_checkpoint_keeps_its_metrics_lines(tmp_path: Path) -> None:
    from whatnext import engine

    cfg = ch.write_project(tmp_path, algorithm="hybrid", epochs=2, checkpoint_every=4)
    proc = subprocess.run([sys.executable, "-c", DIE_AT_CHECKPOINT, str(cfg), "8"], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 9, proc.stderr
    run_dir = tmp_path / "models" / "default"
    assert checkpoints.load_latest(run_dir)[1]["step"] == 8
    summary = engine.train(cfg, resume=True)
    assert summary["start_step"] == 8 and summary["steps"] == 24
    assert _metric_steps(run_dir) == list(range(1, 25)), "metrics.jsonl lost the lines of checkpointed steps"


class _StopAt:
    """A callback asking the loop to stop after step ``k`` (a checkpoint is saved there)."""

    def __new__(cls, k: int):
        from whatnext.rl.callbacks import Callback

        class Stop(Callback):
            def on_step(self, step: int, metrics: dict) -> bool:
                return step >= k

        return Stop()


def test_a_kill_between_the_latest_and_best_markers_does_not_lose_the_best(tmp_path: Path) -> None:
    """save() moves 'latest' before _checkpoint moves 'best': a kill in between must not leave 'best' on an
    older checkpoint for good (and let pruning delete the real best)."""
    from whatnext import engine
    from whatnext.rl import environment

    ds = ch.dataset()

    def cfg(run: str):
        c = ch.config(tmp_path, "hybrid", run=run, epochs=4, checkpoint_every=2, keep_last=100)
        c.eval.ks = [10]
        return c

    straight = cfg("straight")
    environment.train(straight, ds, evaluator=engine._validator(straight, ds))
    infos = checkpoints.listing(straight.run_dir)
    bests, top = [], None  # the checkpoints that were the best when saved
    for c in infos:
        score = c.metrics["eval/ndcg@10"]
        if top is None or score > top:
            bests.append(c.path.name)
            top = score
    assert checkpoints.marker(straight.run_dir, "best").name == bests[-1]
    assert len(bests) >= 2, "the scenario needs a best checkpoint with an earlier best"
    k = int(bests[-1][5:13])

    crashed = cfg("crashed")
    environment.train(crashed, ds, callback=_StopAt(k), evaluator=engine._validator(crashed, ds))
    assert checkpoints.marker(crashed.run_dir, "latest").name == bests[-1]
    # the kill: 'latest' names the new checkpoint, 'best' still the previous best
    checkpoints.set_marker(crashed.run_dir, "best", crashed.run_dir / bests[-2])
    environment.train(crashed, ds, resume=True, evaluator=engine._validator(crashed, ds))
    assert checkpoints.marker(crashed.run_dir, "best").name == bests[-1]
