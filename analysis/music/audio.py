"""Valence/arousal of recorded music, on the scale of the symbolic estimator.

The audio is read into the very :class:`~analysis.music.symbolic.MusicFeatures` the MIDI
estimator produces, then mapped by the shared :func:`~analysis.music.symbolic.music_va`:

* a power spectrogram (STFT 4096/512 at 22.05 kHz) folded onto semitones C2..C8
  gives chroma (-> Krumhansl-Kessler **mode**, as for MIDI), the pitch classes present
  in each frame (-> **consonance**, by the same pair-roughness table) and a
  power-weighted mean pitch (-> **register**);
* onsets (spectral flux of the semitone spectrum) per second -> **density**;
* the global beat tempo -> **tempo**;
* RMS loudness (dBFS) -> a MIDI-velocity equivalent -> **velocity**;
* **articulation** is not read from audio (NaN, i.e. neutral).

Raw audio readings differ from their symbolic counterparts (harmonics raise the
apparent register and add fifths/thirds to the chroma, reverb blurs chords), so each is
mapped by a linear calibration fitted on music21 corpus pieces rendered through
FluidSynth with :func:`render_midi` (``bench/music_audio_agreement.py`` refits and
reports the agreement). Loudness assumes the level convention of :func:`render_midi`:
a four-part texture at MIDI velocity 90 sits near -20 dBFS, as a mastered track does.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from analysis.arc import EmotionArc, grid
from analysis.errors import ParameterError
from analysis.filters import frame_spans, window_sums
from analysis.jit import load_librosa
from analysis.music.spectra import (
    STFT_FRAMES,
    Progress,
    Tick,
    global_tempo,
    padded_slice,
    power_stretches,
    stage,
    within,
)
from analysis.music.symbolic import Key, MusicFeatures, key_from_chroma, mode_score, pair_roughness

if TYPE_CHECKING:
    import pretty_midi

SR = 22050
HOP = 512
N_FFT = 4096
FRAME_RATE = SR / HOP
#: Gain applied to FluidSynth's raw output by :func:`render_midi` (see module docstring). The
#: calibration below was fitted on pretty_midi's renders at gain 6.0; the one renderer
#: (:mod:`analysis.media.synth`) reads 0.25 dB louder on the bench's 40 renders (sd 0.25 dB),
#: so the gain is 6.0 * 10 ** (-0.25 / 20).
RENDER_GAIN = 5.83
_PITCHES = np.arange(36, 109)  # C2..C8

# Calibration (raw audio reading -> symbolic scale), fitted by bench/music_audio_agreement.py.
CAL_REGISTER = (-4.29, 1.0145)  # register = a + b * power-weighted mean pitch
CAL_VELOCITY = (158.6, 3.943)  # velocity = a + b * dBFS
CAL_CONSONANCE = (0.644, 0.351)  # consonance = a + b * raw pair consonance
CAL_DENSITY = (1.047, 0.7063)  # density = a + b * detected onsets/s (0 in silence)
CHROMA_PRESENT = 0.35  # a pitch class "sounds" in a frame above this share of the frame's maximum
SILENCE_DB = -60.0
#: Arc readers of :func:`analyze_audio`.
READERS = ("model", "features")
#: Bump when the hand-built cues above or their mapping (:func:`~analysis.music.symbolic.music_va`)
#: change: libraries then analyse their tracks again (:func:`reader_stamp`).
CUES_VERSION = 2  # 2: the tempo reads the onset envelope detrended (slow pieces read x2 and more)


def reader_stamp() -> str:
    """What a recording's arc depends on besides its bytes: the model's features and weights and
    the hand-built cues' version. A library stores it with each audio track
    (:meth:`matching.Library.stale`), so tracks an earlier reader analysed are found again."""
    from analysis.music.emotion import model_stamp

    return f"{model_stamp()}, cues v{CUES_VERSION}"


def _semitone_filterbank() -> np.ndarray:
    """Triangular (±1 semitone, log-frequency) weights from STFT bins to pitches, ``(73, 1 + N_FFT/2)``."""
    freqs = np.fft.rfftfreq(N_FFT, 1.0 / SR)
    with np.errstate(divide="ignore"):
        midi = 69 + 12 * np.log2(np.maximum(freqs, 1e-6) / 440.0)
    fb = np.clip(1.0 - np.abs(midi[None, :] - _PITCHES[:, None]), 0.0, None)
    return fb / np.maximum(fb.sum(1, keepdims=True), 1e-12)


_FB = _semitone_filterbank()


@dataclass(frozen=True, eq=False)
class AudioMusic:
    """What the audio estimator reads from one recording."""

    arc: EmotionArc
    features: MusicFeatures
    key: Key
    tempo: float
    loudness: float  # dBFS of the whole recording (RMS over non-silent frames)
    duration: float
    raw: Mapping[str, np.ndarray]  # uncalibrated per-window readings: register, db, consonance, onset_rate


def _checked(y: np.ndarray, *, hop: float, window: float, key_window: float, reader: str) -> np.ndarray:
    """``y`` as float32 mono, after checking the arguments of :func:`analyze_audio`."""
    for name, value in (("hop", hop), ("window", window), ("key_window", key_window)):
        if value <= 0:
            raise ParameterError(f"`{name}` must be positive (received {value})")
    if reader not in READERS:
        raise ParameterError(f"`reader` must be one of {', '.join(READERS)} (received {reader!r})")
    y = np.asarray(y, dtype=np.float32)
    if y.ndim != 1 or y.size == 0:
        raise ParameterError(f"`y` must be non-empty mono audio (received shape {y.shape})")
    return y


def band_power(y: np.ndarray, bands: np.ndarray, progress: Tick | None = None) -> np.ndarray:
    """``(T, len(bands))``: the power spectrogram of ``y`` (librosa's centred STFT, ``N_FFT`` / ``HOP``)
    summed into ``bands`` ``(n, bins)``, a stretch at a time (:func:`~analysis.music.spectra.power_stretches`)."""
    return np.concatenate([(bands @ power).T for power in power_stretches(y, N_FFT, HOP, progress=progress)])


def frame_power(y: np.ndarray, length: int) -> np.ndarray:
    """Mean square of ``y`` in centred ``length``-sample frames every ``HOP`` samples, as
    ``librosa.feature.rms(...) ** 2`` gives it, from one running sum (librosa frames the whole
    signal: ``length`` floats a frame, 0.2 GB for 10 minutes)."""
    if length % HOP:
        raise ValueError(f"`length` must be a whole number of hops (received {length})")
    y, pad = np.asarray(y, np.float32), length // 2
    size = len(y) + 2 * pad  # of the padded signal, cut a stretch of hops at a time (no padded copy of y)
    blocks = size // HOP
    per_block = np.concatenate([  # each hop's sum of squares, in float64
        np.square(padded_slice(y, pad, a * HOP, min(blocks, a + STFT_FRAMES) * HOP).reshape(-1, HOP),
                  dtype=np.float64).sum(axis=1)
        for a in range(0, blocks, STFT_FRAMES)
    ])
    sums = np.concatenate([[0.0], np.cumsum(per_block)])
    k, span = 1 + (size - length) // HOP, length // HOP
    return (sums[span : span + k] - sums[:k]) / length


#: Share of :func:`analyze_audio`'s time its hand-built cues take with the "model" reader (the model's
#: tagger takes most of the rest): 10 minutes of music took 9 s of 100 s here.
CUES_SHARE = 0.1


def analyze_audio(
    y: np.ndarray, sr: int, *, hop: float = 0.5, window: float = 3.0, key_window: float = 8.0, reader: str = "model",
    progress: Progress | None = None,
) -> AudioMusic:
    """Read mono audio ``y`` (any rate; resampled to 22.05 kHz) into features, arc, key, tempo and loudness.

    ``reader`` chooses the arc: "model" (default) takes arousal from
    :mod:`analysis.music.emotion` (the mean of its model trained on rendered music and of a
    tagger trained on real recordings) and valence from the features below, the pair that real
    recordings confirm best (``bench/music_truth.py``); "features" maps the features below
    through :func:`~analysis.music.symbolic.music_va` for both axes. ``progress`` hears
    ``(fraction done, stage)`` a stretch of the recording at a time.
    """
    librosa = load_librosa()

    y = _checked(y, hop=hop, window=window, key_window=key_window, reader=reader)
    if sr != SR:
        y = librosa.resample(y, orig_sr=sr, target_sr=SR)
    duration = y.size / SR
    cues_end = CUES_SHARE if reader == "model" else 1.0
    semis = band_power(y, _FB, stage(progress, 0.0, cues_end, "reading pitch and loudness"))  # (T, 73)
    frame_pow = frame_power(y, 2048)[: len(semis)]
    db = 10 * np.log10(np.maximum(frame_pow, 1e-12))
    sounding = (db > SILENCE_DB).astype(float)
    chroma = np.zeros((semis.shape[0], 12))
    for i, p in enumerate(_PITCHES):
        chroma[:, p % 12] += np.sqrt(semis[:, i])
    cmax = chroma.max(1, keepdims=True)
    chroma_n = np.divide(chroma, cmax, out=np.zeros_like(chroma), where=cmax > 0) * sounding[:, None]
    present = (chroma_n > CHROMA_PRESENT).astype(float)
    rough, pairs = pair_roughness(present)
    spow = semis.sum(1)
    pitch = np.divide(semis @ _PITCHES, spow, out=np.zeros_like(spow), where=spow > 0)
    # spectral flux on the semitone spectrum (dB) finds pitch changes of soft-attack instruments too
    env = librosa.onset.onset_strength(S=librosa.power_to_db(semis.T, ref=np.max, top_db=60), sr=SR, hop_length=HOP)
    onsets = librosa.onset.onset_detect(onset_envelope=env, sr=SR, hop_length=HOP, units="time", delta=0.1, wait=3)
    tempo = global_tempo(env, SR, HOP, detrend=True)  # the envelope's swings: slow soft-attack pieces too

    t = grid(duration, hop)
    n = len(semis)
    a, b = frame_spans(t - window / 2, t + window / 2, FRAME_RATE, n)
    ka, kb = frame_spans(t - key_window / 2, t + key_window / 2, FRAME_RATE, n)
    snd = window_sums(sounding, a, b)
    hist = window_sums(chroma_n, ka, kb)
    mode = np.where(hist.sum(1) > 0, mode_score(hist), 0.0)
    pr = window_sums(pairs, a, b)
    cons_raw = np.where(pr > 0, 1.0 - window_sums(rough, a, b) / np.maximum(pr, 1e-9), np.nan)
    reg_raw = np.where(snd > 0, window_sums(pitch * sounding, a, b) / np.maximum(snd, 1e-9), np.nan)
    pow_mean = np.where(snd > 0, window_sums(frame_pow * sounding, a, b) / np.maximum(snd, 1e-9), 0.0)
    db_win = 10 * np.log10(np.maximum(pow_mean, 1e-12))
    velocity = np.where(snd > 0, np.clip(CAL_VELOCITY[0] + CAL_VELOCITY[1] * db_win, 1.0, 127.0), 0.0)
    span = (b - a) / FRAME_RATE
    onset_rate = (np.searchsorted(onsets, b / FRAME_RATE) - np.searchsorted(onsets, a / FRAME_RATE)) / span
    feats = MusicFeatures(
        starts=a / FRAME_RATE,
        ends=b / FRAME_RATE,
        mode=mode,
        consonance=np.clip(CAL_CONSONANCE[0] + CAL_CONSONANCE[1] * cons_raw, 0.0, 1.0),
        tempo=np.full(t.shape, tempo),
        density=np.where(snd > 0, CAL_DENSITY[0] + CAL_DENSITY[1] * onset_rate, 0.0),
        velocity=velocity,
        register=CAL_REGISTER[0] + CAL_REGISTER[1] * reg_raw,
        articulation=np.full(t.shape, np.nan),
    )
    loud = frame_pow[sounding > 0].mean() if sounding.any() else 0.0
    return AudioMusic(
        arc=_arc(reader, y, t, feats, hop=hop, window=window, key_window=key_window,
                 progress=within(progress, cues_end, 1.0)),
        features=feats,
        key=key_from_chroma(chroma_n.sum(0)),
        tempo=tempo,
        loudness=float(10 * np.log10(max(loud, 1e-12))),
        duration=duration,
        raw={
            "register": reg_raw,
            "db": np.where(snd > 0, db_win, np.nan),
            "consonance": cons_raw,
            "onset_rate": onset_rate,
        },
    )


def _arc(
    reader: str, y: np.ndarray, t: np.ndarray, feats: MusicFeatures, *, hop: float, window: float, key_window: float,
    progress: Progress | None = None,
) -> EmotionArc:
    """The arc of 22.05 kHz audio ``y`` by ``reader`` (see :func:`analyze_audio`)."""
    v, ar = feats.va()
    if reader == "model":
        from analysis.music.emotion import music_emotion

        model = music_emotion(y, SR, hop=hop, window=window, key_window=key_window, progress=progress)
        if len(model.times) != len(t):
            raise ParameterError(f"the model's grid has {len(model.times)} windows, the features' {len(t)}")
        ar = model.arousal
    return EmotionArc.from_va(t, v, ar)


def render_midi(
    pm: pretty_midi.PrettyMIDI, *, sr: int = SR, soundfont: str | Path | None = None, limited: bool = False
) -> np.ndarray:
    """FluidSynth render at the level convention the audio estimator is calibrated on (float32 mono).

    :func:`analysis.media.synth.render` (1 s release tail) times :data:`RENDER_GAIN`, clipped
    to [-1, 1]. Its *left* channel, as pretty_midi's render that the calibration was fitted
    on: FluidR3's piano spreads low notes left, and the mean of both channels reads 1.7 dB
    quieter and higher in register (the bench's valence agreement drops from r 0.77 to 0.75).

    ``limited``: for audio people hear (the demo library), its loudest moments are bent under -1 dBTP
    (:func:`analysis.media.loudness.limit_true_peak`) instead of clipped: at this gain a loud brass chorale
    had 0.18 % of its samples flat at full scale, and its Vorbis file swung past it by 0.8 dB.
    """
    from analysis.media.synth import render

    y = render(pm.instruments, fs=sr, soundfont=soundfont)[:, 0] * RENDER_GAIN
    if limited:
        from analysis.media.loudness import limit_true_peak

        return limit_true_peak(y.astype(np.float32))
    return np.clip(y, -1.0, 1.0).astype(np.float32)
