"""State (get_random_user_history, produce, nearest) and the exact search, against brute-force references."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from helpers import random_dataset

from whatnext.config import Config
from whatnext.data import PAD, build_dataset
from whatnext.rl.state import State
from whatnext.search import ExactIndex, FaissIndex, mask_excluded, topk_largest, topk_smallest

# ---------------------------------------------------------------- references


def ref_topk_smallest(d: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """k smallest per row, ties to the smaller index, by a plain sort of (value, index)."""
    k = min(k, d.shape[1])
    idx = np.array([np.lexsort((np.arange(d.shape[1]), row))[:k] for row in d], dtype=np.int64).reshape(len(d), k)
    return idx, np.take_along_axis(d, idx, axis=1)


def ref_search(vectors: np.ndarray, queries: np.ndarray, k: int, exclude=None) -> tuple[np.ndarray, np.ndarray]:
    """Brute-force k nearest (Euclidean), excluded items skipped, padded with -1 / inf."""
    v = np.asarray(vectors, np.float32).astype(np.float64)
    q = np.atleast_2d(np.asarray(queries, np.float32)).astype(np.float64)
    d2 = ((q[:, None, :] - v[None, :, :]) ** 2).sum(-1)
    out_i = np.full((len(q), k), -1, np.int64)
    out_d = np.full((len(q), k), np.inf)
    for r in range(len(q)):
        allowed = np.ones(len(v), bool)
        if exclude is not None:
            allowed[np.asarray(exclude[r], np.int64)] = False
        cand = np.flatnonzero(allowed)
        order = cand[np.lexsort((cand, d2[r, cand]))][:k]
        out_i[r, : len(order)] = order
        out_d[r, : len(order)] = np.sqrt(d2[r, order])
    return out_i, out_d


def brute_nearest(vectors: np.ndarray, q: np.ndarray) -> int:
    return int(ref_search(vectors, q[None, :], 1)[0][0, 0])


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def state() -> State:
    return State(random_dataset(n_users=40, n_items=60, d=3, seed=1, max_len=10))


@pytest.fixture(scope="module")
def grid_state() -> State:
    # features on a coarse grid: many exact ties in distance and many items on box edges
    return State(random_dataset(n_users=20, n_items=80, d=3, seed=2, grid=4))


# ---------------------------------------------------------------- get_random_user_history


def test_random_history_single(state: State) -> None:
    h = state.histories
    seen = set()
    for seed in range(200):
        u, items = state.get_random_user_history(np.random.default_rng(seed))
        assert isinstance(u, int)
        assert h.train_len[u] > 0
        np.testing.assert_array_equal(items, h.of(u, "train"))
        seen.add(u)
    assert len(seen) > len(h) // 2  # users are drawn at random, not always the same
    a = state.get_random_user_history(np.random.default_rng(7))
    b = state.get_random_user_history(np.random.default_rng(7))
    assert a[0] == b[0] and np.array_equal(a[1], b[1])


def test_random_history_single_does_not_alias(state: State) -> None:
    _, items = state.get_random_user_history(np.random.default_rng(0))
    before = state.histories.items.copy()
    items[:] = -5
    np.testing.assert_array_equal(state.histories.items, before)


@pytest.mark.parametrize("window", [None, 1, 3, 50])
def test_random_history_batch(state: State, window: int | None) -> None:
    h = state.histories
    users, hist, lengths = state.get_random_user_history(np.random.default_rng(3), size=64, window=window)
    assert users.shape == (64,) and lengths.shape == (64,)
    w = window or int(h.train_len[users].max())
    assert hist.shape == (64, w)
    for i, u in enumerate(users):
        train = h.of(int(u), "train")
        want = train[-w:]  # the most recent items
        assert lengths[i] == len(want)
        np.testing.assert_array_equal(hist[i, : lengths[i]], want)
        assert (hist[i, lengths[i] :] == PAD).all()
    # with the same seed the batch is the same
    again = state.get_random_user_history(np.random.default_rng(3), size=64, window=window)
    np.testing.assert_array_equal(again[0], users)
    np.testing.assert_array_equal(again[1], hist)


def test_random_history_batch_includes_single_event_users() -> None:
    # users with one event: their whole (one-item) history is the training part
    events = pd.DataFrame({"user_id": [1, 2, 2, 2, 2, 3], "item_id": [5, 6, 7, 8, 9, 7], "timestamp": [0, 1, 2, 3, 4, 5]})
    items = pd.DataFrame({"item_id": [5, 6, 7, 8, 9], "f": [0.0, 0.25, 0.5, 0.75, 1.0]})
    st = State(build_dataset(events, items, Config()))
    users, hist, lengths = st.get_random_user_history(np.random.default_rng(0), size=30, window=4)
    assert set(users.tolist()) == {0, 1, 2}
    for i, u in enumerate(users):
        train = st.histories.of(int(u), "train")
        assert lengths[i] == len(train) >= 1
        np.testing.assert_array_equal(hist[i, : lengths[i]], train)


def test_random_history_batch_draws_with_replacement(state: State) -> None:
    users, _, _ = state.get_random_user_history(np.random.default_rng(0), size=3 * len(state.histories))
    assert len(np.unique(users)) < len(users)
    assert set(users.tolist()) <= set(np.flatnonzero(state.histories.train_len > 0).tolist())


# ---------------------------------------------------------------- produce


def _box(e: np.ndarray, q: np.ndarray, relax: float, slack: float) -> np.ndarray:
    return (np.abs(e - q[None, :]) <= relax / 2 + slack).all(axis=1)


def _check_produce_rule(state: State, q: np.ndarray, relax: float, got: int) -> bool:
    """Assert ``got`` obeys produce's rule for query ``q``; True where a box item existed."""
    e = state.embeddings
    strict, loose = _box(e, q, relax, -1e-6), _box(e, q, relax, 1e-6)
    if strict.any():
        assert loose[got], f"item {got} is outside the +/- relax/2 box"
        return True
    if not loose.any():
        assert got == brute_nearest(e, q), "no item in the box: expected the nearest item"
    return False  # on a box edge within float error: either answer is right


