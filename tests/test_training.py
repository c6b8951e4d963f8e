"""The learning core: the original algorithm learns, training never sees held-out events, checkpoints
are exact and safe, resume equals an uninterrupted run, failures stop cleanly, and the Environment
follows Gymnasium's contract. Every run here is tiny (a fraction of a second)."""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import core_helpers as ch
import numpy as np
import pytest
import torch

from whatnext import checkpoints, engine
from whatnext.config import Config
from whatnext.data import PAD, build_dataset
from whatnext.errors import CheckpointError, NotFoundError, OutputExistsError, TrainingError
from whatnext.rl import algorithms as agent_mod
from whatnext.rl import environment, rewards
from whatnext.rl.agent import Agent
from whatnext.rl.algorithms import positions_for
from whatnext.rl.batch import make_batch
from whatnext.rl.callbacks import Callback
from whatnext.rl.environment import Environment, agent_from_payload, checkpoint_payload
from whatnext.rl.state import State

ALGORITHMS = sorted(agent_mod.ALGORITHMS)


def _agent(cfg: Config, ds, seed: int = 0) -> Agent:
    torch.manual_seed(seed)
    a = Agent(State(ds), cfg)
    a.wake()
    return a


def _fixed_batch(ds, cfg: Config, n: int = ch.BATCH):
    pos = positions_for(ds, cfg.train.algorithm, cfg.model.window)
    return make_batch(ds, pos[np.random.default_rng(0).permutation(len(pos))[:n]], cfg.model.window)


class StopAt(Callback):
    """Asks the loop to stop after step ``k`` (as Ctrl-C does)."""

    def __init__(self, k: int) -> None:
        self.k = k
        self.steps: list[int] = []

    def on_step(self, step: int, metrics: dict[str, float]) -> bool:
        self.steps.append(step)
        return step >= self.k


def _final(run_dir: Path) -> dict[str, Any]:
    found = checkpoints.load_latest(run_dir)
    assert found is not None, f"no checkpoint in {run_dir}"
    return found[1]


# ---------------------------------------------------------------- learning


def test_critic_loss_falls_on_a_fixed_batch(tmp_path: Path) -> None:
    ds = ch.dataset()
    cfg = ch.config(tmp_path, "original", critic_lr=1e-2, actor_lr=1e-6, noise=0.0)
    agent = _agent(cfg, ds)
    batch = _fixed_batch(ds, cfg)
    losses = []
    for _ in range(50):
        m = agent_mod.train_original(agent, batch, np.random.default_rng(0), torch.Generator().manual_seed(0))
        losses.append(m["train/critic_loss"])
    assert all(np.isfinite(losses))
    first, last = np.mean(losses[:5]), np.mean(losses[-5:])
    assert last < 0.25 * first, (first, last)


