"""The command groups: ``whatnext plot ...`` (figures) and ``whatnext checkpoints ...`` (list, show, prune)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from whatnext.cli.common import (
    CheckpointOpt,
    ConfigOpt,
    IncludeSeenOpt,
    Interrupt,
    JsonOpt,
    RunOpt,
    SetOpt,
    SplitOpt,
    console,
    handle_errors,
    print_json,
    show,
    with_sets,
)
from whatnext.errors import ConfigError

plot_app = typer.Typer(help="Draw figures (PNG or SVG) of the data, of training runs and of evaluations.",
                       no_args_is_help=True,
                       epilog="Examples: whatnext plot data --config demo/whatnext.toml  ·  "
                       "whatnext plot train --run a --run b  ·  whatnext plot eval --baselines")
OutputDirOpt = Annotated[Path, typer.Option("--output", "-o", help="Folder to write the figures into.")]
FormatOpt = Annotated[str, typer.Option("--format", "-f", help="png or svg.")]
PlotForceOpt = Annotated[bool, typer.Option("--force", help="Overwrite figures already in --output.")]


def _show_written(result: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(result)
        return
    con = console()
    for path in result["written"]:
        con.print(f"[green]wrote[/] {path}")


@plot_app.command("data", epilog="Examples: whatnext plot data --config demo/whatnext.toml  ·  "
                  "whatnext plot data --format svg --output figures")
@handle_errors
def plot_data(config: ConfigOpt = None, output: OutputDirOpt = Path("plots"), fmt: FormatOpt = "png",
              force: PlotForceOpt = False, sets: SetOpt = None, as_json: JsonOpt = False) -> None:
    """History lengths, item popularity (log-log, top-1% share, Gini), plays over time, each feature's distribution."""
    from whatnext import engine

    _show_written(engine.plot_data(config, with_sets(sets), output=output, fmt=fmt, force=force), as_json)


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

    _show_written(engine.plot_train(config, with_sets(sets), runs=run, output=output, fmt=fmt, force=force), as_json)


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
    with Interrupt() as interrupt:
        if with_baselines:
            from whatnext.cli.render import TrainProgress

            con = console(stderr=as_json)
            progress = TrainProgress(con, plain=as_json or not con.is_terminal, interrupt=interrupt)
        result = engine.plot_eval(config, with_sets(sets), run=run, checkpoint=checkpoint, split=split,
                                  include_seen=include_seen, baselines=with_baselines, seeds=seeds, diversity=weights,
                                  output=output, fmt=fmt, force=force, callback=progress)
    _show_written(result, as_json)


checkpoints_app = typer.Typer(help="List, show, prune and average the checkpoints of training runs.", no_args_is_help=True,
                              epilog="Examples: whatnext checkpoints list --config demo/whatnext.toml  ·  "
                              "whatnext checkpoints prune --keep 1 --dry-run")


@checkpoints_app.command("list", epilog="Example: whatnext checkpoints list --config demo/whatnext.toml --run short")
@handle_errors
def checkpoints_list(config: ConfigOpt = None, run: RunOpt = None, sets: SetOpt = None, as_json: JsonOpt = False) -> None:
    """Runs and their checkpoints: step, time, validation metrics, size, best/latest."""
    from whatnext import engine

    result = engine.list_checkpoints(config, with_sets(sets), run=run)
    show(result, as_json, "render_checkpoints")


@checkpoints_app.command("show", epilog="Example: whatnext checkpoints show --config demo/whatnext.toml --json")
@handle_errors
def checkpoints_show(config: ConfigOpt = None, run: RunOpt = None, checkpoint: CheckpointOpt = None,
                     sets: SetOpt = None, as_json: JsonOpt = False) -> None:
    """One checkpoint's step, algorithm, model arguments, metrics and config (default: the run's best)."""
    from whatnext import engine

    result = engine.show_checkpoint(config, with_sets(sets), run=run, checkpoint=checkpoint)
    if as_json:
        print_json(result)
        return
    from whatnext.cli.render import render_mapping

    render_mapping(console(), f"Checkpoint {result['path']}", {k: v for k, v in result.items() if k != "config"})


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

    result = engine.prune_checkpoints(config, with_sets(sets), run=run, keep=keep, dry_run=dry_run)
    if as_json:
        print_json(result)
        return
    con = console()
    verb = "would remove" if dry_run else "removed"
    for p in result["removed"]:
        con.print(f"{verb} {p}")
    con.print(f"{verb} {len(result['removed'])} checkpoints from run {result['run']}; {result['kept']} "
              f"{'would be ' if dry_run else ''}left")


@checkpoints_app.command("average", epilog="Examples: whatnext checkpoints average --config demo/whatnext.toml  ·  "
                         "whatnext checkpoints average --run short --top 5 --into short-mean")
@handle_errors
def checkpoints_average(
    config: ConfigOpt = None, run: RunOpt = None,
    top: Annotated[int, typer.Option("--top", help="Average the N checkpoints with the best validation score (at least 2).")] = 3,
    into: Annotated[Optional[str], typer.Option("--into", help="Run to write the average to (default: RUN-avgN); must have no checkpoints.", show_default=False)] = None,
    sets: SetOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Write the mean of the weights of a run's best checkpoints as a new run, validated as training validates."""
    from whatnext import engine

    result = engine.average_checkpoints(config, with_sets(sets), run=run, top=top, into=into)
    if as_json:
        print_json(result)
        return
    con = console()
    key = result["metric"]
    for src in result["sources"]:
        con.print(f"  {src['checkpoint']}  {key} {src[key]:.4f}")
    verdict = "better than" if result["better"] else "not better than"
    con.print(f"averaged {result['top']} checkpoints of run {result['run']} into run {result['into']}: {key} "
              f"{result['averaged']:.4f}, {verdict} the best one ({result['best_single']:.4f})")
    con.print(f"use it with --run {result['into']} (recommend, eval, serve, export)")
