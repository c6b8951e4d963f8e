"""Real datasets as they come (#10): dates, id spellings, locales, compression, odd tables, checkpoints of other data.

Every case goes through the CLI (inspect-data, recommend, eval) or the engine on tiny generated files.
"""

from __future__ import annotations

import bz2
import datetime as dt
import gzip
import json
import lzma
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from whatnext import engine
from whatnext.cli import app
from whatnext.config import Config
from whatnext.data import load_dataset
from whatnext.errors import DataError

SMALL_MODEL = """
[model]
window = 5
hidden_size = 8
embedding_dim = 8
rerank = 5
[train]
epochs = 1
batch_size = 8
threads = 1
checkpoint_every = 1000
[eval]
ks = [5]
"""


def write(folder: Path, events: str | bytes, data: str = "", items: str | None = None, name: str = "events.csv") -> Path:
    """events (and items.csv), and a whatnext.toml with ``data`` lines under [data]; the config path."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(events if isinstance(events, bytes) else events.encode())
    lines = f'path = "{name}"\n'
    if items is not None:
        (folder / "items.csv").write_text(items)
        lines += 'items_path = "items.csv"\n'
    cfg = folder / "whatnext.toml"
    cfg.write_text(f"[data]\n{lines}{data}\n{SMALL_MODEL}")
    return cfg


def inspect(cfg: Path) -> dict:
    result = CliRunner().invoke(app, ["inspect-data", "--config", str(cfg), "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def error(args: list[str], code: int) -> str:
    result = CliRunner().invoke(app, args)
    assert result.exit_code == code, f"exit {result.exit_code}: {result.output}"
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.output, result.output
    return lines[0]


def histories(cfg: Path | Config) -> dict[str, list[str]]:
    ds = load_dataset(cfg if isinstance(cfg, Config) else engine.config_for(cfg))
    h, cat = ds.histories, ds.catalogue
    return {str(h.user_ids[u]): [str(cat.ids[i]) for i in h.of(u)] for u in range(len(h))}


# ---------------------------------------------------------------- dates


FORMATS = {"iso": "%Y-%m-%dT%H:%M:%S", "day-first": "%d/%m/%Y %H:%M:%S", "month-first": "%m-%d-%Y %H:%M:%S",
           "day-first-dots": "%d.%m.%Y %H:%M:%S", "month-first-12h": "%m/%d/%Y %I:%M:%S %p"}


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(offsets=st.lists(st.integers(0, 40 * 86400), min_size=6, max_size=30, unique=True),
       seed=st.integers(0, 1000))
def test_iso_day_first_and_month_first_order_histories_alike(tmp_path_factory: pytest.TempPathFactory,
                                                            offsets: list[int], seed: int) -> None:
    start = dt.datetime(2024, 3, 15)
    rng = np.random.default_rng(seed)
    times = [start + dt.timedelta(seconds=s) for s in offsets]
    users = rng.integers(0, 3, len(times))
    items = rng.integers(0, 5, len(times))
    order = rng.permutation(len(times))  # the file is not in time order
    folder = tmp_path_factory.mktemp("dates")
    got = {}
    for name, fmt in FORMATS.items():
        rows = "".join(f"u{users[i]},s{items[i]},{times[i].strftime(fmt)}\n" for i in order)
        cfg = write(folder / name, "user_id,item_id,timestamp\n" + rows)
        ambiguous = name != "iso" and all(t.day <= 12 for t in times)
        if ambiguous:
            with pytest.raises(DataError, match="data.time_format"):
                histories(cfg)
            got[name] = got["iso"]
        else:
            got[name] = histories(cfg)
    assert got["day-first"] == got["iso"] == got["month-first"] == got["day-first-dots"] == got["month-first-12h"]


@pytest.mark.parametrize("value", ["31/03/2024 24:00", "31/03/2024 10:61", "31/03/2024 13:00 PM", "30/02/2024"])
def test_impossible_dates_and_times_are_errors_not_next_days(tmp_path: Path, value: str) -> None:
    cfg = write(tmp_path, f"user_id,item_id,timestamp\nu1,a,31/03/2024 10:00\nu1,b,{value}\n")
    msg = error(["inspect-data", "--config", str(cfg)], 3)
    assert f"holds '{value}', not a date when read as day/month/year" in msg


def test_late_march_to_april_reads_day_first_for_every_value(tmp_path: Path) -> None:
    # the case: format="mixed" read 01/04/2024 as 4 January, before 31/03/2024
    cfg = write(tmp_path, "user_id,item_id,timestamp\nu1,a,31/03/2024\nu1,b,01/04/2024\nu1,c,02/04/2024\n")
    assert histories(cfg) == {"u1": ["a", "b", "c"]}
    assert inspect(cfg)["time"]["format"] == "%d/%m/%Y"


def test_ambiguous_dates_stop_and_time_format_decides(tmp_path: Path) -> None:
    events = "user_id,item_id,timestamp\nu1,a,02/04/2024\nu1,b,03/04/2024\nu1,c,04/03/2024\n"
    cfg = write(tmp_path / "ambiguous", events)
    msg = error(["inspect-data", "--config", str(cfg)], 3)
    assert "'02/04/2024'" in msg and "data.time_format" in msg and "%d/%m/%Y or %m/%d/%Y" in msg
    day_first = write(tmp_path / "day", events, 'time_format = "%d/%m/%Y"\n')
    assert histories(day_first) == {"u1": ["c", "a", "b"]}
    month_first = write(tmp_path / "month", events, 'time_format = "%m/%d/%Y"\n')
    assert histories(month_first) == {"u1": ["a", "b", "c"]}


def test_offsets_and_zones_are_converted_to_utc(tmp_path: Path) -> None:
    # 10:00+02:00 is 08:00 UTC: before 09:30Z although its local clock reads later
    cfg = write(tmp_path, "user_id,item_id,timestamp\nu1,late,2024-04-01T09:30:00Z\nu1,early,2024-04-01T10:00:00+02:00\n"
                          "u1,first,2024-04-01 07:00\n")
    assert histories(cfg) == {"u1": ["first", "early", "late"]}
    ds = load_dataset(engine.config_for(cfg))
    assert pd.Timestamp(int(ds.histories.times.max())) == pd.Timestamp("2024-04-01 09:30")
    zoned = pd.DataFrame({"user_id": ["u1", "u1"], "item_id": ["late", "early"],
                          "timestamp": pd.to_datetime(["2024-04-01 09:30", "2024-04-01 08:00"]).tz_localize("UTC")
                          .tz_convert("Europe/Paris")})
    zoned.to_parquet(tmp_path / "zoned.parquet")
    cfg = write(tmp_path / "pq", b"", 'path = "../zoned.parquet"\n', name="unused.csv")
    (tmp_path / "pq" / "whatnext.toml").write_text(f'[data]\npath = "{tmp_path / "zoned.parquet"}"\n{SMALL_MODEL}')
    assert histories(tmp_path / "pq" / "whatnext.toml") == {"u1": ["early", "late"]}


@pytest.mark.parametrize(("scale", "unit"), [(1, "seconds"), (1000, "milliseconds"), (1_000_000, "microseconds")])
def test_unix_time_units_are_reported(tmp_path: Path, scale: int, unit: str) -> None:
    t0 = 1_711_843_200  # 2024-03-31T00:00:00Z
    cfg = write(tmp_path, "user_id,item_id,timestamp\n" + "".join(f"u1,s{i},{(t0 + i * 86400) * scale}\n" for i in range(3)))
    got = inspect(cfg)["time"]
    assert got["unit"] == unit and got["first"] == "2024-03-31T00:00:00+00:00" and got["span_days"] == 2.0
    result = CliRunner().invoke(app, ["inspect-data", "--config", str(cfg)], env={"COLUMNS": "200"})
    assert f"unix {unit}" in result.stdout


# ---------------------------------------------------------------- ids as written


SPELLINGS = ["007", "7", "0273", "273", "a b", "Ünïcode", "NA", "null", "1e3", "1000", "x,y", "-0"]


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(users=st.lists(st.sampled_from(SPELLINGS), min_size=1, max_size=6, unique=True),
       items=st.lists(st.sampled_from(SPELLINGS), min_size=1, max_size=6, unique=True))
def test_id_spellings_round_trip(tmp_path_factory: pytest.TempPathFactory, users: list[str], items: list[str]) -> None:
    rows = [(u, i, t) for t, (u, i) in enumerate((u, i) for u in users for i in items)]
    df = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])
    folder = tmp_path_factory.mktemp("ids")
    df.to_csv(folder / "events.csv", index=False)
    (folder / "whatnext.toml").write_text('[data]\npath = "events.csv"\n')
    got = histories(folder / "whatnext.toml")
    assert sorted(got) == sorted(users)
    assert all(sorted(h) == sorted(items) for h in got.values())


@pytest.fixture(scope="module")
def padded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A trained project whose user ids are 007 and 7 (and more) and whose item ids are zero-padded."""
    folder = tmp_path_factory.mktemp("padded")
    rng = np.random.default_rng(0)
    users = ["007", "7", "u 3", "Ünï", "0"] + [f"{n:03d}" for n in range(10, 25)]
    rows = [(u, f"{int(rng.integers(1, 31)):04d}", t) for u in users for t in range(12)]
    events = "user_id,item_id,timestamp\n" + "".join(f"{u},{i},{t}\n" for u, i, t in rows)
    items = "item_id,energy,tempo\n" + "".join(f"{i:04d},{rng.random():.3f},{80 + i}\n" for i in range(1, 31))
    cfg = write(folder, events, items=items)
    engine.train(cfg)
    return cfg


