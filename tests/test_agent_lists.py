"""How the trained agent makes its lists: the validator's tuned re-rank weight and calibrated
score scale, and the diversity re-rank (an inference-time setting) end to end."""

from __future__ import annotations

import json
from pathlib import Path

import core_helpers as ch
import numpy as np
import pytest
from typer.testing import CliRunner

from whatnext import checkpoints, engine, metrics
from whatnext.cli import app
from whatnext.data import load_dataset
from whatnext.environment import agent_from_payload, train
from whatnext.evaluate import evaluate, split_inputs


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    """A tiny hybrid run with critic re-ranking, trained with the validator; (config path, config)."""
    folder = tmp_path_factory.mktemp("lists")
    path = ch.write_project(folder, algorithm="hybrid", epochs=3, rerank=8, checkpoint_every=10)
    cfg = engine.config_for(path, {})
    ds = load_dataset(cfg)
    train(cfg, ds, evaluator=engine._validator(cfg, ds))
    return path, cfg


def _agent(path: Path, **recommend: float):
    cfg = engine.config_for(path, {f"recommend.{k}": v for k, v in recommend.items()})
    ds = load_dataset(cfg)
    agent, _ = engine.load_agent(cfg, ds)
    return agent, ds


def test_the_validator_saves_tuned_weights_and_calibrated_scales(trained) -> None:
    path, cfg = trained
    payload = checkpoints.load(checkpoints.resolve(cfg.resolve(cfg.paths.models_dir), cfg.paths.run, None))
    assert payload["rerank_weight"] in engine.RERANK_GRID and payload["rerank_weight_seen"] in engine.RERANK_GRID
    grid = np.geomspace(1 / 64, 8.0, 49)
    for key in ("score_scale", "score_scale_seen"):
        assert np.isclose(grid, payload[key]).any(), payload[key]
        assert payload["metrics"][f"eval/{key}"] == payload[key]
    agent, _ = _agent(path)
    assert (agent.rerank_weight, agent.score_scale, agent.score_scale_seen) == (
        payload["rerank_weight"], payload["score_scale"], payload["score_scale_seen"])


@pytest.mark.parametrize("seen", [False, True])
def test_the_validators_cached_ranking_equals_evaluate(trained, seen: bool) -> None:
    path, cfg = trained
    agent, ds = _agent(path)
    w, w_seen = agent.rerank_weight, agent.rerank_weight_seen
    res = engine._validator(cfg, ds)(agent)  # re-tunes: the same weights come out
    assert (agent.rerank_weight, agent.rerank_weight_seen) == (w, w_seen)
    direct = evaluate(agent, ds, "valid", cfg.eval.ks, include_seen=seen)
    if seen == cfg.eval.include_seen:
        assert res["eval/ndcg@10"] == direct["eval/ndcg@10"] and res["eval/hr@10"] == direct["eval/hr@10"]
    assert direct["eval/ndcg@10"] >= 0


def test_diversity_keeps_the_first_item_and_spreads_the_rest(trained) -> None:
    path, _ = trained
    plain, ds = _agent(path)
    diverse, _ = _agent(path, diversity=1.0)
    _, hists, _ = split_inputs(ds, "test")
    a = plain.recommend(hists, 10, hists)
    b = diverse.recommend(hists, 10, hists)
    assert np.array_equal(a[:, 0], b[:, 0])
    assert not np.array_equal(a, b)
    for row, h in zip(b, hists):
        row = row[row >= 0]
        assert len(set(row.tolist())) == len(row) and not np.isin(row, h).any()
    emb = ds.catalogue.features
    assert metrics.intra_list_diversity(b, emb, 10) > metrics.intra_list_diversity(a, emb, 10)
    # evaluate checks the contract (shape, range, no repeats, no played items) and reports ILD
    r0 = evaluate(plain, ds, "test", (10,), embeddings=emb)
    r1 = evaluate(diverse, ds, "test", (10,), embeddings=emb)
    assert r1["eval/ild@10"] > r0["eval/ild@10"]


def test_diversity_is_read_from_the_current_config_not_the_checkpoint(trained, tmp_path: Path) -> None:
    path, cfg = trained
    payload = checkpoints.load(checkpoints.resolve(cfg.resolve(cfg.paths.models_dir), cfg.paths.run, None))
    payload["config"]["recommend"]["diversity"] = 0.7  # a checkpoint saved under another setting
    now = engine.config_for(path, {})
    agent = agent_from_payload(now, load_dataset(now), payload)
    assert agent.cfg.recommend.diversity == 0.0


def test_eval_and_recommend_take_diversity_on_the_command_line(trained) -> None:
    path, _ = trained
    runner = CliRunner()
    plain = runner.invoke(app, ["eval", "--config", str(path), "--split", "test", "--json"])
    diverse = runner.invoke(app, ["eval", "--config", str(path), "--split", "test", "--json", "--diversity", "1"])
    assert plain.exit_code == 0 and diverse.exit_code == 0, plain.output + diverse.output
    p, d = json.loads(plain.stdout), json.loads(diverse.stdout)
    assert p["diversity"] == 0.0 and d["diversity"] == 1.0
    assert d["rows"][0]["eval/ild@10"] > p["rows"][0]["eval/ild@10"]
    table = runner.invoke(app, ["eval", "--config", str(path), "--diversity", "1"])
    assert table.exit_code == 0 and "diversity 1" in table.stdout
    one = runner.invoke(app, ["recommend", "--config", str(path), "--user", "3", "--json"])
    two = runner.invoke(app, ["recommend", "--config", str(path), "--user", "3", "--json", "--diversity", "1"])
    assert one.exit_code == 0 and two.exit_code == 0, one.output + two.output
    a, b = ([x["item_id"] for x in json.loads(r.stdout)["recommendations"]] for r in (one, two))
    assert a[0] == b[0] and a != b
