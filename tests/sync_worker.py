"""One rank of tests/test_distributed.py's check of Replica.sync (run by torchrun): dense and sparse
gradients of known values, averaged, written to OUT/sync{RANK}.pt."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import torch

from whatnext.rl.distributed import World, session

out = Path(sys.argv[1])
rank, size = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
dense = torch.nn.Parameter(torch.zeros(3))
tables = [torch.nn.Parameter(torch.zeros(n, 2)) for n in (5, 4)]  # two item tables of one width: one collective
narrow = torch.nn.Parameter(torch.zeros(6, 1))  # another width: a collective of its own
dense.grad = torch.full((3,), float(rank + 1))
# rank r touches rows {r, 3} of the first table and {r + 1} of the second (value 10 r + row + 1, twice for row 3)
tables[0].grad = torch.sparse_coo_tensor([[rank, 3, 3]], torch.tensor([[10.0 * rank + rank + 1] * 2, [10.0 * rank + 4] * 2,
                                                                         [10.0 * rank + 4] * 2]), (5, 2))
tables[1].grad = torch.sparse_coo_tensor([[rank + 1]], torch.tensor([[100.0 + rank, -1.0]]), (4, 2))
narrow.grad = torch.sparse_coo_tensor([[5 - rank]], torch.tensor([[float(rank + 7)]]), (6, 1))
with session(World(rank, size, rank), torch.device("cpu"), 60) as replica:
    replica.weight = 0.25 if rank == 0 else 0.75
    replica.sync([dense, tables[0], narrow, tables[1]])
out.mkdir(parents=True, exist_ok=True)
torch.save({"dense": dense.grad, "t0": tables[0].grad.to_dense(), "t1": tables[1].grad.to_dense(),
            "narrow": narrow.grad.to_dense(), "sparse": [t.grad.is_sparse for t in (*tables, narrow)]},
           out / f"sync{rank}.pt")