def test_recommend_keeps_id_spellings(padded: Path, tmp_path: Path) -> None:
    run = CliRunner()
    out = run.invoke(app, ["recommend", "--config", str(padded), "--history", "0001,0002", "-k", "3", "--json"])
    assert out.exit_code == 0, out.output
    got = json.loads(out.stdout)
    assert got["history"] == ["0001", "0002"] and all(len(r["item_id"]) == 4 for r in got["recommendations"])
    a = json.loads(run.invoke(app, ["recommend", "--config", str(padded), "--user", "007", "--json"]).stdout)
    b = json.loads(run.invoke(app, ["recommend", "--config", str(padded), "--user", "7", "--json"]).stdout)
    assert a["user"] == "007" and b["user"] == "7" and a["history"] != b["history"]  # two users, not merged
    msg = error(["recommend", "--config", str(padded), "--history", "1"], 5)
    assert "unknown item '1'" in msg  # 0001 is not 1
    table = run.invoke(app, ["recommend", "--config", str(padded), "--user", "Ünï"])
    assert table.exit_code == 0 and "Ünï" in table.stdout
    for suffix in ("csv", "parquet"):
        path = tmp_path / f"all.{suffix}"
        res = run.invoke(app, ["recommend", "--config", str(padded), "--all-users", "--output", str(path), "-k", "2"])
        assert res.exit_code == 0, res.output
        back = pd.read_csv(path, dtype=str) if suffix == "csv" else pd.read_parquet(path)
        assert {"007", "7", "u 3", "Ünï", "0"} <= set(back["user_id"])
        assert back["item_id"].str.fullmatch(r"\d{4}").all()