def test_produce_single_inside_box(state: State) -> None:
    rng = np.random.default_rng(0)
    inside = 0
    for _ in range(100):
        q = rng.random(3).astype(np.float32)
        got = state.produce(q, 0.4, rng)
        assert isinstance(got, int)
        inside += _check_produce_rule(state, q, 0.4, got)
    assert inside > 50  # the test did exercise the box case


def test_produce_single_nearest_when_box_empty(state: State) -> None:
    rng = np.random.default_rng(1)
    outside = 0
    for _ in range(100):
        q = (rng.random(3) * 3 - 1).astype(np.float32)  # often far from every item
        got = state.produce(q, 0.05, rng)
        if not _box(state.embeddings, q, 0.05, 1e-6).any():
            outside += 1
            assert got == brute_nearest(state.embeddings, q)
    assert outside > 50


@pytest.mark.parametrize("relax", [0.0, 0.05, 0.3, 0.5, 1.0, 2.5])
def test_produce_batch_follows_the_single_rule(grid_state: State, relax: float) -> None:
    rng = np.random.default_rng(int(relax * 100))
    # grid queries (items exactly on box edges, exact ties) and continuous ones
    q = np.concatenate([rng.integers(0, 5, size=(100, 3)) / 4, rng.random((100, 3)) * 1.4 - 0.2]).astype(np.float32)
    got = grid_state.produce(q, relax, rng)
    assert isinstance(got, np.ndarray) and got.shape == (len(q),) and got.dtype.kind == "i"
    for i in range(len(q)):
        _check_produce_rule(grid_state, q[i], relax, int(got[i]))
        if not _box(grid_state.embeddings, q[i], relax, 1e-6).any():
            # without a box item the answer is deterministic: batch equals single
            assert got[i] == grid_state.produce(q[i], relax, np.random.default_rng(0))


def test_produce_grid_edges_are_inside(grid_state: State) -> None:
    # an item exactly relax/2 away in every attribute lies inside the box
    e = grid_state.embeddings
    rng = np.random.default_rng(0)
    for j in range(10):
        target = e[j]
        q = np.clip(target + 0.125, 0, 1).astype(np.float32)
        got = grid_state.produce(q, 0.25, rng)
        assert _box(e, q, 0.25, 1e-6)[got]
    # relax = 0: only an exact match is in the box
    got = grid_state.produce(e[:20], 0.0, rng)
    np.testing.assert_array_equal(e[got], e[:20])


def test_produce_is_uniform_over_the_box(grid_state: State) -> None:
    e = grid_state.embeddings
    q = np.full(3, 0.5, np.float32)
    members = np.flatnonzero(_box(e, q, 0.5, 1e-6))
    assert 3 <= len(members) <= 30
    picks = grid_state.produce(np.repeat(q[None, :], 10000, axis=0), 0.5, np.random.default_rng(5))
    assert set(picks.tolist()) == set(members.tolist())  # every box item is chosen, nothing else
    counts = np.bincount(picks, minlength=len(e))[members]
    expected = 10000 / len(members)  # >= 333: the bounds below are many standard deviations wide
    assert counts.min() > 0.7 * expected and counts.max() < 1.3 * expected


