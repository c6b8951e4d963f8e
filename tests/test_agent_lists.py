"""How the trained agent makes its lists: the validator's tuned re-rank weight and calibrated
score scale, and the diversity re-rank (an inference-time setting) end to end."""

from __future__ import annotations

import json
from pathlib import Path

import core_helpers as ch
import numpy as np
import pytest
from typer.testing import CliRunner

from whatnext import checkpoints, engine
from whatnext.cli import app
from whatnext.data import load_dataset
from whatnext.evaluation import metrics
from whatnext.evaluation.protocol import evaluate, split_inputs
from whatnext.rl.environment import agent_from_payload, train


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
    for key in ("score_scale", "score_scale_seen"):  # fitted by calibrate_scale (tested on its own)
        assert 1e-4 * 0.99 <= payload[key] <= 1e3 * 1.01 and payload[key] != 1.0, payload[key]
        assert payload["metrics"][f"eval/{key}"] == payload[key]
    agent, _ = _agent(path)
    assert (agent.rerank_weight, agent.score_scale, agent.score_scale_seen) == (
        payload["rerank_weight"], payload["score_scale"], payload["score_scale_seen"])


@pytest.mark.parametrize(("algorithm", "rerank", "tune"), [("hybrid", 8, True), ("hybrid", 8, False), ("original", 0, True)])
def test_the_validators_cached_ranking_equals_evaluate(algorithm: str, rerank: int, tune: bool, tmp_path: Path) -> None:
    path = ch.write_project(tmp_path, algorithm=algorithm, epochs=1, rerank=rerank)
    cfg = engine.config_for(path, {"model.tune_rerank": tune})
    ds = load_dataset(cfg)
    train(cfg, ds, evaluator=engine._validator(cfg, ds))
    agent, _ = engine.load_agent(cfg, ds)
    for seen in (False, True):
        cfg.eval.include_seen = seen
        res = engine._validator(cfg, ds)(agent)  # re-tunes and re-fits from the same slates: nothing moves
        direct = evaluate(agent, ds, "valid", cfg.eval.ks, include_seen=seen)
        for key in ("eval/ndcg@10", "eval/hr@10", "eval/coverage@10", "eval/novelty@10"):
            assert res[key] == direct[key], (seen, key)
        assert ("eval/rerank_weight" in res) == (tune and rerank > 0)


def test_a_checkpoint_without_score_scales_loads_with_scale_one(trained) -> None:
    path, cfg = trained
    payload = checkpoints.load(checkpoints.resolve(cfg.resolve(cfg.paths.models_dir), cfg.paths.run, None))
    del payload["score_scale"], payload["score_scale_seen"]  # as written before calibration existed
    now = engine.config_for(path, {"recommend.diversity": 0.5})
    ds = load_dataset(now)
    agent = agent_from_payload(now, ds, payload)
    assert agent.score_scale == agent.score_scale_seen == 1.0
    _, hists, _ = split_inputs(ds, "test")
    assert (agent.recommend(hists, 5, hists)[:, 0] >= 0).all()


def test_lists_pad_when_the_slate_runs_out(trained) -> None:
    path, _ = trained
    for diversity in (0.0, 1.0):
        agent, ds = _agent(path, diversity=diversity)
        n = len(ds.catalogue)
        everything = np.arange(n)
        all_but_two = everything[2:]
        out = agent.recommend([everything, all_but_two], 5, [everything, all_but_two])
        assert out.shape == (2, 5)
        assert (out[0] == -1).all()
        assert sorted(out[1][:2].tolist()) == [0, 1] and (out[1][2:] == -1).all()
        slate = agent.score_candidates([everything[:4]], None, 3)
        narrow = slate._replace(items=slate.items[:, :3], dist=slate.dist[:, :3], logit=slate.logit[:, :3],
                                log_q=None if slate.log_q is None else slate.log_q[:, :3])
        items, dist = agent.choose(narrow, 6, seen=True)
        assert items.shape == dist.shape == (1, 6) and (items[0, 3:] == -1).all() and np.isinf(dist[0, 3:]).all()


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
