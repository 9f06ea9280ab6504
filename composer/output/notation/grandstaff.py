"""Keyboards and harp on one grand staff: the parts a style gives one such instrument become one part.

``piano_solo`` plays its melody, left-hand arpeggios and bass on three piano parts, and the score
wrote three piano parts, each on a staff of its own, where a pianist reads one part on two staves
joined by a brace. Parts of one keyboard or harp program are written as one part of two staves
(``<staves>2</staves>``, ``<part-symbol>brace</part-symbol>``): each role goes on the staff its
register belongs to, so a line stays on one staff (an arpeggio does not cross between the hands
note by note): the highest role and any other lying above middle C on the upper (right-hand) staff,
the rest on the lower.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from composer.music.arranger import Part

#: General MIDI programs written on a grand staff: pianos, harpsichord, clavinet, celesta, organs, harp.
GRAND = frozenset({*range(0, 9), *range(16, 21), 46})
#: Middle C: a role whose median pitch is at or above it goes on the upper staff.
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


def upper_staff(parts: Sequence[Part]) -> list[bool]:
    """Whether each of one instrument's ``parts`` goes on its upper staff: the highest role (by median
    pitch) does, the lowest does not, and any other does when its median is at or above middle C."""
    medians = [float(np.median([n.pitch for n in p.notes])) if p.notes else 0.0 for p in parts]
    top, bottom = int(np.argmax(medians)), int(np.argmin(medians))
    return [k == top or (k != bottom and m >= MIDDLE_C) for k, m in enumerate(medians)]
