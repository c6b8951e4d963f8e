"""Typed configuration: one dataclass per concern, every key with a default, a type and a one-line doc.

Values are checked by :func:`set_value` whichever way they arrive (TOML, setup.txt, the
command line, a checkpoint). The formats live beside this module (``toml``, ``legacy``) and
:func:`whatnext.config.loader.load_config` dispatches between them. Paths are kept exactly as
written; :meth:`Config.resolve` turns them into real paths against the config file's
folder, so a round trip file -> Config -> file keeps every value.

Only the standard library is imported here so that ``whatnext --help`` stays fast.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from whatnext.errors import ConfigError

TOML_NAME = "whatnext.toml"
LEGACY_NAME = "setup.txt"


def _f(default: Any, doc: str) -> Any:
    """A dataclass field with a default and a one-line description."""
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda d=default: type(d)(d), metadata={"doc": doc})  # type: ignore[misc]
    return field(default=default, metadata={"doc": doc})


@dataclass
class DataConfig:
    """Where the listening log and item features are and how to read them."""

    path: str = _f("", "events file (Parquet, CSV/TSV, MovieLens u.data/ratings.csv, legacy pickle); empty = built-in demo data")
    items_path: str = _f("", "optional item table (item id, numeric features, title/artist); empty = features come from the events file")
    format: str = _f("auto", "events file format: auto, parquet, csv, movielens, pickle")
    delimiter: str = _f("", "CSV delimiter; empty = detect (comma, tab, semicolon, pipe, space, :: as MovieLens 1M writes it)")
    header: str = _f("auto", "does the CSV have a header row: auto, yes, no")
    columns: list[str] = _f([], "column names for an events CSV without a header, in file order (an item table brings its own header row)")
    user_col: str = _f("user_id", "column holding the user id; empty = the whole log is one user's (user id 'me')")
    item_col: str | list[str] = _f("item_id", "column holding the item (song) id, or a list of columns that together identify an item (e.g. [\"artist\", \"title\"])")
    items_id_col: str | list[str] = _f("", "the item table's id column(s); empty = the same as item_col")
    time_col: str = _f("timestamp", "column holding the event time (number or date); ordering key")
    time_format: str = _f("", "strftime format of a date column (e.g. %d/%m/%Y %H:%M); empty = detect one format for the whole column")
    order_col: str = _f("", "column giving the order of events when there is no timestamp")
    weight_col: str = _f("rating", "optional weight/rating column, ignored when absent, never a feature")
    reward_col: str = _f("", "column holding what the listener did with each play (rating, played-in-full flag, seconds): the logged reward, never a feature; empty = none")
    reward_map: dict[str, float] = _f({}, "reward_col values -> rewards, e.g. {skip = -1, full = 1}; keys compared as text ignoring case; unmapped values must be numbers (true/false = 1/0)")
    reward_transform: str = _f("none", "after reward_map: none, center (minus the training mean), standardize (centred, divided by the training std)")
    feature_cols: str | list[str] = _f([], "numeric item feature columns; empty = every numeric column that is not an id/time/weight and is constant per item; \"none\" = no features")
    multi_value_cols: list[str] = _f([], "text columns holding several values per item (e.g. genres Adventure|Comedy): each value becomes a 0/1 feature")
    multi_value_sep: str = _f("|", "separator inside multi_value_cols values")
    decimal: str = _f("", "decimal mark of numbers in CSV files: . or , (empty = detect, e.g. 0,5 in a ;-separated file)")
    display_cols: list[str] = _f(["title", "artist"], "text columns shown with recommendations, used when present")
    encoding: str = _f("utf-8", "text encoding of CSV files (MovieLens u.item is read as latin-1)")


@dataclass
class ModelConfig:
    """The actor and critic networks."""

    name: str = _f("lstm", "model architecture, from the model registry: lstm, or transformer (causal self-attention, SASRec-style; the critic stays an LSTM)")
    hidden_size: int = _f(128, "LSTM hidden units in actor and critic")
    num_layers: int = _f(1, "stacked LSTM layers (transformer: attention blocks)")
    heads: int = _f(1, "transformer: attention heads per block (model.hidden_size must be a multiple)")
    dropout: float = _f(0.0, "dropout between LSTM layers and before the output head")
    window: int = _f(50, "how many recent items of a history the models read")
    item_embedding: str = _f("auto", "item vectors: features, learned, both, or auto (with features: both for hybrid, features for original; else learned)")
    rerank: int = _f(50, "re-rank this many nearest items of the proto-action with the critic (Wolpertinger); 0 = nearest only")
    rerank_weight: float = _f(0.5, "re-ranking score = actor logit + rerank_weight * log(critic value)")
    tune_rerank: bool = _f(True, "at each checkpoint choose the weight on the validation split from 0-2, once with played items excluded, once kept")
    embedding_dim: int = _f(64, "size of the learned item embedding (item_embedding = learned or both)")
    item_init: str = _f("auto", "how learned item vectors start: random, cooccurrence (PPMI + SVD of the training sequences), or auto (cooccurrence when they stand alone, random beside features)")


@dataclass
class TrainConfig:
    """The training loop."""

    enabled: bool = _f(True, "legacy 'train' key: yes = train, no = inference only (used by 'whatnext run')")
    algorithm: str = _f("hybrid", "training algorithm from the registry: original (actor-critic as first designed), hybrid, or off-policy RL on logged rewards: sqn, sac, reinforce (README 'Off-policy RL')")
    rl_weight: float = _f(0.0, "hybrid: weight of the actor-critic loss beside the supervised next-item loss")
    epochs: int = _f(10, "passes over all training positions")
    samples: int = _f(0, "legacy 'epochs' key: total training samples to run; 0 = use epochs instead")
    batch_size: int = _f(32, "training windows (hybrid) or positions (original) per step, in each process (see batch_scope)")
    batch_scope: str = _f("process", "what batch_size counts with several processes (torchrun, --nproc): process = each process's batch (a step takes N x batch_size), global = the whole step's, split over the processes")
    lr_scaling: str = _f("sqrt", "with several processes and batch_scope = process: actor_lr and critic_lr are multiplied by sqrt(N), N (linear) or 1 (none) for the N times larger step")
    actor_lr: float = _f(3e-3, "actor learning rate (Adam)")
    lr_schedule: str = _f("constant", "how the learning rates move over the run: constant, or cosine = half a cosine from the configured rates at the first step down toward lr_floor of them at the end of the run")
    lr_floor: float = _f(0.1, "lr_schedule = cosine: the rates at the end of the run, as a share of the configured ones")
    critic_lr: float = _f(1e-3, "critic learning rate (Adam)")
    noise: float = _f(0.1, "std of Gaussian exploration noise added to the actor's proto-action")
    relax: float = _f(0.2, "State.produce box width: a song within +/- relax/2 of the proto-action in every attribute")
    seed: int = _f(0, "random seed: the same seed and config give the same weights")
    checkpoint_every: str | int = _f("auto", "save (and validate) a checkpoint every this many steps and at the end; auto = every epoch, at most 500 steps apart")
    patience: int = _f(0, "early stopping: stop when validation NDCG has not improved for this many checkpoints; 0 = never")
    keep_last: int = _f(3, "periodic checkpoints kept per run (best is always kept)")
    grad_clip: float = _f(1.0, "clip gradient norm to this value; 0 = no clipping")
    threads: str | int = _f("auto", "torch CPU threads; auto = 1 up to 4096 items (small LSTMs run fastest on 1), every core above when training (the sampled softmax's products); 0 = torch's default")
    rewards: dict[str, float] = _f({"hit": 1.0}, "reward name -> weight (diversity, next_item, hit, logged = data.reward_col's value of the played song); the reward is the weighted sum")
    negatives: str | int = _f("auto", "hybrid: shared negatives per step of a sampled softmax; auto = full softmax up to 4096 items, 2048 negatives above; a count at least the catalogue = full softmax")
    negative_power: float = _f(0.75, "negatives are drawn from (training count + 1) ** negative_power (0 = uniform, 1 = popularity), logQ-corrected")
    device: str = _f("auto", "where training runs: auto (CUDA when available), cpu or cuda")
    gamma: float = _f(0.5, "sqn, sac, reinforce: discount of later logged rewards (TD target, REINFORCE return)")
    q_weight: float = _f(1.0, "sqn, sac: weight of the Q head's TD loss beside the supervised loss")
    target_tau: float = _f(0.01, "sqn, sac: the target network moves this share of the way to the online one each step")
    warmup: int = _f(200, "sac: steps of plain SQN before the cross-entropy is weighted by the Q advantage")
    topk: int = _f(10, "reinforce: K of the top-K off-policy correction lambda_K = K (1 - pi)^(K-1); 0 = plain off-policy REINFORCE")
    pg_weight: float = _f(0.5, "reinforce: weight of the off-policy-corrected policy-gradient loss beside the supervised loss")
    weight_cap: float = _f(10.0, "reinforce: importance weights pi/beta are capped at this")
    tensorboard: bool = _f(False, "also write the per-step and validation metrics as TensorBoard event files in the run folder (tensorboard --logdir models)")
    dist_timeout: int = _f(600, "distributed training (torchrun, --nproc): seconds a process waits for the others at start-up and at every step (rank 0's validation must fit) before the job fails")


@dataclass
class EvalConfig:
    """Offline evaluation."""

    ks: list[int] = _f([10, 20], "cut-offs K for HR@K, NDCG@K, MRR@K, coverage@K")
    split: str = _f("valid", "which held-out event to score: valid (second-to-last) or test (last)")
    include_seen: bool = _f(False, "keep already played items in the ranking")
    max_users: str | int = _f("auto", "validation at checkpoints on a seeded sample of this many users; auto = all users up to 50000, a sample of 50000 above; 0 = all")
    ope_clip: float = _f(100.0, "with data.reward_col: cap on the importance weights of the off-policy estimates (IPS, SNIPS, DR), >= 1")


@dataclass
class RecommendConfig:
    """How lists are made from a trained model (recommend and eval); change freely after training."""

    diversity: float = _f(0.0, "trade accuracy for varied lists: maximise relative expected NDCG + diversity * ILD in typical distances (MMR); 0 = off")
    diversity_pool: int = _f(200, "with diversity > 0: choose each list from this many candidates nearest the proto-action")
    q_beta: float = _f(1.0, "sqn, sac: rank by the softmax's log-probability + q_beta * the Q head's value (over its 100 best); 0 = the softmax alone")
    index: str = _f("auto", "nearest-neighbour search: exact (faiss flat, float32), ivf or hnsw (faiss, approximate), auto = exact up to 200000 items (numpy up to 4096), ivf above")


@dataclass
class PathsConfig:
    """Where models go."""

    models_dir: str = _f("models", "folder holding one sub-folder per training run")
    run: str = _f("default", "run name: checkpoints go to models_dir/run; one folder name of letters, digits, '.', '_', '-' (not starting with a dot, at most 64 characters)")
    model_agent_path: str = _f("", "legacy: also write/read the actor weights at this path")
    model_critic_path: str = _f("", "legacy: also write/read the critic weights at this path")


SECTIONS: dict[str, type] = {
    "data": DataConfig,
    "model": ModelConfig,
    "train": TrainConfig,
    "eval": EvalConfig,
    "recommend": RecommendConfig,
    "paths": PathsConfig,
}

#: Choices for string keys that only take a few values.
CHOICES: dict[tuple[str, str], tuple[str, ...]] = {
    ("data", "format"): ("auto", "parquet", "csv", "movielens", "pickle"),
    ("data", "header"): ("auto", "yes", "no"),
    ("data", "reward_transform"): ("none", "center", "standardize"),
    ("eval", "split"): ("valid", "test"),
    ("model", "item_embedding"): ("auto", "features", "learned", "both"),
    ("model", "item_init"): ("auto", "random", "cooccurrence"),
    ("train", "algorithm"): ("original", "hybrid", "sqn", "sac", "reinforce"),
    ("train", "device"): ("auto", "cpu", "cuda"),
    ("train", "batch_scope"): ("process", "global"),
    ("train", "lr_scaling"): ("sqrt", "linear", "none"),
    ("train", "lr_schedule"): ("constant", "cosine"),
    ("recommend", "index"): ("auto", "exact", "ivf", "hnsw"),
}

#: Known model names; the model registry in models.py must agree (a test checks it).
MODEL_NAMES: tuple[str, ...] = ("lstm", "transformer")
#: Known reward names; the reward registry in rewards.py must agree (a test checks it).
REWARD_NAMES: tuple[str, ...] = ("diversity", "next_item", "hit", "logged")


@dataclass
class Config:
    """The whole configuration; ``source`` is the file it came from (None = defaults)."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    recommend: RecommendConfig = field(default_factory=RecommendConfig)
    paths: PathsConfig = field(default_factory=PathsConfig)
    source: Path | None = None

    @property
    def base_dir(self) -> Path:
        """The folder relative paths are resolved against: the config file's folder or the cwd."""
        return self.source.parent if self.source is not None else Path.cwd()

    def resolve(self, path: str) -> Path:
        """Resolve a path from the config against :attr:`base_dir` (absolute paths stay)."""
        p = Path(path)
        try:
            p = p.expanduser()
        except RuntimeError:  # '~name/...' for a user that does not exist: keep the path as written
            pass
        return p if p.is_absolute() else self.base_dir / p

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """The config as plain primitives, section -> key -> value (no ``source``)."""
        return {name: dataclasses.asdict(getattr(self, name)) for name in SECTIONS}

    @property
    def run_dir(self) -> Path:
        """The folder of the current run's checkpoints (ConfigError unless paths.run is one safe folder name)."""
        from whatnext.checkpoints import run_folder

        return run_folder(self.resolve(self.paths.models_dir), self.paths.run, where=f"{self.source or 'config'}: key 'paths.run'")


