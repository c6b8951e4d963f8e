"""The ``whatnext`` command line: thin Typer commands over :mod:`whatnext.engine`.

This is the only module that knows typer and rich. Each command parses options, calls one
engine function, and renders the result (a rich table, or JSON with ``--json``). A
:class:`WhatnextError` becomes one red line on stderr (a JSON object under ``--json``) and
its documented exit code.
"""

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

app = typer.Typer(
    name="whatnext",
    help="whatnext: reinforcement-learning next-item recommenders (actor-critic LSTMs) for listening logs.",
    epilog="Example: whatnext init demo --demo && whatnext train --config demo/whatnext.toml",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

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


def _version(value: bool) -> None:
    if value:
        from whatnext import __version__

        sys.stdout.write(f"whatnext {__version__}\n")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", "-V", help="Show the version and exit.", callback=_version,
                                          is_eager=True)] = False,
) -> None:
    """whatnext: reinforcement-learning next-item recommenders (actor-critic LSTMs) for listening logs."""


def _console(stderr: bool = False) -> Any:
    import os

    from rich.console import Console

    con = Console(stderr=stderr, highlight=False)
    if not con.is_terminal and not os.environ.get("COLUMNS", "").isdigit():
        # pipes and logs: wide tables instead of cells cut to one letter (COLUMNS still wins)
        con = Console(stderr=stderr, highlight=False, width=200)
    return con


def fail(message: str, code: int, as_json: bool = False) -> typer.Exit:
    """Print one line on stderr (red text, or a JSON object) and return the Exit to raise."""
    if as_json:
        sys.stderr.write(json.dumps({"error": message, "exit_code": code}) + "\n")
        return typer.Exit(code)
    from rich.markup import escape

    # soft_wrap: the message stays one line however long (scripts and tests read it whole)
    _console(stderr=True).print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)
    return typer.Exit(code)


def _worker_rank() -> int | None:
    """This process's rank when torchrun (or --nproc) started it as one of several, else None."""
    import os

    try:
        return int(os.environ.get("RANK", "0")) if int(os.environ.get("WORLD_SIZE", "1")) > 1 else None
    except ValueError:
        return None


def _fail_here(message: str, code: int, as_json: bool) -> typer.Exit:
    """fail(), in a distributed worker: the line names the rank and is recorded for the launcher; under
    ``--nproc`` the launcher prints it (one line for the job), so the worker only records it."""
    import os

    rank = _worker_rank()
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
            raise _fail_here(_message_for(e, kwargs.get("config")), e.exit_code, as_json) from None
        except KeyboardInterrupt:
            raise _fail_here("interrupted", 130, as_json) from None
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

    getattr(render, renderer)(_console(), result, **options)


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


def _overrides(sets: list[str] | None, **given: Any) -> dict[str, Any]:
    """--set values, then the command's own options (which win); None = not given."""
    return {**parse_sets(sets), **{k: v for k, v in given.items() if v is not None}}


def q(path: Any) -> str:
    """A path or value as the shell reads it back."""
    return shlex.quote(str(path))


@app.command(epilog="Examples: whatnext init myproject  ·  whatnext init demo --demo  ·  "
             "whatnext init --from setup.txt")
