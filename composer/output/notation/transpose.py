"""Transposing instruments: the score is at concert pitch and says so, with each part's transposition.

The score wrote a French horn (the cinematic lead), clarinets, trumpets, saxophones, guitars and
basses at sounding pitch without a word: a notation program could not tell a concert score from a
horn part written in C, and an extracted part was not transposed for its player. MusicXML 4.0 has
the means: ``<concert-score/>`` in ``<defaults>`` marks the score as at concert pitch, and a part's
``<for-part><part-transpose>`` gives the interval from written to sounding pitch, so the software
writes the player's part (Horn in F a fifth up, contrabass an octave up) from the same file.
"""

from __future__ import annotations

#: GM program -> (diatonic steps, semitones, octaves) from written to sounding pitch.
TRANSPOSITIONS: dict[int, tuple[int, int, int]] = {
    8: (0, 0, 1),  # celesta: sounds an octave up
    9: (0, 0, 2),  # glockenspiel: two octaves up
    13: (0, 0, 1),  # xylophone
    **{p: (0, 0, -1) for p in range(24, 32)},  # guitars: an octave down
    **{p: (0, 0, -1) for p in range(32, 38)},  # acoustic, electric, fretless and slap basses (not synth bass)
    43: (0, 0, -1),  # contrabass
    56: (-1, -2, 0),  # trumpet in Bb
    59: (-1, -2, 0),  # muted trumpet in Bb
    60: (-4, -7, 0),  # horn in F
    64: (-1, -2, 0),  # soprano saxophone in Bb
    65: (-5, -9, 0),  # alto saxophone in Eb
    66: (-1, -2, -1),  # tenor saxophone in Bb, an octave lower
    67: (-5, -9, -1),  # baritone saxophone in Eb, an octave lower
    69: (-4, -7, 0),  # English horn in F
    71: (-1, -2, 0),  # clarinet in Bb
    72: (0, 0, 1),  # piccolo: an octave up
}


def for_part_xml(program: int) -> str:
    """The ``<for-part>`` of GM ``program``'s transposed part, or "" for an instrument written as it sounds."""
    if program not in TRANSPOSITIONS:
        return ""
    diatonic, chromatic, octaves = TRANSPOSITIONS[program]
    octave = f"<octave-change>{octaves}</octave-change>" if octaves else ""
    return (f"<for-part><part-transpose><diatonic>{diatonic}</diatonic><chromatic>{chromatic}</chromatic>"
            f"{octave}</part-transpose></for-part>")


def defaults_xml(programs: list[int]) -> str:
    """``<defaults><concert-score/></defaults>`` when any of ``programs`` transposes, else ""."""
    return "<defaults><concert-score/></defaults>" if any(p in TRANSPOSITIONS for p in programs) else ""
