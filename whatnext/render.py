"""Rich rendering of engine results for people (the CLI's side; the engine never prints)."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table


def _num(x: Any, digits: int = 4) -> str:
    if isinstance(x, float):
        return f"{x:.{digits}g}"
    return str(x)


def render_inspect(con: Console, r: dict[str, Any]) -> None:
    """The inspect-data report as a few tables."""
    t = Table(title=f"Data: {r['source']}", show_header=False)
    t.add_column("what", style="bold")
    t.add_column("value")
    tm = r["time"]
    hl = r["history_length"]
    ep = r["events_per_item"]
    sp = r["split"]
    rows = [
        ("users", r["users"]), ("items", f"{r['items']} ({r['items_played']} played, {ep['never_played']} never)"),
        ("events", r["events"]),
        ("time", f"{tm['first']} .. {tm['last']}" + (f" ({tm['span_days']} days)" if tm["span_days"] is not None else "")),
        ("history length", f"min {hl['min']}, median {_num(hl['median'])}, p90 {_num(hl['p90'])}, max {hl['max']}"),
        ("events per item", f"top 1% of items get {ep['top1pct_share']:.1%} of events; Gini {ep['gini']:.3f}; max {ep['max']}"),
        ("duplicate events", r["duplicate_events"]),
        ("single-event users", f"{r['single_event_users']} (kept for inference, no training targets)"),
        ("split", f"{sp['train_events']} training events, {sp['train_positions']} training positions, "
                  f"{sp['valid_targets']} validation and {sp['test_targets']} test targets"),
        ("features", "none: embeddings will be learned" if r["no_features"] else len(r["features"])),
        ("catalogue fingerprint", r["fingerprint"]),
    ]
    for k, v in rows:
        t.add_row(k, str(v))
    con.print(t)
    if r["features"]:
        f = Table(title="Item features (original units)")
        for col in ("feature", "min", "mean", "max", "missing"):
            f.add_column(col, justify="left" if col == "feature" else "right")
        for row in r["features"]:
            f.add_row(row["name"], _num(row["min"]), _num(row["mean"]), _num(row["max"]),
                      f"[red]{row['missing']}[/]" if row["missing"] else "0")
        con.print(f)
        if any(row["missing"] for row in r["features"]):
            con.print("[yellow]warning:[/] missing or infinite feature values were replaced by the mean here; "
                      "training refuses such data: fill or drop them first")
