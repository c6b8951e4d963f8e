"""The same config and seed give the same bits in separate processes: weights, `recommend --json`,
`recommend --all-users` files and `eval --json` (which also gives the same numbers twice on one checkpoint).

Two copies of one tiny project are trained side by side, each in its own Python process that runs the CLI
(train, recommend, eval) through typer's CliRunner; the in-process variants of these checks live in
test_training.py (same seed, same weights) and test_evaluate.py (evaluate is deterministic).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import core_helpers as ch
import pytest
import torch
from typer.testing import CliRunner

from whatnext import checkpoints
from whatnext.cli import app

RUN_ALL = """\
import json, sys
from typer.testing import CliRunner
from whatnext.cli import app

cfg, out = sys.argv[1], sys.argv[2]
commands = {
    "train": ["train", "--config", cfg, "--quiet", "--seed", "11"],
    "recommend": ["recommend", "--config", cfg, "--user", "7", "-k", "8", "--json"],
    "history": ["recommend", "--config", cfg, "--history", "3,5,11", "-k", "8", "--json"],
    "all_users": ["recommend", "--config", cfg, "--all-users", "-k", "5", "--output", out + "/top.csv"],
    "eval": ["eval", "--config", cfg, "--json", "--split", "test", "--baselines"],
}
results = {}
for name, args in commands.items():
    r = CliRunner().invoke(app, args)
    results[name] = {"code": r.exit_code, "stdout": r.stdout, "stderr": r.stderr}
json.dump(results, open(out + "/results.json", "w"))
"""


def _tensors(obj: Any, prefix: str = "") -> dict[str, torch.Tensor]:
    """Every tensor in a nested state (state_dicts, optimiser states), by path."""
    out: dict[str, torch.Tensor] = {}
    if isinstance(obj, torch.Tensor):
        out[prefix] = obj
    elif isinstance(obj, dict):
        for k, v in obj.items():
            out.update(_tensors(v, f"{prefix}/{k}"))
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            out.update(_tensors(v, f"{prefix}/{i}"))
    return out


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """The same project trained twice, in two processes running at the same time, in two folders."""
    root = tmp_path_factory.mktemp("determinism")
    first = root / "a"
    ch.write_project(first, algorithm="hybrid", rerank=8, epochs=2, checkpoint_every=6)
    second = root / "b"
    shutil.copytree(first, second)
    procs = [subprocess.Popen([sys.executable, "-c", RUN_ALL, str(p / "whatnext.toml"), str(p)], cwd=p,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for p in (first, second)]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    for folder in (first, second):
        results = json.loads((folder / "results.json").read_text())
        for name, r in results.items():
            assert r["code"] == 0, f"{folder.name} {name}: {r['stderr']}"
    return [first, second]


def _results(folder: Path) -> dict[str, Any]:
    # the only difference allowed: the project folder in the paths the commands print
    text = (folder / "results.json").read_text().replace(str(folder), "<project>")
    return json.loads(text)


def test_same_seed_gives_bit_identical_weights_in_separate_processes(two_runs: list[Path]) -> None:
    a, b = (checkpoints.load_latest(p / "models" / "default") for p in two_runs)
    assert a is not None and b is not None
    (pa, ca), (pb, cb) = a, b
    assert pa.name == pb.name and ca["step"] == cb["step"] == 24 and ca["seed"] == cb["seed"] == 11
    for part in ("actor", "critic", "actor_opt", "critic_opt"):
        ta, tb = _tensors(ca[part]), _tensors(cb[part])
        assert ta.keys() == tb.keys() and ta, part
        for key in ta:
            assert torch.equal(ta[key], tb[key]), f"{part}{key} differs between the two runs"
    assert checkpoints.marker(two_runs[0] / "models" / "default", "best").name == \
        checkpoints.marker(two_runs[1] / "models" / "default", "best").name


def test_same_seed_gives_identical_recommendations_in_separate_processes(two_runs: list[Path]) -> None:
    ra, rb = (_results(p) for p in two_runs)
    for name in ("recommend", "history"):
        assert ra[name]["stdout"] == rb[name]["stdout"], name  # the JSON text, to the last digit
        recs = json.loads(ra[name]["stdout"])["recommendations"]
        assert len(recs) == 8
    fa, fb = (p / "top.csv" for p in two_runs)
    assert fa.read_bytes() == fb.read_bytes()


def test_eval_gives_identical_numbers_across_processes_and_twice_on_one_checkpoint(two_runs: list[Path]) -> None:
    ra, rb = (_results(p) for p in two_runs)
    # the numbers to the last digit; "baselines" says how long the learned baselines took to train (or load) and where
    ea, eb = (json.loads(r["eval"]["stdout"]) for r in (ra, rb))
    # the learned baselines (the supervised LSTM and SASRec) train once per process here: nothing is cached yet
    assert ea.pop("baselines")["trained"] == eb.pop("baselines")["trained"] == ["lstm", "sasrec"]
    assert ea == eb
    first = json.loads(ra["eval"]["stdout"])
    assert len(first["rows"]) >= 3  # the agent and the baselines
    # the same checkpoint of the first run, evaluated twice more here, in the test's own process
    cfg = two_runs[0] / "whatnext.toml"
    pt = checkpoints.marker(two_runs[0] / "models" / "default", "best")
    again = []
    for _ in range(2):
        r = CliRunner().invoke(app, ["eval", "--config", str(cfg), "--json", "--split", "test", "--baselines",
                                     "--checkpoint", str(pt)])
        assert r.exit_code == 0, r.stderr
        again.append(json.loads(r.stdout.replace(str(two_runs[0]), "<project>")))
    assert [a["baselines"]["loaded"] for a in again] == [["lstm", "sasrec"]] * 2  # trained once, by the first eval
    assert again[0]["rows"] == again[1]["rows"] == first["rows"]
