"""What every ``whatnext`` command shares: the option types, one-line errors and their exit codes,
JSON or rich output, ``--set`` parsing and the Ctrl-C handling of training (:mod:`whatnext.cli.app`
and :mod:`whatnext.cli.groups` hold the commands)."""

from __future__ import annotations

import functools
import json
import shlex
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Optional, TypeVar

import typer
from typer.core import TyperOption

from whatnext.errors import ConfigError, WhatnextError

_display_type_rich = TyperOption.display_type_rich


def _no_flag_metavar(self: TyperOption, ctx: Any) -> str | None:
    """A flag takes no value: show no ``<bool>`` beside it in --help."""
    return None if self.is_flag else _display_type_rich(self, ctx)


TyperOption.display_type_rich = _no_flag_metavar  # type: ignore[method-assign]

F = TypeVar("F", bound=Callable[..., Any])

ConfigOpt = Annotated[
    Optional[Path],
    typer.Option("--config", "-c", help="Config file: whatnext.toml or legacy setup.txt (format detected). "
                 "Default: built-in defaults and the demo data.", show_default=False),
]
SetOpt = Annotated[
    Optional[list[str]],
    typer.Option("--set", metavar="KEY=VALUE", help="Set any config key, e.g. --set train.batch_size=64 (repeatable; "
                 "the value is read as a TOML literal, else as text; wins over the file).", show_default=False),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as JSON for scripts (errors too, on stderr).")]

RunOpt = Annotated[Optional[str], typer.Option("--run", help="Run name: checkpoints live in models_dir/RUN (default: paths.run).", show_default=False)]
CheckpointOpt = Annotated[Optional[Path], typer.Option("--checkpoint", help="Use this checkpoint file instead of a run's best.", show_default=False)]
DiversityOpt = Annotated[Optional[float], typer.Option("--diversity", help="Trade accuracy for more varied lists, e.g. 0.5 (overrides recommend.diversity; 0 = off).", show_default=False)]
SplitOpt = Annotated[Optional[str], typer.Option("--split", help="valid (second-to-last event) or test (last event); default eval.split.", show_default=False)]
IncludeSeenOpt = Annotated[Optional[bool], typer.Option("--include-seen/--exclude-seen", help="Keep already played items in the ranking (default eval.include_seen: excluded).", show_default=False)]
WideOpt = Annotated[bool, typer.Option("--wide", help="Show every column however wide the terminal (default: fit it).")]
ColumnsOpt = Annotated[Optional[str], typer.Option("--columns", metavar="A,B,...", help="Show these columns, in this order (e.g. rank,item,title,score,tempo).", show_default=False)]


def console(stderr: bool = False) -> Any:
    import os

    from rich.console import Console

    # soft_wrap: a message is never broken by inserted newlines (the terminal folds it), so a path or a
    # command in it stays whole for copy-paste, grep and logs; tables are still laid out to the width
    con = Console(stderr=stderr, highlight=False, soft_wrap=True)
    if not con.is_terminal and not os.environ.get("COLUMNS", "").isdigit():
        # pipes and logs: wide tables instead of cells cut to one letter (COLUMNS still wins)
        con = Console(stderr=stderr, highlight=False, soft_wrap=True, width=200)
    return con


def fail(message: str, code: int, as_json: bool = False) -> typer.Exit:
    """Print one line on stderr (red text, or a JSON object) and return the Exit to raise."""
    if as_json:
        sys.stderr.write(json.dumps({"error": message, "exit_code": code}) + "\n")
        return typer.Exit(code)
    from rich.markup import escape

    # soft_wrap: the message stays one line however long (scripts and tests read it whole)
    console(stderr=True).print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)
    return typer.Exit(code)


def worker_rank() -> int | None:
    """This process's rank when torchrun (or --nproc) started it as one of several, else None."""
    import os

    try:
        return int(os.environ.get("RANK", "0")) if int(os.environ.get("WORLD_SIZE", "1")) > 1 else None
    except ValueError:
        return None


def fail_here(message: str, code: int, as_json: bool) -> typer.Exit:
    """fail(), in a distributed worker: the line names the rank and is recorded for the launcher; under
    ``--nproc`` the launcher prints it (one line for the job), so the worker only records it."""
    import os

    rank = worker_rank()
    if rank is None:
        return fail(message, code, as_json)
    from whatnext.rl.distributed import record_failure
    from whatnext.rl.launch import LAUNCHED

    record_failure(message)
    if os.environ.get(LAUNCHED):
        return typer.Exit(code)
    return fail(f"rank {rank}: {message}", code, as_json)


def _message_for(e: WhatnextError, config: Any) -> str:
    """The error's message; in a setup.txt project 'set data.X' names the setup.txt way."""
    msg = str(e)
    if config is not None and "set data." in msg:
        try:
            from whatnext.config import is_toml_file

            legacy = not is_toml_file(Path(config), Path(config).read_text("utf-8", errors="replace"))
        except OSError:
            legacy = False
        if legacy:
            from whatnext.config.legacy import legacy_hint

            msg = legacy_hint(msg, Path(config).name)
    return msg


