"""A full disk or a models folder without write permission: one clear line and exit code 7, the checkpoints
already saved intact and verifiable, and nothing half-written under a real name.

The tests run as root in CI, where chmod does not stop writes; so the failures are made by patching the
writes (a disk that fills half-way through a checkpoint, a folder that refuses every write), and for real
by the kernel in a subprocess whose file-size limit (RLIMIT_FSIZE, with SIGXFSZ ignored) is smaller than
a checkpoint. The chmod variant runs where the tests do not run as root.
"""

from __future__ import annotations

import errno
import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

import core_helpers as ch
import pytest
from typer.testing import CliRunner

from whatnext import checkpoints, engine, runlock
from whatnext.cli import app
from whatnext.rl.callbacks import JsonlWriter


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project trained for one epoch (12 steps) with a checkpoint every 2 steps, all kept."""
    folder = tmp_path_factory.mktemp("trained")
    cfg = ch.write_project(folder, algorithm="hybrid", checkpoint_every=2, keep_last=20)
    engine.train(cfg)
    return cfg


@pytest.fixture
def project(trained: Path, tmp_path: Path) -> Path:
    return ch.copy_project(trained, tmp_path)


def _snapshot(run_dir: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in run_dir.iterdir() if p.name.startswith("ckpt-") or p.name in ("latest", "best")}


def _assert_intact(run_dir: Path, before: dict[str, bytes]) -> None:
    """The checkpoints and markers are exactly as before, they verify, and no temporary file is left."""
    after = _snapshot(run_dir)
    assert after == before, f"changed: {sorted(set(after) ^ set(before))}"
    for info in checkpoints.listing(run_dir):
        checkpoints.verify(info.path)
    assert checkpoints.marker(run_dir, "latest") == run_dir / "ckpt-00000012.pt"
    assert checkpoints.load_latest(run_dir)[1]["step"] == 12
    assert not [p.name for p in run_dir.iterdir() if p.name.endswith(".tmp")]
    assert not (run_dir / checkpoints.LOCK).exists(), "the lock must be released"


def _one_line_error(result, code: int = 7) -> str:
    assert result.exit_code == code, f"exit {result.exit_code}\nstdout: {result.stdout}\nstderr: {result.stderr}"
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output
    return lines[0]


def _resume(cfg: Path) -> list[str]:
    return ["train", "--config", str(cfg), "--resume", "--epochs", "2", "--quiet"]


class _FillsUp:
    """A file whose disk fills up half-way through the first write."""

    def __init__(self, fh, path: str) -> None:
        self.fh, self.path = fh, path

    def __enter__(self) -> "_FillsUp":
        return self

    def __exit__(self, *exc: object) -> None:
        self.fh.close()

    def write(self, data: bytes) -> int:
        self.fh.write(data[: len(data) // 2])
        self.fh.flush()
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), self.path)

    def flush(self) -> None:
        self.fh.flush()

    def fileno(self) -> int:
        return self.fh.fileno()


def test_disk_full_half_way_through_a_checkpoint(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run_dir = project.parent / "models" / "default"
    before = _snapshot(run_dir)
    seen: list[str] = []

    def full_disk_open(path, mode="r", *args, **kwargs):
        fh = open(path, mode, *args, **kwargs)
        if "w" in mode and Path(path).name.startswith(".ckpt-"):
            seen.append(Path(path).name)
            return _FillsUp(fh, str(path))
        return fh

    monkeypatch.setattr(checkpoints, "open", full_disk_open, raising=False)
    err = _one_line_error(CliRunner().invoke(app, _resume(project)))
    assert seen == [".ckpt-00000014.pt.tmp"], seen
    pt = run_dir / "ckpt-00000014.pt"
    assert err == (f"error: {pt}: cannot write checkpoint (No space left on device); earlier checkpoints are intact — "
                   f"free disk space or fix permissions on {run_dir}, then resume with --resume")
    _assert_intact(run_dir, before)
    # docs/errors.md quotes this line
    doc = " ".join((Path(__file__).resolve().parents[1] / "docs" / "errors.md").read_text(encoding="utf-8").split())
    documented = err.replace(str(run_dir), "{run}")
    assert documented in doc, documented


def test_no_permission_on_the_models_folder(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run_dir = project.parent / "models" / "default"
    before = _snapshot(run_dir)
    models = str(project.parent / "models")

    def read_only_open(path, mode="r", *args, **kwargs):
        if any(c in mode for c in "wax+") and str(path).startswith(models):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))
        return open(path, mode, *args, **kwargs)

    monkeypatch.setattr(checkpoints, "open", read_only_open, raising=False)
    monkeypatch.setattr(runlock, "open", read_only_open, raising=False)  # the lock is the first file a run writes
    err = _one_line_error(CliRunner().invoke(app, _resume(project)))
    assert err == (f"error: {run_dir}: cannot write in the models folder (Permission denied); fix its permissions or "
                   f"free disk space, or set paths.models_dir to a writable folder")
    _assert_intact(run_dir, before)


def test_disk_full_while_appending_to_the_metrics_log(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run_dir = project.parent / "models" / "default"
    before = _snapshot(run_dir)
    calls = {"n": 0}
    real = JsonlWriter._write

    def write(self, obj):
        calls["n"] += 1
        if calls["n"] > 1:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(self, obj)

    monkeypatch.setattr(JsonlWriter, "_write", write)
    err = _one_line_error(CliRunner().invoke(app, _resume(project)))
    assert err == (f"error: {run_dir}: cannot write (No space left on device); the checkpoints already saved are intact "
                   f"— free disk space or fix permissions on {run_dir}, then continue with --resume")
    _assert_intact(run_dir, before)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders anyway")
def test_read_only_models_folder(project: Path) -> None:
    run_dir = project.parent / "models" / "default"
    before = _snapshot(run_dir)
    run_dir.chmod(0o555)
    try:
        err = _one_line_error(CliRunner().invoke(app, _resume(project)))
    finally:
        run_dir.chmod(0o755)
    assert f"{run_dir}: cannot write in the models folder (Permission denied)" in err
    _assert_intact(run_dir, before)


def _small_files(limit: int):
    def setup() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead of killing
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))

    return setup


def test_file_size_limit_in_a_real_process(project: Path) -> None:
    """The kernel refuses the write (EFBIG): the same clear error and exit code, nothing lost."""
    run_dir = project.parent / "models" / "default"
    before = _snapshot(run_dir)
    size = len(before["ckpt-00000012.pt"])
    metrics = (run_dir / "metrics.jsonl").stat().st_size
    limit = size // 3
    assert metrics < limit, "the limit must let the metrics log through and stop the checkpoint"
    env = {k: v for k, v in os.environ.items() if k != "WHATNEXT_DEBUG"}
    proc = subprocess.run([sys.executable, "-m", "whatnext", *_resume(project)], capture_output=True, text=True,
                          cwd=project.parent, env=env, preexec_fn=_small_files(limit), timeout=120)
    assert proc.returncode == 7, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    pt = run_dir / "ckpt-00000014.pt"
    assert lines[0] == (f"error: {pt}: cannot write checkpoint (File too large); earlier checkpoints are intact — "
                        f"free disk space or fix permissions on {run_dir}, then resume with --resume")
    _assert_intact(run_dir, before)
    # with the limit lifted, the run continues from the newest checkpoint to the end
    result = CliRunner().invoke(app, [*_resume(project)[:-1], "--json"])
    assert result.exit_code == 0, result.stderr
    assert checkpoints.load_latest(run_dir)[1]["step"] == 24
