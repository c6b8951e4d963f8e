"""Learned baselines are trained once, as runs of their own, with the agent's budget, and loaded afterwards.

Tiny projects (tests/core_helpers.py): an agent trains in about a second, the LSTM baseline in less.
Whether a call trained is read from spies on the training loop and on every learning step, never
from the wall clock.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import core_helpers as ch
import pandas as pd
import pytest
from typer.testing import CliRunner

from whatnext import engine
from whatnext.cli import app
from whatnext.config import load_config
from whatnext.data import load_dataset
from whatnext.errors import Interrupted
from whatnext.evaluation import baseline_runs as br
from whatnext.evaluation import baselines as bl
from whatnext.evaluation.protocol import evaluate as protocol_evaluate
from whatnext.rl import environment
from whatnext.rl.agent import Agent
from whatnext.rl.callbacks import Callback

AGENT_EPOCHS = 2  # the agent trains 2 epochs; the config file says 1


@pytest.fixture(autouse=True)
def lstm_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """The caching is tested on one learned baseline, the LSTM (tests/test_sasrec.py runs the sasrec one)."""
    monkeypatch.delitem(bl.BASELINES, "sasrec")


class Spy:
    """Counts calls of the training loop and learning steps (every one, whoever runs it)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.loops = self.steps = 0
        loop, step = environment.train, Agent.propagate

        def counting_loop(*a: Any, **kw: Any) -> Any:
            self.loops += 1
            return loop(*a, **kw)

        def counting_step(agent: Agent, *a: Any, **kw: Any) -> Any:
            self.steps += 1
            return step(agent, *a, **kw)

        monkeypatch.setattr(environment, "train", counting_loop)
        monkeypatch.setattr(Agent, "propagate", counting_step)

    def reset(self) -> None:
        self.loops = self.steps = 0


class Steps(Callback):
    """The progress protocol as the CLI's bar sees it."""

    def __init__(self, stop_at: int | None = None) -> None:
        self.started: list[dict[str, Any]] = []
        self.steps: list[int] = []
        self.ended = 0
        self.stop_at = stop_at

    def on_start(self, info: dict[str, Any]) -> None:
        self.started.append(info)

    def on_step(self, step: int, metrics: dict[str, float]) -> bool:
        self.steps.append(step)
        return step == self.stop_at

    def on_end(self, summary: dict[str, Any]) -> None:
        self.ended += 1


@pytest.fixture
def project(tmp_path: Path) -> Path:
    cfg = ch.write_project(tmp_path / "p", algorithm="hybrid", epochs=1)
    engine.train(cfg, {"train.epochs": AGENT_EPOCHS})
    return cfg


def lstm_row(result: dict[str, Any]) -> dict[str, Any]:
    return next(r for r in result["rows"] if r["eval/model"] == "lstm")


def run_of(result: dict[str, Any]) -> dict[str, Any]:
    (run,) = result["baselines"]["runs"]
    return run


def test_second_eval_trains_nothing_and_both_protocols_share_one_training(project: Path, monkeypatch) -> None:
    spy = Spy(monkeypatch)
    progress = Steps()
    first = engine.evaluate(project, baselines=True, callback=progress)
    assert spy.loops == 1 and spy.steps > 0
    assert progress.steps[-1] == spy.steps and progress.ended == 1  # the caller's callback saw the training
    assert "lstm baseline" in progress.started[0]["algorithm"]
    b = first["baselines"]
    assert b["trained"] == ["lstm"] and b["loaded"] == [] and "lstm" not in b["fitted"]
    assert run_of(first)["status"] == "trained" and run_of(first)["steps"] == spy.steps
    assert b["seconds"] >= run_of(first)["seconds"] > 0

    spy.reset()
    progress = Steps()
    again = engine.evaluate(project, baselines=True, callback=progress)
    kept = engine.evaluate(project, baselines=True, include_seen=True, callback=progress)
    assert spy.loops == 0 and spy.steps == 0 and progress.started == []
    for r in (again, kept):
        assert r["baselines"]["loaded"] == ["lstm"] and r["baselines"]["trained"] == []
        assert run_of(r)["status"] == "loaded" and run_of(r)["run"] == run_of(first)["run"]
    assert again["rows"] == first["rows"]
    assert lstm_row(kept) != lstm_row(first)  # the other protocol, scored with the same network


