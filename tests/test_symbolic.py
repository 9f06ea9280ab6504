"""Symbolic estimator: hand-checked MIDI built in memory, plus a Bach chorale from the music21 corpus."""

from __future__ import annotations

import time

import numpy as np
import pretty_midi
import pytest

from analysis.errors import ParameterError
from analysis.music.symbolic import bar_va, estimate_key, key_from_chroma, midi_arc, midi_features, score_to_midi


def _midi(events: list[tuple[float, float, list[int], int]], *, program: int = 0, bpm: float = 120.0):
    """PrettyMIDI from (start, end, pitches, velocity) chords."""
    pm = pretty_midi.PrettyMIDI(initial_tempo=bpm)
    inst = pretty_midi.Instrument(program=program)
    for start, end, pitches, vel in events:
        inst.notes.extend(pretty_midi.Note(velocity=vel, pitch=p, start=start, end=end) for p in pitches)
    pm.instruments.append(inst)
    return pm


def _chords(chords: list[list[int]], *, beat: float, vel: int, reps: int = 4) -> list:
    seq = [c for _ in range(reps) for c in chords]
    return [(i * beat, (i + 1) * beat, c, vel) for i, c in enumerate(seq)]


C_MAJOR = [[60, 64, 67], [65, 69, 72], [67, 71, 74], [60, 64, 67]]  # I IV V I
C_MINOR_TENSE = [[60, 63, 67], [62, 65, 68], [59, 62, 65, 68], [60, 61, 63, 67]]  # i, ii°, vii°7, i + m2 cluster


def test_major_consonant_has_higher_valence_than_minor_tense():
    major = midi_arc(_midi(_chords(C_MAJOR, beat=0.5, vel=80)))
    minor = midi_arc(_midi(_chords(C_MINOR_TENSE, beat=0.5, vel=80)))
    assert major.valence.mean() > 0.4
    assert minor.valence.mean() < -0.2
    # the same notes density/dynamics: arousal should be close
    assert abs(major.arousal.mean() - minor.arousal.mean()) < 0.15
    fmaj = midi_features(_midi(_chords(C_MAJOR, beat=0.5, vel=80)))
    fmin = midi_features(_midi(_chords(C_MINOR_TENSE, beat=0.5, vel=80)))
    assert np.nanmean(fmaj.consonance) > np.nanmean(fmin.consonance) + 0.1
    assert fmaj.mode.mean() > 0.5 > -0.5 > fmin.mode.mean()


def test_dense_fast_loud_has_higher_arousal_than_sparse_slow_soft():
    melody = [60, 62, 64, 65, 67, 65, 64, 62]
    calm = _midi([(i * 1.5, i * 1.5 + 1.4, [p], 35) for i, p in enumerate(melody * 2)], bpm=60)
    busy = _midi([(i * 0.125, i * 0.125 + 0.08, [p + 12], 115) for i, p in enumerate(melody * 12)], bpm=160)
    a_calm, a_busy = midi_arc(calm).arousal.mean(), midi_arc(busy).arousal.mean()
    assert a_calm < -0.5
    assert a_busy > 0.5
    f = midi_features(busy)
    assert np.median(f.density) == pytest.approx(8.0, rel=0.1)
    assert np.median(f.tempo) == pytest.approx(160.0)
    assert np.nanmean(f.articulation) == pytest.approx(0.64, abs=0.05)


@pytest.mark.parametrize(
    "scale, expected",
    [([60, 62, 64, 65, 67, 69, 71, 72], "C major"), ([57, 59, 60, 62, 64, 65, 68, 69], "A minor"),
     ([62, 64, 66, 67, 69, 71, 73, 74], "D major")],
)
def test_key_of_a_scale(scale, expected):
    # tonic held longer, as a cadence would
    events = [(i * 0.5, i * 0.5 + 0.5, [p], 80) for i, p in enumerate(scale)] + [(4.0, 6.0, [scale[0]], 80)]
    assert estimate_key(_midi(events)).name == expected


def test_key_from_chroma_of_profile_itself():
    from analysis.music.symbolic import KK_MINOR

    key = key_from_chroma(np.roll(KK_MINOR, 9))
    assert (key.name, key.correlation) == ("A minor", pytest.approx(1.0))


def test_bars_follow_a_modulation_from_major_to_minor():
    pm = _midi(_chords(C_MAJOR, beat=0.5, vel=80, reps=4) + [
        (8.0 + s, 8.0 + e, p, v) for s, e, p, v in _chords(C_MINOR_TENSE, beat=0.5, vel=80, reps=4)
    ])
    bars = bar_va(pm, key_window=2.0)
    assert len(bars.starts) == 8  # 16 s of 4/4 at 120 bpm
    np.testing.assert_allclose(bars.starts, np.arange(8) * 2.0)
    assert bars.valence[:4].min() > bars.valence[4:].max()


def test_bach_chorale_is_sensible_and_fast():
    music21 = pytest.importorskip("music21")
    score = music21.corpus.parse("bach/bwv66.6")
    pm = score_to_midi(score)
    assert estimate_key(pm).name == "F# minor"  # music21's own analysis says f# minor
    midi_arc(pm)  # warm-up
    timings = []
    for _ in range(5):
        t = time.perf_counter()
        arc = midi_arc(pm)
        timings.append(time.perf_counter() - t)
    assert min(timings) < 0.05
    assert len(arc) == 45 and arc.duration == pytest.approx(22.5)
    # a four-part chorale at crotchet = 96: moderate arousal, valence varies with the modulations
    assert -0.3 < arc.arousal.mean() < 0.3
    assert arc.valence.max() - arc.valence.min() > 0.5
    assert np.all(np.abs(arc.va()) <= 1)


def test_deterministic():
    pm = _midi(_chords(C_MINOR_TENSE, beat=0.25, vel=70))
    a, b = midi_arc(pm), midi_arc(pm)
    np.testing.assert_array_equal(a.va(), b.va())


def test_bad_input_is_a_parameter_error():
    with pytest.raises(ParameterError, match="no notes"):
        midi_arc(pretty_midi.PrettyMIDI())
    with pytest.raises(ParameterError, match="`hop` must be positive"):
        midi_arc(_midi(_chords(C_MAJOR, beat=0.5, vel=80)), hop=0)
