"""Checkpoint I/O: a ``.pt`` holding weights and both configs, and its ``.npz`` twin for sampling.

A checkpoint is a plain dict (``torch.load(..., weights_only=True)`` safe):
``{"model": state_dict, "model_config": {...}, "tokenizer_config": {...}, "meta": {...}}``.
:func:`save` writes beside it the same weights as a NumPy ``.npz`` (the configs and meta as
one JSON string under ``__checkpoint__``), which :func:`load` reads without importing torch:
sampling runs in NumPy (:mod:`composer.model.infer`), so composing never pays for torch.
The tokenizer config is also written as JSON (``<name>.json``) for people and other tools.
Each file is read once per process.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from analysis.caches import cached
from analysis.errors import ModelError
from composer.model.config import ModelConfig
from composer.model.infer import Weights
from composer.model.shipped import SAMPLING_NAME, shipped_file
from composer.model.tokens import Tokenizer, TokenizerConfig

if TYPE_CHECKING:
    from composer.model.transformer import MusicTransformer

#: The shipped generator: package data of the ``checkpoints`` package (see :mod:`composer.model.shipped`).
DEFAULT = shipped_file()
#: Its NumPy twin, what composing loads (no torch).
SAMPLING = shipped_file(SAMPLING_NAME)
_HEADER = "__checkpoint__"


@dataclass(frozen=True, eq=False)
class Loaded:
    """A model ready for sampling with its tokenizer and training metadata: ``model`` is a torch
    :class:`~composer.model.transformer.MusicTransformer` in eval mode (from a ``.pt``) or its
    :class:`~composer.model.infer.Weights` (from a ``.npz``); both have ``.config``."""

    model: Any
    tokenizer: Tokenizer
    meta: dict


def save(path: str | Path, model: MusicTransformer, tokenizer: Tokenizer, *, meta: dict | None = None) -> Path:
    """Write the checkpoint, its ``.npz`` twin and its ``.json`` side file; returns the ``.pt`` path."""
    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "model": {k: v.detach().clone() for k, v in model.state_dict().items() if k != "head.weight"},
        "model_config": model.config.to_dict(),
        "tokenizer_config": asdict(tokenizer.config),
        "meta": dict(meta or {}),
    }
    tmp = path.with_suffix(".tmp")
    torch.save(payload, tmp)
    tmp.replace(path)
    side = {"model_config": payload["model_config"], "tokenizer_config": payload["tokenizer_config"], **payload["meta"]}
    path.with_suffix(".json").write_text(json.dumps(side, indent=2, default=str))
    write_npz(path.with_suffix(".npz"), payload)
    return path


def write_npz(path: str | Path, payload: dict) -> Path:
    """The weights of a checkpoint ``payload`` (as :func:`save` builds it) as float32 arrays, configs and
    meta as JSON under ``__checkpoint__``; written atomically."""
    path = Path(path)
    header = {k: payload[k] for k in ("model_config", "tokenizer_config", "meta")}
    arrays = {k: v.detach().float().numpy() for k, v in payload["model"].items()}
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, **{_HEADER: np.array(json.dumps(header, default=str))}, **arrays)
    tmp.replace(path)
    return path


def export_npz(pt: str | Path) -> Path:
    """Write the ``.npz`` twin beside an existing ``.pt`` checkpoint (for one saved before the twin existed)."""
    import torch

    payload = torch.load(Path(pt), map_location="cpu", weights_only=True)
    return write_npz(Path(pt).with_suffix(".npz"), payload)


def load(path: str | Path = DEFAULT) -> Loaded:
    """The checkpoint at ``path``, read from disk once per process (cached by path and mtime)."""
    path = Path(path).resolve()
    if not path.is_file():
        raise ModelError(f"no composer checkpoint at {path} (train one with `python -m composer.training.train`)")
    return _load(str(path), path.stat().st_mtime_ns)


def _fitting(path: str, cfg: ModelConfig, tokenizer: Tokenizer) -> ModelConfig:
    """``cfg``, when its vocabulary is the tokenizer's (else a :class:`ModelError`)."""
    if cfg.vocab_size != tokenizer.vocab_size:
        raise ModelError(f"{path}: model vocabulary {cfg.vocab_size} != tokenizer vocabulary {tokenizer.vocab_size}")
    return cfg


@cached("checkpoint", maxsize=4)
def _load(path: str, mtime: int) -> Loaded:
    if path.endswith(".npz"):
        return _load_npz(path)
    import torch

    from composer.model.transformer import MusicTransformer

    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise ModelError(f"cannot read composer checkpoint {path}: {err}") from err
    if not isinstance(payload, dict) or not {"model", "model_config", "tokenizer_config"} <= set(payload):
        raise ModelError(f"{path} is not a composer checkpoint (keys: {sorted(payload)[:8]})")
    try:
        tokenizer = Tokenizer(TokenizerConfig(**payload["tokenizer_config"]))
        cfg = _fitting(path, ModelConfig(**payload["model_config"]), tokenizer)
        model = MusicTransformer(cfg)
        state = dict(payload["model"])
        state["head.weight"] = state["tok.weight"]
        model.load_state_dict(state)
    except ModelError:
        raise
    except Exception as err:
        raise ModelError(f"{path} does not fit this code's model: {err}") from err
    model.eval()
    return Loaded(model=model, tokenizer=tokenizer, meta=dict(payload.get("meta", {})))


def _load_npz(path: str) -> Loaded:
    """A ``.npz`` twin: the configs and meta from its header, the weights as :class:`Weights` (no torch)."""
    try:
        with np.load(path, allow_pickle=False) as z:
            header = json.loads(str(z[_HEADER]))
            arrays = {k: z[k] for k in z.files if k != _HEADER}
    except Exception as err:
        raise ModelError(f"cannot read composer weights {path}: {err}") from err
    try:
        tokenizer = Tokenizer(TokenizerConfig(**header["tokenizer_config"]))
        weights = Weights.from_state(_fitting(path, ModelConfig(**header["model_config"]), tokenizer), arrays)
    except ModelError:
        raise
    except Exception as err:
        raise ModelError(f"{path} does not fit this code's model: {err}") from err
    return Loaded(model=weights, tokenizer=tokenizer, meta=dict(header.get("meta", {})))


if __name__ == "__main__":  # python -m composer.model.checkpoint [checkpoint.pt]: (re)write its .npz twin
    import sys

    print(export_npz(sys.argv[1] if len(sys.argv) > 1 else DEFAULT))
