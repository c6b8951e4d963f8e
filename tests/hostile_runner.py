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


#: runs in one capped child: imports the CLI once (and warms it with one ordinary command), then forks one
#: process per job, each running the real ``whatnext`` entry point; writes exit code (or -signal), stdout
#: and stderr per job into a JSON report. Forking after torch is imported costs milliseconds, not seconds.
_FORK_EACH = """
import json, os, signal, sys
from whatnext.cli import main

SPEC = json.loads(SPEC_JSON)


def run(argv, cwd):
    os.chdir(cwd)
    sys.argv = ["whatnext", *argv]
    try:
        main()
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    return 0


if SPEC["warm"]:
    saved = (os.dup(1), os.dup(2))
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1); os.dup2(null, 2)
    try:
        warm_rc = run(*SPEC["warm"])
    finally:
        sys.stdout.flush(); sys.stderr.flush()
        os.dup2(saved[0], 1); os.dup2(saved[1], 2)
else:
    warm_rc = 0
report = {"warm": warm_rc, "jobs": []}
for n, (argv, cwd) in enumerate(SPEC["jobs"]):
    out_path, err_path = f"{SPEC['tmp']}/{n}.out", f"{SPEC['tmp']}/{n}.err"
    pid = os.fork()
    if pid == 0:
        os.dup2(os.open(out_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC), 1)
        os.dup2(os.open(err_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC), 2)
        signal.alarm(SPEC["timeout"])
        code = 1
        try:
            code = run(argv, cwd)
        except BaseException:
            import traceback
            traceback.print_exc()
        sys.stdout.flush(); sys.stderr.flush()
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    rc = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
    with open(out_path, errors="replace") as o, open(err_path, errors="replace") as e:
        report["jobs"].append({"rc": rc, "stdout": o.read(), "stderr": e.read()})
print(json.dumps(report))
"""


def run_forked(jobs: list[tuple[list[str], Path]], scratch: Path, *, warm: tuple[list[str], Path] | None = None,
               timeout: int = 60) -> list[Outcome]:
    """Each ``(argv, cwd)`` as ``whatnext ARGV`` in a process forked from one capped child (see ``_FORK_EACH``).

    ``warm`` runs first in the child itself so that every import is done before the forks; it must succeed.
    A job that hangs is killed by SIGALRM after ``timeout`` seconds and reported as a signal death.
    """
    import json

    scratch.mkdir(parents=True, exist_ok=True)
    spec = {"jobs": [[list(a), str(c)] for a, c in jobs], "warm": [list(warm[0]), str(warm[1])] if warm else None,
            "tmp": str(scratch), "timeout": timeout}
    code = f"SPEC_JSON = {json.dumps(spec)!r}\n" + _FORK_EACH
    child = run_limited([], cwd=scratch, python=code, timeout=timeout * max(len(jobs), 1) + 120)
    assert child.returncode == 0, f"the forking child failed: {child.describe()}"
    report = json.loads(child.stdout.strip().splitlines()[-1])
    assert report["warm"] == 0, f"the warm-up command failed (exit {report['warm']}): the refusals would prove nothing"
    return [Outcome(j["rc"], j["stdout"], j["stderr"]) for j in report["jobs"]]
