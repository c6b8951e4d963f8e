"""What each column of an events or item table means: id keys, multi-valued text, item features.

Ids are text exactly as the file spells them (``007`` and ``7`` are two users), trimmed of
surrounding spaces; an item may be identified by several columns together (artist + title), and
a log without a user column is one user's. Features are chosen here, and every column that could
have been one but is not is listed with the reason, for ``inspect-data``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from whatnext.config import DataConfig, shown
from whatnext.errors import DataError

#: the user id of a log without a user column (data.user_col = "")
ONE_USER = "me"
#: what joins the values of a composite item key (data.item_col = ["artist", "title"])
KEY_JOIN = " - "


def key_columns(key: str | list[str]) -> list[str]:
    """The column names of an id key given as one name or a list."""
    return [key] if isinstance(key, str) else list(key)


def id_text(col: pd.Series) -> pd.Series:
    """Ids as the text in the file: strings stay as written (trimmed), numbers from Parquet as their digits."""
    if pd.api.types.is_float_dtype(col):
        vals = col.dropna()
        if np.isfinite(vals).all() and vals.eq(vals.round()).all():
            # a float column of whole numbers (NaN forced floats): 7.0 -> 7
            if vals.abs().lt(2.0**63).all():
                col = col.astype("Int64")
            else:  # some beyond int64 (rare): Python's ints give every whole number its digits
                col = col.map(lambda x: x if pd.isna(x) else str(int(x)))
    return col.astype(str).str.strip()


def id_codes(col: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Ids as integer codes and the text of each code (:func:`id_text`), codes in order of first appearance.

    Only the distinct values are turned into text: at ten million rows over a million ids this is
    what keeps loading in seconds (no Python string per row). Values that read the same once
    trimmed (``" 7"`` and ``"7"``) share one code, as they share one text.
    """
    codes, uniq = pd.factorize(col)
    text, merged = pd.factorize(id_text(pd.Series(uniq)))
    return text[codes].astype(np.int64), np.asarray(merged, dtype=object)


def item_codes(df: pd.DataFrame, cols: list[str], source: str) -> tuple[np.ndarray, np.ndarray]:
    """:func:`item_key` as integer codes and the id of each code (codes in order of first appearance)."""
    if len(cols) == 1:
        return id_codes(df[cols[0]])
    codes, uniq = pd.factorize(item_key(df, cols, source))
    return codes.astype(np.int64), np.asarray(uniq, dtype=object)


def item_key(df: pd.DataFrame, cols: list[str], source: str) -> np.ndarray:
    """The item id of every row: one column's text, or several columns' texts joined by :data:`KEY_JOIN`."""
    if len(cols) == 1:
        return id_text(df[cols[0]]).to_numpy(dtype=object)
    parts = [id_text(df[c]) for c in cols]
    joined = parts[0].str.cat(parts[1:], sep=KEY_JOIN)
    if joined.nunique() != pd.DataFrame({c: p for c, p in zip(cols, parts)}).drop_duplicates().shape[0]:
        raise DataError(
            f"{source}: the item key {' + '.join(cols)} joined with {KEY_JOIN!r} gives one id to two different items "
            f"(a value contains {KEY_JOIN!r}); choose other key columns in data.item_col"
        )
    return joined.to_numpy(dtype=object)


def expand_multi_values(df: pd.DataFrame, cfg: DataConfig, source: str) -> tuple[pd.DataFrame, list[str]]:
    """Each multi-valued text column (``Adventure|Comedy``) becomes one 0/1 column per value, ``genres=Comedy``."""
    added: list[str] = []
    for col in cfg.multi_value_cols:
        if col not in df.columns:
            cols = ", ".join(str(c) for c in df.columns[:12])
            raise DataError(f"{source}: missing column '{shown(col)}' (data.multi_value_cols); found columns {shown(cols)}; "
                            f"set data.multi_value_cols to the right names")
        dummies = df[col].fillna("").astype(str).str.get_dummies(sep=cfg.multi_value_sep)
        dummies.columns = [f"{col}={str(v).strip()}" for v in dummies.columns]
        dummies = dummies.T.groupby(level=0).max().T if dummies.columns.duplicated().any() else dummies
        dummies = dummies.drop(columns=[c for c in dummies.columns if c == f"{col}="])  # empty values
        df = pd.concat([df.drop(columns=[col]), dummies.astype(np.int8)], axis=1)
        added += [str(c) for c in dummies.columns]
    return df, added


