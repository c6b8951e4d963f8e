"""Training across processes with torch.distributed: gloo on CPU, nccl on CUDA.

A job is started by ``torchrun`` (or ``whatnext train --nproc N``, which runs torch's own
elastic launcher, :mod:`whatnext.rl.launch`); each process runs the ordinary training loop
with a :class:`Replica` that

- takes its share of every global batch: a step takes the next ``N x train.batch_size``
  positions of the seeded epoch order (``train.batch_scope = "process"``, the default; or
  ``train.batch_size`` under ``"global"``: :mod:`whatnext.rl.schedule`), split in ``world``
  contiguous parts (:func:`shard`), so the union over the ranks is exactly that stretch of
  the single-process epoch, and an epoch's union is the single-process epoch;
- averages the gradients before clipping and every optimiser step (:meth:`Replica.sync`),
  weighted by each rank's share of the global batch. This is what DistributedDataParallel
  does, done by hand: DDP hooks ``forward``, and the actor and critic are driven through
  named methods (``sequence``, ``logits``, ``encode``, ``score``); the item tables' sparse
  gradients (sampled softmax) are summed as sparse tensors, so no step becomes dense;
- averages the step's metrics and agrees with rank 0 on whether to stop, so every rank
  leaves the loop at the same step; rank 0 alone validates, saves, logs and reports.

Every collective fails after ``train.dist_timeout`` seconds (and at once when a peer's
connection drops) with :class:`PeerLost`; the launcher then reports the failing rank's own
error, not the others' lost contact.
"""

from __future__ import annotations

import io
import json
import os
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from typing import Any

import numpy as np
import torch

from whatnext.errors import ConfigError, TrainingError

#: set to 1: sum sparse gradients through all_gather under gloo too (nccl's path, testable on CPUs)
GATHER_SPARSE = "WHATNEXT_GATHER_SPARSE"
#: the first words of a PeerLost message: how the launcher tells lost contact from a root cause
LOST = "lost contact with the other training processes"


class PeerLost(TrainingError):
    """A collective failed or timed out: another process of the job died or hangs (exit code 7)."""