def field_doc(section: str, key: str) -> str:
    """The one-line description of ``section.key``."""
    for f in fields(SECTIONS[section]):
        if f.name == key:
            return str(f.metadata.get("doc", ""))
    raise KeyError(f"{section}.{key}")


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is types.UnionType:
        return " or ".join(_type_name(t) for t in typing.get_args(tp))
    if origin is list:
        inner = typing.get_args(tp)[0]
        return "a list of " + {int: "integers", float: "numbers", str: "strings", bool: "true/false values"}.get(
            inner, _type_name(inner))
    if origin is dict:
        return "a table of name = number"
    return {bool: "true/false", int: "an integer", float: "a finite number", str: "a string"}[tp]


def _coerce(tp: Any, value: Any) -> Any:
    """Return ``value`` as type ``tp`` or raise ValueError; no eval, no implicit str->number."""
    origin = typing.get_origin(tp)
    if origin is types.UnionType:  # e.g. str | list[str]: the first type that fits
        for option in typing.get_args(tp):
            try:
                return _coerce(option, value)
            except ValueError:
                continue
        raise ValueError
    if origin is list:
        if not isinstance(value, list):
            raise ValueError
        (inner,) = typing.get_args(tp)
        return [_coerce(inner, v) for v in value]
    if origin is dict:
        if not isinstance(value, dict):
            raise ValueError
        return {str(k): _coerce(float, v) for k, v in value.items()}
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ValueError
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ValueError  # nan and inf included: no setting means them
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ValueError
        return value
    raise TypeError(tp)  # pragma: no cover - a new field type needs a branch here


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def known_keys(section: str | None = None) -> list[str]:
    """Every key as ``section.key`` (or the keys of one section)."""
    if section is not None:
        return [f.name for f in fields(SECTIONS[section])]
    return [f"{s}.{f.name}" for s, cls in SECTIONS.items() for f in fields(cls)]


