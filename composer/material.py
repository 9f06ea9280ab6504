"""Where the notes come from: the one interface between a note source and the arranger.

A *note source* writes the melodic material of a piece (the lead line, and optionally
a second line) into a harmonic frame that :mod:`composer.harmony` has already fixed:
tempo map, beats, chord spans (each with the scale it draws from), cuts. The arranger
(:mod:`composer.arranger`) then builds pads, arpeggios, bass, ostinati and drums
around it. Two sources exist:

* ``"rules"``: :class:`RuleSource` below, a seeded rule-based melody writer (always
  available, deterministic for a seed);
* ``"learned"``: the conditional transformer. Its module, ``composer.sample``, provides
  ``learned_source() -> NoteSource`` and raises :class:`~analysis.errors.ModelError`
  when its checkpoint is missing or does not load.

:func:`get_source` resolves a name (``"auto"`` prefers the learned source, else rules).

Contract for every source: notes are in seconds, inside ``[0, request.duration]``,
MIDI pitches 0..127, velocities 1..127. Sources need not keep to the scales: the
arranger snaps every pitch to the scale of the chord span it starts in, so a style's
scales always hold.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Protocol, runtime_checkable

import numpy as np

from analysis.arc import EmotionArc
from analysis.errors import ModelError, ParameterError


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


SOURCES: tuple[str, ...] = ("auto", "rules", "learned")
#: Where the learned source's checkpoint lives (``composer.checkpoint.DEFAULT``); checked
#: here so that "auto" without a trained model never pays for importing torch.
LEARNED_CHECKPOINT = Path(__file__).resolve().parent.parent / "checkpoints" / "composer.pt"


def get_source(name: str | NoteSource = "auto") -> NoteSource:
    """The note source called ``name``.

    ``"auto"`` uses the learned source when ``composer.sample`` imports and its
    checkpoint loads, else :class:`RuleSource`; ``"learned"`` raises
    :class:`ModelError` when the model is unavailable; ``"rules"`` never needs a model.
    A :class:`NoteSource` instance is returned as it is.
    """
    if not isinstance(name, str) and isinstance(name, NoteSource):
        return name
    if name not in SOURCES:
        raise ParameterError(f"`source` must be one of {list(SOURCES)} (received {name!r})")
    if name == "rules" or (name == "auto" and not LEARNED_CHECKPOINT.is_file()):
        return RuleSource()  # no checkpoint: skip importing torch at all
    try:
        from composer.sample import learned_source  # the model's module; absent until trained
    except ImportError as err:
        if name == "learned":
            raise ModelError(f"the learned note source is not available ({err})") from None
        return RuleSource()
    try:
        return learned_source()
    except ModelError:
        if name == "learned":
            raise
        return RuleSource()


# --------------------------------------------------------------------------- rule source


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


def lead_centre(valence: float) -> int:
    """Register follows valence: the lead sits around G4 (67) +- 7 semitones."""
    return round(67 + 7 * float(np.clip(valence, -1, 1)))


def note_value(arousal: float) -> float:
    """Typical lead note length in beats: 2 when calm, 1 in between, 1/2 when intense."""
    return 2.0 if arousal < -0.35 else (1.0 if arousal < 0.3 else 0.5)


class RuleSource:
    """A seeded rule-based melody writer.

    Per chord span: notes start on a beat grid whose step comes from arousal
    (:func:`note_value`); strong beats take chord tones, others a step through the
    span's scale; the line drifts around a register centre set by valence. When a seed
    melody is given, each phrase (chord spans starting on a cut or every fourth chord)
    opens with the motif, developed in turn as statement, inversion, augmentation or
    diminution by arousal, and retrograde, transposed onto the current chord root in
    scale steps so it is reharmonised by whatever chord sounds.
    """

    name: ClassVar[str] = "rules"

    def generate(self, request: MaterialRequest) -> Material:
        rng = np.random.default_rng(request.seed)
        beats = np.asarray(request.beats, float)
        beat_len = float(np.median(np.diff(beats))) if beats.size > 1 else 0.5
        motif = _motif(request.seed_melody)
        notes: list[Note] = []
        prev = None
        variant = 0
        for i, span in enumerate(request.chords):
            val, aro = (float(x) for x in request.va_at(0.5 * (span.start + span.end)))
            pool = scale_pitches(span.scale, lead_centre(val) - 9, lead_centre(val) + 9)
            if not pool:
                continue
            phrase_start = span.cut or i % 4 == 0
            t = span.start
            if motif and phrase_start:
                t, prev = self._motif(notes, motif, variant, span, pool, aro, beat_len, t, request)
                variant += 1
            step = note_value(aro) * beat_len
            while t < span.end - 1e-6:
                dur = min(step * (2 if rng.random() < 0.15 else 1), span.end - t)
                if dur < 0.05:
                    break
                on_strong = _near_beat(t, beats, beat_len)
                if prev is None or on_strong:
                    chord = [p for p in pool if p % 12 in span.pitches] or pool
                    target = lead_centre(val) if prev is None else prev
                    pitch = min(chord, key=lambda p: (abs(p - target) + rng.random() * 3))
                else:
                    idx = int(np.searchsorted(pool, prev))
                    idx = int(np.clip(idx + rng.choice([-2, -1, 1, 1, 2]), 0, len(pool) - 1))
                    pitch = pool[idx]
                if rng.random() < 0.12 and aro < 0.3:  # breathe: a rest
                    t += dur
                    continue
                vel = int(np.clip(52 + 48 * (aro + 1) / 2 + rng.integers(-4, 5), 1, 127))
                notes.append(Note(t, t + dur * 0.95, pitch, vel))
                prev = pitch
                t += dur
        return Material(melody=tuple(notes), source=self.name)

    @staticmethod
    def _motif(
        notes: list[Note],
        motif: list[tuple[int, float, float]],
        variant: int,
        span: ChordSpan,
        pool: list[int],
        aro: float,
        beat_len: float,
        t: float,
        request: MaterialRequest,
    ) -> tuple[float, int | None]:
        """Write one development of the motif from ``t``; returns the new time and last pitch."""
        kind = ("statement", "inversion", "stretch", "retrograde")[variant % 4]
        steps = [(s, on, d) for s, on, d in motif]
        if kind == "inversion":
            steps = [(-s, on, d) for s, on, d in steps]
        elif kind == "retrograde":
            total = max(on + d for _, on, d in steps)
            steps = [(s, total - on - d, d) for s, on, d in reversed(steps)]
            base = steps[0][0]
            steps = [(s - base, on, d) for s, on, d in steps]
        scale_t = (2.0 if aro < -0.3 else 0.5 if aro > 0.5 else 1.0) if kind == "stretch" else 1.0
        roots = [k for k, p in enumerate(pool) if p % 12 == span.root] or [len(pool) // 2]
        anchor = min(roots, key=lambda k: abs(k - len(pool) // 2))
        end = request.duration
        last = None
        vel = int(np.clip(58 + 45 * (aro + 1) / 2, 1, 127))
        for s, on, d in steps:
            start = t + on * beat_len * scale_t
            stop = min(start + d * beat_len * scale_t * 0.95, end)
            if stop - start < 0.05:
                break
            last = pool[int(np.clip(anchor + s, 0, len(pool) - 1))]
            notes.append(Note(start, stop, last, vel))
        t_end = t + max(on + d for _, on, d in steps) * beat_len * scale_t
        return t_end, last


def _motif(seed: Sequence[Note]) -> list[tuple[int, float, float]]:
    """A seed melody as (scale-step offset from its first note, onset beats, length beats).

    Steps are counted in the diatonic major scale of the seed's first note, so the
    contour survives being re-realised in any other scale.
    """
    if not seed:
        return []
    seed = sorted(seed, key=lambda n: n.start)
    t0, p0 = seed[0].start, seed[0].pitch
    major = (0, 2, 4, 5, 7, 9, 11)
    pos = {p: k for k, p in enumerate(scale_pitches([(p0 + i) % 12 for i in major], p0 - 36, p0 + 36))}

    def step(p: int) -> int:
        q = snap_to_scale(p, [(p0 + i) % 12 for i in major])
        return pos[q] - pos[p0]

    return [(step(n.pitch), n.start - t0, max(0.25, n.end - n.start)) for n in seed]


def _near_beat(t: float, beats: np.ndarray, beat_len: float) -> bool:
    if not beats.size:
        return True
    return bool(np.min(np.abs(beats - t)) < 0.1 * beat_len)
