"""The reward functions against plain references, the training-only population, and the registries."""

from __future__ import annotations

import itertools

import core_helpers as ch
import numpy as np
import pytest

from whatnext import config as config_mod
from whatnext.config import Config
from whatnext.data import PAD, build_dataset
from whatnext.rl import algorithms as agent_mod
from whatnext.rl import rewards

# ---------------------------------------------------------------- the plain numpy reference


def sigma_ref(vectors: np.ndarray, items: list[int]) -> float:
    """Sample std (ddof=1) of the pairwise Euclidean distances among ``items``; 0 with < 2 distances."""
    dists = [float(np.linalg.norm(vectors[a].astype(np.float64) - vectors[b].astype(np.float64)))
             for a, b in itertools.combinations(items, 2)]
    return float(np.std(dists, ddof=1)) if len(dists) >= 2 else 0.0


def diversity_ref(vectors: np.ndarray, history: list[int], x: int, sigma_p: float) -> float:
    return abs(sigma_ref(vectors, history) - sigma_p) - abs(sigma_ref(vectors, history + [x]) - sigma_p)


def _inputs(rng: np.random.Generator, b: int = 40, m: int = 3, n_items: int = 40, d: int = 3, w: int = 6,
            min_len: int = 1) -> tuple[rewards.RewardInputs, list[list[int]]]:
    """Random histories of distinct items (lengths min_len..w, PAD-padded) and M candidates not in them."""
    vectors = rng.random((n_items, d)).astype(np.float32)
    hist = np.full((b, w), PAD, dtype=np.int64)
    lists, produced = [], np.zeros((b, m), dtype=np.int64)
    for i in range(b):
        n = int(rng.integers(min_len, w + 1))
        chosen = rng.choice(n_items, size=n + m, replace=False)
        hist[i, :n] = chosen[:n]
        lists.append(chosen[:n].tolist())
        produced[i] = chosen[n:]
    lengths = np.array([len(x) for x in lists])
    users = rng.integers(0, 5, size=b)
    pop = rng.random(5) * 0.4
    target = rng.integers(0, n_items, size=b)
    return rewards.RewardInputs(hist, lengths, produced, target, users, vectors, pop, 0.5), lists


# ---------------------------------------------------------------- diversity


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_diversity_matches_the_numpy_reference(seed: int) -> None:
    rng = np.random.default_rng(seed)
    r, lists = _inputs(rng)
    got = rewards.diversity(r)
    assert got.shape == r.produced.shape
    for i, h in enumerate(lists):
        for j, x in enumerate(r.produced[i]):
            want = diversity_ref(r.vectors, h, int(x), float(r.population_sigma[r.users[i]]))
            assert got[i, j] == pytest.approx(want, abs=1e-9), (i, j, h, x)


def test_diversity_of_tiny_sets_uses_sigma_zero() -> None:
    """A history of one item: sigma(H) = 0 and sigma(H + {x}) = 0 (one distance), so the reward is 0.
    A history of two: sigma(H) = 0, sigma(H + {x}) is a real std of three distances."""
    rng = np.random.default_rng(3)
    vectors = rng.random((10, 3)).astype(np.float32)
    hist = np.array([[4, PAD, PAD], [2, 7, PAD]])
    produced = np.array([[1, 9], [1, 9]])
    pop = np.array([0.3, 0.05])
    r = rewards.RewardInputs(hist, np.array([1, 2]), produced, np.array([0, 0]), np.array([0, 1]), vectors, pop, 1.0)
    got = rewards.diversity(r)
    assert np.array_equal(got[0], [0.0, 0.0])
    for j, x in enumerate(produced[1]):
        s_hx = sigma_ref(vectors, [2, 7, int(x)])
        assert s_hx > 0
        assert got[1, j] == pytest.approx(abs(0.0 - 0.05) - abs(s_hx - 0.05), abs=1e-9)


