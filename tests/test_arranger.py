"""Arranger: texture and dynamics follow arousal, register follows valence, the user's instrument leads."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from analysis.arc import EmotionArc, grid
from composer import compose
from composer.music.styles import get_style, resolve_instrument


def _ramp(duration: float, valence: tuple[float, float], arousal: tuple[float, float]) -> EmotionArc:
    t = grid(duration, 0.5)
    return EmotionArc.from_va(t, np.linspace(*valence, t.size), np.linspace(*arousal, t.size))


@pytest.fixture(scope="module")
def rising():
    return compose(_ramp(45.0, (0.2, 0.2), (-0.9, 0.9)), (), 45.0, seed=3, source="rules")


def _thirds(piece, attr: str) -> list[float]:
    notes = [n for p in piece.parts for n in p.notes]
    out = []
    for k in range(3):
        lo, hi = k * piece.duration / 3, (k + 1) * piece.duration / 3
        sel = [n for n in notes if lo <= n.start < hi]
        out.append(len(sel) / (hi - lo) if attr == "density" else float(np.mean([n.velocity for n in sel])))
    return out


def test_rising_arousal_gives_rising_density_and_velocity(rising) -> None:
    density = _thirds(rising, "density")
    vel = _thirds(rising, "velocity")
    assert density[0] < density[1] < density[2]
    assert density[2] > 3 * density[0]
    assert vel[0] + 10 < vel[1] + 5 < vel[2]


def test_texture_layers_enter_as_arousal_rises(rising) -> None:
    first = {p.name: min(n.start for n in p.notes) for p in rising.parts}
    assert first["lead"] < 5 and first["pad"] == 0.0
    assert first["arpeggio"] < first["ostinato"]  # arpeggios in between, ostinati when intense
    assert first["ostinato"] > 25 and first["brass"] > 25
    drums = next(p for p in rising.parts if p.is_drum)
    assert min(n.start for n in drums.notes) > 25  # GM percussion only in the intense part


def test_calm_piece_is_sparse_pads_and_a_solo_line() -> None:
    piece = compose(EmotionArc.constant(20, 0.3, -0.8), (), 20.0, source="rules")
    names = {p.name for p in piece.parts}
    assert names <= {"lead", "pad", "bass"}
    assert not any(p.is_drum for p in piece.parts)


def test_register_follows_valence() -> None:
    def mean_pitch(valence: float) -> float:
        piece = compose(EmotionArc.constant(20, valence, 0.0), (), 20.0, seed=1, source="rules")
        return float(np.mean([n.pitch for p in piece.parts if p.name in ("lead", "pad") for n in p.notes]))

    assert mean_pitch(0.8) > mean_pitch(-0.8) + 4


@pytest.mark.parametrize("instrument", ["violin", "flute", "sitar", "Acoustic Grand Piano", 71, "22"])
def test_users_instrument_leads(instrument) -> None:
    piece = compose(EmotionArc.constant(8, 0.2, 0.1), (2.0, 5.0), 8.0, instrument=instrument, source="rules")
    program = resolve_instrument(instrument)
    lead = piece.midi.instruments[0]
    assert lead.name == "lead" and lead.program == program and not lead.is_drum
    assert piece.instrument == program
    assert len(lead.notes) > 4
    # the lead carries the melody: the most notes above middle C of any pitched part
    high = {i.name: sum(n.pitch >= 60 for n in i.notes) for i in piece.midi.instruments if not i.is_drum}
    assert high["lead"] >= 0.5 * max(high.values())


def test_dynamics_follow_arousal_per_layer(rising) -> None:
    pad = next(p for p in rising.parts if p.name == "pad")
    early = np.mean([n.velocity for n in pad.notes if n.start < 10])
    late = np.mean([n.velocity for n in pad.notes if n.start > 35])
    assert late > early + 25


def test_bass_and_pad_change_on_every_cut() -> None:
    cuts = (2.13, 2.35, 7.37)  # the second comes 0.22 s after the first: no beat can land on both
    piece = compose(EmotionArc.constant(10, 0.1, 0.0), cuts, 10.0, tempo=97, source="rules")
    assert max(abs(s) for s in piece.plan.cut_shifts) > 0.05  # one of them is off the beat grid
    for name in ("bass", "pad"):
        part = next(p for p in piece.parts if p.name == name)
        onsets = np.array([n.start for n in part.notes])
        for c in cuts:
            assert np.min(np.abs(onsets - c)) < 1e-6, (name, c)


def test_a_sources_second_line_follows_the_arcs_dynamics_below_the_lead() -> None:
    """The learned source writes every note at the corpus's one velocity (90): its counter line must
    still get the arc's dynamics, under the lead, as the lead does."""
    from composer.music.arranger import arrange
    from composer.music.harmony import plan_harmony
    from composer.music.notes import Material, Note
    from composer.music.styles import get_style

    style = get_style("cinematic")
    arc = _ramp(20.0, (0.0, 0.0), (-0.8, 0.8))
    plan = plan_harmony(arc, (), 20.0, style=style, seed=0)
    line = tuple(Note(t, t + 0.9, 60, 90) for t in np.arange(0.0, 20.0, 1.0))
    parts = arrange(plan, Material(melody=line, source="test", counter=line), arc=arc, style=style, lead_program=40)
    lead, counter = (next(p for p in parts if p.name == name) for name in ("lead", "counter"))
    lv, cv = np.array([n.velocity for n in lead.notes]), np.array([n.velocity for n in counter.notes])
    assert len(cv) == len(lv) == 20
    assert np.all(cv < lv)  # the same notes and accents, a layer under the lead
    assert cv[-5:].mean() > cv[:5].mean() + 30  # calm start soft, excited end loud


