"""Helpers shared by the tests: tiny generated tables, config builders, the one-line error check."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from whatnext.config import Config
from whatnext.data import Dataset, build_dataset, load_dataset
from whatnext.errors import WhatnextError

# A small long table: every event row carries its song's features (the original clean.pk style).
# u3 has a single event; u1 has two events with the same timestamp (file order must be kept).
EVENTS_LONG = [
    # user, item, timestamp, title, artist, energy, tempo
    ("u1", "s3", 10, "Gamma", "Kalo", 0.9, 120.0),
    ("u1", "s1", 10, "Alpha", "Mira", 0.1, 80.0),
    ("u1", "s2", 20, "Beta", "Kalo", 0.5, 100.0),
    ("u2", "s2", 5, "Beta", "Kalo", 0.5, 100.0),
    ("u2", "s4", 7, "Delta", "Venlu", 0.3, 90.0),
    ("u2", "s1", 6, "Alpha", "Mira", 0.1, 80.0),
    ("u2", "s3", 8, "Gamma", "Kalo", 0.9, 120.0),
    ("u3", "s4", 1, "Delta", "Venlu", 0.3, 90.0),
]
LONG_COLUMNS = ["user_id", "item_id", "timestamp", "title", "artist", "energy", "tempo"]


def long_frame() -> pd.DataFrame:
    """The small long table as a DataFrame."""
    return pd.DataFrame(EVENTS_LONG, columns=LONG_COLUMNS)


def split_frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    """The same data as two tables: events (user, item, time) and items (id, display, features)."""
    df = long_frame()
    events = df[["user_id", "item_id", "timestamp"]]
    items = df.drop(columns=["user_id", "timestamp"]).drop_duplicates("item_id").reset_index(drop=True)
    return events, items


def config_for(path: Path | str | None = None, **data: Any) -> Config:
    """A default Config pointing ``data.path`` at ``path`` with ``data.*`` fields set from ``data``."""
    cfg = Config()
    if path is not None:
        cfg.data.path = str(path)
    for key, value in data.items():
        if not hasattr(cfg.data, key):
            raise AttributeError(key)
        setattr(cfg.data, key, value)
    return cfg


def load(path: Path | str, **data: Any) -> Dataset:
    """Load the data file ``path`` with the given ``data.*`` settings."""
    return load_dataset(config_for(path, **data))


def one_line_error(exc: BaseException) -> str:
    """The message of a WhatnextError, asserting it is a single non-empty line."""
    assert isinstance(exc, WhatnextError), f"{type(exc).__name__}: {exc}"
    msg = str(exc)
    assert msg.strip(), "empty error message"
    assert len(msg.splitlines()) == 1, f"message is not one line: {msg!r}"
    return msg


def random_dataset(n_users: int = 30, n_items: int = 40, d: int = 3, seed: int = 0,
                   min_len: int = 1, max_len: int = 12, grid: int | None = None) -> Dataset:
    """A random dataset built in memory; with ``grid`` features are multiples of 1/grid (exact ties)."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(min_len, max_len + 1, size=n_users)
    users = np.repeat(np.arange(n_users), lengths)
    items = rng.integers(0, n_items, size=len(users))
    items[:n_items] = np.arange(n_items)[: len(items)]  # every item appears at least once when possible
    times = rng.integers(0, 1000, size=len(users))
    events = pd.DataFrame({"user_id": users, "item_id": items, "timestamp": times})
    if grid:
        feats = rng.integers(0, grid + 1, size=(n_items, d)) / grid
    else:
        feats = rng.random((n_items, d))
    # pin the range of every feature to [0, 1] so normalisation keeps the values as they are
    feats[0, :] = 0.0
    feats[1, :] = 1.0
    table = pd.DataFrame(feats, columns=[f"f{j}" for j in range(d)])
    table.insert(0, "item_id", np.arange(n_items))
    return build_dataset(events, table, Config(), source="random")
