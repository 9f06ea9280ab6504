"""Dynamic marks for a part, read from its notes' velocities (which follow the arc's arousal).

The score had none: a player saw the notes of a cue that swells from calm to excited and back with
no p, no f. Each bar with onsets gets the level nearest its median velocity (the velocities
notation programs play for pp .. ff), and a mark is written where the level changes and holds: for
two bars with notes or more, or by two levels or more at once, so a one-bar wobble of the arranger's
velocities does not print a mark per bar.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

#: Marks and the MIDI velocity each stands for (MuseScore's defaults); MusicXML's ``<sound dynamics>``
#: is a percentage of forte at 90.
LEVELS: tuple[tuple[str, int], ...] = (("pp", 33), ("p", 49), ("mp", 64), ("mf", 80), ("f", 96), ("ff", 112))


def level(velocity: float) -> int:
    """Index in :data:`LEVELS` of the mark nearest ``velocity``."""
    return int(np.argmin([abs(velocity - v) for _, v in LEVELS]))


def direction_xml(index: int) -> str:
    """The ``<direction>`` of ``LEVELS[index]``, with an ``{offset}`` slot as the tempo marks have."""
    mark, velocity = LEVELS[index]
    return (f'<direction placement="below"><direction-type><dynamics><{mark}/></dynamics></direction-type>'
            f'{{offset}}<sound dynamics="{100 * velocity / 90:.2f}"/></direction>')


def dynamic_marks(onsets: Sequence[int], velocities: Sequence[int], bar: int) -> list[tuple[int, str]]:
    """``(tick, <direction>)`` marks for notes starting at ``onsets`` (ticks, ``bar`` ticks a bar) with
    ``velocities``, each at the first onset of the bar whose level it marks."""
    by_bar: dict[int, list[int]] = {}
    first: dict[int, int] = {}
    for tick, vel in sorted(zip((int(t) for t in onsets), velocities, strict=True)):
        by_bar.setdefault(tick // bar, []).append(int(vel))
        first.setdefault(tick // bar, tick)
    bars = sorted(by_bar)
    levels = [level(float(np.median(by_bar[b]))) for b in bars]
    out: list[tuple[int, str]] = []
    current = None
    for k, (b, lv) in enumerate(zip(bars, levels, strict=True)):
        holds = k + 1 < len(bars) and levels[k + 1] == lv
        if lv != current and (current is None or holds or abs(lv - current) >= 2):
            current = lv
            out.append((first[b], direction_xml(lv)))
    return out
