"""The data layer: every input format, validation errors, histories, the split and the catalogue."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import config_for, load, long_frame, one_line_error, random_dataset, split_frames

from whatnext.config import Config
from whatnext.data import PAD, Dataset, build_dataset, load_dataset
from whatnext.data.readers import MOVIELENS_GENRES
from whatnext.data.stats import describe
from whatnext.errors import DataError

# the small data in time order per user (u1's two events at t=10 keep file order: s3 before s1)
EXPECTED_HISTORIES = {"u1": ["s3", "s1", "s2"], "u2": ["s2", "s1", "s4", "s3"], "u3": ["s4"]}
EXPECTED_FEATURES = {"s1": (0.1, 80.0), "s2": (0.5, 100.0), "s3": (0.9, 120.0), "s4": (0.3, 90.0)}


def histories_by_id(ds: Dataset) -> dict[str, list[str]]:
    h, cat = ds.histories, ds.catalogue
    return {str(h.user_ids[u]): [str(cat.ids[i]) for i in h.of(u)] for u in range(len(h))}


def check_small(ds: Dataset, *, features: bool = True) -> None:
    """``ds`` holds exactly the small data set of helpers.EVENTS_LONG."""
    assert histories_by_id(ds) == EXPECTED_HISTORIES
    cat = ds.catalogue
    assert cat.ids.tolist() == ["s1", "s2", "s3", "s4"]
    if not features:
        assert cat.features is None
        return
    assert cat.feature_names == ["energy", "tempo"]
    assert cat.features.dtype == np.float32
    assert cat.features.min() == 0.0 and cat.features.max() == 1.0
    orig = cat.original_units(np.arange(len(cat)))
    want = np.array([EXPECTED_FEATURES[i] for i in cat.ids.tolist()])
    np.testing.assert_allclose(orig, want, rtol=1e-5)
    assert ds.report["single_event_users"] == 1
    assert ds.report["single_event_user_ids"] == ["u3"]


def frame_to(path: Path, df: pd.DataFrame, sep: str = ",", header: bool = True) -> Path:
    df.to_csv(path, sep=sep, index=False, header=header)
    return path


# ---------------------------------------------------------------- formats


def test_csv_with_header(long_csv: Path) -> None:
    ds = load(long_csv)
    check_small(ds)
    assert ds.catalogue.display.columns.tolist() == ["title", "artist"]
    assert ds.catalogue.display["title"].tolist() == ["Alpha", "Beta", "Gamma", "Delta"]


@pytest.mark.parametrize("sep", ["\t", ";", "|"], ids=["tab", "semicolon", "pipe"])
@pytest.mark.parametrize("configured", [False, True], ids=["detected", "configured"])
def test_delimiters(tmp_path: Path, sep: str, configured: bool) -> None:
    p = frame_to(tmp_path / "events.txt", long_frame(), sep=sep)
    check_small(load(p, delimiter=sep if configured else ""))


def test_tsv_file(tmp_path: Path) -> None:
    check_small(load(frame_to(tmp_path / "events.tsv", long_frame(), sep="\t")))


def test_space_delimited(tmp_path: Path) -> None:
    df = long_frame().drop(columns=["title", "artist"])
    p = frame_to(tmp_path / "events.txt", df, sep=" ")
    ds = load(p)
    assert histories_by_id(ds) == EXPECTED_HISTORIES
    assert ds.catalogue.feature_names == ["energy", "tempo"]


def test_csv_without_header_with_columns(tmp_path: Path) -> None:
    p = frame_to(tmp_path / "events.csv", long_frame(), header=False)
    check_small(load(p, columns=list(long_frame().columns)))
    # the same with header = "no" said explicitly, and with numeric ids
    q = tmp_path / "numeric.csv"
    q.write_text("1,10,5\n1,11,6\n2,10,1\n")
    ds = load(q, columns=["user_id", "item_id", "timestamp"], header="no")
    assert histories_by_id(ds) == {"1": ["10", "11"], "2": ["10"]}
    assert ds.catalogue.features is None


def test_csv_with_header_and_matching_columns(tmp_path: Path) -> None:
    p = frame_to(tmp_path / "events.csv", long_frame())
    check_small(load(p, columns=list(long_frame().columns)))


def test_csv_without_header_needs_columns(tmp_path: Path) -> None:
    p = tmp_path / "events.csv"
    p.write_text("1,10,100\n1,11,101\n")
    with pytest.raises(DataError) as e:
        load(p)
    msg = one_line_error(e.value)
    assert str(p) in msg and "data.columns" in msg


def test_renamed_columns(tmp_path: Path) -> None:
    df = long_frame().rename(columns={"user_id": "listener", "item_id": "song", "timestamp": "played_at"})
    p = frame_to(tmp_path / "events.csv", df)
    check_small(load(p, user_col="listener", item_col="song", time_col="played_at"))


def test_order_column_instead_of_time(tmp_path: Path) -> None:
    df = long_frame().rename(columns={"timestamp": "seq"})
    p = frame_to(tmp_path / "events.csv", df)
    check_small(load(p, order_col="seq"))


def test_parquet(tmp_path: Path) -> None:
    p = tmp_path / "events.parquet"
    long_frame().to_parquet(p)
    check_small(load(p))
    # detected from the magic bytes too
    q = tmp_path / "events.bin"
    q.write_bytes(p.read_bytes())
    check_small(load(q))


def test_parquet_two_tables(tmp_path: Path) -> None:
    events, items = split_frames()
    ev, it = tmp_path / "events.parquet", tmp_path / "items.parquet"
    events.to_parquet(ev)
    items.to_parquet(it)
    check_small(load(ev, items_path=str(it)))


U_DATA = "196\t242\t3\t881250949\n186\t302\t3\t891717742\n196\t377\t1\t878887116\n22\t377\t1\t878887116\n"


def test_movielens_u_data(tmp_path: Path) -> None:
    p = tmp_path / "u.data"
    p.write_text(U_DATA)
    ds = load(p)
    assert ds.catalogue.features is None and not ds.catalogue.has_features
    assert ds.report["no_features"] is True
    assert ds.catalogue.ids.tolist() == ["242", "302", "377"]
    assert histories_by_id(ds) == {"22": ["377"], "186": ["302"], "196": ["377", "242"]}
    assert ds.report["single_event_users"] == 2


def test_movielens_format_configured_for_another_name(tmp_path: Path) -> None:
    p = tmp_path / "ml100k.tsv"
    p.write_text(U_DATA)
    ds = load(p, format="movielens")
    assert histories_by_id(ds)["196"] == ["377", "242"]


def test_movielens_ratings_csv(tmp_path: Path) -> None:
    p = tmp_path / "ratings.csv"
    p.write_text("userId,movieId,rating,timestamp\n1,31,2.5,1260759144\n1,1029,3.0,1260759179\n2,31,4.0,835355493\n")
    ds = load(p)
    assert ds.catalogue.features is None  # the rating is a weight, never a feature
    assert histories_by_id(ds) == {"1": ["31", "1029"], "2": ["31"]}


def _u_item_line(item: int, title: str, genres: list[int]) -> str:
    return "|".join([str(item), title, "01-Jan-1995", "", "http://x/" + str(item), *map(str, genres)])


def test_movielens_u_item_as_features(tmp_path: Path) -> None:
    (tmp_path / "u.data").write_text(U_DATA)
    g = np.zeros((3, len(MOVIELENS_GENRES)), dtype=int)
    g[0, MOVIELENS_GENRES.index("comedy")] = 1
    g[1, MOVIELENS_GENRES.index("drama")] = 1
    g[2, [MOVIELENS_GENRES.index("comedy"), MOVIELENS_GENRES.index("romance")]] = 1
    lines = [_u_item_line(242, "Kolya (1996)", g[0].tolist()), _u_item_line(302, "L.A. Confidential (1997)", g[1].tolist()),
             _u_item_line(377, "Amélie (2001)", g[2].tolist())]
    (tmp_path / "u.item").write_bytes(("\n".join(lines) + "\n").encode("latin-1"))
    ds = load(tmp_path / "u.data", items_path=str(tmp_path / "u.item"))
    cat = ds.catalogue
    assert cat.feature_names == MOVIELENS_GENRES
    assert cat.ids.tolist() == ["242", "302", "377"]
    np.testing.assert_array_equal(cat.original_units(np.arange(3)), g)
    assert cat.display["title"].tolist()[2] == "Amélie (2001)"


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_legacy_pickle(tmp_path: Path, protocol: int) -> None:
    p = tmp_path / "clean.pk"
    p.write_bytes(pickle.dumps(long_frame(), protocol=protocol))
    check_small(load(p))


def test_legacy_pickle_with_dates_and_categories(tmp_path: Path) -> None:
    df = long_frame()
    df["timestamp"] = pd.to_datetime(df["timestamp"], unit="D", origin="2020-01-01")
    df["artist"] = df["artist"].astype("category")
    p = tmp_path / "clean.pickle"
    df.to_pickle(p)
    ds = load(p)
    check_small(ds)
    assert ds.report["time_kind"] == "datetime"


def test_long_table_and_two_tables_agree(long_csv: Path, two_csvs: tuple[Path, Path]) -> None:
    long = load(long_csv)
    ev, it = two_csvs
    two = load(ev, items_path=str(it))
    check_small(two)
    assert two.catalogue.ids.tolist() == long.catalogue.ids.tolist()
    np.testing.assert_array_equal(two.catalogue.features, long.catalogue.features)
    assert two.catalogue.fingerprint() == long.catalogue.fingerprint()
    np.testing.assert_array_equal(two.histories.items, long.histories.items)


def test_item_table_may_hold_unplayed_items(tmp_path: Path) -> None:
    events, items = split_frames()
    items = pd.concat([items, pd.DataFrame([{"item_id": "s9", "title": "New", "artist": "X", "energy": 0.2, "tempo": 70.0}])])
    ev, it = frame_to(tmp_path / "e.csv", events), frame_to(tmp_path / "i.csv", items)
    ds = load(ev, items_path=str(it))
    assert "s9" in ds.catalogue.ids.tolist()
    assert describe(ds)["events_per_item"]["never_played"] == 1


def test_iso_dates_as_time(tmp_path: Path) -> None:
    p = tmp_path / "e.csv"
    p.write_text(
        "user_id,item_id,timestamp\n"
        "a,x,2024-01-02T10:00:00\n"
        "a,y,2024-01-01T10:00:00\n"
        "a,z,2024-01-01T10:00:00\n"
        "b,x,2023-12-31 23:59:59\n"
    )
    ds = load(p)
    assert histories_by_id(ds) == {"a": ["y", "z", "x"], "b": ["x"]}
    assert ds.report["time_kind"] == "datetime"


def test_explicit_feature_columns(long_csv: Path) -> None:
    ds = load(long_csv, feature_cols=["tempo"])
    assert ds.catalogue.feature_names == ["tempo"]
    np.testing.assert_allclose(ds.catalogue.original_units(np.arange(4))[:, 0], [80, 100, 120, 90])


def test_feature_values_come_back_as_written(tmp_path: Path) -> None:
    """A recommendation shows an item's values as the data has them: undoing the [0, 1] normalisation in float32
    turned 0.5556 into 0.55560005 (and 0.4415 into 0.44149998)."""
    from whatnext.serving.rows import as_written

    values = [0.5556, 0.4415, 0.0713, 0.9871, 0.4981, 0.3587]
    p = tmp_path / "e.csv"
    p.write_text("user_id,item_id,timestamp,dance\n" + "".join(f"u{j % 2},i{j},{j},{v}\n" for j, v in enumerate(values)))
    cat = load(p, feature_cols=["dance"]).catalogue
    got = cat.original_units(cat.index_of([f"i{j}" for j in range(len(values))]))
    np.testing.assert_array_equal(got[:, 0], np.asarray(values, dtype=np.float32))
    assert [row[0] for row in as_written(got)] == values


def test_ids_map_both_ways(long_csv: Path) -> None:
    ds = load(long_csv)
    cat, h = ds.catalogue, ds.histories
    idx = cat.index_of(["s3", "nope", "s1"])
    assert idx.tolist() == [2, -1, 0]
    assert cat.ids[idx[[0, 2]]].tolist() == ["s3", "s1"]
    assert h.user_index(["u2", "zz"]).tolist() == [1, -1]


def test_numeric_ids_sort_numerically(tmp_path: Path) -> None:
    p = tmp_path / "e.csv"
    p.write_text("user_id,item_id,timestamp\n10,100,1\n9,20,2\n10,3,3\n")
    ds = load(p)
    assert ds.catalogue.ids.tolist() == ["3", "20", "100"]
    assert ds.histories.user_ids.tolist() == ["9", "10"]


def test_no_features_catalogue(tmp_path: Path) -> None:
    p = tmp_path / "e.csv"
    p.write_text("user_id,item_id,timestamp,title\na,x,1,X\na,y,2,Y\n")
    ds = load(p)
    assert ds.catalogue.features is None
    assert ds.catalogue.feature_names == []
    assert ds.catalogue.original_units(np.arange(2)).shape == (2, 0)
    assert describe(ds)["no_features"] is True


# ---------------------------------------------------------------- validation errors


def _data_error(path: Path, **data: object) -> str:
    with pytest.raises(DataError) as e:
        load(path, **data)
    assert e.value.exit_code == 3
    return one_line_error(e.value)


def _with(df: pd.DataFrame, row: int, col: str, value: object) -> pd.DataFrame:
    df = df.copy()
    df[col] = df[col].astype(object)
    df.loc[row, col] = value
    return df


@pytest.mark.parametrize(
    ("drop", "key"),
    [("user_id", "user_col"), ("item_id", "item_col"), ("timestamp", "time_col")],
)
def test_missing_event_columns(tmp_path: Path, drop: str, key: str) -> None:
    p = frame_to(tmp_path / "e.csv", long_frame().drop(columns=[drop]))
    msg = _data_error(p)
    assert str(p) in msg and f"'{drop}'" in msg and f"data.{key}" in msg


def test_missing_column_suggests_a_name(tmp_path: Path) -> None:
    p = frame_to(tmp_path / "e.csv", long_frame().rename(columns={"user_id": "user_idd"}))
    assert "did you mean 'user_idd'" in _data_error(p)


def test_missing_configured_columns(long_csv: Path, tmp_path: Path) -> None:
    msg = _data_error(long_csv, feature_cols=["energy", "loudness"])
    assert "'loudness'" in msg and "data.feature_cols" in msg
    assert "'seq'" in _data_error(long_csv, time_col="", order_col="seq")
    events, items = split_frames()
    ev = frame_to(tmp_path / "ev.csv", events)
    it = frame_to(tmp_path / "it.csv", items.rename(columns={"item_id": "id"}))
    msg = _data_error(ev, items_path=str(it))
    assert str(it) in msg and "'item_id'" in msg


def test_non_numeric_features(tmp_path: Path) -> None:
    p = frame_to(tmp_path / "e.csv", _with(long_frame(), 2, "tempo", "fast"))
    msg = _data_error(p, feature_cols=["energy", "tempo"])
    assert "'tempo'" in msg and "'fast'" in msg and str(p) in msg


def test_non_numeric_features_in_item_table(tmp_path: Path) -> None:
    events, items = split_frames()
    ev = frame_to(tmp_path / "ev.csv", events)
    it = frame_to(tmp_path / "it.csv", _with(items, 1, "energy", "loud"))
    msg = _data_error(ev, items_path=str(it), feature_cols=["energy", "tempo"])
    assert str(it) in msg and "'energy'" in msg and "'loud'" in msg


@pytest.mark.parametrize("bad", ["", "nan", "NaN", "inf", "-inf"])
def test_nan_and_inf_features(tmp_path: Path, bad: str) -> None:
    df = long_frame()
    df["energy"] = df["energy"].astype(object)
    df.loc[df["item_id"] == "s2", "energy"] = bad
    p = frame_to(tmp_path / "e.csv", df)
    msg = _data_error(p)
    assert "'energy'" in msg and "'s2'" in msg and str(p) in msg


def test_nan_features_in_item_table(tmp_path: Path) -> None:
    events, items = split_frames()
    items.loc[items["item_id"] == "s4", "tempo"] = np.inf
    ev, it = tmp_path / "ev.parquet", tmp_path / "it.parquet"
    events.to_parquet(ev)
    items.to_parquet(it)
    msg = _data_error(ev, items_path=str(it))
    assert "'tempo'" in msg and "'s4'" in msg


def test_lenient_load_counts_and_fills_missing_features(tmp_path: Path) -> None:
    df = long_frame()
    df.loc[df["item_id"] == "s2", "energy"] = np.nan
    p = frame_to(tmp_path / "e.csv", df)
    ds = load_dataset(config_for(p), lenient=True)
    assert ds.report["missing_features"] == {"energy": 1}
    assert np.isfinite(ds.catalogue.features).all()


def test_conflicting_features_in_long_table(tmp_path: Path) -> None:
    df = long_frame()
    df.loc[3, "tempo"] = 101.0  # s2 is 100.0 in row 2 and 101.0 in row 3
    p = frame_to(tmp_path / "e.csv", df)
    msg = _data_error(p, feature_cols=["energy", "tempo"])  # listed: a real conflict
    assert "'s2'" in msg and "'tempo'" in msg and "conflicting" in msg and "100 in one row and 101 in another" in msg
    # not listed: a column that varies within an item is an event attribute, left out and said so
    ds = load(p)
    assert ds.catalogue.feature_names == ["energy"]
    assert ds.report["unused_columns"] == [{"column": "tempo", "reason": ds.report["unused_columns"][0]["reason"]}]
    assert "several values for one item (1 items)" in ds.report["unused_columns"][0]["reason"]


def test_conflicting_features_in_item_table(tmp_path: Path) -> None:
    events, items = split_frames()
    items = pd.concat([items, items.iloc[[0]].assign(energy=0.77)])
    ev, it = frame_to(tmp_path / "ev.csv", events), frame_to(tmp_path / "it.csv", items)
    msg = _data_error(ev, items_path=str(it))
    assert str(it) in msg and "'energy'" in msg and "conflicting" in msg


def test_repeated_identical_item_rows_are_fine(tmp_path: Path) -> None:
    events, items = split_frames()
    ev = frame_to(tmp_path / "ev.csv", events)
    it = frame_to(tmp_path / "it.csv", pd.concat([items, items]))
    check_small(load(ev, items_path=str(it)))


def test_played_item_missing_from_item_table(tmp_path: Path) -> None:
    events, items = split_frames()
    ev = frame_to(tmp_path / "ev.csv", events)
    it = frame_to(tmp_path / "it.csv", items[items["item_id"] != "s4"])
    msg = _data_error(ev, items_path=str(it))
    assert "'s4'" in msg


@pytest.mark.parametrize(
    "content",
    ["", "\n\n", "user_id,item_id,timestamp\n", "user_id,item_id,timestamp\n\n\n"],
    ids=["empty", "blank-lines", "header-only", "header-and-blank-lines"],
)
def test_empty_data(tmp_path: Path, content: str) -> None:
    p = tmp_path / "e.csv"
    p.write_text(content)
    msg = _data_error(p)
    assert str(p) in msg and ("empty" in msg or "no events" in msg)


def test_empty_parquet_and_pickle(tmp_path: Path) -> None:
    empty = long_frame().iloc[:0]
    p, q = tmp_path / "e.parquet", tmp_path / "e.pk"
    empty.to_parquet(p)
    q.write_bytes(pickle.dumps(empty))
    for path in (p, q):
        assert "no events" in _data_error(path)


@pytest.mark.parametrize("content", ["a#b#c\n1#2#3\n4#5#6\n", "user_id:item_id:timestamp\nu:x:1\n"])
def test_unknown_delimiter(tmp_path: Path, content: str) -> None:
    p = tmp_path / "e.csv"
    p.write_text(content)
    msg = _data_error(p)
    assert str(p) in msg and "data.delimiter" in msg


def test_configured_delimiter_that_does_not_split(long_csv: Path) -> None:
    msg = _data_error(long_csv, delimiter=";")
    assert "data.delimiter" in msg


@pytest.mark.parametrize(
    ("name", "content", "fragment"),
    [
        ("e.csv", b"\x00\x01\x02\x03garbage", "binary"),
        ("e.csv", "user_id,item_id,timestamp\nJos\xe9,x,1\n".encode("latin-1"), "data.encoding"),
        ("e.parquet", b"PAR1 this is not really parquet", "Parquet"),
        ("e.pk", b"\x80\x04 not a pickle", "pickle"),
        ("e.pk", pickle.dumps([1, 2, 3]), "DataFrame"),
        ("e.csv", b"user_id,item_id,timestamp\na,x,1\nb,\"unterminated,2\nc,z,3\n", ""),
    ],
    ids=["binary", "latin-1", "bad-parquet", "bad-pickle", "pickle-of-list", "odd-quotes"],
)
def test_unreadable_data(tmp_path: Path, name: str, content: bytes, fragment: str) -> None:
    p = tmp_path / name
    p.write_bytes(content)
    with pytest.raises(DataError) as e:
        load(p)
    msg = one_line_error(e.value)
    assert str(p) in msg and fragment in msg


def test_latin1_with_configured_encoding(tmp_path: Path) -> None:
    p = tmp_path / "e.csv"
    p.write_bytes("user_id,item_id,timestamp\nJos\xe9,x,1\nJos\xe9,y,2\n".encode("latin-1"))
    ds = load(p, encoding="latin-1")
    assert ds.histories.user_ids.tolist() == ["José"]


def test_missing_ids_or_times(tmp_path: Path) -> None:
    p = tmp_path / "e.csv"
    p.write_text("user_id,item_id,timestamp\na,x,1\n,y,2\n")
    assert "row 2" in _data_error(p)
    q = tmp_path / "f.csv"
    q.write_text("user_id,item_id,timestamp\na,x,1\nb,y,yesterday-ish\n")
    assert "'timestamp'" in _data_error(q)


def test_missing_data_file(tmp_path: Path) -> None:
    p = tmp_path / "nope.csv"
    cfg = config_for(p)
    with pytest.raises(DataError) as e:
        load_dataset(cfg)
    assert str(p) in one_line_error(e.value)


# ---------------------------------------------------------------- single-event users, stable order


def test_single_event_users_are_kept_and_reported(long_csv: Path) -> None:
    ds = load(long_csv)
    h = ds.histories
    u3 = int(h.user_index(["u3"])[0])
    assert u3 >= 0 and h.lengths[u3] == 1
    assert ds.report["single_event_users"] == 1 and ds.report["single_event_user_ids"] == ["u3"]
    stats = describe(ds)
    assert stats["users"] == 3 and stats["single_event_users"] == 1
    # no training target and no held-out target for a single event
    assert u3 not in h.targets("test")[0] and u3 not in h.targets("valid")[0]
    assert not np.isin(h.event_users()[h.train_positions()], [u3]).any()


def test_equal_timestamps_keep_file_order() -> None:
    rng = np.random.default_rng(3)
    n = 400
    events = pd.DataFrame({
        "user_id": rng.integers(0, 7, n),
        "item_id": rng.permutation(n),  # a unique item per row identifies the row
        "timestamp": rng.integers(0, 4, n),  # many ties
    })
    ds = build_dataset(events, None, Config())
    got = histories_by_id(ds)
    ref = events.sort_values(["user_id", "timestamp"], kind="stable")
    want = {str(u): [str(i) for i in g["item_id"]] for u, g in ref.groupby("user_id", sort=True)}
    assert got == want


def test_duplicate_events_are_counted_not_dropped(tmp_path: Path) -> None:
    p = tmp_path / "e.csv"
    p.write_text("user_id,item_id,timestamp\na,x,1\na,x,1\na,y,2\n")
    ds = load(p)
    assert ds.report["duplicate_events"] == 1
    assert histories_by_id(ds) == {"a": ["x", "x", "y"]}


# ---------------------------------------------------------------- the split


@pytest.fixture
def split_dataset() -> Dataset:
    # users with 1, 2, 3 and 5 events; items named after user and position
    rows = [(u, f"{u}{k}", k) for u, n in (("a", 1), ("b", 2), ("c", 3), ("d", 5)) for k in range(n)]
    events = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"]).iloc[::-1]  # file order reversed
    return build_dataset(events, None, Config())


def test_split_targets(split_dataset: Dataset) -> None:
    h, ids = split_dataset.histories, split_dataset.catalogue.ids
    user = {str(u): i for i, u in enumerate(h.user_ids)}
    assert h.train_len.tolist() == [1, 1, 1, 3]
    test_users, test_pos = h.targets("test")
    assert [str(h.user_ids[u]) for u in test_users] == ["b", "c", "d"]
    assert ids[h.items[test_pos]].tolist() == ["b1", "c2", "d4"]  # the last event
    valid_users, valid_pos = h.targets("valid")
    assert [str(h.user_ids[u]) for u in valid_users] == ["c", "d"]
    assert ids[h.items[valid_pos]].tolist() == ["c1", "d3"]  # the second-to-last event
    assert ids[h.of(user["d"], "train")].tolist() == ["d0", "d1", "d2"]
    assert ids[h.of(user["d"], "valid")].tolist() == ["d0", "d1", "d2"]
    assert ids[h.of(user["d"], "test")].tolist() == ["d0", "d1", "d2", "d3"]
    assert ids[h.of(user["a"], "train")].tolist() == ["a0"]
    with pytest.raises(ValueError):
        h.targets("train")


def test_train_positions_never_hold_out_events(split_dataset: Dataset) -> None:
    h, ids = split_dataset.histories, split_dataset.catalogue.ids
    pos = h.train_positions()
    held_out = np.concatenate([h.targets("test")[1], h.targets("valid")[1]])
    assert not np.isin(pos, held_out).any()
    assert ids[h.items[pos]].tolist() == ["d1", "d2"]  # the first event of a user is never a target
    mask = h.train_mask()
    assert not mask[held_out].any()
    assert mask.sum() == h.train_len.sum()
    # popularity counts only training events
    pop = split_dataset.popularity()
    assert pop.sum() == mask.sum()
    assert pop[split_dataset.catalogue.index_of(["d4", "d3", "c2", "b1"])].sum() == 0


def test_train_positions_on_random_data() -> None:
    ds = random_dataset(n_users=50, min_len=1, max_len=9, seed=5)
    h = ds.histories
    pos = h.train_positions()
    users = h.event_users()[pos]
    local = pos - h.offsets[users]
    assert (local >= 1).all() and (local < h.train_len[users]).all()
    held = np.concatenate([h.targets("test")[1], h.targets("valid")[1]])
    assert not np.isin(pos, held).any()
    assert len(pos) == np.maximum(h.train_len - 1, 0).sum()


def test_windows_padding(split_dataset: Dataset) -> None:
    h, ids = split_dataset.histories, split_dataset.catalogue.ids
    d = int(np.flatnonzero(h.user_ids == "d")[0])
    start = h.offsets[d]
    positions = np.array([start, start + 1, start + 3, start + 4])
    win, lengths = h.windows(positions, 3)
    assert win.shape == (4, 3)
    assert lengths.tolist() == [0, 1, 3, 3]
    assert (win[0] == PAD).all()
    assert ids[win[1, :1]].tolist() == ["d0"] and (win[1, 1:] == PAD).all()
    assert ids[win[2]].tolist() == ["d0", "d1", "d2"]
    assert ids[win[3]].tolist() == ["d1", "d2", "d3"]  # the most recent items
    # a window never reaches into another user's events
    c = int(np.flatnonzero(h.user_ids == "c")[0])
    win, lengths = h.windows(np.array([h.offsets[c], h.offsets[c] + 2]), 5)
    assert lengths.tolist() == [0, 2]
    assert (win[0] == PAD).all() and ids[win[1, :2]].tolist() == ["c0", "c1"] and (win[1, 2:] == PAD).all()


def test_windows_at_user_ends(split_dataset: Dataset) -> None:
    # a user's end is the next user's start: with ``users`` given, the window belongs to that user
    h = split_dataset.histories
    users = np.arange(len(h))
    ends = h.offsets[1:]
    win, lengths = h.windows(ends, 4, users)
    assert lengths.tolist() == np.minimum(h.lengths, 4).tolist()
    for u in users:
        np.testing.assert_array_equal(win[u, : lengths[u]], h.of(int(u))[-4:])
    ends_train = h.offsets[:-1] + h.train_len
    win, lengths = h.windows(ends_train, 9, users)
    assert lengths.tolist() == h.train_len.tolist()


def test_windows_against_reference() -> None:
    ds = random_dataset(n_users=20, seed=9)
    h = ds.histories
    positions = np.arange(len(h.items))
    for w in (1, 4, 20):
        win, lengths = h.windows(positions, w)
        users = h.event_users()
        for t in range(len(positions)):
            prev = h.items[h.offsets[users[t]] : t][-w:]
            assert lengths[t] == len(prev)
            assert win[t, : len(prev)].tolist() == prev.tolist()
            assert (win[t, len(prev) :] == PAD).all()


# ---------------------------------------------------------------- fingerprint and normalisation


def test_fingerprint(tmp_path: Path) -> None:
    base = long_frame()
    a = load(frame_to(tmp_path / "a.csv", base)).catalogue.fingerprint()
    assert a == load(frame_to(tmp_path / "b.csv", base)).catalogue.fingerprint()
    changed = base.copy()
    changed.loc[changed["item_id"] == "s4", "energy"] = 0.31  # an inner value: the normalised matrix changes
    assert load(frame_to(tmp_path / "c.csv", changed)).catalogue.fingerprint() != a
    renamed = base.replace({"item_id": {"s4": "s5"}})
    assert load(frame_to(tmp_path / "d.csv", renamed)).catalogue.fingerprint() != a
    fewer = base.drop(columns=["tempo"])
    assert load(frame_to(tmp_path / "e.csv", fewer)).catalogue.fingerprint() != a
    # the events (not the catalogue) do not change it
    more = pd.concat([base, base.iloc[[0]].assign(user_id="u9")])
    assert load(frame_to(tmp_path / "f.csv", more)).catalogue.fingerprint() == a


def test_normalisation_is_recorded() -> None:
    events = pd.DataFrame({"user_id": [1, 1, 1], "item_id": [1, 2, 3], "timestamp": [1, 2, 3]})
    items = pd.DataFrame({"item_id": [1, 2, 3], "loud": [-60.0, -30.0, 0.0], "const": [5.0, 5.0, 5.0]})
    cat = build_dataset(events, items, Config()).catalogue
    np.testing.assert_allclose(cat.features[:, 0], [0.0, 0.5, 1.0])
    np.testing.assert_allclose(cat.features[:, 1], [0.0, 0.0, 0.0])  # a constant feature does not divide by zero
    np.testing.assert_allclose(cat.original_units(np.array([2, 0])), [[0.0, 5.0], [-60.0, 5.0]])
    assert cat.feature_min.dtype == np.float32 and cat.feature_scale.dtype == np.float32

