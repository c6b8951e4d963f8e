"""The actor and critic networks: shapes, padding, item tables, the registry, rebuilding from model_args."""

from __future__ import annotations

import io
import json

import core_helpers as ch
import numpy as np
import pytest
import torch

from whatnext import config as config_mod
from whatnext import models
from whatnext.config import Config
from whatnext.config.legacy import parse_setup
from whatnext.models import AgentModel, CriticModel, ItemTable
from whatnext.rl.agent import model_args, pad_histories

N_ITEMS, FEAT, LEARNED, HIDDEN, W = 40, 3, 4, 8, 5


def _models(feature_dim: int = FEAT, learned_dim: int = 0, seed: int = 0, **kw):
    torch.manual_seed(seed)
    args = dict(n_items=N_ITEMS, feature_dim=feature_dim, learned_dim=learned_dim, hidden_size=HIDDEN, **kw)
    actor, critic = AgentModel(**args), CriticModel(**args)
    if feature_dim:
        feats = torch.from_numpy(np.random.default_rng(seed).random((N_ITEMS, feature_dim)).astype(np.float32))
        actor.items.set_features(feats)
        critic.items.set_features(feats)
    actor.eval()
    critic.eval()
    return actor, critic


def _histories(rng: np.random.Generator, b: int = 6) -> list[np.ndarray]:
    return [rng.integers(0, N_ITEMS, size=int(rng.integers(1, W + 1))) for _ in range(b)]


# ---------------------------------------------------------------- shapes


@pytest.mark.parametrize(("feature_dim", "learned_dim"), [(FEAT, 0), (0, LEARNED), (FEAT, LEARNED)])
def test_output_shapes(feature_dim: int, learned_dim: int) -> None:
    actor, critic = _models(feature_dim, learned_dim)
    dim = feature_dim + learned_dim
    inputs, lengths = pad_histories(_histories(np.random.default_rng(1), 7), W)
    hist, lens = torch.from_numpy(inputs), torch.from_numpy(lengths)
    with torch.no_grad():
        proto = actor(hist, lens)
        seq = actor.sequence(hist)
        cand = torch.rand(7, dim)
        q = critic(hist, lens, cand)
        slate = critic.score(critic.encode(hist, lens), torch.rand(7, 4, dim))
        logits = actor.logits(proto)
    assert proto.shape == (7, dim)
    assert seq.shape == (7, W, dim)
    assert q.shape == (7,)
    assert slate.shape == (7, 4)
    assert logits.shape == (7, N_ITEMS)
    assert critic.encode(hist, lens).shape == (7, HIDDEN)
    for t in (proto, seq, q, slate, logits):
        assert torch.isfinite(t).all()


def test_feature_only_actor_stays_inside_the_unit_box() -> None:
    actor, _ = _models(FEAT, 0)
    inputs, lengths = pad_histories(_histories(np.random.default_rng(2), 20), W)
    with torch.no_grad():
        proto = actor(torch.from_numpy(inputs), torch.from_numpy(lengths))
    assert (proto >= 0).all() and (proto <= 1).all()


def test_sequence_matches_forward_at_the_last_real_item() -> None:
    actor, _ = _models(FEAT, LEARNED)
    inputs, lengths = pad_histories(_histories(np.random.default_rng(3), 8), W)
    with torch.no_grad():
        seq = actor.sequence(torch.from_numpy(inputs))
        proto = actor(torch.from_numpy(inputs), torch.from_numpy(lengths))
    last = seq[torch.arange(8), torch.from_numpy(lengths) - 1]
    torch.testing.assert_close(last, proto, rtol=0, atol=1e-6)


def test_slate_scores_equal_single_candidate_scores() -> None:
    _, critic = _models(FEAT, 0)
    inputs, lengths = pad_histories(_histories(np.random.default_rng(4), 5), W)
    hist, lens = torch.from_numpy(inputs), torch.from_numpy(lengths)
    cands = torch.rand(5, 3, FEAT)
    with torch.no_grad():
        slate = critic.score(critic.encode(hist, lens), cands)
        one_by_one = torch.stack([critic(hist, lens, cands[:, j]) for j in range(3)], dim=1)
    torch.testing.assert_close(slate, one_by_one, rtol=0, atol=1e-6)