def test_no_note_is_struck_again_while_it_sounds() -> None:
    """One channel holds one voice per pitch: a restruck bass note under a held one was silenced by the
    held note's note-off (0.6 s of bass lost; 25 of the 50 bass notes of a tense ambient cue overlapped)."""
    import io

    import pretty_midi

    t = np.arange(0, 30.01, 0.5)
    arcs = {"tense": EmotionArc.from_va(t, np.full(t.size, -0.7), np.full(t.size, 0.8)),
            "neutral": EmotionArc.from_va(t, np.zeros(t.size), np.zeros(t.size))}
    for style in ("ambient", "cinematic"):
        for arc in arcs.values():
            piece = compose(arc, cuts=(8.0, 15.3, 22.7), duration=30.0, style=style, seed=0, source="rules")
            for part in piece.parts:
                ends: dict[int, float] = {}
                for n in sorted(part.notes, key=lambda n: n.start):
                    assert n.start >= ends.get(n.pitch, -1.0) - 1e-9, (style, part.name, n)
                    ends[n.pitch] = n.end
            buf = io.BytesIO()
            piece.midi.write(buf)
            buf.seek(0)
            back = pretty_midi.PrettyMIDI(buf)
            written = sorted(n.end - n.start for i in back.instruments for n in i.notes)  # read back: none cut
            assert np.allclose(written, sorted(n.end - n.start for p in piece.parts for n in p.notes), atol=0.01)


def test_two_strikes_of_a_pitch_become_one_note_each_ended_by_the_next() -> None:
    from composer.music.arranger import no_restrike_overlaps
    from composer.music.notes import Note

    notes = [Note(0.0, 2.0, 40, 80), Note(1.0, 3.0, 40, 90), Note(1.01, 2.5, 40, 100), Note(0.5, 1.5, 52, 70)]
    assert no_restrike_overlaps(notes) == (Note(0.0, 1.0, 40, 80), Note(0.5, 1.5, 52, 70), Note(1.0, 3.0, 40, 100))


def test_a_sources_line_is_put_on_the_beats_grid_cuts_aside() -> None:
    from composer.music.grid import on_grid
    from composer.music.notes import Note

    beats = np.arange(0.0, 8.0, 0.5)  # 120 bpm
    late = [Note(0.21 + 0.25 * k, 0.21 + 0.25 * k + 0.2, 60 + k % 5, 90) for k in range(12)]  # a 16th line 0.21 s late
    moved = on_grid(late, beats, cuts=(0.21,))
    assert moved[0].start == pytest.approx(0.21)  # on the cut: the sync point stays
    assert all(abs(n.start * 8 - round(n.start * 8)) < 1e-6 for n in moved[1:])  # sixteenths
    assert all(a.end <= b.start + 1e-9 for a, b in itertools.pairwise(moved))  # still one voice
    triplets = [Note(b + k / 6 + 0.02, b + k / 6 + 0.15, 64, 90) for b in (1.0, 1.5) for k in range(3)]
    assert [n.start for n in on_grid(triplets, beats)] == pytest.approx([n.start - 0.02 for n in triplets])  # triplets
    crowded = [Note(1.0, 1.05, 60, 90), Note(1.04, 1.6, 62, 90)]  # one sixteenth slot: the longer note stays
    assert [(n.start, n.pitch) for n in on_grid(crowded, beats)] == [(1.0, 62)]


