"""Confidence-weighted fusion of per-source readings into one :class:`EmotionArc`.

Per window ``t`` and source ``s`` the weight is ``preset_weight[s] * confidence_s(t)``;
the weights are normalised across sources to sum to one, so fused values stay on the
sources' common [-1, 1] scale. Then the arc is smoothed.

Windows where every source has zero confidence (no audio in a fade to black, say)
still get a defined value: linear interpolation between the nearest windows that had
evidence, held flat before the first and after the last; with no evidence anywhere the
arc is neutral (0, 0). :attr:`Fusion.coverage` says which share of windows had evidence.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from analysis.arc import EMOTIONS, EmotionArc, va_to_emotions
from analysis.errors import ParameterError
from analysis.filters import moving_average, savgol
from analysis.sources.base import SourceArc

Smoothing = Literal["none", "moving_average", "savgol"]
Normalize = Literal["calibrated", "zscore", "minmax"]
SMOOTHING: tuple[str, ...] = ("none", "moving_average", "savgol")
NORMALIZE: tuple[str, ...] = ("calibrated", "zscore", "minmax")


@dataclass(frozen=True, eq=False)
class Fusion:
    """The fused arc, the share of windows that had any evidence, and each source's mean weight."""

    arc: EmotionArc
    coverage: float
    source_weight: Mapping[str, float]


def _on_grid(x: np.ndarray, src_times: np.ndarray, times: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=float)
    if src_times.shape == times.shape and np.allclose(src_times, times):
        return x
    return np.interp(times, src_times, x)


def _normalise(x: np.ndarray, w: np.ndarray, how: str) -> np.ndarray:
    """Per-source scaling. ``calibrated`` trusts the source's own absolute scale (sources
    here map features to [-1, 1] on fixed references); ``zscore`` keeps only the shape
    (weighted mean 0, sd 0.5); ``minmax`` stretches the weighted range to [-1, 1]."""
    if how == "calibrated" or not np.any(w > 0):
        return np.clip(x, -1.0, 1.0)
    sel = w > 0
    if how == "zscore":
        mean = np.average(x[sel], weights=w[sel])
        sd = np.sqrt(np.average((x[sel] - mean) ** 2, weights=w[sel]))
        return np.clip(0.5 * (x - mean) / max(sd, 0.05), -1.0, 1.0)
    lo, hi = x[sel].min(), x[sel].max()
    if hi - lo < 1e-6:
        return np.zeros_like(x)
    return np.clip(2 * (x - lo) / (hi - lo) - 1, -1.0, 1.0)


def smooth(x: np.ndarray, *, hop: float, method: str = "savgol", window: float = 2.0, polyorder: int = 2) -> np.ndarray:
    """Smooth a series sampled every ``hop`` s over ``window`` s (moving average or Savitzky-Golay)."""
    if method not in SMOOTHING:
        raise ParameterError(f"unknown smoothing {method!r} (known: {', '.join(SMOOTHING)})")
    if not window >= 0:
        raise ParameterError(f"`smoothing_window` must be >= 0 seconds (received {window})")
    n = x.size
    k = round(window / hop)
    if method == "none" or k < 2 or n < 3:
        return x
    if method == "moving_average":
        return moving_average(x, min(k, n), mode="nearest")
    k = min(k | 1, n if n % 2 else n - 1)  # odd, no longer than the series
    if k <= polyorder:
        return moving_average(x, min(max(k, 2), n), mode="nearest")
    return savgol(x, window_length=k, polyorder=polyorder)


def _fill(values: np.ndarray, has: np.ndarray, times: np.ndarray) -> np.ndarray:
    if has.all():
        return values
    if not has.any():
        return np.zeros_like(values)
    return np.interp(times, times[has], values[has])


def fuse(
    sources: Sequence[SourceArc],
    *,
    times: np.ndarray,
    weights: Mapping[str, float],
    smoothing: str = "savgol",
    smoothing_window: float = 2.0,
    normalize: str = "calibrated",
) -> Fusion:
    """Fuse ``sources`` onto the grid ``times`` (window centres, uniform hop); see module docstring.

    ``weights`` maps source name -> preset weight (``analysis.presets.source_weights``);
    a source not named there gets 1.0.
    """
    if normalize not in NORMALIZE:
        raise ParameterError(f"unknown normalisation {normalize!r} (known: {', '.join(NORMALIZE)})")
    if smoothing not in SMOOTHING:
        raise ParameterError(f"unknown smoothing {smoothing!r} (known: {', '.join(SMOOTHING)})")
    times = np.asarray(times, dtype=float)
    n = times.size
    hop = float(np.median(np.diff(times))) if n > 1 else 1.0
    wsum = np.zeros(n)
    vsum = np.zeros(n)
    asum = np.zeros(n)
    esum = {e: np.zeros(n) for e in EMOTIONS}
    any_emotions = any(s.emotions for s in sources)
    mean_weight: dict[str, float] = {}
    for s in sources:
        st = np.asarray(s.times, dtype=float)
        conf = np.clip(np.nan_to_num(_on_grid(s.confidence, st, times)), 0.0, 1.0)
        w = conf * float(weights.get(s.name, 1.0))
        v = _normalise(np.nan_to_num(_on_grid(s.valence, st, times)), w, normalize)
        a = _normalise(np.nan_to_num(_on_grid(s.arousal, st, times)), w, normalize)
        wsum += w
        vsum += w * v
        asum += w * a
        if any_emotions:
            probs = (
                {e: _on_grid(s.emotions[e], st, times) if e in s.emotions else np.zeros(n) for e in EMOTIONS}
                if s.emotions
                else va_to_emotions(v, a)
            )
            for e in EMOTIONS:
                esum[e] += w * np.nan_to_num(probs[e])
        mean_weight[s.name] = float(w.mean()) if n else 0.0
    has = wsum > 0
    safe = np.where(has, wsum, 1.0)

    def finish(x: np.ndarray) -> np.ndarray:
        return smooth(_fill(x / safe, has, times), hop=hop, method=smoothing, window=smoothing_window)

    valence = np.clip(finish(vsum), -1, 1)
    arousal = np.clip(finish(asum), -1, 1)
    if any_emotions and has.any():
        probs = {e: np.clip(finish(esum[e]), 0, None) for e in EMOTIONS}
        total = np.maximum(sum(probs.values()), 1e-9)
        emotions = {e: p / total for e, p in probs.items()}
        arc = EmotionArc(times=times, valence=valence, arousal=arousal, emotions=emotions)
    else:
        arc = EmotionArc.from_va(times, valence, arousal)
    return Fusion(arc=arc, coverage=float(has.mean()) if n else 0.0, source_weight=mean_weight)
