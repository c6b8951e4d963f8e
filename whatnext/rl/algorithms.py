"""Training algorithms: one learning step of the Agent each, the registry behind ``train.algorithm``.

- ``original``: the first design, batched. The actor predicts a proto-action for the window
  before a training position; Gaussian noise explores; State.produce picks a song near it;
  the reward scores that song; the critic regresses the reward from (history, song); the
  actor follows the deterministic policy gradient through the critic on its own proto-action.
- ``hybrid``: the same actor-critic on the last step of each window, plus a supervised
  next-item loss at *every* step of the window (a softmax over negative squared distances
  between the proto-action and every item vector), in the spirit of SQN (Xin et al., SIGIR
  2020). Training runs over whole sequences, one output per step, which is far cheaper than
  one prefix at a time and ties the proto-action to what users actually played next.

- ``sqn``, ``sac``, ``reinforce``: off-policy RL on the logged rewards (``Batch.rewards``) over the
  same windows, encoder and supervised softmax as ``hybrid``; the losses are in
  :mod:`whatnext.rl.offpolicy`, the step (:func:`train_offpolicy`) here.

The supervised loss is a full softmax while the catalogue is small, and a *sampled* softmax
above :data:`AUTO_FULL_MAX` items (``train.negatives``): the logits are computed only for the
batch's own targets plus shared negatives drawn from (training count + 1) ** ``train.negative_power``,
each corrected by ``- log pi`` where pi is the probability that the item is among the
candidates at all (the logQ correction of Jean et al. 2015 / Yi et al. 2019, here with the
inclusion probability of unique sampling, as TensorFlow's ``unique=True`` samplers use), so the
softmax over the candidates estimates the full one without the popularity bias. The critic's
slate is then the nearest of those candidates, so no step touches the whole catalogue. With
the whole catalogue as candidates every pi is 1 and the loss is the full softmax exactly.
Negatives come from the step's generator, itself derived from (seed, step): runs stay
bit-identical and resume exactly.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F

from whatnext.data.dataset import PAD, Dataset
from whatnext.rl import offpolicy, rewards
from whatnext.rl.batch import SUCCESSORS, Batch

if TYPE_CHECKING:  # the Agent looks its algorithm up here: a run-time import would be a circle
    from whatnext.rl.agent import Agent


#: ``train.negatives = "auto"`` uses the full softmax up to this many items and samples above.
#: Measured (bench/train_throughput.py --sweep, synthetic logs): the sampled step costs 0.85x
#: the full one at 2,000 items (the batch's ~1,600 targets are most of the candidates), 0.39x
#: at 4,000, 0.19x at 16,000, 0.08x at 32,000; the full softmax is kept up to 4,096 so that
#: small catalogues (the demo, MovieLens 100K and 1M) train exactly as before.
AUTO_FULL_MAX = 4096
#: how many shared negatives ``"auto"`` draws above AUTO_FULL_MAX
AUTO_NEGATIVES = 2048


def resolve_device(name: str) -> torch.device:
    """``train.device`` resolved: ``auto`` is CUDA when torch sees a CUDA device, else the CPU;
    ``cuda`` without one is a ConfigError."""
    if name == "cuda" and not torch.cuda.is_available():
        from whatnext.errors import ConfigError

        raise ConfigError("key 'train.device' is 'cuda' but torch sees no CUDA device here; use 'auto' or 'cpu'")
    return torch.device("cuda" if name == "cuda" or (name == "auto" and torch.cuda.is_available()) else "cpu")


def negatives_for(cfg: Any, n_items: int) -> int | None:
    """``train.negatives`` resolved for a catalogue of ``n_items``: None = the full softmax."""
    neg = cfg.train.negatives
    if neg == "auto":
        return None if n_items <= AUTO_FULL_MAX else AUTO_NEGATIVES
    return None if int(neg) >= n_items else int(neg)


#: torch's own thread count when this module was imported (every core, or OMP_NUM_THREADS)
TORCH_THREADS = torch.get_num_threads()


def threads_for(cfg: Any, n_items: int, training: bool = True) -> int:
    """``train.threads`` resolved for a catalogue of ``n_items`` (0 = leave torch's setting alone).

    ``auto``: one thread while the full softmax is used (the demo, MovieLens: small LSTMs and
    products run fastest on one, and results stay those measured so far), torch's own count (every
    core) above :data:`AUTO_FULL_MAX` items when training, where the sampled softmax's matrix products
    dominate a step: a 10M-play epoch took 11.0 min on 2 threads against 18.5 on one (bench/scale.py,
    quiet). Answering one user (recommend, serve, eval) stays on one thread: its products are small,
    and a server's concurrent requests already use the cores. Weights are bit-identical run to run
    for a given thread count.
    """
    t = cfg.train.threads
    if t == "auto":
        return TORCH_THREADS if training and n_items > AUTO_FULL_MAX else 1
    return int(t)


class NegativeSampler:
    """Shared negatives for a sampled softmax, from (count + 1) ** power, with their inclusion probabilities.

    ``counts`` are the training popularity of every item. A step's candidates are the unique
    union of its R targets (drawn, in effect, from the unigram distribution p) and S negatives
    drawn with replacement from q; an item is among them with probability
    ``pi = 1 - (1 - p) ** R * (1 - q) ** S``, and ``- log pi`` is its logQ correction.
    """

    def __init__(self, counts: np.ndarray, power: float, n_negatives: int) -> None:
        counts = np.asarray(counts, dtype=np.float64)
        self.n_negatives = int(n_negatives)
        w = (counts + 1.0) ** power
        self.q = w / w.sum()
        self.cdf = np.cumsum(self.q)
        self.cdf[-1] = 1.0
        self.p = counts / max(counts.sum(), 1.0)

    def draw(self, rng: np.random.Generator) -> np.ndarray:
        """S negatives, with replacement, from q."""
        return np.minimum(np.searchsorted(self.cdf, rng.random(self.n_negatives), side="right"), len(self.q) - 1)

    def log_inclusion(self, items: np.ndarray, n_targets: int) -> np.ndarray:
        """log pi of ``items`` among the unique candidates of a step with ``n_targets`` targets."""
        log_out = n_targets * np.log1p(-np.minimum(self.p[items], 1 - 1e-12)) \
            + self.n_negatives * np.log1p(-np.minimum(self.q[items], 1 - 1e-12))
        return np.log(-np.expm1(np.minimum(log_out, -1e-300)))

    def candidates(self, targets: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(items, log_pi, target_pos)``: the sorted unique union of ``targets`` and S negatives,
        each item's log inclusion probability, and where each target sits in ``items``."""
        items = np.unique(np.concatenate([targets, self.draw(rng)]))
        return items, self.log_inclusion(items, len(targets)), np.searchsorted(items, targets)


