"""The direct MusicXML writer: music21 reads it back note for note, measures fill 4/4 exactly,
ties, triplets, tiny notes, keys and tempo marks come out as written, children in schema order."""

from __future__ import annotations

import dataclasses
import itertools
import xml.etree.ElementTree as ET
from collections import defaultdict
from fractions import Fraction

import numpy as np
import pytest
from music21 import clef, converter, dynamics, key, meter, tempo

import composer
from analysis.arc import EmotionArc
from composer.model.plan import MODEL_BEAT, beat_warp
from composer.music.arranger import Part
from composer.music.harmony import HarmonyPlan
from composer.music.notes import ChordSpan, Note
from composer.output.musicxml import DIVISIONS, key_signature, quantise, score_xml, to_beats
from composer.output.notation.dynamics import LEVELS
from composer.output.notation.instruments import part_names

NOTE_ORDER = ("chord", "pitch|unpitched|rest", "duration", "tie", "instrument", "voice", "type", "dot",
              "time-modification", "notehead", "staff", "notations")
ATTRIBUTE_ORDER = ("divisions", "key", "time", "staves", "part-symbol", "clef", "for-part")  # MusicXML 4.0 order


@pytest.fixture(scope="module", params=["rules", "auto"])
def piece(request):
    arc = EmotionArc.constant(20.0, valence=0.3, arousal=0.4)
    return composer.compose(arc, cuts=(7.5, 13.0), duration=20.0, seed=0, source=request.param)


@pytest.fixture(scope="module")
def written(piece, tmp_path_factory):
    path = piece.write_musicxml(tmp_path_factory.mktemp("xml") / f"{piece.source}.musicxml")
    return path, converter.parse(str(path))


def plan_at_60(duration: float, *, tonic: int = 0, mood: str = "bright", tempo_map=((0.0, 60.0),)) -> HarmonyPlan:
    """A plan where one second is one beat (until the map says otherwise)."""
    chord = ChordSpan(0.0, duration, tonic, (tonic,), (tonic,), "C", 0, mood)
    beats = np.arange(0.0, duration, 1.0)
    return HarmonyPlan(duration, tonic, "cinematic", 60.0, tuple(tempo_map), beats, beats[::4], (chord,),
                       (), (), (0.0,))


def hand_score(notes: list[Note], tmp_path, *, plan: HarmonyPlan | None = None, name: str = "lead",
               program: int = 40):
    """Write one hand-built part (a violin unless told); return the parsed XML root and music21's score."""
    plan = plan or plan_at_60(8.0)
    path = tmp_path / "hand.musicxml"
    path.write_bytes(score_xml((Part(name, program, False, tuple(notes)),), plan, title="Hand", composer="Me"))
    return ET.parse(path).getroot(), converter.parse(str(path))


def sounding(part) -> list[tuple[Fraction, Fraction, int]]:
    """(onset, duration, MIDI pitch) in quarters, ties merged per pitch. Not ``stripTies()``: with
    ``matchByPitch`` it merges a whole chord into the next note when only one member is tied."""
    events = []
    for el in part.flatten().notes:
        for n in getattr(el, "notes", (el,)):
            events.append([Fraction(el.offset), Fraction(el.quarterLength), n.pitch.midi, n.tie and n.tie.type])
    events.sort(key=lambda e: (e[2], e[0]))
    merged: list[list] = []
    for ev in events:
        prev = merged[-1] if merged else None
        if (prev and prev[2] == ev[2] and prev[0] + prev[1] == ev[0] and prev[3] in ("start", "continue")
                and ev[3] in ("stop", "continue")):
            prev[1] += ev[1]
            prev[3] = ev[3]
        else:
            merged.append(ev)
    return sorted((o, d, p) for o, d, p, _ in merged)


def expected(part: Part, plan: HarmonyPlan) -> list[tuple[Fraction, Fraction, int]]:
    """The part's notes in beats (via the beat grid, not the tempo map), quantised; a same-pitch
    overlap ends the earlier note where the later starts (one voice cannot hold both)."""
    beats = np.append(plan.beats, plan.beats[-1] + 60.0 / plan.tempo_map[-1][1])  # two beats at least
    to_beats = lambda t: beat_warp(beats).to_model(np.asarray(t)) / MODEL_BEAT  # noqa: E731
    raw_s, raw_e = to_beats([n.start for n in part.notes]), to_beats([n.end for n in part.notes])
    s, e, _ = quantise(raw_s, raw_e)
    assert np.all(np.abs(s / DIVISIONS - raw_s) <= 1 / 6 + 1e-6)
    by_pitch = defaultdict(list)
    for a, b, n in sorted(zip(s.tolist(), e.tolist(), part.notes, strict=True), key=lambda x: (x[0], -x[1])):
        held = by_pitch[n.pitch]
        if held and held[-1][0] == a:
            continue
        if held and held[-1][1] > a:
            held[-1][1] = a
        held.append([a, b])
    return sorted((Fraction(a, DIVISIONS), Fraction(b - a, DIVISIONS), p) for p, v in by_pitch.items() for a, b in v)


