"""The ``whatnext`` command line: thin Typer commands over :mod:`whatnext.engine`.

This is the only module that knows typer and rich. Each command parses options, calls one
engine function, and renders the result (a rich table, or JSON with ``--json``). A
:class:`WhatnextError` becomes one red line on stderr and its documented exit code.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Optional, TypeVar

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

    con = Console(stderr=stderr, highlight=False)
    if not con.is_terminal:  # pipes and logs: wide tables instead of cells cut to one letter
        con = Console(stderr=stderr, highlight=False, width=200)
    return con


def fail(message: str, code: int) -> typer.Exit:
    """Print one red line on stderr and return the Exit to raise."""
    from rich.markup import escape

    # soft_wrap: the message stays one line however long (scripts and tests read it whole)
    _console(stderr=True).print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)
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
        except (typer.Exit, typer.Abort, SystemExit):
            raise
        except Exception as e:  # a bug: one line, unless the user asks for the traceback
            import os

            if os.environ.get("WHATNEXT_DEBUG"):
                raise
            raise fail(f"internal error: {type(e).__name__}: {e} (a bug: please report it; "
                       f"set WHATNEXT_DEBUG=1 to see the traceback)", 1) from None

    return wrapper  # type: ignore[return-value]


def print_json(obj: Any) -> None:
    """Write ``obj`` as JSON on stdout (plain, for pipes)."""
    sys.stdout.write(json.dumps(obj, indent=2, default=str) + "\n")


def show(result: dict[str, Any], as_json: bool, renderer: str) -> None:
    """Print a result as JSON, or with ``whatnext.cli.render.<renderer>`` (imported only then: rich is slow to load)."""
    if as_json:
        print_json(result)
        return
    from whatnext.cli import render

    getattr(render, renderer)(_console(), result)


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
    show(result, as_json, "render_inspect")


RunOpt = Annotated[Optional[str], typer.Option("--run", help="Run name: checkpoints live in models_dir/RUN (default: paths.run).", show_default=False)]
CheckpointOpt = Annotated[Optional[Path], typer.Option("--checkpoint", help="Use this checkpoint file instead of a run's best.", show_default=False)]
DiversityOpt = Annotated[Optional[float], typer.Option("--diversity", help="Trade accuracy for more varied lists, e.g. 0.5 (overrides recommend.diversity; 0 = off).", show_default=False)]


class _Interrupt:
    """SIGINT sets a flag the progress callback reads, so the loop can save and stop cleanly."""

    def __init__(self) -> None:
        self.hit = False

    def __enter__(self) -> _Interrupt:
        import signal

        self._old = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.hit:  # a second Ctrl-C: stop now
            raise KeyboardInterrupt
        self.hit = True

    def __exit__(self, *exc: object) -> None:
        import signal

        signal.signal(signal.SIGINT, self._old)


@app.command()
@handle_errors
def train(
    config: ConfigOpt = None,
    epochs: Annotated[Optional[int], typer.Option("--epochs", "-e", help="Passes over all training positions (overrides train.epochs and the legacy sample count).", show_default=False)] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the run from its newest good checkpoint.")] = False,
    seed: Annotated[Optional[int], typer.Option("--seed", help="Random seed (overrides train.seed).", show_default=False)] = None,
    run: RunOpt = None,
    algorithm: Annotated[Optional[str], typer.Option("--algorithm", help="Training algorithm: original or hybrid (overrides train.algorithm).", show_default=False)] = None,
    force: Annotated[bool, typer.Option("--force", help="Delete the run's existing checkpoints and start over.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Plain log lines instead of a progress bar.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Train the actor and critic; checkpoints go to models_dir/RUN. Ctrl-C saves and exits 130."""
    from whatnext import engine
    from whatnext.cli.render import TrainProgress

    overrides = {"train.epochs": epochs, "train.samples": 0 if epochs is not None else None,
                 "train.seed": seed, "paths.run": run, "train.algorithm": algorithm}
    con = _console(stderr=as_json)
    with _Interrupt() as interrupt:
        progress = TrainProgress(con, plain=quiet or as_json or not con.is_terminal, interrupt=interrupt)
        summary = engine.train(config, overrides, resume=resume, callback=progress, force=force)
    if as_json:
        print_json(summary)
    else:
        progress.summary(summary)
    if summary["status"] == "interrupted":
        resume_cmd = "whatnext train --resume" + (f" --config {config}" if config else "") + (f" --run {run}" if run else "")
        raise fail(f"interrupted at step {summary['steps']}; checkpoint saved to {summary['checkpoint']}; "
                   f"resume with: {resume_cmd}", 130)