def test_the_lead_stays_on_the_grid_after_an_early_cut_and_the_score_keeps_one_voice(tmp_path) -> None:
    """A cut 0.2 s in could not be bent onto a beat; the learned line started its rhythm there and kept it:
    45 of 81 lead onsets off every sixteenth and triplet, and 10 chords in the score's solo line."""
    import music21
    import pretty_midi

    import composer

    t = np.arange(0.5, 9.7, 1.0)
    arc = EmotionArc.from_va(t, np.full(t.size, -0.8), np.full(t.size, 0.95))
    piece = composer.compose(arc, cuts=[0.2, 3.333], duration=9.7, style="cinematic", seed=1)
    pm = pretty_midi.PrettyMIDI(str(piece.write_midi(tmp_path / "cue.mid")))
    for name in ("lead", "counter"):
        part = next(i for i in pm.instruments if i.name == name)
        q = np.array([pm.time_to_tick(n.start) / pm.resolution for n in part.notes
                      if min(abs(n.start - c) for c in piece.plan.cuts) > 0.03])
        off = np.minimum(np.abs(q * 4 - np.round(q * 4)) / 4, np.abs(q * 3 - np.round(q * 3)) / 3) > 0.01
        assert q.size > (20 if name == "lead" else 5) and off.sum() == 0, (name, q[off][:5])
    score = music21.converter.parse(str(piece.write_musicxml(tmp_path / "cue.musicxml")))
    assert not [n for n in score.parts[0].flatten().notes if len(n.pitches) > 1]  # the lead is one line


def test_every_part_lies_in_its_instruments_range() -> None:
    """The source set the lead's register whatever the instrument: a tuba was handed A5 (81) and a piccolo
    B3 (59). A part already inside its range is not moved."""
    from composer.music.ranges import playable_range

    t = np.arange(0.5, 15, 1.0)
    arc = EmotionArc.from_va(t, np.linspace(-0.8, 0.8, t.size), np.linspace(-0.9, 0.95, t.size))
    leads = {}
    for instrument in ("tuba", "piccolo", "violin", "contrabass"):
        piece = compose(arc, cuts=[5.0, 10.0], duration=15, style="cinematic", instrument=instrument, seed=2)
        for part in piece.parts:
            if part.notes and not part.is_drum:
                low, high = playable_range(part.program)
                assert all(low <= n.pitch <= high for n in part.notes), (instrument, part.name)
        leads[instrument] = [n.pitch for n in piece.parts[0].notes]
    assert playable_range(40) == (55, 100) and min(leads["violin"]) >= 55
    assert np.median(leads["tuba"]) < np.median(leads["violin"]) < np.median(leads["piccolo"])
    assert [p % 12 for p in leads["tuba"]] == [p % 12 for p in leads["violin"]]  # moved by octaves: the same line


def _sounding_top(piece, parts) -> tuple[np.ndarray, np.ndarray]:
    """The lead's pitch and the top pitch of ``parts`` (-1: silent) at 20 ms steps."""
    t = np.arange(0, piece.duration, 0.02)

    def top(notes) -> np.ndarray:
        out = np.full(t.size, -1)
        for n in notes:
            on = (t >= n.start) & (t < n.end)
            out[on] = np.maximum(out[on], n.pitch)
        return out

    return top(piece.parts[0].notes), top([n for p in parts for n in p.notes])


def _accompaniment(piece, *, bass: bool = True) -> list:
    return [p for p in piece.parts[1:] if not p.is_drum and (bass or p.name != "bass")]


