"""Audio-track affect: loudness, spectral shape, onsets, tempo, pitch and mode -> valence/arousal.

One short-time Fourier transform (1024-sample frames, hop 512 at 22.05 kHz) feeds every
feature; each is put on a fixed absolute scale in [-1, 1] and mixed with signed weights.
Directions after the affective-video and music-emotion literature:

* **loudness** (RMS level, dBFS) -> arousal +. Sound energy is one of Hanjalic & Xu's
  (2005) three arousal components; loud music and effects excite.
* **energy variation** (spread of the level within a second or two) -> arousal +.
  Punctuated, dynamic sound (hits, shouts) is more arousing than a steady bed
  (Hanjalic & Xu 2005 use energy bursts; Gabrielsson & Lindström 2010: large
  loudness variation ~ activity/fear).
* **spectral centroid** -> arousal + and a little valence +. Bright timbres read active
  and cheerful, dull ones calm and sad (Juslin & Laukka 2003; Eerola et al. 2009).
* **spectral flux** -> arousal +: fast-changing spectra are busy and tense.
* **onset rate** -> arousal +. Event density is perceived tempo (Gabrielsson &
  Lindström 2010); Hanjalic & Xu's rhythm component.
* **tempo** (local, from the onset envelope's autocorrelation) -> arousal + and valence +.
  Fast tempo reads happy/excited, slow tempo sad/calm (Gabrielsson & Lindström 2010).
* **pitch range and height** (spectral peak of tonal frames) -> arousal + for a wide
  range, valence + for a high register (Gabrielsson & Lindström 2010; Hanjalic & Xu
  2005 use pitch for valence).
* **mode** (major vs minor Krumhansl-Kessler key-profile correlation of the chroma),
  weighted by how tonal the sound is -> valence +. Major is heard as happy, minor as sad
  (Hevner 1935; Gabrielsson & Lindström 2010). Noise gets no mode.

Dialogue is not music: stretches the shared voice-activity detector marks as speech
(:mod:`analysis.sources.vad`) are silenced before any feature is read, so music and
ambience cues come only from the rest; a voice's pitch, loudness and rate reach the arc
through the speech source.

Confidence follows the level: 0 below -55 dBFS (near silence says nothing about the
scene), 1 above -40 dBFS, times the share of the window that is not speech. A clip
without audio gets confidence 0 everywhere.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import ClassVar

import numpy as np
import scipy.fft

from analysis.arc import grid
from analysis.errors import ModelError
from analysis.filters import moving_average, moving_max
from analysis.music.spectra import padded_slice
from analysis.music.symbolic import key_correlations
from analysis.sources.base import CueWeights, MediaStreams, SourceArc, weighted_va
from analysis.sources.vad import voice_activity

N_FFT = 1024
HOP = 512

#: feature -> (valence weight, arousal weight); each feature is in [-1, 1].
WEIGHTS: CueWeights = {
    "loudness": (0.0, 0.30),
    "energy_variation": (0.0, 0.12),
    "centroid": (0.10, 0.10),
    "flux": (0.0, 0.08),
    "onset_rate": (0.05, 0.15),
    "tempo": (0.15, 0.10),
    "pitch_range": (0.0, 0.05),
    "pitch_height": (0.20, 0.0),
    "mode": (0.50, 0.0),
}


#: Samples of audio transformed at a time (about 48 s at 22.05 kHz): one block's spectra are held at
#: once, not the clip's (a 20-minute clip's spectrogram, its float64 products and chroma took about
#: 0.7 GB). Blocks hold a multiple of 8 frames, so the FFT groups rows for SIMD as over the whole clip
#: and the features stay bit for bit the same.
BLOCK = 2048 * HOP

#: Sample ranges ``(start, stop)`` of the audio read as silence (the speech, see :func:`_without_speech`).
Silence = tuple[tuple[int, int], ...]


def _frame_blocks(y: np.ndarray, n_fft: int, hop: int, silence: Silence = ()) -> Iterator[np.ndarray]:
    """Frames ``(k, n_fft)`` of ``y`` zero-padded by ``n_fft // 2`` each side (to ``n_fft`` at least),
    frame ``i`` starting at padded sample ``i * hop``, about :data:`BLOCK` samples' worth at a time (views
    of one block's float32 copy); the samples in ``silence`` read zero. The whole clip is never copied."""
    half = n_fft // 2
    n_frames = (max(y.size + 2 * half, n_fft) - n_fft) // hop + 1
    step = max(8, BLOCK // hop // 8 * 8)  # frames per block
    for f0 in range(0, n_frames, step):
        f1 = min(n_frames, f0 + step)
        lo, hi = f0 * hop - half, (f1 - 1) * hop + n_fft - half  # the block's samples, in y's indices
        seg = padded_slice(y, half, lo + half, hi + half).astype(np.float32, copy=False)  # a fresh array
        for s0, s1 in silence:
            s0, s1 = max(s0, lo), min(s1, hi)
            if s1 > s0:
                seg[s0 - lo : s1 - lo] = 0.0
        yield np.lib.stride_tricks.sliding_window_view(seg, n_fft)[::hop]


def _spectral_rows(y: np.ndarray, sr: int, silence: Silence) -> dict[str, np.ndarray]:
    """Per-frame RMS, power sum, centroid, log-spectral flux, flatness and peak bin (80 Hz..2 kHz),
    frames centred at ``i * HOP``, one block of spectra (:func:`_frame_blocks`) at a time."""
    window = np.hanning(N_FFT).astype(np.float32)
    freqs = np.fft.rfftfreq(N_FFT, 1.0 / sr)
    band = (freqs >= 80) & (freqs <= 2000)
    rows: dict[str, list[np.ndarray]] = {k: [] for k in ("rms", "total", "centroid", "flux", "flat", "peak")}
    last: np.ndarray | None = None  # the previous block's last log spectrum, for the flux
    for frames in _frame_blocks(y, N_FFT, HOP, silence):
        rows["rms"].append(np.sqrt(np.mean(np.square(frames, dtype=np.float32), axis=1)))
        mag = np.abs(scipy.fft.rfft(frames * window, axis=1))  # (k, bins)
        power = mag**2
        total = np.maximum(power.sum(1), 1e-12)
        rows["total"].append(total)
        rows["centroid"].append((power * freqs).sum(1) / total)
        logmag = np.log1p(100 * mag)
        ahead = logmag if last is None else np.concatenate([last[None], logmag])
        rows["flux"].append(np.maximum(np.diff(ahead, axis=0), 0).mean(1))
        last = logmag[-1]
        rows["flat"].append(np.exp(np.mean(np.log(power + 1e-12), 1)) / (power.mean(1) + 1e-12))
        rows["peak"].append(np.argmax(mag[:, band], axis=1))
    out = {k: np.concatenate(v) for k, v in rows.items()}
    out["flux"] = np.concatenate([[0.0], out["flux"]])
    out["peak_hz"] = freqs[band][out.pop("peak")]
    return out


def _chroma(y: np.ndarray, sr: int, silence: Silence = ()) -> np.ndarray:
    """(frames, 12) chroma on the ``HOP`` frame grid, C = 0.

    Its own long FFT (4 x ``N_FFT``): at 1024 samples a bin is wider than a semitone below
    ~350 Hz, which smears minor thirds into major ones. Bins 110 Hz..2 kHz only.
    """
    n_fft, hop = 4 * N_FFT, 4 * HOP
    window = np.hanning(n_fft).astype(np.float32)
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sr)
    m = np.zeros((12, freqs.size))
    ok = (freqs >= 110) & (freqs <= 2000)
    pc = np.round(12 * np.log2(freqs[ok] / 440.0) + 9).astype(int) % 12  # A = 9
    m[pc, np.flatnonzero(ok)] = 1.0
    chroma = np.concatenate([  # (long frames, 12)
        (np.abs(scipy.fft.rfft(frames * window, axis=1)) ** 2) @ m.T
        for frames in _frame_blocks(y, n_fft, hop, silence)
    ])
    return np.repeat(chroma, 4, axis=0)  # long frame j covers short frames 4j..4j+3


