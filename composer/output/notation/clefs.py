"""Clefs for a part: the ones its instrument's players read, changed at barlines where the line moves.

One clef per part from the median pitch wrote a fiddle and a viola in bass clef (a violinist does
not read it; the viola's clef is the alto), a French horn in treble or bass by the seed, and a harp
or string pad whose line climbs to C7 in bass clef, ten ledger lines up. Here each instrument has
the clefs its players read (:func:`readable_clefs`, written at concert pitch), and the clef of each
bar is chosen for the whole part at once (a Viterbi pass): the fewest ledger lines, a change of clef
costing as much as :data:`CHANGE_COST` ledger lines, and an instrument's usual clef preferred
over its others (a cello leaves the bass clef only for a high passage).
"""

from __future__ import annotations

from collections.abc import Sequence

from composer.output.notation.spelling import PLAIN_LETTER

#: MusicXML sign, line, and the diatonic steps (C4 = 28) of the bottom and top staff lines.
CLEFS: dict[str, tuple[str, int, int, int]] = {
    "treble": ("G", 2, 30, 38),  # E4 .. F5
    "bass": ("F", 4, 18, 26),  # G2 .. A3
    "alto": ("C", 3, 24, 32),  # F3 .. G4
    "tenor": ("C", 4, 22, 30),  # D3 .. E4
}
#: What a change of clef costs, in ledger lines saved: a clef changes for a passage, not for a note.
CHANGE_COST = 12.0
#: What each note in a clef other than the instrument's first costs (a cellist reads tenor clef when
#: it saves ledger lines, not when it merely ties).
SECOND_CLEF_COST = 0.5
_TREBLE = frozenset({9, 10, 13, 40, 44, 56, 59, 64, 65, 68, 69, 71, 104, 105, 108, 109, 110, 111,
                     *range(72, 80)})
_BASS = frozenset({*range(32, 40), 43, 58, 67})
_OWN = {41: ("alto", "treble"), 42: ("bass", "tenor", "treble"), 57: ("bass", "tenor"), 60: ("treble", "bass"),
        70: ("bass", "tenor")}


def readable_clefs(program: int) -> tuple[str, ...]:
    """The clefs a player of General MIDI ``program`` reads, the usual one first: treble for violins,
    flutes, oboes, clarinets, trumpets, saxophones above the tenor, glockenspiel and xylophone, sitar,
    fiddle; bass for basses, tuba and baritone sax; the viola's alto; cello, trombone and bassoon in
    bass and tenor (the cello in treble too); anything else (keyboards, harp, guitars, pads) treble or bass."""
    if program in _OWN:
        return _OWN[program]
    if program in _TREBLE:
        return ("treble",)
    if program in _BASS:
        return ("bass",)
    return ("treble", "bass")


def ledger_lines(midi: int, clef: str) -> int:
    """Ledger lines ``midi`` needs in ``clef`` (as a natural or sharp: a flat may sit one step higher)."""
    step = (midi // 12 - 1) * 7 + PLAIN_LETTER[midi % 12]
    _, _, bottom, top = CLEFS[clef]
    return max(0, (step - top) // 2, (bottom - step) // 2)


def choose_clefs(bars: Sequence[Sequence[int]], program: int, *, first: str | None = None) -> list[str]:
    """The clef of each bar, given the MIDI pitches written in each (a bar without notes costs nothing
    in any clef, so a change waits for the music that needs it); ``first`` is the usual clef where the
    player reads several (the bass for a grand staff's lower staff)."""
    options = readable_clefs(program)
    if first in options:
        options = (first, *(c for c in options if c != first))
    if len(options) == 1 or not bars:
        return [options[0]] * len(bars)

    def cost(pitches: Sequence[int], k: int) -> float:
        return sum(ledger_lines(p, options[k]) for p in pitches) + (SECOND_CLEF_COST * len(pitches) if k else 0.0)

    total = [cost(bars[0], k) for k in range(len(options))]
    back: list[list[int]] = []
    for pitches in bars[1:]:
        came = [min(range(len(options)), key=lambda j, k=k: total[j] + (CHANGE_COST if j != k else 0.0))
                for k in range(len(options))]
        total = [total[j] + (CHANGE_COST if j != k else 0.0) + cost(pitches, k) for k, j in enumerate(came)]
        back.append(came)
    k = min(range(len(options)), key=lambda j: total[j])
    path = [k]
    for came in reversed(back):
        k = came[k]
        path.append(k)
    return [options[k] for k in reversed(path)]


def clef_xml(clef: str, staff: int = 0) -> str:
    """The ``<clef>`` element of ``clef``, for ``staff`` of a grand staff when one is given."""
    sign, line, _, _ = CLEFS[clef]
    number = f' number="{staff}"' if staff else ""
    return f"<clef{number}><sign>{sign}</sign><line>{line}</line></clef>"
