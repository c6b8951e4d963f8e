"""Checking a checkpoint's payload before anything is built from it.

A checkpoint is a file a user may have been handed, so every value in it is checked the way
a config file is, before a tensor is allocated:

- what it may carry: the model's architecture (``model_name``, ``model_args``) and the
  training-time ``[model]`` settings the weights and the tuned re-rank weights go with
  (:data:`CARRIED`); everything else in its stored ``config`` (data, train, eval, recommend,
  paths) is the user's and is ignored. Carried values pass :func:`whatnext.config.set_value`
  (types, choices, the :data:`whatnext.config.schema.BOUNDS` table).
- ``model_args``: exactly the constructor's keys, integers within the same bounds, ``n_items``
  and ``feature_dim`` equal to the catalogue's (:func:`check_model_args`);
- the weights: the modules are first built on PyTorch's ``meta`` device (no memory), and every
  tensor of the checkpoint must have the shape and dtype the model expects and be finite
  (:func:`check_weights`); the tuned re-rank weights and score scales must be finite and in range.

Every problem is a one-line :class:`~whatnext.errors.CheckpointError` (exit 4).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch

from whatnext import models
from whatnext.config import Config, set_value
from whatnext.config.schema import BOUNDS, number
from whatnext.errors import CheckpointError, ConfigError

#: The ``[model]`` keys of a checkpoint's stored config that override the user's: the architecture
#: and what the weights were trained with (the history window the networks read, the re-rank slate
#: the critic learned on). The rest of the stored config is the user's inference settings.
CARRIED = ("name", "hidden_size", "num_layers", "heads", "dropout", "window", "item_embedding", "embedding_dim",
           "rerank", "rerank_weight")
#: model_args key -> the config key whose bounds it obeys (None: checked against the catalogue).
MODEL_ARGS: dict[str, str | None] = {
    "n_items": None, "feature_dim": None, "learned_dim": "embedding_dim", "hidden_size": "hidden_size",
    "num_layers": "num_layers", "dropout": "dropout",
}
#: Score scales are fitted within 1e-4..1e3 (evaluation/validation.py); a checkpoint's must be finite, > 0 and below this.
MAX_SCORE_SCALE = 1e6
_WHERE = Path("checkpoint config")
_FIX = "use another checkpoint or train a new run"


def kind(value: object) -> str:
    """'a list', 'a str', 'a Tensor'... for messages."""
    name = type(value).__name__
    return f"an {name}" if name[:1].lower() in "aeiou" else f"a {name}"


def payload_dict(payload: object, key: str) -> dict[str, Any]:
    """``payload[key]`` when it is a table (dict) with string keys, else a CheckpointError."""
    value = payload.get(key) if isinstance(payload, dict) else None
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise CheckpointError(f"the checkpoint's '{key}' is {kind(value)}, expected a table; {_FIX}")
    return value


def apply_carried_config(cfg: Config, payload: dict[str, Any]) -> None:
    """Set the carried ``[model]`` keys of the checkpoint's stored config (and ``model_name``) on ``cfg``, checked."""
    saved = payload.get("config", {})
    if not isinstance(saved, dict):
        raise CheckpointError(f"the checkpoint's 'config' is {kind(saved)}, expected a table of sections; {_FIX}")
    model = saved.get("model", {})
    if not isinstance(model, dict):
        raise CheckpointError(f"the checkpoint's config section 'model' is {kind(model)}, expected a table; {_FIX}")
    values = {k: model[k] for k in CARRIED if k in model}
    if payload.get("model_name") is not None:
        values["name"] = payload["model_name"]
    for key, value in values.items():
        try:
            set_value(cfg, "model", key, value, file=_WHERE)
        except ConfigError as e:  # the config file's wording, without its fix (the user cannot edit a checkpoint)
            raise CheckpointError(f"{str(e).split('; use ')[0]}; {_FIX}") from None


def check_fingerprint(payload: dict[str, Any], fp: str) -> None:
    """CheckpointError unless the checkpoint was trained on the catalogue with fingerprint ``fp``."""
    found = payload.get("fingerprint")
    if found != fp:
        shown = found if isinstance(found, str) and len(found) <= 64 and found.isprintable() else kind(found)
        raise CheckpointError(
            f"the checkpoint was trained on another catalogue (fingerprint {shown}, the data has {fp}); "
            f"use the data it was trained on or train a new run"
        )


