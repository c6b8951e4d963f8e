"""Hostile checkpoint files: crafted sidecars, markers, checkpoint files and locks, built into a run folder.

Each case of :data:`CASES` takes a run folder that holds real checkpoints (``ckpt-00000006.pt`` and
``ckpt-00000012.pt`` with their sidecars and markers, as a tiny training writes them) and a victim
file outside it, and plants one kind of hostile file: a sidecar or marker naming a path outside the run
(relative, absolute, through a symbolic link), a FIFO, a link to ``/dev/zero``, a huge sparse file, JSON
of the wrong shape or types, NaN and 1e300 times, duplicate steps, names that do not match, a lock
held by a reused PID. ``tests/test_hostile_checkpoint_files.py`` runs the CLI against every case.

Run it by hand to look at the files: ``python tests/hostile/make_checkpoint_files.py OUT`` builds every
case in ``OUT/<case>/run`` around a stub checkpoint, with the victim in ``OUT/<case>/victim/secret.txt``.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import sys
from collections.abc import Callable
from pathlib import Path

Case = Callable[[Path, Path], None]
CASES: dict[str, Case] = {}

#: what each case should leave a reader with: "sidecar" and "marker" cases are reported by
#: 'checkpoints list' as skipped; "best" cases make recommend fall back with a warning;
#: "unverified" cases leave no checkpoint with a verified sidecar; "unwritable" cases block training from
#: writing a marker (exit 7, nothing of the user's deleted to make room); "metrics" cases make train --resume
#: refuse its metrics log (exit 7)
KIND: dict[str, set[str]] = {}


def case(*kinds: str) -> Callable[[Case], Case]:
    def register(fn: Case) -> Case:
        name = fn.__name__.removeprefix("_").replace("_", "-")
        CASES[name] = fn
        KIND[name] = set(kinds)
        return fn

    return register


def sidecar_for(data: bytes, at: int, /, **fields: object) -> str:
    """A sidecar of step ``at`` whose checksum matches ``data``, with ``fields`` changed."""
    meta = {"file": f"ckpt-{at:08d}.pt", "size": len(data), "sha256": hashlib.sha256(data).hexdigest(),
            "step": at, "time": 1.7e9, "metrics": {"eval/ndcg@10": 0.9}, "format_version": 1, **fields}
    return json.dumps(meta)


def _victim_sidecar(run: Path, victim: Path, file: str) -> str:
    """A sidecar for step 30 (newer than any real one) that names ``file`` and carries the victim's checksum."""
    return sidecar_for(victim.read_bytes(), 30, file=file)


# ---------------------------------------------------------------- sidecars


@case("sidecar")
def _sidecar_traversal(run: Path, victim: Path) -> None:
    """The attack of issue #11: prune (and train's automatic pruning) deleted the file a sidecar names."""
    rel = os.path.relpath(victim, run)
    (run / "ckpt-00000030.json").write_text(_victim_sidecar(run, victim, rel))
    (run / "ckpt-00000031.json").write_text(sidecar_for(victim.read_bytes(), 31, file="../../victim/secret.txt"))


@case("sidecar")
def _sidecar_absolute(run: Path, victim: Path) -> None:
    (run / "ckpt-00000030.json").write_text(_victim_sidecar(run, victim, str(victim.resolve())))


@case("sidecar")
def _sidecar_symlink_out(run: Path, victim: Path) -> None:
    outside = victim.with_name("ckpt-00000030.json")
    outside.write_text(sidecar_for(b"x", 30))
    (run / "ckpt-00000030.pt").write_bytes(b"x")
    (run / "ckpt-00000030.json").symlink_to(outside)


@case("sidecar")
def _sidecar_fifo(run: Path, victim: Path) -> None:
    os.mkfifo(run / "ckpt-00000030.json")  # opening it for reading would wait for a writer forever


@case("sidecar")
def _sidecar_dev_zero(run: Path, victim: Path) -> None:
    (run / "ckpt-00000030.json").symlink_to("/dev/zero")  # endless bytes


@case("sidecar")
def _sidecar_huge(run: Path, victim: Path) -> None:
    with open(run / "ckpt-00000030.json", "wb") as fh:  # 2 GB, sparse: no disk used
        fh.truncate(2 * 1024**3)


