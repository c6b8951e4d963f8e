"""The ``sasrec`` baseline: SASRec trained with full cross-entropy at every position (the
transformer actor, no critic), in the baseline registry, cached as a run like the LSTM, and
better than popularity where the next item follows from the last one."""

from __future__ import annotations

from pathlib import Path

import core_helpers as ch
import numpy as np
import pandas as pd

from whatnext.config import Config
from whatnext.data import build_dataset
from whatnext.evaluation import baseline_runs
from whatnext.evaluation import baselines as bl
from whatnext.evaluation.protocol import evaluate

N_ITEMS = 50


def _cycle_dataset():
    """Every user walks the items in a cycle (i -> i + 1 mod N) from their own start: popularity is flat."""
    n_users, n_events = 50, 14
    start = np.arange(n_users) % N_ITEMS
    items = (start[:, None] + np.arange(n_events)[None, :]) % N_ITEMS
    events = pd.DataFrame({"user_id": np.repeat(np.arange(1, n_users + 1), n_events), "item_id": items.ravel(),
                           "timestamp": np.tile(np.arange(n_events) * 10 + 1000, n_users)})
    _, table = ch.frames(n_items=N_ITEMS)
    return build_dataset(events, table, Config(), source="cycle")


def _config(tmp_path: Path) -> Config:
    return ch.config(tmp_path, "hybrid", epochs=4, model={"embedding_dim": 16, "item_embedding": "learned"})


def test_fix_makes_a_full_softmax_transformer_without_critic(tmp_path: Path) -> None:
    cfg = bl.SASRecBaseline.fix(_config(tmp_path))
    assert (cfg.model.name, cfg.model.num_layers, cfg.model.heads, cfg.model.hidden_size) == ("transformer", 2, 1, 16)
    assert (cfg.train.rl_weight, cfg.model.rerank, cfg.train.algorithm) == (0.0, 0, "hybrid")
    from whatnext.rl.algorithms import negatives_for

    assert negatives_for(cfg, 10**7) is None  # the full softmax even over a huge catalogue


def test_sasrec_beats_popularity_on_a_sequential_dataset(tmp_path: Path) -> None:
    ds = _cycle_dataset()
    cfg = _config(tmp_path)
    sasrec = bl.make("sasrec", ds, seed=0, config=cfg)
    assert sasrec.name == "sasrec" and type(sasrec.agent.actor).__name__ == "TransformerAgent"
    popular = bl.make("popular", ds)
    for seen in (False, True):
        s = evaluate(sasrec, ds, "test", (5,), include_seen=seen)
        p = evaluate(popular, ds, "test", (5,), include_seen=seen)
        assert s["eval/hr@5"] > 0.8 and s["eval/ndcg@5"] > p["eval/ndcg@5"] + 0.4, (seen, s, p)


def test_sasrec_is_trained_once_as_a_run_and_loaded_after(tmp_path: Path) -> None:
    ds = _cycle_dataset()
    cfg = _config(tmp_path)
    cfg.train.epochs = 2
    first, run = baseline_runs.learned("sasrec", ds, cfg)
    assert run["status"] == "trained" and run["run"].startswith("baseline-sasrec-")
    again, run2 = baseline_runs.learned("sasrec", ds, cfg)
    assert run2["status"] == "loaded" and run2["run"] == run["run"]
    cfg.model.name = "transformer"  # an agent with the self-attention actor: the lstm baseline stays an LSTM
    lstm_cfg, _ = baseline_runs.baseline_config(cfg, None, "lstm")
    assert lstm_cfg.model.name == "lstm"
    assert baseline_runs.baseline_config(cfg, None, "sasrec")[0].model.name == "transformer"
    hists = [ds.histories.of(u) for u in range(len(ds.histories))]
    assert np.array_equal(first.recommend(hists, 5), again.recommend(hists, 5))
    assert isinstance(again, bl.SASRecBaseline)


def test_sasrec_keeps_its_best_epoch_by_validation(tmp_path: Path) -> None:
    """SASRec as the reference trains it: 7x the agent's epochs, validation NDCG@10 after every epoch, the
    best epoch kept (not the last); training it in memory (bench/quality.py) gives the same weights."""
    import json

    from whatnext import checkpoints
    from whatnext.rl.environment import agent_from_payload

    ds = _cycle_dataset()
    cfg = _config(tmp_path)
    cfg.train.epochs = 1
    model, run = baseline_runs.learned("sasrec", ds, cfg)
    run_dir = Path(run["path"])
    lines = [json.loads(ln) for ln in (run_dir / "metrics.jsonl").read_text().splitlines()]
    evals = [(ln["step"], ln["eval/ndcg@10"]) for ln in lines if "eval/ndcg@10" in ln]
    steps = [ln["step"] for ln in lines if "train/ce_loss" in ln]
    assert len(evals) == bl.SASRecBaseline.epoch_factor == 7 and steps[-1] == evals[-1][0]  # one per epoch
    best_step = max(evals, key=lambda e: e[1])[0]  # the first of equal scores: only a higher one moves the marker
    best_pt = checkpoints.marker(run_dir, "best")
    assert best_pt is not None and checkpoints.load(best_pt)["step"] == best_step
    bcfg, _ = baseline_runs.baseline_config(cfg, None, "sasrec")
    assert (bcfg.train.epochs, bcfg.train.actor_lr) == (7, 1e-3)
    best = agent_from_payload(bcfg, ds, checkpoints.load(best_pt))
    hists = [ds.histories.of(u) for u in range(len(ds.histories))]
    assert np.array_equal(model.recommend(hists, 5), best.recommend(hists, 5))
    fresh = bl.make("sasrec", ds, seed=0, config=cfg)  # in memory: the same training in a folder of its own
    a = [p.detach() for p in fresh.agent.actor.parameters()]
    b = [p.detach() for p in model.agent.actor.parameters()]
    assert all(np.array_equal(x.numpy(), y.numpy()) for x, y in zip(a, b))
