"""Rich rendering of engine results for people (the CLI's side; the engine never prints).

Tables are designed for the terminal they are printed on, 80 columns included: a number is
never cut. Result tables choose their columns by priority (rank, item, score first; text
columns fold; attribute columns are dropped, and named below the table, when they do not fit)
or, for evaluation, split into several tables that each repeat the model column. ``wide``
prints every column whatever the width; ``columns`` chooses them.
"""

from __future__ import annotations

import shlex
import time
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.table import Table

from whatnext.errors import ConfigError
from whatnext.rl.callbacks import Callback

# a rich table with a box and one space of padding each side: 3 characters a column plus the last border
_EDGE = 1
_PER_COLUMN = 3


def _num(x: Any, digits: int = 4) -> str:
    if isinstance(x, float):
        return f"{x:.{digits}g}"
    return str(x)


def as_written(x: Any) -> str:
    """A data value as the data wrote it: 120 not 120.0, 90.4 not 9.04e+01, text unchanged."""
    if isinstance(x, float):
        return str(int(x)) if x.is_integer() and abs(x) < 1e15 else repr(x)
    return str(x)


@dataclass
class _Col:
    """One column of a fitted table: its cells are already text."""

    name: str
    cells: list[str]
    numeric: bool = True
    header: str = ""
    min_text: int = 8  # a text column folds down to this width
    style: str | None = None
    width: int = field(init=False)

    def __post_init__(self) -> None:
        self.header = self.header or self.name
        self.width = max([len(self.header), *(len(c) for c in self.cells)])

    @property
    def least(self) -> int:
        """The narrowest this column may be: numbers and short text never fold."""
        return self.width if self.numeric else min(self.width, max(self.min_text, len(self.header)))

    @property
    def comfortable(self) -> int:
        """The width other columns leave it when they can: text up to 24 characters unfolded."""
        return self.width if self.numeric else max(self.least, min(self.width, 24))


def _table_width(widths: list[int]) -> int:
    return sum(widths) + _PER_COLUMN * len(widths) + _EDGE


def _fit(cols: list[_Col], width: int) -> tuple[list[_Col], list[_Col]]:
    """The columns (kept in order of priority) that fit ``width``, and those dropped.

    The first column always stays; a later one joins when the table still fits with the text
    columns kept so far unfolded (up to 24 characters), or, for a text column itself, when it
    fits folded to its least width: later columns give way before text folds.
    """
    kept: list[_Col] = []
    dropped: list[_Col] = []
    for i, c in enumerate(cols):
        roomy = _table_width([x.comfortable for x in [*kept, c]]) <= width
        folded = not c.numeric and _table_width([x.least for x in [*kept, c]]) <= width
        if i == 0 or roomy or folded:
            kept.append(c)
        else:
            dropped.append(c)
    return kept, dropped


def _build(title: str | None, cols: list[_Col], rows: int, caption: str | None = None) -> Table:
    t = Table(title=title, caption=caption)
    for c in cols:
        if c.numeric:
            t.add_column(c.header, justify="right", no_wrap=True, min_width=c.width, style=c.style)
        else:
            t.add_column(c.header, justify="left", overflow="fold", min_width=c.least, style=c.style)
    for r in range(rows):
        t.add_row(*[c.cells[r] for c in cols])
    return t


def _choose(cols: list[_Col], columns: list[str] | None) -> list[_Col]:
    if not columns:
        return cols
    by_name = {c.name: c for c in cols}
    unknown = [c for c in columns if c not in by_name]
    if unknown:
        raise ConfigError(f"--columns: unknown column {unknown[0]!r}; expected some of {', '.join(by_name)}")
    return [by_name[c] for c in columns]


def _print_wide(con: Console, table: Table, cols: list[_Col]) -> None:
    """Print at the table's natural width, however narrow the terminal (--wide)."""
    old = con.width
    con.width = max(old, _table_width([c.width for c in cols]))
    try:
        con.print(table)
    finally:
        con.width = old


