"""``whatnext plot eval``: an eval table's models side by side, and the accuracy-diversity frontier.

``eval-models``: NDCG@K, HR@K, coverage@K and ILD@K, one bar per model; where the output of
``bench/seeds.py --json`` is given, a model it also measured gets a whisker (mean ± one standard
deviation over the seeds) and a dot per seed, from the same split and protocol. ``eval-frontier``:
the agent's NDCG@K against its ILD@K for each ``--diversity`` weight, the table's other models as
reference points.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from whatnext.plots.style import check_output, colour, grid, pyplot, save

NAMES = ["eval-models", "eval-frontier"]
METRICS = (("ndcg", "NDCG@{k}", "NDCG (0-1, higher is better)"), ("hr", "HR@{k}", "hit rate (share of users)"),
           ("coverage", "coverage@{k}", "share of the catalogue recommended"),
           ("ild", "ILD@{k}", "mean distance within a list"))


def seed_spread(seeds: dict[str, Any] | None, split: str, include_seen: bool) -> dict[str, dict[str, list[float]]]:
    """model -> metric key -> values over seeds, from ``bench/seeds.py --json`` output, for one protocol."""
    out: dict[str, dict[str, list[float]]] = {}
    for r in (seeds or {}).get("results", []):
        if r.get("split") != split or bool(r.get("include_seen")) != include_seen:
            continue
        for key, value in (r.get("metrics") or {}).items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                out.setdefault(str(r.get("model")), {}).setdefault(key, []).append(float(value))
    return out


def plot_eval(table: dict[str, Any], frontier: list[tuple[float, dict[str, Any]]], folder: Path, fmt: str = "png",
              force: bool = False, seeds: dict[str, Any] | None = None, k: int | None = None) -> dict[str, Any]:
    """Draw ``table`` (what ``engine.evaluate`` returns) and the ``frontier`` ((weight, agent row) pairs) into ``folder``."""
    names = NAMES if frontier else NAMES[:1]
    paths = check_output(folder, names, fmt, force)
    k = int(k or table["ks"][0])
    rows = table["rows"]
    split, seen = table["split"], bool(table["include_seen"])
    spread = seed_spread(seeds, split, seen)
    plt = pyplot()
    protocol = f"{split} split, played items {'kept' if seen else 'excluded'}, {table['users']:,} users"
    metrics = [m for m in METRICS if any(f"eval/{m[0]}@{k}" in r for r in rows)]
    fig, axes = grid(plt, len(metrics), len(metrics), width=3.4 * len(metrics), row_height=4.2)
    note = f"; whiskers: mean ± 1 sd over {len((seeds or {}).get('seeds', []))} seeds" if spread else ""
    fig.suptitle(f"Models compared ({protocol}{note})")
    models = [str(r.get("eval/model", f"model {i}")) for i, r in enumerate(rows)]
    x = np.arange(len(models))
    for ax, (name, title, ylabel) in zip(axes, metrics):
        key = f"eval/{name}@{k}"
        values = np.asarray([float(r.get(key, np.nan)) for r in rows])
        ax.bar(x, values, color=[colour(i) for i in range(len(models))], width=0.7)
        tops = values.copy()  # where each bar's label goes: above its whisker and seed dots too
        for j, (xi, model) in enumerate(zip(x, models)):
            vals = spread.get(model, {}).get(key)
            if vals:
                a = np.asarray(vals)
                sd = a.std(ddof=1) if len(a) > 1 else 0.0
                ax.errorbar(xi, a.mean(), yerr=sd, color="black", capsize=5, linewidth=1.5, zorder=3)
                ax.scatter(np.full(len(a), xi + 0.22), a, s=14, color="black", zorder=3, alpha=0.7)
                tops[j] = np.nanmax([values[j], a.mean() + sd, a.max()])
        for xi, v, top in zip(x, values, tops):
            if np.isfinite(v):
                ax.annotate(f"{v:.3f}", (xi, top), textcoords="offset points", xytext=(0, 3), ha="center",
                            va="bottom", fontsize=8.5)
        ax.set_xticks(x, models, rotation=30, ha="right")
        ax.set_title(title.format(k=k))
        ax.set_ylabel(ylabel)
        ax.set_ylim(0, max(np.nanmax(tops) if np.isfinite(tops).any() else 1.0, 1e-9) * 1.18)
        ax.grid(axis="x", visible=False)
    written = [save(fig, paths[0])]
    shown = {"models": models, "k": k, "seed_models": sorted(m for m in spread if m in models)}
    if frontier:
        written.append(_frontier(plt, frontier, rows, k, protocol, paths[1]))
        shown["frontier"] = [{"diversity": w, f"ndcg@{k}": r.get(f"eval/ndcg@{k}"), f"ild@{k}": r.get(f"eval/ild@{k}")}
                             for w, r in frontier]
    return {"written": written, **shown}


def _frontier(plt: Any, frontier: list[tuple[float, dict[str, Any]]], rows: list[dict[str, Any]], k: int,
              protocol: str, path: Path) -> str:
    nd, ild = f"eval/ndcg@{k}", f"eval/ild@{k}"
    fig, ax = plt.subplots(figsize=(8, 5.5), layout="constrained")
    pts = sorted(((float(w), float(r.get(ild, np.nan)), float(r.get(nd, np.nan))) for w, r in frontier))
    xs, ys = [p[1] for p in pts], [p[2] for p in pts]
    ax.plot(xs, ys, marker="o", markersize=7, color=colour(0), linewidth=2, label="agent, by diversity weight W")
    labels: dict[tuple[float, float], list[str]] = {}  # weights that give the same list share one label
    for w, xv, yv in pts:
        labels.setdefault((round(xv, 4), round(yv, 4)), []).append(f"{w:g}")
    for (xv, yv), ws in labels.items():
        ax.annotate("W=" + ", ".join(ws), (xv, yv), textcoords="offset points", xytext=(7, 7), fontsize=10,
                    color=colour(0))
    others = [r for r in rows if r.get("eval/model") != "agent" and np.isfinite(float(r.get(ild, np.nan)))]
    for i, r in enumerate(others, start=1):
        ax.scatter(float(r[ild]), float(r[nd]), marker="s", s=50, color=colour(i), label=str(r.get("eval/model")))
    ax.margins(x=0.08, y=0.08)  # room for the last weight's label
    ax.set_title(f"Accuracy-diversity frontier ({protocol})")
    ax.set_xlabel(f"ILD@{k}: mean distance between the items of a list (item-vector units)")
    ax.set_ylabel(f"NDCG@{k} (higher is better)")
    ax.legend(loc="best")
    return save(fig, path)