@dataclass(frozen=True)
class World:
    """Where this process stands in the job: its global rank, the number of processes."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        """Rank 0: the one that validates, writes and reports."""
        return self.rank == 0


def detect() -> World:
    """The world torchrun describes in this process's environment (RANK, WORLD_SIZE, LOCAL_RANK).

    The core reads these itself (not the CLI) because they are torch's launcher contract: a
    notebook or script started by torchrun that calls ``whatnext.train`` is distributed too.
    """
    env = os.environ
    try:
        size = int(env.get("WORLD_SIZE", "1"))
        rank = int(env.get("RANK", "0"))
        local = int(env.get("LOCAL_RANK", str(rank)))
    except ValueError:
        raise ConfigError(f"WORLD_SIZE/RANK/LOCAL_RANK are not integers ({env.get('WORLD_SIZE')!r}, "
                          f"{env.get('RANK')!r}); start the job with torchrun or whatnext train --nproc N") from None
    if size < 1 or not 0 <= rank < size:
        raise ConfigError(f"RANK {rank} is not within WORLD_SIZE {size}; start the job with torchrun")
    return World(rank, size, local)


def _by_row_shape(sparse: list[tuple[Any, torch.Tensor]]) -> list[list[tuple[Any, torch.Tensor]]]:
    """Sparse gradients grouped by the shape and type of their rows, in order of first appearance: each group can
    travel as one tensor (the tables' rows one after another)."""
    groups: dict[tuple[Any, ...], list[tuple[Any, torch.Tensor]]] = {}
    for p, part in sparse:
        groups.setdefault((tuple(part.shape[1:]), part.dtype, part.device), []).append((p, part))
    return list(groups.values())


def shard(batch: np.ndarray, world: World) -> tuple[np.ndarray, float]:
    """This rank's part of a global batch and its weight (its share of the batch's rows).

    ``np.array_split``: contiguous parts whose sizes differ by at most one, rank 0's first. A
    rank whose part is empty (a global batch smaller than the world) repeats the batch's first
    row with weight 0, so it still takes part in every collective but adds nothing.
    """
    part = np.array_split(batch, world.size)[world.rank]
    if len(part) == 0:
        return batch[:1], 0.0
    return part, len(part) / len(batch)


def rank_seed(seed: int, rank: int) -> int:
    """A step's torch seed on one rank: rank 0 keeps the single-process seed, the others derive their own
    (exploration noise and dropout are independent across ranks, reproducible per rank)."""
    return seed if rank == 0 else (seed * 1_000_003 + 7_919 * rank) % (2**63)


def backend_for(device: torch.device) -> str:
    """gloo for CPU training, nccl for CUDA."""
    return "nccl" if device.type == "cuda" else "gloo"


class Replica:
    """One process's part in a distributed run; :data:`SOLO` is the single-process stand-in."""

    def __init__(self, world: World, timeout_s: float = 600.0) -> None:
        self.world, self.timeout_s = world, timeout_s
        self.weight = 1.0  # this rank's share of the current global batch
        self.device = torch.device("cpu")  # where collectives' own tensors live (nccl: this rank's GPU)
        self.sparse_allreduce = True  # gloo sums sparse tensors itself; nccl cannot (gathered instead)

    @property
    def active(self) -> bool:
        """More than one process."""
        return self.world.size > 1

    @property
    def main(self) -> bool:
        """Rank 0 (or the only process)."""
        return self.world.main

    # -- batches and randomness --------------------------------------------------------

    def take(self, batch: np.ndarray) -> np.ndarray:
        """This rank's share of a global batch of positions (and remember its weight)."""
        if not self.active:
            return batch
        part, self.weight = shard(batch, self.world)
        return part

    def seed(self, seed: int) -> int:
        """This rank's torch seed for a step (the step's numpy generator, which draws the sampled
        softmax's negatives, is the same on every rank: the ranks share one set of negatives, so
        the item-table rows a step touches are what one process would touch)."""
        return rank_seed(seed, self.world.rank)

    # -- collectives -------------------------------------------------------------------

    def _run(self, what: str, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except RuntimeError as e:  # gloo/nccl: a peer's connection closed, or the timeout passed
            first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
            raise PeerLost(f"{LOST} during {what} ({first}); the failing process's own error says why") from None

    def sync(self, params: Iterable[torch.nn.Parameter]) -> None:
        """Average the gradients of ``params`` over the ranks, weighted by their shares of the batch.

        Dense gradients travel as one flat buffer; sparse ones (item tables under the sampled
        softmax) as coalesced sparse tensors, summed without densifying."""
        if not self.active:
            return
        import torch.distributed as dist

        grads = [(p, p.grad) for p in params if p.grad is not None]
        dense = [g for _, g in grads if not g.is_sparse]
        if dense:
            flat = torch.cat([g.reshape(-1) for g in dense]).mul_(self.weight)
            self._run("gradient averaging", lambda: dist.all_reduce(flat))
            at = 0
            for g in dense:
                g.copy_(flat[at : at + g.numel()].view_as(g))
                at += g.numel()
        sparse = [(p, g.coalesce() * self.weight) for p, g in grads if g.is_sparse]
        for group in _by_row_shape(sparse):  # the item tables of one width travel as one tensor
            rows = [int(p.shape[0]) for p, _ in group]
            start = [sum(rows[:j]) for j in range(len(rows) + 1)]
            # each part is coalesced (sorted, unique rows) and the parts sit in disjoint ascending ranges:
            # joined as they are, no sort is needed (is_coalesced), and the sum comes apart by slicing
            joined = torch.sparse_coo_tensor(
                torch.cat([part.indices()[0] + at for (_, part), at in zip(group, start, strict=False)])[None],
                torch.cat([part.values() for _, part in group]), (start[-1], *group[0][1].shape[1:]),
                is_coalesced=True)
            if self.sparse_allreduce:
                self._run("sparse gradient averaging", partial(dist.all_reduce, joined))
                total = joined.coalesce()
            else:
                total = self._run("sparse gradient averaging", partial(self._gathered_sum, joined))
            idx, val = total.indices()[0], total.values()
            cuts = torch.searchsorted(idx, torch.tensor(start, dtype=idx.dtype, device=idx.device)).tolist()
            for (p, part), at, a, b in zip(group, start, cuts, cuts[1:], strict=False):
                p.grad = torch.sparse_coo_tensor((idx[a:b] - at)[None], val[a:b], part.shape, is_coalesced=True)

    def _gathered_sum(self, part: torch.Tensor) -> torch.Tensor:
        """The sum over the ranks of a coalesced sparse (rows, ...) tensor through all_gather (what
        nccl offers): every rank concatenates the same parts in rank order, so every rank's sum is the same."""
        import torch.distributed as dist

        idx, val, dev = part.indices()[0], part.values(), part.device
        n = torch.tensor([idx.numel()], dtype=torch.int64, device=dev)
        sizes = [torch.zeros_like(n) for _ in range(self.world.size)]
        dist.all_gather(sizes, n)
        counts = [int(c.item()) for c in sizes]
        most = max(counts)
        pad_idx = torch.zeros(most, dtype=idx.dtype, device=dev)
        pad_val = torch.zeros((most, *val.shape[1:]), dtype=val.dtype, device=dev)
        pad_idx[: len(idx)], pad_val[: len(idx)] = idx, val
        all_idx = [torch.empty_like(pad_idx) for _ in counts]
        all_val = [torch.empty_like(pad_val) for _ in counts]
        dist.all_gather(all_idx, pad_idx)
        dist.all_gather(all_val, pad_val)
        rows = torch.cat([a[:c] for a, c in zip(all_idx, counts, strict=True)])
        vals = torch.cat([a[:c] for a, c in zip(all_val, counts, strict=True)])
        return torch.sparse_coo_tensor(rows[None], vals, part.shape).coalesce()

    def mean_metrics(self, metrics: dict[str, float]) -> dict[str, float]:
        """The step's metrics averaged over the ranks (weighted as the gradients): what rank 0
        reports, and what every rank checks for NaN, so all stop together."""
        if not self.active:
            return metrics
        import torch.distributed as dist

        keys = sorted(metrics)
        t = torch.tensor([metrics[k] * self.weight for k in keys], dtype=torch.float64, device=self.device)
        self._run("metric averaging", lambda: dist.all_reduce(t))
        return dict(zip(keys, t.tolist(), strict=True))

    def agree(self, code: int) -> int:
        """Rank 0's decision (0 go on, else why to stop), sent to every rank."""
        if not self.active:
            return code
        import torch.distributed as dist

        t = torch.tensor([code], dtype=torch.int64, device=self.device)
        self._run("the stop decision", lambda: dist.broadcast(t, 0))
        return int(t.item())

    def share(self, obj: Any) -> Any:
        """Rank 0's ``obj`` (tensors and primitives) on every rank: ``torch.save`` bytes, loaded with
        ``weights_only=True`` (nothing received runs code). Others pass None."""
        if not self.active:
            return obj
        import torch.distributed as dist

        data = torch.zeros(0, dtype=torch.uint8)
        if self.main:
            buf = io.BytesIO()
            torch.save(obj, buf)
            data = torch.frombuffer(bytearray(buf.getvalue()), dtype=torch.uint8)
        n = torch.tensor([len(data)], dtype=torch.int64, device=self.device)
        self._run("start-up", lambda: dist.broadcast(n, 0))
        data = data.to(self.device) if self.main else torch.empty(int(n.item()), dtype=torch.uint8, device=self.device)
        self._run("start-up", lambda: dist.broadcast(data, 0))
        if self.main:
            return obj
        return torch.load(io.BytesIO(data.cpu().numpy().tobytes()), weights_only=True)

    def align(self, *modules: torch.nn.Module) -> None:
        """Rank 0's parameters and buffers on every rank (as DDP does when it wraps a module)."""
        if not self.active:
            return
        import torch.distributed as dist

        for m in modules:
            for t in [*m.parameters(), *m.buffers()]:
                self._run("start-up", partial(dist.broadcast, t.data, 0))


#: the single process: every method is the identity
SOLO = Replica(World())

#: what every rank must share with rank 0 (what the key means, for the message)
_PLAN = {"positions": "the number of training positions (the data)", "fingerprint": "the item catalogue",
         "batch_size": "train.batch_size", "batch_scope": "train.batch_scope", "lr_scaling": "train.lr_scaling",
         "lr_schedule": "train.lr_schedule", "lr_floor": "train.lr_floor", "seed": "train.seed",
         "algorithm": "train.algorithm", "model": "model.name"}


def agree_on_plan(replica: Replica, agent: Any, cfg: Any, n_positions: int, total: int,
                  payload: dict[str, Any] | None) -> tuple[int, dict[str, Any] | None]:
    """Start-up: rank 0's target (total steps) and resumed checkpoint on every rank, rank 0's
    weights in every module; a rank whose data or config differs from rank 0's is refused (the CLI and
    the launcher put the rank before the message).

    Rank 0's total wins because only it reads the run folder (a node without that folder cannot
    know the target ``--resume`` recorded)."""
    t = cfg.train
    mine = {"positions": n_positions, "fingerprint": str(agent.state.catalogue.fingerprint()),
            "batch_size": t.batch_size, "batch_scope": t.batch_scope, "lr_scaling": t.lr_scaling,
            "lr_schedule": t.lr_schedule, "lr_floor": t.lr_floor, "seed": t.seed,
            "algorithm": t.algorithm, "model": cfg.model.name, "total": total}
    got = replica.share({"plan": mine, "payload": payload if replica.main else None})
    plan = got["plan"]
    for key, what in _PLAN.items():
        if plan[key] != mine[key]:
            raise ConfigError(f"{what} is {mine[key]!r} here but {plan[key]!r} on rank 0; "
                              f"give every process the same data, config and --set options")
    replica.align(agent.actor, agent.critic)
    return int(plan["total"]), got["payload"]


@contextmanager
def session(world: World, device: torch.device, timeout_s: float) -> Iterator[Replica]:
    """The process group for one training job (opened here unless the caller already did)."""
    if world.size == 1:
        yield SOLO
        return
    import torch.distributed as dist

    mine = not dist.is_initialized()
    if mine:
        # torch._dynamo, imported after the group exists (torch's optimisers import it), keeps a reference to
        # the group that destroy_process_group cannot drop: gloo's worker threads then outlive it and may
        # release their last collective's tensors while the interpreter exits (SIGABRT, "terminate called
        # without an active exception"). Imported first, it holds none, and destroying the group joins them.
        import torch._dynamo

        try:
            if device.type == "cuda":
                torch.cuda.set_device(world.local_rank)
            dist.init_process_group(backend_for(device), timeout=timedelta(seconds=timeout_s))
        except (RuntimeError, ValueError) as e:
            first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
            raise PeerLost(f"{LOST} at start-up ({first}); check MASTER_ADDR/MASTER_PORT or --rdzv-endpoint, "
                           f"and that every node started") from None
    replica = Replica(world, timeout_s)
    if device.type == "cuda":
        replica.device = torch.device("cuda", torch.cuda.current_device())
    replica.sparse_allreduce = dist.get_backend() == "gloo" and os.environ.get(GATHER_SPARSE) != "1"
    # no finally: a failing rank keeps its group until the process ends (the exception leaves at the yield);
    # destroying it would close the connections at once, the peers would fail first, and the launcher could stop
    # this rank before it records its own error
    yield replica
    if mine and dist.is_initialized():
        dist.destroy_process_group()  # joins gloo's threads: none is left to run while the interpreter exits


def record_failure(message: str) -> None:
    """Write a worker's one-line error where torch's elastic agent reads it (TORCHELASTIC_ERROR_FILE),
    so the launcher can name the rank and its cause."""
    path = os.environ.get("TORCHELASTIC_ERROR_FILE")
    if not path:
        return
    data = {"message": {"message": message, "extraInfo": {"timestamp": str(int(time.time())), "py_callstack": ""}}}
    try:
        with open(path, "w") as fh:
            json.dump(data, fh)
    except OSError:
        pass  # the exit code still tells the launcher the rank failed
