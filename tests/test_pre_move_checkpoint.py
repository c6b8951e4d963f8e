"""A checkpoint written before the package moved into subpackages still loads and recommends the same.

``fixtures/pre_move`` was trained by the flat-layout main (commit 4ba7046) on its own tiny data;
``expected.json`` is what that version's ``engine.recommend`` answered for user u3.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from whatnext import engine

FIXTURE = Path(__file__).parent / "fixtures" / "pre_move"


def test_a_checkpoint_from_the_flat_layout_recommends_the_same(tmp_path: Path) -> None:
    project = tmp_path / "project"
    shutil.copytree(FIXTURE, project)
    expected = json.loads((FIXTURE / "expected.json").read_text())
    out = engine.recommend(project / "whatnext.toml", user="u3", k=5)
    assert [r["item_id"] for r in out["recommendations"]] == [r["item_id"] for r in expected["recommendations"]]
    assert out["history"] == expected["history"]
    assert Path(out["checkpoint"]).name == "ckpt-00000004.pt"
    listed = engine.list_checkpoints(project / "whatnext.toml")
    assert listed
