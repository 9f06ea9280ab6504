"""The conditional transformer, its batches, trainer and checkpoints, with a tiny config on CPU."""

from __future__ import annotations

import io
from dataclasses import replace

import numpy as np
import pytest
import torch
from music21 import corpus

from analysis.errors import ModelError, ParameterError
from analysis.music.symbolic import score_to_midi
from composer.model import checkpoint
from composer.model.tokens import Tokenizer
from composer.model.transformer import ModelConfig, MusicTransformer
from composer.training.data import DataConfig, _stack, clean, label_piece
from composer.training.train import TrainConfig, heldout_loss, train

CHORALES = ("bwv66.6", "bwv269", "bwv347", "bwv153.1", "bwv86.6")


@pytest.fixture(scope="module")
def tok() -> Tokenizer:
    return Tokenizer()


@pytest.fixture(scope="module")
def data(tok: Tokenizer):
    """Four Bach chorales for training and one held out, labelled by the real pipeline."""
    pieces = [(name, label_piece(clean(score_to_midi(corpus.parse(name))), tok)) for name in CHORALES]
    return {"train": _stack(pieces[:4]), "heldout": _stack(pieces[4:])}


@pytest.fixture(scope="module")
def tiny(tok: Tokenizer) -> ModelConfig:
    return ModelConfig(vocab_size=tok.vocab_size, block_size=64, n_layer=2, n_head=2, n_embd=32)


@pytest.fixture(scope="module")
def tiny_train() -> TrainConfig:
    return TrainConfig(steps=12, batch_size=4, block=64, lr=1e-2, warmup=3, eval_every=6, eval_batches=2,
                       save_every=6, threads=1)


def test_batches_hold_shifted_targets_and_boundaries(data, tok: Tokenizer) -> None:
    b = data["train"].batch(np.random.default_rng(0), batch_size=6, block=64, cut_prob=1.0, clamp=4.0)
    assert b["x"].shape == b["y"].shape == (6, 64) and b["va"].shape == (6, 64, 2)
    assert np.array_equal(b["x"][:, 1:], b["y"][:, :-1])
    assert b["x"].min() >= 0 and b["x"].max() < tok.vocab_size
    assert np.all((b["boundary"] >= 0) & (b["boundary"] <= 4.0))
    assert np.all(np.abs(b["va"]) <= 1.0)
    # with every chord change a cut, the offset is 0 right before each CHORD token is read
    chord_next = (b["y"] >= tok.chord_offset) & (b["y"] < tok.vocab_size)
    assert chord_next.any() and np.all(b["boundary"][chord_next] < 1e-3)


def test_shapes_loss_and_kv_cache_match_the_full_pass(tiny: ModelConfig, data) -> None:
    torch.manual_seed(0)
    model = MusicTransformer(tiny).eval()
    batch = data["train"].batch(np.random.default_rng(1), batch_size=2, block=32)
    b = {k: torch.from_numpy(v) for k, v in batch.items()}
    logits, loss, cache = model(b["x"], b["va"], b["boundary"], targets=b["y"])
    assert logits.shape == (2, 32, tiny.vocab_size)
    assert loss is not None and abs(loss.item() - np.log(tiny.vocab_size)) < 1.0  # untrained: near uniform
    assert len(cache) == 2 and cache[0][0].shape == (2, 2, 32, 16)
    # prefix of 20, then one token at a time, must equal the full pass
    _, _, past = model(b["x"][:, :20], b["va"][:, :20], b["boundary"][:, :20])
    steps = []
    for t in range(20, 32):
        out, _, past = model(b["x"][:, t : t + 1], b["va"][:, t : t + 1], b["boundary"][:, t : t + 1],
                             past=past, start=t)
        steps.append(out)
    torch.testing.assert_close(torch.cat(steps, 1), logits[:, 20:], atol=1e-5, rtol=1e-4)
    with pytest.raises(ParameterError, match="block_size"):
        model(torch.zeros(1, 65, dtype=torch.long), torch.zeros(1, 65, 2), torch.zeros(1, 65))


