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


def under(notes: Sequence[Note], lead: Sequence[Note], program: int) -> tuple[Note, ...]:
    """``notes`` (an accompanying part) kept at or below ``lead``, so the melody stays the top voice.

    A note above the lowest lead note that sounds with it moves down by the fewest octaves that put it
    at or below that note; one that ``program`` cannot play there is left out (the part thins out
    rather than covering the lead). Notes the lead does not sound over are left as they are.
    """
    if not lead:
        return tuple(notes)
    low = playable_range(program)[0]
    order = sorted(lead, key=lambda n: n.start)
    starts = np.array([n.start for n in order])
    ends = np.array([n.end for n in order])
    pitches = np.array([n.pitch for n in order])
    out = []
    for n in notes:
        sel = slice(0, int(np.searchsorted(starts, n.end, side="left")))
        over = ends[sel] > n.start
        ceiling = int(pitches[sel][over].min()) if over.any() else n.pitch
        pitch = n.pitch - 12 * -(-(n.pitch - ceiling) // 12) if n.pitch > ceiling else n.pitch
        if pitch >= low:
            out.append(Note(n.start, n.end, pitch, n.velocity))
    return tuple(out)
