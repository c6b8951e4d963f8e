"""whatnext ("What Next?"): reinforcement-learning next-item recommenders.

The Python API is :mod:`whatnext.engine` (the CLI is a thin layer over it); the building
blocks are :class:`whatnext.state.State`, :mod:`whatnext.data` and :mod:`whatnext.config`.
"""

__version__ = "0.1.0"