def check_model_args(payload: dict[str, Any], n_items: int, n_features: int) -> dict[str, Any]:
    """The checkpoint's ``model_args``, checked against the constructor, the bounds and the catalogue."""
    args = payload.get("model_args")
    name = payload.get("model_name")
    # the architecture's own arguments (the transformer's heads, window) obey their config keys' bounds
    expected = {**MODEL_ARGS, **{k: k for k in (models.EXTRA_ARGS.get(name, ()) if isinstance(name, str) else ())}}
    if not isinstance(args, dict):
        raise CheckpointError(f"the checkpoint's model_args is {kind(args)}, expected a table of {', '.join(expected)}; {_FIX}")
    if set(args) != set(expected):
        extra = sorted(str(k) for k in args if k not in expected)
        missing = [k for k in expected if k not in args]
        what = f"lacks {', '.join(missing)}" if missing else f"has unknown keys {', '.join(extra)[:100]}"
        raise CheckpointError(f"the checkpoint's model_args {what}; expected exactly {', '.join(expected)}; {_FIX}")
    for key, bound in expected.items():
        value = args[key]
        want_int = key != "dropout"
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (want_int and not isinstance(value, int)):
            raise CheckpointError(f"the checkpoint's model_args.{key} is {kind(value)}, expected "
                                  f"{'an integer' if want_int else 'a number'}; {_FIX}")
        low, high = (0, 1) if key == "dropout" else BOUNDS[("model", bound)] if bound else (0, math.inf)
        if key == "learned_dim" and value == 0:
            continue
        if not (low <= value < high if key == "dropout" else low <= value <= high):
            raise CheckpointError(f"the checkpoint's model_args.{key} is {number(value)}, outside {low} to {high}"
                                  f"{f' (the bounds of model.{bound})' if bound else ''}; {_FIX}")
    if args["n_items"] != n_items:
        raise CheckpointError(f"the checkpoint's model has {number(args['n_items'])} items (model_args.n_items) but the catalogue has "
                              f"{n_items}; use the data it was trained on or train a new run")
    if args["feature_dim"] not in (0, n_features):
        raise CheckpointError(f"the checkpoint's model reads {number(args['feature_dim'])} item features (model_args.feature_dim) but "
                              f"the catalogue has {n_features}; use the data it was trained on or train a new run")
    if args["feature_dim"] == 0 and args["learned_dim"] == 0:
        raise CheckpointError(f"the checkpoint's model_args give the items no vector (feature_dim and learned_dim are both 0); {_FIX}")
    if "heads" in args and args["hidden_size"] % args["heads"]:
        raise CheckpointError(f"the checkpoint's model_args.hidden_size {number(args['hidden_size'])} is not a multiple of "
                              f"model_args.heads {number(args['heads'])}; {_FIX}")
    return dict(args)


