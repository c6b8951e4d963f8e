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
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F

from whatnext.data.dataset import PAD, Dataset
from whatnext.rl import rewards
from whatnext.rl.batch import SUCCESSORS, Batch

if TYPE_CHECKING:  # the Agent looks its algorithm up here: a run-time import would be a circle
    from whatnext.rl.agent import Agent


def _actor_critic(agent: Agent, batch: Batch, proto: torch.Tensor, rng: np.random.Generator,
                  gen: torch.Generator, need_dpg: bool = True) -> tuple[torch.Tensor | None, dict[str, float]]:
    """The original cycle on one proto-action per window: returns the actor's DPG loss term.

    Noise, produce and reward happen outside autograd; the critic is stepped here. With
    ``model.rerank = M > 0`` the critic also learns the rewards of the M items nearest the
    noisy proto-action (the candidates it re-ranks at recommendation time).
    """
    t = agent.cfg.train
    inputs, lengths = torch.from_numpy(batch.inputs), torch.from_numpy(batch.lengths)
    vectors = agent.item_vectors()
    noisy = proto.detach() + t.noise * torch.randn(proto.shape, generator=gen)
    m = agent.cfg.model.rerank
    if t.algorithm == "original" or not m:
        produced = np.asarray(agent.state.produce(noisy.numpy(), t.relax, rng))
        cand = produced[:, None]
        if m:
            slate, _ = agent.state.nearest(noisy.numpy(), m)
            cand = np.concatenate([cand, np.where(slate < 0, produced[:, None], slate)], axis=1)
    else:  # hybrid: the slate the critic will re-rank is what it learns on
        slate, _ = agent.state.nearest(noisy.numpy(), m)
        last = batch.inputs[np.arange(len(batch.lengths)), batch.lengths - 1]
        slate = np.concatenate([slate, agent.transitions.successors(last, SUCCESSORS)], 1)
        cand = np.where(slate < 0, slate[:, :1], slate)
        produced = cand[:, 0]
    assert agent.population_sigma is not None
    r_in = rewards.RewardInputs(batch.inputs, batch.lengths, cand, batch.last_target, batch.users,
                                vectors, agent.population_sigma, agent.delta)
    reward, parts = rewards.combined(t.rewards, r_in)
    extra = agent.candidate_extra(batch.inputs, batch.lengths, cand)
    # critic: regression of the rewards of the produced song (and the candidates)
    assert agent.critic_opt is not None
    agent.critic.train()
    q = agent.critic.score(agent.critic.encode(inputs, lengths), torch.from_numpy(vectors[cand]), extra)
    critic_loss = F.mse_loss(q, torch.from_numpy(reward).float())
    agent.critic_opt.zero_grad(set_to_none=True)
    critic_loss.backward()
    _clip(agent.critic.parameters(), t.grad_clip)
    agent.critic_opt.step()
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
    if max_norm > 0:
        torch.nn.utils.clip_grad_norm_(params, max_norm)


def _step_actor(agent: Agent, loss: torch.Tensor) -> None:
    assert agent.actor_opt is not None
    agent.actor_opt.zero_grad(set_to_none=True)
    loss.backward()
    _clip(agent.actor.parameters(), agent.cfg.train.grad_clip)
    agent.actor_opt.step()


def train_original(agent: Agent, batch: Batch, rng: np.random.Generator, gen: torch.Generator) -> dict[str, float]:
    """The original actor-critic step (see the module doc)."""
    agent.actor.train()
    proto = agent.actor(torch.from_numpy(batch.inputs), torch.from_numpy(batch.lengths))
    dpg, metrics = _actor_critic(agent, batch, proto, rng, gen)
    assert dpg is not None
    _step_actor(agent, dpg)
    return {"train/actor_loss": dpg.item(), **metrics}


def train_hybrid(agent: Agent, batch: Batch, rng: np.random.Generator, gen: torch.Generator) -> dict[str, float]:
    """Supervised next-item loss at every step plus the actor-critic term on the last step."""
    agent.actor.train()
    inputs = torch.from_numpy(batch.inputs)
    protos = agent.actor.sequence(inputs)
    valid = torch.from_numpy(batch.targets != PAD)
    logits = agent.actor.logits(protos[valid])
    ce = F.cross_entropy(logits, torch.from_numpy(batch.targets)[valid])
    last = protos[torch.arange(len(batch.lengths)), torch.from_numpy(batch.lengths) - 1]
    metrics: dict[str, float] = {"train/ce_loss": ce.item()}
    loss = ce
    w = agent.cfg.train.rl_weight
    if w > 0 or agent.cfg.model.rerank:
        # the critic always learns (it re-ranks); its gradient reaches the actor only when rl_weight > 0
        dpg, ac = _actor_critic(agent, batch, last if w > 0 else last.detach(), rng, gen, need_dpg=w > 0)
        if dpg is not None:
            loss = ce + w * dpg
        metrics.update(ac)
    _step_actor(agent, loss)
    metrics["train/actor_loss"] = loss.item()
    return metrics


Algorithm = Callable[["Agent", Batch, np.random.Generator, torch.Generator], dict[str, float]]

#: train.algorithm -> (step function); see the module doc. config.CHOICES lists the same names.
ALGORITHMS: dict[str, Algorithm] = {
    "original": train_original,
    "hybrid": train_hybrid,
}

#: Which training positions an epoch visits: every position (one prefix at a time), or the
#: ends of consecutive windows (whole sequences, every position a target once).
POSITIONS: dict[str, str] = {"original": "every", "hybrid": "windows"}


def positions_for(dataset: Dataset, algorithm: str, window: int) -> np.ndarray:
    """Flat target positions an epoch of ``algorithm`` visits (training part only)."""
    h = dataset.histories
    pos = h.train_positions()
    if POSITIONS[algorithm] == "every":
        return pos
    users = np.searchsorted(h.offsets, pos, side="right") - 1
    last = h.offsets[users] + h.train_len[users] - 1
    return pos[(last - pos) % window == 0]


def steps_per_epoch(n_positions: int, batch_size: int) -> int:
    """Learning steps in one epoch."""
    return max(1, math.ceil(n_positions / batch_size))
