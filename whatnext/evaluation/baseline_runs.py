"""Baselines that learn, trained once as runs of their own and loaded from then on.

``eval --baselines`` used to retrain the supervised LSTM on every call (minutes on a 100k-play
log, once per protocol, with the config file's epochs). Now a baseline that learns is a
training run in the models folder, ``models/baseline-<name>-<hash>/``: the usual atomic
checkpoints with their checksummed sidecars, ``metrics.jsonl``, and ``baseline.json``, which
records what it was trained for and marks the folder as a baseline for ``checkpoints list``.

The hash is of the cache key: the baseline's name and :data:`VERSION`, the data (catalogue
fingerprint and the training histories) and every setting that shapes its weights, the
budget (epochs, samples, batch size, seed, learning rate) taken from the agent's checkpoint
rather than the config file. Evaluating again, under either protocol, finds the run and loads
it; a changed dataset or budget has another hash and trains (the report says what changed
since the newest cached run); a cached checkpoint that fails its checksum, was made for other
settings or does not rebuild is retrained, never trusted. An interrupted training (Ctrl-C)
keeps its checkpoint, and the next evaluation continues it bit for bit.

Training goes through :func:`whatnext.rl.environment.train` with the caller's
:class:`whatnext.rl.callbacks.Callback`, so the CLI draws its progress bar; nothing here prints.
torch is imported only when a baseline is loaded or trained.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from whatnext import checkpoints
from whatnext.config import Config
from whatnext.data import Dataset
from whatnext.errors import CheckpointError, ConfigError, Interrupted, NotFoundError, TrainingError
from whatnext.evaluation import baselines as bl
from whatnext.rl.callbacks import Callback

log = logging.getLogger(__name__)

#: Run folders of learned baselines are named ``PREFIX + name + "-" + hash``.
PREFIX = "baseline-"
#: The record in a baseline's run folder: kind, name, cache key, when it was written.
RECORD = "baseline.json"
#: Bump when the way a baseline is trained changes: every cached run is then retrained.
#: 2: ``sasrec`` trains 7x the agent's epochs at Adam 1e-3 and keeps its best epoch by validation.
VERSION = 2
#: Baselines that learn (trained as runs and cached); the others are fitted in a blink.
LEARNED = ("lstm", "sasrec")
#: Settings left out of the key: they do not move the supervised baseline's weights (its critic
#: never learns, as rl_weight = 0 and rerank = 0: rewards, noise, relax, critic_lr, rerank_weight,
#: tune_rerank) or say only how a run is saved and how fast it goes. An agent tuned on them
#: reuses the baseline instead of waiting minutes for the same weights.
UNUSED = {
    "train": frozenset({"enabled", "checkpoint_every", "keep_last", "patience", "threads", "rewards", "noise",
                        "relax", "critic_lr"}),
    "model": frozenset({"rerank_weight", "tune_rerank"}),
}


def data_fingerprint(dataset: Dataset) -> str:
    """A short hash of what a baseline learns from: the catalogue and every user's sequence and split."""
    h = hashlib.sha256(dataset.catalogue.fingerprint().encode())
    hist = dataset.histories
    h.update("\x1f".join(map(str, hist.user_ids.tolist())).encode())
    for arr in (hist.offsets, hist.items, hist.train_len):
        h.update(np.ascontiguousarray(arr, dtype=np.int64).tobytes())
    return h.hexdigest()[:16]


def baseline_config(cfg: Config, trained: dict[str, Any] | None, name: str = "lstm") -> tuple[Config, list[str]]:
    """The supervised baseline's config: ``cfg`` with the agent's model and training sections as
    recorded in its checkpoint (``trained``), then the baseline's fixed choices.

    Returns the config and notes (one line each) about what could not be taken from the checkpoint.
    """
    from whatnext.config import set_value

    out = copy.deepcopy(cfg)
    notes: list[str] = []
    for section in ("model", "train"):
        saved = (trained or {}).get(section)
        if not isinstance(saved, dict):
            notes.append(f"the agent's checkpoint records no [{section}] settings; the {name} baseline uses the config file's")
            continue
        for key, value in saved.items():
            try:
                set_value(out, section, key, value)
            except ConfigError:  # a key this version no longer has, or a value it refuses: keep the file's
                pass
    learner: type[bl.SupervisedLSTMBaseline] = bl.BASELINES[name]  # every LEARNED baseline is one
    learner.budget(learner.fix(out))
    out.train.keep_last = 1
    return out, notes


def _settings(conf: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s: {k: v for k, v in sorted(conf.get(s, {}).items()) if k not in UNUSED[s]} for s in ("model", "train")}


def cache_key(name: str, bcfg: Config, dataset: Dataset) -> dict[str, Any]:
    """What a learned baseline's weights depend on; its hash names the run folder."""
    return {"baseline": name, "version": VERSION, "data": data_fingerprint(dataset), **_settings(bcfg.to_dict())}


def key_hash(key: dict[str, Any]) -> str:
    """12 hex digits of the key's SHA-256 (the key as sorted JSON)."""
    return hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:12]


