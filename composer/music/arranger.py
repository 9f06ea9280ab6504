"""Arranger: turns a harmony plan and a lead line into parts for a General MIDI band.

Texture follows the *level*, local arousal plus the style's ``texture_bias`` and the
caller's energy, read at every event, so a rising arc thickens the score gradually:

========  =====================================================================
level     layers that play (each only if the style names a program for it)
========  =====================================================================
any       lead (the user's instrument), pad or drone (sparse pad when calm)
> -0.5    bass on chord roots (every bar; every beat above 0.3, eighths above 0.6)
> -0.3    arpeggio (``arp_pattern`` at ``arp_rate`` steps per beat)
> -0.1    counter-line (half notes on chord tones, moving by step)
> 0.35    ostinato (``ostinato_steps`` sixteenths on root and fifth)
> 0.45    fuller voicing: pad doubled an octave down
> 0.55    brass chords on every chord change
per drum  GM percussion voices from their ``level``; a crash on each cut when drums play
========  =====================================================================

Styles without a pad keep their arpeggio at every level (a piano's left hand), and so do styles
whose pad is a drone: a drone holds tonic and fifth through every chord, so in a calm cue with no
bass the arpeggio's one note a beat is all that carries the chord changes. Before a cut that changes
the chord the pad's tones that sound on both sides (a drone's, a pedal, a common tone) breathe (a quarter
beat, at most 0.2 s) and are struck again on the cut, so none holds across the change and masks it (a
tanpura or harmonium keeps its tonic, as the style wants).
A dark span's pad holds the key's tonic under a chord that lacks it (a beat late on a cut), a drone takes
the minor third when the chord holds it, and a calm pad-less hand adds the tonic, so a calm dark cue is
heard in its minor key rather than its relative (or parallel) major.
Dynamics: velocity 40..100 from arousal. Register: the pad and arpeggio centres move
+-5 semitones with valence (the lead's register is set by the note source), and every other
pitched layer keeps at or below the lead note sounding with it, a scene (cut to cut) at a time moved
down by octaves but not under C3, or under a lead below middle C an octave clear above it, and left out
where neither fits (:func:`composer.music.ranges.under`), so the melody is heard on top. Every
pitched note is snapped to the scale of the chord span where it starts, so a style's
scales always hold whatever the note source wrote, and a source's lines start on the plan's
sixteenths or triplets (:func:`composer.music.grid.on_grid`), cuts aside.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from analysis.arc import EmotionArc
from composer.music.grid import on_grid
from composer.music.harmony import HarmonyPlan
from composer.music.notes import ChordSpan, Material, Note, scale_pitches, snap_to_scale
from composer.music.ranges import in_range, under
from composer.music.styles import Style

CRASH = 49


@dataclass(frozen=True)
class Part:
    """One instrument's notes: ``name`` is its role (``"lead"``, ``"pad"``, ...)."""

    name: str
    program: int
    is_drum: bool
    notes: tuple[Note, ...]


def velocity(arousal: float, offset: int = 0) -> int:
    """Dynamics follow arousal: 40 (calm) .. 100 (excited), plus a layer offset."""
    return int(np.clip(40 + 30 * (float(np.clip(arousal, -1, 1)) + 1) + offset, 1, 127))