# ---------------------------------------------------------------- padding


@pytest.mark.parametrize(("feature_dim", "learned_dim"), [(FEAT, 0), (0, LEARNED), (FEAT, LEARNED)])
def test_right_padding_does_not_change_the_output(feature_dim: int, learned_dim: int) -> None:
    actor, critic = _models(feature_dim, learned_dim, num_layers=2)
    rng = np.random.default_rng(5)
    hists = _histories(rng, 10)
    hists[0] = hists[0][:1]  # a length-1 history in the batch
    inputs, lengths = pad_histories(hists, W)
    assert (inputs == -1).any(), "the batch should contain padding"
    cand = torch.rand(len(hists), feature_dim + learned_dim)
    with torch.no_grad():
        proto = actor(torch.from_numpy(inputs), torch.from_numpy(lengths))
        q = critic(torch.from_numpy(inputs), torch.from_numpy(lengths), cand)
        for i, h in enumerate(hists):
            alone = torch.from_numpy(h[None, :].astype(np.int64))
            n = torch.tensor([len(h)])
            torch.testing.assert_close(actor(alone, n)[0], proto[i], rtol=0, atol=1e-6)
            torch.testing.assert_close(critic(alone, n, cand[i : i + 1])[0], q[i], rtol=0, atol=1e-6)


def test_what_follows_the_last_real_item_is_ignored() -> None:
    """Padding, or any other items after the length, never reaches the output."""
    actor, critic = _models(FEAT, LEARNED)
    base = torch.tensor([[3, 7, 9, -1, -1]])
    other = torch.tensor([[3, 7, 9, 12, 30]])
    n = torch.tensor([3])
    cand = torch.rand(1, FEAT + LEARNED)
    with torch.no_grad():
        assert torch.equal(actor(base, n), actor(other, n))
        assert torch.equal(critic(base, n, cand), critic(other, n, cand))
        # and the length does matter
        assert not torch.equal(actor(other, n), actor(other, torch.tensor([5])))


# ---------------------------------------------------------------- item table


def test_item_table_features_only() -> None:
    t = ItemTable(N_ITEMS, feature_dim=FEAT)
    feats = torch.rand(N_ITEMS, FEAT)
    t.set_features(feats)
    assert t.dim == FEAT and t.learned is None
    assert torch.equal(t.all(), feats)
    assert torch.equal(t(torch.tensor([[2, -1]])), torch.stack([feats[2], torch.zeros(FEAT)])[None])
    assert list(t.parameters()) == []  # features are a buffer, not learned
    assert "features" in t.state_dict()


def test_item_table_learned_only() -> None:
    torch.manual_seed(0)
    t = ItemTable(N_ITEMS, learned_dim=LEARNED)
    assert t.dim == LEARNED and t.feature_dim == 0
    v = t(torch.tensor([0, 5, -1]))
    assert v.shape == (3, LEARNED)
    assert torch.equal(v[2], torch.zeros(LEARNED))
    assert v[0].abs().sum() > 0 and not torch.equal(v[0], v[1])
    assert t.all().shape == (N_ITEMS, LEARNED)
    # padding stays zero after a gradient step
    opt = torch.optim.SGD(t.parameters(), lr=1.0)
    t(torch.tensor([1, -1, 4])).sum().backward()
    opt.step()
    assert torch.equal(t(torch.tensor([-1]))[0], torch.zeros(LEARNED))


