"""Serving: a recommender loaded once that answers from memory (:class:`Recommender`), the
durable log of live plays (``plays``), the HTTP app and server (``http``, ``server``: FastAPI on
uvicorn, imported only when serving) and the export of the actor for other runtimes (``export``).

Owns: loading a run's data, checkpoint and neighbour index once; turning ranked item indices
into result rows (the fields ``whatnext recommend --json`` prints); the play log; hot reload.

May import: everything below the engine (config, data, models, rl, evaluation, the ground
floor) and fastapi, uvicorn, prometheus_client (lazily, inside functions); never
``whatnext.engine``, ``whatnext.cli``, typer or rich. ``import whatnext.serving`` stays light:
:class:`Recommender` is loaded on first use.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Recommender"]


def __getattr__(name: str) -> Any:
    if name == "Recommender":
        from whatnext.serving.recommender import Recommender

        return Recommender
    raise AttributeError(f"module 'whatnext.serving' has no attribute {name!r}")
