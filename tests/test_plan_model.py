"""The plan condition (issue 12): key, chord and next change per token in training data, in the model
and in sampling, and the mapping from the harmony planner's chords onto the model's chord classes."""

from __future__ import annotations

import numpy as np
import pretty_midi
import pytest
import torch
from music21 import corpus

import composer
from analysis.arc import EmotionArc
from analysis.errors import ParameterError
from analysis.music.symbolic import Key, score_to_midi
from composer.model import checkpoint
from composer.model.plan import chord_class, key_class, plan_track
from composer.model.raw import CONDITIONED_ON, PLAN_INPUTS
from composer.model.tokens import N_KEYS, Tokenizer
from composer.model.transformer import ModelConfig, MusicTransformer, Plan
from composer.music.harmony import plan_harmony
from composer.music.notes import ChordSpan
from composer.music.styles import get_style
from composer.training.data import _stack, clean, key_index, label_piece, mode_flipped, register_va, velocity_arousal

CHORALES = ("bwv66.6", "bwv269", "bwv347")


@pytest.fixture(scope="module")
def tok() -> Tokenizer:
    return Tokenizer()


@pytest.fixture(scope="module")
def chorales(tok: Tokenizer):
    """Three Bach chorales with a drum part added, labelled by the real pipeline (keys given)."""
    pieces = []
    for name in CHORALES:
        pm = clean(score_to_midi(corpus.parse(name)))
        drums = pretty_midi.Instrument(program=0, is_drum=True)
        drums.notes = [pretty_midi.Note(90, 36, t, t + 0.1) for t in np.arange(0.0, 8.0, 0.5)]
        pm.instruments.append(drums)
        pieces.append((name, label_piece(pm, tok, key=Key(7, "major", 0.9))))
    return _stack(pieces)


def _chord_before_chord_tokens(b: dict, tok: Tokenizer) -> tuple[np.ndarray, np.ndarray]:
    """(planned chord at the input token, chord class of the CHORD token read next) wherever one comes next."""
    nxt = (b["y"] >= tok.chord_offset) & (b["y"] < tok.vocab_size)
    return b["chord"][nxt], b["y"][nxt] - tok.chord_offset


def test_the_plan_at_each_token_is_the_chord_about_to_be_written(chorales, tok) -> None:
    b = chorales.batch(np.random.default_rng(0), batch_size=6, block=96, tokenizer=tok)
    assert b["chord"].shape == b["key"].shape == b["change"].shape == (6, 96)
    planned, written = _chord_before_chord_tokens(b, tok)
    assert planned.size > 10 and np.array_equal(planned, written)  # the plan has already turned when the token comes
    assert np.all((b["change"] >= 0) & (b["change"] <= 4.0))
    assert np.all(b["key"][b["x"] > 0] == 7)  # G major, as labelled


def test_transposition_moves_notes_chords_plan_and_key_together_and_leaves_drums(chorales, tok) -> None:
    plain = chorales.batch(np.random.default_rng(3), batch_size=8, block=96, tokenizer=tok)
    moved = chorales.batch(np.random.default_rng(3), batch_size=8, block=96, transpose=5, tokenizer=tok)
    shifts = (moved["key"][:, 0] - plain["key"][:, 0]) % 12
    assert np.count_nonzero(shifts) >= 4  # most rows moved (same windows: same rng draws before the shift)
    drums = 0
    for row, k in enumerate(shifts):
        x0, x1 = plain["x"][row], moved["x"][row]
        notes = (x0 >= tok.note_on_offset) & (x0 < tok.shift_offset)
        changed = x1 != x0
        if k == 0:
            assert not changed.any()
            continue
        drums += np.count_nonzero(notes & ~changed)  # with k != 0 only drum notes stay put
        assert np.all(((x1 - x0)[notes & changed] % 12) == k % 12)
        assert np.array_equal(np.delete(x1, np.flatnonzero(changed)), np.delete(x0, np.flatnonzero(changed)))
        real = plain["chord"][row] < tok.n_chords - 1
        assert np.all((moved["chord"][row][real] - plain["chord"][row][real]) % 12 == k)
    assert drums > 0
    planned, written = _chord_before_chord_tokens(moved, tok)
    assert np.array_equal(planned, written)


