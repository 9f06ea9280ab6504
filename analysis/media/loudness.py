"""One loudness for everything the page plays: EBU R128 integrated loudness (ITU-R BS.1770-4).

Library previews (:mod:`matching.fit`) and composed pieces (:mod:`composer.output.write`) are
both brought to :data:`TARGET_LUFS`, so switching between them does not jump. Measuring is
pyloudnorm's BS.1770 meter (K-weighting, 400 ms blocks, absolute and relative gates).

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

#: Integrated loudness everything is normalised to (the common streaming/web level).
TARGET_LUFS = -16.0
#: Highest sample value after normalising (about -0.2 dBFS).
CEILING = 0.98
#: Level above which the soft limiter starts bending peaks.
KNEE = 0.7
_BLOCK_S = 0.4
_PASSES = 4


def _frames(audio: np.ndarray, channels_first: bool) -> np.ndarray:
    a = np.asarray(audio, dtype=np.float64)
    if a.ndim == 1:
        return a[:, None]
    if a.ndim != 2:
        raise ParameterError(f"`audio` must be 1-D or 2-D (received shape {a.shape})")
    return a.T if channels_first else a


def integrated_loudness(audio: np.ndarray, sr: int, *, channels_first: bool = False) -> float:
    """Integrated loudness in LUFS; ``-inf`` for silence or audio shorter than one gating block."""
    import pyloudnorm

    if sr <= 0:
        raise ParameterError(f"`sr` must be positive (received {sr})")
    x = _frames(audio, channels_first)
    if x.shape[0] < int(_BLOCK_S * sr) + 1 or not np.any(x):
        return -math.inf
    return float(pyloudnorm.Meter(sr).integrated_loudness(x))


def _limit(x: np.ndarray) -> np.ndarray:
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
        y = _limit(y * 10 ** ((target - level) / 20))
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
