"""The public names of DESIGN.md resolve, and stay what they are after every submodule is imported;
their file arguments refuse what is not a path by name.

A submodule named like a lazily exported function (``matching/rank.py`` beside
``matching.rank``) would replace the function with the module once imported anywhere.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

import analysis
import composer
import matching

PACKAGES = (analysis, matching, composer)


@pytest.mark.parametrize("package", PACKAGES, ids=lambda p: p.__name__)
def test_exports_survive_importing_every_submodule(package):
    for info in pkgutil.walk_packages(package.__path__, prefix=f"{package.__name__}."):
        importlib.import_module(info.name)
    for name in package.__all__:
        value = getattr(package, name)
        assert not inspect.ismodule(value), f"{package.__name__}.{name} is a module, not the exported object"


def test_design_api_names():
    assert callable(analysis.analyze_video) and callable(analysis.analyze_track)
    assert callable(matching.rank) and inspect.isclass(matching.Library) and inspect.isclass(matching.Match)
    assert callable(composer.compose) and callable(composer.score_video) and callable(composer.score_videos)


def test_what_is_not_a_path_is_named_before_any_work(tmp_path, monkeypatch) -> None:
    """None or a number where a file goes is a ParameterError naming the argument (it was pathlib's
    TypeError), and a render is refused before it synthesises anything."""
    from analysis.arc import EmotionArc
    from analysis.errors import ParameterError
    from composer.pipeline.score_video import score_video
    from matching.fit import fit_to_clip, fit_track

    piece = composer.compose(EmotionArc.constant(4.0, valence=0.0, arousal=0.0), source="rules")
    lib = matching.Library(f"sqlite:///{tmp_path / 'lib.db'}")
    calls = {
        "path": [lambda: analysis.analyze_video(None), lambda: analysis.analyze_track(123),
                 lambda: lib.add(None), lambda: piece.write_midi(None), lambda: piece.write_musicxml(7),
                 lambda: score_video(None, library=lib, out_dir=tmp_path / "out")],
        "folder": [lambda: lib.add_folder(None)],
        "wav_path": [lambda: piece.render(None)],
        "video": [lambda: piece.mux(None, tmp_path / "o.mp4")],
        "directory": [lambda: piece.write_stems(None)],
        "track": [lambda: fit_track(None, tmp_path / "f.wav", start=0.0, duration=2.0)],
        "clip": [lambda: fit_to_clip(tmp_path / "t.wav", None, tmp_path / "f.mp4", start=0.0)],
        "paths": [lambda: composer.score_videos([None], out_dir=tmp_path / "out")],
    }
    for name, fns in calls.items():
        for fn in fns:
            with pytest.raises(ParameterError, match=f"`{name}` must be a path"):
                fn()
    assert not list(tmp_path.glob("*.wav")) and not (tmp_path / "out").exists()
    for paths in (None, 5):
        with pytest.raises(ParameterError, match="`paths` must be a clip, a folder or an iterable of them"):
            composer.score_videos(paths, out_dir=tmp_path / "out")
    monkeypatch.chdir(tmp_path)
    for value in (None, "", 5):  # Library(None) made an SQLite file named "None"
        with pytest.raises(ParameterError, match="`url_or_path` must be a database path or URL"):
            matching.Library(value)
    assert not [p.name for p in tmp_path.iterdir() if not p.name.startswith("lib.db")]


def test_the_model_alones_midi_writer_names_what_is_in_the_way(tmp_path) -> None:
    """``composer.generate(...).write_midi`` to a folder raised mido's IsADirectoryError, and under a file
    pathlib's FileExistsError; it now answers as ``Composition.write_midi`` does, and writes the same bytes to
    a str and a Path."""
    from analysis.arc import EmotionArc
    from analysis.errors import MediaError, ParameterError

    raw = composer.generate(EmotionArc.constant(3.0, valence=0.2, arousal=0.1), duration=3.0, seed=0)
    (tmp_path / "a.mid").mkdir()
    (tmp_path / "file").write_text("x")
    with pytest.raises(MediaError, match=r"a\.mid: is a directory, expected a file path to write"):
        raw.write_midi(tmp_path / "a.mid")
    with pytest.raises(MediaError, match="file: cannot create the folder"):
        raw.write_midi(str(tmp_path / "file" / "raw.mid"))
    with pytest.raises(ParameterError, match="`path` must be a path"):
        raw.write_midi(None)
    assert raw.write_midi(str(tmp_path / "s" / "r.mid")).read_bytes() == raw.write_midi(tmp_path / "p.mid").read_bytes()


def test_a_scored_copy_is_refused_over_its_own_clip(tmp_path) -> None:
    """``piece.mux("clip.mp4", "clip.mp4")`` replaced the clip by its scored copy without a word (its own
    sound gone for good), and a folder given as the clip was "file not found"."""
    from mediagen import Shot, make_clip

    from analysis.arc import EmotionArc
    from analysis.errors import MediaError, ParameterError

    clip = make_clip(tmp_path / "clip.mp4", shots=[Shot(25, (200, 60, 50)), Shot(25, (40, 90, 180))], audio="drone")
    before = clip.read_bytes()
    piece = composer.compose(EmotionArc.constant(2.0, valence=0.0, arousal=0.0), source="rules")
    for out in (clip, str(clip), tmp_path / "." / "clip.mp4"):
        with pytest.raises(ParameterError, match="the scored video must be another file than the clip"):
            piece.mux(clip, out)
    (tmp_path / "link.mp4").symlink_to(clip)
    with pytest.raises(ParameterError, match="another file than the clip"):
        piece.mux(tmp_path / "link.mp4", clip)
    assert clip.read_bytes() == before
    (tmp_path / "takes").mkdir()
    with pytest.raises(MediaError, match="takes: is a folder, not a clip"):
        piece.mux(tmp_path / "takes", tmp_path / "o.mp4")


def test_the_model_alone_refuses_a_piece_too_short_for_a_note() -> None:
    """``composer.generate(arc, duration=0.002)`` returned a RawPiece whose MIDI held no note (chord_times
    empty) without a word; ``plan=0`` was told the plan must be a HarmonyPlan "or None", though False is
    how one asks for no plan."""
    from analysis.arc import EmotionArc
    from analysis.errors import ParameterError

    arc = EmotionArc.constant(2.0, valence=0.2, arousal=0.1)
    for plan in (None, False):
        with pytest.raises(ParameterError, match=r"^`duration` is too short to hold a note"):
            composer.generate(arc, duration=0.002, seed=0, plan=plan)
    with pytest.raises(ParameterError, match=r"HarmonyPlan from plan_harmony, None or False \(received int\)"):
        composer.generate(arc, duration=2.0, plan=0)
    raw = composer.generate(arc, duration=0.1, seed=0)
    assert sum(len(i.notes) for i in raw.midi.instruments) > 0


@pytest.mark.parametrize("temperature", [float("nan"), float("inf"), "hot"])
def test_the_model_alone_names_a_temperature_it_cannot_sample_at(temperature) -> None:
    """``temperature=nan`` passed the `<= 0` check and returned 3 s without a note and twelve chord changes
    all at 0.0 s."""
    from analysis.arc import EmotionArc
    from analysis.errors import ParameterError

    with pytest.raises(ParameterError, match=r"^`temperature` must be positive and finite"):
        composer.generate(EmotionArc.constant(3.0, valence=0.2, arousal=0.1), duration=3.0, temperature=temperature)


def test_the_model_alone_takes_force_cuts_only_as_a_bool() -> None:
    """``force_cuts="False"`` was read as ``bool("False")``, True: every cut forced though the caller said
    not to."""
    from analysis.arc import EmotionArc
    from analysis.errors import ParameterError

    arc = EmotionArc.constant(3.0, valence=0.2, arousal=0.1)
    for value in ("False", 0, None):
        with pytest.raises(ParameterError, match=r"^`force_cuts` must be True or False"):
            composer.generate(arc, cuts=(1.5,), duration=3.0, force_cuts=value)
