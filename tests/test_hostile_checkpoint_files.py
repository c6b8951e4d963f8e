"""Hostile checkpoint files through the CLI: crafted sidecars, markers, checkpoint files and locks.

The corpus is built by ``tests/hostile/make_checkpoint_files.py`` (one case a run folder, copied from a
tiny trained project). For every case ``checkpoints list``, ``recommend``, ``checkpoints prune`` and
``train --resume`` (which prunes by itself) run in a child process under an address-space cap and a
timeout (``hostile_runner.run_limited``): one child per group of cases runs the four commands for each case
through the CLI (typer's runner) and reports exit code, stdout and stderr per command. A hang, a signal death
or a memory blow-up fails the group; each command must end with exit 0 (and a warning where it passed over a
hostile file) or a documented exit code and one line; no file outside the run folder may change (a victim
file beside the project, and the project's own files), and no file of the run that whatnext did not write
as a checkpoint may go.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
from pathlib import Path

import core_helpers as ch
import pytest
from hostile.make_checkpoint_files import CASES, KIND
from hostile_runner import Outcome, assert_clean_failure, run_limited, tree_snapshot
from typer.testing import CliRunner

from whatnext import checkpoints, engine, runlock
from whatnext.cli import app
from whatnext.config import Config, load_config
from whatnext.errors import ConfigError, TrainingError

GROUPS = {
    "sidecars": [c for c in CASES if "sidecar" in KIND[c]],
    "markers": [c for c in CASES if "marker" in KIND[c]],
    "runs-and-locks": [c for c in CASES if not KIND[c] & {"sidecar", "marker"}],
}

#: runs in the child: every case's four commands through the CLI, results to results.json
DRIVER = """
import json
from pathlib import Path
from typer.testing import CliRunner
from whatnext.cli import app

spec = json.loads(Path("spec.json").read_text())
out = {}
for case, commands in spec.items():
    for name, args in commands.items():
        r = CliRunner().invoke(app, args)
        out[f"{case} {name}"] = [r.exit_code, r.stdout, r.stderr]
        Path("results.json").write_text(json.dumps(out))  # what ran so far, should a later command hang
"""


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny project trained once: checkpoints at steps 6 and 12 in models/default."""
    folder = tmp_path_factory.mktemp("hostile-ckpt") / "proj"
    cfg = ch.write_project(folder, algorithm="hybrid", checkpoint_every=6)
    engine.train(cfg)
    assert [c.step for c in checkpoints.listing(folder / "models" / "default")] == [6, 12]
    return folder


def _plant(root: Path, trained: Path, case: str) -> tuple[Path, Path]:
    """root/CASE/proj (a copy of the trained project with the hostile file) and root/CASE/victim/secret.txt."""
    proj = root / case / "proj"
    shutil.copytree(trained, proj)
    victim = root / case / "victim" / "secret.txt"
    victim.parent.mkdir(parents=True)
    victim.write_text("the victim: nothing may delete or change this\n")
    (proj / "victim").mkdir()  # what '../../victim/secret.txt' reaches from models/
    (proj / "victim" / "secret.txt").write_text("also a victim\n")
    run = proj / "models" / "default"
    (run / "keep-me.txt").write_text("not a checkpoint: prune must leave it\n")
    CASES[case](run, victim)
    return proj, run


def _outside(root: Path, run: Path) -> dict[str, tuple[int, int]]:
    inside = str(run.relative_to(root)) + os.sep
    return {k: v for k, v in tree_snapshot(root).items() if not k.startswith(inside)}


def _commands(cfg: Path) -> dict[str, list[str]]:
    c = ["--config", str(cfg)]
    return {
        "list": ["checkpoints", "list", *c, "--json"],
        "recommend": ["recommend", *c, "--user", "7", "--json"],
        "prune": ["checkpoints", "prune", *c, "--keep", "1", "--json"],
        "resume": ["train", *c, "--resume", "--epochs", "2", "--quiet"],
    }