def test_a_checkpoint_from_other_features_exits_4(padded: Path, tmp_path: Path) -> None:
    import shutil

    proj = tmp_path / "proj"
    shutil.copytree(padded.parent, proj)
    items = pd.read_csv(proj / "items.csv", dtype={"item_id": str})
    items.assign(loudness=items["energy"] * 3).to_csv(proj / "items.csv", index=False)
    for cmd in (["recommend", "--config", str(proj / "whatnext.toml"), "--user", "007"],
                ["eval", "--config", str(proj / "whatnext.toml")]):
        msg = error(cmd, 4)
        assert "trained on other data: events.csv (30 items, features: energy, tempo" in msg
        assert "features: energy, tempo, loudness" in msg and "RuntimeError" not in msg
    # the same values under other names: the fingerprint covers names too
    items.rename(columns={"tempo": "bpm"}).to_csv(proj / "items.csv", index=False)
    assert "features: energy, bpm" in error(["recommend", "--config", str(proj / "whatnext.toml"), "--user", "7"], 4)


# ---------------------------------------------------------------- locales, compression


SEMICOLON = "user_id;item_id;timestamp;energy;title\nu1;s1;1;0,5;One\nu1;s2;2;1,25;Two\nu2;s1;3;0,5;One\nu2;s3;4;-2,0;Three\n"


def test_decimal_commas_are_detected_and_said(tmp_path: Path) -> None:
    got = inspect(write(tmp_path / "auto", SEMICOLON))
    assert [f["name"] for f in got["features"]] == ["energy"] and got["features"][0]["max"] == 1.25
    assert any("decimal comma" in n and "energy" in n for n in got["reading"])
    configured = inspect(write(tmp_path / "set", SEMICOLON, 'decimal = ","\n'))
    assert configured["features"][0]["min"] == -2.0
    text = CliRunner().invoke(app, ["inspect-data", "--config", str(tmp_path / "auto" / "whatnext.toml")]).stdout
    assert "decimal comma detected in energy" in text