def test_velocity_shift_moves_loudness_and_arousal_together(chorales, tok) -> None:
    """Louder windows carry a higher arousal label by the estimator's velocity cue; nothing else moves."""
    plain = chorales.batch(np.random.default_rng(4), batch_size=48, block=96, tokenizer=tok)
    loud = chorales.batch(np.random.default_rng(4), batch_size=48, block=96, velocity_shift=32, tokenizer=tok)
    lo, n = tok.velocity_offset, tok.config.velocity_bins
    moved = 0
    for row in range(48):
        x0, x1 = plain["x"][row], loud["x"][row]
        vel = (x0 >= lo) & (x0 < lo + n)
        assert np.array_equal(x0[~vel], x1[~vel])  # notes, shifts, chords untouched
        if not vel.any():  # the corpus sets a part's velocity once: a window past it has nothing to move
            np.testing.assert_array_equal(loud["va"][row], plain["va"][row])
            continue
        assert np.all((x1[vel] >= lo) & (x1[vel] < lo + n))
        bins = np.unique(x1[vel] - x0[vel])
        assert bins.size == 1 and abs(int(bins[0])) <= 8  # one shift per window, at most 32 velocity units
        before, after = (np.mean([tok.bin_velocity(int(v) - lo) for v in x[vel]]) for x in (x0, x1))
        expect = velocity_arousal(before, after)
        np.testing.assert_allclose(loud["va"][row, :, 1] - plain["va"][row, :, 1], expect, atol=1e-5)
        np.testing.assert_array_equal(loud["va"][row, :, 0], plain["va"][row, :, 0])
        if bins[0] != 0:
            moved += 1
            assert np.sign(expect) == np.sign(bins[0])
    assert moved >= 4
    with pytest.raises(ParameterError):
        chorales.batch(np.random.default_rng(4), batch_size=2, block=96, velocity_shift=8)


def test_octave_shift_moves_register_and_labels_together(chorales, tok) -> None:
    """Windows an octave up read brighter by the estimator's register cue; chords, plan and drums stay."""
    plain = chorales.batch(np.random.default_rng(5), batch_size=16, block=96, tokenizer=tok)
    moved = chorales.batch(np.random.default_rng(5), batch_size=16, block=96, octave_shift=1.0, tokenizer=tok)
    ups = downs = 0
    for row in range(16):
        # the whole window (inputs and the last target) is what moved and what the label follows
        x0, x1 = (np.append(b["x"][row], b["y"][row, -1]) for b in (plain, moved))
        changed = x1 != x0
        assert np.array_equal(moved["chord"][row], plain["chord"][row])
        assert np.array_equal(moved["key"][row], plain["key"][row])
        if not changed.any():
            np.testing.assert_array_equal(moved["va"][row], plain["va"][row])
            continue
        k = int(np.unique(x1[changed] - x0[changed])[0])
        assert np.unique(x1[changed] - x0[changed]).size == 1 and k in (-12, 12)
        assert np.all((x0[changed] >= tok.note_on_offset) & (x0[changed] < tok.shift_offset))  # only notes
        on = changed & (x0 < tok.note_off_offset)
        mean = float(np.mean(x0[on] - tok.note_on_offset))
        shift = np.broadcast_to(register_va(mean, mean + k), plain["va"][row].shape)
        np.testing.assert_allclose(moved["va"][row] - plain["va"][row], shift, atol=1e-5)
        assert np.sign(moved["va"][row, 0, 0] - plain["va"][row, 0, 0]) == np.sign(k)
        ups, downs = ups + (k > 0), downs + (k < 0)
    assert ups >= 3 and downs >= 3


def test_a_mode_turned_copy_changes_key_at_the_turn(tok) -> None:
    pm = clean(score_to_midi(corpus.parse("bwv66.6")))
    key = Key(9, "minor", 0.9)
    turned = label_piece(mode_flipped(pm, after=6.0, key=key), tok, key=key, turn=6.0)
    times = turned.times
    assert set(turned.key[times < 6.0].tolist()) == {key_index(key)} == {21}
    assert set(turned.key[times >= 6.0].tolist()) == {9}  # A major after the turn
    assert key_index(None) == N_KEYS


def test_planner_chords_map_to_the_models_chord_classes(tok) -> None:
    def span(root: int, pitches: tuple[int, ...], scale: tuple[int, ...] = (0, 2, 4, 5, 7, 9, 11)) -> ChordSpan:
        return ChordSpan(0.0, 1.0, root, pitches, scale, "", 0, "bright")

    name = lambda cls: tok.token_name(tok.chord_offset + cls)  # noqa: E731
    assert name(chord_class(span(0, (0, 4, 7, 11)), tok)) == "CHORD_C_maj"  # Cmaj7
    assert name(chord_class(span(9, (9, 0, 4, 7)), tok)) == "CHORD_A_min"  # Am7
    assert name(chord_class(span(11, (11, 2, 5, 9)), tok)) == "CHORD_B_dim"  # Bm7b5
    assert name(chord_class(span(7, (7, 11, 2, 5)), tok)) == "CHORD_G_dom7"
    assert name(chord_class(span(2, (2, 5, 9, 4)), tok)) == "CHORD_D_min"  # Dm(add9)
    assert key_class(span(0, (0, 4, 7)), 0) == 0
    assert key_class(span(0, (0, 3, 7), (0, 2, 3, 5, 7, 8, 10)), 0) == 12  # C minor


