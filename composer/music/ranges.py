"""What each General MIDI instrument can play: parts moved by octaves into their instrument's range.

The note source sets the lead's register whatever the user's instrument, so a tuba was handed A5
and a piccolo B3: notes the score gives players who cannot play them, and that FluidSynth renders
thin or not at all. Ranges are the usual orchestration ones (written as sounding MIDI pitches), by
GM family with the instruments that differ most from their family named on their own.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from composer.music.notes import Note

#: (low, high) MIDI pitch for each GM family of eight programs (0-7 pianos, 8-15 chromatic
#: percussion, ... 120-127 sound effects).
_FAMILY = (
    (21, 108), (53, 96), (36, 96), (40, 84), (28, 67), (40, 96), (40, 88), (52, 84),
    (40, 82), (44, 87), (60, 96), (36, 96), (36, 96), (36, 96), (48, 86), (48, 84),
)
#: Programs whose range differs from their family's.
_PROGRAM = {
    8: (60, 108), 9: (72, 108), 10: (60, 96), 11: (53, 89), 12: (45, 96), 13: (65, 108), 14: (60, 77),
    15: (48, 84), 21: (53, 89), 22: (60, 84), 40: (55, 100), 41: (48, 88), 42: (36, 76), 43: (28, 62),
    45: (28, 96), 46: (24, 103), 47: (40, 55), 52: (48, 81), 53: (48, 81), 54: (48, 81),
    56: (55, 82), 57: (40, 72), 58: (28, 58), 59: (55, 82), 60: (41, 77),
    64: (56, 87), 65: (49, 80), 66: (44, 75), 67: (36, 68), 68: (58, 91), 69: (52, 81), 70: (34, 72),
    71: (50, 91), 72: (74, 102), 73: (60, 96), 74: (72, 98), 78: (72, 96), 104: (48, 77), 105: (48, 84),
    106: (50, 79), 107: (55, 91), 108: (60, 84), 109: (67, 86), 110: (55, 100), 111: (60, 84),
    112: (72, 108), 113: (60, 84), 114: (52, 76),
}


def playable_range(program: int) -> tuple[int, int]:
    """The lowest and highest MIDI pitch GM ``program`` plays."""
    return _PROGRAM.get(program, _FAMILY[program // 8])


def in_range(notes: Sequence[Note], program: int) -> tuple[Note, ...]:
    """``notes`` moved by the whole octaves that leave the fewest outside ``program``'s range (no move
    when none are outside), then any still outside folded in by octaves: the line keeps its shape
    where it can, and every note is one the instrument plays."""
    if not notes:
        return tuple(notes)
    low, high = playable_range(program)
    pitches = np.array([n.pitch for n in notes])
    shifts = range(-4, 5)
    outside = [int(np.sum((pitches + 12 * k < low) | (pitches + 12 * k > high))) for k in shifts]
    k = min(shifts, key=lambda s: (outside[s + 4], abs(s)))
    return tuple(Note(n.start, n.end, _fold(n.pitch + 12 * k, low, high), n.velocity) for n in notes)


def _fold(pitch: int, low: int, high: int) -> int:
    while pitch < low and pitch + 12 <= high:
        pitch += 12
    while pitch > high and pitch - 12 >= low:
        pitch -= 12
    return pitch


#: Accompaniment is not pushed below C3 to get under the lead (a bass already there stays): close chords
#: under it are mud, and the low lead they would sit beside is masked by them.
FLOOR = 48
#: A lead under middle C may have the accompaniment above it instead, an octave or more clear of it
#: (a tuba or double-bass tune under a string pad), rather than the band crammed under it.
LOW_LEAD = 60


def under(
    notes: Sequence[Note], lead: Sequence[Note], program: int, phrases: Sequence[float] = ()
) -> tuple[Note, ...]:
    """``notes`` (an accompanying part) kept clear of ``lead``, so the melody stays the top voice.

    The notes that start in one phrase (between consecutive ``phrases`` times: the arranger's cuts) move
    together by the octaves that fit the most of them at or below the lowest lead note sounding with
    each, but no lower than :data:`FLOOR` (or the instrument's low note, or the phrase's own lowest
    note), or, under a lead below :data:`LOW_LEAD`, an octave or more above the highest lead note
    sounding with each; the last phrase's shift is kept where it fits as many, so lines and chords do
    not jump octaves. A note that does not fit is left out, except in a bass (a part written under
    :data:`FLOOR`), which keeps it as written and never goes above the lead. Notes the lead does not
    sound over move with their phrase where the instrument can play them there, else by the octaves
    that keep them in its range: the phrase's shift took them past it (a celesta's G#3 after a pause of
    the lead, a flute counter-line's G3), 28 notes in 588 cues.
    """
    if not lead:
        return tuple(notes)
    low, high = playable_range(program)
    clash = _Clash(lead)
    bounds = np.asarray(sorted(phrases), float)
    groups: dict[int, list[Note]] = {}
    for n in notes:
        groups.setdefault(int(np.searchsorted(bounds, n.start, side="right")), []).append(n)
    out: list[Note] = []
    prev = 0
    bass = float(np.median([n.pitch for n in notes])) < FLOOR  # written low: down to its floor, never above
    for _, group in sorted(groups.items()):
        floor = low if bass else min(max(low, FLOOR), min(n.pitch for n in group))
        shift, fit = _place(group, clash, floor, -1 if bass else high, prev, ceiling=high)
        out.extend(Note(n.start, n.end, _moved(n.pitch, shift, low, high) if ok else n.pitch, n.velocity)
                   for n, ok in zip(group, fit, strict=True) if ok or bass)
        prev = prev if shift is None else shift
    return tuple(sorted(out, key=lambda n: (n.start, n.pitch)))


def _moved(pitch: int, shift: int | None, low: int, high: int) -> int:
    """``pitch`` moved by ``shift`` octaves' worth of semitones, folded back into ``low``..``high`` where the
    move takes it out (no move leaves it as it is)."""
    return _fold(pitch + shift, low, high) if shift else pitch


class _Clash:
    """The lowest and highest ``lead`` pitch sounding over a span of time."""

    def __init__(self, lead: Sequence[Note]) -> None:
        order = sorted(lead, key=lambda n: n.start)
        self.starts = np.array([n.start for n in order])
        self.ends = np.array([n.end for n in order])
        self.pitches = np.array([n.pitch for n in order])

    def over(self, n: Note) -> tuple[int, int] | None:
        sel = slice(0, int(np.searchsorted(self.starts, n.end, side="left")))
        hit = self.pitches[sel][self.ends[sel] > n.start]
        return (int(hit.min()), int(hit.max())) if hit.size else None


def _place(
    group: Sequence[Note], clash: _Clash, floor: int, high: int, prev: int, *, ceiling: int = 127
) -> tuple[int | None, list[bool]]:
    """The octave shift for ``group`` that fits the most of its notes at or below the lead (not under
    ``floor``, nor over the instrument's ``ceiling``) or, under a low lead, an octave clear above it (not
    over ``high``), and which notes fit:
    among equals ``prev`` (the last phrase's) or the nearest to it, so a line does not jump octaves
    between phrases, then the fewest octaves, below first (None where the lead is silent)."""
    spans = [(n.pitch, clash.over(n)) for n in group]

    def fits(p: int, c: tuple[int, int] | None) -> bool:
        if c is None:
            return True
        return (floor <= p <= min(c[0], ceiling)) or (c[1] < LOW_LEAD and c[1] + 12 <= p <= high)

    if all(c is None for _, c in spans):
        return None, [True] * len(spans)  # the lead is silent here: as written
    order = sorted(range(-36, 37, 12), key=lambda s: (abs(s - prev), abs(s), s > 0))
    best = max(order, key=lambda s: sum(fits(p + s, c) for p, c in spans))  # max keeps the first of equals
    return best, [fits(p + best, c) for p, c in spans]
