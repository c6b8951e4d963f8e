"""The leave-one-out protocol: hand-computed results, include_seen, determinism, no leaks."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from whatnext.config import Config
from whatnext.data import build_dataset
from whatnext.errors import DataError
from whatnext.evaluation import baselines, metrics
from whatnext.evaluation.protocol import Recommender, evaluate, split_inputs


def events(seqs: dict[int, list[int]]) -> pd.DataFrame:
    rows = [(u, item, t) for u, seq in seqs.items() for t, item in enumerate(seq)]
    return pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])


def small():
    """Three users; each line is training | valid target | test target.

    u1: 1 2 3 | 4 | 1      u2: 1 1 2 | 3 | 5      u3: 1 2 4 | 2 | 3
    Training counts: item 1: 4, 2: 3, 3: 1, 4: 1, 5: 0 (9 events), so the popular ranking is 1 2 3 4 5.
    """
    seqs = {1: [1, 2, 3, 4, 1], 2: [1, 1, 2, 3, 5], 3: [1, 2, 4, 2, 3]}
    ds = build_dataset(events(seqs), None, Config())
    assert ds.catalogue.ids.tolist() == ["1", "2", "3", "4", "5"]  # index = id - 1
    return ds


def popular(ds):
    return baselines.make("popular", ds)


def test_split_inputs_are_the_events_before_each_target():
    ds = small()
    users, hists, targets = split_inputs(ds, "valid")
    assert users.tolist() == [0, 1, 2]
    assert [h.tolist() for h in hists] == [[0, 1, 2], [0, 0, 1], [0, 1, 3]]
    assert targets.tolist() == [3, 2, 1]
    users, hists, targets = split_inputs(ds, "test")
    assert [h.tolist() for h in hists] == [[0, 1, 2, 3], [0, 0, 1, 2], [0, 1, 3, 1]]  # valid target included
    assert targets.tolist() == [0, 4, 2]
    with pytest.raises(ValueError):
        split_inputs(ds, "train")


def test_valid_split_with_seen_items_kept():
    ds = small()
    r = evaluate(popular(ds), ds, "valid", ks=(2, 3), include_seen=True)
    # every list is 1 2 3 4 5; targets 4, 3, 2 sit at ranks 4, 3, 2
    assert r["eval/users"] == 3 and r["eval/split"] == "valid" and r["eval/include_seen"] is True
    assert r["eval/model"] == "popular"
    assert r["eval/hr@2"] == pytest.approx(1 / 3)
    assert r["eval/hr@3"] == pytest.approx(2 / 3)
    assert r["eval/ndcg@3"] == pytest.approx((1 / math.log2(3) + 1 / 2) / 3)
    assert r["eval/mrr@3"] == pytest.approx((1 / 2 + 1 / 3) / 3)
    assert r["eval/coverage@2"] == pytest.approx(2 / 5)
    # novelty@2 of [1, 2]: -log2(4/9) and -log2(3/9)
    assert r["eval/novelty@2"] == pytest.approx((math.log2(9 / 4) + math.log2(3)) / 2)


def test_valid_split_with_seen_items_excluded():
    ds = small()
    r = evaluate(popular(ds), ds, "valid", ks=(1, 3), include_seen=False)
    # u1 ranks [4, 5] (4 hit at 1), u2 [3, 4, 5] (3 hit at 1), u3 [3, 5] (target 2 already played: miss)
    assert r["eval/include_seen"] is False
    assert r["eval/hr@1"] == pytest.approx(2 / 3)
    assert r["eval/ndcg@3"] == pytest.approx(2 / 3)
    assert r["eval/coverage@1"] == pytest.approx(2 / 5)  # {4, 3}
    assert r["eval/coverage@3"] == pytest.approx(3 / 5)  # {3, 4, 5}


def test_test_split_both_ways():
    ds = small()
    seen = evaluate(popular(ds), ds, "test", ks=(3,), include_seen=True)
    # targets 1, 5, 3 at ranks 1, 5, 3 of 1 2 3 4 5
    assert seen["eval/hr@3"] == pytest.approx(2 / 3)
    assert seen["eval/ndcg@3"] == pytest.approx((1 + 1 / 2) / 3)
    unseen = evaluate(popular(ds), ds, "test", ks=(2,), include_seen=False)
    # u1 ranks [5] (target 1 already played), u2 [4, 5] (5 at 2), u3 [3, 5] (3 at 1)
    assert unseen["eval/hr@2"] == pytest.approx(2 / 3)
    assert unseen["eval/ndcg@2"] == pytest.approx((1 / math.log2(3) + 1) / 3)
    assert unseen["eval/mrr@2"] == pytest.approx((1 / 2 + 1) / 3)


def test_keys_and_ild_only_with_embeddings():
    ds = small()
    r = evaluate(popular(ds), ds, "valid", ks=(2, 1))
    assert [k for k in r if "@" in k] == [
        "eval/hr@1", "eval/ndcg@1", "eval/mrr@1", "eval/coverage@1", "eval/novelty@1",
        "eval/hr@2", "eval/ndcg@2", "eval/mrr@2", "eval/coverage@2", "eval/novelty@2",
    ]
    emb = np.arange(5, dtype=np.float64)[:, None] ** 2  # 0 1 4 9 16
    r = evaluate(popular(ds), ds, "valid", ks=(2,), include_seen=True, embeddings=emb)
    assert r["eval/ild@2"] == pytest.approx(1.0)  # every list starts [1, 2]: distance 1
    with pytest.raises(ValueError):
        evaluate(popular(ds), ds, "valid", embeddings=np.zeros((4, 1)))
    with pytest.raises(ValueError):
        evaluate(popular(ds), ds, "valid", ks=(0,))


def random_dataset(seed: int = 0, n_users: int = 40, n_items: int = 30):
    rng = np.random.default_rng(seed)
    n = rng.integers(2, 15, size=n_users)
    ev = pd.DataFrame({
        "user_id": np.repeat(np.arange(n_users), n),
        "item_id": rng.integers(0, n_items, size=n.sum()),
        "timestamp": rng.integers(0, 5, size=n.sum()),  # many equal times: file order decides
    })
    items = pd.DataFrame({"item_id": np.arange(n_items), "a": rng.random(n_items), "b": rng.random(n_items)})
    return build_dataset(ev, items, Config())


def test_deterministic_across_runs_and_batch_sizes():
    ds = random_dataset()
    for name in baselines.available(ds):
        # each model trained once (the learned ones take seconds), then asked every split and protocol
        first, again = baselines.make(name, ds, seed=3), baselines.make(name, ds, seed=3)
        for split in ("valid", "test"):
            for seen in (True, False):
                a = evaluate(first, ds, split, include_seen=seen, embeddings=ds.catalogue.features)
                b = evaluate(again, ds, split, include_seen=seen, embeddings=ds.catalogue.features)
                assert a == b
                if name != "random":  # random draws depend on the batch asked, by design
                    c = evaluate(first, ds, split, include_seen=seen, embeddings=ds.catalogue.features, batch_rows=7)
                    assert c == a


class Spy:
    """Records what fit sees and what recommend is asked; recommends the most recent items."""

    name = "spy"

    def fit(self, dataset):
        h = dataset.histories
        self.train_items = set(h.items[h.train_mask()].tolist()) | set(h.items[h.train_positions()].tolist())
        self.train_items |= {int(i) for u in range(len(h)) for i in h.of(u, "train")}
        self.popularity = dataset.popularity()
        self.n_items = len(dataset.catalogue)

    def recommend(self, histories, k, exclude=None):
        self.asked = [h.copy() for h in histories]
        self.excluded = None if exclude is None else [e.copy() for e in exclude]
        out = np.full((len(histories), k), -1, dtype=np.int64)
        for r, h in enumerate(histories):
            recent = [i for i in dict.fromkeys(h[::-1].tolist()) if exclude is None or i not in set(exclude[r].tolist())]
            out[r, : min(k, len(recent))] = recent[:k]
        return out


def test_the_split_leaks_nothing():
    # every user ends with a unique validation item then a unique test item
    rng = np.random.default_rng(1)
    seqs = {u: rng.integers(0, 10, size=int(rng.integers(1, 6))).tolist() + [100 + u, 200 + u] for u in range(12)}
    ds = build_dataset(events(seqs), None, Config())
    valid_items = set(ds.catalogue.index_of([100 + u for u in seqs]).tolist())
    test_items = set(ds.catalogue.index_of([200 + u for u in seqs]).tolist())
    spy = Spy()
    spy.fit(ds)
    assert not spy.train_items & (valid_items | test_items)
    assert spy.popularity[sorted(valid_items | test_items)].sum() == 0
    for name in ("popular", "markov"):
        model = baselines.make(name, ds)
        # held-out items are never learned: they rank below every item played in training
        rec = model.recommend([np.array([], dtype=np.int64)], 10)[0]
        assert not set(rec.tolist()) & (valid_items | test_items)

    r = evaluate(spy, ds, "valid", ks=(1,), include_seen=False)
    asked = set(np.concatenate(spy.asked).tolist())
    assert not asked & (valid_items | test_items)
    assert all(np.array_equal(a, e) for a, e in zip(spy.asked, spy.excluded))
    assert r["eval/hr@1"] == 0.0

    r = evaluate(spy, ds, "test", ks=(1,), include_seen=True)
    asked = set(np.concatenate(spy.asked).tolist())
    assert valid_items <= asked and not asked & test_items
    assert spy.excluded is None
    assert r["eval/hr@1"] == 0.0  # the spy repeats the last (validation) item: never the test target


def test_include_seen_lets_a_repeat_be_hit():
    # the test target repeats the validation target: only reachable when seen items stay in the ranking
    seqs = {u: [1, 2, 3, 3] for u in range(1, 5)}
    ds = build_dataset(events(seqs), None, Config())
    spy = Spy()
    spy.fit(ds)
    assert evaluate(spy, ds, "test", ks=(1,), include_seen=True)["eval/hr@1"] == 1.0
    assert evaluate(spy, ds, "test", ks=(1,), include_seen=False)["eval/hr@1"] == 0.0


class Bad:
    name = "bad"

    def __init__(self, answer):
        self.answer = answer

    def fit(self, dataset):
        pass

    def recommend(self, histories, k, exclude=None):
        return self.answer(histories, k)


def test_a_recommender_breaking_the_contract_is_named():
    ds = small()
    n = 3
    cases = {
        "shape": lambda h, k: np.zeros((n, k - 1), dtype=np.int64),
        "integer": lambda h, k: np.zeros((n, k)),
        "outside": lambda h, k: np.full((n, k), 7),
        "twice": lambda h, k: np.tile([4, 4] + [-1] * (k - 2), (n, 1)),
        "excluded": lambda h, k: np.tile([0] + [-1] * (k - 1), (n, 1)),  # item 1 is in every history
    }
    for match, answer in cases.items():
        with pytest.raises(ValueError, match=match):
            evaluate(Bad(answer), ds, "valid", ks=(3,))
    # the same already played item is fine when seen items are kept
    evaluate(Bad(cases["excluded"]), ds, "valid", ks=(3,), include_seen=True)


def test_protocol_and_empty_split():
    assert isinstance(Spy(), Recommender)
    assert not isinstance(object(), Recommender)
    ds = build_dataset(events({1: [1, 2], 2: [2, 3]}), None, Config())
    with pytest.raises(DataError, match="no user has a valid target"):
        evaluate(popular(ds), ds, "valid")
    assert evaluate(popular(ds), ds, "test", ks=(1,))["eval/users"] == 2


def test_metrics_agree_with_evaluate():
    ds = random_dataset(seed=5)
    model = baselines.make("markov", ds)
    _, hists, targets = split_inputs(ds, "test")
    ranked = model.recommend(hists, 10, hists)
    r = evaluate(model, ds, "test", ks=(10,), embeddings=ds.catalogue.features)
    assert r["eval/ndcg@10"] == metrics.ndcg(ranked, targets, 10)
    assert r["eval/ild@10"] == metrics.intra_list_diversity(ranked, ds.catalogue.features, 10)
    assert r["eval/novelty@10"] == metrics.novelty(ranked, ds.popularity(), 10)
