"""sqn / sac rank by the softmax plus recommend.q_beta times the Q head (whatnext/rl/offpolicy.py)."""

from __future__ import annotations

import json
from pathlib import Path

import core_helpers as ch
import numpy as np
import pytest
import torch
from test_offpolicy import _agent, _batch, _rewarded_dataset
from typer.testing import CliRunner

from whatnext import checkpoints
from whatnext.cli import app
from whatnext.rl import environment, offpolicy


def _trained(tmp_path: Path, algorithm: str = "sqn", steps: int = 6):
    ds = _rewarded_dataset()
    cfg = ch.config(tmp_path, algorithm, warmup=2)
    agent = _agent(cfg, ds)
    for i in range(steps):
        agent.propagate(_batch(ds, cfg, i), np.random.default_rng(i), torch.Generator().manual_seed(i))
    agent.ready()
    return ds, cfg, agent


def _lists(agent, ds, k: int = 5, beta: float | None = None):
    if beta is not None:
        agent.cfg.recommend.q_beta = beta
    hists = [ds.histories.of(u) for u in range(len(ds.histories))]
    return agent.recommend_with_distances(hists, k, hists)


def test_beta_zero_is_the_softmax_ranking_bit_for_bit(tmp_path: Path) -> None:
    ds, _, agent = _trained(tmp_path)
    assert agent.q_heads is not None
    items0, dist0 = _lists(agent, ds, beta=0.0)
    heads, agent.q_heads = agent.q_heads, None  # what the agent ranked by before the Q head could rank
    plain_items, plain_dist = _lists(agent, ds, beta=5.0)  # no head: beta is ignored
    assert np.array_equal(items0, plain_items) and np.array_equal(dist0, plain_dist)
    agent.q_heads = heads
    items1, _ = _lists(agent, ds, beta=5.0)
    assert not np.array_equal(items0, items1)  # the head is read when beta > 0


def test_a_q_head_that_prefers_one_item_moves_it_up_as_beta_grows(tmp_path: Path) -> None:
    ds, _, agent = _trained(tmp_path)
    hist = [ds.histories.of(0)]
    agent.cfg.recommend.q_beta = 0.0
    full, _ = agent.recommend_with_distances(hist, len(ds.catalogue) - len(set(hist[0].tolist())), hist)
    x = int(full[0, 15])  # well outside the top 5 of the softmax
    with torch.no_grad():
        agent.q_heads.q.weight.zero_()
        agent.q_heads.q.bias.zero_()
        agent.q_heads.q_bias.zero_()
        agent.q_heads.q_bias[x] = 1.0  # Q prefers x, and is indifferent between all the others
    ranks = []
    for beta in (0.0, 1e-6, 1e3):
        top, _ = _lists(agent, ds, k=5, beta=beta)
        ranks.append(int(np.flatnonzero(top[0] == x)[0]) if x in top[0] else None)
        if beta == 1e-6:  # a tiny beta only breaks exact ties: the softmax's list stands
            assert np.array_equal(top[0], full[0, :5])
    assert ranks == [None, None, 0]


def test_the_q_head_survives_the_checkpoint_and_ranks_the_same(tmp_path: Path) -> None:
    ds = _rewarded_dataset()
    cfg = ch.config(tmp_path, "sqn", samples=3 * ch.BATCH, warmup=1)
    cfg.recommend.q_beta = 2.0
    environment.train(cfg, ds)
    _, payload = checkpoints.load_latest(cfg.run_dir)
    loaded = environment.agent_from_payload(ch.config(tmp_path / "x", "hybrid"), ds, payload)  # inference config
    assert loaded.offpolicy is None and loaded.q_heads is not None
    saved = {k.removeprefix("heads."): v for k, v in payload["offpolicy"].items() if k.startswith("heads.")}
    assert ch.state_equal(saved, loaded.q_heads.state_dict())
    again = environment.agent_from_payload(ch.config(tmp_path / "y", "hybrid"), ds, payload)
    for beta in (0.0, 2.0):
        a, b = _lists(loaded, ds, beta=beta), _lists(again, ds, beta=beta)
        assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    # the training agent at the same step, rebuilt from its own payload, ranks the same lists
    agent = _agent(cfg, ds)
    environment.restore(agent, payload, optimisers=True)
    agent.ready()
    assert np.array_equal(_lists(agent, ds, beta=2.0)[0], _lists(loaded, ds, beta=2.0)[0])
    assert not np.array_equal(_lists(loaded, ds, beta=0.0)[0], _lists(loaded, ds, beta=50.0)[0])


def test_reinforce_and_hybrid_checkpoints_rank_by_the_softmax(tmp_path: Path) -> None:
    """reinforce's Q head is never trained, so it must not rank; hybrid has none."""
    ds = _rewarded_dataset()
    for alg in ("reinforce", "hybrid"):
        cfg = ch.config(tmp_path / alg, alg, samples=2 * ch.BATCH)
        environment.train(cfg, ds)
        _, payload = checkpoints.load_latest(cfg.run_dir)
        loaded = environment.agent_from_payload(ch.config(tmp_path / alg / "x", alg), ds, payload)
        assert loaded.q_heads is None and offpolicy.q_beta(loaded) == 0.0


@pytest.mark.parametrize("beta", ["0", "3"])
def test_recommend_through_the_cli_reads_q_beta_and_export_refuses_it(beta: str, tmp_path: Path) -> None:
    runner = CliRunner()
    cfg = ch.write_project(tmp_path, algorithm="sqn", checkpoint_every=6)
    result = runner.invoke(app, ["train", "--config", str(cfg), "--quiet"])
    assert result.exit_code == 0, result.output
    lists = {}
    for b in ("0", beta):
        r = runner.invoke(app, ["recommend", "--config", str(cfg), "--user", "3", "-k", "5", "--json",
                                "--set", f"recommend.q_beta={b}"])
        assert r.exit_code == 0, r.output
        lists[b] = [x["item_id"] for x in json.loads(r.stdout)["recommendations"]]
    assert all(len(v) == 5 for v in lists.values())
    r = runner.invoke(app, ["export", "--config", str(cfg), "--output", str(tmp_path / "export"),
                            "--set", f"recommend.q_beta={beta}"])
    if beta == "0":
        assert r.exit_code == 0, r.output
        assert (tmp_path / "export" / "actor.pt").exists()
    else:
        assert r.exit_code == 2 and "recommend.q_beta (3) times its Q head" in r.stderr
        assert not (tmp_path / "export").exists()
