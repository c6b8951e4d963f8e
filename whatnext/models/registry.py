"""The model registry behind ``model.name``: name -> (actor class, critic class).

A registry lists the architectures; it imports them, never what uses them.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from whatnext.models.lstm import AgentModel, CriticModel
from whatnext.models.transformer import TransformerAgent

#: model.name -> (actor class, critic class). The legacy ``model, lstm`` maps to "lstm".
#: The transformer keeps the LSTM critic: the critic only re-ranks a short slate from a
#: history summary plus per-candidate inputs, and a second attention stack would double the
#: cost of every critic step for a network whose gradient reaches the actor only when
#: ``train.rl_weight`` > 0 (0 by default).
MODELS: dict[str, tuple[type[nn.Module], type[CriticModel]]] = {
    "lstm": (AgentModel, CriticModel),
    "transformer": (TransformerAgent, CriticModel),
}

#: Constructor arguments an actor takes beyond the shared ones (n_items, feature_dim,
#: learned_dim, hidden_size, num_layers, dropout), each named as its ``[model]`` config key.
EXTRA_ARGS: dict[str, tuple[str, ...]] = {
    "lstm": (),
    "transformer": ("heads", "window"),
}


def build(name: str, args: dict[str, Any]) -> tuple[Any, CriticModel]:
    """Actor and critic of registry entry ``name`` from primitive ``args`` (the critic gets the shared ones)."""
    actor_cls, critic_cls = MODELS[name]
    shared = {k: v for k, v in args.items() if k not in EXTRA_ARGS[name]}
    return actor_cls(**args), critic_cls(**shared)
