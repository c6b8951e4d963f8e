"""The ``whatnext`` command line: thin Typer commands over :mod:`whatnext.engine`.

The cli package is the only one that knows typer and rich. Each command parses options, calls one
engine function, and renders the result (a rich table, or JSON with ``--json``). A
:class:`WhatnextError` becomes one red line on stderr (a JSON object under ``--json``) and
its documented exit code (:mod:`whatnext.cli.common`). The ``plot`` and ``checkpoints`` groups
live in :mod:`whatnext.cli.groups`.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from whatnext.cli.common import (
    CheckpointOpt,
    ColumnsOpt,
    ConfigOpt,
    DiversityOpt,
    IncludeSeenOpt,
    Interrupt,
    JsonOpt,
    RunOpt,
    SetOpt,
    SplitOpt,
    WideOpt,
    console,
    fail,
    handle_errors,
    interrupted_exit,
    print_json,
    q,
    show,
    with_sets,
    worker_rank,
)
from whatnext.cli.groups import checkpoints_app, plot_app
from whatnext.errors import ConfigError

app = typer.Typer(
    name="whatnext",
    help="whatnext: reinforcement-learning next-item recommenders (actor-critic LSTMs) for listening logs.",
    epilog="Example: whatnext init demo --demo && whatnext train --config demo/whatnext.toml",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


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
    con = console()
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

    result = engine.inspect_data(config, path, with_sets(sets))
    show(result, as_json, "render_inspect")



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

    if nproc is not None and worker_rank() is None:
        engine.check_nproc(nproc)
        if nproc > 1:  # each process runs this command without --nproc
            engine.train_processes(nproc, _train_args(
                {"--config": config, "--epochs": epochs, "--seed": seed, "--run": run, "--algorithm": algorithm,
                 "--plays": plays}, {"--resume": resume, "--force": force, "--quiet": quiet,
                                     "--tensorboard": tensorboard, "--json": as_json}, sets))
            return
    overrides = with_sets(sets, **{"train.epochs": epochs, "train.samples": 0 if epochs is not None else None,
                                    "train.seed": seed, "paths.run": run, "train.algorithm": algorithm,
                                    "train.tensorboard": True if tensorboard else None})
    con = console(stderr=as_json)
    with Interrupt() as interrupt:  # until the hint is printed: a late Ctrl-C cannot swallow it
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
            raise interrupted_exit(summary, config, as_json)


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
        config, with_sets(sets, **{"recommend.diversity": diversity}), user=user,
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
    with Interrupt() as interrupt:
        if with_baselines:  # a baseline that learns trains once, with a progress bar, then loads from its run
            from whatnext.cli.render import TrainProgress

            con = console(stderr=as_json)
            progress = TrainProgress(con, plain=as_json or not con.is_terminal, interrupt=interrupt)
        result = engine.evaluate(config, with_sets(sets, **{"recommend.diversity": diversity}), run=run, checkpoint=checkpoint,
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

    engine.serve(config, with_sets(sets), run=run, checkpoint=checkpoint, host=host, port=port, workers=workers,
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

    result = engine.export(config, with_sets(sets), formats=[f.strip() for f in fmt.split(",") if f.strip()],
                           output=output, run=run, checkpoint=checkpoint, k=k, include_seen=include_seen, force=force)
    if as_json:
        print_json(result)
        return
    con = console()
    for path in result["written"]:
        con.print(f"[green]wrote[/] {path}")


app.add_typer(plot_app, name="plot")
app.add_typer(checkpoints_app, name="checkpoints")


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
    con = console(stderr=as_json)
    with Interrupt() as interrupt:
        progress = TrainProgress(con, plain=quiet or as_json or not con.is_terminal, interrupt=interrupt, config=config)
        result = engine.run_legacy(config, with_sets(sets), k=k, users=users, user_ids=user, callback=progress)
        if as_json:
            print_json(result)
        elif result["mode"] == "train":
            progress.summary(result)
        else:
            from whatnext.cli.render import render_mapping

            render_mapping(con, f"Recommendations (model {result['model']})",
                           {u: ", ".join(items) for u, items in result["recommendations"].items()})
        if result.get("status") == "interrupted":
            raise interrupted_exit(result, config, as_json)


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
