"""A side thread for a short piece of inference beside the main one.

A single request's ranking is a chain of small steps: the actor reads the history, the neighbour
index is searched around its proto-action, the critic scores the slate. The critic's reading of
the history does not wait on the other two, and torch's LSTM and faiss's scan both release the
GIL, so :func:`beside` lets it run on a second core meanwhile (``Agent.score_candidates``). The
work and its result are the same as in turn, bit for bit; only the waiting shrinks.

It runs in turn (no thread) when the process may use one core only, or when torch already spreads
its operations over several threads.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import torch

#: histories up to which a batch reads the critic beside the search: a request or two (a batch's
#: matrix products are larger, and a server batches only while busy)
SIDE_MAX = 3
#: catalogues from this size start the critic's side reading after the actor, beside the index's scan alone;
#: smaller ones start it beside the actor. The scan holds no GIL, the actor's Python parts do: beside the scan
#: the critic runs unhindered, but only a scan at least as long as the critic's reading (about 0.6 ms, about
#: 50,000 items of the 16-bit scan) hides it. Measured (2026-12-01, A/B in one process, p50): 100,000 items
#: 5.72 ms beside the actor vs 4.79 after it; the 2,000-song demo 4.18 vs 5.36.
AFTER_ACTOR_FROM = 50_000

_pool: ThreadPoolExecutor | None = None
_pid = 0
_lock = threading.Lock()


class Done:
    """A result computed in the calling thread, with a Future's ``result()``."""

    def __init__(self, value: Any) -> None:
        self._value = value

    def result(self) -> Any:
        return self._value


def cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _side() -> ThreadPoolExecutor:
    """The process's side thread (a forked child makes its own: threads do not survive a fork)."""
    global _pool, _pid
    with _lock:
        if _pool is None or _pid != os.getpid():
            _pool = ThreadPoolExecutor(1, thread_name_prefix="whatnext-side")
            _pid = os.getpid()
        return _pool


def beside(fn: Callable[..., Any], *args: Any) -> Future[Any] | Done:
    """``fn(*args)`` in the side thread, or at once here when that would not run it on another core;
    either way ``.result()`` gives its value (or raises its exception)."""
    if cores() < 2 or torch.get_num_threads() > 1:
        return Done(fn(*args))
    return _side().submit(fn, *args)
