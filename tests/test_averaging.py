"""``whatnext checkpoints average`` (whatnext/rl/averaging.py): the mean of a run's best checkpoints as a run of its
own, validated as training validates, readable by every command; bad requests are one line and change nothing."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import core_helpers as ch
import pytest
import torch
from typer.testing import CliRunner

from whatnext import checkpoints
from whatnext.cli import app
from whatnext.errors import CheckpointError
from whatnext.rl.averaging import mean_weights

KEY = "eval/ndcg@10"


def test_mean_weights_averages_floats_and_keeps_counters() -> None:
    a = {"w": torch.tensor([1.0, 2.0]), "n": torch.tensor(3)}
    b = {"w": torch.tensor([3.0, 6.0]), "n": torch.tensor(5)}
    c = {"w": torch.tensor([2.0, 1.0]), "n": torch.tensor(7)}
    out = mean_weights([a, b, c], "actor")
    assert torch.equal(out["w"], torch.tensor([2.0, 3.0])) and out["w"].dtype == torch.float32
    assert int(out["n"]) == 3  # an integer buffer is the first (best) checkpoint's, not a mean
    with pytest.raises(CheckpointError, match="different entries"):
        mean_weights([a, {"w": a["w"]}], "actor")
    with pytest.raises(CheckpointError, match="shape"):
        mean_weights([a, {"w": torch.zeros(3), "n": torch.tensor(1)}], "critic")


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny run with a validated checkpoint every few steps, all kept."""
    cfg = ch.write_project(tmp_path_factory.mktemp("avg") / "proj", algorithm="hybrid", epochs=3, checkpoint_every=4,
                           keep_last=50)
    done = CliRunner().invoke(app, ["train", "--config", str(cfg), "--quiet"])
    assert done.exit_code == 0, done.output
    return cfg


def _invoke(*args: str):
    return CliRunner().invoke(app, ["checkpoints", "average", *args])


def _digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


def test_average_writes_a_new_run_of_the_mean_of_the_best(trained: Path) -> None:
    run_dir = trained.parent / "models" / "default"
    infos = checkpoints.listing(run_dir)
    assert len(infos) >= 3
    before = _digest(run_dir)
    done = _invoke("--config", str(trained), "--top", "2", "--into", "mean2", "--json")
    assert done.exit_code == 0, done.output
    result = json.loads(done.stdout)
    best2 = sorted(infos, key=lambda c: (-c.metrics[KEY], -c.step))[:2]
    assert [s["checkpoint"] for s in result["sources"]] == [c.path.name for c in best2]
    assert result["best_single"] == best2[0].metrics[KEY] and result["metric"] == KEY
    out_dir = trained.parent / "models" / "mean2"
    pt = checkpoints.marker(out_dir, "best")
    assert pt is not None and pt == checkpoints.marker(out_dir, "latest") and str(pt) == result["checkpoint"]
    saved = checkpoints.load(pt)  # verified against its sidecar, as every command loads it
    sources = [checkpoints.load(c.path) for c in best2]
    for part in ("actor", "critic"):
        for k, v in saved[part].items():
            if v.is_floating_point():
                want = ((sources[0][part][k].double() + sources[1][part][k].double()) / 2).to(v.dtype)
                assert torch.equal(v, want), (part, k)
    assert saved["metrics"][KEY] == result["averaged"] and saved["best_metric"] == result["averaged"]
    assert [s["step"] for s in saved["averaged_from"]] == [c.step for c in best2]
    assert _digest(run_dir) == before  # the source run is read, never written
    # the averaged run is an ordinary run: evaluation loads it and scores what validation recorded
    ev = CliRunner().invoke(app, ["eval", "--config", str(trained), "--run", "mean2", "--split", "valid", "--json"])
    assert ev.exit_code == 0, ev.output
    assert json.loads(ev.stdout)["rows"][0][KEY] == pytest.approx(result["averaged"], abs=1e-12)


@pytest.mark.parametrize("args, code, words", [
    (["--top", "1"], 2, "--top is 1, expected an integer >= 2"),
    (["--into", "default"], 2, "--into names the source run"),
    (["--run", "nope"], 5, "no run folder"),
    (["--into", "../elsewhere"], 2, "not a plain folder name"),
])
def test_bad_requests_are_one_line_and_write_nothing(trained: Path, args: list[str], code: int, words: str) -> None:
    models = trained.parent / "models"
    runs = sorted(p.name for p in models.iterdir())
    done = _invoke("--config", str(trained), *args)
    assert done.exit_code == code, done.output
    lines = [ln for ln in done.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and words in lines[0] and "Traceback" not in done.output, done.output
    assert sorted(p.name for p in models.iterdir()) == runs


def test_an_existing_run_is_never_overwritten(trained: Path) -> None:
    first = _invoke("--config", str(trained), "--top", "3", "--into", "taken")
    assert first.exit_code == 0, first.output
    assert "use it with --run taken" in first.output
    folder = trained.parent / "models" / "taken"
    before = _digest(folder)
    again = _invoke("--config", str(trained), "--top", "2", "--into", "taken")
    assert again.exit_code == 6 and "already has checkpoints" in again.output, again.output
    assert _digest(folder) == before


def test_a_run_without_two_validated_checkpoints_is_refused(tmp_path: Path) -> None:
    cfg = ch.write_project(tmp_path / "proj", algorithm="hybrid", epochs=1)  # one checkpoint at the end
    assert CliRunner().invoke(app, ["train", "--config", str(cfg), "--quiet"]).exit_code == 0
    done = _invoke("--config", str(cfg))
    assert done.exit_code == 4 and "at least 2 validated checkpoints" in done.output, done.output
    assert "train.keep_last" in done.output
    assert not (cfg.parent / "models" / "default-avg3").exists()


def test_a_baseline_s_run_is_refused(trained: Path) -> None:
    import shutil

    from whatnext.evaluation.baseline_runs import _write_record

    models = trained.parent / "models"
    shutil.copytree(models / "default", models / "baseline-copy")  # validated checkpoints, but a baseline's run
    _write_record(models / "baseline-copy", {"baseline": "sasrec"})
    done = _invoke("--config", str(trained), "--run", "baseline-copy")
    assert done.exit_code == 2 and "the sasrec baseline's" in done.output, done.output
    assert not (models / "baseline-copy-avg3").exists()
