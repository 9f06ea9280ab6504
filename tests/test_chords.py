"""Chord labels of the training data (composer.training.chords), MIDI built in memory."""

from __future__ import annotations

import pretty_midi

from analysis.music.symbolic import Key
from composer.model.tokens import Tokenizer
from composer.training.chords import beat_chords
from composer.training.data import label_piece

A_MINOR = Key(9, "minor", 1.0)


def _melody(pitches: list[int], beat: float = 0.5) -> pretty_midi.PrettyMIDI:
    pm = pretty_midi.PrettyMIDI(initial_tempo=120.0)
    piano = pretty_midi.Instrument(program=0)
    piano.notes = [pretty_midi.Note(80, p, i * beat, (i + 1) * beat) for i, p in enumerate(pitches)]
    pm.instruments.append(piano)
    return pm


def _names(tok: Tokenizer, changes: list[tuple[float, int]]) -> list[str]:
    return [tok.token_name(t) for _, t in changes]


def test_one_note_beats_read_as_the_keys_chords_only_when_told_the_key() -> None:
    tok = Tokenizer()
    pm = _melody([69, 72, 76, 72] * 2)  # A C E C, one note a beat
    plain = _names(tok, beat_chords(pm, tok))
    assert not any(n.endswith("_min") for n in plain)  # table order: every one-note beat reads major
    assert _names(tok, beat_chords(pm, tok, A_MINOR)) == ["CHORD_A_min"]


def test_the_notes_still_win_over_the_key() -> None:
    tok = Tokenizer()
    pm = _melody([69, 69])
    for pitch in (64, 68, 71):  # E major under the second beat: the harmonic-minor V
        pm.instruments[0].notes.append(pretty_midi.Note(80, pitch, 0.5, 1.0))
    assert _names(tok, beat_chords(pm, tok, A_MINOR)) == ["CHORD_A_min", "CHORD_E_maj"]
    pm = _melody([69, 69])
    for pitch in (66, 70, 73):  # F# major: no chord of A minor holds A#
        pm.instruments[0].notes.append(pretty_midi.Note(80, pitch, 0.5, 1.0))
    assert _names(tok, beat_chords(pm, tok, A_MINOR))[1] == "CHORD_F#_maj"


def test_a_mode_turn_turns_the_tie_breaks_and_label_piece_uses_them() -> None:
    tok = Tokenizer()
    pm = _melody([69, 76] * 8)  # A E A E ...: fits A minor and A major alike
    assert _names(tok, beat_chords(pm, tok, A_MINOR, turn=4.0)) == ["CHORD_A_min", "CHORD_A_maj"]
    assert beat_chords(pm, tok, A_MINOR, turn=4.0)[1][0] == 4.0
    plain, keyed = label_piece(pm, tok, key=A_MINOR), label_piece(pm, tok, key=A_MINOR, key_chords=True)
    assert [tok.token_name(tok.chord_offset + int(c)) for c in keyed.chord_ids] == ["CHORD_A_min"]
    assert [tok.token_name(tok.chord_offset + int(c)) for c in plain.chord_ids] != ["CHORD_A_min"]


def test_a_seed_is_labelled_as_the_checkpoint_was_trained() -> None:
    """A generator's seed MIDI gets its chord labels the way the checkpoint's training data did."""
    from composer.model.generate import _seed_tokens
    from composer.model.plan import IDENTITY

    tok = Tokenizer()
    seed = _melody([69, 72, 76, 72, 69, 76, 72, 69])  # A C E C ...: A minor, one note a beat

    def chords(key_chords: bool) -> list[str]:
        names = [tok.token_name(t) for t in _seed_tokens(seed, tok, IDENTITY, key_chords=key_chords)[0]]
        return [n for n in names if n.startswith("CHORD_")]

    assert chords(True)[0] == "CHORD_A_min"
    assert not any(n.endswith("_min") for n in chords(False))  # table order, as training without key chords
