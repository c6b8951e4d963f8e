"""The play log: live plays, durable, in the order they were acknowledged.

One JSON object a line, ``{"user": "7", "items": ["s1", "s2"], "time": 1764500000.123}``, in
``models/<run>/plays.jsonl`` by default (``whatnext serve --plays PATH`` chooses another file).
A line is written with one ``write`` under an exclusive ``flock`` and fsynced before the play is
acknowledged, so several server processes can share one log and a crash (even SIGKILL) loses
no acknowledged play. A crash in the middle of a write leaves a line without its newline: that
play was never acknowledged, and the next writer cuts it off before appending.

Readers (each server process) keep their offset and read only whole lines, so the plays
another process appended reach this process's users on their next request. A line that is not
a valid play (hand-edited, or an item that the catalogue no longer has) is passed over with a
warning: nothing in the log can stop a server from starting.

``whatnext train --plays models/<run>/plays.jsonl`` trains on the data with the logged plays
appended to each user's history (:func:`with_plays`), so the next checkpoint learns from them.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import stat
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from whatnext.errors import ConfigError, DataError

log = logging.getLogger(__name__)

#: longest line read back (a play of MAX_HISTORY long ids fits); longer lines are passed over
MAX_LINE = 4 << 20

Play = tuple[str, np.ndarray]


class PlayLog:
    """An append-only, fsynced log of plays shared by the processes that serve one run."""

    def __init__(self, path: Path, index_of: Callable[[Sequence[str]], np.ndarray]) -> None:
        self.path = Path(path)
        self._index_of = index_of  # external item ids -> catalogue indices (-1 unknown)
        self.skipped = 0  # lines and items passed over since this process opened the log
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
        except OSError as e:
            raise ConfigError(f"{self.path}: cannot open the play log ({e.strerror}); "
                              f"choose another --plays file or fix the folder's permissions") from None
        if not stat.S_ISREG(os.fstat(self.fd).st_mode):
            os.close(self.fd)
            raise ConfigError(f"{self.path}: the play log is not a regular file; choose another --plays file")
        self._offset = 0
        self._skipping = False
        fcntl.flock(self.fd, fcntl.LOCK_EX)  # a writer holds the lock to the end of its line: a tail now is torn
        try:
            self._cut_torn_tail()
        finally:
            fcntl.flock(self.fd, fcntl.LOCK_UN)

    def close(self) -> None:
        """Close the file (the plays are already on disk)."""
        os.close(self.fd)

    def append(self, user: str, items: Sequence[str]) -> None:
        """Write one play line and fsync it; returns once the play is durable."""
        line = json.dumps({"user": user, "items": list(items), "time": round(time.time(), 3)},
                          ensure_ascii=False, separators=(",", ":")).encode() + b"\n"
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        try:
            self._cut_torn_tail()
            view = memoryview(line)
            while view:  # a regular file takes the whole line at once; a short write would go on
                view = view[os.write(self.fd, view):]
            os.fsync(self.fd)
        finally:
            fcntl.flock(self.fd, fcntl.LOCK_UN)

    def _cut_torn_tail(self) -> None:
        """Under the lock: a last line without its newline is a write that died; it was never acknowledged."""
        size = os.fstat(self.fd).st_size
        if size == 0 or os.pread(self.fd, 1, size - 1) == b"\n":
            return
        start = max(0, size - MAX_LINE)
        tail = os.pread(self.fd, size - start, start)
        cut = start + tail.rfind(b"\n") + 1 if b"\n" in tail else start
        log.warning("%s: cutting off an unfinished last line (%d bytes) left by a crash", self.path, size - cut)
        os.ftruncate(self.fd, cut)

    def has_new(self) -> bool:
        """Whether the file has grown past the last whole line read (one fstat)."""
        return os.fstat(self.fd).st_size > self._offset

    def read_new(self) -> list[Play]:
        """The whole lines appended since the last call, as (user, item indices); bad lines passed over.

        The offset only ever moves to the end of a whole line: a torn tail is read again next time, after
        its writer finished it or the next writer cut it off."""
        out: list[Play] = []
        while True:
            data = os.pread(self.fd, MAX_LINE, self._offset)
            end = data.rfind(b"\n") + 1
            if end == 0:
                if len(data) < MAX_LINE:
                    break  # nothing, or an unfinished line
                self._offset += len(data)  # a line longer than any play: pass it over to its end
                self._skipping = True
                continue
            lines = data[:end].splitlines()
            if self._skipping:
                self._skipping = False
                self.skipped += 1
                log.warning("%s: a line over %d bytes; passed over", self.path, MAX_LINE)
                lines = lines[1:]
            for raw in lines:
                play = self._parse(raw)
                if play is not None:
                    out.append(play)
            self._offset += end
            if len(data) < MAX_LINE:
                break
        return out

    def _parse(self, raw: bytes) -> Play | None:
        try:
            rec = json.loads(raw)
            user, items = rec["user"], rec["items"]
            if not isinstance(user, str) or not isinstance(items, list) or not all(isinstance(i, str) for i in items):
                raise TypeError("user must be text and items a list of text")
        except (ValueError, KeyError, TypeError) as e:
            self.skipped += 1
            log.warning("%s: a line that is not a play (%s); passed over", self.path, str(e)[:80])
            return None
        idx = self._index_of(items) if items else np.zeros(0, np.int64)
        if (idx < 0).any():
            self.skipped += int((idx < 0).sum())
            log.warning("%s: %d items of a play of user %r are not in the catalogue; passed over",
                        self.path, int((idx < 0).sum()), user[:40])
            idx = idx[idx >= 0]
        return (user, idx.astype(np.int64)) if len(idx) else None


def read_plays(path: Path, index_of: Callable[[Sequence[str]], np.ndarray]) -> list[Play]:
    """Every valid play of the log at ``path``, in order (for training); DataError when it cannot be read."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: no play log there; it is written by 'whatnext serve' (models/<run>/plays.jsonl)")
    plays = PlayLog.__new__(PlayLog)
    plays.path, plays._index_of, plays.skipped, plays._offset, plays._skipping = p, index_of, 0, 0, False
    try:
        plays.fd = os.open(p, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as e:
        raise DataError(f"{p}: cannot read the play log ({e.strerror})") from None
    try:
        return plays.read_new()
    finally:
        plays.close()


def with_plays(dataset: Any, path: Path) -> tuple[Any, dict[str, Any]]:
    """``dataset`` with the logged plays appended to the end of each user's history (a new user gets one).

    The catalogue is unchanged (so is its fingerprint: checkpoints stay compatible and a server hot-reloads
    the new run's checkpoints); the split follows the new histories (the newest plays are held out).
    """
    from whatnext.data import Dataset, Histories

    h = dataset.histories
    plays = read_plays(path, dataset.catalogue.index_of)
    if not plays:
        return dataset, {"plays_log": str(path), "plays": 0, "events": 0, "new_users": 0}
    users = [u for u, _ in plays]
    known = h.user_index(users)
    new_ids = list(dict.fromkeys(u for u, k in zip(users, known) if k < 0))
    all_ids = np.concatenate([h.user_ids, np.asarray(new_ids, dtype=str)]) if new_ids else h.user_ids
    code = {u: len(h.user_ids) + j for j, u in enumerate(new_ids)}
    owner = np.array([k if k >= 0 else code[u] for u, k in zip(users, known.tolist())], dtype=np.int64)
    lens = np.fromiter((len(i) for _, i in plays), dtype=np.int64, count=len(plays))
    add_user = np.repeat(owner, lens)
    add_item = np.concatenate([i for _, i in plays])
    n = len(all_ids)
    old_user = np.repeat(np.arange(len(h.user_ids)), h.lengths)
    # stable: a user's events keep their order, the data's first, then the log's
    user = np.concatenate([old_user, add_user])
    order = np.argsort(user, kind="stable")
    counts = np.bincount(user, minlength=n)
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    last = h.times.max() if len(h.times) else 0
    times = np.concatenate([h.times, np.full(len(add_item), last, dtype=h.times.dtype)])[order]
    train_len = counts - (counts >= 2) - (counts >= 3)
    # a served play has no logged reward: it counts as neutral (0) beside the data's rewards
    rewards = (None if h.rewards is None
               else np.concatenate([h.rewards, np.zeros(len(add_item), dtype=np.float32)])[order])
    merged = Histories(all_ids.astype(str), offsets, np.concatenate([h.items, add_item])[order].astype(np.int64),
                       times, train_len.astype(np.int64), rewards)
    report = dict(dataset.report)
    summary = {"plays_log": str(path), "plays": len(plays), "events": int(lens.sum()), "new_users": len(new_ids)}
    report["plays"] = summary
    return Dataset(dataset.catalogue, merged, report, dataset.source), summary
