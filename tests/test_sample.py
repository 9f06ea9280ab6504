"""Sampling: valid MIDI of the asked length, seeded determinism, conditioning, cuts, seed melody."""

from __future__ import annotations

import io
import itertools

import numpy as np
import pretty_midi
import pytest
import torch
from music21 import corpus

from analysis.arc import EmotionArc
from analysis.errors import MediaError, ModelError, ParameterError
from analysis.music.symbolic import score_to_midi
from composer.model import checkpoint
from composer.model.generate import LearnedSource, generate, midi_bytes
from composer.model.tokens import Tokenizer
from composer.model.transformer import ModelConfig
from composer.music.notes import MaterialRequest, Note
from composer.training.data import _stack, clean, label_piece
from composer.training.train import TrainConfig, train


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """A tiny model trained for a few seconds on three Bach chorales (enough to write notes and chords)."""
    tok = Tokenizer()
    pieces = [(n, label_piece(clean(score_to_midi(corpus.parse(n))), tok)) for n in ("bwv66.6", "bwv269", "bwv347")]
    data = {"train": _stack(pieces[:2]), "heldout": _stack(pieces[2:])}
    cfg = ModelConfig(vocab_size=tok.vocab_size, block_size=64, n_layer=2, n_head=2, n_embd=32)
    tcfg = TrainConfig(steps=40, batch_size=8, block=64, lr=1e-2, warmup=5, eval_every=40, eval_batches=1, threads=1)
    res = train(cfg, tcfg, data, tok, tmp_path_factory.mktemp("tiny"), log=False)
    return checkpoint.load(res.checkpoint)


def _arc(duration: float, v0: float, v1: float) -> EmotionArc:
    t = np.arange(0.25, duration, 0.5)
    return EmotionArc.from_va(t, np.linspace(v0, v1, t.size), np.linspace(v0, v1, t.size))


def test_piece_is_valid_midi_of_the_requested_duration(model) -> None:
    piece = generate(_arc(8.0, -0.5, 0.8), duration=8.0, cuts=(3.0, 6.0), seed=1, model=model)
    again = pretty_midi.PrettyMIDI(io.BytesIO(midi_bytes(piece.midi)))
    assert again.get_end_time() == pytest.approx(8.0, abs=0.01)
    notes = [n for i in again.instruments for n in i.notes]
    assert notes and all(0 <= n.start < n.end <= 8.0 + 1e-3 for n in notes)
    assert piece.tokens.min() >= 0 and piece.tokens.max() < model.tokenizer.vocab_size
    assert piece.cuts == (3.0, 6.0) and len(piece.cut_hits) == 2
    assert piece.compute_seconds > 0


def test_same_seed_same_piece_other_seed_other_piece(model) -> None:
    arc = _arc(6.0, 0.0, 0.0)
    a = generate(arc, duration=6.0, seed=7, model=model)
    b = generate(arc, duration=6.0, seed=7, model=model)
    c = generate(arc, duration=6.0, seed=8, model=model)
    assert np.array_equal(a.tokens, b.tokens)
    assert not np.array_equal(a.tokens, c.tokens)


def test_conditioning_changes_the_output(model) -> None:
    happy = generate(_arc(6.0, 0.9, 0.9), duration=6.0, seed=3, model=model)
    sad = generate(_arc(6.0, -0.9, -0.9), duration=6.0, seed=3, model=model)
    null = generate(_arc(6.0, 0.9, 0.9), duration=6.0, seed=3, model=model, conditioned=False)
    null2 = generate(None, duration=6.0, seed=3, model=model)
    assert not np.array_equal(happy.tokens, sad.tokens)
    assert np.array_equal(null.tokens, null2.tokens)  # the null condition ignores the arc
    guided = generate(_arc(6.0, 0.9, 0.9), duration=6.0, seed=3, model=model, guidance=3.0)
    assert not np.array_equal(guided.tokens, happy.tokens)


