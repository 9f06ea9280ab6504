"""MusicXML written straight from the composition (no MIDI round trip, no music21).

Every beat of the plan is a quarter note in 4/4, so seconds go to beats through the
tempo map. Each note's start and end are quantised per beat to the nearer of two grids,
sixteenths or eighth triplets, and held as integer ticks (``DIVISIONS`` per quarter), so
every measure sums to exactly four quarters. Per staff the timeline is cut at every
onset/offset, barline and triplet-beat boundary; each slice is a note, a chord or a rest,
spelled with standard note types and tied where one note spans slices. One voice per
staff (overlapping notes become chords), no beams: readers beam by meter themselves. Pitch spelling,
key signatures, clefs, dynamic marks, the grand staff and the part names have modules of their own in
:mod:`composer.output.notation`.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import NamedTuple
from xml.sax.saxutils import escape, quoteattr

import numpy as np

from composer.music.arranger import Part
from composer.music.harmony import HarmonyPlan, key_sections
from composer.output.notation.clefs import choose_clefs, clef_xml
from composer.output.notation.dynamics import dynamic_marks
from composer.output.notation.grandstaff import instruments, upper_staff
from composer.output.notation.instruments import INSTRUMENTS, part_names
from composer.output.notation.keys import signatures
from composer.output.notation.percussion import CLEF, hit_ends, instruments_xml, unpitched_xml
from composer.output.notation.spelling import pitch_xml, spell, tonic_letter
from composer.output.notation.transpose import defaults_xml, for_part_xml

DIVISIONS = 12  # ticks per quarter: holds sixteenths (3) and eighth triplets (4)
BAR = 4 * DIVISIONS
DOCTYPE = ('<!DOCTYPE score-partwise PUBLIC "-//Recordare//DTD MusicXML 4.0 Partwise//EN" '
           '"http://www.musicxml.org/dtds/partwise.dtd">')
SOFTWARE = "soundtrack composer"
#: Plain (ticks -> type, dots) values, longest first; triplet ticks -> type.
_VALUES = ((48, "whole", 0), (36, "half", 1), (24, "half", 0), (18, "quarter", 1),
           (12, "quarter", 0), (9, "eighth", 1), (6, "eighth", 0), (3, "16th", 0))
_TRIPLETS = {4: "eighth", 8: "quarter"}
_CHANNELS = tuple(c for c in range(1, 17) if c != 10)
#: The least change of tempo (bpm, rounded) that prints a new metronome mark (:func:`_tempo_marks`).
SHOWN_CHANGE = 3
HIDDEN = 'print-object="no"'



class QNote(NamedTuple):
    """A quantised note in ticks from the start of the score."""

    start: int
    end: int
    pitch: int


class Piece(NamedTuple):
    """One written value: ``ticks`` long, ``kind`` (note type), ``dots``, under a 3:2 triplet or not."""

    ticks: int
    kind: str
    dots: int
    triplet: bool


def to_beats(times: Sequence[float] | np.ndarray, tempo_map: Sequence[tuple[float, float]]) -> np.ndarray:
    """Seconds to beats: the tempo map is piecewise constant, so beats grow linearly within a segment."""
    t = np.asarray(times, float)
    starts = np.array([s for s, _ in tempo_map], float)
    bpm = np.array([b for _, b in tempo_map], float)
    at = np.concatenate([[0.0], np.cumsum(np.diff(starts) * bpm[:-1] / 60.0)])
    i = np.clip(np.searchsorted(starts, t, side="right") - 1, 0, len(starts) - 1)
    return at[i] + (t - starts[i]) * bpm[i] / 60.0


def quantise(starts: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray, frozenset[int]]:
    """Starts and ends (beats) to ticks, each beat on the grid (sixteenths or triplets) that fits it
    better; returns the ticks and the triplet beats. Zero-length notes get one grid step."""
    values = np.maximum(np.concatenate([starts, ends]).astype(float), 0.0)
    if not values.size:
        return np.zeros(0, int), np.zeros(0, int), frozenset()
    beat = np.floor(values).astype(int)
    err16 = np.abs(values * 4 - np.round(values * 4)) / 4
    err3 = np.abs(values * 3 - np.round(values * 3)) / 3
    n = int(beat.max()) + 2
    tri = np.bincount(beat, err3, n) < np.bincount(beat, err16, n) - 1e-9  # ties -> sixteenths
    ticks = np.where(tri[beat], np.round(values * 3) * 4, np.round(values * 4) * 3).astype(int)
    s, e = ticks[: len(starts)], ticks[len(starts):]
    step = np.where(tri[np.minimum(s // DIVISIONS, n - 1)], 4, 3)
    return s, np.maximum(e, s + step), frozenset(int(b) for b in np.flatnonzero(tri))


def _held_to_the_beat(starts: np.ndarray, ends: np.ndarray, piece_end: float) -> np.ndarray:
    """Ends (beats) of the last notes (nothing starts after them) that fall within the piece's last, partial
    beat nearer a triplet than a sixteenth, moved to that beat's end: the picture ends a third or so of a
    beat in, and the last notes of 13 scores in 42 ended on a lone triplet and triplet rest."""
    last = np.ceil(piece_end - 1e-6)
    if not starts.size:
        return ends
    triplet = np.abs(ends * 3 - np.round(ends * 3)) / 3 < np.abs(ends * 4 - np.round(ends * 4)) / 4
    held = (ends > last - 1 + 1e-6) & (ends < last) & (ends > starts.max() + 1e-6) & triplet
    return np.where(held, last, ends)


def _no_unisons(notes: list[QNote]) -> list[QNote]:
    """Same-pitch overlaps cannot be written in one voice: the earlier note ends where the later starts."""
    out: list[QNote] = []
    last: dict[int, int] = {}  # pitch -> index in out
    for n in sorted(notes, key=lambda n: (n.start, -n.end)):
        i = last.get(n.pitch)
        if i is not None and out[i].end > n.start:
            if out[i].start == n.start:  # same onset: the longer (earlier in order) note stays
                continue
            out[i] = out[i]._replace(end=n.start)
        last[n.pitch] = len(out)
        out.append(n)
    return sorted(out)


def _slices(notes: list[QNote], triplets: frozenset[int], total: int) -> list[tuple[int, int, list[QNote]]]:
    """The timeline cut at every onset, offset, barline and triplet-beat edge, with the notes sounding in each."""
    cuts = set(range(0, total + 1, BAR)) | {n.start for n in notes} | {n.end for n in notes}
    cuts |= {b * DIVISIONS + k for b in triplets for k in (0, DIVISIONS)}
    points = sorted(c for c in cuts if 0 <= c <= total)
    out, active, i = [], [], 0
    for a, b in itertools.pairwise(points):
        active = [n for n in active if n.end > a]
        while i < len(notes) and notes[i].start <= a:
            active.append(notes[i])
            i += 1
        out.append((a, b, sorted(active, key=lambda n: n.pitch)))
    return out


def pieces(start: int, end: int, triplet: bool) -> list[Piece]:
    """Standard values for ``[start, end)`` ticks: triplet slices are one 3:2 value; others are
    greedy, longest value first, values under a quarter never crossing a beat, halves or longer
    starting on beat 1 or 3, and nothing that starts off beats 1 and 3 crossing the middle of the
    bar, so the beats and the middle of the bar stay visible: beat 2 to the barline is a quarter
    and a half, not a dotted quarter, an eighth and a quarter. The one exception is the plain
    syncopation, a half from beat 2 to beat 4."""
    if triplet and end - start < DIVISIONS:
        return [Piece(end - start, _TRIPLETS[end - start], 0, True)]
    out, pos, middle = [], start, BAR // 2
    while pos < end:
        room = end - pos if pos % DIVISIONS == 0 else min(end - pos, DIVISIONS - pos % DIVISIONS)
        syncopation = pos % BAR == DIVISIONS and end - pos == middle
        if pos % middle and not syncopation:
            room = min(room, middle - pos % middle)
        ticks, kind, dots = next(v for v in _VALUES if v[0] <= room and (v[0] < middle or pos % middle == 0
                                                                          or syncopation))
        out.append(Piece(ticks, kind, dots, False))
        pos += ticks
    return out


#: What a note is: ``(<pitch>|<unpitched>|<rest/>, <instrument> or "", <notehead> or "")``.
Head = tuple[str, str, str]
REST: Head = ("<rest/>", "", "")


def _note(piece: Piece, head: Head, ties: tuple[bool, bool], *, chord: bool = False, tuplet: str = "",
          staff: int = 0) -> str:
    """One ``<note>``, children in schema order (chord, pitch|unpitched|rest, duration, tie, instrument,
    voice, type, dot, time-modification, notehead, staff, notations) so strict readers accept it; on
    ``staff`` 2 of a grand staff in voice 5 (the lower staff's first voice in notation programs)."""
    stop, start = ties
    pitch, instrument, notehead = head
    xml = ["<note>", "<chord/>" if chord else "", pitch, f"<duration>{piece.ticks}</duration>",
           '<tie type="stop"/>' if stop else "", '<tie type="start"/>' if start else "", instrument,
           f"<voice>{_voice(staff)}</voice><type>{piece.kind}</type>", "<dot/>" * piece.dots]
    if piece.triplet:
        xml.append("<time-modification><actual-notes>3</actual-notes><normal-notes>2</normal-notes></time-modification>")
    xml.append(notehead + _staff(staff))
    marks = ('<tied type="stop"/>' if stop else "") + ('<tied type="start"/>' if start else "")
    marks += f'<tuplet type="{tuplet}" bracket="yes"/>' if tuplet and not chord else ""
    if marks:
        xml.append(f"<notations>{marks}</notations>")
    return "".join(xml) + "</note>"


def _voice(staff: int) -> int:
    return 5 if staff == 2 else 1


def _staff(staff: int) -> str:
    """``<staff>`` of a note or direction on a grand staff (``staff`` 1 or 2); "" on a part of one staff."""
    return f"<staff>{staff}</staff>" if staff else ""


def _spellings(notes: list[QNote], plan: HarmonyPlan, keys: list[tuple[int, str]]) -> dict[QNote, Head]:
    """Each note's ``<pitch>``, spelled once at its onset (so its tied pieces agree) in the key of its
    bar (``keys``: fifths and mode per bar) and the chord sounding there (:mod:`composer.output.notation.spelling`)."""
    starts = np.round(to_beats([c.start for c in plan.chords], plan.tempo_map) * DIVISIONS).astype(int)
    out = {}
    for n in notes:
        fifths, mode = keys[min(n.start // BAR, len(keys) - 1)]
        i = int(np.searchsorted(starts, n.start, side="right")) - 1
        chord = (plan.chords[i].root, plan.chords[i].pitches) if i >= 0 else None
        letter, alter = spell(n.pitch % 12, plan.tonic, tonic_letter(fifths, mode), chord)
        out[n] = (pitch_xml(n.pitch, letter, alter), "", "")
    return out


def _slice_xml(a: int, b: int, sounding: list[QNote], triplets: frozenset[int], names: dict[QNote, Head],
               staff: int = 0) -> list[str]:
    """The notes, chords or rests that write one slice, tied across its pieces and to the slices around it."""
    if not sounding and b - a == BAR:
        return [f'<note><rest measure="yes"/><duration>{BAR}</duration><voice>{_voice(staff)}</voice>'
                f"{_staff(staff)}</note>"]
    triplet = a // DIVISIONS in triplets
    values = pieces(a, b, triplet)
    out = []
    for k, piece in enumerate(values):
        tuplet = ("start" if a % DIVISIONS == 0 else "stop" if b % DIVISIONS == 0 else "") if piece.triplet else ""
        if not sounding:
            out.append(_note(piece, REST, (False, False), tuplet=tuplet, staff=staff))
        for j, n in enumerate(sounding):
            ties = (k > 0 or n.start < a, k < len(values) - 1 or n.end > b)
            out.append(_note(piece, names[n], ties, chord=j > 0, tuplet=tuplet, staff=staff))
    return out


def key_signature(plan: HarmonyPlan, bar: int = 0) -> tuple[int, str]:
    """Fifths and mode of the plan's key at ``bar`` (:func:`~composer.music.harmony.key_sections`), the
    tonic spelled alike in every section (:func:`composer.output.notation.keys.signatures`)."""
    sections = key_sections(plan)
    mode = next(m for first, m in reversed(sections) if first <= bar)
    return signatures(plan.tonic, (m for _, m in sections))[mode], mode


def _tempo_marks(plan: HarmonyPlan) -> dict[int, str]:
    """``<direction>`` per tick where the (rounded) tempo changes; placed at slice starts with an offset.

    Every change plays (``<sound tempo>``: the music stays on the picture's cuts), but a metronome mark
    within :data:`SHOWN_CHANGE` bpm of the last one shown is not printed: the planner drifts the tempo
    by a fraction of a bpm to land beats on cuts, and the score showed q=97, q=97, q=98, q=97 bars apart."""
    out, last, shown = {}, None, None
    ticks = np.round(to_beats([t for t, _ in plan.tempo_map], plan.tempo_map) * DIVISIONS).astype(int)
    for tick, (_, bpm) in zip(ticks, plan.tempo_map, strict=True):
        if round(bpm, 2) != last:
            last = round(bpm, 2)
            printed = shown is None or abs(round(bpm) - shown) >= SHOWN_CHANGE
            shown = round(bpm) if printed else shown
            hide = "" if printed else f" {HIDDEN}"
            out[int(tick)] = ('<direction placement="above"><direction-type>'
                              f"<metronome{hide}><beat-unit>quarter</beat-unit>"
                              f"<per-minute>{round(bpm)}</per-minute></metronome></direction-type>{{offset}}"
                              f'<sound tempo="{last:g}"/></direction>')
    return out


class Staff(NamedTuple):
    """One staff's quantised ``notes`` and the beats it writes in ``triplets``."""

    notes: list[QNote]
    triplets: frozenset[int]


class Written(NamedTuple):
    """One part as the score writes it: its ``staves`` (two for a keyboard or harp on a grand staff, the
    upper first), the GM ``program`` and ``marks``, ``(tick, <direction>)`` of its tempo and dynamic marks
    in time order, written with the first staff."""

    staves: list[Staff]
    program: int
    marks: list[tuple[int, str]]
    drum: bool = False


def _keys(plan: HarmonyPlan, sections: list[tuple[int, str]], bars: int) -> tuple[list[tuple[int, str]],
                                                                                 dict[int, str]]:
    """The key signature of each bar (sharps > 0, flats < 0; mode) and the ``<key>`` of each bar that
    starts one of ``sections`` (the plan's :func:`~composer.music.harmony.key_sections`)."""
    keys, new_key = [(0, "major")] * bars, {}
    fifths = signatures(plan.tonic, (m for _, m in sections))
    for first, mode in sections:
        if first >= bars:
            break
        keys[first:] = [(fifths[mode], mode)] * (bars - first)
        new_key[first] = f"<key><fifths>{keys[first][0]}</fifths><mode>{mode}</mode></key>"
    return keys, new_key


def _staff_bars(index: int, staff: Staff, number: int, part: Written, total: int, plan: HarmonyPlan,
                keys: list[tuple[int, str]], marks: list[tuple[int, str]]) -> tuple[list[list[str]], list[str]]:
    """The notes and ``marks`` of one staff (``number`` 1 or 2 of a grand staff, 0 alone) bar by bar, and
    the clef of each bar (:func:`choose_clefs`; a grand staff's lower staff prefers the bass clef)."""
    notes, triplets = staff
    bars: list[list[str]] = [[] for _ in range(total // BAR)]
    written: list[list[int]] = [[] for _ in bars]  # the pitches each bar writes, tied pieces included
    for n in notes:
        for bar in range(n.start // BAR, min(-(-n.end // BAR), len(bars))):
            written[bar].append(n.pitch)
    first = "bass" if number == 2 else None
    clefs = ([CLEF] * len(bars) if part.drum
             else [clef_xml(c, number) for c in choose_clefs(written, part.program, first=first)])
    names = ({n: unpitched_xml(n.pitch, f"P{index + 1}") for n in notes} if part.drum
             else _spellings(notes, plan, keys))
    marks = list(marks)
    for a, b, sounding in _slices(notes, triplets, total):
        while marks and marks[0][0] < b:
            offset = f"<offset>{marks[0][0] - a}</offset>" if marks[0][0] > a else ""
            bars[a // BAR].append(marks.pop(0)[1].format(offset=offset + _staff(number)))
        bars[a // BAR].extend(_slice_xml(a, b, sounding, triplets, names, number))
    return bars, clefs


def _part_xml(index: int, part: Written, total: int, plan: HarmonyPlan, sections: list[tuple[int, str]]) -> str:
    """One ``<part>``: attributes in the first measure, a new key at each of ``sections``, a new clef where
    :func:`choose_clefs` changes it for the part's player, its marks at the slices they fall in. A grand
    staff writes its upper staff, backs up a bar and writes its lower one. A drum part has no key, the
    percussion clef and unpitched notes (:mod:`composer.output.notation.percussion`)."""
    n_bars = total // BAR
    keys, new_key = _keys(plan, [] if part.drum else sections, n_bars)
    grand = len(part.staves) > 1
    rows = [_staff_bars(index, staff, k if grand else 0, part, total, plan, keys, part.marks if k == 1 else [])
            for k, staff in enumerate(part.staves, 1)]
    staves = f"<staves>{len(rows)}</staves><part-symbol>brace</part-symbol>" if grand else ""
    backup = f"<backup><duration>{BAR}</duration></backup>"
    measures = []
    for i in range(n_bars):
        clef = "".join(clefs[i] for _, clefs in rows if i == 0 or clefs[i] != clefs[i - 1])
        if i == 0:
            head = [f"<attributes><divisions>{DIVISIONS}</divisions>{new_key.get(0, '')}"
                    f"<time><beats>4</beats><beat-type>4</beat-type></time>{staves}{clef}"
                    f"{for_part_xml(part.program)}</attributes>"]
        else:
            head = [f"<attributes>{new_key.get(i, '')}{clef}</attributes>"] if i in new_key or clef else []
        body = [line for k, (bars, _) in enumerate(rows) for line in ([backup] if k else []) + bars[i]]
        measures.append(f'<measure number="{i + 1}">\n' + "\n".join(head + body) + "\n</measure>")
    return f'<part id="P{index + 1}">\n' + "\n".join(measures) + "\n</part>"


def _part_list(instruments: Sequence[Sequence[Part]]) -> str:
    """``<part-list>``: each part named as its player expects, with its abbreviation and MusicXML sound
    (:mod:`composer.output.notation.instruments`), one MIDI channel each (10 skipped: drums); a drum part
    names each drum it plays, all on channel 10."""
    out = ["<part-list>"]
    names = part_names([None if group[0].is_drum else group[0].program for group in instruments])
    for i, (group, inst) in enumerate(zip(instruments, names, strict=True), 1):
        part = group[0]
        head = (f'<score-part id="P{i}"><part-name>{escape(inst.name)}</part-name>'
                f"<part-abbreviation>{escape(inst.abbreviation)}</part-abbreviation>")
        if part.is_drum:
            keys = sorted({n.pitch for n in part.notes})
            out.append(f'{head}{instruments_xml(keys, f"P{i}")}</score-part>')
            continue
        out.append(f'{head}<score-instrument id="P{i}-I1"><instrument-name>{escape(INSTRUMENTS[part.program].name)}'
                   f"</instrument-name><instrument-sound>{inst.sound}</instrument-sound></score-instrument>"
                   f'<midi-instrument id="P{i}-I1"><midi-channel>{_CHANNELS[(i - 1) % 15]}</midi-channel>'
                   f"<midi-program>{part.program + 1}</midi-program></midi-instrument></score-part>")
    return "\n".join([*out, "</part-list>"])


def _written(group: Sequence[Part], plan: HarmonyPlan, piece_end: float, tempo: list[tuple[int, str]]) -> Written:
    """One instrument's parts quantised, staff by staff: a keyboard or harp with several roles on a grand
    staff (:mod:`composer.output.notation.grandstaff`), anything else on one staff."""
    sides = [list(group[0].notes)]
    if len(group) > 1:
        bars = [to_beats([n.start for n in p.notes], plan.tempo_map) // 4 for p in group]
        upper = upper_staff(group, bars)
        sides = [[n for p, up in zip(group, upper, strict=True) for n, u in zip(p.notes, up, strict=True) if u == side]
                 for side in (True, False)]
    staves, onsets, velocities = [], [], []
    for notes in sides:
        beats = to_beats([t for n in notes for t in (n.start, n.end)], plan.tempo_map)
        s, e, triplets = quantise(beats[0::2], _held_to_the_beat(beats[0::2], beats[1::2], piece_end))
        e = hit_ends(s, DIVISIONS) if group[0].is_drum else e
        staves.append(Staff(_no_unisons([QNote(int(a), int(b), n.pitch) for a, b, n in zip(s, e, notes, strict=True)]),
                            triplets))
        onsets.extend(s.tolist())
        velocities.extend(n.velocity for n in notes)
    marks = sorted(tempo + dynamic_marks(onsets, velocities, BAR), key=lambda m: m[0])  # a tempo first at one tick
    return Written(staves, group[0].program, marks, group[0].is_drum)


def score_xml(parts: Sequence[Part], plan: HarmonyPlan, *, title: str, composer: str) -> bytes:
    """A MusicXML 4.0 partwise score of ``parts`` on the plan's tempo map, the pitched parts first and at
    concert pitch, with each transposing instrument's transposition (:mod:`composer.output.notation.transpose`),
    the roles of one keyboard or harp as one part on a grand staff, then any drum part with notes
    (:mod:`composer.output.notation.percussion`)."""
    pitched = [p for p in parts if not p.is_drum]
    groups = instruments(pitched) + [[p] for p in parts if p.is_drum and p.notes]
    tempo = sorted(_tempo_marks(plan).items())  # written in the first part only
    piece_end = float(to_beats([plan.duration], plan.tempo_map)[0])
    quantised = [_written(group, plan, piece_end, tempo if i == 0 else []) for i, group in enumerate(groups)]
    last = max([round(piece_end * DIVISIONS), 1, *(n.end for w in quantised for st in w.staves for n in st.notes)])
    total = -(-last // BAR) * BAR
    head = ['<?xml version="1.0" encoding="UTF-8" standalone="no"?>', DOCTYPE, '<score-partwise version="4.0">',
            f"<work><work-title>{escape(title)}</work-title></work>",
            f"<movement-title>{escape(title)}</movement-title>",
            f"<identification><creator type={quoteattr('composer')}>{escape(composer)}</creator>"
            f"<encoding><software>{SOFTWARE}</software></encoding></identification>",
            defaults_xml([p.program for p in pitched]), _part_list(groups)]
    sections = key_sections(plan)
    body = [_part_xml(i, written, total, plan, sections) for i, written in enumerate(quantised)]
    return "\n".join([*head, *body, "</score-partwise>", ""]).encode("utf-8")


def compressed_musicxml(xml: bytes) -> bytes:
    """``xml`` as compressed MusicXML (``.mxl``): a zip whose ``META-INF/container.xml`` names the score,
    the score stored as ``score.musicxml`` (MusicXML 4.0's container, read by MuseScore, Finale, Sibelius)."""
    import io
    import zipfile

    container = ('<?xml version="1.0" encoding="UTF-8"?>\n<container><rootfiles>'
                 '<rootfile full-path="score.musicxml" media-type="application/vnd.recordare.musicxml+xml"/>'
                 "</rootfiles></container>\n")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(zipfile.ZipInfo("mimetype"), "application/vnd.recordare.musicxml", zipfile.ZIP_STORED)
        z.writestr("META-INF/container.xml", container)
        z.writestr("score.musicxml", xml)
    return buf.getvalue()
