"""Config: TOML and legacy setup.txt, round trips, priority, relative paths and every error path."""

from __future__ import annotations

import tomllib
import types
import typing
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest
from helpers import one_line_error

from whatnext.config import (
    CHOICES,
    MODEL_NAMES,
    REWARD_NAMES,
    SECTIONS,
    Config,
    field_doc,
    is_toml_file,
    known_keys,
    load_config,
    set_value,
    to_toml,
)
from whatnext.config.legacy import LEGACY_KEYS, parse_setup, to_setup
from whatnext.errors import ConfigError

# ---------------------------------------------------------------- setup.txt reading

LEGACY_VARIANTS = {
    "one pair a line": (
        "train, no,\n"
        "model, lstm,\n"
        "data, Data/Events File.CSV,\n"
        "epochs, 5000,\n"
        "model_agent_path, Models/Agent.PT,\n"
        "model_critic_path, Models/Critic.PT\n"
    ),
    "all on one line": (
        "train,no,model,lstm,data,Data/Events File.CSV,epochs,5000,"
        "model_agent_path,Models/Agent.PT,model_critic_path,Models/Critic.PT"
    ),
    "odd case and whitespace": (
        "  TRAIN  ,\tNo ,   Model,LSTM,\n\n\n"
        "\tDATA ,    Data/Events File.CSV   ,EPOCHS,\n5000\n,\n"
        "Model_Agent_Path\n,\nModels/Agent.PT , MODEL_critic_PATH , Models/Critic.PT ,\n\n"
    ),
    "windows line breaks and trailing comma": (
        "train, NO,\r\nmodel, Lstm,\r\ndata, Data/Events File.CSV,\r\nepochs, 5000,\r\n"
        "model_agent_path, Models/Agent.PT,\r\nmodel_critic_path, Models/Critic.PT,\r\n"
    ),
    "leading stars as in the original README": (
        "*train, no,\n*model, lstm,\n* data, Data/Events File.CSV,\n*epochs, 5000,\n"
        "*model_agent_path, Models/Agent.PT,\n**model_critic_path, Models/Critic.PT\n"
    ),
    "comments, a byte-order mark and a different key order": (
        "\ufeff# my settings\n"
        "model_critic_path, Models/Critic.PT,\n"
        "   # the data\n"
        "data, Data/Events File.CSV, epochs, 5000,\n"
        "model_agent_path, Models/Agent.PT, train, no, model, lstm\n"
    ),
}


def _legacy_values(cfg: Config) -> dict[str, object]:
    return {k: getattr(getattr(cfg, s), f) for k, (s, f) in LEGACY_KEYS.items()}


@pytest.mark.parametrize("name", list(LEGACY_VARIANTS))
def test_setup_variants_read_the_same(tmp_path: Path, name: str) -> None:
    p = tmp_path / "setup.txt"
    p.write_text(LEGACY_VARIANTS[name], encoding="utf-8")
    cfg = load_config(p, check_paths=False)
    assert _legacy_values(cfg) == {
        "train": False,
        "model": "lstm",
        "data": "Data/Events File.CSV",  # paths keep their case (and inner spaces)
        "epochs": 5000,
        "model_agent_path": "Models/Agent.PT",
        "model_critic_path": "Models/Critic.PT",
    }
    # every other key keeps its default
    rest = cfg.to_dict()
    expected = Config().to_dict()
    for section, key in LEGACY_KEYS.values():
        rest[section].pop(key)
        expected[section].pop(key)
    assert rest == expected
    assert cfg.source == p


def test_setup_yes_no_case_insensitive(tmp_path: Path) -> None:
    for text, want in [("train, YES", True), ("train, Yes", True), ("train, nO", False), ("TRAIN,no", False)]:
        p = tmp_path / "setup.txt"
        p.write_text(text)
        assert load_config(p, check_paths=False).train.enabled is want, text


def test_setup_none_means_demo_data(tmp_path: Path) -> None:
    p = tmp_path / "setup.txt"
    p.write_text("data, None, model_agent_path, NONE")
    cfg = load_config(p)
    assert cfg.data.path == "" and cfg.paths.model_agent_path == ""


