"""Helpers for the learning-core tests: tiny generated datasets, tiny configs, project folders.

Everything here is deliberately small (about 30 users x 15 events x 40 items, 3 features,
window 5, hidden 8, batch 8) so that a training run takes a fraction of a second.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from whatnext.config import Config
from whatnext.data import Dataset, build_dataset

WINDOW = 5
HIDDEN = 8
BATCH = 8
#: the rewards every test trains with (pinned: the default weights are tuned elsewhere)
REWARDS = {"diversity": 1.0, "next_item": 1.0}


def frames(n_users: int = 30, n_events: int = 15, n_items: int = 40, d: int = 3,
           seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(events, items): every user has exactly ``n_events`` events with distinct timestamps."""
    rng = np.random.default_rng(seed)
    users = np.repeat(np.arange(1, n_users + 1), n_events)
    items = rng.integers(0, n_items, size=len(users))
    items[:n_items] = np.arange(n_items)[: len(items)]  # every item played at least once
    times = np.tile(np.arange(n_events) * 10, n_users) + 1000
    events = pd.DataFrame({"user_id": users, "item_id": items, "timestamp": times})
    feats = rng.random((n_items, d))
    feats[0, :], feats[1, :] = 0.0, 1.0  # pin each feature's range to [0, 1]
    table = pd.DataFrame(feats, columns=[f"f{j}" for j in range(d)])
    table.insert(0, "item_id", np.arange(n_items))
    table["title"] = [f"Song {i}" for i in range(n_items)]
    return events, table


def dataset(events: pd.DataFrame | None = None, items: pd.DataFrame | None = None, **kw: Any) -> Dataset:
    """A Dataset from ``frames(**kw)`` (or the given tables)."""
    if events is None or items is None:
        events, items = frames(**kw)
    return build_dataset(events, items, Config(), source="tiny")


def config(tmp_path: Path, algorithm: str = "original", *, samples: int = 0, epochs: int = 1,
           checkpoint_every: int = 1000, seed: int = 0, run: str = "default", model: dict[str, Any] | None = None,
           **train: Any) -> Config:
    """A tiny Config whose models_dir is inside ``tmp_path``."""
    model = model or {}
    cfg = Config(source=tmp_path / "whatnext.toml")
    cfg.model.window = WINDOW
    cfg.model.hidden_size = HIDDEN
    cfg.train.batch_size = BATCH
    cfg.train.algorithm = algorithm
    cfg.train.samples = samples
    cfg.train.epochs = epochs
    cfg.train.checkpoint_every = checkpoint_every
    cfg.train.seed = seed
    cfg.train.threads = 1
    cfg.paths.models_dir = str(tmp_path / "models")
    cfg.paths.run = run
    # pinned so that these tests do not follow the tuning of the defaults
    cfg.train.rewards = dict(REWARDS)
    cfg.train.rl_weight = 0.1
    if hasattr(cfg.model, "rerank"):
        cfg.model.rerank = 0
    for k, v in model.items():
        assert hasattr(cfg.model, k), k
        setattr(cfg.model, k, v)
    for k, v in train.items():
        assert hasattr(cfg.train, k), k
        setattr(cfg.train, k, v)
    return cfg


TOML = """\
[data]
path = "events.csv"
items_path = "items.csv"

[model]
window = {window}
hidden_size = {hidden}
embedding_dim = 8
{model_extra}
[train]
algorithm = "{algorithm}"
batch_size = {batch}
epochs = {epochs}
checkpoint_every = {checkpoint_every}
threads = 1
keep_last = {keep_last}
rl_weight = 0.1
rewards = {{ diversity = 1.0, next_item = 1.0 }}

[eval]
ks = {ks}

[paths]
models_dir = "models"
"""


def write_project(folder: Path, *, algorithm: str = "original", epochs: int = 1, checkpoint_every: int = 1000,
                  keep_last: int = 3, ks: str = "[10]", rerank: int = 0, **kw: Any) -> Path:
    """Write events.csv, items.csv and whatnext.toml into ``folder``; return the config path.

    ``rerank`` sets model.rerank where this version has that key (0: plain nearest items).
    """
    folder.mkdir(parents=True, exist_ok=True)
    events, items = frames(**kw)
    events.to_csv(folder / "events.csv", index=False)
    items.to_csv(folder / "items.csv", index=False)
    extra = f"rerank = {rerank}\n" if hasattr(Config().model, "rerank") else ""
    cfg = folder / "whatnext.toml"
    cfg.write_text(TOML.format(window=WINDOW, hidden=HIDDEN, batch=BATCH, algorithm=algorithm, epochs=epochs,
                               checkpoint_every=checkpoint_every, keep_last=keep_last, ks=ks, model_extra=extra))
    return cfg


def copy_project(config: Path, folder: Path) -> Path:
    """Copy the project around ``config`` (data, models) to ``folder/proj``; the copy's config path."""
    dest = folder / "proj"
    shutil.copytree(config.parent, dest)
    return dest / config.name


def state_equal(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Whether two state_dicts hold the same keys and bit-identical tensors."""
    import torch

    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def framed(out: str) -> list[str]:
    """The lines of the tables in a command's output (their titles too: the line above a top border), the lines
    that must fit the terminal; the notes between tables are one soft-wrapped line each however long."""
    lines = out.splitlines()
    return [ln for i, ln in enumerate(lines)
            if ln[:1] in "┏┃┡│└┌├╭╰" or (i + 1 < len(lines) and lines[i + 1][:1] in "┏┌╭")]