def test_actor_moves_toward_high_critic_values(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With the critic frozen, the algorithm's DPG step raises critic(history, actor(history))."""
    ds = ch.dataset()
    cfg = ch.config(tmp_path, "original", actor_lr=1e-2, grad_clip=0.0)
    agent = _agent(cfg, ds)
    assert agent.critic_opt is not None
    monkeypatch.setattr(agent.critic_opt, "step", lambda *a, **k: None)  # fix the critic
    critic_before = {k: v.clone() for k, v in agent.critic.state_dict().items()}
    batch = _fixed_batch(ds, cfg, 16)
    hist, lens = torch.from_numpy(batch.inputs), torch.from_numpy(batch.lengths)

    def value() -> tuple[float, torch.Tensor]:
        agent.actor.eval()
        agent.critic.eval()
        with torch.no_grad():
            proto = agent.actor(hist, lens)
            return float(agent.critic(hist, lens, proto).mean()), proto

    v0, p0 = value()
    for i in range(30):
        agent_mod.train_original(agent, batch, np.random.default_rng(i), torch.Generator().manual_seed(i))
    v1, p1 = value()
    assert ch.state_equal(agent.critic.state_dict(), critic_before), "the actor step must not change the critic"
    assert not torch.equal(p0, p1), "proto-actions did not move"
    assert v1 > v0 + 1e-3, (v0, v1)


def _planted(n_users: int = 30, n_events: int = 15, n_items: int = 40):
    """Frames where every user's last two events are items nobody else ever plays."""
    events, items = ch.frames(n_users=n_users, n_events=n_events, n_items=n_items)
    events = events.copy()
    rank = events.groupby("user_id")["timestamp"].rank(ascending=False)
    held = rank <= 2
    planted = np.arange(n_items, n_items + int(held.sum()))
    events.loc[held, "item_id"] = planted
    rng = np.random.default_rng(9)
    extra = items.iloc[:0].copy()
    for j, it in enumerate(planted):
        extra.loc[j] = [it, *rng.random(3), f"Planted {it}"]
    items = items.astype({"item_id": int})
    all_items = np.concatenate([items.to_numpy(), extra.to_numpy()])
    import pandas as pd

    table = pd.DataFrame(all_items, columns=items.columns).astype({"item_id": int, "f0": float, "f1": float, "f2": float})
    return events, table, planted


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_training_positions_never_include_the_last_two_events(algorithm: str, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    events, items, planted = _planted()
    ds = build_dataset(events, items, Config(), source="planted")
    planted_idx = ds.catalogue.index_of(planted.astype(str))
    assert (planted_idx >= 0).all()
    cfg = ch.config(tmp_path, algorithm)
    pos = positions_for(ds, algorithm, cfg.model.window)
    batch = make_batch(ds, pos, cfg.model.window)
    seen = np.concatenate([batch.inputs.ravel(), batch.targets.ravel()])
    assert not np.isin(planted_idx, seen).any()
    # positive control: every training event but each user's first is a target somewhere
    h = ds.histories
    tr = h.train_mask()
    expected = {(u, t) for u in range(len(h)) for t in range(h.offsets[u] + 1, h.offsets[u] + h.train_len[u])}
    targets = set()
    for b in range(len(pos)):
        for j in range(batch.lengths[b]):
            targets.add(int(batch.targets[b, j]))
    assert {int(h.items[t]) for _, t in expected} <= targets
    assert tr.sum() == len(h.items) - 2 * len(h)
    # and the real loop only ever builds batches from training events
    batches = []
    real = environment.make_batch

    def spy(dataset, positions, window):
        b = real(dataset, positions, window)
        batches.append(b)
        return b

    monkeypatch.setattr(environment, "make_batch", spy)
    environment.train(ch.config(tmp_path, algorithm, run="spy"), ds)
    assert batches
    for b in batches:
        assert not np.isin(planted_idx, np.concatenate([b.inputs.ravel(), b.targets.ravel()])).any()


# ---------------------------------------------------------------- checkpoints


HAS_RERANK = hasattr(Config().model, "rerank")
RERANK = [0, pytest.param(8, marks=pytest.mark.skipif(not HAS_RERANK, reason="no model.rerank in this version"))]


@pytest.mark.parametrize("rerank", RERANK)
@pytest.mark.parametrize("mode", ["features", "learned"])
def test_checkpoint_save_load_gives_identical_recommendations(mode: str, rerank: int, tmp_path: Path) -> None:
    ds = ch.dataset()
    cfg = ch.config(tmp_path, "hybrid")
    cfg.model.item_embedding, cfg.model.embedding_dim = mode, 4
    if HAS_RERANK:
        cfg.model.rerank = rerank
    agent = _agent(cfg, ds)
    for i in range(3):
        batch = _fixed_batch(ds, cfg)
        agent.propagate(batch, np.random.default_rng(i), torch.Generator().manual_seed(i))
    pt = checkpoints.save(cfg.run_dir, checkpoint_payload(agent, cfg, 3, 0, {"train/x": 1.0}, None))
    agent.ready()
    hists = [ds.histories.of(u) for u in range(len(ds.histories))]
    idx, dist = agent.recommend_with_distances(hists, 5, hists)
    fresh = ch.config(tmp_path / "other")  # other model sizes: the checkpoint's must win
    fresh.model.hidden_size, fresh.model.window = 32, 9
    if HAS_RERANK:
        fresh.model.rerank = rerank
    loaded = agent_from_payload(fresh, ds, checkpoints.load(pt))
    idx2, dist2 = loaded.recommend_with_distances(hists, 5, hists)
    assert np.array_equal(idx, idx2) and np.array_equal(dist, dist2)
    assert ch.state_equal(agent.actor.state_dict(), loaded.actor.state_dict())
    assert ch.state_equal(agent.critic.state_dict(), loaded.critic.state_dict())
    for u, row in enumerate(idx):
        assert not np.isin(row, hists[u]).any()


@pytest.mark.parametrize(("algorithm", "rerank"), [(a, 0) for a in ALGORITHMS] + [
    pytest.param("original", 6, marks=pytest.mark.skipif(not HAS_RERANK, reason="no model.rerank in this version"))])
def test_resume_equals_an_uninterrupted_run(algorithm: str, rerank: int, tmp_path: Path) -> None:
    ds = ch.dataset()
    n, k = 9, 4
    kw: dict[str, Any] = {"samples": n * ch.BATCH, "checkpoint_every": 3, "seed": 5}
    if rerank:
        kw["model"] = {"rerank": rerank}
    straight = ch.config(tmp_path, algorithm, run="straight", **kw)
    straight.model.dropout = 0.2  # dropout randomness must resume too
    s = environment.train(straight, ds)
    assert s["status"] == "finished" and s["steps"] == n

    split = ch.config(tmp_path, algorithm, run="split", **kw)
    split.model.dropout = 0.2
    stop = StopAt(k)
    first = environment.train(split, ds, callback=stop)
    assert first["status"] == "interrupted" and first["steps"] == k and stop.steps[-1] == k
    assert _final(split.run_dir)["step"] == k  # the stop saved a checkpoint at step k
    second = environment.train(split, ds, resume=True)
    assert second["start_step"] == k and second["steps"] == n

    a, b = _final(straight.run_dir), _final(split.run_dir)
    assert a["step"] == b["step"] == n
    assert ch.state_equal(a["actor"], b["actor"])
    assert ch.state_equal(a["critic"], b["critic"])
    # the metrics file holds each step once, as if never interrupted
    lines = [json.loads(x) for x in (split.run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [x["step"] for x in lines if "train/actor_loss" in x] == list(range(1, n + 1))


def test_cosine_rates_follow_the_schedule_and_resume_exactly(tmp_path: Path) -> None:
    from whatnext.rl import schedule

    ds = ch.dataset()
    n, k = 9, 4
    kw: dict[str, Any] = {"samples": n * ch.BATCH, "checkpoint_every": 3, "seed": 5, "lr_schedule": "cosine",
                          "lr_floor": 0.2}
    straight = ch.config(tmp_path, "hybrid", run="straight", **kw)
    assert [schedule.lr_at(straight, i, n) for i in (0, n)] == [1.0, 0.2]
    shares = [schedule.lr_at(straight, i, n) for i in range(n + 1)]
    assert all(a > b for a, b in itertools.pairwise(shares))
    assert schedule.lr_at(straight, 4, 8) == pytest.approx(0.6)  # half way: half way between 1 and the floor
    assert schedule.lr_at(ch.config(tmp_path, "hybrid"), 3, n) == 1.0  # constant, the default

    environment.train(straight, ds)
    a = _final(straight.run_dir)
    # the optimiser's last rate is the schedule's for the last step (step n - 1 of n)
    assert a["actor_opt"]["param_groups"][0]["lr"] == pytest.approx(straight.train.actor_lr * shares[n - 1])
    assert a["critic_opt"]["param_groups"][0]["lr"] == pytest.approx(straight.train.critic_lr * shares[n - 1])

    split = ch.config(tmp_path, "hybrid", run="split", **kw)
    first = environment.train(split, ds, callback=StopAt(k))
    assert first["status"] == "interrupted" and first["steps"] == k
    environment.train(split, ds, resume=True)
    b = _final(split.run_dir)
    assert ch.state_equal(a["actor"], b["actor"]) and ch.state_equal(a["critic"], b["critic"])

    constant = ch.config(tmp_path, "hybrid", run="constant", **{**kw, "lr_schedule": "constant"})
    environment.train(constant, ds)
    assert not ch.state_equal(a["actor"], _final(constant.run_dir)["actor"])  # the schedule changed the learning


def test_same_seed_gives_bit_identical_weights(tmp_path: Path) -> None:
    ds = ch.dataset()
    runs = {}
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        cfg = ch.config(tmp_path, "original", run=name, samples=6 * ch.BATCH, seed=seed)
        environment.train(cfg, ds)
        runs[name] = _final(cfg.run_dir)
    assert ch.state_equal(runs["a"]["actor"], runs["b"]["actor"])
    assert ch.state_equal(runs["a"]["critic"], runs["b"]["critic"])
    assert not ch.state_equal(runs["a"]["actor"], runs["c"]["actor"])  # the seed matters


def test_nan_loss_stops_with_the_step_and_keeps_the_last_checkpoint(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    ds = ch.dataset()
    cfg = ch.config(tmp_path, "original", samples=10 * ch.BATCH, checkpoint_every=2)
    real = rewards.REWARDS["next_item"]
    calls = {"n": 0}

    def poisoned(r):
        calls["n"] += 1
        out = real(r)
        return out * np.nan if calls["n"] >= 5 else out

    monkeypatch.setitem(rewards.REWARDS, "next_item", poisoned)
    with pytest.raises(TrainingError) as exc:
        environment.train(cfg, ds)
    msg = str(exc.value)
    assert "step 5" in msg and "nan" in msg.lower() and "lr" in msg
    assert len(msg.splitlines()) == 1
    good = cfg.run_dir / "ckpt-00000004.pt"
    assert str(good) in msg
    checkpoints.verify(good)
    assert not (cfg.run_dir / "ckpt-00000005.pt").exists()
    pt, payload = checkpoints.load_latest(cfg.run_dir)
    assert pt == good and payload["step"] == 4
    assert all(torch.isfinite(v).all() for v in payload["actor"].values())
    assert not (cfg.run_dir / checkpoints.LOCK).exists(), "the lock must be released after a failure"


def test_a_live_lock_refuses_and_a_dead_one_is_taken_over(tmp_path: Path) -> None:
    ds = ch.dataset()
    cfg = ch.config(tmp_path, "original", samples=2 * ch.BATCH)
    cfg.run_dir.mkdir(parents=True)
    lock = cfg.run_dir / checkpoints.LOCK
    live = os.getppid()
    lock.write_text(str(live))
    with pytest.raises(TrainingError) as exc:
        environment.train(cfg, ds)
    assert str(live) in str(exc.value) and len(str(exc.value).splitlines()) == 1
    assert lock.read_text() == str(live), "a live owner's lock must stay"
    assert not list(cfg.run_dir.glob("ckpt-*")), "nothing trained under someone else's lock"

    p = subprocess.Popen(["true"])
    p.wait()
    lock.write_text(str(p.pid))
    summary = environment.train(cfg, ds)
    assert summary["status"] == "finished"
    assert list(cfg.run_dir.glob("ckpt-*.pt"))
    assert not lock.exists(), "the lock is released at the end"


def _damage(pt: Path, how: str) -> None:
    data = bytearray(pt.read_bytes())
    if how == "flip":
        data[len(data) // 2] ^= 0xFF
    else:
        data = data[: len(data) // 3]
    pt.write_bytes(bytes(data))


@pytest.mark.parametrize("how", ["flip", "truncate"])
def test_a_corrupted_checkpoint_is_detected_and_resume_falls_back(how: str, tmp_path: Path) -> None:
    ds = ch.dataset()
    cfg = ch.config(tmp_path, "original", samples=6 * ch.BATCH, checkpoint_every=2)
    environment.train(cfg, ds)
    newest = cfg.run_dir / "ckpt-00000006.pt"
    older = cfg.run_dir / "ckpt-00000004.pt"
    assert checkpoints.marker(cfg.run_dir, "latest") == newest
    checkpoints.verify(newest)
    _damage(newest, how)
    with pytest.raises(CheckpointError) as exc:
        checkpoints.verify(newest)
    assert newest.name in str(exc.value)
    with pytest.raises(CheckpointError):
        checkpoints.load(newest)
    warnings: list[str] = []
    pt, payload = checkpoints.load_latest(cfg.run_dir, warnings)
    assert pt == older and payload["step"] == 4
    assert len(warnings) == 1 and newest.name in warnings[0]
    # resume continues from the good one and says so
    more = ch.config(tmp_path, "original", samples=8 * ch.BATCH, checkpoint_every=2)
    summary = environment.train(more, ds, resume=True)
    assert summary["start_step"] == 4 and summary["steps"] == 8
    assert any(newest.name in w for w in summary["warnings"])


def test_a_fresh_run_does_not_mix_with_an_earlier_runs_checkpoints(tmp_path: Path) -> None:
    ds = ch.dataset()
    environment.train(ch.config(tmp_path, "original", samples=20 * ch.BATCH, checkpoint_every=5), ds)
    run_dir = tmp_path / "models" / "default"
    assert [c.step for c in checkpoints.listing(run_dir)] == [10, 15, 20]
    again = ch.config(tmp_path, "original", samples=3 * ch.BATCH, checkpoint_every=1, seed=9)
    with pytest.raises(OutputExistsError, match="--resume"):
        environment.train(again, ds)
    assert [c.step for c in checkpoints.listing(run_dir)] == [10, 15, 20], "a refused start deletes nothing"
    environment.train(again, ds, force=True)
    steps = [c.step for c in checkpoints.listing(run_dir)]
    assert max(steps) == 3, f"checkpoints of the earlier run are still there: {steps}"


class _Evil:
    """Pickles to ``os.system(command)``: a naive torch.load / pickle.load would run it."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


def test_a_malicious_checkpoint_is_refused_without_running_code(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    run_dir = tmp_path / "models" / "default"
    run_dir.mkdir(parents=True)
    pt = run_dir / "ckpt-00000009.pt"
    torch.save({"format_version": checkpoints.FORMAT_VERSION, "step": 9, "actor": _Evil(f"touch {marker}")}, pt)
    # metadata with a matching checksum, so only the loader itself stands in the way
    data = pt.read_bytes()
    (run_dir / "ckpt-00000009.json").write_text(json.dumps({
        "file": pt.name, "size": len(data), "sha256": hashlib.sha256(data).hexdigest(), "step": 9, "time": 0.0,
        "metrics": {}, "format_version": checkpoints.FORMAT_VERSION}))
    checkpoints.set_marker(run_dir, "latest", pt)
    checkpoints.verify(pt)  # the checksum is fine
    with pytest.raises(CheckpointError) as exc:
        checkpoints.load(pt)
    assert pt.name in str(exc.value) and len(str(exc.value).splitlines()) == 1
    with pytest.raises(CheckpointError):
        checkpoints.load(pt, check=False)
    warnings: list[str] = []
    assert checkpoints.load_latest(run_dir, warnings) is None
    assert warnings
    # through the engine, as 'recommend --checkpoint' does
    project = ch.write_project(tmp_path / "proj")
    with pytest.raises(CheckpointError):
        engine.recommend(project, user="1", checkpoint=pt)
    assert not marker.exists(), "loading ran the embedded command"
    # positive control: the file really is hostile (a naive load runs the command)
    torch.load(pt, weights_only=False)
    assert marker.exists()


def test_legacy_model_paths_are_written_and_read_by_run_legacy(tmp_path: Path) -> None:
    project = ch.write_project(tmp_path / "proj")
    legacy = {"paths.model_agent_path": "legacy/agent.pt", "paths.model_critic_path": "legacy/critic.pt",
              "train.samples": 4 * ch.BATCH}
    out = engine.run_legacy(project, legacy)
    assert out["mode"] == "train" and out["status"] == "finished"
    agent_file, critic_file = tmp_path / "proj/legacy/agent.pt", tmp_path / "proj/legacy/critic.pt"
    assert agent_file.exists() and critic_file.exists()
    a = torch.load(agent_file, weights_only=True)
    final = _final(tmp_path / "proj/models/default")
    assert ch.state_equal(a["state_dict"], final["actor"])
    assert ch.state_equal(torch.load(critic_file, weights_only=True)["state_dict"], final["critic"])

    infer = engine.run_legacy(project, {**legacy, "train.enabled": False}, k=4, users=6)
    assert infer["mode"] == "inference" and infer["model"] == "legacy/agent.pt"
    recs = infer["recommendations"]
    assert len(recs) == 6 and all(len(v) == 4 for v in recs.values())
    ds = build_dataset(*ch.frames(), Config(), source="x")
    for user, items in recs.items():
        played = set(ds.catalogue.ids[ds.histories.of(int(ds.histories.user_index([user])[0]))])
        assert not played & set(items)
    # the legacy files alone suffice: without the run folder the same recommendations come back
    import shutil

    shutil.rmtree(tmp_path / "proj/models")
    again = engine.run_legacy(project, {**legacy, "train.enabled": False}, k=4, users=6)
    assert again["recommendations"] == recs


# ---------------------------------------------------------------- the Environment


def test_environment_follows_the_gymnasium_contract(tmp_path: Path) -> None:
    ds = ch.dataset()
    cfg = ch.config(tmp_path, "original")
    env = Environment(cfg, ds)
    out = env.reset(seed=1)
    assert isinstance(out, tuple) and len(out) == 2
    obs, info = out
    assert isinstance(obs, dict) and isinstance(info, dict)
    assert obs["history"].shape == (cfg.model.window,)
    user = int(obs["user"])
    assert info["user_id"] == str(ds.histories.user_ids[user])
    assert env.reset(seed=1)[0]["user"] == user  # reset(seed) is reproducible
    h = ds.histories
    rng = np.random.default_rng(0)
    steps, truncated = 0, False
    while not truncated:
        action = rng.random(3).astype(np.float32)
        result = env.step(action)
        assert isinstance(result, tuple) and len(result) == 5
        obs, reward, terminated, truncated, info = result
        assert type(reward) is float and np.isfinite(reward)
        assert type(terminated) is bool and type(truncated) is bool
        assert isinstance(info, dict) and 0 <= info["produced"] < len(ds.catalogue)
        assert info["target"] == int(h.items[h.offsets[user] + steps + 1])
        valid = obs["history"][obs["history"] != PAD]
        assert len(valid) == obs["length"]
        steps += 1
        assert steps <= h.train_len[user]
    assert steps == h.train_len[user] - 1  # one step per training target after the first event
    obs, _ = env.reset(options={"user": 3})
    assert int(obs["user"]) == 3 and obs["length"] == 1


def test_run_sim_infer_recommends_unplayed_items(tmp_path: Path) -> None:
    ds = ch.dataset()
    env = Environment(ch.config(tmp_path, "original"), ds)
    out = env.run_sim("infer", users=np.arange(5), k=3)
    assert out["items"].shape == (5, 3)
    for u, row in enumerate(out["items"]):
        assert not np.isin(row, ds.histories.of(u)).any()
    with pytest.raises(ValueError):
        env.run_sim("dance")


def test_resolve_without_a_checkpoint_hints_at_train(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError) as exc:
        checkpoints.resolve(tmp_path / "models", None, None)
    assert "whatnext train" in str(exc.value)


def test_early_stopping_stops_after_patience_checkpoints_without_improvement(tmp_path: Path) -> None:
    ds = ch.dataset()
    cfg = ch.config(tmp_path, "hybrid", samples=20 * ch.BATCH, checkpoint_every=2, patience=2)
    scores = iter([0.5, 0.4, 0.3, 0.2, 0.1] + [0.0] * 20)  # the best is the first checkpoint

    def evaluator(agent: object) -> dict[str, float]:
        return {"eval/ndcg@10": next(scores)}

    summary = environment.train(cfg, ds, evaluator=evaluator)
    assert summary["status"] == "early_stopped"
    assert summary["steps"] == 6, "checkpoints at steps 2 (best), 4 and 6 (two without improvement)"
    run_dir = cfg.run_dir
    assert checkpoints.marker(run_dir, "best").name == "ckpt-00000002.pt"
    # without patience the same run goes to the end
    cfg2 = ch.config(tmp_path, "hybrid", samples=20 * ch.BATCH, checkpoint_every=2, run="full")
    scores = iter([0.5, 0.4, 0.3, 0.2, 0.1] + [0.0] * 20)
    assert environment.train(cfg2, ds, evaluator=evaluator)["steps"] == 20


def test_checkpoint_every_auto_is_one_epoch_at_most_500_steps() -> None:
    """Validation after every epoch on small data (the agent peaks mid-run), 500 steps apart on large data."""
    from whatnext.config import Config, load_config
    from whatnext.errors import ConfigError
    from whatnext.rl.environment import checkpoint_interval

    cfg = Config()
    assert cfg.train.checkpoint_every == "auto"
    assert [checkpoint_interval(cfg, n) for n in (1, 76, 500, 2000)] == [1, 76, 500, 500]
    cfg = load_config(None, {"train.checkpoint_every": 7})
    assert checkpoint_interval(cfg, 76) == 7
    with pytest.raises(ConfigError, match="checkpoint_every"):
        load_config(None, {"train.checkpoint_every": "epoch"})