def render_inspect(con: Console, r: dict[str, Any]) -> None:
    """The inspect-data report as a few tables."""
    t = Table(title=f"Data: {r['source']}", show_header=False)
    t.add_column("what", style="bold", no_wrap=True)
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
        ("split", (f"{sp['train_events']} training events, {sp['train_positions']} training positions (events "
                   f"with an earlier one: each a target once an epoch), {sp['valid_targets']} validation and "
                   f"{sp['test_targets']} test targets")),
        ("features", "none: embeddings will be learned" if r["no_features"] else len(r["features"])),
        *([("logged rewards", _rewards_line(r["rewards"]))] if r.get("rewards") else []),
        ("catalogue fingerprint", r["fingerprint"]),
    ]
    for k, v in rows:
        t.add_row(k, str(v))
    con.print(t)
    if r["features"]:
        f = Table(title="Item features (original units)")
        for col in ("feature", "min", "mean", "max", "missing"):
            f.add_column(col, justify="left" if col == "feature" else "right", no_wrap=col != "feature")
        for row in r["features"]:
            f.add_row(row["name"], _num(row["min"]), _num(row["mean"]), _num(row["max"]),
                      f"[red]{row['missing']}[/]" if row["missing"] else "0")
        con.print(f)
        if any(row["missing"] for row in r["features"]):
            con.print("[yellow]warning:[/] missing or infinite feature values were replaced by the mean here; "
                      "training refuses such data: fill or drop them first")
    _inspect_notes(con, r)


def _rewards_line(rw: dict[str, Any]) -> str:
    """The reward column in one line: column, transform, mean, share positive, distinct values."""
    from rich.markup import escape

    how = {"none": "", "center": ", centered", "standardize": ", standardized"}.get(rw["transform"], f", {rw['transform']}")
    values = ", ".join(f"{v}: {n}" for v, n in rw["values"].items())
    more = f" (the {len(rw['values'])} most common)" if rw["distinct"] > len(rw["values"]) else ""
    return (f"column {escape(rw['column'])}{how}: {rw['count']} values, mean {_num(rw['mean'])}, "
            f"{rw['positive_share']:.1%} positive, {rw['distinct']} distinct; {values}{more}")


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
    t.add_column("value", overflow="fold")
    for k, v in mapping.items():
        if isinstance(v, dict):
            v = ", ".join(f"{a}={_num(b)}" for a, b in v.items())
        t.add_row(str(k), _num(v))
    con.print(t)


def render_recommendations(con: Console, r: dict[str, Any], wide: bool = False,
                           columns: list[str] | None = None) -> None:
    """Recommendations: rank, item, title/artist, score, distance, attributes in the data's units.

    At the terminal's width: rank, item and score always; title and artist fold; distance and the
    attributes join while they fit, and those left out are named under the table.
    """
    _warnings(con, r.get("warnings", []))
    if "output" in r:
        con.print(f"wrote top-{r['k']} for {r['users']} users ({r['rows']} rows) to {r['output']}")
        return
    who = f"user {r['user']}" if r["user"] is not None else "the given history"
    title = (f"Top {r['k']} for {who} (history {r['history_length']} items; "
             f"{'played items allowed' if r['include_seen'] else 'played items excluded'}"
             f"{'; diversity ' + format(r['diversity'], 'g') if r.get('diversity') else ''})")
    recs = r["recommendations"]
    display = [c for c in ("title", "artist") if recs and c in recs[0]]
    attrs = list(recs[0]["attributes"]) if recs else []
    cols = [
        _Col("rank", [str(x["rank"]) for x in recs]),
        _Col("item", [str(x["item_id"]) for x in recs], numeric=False, min_text=6),
        *[_Col(c, [str(x[c]) for x in recs], numeric=False) for c in display],
        _Col("score", [f"{x['score']:.3f}" for x in recs]),
        _Col("distance", [f"{x['distance']:.3f}" for x in recs]),
        *[_Col(a, [as_written(x["attributes"][a]) for x in recs]) for a in attrs],
    ]
    # priority: rank, item, score, then title/artist, distance, attributes (table order stays as above)
    order = ["rank", "item", "score", *display, "distance", *attrs]
    chosen = _choose(cols, columns)
    dropped: list[_Col] = []
    if columns or wide:
        kept = chosen
    else:
        by = {c.name: c for c in cols}
        kept_set, dropped = _fit([by[n] for n in order], con.width)
        kept = [c for c in cols if c in kept_set]
    table = _build(title, kept, len(recs))
    if wide:
        _print_wide(con, table, kept)
    else:
        con.print(table)
    if dropped:
        con.print(f"[dim]not shown at {con.width} columns: {', '.join(c.name for c in dropped)} "
                  f"(--wide shows every column, --columns chooses)[/]")
    ranked = "score (higher first)" if r.get("ranked_by", "score") == "score" else \
        "score and diversity (the order trades score for variety)"
    con.print(f"[dim]ranked by {ranked} · recent history: {', '.join(r['history'])} · checkpoint {r['checkpoint']}[/]")


