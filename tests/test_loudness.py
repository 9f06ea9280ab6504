"""One loudness for previews and composed pieces (EBU R128 integrated, analysis.media.loudness)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import soundfile as sf

from analysis.errors import ParameterError
from analysis.filters import resample_poly
from analysis.media.loudness import (
    CEILING,
    STREAM_DELAY,
    TARGET_LUFS,
    TRUE_PEAK_DBTP,
    StreamLimiter,
    integrated_loudness,
    limit_true_peak,
    normalize_file,
    normalize_loudness,
    true_peak,
)

SR = 44100


def tone(amp: float, seconds: float = 3.0, channels: int = 2) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    x = amp * np.sin(2 * np.pi * 440 * t) * (0.75 + 0.25 * np.sin(2 * np.pi * 0.5 * t))
    return np.stack([x] * channels).astype(np.float32)  # (channels, samples)


def test_a_full_scale_sine_reads_about_minus_3_lufs():
    # BS.1770: a 997 Hz sine at full scale on one channel reads -3.01 LUFS
    t = np.arange(3 * SR) / SR
    assert integrated_loudness(np.sin(2 * np.pi * 997 * t), SR) == pytest.approx(-3.01, abs=0.1)


@pytest.mark.parametrize("sr", [22050, 44100, 48000])
def test_the_meter_reads_what_pyloudnorm_reads(sr):
    """The NumPy meter against pyloudnorm's (the reference it replaced) on music-like, noisy, quiet,
    mono and stereo audio, including a part under the absolute gate."""
    import pyloudnorm

    rng = np.random.default_rng(sr)
    t = np.arange(int(7.3 * sr)) / sr
    music = 0.3 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 0.3 * t)) + rng.normal(0, 0.02, t.size)
    gated = music.copy()
    gated[: t.size // 3] *= 1e-4  # a third far below the others: the relative gate drops it
    signals = [music[:, None], np.stack([music, 0.5 * gated], axis=1), rng.normal(0, 1e-3, (t.size, 2)),
               np.stack([30 * np.diff(music, prepend=0), music], axis=1)]
    for x in signals:
        assert integrated_loudness(x, sr) == pytest.approx(pyloudnorm.Meter(sr).integrated_loudness(x), abs=1e-6)


@pytest.mark.parametrize("amp", [0.003, 0.05, 0.9])
def test_quiet_and_loud_audio_end_at_the_target(amp):
    x = tone(amp)
    y = normalize_loudness(x, SR, channels_first=True)
    assert y.shape == x.shape and y.dtype == np.float32
    assert integrated_loudness(y, SR, channels_first=True) == pytest.approx(TARGET_LUFS, abs=0.3)
    assert float(np.abs(y).max()) <= CEILING + 1e-6


def test_peaky_audio_is_limited_not_clipped():
    x = tone(0.02)
    x[:, ::5000] = 0.9  # clicks far above the tone: gain alone would clip them
    y = normalize_loudness(x, SR, channels_first=True)
    assert float(np.abs(y).max()) <= CEILING + 1e-6
    assert integrated_loudness(y, SR, channels_first=True) == pytest.approx(TARGET_LUFS, abs=1.0)


def test_silence_and_too_short_audio_are_left_alone():
    assert np.all(normalize_loudness(np.zeros((2, SR)), SR, channels_first=True) == 0)
    short = tone(0.1, seconds=0.2)
    assert math.isinf(integrated_loudness(short, SR, channels_first=True))
    assert np.array_equal(normalize_loudness(short, SR, channels_first=True), short)
    with pytest.raises(ParameterError, match="target"):
        normalize_loudness(short, SR, target=5.0)


def test_normalize_file_rewrites_in_place(tmp_path):
    path = tmp_path / "quiet.wav"
    sf.write(str(path), tone(0.01).T, SR, subtype="PCM_16")
    before, after = normalize_file(path)
    assert before < -35 and after == pytest.approx(TARGET_LUFS, abs=0.3)
    assert sf.info(str(path)).subtype == "PCM_16"


def test_fitted_previews_of_quiet_and_loud_tracks_share_one_level(tmp_path):
    from matching.fit import fit_track

    levels = []
    for amp in (0.01, 0.8):
        src = tmp_path / f"track-{amp}.wav"
        sf.write(str(src), tone(amp, seconds=6.0).T, SR)
        res = fit_track(src, tmp_path / f"fit-{amp}.wav", start=1.0, duration=3.0)
        audio, sr = sf.read(str(res.wav))
        levels.append(integrated_loudness(audio, sr))
    assert levels == pytest.approx([TARGET_LUFS] * 2, abs=0.5)


# True peak (BS.1770-4 Annex 2): what a player's reconstruction or an encoder sees between the samples.


def reference_dbtp(audio: np.ndarray) -> float:
    """True peak in dBTP by another interpolator than the one under test: a Kaiser-windowed sinc, 4x
    (:func:`analysis.filters.resample_poly`, equal to scipy's), over each channel of (frames, channels) audio."""
    a = np.asarray(audio, dtype=np.float64).reshape(len(audio), -1)
    return 20 * math.log10(max(float(np.abs(resample_poly(a[:, c], 4, 1)).max()) for c in range(a.shape[1])))


def quarter_rate_sine(amp: float, seconds: float) -> np.ndarray:
    """A sine at a quarter of the sample rate with its samples at +-45 degrees: every sample is
    amp / sqrt 2, the waveform between them reaches amp (3 dB over its samples)."""
    return amp * np.sin(np.pi / 2 * np.arange(int(seconds * SR)) + np.pi / 4)


def test_true_peak_reads_the_swing_between_samples():
    x = quarter_rate_sine(0.5, 1.0)
    assert float(np.abs(x).max()) == pytest.approx(0.5 / math.sqrt(2), abs=1e-6)
    assert true_peak(x) == pytest.approx(0.5, rel=0.012)  # within 0.1 dB (the Annex's filter ripples that much)
    assert true_peak(np.stack([0.2 * x, x], axis=1)) == pytest.approx(true_peak(x))  # the loudest channel
    assert true_peak(np.stack([0.2 * x, x]), channels_first=True) == pytest.approx(true_peak(x))
    assert true_peak(np.zeros((SR, 2))) == 0.0 and true_peak(np.zeros((0, 2))) == 0.0
    music = tone(0.3).T  # low notes: the true peak is the sample peak, within the filter's ripple
    assert 20 * math.log10(true_peak(music)) == pytest.approx(reference_dbtp(music), abs=0.05)


def test_normalised_audio_stays_under_minus_1_dbtp_between_samples():
    """3 ms bursts whose samples reach about 0.7 at the target loudness while the waveform between them
    reaches 1.0 (a sample ceiling let it swing to +0.7 dBTP): the loudness is reached, and the true peak,
    not only the samples, stays at -1 dBTP."""
    x = tone(0.02, seconds=6.0)
    burst = quarter_rate_sine(0.09, 0.003)
    for start in range(SR // 2, 6 * SR - len(burst), SR):
        x[:, start : start + len(burst)] += burst
    y = normalize_loudness(x, SR, channels_first=True)
    assert integrated_loudness(y, SR, channels_first=True) == pytest.approx(TARGET_LUFS, abs=0.3)
    assert reference_dbtp(y.T) <= TRUE_PEAK_DBTP + 0.05
    assert true_peak(y, channels_first=True) <= CEILING + 1e-6


def test_the_limiter_leaves_quiet_audio_alone_and_bends_only_the_loud_moments():
    x = tone(0.3).T  # (frames, channels), true peak about -10 dBTP
    assert np.array_equal(limit_true_peak(x), x)
    loud = x * 3.2  # about 0.96: over the ceiling, only on the crests of the tremolo
    y = limit_true_peak(loud)
    assert y.shape == loud.shape and y.dtype == loud.dtype
    assert reference_dbtp(y) <= TRUE_PEAK_DBTP + 0.05
    untouched = np.sin(np.pi * np.arange(len(x)) / SR) < -0.5  # the tremolo's troughs: crests under 0.6
    assert untouched.mean() > 0.2 and np.array_equal(y[untouched], loud[untouched])
    assert not np.array_equal(y, loud)
    with pytest.raises(ParameterError, match="ceiling"):
        limit_true_peak(x, ceiling=1.5)


def test_a_loudness_matched_midi_render_stays_under_minus_1_dbtp(tmp_path):
    """A piano piece built in memory, rendered by FluidSynth and fitted as a library preview is: loud
    chords struck short between soft notes need the limiter at -16 LUFS (its samples peaked at -0.5 dBFS)."""
    import pretty_midi

    from matching.fit import fit_track

    pm = pretty_midi.PrettyMIDI()
    piano = pretty_midi.Instrument(0)
    for i in range(4):
        t = 0.5 + 1.5 * i
        piano.notes += [pretty_midi.Note(127, p, t, t + 0.15) for p in (36, 48, 55, 60, 64, 67, 72, 84)]
        piano.notes += [pretty_midi.Note(30, 72 + 2 * j, t + 0.4 + 0.2 * j, t + 0.55 + 0.2 * j) for j in range(5)]
    pm.instruments.append(piano)
    pm.write(str(tmp_path / "chords.mid"))
    res = fit_track(tmp_path / "chords.mid", tmp_path / "fit.wav", start=0.0, duration=6.0)
    audio, sr = sf.read(str(res.wav))
    assert integrated_loudness(audio, sr) == pytest.approx(TARGET_LUFS, abs=0.3)
    assert reference_dbtp(audio) <= TRUE_PEAK_DBTP + 0.05


def test_a_composed_render_peaks_at_minus_1_dbtp(tmp_path):
    """Composition.render peak-normalises: to a true peak of -1 dBTP (the sample peak of 0.9 it had read
    -0.9 dBTP), and no lower than needed."""
    from analysis.arc import EmotionArc
    from composer import compose

    piece = compose(EmotionArc.constant(4.0, 0.6, 0.95), (2.0,), 4.0, style="piano_solo", seed=1, source="rules")
    audio, _ = sf.read(str(piece.render(tmp_path / "piece.wav")))
    assert TRUE_PEAK_DBTP - 0.2 <= reference_dbtp(audio) <= TRUE_PEAK_DBTP + 0.05


def _swells(sr: int) -> np.ndarray:
    """4 s of a stereo 220 Hz tone at 0.3 with 1.8 swells (true peak +6 dBTP) and a little noise."""
    t = np.arange(4 * sr) / sr
    x = np.sin(2 * np.pi * 220 * t) * (0.3 + 1.5 * (np.sin(2 * np.pi * 0.5 * t) > 0.9))
    x += 0.05 * np.random.default_rng(0).standard_normal(len(t))
    return np.stack([x, 0.8 * x], axis=1).astype(np.float32)


def test_the_stream_limiter_holds_every_chunk_under_the_ceiling_whatever_the_chunks():
    """Chunks of any size give the same output as one chunk (the gain runs on across seams: no step there), under
    -1 dBTP, the quiet tone untouched (only delayed), and the swells bent, not flattened to the ceiling's level."""
    sr = 44100
    x = _swells(sr)
    whole = StreamLimiter(sr).process(x)
    limiter, parts, at = StreamLimiter(sr), [], 0
    for size in np.random.default_rng(1).integers(1, 9000, 200):
        parts.append(limiter.process(x[at:at + size]))
        at += size
        if at >= len(x):
            break
    chunked = np.concatenate(parts)
    assert chunked.shape == x.shape
    np.testing.assert_allclose(chunked, whole, atol=1e-5)
    assert true_peak(chunked) <= CEILING
    quiet = slice(sr // 10, 3 * sr // 10)  # 0.1 .. 0.3 s: the tone at 0.3 (a swell from 0.36 s)
    np.testing.assert_array_equal(chunked[quiet], x[quiet.start - STREAM_DELAY:quiet.stop - STREAM_DELAY])
    assert true_peak(chunked) > 0.95 * CEILING


def test_one_nan_sample_stays_one_nan_sample():
    """A NaN sample (a float file's bad sample) is passed through, not spread: the true peak is the other samples'
    and the limiter bends them as without it. Before, the true peak read NaN and every sample of the output was
    NaN, quiet audio that needs no limiting included."""
    quiet, loud = tone(0.3).T, tone(0.3).T * 3.2
    quiet[1000, 0] = loud[1000, 0] = np.nan
    assert true_peak(quiet) == pytest.approx(true_peak(tone(0.3).T))
    y = limit_true_peak(quiet)
    assert np.isnan(y).sum() == 1 and np.array_equal(y[~np.isnan(y)], quiet[~np.isnan(quiet)])
    y = limit_true_peak(loud)
    assert np.isnan(y).sum() == 1 and true_peak(y) <= CEILING
    out = StreamLimiter(SR).process(loud)
    assert np.isnan(out).sum() == 1 and true_peak(out) <= CEILING


def test_measuring_and_normalising_long_audio_holds_no_float64_copy_of_it() -> None:
    """The meter converted the whole signal to float64 and kept its K-weighted copy, their squares and
    their running sum (six float32 copies more; an hour of stereo is 1.3 GB a copy), and normalising
    made float64 copies at every pass. The meter now reads a stretch at a time and normalising holds the
    gained copy and, while bending peaks, the bent one; the figures are the same."""
    import tracemalloc

    rng = np.random.default_rng(0)
    x = (0.05 * rng.standard_normal((60 * SR, 2))).astype(np.float32)
    x[::SR] = 0.9  # a click a second: the limiter bends them
    expected = integrated_loudness(x.astype(np.float64), SR)
    tracemalloc.start()
    try:
        level = integrated_loudness(x, SR)
        meter = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        y = normalize_loudness(x, SR)
        normalising = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert level == expected
    assert meter < 0.5 * x.nbytes  # was 6 x
    assert normalising < 3.2 * x.nbytes  # was 10 x, its output included
    assert integrated_loudness(y, SR) == pytest.approx(TARGET_LUFS, abs=0.2)
    assert true_peak(y) <= CEILING + 1e-6
    assert y.dtype == np.float32 and not np.shares_memory(x, y)
