"""Property tests: whatever bytes a user feeds the readers, the answer is a result or a one-line WhatnextError."""

from __future__ import annotations

import tempfile
from pathlib import Path

from helpers import config_for, one_line_error
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from whatnext.config import load_config
from whatnext.data import load_dataset
from whatnext.errors import WhatnextError

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# text that looks like the formats, so that examples get past the first checks
SETUP_TOKENS = st.sampled_from([
    "train", "TRAIN", "*train", "model", "lstm", "gru", "data", "epochs", "model_agent_path", "model_critic_path",
    "yes", "no", "none", "10", "-1", "x.csv", "~nobody_here/x", "a b", ",", ", ", ",\n", "\n", "\r\n", " ", "\t", "#",
    "\x00", "\x0b", "\u2028", "é", "\ufeff",
])
TOML_TOKENS = st.sampled_from([
    "[train]", "[data]", "[model]", "[eval]", "[paths]", "[trian]", "[[x]]", "epochs", "seed", "path", "ks", "name",
    "rewards", "relax", " = ", "=", "3", "-3", "0.5", "1e400", "nan", "inf", "true", '"lstm"', '"x.csv"', '"a\\nb"',
    '"\\u0000"', "[1, 2]", '["a"]', "{diversity = 1}", "{novelty = 1}", "\n", "\r\n", " ", "#", "'", '"', "é",
])
CSV_TOKENS = st.sampled_from([
    "user_id", "item_id", "timestamp", "rating", "energy", "title", "u1", "s1", "1", "2.5", "-3", "nan", "inf", "",
    '"', "'", ",", ";", "\t", "|", " ", "\n", "\r\n", "\x00", "é", "2024-01-01", "yesterday", "1e400", "#", "\\",
])


def _check(call) -> None:
    try:
        call()
    except WhatnextError as e:
        one_line_error(e)


def _file(data: bytes | str, name: str) -> tuple[tempfile.TemporaryDirectory, Path]:
    tmp = tempfile.TemporaryDirectory()
    p = Path(tmp.name) / name
    p.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8", "surrogatepass"))
    return tmp, p


def _config(data: bytes | str, name: str) -> None:
    tmp, p = _file(data, name)
    with tmp:
        _check(lambda: load_config(p))


@SETTINGS
@given(st.one_of(st.text(), st.lists(SETUP_TOKENS, max_size=30).map("".join)))
@example("train yes\nmodel, lstm")
@example("data, ~no_such_user_here/x.csv")
@example("data, " + "x" * 300)
def test_setup_txt_reader(text: str) -> None:
    _config(text, "setup.txt")


@SETTINGS
@given(st.binary(max_size=300))
def test_setup_txt_reader_bytes(data: bytes) -> None:
    _config(data, "setup.txt")


@SETTINGS
@given(st.one_of(st.text(), st.lists(TOML_TOKENS, max_size=30).map("".join)))
@example('[train]\n"a\\nb" = 1\n')
@example("epochs = 3\n")
@example('[data]\npath = "\\u0000"\n')
def test_toml_reader(text: str) -> None:
    _config(text, "whatnext.toml")


@SETTINGS
@given(st.binary(max_size=300))
def test_toml_reader_bytes(data: bytes) -> None:
    _config(data, "whatnext.toml")


def _data(data: bytes | str, name: str = "events.csv", **cfg: object) -> None:
    tmp, p = _file(data, name)
    with tmp:
        _check(lambda: load_dataset(config_for(p, **cfg)))


CSV_LINES = st.lists(st.lists(CSV_TOKENS, max_size=8).map("".join), max_size=8).map("\n".join)


@SETTINGS
@given(st.one_of(CSV_LINES, st.text(max_size=200)))
@example('user_id,item_id,timestamp\n"a\nb",x,1\n')
@example('user_id,item_id,"time\nstamp"\na,x,1\n')
@example("user_id,item_id,timestamp,energy\nu,s,1,1e400\n")
def test_csv_loader(text: str) -> None:
    _data(text)


@SETTINGS
@given(st.binary(max_size=300))
def test_csv_loader_bytes(data: bytes) -> None:
    _data(data)


@SETTINGS
@given(CSV_LINES, st.sampled_from(["", ",", ";", "\t", "|", " "]), st.sampled_from(["auto", "yes", "no"]))
def test_csv_loader_with_settings(text: str, delimiter: str, header: str) -> None:
    _data("user_id,item_id,timestamp,energy\n" + text, delimiter=delimiter, header=header,
          columns=["user_id", "item_id", "timestamp", "energy"] if header == "no" else [])


@SETTINGS
@given(st.binary(max_size=200), st.sampled_from(["u.data", "ratings.csv", "e.parquet", "e.pk", "u.item"]))
def test_other_readers_bytes(data: bytes, name: str) -> None:
    _data(data, name)

