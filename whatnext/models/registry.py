"""The model registry behind ``model.name``: name -> (actor class, critic class).

A registry lists the architectures; it imports them, never what uses them.
"""

from __future__ import annotations

from typing import Any

from whatnext.models.lstm import AgentModel, CriticModel

#: model.name -> (actor class, critic class). The legacy ``model, lstm`` maps to "lstm".
MODELS: dict[str, tuple[type[AgentModel], type[CriticModel]]] = {
    "lstm": (AgentModel, CriticModel),
}


def build(name: str, args: dict[str, Any]) -> tuple[AgentModel, CriticModel]:
    """Actor and critic of registry entry ``name`` from primitive ``args``."""
    actor_cls, critic_cls = MODELS[name]
    return actor_cls(**args), critic_cls(**args)
