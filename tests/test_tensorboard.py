"""train.tensorboard: the per-step and validation metrics also go to TensorBoard event files in the run folder,
read back here with tensorboard's own EventAccumulator (what ``tensorboard --logdir models`` shows)."""

from __future__ import annotations

import json
from pathlib import Path

import core_helpers as ch
import pytest
from typer.testing import CliRunner

from whatnext import engine
from whatnext.cli import app
from whatnext.rl import environment
from whatnext.rl.callbacks import Callback

pytest.importorskip("tensorboard")
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator


def _events(run_dir: Path) -> EventAccumulator:
    acc = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})  # 0: keep every event
    acc.Reload()
    return acc


def _steps(acc: EventAccumulator, tag: str) -> list[int]:
    return [e.step for e in acc.Scalars(tag)]


def _jsonl(run_dir: Path) -> list[dict]:
    return [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]


class CrashAt(Callback):
    """Raises after step ``k`` was logged, as a crash between checkpoints would."""

    def __init__(self, k: int) -> None:
        self.k = k

    def on_step(self, step: int, metrics: dict[str, float]) -> bool:
        if step >= self.k:
            raise RuntimeError("crash")
        return False


def test_events_hold_every_step_and_every_validation(tmp_path: Path) -> None:
    cfg = ch.config(tmp_path, "hybrid", samples=7 * ch.BATCH, checkpoint_every=3, tensorboard=True)
    environment.train(cfg, ch.dataset(), evaluator=engine._validator(cfg, ch.dataset()))
    assert list(cfg.run_dir.glob("events.out.tfevents.*"))
    acc = _events(cfg.run_dir)
    tags = set(acc.Tags()["scalars"])
    logged = _jsonl(cfg.run_dir)
    per_step = [x for x in logged if "train/actor_loss" in x]
    assert {k for k in per_step[0] if k != "step"} <= tags  # every per-step metric, under its own key
    assert {"train/actor_loss", "train/critic_loss", "train/samples_per_s", "eval/ndcg@10", "eval/hr@10"} <= tags
    assert _steps(acc, "train/actor_loss") == list(range(1, 8))
    assert _steps(acc, "eval/ndcg@10") == [3, 6, 7]  # one per checkpoint
    # the same numbers as the JSONL log
    assert [e.value for e in acc.Scalars("train/critic_loss")] == pytest.approx([x["train/critic_loss"] for x in per_step])
    evals = [x["eval/ndcg@10"] for x in logged if "eval/ndcg@10" in x]
    assert [e.value for e in acc.Scalars("eval/ndcg@10")] == pytest.approx(evals)


def test_a_resumed_run_drops_the_events_after_its_checkpoint(tmp_path: Path) -> None:
    ds = ch.dataset()
    cfg = ch.config(tmp_path, "original", samples=9 * ch.BATCH, checkpoint_every=3, tensorboard=True)
    with pytest.raises(RuntimeError):
        environment.train(cfg, ds, callback=CrashAt(5))  # steps 4 and 5 logged, checkpoint at 3
    assert _steps(_events(cfg.run_dir), "train/actor_loss") == [1, 2, 3, 4, 5]
    environment.train(cfg, ds, resume=True)
    assert _steps(_events(cfg.run_dir), "train/actor_loss") == list(range(1, 10))  # each step once


def test_a_fresh_run_starts_a_fresh_event_log(tmp_path: Path) -> None:
    ds = ch.dataset()
    cfg = ch.config(tmp_path, "original", samples=4 * ch.BATCH, tensorboard=True)
    environment.train(cfg, ds)
    environment.train(cfg, ds, force=True)
    assert len(list(cfg.run_dir.glob("events.out.tfevents.*"))) == 1
    assert _steps(_events(cfg.run_dir), "train/actor_loss") == [1, 2, 3, 4]


def test_off_by_default(tmp_path: Path) -> None:
    cfg = ch.config(tmp_path, "original", samples=2 * ch.BATCH)
    assert cfg.train.tensorboard is False
    environment.train(cfg, ch.dataset())
    assert not list(cfg.run_dir.glob("events.out.tfevents.*"))


def test_train_tensorboard_flag(tmp_path: Path) -> None:
    config = ch.write_project(tmp_path / "p")
    result = CliRunner().invoke(app, ["train", "--config", str(config), "--tensorboard", "--quiet", "--json"])
    assert result.exit_code == 0, result.output
    run_dir = config.parent / "models" / "default"
    acc = _events(run_dir)
    assert "train/actor_loss" in acc.Tags()["scalars"]
    assert _steps(acc, "train/actor_loss")[-1] == json.loads(result.stdout)["steps"]
