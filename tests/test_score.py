"""score_video and the compose/score commands: match when a track clears the threshold, compose otherwise."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile
from mediagen import Shot, make_clip

import analysis
import matching
from analysis.errors import MediaError, ParameterError
from analysis.media.probe import media_duration
from composer import ScoreResult, compose, score_video
from matching.ranking.ranker import rank
from soundtrack.cli import main


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory):
    """A 5 s clip growing brighter and faster over 3 shots; its analysis."""
    path = tmp_path_factory.mktemp("score") / "clip.mp4"
    shots = [Shot(40, (60, 60, 70), 0.1), Shot(40, (150, 140, 120), 0.5), Shot(45, (250, 200, 40), 1.0)]
    make_clip(path, shots=shots, fps=25, audio="percussion")
    return path, analysis.analyze_video(path)


@pytest.fixture(scope="module")
def library(clip, tmp_path_factory: pytest.TempPathFactory):
    """A library of two tracks: one composed for the clip's arc, one for its mirror image."""
    _, va = clip
    folder = tmp_path_factory.mktemp("library")
    compose(va.arc, va.cuts, va.duration, source="rules").render(folder / "follows.wav")
    mirror = analysis.EmotionArc.from_va(va.arc.times, -va.arc.valence, -va.arc.arousal)
    compose(mirror, (), va.duration, style="ambient", source="rules").render(folder / "mirror.wav")
    lib = matching.Library(folder / "lib.db")
    lib.add(folder / "follows.wav", title="follows")
    lib.add(folder / "mirror.wav", title="mirror")
    return lib


def _close_to_clip(path, clip_path) -> None:
    assert path.is_file()
    assert abs(media_duration(path) - media_duration(clip_path)) < 0.05


def test_empty_or_no_library_composes(clip, tmp_path) -> None:
    path, va = clip
    empty = matching.Library(tmp_path / "empty.db")
    result = score_video(path, library=empty, out_dir=tmp_path / "a", clip_analysis=va, source="rules")
    assert isinstance(result, ScoreResult)
    assert result.chosen == "compose" and result.match is None and result.score is None
    assert "no tracks" in result.reason
    assert set(result.outputs) == {"mid", "musicxml", "wav", "mp4"}
    _close_to_clip(result.outputs["mp4"], path)
    assert abs(soundfile.info(str(result.outputs["wav"])).duration - va.duration) < 0.05
    assert result.composition is not None and result.composition.duration == pytest.approx(va.duration)
    none = score_video(path, out_dir=tmp_path / "b", clip_analysis=va, musicxml=False, source="rules")
    assert none.chosen == "compose" and "no library" in none.reason and "musicxml" not in none.outputs


def test_threshold_decides_between_match_and_compose(clip, library, tmp_path) -> None:
    path, va = clip
    best = rank(va, library, k=5)[0]
    good = score_video(path, library=library, threshold=max(0.0, best.score - 0.01), out_dir=tmp_path / "m",
                       clip_analysis=va)
    assert good.chosen == "match" and good.match.track_id == best.track_id
    assert good.score == pytest.approx(best.score)
    assert f"{best.score:.3f}" in good.reason and ">=" in good.reason
    assert set(good.outputs) == {"wav", "mp4"}
    _close_to_clip(good.outputs["mp4"], path)
    assert {"analysis", "ranking", "fitting"} <= set(good.timings)
    d = good.to_dict()
    assert d["chosen"] == "match" and d["choice"] == best.path and len(d["candidates"]) == 2

    bad = score_video(path, library=library, threshold=min(1.0, best.score + 0.01), out_dir=tmp_path / "c",
                      clip_analysis=va, musicxml=False, source="rules")
    assert bad.chosen == "compose" and bad.score == pytest.approx(best.score) and "<" in bad.reason
    _close_to_clip(bad.outputs["mp4"], path)
    assert {"analysis", "ranking", "composing", "rendering"} <= set(bad.timings)


def test_bad_arguments(clip, tmp_path) -> None:
    path, va = clip
    with pytest.raises(ParameterError, match="threshold"):
        score_video(path, threshold=1.5, clip_analysis=va)
    with pytest.raises(MediaError, match="nope"):
        score_video(path, library=tmp_path / "nope.db", clip_analysis=va)
    with pytest.raises(MediaError):
        score_video(tmp_path / "missing.mp4", out_dir=tmp_path / "x")