def test_music21_reads_parts_names_key_and_meter(piece, written) -> None:
    _, score = written
    pitched = [p for p in piece.parts if not p.is_drum]
    drums = [p for p in piece.parts if p.is_drum and p.notes]  # the percussion part comes last
    assert len(score.parts) == len(pitched) + len(drums) and len(pitched) >= 4
    programs = [p.program for p in pitched] + [None] * len(drums)
    assert [p.partName for p in score.parts] == [inst.name for inst in part_names(programs)]
    fifths, mode = key_signature(piece.plan)
    for i, part in enumerate(score.parts):
        if i < len(pitched):
            ks = part.recurse().getElementsByClass(key.KeySignature).first()
            assert ks.sharps == fifths and ks.mode == mode
        assert part.recurse().getElementsByClass(meter.TimeSignature).first().ratioString == "4/4"
    assert score.metadata.composer == "Soundtrack composer"


def test_every_sounding_note_comes_back(piece, written) -> None:
    _, score = written
    pitched = [p for p in piece.parts if not p.is_drum]
    for part, read in zip(pitched, score.parts[: len(pitched)], strict=True):
        want, got = expected(part, piece.plan), sounding(read)
        assert len(got) == len(want), part.name
        for (wo, wd, wp), (go, gd, gp) in zip(want, got, strict=True):
            assert gp == wp and abs(go - wo) <= Fraction(1, 6) and abs(gd - wd) <= Fraction(1, 6), part.name


def test_measures_fill_four_quarters_and_children_keep_schema_order(written) -> None:
    path, _ = written
    root = ET.parse(path).getroot()
    assert root.tag == "score-partwise" and root.get("version") == "4.0"
    rank = {t: i for i, tags in enumerate(NOTE_ORDER) for t in tags.split("|")}
    for part in root.iter("part"):
        measures = part.findall("measure")
        assert [m.get("number") for m in measures] == [str(i + 1) for i in range(len(measures))]
        for m in measures:
            total = 0
            for el in m:
                if el.tag == "note" and el.find("chord") is None:
                    total += int(el.findtext("duration"))
                total += {"backup": -1, "forward": 1}.get(el.tag, 0) * int(el.findtext("duration") or 0)
            assert total == 4 * DIVISIONS, (part.get("id"), m.get("number"))
        for note in part.iter("note"):
            ranks = [rank[c.tag] for c in note]
            assert ranks == sorted(ranks), [c.tag for c in note]
        attrs = measures[0].find("attributes")
        tags = [c.tag for c in attrs]
        assert tags == sorted(tags, key=ATTRIBUTE_ORDER.index) and {"divisions", "time", "clef"} <= set(tags)
        assert ("key" in tags) == (attrs.findtext("clef/sign") != "percussion")  # every pitched part has a key
        assert attrs.findtext("divisions") == str(DIVISIONS)


def test_a_note_across_the_barline_is_two_tied_notes(tmp_path) -> None:
    root, score = hand_score([Note(3.0, 5.0, 48, 80)], tmp_path, program=42)  # a cello
    m1, m2 = root.find("part").findall("measure")[:2]
    last, first = m1.findall("note")[-1], m2.findall("note")[0]
    assert last.findtext("pitch/step") == first.findtext("pitch/step") == "C"
    assert [t.get("type") for t in last.findall("tie")] == ["start"]
    assert [t.get("type") for t in first.findall("tie")] == ["stop"]
    assert last.find("notations/tied").get("type") == "start" and first.find("notations/tied").get("type") == "stop"
    assert sounding(score.parts[0]) == [(3, 2, 48)]
    assert root.findtext("part/measure/attributes/clef/sign") == "F" and root.findtext(".//line") == "4"


