"""Each baseline on a tiny dataset whose answer is known; fit reads only the training part."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from whatnext.config import Config
from whatnext.data import build_dataset
from whatnext.errors import DataError
from whatnext.evaluation import baselines
from whatnext.evaluation.baselines import (
    BASELINES,
    MarkovBaseline,
    NeighboursBaseline,
    PopularBaseline,
    RandomBaseline,
    last_items,
    rank_scores,
)
from whatnext.evaluation.protocol import Recommender

PLANT = 9  # every user's last two events (the validation and test targets)


def events(seqs: dict[int, list[int]]) -> pd.DataFrame:
    rows = [(u, item, t) for u, seq in seqs.items() for t, item in enumerate(seq)]
    return pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])


def planted():
    """Training: u1 1 2 3 1 2, u2 1 2 3, u3 2 3; then item 9 twice for everyone.

    Training counts: item 1: 3, item 2: 4, item 3: 3, item 9: 0 (it would be the most
    played, 6 plays, if the held-out events leaked). Transitions: 1->2 x3, 2->3 x3, 3->1 x1.
    """
    seqs = {1: [1, 2, 3, 1, 2, PLANT, PLANT], 2: [1, 2, 3, PLANT, PLANT], 3: [2, 3, PLANT, PLANT]}
    return build_dataset(events(seqs), None, Config())


def idx(ds, *ids):
    return ds.catalogue.index_of(list(ids)).tolist()


def ids(ds, rec):
    return [[ds.catalogue.ids[i] if i >= 0 else None for i in row] for row in np.asarray(rec)]


def test_registry_names_and_protocol():
    assert list(BASELINES) == ["random", "popular", "markov", "neighbours", "lstm", "sasrec"]
    for name, cls in BASELINES.items():
        model = cls()
        assert model.name == name
        assert isinstance(model, Recommender)


def test_rank_scores_pads_and_excludes():
    scores = np.array([[0.1, 0.7, 0.7], [0.3, 0.2, 0.1]])
    assert rank_scores(scores.copy(), 5).tolist() == [[1, 2, 0, -1, -1], [0, 1, 2, -1, -1]]
    assert rank_scores(scores.copy(), 2, [np.array([1]), np.array([], dtype=np.int64)]).tolist() == [[2, 0], [0, 1]]
    assert rank_scores(scores.copy(), 2, [np.array([0, 1, 2]), np.array([0, 1])]).tolist() == [[-1, -1], [2, -1]]


def test_last_items():
    hist = [np.array([4, 5]), np.array([], dtype=np.int64), np.array([7])]
    assert last_items(hist).tolist() == [5, -1, 7]
    assert last_items([]).tolist() == []


def test_popular_ranks_training_counts_and_never_learns_held_out_events():
    ds = planted()
    model = PopularBaseline()
    model.fit(ds)
    assert model.counts.tolist() == [3, 4, 3, 0]  # items 1, 2, 3, 9
    # ties (items 1 and 3 at 3 plays) go to the smaller index; item 9 comes last
    rec = model.recommend([np.array([], dtype=np.int64)], 4)
    assert ids(ds, rec) == [["2", "1", "3", "9"]]
    rec = model.recommend([np.array(idx(ds, 1, 2))] * 2, 3, [np.array(idx(ds, 1, 2)), np.array([], dtype=np.int64)])
    assert ids(ds, rec) == [["3", "9", None], ["2", "1", "3"]]


def test_markov_counts_only_training_transitions():
    ds = planted()
    model = MarkovBaseline()
    model.fit(ds)
    i1, i2, i3, i9 = idx(ds, 1, 2, 3, 9)
    assert model.transitions(i1) == {i2: 3}
    assert model.transitions(i2) == {i3: 3}
    assert model.transitions(i3) == {i1: 1}
    assert model.transitions(i9) == {}
    assert i9 not in model.cols  # no transition into the held-out item either
    assert model.vals.sum() == 7  # 4 + 2 + 1 training transitions


def test_markov_scores_last_item_row_then_popularity():
    ds = planted()
    model = MarkovBaseline()
    model.fit(ds)
    hist = [np.array(idx(ds, 2, 3)), np.array(idx(ds, 3, 1)), np.array(idx(ds, 9)), np.array([], dtype=np.int64)]
    rec = model.recommend(hist, 4)
    assert ids(ds, rec) == [
        ["1", "2", "3", "9"],  # after 3: 3->1 once, then popularity 2 (4), 3 (3, tie with 1 broken by index), 9
        ["2", "1", "3", "9"],  # after 1: 1->2, then popularity
        ["2", "1", "3", "9"],  # item 9 has no training transitions: popularity only
        ["2", "1", "3", "9"],  # empty history: popularity only
    ]
    rec = model.recommend(hist[:1], 4, [hist[0]])
    assert ids(ds, rec) == [["1", "9", None, None]]


def test_markov_transition_count_beats_popularity():
    # 5 -> 6 is seen twice, 5 -> 7 once; 7 is far more popular overall
    seqs = {1: [5, 6, 7, 7, 0, 0], 2: [5, 6, 7, 7, 0, 0], 3: [5, 7, 7, 7, 0, 0], 4: [7, 7, 7, 7, 0, 0]}
    ds = build_dataset(events(seqs), None, Config())
    model = MarkovBaseline()
    model.fit(ds)
    rec = model.recommend([np.array(idx(ds, 5))], 3)
    assert ids(ds, rec) == [["6", "7", "5"]]


def test_random_is_seeded_deterministic_and_respects_exclusion():
    ds = planted()
    model = RandomBaseline(seed=1)
    model.fit(ds)
    hist = [np.array(idx(ds, 1)), np.array(idx(ds, 2, 3)), np.array([], dtype=np.int64)] * 50
    a = model.recommend(hist, 6, hist)
    b = model.recommend(hist, 6, hist)
    np.testing.assert_array_equal(a, b)
    for h, row in zip(hist, a):
        kept = row[row >= 0]
        assert len(kept) == 4 - len(h) and not set(kept) & set(h.tolist())
        assert (row[len(kept):] == -1).all()
    other = RandomBaseline(seed=2)
    other.fit(ds)
    assert not np.array_equal(other.recommend(hist, 6, hist), a)


def test_random_is_roughly_uniform():
    ds = planted()
    model = RandomBaseline(seed=0)
    model.fit(ds)
    rec = model.recommend([np.array([0])] * 4000, 1)
    counts = np.bincount(rec[:, 0], minlength=4)
    assert ((counts > 850) & (counts < 1150)).all(), counts


def neighbour_data():
    """Five items on a line at 0, 1, 2, 4, 8 (normalised: 0, 1/8, 1/4, 1/2, 1: exact in float)."""
    items = pd.DataFrame({"item_id": [1, 2, 3, 4, 5], "f": [0.0, 1.0, 2.0, 4.0, 8.0]})
    seqs = {1: [1, 2, 3, 4, 5], 2: [3, 3, 1, 2], 3: [5, 4, 2, 1]}
    return build_dataset(events(seqs), items, Config())


def test_neighbours_of_last_item_with_ties_to_smaller_index():
    ds = neighbour_data()
    model = NeighboursBaseline()
    model.fit(ds)
    # last item 3 (at 0.25): 2 at 0.125, then 1 and 4 both at 0.25 (1 first), then 5
    rec = model.recommend([np.array(idx(ds, 5, 3))], 4)
    assert ids(ds, rec) == [["2", "1", "4", "5"]]
    rec = model.recommend([np.array(idx(ds, 5, 3))], 4, [np.array(idx(ds, 5, 3))])
    assert ids(ds, rec) == [["2", "1", "4", None]]
    # the query item itself is never recommended, even when seen items are kept
    assert idx(ds, 3)[0] not in model.recommend([np.array(idx(ds, 3))], 5)[0]


def test_neighbours_empty_history_falls_back_to_popularity():
    ds = neighbour_data()
    model = NeighboursBaseline()
    model.fit(ds)
    # training counts (first 3, 2, 2 events): 1: 1, 2: 1, 3: 3, 4: 1, 5: 1
    rec = model.recommend([np.array([], dtype=np.int64), np.array(idx(ds, 1))], 3)
    assert ids(ds, rec) == [["3", "1", "2"], ["2", "3", "4"]]


def test_neighbours_needs_features_or_embeddings():
    ds = planted()
    with pytest.raises(DataError, match="no features"):
        NeighboursBaseline().fit(ds)
    assert baselines.available(ds) == ["random", "popular", "markov", "lstm", "sasrec"]
    emb = np.array([[0.0], [1.0], [3.0], [10.0]])  # items 1, 2, 3, 9
    assert "neighbours" in baselines.available(ds, emb)
    model = baselines.make("neighbours", ds, embeddings=emb)
    assert ids(ds, model.recommend([np.array(idx(ds, 2))], 3)) == [["1", "3", "9"]]
    with pytest.raises(ValueError):
        NeighboursBaseline(np.zeros((3, 1))).fit(ds)


def test_make_fits_and_rejects_unknown_names():
    ds = planted()
    for name in baselines.available(ds):
        model = baselines.make(name, ds)
        assert model.recommend([np.array([0])], 2).shape == (1, 2)
    with pytest.raises(ValueError, match="did you mean 'markov'"):
        baselines.make("markow", ds)
    with pytest.raises(RuntimeError, match="fit"):
        PopularBaseline().recommend([np.array([0])], 2)


def test_blocks_give_the_same_answer(monkeypatch):
    ds = planted()
    hist = [np.array(idx(ds, 1)), np.array(idx(ds, 3)), np.array([], dtype=np.int64), np.array(idx(ds, 2))]
    whole = {}
    for name in ("popular", "markov"):
        whole[name] = baselines.make(name, ds).recommend(hist, 3, hist)
    monkeypatch.setattr(baselines, "BLOCK_ELEMENTS", 4)  # one row per block
    for name in ("popular", "markov"):
        np.testing.assert_array_equal(baselines.make(name, ds).recommend(hist, 3, hist), whole[name])