@pytest.mark.parametrize("kind", ["gz", "bz2", "xz", "zst"])
def test_compressed_files_read_like_plain_ones(tmp_path: Path, kind: str) -> None:
    plain = inspect(write(tmp_path / "plain", SEMICOLON))
    raw = SEMICOLON.encode()
    if kind == "zst":
        import zstandard

        packed = zstandard.ZstdCompressor().compress(raw)
    else:
        packed = {"gz": gzip.compress, "bz2": bz2.compress, "xz": lzma.compress}[kind](raw)
    got = inspect(write(tmp_path / kind, packed, name=f"events.csv.{kind}"))
    for key in ("users", "items", "events", "features", "history_length", "fingerprint"):
        assert got[key] == plain[key], key


def test_compressed_movielens_ratings_csv_keeps_its_header_names(tmp_path: Path) -> None:
    ratings = "userId,movieId,rating,timestamp\n1,0031,4.0,964982703\n1,1029,3.0,964982224\n2,0031,5.0,964983000\n"
    as_written = write(tmp_path / "own", gzip.compress(ratings.encode()), 'user_col = "userId"\nitem_col = "movieId"\n',
                       name="ratings.csv.gz")
    assert histories(as_written) == {"1": ["1029", "0031"], "2": ["0031"]}
    defaults = write(tmp_path / "defaults", ratings, name="ratings.csv")
    assert histories(defaults) == histories(as_written)


# ---------------------------------------------------------------- odd tables


def test_session_log_keeps_only_columns_constant_per_item(tmp_path: Path) -> None:
    events = ("user_id,item_id,timestamp,session_length,hour,skipped,energy,genre\n"
              "u1,s1,1,300,10,0,0.5,Rock\nu1,s2,2,300,10,1,0.7,Pop\nu2,s1,3,120,23,1,0.5,Rock\nu2,s3,4,120,23,0,0.9,Jazz\n")
    got = inspect(write(tmp_path / "auto", events))
    assert [f["name"] for f in got["features"]] == ["energy"]
    reasons = {u["column"]: u["reason"] for u in got["unused_columns"]}
    assert set(reasons) == {"session_length", "hour", "skipped", "genre"}
    assert all("several values for one item" in reasons[c] for c in ("session_length", "hour", "skipped"))
    assert "text" in reasons["genre"]
    text = CliRunner().invoke(app, ["inspect-data", "--config", str(tmp_path / "auto" / "whatnext.toml")]).stdout
    assert "Columns not used as item features" in text and "session_length" in text
    none = inspect(write(tmp_path / "none", events, 'feature_cols = "none"\n'))
    assert none["no_features"] and {u["column"] for u in none["unused_columns"]} >= {"energy", "hour"}


def test_multi_valued_genres_become_indicator_features(tmp_path: Path) -> None:
    events = "user_id,item_id,timestamp\nu1,m1,1\nu1,m2,2\nu2,m3,3\n"
    items = "item_id,genres\nm1,Adventure|Animation|Comedy\nm2,Comedy\nm3,\n"
    cfg = write(tmp_path, events, 'multi_value_cols = ["genres"]\n', items=items)
    ds = load_dataset(engine.config_for(cfg))
    cat = ds.catalogue
    assert cat.feature_names == ["genres=Adventure", "genres=Animation", "genres=Comedy"]
    np.testing.assert_array_equal(cat.original_units(np.arange(3)), [[1, 1, 1], [0, 0, 1], [0, 0, 0]])
    plain = load_dataset(engine.config_for(write(tmp_path / "plain", events, items=items)))
    assert plain.catalogue.features is None
    assert "multi_value_cols" in plain.report["unused_columns"][0]["reason"]


def test_item_tables_have_their_own_id_key_and_checks(tmp_path: Path) -> None:
    events = "user_id,artistID,timestamp\nu1,a1,1\nu1,a2,2\nu2,a1,3\n"
    only_ids = write(tmp_path / "ids", events, 'item_col = "artistID"\nitems_id_col = "id"\n', items="id\na1\na2\na3\n")
    ds = load_dataset(engine.config_for(only_ids))
    assert ds.catalogue.ids.tolist() == ["a1", "a2", "a3"] and ds.catalogue.features is None
    named = write(tmp_path / "named", events, 'item_col = "artistID"\nitems_id_col = "id"\n',
                  items="id,name,listeners\na1,One,10\na2,Two,20\n")
    assert [f["name"] for f in inspect(named)["features"]] == ["listeners"]


