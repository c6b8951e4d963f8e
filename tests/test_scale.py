"""Scaling (#12): the sampled softmax with its logQ correction, faiss search, sampled validation,
the device setting, and the memory of loading a million plays."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import core_helpers as ch
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import one_line_error

from whatnext import checkpoints
from whatnext.config import load_config
from whatnext.errors import ConfigError
from whatnext.rl import algorithms, environment
from whatnext.rl.agent import Agent
from whatnext.rl.algorithms import NegativeSampler, negatives_for, sampled_cross_entropy
from whatnext.rl.batch import make_batch
from whatnext.rl.callbacks import Callback
from whatnext.rl.state import State
from whatnext.search import ExactIndex, FaissIndex, build_index, recall_at

# ---------------------------------------------------------------- the sampled softmax


def test_sampled_loss_is_the_full_softmax_when_the_candidates_are_the_whole_catalogue() -> None:
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(64, 30, generator=g, dtype=torch.float64)
    targets = torch.randint(0, 30, (64,), generator=g)
    full = F.cross_entropy(logits, targets)
    assert torch.allclose(sampled_cross_entropy(logits, targets, torch.zeros(30, dtype=torch.float64)), full)
    # through the sampler: with far more draws than items every item is a candidate, pi = 1
    counts = np.random.default_rng(0).integers(0, 50, 30)
    sampler = NegativeSampler(counts, 0.75, 1_000_000)
    items, log_pi, pos = sampler.candidates(targets.numpy(), np.random.default_rng(1))
    assert np.array_equal(items, np.arange(30)) and np.array_equal(pos, targets.numpy())
    assert np.abs(log_pi).max() < 1e-9
    loss = sampled_cross_entropy(logits[:, items], torch.from_numpy(pos), torch.from_numpy(log_pi))
    assert torch.allclose(loss, full, atol=1e-9)


def test_candidate_logits_are_the_actor_logits_less_log_pi_with_the_same_gradients(tmp_path: Path) -> None:
    ds = ch.dataset()
    torch.manual_seed(0)
    actor = Agent(State(ds), ch.config(tmp_path, "hybrid")).actor
    with torch.no_grad():
        actor.log_scale.fill_(0.4)
    g = torch.Generator().manual_seed(1)
    proto = torch.randn(20, actor.items.dim, generator=g, requires_grad=True)
    e = torch.randn(12, actor.items.dim, generator=g, requires_grad=True)
    log_pi = -torch.rand(12, generator=g)
    targets = torch.randint(0, 12, (20,), generator=g)
    grads = []
    for f in (lambda: actor.logits(proto, e) - log_pi, lambda: algorithms.candidate_logits(actor, proto, e, log_pi)):
        logits = f()
        grads.append([logits.detach().clone()])
        F.cross_entropy(logits, targets).backward()
        grads[-1] += [t.grad.clone() for t in (proto, e, actor.log_scale)]
        proto.grad = e.grad = actor.log_scale.grad = None
    for a, b in zip(*grads):
        assert torch.allclose(a, b, rtol=1e-5, atol=1e-5)


def test_training_step_with_every_item_as_a_negative_equals_the_full_softmax(tmp_path: Path,
                                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    ds = ch.dataset()
    cfg = ch.config(tmp_path, "hybrid", model={"rerank": 5})
    pos = algorithms.positions_for(ds, "hybrid", cfg.model.window)
    batch = make_batch(ds, pos[: ch.BATCH], cfg.model.window)
    losses = []
    for forced in (None, 1_000_000):  # None: the full softmax; a million draws over 40 items: all of them
        monkeypatch.setattr(algorithms, "negatives_for", lambda cfg, n, f=forced: f)
        torch.manual_seed(3)
        agent = Agent(State(ds), cfg)
        agent.wake()
        m = algorithms.train_hybrid(agent, batch, np.random.default_rng(0), torch.Generator().manual_seed(0))
        losses.append(m["train/ce_loss"])
    assert losses[0] == pytest.approx(losses[1], rel=1e-6)


def _fit_free_logits(p: np.ndarray, q_counts: np.ndarray, n_neg: int, correct: bool, steps: int = 1500) -> np.ndarray:
    """Fit one free logit per item to targets drawn from ``p`` with the sampled softmax."""
    n = len(p)
    sampler = NegativeSampler(q_counts, 1.0, n_neg)
    theta = torch.zeros(n, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.Adam([theta], lr=0.05)
    rng = np.random.default_rng(0)
    for _ in range(steps):
        targets = rng.choice(n, size=4, p=p)
        items, log_pi, pos = sampler.candidates(targets, rng)
        logits = theta[torch.from_numpy(items)].expand(len(targets), -1)
        lp = torch.from_numpy(log_pi) if correct else torch.zeros(len(items), dtype=torch.float64)
        loss = sampled_cross_entropy(logits, torch.from_numpy(pos), lp)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        return torch.softmax(theta, 0).numpy()


def test_logq_correction_recovers_the_true_distribution() -> None:
    """Known answer: free logits trained on targets from p must end at softmax = p. The popular
    items are always among the candidates and the rare ones seldom; without the correction the
    rare ones are pushed down too rarely and end up with far too much mass."""
    n = 40
    p = 1.0 / np.arange(1, n + 1) ** 1.2
    p /= p.sum()
    counts = np.round(p * 10_000)  # the sampler's popularity: the same distribution
    fitted = _fit_free_logits(p, counts, 4, correct=True)
    biased = _fit_free_logits(p, counts, 4, correct=False)
    tv = 0.5 * np.abs(fitted - p).sum()
    tv_biased = 0.5 * np.abs(biased - p).sum()
    assert tv < 0.08, tv  # sampled softmax is consistent, not unbiased at every set size: 0.057 here
    assert tv_biased > 5 * tv, (tv, tv_biased)  # 0.46 without the correction


def test_log_inclusion_on_a_toy_case() -> None:
    # two items, p = (1, 0) for targets, q = (0.5, 0.5) for the two negatives (power 0, equal counts)
    sampler = NegativeSampler(np.array([4.0, 0.0]), 0.0, 2)
    sampler.p = np.array([1.0, 0.0])
    assert np.allclose(np.exp(sampler.log_inclusion(np.array([0, 1]), 1)), [1.0, 0.75])


def test_negatives_auto_resolves_by_catalogue_size() -> None:
    cfg = load_config(None)
    assert negatives_for(cfg, 2000) is None
    assert negatives_for(cfg, algorithms.AUTO_FULL_MAX + 1) == algorithms.AUTO_NEGATIVES
    cfg = load_config(None, {"train.negatives": 100})
    assert negatives_for(cfg, 2000) == 100 and negatives_for(cfg, 100) is None


class StopAt(Callback):
    def __init__(self, k: int) -> None:
        self.k = k

    def on_step(self, step: int, metrics: dict[str, float]) -> bool:
        return step >= self.k


def _final(run_dir: Path) -> dict[str, Any]:
    found = checkpoints.load_latest(run_dir)
    assert found is not None
    return found[1]


def test_sampled_training_is_deterministic_and_resumes_exactly(tmp_path: Path) -> None:
    ds = ch.dataset()
    n, k = 8, 3
    kw: dict[str, Any] = {"samples": n * ch.BATCH, "checkpoint_every": 4, "seed": 5, "negatives": 6,
                          "model": {"rerank": 4}}
    runs = {}
    for name in ("a", "b"):
        cfg = ch.config(tmp_path, "hybrid", run=name, **kw)
        cfg.model.dropout = 0.2
        assert environment.train(cfg, ds)["steps"] == n
        runs[name] = _final(cfg.run_dir)
    split = ch.config(tmp_path, "hybrid", run="split", **kw)
    split.model.dropout = 0.2
    assert environment.train(split, ds, callback=StopAt(k))["steps"] == k
    assert environment.train(split, ds, resume=True)["steps"] == n
    runs["split"] = _final(split.run_dir)
    for name in ("b", "split"):
        assert ch.state_equal(runs["a"]["actor"], runs[name]["actor"])
        assert ch.state_equal(runs["a"]["critic"], runs[name]["critic"])
    # and the negatives did change the learning: the full softmax ends elsewhere
    full = ch.config(tmp_path, "hybrid", run="full", **{**kw, "negatives": "auto"})
    full.model.dropout = 0.2
    environment.train(full, ds)
    assert not ch.state_equal(runs["a"]["actor"], _final(full.run_dir)["actor"])


# ---------------------------------------------------------------- search


def test_faiss_exact_agrees_with_exact_search() -> None:
    rng = np.random.default_rng(0)
    v = rng.random((3000, 12)).astype(np.float32)
    v[10] = v[11]  # a tie: the smaller index first in both
    q = np.vstack([rng.random((60, 12)), v[10:11] + 0.01]).astype(np.float32)
    ex = [rng.choice(3000, int(rng.integers(0, 40)), replace=False) for _ in range(len(q))]
    for exclude in (None, ex):
        a = ExactIndex(v).search(q, 15, exclude)
        b = FaissIndex(v, "exact").search(q, 15, exclude)
        assert np.array_equal(a[0], b[0])
        assert np.allclose(a[1], b[1], rtol=1e-12, atol=1e-12)
    # k beyond what remains: padded the same way
    small = v[:5]
    a = ExactIndex(small).search(q[:3], 8, [np.array([0, 1])] * 3)
    b = FaissIndex(small, "exact").search(q[:3], 8, [np.array([0, 1])] * 3)
    assert np.array_equal(a[0], b[0]) and np.array_equal(np.isinf(a[1]), np.isinf(b[1]))


@pytest.mark.parametrize("kind", ["ivf", "hnsw"])
def test_approximate_search_reaches_the_recall_it_claims(kind: str) -> None:
    rng = np.random.default_rng(1)
    centres = rng.normal(size=(50, 16))
    v = (centres[rng.integers(0, 50, 20_000)] + 0.3 * rng.normal(size=(20_000, 16))).astype(np.float32)
    index = FaissIndex(v, kind, seed=0)
    assert index.recall >= 0.95 and index.param >= 1
    # fresh queries of the same kind as the tuning sample, measured against exact search
    picked = v[rng.choice(len(v), 400, replace=False)]
    queries = (picked + 0.5 * v.std(0) * rng.normal(size=picked.shape)).astype(np.float32)
    truth, _ = ExactIndex(v).search(queries, 10)
    found, dist = index.search(queries, 10)
    assert recall_at(found, truth) >= 0.93
    assert np.all(np.diff(dist, axis=1) >= 0)  # true distances, nearest first
    # exclusions are honoured
    ex = [found[i, :3] for i in range(len(found))]
    again, _ = index.search(queries, 10, ex)
    assert not (again[:, :, None] == np.stack(ex)[:, None, :]).any()


def test_auto_index_is_exact_for_small_catalogues() -> None:
    v = np.random.default_rng(0).random((100, 4)).astype(np.float32)
    assert isinstance(build_index(v), ExactIndex)
    assert build_index(v, "exact").kind == "exact"
    with pytest.raises(ValueError):
        build_index(v, "annoy")


# ---------------------------------------------------------------- device and validation sample


def test_cuda_without_cuda_is_a_one_line_config_error(tmp_path: Path) -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    cfg = ch.config(tmp_path, "hybrid")
    cfg.train.device = "cuda"
    with pytest.raises(ConfigError) as e:
        Agent(State(ch.dataset()), cfg)
    assert "train.device" in one_line_error(e.value)
    cfg.train.device = "auto"
    assert Agent(State(ch.dataset()), cfg).device.type == "cpu"


def test_validation_samples_users_only_when_the_data_is_large() -> None:
    from whatnext.evaluation.validation import AUTO_MAX_USERS, sample_rows

    assert sample_rows("auto", AUTO_MAX_USERS, 0) is None
    assert sample_rows(0, 10**7, 0) is None
    rows = sample_rows(100, 1000, 3)
    assert len(rows) == 100 and np.all(np.diff(rows) > 0) and np.array_equal(rows, sample_rows(100, 1000, 3))
    assert len(sample_rows("auto", AUTO_MAX_USERS + 1, 0)) == AUTO_MAX_USERS


def test_sampled_validation_scores_the_sample(tmp_path: Path) -> None:
    from whatnext.evaluation.protocol import score_ranking, split_inputs
    from whatnext.evaluation.validation import validator

    ds = ch.dataset()
    cfg = ch.config(tmp_path, "hybrid")
    torch.manual_seed(0)
    agent = Agent(State(ds), cfg)
    agent.wake()
    full = validator(cfg, ds)(agent)
    cfg.eval.max_users = 10
    part = validator(cfg, ds)(agent)
    assert part["eval/users"] == 10 and full["eval/users"] == len(split_inputs(ds, "valid")[0])
    # the sample's figures are those of the same rows of the full ranking
    _, hists, _ = split_inputs(ds, "valid")
    from whatnext.evaluation.validation import sample_rows

    rows = sample_rows(10, len(hists), cfg.train.seed)
    ranked = agent.recommend([hists[i] for i in rows], 10, [hists[i] for i in rows])
    assert score_ranking(ranked, ds, "valid", [10], rows=rows)["eval/ndcg@10"] == pytest.approx(part["eval/ndcg@10"])


def test_lazy_adam_updates_only_the_rows_a_step_touched() -> None:
    from whatnext.rl.algorithms import LazyAdam, _clip

    torch.manual_seed(0)
    dense, sparse = torch.nn.Embedding(20, 4), torch.nn.Embedding(20, 4, sparse=True)
    sparse.weight.data.copy_(dense.weight.data)
    opt_d, opt_s = torch.optim.Adam(dense.parameters(), lr=0.1), LazyAdam(sparse.parameters(), lr=0.1)
    idx = torch.tensor([1, 3, 3, 7])
    for emb, opt in ((dense, opt_d), (sparse, opt_s)):
        (emb(idx) ** 2).sum().backward()
        _clip(list(emb.parameters()), 1.0)  # the sparse gradient's norm counts like the dense one's
        opt.step()
    # a first step: Adam moves only rows with a gradient, so the two agree exactly (up to rounding)
    assert torch.allclose(dense.weight, sparse.weight, atol=1e-6)
    before = sparse.weight.detach().clone()
    for _ in range(3):
        opt_s.zero_grad()
        (sparse(torch.tensor([2])) ** 2).sum().backward()
        opt_s.step()
    moved = (sparse.weight != before).any(1)
    assert moved.tolist() == [i == 2 for i in range(20)]
    assert set(opt_s.state_dict()["state"][0]) == {"step", "exp_avg", "exp_avg_sq"}  # Adam's layout
    # dense gradients: exactly torch's Adam
    a, b = torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)
    b.load_state_dict(a.state_dict())
    oa, ob = torch.optim.Adam(a.parameters(), lr=0.01), LazyAdam(b.parameters(), lr=0.01)
    x = torch.randn(5, 3)
    for m, o in ((a, oa), (b, ob)):
        for _ in range(3):
            o.zero_grad()
            m(x).pow(2).sum().backward()
            o.step()
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))


@pytest.mark.slow
def test_loading_a_million_plays_stays_within_its_memory_budget(tmp_path: Path) -> None:
    """1e6 plays (100,000 items, 20,000 users) read from Parquet: the peak of traced allocations
    (numpy and pandas buffers included) stays under 200 MB: ids become integer codes before any
    text is made, histories are one flat array with offsets. Measured: 109 MB (278 MB when every
    row's id was made a string first, which this bound would refuse)."""
    import sys
    import tracemalloc

    sys.path.insert(0, str(Path(__file__).parents[1] / "bench"))
    import scale  # the benchmark's generator

    from whatnext.data import load_dataset

    ev, it = scale.generate(tmp_path, 1_000_000)
    cfg = load_config(None, {"data.path": str(ev), "data.items_path": str(it)})
    tracemalloc.start()
    try:
        ds = load_dataset(cfg)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(ds.histories.items) == 1_000_000 and len(ds.catalogue) == 100_000
    assert ds.histories.items.dtype.itemsize <= 8 and len(ds.histories.offsets) == len(ds.histories) + 1
    assert peak < 200 << 20, f"peak {peak / 2**20:.0f} MB"


def test_an_approximate_index_is_tuned_on_the_agents_proto_actions(tmp_path: Path) -> None:
    cfg = ch.config(tmp_path, "hybrid")
    cfg.recommend.index = "hnsw"
    torch.manual_seed(0)
    agent = Agent(State(ch.dataset()), cfg)
    agent.ready()
    hists = [agent.state.histories.of(u, "train") for u in range(5)]
    assert not agent.state.index.tuned_on_queries  # tuned on perturbed items only, so far
    rec = agent.recommend(hists, 5, hists)
    index = agent.state.index
    assert isinstance(index, FaissIndex) and index.kind == "hnsw" and index.tuned_on_queries
    assert index.recall >= 0.95 and rec.shape == (5, 5)


def test_threads_auto_is_one_on_small_catalogues_and_every_core_on_large_ones() -> None:
    """``train.threads = "auto"`` keeps small data on one thread (the measured figures stay), uses torch's
    own count above the full-softmax threshold, and an explicit count wins either way."""
    from whatnext.config import Config
    from whatnext.rl.algorithms import AUTO_FULL_MAX, TORCH_THREADS, threads_for

    cfg = Config()
    assert cfg.train.threads == "auto"
    assert threads_for(cfg, 2_000) == 1
    assert threads_for(cfg, AUTO_FULL_MAX) == 1
    assert threads_for(cfg, AUTO_FULL_MAX + 1) == TORCH_THREADS >= 1
    assert threads_for(cfg, AUTO_FULL_MAX + 1, training=False) == 1  # answering one user: one thread
    cfg.train.threads = 2
    assert threads_for(cfg, 100) == 2 and threads_for(cfg, 10**6) == 2 == threads_for(cfg, 10**6, training=False)
    cfg.train.threads = 0
    assert threads_for(cfg, 10**6) == 0
