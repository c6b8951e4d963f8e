"""The exception tree of whatnext.

Every error a user can cause is a :class:`WhatnextError`. Each class carries the
process exit code the CLI uses, so the mapping is written once, here. Messages are
one line: the file, line or key, what was found, what was expected, how to fix it.
"""

from __future__ import annotations


class WhatnextError(Exception):
    """Root of every error whatnext reports to a user (exit code 1)."""

    exit_code = 1


class ConfigError(WhatnextError):
    """A bad config file, config value or command-line option (exit code 2)."""

    exit_code = 2


class DataError(WhatnextError):
    """Training or item data that cannot be read or fails validation (exit code 3)."""

    exit_code = 3


class CheckpointError(WhatnextError):
    """A checkpoint is missing, corrupt, unsafe or does not match the data (exit code 4)."""

    exit_code = 4


class NotFoundError(WhatnextError):
    """An unknown user, item, run or checkpoint was asked for (exit code 5)."""

    exit_code = 5


class OutputExistsError(WhatnextError):
    """Writing would overwrite an existing file; pass --force to allow it (exit code 6)."""

    exit_code = 6


class TrainingError(WhatnextError):
    """Training cannot go on: a NaN/inf loss, a locked run, a failed write (exit code 7)."""

    exit_code = 7


class Interrupted(WhatnextError):
    """The user pressed Ctrl-C; state was saved where possible (exit code 130)."""

    exit_code = 130


#: Exit codes as documented in the README, in one place for the CLI and the docs.
EXIT_CODES: dict[int, str] = {
    0: "success",
    1: "unexpected internal error (a bug: please report it)",
    2: "bad config file, config value or command-line option",
    3: "bad data: unreadable file, missing column, invalid values",
    4: "checkpoint missing, corrupt, unsafe or made for other data",
    5: "unknown user, item, run or checkpoint",
    6: "output file exists (use --force to overwrite)",
    7: "training failed (NaN/inf loss, run locked, disk full or not writable; under `--nproc`, a process killed by a signal or that lost contact with the others)",
    130: "interrupted by Ctrl-C (a checkpoint was saved; resume with --resume)",
}


def file_kind(path: object) -> str | None:
    """None for a regular file, else what ``path`` is ("a FIFO (named pipe)", "a character device", "a folder"...).

    Checked before a file is opened: a FIFO blocks the reader and a device such as /dev/zero never ends, so only
    regular files are read as configs, data files and checkpoints. FileNotFoundError (an OSError) when it is missing.
    """
    import os
    import stat

    mode = os.stat(path).st_mode  # type: ignore[arg-type]
    if stat.S_ISREG(mode):
        return None
    for test, kind in ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return kind
    return "a special file"
