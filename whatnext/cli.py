"""The ``whatnext`` command line: thin Typer commands over :mod:`whatnext.engine`.

This is the only module that knows typer and rich. Each command parses options, calls one
engine function, and renders the result (a rich table, or JSON with ``--json``). A
:class:`WhatnextError` becomes one red line on stderr and its documented exit code.
"""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path
from typing import Annotated, Any, Callable, Optional, TypeVar

import typer

from whatnext.errors import WhatnextError

app = typer.Typer(
    name="whatnext",
    help="whatnext: reinforcement-learning next-item recommenders (actor-critic LSTMs) for listening logs.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

F = TypeVar("F", bound=Callable[..., Any])

ConfigOpt = Annotated[
    Optional[Path],
    typer.Option("--config", "-c", help="Config file: whatnext.toml or legacy setup.txt (format detected). "
                 "Default: built-in defaults and the demo data.", show_default=False),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as JSON for scripts.")]


def _console(stderr: bool = False) -> Any:
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=True)


def fail(message: str, code: int) -> typer.Exit:
    """Print one red line on stderr and return the Exit to raise."""
    from rich.markup import escape

    _console(stderr=True).print(f"[bold red]error:[/] {escape(message)}")
    return typer.Exit(code)


def handle_errors(fn: F) -> F:
    """Turn WhatnextError into one line on stderr and its exit code; Ctrl-C into exit 130."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except WhatnextError as e:
            raise fail(str(e), e.exit_code) from None
        except KeyboardInterrupt:
            raise fail("interrupted", 130) from None

    return wrapper  # type: ignore[return-value]


def print_json(obj: Any) -> None:
    """Write ``obj`` as JSON on stdout (plain, for pipes)."""
    sys.stdout.write(json.dumps(obj, indent=2, default=str) + "\n")


@app.command()
@handle_errors
def init(
    folder: Annotated[Path, typer.Argument(help="Folder to write the config (and demo data) into.")] = Path("."),
    legacy: Annotated[bool, typer.Option("--legacy", help="Write the original setup.txt instead of whatnext.toml.")] = False,
    demo: Annotated[bool, typer.Option("--demo", help="Also write the demo dataset into FOLDER/data/ and point the config at it.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Overwrite existing files.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Write a commented config file holding every option with its default."""
    from whatnext import engine

    result = engine.init_project(folder, legacy=legacy, demo=demo, force=force)
    if as_json:
        print_json(result)
        return
    con = _console()
    for path in result["written"]:
        con.print(f"[green]wrote[/] {path}")
    con.print(f"next: whatnext inspect-data --config {result['config']}")


@app.command("inspect-data")
@handle_errors
def inspect_data(
    path: Annotated[Optional[Path], typer.Argument(help="Events file to inspect (overrides data.path).", show_default=False)] = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Describe the data: users, items, events, time span, history lengths, popularity, features, problems."""
    from whatnext import engine

    result = engine.inspect_data(config, path)
    if as_json:
        print_json(result)
        return
    from whatnext.render import render_inspect

    render_inspect(_console(), result)


def main() -> None:
    """Console-script entry point."""
    app()
