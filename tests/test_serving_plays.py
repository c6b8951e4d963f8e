"""The play log: durable lines, torn tails cut, bad lines passed over, shared between readers; and
``whatnext train --plays``, which trains on the data with the logged plays appended."""

from __future__ import annotations

import json
import os
from pathlib import Path

import core_helpers as ch
import numpy as np
import pytest

from whatnext import engine
from whatnext.errors import ConfigError, DataError
from whatnext.serving.plays import PlayLog, read_plays, with_plays


def _index_of(ids: list[str]) -> np.ndarray:
    return np.array([int(i) if i.isdigit() and int(i) < 40 else -1 for i in ids], dtype=np.int64)


def test_appended_plays_are_read_back_in_order_by_every_reader(tmp_path: Path) -> None:
    path = tmp_path / "plays.jsonl"
    writer, reader = PlayLog(path, _index_of), PlayLog(path, _index_of)
    writer.append("u1", ["1", "2"])
    writer.append("new", ["3"])
    assert reader.has_new()
    got = reader.read_new()
    assert [(u, i.tolist()) for u, i in got] == [("u1", [1, 2]), ("new", [3])]
    assert not reader.has_new() and reader.read_new() == []
    line = json.loads(path.read_text().splitlines()[0])
    assert line["user"] == "u1" and line["items"] == ["1", "2"] and line["time"] > 0


def test_a_torn_last_line_is_cut_before_the_next_append(tmp_path: Path) -> None:
    path = tmp_path / "plays.jsonl"
    log = PlayLog(path, _index_of)
    log.append("u1", ["1"])
    with path.open("ab") as f:
        f.write(b'{"user": "u2", "items": ["')  # a write that died with its process: never acknowledged
    reader = PlayLog(path, _index_of)
    assert [u for u, _ in reader.read_new()] == ["u1"]  # a partial line is not read
    log.append("u3", ["2"])
    assert [json.loads(x)["user"] for x in path.read_text().splitlines()] == ["u1", "u3"]
    assert [u for u, _ in reader.read_new()] == ["u3"]


def test_lines_that_are_not_plays_are_passed_over(tmp_path: Path) -> None:
    path = tmp_path / "plays.jsonl"
    path.write_text('not json\n{"user": 5, "items": ["1"]}\n{"user": "a", "items": ["1", "999"]}\n[]\n'
                    '{"user": "b", "items": ["2"]}\n')
    plays = read_plays(path, _index_of)
    assert [(u, i.tolist()) for u, i in plays] == [("a", [1]), ("b", [2])]


def test_a_play_log_that_is_not_a_regular_file_is_refused(tmp_path: Path) -> None:
    fifo = tmp_path / "plays.jsonl"
    os.mkfifo(fifo)
    with pytest.raises(ConfigError, match="not a regular file"):
        PlayLog(fifo, _index_of)
    with pytest.raises(DataError, match="no play log"):
        read_plays(tmp_path / "missing.jsonl", _index_of)


def test_with_plays_appends_to_histories_and_adds_new_users(tmp_path: Path) -> None:
    ds = ch.dataset()
    path = tmp_path / "plays.jsonl"
    log = PlayLog(path, ds.catalogue.index_of)
    user = str(ds.histories.user_ids[3])
    log.append(user, ["5", "6"])
    log.append("cold", ["7", "8", "9"])
    log.append(user, ["1"])
    merged, summary = with_plays(ds, path)
    assert summary == {"plays_log": str(path), "plays": 3, "events": 6, "new_users": 1}
    h, m = ds.histories, merged.histories
    u = int(m.user_index([user])[0])
    assert m.of(u).tolist() == h.of(3).tolist() + ds.catalogue.index_of(["5", "6", "1"]).tolist()
    cold = int(m.user_index(["cold"])[0])
    assert m.of(cold).tolist() == ds.catalogue.index_of(["7", "8", "9"]).tolist()
    assert m.train_len[cold] == 1 and m.of(cold, "test").tolist() == m.of(cold)[:-1].tolist()
    for other in range(len(h)):  # everyone else is untouched
        if other != 3:
            assert m.of(int(m.user_index([h.user_ids[other]])[0])).tolist() == h.of(other).tolist()


def test_train_with_plays(tmp_path: Path) -> None:
    events, items = ch.frames(n_users=10, n_events=6, n_items=24)
    events.to_csv(tmp_path / "events.csv", index=False)
    items.to_csv(tmp_path / "items.csv", index=False)
    cfg = tmp_path / "whatnext.toml"
    cfg.write_text('[data]\npath = "events.csv"\nitems_path = "items.csv"\n[model]\nwindow = 3\nhidden_size = 4\n'
                   '[train]\nepochs = 1\nbatch_size = 8\n', encoding="utf-8")
    log = PlayLog(tmp_path / "plays.jsonl", _index_of)
    log.append("1", ["3", "4"])
    log.append("listener", ["5", "6", "7"])
    summary = engine.train(cfg, plays=tmp_path / "plays.jsonl")
    assert summary["status"] == "finished" and summary["plays"]["events"] == 5 and summary["plays"]["new_users"] == 1
    out = engine.recommend(cfg, history=["5", "6", "7"], k=3)  # the checkpoint serves the unchanged catalogue
    assert len(out["recommendations"]) == 3