def sampler_for(agent: Agent) -> NegativeSampler | None:
    """The agent's negative sampler (built once, cached on the agent), or None for the full softmax."""
    n = len(agent.state.catalogue)
    s = negatives_for(agent.cfg, n)
    if s is None:
        return None
    cached = getattr(agent, "_negative_sampler", None)
    key = (s, agent.cfg.train.negative_power)
    if cached is None or cached[0] != key:
        h = agent.state.histories
        counts = np.bincount(h.items[h.train_mask()], minlength=n)
        cached = (key, NegativeSampler(counts, agent.cfg.train.negative_power, s))
        agent._negative_sampler = cached  # type: ignore[attr-defined]
    return cached[1]


def sampled_cross_entropy(logits: torch.Tensor, target_pos: torch.Tensor, log_pi: torch.Tensor,
                          reduction: str = "mean") -> torch.Tensor:
    """Cross-entropy over candidate logits (R, C) with the logQ correction ``- log_pi`` (C,)."""
    return F.cross_entropy(logits - log_pi, target_pos, reduction=reduction)


def candidate_logits(actor: Any, proto: torch.Tensor, e: torch.Tensor, log_pi: torch.Tensor) -> torch.Tensor:
    """``actor.logits(proto, e) - log_pi`` as one matrix product: the (R, C) logits of the sampled softmax.

    The scale, the items' squared norms and the logQ correction ride in one extra column
    (``[2 s p, 1] . [e, -s |e|^2 - log pi]``), so no (R, C) temporary is made besides the product:
    the sampled step's logits and their backward pass cost 1.5x less (same values up to rounding).
    """
    s = actor.log_scale.exp()
    p = torch.cat([proto * (2.0 * s), proto.new_ones(len(proto), 1)], 1)
    bias = -(e * e).sum(-1) * s - log_pi
    return p @ torch.cat([e, bias[:, None]], 1).T


