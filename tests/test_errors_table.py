"""docs/errors.md cannot drift: every row of its table is run through the CLI.

Each row names a setup (below, keyed by the row's id) that builds a small project in a fresh folder, the
command to run, the exact stderr line and the exit code. The test substitutes the placeholders, runs the
command with typer's CliRunner, and checks the exit code, that stderr is exactly one line, and that the line
matches the documented one: ``{tmp}`` is the row's folder, ``{cfg}`` its config file, ``{run}`` its run
folder (``{tmp}/models/default``), ``{pid}`` a live process id, and ``{*}`` stands for any text (parts that
depend on the library versions or on training, such as a parser's wording or a checksum).
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import re
import shlex
import shutil
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import core_helpers as ch
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from whatnext import checkpoints, engine
from whatnext.cli import app

DOC = Path(__file__).resolve().parents[1] / "docs" / "errors.md"
HEADER = ["id", "command", "bad input", "stderr (one line)", "exit"]


@dataclass
class Row:
    id: str
    command: str
    input: str
    message: str
    exit: int


def _cells(line: str) -> list[str]:
    cells = re.split(r"(?<!\\)\|", line.strip())[1:-1]
    out = []
    for c in cells:
        c = c.strip().replace("\\|", "|")
        if len(c) >= 2 and c.startswith("`") and c.endswith("`"):
            c = c[1:-1]
        out.append(c)
    return out


def parse(text: str) -> list[Row]:
    """The rows of the table whose header is :data:`HEADER`."""
    lines = text.splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.startswith("|") and _cells(ln) == HEADER)
    rows = []
    for ln in lines[start + 2:]:
        if not ln.startswith("|"):
            break
        c = _cells(ln)
        assert len(c) == len(HEADER), f"docs/errors.md: a row with {len(c)} cells: {ln}"
        rows.append(Row(c[0], c[1], c[2], c[3], int(c[4])))
    return rows


ROWS = parse(DOC.read_text(encoding="utf-8"))

# ---------------------------------------------------------------- setups

Setup = Callable[[Path, Path], dict[str, str]]
SETUPS: dict[str, Setup] = {}


def setup(*ids: str) -> Callable[[Setup], Setup]:
    def register(fn: Setup) -> Setup:
        for i in ids:
            assert i not in SETUPS, i
            SETUPS[i] = fn
        return fn

    return register


def _write(path: Path, content: str | bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")


def _trained_copy(tmp: Path, trained: Path) -> None:
    shutil.copytree(trained, tmp, dirs_exist_ok=True)


# config files
CONFIG_FILES: dict[str, tuple[str, str | bytes]] = {
    "config-empty": ("whatnext.toml", ""),
    "config-binary": ("whatnext.toml", b"[train]\nepochs = 1\x00\x00\x01"),
    "config-not-utf8": ("whatnext.toml", b"[train]\nepochs = 1\n# caf\xe9\n"),
    "config-toml-syntax": ("whatnext.toml", "[train]\nepochs 3\n"),
    "config-duplicate-key": ("whatnext.toml", "[train]\nepochs = 1\nepochs = 2\n"),
    "config-unknown-section": ("whatnext.toml", "[trian]\nepochs = 3\n"),
    "config-unknown-key": ("whatnext.toml", "[train]\nseed = 1\nepoch = 3\n"),
    "config-key-outside-section": ("whatnext.toml", "epochs = 3\n"),
    "config-wrong-type": ("whatnext.toml", '[train]\nepochs = "ten"\n'),
    "config-out-of-range": ("whatnext.toml", "[train]\nbatch_size = 0\n"),
    "config-bad-choice": ("whatnext.toml", '[train]\nalgorithm = "dqn"\n'),
    "config-unknown-model": ("whatnext.toml", '[model]\nname = "gru"\n'),
    "config-unknown-reward": ("whatnext.toml", "[train]\nrewards = { novelty = 1.0 }\n"),
    "config-nan": ("whatnext.toml", "[train]\nactor_lr = nan\n"),
    "config-section-as-value": ("whatnext.toml", 'train = "yes"\n'),
    "config-missing-data": ("whatnext.toml", '[data]\npath = "nope.csv"\n'),
    "setup-no-value": ("setup.txt", "train, yes,\nmodel"),
    "setup-train-not-yes-no": ("setup.txt", "train, maybe"),
    "setup-unknown-key": ("setup.txt", "train, yes,\ntrian, no"),
    "setup-duplicate-key": ("setup.txt", "train, yes,\nmodel, lstm,\ntrain, no"),
    "setup-epochs-not-a-number": ("setup.txt", "train, yes,\nepochs, ten"),
    "setup-missing-comma": ("setup.txt", "train, yes\nmodel, lstm"),
    "setup-dotted-wrong-type": ("setup.txt", "train, yes,\ntrain.batch_size, big"),
}


@setup(*CONFIG_FILES)
def _config_file(tmp: Path, trained: Path) -> dict[str, str]:
    name, content = CONFIG_FILES[tmp.name]
    _write(tmp / name, content)
    return {"cfg": str(tmp / name)}


@setup("setup-missing-item-column")
def _legacy_song_id(tmp: Path, trained: Path) -> dict[str, str]:
    _write(tmp / "events.csv", "user_id,song_id,timestamp\nu1,s1,1\nu1,s2,2\n")
    _write(tmp / "setup.txt", "train, yes,\ndata, events.csv\n")
    return {"cfg": str(tmp / "setup.txt"), "data": str(tmp / "events.csv")}


@setup("config-missing", "init-from-missing")
def _nothing(tmp: Path, trained: Path) -> dict[str, str]:
    return {}


# data files: a config pointing at events.csv (and items.csv where given)
GOOD_ITEMS = "item_id,energy\ns1,0.1\ns2,0.5\ns3,0.9\n"
DATA_FILES: dict[str, dict[str, str | bytes]] = {
    "data-missing-column": {"events.csv": "user_id,item_id,time\nu1,s1,1\nu1,s2,2\n"},
    "data-duplicate-column": {"events.csv": "user_id,item_id,timestamp, user_id\nu1,s1,1,u2\n"},
    "data-empty-file": {"events.csv": ""},
    "data-header-only": {"events.csv": "user_id,item_id,timestamp\n"},
    "data-empty-cell": {"events.csv": "user_id,item_id,timestamp\nu1,s1,1\n,s2,2\n"},
    "data-bad-time": {"events.csv": "user_id,item_id,timestamp\nu1,s1,1\nu1,s2,yesterday\n"},
    "data-unknown-delimiter": {"events.csv": "user_id:item_id:timestamp\nu1:s1:1\nu1:s2:2\n"},
    "data-headerless": {"events.csv": "1,10,100\n1,11,200\n2,10,300\n"},
    "data-binary": {"events.csv": b"user_id,item_id,timestamp\n\x00\x01\x02\n"},
    "data-not-utf8": {"events.csv": b"user_id,item_id,timestamp,title\nu1,s1,1,Caf\xe9\n"},
    "data-malformed-row": {"events.csv": 'user_id,item_id,timestamp\nu1,s1,1\nu1,"s2,2\n'},
    "data-non-numeric-feature": {"events.csv": "user_id,item_id,timestamp,energy\n" + "".join(
        f"u1,s{i},{i},{'loud' if i == 7 else i / 10}\n" for i in range(1, 11))},
    "data-nan-feature": {"events.csv": "user_id,item_id,timestamp,energy\nu1,s1,1,0.1\nu1,s2,2,\nu2,s1,3,0.1\n"},
    "data-infinite-feature": {"events.csv": "user_id,item_id,timestamp,energy\nu1,s1,1,0.1\nu1,s2,2,inf\n"},
    "data-conflicting-features": {"events.csv": "user_id,item_id,timestamp,energy\nu1,s1,1,0.1\nu2,s1,2,0.7\n"},
    "data-item-not-in-item-table": {"events.csv": "user_id,item_id,timestamp\nu1,s1,1\nu1,s4,2\n",
                                    "items.csv": GOOD_ITEMS},
    "data-item-table-missing-id": {"events.csv": "user_id,item_id,timestamp\nu1,s1,1\n",
                                   "items.csv": "song,energy\ns1,0.1\n"},
    "data-too-few-events": {"events.csv": "user_id,item_id,timestamp\n" + "".join(  # 24 items: eval.ks = [10, 20] fit
        f"u{u},s{3 * u + t + 1},{t}\n" for u in range(8) for t in range(3))},
    "data-unknown-encoding": {"events.csv": "user_id,item_id,timestamp\nu1,s1,1\n"},
    "data-ambiguous-dates": {"events.csv": "user_id,item_id,timestamp\nu1,s1,01/04/2024\nu1,s2,02/04/2024\n"},
    "data-mixed-date-orders": {"events.csv": "user_id,item_id,timestamp\nu1,s1,31/03/2024\nu1,s2,03/31/2024\n"},
    "data-impossible-date": {"events.csv": "user_id,item_id,timestamp\nu1,s1,30/01/2024\nu1,s2,31/02/2024\n"},
    "data-time-format-mismatch": {"events.csv": "user_id,item_id,timestamp\nu1,s1,01/04/2024\nu1,s2,2024-04-01\n"},
    "data-multi-value-missing-column": {"events.csv": "user_id,item_id,timestamp\nu1,s1,1\n"},
    "data-items-id-col-missing": {"events.csv": "user_id,item_id,timestamp\nu1,s1,1\n",
                                  "items.csv": "song,energy\ns1,0.1\n"},
    "data-composite-key-clash": {"events.csv": "user_id,artist,title,timestamp\nu1,A - B,C,1\nu1,A,B - C,2\n"},
    "data-bad-decimal": {"events.csv": "user_id,item_id,timestamp\nu1,s1,1\n"},
    "data-mixed-unix-units": {"events.csv": "user_id,item_id,timestamp\nu1,s1,1711843200\nu1,s2,1711843300000\n"},
    "data-bad-feature-cols": {"events.csv": "user_id,item_id,timestamp\nu1,s1,1\n"},
    "data-reward-text": {"events.csv": "user_id,item_id,timestamp,played\nu1,s1,1,full\nu1,s2,2,half\nu1,s3,3,skip\n"},
    "data-reward-empty": {"events.csv": "user_id,item_id,timestamp,rating\nu1,s1,1,4\nu1,s2,2,5\nu1,s3,3,\n"},
    "data-reward-missing-column": {"events.csv": "user_id,item_id,timestamp,played\nu1,s1,1,full\n"},
}
DATA_CONFIG_EXTRA = {
    "data-unknown-encoding": 'encoding = "klingon"\n',
    "data-conflicting-features": 'feature_cols = ["energy"]\n',  # listed: unlisted varying columns are left out
    "data-time-format-mismatch": 'time_format = "%d/%m/%Y"\n',
    "data-multi-value-missing-column": 'multi_value_cols = ["genres"]\n',
    "data-items-id-col-missing": 'items_id_col = "id"\n',
    "data-composite-key-clash": 'item_col = ["artist", "title"]\n',
    "data-bad-decimal": 'decimal = ";"\n',
    "data-bad-feature-cols": 'feature_cols = "all"\n',
    "data-reward-text": 'reward_col = "played"\nreward_map = { full = 1, skip = -1 }\n',
    "data-reward-empty": 'reward_col = "rating"\n',
    "data-reward-missing-column": 'reward_col = "completed"\n',
}


@setup(*DATA_FILES)
def _data_files(tmp: Path, trained: Path) -> dict[str, str]:
    files = DATA_FILES[tmp.name]
    for name, content in files.items():
        _write(tmp / name, content)
    items = 'items_path = "items.csv"\n' if "items.csv" in files else ""
    _write(tmp / "whatnext.toml", f'[data]\npath = "events.csv"\n{items}{DATA_CONFIG_EXTRA.get(tmp.name, "")}')
    return {"cfg": str(tmp / "whatnext.toml"), "data": str(tmp / "events.csv")}


class _Evil:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@setup("data-malicious-pickle")
def _malicious_pickle(tmp: Path, trained: Path) -> dict[str, str]:
    # protocol 0 by hand: GLOBAL os.system, one string argument, REDUCE
    _write(tmp / "clean.pk", f"cos\nsystem\n(Vtouch {tmp / 'pwned'}\ntR.".encode())
    _write(tmp / "whatnext.toml", '[data]\npath = "clean.pk"\n')
    return {"cfg": str(tmp / "whatnext.toml")}


@setup("data-pickle-not-a-dataframe")
def _list_pickle(tmp: Path, trained: Path) -> dict[str, str]:
    _write(tmp / "clean.pk", pickle.dumps([1, 2, 3]))
    _write(tmp / "whatnext.toml", '[data]\npath = "clean.pk"\n')
    return {"cfg": str(tmp / "whatnext.toml")}


@setup("data-pickle-bad-placement", "data-pickle-truncated")
def _crafted_pickle(tmp: Path, trained: Path) -> dict[str, str]:
    if tmp.name == "data-pickle-bad-placement":
        _write(tmp / "clean.pk", (DOC.parents[1] / "tests/hostile/pickles/placement-past-the-columns.pk").read_bytes())
    else:
        _write(tmp / "clean.pk", pickle.dumps(pd.DataFrame({"user_id": ["u1"], "item_id": ["s1"], "timestamp": [1]}))[:-1])
    _write(tmp / "whatnext.toml", '[data]\npath = "clean.pk"\n')
    return {"cfg": str(tmp / "whatnext.toml")}


@setup("data-corrupt-parquet")
def _corrupt_parquet(tmp: Path, trained: Path) -> dict[str, str]:
    _write(tmp / "events.parquet", b"PAR1 this is not really parquet PAR1")
    _write(tmp / "whatnext.toml", '[data]\npath = "events.parquet"\n')
    return {"cfg": str(tmp / "whatnext.toml")}


@setup("inspect-missing-file")
def _empty_folder(tmp: Path, trained: Path) -> dict[str, str]:
    return {}


# a trained project (events.csv, items.csv, whatnext.toml, models/default with checkpoints 6 and 12)
@setup("cli-unknown-user", "cli-unknown-item", "cli-empty-history", "cli-user-and-history", "cli-nothing-to-recommend",
       "cli-k-zero", "cli-nproc-zero", "cli-k-too-large", "cli-all-users-without-output", "cli-output-bad-suffix", "cli-split-bogus",
       "cli-prune-keep-zero", "cli-average-top-one", "cli-average-into-source", "cli-train-again", "cli-unknown-run", "cli-checkpoints-unknown-run",
       "cli-bad-algorithm-option", "cli-negative-diversity", "ckpt-missing-file", "ckpt-not-a-checkpoint",
       "cli-run-traversal", "cli-run-empty", "cli-train-run-escape", "cli-set-wrong-type", "cli-set-no-equals",
       "cli-set-no-section", "cli-columns-unknown", "cli-run-unknown-user", "cli-run-users-zero")
def _trained(tmp: Path, trained: Path) -> dict[str, str]:
    _trained_copy(tmp, trained)
    _write(tmp / "notes.txt", "not a checkpoint\n")
    _sidecar(tmp / "notes.txt")  # a verified sidecar, so only the loader itself stands in the way
    return {"cfg": str(tmp / "whatnext.toml")}


@setup("baseline-run-blocked")
def _baseline_run_blocked(tmp: Path, trained: Path) -> dict[str, str]:
    from whatnext.config import load_config
    from whatnext.data import load_dataset
    from whatnext.evaluation import baseline_runs as br

    _trained_copy(tmp, trained)
    cfg_path = tmp / "whatnext.toml"
    cfg = load_config(cfg_path)
    bcfg, _ = br.baseline_config(cfg, engine.show_checkpoint(cfg_path)["config"])
    name = f"{br.PREFIX}lstm-{br.key_hash(br.cache_key('lstm', bcfg, load_dataset(cfg)))}"
    _write(tmp / "models" / name, "in the way\n")
    return {"cfg": str(cfg_path)}


def _sidecar(pt: Path, **fields: object) -> None:
    """A sidecar beside ``pt`` whose checksum matches, with ``fields`` changed."""
    data = pt.read_bytes()
    meta = {"file": pt.name, "size": len(data), "sha256": hashlib.sha256(data).hexdigest(), "step": 1, "time": 0.0,
            "metrics": {}, "format_version": checkpoints.FORMAT_VERSION, **fields}
    _write(pt.with_suffix(".json"), json.dumps(meta))


# damaged sidecars of checkpoint 12 of the trained project
SIDECARS: dict[str, str | None] = {
    "ckpt-no-sidecar": None, "ckpt-sidecar-list": "[1, 2, 3]", "ckpt-sidecar-bad-time": "1e300", "ckpt-sidecar-other-step": "6",
}


@setup(*SIDECARS, "ckpt-run-without-sidecars")
def _damaged_sidecar(tmp: Path, trained: Path) -> dict[str, str]:
    _trained_copy(tmp, trained)
    run = tmp / "models" / "default"
    side = run / "ckpt-00000012.json"
    if tmp.name == "ckpt-run-without-sidecars":
        for p in run.glob("ckpt-*.json"):
            p.unlink()
    elif tmp.name == "ckpt-no-sidecar":
        side.unlink()
    elif tmp.name == "ckpt-sidecar-list":
        side.write_text("[1, 2, 3]")
    else:
        meta = json.loads(side.read_text())
        meta["time" if tmp.name == "ckpt-sidecar-bad-time" else "step"] = json.loads(SIDECARS[tmp.name] or "null")
        side.write_text(json.dumps(meta))
    return {"cfg": str(tmp / "whatnext.toml")}


@setup("config-run-dotdot")
def _run_dotdot(tmp: Path, trained: Path) -> dict[str, str]:
    _trained_copy(tmp, trained)
    text = (tmp / "whatnext.toml").read_text()
    assert "[paths]\n" in text
    (tmp / "whatnext.toml").write_text(text.replace("[paths]\n", '[paths]\nrun = ".."\n'))
    return {"cfg": str(tmp / "whatnext.toml")}


@setup("cli-output-exists")
def _output_exists(tmp: Path, trained: Path) -> dict[str, str]:
    _trained_copy(tmp, trained)
    _write(tmp / "top.csv", "already here\n")
    return {"cfg": str(tmp / "whatnext.toml")}


@setup("cli-locked-run")
def _locked(tmp: Path, trained: Path) -> dict[str, str]:
    _trained_copy(tmp, trained)
    pid = os.getppid()  # alive, and not this process
    _write(tmp / "models" / "default" / checkpoints.LOCK, str(pid))
    return {"cfg": str(tmp / "whatnext.toml"), "pid": str(pid)}


@setup("ckpt-resume-other-algorithm")
def _trained_hybrid(tmp: Path, trained: Path) -> dict[str, str]:
    _trained_copy(tmp, trained)
    return {"cfg": str(tmp / "whatnext.toml")}


@setup("ckpt-none-yet", "ckpt-resume-without-checkpoint", "train-nan-loss")
def _untrained(tmp: Path, trained: Path) -> dict[str, str]:
    _trained_copy(tmp, trained)
    shutil.rmtree(tmp / "models")
    if tmp.name == "train-nan-loss":
        text = (tmp / "whatnext.toml").read_text()
        text = text.replace("[train]\n", "[train]\nactor_lr = 1e30\ncritic_lr = 1e30\ngrad_clip = 0.0\n")
        text = text.replace("checkpoint_every = 6", "checkpoint_every = 1000")
        (tmp / "whatnext.toml").write_text(text)
    return {"cfg": str(tmp / "whatnext.toml")}


@setup("ckpt-corrupted")
def _corrupted(tmp: Path, trained: Path) -> dict[str, str]:
    _trained_copy(tmp, trained)
    pt = checkpoints.marker(tmp / "models" / "default", "best")
    assert pt is not None
    data = bytearray(pt.read_bytes())
    data[len(data) // 2] ^= 0xFF
    pt.write_bytes(bytes(data))
    return {"cfg": str(tmp / "whatnext.toml"), "pt": str(pt), "size": str(len(data))}


@setup("ckpt-truncated")
def _truncated(tmp: Path, trained: Path) -> dict[str, str]:
    _trained_copy(tmp, trained)
    pt = tmp / "models" / "default" / "ckpt-00000012.pt"
    size = pt.stat().st_size
    pt.write_bytes(pt.read_bytes()[: size // 2])
    return {"cfg": str(tmp / "whatnext.toml"), "pt": str(pt), "size": str(size), "half": str(size // 2)}


@setup("ckpt-other-data")
def _other_data(tmp: Path, trained: Path) -> dict[str, str]:
    _trained_copy(tmp, trained)
    items = pd.read_csv(tmp / "items.csv")
    items.loc[items["item_id"] == 5, "f1"] = 0.123456
    items.to_csv(tmp / "items.csv", index=False)
    return {"cfg": str(tmp / "whatnext.toml")}


@setup("ckpt-other-features")
def _other_features(tmp: Path, trained: Path) -> dict[str, str]:
    _trained_copy(tmp, trained)
    items = pd.read_csv(tmp / "items.csv")
    items["f3"] = items["f0"] * 2  # a checkpoint for three features meets four
    items.to_csv(tmp / "items.csv", index=False)
    return {"cfg": str(tmp / "whatnext.toml")}


@setup("ckpt-malicious")
def _malicious_checkpoint(tmp: Path, trained: Path) -> dict[str, str]:
    _trained_copy(tmp, trained)
    pt = tmp / "gift.pt"
    torch.save({"format_version": checkpoints.FORMAT_VERSION, "step": 1, "actor": _Evil(tmp / "pwned")}, pt)
    _sidecar(pt)  # a verified sidecar, so only the loader itself stands in the way
    return {"cfg": str(tmp / "whatnext.toml")}


@setup("init-exists")
def _init_exists(tmp: Path, trained: Path) -> dict[str, str]:
    _write(tmp / "whatnext.toml", "[train]\nepochs = 1\n")
    return {}


# sizes, special files and crafted checkpoints (#11 parts 3-4; the payloads come from tests/hostile/make_checkpoints.py)
@setup("config-fifo")
def _config_fifo(tmp: Path, trained: Path) -> dict[str, str]:
    os.mkfifo(tmp / "pipe.toml")
    return {}


@setup("config-too-large")
def _config_too_large(tmp: Path, trained: Path) -> dict[str, str]:
    _write(tmp / "whatnext.toml", "[train]\nepochs = 1\n" + "#" * (1024 * 1024))
    return {"cfg": str(tmp / "whatnext.toml")}


@setup("config-above-bound")
def _config_above_bound(tmp: Path, trained: Path) -> dict[str, str]:
    _write(tmp / "whatnext.toml", "[model]\nwindow = 1000000000\n")
    return {"cfg": str(tmp / "whatnext.toml")}


@setup("data-fifo")
def _data_fifo(tmp: Path, trained: Path) -> dict[str, str]:
    os.mkfifo(tmp / "pipe.csv")
    _write(tmp / "whatnext.toml", '[data]\npath = "pipe.csv"\n')
    return {"cfg": str(tmp / "whatnext.toml")}


@setup("eval-ks-above-catalogue", "cli-seed-too-large", "cli-output-under-a-file")
def _trained_for_sizes(tmp: Path, trained: Path) -> dict[str, str]:
    _trained_copy(tmp, trained)
    cfg = tmp / "whatnext.toml"
    if tmp.name == "eval-ks-above-catalogue":
        cfg.write_text(cfg.read_text().replace("ks = [10]", "ks = [41]"))
    _write(tmp / "top.csv", "a file where --output wants a folder\n")
    return {"cfg": str(cfg)}


CRAFTED = {
    "ckpt-stored-value-out-of-bounds": "config-rerank-1e9", "ckpt-items-not-the-catalogue": "args-n-items-3m",
    "ckpt-model-args-extra-key": "args-extra-key", "ckpt-model-args-text": "args-text-value",
    "ckpt-unknown-model": "unknown-model-name", "ckpt-config-a-list": "config-a-list", "ckpt-actor-a-string": "actor-a-string",
    "ckpt-weights-wrong-shape": "weights-wrong-shape", "ckpt-nan-weights": "weights-nan",
    "ckpt-nan-rerank-weight": "rerank-weight-nan", "ckpt-inf-score-scale": "score-scale-inf",
}


@setup(*CRAFTED)
def _crafted_checkpoint(tmp: Path, trained: Path) -> dict[str, str]:
    from hostile.make_checkpoints import CASES, load_source, write

    _trained_copy(tmp, trained)
    source = checkpoints.marker(tmp / "models" / "default", "best")
    assert source is not None
    mutate, _ = CASES[CRAFTED[tmp.name]]
    pt = write(mutate(load_source(source)), tmp / "crafted")  # with its sidecar: the payload check is what refuses it
    return {"cfg": str(tmp / "whatnext.toml"), "pt": str(pt)}


# serve and export: each row fails before a server would start (a listening socket held for port-in-use)
_HELD: list[socket.socket] = []


@setup("serve-port-out-of-range", "serve-workers-zero", "serve-short-token", "serve-negative-watch", "serve-port-in-use",
       "serve-host-not-here", "serve-checkpoint-missing", "serve-unknown-run", "serve-plays-a-folder",
       "export-unknown-format", "export-k-zero", "export-output-exists", "export-output-under-a-file",
       "export-checkpoint-missing", "export-before-training")
def _serving(tmp: Path, trained: Path) -> dict[str, str]:
    _trained_copy(tmp, trained)
    if tmp.name == "export-before-training":
        shutil.rmtree(tmp / "models")
    _write(tmp / "export" / "actor.pt", b"an earlier export")
    _write(tmp / "top.csv", "a file where --output wants a folder\n")
    if tmp.name != "serve-port-in-use":
        return {"cfg": str(tmp / "whatnext.toml")}
    held = socket.socket()
    held.bind(("127.0.0.1", 0))
    held.listen()
    _HELD.append(held)  # open until the test session ends
    return {"cfg": str(tmp / "whatnext.toml"), "port": str(held.getsockname()[1])}


@setup("export-q-ranking")
def _trained_sqn(tmp: Path, trained: Path) -> dict[str, str]:
    cfg = ch.write_project(tmp, algorithm="sqn", checkpoint_every=6)
    engine.train(cfg)
    return {"cfg": str(cfg)}


# ---------------------------------------------------------------- the test


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny project trained once: checkpoints at steps 6 and 12."""
    folder = tmp_path_factory.mktemp("errors-trained")
    cfg = ch.write_project(folder, algorithm="hybrid", checkpoint_every=6)
    engine.train(cfg)
    return folder


