"""How a run walks through its training positions, for any number of processes, and how fast it learns.

A run's positions come in epochs, each in its own seeded order (``environment.epoch_order``). A
learning step takes the next *global batch* of that order and never crosses the end of an epoch
(the last step of an epoch takes what is left). The global batch is

- ``train.batch_scope = "process"`` (the default, as PyTorch DDP, Lightning and Accelerate count
  it): ``train.batch_size`` positions per process, ``N x batch_size`` per step for N processes;
- ``"global"``: ``train.batch_size`` per step whatever the number of processes (each rank takes
  its contiguous share, :func:`whatnext.rl.distributed.shard`).

With one process both are the single-process run of every earlier version, bit for bit.

The :class:`Cursor` says how far into the seeded order a run is: the positions it consumed over
all its epochs (and, for the legacy ``train.samples`` budget, the samples it counted: every step
counts its full global batch, as ``ceil(samples / batch)`` steps always did). Checkpoints record
it, so a run written by N processes resumes under M and continues from the next unconsumed
position, whatever the global batch was before.

A larger global batch makes fewer updates per epoch; ``train.lr_scaling`` raises the learning
rates with it (:func:`lr_factor`; only with several processes and the per-process scope).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from whatnext.errors import CheckpointError

#: train.lr_scaling's values (config/schema.py's CHOICES lists the same) -> the factor on the learning rates for a global batch ``k`` times the per-process one
LR_SCALINGS = {"sqrt": math.sqrt, "linear": float, "none": lambda k: 1.0}
#: the largest cursor value a checkpoint may hold
_MOST = 10**15


def global_batch(cfg: Any, processes: int) -> int:
    """Positions per learning step for ``processes`` processes."""
    t = cfg.train
    return t.batch_size * processes if t.batch_scope == "process" else t.batch_size


def lr_factor(cfg: Any, processes: int) -> float:
    """The factor on train.actor_lr / critic_lr: ``train.lr_scaling`` of the number of processes when the
    batch is per process and there are several, else 1."""
    t = cfg.train
    if processes <= 1 or t.batch_scope != "process":
        return 1.0
    return float(LR_SCALINGS[t.lr_scaling](processes))


def set_learning_rates(agent: Any, factor: float) -> None:
    """Every optimiser's rate is the config's times ``factor`` (also after a resume: a checkpoint's
    optimiser state holds the rate of the job that wrote it, perhaps another number of processes)."""
    t = agent.cfg.train
    for opt, base in ((agent.actor_opt, t.actor_lr), (agent.critic_opt, t.critic_lr),
                      (agent.offpolicy_opt, t.actor_lr)):
        for group in opt.param_groups if opt is not None else ():
            group["lr"] = base * factor


def lr_at(cfg: Any, step: int, total: int) -> float:
    """The schedule's share of the configured rates for the step after ``step`` steps of ``total``:
    1 under ``train.lr_schedule = "constant"``; under ``"cosine"`` half a cosine from 1 at the first step
    toward ``train.lr_floor`` at the run's end (``floor + (1 - floor) (1 + cos(pi step / total)) / 2``).
    A function of the step and the run's target alone, so a resumed run steps at the rates the uninterrupted
    one would with the same number of processes (another number changes the steps' count, and the curve
    continues from the same step of the new count)."""
    t = cfg.train
    if t.lr_schedule == "constant" or total <= 0:
        return 1.0
    floor = t.lr_floor
    return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * min(step, total) / total))


def follow(agent: Any, cfg: Any, step: int, total: int, factor: float = 1.0) -> None:
    """Before a learning step: the rates of ``train.lr_schedule`` for it (times ``factor``, the processes' rule);
    nothing under ``"constant"``, whose rates were set once at the start."""
    if cfg.train.lr_schedule != "constant":
        set_learning_rates(agent, factor * lr_at(cfg, step, total))


@dataclass(frozen=True)
class Cursor:
    """How far into its seeded order a run is."""

    consumed: int = 0  # positions consumed, over all epochs: epoch = consumed // n, offset = consumed % n
    samples: int = 0  # the full global batch of every step so far (what train.samples budgets)

    def to_dict(self) -> dict[str, int]:
        """As saved in a checkpoint."""
        return {"consumed": self.consumed, "samples": self.samples}


def at_step(step: int, n: int, batch: int) -> Cursor:
    """The cursor after ``step`` steps of a run that kept one global batch from the start (what a
    checkpoint of an earlier version, which has no cursor, means)."""
    epoch, i = divmod(step, steps_per_epoch(n, batch))
    return Cursor(epoch * n + min(i * batch, n), step * batch)


def cursor_of(payload: Mapping[str, Any], n: int, batch: int) -> Cursor:
    """The cursor a checkpoint records; one without (an earlier version's) is read as :func:`at_step`
    with ``batch``, the global batch it was trained with."""
    saved = payload.get("cursor")
    if saved is None:
        return at_step(int(payload["step"]), n, batch)
    if not isinstance(saved, Mapping):
        raise CheckpointError(f"the checkpoint's cursor is a {type(saved).__name__}, expected a table; "
                              f"resume from another checkpoint or start the run again with --force")
    values = []
    for key in ("consumed", "samples"):
        v = saved.get(key)
        if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= _MOST:
            raise CheckpointError(f"the checkpoint's cursor.{key} is {v!r}, expected an integer from 0 to 10**15; "
                                  f"resume from another checkpoint or start the run again with --force")
        values.append(v)
    return Cursor(*values)


def steps_per_epoch(n: int, batch: int) -> int:
    """Learning steps in a whole epoch of ``n`` positions."""
    return max(1, math.ceil(n / batch))


def steps_left(cfg: Any, cursor: Cursor, n: int, batch: int) -> int:
    """Steps from ``cursor`` to the run's target: the end of epoch ``train.epochs``, or the legacy
    ``train.samples`` budget (``ceil(samples / batch)`` steps from the start, at least one)."""
    t = cfg.train
    if t.samples:
        left = math.ceil(max(t.samples - cursor.samples, 0) / batch)
        return max(1, left) if cursor == Cursor() else left
    end = t.epochs * n
    if cursor.consumed >= end:
        return 0
    epoch, offset = divmod(cursor.consumed, n)
    first = math.ceil((n - offset) / batch) if offset else 0
    return first + (t.epochs - epoch - bool(offset)) * steps_per_epoch(n, batch)


class Walk:
    """The positions of the steps from a cursor on: :meth:`next` gives a step's epoch and its slice
    ``[lo, hi)`` of that epoch's order, and moves the cursor past it."""

    def __init__(self, n: int, batch: int, cursor: Cursor = Cursor()) -> None:
        self.n, self.batch, self.cursor = n, batch, cursor

    def next(self) -> tuple[int, int, int]:
        """(epoch, lo, hi) of the next step (the cursor then stands after it)."""
        epoch, lo = divmod(self.cursor.consumed, self.n)
        hi = min(lo + self.batch, self.n)
        self.cursor = Cursor(self.cursor.consumed + hi - lo, self.cursor.samples + self.batch)
        return epoch, lo, hi

    @property
    def epochs(self) -> float:
        """Epochs done, with the share of the current one."""
        return self.cursor.consumed / self.n


__all__ = ["LR_SCALINGS", "Cursor", "Walk", "at_step", "cursor_of", "global_batch", "lr_factor",
           "set_learning_rates", "steps_left", "steps_per_epoch"]