def did_you_mean(name: str, options: typing.Iterable[str]) -> str:
    """' (did you mean 'x'?)' for the closest option, or ''."""
    match = difflib.get_close_matches(name, list(options), n=1, cutoff=0.5)
    return f" (did you mean '{match[0]}'?)" if match else ""


def shown(text: object) -> str:
    """``text`` as it may appear in a one-line message: line breaks and other control characters escaped."""
    s = str(text)
    return s if s.isprintable() else "".join(c if c.isprintable() else repr(c)[1:-1] for c in s)


def location(file: Path | None, line: int | None) -> str:
    if file is None:
        return "command line"
    return f"{file}:{line}" if line else str(file)


def set_value(
    cfg: Config,
    section: str,
    key: str,
    value: Any,
    *,
    file: Path | None = None,
    line: int | None = None,
) -> None:
    """Validate ``value`` for ``section.key`` and store it in ``cfg``; ConfigError if it does not fit."""
    where = location(file, line)
    if section not in SECTIONS:
        raise ConfigError(
            f"{where}: unknown section [{shown(section)}]{did_you_mean(section, SECTIONS)}; expected one of {', '.join(SECTIONS)}"
        )
    hints = _hints(SECTIONS[section])
    if key not in hints:
        raise ConfigError(
            f"{where}: unknown key '{section}.{shown(key)}'{did_you_mean(key, hints) or did_you_mean(f'{section}.{key}', known_keys())}; "
            f"see 'whatnext init' for every key"
        )
    try:
        coerced = _coerce(hints[key], value)
    except (ValueError, OverflowError):  # OverflowError: an integer too large for a float
        brief = number(value) if isinstance(value, int) else repr(value) if len(repr(value)) <= 80 else repr(value)[:77] + "..."
        raise ConfigError(
            f"{where}: key '{section}.{key}' is {brief}, expected {_type_name(hints[key])}"
        ) from None
    _check_value(section, key, coerced, where)
    setattr(getattr(cfg, section), key, coerced)