def test_condition_changes_logits_and_null_condition_ignores_it(tiny: ModelConfig) -> None:
    torch.manual_seed(0)
    model = MusicTransformer(tiny).eval()
    with torch.no_grad():
        model.null_va.normal_()  # trained models have a non-zero null vector
    x = torch.tensor([[1, 3, 140, 200]])
    bnd = torch.full((1, 4), 4.0)
    happy, sad = torch.full((1, 4, 2), 0.9), torch.full((1, 4, 2), -0.9)
    lh, _, _ = model(x, happy, bnd)
    ls, _, _ = model(x, sad, bnd)
    assert (lh - ls).abs().max() > 1e-3
    off = torch.tensor([False])
    nh, _, _ = model(x, happy, bnd, cond_mask=off)
    ns, _, _ = model(x, sad, torch.zeros(1, 4), cond_mask=off)
    torch.testing.assert_close(nh, ns)
    lb, _, _ = model(x, happy, torch.zeros(1, 4))
    assert (lh - lb).abs().max() > 1e-3  # the boundary offset is seen too


def test_training_learns_is_deterministic_and_resumes(tiny, tiny_train, data, tok, tmp_path) -> None:
    a = train(tiny, tiny_train, data, tok, tmp_path / "a", log=False)
    b = train(tiny, tiny_train, data, tok, tmp_path / "b", log=False, data_config=DataConfig(mode_turn=True))
    assert checkpoint.load(b.checkpoint).meta["data_config"]["mode_turn"] is True
    assert "data_config" not in checkpoint.load(a.checkpoint).meta
    first = [line for line in (tmp_path / "a" / "train.jsonl").read_text().splitlines()]
    assert len(first) == 2 and a.steps == 12
    assert a.heldout_loss == b.heldout_loss and a.train_loss == b.train_loss
    # stop at 6 steps, then resume to 12: same weights as the straight run
    half = train(tiny, tiny_train, data, tok, tmp_path / "c", log=False, until=6)
    assert half.steps == 6
    c = train(tiny, tiny_train, data, tok, tmp_path / "c", log=False)
    assert c.steps == 12
    wa = checkpoint.load(a.checkpoint).model.state_dict()
    wc = checkpoint.load(c.checkpoint).model.state_dict()
    for k in wa:
        torch.testing.assert_close(wa[k], wc[k])
    untrained = MusicTransformer(tiny)
    assert a.heldout_loss < heldout_loss(untrained, data["heldout"], tiny_train) - 0.5


def test_fine_tuning_starts_from_the_given_weights(tiny, tiny_train, data, tok, tmp_path) -> None:
    base = train(tiny, tiny_train, data, tok, tmp_path / "base", log=False)
    parent = checkpoint.load(base.checkpoint)
    still = replace(tiny_train, steps=2, lr=0.0, min_lr=0.0, eval_every=2, save_every=2)
    kept = train(tiny, still, data, tok, tmp_path / "kept", log=False, init=parent)
    for k, w in parent.model.state_dict().items():  # a zero learning rate leaves the parent's weights
        torch.testing.assert_close(checkpoint.load(kept.checkpoint).model.state_dict()[k], w)
    assert kept.heldout_loss == pytest.approx(base.heldout_loss, rel=1e-5)
    assert checkpoint.load(kept.checkpoint).meta["init"]["steps"] == 12
    tuned = train(tiny, replace(tiny_train, steps=6, velocity_shift=16), data, tok, tmp_path / "tuned", log=False,
                  init=parent)
    fresh = train(tiny, replace(tiny_train, steps=6, velocity_shift=16), data, tok, tmp_path / "fresh", log=False)
    assert tuned.heldout_loss < fresh.heldout_loss  # six steps from trained weights beat six from scratch


