"""The learning core's commands end to end through typer's CliRunner on a tiny generated project:
train, recommend, checkpoints list/show/prune, run (legacy setup.txt), and Ctrl-C in a real process."""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import core_helpers as ch
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from whatnext import checkpoints
from whatnext.cli import app
from whatnext.config import Config

K = 5


@pytest.fixture(scope="module")
def runner() -> CliRunner:
    return CliRunner()


def _ok(result) -> None:
    assert result.exit_code == 0, (f"exit {result.exit_code}\nstdout: {result.stdout}\nstderr: {result.stderr}\n"
                                   f"{result.exception!r}")


def _error(result, code: int) -> str:
    """The error text of a failed command (whitespace normalised), checking code, no traceback, empty stdout."""
    assert result.exit_code == code, f"exit {result.exit_code}\nstdout: {result.stdout}\nstderr: {result.stderr}"
    assert "Traceback" not in result.output
    assert result.stdout.strip() == ""
    assert result.stderr.strip().startswith("error:")
    return " ".join(result.stderr.split())


def _one_line(result) -> None:
    assert len(result.stderr.strip().splitlines()) == 1, f"stderr is not one line: {result.stderr!r}"


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project trained once with `whatnext train` (hybrid, 12 steps, a checkpoint every 3)."""
    folder = tmp_path_factory.mktemp("trained")
    cfg = ch.write_project(folder, algorithm="hybrid", checkpoint_every=3, keep_last=10)
    result = CliRunner().invoke(app, ["train", "--config", str(cfg), "--epochs", "1", "--quiet"])
    _ok(result)
    return cfg


@pytest.fixture
def trained_copy(trained: Path, tmp_path: Path) -> Path:
    """A private copy of the trained project, for tests that change it."""
    return ch.copy_project(trained, tmp_path)


def _played(cfg: Path, user: str) -> set[str]:
    ev = pd.read_csv(cfg.parent / "events.csv", dtype=str)
    return set(ev.loc[ev["user_id"] == user, "item_id"])


def _recommend_json(runner: CliRunner, cfg: Path, *args: str) -> dict:
    result = runner.invoke(app, ["recommend", "--config", str(cfg), "--json", *args])
    _ok(result)
    return json.loads(result.stdout)


# ---------------------------------------------------------------- train


def test_train_quiet_writes_metrics_and_checkpoints(trained: Path) -> None:
    run_dir = trained.parent / "models" / "default"
    lines = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    steps = [x for x in lines if "train/actor_loss" in x]
    assert [x["step"] for x in steps] == list(range(1, len(steps) + 1)) and len(steps) >= 3
    assert all("train/critic_loss" in x and np.isfinite(x["train/critic_loss"]) for x in steps)
    assert any(k.startswith("eval/") for x in lines for k in x), "validation metrics at checkpoints"
    infos = checkpoints.listing(run_dir)
    assert [c.step for c in infos] == list(range(3, len(steps) + 1, 3))
    assert checkpoints.marker(run_dir, "latest") == infos[-1].path
    assert checkpoints.marker(run_dir, "best") in [c.path for c in infos]
    assert not (run_dir / checkpoints.LOCK).exists()


def test_best_marker_with_other_cutoffs(runner: CliRunner, tmp_path: Path) -> None:
    cfg = ch.write_project(tmp_path, algorithm="hybrid", checkpoint_every=4, ks="[5]")
    _ok(runner.invoke(app, ["train", "--config", str(cfg), "--epochs", "1", "--quiet"]))
    run_dir = tmp_path / "models" / "default"
    assert any("eval/ndcg@5" in c.metrics for c in checkpoints.listing(run_dir))
    assert checkpoints.marker(run_dir, "best") is not None


def test_train_quiet_prints_plain_progress(runner: CliRunner, tmp_path: Path) -> None:
    cfg = ch.write_project(tmp_path, algorithm="hybrid")
    result = runner.invoke(app, ["train", "--config", str(cfg), "--epochs", "1", "--quiet", "--run", "q"])
    _ok(result)
    out = result.stdout
    assert "step" in out and "checkpoint" in out
    assert "\x1b[" not in out  # plain lines, no terminal control codes
    assert (tmp_path / "models" / "q" / "latest").exists()


def test_train_json_parses(runner: CliRunner, tmp_path: Path) -> None:
    cfg = ch.write_project(tmp_path, algorithm="original")
    result = runner.invoke(app, ["train", "--config", str(cfg), "--epochs", "1", "--json", "--seed", "3"])
    _ok(result)
    summary = json.loads(result.stdout)
    assert summary["status"] == "finished"
    assert summary["steps"] == summary["total_steps"] == 45  # 30 users x 12 positions / batch 8
    assert Path(summary["checkpoint"]).exists()
    assert "train/critic_loss" in summary["metrics"]
    payload = checkpoints.load(Path(summary["checkpoint"]))
    assert payload["seed"] == 3 and payload["algorithm"] == "original"


def test_train_twice_on_a_locked_run_refuses(runner: CliRunner, tmp_path: Path) -> None:
    cfg = ch.write_project(tmp_path, algorithm="hybrid")
    run_dir = tmp_path / "models" / "default"
    run_dir.mkdir(parents=True)
    (run_dir / checkpoints.LOCK).write_text(str(os.getppid()))
    result = runner.invoke(app, ["train", "--config", str(cfg), "--quiet"])
    err = _error(result, 7)
    assert str(os.getppid()) in err


# ---------------------------------------------------------------- recommend


def test_recommend_user_json(runner: CliRunner, trained: Path) -> None:
    r = _recommend_json(runner, trained, "--user", "7", "-k", str(K))
    recs = r["recommendations"]
    assert len(recs) == K and [x["rank"] for x in recs] == list(range(1, K + 1))
    ids = [x["item_id"] for x in recs]
    assert len(set(ids)) == K
    assert not set(ids) & _played(trained, "7")
    d = [x["distance"] for x in recs]
    assert d == sorted(d)
    s = [x["score"] for x in recs]
    assert s == sorted(s, reverse=True)
    assert set(recs[0]["attributes"]) == {"f0", "f1", "f2"}
    assert recs[0]["title"] == f"Song {ids[0]}"
    assert r["user"] == "7" and r["history_length"] == 15


@pytest.mark.skipif(not hasattr(Config().model, "rerank"), reason="this version has no model.rerank")
def test_recommend_with_critic_reranking(runner: CliRunner, tmp_path: Path) -> None:
    cfg = ch.write_project(tmp_path, algorithm="hybrid", rerank=12)
    _ok(runner.invoke(app, ["train", "--config", str(cfg), "--epochs", "1", "--quiet"]))
    for user in ("2", "19"):
        recs = _recommend_json(runner, cfg, "--user", user, "-k", str(K))["recommendations"]
        ids = [x["item_id"] for x in recs]
        assert len(ids) == K == len(set(ids)) and not set(ids) & _played(cfg, user)
    again = _recommend_json(runner, cfg, "--user", "19", "-k", str(K))["recommendations"]
    assert [x["item_id"] for x in again] == ids  # deterministic


def test_recommend_table_for_people(runner: CliRunner, trained: Path) -> None:
    result = runner.invoke(app, ["recommend", "--config", str(trained), "--user", "7", "-k", "3"])
    _ok(result)
    assert "Top 3 for user 7" in result.stdout and "distance" in result.stdout


def test_include_seen_allows_played_items(runner: CliRunner, trained: Path) -> None:
    n_items = 40
    played = _played(trained, "4")
    everything = _recommend_json(runner, trained, "--user", "4", "-k", str(n_items), "--include-seen")
    assert everything["include_seen"] is True
    assert {x["item_id"] for x in everything["recommendations"]} == {str(i) for i in range(n_items)}
    unseen = _recommend_json(runner, trained, "--user", "4", "-k", str(n_items))
    assert {x["item_id"] for x in unseen["recommendations"]} == {str(i) for i in range(n_items)} - played
    top_seen = _recommend_json(runner, trained, "--user", "4", "-k", str(K), "--include-seen")["recommendations"]
    top_unseen = unseen["recommendations"][:K]
    # excluding items can only push the k-th nearest farther away
    assert all(a["distance"] <= b["distance"] + 1e-9 for a, b in zip(top_seen, top_unseen))


def test_recommend_for_a_given_history(runner: CliRunner, trained: Path) -> None:
    r = _recommend_json(runner, trained, "--history", "3,5,11", "-k", str(K))
    ids = [x["item_id"] for x in r["recommendations"]]
    assert len(ids) == K and not {"3", "5", "11"} & set(ids)
    assert r["user"] is None and r["history"] == ["3", "5", "11"]


def test_unknown_user_exits_5(runner: CliRunner, trained: Path) -> None:
    result = runner.invoke(app, ["recommend", "--config", str(trained), "--user", "nobody"])
    err = _error(result, 5)
    assert "nobody" in err and "unknown user" in err and "inspect-data" in err  # a hint how to list users


def test_unknown_user_error_is_one_line_even_with_a_long_path(runner: CliRunner, trained: Path, tmp_path: Path) -> None:
    deep = tmp_path / ("a_rather_long_folder_name_" * 4)
    shutil.copytree(trained.parent, deep)
    result = runner.invoke(app, ["recommend", "--config", str(deep / "whatnext.toml"), "--user", "nobody"])
    _error(result, 5)
    _one_line(result)


def test_unknown_item_in_history_exits_5(runner: CliRunner, trained: Path) -> None:
    result = runner.invoke(app, ["recommend", "--config", str(trained), "--history", "3,no_such_song"])
    err = _error(result, 5)
    assert "no_such_song" in err


def test_no_checkpoint_yet_exits_5_with_a_hint(runner: CliRunner, tmp_path: Path) -> None:
    cfg = ch.write_project(tmp_path)
    result = runner.invoke(app, ["recommend", "--config", str(cfg), "--user", "1"])
    err = _error(result, 5)
    assert "whatnext train" in err


def test_k_larger_than_the_catalogue_exits_2(runner: CliRunner, trained: Path) -> None:
    result = runner.invoke(app, ["recommend", "--config", str(trained), "--user", "1", "-k", "41"])
    err = _error(result, 2)
    assert "41" in err and "40" in err
    _ok(runner.invoke(app, ["recommend", "--config", str(trained), "--user", "1", "-k", "40", "--json"]))


def test_fingerprint_mismatch_exits_4(runner: CliRunner, trained_copy: Path) -> None:
    items_csv = trained_copy.parent / "items.csv"
    items = pd.read_csv(items_csv)
    items.loc[items["item_id"] == 5, "f1"] = 0.123456
    items.to_csv(items_csv, index=False)
    result = runner.invoke(app, ["recommend", "--config", str(trained_copy), "--user", "1"])
    err = _error(result, 4)
    assert "fingerprint" in err or "catalogue" in err


def test_all_users_output_and_force(runner: CliRunner, trained: Path, tmp_path: Path) -> None:
    out = tmp_path / "f.csv"
    args = ["recommend", "--config", str(trained), "--all-users", "--output", str(out), "-k", "3"]
    _ok(runner.invoke(app, args))
    df = pd.read_csv(out, dtype={"user_id": str, "item_id": str})
    assert list(df.columns) == ["user_id", "rank", "item_id", "score", "distance", "title"]
    assert len(df) == 30 * 3 and df["user_id"].nunique() == 30
    for user, rows in df.groupby("user_id"):
        assert list(rows["rank"]) == [1, 2, 3]
        assert not set(rows["item_id"]) & _played(trained, user)
    # the single-user answer agrees with the batch one
    one = _recommend_json(runner, trained, "--user", "7", "-k", "3")
    assert [x["item_id"] for x in one["recommendations"]] == list(df.loc[df["user_id"] == "7", "item_id"])
    before = out.read_bytes()
    err = _error(runner.invoke(app, args), 6)
    assert "--force" in err and out.read_bytes() == before
    _ok(runner.invoke(app, [*args, "--force"]))


# ---------------------------------------------------------------- checkpoints


def test_checkpoints_list_json(runner: CliRunner, trained: Path) -> None:
    result = runner.invoke(app, ["checkpoints", "list", "--config", str(trained), "--json"])
    _ok(result)
    r = json.loads(result.stdout)
    (run,) = r["runs"]
    assert run["run"] == "default"
    cks = run["checkpoints"]
    assert [c["step"] for c in cks] == sorted(c["step"] for c in cks) and len(cks) >= 2
    assert sum(c["latest"] for c in cks) == 1 and cks[-1]["latest"]
    assert sum(c["best"] for c in cks) == 1
    for c in cks:
        assert c["size"] == Path(c["path"]).stat().st_size
        assert "eval/ndcg@10" in c["metrics"]


def test_checkpoints_show_json(runner: CliRunner, trained: Path) -> None:
    result = runner.invoke(app, ["checkpoints", "show", "--config", str(trained), "--json"])
    _ok(result)
    r = json.loads(result.stdout)
    best = checkpoints.marker(trained.parent / "models" / "default", "best")
    assert r["path"] == str(best)
    assert r["model_name"] == "lstm" and r["algorithm"] == "hybrid"
    assert r["model_args"]["hidden_size"] == ch.HIDDEN and r["model_args"]["n_items"] == 40
    assert r["config"]["model"]["window"] == ch.WINDOW
    assert len(r["fingerprint"]) == 16


def test_checkpoints_prune_keep_1(runner: CliRunner, trained_copy: Path) -> None:
    run_dir = trained_copy.parent / "models" / "default"
    before = checkpoints.listing(run_dir)
    assert len(before) >= 3
    best, latest = checkpoints.marker(run_dir, "best"), checkpoints.marker(run_dir, "latest")
    result = runner.invoke(app, ["checkpoints", "prune", "--config", str(trained_copy), "--keep", "1", "--json"])
    _ok(result)
    r = json.loads(result.stdout)
    after = {c.path for c in checkpoints.listing(run_dir)}
    assert after == {best, latest}
    assert {Path(p) for p in r["removed"]} == {c.path for c in before} - {best, latest}
    assert all(p.exists() and p.with_suffix(".json").exists() for p in after)
    for p in r["removed"]:
        assert not Path(p).exists() and not Path(p).with_suffix(".json").exists()
    err = _error(runner.invoke(app, ["checkpoints", "prune", "--config", str(trained_copy), "--keep", "0"]), 2)
    assert "--keep" in err


# ---------------------------------------------------------------- run (legacy setup.txt)


def test_run_with_a_legacy_setup_txt(runner: CliRunner, tmp_path: Path) -> None:
    events, items = ch.frames()
    events.merge(items, on="item_id").to_csv(tmp_path / "long.csv", index=False)
    setup = ("train, {train},\nmodel, lstm,\ndata, long.csv,\nepochs, 64,\n"
             "model_agent_path, weights/agent.pt,\nmodel_critic_path, weights/critic.pt\n")
    (tmp_path / "setup.txt").write_text(setup.format(train="yes"))
    result = runner.invoke(app, ["run", "--config", str(tmp_path / "setup.txt"), "--json"])
    _ok(result)
    r = json.loads(result.stdout)
    # the legacy 'epochs' is a sample count: 64 samples at the default batch size
    assert r["mode"] == "train" and r["status"] == "finished"
    assert r["steps"] == math.ceil(64 / Config().train.batch_size)
    assert (tmp_path / "weights" / "agent.pt").exists() and (tmp_path / "weights" / "critic.pt").exists()
    assert (tmp_path / "models" / "default" / "latest").exists()

    (tmp_path / "setup_infer.txt").write_text(setup.format(train="no"))
    result = runner.invoke(app, ["run", "--config", str(tmp_path / "setup_infer.txt"), "--json", "-k", "4"])
    _ok(result)
    r = json.loads(result.stdout)
    assert r["mode"] == "inference" and r["model"] == "weights/agent.pt"
    assert len(r["recommendations"]) == 5
    for user, recs in r["recommendations"].items():
        assert len(recs) == 4 and not set(recs) & set(events.loc[events["user_id"] == int(user), "item_id"].astype(str))
    result = runner.invoke(app, ["run", "--config", str(tmp_path / "setup_infer.txt")])
    _ok(result)
    assert "Recommendations" in result.stdout


# ---------------------------------------------------------------- Ctrl-C


def test_sigint_saves_a_checkpoint_and_exits_130(tmp_path: Path, runner: CliRunner) -> None:
    cfg = ch.write_project(tmp_path, algorithm="original", epochs=60, checkpoint_every=7)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "whatnext", "train", "--config", str(cfg), "--quiet"],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        seen = []
        deadline = time.monotonic() + 60
        assert proc.stdout is not None
        for line in proc.stdout:  # wait for the first checkpoint line
            seen.append(line)
            if ": checkpoint " in line:
                break
            assert time.monotonic() < deadline, "no checkpoint line within 60 s"
        assert seen and ": checkpoint " in seen[-1], "".join(seen)
        proc.send_signal(signal.SIGINT)
        time.sleep(0.3)  # a second Ctrl-C while the checkpoint is written must not cut the save short
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, f"exit {proc.returncode}\nstdout: {''.join(seen)}{out}\nstderr: {err}"
    assert "resume" in err and "Traceback" not in err
    run_dir = tmp_path / "models" / "default"
    latest = checkpoints.marker(run_dir, "latest")
    assert latest is not None
    checkpoints.verify(latest)
    step = checkpoints.load(latest)["step"]
    assert step >= 7 and step < 60 * 45, "".join(seen) + out + err
    assert f"step {step}" in " ".join(err.split())
    assert f"whatnext train --resume --config {cfg} --run default" in " ".join(err.split())
    assert not (run_dir / checkpoints.LOCK).exists()
    # the hint works: resume (with a shorter plan) continues from the saved step
    result = runner.invoke(app, ["train", "--config", str(cfg), "--resume", "--epochs", "1", "--json"])
    _ok(result)
    summary = json.loads(result.stdout)
    assert summary["start_step"] == step and summary["steps"] == max(step, 45)


def test_interrupt_hint_resumes_to_the_recorded_target_and_a_second_ctrl_c_waits_for_the_save(
        runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C at step 10 of a `--epochs 3` run, Ctrl-C again while the checkpoint is written: the save completes,
    exit 130, and the hint's command (without --epochs) trains on to the 3 epochs the run was started with."""
    import shlex

    from whatnext.cli import render

    cfg = ch.write_project(tmp_path / "my project", algorithm="original", epochs=1, checkpoint_every=1000)
    on_step, save = render.TrainProgress.on_step, checkpoints.save

    def ctrl_c_at_10(self, step, metrics):
        if step == 10:
            signal.raise_signal(signal.SIGINT)
        return on_step(self, step, metrics)

    def ctrl_c_while_saving(run_dir, payload):
        if payload["step"] == 10:
            signal.raise_signal(signal.SIGINT)
            time.sleep(0.05)
        return save(run_dir, payload)

    monkeypatch.setattr(render.TrainProgress, "on_step", ctrl_c_at_10)
    monkeypatch.setattr(checkpoints, "save", ctrl_c_while_saving)
    result = runner.invoke(app, ["train", "--config", str(cfg), "--epochs", "3", "--run", "tty80", "--quiet"])
    assert result.exit_code == 130, result.output
    assert "saving, please wait" in result.stderr and "Traceback" not in result.output
    run_dir = cfg.parent / "models" / "tty80"
    latest = checkpoints.marker(run_dir, "latest")
    checkpoints.verify(latest)
    payload = checkpoints.load(latest)
    assert payload["step"] == 10
    assert payload["target"]["total_steps"] == 135 and payload["target"]["overrides"]["train.epochs"] == 3
    hint = result.stderr.strip().splitlines()[-1]
    assert hint.startswith("error: interrupted at step 10 of 135;") and "resume (to step 135)" in hint
    command = shlex.split(hint.split("with: ", 1)[1])
    assert command == ["whatnext", "train", "--resume", "--config", str(cfg), "--run", "tty80"]
    monkeypatch.undo()
    resumed = runner.invoke(app, [*command[1:], "--json"])
    _ok(resumed)
    summary = json.loads(resumed.stdout)
    assert (summary["start_step"], summary["steps"], summary["total_steps"]) == (10, 135, 135)
    # told otherwise, a resume follows the new target
    more = runner.invoke(app, [*command[1:], "--epochs", "4", "--json"])
    _ok(more)
    assert json.loads(more.stdout)["total_steps"] == 180


