"""Librosa's whole-track features a stretch at a time: the centred power spectrogram and the global tempo.

The music features read each STFT frame on its own (semitone bands, mel bands, RMS, centroid,
chroma), so they need not hold a whole track's spectrogram: 1,025 to 2,049 complex bins a frame,
0.7-0.8 GB for 10 minutes. The stretches are exactly the frames ``librosa.stft(y, center=True)``
gives (zeros padded at both ends, as it pads), cut from ``y`` without a padded copy of it.

Likewise the global tempo (``librosa.feature.tempo``) averages a tempogram whose columns each read
one 8 s stretch of the onset envelope: 344 lags a frame, 0.45 GB traced for 10 minutes. Its mean is
summed a stretch of columns at a time (:func:`global_tempo`).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from analysis.jit import load_librosa

#: STFT frames computed at once (about 48 s at 22.05 kHz, hop 512).
STFT_FRAMES = 1 << 11
#: Tempogram columns computed at once (12 s at hop 512): their autocorrelation takes 11 MB.
TEMPO_FRAMES = 1 << 9


def padded_slice(y: np.ndarray, pad: int, start: int, stop: int) -> np.ndarray:
    """``np.pad(y, pad)[start:stop]`` (zeros padded), without padding the whole of ``y``."""
    before = max(0, min(stop, pad) - start)  # zeros ahead of y
    inner = y[max(0, start - pad) : max(0, min(len(y), stop - pad))]
    return np.pad(inner, (before, stop - start - before - len(inner)))


def power_stretches(y: np.ndarray, n_fft: int, hop: int, frames: int = STFT_FRAMES) -> Iterator[np.ndarray]:
    """``|STFT|^2`` of ``y`` (``(1 + n_fft // 2, k)`` each), ``frames`` frames at a time, in order."""
    librosa = load_librosa()
    pad = n_fft // 2  # what the centred STFT pads (zeros)
    total = 1 + (len(y) + 2 * pad - n_fft) // hop
    for k in range(0, total, frames):
        piece = padded_slice(y, pad, k * hop, (min(total, k + frames) - 1) * hop + n_fft)
        yield np.abs(librosa.stft(piece, n_fft=n_fft, hop_length=hop, center=False)) ** 2


def global_tempo(env: np.ndarray, sr: float, hop: int, frames: int = TEMPO_FRAMES) -> float:
    """``librosa.feature.tempo(onset_envelope=env, sr=sr, hop_length=hop)`` (its defaults: 8 s
    autocorrelation windows, the mean over the track), with the tempogram's mean summed over
    ``frames`` columns at a time instead of built whole."""
    librosa = load_librosa()
    win = int(librosa.time_to_frames(8.0, sr=sr, hop_length=hop))  # tempo's ac_size
    padded = np.pad(env, win // 2, mode="linear_ramp", end_values=[0, 0])  # as tempogram(center=True) pads
    n = len(env)
    total = np.zeros(win)
    for k in range(0, n, frames):
        m = min(n, k + frames) - k
        tg = librosa.feature.tempogram(onset_envelope=padded[k : k + m + win - 1], sr=sr, hop_length=hop,
                                       win_length=win, center=False)  # (win, m): columns k .. k + m
        total += tg.sum(axis=1)
    mean = (total / max(n, 1))[:, None]
    return float(np.atleast_1d(librosa.feature.tempo(tg=mean, sr=sr, hop_length=hop, aggregate=None))[0])