@case("sidecar")
def _sidecar_list(run: Path, victim: Path) -> None:
    (run / "ckpt-00000030.json").write_text("[1, 2, 3]")


@case("sidecar")
def _sidecar_deep_json(run: Path, victim: Path) -> None:
    (run / "ckpt-00000030.json").write_text("[" * 60_000)  # past the JSON parser's recursion limit


@case("sidecar")
def _sidecar_wrong_types(run: Path, victim: Path) -> None:
    data = (run / "ckpt-00000012.pt").read_bytes()
    (run / "ckpt-00000030.pt").write_bytes(data)
    for step, fields in ((30, {"step": "30"}), (31, {"size": -1}), (32, {"sha256": 123}), (33, {"metrics": [1]}),
                         (34, {"time": "yesterday"}), (35, {"step": True}), (36, {"size": 10**400}),
                         (37, {"metrics": {"eval/ndcg@10": 10**400}})):
        (run / f"ckpt-{step:08d}.json").write_text(sidecar_for(data, step, **fields))


@case("sidecar")
def _sidecar_nan_time(run: Path, victim: Path) -> None:
    data = (run / "ckpt-00000012.pt").read_bytes()
    (run / "ckpt-00000030.pt").write_bytes(data)
    (run / "ckpt-00000030.json").write_text(sidecar_for(data, 30, time=float("nan")))  # json writes NaN


@case("sidecar")
def _sidecar_huge_time(run: Path, victim: Path) -> None:
    data = (run / "ckpt-00000012.pt").read_bytes()
    (run / "ckpt-00000030.pt").write_bytes(data)
    (run / "ckpt-00000030.json").write_text(sidecar_for(data, 30, time=1e300))  # rendering it overflowed


@case("sidecar")
def _sidecar_duplicate_steps(run: Path, victim: Path) -> None:
    """Step 12 under three names: only the canonical 8-digit one counts."""
    data = (run / "ckpt-00000012.pt").read_bytes()
    for name in ("ckpt-0000012", "ckpt-000000012", "ckpt-12"):
        (run / f"{name}.pt").write_bytes(data)
        (run / f"{name}.json").write_text(sidecar_for(data, 12, file=f"{name}.pt"))


@case("sidecar")
def _sidecar_name_mismatch(run: Path, victim: Path) -> None:
    data = (run / "ckpt-00000012.pt").read_bytes()
    (run / "ckpt-00000030.pt").write_bytes(data)
    (run / "ckpt-00000030.json").write_text(sidecar_for(data, 12))  # says step 12 and ckpt-00000012.pt
    (run / "ckpt-00000031.pt").write_bytes(data)
    (run / "ckpt-00000031.json").write_text(sidecar_for(data, 31, file="ckpt-00000006.pt"))


@case("sidecar")
def _checkpoint_symlink_out(run: Path, victim: Path) -> None:
    """A checkpoint file that is a link to the victim, with a sidecar matching the victim's bytes."""
    (run / "ckpt-00000030.pt").symlink_to(victim)
    (run / "ckpt-00000030.json").write_text(sidecar_for(victim.read_bytes(), 30))


@case("sidecar")
def _checkpoint_dev_zero(run: Path, victim: Path) -> None:
    (run / "ckpt-00000030.pt").symlink_to("/dev/zero")
    (run / "ckpt-00000030.json").write_text(sidecar_for(b"", 30, size=10**12))


# ---------------------------------------------------------------- markers


@case("marker", "best")
def _marker_traversal(run: Path, victim: Path) -> None:
    (run / "best").write_text("../../../../etc/passwd\n")
    (run / "latest").write_text(os.path.relpath(victim, run) + "\n")


@case("marker", "best")
def _marker_absolute(run: Path, victim: Path) -> None:
    (run / "best").write_text(str(victim.resolve()) + "\n")
    (run / "latest").write_text("/etc/passwd\n")


@case("marker", "best")
def _marker_symlink_out(run: Path, victim: Path) -> None:
    (run / "best").unlink()
    (run / "best").symlink_to(victim)