def test_plan_track_follows_the_plan_on_the_token_grid(tok) -> None:
    arc = EmotionArc.constant(12.0, valence=-0.6, arousal=0.3)
    plan = plan_harmony(arc, (4.0, 8.5), 12.0, style=get_style("cinematic"), seed=1)
    track = plan_track(plan, tok)
    for c in plan.chords:
        step = round(c.start / tok.config.time_step)
        chord, key, change = track.at(step, 4.0)
        assert chord == chord_class(c, tok) and key == key_class(c, plan.tonic) and key >= 12  # dark: minor
        last = c is plan.chords[-1]  # no change after the last chord: the clamp, as in training
        assert change == pytest.approx(4.0 if last else min(4.0, c.end - c.start), abs=0.011)
        assert track.at(step - 1, 4.0)[2] == pytest.approx(0.01) or step == 0  # one step before: 10 ms to go


@pytest.fixture(scope="module")
def planned(tok: Tokenizer) -> ModelConfig:
    return ModelConfig(vocab_size=tok.vocab_size, block_size=64, n_layer=2, n_head=2, n_embd=32,
                       fine_boundary=True, plan_chords=tok.n_chords)


def test_fine_boundary_bins_resolve_single_time_steps(planned) -> None:
    model = MusicTransformer(planned)
    seconds = torch.tensor([[0.0, 0.01, 0.02, 0.37, 0.99, 1.0, 1.5, 4.0, 9.0]])
    assert model.boundary_bin(seconds).tolist() == [[0, 1, 2, 37, 99, 100, 105, 130, 130]]
    assert planned.boundary_bins == 131


def test_the_plan_changes_logits_and_a_dropped_plan_is_ignored(planned, tok) -> None:
    torch.manual_seed(0)
    model = MusicTransformer(planned).eval()
    x = torch.tensor([[1, 3, 140, 200, 500]])
    va, bnd = torch.zeros(1, 5, 2), torch.full((1, 5), 4.0)
    c_major = Plan(torch.full((1, 5), 0), torch.full((1, 5), 0), torch.full((1, 5), 0.5))
    a_minor = Plan(torch.full((1, 5), 21), torch.full((1, 5), 21), torch.full((1, 5), 0.5))
    la, _, _ = model(x, va, bnd, plan=c_major)
    lb, _, _ = model(x, va, bnd, plan=a_minor)
    assert (la - lb).abs().max() > 1e-3
    off = torch.tensor([False])
    na, _, _ = model(x, va, bnd, plan=c_major, plan_mask=off)
    nb, _, _ = model(x, va, bnd, plan=a_minor, plan_mask=off)
    none, _, _ = model(x, va, bnd)
    torch.testing.assert_close(na, nb)
    torch.testing.assert_close(na, none)
    # the cache gives the full pass with a plan too
    _, _, past = model(x[:, :3], va[:, :3], bnd[:, :3], plan=Plan(*(t[:, :3] for t in vars(c_major).values())))
    step, _, _ = model(x[:, 3:], va[:, 3:], bnd[:, 3:], plan=Plan(*(t[:, 3:] for t in vars(c_major).values())),
                       past=past, start=3)
    torch.testing.assert_close(step, la[:, 3:], atol=1e-5, rtol=1e-4)


def test_generate_tells_a_plan_model_the_plan_and_reports_it(planned, tok, tmp_path) -> None:
    torch.manual_seed(1)
    loaded = checkpoint.load(checkpoint.save(tmp_path / "planned.pt", MusicTransformer(planned), tok))
    arc = EmotionArc.constant(4.0, valence=0.5, arousal=0.2)
    with_plan = composer.generate(arc, cuts=(2.0,), duration=4.0, seed=3, model=loaded)  # the planner's plan
    without = composer.generate(arc, cuts=(2.0,), duration=4.0, seed=3, model=loaded, plan=False)
    assert with_plan.plan is not None and without.plan is None
    assert with_plan.conditioned_on == CONDITIONED_ON + PLAN_INPUTS and without.conditioned_on == CONDITIONED_ON
    assert with_plan.plan_following()["notes"] > 0
    notes = lambda p: sorted((n.start, n.pitch) for i in p.midi.instruments for n in i.notes)  # noqa: E731
    assert notes(with_plan) != notes(without)


