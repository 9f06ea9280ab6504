"""Librosa's whole-track features a stretch at a time: the centred power spectrogram and the global tempo.

The music features read each STFT frame on its own (semitone bands, mel bands, RMS, centroid,
chroma), so they need not hold a whole track's spectrogram: 1,025 to 2,049 complex bins a frame,
0.7-0.8 GB for 10 minutes. The stretches are exactly the frames ``librosa.stft(y, center=True)``
gives (zeros padded at both ends, as it pads), cut from ``y`` without a padded copy of it.

Likewise the global tempo (``librosa.feature.tempo``) averages a tempogram whose columns each read
one 8 s stretch of the onset envelope: 344 lags a frame, 0.45 GB traced for 10 minutes. Its mean is
summed a stretch of columns at a time (:func:`global_tempo`).

A stretch is also where a long analysis says how far it got: :func:`power_stretches` reports the share of
frames done, and :func:`within` maps a part's share onto the whole it is part of, be it the whole
analysis's ``(fraction, message)`` :data:`Progress` (the callback ``analyze_video`` and the CLI's bars take)
or a stage's share, a :data:`Tick`; :func:`stage` names the stage.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar, cast

import numpy as np

from analysis.jit import load_librosa

#: STFT frames computed at once (about 48 s at 22.05 kHz, hop 512).
STFT_FRAMES = 1 << 11
#: Tempogram columns computed at once (12 s at hop 512): their autocorrelation takes 11 MB.
TEMPO_FRAMES = 1 << 9
#: ``(fraction done, what is happening)``, as :func:`analysis.analyze_video` reports.
Progress = Callable[[float, str], None]
#: The share done of one stage of an analysis (0..1).
Tick = Callable[[float], None]
#: Either kind of callback: :func:`within` hands on the kind it is given.
Report = TypeVar("Report", Progress, Tick)


def within(progress: Report | None, start: float, end: float) -> Report:
    """The callback for the part ``start``..``end`` of what ``progress`` follows: it hears the share of that
    part done (0..1, clamped) and passes on the stage's message where ``progress`` takes one. Without
    ``progress``, a callback that does nothing, so a stage can always say how far it got."""
    if progress is None:
        return cast(Report, _quiet)
    follow = progress

    def part(fraction: float, *message: str) -> None:
        follow(start + (end - start) * min(max(fraction, 0.0), 1.0), *message)

    return cast(Report, part)


def _quiet(fraction: float, *message: str) -> None:
    """What :func:`within` hands on when no one follows the analysis."""


def stage(report: Progress | None, start: float, end: float, message: str) -> Tick:
    """A :data:`Tick` for the stage ``message`` that spans ``start``..``end`` of an analysis ``report``
    follows (:func:`within`)."""
    part = within(report, start, end)
    return lambda fraction: part(fraction, message)


def padded_slice(y: np.ndarray, pad: int, start: int, stop: int) -> np.ndarray:
    """``np.pad(y, pad)[start:stop]`` (zeros padded), without padding the whole of ``y``."""
    before = max(0, min(stop, pad) - start)  # zeros ahead of y
    inner = y[max(0, start - pad) : max(0, min(len(y), stop - pad))]
    return np.pad(inner, (before, stop - start - before - len(inner)))


def power_stretches(
    y: np.ndarray, n_fft: int, hop: int, frames: int = STFT_FRAMES, *, progress: Tick | None = None
) -> Iterator[np.ndarray]:
    """``|STFT|^2`` of ``y`` (``(1 + n_fft // 2, k)`` each), ``frames`` frames at a time, in order: the
    :func:`stream_power_stretches` of views of ``y`` (no copy of it), a stretch's worth of samples each."""
    step = frames * hop
    views = (y[i : i + step] for i in range(0, len(y), step))
    return stream_power_stretches(views, len(y), n_fft, hop, frames, progress=progress)


def resample_stream(blocks: Iterable[np.ndarray], sr: int, target: int) -> Iterator[np.ndarray]:
    """The mono signal that ``blocks`` make up, resampled from ``sr`` to ``target`` Hz by soxr's stream (HQ,
    librosa's resampler), piece by piece and flushed at the end: the samples of the one-shot call, no more
    held than a block. The length is soxr's; :func:`resampled_blocks` fixes it as librosa does."""
    import soxr

    stream = soxr.ResampleStream(sr, target, 1, dtype="float32", quality="HQ")
    for b in blocks:
        yield stream.resample_chunk(np.asarray(b, np.float32), last=False)
    yield stream.resample_chunk(np.zeros(0, np.float32), last=True)


def resampled_length(n: int, sr: int, target: int) -> int:
    """Samples that ``n`` samples at ``sr`` Hz make at ``target`` Hz: ``ceil(n * target / sr)``, the length
    ``librosa.resample`` fixes its output to (``n`` itself when the rates agree). Librosa rounds the ratio
    first, ``ceil(n * (target / sr))``: one sample more at a few rates (37800 Hz: n = 108 makes 64 there)."""
    return int(np.ceil(n * target / sr))


def resampled_blocks(y: np.ndarray, sr: int, target: int, block: int = 1 << 18) -> Iterator[np.ndarray]:
    """``librosa.resample(y, orig_sr=sr, target_sr=target)`` (its length fixed as librosa fixes it) in pieces,
    ``block`` input samples at a time (:func:`resample_stream`), so no whole resampled copy need be held."""
    pieces = (y[i : i + block] for i in range(0, len(y), block))
    if sr == target:
        yield from pieces
        return
    length, made = resampled_length(len(y), sr, target), 0
    for out in resample_stream(pieces, sr, target):
        out = out[: length - made]
        made += len(out)
        yield out
    yield np.zeros(length - made, np.float32)


def stream_power_stretches(
    blocks: Iterable[np.ndarray], length: int, n_fft: int, hop: int, frames: int = STFT_FRAMES, *,
    progress: Tick | None = None,
) -> Iterator[np.ndarray]:
    """``|STFT|^2`` of the ``length``-sample signal that ``blocks`` make up in order (``(1 + n_fft // 2, k)``
    each), ``frames`` frames at a time, made as the blocks arrive: exactly the frames of
    ``librosa.stft(y, center=True)``, zeros padded at both ends as it pads, with only a stretch's samples
    held. ``progress`` hears the share of frames done as each stretch is handed on."""
    librosa = load_librosa()
    pad = n_fft // 2
    total = 1 + (length + 2 * pad - n_fft) // hop
    source = iter(blocks)
    held, start = np.zeros(0, np.float32), 0  # held: the signal's samples start .. start + len(held)
    for k in range(0, total, frames):
        a, b = k * hop - pad, (min(total, k + frames) - 1) * hop + n_fft - pad  # the stretch's samples
        while start + len(held) < min(b, length):
            held = np.concatenate([held, next(source)])
        piece = padded_slice(held, pad, a - start + pad, b - start + pad)  # the centred STFT's zeros at the ends
        yield np.abs(librosa.stft(piece, n_fft=n_fft, hop_length=hop, center=False)) ** 2
        drop = max(0, min((k + frames) * hop - pad - start, len(held)))
        held, start = held[drop:], start + drop
        if progress is not None:
            progress(min(total, k + frames) / total)


def global_tempo(
    env: np.ndarray, sr: float, hop: int, frames: int = TEMPO_FRAMES, *, detrend: bool = False
) -> float:
    """``librosa.feature.tempo(onset_envelope=env, sr=sr, hop_length=hop)`` (its defaults: 8 s
    autocorrelation windows, the mean over the track), with the tempogram's mean summed over
    ``frames`` columns at a time instead of built whole.

    ``detrend``: read the tempo of the envelope's swings about its local mean (Ellis's high-pass,
    librosa's ``onset_strength(detrend=True)``). A soft-attack track's envelope stands well above zero
    everywhere, so its autocorrelation is nearly flat (0.96 at a 23 ms lag, 0.81 at the beat of a
    60 bpm string piece) and the tempo prior around 120 bpm outweighs the beat: such pieces read
    107-136 bpm. Negative correlations (the off-beat lags) then count as none."""
    librosa = load_librosa()
    if detrend:
        import scipy.signal

        env = scipy.signal.lfilter([1.0, -1.0], [1.0, -0.99], env, axis=-1)
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
    if detrend:
        mean = np.maximum(mean, 0.0)
    return float(np.atleast_1d(librosa.feature.tempo(tg=mean, sr=sr, hop_length=hop, aggregate=None))[0])