def test_run_inference_for_chosen_users(runner: CliRunner, tmp_path: Path) -> None:
    events, items = ch.frames()
    events.merge(items, on="item_id").to_csv(tmp_path / "long.csv", index=False)
    setup = ("train, {train},\nmodel, lstm,\ndata, long.csv,\nepochs, 64,\n"
             "model_agent_path, weights/agent.pt,\nmodel_critic_path, weights/critic.pt\n")
    (tmp_path / "setup.txt").write_text(setup.format(train="yes"))
    _ok(runner.invoke(app, ["run", "--config", str(tmp_path / "setup.txt"), "--quiet"]))
    (tmp_path / "infer.txt").write_text(setup.format(train="no"))
    result = runner.invoke(app, ["run", "--config", str(tmp_path / "infer.txt"), "--user", "7", "-u", "12", "--json", "-k", "3"])
    _ok(result)
    assert list(json.loads(result.stdout)["recommendations"]) == ["7", "12"]
    result = runner.invoke(app, ["run", "--config", str(tmp_path / "infer.txt"), "--users", "9", "--json"])
    _ok(result)
    assert len(json.loads(result.stdout)["recommendations"]) == 9
    result = runner.invoke(app, ["run", "--config", str(tmp_path / "infer.txt"), "--user", "nobody"])
    err = _error(result, 5)
    assert "unknown user 'nobody'" in err
    _one_line(result)
