"""Off-policy RL on logged rewards: ``sqn``, ``sac`` and ``reinforce`` (``train.algorithm``).

All three train the actor's own sequence encoder (LSTM or transformer) and its supervised next-item
softmax on the logged rewards (``Batch.rewards``, the reward of the play that followed each step; 1.0 per
play without a reward column); ``sqn`` and ``sac`` also rank with their Q head (``recommend.q_beta``, below),
``reinforce`` with its policy, the softmax. Extra heads read the encoder's states
(:meth:`whatnext.models.actor.ProtoActor.hidden`) and score an item by a dot product with its (detached)
output vector plus a per-item bias, so they work on the sampled softmax's candidates too.

- ``sqn`` (Xin et al., SIGIR 2020, "Self-Supervised Reinforcement Learning for Recommender Systems"):
  the supervised loss plus a Q-learning head trained by one-step TD on the logged reward,
  ``Q(s_t, a_t) <- r_t + gamma * max_a Q'(s_{t+1}, a)``, with a target network (a copy of actor and
  heads, moved softly by ``train.target_tau`` each step). The TD loss's gradient reaches the shared
  encoder, which is how Q-learning shapes the supervised ranking in the paper.
- ``sac``: the paper's Supervised Advantage Actor-Critic (SA2C). The same Q head, plus TD on sampled
  negative actions with reward 0 (as the paper's negative sampling); after ``train.warmup`` steps of
  plain SQN, each step's cross-entropy is weighted by the advantage ``A = Q(s, a) - mean_a' Q(s, a')``
  (stop-gradient; the mean over the played and the negative actions). Negative advantages are clipped
  to 0 (a negative weight would make the cross-entropy unbounded) and the weights are scaled to mean 1
  over the batch, so the step size does not depend on the Q scale.
- ``reinforce`` (Chen et al., WSDM 2019, "Top-K Off-Policy Correction for a REINFORCE Recommender
  System"): the actor's softmax is the policy pi; the supervised cross-entropy plus ``train.pg_weight`` times
  the policy-gradient loss ``-lambda_K * min(pi/beta, c) * R * log pi(a|s)`` (its weights scaled to mean 1
  over the batch; the pure policy gradient, without the cross-entropy, collapsed MovieLens NDCG@10 from
  0.109 to 0.025: half of the centred ratings are negative and push their songs away),
  with R the discounted return of the logged rewards from that step to the end of the window, beta a
  learned behaviour policy (a softmax head on the encoder's states with their gradient blocked, as the
  paper does), c = ``train.weight_cap``, and the top-K correction ``lambda_K = K (1 - pi)^(K-1)``
  (K = ``train.topk``; 0 = plain off-policy REINFORCE, lambda = 1). pi and beta are stop-gradient.

Everything here is pure torch over one batch; the step functions that call it (with the optimisers and
the critic) live in :mod:`whatnext.rl.algorithms`. The extra state (heads, target network, their
optimiser, the step counter for the warm-up) is :class:`OffPolicy`, saved in checkpoints under
``offpolicy`` / ``offpolicy_opt`` and restored on resume.

Ranking with the Q head (``sqn``, ``sac``; ``recommend.q_beta``): a list is ranked by
``log pi(a | s) + q_beta * Q(s, a)``, the supervised softmax's log-probability (up to a row constant)
plus the Q head's estimate of the logged return of recommending ``a``, over the softmax's
:data:`Q_POOL` best items (plus the critic's slate when ``model.rerank > 0``). ``q_beta = 0`` is the
softmax alone, bit for bit. Xin et al. rank by the supervised head (their Q head only shapes the
encoder); the Q term is how the learned rewards reach the list (README "Off-policy RL"). The Q head
is the only part inference reads (:func:`load_ranking_heads`); ``reinforce`` ranks by its policy,
which is the softmax itself.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from whatnext.data.dataset import PAD
from whatnext.rl.batch import Batch

if TYPE_CHECKING:
    from whatnext.rl.agent import Agent

#: the algorithms of this module (each in algorithms.ALGORITHMS)
OFFPOLICY = ("sqn", "sac", "reinforce")
#: sac: uniformly drawn negative actions per step whose Q learns reward 0 (the paper's negative sampling)
SAC_NEGATIVES = 10
#: the algorithms whose Q head ranks with recommend.q_beta > 0 (reinforce's Q head is never trained)
RANKS_BY_Q = ("sqn", "sac")
#: with recommend.q_beta > 0, the Q head re-ranks this many of the softmax's best items (at least k)
Q_POOL = 100


class Candidates(NamedTuple):
    """The sampled softmax's candidates of a step (None under the full softmax)."""

    items: np.ndarray  #: sorted unique item indices
    vectors: np.ndarray  #: their output vectors (detached)
    log_pi: np.ndarray  #: their log inclusion probabilities (the logQ correction)


