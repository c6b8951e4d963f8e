"""The CLI at the terminal (issue #10): tables and the progress bar at 80 columns, the score column,
attribute values as written, --version, -h, flags without a metavar, examples in every help,
--set, JSON errors, prune --dry-run, all-users files named as the data."""

from __future__ import annotations

import json
import re
from pathlib import Path

import core_helpers as ch
import pandas as pd
import pytest
from typer.testing import CliRunner

from whatnext import __version__, checkpoints
from whatnext.cli import app
from whatnext.cli.common import parse_sets

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
TEMPOS = [90.4, 120.0, 80.0, 101.3, 99.9, 87.65, 110.15, 95.55]


def _ok(result) -> None:
    assert result.exit_code == 0, (f"exit {result.exit_code}\nstdout: {result.stdout}\nstderr: {result.stderr}\n"
                                   f"{result.exception!r}")


def _one_line(result, code: int) -> str:
    assert result.exit_code == code, f"exit {result.exit_code}\nstdout: {result.stdout}\nstderr: {result.stderr}"
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, f"stderr is not one line: {result.stderr!r}"
    assert "Traceback" not in result.output and result.stdout.strip() == ""
    return lines[0]


@pytest.fixture(scope="module")
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture(scope="module")
def wide_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A trained tiny project with 8 features (one of them a tempo with decimals), titles and long artist names."""
    folder = tmp_path_factory.mktemp("wide")
    cfg = ch.write_project(folder, algorithm="hybrid", d=8, checkpoint_every=3, keep_last=10)
    items = pd.read_csv(folder / "items.csv")
    items["f7"] = [TEMPOS[i % len(TEMPOS)] for i in range(len(items))]
    items["artist"] = [f"The Rather Long Band Name Number {i}" for i in range(len(items))]
    items.to_csv(folder / "items.csv", index=False)
    _ok(CliRunner().invoke(app, ["train", "--config", str(cfg), "--epochs", "1", "--quiet"]))
    return cfg


def _table_lines(text: str) -> list[str]:
    return [ln for ln in text.splitlines() if ln.startswith(("│", "┃"))]


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip("│┃").split("│" if line.startswith("│") else "┃")]


# ---------------------------------------------------------------- 80 columns


def test_recommend_table_fits_80_columns_and_never_cuts_a_number(runner: CliRunner, wide_project: Path) -> None:
    result = runner.invoke(app, ["recommend", "--config", str(wide_project), "--user", "7", "-k", "5"],
                           env={"COLUMNS": "80"})
    _ok(result)
    out = result.stdout
    # the table fits; the notes under it are one line each however long (the terminal folds them, and a path
    # broken by an inserted newline cannot be copied)
    assert all(len(ln) <= 80 for ln in ch.framed(out)), out
    footer = [ln for ln in out.splitlines() if "checkpoint " in ln]
    assert len(footer) == 1 and footer[0].rstrip().endswith(".pt"), out
    header = _cells(_table_lines(out)[0])
    assert header[:2] == ["rank", "item"] and "score" in header and "…" not in "".join(header)
    rows = [_cells(ln) for ln in _table_lines(out)[1:]]
    numeric = [i for i, h in enumerate(header) if h in ("rank", "score", "distance") or re.fullmatch(r"f\d", h)]
    assert len(rows) >= 5 and numeric
    for row in rows:
        for i in numeric:
            if row[i]:  # a folded text column continues on the next line: its other cells are empty
                assert re.fullmatch(r"-?\d+(\.\d+)?", row[i]), (header[i], row[i], out)
    assert "not shown at 80 columns" in out and "--wide" in out
    # --wide shows every attribute whatever the width; --columns chooses
    wide = runner.invoke(app, ["recommend", "--config", str(wide_project), "--user", "7", "-k", "5", "--wide"],
                         env={"COLUMNS": "80"})
    _ok(wide)
    assert all(f"f{j}" in _cells(_table_lines(wide.stdout)[0]) for j in range(8))
    chosen = runner.invoke(app, ["recommend", "--config", str(wide_project), "--user", "7", "-k", "5",
                                 "--columns", "rank,item,f7,score"], env={"COLUMNS": "80"})
    _ok(chosen)
    assert _cells(_table_lines(chosen.stdout)[0]) == ["rank", "item", "f7", "score"]
    bad = runner.invoke(app, ["recommend", "--config", str(wide_project), "--user", "7", "--columns", "rank,nope"])
    assert "nope" in _one_line(bad, 2)


def test_eval_tables_fit_80_columns(runner: CliRunner, wide_project: Path) -> None:
    result = runner.invoke(app, ["eval", "--config", str(wide_project)], env={"COLUMNS": "80"})
    _ok(result)
    out = result.stdout
    assert all(len(ln) <= 80 for ln in ch.framed(out)), out
    headers = [_cells(ln) for ln in _table_lines(out) if ln.startswith("┃")]
    shown = [h for hs in headers for h in hs if h != "model"]
    assert all(h[0] == "model" for h in headers)
    assert "ndcg@10" in shown and "diversity_reward@1" in shown and not any("…" in h for h in shown)
    for ln in _table_lines(out):
        if ln.startswith("│"):
            assert all(re.fullmatch(r"-?\d+\.\d{4}", c) for c in _cells(ln)[1:]), ln
    wide = runner.invoke(app, ["eval", "--config", str(wide_project), "--wide"], env={"COLUMNS": "80"})
    _ok(wide)
    assert len([ln for ln in _table_lines(wide.stdout) if ln.startswith("┃")]) == 1


def test_score_is_non_increasing_and_attributes_are_as_written(runner: CliRunner, wide_project: Path) -> None:
    for user in ("3", "7", "19"):
        result = runner.invoke(app, ["recommend", "--config", str(wide_project), "--user", user, "-k", "10", "--json"])
        _ok(result)
        r = json.loads(result.stdout)
        scores = [x["score"] for x in r["recommendations"]]
        assert scores == sorted(scores, reverse=True) and r["ranked_by"] == "score"
        for x in r["recommendations"]:
            assert x["attributes"]["f7"] in TEMPOS  # 90.4, not 90.4000015258789
    text = runner.invoke(app, ["recommend", "--config", str(wide_project), "--user", "7", "--columns", "item,f7"])
    assert "0000" not in "".join(_cells(ln)[1] for ln in _table_lines(text.stdout)[1:])


def test_progress_bar_at_80_columns(runner: CliRunner, tmp_path: Path) -> None:
    cfg = ch.write_project(tmp_path, algorithm="hybrid")
    result = runner.invoke(app, ["train", "--config", str(cfg), "--epochs", "2"],
                           env={"COLUMNS": "80", "TTY_COMPATIBLE": "1", "TTY_INTERACTIVE": "1"})
    _ok(result)
    frames = [ANSI.sub("", f).rstrip() for f in re.split(r"[\r\n]", result.stdout)]
    bars = [f for f in frames if re.search(r"\d+/24 ", f)]
    assert bars, result.stdout
    for f in bars:
        assert len(f) <= 80 and "━" in f and "…" not in f, f
        assert re.search(r"\d+/24 \d:\d\d:\d\d ETA (\d:\d\d:\d\d|-:--:--)", f), f
    assert any(re.search(r"\d+ samples/s", f) for f in bars)
    assert any("ETA 0:00:" in f for f in bars)


# ---------------------------------------------------------------- conveniences


def test_version_and_short_help(runner: CliRunner) -> None:
    result = runner.invoke(app, ["--version"])
    _ok(result)
    assert result.stdout.strip() == f"whatnext {__version__}"
    short = runner.invoke(app, ["-h"])
    _ok(short)
    assert "--install-completion" in short.stdout and "<bool>" not in short.stdout


@pytest.mark.parametrize("command", [["init"], ["inspect-data"], ["train"], ["recommend"], ["eval"], ["run"],
                                     ["checkpoints", "list"], ["checkpoints", "show"], ["checkpoints", "prune"]])
def test_every_help_has_examples_and_no_bool_metavar(runner: CliRunner, command: list[str]) -> None:
    result = runner.invoke(app, [*command, "-h"], env={"COLUMNS": "200"})
    _ok(result)
    assert "<bool>" not in result.stdout
    assert re.search(r"Examples?: whatnext ", result.stdout), result.stdout
    if command != ["init"]:
        assert "--set" in result.stdout


def test_set_parses_toml_literals_and_falls_back_to_text() -> None:
    assert parse_sets(["train.batch_size=64", "data.path=plays.csv", "eval.ks=[5, 10]", "model.tune_rerank=false",
                       'paths.run="x y"', "train.actor_lr=1e-3"]) == {
        "train.batch_size": 64, "data.path": "plays.csv", "eval.ks": [5, 10], "model.tune_rerank": False,
        "paths.run": "x y", "train.actor_lr": 0.001}


@pytest.mark.parametrize(("sets", "fragments"), [
    (["train.batch_size=big"], ["train.batch_size", "'big'", "expected an integer"]),
    (["eval.ks=5"], ["eval.ks", "expected a list of integers"]),
    (["batch_size=8"], ["expected a key as section.key", "train.batch_size"]),
    (["train.batch_size"], ["expected KEY=VALUE"]),
    (["train.epoch=3"], ["unknown key 'train.epoch'", "epochs"]),
])
def test_set_is_type_checked_like_the_file(runner: CliRunner, tmp_path: Path, sets: list[str], fragments: list[str]) -> None:
    cfg = ch.write_project(tmp_path)
    args = ["train", "--config", str(cfg)]
    for s in sets:
        args += ["--set", s]
    err = _one_line(runner.invoke(app, args), 2)
    for frag in fragments:
        assert frag in err
    assert not (tmp_path / "models").exists()


def test_set_overrides_the_file_and_is_recorded(runner: CliRunner, tmp_path: Path) -> None:
    cfg = ch.write_project(tmp_path, algorithm="original")
    result = runner.invoke(app, ["train", "--config", str(cfg), "--set", "train.batch_size=16", "--set", "paths.run=s",
                                 "--json"])
    _ok(result)
    summary = json.loads(result.stdout)
    assert summary["total_steps"] == 23  # 360 positions / 16, not / 8
    payload = checkpoints.load(Path(summary["checkpoint"]))
    assert payload["config"]["train"]["batch_size"] == 16
    assert payload["target"]["overrides"] == {"train.batch_size": 16, "paths.run": "s"}
    assert payload["target"]["total_steps"] == 23


def test_json_errors_are_json_on_stderr(runner: CliRunner, wide_project: Path) -> None:
    result = runner.invoke(app, ["recommend", "--config", str(wide_project), "--user", "nobody", "--json"])
    err = json.loads(_one_line(result, 5))
    assert err["exit_code"] == 5 and "unknown user 'nobody'" in err["error"]
    result = runner.invoke(app, ["train", "--config", str(wide_project), "--set", "train.seed=-1", "--json"])
    assert json.loads(_one_line(result, 2))["exit_code"] == 2


def test_prune_dry_run_deletes_nothing(runner: CliRunner, wide_project: Path, tmp_path: Path) -> None:
    cfg = ch.copy_project(wide_project, tmp_path)
    run_dir = cfg.parent / "models" / "default"
    before = sorted(p.name for p in run_dir.iterdir())
    result = runner.invoke(app, ["checkpoints", "prune", "--config", str(cfg), "--keep", "1", "--dry-run", "--json"])
    _ok(result)
    r = json.loads(result.stdout)
    markers = {checkpoints.marker(run_dir, "best"), checkpoints.marker(run_dir, "latest")}
    assert r["dry_run"] is True and len(r["removed"]) == 4 - len(markers) and r["kept"] == len(markers)
    assert sorted(p.name for p in run_dir.iterdir()) == before
    text = runner.invoke(app, ["checkpoints", "prune", "--config", str(cfg), "--keep", "1", "-n"])
    _ok(text)
    assert "would remove" in text.stdout
    real = runner.invoke(app, ["checkpoints", "prune", "--config", str(cfg), "--keep", "1", "--json"])
    _ok(real)
    assert json.loads(real.stdout)["removed"] == r["removed"]


def test_all_users_file_keeps_the_data_column_names(runner: CliRunner, tmp_path: Path) -> None:
    cfg = ch.write_project(tmp_path, algorithm="hybrid")
    ev = pd.read_csv(tmp_path / "events.csv").rename(columns={"user_id": "listener", "item_id": "song_id"})
    ev.to_csv(tmp_path / "events.csv", index=False)
    pd.read_csv(tmp_path / "items.csv").rename(columns={"item_id": "song_id"}).to_csv(tmp_path / "items.csv", index=False)
    sets = ["--set", "data.user_col=listener", "--set", "data.item_col=song_id"]
    _ok(runner.invoke(app, ["train", "--config", str(cfg), "--quiet", *sets]))
    out = tmp_path / "top.csv"
    _ok(runner.invoke(app, ["recommend", "--config", str(cfg), "--all-users", "-o", str(out), "-k", "3", *sets]))
    df = pd.read_csv(out, dtype=str)
    assert list(df.columns) == ["listener", "rank", "song_id", "score", "distance", "title"]
    items = pd.read_csv(tmp_path / "items.csv", dtype=str).set_index("song_id")["title"]
    assert (df["title"] == items.loc[df["song_id"]].to_numpy()).all()
    for _, rows in df.groupby("listener"):
        s = rows["score"].astype(float).tolist()
        assert s == sorted(s, reverse=True)


def test_init_says_the_demo_data_is_used_when_data_path_is_empty(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(app, ["init", str(tmp_path / "my project")])
    _ok(result)
    assert "built-in demo data" in result.stdout and "data.path" in result.stdout
    assert f"--config '{tmp_path / 'my project' / 'whatnext.toml'}'" in result.stdout  # quoted for the shell
    demo = runner.invoke(app, ["init", str(tmp_path / "d"), "--demo"])
    _ok(demo)
    assert "built-in demo data" not in demo.stdout


def test_usage_errors_under_json_are_json_too() -> None:
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "whatnext", "train", "--json", "--bogus"], capture_output=True, text=True,
                         check=False, timeout=60)
    assert out.returncode == 2 and out.stdout == ""
    (line,) = out.stderr.strip().splitlines()
    err = json.loads(line)
    assert err["exit_code"] == 2 and err["error"].startswith("No such option: --bogus; see '")
