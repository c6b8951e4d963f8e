"""The serving speed-ups change no answer: the networks read only up to the longest history, batched
faiss searches take faiss's matrix-product path, and both give what the slow paths gave, bit for bit."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from core_helpers import config, dataset

from whatnext.data.dataset import pad_histories
from whatnext.models.registry import MODELS
from whatnext.rl.agent import Agent
from whatnext.rl.state import State


@pytest.mark.parametrize("name", sorted(MODELS))
def test_networks_that_skip_the_trailing_padding_give_the_same_outputs(tmp_path: Path, name: str) -> None:
    cfg = config(tmp_path, "hybrid", model={"name": name, "window": 12, "rerank": 10})
    ds = dataset(n_users=20, n_events=15, n_items=40)
    agent = Agent(State(ds), cfg)
    agent.ready()
    rng = np.random.default_rng(0)
    hists = [ds.histories.of(u)[: int(rng.integers(1, 15))] for u in range(len(ds.histories))]
    for batch in ([hists[0]], [hists[1]], hists[:7], hists):
        full, lengths = pad_histories(batch, cfg.model.window)
        short = full[:, : int(lengths.max())]
        assert short.shape[1] < full.shape[1] or max(map(len, batch)) >= cfg.model.window
        if not agent.actor.reads_padding:  # the actors that say so get the short inputs (the critic always)
            assert np.array_equal(agent.predict(full, lengths), agent.predict(short, lengths))
        with torch.inference_mode():
            a = agent.critic.encode(torch.from_numpy(full), torch.from_numpy(lengths))
            b = agent.critic.encode(torch.from_numpy(short), torch.from_numpy(lengths))
        assert torch.equal(a, b)


def test_prediction_turns_off_dropout_once_and_keeps_it_off(tmp_path: Path) -> None:
    cfg = config(tmp_path, "hybrid", model={"dropout": 0.5, "num_layers": 2})
    agent = Agent(State(dataset()), cfg)
    agent.actor.train()
    inputs, lengths = pad_histories([np.array([1, 2, 3])], cfg.model.window)
    first = agent.predict(inputs, lengths)
    assert not agent.actor.training
    assert np.array_equal(first, agent.predict(inputs, lengths))  # no dropout: the same answer twice


@pytest.mark.parametrize("offset", [0.0, 10.0], ids=["near-origin", "far-from-origin"])
@pytest.mark.parametrize("grid", [None, 3], ids=["continuous", "grid3"])
def test_faiss_exact_batches_answer_as_single_queries_and_numpy(offset: float, grid: int | None) -> None:
    from whatnext.search import BLAS_FROM, ExactIndex, FaissIndex

    rng = np.random.default_rng(int(offset) + (grid or 0))
    n, d = 3000, 6
    if grid:
        v = rng.integers(0, grid + 1, size=(n, d)) / grid  # many exact ties
        q = rng.integers(0, grid + 1, size=(40, d)) / grid
    else:
        v, q = rng.random((n, d)), rng.random((40, d))
    v, q = (v + offset).astype(np.float32), (q + offset).astype(np.float32)
    exclude = [rng.integers(0, n, size=int(rng.integers(0, 30))) for _ in range(len(q))]
    faiss_index, exact = FaissIndex(v, "exact"), ExactIndex(v)
    want_i, want_d = exact.search(q, 10, exclude)
    for size in (1, BLAS_FROM, 5, 16, 19, 40):  # one query alone, and batches on faiss's matrix-product path
        for s in range(0, len(q), size):
            got_i, got_d = faiss_index.search(q[s : s + size], 10, exclude[s : s + size])
            np.testing.assert_array_equal(got_i, want_i[s : s + size])
            np.testing.assert_allclose(got_d, want_d[s : s + size], rtol=1e-9)
