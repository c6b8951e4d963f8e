"""The orchestrator and Python API: every CLI command is one call into a function here.

Functions take plain values, return plain dicts (JSON-ready), raise :class:`WhatnextError`
subclasses for anything a user can fix, and never print. Heavy modules (pandas, torch) are
imported inside the functions that need them, so that importing the engine stays cheap.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from whatnext.config import Config, load_config
from whatnext.config.schema import check_against_catalogue
from whatnext.errors import OutputExistsError, TrainingError, WhatnextError
from whatnext.evaluation.validation import RERANK_GRID  # noqa: F401  (RERANK_GRID: part of the API)
from whatnext.evaluation.validation import validator as _validator
from whatnext.project import init_project  # noqa: F401  (writing a project's config: part of the API)

log = logging.getLogger(__name__)


def config_for(config: str | Path | None = None, overrides: dict[str, Any] | None = None,
               *, check_paths: bool = True) -> Config:
    """Load the config file (or defaults) and apply overrides (``"section.key" -> value``)."""
    return load_config(config, overrides, check_paths=check_paths)


def inspect_data(config: str | Path | None = None, data: str | Path | None = None,
                 overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Load the configured data (or ``data``) and describe it (see :func:`whatnext.data.stats.describe`)."""
    from whatnext.data import load_dataset
    from whatnext.data.stats import describe
    from whatnext.errors import ConfigError

    overrides = dict(overrides or {})
    if data is not None:
        if not Path(data).exists():
            raise ConfigError(f"{Path(data).resolve()}: file not found (the PATH given to inspect-data); check the path")
        overrides["data.path"] = str(Path(data).resolve())
    cfg = config_for(config, overrides)
    ds = load_dataset(cfg, lenient=True)
    return describe(ds)


# ---------------------------------------------------------------- training


def train(config: str | Path | None = None, overrides: dict[str, Any] | None = None, *, resume: bool = False,
          callback: Any = None, force: bool = False, plays: str | Path | None = None) -> dict[str, Any]:
    """Train a run (``models_dir/run``) as the config says; see :func:`whatnext.rl.environment.train`.

    ``callback`` is a :class:`whatnext.rl.callbacks.Callback` (progress, early stop, Ctrl-C).
    Validation NDCG@10 at each checkpoint picks the ``best`` checkpoint. The overrides are recorded
    in the checkpoints; ``resume`` applies the recorded ones first, so a run continues to the target
    it was started with (``--epochs 3`` stays 3 epochs) unless ``overrides`` say otherwise.
    ``plays`` (a play log written by ``whatnext serve``) appends the logged plays to the users' histories.
    """
    from whatnext.data import load_dataset
    from whatnext.rl.environment import recorded_overrides
    from whatnext.rl.environment import train as train_loop

    given = {k: v for k, v in (overrides or {}).items() if v is not None}
    cfg = config_for(config, given)
    if resume:
        try:
            recorded = recorded_overrides(cfg.run_dir)
        except WhatnextError:  # the training loop reports what is wrong with the run
            recorded = {}
        if recorded:
            given = {**recorded, **given}
            cfg = config_for(config, given)
    ds = load_dataset(cfg)
    added = None
    if plays is not None:
        from whatnext.serving.plays import with_plays

        ds, added = with_plays(ds, Path(plays))
    check_against_catalogue(cfg, len(ds.catalogue))  # validation ranks max(eval.ks) items
    try:
        summary = train_loop(cfg, ds, resume=resume, callback=callback, evaluator=_validator(cfg, ds), force=force,
                             overrides=given)
    except OSError as e:  # the metrics log or a legacy export on a full disk or a read-only folder
        raise TrainingError(
            f"{e.filename or cfg.run_dir}: cannot write ({e.strerror or e}); the checkpoints already saved are intact — "
            f"free disk space or fix permissions on {cfg.run_dir}, then continue with --resume"
        ) from None
    summary["config"] = str(cfg.source) if cfg.source else None
    if added is not None:
        summary["plays"] = added
    return summary


