"""Small 1-D filters in plain NumPy, equal to the SciPy functions the analysis used.

Importing ``scipy.signal`` (which pulls in ``scipy.stats``) and ``scipy.ndimage`` costs about
1.3 s, while the analysis needs only four of their simplest functions (and rendering only
:func:`sosfilt`, for the loudness meter). Each function here names the SciPy call it reproduces
and the modes in which it does; ``tests/test_filters.py`` checks the equality. All but
:func:`sosfilt` take a 1-D array (the only shape the analysis passes) and raise otherwise.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from functools import lru_cache
from math import gcd
from typing import Literal

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

Mode = Literal["reflect", "nearest"]
_PAD = {"reflect": "symmetric", "nearest": "edge"}  # scipy.ndimage mode -> numpy.pad mode
_CHUNK = 1 << 18  # resample_poly: about this many output samples per block
_SOS_BLOCK = 64  # sosfilt: samples per block (one matrix product for all blocks)
_SOS_GROUP = 64  # sosfilt: blocks per group (their entering states: one matrix product)
_SOS_STRETCH = 16 * _SOS_BLOCK * _SOS_GROUP  # sosfilt: samples filtered at once (whole groups), 1.5 s at 44.1 kHz


def _as_1d(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim != 1:
        raise ValueError(f"expected a 1-D array (received shape {x.shape})")
    return x


def _extend(x: np.ndarray, size: int, mode: str) -> np.ndarray:
    """``x`` extended at its ends the way ``scipy.ndimage`` does for a ``size``-sample filter with
    origin 0: output ``i`` sees ``x[i - size//2 : i - size//2 + size]``."""
    if size < 1:
        raise ValueError(f"filter size must be >= 1 (received {size})")
    if mode not in _PAD:
        raise ValueError(f"mode must be one of {', '.join(_PAD)} (received {mode!r})")
    left = size // 2
    return np.pad(x, (left, size - 1 - left), mode=_PAD[mode])


def prefix_sum(x: np.ndarray) -> np.ndarray:
    """Cumulative sums along axis 0 with a leading row of zeros: ``c[b] - c[a]`` sums rows ``[a, b)``."""
    return np.concatenate([np.zeros((1, *x.shape[1:])), np.cumsum(x, axis=0)])


def window_sums(x: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Sums of the rows ``[lo[i], hi[i])`` of ``x`` for every window ``i``, by one prefix sum."""
    c = prefix_sum(x)
    return c[hi] - c[lo]


def streamed_window_sums(parts: Iterable[np.ndarray], lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """:func:`window_sums` of the rows that ``parts`` make up in order, with the prefix sum carried from
    part to part: the same sums (the same additions, in the same order), holding one part's rows."""
    lo, hi = np.asarray(lo), np.asarray(hi)
    got: list[np.ndarray] = []  # the prefix sum at lo and at hi
    carry, start = None, 0  # carry: the prefix sum at start, the first row of the part
    for x in parts:
        if carry is None:
            carry = np.zeros((1, *x.shape[1:]), x.dtype)
            got = [np.zeros((len(lo), *x.shape[1:])), np.zeros((len(hi), *x.shape[1:]))]
        c = np.cumsum(np.concatenate([carry, x]), axis=0)  # the prefix sum at start .. start + len(x)
        for at, edge in zip(got, (lo, hi), strict=True):
            here = (edge >= start) & (edge <= start + len(x))
            at[here] = c[edge[here] - start]
        carry, start = c[-1:], start + len(x)
    if not got:
        raise ValueError("no rows to sum")
    return got[1] - got[0]


def frame_spans(starts: np.ndarray, ends: np.ndarray, rate: float, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Frame ranges ``[lo, hi)`` of the windows ``[starts, ends)`` (seconds) over ``n`` frames at
    ``rate`` per second, for :func:`window_sums`: clipped to the signal, and never empty (a window
    past the end keeps the last frame)."""
    to_frame = lambda s: np.clip(np.round(np.asarray(s, float) * rate).astype(int), 0, n)  # noqa: E731
    lo = np.minimum(to_frame(np.maximum(starts, 0)), max(n - 1, 0))
    return lo, np.maximum(to_frame(ends), lo + 1)


def moving_average(x: np.ndarray, size: int, mode: Mode = "reflect") -> np.ndarray:
    """Mean over a window of ``size`` samples; equals ``scipy.ndimage.uniform_filter1d(x, size,
    mode=mode)`` for ``mode`` "reflect" (the default) or "nearest", including its window for even
    sizes (one more sample before than after). Float input keeps its dtype, other input gives float64."""
    x = _as_1d(x)
    dtype = x.dtype if x.dtype.kind == "f" else np.dtype(np.float64)
    if x.size == 0:
        return np.zeros(0, dtype)
    padded = _extend(x.astype(np.float64), size, mode)
    sums = np.convolve(padded, np.ones(size), mode="valid")  # direct sums: no running-sum drift
    return (sums / size).astype(dtype, copy=False)


def moving_max(x: np.ndarray, size: int, mode: Mode = "reflect") -> np.ndarray:
    """Maximum over a window of ``size`` samples; equals ``scipy.ndimage.maximum_filter1d(x, size,
    mode=mode)`` for ``mode`` "reflect" (the default) or "nearest". Keeps the dtype of ``x``."""
    x = _as_1d(x)
    if x.size == 0:
        return x.copy()
    return sliding_window_view(_extend(x, size, mode), size).max(axis=1)


def savgol(x: np.ndarray, window_length: int, polyorder: int) -> np.ndarray:
    """Savitzky-Golay smoothing; equals ``scipy.signal.savgol_filter(x, window_length, polyorder,
    mode="interp")`` (deriv 0): the least-squares convolution coefficients in the interior and,
    for the first and last ``window_length // 2`` samples, the degree-``polyorder`` polynomial
    fitted to the first / last ``window_length`` samples. Needs ``polyorder < window_length <=
    len(x)``. Computed in float64; float32 input comes back as float32 (scipy also fits the edges
    in float32 then, so the two differ there by float32 rounding)."""
    x = _as_1d(x)
    if x.dtype not in (np.float32, np.float64):
        x = x.astype(np.float64)
    n = x.size
    if not 0 <= polyorder < window_length:
        raise ValueError("polyorder must be less than window_length")
    if window_length > n:
        raise ValueError("window_length must be less than or equal to the size of x")
    half = window_length // 2
    pos = half - 0.5 if window_length % 2 == 0 else half  # centre of the window (scipy's `pos`)
    t = np.arange(-pos, window_length - pos)[::-1]  # reversed: coefficients for a convolution
    design = t ** np.arange(polyorder + 1).reshape(-1, 1)
    target = np.zeros(polyorder + 1)
    target[0] = 1.0
    coeffs = np.linalg.lstsq(design, target, rcond=None)[0]
    # scipy.ndimage.convolve1d(mode="constant", origin 0) centres an even kernel one sample later.
    left = (window_length - 1) // 2
    padded = np.pad(x.astype(np.float64), (left, window_length - 1 - left))
    y = np.convolve(padded, coeffs, mode="valid")
    idx = np.arange(window_length, dtype=np.float64)
    for start, lo, hi in ((0, 0, half), (n - window_length, n - half, n)):
        fit = np.polyfit(idx, x[start : start + window_length], polyorder)
        y[lo:hi] = np.polyval(fit, idx[lo - start : hi - start])
    return y.astype(x.dtype, copy=False)


def _kaiser_lowpass(numtaps: int, cutoff: float, beta: float = 5.0) -> np.ndarray:
    """``scipy.signal.firwin(numtaps, cutoff, window=("kaiser", beta))``: windowed sinc with unit DC gain."""
    m = np.arange(numtaps) - 0.5 * (numtaps - 1)
    h = cutoff * np.sinc(cutoff * m) * np.kaiser(numtaps, beta)
    return h / h.sum()


def resample_poly(x: np.ndarray, up: int, down: int, *, dtype: type[np.floating] = np.float64) -> np.ndarray:
    """Resample by ``up / down`` with a polyphase FIR filter; equals ``scipy.signal.resample_poly(
    x, up, down)`` with its defaults: a Kaiser(5.0) low-pass of ``20 * max(up, down) + 1`` taps
    (after dividing both by their gcd) at cutoff ``1 / max(up, down)``, gain ``up``, zeros beyond
    the ends, centred output of ``ceil(len(x) * up / down)`` samples. Computed in float64 (scipy
    keeps float32 for float32 input: the two differ by float32 rounding) in blocks of output, each
    block stored as ``dtype`` (float32: what ``.astype(np.float32)`` of the float64 result gives, without
    holding that result: 8 bytes per output sample)."""
    x = _as_1d(x)  # no float64 copy of the whole input: each block converts its own slice
    if up < 1 or down < 1:
        raise ValueError(f"up and down must be >= 1 (received {up}, {down})")
    g = gcd(up, down)
    up, down = up // g, down // g
    if up == down == 1:
        return x.astype(dtype)
    n_in = x.size
    n_out = -(-n_in * up // down)
    half = 10 * max(up, down)
    taps = -(-(2 * half + 1) // up)  # filter taps per phase
    h = np.zeros(taps * up)
    h[: 2 * half + 1] = _kaiser_lowpass(2 * half + 1, 1.0 / max(up, down)) * up
    # Output i sits at p = i*down + half on the upsampled grid; with m0 = p // up and r = p % up,
    # y[i] = sum_k x[m0 - k] * h[r + k*up] = window x[m0-taps+1 .. m0] dotted with phase[r].
    phase = h.reshape(taps, up).T[:, ::-1]
    y = np.empty(n_out, dtype)
    block = up * max(1, _CHUNK // up)  # a multiple of up: every block has the same phases
    for i0 in range(0, n_out, block):
        i1 = min(i0 + block, n_out)
        first = (i0 * down + half) // up - taps + 1  # input index of the block's first window
        last = ((i1 - 1) * down + half) // up  # input index of its last sample
        seg = np.zeros(last - first + 1)
        lo, hi = max(first, 0), min(last + 1, n_in)
        if hi > lo:
            seg[lo - first : hi - first] = x[lo:hi]
        win = sliding_window_view(seg, taps)
        for j in range(min(up, i1 - i0)):
            p = (i0 + j) * down + half
            start = p // up - taps + 1 - first
            out = y[i0 + j : i1 : up]
            out[:] = win[start : start + down * (out.size - 1) + 1 : down] @ phase[p % up]
    return y


def _sos_step(sos: np.ndarray, state: np.ndarray, u: float) -> tuple[float, np.ndarray]:
    """One sample of scipy's ``sosfilt`` recurrence (transposed direct form II, sections in
    order) from ``state`` (sections x 2) with input ``u``: the output and the next state."""
    z = state.copy()
    for i, (b0, b1, b2, _, a1, a2) in enumerate(sos):
        y = b0 * u + z[i, 0]
        z[i, 0] = b1 * u - a1 * y + z[i, 1]
        z[i, 1] = b2 * u - a2 * y
        u = y
    return u, z


def _powers(a: np.ndarray, count: int) -> np.ndarray:
    """``a^0 .. a^(count-1)`` stacked, by doubling."""
    p = np.empty((count, *a.shape))
    p[0] = np.eye(len(a))
    k = 1
    while k < count:
        step = min(k, count - k)
        p[k : k + step] = p[:step] @ (p[k - 1] @ a)
        k += step
    return p


@lru_cache(maxsize=16)
def _sos_plan(sos_bytes: bytes, size: int, groups: int) -> tuple[np.ndarray, ...]:
    """The matrices :func:`sosfilt` applies, from the cascade's state-space form (state x' = A x
    + B u, output y = C x + D u; read off one step from each basis state and from a unit input).
    With F = A^size: block input -> block end state (row j: A^(size-1-j) B); [block input, state
    entering it] -> block output (the Toeplitz matrix of the impulse response h[k] = C A^(k-1) B,
    h[0] = D, over rows C A^k); a group's end states from zero -> the states entering each of its
    blocks and leaving it (F^(g-1-j)); the state entering a group -> those entering its blocks
    (F^g); and F^groups."""
    sos = np.frombuffer(sos_bytes).reshape(-1, 6)
    m = sos.size // 3
    steps = [_sos_step(sos, e.reshape(-1, 2), 0.0) for e in np.eye(m)] + [_sos_step(sos, np.zeros((m // 2, 2)), 1.0)]
    ab = np.array([z.ravel() for _, z in steps]).T
    a, b, c, d = ab[:, :m], ab[:, m], np.array([y for y, _ in steps[:m]]), steps[m][0]
    p = _powers(a, size + 1)
    a_b, c_a = p[:size] @ b, c @ p[:size]
    h = np.concatenate([[d], a_b[:-1] @ c])
    lag = np.subtract.outer(np.arange(size), np.arange(size))  # [k, j] -> k - j
    weights = np.vstack([np.where(lag >= 0, h[np.maximum(lag, 0)], 0.0).T, c_a.T])
    f = _powers(p[size], groups + 1)
    lag = np.subtract.outer(np.arange(groups + 1), np.arange(groups)) - 1  # [g, j] -> g - 1 - j
    within = np.where((lag >= 0)[..., None, None], f[np.maximum(lag, 0)], 0.0)
    within = within.transpose(1, 3, 0, 2).reshape(groups * m, (groups + 1) * m)
    entering = f[:groups].transpose(2, 0, 1).reshape(m, groups * m)
    return a_b[::-1].copy(), weights, within, entering, f[groups].T.copy()


def sosfilt(sos: np.ndarray, x: np.ndarray, *, dtype: type | np.dtype = np.float64) -> np.ndarray:
    """Cascaded second-order sections along the first axis of ``x`` ((n,) or (n, channels)) from
    zero state; equals ``scipy.signal.sosfilt(sos, x, axis=0)`` (``sos`` of shape (sections, 6),
    a0 = 1) to float64 rounding, computed in float64 and returned as ``dtype``. Exact, in matrix
    products: blocks of :data:`_SOS_BLOCK` samples are filtered from zero state by their Toeplitz
    matrix, plus the response to the state entering them, which comes from the blocks before in
    groups of :data:`_SOS_GROUP` blocks, and only a short loop carries the state from group to group.
    The signal goes through in stretches of :data:`_SOS_STRETCH` samples, the state carried across,
    so the float64 work space does not grow with it (a whole hour of stereo took 9 GB)."""
    x = np.asarray(x)
    if x.ndim not in (1, 2):
        raise ValueError(f"expected a 1-D or 2-D array (received shape {x.shape})")
    if x.size == 0:
        _checked_sos(sos)
        return np.zeros(x.shape, dtype)
    flat = x.reshape(len(x), -1)
    out = np.empty(flat.shape, dtype)
    a = 0
    for part in sosfilt_stretches(sos, flat):
        out[a : a + len(part)] = part
        a += len(part)
    return out[:, 0] if x.ndim == 1 else out


def sosfilt_stretches(sos: np.ndarray, x: np.ndarray) -> Iterator[np.ndarray]:
    """:func:`sosfilt` of ``(n, channels)`` ``x`` as consecutive float64 stretches of its output (at most
    :data:`_SOS_STRETCH` rows each, the same samples): for a reader that only sums or scans the output,
    so no output of the whole signal is ever held (a loudness meter held an hour of stereo in float64, 2.5 GB,
    plus its square and their running sum)."""
    sos = _checked_sos(sos)
    plan = _sos_plan(sos.tobytes(), _SOS_BLOCK, _SOS_GROUP)
    state = np.zeros((x.shape[1], 2 * len(sos)))
    for a in range(0, len(x), _SOS_STRETCH):
        part, state = _sos_stretch(x[a : a + _SOS_STRETCH].astype(np.float64), state, plan)
        yield part


def _checked_sos(sos: np.ndarray) -> np.ndarray:
    sos = np.ascontiguousarray(sos, dtype=np.float64)
    if sos.ndim != 2 or sos.shape[1] != 6 or not len(sos) or not np.all(sos[:, 3] == 1):
        raise ValueError(f"sos must have shape (n_sections, 6) and sos[:, 3] all ones (received {sos.shape})")
    return sos


def _sos_stretch(
    x: np.ndarray, entering: np.ndarray, plan: tuple[np.ndarray, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`sosfilt` of the ``(n, channels)`` stretch ``x`` from the state ``entering`` it ``(channels,
    m)``: its output, and the state after it (exact when ``n`` fills whole groups, as every stretch
    but the last does)."""
    size, groups, (n, ch) = _SOS_BLOCK, _SOS_GROUP, x.shape
    ends, weights, within, to_blocks, carry = plan
    m = carry.shape[0]
    ng = -(-n // (size * groups))
    full = n // size
    buf = np.zeros((ch, ng * groups, size + m))  # each block's samples, then the state entering it
    buf[:, :full, :size] = x[: full * size].reshape(full, size, ch).transpose(2, 0, 1)
    if n > full * size:
        buf[:, full, : n - full * size] = x[full * size :].T
    flat = buf.reshape(-1, size + m)
    states = (flat[:, :size] @ ends).reshape(ch, ng, groups * m) @ within
    start = np.zeros((ch, ng + 1, m))  # state entering each group, and leaving the last
    start[:, 0] = entering
    for g in range(1, ng + 1):
        start[:, g] = start[:, g - 1] @ carry + states[:, g - 1, groups * m :]
    buf[..., size:] = (states[..., : groups * m] + start[:, :ng] @ to_blocks).reshape(ch, -1, m)
    return (flat @ weights).reshape(ch, -1)[:, :n].T, start[:, ng]