@pytest.mark.parametrize("group", list(GROUPS))
def test_hostile_checkpoint_files_through_the_cli(group: str, trained: Path, tmp_path: Path) -> None:
    cases = GROUPS[group]
    assert cases
    planted = {case: _plant(tmp_path, trained, case) for case in cases}
    before = {case: _outside(tmp_path / case, run) for case, (proj, run) in planted.items()}
    spec = {case: _commands(proj / "whatnext.toml") for case, (proj, run) in planted.items()}
    (tmp_path / "spec.json").write_text(json.dumps(spec))

    child = run_limited([], tmp_path, timeout=60 + 15 * len(cases), python=DRIVER)
    results = json.loads((tmp_path / "results.json").read_text()) if (tmp_path / "results.json").exists() else {}
    assert child.returncode == 0, f"the child died or failed after {list(results)[-1:]}: {child.describe()}"

    for case, (proj, run) in planted.items():
        kinds = KIND[case]
        for name in spec[case]:
            code, stdout, stderr = results[f"{case} {name}"]
            out = Outcome(code, stdout, stderr)
            if "unverified" in kinds and name in ("recommend", "resume"):
                line = assert_clean_failure(out, {4})  # no verified sidecar, no use
                assert "verified" in line or "no checkpoint to resume" in line, line
                continue
            if "unwritable" in kinds and name == "resume":
                assert "cannot write" in assert_clean_failure(out, {7})
                continue
            if "metrics" in kinds and name == "resume":
                assert "metrics.jsonl: not a regular file" in assert_clean_failure(out, {7})
                continue
            assert code == 0, f"{case}: {name}: {out.describe()}"
            assert "Traceback" not in stderr, f"{case}: {name}: {out.describe()}"
        listed = json.loads(results[f"{case} list"][1])
        skipped = [s for r in listed["runs"] for s in r["skipped"]]
        if kinds & {"sidecar", "marker"}:
            assert skipped, f"{case}: 'checkpoints list' does not say what it passed over"
        if "best" in kinds:
            warnings = json.loads(results[f"{case} recommend"][1])["warnings"]
            assert warnings and "best" in warnings[0], f"{case}: recommend fell back without saying so"
        assert _outside(tmp_path / case, run) == before[case], f"{case}: a file outside the run folder changed"
        assert (tmp_path / case / "victim" / "secret.txt").exists() and (proj / "victim" / "secret.txt").exists()
        assert (run / "keep-me.txt").exists(), f"{case}: prune deleted a file whatnext did not write"


def test_the_corpus_covers_every_kind_of_hostile_file() -> None:
    assert len(CASES) >= 12
    for needed in ("sidecar-traversal", "sidecar-absolute", "sidecar-symlink-out", "sidecar-fifo", "sidecar-dev-zero",
                   "sidecar-huge", "sidecar-list", "sidecar-wrong-types", "sidecar-nan-time", "sidecar-huge-time",
                   "sidecar-duplicate-steps", "sidecar-name-mismatch", "marker-traversal", "marker-absolute",
                   "marker-symlink-out", "marker-fifo", "marker-dev-zero", "marker-huge", "lock-reused-pid"):
        assert needed in CASES, needed


def test_the_tables_show_what_was_passed_over(trained: Path, tmp_path: Path) -> None:
    """Without --json too: recommend says it fell back, checkpoints list says which files it skipped."""
    proj = tmp_path / "proj"
    shutil.copytree(trained, proj)
    run = proj / "models" / "default"
    (run / "best").write_text("../../../../etc/passwd\n")
    (run / "ckpt-00000030.json").write_text("[1, 2, 3]")
    cfg = str(proj / "whatnext.toml")
    rec = CliRunner().invoke(app, ["recommend", "--config", cfg, "--user", "7"])
    assert rec.exit_code == 0, rec.stderr
    assert f"warning: {run}/best: marker names '../../../../etc/passwd'" in " ".join(rec.stdout.split())
    listed = CliRunner().invoke(app, ["checkpoints", "list", "--config", cfg])
    assert listed.exit_code == 0, listed.stderr
    text = " ".join(listed.stdout.split())
    assert f"warning: {run}/ckpt-00000030.json: sidecar holds a JSON list" in text
    assert f"warning: {run}/best: marker names" in text


# ---------------------------------------------------------------- pruning on a read-only file system