def train_processes(nproc: int, args: list[str]) -> None:
    """``whatnext train --nproc N``: run ``whatnext <args>`` (a train command line) in ``nproc`` processes on
    this machine through torch's elastic launcher; a failed rank raises RankFailed (exit code: the rank's).
    See :mod:`whatnext.rl.launch`."""
    from whatnext.rl.launch import launch

    launch(nproc, args)


def check_nproc(nproc: int) -> None:
    """Refuse a --nproc that is not a number of processes (ConfigError)."""
    from whatnext.rl.launch import check_nproc as check

    check(nproc)


def load_agent(cfg: Config, ds: Any, run: str | None = None, checkpoint: str | Path | None = None,
               warn: list[str] | None = None) -> tuple[Any, Path]:
    """The trained agent of a run's best (else latest) checkpoint, or of an explicit checkpoint file.

    A refused ``best``/``latest`` marker is passed over (the run's newest verified checkpoint is used) and described in ``warn``.
    """
    agent, pt, _ = _load_run(cfg, ds, run, checkpoint, warn)
    return agent, pt


def _load_run(cfg: Config, ds: Any, run: str | None, checkpoint: str | Path | None,
              warn: list[str] | None = None) -> tuple[Any, Path, dict[str, Any]]:
    """load_agent, plus the config the checkpoint records (what the agent was trained with)."""
    from whatnext.serving.recommender import load_run

    agent, pt, payload = load_run(cfg, ds, run, checkpoint, warn)
    return agent, pt, payload.get("config") or {}


# ---------------------------------------------------------------- recommending


def recommend(config: str | Path | None = None, overrides: dict[str, Any] | None = None, *,
              user: str | None = None, history: list[str] | None = None, k: int = 10,
              run: str | None = None, checkpoint: str | Path | None = None, include_seen: bool = False,
              all_users: bool = False, output: str | Path | None = None, force: bool = False) -> dict[str, Any]:
    """Top-k recommendations for one user, a cold history of external item ids, or every user.

    Already played items are excluded unless ``include_seen``. With ``all_users`` the result
    is written to ``output`` (.parquet or .csv) and a summary returned. A one-shot
    :class:`whatnext.serving.Recommender`: load it once to answer many.
    """
    from whatnext.errors import ConfigError
    from whatnext.serving.recommender import Recommender

    if sum(x is not None and x is not False for x in (user, history, all_users or None)) != 1:
        raise ConfigError("recommend needs exactly one of --user ID, --history ID,ID,... or --all-users")
    if all_users and output is None:
        raise ConfigError("--all-users needs --output FILE.parquet or FILE.csv")
    out_path = Path(output) if output is not None else None
    if out_path is not None:
        if out_path.suffix.lower() not in (".parquet", ".csv"):
            raise ConfigError(f"--output {out_path}: expected a .parquet or .csv file name")
        if out_path.exists() and not force:
            raise OutputExistsError(f"{out_path}: already exists, not overwritten; pass --force to replace it")
        blocked = next((p for p in out_path.parents if p.exists() and not p.is_dir()), None)
        if blocked is not None:
            raise ConfigError(f"--output {out_path}: {blocked} is a file, not a folder; choose an --output in a folder")
    if k < 1:
        raise ConfigError(f"-k is {k}, expected an integer >= 1")
    if history is not None and not any(x.strip() for x in history):
        raise ConfigError("--history is empty; give item ids separated by commas")
    cfg = config_for(config, overrides)
    rec = Recommender.load(cfg, run=run, checkpoint=checkpoint)
    if not all_users:
        return rec.recommend(user=user, history=history, k=k, include_seen=include_seen, where="--history")
    n = len(rec.dataset.catalogue)
    if k > n:
        raise ConfigError(f"-k is {k} but the catalogue has only {n} items; ask for at most {n}")
    idx, dist, score, model = rec.rank_all(k, include_seen)
    return _write_all(out_path, cfg, rec.dataset.histories.user_ids, rec.dataset.catalogue, idx, dist, score) | {
        "checkpoint": str(model.checkpoint), "k": k, "warnings": list(model.warnings)}


