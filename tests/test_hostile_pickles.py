"""The hostile-pickle corpus (tests/hostile/pickles, written by tests/hostile/make_pickles.py) through the CLI.

Every file goes to ``whatnext inspect-data`` in a child process with an address-space cap: it must end by
``exit(3)`` with one line naming the file, never by a signal, never with a traceback, and write nothing. A
positive control built the same way loads, so the refusals are about what each file attacks. A second test
loads every file in this process under ``tracemalloc``: what the loader allocates stays within a fixed
multiple of the file's size.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import tracemalloc
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from hostile_runner import Outcome, assert_clean_failure, run_limited, tree_snapshot

from whatnext.data.safepickle import load_dataframe
from whatnext.errors import DataError

HOSTILE = Path(__file__).resolve().parent / "hostile"
PICKLES = HOSTILE / "pickles"


def _maker():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("make_pickles", HOSTILE / "make_pickles.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


MAKER = _maker()
FILES = sorted(PICKLES.glob("*.pk"))

#: each attack the issue names, by the file that carries it
ISSUE_CLASSES = {
    "out-of-range block placement": "placement-past-the-columns",
    "dtype hiding an object field": "dtype-hiding-an-object-field",
    "Arrow array from empty buffers": "arrow-text-over-empty-buffers",
    "nested objects that overflow the C stack when freed": "slices-nested-300000-deep",
    "9-byte memo index": "memo-index-of-4-billion",
    "2 GB from a few bytes": "bytearray-of-2-gb",
    "BUILD on a class": "state-applied-to-a-class",
}


def test_the_corpus_is_what_the_script_writes_and_covers_the_issue() -> None:
    assert len(FILES) >= 20
    assert {p.stem for p in FILES} == set(MAKER.CASES)
    for p in FILES:
        assert p.read_bytes() == MAKER.CASES[p.stem](), f"{p.name} differs from make_pickles.py: rerun it"
    assert set(ISSUE_CLASSES.values()) <= set(MAKER.CASES)


def test_the_control_built_the_same_way_loads(tmp_path: Path) -> None:
    p = tmp_path / "clean.pk"
    p.write_bytes(MAKER.control())
    df = load_dataframe(p)
    assert list(df.columns) == ["user_id", "item_id", "timestamp"] and len(df) == 3


#: runs in one capped child: imports the CLI once, then forks one process per file, each running the real
#: ``whatnext inspect-data FILE`` entry point in the file's folder; reports exit code (or -signal) and stderr
FORK_EACH = """
import json, os, signal, sys
from whatnext.cli import main


def warm(folder, target):
    # the control, in this process: imports everything inspect-data needs before the forks
    saved = os.dup(1)
    os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
    os.chdir(folder)
    sys.argv = ["whatnext", "inspect-data", target]
    try:
        main()
    except SystemExit as e:
        return e.code
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)


out = [{"target": "control", "rc": warm(*json.loads(CONTROL)), "stderr": ""}]
for folder, target in json.loads(JOBS):
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        os.dup2(w, 2)
        os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
        os.chdir(folder)
        signal.alarm(60)
        sys.argv = ["whatnext", "inspect-data", target]
        code = 1
        try:
            main()
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else 1
        except BaseException:
            import traceback
            traceback.print_exc()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    os.close(w)
    with os.fdopen(r, "r", errors="replace") as fh:
        err = fh.read()
    _, status = os.waitpid(pid, 0)
    rc = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
    out.append({"target": target, "rc": rc, "stderr": err})
print(json.dumps(out))
"""


def _judge(path: Path, target: Path, out: Outcome, before: dict) -> str | None:
    """None when ``out`` is a clean refusal of ``target`` that wrote nothing, else what went wrong."""
    try:
        line = assert_clean_failure(out, {3})
        assert line.startswith(f"error: {target}: "), line
        assert any(s in line for s in ("not a readable pickle", "refused to load", "the pickle holds")), line
        assert "Parquet or CSV" in line or "expected a pandas DataFrame" in line, line
        assert tree_snapshot(target.parent) == before, "the command wrote files"
    except AssertionError as e:
        return f"{path.name}: {e}"
    return None


def _place(path: Path, root: Path) -> tuple[Path, dict]:
    """A copy of ``path`` as clean.pk alone in a folder of its own, and that folder's snapshot."""
    folder = root / path.stem
    folder.mkdir()
    target = folder / "clean.pk"
    shutil.copyfile(path, target)
    return target, tree_snapshot(folder)


