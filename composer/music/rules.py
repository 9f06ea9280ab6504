"""The rule-based note source: a seeded melody writer that needs no model."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import numpy as np

from composer.music.notes import ChordSpan, Material, MaterialRequest, Note, scale_pitches, snap_to_scale


def lead_centre(valence: float) -> int:
    """Register follows valence: the lead sits around G4 (67) +- 7 semitones."""
    return round(67 + 7 * float(np.clip(valence, -1, 1)))


def note_value(arousal: float) -> float:
    """Typical lead note length in beats: 2 when calm, 1 in between, 1/2 when intense."""
    return 2.0 if arousal < -0.35 else (1.0 if arousal < 0.3 else 0.5)


class RuleSource:
    """A seeded rule-based melody writer.

    Per chord span: notes start on a beat grid whose step comes from arousal
    (:func:`note_value`); a note sounding on a strong beat (:func:`_strong_times`) or starting a
    chord takes a chord tone a step or a third on, others a step through the span's scale, the
    line heading one way and turning in arches round a register centre set by valence
    (:class:`_Contour`); strong notes lean on the key's tonic, and a scene's last note comes home. When a seed
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
        downbeats = np.asarray(request.downbeats, float)
        motif = _motif(request.seed_melody)
        notes: list[Note] = []
        line = _Contour(rng)
        variant = 0
        for i, span in enumerate(request.chords):
            val, aro = (float(x) for x in request.va_at(0.5 * (span.start + span.end)))
            centre = lead_centre(val)
            pool = scale_pitches(span.scale, centre - 9, centre + 9)
            if not pool:
                continue
            t = span.start
            if motif and (span.cut or i % 4 == 0):  # a phrase opens with the motif
                t, line.prev = self._motif(notes, motif, variant, span, pool, aro, beat_len, t, request)
                variant += 1
            value = note_value(aro)
            strong = _strong_times(beats, downbeats, value)
            step = value * beat_len
            scene_ends = i + 1 == len(request.chords) or request.chords[i + 1].cut  # a cut or the end follows
            while t < span.end - 1e-6:
                dur = min(step * (2 if rng.random() < 0.15 else 1), span.end - t)
                if dur < 0.05:
                    break
                closing = scene_ends and t + dur >= span.end - 1e-6
                if closing or t <= span.start + 1e-6 or _covers(t, dur, strong, beat_len):
                    pull = CADENCE if closing else HOME_PULL  # a scene's last note comes home
                    pitch = line.chord_tone(span, pool, centre, request.tonic % 12, pull)
                else:
                    pitch = line.passing(pool, centre)
                if rng.random() < 0.12 and aro < 0.3:  # breathe: a rest
                    t += dur
                    continue
                vel = int(np.clip(52 + 48 * (aro + 1) / 2 + rng.integers(-4, 5), 1, 127))
                notes.append(Note(t, t + dur * 0.95, pitch, vel))
                line.prev = pitch
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


#: How far (semitones) the line's own notes stray from the register centre: a minor seventh in all.
AMBITUS = 5


#: How much nearer (semitones) a strong note takes the key's tonic to be than it is: the tonic tells a
#: minor key from its relative major (the minor third is that major's tonic), a major key from its relative
#: minor.
HOME_PULL = 2.0
#: The same for the last note before a cut or the end, which comes home where the chord allows.
CADENCE = 6.0


class _Contour:
    """The line's memory: its last pitch and the way it is heading.

    A strong note takes a chord tone a step or a third on in the heading, the same pitch only where
    nothing else is near; a weak one steps through the scale. The heading turns now and then, and
    back towards the register centre when the line strays a fourth from it, so a slow line
    moves in arches instead of holding the one chord tone nearest its last note (a calm cue's lead sat
    on one pitch for whole scenes).
    """

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.prev: int | None = None
        self.heading = 1

    def _turn(self, centre: int) -> None:
        if self.prev is not None and abs(self.prev - centre) >= AMBITUS:
            self.heading = 1 if self.prev < centre else -1
        elif self.rng.random() < 0.25:
            self.heading = -self.heading

    def chord_tone(self, span: ChordSpan, pool: list[int], centre: int, tonic: int, pull: float) -> int:
        """A chord tone a step or a third on in the heading; the key's ``tonic`` counts as ``pull``
        semitones nearer, so the line tells its key."""
        near = [p for p in pool if abs(p - centre) <= AMBITUS] or pool
        chord = [p for p in near if p % 12 in span.pitches] or near
        if self.prev is None:
            return min(chord, key=lambda p: abs(p - centre) - pull * (p % 12 == tonic) + self.rng.random() * 3)
        self._turn(centre)
        target = self.prev + 2 * self.heading
        return min(chord, key=lambda p: abs(p - target) + 6 * (p == self.prev) - pull * (p % 12 == tonic)
                   + self.rng.random() * 2)

    def passing(self, pool: list[int], centre: int) -> int:
        """The next scale step (now and then two) in the heading, turning round at the edge."""
        if self.prev is None:
            return min(pool, key=lambda p: abs(p - centre))
        self._turn(centre)
        pool = [p for p in pool if abs(p - centre) <= AMBITUS] or pool
        idx = int(np.searchsorted(pool, self.prev))
        move = self.heading * (2 if self.rng.random() < 0.2 else 1)
        if idx < len(pool) and pool[idx] != self.prev and move > 0:
            move -= 1  # prev lies between pool[idx - 1] and pool[idx]: one up is pool[idx]
        k = int(np.clip(idx + move, 0, len(pool) - 1))
        if pool[k] == self.prev:  # the edge of the pool: turn round
            self.heading = -self.heading
            k = int(np.clip(idx - move, 0, len(pool) - 1))
        return pool[k]


def _strong_times(beats: np.ndarray, downbeats: np.ndarray, value: float) -> np.ndarray:
    """Where a line of ``value``-beat notes takes chord tones: every beat for short notes, the half
    bars for one-beat notes, the downbeats for slow ones (their other notes step between them)."""
    if value < 1 or not beats.size:
        return beats
    if value >= 2 or not downbeats.size:
        return downbeats if downbeats.size else beats
    idx = np.searchsorted(beats, downbeats - 1e-6) + 2
    return np.sort(np.concatenate([downbeats, beats[idx[idx < beats.size]]]))


def _covers(t: float, dur: float, strong: np.ndarray, beat_len: float) -> bool:
    """Whether a note from ``t`` lasting ``dur`` seconds sounds on one of the ``strong`` times."""
    slack = 0.1 * beat_len
    return bool(np.any((strong > t - slack) & (strong < t + dur - slack)))