@case("marker", "best")
def _marker_fifo(run: Path, victim: Path) -> None:
    (run / "best").unlink()
    os.mkfifo(run / "best")


@case("marker", "best")
def _marker_dev_zero(run: Path, victim: Path) -> None:
    (run / "best").unlink()
    (run / "best").symlink_to("/dev/zero")
    (run / "latest").unlink()
    (run / "latest").symlink_to("/dev/zero")


@case("marker", "best")
def _marker_huge(run: Path, victim: Path) -> None:
    with open(run / "best", "wb") as fh:
        fh.truncate(1024**3)


@case("marker", "best")
def _marker_binary(run: Path, victim: Path) -> None:
    (run / "best").write_bytes(b"\xff\xfe\x00ckpt-00000012.pt\n")


@case("marker", "best", "unwritable")
def _marker_folder(run: Path, victim: Path) -> None:
    (run / "best").unlink()
    (run / "best").mkdir()


@case("marker", "best")
def _marker_names_unverified(run: Path, victim: Path) -> None:
    """``best`` names a real-looking checkpoint whose sidecar is missing."""
    (run / "ckpt-00000030.pt").write_bytes((run / "ckpt-00000012.pt").read_bytes())
    (run / "best").write_text("ckpt-00000030.pt\n")


# ---------------------------------------------------------------- the run as a whole, the lock


@case("unverified")
def _no_sidecars(run: Path, victim: Path) -> None:
    """Every sidecar gone: the checkpoints are there, but none can be verified."""
    for p in run.glob("ckpt-*.json"):
        p.unlink()


@case()
def _lock_reused_pid(run: Path, victim: Path) -> None:
    """A lock whose PID is alive (this test's parent) but started at another time than recorded."""
    (run / ".lock").write_text(json.dumps({"pid": os.getppid(), "start": "1", "host": socket.gethostname()}))


@case()
def _lock_fifo(run: Path, victim: Path) -> None:
    os.mkfifo(run / ".lock")


@case()
def _lock_garbage(run: Path, victim: Path) -> None:
    (run / ".lock").write_bytes(b"\x00" * 100_000)


@case()
def _temporary_names_linked_out(run: Path, victim: Path) -> None:
    """Links to the victim under the temporary names the next checkpoints will be written to: writing through
    them would overwrite the victim."""
    for step in range(13, 40):
        for suffix in ("pt", "json"):
            (run / f".ckpt-{step:08d}.{suffix}.tmp").symlink_to(victim)
    for name in ("latest", "best", "metrics.jsonl"):
        (run / f".{name}.tmp").symlink_to(victim)
    os.mkfifo(run / ".ckpt-00000012.pt.tmp")


@case("metrics")
def _metrics_fifo(run: Path, victim: Path) -> None:
    """metrics.jsonl, which a resume reads and rewrites, as a FIFO."""
    (run / "metrics.jsonl").unlink(missing_ok=True)
    os.mkfifo(run / "metrics.jsonl")


@case("metrics")
def _metrics_symlink_out(run: Path, victim: Path) -> None:
    """metrics.jsonl as a link to the victim: a resume would rewrite the victim."""
    (run / "metrics.jsonl").unlink(missing_ok=True)
    (run / "metrics.jsonl").symlink_to(victim)


def main(argv: list[str]) -> int:
    """Build every case around a stub checkpoint in ``argv[0]/<case>/run`` (for looking at the files)."""
    if len(argv) != 1:
        print("usage: make_checkpoint_files.py OUT", file=sys.stderr)
        return 2
    out = Path(argv[0])
    for name, build in CASES.items():
        run, victim = out / name / "run", out / name / "victim" / "secret.txt"
        run.mkdir(parents=True)
        victim.parent.mkdir(parents=True)
        victim.write_text("do not delete\n")
        for step in (6, 12):
            data = f"stub checkpoint {step}".encode()
            (run / f"ckpt-{step:08d}.pt").write_bytes(data)
            (run / f"ckpt-{step:08d}.json").write_text(sidecar_for(data, step))
        (run / "best").write_text("ckpt-00000006.pt\n")
        (run / "latest").write_text("ckpt-00000012.pt\n")
        build(run, victim)
        print(out / name)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
