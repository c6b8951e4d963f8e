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
from whatnext.data.columns import (
    ONE_USER,
    check_conflicts,
    choose_features,
    expand_multi_values,
    id_codes,
    item_codes,
    item_key,
    key_columns,
)
from whatnext.data.readers import read_table
from whatnext.data.reward_column import describe, read_rewards, transform
from whatnext.data.times import parse_times
from whatnext.errors import CheckpointError, DataError

log = logging.getLogger(__name__)
PAD = -1


@dataclass
class Catalogue:
    """The items: index <-> external id, normalised float32 features, display columns.

    ``features`` is None for a catalogue without feature columns ("no features"): models
    then learn item embeddings. Features are min-max normalised to [0, 1]; ``raw`` keeps each value
    as read (float32: what a recommendation shows, 0.5556 and not the 0.55560005 that undoing the
    normalisation in float32 gives), and ``feature_min`` / ``feature_scale`` bring normalised values
    back to original units where ``raw`` is absent.
    """

    ids: np.ndarray
    features: np.ndarray | None
    feature_names: list[str]
    feature_min: np.ndarray
    feature_scale: np.ndarray
    display: pd.DataFrame
    raw: np.ndarray | None = None
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
        if self.raw is not None:
            return self.raw[idx]
        return self.features[idx] * self.feature_scale + self.feature_min

    def fingerprint(self) -> str:
        """A short hash of everything trained weights depend on: item ids, feature names, their count and values.

        Checkpoints refuse data whose catalogue differs (:meth:`check_checkpoint`).
        """
        h = hashlib.sha256(b"whatnext catalogue 2\x1e")
        h.update("\x1f".join(self.ids.tolist()).encode())
        h.update(f"\x1e{len(self.feature_names)}\x1e".encode())
        h.update("\x1f".join(self.feature_names).encode())
        if self.features is not None:
            h.update(b"\x1e" + np.ascontiguousarray(self.features).tobytes())
        return h.hexdigest()[:16]

    def legacy_fingerprint(self) -> str:
        """The fingerprint of checkpoints written before it covered feature names (ids and values only)."""
        h = hashlib.sha256()
        h.update("\x1f".join(self.ids.tolist()).encode())
        if self.features is not None:
            h.update(np.ascontiguousarray(self.features).tobytes())
        return h.hexdigest()[:16]

    def summary(self) -> dict[str, Any]:
        """What a checkpoint records about the catalogue it was trained on (beside the fingerprint)."""
        return {"items": len(self), "features": list(self.feature_names)}

    def check_checkpoint(self, payload: dict[str, Any], source: str = "") -> None:
        """CheckpointError unless the checkpoint ``payload`` was trained on this catalogue.

        A checkpoint that records no ``catalogue`` predates the current fingerprint: its older form is accepted.
        """
        saved = payload.get("fingerprint")
        if saved == self.fingerprint():
            return
        if "catalogue" not in payload and saved == self.legacy_fingerprint():
            return
        if not (isinstance(saved, str) and len(saved) <= 64 and saved.isprintable()):
            saved = f"a {type(saved).__name__}"  # a damaged or hostile checkpoint: never print what it holds
        config = payload.get("config")
        data = config.get("data") if isinstance(config, dict) else None
        path = data.get("path") if isinstance(data, dict) else None
        trained_on = str(path)[:200] if path else "the built-in demo data"
        before = payload.get("catalogue")
        if isinstance(before, dict) and isinstance(before.get("features"), list) and isinstance(before.get("items"), int):
            feats = ", ".join(str(f)[:40] for f in before["features"][:20]) or "none"
            was = f"{before['items']} items, features: {feats}, fingerprint {saved}"
        else:
            was = f"fingerprint {saved}"
        now = f"{len(self)} items, features: {', '.join(self.feature_names) or 'none'}, fingerprint {self.fingerprint()}"
        raise CheckpointError(
            f"the checkpoint was trained on other data: {shown(trained_on)} ({was}); "
            f"this data{' (' + shown(source) + ')' if source else ''} has {now}; "
            f"use the data it was trained on or train a new run"
        )


