"""Harmony planner: chord on every cut, tempo map landing cuts on beats, phrases, mode from valence."""

from __future__ import annotations

import numpy as np
import pytest

from analysis.arc import EmotionArc, grid
from analysis.errors import ParameterError
from analysis.music.symbolic import bar_va
from composer import compose
from composer.music.harmony import base_tempo, build_chord, chord_symbol, phrase_starts, plan_harmony, tempo_map
from composer.music.styles import STYLES, get_style

CINEMATIC = get_style("cinematic")


def _arc(duration: float, valence, arousal, hop: float = 0.5) -> EmotionArc:
    t = grid(duration, hop)
    v = np.interp(t, np.linspace(0, duration, len(valence)), valence)
    a = np.interp(t, np.linspace(0, duration, len(arousal)), arousal)
    return EmotionArc.from_va(t, v, a)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_every_cut_starts_a_different_chord(seed: int) -> None:
    rng = np.random.default_rng(seed)
    cuts = np.sort(rng.uniform(0.5, 39.5, 12))
    cuts = np.append(cuts, cuts[3] + 0.12)  # two cuts a fraction of a beat apart
    arc = _arc(40, [0.6, -0.7, 0.2], [-0.6, 0.8, 0.0])
    plan = plan_harmony(arc, cuts, 40.0, style=CINEMATIC, seed=seed)
    starts = np.array(plan.chord_times)
    for c in cuts:
        i = int(np.argmin(np.abs(starts - c)))
        assert abs(starts[i] - c) <= 0.1
        assert i > 0
        before, at = plan.chords[i - 1], plan.chords[i]
        assert set(before.pitches) != set(at.pitches) or before.root != at.root
    assert plan.chords[0].start == 0.0
    assert all(a.end == pytest.approx(b.start) for a, b in zip(plan.chords, plan.chords[1:], strict=False))
    assert plan.chords[-1].end == pytest.approx(40.0)


@pytest.mark.parametrize("valence", [0.6, 0.0, -0.6])
def test_a_cut_changes_at_least_two_tones(valence: float) -> None:
    """On a cut the new chord keeps at most one pitch class of the old (I -> IV, V, ii, not I -> vi),
    and, below a bright valence, none where the style's weights allow it (I -> ii, IV -> V, V -> vi), so
    the change is heard; between cuts the planner still moves by thirds. (A bright cut draws a major chord
    first: see test_a_bright_cue_cut_every_few_seconds_stays_major.)"""
    rng = np.random.default_rng(7)
    cuts = np.cumsum(rng.uniform(3.0, 8.0, 30))
    cuts = cuts[cuts < 118.0]
    arc = EmotionArc.constant(120.0, valence=valence, arousal=0.3)
    shared_at_cuts, shared_elsewhere = [], []
    for seed in range(4):
        plan = plan_harmony(arc, cuts, 120.0, style=CINEMATIC, seed=seed)
        for before, at in zip(plan.chords, plan.chords[1:], strict=False):
            (shared_at_cuts if at.cut else shared_elsewhere).append(len(set(before.pitches) & set(at.pitches)))
    assert len(shared_at_cuts) >= 4 * (cuts.size - 2)
    assert max(shared_at_cuts) <= 1
    if valence <= 0.0:  # 0.76 / 0.61 here; 0.29 / 0.28 when any chord keeping one tone would do
        assert np.mean(np.array(shared_at_cuts) == 0) >= 0.4
    assert max(shared_elsewhere) >= 2


def test_tempo_map_puts_beats_on_cuts_by_hand() -> None:
    # base 120 bpm: 2.0 s = 4 beats exactly; 2.1 s more = 4.2 beats -> 4 beats at 114.29 bpm;
    # a cut 0.1 s later would need a tempo far beyond the 12 % bend: left off the grid.
    tmap, beats = tempo_map([2.0, 4.1, 4.2], 8.0, 120.0)
    assert tmap[0] == (0.0, pytest.approx(120.0))
    assert tmap[1] == (2.0, pytest.approx(4 * 60 / 2.1))
    assert np.min(np.abs(beats - 2.0)) < 1e-9
    assert np.min(np.abs(beats - 4.1)) < 1e-9
    assert np.min(np.abs(beats - 4.2)) > 0.09
    assert np.all(np.diff(beats) > 0) and beats[-1] < 8.0


