"""The LSTM actor (AgentModel) and critic (CriticModel), built from primitive arguments.

Every module here takes only ints, floats and strings in its constructor, so a checkpoint
can rebuild it from the ``model_args`` it stores (as nanoGPT does).

Shapes: a batch of histories is a (B, W) int64 tensor of item indices right-padded with -1,
with lengths (B,). Item vectors come from :class:`~whatnext.models.items.ItemTable`: the
catalogue's fixed features, a learned table, or both side by side.
"""

from __future__ import annotations

import torch
from torch import nn

from whatnext.models.actor import ProtoActor
from whatnext.models.items import ItemTable


def _encode(lstm: nn.LSTM, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Run the LSTM over right-padded inputs; return all outputs (B, W, H) and the last real one (B, H).

    Padding sits after the real items, so outputs up to each length are exact without packing.
    """
    out, _ = lstm(x)
    last = out[torch.arange(len(x), device=x.device), (lengths - 1).clamp(min=0)]
    return out, last


class AgentModel(ProtoActor):
    """The actor: an LSTM over a history's item vectors -> a proto-action in item-vector space.

    ``forward`` returns the proto-action after the last real item of each history;
    ``sequence`` returns one after every position (for whole-sequence training).
    """

    #: steps after a history's last item are never read into its output (the critic's LSTM alike)
    reads_padding = False

    def __init__(self, n_items: int, feature_dim: int, learned_dim: int, hidden_size: int = 64,
                 num_layers: int = 1, dropout: float = 0.0) -> None:
        super().__init__()
        self._tables(n_items, feature_dim, learned_dim)
        self.lstm = nn.LSTM(self.items.dim, hidden_size, num_layers=num_layers, batch_first=True,
                            dropout=dropout if num_layers > 1 else 0.0)
        self._head(hidden_size, dropout, learned_dim)

    def hidden(self, hist: torch.Tensor) -> torch.Tensor:
        """The encoder's states after every position (B, W, hidden_size): what extra heads (Q, behaviour) read."""
        return self.lstm(self.items(hist))[0]

    def sequence(self, hist: torch.Tensor) -> torch.Tensor:
        """Proto-actions after every position of right-padded histories: (B, W, dim)."""
        out, _ = self.lstm(self.items(hist))
        return self._out(out)

    def forward(self, hist: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Proto-action after each history's last item: (B, dim)."""
        _, last = _encode(self.lstm, self.items(hist), lengths)
        return self._out(last)


#: per-candidate inputs of the critic's head: seen flag, log1p(transition count), transition share
CRITIC_EXTRA = 3


class CriticModel(nn.Module):
    """The critic: an LSTM over a history, joined with a candidate item's vector -> a value.

    Besides the candidate's vector the head sees ``n_extra`` per-candidate inputs: whether the
    candidate is already in the history window (users repeat songs at their own rate) and how
    often it followed the history's last item in training (see :mod:`whatnext.rl.transitions`).
    """

    def __init__(self, n_items: int, feature_dim: int, learned_dim: int, hidden_size: int = 64,
                 num_layers: int = 1, dropout: float = 0.0) -> None:
        super().__init__()
        self.items = ItemTable(n_items, feature_dim, learned_dim)
        dim = self.items.dim
        self.lstm = nn.LSTM(dim, hidden_size, num_layers=num_layers, batch_first=True,
                            dropout=dropout if num_layers > 1 else 0.0)
        self.n_extra = CRITIC_EXTRA
        self.head = nn.Sequential(nn.Linear(hidden_size + dim + self.n_extra, hidden_size), nn.ReLU(),
                                  nn.Dropout(dropout), nn.Linear(hidden_size, 1))

    def encode(self, hist: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """The history's summary (B, H), reusable for scoring many candidates."""
        return _encode(self.lstm, self.items(hist), lengths)[1]

    def score(self, summary: torch.Tensor, candidate: torch.Tensor, extra: torch.Tensor | None = None) -> torch.Tensor:
        """Values of candidate vectors (B, M, dim) with extra inputs (B, M, n_extra), given summaries (B, H): (B, M).

        ``extra`` None means zeros (a candidate not in the history, never seen after its last item).
        """
        if extra is None:
            extra = torch.zeros(*candidate.shape[:-1], self.n_extra, device=candidate.device)
        summary = summary[:, None, :].expand(-1, candidate.shape[1], -1)
        x = torch.cat([summary, candidate, extra.to(candidate.dtype)], dim=-1)
        return self.head(x).squeeze(-1)

    def forward(self, hist: torch.Tensor, lengths: torch.Tensor, candidate: torch.Tensor,
                extra: torch.Tensor | None = None) -> torch.Tensor:
        """Value of each (history, candidate vector) pair: (B,) for (B, dim) candidates."""
        return self.score(self.encode(hist, lengths), candidate[:, None, :], None if extra is None else extra[:, None, :])[:, 0]
