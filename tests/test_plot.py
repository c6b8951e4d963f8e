"""whatnext plot data|train|eval: each command on a tiny trained project writes non-empty figures of the
right format and size, prints their paths (and --json), and fails with one line and its exit code."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import core_helpers as ch
import numpy as np
import pytest
from typer.testing import CliRunner

from whatnext import engine
from whatnext.cli import app

pytest.importorskip("matplotlib")

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny project with two trained runs: default (3 checkpoints) and b (another seed)."""
    config = ch.write_project(tmp_path_factory.mktemp("plot") / "p", algorithm="hybrid", epochs=2, checkpoint_every=10)
    engine.train(config)
    engine.train(config, {"paths.run": "b", "train.seed": 1})
    return config


def _invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, [str(a) for a in args])
    return result.exit_code, result.stdout, result.stderr


def _png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == PNG and head[12:16] == b"IHDR", f"{path} is not a PNG"
    return struct.unpack(">II", head[16:24])


def _check_png(path: Path, min_w: int = 600, max_w: int = 2000) -> None:
    w, h = _png_size(path)
    assert min_w <= w <= max_w and 300 <= h <= 2000, (path, w, h)
    assert 5_000 < path.stat().st_size < 400_000, path


def _check_svg(path: Path) -> None:
    root = ET.parse(path).getroot()
    assert root.tag.endswith("svg") and float(root.get("width", "0").rstrip("pt")) > 300
    assert path.stat().st_size > 5_000


def _plotted(stdout: str, out: Path, names: list[str], ext: str) -> list[Path]:
    result = json.loads(stdout)
    written = [Path(p) for p in result["written"]]
    assert written == [out / f"{n}.{ext}" for n in names]
    return written


def test_plot_data_png(project: Path, tmp_path: Path) -> None:
    code, out, err = _invoke("plot", "data", "--config", project, "--output", tmp_path, "--json")
    assert code == 0, err
    for path in _plotted(out, tmp_path, ["data", "data-features"], "png"):
        _check_png(path)
    shown = json.loads(out)
    described = engine.inspect_data(project)
    assert shown["gini"] == pytest.approx(described["events_per_item"]["gini"])
    assert shown["top1pct_share"] == pytest.approx(described["events_per_item"]["top1pct_share"])


def test_plot_data_svg_and_plain_output(project: Path, tmp_path: Path) -> None:
    code, out, err = _invoke("plot", "data", "--config", project, "--output", tmp_path, "--format", "svg")
    assert code == 0, err
    assert f"wrote {tmp_path / 'data.svg'}" in out.replace("\n", "")
    _check_svg(tmp_path / "data.svg")
    _check_svg(tmp_path / "data-features.svg")


def test_plot_train_overlays_runs(project: Path, tmp_path: Path) -> None:
    code, out, err = _invoke("plot", "train", "--config", project, "--run", "default", "--run", "b",
                             "--output", tmp_path, "--json")
    assert code == 0, err
    (path,) = _plotted(out, tmp_path, ["train"], "png")
    _check_png(path)
    assert json.loads(out)["steps"] == {"default": 24, "b": 24}
    from whatnext.plots.training import _train_panels, read_metrics

    keys = set(read_metrics(project.parent / "models" / "default" / "metrics.jsonl")[0])
    titles = [t for _, t, _ in _train_panels(keys)]  # the project sums two rewards: each has its panel
    assert "reward: diversity" in titles and "reward: next item" in titles and "throughput" in titles
    code, out, err = _invoke("plot", "train", "--config", project, "--output", tmp_path / "svg", "--format", "svg", "--json")
    assert code == 0, err
    _check_svg(_plotted(out, tmp_path / "svg", ["train"], "svg")[0])


