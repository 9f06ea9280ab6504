"""Key signatures for the score: one spelling of the tonic for the whole piece.

Each mode was given its own smallest signature, so a raga on C# read Db major (5 flats) in its
bright stretches and C# minor (4 sharps) in its dark ones: the tonic changed letter at each turn of
mode and every note with it. Here the tonic's letter is chosen once, from the modes the piece
uses: the spelling whose signatures all fit in seven sharps or flats, with the fewest accidentals
in all (C# major and minor; Db major alone; G# minor alone), ties going to the sharps or flats the
planner names the tonic with (F# over Gb).
"""

from __future__ import annotations

from collections.abc import Iterable

from composer.music.chords import PITCH_NAMES
from composer.output.notation.spelling import LETTERS, alteration

#: Sharps (flats < 0) of the major and the minor key on each natural letter.
_MAJOR = {"C": 0, "D": 2, "E": 4, "F": -1, "G": 1, "A": 3, "B": 5}
_MINOR = {"C": -3, "D": -1, "E": 1, "F": -4, "G": -2, "A": 0, "B": 2}


def spellings(tonic: int) -> list[tuple[str, int]]:
    """``(letter, alter)`` of each way to write pitch class ``tonic`` with at most one sharp or flat, the
    planner's own name (:data:`~composer.music.chords.PITCH_NAMES`) first."""
    out = [(letter, alteration(tonic, k)) for k, letter in enumerate(LETTERS)]
    out = [s for s in out if abs(s[1]) <= 1]
    own = PITCH_NAMES[tonic % 12][0]
    return sorted(out, key=lambda s: s[0] != own)


def fifths(letter: str, alter: int, mode: str) -> int:
    """Sharps (flats < 0) of the ``mode`` key on ``letter`` raised (lowered) by ``alter``."""
    return (_MINOR if mode == "minor" else _MAJOR)[letter] + 7 * alter


def signatures(tonic: int, modes: Iterable[str]) -> dict[str, int]:
    """Sharps (flats < 0) of the major and minor keys on ``tonic``, both on the one letter that writes the
    ``modes`` a piece uses with the fewest accidentals in all and none beyond seven."""
    used = sorted(set(modes)) or ["major"]

    def cost(spelling: tuple[str, int]) -> tuple[bool, int]:
        sizes = [abs(fifths(*spelling, m)) for m in used]
        return max(sizes) > 7, sum(sizes)

    letter, alter = min(spellings(tonic), key=cost)  # min is stable: ties keep the planner's name
    return {m: fifths(letter, alter, m) for m in ("major", "minor")}
