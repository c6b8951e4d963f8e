"""``whatnext plot train``: one or more runs' ``metrics.jsonl``, overlaid for comparison.

One figure, ``train``: a panel per loss and per reward (smoothed line, the raw values faint), a panel per
validation metric (one point per checkpoint) and one for throughput (samples/s). Each run has one colour
in every panel.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from whatnext.errors import NotFoundError
from whatnext.plots.style import check_output, colour, grid, pyplot, save, smooth

NAMES = ["train"]
#: validation metrics drawn, in this order, when present (the other eval/ keys are bookkeeping)
VALID = ("ndcg", "hr", "coverage", "ild")


def read_metrics(path: Path) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], dict[str, tuple[np.ndarray, np.ndarray]]]:
    """(per-step series, validation series) of one metrics.jsonl: key -> (steps, values).

    A line that is not a JSON object with a step (a write cut short by a crash) is passed over.
    """
    steps: dict[str, list[tuple[int, float]]] = {}
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            row = json.loads(line)
            step = int(row["step"])
        except (ValueError, KeyError, TypeError):
            continue
        for key, value in row.items():
            if key != "step" and isinstance(value, (int, float)) and not isinstance(value, bool):
                steps.setdefault(key, []).append((step, float(value)))
    train: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    valid: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for key, pairs in steps.items():
        arr = np.asarray(pairs, dtype=np.float64)
        series = (arr[:, 0], arr[:, 1])
        (valid if key.startswith(("eval/", "valid/")) else train)[key] = series
    return train, valid


def _train_panels(keys: set[str]) -> list[tuple[str, str, str]]:
    """(key, title, y label) of the per-step panels: losses, the reward, samples/s."""
    titles = {"ce_loss": "next-item cross-entropy loss", "critic_loss": "critic loss"}
    out = [(k, titles.get(k.split("/")[-1], k.split("/")[-1].replace("_", " ")), "loss (per step)")
           for k in sorted(k for k in keys if k.endswith("_loss"))]
    if "train/reward" in keys:
        out.append(("train/reward", "reward (weighted sum, train.rewards)", "mean reward per sample"))
    for k in sorted(k for k in keys if k.startswith("train/reward_")):  # each reward of a weighted sum, unweighted
        out.append((k, f"reward: {k.removeprefix('train/reward_').replace('_', ' ')}", "mean reward per sample"))
    if "train/samples_per_s" in keys:
        out.append(("train/samples_per_s", "throughput", "samples/s (since start)"))
    return out


def _valid_panels(keys: set[str]) -> list[tuple[str, str, str]]:
    """NDCG, HR, coverage and ILD at the smallest cut-off logged."""
    cuts = sorted({int(c) for k in keys for c in [k.partition("@")[2]] if c.isdigit()})
    if not cuts:
        return []
    labels = {"ndcg": ("NDCG", "NDCG (0-1)"), "hr": ("HR", "hit rate (share of users)"),
              "coverage": ("coverage", "share of the catalogue"), "ild": ("ILD", "mean distance within a list")}
    out = []
    for name in VALID:
        key = next((k for k in keys if k.split("/")[-1] == f"{name}@{cuts[0]}"), None)
        if key is not None:
            out.append((key, f"validation {labels[name][0]}@{cuts[0]}", labels[name][1]))
    return out


def _same(a: tuple[np.ndarray, np.ndarray] | None, b: tuple[np.ndarray, np.ndarray] | None) -> bool:
    return a is not None and b is not None and len(a[1]) == len(b[1]) and bool(np.allclose(a[1], b[1]))


def plot_train(runs: dict[str, Path], folder: Path, fmt: str = "png", force: bool = False) -> dict[str, Any]:
    """Draw the runs (name -> run folder) into ``folder``; each needs a ``metrics.jsonl``."""
    data = {}
    for name, run_dir in runs.items():
        path = run_dir / "metrics.jsonl"
        if not path.is_file():
            raise NotFoundError(f"{path}: no metrics log; run '{name}' has not trained yet "
                                f"('whatnext checkpoints list' shows the runs)")
        data[name] = read_metrics(path)
    paths = check_output(folder, NAMES, fmt, force)
    train_keys = set().union(*(set(t) for t, _ in data.values()))
    valid_keys = set().union(*(set(v) for _, v in data.values()))
    if all(_same(t.get("train/actor_loss"), t.get("train/ce_loss")) for t, _ in data.values()):
        train_keys.discard("train/actor_loss")  # hybrid without rl_weight: the actor's loss is its cross-entropy
    panels = [(k, t, y, False) for k, t, y in _train_panels(train_keys)]
    panels += [(k, t, y, True) for k, t, y in _valid_panels(valid_keys)]
    if not panels:
        raise NotFoundError(f"{', '.join(str(p / 'metrics.jsonl') for p in runs.values())}: no training steps logged yet")
    last = max(float(s.max()) for t, v in data.values() for s, _ in [*t.values(), *v.values()])
    plt = pyplot()
    fig, axes = grid(plt, len(panels), min(3, len(panels)), width=12, row_height=3.2)
    fig.suptitle("Training: " + ", ".join(runs) + " (lines smoothed; raw values faint)")
    for ax, (key, title, ylabel, is_valid) in zip(axes, panels):
        for i, (name, (train, valid)) in enumerate(data.items()):
            series = (valid if is_valid else train).get(key)
            if series is None:
                continue
            x, y = series
            if is_valid:
                ax.plot(x, y, marker="o", markersize=4, color=colour(i), linewidth=1.5, label=name)
            elif key == "train/samples_per_s":
                ax.plot(x, y, color=colour(i), linewidth=1.5, label=name)
            else:
                ax.plot(x, y, color=colour(i), alpha=0.2, linewidth=0.8)
                ax.plot(x, smooth(y), color=colour(i), linewidth=1.8, label=name)
        ax.set_title(title + (" (per checkpoint)" if is_valid else ""))
        ax.set_xlabel("training step")
        ax.set_ylabel(ylabel)
        ax.set_xlim(0, last * 1.02)  # every panel on the same step axis, a lone checkpoint included
    if len(runs) > 1:
        axes[0].legend(title="run", loc="best")
    written = [save(fig, paths[0])]
    return {"written": written, "runs": {name: str(p) for name, p in runs.items()},
            "steps": {name: int(max((s.max() for s, _ in t.values()), default=0)) for name, (t, _) in data.items()}}
