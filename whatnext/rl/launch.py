"""``whatnext train --nproc N``: N training processes on this machine through torch's own elastic
launcher (what ``torchrun --nproc-per-node N`` runs), with a free port on 127.0.0.1.

Each process runs ``python -m whatnext <args>``; the training loop finds its rank in the
environment torch sets (:mod:`whatnext.rl.distributed`). When a process fails the agent stops
the others at once; :func:`launch` then raises one :class:`RankFailed` naming the rank and its
cause (what the rank recorded, or the signal that killed it), never the others' lost contact.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import uuid
from typing import Any

from whatnext.errors import ConfigError, Interrupted, TrainingError

#: set in the processes :func:`launch` starts: they record their error for it instead of printing it
LAUNCHED = "WHATNEXT_LAUNCHED"
MAX_PROCESSES = 1024


class RankFailed(TrainingError):
    """A process of a ``--nproc`` job failed; the exit code is the rank's own (2-7, 130), else 7."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def check_nproc(nproc: int) -> None:
    """--nproc: a number of processes from 1 to :data:`MAX_PROCESSES`."""
    if not 1 <= nproc <= MAX_PROCESSES:
        raise ConfigError(f"--nproc is {nproc}; expected a number of processes from 1 to {MAX_PROCESSES} "
                          f"(about one per core or GPU)")


def exit_code_for(code: int) -> int:
    """The job's exit code for a rank's: whatnext's own codes pass through, a signal or crash is 7."""
    return code if code in (1, 2, 3, 4, 5, 6, 7, 130) else 7


def _text(failure: Any) -> str:
    """What a failed rank recorded (its one line), or ''."""
    m = failure.message if failure.error_file_data.get("message") else ""
    return str(m.get("message", "") if isinstance(m, dict) else m)


def root_cause(failures: dict[int, Any]) -> tuple[int, Any]:
    """The failure to report: a rank's own error before another's lost contact, a rank's own end before one the
    agent stopped with SIGTERM once another had failed (the timestamps are whole seconds: both can fall in
    the same one), then the earliest, then the lowest rank."""
    from whatnext.rl.distributed import LOST

    def key(item: tuple[int, Any]) -> tuple[bool, bool, int, int]:
        rank, f = item
        return (_text(f).startswith(LOST), int(f.exitcode) == -signal.SIGTERM, int(f.timestamp), rank)

    return min(failures.items(), key=key)


def describe(rank: int, failure: Any) -> tuple[str, int]:
    """One line and the exit code for a failed rank."""
    code = int(failure.exitcode)
    if code < 0:
        return (f"rank {rank} was killed by signal {-code} ({failure.signal_name()}); the job stopped — continue it "
                f"from its newest checkpoint with --resume"), 7
    message = _text(failure)
    if not message:
        return f"rank {rank} exited with code {code} without a message; the job stopped", exit_code_for(code)
    return f"rank {rank}: {message}", exit_code_for(code)


def launch(nproc: int, args: list[str], *, threads: int = 1) -> None:
    """Run ``python -m whatnext *args`` in ``nproc`` processes on this machine; raise RankFailed if one fails.

    ``threads`` sets OMP_NUM_THREADS in each process (torch's launcher does the same), so N
    processes do not fight over the cores; ``train.threads`` still decides torch's own count.
    """
    check_nproc(nproc)
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    config = LaunchConfig(
        min_nodes=1, max_nodes=1, nproc_per_node=nproc, run_id=f"whatnext-{uuid.uuid4().hex[:12]}",
        rdzv_backend="c10d", rdzv_endpoint="127.0.0.1:0",  # port 0: the store picks a free one
        max_restarts=0, monitor_interval=0.1,
    )
    saved = {k: os.environ.get(k) for k in (LAUNCHED, "OMP_NUM_THREADS")}
    # the agent's own warnings and errors: the one line below says what failed
    quiet = [logging.getLogger(n) for n in list(logging.root.manager.loggerDict) if n.startswith("torch.distributed")]
    levels = [q.level for q in quiet]
    os.environ[LAUNCHED] = "1"
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    for q in quiet:
        q.setLevel(logging.CRITICAL)
    try:
        elastic_launch(config, sys.executable)("-m", "whatnext", *args)
    except ChildFailedError as e:
        rank, failure = root_cause(e.failures)
        message, code = describe(rank, failure)
        raise RankFailed(message, code) from None
    except SignalException as e:  # Ctrl-C (or a SIGTERM) reached the launcher: it has stopped every process
        raise Interrupted(f"interrupted by signal {e.sigval.value} ({e.sigval.name}); every process was asked to stop, "
                          f"rank 0 saving a checkpoint at the end of its step when training had begun; continue with "
                          f"--resume") from None
    finally:
        for q, level in zip(quiet, levels, strict=True):
            q.setLevel(level)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
