"""The hostile checkpoint corpus (tests/hostile/make_checkpoints.py) through the CLI, in capped child processes.

A tiny project is trained into a temporary folder; every case of the corpus is a payload mutated from
its checkpoint and written with a valid sidecar. ``recommend --checkpoint FILE`` and ``eval --checkpoint
FILE`` run on each in a child with an address-space cap (tests/hostile_runner.py): each must end by a
documented exit code with one line on stderr (4 for a refused payload; 0 where the crafted values are
the user's own settings and are ignored), never by a signal, a traceback, a timeout or exit 1. Config
and data files that are not regular files (a FIFO, /dev/zero) are refused the same way instead of
hanging or reading forever.
"""

from __future__ import annotations

import copy
import json
import os
import resource
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import core_helpers as ch
import pytest
import torch
from hostile.make_checkpoints import CASES, build, write
from hostile_runner import MEMORY_LIMIT, Outcome, assert_clean_failure, run_forked, run_limited, tree_snapshot

from whatnext import checkpoints, engine
from whatnext.errors import CheckpointError

COMMANDS = ("recommend", "eval")
#: the cases run through the CLI in forked children (two per case); every case of
#: the corpus also runs in this process through the engine (test_every_case_through_the_engine)
CHILD_CASES = (
    "config-rerank-1e9", "config-window-1e9", "args-n-items-3m", "args-hidden-1e6", "args-huge-int-1e30",
    "args-in-bounds-but-huge", "args-extra-key", "args-text-value", "unknown-model-name", "config-a-list",
    "actor-a-string", "weights-wrong-shape", "weights-nan", "rerank-weight-nan", "score-scale-inf",
    "ignored-user-settings",
)


