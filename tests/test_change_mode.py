"""change_mode (analysis.music.symbolic) and the mode-flip augmentation (composer.training.data), MIDI in memory."""

from __future__ import annotations

import numpy as np
import pretty_midi
import pytest

from analysis.errors import ParameterError
from analysis.music.symbolic import bar_va, change_mode, estimate_key

C_MAJOR_SCALE = [60, 62, 64, 65, 67, 69, 71, 72]
C_MINOR_SCALE = [60, 62, 63, 65, 67, 68, 70, 72]  # natural minor


def _scale_midi(pitches: list[int], *, reps: int = 4, beat: float = 0.5) -> pretty_midi.PrettyMIDI:
    """The scale up and down ``reps`` times on a piano, plus a drum hit on every beat."""
    pm = pretty_midi.PrettyMIDI(initial_tempo=120.0)
    piano = pretty_midi.Instrument(program=0)
    drums = pretty_midi.Instrument(program=0, is_drum=True)
    seq = (pitches + pitches[-2:0:-1]) * reps + [pitches[0]]
    for i, p in enumerate(seq):
        piano.notes.append(pretty_midi.Note(velocity=80, pitch=p, start=i * beat, end=(i + 1) * beat))
        drums.notes.append(pretty_midi.Note(velocity=80, pitch=64, start=i * beat, end=i * beat + 0.1))
    pm.instruments.extend([piano, drums])
    return pm


def _pitches(pm: pretty_midi.PrettyMIDI) -> list[int]:
    return [n.pitch for n in pm.instruments[0].notes]


def test_c_major_scale_becomes_c_natural_minor_and_valence_drops() -> None:
    pm = _scale_midi(C_MAJOR_SCALE)
    key = estimate_key(pm)
    assert (key.tonic, key.mode) == (0, "major")
    before = float(bar_va(pm).valence.mean())
    change_mode(pm, to="minor")
    assert set(_pitches(pm)) == set(C_MINOR_SCALE)
    assert _pitches(pm)[: len(C_MINOR_SCALE)] == C_MINOR_SCALE
    assert [n.pitch for n in pm.instruments[1].notes] == [64] * len(pm.instruments[1].notes)  # drums untouched
    assert (estimate_key(pm).tonic, estimate_key(pm).mode) == (0, "minor")
    after = float(bar_va(pm).valence.mean())
    assert after < before - 0.1, (before, after)


def test_minor_back_to_major_and_no_op_in_same_mode() -> None:
    pm = _scale_midi(C_MINOR_SCALE)
    change_mode(pm, to="minor")  # already minor: nothing moves
    assert set(_pitches(pm)) == set(C_MINOR_SCALE)
    change_mode(pm, to="major")
    assert set(_pitches(pm)) == set(C_MAJOR_SCALE)


def test_time_window_limits_the_change() -> None:
    pm = _scale_midi(C_MAJOR_SCALE)
    change_mode(pm, to="minor", after=4.0)
    notes = pm.instruments[0].notes
    early = {n.pitch for n in notes if n.start < 4.0}
    late = {n.pitch for n in notes if n.start >= 4.0}
    assert early == set(C_MAJOR_SCALE)
    assert late == set(C_MINOR_SCALE)


def test_bad_mode_is_a_parameter_error() -> None:
    with pytest.raises(ParameterError, match="dorian"):
        change_mode(_scale_midi(C_MAJOR_SCALE), to="dorian")


def test_mode_flipped_copy_leaves_the_original_and_relabels_lower() -> None:
    from composer.model.tokens import Tokenizer
    from composer.training.data import label_piece, mode_flipped

    pm = _scale_midi(C_MAJOR_SCALE)
    flipped = mode_flipped(pm)
    assert set(_pitches(pm)) == set(C_MAJOR_SCALE)
    assert set(_pitches(flipped)) == set(C_MINOR_SCALE)
    tokenizer = Tokenizer()
    orig, flip = label_piece(pm, tokenizer), label_piece(flipped, tokenizer)
    assert flip.va[:, 0].astype(float).mean() < orig.va[:, 0].astype(float).mean() - 0.05
    assert np.allclose(flip.va[:, 1].astype(float).mean(), orig.va[:, 1].astype(float).mean(), atol=0.05)


def test_mode_turn_copy_changes_only_after_the_turn_and_its_late_bars_read_darker() -> None:
    from composer.training.data import mode_flipped

    pm = _scale_midi(C_MAJOR_SCALE, reps=8)  # 60 notes of 0.5 s
    turned = mode_flipped(pm, after=15.0)
    notes = turned.instruments[0].notes
    assert {n.pitch for n in notes if n.start < 15.0} == set(C_MAJOR_SCALE)
    assert {n.pitch for n in notes if n.start >= 15.0} == set(C_MINOR_SCALE)
    orig_bars, turned_bars = bar_va(pm), bar_va(turned)
    early = orig_bars.ends <= 10.0
    late = orig_bars.starts >= 20.0
    assert np.allclose(turned_bars.valence[early], orig_bars.valence[early], atol=0.05)
    assert turned_bars.valence[late].mean() < orig_bars.valence[late].mean() - 0.1


def test_prepare_adds_one_copy_per_mode_option_to_training_pieces_only(tmp_path) -> None:
    from dataclasses import asdict

    from composer.model.tokens import Tokenizer
    from composer.training.data import DataConfig, _prepare, is_heldout

    names = [f"piece{i}" for i in range(200)]
    train_name = next(n for n in names if not is_heldout(n))
    held_name = next(n for n in names if is_heldout(n))
    tok = asdict(Tokenizer().config)
    for name, held in ((train_name, False), (held_name, True)):
        path = tmp_path / f"{name}.mid"
        _scale_midi(C_MAJOR_SCALE).write(str(path))
        base = _prepare((str(path), tok, asdict(DataConfig())))
        both = _prepare((str(path), tok, asdict(DataConfig(mode_flip=True, mode_turn=True))))
        assert all(h == held for _, h, _ in both)
        assert len(both) == len(base) + (0 if held else 2)
        assert len(base) == 1 + (0 if held else DataConfig().augment_copies)