def render_checkpoints(con: Console, r: dict[str, Any]) -> None:
    """Runs and checkpoints."""
    import datetime as dt

    if not r["runs"]:
        con.print(f"no runs in {r['models_dir']}; train one with 'whatnext train'")
    for run in r["runs"]:
        kind = f" · the {run['baseline']} baseline" if run.get("kind") == "baseline" else ""
        t = Table(title=f"Run {run['run']}{kind} ({run['path']})")
        for col in ("step", "saved", "valid ndcg@10", "valid hr@10", "size", "marker"):
            t.add_column(col, no_wrap=col != "marker")
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


def render_eval(con: Console, r: dict[str, Any], wide: bool = False, columns: list[str] | None = None) -> None:
    """One row per model, one column per metric; at a narrow width several tables, each with the model column."""
    rows = r["rows"]
    skip = ("eval/model", "eval/split", "eval/include_seen", "eval/users")
    keys = [k for k in rows[0] if k.startswith("eval/") and k not in skip]
    div = f", agent's diversity {r['diversity']:g}" if r.get("diversity") else ""
    title = (f"{r['split']} split, {r['users']} users, full ranking, played items "
             f"{'kept' if r['include_seen'] else 'excluded'}{div}")
    model = _Col("model", [str(row["eval/model"]) for row in rows], numeric=False, style="bold")
    model.min_text = model.width  # model names never fold
    metrics = [_Col(k.removeprefix("eval/"), [f"{row.get(k, float('nan')):.4f}" for row in rows]) for k in keys]
    metrics = _choose(metrics, columns)
    if wide:
        _print_wide(con, _build(title, [model, *metrics], len(rows)), [model, *metrics])
    else:
        groups: list[list[_Col]] = []
        rest = metrics
        while rest:
            kept, rest = _fit([model, *rest], con.width)
            groups.append(kept[1:] or [rest.pop(0)])  # a metric too wide alone still gets its table
        for i, group in enumerate(groups or [[]]):
            con.print(_build(title if i == 0 else None, [model, *group], len(rows)))
    con.print(f"[dim]checkpoint {r['checkpoint']}[/]")
    off_policy_note(con, r.get("off_policy"))
    baselines_note(con, r.get("baselines"))


def off_policy_note(con: Console, o: dict[str, Any] | None) -> None:
    """One dim line under the eval table: what the reward columns mean and how they were estimated."""
    if not o:
        return
    from rich.markup import escape

    con.print(f"[dim]logged rewards of {escape(o['reward_col'])}: reward@K = hits weighted by their reward; "
              f"ndcg_pos@K = NDCG@K over positively rewarded plays; reward_ips/snips/dr@K = the mean reward of a "
              f"song from the top-K estimated off-policy ({escape(o['behaviour_policy'])} as the behaviour policy, "
              f"weights clipped at {o['clip']:g}); ess@K = effective sample size of those weights[/]")


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