def test_plan_reports_shift_per_cut() -> None:
    arc = EmotionArc.constant(12.0, 0.2, 0.0)
    plan = plan_harmony(arc, [3.0, 6.1, 6.25, 9.0], 12.0, style=CINEMATIC)
    assert len(plan.cut_shifts) == 4
    shifts = np.abs(plan.cut_shifts)
    assert shifts[0] < 1e-6 and shifts[1] < 1e-6 and shifts[3] < 1e-6
    assert shifts[2] > 0.05  # 0.15 s after the previous cut: not on a beat, but reported
    bpms = np.array([b for _, b in plan.tempo_map])
    assert np.all(np.abs(bpms / plan.base_tempo - 1) <= 0.12 + 1e-9)


def test_tempo_rises_with_arousal_and_cut_rate() -> None:
    assert base_tempo(-0.8, 0, CINEMATIC) < base_tempo(0.0, 0, CINEMATIC) < base_tempo(0.8, 0, CINEMATIC)
    assert base_tempo(0.0, 30, CINEMATIC) > base_tempo(0.0, 0, CINEMATIC)
    assert base_tempo(0.0, 0, get_style("ambient")) < base_tempo(0.0, 0, CINEMATIC)


def test_harmonic_rhythm_follows_arousal() -> None:
    calm = plan_harmony(EmotionArc.constant(30, 0.3, -0.8), (), 30.0, style=CINEMATIC)
    intense = plan_harmony(EmotionArc.constant(30, 0.3, 0.8), (), 30.0, style=CINEMATIC)
    calm_beats = np.median(np.diff(calm.chord_times)) * calm.base_tempo / 60
    intense_beats = np.median(np.diff(intense.chord_times)) * intense.base_tempo / 60
    assert calm_beats == pytest.approx(8, abs=0.01)
    assert intense_beats == pytest.approx(2, abs=0.01)


def test_mode_follows_valence() -> None:
    happy = plan_harmony(EmotionArc.constant(30, 0.7, 0.0), (), 30.0, style=CINEMATIC, seed=4)
    sad = plan_harmony(EmotionArc.constant(30, -0.7, 0.0), (), 30.0, style=CINEMATIC, seed=4)
    assert {c.mood for c in happy.chords} == {"bright"}
    assert {c.mood for c in sad.chords} == {"tense"}  # very low valence: tension chords with sevenths
    assert all(len(c.pitches) == (3 if c.degree == 0 else 4) for c in sad.chords)  # sevenths off the tonic
    falling = plan_harmony(_arc(30, [0.3, 0.3, -0.5, -0.5], [0, 0]), (), 30.0, style=CINEMATIC)
    assert falling.chord_at(15.0).mood == "tense"  # valence falls by 0.08 per second from 10 to 20 s
    assert falling.chords[0].mood == "bright"


def test_phrases_start_at_the_biggest_turn() -> None:
    arc = _arc(60, [-0.6, 0.8, -0.6], [0, 0, 0])  # valence turns at 30 s
    starts = phrase_starts(arc, 60.0)
    assert starts[0] == 0.0
    assert any(abs(s - 30) < 2 for s in starts[1:])
    plan = plan_harmony(arc, (), 60.0, style=CINEMATIC)
    turn = min(plan.phrases[1:], key=lambda p: abs(p - 30))
    assert plan.chord_at(turn).degree == 0  # a phrase returns to the tonic


def test_chord_building_by_hand() -> None:
    c_major = (0, 2, 4, 5, 7, 9, 11)
    assert build_chord(c_major, 0, seventh=False, ninth=False) == (0, 4, 7)
    assert build_chord(c_major, 4, seventh=True, ninth=False) == (7, 11, 2, 5)
    assert chord_symbol(7, (7, 11, 2, 5)) == "G7"
    assert chord_symbol(11, (11, 2, 5)) == "Bdim"
    assert chord_symbol(9, (9, 0, 4)) == "Am"


@pytest.mark.parametrize("name", sorted(STYLES))
def test_chords_use_only_their_scale(name: str) -> None:
    style = STYLES[name]
    plan = plan_harmony(_arc(40, [0.8, -0.8, 0.1], [-0.5, 0.7]), [5.0, 13.3, 22.0], 40.0, style=style, seed=1)
    for c in plan.chords:
        assert set(c.pitches) <= set(c.scale)
        assert c.scale == style.scale(c.mood)


