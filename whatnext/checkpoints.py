"""Checkpoints: atomic save, safe load, latest/best markers, pruning, the run lock.

Format (version 1). A run folder ``models/RUN/`` holds, per checkpoint,

- ``ckpt-00000200.pt``: ``torch.save`` of a dict of tensors and primitives only: ``actor``,
  ``critic``, ``actor_opt``, ``critic_opt`` (state_dicts), ``model_name``, ``model_args``,
  ``config`` (section -> key -> value), ``step``, ``epoch``, ``seed``, ``fingerprint`` of the
  catalogue, ``metrics``, ``best_metric``, ``format_version``. It is loaded with
  ``torch.load(weights_only=True)``, which refuses anything that would run code.
- ``ckpt-00000200.json``: its metadata: file name, size, SHA-256, step, time, metrics. A
  checkpoint counts only when its JSON exists and the checksum matches: a truncated or
  bit-flipped file is detected and skipped.

and the markers ``latest`` and ``best`` (text files naming a checkpoint). Every file is
written to a temporary name, flushed to disk and renamed, so a crash never leaves a
half-written file under a real name. The per-step randomness is derived from (seed, step),
so the step number is all a resume needs to continue bit for bit.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from whatnext.errors import CheckpointError, NotFoundError, TrainingError

FORMAT_VERSION = 1
PREFIX = "ckpt-"
LOCK = ".lock"


@dataclass
class CheckpointInfo:
    """What ``checkpoints list`` shows about one checkpoint."""

    path: Path
    step: int
    time: float
    size: int
    metrics: dict[str, float]
    sha256: str

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"path": str(self.path), "step": self.step, "time": self.time, "size": self.size, "metrics": self.metrics}


def _fsync_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically: temp file, fsync, rename. OSError -> TrainingError."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as e:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
        raise TrainingError(
            f"{path}: cannot write checkpoint ({e.strerror}); earlier checkpoints are intact — free disk space "
            f"or fix permissions on {path.parent}, then resume with --resume"
        ) from None


def write_atomic(path: Path, data: bytes) -> None:
    """Public form of the atomic write, for other artefacts (metrics, exports)."""
    _fsync_write(path, data)


def save(run_dir: Path, payload: dict[str, Any]) -> Path:
    """Save one checkpoint (payload must hold ``step``) and its JSON metadata; move ``latest``."""
    import io

    import torch

    run_dir.mkdir(parents=True, exist_ok=True)
    payload = {**payload, "format_version": FORMAT_VERSION}
    buf = io.BytesIO()
    torch.save(payload, buf)
    data = buf.getvalue()
    name = f"{PREFIX}{int(payload['step']):08d}"
    pt = run_dir / f"{name}.pt"
    _fsync_write(pt, data)
    meta = {
        "file": pt.name, "size": len(data), "sha256": hashlib.sha256(data).hexdigest(), "step": int(payload["step"]),
        "time": time.time(), "metrics": payload.get("metrics", {}), "format_version": FORMAT_VERSION,
    }
    _fsync_write(run_dir / f"{name}.json", json.dumps(meta, indent=1).encode())
    set_marker(run_dir, "latest", pt)
    return pt


def set_marker(run_dir: Path, marker: str, pt: Path) -> None:
    """Point marker ``latest`` or ``best`` at checkpoint ``pt``."""
    _fsync_write(run_dir / marker, (pt.name + "\n").encode())


def marker(run_dir: Path, name: str) -> Path | None:
    """The checkpoint a marker names, or None."""
    p = run_dir / name
    try:
        target = p.read_text().strip()
    except (OSError, UnicodeDecodeError):
        return None
    return run_dir / target if target else None


def listing(run_dir: Path) -> list[CheckpointInfo]:
    """Every checkpoint with readable metadata in ``run_dir``, oldest first (not verified)."""
    out = []
    for meta_path in sorted(run_dir.glob(f"{PREFIX}*.json")):
        try:
            meta = json.loads(meta_path.read_text())
            pt = run_dir / meta["file"]
            out.append(CheckpointInfo(pt, int(meta["step"]), float(meta["time"]), int(meta["size"]),
                                      dict(meta.get("metrics", {})), str(meta["sha256"])))
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return sorted(out, key=lambda c: c.step)


def verify(pt: Path) -> None:
    """CheckpointError unless ``pt`` exists and matches the checksum in its metadata."""
    meta_path = pt.with_suffix(".json")
    if not pt.exists():
        raise CheckpointError(f"{pt}: checkpoint file not found")
    try:
        meta = json.loads(meta_path.read_text())
        expected = meta["sha256"]
    except (OSError, ValueError, KeyError):
        raise CheckpointError(f"{pt}: its metadata {meta_path.name} is missing or unreadable; the checkpoint cannot be trusted") from None
    data = pt.read_bytes()
    if hashlib.sha256(data).hexdigest() != expected:
        raise CheckpointError(f"{pt}: checksum mismatch (truncated or corrupted file, {len(data)} bytes, expected {meta.get('size')}); "
                              f"use another checkpoint ('whatnext checkpoints list'; --resume falls back by itself)")


def load(pt: Path, *, check: bool = True) -> dict[str, Any]:
    """Load a checkpoint safely (weights_only), verifying its checksum when metadata exists."""
    import pickle

    import torch

    if check and pt.with_suffix(".json").exists():
        verify(pt)
    elif not pt.exists():
        raise NotFoundError(f"{pt}: checkpoint not found; train one with 'whatnext train'")
    try:
        payload = torch.load(pt, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        text = str(e)
        code = re.search(r"GLOBAL ([\w.]+)", text)
        if code:  # the file names a function or class to call: what a hostile pickle does
            raise CheckpointError(
                f"{pt}: refused to load: the file asks to run '{code.group(1)}', which no checkpoint holds "
                f"(only tensors and plain values are loaded, so nothing ran); use a checkpoint written by 'whatnext train'"
            ) from None
        skip = ("Weights only load failed", "Check the documentation", "Please file an issue", "WeightsUnpickler error")
        lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.strip().startswith(skip)]
        raise CheckpointError(
            f"{pt}: not a readable checkpoint ({(lines[0] if lines else 'unpickling failed')[:100]}); "
            f"use a checkpoint written by 'whatnext train'"
        ) from None
    except Exception as e:  # torch raises many kinds for a damaged archive
        detail = " ".join(str(e).split())[:100]
        raise CheckpointError(f"{pt}: not a readable checkpoint ({type(e).__name__}: {detail}); "
                              f"use a checkpoint written by 'whatnext train'") from None
    if not isinstance(payload, dict) or payload.get("format_version") != FORMAT_VERSION:
        found = payload.get("format_version") if isinstance(payload, dict) else type(payload).__name__
        raise CheckpointError(f"{pt}: checkpoint format {found!r}, expected {FORMAT_VERSION}; it was not written by this whatnext")
    return payload


def load_latest(run_dir: Path, warn: list[str] | None = None) -> tuple[Path, dict[str, Any]] | None:
    """The newest good checkpoint of a run, trying ``latest`` first, then older ones.

    Bad checkpoints on the way are skipped and described in ``warn``. None when the run has none.
    """
    candidates: list[Path] = []
    latest = marker(run_dir, "latest")
    if latest is not None:
        candidates.append(latest)
    candidates += [c.path for c in reversed(listing(run_dir)) if c.path != latest]
    for pt in candidates:
        try:
            return pt, load(pt)
        except (CheckpointError, NotFoundError) as e:
            if warn is not None:
                warn.append(f"skipped {e}")
    return None


def prune(run_dir: Path, keep_last: int) -> list[Path]:
    """Delete all but the newest ``keep_last`` checkpoints, never ``best`` or ``latest``; return deleted."""
    infos = listing(run_dir)
    protected = {marker(run_dir, "best"), marker(run_dir, "latest")}
    removed = []
    for info in infos[: max(0, len(infos) - keep_last)]:
        if info.path in protected:
            continue
        # metadata first: a kill in between leaves an orphan .pt, which never counts, never a .json without its file
        for p in (info.path.with_suffix(".json"), info.path):
            p.unlink(missing_ok=True)
        removed.append(info.path)
    # orphans: a .pt whose metadata was never written (a kill mid-save) or already deleted (a kill mid-prune)
    for pt in run_dir.glob(f"{PREFIX}*.pt"):
        if not pt.with_suffix(".json").exists() and pt not in protected:
            pt.unlink(missing_ok=True)
    return removed


def clear(run_dir: Path) -> None:
    """Delete a run's checkpoints, markers and metrics (``train --force``)."""
    for p in [*run_dir.glob(f"{PREFIX}*"), run_dir / "latest", run_dir / "best", run_dir / "metrics.jsonl"]:
        p.unlink(missing_ok=True)


