"""The trained audio music reader (analysis.music.emotion) on small rendered pieces built in memory."""

from __future__ import annotations

import dataclasses

import numpy as np
import pretty_midi
import pytest

from analysis.errors import ModelError, ParameterError
from analysis.music.audio import SR, analyze_audio, reader_stamp, render_midi
from analysis.music.emotion import FEATURE_NAMES, load_model, music_emotion, window_features

MAJOR = (0, 4, 7, 12, 16, 19, 24)  # C major arpeggio degrees
MINOR = (0, 3, 7, 12, 15, 19, 24)  # C minor


def _piece(*, steps: tuple[int, ...], bpm: float, velocity: int, seconds: float = 10.0) -> pretty_midi.PrettyMIDI:
    """Block triads under an arpeggio on a piano, ``bpm`` eighth notes, from C3/C4."""
    pm = pretty_midi.PrettyMIDI(initial_tempo=bpm)
    piano = pretty_midi.Instrument(program=0)
    beat = 60.0 / bpm
    t, i = 0.0, 0
    while t < seconds:
        piano.notes.append(pretty_midi.Note(velocity=velocity, pitch=60 + steps[i % len(steps)], start=t,
                                            end=t + beat / 2))
        if i % 8 == 0:
            for s in steps[:3]:
                piano.notes.append(pretty_midi.Note(velocity=velocity, pitch=48 + s, start=t, end=t + 4 * beat))
        t += beat / 2
        i += 1
    pm.instruments.append(piano)
    return pm


@pytest.fixture(scope="module")
def pieces() -> dict[str, np.ndarray]:
    return {
        "happy": render_midi(_piece(steps=MAJOR, bpm=150.0, velocity=110)),
        "sad": render_midi(_piece(steps=MINOR, bpm=60.0, velocity=45)),
    }


@pytest.mark.parametrize("reader", ["model alone", "track analysis"])
def test_bright_fast_loud_reads_above_dark_slow_quiet(pieces, reader):
    read = (lambda y: music_emotion(y, SR)) if reader == "model alone" else (lambda y: analyze_audio(y, SR).arc)
    happy, sad = read(pieces["happy"]), read(pieces["sad"])
    assert happy.valence.mean() > sad.valence.mean() + 0.2
    assert happy.arousal.mean() > sad.arousal.mean() + 0.3
    for arc in (happy, sad):
        assert np.all(np.abs(arc.va()) <= 1.0)


def test_track_analysis_uses_model_arousal_and_hand_built_valence(pieces):
    y = pieces["sad"]
    shipped = analyze_audio(y, SR).arc  # reader="model" is the default
    hand = analyze_audio(y, SR, reader="features").arc
    model = music_emotion(y, SR)
    assert np.allclose(shipped.times, hand.times) and np.allclose(shipped.times, model.times)
    assert np.allclose(shipped.valence, hand.valence)
    assert np.allclose(shipped.arousal, model.arousal) and not np.allclose(shipped.arousal, hand.arousal)
    assert not np.allclose(model.valence, shipped.valence)


def test_arousal_is_the_mean_of_the_model_and_the_tagger(pieces, tmp_path):
    y = np.concatenate([pieces["sad"], pieces["happy"]])
    both, alone = music_emotion(y, SR), music_emotion(y, SR, tags=False)
    assert np.allclose(both.valence, alone.valence)  # the tagger reads arousal only
    from analysis.music.tagger import arousal_contrast, window_logits

    tagger = load_model().tag_reading(arousal_contrast(window_logits(y, SR, both.times)))  # read on its own
    assert np.allclose(both.arousal, 0.5 * (alone.arousal + tagger), atol=1e-6)
    assert np.all(np.abs(tagger) <= 1.0 + 1e-9)
    n = len(tagger) // 2
    assert tagger[n:].mean() > tagger[:n].mean() + 0.3  # fast, loud, bright above slow, soft, dark
    assert not np.allclose(both.arousal, alone.arousal)
    # a checkpoint from before the tagger has no calibration for it: the model alone reads arousal
    old = tmp_path / "before_tagger.npz"
    dataclasses.replace(load_model(), tag_arousal=None).save(old)
    assert np.allclose(music_emotion(y, SR, checkpoint=old).arousal, alone.arousal)


