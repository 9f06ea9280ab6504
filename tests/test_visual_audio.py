"""Visual and audio sources, presets and fusion, on generated clips with known content."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from mediagen import tone

from analysis.arc import grid
from analysis.errors import ParameterError
from analysis.fusion import fuse, smooth
from analysis.media.decode import decode
from analysis.presets import PRESETS, source_weights
from analysis.sources import REGISTRY, SourceArc
from analysis.sources.audio import AudioSource
from analysis.sources.visual import VisualSource, frame_features


def _media(clip, cuts=()):
    return replace(decode(clip.path), cuts=tuple(cuts))


def test_bright_fast_clip_scores_higher_than_dark_still_one(bright_clip, dark_clip) -> None:
    bright = VisualSource().analyze(_media(bright_clip, bright_clip.cut_times), hop=0.5)
    dark = VisualSource().analyze(_media(dark_clip), hop=0.5)
    assert bright.valence.mean() > dark.valence.mean() + 0.5
    assert bright.arousal.mean() > dark.arousal.mean() + 0.5
    # and the features behind it point the documented way
    for key in ("brightness", "saturation", "colourfulness", "motion", "rhythm"):
        assert bright.features[key].mean() > dark.features[key].mean(), key
    assert dark.features["motion"].max() < 1.0  # a perfectly still picture
    assert np.all(bright.confidence > 0)


def test_frame_features_on_hand_made_frames() -> None:
    grey = np.full((1, 8, 8, 3), 128, np.uint8)
    red = np.zeros((1, 8, 8, 3), np.uint8)
    red[..., 0] = 255
    blue = np.zeros((1, 8, 8, 3), np.uint8)
    blue[..., 2] = 255
    g, r, b = frame_features(grey), frame_features(red), frame_features(blue)
    assert g["saturation"][0] == 0 and g["colourfulness"][0] == 0
    assert g["brightness"][0] == pytest.approx(128 / 255, abs=1e-3)
    assert r["saturation"][0] == pytest.approx(1.0)
    assert r["warmth"][0] == pytest.approx(1.0) and b["warmth"][0] == pytest.approx(-1.0)
    assert r["colourfulness"][0] > 50


def test_cuts_are_not_counted_as_motion(four_shot_clip) -> None:
    media = decode(four_shot_clip.path)
    with_cuts = VisualSource().analyze(replace(media, cuts=tuple(four_shot_clip.cut_times)), hop=0.5)
    without = VisualSource().analyze(media, hop=0.5)
    # The cut at 5.0 s leads into an almost still shot: the pair across it is not motion.
    i = int(5.0 / 0.5)
    assert with_cuts.features["motion"][i] < 0.7 * without.features["motion"][i]
    assert with_cuts.features["motion"].sum() < without.features["motion"].sum()


def test_loud_percussion_is_more_arousing_than_quiet_drone(percussion_clip, drone_clip) -> None:
    loud = AudioSource().analyze(_media(percussion_clip), hop=0.5)
    quiet = AudioSource().analyze(_media(drone_clip), hop=0.5)
    assert loud.arousal.mean() > quiet.arousal.mean() + 0.5
    assert loud.features["level_db"].mean() > quiet.features["level_db"].mean() + 6
    assert loud.features["onset_rate"].mean() > 3 > quiet.features["onset_rate"].mean()
    assert np.all(loud.confidence == 1.0) and np.all(quiet.confidence > 0.5)


def test_minor_triad_reads_sadder_than_major_scale(silent_clip) -> None:
    base = decode(silent_clip.path)
    sr = base.sample_rate
    # C major scale vs C harmonic minor scale, one note every 0.25 s
    major = [261.6, 293.7, 329.6, 349.2, 392.0, 440.0, 493.9, 523.3]
    minor = [261.6, 293.7, 311.1, 349.2, 392.0, 415.3, 493.9, 523.3]

    def melody(freqs):
        notes = [tone([f], 0.25, sample_rate=sr, amplitude=0.3) for f in freqs * 2]
        return np.concatenate(notes)[: int(base.duration * sr)]

    maj = AudioSource().analyze(replace(base, audio=melody(major)), hop=0.5)
    mnr = AudioSource().analyze(replace(base, audio=melody(minor)), hop=0.5)
    assert maj.features["mode"].mean() > 0 > mnr.features["mode"].mean()
    assert maj.valence.mean() > mnr.valence.mean()


def test_no_audio_and_silence_give_zero_confidence(silent_clip) -> None:
    media = decode(silent_clip.path)
    none = AudioSource().analyze(media, hop=0.5)
    assert none.times.size == grid(media.duration, 0.5).size and np.all(none.confidence == 0)
    hush = AudioSource().analyze(replace(media, audio=np.zeros(int(media.duration * 22050), np.float32)), hop=0.5)
    assert np.all(hush.confidence == 0)


def test_presets_cover_every_source_and_reject_unknown_names() -> None:
    for name in PRESETS:
        w = source_weights(name)
        assert set(w) == set(REGISTRY) and all(v >= 0 for v in w.values())
    assert source_weights("action")["visual"] > source_weights("courtroom")["visual"]
    assert source_weights("drama")["faces"] > source_weights("drama")["visual"]
    assert source_weights("general", {"audio": 0.0})["audio"] == 0.0
    with pytest.raises(ParameterError, match="unknown content type 'western'"):
        source_weights("western")
    with pytest.raises(ParameterError, match="unknown source 'smell'"):
        source_weights("general", {"smell": 1.0})
    with pytest.raises(ParameterError, match="received -1"):
        source_weights("general", {"audio": -1})


def test_every_matching_preset_is_a_content_type_the_analysis_takes() -> None:
    """`--content-type trailer` ranked with the trailer preset once a clip was analysed, but analysing
    the clip refused it ("unknown content type 'trailer'"): both layers take the same names."""
    from matching.ranking.weights import PRESETS as MATCHING

    assert set(MATCHING) - {"default"} == set(PRESETS)  # "default" is the ranker's name for "general"
    trailer = source_weights("trailer")
    assert trailer["visual"] > trailer["faces"] and trailer["speech"] > source_weights("action")["speech"]
    import argparse

    from soundtrack.commands import analyze

    parser = argparse.ArgumentParser()
    analyze.add_arguments(parser)
    said = next(a.help for a in parser._actions if a.dest == "content_type")
    assert all(name in said for name in PRESETS), said  # the CLI's help names them all


def _arc(name, v, a, c, emotions=None):
    t = grid(len(v) * 0.5, 0.5)
    return SourceArc(name, t, np.asarray(v, float), np.asarray(a, float), np.asarray(c, float), emotions)


def test_fusion_weights_by_confidence_and_preset() -> None:
    t = grid(2.0, 0.5)
    vis = _arc("visual", [0.8] * 4, [0.2] * 4, [1, 1, 1, 0])
    aud = _arc("audio", [-0.4] * 4, [0.6] * 4, [1, 0, 0, 1])
    out = fuse([vis, aud], times=t, weights={"visual": 1.0, "audio": 3.0}, smoothing="none")
    # window 0: (1*0.8 + 3*-0.4) / 4; windows 1-2: visual alone; window 3: audio alone
    assert out.arc.valence == pytest.approx([-0.1, 0.8, 0.8, -0.4])
    assert out.arc.arousal == pytest.approx([0.5, 0.2, 0.2, 0.6])
    assert out.coverage == 1.0


def test_fusion_fills_windows_without_evidence() -> None:
    t = grid(3.0, 0.5)
    vis = _arc("visual", [0.0, 0.5, 0.9, 0.9, 1.0, 0.3], [0.0] * 6, [0, 1, 0, 0, 1, 0])
    out = fuse([vis], times=t, weights={}, smoothing="none")
    # interpolated between evidence at 0.75 s (0.5) and 2.25 s (1.0); held at the ends
    assert out.arc.valence == pytest.approx([0.5, 0.5, 2 / 3, 5 / 6, 1.0, 1.0])
    assert out.coverage == pytest.approx(2 / 6)
    empty = fuse([_arc("audio", [0.7] * 6, [0.7] * 6, [0] * 6)], times=t, weights={}, smoothing="none")
    assert np.all(empty.arc.valence == 0) and empty.coverage == 0


def test_fusion_mixes_source_emotions_when_given() -> None:
    t = grid(1.0, 0.5)
    probs = {"joy": np.ones(2), **{e: np.zeros(2) for e in ("sadness", "anger", "fear", "surprise", "neutral")}}
    faces = _arc("faces", [0.7, 0.7], [0.4, 0.4], [1, 1], emotions=probs)
    out = fuse([faces], times=t, weights={}, smoothing="none")
    assert out.arc.emotions["joy"] == pytest.approx([1.0, 1.0])


def test_smoothing_methods() -> None:
    x = np.zeros(21)
    x[10] = 1.0
    ma = smooth(x, hop=0.5, method="moving_average", window=2.0)
    sg = smooth(x, hop=0.5, method="savgol", window=2.5)
    assert ma.max() == pytest.approx(0.25) and ma.sum() == pytest.approx(1.0)
    assert 0 < sg.max() < 1 and sg.sum() == pytest.approx(1.0)
    assert smooth(x, hop=0.5, method="none") is x
    with pytest.raises(ParameterError, match="unknown smoothing 'gauss'"):
        smooth(x, hop=0.5, method="gauss")
