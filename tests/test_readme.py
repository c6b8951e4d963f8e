"""The README cannot drift from the code: every config key, every exit code, the CI command."""

from __future__ import annotations

from pathlib import Path

from whatnext.config import known_keys
from whatnext.config.legacy import LEGACY_KEYS
from whatnext.errors import EXIT_CODES

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def test_every_config_key_is_documented() -> None:
    missing = [k for k in known_keys() if f"`{k}`" not in README]
    assert not missing, f"README config reference lacks {missing}"


def test_every_legacy_key_is_documented() -> None:
    assert all(f"`{k}`" in README for k in LEGACY_KEYS)


def test_every_exit_code_is_documented() -> None:
    for code, meaning in EXIT_CODES.items():
        assert f"| {code} | {meaning} |" in README


def test_ci_runs_the_readme_test_command_verbatim() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    blocks = README.split("```bash\n")[1:]
    commands = [b.split("\n```")[0].strip() for b in blocks]
    test_cmd = next(c for c in commands if "pytest" in c)
    assert test_cmd in ci.splitlines()


def test_readme_lists_every_cli_command() -> None:
    from typer.main import get_command

    from whatnext.cli import app

    for name in get_command(app).commands:  # type: ignore[attr-defined]
        assert f"whatnext {name}" in README, name
