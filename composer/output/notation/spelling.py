"""Pitch spelling for the score: each MIDI pitch gets a letter and an alteration a player expects.

A key signature alone does not decide the spelling of a note outside it: "sharps in sharp keys,
flats in flat keys" spelled D minor's leading tone Db (next to a D in the same chord, written
Db-D-E-G-A) and C major's flat seventh A#. Here a chord tone is spelled as an interval above the
chord's root (the third of A major is C#, of E major G#, the fifth of B diminished F, in any key)
and the root, like every other note, as a degree of the key's tonic: 1 b2 2 b3 3 4 #4 5 b6 6 b7 7,
the usual chromatic degrees. A spelling that would need a double sharp or flat takes its enharmonic
neighbour (G, not F##, for the #4 of C# minor).
"""

from __future__ import annotations

from collections.abc import Sequence

#: The seven letters, and the pitch class of each natural.
LETTERS = "CDEFGAB"
NATURAL = (0, 2, 4, 5, 7, 9, 11)
#: Pitch class -> letter as a natural or, between two naturals, a sharp (C C# D D# E F F# ...).
PLAIN_LETTER = (0, 0, 1, 1, 2, 3, 3, 4, 4, 5, 5, 6)
#: Semitones above a reference -> (letter steps above its letter): 1 b2 2 b3 3 4 #4 5 b6 6 b7 7.
_STEPS = (0, 1, 1, 2, 2, 3, 3, 4, 5, 5, 6, 6)
#: Semitones above a chord's root -> letter steps: chords stack thirds (:mod:`composer.music.chords`), so
#: 6 and 8 are a diminished and an augmented fifth (B-D-F, C-E-G#), 9 the sixth (or a dim7's seventh).
_CHORD_STEPS = (0, 1, 1, 2, 2, 3, 4, 4, 4, 5, 6, 6)
#: The other spelling of a chromatic degree, for when the first needs a double accidental.
_OTHER_STEPS = {1: 0, 3: 1, 6: 4, 8: 4, 10: 5}


def tonic_letter(fifths: int, mode: str) -> int:
    """Index in ``CDEFGAB`` of the tonic of the key with ``fifths`` sharps (flats < 0) in ``mode``:
    each sharp moves the major tonic a fifth (four letters) up; the minor tonic is a sixth above it."""
    return (4 * fifths + (5 if mode == "minor" else 0)) % 7


def alteration(pc: int, letter: int) -> int:
    """Semitones from ``letter``'s natural to pitch class ``pc``, in -6..5."""
    return (pc - NATURAL[letter] + 6) % 12 - 6


def spell_above(pc: int, ref_pc: int, ref_letter: int, *, chord: bool = False) -> tuple[int, int]:
    """``(letter, alter)`` of pitch class ``pc`` as a degree above the reference pitch class ``ref_pc``
    written with letter ``ref_letter`` (a chord's root when ``chord``); never a double accidental."""
    interval = (pc - ref_pc) % 12
    for steps in ((_CHORD_STEPS if chord else _STEPS)[interval], _OTHER_STEPS.get(interval)):
        if steps is not None and abs(alteration(pc, letter := (ref_letter + steps) % 7)) <= 1:
            return letter, alteration(pc, letter)
    letter = PLAIN_LETTER[pc % 12]  # a reference itself far off: plain (F, not the E# a first fit gave)
    return letter, alteration(pc, letter)


def spell(pc: int, tonic: int, letter: int, chord: tuple[int, Sequence[int]] | None = None) -> tuple[int, int]:
    """``(letter, alter)`` of pitch class ``pc`` in the key whose tonic pitch class is ``tonic`` written with
    ``letter``; ``chord`` = ``(root, pitch classes)`` of the harmony it sounds in, whose tones are spelled
    as intervals above the root."""
    if chord is not None and pc % 12 in {p % 12 for p in chord[1]}:
        root_letter, _ = spell_above(chord[0], tonic, letter)
        return spell_above(pc, chord[0], root_letter, chord=True)
    return spell_above(pc, tonic, letter)


def pitch_xml(midi: int, letter: int, alter: int) -> str:
    """``<pitch>`` of ``midi`` written as ``letter`` + ``alter`` (B#3 is MIDI 60, Cb4 is MIDI 59)."""
    step = f"<step>{LETTERS[letter]}</step>" + (f"<alter>{alter}</alter>" if alter else "")
    return f"<pitch>{step}<octave>{(midi - alter) // 12 - 1}</octave></pitch>"