@handle_errors
def init(
    folder: Annotated[Path, typer.Argument(help="Folder to write the config (and demo data) into.")] = Path("."),
    legacy: Annotated[bool, typer.Option("--legacy", help="Write the original setup.txt instead of whatnext.toml.")] = False,
    demo: Annotated[bool, typer.Option("--demo", help="Also write the demo dataset into FOLDER/data/ and point the config at it.")] = False,
    from_: Annotated[Optional[Path], typer.Option("--from", help="Convert this setup.txt (or any config) into FOLDER/whatnext.toml, every key with its value.", show_default=False)] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite existing files.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Write a commented config file holding every option with its default."""
    from whatnext import engine

    if from_ is not None and folder == Path("."):
        folder = from_.parent
    result = engine.init_project(folder, legacy=legacy, demo=demo, force=force, source=from_)
    if as_json:
        print_json(result)
        return
    con = _console()
    for path in result["written"]:
        con.print(f"[green]wrote[/] {path}")
    if not result.get("data_path"):
        con.print("data.path is empty: the built-in demo data will be used; point it at your events file in "
                  f"{q(result['config'])} (or: --set data.path=plays.csv)")
    con.print(f"next: whatnext inspect-data --config {q(result['config'])}")


@app.command("inspect-data", epilog="Examples: whatnext inspect-data plays.csv  ·  "
             "whatnext inspect-data --config myproject/whatnext.toml --json")
@handle_errors
def inspect_data(
    path: Annotated[Optional[Path], typer.Argument(help="Events file to inspect (overrides data.path).", show_default=False)] = None,
    config: ConfigOpt = None,
    sets: SetOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Describe the data: users, items, events, time span, history lengths, popularity, features, problems."""
    from whatnext import engine

    result = engine.inspect_data(config, path, _overrides(sets))
    show(result, as_json, "render_inspect")


RunOpt = Annotated[Optional[str], typer.Option("--run", help="Run name: checkpoints live in models_dir/RUN (default: paths.run).", show_default=False)]
CheckpointOpt = Annotated[Optional[Path], typer.Option("--checkpoint", help="Use this checkpoint file instead of a run's best.", show_default=False)]
DiversityOpt = Annotated[Optional[float], typer.Option("--diversity", help="Trade accuracy for more varied lists, e.g. 0.5 (overrides recommend.diversity; 0 = off).", show_default=False)]
SplitOpt = Annotated[Optional[str], typer.Option("--split", help="valid (second-to-last event) or test (last event); default eval.split.", show_default=False)]
IncludeSeenOpt = Annotated[Optional[bool], typer.Option("--include-seen/--exclude-seen", help="Keep already played items in the ranking (default eval.include_seen: excluded).", show_default=False)]
WideOpt = Annotated[bool, typer.Option("--wide", help="Show every column however wide the terminal (default: fit it).")]
ColumnsOpt = Annotated[Optional[str], typer.Option("--columns", metavar="A,B,...", help="Show these columns, in this order (e.g. rank,item,title,score,tempo).", show_default=False)]


class _Interrupt:
    """SIGINT sets a flag the progress callback reads, so the loop can save and stop cleanly.

    Once training runs (``arm``), no Ctrl-C interrupts the save: later presses only say so.
    Before that (loading data) there is nothing to save and Ctrl-C stops at once.
    """

    def __init__(self) -> None:
        self.hit = False
        self.armed = False

    def __enter__(self) -> _Interrupt:
        import signal

        self._old = signal.signal(signal.SIGINT, self._handle)
        # a distributed worker: torch's launcher answers Ctrl-C with SIGTERM to every process; treated
        # the same, rank 0 saves at the end of the step (all ranks stop there together)
        self.worker = _worker_rank()
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


def _interrupted(summary: dict[str, Any], config: Path | None, as_json: bool) -> typer.Exit:
    run = Path(summary["run_dir"]).name
    cmd = "whatnext train --resume" + (f" --config {q(config)}" if config else "") + f" --run {q(run)}"
    target = summary.get("total_steps")
    return _fail_here(f"interrupted at step {summary['steps']} of {target}; checkpoint saved to {summary['checkpoint']}; "
                      f"resume (to step {target}) with: {cmd}", 130, as_json)


@app.command(epilog="Examples: whatnext train --config demo/whatnext.toml --epochs 3 --run short  ·  "
             "whatnext train --config demo/whatnext.toml --run short --resume  ·  whatnext train --config demo/whatnext.toml --nproc 2")
@handle_errors
def train(
    config: ConfigOpt = None,
    epochs: Annotated[Optional[int], typer.Option("--epochs", "-e", help="Passes over all training positions (overrides train.epochs and the legacy sample count).", show_default=False)] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the run from its newest good checkpoint, to the target it was started with (its --epochs and --set) unless given again.")] = False,
    seed: Annotated[Optional[int], typer.Option("--seed", help="Random seed (overrides train.seed).", show_default=False)] = None,
    run: RunOpt = None,
    algorithm: Annotated[Optional[str], typer.Option("--algorithm", help="Training algorithm: original, hybrid, sqn, sac or reinforce (overrides train.algorithm).", show_default=False)] = None,
    force: Annotated[bool, typer.Option("--force", help="Delete the run's existing checkpoints and start over.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Plain log lines instead of a progress bar.")] = False,
    plays: Annotated[Optional[Path], typer.Option("--plays", help="Also train on the plays a server logged (models_dir/RUN/plays.jsonl): appended to the users' histories.", show_default=False)] = None,
    tensorboard: Annotated[bool, typer.Option("--tensorboard", help="Also write the metrics as TensorBoard event files in models_dir/RUN (sets train.tensorboard).")] = False,
    nproc: Annotated[Optional[int], typer.Option("--nproc", help="Train in N processes on this machine (torch.distributed: gloo on CPU, nccl on CUDA), each on 1/N of every batch; the same as torchrun --nproc-per-node N -m whatnext train ...", show_default=False)] = None,
    sets: SetOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Train the actor and critic; checkpoints go to models_dir/RUN. Ctrl-C saves and exits 130."""
    from whatnext import engine
    from whatnext.cli.render import TrainProgress

    if nproc is not None and _worker_rank() is None:
        engine.check_nproc(nproc)
        if nproc > 1:  # each process runs this command without --nproc
            engine.train_processes(nproc, _train_args(
                {"--config": config, "--epochs": epochs, "--seed": seed, "--run": run, "--algorithm": algorithm,
                 "--plays": plays}, {"--resume": resume, "--force": force, "--quiet": quiet,
                                     "--tensorboard": tensorboard, "--json": as_json}, sets))
            return
    overrides = _overrides(sets, **{"train.epochs": epochs, "train.samples": 0 if epochs is not None else None,
                                    "train.seed": seed, "paths.run": run, "train.algorithm": algorithm,
                                    "train.tensorboard": True if tensorboard else None})
    con = _console(stderr=as_json)
    with _Interrupt() as interrupt:  # until the hint is printed: a late Ctrl-C cannot swallow it
        progress = TrainProgress(con, plain=quiet or as_json or not con.is_terminal, interrupt=interrupt,
                                 config=config)
        summary = engine.train(config, overrides, resume=resume, callback=progress, force=force, plays=plays)
        if summary.get("rank", 0) != 0:
            return  # rank 0 reports for the job
        if as_json:
            print_json(summary)
        else:
            progress.summary(summary)
        if summary["status"] == "interrupted":
            raise _interrupted(summary, config, as_json)


def _train_args(values: dict[str, Any], flags: dict[str, bool], sets: list[str] | None) -> list[str]:
    """The ``whatnext train`` command line of one process of a --nproc job (the options given, as given)."""
    args = ["train"]
    for opt, value in values.items():
        if value is not None:
            args += [opt, str(value)]
    args += [opt for opt, on in flags.items() if on]
    for kv in sets or []:
        args += ["--set", kv]
    return args


@app.command(epilog="Examples: whatnext recommend --config demo/whatnext.toml --user 7 -k 5  ·  "
             "whatnext recommend --config demo/whatnext.toml --all-users --output top10.csv")
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
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="With --all-users: write FILE.parquet or FILE.csv (columns named as in the data, with titles).", show_default=False)] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing --output file.")] = False,
    diversity: DiversityOpt = None,
    wide: WideOpt = False,
    columns: ColumnsOpt = None,
    sets: SetOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Recommend the next items for a user (or a given history, or every user) from a trained run."""
    from whatnext import engine

    result = engine.recommend(
        config, _overrides(sets, **{"recommend.diversity": diversity}), user=user,
        history=history.split(",") if history is not None else None, k=k, run=run,
        checkpoint=checkpoint, include_seen=include_seen, all_users=all_users, output=output, force=force,
    )
    show(result, as_json, "render_recommendations", wide=wide, columns=_column_list(columns))


def _column_list(columns: str | None) -> list[str] | None:
    return [c.strip() for c in columns.split(",") if c.strip()] if columns else None


@app.command("eval", epilog="Examples: whatnext eval --config demo/whatnext.toml --baselines --split test  ·  "
             "whatnext eval --config demo/whatnext.toml --json")
@handle_errors
def eval_cmd(
    config: ConfigOpt = None,
    run: RunOpt = None,
    checkpoint: CheckpointOpt = None,
    split: SplitOpt = None,
    include_seen: IncludeSeenOpt = None,
    with_baselines: Annotated[bool, typer.Option("--baselines", help="Also evaluate the baselines: random, popular, markov, neighbours, the supervised LSTM and SASRec.")] = False,
    diversity: DiversityOpt = None,
    wide: WideOpt = False,
    columns: ColumnsOpt = None,
    sets: SetOpt = None,
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
        result = engine.evaluate(config, _overrides(sets, **{"recommend.diversity": diversity}), run=run, checkpoint=checkpoint,
                                 split=split, include_seen=include_seen, baselines=with_baselines, callback=progress)
    show(result, as_json, "render_eval", wide=wide, columns=_column_list(columns))


@app.command(epilog="Examples: whatnext serve --config demo/whatnext.toml  ·  "
             "curl 'http://127.0.0.1:8000/v1/users/7/recommendations?k=5'  ·  whatnext serve --port 9000 --workers 2")
@handle_errors
def serve(
    config: ConfigOpt = None,
    run: RunOpt = None,
    checkpoint: CheckpointOpt = None,
    host: Annotated[str, typer.Option("--host", help="Address to listen on (127.0.0.1: this machine only; 0.0.0.0: every interface).")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", "-p", help="TCP port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option("--workers", help="Server processes; each loads the model, all share the play log.")] = 1,
    token: Annotated[Optional[str], typer.Option("--token", help="Require 'Authorization: Bearer TOKEN' to post plays (default: $WHATNEXT_TOKEN; unset = open).", show_default=False)] = None,
    plays: Annotated[Optional[Path], typer.Option("--plays", help="Play log file (default: models_dir/RUN/plays.jsonl).", show_default=False)] = None,
    watch: Annotated[float, typer.Option("--watch", help="Seconds between looks at the run's best marker for hot reload (0 = on SIGHUP only).")] = 3.0,
    sets: SetOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Serve recommendations over HTTP: the model loaded once, live plays, hot reload of new checkpoints."""
    import os

    from whatnext import engine

    token = token if token is not None else (os.environ.get("WHATNEXT_TOKEN") or None)

    def ready(app: Any) -> None:
        health = app.app.state.recommender.health()
        info = {"url": f"http://{host}:{port}", **{k: health[k] for k in ("checkpoint", "step", "catalogue_size", "plays_log")},
                "token": token is not None}
        if as_json:
            print_json(info)
        else:
            sys.stdout.write(f"serving {info['checkpoint']} (step {info['step']}, {info['catalogue_size']} items) on "
                             f"{info['url']}; plays go to {info['plays_log']}; Ctrl-C stops\n")
        sys.stdout.flush()

    engine.serve(config, _overrides(sets), run=run, checkpoint=checkpoint, host=host, port=port, workers=workers,
                 token=token, plays=plays, watch=watch, ready=ready)


@app.command(epilog="Examples: whatnext export --config demo/whatnext.toml --output demo/export  ·  "
             "whatnext export --format torchscript,onnx --k 20")
@handle_errors
def export(
    config: ConfigOpt = None,
    run: RunOpt = None,
    checkpoint: CheckpointOpt = None,
    fmt: Annotated[str, typer.Option("--format", "-f", help="torchscript, onnx, or both (torchscript,onnx).")] = "torchscript",
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder to write actor.pt / actor.onnx, items.json, item_vectors.npy and config.json into.")] = Path("export"),
    k: Annotated[int, typer.Option("-k", "--k", help="Items the exported model returns per history.")] = 10,
    include_seen: Annotated[bool, typer.Option("--include-seen", help="Do not leave the history's items out of the exported ranking.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Overwrite existing files in --output.")] = False,
    sets: SetOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Export a run's actor (TorchScript or ONNX) with its item id map, item vectors and config."""
    from whatnext import engine

    result = engine.export(config, _overrides(sets), formats=[f.strip() for f in fmt.split(",") if f.strip()],
                           output=output, run=run, checkpoint=checkpoint, k=k, include_seen=include_seen, force=force)
    if as_json:
        print_json(result)
        return
    con = _console()
    for path in result["written"]:
        con.print(f"[green]wrote[/] {path}")


plot_app = typer.Typer(help="Draw figures (PNG or SVG) of the data, of training runs and of evaluations.",
                       no_args_is_help=True,
                       epilog="Examples: whatnext plot data --config demo/whatnext.toml  ·  "
                       "whatnext plot train --run a --run b  ·  whatnext plot eval --baselines")
app.add_typer(plot_app, name="plot")
OutputDirOpt = Annotated[Path, typer.Option("--output", "-o", help="Folder to write the figures into.")]
FormatOpt = Annotated[str, typer.Option("--format", "-f", help="png or svg.")]
PlotForceOpt = Annotated[bool, typer.Option("--force", help="Overwrite figures already in --output.")]


def _show_written(result: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(result)
        return
    con = _console()
    for path in result["written"]:
        con.print(f"[green]wrote[/] {path}")


@plot_app.command("data", epilog="Examples: whatnext plot data --config demo/whatnext.toml  ·  "
                  "whatnext plot data --format svg --output figures")
@handle_errors
def plot_data(config: ConfigOpt = None, output: OutputDirOpt = Path("plots"), fmt: FormatOpt = "png",
              force: PlotForceOpt = False, sets: SetOpt = None, as_json: JsonOpt = False) -> None:
    """History lengths, item popularity (log-log, top-1% share, Gini), plays over time, each feature's distribution."""
    from whatnext import engine

    _show_written(engine.plot_data(config, _overrides(sets), output=output, fmt=fmt, force=force), as_json)


@plot_app.command("train", epilog="Examples: whatnext plot train --config demo/whatnext.toml  ·  "
                  "whatnext plot train --run default --run short")
@handle_errors
def plot_train(
    config: ConfigOpt = None,
    run: Annotated[Optional[list[str]], typer.Option("--run", help="Run to draw (repeatable: runs are overlaid); default paths.run.", show_default=False)] = None,
    output: OutputDirOpt = Path("plots"), fmt: FormatOpt = "png", force: PlotForceOpt = False,
    sets: SetOpt = None, as_json: JsonOpt = False,
) -> None:
    """Losses and rewards per step (smoothed), validation metrics per checkpoint, samples/s; runs overlaid."""
    from whatnext import engine

    _show_written(engine.plot_train(config, _overrides(sets), runs=run, output=output, fmt=fmt, force=force), as_json)


@plot_app.command("eval", epilog="Examples: whatnext plot eval --config demo/whatnext.toml --baselines  ·  "
                  "whatnext plot eval --seeds seeds.json --diversity 0,0.5,1")
@handle_errors
def plot_eval(
    config: ConfigOpt = None,
    run: RunOpt = None,
    checkpoint: CheckpointOpt = None,
    split: SplitOpt = None,
    include_seen: IncludeSeenOpt = None,
    with_baselines: Annotated[bool, typer.Option("--baselines", help="Also draw the baselines: random, popular, markov, neighbours, the supervised LSTM and SASRec.")] = False,
    seeds: Annotated[Optional[Path], typer.Option("--seeds", help="Output of 'python bench/seeds.py --json FILE': whiskers for the seed spread.", show_default=False)] = None,
    diversity: Annotated[str, typer.Option("--diversity", metavar="W,W,...", help="Diversity weights of the accuracy-diversity frontier ('' = no frontier).")] = "0,0.25,0.5,1",
    output: OutputDirOpt = Path("plots"), fmt: FormatOpt = "png", force: PlotForceOpt = False,
    sets: SetOpt = None, as_json: JsonOpt = False,
) -> None:
    """Models side by side (NDCG, HR, coverage, ILD) with the seed spread, and the accuracy-diversity frontier."""
    from whatnext import engine

    try:
        weights = [float(w) for w in diversity.split(",") if w.strip()]
    except ValueError:
        raise ConfigError(f"--diversity {diversity!r}: expected numbers separated by commas, e.g. 0,0.5,1") from None
    progress = None
    with _Interrupt() as interrupt:
        if with_baselines:
            from whatnext.cli.render import TrainProgress

            con = _console(stderr=as_json)
            progress = TrainProgress(con, plain=as_json or not con.is_terminal, interrupt=interrupt)
        result = engine.plot_eval(config, _overrides(sets), run=run, checkpoint=checkpoint, split=split,
                                  include_seen=include_seen, baselines=with_baselines, seeds=seeds, diversity=weights,
                                  output=output, fmt=fmt, force=force, callback=progress)
    _show_written(result, as_json)


checkpoints_app = typer.Typer(help="List, show and prune the checkpoints of training runs.", no_args_is_help=True,
                              epilog="Examples: whatnext checkpoints list --config demo/whatnext.toml  ·  "
                              "whatnext checkpoints prune --keep 1 --dry-run")
app.add_typer(checkpoints_app, name="checkpoints")


@checkpoints_app.command("list", epilog="Example: whatnext checkpoints list --config demo/whatnext.toml --run short")
@handle_errors
def checkpoints_list(config: ConfigOpt = None, run: RunOpt = None, sets: SetOpt = None, as_json: JsonOpt = False) -> None:
    """Runs and their checkpoints: step, time, validation metrics, size, best/latest."""
    from whatnext import engine

    result = engine.list_checkpoints(config, _overrides(sets), run=run)
    show(result, as_json, "render_checkpoints")


@checkpoints_app.command("show", epilog="Example: whatnext checkpoints show --config demo/whatnext.toml --json")
@handle_errors
def checkpoints_show(config: ConfigOpt = None, run: RunOpt = None, checkpoint: CheckpointOpt = None,
                     sets: SetOpt = None, as_json: JsonOpt = False) -> None:
    """One checkpoint's step, algorithm, model arguments, metrics and config (default: the run's best)."""
    from whatnext import engine

    result = engine.show_checkpoint(config, _overrides(sets), run=run, checkpoint=checkpoint)
    if as_json:
        print_json(result)
        return
    from whatnext.cli.render import render_mapping

    render_mapping(_console(), f"Checkpoint {result['path']}", {k: v for k, v in result.items() if k != "config"})


@checkpoints_app.command("prune", epilog="Examples: whatnext checkpoints prune --keep 1 --dry-run  ·  "
                         "whatnext checkpoints prune --config demo/whatnext.toml --run short --keep 2")
@handle_errors
def checkpoints_prune(
    config: ConfigOpt = None, run: RunOpt = None,
    keep: Annotated[Optional[int], typer.Option("--keep", help="Checkpoints to keep (default: train.keep_last); best and latest always stay.", show_default=False)] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", "-n", help="Only say which checkpoints would be deleted.")] = False,
    sets: SetOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Delete all but the newest N checkpoints of a run, keeping best and latest."""
    from whatnext import engine

    result = engine.prune_checkpoints(config, _overrides(sets), run=run, keep=keep, dry_run=dry_run)
    if as_json:
        print_json(result)
        return
    con = _console()
    verb = "would remove" if dry_run else "removed"
    for p in result["removed"]:
        con.print(f"{verb} {p}")
    con.print(f"{verb} {len(result['removed'])} checkpoints from run {result['run']}; {result['kept']} "
              f"{'would be ' if dry_run else ''}left")


@app.command("run", epilog="Examples: whatnext run --config setup.txt  ·  "
             "whatnext run --config setup.txt --user 7 --user 12 -k 5  ·  whatnext run --config setup.txt --users 20")
@handle_errors
def run_cmd(
    config: ConfigOpt = None,
    k: Annotated[int, typer.Option("-k", help="Inference: items per user.")] = 10,
    user: Annotated[Optional[list[str]], typer.Option("--user", "-u", help="Inference: recommend for this user (repeatable).", show_default=False)] = None,
    users: Annotated[int, typer.Option("--users", help="Inference without --user: this many random users (seeded by train.seed).")] = 5,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Plain log lines instead of a progress bar.")] = False,
    sets: SetOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """What the original main.py did: train when the config says 'train, yes', else recommend (inference)."""
    from whatnext import engine
    from whatnext.cli.render import TrainProgress

    if users < 1:
        raise ConfigError(f"--users is {users}, expected an integer >= 1")
    con = _console(stderr=as_json)
    with _Interrupt() as interrupt:
        progress = TrainProgress(con, plain=quiet or as_json or not con.is_terminal, interrupt=interrupt, config=config)
        result = engine.run_legacy(config, _overrides(sets), k=k, users=users, user_ids=user, callback=progress)
        if as_json:
            print_json(result)
        elif result["mode"] == "train":
            progress.summary(result)
        else:
            from whatnext.cli.render import render_mapping

            render_mapping(con, f"Recommendations (model {result['model']})",
                           {u: ", ".join(items) for u, items in result["recommendations"].items()})
        if result.get("status") == "interrupted":
            raise _interrupted(result, config, as_json)


def main() -> None:
    """Console-script entry point: usage errors (bad option, missing value) become one line, exit 2."""
    try:
        from typer._click import exceptions as cx  # typer >= 0.22 carries its own click
    except ImportError:  # pragma: no cover - older typer uses click itself
        from click import exceptions as cx  # type: ignore[no-redef]
    as_json = "--json" in sys.argv[1:]
    try:
        rc = app(standalone_mode=False)  # returns an Exit's code instead of raising it
    except cx.NoArgsIsHelpError as e:
        sys.stdout.write(e.ctx.get_help() + "\n" if e.ctx is not None else "")
        rc = 0
    except cx.UsageError as e:
        hint = f"; see '{e.ctx.command_path} --help'" if e.ctx is not None else ""
        rc = fail(f"{e.format_message()}{hint}", 2, as_json).exit_code
    except cx.ClickException as e:
        rc = fail(e.format_message(), 1, as_json).exit_code
    except (typer.Abort, KeyboardInterrupt):
        rc = fail("interrupted", 130, as_json).exit_code
    except typer.Exit as e:
        rc = e.exit_code
    if rc == 130:  # interrupted and saved: one more Ctrl-C while the interpreter shuts down changes nothing
        import signal

        signal.signal(signal.SIGINT, signal.SIG_IGN)
    raise SystemExit(rc if isinstance(rc, int) else 0)
