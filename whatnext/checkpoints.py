"""Checkpoints: atomic save, safe load, latest/best markers, pruning (the run lock: :mod:`whatnext.runlock`).

Format (version 1). A run folder ``models/RUN/`` holds, per checkpoint,

- ``ckpt-00000200.pt``: ``torch.save`` of a dict of tensors and primitives only: ``actor``,
  ``critic``, ``actor_opt``, ``critic_opt`` (state_dicts), ``model_name``, ``model_args``,
  ``config`` (section -> key -> value), ``step``, ``epoch``, ``seed``, ``fingerprint`` of the
  catalogue, ``metrics``, ``best_metric``, ``format_version``. It is loaded with
  ``torch.load(weights_only=True)``, which refuses anything that would run code.
- ``ckpt-00000200.json`` (the sidecar): file name, size, SHA-256, step, time, metrics. A
  checkpoint counts only when its sidecar is valid and the checksum matches: a truncated or
  bit-flipped file is detected and skipped, and a checkpoint without a sidecar is never used.

and the markers ``latest`` and ``best`` (text files naming a checkpoint). Every file is
written to a temporary name, flushed to disk and renamed, so a crash never leaves a
half-written file under a real name. The per-step randomness is derived from (seed, step),
so the step number is all a resume needs to continue bit for bit.

Everything read from a run folder is distrusted: paths derive from file names this module
writes itself (``ckpt-<8+ digits>.pt`` and ``.json``, a marker naming such a file), never from
the files' contents; markers, sidecars and the lock are read only when they are regular files
(not symbolic links, FIFOs or devices) and only up to a few kilobytes; nothing but those names
is ever deleted.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import stat
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from whatnext.errors import CheckpointError, ConfigError, NotFoundError, TrainingError
from whatnext.runlock import LOCK, RunLock  # noqa: F401  (the run lock lives in its own module; re-exported)
from whatnext.safefiles import Unusable as _Unusable
from whatnext.safefiles import exclusive as _exclusive
from whatnext.safefiles import fresh as _fresh
from whatnext.safefiles import open_regular as _open_regular
from whatnext.safefiles import read_checked as _read_small
from whatnext.safefiles import read_small  # noqa: F401  (baseline_runs reads its record through it)

FORMAT_VERSION = 1
PREFIX = "ckpt-"
MARKERS = ("latest", "best")

#: a checkpoint's own name: the step, zero-padded to 8 digits (one name per step)
NAME = re.compile(r"ckpt-([0-9]{8,200})\.(pt|json)")
#: a run folder's name: one path component of safe characters
RUN_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,63}")
RUN_NAME_RULE = ("one folder name of letters, digits, '.', '_' or '-', not starting with a dot, at most 64 characters "
                 "(e.g. 'default' or 'exp-2')")
MAX_SIDECAR = 64 * 1024  # a sidecar with every metric is about 1 KB
MAX_MARKER = 1024  # a marker holds one file name
MAX_TIME = 1e11  # seconds since 1970: the year 5138
MAX_SIZE = 2**50


@dataclass
class CheckpointInfo:
    """What ``checkpoints list`` shows about one checkpoint (its sidecar was valid; the checksum is checked on load)."""

    path: Path
    step: int
    time: float
    size: int
    metrics: dict[str, float]
    sha256: str

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"path": str(self.path), "step": self.step, "time": self.time, "size": self.size, "metrics": self.metrics}


# ---------------------------------------------------------------- names


def run_name_problem(name: object) -> str | None:
    """None when ``name`` is a safe run name, else what is wrong with it (for a message)."""
    if not isinstance(name, str):
        return f"a {type(name).__name__}"
    if not name:
        return "empty"
    if not RUN_NAME.fullmatch(name):
        return "not a plain folder name" if len(name) <= 64 else f"{len(name)} characters long"
    return None


def run_folder(models_dir: Path, run: str, where: str = "--run") -> Path:
    """``models_dir/run`` after checking that ``run`` is one safe folder name (ConfigError otherwise)."""
    problem = run_name_problem(run)
    if problem is not None:
        raise ConfigError(f"{where}: run name {_shown(run)} is {problem}; expected {RUN_NAME_RULE}")
    return models_dir / run


def checkpoint_name(step: int) -> str:
    """The file name of the checkpoint of ``step``."""
    return f"{PREFIX}{step:08d}.pt"


def _step_of(name: str, suffix: str) -> int | None:
    """The step of a canonical checkpoint or sidecar name, else None (zero-padding other than 8 digits is refused)."""
    m = NAME.fullmatch(name)
    if m is None or m.group(2) != suffix:
        return None
    step = int(m.group(1))
    return step if checkpoint_name(step)[:-3] + "." + suffix == name else None


def _shown(text: object, limit: int = 80) -> str:
    """``text`` quoted for a one-line message: control characters escaped, long text cut."""
    s = repr(text) if isinstance(text, str) else str(text)
    return s if len(s) <= limit else s[: limit - 3] + "..."


# ---------------------------------------------------------------- sidecars


def _number(meta: dict[str, Any], key: str, kind: type, low: float, high: float, what: str) -> Any:
    value = meta.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float) if kind is float else int):
        raise _Unusable(f"field '{key}' is {_shown(value, 40)}, expected {what}")
    if isinstance(value, float) and not math.isfinite(value) or not low <= value <= high:
        raise _Unusable(f"field '{key}' is {_shown(value, 40)}, expected {what}")
    return kind(value)


def read_sidecar(json_path: Path, *, follow: bool = False) -> CheckpointInfo:
    """The checkpoint a sidecar describes, its path derived from the sidecar's own name; _Unusable if invalid.

    The sidecar's ``file`` field is never used as a path: when the sidecar has a checkpoint's
    name (``ckpt-<step>.json``) its ``step`` and ``file`` must agree with that name.
    """
    raw = _read_small(json_path, MAX_SIDECAR, follow=follow)
    try:
        meta = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise _Unusable("is not JSON text") from None
    if not isinstance(meta, dict):
        raise _Unusable(f"holds a JSON {type(meta).__name__}, expected an object")
    sha = meta.get("sha256")
    if not isinstance(sha, str) or not re.fullmatch(r"[0-9a-f]{64}", sha):
        raise _Unusable(f"field 'sha256' is {_shown(sha, 40)}, expected 64 hex digits")
    size = _number(meta, "size", int, 0, MAX_SIZE, "the size in bytes")
    step = _number(meta, "step", int, 0, 10**200, "the step, an integer >= 0")
    when = _number(meta, "time", float, 0, MAX_TIME, "seconds since 1970, a number from 0 to 1e11")
    metrics = meta.get("metrics", {})
    try:
        if not isinstance(metrics, dict) or not all(isinstance(k, str) and isinstance(v, (int, float))
                                                    and not isinstance(v, bool) for k, v in metrics.items()):
            raise ValueError
        metrics = {k: float(v) for k, v in metrics.items()}
    except (ValueError, OverflowError):
        raise _Unusable("field 'metrics' is not a table of name: number") from None
    pt = json_path.with_suffix(".pt")
    named = _step_of(json_path.name, "json")
    if named is not None:
        if step != named:
            raise _Unusable(f"field 'step' is {step}, but the file is named for step {named}")
        if "file" in meta and meta["file"] != pt.name:
            raise _Unusable(f"field 'file' is {_shown(meta['file'], 60)}, expected {pt.name!r} (its own name)")
    return CheckpointInfo(pt, step, when, size, metrics, sha)


def listing(run_dir: Path, skipped: list[str] | None = None) -> list[CheckpointInfo]:
    """Every checkpoint of ``run_dir`` with a valid sidecar and its file beside it, oldest first.

    Only ``ckpt-<step>.json`` sidecars are read; checksums are checked on load, not here. A
    sidecar that is not used is described in ``skipped`` (a file name and the reason).
    """
    try:
        names = sorted(os.listdir(run_dir))
    except (FileNotFoundError, NotADirectoryError):
        return []
    except OSError as e:
        raise CheckpointError(f"{run_dir}: cannot read the run folder ({e.strerror}); fix its permissions") from None
    out = []
    for name in names:
        if not (name.startswith(PREFIX) and name.endswith(".json")):
            continue
        try:
            if _step_of(name, "json") is None:
                raise _Unusable(f"is not named {PREFIX}<step as 8 digits>.json")
            info = read_sidecar(run_dir / name)
            try:
                st = os.lstat(info.path)
            except OSError:
                raise _Unusable(f"describes {info.path.name}, which is missing") from None
            if not stat.S_ISREG(st.st_mode):
                raise _Unusable(f"describes {info.path.name}, which is not a regular file")
            out.append(info)
        except _Unusable as e:
            if skipped is not None:
                skipped.append(f"{run_dir / name}: sidecar {e}; its checkpoint is not used")
    return sorted(out, key=lambda c: c.step)


# ---------------------------------------------------------------- writing


def _fsync_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically: temp file, fsync, rename. OSError -> TrainingError."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        _fresh(tmp)
        with open(tmp, "wb", opener=_exclusive) as fh:
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
    pt = run_dir / checkpoint_name(int(payload["step"]))
    _fsync_write(pt, data)
    meta = {
        "file": pt.name, "size": len(data), "sha256": hashlib.sha256(data).hexdigest(), "step": int(payload["step"]),
        "time": time.time(), "metrics": payload.get("metrics", {}), "format_version": FORMAT_VERSION,
    }
    _fsync_write(pt.with_suffix(".json"), json.dumps(meta, indent=1).encode())
    set_marker(run_dir, "latest", pt)
    return pt


def set_marker(run_dir: Path, marker: str, pt: Path) -> None:
    """Point marker ``latest`` or ``best`` at checkpoint ``pt``."""
    _fsync_write(run_dir / marker, (pt.name + "\n").encode())


# ---------------------------------------------------------------- markers


def marker(run_dir: Path, name: str, warn: list[str] | None = None) -> Path | None:
    """The checkpoint a marker names (a ``ckpt-<step>.pt`` of this run), or None.

    A marker that is not a small regular file, or names anything but a checkpoint file of this
    run (a path, ``..``, an absolute name), is ignored and described in ``warn``.
    """
    p = run_dir / name
    if not os.path.lexists(p):
        return None
    try:
        try:
            target = _read_small(p, MAX_MARKER).decode("utf-8").strip()
        except UnicodeDecodeError:
            raise _Unusable("is not UTF-8 text") from None
        if _step_of(target, "pt") is None:
            raise _Unusable(f"names {_shown(target)}, expected a checkpoint of this run ({PREFIX}<step>.pt)")
    except _Unusable as e:
        if warn is not None:
            warn.append(f"{p}: marker {e}; ignored")
        return None
    return run_dir / target


def checked_marker(run_dir: Path, name: str, infos: list[CheckpointInfo], warn: list[str] | None = None) -> Path | None:
    """The checkpoint marker ``name`` names when it is one of ``infos`` (the run's listing), else None.

    A marker naming a checkpoint without a valid sidecar is described in ``warn``, as is a refused one.
    """
    pt = marker(run_dir, name, warn)
    if pt is None or any(c.path == pt for c in infos):
        return pt
    if warn is not None:
        warn.append(f"{run_dir / name}: marker names {pt.name}, which is not a checkpoint with a valid sidecar in "
                    f"this run; ignored")
    return None


# ---------------------------------------------------------------- loading


def _checked_file(pt: Path, check: bool) -> IO[bytes]:
    """``pt`` opened for reading; with ``check`` its sidecar must be valid and its SHA-256 must match."""
    if not pt.name:
        raise CheckpointError(f"{pt}: not a checkpoint file; pass --checkpoint of a checkpoint file ('whatnext checkpoints list')")
    meta_path = pt.with_suffix(".json")
    info = None
    if check:
        try:
            info = read_sidecar(meta_path, follow=True)
        except _Unusable as e:
            if not os.path.lexists(pt):
                raise NotFoundError(f"{pt}: checkpoint not found; list them with 'whatnext checkpoints list'") from None
            raise CheckpointError(
                f"{pt}: no verified sidecar ({meta_path.name} {e}), so the checkpoint cannot be trusted; pass --checkpoint "
                f"of a checkpoint listed by 'whatnext checkpoints list', or train again (--resume continues from a verified one)"
            ) from None
    try:
        fd, st = _open_regular(pt, follow=True)
    except _Unusable as e:
        if not os.path.lexists(pt):
            raise NotFoundError(f"{pt}: checkpoint not found; list them with 'whatnext checkpoints list'") from None
        raise CheckpointError(f"{pt}: checkpoint file {e}; use a checkpoint written by 'whatnext train'") from None
    fh = os.fdopen(fd, "rb")
    if info is None:
        return fh
    try:
        mismatch = st.st_size != info.size
        if not mismatch:
            digest = hashlib.sha256()
            while chunk := fh.read(1 << 20):
                digest.update(chunk)
            mismatch = digest.hexdigest() != info.sha256
        if mismatch:
            raise CheckpointError(
                f"{pt}: checksum mismatch (truncated or corrupted file, {st.st_size} bytes, expected {info.size}); "
                f"use another checkpoint ('whatnext checkpoints list'; --resume falls back by itself)")
        fh.seek(0)
    except OSError as e:
        fh.close()
        raise CheckpointError(f"{pt}: cannot read ({e.strerror})") from None
    except BaseException:
        fh.close()
        raise
    return fh


def verify(pt: Path) -> None:
    """CheckpointError unless ``pt`` exists, has a valid sidecar and matches its checksum."""
    _checked_file(pt, True).close()


def load(pt: Path, *, check: bool = True) -> dict[str, Any]:
    """Load a checkpoint safely (weights_only) after verifying it against its sidecar.

    ``check=False`` skips the sidecar: only for the legacy ``model_agent_path`` files, which have none.
    """
    import pickle

    import torch

    with _checked_file(pt, check) as fh:
        try:
            payload = torch.load(fh, map_location="cpu", weights_only=True)
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

    Bad checkpoints, sidecars and markers on the way are skipped and described in ``warn``.
    None when the run has none.
    """
    notes: list[str] = []
    infos = listing(run_dir, notes)
    listed = [c.path for c in infos]
    candidates: list[Path] = []
    latest = checked_marker(run_dir, "latest", infos, notes)
    if latest is not None:
        candidates.append(latest)
    candidates += [p for p in reversed(listed) if p != latest]
    if warn is not None:
        warn.extend(f"skipped {n}" for n in notes)
    for pt in candidates:
        try:
            return pt, load(pt)
        except (CheckpointError, NotFoundError) as e:
            if warn is not None:
                warn.append(f"skipped {e}")
    return None


def resolve(models_dir: Path, run: str | None, checkpoint: str | Path | None, prefer: str = "best",
            warn: list[str] | None = None) -> Path:
    """The checkpoint a command should use: an explicit file, or the run's ``best`` then ``latest``, then its newest.

    Only checkpoints with a valid sidecar are chosen. A marker that is refused or names anything
    else is passed over with a note in ``warn``. NotFoundError when the run has no checkpoint;
    CheckpointError when it has checkpoint files but none with a valid sidecar.
    """
    if checkpoint is not None:
        p = Path(checkpoint)
        if not os.path.lexists(p):
            raise NotFoundError(f"{p}: checkpoint not found; list them with 'whatnext checkpoints list'")
        return p
    run_dir = run_folder(models_dir, "default" if run is None else run)
    skipped: list[str] = []
    infos = listing(run_dir, skipped)
    notes: list[str] = []
    chosen = None
    for name in (prefer, "latest"):
        chosen = checked_marker(run_dir, name, infos, notes)
        if chosen is not None:
            break
    if chosen is None and infos:
        chosen = infos[-1].path
    if chosen is not None:
        if warn is not None and notes:
            warn.extend(f"{n}; using {chosen.name}" for n in notes)
        return chosen
    unverified = skipped or [f"{run_dir / n}: its sidecar {n[:-3]}.json is missing" for n in _names(run_dir)
                             if _step_of(n, "pt") is not None]
    if unverified:
        raise CheckpointError(
            f"{run_dir}: no checkpoint with a verified sidecar ({len(unverified)} passed over; first: {unverified[0]}); "
            f"pass --checkpoint of a verified checkpoint file, or train the run again ('whatnext train --force')")
    raise NotFoundError(f"no checkpoint in {run_dir}; train one first with 'whatnext train' (or pass --run/--checkpoint)")


def _names(run_dir: Path) -> list[str]:
    try:
        return sorted(os.listdir(run_dir))
    except OSError:
        return []


# ---------------------------------------------------------------- deleting


def _unlink(p: Path, run_dir: Path) -> bool:
    """Delete ``p`` (a file of ``run_dir`` with a name this module writes) unless it is a folder; True if it went.

    OSError -> TrainingError: the files not yet deleted are intact.
    """
    try:
        st = os.lstat(p)
    except FileNotFoundError:
        return False
    except OSError as e:
        raise TrainingError(f"{p}: cannot delete ({e.strerror}); nothing else was deleted — make {run_dir} "
                            f"writable, then try again") from None
    if stat.S_ISDIR(st.st_mode):
        return False
    try:
        os.unlink(p)
    except FileNotFoundError:
        return False
    except OSError as e:
        raise TrainingError(f"{p}: cannot delete ({e.strerror}); the checkpoints not yet pruned are intact — make "
                            f"{run_dir} writable (or free the file system), then prune again") from None
    return True


def prune(run_dir: Path, keep_last: int, *, dry_run: bool = False) -> list[Path]:
    """Delete all but the newest ``keep_last`` checkpoints, never ``best`` or ``latest``; return the deleted ones.

    Only ``ckpt-<step>.pt`` files of this run and their sidecars are ever deleted.
    """
    infos = listing(run_dir)
    protected = {marker(run_dir, "best"), marker(run_dir, "latest")}
    removed = []
    for info in infos[: max(0, len(infos) - keep_last)]:
        if info.path in protected:
            continue
        if dry_run:  # only say what would go
            removed.append(info.path)
            continue
        # sidecar first: a kill in between leaves an orphan .pt, which never counts, never a sidecar without its file
        _unlink(info.path.with_suffix(".json"), run_dir)
        _unlink(info.path, run_dir)
        removed.append(info.path)
    if dry_run:
        return removed
    # orphans: a .pt whose sidecar was never written (a kill mid-save) or already deleted (a kill mid-prune)
    for name in _names(run_dir):
        pt = run_dir / name
        if _step_of(name, "pt") is not None and pt not in protected and not os.path.lexists(pt.with_suffix(".json")):
            _unlink(pt, run_dir)
    return removed


def clear(run_dir: Path) -> None:
    """Delete a run's checkpoints, sidecars, markers and metrics (``train --force``), nothing else."""
    for name in _names(run_dir):
        if NAME.fullmatch(name) or name in (*MARKERS, "metrics.jsonl"):
            _unlink(run_dir / name, run_dir)
