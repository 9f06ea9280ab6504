"""The harmony plan as the generator reads it: chord class, key and the next change per time step.

:func:`composer.music.harmony.plan_harmony` writes chords with any colour (sevenths, ninths,
half-diminished ...) on a style's scales; the model knows the tokenizer's chord classes
(root x maj, min, dim, aug, dom7) and 24 keys. :func:`plan_track` maps one onto the other
so the model is told, at every token, what the training data told it: the chord sounding
now, the key, and the seconds to the next chord change.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import pretty_midi

from composer.model.tokens import Tokenizer
from composer.music.harmony import HarmonyPlan
from composer.music.notes import ChordSpan

MODEL_BEAT = 0.5  # seconds per quarter note in the training MIDI (music21 writes 120 bpm)


class ChordPlan(Protocol):
    """What the generator reads of a plan: a :class:`~composer.music.harmony.HarmonyPlan` or a
    :class:`~composer.music.notes.MaterialRequest` both have these."""

    @property
    def chords(self) -> Sequence[ChordSpan]: ...

    @property
    def tonic(self) -> int: ...

    @property
    def beats(self) -> np.ndarray: ...


@dataclass(frozen=True, eq=False)
class TimeWarp:
    """A piecewise-linear map between seconds (``real``) and model time (``model``), both increasing."""

    real: np.ndarray
    model: np.ndarray

    def to_model(self, t: float | np.ndarray) -> np.ndarray:
        return _extrapolate(t, self.real, self.model)

    def to_real(self, t: float | np.ndarray) -> np.ndarray:
        return _extrapolate(t, self.model, self.real)

    def tempo_map(self) -> tuple[tuple[float, float], ...]:
        """``(start_s, bpm)`` pairs, the first at 0, of the quarter notes the model wrote (one per
        ``MODEL_BEAT`` of model time) as they sound in seconds."""
        bpm = 60.0 / MODEL_BEAT * np.diff(self.model) / np.diff(self.real)
        out = [(0.0, float(bpm[0]))]
        for t, b in zip(self.real[1:-1], bpm[1:], strict=True):
            if abs(b - out[-1][1]) > 1e-6 * b:
                out.append((float(t), float(b)))
        return tuple(out)


def _extrapolate(t: float | np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``np.interp`` continued past both ends with the end segments' slopes."""
    t = np.asarray(t, float)
    out = np.interp(t, x, y)
    lo, hi = (y[1] - y[0]) / (x[1] - x[0]), (y[-1] - y[-2]) / (x[-1] - x[-2])
    return np.where(t < x[0], y[0] + (t - x[0]) * lo, np.where(t > x[-1], y[-1] + (t - x[-1]) * hi, out))


IDENTITY = TimeWarp(np.array([0.0, 1.0]), np.array([0.0, 1.0]))


def beat_warp(beats: Sequence[float] | np.ndarray) -> TimeWarp:
    """The warp putting beat ``i`` (seconds) at ``i * MODEL_BEAT``; the identity for fewer than two beats."""
    b = np.asarray(beats, float)
    if b.size < 2 or np.any(np.diff(b) <= 0):
        return IDENTITY
    return TimeWarp(b, b[0] + np.arange(b.size) * MODEL_BEAT)

#: Chord quality by the intervals above the root that decide it, most specific first.
_QUALITY_BY_INTERVALS = (
    ({4, 7, 10}, "dom7"),
    ({3, 6}, "dim"),
    ({4, 8}, "aug"),
    ({3, 7}, "min"),
    ({4, 7}, "maj"),
    ({3}, "min"),
    ({4}, "maj"),
)


def chord_class(span: ChordSpan, tokenizer: Tokenizer) -> int:
    """The tokenizer's chord class (token id - ``chord_offset``) nearest to a planned chord."""
    intervals = {(p - span.root) % 12 for p in span.pitches}
    for needed, quality in _QUALITY_BY_INTERVALS:
        if needed <= intervals and quality in tokenizer.config.chord_qualities:
            return tokenizer.chord_token(span.root, quality) - tokenizer.chord_offset
    return tokenizer.n_chords - 1  # CHORD_N: no class fits


def key_class(span: ChordSpan, tonic: int) -> int:
    """``tonic + 12 * minor`` of the plan's key while ``span`` sounds: minor where its scale has
    the minor third above the tonic and not the major one (the planner's dark and tense scales)."""
    pcs = {p % 12 for p in span.scale}
    minor = (tonic + 3) % 12 in pcs and (tonic + 4) % 12 not in pcs
    return tonic % 12 + 12 * int(minor)


@dataclass(frozen=True, eq=False)
class PlanTrack:
    """A plan on the token grid: ``starts`` (k,) steps where each chord begins, its ``chords``
    and ``keys`` classes; ``step`` seconds per time step."""

    starts: np.ndarray
    chords: np.ndarray
    keys: np.ndarray
    step: float

    def at(self, now: int, clamp: float) -> tuple[int, int, float]:
        """(chord class, key class, seconds to the next change, clamped) at step ``now``."""
        i = max(int(np.searchsorted(self.starts, now, side="right")) - 1, 0)
        ahead = (self.starts[i + 1] - now) * self.step if i + 1 < self.starts.size else clamp
        return int(self.chords[i]), int(self.keys[i]), min(float(ahead), clamp)


def plan_track(plan: ChordPlan, tokenizer: Tokenizer, warp: TimeWarp = IDENTITY) -> PlanTrack:
    """The plan's chords on ``tokenizer``'s time grid (in ``warp``'s model time) and chord classes."""
    step = tokenizer.config.time_step
    spans = plan.chords
    return PlanTrack(
        starts=np.array([round(float(warp.to_model(c.start)) / step) for c in spans], np.int64),
        chords=np.array([chord_class(c, tokenizer) for c in spans], np.int64),
        keys=np.array([key_class(c, plan.tonic) for c in spans], np.int64),
        step=step,
    )


def plan_following(pm: pretty_midi.PrettyMIDI, plan: HarmonyPlan) -> tuple[int, int, int]:
    """(notes in the planned chord, notes in the planned scale, pitched notes before ``plan.duration``),
    each note judged by the chord sounding at its onset. Nothing is snapped: this measures the notes."""
    notes = [n for i in pm.instruments if not i.is_drum for n in i.notes if n.start < plan.duration]
    spans = [plan.chord_at(n.start) for n in notes]
    in_chord = sum(n.pitch % 12 in {p % 12 for p in s.pitches} for n, s in zip(notes, spans, strict=True))
    in_scale = sum(n.pitch % 12 in {p % 12 for p in s.scale} for n, s in zip(notes, spans, strict=True))
    return in_chord, in_scale, len(notes)
