"""The critic reads a request's history in a side thread while the actor and the index work
(whatnext/rl/side.py): the same slate and scores as in turn, bit for bit, and in turn where a
second thread would not get a core of its own."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from core_helpers import config, dataset

import whatnext.rl.agent as agent_module
from whatnext.rl import side
from whatnext.rl.agent import Agent
from whatnext.rl.state import State


@pytest.fixture
def two_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(side, "cores", lambda: 2)
    monkeypatch.setattr(torch, "get_num_threads", lambda: 1)


@pytest.mark.parametrize("after", [0, 10**9], ids=["after-the-actor", "beside-the-actor"])
@pytest.mark.parametrize("name", ["lstm", "transformer"])
def test_the_side_thread_gives_the_slate_and_scores_in_turn_gives(tmp_path: Path, name: str, after: int, two_cores: None,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(agent_module, "AFTER_ACTOR_FROM", after)  # where the side reading starts, by catalogue size
    cfg = config(tmp_path, "hybrid", model={"name": name, "window": 12, "rerank": 10})
    ds = dataset(n_users=20, n_events=15, n_items=40)
    agent = Agent(State(ds), cfg)
    agent.ready()
    where: list[str] = []
    read = agent._critic_summary
    monkeypatch.setattr(agent, "_critic_summary", lambda *a: (where.append(threading.current_thread().name), read(*a))[1])
    hists = [ds.histories.of(u)[:-1] for u in range(len(ds.histories))]
    for batch in ([hists[0]], hists[1:3], hists[3:6], hists):
        exclude = [h[-3:] for h in batch]
        where.clear()
        monkeypatch.setattr(agent_module, "SIDE_MAX", 3)
        a = agent.score_candidates(batch, exclude, 10)
        assert where == (["whatnext-side_0"] if len(batch) <= 3 else ["MainThread"])
        monkeypatch.setattr(agent_module, "SIDE_MAX", 0)
        b = agent.score_candidates(batch, exclude, 10)
        assert where[-1] == "MainThread"
        for x, y in zip(a, b, strict=True):
            assert np.array_equal(x, y)


def test_in_turn_without_a_second_core_or_when_torch_spreads_its_work(monkeypatch: pytest.MonkeyPatch) -> None:
    here = threading.current_thread().name
    monkeypatch.setattr(side, "cores", lambda: 1)
    assert side.beside(lambda: threading.current_thread().name).result() == here
    monkeypatch.setattr(side, "cores", lambda: 2)
    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)
    assert side.beside(lambda: threading.current_thread().name).result() == here
    monkeypatch.setattr(torch, "get_num_threads", lambda: 1)
    assert side.beside(lambda: threading.current_thread().name).result() != here


def test_an_error_in_the_side_thread_reaches_the_caller(two_cores: None) -> None:
    def fail() -> None:
        raise ValueError("the critic's own error")

    with pytest.raises(ValueError, match="the critic's own error"):
        side.beside(fail).result()
    assert side.beside(lambda x: x + 1, 41).result() == 42  # the thread lives on


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork: POSIX only")
def test_a_forked_child_gets_its_own_side_thread(two_cores: None) -> None:
    assert side.beside(lambda: 1).result() == 1  # the parent's thread exists now
    pid = os.fork()
    if pid == 0:  # the child: the parent's thread did not come along; a new one answers
        ok = side.beside(lambda: threading.current_thread().name).result().startswith("whatnext-side")
        os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
