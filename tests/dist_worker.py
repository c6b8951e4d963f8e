"""One process of a distributed test job (run by torchrun from tests/test_distributed.py).

``python dist_worker.py CONFIG OUT [KEY=VALUE ...]`` trains like ``whatnext train --config CONFIG`` (the
overrides as ``--set``) and records, per rank, in OUT:

- ``rank{R}.pt``: the trained actor's and critic's state_dicts (captured from the Agent the loop built);
- ``writes{R}.txt``: every file the process wrote, renamed or deleted in the run folder (one path a line),
  through the checkpoint module's atomic writes, its deletions, the lock and the metrics log;
- ``summary{R}.json``: what train() returned, how the sparse gradients travelled (``sparse_allreduce``), and
  the names of the process's threads once train() has returned (``threads``: gloo's must be gone by then).
"""

from __future__ import annotations

import json
import os
import sys
import tomllib
from pathlib import Path

import torch

from whatnext import checkpoints, engine
from whatnext.rl import agent as agent_mod
from whatnext.rl import callbacks

config, out = Path(sys.argv[1]), Path(sys.argv[2])
overrides = {}
for item in sys.argv[3:]:
    key, value = item.split("=", 1)
    overrides[key] = tomllib.loads(f"v = {value}")["v"]
rank = int(os.environ.get("RANK", "0"))
writes: list[str] = []
agents: list[agent_mod.Agent] = []

_write, _unlink = checkpoints._fsync_write, checkpoints._unlink
checkpoints._fsync_write = lambda path, data: (writes.append(str(path)), _write(path, data))[1]
checkpoints._unlink = lambda p, run_dir: (writes.append(f"unlink {p}"), _unlink(p, run_dir))[1]
_enter = checkpoints.RunLock.__enter__
checkpoints.RunLock.__enter__ = lambda self: (writes.append(f"lock {self.path}"), _enter(self))[1]
_jsonl = callbacks.JsonlWriter.__init__
callbacks.JsonlWriter.__init__ = lambda self, path, **kw: (writes.append(str(path)), _jsonl(self, path, **kw))[1]
_wake = agent_mod.Agent.wake
agent_mod.Agent.wake = lambda self: (agents.append(self), _wake(self))[1]

summary = engine.train(config, overrides, force=True)
threads = []
for task in os.listdir("/proc/self/task"):  # Linux: one entry per thread, its name in comm
    try:
        threads.append((Path("/proc/self/task") / task / "comm").read_text().strip())
    except OSError:
        pass  # a thread that ended meanwhile
out.mkdir(parents=True, exist_ok=True)
a = agents[-1]
heads = a.offpolicy.heads.state_dict() if a.offpolicy is not None else {}  # sqn/sac/reinforce's extra heads
torch.save({"actor": a.actor.state_dict(), "critic": a.critic.state_dict(), "heads": heads}, out / f"rank{rank}.pt")
(out / f"writes{rank}.txt").write_text("".join(w + "\n" for w in writes))
(out / f"summary{rank}.json").write_text(json.dumps({**summary, "sparse_allreduce": a.replica.sparse_allreduce, "threads": threads},
                                                   default=str))
