"""Training batches: windows of the flat histories ending before chosen target positions.

Shared by the Agent and the algorithms registry (which must not import the Agent it serves).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from whatnext.data.dataset import PAD, Dataset

#: how many of the last item's most frequent training successors join the re-rank slate
SUCCESSORS = 10


@dataclass
class Batch:
    """Windows of training sequences: ``inputs[b, j]`` is followed by ``targets[b, j]``."""

    inputs: np.ndarray  # (B, W) item indices, PAD on the right
    targets: np.ndarray  # (B, W) next items, PAD where inputs are PAD
    lengths: np.ndarray  # (B,)
    users: np.ndarray  # (B,)
    #: (B, W) float32: the logged reward of ``targets[b, j]`` (data.reward_col, mapped and transformed);
    #: 1.0 for every real play when the data has no reward column; 0.0 at padding
    rewards: np.ndarray

    @property
    def last_target(self) -> np.ndarray:
        """The item played right after each whole window."""
        return self.targets[np.arange(len(self.lengths)), self.lengths - 1]

    @property
    def last_reward(self) -> np.ndarray:
        """The logged reward of :attr:`last_target`."""
        return self.rewards[np.arange(len(self.lengths)), self.lengths - 1]


def make_batch(dataset: Dataset, positions: np.ndarray, window: int) -> Batch:
    """The windows ending just before flat target positions ``positions``."""
    h = dataset.histories
    users = np.searchsorted(h.offsets, positions, side="right") - 1
    lengths = np.minimum(window, positions - h.offsets[users])
    idx = (positions - lengths)[:, None] + np.arange(window)[None, :]
    valid = np.arange(window)[None, :] < lengths[:, None]
    top = len(h.items) - 1
    inputs = np.where(valid, h.items[np.minimum(idx, top)], PAD)
    targets = np.where(valid, h.items[np.minimum(idx + 1, top)], PAD)
    logged = h.rewards[np.minimum(idx + 1, top)] if h.rewards is not None else np.float32(1.0)
    rewards = np.where(valid, logged, np.float32(0.0)).astype(np.float32)
    return Batch(inputs, targets, lengths, users, rewards)
