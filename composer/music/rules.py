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
