"""The self-attention actor (``model.name = "transformer"``): causal, blind to padding, rebuilt
exactly from a checkpoint, and trained and evaluated through the model registry like the LSTM.
Registry-wide tests run over every name in ``models.MODELS``. Every run here is tiny."""

from __future__ import annotations

from pathlib import Path

import core_helpers as ch
import numpy as np
import pytest
import torch

from whatnext import checkpoints, engine, models
from whatnext.config import Config
from whatnext.config.schema import MODEL_NAMES
from whatnext.errors import CheckpointError, ConfigError
from whatnext.evaluation.protocol import evaluate
from whatnext.rl import environment
from whatnext.rl.agent import Agent, model_args
from whatnext.rl.algorithms import positions_for
from whatnext.rl.batch import make_batch
from whatnext.rl.environment import agent_from_payload, checkpoint_payload
from whatnext.rl.payload import check_model_args
from whatnext.rl.state import State

ARGS = {"n_items": 30, "feature_dim": 3, "learned_dim": 8, "hidden_size": 16, "num_layers": 2, "dropout": 0.1,
        "heads": 2, "window": 10}


def _actor(**kw) -> torch.nn.Module:
    torch.manual_seed(0)
    actor, _ = models.build("transformer", {**ARGS, **kw})
    actor.items.set_features(torch.rand(ARGS["n_items"], ARGS["feature_dim"]))
    return actor.eval()


def test_registry_lists_the_transformer_and_agrees_with_config() -> None:
    assert set(models.MODELS) == set(MODEL_NAMES) == {"lstm", "transformer"}
    actor, critic = models.build("transformer", ARGS)
    assert isinstance(actor, models.TransformerAgent) and isinstance(critic, models.CriticModel)


def test_causal_a_later_item_never_changes_earlier_outputs() -> None:
    actor = _actor()
    hist = torch.randint(0, ARGS["n_items"], (4, 10))
    changed = hist.clone()
    changed[:, 6] = (changed[:, 6] + 7) % ARGS["n_items"]
    with torch.no_grad():
        a, b = actor.sequence(hist), actor.sequence(changed)
    assert torch.equal(a[:, :6], b[:, :6])
    assert not torch.allclose(a[:, 6:], b[:, 6:])  # the change is seen from its own position on


def test_padding_does_not_leak() -> None:
    actor = _actor()
    short = torch.tensor([[3, 9, 4]])
    padded = torch.tensor([[3, 9, 4] + [-1] * 7, [5, 6, 7, 8, 9, 10, 11, 12, 13, 14]])
    with torch.no_grad():
        alone = actor(short, torch.tensor([3]))
        batched = actor(padded, torch.tensor([3, 10]))
        seq = actor.sequence(padded)
    assert torch.allclose(alone[0], batched[0], atol=1e-6)  # however far a history is padded, and beside whom
    assert torch.allclose(seq[0, 2], batched[0], atol=1e-6)  # forward = the sequence's last real position
    assert torch.isfinite(seq).all()
    with torch.no_grad():  # an empty history (a single padding step) gives a finite proto-action
        assert torch.isfinite(actor(torch.tensor([[-1]]), torch.tensor([1]))).all()


def test_inference_reads_a_history_as_training_does() -> None:
    """Validation and test rank from ``forward`` in eval mode under ``torch.inference_mode`` (where PyTorch may
    take its fused encoder fast path); training reads the same windows through ``sequence`` in train mode. With
    dropout off, both give the same proto-actions at every real position, whatever the padding: the valid/test
    gap of issue #15 is not a difference between the two paths."""
    actor = _actor(dropout=0.0)
    hist = torch.randint(0, ARGS["n_items"], (3, 10))
    hist[0, 4:] = -1
    hist[1, 7:] = -1
    lengths = torch.tensor([4, 7, 10])
    actor.train()
    with torch.no_grad():
        trained = actor.sequence(hist)
    actor.eval()
    with torch.inference_mode():
        served = actor(hist, lengths)
        served_seq = actor.sequence(hist)
    last = trained[torch.arange(3), lengths - 1]
    assert torch.allclose(served, last, atol=1e-5)
    for b, n in enumerate(lengths.tolist()):
        assert torch.allclose(served_seq[b, :n], trained[b, :n], atol=1e-5)


