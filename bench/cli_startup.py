"""Measure how fast the CLI starts: ``whatnext --help`` as a whole process, and the module import.

Usage: ``python bench/cli_startup.py [--runs 7]``

Each command runs once as a warm-up (file cache), then ``--runs`` times; the median wall
time of the whole process is reported (interpreter start included). It also checks, in a
fresh interpreter, that importing ``whatnext.cli`` does not import torch (nor pandas or
numpy, which only data commands need), and lists the slowest imports (``-X importtime``).
Target: ``whatnext --help`` under 0.5 s.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time


def timed(cmd: list[str], runs: int) -> list[float]:
    subprocess.run(cmd, capture_output=True, check=True)  # warm-up
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run(cmd, capture_output=True, check=True)
        out.append(time.perf_counter() - t)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=7)
    args = ap.parse_args()
    exe = shutil.which("whatnext")
    cases = [
        ("python -c pass (interpreter floor)", [sys.executable, "-c", "pass"]),
        ("python -c 'import whatnext.cli'", [sys.executable, "-c", "import whatnext.cli"]),
        ("python -m whatnext --help", [sys.executable, "-m", "whatnext", "--help"]),
    ]
    if exe:
        cases.insert(2, ("whatnext --help", [exe, "--help"]))
    else:
        print("note: no 'whatnext' console script on PATH (pip install -e .); timing 'python -m whatnext' only")
    head = f"{'command':<40}{'median s':>10}{'min s':>8}{'max s':>8}"
    print(f"{args.runs} runs after one warm-up, whole process wall time")
    print(head)
    print("-" * len(head))
    result = {}
    for label, cmd in cases:
        t = timed(cmd, args.runs)
        result[label] = statistics.median(t)
        print(f"{label:<40}{statistics.median(t):>10.3f}{min(t):>8.3f}{max(t):>8.3f}")

    probe = ("import sys, whatnext.cli; "
             "print(' '.join(m for m in ('torch', 'pandas', 'numpy', 'rich') if m in sys.modules))")
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.split()
    print(f"\nheavy modules imported by 'import whatnext.cli': {', '.join(loaded) or 'none'}")
    print(f"torch imported by the CLI module: {'YES (bad)' if 'torch' in loaded else 'no'}")

    trace = subprocess.run([sys.executable, "-X", "importtime", "-c", "import whatnext.cli"],
                           capture_output=True, text=True, check=True).stderr
    rows = []
    for line in trace.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _self_us, cum_us, name = line[len("import time:"):].split("|")
        depth = (len(name) - len(name.lstrip())) // 2  # importtime indents nested imports by 2 spaces
        if depth <= 1:
            rows.append((int(cum_us), "  " * depth + name.strip()))
    print("slowest imports of 'import whatnext.cli', top two levels (cumulative ms):")
    for cum, name in sorted(rows, reverse=True)[:8]:
        print(f"  {cum / 1000:8.1f}  {name}")

    key = "whatnext --help" if exe else "python -m whatnext --help"
    print(f"\ntarget {key} < 0.5 s: {'met' if result[key] < 0.5 else 'NOT met'} (median {result[key]:.3f} s)")


if __name__ == "__main__":
    main()
