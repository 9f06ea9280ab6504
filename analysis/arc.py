"""The emotion arc: valence and arousal over time, plus discrete-emotion trajectories.

Valence (unpleasant..pleasant) and arousal (calm..excited) follow the circumplex
model and live in [-1, 1]. Discrete emotions map to points on that plane after
Russell & Mehrabian (1977); the reverse mapping gives nearest-region probabilities.
"""

from __future__ import annotations

import json
import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from analysis.errors import ParameterError, is_number

#: The emotions every arc carries, in a fixed order.
EMOTIONS: tuple[str, ...] = ("joy", "sadness", "anger", "fear", "surprise", "neutral")

#: Circumplex coordinates (valence, arousal) of discrete emotions, Russell & Mehrabian
#: (1977). ``neutral`` sits at the origin; ``disgust`` is kept for sources that report
#: it (face models do) and folds into the others through :func:`emotions_to_va`.
EMOTION_VA: Mapping[str, tuple[float, float]] = {
    "joy": (0.76, 0.48),
    "sadness": (-0.63, -0.27),
    "anger": (-0.51, 0.59),
    "fear": (-0.64, 0.60),
    "surprise": (0.40, 0.67),
    "disgust": (-0.60, 0.35),
    "neutral": (0.0, 0.0),
}

_PROTOTYPES = np.array([EMOTION_VA[e] for e in EMOTIONS])  # (6, 2)

#: An emotion word agrees with a valence/arousal point when its region's probability there
#: (:func:`va_to_emotions`) is at least this share of the nearest region's (squared distances
#: within ln(10) / 6 = 0.38 of the nearest prototype's).
AGREES = 0.1


def emotions_to_va(probs: Mapping[str, np.ndarray | float]) -> tuple[np.ndarray, np.ndarray]:
    """Probability-weighted mean of the circumplex points of ``probs``.

    Unknown emotion names raise; the weights are renormalised, so partial
    distributions (e.g. without ``neutral``) are fine. Zero total weight gives (0, 0).
    """
    unknown = set(probs) - set(EMOTION_VA)
    if unknown:
        raise ParameterError(f"`probs` has unknown emotions {sorted(unknown)} (known: {sorted(EMOTION_VA)})")
    arrays = {k: np.atleast_1d(np.asarray(v, dtype=float)) for k, v in probs.items()}
    bad = sorted(k for k, a in arrays.items() if not np.all(np.isfinite(a) & (a >= -1e-9)))
    if bad:  # joy -1 with sadness 1 gave valence -1.39, off the circumplex; NaN gave NaN
        raise ParameterError(f"`probs` must be finite and not negative (received {', '.join(bad)}: "
                             f"{', '.join(str(probs[k]) for k in bad)})")
    n = max((a.shape[0] for a in arrays.values()), default=1)
    total = np.zeros(n)
    val = np.zeros(n)
    aro = np.zeros(n)
    for name, p in arrays.items():
        v, a = EMOTION_VA[name]
        total += p
        val += p * v
        aro += p * a
    safe = np.where(total > 0, total, 1.0)
    return val / safe, aro / safe


def va_to_emotions(
    valence: np.ndarray | float, arousal: np.ndarray | float, *, sharpness: float = 6.0
) -> dict[str, np.ndarray]:
    """Nearest-region probabilities of each emotion in :data:`EMOTIONS`.

    A softmax over negative squared distances to the circumplex prototypes; a larger
    ``sharpness`` makes the regions crisper. Points near the origin lean to neutral.
    """
    if sharpness <= 0:
        raise ParameterError(f"`sharpness` must be positive (received {sharpness})")
    va = np.stack([np.atleast_1d(np.asarray(valence, float)), np.atleast_1d(np.asarray(arousal, float))], axis=-1)
    if not np.all(np.isfinite(va)):  # NaN gave every emotion NaN
        raise ParameterError(f"`valence` and `arousal` must be finite (received {valence!r}, {arousal!r})")
    d2 = ((va[:, None, :] - _PROTOTYPES[None, :, :]) ** 2).sum(-1)  # (n, 6)
    logits = -sharpness * d2
    logits -= logits.max(axis=1, keepdims=True)
    p = np.exp(logits)
    p /= p.sum(axis=1, keepdims=True)
    return {name: p[:, i] for i, name in enumerate(EMOTIONS)}


def _frozen(a: np.ndarray) -> np.ndarray:
    a = np.array(a, dtype=np.float64, copy=True)
    a.setflags(write=False)
    return a


