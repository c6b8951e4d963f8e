"""Off-policy RL on logged rewards (sqn, sac, reinforce): the top-K correction and capped weights against hand
values, the discounted returns, what each loss sends where, learning from the rewards, and the three algorithms
trained, checkpointed, resumed exactly and evaluated through the CLI on a tiny project with a reward column."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import core_helpers as ch
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from whatnext import checkpoints
from whatnext.cli import app
from whatnext.config import Config
from whatnext.data import build_dataset
from whatnext.errors import CheckpointError
from whatnext.rl import environment, offpolicy
from whatnext.rl.agent import Agent
from whatnext.rl.algorithms import positions_for
from whatnext.rl.batch import make_batch
from whatnext.rl.state import State

ALGORITHMS = offpolicy.OFFPOLICY


# ---------------------------------------------------------------- pure parts against hand values


def test_topk_correction_against_hand_values() -> None:
    pi = torch.tensor([0.1, 0.5, 0.0, 1.0], dtype=torch.float64)
    # lambda_K = K (1 - pi)^(K-1): K = 3 -> 3 * 0.81, 3 * 0.25, 3, 0
    assert torch.allclose(offpolicy.topk_correction(pi, 3), torch.tensor([2.43, 0.75, 3.0, 0.0], dtype=torch.float64))
    assert torch.equal(offpolicy.topk_correction(pi, 1), torch.ones(4, dtype=torch.float64))  # K = 1: REINFORCE
    assert torch.equal(offpolicy.topk_correction(pi, 0), torch.ones(4, dtype=torch.float64))  # off


def test_capped_importance_weights_against_hand_values() -> None:
    pi = torch.tensor([0.2, 0.5, 0.03, 0.4])
    beta = torch.tensor([0.1, 0.01, 0.3, 0.0])
    # pi / beta = 2, 50 -> capped at 10, 0.1, beta 0 floored -> capped
    assert torch.allclose(offpolicy.capped_weights(pi, beta, 10.0), torch.tensor([2.0, 10.0, 0.1, 10.0]))


def test_discounted_returns_stay_inside_each_window() -> None:
    r = np.array([[1.0, -1.0, 2.0, 0.0], [0.5, 0.0, 0.0, 0.0]], dtype=np.float32)
    got = offpolicy.returns(r, 0.5)
    # row 0: R3 = 0, R2 = 2, R1 = -1 + 0.5 * 2 = 0, R0 = 1 + 0.5 * 0 = 1; row 1 only its first step
    np.testing.assert_allclose(got, [[1.0, 0.0, 2.0, 0.0], [0.5, 0.0, 0.0, 0.0]])
    np.testing.assert_allclose(offpolicy.returns(r, 0.0), r)


# ---------------------------------------------------------------- a tiny dataset with a reward column


def _rewarded_frames(n_users: int = 30, n_events: int = 15, n_items: int = 40):
    """ch.frames plus a 'played' column: 'full' for even item ids, 'skip' for odd ones."""
    events, items = ch.frames(n_users=n_users, n_events=n_events, n_items=n_items)
    events["played"] = np.where(events["item_id"] % 2 == 0, "full", "skip")
    return events, items


def _rewarded_dataset():
    events, items = _rewarded_frames()
    cfg = Config()
    cfg.data.reward_col, cfg.data.reward_map = "played", {"full": 1.0, "skip": -1.0}
    return build_dataset(events, items, cfg, source="tiny")


def _agent(cfg: Config, ds, seed: int = 0) -> Agent:
    torch.manual_seed(seed)
    a = Agent(State(ds), cfg)
    a.wake()
    return a


def _batch(ds, cfg: Config, seed: int = 0):
    pos = positions_for(ds, cfg.train.algorithm, cfg.model.window)
    return make_batch(ds, pos[np.random.default_rng(seed).permutation(len(pos))[: ch.BATCH]], cfg.model.window)


def test_the_behaviour_head_does_not_train_the_encoder(tmp_path: Path) -> None:
    """reinforce with zero returns: the policy gradient is 0, so the actor's gradient must be the cross-entropy's
    alone (the paper blocks the behaviour head's gradient into the encoder) while the behaviour head gets one."""
    from whatnext.rl.algorithms import next_item_loss

    ds = _rewarded_dataset()
    cfg = ch.config(tmp_path, "reinforce")
    agent = _agent(cfg, ds)
    batch = _batch(ds, cfg)
    batch.rewards[:] = 0.0
    hidden = agent.actor.hidden(torch.from_numpy(batch.inputs))
    ce, cands = next_item_loss(agent, batch, agent.actor._out(hidden), np.random.default_rng(0), reduction="none")
    loss, m = offpolicy.reinforce_loss(agent, batch, offpolicy.prepare(agent, batch, hidden, cands), ce)
    assert m["train/pg_loss"] == 0.0 and m["train/beta_loss"] > 0
    params = [p for p in agent.actor.parameters() if p.requires_grad]
    full = torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True)
    supervised = torch.autograd.grad(ce.mean(), params, retain_graph=True, allow_unused=True)
    for a, b in zip(full, supervised, strict=True):
        assert (a is None and b is None) or torch.allclose(a, b, atol=1e-7)
    beta = torch.autograd.grad(loss, [agent.offpolicy.heads.beta.weight])[0]
    assert beta.abs().sum() > 0
    # positive control: with the logged rewards the policy gradient reaches the actor
    batch = _batch(ds, cfg)
    hidden = agent.actor.hidden(torch.from_numpy(batch.inputs))
    ce, cands = next_item_loss(agent, batch, agent.actor._out(hidden), np.random.default_rng(0), reduction="none")
    loss, m = offpolicy.reinforce_loss(agent, batch, offpolicy.prepare(agent, batch, hidden, cands), ce)
    assert m["train/pg_loss"] != 0.0
    full = torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True)
    supervised = torch.autograd.grad(ce.mean(), params, allow_unused=True)
    assert any(a is not None and not torch.allclose(a, b, atol=1e-7) for a, b in zip(full, supervised, strict=True))