def test_bad_parameters_are_named() -> None:
    arc = EmotionArc.constant(5, 0, 0)
    with pytest.raises(ParameterError, match="duration"):
        plan_harmony(arc, (), 0.0, style=CINEMATIC)
    with pytest.raises(ParameterError, match="tempo"):
        plan_harmony(arc, (), 5.0, style=CINEMATIC, tempo=500)
    with pytest.raises(ParameterError, match="energy"):
        plan_harmony(arc, (), 5.0, style=CINEMATIC, energy=3)


@pytest.mark.parametrize("name", sorted(STYLES))
@pytest.mark.parametrize("end_valence", [-0.7, 0.6])
def test_the_piece_ends_on_its_tonic_in_the_mode_of_its_end(name: str, end_valence: float) -> None:
    style = get_style(name)
    arc = _arc(30, [-end_valence, 0.0, end_valence], [0.2, 0.5, 0.1])
    for seed in range(4):
        cuts = np.sort(np.random.default_rng(seed).uniform(2.0, 27.0, 5))
        plan = plan_harmony(arc, cuts, 30.0, style=style, seed=seed)
        last = plan.chords[-1]
        assert last.root == plan.tonic, (name, seed, [c.symbol for c in plan.chords[-3:]])
        assert (last.mood == "bright") == (end_valence > 0), (name, seed, last.mood)
        third = {(last.root + 3) % 12, (last.root + 4) % 12} & set(last.scale)  # the mode's own third
        if len(last.scale) == 7 and len(third) == 1:  # pentatonic chords stack scale steps, not thirds
            assert third <= set(last.pitches), (name, seed, last.symbol)
        assert last.end - last.start >= 60.0 / plan.base_tempo - 1e-6  # a beat at least, to be heard


def test_a_last_cut_keeps_the_cut_rule_and_comes_home_when_it_can() -> None:
    """A last chord on a cut comes home unless the tonic would keep two tones of the chord before."""
    home = 0
    for valence in (0.5, -0.3):
        arc = EmotionArc.constant(20.0, valence=valence, arousal=0.0)
        for seed in range(8):
            plan = plan_harmony(arc, [18.0], 20.0, style=CINEMATIC, seed=seed)
            before, at = plan.chords[-2:]
            assert at.cut and at.start == pytest.approx(18.0, abs=0.1)
            assert len(set(before.pitches) & set(at.pitches)) <= 1  # the cut is heard
            triad = build_chord(at.scale, at.scale.index(plan.tonic), seventh=False, ninth=False)
            if before.root != plan.tonic and len(set(triad) & set(before.pitches)) <= 1:
                assert at.root == plan.tonic, (before.symbol, at.symbol)  # home whenever it can be
                home += 1
    assert home >= 12  # (A -> D at a cut: the add9 would keep two tones, the triad keeps one)


def test_a_bright_calm_cue_holds_no_cluster_or_diminished_chord() -> None:
    """A bright ambient plan took the Lydian fourth degree, a diminished triad, and added its ninth: a
    minor second and two tritones held for 8 s in a calm, happy cue (4 of 6 seeds)."""
    arc = EmotionArc.constant(30.0, valence=0.6, arousal=-0.6)
    for style in ("ambient", "cinematic", "piano_solo"):
        for seed in range(6):
            for chord in plan_harmony(arc, (), 30.0, style=get_style(style), seed=seed).chords:
                pcs = sorted({p % 12 for p in chord.pitches})
                steps = {(b - a) % 12 for a in pcs for b in pcs if a != b}
                assert not steps & {1, 6, 11}, (style, seed, chord.symbol)


def test_grief_is_dark_and_threat_is_tense() -> None:
    """Below valence -0.5 every chord was ``tense``, whatever the arousal: a calm sad cue alternated its minor
    tonic with diminished sevenths."""
    moods = {}
    for arousal in (-0.6, 0.8):
        arc = EmotionArc.constant(15.0, valence=-0.6, arousal=arousal)
        plans = [plan_harmony(arc, (3.0, 6.0, 9.0, 12.0), 15.0, style=get_style("cinematic"), seed=s) for s in range(4)]
        moods[arousal] = {c.mood for p in plans for c in p.chords}
        symbols = [c.symbol for p in plans for c in p.chords]
        if arousal < 0:
            assert not any("dim7" in s for s in symbols), symbols  # a ii° may pass; no diminished sevenths
    assert moods == {-0.6: {"dark"}, 0.8: {"tense"}}


