"""The self-attention actor (``model.name = "transformer"``), a SASRec-style encoder.

Same interface as the LSTM actor (:class:`whatnext.models.lstm.AgentModel`): ``sequence``
gives a proto-action after every position (the hybrid algorithm's every-step softmax),
``forward`` the one after each history's last item, ``logits`` scores every item by squared
distance. Histories are right-padded with -1, so with a causal mask a real position never
attends to padding (padding only ever comes after it): no key-padding mask is needed, and a
history's outputs do not depend on how far it was padded.

Positions are learned and counted from the first item of the window (slot 0 = the oldest
item read). Training windows and inference histories both start at slot 0, so a prefix is
encoded the same way in both.
"""

from __future__ import annotations

import torch
from torch import nn

from whatnext.models.actor import ProtoActor


class TransformerAgent(ProtoActor):
    """The actor: causal pre-norm self-attention over a history's item vectors -> a proto-action.

    ``hidden_size`` is the model width (a multiple of ``heads``), ``num_layers`` the number of
    blocks, ``window`` the most positions it reads (the length of its position table).
    """

    def __init__(self, n_items: int, feature_dim: int, learned_dim: int, hidden_size: int = 64,
                 num_layers: int = 1, dropout: float = 0.0, heads: int = 1, window: int = 50) -> None:
        super().__init__()
        if hidden_size % heads:
            raise ValueError(f"hidden_size {hidden_size} is not a multiple of heads {heads}")
        self._tables(n_items, feature_dim, learned_dim)
        self.window = window
        self.proj = nn.Linear(self.items.dim, hidden_size)
        self.positions = nn.Embedding(window, hidden_size)
        nn.init.normal_(self.positions.weight, std=0.02)
        block = nn.TransformerEncoderLayer(hidden_size, heads, dim_feedforward=hidden_size * 4, dropout=dropout,
                                           activation="gelu", batch_first=True, norm_first=True)
        # enable_nested_tensor off: that fast path needs a key-padding mask, which causal right padding does not need
        self.blocks = nn.TransformerEncoder(block, num_layers, norm=nn.LayerNorm(hidden_size), enable_nested_tensor=False)
        self._head(hidden_size, dropout, learned_dim)

    def encode(self, hist: torch.Tensor) -> torch.Tensor:
        """Hidden states after every position of right-padded histories (B, W, H); W <= window."""
        w = hist.shape[1]
        if w > self.window:
            raise ValueError(f"histories of {w} positions, the model reads at most {self.window}")
        pos = torch.arange(w, device=hist.device)
        x = self.drop(self.proj(self.items(hist)) + self.positions(pos)[None])
        mask = nn.Transformer.generate_square_subsequent_mask(w, device=hist.device, dtype=x.dtype)
        return self.blocks(x, mask=mask, is_causal=True)

    def hidden(self, hist: torch.Tensor) -> torch.Tensor:
        """The encoder's states after every position (B, W, hidden_size): what extra heads (Q, behaviour) read."""
        return self.encode(hist)

    def sequence(self, hist: torch.Tensor) -> torch.Tensor:
        """Proto-actions after every position of right-padded histories: (B, W, dim)."""
        return self._out(self.encode(hist))

    def forward(self, hist: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Proto-action after each history's last item: (B, dim)."""
        h = self.encode(hist)
        last = h[torch.arange(len(hist), device=hist.device), (lengths - 1).clamp(min=0)]
        return self._out(last)