@pytest.mark.parametrize("algorithm", ["sqn", "sac"])
def test_the_q_head_learns_the_logged_rewards(algorithm: str, tmp_path: Path) -> None:
    """Even items are completed (+1), odd ones skipped (-1): after training, Q of the played item tracks its reward."""
    ds = _rewarded_dataset()
    cfg = ch.config(tmp_path, algorithm, gamma=0.0, warmup=20)
    cfg.train.actor_lr = 1e-2
    agent = _agent(cfg, ds)
    for step in range(120):
        agent.propagate(_batch(ds, cfg, step), np.random.default_rng(step), torch.Generator().manual_seed(step))
    batch = _batch(ds, cfg, 999)
    with torch.no_grad():
        s = offpolicy.prepare(agent, batch, agent.actor.hidden(torch.from_numpy(batch.inputs)), None)
        q = agent.offpolicy.heads.q_values(s.h, s.e, None).gather(1, s.pos[:, None])[:, 0]
    good, bad = q[s.rewards > 0], q[s.rewards < 0]
    assert len(good) and len(bad)
    assert good.mean() > 0.3 and bad.mean() < -0.3, (good.mean(), bad.mean())
    assert int(agent.offpolicy.steps) == 120


def test_sac_weights_the_cross_entropy_only_after_its_warmup(tmp_path: Path) -> None:
    ds = _rewarded_dataset()
    cfg = ch.config(tmp_path, "sac", warmup=2)
    agent = _agent(cfg, ds)
    seen = [("train/advantage" in agent.propagate(_batch(ds, cfg, i), np.random.default_rng(i),
                                                  torch.Generator().manual_seed(i))) for i in range(4)]
    assert seen == [False, False, True, True]


def test_the_target_network_follows_the_online_one_softly(tmp_path: Path) -> None:
    ds = _rewarded_dataset()
    cfg = ch.config(tmp_path, "sqn", target_tau=0.25)
    agent = _agent(cfg, ds)
    before = agent.offpolicy.target_actor.head.weight.detach().clone()
    agent.propagate(_batch(ds, cfg), np.random.default_rng(0), torch.Generator().manual_seed(0))
    online = agent.actor.head.weight.detach()
    assert torch.allclose(agent.offpolicy.target_actor.head.weight, 0.75 * before + 0.25 * online)
    assert not torch.equal(online, before)


def test_resuming_another_algorithms_checkpoint_as_sqn_is_refused(tmp_path: Path) -> None:
    ds = _rewarded_dataset()
    cfg = ch.config(tmp_path, "hybrid", samples=2 * ch.BATCH)
    environment.train(cfg, ds)
    cfg.train.algorithm = "sqn"
    with pytest.raises(CheckpointError, match="no off-policy heads .*'hybrid'.*--force"):
        environment.train(cfg, ds, resume=True)


def test_inference_reads_only_the_q_head_and_hybrid_checkpoints_carry_none(tmp_path: Path) -> None:
    ds = _rewarded_dataset()
    cfg = ch.config(tmp_path, "sqn", samples=3 * ch.BATCH)
    environment.train(cfg, ds)
    _, payload = checkpoints.load_latest(cfg.run_dir)
    assert set(payload["offpolicy"]) >= {"heads.q.weight", "target_actor.head.weight", "target_heads.q_bias", "steps"}
    assert "offpolicy_opt" in payload
    loaded = environment.agent_from_payload(ch.config(tmp_path / "x", "hybrid"), ds, payload)
    assert loaded.offpolicy is None and loaded.q_heads is not None  # no target network; the Q head ranks
    hists = [ds.histories.of(u) for u in range(5)]
    assert loaded.recommend(hists, 3, hists).shape == (5, 3)
    plain = ch.config(tmp_path, "hybrid", samples=ch.BATCH, run="plain")
    environment.train(plain, ds)
    assert "offpolicy" not in checkpoints.load_latest(plain.run_dir)[1]


