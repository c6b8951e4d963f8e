"""What every actor shares, whatever reads the history: the item tables, the head to a proto-action, and
the distance logits. Subclasses build their sequence encoder between :meth:`_tables` and :meth:`_head`,
so parameters are registered (and initialised from the seed) in the order the actors always had.
"""

from __future__ import annotations

import torch
from torch import nn

from whatnext.models.items import ItemTable


class ProtoActor(nn.Module):
    """Base of the actors: ``items`` read the history, ``out_items`` are where proto-actions point."""

    items: ItemTable
    out_items: ItemTable
    #: whether padding after a history can change the proto-action's bits (False: the caller may cut it off)
    reads_padding: bool = True

    def _tables(self, n_items: int, feature_dim: int, learned_dim: int) -> None:
        self.items = ItemTable(n_items, feature_dim, learned_dim)
        # untied output table: where proto-actions point (the item space recommendations live in)
        self.out_items = ItemTable(n_items, feature_dim, learned_dim) if learned_dim else self.items

    def _head(self, width: int, dropout: float, learned_dim: int) -> None:
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(width, self.items.dim)
        # logits = -||proto - item||^2 * exp(log_scale): a softmax over distances (hybrid algorithms)
        self.log_scale = nn.Parameter(torch.tensor(0.0 if learned_dim else 3.0))

    def hidden(self, hist: torch.Tensor) -> torch.Tensor:
        """The sequence encoder's states after every position (B, W, width); ``sequence`` is ``_out`` of them."""
        raise NotImplementedError

    def _out(self, h: torch.Tensor) -> torch.Tensor:
        out = self.head(self.drop(h))
        # normalised features live in [0, 1]: keep proto-actions inside that box
        return torch.sigmoid(out) if self.items.learned_dim == 0 else out

    def logits(self, proto: torch.Tensor, item_vectors: torch.Tensor | None = None) -> torch.Tensor:
        """Scores of every item for each proto-action: -scale * squared distance (..., n_items)."""
        e = self.out_items.all() if item_vectors is None else item_vectors
        # -(|p|^2 - 2 p.e + |e|^2); |p|^2 is constant per row, so it is left out of the softmax
        return (2.0 * proto @ e.T - (e * e).sum(-1)) * self.log_scale.exp()
