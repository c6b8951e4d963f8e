"""The data layer: validated item catalogue and time-ordered user histories, and the split.

Everything is built with vectorised pandas/numpy (no Python loop over rows), so a million
events load in seconds. External user and item ids are kept as strings; internally items and
users are contiguous indices.

The split (leave-one-out by time) lives here so that nothing downstream can leak: for a user
with n events in time order, the last is the *test* target (n >= 2), the one before it the
*validation* target (n >= 3), and everything earlier is *training*. Popularity, embeddings,
the diversity reward's population and training positions only ever see the training part.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from whatnext.config import Config, shown
from whatnext.data.readers import read_table
from whatnext.errors import DataError

log = logging.getLogger(__name__)
PAD = -1


@dataclass
class Catalogue:
    """The items: index <-> external id, normalised float32 features, display columns.

    ``features`` is None for a catalogue without feature columns ("no features"): models
    then learn item embeddings. Features are min-max normalised to [0, 1]; ``feature_min``
    and ``feature_scale`` bring them back to original units.
    """

    ids: np.ndarray
    features: np.ndarray | None
    feature_names: list[str]
    feature_min: np.ndarray
    feature_scale: np.ndarray
    display: pd.DataFrame
    _index: pd.Index = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._index = pd.Index(self.ids)

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def has_features(self) -> bool:
        """Whether items carry numeric features (False: a "no features" catalogue)."""
        return self.features is not None

    def index_of(self, ids: Any) -> np.ndarray:
        """Indices of external ids (strings or numbers); -1 where unknown."""
        return self._index.get_indexer(pd.Index(np.asarray(ids).astype(str)))

    def original_units(self, idx: np.ndarray) -> np.ndarray:
        """Features of items ``idx`` in the units of the input data."""
        if self.features is None:
            return np.zeros((len(idx), 0), dtype=np.float32)
        return self.features[idx] * self.feature_scale + self.feature_min

    def fingerprint(self) -> str:
        """A short hash of ids and features: checkpoints refuse data whose catalogue differs."""
        h = hashlib.sha256()
        h.update("\x1f".join(self.ids.tolist()).encode())
        if self.features is not None:
            h.update(np.ascontiguousarray(self.features).tobytes())
        return h.hexdigest()[:16]


@dataclass
class Histories:
    """Every user's events in time order, as one flat CSR array.

    User ``u``'s items are ``items[offsets[u]:offsets[u+1]]`` (ties in time keep file order).
    ``train_len[u]`` is how many of them are training events (see the module doc).
    """

    user_ids: np.ndarray
    offsets: np.ndarray
    items: np.ndarray
    times: np.ndarray
    train_len: np.ndarray
    _index: pd.Index = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._index = pd.Index(self.user_ids)

    def __len__(self) -> int:
        return len(self.user_ids)

    @property
    def lengths(self) -> np.ndarray:
        """Number of events of every user."""
        return np.diff(self.offsets)

    def user_index(self, ids: Any) -> np.ndarray:
        """Indices of external user ids; -1 where unknown."""
        return self._index.get_indexer(pd.Index(np.asarray(ids).astype(str)))

    def of(self, u: int, part: str = "all") -> np.ndarray:
        """Items of user ``u``: ``all`` events, the ``train`` part, or all before ``valid``/``test`` target."""
        start = self.offsets[u]
        end = {"all": self.offsets[u + 1], "train": start + self.train_len[u],
               "valid": start + self.train_len[u], "test": self.offsets[u + 1] - 1}[part]
        return self.items[start:end]

    def targets(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        """(users, flat positions) of every user's ``valid`` or ``test`` target event."""
        n = self.lengths
        if split == "test":
            users = np.flatnonzero(n >= 2)
            return users, self.offsets[users + 1] - 1
        if split == "valid":
            users = np.flatnonzero(n >= 3)
            return users, self.offsets[users + 1] - 2
        raise ValueError(split)

    def event_users(self) -> np.ndarray:
        """The user index of every flat event position."""
        return np.repeat(np.arange(len(self.user_ids)), self.lengths)

    def train_positions(self) -> np.ndarray:
        """Flat positions t that are training targets: t >= 1 within the user, inside the training part."""
        users = self.event_users()
        local = np.arange(len(self.items)) - self.offsets[users]
        return np.flatnonzero((local >= 1) & (local < self.train_len[users]))

    def train_mask(self) -> np.ndarray:
        """Boolean mask over flat events: True for training events."""
        users = self.event_users()
        local = np.arange(len(self.items)) - self.offsets[users]
        return local < self.train_len[users]

    def windows(self, positions: np.ndarray, window: int, users: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The last ``window`` items before each flat position, right-padded with PAD, and their lengths.

        The user of a position is the one whose event is there. A user's end (one past their last
        event) is the next user's start, so pass ``users`` when positions can be ends.
        """
        if users is None:
            users = np.searchsorted(self.offsets, positions, side="right") - 1
        lengths = np.minimum(window, positions - self.offsets[users])
        idx = (positions - lengths)[:, None] + np.arange(window)[None, :]
        valid = np.arange(window)[None, :] < lengths[:, None]
        out = np.where(valid, self.items[np.minimum(idx, len(self.items) - 1)], PAD)
        return out, lengths


@dataclass
class Dataset:
    """A catalogue, the histories over it, and what validation found (``report``)."""

    catalogue: Catalogue
    histories: Histories
    report: dict[str, Any]
    source: str

    def popularity(self) -> np.ndarray:
        """Training-part play counts per item (held-out events never counted)."""
        h = self.histories
        return np.bincount(h.items[h.train_mask()], minlength=len(self.catalogue))


# ---------------------------------------------------------------- loading


def load_dataset(cfg: Config, *, lenient: bool = False) -> Dataset:
    """Load and validate the data ``cfg`` points at (the built-in demo data when ``data.path`` is empty).

    With ``lenient`` (used by ``inspect-data``) missing or infinite feature values are
    counted in the report and replaced by the feature's mean instead of being an error.
    """
    d = cfg.data
    if not d.path:
        from whatnext.data import demo

        events, items = demo.generate()
        return build_dataset(events, items, cfg, source="built-in demo data", lenient=lenient)
    path = cfg.resolve(d.path)
    events = read_table(path, d)
    items = read_table(cfg.resolve(d.items_path), d, items=True) if d.items_path else None
    return build_dataset(events, items, cfg, source=str(path), lenient=lenient,
                         items_source=str(cfg.resolve(d.items_path)) if d.items_path else None)


def build_dataset(
    events: pd.DataFrame,
    items: pd.DataFrame | None,
    cfg: Config,
    *,
    source: str = "data",
    items_source: str | None = None,
    lenient: bool = False,
) -> Dataset:
    """Validate raw tables and build the Dataset (see :func:`load_dataset`)."""
    d = cfg.data
    if len(events) == 0:
        raise DataError(f"{source}: no events (the table is empty); expected rows of user, item, time")
    events = _named_columns(events, source)
    time_col = _order_column(events, cfg, source)
    for col, key in ((d.user_col, "user_col"), (d.item_col, "item_col")):
        _require(events, col, key, source)
    bad = events[[d.user_col, d.item_col, time_col]].isna().any(axis=1).to_numpy()
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise DataError(f"{source}: row {row + 1} has an empty user, item or time ({int(bad.sum())} such rows); fill or drop them")
    users = events[d.user_col].astype(str).to_numpy()
    item_ids = events[d.item_col].astype(str).to_numpy()
    times = _times(events[time_col], source, time_col)
    report: dict[str, Any] = {"source": source, "missing_features": {}}

    if items is not None:
        items = _named_columns(items, items_source or "items")
        _require(items, d.item_col, "item_col", items_source or "items")
        feature_cols = _feature_columns(items, cfg, exclude={d.item_col}, source=items_source or "items")
        table = items.drop_duplicates(subset=d.item_col, keep="first")
        _check_conflicts(items, d.item_col, feature_cols, items_source or "items")
        cat_ids = table[d.item_col].astype(str).to_numpy()
        played = pd.unique(item_ids)
        unknown = pd.Index(cat_ids).get_indexer(pd.Index(played)) < 0
        if unknown.any():
            missing = played[unknown]
            raise DataError(
                f"{items_source}: {len(missing)} item ids played in {source} are not in the item table "
                f"(first: {missing[0]!r}); add them to the item table or drop their events"
            )
    else:
        exclude = {d.user_col, d.item_col, time_col, d.order_col, d.weight_col} - {""}
        feature_cols = _feature_columns(events, cfg, exclude=exclude, source=source)
        _check_conflicts(events, d.item_col, feature_cols, source)
        table = events.assign(**{d.item_col: item_ids}).drop_duplicates(subset=d.item_col, keep="first")
        cat_ids = table[d.item_col].to_numpy()

    order = _id_order(cat_ids)
    table = table.iloc[order]
    cat_ids = cat_ids[order].astype(str)
    raw = _numeric(table, feature_cols, items_source or source) if feature_cols else None
    if raw is not None:
        raw = _finite(raw, feature_cols, table[d.item_col].astype(str).to_numpy(), report, lenient, items_source or source)
    catalogue = _catalogue(cat_ids, raw, feature_cols, table, cfg)
    histories = _histories(users, catalogue.index_of(item_ids), times)
    lengths = histories.lengths
    dup = pd.DataFrame({"u": users, "i": item_ids, "t": times}).duplicated().to_numpy()
    report.update({
        "duplicate_events": int(dup.sum()),
        "single_event_users": int((lengths == 1).sum()),
        "single_event_user_ids": histories.user_ids[lengths == 1][:10].tolist(),
        "time_column": time_col,
        "time_kind": "number" if pd.api.types.is_numeric_dtype(events[time_col]) else "datetime",
        "no_features": raw is None,
    })
    if report["single_event_users"]:
        log.info("%d users have a single event: kept for inference, no training targets", report["single_event_users"])
    return Dataset(catalogue, histories, report, source)


def _named_columns(df: pd.DataFrame, source: str) -> pd.DataFrame:
    """Column names as trimmed strings; DataError if two columns end up with one name."""
    df = df.rename(columns=lambda c: str(c).strip())
    dup = df.columns[df.columns.duplicated()]
    if len(dup):
        raise DataError(
            f"{source}: column '{shown(dup[0])}' appears more than once (spaces around names are ignored); "
            f"give every column its own name"
        )
    return df


def _require(df: pd.DataFrame, col: str, key: str, source: str) -> None:
    if col not in df.columns:
        from whatnext.config import did_you_mean

        cols = [str(c) for c in df.columns]
        raise DataError(
            f"{source}: missing column '{shown(col)}' (data.{key}){shown(did_you_mean(col, cols))}; "
            f"found columns {shown(', '.join(cols[:12]))}; set data.{key} to the right name"
        )


def _order_column(df: pd.DataFrame, cfg: Config, source: str) -> str:
    d = cfg.data
    if d.time_col and d.time_col in df.columns:
        return d.time_col
    if d.order_col and d.order_col in df.columns:
        return d.order_col
    if d.order_col:
        _require(df, d.order_col, "order_col", source)
    _require(df, d.time_col, "time_col", source)
    raise AssertionError  # pragma: no cover - _require raised


def _times(col: pd.Series, source: str, name: str) -> np.ndarray:
    """Event times as float64 (numbers) or int64 nanoseconds (dates): only their order matters."""
    if pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col):
        return col.to_numpy(dtype=np.float64)
    if pd.api.types.is_datetime64_any_dtype(col):
        return col.to_numpy().astype("datetime64[ns]").astype(np.int64).astype(np.float64)
    try:
        parsed = pd.to_datetime(col, format="mixed", utc=True)
    except (ValueError, TypeError):
        num = pd.to_numeric(col, errors="coerce")
        first = col[num.isna()].iloc[0] if num.isna().any() else None
        raise DataError(
            f"{source}: column '{shown(name)}' holds {first!r}, expected numbers or dates (set data.time_col or data.order_col)"
        ) from None
    return parsed.dt.tz_localize(None).to_numpy().astype("datetime64[ns]").astype(np.int64).astype(np.float64)


def _feature_columns(df: pd.DataFrame, cfg: Config, *, exclude: set[str], source: str) -> list[str]:
    d = cfg.data
    if d.feature_cols:
        for c in d.feature_cols:
            _require(df, c, "feature_cols", source)
        return list(d.feature_cols)
    skip = exclude | set(d.display_cols)
    cols = []
    for c in df.columns:
        if str(c) in skip or pd.api.types.is_bool_dtype(df[c]):
            continue
        if pd.api.types.is_numeric_dtype(df[c]):
            cols.append(str(c))
            continue
        # a text column whose values are nearly all numbers is a numeric feature with typos
        values = df[c].dropna()
        num = pd.to_numeric(values, errors="coerce")
        if len(values) and num.notna().mean() >= 0.9:
            bad = values[num.isna()]
            if bad.empty:  # numbers held as text or as mixed Python objects (pickle, Parquet): a numeric feature
                cols.append(str(c))
                continue
            raise DataError(
                f"{source}: feature column '{c}' holds {shown(bad.iloc[0])}, expected numbers ({len(bad)} such values); "
                f"fix them, or list the real features in data.feature_cols"
            )
    return cols


def _numeric(table: pd.DataFrame, cols: list[str], source: str) -> np.ndarray:
    out = np.empty((len(table), len(cols)), dtype=np.float64)
    for j, c in enumerate(cols):
        s = table[c]
        if pd.api.types.is_bool_dtype(s):
            s = s.astype(float)
        num = pd.to_numeric(s, errors="coerce")
        bad = num.isna() & s.notna()
        if bad.any():
            raise DataError(
                f"{source}: feature column '{shown(c)}' holds {s[bad].iloc[0]!r}, expected numbers "
                f"({int(bad.sum())} such values); fix them or leave '{shown(c)}' out of data.feature_cols"
            )
        out[:, j] = num.to_numpy(dtype=np.float64, na_value=np.nan)
    return out


def _finite(raw: np.ndarray, cols: list[str], ids: np.ndarray, report: dict, lenient: bool, source: str) -> np.ndarray:
    bad = ~np.isfinite(raw)
    if not bad.any():
        return raw
    counts = bad.sum(axis=0)
    report["missing_features"] = {c: int(n) for c, n in zip(cols, counts) if n}
    if not lenient:
        i, j = map(int, np.argwhere(bad)[0])
        raise DataError(
            f"{source}: feature '{shown(cols[j])}' of item {ids[i]!r} is {raw[i, j]} ({int(bad.sum())} missing or infinite "
            f"values in all); every feature must be a finite number: fill or drop them"
        )
    means = np.nanmean(np.where(bad, np.nan, raw), axis=0)
    return np.where(bad, np.nan_to_num(means)[None, :], raw)


def _check_conflicts(df: pd.DataFrame, item_col: str, cols: list[str], source: str) -> None:
    """DataError if one item id carries different feature values in different rows."""
    if not cols:
        return
    sub = df[[item_col, *cols]].drop_duplicates()
    dup = sub[item_col].duplicated(keep=False)
    if not dup.any():
        return
    rows = sub[dup]
    item = rows[item_col].iloc[0]
    first = rows[rows[item_col] == item]
    col = next((c for c in cols if first[c].nunique(dropna=False) > 1), cols[0])
    vals = first[col].tolist()[:2]
    raise DataError(
        f"{source}: item {item!r} has conflicting features ('{shown(col)}' is {vals[0]!r} in one row and {vals[1]!r} in another; "
        f"{int(rows[item_col].nunique())} items conflict); give each item one set of features"
    )


def _id_order(ids: np.ndarray) -> np.ndarray:
    """Sort order for item ids: numerically when all are numbers, else as strings."""
    s = pd.Series(ids.astype(str))
    num = pd.to_numeric(s, errors="coerce")
    if num.notna().all():
        return np.lexsort((s.to_numpy(), num.to_numpy()))
    return np.argsort(s.to_numpy(), kind="stable")


def _catalogue(ids: np.ndarray, raw: np.ndarray | None, cols: list[str], table: pd.DataFrame, cfg: Config) -> Catalogue:
    display_cols = [c for c in cfg.data.display_cols if c in table.columns]
    display = table[display_cols].astype(str).reset_index(drop=True)
    if raw is None:
        return Catalogue(ids, None, [], np.zeros(0, np.float32), np.ones(0, np.float32), display)
    lo, hi = raw.min(axis=0), raw.max(axis=0)
    scale = np.where(hi > lo, hi - lo, 1.0)
    feats = ((raw - lo) / scale).astype(np.float32)
    return Catalogue(ids, feats, cols, lo.astype(np.float32), scale.astype(np.float32), display)


def _histories(users: np.ndarray, items: np.ndarray, times: np.ndarray) -> Histories:
    codes, uniq = pd.factorize(users)  # hash-based: much faster than sorting strings
    order = _id_order(uniq)
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    codes = rank[codes]
    # lexsort is stable: equal (user, time) keep the file's order
    perm = np.lexsort((times, codes))
    counts = np.bincount(codes, minlength=len(uniq))
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    train_len = counts - (counts >= 2) - (counts >= 3)
    return Histories(uniq[order].astype(str), offsets, items[perm].astype(np.int64), times[perm], train_len.astype(np.int64))


def pad_histories(histories: Sequence[np.ndarray], window: int) -> tuple[np.ndarray, np.ndarray]:
    """The last ``window`` items of each history, right-padded with PAD, and their lengths (>= 1).

    An empty history becomes a single PAD step (the models then see a zero vector).
    """
    n = len(histories)
    out = np.full((n, window), PAD, dtype=np.int64)
    lengths = np.fromiter((min(len(h), window) for h in histories), dtype=np.int64, count=n)
    if lengths.sum():
        flat = np.concatenate([np.asarray(h, dtype=np.int64)[len(h) - m :] for h, m in zip(histories, lengths)])
        starts = np.cumsum(lengths) - lengths
        rows = np.repeat(np.arange(n), lengths)
        out[rows, np.arange(len(flat)) - starts[rows]] = flat
    return out, np.maximum(lengths, 1)


def dataset_from_path(path: str | Path, cfg: Config | None = None) -> Dataset:
    """Convenience for notebooks: load a data file with default column names."""
    cfg = cfg or Config()
    cfg.data.path = str(Path(path).resolve())
    return load_dataset(cfg)