@dataclass
class Histories:
    """Every user's events in time order, as one flat CSR array.

    User ``u``'s items are ``items[offsets[u]:offsets[u+1]]`` (ties in time keep file order).
    ``train_len[u]`` is how many of them are training events (see the module doc).
    ``rewards`` (float32, aligned with ``items``) is the logged reward of every event, already
    mapped and transformed (:mod:`whatnext.data.reward_column`); None without ``data.reward_col``.
    """

    user_ids: np.ndarray
    offsets: np.ndarray
    items: np.ndarray
    times: np.ndarray
    train_len: np.ndarray
    rewards: np.ndarray | None = None
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
    notes = [*events.attrs.get("notes", []), *(items.attrs.get("notes", []) if items is not None else [])]
    if len(events) == 0:
        raise DataError(f"{source}: no events (the table is empty); expected rows of user, item, time")
    events = _named_columns(events, source)
    time_col = _order_column(events, cfg, source)
    item_cols = key_columns(d.item_col)
    if d.user_col:
        _require(events, d.user_col, "user_col", source)
    for col in item_cols:
        _require(events, col, "item_col", source)
    key_cols = [*([d.user_col] if d.user_col else []), *item_cols, time_col]
    bad = events[key_cols].isna().any(axis=1).to_numpy()
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise DataError(f"{source}: row {row + 1} has an empty user, item or time ({int(bad.sum())} such rows); fill or drop them")
    # ids as integer codes (and the text of each code): no Python string per row
    if d.user_col:
        user_codes, user_names = id_codes(events[d.user_col])
    else:
        user_codes, user_names = np.zeros(len(events), np.int64), np.array([ONE_USER], dtype=object)
    item_codes_, item_names = item_codes(events, item_cols, source)
    times, time_info = parse_times(events[time_col], source, time_col, d.time_format)
    report: dict[str, Any] = {"source": source, "missing_features": {}, "notes": notes}
    if d.reward_col:
        _require(events, d.reward_col, "reward_col", source)
    raw_rewards = read_rewards(events, d, source) if d.reward_col else None
    roles = {*key_cols, d.order_col, d.weight_col, d.reward_col, *d.display_cols} - {""}

    if items is not None:
        isrc = items_source or "items"
        items = _named_columns(items, isrc)
        id_cols = key_columns(d.items_id_col or d.item_col)
        for col in id_cols:
            _require(items, col, "items_id_col" if d.items_id_col else "item_col", isrc)
        missing_id = items[id_cols].isna().any(axis=1).to_numpy()
        if missing_id.any():
            raise DataError(f"{isrc}: row {int(np.flatnonzero(missing_id)[0]) + 1} has an empty item id "
                            f"({int(missing_id.sum())} such rows); fill or drop them")
        items, multi = expand_multi_values(items, d, isrc)
        table_key = item_key(items, id_cols, isrc)
        candidates = [str(c) for c in items.columns if str(c) not in {*id_cols, *d.display_cols} - {""}]
        feature_cols, unused = choose_features(items, table_key, d, candidates=candidates, forced=multi,
                                               per_item=False, source=isrc)
        _numeric(items, feature_cols, isrc)  # every value a number before values are compared
        check_conflicts(items, table_key, feature_cols, isrc)
        keep = ~pd.Series(table_key).duplicated().to_numpy()
        table, cat_ids = items[keep], table_key[keep]
        played = item_names
        unknown = pd.Index(cat_ids).get_indexer(pd.Index(played)) < 0
        if unknown.any():
            missing = played[unknown]
            raise DataError(
                f"{isrc}: {len(missing)} item ids played in {source} are not in the item table "
                f"(first: '{shown(missing[0])}'); add them to the item table or drop their events"
            )
    else:
        events, multi = expand_multi_values(events, d, source)
        candidates = [str(c) for c in events.columns if str(c) not in roles]
        feature_cols, unused = choose_features(events, item_codes_, d, candidates=candidates, forced=multi,
                                               per_item=True, source=source)
        _numeric(events, feature_cols, source)  # every value a number before values are compared
        check_conflicts(events, item_codes_, feature_cols, source, item_names)
        keep = ~pd.Series(item_codes_).duplicated().to_numpy()
        table, cat_ids = events[keep], item_names  # codes number items in order of first appearance

    order = _id_order(cat_ids)
    table, cat_ids = table.iloc[order], cat_ids[order].astype(str)
    src = items_source or source
    raw = _numeric(table, feature_cols, src) if feature_cols else None
    if raw is not None:
        raw = _finite(raw, feature_cols, cat_ids, report, lenient, src)
    catalogue = _catalogue(cat_ids, raw, feature_cols, table, cfg)
    item_index = catalogue._index.get_indexer(pd.Index(item_names))[item_codes_]
    histories = _histories(user_codes, user_names, item_index, times, raw_rewards, d.reward_transform)
    lengths = histories.lengths
    report.update({
        "duplicate_events": _duplicates(histories),
        "single_event_users": int((lengths == 1).sum()),
        "single_event_user_ids": histories.user_ids[lengths == 1][:10].tolist(),
        "time_column": time_col,
        "time_kind": time_info["kind"],
        "time_unit": time_info.get("unit"),
        "time_format": time_info.get("format"),
        "no_features": raw is None,
        "unused_columns": unused,
        "one_user": not d.user_col,
    })
    if histories.rewards is not None:
        report["rewards"] = describe(histories.rewards, d.reward_col, d.reward_transform)
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
                f"{source}: feature column '{shown(c)}' holds '{shown(s[bad].iloc[0])}', expected numbers "
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
            f"{source}: feature '{shown(cols[j])}' of item '{shown(ids[i])}' is {raw[i, j]} ({int(bad.sum())} missing or infinite "
            f"values in all); every feature must be a finite number: fill or drop them"
        )
    means = np.nanmean(np.where(bad, np.nan, raw), axis=0)
    return np.where(bad, np.nan_to_num(means)[None, :], raw)