def _top_above_lead(piece) -> float:
    """Share of the lead's sounding time in which another pitched part's top note is above it."""
    lead, rest = _sounding_top(piece, _accompaniment(piece))
    return float(np.mean(rest[lead >= 0] > lead[lead >= 0]))


def _masking(piece) -> float:
    """Share of the lead's sounding time in which an accompanying note (the bass aside) lies above the lead
    by less than an octave, or above a lead at middle C or higher."""
    t = np.arange(0, piece.duration, 0.02)
    lead, _ = _sounding_top(piece, [])
    bad = np.zeros(t.size, bool)
    for n in (n for p in _accompaniment(piece, bass=False) for n in p.notes):
        on = (t >= n.start) & (t < n.end) & (lead >= 0)
        bad[on] |= (n.pitch > lead[on]) & ((n.pitch < lead[on] + 12) | (lead[on] >= 60))
    return float(np.mean(bad[lead >= 0]))


@pytest.mark.parametrize(
    ("style", "instrument"),
    [("celtic", None), ("celtic", "cello"), ("cinematic", "tuba"), ("ambient", "bassoon"), ("indian_raga", "trombone")],
)
def test_the_accompaniment_sits_under_the_lead(style, instrument) -> None:
    """Celtic's pad and counter, and every layer under a low lead (cello, bassoon, trombone, tuba), sat above
    the melody for 25-100 % of its time: the lead was not the top voice. Layers move by octaves under it (or,
    under a lead below middle C, an octave clear above it), stay in their instruments' ranges, and are thinned
    only where the instrument cannot go there."""
    from composer.music.ranges import playable_range

    t = grid(24.0, 0.5)
    arc = EmotionArc.from_va(t, np.linspace(-0.5, 0.6, t.size), np.linspace(-0.8, 0.8, t.size))
    piece = compose(arc, (6.0, 13.0), 24.0, style=style, instrument=instrument, seed=4, source="rules")
    assert _masking(piece) == 0.0
    if min(n.pitch for n in piece.parts[0].notes) >= 60:
        assert _top_above_lead(piece) == 0.0
    for part in piece.parts[1:]:
        low, high = playable_range(part.program)
        assert part.is_drum or all(low <= n.pitch <= high for n in part.notes), part.name
    assert sum(len(p.notes) for p in piece.parts[1:] if not p.is_drum) > len(piece.parts[0].notes)


def _close_below_c3(piece) -> float:
    """Share of adjacent pairs of sounding accompaniment pitches (at 100 ms steps) that are both under C3
    (MIDI 48) and less than a fifth apart: close low voicing, heard as mud."""
    close = pairs = 0
    for x in np.arange(0.05, piece.duration, 0.1):
        ps = sorted({n.pitch for p in _accompaniment(piece) for n in p.notes if n.start <= x < n.end})
        pairs += len(ps) - 1 if ps else 0
        close += sum(b < 48 and b - a < 7 for a, b in itertools.pairwise(ps))
    return close / max(pairs, 1)


@pytest.mark.parametrize("instrument", ["tuba", "contrabass"])
def test_a_low_lead_keeps_the_band_out_of_the_mud(instrument) -> None:
    """Under a tuba or double-bass tune every layer was pushed under the lead note by note: 26-44 % of close
    accompaniment intervals lay under C3, the counter-line kept 79 of 282 notes and brass 1 of 18 (42 cues).
    The layers go an octave clear above such a lead instead, whole chords at a time."""
    t = grid(24.0, 0.5)
    arc = EmotionArc.from_va(t, np.linspace(-0.5, 0.6, t.size), np.linspace(-0.8, 0.8, t.size))
    low = compose(arc, (6.0, 13.0), 24.0, style="cinematic", instrument=instrument, seed=1, source="rules")
    high = compose(arc, (6.0, 13.0), 24.0, style="cinematic", instrument="flute", seed=1, source="rules")
    assert _close_below_c3(low) < 0.05
    assert _masking(low) == 0.0
    kept = {p.name: len(p.notes) for p in low.parts}
    for part in high.parts[1:]:
        if part.name in ("pad", "arpeggio", "counter"):
            assert kept.get(part.name, 0) >= 0.8 * len(part.notes), part.name