def test_reader_stamp_names_both_weights_and_fits_the_library_column():
    stamp = reader_stamp()
    assert "weights " in stamp and "tagger " in stamp and "cues v" in stamp
    assert len(stamp) <= 80  # matching.library.store: track_readers.reader is String(80)


def test_features_have_the_declared_names_and_any_rate_works(pieces):
    y = pieces["happy"][: SR * 4]
    t, x = window_features(y, SR, hop=1.0)
    assert x.shape == (len(t), len(FEATURE_NAMES)) and np.isfinite(x).all()
    t2, _ = window_features(y[::2], SR // 2, hop=1.0)  # resampled to the model's rate
    assert len(t2) == len(t)


def test_bad_arguments_and_checkpoint(tmp_path, pieces):
    with pytest.raises(ParameterError, match="`hop` must be positive"):
        music_emotion(pieces["sad"], SR, hop=0)
    with pytest.raises(ParameterError, match="non-empty mono"):
        music_emotion(np.zeros((2, 100), np.float32), SR)
    with pytest.raises(ParameterError, match="`reader` must be one of"):
        analyze_audio(pieces["sad"], SR, reader="magic")
    with pytest.raises(ModelError, match="missing"):
        load_model(str(tmp_path / "none.npz"))
    assert load_model() is load_model()  # loaded once per process


def test_a_long_track_is_read_a_stretch_of_spectrogram_at_a_time_to_the_same_features():
    """The ridge's spectrogram was made for the whole track at once (0.7 GB for 10 minutes); each of its
    features reads one frame's spectrum, so stretches give the same values."""
    from analysis.jit import load_librosa
    from analysis.music import emotion
    from analysis.music.spectra import STFT_FRAMES

    librosa = load_librosa()
    rng = np.random.default_rng(0)
    y = (0.1 * rng.standard_normal(emotion.HOP * (2 * STFT_FRAMES + 300))).astype(np.float32)
    y += (0.3 * np.sin(2 * np.pi * 440 * np.arange(y.size) / emotion.SR)).astype(np.float32)
    mel, rms, centroid, flat, chroma = emotion._spectral_frames(y)
    power = np.abs(librosa.stft(y, n_fft=emotion.N_FFT, hop_length=emotion.HOP)) ** 2
    whole = librosa.feature.melspectrogram(S=power, sr=emotion.SR, n_mels=emotion.N_MELS, fmax=emotion.FMAX)
    np.testing.assert_allclose(mel, whole, rtol=1e-4, atol=1e-10)
    np.testing.assert_allclose(chroma, librosa.feature.chroma_stft(S=power, sr=emotion.SR, tuning=0.0).T, atol=1e-6)
    np.testing.assert_allclose(rms, librosa.feature.rms(S=np.sqrt(power), frame_length=emotion.N_FFT)[0], rtol=1e-5)
    assert len(centroid) == len(flat) == power.shape[1]


@pytest.mark.slow
def test_the_window_features_pool_their_frames_as_they_go() -> None:
    """The per-frame feature matrix and its prefix sums were made whole: 0.88 bytes traced per byte of audio
    added, 110 MB above 20 minutes of audio. Pooled a stretch of frames at a time, what grows is the mel and
    chroma frames the onsets and keys read (0.11 a byte), to the same features to the bit."""
    import tracemalloc

    rng = np.random.default_rng(5)

    def track(minutes: float) -> np.ndarray:
        t = np.arange(int(SR * 60 * minutes)) / SR
        y = (0.2 * np.sin(2 * np.pi * 220 * t) * (np.sin(2 * np.pi * 2 * t) > 0)).astype(np.float32)
        return y + (0.05 * rng.standard_normal(y.size)).astype(np.float32)

    y = track(20.0)
    window_features(y[: 5 * SR], SR)  # librosa's modules and kernels load on first use
    tracemalloc.start()
    try:
        window_features(y, SR)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 0.8 * y.nbytes  # was 1.03 times (110 MB); a stretch's spectrogram alone takes 50 MB