def test_the_baseline_gets_the_budget_the_agent_trained_with(project: Path) -> None:
    result = engine.evaluate(project, baselines=True)
    run = Path(run_of(result)["path"])
    assert run.parent == Path(result["checkpoint"]).parents[1]  # inside the models folder
    payload = engine.show_checkpoint(project, run=run.name)
    assert payload["config"]["train"]["epochs"] == AGENT_EPOCHS  # the agent's, not the file's 1
    assert load_config(project).train.epochs == 1
    assert payload["config"]["train"]["rl_weight"] == 0.0 and payload["config"]["model"]["rerank"] == 0
    agent = engine.show_checkpoint(project)
    assert payload["step"] == agent["step"]  # the same steps: epochs x the same batches


def test_same_figures_as_a_freshly_trained_baseline(project: Path) -> None:
    result = engine.evaluate(project, baselines=True, split="test")
    cfg = load_config(project, {"train.epochs": AGENT_EPOCHS, "eval.split": "test"})
    ds = load_dataset(cfg)
    fresh = bl.SupervisedLSTMBaseline(config=cfg)
    fresh.fit(ds)  # in memory, the way eval trained it before runs were cached
    agent, _ = engine.load_agent(cfg, ds)
    emb = agent.diversity_space()[0]
    from whatnext.rl import rewards

    row = protocol_evaluate(fresh, ds, "test", tuple(cfg.eval.ks), False, embeddings=emb,
                            population_sigma=rewards.population_sigma(ds.histories, emb), window=cfg.model.window)
    assert row == lstm_row(result)


def test_cache_key_follows_data_and_budget_not_bookkeeping(project: Path) -> None:
    cfg = load_config(project)
    ds = load_dataset(cfg)
    trained = engine.show_checkpoint(project)["config"]

    def key(conf: dict[str, Any], dataset: Any = ds) -> str:
        return br.key_hash(br.cache_key("lstm", br.baseline_config(cfg, conf)[0], dataset))

    base = key(trained)
    for section, k, v in (("train", "epochs", 3), ("train", "batch_size", 4), ("train", "samples", 100),
                          ("train", "seed", 1), ("train", "actor_lr", 0.01), ("model", "hidden_size", 4)):
        changed = json.loads(json.dumps(trained))
        changed[section][k] = v
        assert key(changed) != base, (section, k)
    for section, k, v in (("train", "checkpoint_every", 7), ("train", "keep_last", 9), ("train", "threads", 2),
                          ("train", "rewards", {"hit": 1.0}), ("train", "noise", 0.3), ("model", "rerank", 20)):
        changed = json.loads(json.dumps(trained))
        changed[section][k] = v
        assert key(changed) == base, (section, k)
    events = pd.read_csv(project.parent / "events.csv")
    events.loc[3, "item_id"] = (events.loc[3, "item_id"] + 1) % 40  # one training event, same catalogue
    other = ch.dataset(events, pd.read_csv(project.parent / "items.csv"))
    assert other.catalogue.fingerprint() == ds.catalogue.fingerprint()
    assert key(trained, other) != base


def test_changed_budget_or_data_retrains_and_says_why(project: Path, monkeypatch) -> None:
    first = engine.evaluate(project, baselines=True)
    assert run_of(first)["reason"] == "no cached run yet"
    engine.train(project, {"train.epochs": AGENT_EPOCHS + 1}, force=True)
    spy = Spy(monkeypatch)
    more = engine.evaluate(project, baselines=True)
    assert spy.loops == 1 and run_of(more)["status"] == "trained" and run_of(more)["run"] != run_of(first)["run"]
    assert run_of(more)["reason"] == f"train.epochs {AGENT_EPOCHS} -> {AGENT_EPOCHS + 1} since {run_of(first)['run']}"

    events_csv = project.parent / "events.csv"
    events = pd.read_csv(events_csv)
    events.loc[3, "item_id"] = (events.loc[3, "item_id"] + 1) % 40  # the agent still loads: same catalogue
    events.to_csv(events_csv, index=False)
    spy.reset()
    changed = engine.evaluate(project, baselines=True)
    assert spy.loops == 1 and run_of(changed)["status"] == "trained"
    assert run_of(changed)["reason"].startswith("the data changed (")


