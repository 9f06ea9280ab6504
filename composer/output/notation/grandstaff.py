"""Keyboards and harp on one grand staff: the parts a style gives one such instrument become one part.

``piano_solo`` plays its melody, left-hand arpeggios and bass on three piano parts, and the score
wrote three piano parts, each on a staff of its own, where a pianist reads one part on two staves
joined by a brace. Parts of one keyboard or harp program are written as one part of two staves
(``<staves>2</staves>``, ``<part-symbol>brace</part-symbol>``): each role goes on the staff its
register belongs to, and a line does not cross between the hands note by note: the highest role (the
melody) on the upper (right-hand) staff, the lowest (the bass) on the lower, any other bar by bar where
its register lies (piano_solo's arpeggios climb above middle C for a few bars of a hopeful turn).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from composer.music.arranger import Part
from composer.output.notation.clefs import ledger_lines

#: General MIDI programs written on a grand staff: pianos, harpsichord, clavinet, celesta, organs, harp.
GRAND = frozenset({*range(0, 9), *range(16, 21), 46})
#: Middle C: a bar whose notes read as well in either clef goes on the upper staff when its median is this or above.
MIDDLE_C = 60


def instruments(parts: Sequence[Part]) -> list[list[Part]]:
    """The pitched ``parts`` grouped into the instruments the score writes, in order of first appearance:
    the parts of one :data:`GRAND` program together, any other part alone."""
    out: list[list[Part]] = []
    where: dict[int, int] = {}
    for part in parts:
        if part.program in GRAND and part.program in where:
            out[where[part.program]].append(part)
            continue
        if part.program in GRAND:
            where[part.program] = len(out)
        out.append([part])
    return out


def _upper(pitches: list[int]) -> bool:
    """Whether ``pitches`` read with fewer ledger lines in the treble clef than in the bass (a tie: whether
    their median is at or above middle C)."""
    treble, bass = (sum(ledger_lines(p, c) for p in pitches) for c in ("treble", "bass"))
    return treble < bass or (treble == bass and float(np.median(pitches)) >= MIDDLE_C)


def upper_staff(parts: Sequence[Part], bars: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Whether each note of one instrument's ``parts`` goes on its upper staff, given the bar each note
    starts in (``bars``, one array per part): all of the highest role (by median pitch) does, none of the
    lowest, and another role's notes bar by bar, on the staff where they need fewer ledger lines (an
    arpeggio that climbs for a few bars moves to the right hand and back, a bar at a time)."""
    medians = [float(np.median([n.pitch for n in p.notes])) if p.notes else 0.0 for p in parts]
    top, bottom = int(np.argmax(medians)), int(np.argmin(medians))
    out = []
    for k, (part, bar) in enumerate(zip(parts, bars, strict=True)):
        pitches, bar = np.array([n.pitch for n in part.notes], float), np.asarray(bar, int)
        if k in (top, bottom):
            out.append(np.full(len(pitches), k == top))
            continue
        high = {int(b): _upper(pitches[bar == b].astype(int).tolist()) for b in np.unique(bar)}
        out.append(np.array([high[int(b)] for b in bar], bool))
    return out
