"""Run a whatnext command on a hostile file in a child process with a memory cap, and judge how it ended.

Used by the hostile-corpus tests (pickles, checkpoints, sidecars, markers). The child gets an address-space
limit (RLIMIT_AS) and a wall-clock timeout; a well-behaved whatnext exits with a documented code and one line
on stderr. A death by a signal (negative return code), a traceback, a timeout or a second line is a failure.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

#: address-space cap for the child: torch + pandas + numpy need about 1.5 GB of virtual memory to start
MEMORY_LIMIT = 3 * 1024**3
TIMEOUT_S = 60


@dataclass
class Outcome:
    """How a child process ended."""

    returncode: int
    stdout: str
    stderr: str

    @property
    def lines(self) -> list[str]:
        return [ln for ln in self.stderr.splitlines() if ln.strip()]

    def describe(self) -> str:
        return f"exit {self.returncode}; stderr: {self.stderr[-2000:]!r}"


def _limit() -> None:  # runs in the child, before exec
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def run_limited(args: list[str], cwd: Path, *, timeout: float = TIMEOUT_S, python: str | None = None) -> Outcome:
    """``python -m whatnext ARGS`` (or ``python -c CODE`` when ``python`` is given) under the memory cap."""
    argv = [sys.executable, "-c", python] if python is not None else [sys.executable, "-m", "whatnext", *args]
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1", "OMP_NUM_THREADS": "1", "PYTHONFAULTHANDLER": ""}
    try:
        proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env,
                              preexec_fn=_limit, check=False, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as e:
        raise AssertionError(f"{args}: still running after {timeout} s (a hang)") from e
    return Outcome(proc.returncode, proc.stdout, proc.stderr)


def assert_clean_failure(out: Outcome, codes: set[int]) -> str:
    """The child ended by ``exit(code)`` with ``code`` in ``codes`` and one stderr line, no traceback; the line."""
    assert out.returncode >= 0, f"killed by signal {-out.returncode}: {out.describe()}"
    assert "Traceback" not in out.stderr, out.describe()
    assert out.returncode in codes, out.describe()
    assert len(out.lines) == 1, out.describe()
    return out.lines[0]


def tree_snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """(size, mtime_ns) of every file under ``root``: compare before and after to prove nothing was touched."""
    snap = {}
    for p in sorted(root.rglob("*")):
        if p.is_file() and not p.is_symlink():
            st = p.stat()
            snap[str(p.relative_to(root))] = (st.st_size, st.st_mtime_ns)
    return snap