def test_pairwise_distance_std_matches_the_reference_with_masks() -> None:
    rng = np.random.default_rng(4)
    x = rng.random((30, 7, 4))
    mask = rng.random((30, 7)) < 0.6
    mask[0] = False
    mask[1] = [True] + [False] * 6
    mask[2] = [True, True] + [False] * 5
    mask[3] = True
    got = rewards.pairwise_distance_std(x, mask)
    for i in range(30):
        rows = np.flatnonzero(mask[i]).tolist()
        flat = x[i]
        want = sigma_ref(flat, rows)
        assert got[i] == pytest.approx(want, abs=1e-9)
    assert got[0] == got[1] == got[2] == 0.0 and got[3] > 0


def test_diversity_sign_follows_the_population_spread() -> None:
    """Positive when x brings the history's spread toward the user's usual spread, negative when away."""
    vectors = np.array([[0.0], [0.1], [0.2], [0.3], [5.0]], dtype=np.float32)
    hist = np.array([[0, 1, 2]])
    # sigma(H) is small; a far item x=4 raises the spread a lot, a near one (3) barely
    s_h = sigma_ref(vectors, [0, 1, 2])
    s_far = sigma_ref(vectors, [0, 1, 2, 4])
    assert s_far > s_h
    wide = rewards.RewardInputs(hist, np.array([3]), np.array([[4, 3]]), np.array([0]), np.array([0]), vectors,
                                np.array([s_far]), 1.0)
    narrow = rewards.RewardInputs(hist, np.array([3]), np.array([[4, 3]]), np.array([0]), np.array([0]), vectors,
                                  np.array([s_h]), 1.0)
    assert rewards.diversity(wide)[0, 0] > 0  # a user with wide taste: the far song is good
    assert rewards.diversity(narrow)[0, 0] < 0  # a user with narrow taste: the far song is bad


# ---------------------------------------------------------------- next_item


def test_next_item_is_one_for_the_same_item_and_decreasing_with_distance() -> None:
    vectors = np.array([[0.0, 0.0], [0.1, 0.0], [0.3, 0.0], [0.6, 0.4], [1.0, 1.0]], dtype=np.float32)
    r = rewards.RewardInputs(np.array([[1, PAD]]), np.array([1]), np.array([[0, 1, 2, 3, 4]]), np.array([0]),
                             np.array([0]), vectors, np.zeros(1), 0.4)
    got = rewards.next_item(r)[0]
    assert got[0] == 1.0
    others = got[1:]
    assert ((others >= 0) & (others < 1)).all()
    assert (np.diff(others) < 0).all(), others  # candidates listed by increasing distance
    d = np.linalg.norm(vectors[1:] - vectors[0], axis=1)
    assert np.allclose(others, np.exp(-d / 0.4))  # the documented formula


def test_next_item_on_random_data() -> None:
    rng = np.random.default_rng(5)
    r, _ = _inputs(rng, m=4)
    r.produced[:, 0] = r.target  # one exact hit per row
    got = rewards.next_item(r)
    assert got.shape == r.produced.shape
    assert (got[:, 0] == 1.0).all()
    miss = r.produced[:, 1:] != r.target[:, None]
    assert ((got[:, 1:][miss] >= 0) & (got[:, 1:][miss] < 1)).all()
    # within a row: farther from the target -> smaller reward
    for i in range(len(got)):
        d = np.linalg.norm(r.vectors[r.produced[i, 1:]] - r.vectors[r.target[i]], axis=1)
        order = np.argsort(d)
        assert (np.diff(got[i, 1:][order]) <= 0).all()


def test_next_item_is_below_one_for_a_different_item_with_the_same_vector() -> None:
    vectors = np.array([[0.2, 0.2], [0.2, 0.2], [0.9, 0.1]], dtype=np.float32)
    r = rewards.RewardInputs(np.array([[2]]), np.array([1]), np.array([[0, 1]]), np.array([0]), np.array([0]),
                             vectors, np.zeros(1), 0.5)
    got = rewards.next_item(r)[0]
    assert got[0] == 1.0
    assert got[1] < 1.0