def _write_all(path: Path | None, cfg: Config, user_ids: Any, cat: Any, idx: Any, dist: Any, score: Any) -> dict[str, Any]:
    """Every user's top-k as a table whose user and item columns keep the data's names, with the display columns."""
    import numpy as np
    import pandas as pd

    assert path is not None
    n, k = idx.shape
    keep = (idx >= 0).ravel()
    flat = np.maximum(idx, 0).ravel()[keep]
    user_col = cfg.data.user_col if isinstance(cfg.data.user_col, str) and cfg.data.user_col else "user_id"
    item_col = cfg.data.item_col if isinstance(cfg.data.item_col, str) and cfg.data.item_col else "item_id"
    if item_col == user_col:
        item_col = "item_id"
    df = pd.DataFrame({
        user_col: np.repeat(np.asarray(user_ids), k)[keep], "rank": np.tile(np.arange(1, k + 1), n)[keep],
        item_col: np.asarray(cat.ids)[flat], "score": score.ravel()[keep], "distance": dist.ravel()[keep],
    })
    for col in cat.display.columns:
        if col not in df.columns:
            df[col] = cat.display[col].to_numpy()[flat]
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix.lower() == ".parquet":
            df.to_parquet(tmp, index=False)
        else:
            df.to_csv(tmp, index=False)
        tmp.replace(path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise WhatnextError(f"{path}: cannot write ({e.strerror})") from None
    return {"output": str(path), "users": n, "rows": len(df)}


# ---------------------------------------------------------------- serving


def serve(config: str | Path | None = None, overrides: dict[str, Any] | None = None, *, run: str | None = None,
          checkpoint: str | Path | None = None, host: str = "127.0.0.1", port: int = 8000, workers: int = 1,
          token: str | None = None, plays: str | Path | None = None, watch: float = 3.0,
          ready: Any = None) -> dict[str, Any]:
    """Serve recommendations over HTTP until stopped (see :mod:`whatnext.serving.http` for the endpoints).

    The run is loaded once; plays posted to ``/v1/users/{id}/plays`` go to ``plays`` (default
    ``models_dir/RUN/plays.jsonl``) before they are acknowledged and are replayed at start; the
    checkpoint is reloaded when the run's best marker changes or on SIGHUP. ``token`` guards the
    write endpoint. ``ready(app)`` is called once loaded, before the port opens.
    """
    from whatnext.serving.server import serve as run_server

    return run_server(config, overrides, run=run, checkpoint=checkpoint, host=host, port=port, workers=workers,
                      token=token, plays=plays, watch=watch, ready=ready)


def export(config: str | Path | None = None, overrides: dict[str, Any] | None = None, *, formats: list[str] | None = None,
           output: str | Path = "export", run: str | None = None, checkpoint: str | Path | None = None, k: int = 10,
           include_seen: bool = False, force: bool = False) -> dict[str, Any]:
    """Export a run's actor (TorchScript and/or ONNX) with its item map, item vectors and config to ``output``
    (see :mod:`whatnext.serving.export`)."""
    from whatnext.serving import export as exporter
    from whatnext.serving.recommender import Recommender

    formats = formats or ["torchscript"]
    exporter.check_formats(formats)
    exporter.check_output(Path(output))
    rec = Recommender.load(config_for(config, overrides), run=run, checkpoint=checkpoint)
    return exporter.export(rec, formats, Path(output), k=k, include_seen=include_seen, force=force)


# ---------------------------------------------------------------- checkpoints


def list_checkpoints(config: str | Path | None = None, overrides: dict[str, Any] | None = None,
                     run: str | None = None) -> dict[str, Any]:
    """Runs under models_dir (or one run) and their checkpoints with step, time, metrics, size;
    ``kind`` says whether a run is an agent's or a baseline's (``baseline`` names which)."""
    from whatnext import checkpoints
    from whatnext.evaluation.baseline_runs import run_record

    cfg = config_for(config, overrides, check_paths=False)
    models_dir = cfg.resolve(cfg.paths.models_dir)
    runs = [checkpoints.run_folder(models_dir, run)] if run is not None else sorted(p for p in models_dir.glob("*") if p.is_dir()) if models_dir.exists() else []
    out = []
    for rd in runs:
        if not rd.is_dir():
            from whatnext.errors import NotFoundError

            raise NotFoundError(f"no run {rd.name!r} in {models_dir}; 'whatnext checkpoints list' shows the runs")
        skipped: list[str] = []  # sidecars and markers not used, with the reason
        infos = checkpoints.listing(rd, skipped)
        best, latest = (checkpoints.checked_marker(rd, m, infos, skipped) for m in ("best", "latest"))
        cks = []
        for c in infos:
            d = c.as_dict()
            d["best"], d["latest"] = c.path == best, c.path == latest
            cks.append(d)
        record = run_record(rd)  # a learned baseline's run (eval --baselines trains it) or an agent's
        out.append({"run": rd.name, "path": str(rd), "kind": "baseline" if record else "agent",
                    "baseline": record and record.get("baseline"), "checkpoints": cks,
                    "skipped": skipped})
    return {"models_dir": str(models_dir), "runs": out}


def show_checkpoint(config: str | Path | None = None, overrides: dict[str, Any] | None = None,
                    run: str | None = None, checkpoint: str | Path | None = None) -> dict[str, Any]:
    """One checkpoint's metadata: step, algorithm, model arguments, metrics, config, fingerprint."""
    from whatnext import checkpoints

    cfg = config_for(config, overrides, check_paths=False)
    pt = checkpoints.resolve(cfg.resolve(cfg.paths.models_dir), cfg.paths.run if run is None else run, checkpoint)
    p = checkpoints.load(pt)
    return {
        "path": str(pt), "step": p["step"], "epoch": p.get("epoch"), "algorithm": p.get("algorithm"),
        "model_name": p.get("model_name"), "model_args": p.get("model_args"), "fingerprint": p.get("fingerprint"),
        "metrics": p.get("metrics"), "best_metric": p.get("best_metric"), "config": p.get("config"),
        "size": pt.stat().st_size,
    }


def prune_checkpoints(config: str | Path | None = None, overrides: dict[str, Any] | None = None,
                      run: str | None = None, keep: int | None = None, dry_run: bool = False) -> dict[str, Any]:
    """Delete all but the newest ``keep`` checkpoints of a run (``best`` and ``latest`` stay); with
    ``dry_run`` delete nothing and return what would go."""
    from whatnext import checkpoints
    from whatnext.errors import ConfigError, NotFoundError

    cfg = config_for(config, overrides, check_paths=False)
    keep = cfg.train.keep_last if keep is None else keep
    if keep < 1:
        raise ConfigError(f"--keep is {keep}, expected an integer >= 1")
    rd = checkpoints.run_folder(cfg.resolve(cfg.paths.models_dir), cfg.paths.run if run is None else run)
    if not rd.is_dir():
        raise NotFoundError(f"no run folder {rd}; 'whatnext checkpoints list' shows the runs")
    before = len(checkpoints.listing(rd))
    removed = checkpoints.prune(rd, keep, dry_run=dry_run)
    kept = before - len(removed) if dry_run else len(checkpoints.listing(rd))
    return {"run": rd.name, "removed": [str(p) for p in removed], "kept": kept, "dry_run": dry_run}


def average_checkpoints(config: str | Path | None = None, overrides: dict[str, Any] | None = None, *,
                        run: str | None = None, top: int = 3, into: str | None = None) -> dict[str, Any]:
    """Average the weights of a run's ``top`` checkpoints with the best validation score into a new run
    (``into``, default ``<run>-avg<top>``), validated as training validates (:mod:`whatnext.rl.averaging`)."""
    from whatnext import checkpoints
    from whatnext.data import load_dataset
    from whatnext.errors import ConfigError, NotFoundError
    from whatnext.evaluation.baseline_runs import run_record
    from whatnext.rl.averaging import average_run
    from whatnext.rl.environment import select_metric

    cfg = config_for(config, overrides)
    models_dir = cfg.resolve(cfg.paths.models_dir)
    src = checkpoints.run_folder(models_dir, cfg.paths.run if run is None else run)
    if not src.is_dir():
        raise NotFoundError(f"no run folder {src}; 'whatnext checkpoints list' shows the runs")
    record = run_record(src)
    if record is not None:
        raise ConfigError(f"run {src.name!r} is the {record.get('baseline', 'a')} baseline's (trained by eval --baselines); "
                          f"checkpoints average applies to an agent's runs: pass --run with one of those")
    dest = checkpoints.run_folder(models_dir, into if into is not None else f"{src.name}-avg{top}", where="--into")
    ds = load_dataset(cfg)
    check_against_catalogue(cfg, len(ds.catalogue))
    return average_run(cfg, ds, src, dest, top, _validator(cfg, ds), select_metric(list(cfg.eval.ks)))


# ---------------------------------------------------------------- the original main.py


def run_legacy(config: str | Path | None = None, overrides: dict[str, Any] | None = None, *, k: int = 10,
               users: int = 5, user_ids: list[str] | None = None, callback: Any = None) -> dict[str, Any]:
    """What the original main.py did: train when ``train`` is yes, else the inference cycle.

    Inference reads actor and critic from model_agent_path / model_critic_path when set
    (else the run's best checkpoint) and recommends for the users ``user_ids`` (external ids),
    or for ``users`` random users (seeded by train.seed).
    """
    import numpy as np

    from whatnext.data import load_dataset
    from whatnext.rl.environment import load_legacy

    cfg = config_for(config, overrides)
    if cfg.train.enabled:
        return {"mode": "train", **train(config, overrides, callback=callback)}
    ds = load_dataset(cfg)
    _check_inference_sizes(k, users, len(ds.catalogue))
    if cfg.paths.model_agent_path or cfg.paths.model_critic_path:
        agent, source = load_legacy(cfg, ds), cfg.paths.model_agent_path
    else:
        agent, pt = load_agent(cfg, ds)
        source = str(pt)
    h = ds.histories
    if user_ids:
        from whatnext.errors import NotFoundError

        chosen = h.user_index(list(user_ids))
        if (chosen < 0).any():
            bad = list(user_ids)[int(np.flatnonzero(chosen < 0)[0])]
            raise NotFoundError(f"unknown user {bad!r} in {ds.source} (users look like: {', '.join(h.user_ids[:5].tolist())}); "
                                f"'whatnext inspect-data --json' describes the data")
    else:
        rng = np.random.default_rng(cfg.train.seed)
        chosen = rng.choice(len(h), size=min(users, len(h)), replace=False)
    hists = [h.of(int(u)) for u in chosen]
    idx = agent.recommend(hists, k, hists)
    recs = {str(h.user_ids[u]): [str(ds.catalogue.ids[i]) for i in row if i >= 0] for u, row in zip(chosen.tolist(), idx)}
    return {"mode": "inference", "model": source, "k": k, "recommendations": recs}


def _check_inference_sizes(k: int, users: int, n_items: int) -> None:
    """``run``'s -k and --users before anything is allocated: k from 1 to the catalogue size, users >= 1."""
    from whatnext.config.schema import number
    from whatnext.errors import ConfigError

    if not 1 <= k <= n_items:
        raise ConfigError(f"-k is {number(k)}, expected an integer from 1 to {n_items} (the catalogue's size)")
    if users < 1:
        raise ConfigError(f"--users is {number(users)}, expected an integer >= 1")


# ---------------------------------------------------------------- evaluation


def evaluate(config: str | Path | None = None, overrides: dict[str, Any] | None = None, *,
             run: str | None = None, checkpoint: str | Path | None = None, split: str | None = None,
             include_seen: bool | None = None, baselines: bool = False, callback: Any = None) -> dict[str, Any]:
    """Leave-one-out evaluation of a trained run (and, with ``baselines``, every baseline).

    Full ranking over the catalogue; ``split`` valid or test (default eval.split); played
    items excluded unless ``include_seen``. Returns ``{"rows": [metrics per model], ...}``,
    the same numbers every time for the same checkpoint. Baselines that learn are trained
    once, with the budget recorded in the agent's checkpoint, as runs of their own
    (:mod:`whatnext.evaluation.baseline_runs`; ``callback`` sees that training) and loaded
    afterwards; ``"baselines"`` says which were loaded, trained or fitted, and how long it took.
    """
    from whatnext.data import load_dataset
    from whatnext.errors import ConfigError
    from whatnext.evaluation.baseline_runs import fit_baselines
    from whatnext.rl import rewards

    if split is not None and split not in ("valid", "test"):  # before the config, which would name eval.split
        raise ConfigError(f"--split is {split!r}, expected valid or test")
    over = dict(overrides or {})
    if split is not None:
        over["eval.split"] = split
    if include_seen is not None:
        over["eval.include_seen"] = include_seen
    cfg = config_for(config, over)
    ds = load_dataset(cfg)
    check_against_catalogue(cfg, len(ds.catalogue))
    agent, pt, trained = _load_run(cfg, ds, run, checkpoint)
    emb = agent.diversity_space()[0]  # the space ILD is reported in
    sigma = rewards.population_sigma(ds.histories, emb)  # once, shared by every row
    off = _off_policy(ds, cfg)  # fitted once, shared by every row
    rows = [_score(agent, ds, cfg, emb, sigma, off)]
    report = None
    if baselines:
        models, report = fit_baselines(ds, cfg, trained=trained, embeddings=emb, callback=callback)
        rows += [_score(model, ds, cfg, emb, sigma, off) for model in models]
    out = {"checkpoint": str(pt), "split": cfg.eval.split, "include_seen": cfg.eval.include_seen,
           "diversity": cfg.recommend.diversity, "ks": list(cfg.eval.ks), "users": rows[0]["eval/users"], "rows": rows,
           "baselines": report}
    if off is not False:
        out["off_policy"] = {"reward_col": cfg.data.reward_col, "reward_transform": cfg.data.reward_transform,
                             **off.describe()}
    return out


def _off_policy(ds: Any, cfg: Config) -> Any:
    """The behaviour policy and reward model of off-policy evaluation, or False when the data has no rewards."""
    if ds.histories.rewards is None:
        return False
    from whatnext.evaluation.ope import OffPolicy

    return OffPolicy.fit(ds.histories, len(ds.catalogue), cfg.eval.ope_clip)


def _score(model: Any, ds: Any, cfg: Config, emb: Any, sigma: Any, off: Any = False) -> dict[str, Any]:
    """evaluate() with the config's split, cut-offs and protocol, the top-1 diversity reward and off-policy estimates."""
    from whatnext.evaluation.protocol import evaluate as run_eval

    return run_eval(model, ds, cfg.eval.split, tuple(cfg.eval.ks), cfg.eval.include_seen, embeddings=emb,
                    population_sigma=sigma, window=cfg.model.window, off_policy=off)


# ---------------------------------------------------------------- figures


def plot_data(config: str | Path | None = None, overrides: dict[str, Any] | None = None, *, output: str | Path = "plots",
              fmt: str = "png", force: bool = False) -> dict[str, Any]:
    """Figures of the configured data into ``output``: history lengths, popularity, plays over time, features
    (see :mod:`whatnext.plots.data`). Returns the paths written and the numbers shown."""
    from whatnext.data import load_dataset
    from whatnext.plots.data import NAMES, plot_data as draw
    from whatnext.plots.style import check_output

    check_output(Path(output), NAMES, fmt, force)
    cfg = config_for(config, overrides)
    return draw(load_dataset(cfg, lenient=True), Path(output), fmt, force)


def plot_train(config: str | Path | None = None, overrides: dict[str, Any] | None = None, *,
               runs: list[str] | None = None, output: str | Path = "plots", fmt: str = "png",
               force: bool = False) -> dict[str, Any]:
    """Losses, rewards, validation metrics and samples/s of one or more runs (default paths.run), overlaid
    (see :mod:`whatnext.plots.training`); an unknown run is a NotFoundError."""
    from whatnext import checkpoints
    from whatnext.errors import NotFoundError
    from whatnext.plots.training import plot_train as draw

    cfg = config_for(config, overrides, check_paths=False)
    models_dir = cfg.resolve(cfg.paths.models_dir)
    folders = {}
    for name in runs or [cfg.paths.run]:
        rd = checkpoints.run_folder(models_dir, name)
        if not rd.is_dir():
            raise NotFoundError(f"no run {name!r} in {models_dir}; 'whatnext checkpoints list' shows the runs")
        folders[name] = rd
    return draw(folders, Path(output), fmt, force)


def plot_eval(config: str | Path | None = None, overrides: dict[str, Any] | None = None, *, run: str | None = None,
              checkpoint: str | Path | None = None, split: str | None = None, include_seen: bool | None = None,
              baselines: bool = False, seeds: str | Path | None = None, diversity: list[float] | None = None,
              output: str | Path = "plots", fmt: str = "png", force: bool = False, callback: Any = None) -> dict[str, Any]:
    """An eval table's models side by side (with the seed spread of ``seeds``, a ``bench/seeds.py --json``
    file) and the agent's accuracy-diversity frontier over the ``diversity`` weights (none: no frontier);
    see :mod:`whatnext.plots.evaluation`. Evaluates as :func:`evaluate` does."""
    import copy
    import json

    from whatnext.errors import ConfigError
    from whatnext.plots.evaluation import NAMES, plot_eval as draw
    from whatnext.plots.style import check_output

    weights = sorted(set(diversity or []))
    if any(not w >= 0 for w in weights):
        raise ConfigError(f"--diversity weights are {weights}, expected numbers >= 0")
    check_output(Path(output), NAMES if weights else NAMES[:1], fmt, force)
    spread = None
    if seeds is not None:
        try:
            spread = json.loads(Path(seeds).read_text(encoding="utf-8"))
        except OSError as e:
            raise ConfigError(f"--seeds {seeds}: cannot read ({e.strerror}); write it with 'python bench/seeds.py --json FILE'") from None
        except ValueError as e:
            raise ConfigError(f"--seeds {seeds}: not JSON ({e}); write it with 'python bench/seeds.py --json FILE'") from None
        if not isinstance(spread, dict) or not isinstance(spread.get("results"), list):
            raise ConfigError(f"--seeds {seeds}: expected the JSON object 'python bench/seeds.py --json FILE' writes")
    table = evaluate(config, overrides, run=run, checkpoint=checkpoint, split=split, include_seen=include_seen,
                     baselines=baselines, callback=callback)
    frontier = []
    if weights:
        from whatnext.data import load_dataset
        from whatnext.rl import rewards

        over = {**(overrides or {}), "eval.split": table["split"], "eval.include_seen": table["include_seen"]}
        cfg = config_for(config, over)
        ds = load_dataset(cfg)
        agent, _, _ = _load_run(cfg, ds, run, checkpoint)
        emb = agent.diversity_space()[0]
        sigma = rewards.population_sigma(ds.histories, emb)
        base_cfg = agent.cfg
        for w in weights:
            agent.cfg = copy.deepcopy(base_cfg)
            agent.cfg.recommend.diversity = float(w)
            frontier.append((float(w), _score(agent, ds, cfg, emb, sigma)))
        agent.cfg = base_cfg
    out = draw(table, frontier, Path(output), fmt, force, seeds=spread)
    return {**out, "checkpoint": table["checkpoint"], "split": table["split"], "include_seen": table["include_seen"]}
