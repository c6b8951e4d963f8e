"""``whatnext export``: the exported actor ranks as whatnext does in process (TorchScript, and ONNX when
onnxruntime is installed), for histories longer than the model's window, with played items left out."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from test_serving_helpers import trained_project
from typer.testing import CliRunner

from whatnext import engine
from whatnext.cli import app
from whatnext.serving.recommender import Recommender

K = 7


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("export")
    cfg = trained_project(folder / "p", rerank=0)  # whatnext then ranks by the actor alone, as exported
    formats = ["torchscript", "onnx"] if _onnx_works() else ["torchscript"]
    engine.export(cfg, formats=formats, output=folder / "out", k=K)
    return cfg, folder / "out"


def _onnx_works() -> bool:
    try:
        import onnx  # noqa: F401
        import onnxscript  # noqa: F401
    except ImportError:
        return False
    return True


def _whatnext(cfg: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every user's history (right-padded with -1), lengths, and whatnext's top-K in process."""
    rec = Recommender.load(cfg)
    h = rec.dataset.histories
    hists = [h.of(u) for u in range(len(h))]
    width = max(len(x) for x in hists)
    padded = np.full((len(hists), width), -1, np.int64)
    for r, x in enumerate(hists):
        padded[r, : len(x)] = x
    idx = rec.rank_all(K)[0]
    assert width > rec.model.agent.cfg.model.window  # the export must cut the window as whatnext does
    return padded, h.lengths.astype(np.int64), idx


def test_torchscript_gives_the_same_top_k(exported: tuple[Path, Path]) -> None:
    cfg, out = exported
    history, lengths, want = _whatnext(cfg)
    model = torch.jit.load(str(out / "actor.pt"))
    scores, got = model(torch.from_numpy(history), torch.from_numpy(lengths))
    assert (got.numpy() == want).all()
    assert (np.diff(scores.numpy(), axis=1) <= 0).all()
    _, got20 = model.rank(torch.from_numpy(history), torch.from_numpy(lengths), 20, True)
    assert (got20.numpy()[:, :K] == want).all()
    items = json.loads((out / "items.json").read_text())
    assert len(items["ids"]) == 40 and items["ids"][int(want[0, 0])] == engine.recommend(cfg, user="1", k=1)["recommendations"][0]["item_id"]
    meta = json.loads((out / "config.json").read_text())
    assert meta["k"] == K and meta["window"] == 5 and meta["config"]["model"]["rerank"] == 0
    assert np.load(out / "item_vectors.npy").shape[0] == 40


def test_onnx_gives_the_same_top_k(exported: tuple[Path, Path]) -> None:
    ort = pytest.importorskip("onnxruntime")
    cfg, out = exported
    assert (out / "actor.onnx").exists()
    history, lengths, want = _whatnext(cfg)
    session = ort.InferenceSession(str(out / "actor.onnx"), providers=["CPUExecutionProvider"])
    _, got = session.run(None, {"history": history, "lengths": lengths})
    assert (got == want).all()


def test_export_refuses_to_overwrite_and_names_bad_formats(exported: tuple[Path, Path]) -> None:
    cfg, out = exported
    runner = CliRunner()
    r = runner.invoke(app, ["export", "--config", str(cfg), "--output", str(out)])
    assert r.exit_code == 6 and "already exists" in r.output
    r = runner.invoke(app, ["export", "--config", str(cfg), "--output", str(out), "--format", "tflite"])
    assert r.exit_code == 2 and "expected one of torchscript, onnx" in r.output
