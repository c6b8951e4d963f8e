"""Property tests over checkpoint payloads: whatever a file holds, loading it raises only CheckpointError
and never builds a model beyond the bounds.

A real payload of a tiny trained run is mutated by hypothesis (keys dropped, added or given a value of
another type, tensors reshaped, retyped or filled with NaN/inf, huge integers) and handed to
``agent_from_payload`` (what recommend and eval do) and to ``restore(..., optimisers=True)`` (what
``train --resume`` does). Every model they build is recorded: its ``n_items`` must be the catalogue's and
its sizes within ``BOUNDS``. A payload that loads must also recommend.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import core_helpers as ch
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import whatnext.models
from whatnext import checkpoints, engine
from whatnext.config import Config
from whatnext.config.schema import BOUNDS
from whatnext.data import load_dataset
from whatnext.errors import CheckpointError
from whatnext.rl.agent import Agent
from whatnext.rl.environment import agent_from_payload, restore
from whatnext.rl.state import State


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Config, Any, dict[str, Any]]:
    """(config, dataset, payload) of a tiny hybrid run with critic re-ranking."""
    folder = tmp_path_factory.mktemp("payload-props")
    path = ch.write_project(folder, algorithm="hybrid", checkpoint_every=6, rerank=8)
    engine.train(path)
    cfg = engine.config_for(path)
    pt = checkpoints.marker(cfg.run_dir, "latest")
    assert pt is not None
    return cfg, load_dataset(cfg), checkpoints.load(pt)


@pytest.fixture
def builds(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Every model_args handed to the model registry (real builds and meta-device shape checks)."""
    seen: list[dict[str, Any]] = []
    real = whatnext.models.build

    def spy(name: str, args: dict[str, Any]) -> Any:
        seen.append(dict(args))
        return real(name, args)

    monkeypatch.setattr(whatnext.models, "build", spy)
    return seen


HOSTILE = st.one_of(
    st.none(), st.booleans(), st.text(max_size=8),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, -1, 3_000_000, 10**9, 10**30, 2**64 + 1]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.lists(st.integers(min_value=-5, max_value=5), max_size=3),
    st.dictionaries(st.text(max_size=4), st.integers(min_value=0, max_value=3), max_size=2),
    st.integers(min_value=0, max_value=4).map(lambda n: torch.zeros(n)),
)
DTYPES = [torch.float64, torch.float16, torch.int64, torch.bool, torch.complex64]
#: where a mutation lands: the payload itself or one of its tables
PLACES = ["", "config", "config.model", "config.recommend", "model_args", "actor", "critic", "actor_opt", "critic_opt"]


def _table(payload: dict[str, Any], place: str) -> Any:
    node: Any = payload
    for key in filter(None, place.split(".")):
        node = node.get(key) if isinstance(node, dict) else None
    return node


@st.composite
def mutations(draw: st.DrawFn) -> list[tuple[str, str, int, Any]]:
    """1-3 mutations: (place, operation, which key (an index, modulo the keys there), a hostile value)."""
    ops = ["drop", "add", "retype", "reshape", "dtype", "nan", "inf"]
    return draw(st.lists(st.tuples(st.sampled_from(PLACES), st.sampled_from(ops), st.integers(0, 200), HOSTILE),
                         min_size=1, max_size=3))


def mutate(payload: dict[str, Any], changes: list[tuple[str, str, int, Any]]) -> dict[str, Any]:
    p = copy.deepcopy(payload)
    for place, op, index, value in changes:
        table = _table(p, place)
        if not isinstance(table, dict):
            continue
        keys = list(table)
        key = keys[index % len(keys)] if keys else None
        if op == "add" or key is None:
            table[f"extra_{index}"] = value
        elif op == "drop":
            del table[key]
        elif op == "retype":
            table[key] = value
        elif isinstance(table[key], torch.Tensor):
            t = table[key]
            if op == "reshape":
                table[key] = torch.zeros(t.numel() + 1 + index % 3)
            elif op == "dtype":
                table[key] = t.to(DTYPES[index % len(DTYPES)])
            elif t.is_floating_point() and t.numel():
                t = t.clone()
                t.view(-1)[index % t.numel()] = float("nan") if op == "nan" else float("inf")
                table[key] = t
        else:
            table[key] = value
    return p


def _within_bounds(args: dict[str, Any], n_items: int) -> None:
    assert args["n_items"] == n_items
    for key, bound in (("hidden_size", "hidden_size"), ("num_layers", "num_layers"), ("learned_dim", "embedding_dim")):
        low, high = BOUNDS[("model", bound)]
        assert args[key] == 0 and key == "learned_dim" or low <= args[key] <= high, (key, args[key])
    assert args["feature_dim"] in (0, 3)


SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                            HealthCheck.too_slow])


@SETTINGS
@given(changes=mutations())
def test_loading_a_mutated_payload_raises_only_checkpoint_errors(trained: tuple[Config, Any, dict[str, Any]],
                                                                 builds: list[dict[str, Any]],
                                                                 changes: list[tuple[str, str, int, Any]]) -> None:
    cfg, ds, payload = trained
    builds.clear()
    try:
        agent = agent_from_payload(copy.deepcopy(cfg), ds, mutate(payload, changes))
    except CheckpointError as e:
        assert "\n" not in str(e)
    else:  # what loads must work
        hist = ds.histories.of(0)
        items = agent.recommend([hist], 5, [hist])
        assert items.shape == (1, 5)
    for args in builds:
        _within_bounds(args, len(ds.catalogue))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(changes=mutations())
def test_resuming_from_a_mutated_payload_raises_only_checkpoint_errors(trained: tuple[Config, Any, dict[str, Any]],
                                                                       changes: list[tuple[str, str, int, Any]]) -> None:
    cfg, ds, payload = trained
    agent = Agent(State(ds), copy.deepcopy(cfg), init_items=False)
    agent.wake()
    mutated = mutate(payload, changes)
    try:
        restore(agent, mutated, optimisers=True)
    except CheckpointError as e:
        assert "\n" not in str(e)
        return
    # what was accepted is what a resumed run reads next
    assert isinstance(mutated["step"], int) and mutated["step"] >= 0
    assert all(torch.isfinite(p).all() for p in agent.actor.parameters())


@pytest.mark.parametrize("value", [10**30, 2**64 + 1, -5, 3_000_000, "40", 40.0, None, True])
def test_n_items_other_than_the_catalogue_is_refused_before_a_build(trained: tuple[Config, Any, dict[str, Any]],
                                                                     builds: list[dict[str, Any]], value: Any) -> None:
    cfg, ds, payload = trained
    p = copy.deepcopy(payload)
    p["model_args"]["n_items"] = value
    with pytest.raises(CheckpointError, match="model_args.n_items|n_items"):
        agent_from_payload(copy.deepcopy(cfg), ds, p)
    assert builds == []


def test_the_unmutated_payload_loads(trained: tuple[Config, Any, dict[str, Any]], tmp_path: Path) -> None:
    cfg, ds, payload = trained
    agent = agent_from_payload(copy.deepcopy(cfg), ds, copy.deepcopy(payload))
    assert agent.args == payload["model_args"]
