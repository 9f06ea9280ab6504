"""Librosa's centred power spectrogram, a stretch of frames at a time.

The music features read each STFT frame on its own (semitone bands, mel bands, RMS, centroid,
chroma), so they need not hold a whole track's spectrogram: 1,025 to 2,049 complex bins a frame,
0.7-0.8 GB for 10 minutes. The stretches are exactly the frames ``librosa.stft(y, center=True)``
gives (zeros padded at both ends, as it pads).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from analysis.jit import load_librosa

#: STFT frames computed at once (about 48 s at 22.05 kHz, hop 512).
STFT_FRAMES = 1 << 11


def power_stretches(y: np.ndarray, n_fft: int, hop: int, frames: int = STFT_FRAMES) -> Iterator[np.ndarray]:
    """``|STFT|^2`` of ``y`` (``(1 + n_fft // 2, k)`` each), ``frames`` frames at a time, in order."""
    librosa = load_librosa()
    padded = np.pad(y, n_fft // 2)  # what the centred STFT pads (zeros)
    total = 1 + (len(padded) - n_fft) // hop
    for k in range(0, total, frames):
        piece = padded[k * hop : (min(total, k + frames) - 1) * hop + n_fft]
        yield np.abs(librosa.stft(piece, n_fft=n_fft, hop_length=hop, center=False)) ** 2
