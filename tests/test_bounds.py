"""Every size-like value has one documented bound, checked before anything is allocated.

The BOUNDS table in whatnext/config/schema.py is the one place; README's config reference lists it (checked
here row by row); a value just above a bound is one ConfigError naming the key, the value and the bound,
the bound itself is accepted. Bounds relative to the catalogue: eval.ks is refused above the catalogue
size, the re-rank and diversity slates are clipped to it.
"""

from __future__ import annotations

import re
import typing
from pathlib import Path

import core_helpers as ch
import numpy as np
import pytest

from whatnext import engine
from whatnext.config import Config, set_value
from whatnext.config.schema import BOUNDS, SECTIONS, check_against_catalogue, number
from whatnext.errors import ConfigError
from whatnext.rl.agent import Agent
from whatnext.rl.batch import SUCCESSORS
from whatnext.rl.state import State

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")


def _is_int(section: str, key: str) -> bool:
    tp = typing.get_type_hints(SECTIONS[section])[key]
    return tp is int or int in typing.get_args(tp) or typing.get_args(tp) == (int,)


def test_readme_lists_every_bound_as_the_schema_has_it() -> None:
    rows = dict(re.findall(r"^\| `([a-z_]+\.[a-z_]+)` \| ([\d.]+ \| [\d.]+) \|", README, flags=re.MULTILINE))
    documented = {k: tuple(float(x) for x in v.split(" | ")) for k, v in rows.items()}
    assert documented == {f"{s}.{k}": (float(lo), float(hi)) for (s, k), (lo, hi) in BOUNDS.items()}


@pytest.mark.parametrize(("section", "key"), sorted(BOUNDS))
def test_a_value_above_its_bound_is_refused_and_the_bound_accepted(section: str, key: str) -> None:
    _, high = BOUNDS[(section, key)]
    is_list = typing.get_origin(typing.get_type_hints(SECTIONS[section])[key]) is list
    as_int = is_list or _is_int(section, key)
    above = int(high) + 1 if as_int else high * 2
    wrap = (lambda v: [v]) if is_list else (lambda v: v)
    with pytest.raises(ConfigError) as info:
        set_value(Config(), section, key, wrap(above))
    message = str(info.value)
    assert f"'{section}.{key}'" in message and str(number(above)) in message and str(high) in message, message
    assert "\n" not in message
    cfg = Config()
    set_value(cfg, section, key, wrap(int(high) if as_int else high))
    assert getattr(getattr(cfg, section), key) == wrap(int(high) if as_int else high)


@pytest.mark.parametrize("seed", [2**64 + 1, 10**5000, -1], ids=["2**64+1", "10**5000", "-1"])
def test_seeds_outside_the_bounds_are_config_errors(seed: int) -> None:
    with pytest.raises(ConfigError, match="train.seed"):
        set_value(Config(), "train", "seed", seed)


def test_an_integer_too_long_to_print_is_described_by_its_size() -> None:
    with pytest.raises(ConfigError, match=r"is an integer of \d+ bits, expected a finite number"):
        set_value(Config(), "train", "actor_lr", 10**5000)


def test_cut_offs_above_the_catalogue_are_refused() -> None:
    cfg = Config()
    cfg.eval.ks = [10, 41]
    with pytest.raises(ConfigError, match=r"key 'eval.ks' holds 41 but the catalogue has only 40 items; use cut-offs of at most 40"):
        check_against_catalogue(cfg, 40)
    cfg.eval.ks = [10, 40]
    check_against_catalogue(cfg, 40)


def test_slates_never_grow_beyond_the_catalogue(tmp_path: Path) -> None:
    """model.rerank and recommend.diversity_pool at their bounds on a 40-item catalogue: slates of at most
    40 nearest items (plus the last item's successors), the same lists as with the whole catalogue asked for."""
    ds = ch.dataset()
    cfg = ch.config(tmp_path, "hybrid")
    cfg.model.rerank = 40
    agent = Agent(State(ds), cfg)
    agent.ready()
    hists = [ds.histories.of(u) for u in range(5)]
    whole = agent.recommend(hists, 10, hists)
    cfg.model.rerank = BOUNDS[("model", "rerank")][1]
    cfg.recommend.diversity_pool = int(BOUNDS[("recommend", "diversity_pool")][1])
    scored = agent.score_candidates(hists, hists, cfg.recommend.diversity_pool)
    assert scored.items.shape[1] <= len(ds.catalogue) + SUCCESSORS
    np.testing.assert_array_equal(agent.recommend(hists, 10, hists), whole)


def test_run_refuses_k_beyond_the_catalogue(tmp_path: Path) -> None:
    cfg = ch.write_project(tmp_path)
    text = cfg.read_text().replace("[train]\n", "[train]\nenabled = false\n")
    cfg.write_text(text)
    for k, users in ((41, 5), (10**12, 5), (0, 5), (10, 0)):
        with pytest.raises(ConfigError, match=r"^(-k is|--users is)"):
            engine.run_legacy(cfg, k=k, users=users)
