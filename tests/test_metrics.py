"""Metric functions against hand-computed values (ties, -1 padding, duplicates, empty input)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from whatnext.evaluation import metrics
from whatnext.evaluation.baselines import rank_scores

RANKED = np.array([
    [3, 1, 2, -1],
    [0, -1, -1, -1],
    [5, 4, 3, 2],
])
TARGETS = np.array([1, 2, 7])


def test_target_ranks_are_one_based_and_zero_when_absent():
    assert metrics.target_ranks(RANKED, TARGETS, 4).tolist() == [2, 0, 0]
    assert metrics.target_ranks(RANKED, TARGETS, 1).tolist() == [0, 0, 0]
    # row 2 holds item 2 at position 4: found at k=4 only
    assert metrics.target_ranks(RANKED, np.array([1, 2, 2]), 4).tolist() == [2, 0, 4]
    assert metrics.target_ranks(RANKED, np.array([1, 2, 2]), 3).tolist() == [2, 0, 0]


def test_accuracy_metrics_hand_computed():
    # only user 0 hits, at rank 2
    assert metrics.hit_rate(RANKED, TARGETS, 2) == pytest.approx(1 / 3)
    assert metrics.ndcg(RANKED, TARGETS, 2) == pytest.approx((1 / math.log2(3)) / 3)
    assert metrics.mrr(RANKED, TARGETS, 2) == pytest.approx((1 / 2) / 3)
    assert metrics.hit_rate(RANKED, TARGETS, 1) == 0.0
    assert metrics.ndcg(RANKED, TARGETS, 1) == 0.0
    # two hits: ranks 1 and 3
    ranked = np.array([[7, 8, 9], [1, 2, 3]])
    assert metrics.hit_rate(ranked, np.array([7, 3]), 3) == 1.0
    assert metrics.ndcg(ranked, np.array([7, 3]), 3) == pytest.approx((1 + 1 / 2) / 2)  # 1/log2(4) = 1/2
    assert metrics.mrr(ranked, np.array([7, 3]), 3) == pytest.approx((1 + 1 / 3) / 2)


def test_k_beyond_width_counts_as_padding():
    assert metrics.hit_rate(RANKED, TARGETS, 50) == metrics.hit_rate(RANKED, TARGETS, 4)
    assert metrics.ndcg(RANKED, TARGETS, 50) == metrics.ndcg(RANKED, TARGETS, 4)


def test_padding_never_matches_a_negative_target():
    ranked = np.array([[-1, -1], [4, -1]])
    assert metrics.hit_rate(ranked, np.array([-1, -1]), 2) == 0.0
    assert metrics.coverage(ranked, 2, 10) == pytest.approx(0.1)


def test_duplicate_target_counts_once_at_first_position():
    ranked = np.array([[4, 4, 1]])
    assert metrics.target_ranks(ranked, np.array([4]), 3).tolist() == [1]
    assert metrics.ndcg(ranked, np.array([4]), 3) == 1.0
    assert metrics.mrr(ranked, np.array([4]), 3) == 1.0


def test_tied_scores_rank_smaller_index_first():
    # items 1 and 2 tie at 0.9: item 1 goes first, so target 2 is at rank 2
    scores = np.array([[0.5, 0.9, 0.9, 0.1]])
    ranked = rank_scores(scores.copy(), 3)
    assert ranked.tolist() == [[1, 2, 0]]
    assert metrics.ndcg(ranked, np.array([2]), 3) == pytest.approx(1 / math.log2(3))
    assert metrics.mrr(ranked, np.array([2]), 3) == pytest.approx(0.5)
    assert metrics.hit_rate(ranked, np.array([2]), 1) == 0.0
    # an all-tied row ranks in index order
    assert rank_scores(np.zeros((1, 4)), 4).tolist() == [[0, 1, 2, 3]]


def test_coverage_hand_computed():
    ranked = np.array([[0, 1, -1], [1, 2, 3]])
    assert metrics.coverage(ranked, 1, 10) == pytest.approx(2 / 10)  # {0, 1}
    assert metrics.coverage(ranked, 2, 10) == pytest.approx(3 / 10)  # {0, 1, 2}
    assert metrics.coverage(ranked, 3, 10) == pytest.approx(4 / 10)  # {0, 1, 2, 3}
    assert metrics.coverage(ranked, 9, 4) == 1.0


EMB = np.array([[0.0, 0.0], [3.0, 0.0], [0.0, 4.0], [1.0, 1.0]])


def test_intra_list_diversity_hand_computed():
    ranked = np.array([[0, 1, 2], [0, 3, -1], [2, -1, -1]])
    # list 0: pairs 3, 4, 5 -> 4; list 1: sqrt(2); list 2 has one item: left out
    assert metrics.intra_list_diversity(ranked, EMB, 3) == pytest.approx((4 + math.sqrt(2)) / 2)
    # at k=2: list 0 pair (0,1) -> 3; list 1 -> sqrt(2)
    assert metrics.intra_list_diversity(ranked, EMB, 2) == pytest.approx((3 + math.sqrt(2)) / 2)
    assert math.isnan(metrics.intra_list_diversity(ranked, EMB, 1))  # no list has two items


def test_intra_list_diversity_matches_brute_force_in_blocks():
    rng = np.random.default_rng(3)
    emb = rng.normal(size=(30, 5))
    ranked = np.array([rng.permutation(30)[:6] for _ in range(40)])
    ranked[rng.random(ranked.shape) < 0.2] = -1
    ranked = -np.sort(-ranked, axis=1)  # padding to the right
    means = []
    for row in ranked:
        items = [i for i in row[:5] if i >= 0]
        pairs = list(itertools.combinations(items, 2))
        if pairs:
            means.append(np.mean([np.linalg.norm(emb[a] - emb[b]) for a, b in pairs]))
    expected = float(np.mean(means))
    assert metrics.intra_list_diversity(ranked, emb, 5) == pytest.approx(expected)
    assert metrics.intra_list_diversity(ranked, emb, 5, block_rows=7) == pytest.approx(expected)


def test_novelty_hand_computed_with_floor_for_unseen():
    counts = np.array([4, 2, 1, 1, 0])  # 8 training events
    # -log2 p: item0 1, item1 2, items 2 and 3: 3, item4 (unseen, floor of one play) 3
    ranked = np.array([[0, 1], [4, -1], [-1, -1]])
    assert metrics.novelty(ranked, counts, 2) == pytest.approx((1.5 + 3) / 2)
    assert metrics.novelty(ranked, counts, 1) == pytest.approx((1 + 3) / 2)
    with pytest.raises(ValueError):
        metrics.novelty(ranked, np.zeros(5), 2)


def test_empty_input_is_nan_and_bad_input_raises():
    empty = np.zeros((0, 3), dtype=np.int64)
    no_targets = np.zeros(0, dtype=np.int64)
    assert math.isnan(metrics.hit_rate(empty, no_targets, 3))
    assert math.isnan(metrics.ndcg(empty, no_targets, 3))
    assert math.isnan(metrics.coverage(empty, 3, 5))
    assert math.isnan(metrics.novelty(empty, np.ones(5), 3))
    with pytest.raises(ValueError):
        metrics.hit_rate(RANKED, TARGETS[:2], 3)
    with pytest.raises(ValueError):
        metrics.hit_rate(RANKED, TARGETS, 0)
    with pytest.raises(TypeError):
        metrics.hit_rate(RANKED.astype(float), TARGETS, 2)
    with pytest.raises(ValueError):
        metrics.hit_rate(RANKED[0], TARGETS[:1], 2)
