"""Property tests over the files of a run folder: arbitrary sidecars and markers (bytes, any JSON, sidecar-like
objects with wrong types, names pointing anywhere, FIFOs, links out, folders). Whatever they hold,
``listing``, ``resolve``, ``load_latest``, ``prune`` and ``clear`` raise nothing but a WhatnextError, choose
only checkpoints named ``ckpt-<step>.pt`` inside the run, and never touch a file outside it."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

from hostile_runner import tree_snapshot
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from whatnext import checkpoints
from whatnext.errors import WhatnextError

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
PATHS = st.sampled_from([
    "../../victim/secret.txt", "../../../victim/secret.txt", "/etc/passwd", "..", ".", "", "ckpt-00000006.pt",
    "ckpt-00000012.pt", "ckpt-00000030.pt", "ckpt-6.pt", "ckpt-00000006.json", "default/../ckpt-00000006.pt",
    "ckpt-00000006.pt\nckpt-00000012.pt", " ckpt-00000012.pt ", "latest", "best", "/dev/zero",
]) | st.text(max_size=40)
SHA = st.sampled_from(["0" * 64, "f" * 64, "A" * 64, "xyz"])
SIDECAR_LIKE = st.fixed_dictionaries({}, optional={
    "file": PATHS | JSON, "size": st.integers(-5, 2**60) | JSON, "sha256": SHA | JSON,
    "step": st.integers(-5, 10**20) | JSON, "time": st.floats() | st.integers() | JSON,
    "metrics": st.dictionaries(st.text(max_size=8), st.floats() | st.integers() | JSON, max_size=3) | JSON,
    "format_version": JSON,
})
CONTENT = st.binary(max_size=300) | (JSON | SIDECAR_LIKE).map(lambda v: json.dumps(v).encode()) | PATHS.map(str.encode)
KINDS = st.sampled_from(["file", "file", "file", "fifo", "link-victim", "link-dev-zero", "link-inside", "folder"])
SIDECAR_NAMES = st.sampled_from(["ckpt-00000006.json", "ckpt-00000030.json", "ckpt-00000012.json", "ckpt-30.json",
                                 "ckpt-.json", "ckpt-000000030.json", "ckpt-00000030.pt"])
MARKER_NAMES = st.sampled_from(["best", "latest", ".lock"])
PLANTS = st.lists(st.tuples(SIDECAR_NAMES | MARKER_NAMES, KINDS, CONTENT), min_size=1, max_size=4)


def _plant(run: Path, victim: Path, name: str, kind: str, content: bytes) -> None:
    p = run / name
    if os.path.lexists(p):
        if p.is_dir() and not p.is_symlink():
            os.rmdir(p)
        else:
            p.unlink()
    if kind == "file":
        p.write_bytes(content)
    elif kind == "fifo":
        os.mkfifo(p)
    elif kind == "link-victim":
        p.symlink_to(victim)
    elif kind == "link-dev-zero":
        p.symlink_to("/dev/zero")
    elif kind == "link-inside":
        p.symlink_to(run / "ckpt-00000012.json")
    else:
        p.mkdir()


def _real_run(run: Path) -> None:
    run.mkdir(parents=True)
    for step in (6, 12):
        data = f"stub checkpoint {step}".encode()
        (run / f"ckpt-{step:08d}.pt").write_bytes(data)
        (run / f"ckpt-{step:08d}.json").write_text(json.dumps({
            "file": f"ckpt-{step:08d}.pt", "size": len(data), "sha256": hashlib.sha256(data).hexdigest(), "step": step,
            "time": 1.7e9, "metrics": {}, "format_version": 1}))
    (run / "best").write_text("ckpt-00000006.pt\n")
    (run / "latest").write_text("ckpt-00000012.pt\n")


@SETTINGS
@given(plants=PLANTS, keep=st.integers(1, 3))
def test_any_sidecar_or_marker_gives_a_whatnext_error_at_worst_and_touches_nothing_outside(
        plants: list[tuple[str, str, bytes]], keep: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        models = root / "proj" / "models"
        run = models / "default"
        _real_run(run)
        victim = root / "victim" / "secret.txt"
        victim.parent.mkdir()
        victim.write_text("nothing may delete this\n")
        (root / "proj" / "victim").mkdir()
        (root / "proj" / "victim" / "secret.txt").write_text("nor this\n")
        (run / "keep-me.txt").write_text("not a checkpoint\n")
        for name, kind, content in plants:
            _plant(run, victim, name, kind, content)
        outside = {k: v for k, v in tree_snapshot(root).items() if not k.startswith("proj/models/default/")}

        skipped: list[str] = []
        infos = checkpoints.listing(run, skipped)
        for c in infos:
            assert c.path.parent == run and checkpoints.NAME.fullmatch(c.path.name) and c.path.suffix == ".pt"
            assert c.path.name == checkpoints.checkpoint_name(c.step)
        assert all(len(s.splitlines()) == 1 for s in skipped)
        warnings: list[str] = []
        try:
            pt = checkpoints.resolve(models, "default", None, warn=warnings)
        except WhatnextError as e:
            assert len(str(e).splitlines()) == 1
        else:
            assert pt.parent == run and pt in [c.path for c in infos]
        assert all(len(w.splitlines()) == 1 for w in warnings)
        try:
            found = checkpoints.load_latest(run, warnings)
        except WhatnextError as e:
            assert len(str(e).splitlines()) == 1
        else:
            assert found is None  # the stubs are not torch files: every candidate is skipped with a note
        for op in (lambda: checkpoints.prune(run, keep), lambda: checkpoints.clear(run)):
            try:
                op()
            except WhatnextError as e:
                assert len(str(e).splitlines()) == 1
            now = {k: v for k, v in tree_snapshot(root).items() if not k.startswith("proj/models/default/")}
            assert now == outside, "a file outside the run folder changed"
            assert (run / "keep-me.txt").exists()


@SETTINGS
@given(content=CONTENT, kind=KINDS)
def test_any_marker_names_a_checkpoint_of_the_run_or_nothing(content: bytes, kind: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "models" / "default"
        _real_run(run)
        victim = Path(tmp) / "secret.txt"
        victim.write_text("x")
        _plant(run, victim, "best", kind, content)
        warn: list[str] = []
        pt = checkpoints.marker(run, "best", warn)
        assert pt is None or (pt.parent == run and pt.name == checkpoints.checkpoint_name(int(pt.name[5:-3])))
        assert pt is not None or kind == "file" and not content.strip() or warn
