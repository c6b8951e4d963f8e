# mypy: disable-error-code="index,operator"
# (registered buffers read as Tensor | Module to mypy; TorchScript refuses type comments in scripted methods)
"""``whatnext export``: the actor and what it needs, for runtimes without whatnext.

Written into one folder:

* ``actor.pt`` (TorchScript) and/or ``actor.onnx``: ``forward(history, lengths)`` takes a (B, L)
  int64 batch of whole histories (catalogue indices, oldest first, right-padded with -1) and their
  lengths (B,), reads the last ``model.window`` items of each, as whatnext does, and returns
  ``(scores, indices)``: the top ``k`` items by the actor's score, nearest to its proto-action
  first, items anywhere in the history left out (``k`` and the exclusion are fixed at export:
  ``--k``, ``--include-seen``). TorchScript also has ``proto(history, lengths)``
  and ``rank(history, lengths, k, exclude_seen)`` for any k.
* ``items.json``: the id map (``ids[i]`` is catalogue index i, ids as written in the data) and the
  display columns; ``item_vectors.npy``: the (n, dim) float32 vectors the distances are measured to.
* ``config.json``: the config the checkpoint was trained with, the model arguments, the checkpoint.

The score is the actor's (minus the squared distance to the proto-action, scaled), what whatnext
ranks by with ``model.rerank = 0``; the critic's re-ranking is not exported. Ties go to the smaller index.
An ``sqn`` / ``sac`` run that ranks with its Q head (``recommend.q_beta > 0``, the default) is refused:
the module would rank differently from whatnext (export it with ``--set recommend.q_beta=0`` to get the
softmax's own ranking, knowingly).
"""

from __future__ import annotations

import copy
import dataclasses
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from whatnext.errors import ConfigError, OutputExistsError, WhatnextError

log = logging.getLogger(__name__)

FORMATS = ("torchscript", "onnx")


