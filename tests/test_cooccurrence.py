"""Item vectors pre-trained from co-occurrence: hand-counted pairs, no held-out event used,
related items end up close, and the torch RNG of the weights is left alone."""

from __future__ import annotations

from pathlib import Path

import core_helpers as ch
import numpy as np
import pandas as pd
import pytest
import torch

from whatnext.config import Config
from whatnext.data import build_dataset
from whatnext.rl.agent import Agent
from whatnext.rl.cooccurrence import pair_counts, ppmi_vectors
from whatnext.rl.state import State


def _dataset(sequences: list[list[int]], n_items: int):
    users = np.concatenate([[u] * len(s) for u, s in enumerate(sequences)])
    items = np.concatenate(sequences)
    times = np.concatenate([np.arange(len(s)) * 10 for s in sequences])
    events = pd.DataFrame({"user_id": users, "item_id": items, "timestamp": times})
    table = pd.DataFrame({"item_id": np.arange(n_items), "f0": np.linspace(0, 1, n_items)})
    return build_dataset(events, table, Config(), source="hand")


def _as_dict(rows, cols, w, ids) -> dict[tuple[str, str], float]:
    return {(str(ids[r]), str(ids[c])): float(x) for r, c, x in zip(rows, cols, w)}


def test_pairs_are_counted_by_hand_within_the_training_part_only():
    # user 0 trains on 0 1 2 0 (then 8, 9 held out); user 1 trains on 1 2 (then 8, 9 held out)
    ds = _dataset([[0, 1, 2, 0, 8, 9], [1, 2, 8, 9]], 10)
    ids = ds.catalogue.ids
    got = _as_dict(*pair_counts(ds, window=2), ids)
    # user 0, lag 1: (0,1) (1,2) (2,0); lag 2: (0,2) (1,0) at 1/2; user 1, lag 1: (1,2). Symmetric.
    want = {("0", "1"): 1.5, ("1", "2"): 2.0, ("0", "2"): 1.5}
    want.update({(b, a): w for (a, b), w in want.items()})
    assert got == want
    assert not any("8" in pair or "9" in pair for pair in got)  # held-out events never counted


def test_a_planted_held_out_item_gets_no_vector():
    seqs = [[i % 5, (i + 1) % 5, (i + 2) % 5, 90 + i, 95 + (i % 5)] for i in range(5)]
    ds = _dataset(seqs, 100)
    v = ppmi_vectors(ds, 4)
    held = ds.catalogue.index_of([str(90 + i) for i in range(5)] + [str(95 + i) for i in range(5)])
    assert (held >= 0).all() and np.abs(v[held]).sum() == 0
    assert np.abs(v).sum() > 0


def test_items_played_together_end_up_close():
    rng = np.random.default_rng(0)
    # two tastes: items 0-9 and 10-19; every user sticks to one
    seqs = [list(rng.integers(0, 10, 30)) if u % 2 else list(rng.integers(10, 20, 30)) for u in range(40)]
    ds = _dataset(seqs, 20)
    v = ppmi_vectors(ds, 8)
    v = v / np.linalg.norm(v, axis=1, keepdims=True)
    cos = v @ v.T
    g = ds.catalogue.ids.astype(int) < 10  # the taste of each catalogue row
    same = cos[g[:, None] == g[None, :]].mean()
    other = cos[g[:, None] != g[None, :]].mean()
    assert same > other + 0.5


def test_deterministic_and_the_weights_rng_is_untouched():
    ds = ch.dataset()
    torch.manual_seed(3)
    a = ppmi_vectors(ds, 6, seed=1)
    after = torch.rand(3)
    torch.manual_seed(3)
    assert torch.equal(torch.rand(3), after)
    assert np.array_equal(a, ppmi_vectors(ds, 6, seed=1))


def test_the_agent_starts_its_learned_tables_from_cooccurrence(tmp_path: Path):
    ds = ch.dataset()
    cfg = ch.config(tmp_path, "hybrid")
    cfg.model.item_embedding, cfg.model.embedding_dim, cfg.model.item_init = "learned", 6, "random"
    torch.manual_seed(0)
    plain = Agent(State(ds), cfg)
    cfg.model.item_init = "cooccurrence"
    torch.manual_seed(0)
    pre = Agent(State(ds), cfg)
    for table in ("items", "out_items"):
        w0 = getattr(plain.actor, table).learned.weight.detach()
        w1 = getattr(pre.actor, table).learned.weight.detach()
        assert not torch.equal(w0, w1)
        assert float(w1[:-1].std()) == pytest.approx(0.1, rel=0.05)
        assert torch.equal(w1[-1], torch.zeros_like(w1[-1]))  # the padding row stays zero
    vec = ppmi_vectors(ds, 6, seed=cfg.train.seed)
    cos = np.corrcoef(vec[:, 0], pre.actor.items.learned.weight.detach().numpy()[:-1, 0])[0, 1]
    assert cos > 0.99  # a rescaled copy of the co-occurrence vectors


def test_auto_starts_a_lone_learned_table_from_cooccurrence_and_one_beside_features_at_random(tmp_path: Path):
    ds = ch.dataset()
    cfg = ch.config(tmp_path, "hybrid")
    cfg.model.embedding_dim = 6
    tables = {}
    for mode in ("learned", "both"):
        for init in ("auto", "random", "cooccurrence"):
            cfg.model.item_embedding, cfg.model.item_init = mode, init
            torch.manual_seed(0)
            tables[mode, init] = Agent(State(ds), cfg).actor.items.learned.weight.detach()
    assert torch.equal(tables["learned", "auto"], tables["learned", "cooccurrence"])
    assert not torch.equal(tables["learned", "auto"], tables["learned", "random"])
    assert torch.equal(tables["both", "auto"], tables["both", "random"])