def test_the_condition_can_learn_apart(tiny, tiny_train, data, tok, tmp_path) -> None:
    """``cond_lr_scale``: the valence-arousal MLP in a group of its own, without weight decay and at that
    multiple of the learning rate; everything else trains as before."""
    from composer.training.train import _optimizer

    model = MusicTransformer(tiny)
    groups = _optimizer(model, replace(tiny_train, cond_lr_scale=10.0)).param_groups
    cond = {id(p) for p in model.va_proj.parameters()}
    assert [len(g["params"]) for g in groups][-1] == len(cond) and {id(p) for p in groups[-1]["params"]} == cond
    assert groups[-1]["weight_decay"] == 0.0 and groups[-1]["lr_scale"] == 10.0
    assert len(_optimizer(model, tiny_train).param_groups) == 2  # the default: as before
    still = replace(tiny_train, steps=2, lr=0.0, min_lr=0.0, eval_every=2, save_every=2, cond_lr_scale=10.0)
    parent = checkpoint.load(train(tiny, tiny_train, data, tok, tmp_path / "base", log=False).checkpoint)
    kept = train(tiny, still, data, tok, tmp_path / "kept", log=False, init=parent)
    for k, w in parent.model.state_dict().items():  # a zero rate times ten is still zero
        torch.testing.assert_close(checkpoint.load(kept.checkpoint).model.state_dict()[k], w)
    moved = train(tiny, replace(still, lr=1e-3, min_lr=1e-3), data, tok, tmp_path / "moved", log=False, init=parent)
    after = checkpoint.load(moved.checkpoint).model.state_dict()
    step = {k: float((after[k] - w).abs().max()) for k, w in parent.model.state_dict().items()}
    assert step["va_proj.0.weight"] > 5 * step["blocks.0.attn.qkv.weight"]  # the condition moves ten times as far


def test_checkpoint_round_trip_and_clear_errors(tiny, tok, tmp_path) -> None:
    torch.manual_seed(3)
    model = MusicTransformer(tiny).eval()
    path = checkpoint.save(tmp_path / "m.pt", model, tok, meta={"steps": 0})
    loaded = checkpoint.load(path)
    assert loaded is checkpoint.load(path)  # read once per process
    assert loaded.tokenizer.config == tok.config and loaded.meta["steps"] == 0
    x = torch.tensor([[1, 5, 9]])
    va, bnd = torch.zeros(1, 3, 2), torch.ones(1, 3)
    torch.testing.assert_close(loaded.model(x, va, bnd)[0], model(x, va, bnd)[0])
    assert (tmp_path / "m.json").exists()
    with pytest.raises(ModelError, match="no composer checkpoint"):
        checkpoint.load(tmp_path / "missing.pt")
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ModelError, match="cannot read"):
        checkpoint.load(tmp_path / "bad.pt")
    payload = torch.load(path, weights_only=True)
    payload["model_config"]["n_embd"] = 64
    torch.save(payload, tmp_path / "other.pt")
    with pytest.raises(ModelError, match="does not fit"):
        checkpoint.load(tmp_path / "other.pt")


# --------------------------------------------------------------------------- corpus step

_BOOK = """% a made-up two-tune book with a file header
M:4/4
L:1/8

X:1
T:First Tune
K:C
CDEF GABc|c2B2 A4|]

X:2
T:Second Tune
K:Am
ABcd e2a2|a2g2 e4|]
"""


def test_a_multi_tune_file_is_split_into_named_tunes_that_parse_alone(tmp_path) -> None:
    from composer.training.corpus import _parse, corpus_jobs, piece_name, split_abc

    tunes = split_abc(_BOOK)
    assert len(tunes) == 2 and all(t.startswith("% a made-up") and "L:1/8" in t for t in tunes)
    assert "Second Tune" in tunes[1] and "First Tune" not in tunes[1]
    book = tmp_path / "corpus" / "folk" / "book.abc"
    book.parent.mkdir(parents=True)
    book.write_text(_BOOK)
    single = tmp_path / "corpus" / "folk" / "one.abc"
    single.write_text(tunes[0])
    jobs = list(corpus_jobs([book, single]))
    assert [j.name for j in jobs] == [piece_name(book, 0), piece_name(book, 1), piece_name(single, None)]
    assert jobs[0].name.endswith("-0000") and jobs[2].text is None  # a one-tune file is parsed whole
    assert [j.index for j in corpus_jobs([book], max_tunes=1)] == [0]
    out = tmp_path / "midi"
    out.mkdir()
    _job, pieces, error = _parse((jobs[1], str(out), 60.0))
    assert error == "" and [p["name"] for p in pieces] == [jobs[1].name]
    assert pieces[0]["notes"] == 9 and pieces[0]["tokens"] > 2 * 9 and pieces[0]["seconds"] > 0
    from music21 import converter

    assert converter.parse((out / f"{jobs[1].name}.mid").read_bytes(), format="midi").flatten().notes[0].name == "A"


