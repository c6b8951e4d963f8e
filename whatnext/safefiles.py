"""Reading and writing the small files of a run folder without trusting them.

A file read from a run folder may be anything a user, a crash or an attacker left there: a symbolic link, a FIFO
(whose open would block), a device, a file of gigabytes. These helpers read only regular files, only up to a limit,
never follow a link unless asked, and create temporary files that never follow a link or reuse what lies under the
name. :mod:`whatnext.checkpoints` (sidecars, markers, checkpoints) and :mod:`whatnext.runlock` (the lock) read
through them.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path


class Unusable(Exception):
    """Why a file of a run folder is not used (a fragment of a message, e.g. 'is a symbolic link')."""


def open_regular(path: Path, *, follow: bool) -> tuple[int, os.stat_result]:
    """An O_RDONLY descriptor of ``path`` after checking it is a regular file; Unusable otherwise.

    Stat first (a FIFO is never opened, a device never read), then open without blocking and
    without following a symbolic link (unless ``follow``), then check the opened file again.
    """
    try:
        st = os.stat(path, follow_symlinks=follow)
    except FileNotFoundError:
        raise Unusable("is missing") from None
    except OSError as e:
        raise Unusable(f"cannot be read ({e.strerror})") from None
    if stat.S_ISLNK(st.st_mode):
        raise Unusable("is a symbolic link (whatnext writes only regular files in a run folder)")
    if not stat.S_ISREG(st.st_mode):
        raise Unusable("is not a regular file (a folder, FIFO or device)")
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0) | (0 if follow else getattr(os, "O_NOFOLLOW", 0))
    try:
        fd = os.open(path, flags)
    except OSError as e:
        raise Unusable(f"cannot be read ({e.strerror})") from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):  # swapped between the stat and the open
        os.close(fd)
        raise Unusable("is not a regular file (a folder, FIFO or device)")
    return fd, st


def read_checked(path: Path, limit: int, *, follow: bool = False) -> bytes:
    """The bytes of a small regular file (a marker, sidecar or lock), at most ``limit``; Unusable otherwise."""
    fd, st = open_regular(path, follow=follow)
    try:
        if st.st_size > limit:
            raise Unusable(f"is {st.st_size} bytes, more than the {limit} such a file can hold")
        data = os.read(fd, limit + 1)
    except OSError as e:
        raise Unusable(f"cannot be read ({e.strerror})") from None
    finally:
        os.close(fd)
    if len(data) > limit:
        raise Unusable(f"is more than the {limit} bytes such a file can hold")
    return data


def read_small(path: Path, limit: int = 1 << 20) -> bytes | None:
    """The bytes of a small regular file in a run folder (no link, FIFO or device; at most ``limit``), else None."""
    try:
        return read_checked(path, limit)
    except Unusable:
        return None


def exclusive(path: str, flags: int) -> int:
    """open()'s opener for temporary files: create a new file, never follow a link or open a FIFO left there."""
    return os.open(path, flags | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o644)


def fresh(tmp: Path) -> None:
    """Remove whatever lies under a temporary name (a file, link or FIFO: never what a link points to)."""
    if os.path.lexists(tmp) and not os.path.isdir(tmp) or os.path.islink(tmp):
        os.unlink(tmp)
