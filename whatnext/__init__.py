"""whatnext ("What Next?"): reinforcement-learning next-item recommenders.

The Python API is :mod:`whatnext.engine` (the CLI, :mod:`whatnext.cli`, is a thin layer over
it). The rooms, each with its own rules on what it may import (see their docstrings and the
README's layout section): ``config`` < ``data`` < ``models`` < ``rl`` < ``evaluation`` <
``engine`` < ``cli``, on a ground floor of ``errors``, ``checkpoints`` and ``search``.

This file imports nothing, so ``import whatnext`` stays instant: ``whatnext.Recommender`` (a run
loaded once, see :mod:`whatnext.serving`) is imported on first use.
"""

from typing import Any

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name == "Recommender":
        from whatnext.serving.recommender import Recommender

        return Recommender
    raise AttributeError(f"module 'whatnext' has no attribute {name!r}")