def test_cuts_at_the_very_ends_are_the_opening_and_the_ending() -> None:
    """A cut 0.1 s in struck every part twice, and one 0.2 s before the end left the cue off its tonic (on a
    diminished seventh inside the fade)."""
    arc = EmotionArc.constant(15.0, valence=-0.2, arousal=0.9)
    for seed in range(4):
        plan = plan_harmony(arc, (0.1, 7.5, 14.8), 15.0, style=get_style("cinematic"), seed=seed)
        assert plan.cuts == (7.5,)
        assert plan.chords[0].start == 0.0 and plan.chords[1].start > 0.3
        assert plan.chords[-1].root == plan.tonic and plan.chords[-1].end == 15.0


def test_a_bright_cue_cut_every_few_seconds_stays_major() -> None:
    """A cut took a chord keeping no tone of the one before, and in a major key those are mostly minor
    (I -> ii, V -> vi): a happy, energetic cue cut every 2-4 s read minor. A bright cut now draws a major
    chord keeping no tone (IV -> V, ii -> I), then one moving the bass a fourth or fifth keeping one
    (I -> IV, V), before the rest. The composed notes are read as the evaluation reads them
    (Krumhansl-Kessler major minus minor per bar, over 8 s)."""
    arc = EmotionArc.constant(30.0, valence=0.6, arousal=0.5)
    modes = []
    for style in ("cinematic", "piano_solo", "ambient"):
        major = []
        for seed in range(4):
            cuts = np.cumsum(np.random.default_rng(seed).uniform(2.0, 4.0, 14))
            piece = compose(arc, tuple(cuts[cuts < 29.0]), 30.0, style=style, seed=seed, source="rules")
            for before, at in zip(piece.plan.chords, piece.plan.chords[1:], strict=False):
                if at.cut:
                    assert len(set(before.pitches) & set(at.pitches)) <= 1  # the change is still heard
                    major.append({(p - at.root) % 12 for p in at.pitches} >= {4, 7})
            modes.append(float(np.mean(bar_va(piece.midi).features.mode)))
        assert np.mean(major) >= 0.9, style  # 0.5 when a cut drew a no-tone chord first, whatever its colour
    assert np.mean(modes) >= 0.62, modes  # 0.57 then (cinematic 0.79, piano_solo 0.57, ambient 0.35); 0.67 now


def test_a_pentatonic_chord_holds_its_third() -> None:
    """Every other step of a pentatonic scale is mostly a fourth: G minor pentatonic's tonic was G-C-F
    and its fifth degree D-G-C (which reads G major). A degree with a third takes it, with its fifth or
    else its minor seventh; one without keeps the quartal stack."""
    minor_pent, major_pent = (0, 3, 5, 7, 10), (0, 2, 4, 7, 9)
    assert build_chord(minor_pent, 0, seventh=False, ninth=False) == (0, 3, 7)
    assert build_chord(minor_pent, 3, seventh=False, ninth=False) == (7, 10, 5)  # v: D-F-C over G
    assert build_chord(minor_pent, 2, seventh=False, ninth=False) == (5, 10, 3)  # no third: quartal
    assert build_chord(major_pent, 0, seventh=False, ninth=False) == (0, 4, 7)
    assert build_chord(major_pent, 0, seventh=False, ninth=True) == (0, 4, 7, 2)


def _cue_modes(style: str, valence: float, arousal: float, seeds: range) -> list[float]:
    """Mean key-profile mode (+1 major, -1 minor) of composed cues, read over 8 s windows."""
    from analysis.music.symbolic import midi_features

    modes = []
    for seed in seeds:
        arc = EmotionArc.constant(32.0, valence=valence, arousal=arousal)
        cuts = tuple(np.arange(5.0 + seed % 3, 30.0, 7.0))
        piece = compose(arc, cuts, 32.0, style=style, seed=seed, source="rules")
        modes.append(float(np.nanmean(midi_features(piece.midi).mode)))
    return modes


