"""``whatnext plot data``: what the listening log looks like, in two figures.

``data``: history lengths (log-scaled histogram), item popularity (rank-frequency on log-log axes,
with the top-1% share and Gini that ``inspect-data`` reports) and plays over time;
``data-features``: each item feature's distribution over the catalogue, in the data's own units.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from whatnext.data.dataset import Dataset
from whatnext.data.stats import gini, top_share
from whatnext.plots.style import check_output, colour, grid, pyplot, save

NAMES = ["data", "data-features"]
_PER_SECOND = {"seconds": 1.0, "milliseconds": 1e3, "microseconds": 1e6, "nanoseconds": 1e9}


def plot_data(ds: Dataset, folder: Path, fmt: str = "png", force: bool = False) -> dict[str, Any]:
    """Draw the dataset's figures into ``folder``; return the paths written and the numbers shown."""
    has_features = ds.catalogue.features is not None and len(ds.catalogue.feature_names) > 0
    names = NAMES if has_features else NAMES[:1]
    paths = check_output(folder, names, fmt, force)
    plt = pyplot()
    h = ds.histories
    per_item = np.bincount(h.items, minlength=len(ds.catalogue))
    shown = {"users": len(h), "items": len(ds.catalogue), "events": len(h.items),
             "top1pct_share": top_share(per_item), "gini": gini(per_item)}

    fig, (ax_len, ax_pop, ax_time) = grid(plt, 3, 3, width=15, row_height=4.6)
    fig.suptitle(f"{Path(str(ds.source)).name}: {shown['users']:,} users, {shown['items']:,} items, "
                 f"{shown['events']:,} plays")
    _history_lengths(ax_len, h.lengths)
    _popularity(ax_pop, per_item, shown["top1pct_share"], shown["gini"])
    _over_time(ax_time, np.asarray(h.times), ds.report)
    written = [save(fig, paths[0])]
    if has_features:
        written.append(_features(plt, ds, paths[1]))
    return {"written": written, "source": str(ds.source), **shown}


def _history_lengths(ax: Any, lengths: np.ndarray) -> None:
    lengths = np.asarray(lengths)
    top = max(int(lengths.max()), 2)
    low = max(1, int(lengths.min()))  # the axis starts at the shortest history, not at 1
    bins = np.unique(np.geomspace(low, top + 1, num=min(40, top + 1)).round().astype(int))
    ax.hist(lengths, bins=bins, color=colour(0), edgecolor="white", linewidth=0.5)
    ax.set_xscale("log")
    from matplotlib import ticker

    ax.xaxis.set_major_locator(ticker.LogLocator(subs=(1.0, 2.0, 5.0)))  # 10, 20, 50, 100...: plain numbers
    ax.xaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:,.0f}"))
    med = float(np.median(lengths))
    ax.axvline(med, color=colour(7), linestyle="--", linewidth=1)
    ax.text(med, 0.97, f" median {med:g}", transform=ax.get_xaxis_transform(), va="top", fontsize=10)
    ax.set_title("History length per user")
    ax.set_xlabel("plays per user (log scale)")
    ax.set_ylabel("users")


def _popularity(ax: Any, per_item: np.ndarray, share: float, g: float) -> None:
    counts = np.sort(per_item[per_item > 0])[::-1]
    ranks = np.arange(1, len(counts) + 1)
    ax.loglog(ranks, counts, color=colour(1), linewidth=2)
    top = max(1, round(len(per_item) * 0.01))
    ax.axvspan(1, top + 0.5, color=colour(1), alpha=0.15, linewidth=0)
    ax.text(0.97, 0.97, f"top 1% of items ({top:,}): {share:.1%} of plays\nGini {g:.3f}",
            transform=ax.transAxes, ha="right", va="top", fontsize=10,
            bbox={"facecolor": "white", "edgecolor": "0.8", "boxstyle": "round,pad=0.3"})
    ax.set_title("Item popularity (rank-frequency)")
    ax.set_xlabel("item rank by plays (log scale)")
    ax.set_ylabel("plays per item (log scale)")


def _over_time(ax: Any, times: np.ndarray, report: dict[str, Any]) -> None:
    kind, unit = report.get("time_kind", "number"), report.get("time_unit")
    if len(times) == 0:
        ax.set_visible(False)
        return
    if kind == "datetime" or unit in _PER_SECOND:
        seconds = times.astype(np.float64) / (1e9 if kind == "datetime" else _PER_SECOND[str(unit)])
        days = seconds / 86400.0
        span = max(float(days.max() - days.min()), 1e-9)
        width, label = _bin_width(span)
        bins = max(1, min(200, int(np.ceil(span / width))))
        counts, edges = np.histogram(days, bins=bins, range=(days.min(), days.min() + bins * width))
        import matplotlib.dates as mdates

        # matplotlib dates count days since 1970-01-01, as these do
        ax.bar(edges[:-1], counts, width=width, align="edge", color=colour(2), linewidth=0)
        loc = mdates.AutoDateLocator(maxticks=6)
        ax.xaxis.set_major_locator(loc)
        ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(loc))
        ax.set_xlabel("time (UTC)")
        ax.set_ylabel(f"plays per {label}")
    else:
        counts, edges = np.histogram(times.astype(np.float64), bins=50)
        ax.bar(edges[:-1], counts, width=np.diff(edges), align="edge", color=colour(2), linewidth=0)
        ax.set_xlabel(f"{report.get('time_column') or 'order'} (as in the data, no unit)")
        ax.set_ylabel("plays per bin (1/50 of the range)")
    ax.set_title("Plays over time")


def _bin_width(span_days: float) -> tuple[float, str]:
    """A calendar-like bin width giving 20 to 200 bins over ``span_days``."""
    for width, label in ((1 / 24, "hour"), (1.0, "day"), (7.0, "week"), (30.44, "month"), (365.25, "year")):
        if span_days / width <= 200:
            return width, label
    return 365.25, "year"


def _features(plt: Any, ds: Dataset, path: Path) -> str:
    cat = ds.catalogue
    names = list(cat.feature_names)
    values = np.asarray(cat.original_units(np.arange(len(cat))), dtype=np.float64)
    cols = min(4, len(names))
    fig, axes = grid(plt, len(names), cols, width=3.4 * cols + 1, row_height=2.9)
    fig.suptitle(f"Item features over the catalogue ({len(cat):,} items, units as in the data)")
    for j, (ax, name) in enumerate(zip(axes, names)):
        col = values[:, j]
        col = col[np.isfinite(col)]
        ax.hist(col, bins=30, color=colour(0), edgecolor="white", linewidth=0.4)
        ax.set_title(name)
        ax.set_xlabel("value (as in the data)")
        ax.set_ylabel("items")
    return save(fig, path)