class Heads(nn.Module):
    """A Q head and a behaviour-policy head on the encoder's states: ``head(h) . e_a + bias_a`` each."""

    def __init__(self, width: int, dim: int, n_items: int) -> None:
        super().__init__()
        self.q = nn.Linear(width, dim)
        self.q_bias = nn.Parameter(torch.zeros(n_items))
        self.beta = nn.Linear(width, dim)
        self.beta_bias = nn.Parameter(torch.zeros(n_items))

    def q_values(self, h: torch.Tensor, e: torch.Tensor, items: torch.Tensor | None) -> torch.Tensor:
        """Q of every candidate (N, C) for states (N, width) and candidate vectors (C, dim); items None = all."""
        return self.q(h) @ e.T + (self.q_bias if items is None else self.q_bias[items])

    def beta_logits(self, h: torch.Tensor, e: torch.Tensor, items: torch.Tensor | None) -> torch.Tensor:
        """The behaviour policy's logits (N, C) over the candidates."""
        return self.beta(h) @ e.T + (self.beta_bias if items is None else self.beta_bias[items])


class OffPolicy(nn.Module):
    """The off-policy state an Agent trains with: heads, target network (actor + heads copies), step count."""

    def __init__(self, heads: Heads, actor: nn.Module) -> None:
        super().__init__()
        self.heads = heads
        self.target_actor = copy.deepcopy(actor)
        self.target_heads = copy.deepcopy(heads)
        for p in (*self.target_actor.parameters(), *self.target_heads.parameters()):
            p.requires_grad_(False)
        self.register_buffer("steps", torch.zeros((), dtype=torch.int64))

    @torch.no_grad()
    def update_target(self, actor: nn.Module, tau: float) -> None:
        """Polyak-average the target network towards the online one: target <- (1 - tau) target + tau online."""
        for online, target in ((actor, self.target_actor), (self.heads, self.target_heads)):
            for p, t in zip(online.parameters(), target.parameters(), strict=True):
                t.mul_(1.0 - tau).add_(p.detach(), alpha=tau)
        self.steps += 1


def attach(agent: Agent) -> None:
    """Give a waking agent its off-policy state and optimiser when its algorithm needs them (else None)."""
    agent.offpolicy, agent.offpolicy_opt = None, None
    if agent.cfg.train.algorithm not in OFFPOLICY:
        return
    heads = Heads(agent.cfg.model.hidden_size, agent.actor.out_items.dim, agent.args["n_items"])
    mod = OffPolicy(heads, agent.actor).to(agent.device)
    agent.offpolicy = mod
    agent.q_heads = mod.heads if agent.cfg.train.algorithm in RANKS_BY_Q else None
    agent.offpolicy_opt = torch.optim.Adam(mod.heads.parameters(), lr=agent.cfg.train.actor_lr)


def load_ranking_heads(agent: Agent, payload: dict[str, Any]) -> None:
    """Give an inference agent the Q head of an ``sqn`` / ``sac`` checkpoint (for ``recommend.q_beta``), checked."""
    from whatnext.rl.payload import check_weights

    agent.q_heads = None
    if payload.get("algorithm") not in RANKS_BY_Q or not isinstance(payload.get("offpolicy"), dict):
        return
    heads = Heads(agent.cfg.model.hidden_size, agent.actor.out_items.dim, agent.args["n_items"])
    saved = {k.removeprefix("heads."): v for k, v in payload["offpolicy"].items()
             if isinstance(k, str) and k.startswith("heads.")}
    check_weights("offpolicy heads", saved, heads.state_dict())
    heads.load_state_dict(saved)
    agent.q_heads = heads.to(agent.device).eval()


def q_beta(agent: Agent) -> float:
    """``recommend.q_beta`` when the agent has a Q head that ranks (``sqn``, ``sac``), else 0."""
    return float(agent.cfg.recommend.q_beta) if getattr(agent, "q_heads", None) is not None else 0.0


