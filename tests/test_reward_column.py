"""data.reward_col: logged rewards read, mapped, transformed, aligned with the histories and batched."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from whatnext.config import Config
from whatnext.data import build_dataset
from whatnext.errors import DataError
from whatnext.rl.batch import make_batch

from core_helpers import frames


def _cfg(**data) -> Config:
    cfg = Config()
    for k, v in data.items():
        setattr(cfg.data, k, v)
    return cfg


def _events_with(values) -> tuple[pd.DataFrame, pd.DataFrame]:
    events, items = frames(n_users=4, n_events=5, n_items=6)
    events = events.sample(frac=1.0, random_state=1).reset_index(drop=True)  # file order != time order
    events["played"] = list(values)[: len(events)]
    return events, items


def _expected(events: pd.DataFrame, ds, column: str) -> np.ndarray:
    """The column's values in the histories' order (user, then time)."""
    ordered = events.sort_values(["user_id", "timestamp"], kind="stable")
    assert (ds.catalogue.index_of(ordered["item_id"].astype(str)) == ds.histories.items).all()
    return ordered[column].to_numpy()


def test_numeric_rewards_follow_the_events_into_history_order():
    events, items = _events_with(np.arange(20) * 0.5)
    ds = build_dataset(events, items, _cfg(reward_col="played"), source="tiny")
    r = ds.histories.rewards
    assert r is not None and r.dtype == np.float32 and r.shape == ds.histories.items.shape
    np.testing.assert_allclose(r, _expected(events, ds, "played"))
    assert "played" not in ds.catalogue.feature_names  # never a feature


def test_no_reward_column_means_no_rewards_and_ones_in_batches():
    events, items = frames(n_users=4, n_events=5, n_items=6)
    ds = build_dataset(events, items, Config(), source="tiny")
    assert ds.histories.rewards is None and "rewards" not in ds.report
    b = make_batch(ds, ds.histories.train_positions(), window=3)
    assert b.rewards.dtype == np.float32 and b.rewards.shape == b.targets.shape
    np.testing.assert_array_equal(b.rewards, np.where(b.targets >= 0, 1.0, 0.0))


def test_batch_rewards_are_the_targets_logged_rewards():
    events, items = _events_with(np.arange(20) - 7.0)
    ds = build_dataset(events, items, _cfg(reward_col="played"), source="tiny")
    h = ds.histories
    pos = h.train_positions()
    b = make_batch(ds, pos, window=3)
    # the last target of each window is the event at the position itself
    np.testing.assert_array_equal(b.rewards[np.arange(len(pos)), b.lengths - 1], h.rewards[pos])
    assert (b.rewards[b.targets < 0] == 0).all()
    # every real target's reward is the reward of that flat event (targets[j] = items[p - len + j + 1])
    for row, p in enumerate(pos):
        n = b.lengths[row]
        np.testing.assert_array_equal(b.rewards[row, :n], h.rewards[p - n + 1 : p + 1])


def test_reward_map_booleans_and_text():
    events, items = _events_with(["skip", "full", " Full ", "SKIP"] * 5)
    ds = build_dataset(events, items, _cfg(reward_col="played", reward_map={"skip": -1.0, "full": 1.0}), source="t")
    want = np.where(pd.Series(_expected(events, ds, "played")).str.strip().str.lower() == "full", 1.0, -1.0)
    np.testing.assert_array_equal(ds.histories.rewards, want)
    events, items = _events_with([True, False] * 10)
    ds = build_dataset(events, items, _cfg(reward_col="played"), source="t")
    np.testing.assert_array_equal(ds.histories.rewards, _expected(events, ds, "played").astype(float))
    ds = build_dataset(events, items, _cfg(reward_col="played", reward_map={"false": -1.0}), source="t")
    np.testing.assert_array_equal(ds.histories.rewards, np.where(_expected(events, ds, "played"), 1.0, -1.0))
    # whole-number floats match integer keys; unmapped numbers pass through
    events, items = _events_with([1.0, 2.0, 3.5, 5.0] * 5)
    ds = build_dataset(events, items, _cfg(reward_col="played", reward_map={"1": -2.0}), source="t")
    raw = _expected(events, ds, "played")
    np.testing.assert_array_equal(ds.histories.rewards, np.where(raw == 1.0, -2.0, raw))


def test_transforms_use_training_statistics_only():
    events, items = _events_with(np.arange(20, dtype=float) ** 2)
    ds = build_dataset(events, items, _cfg(reward_col="played", reward_transform="center"), source="t")
    raw = _expected(events, ds, "played")
    train = ds.histories.train_mask()
    np.testing.assert_allclose(ds.histories.rewards, raw - raw[train].mean(), rtol=1e-6)
    ds = build_dataset(events, items, _cfg(reward_col="played", reward_transform="standardize"), source="t")
    np.testing.assert_allclose(ds.histories.rewards, (raw - raw[train].mean()) / raw[train].std(), rtol=1e-5)
    assert ds.report["rewards"]["transform"] == "standardize"


@pytest.mark.parametrize("values, found", [
    (["1", "2", "great", "4"] * 5, "holds 'great'"),
    ([1.0, np.nan, 2.0, 3.0] * 5, "is empty"),
    (["skip", "full", "partial", "skip"] * 5, "holds 'partial'"),
    ([1.0, np.inf, 2.0, 3.0] * 5, "holds 'inf'"),
])
def test_bad_reward_values_are_one_clear_error(values, found):
    events, items = _events_with(values)
    cfg = _cfg(reward_col="played", reward_map={"skip": -1.0, "full": 1.0} if "skip" in values else {})
    with pytest.raises(DataError) as e:
        build_dataset(events, items, cfg, source="log.csv")
    msg = str(e.value)
    bad = [str(v) in ("great", "partial", "inf") or (isinstance(v, float) and np.isnan(v)) for v in events["played"]]
    row = int(np.flatnonzero(bad)[0]) + 1
    assert msg.startswith("log.csv: reward column 'played' (data.reward_col)") and f"row {row} " in msg
    assert found in msg and "data.reward_map" in msg and "\n" not in msg


def test_missing_reward_column_names_the_key():
    events, items = frames(n_users=4, n_events=5, n_items=6)
    with pytest.raises(DataError, match=r"missing column 'playd' \(data.reward_col\)"):
        build_dataset(events, items, _cfg(reward_col="playd"), source="t")


def test_rewards_do_not_change_the_fingerprint():
    events, items = _events_with(np.arange(20) * 1.0)
    with_r = build_dataset(events, items, _cfg(reward_col="played"), source="t")
    without = build_dataset(events.drop(columns=["played"]), items, Config(), source="t")
    assert with_r.catalogue.fingerprint() == without.catalogue.fingerprint()


def test_logged_reward_is_the_played_songs_reward_and_mixes_by_weight():
    from whatnext.rl import rewards

    r = rewards.RewardInputs(np.zeros((3, 2), dtype=np.int64), np.array([1, 1, 1]), np.array([[4, 5], [6, 7], [8, 8]]),
                             np.array([5, 6, 9]), np.array([0, 1, 2]), np.zeros((10, 2)), np.zeros(3), 1.0,
                             np.array([-1.0, 2.5, 3.0]))
    np.testing.assert_array_equal(rewards.logged(r), [[0.0, -1.0], [2.5, 0.0], [0.0, 0.0]])
    total, parts = rewards.combined({"hit": 1.0, "logged": 0.5}, r)
    np.testing.assert_array_equal(total, [[0.0, 0.5], [2.25, 0.0], [0.0, 0.0]])
    assert parts["train/reward_logged"] == pytest.approx((-1.0 + 2.5) / 6)
    r.target_reward = None  # no reward column: every play counts 1, as hit
    np.testing.assert_array_equal(rewards.logged(r), rewards.hit(r))