class ItemRows:
    """The actor's item vectors as a read-only array computed row by row on demand.

    Indexing (``rows[idx]``, any integer array) returns float32 vectors of those items only,
    so a step of the sampled softmax never materialises the whole (n_items, dim) table.
    """

    def __init__(self, agent: Agent) -> None:
        self.table = agent.actor.out_items
        self.shape = (self.table.n_items, self.table.dim)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, idx: Any) -> np.ndarray:
        idx = np.asarray(idx, dtype=np.int64)
        with torch.no_grad():
            return self.table(torch.from_numpy(idx).to(self.table.features.device)).cpu().numpy()


def _nearest_among(items: np.ndarray, vectors: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """The k of ``items`` (with ``vectors``) nearest each query: (B, k), nearest first."""
    v, q = torch.from_numpy(vectors), torch.from_numpy(np.ascontiguousarray(queries, dtype=np.float32))
    d = (v * v).sum(1)[None, :] - 2.0 * q @ v.T  # |q|^2 is the same along a row
    idx = torch.topk(d, min(k, len(items)), dim=1, largest=False, sorted=True).indices
    return items[idx.numpy()]


def _actor_critic(agent: Agent, batch: Batch, proto: torch.Tensor, rng: np.random.Generator,
                  gen: torch.Generator, need_dpg: bool = True,
                  pool: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[torch.Tensor | None, dict[str, float]]:
    """The original cycle on one proto-action per window: returns the actor's DPG loss term.

    Noise, produce and reward happen outside autograd; the critic learns here, and is stepped here when
    ``need_dpg`` (the actor's term reads the stepped critic), else with the actor (:func:`_step_actor`). With
    ``model.rerank = M > 0`` the critic also learns the rewards of the M items nearest the
    noisy proto-action (the candidates it re-ranks at recommendation time). ``pool`` (items,
    their vectors) is the sampled softmax's candidates: the slate is then the M nearest of
    them, and item vectors are looked up row by row instead of for the whole catalogue.
    """
    t = agent.cfg.train
    dev = proto.device
    inputs, lengths = torch.from_numpy(batch.inputs).to(dev), torch.from_numpy(batch.lengths).to(dev)
    vectors: Any = agent.item_vectors() if pool is None else ItemRows(agent)
    noisy = (proto.detach().cpu() + t.noise * torch.randn(proto.shape, generator=gen))
    m = agent.cfg.model.rerank
    if t.algorithm == "original" or not m:
        produced = np.asarray(agent.state.produce(noisy.numpy(), t.relax, rng))
        cand = produced[:, None]
        if m:
            slate, _ = agent.state.nearest(noisy.numpy(), m)
            cand = np.concatenate([cand, np.where(slate < 0, produced[:, None], slate)], axis=1)
    else:  # hybrid: the slate the critic will re-rank is what it learns on
        if pool is None:
            slate, _ = agent.state.nearest(noisy.numpy(), m)
        else:
            slate = _nearest_among(pool[0], pool[1], noisy.numpy(), m)
        last = batch.inputs[np.arange(len(batch.lengths)), batch.lengths - 1]
        slate = np.concatenate([slate, agent.transitions.successors(last, SUCCESSORS)], 1)
        cand = np.where(slate < 0, slate[:, :1], slate)
        produced = cand[:, 0]
    assert agent.population_sigma is not None
    r_in = rewards.RewardInputs(batch.inputs, batch.lengths, cand, batch.last_target, batch.users,
                                vectors, agent.population_sigma, agent.delta, batch.last_reward)
    reward, parts = rewards.combined(t.rewards, r_in)
    extra = agent.candidate_extra(batch.inputs, batch.lengths, cand)
    # critic: regression of the rewards of the produced song (and the candidates)
    assert agent.critic_opt is not None
    agent.critic.train()
    q = agent.critic.score(agent.critic.encode(inputs, lengths), torch.from_numpy(np.asarray(vectors[cand])).to(dev),
                           extra.to(dev))
    critic_loss = F.mse_loss(q, torch.from_numpy(reward).float().to(dev))
    agent.critic_opt.zero_grad(set_to_none=True)
    critic_loss.backward()
    if need_dpg:  # the actor's term reads the stepped critic: step it now (else the caller steps both at once)
        _step(agent, (agent.critic, agent.critic_opt))
    metrics = {"train/critic_loss": critic_loss.item(), "train/reward": float(reward[:, 0].mean()),
               "train/hit": float((produced == batch.last_target).mean()), **parts}
    if not need_dpg:
        return None, metrics
    # actor: maximise critic(history, actor(history)); the critic's own weights are not stepped by it
    with torch.no_grad():
        summary = agent.critic.encode(inputs, lengths)
    for p in agent.critic.parameters():
        p.requires_grad_(False)
    dpg = -agent.critic.score(summary, proto[:, None, :]).mean()
    for p in agent.critic.parameters():
        p.requires_grad_(True)
    return dpg, metrics


def _clip(params: Any, max_norm: float) -> None:
    """Clip the gradients' global norm; sparse gradients (item tables under the sampled softmax) count by their rows."""
    if max_norm <= 0:
        return
    params = [p for p in params if p.grad is not None]
    if not any(p.grad.is_sparse for p in params):
        torch.nn.utils.clip_grad_norm_(params, max_norm)
        return
    for p in params:
        if p.grad.is_sparse:
            p.grad = p.grad.coalesce()
    total = torch.stack([(p.grad.values() if p.grad.is_sparse else p.grad).norm() for p in params]).norm()
    coef = max_norm / (total + 1e-6)
    if coef < 1:
        for p in params:
            p.grad.mul_(coef)


class LazyAdam(torch.optim.Adam):
    """torch's Adam, except that a parameter with a sparse gradient is updated lazily.

    Under the sampled softmax the item tables' gradients are sparse (``nn.Embedding(sparse=True)``):
    only the rows a step touched are updated, their moments too (as TensorFlow's LazyAdam), so
    a step costs what the batch touches, not the catalogue. Dense gradients go through torch's
    Adam unchanged (the full-softmax path is bit for bit what it was), and the state has Adam's
    layout, so checkpoints load into either.
    """

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:  # type: ignore[override]
        sparse = []
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None and p.grad.is_sparse:
                    sparse.append((group, p, p.grad))
                    p.grad = None  # Adam skips it
        loss = super().step(closure)
        for group, p, g in sparse:
            p.grad = g
            self._sparse_step(group, p, g.coalesce())
        return loss

    def _sparse_step(self, group: dict[str, Any], p: torch.Tensor, g: torch.Tensor) -> None:
        state = self.state[p]
        if not state:
            state["step"] = torch.tensor(0.0, dtype=torch.float32)
            state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
        state["step"] += 1
        beta1, beta2 = group["betas"]
        step = float(state["step"])
        idx, val = g.indices()[0], g.values()
        if group["weight_decay"]:
            val = val + group["weight_decay"] * p[idx]
        m = state["exp_avg"][idx].mul_(beta1).add_(val, alpha=1 - beta1)
        v = state["exp_avg_sq"][idx].mul_(beta2).addcmul_(val, val, value=1 - beta2)
        state["exp_avg"][idx] = m
        state["exp_avg_sq"][idx] = v
        denom = (v.sqrt() / math.sqrt(1 - beta2**step)).add_(group["eps"])
        p.index_add_(0, idx, -(group["lr"] / (1 - beta1**step)) * m / denom)


def optimisers(agent: Agent) -> tuple[torch.optim.Optimizer, torch.optim.Optimizer]:
    """Actor and critic optimisers (Adam). Under the sampled softmax the learned item tables
    get sparse gradients and lazy updates (:class:`LazyAdam`), so no step touches every item."""
    t = agent.cfg.train
    if POSITIONS[t.algorithm] == "windows" and negatives_for(agent.cfg, len(agent.state.catalogue)) is not None:
        for table in (agent.actor.items, agent.actor.out_items, agent.critic.items):
            if table.learned is not None:
                table.learned.sparse = True
    return LazyAdam(agent.actor.parameters(), lr=t.actor_lr), LazyAdam(agent.critic.parameters(), lr=t.critic_lr)


def _step(agent: Agent, *nets: tuple[torch.nn.Module, torch.optim.Optimizer | None]) -> None:
    """Clip and step each network with its optimiser; in a distributed job the gradients of all of them are
    averaged over the ranks first, in one collective (rl/distributed.py: one wait for the slower rank, not one
    per network)."""
    agent.replica.sync([p for net, _ in nets for p in net.parameters()])
    for net, opt in nets:
        assert opt is not None
        _clip(net.parameters(), agent.cfg.train.grad_clip)
        opt.step()


def _step_actor(agent: Agent, loss: torch.Tensor, *also: tuple[torch.nn.Module, torch.optim.Optimizer | None]) -> None:
    """Back-propagate the actor's ``loss``, then step the actor and ``also`` (networks whose gradients are
    ready: the critic when the actor's loss does not read it, the off-policy heads)."""
    assert agent.actor_opt is not None
    agent.actor_opt.zero_grad(set_to_none=True)
    loss.backward()
    _step(agent, (agent.actor, agent.actor_opt), *also)


def _critic_pending(agent: Agent, stepped: bool) -> tuple[tuple[torch.nn.Module, torch.optim.Optimizer | None], ...]:
    """The critic with its optimiser when it learned this step and was not stepped yet, for :func:`_step_actor`."""
    return () if stepped else ((agent.critic, agent.critic_opt),)


def train_original(agent: Agent, batch: Batch, rng: np.random.Generator, gen: torch.Generator) -> dict[str, float]:
    """The original actor-critic step (see the module doc)."""
    agent.actor.train()
    dev = agent.device
    proto = agent.actor(torch.from_numpy(batch.inputs).to(dev), torch.from_numpy(batch.lengths).to(dev))
    dpg, metrics = _actor_critic(agent, batch, proto, rng, gen)
    assert dpg is not None
    _step_actor(agent, dpg)
    return {"train/actor_loss": dpg.item(), **metrics}


def train_hybrid(agent: Agent, batch: Batch, rng: np.random.Generator, gen: torch.Generator) -> dict[str, float]:
    """Supervised next-item loss at every step plus the actor-critic term on the last step."""
    agent.actor.train()
    dev = agent.device
    protos = agent.actor.sequence(torch.from_numpy(batch.inputs).to(dev))
    ce, cands = next_item_loss(agent, batch, protos, rng)
    pool = None if cands is None else (cands.items, cands.vectors)
    metrics: dict[str, float] = {"train/ce_loss": ce.item()}
    loss = ce
    w = agent.cfg.train.rl_weight
    critic: tuple[tuple[torch.nn.Module, torch.optim.Optimizer | None], ...] = ()
    if w > 0 or agent.cfg.model.rerank:
        # the critic always learns (it re-ranks); its gradient reaches the actor only when rl_weight > 0
        dpg, ac = _actor_critic(agent, batch, last_step(batch, protos) if w > 0 else last_step(batch, protos).detach(),
                                rng, gen, need_dpg=w > 0, pool=pool)
        critic = _critic_pending(agent, stepped=w > 0)
        if dpg is not None:
            loss = ce + w * dpg
        metrics.update(ac)
    _step_actor(agent, loss, *critic)
    metrics["train/actor_loss"] = loss.item()
    return metrics


def last_step(batch: Batch, protos: torch.Tensor) -> torch.Tensor:
    """Each window's output after its last real item: (B, ...) of (B, W, ...)."""
    dev = protos.device
    return protos[torch.arange(len(batch.lengths), device=dev), torch.from_numpy(batch.lengths).to(dev) - 1]


def next_item_loss(agent: Agent, batch: Batch, protos: torch.Tensor, rng: np.random.Generator,
                   reduction: str = "mean") -> tuple[torch.Tensor, offpolicy.Candidates | None]:
    """The supervised next-item cross-entropy of proto-actions (B, W, dim) at every real step, and the pool.

    A full softmax, or the sampled one (see the module doc); ``reduction="none"`` gives one value per
    real step (row-major over the window's valid steps), i.e. ``-log pi(target | history)``. The
    sampled softmax's candidates come back too (None under the full softmax).
    """
    dev = agent.device
    valid = torch.from_numpy(batch.targets != PAD).to(dev)
    sampler = sampler_for(agent)
    if sampler is None:
        logits = agent.actor.logits(protos[valid])
        return F.cross_entropy(logits, torch.from_numpy(batch.targets).to(dev)[valid], reduction=reduction), None
    targets = batch.targets[batch.targets != PAD]
    items, log_pi, target_pos = sampler.candidates(targets, rng)
    e = agent.actor.out_items(torch.from_numpy(items).to(dev))
    logits = candidate_logits(agent.actor, protos[valid], e, torch.from_numpy(log_pi).to(dev, e.dtype))
    ce = F.cross_entropy(logits, torch.from_numpy(target_pos).to(dev), reduction=reduction)
    return ce, offpolicy.Candidates(items, e.detach().cpu().numpy(), log_pi)


def train_offpolicy(agent: Agent, batch: Batch, rng: np.random.Generator, gen: torch.Generator) -> dict[str, float]:
    """One step of ``sqn``, ``sac`` or ``reinforce`` (:mod:`whatnext.rl.offpolicy`): the actor's
    encoder, softmax and the extra heads learn together; the critic learns as in ``hybrid`` when it re-ranks."""
    agent.actor.train()
    off, opt = agent.offpolicy, agent.offpolicy_opt
    assert off is not None and opt is not None
    t = agent.cfg.train
    hidden = agent.actor.hidden(torch.from_numpy(batch.inputs).to(agent.device))
    protos = agent.actor._out(hidden)
    ce, cands = next_item_loss(agent, batch, protos, rng, reduction="none")
    s = offpolicy.prepare(agent, batch, hidden, cands)
    if t.algorithm == "sqn":
        loss, metrics = offpolicy.sqn_loss(agent, batch, s, ce)
    elif t.algorithm == "sac":
        loss, metrics = offpolicy.sac_loss(agent, batch, s, ce, rng)
    else:
        loss, metrics = offpolicy.reinforce_loss(agent, batch, s, ce)
    critic: tuple[tuple[torch.nn.Module, torch.optim.Optimizer | None], ...] = ()
    if agent.cfg.model.rerank:
        pool = None if cands is None else (cands.items, cands.vectors)
        _, ac = _actor_critic(agent, batch, last_step(batch, protos).detach(), rng, gen, need_dpg=False, pool=pool)
        critic = _critic_pending(agent, stepped=False)
        metrics.update(ac)
    opt.zero_grad(set_to_none=True)
    _step_actor(agent, loss, *critic, (off.heads, opt))  # the heads' gradients averaged with the actor's
    off.update_target(agent.actor, t.target_tau)
    metrics["train/actor_loss"] = loss.item()
    return metrics


Algorithm = Callable[["Agent", Batch, np.random.Generator, torch.Generator], dict[str, float]]

#: train.algorithm -> (step function); see the module doc. config.CHOICES lists the same names.
ALGORITHMS: dict[str, Algorithm] = {
    "original": train_original,
    "hybrid": train_hybrid,
    "sqn": train_offpolicy,
    "sac": train_offpolicy,
    "reinforce": train_offpolicy,
}

#: Which training positions an epoch visits: every position (one prefix at a time), or the
#: ends of consecutive windows (whole sequences, every position a target once).
POSITIONS: dict[str, str] = {"original": "every", "hybrid": "windows", "sqn": "windows", "sac": "windows",
                             "reinforce": "windows"}


def positions_for(dataset: Dataset, algorithm: str, window: int) -> np.ndarray:
    """Flat target positions an epoch of ``algorithm`` visits (training part only)."""
    h = dataset.histories
    pos = h.train_positions()
    if POSITIONS[algorithm] == "every":
        return pos
    users = np.searchsorted(h.offsets, pos, side="right") - 1
    last = h.offsets[users] + h.train_len[users] - 1
    return pos[(last - pos) % window == 0]