@torch.no_grad()
def q_scores(agent: Agent, inputs: np.ndarray, lengths: np.ndarray, items: np.ndarray) -> np.ndarray:
    """``Q(s, a)`` (B, P) of candidate items (B, P) after right-padded histories (B, W); 0 at padding (-1)."""
    heads = agent.q_heads
    assert heads is not None
    dev = agent.device
    h = agent.actor.hidden(torch.from_numpy(inputs).to(dev))
    h = h[torch.arange(len(lengths), device=dev), torch.from_numpy(lengths).to(dev) - 1]
    cand = torch.from_numpy(np.maximum(items, 0)).to(dev)
    e = agent.actor.out_items(cand)  # (B, P, dim)
    q = torch.einsum("bd,bpd->bp", heads.q(h), e) + heads.q_bias[cand]
    return np.where(items >= 0, q.cpu().numpy().astype(np.float64), 0.0)


def payload(agent: Agent) -> dict[str, Any]:
    """The checkpoint entries of the off-policy state ({} for the other algorithms)."""
    if agent.offpolicy is None or agent.offpolicy_opt is None:
        return {}
    return {"offpolicy": agent.offpolicy.state_dict(), "offpolicy_opt": agent.offpolicy_opt.state_dict()}


def returns(rewards: np.ndarray, gamma: float) -> np.ndarray:
    """Discounted returns within each window: ``R[:, j] = sum_{t >= j} gamma^(t-j) r[:, t]`` (padding is 0)."""
    w = rewards.shape[1]
    t = np.arange(w)
    disc = np.where(t[:, None] >= t[None, :], float(gamma) ** np.maximum(t[:, None] - t[None, :], 0), 0.0)
    return (rewards.astype(np.float64) @ disc).astype(np.float32)


def topk_correction(pi: torch.Tensor, k: int) -> torch.Tensor:
    """Chen et al.'s top-K factor ``lambda_K = K (1 - pi)^(K-1)``, the derivative of 1 - (1 - pi)^K; 1 when k = 0."""
    if k <= 0:
        return torch.ones_like(pi)
    return k * (1.0 - pi) ** (k - 1)


def capped_weights(pi: torch.Tensor, beta: torch.Tensor, cap: float) -> torch.Tensor:
    """Importance weights ``min(pi / beta, cap)`` (beta floored at 1e-12)."""
    return torch.clamp(pi / beta.clamp_min(1e-12), max=cap)


class Step(NamedTuple):
    """What the losses of one batch share: valid-step states, actions, rewards and the candidates."""

    h: torch.Tensor  #: encoder states at real steps (N, width)
    actions: torch.Tensor  #: the played items (N,)
    rewards: torch.Tensor  #: their logged rewards (N,)
    e: torch.Tensor  #: candidate vectors (C, dim), detached; C = catalogue under the full softmax
    items: torch.Tensor | None  #: candidate item indices (sampled softmax) or None (all items)
    pos: torch.Tensor  #: where each action sits among the candidates (N,)
    log_pi: torch.Tensor | None  #: the candidates' logQ correction (sampled softmax) or None


def prepare(agent: Agent, batch: Batch, hidden: torch.Tensor, cands: Candidates | None) -> Step:
    """The real steps of a batch, as the losses read them."""
    dev = hidden.device
    valid_np = batch.targets != PAD
    valid = torch.from_numpy(valid_np).to(dev)
    actions = batch.targets[valid_np]
    r = torch.from_numpy(np.asarray(batch.rewards, dtype=np.float32)[valid_np]).to(dev)
    if cands is None:
        e = agent.actor.out_items.all().detach()
        items, pos, log_pi = None, torch.from_numpy(actions).to(dev), None
    else:
        e = torch.from_numpy(cands.vectors).to(dev)
        items = torch.from_numpy(cands.items).to(dev)
        pos = torch.from_numpy(np.searchsorted(cands.items, actions)).to(dev)
        log_pi = torch.from_numpy(cands.log_pi).to(dev, e.dtype)
    return Step(hidden[valid], torch.from_numpy(actions).to(dev), r, e, items, pos, log_pi)


@torch.no_grad()
def _td_targets(agent: Agent, batch: Batch, s: Step, reward: torch.Tensor) -> torch.Tensor:
    """``r + gamma * max_a Q'(s_{t+1}, a)`` over the candidates, from the target network.

    The next state of step j is the target network's state at j + 1 of the same window, and for the
    window's last step its state after the window shifted by one (the window's inputs after the first,
    then the played item): what the next training window would read."""
    off = agent.offpolicy
    assert off is not None
    dev = s.h.device
    inputs = torch.from_numpy(batch.inputs).to(dev)
    th = off.target_actor.hidden(inputs)
    shifted = off.target_actor.hidden(torch.from_numpy(batch.targets).to(dev))
    lengths = torch.from_numpy(batch.lengths).to(dev)
    rows = torch.arange(len(lengths), device=dev)
    nxt = torch.cat([th[:, 1:], th[:, -1:]], dim=1).clone()
    nxt[rows, lengths - 1] = shifted[rows, lengths - 1]
    nxt = nxt[torch.from_numpy(batch.targets != PAD).to(dev)]
    e_t = off.target_actor.out_items.all() if s.items is None else off.target_actor.out_items(s.items)
    q_next = off.target_heads.q_values(nxt, e_t, s.items).max(dim=1).values
    return reward + agent.cfg.train.gamma * q_next