def test_under_moves_a_note_down_by_octaves_below_the_lead_or_leaves_it_out() -> None:
    from composer.music.notes import Note
    from composer.music.ranges import under

    lead = [Note(0.0, 1.0, 65, 80), Note(1.0, 2.0, 60, 80)]
    pad = [Note(0.0, 1.0, 77, 50), Note(0.5, 1.5, 62, 50), Note(0.0, 0.9, 64, 50), Note(2.0, 3.0, 90, 50)]
    # one phrase moves as one: 77 -> 65 (unison), 62 -> 50 under 60, 64 -> 52 with them; 90 is past the lead
    assert [n.pitch for n in under(pad, lead, 48, (2.0,))] == [52, 65, 50, 90]
    # a flute (60-96) cannot take the phrase down: it stays, and the two notes above the lead are left out
    assert [n.pitch for n in under(pad, lead, 73, (2.0,))] == [64, 90]
    # under a low lead (a tuba's A2) the chord goes an octave clear above it, whole
    chord = [Note(0.0, 2.0, p, 50) for p in (52, 55, 60)]
    assert [n.pitch for n in under(chord, [Note(0.0, 2.0, 45, 80)], 48)] == [64, 67, 72]


def _onsets(piece, name: str) -> dict[float, int]:
    """Each onset of part ``name`` and its top pitch."""
    tops: dict[float, int] = {}
    for n in next((p.notes for p in piece.parts if p.name == name), ()):
        tops[n.start] = max(tops.get(n.start, 0), n.pitch)
    return tops


def _leaps_within_scenes(piece, name: str, written: dict[float, int] | None = None) -> int:
    """Leaps of an octave or more between consecutive onsets of part ``name`` with no cut between them;
    given the ``written`` line's onsets, only between onsets that follow each other there too (a leap
    across notes left out where they did not fit is thinning, not an octave move)."""
    tops = _onsets(piece, name)
    order = {t: k for k, t in enumerate(sorted(written if written is not None else tops))}
    return sum(
        abs(tops[b] - tops[a]) >= 12 and not any(a < c <= b for c in piece.plan.cuts) and order[b] == order[a] + 1
        for a, b in itertools.pairwise(sorted(tops))
    )


@pytest.mark.parametrize("instrument", ["cello", "bassoon", "tuba"])
def test_layers_change_octave_only_at_cuts(instrument, monkeypatch) -> None:
    """Placing each chord span on its own under a low lead made arpeggios and counter-lines leap an octave
    mid-scene where the written line did not (252 cues: arpeggio 110 leaps, counter 24; the written lines 42
    and 0). A scene, cut to cut, moves by one octave shift, so no leap appears that the source did not write."""
    import composer.music.arranger as arranger

    t = grid(30.0, 0.5)
    arc = EmotionArc.from_va(t, np.linspace(-0.5, 0.6, t.size), np.linspace(-0.8, 0.8, t.size))
    cues = [(style, seed) for style in ("cinematic", "arabic_maqam", "celtic", "indian_raga") for seed in (1, 2)]

    def pieces() -> list:
        return [compose(arc, (9.0, 19.0), 30.0, style=s, instrument=instrument, seed=k, source="rules")
                for s, k in cues]

    placed = pieces()
    monkeypatch.setattr(arranger, "under", lambda notes, *_: tuple(notes))
    written = pieces()
    names = ("arpeggio", "counter")
    moved = sum(_leaps_within_scenes(p, n, _onsets(w, n)) for p, w in zip(placed, written, strict=True) for n in names)
    assert moved <= sum(_leaps_within_scenes(w, n) for w in written for n in names)


def test_a_calm_dark_piano_cue_reads_minor() -> None:
    """A calm piano arpeggio (no pad: it alone carries the chords) stepped its pattern by beats, as drone
    styles need, and a calm dark cue's notes read neither major nor minor (key-profile score +0.02 over
    4 cues; -0.38 on the pattern's strong steps)."""
    from analysis.music.symbolic import midi_features

    t = grid(24.0, 0.5)
    arc = EmotionArc.from_va(t, np.full(t.size, -0.5), np.full(t.size, -0.6))
    modes = [
        float(np.nanmean(midi_features(compose(arc, (6.0, 13.0, 19.0), 24.0, style="piano_solo", instrument=lead,
                                               seed=seed, source="rules").midi).mode))
        for seed in (1, 2) for lead in (None, "cello")
    ]
    assert np.mean(modes) < -0.2


