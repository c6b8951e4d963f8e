"""TOML, the modern config format: parse into a validated :class:`Config` and write one back with comments.

Only the standard library and tomli-w (imported when writing) are used.
"""

from __future__ import annotations

import difflib
import re
import tomllib
from dataclasses import fields
from pathlib import Path

from whatnext.config.schema import SECTIONS, Config, did_you_mean, known_keys, location, set_value, shown
from whatnext.errors import ConfigError


def toml_line(text: str, section: str, key: str | None) -> int | None:
    """Best-effort line number of ``[section]`` / ``key`` in TOML text (tomllib gives none); section "" is the top level."""
    in_section = section == ""
    for n, line in enumerate(text.splitlines(), 1):
        s = line.strip()
        if s.startswith("["):
            in_section = s.strip("[] ") == section
            if in_section and key is None:
                return n
            continue
        if in_section and key is not None and re.match(rf"^\"?{re.escape(key)}\"?\s*=", s):
            return n
    return None


def parse_toml(text: str, path: Path) -> Config:
    """Parse TOML text into a validated Config."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        msg = str(e)
        if "Cannot overwrite a value" in msg or "Cannot declare" in msg:
            msg += " (a key or section given twice)"
        m = re.search(r"line (\d+)", msg)
        if not m:
            raise ConfigError(f"{path}: invalid TOML: {msg}") from None
        n = int(m.group(1))
        lines = text.split("\n")  # tomllib counts lines by '\n'
        reads = shown(lines[n - 1].strip())[:80] if 0 < n <= len(lines) else ""
        raise ConfigError(f"{path}:{n}: invalid TOML: {msg}; the line reads '{reads}'") from None
    cfg = Config(source=path)
    for section, values in doc.items():
        if section in SECTIONS and not isinstance(values, dict):
            line = toml_line(text, "", section)
            raise ConfigError(f"{location(path, line)}: '{section}' must be a [{section}] section, found a plain value")
        if not isinstance(values, dict):  # a key above the first [section]
            bare = {k.split(".", 1)[1]: k for k in known_keys()}
            match = difflib.get_close_matches(section, list(bare), n=1, cutoff=0.5)
            hint = f" (did you mean '{bare[match[0]]}', i.e. {match[0]} under [{bare[match[0]].split('.')[0]}]?)" if match else ""
            raise ConfigError(
                f"{location(path, toml_line(text, '', section))}: key '{shown(section)}' is outside any [section]{hint}; "
                f"every key belongs to one of {', '.join(f'[{x}]' for x in SECTIONS)}"
            )
        if section not in SECTIONS:
            raise ConfigError(
                f"{location(path, toml_line(text, section, None))}: unknown section [{shown(section)}]"
                f"{did_you_mean(section, SECTIONS)}; expected one of {', '.join(SECTIONS)}"
            )
        for key, value in values.items():
            set_value(cfg, section, key, value, file=path, line=toml_line(text, section, key))
    return cfg



# ---------------------------------------------------------------- writing TOML


def to_toml(cfg: Config) -> str:
    """The config as a commented TOML document holding every key (written with tomli-w)."""
    import tomli_w

    out = [
        "# whatnext configuration. Every key is shown with its value; delete a line to use the default.",
        "# Relative paths are resolved against this file's folder. Reference: README.md, 'Config reference'.",
    ]
    for section, cls in SECTIONS.items():
        out.append("")
        out.append(f"[{section}]")
        obj = getattr(cfg, section)
        for f in fields(cls):
            value = getattr(obj, f.name)
            out.append(f"# {f.metadata['doc']}")
            if isinstance(value, dict):
                # tomli-w writes tables as sections; an inline table keeps the key beside its comment
                inline = ", ".join(tomli_w.dumps({k: v}).strip() for k, v in value.items())
                out.append(f"{f.name} = {{ {inline} }}")
            elif isinstance(value, list):
                items = ", ".join(tomli_w.dumps({"v": v}).strip()[4:] for v in value)
                out.append(f"{f.name} = [{items}]")
            else:
                out.append(tomli_w.dumps({f.name: value}).strip())
    return "\n".join(out) + "\n"