def sqn_loss(agent: Agent, batch: Batch, s: Step, ce: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
    """SQN: mean cross-entropy + q_weight * one-step TD error of the played action."""
    off = agent.offpolicy
    assert off is not None
    q_all = off.heads.q_values(s.h, s.e, s.items)
    q_sa = q_all.gather(1, s.pos[:, None])[:, 0]
    td = F.mse_loss(q_sa, _td_targets(agent, batch, s, s.rewards))
    loss = ce.mean() + agent.cfg.train.q_weight * td
    return loss, {"train/ce_loss": ce.mean().item(), "train/td_loss": td.item(), "train/q": q_sa.mean().item(),
                  "train/logged_reward": s.rewards.mean().item()}


def sac_loss(agent: Agent, batch: Batch, s: Step, ce: torch.Tensor,
             rng: np.random.Generator) -> tuple[torch.Tensor, dict[str, float]]:
    """SA2C: TD on the played and on sampled negative actions; the cross-entropy weighted by the advantage."""
    off = agent.offpolicy
    assert off is not None
    t = agent.cfg.train
    n_cand = len(s.e)
    neg = torch.from_numpy(rng.integers(0, n_cand, size=(len(s.pos), SAC_NEGATIVES))).to(s.pos.device)
    q_all = off.heads.q_values(s.h, s.e, s.items)
    q_sa = q_all.gather(1, s.pos[:, None])[:, 0]
    q_neg = q_all.gather(1, neg)
    y = _td_targets(agent, batch, s, s.rewards)
    y_neg = y - s.rewards  # reward 0, the same next state
    td = F.mse_loss(q_sa, y) + F.mse_loss(q_neg, y_neg[:, None].expand_as(q_neg))
    metrics = {"train/td_loss": td.item(), "train/q": q_sa.mean().item(), "train/logged_reward": s.rewards.mean().item()}
    if int(off.steps) < t.warmup:
        actor = ce.mean()
    else:
        with torch.no_grad():
            adv = q_sa - torch.cat([q_sa[:, None], q_neg], 1).mean(1)
            w = adv.clamp_min(0.0)
            w = w / w.mean().clamp_min(1e-8)
        actor = (w * ce).mean()
        metrics["train/advantage"] = adv.mean().item()
    metrics["train/ce_loss"] = ce.mean().item()
    return actor + t.q_weight * td, metrics


def reinforce_loss(agent: Agent, batch: Batch, s: Step, ce: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
    """Top-K off-policy corrected REINFORCE on the logged returns, plus the behaviour head's cross-entropy."""
    off = agent.offpolicy
    assert off is not None
    t = agent.cfg.train
    log_p = -ce  # log pi(a | s) of the actor's softmax (logQ-corrected under the sampled one)
    beta_logits = off.heads.beta_logits(s.h.detach(), s.e, s.items)
    if s.log_pi is not None:
        beta_logits = beta_logits - s.log_pi
    beta_ce = F.cross_entropy(beta_logits, s.pos, reduction="none")
    with torch.no_grad():
        pi, beta = log_p.exp(), (-beta_ce).exp()
        weight = topk_correction(pi, t.topk) * capped_weights(pi, beta, t.weight_cap)
    valid = batch.targets != PAD
    ret = torch.from_numpy(returns(np.asarray(batch.rewards, dtype=np.float32), t.gamma)[valid]).to(log_p.device)
    # the policy-gradient term beside the supervised one, its weights scaled to mean 1 over the batch so that
    # pg_weight alone sets the balance (lambda_K alone is up to K)
    pg = -(weight / weight.mean().clamp_min(1e-8) * ret * log_p).mean()
    loss = ce.mean() + t.pg_weight * pg + beta_ce.mean()
    return loss, {"train/pg_loss": pg.item(), "train/beta_loss": beta_ce.mean().item(),
                  "train/ce_loss": ce.mean().item(), "train/weight": weight.mean().item(),
                  "train/logged_reward": s.rewards.mean().item()}