def run_record(run_dir: Path) -> dict[str, Any] | None:
    """The baseline record of a run folder (kind, name, key), or None for an agent's run."""
    raw = checkpoints.read_small(run_dir / RECORD)  # a FIFO or a link planted there is never opened
    try:
        rec = json.loads(raw.decode("utf-8")) if raw is not None else None
    except ValueError:  # includes UnicodeDecodeError
        return None
    if not isinstance(rec, dict) or rec.get("kind") != "baseline":
        return None
    return rec


def _write_record(run_dir: Path, key: dict[str, Any]) -> None:
    path, tmp = run_dir / RECORD, run_dir / f".{RECORD}.tmp"
    if os.path.lexists(run_dir) and not run_dir.is_dir():
        raise TrainingError(f"{run_dir}: is not a folder, and the {key['baseline']} baseline's run goes there; "
                            f"move it away and evaluate again")
    rec = {"kind": "baseline", "baseline": key["baseline"], "hash": key_hash(key), "time": time.time(), "key": key}
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(rec, indent=1, default=str), encoding="utf-8")
        os.replace(tmp, path)
    except OSError as e:
        raise TrainingError(f"{e.filename or path}: cannot write the {key['baseline']} baseline's run ({e.strerror}); "
                            f"free disk space or fix permissions on {run_dir.parent}, then evaluate again") from None