def test_a_numpy_threshold_is_taken_and_a_wrong_analysis_named(clip, library, tmp_path) -> None:
    """``threshold=np.float32(0.0)`` (a value read from an array) was refused as not within 0 and 1, and
    ``clip_analysis=5`` reached "'int' object has no attribute 'arc'" after the library was opened."""
    path, va = clip
    result = score_video(path, library=library, threshold=np.float32(0.0), out_dir=tmp_path / "m", clip_analysis=va)
    assert result.chosen == "match" and result.threshold == 0.0
    with pytest.raises(ParameterError, match=r"^`clip_analysis` must be an analysis.VideoAnalysis .*\(received int\)"):
        score_video(path, library=library, out_dir=tmp_path / "x", clip_analysis=5)
    assert not (tmp_path / "x").exists()
    with pytest.raises(ParameterError, match=r"^`musicxml` must be True or False \(received 'no'\)"):
        score_video(path, out_dir=tmp_path / "x", clip_analysis=va, musicxml="no")  # "no" wrote the MusicXML
    assert not (tmp_path / "x").exists()


def test_a_failed_run_leaves_no_empty_folder_it_made(clip, tmp_path, monkeypatch) -> None:
    """Composing fails after the output folder is made: the folder this run made goes again, empty; a
    folder that was there before stays, with what it held."""
    import composer.pipeline.compose

    def failing(*_args, **_kwargs):
        raise ParameterError("`style` failed while composing")

    monkeypatch.setattr(composer.pipeline.compose, "compose", failing)
    path, va = clip
    fresh = tmp_path / "fresh"
    with pytest.raises(ParameterError, match="style"):
        score_video(path, out_dir=fresh, clip_analysis=va, source="rules")
    assert not fresh.exists()
    kept = tmp_path / "kept"
    kept.mkdir()
    (kept / "notes.txt").write_text("mine")
    with pytest.raises(ParameterError, match="style"):
        score_video(path, out_dir=kept, clip_analysis=va, source="rules")
    assert [p.name for p in kept.iterdir()] == ["notes.txt"]
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ParameterError, match="style"):
        score_video(path, out_dir=empty, clip_analysis=va, source="rules")
    assert empty.is_dir()


@pytest.fixture
def no_analysis(monkeypatch) -> list[str]:
    """analyze_video replaced by a stub that records each call and fails; the list of calls."""
    import analysis.video

    calls: list[str] = []

    def analysed(path, **_kwargs):
        calls.append(str(path))
        raise RuntimeError("the clip was analysed")

    monkeypatch.setattr(analysis.video, "analyze_video", analysed)
    return calls


@pytest.mark.parametrize(("option", "value"), [("style", "nosuchstyle"), ("instrument", "kazoo"),
                                                ("source", "oracle")])
def test_unknown_choices_are_refused_before_the_analysis(option, value, no_analysis, tmp_path, capsys) -> None:
    clip_path = tmp_path / "clip.mp4"
    clip_path.write_bytes(b"never read")
    with pytest.raises(ParameterError, match=f"`{option}`.*{value}"):
        score_video(clip_path, out_dir=tmp_path / "out", **{option: value})
    for command in ("score", "compose"):
        assert main([command, str(clip_path), f"--{option}", value]) == 2
        assert f"`{option}`" in capsys.readouterr().err
    assert no_analysis == []
    assert not (tmp_path / "out").exists()


def test_score_command(clip, library, tmp_path, capsys) -> None:
    path, _ = clip
    db = library.catalog().paths  # the library exists on disk
    assert len(db) == 2
    rc = main(["score", str(path), "--library", str(tmp_path.parent / "x.db"), "--json"])
    assert rc == 2 and "x.db" in capsys.readouterr().err
    assert main(["score", str(tmp_path)]) == 2  # a folder: the command that takes one is named
    assert "is a folder: `soundtrack batch FOLDER`" in capsys.readouterr().err
    rc = main(["score", str(path), "--out", str(tmp_path / "s"), "--threshold", "0.5", "--source", "rules",
               "--no-musicxml", "--json"])
    assert rc == 0
    data = json.loads(capsys.readouterr().out)
    assert data["chosen"] == "compose" and data["threshold"] == 0.5
    _close_to_clip(tmp_path / "s" / "clip-score.mp4", path)


def test_compose_command_from_arc_json(clip, tmp_path, capsys) -> None:
    _, va = clip
    arc_json = tmp_path / "clip.json"
    arc_json.write_text(json.dumps(va.to_dict()))  # a whole analysis: arc, cuts, duration
    rc = main(["compose", "--arc", str(arc_json), "--style", "indian_raga", "--instrument", "sitar",
               "--source", "rules", "--out", str(tmp_path / "o"), "--json"])
    assert rc == 0
    data = json.loads(capsys.readouterr().out)
    assert data["instrument"] == 104 and data["style"] == "indian_raga"
    assert data["plan"]["cuts"] == pytest.approx(list(va.cuts), abs=1e-3)
    assert set(data["outputs"]) == {"mid", "musicxml", "wav"}
    assert main(["compose", "--source", "rules"]) == 2
    assert "either --arc" in capsys.readouterr().err