@app.command()
@handle_errors
def recommend(
    user: Annotated[Optional[str], typer.Option("--user", "-u", help="External id of the user to recommend for.", show_default=False)] = None,
    history: Annotated[Optional[str], typer.Option("--history", help="Comma-separated item ids: recommend for a history not in the data.", show_default=False)] = None,
    k: Annotated[int, typer.Option("-k", help="How many items to recommend.")] = 10,
    config: ConfigOpt = None,
    run: RunOpt = None,
    checkpoint: CheckpointOpt = None,
    include_seen: Annotated[bool, typer.Option("--include-seen", help="Allow items the user already played.")] = False,
    all_users: Annotated[bool, typer.Option("--all-users", help="Recommend for every user; needs --output.")] = False,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="With --all-users: write FILE.parquet or FILE.csv.", show_default=False)] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing --output file.")] = False,
    diversity: DiversityOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Recommend the next items for a user (or a given history, or every user) from a trained run."""
    from whatnext import engine

    result = engine.recommend(
        config, {"recommend.diversity": diversity}, user=user, history=history.split(",") if history is not None else None, k=k, run=run,
        checkpoint=checkpoint, include_seen=include_seen, all_users=all_users, output=output, force=force,
    )
    show(result, as_json, "render_recommendations")


@app.command("eval")
@handle_errors
def eval_cmd(
    config: ConfigOpt = None,
    run: RunOpt = None,
    checkpoint: CheckpointOpt = None,
    split: Annotated[Optional[str], typer.Option("--split", help="valid (second-to-last event) or test (last event); default eval.split.", show_default=False)] = None,
    include_seen: Annotated[Optional[bool], typer.Option("--include-seen/--exclude-seen", help="Keep already played items in the ranking (default eval.include_seen: excluded).", show_default=False)] = None,
    with_baselines: Annotated[bool, typer.Option("--baselines", help="Also evaluate random, popular, markov, neighbours and the supervised LSTM.")] = False,
    diversity: DiversityOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Leave-one-out evaluation with full ranking: HR, NDCG, MRR, coverage, diversity, novelty."""
    from whatnext import engine

    progress = None
    with _Interrupt() as interrupt:
        if with_baselines:  # a baseline that learns trains once, with a progress bar, then loads from its run
            from whatnext.cli.render import TrainProgress

            con = _console(stderr=as_json)
            progress = TrainProgress(con, plain=as_json or not con.is_terminal, interrupt=interrupt)
        result = engine.evaluate(config, {"recommend.diversity": diversity}, run=run, checkpoint=checkpoint, split=split,
                                 include_seen=include_seen, baselines=with_baselines, callback=progress)
    show(result, as_json, "render_eval")


checkpoints_app = typer.Typer(help="List, show and prune the checkpoints of training runs.", no_args_is_help=True)
app.add_typer(checkpoints_app, name="checkpoints")


@checkpoints_app.command("list")
@handle_errors
def checkpoints_list(config: ConfigOpt = None, run: RunOpt = None, as_json: JsonOpt = False) -> None:
    """Runs and their checkpoints: step, time, validation metrics, size, best/latest."""
    from whatnext import engine

    result = engine.list_checkpoints(config, run=run)
    show(result, as_json, "render_checkpoints")


@checkpoints_app.command("show")
@handle_errors
def checkpoints_show(config: ConfigOpt = None, run: RunOpt = None, checkpoint: CheckpointOpt = None,
                     as_json: JsonOpt = False) -> None:
    """One checkpoint's step, algorithm, model arguments, metrics and config (default: the run's best)."""
    from whatnext import engine

    result = engine.show_checkpoint(config, run=run, checkpoint=checkpoint)
    if as_json:
        print_json(result)
        return
    from whatnext.cli.render import render_mapping

    render_mapping(_console(), f"Checkpoint {result['path']}", {k: v for k, v in result.items() if k != "config"})


@checkpoints_app.command("prune")
@handle_errors
def checkpoints_prune(
    config: ConfigOpt = None, run: RunOpt = None,
    keep: Annotated[Optional[int], typer.Option("--keep", help="Checkpoints to keep (default: train.keep_last); best and latest always stay.", show_default=False)] = None,
    as_json: JsonOpt = False,
) -> None:
    """Delete all but the newest N checkpoints of a run, keeping best and latest."""
    from whatnext import engine

    result = engine.prune_checkpoints(config, run=run, keep=keep)
    if as_json:
        print_json(result)
        return
    _console().print(f"removed {len(result['removed'])} checkpoints from run {result['run']}; {result['kept']} left")


@app.command("run")
@handle_errors
def run_cmd(
    config: ConfigOpt = None,
    k: Annotated[int, typer.Option("-k", help="Inference: items per user.")] = 10,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Plain log lines instead of a progress bar.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """What the original main.py did: train when the config says 'train, yes', else recommend (inference)."""
    from whatnext import engine
    from whatnext.cli.render import TrainProgress

    con = _console(stderr=as_json)
    with _Interrupt() as interrupt:
        progress = TrainProgress(con, plain=quiet or as_json or not con.is_terminal, interrupt=interrupt)
        result = engine.run_legacy(config, k=k, callback=progress)
    if as_json:
        print_json(result)
    elif result["mode"] == "train":
        progress.summary(result)
    else:
        from whatnext.cli.render import render_mapping

        render_mapping(con, f"Recommendations (model {result['model']})",
                       {u: ", ".join(items) for u, items in result["recommendations"].items()})
    if result.get("status") == "interrupted":
        raise fail(f"interrupted at step {result['steps']}; resume with: whatnext train --resume", 130)


def main() -> None:
    """Console-script entry point: usage errors (bad option, missing value) become one line, exit 2."""
    try:
        from typer._click import exceptions as cx  # typer >= 0.22 carries its own click
    except ImportError:  # pragma: no cover - older typer uses click itself
        from click import exceptions as cx  # type: ignore[no-redef]
    try:
        rc = app(standalone_mode=False)  # returns an Exit's code instead of raising it
    except cx.NoArgsIsHelpError as e:
        sys.stdout.write(e.ctx.get_help() + "\n" if e.ctx is not None else "")
        rc = 0
    except cx.UsageError as e:
        hint = f"; see '{e.ctx.command_path} --help'" if e.ctx is not None else ""
        rc = fail(f"{e.format_message()}{hint}", 2).exit_code
    except cx.ClickException as e:
        rc = fail(e.format_message(), 1).exit_code
    except (typer.Abort, KeyboardInterrupt):
        rc = fail("interrupted", 130).exit_code
    except typer.Exit as e:
        rc = e.exit_code
    raise SystemExit(rc if isinstance(rc, int) else 0)
