"""The original ``setup.txt`` config: a comma-separated list of alternating keys and values.

Keys and yes/no values are case-insensitive; whitespace and line breaks around tokens do
not matter; a leading ``*`` on a key (as in the original README) is tolerated; lines
starting with ``#`` are comments. Paths keep their case and are resolved against the
file's folder. The value ``none`` stands for "not set" (for ``data``: the built-in demo
data). Paths cannot contain commas: that is the separator.

========================  =============================  =====================================
setup.txt key             whatnext.toml key              meaning
========================  =============================  =====================================
train (yes/no)            train.enabled                  'whatnext run' trains or recommends
model (lstm)              model.name                     model architecture
data (path)               data.path                      the training data
epochs (integer)          train.samples                  total training samples to run
model_agent_path (path)   paths.model_agent_path         actor weights also written/read here
model_critic_path (path)  paths.model_critic_path        critic weights also written/read here
========================  =============================  =====================================

Beside these, every whatnext.toml key is accepted in its dotted form (``data.item_col, song_id``;
``train.batch_size, 64``): the value is read as a TOML literal where it is one (numbers, true/false,
``[10]``), yes/no for true/false keys, and as text otherwise. A value cannot hold a comma.
"""

from __future__ import annotations

import re
import tomllib
import typing
from pathlib import Path
from typing import Any

from whatnext.config.schema import SECTIONS, Config, did_you_mean, known_keys, set_value, shown
from whatnext.errors import ConfigError

#: setup.txt key -> (section, key) in Config, in the order they are written.
LEGACY_KEYS: dict[str, tuple[str, str]] = {
    "train": ("train", "enabled"),
    "model": ("model", "name"),
    "data": ("data", "path"),
    "epochs": ("train", "samples"),
    "model_agent_path": ("paths", "model_agent_path"),
    "model_critic_path": ("paths", "model_critic_path"),
}
_PATH_KEYS = {"data", "model_agent_path", "model_critic_path"}
_NONE = "none"


def _tokens(text: str) -> list[tuple[str, int]]:
    """Split on commas into (stripped token, line number), skipping ``#`` comment lines."""
    kept = "\n".join("" if line.lstrip().startswith("#") else line for line in text.split("\n"))
    out: list[tuple[str, int]] = []
    pos = 0
    for part in kept.split(","):
        lead = len(part) - len(part.lstrip())
        line = kept.count("\n", 0, pos + lead) + 1
        out.append((part.strip(), line))
        pos += len(part) + 1
    while out and not out[-1][0]:  # a trailing comma (or trailing blank lines) ends the list
        out.pop()
    return out


def parse_setup(text: str, path: Path) -> Config:
    """Parse setup.txt text into a validated Config (file and line in every error)."""
    tokens = _tokens(text)
    if not tokens:
        raise ConfigError(f"{path}: the config file is empty; write one with 'whatnext init --legacy --force'")
    cfg = Config(source=path)
    seen: dict[tuple[str, str], tuple[int, str]] = {}
    for i in range(0, len(tokens), 2):
        raw_key, line = tokens[i]
        key = raw_key.lstrip("*").strip().lower()
        where = f"{path}:{line}"
        for token, tline in tokens[i : i + 2]:
            if "\n" in token:  # line breaks around tokens do not matter, inside one they mean a lost comma
                raise ConfigError(
                    f"{path}:{tline}: '{shown(token)}' runs over a line break; is a comma missing? "
                    f"expected 'key, value' pairs separated by commas"
                )
        if not key:
            raise ConfigError(f"{where}: empty key (two commas in a row?); expected 'key, value' pairs separated by commas")
        if key not in LEGACY_KEYS and key not in _DOTTED:
            hint = did_you_mean(key, [*LEGACY_KEYS, *_DOTTED])
            raise ConfigError(
                f"{where}: unknown key '{shown(raw_key)}'{hint}; setup.txt keys are {', '.join(LEGACY_KEYS)}, "
                f"or any whatnext.toml key as section.key (e.g. data.item_col)"
            )
        if i + 1 >= len(tokens) or not tokens[i + 1][0]:
            raise ConfigError(f"{where}: key '{key}' has no value; write '{key}, VALUE'")
        section, field_name = LEGACY_KEYS.get(key) or _DOTTED[key]
        if (section, field_name) in seen:
            first, name = seen[(section, field_name)]
            also = "" if name == key else f" (as '{name}')"
            raise ConfigError(f"{where}: key '{key}' given twice (first on line {first}{also}); keep one")
        seen[(section, field_name)] = (line, key)
        value, vline = tokens[i + 1]
        where_v = f"{path}:{vline}"
        parsed: object
        if key in _DOTTED:
            parsed = _dotted_value(section, field_name, value)
        elif key == "train":
            low = value.lower()
            if low not in ("yes", "no"):
                raise ConfigError(f"{where_v}: key 'train' is {value!r}, expected yes or no")
            parsed = low == "yes"
        elif key == "epochs":
            if not re.fullmatch(r"[+]?\d+", value):
                raise ConfigError(f"{where_v}: key 'epochs' is {value!r}, expected a whole number of training samples")
            parsed = int(value)
        elif key == "model":
            parsed = value.lower()
        else:  # a path: keep its case
            parsed = "" if value.lower() == _NONE else value
        set_value(cfg, section, field_name, parsed, file=path, line=vline)
    return cfg


