"""The training progress protocol: how the loop reports to whoever watches it.

The core never prints. It calls a :class:`Callback`'s hooks; the CLI's callback draws a
rich progress bar, a notebook's may plot, a test's may stop after n steps. ``on_step``
returning True asks the loop to stop: it saves a checkpoint and returns cleanly (that is
how Ctrl-C is handled). Metrics are flat dicts with namespaced keys (``train/critic_loss``).
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any, TextIO

from whatnext.errors import TrainingError


class Callback:
    """Base class: every hook does nothing. Override the ones you need."""

    def on_start(self, info: dict[str, Any]) -> None:
        """Training begins: ``info`` has run_dir, start_step, total_steps, steps_per_epoch, positions,
        global_batch (positions a step takes, over all processes), processes and lr_factor."""

    def on_step(self, step: int, metrics: dict[str, float]) -> bool:
        """After learning step ``step`` (1-based). Return True to stop (a checkpoint is saved)."""
        return False

    def on_eval(self, step: int, metrics: dict[str, float]) -> None:
        """After a validation evaluation at ``step``."""

    def on_checkpoint(self, step: int, path: Path) -> None:
        """After a checkpoint was written."""

    def on_end(self, summary: dict[str, Any]) -> None:
        """Training ended (finished, stopped or interrupted): ``summary`` is what train() returns."""


class CallbackList(Callback):
    """Several callbacks as one; stops when any asks to."""

    def __init__(self, callbacks: list[Callback]) -> None:
        self.callbacks = callbacks

    def on_start(self, info: dict[str, Any]) -> None:
        for c in self.callbacks:
            c.on_start(info)

    def on_step(self, step: int, metrics: dict[str, float]) -> bool:
        return any([c.on_step(step, metrics) for c in self.callbacks])

    def on_eval(self, step: int, metrics: dict[str, float]) -> None:
        for c in self.callbacks:
            c.on_eval(step, metrics)

    def on_checkpoint(self, step: int, path: Path) -> None:
        for c in self.callbacks:
            c.on_checkpoint(step, path)

    def on_end(self, summary: dict[str, Any]) -> None:
        for c in self.callbacks:
            c.on_end(summary)


class JsonlWriter(Callback):
    """Appends one JSON line per step (and per evaluation) to ``metrics.jsonl``.

    On resume from step s, lines of steps after s (written before a crash) are dropped first,
    so the file always matches the weights.
    """

    def __init__(self, path: Path, resume_step: int = 0) -> None:
        self.path = path
        if resume_step and os.path.lexists(path) and not stat.S_ISREG(os.lstat(path).st_mode):
            # a link (out of the run), FIFO or device: reading could hang or never end, writing could land anywhere
            raise TrainingError(f"{path}: not a regular file (a symbolic link, FIFO, device or folder); whatnext writes "
                                f"this log itself: delete it, then resume")
        if resume_step and path.exists():
            kept = [ln for ln in path.read_text().splitlines() if _step_of(ln) <= resume_step]
            path.write_text("".join(ln + "\n" for ln in kept))
        elif not resume_step:
            path.unlink(missing_ok=True)
        self.fh: TextIO | None = None

    def _write(self, obj: dict[str, Any]) -> None:
        if self.fh is None:
            self.fh = self.path.open("a", buffering=1)  # line-buffered: a kill loses no saved step's line
        self.fh.write(json.dumps(obj) + "\n")

    def on_step(self, step: int, metrics: dict[str, float]) -> bool:
        self._write({"step": step, **metrics})
        return False

    def on_eval(self, step: int, metrics: dict[str, float]) -> None:
        self._write({"step": step, **metrics})

    def on_end(self, summary: dict[str, Any]) -> None:
        self.close()

    def close(self) -> None:
        """Close the file (idempotent); the training loop also calls it when a step raises."""
        if self.fh is not None:
            self.fh.close()
            self.fh = None


def _step_of(line: str) -> int:
    try:
        return int(json.loads(line)["step"])
    except (ValueError, KeyError, TypeError):
        return 1 << 62


class TensorBoardWriter(Callback):
    """Writes the per-step and validation metrics to TensorBoard event files in the run folder
    (``train.tensorboard``), so ``tensorboard --logdir models`` shows every run under its name.

    Tags are the metrics' own keys (``train/actor_loss``, ``eval/ndcg@10``), steps the learning steps.
    A fresh run first removes the folder's old event files; a resumed one drops the events of steps
    after the checkpoint (TensorBoard's purge_step), as :class:`JsonlWriter` does with its lines.
    torch.utils.tensorboard (and the ``tensorboard`` package) are imported only here, only when asked for.
    """

    def __init__(self, run_dir: Path, resume_step: int = 0) -> None:
        from whatnext.errors import ConfigError

        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise ConfigError("train.tensorboard = true needs the tensorboard package: pip install -e '.[tensorboard]' "
                              "(or set train.tensorboard = false)") from None
        if not resume_step:
            for old in run_dir.glob("events.out.tfevents.*"):
                old.unlink(missing_ok=True)
        self.writer: Any = SummaryWriter(log_dir=str(run_dir), purge_step=resume_step + 1 if resume_step else None)

    def _add(self, step: int, metrics: dict[str, float]) -> None:
        if self.writer is None:
            return
        for key, value in metrics.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                self.writer.add_scalar(key, float(value), step)

    def on_step(self, step: int, metrics: dict[str, float]) -> bool:
        self._add(step, metrics)
        return False

    def on_eval(self, step: int, metrics: dict[str, float]) -> None:
        self._add(step, metrics)
        if self.writer is not None:
            self.writer.flush()  # a checkpoint's metrics are on disk with it

    def on_end(self, summary: dict[str, Any]) -> None:
        self.close()

    def close(self) -> None:
        """Flush and close the event file (idempotent); the training loop also calls it when a step raises."""
        if self.writer is not None:
            self.writer.close()
            self.writer = None