def test_targets_beyond_the_training_labels_are_read_at_their_edge(planned, tok, tmp_path) -> None:
    torch.manual_seed(2)
    meta = {"label_range": {"valence": [-0.6, 0.75], "arousal": [-0.2, 0.6]}}
    net = MusicTransformer(planned)
    with torch.no_grad():
        net.va_proj[2].weight.mul_(100.0)  # an untrained model barely reads VA: make it matter
    loaded = checkpoint.load(checkpoint.save(tmp_path / "ranged.pt", net, tok, meta=meta))
    notes = lambda p: sorted((n.start, n.pitch) for i in p.midi.instruments for n in i.notes)  # noqa: E731

    def piece(arousal: float):
        return composer.generate(EmotionArc.constant(3.0, valence=0.1, arousal=arousal), duration=3.0, seed=4,
                                 model=loaded, plan=False)

    assert notes(piece(-0.9)) == notes(piece(-0.25))  # both read as -0.2, the lowest label trained on
    assert notes(piece(-0.9)) != notes(piece(0.5))


def test_the_beat_warp_puts_the_plans_beats_on_the_corpus_clock() -> None:
    from composer.model.plan import IDENTITY, MODEL_BEAT, beat_warp

    beats = np.array([0.0, 0.6, 1.2, 1.9, 2.5])  # a bent tempo map
    warp = beat_warp(beats)
    assert np.allclose(warp.to_model(beats), np.arange(5) * MODEL_BEAT)
    t = np.array([0.1, 0.95, 2.2, 3.4, 7.0])  # inside and past the last beat
    assert np.allclose(warp.to_real(warp.to_model(t)), t)
    assert float(warp.to_model(3.1)) == pytest.approx(2.0 + 0.6 / 0.6 * MODEL_BEAT)  # last segment's slope
    assert beat_warp([0.0]) is IDENTITY and beat_warp([0.0, 0.5, 0.5]) is IDENTITY


def test_the_warps_tempo_map_is_the_plans() -> None:
    from composer.model.plan import IDENTITY, beat_warp
    from composer.music.harmony import tempo_map

    plan_map, beats = tempo_map((2.9, 7.3), 10.0, 100.0)  # bent to land beats on both cuts
    assert len(plan_map) == 3
    got = beat_warp(beats).tempo_map()
    assert [t for t, _ in got] == pytest.approx([t for t, _ in plan_map])
    assert [b for _, b in got] == pytest.approx([b for _, b in plan_map])
    assert IDENTITY.tempo_map() == ((0.0, 120.0),)  # no plan: the corpus clock


def test_a_plan_model_writes_on_the_plans_clock_and_ends_on_time(planned, tok, tmp_path) -> None:
    from composer.model.generate import generate as sample

    torch.manual_seed(5)
    loaded = checkpoint.load(checkpoint.save(tmp_path / "clock.pt", MusicTransformer(planned), tok))
    arc = EmotionArc.constant(6.0, valence=0.2, arousal=-0.5)  # calm: a slow plan, beats ~0.9 s apart
    plan = plan_harmony(arc, (2.7,), 6.0, style=get_style("cinematic"), seed=0)
    piece = sample(arc, duration=6.0, cuts=(2.7,), seed=1, model=loaded, plan=plan, force_cuts=True)
    assert np.median(np.diff(plan.beats)) > 0.7
    assert piece.midi.get_end_time() == pytest.approx(6.0, abs=0.01)
    assert any(abs(t - 2.7) < 0.011 for t in piece.chord_times)  # forced in model time, found in seconds


def test_raw_midi_carries_the_plans_tempo_and_bars(planned, tok, tmp_path) -> None:
    """A DAW, and the estimator's tempo cue, see the beats the notes were written on: the plan's
    tempo map and downbeats; without a plan the 120 bpm of the corpus clock."""
    torch.manual_seed(6)
    loaded = checkpoint.load(checkpoint.save(tmp_path / "tempo.pt", MusicTransformer(planned), tok))
    arc = EmotionArc.constant(8.0, valence=0.2, arousal=-0.5)  # a slow plan: far from 120 bpm
    plan = plan_harmony(arc, (3.1,), 8.0, style=get_style("cinematic"), seed=0)
    raw = composer.generate(arc, cuts=(3.1,), duration=8.0, seed=2, model=loaded, plan=plan)
    reread = pretty_midi.PrettyMIDI(str(raw.write_midi(tmp_path / "raw.mid")))
    times, bpm = reread.get_tempo_changes()
    assert times == pytest.approx([t for t, _ in plan.tempo_map], abs=1e-3)
    assert bpm == pytest.approx([b for _, b in plan.tempo_map], rel=1e-3)
    assert np.all(bpm < 100)
    assert reread.get_downbeats() == pytest.approx(plan.downbeats[plan.downbeats < reread.get_end_time()], abs=1e-3)
    free = composer.generate(arc, duration=8.0, seed=2, model=loaded, plan=False)
    assert free.midi.get_tempo_changes()[1].tolist() == [120.0]

