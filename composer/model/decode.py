"""One-token decoding for sampling: the forward's own kernels on the same shapes, without its overhead.

Sampling runs the small model one token at a time, where a torch call costs microseconds of
dispatch and the arithmetic almost nothing: through :meth:`MusicTransformer.forward` a token
took ~2.4 ms, mostly ``nn.Module`` calls, ``torch.cat`` growing the KV cache and the
condition embedded anew at every token. :class:`StepDecoder` computes the same thing for
one new token:

* the weights are read once, as references to the model's parameters (nothing copied);
* K and V are written into preallocated buffers instead of concatenated (attention over a
  view of the buffer is bitwise attention over the concatenation);
* the token, position, condition, boundary and plan embeddings are added in NumPy in the
  forward's order (a float32 add rounds alike in NumPy and torch); the condition's parts
  are computed by the model's own modules once per distinct value and kept;
* the layers run the forward's kernels (``layer_norm``, ``linear``, ``gelu``,
  ``scaled_dot_product_attention``) on the forward's shapes,

so its logits are bitwise those of the forward with a KV cache (``tests/test_fast_decode.py``).
The prompt and each refill of a full context still run the forward (:func:`forward_window`);
:meth:`StepDecoder.load` takes the cache it returns. A model that is not a plain
:class:`MusicTransformer` (a wrapper that changes its forward's logits, say) gets
:class:`ForwardDecoder`, the same interface over its forward: :func:`decoder_for` chooses.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from analysis.errors import ParameterError
from composer.model.transformer import KVCache, MusicTransformer, Plan

#: What a token is conditioned on, as ``composer.model.generate`` computes it per time step:
#: valence, arousal, seconds to the next cut, plan chord class, plan key class, seconds to the next chord change.
Condition = tuple[float, float, float, int, int, float]


def forward_window(
    net: MusicTransformer,
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
    """:class:`StepDecoder`'s interface over any model with the forward's signature: each token through
    the forward with a ``torch.cat`` KV cache (how sampling ran before the step decoder)."""

    def __init__(self, net: MusicTransformer, cond_mask: torch.Tensor, plan_mask: torch.Tensor) -> None:
        self.net, self.cond_mask, self.plan_mask = net, cond_mask, plan_mask
        self.cache: KVCache | None = None
        self.n = 0

    def load(self, cache: KVCache) -> None:
        self.cache, self.n = cache, int(cache[0][0].shape[2])

    def step(self, token: int, cond: Condition) -> torch.Tensor:
        out, self.cache = forward_window(
            self.net, [token], [cond], self.cond_mask, self.plan_mask, past=self.cache, start=self.n
        )
        self.n += 1
        return out


def decoder_for(
    net: MusicTransformer, cond_mask: torch.Tensor, plan_mask: torch.Tensor
) -> StepDecoder | ForwardDecoder:
    """The step decoder for a plain :class:`MusicTransformer` in eval mode (it has no dropout); the forward
    path for anything else."""
    plain = isinstance(net, MusicTransformer) and type(net).forward is MusicTransformer.forward and not net.training
    return (StepDecoder if plain else ForwardDecoder)(net, cond_mask, plan_mask)


@dataclass(frozen=True, eq=False)
class _Layer:
    """One block's parameters (the model's own tensors; weights as transposed views, as ``F.linear`` hands
    them to ``addmm``) and its K/V buffer."""

    ln1: tuple[torch.Tensor, torch.Tensor, float]  # weight, bias, eps
    qkv: tuple[torch.Tensor, torch.Tensor]  # bias, weight.t()
    proj: tuple[torch.Tensor, torch.Tensor]
    ln2: tuple[torch.Tensor, torch.Tensor, float]
    fc1: tuple[torch.Tensor, torch.Tensor]
    fc2: tuple[torch.Tensor, torch.Tensor]
    kv: torch.Tensor  # (rows, 2, H, block, D): K then V of every cached position


class StepDecoder:
    """The KV cache of one sampling run and the one-token step that extends it.

    ``cond_mask`` (rows,) bool is the forward's: False = the null condition for that row
    (two rows, conditioned and null, under classifier-free guidance); ``plan_mask`` likewise
    for the plan. Call :meth:`load` with the forward's cache of the first window, then
    :meth:`step` once per token.
    """

    def __init__(self, net: MusicTransformer, cond_mask: torch.Tensor, plan_mask: torch.Tensor) -> None:
        cfg = net.config
        self.net, self.cond_mask, self.plan_mask = net, cond_mask, plan_mask
        self.rows, self.n_embd = int(cond_mask.shape[0]), cfg.n_embd
        self.n = 0  # positions in the cache
        shape = (self.rows, 2, cfg.n_head, cfg.block_size, cfg.n_embd // cfg.n_head)
        self.layers = [_layer(block, torch.zeros(shape)) for block in net.blocks]
        self.ln_f = (net.ln_f.weight, net.ln_f.bias, net.ln_f.eps)
        self.head = net.head.weight.t()
        self.tok = _table(net.tok.weight)
        self.pos = _table(net.pos.weight)
        self._memo: dict[Hashable, np.ndarray] = {}  # one embedded part of the condition by its value
        self._conds: dict[Condition, tuple[np.ndarray, ...]] = {}  # a condition's parts

    def load(self, cache: KVCache) -> None:
        """Replace the cache by the forward's (per layer (K, V), each (rows, H, T, D))."""
        n = int(cache[0][0].shape[2])
        for layer, (k, v) in zip(self.layers, cache, strict=True):
            layer.kv[:, 0, :, :n] = k
            layer.kv[:, 1, :, :n] = v
        self.n = n

    @torch.inference_mode()
    def step(self, token: int, cond: Condition) -> torch.Tensor:
        """Logits (rows, V) after ``token`` at the next position (read under ``cond``), which joins the cache."""
        if self.n >= self.net.config.block_size:
            block = self.net.config.block_size
            raise ParameterError(f"sequence of {self.n + 1} tokens exceeds `block_size` {block} (load a shorter one)")
        n = self.n
        x = torch.from_numpy(self._embed(token, cond))  # (rows, C)
        for layer in self.layers:
            x = _block(x, layer, n)
        self.n = n + 1
        w, b, eps = self.ln_f
        return torch.mm(torch.layer_norm(x, w.shape, w, b, eps), self.head)  # (rows, V): F.linear without bias

    def _embed(self, token: int, cond: Condition) -> np.ndarray:
        """The forward's input sum for one position, (rows, C), added in the forward's order:
        token, position, VA (or its null), boundary bin, then the plan's three embeddings."""
        parts = self._conds.get(cond)
        if parts is None:
            v, a, boundary, chord, key, change = cond
            parts = self._conds[cond] = (
                self._part(("va", v, a), self._va, cond),
                self._part(("boundary", boundary), self._boundary, cond),
                *((self._part(("plan", chord, key, change), self._plan, cond),) if self.net.config.plan_chords else ()),
            )
        x = self.tok[token] + self.pos[self.n]  # (C,)
        for part in parts:
            x = x + part  # (rows, C)
        return x

    def _part(self, key: Hashable, make: Callable[[torch.Tensor], torch.Tensor], cond: Condition) -> np.ndarray:
        """One embedded part of the condition, (rows, C), made by ``make`` from the forward's (rows, 1, 6)
        float64 condition the first time ``key`` is asked for."""
        part = self._memo.get(key)
        if part is None:
            c = torch.tensor([[cond]] * self.rows, dtype=torch.float64)  # (rows, 1, 6), as the sampler feeds it
            part = self._memo[key] = make(c).reshape(self.rows, self.n_embd).numpy()
        return part

    def _va(self, c: torch.Tensor) -> torch.Tensor:
        net = self.net
        keep = self.cond_mask.view(self.rows, 1, 1)
        return torch.where(keep, net.va_proj(c[..., :2].float()), net.null_va.view(1, 1, -1)).detach()

    def _boundary(self, c: torch.Tensor) -> torch.Tensor:
        net = self.net
        bnd = net.boundary_bin(c[..., 2].float())  # (rows, 1)
        bnd = torch.where(self.cond_mask.view(self.rows, 1), bnd, torch.full_like(bnd, net.config.boundary_bins))
        return net.boundary(bnd).detach()

    def _plan(self, c: torch.Tensor) -> torch.Tensor:
        plan = Plan(c[..., 3].long(), c[..., 4].long(), c[..., 5].float())
        return self.net.plan_embedding(plan, self.plan_mask, (self.rows, 1)).detach()