def test_heads_must_divide_the_width() -> None:
    with pytest.raises(ValueError, match="multiple of heads"):
        models.build("transformer", {**ARGS, "heads": 3})
    cfg, ds = Config(), ch.dataset()
    cfg.model.name, cfg.model.hidden_size, cfg.model.heads = "transformer", 16, 3
    with pytest.raises(ConfigError, match="model.heads"):
        model_args(cfg, ds)


def test_model_args_carry_heads_and_window_only_for_the_transformer() -> None:
    cfg, ds = Config(), ch.dataset()
    assert "heads" not in model_args(cfg, ds)
    cfg.model.name, cfg.model.heads, cfg.model.window = "transformer", 4, 12
    a = model_args(cfg, ds)
    assert (a["heads"], a["window"]) == (4, 12)
    payload = {"model_name": "transformer", "model_args": a}
    assert check_model_args(payload, len(ds.catalogue), len(ds.catalogue.feature_names)) == a
    for bad in ({k: v for k, v in a.items() if k != "heads"}, {**a, "heads": 0}, {**a, "heads": 3},
                {**a, "window": 10**9}):
        with pytest.raises(CheckpointError):
            check_model_args({"model_name": "transformer", "model_args": bad}, len(ds.catalogue), len(ds.catalogue.feature_names))
    with pytest.raises(CheckpointError, match="unknown keys heads"):  # an LSTM checkpoint takes no heads
        check_model_args({"model_name": "lstm", "model_args": a}, len(ds.catalogue), len(ds.catalogue.feature_names))


@pytest.mark.parametrize("name", list(models.MODELS))
@pytest.mark.parametrize("mode", ["features", "learned"])
def test_save_load_gives_identical_recommendations(name: str, mode: str, tmp_path: Path) -> None:
    ds = ch.dataset()
    cfg = ch.config(tmp_path, "hybrid", model={"name": name, "item_embedding": mode, "embedding_dim": 4, "heads": 2,
                                                "num_layers": 2, "dropout": 0.1, "rerank": 8})
    torch.manual_seed(0)
    agent = Agent(State(ds), cfg)
    agent.wake()
    pos = positions_for(ds, "hybrid", cfg.model.window)
    for i in range(3):
        batch = make_batch(ds, pos[np.random.default_rng(i).permutation(len(pos))[: ch.BATCH]], cfg.model.window)
        agent.propagate(batch, np.random.default_rng(i), torch.Generator().manual_seed(i))
    pt = checkpoints.save(cfg.run_dir, checkpoint_payload(agent, cfg, 3, 0, {"train/x": 1.0}, None))
    agent.ready()
    hists = [ds.histories.of(u) for u in range(len(ds.histories))]
    idx, dist = agent.recommend_with_distances(hists, 5, hists)
    fresh = ch.config(tmp_path / "other", model={"hidden_size": 32, "window": 9, "rerank": 8})  # the checkpoint's must win
    loaded = agent_from_payload(fresh, ds, checkpoints.load(pt))
    assert type(loaded.actor) is models.MODELS[name][0]
    idx2, dist2 = loaded.recommend_with_distances(hists, 5, hists)
    assert np.array_equal(idx, idx2) and np.array_equal(dist, dist2)
    assert ch.state_equal(agent.actor.state_dict(), loaded.actor.state_dict())
    assert ch.state_equal(agent.critic.state_dict(), loaded.critic.state_dict())


@pytest.mark.parametrize("name", list(models.MODELS))
def test_trains_and_evaluates_through_the_registry(name: str, tmp_path: Path) -> None:
    ds = ch.dataset()
    cfg = ch.config(tmp_path, "hybrid", epochs=2, model={"name": name, "heads": 2, "rerank": 8})
    summary = environment.train(cfg, ds, evaluator=engine._validator(cfg, ds))
    assert summary["steps"] == summary["total_steps"] > 0
    agent, _ = engine.load_agent(cfg, ds, cfg.paths.run)
    assert type(agent.actor) is models.MODELS[name][0]
    for seen in (False, True):
        m = evaluate(agent, ds, "test", (5,), include_seen=seen)
        assert 0.0 <= m["eval/ndcg@5"] <= m["eval/hr@5"] <= 1.0
