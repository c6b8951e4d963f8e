"""The item table: every model's item vectors (fixed catalogue features, a learned table, or both).

Built from primitive arguments so a checkpoint can rebuild it. Imports only torch.
"""

from __future__ import annotations

import torch
from torch import nn


class ItemTable(nn.Module):
    """Item vectors: fixed features (a buffer) and/or a learned embedding, concatenated.

    Index -1 (padding) maps to a zero vector.
    """

    features: torch.Tensor

    def __init__(self, n_items: int, feature_dim: int = 0, learned_dim: int = 0) -> None:
        super().__init__()
        if feature_dim + learned_dim == 0:
            raise ValueError("an ItemTable needs features or a learned embedding")
        self.n_items, self.feature_dim, self.learned_dim = n_items, feature_dim, learned_dim
        self.register_buffer("features", torch.zeros(n_items + 1, feature_dim))
        self.learned = nn.Embedding(n_items + 1, learned_dim, padding_idx=n_items) if learned_dim else None
        if self.learned is not None:
            nn.init.normal_(self.learned.weight, std=0.1)
            with torch.no_grad():
                self.learned.weight[n_items].zero_()

    @property
    def dim(self) -> int:
        """Size of an item vector."""
        return self.feature_dim + self.learned_dim

    def set_features(self, features: torch.Tensor) -> None:
        """Copy the catalogue's (n_items, feature_dim) normalised features into the table."""
        with torch.no_grad():
            self.features[: self.n_items].copy_(features)

    def init_learned(self, vectors: torch.Tensor, std: float = 0.1) -> None:
        """Start the learned part from (n_items, learned_dim) ``vectors`` rescaled to ``std``
        (the random init's); all-zero rows (items without evidence) keep their random start."""
        if self.learned is None:
            raise ValueError("this ItemTable has no learned part")
        known = vectors.abs().sum(dim=1) > 0
        if not bool(known.any()):
            return
        scaled = vectors[known] * (std / vectors[known].std().clamp(min=1e-12))
        with torch.no_grad():
            self.learned.weight[: self.n_items][known] = scaled.to(self.learned.weight.dtype)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        """Vectors of items ``idx`` (any shape; -1 = padding -> zeros)."""
        safe = torch.where(idx < 0, torch.full_like(idx, self.n_items), idx)
        parts = []
        if self.feature_dim:
            parts.append(self.features[safe])
        if self.learned is not None:
            parts.append(self.learned(safe))
        return parts[0] if len(parts) == 1 else torch.cat(parts, dim=-1)

    def all(self) -> torch.Tensor:
        """Every item's vector, (n_items, dim)."""
        return self.forward(torch.arange(self.n_items, device=self.features.device))
