"""The one interface every affect source implements, and what it is handed.

A source turns decoded media into per-window valence/arousal with a confidence. The
fuser (``analysis.fusion``) only ever sees :class:`SourceArc`; it never knows which
source produced one. Media is decoded once (``analysis.media.decode``) into
:class:`MediaStreams` and shared by all sources.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

import numpy as np

if TYPE_CHECKING:
    from analysis.text.captions import Subtitles


@dataclass(frozen=True, eq=False)
class MediaStreams:
    """A clip decoded once for every source.

    ``frames`` are RGB ``uint8`` of shape ``(n, h, w, 3)`` sampled at ``frame_times``
    (seconds), downscaled for analysis. ``audio`` is mono float32 at ``sample_rate``,
    or ``None`` when the clip has no audio stream. ``cuts`` are hard-cut times
    (seconds), found before the sources run so they can use shot structure. ``memo``
    holds what one source works out about the clip and another reuses (the voice activity
    of ``analysis.sources.vad``), so it is computed once per clip.
    """

    path: Path
    duration: float
    fps: float
    frame_times: np.ndarray
    frames: np.ndarray
    audio: np.ndarray | None
    sample_rate: int
    cuts: tuple[float, ...] = ()
    subtitles: Path | Subtitles | None = None  # a file, or a clip's own track already read
    memo: dict[str, Any] = field(default_factory=dict, init=False, repr=False, compare=False)


@dataclass(frozen=True, eq=False)
class SourceArc:
    """One source's reading: per-window values on the window centres ``times``.

    ``confidence`` in [0, 1] per window says how much the fuser should trust it; a
    window with nothing to read (no face, no speech) has confidence 0 rather than a
    fake neutral value. ``emotions`` holds probabilities where the source can tell
    them, ``features`` the raw per-window features for inspection and plots.
    ``switched_off`` says why a source that reads only on evidence (faces, speech,
    subtitles) found none in the whole clip and left it alone; None when it read.
    """

    name: str
    times: np.ndarray
    valence: np.ndarray
    arousal: np.ndarray
    confidence: np.ndarray
    emotions: Mapping[str, np.ndarray] | None = None
    features: Mapping[str, np.ndarray] = field(default_factory=dict)
    switched_off: str | None = None

    @property
    def spoke(self) -> bool:
        """Whether any window had evidence (confidence above 0)."""
        return bool(np.any(np.asarray(self.confidence) > 0))


#: What a source's weights map to: cue name -> (valence weight, arousal weight).
CueWeights = Mapping[str, tuple[float, float]]


def weighted_va(
    weights: CueWeights, cues: Mapping[str, np.ndarray], gain: float = 1.6
) -> tuple[np.ndarray, np.ndarray]:
    """Valence and arousal as the weighted means of ``cues`` (each on [-1, 1]), times ``gain``, clipped.

    Each axis is divided by the sum of its absolute weights, so every cue at +1 reads +1
    before the gain; the gain (1.6) lets a clearly lit, coloured or loud window reach the
    outer third of the plane, since real cues seldom agree all at once.
    """
    axes = []
    for axis in (0, 1):
        norm = sum(abs(w[axis]) for w in weights.values())
        mean = sum(w[axis] * np.asarray(cues[k], float) for k, w in weights.items()) / norm
        axes.append(np.clip(gain * mean, -1.0, 1.0))
    return axes[0], axes[1]


@runtime_checkable
class AffectSource(Protocol):
    """Reads one kind of evidence (pixels, sound, faces, words) into a :class:`SourceArc`.

    Heavy models load in the constructor or lazily on first use, never per call, so one
    instance can analyse many clips.
    """

    name: ClassVar[str]

    def analyze(self, media: MediaStreams, *, hop: float) -> SourceArc:
        """Per-window readings on the grid ``analysis.arc.grid(media.duration, hop)``."""
        ...