def test_one_listener_and_artist_plus_title(tmp_path: Path) -> None:
    events = ("artist,title,played_at\nDaft Punk,One More Time,2024-03-31 10:00\nAir,La femme d'argent,2024-03-31 09:00\n"
              "Daft Punk,Aerodynamic,2024-03-31 11:00\nAir,One More Time,2024-03-31 12:00\n")
    cfg = write(tmp_path, events, 'user_col = ""\nitem_col = ["artist", "title"]\ntime_col = "played_at"\n')
    assert histories(cfg) == {"me": ["Air - La femme d'argent", "Daft Punk - One More Time", "Daft Punk - Aerodynamic",
                                     "Air - One More Time"]}
    got = inspect(cfg)
    assert got["users"] == 1 and got["items"] == 4 and got["one_user"]


def test_messages_show_ids_as_written(tmp_path: Path) -> None:
    df = pd.DataFrame({"user_id": [1, 2], "item_id": [52, 52], "timestamp": [1, 2], "energy": [0.1, 0.7]})
    df.to_parquet(tmp_path / "events.parquet")
    (tmp_path / "whatnext.toml").write_text('[data]\npath = "events.parquet"\nfeature_cols = ["energy"]\n')
    msg = error(["inspect-data", "--config", str(tmp_path / "whatnext.toml")], 3)
    assert "item '52' has conflicting features ('energy' is 0.1 in one row and 0.7 in another" in msg
    assert "np." not in msg


def test_fingerprint_covers_feature_names_and_old_checkpoints_keep_their_form(tmp_path: Path) -> None:
    from whatnext.errors import CheckpointError

    cfg = write(tmp_path, "user_id,item_id,timestamp\nu1,a,1\nu1,b,2\n", items="item_id,energy\na,0.1\nb,0.9\n")
    cat = load_dataset(engine.config_for(cfg)).catalogue
    renamed = write(tmp_path / "renamed", "user_id,item_id,timestamp\nu1,a,1\nu1,b,2\n", items="item_id,tempo\na,0.1\nb,0.9\n")
    other = load_dataset(engine.config_for(renamed)).catalogue
    assert other.legacy_fingerprint() == cat.legacy_fingerprint() and other.fingerprint() != cat.fingerprint()
    cat.check_checkpoint({"fingerprint": cat.fingerprint(), "catalogue": cat.summary()})
    cat.check_checkpoint({"fingerprint": cat.legacy_fingerprint()})  # written before the change: no catalogue record
    with pytest.raises(CheckpointError, match="trained on other data: the built-in demo data \\(2 items, features: energy"):
        other.check_checkpoint({"fingerprint": cat.fingerprint(), "catalogue": cat.summary()})
    with pytest.raises(CheckpointError, match="fingerprint a list"):  # a new checkpoint never passes on the old form
        cat.check_checkpoint({"fingerprint": [1, 2], "catalogue": cat.summary()})
    with pytest.raises(CheckpointError):
        cat.check_checkpoint({"fingerprint": cat.legacy_fingerprint(), "catalogue": cat.summary()})


# ---------------------------------------------------------------- headerless files of other shapes


@pytest.mark.parametrize(("events", "sep", "proposed"), [
    # Amazon reviews: user, item, rating, unix time, no header
    ("A0001XYZ,B0010,3.0,1300000000\nA0001XYZ,B0011,5.0,1300086400\nA0002XYZ,B0010,4.0,1300000000\n", ",",
     '["user_id", "item_id", "col3", "timestamp"]'),
    # Last.fm 1K: user, ISO time, artist id, artist, track id, track, no header
    ("user_01\t2009-05-04T23:08:57Z\ta1\tArtist\tt1\tTrack\nuser_01\t2009-05-04T23:12:00Z\ta2\tArtist\tt2\tTrack\n"
     "user_02\t2009-05-05T01:00:00Z\ta1\tArtist\tt1\tTrack\n", "\t",
     '["user_id", "timestamp", "item_id", "col4", "col5", "col6"]'),
])
def test_a_first_row_of_data_is_not_taken_for_a_header(tmp_path: Path, events: str, sep: str, proposed: str) -> None:
    """A first row holding a number or a date is data: the error says so and proposes columns by what the fields
    look like, instead of reading the first event as column names ('missing column timestamp; found A0001XYZ...')."""
    cfg = write(tmp_path, events)
    with pytest.raises(DataError) as e:
        load_dataset(engine.config_for(cfg))
    msg = str(e.value)
    assert "no header row" in msg and f"columns = {proposed}" in msg and events.split(sep)[0] in msg, msg
    # the proposal, followed, reads every row as an event
    ds = load_dataset(engine.config_for(cfg, {"data.columns": json.loads(proposed)}))
    assert sorted(map(str, ds.histories.user_ids)) == sorted({ln.split(sep)[0] for ln in events.splitlines()})
    assert len(ds.histories.items) == len(events.splitlines())


