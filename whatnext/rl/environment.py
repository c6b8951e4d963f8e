"""The original Environment: ``run_sim`` in training or inference mode, and a Gymnasium-style
``reset``/``step`` so other RL code can drive the same loop.

Training (:func:`train`): wake the agent, then for each step take a batch of training
positions (shuffled per epoch from the seed), let the agent propagate, report metrics, and
save checkpoints at intervals. Every step's randomness comes from (seed, step), so a resumed
run continues exactly where the interrupted one was. Under torchrun the same loop runs in every
process, each on its share of every global batch (:mod:`whatnext.rl.distributed`).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from whatnext import checkpoints
from whatnext.config import Config
from whatnext.data import PAD, Dataset
from whatnext.errors import CheckpointError, OutputExistsError, TrainingError
from whatnext.rl import distributed, offpolicy, schedule
from whatnext.rl.agent import Agent
from whatnext.rl.algorithms import positions_for, resolve_device
from whatnext.rl.batch import Batch, make_batch
from whatnext.rl.callbacks import Callback, CallbackList, JsonlWriter, TensorBoardWriter
from whatnext.rl.restore import (
    agent_from_payload,
    export_legacy,
    load_legacy,
    restore,
    score_scales,
)
from whatnext.rl.schedule import steps_per_epoch
from whatnext.rl.state import State

log = logging.getLogger(__name__)
Evaluator = Callable[[Agent], dict[str, float]]
def select_metric(ks: list[int]) -> str:
    """The validation metric that picks the best checkpoint: NDCG@10, else NDCG at the first cut-off."""
    return f"eval/ndcg@{10 if 10 in ks else ks[0]}"


def step_seed(seed: int, step: int) -> int:
    """The seed of one learning step's randomness."""
    return (seed * 1_000_003 + step) % (2**63)


def epoch_order(seed: int, epoch: int, n: int) -> np.ndarray:
    """The shuffled order of training positions in one epoch."""
    return np.random.default_rng([seed, epoch, 7]).permutation(n)


