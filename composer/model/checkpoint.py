"""Checkpoint I/O: one ``.pt`` holding weights and both configs, loaded once per process.

A checkpoint is a plain dict (``torch.load(..., weights_only=True)`` safe):
``{"model": state_dict, "model_config": {...}, "tokenizer_config": {...}, "meta": {...}}``.
The tokenizer config is also written beside it as JSON (``<name>.json``) for people and
other tools.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from analysis.caches import cached
from analysis.errors import ModelError
from composer.model.shipped import shipped_file
from composer.model.tokens import Tokenizer, TokenizerConfig
from composer.model.transformer import ModelConfig, MusicTransformer

#: The shipped generator: package data of the ``checkpoints`` package (see :mod:`composer.model.shipped`).
DEFAULT = shipped_file()


@dataclass(frozen=True, eq=False)
class Loaded:
    """A model ready for sampling (eval mode) with its tokenizer and training metadata."""

    model: MusicTransformer
    tokenizer: Tokenizer
    meta: dict


def save(path: str | Path, model: MusicTransformer, tokenizer: Tokenizer, *, meta: dict | None = None) -> Path:
    """Write the checkpoint and its ``.json`` side file; returns the ``.pt`` path."""
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
    return path


def load(path: str | Path = DEFAULT) -> Loaded:
    """The checkpoint at ``path``, read from disk once per process (cached by path and mtime)."""
    path = Path(path).resolve()
    if not path.is_file():
        raise ModelError(f"no composer checkpoint at {path} (train one with `python -m composer.training.train`)")
    return _load(str(path), path.stat().st_mtime_ns)


@cached("checkpoint", maxsize=4)
def _load(path: str, mtime: int) -> Loaded:
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise ModelError(f"cannot read composer checkpoint {path}: {err}") from err
    if not isinstance(payload, dict) or not {"model", "model_config", "tokenizer_config"} <= set(payload):
        raise ModelError(f"{path} is not a composer checkpoint (keys: {sorted(payload)[:8]})")
    try:
        tokenizer = Tokenizer(TokenizerConfig(**payload["tokenizer_config"]))
        cfg = ModelConfig(**payload["model_config"])
        if cfg.vocab_size != tokenizer.vocab_size:
            raise ModelError(
                f"{path}: model vocabulary {cfg.vocab_size} != tokenizer vocabulary {tokenizer.vocab_size}"
            )
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
