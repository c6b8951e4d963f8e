"""Off-policy evaluation: each estimator against hand-computed values, then through `whatnext eval`."""

from __future__ import annotations

import json
from pathlib import Path

import core_helpers as ch
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from whatnext.cli import app
from whatnext.data import Histories
from whatnext.evaluation import ope


def test_estimators_on_a_hand_computed_example():
    # four logged plays: target probability pi, behaviour probability mu, reward r
    pi = np.array([0.5, 0.0, 0.5, 1.0])
    mu = np.array([0.25, 0.5, 0.1, 0.05])
    r = np.array([1.0, -1.0, -1.0, 1.0])
    w = ope.clip_weights(pi / mu, 10.0)  # 2, 0, 5, 20 -> 10
    np.testing.assert_allclose(w, [2.0, 0.0, 5.0, 10.0])
    assert ope.ips(w, r) == pytest.approx((2 - 5 + 10) / 4)  # 1.75
    assert ope.snips(w, r) == pytest.approx(7 / 17)
    assert ope.effective_sample_size(w) == pytest.approx(17**2 / (4 + 25 + 100))
    q_logged = np.array([0.5, 0.0, -0.5, 0.2])
    q_target = np.array([0.25, 0.1, 0.0, 0.4])
    # 0.25 + 2 * 0.5, 0.1 + 0, 0 + 5 * -0.5, 0.4 + 10 * 0.8
    assert ope.dr(w, r, q_logged, q_target) == pytest.approx((1.25 + 0.1 - 2.5 + 8.4) / 4)
    # a reward model that is exactly right and a target policy that never matches: DR = the direct method
    assert ope.dr(np.zeros(4), r, r, q_target) == pytest.approx(q_target.mean())
    # no positive weight: SNIPS is undefined, ESS 0; equal weights: ESS = n
    assert np.isnan(ope.snips(np.zeros(3), np.ones(3))) and ope.effective_sample_size(np.zeros(3)) == 0
    assert ope.effective_sample_size(np.full(5, 3.0)) == pytest.approx(5)


def _histories() -> Histories:
    """User A plays 0 1 0 1 2, user B 1 0 1 2 (train: A's first 3, B's first 2); rewards as listed."""
    items = np.array([0, 1, 0, 1, 2, 1, 0, 1, 2])
    rewards = np.array([1, 1, -1, 1, -1, -1, 1, 1, 1], dtype=np.float32)
    return Histories(np.array(["A", "B"]), np.array([0, 5, 9]), items, np.arange(9), np.array([3, 2]), rewards)


def test_behaviour_policy_and_reward_model_by_hand():
    h = _histories()
    mu = ope.BehaviourPolicy.fit(h, 3)
    # training transitions: 0->1 (A), 1->0 (A), 1->0 (B); training plays of 0, 1, 2: 3, 2, 0 of N = 5
    p = np.array([4, 3, 1]) / 8  # add-one popularity (c + 1) / (N + n_items)
    np.testing.assert_allclose(mu.popularity, p)
    np.testing.assert_allclose(mu.prob(np.array([1, 1, 1]), np.array([0, 1, 2])), [(2 + 5 * p[0]) / 7, 5 * p[1] / 7, 5 * p[2] / 7])
    np.testing.assert_allclose(mu.prob(np.array([0]), np.array([1])), [(1 + 5 * p[1]) / 6])
    np.testing.assert_allclose(mu.prob(np.array([2]), np.array([2])), [p[2]])  # never followed: popularity
    np.testing.assert_allclose(mu.prob(np.array([-1]), np.array([0])), [p[0]])  # no last song
    np.testing.assert_allclose(mu.prob(np.array([1, 0]), np.array([[0, 1, 2], [0, 1, 2]])).sum(1), [1, 1])
    q = ope.RewardModel.fit(h, 3)  # training rewards: item 0: 1, -1, 1; item 1: 1, -1; mean 0.2, prior 10
    np.testing.assert_allclose(q.values, [(1 + 2) / 13, (0 + 2) / 12, 0.2])


def test_the_behaviour_prior_is_the_likeliest_for_the_validation_plays():
    h = _histories()
    # validation plays: A's 1 after 0, B's 1 after 0; mu(1 | 0) = (1 + b * 3/8) / (1 + b) falls as b grows
    mu = ope.BehaviourPolicy.fit_calibrated(h, 3)
    assert mu.prior == ope.PRIORS[0] == 1.0
    np.testing.assert_allclose(mu.prob(np.array([0]), np.array([1])), [(1 + 3 / 8) / 2])
    assert ope.OffPolicy.fit(h, 3).behaviour.prior == 1.0 and ope.OffPolicy.fit(h, 3, prior=5.0).behaviour.prior == 5.0
    # validation plays that never follow the training transitions: popularity explains them best, the largest prior wins
    items = np.array([0, 1, 0, 1, 2, 1, 0, 1, 2])
    items[3], items[7] = 2, 2  # A: 0 1 0 [2] 2, B: 1 0 [2] 2
    other = Histories(h.user_ids, h.offsets, items, h.times, h.train_len, h.rewards)
    assert ope.BehaviourPolicy.fit_calibrated(other, 3).prior == ope.PRIORS[-1]
    lls = [np.log(ope.BehaviourPolicy.fit(other, 3, b).prob(np.array([0, 0]), np.array([2, 2]))).mean() for b in ope.PRIORS]
    assert lls == sorted(lls)  # the likelihood rises with the prior, so the choice is the argmax, not an accident