def _local_tempo(onset_env: np.ndarray, fps: float, win_s: float = 6.0) -> np.ndarray:
    """Tempo (BPM, 40..240) per frame from the autocorrelation of ``win_s`` windows of onsets.

    Periods are weighted by a log-Gaussian around 120 BPM (the preferred-tempo prior used
    by Ellis 2007 and librosa) so octave errors lean to the usual range.
    """
    n = onset_env.size
    win = max(8, int(win_s * fps))
    lags = np.arange(int(fps * 60 / 240), int(fps * 60 / 40) + 1)
    lags = lags[lags > 0]
    bpm = 60.0 * fps / lags
    prior = np.exp(-0.5 * (np.log2(bpm / 120.0) / 1.0) ** 2)
    step = max(1, int(fps))  # one estimate a second, interpolated between
    centres = np.arange(0, n, step)
    out = np.empty(centres.size)
    for i, c in enumerate(centres):
        seg = onset_env[max(0, c - win // 2) : c + win // 2]
        seg = seg - seg.mean()
        if seg.size <= lags[-1] + 1 or not np.any(seg):
            out[i] = np.nan
            continue
        ac = np.array([np.dot(seg[:-lag], seg[lag:]) for lag in lags]) / (seg.size - lags)
        out[i] = bpm[np.argmax(ac * prior)] if ac.max() > 0 else np.nan
    if np.all(np.isnan(out)):
        return np.full(n, np.nan)
    good = ~np.isnan(out)
    return np.interp(np.arange(n), centres[good], out[good])


def frame_features(y: np.ndarray, sr: int, silence: Silence = ()) -> dict[str, np.ndarray]:
    """Raw per-STFT-frame features of mono audio ``y`` at ``sr`` (see module docstring), the sample
    ranges in ``silence`` read as zeros."""
    rows = _spectral_rows(y, sr, silence)
    fps = sr / HOP
    db = 20 * np.log10(np.maximum(rows["rms"], 1e-3))  # floor at -60 dBFS: silence is not "infinitely" quiet
    centroid, flux = rows["centroid"], rows["flux"]
    # Onsets: flux peaks that are local maxima over +-50 ms and stand above a running mean.
    ref = moving_average(flux, max(3, int(0.5 * fps)))
    peaks = (flux == moving_max(flux, max(3, int(0.1 * fps)))) & (flux > 1.5 * ref + 0.08)
    onset_rate = moving_average(peaks.astype(float), max(3, int(2 * fps))) * fps  # onsets/s over 2 s
    tempo = _local_tempo(flux, fps)
    # Tonal frames: low spectral flatness; their strongest bin in 80 Hz..2 kHz is the pitch.
    tonal = np.clip(1.0 - rows["flat"] * 4, 0.0, 1.0) * (db > -55)
    midi = 69 + 12 * np.log2(rows["peak_hz"] / 440.0)
    chroma = _chroma(y, sr, silence)[: db.size]  # (frames, 12)
    return {
        "db": db,
        "centroid": centroid,
        "flux": flux,
        "onset_rate": onset_rate,
        "tempo": tempo,
        "tonal": tonal,
        "midi": midi,
        "chroma": chroma,
    }


def _mode(chroma: np.ndarray) -> float:
    """Best major-key correlation minus best minor-key correlation of summed chroma, in [-1, 1]."""
    c = chroma.sum(0)
    if not np.any(c) or c.std() == 0:
        return 0.0
    corr = key_correlations(c)  # Krumhansl & Kessler (1982), shared with the symbolic estimator
    return float(np.clip((corr[:12].max() - corr[12:].max()) * 3.0, -1.0, 1.0))


def _without_speech(media: MediaStreams) -> tuple[Silence, Callable[[np.ndarray], np.ndarray]]:
    """The sample ranges of the clip's speech stretches, to read as silence, and a test "is time t speech?".

    Speech comes from the voice-activity detector shared with the speech source
    (:mod:`analysis.sources.vad`). Dialogue is read by the speech source; here it would pass
    for music (a voice is tonal, has a pitch, a loudness and a syllable rate). Without the
    detector (``faster-whisper`` missing) nothing is silenced. The ranges are silenced block by
    block as the spectra are taken, not in a copy of the whole audio.
    """
    none = lambda t: np.zeros(np.shape(t), dtype=bool)  # noqa: E731
    try:
        voice = voice_activity(media)
    except ModelError:
        return (), none
    if voice is None or not voice.any:
        return (), none
    sr = media.sample_rate
    return tuple((int(start * sr), int(np.ceil(end * sr))) for start, end in voice.regions), voice.mask


class AudioSource:
    """Valence/arousal from the soundtrack; see the module docstring for the features."""

    name: ClassVar[str] = "audio"

    def analyze(self, media: MediaStreams, *, hop: float) -> SourceArc:
        centres = grid(media.duration, hop)
        n = centres.size
        zeros = np.zeros(n)
        if media.audio is None or media.audio.size < N_FFT:
            return SourceArc(self.name, centres, zeros, zeros.copy(), zeros.copy())
        sr = media.sample_rate
        silence, speech_at = _without_speech(media)
        f = frame_features(media.audio, sr, silence)
        ft = np.arange(f["db"].size) * HOP / sr  # frame centres (s)
        idx = np.clip(np.floor(ft / hop).astype(int), 0, n - 1)
        keep = (~speech_at(ft)).astype(float)  # frames outside speech: the only ones read here
        counts = np.maximum(np.bincount(idx, weights=keep, minlength=n), 1e-9)
        share = counts / np.maximum(np.bincount(idx, minlength=n), 1)  # non-speech share of each window

        def wmean(x: np.ndarray) -> np.ndarray:
            return np.bincount(idx, weights=x * keep, minlength=n) / counts

        power_mean = wmean(10 ** (f["db"] / 10))
        level = 10 * np.log10(np.maximum(power_mean, 1e-12))
        # Context of about 2 s around each window for the slower features.
        ctx = max(1, round(2.0 / hop))
        smooth = lambda x: moving_average(x, ctx, mode="nearest")  # noqa: E731
        db_var = np.sqrt(np.maximum(smooth(wmean(f["db"] ** 2)) - smooth(wmean(f["db"])) ** 2, 0))
        tonal = wmean(f["tonal"])
        tw = f["tonal"] * keep
        tonal_sum = np.maximum(np.bincount(idx, weights=tw, minlength=n), 1e-9)
        pitch_mean = np.bincount(idx, weights=tw * f["midi"], minlength=n) / tonal_sum
        pitch_sq = np.bincount(idx, weights=tw * f["midi"] ** 2, minlength=n) / tonal_sum
        pitch_range = np.sqrt(np.maximum(smooth(pitch_sq) - smooth(pitch_mean) ** 2, 0)) * 2  # ~ +-1 sd, semitones
        tempo = f["tempo"]
        tempo_w = wmean(np.nan_to_num(tempo, nan=90.0))
        # Mode over ~4 s of chroma, weighted by tonality so noise has no mode.
        chroma_w = np.stack([np.bincount(idx, weights=f["chroma"][:, k] * tw, minlength=n) for k in range(12)], 1)
        span = max(1, round(2.0 / hop))
        mode = np.array([_mode(chroma_w[max(0, i - span) : i + span + 1]) for i in range(n)])
        tonal_ctx = smooth(tonal)
        pitched = np.clip(tonal_ctx * 2, 0, 1)

        feats = {
            "level_db": level,
            "energy_variation_db": db_var,
            "centroid_hz": wmean(f["centroid"]),
            "flux": smooth(wmean(f["flux"])),
            "onset_rate": wmean(f["onset_rate"]),
            "tempo_bpm": tempo_w,
            "pitch_range_st": pitch_range,
            "pitch_midi": smooth(pitch_mean),
            "tonality": tonal_ctx,
            "mode": mode * pitched,
        }
        scaled = {
            "loudness": np.clip((level + 30.0) / 15.0, -1, 1),  # -45 dBFS -> -1, -15 dBFS -> +1
            "energy_variation": np.clip((db_var - 4.0) / 6.0, -1, 1),
            "centroid": np.clip(np.log2(np.maximum(feats["centroid_hz"], 50) / 1500.0), -1, 1),
            "flux": np.clip((feats["flux"] - 0.15) / 0.15, -1, 1),
            "onset_rate": np.clip((feats["onset_rate"] - 2.0) / 2.5, -1, 1),  # 2 onsets/s neutral
            "tempo": np.clip((tempo_w - 105.0) / 45.0, -1, 1) * np.clip(feats["onset_rate"] / 1.5, 0, 1),
            "pitch_range": np.clip((pitch_range - 6.0) / 6.0, -1, 1) * pitched,
            "pitch_height": np.clip((feats["pitch_midi"] - 64.0) / 12.0, -1, 1) * pitched,
            "mode": feats["mode"],
        }
        valence, arousal = weighted_va(WEIGHTS, scaled)
        confidence = np.clip((level + 55.0) / 15.0, 0.0, 1.0) * np.clip(share, 0.0, 1.0)
        feats["speech_share"] = 1.0 - np.clip(share, 0.0, 1.0)
        return SourceArc(
            name=self.name,
            times=centres,
            valence=valence,
            arousal=arousal,
            confidence=confidence,
            emotions=None,
            features=feats,
        )
