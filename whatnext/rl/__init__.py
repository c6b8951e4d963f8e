"""Reinforcement learning: :class:`~whatnext.rl.state.State` (histories and ``produce``), the
:class:`~whatnext.rl.agent.Agent` (actor + critic), the training
:class:`~whatnext.rl.environment.Environment` loop, the algorithm and reward registries, training
batches, item transitions, co-occurrence vectors, the training callbacks, the checks of a
checkpoint's payload before anything is built from it (``payload``), an Agent restored from a checkpoint
(``restore``), and training across processes
(``distributed``: torch.distributed under torchrun; ``launch``: ``whatnext train --nproc N``), and the
mean of a run's best checkpoints as a run of its own (``averaging``).

May import: torch, numpy, :mod:`whatnext.config`, :mod:`whatnext.data`, :mod:`whatnext.models`,
the ground floor (errors, checkpoints, runlock, safefiles, search) and the pure array helpers of evaluation
(``evaluation.diversify``, ``evaluation.metrics``). Never the engine or the CLI. The algorithm
registry never imports the Agent that looks algorithms up in it.

Nothing is imported here, so ``import whatnext.rl.callbacks`` stays free of torch.
"""
