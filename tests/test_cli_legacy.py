"""The legacy setup.txt project (issue #10): dotted whatnext.toml keys in setup.txt, `init --from setup.txt`,
and messages that name the way that works in the file at hand."""

from __future__ import annotations

import json
from pathlib import Path

import core_helpers as ch
import pytest
from typer.testing import CliRunner

from whatnext.cli import app
from whatnext.config import Config, load_config
from whatnext.config.legacy import parse_setup, to_setup
from whatnext.errors import ConfigError


def _ok(result) -> None:
    assert result.exit_code == 0, f"exit {result.exit_code}\nstdout: {result.stdout}\nstderr: {result.stderr}"


def _one_line(result, code: int) -> str:
    assert result.exit_code == code, f"exit {result.exit_code}\nstdout: {result.stdout}\nstderr: {result.stderr}"
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, f"stderr is not one line: {result.stderr!r}"
    return lines[0]


def _clean_pk_project(folder: Path, setup_extra: str = "") -> Path:
    """The original project: a long table whose item column is song_id, and a setup.txt."""
    events, items = ch.frames()
    long = events.merge(items, on="item_id").rename(columns={"item_id": "song_id"})
    long.to_csv(folder / "clean.csv", index=False)
    (folder / "setup.txt").write_text(f"train, yes,\nmodel, lstm,\ndata, clean.csv,\nepochs, 64{setup_extra}\n")
    return folder / "setup.txt"


def test_setup_txt_accepts_dotted_toml_keys(tmp_path: Path) -> None:
    text = ("train, no,\n*Data, events.csv,\ndata.item_col, song_id,\ntrain.batch_size, 16,\n"
            "model.tune_rerank, no,\neval.ks, [5],\ndata.delimiter, ;,\npaths.run, exp-2\n")
    cfg = parse_setup(text, tmp_path / "setup.txt")
    assert (cfg.train.enabled, cfg.data.path, cfg.data.item_col, cfg.train.batch_size) == (False, "events.csv", "song_id", 16)
    assert cfg.model.tune_rerank is False and cfg.eval.ks == [5] and cfg.data.delimiter == ";" and cfg.paths.run == "exp-2"


@pytest.mark.parametrize(("text", "fragments"), [
    ("train.batch_size, big", [":1:", "train.batch_size", "'big'", "expected an integer"]),
    ("data.item_coll, x", [":1:", "unknown key 'data.item_coll'", "data.item_col", "section.key"]),
    ("epochs, 10,\ntrain.samples, 20", [":2:", "'train.samples' given twice", "first on line 1", "as 'epochs'"]),
    ("item_col, song_id", [":1:", "unknown key 'item_col'", "did you mean 'data.item_col'"]),
])
def test_dotted_keys_are_checked_like_the_toml(tmp_path: Path, text: str, fragments: list[str]) -> None:
    with pytest.raises(ConfigError) as e:
        parse_setup(text, tmp_path / "setup.txt")
    for frag in fragments:
        assert frag in str(e.value)


def test_to_setup_writes_changed_keys_in_dotted_form_and_reads_back(tmp_path: Path) -> None:
    cfg = Config()
    cfg.data.path = "clean.pk"
    cfg.data.item_col = "song_id"
    cfg.train.batch_size = 16
    cfg.eval.ks = [5]
    cfg.paths.run = "123"  # text that looks like a number stays text
    text = to_setup(cfg)
    assert "data.item_col, song_id" in text and "train.batch_size, 16" in text and "model.hidden_size" not in text
    assert parse_setup(text, tmp_path / "setup.txt").to_dict() == cfg.to_dict()
    cfg.data.columns = ["a", "b"]  # a list of two cannot be written: named in a comment, the rest still round-trips
    text = to_setup(cfg)
    assert "# not written (setup.txt cannot hold these values; use whatnext.toml): data.columns" in text
    back = parse_setup(text, tmp_path / "setup.txt")
    assert back.data.columns == [] and back.data.item_col == "song_id"


def test_missing_item_column_names_the_setup_txt_way_and_it_works(tmp_path: Path) -> None:
    runner = CliRunner()
    setup = _clean_pk_project(tmp_path)
    err = _one_line(runner.invoke(app, ["inspect-data", "--config", str(setup)]), 3)
    assert "data.item_col" in err and "in setup.txt that is a line 'data.item_col, " in err
    assert "whatnext init --from setup.txt" in err
    # what the message says works: the dotted key in setup.txt ...
    setup.write_text(setup.read_text().rstrip() + ",\ndata.item_col, song_id\n")
    result = runner.invoke(app, ["inspect-data", "--config", str(setup), "--json"])
    _ok(result)
    assert json.loads(result.stdout)["items"] == 40
    # ... and so does a TOML project converted from it (no such hint there: set data.item_col in the file)
    (tmp_path / "whatnext.toml").unlink(missing_ok=True)
    _ok(runner.invoke(app, ["init", "--from", str(setup)]))
    toml = tmp_path / "whatnext.toml"
    assert load_config(toml).data.item_col == "song_id"


def test_init_from_setup_txt_round_trip(tmp_path: Path) -> None:
    runner = CliRunner()
    setup = _clean_pk_project(tmp_path, ",\ndata.item_col, song_id,\nmodel_agent_path, weights/agent.pt,\n"
                                        "train.batch_size, 16")
    out = tmp_path / "converted"
    result = runner.invoke(app, ["init", str(out), "--from", str(setup), "--json"])
    _ok(result)
    r = json.loads(result.stdout)
    toml = Path(r["config"])
    assert toml == out / "whatnext.toml" and r["format"] == "toml"
    old, new = load_config(setup), load_config(toml)
    for section, key in (("data", "path"), ("paths", "model_agent_path"), ("paths", "models_dir")):
        assert new.resolve(getattr(getattr(new, section), key)).resolve() == \
            old.resolve(getattr(getattr(old, section), key)).resolve()
    a, b = old.to_dict(), new.to_dict()
    for d in (a, b):
        d["data"].pop("path"), d["paths"].pop("model_agent_path"), d["paths"].pop("models_dir")
    assert a == b and new.train.samples == 64 and new.train.batch_size == 16 and new.train.enabled is True
    # the converted project trains like the original
    result = runner.invoke(app, ["train", "--config", str(toml), "--json"])
    _ok(result)
    assert json.loads(result.stdout)["steps"] == 4  # 64 samples / 16
    assert (tmp_path / "weights" / "agent.pt").exists()
    # never overwritten without --force
    again = runner.invoke(app, ["init", str(out), "--from", str(setup)])
    assert "--force" in _one_line(again, 6)
    missing = runner.invoke(app, ["init", str(out), "--from", str(tmp_path / "nope.txt"), "--force"])
    assert "nope.txt" in _one_line(missing, 2)