def test_produce_is_reproducible(state: State) -> None:
    q = np.random.default_rng(0).random((30, 3)).astype(np.float32)
    a = state.produce(q, 0.3, np.random.default_rng(11))
    b = state.produce(q, 0.3, np.random.default_rng(11))
    np.testing.assert_array_equal(a, b)


def test_produce_in_blocks_matches_one_block() -> None:
    # a catalogue large enough that produce splits the queries into several blocks
    ds = random_dataset(n_users=5, n_items=3000, d=8, seed=4)
    st = State(ds)
    rows_per_block = max(1, (32 << 20) // (3000 * 8))
    q = np.random.default_rng(0).random((rows_per_block + 7, 8)).astype(np.float32)
    q[-5:] += 5.0  # the last rows, in the second block, have no box item
    got = st.produce(q, 0.6, np.random.default_rng(0))
    for i in list(range(5)) + list(range(len(q) - 12, len(q))):
        _check_produce_rule(st, q[i], 0.6, int(got[i]))


# ---------------------------------------------------------------- topk and search


@pytest.mark.parametrize(
    ("m", "n", "k", "levels"),
    [(20, 50, 5, None), (20, 50, 5, 3), (10, 7, 20, 2), (15, 3000, 10, None), (15, 3000, 10, 4),
     (15, 3000, 1, 2), (8, 3000, 600, 5), (5, 2049, 3, None)],
    ids=["small", "small-ties", "k>n", "partition", "partition-ties", "partition-heavy-ties", "large-k", "just-over"],
)
def test_topk_smallest_against_reference(m: int, n: int, k: int, levels: int | None) -> None:
    rng = np.random.default_rng(m * n + k)
    d = rng.integers(0, levels, size=(m, n)).astype(np.float64) if levels else rng.random((m, n))
    d[0, :] = 1.0  # a row that is all ties
    if n > 5:
        d[1, 3] = np.inf
    idx, vals = topk_smallest(d, k)
    ridx, rvals = ref_topk_smallest(d, k)
    np.testing.assert_array_equal(idx, ridx)
    np.testing.assert_array_equal(vals, rvals)
    lidx, lvals = topk_largest(d, k)
    np.testing.assert_array_equal(lidx, ref_topk_smallest(-d, k)[0])
    np.testing.assert_array_equal(lvals, -ref_topk_smallest(-d, k)[1])


def test_mask_excluded() -> None:
    s = np.zeros((3, 5))
    mask_excluded(s, [np.array([0, 4]), np.array([], dtype=np.int64), np.array([PAD, 2, 2, 99])])
    want = np.zeros((3, 5))
    want[0, [0, 4]] = np.inf
    want[2, 2] = np.inf  # PAD and out-of-range entries are ignored
    np.testing.assert_array_equal(s, want)
    t = np.ones((2, 3))
    mask_excluded(t, [np.array([], dtype=np.int64)] * 2)
    assert (t == 1).all()


def _random_exclusions(rng: np.random.Generator, m: int, n: int) -> list[np.ndarray]:
    out = []
    for r in range(m):
        kind = r % 4
        if kind == 0:
            out.append(np.array([], dtype=np.int64))  # nothing excluded
        elif kind == 1:
            out.append(np.arange(n))  # everything excluded
        elif kind == 2:
            out.append(rng.choice(n, size=n - 2, replace=False))  # fewer than k left
        else:
            out.append(rng.integers(0, n, size=rng.integers(1, n)))  # repeats allowed
    return out


@pytest.mark.parametrize("make", [ExactIndex, lambda v: FaissIndex(v, "exact")], ids=["numpy", "faiss"])
@pytest.mark.parametrize("grid", [None, 2, 4], ids=["continuous", "grid2", "grid4"])
@pytest.mark.parametrize("k", [1, 5, 100])
def test_exact_search_against_brute_force(grid: int | None, k: int, make: Any) -> None:
    rng = np.random.default_rng(k + (grid or 0))
    n, d, m = 60, 4, 40
    if grid:
        v = (rng.integers(0, grid + 1, size=(n, d)) / grid).astype(np.float32)
        v[10:15] = v[5]  # duplicates: exact ties
        q = (rng.integers(0, grid + 1, size=(m, d)) / grid).astype(np.float32)
    else:
        v = rng.random((n, d)).astype(np.float32)
        q = rng.random((m, d)).astype(np.float32)
    index = make(v)
    for exclude in (None, [np.array([], dtype=np.int64)] * m, _random_exclusions(rng, m, n)):
        idx, dist = index.search(q, k, exclude)
        ridx, rdist = ref_search(v, q, k, exclude)
        assert idx.shape == dist.shape == (m, k)
        np.testing.assert_array_equal(idx, ridx)
        np.testing.assert_allclose(dist, rdist, rtol=1e-6, atol=1e-6)
        assert ((idx == -1) == np.isinf(dist)).all()
    # an empty exclusion set is the same as none
    np.testing.assert_array_equal(index.search(q, k, [np.array([], dtype=np.int64)] * m)[0], index.search(q, k)[0])


def test_search_every_item_excluded_and_k_beyond_catalogue() -> None:
    v = np.eye(4, dtype=np.float32)
    index = ExactIndex(v)
    idx, dist = index.search(np.zeros((2, 4), np.float32), 3, [np.arange(4), np.array([1])])
    assert idx[0].tolist() == [-1, -1, -1] and np.isinf(dist[0]).all()
    assert idx[1].tolist() == [0, 2, 3]  # equal distances: smaller index first
    np.testing.assert_allclose(dist[1], [1, 1, 1])
    idx, dist = index.search(np.array([[1, 0, 0, 0]], np.float32), 6)
    assert idx.tolist() == [[0, 1, 2, 3, -1, -1]]
    np.testing.assert_allclose(dist[0, :4], [0, np.sqrt(2), np.sqrt(2), np.sqrt(2)])
    assert np.isinf(dist[0, 4:]).all()
    with pytest.raises(ValueError):
        index.search(np.zeros((1, 4), np.float32), 0)


def test_search_blocks_agree() -> None:
    rng = np.random.default_rng(0)
    v = rng.random((300, 5)).astype(np.float32)
    q = rng.random((97, 5)).astype(np.float32)
    exclude = [rng.integers(0, 300, size=10) for _ in range(97)]
    big = ExactIndex(v).search(q, 7, exclude)
    small = ExactIndex(v, block_bytes=8 * 300 * 4).search(q, 7, exclude)  # four queries a block
    np.testing.assert_array_equal(big[0], small[0])
    np.testing.assert_array_equal(big[1], small[1])
    np.testing.assert_array_equal(big[0], ref_search(v, q, 7, exclude)[0])


def test_search_empty_catalogue_and_no_queries() -> None:
    idx, dist = ExactIndex(np.zeros((0, 3), np.float32)).search(np.zeros((2, 3), np.float32), 2)
    assert (idx == -1).all() and np.isinf(dist).all()
    idx, dist = ExactIndex(np.eye(3, dtype=np.float32)).search(np.zeros((0, 3), np.float32), 2)
    assert idx.shape == (0, 2)


def test_state_nearest(state: State) -> None:
    e = state.embeddings
    rng = np.random.default_rng(3)
    q = rng.random((12, 3)).astype(np.float32)
    seen = state.seen(np.arange(12))
    idx, dist = state.nearest(q, 8, exclude=seen)
    ridx, rdist = ref_search(e, q, 8, seen)
    np.testing.assert_array_equal(idx, ridx)
    np.testing.assert_allclose(dist, rdist, rtol=1e-6, atol=1e-6)
    for r in range(12):
        assert not np.isin(idx[r], seen[r]).any()
    # one query as a vector
    one, _ = state.nearest(q[0], 3)
    np.testing.assert_array_equal(one, ref_search(e, q[:1], 3)[0])
    # an item is its own nearest neighbour
    own, d0 = state.nearest(e[:5], 1)
    assert (d0[:, 0] < 1e-6).all()
    np.testing.assert_array_equal(e[own[:, 0]], e[:5])


def test_state_with_given_embeddings(state: State) -> None:
    emb = np.random.default_rng(0).normal(size=(len(state.catalogue), 6)).astype(np.float32)
    st = State(state.dataset, embeddings=emb)
    q = emb[:4] + 0.01
    np.testing.assert_array_equal(st.nearest(q, 5)[0], ref_search(emb, q, 5)[0])
    got = st.produce(q, 0.1, np.random.default_rng(0))
    for i in range(4):
        _check_produce_rule(st, q[i], 0.1, int(got[i]))
