"""A new project: ``whatnext init`` writes a commented config (TOML or the original setup.txt), the demo data if
asked, or the settings of an existing config re-homed to another folder (``init --from setup.txt``)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from whatnext.config import LEGACY_NAME, TOML_NAME, Config, load_config, to_toml
from whatnext.errors import ConfigError, OutputExistsError, WhatnextError
from whatnext.safefiles import exclusive, fresh


def init_project(folder: str | Path = ".", *, legacy: bool = False, demo: bool = False, force: bool = False,
                 source: str | Path | None = None) -> dict[str, Any]:
    """Write a commented config (``whatnext.toml``, or ``setup.txt`` with ``legacy``) into ``folder``.

    With ``demo`` the demo dataset is written to ``folder/data/`` and the config points at it.
    With ``source`` (a setup.txt, or any config file) its settings are written instead of the
    defaults, relative paths rewritten for ``folder``: ``init --from setup.txt``.
    Existing files are never overwritten without ``force``; nothing is written if any would be.
    """
    from whatnext.config.legacy import to_setup
    from whatnext.data import demo as demo_mod

    root = Path(folder)
    if root.exists() and not root.is_dir():
        raise OutputExistsError(f"{root}: exists and is not a folder; choose another DIR")
    cfg_path = root / (LEGACY_NAME if legacy else TOML_NAME)
    targets = [cfg_path]
    if demo:
        targets += [root / "data" / demo_mod.EVENTS_FILE, root / "data" / demo_mod.ITEMS_FILE]
        if legacy:
            targets.append(root / "data" / "demo_long.csv")
    existing = [p for p in targets if p.exists()]
    if existing and not force:
        raise OutputExistsError(f"{existing[0]}: already exists, not overwritten; pass --force to replace it")
    cfg = Config(source=cfg_path) if source is None else _converted(source, cfg_path)
    if legacy and source is None:
        cfg.paths.model_agent_path = "models/agent.pt"
        cfg.paths.model_critic_path = "models/critic.pt"
    written: list[str] = []
    try:
        root.mkdir(parents=True, exist_ok=True)
        if demo:
            ev, it = demo_mod.write(root / "data")
            written += [str(ev), str(it)]
            cfg.data.path = f"data/{demo_mod.EVENTS_FILE}"
            if not legacy:  # setup.txt has no key for an item table: it gets one long table
                cfg.data.items_path = f"data/{demo_mod.ITEMS_FILE}"
                # full/skip as logged rewards (setup.txt cannot hold the map: the legacy demo keeps the original rewards)
                cfg.data.reward_col, cfg.data.reward_map = demo_mod.REWARD_COLUMN, dict(demo_mod.REWARD_MAP)
            else:
                _write_long_table(ev, it, root / "data" / "demo_long.csv")
                written.append(str(root / "data" / "demo_long.csv"))
                cfg.data.path = "data/demo_long.csv"
        text = to_setup(cfg) if legacy else to_toml(cfg)
        _atomic_write_text(cfg_path, text)
    except OSError as e:
        raise WhatnextError(f"{e.filename or root}: cannot write ({e.strerror})") from None
    written.insert(0, str(cfg_path))
    return {"config": str(cfg_path), "written": written, "format": "setup.txt" if legacy else "toml", "demo": demo,
            "data_path": cfg.data.path}


def _converted(source: str | Path, target: Path) -> Config:
    """The config of ``source`` re-homed to ``target``: relative paths still name the same files."""
    src = Path(source)
    if src.resolve() == target.resolve():
        raise ConfigError(f"--from {src}: is the file to be written; choose another DIR")
    cfg = load_config(src, check_paths=False)
    for section, key in (("data", "path"), ("data", "items_path"), ("paths", "models_dir"),
                         ("paths", "model_agent_path"), ("paths", "model_critic_path")):
        value = getattr(getattr(cfg, section), key)
        if value and not Path(value).is_absolute():
            moved = os.path.relpath(os.path.abspath(cfg.resolve(value)), os.path.abspath(target.parent))
            setattr(getattr(cfg, section), key, Path(moved).as_posix())
    cfg.source = target
    return cfg


def _write_long_table(events_path: Path, items_path: Path, out: Path) -> None:
    """The original clean.pk style: every event row carrying its song's features."""
    import pandas as pd

    ev = pd.read_csv(events_path)
    it = pd.read_csv(items_path)
    ev.merge(it, on="item_id", how="left").to_csv(out, index=False, float_format="%.4f", lineterminator="\n")


def _atomic_write_text(path: Path, text: str) -> None:
    """``text`` into ``path`` through a temporary file, flushed to disk and renamed (never following a link or
    writing into a FIFO left under the temporary name), so an interrupted ``init --force`` leaves the old file."""
    tmp = path.with_name(f".{path.name}.tmp")
    fresh(tmp)
    with open(tmp, "w", encoding="utf-8", opener=exclusive) as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