def test_setup_epochs_maps_to_samples(tmp_path: Path) -> None:
    p = tmp_path / "setup.txt"
    p.write_text("epochs, +42")
    cfg = load_config(p, check_paths=False)
    assert cfg.train.samples == 42
    assert cfg.train.epochs == Config().train.epochs


# ---------------------------------------------------------------- TOML reading


def test_toml_odd_whitespace_and_line_breaks(tmp_path: Path) -> None:
    text = (
        "\ufeff# comment\r\n\r\n"
        "   [train]   \r\n"
        "\tepochs=7\r\n"
        "   seed    =     11   # trailing comment\r\n"
        "rewards = {diversity = 0.5,next_item=2}\r\n"
        "[ data ]\r\n"
        'path="Data/Events.CSV"\r\n'
        'columns = [\r\n  "user_id",\r\n  "item_id",\r\n]\r\n'
    )
    p = tmp_path / "whatnext.toml"
    p.write_text(text, newline="")
    cfg = load_config(p, check_paths=False)
    assert cfg.train.epochs == 7 and cfg.train.seed == 11
    assert cfg.train.rewards == {"diversity": 0.5, "next_item": 2.0}
    assert cfg.data.path == "Data/Events.CSV"
    assert cfg.data.columns == ["user_id", "item_id"]
    assert cfg.model.hidden_size == Config().model.hidden_size


def test_toml_int_is_accepted_as_float(tmp_path: Path) -> None:
    p = tmp_path / "whatnext.toml"
    p.write_text("[train]\nactor_lr = 1\n")
    cfg = load_config(p)
    assert cfg.train.actor_lr == 1.0 and isinstance(cfg.train.actor_lr, float)


@pytest.mark.parametrize(
    ("name", "text", "is_toml"),
    [
        ("conf", "[train]\nepochs = 3\n", True),
        ("conf", "# a comment\n\nepochs = 3\n", True),
        ("conf", "train, yes, model, lstm", False),
        ("conf.cfg", "*train, yes", False),
        ("x.toml", "whatever", True),
        ("x.TXT", "[train]\nepochs = 3\n", False),
    ],
)
def test_format_detection(tmp_path: Path, name: str, text: str, is_toml: bool) -> None:
    assert is_toml_file(tmp_path / name, text) is is_toml


def test_config_without_suffix_is_detected(tmp_path: Path) -> None:
    toml = tmp_path / "mine"
    toml.write_text("[train]\nseed = 3\n")
    legacy = tmp_path / "legacy"
    legacy.write_text("train, no, epochs, 9")
    assert load_config(toml).train.seed == 3
    cfg = load_config(legacy)
    assert cfg.train.enabled is False and cfg.train.samples == 9


# ---------------------------------------------------------------- round trips


#: keys that cannot take another valid value today (a single known model)
_UNCHANGEABLE = {"model.name"} if len(MODEL_NAMES) == 1 else set()


def _other_value(section: str, key: str, tp: Any, default: Any) -> Any:
    """A valid value for ``section.key`` that differs from its default."""
    choices = CHOICES.get((section, key))
    if choices is not None:
        return next(c for c in choices if c != default)
    if (section, key) == ("train", "rewards"):
        return {REWARD_NAMES[-1]: 0.25}
    if (section, key) == ("data", "reward_map"):  # raw values as keys: any text
        return {"skip": -1.0, "Full play": 1.0, 'odd "name"': 0.5, "3": 0.25}
    if (section, key) == ("data", "encoding"):  # must name a real codec
        return "latin-1" if default != "latin-1" else "utf-16"
    if (section, key) == ("data", "decimal"):  # a decimal mark: '.', ',' or empty
        return ","
    if (section, key) == ("paths", "run"):  # one safe folder name
        return "run_2.b-Z"
    if (section, key) == ("model", "name"):  # another registered model
        return next(n for n in MODEL_NAMES if n != default)
    if isinstance(tp, types.UnionType) and int in typing.get_args(tp):  # str | int ("auto" or a count): a count
        return 7
    if isinstance(tp, types.UnionType):  # str | list[str]: a list, the form the default is not
        return ["A b", 'odd "name"', key]
    if tp is bool:
        return not default
    if tp is int:
        return default + 2**40 if key == "seed" else default + 3
    if tp is float:
        return default / 3 if default > 0.5 else default + 0.123456789
    if tp is str:
        return f'Ünïcode "{key}" \\ Path With Spaces/{key.upper()}.CSV'
    if typing.get_origin(tp) is list:
        inner = typing.get_args(tp)[0]
        return [1, 5, 100] if inner is int else ["A b", 'odd "name"', key]
    raise AssertionError(f"no changed value for {section}.{key} ({tp})")  # a new field type: add a branch


