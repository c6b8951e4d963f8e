"""The hostile checkpoint corpus: payloads mutated from a real checkpoint, each with a valid sidecar.

Every case takes the payload of a checkpoint written by ``whatnext train`` (the tests train a tiny
project into a temporary folder first) and changes one thing a damaged or crafted file could:
sizes far beyond the bounds, malformed ``model_args``, parts of the wrong type, weights of the
wrong shape or dtype, NaN and inf. Each is written as ``OUT/<case>/ckpt-00000001.pt`` with the
sidecar ``ckpt-00000001.json`` that ``checkpoints.save`` would write (size, SHA-256, step), so
the checksum passes and what refuses the file is the payload check itself.

``CASES[name] = (mutation, exit codes whatnext may end with)``: 4 for a payload whatnext must
refuse; 0 where the crafted values are settings the user's config decides (they are ignored).

    python tests/hostile/make_checkpoints.py models/default/ckpt-00000012.pt /tmp/corpus
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

Payload = dict[str, Any]
NAME = "ckpt-00000001"


def _set(path: str, value: Any) -> Callable[[Payload], Payload]:
    """A mutation that sets ``payload[a][b]... = value`` (the path dotted)."""
    def mutate(p: Payload) -> Payload:
        *parents, last = path.split(".")
        node = p
        for key in parents:
            node = node[key]
        node[last] = value
        return p
    return mutate


def _drop(path: str) -> Callable[[Payload], Payload]:
    def mutate(p: Payload) -> Payload:
        *parents, last = path.split(".")
        node = p
        for key in parents:
            node = node[key]
        del node[last]
        return p
    return mutate


def _weights(part: str, fn: Callable[[torch.Tensor], torch.Tensor], key: str | None = None) -> Callable[[Payload], Payload]:
    """Replace one tensor of ``payload[part]`` (the first floating one, or ``key``) by ``fn(tensor)``."""
    def mutate(p: Payload) -> Payload:
        sd = p[part]
        name = key or next(k for k, t in sd.items() if t.is_floating_point() and t.numel() > 1)
        sd[name] = fn(sd[name])
        return p
    return mutate


def _both(*fns: Callable[[Payload], Payload]) -> Callable[[Payload], Payload]:
    def mutate(p: Payload) -> Payload:
        for fn in fns:
            p = fn(p)
        return p
    return mutate


def _nan(t: torch.Tensor) -> torch.Tensor:
    t = t.clone()
    t.view(-1)[0] = float("nan")
    return t


def _inf(t: torch.Tensor) -> torch.Tensor:
    t = t.clone()
    t.view(-1)[-1] = float("inf")
    return t


REFUSE = {4}
CASES: dict[str, tuple[Callable[[Payload], Payload], set[int]]] = {
    # sizes a stored config or model_args would allocate (21.9 GB and 2.9 GB before the checks)
    "config-rerank-1e9": (_set("config.model.rerank", 10**9), REFUSE),
    "config-window-1e9": (_set("config.model.window", 10**9), REFUSE),
    "config-hidden-1e6": (_set("config.model.hidden_size", 10**6), REFUSE),
    "args-n-items-3m": (_set("model_args.n_items", 3_000_000), REFUSE),
    "args-hidden-1e6": (_set("model_args.hidden_size", 10**6), REFUSE),
    "args-learned-dim-1e7": (_set("model_args.learned_dim", 10**7), REFUSE),
    "args-feature-dim-1000": (_set("model_args.feature_dim", 1000), REFUSE),
    "args-huge-int-1e30": (_set("model_args.num_layers", 10**30), REFUSE),
    # within the bounds but not what the weights are: refused by shape on the meta device, no memory spent
    "args-in-bounds-but-huge": (_both(_set("model_args.hidden_size", 8192), _set("model_args.num_layers", 16)), REFUSE),
    # malformed model_args and parts of the wrong type
    "args-extra-key": (_set("model_args.heads", 4), REFUSE),
    "args-missing-key": (_drop("model_args.hidden_size"), REFUSE),
    "args-text-value": (_set("model_args.hidden_size", "8"), REFUSE),
    "args-a-string": (_set("model_args", "lstm"), REFUSE),
    "unknown-model-name": (_set("model_name", "gru"), REFUSE),
    "config-a-list": (_set("config", [1, 2, 3]), REFUSE),
    "config-a-tensor": (_set("config", torch.zeros(3)), REFUSE),
    "actor-a-string": (_set("actor", "weights"), REFUSE),
    "critic-a-list": (_set("critic", [torch.zeros(2)]), REFUSE),
    # weights of the wrong shape or dtype, NaN and inf
    "weights-wrong-shape": (_weights("actor", lambda t: torch.zeros(t.shape[0] + 7, *t.shape[1:])), REFUSE),
    "weights-float64": (_weights("critic", lambda t: t.double()), REFUSE),
    "weights-nan": (_weights("actor", _nan), REFUSE),
    "weights-inf": (_weights("critic", _inf), REFUSE),
    "rerank-weight-nan": (_set("rerank_weight", float("nan")), REFUSE),
    "score-scale-inf": (_set("score_scale", float("inf")), REFUSE),
    "score-scale-negative": (_set("score_scale_seen", -3.0), REFUSE),
    # the user's inference settings: a checkpoint's copy is ignored, the user's config decides
    "ignored-user-settings": (_both(_set("config.recommend.diversity_pool", 10**9), _set("config.eval.ks", [100000]),
                                    _set("config.recommend.diversity", 1e300)), {0}),
}


def write(payload: Any, folder: Path) -> Path:
    """``torch.save`` ``payload`` as ``folder/ckpt-00000001.pt`` with the sidecar ``checkpoints.save`` writes."""
    folder.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    torch.save(payload, buf)
    data = buf.getvalue()
    pt = folder / f"{NAME}.pt"
    pt.write_bytes(data)
    meta = {"file": pt.name, "size": len(data), "sha256": hashlib.sha256(data).hexdigest(), "step": 1,
            "time": time.time(), "metrics": {}, "format_version": 1}
    (folder / f"{NAME}.json").write_text(json.dumps(meta, indent=1))
    return pt


def load_source(source: Path) -> Payload:
    """The payload of a real checkpoint (loaded as whatnext does: weights_only)."""
    return torch.load(source, map_location="cpu", weights_only=True)


def build(source: Path, out: Path, cases: dict[str, tuple[Callable[[Payload], Payload], set[int]]] | None = None) -> dict[str, Path]:
    """Write every case of ``cases`` (default :data:`CASES`) mutated from ``source``; case name -> .pt path."""
    base = load_source(source)
    written = {}
    for name, (mutate, _) in (cases or CASES).items():
        written[name] = write(mutate(copy.deepcopy(base)), out / name)
    return written


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    for case, path in build(Path(sys.argv[1]), Path(sys.argv[2])).items():
        print(f"{case}: {path}")