class TrainProgress(Callback):
    """The CLI's training callback: a rich progress bar (or plain lines), Ctrl-C -> stop and save.

    The bar shows, at any width, the bar, step/total, elapsed time, ETA and samples/s; the epoch
    and the losses follow and are cut first when the line is too long.
    """

    def __init__(self, con: Console, plain: bool, interrupt: Any = None, config: Any = None) -> None:
        self.con, self.plain, self.interrupt, self.config = con, plain, interrupt, config
        self.progress: Any = None
        self.task: Any = None
        self.total = 0
        self.start = 0
        self.every = 1
        self.t0 = 0.0
        self.batch = 0

    def on_start(self, info: dict[str, Any]) -> None:
        for w in info.get("warnings", []):
            self.con.print(f"[yellow]warning:[/] {w}")
        self.total, self.start = info["total_steps"], info["start_step"]
        self.every = max(1, self.total // 20)
        self.t0 = time.monotonic()
        what = ("training positions" if info.get("algorithm") == "original"
                else "training windows (every training position once)")
        msg = (f"training {info['algorithm']} in {info['run_dir']}: steps {info['start_step']}..{self.total} "
               f"({info['steps_per_epoch']} an epoch over {info['positions']} {what}"
               + (f"; {info['processes']} processes, {info['global_batch']} a step" if info.get("processes", 1) > 1 else "")
               + ")")
        if self.interrupt is not None and hasattr(self.interrupt, "arm"):
            self.interrupt.arm()
        self.con.print(msg)
        if self.plain:
            return
        self.progress = make_progress(self.con)
        self.task = self.progress.add_task("train", total=self.total, completed=info["start_step"], rate="", stats="",
                                          eta="-:--:--")
        self.progress.start()

    @staticmethod
    def _stats(m: dict[str, float], room: int | None = None) -> str:
        """Epoch and losses, whole fields only: those that do not fit in ``room`` characters are left out."""
        parts = [f"epoch {m.get('train/epoch', 0.0):.2f}"]
        for key, label in (("train/actor_loss", "actor"), ("train/critic_loss", "critic"), ("train/ce_loss", "ce"),
                           ("train/reward", "reward")):
            if key in m:
                parts.append(f"{label} {m[key]:.4g}")
        out = ""
        for part in parts:
            joined = f"{out} · {part}" if out else part
            if room is not None and len(joined) > room:
                break
            out = joined
        return out

    def _eta(self, step: int) -> str:
        done = step - self.start
        if done <= 0:
            return "-:--:--"
        left = int((time.monotonic() - self.t0) / done * (self.total - step))
        return f"{left // 3600}:{left // 60 % 60:02d}:{left % 60:02d}"

    def on_step(self, step: int, metrics: dict[str, float]) -> bool:
        rate = f"{metrics['train/samples_per_s']:.0f} samples/s" if "train/samples_per_s" in metrics else ""
        if self.progress is not None:
            n = len(str(self.total))
            used = self.progress.bar_width + 2 * n + 1 + 7 + 4 + len(self._eta(step)) + len(rate) + 5  # the fixed columns and gaps
            self.progress.update(self.task, completed=step, rate=rate, eta=self._eta(step),
                                 stats=self._stats(metrics, self.con.width - used))
        elif step % self.every == 0 or step == self.total:
            e = int(time.monotonic() - self.t0)
            elapsed = f"{e // 3600}:{e // 60 % 60:02d}:{e % 60:02d}"
            self.con.print(f"step {step}/{self.total} elapsed {elapsed} ETA {self._eta(step)} {rate} "
                           f"{self._stats(metrics)}")
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
        """The end-of-training table and the next step (naming the run)."""
        m = s.get("metrics", {})
        rows = {
            "status": s["status"], "steps": f"{s['steps']} of {s.get('total_steps', '?')} (from {s['start_step']})",
            "seconds": f"{s['seconds']:.1f}", "checkpoint": s["checkpoint"], "best valid ndcg@10": s.get("best_metric"),
        }
        rows.update({k: v for k, v in m.items() if k.startswith("train/") and k != "train/epoch"})
        render_mapping(self.con, "Training summary", rows)
        if s["status"] == "interrupted":
            return  # the error line says how to resume, naming the same run
        config = self.config if self.config is not None else s.get("config")
        run = s["run_dir"].replace("\\", "/").rstrip("/").rsplit("/", 1)[-1] if s.get("run_dir") else None
        self.con.print("next: whatnext recommend --user ID" + (f" --config {shlex.quote(str(config))}" if config else "")
                       + (f" --run {shlex.quote(run)}" if run else ""))


def make_progress(con: Console) -> Any:
    """The training bar: bar, step/total, elapsed, ETA, samples/s always; epoch and losses in what is left."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Column

    fixed = 9 + 1 + 7 + 1 + 11 + 1 + 16 + 1  # step/total, elapsed, ETA, samples/s and the gaps between
    bar = max(8, min(40, con.width - fixed - 24))
    progress = Progress(
        BarColumn(bar_width=bar),
        MofNCompleteColumn(table_column=Column(no_wrap=True)),
        TimeElapsedColumn(table_column=Column(no_wrap=True)),
        TextColumn("ETA {task.fields[eta]}", table_column=Column(no_wrap=True)),
        TextColumn("{task.fields[rate]}", table_column=Column(no_wrap=True)),
        TextColumn("{task.fields[stats]}", table_column=Column(no_wrap=True, overflow="crop", ratio=1, min_width=0)),
        console=con, expand=True,
    )
    progress.bar_width = bar  # type: ignore[attr-defined]
    return progress
