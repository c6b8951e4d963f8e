"""Training throughput: whatnext's training step against a bare PyTorch step of the same shapes.

    python bench/train_throughput.py                      # built-in demo data, default config
    python bench/train_throughput.py --data ../shared/data/ml-100k/u.data --steps 200

Both run in the same process, alternating in rounds so that a busy machine slows both alike.
The bare step is what any implementation must do: the actor LSTM over a batch of windows,
the softmax over every item at every step and its backward pass, and the critic LSTM scoring
the re-rank slate (M candidates per window) with its regression backward pass, on tensors
prepared in advance. whatnext's step adds what the engine does around it: building the batch
from the histories, noise, the nearest-neighbour slate, the rewards, the seen flags, metrics.
Prints samples/s (windows/s) for both and the ratio (target: under 1.5x).

    python bench/train_throughput.py --sweep     # full vs sampled softmax by catalogue size

``--sweep`` times whatnext's step with the full softmax and with the sampled one
(``train.negatives`` = AUTO_NEGATIVES) on bench/scale.py's synthetic logs of 2,000 to 32,000
items (plays = 10 x items), alternating in rounds: where the sampled step becomes the cheaper
is ``train.negatives = "auto"``'s threshold (AUTO_FULL_MAX).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from whatnext.config import load_config
from whatnext.data import PAD, load_dataset
from whatnext.rl.agent import Agent
from whatnext.rl.algorithms import positions_for
from whatnext.rl.batch import make_batch
from whatnext.rl.state import State


def sweep(steps: int) -> None:
    """Full vs sampled softmax step time by catalogue size (see the module doc)."""
    import sys
    import tempfile

    sys.path.insert(0, str(Path(__file__).parent))
    import scale

    from whatnext.rl import algorithms as rag
    from whatnext.rl.environment import learning_steps

    print(f"{'items':>7} {'full ms/step':>13} {'sampled ms/step':>16} {'sampled/full':>13}")
    for items in (2000, 4000, 8000, 16000, 32000):
        with tempfile.TemporaryDirectory() as tmp:
            ev, it = scale.generate(Path(tmp), items * 10)
            agents, batches = {}, {}
            for name, neg in (("full", 10**8), ("sampled", rag.AUTO_NEGATIVES)):
                cfg = load_config(None, {"data.path": str(ev), "data.items_path": str(it), "train.negatives": neg})
                ds = load_dataset(cfg)
                torch.manual_seed(0)
                agents[name] = Agent(State(ds), cfg)
                agents[name].wake()
                pos = positions_for(ds, "hybrid", cfg.model.window)
                batches[name] = list(learning_steps(cfg, ds, pos, 0, steps))
            times = {"full": 0.0, "sampled": 0.0}
            for r in range(0, steps, 10):
                for name in times:
                    t = time.perf_counter()
                    for _, _, _, batch, rng, gen in batches[name][r : r + 10]:
                        agents[name].propagate(batch, rng, gen)
                    times[name] += time.perf_counter() - t
            ms = {k: 1000 * v / steps for k, v in times.items()}
            print(f"{items:>7} {ms['full']:>13.1f} {ms['sampled']:>16.1f} {ms['sampled'] / ms['full']:>13.2f}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data")
    ap.add_argument("--config")
    ap.add_argument("--steps", type=int, default=100, help="steps per variant (in rounds of 10)")
    ap.add_argument("--sweep", action="store_true", help="full vs sampled softmax by catalogue size")
    args = ap.parse_args()
    if args.sweep:
        sweep(args.steps)
        return
    cfg = load_config(args.config, {"data.path": str(Path(args.data).resolve()) if args.data else None})
    ds = load_dataset(cfg)
    torch.manual_seed(0)
    agent = Agent(State(ds), cfg)
    agent.wake()
    bs, w, m = cfg.train.batch_size, cfg.model.window, max(cfg.model.rerank, 1)
    positions = positions_for(ds, cfg.train.algorithm, w)
    rng = np.random.default_rng(0)

    # the bare step: same modules and shapes, no engine around it
    bare_actor, bare_critic = type(agent.actor)(**agent.args), type(agent.critic)(**agent.args)
    if agent.args["feature_dim"]:
        feats = torch.from_numpy(ds.catalogue.features)
        for table in {bare_actor.items, bare_actor.out_items, bare_critic.items}:
            table.set_features(feats)
    a_opt = torch.optim.Adam(bare_actor.parameters(), lr=cfg.train.actor_lr)
    c_opt = torch.optim.Adam(bare_critic.parameters(), lr=cfg.train.critic_lr)
    fixed = make_batch(ds, positions[rng.choice(len(positions), bs)], w)
    inputs, lengths = torch.from_numpy(fixed.inputs), torch.from_numpy(fixed.lengths)
    targets = torch.from_numpy(fixed.targets)
    valid = targets != PAD
    m += 10  # the last item's successors join the slate
    cand = torch.randint(0, len(ds.catalogue), (bs, m))
    reward = torch.rand(bs, m)
    extra = torch.zeros(bs, m, 3)

    def bare_step() -> None:
        protos = bare_actor.sequence(inputs)
        ce = F.cross_entropy(bare_actor.logits(protos[valid]), targets[valid])
        a_opt.zero_grad()
        ce.backward()
        torch.nn.utils.clip_grad_norm_(bare_actor.parameters(), cfg.train.grad_clip)
        a_opt.step()
        with torch.no_grad():
            vec = bare_actor.items(cand)
        q = bare_critic.score(bare_critic.encode(inputs, lengths), vec, extra)
        loss = F.mse_loss(q, reward)
        c_opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(bare_critic.parameters(), cfg.train.grad_clip)
        c_opt.step()

    step_no = [0]

    def engine_step() -> None:
        s = step_no[0]
        step_no[0] += 1
        batch = make_batch(ds, positions[np.random.default_rng(s).choice(len(positions), bs)], w)
        agent.propagate(batch, np.random.default_rng(s), torch.Generator().manual_seed(s))

    for fn in (bare_step, engine_step):  # warm-up
        fn()
    times = {"bare": 0.0, "whatnext": 0.0}
    for _ in range(max(1, args.steps // 10)):
        for name, fn in (("bare", bare_step), ("whatnext", engine_step)):
            t = time.perf_counter()
            for _ in range(10):
                fn()
            times[name] += time.perf_counter() - t
    n = max(1, args.steps // 10) * 10
    sps = {k: n * bs / v for k, v in times.items()}
    print(f"data: {ds.source}; algorithm {cfg.train.algorithm}, batch {bs} windows of {w}, "
          f"{len(ds.catalogue)} items, re-rank slate {cfg.model.rerank}, threads {torch.get_num_threads()}")
    print(f"{'step':<10} {'samples/s':>10} {'ms/step':>9}")
    for k in ("bare", "whatnext"):
        print(f"{k:<10} {sps[k]:>10.0f} {1000 * times[k] / n:>9.2f}")
    print(f"overhead ratio (bare / whatnext samples/s): {sps['bare'] / sps['whatnext']:.2f}x")


if __name__ == "__main__":
    main()
