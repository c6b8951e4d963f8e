"""Diversified lists: the greedy expected-gain + ILD objective against hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest

from whatnext.evaluation import metrics
from whatnext.evaluation.diversify import calibrate_scale, diversify, typical_distance

# four items on a line: 0 and 1 together, 2 a little away, 3 far away
VEC = np.array([[0.0], [0.1], [1.0], [3.0]])


def test_weight_zero_orders_by_score_with_ties_to_the_earlier_candidate():
    cand = np.array([[3, 2, 1, 0]])
    scores = np.array([[0.0, 1.0, 1.0, 2.0]])
    assert diversify(cand, scores, VEC, 4, 0.0).tolist() == [[3, 1, 2, 0]]


def test_first_slot_is_always_the_most_probable():
    cand = np.array([[0, 1, 2, 3]])
    for w in (0.0, 0.1, 10.0, 1e6):
        assert diversify(cand, P4, VEC, 2, w)[0, 0] == 0


# p = (0.5, 0.3, 0.15, 0.05): the plain top-10's expected gain G is
# 0.5 + 0.3 / log2(3) + 0.15 / log2(4) + 0.05 / log2(5) = 0.785813, and each pair of a list carries
# G * w * 2 / (10 * 9) / scale = G * w / 45 per unit of distance (the objective is written for ten items).
P4 = np.log(np.array([[0.5, 0.3, 0.15, 0.05]]))
G4 = 0.5 + 0.3 / np.log2(3) + 0.15 / 2 + 0.05 / np.log2(5)


def test_hand_computed_second_slot():
    # Slot 2 values, p / log2(3) + u * d(c, item 0) with u = G * w / 45:
    #   item 1: 0.189279 + 0.1 u    item 2: 0.094640 + 1.0 u    item 3: 0.031547 + 3.0 u
    # item 1 wins while u < 0.054390, i.e. w < 3.1147 (then item 3); item 2 never wins.
    cand = np.array([[0, 1, 2, 3]])
    assert diversify(cand, P4, VEC, 2, 3.11).tolist() == [[0, 1]]
    assert diversify(cand, P4, VEC, 2, 3.12).tolist() == [[0, 3]]
    assert diversify(cand, P4, VEC, 4, 3.12).tolist()[0][:2] == [0, 3]  # the same whatever k
    # scale divides the distances: weight 6.2 at scale 2 is weight 3.1 at scale 1
    assert diversify(cand, P4, VEC, 2, 6.2, scale=2.0).tolist() == [[0, 1]]
    assert diversify(cand, P4, VEC, 2, 6.3, scale=2.0).tolist() == [[0, 3]]


def test_third_slot_counts_distance_to_every_chosen_item():
    # u = 0.1 (w = 4.5 / G):
    #   slot 2: item 1: 0.189279 + 0.01 = 0.199    item 2: 0.094640 + 0.1 = 0.195    item 3: 0.031547 + 0.3 = 0.332
    #   slot 3: item 1: 0.3 / 2 + 0.1 * (0.1 + 2.9) = 0.45    item 2: 0.15 / 2 + 0.1 * (1.0 + 2.0) = 0.375
    cand = np.array([[0, 1, 2, 3]])
    assert diversify(cand, P4, VEC, 3, 4.5 / G4).tolist() == [[0, 3, 1]]


def test_longer_lists_start_with_the_shorter_list():
    rng = np.random.default_rng(2)
    vec = rng.uniform(size=(80, 3))
    cand = np.tile(np.arange(80), (6, 1))
    scores = rng.normal(size=(6, 80)) * 3
    for w in (0.1, 0.5, 2.0):
        short = diversify(cand, scores, vec, 10, w, 0.5)
        long = diversify(cand, scores, vec, 20, w, 0.5)
        assert np.array_equal(long[:, :10], short)
        assert np.array_equal(diversify(cand, scores, vec, 5, w, 0.5), short[:, :5])


def test_accuracy_counts_relative_to_the_plain_list():
    # Row 2 holds the same four items at half the probability (the other half spread thinly over
    # 1000 items that sit on item 0, so they never win slot 2): its expected gain about halves, and
    # so does the price of spread; the choices follow row 1's (switching between w = 3.0 and 3.2).
    # Priced in absolute terms, row 2 would switch at half the weight.
    vec = np.concatenate([VEC, np.zeros((1000, 1))])
    p1 = np.concatenate([[0.5, 0.3, 0.15, 0.05], np.full(1000, 1e-12)])
    p2 = np.concatenate([[0.25, 0.15, 0.075, 0.025], np.full(1000, 0.0005)])
    cand = np.tile(np.arange(1004), (2, 1))
    scores = np.log(np.stack([p1, p2]))
    assert diversify(cand, scores, vec, 2, 3.0).tolist() == [[0, 1], [0, 1]]
    assert diversify(cand, scores, vec, 2, 3.2).tolist() == [[0, 3], [0, 3]]


def test_padding_and_unchoosable_candidates():
    cand = np.array([[2, -1, 0, 1], [-1, -1, 3, -1]])
    scores = np.array([[0.0, 5.0, -np.inf, 1.0], [0.0, 0.0, 0.0, 0.0]])
    out = diversify(cand, scores, VEC, 3, 1.0)
    assert out.tolist() == [[3, 0, -1], [2, -1, -1]]
    assert diversify(cand[:0], scores[:0], VEC, 3, 1.0).shape == (0, 3)


def test_large_weight_spreads_the_list():
    rng = np.random.default_rng(0)
    vec = rng.uniform(size=(300, 4))
    cand = np.tile(np.arange(300), (5, 1))
    scores = -((vec[None, :, :] - vec[:5, None, :]) ** 2).sum(-1) * 50  # each row: items near item r
    plain = np.take_along_axis(cand, diversify(cand, scores, vec, 10, 0.0), 1)
    spread = np.take_along_axis(cand, diversify(cand, scores, vec, 10, 1.0, typical_distance(vec)), 1)
    assert (plain[:, 0] == spread[:, 0]).all()  # the most probable item stays first
    assert metrics.intra_list_diversity(spread, vec, 10) > 2 * metrics.intra_list_diversity(plain, vec, 10)


def test_typical_distance():
    assert typical_distance(np.array([[0.0, 0.0], [3.0, 4.0]])) == pytest.approx(5.0)
    assert typical_distance(np.zeros((1, 3))) == 1.0
    assert typical_distance(np.zeros((5, 3))) == 1.0  # all equal: no zero scale
    v = np.random.default_rng(1).normal(size=(100, 3))
    assert typical_distance(v) == typical_distance(v)


def test_bad_arguments():
    with pytest.raises(ValueError, match="same"):
        diversify(np.zeros((2, 3), np.int64), np.zeros((2, 4)), VEC, 2, 0.1)
    with pytest.raises(ValueError, match=">= 0"):
        diversify(np.zeros((2, 3), np.int64), np.zeros((2, 3)), VEC, 2, -0.1)


def test_calibrate_scale_recovers_the_sharpness_of_the_real_distribution():
    rng = np.random.default_rng(0)
    scores = rng.normal(size=(4000, 30))
    p = np.exp(2.0 * scores)
    p /= p.sum(axis=1, keepdims=True)
    target = (p.cumsum(axis=1) > rng.uniform(size=(4000, 1))).argmax(axis=1)
    hits = np.arange(30)[None, :] == target[:, None]
    assert calibrate_scale(scores, hits) == pytest.approx(2.0, rel=0.15)
    # flatter truth, flatter scale; -inf candidates and rows without a hit are ignored
    q = np.exp(0.5 * scores)
    q /= q.sum(axis=1, keepdims=True)
    t2 = (q.cumsum(axis=1) > rng.uniform(size=(4000, 1))).argmax(axis=1)
    h2 = np.arange(30)[None, :] == t2[:, None]
    padded = np.concatenate([scores, np.full((4000, 5), -np.inf)], axis=1)
    h2 = np.concatenate([h2, np.zeros((4000, 5), bool)], axis=1)
    h2[:100] = False
    assert calibrate_scale(padded, h2) == pytest.approx(0.5, rel=0.15)


def test_calibrate_scale_of_scores_that_point_the_wrong_way_is_the_low_end():
    scores = np.tile(np.arange(10.0), (50, 1))
    hits = np.zeros((50, 10), bool)
    hits[:, 0] = True  # the target is always the lowest-scored candidate: the scores carry no help
    assert calibrate_scale(scores, hits) == pytest.approx(1e-4, rel=1e-3)
    hits[:, 0], hits[:, 9] = False, True  # always the highest: the sharper the better, until the
    assert calibrate_scale(scores, hits) > 30  # likelihood is 1 to double precision (a gap of 1 at a = 37)


def test_calibrate_scale_without_evidence_is_one():
    assert calibrate_scale(np.zeros((3, 4)), np.zeros((3, 4), bool)) == 1.0
    with pytest.raises(ValueError, match="same"):
        calibrate_scale(np.zeros((3, 4)), np.zeros((3, 5), bool))
