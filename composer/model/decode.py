"""Sampling decoders for torch modules: a trained model is sampled in NumPy, anything else through its forward.

Sampling (``composer.model.generate``) asks a decoder for the next token's logits as a NumPy
array, through two calls: ``prefill(tokens, conds)`` (a window from position 0, emptying
the cache) and ``step(token, cond)`` (one more token). The shipped checkpoint is read
straight into :class:`~composer.model.infer.Weights`. A model from training in the same
process (evaluation, tests) is a :class:`MusicTransformer`: :func:`decoder_for` reads a plain
one in eval mode through views of its parameters into the same
:class:`~composer.model.infer.NumpyDecoder`, and hands anything else (a wrapper that changes
the forward's logits, a model with dropout on) a :class:`ForwardDecoder`, which runs the
module's own forward with a ``torch.cat`` KV cache.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from composer.model.infer import Condition, NumpyDecoder, Weights
from composer.model.transformer import KVCache, MusicTransformer, Plan


def forward_window(
    net: torch.nn.Module,
    tokens: Sequence[int],
    conds: Sequence[Condition],
    cond_mask: torch.Tensor,
    plan_mask: torch.Tensor,
    past: KVCache | None = None,
    start: int = 0,
) -> tuple[torch.Tensor, KVCache]:
    """The forward on ``tokens`` read under ``conds``, one row per ``cond_mask`` entry (from position
    ``start`` after the cache ``past``): the last position's logits (rows, V) and the new cache."""
    rows = cond_mask.shape[0]
    idx = torch.tensor([list(tokens)] * rows)  # (rows, T)
    c = torch.tensor([list(conds)] * rows, dtype=torch.float64)  # (rows, T, 6)
    plan = Plan(c[..., 3].long(), c[..., 4].long(), c[..., 5].float())
    out, _, cache = net(
        idx,
        c[..., :2].float(),
        c[..., 2].float(),
        cond_mask=cond_mask,
        plan=plan,
        plan_mask=plan_mask,
        past=past,
        start=start,
    )
    return out[:, -1], cache


class ForwardDecoder:
    """The decoder interface over any module with the forward's signature: each token through the forward
    with a ``torch.cat`` KV cache, on one torch thread (one token at a time has nothing to share out)."""

    def __init__(self, net: torch.nn.Module, cond_mask: Sequence[bool], plan_mask: Sequence[bool]) -> None:
        self.net, self.config = net, net.config
        self.cond_mask, self.plan_mask = torch.tensor(list(cond_mask)), torch.tensor(list(plan_mask))
        self.cache: KVCache | None = None
        self.n = 0

    def prefill(self, tokens: Sequence[int], conds: Sequence[Condition]) -> np.ndarray:
        return self._run(tokens, conds, None)

    def step(self, token: int, cond: Condition) -> np.ndarray:
        return self._run([token], [cond], self.cache)

    def _run(self, tokens: Sequence[int], conds: Sequence[Condition], past: KVCache | None) -> np.ndarray:
        before = torch.get_num_threads()
        torch.set_num_threads(1)
        start = 0 if past is None else self.n
        try:
            with torch.inference_mode():
                out, self.cache = forward_window(self.net, tokens, conds, self.cond_mask, self.plan_mask, past, start)
        finally:
            torch.set_num_threads(before)
        self.n = len(tokens) if past is None else self.n + len(tokens)
        return out.numpy().copy()


def weights_of(net: MusicTransformer) -> Weights:
    """A plain model's parameters as :class:`Weights` (NumPy views: nothing copied but the transposes)."""
    return Weights.from_state(net.config, {k: v.detach().numpy() for k, v in net.state_dict().items()})


def decoder_for(
    net: torch.nn.Module, cond_mask: Sequence[bool], plan_mask: Sequence[bool]
) -> NumpyDecoder | ForwardDecoder:
    """The NumPy decoder for a plain :class:`MusicTransformer` in eval mode (it has no dropout); the
    forward path for anything else."""
    plain = isinstance(net, MusicTransformer) and type(net).forward is MusicTransformer.forward and not net.training
    return NumpyDecoder(weights_of(net), cond_mask, plan_mask) if plain else ForwardDecoder(net, cond_mask, plan_mask)