class _Arranger:
    def __init__(self, plan: HarmonyPlan, arc: EmotionArc, style: Style, bias: float, seed: int) -> None:
        self.plan, self.arc, self.style, self.bias = plan, arc, style, bias
        self.rng = np.random.default_rng(seed + 7919)
        self.beats = plan.beats
        self.beat = 60.0 / plan.base_tempo  # the nominal beat (s), where the beats are too few to measure
        self.starts = np.array([c.start for c in plan.chords])

    def aro(self, t: float) -> float:
        return float(np.clip(np.interp(t, self.arc.times, self.arc.arousal) + self.bias, -1, 1))

    def val(self, t: float) -> float:
        return float(np.interp(t, self.arc.times, self.arc.valence))

    def level(self, t: float) -> float:
        return self.aro(t) + self.style.texture_bias

    def chord(self, t: float) -> ChordSpan:
        return self.plan.chords[max(0, int(np.searchsorted(self.starts, t + 1e-9, side="right")) - 1)]

    def voicing(self, span: ChordSpan, centre: int, *, drone: bool = False) -> list[int]:
        """Chord tones (or tonic and fifth for a drone) within a sixth of ``centre``."""
        pcs: tuple[int, ...] = span.pitches
        if drone:
            tonic = self.plan.tonic % 12
            fifth = (tonic + 7) % 12
            pcs = (tonic, fifth) if fifth in span.scale else (tonic,)
            third = (tonic + 3) % 12
            if span.mood != "bright" and third in span.pitches:
                pcs = (*pcs, third)  # a dark tonic chord over the drone is heard minor, not bare
        return [p for p in range(centre - 6, centre + 7) if p % 12 in pcs]

    def pedal(self, span: ChordSpan, centre: int) -> Note | None:
        """The key's tonic held under a dark span's chord that lacks it (VII, v, III), so a calm dark cue is
        heard in its minor key, not its relative major; on a cut it enters a beat late, so the cut's
        new chord is first heard bare (a cut keeps no tone of the chord before it)."""
        tonic = self.plan.tonic % 12
        if span.mood == "bright" or self.style.drone or tonic in span.pitches:
            return None
        start = span.start
        if span.cut:
            later = self.beats[self.beats > span.start + 1e-6]
            start = float(later[0]) if later.size else span.end
        if span.end - start < 0.25:
            return None
        pitch = min((p for p in range(centre - 12, centre + 13) if p % 12 == tonic), key=lambda p: abs(p - centre))
        return Note(start, span.end, pitch, velocity(self.aro(start), -18))

    def steps(self, per_beat: int) -> list[float]:
        """Times of ``per_beat`` equal subdivisions of every beat."""
        last = self.beats[-1] - self.beats[-2] if self.beats.size > 1 else self.beat
        b = np.append(self.beats, self.beats[-1] + last)  # the last beat keeps its length
        out: list[float] = []
        for s, e in itertools.pairwise(b):
            out.extend(s + (e - s) * k / per_beat for k in range(per_beat))
        return [t for t in out if t < self.plan.duration - 1e-6]

    def lead(self, material: Material) -> list[Note]:
        out = []
        for n in on_grid(material.melody, self.beats, self.plan.cuts):
            if n.end <= n.start or n.start >= self.plan.duration:
                continue
            p = snap_to_scale(int(n.pitch), self.chord(n.start).scale)
            out.append(Note(n.start, min(n.end, self.plan.duration), p, self._dynamic(n, 8)))
        return out

    def _dynamic(self, n: Note, offset: int) -> int:
        """A source note's velocity: the arc's dynamics at its onset plus ``offset`` for its layer,
        moved by a quarter of the source's own accent (its velocity against 76)."""
        return velocity(self.aro(n.start), offset + round((n.velocity - 76) * 0.25))

    def pad(self) -> list[Note]:
        out = []
        for span in self.plan.chords:
            centre = round(55 + 5 * self.val(span.start))
            pitches = self.voicing(span, centre, drone=self.style.drone)
            if self.level(span.start) > 0.45:
                pitches = sorted({*pitches, *(p - 12 for p in pitches[:2])})
            v = velocity(self.aro(span.start), -14)
            out.extend(Note(span.start, span.end, p, v) for p in pitches)
            pedal = self.pedal(span, centre)
            if pedal is not None:
                out.append(pedal)
        return self.breathe_at_cuts(out)

    def breathe_at_cuts(self, notes: list[Note]) -> list[Note]:
        """``notes`` with each one that ends on a cut changing the chord, where a note of its pitch starts,
        ended a quarter beat (at most 0.2 s) early: the tone is struck again on the cut instead of held
        across it (a drone held tonic and fifth across every cut, 2.25 tones a cut, masking the change)."""
        chords = self.plan.chords
        cuts = [b.start for a, b in itertools.pairwise(chords)
                if b.cut and (a.root != b.root or set(a.pitches) != set(b.pitches))]
        beat = float(np.median(np.diff(self.beats))) if self.beats.size > 1 else self.beat
        breath = min(0.25 * beat, 0.2)
        again = {(round(n.start, 6), n.pitch) for n in notes}
        return [Note(n.start, n.end - breath, n.pitch, n.velocity)
                if any(abs(n.end - c) < 1e-6 and (round(c, 6), n.pitch) in again for c in cuts)
                and n.end - breath > n.start + 0.05 else n
                for n in notes]

    def bass(self) -> list[Note]:
        out = []
        down = set(np.round(self.plan.downbeats, 6))
        starts = [c.start for c in self.plan.chords]
        grid = [t for t in self.steps(2) if min(abs(t - c) for c in starts) > 0.03]
        for t, nxt in _pairs(sorted([*grid, *starts]), self.plan.duration):  # every chord start, even off the grid
            lv, span = self.level(t), self.chord(t)
            on_beat = abs(t - self.beats[np.argmin(np.abs(self.beats - t))]) < 1e-6
            starts_chord = abs(t - span.start) < 1e-6
            play = (
                starts_chord
                or (lv > 0.6)
                or (lv > 0.3 and on_beat)
                or (lv > -0.5 and on_beat and round(t, 6) in down)
            )
            if lv <= -0.5 and not starts_chord:
                play = False
            if not play:
                continue
            end = min(span.end, self.plan.duration, nxt if lv > 0.6 else t + 4 * (nxt - t))
            p = 36 + (span.root - 36) % 12
            out.append(Note(t, max(end, t + 0.05), p, velocity(self.aro(t), -4)))
        return out

    def arp(self) -> list[Note]:
        out = []
        always = self.style.pad is None or self.style.drone  # nothing else may sound the chord
        per_beat = self.style.arp_rate
        for i, (t, nxt) in enumerate(_pairs(self.steps(per_beat), self.plan.duration)):
            lv = self.level(t)
            if lv <= -0.3 and not (always and i % per_beat == 0):
                continue
            span = self.chord(t)
            pcs = span.pitches
            if self.style.pad is None and span.mood != "bright" and lv <= -0.3:
                pcs = (*pcs, self.plan.tonic % 12)  # a calm hand, no pad: it sounds the key's tonic too
            tones = [p for p in scale_pitches(pcs, 0, 127) if 50 + 5 * self.val(t) <= p][:6]
            if not tones:
                continue
            calm = lv <= -0.3  # one note a beat
            # a drone style's calm pattern steps by beats (celtic's 3-step index skipped to the same tone);
            # pad-less styles keep the pattern's strong steps, which carry their mode (a calm dark piano read
            # major-minor +0.02 stepping by beats, -0.38 on the strong steps)
            step = i // per_beat if calm and self.style.drone else i
            p = tones[self.style.arp_pattern[step % len(self.style.arp_pattern)] % len(tones)]
            hold = (nxt - t) * (per_beat if calm else 1.0)
            out.append(Note(t, min(t + hold, span.end, self.plan.duration), p, velocity(self.aro(t), -10)))
        return out

    def counter(self, given: tuple[Note, ...]) -> list[Note]:
        if given:
            return [
                Note(n.start, n.end, snap_to_scale(n.pitch, self.chord(n.start).scale), self._dynamic(n, -12))
                for n in on_grid(given, self.beats, self.plan.cuts)
            ]
        out: list[Note] = []
        prev = 55
        for t, _ in _pairs([float(b) for b in self.beats[::2]], self.plan.duration):
            if self.level(t) <= -0.1:
                continue
            span = self.chord(t)
            tones = [p for p in scale_pitches(span.pitches, 45, 62) if p != prev] or [prev]
            prev = min(tones, key=lambda p: abs(p - prev) + self.rng.random())
            end = min(span.end, t + 2 * self.beat, self.plan.duration)
            if end - t > 0.05:
                out.append(Note(t, end, prev, velocity(self.aro(t), -12)))
        return out

    def ostinato(self) -> list[Note]:
        out = []
        steps = set(self.style.ostinato_steps)
        for i, (t, nxt) in enumerate(_pairs(self.steps(4), self.plan.duration)):
            if i % 16 not in steps or self.level(t) <= 0.35:
                continue
            span = self.chord(t)
            fifth = span.pitches[2] if len(span.pitches) > 2 else span.root
            pc = span.root if (i // 2) % 2 == 0 else fifth
            out.append(Note(t, min(nxt, span.end), 48 + (pc - 48) % 12, velocity(self.aro(t), -6)))
        return out

    def brass(self) -> list[Note]:
        out = []
        for span in self.plan.chords:
            if self.level(span.start) > 0.55:
                v = velocity(self.aro(span.start), 0)
                out.extend(Note(span.start, span.end, p, v) for p in self.voicing(span, 58))
        return out

    def drums(self) -> list[Note]:
        out: list[Note] = []
        for pat in self.style.drums:
            per_beat_steps = pat.steps / pat.cycle_beats
            if per_beat_steps != int(per_beat_steps):
                continue
            hits = set(pat.hits)
            for i, (t, _) in enumerate(_pairs(self.steps(int(per_beat_steps)), self.plan.duration)):
                if i % pat.steps in hits and self.level(t) >= pat.level:
                    v = int(np.clip(pat.velocity * (0.75 + 0.25 * self.aro(t)), 1, 127))
                    out.append(Note(t, min(t + 0.1, self.plan.duration), pat.note, v))
        if self.style.drums:
            for c in self.plan.cuts:
                if self.level(c) > 0.2:
                    out.append(Note(c, min(c + 0.5, self.plan.duration), CRASH, velocity(self.aro(c), 5)))
        return out


def _pairs(times: list[float], end: float) -> list[tuple[float, float]]:
    nxt = [*times[1:], end]
    return [(float(t), float(n)) for t, n in zip(times, nxt, strict=True) if t < end - 1e-6]


def arrange(
    plan: HarmonyPlan,
    material: Material,
    *,
    arc: EmotionArc,
    style: Style,
    lead_program: int,
    energy: float | None = None,
    seed: int = 0,
) -> tuple[Part, ...]:
    """The parts of the piece, lead first; empty layers are left out."""
    a = _Arranger(plan, arc, style, float(energy or 0.0), seed)
    parts = [Part("lead", lead_program, False, tuple(a.lead(material)))]
    layers = (
        ("pad", style.pad, a.pad),
        ("bass", style.bass, a.bass),
        ("arpeggio", style.arp, a.arp),
        ("counter", style.counter, lambda: a.counter(material.counter)),
        ("ostinato", style.ostinato, a.ostinato),
        ("brass", style.brass, a.brass),
    )
    for name, program, build in layers:
        if program is not None:
            notes = build()
            if notes:
                parts.append(Part(name, program, False, tuple(notes)))
    drums = a.drums()
    if drums:
        parts.append(Part("drums", 0, True, tuple(drums)))
    lead = _clip(parts[0], plan.duration, ())
    phrases = [float(c) for c in plan.cuts]  # a scene moves as one: octave changes fall on cuts
    return (lead, *(_clip(p, plan.duration, lead.notes, phrases) for p in parts[1:]))


def _clip(part: Part, duration: float, lead: Sequence[Note], phrases: Sequence[float] = ()) -> Part:
    """Notes end by ``duration`` (the MIDI's end is the clip's) and last at least 30 ms, lie in the
    instrument's range (:func:`composer.music.ranges.in_range`), at or below the ``lead`` sounding with
    them (:func:`composer.music.ranges.under`), and no note overlaps another of its pitch
    (:func:`no_restrike_overlaps`)."""
    playable = part.notes if part.is_drum else under(in_range(part.notes, part.program), lead, part.program, phrases)
    notes = [Note(n.start, min(n.end, duration), n.pitch, n.velocity) for n in playable if n.start < duration - 0.03]
    return Part(part.name, part.program, part.is_drum, no_restrike_overlaps(notes))


def no_restrike_overlaps(notes: Sequence[Note]) -> tuple[Note, ...]:
    """``notes`` with each note that is struck again while it sounds ended where the new one starts.

    One channel holds one voice per pitch: in a MIDI file (and in FluidSynth) the first note's
    note-off also silences the restruck one, so a bass restruck under a held note lost up to 0.6 s. Two
    strikes within 30 ms are one note (the longer, the louder velocity). Sorted by start, then pitch.
    """
    out: list[Note] = []
    last: dict[int, int] = {}  # pitch -> index in out of its latest note
    for n in sorted(notes, key=lambda n: (n.start, n.pitch)):
        i = last.get(n.pitch)
        if i is not None and n.start < out[i].end:
            held = out[i]
            if n.start - held.start < 0.03:
                out[i] = Note(held.start, max(held.end, n.end), n.pitch, max(held.velocity, n.velocity))
                continue
            out[i] = Note(held.start, n.start, held.pitch, held.velocity)
        last[n.pitch] = len(out)
        out.append(n)
    return tuple(out)