def _flip_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("damage", ["flipped byte", "no sidecar", "truncated", "latest names a missing file"])
def test_a_corrupt_cached_baseline_is_retrained_not_trusted(project: Path, monkeypatch, damage: str) -> None:
    first = engine.evaluate(project, baselines=True)
    run = Path(run_of(first)["path"])
    (pt,) = run.glob("ckpt-*.pt")
    if damage == "flipped byte":
        _flip_byte(pt)
    elif damage == "no sidecar":
        pt.with_suffix(".json").unlink()
    elif damage == "truncated":
        pt.write_bytes(pt.read_bytes()[: pt.stat().st_size // 2])
    else:
        pt.with_suffix(".json").unlink()
        pt.unlink()
    spy = Spy(monkeypatch)
    again = engine.evaluate(project, baselines=True)
    assert spy.loops == 1 and run_of(again)["status"] == "trained"
    (warning,) = again["baselines"]["warnings"]
    assert "\n" not in warning and str(pt) in warning and warning.endswith("training it again"), warning
    assert again["rows"] == first["rows"]  # the same network again
    spy.reset()
    assert engine.evaluate(project, baselines=True)["baselines"]["loaded"] == ["lstm"] and spy.loops == 0


def test_cli_eval_shows_progress_then_loads_and_lists_the_baseline_run(project: Path) -> None:
    runner = CliRunner()
    first = runner.invoke(app, ["eval", "--config", str(project), "--baselines", "--json"])
    assert first.exit_code == 0, first.output
    result = json.loads(first.stdout)
    assert result["baselines"]["trained"] == ["lstm"]
    assert "lstm baseline" in first.stderr and "step" in first.stderr  # progress on stderr beside --json
    again = runner.invoke(app, ["eval", "--config", str(project), "--baselines", "--json"])
    assert json.loads(again.stdout)["baselines"]["loaded"] == ["lstm"] and again.stderr == ""
    listed = runner.invoke(app, ["checkpoints", "list", "--config", str(project), "--json"])
    runs = {r["run"]: r for r in json.loads(listed.stdout)["runs"]}
    name = run_of(result)["run"]
    assert runs[name]["kind"] == "baseline" and runs[name]["baseline"] == "lstm"
    assert runs["default"]["kind"] == "agent" and len(runs[name]["checkpoints"]) == 1
    table = runner.invoke(app, ["checkpoints", "list", "--config", str(project)])
    assert table.exit_code == 0 and f"Run {name} · the lstm baseline" in " ".join(table.stdout.split())


def test_cli_corrupt_cache_is_one_warning_line(project: Path) -> None:
    runner = CliRunner()
    result = json.loads(runner.invoke(app, ["eval", "--config", str(project), "--baselines", "--json"]).stdout)
    (pt,) = Path(run_of(result)["path"]).glob("ckpt-*.pt")
    _flip_byte(pt)
    again = runner.invoke(app, ["eval", "--config", str(project), "--baselines", "--json"])
    assert again.exit_code == 0
    warnings = [ln for ln in again.stderr.splitlines() if "warning" in ln]
    assert len(warnings) == 1 and f"{pt}: checksum mismatch" in warnings[0], again.stderr


def test_an_unwritable_cache_is_a_one_line_error(project: Path) -> None:
    result = engine.evaluate(project, baselines=True)
    run = Path(run_of(result)["path"])
    for p in run.iterdir():
        p.unlink()
    run.rmdir()
    run.write_text("not a folder")
    out = CliRunner().invoke(app, ["eval", "--config", str(project), "--baselines"])
    assert out.exit_code == 7, out.output
    assert out.stderr == (f"error: {run}: is not a folder, and the lstm baseline's run goes there; "
                          f"move it away and evaluate again\n"), out.stderr


def test_an_interrupted_baseline_continues_where_it_stopped(project: Path, tmp_path: Path) -> None:
    whole = engine.evaluate(ch.copy_project(project, tmp_path), baselines=True)  # uninterrupted, in a copy
    with pytest.raises(Interrupted, match="stopped at step 3 of .*continues it"):
        engine.evaluate(project, baselines=True, callback=Steps(stop_at=3))
    progress = Steps()
    resumed = engine.evaluate(project, baselines=True, callback=progress)
    assert run_of(resumed)["status"] == "resumed" and progress.steps[0] == 4
    assert resumed["baselines"]["trained"] == ["lstm"]
    assert lstm_row(resumed) == lstm_row(whole)  # bit for bit as if never stopped


def test_a_fifo_as_the_baseline_record_is_not_opened(tmp_path: Path) -> None:
    from whatnext.evaluation.baseline_runs import RECORD, run_record

    run = tmp_path / "baseline-lstm-x"
    run.mkdir()
    os.mkfifo(run / RECORD)
    assert run_record(run) is None  # opening it for reading would block forever