def test_distance_scale_is_a_positive_median() -> None:
    rng = np.random.default_rng(6)
    v = rng.random((40, 3)).astype(np.float32)
    delta = rewards.distance_scale(v, seed=0)
    all_d = [np.linalg.norm(v[a] - v[b]) for a, b in itertools.combinations(range(40), 2)]
    assert np.quantile(all_d, 0.4) < delta < np.quantile(all_d, 0.6)
    assert rewards.distance_scale(np.zeros((5, 3), np.float32)) == 1.0  # all equal: no zero scale
    assert rewards.distance_scale(v[:1]) == 1.0


# ---------------------------------------------------------------- population sigma


def test_population_sigma_matches_the_reference_over_the_training_part() -> None:
    ds = ch.dataset()
    vectors = ds.catalogue.features
    got = rewards.population_sigma(ds.histories, vectors)
    h = ds.histories
    for u in range(len(h)):
        train = h.of(u, "train").tolist()
        assert len(train) == len(h.of(u)) - 2
        assert got[u] == pytest.approx(sigma_ref(vectors, train), abs=1e-9)


def test_population_sigma_ignores_the_held_out_events() -> None:
    events, items = ch.frames()
    base = build_dataset(events, items, Config(), source="a")
    changed = events.copy()
    rng = np.random.default_rng(7)
    last_two = changed.groupby("user_id")["timestamp"].rank(ascending=False) <= 2
    assert last_two.sum() == 2 * events["user_id"].nunique()
    changed.loc[last_two, "item_id"] = rng.integers(0, 40, size=int(last_two.sum()))
    other = build_dataset(changed, items, Config(), source="b")
    assert not np.array_equal(base.histories.items, other.histories.items)
    v = base.catalogue.features
    assert np.array_equal(rewards.population_sigma(base.histories, v), rewards.population_sigma(other.histories, v))
    # positive control: changing a training event does change that user's sigma
    first = changed.groupby("user_id")["timestamp"].rank() == 1
    changed2 = events.copy()
    u1_first = first & (changed2["user_id"] == 1)
    changed2.loc[u1_first, "item_id"] = 1 if int(changed2.loc[u1_first, "item_id"].iloc[0]) != 1 else 0
    third = build_dataset(changed2, items, Config(), source="c")
    s0, s3 = rewards.population_sigma(base.histories, v), rewards.population_sigma(third.histories, v)
    assert s0[0] != s3[0] and np.array_equal(s0[1:], s3[1:])


# ---------------------------------------------------------------- combined and registries


def test_combined_is_the_weighted_sum_and_skips_zero_weights() -> None:
    r, _ = _inputs(np.random.default_rng(8))
    total, parts = rewards.combined({"diversity": 2.0, "next_item": 0.5}, r)
    assert np.allclose(total, 2.0 * rewards.diversity(r) + 0.5 * rewards.next_item(r))
    assert parts["train/reward_diversity"] == pytest.approx(rewards.diversity(r).mean())
    assert parts["train/reward_next_item"] == pytest.approx(rewards.next_item(r).mean())
    total, parts = rewards.combined({"diversity": 0.0, "next_item": 1.0}, r)
    assert np.allclose(total, rewards.next_item(r)) and "train/reward_diversity" not in parts


def test_reward_registry_agrees_with_config() -> None:
    assert set(rewards.REWARDS) == set(config_mod.REWARD_NAMES)
    assert set(Config().train.rewards) <= set(rewards.REWARDS)


def test_algorithm_registry_agrees_with_config() -> None:
    assert set(agent_mod.ALGORITHMS) == set(config_mod.CHOICES[("train", "algorithm")])
    assert set(agent_mod.POSITIONS) == set(agent_mod.ALGORITHMS)
    assert Config().train.algorithm in agent_mod.ALGORITHMS