def _changed_config() -> Config:
    """A config with every key away from its default (a round trip must keep each one)."""
    cfg = Config()
    for section, cls in SECTIONS.items():
        hints = typing.get_type_hints(cls)
        for f in fields(cls):
            if f"{section}.{f.name}" in _UNCHANGEABLE:
                continue
            default = getattr(getattr(cfg, section), f.name)
            set_value(cfg, section, f.name, _other_value(section, f.name, hints[f.name], default))
    return cfg


def test_changed_config_really_changes_every_key() -> None:
    changed, default = _changed_config().to_dict(), Config().to_dict()
    same = {f"{s}.{k}" for s in SECTIONS for k in changed[s] if changed[s][k] == default[s][k]}
    assert same == _UNCHANGEABLE


def test_toml_round_trip_keeps_every_value(tmp_path: Path) -> None:
    cfg = _changed_config()
    text = to_toml(cfg)
    p = tmp_path / "whatnext.toml"
    p.write_text(text, encoding="utf-8")
    back = load_config(p, check_paths=False)
    assert back.to_dict() == cfg.to_dict()
    assert to_toml(back) == text  # TOML -> config -> TOML is stable


def test_toml_round_trip_from_a_hand_written_file(tmp_path: Path) -> None:
    p = tmp_path / "whatnext.toml"
    p.write_text('[model]\nhidden_size = 8\n[train]\nenabled = false\nrewards = {diversity = 2}\n[paths]\nrun = "X"\n')
    first = load_config(p)
    q = tmp_path / "again.toml"
    q.write_text(to_toml(first))
    assert load_config(q).to_dict() == first.to_dict()


def test_default_toml_documents_every_key() -> None:
    text = to_toml(Config())
    doc = tomllib.loads(text)
    assert {f"{s}.{k}" for s, v in doc.items() for k in v} == set(known_keys())
    lines = text.splitlines()
    for section, cls in SECTIONS.items():
        for f in fields(cls):
            assert field_doc(section, f.name), f"{section}.{f.name} has no description"
            i = next(n for n, ln in enumerate(lines) if ln.startswith((f"{f.name} =", f'"{f.name}" =')))
            assert lines[i - 1] == f"# {field_doc(section, f.name)}"


def test_setup_round_trip_keeps_every_value(tmp_path: Path) -> None:
    p = tmp_path / "setup.txt"
    p.write_text(LEGACY_VARIANTS["odd case and whitespace"])
    cfg = load_config(p, check_paths=False)
    text = to_setup(cfg)
    q = tmp_path / "sub" / "setup.txt"
    q.parent.mkdir()
    q.write_text(text)
    back = load_config(q, check_paths=False)
    assert _legacy_values(back) == _legacy_values(cfg)
    assert back.to_dict() == cfg.to_dict()
    assert to_setup(back) == text


def test_setup_round_trip_of_changed_values(tmp_path: Path) -> None:
    cfg = _changed_config()
    text = to_setup(cfg)
    p = tmp_path / "setup.txt"
    p.write_text(text)
    back = parse_setup(text, p)
    assert _legacy_values(back) == _legacy_values(cfg)
    # an empty path is written as 'none' and read back as empty
    cfg.data.path = ""
    assert _legacy_values(parse_setup(to_setup(cfg), p))["data"] == ""


def test_setup_refuses_a_path_with_a_comma() -> None:
    cfg = Config()
    cfg.data.path = "a,b.csv"
    with pytest.raises(ConfigError) as e:
        to_setup(cfg)
    assert "data" in one_line_error(e.value)


