"""The generator's forward for sampling, in NumPy: composing needs no torch.

Importing torch costs about 2 s of CPU in a fresh process, more than a minute of music takes
to sample, and ``soundtrack score`` paid it on every run. Sampling runs the small model one
token at a time, where NumPy's few microseconds per call beat torch's dispatch, so the
shipped checkpoint is also written as ``composer.npz`` (:func:`composer.model.checkpoint.save`)
and read here into :class:`Weights`; a model trained in the same process (a torch module) is
read through views of its parameters (``composer.model.decode.decoder_for``).

:class:`NumpyDecoder` computes what :class:`~composer.model.transformer.MusicTransformer`'s
forward does in eval mode: the same sum of embeddings (token, position, condition or its
null, boundary bin, plan), pre-norm blocks with exact (erf) GELU, tied head. It keeps K and
V of every position in preallocated buffers: :meth:`NumpyDecoder.prefill` runs a window
from position 0, :meth:`NumpyDecoder.step` one more token. Float32 throughout; the logits
agree with torch's to rounding (``tests/test_fast_decode.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from analysis.errors import ParameterError
from composer.model.config import FINE_BELOW, ModelConfig
from composer.model.tokens import N_KEYS

#: What a token is conditioned on, as ``composer.model.generate`` computes it per time step:
#: valence, arousal, seconds to the next cut, plan chord class, plan key class, seconds to the next chord change.
Condition = tuple[float, float, float, int, int, float]

_EPS = 1e-5  # nn.LayerNorm's default
_ERF = (0.254829592, -0.284496736, 1.421413741, -1.453152027, 1.061405429)  # Abramowitz & Stegun 7.1.26
_ERF_P = 0.3275911


def erf(x: np.ndarray) -> np.ndarray:
    """The error function to within 1.5e-7 (Abramowitz & Stegun 7.1.26), in float32.

    NumPy has no erf, and importing ``scipy.special`` for it costs more than a piece takes to sample.
    Five terms in float32: the GELU of every block calls it once a token.
    """
    z = np.abs(x)
    t = np.float32(1.0) / (np.float32(1.0) + np.float32(_ERF_P) * z)
    poly = np.float32(_ERF[4]) * t
    for c in _ERF[3::-1]:
        poly += np.float32(c)
        poly *= t
    return np.copysign(np.float32(1.0) - poly * np.exp(-z * z), x)


def gelu(x: np.ndarray) -> np.ndarray:
    """``nn.GELU()``: x Phi(x) with the exact normal CDF."""
    return x * np.float32(0.5) * (np.float32(1.0) + erf(x * np.float32(1 / np.sqrt(2.0))))


def normalise(x: np.ndarray) -> np.ndarray:
    """``nn.LayerNorm`` over the last axis (biased variance, eps 1e-5) before its gain and bias, which
    :class:`Weights` folds into the linear layer that follows."""
    n = np.float32(x.shape[-1])  # np.add.reduce / n is np.mean without its per-call Python overhead
    centred = x - np.add.reduce(x, -1, keepdims=True) / n
    var = np.add.reduce(centred * centred, -1, keepdims=True) / n
    return centred / np.sqrt(var + np.float32(_EPS))


def fold(norm: tuple[np.ndarray, np.ndarray], weight: np.ndarray, bias: np.ndarray | None) -> tuple[np.ndarray, ...]:
    """``(W', b')`` with ``normalise(x) @ W' + b' == (normalise(x) * gain + shift) @ weight + bias``; ``weight`` is
    (in, out) for ``x @ weight``. One product and one sum a layer fewer per token."""
    gain, shift = norm
    folded = bias if bias is not None else np.zeros(weight.shape[1], np.float32)
    return np.ascontiguousarray(gain[:, None] * weight), (shift @ weight + folded).astype(np.float32)


def boundary_bin(config: ModelConfig, seconds: np.ndarray) -> np.ndarray:
    """``MusicTransformer.boundary_bin`` in float32, as torch computes it on the float32 condition."""
    s = np.clip(np.asarray(seconds, np.float32), np.float32(0.0), np.float32(config.max_boundary))
    if config.fine_boundary:
        fine = np.round(s / np.float32(0.01))
        coarse = FINE_BELOW + np.maximum(np.round((s - np.float32(1.0)) / np.float32(0.1)), 0)
        return np.clip(np.where(fine < FINE_BELOW, fine, coarse), 0, config.boundary_bins - 1).astype(np.int64)
    return np.round(s / np.float32(config.max_boundary) * np.float32(config.boundary_bins - 1)).astype(np.int64)


@dataclass(frozen=True, eq=False)
class _Layer:
    """One block's parameters, the linear weights transposed once (``x @ w``) for row-major products.

    ``qkv`` holds ``ln1``'s gain and bias and the attention's 1/sqrt(head size) on its query columns;
    ``fc1`` holds ``ln2``'s (:func:`fold`).
    """

    qkv: tuple[np.ndarray, np.ndarray]  # (C, 3C), (3C,)
    proj: tuple[np.ndarray, np.ndarray]
    fc1: tuple[np.ndarray, np.ndarray]
    fc2: tuple[np.ndarray, np.ndarray]


@dataclass(frozen=True, eq=False)
class Weights:
    """A generator's parameters as float32 arrays, with its config; what sampling needs and nothing more."""

    config: ModelConfig
    arrays: Mapping[str, np.ndarray]  # the state dict by name (``head.weight`` is ``tok.weight``: tied)
    layers: tuple[_Layer, ...] = field(init=False, repr=False)
    head: tuple[np.ndarray, np.ndarray] = field(init=False, repr=False)  # ln_f folded into the tied head

    def __post_init__(self) -> None:
        missing = sorted(set(self.required()) - set(self.arrays))
        if missing:
            raise ParameterError(f"generator weights lack {', '.join(missing[:5])}")
        object.__setattr__(self, "layers", tuple(self._layer(i) for i in range(self.config.n_layer)))
        ln_f = (self.arrays["ln_f.weight"], self.arrays["ln_f.bias"])
        object.__setattr__(self, "head", fold(ln_f, self.arrays["tok.weight"].T, None))

    def required(self) -> list[str]:
        names = ["tok.weight", "pos.weight", "va_proj.0.weight", "va_proj.0.bias", "va_proj.2.weight",
                 "va_proj.2.bias", "null_va", "boundary.weight", "ln_f.weight", "ln_f.bias"]
        if self.config.plan_chords:
            names += ["plan_chord.weight", "plan_key.weight", "plan_change.weight"]
        parts = ["ln1.weight", "ln1.bias", "attn.qkv.weight", "attn.qkv.bias", "attn.proj.weight", "attn.proj.bias",
                 "ln2.weight", "ln2.bias", "mlp.0.weight", "mlp.0.bias", "mlp.2.weight", "mlp.2.bias"]
        return names + [f"blocks.{i}.{p}" for i in range(self.config.n_layer) for p in parts]

    def __getitem__(self, name: str) -> np.ndarray:
        return self.arrays[name]

    def _layer(self, i: int) -> _Layer:
        a = lambda p: self.arrays[f"blocks.{i}.{p}"]  # noqa: E731
        linear = lambda p: (np.ascontiguousarray(a(f"{p}.weight").T), a(f"{p}.bias"))  # noqa: E731
        qkv_w, qkv_b = fold((a("ln1.weight"), a("ln1.bias")), *linear("attn.qkv"))
        scale = np.ones(qkv_b.size, np.float32)
        scale[: self.config.n_embd] = 1.0 / np.sqrt(self.config.n_embd // self.config.n_head)
        return _Layer(qkv=(qkv_w * scale, qkv_b * scale), proj=linear("attn.proj"),
                      fc1=fold((a("ln2.weight"), a("ln2.bias")), *linear("mlp.0")), fc2=linear("mlp.2"))

    @classmethod
    def from_state(cls, config: ModelConfig, state: Mapping[str, np.ndarray]) -> Weights:
        """From a state dict of arrays (float32 views are kept, other dtypes converted)."""
        return cls(config, {k: np.asarray(v, np.float32) for k, v in state.items() if k != "head.weight"})


class NumpyDecoder:
    """The KV cache of one sampling run, filled by :meth:`prefill` and extended by :meth:`step`.

    ``cond_mask`` (rows,) bool: False = the null condition for that row (two rows, conditioned
    and null, under classifier-free guidance); ``plan_mask`` likewise for the plan.
    """

    def __init__(self, weights: Weights, cond_mask: Sequence[bool], plan_mask: Sequence[bool]) -> None:
        cfg = weights.config
        self.w, self.config = weights, cfg
        self.cond_mask = np.asarray(cond_mask, bool).reshape(-1)
        self.plan_mask = np.asarray(plan_mask, bool).reshape(-1)
        self.rows = self.cond_mask.size
        self.heads, self.head_dim = cfg.n_head, cfg.n_embd // cfg.n_head
        shape = (self.rows, cfg.n_head, cfg.block_size, self.head_dim)
        self.k = [np.zeros(shape, np.float32) for _ in range(cfg.n_layer)]
        self.v = [np.zeros(shape, np.float32) for _ in range(cfg.n_layer)]
        self.n = 0  # positions in the cache
        self._memo: dict[Hashable, np.ndarray] = {}  # one embedded part of the condition, by its value
        self._conds: dict[Condition, tuple[np.ndarray, ...]] = {}  # a condition's parts

    # ------------------------------------------------------------------ the two entry points
    def prefill(self, tokens: Sequence[int], conds: Sequence[Condition]) -> np.ndarray:
        """Empty the cache and run ``tokens`` (read under ``conds``) from position 0: the last position's
        logits (rows, V)."""
        T = len(tokens)
        if not 0 < T <= self.config.block_size:
            raise ParameterError(f"a window of {T} tokens does not fit `block_size` {self.config.block_size}")
        c = np.asarray(conds, np.float64).reshape(T, 6)
        x = self.w["tok.weight"][np.asarray(tokens)] + self.w["pos.weight"][:T]  # (T, C)
        x = x + self._va(c[:, :2]) + self._boundary(c[:, 2])  # (rows, T, C)
        if self.config.plan_chords:
            x = x + self._plan(c[:, 3].astype(np.int64), c[:, 4].astype(np.int64), c[:, 5])
        causal = np.triu(np.ones((T, T), bool), 1)
        for i, layer in enumerate(self.w.layers):
            x = self._block(x, layer, i, 0, causal)
        self.n = T
        return self._head(x[:, -1])

    def step(self, token: int, cond: Condition) -> np.ndarray:
        """Logits (rows, V) after ``token`` at the next position (read under ``cond``), which joins the cache."""
        if self.n >= self.config.block_size:
            raise ParameterError(
                f"sequence of {self.n + 1} tokens exceeds `block_size` {self.config.block_size} (prefill a shorter one)"
            )
        x = self.w["tok.weight"][token] + self.w["pos.weight"][self.n]  # (C,)
        for part in self._parts(cond):
            x = x + part  # (rows, C)
        x = x[:, None]  # (rows, 1, C)
        for i, layer in enumerate(self.w.layers):
            x = self._block(x, layer, i, self.n, None)
        self.n += 1
        return self._head(x[:, -1])

    # ------------------------------------------------------------------ the layers
    def _block(self, x: np.ndarray, layer: _Layer, i: int, at: int, causal: np.ndarray | None) -> np.ndarray:
        """One pre-norm block on positions ``at ..`` of x (rows, T, C); K and V join layer ``i``'s cache."""
        rows, T, C = x.shape
        H, D = self.heads, self.head_dim
        qkv = normalise(x) @ layer.qkv[0] + layer.qkv[1]  # (rows, T, 3C), queries already scaled
        q, k, v = (qkv[..., j * C : (j + 1) * C].reshape(rows, T, H, D).transpose(0, 2, 1, 3) for j in range(3))
        self.k[i][:, :, at : at + T] = k
        self.v[i][:, :, at : at + T] = v
        keys, values = self.k[i][:, :, : at + T], self.v[i][:, :, : at + T]  # (rows, H, at + T, D)
        att = q @ keys.transpose(0, 1, 3, 2)  # (rows, H, T, at + T)
        if causal is not None:
            att = np.where(causal, np.float32(-np.inf), att)
        att = np.exp(att - att.max(-1, keepdims=True))
        y = (att / att.sum(-1, keepdims=True)) @ values  # (rows, H, T, D)
        x = x + y.transpose(0, 2, 1, 3).reshape(rows, T, C) @ layer.proj[0] + layer.proj[1]
        h = gelu(normalise(x) @ layer.fc1[0] + layer.fc1[1])
        return x + h @ layer.fc2[0] + layer.fc2[1]

    def _head(self, x: np.ndarray) -> np.ndarray:
        return normalise(x) @ self.w.head[0] + self.w.head[1]  # (rows, V)

    # ------------------------------------------------------------------ the condition
    def _parts(self, cond: Condition) -> tuple[np.ndarray, ...]:
        """The condition's embedded parts for one position, each (rows, C): kept per condition (time
        moves one step at a time, so most tokens repeat the last one) and each part by its own value."""
        parts = self._conds.get(cond)
        if parts is not None:
            return parts
        v, a, boundary, chord, key, change = cond
        made = [self._memo_part(("va", v, a), lambda: self._va(np.array([[v, a]]))[:, 0]),
                self._memo_part(("boundary", boundary), lambda: self._boundary(np.array([boundary]))[:, 0])]
        if self.config.plan_chords:
            made.append(self._memo_part(
                ("plan", chord, key, change),
                lambda: self._plan(np.array([chord]), np.array([key]), np.array([change]))[:, 0]))
        parts = self._conds[cond] = tuple(made)
        return parts

    def _memo_part(self, key: Hashable, make: Callable[[], np.ndarray]) -> np.ndarray:
        part = self._memo.get(key)
        if part is None:
            part = self._memo[key] = make()
        return part

    def _va(self, va: np.ndarray) -> np.ndarray:
        """MLP(valence, arousal) per position, or the null vector on rows without the condition: (rows, T, C)."""
        w = self.w
        h = gelu(va.astype(np.float32) @ w["va_proj.0.weight"].T + w["va_proj.0.bias"])
        cond = h @ w["va_proj.2.weight"].T + w["va_proj.2.bias"]  # (T, C)
        return np.where(self.cond_mask[:, None, None], cond[None], w["null_va"][None, None])

    def _boundary(self, seconds: np.ndarray) -> np.ndarray:
        bins = boundary_bin(self.config, seconds)  # (T,)
        bins = np.where(self.cond_mask[:, None], bins[None], self.config.boundary_bins)  # (rows, T)
        return self.w["boundary.weight"][bins]

    def _plan(self, chord: np.ndarray, key: np.ndarray, change: np.ndarray) -> np.ndarray:
        cfg, keep = self.config, self.plan_mask[:, None]
        chord = np.where(keep, chord[None], cfg.plan_chords)
        key = np.where(keep, key[None], N_KEYS)
        change = np.where(keep, boundary_bin(cfg, change)[None], cfg.boundary_bins)
        w = self.w
        return w["plan_chord.weight"][chord] + w["plan_key.weight"][key] + w["plan_change.weight"][change]