def test_every_estimate_of_a_ranking_by_hand():
    h = _histories()
    off = ope.OffPolicy.fit(h, 3, prior=5.0)
    _, pos = h.targets("test")  # A's and B's last plays: song 2 after song 1, rewards -1 and +1
    ranked = np.array([[2, 0], [0, 1]])  # A's list holds the played song, B's does not
    m = off.metrics(ranked, h, pos, [2])
    w_a = 0.5 / (5 * (1 / 8) / 7)  # pi = 1/2 over mu(2 | 1) = 5 p(2) / 7: 5.6
    q = np.array([3 / 13, 1 / 6, 0.2])
    assert m["eval/reward_ips@2"] == pytest.approx(-w_a / 2)
    assert m["eval/reward_snips@2"] == pytest.approx(-1.0)
    assert m["eval/ess@2"] == pytest.approx(1.0)
    q_target = np.array([(q[2] + q[0]) / 2, (q[0] + q[1]) / 2])
    assert m["eval/reward_dr@2"] == pytest.approx((q_target[0] + w_a * (-1 - q[2]) + q_target[1]) / 2)
    assert m["eval/reward@2"] == pytest.approx(-0.5)  # A's hit counts its reward, -1
    assert m["eval/ndcg_pos@2"] == 0.0  # the only positively rewarded play (B's) is missed
    hit_b = off.metrics(np.array([[0, 1], [1, 2]]), h, pos, [2])
    assert hit_b["eval/ndcg_pos@2"] == pytest.approx(1 / np.log2(3))
    # a padded list is uniform over its songs; the weight is capped at eval.ope_clip
    capped = ope.OffPolicy(off.behaviour, off.reward_model, clip=4.0).metrics(np.array([[2, -1], [0, 1]]), h, pos, [2])
    assert capped["eval/reward_ips@2"] == pytest.approx(-4.0 / 2) and capped["eval/ess@2"] == pytest.approx(1.0)


def _reward_project(folder: Path) -> Path:
    cfg = ch.write_project(folder, algorithm="hybrid", ks="[5, 10]")
    events = pd.read_csv(folder / "events.csv")
    rng = np.random.default_rng(3)
    events["played"] = np.where(rng.random(len(events)) < 0.7, "full", "skip")
    events.to_csv(folder / "events.csv", index=False)
    text = cfg.read_text().replace("[data]\n", '[data]\nreward_col = "played"\nreward_map = { full = 1, skip = -1 }\n', 1)
    assert text != cfg.read_text()
    cfg.write_text(text)
    return cfg


def test_eval_reports_off_policy_estimates_for_every_row(tmp_path: Path) -> None:
    cfg = _reward_project(tmp_path / "p")
    runner = CliRunner()
    trained = runner.invoke(app, ["train", "--config", str(cfg), "--quiet"])
    assert trained.exit_code == 0, trained.output
    result = runner.invoke(app, ["eval", "--config", str(cfg), "--baselines", "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["off_policy"]["reward_col"] == "played" and out["off_policy"]["clip"] == 100.0
    assert len(out["rows"]) > 2
    for row in out["rows"]:
        for k in (5, 10):
            for key in ("reward", "ndcg_pos", "reward_ips", "reward_snips", "reward_dr", "ess"):
                assert f"eval/{key}@{k}" in row, (row["eval/model"], key)
            assert -1 <= row[f"eval/reward@{k}"] <= 1 and row[f"eval/ess@{k}"] >= 0
            assert np.isnan(row[f"eval/reward_snips@{k}"]) or -1 <= row[f"eval/reward_snips@{k}"] <= 1
    table = runner.invoke(app, ["eval", "--config", str(cfg), "--baselines"], env={"COLUMNS": "80"})
    assert table.exit_code == 0, table.output
    assert all(len(ln) <= 80 for ln in ch.framed(table.stdout)), table.stdout  # the notes under it are soft-wrapped
    flat = " ".join(table.stdout.split())
    assert "reward_snips@10" in flat and "ess@10" in flat and "logged rewards of played" in flat


def test_eval_without_a_reward_column_is_unchanged(tmp_path: Path) -> None:
    cfg = ch.write_project(tmp_path / "p", algorithm="hybrid")
    runner = CliRunner()
    assert runner.invoke(app, ["train", "--config", str(cfg), "--quiet"]).exit_code == 0
    out = json.loads(runner.invoke(app, ["eval", "--config", str(cfg), "--json"]).stdout)
    assert "off_policy" not in out and not any("reward" in k or "ess@" in k for k in out["rows"][0] if k != "eval/diversity_reward@1")
