"""``whatnext serve``: the HTTP app on uvicorn, one process or several workers.

One worker (the default) loads the :class:`~whatnext.serving.recommender.Recommender` before
the port opens, so a bad config or checkpoint is one line and an exit code, never a half-up
server. With ``workers > 1`` uvicorn starts that many processes, each loading its own copy
(memory times N) and sharing the play log, so a play acknowledged by one worker is in every
worker's next answer for that user; each worker keeps its own /metrics.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from whatnext.config import Config, load_config
from whatnext.errors import ConfigError

#: how the parent hands the settings to uvicorn's worker processes (they import the app by name)
SETTINGS_ENV = "WHATNEXT_SERVE_SETTINGS"


def plays_path(cfg: Config, run: str | None) -> Path:
    """Where the play log of a run lives by default: ``models_dir/<run>/plays.jsonl``."""
    from whatnext import checkpoints

    return checkpoints.run_folder(cfg.resolve(cfg.paths.models_dir), cfg.paths.run if run is None else run) / "plays.jsonl"


def build(settings: dict[str, Any]) -> Any:
    """The ASGI app for ``settings`` (config, overrides, run, checkpoint, plays, token, watch, max_body)."""
    from whatnext.serving.http import MAX_BODY, create_app
    from whatnext.serving.recommender import Recommender

    cfg = load_config(settings.get("config"), settings.get("overrides"))
    plays = settings.get("plays") or plays_path(cfg, settings.get("run"))
    rec = Recommender.load(cfg, run=settings.get("run"), checkpoint=settings.get("checkpoint"), plays=plays)
    return create_app(rec, token=settings.get("token"), watch=float(settings.get("watch", 3.0)),
                      max_body=int(settings.get("max_body") or MAX_BODY))


def app_from_settings() -> Any:
    """uvicorn's factory in each worker process: the settings the parent put in ``WHATNEXT_SERVE_SETTINGS``."""
    return build(json.loads(os.environ[SETTINGS_ENV]))


def _check_bind(host: str, port: int) -> None:
    """ConfigError when ``host:port`` cannot be listened on (in use, or not an address of this machine), before anything loads."""
    import errno
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        with socket.socket(infos[0][0], socket.SOCK_STREAM) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(infos[0][4])
    except OSError as e:
        fix = ("choose another --port (or stop what uses it)" if e.errno == errno.EADDRINUSE else
               "choose a --host of this machine (127.0.0.1: this machine only; 0.0.0.0: every interface)")
        raise ConfigError(f"--host {host} --port {port}: cannot listen there ({e.strerror or e}); {fix}") from None


def serve(config: str | Path | None = None, overrides: dict[str, Any] | None = None, *, run: str | None = None,
          checkpoint: str | Path | None = None, host: str = "127.0.0.1", port: int = 8000, workers: int = 1,
          token: str | None = None, plays: str | Path | None = None, watch: float = 3.0,
          log_level: str = "warning", ready: Any = None) -> dict[str, Any]:
    """Serve until stopped (Ctrl-C or SIGTERM); returns what was served. ``ready(app)``, when given, is
    called once the recommender is loaded, before the port opens."""
    import uvicorn

    if not 1 <= port <= 65535:
        raise ConfigError(f"--port is {port}, expected 1 to 65535")
    if not 1 <= workers <= 64:
        raise ConfigError(f"--workers is {workers}, expected 1 to 64")
    if not 0 <= watch <= 3600:
        raise ConfigError(f"--watch is {watch}, expected 0 (off) to 3600 seconds")
    if token is not None and len(token) < 8:
        raise ConfigError("--token is shorter than 8 characters; use a long random token (e.g. openssl rand -hex 16)")
    _check_bind(host, port)
    settings = {"config": None if config is None else str(Path(config).resolve()), "overrides": overrides or {},
                "run": run, "checkpoint": None if checkpoint is None else str(Path(checkpoint).resolve()),
                "plays": None if plays is None else str(Path(plays).resolve()), "token": token, "watch": watch}
    common: dict[str, Any] = {"host": host, "port": port, "log_level": log_level, "access_log": False, "timeout_graceful_shutdown": 5}
    if workers == 1:
        app = build(settings)
        if ready is not None:
            ready(app)
        uvicorn.run(app, **common)
        return {"host": host, "port": port, "workers": 1}
    app = build(settings)  # load once here: a bad config or checkpoint stops before any worker starts
    if ready is not None:
        ready(app)
    del app
    os.environ[SETTINGS_ENV] = json.dumps(settings)
    uvicorn.run("whatnext.serving.server:app_from_settings", factory=True, workers=workers, **common)
    return {"host": host, "port": port, "workers": workers}
