"""The serving index's 16-bit screen (:class:`whatnext.serving.index.HalfScreen`) answers exactly as the
float32 flat index it wraps: the same items in the same order, the same distances, ties to the smaller
index, exclusions honoured; rows its bound cannot settle are handed to the flat index, never guessed. Every
16-bit type the installed faiss has (bfloat16, float16) is checked."""

from __future__ import annotations

import numpy as np
import pytest

from whatnext.search import ExactIndex, FaissIndex
from whatnext.serving.index import HALF_TYPES, HalfScreen, half_type

KINDS = [k for k in HALF_TYPES if hasattr(__import__("faiss").ScalarQuantizer, f"QT_{k}")]


def _check(v: np.ndarray, queries: np.ndarray, ks: tuple[int, ...], rng: np.random.Generator,
           kind: str | None = None) -> HalfScreen:
    base = FaissIndex(v, "exact")
    half, exact = HalfScreen(base, kind), ExactIndex(v)
    assert half.usable
    for q in queries:
        ex = [rng.integers(0, len(v), int(rng.integers(0, 40)))]
        for k in ks:
            want_i, want_d = exact.search(q[None, :], k, ex)
            got_i, got_d = half.search(q[None, :], k, ex)
            np.testing.assert_array_equal(got_i, want_i)
            np.testing.assert_allclose(got_d, want_d, rtol=1e-9)
    return half


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("offset", [0.0, 30.0], ids=["near-origin", "far-from-origin"])
def test_continuous_vectors_are_settled_by_the_bound(offset: float, kind: str) -> None:
    rng = np.random.default_rng(1)
    v = (rng.normal(size=(5000, 24)) + offset).astype(np.float32)
    q = (v[rng.integers(0, 5000, 30)] + rng.normal(scale=0.3, size=(30, 24))).astype(np.float32)
    half = _check(v, q, (1, 10, 60), rng, kind)
    assert half.kind_16 == kind
    assert half.proved > 0.9 * (half.proved + half.fallbacks)  # the 16-bit scan did the work
    assert half.error > 0  # the 16-bit copy moved the vectors: the bound is not vacuous


@pytest.mark.parametrize("kind", KINDS)
def test_exact_ties_and_duplicates_go_to_the_smaller_index(kind: str) -> None:
    rng = np.random.default_rng(2)
    v = (rng.integers(0, 3, size=(4000, 5)) / 2).astype(np.float32)  # hundreds of identical vectors
    q = (rng.integers(0, 3, size=(20, 5)) / 2).astype(np.float32)
    _check(v, q, (1, 10), rng, kind)


@pytest.mark.parametrize("kind", KINDS)
def test_rows_the_bound_cannot_settle_are_answered_by_the_flat_index(kind: str) -> None:
    rng = np.random.default_rng(6)
    centre = rng.normal(size=8)
    directions = rng.normal(size=(3000, 8))
    # every item at distance 1 from the centre, give or take far less than 16-bit rounding
    v = (centre + directions / np.linalg.norm(directions, axis=1, keepdims=True)
         + rng.normal(scale=1e-6, size=(3000, 8))).astype(np.float32)
    half = _check(v, centre[None, :].astype(np.float32), (10,), rng, kind)
    assert half.fallbacks == 1 and half.proved == 0


@pytest.mark.parametrize("kind", KINDS)
def test_small_catalogues_and_k_beyond_it(kind: str) -> None:
    rng = np.random.default_rng(3)
    v = rng.normal(size=(30, 4)).astype(np.float32)
    _check(v, v[:5] + 0.01, (1, 29, 30, 31, 45), rng, kind)


def test_the_default_type_and_an_unknown_one() -> None:
    v = np.random.default_rng(7).normal(size=(100, 4)).astype(np.float32)
    assert HalfScreen(FaissIndex(v, "exact")).kind_16 == half_type() == KINDS[0]
    with pytest.raises(ValueError, match="fp8"):
        HalfScreen(FaissIndex(v, "exact"), "fp8")


def test_batches_and_unusable_vectors_take_the_flat_index() -> None:
    rng = np.random.default_rng(4)
    v = rng.normal(size=(2000, 8)).astype(np.float32)
    base = FaissIndex(v, "exact")
    half = HalfScreen(base)
    q = rng.normal(size=(8, 8)).astype(np.float32)
    got = half.search(q, 10)
    want = base.search(q, 10)
    np.testing.assert_array_equal(got[0], want[0])
    assert half.proved == half.fallbacks == 0  # a batch of 8 is one matrix product of the flat index
    huge = v.copy()
    huge[0, 0] = 1e6  # beyond float16's range: the screen stands aside
    big = HalfScreen(FaissIndex(huge, "exact"))
    assert not big.usable
    np.testing.assert_array_equal(big.search(q[:1], 5)[0], ExactIndex(huge).search(q[:1], 5)[0])
    assert len(half) == 2000 and half.kind == "exact"  # the wrapped index's attributes


def test_the_server_side_prepare_wraps_faiss_exact_only() -> None:
    from types import SimpleNamespace

    from whatnext.serving.recommender import prepare

    rng = np.random.default_rng(5)
    v = rng.normal(size=(500, 6)).astype(np.float32)
    for index, wrapped in ((FaissIndex(v, "exact"), True), (FaissIndex(v, "hnsw"), False)):
        agent = SimpleNamespace(item_vectors=lambda: v, diversity_space=lambda: None,
                                state=SimpleNamespace(index=index, embeddings=v))
        prepare(agent)
        assert isinstance(agent.state.index, HalfScreen) is wrapped