#: every whatnext.toml key in its dotted setup.txt form
_DOTTED: dict[str, tuple[str, str]] = {k: (k.split(".", 1)[0], k.split(".", 1)[1]) for k in known_keys()}


def _dotted_value(section: str, key: str, text: str) -> Any:
    """A dotted key's value: yes/no for true/false keys, a TOML literal where it is one, else the text."""
    tp = typing.get_type_hints(SECTIONS[section]).get(key)
    if tp is bool and text.lower() in ("yes", "no"):
        return text.lower() == "yes"
    if text.lower() == _NONE and tp is str:
        return ""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def legacy_hint(message: str, file_name: str = "setup.txt") -> str:
    """A message advising 'set data.X', completed with the way that works in a setup.txt project."""
    m = re.search(r"set (data\.[a-z_]+)", message)
    if m is None:
        return message
    value = "COLUMN" if m.group(1).endswith("_col") else "VALUE"
    return (f"{message}; in {file_name} that is a line '{m.group(1)}, {value}' "
            f"(or convert the project with 'whatnext init --from {file_name}')")


def legacy_line(text: str, section: str, key: str) -> int | None:
    """Line of the setup.txt key (original or dotted) mapped to ``section.key`` in setup.txt text, if any."""
    tokens = _tokens(text)
    for i in range(0, len(tokens), 2):
        k = tokens[i][0].lstrip("*").strip().lower()
        if (LEGACY_KEYS.get(k) == (section, key) or k == f"{section}.{key}") and i + 1 < len(tokens):
            return tokens[i + 1][1]
    return None


def to_setup(cfg: Config) -> str:
    """The legacy keys of ``cfg`` as setup.txt text, one pair a line.

    The six original keys always; every other key that differs from its default in dotted form
    (``data.item_col, song_id``). A value setup.txt cannot hold (a list of two or more, text with a
    comma) is named in a comment instead: whatnext.toml holds it (``init --from``'s way back).
    """
    head = (
        "# whatnext legacy config: comma-separated 'key, value' pairs; case, spaces and line breaks do not matter.\n"
        "# train yes/no; model lstm; data = events file ('none' = built-in demo data);\n"
        "# epochs = total training samples; model_*_path = where actor/critic weights are written and read.\n"
    )
    pairs = []
    for key, (section, name) in LEGACY_KEYS.items():
        value = getattr(getattr(cfg, section), name)
        if key == "train":
            text = "yes" if value else "no"
        elif key in _PATH_KEYS:
            text = value or _NONE
            if "," in text:
                raise ConfigError(f"key '{key}': the path {text!r} holds a comma, which setup.txt cannot store; use whatnext.toml")
        else:
            text = str(value)
        pairs.append(f"{key}, {text}")
    defaults = Config().to_dict()
    mapped = set(LEGACY_KEYS.values())
    lost: list[str] = []
    for dotted, (section, name) in _DOTTED.items():
        value = getattr(getattr(cfg, section), name)
        if (section, name) in mapped or value == defaults[section][name]:
            continue
        text = _literal(value) if not isinstance(value, str) else value
        if "," in text or not text.strip() or text != text.strip() or "\n" in text:
            lost.append(dotted)
            continue
        if isinstance(value, str) and _dotted_value(section, name, text) != value:
            text = _literal(value)  # text that would read back as a number or list: quote it
        pairs.append(f"{dotted}, {text}")
    if lost:
        head += f"# not written (setup.txt cannot hold these values; use whatnext.toml): {' '.join(lost)}\n"
    return head + ",\n".join(pairs) + "\n"


def _literal(value: Any) -> str:
    """``value`` as a one-line TOML literal."""
    import json

    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(_literal(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{json.dumps(str(k))} = {_literal(v)}" for k, v in value.items()) + " }"
    return json.dumps(value) if isinstance(value, str) else repr(value)
