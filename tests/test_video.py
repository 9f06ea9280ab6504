"""analyze_video end to end on generated clips, and the arc plot."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from mediagen import corrupt_copy

import analysis
from analysis.errors import MediaError, ParameterError
from analysis.plot import plot_arc, sections
from analysis.video import VideoAnalysis, analyze_video, get_source


def test_four_shot_clip_end_to_end(four_shot_clip) -> None:
    steps: list[tuple[float, str]] = []
    res = analysis.analyze_video(four_shot_clip.path, progress=lambda f, m: steps.append((f, m)))
    assert isinstance(res, VideoAnalysis)
    assert res.duration == pytest.approx(four_shot_clip.duration, abs=0.05)
    assert len(res.cuts) == 3
    for found, true in zip(res.cuts, four_shot_clip.cut_times, strict=True):
        assert abs(found - true) <= 2 / four_shot_clip.fps
    assert res.arc.hop == pytest.approx(0.5)
    assert len(res.arc) == int(np.ceil(four_shot_clip.duration / 0.5))
    assert set(res.source_arcs) == {"visual", "audio"} and res.has_audio
    assert res.pace.mean == pytest.approx(3 / four_shot_clip.duration * 60)
    assert 50 <= res.suggested_tempo <= 180
    fractions = [f for f, _ in steps]
    assert fractions[0] == 0.0 and fractions[-1] == 1.0 and fractions == sorted(fractions)
    d = json.loads(json.dumps(res.to_dict()))
    assert d["cuts"] == list(res.cuts) and len(d["arc"]["valence"]) == len(res.arc)
    assert analysis.EmotionArc.from_dict(d["arc"]).times.size == len(res.arc)


def test_bright_clip_beats_dark_clip_on_both_axes(bright_clip, dark_clip) -> None:
    bright = analyze_video(bright_clip.path)
    dark = analyze_video(dark_clip.path)
    assert bright.arc.valence.mean() > dark.arc.valence.mean() + 0.3
    assert bright.arc.arousal.mean() > dark.arc.arousal.mean() + 0.5
    assert bright.suggested_tempo > dark.suggested_tempo


def test_clip_without_audio_still_gets_an_arc(silent_clip) -> None:
    res = analyze_video(silent_clip.path)
    assert not res.has_audio
    assert len(res.arc) == 6 and res.coverage == 1.0
    assert np.all(res.source_arcs["audio"].confidence == 0)
    assert res.sources_quiet == {"audio": "the clip has no sound"}  # said, not left unmentioned
    # the arc is the visual reading alone (smoothed)
    assert np.all(np.isfinite(res.arc.valence)) and np.std(res.arc.arousal) < 0.2
    assert any("no audio" in w for w in res.warnings)


def test_visual_only_and_content_type(four_shot_clip) -> None:
    res = analyze_video(four_shot_clip.path, sources=["visual"], content_type="action", smoothing="none")
    assert list(res.source_arcs) == ["visual"]
    assert res.arc.valence == pytest.approx(np.clip(res.source_arcs["visual"].valence, -1, 1))



def test_the_content_type_sets_how_much_each_source_counts(four_shot_clip) -> None:
    """A music video trusts the sound more than an action clip does (audio 1.8 : visual 1.0 against
    1.3 : 1.6), so its fused arousal lies nearer the audio source's reading."""
    share = {}
    for kind in ("action", "music_video"):
        res = analyze_video(four_shot_clip.path, sources=["visual", "audio"], content_type=kind, smoothing="none")
        vis, aud = res.source_arcs["visual"].arousal, res.source_arcs["audio"].arousal
        apart = np.abs(aud - vis) > 0.1
        assert apart.sum() >= 5
        share[kind] = float(np.median((res.arc.arousal - vis)[apart] / (aud - vis)[apart]))
    assert 0.0 < share["action"] < share["music_video"] < 1.0
    assert share["music_video"] - share["action"] > 0.1

def test_sources_are_created_once_per_process() -> None:
    assert get_source("visual") is get_source("visual")


