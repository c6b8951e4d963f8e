"""How every whatnext figure looks: one palette, one size, one way to save.

The palette is Okabe and Ito's, safe for the common colour-vision deficiencies. Figures are drawn
with matplotlib's Agg backend (no display needed) and sized to be read at 100% on a laptop screen.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from whatnext.errors import ConfigError, OutputExistsError, WhatnextError

#: Okabe-Ito, in the order lines and bars take them (black last: it is kept for references)
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000")
FORMATS = ("png", "svg")
DPI = 100  # a 10-inch figure is 1000 pixels wide: readable at 100% on a laptop


def colour(i: int) -> str:
    """The i-th colour of the palette (cycling)."""
    return PALETTE[i % len(PALETTE)]


def pyplot() -> Any:
    """matplotlib.pyplot on the headless Agg backend, with whatnext's defaults (imported only when plotting)."""
    try:
        import matplotlib
    except ImportError:
        raise ConfigError("plotting needs matplotlib: pip install -e '.[plot]'") from None
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt
    from cycler import cycler

    plt.rcParams.update({
        "figure.dpi": DPI, "savefig.dpi": DPI, "font.size": 11, "axes.titlesize": 12, "axes.labelsize": 11,
        "figure.titlesize": 14, "legend.fontsize": 10, "axes.grid": True, "grid.alpha": 0.3,
        "axes.spines.top": False, "axes.spines.right": False, "axes.prop_cycle": cycler(color=list(PALETTE)),
        "svg.hashsalt": "whatnext", "svg.fonttype": "none",
    })
    return plt


def check_output(folder: Path, names: list[str], fmt: str, force: bool) -> list[Path]:
    """The files a plot command will write, checked before anything is drawn."""
    if fmt not in FORMATS:
        raise ConfigError(f"--format is {fmt!r}, expected png or svg")
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"--output {folder}: is a file, expected a folder")
    paths = [folder / f"{name}.{fmt}" for name in names]
    existing = [p for p in paths if p.exists()]
    if existing and not force:
        raise OutputExistsError(f"{existing[0]}: already exists, not overwritten; pass --force to replace it")
    return paths


def save(fig: Any, path: Path) -> str:
    """Write ``fig`` to ``path`` (format from the suffix) through a temporary file, then close it."""
    plt = pyplot()
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        metadata = {"Software": "whatnext"} if path.suffix == ".png" else {"Creator": "whatnext", "Date": None}
        fig.savefig(tmp, format=path.suffix[1:], bbox_inches="tight", metadata=metadata)
        if path.suffix == ".png":
            _shrink_png(tmp)
        tmp.replace(path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise WhatnextError(f"{path}: cannot write ({e.strerror or e})") from None
    finally:
        plt.close(fig)
    return str(path)


def _shrink_png(path: Path) -> None:
    """Re-encode as a 256-colour palette PNG: a third of the size, the same picture to the eye (flat plot colours)."""
    from PIL import Image  # matplotlib's own dependency

    with Image.open(path) as im:
        small = im.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    small.save(path, format="PNG", optimize=True)


def smooth(y: np.ndarray, window: int | None = None) -> np.ndarray:
    """Moving average over ``window`` points (default: about 1/30 of the series), same length as ``y``.

    NaNs (steps without this metric) are skipped, not spread.
    """
    y = np.asarray(y, dtype=np.float64)
    n = len(y)
    w = max(1, n // 30) if window is None else max(1, int(window))
    if w == 1 or n == 0:
        return y.copy()
    ok = np.isfinite(y)
    total = np.convolve(np.where(ok, y, 0.0), np.ones(w), mode="full")[:n]
    count = np.convolve(ok.astype(np.float64), np.ones(w), mode="full")[:n]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def grid(plt: Any, panels: int, cols: int, width: float = 12.0, row_height: float = 3.6) -> tuple[Any, list[Any]]:
    """A figure of ``panels`` axes in rows of ``cols``; unused cells are hidden."""
    rows = max(1, -(-panels // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(width, row_height * rows), squeeze=False, layout="constrained")
    flat = list(axes.ravel())
    for ax in flat[panels:]:
        ax.set_visible(False)
    return fig, flat[:panels]
