"""The built-in demo dataset: deterministic, the documented size, and loadable."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import config_for

from whatnext.config import Config
from whatnext.data import demo, load_dataset


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Path]]:
    """The demo files for seed 0 (twice, in different folders) and seed 1."""
    out = {}
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        demo._generated.cache_clear()  # each write generates afresh: "same seed, same bytes" is about generating
        out[name] = demo.write(tmp_path_factory.mktemp(name) / "data", seed=seed)
    return out


def test_same_seed_gives_byte_identical_files(written: dict[str, tuple[Path, Path]]) -> None:
    for fa, fb in zip(written["a"], written["b"]):
        assert fa.name == fb.name
        assert fa.read_bytes() == fb.read_bytes()
    assert [p.name for p in written["a"]] == [demo.EVENTS_FILE, demo.ITEMS_FILE]


def test_different_seed_differs(written: dict[str, tuple[Path, Path]]) -> None:
    for fa, fc in zip(written["a"], written["c"]):
        assert fa.read_bytes() != fc.read_bytes()


def test_sizes_and_ranges(written: dict[str, tuple[Path, Path]]) -> None:
    ev_path, it_path = written["a"]
    events = pd.read_csv(ev_path)
    items = pd.read_csv(it_path)
    assert list(events.columns) == ["user_id", "item_id", "timestamp", "played"]
    assert set(events["played"]) == {"full", "skip"} and 0.6 < (events["played"] == "full").mean() < 0.9
    assert 1800 <= len(items) <= 2200 and items["item_id"].is_unique
    assert 450 <= events["user_id"].nunique() <= 550
    assert 40_000 <= len(events) <= 60_000
    assert set(events["item_id"]) <= set(items["item_id"])
    feats = items[list(demo.FEATURES)].to_numpy()
    assert len(demo.FEATURES) == 8
    assert np.isfinite(feats).all() and feats.min() >= 0.0 and feats.max() <= 1.0
    assert feats.std(axis=0).min() > 0.01  # every attribute varies
    assert items["title"].notna().all() and items["artist"].nunique() > 50
    # timestamps are unix seconds around 2024 and increase within every user's log
    assert events["timestamp"].between(1.6e9, 1.8e9).all()
    assert events.groupby("user_id")["timestamp"].apply(lambda t: t.is_monotonic_increasing).all()


def test_generate_matches_the_files(written: dict[str, tuple[Path, Path]]) -> None:
    events, items = demo.generate(0)
    pd.testing.assert_frame_equal(pd.read_csv(written["a"][0]), events)
    assert pd.read_csv(written["a"][1])["item_id"].tolist() == items["item_id"].tolist()


def test_demo_loads_as_the_default_data(written: dict[str, tuple[Path, Path]]) -> None:
    builtin = load_dataset(Config())  # no data.path: the built-in demo data
    ev, it = written["a"]
    from_files = load_dataset(config_for(ev, items_path=str(it)))
    assert len(builtin.catalogue) == len(from_files.catalogue)
    assert builtin.catalogue.feature_names == list(demo.FEATURES)
    np.testing.assert_array_equal(builtin.histories.items, from_files.histories.items)
    np.testing.assert_allclose(builtin.catalogue.features, from_files.catalogue.features, atol=1e-6)
    assert builtin.report["single_event_users"] == 0


def test_sequences_carry_signal() -> None:
    """The next song depends on the current one: a first-order transition table beats popularity."""
    events, _ = demo.generate(0)
    items = events["item_id"].to_numpy()
    same_user = events["user_id"].to_numpy()[1:] == events["user_id"].to_numpy()[:-1]
    prev, nxt = items[:-1][same_user], items[1:][same_user]
    cut = int(len(prev) * 0.8)
    trans = pd.DataFrame({"p": prev[:cut], "n": nxt[:cut]}).value_counts().reset_index()
    best = trans.sort_values(["p", "count"], ascending=[True, False]).drop_duplicates("p").set_index("p")["n"]
    popular = pd.Series(nxt[:cut]).mode()[0]
    pred = pd.Series(prev[cut:]).map(best).fillna(popular).to_numpy()
    hit_transition = (pred == nxt[cut:]).mean()
    hit_popular = (nxt[cut:] == popular).mean()
    assert hit_transition > 3 * hit_popular


def test_completion_follows_mood_and_taste_from_its_own_generator() -> None:
    """Plays close to the mood and of a favourite genre are completed more often; the draw is its own."""
    n = 20000
    gap = np.repeat([0.0, 0.2, 0.6], n)
    liked = np.tile(np.repeat([True, False], n // 2), 3)
    full = demo.completed(gap, liked, seed=0)
    np.testing.assert_array_equal(full, demo.completed(gap, liked, seed=0))  # deterministic
    assert not np.array_equal(full, demo.completed(gap, liked, seed=1))
    rate = full.reshape(3, 2, n // 2).mean(-1)  # (gap, liked)
    expected = np.clip(0.15 + 0.65 * np.exp(-np.array([0.0, 0.2, 0.6]) ** 2 / 0.08)[:, None]
                       + 0.15 * np.array([1, 0])[None, :], 0, 0.95)
    np.testing.assert_allclose(rate, expected, atol=0.015)
    assert (np.diff(rate[:, 0]) < 0).all() and (rate[:, 0] > rate[:, 1]).all()
    # the play sequence is the one the demo had before it logged completions (README figures depend on it)
    import hashlib

    events, _ = demo.generate(0)
    plays = events[["user_id", "item_id", "timestamp"]].to_csv(index=False, lineterminator="\n").encode()
    assert hashlib.sha256(plays).hexdigest() == "a8a163b888805463e271266892edd9c8079f656fd6ee8bb4f821d67d088b3926"


def test_demo_project_turns_completions_into_rewards(tmp_path: Path) -> None:
    from whatnext import engine

    out = engine.init_project(tmp_path, demo=True)
    ds = load_dataset(engine.config_for(out["config"]))
    events = pd.read_csv(tmp_path / "data" / demo.EVENTS_FILE)
    assert ds.histories.rewards is not None
    assert sorted(np.unique(ds.histories.rewards).tolist()) == [-1.0, 1.0]
    assert (ds.histories.rewards == 1).mean() == pytest.approx((events["played"] == "full").mean())
    assert "played" not in ds.catalogue.feature_names


def test_generate_hands_out_copies_of_its_cached_tables() -> None:
    """The demo is generated once per process; changing what generate() returned changes nothing later."""
    events, items = demo.generate()
    first = events["item_id"].iloc[0]
    events.loc[0, "item_id"] = -1
    del items["title"]
    again, items_again = demo.generate()
    assert again["item_id"].iloc[0] == first and "title" in items_again.columns
