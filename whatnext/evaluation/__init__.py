"""Evaluation: metrics as pure functions over ranked indices (``metrics``), the leave-one-out
protocol (``protocol``), the baselines (``baselines``; those that learn are trained once as runs of
their own by ``baseline_runs``), validation at checkpoints (``validation``) and diversified lists (``diversify``).

May import: numpy, :mod:`whatnext.config`, :mod:`whatnext.data`, the ground floor, and the learning
code (``whatnext.rl``: the supervised baseline and validation train or read an Agent).
``metrics`` and ``diversify`` import nothing of whatnext, so the learning code may use them.
Never the engine or the CLI.

Nothing is imported here, so importing one module does not load the others.
"""