@pytest.mark.parametrize("style", ["cinematic", "celtic", "piano_solo"])
def test_a_calm_dark_cue_with_cuts_reads_clearly_minor(style: str) -> None:
    """A dark cut moves i -> VII (no tone kept) and the VII's 6 s read the relative major: calm dark
    cinematic cues read -0.31 (key-profile mode, 6 cues), Celtic's bare tonic-fifth drone -0.33 and a piano
    -0.33. The key's tonic under a dark chord that lacks it (a beat late on a cut), the minor third in a
    drone under a chord that holds it, and a calm piano hand sounding the tonic read -0.39, -0.54, -0.54
    (the worst cues -0.02, -0.16, -0.19 before; -0.22, -0.27, -0.39 after)."""
    from analysis.music.symbolic import midi_features

    t = grid(24.0, 0.5)
    arc = EmotionArc.from_va(t, np.full(t.size, -0.5), np.full(t.size, -0.6))
    modes = [float(np.nanmean(midi_features(compose(arc, (6.0, 13.0, 19.0), 24.0, style=style, seed=seed,
                                                    source="rules").midi).mode)) for seed in range(6)]
    assert np.mean(modes) < -0.33
    assert max(modes) < -0.2


@pytest.mark.parametrize("style", ["indian_raga", "celtic", "cinematic"])
def test_no_pad_tone_holds_across_a_cut_that_changes_the_chord(style: str) -> None:
    """A drone held tonic and fifth straight across every cut (2.25 of a cut's sounding tones held, 2.1
    changed, over 16 raga cuts), so the change the plan puts on the cut was masked. Tones sounding on both
    sides now breathe and are struck again on the cut; the drone still keeps the tonic, as its style wants."""
    t = grid(30.0, 0.5)
    arc = EmotionArc.from_va(t, np.linspace(0.3, -0.4, t.size), np.full(t.size, -0.5))
    for seed in (0, 1):
        piece = compose(arc, (5.0, 11.0, 17.0, 23.0), 30.0, style=style, seed=seed, source="rules")
        pad = next(p.notes for p in piece.parts if p.name == "pad")
        chords = piece.plan.chords
        changes = [b.start for a, b in itertools.pairwise(chords) if b.cut and set(a.pitches) != set(b.pitches)]
        assert len(changes) >= 3
        for c in changes:
            before = {n.pitch for n in pad if n.start < c and n.end > c - 0.04}
            after = {n.pitch for n in pad if n.start <= c + 0.04 and n.end > c}
            assert after and not before & after, c
        if get_style(style).drone:
            tonic = piece.plan.tonic % 12
            sounding = [any(n.start <= x < n.end and n.pitch % 12 == tonic for n in pad) for x in np.arange(0, 30, 0.1)]
            assert np.mean(sounding) > 0.9


@pytest.mark.parametrize(
    ("style", "seed"), [("ambient", 1), ("indian_raga", 1), ("celtic", 2)]
)
def test_notes_where_the_lead_rests_stay_in_the_instruments_range(style, seed) -> None:
    """A scene moved down an octave under the lead took the notes where the lead rests with it, past the
    instrument's range: a celesta's G#3 (range C4 up), a koto's F3 (G3 up), a flute counter-line's G3
    (28 notes in 588 cues of every style)."""
    from composer.music.ranges import playable_range

    t = grid(40.0, 0.5)
    arc = EmotionArc.from_va(t, np.where(t < 20, -0.6, 0.6), np.full(t.size, 0.1))  # a valence turn mid-cue
    cuts = (3.0, 8.0, 12.0, 20.0, 24.0, 29.0)
    piece = compose(arc, cuts, 40.0, style=style, seed=seed, source="rules")
    outside = [(p.name, n.start, n.pitch, playable_range(p.program)) for p in piece.parts if not p.is_drum
               for n in p.notes if not playable_range(p.program)[0] <= n.pitch <= playable_range(p.program)[1]]
    assert outside == []
    assert sum(len(p.notes) for p in piece.parts[1:] if not p.is_drum) > len(piece.parts[0].notes)