def test_plot_eval_with_seed_spread_and_frontier(project: Path, tmp_path: Path) -> None:
    seeds = tmp_path / "seeds.json"  # the shape bench/seeds.py --json writes
    seeds.write_text(json.dumps({"seeds": [0, 1], "results": [
        {"model": "agent", "seed": s, "split": "valid", "include_seen": False,
         "metrics": {"eval/ndcg@10": 0.1 + s / 100, "eval/hr@10": 0.2, "eval/coverage@10": 0.4, "eval/ild@10": 0.5}}
        for s in (0, 1)]}))
    code, out, err = _invoke("plot", "eval", "--config", project, "--seeds", seeds, "--diversity", "0,0.5",
                             "--output", tmp_path, "--json")
    assert code == 0, err
    for path in _plotted(out, tmp_path, ["eval-models", "eval-frontier"], "png"):
        _check_png(path)
    result = json.loads(out)
    assert result["seed_models"] == ["agent"] and result["models"] == ["agent"]
    assert [p["diversity"] for p in result["frontier"]] == [0.0, 0.5]
    plain = engine.evaluate(project)["rows"][0]
    assert result["frontier"][0]["ndcg@10"] == pytest.approx(plain["eval/ndcg@10"])  # W=0 is the plain ranking


def test_plot_eval_without_frontier_svg(project: Path, tmp_path: Path) -> None:
    code, out, err = _invoke("plot", "eval", "--config", project, "--diversity", "", "--format", "svg",
                             "--output", tmp_path, "--json")
    assert code == 0, err
    _check_svg(_plotted(out, tmp_path, ["eval-models"], "svg")[0])


@pytest.mark.parametrize("command", ["train", "eval"])
def test_an_unknown_run_is_one_line_exit_5(project: Path, tmp_path: Path, command: str) -> None:
    code, out, err = _invoke("plot", command, "--config", project, "--run", "nope", "--output", tmp_path)
    assert code == 5, (out, err)
    assert len(err.strip().splitlines()) == 1 and "nope" in err
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize(("args", "code", "words"), [
    (["--format", "jpg"], 2, "png or svg"),
    (["--format", "png"], 6, "--force"),
])
def test_bad_format_and_existing_files(project: Path, tmp_path: Path, args: list[str], code: int, words: str) -> None:
    (tmp_path / "train.png").write_bytes(b"old")
    got, _, err = _invoke("plot", "train", "--config", project, "--output", tmp_path, *args)
    assert got == code and words in err and len(err.strip().splitlines()) == 1
    assert (tmp_path / "train.png").read_bytes() == b"old"
    got, _, err = _invoke("plot", "train", "--config", project, "--output", tmp_path, "--force")
    assert got == 0, err
    _check_png(tmp_path / "train.png")


def test_bad_seeds_file_and_weights(project: Path, tmp_path: Path) -> None:
    (tmp_path / "s.json").write_text("[1, 2]")
    for args, words in ((["--seeds", tmp_path / "s.json"], "bench/seeds.py --json"),
                        (["--seeds", tmp_path / "none.json"], "cannot read"),
                        (["--diversity", "0,x"], "numbers separated by commas"),
                        (["--diversity", "-1"], ">= 0")):
        code, _, err = _invoke("plot", "eval", "--config", project, "--output", tmp_path / "o", *args)
        assert code == 2 and words in err and len(err.strip().splitlines()) == 1, (args, err)


def test_smoothing_skips_gaps() -> None:
    from whatnext.plots.style import smooth

    y = np.array([1.0, np.nan, 3.0, 5.0])
    assert smooth(y, 2) == pytest.approx([1.0, 1.0, 3.0, 4.0])
    assert smooth(y, 1)[2] == 3.0


def test_seed_spread_reads_one_protocol() -> None:
    from whatnext.plots.evaluation import seed_spread

    rec = [{"model": "agent", "seed": s, "split": sp, "include_seen": seen, "metrics": {"eval/ndcg@10": v}}
           for s, sp, seen, v in ((0, "test", False, 0.1), (1, "test", False, 0.2), (0, "test", True, 0.9))]
    assert seed_spread({"results": rec}, "test", False) == {"agent": {"eval/ndcg@10": [0.1, 0.2]}}
    assert seed_spread(None, "test", False) == {}


def test_help_imports_neither_matplotlib_nor_torch() -> None:
    script = textwrap.dedent("""
        import sys
        from typer.testing import CliRunner
        from whatnext.cli import app
        for args in (["--help"], ["plot", "--help"], ["plot", "train", "--help"]):
            assert CliRunner().invoke(app, args).exit_code == 0, args
        bad = sorted(m for m in sys.modules if m.split(".")[0] in ("matplotlib", "torch", "tensorboard"))
        assert not bad, bad
        print("clean")
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=False, timeout=120)
    assert out.returncode == 0 and "clean" in out.stdout, out.stderr