def _numbers(values: Any, key: str) -> np.ndarray:
    """``values`` as a float array, or a :class:`ParameterError` naming ``key`` ("x" in a list was NumPy's
    "could not convert string to float")."""
    try:
        return np.asarray(values, float)
    except (TypeError, ValueError):
        raise ParameterError(f"arc data's `{key}` must be numbers (received {str(values)[:80]})") from None


@dataclass(frozen=True, eq=False)
class EmotionArc:
    """Valence/arousal (in [-1, 1]) and emotion probabilities (in [0, 1]) on a time grid.

    ``times`` are window centres in seconds, strictly increasing. Arrays are copied and
    made read-only, so an arc can be shared safely. Build one from VA alone with
    :meth:`from_va`, which derives the emotions.
    """

    times: np.ndarray
    valence: np.ndarray
    arousal: np.ndarray
    emotions: Mapping[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        times, val, aro = (_frozen(x) for x in (self.times, self.valence, self.arousal))
        if times.ndim != 1 or times.shape != val.shape or times.shape != aro.shape:
            raise ParameterError(
                "`times`, `valence` and `arousal` must be 1-D and of equal length "
                f"(received {times.shape}, {val.shape}, {aro.shape})"
            )
        if times.size and not np.all(np.isfinite(np.concatenate([times, val, aro]))):
            raise ParameterError("arc values must be finite (received NaN or inf)")
        if times.size > 1 and np.any(np.diff(times) <= 0):
            raise ParameterError("`times` must be strictly increasing")
        if not self.emotions:
            emotions = {k: _frozen(v) for k, v in va_to_emotions(val, aro).items()} if times.size else {
                k: _frozen(np.zeros(0)) for k in EMOTIONS
            }
        else:
            missing = set(EMOTIONS) - set(self.emotions)
            if missing:
                raise ParameterError(f"`emotions` lacks {sorted(missing)}")
            emotions = {k: _frozen(np.clip(self.emotions[k], 0.0, 1.0)) for k in EMOTIONS}
            bad = [k for k, v in emotions.items() if v.shape != times.shape]
            if bad:
                raise ParameterError(f"`emotions` arrays {bad} do not match `times` length {times.size}")
        object.__setattr__(self, "times", times)
        object.__setattr__(self, "valence", _frozen(np.clip(val, -1.0, 1.0)))
        object.__setattr__(self, "arousal", _frozen(np.clip(aro, -1.0, 1.0)))
        object.__setattr__(self, "emotions", emotions)

    # ------------------------------------------------------------------ building
    @classmethod
    def from_va(cls, times: np.ndarray, valence: np.ndarray, arousal: np.ndarray) -> EmotionArc:
        """An arc whose emotions are derived from VA by the circumplex regions."""
        return cls(times=times, valence=valence, arousal=arousal)

    @classmethod
    def constant(cls, duration: float, valence: float, arousal: float, *, hop: float = 0.5) -> EmotionArc:
        """A flat arc over ``duration`` seconds (handy for tests and defaults)."""
        t = grid(duration, hop)
        return cls.from_va(t, np.full_like(t, valence), np.full_like(t, arousal))

    # ------------------------------------------------------------------ properties
    def __len__(self) -> int:
        return int(self.times.size)

    @property
    def hop(self) -> float:
        """Median spacing of ``times`` (0.0 for arcs of fewer than two points)."""
        return float(np.median(np.diff(self.times))) if self.times.size > 1 else 0.0

    @property
    def duration(self) -> float:
        """Seconds covered: last window centre plus half a hop."""
        if not self.times.size:
            return 0.0
        return float(self.times[-1] + self.hop / 2)

    def va(self) -> np.ndarray:
        """``(n, 2)`` array of valence and arousal."""
        return np.stack([self.valence, self.arousal], axis=1)

    def dominant_emotion(self) -> list[str]:
        """The emotion each time step reads as: the sources' word where it agrees with the arc.

        The most probable of :attr:`emotions` among those whose circumplex region agrees with the
        step's valence and arousal: its :func:`va_to_emotions` probability there is at least
        :data:`AGREES` times the nearest region's. Fused emotions blend what the sources said, so two
        sources that disagree (a bright picture, a line read as sad) can leave "sadness" on top of a
        positive, calm step; the arc's own region wins there. An arc built from VA alone reads as its
        nearest region, as before.
        """
        if not self.times.size:
            return []
        probs = np.stack([self.emotions[e] for e in EMOTIONS], axis=1)  # (n, 6)
        regions = va_to_emotions(self.valence, self.arousal)
        region = np.stack([regions[e] for e in EMOTIONS], axis=1)  # (n, 6)
        agrees = region >= AGREES * region.max(axis=1, keepdims=True)
        score = np.where(agrees, probs + 1e-6 * region, -1.0)  # ties go to the nearer region
        return [EMOTIONS[i] for i in score.argmax(axis=1)]

    # ------------------------------------------------------------------ transforms
    def resample(self, hop: float | None = None, *, n: int | None = None) -> EmotionArc:
        """Linear interpolation onto a new uniform grid, given by ``hop`` or point count ``n``."""
        if (hop is None) == (n is None):
            raise ParameterError("give exactly one of `hop` or `n` to resample")
        if not self.times.size:
            return self
        start, end = float(self.times[0]), float(self.times[-1])
        # NaN passed `hop <= 0` to NumPy's "arange: cannot compute length"; n=2.5 reached linspace's TypeError
        if n is not None:
            if not (isinstance(n, numbers.Integral) and not isinstance(n, bool) and n >= 1):
                raise ParameterError(f"`n` must be a whole number, at least 1 (received {n!r})")
            if n > 1 and start == end:
                raise ParameterError(f"an arc of one time step resamples to one point only (received n={n})")
            t = np.linspace(start, end, int(n))
        else:
            if not (is_number(hop) and 0 < hop < math.inf):
                raise ParameterError(f"`hop` must be positive, finite seconds (received {hop!r})")
            t = np.arange(start, end + hop / 2, hop)
        interp = lambda y: np.interp(t, self.times, y)  # noqa: E731
        return EmotionArc(
            times=t,
            valence=interp(self.valence),
            arousal=interp(self.arousal),
            emotions={k: interp(v) for k, v in self.emotions.items()},
        )

    def slice(self, start: float, end: float, *, rebase: bool = True) -> EmotionArc:
        """The part with ``start <= t < end``; times restart at ``hop / 2`` when ``rebase``."""
        if not (is_number(start) and is_number(end) and math.isfinite(start) and not math.isnan(end)):
            # NaN compared false everywhere and gave an empty arc without a word
            raise ParameterError(f"`start` and `end` must be seconds (received start={start!r}, end={end!r})")
        if end <= start:
            raise ParameterError(f"`end` must be after `start` (received start={start}, end={end})")
        mask = (self.times >= start) & (self.times < end)
        t = self.times[mask]
        if rebase and t.size:
            t = t - start
        return EmotionArc(
            times=t,
            valence=self.valence[mask],
            arousal=self.arousal[mask],
            emotions={k: v[mask] for k, v in self.emotions.items()},
        )

    # ------------------------------------------------------------------ serialisation
    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (lists of floats rounded to 4 decimals)."""
        r = lambda a: [round(float(x), 4) for x in a]  # noqa: E731
        return {
            "times": r(self.times),
            "valence": r(self.valence),
            "arousal": r(self.arousal),
            "emotions": {k: r(v) for k, v in self.emotions.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EmotionArc:
        """Inverse of :meth:`to_dict`; ``emotions`` may be absent (derived from VA)."""
        if not isinstance(data, Mapping):  # a JSON list or number was "list indices must be integers"
            raise ParameterError(f"arc data must be a mapping with times, valence and arousal "
                                 f"(received {type(data).__name__})")
        arrays: dict[str, np.ndarray] = {}
        for key in ("times", "valence", "arousal"):
            if key not in data:
                raise ParameterError(f"arc data lacks the key {key!r}")
            arrays[key] = _numbers(data[key], key)
        emotions = data.get("emotions") or {}
        if not isinstance(emotions, Mapping):
            raise ParameterError(f"arc data's `emotions` must be a mapping (received {type(emotions).__name__})")
        return cls(**arrays, emotions={k: _numbers(v, f"emotions.{k}") for k, v in emotions.items()})

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_json(cls, text: str) -> EmotionArc:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise ParameterError(f"arc JSON is not valid JSON ({err.msg} at line {err.lineno})") from None
        if isinstance(data, Mapping) and "arc" in data and "times" not in data:
            data = data["arc"]  # accept a whole VideoAnalysis/TrackAnalysis dict
        return cls.from_dict(data)


def grid(duration: float, hop: float) -> np.ndarray:
    """Window centres ``hop/2, 3hop/2, ...`` covering ``duration`` seconds (at least one)."""
    # NaN passes a `<= 0` test and inf makes no grid: both reached NumPy's "cannot convert float NaN to integer"
    if not (is_number(hop) and math.isfinite(hop) and hop > 0):
        raise ParameterError(f"`hop` must be positive, finite seconds (received {hop!r})")
    if not (is_number(duration) and math.isfinite(duration) and duration > 0):
        raise ParameterError(f"`duration` must be positive, finite seconds (received {duration!r})")
    n = max(1, int(np.ceil(duration / hop - 1e-9)))
    return (np.arange(n) + 0.5) * hop