def _duplicates(h: Histories) -> int:
    """How many events repeat an earlier one (same user, item and time).

    Histories are sorted by user and time, so a repeat lies in a run of equal (user, time): only
    those runs are compared (none at all in a log whose times never tie).
    """
    if len(h.items) < 2:
        return 0
    users = h.event_users()
    tie = (users[1:] == users[:-1]) & (h.times[1:] == h.times[:-1])
    if not tie.any():
        return 0
    rows = np.zeros(len(h.items), dtype=bool)
    rows[1:] |= tie
    rows[:-1] |= tie
    return int(pd.DataFrame({"u": users[rows], "i": h.items[rows], "t": h.times[rows]}).duplicated().sum())


def _id_order(ids: np.ndarray) -> np.ndarray:
    """Sort order for item ids: numerically when all are numbers (``007`` beside ``7`` by text), else as strings."""
    s = pd.Series(ids.astype(str))
    num = pd.to_numeric(s, errors="coerce")
    if num.notna().all():
        if not num.duplicated().any():  # no two ids with one value: the numbers alone decide
            return np.argsort(num.to_numpy(), kind="stable")
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
    return Catalogue(ids, feats, cols, lo.astype(np.float32), scale.astype(np.float32), display, raw.astype(np.float32))


def _histories(codes: np.ndarray, uniq: np.ndarray, items: np.ndarray, times: np.ndarray,
               raw_rewards: np.ndarray | None = None, reward_transform: str = "none") -> Histories:
    """Histories from every event's user code (into ``uniq``, the user ids), item index, time and raw reward."""
    order = _id_order(uniq)
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    codes = rank[codes]
    perm = _user_time_order(codes, times)
    counts = np.bincount(codes, minlength=len(uniq))
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    train_len = counts - (counts >= 2) - (counts >= 3)
    out = Histories(uniq[order].astype(str), offsets, items[perm].astype(np.int64), times[perm], train_len.astype(np.int64))
    if raw_rewards is not None:
        out.rewards = transform(raw_rewards[perm], out.train_mask(), reward_transform)
    return out


def _user_time_order(codes: np.ndarray, times: np.ndarray) -> np.ndarray:
    """The stable order of events by (user code, time): equal (user, time) keep the file's order.

    Logs already grouped by user in time order, or sorted by time, take a cheap path.
    """
    if len(codes) < 2:
        return np.arange(len(codes))
    dc, dt = np.diff(codes), np.diff(times)
    if ((dc > 0) | ((dc == 0) & (dt >= 0))).all():
        return np.arange(len(codes))
    if (dt >= 0).all():
        return np.argsort(codes, kind="stable")
    return np.lexsort((times, codes))


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
