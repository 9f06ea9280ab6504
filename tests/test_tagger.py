"""The NumPy musicnn tagger: it computes what the original TensorFlow graph computes, pools a
whole recording as the published 3 s patches do, and hears tempo and loudness."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pretty_midi
import pytest

from analysis.errors import ParameterError
from analysis.jit import load_librosa
from analysis.music.audio import SR, render_midi
from analysis.music.tagger import FRAME_RATE, TAGS, load_tagger, logmel, window_logits

ROOT = Path(__file__).resolve().parents[1]


def _script():
    spec = importlib.util.spec_from_file_location("musicnn_weights", ROOT / "scripts" / "musicnn_weights.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_matches_the_tensorflow_graph():
    """Tag probabilities of two fixed inputs, against the wheel's own graph run under TensorFlow
    (``scripts/musicnn_weights.py --check`` wrote the reference)."""
    script = _script()
    ref = np.loadtxt(script.REFERENCE)
    tagger = load_tagger()
    ours = np.concatenate([tagger.logits(tagger.frames(x), [(0, len(x))]) for x in script.reference_inputs()])
    assert ref.shape == ours.shape == (2, len(TAGS))
    np.testing.assert_allclose(1 / (1 + np.exp(-ours)), ref, atol=5e-6)


def _piece(bpm: float, velocity: int, *, drums: bool, seconds: float = 12.0) -> np.ndarray:
    """A C-major arpeggio on piano, one note per beat, with a kick and hi-hat when ``drums``."""
    pm = pretty_midi.PrettyMIDI()
    piano, kit = pretty_midi.Instrument(program=0), pretty_midi.Instrument(program=0, is_drum=True)
    beat = 60.0 / bpm
    for i in range(int(seconds / beat)):
        t = i * beat
        piano.notes.append(pretty_midi.Note(velocity=velocity, pitch=(60, 64, 67, 72)[i % 4], start=t, end=t + beat))
        if drums:
            kit.notes.append(pretty_midi.Note(velocity=velocity, pitch=36 if i % 2 == 0 else 38, start=t, end=t + 0.1))
            kit.notes.append(pretty_midi.Note(velocity=velocity, pitch=42, start=t + beat / 2, end=t + beat / 2 + 0.05))
    pm.instruments = [piano] + ([kit] if drums else [])
    return render_midi(pm)


def test_whole_recording_pools_like_patches():
    """Features computed once over the recording and pooled per window give the tags the
    published extractor gets from separate 3 s patches (zero padding at each patch's edges)."""
    y = _piece(140, 100, drums=True)
    y16 = load_librosa().resample(y, orig_sr=SR, target_sr=16000)
    spec = logmel(y16)
    tagger = load_tagger()
    patches = [spec[i:i + 187] for i in range(0, len(spec) - 186, 187)]
    alone = np.concatenate([tagger.logits(tagger.frames(p), [(0, 187)]) for p in patches])
    centres = (np.arange(len(patches)) * 187 + 93.5) / FRAME_RATE
    pooled = window_logits(y, SR, centres)
    p, q = 1 / (1 + np.exp(-alone)), 1 / (1 + np.exp(-pooled))
    assert np.corrcoef(p.ravel(), q.ravel())[0, 1] > 0.97
    assert np.abs(p - q).max() < 0.25


def test_hears_tempo_and_loudness():
    """A fast, loud piece with drums reads fast/loud/drums; a slow, soft one slow/quiet/soft."""
    tag = {name: i for i, name in enumerate(TAGS)}
    busy, calm = (window_logits(y, SR, np.arange(1.5, 11.0, 1.0)).mean(0)
                  for y in (_piece(150, 120, drums=True), _piece(50, 40, drums=False)))
    for name in ("fast", "drums", "beat"):
        assert busy[tag[name]] > calm[tag[name]] + 1.0, name
    for name in ("slow", "quiet", "soft"):
        assert calm[tag[name]] > busy[tag[name]] + 1.0, name


def test_bad_input_raises():
    with pytest.raises(ParameterError):
        window_logits(np.zeros((2, 100), np.float32), SR, np.array([0.5]))
    with pytest.raises(ParameterError):
        window_logits(np.zeros(SR, np.float32), SR, np.array([0.5]), window=0.0)


def test_a_long_recording_is_tagged_in_stretches_to_the_same_logits(monkeypatch):
    """The features of a whole track were computed at once: 3 KB a frame, 5.5 GB for an hour (11 GB peak
    indexing a 2-hour recording). Stretches with the convolutions' reach of context give the same logits."""
    from analysis.music import tagger

    y = np.concatenate([_piece(140, 100, drums=True), _piece(70, 50, drums=False)] * 2)
    centres = np.arange(1.5, len(y) / SR - 1.5, 0.5)
    whole = window_logits(y, SR, centres)
    monkeypatch.setattr(tagger, "SPAN", 400)  # stretches of 6.4 s instead of 4 minutes
    np.testing.assert_allclose(window_logits(y, SR, centres), whole, atol=2e-4)
    monkeypatch.setattr(tagger, "HALO", 0)  # without the context: the stretches' edges would differ
    assert np.abs(window_logits(y, SR, centres) - whole).max() > 0.01


def test_the_log_mel_spectrogram_is_made_in_stretches_to_the_same_values():
    """The tagger's input was the whole track's STFT at once (0.1 GB for 10 minutes)."""
    from analysis.music import tagger

    y = np.tile(_piece(140, 100, drums=True), 6)  # 72 s at 22.05 kHz: 50 s, two stretches, at 16 kHz
    y = load_librosa().resample(y, orig_sr=SR, target_sr=tagger.SR)
    assert len(y) > tagger.HOP * 2048
    mel = load_librosa().feature.melspectrogram(y=y, sr=tagger.SR, hop_length=tagger.HOP, n_fft=tagger.N_FFT,
                                                n_mels=tagger.N_MELS).T
    np.testing.assert_allclose(logmel(y), np.log10(1.0 + 10000.0 * mel.astype(np.float32)), atol=1e-5)


def test_the_resampled_length_is_librosas() -> None:
    """One helper says how many samples a resampling makes (written out three times before): librosa's own
    count at the rates tracks come in, the input's where the rates agree."""
    from analysis.music.spectra import resampled_length

    librosa = load_librosa()
    assert resampled_length(10, 3, 2) == 7 and resampled_length(12345, 22050, 22050) == 12345
    for sr, target, n in [(22050, 16000, 1001), (44100, 22050, 999), (48000, 22050, 4097), (8000, 22050, 31)]:
        made = librosa.resample(np.zeros(n, np.float32), orig_sr=sr, target_sr=target)
        assert resampled_length(n, sr, target) == len(made)


def test_the_16_khz_input_is_resampled_and_spectrum_made_as_it_streams():
    """The tagger resampled a whole track to 16 kHz before its spectrogram (0.7 times the audio, 0.1 GB for
    30 minutes); soxr's stream gives the same samples a block at a time, and the mel frames come out the same
    without a whole 16 kHz copy at any time."""
    import tracemalloc

    from analysis.music import tagger
    from analysis.music.spectra import resampled_blocks

    librosa = load_librosa()
    y = np.tile(_piece(140, 100, drums=True), 6)  # 72 s at 22.05 kHz
    y16 = librosa.resample(y, orig_sr=SR, target_sr=tagger.SR)
    np.testing.assert_array_equal(np.concatenate(list(resampled_blocks(y, SR, tagger.SR, block=10_000))), y16)
    np.testing.assert_allclose(logmel(y, SR), logmel(y16), atol=1e-6)
    long = np.tile(y, 5)  # 6 minutes
    logmel(y[: SR * 5], SR)  # the resampler's and librosa's modules load outside the count
    tracemalloc.start()
    try:
        spec = logmel(long, SR)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < spec.nbytes + 20e6  # and a stretch's STFT (14 MB); the 16 kHz copy alone took 23 MB