def choose_features(df: pd.DataFrame, key: np.ndarray, cfg: DataConfig, *, candidates: Iterable[str],
                    forced: list[str], per_item: bool, source: str) -> tuple[list[str], list[dict[str, Any]]]:
    """The item feature columns of ``df`` and, for every other candidate column, why it is not one.

    ``per_item``: ``df`` has one row per event (a long table), so a column that takes several values
    for one item is an event attribute (session length, hour, skip flag), left out unless listed in
    ``data.feature_cols``.
    """
    candidates = [c for c in candidates if c not in forced]
    fc = cfg.feature_cols
    unused: list[dict[str, Any]] = []
    if fc == "none":
        return [], [{"column": c, "reason": "data.feature_cols = \"none\""} for c in [*candidates, *forced]]
    if isinstance(fc, list) and fc:
        for c in fc:
            if c not in df.columns:
                from whatnext.config import did_you_mean

                cols = [str(x) for x in df.columns]
                raise DataError(
                    f"{source}: missing column '{shown(c)}' (data.feature_cols){shown(did_you_mean(c, cols))}; "
                    f"found columns {shown(', '.join(cols[:12]))}; set data.feature_cols to the right name"
                )
        chosen = list(dict.fromkeys([*fc, *forced]))
        return chosen, [{"column": c, "reason": "not in data.feature_cols"} for c in candidates if c not in chosen]
    numeric: list[str] = []
    for c in candidates:
        s = df[c]
        if pd.api.types.is_bool_dtype(s):
            unused.append({"column": c, "reason": "true/false values; list it in data.feature_cols to use it as 0/1"})
            continue
        if pd.api.types.is_numeric_dtype(s):
            if s.isna().all():
                unused.append({"column": c, "reason": "every value is missing"})
            else:
                numeric.append(c)
            continue
        values = s.dropna()
        num = pd.to_numeric(values, errors="coerce")
        if not len(values):
            unused.append({"column": c, "reason": "every value is missing"})
        elif num.notna().all():  # numbers held as text or as mixed Python objects (pickle, Parquet)
            numeric.append(c)
        elif num.notna().mean() >= 0.9:  # a numeric feature with typos
            bad = values[num.isna()]
            raise DataError(
                f"{source}: feature column '{c}' holds {shown(bad.iloc[0])}, expected numbers ({len(bad)} such values); "
                f"fix them, or list the real features in data.feature_cols"
            )
        else:
            example = values[num.isna()].iloc[0]
            hint = ("; list it in data.multi_value_cols to make each value a feature"
                    if any(sep in str(example) for sep in "|;,") else "")
            unused.append({"column": c, "reason": f"text, not numbers (e.g. '{shown(str(example)[:40])}'){hint}"})
    if per_item and numeric:
        varying = varying_columns(df, key, numeric)
        for c, n in varying.items():
            unused.append({"column": c, "reason": f"takes several values for one item ({n} items): an event attribute, "
                                                  f"not an item feature; list it in data.feature_cols to force it"})
        numeric = [c for c in numeric if c not in varying]
    return [*numeric, *forced], unused


def varying_columns(df: pd.DataFrame, key: np.ndarray, cols: list[str]) -> dict[str, int]:
    """Columns of ``cols`` that take more than one value for some item, with how many items."""
    sub = df[cols].apply(pd.to_numeric, errors="coerce") if cols else df[cols]
    counts = sub.groupby(pd.Series(key, index=df.index), sort=False).nunique(dropna=False)
    many = (counts > 1).sum()
    return {c: int(n) for c, n in many.items() if n}


def check_conflicts(df: pd.DataFrame, key: np.ndarray, cols: list[str], source: str,
                    names: np.ndarray | None = None) -> None:
    """DataError if one item id carries different feature values in different rows.

    ``key`` holds the item ids, or integer codes into ``names`` when ``names`` is given.
    """
    if not cols or not pd.Series(key).duplicated().any():  # one row per item: nothing to conflict
        return
    varying = varying_columns(df, key, cols)
    if not varying:
        return
    col = next(iter(varying))
    values = pd.to_numeric(df[col], errors="coerce")
    frame = pd.DataFrame({"k": key, "v": values.to_numpy()}, index=df.index).drop_duplicates()
    item = frame.loc[frame["k"].duplicated(keep=False), "k"].iloc[0]
    vals = frame.loc[frame["k"] == item, "v"].tolist()[:2]
    if names is not None:
        item = names[item]
    n_items = int(frame.loc[frame["k"].duplicated(keep=False), "k"].nunique())
    raise DataError(
        f"{source}: item '{shown(item)}' has conflicting features ('{shown(col)}' is {_plain(vals[0])} in one row and "
        f"{_plain(vals[1])} in another; {n_items} items conflict); give each item one set of features"
    )


def _plain(x: Any) -> str:
    """A number or value as a person wrote it: 0.1, not np.float64(0.1)."""
    if isinstance(x, (float, np.floating)) and float(x).is_integer():
        return str(int(x))
    return str(x.item() if isinstance(x, np.generic) else x)
