"""One loudness for everything the page plays: EBU R128 integrated loudness (ITU-R BS.1770-4).

Library previews (:mod:`matching.fit`) and composed pieces (:mod:`composer.output.write`) are
both brought to :data:`TARGET_LUFS`, so switching between them does not jump. Measuring is
BS.1770's meter (K-weighting, 400 ms blocks overlapping by 75 %, absolute and relative gates),
the figures of pyloudnorm's meter (``tests/test_loudness.py`` compares them) in whole-array
NumPy: a minute of stereo in about 0.08 s instead of 0.15 s, and normalising measures up to five times.
The K-weighting filter is :func:`analysis.filters.sosfilt` (NumPy, equal to scipy's ``sosfilt``),
so rendering does not import ``scipy.signal`` (about 1 s).

Gain alone can push peaks past full scale (a quiet orchestral track needs +10 dB or more):
peaks above :data:`KNEE` are then bent smoothly towards :data:`CEILING` (a tanh soft limiter,
which only touches the few loudest samples), and gain and limiting are repeated (at most
four passes) until the level is within 0.2 LU of the target: very peaky audio (a click
track) may stay a little under it. Audio shorter than one 400 ms gating block, or silent, is returned as is.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from analysis.errors import MediaError, ParameterError
from analysis.filters import sosfilt

#: Integrated loudness everything is normalised to (the common streaming/web level).
TARGET_LUFS = -16.0
#: Highest sample value after normalising (about -0.2 dBFS).
CEILING = 0.98
#: Level above which the soft limiter starts bending peaks.
KNEE = 0.7
_BLOCK_S = 0.4
_OVERLAP = 0.75
_ABSOLUTE_GATE = -70.0  # LUFS
_PASSES = 4


def _frames(audio: np.ndarray, channels_first: bool) -> np.ndarray:
    a = np.asarray(audio, dtype=np.float64)
    if a.ndim == 1:
        return a[:, None]
    if a.ndim != 2:
        raise ParameterError(f"`audio` must be 1-D or 2-D (received shape {a.shape})")
    return a.T if channels_first else a


def _k_weighting(sr: int) -> np.ndarray:
    """BS.1770's K-weighting as second-order sections: a +4 dB high shelf from 1.5 kHz, then a
    38 Hz high-pass (the biquads of the audio EQ cookbook at the standard's corner and Q)."""
    sections = []
    for shelf, gain_db, q, fc in ((True, 4.0, 1 / math.sqrt(2), 1500.0), (False, 0.0, 0.5, 38.0)):
        w0 = 2 * math.pi * fc / sr
        alpha, cw = math.sin(w0) / (2 * q), math.cos(w0)
        if shelf:
            a = 10 ** (gain_db / 40)
            r = 2 * math.sqrt(a) * alpha
            b = [a * ((a + 1) + (a - 1) * cw + r), -2 * a * ((a - 1) + (a + 1) * cw), a * ((a + 1) + (a - 1) * cw - r)]
            den = [(a + 1) - (a - 1) * cw + r, 2 * ((a - 1) - (a + 1) * cw), (a + 1) - (a - 1) * cw - r]
        else:
            b = [(1 + cw) / 2, -(1 + cw), (1 + cw) / 2]
            den = [1 + alpha, -2 * cw, 1 - alpha]
        sections.append(np.array(b + den) / den[0])
    return np.array(sections)


def integrated_loudness(audio: np.ndarray, sr: int, *, channels_first: bool = False) -> float:
    """Integrated loudness in LUFS; ``-inf`` for silence or audio shorter than one gating block.

    Channels count alike (gain 1: mono and stereo; surround channels are not weighted up).
    """
    if sr <= 0:
        raise ParameterError(f"`sr` must be positive (received {sr})")
    x = _frames(audio, channels_first)
    n = x.shape[0]
    if n < int(_BLOCK_S * sr) + 1 or not np.any(x):
        return -math.inf
    y = sosfilt(_k_weighting(sr), x)
    step = _BLOCK_S * (1 - _OVERLAP)
    blocks = np.arange(int(np.round((n / sr - _BLOCK_S) / step)) + 1)
    lo = (_BLOCK_S * blocks * (1 - _OVERLAP) * sr).astype(int)
    hi = np.minimum((_BLOCK_S * (blocks * (1 - _OVERLAP) + 1) * sr).astype(int), n)
    energy = np.concatenate([np.zeros((1, y.shape[1])), np.cumsum(np.square(y), axis=0)])
    power = ((energy[hi] - energy[lo]) / (_BLOCK_S * sr)).sum(axis=1)  # mean square per block, channels summed
    with np.errstate(divide="ignore"):
        level = -0.691 + 10 * np.log10(power)
    loud = level >= _ABSOLUTE_GATE
    if not loud.any():
        return -math.inf
    relative = -0.691 + 10 * np.log10(power[loud].mean()) - 10.0
    return float(-0.691 + 10 * np.log10(power[loud & (level > relative)].mean()))


def limit_peaks(x: np.ndarray) -> np.ndarray:
    """Soft-limit ``x``: identity below :data:`KNEE`, tanh towards :data:`CEILING` above it."""
    mag = np.abs(x)
    over = mag > KNEE
    if not over.any():
        return x
    room = CEILING - KNEE
    out = x.copy()
    out[over] = np.sign(x[over]) * (KNEE + room * np.tanh((mag[over] - KNEE) / room))
    return out


def normalize_loudness(
    audio: np.ndarray, sr: int, *, target: float = TARGET_LUFS, channels_first: bool = False
) -> np.ndarray:
    """``audio`` (same shape and layout, float32) at ``target`` LUFS, peaks kept under :data:`CEILING`."""
    return _normalized(audio, sr, target, channels_first)[0]


def _normalized(audio: np.ndarray, sr: int, target: float, channels_first: bool) -> tuple[np.ndarray, float, float]:
    """:func:`normalize_loudness` and the loudness before and after (each measured once)."""
    if not -70.0 <= target <= 0.0:
        raise ParameterError(f"`target` must be within -70 and 0 LUFS (received {target})")
    x = _frames(audio, channels_first)
    before = integrated_loudness(x, sr)
    if not math.isfinite(before):
        return np.asarray(audio, dtype=np.float32), before, before
    y, level = x, before
    for _ in range(_PASSES):  # limiting takes loudness away with the peaks: measure and go again
        y = limit_peaks(y * 10 ** ((target - level) / 20))
        level = integrated_loudness(y, sr)
        if not math.isfinite(level) or abs(level - target) < 0.2:
            break
    y = y.astype(np.float32)
    if np.asarray(audio).ndim == 1:
        return y[:, 0], before, level
    return (y.T if channels_first else y), before, level


def normalize_file(path: str | Path, *, target: float = TARGET_LUFS) -> tuple[float, float]:
    """Rewrite the audio file at ``path`` at ``target`` LUFS (same format); returns (LUFS before, after)."""
    import soundfile as sf

    p = Path(path)
    try:
        info = sf.info(str(p))
        audio, sr = sf.read(str(p), dtype="float32", always_2d=True)
    except (RuntimeError, OSError) as err:
        raise MediaError(p, f"cannot be read as audio to normalise its loudness ({err})") from None
    out, before, after = _normalized(audio, sr, target, False)
    sf.write(str(p), out, sr, subtype=info.subtype)
    return before, after