def test_every_hostile_pickle_is_one_line_and_exit_3_in_a_capped_child(tmp_path: Path) -> None:
    placed = {p: _place(p, tmp_path) for p in FILES}
    control = tmp_path / "control"
    control.mkdir()
    (control / "clean.pk").write_bytes(MAKER.control())
    jobs = json.dumps([[str(t.parent), str(t)] for t, _ in placed.values()])
    setup = f"JOBS = {jobs!r}\nCONTROL = {json.dumps([str(control), str(control / 'clean.pk')])!r}\n"
    child = run_limited([], cwd=tmp_path, python=setup + FORK_EACH, timeout=300)
    assert child.returncode == 0, child.describe()
    results = {r["target"]: r for r in json.loads(child.stdout)}
    assert results.pop("control")["rc"] == 0, "the control did not load: the refusals prove nothing"
    assert len(results) == len(FILES)
    failures = []
    for p, (target, before) in placed.items():
        r = results[str(target)]
        failures.append(_judge(p, target, Outcome(r["rc"], "", r["stderr"]), before))
    assert not [f for f in failures if f], "\n".join(f for f in failures if f)


def test_the_issue_s_attacks_through_python_m_whatnext(tmp_path: Path) -> None:
    """The attacks the issue names, each in a fresh ``python -m whatnext`` (no forked parent), and a control."""
    control = tmp_path / "control"
    control.mkdir()
    (control / "clean.pk").write_bytes(MAKER.control())
    placed = {PICKLES / f"{n}.pk": _place(PICKLES / f"{n}.pk", tmp_path) for n in ISSUE_CLASSES.values()}
    with ThreadPoolExecutor(max_workers=2) as pool:  # children wait on imports: two at a time on two cores
        ok = pool.submit(run_limited, ["inspect-data", str(control / "clean.pk"), "--json"], control)
        outs = {p: pool.submit(run_limited, ["inspect-data", str(t)], t.parent) for p, (t, _) in placed.items()}
    assert ok.result().returncode == 0, ok.result().describe()
    failures = [_judge(p, t, outs[p].result(), before) for p, (t, before) in placed.items()]
    assert not [f for f in failures if f], "\n".join(f for f in failures if f)


#: the corpus files that kill a process which trusts them (found against the previous restricted unpickler)
CRASHERS = ["slices-nested-300000-deep", "placement-array-far-outside", "dtype-hiding-an-object-field",
            "arrow-text-over-empty-buffers"]

PLAIN_LOAD = """
import json, os, pickle, resource, sys
import pandas, pyarrow  # what the pickles name, imported once before the forks
resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
out = {}
for path in json.loads(FILES):
    pid = os.fork()
    if pid == 0:
        os.dup2(os.open(os.devnull, os.O_WRONLY), 2)
        with open(path, "rb") as fh:
            obj = pickle.loads(fh.read())  # the danger being demonstrated: a loader that trusts the file
        repr(obj)
        del obj
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    out[path] = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
print(json.dumps(out))
"""


def test_the_crashers_really_kill_a_trusting_loader(tmp_path: Path) -> None:
    """Positive control for the corpus: plain unpickling of these files dies by a signal, so the clean exit 3
    above guards a real danger (and a change to make_pickles.py that defuses them fails here)."""
    files = [str(PICKLES / f"{n}.pk") for n in CRASHERS]
    out = run_limited([], cwd=tmp_path, python=f"FILES = {json.dumps(files)!r}\n" + PLAIN_LOAD, timeout=120)
    assert out.returncode == 0, out.describe()
    ends = json.loads(out.stdout)
    assert all(rc < 0 for rc in ends.values()), ends


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_loading_allocates_within_a_multiple_of_the_file(path: Path) -> None:
    size = path.stat().st_size
    tracemalloc.start()
    try:
        with pytest.raises(DataError):
            load_dataframe(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # the reader's own objects (~100 bytes an opcode at most) plus the checked arrays (32x), plus pandas' small change
    assert peak < 200 * size + (8 << 20), f"{path.name}: {peak} bytes for a file of {size}"
