"""The CLI's foundation commands through typer's CliRunner: init, inspect-data, exit codes, stderr."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import long_frame
from typer.testing import CliRunner

from whatnext.cli import app
from whatnext.config import Config, load_config
from whatnext.data import load_dataset
from whatnext.data.stats import describe

# cli._console() prints to a non-terminal at width=200 without soft_wrap, so rich word-wraps an
# error message longer than ~200 characters onto two lines (fix: print the error with soft_wrap=True).
# strict: once cli.py is fixed these pass and the marker must go.


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def _ok(result) -> None:
    assert result.exit_code == 0, f"exit {result.exit_code}\nstdout: {result.stdout}\nstderr: {result.stderr}\n{result.exception!r}"


def _one_line_stderr(result, code: int) -> str:
    assert result.exit_code == code, f"exit {result.exit_code}: {result.output}"
    err = result.stderr.strip()
    assert len(err.splitlines()) == 1, f"stderr is not one line: {result.stderr!r}"
    assert "Traceback" not in result.output
    assert result.stdout.strip() == ""
    return err


def _json_of(obj) -> object:
    """``obj`` as the CLI's JSON writer renders it."""
    return json.loads(json.dumps(obj, default=str))


# ---------------------------------------------------------------- help


def test_help_lists_the_foundation_commands(runner: CliRunner) -> None:
    result = runner.invoke(app, ["--help"])
    _ok(result)
    assert "init" in result.stdout and "inspect-data" in result.stdout


@pytest.mark.parametrize(("command", "options"), [
    ("init", ["--legacy", "--demo", "--force", "--json"]),
    ("inspect-data", ["--config", "--json"]),
])
def test_command_help(runner: CliRunner, command: str, options: list[str]) -> None:
    result = runner.invoke(app, [command, "--help"])
    _ok(result)
    for opt in options:
        assert opt in result.stdout


# ---------------------------------------------------------------- init