class _NoChords(torch.nn.Module):
    """A model whose chord logits are lowered by 60 nats: it never writes a chord by itself, while
    the chords' relative odds (what a forced chord is drawn from) stay the model's."""

    def __init__(self, loaded: checkpoint.Loaded) -> None:
        super().__init__()
        self.net, self.config, self.first = loaded.model, loaded.model.config, loaded.tokenizer.chord_offset

    def forward(self, *args, **kwargs):
        logits, loss, cache = self.net(*args, **kwargs)
        logits = logits.clone()
        logits[..., self.first :] -= 60.0
        return logits, loss, cache


def test_forced_chord_changes_land_on_every_cut(model) -> None:
    cuts = (1.37, 2.91, 4.05)
    aided = generate(_arc(6.0, 0.2, 0.2), duration=6.0, cuts=cuts, seed=5, model=model, force_cuts=True)
    assert all(aided.cut_hits) and aided.cut_hit_rate == 1.0
    assert 0 <= aided.forced <= len(cuts)  # at most one forced chord per cut
    for c in cuts:  # on the cut itself: the shift that would jump over it was shortened
        assert np.min(np.abs(np.asarray(aided.chord_times) - c)) < 0.01
    free = generate(_arc(6.0, 0.2, 0.2), duration=6.0, cuts=cuts, seed=5, model=model)
    assert free.forced == 0  # unaided: nothing is forced, whatever the model misses


def test_forced_counts_exactly_the_cuts_the_model_passes_by(model) -> None:
    """With a model that writes no chord of its own, every cut is missed unaided and forced when aided."""
    mute = checkpoint.Loaded(model=_NoChords(model), tokenizer=model.tokenizer, meta={})
    cuts = (1.37, 2.91, 4.05)
    free = generate(_arc(6.0, 0.2, 0.2), duration=6.0, cuts=cuts, seed=5, model=mute)
    aided = generate(_arc(6.0, 0.2, 0.2), duration=6.0, cuts=cuts, seed=5, model=mute, force_cuts=True)
    assert free.chord_times == () and not any(free.cut_hits)
    assert aided.forced == sum(not h for h in free.cut_hits) == len(cuts)
    assert all(aided.cut_hits) and len(aided.chord_times) == len(cuts)  # the forced chords and no others


def test_seed_melody_is_continued(model) -> None:
    seed = pretty_midi.PrettyMIDI(initial_tempo=120)
    inst = pretty_midi.Instrument(program=0)
    inst.notes = [pretty_midi.Note(80, p, 0.5 * i, 0.5 * i + 0.5) for i, p in enumerate((60, 62, 64, 65, 67))]
    seed.instruments.append(inst)
    piece = generate(_arc(6.0, 0.5, 0.5), duration=6.0, seed=0, seed_midi=seed, model=model)
    starts = sorted((round(n.start, 2), n.pitch) for n in piece.notes() if n.start < 2.5)
    assert [p for t, p in starts if t in (0.0, 0.5, 1.0, 1.5, 2.0)][:5] == [60, 62, 64, 65, 67]
    assert any(n.start >= 2.5 for n in piece.notes())  # it went on after the seed


def test_bad_arguments_give_clear_errors(model, tmp_path) -> None:
    with pytest.raises(ParameterError, match="duration"):
        generate(None, duration=0.0, model=model)
    with pytest.raises(ParameterError, match="top_p"):
        generate(None, duration=2.0, top_p=0.0, model=model)
    with pytest.raises(ModelError, match="no composer checkpoint"):
        generate(None, duration=2.0, model=tmp_path / "none.pt")
    bad = tmp_path / "seed.mid"
    bad.write_bytes(b"MThd nonsense")
    with pytest.raises(MediaError, match=r"seed\.mid"):
        generate(None, duration=2.0, seed_midi=bad, model=model)


