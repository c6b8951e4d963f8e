"""Models: the item table (``items``), the actor and critic networks (``lstm``, ``transformer``), and the registry
behind ``model.name`` (``registry``). Every module takes primitive constructor arguments so a
checkpoint can rebuild it.

May import: torch and the standard library. Never the data, the learning code or evaluation: a
network sees tensors, not datasets.
"""

from whatnext.models.items import ItemTable
from whatnext.models.lstm import CRITIC_EXTRA, AgentModel, CriticModel
from whatnext.models.registry import EXTRA_ARGS, MODELS, build
from whatnext.models.transformer import TransformerAgent

__all__ = ["CRITIC_EXTRA", "EXTRA_ARGS", "MODELS", "AgentModel", "CriticModel", "ItemTable", "TransformerAgent", "build"]
