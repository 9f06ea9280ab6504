"""The percussion part of the score: General MIDI drum keys as unpitched notes on a five-line staff.

The score left the drums out, so the percussionist of a cinematic, raga, maqam, West African or
Celtic cue had no part. Each GM key is written where drum-set notation puts it (kick in the bottom
space, snare on the third space, toms between, cymbals and hi-hat as crosses above the staff; hand
drums on free lines of their own), names its ``<score-instrument>`` so playback takes MIDI channel
10, and lasts until the next hit or the end of its beat (a drum does not sustain: no ties, no rests
between hits closer than a beat).
"""

from __future__ import annotations

import numpy as np
import pretty_midi

#: GM key -> (display step, display octave, notehead ("" = normal)).
POSITIONS: dict[int, tuple[str, int, str]] = {
    35: ("F", 4, ""), 36: ("F", 4, ""), 37: ("C", 5, "x"), 38: ("C", 5, ""), 40: ("C", 5, ""),
    41: ("G", 4, ""), 43: ("A", 4, ""), 45: ("B", 4, ""), 47: ("D", 5, ""), 48: ("E", 5, ""), 50: ("F", 5, ""),
    42: ("G", 5, "x"), 44: ("D", 4, "x"), 46: ("G", 5, "circle-x"), 49: ("A", 5, "x"), 57: ("A", 5, "x"),
    51: ("F", 5, "x"), 59: ("F", 5, "x"), 54: ("B", 5, "x"), 56: ("E", 5, "triangle"), 60: ("E", 5, ""),
    61: ("D", 5, ""), 62: ("B", 4, "x"), 63: ("C", 5, ""), 64: ("A", 4, ""), 70: ("F", 5, "x"),
}
#: GM key -> MusicXML 4.0 sound (sounds.xml), so notation software plays each drum with its own sound.
SOUNDS: dict[int, str] = {
    **dict.fromkeys((35, 36), "drum.bass-drum"), **dict.fromkeys((37, 38), "drum.snare-drum"), 39: "effect.hand-clap",
    40: "drum.snare-drum.electric", **dict.fromkeys((41, 43, 45, 47, 48, 50), "drum.tom-tom"),
    **dict.fromkeys((42, 44, 46), "metal.hi-hat"), **dict.fromkeys((49, 57), "metal.cymbal.crash"),
    **dict.fromkeys((51, 53, 59), "metal.cymbal.ride"), 52: "metal.cymbal.chinese", 54: "drum.tambourine",
    55: "metal.cymbal.splash", 56: "metal.bells.cowbell", 58: "rattle.vibraslap",
    **dict.fromkeys((60, 61), "drum.bongo"),
    **dict.fromkeys((62, 63, 64), "drum.conga"), **dict.fromkeys((65, 66), "drum.timbale"),
    **dict.fromkeys((67, 68), "metal.bells.agogo"), 69: "rattle.cabasa", 70: "rattle.maraca",
    **dict.fromkeys((71, 72), "effect.whistle"), **dict.fromkeys((73, 74), "wood.guiro"), 75: "wood.claves",
    **dict.fromkeys((76, 77), "wood.wood-block"), **dict.fromkeys((78, 79), "drum.cuica"),
    **dict.fromkeys((80, 81), "metal.triangle"),
}
#: Where a key without a place of its own is written.
OTHER = ("C", 5, "")
CLEF = "<clef><sign>percussion</sign></clef>"


def hit_ends(starts: np.ndarray, divisions: int) -> np.ndarray:
    """Each hit (ticks, ``divisions`` a beat) lasts until the next onset of the part or the end of its beat."""
    onsets = np.unique(starts)
    nxt = onsets[np.minimum(np.searchsorted(onsets, starts, side="right"), len(onsets) - 1)]
    nxt = np.where(nxt > starts, nxt, np.iinfo(np.int64).max)
    return np.minimum(nxt, (starts // divisions + 1) * divisions).astype(int)


def unpitched_xml(key: int, part_id: str) -> tuple[str, str, str]:
    """``(<unpitched>, <instrument>, <notehead>)`` of GM drum ``key`` in the part ``part_id``."""
    step, octave, head = POSITIONS.get(key, OTHER)
    return (f"<unpitched><display-step>{step}</display-step><display-octave>{octave}</display-octave></unpitched>",
            f'<instrument id="{part_id}-I{key}"/>', f"<notehead>{head}</notehead>" if head else "")


def instruments_xml(keys: list[int], part_id: str) -> str:
    """The ``<score-instrument>`` (with its ``<instrument-sound>`` where GM names the drum) and
    ``<midi-instrument>`` (channel 10) of each drum key the part plays."""
    names = "".join(f'<score-instrument id="{part_id}-I{k}"><instrument-name>'
                    f"{pretty_midi.note_number_to_drum_name(k) or f'Drum {k}'}</instrument-name>"
                    + (f"<instrument-sound>{SOUNDS[k]}</instrument-sound>" if k in SOUNDS else "")
                    + "</score-instrument>" for k in keys)
    midi = "".join(f'<midi-instrument id="{part_id}-I{k}"><midi-channel>10</midi-channel>'
                   f"<midi-unpitched>{k + 1}</midi-unpitched></midi-instrument>" for k in keys)
    return names + midi
