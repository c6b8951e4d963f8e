"""whatnext ("What Next?"): reinforcement-learning next-item recommenders.

The Python API is :mod:`whatnext.engine` (the CLI, :mod:`whatnext.cli`, is a thin layer over
it). The rooms, each with its own rules on what it may import (see their docstrings and the
README's layout section): ``config`` < ``data`` < ``models`` < ``rl`` < ``evaluation`` <
``engine`` < ``cli``, on a ground floor of ``errors``, ``checkpoints`` and ``search``.

This file imports nothing, so ``import whatnext`` stays instant.
"""

__version__ = "0.1.0"