def learning_steps(cfg: Config, dataset: Dataset, positions: np.ndarray, start: int, total: int,
                   replica: distributed.Replica = distributed.SOLO, walk: schedule.Walk | None = None,
                   ) -> Iterator[tuple[int, int, int, Batch, np.random.Generator, torch.Generator]]:
    """Yield ``(step, epoch, index in epoch, batch, rng, torch generator)`` for steps start..total-1.

    The one place that decides which positions a step sees and which randomness it gets
    (derived from (seed, step), and torch's global seed for dropout), so a resumed run, the
    supervised baseline and the processes of a distributed run all follow the same sequence.
    ``walk`` (:mod:`whatnext.rl.schedule`) says where in the seeded order the steps begin and
    how many positions each takes (the global batch; by default this world's, from step
    ``start`` of a run that kept it); it stands after the yielded step while the caller holds
    it. ``replica`` takes this process's share of each global batch and its own seed.
    """
    t = cfg.train
    if walk is None:
        batch_size = schedule.global_batch(cfg, replica.world.size)
        walk = schedule.Walk(len(positions), batch_size, schedule.at_step(start, len(positions), batch_size))
    order, order_epoch = np.zeros(0, np.int64), -1
    for step in range(start, total):
        epoch, lo, hi = walk.next()
        if epoch != order_epoch:
            order, order_epoch = epoch_order(t.seed, epoch, len(positions)), epoch
        batch = make_batch(dataset, replica.take(positions[order[lo:hi]]), cfg.model.window)
        s = step_seed(t.seed, step)
        r = replica.seed(s)  # per rank: exploration noise and dropout; negatives (numpy) are shared
        torch.manual_seed(r)  # dropout
        yield step, epoch, -(-lo // walk.batch), batch, np.random.default_rng(s), torch.Generator().manual_seed(r)


def total_steps(cfg: Config, steps_in_epoch: int) -> int:
    """Learning steps of a single-process run: legacy ``samples`` (total samples) if set, else epochs."""
    if cfg.train.samples:
        return max(1, math.ceil(cfg.train.samples / cfg.train.batch_size))
    return cfg.train.epochs * steps_in_epoch


#: ``train.checkpoint_every = "auto"``: a checkpoint every epoch, but at least every this many steps
AUTO_CHECKPOINT_MAX = 500


def checkpoint_interval(cfg: Config, steps_in_epoch: int) -> int:
    """``train.checkpoint_every`` in steps: ``auto`` is one epoch, at most :data:`AUTO_CHECKPOINT_MAX`.

    Validation picks the best checkpoint, so on small data it must come often enough to catch the
    epoch where the agent peaks (MovieLens 100K, 76 steps an epoch: epoch 5 or 6 of 10, between the
    checkpoints a fixed 500 steps gave); on large data an epoch is long and 500 steps stay the rhythm.
    """
    every = cfg.train.checkpoint_every
    return min(steps_in_epoch, AUTO_CHECKPOINT_MAX) if every == "auto" else int(every)


def checkpoint_payload(agent: Agent, cfg: Config, step: int, epoch: int, metrics: dict[str, float],
                       best: float | None) -> dict[str, Any]:
    """Everything a checkpoint holds (tensors and primitives only)."""
    assert agent.actor_opt is not None and agent.critic_opt is not None
    return {
        "step": step, "epoch": epoch, "seed": cfg.train.seed,
        "actor": agent.actor.state_dict(), "critic": agent.critic.state_dict(),
        "actor_opt": agent.actor_opt.state_dict(), "critic_opt": agent.critic_opt.state_dict(),
        "model_name": cfg.model.name, "model_args": dict(agent.args), "algorithm": cfg.train.algorithm,
        "config": cfg.to_dict(), "fingerprint": agent.state.catalogue.fingerprint(),
        "catalogue": agent.state.catalogue.summary(),
        "metrics": {k: float(v) for k, v in metrics.items()}, "best_metric": best,
        "torch_rng": torch.get_rng_state(), "rerank_weight": float(agent.rerank_weight),
        "rerank_weight_seen": float(agent.rerank_weight_seen), **score_scales(agent), **offpolicy.payload(agent),
    }


def train(cfg: Config, dataset: Dataset, *, resume: bool = False, callback: Callback | None = None,
          evaluator: Evaluator | None = None, force: bool = False, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Train actor and critic on ``dataset`` as ``cfg`` says; return a summary dict.

    ``resume`` continues from the run's newest good checkpoint. Starting afresh in a run that
    already has checkpoints is refused (OutputExistsError) unless ``force``, which deletes
    them first. ``evaluator`` (agent -> validation metrics) runs at every checkpoint and
    decides the ``best`` marker. ``overrides`` (``"section.key" -> value``, the command line's) are
    recorded in every checkpoint with the run's target (``target``: epochs, samples, total steps),
    so that a resume can continue to the same target (:func:`recorded_overrides`).

    Started by torchrun (WORLD_SIZE > 1), every process calls this: rank 0 takes the run lock
    for the whole job, validates, writes and calls ``callback``; the others only train.
    """
    run_dir = cfg.run_dir
    world = distributed.detect()
    with distributed.session(world, resolve_device(cfg.train.device), cfg.train.dist_timeout) as replica:
        if not replica.main:
            return _train_locked(cfg, dataset, run_dir, resume, Callback(), None, overrides or {}, replica)
        with checkpoints.RunLock(run_dir):
            if not resume and checkpoints.listing(run_dir):
                if not force:
                    raise OutputExistsError(
                        f"{run_dir}: run '{run_dir.name}' already has checkpoints; continue it with --resume, "
                        f"start another with --run NAME, or pass --force to delete them and start over"
                    )
                checkpoints.clear(run_dir)
            return _train_locked(cfg, dataset, run_dir, resume, callback or Callback(), evaluator, overrides or {},
                                 replica)


def _train_locked(cfg: Config, dataset: Dataset, run_dir: Path, resume: bool, callback: Callback,
                  evaluator: Evaluator | None, overrides: dict[str, Any],
                  replica: distributed.Replica = distributed.SOLO) -> dict[str, Any]:
    t = cfg.train
    torch.manual_seed(t.seed)  # initial weights
    state = State(dataset)
    agent = Agent(state, cfg)
    agent.replica = replica
    agent.wake()
    positions = positions_for(dataset, t.algorithm, cfg.model.window)
    if len(positions) == 0:
        raise TrainingError(f"{dataset.source}: no training positions (every user needs at least 4 events to train on)")
    n, batch_size = len(positions), schedule.global_batch(cfg, replica.world.size)
    spe = steps_per_epoch(n, batch_size)
    start, best, resumed_stale, cursor = 0, None, 0, schedule.Cursor()
    every = checkpoint_interval(cfg, spe)
    warnings: list[str] = []
    payload: dict[str, Any] | None = None
    if resume and replica.main:
        found = checkpoints.load_latest(run_dir, warnings)
        if found is None:
            raise CheckpointError(f"{run_dir}: no checkpoint to resume from; start without --resume")
        pt, payload = found
        restore(agent, payload, optimisers=True)
        _repair_best_marker(run_dir, pt, payload, select_metric(list(cfg.eval.ks)))
        log.info("resuming from %s at step %d", pt, int(payload["step"]))
        start, cursor = int(payload["step"]), schedule.cursor_of(payload, n, t.batch_size)
    total = start + schedule.steps_left(cfg, cursor, n, batch_size)
    target = {"epochs": t.epochs, "samples": t.samples, "total_steps": total,
              "overrides": {k: v for k, v in overrides.items() if v is not None}}
    if replica.active:  # rank 0's plan and checkpoint on every rank; the same start weights everywhere
        total, shared = distributed.agree_on_plan(replica, agent, cfg, n, total, payload)
        if not replica.main and shared is not None:
            restore(agent, shared, optimisers=True)
            payload = shared
    if payload is not None:
        start, best = int(payload["step"]), payload.get("best_metric")
        resumed_stale = int(payload.get("stale", 0))
        cursor = schedule.cursor_of(payload, n, t.batch_size)
    lr_factor = schedule.lr_factor(cfg, replica.world.size)
    schedule.set_learning_rates(agent, lr_factor)  # the config's rates x the rule for this world, resumed or not
    writers: list[JsonlWriter | TensorBoardWriter] = []
    if replica.main:
        writers.append(JsonlWriter(run_dir / "metrics.jsonl", resume_step=start))
        if t.tensorboard:
            writers.append(TensorBoardWriter(run_dir, resume_step=start))
    cb = CallbackList([*writers, callback])
    cb.on_start({"run_dir": str(run_dir), "start_step": start, "total_steps": total, "steps_per_epoch": spe,
                 "positions": n, "warnings": warnings, "algorithm": t.algorithm, "global_batch": batch_size,
                 "processes": replica.world.size, "lr_factor": lr_factor})
    try:
        metrics: dict[str, float] = {}
        status, last_pt = "finished", checkpoints.marker(run_dir, "latest") if resume else None
        t0 = time.perf_counter()
        step, stale = start, resumed_stale
        walk = schedule.Walk(n, batch_size, cursor)
        for done, epoch, _, batch, rng, gen in learning_steps(cfg, dataset, positions, start, total, replica, walk):
            schedule.follow(agent, cfg, done, total, lr_factor)
            metrics = replica.mean_metrics(agent.propagate(batch, rng, gen))
            step = done + 1
            bad = [k for k, v in metrics.items() if not math.isfinite(v)]
            if bad:
                raise TrainingError(
                    f"{run_dir}: step {step}: {bad[0]} is {metrics[bad[0]]}; training stopped and the last good checkpoint "
                    f"({last_pt or 'none yet'}) is kept; lower train.actor_lr / train.critic_lr or set train.grad_clip"
                )
            metrics["train/epoch"] = walk.epochs
            metrics["train/samples_per_s"] = (walk.cursor.consumed - cursor.consumed) / max(time.perf_counter() - t0, 1e-9)
            code = 0
            if replica.main:
                stop = cb.on_step(step, metrics)
                if stop or step % every == 0 or step == total:
                    best, last_pt, stale = _checkpoint(agent, cfg, run_dir, step, epoch, metrics, best, stale,
                                                       evaluator, cb, target, walk.cursor)
                if stop:
                    code = 1
                elif t.patience and evaluator is not None and stale >= t.patience and step < total:
                    code = 2  # validation has not improved for `patience` checkpoints
            code = replica.agree(code)  # every rank leaves the loop at rank 0's step
            if code:
                status = "interrupted" if code == 1 else "early_stopped"
                break
        summary = {
            "status": status, "run_dir": str(run_dir), "steps": step, "start_step": start, "total_steps": total,
            "checkpoint": str(last_pt) if last_pt else None, "best_metric": best, "metrics": metrics,
            "seconds": time.perf_counter() - t0, "warnings": warnings,
            "processes": replica.world.size, "rank": replica.world.rank,
        }
        cb.on_end(summary)
        return summary
    finally:
        for w in writers:
            w.close()  # also when a step raises (NaN loss, disk full)


def _repair_best_marker(run_dir: Path, pt: Path, payload: dict[str, Any], key: str) -> None:
    """After a crash between moving 'latest' and 'best': point 'best' at the checkpoint resumed from when it
    was the best when saved (its score is the run's best) and the marked one scores lower."""
    best = payload.get("best_metric")
    if best is None or payload.get("metrics", {}).get(key) != best:
        return
    marked = checkpoints.marker(run_dir, "best")
    if marked == pt:
        return
    score = next((c.metrics.get(key) for c in checkpoints.listing(run_dir) if c.path == marked), None)
    if score is None or score < best:
        checkpoints.set_marker(run_dir, "best", pt)


def _checkpoint(agent: Agent, cfg: Config, run_dir: Path, step: int, epoch: int, metrics: dict[str, float],
                best: float | None, stale: int, evaluator: Evaluator | None,
                cb: Callback, target: dict[str, Any] | None = None,
                cursor: schedule.Cursor | None = None) -> tuple[float | None, Path, int]:
    """Evaluate (if asked), save, move the markers, prune, export the legacy files.

    Returns the best validation score, the checkpoint, and how many checkpoints in a row
    have not improved it (early stopping's count, saved so a resumed run counts on). ``cursor``:
    how far into the seeded order the run is (what a resume under any number of processes continues from).
    """
    saved = dict(metrics)
    is_best = evaluator is None
    if evaluator is not None:
        ev = evaluator(agent)
        cb.on_eval(step, ev)
        saved.update(ev)
        score = ev.get(select_metric(list(cfg.eval.ks)))
        if score is not None and (best is None or score > best):
            best, is_best = float(score), True
    stale = 0 if is_best else stale + 1
    pt = checkpoints.save(run_dir, {**checkpoint_payload(agent, cfg, step, epoch, saved, best), "stale": stale,
                                    "target": target or {}, **({"cursor": cursor.to_dict()} if cursor else {})})
    if is_best:
        checkpoints.set_marker(run_dir, "best", pt)
    checkpoints.prune(run_dir, cfg.train.keep_last)
    export_legacy(agent, cfg)
    cb.on_checkpoint(step, pt)
    return best, pt, stale


def recorded_overrides(run_dir: Path) -> dict[str, Any]:
    """The command-line overrides the run's newest good checkpoint was trained with ({} if none)."""
    found = checkpoints.load_latest(run_dir)
    target = found[1].get("target") if found is not None else None
    saved = target.get("overrides") if isinstance(target, dict) else None
    return {str(k): v for k, v in saved.items()} if isinstance(saved, dict) else {}


class Environment:
    """The original Environment over one dataset, with Gymnasium's reset/step contract.

    An episode replays one user's training sequence: the observation is the window of the
    items before position t; the action is a proto-action (a point in item-vector space);
    ``step`` lets State.produce pick a song near it, rewards that song with the configured
    rewards against the song the user really played at t, and moves to t + 1. The episode
    is truncated at the end of the user's training part.
    """

    def __init__(self, cfg: Config, dataset: Dataset, agent: Agent | None = None) -> None:
        self.cfg, self.dataset = cfg, dataset
        self.agent = agent or Agent(State(dataset), cfg)
        if self.agent.population_sigma is None:
            self.agent._refresh_reward_stats()
        self.rng = np.random.default_rng(cfg.train.seed)
        self.user = -1
        self.t = 0

    def _obs(self) -> dict[str, np.ndarray]:
        h = self.dataset.histories
        hist, lengths = h.windows(np.array([h.offsets[self.user] + self.t]), self.cfg.model.window, np.array([self.user]))
        return {"history": hist[0], "length": lengths[0], "user": np.int64(self.user)}

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Start an episode for a random user with >= 2 training events (or ``options['user']``)."""
        if seed is not None:
            self.rng = np.random.default_rng(seed)
        h = self.dataset.histories
        if options and "user" in options:
            self.user = int(options["user"])
        else:
            self.user = int(self.rng.choice(np.flatnonzero(h.train_len >= 2)))
        self.t = 1
        return self._obs(), {"user_id": str(h.user_ids[self.user])}

    def step(self, action: np.ndarray) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        """Produce a song for ``action``, reward it, advance one event."""
        from whatnext.rl import rewards

        h = self.dataset.histories
        obs = self._obs()
        vectors = self.agent.item_vectors()
        produced = int(self.agent.state.produce(np.asarray(action, dtype=np.float32), self.cfg.train.relax, self.rng))
        target = int(h.items[h.offsets[self.user] + self.t])
        assert self.agent.population_sigma is not None
        r_in = rewards.RewardInputs(obs["history"][None], np.array([obs["length"]]), np.array([[produced]]),
                                    np.array([target]), np.array([self.user]), vectors,
                                    self.agent.population_sigma, self.agent.delta,
                                    None if h.rewards is None else h.rewards[[h.offsets[self.user] + self.t]])
        reward, parts = rewards.combined(self.cfg.train.rewards, r_in)
        self.t += 1
        truncated = self.t >= h.train_len[self.user]
        info = {"produced": produced, "target": target, **parts}
        return (obs if truncated else self._obs()), float(reward[0, 0]), False, bool(truncated), info

    def run_sim(self, mode: str = "train", **kwargs: Any) -> dict[str, Any]:
        """The original entry point: ``train`` runs :func:`train`; ``infer`` recommends for users."""
        if mode == "train":
            return train(self.cfg, self.dataset, **kwargs)
        if mode == "infer":
            users = kwargs.get("users", np.arange(len(self.dataset.histories)))
            k = kwargs.get("k", 10)
            histories = [self.dataset.histories.of(int(u)) for u in users]
            self.agent.ready()
            return {"users": users, "items": self.agent.recommend(histories, k, histories)}
        raise ValueError(f"mode must be 'train' or 'infer', not {mode!r}")


__all__ = ["PAD", "Environment", "agent_from_payload", "export_legacy", "load_legacy", "restore", "train"]