def test_toml_and_setup_map_onto_the_same_config(tmp_path: Path) -> None:
    t = tmp_path / "whatnext.toml"
    t.write_text(
        '[train]\nenabled = false\nsamples = 77\n[model]\nname = "lstm"\n'
        '[data]\npath = "ev.csv"\n[paths]\nmodel_agent_path = "A.pt"\nmodel_critic_path = "C.pt"\n'
    )
    s = tmp_path / "setup.txt"
    s.write_text("train, no, epochs, 77, model, LSTM, data, ev.csv, model_agent_path, A.pt, model_critic_path, C.pt")
    assert load_config(t, check_paths=False).to_dict() == load_config(s, check_paths=False).to_dict()


# ---------------------------------------------------------------- priority and paths


def test_priority_defaults_file_overrides(tmp_path: Path) -> None:
    p = tmp_path / "whatnext.toml"
    p.write_text("[train]\nseed = 5\nepochs = 7\n")
    cfg = load_config(p, {"train.seed": 9, "train.epochs": None, "model.window": 4})
    assert cfg.train.seed == 9  # override beats file
    assert cfg.train.epochs == 7  # None override leaves the file's value
    assert cfg.model.window == 4  # override beats default
    assert cfg.train.batch_size == Config().train.batch_size  # default where nothing is given
    assert load_config(None).to_dict() == Config().to_dict()


def test_priority_with_setup_txt(tmp_path: Path) -> None:
    p = tmp_path / "setup.txt"
    p.write_text("train, no, epochs, 100")
    cfg = load_config(p, {"train.samples": 5})
    assert cfg.train.samples == 5 and cfg.train.enabled is False


def test_bad_override_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as e:
        load_config(None, {"train.epochs": "many"})
    msg = one_line_error(e.value)
    assert "train.epochs" in msg and "many" in msg
    with pytest.raises(ConfigError) as e:
        load_config(None, {"train.epoch": 3})
    assert "did you mean" in one_line_error(e.value)


@pytest.mark.parametrize("fmt", ["toml", "setup"])
def test_relative_paths_resolve_against_the_config_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: str) -> None:
    conf_dir = tmp_path / "project" / "conf"
    (conf_dir / "Data").mkdir(parents=True)
    (conf_dir / "Data" / "Events.csv").write_text("user_id,item_id,timestamp\na,x,1\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    if fmt == "toml":
        p = conf_dir / "whatnext.toml"
        p.write_text('[data]\npath = "Data/Events.csv"\n[paths]\nmodels_dir = "../Models"\n')
    else:
        p = conf_dir / "setup.txt"
        p.write_text("data, Data/Events.csv, model_agent_path, ../Models/agent.pt")
    cfg = load_config(p)
    assert cfg.data.path == "Data/Events.csv"  # kept as written
    assert cfg.resolve(cfg.data.path) == conf_dir / "Data" / "Events.csv"
    assert cfg.resolve(cfg.data.path).exists()
    if fmt == "toml":
        assert cfg.run_dir == conf_dir / "../Models" / "default"
    else:
        assert cfg.resolve(cfg.paths.model_agent_path) == conf_dir / "../Models/agent.pt"
    # an absolute path stays as it is
    assert cfg.resolve(str(tmp_path / "abs.csv")) == tmp_path / "abs.csv"


def test_relative_path_is_not_resolved_against_the_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # the file exists relative to the cwd but not relative to the config file: that is an error
    (tmp_path / "ev.csv").write_text("user_id,item_id,timestamp\na,x,1\n")
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "whatnext.toml").write_text('[data]\npath = "ev.csv"\n')
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as e:
        load_config(conf / "whatnext.toml")
    assert str(conf / "ev.csv") in one_line_error(e.value)


def test_relative_config_path_from_another_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "conf" / "data").mkdir(parents=True)
    (tmp_path / "conf" / "data" / "e.csv").write_text("user_id,item_id,timestamp\na,x,1\n")
    (tmp_path / "conf" / "setup.txt").write_text("data, data/e.csv")
    monkeypatch.chdir(tmp_path)
    cfg = load_config(Path("conf/setup.txt"))
    assert cfg.resolve(cfg.data.path).resolve() == (tmp_path / "conf" / "data" / "e.csv").resolve()


# ---------------------------------------------------------------- errors

