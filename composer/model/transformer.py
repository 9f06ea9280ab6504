"""A decoder-only transformer over event tokens, conditioned per position (nanoGPT style).

Input at position ``t`` is the sum of

* the token embedding and a learned absolute position embedding,
* a learned projection of the target (valence, arousal) at that token's time; VA may
  change along the sequence. A learned *null* vector replaces it when the condition is
  dropped (``cond_mask`` False), so one model also runs unconditioned,
* an embedding of the *boundary offset*: seconds from the token to the next cut,
  clamped to ``max_boundary`` and cut into ``boundary_bins`` bins; the extra bin
  ``boundary_bins`` is the null (no cut information). With ``fine_boundary`` the bins
  are 10 ms wide below one second (one per ``SHIFT`` step) and 0.1 s wide above, so
  the model can land a time shift exactly on a change it is told about,
* with ``plan_chords`` > 0, the *plan* the piece must realise (issue 12): embeddings of
  the planned chord sounding at the token's time (``plan_chords`` classes, the
  tokenizer's chord vocabulary, plus a null), of the key (12 tonics x major/minor,
  plus a null) and of the seconds to the next planned chord change (binned like the
  boundary). A learned null replaces all three when the plan is dropped (``plan_mask``
  False), so one model runs with or without a plan.

Shapes: B batch, T time, C ``n_embd``, H heads, D = C / H.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from analysis.errors import ParameterError
from composer.model.config import FINE_BELOW, ModelConfig
from composer.model.tokens import N_KEYS

KVCache = list[tuple[torch.Tensor, torch.Tensor]]  # per layer (k, v), each (B, H, T_past, D)


@dataclass(frozen=True, eq=False)
class Plan:
    """The plan per token: ``chord`` (B, T) long chord class (``plan_chords`` = none), ``key`` (B, T)
    long ``tonic + 12 * minor`` (24 = none), ``change`` (B, T) float seconds to the next planned change."""

    chord: torch.Tensor
    key: torch.Tensor
    change: torch.Tensor


class SelfAttention(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.n_head = cfg.n_head
        self.qkv = nn.Linear(cfg.n_embd, 3 * cfg.n_embd)
        self.proj = nn.Linear(cfg.n_embd, cfg.n_embd)
        self.dropout = cfg.dropout

    def forward(
        self, x: torch.Tensor, past: tuple[torch.Tensor, torch.Tensor] | None
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        B, T, C = x.shape
        q, k, v = self.qkv(x).split(C, dim=2)  # each (B, T, C)
        q, k, v = (z.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for z in (q, k, v))  # (B, H, T, D)
        if past is not None:
            k = torch.cat([past[0], k], dim=2)  # (B, H, T_past + T, D)
            v = torch.cat([past[1], v], dim=2)
        # causal over the new positions; with a cache of length P, new token i sees keys 0..P+i
        if past is None:
            y = F.scaled_dot_product_attention(
                q, k, v, is_causal=True, dropout_p=self.dropout if self.training else 0.0
            )
        elif T == 1:
            y = F.scaled_dot_product_attention(q, k, v)
        else:
            P = k.shape[2] - T
            mask = torch.ones(T, P + T, dtype=torch.bool, device=x.device).tril(diagonal=P)
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        y = y.transpose(1, 2).contiguous().view(B, T, C)  # (B, T, C)
        return self.proj(y), (k, v)


class Block(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(cfg.n_embd)
        self.attn = SelfAttention(cfg)
        self.ln2 = nn.LayerNorm(cfg.n_embd)
        self.mlp = nn.Sequential(
            nn.Linear(cfg.n_embd, 4 * cfg.n_embd),
            nn.GELU(),
            nn.Linear(4 * cfg.n_embd, cfg.n_embd),
            nn.Dropout(cfg.dropout),
        )

    def forward(
        self, x: torch.Tensor, past: tuple[torch.Tensor, torch.Tensor] | None
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        a, kv = self.attn(self.ln1(x), past)
        x = x + a
        return x + self.mlp(self.ln2(x)), kv


class MusicTransformer(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.config = cfg
        self.tok = nn.Embedding(cfg.vocab_size, cfg.n_embd)
        self.pos = nn.Embedding(cfg.block_size, cfg.n_embd)
        self.va_proj = nn.Sequential(nn.Linear(2, cfg.n_embd), nn.GELU(), nn.Linear(cfg.n_embd, cfg.n_embd))
        self.null_va = nn.Parameter(torch.zeros(cfg.n_embd))
        self.boundary = nn.Embedding(cfg.boundary_bins + 1, cfg.n_embd)  # last index = null
        if cfg.plan_chords:
            self.plan_chord = nn.Embedding(cfg.plan_chords + 1, cfg.n_embd)  # last index = null
            self.plan_key = nn.Embedding(N_KEYS + 1, cfg.n_embd)
            self.plan_change = nn.Embedding(cfg.boundary_bins + 1, cfg.n_embd)
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layer))
        self.ln_f = nn.LayerNorm(cfg.n_embd)
        self.head = nn.Linear(cfg.n_embd, cfg.vocab_size, bias=False)
        self.head.weight = self.tok.weight  # weight tying
        self.apply(self._init)
        for name, p in self.named_parameters():
            if name.endswith("proj.weight") or name.endswith("mlp.2.weight"):
                nn.init.normal_(p, 0.0, 0.02 / math.sqrt(2 * cfg.n_layer))

    @staticmethod
    def _init(m: nn.Module) -> None:
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, 0.0, 0.02)

    def n_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def boundary_bin(self, seconds: torch.Tensor) -> torch.Tensor:
        """Bin index of boundary offsets in seconds, (B, T) float -> (B, T) long."""
        c = self.config
        s = seconds.clamp(0.0, c.max_boundary)
        if c.fine_boundary:
            fine = (s / 0.01).round()
            coarse = FINE_BELOW + ((s - 1.0) / 0.1).round().clamp(min=0)
            return torch.where(fine < FINE_BELOW, fine, coarse).long().clamp(0, c.boundary_bins - 1)
        return (s / c.max_boundary * (c.boundary_bins - 1)).round().long()

    def plan_embedding(self, plan: Plan | None, plan_mask: torch.Tensor | None, shape: tuple[int, int]) -> torch.Tensor:
        """Sum of the plan embeddings (B, T, C); nulls where there is no plan or ``plan_mask`` is False."""
        c = self.config
        dev = self.tok.weight.device
        if plan is None:
            chord = torch.full(shape, c.plan_chords, dtype=torch.long, device=dev)
            key = torch.full(shape, N_KEYS, dtype=torch.long, device=dev)
            change = torch.full(shape, c.boundary_bins, dtype=torch.long, device=dev)
        else:
            chord, key, change = plan.chord, plan.key, self.boundary_bin(plan.change)
            if plan_mask is not None:
                keep = plan_mask.view(-1, 1)
                chord = torch.where(keep, chord, torch.full_like(chord, c.plan_chords))
                key = torch.where(keep, key, torch.full_like(key, N_KEYS))
                change = torch.where(keep, change, torch.full_like(change, c.boundary_bins))
        return self.plan_chord(chord) + self.plan_key(key) + self.plan_change(change)

    def forward(
        self,
        idx: torch.Tensor,
        va: torch.Tensor,
        boundary: torch.Tensor,
        *,
        cond_mask: torch.Tensor | None = None,
        plan: Plan | None = None,
        plan_mask: torch.Tensor | None = None,
        targets: torch.Tensor | None = None,
        past: KVCache | None = None,
        start: int = 0,
    ) -> tuple[torch.Tensor, torch.Tensor | None, KVCache]:
        """Logits (B, T, V), the mean cross-entropy over non-PAD ``targets`` (or None), the new cache.

        ``idx`` (B, T) long; ``va`` (B, T, 2) float in [-1, 1]; ``boundary`` (B, T) float seconds;
        ``cond_mask`` (B,) bool, False = use the null condition (VA and boundary) for that row;
        ``plan`` the planned chord, key and seconds to the next change per token (ignored by a
        model without plan input; ``None`` = no plan) and ``plan_mask`` (B,) bool, False = no plan
        for that row;
        ``past`` the cache from earlier calls and ``start`` the position of ``idx[:, 0]``.
        """
        B, T = idx.shape
        if start + T > self.config.block_size:
            raise ParameterError(f"sequence of {start + T} tokens exceeds `block_size` {self.config.block_size}")
        pos = torch.arange(start, start + T, device=idx.device)  # (T,)
        cond = self.va_proj(va)  # (B, T, C)
        bnd = self.boundary_bin(boundary)  # (B, T)
        if cond_mask is not None:
            keep = cond_mask.view(B, 1)
            cond = torch.where(keep.unsqueeze(-1), cond, self.null_va.view(1, 1, -1))
            bnd = torch.where(keep, bnd, torch.full_like(bnd, self.config.boundary_bins))
        x = self.tok(idx) + self.pos(pos) + cond + self.boundary(bnd)  # (B, T, C)
        if self.config.plan_chords:
            x = x + self.plan_embedding(plan, plan_mask, (B, T))
        x = self.drop(x)
        cache: KVCache = []
        for i, block in enumerate(self.blocks):
            x, kv = block(x, None if past is None else past[i])
            cache.append(kv)
        logits = self.head(self.ln_f(x))  # (B, T, V)
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.reshape(-1), ignore_index=0)
        return logits, loss, cache