# ---------------------------------------------------------------- end to end through the CLI


def _project(folder: Path, algorithm: str) -> Path:
    cfg = ch.write_project(folder, algorithm=algorithm, checkpoint_every=3, keep_last=10)
    events, _ = _rewarded_frames()
    events.to_csv(folder / "events.csv", index=False)
    text = cfg.read_text().replace('[data]\n', '[data]\nreward_col = "played"\nreward_map = { full = 1, skip = -1 }\n')
    cfg.write_text(text.replace("[train]\n", "[train]\nwarmup = 4\n"))
    return cfg


def _ok(result: Any) -> None:
    assert result.exit_code == 0, f"exit {result.exit_code}\n{result.stdout}\n{result.stderr}\n{result.exception!r}"


def _final(cfg: Path) -> dict[str, Any]:
    found = checkpoints.load_latest(cfg.parent / "models" / "default")
    assert found is not None
    return found[1]


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_train_resume_exactly_and_evaluate_through_the_cli(algorithm: str, tmp_path: Path) -> None:
    runner = CliRunner()
    straight = _project(tmp_path / "straight", algorithm)
    _ok(runner.invoke(app, ["train", "--config", str(straight), "--epochs", "2", "--quiet"]))
    split = _project(tmp_path / "split", algorithm)
    _ok(runner.invoke(app, ["train", "--config", str(split), "--epochs", "1", "--quiet"]))
    first = _final(split)
    _ok(runner.invoke(app, ["train", "--config", str(split), "--epochs", "2", "--resume", "--quiet"]))
    a, b = _final(straight), _final(split)
    assert a["step"] == b["step"] > first["step"] > 4  # past sac's warm-up
    for part in ("actor", "critic", "offpolicy"):
        assert ch.state_equal(a[part], b[part]), part
    assert int(b["offpolicy"]["steps"]) == b["step"]
    for key, value in a["offpolicy_opt"]["state"].items():  # the heads' Adam moments too
        assert ch.state_equal(value, b["offpolicy_opt"]["state"][key])
    # the logged rewards reached training (the per-step metrics log them)
    lines = [json.loads(x) for x in (split.parent / "models" / "default" / "metrics.jsonl").read_text().splitlines()]
    logged = [x["train/logged_reward"] for x in lines if "train/logged_reward" in x]
    assert logged and min(logged) < 1.0 and all(-1.0 <= v <= 1.0 for v in logged)

    result = runner.invoke(app, ["eval", "--config", str(split), "--json"])
    _ok(result)
    row = json.loads(result.stdout)["rows"][0]
    assert row["eval/model"] == "agent" and row["eval/users"] == 30 and 0 <= row["eval/ndcg@10"] <= 1
    assert Path(json.loads(result.stdout)["checkpoint"]).parent == split.parent / "models" / "default"  # the best one
    result = runner.invoke(app, ["recommend", "--config", str(split), "--user", "3", "-k", "4", "--json"])
    _ok(result)
    recs = json.loads(result.stdout)["recommendations"]
    assert len(recs) == 4 and len({r["item_id"] for r in recs}) == 4


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_the_sampled_softmax_path_trains_the_heads_on_its_candidates(algorithm: str, tmp_path: Path) -> None:
    """With fewer shared negatives than items the heads score only the step's candidates (targets + negatives)."""
    ds = _rewarded_dataset()
    cfg = ch.config(tmp_path, algorithm, negatives=10, warmup=1)
    cfg.model.item_embedding, cfg.model.embedding_dim = "learned", 4
    agent = _agent(cfg, ds)
    assert agent.actor.out_items.learned.sparse  # lazy updates of the touched rows only
    heads0 = {k: v.clone() for k, v in agent.offpolicy.heads.state_dict().items()}
    for i in range(3):
        m = agent.propagate(_batch(ds, cfg, i), np.random.default_rng(i), torch.Generator().manual_seed(i))
        assert all(np.isfinite(v) for v in m.values()), m
    assert not ch.state_equal(heads0, agent.offpolicy.heads.state_dict())


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_the_transformer_encoder_carries_the_heads_too(algorithm: str, tmp_path: Path) -> None:
    ds = _rewarded_dataset()
    cfg = ch.config(tmp_path, algorithm, samples=4 * ch.BATCH, checkpoint_every=2, warmup=1)
    cfg.model.name, cfg.model.heads = "transformer", 2
    environment.train(cfg, ds)
    _, payload = checkpoints.load_latest(cfg.run_dir)
    assert any(k.startswith("target_actor.blocks.") for k in payload["offpolicy"])
    assert int(payload["offpolicy"]["steps"]) == 4
    cfg.train.samples = 6 * ch.BATCH
    assert environment.train(cfg, ds, resume=True)["steps"] == 6