def _why_new(run_dir: Path, key: dict[str, Any]) -> str:
    """Why the baseline trains: what differs from the newest cached run of the same baseline."""
    others = [(rec.get("time", 0), p, rec) for p in run_dir.parent.glob(f"{PREFIX}{key['baseline']}-*")
              if p != run_dir and (rec := run_record(p)) is not None and isinstance(rec.get("key"), dict)]
    if not others:
        return "no cached run yet"
    _, old_dir, rec = max(others, key=lambda o: o[0])
    old = rec["key"]
    diffs = [f"the data changed ({old.get('data')} -> {key['data']})"] if old.get("data") != key["data"] else []
    if old.get("version") != key["version"]:
        diffs.append(f"baseline version {old.get('version')} -> {key['version']}")
    for s in ("model", "train"):
        a, b = old.get(s, {}), key[s]
        diffs += [f"{s}.{k} {a.get(k)!r} -> {b.get(k)!r}" for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
    return f"{'; '.join(diffs) or 'other settings'} since {old_dir.name}"


def _total_steps(bcfg: Config, dataset: Dataset) -> int:
    from whatnext.rl.environment import total_steps

    return total_steps(bcfg, bl.epoch_steps(bcfg, dataset))


def _open(run_dir: Path, bcfg: Config, dataset: Dataset, key: dict[str, Any], best: bool = False) -> tuple[str, Any]:
    """The cached run's state: ("complete", agent), ("partial", step), ("absent", None) or ("corrupt", reason).

    A complete run's agent is its last checkpoint's, or with ``best`` the one its ``best`` marker names
    (the epoch with the best validation NDCG@10)."""
    from whatnext import checkpoints
    from whatnext.rl.environment import agent_from_payload

    if not run_dir.is_dir():
        return "absent", None
    pt = checkpoints.marker(run_dir, "latest")
    if pt is None or not pt.exists():
        infos = checkpoints.listing(run_dir)
        if not infos:
            return ("absent", None) if pt is None else ("corrupt", f"{pt}: the checkpoint 'latest' names is missing")
        pt = infos[-1].path
    try:
        checkpoints.verify(pt)  # a cache is trusted only with its checksum: load() alone skips a missing sidecar
        payload = checkpoints.load(pt)
        if _settings(payload.get("config", {})) != {s: key[s] for s in ("model", "train")}:
            return "corrupt", f"{pt}: made for other settings than its folder's name says"
        step, total = int(payload["step"]), _total_steps(bcfg, dataset)
        if step < total:
            return "partial", step
        if step > total:
            return "corrupt", f"{pt}: step {step} is past the budget's {total} steps"
        if best:
            marked = checkpoints.marker(run_dir, "best")
            if marked is None or not marked.exists():
                return "corrupt", f"{run_dir}: no 'best' checkpoint marked"
            if marked != pt:
                checkpoints.verify(marked)
                payload = checkpoints.load(marked)
                if _settings(payload.get("config", {})) != {s: key[s] for s in ("model", "train")}:
                    return "corrupt", f"{marked}: made for other settings than its folder's name says"
        return "complete", agent_from_payload(copy.deepcopy(bcfg), dataset, payload)
    except (CheckpointError, NotFoundError) as e:
        return "corrupt", str(e).split("; ")[0]
    except (KeyError, TypeError, ValueError) as e:
        return "corrupt", f"{pt}: not a baseline checkpoint ({type(e).__name__}: {e})"


class _Labelled(Callback):
    """Forwards to the caller's callback, naming the baseline and adding the cache's warnings at the start."""

    def __init__(self, inner: Callback, label: str, warnings: list[str]) -> None:
        self.inner, self.label, self.warnings = inner, label, warnings

    def on_start(self, info: dict[str, Any]) -> None:
        self.inner.on_start({**info, "algorithm": self.label, "warnings": [*self.warnings, *info.get("warnings", [])]})

    def on_step(self, step: int, metrics: dict[str, float]) -> bool:
        return self.inner.on_step(step, metrics)

    def on_eval(self, step: int, metrics: dict[str, float]) -> None:
        self.inner.on_eval(step, metrics)

    def on_checkpoint(self, step: int, path: Path) -> None:
        self.inner.on_checkpoint(step, path)

    def on_end(self, summary: dict[str, Any]) -> None:
        self.inner.on_end(summary)


def learned(name: str, dataset: Dataset, cfg: Config, trained: dict[str, Any] | None = None,
            callback: Callback | None = None) -> tuple[Any, dict[str, Any]]:
    """Learned baseline ``name``, loaded from its cached run or trained into it once.

    ``trained`` is the config recorded in the agent's checkpoint (its budget); ``cfg`` gives
    the models folder and the inference settings. Returns the fitted baseline and a report:
    name, status (``loaded``, ``trained`` or ``resumed``), run, path, steps, seconds, reason
    and warnings (one line each).
    """
    from whatnext import checkpoints
    from whatnext.rl.environment import train as train_loop

    if name not in LEARNED:
        raise ValueError(f"{name!r} is not a learned baseline; learned: {', '.join(LEARNED)}")
    t0 = time.perf_counter()
    bcfg, warnings = baseline_config(cfg, trained, name)
    key = cache_key(name, bcfg, dataset)
    bcfg.paths.run = f"{PREFIX}{name}-{key_hash(key)}"  # hex digits and a registry name: stays inside models_dir
    run_dir = bcfg.run_dir
    learner: type[bl.SupervisedLSTMBaseline] = bl.BASELINES[name]  # every LEARNED baseline is one
    best = learner.best_by_validation
    evaluator = None
    if best:  # a checkpoint after every epoch, scored on validation; the best is the baseline
        from whatnext.evaluation.validation import validator

        bcfg.train.checkpoint_every = bl.epoch_steps(bcfg, dataset)
        evaluator = validator(bcfg, dataset)
    state, found = _open(run_dir, bcfg, dataset, key, best)
    status, reason, steps = "loaded", "cached run for this data and budget", None
    if state != "complete":
        if state == "corrupt":
            warnings.append(f"the cached {name} baseline cannot be trusted ({found}); training it again")
            checkpoints.clear(run_dir)
            reason = "its cached checkpoint was corrupt"
        elif state == "partial":
            reason = f"continuing the interrupted training from step {found}"
        else:
            reason = _why_new(run_dir, key)
        _write_record(run_dir, key)
        label = f"the {name} baseline ({reason})"
        summary = train_loop(bcfg, dataset, resume=state == "partial", force=True, evaluator=evaluator,
                             callback=_Labelled(callback or Callback(), label, warnings))
        if summary["status"] == "interrupted":
            raise Interrupted(f"{run_dir}: training of the {name} baseline stopped at step {summary['steps']} of "
                              f"{summary['total_steps']}; checkpoint saved; the next 'whatnext eval --baselines' continues it")
        status, steps = ("resumed" if state == "partial" else "trained"), summary["steps"] - summary["start_step"]
        state, found = _open(run_dir, bcfg, dataset, key, best)  # the evaluation always scores what the cache holds
        if state != "complete":
            raise CheckpointError(f"{run_dir}: the {name} baseline just trained does not load back ({found})")
    for w in warnings:
        log.warning(w)
    model = bl.BASELINES[name](config=bcfg)
    model.use(found, dataset)
    return model, {"name": name, "status": status, "run": run_dir.name, "path": str(run_dir), "steps": steps,
                   "seconds": time.perf_counter() - t0, "reason": reason, "warnings": warnings}


def fit_baselines(dataset: Dataset, cfg: Config, *, trained: dict[str, Any] | None = None,
                  embeddings: np.ndarray | None = None, callback: Callback | None = None) -> tuple[list[Any], dict[str, Any]]:
    """Every baseline usable on ``dataset``, fitted (cheap ones) or loaded/trained once (:func:`learned`).

    Returns the models in registry order and a report: ``loaded``, ``trained`` and ``fitted``
    (names), ``seconds`` (all of them), ``runs`` (one :func:`learned` report per learned
    baseline) and ``warnings``.
    """
    t0 = time.perf_counter()
    models: list[Any] = []
    report: dict[str, Any] = {"loaded": [], "trained": [], "fitted": [], "runs": [], "warnings": []}
    for name in bl.available(dataset, embeddings):
        if name in LEARNED:
            model, run = learned(name, dataset, cfg, trained, callback)
            report["loaded" if run["status"] == "loaded" else "trained"].append(name)
            report["runs"].append(run)
            report["warnings"] += run["warnings"]
        else:
            model = bl.make(name, dataset, seed=cfg.train.seed, embeddings=embeddings, config=cfg)
            report["fitted"].append(name)
        models.append(model)
    report["seconds"] = time.perf_counter() - t0
    return models, report


__all__ = ["LEARNED", "PREFIX", "RECORD", "baseline_config", "cache_key", "data_fingerprint", "fit_baselines",
           "key_hash", "learned", "run_record"]
