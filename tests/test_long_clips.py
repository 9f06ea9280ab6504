"""Memory on long clips: what a source holds beyond the decoded media must not grow with the clip.

Each test measures the traced peak (``tracemalloc``: numpy's buffers are traced) of one step on
minutes of generated media, and bounds it well under what the clip-sized intermediates took.
"""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable
from pathlib import Path

import numpy as np

from analysis.sources import audio, speech, vad, visual
from analysis.sources.base import MediaStreams

SR = 22050


def _peak(step: Callable[[], object]) -> int:
    """Bytes traced at the peak of ``step()`` above what was held before it."""
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        step()
        return tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()


def _tone(seconds: float) -> np.ndarray:
    t = np.arange(int(SR * seconds)) / SR
    noise = 0.01 * np.random.default_rng(0).standard_normal(t.size)
    return (0.1 * np.sin(2 * np.pi * 440 * t) + noise).astype(np.float32)


def _media(samples: np.ndarray) -> MediaStreams:
    return MediaStreams(path=Path("long.mp4"), duration=samples.size / SR, fps=25.0, frame_times=np.zeros(0),
                        frames=np.zeros((0, 2, 2, 3), np.uint8), audio=samples, sample_rate=SR)


def test_audio_source_holds_spectra_a_block_at_a_time() -> None:
    y = _tone(600.0)  # 10 minutes: 50 MB of samples; the whole-clip spectra took 406 MB more at their peak
    media = _media(y)
    media.memo["voice"] = None  # no voice activity to read (and no VAD model to load)
    peak = _peak(lambda: audio.AudioSource().analyze(media, hop=0.5))
    assert peak < 1.25 * y.nbytes, f"peak {peak / 2**20:.0f} MB for {y.nbytes / 2**20:.0f} MB of audio"


def test_speech_is_silenced_block_by_block_as_in_a_silenced_copy() -> None:
    y = _tone(120.0)
    silence = ((int(46.0 * SR), int(49.5 * SR)), (int(100.2 * SR), int(101.0 * SR)))  # one across a block edge
    copy = y.copy()
    for s0, s1 in silence:
        copy[s0:s1] = 0.0
    got, want = audio.frame_features(y, SR, silence), audio.frame_features(copy, SR)
    for key in want:
        np.testing.assert_array_equal(got[key], want[key], err_msg=key)


def test_voice_activity_reads_the_clip_a_batch_at_a_time() -> None:
    y = _tone(1200.0)  # 20 minutes: 73 MB at 16 kHz, kept; the whole-clip copies took 165 MB more
    vad.vad_model()  # loaded before measuring
    found: list[vad.VoiceActivity] = []
    peak = _peak(lambda: found.append(vad.detect(y, SR)))
    kept = found[0].audio16.nbytes
    assert peak < 2 * kept, f"peak {peak / 2**20:.0f} MB for {kept / 2**20:.0f} MB of 16 kHz audio"


def test_voice_activity_batches_are_the_wrappers_own() -> None:
    rng = np.random.default_rng(1)
    for n in (700, vad.WINDOW * vad.BATCH, vad.WINDOW * (vad.BATCH + 3) + 37):
        a = (0.05 * rng.standard_normal(n)).astype(np.float32)
        a[: 60000] += 0.3 * np.sin(np.arange(min(n, 60000)) / 7).astype(np.float32)
        padded = np.pad(a, (0, (-a.size) % vad.WINDOW))
        want = np.asarray(vad.vad_model()(padded), dtype=float).reshape(-1)
        np.testing.assert_array_equal(vad._probabilities(a), want)


def test_visual_source_reads_frames_without_clip_sized_copies() -> None:
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (2000, 90, 160, 3), dtype=np.uint8)  # 86 MB: 400 s at 5 fps
    frames[:, :12] = frames[:, -12:] = 0  # letterbox bars for picture_box to find
    times = np.arange(len(frames)) / 5.0
    media = MediaStreams(path=Path("long.mp4"), duration=len(frames) / 5.0, fps=25.0, frame_times=times,
                         frames=frames, audio=None, sample_rate=SR, cuts=(100.0, 250.0))
    peak = _peak(lambda: visual.VisualSource().analyze(media, hop=0.5))
    # the smoothed float32 frames for motion took 1.3 times the frames, their greys and brightest channels more
    assert peak < 0.25 * frames.nbytes, f"peak {peak / 2**20:.0f} MB for {frames.nbytes / 2**20:.0f} MB of frames"


def test_prosody_reads_the_voice_a_block_of_frames_at_a_time() -> None:
    n = 16000 * 300  # 5 minutes at 16 kHz: 18 MB; all frames' spectra at once took 22 times that (413 MB)
    t = np.arange(n) / 16000
    voice = (0.2 * np.sin(2 * np.pi * (150 + 50 * np.sin(t)) * t)).astype(np.float32)
    peak = _peak(lambda: speech.prosody(voice))
    # left: the padded audio and its running energy in float64 (3 times the audio), and one block's spectra
    bound = 3.5 * voice.nbytes + (40 << 20)
    assert peak < bound, f"peak {peak / 2**20:.0f} MB for {voice.nbytes / 2**20:.0f} MB of audio"


def test_yin_by_blocks_is_yin_of_the_whole() -> None:
    n = 16000 * 30
    t = np.arange(n) / 16000
    voice = (0.2 * np.sin(2 * np.pi * (150 + 50 * np.sin(t)) * t)).astype(np.float32)
    whole = speech._yin_rows(speech._centred_frames(voice, 1024, 320), 0,
                             np.concatenate([[0.0], np.cumsum(np.pad(voice.astype(np.float64), 512) ** 2)]),
                             16000, lo=40, hi=247, hop=320, threshold=0.1)
    np.testing.assert_array_equal(speech.yin(voice, 16000, fmin=65.0, fmax=400.0), whole)
