"""The orchestrator and Python API: every CLI command is one call into a function here.

Functions take plain values, return plain dicts (JSON-ready), raise :class:`WhatnextError`
subclasses for anything a user can fix, and never print. Heavy modules (pandas, torch) are
imported inside the functions that need them, so that importing the engine stays cheap.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from whatnext.config import LEGACY_NAME, TOML_NAME, Config, load_config, to_toml
from whatnext.errors import OutputExistsError, WhatnextError

log = logging.getLogger(__name__)


def config_for(config: str | Path | None = None, overrides: dict[str, Any] | None = None,
               *, check_paths: bool = True) -> Config:
    """Load the config file (or defaults) and apply overrides (``"section.key" -> value``)."""
    return load_config(config, overrides, check_paths=check_paths)


def init_project(folder: str | Path = ".", *, legacy: bool = False, demo: bool = False, force: bool = False) -> dict[str, Any]:
    """Write a commented config (``whatnext.toml``, or ``setup.txt`` with ``legacy``) into ``folder``.

    With ``demo`` the demo dataset is written to ``folder/data/`` and the config points at it.
    Existing files are never overwritten without ``force``; nothing is written if any would be.
    """
    from whatnext import demo as demo_mod
    from whatnext.legacy import to_setup

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
    cfg = Config(source=cfg_path)
    if legacy:
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
            else:
                _write_long_table(ev, it, root / "data" / "demo_long.csv")
                written.append(str(root / "data" / "demo_long.csv"))
                cfg.data.path = "data/demo_long.csv"
        text = to_setup(cfg) if legacy else to_toml(cfg)
        _atomic_write_text(cfg_path, text)
    except OSError as e:
        raise WhatnextError(f"{e.filename or root}: cannot write ({e.strerror})") from None
    written.insert(0, str(cfg_path))
    return {"config": str(cfg_path), "written": written, "format": "setup.txt" if legacy else "toml", "demo": demo}


def _write_long_table(events_path: Path, items_path: Path, out: Path) -> None:
    """The original clean.pk style: every event row carrying its song's features."""
    import pandas as pd

    ev = pd.read_csv(events_path)
    it = pd.read_csv(items_path)
    ev.merge(it, on="item_id", how="left").to_csv(out, index=False, float_format="%.4f", lineterminator="\n")


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def inspect_data(config: str | Path | None = None, data: str | Path | None = None,
                 overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Load the configured data (or ``data``) and describe it (see :func:`whatnext.stats.describe`)."""
    from whatnext.data import load_dataset
    from whatnext.stats import describe

    overrides = dict(overrides or {})
    if data is not None:
        overrides["data.path"] = str(Path(data).resolve())
    cfg = config_for(config, overrides)
    ds = load_dataset(cfg, lenient=True)
    return describe(ds)