def resolve(models_dir: Path, run: str | None, checkpoint: str | Path | None, prefer: str = "best") -> Path:
    """The checkpoint a command should use: an explicit file, or the run's ``best`` then ``latest``."""
    if checkpoint is not None:
        p = Path(checkpoint)
        if not p.exists():
            raise NotFoundError(f"{p}: checkpoint not found; list them with 'whatnext checkpoints list'")
        return p
    run_dir = models_dir / (run or "default")
    for name in (prefer, "latest"):
        pt = marker(run_dir, name)
        if pt is not None and pt.exists():
            return pt
    infos = listing(run_dir)
    if infos:
        return infos[-1].path
    raise NotFoundError(f"no checkpoint in {run_dir}; train one first with 'whatnext train' (or pass --run/--checkpoint)")


class RunLock:
    """A lock file in the run folder: one training process per run. A dead owner's lock is taken over."""

    def __init__(self, run_dir: Path) -> None:
        self.path = run_dir / LOCK

    def __enter__(self) -> RunLock:
        import fcntl

        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            guard = open(self.path.with_name(LOCK + ".guard"), "a")
        except OSError as e:
            raise TrainingError(self._cannot_write(e)) from None
        # the guard serialises check-and-take-over, so two processes cannot both take a stale lock
        with guard:
            fcntl.flock(guard.fileno(), fcntl.LOCK_EX)
            pid = _read_pid(self.path) if self.path.exists() else None
            if pid is not None and pid != os.getpid() and _alive(pid):
                raise TrainingError(
                    f"{self.path.parent}: run is being trained by process {pid}; wait for it, stop it, "
                    f"or choose another --run"
                )
            try:
                tmp = self.path.with_name(f"{LOCK}.{os.getpid()}.tmp")  # a dot-name ending .tmp, like every temporary file
                tmp.write_text(str(os.getpid()))
                os.replace(tmp, self.path)  # takes over a stale lock (dead pid or unreadable) atomically
            except OSError as e:
                raise TrainingError(self._cannot_write(e)) from None
        return self

    def _cannot_write(self, e: OSError) -> str:
        return (f"{self.path.parent}: cannot write in the models folder ({e.strerror}); fix its permissions or free "
                f"disk space, or set paths.models_dir to a writable folder")

    def __exit__(self, *exc: object) -> None:
        if _read_pid(self.path) == os.getpid():
            self.path.unlink(missing_ok=True)


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
