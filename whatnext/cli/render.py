"""Rich rendering of engine results for people (the CLI's side; the engine never prints)."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from whatnext.rl.callbacks import Callback


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
        ("time", f"{tm['first']} .. {tm['last']}" + (f" ({tm['span_days']} days)" if tm["span_days"] is not None else "")
                 + (f"; unix {tm['unit']}" if tm.get("unit") else "") + (f"; read as {tm['format']}" if tm.get("format") else "")),
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
    _inspect_notes(con, r)


def _inspect_notes(con: Console, r: dict[str, Any]) -> None:
    """Columns that are not item features (and why), and what the reader decided on its own."""
    from rich.markup import escape

    unused = r.get("unused_columns") or []
    if unused:
        u = Table(title="Columns not used as item features")
        u.add_column("column")
        u.add_column("why", overflow="fold")
        for row in unused:
            u.add_row(escape(str(row["column"])), escape(str(row["reason"])))
        con.print(u)
    for note in r.get("reading") or []:
        con.print(f"note: {escape(note)}", soft_wrap=True)
    if r.get("one_user"):
        con.print("note: no user column (data.user_col is empty): the whole log is one user's, user id 'me'")


def render_mapping(con: Console, title: str, mapping: dict[str, Any]) -> None:
    """A two-column table of a flat mapping."""
    t = Table(title=title, show_header=False)
    t.add_column("key", style="bold")
    t.add_column("value")
    for k, v in mapping.items():
        if isinstance(v, dict):
            v = ", ".join(f"{a}={_num(b)}" for a, b in v.items())
        t.add_row(str(k), _num(v))
    con.print(t)


def render_recommendations(con: Console, r: dict[str, Any]) -> None:
    """Recommendations: rank, item id, title/artist, distance, attributes in original units."""
    _warnings(con, r.get("warnings", []))
    if "output" in r:
        con.print(f"wrote top-{r['k']} for {r['users']} users ({r['rows']} rows) to {r['output']}")
        return
    who = f"user {r['user']}" if r["user"] is not None else "the given history"
    t = Table(title=f"Top {r['k']} for {who} (history {r['history_length']} items; "
                    f"{'played items allowed' if r['include_seen'] else 'played items excluded'}"
                    f"{'; diversity ' + format(r['diversity'], 'g') if r.get('diversity') else ''})")
    recs = r["recommendations"]
    display = [c for c in ("title", "artist") if recs and c in recs[0]]
    attrs = list(recs[0]["attributes"]) if recs else []
    for col in ["rank", "item", *display, "distance", *attrs]:
        t.add_column(col, justify="right" if col in ("rank", "distance") or col in attrs else "left")
    for row in recs:
        t.add_row(str(row["rank"]), row["item_id"], *[row[c] for c in display], f"{row['distance']:.3f}",
                  *[f"{row['attributes'][a]:.3g}" for a in attrs])
    con.print(t)
    con.print(f"[dim]recent history: {', '.join(r['history'])} · checkpoint {r['checkpoint']}[/]")


def render_checkpoints(con: Console, r: dict[str, Any]) -> None:
    """Runs and checkpoints."""
    import datetime as dt

    if not r["runs"]:
        con.print(f"no runs in {r['models_dir']}; train one with 'whatnext train'")
    for run in r["runs"]:
        kind = f" · the {run['baseline']} baseline" if run.get("kind") == "baseline" else ""
        t = Table(title=f"Run {run['run']}{kind} ({run['path']})")
        for col in ("step", "saved", "valid ndcg@10", "valid hr@10", "size", "marker"):
            t.add_column(col)
        for c in run["checkpoints"]:
            m = c["metrics"]
            marks = ", ".join(x for x in ("best", "latest") if c[x])
            t.add_row(str(c["step"]), dt.datetime.fromtimestamp(c["time"]).strftime("%Y-%m-%d %H:%M:%S"),
                      _num(m.get("eval/ndcg@10", "-")), _num(m.get("eval/hr@10", "-")),
                      f"{c['size'] / 1e6:.2f} MB", marks)
        con.print(t)
        _warnings(con, run.get("skipped", []))


def _warnings(con: Console, lines: list[str]) -> None:
    """Notes on files passed over (a refused marker, an unverified sidecar), one yellow line each."""
    from rich.markup import escape

    for w in lines:
        con.print(f"[yellow]warning:[/] {escape(w)}", soft_wrap=True)


class TrainProgress(Callback):
    """The CLI's training callback: a rich progress bar (or plain lines), Ctrl-C -> stop and save."""

    def __init__(self, con: Console, plain: bool, interrupt: Any = None) -> None:
        self.con, self.plain, self.interrupt = con, plain, interrupt
        self.progress: Any = None
        self.task: Any = None
        self.total = 0
        self.every = 1

    def on_start(self, info: dict[str, Any]) -> None:
        for w in info.get("warnings", []):
            self.con.print(f"[yellow]warning:[/] {w}")
        self.total = info["total_steps"]
        self.every = max(1, self.total // 20)
        msg = (f"training {info['algorithm']} in {info['run_dir']}: steps {info['start_step']}..{self.total} "
               f"({info['steps_per_epoch']} a epoch, {info['positions']} positions)")
        if self.plain:
            self.con.print(msg)
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.con.print(msg)
        self.progress = Progress(TextColumn("epoch {task.fields[epoch]:.2f}"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("{task.fields[stats]}"), TimeRemainingColumn(), console=self.con)
        self.task = self.progress.add_task("train", total=self.total, completed=info["start_step"], epoch=0.0, stats="")
        self.progress.start()

    def _stats(self, m: dict[str, float]) -> str:
        parts = []
        for key, label in (("train/actor_loss", "actor"), ("train/critic_loss", "critic"), ("train/ce_loss", "ce"),
                           ("train/reward", "reward"), ("train/samples_per_s", "samples/s")):
            if key in m:
                parts.append(f"{label} {m[key]:.4g}" if label != "samples/s" else f"{m[key]:.0f} samples/s")
        return " · ".join(parts)

    def on_step(self, step: int, metrics: dict[str, float]) -> bool:
        if self.progress is not None:
            self.progress.update(self.task, completed=step, epoch=metrics.get("train/epoch", 0.0), stats=self._stats(metrics))
        elif step % self.every == 0 or step == self.total:
            self.con.print(f"step {step}/{self.total} epoch {metrics.get('train/epoch', 0):.2f} {self._stats(metrics)}")
        return bool(self.interrupt is not None and self.interrupt.hit)

    def on_eval(self, step: int, metrics: dict[str, float]) -> None:
        text = ", ".join(f"{k.split('/')[-1]} {v:.4f}" for k, v in metrics.items() if "@10" in k)
        if self.progress is not None:
            self.progress.console.print(f"step {step}: validation {text}")
        else:
            self.con.print(f"step {step}: validation {text}")

    def on_checkpoint(self, step: int, path: Any) -> None:
        if self.plain:
            self.con.print(f"step {step}: checkpoint {path}")

    def on_end(self, summary: dict[str, Any]) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None

    def summary(self, s: dict[str, Any]) -> None:
        """The end-of-training table."""
        m = s.get("metrics", {})
        rows = {
            "status": s["status"], "steps": f"{s['steps']} (from {s['start_step']})", "seconds": f"{s['seconds']:.1f}",
            "checkpoint": s["checkpoint"], "best valid ndcg@10": s.get("best_metric"),
        }
        rows.update({k: v for k, v in m.items() if k.startswith("train/") and k != "train/epoch"})
        render_mapping(self.con, "Training summary", rows)
        self.con.print("next: whatnext recommend --user ID" + ("" if not s.get("config") else f" --config {s['config']}"))


def render_eval(con: Console, r: dict[str, Any]) -> None:
    """One row per model, one column per metric."""
    rows = r["rows"]
    keys = [k for k in rows[0] if k.startswith("eval/") and k not in ("eval/model", "eval/split", "eval/include_seen", "eval/users")]
    div = f", agent's diversity {r['diversity']:g}" if r.get("diversity") else ""
    t = Table(title=f"{r['split']} split, {r['users']} users, full ranking, played items "
                    f"{'kept' if r['include_seen'] else 'excluded'}{div} · {r['checkpoint']}")
    t.add_column("model", style="bold")
    for k in keys:
        t.add_column(k.removeprefix("eval/"), justify="right")
    for row in rows:
        t.add_row(str(row["eval/model"]), *[f"{row.get(k, float('nan')):.4f}" for k in keys])
    con.print(t)
    baselines_note(con, r.get("baselines"))


def baselines_note(con: Console, b: dict[str, Any] | None) -> None:
    """One dim line under the eval table: which baselines were loaded from their runs, trained or fitted, and in how long."""
    if not b:
        return
    runs = {x["name"]: x for x in b["runs"]}
    parts = [f"{n} loaded from {runs[n]['run']}" for n in b["loaded"]]
    parts += [f"{n} {runs[n]['status']} into {runs[n]['run']} in {runs[n]['seconds']:.1f} s ({runs[n]['reason']})"
              for n in b["trained"]]
    if b["fitted"]:
        parts.append(f"{', '.join(b['fitted'])} fitted")
    con.print(f"[dim]baselines: {'; '.join(parts)}; {b['seconds']:.1f} s in all[/]")
