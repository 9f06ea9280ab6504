"""The speech lane of ``analyze_video``: Whisper starts on the audio alone while the video decodes.

Every check compares the lane against the sources run one after another (the lane switched
off), on a clip whose speech runs into its last frame, so the speech stretches depend on
where the decoded video ends. Counters on the VAD, on Whisper's transcribe call and on the
audio-only pass show what ran.
"""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from mediagen import Shot, make_clip
from test_damaged_media import SHOTS, _overwrite, _packets, _patch_mkv_duration
from test_sources_default import Counter

import analysis.sources.speech as speech_mod
import analysis.sources.vad as vad_mod
import analysis.video as video_mod
from analysis.caches import clear_caches
from analysis.errors import MediaError, ModelError
from analysis.video import VideoAnalysis, analyze_video, get_source

SENTENCE = "What a wonderful day. I am so happy and delighted to see all my friends again."
SOURCES = ("visual", "audio", "speech")


@pytest.fixture(scope="module")
def talk_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Half a second of room tone, then a sentence cut off mid-word by the end of the clip (10 fps,
    the video a little shorter than the audio): the last speech stretch ends where the video does."""
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng (Debian package) is not installed")
    tmp = tmp_path_factory.mktemp("talk")
    subprocess.run(["espeak-ng", "-w", str(tmp / "s.wav"), SENTENCE], check=True, capture_output=True, timeout=60)
    speech, sr = sf.read(tmp / "s.wav", dtype="float32")
    audio = np.concatenate([np.zeros(sr // 2, np.float32), speech[: int(0.8 * speech.size)]])
    audio = audio + np.random.default_rng(0).normal(0, 0.003, audio.size).astype(np.float32)
    frames = int(audio.size / sr * 10)
    return make_clip(tmp / "talk.mp4", shots=[Shot(frames, (90, 120, 150), motion=0.3)], fps=10, audio=audio,
                     sample_rate=sr)


@contextmanager
def _no_lane(*_args):
    yield None


def sequential(monkeypatch: pytest.MonkeyPatch, path: Path, **kwargs) -> VideoAnalysis:
    """``analyze_video`` with the lane switched off: every source in turn, as before the lane."""
    with monkeypatch.context() as m:
        m.setattr(video_mod._SpeechLane, "open", staticmethod(_no_lane))
        return analyze_video(path, **kwargs)


def assert_same(lane: VideoAnalysis, plain: VideoAnalysis) -> None:
    assert list(lane.source_arcs) == list(plain.source_arcs)
    assert (lane.duration, lane.cuts, lane.warnings, dict(lane.sources_off)) == \
        (plain.duration, plain.cuts, plain.warnings, dict(plain.sources_off))
    for a, b in [(lane.arc, plain.arc)] + [(lane.source_arcs[n], plain.source_arcs[n]) for n in plain.source_arcs]:
        for field in ("times", "valence", "arousal", "confidence"):
            if hasattr(b, field):  # the fused arc has no confidence
                np.testing.assert_array_equal(getattr(a, field), getattr(b, field), err_msg=field)
        for key, values in (b.emotions or {}).items():
            np.testing.assert_array_equal(a.emotions[key], values, err_msg=key)
    for name, arc in plain.source_arcs.items():
        assert set(lane.source_arcs[name].features) == set(arc.features)
        for key, values in arc.features.items():
            np.testing.assert_array_equal(lane.source_arcs[name].features[key], values, err_msg=f"{name} {key}")


def test_lane_gives_the_sequential_result_with_one_vad_and_one_whisper_run(monkeypatch, talk_clip) -> None:
    plain = sequential(monkeypatch, talk_clip)  # every source, as a user runs it
    plain_text = get_source("speech").last_transcript.text
    detect = Counter(vad_mod.detect)
    transcribe = Counter(speech_mod.Transcriber.transcribe)
    monkeypatch.setattr(vad_mod, "detect", detect)
    monkeypatch.setattr(speech_mod.Transcriber, "transcribe", lambda self, *a, **k: transcribe(self, *a, **k))
    steps: list[tuple[float, str]] = []
    lane = analyze_video(talk_clip, progress=lambda f, m: steps.append((f, m)))
    assert {"audio", "speech"} <= set(lane.sources_used)
    assert_same(lane, plain)
    assert get_source("speech").last_transcript.text == plain_text and plain_text
    # The voice activity, found once on the lane, is what the audio source read; Whisper ran once.
    assert detect.calls == 1 and transcribe.calls == 1
    fractions = [f for f, _ in steps]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert {m for _, m in steps} >= {"source speech", "source audio", "fusing", "done"}


def test_a_wrong_guess_of_the_clip_end_transcribes_again(monkeypatch, talk_clip) -> None:
    plain = sequential(monkeypatch, talk_clip, sources=SOURCES)
    transcribe = Counter(speech_mod.Transcriber.transcribe)
    monkeypatch.setattr(speech_mod.Transcriber, "transcribe", lambda self, *a, **k: transcribe(self, *a, **k))
    real = video_mod.decode_audio
    # The lane cuts its last speech stretch a second early; the decoded video says otherwise.
    early = lambda *a, **k: dataclasses.replace(real(*a, **k), video_end=plain.duration - 1.0)  # noqa: E731
    monkeypatch.setattr(video_mod, "decode_audio", early)
    assert_same(analyze_video(talk_clip, sources=SOURCES), plain)
    assert transcribe.calls == 2


def test_a_damaged_audio_packet_reads_the_same_through_the_lane(monkeypatch, talk_clip, tmp_path: Path) -> None:
    packets = _packets(talk_clip, "audio")
    damaged = _overwrite(talk_clip, tmp_path / "damaged.mp4", [packets[len(packets) // 2]])
    plain = sequential(monkeypatch, damaged, sources=SOURCES)
    assert sum("skipped 1 audio packet(s) that did not decode" in w for w in plain.warnings) == 1
    assert_same(analyze_video(damaged, sources=SOURCES), plain)


def test_a_header_that_lies_gives_the_same_error_through_the_lane(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "drone.mkv", shots=SHOTS, audio="drone")
    patched = _patch_mkv_duration(clip, tmp_path / "patched.mkv", 1.0)
    # The audio-only pass stops at the audio's check (2.02 s); the error is the one pass's, at the video's.
    with pytest.raises(MediaError, match=r"decoding stopped at 2\.04 s"):
        analyze_video(patched, sources=SOURCES, max_duration=2.0)


def test_the_audio_only_pass_runs_only_for_speech_with_an_audio_stream(monkeypatch, talk_clip, silent_clip) -> None:
    audio_pass = Counter(video_mod.decode_audio)
    monkeypatch.setattr(video_mod, "decode_audio", audio_pass)
    res = analyze_video(silent_clip.path)  # every source, speech included; no audio stream
    assert not res.has_audio and res.sources_off["speech"] == "no audio track"
    analyze_video(talk_clip, sources=("visual", "audio"))  # audio, no speech asked for
    assert audio_pass.calls == 0
    analyze_video(talk_clip, sources=("visual", "speech"))  # control: the lane does run the pass
    assert audio_pass.calls == 1


@pytest.mark.parametrize("broken", ["whisper", "vad"])
def test_a_model_that_does_not_load_gives_the_same_notes_through_the_lane(monkeypatch, talk_clip, broken) -> None:
    def refuse(*_a, **_k):
        raise ModelError(f"{broken} model missing (test)")

    if broken == "whisper":
        monkeypatch.setattr(speech_mod, "_whisper", refuse)
    else:
        monkeypatch.setattr(vad_mod, "vad_model", refuse)
    clear_caches("affect-sources")  # fresh source instances: none holds a loaded Whisper
    plain = sequential(monkeypatch, talk_clip, sources=SOURCES)
    clear_caches("affect-sources")
    lane = analyze_video(talk_clip, sources=SOURCES)
    left_out = [w for w in plain.warnings if "unavailable and left out" in w]
    assert left_out == [f"source 'speech' unavailable and left out ({broken} model missing (test))"]
    assert_same(lane, plain)