def test_compose_says_how_far_off_the_beat_each_cut_falls_not_that_it_moved(tmp_path, capsys) -> None:
    """The chords change on the cuts; the line said "cut shifts to the nearest beat", as if the cut had moved."""
    arc_json = tmp_path / "arc.json"
    arc_json.write_text(analysis.EmotionArc.constant(6.0, 0.2, 0.8).to_json())
    args = ["compose", "--arc", str(arc_json), "--cuts", "2,4", "--duration", "6", "--style", "ambient",
            "--source", "rules", "--no-audio", "--out", str(tmp_path / "o")]
    assert main([*args, "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)["plan"]
    assert any(abs(s) > 0.05 for s in plan["cut_shifts"])  # a cut off the beat
    assert {2.0, 4.0} <= {c["time"] for c in plan["chords"] if c["cut"]}  # the chords change on the cuts
    assert main(args) == 0
    lines = capsys.readouterr().out.splitlines()
    said = [line for line in lines if "beat" in line]
    assert said == ["nearest beat to each cut (ms): " + ", ".join(f"{s * 1000:+.0f}" for s in plan["cut_shifts"])]


def test_scoring_runs_where_torch_cannot_be_imported(clip, tmp_path) -> None:
    """torch is only the `train` extra: analysing, composing with the shipped model and rendering need none."""
    import subprocess
    import sys
    from pathlib import Path

    path, _ = clip
    code = ("import sys; sys.modules['torch'] = None\n"  # any `import torch` now raises ImportError
            "from soundtrack.cli import main\n"
            f"sys.exit(main(['score', {str(path)!r}, '--out', {str(tmp_path / 'out')!r}, '--source', 'learned']))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          cwd=Path(__file__).resolve().parents[1])
    assert done.returncode == 0, done.stderr[-2000:]
    assert "learned source" in done.stdout
    _close_to_clip(tmp_path / "out" / "clip-score.mp4", path)


def test_score_command_reads_subtitles_and_says_what_it_warned_of(tmp_path, capsys) -> None:
    """The subtitles beside a clip reach `soundtrack score` (and a named file beats them); the analysis's
    warnings reach the user, on stderr and in the JSON."""
    import shutil
    from pathlib import Path

    data = Path(__file__).parent / "data"
    path = make_clip(tmp_path / "talk.mp4", shots=[Shot(60, (90, 90, 90))], fps=10)  # no audio stream
    shutil.copyfile(data / "joy_then_grim.srt", tmp_path / "talk.en.srt")
    assert main(["score", str(path), "--out", str(tmp_path / "a"), "--source", "rules", "--no-musicxml"]) == 0
    out, err = capsys.readouterr()
    assert f"subtitles read: {tmp_path / 'talk.en.srt'}" in out
    assert "soundtrack score: warning: no audio track" in err
    shutil.copyfile(data / "joy_then_grim.vtt", tmp_path / "named.vtt")
    assert main(["score", str(path), "--out", str(tmp_path / "b"), "--source", "rules", "--no-musicxml",
                 "--subtitles", str(tmp_path / "named.vtt"), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["subtitles"] == str(tmp_path / "named.vtt")
    assert any(w.startswith("no audio track") for w in result["warnings"])
    assert main(["compose", str(path), "--out", str(tmp_path / "c"), "--source", "rules"]) == 0
    assert "soundtrack compose: warning: no audio track" in capsys.readouterr().err


def test_score_video_reports_its_progress(clip, library, tmp_path) -> None:
    """From 0 to 1 without going back, through each stage of the way taken (the CLI draws it as a bar)."""
    path, _ = clip
    for threshold, stage in ((1.0, "composing"), (0.0, "fitting")):
        seen: list[tuple[float, str]] = []
        score_video(path, library=library, threshold=threshold, out_dir=tmp_path / stage, source="rules",
                    progress=lambda f, m: seen.append((f, m)))  # noqa: B023 - used at once
        fractions = [f for f, _ in seen]
        assert fractions[0] < 0.1 and fractions[-1] == 1.0 and fractions == sorted(fractions)
        said = " | ".join(m for _, m in seen)
        assert "analysing: decoding" in said and "ranking the library" in said and stage in said, said


def test_progress_bar_draws_only_on_a_terminal(monkeypatch, capsys) -> None:
    from soundtrack.argtypes import progress_bar

    with progress_bar("score", True) as report:  # pytest's stderr is no terminal: nothing drawn
        report(0.5, "halfway")
    assert capsys.readouterr().err == ""
    monkeypatch.setattr("sys.stderr.isatty", lambda: True)
    with progress_bar("score", True) as report:
        report(0.5, "halfway")
    assert "score:" in capsys.readouterr().err
    with progress_bar("score", False) as report:  # --no-progress
        report(0.5, "halfway")
    assert capsys.readouterr().err == ""


def test_tracks_that_cannot_be_fitted_are_passed_over(clip, library, tmp_path) -> None:
    """A track whose file is gone, changed since it was analysed, or too short for the clip is not
    fitted (the clip would get silence or the wrong music): the next usable match is, or a new score."""
    import shutil

    path, va = clip
    folder = tmp_path / "lib"
    folder.mkdir()
    follows = next(r for r in library.list() if r.title == "follows")
    for name in ("gone", "edited", "fits"):
        shutil.copy(follows.path, folder / f"{name}.wav")
    # Three copies of one track would be one record: make each file's bytes its own.
    for i, name in enumerate(("gone", "edited", "fits")):
        y, sr = soundfile.read(folder / f"{name}.wav")
        soundfile.write(folder / f"{name}.wav", y * (1.0 - 0.01 * i), sr)
    compose(va.arc, va.cuts, 1.5, source="rules").render(folder / "short.wav")
    lib = matching.Library(tmp_path / "lib.db")
    lib.add_folder(folder, workers=0, progress=False)
    (folder / "gone.wav").unlink()
    y, sr = soundfile.read(folder / "edited.wav")
    soundfile.write(folder / "edited.wav", y[: sr // 2], sr)
    why = {"gone": "gone.wav is gone", "edited": "edited.wav changed since it was analysed"}
    # the three copies score within a thousandth of each other, so their order is the ranker's to choose:
    # each unusable one ranked above "fits" is passed over, and said to be
    above = [m.title for m in matching.rank(va, lib, k=4)]
    above = above[: above.index("fits")]
    result = score_video(path, library=lib, threshold=0.0, out_dir=tmp_path / "out", clip_analysis=va)
    assert result.chosen == "match" and result.match.title == "fits"
    assert ("best usable" in result.reason) == bool(above)
    passed = "\n".join(result.warnings)
    assert all(why[t] in passed for t in above if t in why), (above, passed)
    _close_to_clip(result.outputs["mp4"], path)

    (folder / "fits.wav").unlink()
    composed = score_video(path, library=lib, threshold=0.0, out_dir=tmp_path / "out2", clip_analysis=va,
                           source="rules", musicxml=False)
    assert composed.chosen == "compose" and "the 4 matches at or above" in composed.reason
    passed = "\n".join(composed.warnings)
    assert why["gone"] in passed and why["edited"] in passed
    assert any(w.startswith("passed over short: too short, even slowed down it covers") for w in composed.warnings)


def test_a_clip_too_short_to_match_is_composed_for(library, tmp_path) -> None:
    path = tmp_path / "blink.mp4"
    make_clip(path, shots=[Shot(8, (200, 180, 40), 0.5)], fps=25, audio="percussion")  # 0.32 s: one arc step
    result = score_video(path, library=library, out_dir=tmp_path / "out", source="rules", musicxml=False)
    assert result.chosen == "compose" and "too short to match" in result.reason
    _close_to_clip(result.outputs["mp4"], path)


def test_derived_names_keep_every_script_and_never_start_like_an_option(clip, tmp_path) -> None:
    """An ASCII-only rule named ``場面一.mp4`` and ``場面二.mp4`` both ``_-score``, so the second clip's files
    replaced the first's; ``score`` took ``-dash.mp4``'s stem as it was (``-dash-score/-dash-score.mid``)."""
    import shutil

    from composer.output.names import safe_stem

    assert [safe_stem(s) for s in ("場面一", "場面二", "Szene Über", "Сцена 1", "-rf", "../x", "a/b\\c", "")] == [
        "場面一", "場面二", "Szene_Über", "Сцена_1", "rf", "x", "a_b_c", "clip"]
    path, va = clip
    dashed = shutil.copyfile(path, tmp_path / "-dash.mp4")
    result = score_video(dashed, clip_analysis=va, musicxml=False, source="rules", clip_sound="replace")
    assert result.outputs["mid"] == tmp_path / "dash-score" / "dash-score.mid" and result.outputs["mid"].is_file()