#: The one table of bounds: (section, key) -> (lowest, highest) for every size-like, counted or
#: scaling value, checked whichever way a value arrives (file, command line, checkpoint) before
#: anything is allocated; README's config reference lists it. Bounds relative to the catalogue
#: are applied where the data is known (:func:`check_against_catalogue`; the agent clips
#: ``model.rerank`` and ``recommend.diversity_pool`` to the catalogue size).
BOUNDS: dict[tuple[str, str], tuple[float, float]] = {
    ("model", "hidden_size"): (1, 8192),
    ("model", "num_layers"): (1, 16),
    ("model", "heads"): (1, 64),
    ("model", "window"): (1, 10_000),
    ("model", "embedding_dim"): (1, 8192),
    ("model", "rerank"): (0, 100_000),
    ("model", "rerank_weight"): (0, 1000),
    ("train", "epochs"): (0, 100_000),
    ("train", "samples"): (0, 10**12),
    ("train", "batch_size"): (1, 4096),
    ("train", "seed"): (0, 2**63 - 1),  # numpy's default_rng refuses negative seeds, torch's above 2**64
    ("train", "checkpoint_every"): (1, 10**9),  # or "auto"
    ("train", "patience"): (0, 1_000_000),
    ("train", "keep_last"): (1, 10_000),
    ("train", "threads"): (0, 1024),  # or "auto"
    ("train", "dist_timeout"): (1, 86_400),
    ("train", "negatives"): (1, 10**8),  # or "auto"
    ("train", "negative_power"): (0, 10),
    ("train", "lr_floor"): (0, 1),
    ("train", "gamma"): (0, 0.999),
    ("train", "q_weight"): (0, 1000),
    ("train", "target_tau"): (0, 1),
    ("train", "warmup"): (0, 10**12),
    ("train", "topk"): (0, 100_000),
    ("train", "weight_cap"): (1, 10**6),
    ("train", "pg_weight"): (0, 1000),
    ("eval", "ks"): (1, 100_000),  # each cut-off; at most MAX_CUTOFFS of them
    ("eval", "max_users"): (0, 10**9),  # or "auto"
    ("eval", "ope_clip"): (1, 1e12),
    ("recommend", "diversity"): (0, 1000),
    ("recommend", "diversity_pool"): (1, 100_000),
    ("recommend", "q_beta"): (0, 1000),
}
#: How many cut-offs ``eval.ks`` may list.
MAX_CUTOFFS = 100