def test_prune_on_a_read_only_file_system_exits_7_and_loses_nothing(trained: Path, tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    proj = tmp_path / "proj"
    shutil.copytree(trained, proj)
    run = proj / "models" / "default"
    checkpoints.set_marker(run, "best", run / "ckpt-00000012.pt")  # so that checkpoint 6 is prunable
    before = tree_snapshot(proj)

    def read_only(path: object, *a: object, **k: object) -> None:
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))

    monkeypatch.setattr(os, "unlink", read_only)
    result = CliRunner().invoke(app, ["checkpoints", "prune", "--config", str(proj / "whatnext.toml"), "--keep", "1"])
    monkeypatch.undo()
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 7, result.stderr
    assert lines == [(f"error: {run}/ckpt-00000006.json: cannot delete (Read-only file system); the checkpoints not yet "
                      f"pruned are intact — make {run} writable (or free the file system), then prune again")]
    assert tree_snapshot(proj) == before, "nothing may be lost"
    assert [c.step for c in checkpoints.listing(run)] == [6, 12]


# ---------------------------------------------------------------- run names


BAD_RUNS = ["..", ".", "", "../../escape", "a/b", "/abs", ".hidden", "a" * 65, "a\nb", "a b", "a\\b", "ü"]


@pytest.mark.parametrize("name", BAD_RUNS)
def test_a_run_name_is_one_safe_folder_name_wherever_it_is_set(name: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as exc:
        load_config(None, {"paths.run": name}, check_paths=False)
    assert "paths.run" in str(exc.value) and len(str(exc.value).splitlines()) == 1
    toml = tmp_path / "whatnext.toml"
    toml.write_text(f"[paths]\nrun = {json.dumps(name)}\n")
    with pytest.raises(ConfigError, match=r"whatnext.toml:2: key 'paths.run'"):
        load_config(toml, check_paths=False)
    cfg = Config()
    cfg.paths.run = name  # set in code, past the checks: the run folder still refuses it
    with pytest.raises(ConfigError):
        _ = cfg.run_dir
    with pytest.raises(ConfigError):
        checkpoints.resolve(tmp_path / "models", name, None)


@pytest.mark.parametrize("name", ["default", "exp-2", "run_1.0", "A" * 64, "2026-11-30"])
def test_good_run_names_are_accepted(name: str) -> None:
    cfg = load_config(None, {"paths.run": name}, check_paths=False)
    assert cfg.run_dir.name == name


def test_train_with_a_run_out_of_the_models_folder_writes_nothing(trained: Path, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    proj = tmp_path / "proj"
    shutil.copytree(trained, proj)
    before = tree_snapshot(tmp_path)
    monkeypatch.chdir(proj)
    for run in ("../../escape", "..", ""):
        result = CliRunner().invoke(app, ["train", "--config", str(proj / "whatnext.toml"), "--run", run, "--force"])
        assert result.exit_code == 2, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1 and "paths.run" in result.stderr
    assert tree_snapshot(tmp_path) == before


# ---------------------------------------------------------------- the lock


def _own_start() -> str:
    start = runlock._start_time(os.getppid())
    if start is None:
        pytest.skip("no /proc/PID/stat here")
    return start


def test_a_lock_of_a_live_process_with_another_start_time_is_stale(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    lock = run / checkpoints.LOCK
    _own_start()
    lock.write_text(json.dumps({"pid": os.getppid(), "start": "1", "host": os.uname().nodename}))
    with checkpoints.RunLock(run):
        owner = json.loads(lock.read_text())
        assert owner["pid"] == os.getpid() and owner["start"] == runlock._start_time(os.getpid())
    assert not lock.exists()


def test_a_lock_of_a_live_process_is_respected_and_says_how_to_clear_it(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    lock = run / checkpoints.LOCK
    for owner in ({"pid": os.getppid(), "start": _own_start(), "host": os.uname().nodename},
                  {"pid": 1234, "start": "5", "host": "elsewhere.example"}):
        lock.write_text(json.dumps(owner))
        with pytest.raises(TrainingError) as exc, checkpoints.RunLock(run):
            pass
        msg = str(exc.value)
        assert str(owner["pid"]) in msg and f"delete {lock}" in msg and len(msg.splitlines()) == 1
        assert json.loads(lock.read_text()) == owner, "a held lock stays"
    assert "on host elsewhere.example" in msg


def test_a_lock_that_is_a_fifo_or_garbage_is_taken_over_without_hanging(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    lock = run / checkpoints.LOCK
    os.mkfifo(lock)
    with checkpoints.RunLock(run):
        assert lock.is_file()
    lock.write_bytes(b"\xff" * 10_000)
    with checkpoints.RunLock(run):
        assert json.loads(lock.read_text())["pid"] == os.getpid()