def test_item_table_both_concatenates_features_then_learned() -> None:
    torch.manual_seed(0)
    t = ItemTable(N_ITEMS, feature_dim=FEAT, learned_dim=LEARNED)
    feats = torch.rand(N_ITEMS, FEAT)
    t.set_features(feats)
    v = t(torch.tensor([7, -1]))
    assert t.dim == FEAT + LEARNED and v.shape == (2, FEAT + LEARNED)
    assert torch.equal(v[0, :FEAT], feats[7])
    assert torch.equal(v[0, FEAT:], t.learned.weight[7].detach())
    assert torch.equal(v[1], torch.zeros(FEAT + LEARNED))


def test_item_table_needs_some_dimension() -> None:
    with pytest.raises(ValueError):
        ItemTable(N_ITEMS, 0, 0)


def test_model_args_choose_the_item_table() -> None:
    ds = ch.dataset()
    cfg = Config()
    cfg.model.embedding_dim = 6
    for mode, (f, l) in {"auto": (3, 6) if cfg.train.algorithm == "hybrid" else (3, 0), "features": (3, 0), "learned": (0, 6), "both": (3, 6)}.items():
        cfg.model.item_embedding = mode
        a = model_args(cfg, ds)
        assert (a["feature_dim"], a["learned_dim"]) == (f, l), mode
        assert a["n_items"] == len(ds.catalogue)


# ---------------------------------------------------------------- registry


def test_registry_has_lstm_and_agrees_with_config() -> None:
    assert "lstm" in models.MODELS
    assert models.MODELS["lstm"] == (AgentModel, CriticModel)
    assert set(models.MODELS) == set(config_mod.MODEL_NAMES)


def test_legacy_model_key_maps_to_the_registry(tmp_path) -> None:
    cfg = parse_setup("train, yes,\nmodel, LSTM\n", tmp_path / "setup.txt")
    assert cfg.model.name == "lstm" and cfg.model.name in models.MODELS


def test_build_returns_the_registered_classes() -> None:
    actor, critic = models.build("lstm", {"n_items": 5, "feature_dim": 2, "learned_dim": 0})
    assert isinstance(actor, AgentModel) and isinstance(critic, CriticModel)


# ---------------------------------------------------------------- rebuild from primitives


@pytest.mark.parametrize("mode", ["features", "learned", "both"])
def test_rebuild_from_primitive_model_args_gives_identical_outputs(mode: str) -> None:
    ds = ch.dataset()
    cfg = Config()
    cfg.model.item_embedding, cfg.model.embedding_dim, cfg.model.hidden_size = mode, 4, HIDDEN
    cfg.model.num_layers, cfg.model.dropout = 2, 0.25
    args = model_args(cfg, ds)
    assert all(type(v) in (int, float, str) for v in args.values()), args
    torch.manual_seed(1)
    actor, critic = models.build("lstm", args)
    if args["feature_dim"]:
        actor.items.set_features(torch.from_numpy(ds.catalogue.features))
        critic.items.set_features(torch.from_numpy(ds.catalogue.features))
    buf = io.BytesIO()
    torch.save({"model_args": args, "actor": actor.state_dict(), "critic": critic.state_dict()}, buf)
    buf.seek(0)
    saved = torch.load(buf, weights_only=True)
    rebuilt_args = json.loads(json.dumps(saved["model_args"]))  # survives a plain-JSON round trip
    torch.manual_seed(999)  # different initial weights: only load_state_dict can make them equal
    actor2, critic2 = models.build("lstm", rebuilt_args)
    actor2.load_state_dict(saved["actor"])
    critic2.load_state_dict(saved["critic"])
    for m in (actor, critic, actor2, critic2):
        m.eval()
    inputs, lengths = pad_histories(_histories(np.random.default_rng(6), 9), W)
    hist, lens = torch.from_numpy(inputs), torch.from_numpy(lengths)
    cand = torch.rand(9, actor.items.dim)
    with torch.no_grad():
        assert torch.equal(actor(hist, lens), actor2(hist, lens))
        assert torch.equal(critic(hist, lens, cand), critic2(hist, lens, cand))
        assert torch.equal(actor.items.all(), actor2.items.all())
