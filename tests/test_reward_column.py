"""data.reward_col: logged rewards read, mapped, transformed, aligned with the histories and batched."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from core_helpers import frames

from whatnext.config import Config
from whatnext.data import build_dataset
from whatnext.errors import DataError
from whatnext.rl.batch import make_batch


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


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".pk"])
def test_every_reader_goes_through_the_same_reward_path(tmp_path, suffix):
    from helpers import config_for

    from whatnext.data import load_dataset

    events, items = _events_with([True, False, True, True] * 5)
    events = events.merge(items, on="item_id")  # one long table, as the legacy pickle holds
    path = tmp_path / f"events{suffix}"
    {".csv": lambda p: events.to_csv(p, index=False), ".parquet": events.to_parquet, ".pk": events.to_pickle}[suffix](path)
    ds = load_dataset(config_for(path, reward_col="played", reward_map={"false": -1.0}))
    np.testing.assert_array_equal(ds.histories.rewards, np.where(_expected(events, ds, "played"), 1.0, -1.0))
    assert "played" not in ds.catalogue.feature_names


def test_empty_cells_map_through_the_empty_key():
    events, items = _events_with([1.0, np.nan, 2.0, 3.0] * 5)
    ds = build_dataset(events, items, _cfg(reward_col="played", reward_map={"": 0.0}), source="t")
    np.testing.assert_array_equal(ds.histories.rewards, np.nan_to_num(_expected(events, ds, "played").astype(float)))


def test_served_plays_join_with_a_neutral_reward(tmp_path):
    import json

    from whatnext.serving.plays import with_plays

    events, items = _events_with(np.arange(20) + 1.0)
    ds = build_dataset(events, items, _cfg(reward_col="played"), source="t")
    log = tmp_path / "plays.jsonl"
    log.write_text(json.dumps({"user": "1", "items": ["2", "3"], "time": 1.0}) + "\n"
                   + json.dumps({"user": "new", "items": ["1"], "time": 2.0}) + "\n")
    merged, summary = with_plays(ds, log)
    h, old = merged.histories, ds.histories
    assert summary["events"] == 3 and h.rewards is not None and len(h.rewards) == len(h.items)
    np.testing.assert_array_equal(np.sort(h.rewards[h.rewards != 0]), np.sort(old.rewards))
    u = int(h.user_index(["1"])[0])
    np.testing.assert_array_equal(h.rewards[h.offsets[u]: h.offsets[u + 1]], [*old.rewards[old.offsets[0]: old.offsets[1]], 0, 0])


def test_inspect_data_describes_the_reward_column(tmp_path):
    import json

    from typer.testing import CliRunner

    from whatnext.cli import app

    events, items = _events_with(["full", "skip", "full", "full"] * 5)
    events.to_csv(tmp_path / "events.csv", index=False)
    items.to_csv(tmp_path / "items.csv", index=False)
    (tmp_path / "whatnext.toml").write_text('[data]\npath = "events.csv"\nitems_path = "items.csv"\nreward_col = "played"\n'
                                            'reward_map = { full = 1, skip = -1 }\nreward_transform = "center"\n')
    runner = CliRunner()
    out = runner.invoke(app, ["inspect-data", "--config", str(tmp_path / "whatnext.toml"), "--json"])
    assert out.exit_code == 0, out.output
    rw = json.loads(out.stdout)["rewards"]
    ds = build_dataset(events, items, _cfg(reward_col="played", reward_map={"full": 1.0, "skip": -1.0},
                                           reward_transform="center"), source="t")
    r = ds.histories.rewards
    assert rw["column"] == "played" and rw["transform"] == "center" and rw["count"] == 20 and rw["distinct"] == 2
    assert rw["positive_share"] == pytest.approx(0.75) and rw["mean"] == pytest.approx(float(r.mean()))
    assert {float(v): n for v, n in rw["values"].items()} == pytest.approx(
        {float(f"{v:g}"): int((r == v).sum()) for v in np.unique(r)})
    table = runner.invoke(app, ["inspect-data", "--config", str(tmp_path / "whatnext.toml")], env={"COLUMNS": "100"})
    flat = " ".join(table.stdout.split())
    assert table.exit_code == 0 and "logged rewards" in flat and "column played, centered: 20 values" in flat
    assert "75.0% positive, 2 distinct" in flat
    plain = runner.invoke(app, ["inspect-data", "--config", str(tmp_path / "whatnext.toml"), "--set", "data.reward_col="])
    assert plain.exit_code == 0 and "logged rewards" not in plain.stdout