def number(value: Any) -> str:
    """A number for a message: an integer too long to print (Python refuses above 4300 digits) by its size."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 128:
        return f"an integer of {value.bit_length()} bits"
    if isinstance(value, list):
        return f"[{', '.join(number(v) for v in value[:10])}{', ...' if len(value) > 10 else ''}]"
    return str(value)


def _check_bounds(section: str, key: str, value: Any, where: str) -> None:
    bounds = BOUNDS.get((section, key))
    if bounds is None:
        return
    low, high = bounds
    values = value if isinstance(value, list) else [value]
    for v in values:
        if isinstance(v, str):  # a key that takes a number or a word ("auto"): the word is checked by _check_value
            if v != "auto":
                raise ConfigError(f"{where}: key '{section}.{key}' is {v!r}, expected \"auto\" or an integer from {low} to {high}")
            continue
        if isinstance(v, int) and v < low:
            raise ConfigError(f"{where}: key '{section}.{key}' is {number(value)}, expected an integer >= {low}")
        if v > high:  # the low end of the float keys is checked below, with their own wording
            kind = "an integer" if isinstance(v, int) else "a number"
            raise ConfigError(
                f"{where}: key '{section}.{key}' is {number(value)}, above the largest allowed ({high}); "
                f"use {kind} from {low} to {high}"
            )


def check_against_catalogue(cfg: Config, n_items: int) -> None:
    """The bounds that depend on the data: every ``eval.ks`` cut-off at most the catalogue size.

    (``model.rerank`` and ``recommend.diversity_pool`` larger than the catalogue mean the
    whole catalogue and are clipped where they are used.)
    """
    too_big = [k for k in cfg.eval.ks if k > n_items]
    if too_big:
        raise ConfigError(
            f"{cfg.source or 'the built-in defaults'}: key 'eval.ks' holds {too_big[0]} but the catalogue has only {n_items} items; "
            f"use cut-offs of at most {n_items}"
        )


def _check_value(section: str, key: str, value: Any, where: str) -> None:
    """Range and choice checks beyond the type."""
    choices = CHOICES.get((section, key))
    if choices is not None and value not in choices:
        raise ConfigError(f"{where}: key '{section}.{key}' is {value!r}, expected one of {', '.join(choices)}")
    if (section, key) == ("model", "name") and value not in MODEL_NAMES:
        raise ConfigError(
            f"{where}: key 'model.name' is {value!r}{did_you_mean(value, MODEL_NAMES)}, expected a known model: {', '.join(MODEL_NAMES)}"
        )
    _check_bounds(section, key, value, where)
    if section == "train" and key in ("actor_lr", "critic_lr") and not value > 0:
        raise ConfigError(f"{where}: key 'train.{key}' is {value}, expected a number > 0")
    if (section, key) == ("data", "encoding"):
        import codecs

        try:
            codecs.lookup(value)
        except LookupError:
            raise ConfigError(f"{where}: key 'data.encoding' is {value!r}, not a known text encoding (e.g. utf-8, latin-1)") from None
    if (section, key) == ("data", "decimal") and value not in ("", ".", ","):
        raise ConfigError(f"{where}: key 'data.decimal' is {value!r}, expected '.', ',' or empty (detect)")
    if (section, key) == ("data", "feature_cols") and isinstance(value, str) and value not in ("none", "auto"):
        raise ConfigError(f"{where}: key 'data.feature_cols' is {value!r}, expected a list of column names, \"auto\" or \"none\"")
    if section == "data" and key in ("item_col", "items_id_col") and isinstance(value, list) and (not value or "" in value):
        raise ConfigError(f"{where}: key 'data.{key}' is {value!r}, expected a column name or a non-empty list of column names")
    if (section, key) == ("data", "multi_value_sep") and not value:
        raise ConfigError(f"{where}: key 'data.multi_value_sep' is empty, expected the separator between values (e.g. |)")
    if (section, key) == ("recommend", "diversity") and not value >= 0:
        raise ConfigError(f"{where}: key 'recommend.diversity' is {value}, expected a number >= 0 (0 = off)")
    if (section, key) == ("model", "rerank_weight") and not value >= 0:
        raise ConfigError(f"{where}: key 'model.rerank_weight' is {value}, expected a number >= 0")
    if section == "train" and key in ("noise", "relax", "grad_clip", "rl_weight", "negative_power") and not value >= 0:
        raise ConfigError(f"{where}: key 'train.{key}' is {value}, expected a number >= 0")
    if (section, key) == ("eval", "ope_clip") and not value >= 1:
        raise ConfigError(f"{where}: key 'eval.ope_clip' is {value}, expected a number >= 1 (the cap on importance weights)")
    if (section, key) == ("model", "dropout") and not 0 <= value < 1:
        raise ConfigError(f"{where}: key 'model.dropout' is {value}, expected a number in [0, 1)")
    if (section, key) == ("train", "rewards"):
        for name in value:
            if name not in REWARD_NAMES:
                raise ConfigError(
                    f"{where}: unknown reward '{name}' in 'train.rewards'{did_you_mean(name, REWARD_NAMES)}; "
                    f"expected one of {', '.join(REWARD_NAMES)}"
                )
    if (section, key) == ("paths", "run"):
        from whatnext.checkpoints import RUN_NAME_RULE, run_name_problem  # the rule lives with the run folder

        problem = run_name_problem(value)
        if problem is not None:
            raise ConfigError(f"{where}: key 'paths.run' is {value!r}, {problem}; expected {RUN_NAME_RULE}")
    if (section, key) == ("eval", "ks") and not 1 <= len(value) <= MAX_CUTOFFS:
        raise ConfigError(f"{where}: key 'eval.ks' holds {len(value)} cut-offs, expected 1 to {MAX_CUTOFFS} integers >= 1")
