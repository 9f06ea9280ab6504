"""Speech source on generated speech: espeak-ng says a happy sentence, then a sad one."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from analysis.sources import source_class
from analysis.sources.base import MediaStreams
from analysis.sources.speech import SpeechSource, Transcriber, prosody, to_16k, word_error_rate, yin

HAPPY = "What a wonderful day. I am so happy and delighted to see all my friends again."
SAD = "My dog died yesterday. I feel terribly sad, lonely and miserable."
GAP = 2.5  # seconds of silence between the two sentences


def espeak(text: str, path: Path) -> tuple[np.ndarray, int]:
    subprocess.run(["espeak-ng", "-w", str(path), text], check=True, capture_output=True, timeout=60)
    audio, sr = sf.read(path, dtype="float32")
    return audio, sr


@pytest.fixture(scope="module")
def speech_clip(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, float]:
    """An mp4 (grey picture, AAC audio) of HAPPY, a pause, then SAD; returns the path and when SAD starts."""
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng (Debian package) is not installed")
    from mediagen import Shot, make_clip

    tmp = tmp_path_factory.mktemp("speech")
    happy, sr = espeak(HAPPY, tmp / "happy.wav")
    sad, sr2 = espeak(SAD, tmp / "sad.wav")
    assert sr == sr2
    audio = np.concatenate([happy, np.zeros(int(GAP * sr), np.float32), sad, np.zeros(sr // 2, np.float32)])
    fps = 10
    frames = int(np.ceil(audio.size / sr * fps))
    path = make_clip(tmp / "speech.mp4", shots=[Shot(frames)], fps=fps, audio=audio, sample_rate=sr)
    return path, (happy.size / sr) + GAP


@pytest.fixture(scope="module")
def analysed(speech_clip):
    from analysis.media.decode import decode

    path, sad_start = speech_clip
    media = decode(path)
    source = source_class("speech")()
    return source, source.analyze(media, hop=0.5), sad_start


def test_transcript_has_word_timestamps_and_low_word_error(analysed) -> None:
    source, _, sad_start = analysed
    tr = source.last_transcript
    assert word_error_rate(f"{HAPPY} {SAD}", tr.text) <= 0.15, tr.text
    words = tr.words
    assert all(w.end >= w.start for w in words)
    happy = next(w for w in words if w.text.strip(".,").lower() == "happy")
    sad = next(w for w in words if w.text.strip(".,").lower() == "sad")
    assert happy.end < sad_start < sad.start


def test_happy_sentence_reads_more_positive_than_the_sad_one(analysed) -> None:
    _, arc, sad_start = analysed
    t = arc.times
    said = arc.confidence > 0
    first = said & (t < sad_start - GAP)
    second = said & (t > sad_start + 0.25)
    assert first.sum() >= 4 and second.sum() >= 4
    assert arc.valence[first].mean() > 0.3
    assert arc.valence[second].mean() < -0.3
    assert arc.emotions["joy"][first].mean() > arc.emotions["joy"][second].mean()
    # The pause between the sentences (less VAD padding) and the tail are silent: no reading.
    pause = (t > sad_start - GAP + 0.75) & (t < sad_start - 0.75)
    assert pause.any() and np.all(arc.confidence[pause] == 0.0)
    assert np.all(arc.features["words_per_s"][first] > 1.5)  # espeak talks at ~3 words/s


def test_silence_and_no_audio_give_zero_confidence() -> None:
    source = SpeechSource()
    base = dict(path=Path("x.mp4"), duration=3.0, fps=25.0, frame_times=np.zeros(0),
                frames=np.zeros((0, 8, 8, 3), np.uint8), sample_rate=22050)
    quiet = np.random.default_rng(0).normal(0, 1e-4, 3 * 22050).astype(np.float32)
    for audio in (None, quiet):
        arc = source.analyze(MediaStreams(audio=audio, **base), hop=0.5)
        assert arc.times.size == 6 and np.all(arc.confidence == 0.0)


def test_prosody_tracks_a_known_pitch() -> None:
    sr = 22050
    t = np.arange(sr) / sr
    tone = (0.3 * np.sin(2 * np.pi * 150.0 * t)).astype(np.float32)
    p = prosody(to_16k(tone, sr))
    assert np.nanmedian(p.f0) == pytest.approx(150.0, rel=0.02)
    assert to_16k(tone, sr).size == 16000


def test_yin_follows_a_glide_as_librosa_does() -> None:
    """A harmonic tone gliding 120 -> 200 Hz in noise: the NumPy YIN reads the glide, frame by frame
    within 1 % of ``librosa.yin`` (the reference it replaces) away from the padded ends."""
    import librosa

    sr = 16000
    t = np.arange(3 * sr) / sr
    phase = 2 * np.pi * np.cumsum(120 + 80 * t / 3) / sr
    x = (0.3 * np.sin(phase) + 0.1 * np.sin(2 * phase)).astype(np.float32)
    x += np.random.default_rng(0).normal(0, 0.01, x.size).astype(np.float32)
    ours = yin(x, sr, fmin=65.0, fmax=400.0)
    ref = librosa.yin(x, fmin=65.0, fmax=400.0, sr=sr, frame_length=1024, hop_length=320)
    inner = slice(5, -5)
    assert ours.shape == ref.shape
    assert np.max(np.abs(ours[inner] / ref[inner] - 1)) < 0.01
    truth = 120 + 80 * np.arange(ours.size) * 320 / sr / 3
    assert np.median(np.abs(ours[inner] / truth[inner] - 1)) < 0.01


def test_word_error_rate() -> None:
    assert word_error_rate("the cat sat", "The cat sat.") == 0.0
    assert word_error_rate("the cat sat", "the bat sat down") == pytest.approx(2 / 3)


def test_model_loads_once() -> None:
    assert Transcriber()._model is Transcriber()._model


def test_faster_speech_reads_as_more_aroused(tmp_path: Path) -> None:
    """One neutral sentence said slowly, then fast: words/s and arousal both rise."""
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng (Debian package) is not installed")
    text = "The report has four sections and the meeting is on Tuesday afternoon in the main office."
    parts = []
    for speed in ("110", "280"):
        subprocess.run(["espeak-ng", "-s", speed, "-w", str(tmp_path / f"{speed}.wav"), text],
                       check=True, capture_output=True, timeout=60)
        audio, sr = sf.read(tmp_path / f"{speed}.wav", dtype="float32")
        parts += [audio, np.zeros(sr, np.float32)]
    audio = np.concatenate(parts)
    slow_end = (parts[0].size + sr) / sr
    media = MediaStreams(path=Path("rate.wav"), duration=audio.size / sr, fps=25.0, frame_times=np.zeros(0),
                         frames=np.zeros((0, 8, 8, 3), np.uint8), audio=audio, sample_rate=sr)
    arc = SpeechSource().analyze(media, hop=0.5)
    said = arc.confidence > 0
    slow = said & (arc.times < slow_end - 1.5)
    fast = said & (arc.times > slow_end)
    assert slow.sum() >= 3 and fast.sum() >= 2
    rate = arc.features["words_per_s"]
    assert rate[fast].mean() > 1.8 * rate[slow].mean()
    assert arc.arousal[fast].mean() > arc.arousal[slow].mean() + 0.1  # rate is 1/6 of arousal here


def test_long_speech_is_heard_in_blocks_of_whole_stretches(speech_clip) -> None:
    """Whisper's buffers grow with the audio it is handed (10 minutes of speech in one piece peaked 600 MB
    over the model), so speech goes in blocks of at most `block_s` seconds, cut between stretches; the words
    and their times come back as from one piece."""
    from analysis.media.decode import decode
    from analysis.sources.speech import SAMPLE_RATE, speech_blocks
    from analysis.sources.vad import voice_activity

    chunks = [{"start": 0, "end": 2 * SAMPLE_RATE}, {"start": 3 * SAMPLE_RATE, "end": 4 * SAMPLE_RATE},
              {"start": 5 * SAMPLE_RATE, "end": 9 * SAMPLE_RATE}, {"start": 10 * SAMPLE_RATE, "end": 11 * SAMPLE_RATE}]
    assert speech_blocks(chunks, 3.0) == [chunks[:2], chunks[2:3], chunks[3:]]
    path, sad_start = speech_clip
    voice = voice_activity(decode(path))
    assert len(voice.regions) >= 2
    whisper = Transcriber()
    heard: list[float] = []
    model = whisper._model

    class Counting:
        def transcribe(self, audio, **options):
            heard.append(audio.size / SAMPLE_RATE)
            return model.transcribe(audio, **options)

    whisper._model = Counting()
    whisper.block_s = 1.0  # every stretch alone
    blocks = whisper.transcribe(voice.audio16, voice.regions)
    assert len(heard) == len(voice.regions) and max(heard) < sad_start
    assert word_error_rate(f"{HAPPY} {SAD}", blocks.text) <= 0.15, blocks.text
    sad = next(w for w in blocks.words if w.text.strip(".,").lower() == "sad")
    happy = next(w for w in blocks.words if w.text.strip(".,").lower() == "happy")
    assert happy.end < sad_start < sad.start
