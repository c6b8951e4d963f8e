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
    cfg = ch.config(tmp_path, "hybrid", epochs=15, model={"embedding_dim": 16, "item_embedding": "learned"})
    cfg.train.actor_lr = 1e-2
    return cfg


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