# (name, file name, content, key named in the message, line, a found/expected fragment)
ERROR_CASES = [
    ("setup unknown key", "setup.txt", "train, yes,\nmodle, lstm", "modle", 2, "did you mean 'model'"),
    ("setup unknown starred key", "setup.txt", "*trian, yes", "trian", 1, "did you mean 'train'"),
    ("setup key without value", "setup.txt", "train, yes,\nmodel", "model", 2, "no value"),
    ("setup key with empty value", "setup.txt", "train, yes,\nmodel, ,\ndata, x.csv", "model", 2, "no value"),
    ("setup key without value at end", "setup.txt", "train, yes,\nepochs,\n", "epochs", 2, "no value"),
    ("setup wrong type", "setup.txt", "train, yes,\nepochs, ten", "epochs", 2, "'ten'"),
    ("setup negative number", "setup.txt", "epochs, -5", "epochs", 1, "'-5'"),
    ("setup train not yes/no", "setup.txt", "model, lstm,\n\ntrain, maybe", "train", 3, "yes or no"),
    ("setup train true", "setup.txt", "train, true", "train", 1, "'true'"),
    ("setup model unknown", "setup.txt", "train, yes,\nmodel, gru", "model", 2, "'gru'"),
    ("setup key twice", "setup.txt", "train, yes,\nmodel, lstm,\nTRAIN, no", "train", 3, "twice"),
    ("setup key twice with star", "setup.txt", "*data, a.csv,\n*data, b.csv", "data", 2, "twice"),
    ("setup missing data file", "setup.txt", "train, yes,\ndata, nope/Missing.CSV", "data", 2, "Missing.CSV"),
    ("toml unknown key", "whatnext.toml", "[train]\nseed = 1\nepoch = 3\n", "epoch", 3, "did you mean 'epochs'"),
    ("toml unknown section", "whatnext.toml", "[train]\nseed = 1\n[trian]\nepochs = 3\n", "trian", 3, "did you mean 'train'"),
    ("toml key without value", "whatnext.toml", "[train]\nseed = 1\nepochs =\n", "epochs", 3, "TOML"),
    ("toml key without equals", "whatnext.toml", "[train]\nepochs\n", "epochs", 2, "TOML"),
    ("toml wrong type", "whatnext.toml", '[train]\nepochs = "3"\n', "train.epochs", 2, "expected an integer"),
    ("toml wrong list type", "whatnext.toml", '[eval]\nks = [10, "x"]\n', "eval.ks", 2, "expected a list"),
    ("toml train not bool", "whatnext.toml", '[train]\nenabled = "maybe"\n', "train.enabled", 2, "'maybe'"),
    ("toml model unknown", "whatnext.toml", '[model]\nname = "gru"\n', "model.name", 2, "'gru'"),
    ("toml bad choice", "whatnext.toml", '[eval]\nsplit = "train"\n', "eval.split", 2, "valid, test"),
    ("toml bad range", "whatnext.toml", "[model]\ndropout = 1.5\n", "model.dropout", 2, "1.5"),
    ("toml unknown reward", "whatnext.toml", "[train]\nrewards = {novelty = 1}\n", "novelty", 2, "expected one of"),
    ("toml negative seed", "whatnext.toml", "[train]\nseed = -1\n", "train.seed", 2, ">= 0"),
    ("toml infinite number", "whatnext.toml", "[train]\nseed = 1\nrelax = inf\n", "train.relax", 3, "finite number"),
    ("toml nan number", "whatnext.toml", "[train]\nactor_lr = nan\n", "train.actor_lr", 2, "finite number"),
    ("toml nan reward weight", "whatnext.toml", "[train]\nrewards = {diversity = nan}\n", "train.rewards", 2, "nan"),
    ("toml key twice", "whatnext.toml", "[train]\nepochs = 3\nepochs = 4\n", "epochs", 3, "twice"),
    ("toml section twice", "whatnext.toml", "[train]\nepochs = 3\n[train]\nseed = 4\n", "train", 3, "twice"),
    ("toml missing data file", "whatnext.toml", '[model]\nwindow = 3\n[data]\npath = "nope/Missing.CSV"\n', "data.path", 4, "Missing.CSV"),
    ("toml missing items file", "whatnext.toml", '[data]\nitems_path = "gone.csv"\n', "data.items_path", 2, "gone.csv"),
    ("toml key outside a section", "whatnext.toml", "epochs = 3\n", "epochs", 1, "train"),
]


