"""The run lock: one training job per run folder.

``models/RUN/.lock`` records the owner's PID, its start time and its host. A lock whose process is gone, or whose
PID now belongs to a process that started at another time (a reused PID), is taken over; a lock from another host
is respected. A guard file (``.lock.guard``, flock) makes check-and-take-over one step, so two processes cannot
both take a stale lock.
"""

from __future__ import annotations

import json
import os
import socket
import stat
from dataclasses import dataclass
from pathlib import Path

from whatnext.errors import TrainingError
from whatnext.safefiles import Unusable, exclusive, fresh, read_checked

LOCK = ".lock"
MAX_LOCK = 4096


def _start_time(pid: int) -> str | None:
    """When process ``pid`` started (field 22 of /proc/PID/stat, clock ticks since boot), or None where unknown."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            text = fh.read(4096).decode("ascii", "replace")
        return text.rpartition(")")[2].split()[19]
    except (OSError, IndexError):
        return None


@dataclass
class _Owner:
    pid: int
    start: str | None
    host: str | None


def _read_owner(path: Path) -> _Owner | None:
    """Who holds the lock: JSON {pid, start, host}, or a bare PID (older whatnext); None if unreadable."""
    try:
        text = read_checked(path, MAX_LOCK).decode("utf-8").strip()
    except (Unusable, UnicodeDecodeError):
        return None
    if text.isdigit() and len(text) < 12:
        return _Owner(int(text), None, None)
    try:
        d = json.loads(text)
    except (ValueError, RecursionError):
        return None
    if not isinstance(d, dict):
        return None
    pid, start, host = d.get("pid"), d.get("start"), d.get("host")
    if isinstance(pid, bool) or not isinstance(pid, int) or not 0 < pid < 2**31:
        return None
    return _Owner(pid, start if isinstance(start, str) else None, host if isinstance(host, str) else None)


class RunLock:
    """A lock file in the run folder: one training process per run.

    The lock records the owner's PID, its start time and the host. A lock whose process is gone,
    or whose PID now belongs to a process that started at another time (a reused PID), is taken
    over; a lock from another host is respected.
    """

    def __init__(self, run_dir: Path) -> None:
        self.path = run_dir / LOCK

    def __enter__(self) -> RunLock:
        import fcntl

        guard_path = self.path.with_name(LOCK + ".guard")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # never blocks on a FIFO, never follows a link
            guard = open(guard_path, "a", opener=lambda p, f: os.open(p, f | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0), 0o644))
        except OSError as e:
            raise TrainingError(self._cannot_write(e)) from None
        # the guard serialises check-and-take-over, so two processes cannot both take a stale lock
        with guard:
            if not stat.S_ISREG(os.fstat(guard.fileno()).st_mode):
                raise TrainingError(f"{guard_path}: not a regular file; delete it (no whatnext needs it between runs)")
            fcntl.flock(guard.fileno(), fcntl.LOCK_EX)
            owner = _read_owner(self.path) if os.path.lexists(self.path) else None
            if owner is not None and self._held_by_other(owner):
                where = f" on host {owner.host}" if owner.host and owner.host != socket.gethostname() else ""
                raise TrainingError(
                    f"{self.path.parent}: run is being trained by process {owner.pid}{where}; wait for it, stop it, "
                    f"or choose another --run (if no whatnext is training this run, the lock is stale: delete {self.path})"
                )
            me = {"pid": os.getpid(), "start": _start_time(os.getpid()), "host": socket.gethostname()}
            try:
                tmp = self.path.with_name(f"{LOCK}.{os.getpid()}.tmp")  # a dot-name ending .tmp, like every temporary file
                fresh(tmp)
                with open(tmp, "w", opener=exclusive) as fh:
                    fh.write(json.dumps(me))
                os.replace(tmp, self.path)  # takes over a stale lock (dead pid or unreadable) atomically
            except OSError as e:
                raise TrainingError(self._cannot_write(e)) from None
        return self

    @staticmethod
    def _held_by_other(owner: _Owner) -> bool:
        if owner.host is not None and owner.host != socket.gethostname():
            return True  # its process cannot be looked up from here
        if owner.pid == os.getpid() or not _alive(owner.pid):
            return False
        now = _start_time(owner.pid)
        return owner.start is None or now is None or now == owner.start  # another start time: a reused PID

    def _cannot_write(self, e: OSError) -> str:
        return (f"{self.path.parent}: cannot write in the models folder ({e.strerror}); fix its permissions or free "
                f"disk space, or set paths.models_dir to a writable folder")

    def __exit__(self, *exc: object) -> None:
        owner = _read_owner(self.path)
        if owner is not None and owner.pid == os.getpid():
            self.path.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OverflowError:
        return False
    return True
