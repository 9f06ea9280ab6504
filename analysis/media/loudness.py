"""One loudness for everything the page plays: EBU R128 integrated loudness (ITU-R BS.1770-4).

Library previews (:mod:`matching.fit`) and composed pieces (:mod:`composer.output.write`) are
both brought to :data:`TARGET_LUFS`, so switching between them does not jump. Measuring is
BS.1770's meter (K-weighting, 400 ms blocks overlapping by 75 %, absolute and relative gates),
the figures of pyloudnorm's meter (``tests/test_loudness.py`` compares them) in whole-array
NumPy: a minute of stereo in about 0.08 s instead of 0.15 s, and normalising measures up to five times.
The K-weighting filter is :func:`analysis.filters.sosfilt` (NumPy, equal to scipy's ``sosfilt``),
so rendering does not import ``scipy.signal`` (about 1 s).

Peaks are *true* peaks (:func:`true_peak`: BS.1770-4 Annex 2, the signal 4x oversampled by the
Annex's 48-tap interpolator), held at or under :data:`TRUE_PEAK_DBTP` (-1 dBTP, what EBU R128 and the
streaming platforms ask for): a waveform whose samples stay under full scale can still swing past it
between them, and a player's reconstruction, or an AAC/Vorbis/MP3 encoder, then clips (a -16 LUFS
preview of a piano recording peaked at -0.2 dBTP with its samples held under 0.98).

Gain alone can push peaks past the ceiling (a quiet orchestral track needs +10 dB or more):
peaks above :data:`KNEE` are then bent smoothly towards :data:`CEILING` (:func:`limit_true_peak`: a
soft knee on the true-peak envelope, applied as a gain that ramps over a millisecond, so it only
touches the loudest moments), and gain and limiting are repeated (at most four passes) until the
level is within 0.2 LU of the target: very peaky audio (a click track) may stay a little under it.
Audio shorter than one 400 ms gating block, or silent, is returned as is.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from analysis.errors import MediaError, ParameterError
from analysis.filters import sosfilt_stretches, streamed_window_sums

#: Integrated loudness everything is normalised to (the common streaming/web level).
TARGET_LUFS = -16.0
#: Highest true peak after normalising (dBTP): EBU R128's and the streaming platforms' delivery limit.
TRUE_PEAK_DBTP = -1.0
#: :data:`TRUE_PEAK_DBTP` as a linear level (0.891): no sample, and no point between samples, goes above it.
CEILING = 10 ** (TRUE_PEAK_DBTP / 20)
#: Level above which the soft limiter starts bending peaks.
KNEE = 0.7
#: BS.1770-4 Annex 2's interpolator: four phases of 12 taps, the 4x oversampled points between a sample
#: and the next. As a (12 taps, 4 phases) matrix that a window of 12 samples, oldest first, multiplies.
_PHASES = np.array([
    [0.0017089843750, 0.0109863281250, -0.0196533203125, 0.0332031250000, -0.0594482421875, 0.1373291015625,
     0.9721679687500, -0.1022949218750, 0.0476074218750, -0.0266113281250, 0.0148925781250, -0.0083007812500],
    [-0.0291748046875, 0.0292968750000, -0.0517578125000, 0.0891113281250, -0.1665039062500, 0.4650878906250,
     0.7797851562500, -0.2003173828125, 0.1015625000000, -0.0582275390625, 0.0330810546875, -0.0189208984375],
])  # fmt: skip
_TAPS = np.vstack([_PHASES, _PHASES[::-1, ::-1]])[:, ::-1].T.astype(np.float32)  # phases 2, 3 mirror 1, 0
#: The most an interpolated point can exceed the largest of its 12 samples (the phases' largest sum of |taps|).
_BOUND = float(np.abs(_TAPS).sum(axis=0).max())
_TP_BLOCK = 1 << 16  # frames measured at a time
#: The limiter's gain reaches its lowest this many samples (0.7 ms at 44.1 kHz) before a peak and
#: comes back over as many after it: a ramp, not a step, which would itself swing between samples.
_RAMP = 32
_LIMIT_TRIES = 4
_BLOCK_S = 0.4
_OVERLAP = 0.75
_ABSOLUTE_GATE = -70.0  # LUFS
_PASSES = 4


def _frames(audio: np.ndarray, channels_first: bool, dtype: type | None = np.float64) -> np.ndarray:
    """``audio`` as (frames, channels), as ``dtype`` (None: its own, no copy)."""
    a = np.asarray(audio, dtype=dtype)
    if a.ndim == 1:
        return a[:, None]
    if a.ndim != 2:
        raise ParameterError(f"`audio` must be 1-D or 2-D (received shape {a.shape})")
    return a.T if channels_first else a


def _k_weighting(sr: int) -> np.ndarray:
    """BS.1770's K-weighting as second-order sections: a +4 dB high shelf from 1.5 kHz, then a
    38 Hz high-pass (the biquads of the audio EQ cookbook at the standard's corner and Q)."""
    sections = []
    for shelf, gain_db, q, fc in ((True, 4.0, 1 / math.sqrt(2), 1500.0), (False, 0.0, 0.5, 38.0)):
        w0 = 2 * math.pi * fc / sr
        alpha, cw = math.sin(w0) / (2 * q), math.cos(w0)
        if shelf:
            a = 10 ** (gain_db / 40)
            r = 2 * math.sqrt(a) * alpha
            b = [a * ((a + 1) + (a - 1) * cw + r), -2 * a * ((a - 1) + (a + 1) * cw), a * ((a + 1) + (a - 1) * cw - r)]
            den = [(a + 1) - (a - 1) * cw + r, 2 * ((a - 1) - (a + 1) * cw), (a + 1) - (a - 1) * cw - r]
        else:
            b = [(1 + cw) / 2, -(1 + cw), (1 + cw) / 2]
            den = [1 + alpha, -2 * cw, 1 - alpha]
        sections.append(np.array(b + den) / den[0])
    return np.array(sections)


def integrated_loudness(audio: np.ndarray, sr: int, *, channels_first: bool = False) -> float:
    """Integrated loudness in LUFS; ``-inf`` for silence or audio shorter than one gating block.

    Channels count alike (gain 1: mono and stereo; surround channels are not weighted up).
    """
    if sr <= 0:
        raise ParameterError(f"`sr` must be positive (received {sr})")
    x = _frames(audio, channels_first, None)  # float64 a stretch at a time: an hour of stereo is 2.5 GB a copy
    n = x.shape[0]
    if n < int(_BLOCK_S * sr) + 1 or not np.any(x):
        return -math.inf
    step = _BLOCK_S * (1 - _OVERLAP)
    blocks = np.arange(int(np.round((n / sr - _BLOCK_S) / step)) + 1)
    lo = (_BLOCK_S * blocks * (1 - _OVERLAP) * sr).astype(int)
    hi = np.minimum((_BLOCK_S * (blocks * (1 - _OVERLAP) + 1) * sr).astype(int), n)
    # the K-weighted signal's energy per block, its running sum carried from stretch to stretch (the same sums)
    energy = streamed_window_sums((np.square(y) for y in sosfilt_stretches(_k_weighting(sr), x)), lo, hi)
    power = (energy / (_BLOCK_S * sr)).sum(axis=1)  # mean square per block, channels summed
    with np.errstate(divide="ignore"):
        level = -0.691 + 10 * np.log10(power)
    loud = level >= _ABSOLUTE_GATE
    if not loud.any():
        return -math.inf
    relative = -0.691 + 10 * np.log10(power[loud].mean()) - 10.0
    return float(-0.691 + 10 * np.log10(power[loud & (level > relative)].mean()))


def _running(op: np.ufunc, x: np.ndarray, width: int) -> np.ndarray:
    """``op`` (np.maximum or np.minimum) over every ``width`` consecutive values of 1-D ``x``
    (``len(x) - width + 1`` of them), in log2(width) passes by doubling spans."""
    m, span = x, 1
    while 2 * span <= width:
        m = op(m[:-span], m[span:])  # m[i]: op over x[i : i + 2 * span]
        span *= 2
    n = len(x) - width + 1
    return op(m[:n], m[width - span : width - span + n])


def _row_max(x: np.ndarray) -> np.ndarray:
    """The largest magnitude in each row of 2-D ``x``, column by column (``np.abs(x).max(axis=1)`` reduces a
    stereo pair 20 to 50 times slower)."""
    m = np.abs(x[:, 0])
    for c in range(1, x.shape[1]):
        np.maximum(m, np.abs(x[:, c]), out=m)
    return m


def _frame_peaks(x: np.ndarray, a: int, b: int, floor: float) -> np.ndarray:
    """For frames ``a .. b-1`` of ``x`` ((frames, channels)), the largest magnitude over the channels of the
    sample and of the three points BS.1770's interpolator puts between it and the next; only where that
    could exceed ``floor`` (the sample itself elsewhere, which is then at most ``floor`` too)."""
    n = len(x)
    lo, hi = max(a - 5, 0), min(b + 6, n)  # the 12-sample window of frame j is x[j - 5 : j + 7)
    seg = _row_max(x[lo:hi])
    if lo > a - 5 or hi < b + 6:
        seg = np.pad(seg, (lo - (a - 5), b + 6 - hi))
    peaks = seg[5 : 5 + b - a].astype(np.float32)
    near = np.flatnonzero(_running(np.maximum, seg, 12) * _BOUND > floor)
    if near.size:
        block = x[lo:hi].astype(np.float32)
        if lo > a - 5 or hi < b + 6:
            block = np.pad(block, ((lo - (a - 5), b + 6 - hi), (0, 0)))
        windows = sliding_window_view(block, 12, axis=0)[near]  # (near, channels, 12)
        points = (windows @ _TAPS).reshape(near.size, -1)  # (near, channels * 4 phases)
        peaks[near] = np.maximum(peaks[near], _row_max(points))
    return peaks


def true_peak(audio: np.ndarray, *, channels_first: bool = False) -> float:
    """The true peak of ``audio`` (linear; ``20 * log10`` of it reads dBTP): ITU-R BS.1770-4 Annex 2, the
    largest magnitude of the signal 4x oversampled by the Annex's interpolator, or of a sample where that is
    larger. A sine at a quarter of the sample rate whose samples fall at +-45 degrees reads its amplitude,
    1.41 times (3 dB over) its largest sample. Silence and empty audio read 0; NaN samples are passed over
    (one bad sample of a float file would otherwise make the peak, and every gain made from it, NaN)."""
    x = _frames(audio, channels_first, None)  # no float64 copy: an hour of stereo is 1.3 GB a copy
    if x.size == 0:
        return 0.0
    best = float(max(np.fmax.reduce(x, axis=None), -np.fmin.reduce(x, axis=None)))  # fmax: NaN passed over
    if math.isnan(best):  # nothing but NaN
        return 0.0
    for a in range(0, len(x), _TP_BLOCK):
        best = max(best, float(np.fmax.reduce(_frame_peaks(x, a, min(a + _TP_BLOCK, len(x)), best))))
    return best


def limit_true_peak(audio: np.ndarray, *, ceiling: float = CEILING, channels_first: bool = False) -> np.ndarray:
    """``audio`` (same shape and layout) with its true peak (:func:`true_peak`) held at or under ``ceiling``:
    untouched where it stays under :data:`KNEE` (scaled with ``ceiling``), bent softly towards ``ceiling`` above,
    every channel by one gain (the stereo image stays)."""
    if not 0.0 < ceiling <= 1.0:
        raise ParameterError(f"`ceiling` must be within 0 and 1 (received {ceiling})")
    a = np.asarray(audio)
    # float32 is bent as float32 (its gains are float64): a float64 copy of an hour of stereo is 2.7 GB more
    x = _frames(a, channels_first, np.float32 if a.dtype == np.float32 else np.float64)
    y = _limited(x, ceiling, true_peak(x))[0].astype(a.dtype, copy=False)
    if a.ndim == 1:
        return y[:, 0]
    return y.T if channels_first else y


def _limited(x: np.ndarray, ceiling: float, peak: float) -> tuple[np.ndarray, float]:
    """``x`` ((frames, channels)) limited to true peak ``ceiling``, and its true peak after; ``peak``: its true
    peak before. The soft knee aims at ``ceiling`` first; where the bent waveform still swings over it between
    samples, the aim is lowered by as much and ``x`` bent again (a few tries; then a plain gain)."""
    if peak <= ceiling:
        return x, peak
    aim = ceiling
    for _ in range(_LIMIT_TRIES):
        y = _bent(x, aim)
        peak = true_peak(y)
        if peak <= ceiling:
            return y, peak
        aim *= ceiling / peak
    return y * (ceiling / peak), ceiling


def _bent(x: np.ndarray, aim: float) -> np.ndarray:
    """``x`` ((frames, channels)) times the gain that bends its true-peak envelope above the knee
    (:data:`KNEE` * ``aim`` / :data:`CEILING`) along a tanh towards ``aim``; the gain each frame needs is held
    over :data:`_RAMP` frames either side and averaged over as many, so it never exceeds what a frame
    needs and never steps."""
    knee = KNEE * aim / CEILING
    room = aim - knee
    out, n = x.copy(), len(x)
    for a in range(0, n, _TP_BLOCK):
        b = min(a + _TP_BLOCK, n)
        lo, hi = max(a - 2 * _RAMP, 0), min(b + 2 * _RAMP, n)
        peaks = _frame_peaks(x, lo, hi, knee).astype(np.float64)
        if not (peaks > knee).any():
            continue
        need = np.ones(b - a + 4 * _RAMP)  # frames a - 2R .. b + 2R, those past the ends need nothing
        need[lo - (a - 2 * _RAMP) : hi - (a - 2 * _RAMP)] = _knee_gain(peaks, knee, room)
        out[a:b] *= _ramped(need)[:, None]  # frames a .. b - 1
    return out


def _knee_gain(peaks: np.ndarray, knee: float, room: float) -> np.ndarray:
    """The gain per frame that bends true peaks above ``knee`` along a tanh towards ``knee + room`` (1 below)."""
    need = np.ones(len(peaks))
    over = peaks > knee
    lift = peaks[over]
    need[over] = (knee + room * np.tanh((lift - knee) / room)) / lift
    return need


def _ramped(need: np.ndarray) -> np.ndarray:
    """The gain for frames ``2R .. len(need) - 2R`` (R = :data:`_RAMP`) of ``need``: held at the lowest within R
    frames either side, then averaged over as many; never above what a frame needs, and never a step."""
    w = 2 * _RAMP + 1
    held = _running(np.minimum, need, w)
    sums = np.concatenate([[0.0], np.cumsum(held)])
    return (sums[w:] - sums[:-w]) / w


def normalize_loudness(
    audio: np.ndarray, sr: int, *, target: float = TARGET_LUFS, channels_first: bool = False
) -> np.ndarray:
    """``audio`` (same shape and layout, float32) at ``target`` LUFS, its true peak kept under :data:`CEILING`."""
    return _normalized(audio, sr, target, channels_first)[0]


def _normalized(audio: np.ndarray, sr: int, target: float, channels_first: bool) -> tuple[np.ndarray, float, float]:
    """:func:`normalize_loudness` and the loudness before and after (each measured once)."""
    if not -70.0 <= target <= 0.0:
        raise ParameterError(f"`target` must be within -70 and 0 LUFS (received {target})")
    a = np.asarray(audio)
    # float32 is scaled and bent as float32, and the copy made by the first gain is scaled in place after it:
    # an hour of stereo is 1.3 GB a float32 copy, and float64 copies of every pass made a one-hour score's
    # render peak at 14 GB
    x = _frames(a, channels_first, np.float32 if a.dtype == np.float32 else np.float64)
    before = integrated_loudness(x, sr)
    if not math.isfinite(before):
        return np.asarray(audio, dtype=np.float32), before, before
    y, level, peak = None, before, true_peak(x)  # a gain scales the true peak: it is measured again only when bent
    for _ in range(_PASSES):  # limiting takes loudness away with the peaks: measure and go again
        gain = 10 ** ((target - level) / 20)
        if y is None:
            y = x * gain  # the caller's audio stays as it was
        else:
            y *= gain
        y, peak = _limited(y, CEILING, peak * gain)
        level = integrated_loudness(y, sr)
        if not math.isfinite(level) or abs(level - target) < 0.2:
            break
    y = y.astype(np.float32, copy=False)
    if np.asarray(audio).ndim == 1:
        return y[:, 0], before, level
    return (y.T if channels_first else y), before, level


def normalize_file(path: str | Path, *, target: float = TARGET_LUFS) -> tuple[float, float]:
    """Rewrite the audio file at ``path`` at ``target`` LUFS (same format); returns (LUFS before, after)."""
    import soundfile as sf

    p = Path(path)
    try:
        info = sf.info(str(p))
        audio, sr = sf.read(str(p), dtype="float32", always_2d=True)
    except (RuntimeError, OSError) as err:
        raise MediaError(p, f"cannot be read as audio to normalise its loudness ({err})") from None
    out, before, after = _normalized(audio, sr, target, False)
    sf.write(str(p), out, sr, subtype=info.subtype)
    return before, after


#: :class:`StreamLimiter`'s delay in frames: its gain looks this far ahead (the ramp's 2R, and the 6 frames past
#: a frame that BS.1770's interpolator reads), so it is already down when a peak arrives, in whichever chunk.
STREAM_DELAY = 2 * _RAMP + 6
#: :class:`StreamLimiter`'s release (s): after a peak its gain comes back at most this exponentially, across
#: chunks. Offline the gain comes back within :data:`_RAMP` frames; a stream bent bar after bar would buzz.
LIMIT_RELEASE_S = 0.05
#: :class:`StreamLimiter` aims this much (dB) under its ceiling: it cannot measure and bend again as
#: :func:`limit_true_peak` does, and the gain moving within the interpolator's 12 taps costs a little.
_STREAM_MARGIN_DB = 0.3


class StreamLimiter:
    """:func:`limit_true_peak` for audio that comes in chunks (a live stream): every chunk out stays at or under
    ``ceiling`` true peak, with the same soft knee, and the gain it applies runs on from one chunk to the next
    (no step at a seam). The price is :data:`STREAM_DELAY` frames of delay (1.6 ms at 44.1 kHz): the first
    chunk out starts with as many frames of silence, and the last ones stay inside until more comes."""

    def __init__(self, sr: int, channels: int = 2, *, ceiling: float = CEILING) -> None:
        if not 0.0 < ceiling <= 1.0:
            raise ParameterError(f"`ceiling` must be within 0 and 1 (received {ceiling})")
        if sr <= 0:
            raise ParameterError(f"`sr` must be positive (received {sr})")
        aim = ceiling * 10 ** (-_STREAM_MARGIN_DB / 20)
        self._knee = KNEE * aim / CEILING
        self._room = aim - self._knee
        self._log_decay = -1.0 / (LIMIT_RELEASE_S * sr)  # log of the release's factor a frame
        self._tail = np.zeros((STREAM_DELAY, channels), np.float32)  # the last frames in, not yet out
        self._need = np.ones(4 * _RAMP)  # the knee's gain of the 4R frames before the newest 6 in
        self._cut = 0.0  # 1 - the gain of the last frame out

    def process(self, chunk: np.ndarray) -> np.ndarray:
        """The next ``len(chunk)`` frames out (float32 (frames, channels)) for ``chunk`` in."""
        x = np.asarray(chunk, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != self._tail.shape[1]:
            raise ParameterError(f"`chunk` must be (frames, {self._tail.shape[1]}) (received shape {x.shape})")
        n, d = len(x), STREAM_DELAY
        if n == 0:
            return x.copy()
        frames = np.concatenate([self._tail, x])  # frames[0] is the first one out
        self._tail = frames[-d:].copy()
        peaks = _frame_peaks(frames, d - 6, d - 6 + n, self._knee).astype(np.float64)
        need = np.concatenate([self._need, _knee_gain(peaks, self._knee, self._room)])
        self._need = need[-4 * _RAMP :]
        if self._cut < 1e-6 and need.min() >= 1.0:
            self._cut = 0.0
            return frames[:n]
        cut = 1.0 - _ramped(need)  # frames out: need[2R + j] is frame j + 6 of them
        # the release: cut[j] = max(cut[j], cut[j - 1] * decay), from the last chunk's, in closed form
        steps = np.arange(n) * self._log_decay
        with np.errstate(divide="ignore"):
            run = np.log(np.maximum(cut, 0.0)) - steps
            run[0] = max(run[0], math.log(self._cut) + self._log_decay if self._cut > 0 else -math.inf)
        cut = np.exp(np.maximum.accumulate(run) + steps)
        self._cut = float(cut[-1])
        return (frames[:n] * (1.0 - cut)[:, None]).astype(np.float32)