def _argv(command: str, cfg: Path, pt: Path) -> list[str]:
    if command == "recommend":
        return ["recommend", "--config", str(cfg), "--user", "7", "-k", "5", "--checkpoint", str(pt), "--json"]
    return ["eval", "--config", str(cfg), "--checkpoint", str(pt), "--json"]


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(config, checkpoint) of a tiny hybrid project trained with critic re-ranking."""
    folder = tmp_path_factory.mktemp("hostile-ckpt")
    cfg = ch.write_project(folder / "proj", algorithm="hybrid", checkpoint_every=6, rerank=8)
    engine.train(cfg)
    pt = checkpoints.marker(folder / "proj" / "models" / "default", "latest")
    assert pt is not None
    return cfg, pt


@pytest.fixture(scope="module")
def outcomes(project: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], Outcome]:
    """Every case under both commands, each in a process forked from one capped child that first recommends
    from the genuine checkpoint (the control); the corpus and the project are left untouched."""
    cfg, pt = project
    corpus = build(pt, tmp_path_factory.mktemp("corpus"), {c: CASES[c] for c in CHILD_CASES})
    before = {name: tree_snapshot(p.parent) for name, p in corpus.items()}
    project_before = tree_snapshot(cfg.parent)
    jobs = [(case, command) for case in corpus for command in COMMANDS]
    results = run_forked([(_argv(command, cfg, corpus[case]), cfg.parent) for case, command in jobs],
                         tmp_path_factory.mktemp("forked"), warm=(_argv("recommend", cfg, pt), cfg.parent))
    out = dict(zip(jobs, results))
    assert {name: tree_snapshot(p.parent) for name, p in corpus.items()} == before, "a command changed a crafted checkpoint"
    assert tree_snapshot(cfg.parent) == project_before, "a command changed the project"
    return out


def test_the_corpus_is_large_and_mostly_refused() -> None:
    assert len(CASES) >= 15 and len(CHILD_CASES) >= 15 and set(CHILD_CASES) <= set(CASES)
    assert sum(codes == {4} for _, codes in CASES.values()) >= 15


@pytest.mark.parametrize("case", CHILD_CASES)
def test_each_crafted_checkpoint_ends_cleanly_in_a_capped_child(case: str, outcomes: dict[tuple[str, str], Outcome]) -> None:
    codes = CASES[case][1]
    for command in COMMANDS:
        out = outcomes[(case, command)]
        if codes == {0}:
            assert out.returncode == 0, f"{case} / {command}: {out.describe()}"
            result = json.loads(out.stdout)
            assert result["checkpoint"].endswith(f"{case}/ckpt-00000001.pt")
            continue
        line = assert_clean_failure(out, codes)
        assert f"{case}/ckpt-00000001.pt: " in line, f"{case} / {command}: the line does not name the file: {line}"
        assert "internal error" not in line


def test_no_child_came_near_the_memory_cap(outcomes: dict[tuple[str, str], Outcome]) -> None:
    """The largest resident set of any child so far (ru_maxrss, KiB on Linux): far below the address-space cap."""
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    assert peak < MEMORY_LIMIT / 2, f"a child reached {peak / 2**20:.0f} MiB resident"


@pytest.fixture(scope="module")
def corpus(project: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return build(project[1], tmp_path_factory.mktemp("corpus-all"))


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_case_through_the_engine(case: str, project: tuple[Path, Path], corpus: dict[str, Path]) -> None:
    """recommend and evaluate raise a one-line CheckpointError naming the file (or, for ignored settings, work)."""
    cfg, _ = project
    for call in (lambda: engine.recommend(cfg, user="7", k=5, checkpoint=corpus[case]),
                 lambda: engine.evaluate(cfg, checkpoint=corpus[case])):
        if CASES[case][1] == {0}:
            call()
            continue
        with pytest.raises(CheckpointError) as info:
            call()
        message = str(info.value)
        assert message.startswith(f"{corpus[case]}: ") and "\n" not in message, message
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    assert peak < MEMORY_LIMIT / 2, f"this process reached {peak / 2**20:.0f} MiB resident"


def test_user_settings_in_a_checkpoint_are_ignored(project: tuple[Path, Path], tmp_path: Path) -> None:
    """The stored recommend/eval sections are the user's to set: a checkpoint's copy changes nothing."""
    cfg, pt = project
    mutate, _ = CASES["ignored-user-settings"]
    crafted = write(mutate(copy.deepcopy(torch.load(pt, weights_only=True))), tmp_path / "c")
    plain = engine.recommend(cfg, user="7", k=5, checkpoint=pt)["recommendations"]
    again = engine.recommend(cfg, user="7", k=5, checkpoint=crafted)["recommendations"]
    assert [r["item_id"] for r in plain] == [r["item_id"] for r in again]
    assert engine.evaluate(cfg, checkpoint=crafted)["ks"] == [10]


# ---------------------------------------------------------------- files that are not regular files


@pytest.fixture
def fifo_project(tmp_path: Path) -> Path:
    cfg = ch.write_project(tmp_path / "proj")
    os.mkfifo(tmp_path / "proj" / "pipe.csv")
    os.mkfifo(tmp_path / "proj" / "pipe.toml")
    return cfg


def test_special_files_are_refused_not_read(fifo_project: Path) -> None:
    """A FIFO would block and /dev/zero never ends: each is one line and its exit code, quickly."""
    folder = fifo_project.parent
    data_on_fifo = folder / "fifo-data.toml"
    data_on_fifo.write_text(fifo_project.read_text().replace('path = "events.csv"', 'path = "pipe.csv"'))
    cases = [
        (["train", "--config", str(folder / "pipe.toml")], 2, "is a FIFO (named pipe), not a regular file"),
        (["train", "--config", "/dev/zero"], 2, "is a character device, not a regular file"),
        (["train", "--config", str(data_on_fifo)], 3, "is a FIFO (named pipe), not a regular file"),
        (["inspect-data", str(folder / "pipe.csv")], 3, "is a FIFO (named pipe), not a regular file"),
    ]
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(lambda c: run_limited(c[0], folder, timeout=40), cases))
    for (args, code, text), out in zip(cases, results):
        line = assert_clean_failure(out, {code})
        assert text in line, f"{args}: {line}"


def test_a_config_file_is_at_most_one_mebibyte(tmp_path: Path) -> None:
    from whatnext.config.loader import MAX_CONFIG_BYTES
    from whatnext.errors import ConfigError

    big = tmp_path / "whatnext.toml"
    big.write_text("[train]\nepochs = 1\n" + "#" * MAX_CONFIG_BYTES)
    with pytest.raises(ConfigError, match=r"larger than 1 MiB"):
        engine.config_for(big)


def test_legacy_model_files_without_weights_are_refused(project: tuple[Path, Path], tmp_path: Path) -> None:
    """'train, no' reads model_agent_path / model_critic_path: a file without a state_dict is exit 4 naming both files."""
    cfg, pt = project
    payload = torch.load(pt, weights_only=True)
    common = {k: v for k, v in payload.items() if k not in ("actor", "critic")}
    torch.save({**common, "state_dict": payload["actor"]}, tmp_path / "agent.pt")
    torch.save(common, tmp_path / "critic.pt")
    text = cfg.read_text().replace("[train]\n", "[train]\nenabled = false\n").replace(
        "[paths]\n", f'[paths]\nmodel_agent_path = "{tmp_path / "agent.pt"}"\nmodel_critic_path = "{tmp_path / "critic.pt"}"\n')
    legacy = cfg.with_name("legacy.toml")
    legacy.write_text(text)
    with pytest.raises(CheckpointError, match=r"agent\.pt and .*critic\.pt: the checkpoint's 'critic' is a NoneType"):
        engine.run_legacy(legacy)
