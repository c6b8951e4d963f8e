"""An Agent from a checkpoint: weights, optimiser states and tuned values restored after every check
(:mod:`whatnext.rl.payload`), an inference-ready Agent rebuilt from a payload, and the original's two model
files (``model_agent_path`` / ``model_critic_path``) written and read."""

from __future__ import annotations

from typing import Any

import torch

from whatnext import checkpoints
from whatnext.config import Config
from whatnext.data import Dataset
from whatnext.errors import CheckpointError, ConfigError
from whatnext.rl import offpolicy
from whatnext.rl import payload as payload_checks
from whatnext.rl.agent import Agent
from whatnext.rl.state import State


def restore(agent: Agent, payload: dict[str, Any], *, optimisers: bool = False) -> None:
    """Load a checkpoint's weights (and optimiser states) into ``agent``; refuse other data and
    anything malformed (:mod:`whatnext.rl.payload`) with a CheckpointError."""
    if not isinstance(payload, dict):
        raise CheckpointError(f"the checkpoint holds {payload_checks.kind(payload)}, expected a table; train a new run")
    agent.state.catalogue.check_checkpoint(payload)
    cat = agent.state.catalogue
    args = payload_checks.check_model_args(payload, len(cat), len(cat.feature_names))
    if args != agent.args:
        raise CheckpointError(
            f"the checkpoint's model {args} differs from the config's {agent.args}; "
            f"use the same model settings or train a new run"
        )
    for part, module in (("actor", agent.actor), ("critic", agent.critic)):
        payload_checks.check_weights(part, payload.get(part), module.state_dict())
    tuned = payload_checks.tuned_values(payload, agent.cfg.model.rerank_weight)
    if optimisers:
        payload_checks.check_resume_fields(payload)
    try:
        agent.actor.load_state_dict(payload["actor"])
        agent.critic.load_state_dict(payload["critic"])
    except (RuntimeError, KeyError) as e:
        first = str(e).strip().splitlines()[-1].strip()[:160]
        raise CheckpointError(
            f"the checkpoint's weights do not fit this version's {agent.cfg.model.name} model ({first}); "
            f"train a new run"
        ) from None
    if optimisers:
        assert agent.actor_opt is not None and agent.critic_opt is not None
        payload_checks.load_optimiser("actor_opt", agent.actor_opt, payload)
        payload_checks.load_optimiser("critic_opt", agent.critic_opt, payload)
        if agent.offpolicy is not None:
            _restore_offpolicy(agent, payload)
    agent.rerank_weight, agent.rerank_weight_seen = tuned["rerank_weight"], tuned["rerank_weight_seen"]
    agent.score_scale, agent.score_scale_seen = tuned["score_scale"], tuned["score_scale_seen"]
    agent._vectors = agent._div_space = None


def _restore_offpolicy(agent: Agent, payload: dict[str, Any]) -> None:
    """Resume sqn / sac / reinforce: their heads, target network, step count and optimiser, checked first."""
    assert agent.offpolicy is not None and agent.offpolicy_opt is not None
    if "offpolicy" not in payload:
        raise CheckpointError(
            f"the checkpoint has no off-policy heads (it was trained with train.algorithm = "
            f"{str(payload.get('algorithm'))[:20]!r}, not {agent.cfg.train.algorithm!r}); resume with its algorithm "
            f"or start the run again with --force")
    payload_checks.check_weights("offpolicy", payload["offpolicy"], agent.offpolicy.state_dict())
    agent.offpolicy.load_state_dict(payload["offpolicy"])
    payload_checks.load_optimiser("offpolicy_opt", agent.offpolicy_opt, payload)


def score_scales(agent: Agent) -> dict[str, float]:
    """The agent's calibrated score scales, as saved in checkpoints."""
    return {"score_scale": float(agent.score_scale), "score_scale_seen": float(agent.score_scale_seen)}


def export_legacy(agent: Agent, cfg: Config) -> None:
    """Also write actor and critic where the legacy model_agent_path / model_critic_path say."""
    import io

    for key, module in (("model_agent_path", agent.actor), ("model_critic_path", agent.critic)):
        target = getattr(cfg.paths, key)
        if not target:
            continue
        path = cfg.resolve(target)
        path.parent.mkdir(parents=True, exist_ok=True)
        buf = io.BytesIO()
        torch.save({"format_version": checkpoints.FORMAT_VERSION, "model_name": cfg.model.name,
                    "rerank_weight": float(agent.rerank_weight),
                    "rerank_weight_seen": float(agent.rerank_weight_seen), **score_scales(agent),
                    "model_args": dict(agent.args), "state_dict": module.state_dict(),
                    "fingerprint": agent.state.catalogue.fingerprint(), "config": cfg.to_dict()}, buf)
        checkpoints.write_atomic(path, buf.getvalue())


def load_legacy(cfg: Config, dataset: Dataset) -> Agent:
    """Inference mode of the original: read actor and critic from model_agent_path / model_critic_path."""
    parts = {}
    for key in ("model_agent_path", "model_critic_path"):
        target = getattr(cfg.paths, key)
        if not target:
            raise ConfigError(f"{cfg.source or 'config'}: 'train, no' needs {key} set to a trained model file")
        parts[key] = checkpoints.load(cfg.resolve(target), check=False)
    actor_p, critic_p = parts["model_agent_path"], parts["model_critic_path"]
    try:
        return agent_from_payload(cfg, dataset, {**actor_p, "actor": actor_p.get("state_dict"),
                                                 "critic": critic_p.get("state_dict")})
    except CheckpointError as e:  # name the files: "the checkpoint" alone does not say which
        files = " and ".join(str(cfg.resolve(getattr(cfg.paths, k))) for k in parts)
        raise CheckpointError(f"{files}: {e}") from None


def agent_from_payload(cfg: Config, dataset: Dataset, payload: dict[str, Any]) -> Agent:
    """An inference-ready Agent rebuilt from a checkpoint (its architecture and training-time model settings).

    Everything is checked before a tensor is built: the carried config values and ``model_args``
    against the bounds and the catalogue, then the weights' shapes against the model built on
    the meta device (no memory). Problems are CheckpointErrors.
    """
    if not isinstance(payload, dict):
        raise CheckpointError(f"the checkpoint holds {payload_checks.kind(payload)}, expected a table; train a new run")
    payload_checks.apply_carried_config(cfg, payload)
    cat = dataset.catalogue
    cat.check_checkpoint(payload, dataset.source)
    args = payload_checks.check_model_args(payload, len(cat), len(cat.feature_names))
    actor_shapes, critic_shapes = payload_checks.expected_shapes(cfg.model.name, args)
    payload_checks.check_weights("actor", payload.get("actor"), actor_shapes)
    payload_checks.check_weights("critic", payload.get("critic"), critic_shapes)
    agent = Agent(State(dataset), cfg, args=args, init_items=False)  # weights come next
    restore(agent, payload)
    offpolicy.load_ranking_heads(agent, payload)  # sqn / sac: the Q head ranks with recommend.q_beta
    agent.ready()
    return agent