def expected_shapes(name: str, args: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """The state_dicts (shapes and dtypes, on the meta device: no memory) of the actor and critic ``args`` build."""
    with torch.device("meta"):
        actor, critic = models.build(name, args)
    return actor.state_dict(), critic.state_dict()


def check_weights(part: str, weights: object, expected: dict[str, torch.Tensor]) -> None:
    """CheckpointError unless ``weights`` is a state_dict whose tensors have the expected names, shapes and
    dtypes and hold finite numbers only."""
    if not isinstance(weights, dict):
        raise CheckpointError(f"the checkpoint's '{part}' is {kind(weights)}, expected a state_dict of tensors; {_FIX}")
    missing = [k for k in expected if k not in weights]
    extra = [str(k)[:60] for k in weights if k not in expected]
    if missing or extra:
        what = f"lacks '{missing[0]}'" if missing else f"has an unknown tensor '{extra[0]}'"
        raise CheckpointError(f"the checkpoint's {part} weights do not fit this version's model ({what}); {_FIX}")
    for key, want in expected.items():
        t = weights[key]
        if not isinstance(t, torch.Tensor) or t.layout != torch.strided:
            raise CheckpointError(f"the checkpoint's {part} weight '{key}' is {kind(t)}, expected a dense tensor; {_FIX}")
        if t.dtype != want.dtype or t.shape != want.shape:
            raise CheckpointError(
                f"the checkpoint's {part} weight '{key}' is {str(t.dtype).removeprefix('torch.')} of shape {tuple(t.shape)}, "
                f"expected {str(want.dtype).removeprefix('torch.')} of shape {tuple(want.shape)}; {_FIX}")
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            raise CheckpointError(f"the checkpoint's {part} weight '{key}' holds NaN or inf; {_FIX}")


def scalar(payload: dict[str, Any], key: str, default: float, low: float, high: float, low_open: bool = False) -> float:
    """``payload[key]`` (``default`` when absent) as a float, refused unless a finite number in range."""
    value = payload.get(key, default)
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or not (value > low if low_open else value >= low) or value > high:
        shown = repr(value) if isinstance(value, (int, float, str)) and len(repr(value)) < 40 else kind(value)
        rng = f"> {low:g} and <= {high:g}" if low_open else f"from {low:g} to {high:g}"
        raise CheckpointError(f"the checkpoint's {key} is {shown}, expected a finite number {rng}; {_FIX}")
    return float(value)


def tuned_values(payload: dict[str, Any], rerank_weight: float) -> dict[str, float]:
    """The re-rank weights and score scales tuned on validation (defaults for checkpoints older than them),
    refused unless finite and in range (the weights within model.rerank_weight's bounds)."""
    low, high = BOUNDS[("model", "rerank_weight")]
    out = {"rerank_weight": scalar(payload, "rerank_weight", rerank_weight, low, high)}
    out["rerank_weight_seen"] = scalar(payload, "rerank_weight_seen", out["rerank_weight"], low, high)
    out["score_scale"] = scalar(payload, "score_scale", 1.0, 0.0, MAX_SCORE_SCALE, low_open=True)
    out["score_scale_seen"] = scalar(payload, "score_scale_seen", out["score_scale"], 0.0, MAX_SCORE_SCALE, low_open=True)
    return out


def load_optimiser(part: str, opt: torch.optim.Optimizer, payload: dict[str, Any]) -> None:
    """Load ``payload[part]`` into ``opt``; CheckpointError unless it loads and every per-parameter tensor has
    its parameter's shape and is finite (a wrong one would fail at the first step of the resumed run)."""
    state = payload_dict(payload, part)
    try:
        opt.load_state_dict(state)
    except Exception as e:  # noqa: BLE001  (torch's parser of an untrusted table raises many kinds)
        detail = " ".join(str(e).split())[:100]
        raise CheckpointError(f"the checkpoint's {part} does not fit the model ({type(e).__name__}: {detail}); "
                              f"resume from another checkpoint or start the run again with --force") from None
    for group in opt.param_groups:
        for p in group["params"]:
            for name, v in opt.state.get(p, {}).items():
                if not isinstance(v, torch.Tensor):
                    continue
                if (v.dim() > 0 and v.shape != p.shape) or (v.is_floating_point() and not bool(torch.isfinite(v).all())):
                    raise CheckpointError(f"the checkpoint's {part} state '{name}' does not fit its parameters "
                                          f"(shape {tuple(v.shape)} for {tuple(p.shape)}, or NaN/inf); {_FIX}")


def check_resume_fields(payload: dict[str, Any]) -> None:
    """The counters a resumed run continues from: step, stale, best_metric, metrics."""
    if "step" not in payload:
        raise CheckpointError(f"the checkpoint has no step to resume from; {_FIX}")
    for key in ("step", "stale"):
        value = payload.get(key, 0)
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 10**15:
            raise CheckpointError(f"the checkpoint's {key} is {number(value) if isinstance(value, int) else kind(value)}, "
                                  f"expected an integer from 0 to 10**15; {_FIX}")
    best = payload.get("best_metric")
    if best is not None and (isinstance(best, bool) or not isinstance(best, (int, float)) or not math.isfinite(best)):
        raise CheckpointError(f"the checkpoint's best_metric is {best if isinstance(best, float) else kind(best)}, "
                              f"expected a finite number; {_FIX}")
    if not isinstance(payload.get("metrics", {}), dict):
        raise CheckpointError(f"the checkpoint's metrics is {kind(payload.get('metrics'))}, expected a table; {_FIX}")

