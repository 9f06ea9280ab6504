"""Where the notes come from: the one interface between a note source and the arranger.

A *note source* writes the melodic material of a piece (the lead line, and optionally
a second line) into a harmonic frame that :mod:`composer.music.harmony` has already fixed:
tempo map, beats, chord spans (each with the scale it draws from), cuts. The arranger
(:mod:`composer.music.arranger`) then builds pads, arpeggios, bass, ostinati and drums
around it. Two sources exist:

* ``"rules"``: :class:`~composer.music.rules.RuleSource`, a seeded rule-based melody writer (always
  available, deterministic for a seed);
* ``"learned"``: the conditional transformer. Its module, ``composer.model.generate``, provides
  ``learned_source() -> NoteSource`` and raises :class:`~analysis.errors.ModelError`
  when its checkpoint is missing or does not load.

:func:`composer.music.sources.get_source` resolves a name (``"auto"`` prefers the learned source, else rules).

Contract for every source: notes are in seconds, inside ``[0, request.duration]``,
MIDI pitches 0..127, velocities 1..127. Sources need not keep to the scales: the
arranger snaps every pitch to the scale of the chord span it starts in, so a style's
scales always hold.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar, Protocol, runtime_checkable

import numpy as np

from analysis.arc import EmotionArc


@dataclass(frozen=True)
class Note:
    """One note in seconds (``end > start``), MIDI pitch and velocity."""

    start: float
    end: float
    pitch: int
    velocity: int


@dataclass(frozen=True)
class ChordSpan:
    """A chord held from ``start`` to ``end`` seconds.

    ``root`` is a pitch class (0 = C); ``pitches`` the chord's pitch classes, root first;
    ``scale`` the pitch classes (absolute, i.e. already transposed to the tonic) that
    melody and accompaniment may use while the chord sounds; ``symbol`` a readable name
    such as ``"Am7"``; ``degree`` the chord root's index in ``scale`` order (0 = tonic);
    ``mood`` which of the style's scales it came from (``"bright"``, ``"dark"``,
    ``"tense"``); ``cut`` whether a scene cut starts it.
    """

    start: float
    end: float
    root: int
    pitches: tuple[int, ...]
    scale: tuple[int, ...]
    symbol: str
    degree: int
    mood: str
    cut: bool = False


@dataclass(frozen=True, eq=False)
class MaterialRequest:
    """Everything a note source may condition on.

    ``beats`` are beat times in seconds (from the tempo map), ``downbeats`` the first
    beat of each 4/4 bar. ``seed_melody`` is a user's motif that the source should
    develop, with ``start``/``end`` in *beats* from its first note (so it is free of the
    seed file's own tempo); empty when none was given.
    """

    arc: EmotionArc
    duration: float
    cuts: tuple[float, ...]
    beats: np.ndarray
    downbeats: np.ndarray
    chords: tuple[ChordSpan, ...]
    tonic: int
    seed: int
    seed_melody: tuple[Note, ...] = ()

    def va_at(self, t: float | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Valence and arousal interpolated at ``t`` seconds."""
        tt = np.asarray(t, float)
        return (np.interp(tt, self.arc.times, self.arc.valence), np.interp(tt, self.arc.times, self.arc.arousal))

    def boundary_offset(self, t: float, *, clamp: float = 4.0) -> float:
        """Seconds from ``t`` to the next cut (or the end), clamped to ``clamp``."""
        later = [c for c in (*self.cuts, self.duration) if c > t + 1e-9]
        return float(min(clamp, (min(later) if later else self.duration) - t))


@dataclass(frozen=True)
class Material:
    """A source's output: the lead line, an optional second line, and who wrote them."""

    melody: tuple[Note, ...]
    source: str
    counter: tuple[Note, ...] = ()


@runtime_checkable
class NoteSource(Protocol):
    """Writes melodic material into a harmonic frame. One instance serves many pieces."""

    name: ClassVar[str]

    def generate(self, request: MaterialRequest) -> Material:
        """Notes for ``request`` (deterministic for ``request.seed``)."""
        ...


def voice_line(notes: Sequence[Note], *, top: bool = True) -> list[Note]:
    """Skyline (or bassline): at each onset the highest (lowest) note, cut where the next one starts."""
    by_onset: dict[float, Note] = {}
    for n in notes:
        cur = by_onset.get(round(n.start, 3))
        if cur is None or (n.pitch > cur.pitch if top else n.pitch < cur.pitch):
            by_onset[round(n.start, 3)] = n
    line = [by_onset[k] for k in sorted(by_onset)]
    out = []
    for i, n in enumerate(line):
        end = min(n.end, line[i + 1].start) if i + 1 < len(line) else n.end
        if end - n.start > 0.02:
            out.append(Note(n.start, end, n.pitch, max(1, min(127, n.velocity))))
    return out


def snap_to_scale(pitch: int, scale: Sequence[int]) -> int:
    """The nearest pitch whose pitch class is in ``scale`` (ties go down)."""
    pcs = set(scale)
    for d in range(7):
        for cand in (pitch - d, pitch + d):
            if cand % 12 in pcs and 0 <= cand <= 127:
                return cand
    return pitch


def scale_pitches(scale: Sequence[int], low: int, high: int) -> list[int]:
    """All MIDI pitches in ``[low, high]`` whose class is in ``scale``, ascending."""
    pcs = set(scale)
    return [p for p in range(max(0, low), min(127, high) + 1) if p % 12 in pcs]
