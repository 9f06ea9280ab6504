"""Small 1-D filters in plain NumPy, equal to the SciPy functions the analysis used.

Importing ``scipy.signal`` (which pulls in ``scipy.stats``) and ``scipy.ndimage`` costs about
1.3 s, while the analysis needs only four of their simplest functions. Each function here names
the SciPy call it reproduces and the modes in which it does; ``tests/test_filters.py`` checks
the equality. All take a 1-D array (the only shape the analysis passes) and raise otherwise.
"""

from __future__ import annotations

from math import gcd
from typing import Literal

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

Mode = Literal["reflect", "nearest"]
_PAD = {"reflect": "symmetric", "nearest": "edge"}  # scipy.ndimage mode -> numpy.pad mode
_CHUNK = 1 << 18  # resample_poly: about this many output samples per block


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


def resample_poly(x: np.ndarray, up: int, down: int) -> np.ndarray:
    """Resample by ``up / down`` with a polyphase FIR filter; equals ``scipy.signal.resample_poly(
    x, up, down)`` with its defaults: a Kaiser(5.0) low-pass of ``20 * max(up, down) + 1`` taps
    (after dividing both by their gcd) at cutoff ``1 / max(up, down)``, gain ``up``, zeros beyond
    the ends, centred output of ``ceil(len(x) * up / down)`` samples. Computed in float64 (scipy
    keeps float32 for float32 input: the two differ by float32 rounding) in blocks of output."""
    x = _as_1d(x)  # no float64 copy of the whole input: each block converts its own slice
    if up < 1 or down < 1:
        raise ValueError(f"up and down must be >= 1 (received {up}, {down})")
    g = gcd(up, down)
    up, down = up // g, down // g
    if up == down == 1:
        return x.astype(np.float64)
    n_in = x.size
    n_out = -(-n_in * up // down)
    half = 10 * max(up, down)
    taps = -(-(2 * half + 1) // up)  # filter taps per phase
    h = np.zeros(taps * up)
    h[: 2 * half + 1] = _kaiser_lowpass(2 * half + 1, 1.0 / max(up, down)) * up
    # Output i sits at p = i*down + half on the upsampled grid; with m0 = p // up and r = p % up,
    # y[i] = sum_k x[m0 - k] * h[r + k*up] = window x[m0-taps+1 .. m0] dotted with phase[r].
    phase = h.reshape(taps, up).T[:, ::-1]
    y = np.empty(n_out)
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