def test_drums_only_piece_keeps_its_copies_without_mode_moves(tmp_path) -> None:
    from dataclasses import asdict

    from composer.model.tokens import Tokenizer
    from composer.training.data import DataConfig, _prepare, is_heldout

    name = next(f"drums{i}" for i in range(200) if not is_heldout(f"drums{i}"))
    pm = _scale_midi(C_MAJOR_SCALE)
    pm.instruments = [i for i in pm.instruments if i.is_drum]
    pm.write(str(tmp_path / f"{name}.mid"))
    out = _prepare((str(tmp_path / f"{name}.mid"), asdict(Tokenizer().config),
                    asdict(DataConfig(mode_flip=True, mode_turn=True))))
    assert len(out) == 1 + DataConfig().augment_copies


def test_smooth_bars_averages_bar_noise_but_keeps_a_turn() -> None:
    from composer.training.data import smooth_bars

    mids = np.arange(20) * 2.0 + 1.0  # 20 bars of 2 s
    noisy = np.where(np.arange(20) % 2 == 0, 0.6, -0.2)  # bar-to-bar jitter around +0.2
    smoothed = smooth_bars(noisy, mids, sigma=4.0)
    assert np.abs(np.diff(smoothed)).max() < 0.1 < np.abs(np.diff(noisy)).min()
    assert smoothed[5:15] == pytest.approx(0.2, abs=0.05)
    turn = np.where(mids < 20.0, 0.5, -0.5)
    st = smooth_bars(turn, mids, sigma=4.0)
    assert st[0] > 0.4 and st[-1] < -0.4 and st[8] > 0 > st[11]
    assert np.array_equal(smooth_bars(noisy, mids, sigma=0.0), noisy)


def test_label_piece_valence_sigma_smooths_only_valence() -> None:
    from composer.model.tokens import Tokenizer
    from composer.training.data import label_piece

    pm = _scale_midi(C_MAJOR_SCALE, reps=8)
    change_mode(pm, to="minor", after=28.0)
    raw, smooth = label_piece(pm, Tokenizer()), label_piece(pm, Tokenizer(), valence_sigma=6.0)
    assert np.array_equal(raw.va[:, 1], smooth.va[:, 1])
    rv, sv = raw.va[:, 0].astype(float), smooth.va[:, 0].astype(float)
    assert np.abs(np.diff(sv)).max() <= np.abs(np.diff(rv)).max()
    early, late = raw.times < 15.0, raw.times > 42.0
    assert sv[early].mean() > sv[late].mean() + 0.1  # the turn to minor survives the smoothing


def test_a_blind_turn_copy_turns_its_notes_and_labels_but_not_its_plan() -> None:
    from composer.model.tokens import Tokenizer
    from composer.training.data import key_index, label_piece, mode_flipped, piece_key

    pm = _scale_midi(C_MAJOR_SCALE, reps=8)  # 30 s
    key, tokenizer = piece_key(pm), Tokenizer()
    turned = mode_flipped(pm, after=15.0, key=key)
    seen = label_piece(turned, tokenizer, key=key, turn=15.0)  # the mode-turn copy: its plan turns
    blind = label_piece(turned, tokenizer, key=key, turn=15.0, plan_from=pm)
    orig = label_piece(pm, tokenizer, key=key)
    late = blind.times >= 20.0
    assert set(np.unique(blind.key)) == {key_index(key)}  # the key never turns
    assert set(np.unique(seen.key[seen.times >= 20.0])) == {key_index(key, flip=True)}
    np.testing.assert_array_equal(blind.chord_ids, orig.chord_ids)  # the original's chords
    assert not np.array_equal(seen.chord_ids, orig.chord_ids)
    np.testing.assert_array_equal(blind.va, seen.va)  # the labels read the turned notes
    assert blind.va[late, 0].astype(float).mean() < orig.va[orig.times >= 20.0, 0].astype(float).mean() - 0.1


def test_label_piece_valence_ahead_reads_where_the_music_goes() -> None:
    """``valence_ahead``: each bar's valence label is the bar reading that many seconds later (interpolated
    between bar centres, the last bar's past the end); arousal and tokens stay the bar's own."""
    from composer.model.tokens import Tokenizer
    from composer.training.data import label_piece, mode_flipped, piece_key

    pm = _scale_midi(C_MAJOR_SCALE, reps=8)
    key, tokenizer = piece_key(pm), Tokenizer()
    turned = mode_flipped(pm, after=15.0, key=key)
    now = label_piece(turned, tokenizer, key=key, turn=15.0)
    ahead = label_piece(turned, tokenizer, key=key, turn=15.0, valence_ahead=6.0)
    np.testing.assert_array_equal(ahead.va[:, 1], now.va[:, 1])
    np.testing.assert_array_equal(ahead.tokens, now.tokens)
    bars = bar_va(turned)
    centres = (bars.starts + bars.ends) / 2
    later = np.interp(centres + 6.0, centres, bars.valence)  # three bars on at 2 s a bar
    idx = np.clip(np.searchsorted(bars.starts, ahead.times, side="right") - 1, 0, bars.starts.size - 1)
    np.testing.assert_allclose(ahead.va[:, 0].astype(float), later[idx], atol=2e-3)  # float16 labels
    assert later[0] == pytest.approx(bars.valence[3]) and later[-1] == pytest.approx(bars.valence[-1])
