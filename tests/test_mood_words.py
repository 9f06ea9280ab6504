"""The mood words (the page's "mostly ...", the plot's strip) follow the fused valence-arousal arc."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from mediagen import Shot, make_clip

from analysis.arc import EMOTION_VA, EMOTIONS, EmotionArc, va_to_emotions
from analysis.video import analyze_video
from soundtrack.results import main_mood, mood, summary

#: A warm, bright still (the visual source reads it as pleasant) under one subtitle line.
WARM = (230, 180, 90)
SAD_LINE = "Tears of happiness, honestly."  # the text reader takes it for sadness
HAPPY_LINE = "What a lovely day, I could cry with joy."


def _subtitled_still(tmp_path: Path, line: str) -> Path:
    clip = make_clip(tmp_path / "still.mp4", shots=[Shot(150, WARM)])
    (tmp_path / "still.srt").write_text(f"1\n00:00:00,200 --> 00:00:05,800\n{line}\n", encoding="utf-8")
    return clip


def _contradicting_steps(arc: EmotionArc, margin: float = 0.2) -> list[tuple[float, str]]:
    """Steps whose word lies on the other side of the valence axis from the step's valence."""
    out = []
    for t, v, word in zip(arc.times, arc.valence, arc.dominant_emotion(), strict=True):
        if (v >= margin and EMOTION_VA[word][0] < 0) or (v <= -margin and EMOTION_VA[word][0] > 0):
            out.append((float(t), word))
    return out


def test_a_pleasant_arc_is_not_called_sad_when_a_source_said_sadness(tmp_path: Path) -> None:
    """A bright still and a line read as sad: the fused arc is pleasant and calm, and the fused emotions a
    near tie of joy and sadness. The words follow the arc, not whichever of the two is a hair ahead."""
    clip = analyze_video(_subtitled_still(tmp_path, SAD_LINE), sources=("visual", "subtitles"))
    assert clip.source_arcs["subtitles"].emotions["sadness"].max() > 0.5  # the source did say sadness
    assert clip.arc.valence.mean() > 0.2  # and the arc is pleasant all the same
    assert _contradicting_steps(clip.arc) == []
    assert main_mood(clip.arc) not in ("sadness", "anger", "fear")
    assert "mostly sadness" not in summary(clip, "verdict")


def test_the_sources_word_stays_where_it_agrees_with_the_arc(tmp_path: Path) -> None:
    clip = analyze_video(_subtitled_still(tmp_path, HAPPY_LINE), sources=("visual", "subtitles"))
    assert clip.arc.valence.mean() > 0.3
    assert main_mood(clip.arc) == "joy"
    assert "mostly joy" in summary(clip, "verdict")


def test_an_arc_from_va_alone_reads_as_its_nearest_region() -> None:
    rng = np.random.default_rng(0)
    va = rng.uniform(-1, 1, (200, 2))
    arc = EmotionArc.from_va(np.arange(200) + 0.5, va[:, 0], va[:, 1])
    regions = va_to_emotions(va[:, 0], va[:, 1])
    nearest = [EMOTIONS[i] for i in np.stack([regions[e] for e in EMOTIONS], axis=1).argmax(axis=1)]
    assert arc.dominant_emotion() == nearest


def test_a_blend_that_contradicts_the_point_gives_way_to_it() -> None:
    """Fused emotions 0.45 sadness / 0.44 joy at a clearly pleasant, lively step: joy."""
    probs = {e: np.array([0.0]) for e in EMOTIONS}
    probs["sadness"], probs["joy"], probs["neutral"] = np.array([0.45]), np.array([0.44]), np.array([0.11])
    arc = EmotionArc(times=np.array([0.25]), valence=np.array([0.5]), arousal=np.array([0.35]), emotions=probs)
    assert arc.dominant_emotion() == ["joy"]


