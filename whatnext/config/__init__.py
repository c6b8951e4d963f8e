"""Configuration: typed dataclasses (``schema``), the TOML format (``toml``), the legacy setup.txt
(``legacy``), and the loader above both (``loader``: defaults < file < overrides, written once).

May import: the standard library, tomli-w (when writing) and :mod:`whatnext.errors`. Never torch,
pandas, the data or anything above it: a config is read before any data. Neither format
imports the other; the loader dispatches.
"""

from whatnext.config.loader import check_data_paths, is_toml_file, load_config, read_text
from whatnext.config.schema import (
    CHOICES,
    LEGACY_NAME,
    MODEL_NAMES,
    REWARD_NAMES,
    SECTIONS,
    TOML_NAME,
    Config,
    DataConfig,
    EvalConfig,
    ModelConfig,
    PathsConfig,
    RecommendConfig,
    TrainConfig,
    did_you_mean,
    field_doc,
    known_keys,
    set_value,
    shown,
)
from whatnext.config.toml import parse_toml, to_toml

__all__ = [
    "CHOICES", "LEGACY_NAME", "MODEL_NAMES", "REWARD_NAMES", "SECTIONS", "TOML_NAME", "Config", "DataConfig",
    "EvalConfig", "ModelConfig", "PathsConfig", "RecommendConfig", "TrainConfig", "check_data_paths", "did_you_mean",
    "field_doc", "is_toml_file", "known_keys", "load_config", "parse_toml", "read_text", "set_value", "shown", "to_toml",
]
