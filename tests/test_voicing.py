"""Accompanied training copies (composer.training.voicing and data.accompanied), MIDI built in memory."""

from __future__ import annotations

from dataclasses import asdict

import numpy as np
import pretty_midi

from analysis.music.symbolic import Key, bar_va, estimate_key
from composer.model.tokens import Tokenizer
from composer.training.data import DataConfig, _prepare, accompanied, clean, is_heldout
from composer.training.voicing import key_triads

A_MINOR = Key(9, "minor", 1.0)
C_MAJOR = Key(0, "major", 1.0)


def _melody(pitches: list[int], *, reps: int = 1, beat: float = 0.5) -> pretty_midi.PrettyMIDI:
    """One note per beat at 120 bpm (4/4: a bar is 2 s) on a piano."""
    pm = pretty_midi.PrettyMIDI(initial_tempo=120.0)
    piano = pretty_midi.Instrument(program=0)
    for i, p in enumerate(pitches * reps):
        piano.notes.append(pretty_midi.Note(velocity=80, pitch=p, start=i * beat, end=(i + 1) * beat))
    pm.instruments.append(piano)
    return pm


def test_one_note_beats_take_the_keys_chord_and_full_triads_win_over_the_key() -> None:
    _, triads = key_triads(_melody([69, 72, 76, 72] * 2), A_MINOR)  # A C E C: one note a beat
    assert triads == [(9, "min")] * 8  # six triads hold each note; the key's tonic and the chord before decide
    pm = _melody([69, 72])
    for pitch in (66, 70, 73):  # an F# major chord sounding in C major: the notes beat the key
        pm.instruments[0].notes.append(pretty_midi.Note(80, pitch, 0.5, 1.0))
    _, triads = key_triads(pm, C_MAJOR)
    assert triads[1] == (6, "maj")


def test_accompaniment_sounds_the_triads_in_its_stretch_below_the_melody() -> None:
    pm = _melody([69, 71, 72, 74, 76, 74, 72, 71], reps=4)  # 32 beats, 16 s
    out = accompanied(pm, A_MINOR, start=4.0, end=12.0)
    assert len(pm.instruments) == 1 and len(out.instruments) == 2  # the input is left alone
    melody = [(n.pitch, n.start) for n in pm.instruments[0].notes]
    assert [(n.pitch, n.start) for n in out.instruments[0].notes] == melody
    voice = out.instruments[1].notes
    starts = sorted({n.start for n in voice})
    assert starts == [4.0 + 0.5 * i for i in range(16)]  # every beat in [4, 12), none outside
    assert len(voice) == 3 * len(starts)
    assert max(n.pitch for n in voice) < min(n.pitch for n in pm.instruments[0].notes)
    assert np.allclose(out.get_downbeats(), pm.get_downbeats()) and out.get_end_time() == pm.get_end_time()


def test_the_copy_is_labelled_from_its_own_notes_inside_its_stretch_only() -> None:
    pm = _melody([72, 76, 74, 72, 71, 72, 69, 69], reps=6)  # an A-minor tune that leans on C: 24 s
    plain = bar_va(pm)
    acc = bar_va(clean(accompanied(pm, estimate_key(pm), start=14.0)))
    before = plain.ends <= 14.0 - 8.0  # bars whose 8 s key window ends before the chords begin
    inside = plain.starts >= 14.0
    assert np.allclose(acc.valence[before], plain.valence[before])
    assert np.isnan(plain.features.consonance[inside]).all() and not np.isnan(acc.features.consonance[inside]).any()


def test_prepare_adds_one_accompanied_copy_to_training_pieces_only(tmp_path) -> None:
    tok = asdict(Tokenizer().config)
    names = [f"piece{i}" for i in range(200)]
    for name in (next(n for n in names if not is_heldout(n)), next(n for n in names if is_heldout(n))):
        path = tmp_path / f"{name}.mid"
        _melody([60, 62, 64, 65, 67, 65, 64, 62], reps=4).write(str(path))
        base = _prepare((str(path), tok, asdict(DataConfig(augment_copies=0, mode_turn=True))))
        more = _prepare((str(path), tok, asdict(DataConfig(augment_copies=0, mode_turn=True, accompany=True))))
        assert len(more) == len(base) + (0 if is_heldout(name) else 1)
        if not is_heldout(name):
            assert more[-1][2].tokens.size > base[0][2].tokens.size  # the copy holds the chord notes
