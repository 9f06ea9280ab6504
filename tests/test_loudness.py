"""One loudness for previews and composed pieces (EBU R128 integrated, analysis.media.loudness)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import soundfile as sf

from analysis.errors import ParameterError
from analysis.media.loudness import CEILING, TARGET_LUFS, integrated_loudness, normalize_file, normalize_loudness

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