@pytest.mark.parametrize("first", ["joy", "neutral"])
def test_a_tie_in_steps_goes_to_the_more_probable_word(first: str) -> None:
    """Half the steps joy, half neutral: the summary names the one with more probability, whatever the order."""
    other = "neutral" if first == "joy" else "joy"
    probs = {e: np.zeros(4) for e in EMOTIONS}
    probs[first] = np.array([0.9, 0.9, 0.3, 0.3])
    probs[other] = np.array([0.1, 0.1, 0.7, 0.7])
    arc = EmotionArc(times=np.arange(4) + 0.5, valence=np.full(4, 0.3), arousal=np.full(4, 0.2), emotions=probs)
    assert sorted(arc.dominant_emotion()) == sorted([first, first, other, other])
    clip = SimpleNamespace(arc=arc, cuts=(), duration=2.0, sources_used=("speech",), silent_sources=lambda _: "",
                           sources_off={})
    said = first if first == "joy" else mood(arc.va())  # "neutral" on a pleasant arc is named by the grid
    assert first == "joy" or said != "joy"  # so the neutral case still tells the two apart
    assert f"mostly {said};" in summary(clip, "verdict")  # not whichever a set of the two yields first
    assert main_mood(arc) == said


@pytest.mark.parametrize(("va", "word"), [((0.6, 0.5), "joyful"), ((0.6, -0.4), "serene"), ((-0.5, -0.3), "sad"),
                                          ((-0.5, 0.6), "tense"), ((0.05, -0.05), "neutral"), ((0.5, 0.0), "warm")])
def test_the_table_names_the_region_of_a_clear_stretch(va: tuple[float, float], word: str) -> None:
    """A calm, pleasant stretch is serene, not "neutral" (no emotion of the six lies in that quadrant)."""
    assert mood(np.tile(va, (8, 1))) == word


def test_soft_and_loud_minor_and_major_renders_read_as_different_moods(tmp_path: Path) -> None:
    """One chorale rendered soft, loud and turned minor: the mood words follow what the music reader hears
    (soft and loud were both "joy, moderate" while arousal within 0.25 of 0 was "moderate")."""
    import soundfile as sf

    from analysis.music.audio import SR, render_midi
    from analysis.music.track import analyze_track
    from matching.library.demo import DemoPiece, make_midi

    words, arcs = {}, {}
    for name, velocity, mode in (("soft", 0.4, "keep"), ("loud", 1.15, "keep"), ("minor", 0.4, "minor")):
        piece = DemoPiece(name, "bach/bwv86.6", name, (), 48, 1.0, (velocity, velocity), 0, mode)
        sf.write(tmp_path / f"{name}.ogg", render_midi(make_midi(piece)), SR, format="OGG", subtype="VORBIS")
        arcs[name] = analyze_track(tmp_path / f"{name}.ogg").arc
        words[name] = mood(arcs[name].va())
    assert arcs["loud"].arousal.mean() > arcs["soft"].arousal.mean() + 0.3  # what the reader hears differs
    assert arcs["soft"].valence.mean() > arcs["minor"].valence.mean() + 0.5
    assert words["soft"] in {"serene", "calm"} and words["loud"] == "joyful", words
    assert words["minor"] in {"sad", "sombre"}, words


@pytest.mark.parametrize(("va", "word"), [((0.6, -0.5), "serene"), ((0.5, 0.0), "warm"), ((0.05, 0.0), "neutral"),
                                          ((0.8, 0.6), "joy")])
def test_the_clip_summary_names_a_calm_pleasant_arc(va: tuple[float, float], word: str) -> None:
    """A bright, still clip read "mostly neutral" (no emotion of the six lies in that quadrant) beside tracks the
    table calls "serene"; a clearly joyful arc keeps its emotion's word."""
    arc = EmotionArc.from_va(np.arange(8) + 0.5, np.full(8, va[0]), np.full(8, va[1]))
    assert main_mood(arc) == word