class ActorRanker(nn.Module):
    """The actor's forward pass over a fixed item table, then the top k by the actor's score."""

    def __init__(self, actor: Any, vectors: np.ndarray, actor_window: int, k: int = 10, exclude_seen: bool = True) -> None:
        super().__init__()
        with torch.no_grad():
            inputs = actor.items.all().detach().float()
        # row n is the padding row (index -1 -> zeros), as in ItemTable
        self.register_buffer("inputs", torch.cat([inputs, torch.zeros(1, inputs.shape[1])]))
        self.register_buffer("vectors", torch.from_numpy(np.ascontiguousarray(vectors, np.float32)))
        self.register_buffer("sq_norms", (torch.from_numpy(np.ascontiguousarray(vectors, np.float32)).double() ** 2).sum(1))
        self.lstm = copy.deepcopy(actor.lstm).requires_grad_(False)  # a copy: the agent's own weights stay trainable
        self.head = copy.deepcopy(actor.head).requires_grad_(False)
        self.squash = actor.items.learned_dim == 0  # features only: proto-actions live in [0, 1]
        self.scale = float(actor.log_scale.exp().item())
        self.n_items = len(vectors)
        self.window = int(actor_window)
        self.k = int(k)
        self.exclude_seen = bool(exclude_seen)
        self.onnx = False  # True while exporting to ONNX (see rank)

    def proto(self, history: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Proto-actions (B, dim) after each history's last item, from its last ``window`` items."""
        steps = torch.arange(self.window)
        used = lengths.clamp(min=0, max=self.window)
        at = ((lengths - used)[:, None] + steps[None, :]).clamp(max=history.shape[1] - 1)
        window = torch.where(steps[None, :] < used[:, None], history.gather(1, at), torch.full_like(at, -1))
        safe = torch.where(window < 0, torch.full_like(window, self.n_items), window)
        out, _ = self.lstm(self.inputs[safe])
        last = (used - 1).clamp(min=0).view(-1, 1, 1).expand(-1, 1, out.shape[2])
        p = self.head(out.gather(1, last).squeeze(1))
        return torch.sigmoid(p) if self.squash else p

    def rank(self, history: torch.Tensor, lengths: torch.Tensor, k: int, exclude_seen: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """The k best items (scores, indices) per history, by the actor's score; -inf / -1 where none is left."""
        p = self.proto(history, lengths).double()
        d = (p * p).sum(1, keepdim=True) - 2.0 * p @ self.vectors.double().t() + self.sq_norms[None, :]
        d = d.clamp(min=0.0)
        if exclude_seen:
            cols = torch.where(history < 0, torch.full_like(history, self.n_items), history)
            pad = torch.zeros(d.shape[0], 1, dtype=d.dtype)
            d = torch.cat([d, pad], 1).scatter(1, cols, float("inf"))[:, : self.n_items]
        if self.onnx:  # ONNX has no stable sort; its TopK puts the lower index first among equal values
            best, order = torch.topk(d, k, dim=1, largest=False, sorted=True)
        else:
            order = torch.argsort(d, dim=1, stable=True)[:, :k]
            best = d.gather(1, order)
        scores = -best * self.scale
        return scores, torch.where(torch.isinf(best), torch.full_like(order, -1), order)

    def forward(self, history: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.rank(history, lengths, self.k, self.exclude_seen)


def ranker(agent: Any, k: int = 10, exclude_seen: bool = True) -> ActorRanker:
    """An :class:`ActorRanker` of a loaded agent, in evaluation mode."""
    return ActorRanker(agent.actor, agent.item_vectors(), agent.cfg.model.window, k, exclude_seen).eval()


def check_formats(formats: list[str]) -> None:
    """ConfigError unless ``formats`` is a non-empty list of :data:`FORMATS` (checked before anything loads)."""
    bad = [f for f in formats if f not in FORMATS]
    if bad or not formats:
        raise ConfigError(f"--format is {','.join(bad) or 'empty'}, expected one of {', '.join(FORMATS)}")


def check_output(output: Path) -> None:
    """ConfigError when ``output`` or a folder above it is a file (checked before anything loads)."""
    blocked = next((p for p in (output, *output.parents) if p.exists() and not p.is_dir()), None)
    if blocked is not None:
        raise ConfigError(f"--output {output}: {blocked} is a file, not a folder; choose another --output folder")


def export(rec: Any, formats: list[str], output: Path, *, k: int = 10, include_seen: bool = False,
           force: bool = False) -> dict[str, Any]:
    """Write the actor of ``rec`` (a loaded Recommender) in ``formats`` and its item map, vectors and config to ``output``."""
    check_formats(formats)
    if not 1 <= k <= len(rec.dataset.catalogue):
        raise ConfigError(f"--k is {k}, expected 1 to the catalogue size ({len(rec.dataset.catalogue)})")
    output = Path(output)
    check_output(output)
    names = {"torchscript": "actor.pt", "onnx": "actor.onnx"}
    targets = [output / names[f] for f in formats] + [output / n for n in ("items.json", "item_vectors.npy", "config.json")]
    existing = [p for p in targets if p.exists()]
    if existing and not force:
        raise OutputExistsError(f"{existing[0]}: already exists, not overwritten; pass --force to replace it")
    model = rec.model
    agent = model.agent
    if agent.cfg.model.name != "lstm":  # ActorRanker re-implements the LSTM actor's forward pass
        raise ConfigError(f"export writes the lstm actor only; this checkpoint's model.name is {agent.cfg.model.name!r}")
    from whatnext.rl.offpolicy import q_beta

    if q_beta(agent):  # the exported module ranks by the softmax alone: a different list, so refuse
        raise ConfigError(
            f"export writes the actor's softmax ranking only, but this sqn/sac checkpoint ranks by the softmax plus "
            f"recommend.q_beta ({agent.cfg.recommend.q_beta:g}) times its Q head; serve it with "
            f"'whatnext serve', or export the softmax's own ranking with --set recommend.q_beta=0")
    module = ranker(agent, k, not include_seen)
    window = agent.cfg.model.window
    # two histories of at least two steps: torch.export would fix a dimension of size 1 as a constant
    example = (torch.zeros(2, max(2, window), dtype=torch.long), torch.ones(2, dtype=torch.long))
    try:
        output.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise WhatnextError(f"{output}: cannot create the folder ({e.strerror})") from None
    written = []
    for fmt in formats:
        path = output / names[fmt]
        tmp = path.with_name(f".{path.name}.tmp")
        if fmt == "torchscript":
            scripted = torch.jit.script(module)
            scripted.save(str(tmp))
        else:
            _onnx(module, example, tmp)
        tmp.replace(path)
        written.append(str(path))
    cat = rec.dataset.catalogue
    items = {"ids": [str(x) for x in cat.ids], "display": {c: [str(v) for v in cat.display[c].to_numpy()] for c in cat.display.columns}}
    (output / "items.json").write_text(json.dumps(items, ensure_ascii=False), encoding="utf-8")
    np.save(output / "item_vectors.npy", agent.item_vectors())
    cfg = dataclasses.asdict(agent.cfg)
    meta = {"checkpoint": str(model.checkpoint), "step": model.step, "model_args": agent.args, "window": window, "k": k,
            "exclude_seen": not include_seen, "score": "actor: -exp(log_scale) * squared distance to the proto-action",
            "inputs": {"history": "int64 (B, W<=window), catalogue indices right-padded with -1", "lengths": "int64 (B,)"},
            "outputs": {"scores": "float64 (B, k)", "indices": "int64 (B, k), -1 where none is left"},
            "config": json.loads(json.dumps(cfg, default=str))}
    (output / "config.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")
    written += [str(output / n) for n in ("items.json", "item_vectors.npy", "config.json")]
    return {"output": str(output), "written": written, "checkpoint": str(model.checkpoint), "formats": formats, "k": k}


def _onnx(module: ActorRanker, example: tuple[torch.Tensor, torch.Tensor], path: Path) -> None:
    """ONNX through torch.onnx.export (needs the onnx and onnxscript packages: pip install 'whatnext[export]')."""
    try:
        import onnx  # noqa: F401
        import onnxscript  # noqa: F401
    except ImportError:
        raise ConfigError("--format onnx needs the onnx and onnxscript packages: pip install 'whatnext[export]'") from None
    import warnings

    batch, steps = torch.export.Dim("batch", min=1, max=4096), torch.export.Dim("steps", min=1, max=1_000_000)
    module.onnx = True
    try:
        with warnings.catch_warnings():  # the exporter's notes on its own internals say nothing to a user
            warnings.simplefilter("ignore")
            torch.onnx.export(module, example, str(path), input_names=["history", "lengths"],
                              output_names=["scores", "indices"], dynamic_shapes={"history": {0: batch, 1: steps},
                              "lengths": {0: batch}}, dynamo=True, external_data=False, verbose=False)
    except Exception as e:  # noqa: BLE001 - the exporter raises many kinds; one line says which
        raise WhatnextError(f"{path.with_name('actor.onnx')}: ONNX export failed ({type(e).__name__}: "
                            f"{' '.join(str(e).split())[:160]}); --format torchscript works everywhere") from None
    finally:
        module.onnx = False