def pattern(message: str, values: dict[str, str]) -> re.Pattern[str]:
    """The documented message as a regular expression: placeholders filled in, ``{*}`` any text."""
    out = []
    for part in re.split(r"(\{[a-z*]+\})", message):
        name = part[1:-1] if part.startswith("{") and part.endswith("}") else None
        if name == "*":
            out.append(".*?")
        elif name is not None:
            assert name in values, f"unknown placeholder {part} (known: {', '.join(sorted(values))})"
            out.append(re.escape(values[name]))
        else:
            out.append(re.escape(part))
    return re.compile("".join(out))


def fill(text: str, values: dict[str, str]) -> str:
    return re.sub(r"\{([a-z]+)\}", lambda m: values[m.group(1)], text)


def test_the_table_is_long_and_every_row_has_a_setup() -> None:
    ids = [r.id for r in ROWS]
    assert len(ids) == len(set(ids)), "duplicate row ids"
    assert len(ROWS) >= 30
    assert set(ids) == set(SETUPS), f"rows without a setup: {set(ids) - set(SETUPS)}; setups without a row: {set(SETUPS) - set(ids)}"
    assert all(r.command.startswith("whatnext ") for r in ROWS)
    assert {r.exit for r in ROWS} >= {2, 3, 4, 5, 6, 7}
    readme = (DOC.parents[1] / "README.md").read_text(encoding="utf-8")
    assert "(docs/errors.md)" in readme, "README's Exit codes section links the table"


@pytest.mark.parametrize("row", ROWS, ids=[r.id for r in ROWS])
def test_every_row_gives_its_message_and_exit_code(row: Row, trained: Path, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WHATNEXT_DEBUG", raising=False)
    tmp = tmp_path / row.id
    tmp.mkdir()
    values = {"tmp": str(tmp), "run": str(tmp / "models" / "default"), "cfg": str(tmp / "whatnext.toml")}
    values.update(SETUPS[row.id](tmp, trained))
    args = shlex.split(fill(row.command, values))
    assert args[0] == "whatnext"
    monkeypatch.chdir(tmp)
    result = CliRunner().invoke(app, args[1:])
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == row.exit, f"{row.id}: exit {result.exit_code}, documented {row.exit}; stderr: {result.stderr}"
    assert len(lines) == 1, f"{row.id}: stderr is not one line: {result.stderr!r}"
    assert "Traceback" not in result.output
    assert pattern(row.message, values).fullmatch(lines[0]), (
        f"{row.id}: stderr differs from docs/errors.md\n  got:        {lines[0]}\n  documented: {fill(row.message, values)}")
    assert not (tmp / "pwned").exists(), "a hostile file ran code"
