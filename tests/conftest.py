"""Shared fixtures: tiny generated data files in tmp_path (no test reads the repository's data folder)."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import long_frame, split_frames


@pytest.fixture
def long_csv(tmp_path: Path) -> Path:
    """The small long table written as CSV with a header."""
    p = tmp_path / "long.csv"
    long_frame().to_csv(p, index=False)
    return p


@pytest.fixture
def two_csvs(tmp_path: Path) -> tuple[Path, Path]:
    """The small data written as events.csv + items.csv."""
    events, items = split_frames()
    ev, it = tmp_path / "events.csv", tmp_path / "items.csv"
    events.to_csv(ev, index=False)
    items.to_csv(it, index=False)
    return ev, it