def test_west_african_dark_cues_read_minor_and_bright_ones_major() -> None:
    """A major pentatonic and its relative minor are one pitch set, so only the chords carry the mode:
    quartal chords and Bb-D-F over a G minor pentatonic read the relative major, and calm dark cues
    read major (+0.54 mean over 6 seeds, 6 of 6 major)."""
    dark = _cue_modes("west_african", -0.6, -0.5, range(1, 5))
    assert np.mean(dark) < -0.15, dark
    assert np.mean(_cue_modes("west_african", 0.6, 0.5, range(1, 5))) > 0.3


def test_a_calm_dark_ambient_cue_reads_minor() -> None:
    """Each cut of a calm dark ambient cue went i -> VII (the chord keeping no tone) and held the major
    chord for a key-reading window (-0.14 mean over 6 seeds, 2 of 6 major); it now moves i -> iv, v."""
    dark = _cue_modes("ambient", -0.6, -0.5, range(1, 5))
    assert np.mean(dark) < -0.4 and max(dark) < 0, dark


def _turn_to_bright() -> tuple[EmotionArc, tuple[float, ...]]:
    """40 s: valence -0.6 for 20 s, then +0.6, arousal 0.1; cuts on both sides and on the turn."""
    t = grid(40.0, 0.5)
    arc = EmotionArc.from_va(t, np.where(t < 20.0, -0.6, 0.6), np.full(t.size, 0.1))
    return arc, (3.0, 8.0, 12.0, 20.0, 24.0, 29.0)


@pytest.mark.parametrize("style", ["cinematic", "piano_solo", "celtic"])
def test_a_span_turning_bright_opens_on_a_major_chord(style: str) -> None:
    """The cut on a turn from dark to bright drew the chord keeping no tone of the dark chord before, which
    after Bbmaj7 in D is Em (ii): the bright section opened Em Dadd9 G Bm and its first 8 s read minor. It
    now opens on the tonic, or where the tonic would keep two tones at the cut, on another major chord."""
    arc, cuts = _turn_to_bright()
    for seed in range(4):
        plan = plan_harmony(arc, cuts, 40.0, style=style, seed=seed)
        i = next(i for i, c in enumerate(plan.chords) if c.mood == "bright" and c.start >= 19.0)
        before, first = plan.chords[i - 1], plan.chords[i]
        assert before.mood != "bright" and first.cut and first.start == pytest.approx(20.0, abs=0.1)
        assert {(p - first.root) % 12 for p in first.pitches} >= {4, 7}, (seed, before.symbol, first.symbol)
        assert len(set(before.pitches) & set(first.pitches)) <= 1  # the cut rule still holds
        tonic = build_chord(first.scale, first.scale.index(plan.tonic), seventh=False, ninth=False)
        if before.root != plan.tonic and len(set(tonic) & set(before.pitches)) <= 1:
            assert first.root == plan.tonic, (seed, before.symbol, first.symbol)


@pytest.mark.parametrize("style", ["cinematic", "arabic_maqam", "celtic"])
def test_a_calm_dark_plan_stays_on_minor_chords_and_returns_to_its_tonic(style: str) -> None:
    """Each cut of a calm dark cue drew the chord keeping no tone of the one before (i -> VII, iv -> III) and
    held it for a whole calm chord: a cinematic cue played F Am Bb C Bb from 7 to 28 s in D minor (minor
    chords 0.48 of the time at seed 0) and read major from 4 to 24 s. A calm dark cut now moves among the
    minor chords (i -> iv, v), as ambient's did, with VI and VII left as colour between cuts."""
    arc = EmotionArc.constant(40.0, valence=-0.6, arousal=-0.6)
    for seed in range(6):
        cuts = tuple(np.arange(7.0 + seed % 3, 39.0, 7.0))
        plan = plan_harmony(arc, cuts, 40.0, style=style, seed=seed)
        minor = sum(c.end - c.start for c in plan.chords if {(p - c.root) % 12 for p in c.pitches[:3]} == {0, 3, 7})
        assert minor / 40.0 >= 0.8, (seed, [c.symbol for c in plan.chords])  # 0.87-0.98 now
        tonics = [i for i, c in enumerate(plan.chords) if c.root == plan.tonic]
        assert max(np.diff([-1, *tonics, len(plan.chords)])) <= 4, [c.symbol for c in plan.chords]
        pairs = zip(plan.chords, plan.chords[1:], strict=False)
        assert all(len(set(a.pitches) & set(b.pitches)) <= 1 for a, b in pairs if b.cut)  # the cut rule holds