def handle_errors(fn: F) -> F:
    """Turn WhatnextError into one line on stderr and its exit code; Ctrl-C into exit 130."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        as_json = bool(kwargs.get("as_json"))
        try:
            return fn(*args, **kwargs)
        except WhatnextError as e:
            raise fail_here(_message_for(e, kwargs.get("config")), e.exit_code, as_json) from None
        except KeyboardInterrupt:
            raise fail_here("interrupted", 130, as_json) from None
        except (typer.Exit, typer.Abort, SystemExit):
            raise
        except Exception as e:  # a bug: one line, unless the user asks for the traceback
            import os

            if os.environ.get("WHATNEXT_DEBUG"):
                raise
            raise fail(f"internal error: {type(e).__name__}: {e} (a bug: please report it; "
                       f"set WHATNEXT_DEBUG=1 to see the traceback)", 1, as_json) from None

    return wrapper  # type: ignore[return-value]


def print_json(obj: Any) -> None:
    """Write ``obj`` as JSON on stdout (plain, for pipes)."""
    sys.stdout.write(json.dumps(obj, indent=2, default=str) + "\n")


def show(result: dict[str, Any], as_json: bool, renderer: str, **options: Any) -> None:
    """Print a result as JSON, or with ``whatnext.cli.render.<renderer>`` (imported only then: rich is slow to load)."""
    if as_json:
        print_json(result)
        return
    from whatnext.cli import render

    getattr(render, renderer)(console(), result, **options)


def parse_sets(items: list[str] | None) -> dict[str, Any]:
    """``--set KEY=VALUE`` options as overrides: the value as a TOML literal (64, 0.5, true, [10, 20],
    "text"), else as the text itself; keys and types are checked with the config file's rules."""
    import tomllib

    from whatnext.config import known_keys
    from whatnext.config.schema import did_you_mean

    out: dict[str, Any] = {}
    for item in items or []:
        key, eq, raw = item.partition("=")
        key = key.strip()
        if not eq or not key:
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE, e.g. --set train.batch_size=64")
        if "." not in key:
            bare = {k.split(".", 1)[1]: k for k in known_keys()}
            hint = f" (did you mean '{bare[key]}'?)" if key in bare else did_you_mean(key, known_keys())
            raise ConfigError(f"--set {item!r}: expected a key as section.key{hint}")
        try:
            value: Any = tomllib.loads(f"v = {raw.strip()}")["v"]
        except tomllib.TOMLDecodeError:
            value = raw.strip()
        out[key] = value
    return out


def with_sets(sets: list[str] | None, **given: Any) -> dict[str, Any]:
    """--set values, then the command's own options (which win); None = not given."""
    return {**parse_sets(sets), **{k: v for k, v in given.items() if v is not None}}


def q(path: Any) -> str:
    """A path or value as the shell reads it back."""
    return shlex.quote(str(path))


class Interrupt:
    """SIGINT sets a flag the progress callback reads, so the loop can save and stop cleanly.

    Once training runs (``arm``), no Ctrl-C interrupts the save: later presses only say so.
    Before that (loading data) there is nothing to save and Ctrl-C stops at once.
    """

    def __init__(self) -> None:
        self.hit = False
        self.armed = False

    def __enter__(self) -> Interrupt:
        import signal

        self._old = signal.signal(signal.SIGINT, self._handle)
        # a distributed worker: torch's launcher answers Ctrl-C with SIGTERM to every process; treated
        # the same, rank 0 saves at the end of the step (all ranks stop there together)
        self.worker = worker_rank()
        self._old_term = signal.signal(signal.SIGTERM, self._handle) if self.worker is not None else None
        return self

    def arm(self) -> None:
        """Training has started: from now on Ctrl-C means 'save and stop'."""
        self.armed = True

    def _handle(self, signum: int, frame: Any) -> None:
        if self.worker:  # ranks > 0 stop when rank 0 says (or when it is gone); rank 0 speaks for the job
            self.hit = True
            return
        if not self.armed:
            raise KeyboardInterrupt
        import signal

        if signum == signal.SIGTERM:  # the launcher's: it says why (a Ctrl-C it caught, or another rank that failed)
            self.hit = True
            return
        sys.stderr.write("\nsaving, please wait (the checkpoint is being written; Ctrl-C cannot cut it short)\n"
                         if self.hit else "\nstopping after this step: saving a checkpoint, please wait\n")
        sys.stderr.flush()
        self.hit = True

    def __exit__(self, *exc: object) -> None:
        import signal

        signal.signal(signal.SIGINT, self._old)
        if self._old_term is not None:
            signal.signal(signal.SIGTERM, self._old_term)


def interrupted_exit(summary: dict[str, Any], config: Path | None, as_json: bool) -> typer.Exit:
    run = Path(summary["run_dir"]).name
    cmd = "whatnext train --resume" + (f" --config {q(config)}" if config else "") + f" --run {q(run)}"
    target = summary.get("total_steps")
    return fail_here(f"interrupted at step {summary['steps']} of {target}; checkpoint saved to {summary['checkpoint']}; "
                      f"resume (to step {target}) with: {cmd}", 130, as_json)

