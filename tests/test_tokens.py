"""Event tokenizer: exact round trip, vocabulary layout, config JSON, chord reading."""

from __future__ import annotations

import numpy as np
import pretty_midi
import pytest

from analysis.errors import ParameterError
from composer.model.tokens import BAR, BOS, EOS, Tokenizer, TokenizerConfig
from composer.training.chords import beat_chords
from composer.training.data import augment, clean


def _quantised_piece(tok: Tokenizer, seed: int = 0) -> pretty_midi.PrettyMIDI:
    """Three instruments (piano, strings, drums) on the 10 ms grid with bin velocities, gaps > 1 s."""
    rng = np.random.default_rng(seed)
    pm = pretty_midi.PrettyMIDI()
    for program, drum in ((0, False), (48, False), (0, True)):
        inst = pretty_midi.Instrument(program=program, is_drum=drum)
        busy: dict[int, int] = {}
        for _ in range(60):
            pitch = int(rng.integers(36, 90))
            start = int(rng.integers(0, 900)) + (400 if program == 48 else 0)  # strings enter after a 4 s gap
            if busy.get(pitch, -1) >= start:
                continue
            end = start + int(rng.integers(1, 300))
            busy[pitch] = end
            vel = tok.bin_velocity(int(rng.integers(0, tok.config.velocity_bins)))
            inst.notes.append(pretty_midi.Note(vel, pitch, start * 0.01, end * 0.01))
        pm.instruments.append(inst)
    return pm


def _notes(pm: pretty_midi.PrettyMIDI) -> dict[tuple[int, bool], list[tuple[int, int, int, int]]]:
    return {
        (i.program, i.is_drum): sorted((round(n.start * 100), round(n.end * 100), n.pitch, n.velocity) for n in i.notes)
        for i in pm.instruments
    }


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_round_trip_is_exact_on_quantised_input(seed: int) -> None:
    tok = Tokenizer()
    pm = _quantised_piece(tok, seed)
    enc = tok.encode(pm)
    dec = tok.decode(enc.tokens)
    assert _notes(dec.midi) == _notes(pm)
    assert enc.tokens[0] == BOS and enc.tokens[-1] == EOS
    assert dec.duration == pytest.approx(max(n.end for i in pm.instruments for n in i.notes))


def test_times_follow_the_shifts_and_gaps_use_several_shifts() -> None:
    tok = Tokenizer()
    pm = pretty_midi.PrettyMIDI()
    inst = pretty_midi.Instrument(program=0)
    inst.notes = [pretty_midi.Note(66, 60, 0.0, 0.5), pretty_midi.Note(66, 64, 3.25, 3.5)]
    pm.instruments.append(inst)
    enc = tok.encode(pm, bar_times=np.array([]))
    names = [tok.token_name(t) for t in enc.tokens]
    assert names == [
        "BOS", "PROGRAM_0", "VELOCITY_16", "NOTE_ON_60", "SHIFT_50", "NOTE_OFF_60",
        "SHIFT_100", "SHIFT_100", "SHIFT_75", "NOTE_ON_64", "SHIFT_25", "NOTE_OFF_64", "EOS",
    ]  # fmt: skip
    assert enc.times[names.index("NOTE_ON_64")] == pytest.approx(3.25)
    assert np.all(np.diff(enc.times) >= 0)


def test_vocabulary_is_contiguous_and_named() -> None:
    tok = Tokenizer()
    names = [tok.token_name(i) for i in range(tok.vocab_size)]
    assert len(set(names)) == tok.vocab_size
    assert names[BAR] == "BAR"
    assert names[tok.chord_token(9, "min")] == "CHORD_A_min"
    assert names[-1] == "CHORD_N"
    assert tok.vocab_size == 4 + 129 + 32 + 128 + 128 + 100 + 12 * 5 + 1
    with pytest.raises(ParameterError, match="received 9999"):
        tok.token_name(9999)


def test_config_saves_and_loads_as_json(tmp_path) -> None:
    cfg = TokenizerConfig(time_step=0.02, max_shift=50, velocity_bins=16)
    cfg.save(tmp_path / "tok.json")
    assert TokenizerConfig.load(tmp_path / "tok.json") == cfg
    assert Tokenizer(cfg).vocab_size == 4 + 129 + 16 + 256 + 50 + 61
    with pytest.raises(ParameterError, match="velocity_bins"):
        TokenizerConfig(velocity_bins=0)
    with pytest.raises(ParameterError, match="not a tokenizer config"):
        TokenizerConfig.from_json('{"colour": 3}')


def test_chords_are_read_per_beat_and_survive_decoding() -> None:
    tok = Tokenizer()
    pm = pretty_midi.PrettyMIDI(initial_tempo=120)  # beats every 0.5 s
    inst = pretty_midi.Instrument(program=0)
    for start, chord in ((0.0, (60, 64, 67)), (1.0, (57, 60, 64)), (2.0, (55, 59, 62, 65))):
        inst.notes += [pretty_midi.Note(80, p, start, start + 1.0) for p in chord]
    pm.instruments.append(inst)
    chords = beat_chords(pm, tok)
    assert [(t, tok.token_name(c)) for t, c in chords] == [
        (0.0, "CHORD_C_maj"), (1.0, "CHORD_A_min"), (2.0, "CHORD_G_dom7")
    ]
    dec = tok.decode(tok.encode(pm, chords=chords).tokens)
    assert dec.chord_times == (0.0, 1.0, 2.0)
    assert dec.chords == ("C_maj", "A_min", "G_dom7")
    assert dec.bar_times[0] == 0.0 and dec.bar_times[1] == pytest.approx(2.0)


def test_clean_merges_programs_and_augment_transposes_and_stretches() -> None:
    pm = pretty_midi.PrettyMIDI(initial_tempo=100)
    for pitch in (60, 67):
        inst = pretty_midi.Instrument(program=0)
        inst.notes = [pretty_midi.Note(80, pitch, 0.0, 1.0), pretty_midi.Note(80, pitch, 0.5, 1.5)]  # overlap
        pm.instruments.append(inst)
    merged = clean(pm)
    assert len(merged.instruments) == 1
    notes = sorted((n.pitch, n.start, n.end) for n in merged.instruments[0].notes)
    assert notes == [(60, 0.0, 0.5), (60, 0.5, 1.5), (67, 0.0, 0.5), (67, 0.5, 1.5)]
    aug = augment(merged, transpose=3, tempo=2.0, velocity=0.5)
    a = sorted((n.pitch, n.start, n.end, n.velocity) for n in aug.instruments[0].notes)
    assert a[0] == (63, 0.0, pytest.approx(0.25, abs=0.005), 40)  # MIDI ticks round a little
    assert aug.get_tempo_changes()[1][0] == pytest.approx(200.0, rel=1e-3)