def test_the_heldout_list_is_fixed_and_follows_the_hash_rule() -> None:
    from composer.training.data import is_heldout as used_by_data
    from composer.training.layout import HELDOUT_LIST, heldout_by_hash, is_heldout

    if not HELDOUT_LIST.is_file():
        pytest.skip("no held-out list written yet (python -m composer.training.corpus --write-heldout)")
    names = HELDOUT_LIST.read_text().split()
    assert names == sorted(set(names)) and len(names) > 100
    assert all(heldout_by_hash(n) and is_heldout(n) for n in names) and used_by_data is is_heldout
    assert not is_heldout("bach_bwv66.6.mxl-000000")  # CRC32 mod 100 = 47: not held out


def test_retry_finds_the_jobs_that_wrote_nothing(tmp_path) -> None:
    from composer.training.corpus import _unfinished

    for stem in ("folk_book.abc-aaaaaa-0000", "quartet.mxl-bbbbbb-0001"):
        (tmp_path / f"{stem}.mid").write_bytes(b"")
    done = {"folk_book.abc-aaaaaa-0000", "folk_book.abc-aaaaaa-0001", "quartet.mxl-bbbbbb", "bach.mxl-cccccc"}
    # a tune without its file failed; a whole file that wrote indexed scores finished
    assert _unfinished(tmp_path, done) == {"folk_book.abc-aaaaaa-0001", "bach.mxl-cccccc"}


def test_a_time_signature_shared_by_two_measures_still_translates() -> None:
    """music21's ABC reader can place one TimeSignature object in several measures; its MIDI writer refuses."""
    import pretty_midi
    from music21 import meter, midi, note, stream

    from composer.training.corpus import _to_midi

    shared, part = meter.TimeSignature("4/4"), stream.Part()
    for k, pitch in enumerate(("C4", "E4")):
        m = stream.Measure(number=k + 1)
        m.insert(0, shared)
        m.append(note.Note(pitch, quarterLength=4))
        part.append(m)
    score = stream.Score([part])
    with pytest.raises(Exception, match="already found"):
        midi.translate.music21ObjectToMidiFile(score)
    pm = pretty_midi.PrettyMIDI(io.BytesIO(_to_midi(score, midi)))
    assert [n.pitch for i in pm.instruments for n in i.notes] == [60, 64]


def test_a_heldout_only_build_needs_no_training_files_and_matches_the_full_split(tok, tmp_path) -> None:
    from composer.training.data import build
    from composer.training.layout import heldout_by_hash

    names = [f"bach_chorale.mxl-{i:06d}" for i in range(300)]
    held = [n for n in names if heldout_by_hash(n)][:2]
    trained = [n for n in names if not heldout_by_hash(n)][:2]
    src = tmp_path / "midi"
    src.mkdir()
    for name, chorale in zip(held + trained, CHORALES, strict=False):
        score_to_midi(corpus.parse(chorale)).write(str(src / f"{name}.mid"))
    cfg = DataConfig(augment_copies=0)
    full = build(tok, cfg, source=src, cache=tmp_path / "cache", workers=1)
    assert sorted(full["heldout"].names) == sorted(held) and len(full["train"]) == len(trained)

    (src / f"{trained[0]}.mid").unlink()  # a training file this machine never parsed
    listed = [f"{n}.mid" for n in held + trained]
    with pytest.raises(ParameterError, match="parse the rest"):
        build(tok, cfg, source=src, cache=tmp_path / "cache", workers=1, only=listed)
    for _ in range(2):  # labelled, then read back from its own cache file
        part = build(tok, cfg, source=src, cache=tmp_path / "cache", workers=1, only=listed, heldout_only=True)
        assert set(part) == {"heldout"} and part["heldout"].names == full["heldout"].names
        np.testing.assert_array_equal(part["heldout"].tokens, full["heldout"].tokens)
        np.testing.assert_array_equal(part["heldout"].va, full["heldout"].va)