def test_learned_source_fills_a_material_request(model) -> None:
    beats = np.arange(0.0, 8.0, 0.5)
    req = MaterialRequest(arc=_arc(8.0, 0.3, 0.6), duration=8.0, cuts=(4.0,), beats=beats, downbeats=beats[::4],
                          chords=(), tonic=0, seed=2, seed_melody=(Note(0.0, 1.0, 67, 90), Note(1.0, 2.0, 69, 90)))
    mat = LearnedSource(model).generate(req)
    assert mat.source == "learned" and mat.melody
    for line in (mat.melody, mat.counter):
        assert all(0 <= n.start < n.end <= 8.0 + 1e-6 and 0 <= n.pitch <= 127 and 1 <= n.velocity <= 127 for n in line)
        assert all(a.end <= b.start + 1e-9 for a, b in itertools.pairwise(line))  # one voice



def test_the_second_voice_is_the_models_own_lower_line_or_nothing() -> None:
    from composer.model.generate import second_voice
    from composer.music.notes import voice_line

    one = [Note(float(t), t + 0.5, 67 + t % 3, 90) for t in range(8)]
    assert second_voice(one, voice_line(one)) == []  # one voice: the melody is not its own counter line
    two = one + [Note(float(t), t + 1.0, 55 - t % 2, 90) for t in range(0, 8, 2)]
    low = second_voice(two, voice_line(two))
    assert [n.pitch for n in low] == [55, 55, 55, 55] and all(n.end <= n.start + 1.0 for n in low)

def test_evaluation_metrics_on_a_hand_built_piece() -> None:
    from composer.training.evaluate import note_cut_hits, overlap, piece_stats

    pm = pretty_midi.PrettyMIDI(initial_tempo=120)
    inst = pretty_midi.Instrument(program=0)
    scale = (60, 62, 64, 65, 67, 69, 71)
    for bar in range(2):  # two identical bars of the C major scale, one note per 2/7 s
        t0 = 2.0 * bar
        inst.notes += [pretty_midi.Note(80, p, t0 + k * 2 / 7, t0 + (k + 1) * 2 / 7) for k, p in enumerate(scale)]
    for start, chord in ((4.0, (48, 52, 55)), (6.0, (45, 48, 52))):  # C major, then A minor at 6.0
        inst.notes += [pretty_midi.Note(80, p, start, start + 2.0) for p in chord]
    pm.instruments.append(inst)
    s = piece_stats(pm, np.array([0.0, 2.0]), 4.0)
    assert s.pc_entropy == pytest.approx(np.log2(7))
    assert s.scale_consistency == 1.0 and s.groove_consistency == 1.0
    assert s.note_density == pytest.approx(14 / 4.0)
    assert note_cut_hits(pm, (5.0, 6.0, 7.0)) == [False, True, False]
    assert overlap([1.0, 2.0, 3.0], [1.0, 2.0, 3.0]) == pytest.approx(1.0, abs=0.02)
    assert overlap([1.0, 1.1, 1.2], [9.0, 9.1, 9.2]) < 0.01


def test_response_sweep_reads_back_each_axis(model) -> None:
    from composer.training.evaluate import response

    res = response(model, duration=4.0, seeds=1)
    assert set(res) == {"valence", "arousal"}
    assert res["valence"]["targets"] == [-0.6, 0.0, 0.6] and res["arousal"]["targets"] == [-0.4, 0.2, 0.7]
    for r in res.values():
        assert len(r["measured"]) == 3 and all(-1.0 <= m <= 1.0 for m in r["measured"])
        assert r["slope"] == pytest.approx(np.polyfit(r["targets"], r["measured"], 1)[0])
    from analysis.music.symbolic import bar_va

    # Each sweep reads its own axis of the piece written for its target (seed 0, the only one here).
    for axis, (v, a) in (("valence", (-0.6, 0.1)), ("arousal", (0.2, -0.4))):
        pm = generate(EmotionArc.constant(4.0, valence=v, arousal=a), duration=4.0, seed=0, model=model).midi
        assert res[axis]["measured"][0] == pytest.approx(float(np.mean(getattr(bar_va(pm), axis))))