@pytest.mark.parametrize(("name", "fname", "text", "key", "line", "fragment"), ERROR_CASES, ids=[c[0] for c in ERROR_CASES])
def test_config_errors(tmp_path: Path, name: str, fname: str, text: str, key: str, line: int, fragment: str) -> None:
    p = tmp_path / fname
    p.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as e:
        load_config(p)
    assert e.value.exit_code == 2
    msg = one_line_error(e.value)
    assert msg.startswith(f"{p}:{line}:"), msg  # the file and the line
    assert key in msg, msg  # the key
    assert fragment in msg, msg  # what was found / expected


@pytest.mark.parametrize("fname", ["setup.txt", "whatnext.toml"])
@pytest.mark.parametrize(
    ("content", "fragment", "line"),
    [
        (b"", "empty", None),
        (b"   \n\t\n\r\n", "empty", None),
        (b"\x00\x01\x02binary\xff\xfe", "binary", None),
        (b"PAR1\x15\x04\x00\x00" + bytes(range(256)), "binary", None),
        (b"\n# caf\xe9\n", "UTF-8", 2),
        (b"\xff\xfe[\x00t\x00", "binary", None),  # UTF-16 is not UTF-8 text
    ],
    ids=["empty", "blank", "binary", "parquet", "latin-1", "utf-16"],
)
def test_unreadable_config_files(tmp_path: Path, fname: str, content: bytes, fragment: str, line: int | None) -> None:
    p = tmp_path / fname
    p.write_bytes(content)
    with pytest.raises(ConfigError) as e:
        load_config(p)
    assert e.value.exit_code == 2
    msg = one_line_error(e.value)
    assert msg.startswith(f"{p}:{line}:" if line else f"{p}:"), msg
    assert fragment in msg


def test_setup_with_only_comments_is_empty(tmp_path: Path) -> None:
    p = tmp_path / "setup.txt"
    p.write_text("# nothing here\n# still nothing\n")
    with pytest.raises(ConfigError) as e:
        load_config(p)
    msg = one_line_error(e.value)
    assert str(p) in msg and "empty" in msg


def test_missing_config_file_and_folder(tmp_path: Path) -> None:
    for p in (tmp_path / "nope.toml", tmp_path):
        with pytest.raises(ConfigError) as e:
            load_config(p)
        assert str(p) in one_line_error(e.value)


def test_missing_data_file_not_checked_when_asked(tmp_path: Path) -> None:
    p = tmp_path / "whatnext.toml"
    p.write_text('[data]\npath = "nope.csv"\n')
    assert load_config(p, check_paths=False).data.path == "nope.csv"


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("setup.txt", "train yes,\nmodel, lstm"),  # a missing comma joins key and value
        ("setup.txt", "train, yes\nmodel, lstm"),  # a missing comma joins two tokens across a line break
        ("setup.txt", "data, first\nsecond.csv"),
        ("setup.txt", "data, ~no_such_user_whatnext/x.csv"),
        ("setup.txt", "data, " + "x" * 5000),
        ("setup.txt", "data, a\x0bb.csv"),
        ("whatnext.toml", '[train]\n"a\\nb" = 1\n'),
        ("whatnext.toml", '["a\\nb"]\nx = 1\n'),
        ("whatnext.toml", '[data]\npath = "a\\u0000b"\n'),
        ("whatnext.toml", '[data]\npath = "~no_such_user_whatnext/x"\n'),
        ("whatnext.toml", "[train]\nepochs = 1\n[train.sub]\nx = 1\n"),
        ("whatnext.toml", "train = 3\n"),
    ],
    ids=["setup-missing-comma", "setup-missing-comma-at-line-end", "setup-path-over-lines", "setup-unknown-home",
         "setup-too-long-path", "setup-control-char", "toml-newline-key", "toml-newline-section", "toml-nul-path",
         "toml-unknown-home", "toml-subtable", "toml-plain-section-value"],
)
def test_config_oddities_are_one_line_config_errors(tmp_path: Path, name: str, text: str) -> None:
    p = tmp_path / name
    p.write_text(text)
    with pytest.raises(ConfigError) as e:
        load_config(p)
    msg = one_line_error(e.value)
    assert str(p) in msg
    assert "\x00" not in msg