def test_partial_read_is_a_warning(tmp_path: Path, four_shot_clip) -> None:
    from mediagen import make_clip

    full = make_clip(tmp_path / "full.mkv", shots=list(four_shot_clip.shots), audio="drone")
    res = analyze_video(corrupt_copy(full, tmp_path / "cut.mkv", keep=0.5))
    assert res.duration < four_shot_clip.duration - 1
    assert any("truncated" in w for w in res.warnings)


def test_errors_name_the_problem(tmp_path: Path, four_shot_clip) -> None:
    with pytest.raises(MediaError, match=r"missing\.mp4: file not found"):
        analyze_video(tmp_path / "missing.mp4")
    with pytest.raises(ParameterError, match="unknown source"):
        analyze_video(four_shot_clip.path, sources=("visual", "smell"))
    with pytest.raises(ParameterError, match="hop"):
        analyze_video(four_shot_clip.path, hop=0)
    with pytest.raises(ParameterError, match="unknown content type"):
        analyze_video(four_shot_clip.path, content_type="western")
    with pytest.raises(MediaError, match="subtitle file not found"):
        analyze_video(four_shot_clip.path, subtitles=tmp_path / "none.srt")


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"sources": None}, "`sources` must be a sequence of names (received None)"),
    ({"subtitles": 5}, "`subtitles` must be a path"),
    ({"hop": True}, "`hop` must be between 0.05 and 60 seconds (received True)"),
    ({"sample_fps": float("nan")}, "`sample_fps` must be a positive, finite number (received nan)"),
    ({"frame_width": 100.5}, "`frame_width` must be a whole number of pixels, at least 8 (received 100.5)"),
    ({"cut_threshold": -5}, "`cut_threshold` must be positive or None (received -5)"),
])
def test_an_option_out_of_range_is_named_as_the_caller_named_it(four_shot_clip, kwargs, message) -> None:
    """Each reached Python or NumPy (``'NoneType' object is not iterable``, pathlib's TypeError, NumPy's
    "cannot convert float NaN to integer"), was read as something else (``hop=True`` as 1 s) or was named
    by an inner name (`threshold`, `width`)."""
    with pytest.raises(ParameterError, match=f"^{re.escape(message)}"):
        analyze_video(four_shot_clip.path, **kwargs)


def test_numpy_numbers_are_taken_as_options(four_shot_clip) -> None:
    """``hop=np.float32(0.25)`` was refused as not between 0.05 and 60 seconds."""
    res = analyze_video(four_shot_clip.path, sources=["visual"], hop=np.float32(0.25), frame_width=np.int32(96))
    assert res.arc.hop == pytest.approx(0.25) and res.arc.duration == pytest.approx(res.duration, abs=0.25)


def test_plot_writes_png_and_sections_cover_the_arc(tmp_path: Path) -> None:
    t = (np.arange(20) + 0.5) * 0.5
    arc = analysis.EmotionArc.from_va(t, np.where(t < 5, 0.8, -0.7), np.where(t < 5, 0.5, -0.3))
    secs = sections(arc)
    assert [s[2] for s in secs] == ["joy", "sadness"]
    assert secs[0][0] == pytest.approx(0.0) and secs[-1][1] == pytest.approx(10.0)
    out = plot_arc(arc, tmp_path / "arc.png", cuts=(5.0,))
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 10_000


def test_a_clip_of_nothing_but_speech_says_why_the_audio_source_found_nothing(tmp_path) -> None:
    """Dialogue is read by the speech source alone; the audio source, with no stretch without speech long or
    loud enough, is listed as having found nothing and why, instead of going unmentioned."""
    from mediagen import Shot, talking_clip

    lines = [(0.1, "I am so happy to see all my friends again today."),
             (2.6, "What a wonderful morning it is, my dear friends.")]
    made = talking_clip(tmp_path / "talk.mp4", lines, shots=[Shot(125, (90, 90, 90))])
    if made is None:
        pytest.skip("espeak-ng is not installed")
    res = analyze_video(made[0])
    assert "speech" in res.sources_used and "audio" not in res.sources_used and "audio" not in res.sources_off
    assert res.sources_quiet == {"audio": "speech throughout, which the speech source reads"}
    assert res.to_dict()["sources_quiet"] == res.sources_quiet
