"""Loading a config: read the file, decide TOML or setup.txt, apply overrides, check data paths.

The priority order (defaults < file < overrides) is written once, in :func:`load_config`.
This module sits above both formats so that neither imports the other.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from whatnext.config.legacy import legacy_line, parse_setup
from whatnext.config.schema import Config, location, set_value, shown
from whatnext.config.toml import parse_toml, toml_line
from whatnext.errors import ConfigError, file_kind

# ---------------------------------------------------------------- files

#: The largest config file read (a whatnext.toml with every key is about 5 KB).
MAX_CONFIG_BYTES = 1024 * 1024


def read_text(path: Path) -> str:
    """Read a config file as UTF-8 text with one-line errors for missing, binary and non-UTF-8 files.

    Only a regular file of at most :data:`MAX_CONFIG_BYTES` is read: a FIFO would block and a
    device such as /dev/zero would never end.
    """
    try:
        kind = file_kind(path)
        if kind is not None and kind != "a folder":  # a folder: the IsADirectoryError below says so
            raise ConfigError(f"{path}: is {kind}, not a regular file; expected a config file (whatnext.toml or setup.txt)")
        with open(path, "rb") as fh:
            raw = fh.read(MAX_CONFIG_BYTES + 1)
        if len(raw) > MAX_CONFIG_BYTES:
            raise ConfigError(f"{path}: larger than {MAX_CONFIG_BYTES // 1024 // 1024} MiB, the most a config file may hold; "
                              f"is it the right file? (whatnext init writes one of about 5 KB)")
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found; create one with 'whatnext init'") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a folder, expected a config file (whatnext.toml or setup.txt)") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read config file ({e.strerror})") from None
    if b"\x00" in raw:
        raise ConfigError(f"{path}: looks like a binary file, expected a text config (whatnext.toml or setup.txt)")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise ConfigError(f"{path}:{line}: not UTF-8 text (byte 0x{raw[e.start]:02x}); save the file as UTF-8") from None
    text = text.removeprefix("\ufeff")
    if not text.strip():
        raise ConfigError(f"{path}: the config file is empty; write one with 'whatnext init --force'")
    return text


def is_toml_file(path: Path, text: str) -> bool:
    """Decide the format: .toml is TOML, .txt is legacy, otherwise sniff for 'key =' or '[section]'."""
    if path.suffix.lower() == ".toml":
        return True
    if path.suffix.lower() == ".txt":
        return False
    for line in text.splitlines():
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        return bool(re.match(r"^(\[[\w.\s]+\]|[\w.\"-]+\s*=)", s))
    return False


def load_config(
    path: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
    *,
    check_paths: bool = True,
) -> Config:
    """Build the config: defaults < file (TOML or setup.txt, detected) < ``overrides``.

    ``overrides`` maps ``"section.key"`` to a value (None values are skipped), as the CLI
    passes its options. With ``check_paths`` a configured data file that does not exist
    is a ConfigError naming the key.
    """
    if path is None:
        cfg = Config()
    else:
        p = Path(path)
        text = read_text(p)
        if is_toml_file(p, text):
            cfg = parse_toml(text, p)
        else:
            cfg = parse_setup(text, p)
    for dotted, value in (overrides or {}).items():
        if value is None:
            continue
        section, key = dotted.split(".", 1)
        set_value(cfg, section, key, value, file=None)
    if check_paths:
        check_data_paths(cfg)
    return cfg


def check_data_paths(cfg: Config) -> None:
    """ConfigError if a configured data file does not exist."""
    for key in ("path", "items_path"):
        value = getattr(cfg.data, key)
        if not value:
            continue
        target = cfg.resolve(value)
        try:
            problem = None if target.exists() else "which does not exist"
        except (OSError, ValueError) as e:  # a name too long, a NUL byte, ...
            problem = f"which cannot be used as a path ({getattr(e, 'strerror', None) or e})"
        if problem:
            where = location(cfg.source, _line_of_key(cfg, "data", key))
            raise ConfigError(
                f"{where}: key 'data.{key}' names {shown(target)}, {problem}; "
                f"fix the path (relative paths start at the config file's folder)"
            )


def _line_of_key(cfg: Config, section: str, key: str) -> int | None:
    if cfg.source is None or not cfg.source.exists():
        return None
    try:
        text = cfg.source.read_text("utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    if is_toml_file(cfg.source, text):
        return toml_line(text, section, key)
    return legacy_line(text, section, key)