def test_double_colon_files_under_any_name(tmp_path: Path) -> None:
    """MovieLens 1M/10M's '::' is detected in a file of any name (by name, ratings.dat always was)."""
    cfg = write(tmp_path, "1::10::5::978300760\n1::11::3::978302109\n2::10::4::978301968\n", name="ml1m.dat",
                data='columns = ["user_id", "item_id", "rating", "timestamp"]')
    ds = load_dataset(engine.config_for(cfg))
    assert sorted(map(str, ds.histories.user_ids)) == ["1", "2"] and len(ds.histories.items) == 3


def test_a_time_column_mixing_numbers_and_dates_says_so(tmp_path: Path) -> None:
    cfg = write(tmp_path, "user_id,item_id,timestamp\n1,a,2024-01-01\n1,b,1700000000\n2,a,2024-01-03\n")
    with pytest.raises(DataError, match=r"column 'timestamp' mixes numbers \(1700000000\) and dates \('2024-01-01'\)"):
        load_dataset(engine.config_for(cfg))


def test_data_columns_name_the_events_file_only(tmp_path: Path) -> None:
    """A headerless events file named by data.columns beside an item table with its own header (the item table was
    read with the events' column names: 'item ids played are not in the item table')."""
    cfg = write(tmp_path, "1,s1,1\n1,s2,2\n2,s1,3\n2,s3,4\n", data='columns = ["user_id", "item_id", "timestamp"]',
                items="item_id,energy,tempo\ns1,0.5,0.3\ns2,0.1,0.9\ns3,0.4,0.4\n")
    ds = load_dataset(engine.config_for(cfg))
    assert ds.catalogue.feature_names == ["energy", "tempo"] and len(ds.histories.items) == 4


def test_a_headerless_item_table_is_told_to_add_a_header(tmp_path: Path) -> None:
    cfg = write(tmp_path, "user_id,item_id,timestamp\n1,s1,1\n1,s2,2\n2,s1,3\n", items="s1,0.5,0.3\ns2,0.1,0.9\n")
    with pytest.raises(DataError, match=r"items\.csv: the item table has no header row \(its first row, 3 fields: "
                                        r"s1, 0\.5, 0\.3\); add one naming its columns: item_id for the ids"):
        load_dataset(engine.config_for(cfg))


def test_double_colon_inside_ids_does_not_displace_a_real_delimiter(tmp_path: Path) -> None:
    cfg = write(tmp_path, "u1,ns::s1,1\nu1,ns::s2,2\nu2,ns::s1,3\nu2,ns::s3,4\n",
                data='columns = ["user_id", "item_id", "timestamp"]')
    ds = load_dataset(engine.config_for(cfg))
    assert len(ds.histories.items) == 4 and "ns::s1" in list(map(str, ds.catalogue.ids))


def test_header_no_describes_the_events_file_not_the_item_table(tmp_path: Path) -> None:
    cfg = write(tmp_path, "1,s1,1\n1,s2,2\n2,s1,3\n2,s3,4\n",
                data='header = "no"\ncolumns = ["user_id", "item_id", "timestamp"]',
                items="item_id,energy,tempo\ns1,0.5,0.3\ns2,0.1,0.9\ns3,0.4,0.4\n")
    assert load_dataset(engine.config_for(cfg)).catalogue.feature_names == ["energy", "tempo"]


def test_long_numeric_ids_are_not_proposed_as_the_time(tmp_path: Path) -> None:
    cfg = write(tmp_path, "123456789,987654321,1300000000\n123456789,987654322,1300000100\n")
    with pytest.raises(DataError, match=r'columns = \["user_id", "item_id", "timestamp"\]'):
        load_dataset(engine.config_for(cfg))