def test_init_writes_a_commented_toml_with_defaults(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(app, ["init", str(tmp_path)])
    _ok(result)
    p = tmp_path / "whatnext.toml"
    assert p.exists() and str(p) in result.stdout
    text = p.read_text()
    assert text.count("\n# ") >= 20  # a comment for every key
    cfg = load_config(p)
    assert cfg.to_dict() == Config().to_dict()
    assert not (tmp_path / "data").exists()


def test_init_never_writes_through_a_link_left_under_its_temporary_name(runner: CliRunner, tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("keep me")
    project = tmp_path / "p"
    project.mkdir()
    (project / ".whatnext.toml.tmp").symlink_to(outside)
    _ok(runner.invoke(app, ["init", str(project)]))
    assert outside.read_text() == "keep me"
    assert load_config(project / "whatnext.toml").to_dict() == Config().to_dict()
    assert not (project / ".whatnext.toml.tmp").exists()


def test_init_legacy(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(app, ["init", str(tmp_path), "--legacy"])
    _ok(result)
    p = tmp_path / "setup.txt"
    assert p.exists() and not (tmp_path / "whatnext.toml").exists()
    cfg = load_config(p)
    assert cfg.train.enabled is True and cfg.model.name == "lstm" and cfg.data.path == ""
    assert cfg.paths.model_agent_path and cfg.paths.model_critic_path


def test_init_json(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(app, ["init", str(tmp_path / "new"), "--json"])
    _ok(result)
    out = json.loads(result.stdout)
    assert Path(out["config"]) == tmp_path / "new" / "whatnext.toml"
    assert out["format"] == "toml" and out["demo"] is False
    assert Path(out["config"]).exists()


@pytest.mark.parametrize("legacy", [False, True], ids=["toml", "setup.txt"])
def test_init_demo_then_inspect(runner: CliRunner, tmp_path: Path, legacy: bool) -> None:
    args = ["init", str(tmp_path), "--demo"] + (["--legacy"] if legacy else [])
    _ok(runner.invoke(app, args))
    conf = tmp_path / ("setup.txt" if legacy else "whatnext.toml")
    cfg = load_config(conf)
    data = cfg.resolve(cfg.data.path)
    assert data.exists() and data.parent == tmp_path / "data"
    assert (tmp_path / "data" / "events.csv").exists() and (tmp_path / "data" / "items.csv").exists()

    result = runner.invoke(app, ["inspect-data", "--config", str(conf), "--json"])
    _ok(result)
    got = json.loads(result.stdout)
    want = _json_of(describe(load_dataset(cfg, lenient=True)))
    assert got == want
    # a long table (setup.txt) only knows the items somebody played; the item table knows all 2000
    played = pd.read_csv(tmp_path / "data" / "events.csv")["item_id"].nunique()
    assert got["users"] == 500 and got["items"] == (played if legacy else 2000) and len(got["features"]) == 8
    assert got["single_event_users"] == 0

    # the people's view renders the same numbers
    result = runner.invoke(app, ["inspect-data", "--config", str(conf)])
    _ok(result)
    assert str(got["events"]) in result.stdout and got["fingerprint"] in result.stdout


def test_init_refuses_to_overwrite(runner: CliRunner, tmp_path: Path) -> None:
    p = tmp_path / "whatnext.toml"
    p.write_text("[train]\nseed = 42\n")
    result = runner.invoke(app, ["init", str(tmp_path)])
    err = _one_line_stderr(result, 6)
    assert str(p) in err and "--force" in err
    assert p.read_text() == "[train]\nseed = 42\n"
    _ok(runner.invoke(app, ["init", str(tmp_path), "--force"]))
    assert load_config(p).train.seed == Config().train.seed


def test_init_legacy_refuses_to_overwrite(runner: CliRunner, tmp_path: Path) -> None:
    p = tmp_path / "setup.txt"
    p.write_text("train, no")
    _one_line_stderr(runner.invoke(app, ["init", str(tmp_path), "--legacy"]), 6)
    assert p.read_text() == "train, no"


def test_init_demo_refuses_to_overwrite_data_and_writes_nothing(runner: CliRunner, tmp_path: Path) -> None:
    events = tmp_path / "data" / "events.csv"
    events.parent.mkdir()
    events.write_text("mine")
    err = _one_line_stderr(runner.invoke(app, ["init", str(tmp_path), "--demo"]), 6)
    assert str(events) in err
    assert events.read_text() == "mine"
    assert not (tmp_path / "whatnext.toml").exists()


def test_init_into_a_file_path_fails_cleanly(runner: CliRunner, tmp_path: Path) -> None:
    f = tmp_path / "afile"
    f.write_text("x")
    err = _one_line_stderr(runner.invoke(app, ["init", str(f)]), 6)
    assert str(f) in err
    assert f.read_text() == "x"


# ---------------------------------------------------------------- inspect-data


def test_inspect_data_path_json_matches_describe(runner: CliRunner, tmp_path: Path) -> None:
    p = tmp_path / "events.csv"
    long_frame().to_csv(p, index=False)
    result = runner.invoke(app, ["inspect-data", str(p), "--json"])
    _ok(result)
    got = json.loads(result.stdout)
    cfg = Config()
    cfg.data.path = str(p)
    want = _json_of(describe(load_dataset(cfg, lenient=True)))
    assert got == want
    assert got["users"] == 3 and got["items"] == 4 and got["events"] == 8
    assert got["single_event_users"] == 1 and got["single_event_user_ids"] == ["u3"]
    assert got["history_length"] == {"min": 1, "median": 3.0, "p90": pytest.approx(3.8), "max": 4, "mean": pytest.approx(8 / 3)}
    assert [f["name"] for f in got["features"]] == ["energy", "tempo"]
    assert got["features"][1]["min"] == pytest.approx(80) and got["features"][1]["max"] == pytest.approx(120)


def test_inspect_data_path_overrides_config(runner: CliRunner, tmp_path: Path) -> None:
    other = tmp_path / "other.csv"
    long_frame().to_csv(other, index=False)
    (tmp_path / "whatnext.toml").write_text('[data]\nuser_col = "user_id"\n')
    result = runner.invoke(app, ["inspect-data", str(other), "--config", str(tmp_path / "whatnext.toml"), "--json"])
    _ok(result)
    assert json.loads(result.stdout)["events"] == 8


def test_inspect_data_reports_missing_features(runner: CliRunner, tmp_path: Path) -> None:
    df = long_frame()
    df.loc[df["item_id"] == "s2", "energy"] = np.nan
    p = tmp_path / "events.csv"
    df.to_csv(p, index=False)
    result = runner.invoke(app, ["inspect-data", str(p), "--json"])
    _ok(result)
    energy = next(f for f in json.loads(result.stdout)["features"] if f["name"] == "energy")
    assert energy["missing"] == 1


def test_inspect_data_builtin_demo(runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["inspect-data", "--json"])
    _ok(result)
    got = json.loads(result.stdout)
    assert got["source"] == "built-in demo data" and got["users"] == 500


# ---------------------------------------------------------------- errors and exit codes


@pytest.mark.parametrize(
    ("name", "text", "fragments"),
    [
        ("whatnext.toml", "[train]\nepoch = 3\n", [":2:", "epoch", "did you mean"]),
        ("setup.txt", "train, maybe", [":1:", "train", "yes or no"]),
        pytest.param("whatnext.toml", '[data]\npath = "missing.csv"\n', [":2:", "data.path", "missing.csv"]),
        ("setup.txt", "", ["empty"]),
    ],
    ids=["toml-unknown-key", "setup-train", "missing-data", "empty"],
)
def test_bad_config_exit_2(runner: CliRunner, tmp_path: Path, name: str, text: str, fragments: list[str]) -> None:
    p = tmp_path / name
    p.write_text(text)
    err = _one_line_stderr(runner.invoke(app, ["inspect-data", "--config", str(p)]), 2)
    assert str(p) in err
    for frag in fragments:
        assert frag in err


def test_missing_config_file_exit_2(runner: CliRunner, tmp_path: Path) -> None:
    err = _one_line_stderr(runner.invoke(app, ["inspect-data", "--config", str(tmp_path / "nope.toml")]), 2)
    assert "nope.toml" in err


def test_long_error_stays_on_one_line(runner: CliRunner, tmp_path: Path) -> None:
    deep = tmp_path / ("a-rather-long-folder-name-" * 4) / ("and-another-one-" * 4)
    deep.mkdir(parents=True)
    p = deep / "whatnext.toml"
    p.write_text("[train]\nepoch = 3\n")
    err = _one_line_stderr(runner.invoke(app, ["inspect-data", "--config", str(p)]), 2)
    assert str(p) in err


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        pytest.param("user,item_id,timestamp\na,x,1\n", "user_id"),
        ("", "empty"),
        # (a column that varies within an item is now left out as an event attribute, not an error)
        pytest.param("user_id,item_id,timestamp\na,x,01/02/2024\nb,x,02/01/2024\n", "data.time_format"),
    ],
    ids=["missing-column", "empty", "ambiguous-dates"],
)
def test_bad_data_exit_3(runner: CliRunner, tmp_path: Path, content: str, fragment: str) -> None:
    p = tmp_path / "events.csv"
    p.write_text(content)
    err = _one_line_stderr(runner.invoke(app, ["inspect-data", str(p)]), 3)
    assert fragment in err


def test_bad_data_through_config_exit_3(runner: CliRunner, tmp_path: Path) -> None:
    (tmp_path / "e.csv").write_text("a#b#c\n1#2#3\n")
    (tmp_path / "setup.txt").write_text("data, e.csv")
    err = _one_line_stderr(runner.invoke(app, ["inspect-data", "--config", str(tmp_path / "setup.txt")]), 3)
    assert "delimiter" in err


def test_missing_data_path_argument(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(app, ["inspect-data", str(tmp_path / "nope.csv")])
    err = _one_line_stderr(result, result.exit_code)
    assert result.exit_code in (2, 3) and "nope.csv" in err


# ---------------------------------------------------------------- start-up cost


def test_cli_does_not_import_torch(tmp_path: Path) -> None:
    script = textwrap.dedent(f"""
        import json, sys
        import whatnext.cli
        assert "torch" not in sys.modules, "import whatnext.cli imported torch"
        from typer.testing import CliRunner
        from whatnext.cli import app
        r = CliRunner()
        for args in (["--help"], ["init", {str(tmp_path)!r}, "--demo"],
                     ["inspect-data", "--config", {str(tmp_path / "whatnext.toml")!r}, "--json"],
                     ["inspect-data", "--config", {str(tmp_path / "whatnext.toml")!r}]):
            res = r.invoke(app, args)
            assert res.exit_code == 0, (args, res.output)
        json.loads(r.invoke(app, ["inspect-data", "--config", {str(tmp_path / "whatnext.toml")!r}, "--json"]).stdout)
        bad = sorted(m for m in sys.modules if m == "torch" or m.startswith("torch."))
        assert not bad, bad
        print("no torch")
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=False, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "no torch" in out.stdout


def test_python_dash_m_whatnext_help() -> None:
    out = subprocess.run([sys.executable, "-m", "whatnext", "--help"], capture_output=True, text=True, check=False, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "init" in out.stdout and "inspect-data" in out.stdout


def test_demo_files_written_by_init_are_the_demo_module_output(runner: CliRunner, tmp_path: Path) -> None:
    from whatnext.data import demo

    _ok(runner.invoke(app, ["init", str(tmp_path / "a"), "--demo"]))
    ref = demo.write(tmp_path / "ref")
    for p in ref:
        assert (tmp_path / "a" / "data" / p.name).read_bytes() == p.read_bytes()
    assert pd.read_csv(tmp_path / "a" / "data" / "items.csv").shape[0] == 2000