def _table(weight: torch.Tensor) -> np.ndarray:
    """An embedding table as a NumPy view of the parameter (so it follows in-place changes)."""
    return weight.detach().numpy()


def _layer(block: torch.nn.Module, kv: torch.Tensor) -> _Layer:
    attn, mlp = block.attn, block.mlp
    linear = lambda m: (m.bias, m.weight.t())  # noqa: E731
    return _Layer(
        ln1=(block.ln1.weight, block.ln1.bias, block.ln1.eps),
        qkv=linear(attn.qkv),
        proj=linear(attn.proj),
        ln2=(block.ln2.weight, block.ln2.bias, block.ln2.eps),
        fc1=linear(mlp[0]),
        fc2=linear(mlp[2]),
        kv=kv,
    )


def _block(x: torch.Tensor, layer: _Layer, n: int) -> torch.Tensor:
    """One block on one new position ``n``, x (rows, C): :class:`~composer.model.transformer.Block` in eval
    mode at T = 1, with the calls ``F.linear`` makes on a (rows, 1, C) input (``addmm`` of the flattened rows)."""
    rows, C = x.shape
    kv = layer.kv
    w, b, eps = layer.ln1
    qkv = torch.addmm(layer.qkv[0], torch.layer_norm(x, w.shape, w, b, eps), layer.qkv[1])  # (rows, 3C)
    q_k_v = qkv.view(rows, 3, kv.shape[2], kv.shape[4])  # (rows, 3, H, D): T = 1, so the split is a view
    kv.select(3, n).copy_(q_k_v.narrow(1, 1, 2))
    seen = kv.narrow(3, 0, n + 1)  # (rows, 2, H, n + 1, D)
    y = F.scaled_dot_product_attention(q_k_v.select(1, 0).unsqueeze(2), seen.select(1, 0), seen.select(1, 1))
    x = x + torch.addmm(layer.proj[0], y.view(rows, C), layer.proj[1])  # y (rows, H, 1, D)
    w, b, eps = layer.ln2
    h = torch.addmm(layer.fc1[0], torch.layer_norm(x, w.shape, w, b, eps), layer.fc1[1])  # (rows, 4C)
    return x + torch.addmm(layer.fc2[0], F.gelu(h), layer.fc2[1])
