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

from collections.abc import Callable
from typing import ClassVar

import numpy as np
import scipy.fft

from analysis.arc import grid
from analysis.errors import ModelError
from analysis.filters import moving_average, moving_max
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


def _stft(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(RMS per frame, magnitude spectrogram (frames, bins)), frames centred at ``i * HOP``."""
    padded = np.pad(y.astype(np.float32, copy=False), N_FFT // 2)
    if padded.size < N_FFT:
        padded = np.pad(padded, (0, N_FFT - padded.size))
    frames = np.lib.stride_tricks.sliding_window_view(padded, N_FFT)[::HOP]
    window = np.hanning(N_FFT).astype(np.float32)
    rms = np.sqrt(np.mean(np.square(frames, dtype=np.float32), axis=1))
    return rms, np.abs(scipy.fft.rfft(frames * window, axis=1))


def _chroma(y: np.ndarray, sr: int) -> np.ndarray:
    """(frames, 12) chroma on the ``HOP`` frame grid, C = 0.

    Its own long FFT (4 x ``N_FFT``): at 1024 samples a bin is wider than a semitone below
    ~350 Hz, which smears minor thirds into major ones. Bins 110 Hz..2 kHz only.
    """
    n_fft, hop = 4 * N_FFT, 4 * HOP
    padded = np.pad(y.astype(np.float32, copy=False), n_fft // 2)
    if padded.size < n_fft:
        padded = np.pad(padded, (0, n_fft - padded.size))
    frames = np.lib.stride_tricks.sliding_window_view(padded, n_fft)[::hop]
    power = np.abs(scipy.fft.rfft(frames * np.hanning(n_fft).astype(np.float32), axis=1)) ** 2
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sr)
    m = np.zeros((12, freqs.size))
    ok = (freqs >= 110) & (freqs <= 2000)
    pc = np.round(12 * np.log2(freqs[ok] / 440.0) + 9).astype(int) % 12  # A = 9
    m[pc, np.flatnonzero(ok)] = 1.0
    chroma = power @ m.T  # (long frames, 12)
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


def frame_features(y: np.ndarray, sr: int) -> dict[str, np.ndarray]:
    """Raw per-STFT-frame features of mono audio ``y`` at ``sr`` (see module docstring)."""
    rms, mag = _stft(y)  # (frames,), (frames, bins)
    power = mag**2
    freqs = np.fft.rfftfreq(N_FFT, 1.0 / sr)
    fps = sr / HOP
    db = 20 * np.log10(np.maximum(rms, 1e-3))  # floor at -60 dBFS: silence is not "infinitely" quiet
    total = np.maximum(power.sum(1), 1e-12)
    centroid = (power * freqs).sum(1) / total
    logmag = np.log1p(100 * mag)
    flux = np.concatenate([[0.0], np.maximum(np.diff(logmag, axis=0), 0).mean(1)])
    # Onsets: flux peaks that are local maxima over +-50 ms and stand above a running mean.
    ref = moving_average(flux, max(3, int(0.5 * fps)))
    peaks = (flux == moving_max(flux, max(3, int(0.1 * fps)))) & (flux > 1.5 * ref + 0.08)
    onset_rate = moving_average(peaks.astype(float), max(3, int(2 * fps))) * fps  # onsets/s over 2 s
    tempo = _local_tempo(flux, fps)
    # Tonal frames: low spectral flatness; their strongest bin in 80 Hz..2 kHz is the pitch.
    flat = np.exp(np.mean(np.log(power + 1e-12), 1)) / (power.mean(1) + 1e-12)
    tonal = np.clip(1.0 - flat * 4, 0.0, 1.0) * (db > -55)
    band = (freqs >= 80) & (freqs <= 2000)
    peak_hz = freqs[band][np.argmax(mag[:, band], axis=1)]
    midi = 69 + 12 * np.log2(peak_hz / 440.0)
    chroma = _chroma(y, sr)[: db.size]  # (frames, 12)
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


def _without_speech(media: MediaStreams) -> tuple[np.ndarray, Callable[[np.ndarray], np.ndarray]]:
    """The clip's audio with its speech stretches silenced, and a test "is time t speech?".

    Speech comes from the voice-activity detector shared with the speech source
    (:mod:`analysis.sources.vad`). Dialogue is read by the speech source; here it would pass
    for music (a voice is tonal, has a pitch, a loudness and a syllable rate). Without the
    detector (``faster-whisper`` missing) nothing is silenced.
    """
    none = lambda t: np.zeros(np.shape(t), dtype=bool)  # noqa: E731
    try:
        voice = voice_activity(media)
    except ModelError:
        return media.audio, none
    if voice is None or not voice.any:
        return media.audio, none
    y = media.audio.copy()
    for start, end in voice.regions:
        y[int(start * media.sample_rate) : int(np.ceil(end * media.sample_rate))] = 0.0
    return y, voice.mask


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
        y, speech_at = _without_speech(media)
        f = frame_features(y, sr)
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