def test_triplets_get_time_modification(tmp_path) -> None:
    third = 1 / 3
    root, score = hand_score([Note(1 + k * third, 1 + (k + 1) * third, 60 + 2 * k, 80) for k in range(3)], tmp_path)
    notes = [n for n in root.iter("note") if n.find("pitch") is not None]
    assert len(notes) == 3
    for n in notes:
        assert n.findtext("time-modification/actual-notes") == "3"
        assert n.findtext("time-modification/normal-notes") == "2"
        assert n.findtext("type") == "eighth" and n.findtext("duration") == str(DIVISIONS // 3)
    assert [n.find("notations/tuplet").get("type") for n in (notes[0], notes[2])] == ["start", "stop"]
    assert sounding(score.parts[0]) == [(1 + Fraction(k, 3), Fraction(1, 3), 60 + 2 * k) for k in range(3)]


def test_a_tiny_note_still_sounds_and_an_empty_part_rests(tmp_path) -> None:
    _, score = hand_score([Note(1.0, 1.01, 64, 80)], tmp_path)
    assert sounding(score.parts[0]) == [(1, Fraction(1, 4), 64)]
    root, score = hand_score([], tmp_path)
    measures = root.find("part").findall("measure")
    assert len(measures) == 2 and all(m.find("note/rest").get("measure") == "yes" for m in measures)
    assert len(score.parts) == 1 and not score.flatten().notes


def test_overlapping_notes_are_chords_with_ties(tmp_path) -> None:
    notes = [Note(0.0, 2.0, 48, 80), Note(0.0, 0.5, 60, 80), Note(0.5, 1.25, 62, 80), Note(1.25, 2.0, 64, 80),
             Note(1.5, 3.0, 48, 80)]  # the held C3 is struck again while it sounds
    root, score = hand_score(notes, tmp_path, name="pad")
    assert root.find("part/measure/note/chord") is not None
    assert sounding(score.parts[0]) == [(0, Fraction(1, 2), 60), (0, Fraction(3, 2), 48),
                                        (Fraction(1, 2), Fraction(3, 4), 62), (Fraction(5, 4), Fraction(3, 4), 64),
                                        (Fraction(3, 2), Fraction(3, 2), 48)]
    assert root.findtext("part/measure/attributes/clef/sign") == "G"  # a violin's part


def test_keys_spell_with_the_signature(tmp_path) -> None:
    assert key_signature(plan_at_60(4.0, tonic=2)) == (2, "major")
    assert key_signature(plan_at_60(4.0, tonic=6)) == (6, "major")
    assert key_signature(plan_at_60(4.0, tonic=9, mood="dark")) == (0, "minor")
    assert key_signature(plan_at_60(4.0, tonic=3, mood="tense")) == (-6, "minor")
    root, score = hand_score([Note(0.0, 1.0, 70, 80)], tmp_path, plan=plan_at_60(4.0, tonic=5))
    assert root.findtext(".//pitch/step") == "B" and root.findtext(".//pitch/alter") == "-1"
    assert score.parts[0].recurse().getElementsByClass(key.KeySignature).first().sharps == -1
    # notes outside the key are chromatic degrees of its tonic (b3, #4 of G major), not "sharps in sharp keys"
    root, _ = hand_score([Note(0.0, 1.0, 70, 80), Note(1.0, 2.0, 73, 80)], tmp_path, plan=plan_at_60(4.0, tonic=7))
    assert [(p.findtext("step"), p.findtext("alter")) for p in root.iter("pitch")] == [("B", "-1"), ("C", "1")]


def spelled(root) -> list[list[str]]:
    """Names of the notes struck together (a note and the chord members after it), in order."""
    out: list[list[str]] = []
    for n in root.iter("note"):
        if n.find("pitch") is not None:
            name = n.findtext("pitch/step") + {"1": "#", "-1": "b"}.get(n.findtext("pitch/alter") or "", "")
            if n.find("chord") is None:
                out.append([])
            out[-1].append(name)
    return out


def test_chord_tones_are_spelled_from_the_chord_root(tmp_path) -> None:
    """D minor's leading tone in its dominant is C#, not the Db that stood next to a D (Db-D-E-G-A); the
    fifth of B diminished in E minor is F, not E#; C major's flat seventh is Bb, not A#."""
    d_minor = plan_at_60(4.0, tonic=2, mood="dark")
    a7 = ChordSpan(0.0, 4.0, 9, (9, 1, 4, 7), (2, 4, 5, 7, 9, 10, 1), "A7", 4, "dark")
    notes = [Note(0.0, 2.0, p, 80) for p in (49, 50, 52, 55, 57)] + [Note(2.0, 3.0, 61, 80), Note(3.0, 4.0, 63, 80)]
    root, _ = hand_score(notes, tmp_path, plan=dataclasses.replace(d_minor, chords=(a7,)), name="pad")
    assert spelled(root) == [["C#", "D", "E", "G", "A"], ["C#"], ["Eb"]]  # Eb: not in A7, the b2 of D
    e_minor = plan_at_60(4.0, tonic=4, mood="dark")
    b_dim = ChordSpan(0.0, 4.0, 11, (11, 2, 5), (4, 5, 7, 9, 11, 0, 2), "Bdim", 4, "dark")
    root, _ = hand_score([Note(0.0, 1.0, p, 80) for p in (59, 62, 65)], tmp_path,
                         plan=dataclasses.replace(e_minor, chords=(b_dim,)))
    assert spelled(root) == [["B", "D", "F"]]
    root, _ = hand_score([Note(0.0, 1.0, 70, 80)], tmp_path, plan=plan_at_60(4.0, tonic=0))
    assert spelled(root) == [["Bb"]]


def test_tempo_marks_follow_the_map(tmp_path) -> None:
    plan = plan_at_60(6.0, tempo_map=((0.0, 60.0), (4.0, 120.0)))  # 4 beats, then 4 more in 2 s
    plan = dataclasses.replace(plan, beats=np.array([0, 1, 2, 3, 4, 4.5, 5, 5.5]))
    _, score = hand_score([Note(4.0, 4.5, 72, 80), Note(5.0, 6.0, 74, 80)], tmp_path, plan=plan)
    marks = score.parts[0].recurse().getElementsByClass(tempo.MetronomeMark)
    assert [(m.getOffsetInHierarchy(score.parts[0]), m.number) for m in marks] == [(0, 60), (4, 120)]
    assert sounding(score.parts[0]) == [(4, 1, 72), (6, 2, 74)]


def test_short_piece_writes_a_readable_score(tmp_path) -> None:
    short = composer.compose(EmotionArc.constant(0.5, valence=0.0, arousal=0.0), duration=0.5, seed=2, source="rules")
    score = converter.parse(str(short.write_musicxml(tmp_path / "short.musicxml", title="A & B <short>")))
    assert score.metadata.movementName == "A & B <short>"
    assert len(score.parts) == len([p for p in short.parts if not p.is_drum])


def test_a_lasting_turn_of_mode_changes_the_key_signature_in_the_score_and_the_midi(tmp_path) -> None:
    from analysis.arc import grid
    from composer.music.harmony import key_sections

    t = grid(40.0, 0.5)
    arc = EmotionArc.from_va(t, np.linspace(-0.7, 0.7, t.size), np.zeros(t.size))  # grief to hope
    piece = composer.compose(arc, cuts=(12.0, 27.0), duration=40.0, seed=0, source="rules")
    sections = key_sections(piece.plan)
    assert [mode for _, mode in sections] == ["minor", "major"]
    turn = sections[1][0]
    path = piece.write_musicxml(tmp_path / "turn.musicxml")
    lead = converter.parse(str(path)).parts[0]
    signatures = [(ks.measureNumber, ks.mode) for ks in lead.recurse().getElementsByClass(key.KeySignature)]
    assert signatures == [(1, "minor"), (turn + 1, "major")]
    tonic = piece.plan.tonic
    want = [(0, tonic + 12), (pytest.approx(float(piece.plan.downbeats[turn])), tonic)]
    assert [(k.time, k.key_number) for k in piece.midi.key_signature_changes] == want
    # D minor (one flat) turns to D major (two sharps) at this seed; in either, no chord holds two notes of
    # one letter (the leading tone is C#, not a Db beside the D)
    assert key_signature(piece.plan, 0)[0] == -1 and key_signature(piece.plan, len(piece.plan.downbeats) - 1)[0] == 2
    root = ET.parse(path).getroot()
    for part in root.iter("part"):
        for names in spelled(part):
            assert len({n[0] for n in names}) == len(set(names)), (part.get("id"), names)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_modal_mixture_keeps_one_signature_for_whole_phrases(seed: int) -> None:
    """Near valence 0 the planner draws bright and dark chords by turns; the score changes key only
    for stretches of four bars or more."""
    from analysis.arc import grid
    from composer.music.harmony import key_sections

    t = grid(60.0, 0.5)
    arc = EmotionArc.from_va(t, 0.05 + 0.1 * np.sin(t / 3), np.full(t.size, 0.2))
    plan = composer.compose(arc, cuts=(10.0, 25.0, 41.0), duration=60.0, seed=seed, source="rules").plan
    moods = {c.mood == "bright" for c in plan.chords}
    assert moods == {True, False}  # the mixture is there
    firsts = [bar for bar, _ in key_sections(plan)] + [len(plan.downbeats)]
    assert firsts[0] == 0 and all(b - a >= 4 for a, b in itertools.pairwise(firsts))


def test_a_chord_tone_with_no_spelling_near_its_root_is_a_plain_natural(tmp_path) -> None:
    """B diminished in Bb major (vii of ii): its root reads Cb from the key, and its fifth F has no letter a
    diminished fifth above Cb without a double flat. The fallback took the first letter a natural or sharp
    fits, and E comes before F: the chord read Cb-D-E#. F is F."""
    b_flat = plan_at_60(4.0, tonic=10)
    b_dim = ChordSpan(0.0, 4.0, 11, (11, 2, 5), (10, 0, 2, 3, 5, 7, 9), "Bdim", 4, "bright")
    root, _ = hand_score([Note(0.0, 1.0, p, 80) for p in (59, 62, 65)], tmp_path,
                         plan=dataclasses.replace(b_flat, chords=(b_dim,)))
    names = spelled(root)
    assert names[0][1:] == ["D", "F"] and all("E#" not in chord for chord in names), names


def test_a_composed_cue_never_writes_two_notes_of_one_letter_in_a_chord(tmp_path) -> None:
    """A minor-key cue through its dominant: the old 'flats in flat keys' rule wrote Db-D-E-G-A in the pad."""
    from analysis.arc import grid

    t = grid(60.0, 0.5)
    arc = EmotionArc.from_va(t, np.linspace(-0.7, 0.7, t.size), np.linspace(-0.3, 0.6, t.size))
    piece = composer.compose(arc, cuts=(7.3, 19.9, 33.1), duration=47.3, seed=3, source="rules")
    root = ET.parse(piece.write_musicxml(tmp_path / "minor.musicxml")).getroot()
    chords = [names for part in root.iter("part") for names in spelled(part) if len(names) > 1]
    assert chords and all(len({n[0] for n in names}) == len(set(names)) for names in chords)


def clefs_by_bar(part) -> list[tuple[int, str, int]]:
    """(measure number, sign, line) of every clef music21 reads in ``part``."""
    return [(c.measureNumber, c.sign, c.line) for c in part.recurse().getElementsByClass(clef.Clef)]


@pytest.mark.parametrize(("program", "want"), [(40, ("G", 2)), (110, ("G", 2)), (41, ("C", 3)), (43, ("F", 4)),
                                               (42, ("F", 4)), (0, ("F", 4))])
def test_each_instrument_reads_its_own_clef(program: int, want: tuple[str, int], tmp_path) -> None:
    """A low line (G3 to D4, median under middle C) is in bass clef only for players who read it: the
    median rule wrote a fiddle and a viola in bass clef."""
    line = [Note(float(k), k + 1.0, p, 80) for k, p in enumerate((55, 57, 59, 60, 62, 59, 57, 55))]
    _, score = hand_score(line, tmp_path, program=program)
    assert clefs_by_bar(score.parts[0]) == [(1, *want)]


def test_a_line_that_climbs_changes_clef_at_a_barline_and_back(tmp_path) -> None:
    """A harp (treble or bass) plays two bars low, two bars at the top of the treble staff and above, two
    low again: one clef wrote the high bars with up to ten ledger lines."""
    low = [48, 50, 52, 53]
    high = [84, 88, 91, 93]
    pitches = low * 2 + high * 2 + low * 2
    notes = [Note(float(k), k + 1.0, p, 80) for k, p in enumerate(pitches)]
    root, score = hand_score(notes, tmp_path, plan=plan_at_60(24.0), program=46)
    assert clefs_by_bar(score.parts[0]) == [(1, "F", 4), (3, "G", 2), (5, "F", 4)]
    attrs = root.find("part").findall("measure")[2].find("attributes")
    assert [c.tag for c in attrs] == ["clef"]
    assert sounding(score.parts[0]) == [(k, 1, p) for k, p in enumerate(pitches)]


def test_a_composed_score_keeps_notes_near_the_staff(tmp_path) -> None:
    """A cinematic cue by the learned source whose harp and string pad climb to A6 and E6: in a bass clef
    chosen by the median, 135 written pitches of 15,624 in the probe needed five ledger lines or more."""
    from music21 import pitch as m21pitch

    from analysis.arc import grid

    t = grid(90.0, 0.5)
    arc = EmotionArc.from_va(t, 0.6 * np.sin(t / 9), 0.5 * np.cos(t / 7))
    piece = composer.compose(arc, cuts=(11.13, 29.7, 52.41, 71.05), duration=83.7, seed=3, source="auto")
    score = converter.parse(str(piece.write_musicxml(tmp_path / "wave.musicxml")))
    staff = {("G", 2): ("E4", "F5"), ("F", 4): ("G2", "A3"), ("C", 3): ("F3", "G4"), ("C", 4): ("D3", "E4")}
    staff = {k: (m21pitch.Pitch(a).diatonicNoteNum, m21pitch.Pitch(b).diatonicNoteNum) for k, (a, b) in staff.items()}
    worst = {}
    for part in score.parts[: len([p for p in piece.parts if not p.is_drum])]:  # the drums' staff has no pitches
        for el in part.recurse().notes:
            c = el.getContextByClass(clef.Clef)
            bottom, top = staff[(c.sign, c.line)]
            lines = [max(0, (p.diatonicNoteNum - top) // 2, (bottom - p.diatonicNoteNum) // 2) for p in el.pitches]
            worst[part.partName] = max(worst.get(part.partName, 0), *lines)
    assert max(worst.values()) <= 4, worst


def written_values(root) -> list[tuple[str, str, int]]:
    """(note or rest, type, dots) of each written value of the first part, chord members left out."""
    return [("rest" if n.find("rest") is not None else "note", n.findtext("type"), len(n.findall("dot")))
            for n in root.find("part").iter("note") if n.find("chord") is None]


def test_the_middle_of_the_bar_stays_visible_with_the_fewest_values(tmp_path) -> None:
    """A note from beat 2 to the barline is a quarter tied to a half, not dotted quarter + eighth + quarter
    (beat 3 hidden, three heads); the rest before it is one quarter; a half on beat 2 that ends on beat 4 is
    the plain syncopation; a note from the 'and' of 1 to the barline is eighth + quarter + half, not four."""
    root, score = hand_score([Note(1.0, 4.0, 72, 80), Note(4.0, 5.0, 72, 80), Note(5.0, 7.0, 74, 80),
                              Note(7.0, 8.0, 76, 80), Note(8.5, 12.0, 77, 80)], tmp_path, plan=plan_at_60(12.0))
    assert written_values(root) == [
        ("rest", "quarter", 0), ("note", "quarter", 0), ("note", "half", 0),
        ("note", "quarter", 0), ("note", "half", 0), ("note", "quarter", 0),
        ("rest", "eighth", 0), ("note", "eighth", 0), ("note", "quarter", 0), ("note", "half", 0)]
    assert sounding(score.parts[0]) == [(1, 3, 72), (4, 1, 72), (5, 2, 74), (7, 1, 76),
                                        (Fraction(17, 2), Fraction(7, 2), 77)]
    root, _ = hand_score([Note(0.0, 1.0, 72, 80)], tmp_path, plan=plan_at_60(4.0))
    assert written_values(root) == [("note", "quarter", 0), ("rest", "quarter", 0), ("rest", "half", 0)]


def test_dynamics_follow_the_velocities_where_a_level_holds(tmp_path) -> None:
    """Two bars at velocity 50 (p), two at 95 (f), one at 80 (mf, a one-bar wobble by one level: no mark),
    two at 95, one at 33 after a rest (pp: two levels down or more is marked at once)."""
    velocities = [50, 50, 95, 95, 80, 95, 95, None, 33]
    notes = [Note(4.0 * bar + 1.0 + k, 4.0 * bar + 1.5 + k, 72, v) for bar, v in enumerate(velocities)
             if v is not None for k in range(2)]
    root, score = hand_score(notes, tmp_path, plan=plan_at_60(36.0))
    marks = [(d.measureNumber, d.value, d.getOffsetInHierarchy(score.parts[0]) % 4)
             for d in score.parts[0].recurse().getElementsByClass(dynamics.Dynamic)]
    assert marks == [(1, "p", 1), (3, "f", 1), (9, "pp", 1)]
    sound = [float(d.find("sound").get("dynamics")) for d in root.iter("direction")
             if d.find(".//dynamics") is not None]
    assert sound == pytest.approx([100 * 49 / 90, 100 * 96 / 90, 100 * 33 / 90], abs=0.01)  # % of forte (90)


def test_a_cue_that_swells_is_marked_from_soft_to_loud(tmp_path) -> None:
    """Arousal from calm to excited: each part with notes is marked at its first note, and the lead's
    marks climb (the score had no dynamics at all)."""
    from analysis.arc import grid

    t = grid(40.0, 0.5)
    arc = EmotionArc.from_va(t, np.full(t.size, 0.3), np.linspace(-0.9, 0.9, t.size))
    piece = composer.compose(arc, cuts=(13.7, 26.1), duration=40.0, seed=1, source="rules")
    score = converter.parse(str(piece.write_musicxml(tmp_path / "swell.musicxml")))
    order = [name for name, _ in LEVELS]
    for part in score.parts:
        notes = list(part.recurse().notes)
        marks = list(part.recurse().getElementsByClass(dynamics.Dynamic))
        if notes:
            assert marks and marks[0].getOffsetInHierarchy(part) == notes[0].getOffsetInHierarchy(part), part.partName
    lead = [order.index(d.value) for d in score.parts[0].recurse().getElementsByClass(dynamics.Dynamic)]
    assert len(lead) >= 2 and lead == sorted(lead) and lead[-1] - lead[0] >= 2


def test_a_drift_of_the_tempo_plays_but_prints_no_new_metronome_mark(tmp_path) -> None:
    """The planner drifts the tempo by fractions of a bpm to land beats on cuts: every change still
    plays (<sound tempo>), but only a change of 3 bpm or more from the last printed mark is printed
    (the score showed q=97, q=97, q=98 bars apart)."""
    tempo_map = ((0.0, 97.0), (4.0, 96.9), (8.0, 97.8), (12.0, 104.0), (16.0, 102.5))
    root, _ = hand_score([Note(0.0, 1.0, 72, 80)], tmp_path, plan=plan_at_60(20.0, tempo_map=tempo_map))
    marks = [(m.findtext("per-minute"), m.get("print-object", "yes")) for m in root.iter("metronome")]
    assert marks == [("97", "yes"), ("97", "no"), ("98", "no"), ("104", "yes"), ("102", "no")]
    assert [float(s.get("tempo")) for s in root.iter("sound") if s.get("tempo")] == [97, 96.9, 97.8, 104, 102.5]


def test_a_concert_score_gives_each_transposing_part_its_transposition(tmp_path) -> None:
    """The cinematic lead is a French horn, its bass a contrabass: the score is at concert pitch and says
    so, with the horn's part a fifth up (in F) and the contrabass's an octave up; strings in C get none.
    The notes stay at concert pitch."""
    arc = EmotionArc.constant(16.0, valence=0.3, arousal=0.4)
    piece = composer.compose(arc, cuts=(7.5,), duration=16.0, seed=0, source="rules")
    path = piece.write_musicxml(tmp_path / "horn.musicxml")
    root = ET.parse(path).getroot()
    assert root.find("defaults/concert-score") is not None
    names = {f"P{i}": p.name for i, p in enumerate(piece.parts, 1)}  # one part each: no keyboard twice
    programs = {p.name: p.program for p in piece.parts}
    assert programs["lead"] == 60 and programs["bass"] == 43 and programs["pad"] == 48
    want = {"lead": ("-4", "-7", None), "bass": ("0", "0", "-1"), "pad": None}
    assert sum(names[part.get("id")] in want for part in root.iter("part")) == 3
    for part in root.iter("part"):
        if names[part.get("id")] in want:
            t = part.find("measure/attributes/for-part/part-transpose")
            got = None if t is None else (t.findtext("diatonic"), t.findtext("chromatic"), t.findtext("octave-change"))
            assert got == want[names[part.get("id")]], names[part.get("id")]
    lead = converter.parse(str(path)).parts[0]
    assert [(o, p) for o, _, p in sounding(lead)] == [(o, p) for o, _, p in expected(piece.parts[0], piece.plan)]


def test_the_last_notes_hold_to_the_end_of_the_beat_instead_of_a_lone_triplet(tmp_path) -> None:
    """The picture ends a third of a beat into beat 4 of bar 2: the last note was written as a triplet
    eighth and a triplet quarter rest, the only triplet in the part. Now it holds to the beat's end; a
    note that ends where another starts in that beat keeps its length."""
    root, score = hand_score([Note(0.0, 1.0, 72, 80), Note(5.0, 7.34, 74, 80)], tmp_path, plan=plan_at_60(7.34))
    assert root.find(".//time-modification") is None
    assert sounding(score.parts[0]) == [(0, 1, 72), (5, 3, 74)]
    root, score = hand_score([Note(6.0, 7 + 1 / 3, 74, 80), Note(7 + 1 / 3, 7.34, 76, 80)], tmp_path,
                             plan=plan_at_60(7.34))
    assert sounding(score.parts[0]) == [(6, Fraction(4, 3), 74), (Fraction(22, 3), Fraction(2, 3), 76)]


def test_the_drums_get_a_percussion_part(tmp_path) -> None:
    """A cinematic cue's drums (kick, low tom, closed hi-hat, a crash on the cut) were left out of the
    score: now a five-line percussion staff, each drum at its place, every hit back at its onset, each
    lasting to the next hit or its beat's end (no ties, no rest between hits within a beat)."""
    arc = EmotionArc.constant(12.0, valence=0.3, arousal=0.8)
    piece = composer.compose(arc, cuts=(6.0,), duration=12.0, seed=0, source="rules")
    drums = next(p for p in piece.parts if p.is_drum)
    root = ET.parse(piece.write_musicxml(tmp_path / "drums.musicxml")).getroot()
    part_id = next(sp.get("id") for sp in root.iter("score-part") if sp.findtext("part-name") == "Percussion")
    part = next(p for p in root.iter("part") if p.get("id") == part_id)
    attrs = part.find("measure/attributes")
    assert attrs.findtext("clef/sign") == "percussion" and attrs.find("key") is None
    keys = {n.pitch for n in drums.notes}
    sp = next(sp for sp in root.iter("score-part") if sp.get("id") == part_id)
    assert {int(m.findtext("midi-unpitched")) - 1 for m in sp.iter("midi-instrument")} == keys
    assert {m.findtext("midi-channel") for m in sp.iter("midi-instrument")} == {"10"}
    onsets, tick = set(), 0
    for measure in part.findall("measure"):
        for n in measure.iter("note"):
            assert n.find("tie") is None and n.find("pitch") is None
            if n.find("chord") is not None:
                tick -= int(n.findtext("duration"))
            if n.find("unpitched") is not None:
                key_ = int(n.find("instrument").get("id").rsplit("-I", 1)[1])
                step = n.findtext("unpitched/display-step") + n.findtext("unpitched/display-octave")
                assert (key_, step) in {(35, "F4"), (45, "B4"), (42, "G5"), (49, "A5")}
                assert (n.findtext("notehead") == "x") == (key_ in (42, 49))
                onsets.add((tick, key_))
            tick += int(n.findtext("duration"))
    beats = to_beats([n.start for n in drums.notes], piece.plan.tempo_map)
    want = {(int(s), n.pitch) for s, n in zip(quantise(beats, beats)[0], drums.notes, strict=True)}
    assert onsets == want


def test_a_raga_keeps_one_spelling_of_its_tonic_through_a_turn_of_mode(tmp_path) -> None:
    """A raga on C# from grief to hope: the score read C# minor (4 sharps), then Db major (5 flats), every
    note changing letter at the turn. Now C# minor turns to C# major, and the lead's tonic stays C#."""
    from analysis.arc import grid
    from composer.music.harmony import key_sections

    t = grid(40.0, 0.5)
    arc = EmotionArc.from_va(t, np.linspace(-0.7, 0.7, t.size), np.zeros(t.size))
    piece = composer.compose(arc, cuts=(12.0, 27.0), duration=40.0, style="indian_raga", seed=0, source="rules")
    sections = key_sections(piece.plan)
    assert piece.plan.tonic == 1 and [m for _, m in sections] == ["minor", "major"]
    lead = converter.parse(str(piece.write_musicxml(tmp_path / "raga.musicxml"))).parts[0]
    signatures = [(ks.measureNumber, ks.sharps, ks.mode) for ks in lead.recurse().getElementsByClass(key.KeySignature)]
    assert signatures == [(1, 4, "minor"), (sections[1][0] + 1, 7, "major")]
    assert key_signature(piece.plan, sections[1][0]) == (7, "major")
    after = [p.name for n in lead.recurse().notes if n.measureNumber > sections[1][0] for p in n.pitches]
    assert after.count("C#") > 0 and after.count("D-") == 0


@pytest.mark.parametrize(("tonic", "modes", "want"), [
    (1, ["major"], (-5, -8)), (1, ["minor"], (7, 4)), (1, ["major", "minor"], (7, 4)),
    (8, ["major", "minor"], (-4, -7)), (8, ["minor"], (8, 5)), (6, ["major"], (6, 3)), (2, ["major", "minor"], (2, -1)),
])
def test_the_tonic_is_spelled_once_with_the_fewest_accidentals(tonic: int, modes: list[str], want) -> None:
    """Db major alone, C# minor alone; both modes on C#: C# (7 and 4 sharps; Db minor would need 8 flats)."""
    from composer.output.notation.keys import signatures

    got = signatures(tonic, modes)
    assert (got["major"], got["minor"]) == want


@pytest.mark.parametrize("source", ["rules", "learned"])
def test_a_piano_is_one_part_on_a_grand_staff(source: str, tmp_path) -> None:
    """piano_solo's melody, left-hand arpeggios and bass were three piano parts of one staff each; a pianist
    reads one part on two staves under a brace: the melody on the upper (treble) staff, the bass on the
    lower (bass), the arpeggios where they lie; each note back at its onset and pitch."""
    arc = EmotionArc.constant(16.0, valence=0.3, arousal=0.4)
    piece = composer.compose(arc, cuts=(7.5,), duration=16.0, style="piano_solo", seed=0, source=source)
    roles = {p.name: p for p in piece.parts if not p.is_drum}
    assert {p.program for p in roles.values()} == {0} and set(roles) == {"lead", "arpeggio", "bass"}
    path = piece.write_musicxml(tmp_path / "piano.musicxml")
    root = ET.parse(path).getroot()
    assert len(root.findall("part-list/score-part")) == len(root.findall("part")) == 1
    attrs = root.find("part/measure/attributes")
    assert attrs.findtext("staves") == "2" and attrs.findtext("part-symbol") == "brace"
    tags = [c.tag for c in attrs]  # schema order (a clef per staff; a piano is in C: no for-part)
    assert tags == sorted(tags, key=ATTRIBUTE_ORDER.index) and "for-part" not in tags and tags.count("clef") == 2
    assert [(c.get("number"), c.findtext("sign")) for c in attrs.iter("clef")] == [("1", "G"), ("2", "F")]
    for note in root.iter("note"):
        assert (note.findtext("staff"), note.findtext("voice")) in {("1", "1"), ("2", "5")}
    staves = [[(o, p) for o, _, p in sounding(staff)] for staff in converter.parse(str(path)).parts]
    for name, where in (("lead", (0,)), ("bass", (1,)), ("arpeggio", (0, 1))):
        for onset, _, pitch in expected(roles[name], piece.plan):
            k, j = next((k, j) for k in where for j, (o, p) in enumerate(staves[k])
                        if p == pitch and abs(o - onset) <= Fraction(1, 6))
            staves[k].pop(j)
    assert staves == [[], []]


def test_an_arpeggio_that_climbs_moves_to_the_right_hand_for_those_bars(tmp_path) -> None:
    """An inner part goes on a grand staff bar by bar, where it needs fewer ledger lines: a left-hand
    arpeggio that climbs over middle C for four bars is written in the right hand there (the whole
    arpeggio on the lower staff wrote its B4 four ledger lines over the bass clef)."""
    lead = [Note(float(t), t + 1.0, 76 + t % 3, 80) for t in range(16)]
    bass = [Note(float(t), t + 2.0, 36 + t % 5, 80) for t in range(0, 16, 2)]
    low, high = (48, 52, 55, 52), (64, 67, 71, 67)
    arp = [Note(t / 2, t / 2 + 0.5, (high if 4 <= t // 2 < 12 else low)[t % 4], 70) for t in range(32)]
    parts = (Part("lead", 0, False, tuple(lead)), Part("arpeggio", 0, False, tuple(arp)),
             Part("bass", 0, False, tuple(bass)))
    path = tmp_path / "climb.musicxml"
    path.write_bytes(score_xml(parts, plan_at_60(16.0), title="Climb", composer="Me"))
    upper, lower = converter.parse(str(path)).parts
    assert {p for _, _, p in sounding(upper)} == {76, 77, 78, *high}
    assert {p for _, _, p in sounding(lower)} == {36, 37, 38, 39, 40, *low}
    assert sorted(o for o, _, p in sounding(upper) if p in high) == [Fraction(t, 2) for t in range(8, 24)]


def test_parts_are_named_as_players_name_their_instrument_with_its_sound(tmp_path) -> None:
    """Parts were named "lead (French Horn)", "pad (String Ensemble 1)", with no sound for notation software
    to play them with: now "Horn in F", "Strings", ..., abbreviated for later systems, with MusicXML's
    sound of each instrument (each drum its own); two marimbas are Marimba 1 and 2."""
    arc = EmotionArc.constant(12.0, valence=0.3, arousal=0.8)
    want = {"cinematic": [("Horn in F", "Hn.", "brass.french-horn"), ("Strings", "Str.", "strings.group"),
                          ("Contrabass", "Cb.", "strings.contrabass"), ("Harp", "Hp.", "pluck.harp"),
                          ("Cello", "Vc.", "strings.cello"), ("Strings pizz.", "Str. pizz.", "strings.group"),
                          ("Brass", "Br.", "brass.group"), ("Percussion", "Perc.", "drum.bass-drum")],
            "west_african": [("Kalimba", "Kal.", "pitched-percussion.kalimba"),
                             ("Acoustic Bass", "A. Bass", "pluck.bass.acoustic"),
                             ("Marimba 1", "Mrm. 1", "pitched-percussion.marimba"),
                             ("Xylophone", "Xyl.", "pitched-percussion.xylophone"),
                             ("Marimba 2", "Mrm. 2", "pitched-percussion.marimba"),
                             ("Percussion", "Perc.", "metal.cymbal.crash")]}
    for style, parts in want.items():
        piece = composer.compose(arc, cuts=(6.0,), duration=12.0, style=style, seed=0, source="rules")
        assert len(piece.parts) == len(parts) and all(p.notes for p in piece.parts)
        root = ET.parse(piece.write_musicxml(tmp_path / f"{style}.musicxml")).getroot()
        got = [(sp.findtext("part-name"), sp.findtext("part-abbreviation"),
                sp.findtext("score-instrument/instrument-sound")) for sp in root.iter("score-part")]
        assert got == parts, style
        drums = {int(si.get("id").rsplit("-I", 1)[1]): si.findtext("instrument-sound")
                 for si in root.findall("part-list/score-part")[-1].iter("score-instrument")}
        assert drums == {k: sound for k, sound in {35: "drum.bass-drum", 45: "drum.tom-tom", 42: "metal.hi-hat",
                                                    49: "metal.cymbal.crash", 56: "metal.bells.cowbell",
                                                    64: "drum.conga", 63: "drum.conga", 70: "rattle.maraca"}.items()
                         if k in drums}
        assert drums and None not in drums.values()
        assert [p.partName for p in converter.parse(str(tmp_path / f"{style}.musicxml")).parts] == [p[0] for p in parts]
