"""Helpers for the serving tests: a tiny trained project and a real ``whatnext serve`` process.

Servers listen on 127.0.0.1 only, on a port the OS says is free; every wait is bounded.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Self

import httpx
from core_helpers import frames

TOML = """[data]
path = "events.csv"
items_path = "items.csv"

[model]
window = 5
hidden_size = 8
rerank = {rerank}

[train]
epochs = 2
batch_size = 8
checkpoint_every = 20
"""


def trained_project(folder: Path, rerank: int = 10) -> Path:
    """30 users x 15 plays over 40 songs, trained 2 epochs (checkpoints at steps 20 and 24); returns the config."""
    from whatnext import engine

    folder.mkdir(parents=True, exist_ok=True)
    events, items = frames(n_users=30, n_events=15, n_items=40)
    events.to_csv(folder / "events.csv", index=False)
    items.to_csv(folder / "items.csv", index=False)
    cfg = folder / "whatnext.toml"
    cfg.write_text(TOML.format(rerank=rerank), encoding="utf-8")
    engine.train(cfg)
    return cfg


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """``python -m whatnext serve`` in a child process, on 127.0.0.1 and a free port."""

    def __init__(self, config: Path, *args: str, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = config.parent / f"serve-{self.port}.log"
        cmd = [sys.executable, "-m", "whatnext", "serve", "--config", str(config), "--port", str(self.port), *args]
        self.proc = subprocess.Popen(cmd, stdout=self.log.open("wb"), stderr=subprocess.STDOUT, cwd=config.parent,
                                     env={**os.environ, **(env or {})})

    def wait(self, timeout: float = 90.0) -> Self:
        """Until /health answers (bounded); the server's output when it died or never answered."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited {self.proc.returncode}: {self.output()}")
            try:
                if httpx.get(self.url + "/health", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"server did not answer within {timeout} s: {self.output()}")

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def __enter__(self) -> Self:
        return self.wait()

    def __exit__(self, *exc: object) -> None:
        self.kill(signal.SIGTERM)
