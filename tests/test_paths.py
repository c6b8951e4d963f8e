"""Paths: relative paths in a config resolve against the config file's folder, whatever the working
directory; and whatnext writes only where it was asked to: the models folder, the legacy model paths and
an --output file. (test_config.py checks the resolution itself; this runs the commands.)"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import core_helpers as ch
import pytest
from typer.testing import CliRunner

from whatnext.cli import app


def _files(root: Path) -> dict[str, str]:
    """Every file under ``root`` (relative path -> SHA-256)."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in root.rglob("*") if p.is_file()}


def _ok(result) -> None:
    assert result.exit_code == 0, f"exit {result.exit_code}\nstdout: {result.stdout}\nstderr: {result.stderr}"


def test_commands_from_another_folder_write_only_where_asked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = tmp_path / "project"
    cfg = ch.write_project(project, algorithm="hybrid", checkpoint_every=6)
    text = cfg.read_text().replace('models_dir = "models"',
                                   'models_dir = "models"\nmodel_agent_path = "weights/agent.pt"\n'
                                   'model_critic_path = "weights/critic.pt"')
    cfg.write_text(text)
    elsewhere = tmp_path / "elsewhere"
    home = tmp_path / "home"
    out_dir = tmp_path / "out"
    for d in (elsewhere, home, out_dir):
        d.mkdir()
    monkeypatch.chdir(elsewhere)
    monkeypatch.setenv("HOME", str(home))
    before = _files(tmp_path)

    rel_cfg = os.path.relpath(cfg, elsewhere)  # ../project/whatnext.toml
    runner = CliRunner()
    train = runner.invoke(app, ["train", "--config", rel_cfg, "--json"])
    _ok(train)
    summary = json.loads(train.stdout)
    assert Path(summary["run_dir"]).resolve() == (project / "models" / "default").resolve()
    rec = runner.invoke(app, ["recommend", "--config", rel_cfg, "--user", "7", "--json"])
    _ok(rec)
    assert Path(json.loads(rec.stdout)["checkpoint"]).resolve().parent == (project / "models" / "default").resolve()
    _ok(runner.invoke(app, ["recommend", "--config", rel_cfg, "--all-users", "--output", "../out/top.csv"]))
    _ok(runner.invoke(app, ["eval", "--config", rel_cfg, "--json"]))
    _ok(runner.invoke(app, ["checkpoints", "list", "--config", rel_cfg, "--json"]))
    _ok(runner.invoke(app, ["checkpoints", "show", "--config", rel_cfg, "--json"]))
    _ok(runner.invoke(app, ["inspect-data", "--config", rel_cfg, "--json"]))

    after = _files(tmp_path)
    changed = {p for p in set(before) | set(after) if before.get(p) != after.get(p)}
    allowed = ("project/models/default/", "project/weights/")
    stray = sorted(p for p in changed if not p.startswith(allowed) and p != "out/top.csv")
    assert not stray, f"written outside the models folder, the legacy paths and --output: {stray}"
    assert "out/top.csv" in after
    assert {"project/weights/agent.pt", "project/weights/critic.pt"} <= set(after)
    assert not list(elsewhere.iterdir()), "something was written into the working directory"
    assert not list(home.iterdir()), "something was written into the home folder"
    # the inputs are untouched
    for name in ("whatnext.toml", "events.csv", "items.csv"):
        assert before[f"project/{name}"] == after[f"project/{name}"]


def test_relative_paths_do_not_follow_the_working_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A decoy events.csv in the working directory is not picked up: the config's folder decides."""
    project = tmp_path / "project"
    cfg = ch.write_project(project, algorithm="hybrid")
    decoy = tmp_path / "cwd"
    decoy.mkdir()
    (decoy / "events.csv").write_text("user_id,item_id,timestamp\nx,y,1\n")
    (decoy / "items.csv").write_text("item_id,f0\ny,0.5\n")
    monkeypatch.chdir(decoy)
    result = CliRunner().invoke(app, ["inspect-data", "--config", str(cfg), "--json"])
    _ok(result)
    report = json.loads(result.stdout)
    assert report["users"] == 30 and report["items"] == 40
    assert Path(report["source"]).resolve() == (project / "events.csv").resolve()
