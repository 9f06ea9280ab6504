"""Valence/arousal of recorded music by a small model trained on rendered, symbolically labelled music.

:func:`music_emotion` reads mono audio into per-window valence/arousal (an
:class:`~analysis.arc.EmotionArc` on the grid the rest of the analysis uses). Per window
(``window`` seconds, centred every ``hop``) it summarises:

* a 40-band log-mel spectrum up to 8 kHz (absolute dB, so level counts): mean and standard deviation;
* onset strength (mean, spread) and detected onsets per second;
* RMS level (dBFS mean and spread), spectral centroid and flatness below 8 kHz (no spectral
  contrast: a lossy codec moves its valleys by several within-piece standard deviations);
* over a wider ``key_window``, the best major and best minor Krumhansl-Kessler correlation of
  the chroma and their difference (mode);
* the global beat tempo.

A model trained by :mod:`analysis.music.train_emotion` maps those features to the
labels the symbolic estimator (:func:`analysis.music.symbolic.midi_arc`) gives the
music21 corpus pieces they were rendered from (several General MIDI programs,
mode-flipped copies, tempo/velocity/transposition varied, drums added to some, with room
reverb, EQ tilt, noise and gain augmentation so it transfers to recordings). The weights
(``checkpoints/music_emotion.npz``: feature standardisation, weights of the valence and
arousal heads, and the output calibration fitted on the training data) load once per
process; :mod:`numpy` alone runs it.

Arousal is the mean of that model's and of a tagger trained on real recordings
(:mod:`analysis.music.tagger`, musicnn on MagnaTagATune): the gap between its high- and
low-arousal tag logits, mapped onto the symbolic scale by a line fitted on the same rendered
training windows (``tag_arousal`` in the checkpoint). The model alone agrees better with the
symbolic labels of rendered pieces; the tagger ranks real game music better; their mean keeps
most of both (``checkpoints/README.md``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from analysis.arc import EmotionArc, grid
from analysis.caches import cached
from analysis.errors import ModelError, ParameterError
from analysis.filters import frame_spans, streamed_window_sums, window_sums
from analysis.jit import load_librosa
from analysis.music.spectra import STFT_FRAMES, Progress, Tick, global_tempo, power_stretches, stage
from analysis.music.symbolic import key_correlations
from analysis.music.tagger import CHECKPOINT as TAGGER_CHECKPOINT
from analysis.music.tagger import arousal_contrast, window_logits
from analysis.music.weights import read_weights

SR = 22050
HOP = 512
N_FFT = 2048
N_MELS = 40
FRAME_RATE = SR / HOP
MEL_FLOOR = 1e-7  # -70 dB
#: Bumped whenever the features change (training caches are keyed by it). 4: the tagger's
#: arousal contrast joins the window features of the training data.
FEATURE_VERSION = 4
FMAX = 8000.0  # Hz
CHECKPOINT = Path(__file__).resolve().parents[2] / "checkpoints" / "music_emotion.npz"
#: Share of :func:`music_emotion`'s time its window features take; the tagger takes the rest (10 minutes
#: of music: 4 s and 80 s here).
TIMBRE_SHARE = 0.05

#: Names of the window features, in order (the model's input).
FEATURE_NAMES = (
    *(f"mel_mean_{i}" for i in range(N_MELS)), *(f"mel_std_{i}" for i in range(N_MELS)),
    "onset_mean", "onset_std", "onset_rate", "db_mean", "db_std", "centroid", "flatness",
    "key_major", "key_minor", "mode", "tempo",
)


def _spectral_frames(y: np.ndarray, progress: Tick | None = None) -> tuple[np.ndarray, ...]:
    """Per frame of librosa's centred STFT (``N_FFT`` / ``HOP``): mel power ``(N_MELS, T)``, RMS, centroid
    and flatness below ``FMAX`` ``(T,)``, chroma ``(T, 12)``. Each reads one frame's spectrum, so the
    spectrogram is made a stretch at a time (:func:`~analysis.music.spectra.power_stretches`)."""
    librosa = load_librosa()
    freqs = np.fft.rfftfreq(N_FFT, 1.0 / SR)
    parts: list[tuple[np.ndarray, ...]] = []
    for power in power_stretches(y, N_FFT, HOP, progress=progress):  # (bins, frames)
        # nothing above FMAX: lossy codecs low-pass there (an mp3 moves the 9-11 kHz bands by >10 sd)
        low = np.sqrt(power[freqs <= FMAX])
        parts.append((
            librosa.feature.melspectrogram(S=power, sr=SR, n_mels=N_MELS, fmax=FMAX),
            librosa.feature.rms(S=np.sqrt(power), frame_length=N_FFT)[0],
            librosa.feature.spectral_centroid(S=low, sr=SR, freq=freqs[freqs <= FMAX])[0],
            librosa.feature.spectral_flatness(S=low)[0],
            librosa.feature.chroma_stft(S=power, sr=SR, tuning=0.0).T,
        ))
    mels, rms, centroid, flat, chroma = zip(*parts, strict=True)
    return (np.concatenate(mels, axis=1), *(np.concatenate(x) for x in (rms, centroid, flat, chroma)))


def _frame_features(
    y: np.ndarray, progress: Tick | None = None
) -> tuple[Iterator[np.ndarray], int, np.ndarray, np.ndarray, float]:
    """Frame-wise features ``(T, F)`` a stretch of frames at a time (:func:`_frame_rows`), their count ``T``,
    chroma ``(T, 12)``, onset times and tempo."""
    librosa = load_librosa()

    mel, rms, centroid, flat, chroma = _spectral_frames(y, progress)
    env = librosa.onset.onset_strength(S=librosa.power_to_db(mel, ref=np.max, top_db=80), sr=SR, hop_length=HOP)
    onsets = librosa.onset.onset_detect(onset_envelope=env, sr=SR, hop_length=HOP, units="time")
    tempo = global_tempo(env, SR, HOP)
    return _frame_rows(mel, env, rms, centroid, flat), mel.shape[1], chroma, onsets, tempo


def _frame_rows(
    mel: np.ndarray, env: np.ndarray, rms: np.ndarray, centroid: np.ndarray, flat: np.ndarray
) -> Iterator[np.ndarray]:
    """The window features' per-frame terms ``(k, F)``, :data:`STFT_FRAMES` frames at a time: made whole, with
    their prefix sums, they took 0.9 bytes per byte of audio (20 minutes: 110 MB at the peak, 61 MB so)."""
    n = mel.shape[1]
    for s in range(0, n, STFT_FRAMES):
        e = min(n, s + STFT_FRAMES)
        # absolute dB (level is an arousal cue), floored at -70 dB: below that, bands hold codec and
        # dither noise, which an ogg/mp3 encoder changes by tens of dB and a model must not read
        logmel = 10 * np.log10(np.maximum(mel[:, s:e], MEL_FLOOR))
        db = 20 * np.log10(np.maximum(rms[s:e], 1e-5))
        yield np.column_stack([
            logmel.T, logmel.T ** 2, env[s:e], env[s:e] ** 2, db, db ** 2,
            np.log2(np.maximum(centroid[s:e], 50.0) / 1000.0), np.log10(np.maximum(flat[s:e], 1e-3)),
        ])


def window_features(
    y: np.ndarray, sr: int, *, hop: float = 0.5, window: float = 3.0, key_window: float = 8.0,
    progress: Tick | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Window centres ``grid(duration, hop)`` and the ``(n, len(FEATURE_NAMES))`` feature matrix (``progress``
    hears the share of the recording read)."""
    librosa = load_librosa()

    for name, value in (("hop", hop), ("window", window), ("key_window", key_window)):
        if value <= 0:
            raise ParameterError(f"`{name}` must be positive (received {value})")
    y = np.asarray(y, dtype=np.float32)
    if y.ndim != 1 or y.size == 0:
        raise ParameterError(f"`y` must be non-empty mono audio (received shape {y.shape})")
    if sr != SR:
        y = librosa.resample(y, orig_sr=sr, target_sr=SR)
    if y.size < N_FFT:
        y = np.pad(y, (0, N_FFT - y.size))
    rows, n, chroma, onsets, tempo = _frame_features(y, progress)
    t = grid(y.size / SR, hop)
    a, b = frame_spans(t - window / 2, t + window / 2, FRAME_RATE, n)
    cnt = (b - a)[:, None].astype(float)
    mean = streamed_window_sums(rows, a, b) / cnt
    m = N_MELS
    mel_mean, mel_sq = mean[:, :m], mean[:, m:2 * m]
    env_mean, env_sq, db_mean, db_sq = (mean[:, 2 * m + i] for i in range(4))
    rest = mean[:, 2 * m + 4:]  # centroid, flatness
    sd = lambda m1, m2: np.sqrt(np.maximum(m2 - m1 ** 2, 0.0))  # noqa: E731
    span = (b - a) / FRAME_RATE
    rate = (np.searchsorted(onsets, b / FRAME_RATE) - np.searchsorted(onsets, a / FRAME_RATE)) / span
    ka, kb = frame_spans(t - key_window / 2, t + key_window / 2, FRAME_RATE, n)
    r = key_correlations(window_sums(chroma, ka, kb))  # (n, 24)
    major, minor = r[:, :12].max(1), r[:, 12:].max(1)
    x = np.column_stack([
        mel_mean, sd(mel_mean, mel_sq), env_mean, sd(env_mean, env_sq), rate, db_mean, sd(db_mean, db_sq), rest,
        major, minor, major - minor, np.full(len(t), np.log2(max(tempo, 30.0) / 100.0)),
    ])
    return t, x.astype(np.float64)


@dataclass(frozen=True, eq=False)
class EmotionModel:
    """Standardisation, a one-hidden-layer network per axis (or linear when ``hidden`` is empty),
    and the output calibration ``scale * raw + offset`` (fitted on the training data)."""

    mean: np.ndarray  # (F,)
    std: np.ndarray  # (F,)
    w1: np.ndarray  # (F, H) or (F, 0)
    b1: np.ndarray  # (H,)
    w2: np.ndarray  # (H + F, 2): hidden units then a linear skip from the inputs
    b2: np.ndarray  # (2,)
    scale: np.ndarray  # (2,)
    offset: np.ndarray  # (2,)
    #: Standardised features are clipped to +-this (``train_emotion --z-clip``; the shipped
    #: weights have none): a linear model extrapolates an outlying feature without bound.
    z_clip: float = np.inf
    #: ``(scale, offset)`` mapping the tagger's :func:`~analysis.music.tagger.arousal_contrast`
    #: onto the arousal scale, or ``None``: arousal is then the model's alone.
    tag_arousal: np.ndarray | None = None

    def predict(self, x: np.ndarray, tags: np.ndarray | None = None) -> np.ndarray:
        """``(n, F)`` features -> ``(n, 2)`` valence, arousal in [-1, 1].

        With the tagger's arousal contrast ``tags`` ``(n,)`` (and a checkpoint that calibrates
        it), arousal is the mean of the model's and the tagger's."""
        z = np.clip((np.asarray(x, float) - self.mean) / self.std, -self.z_clip, self.z_clip)
        h = np.tanh(z @ self.w1 + self.b1) if self.w1.shape[1] else np.zeros((len(z), 0))
        raw = np.concatenate([h, z], axis=1) @ self.w2 + self.b2
        va = np.clip(raw * self.scale + self.offset, -1.0, 1.0)
        if tags is not None and self.tag_arousal is not None:
            va[:, 1] = 0.5 * (va[:, 1] + self.tag_reading(tags))
        return va

    def tag_reading(self, tags: np.ndarray) -> np.ndarray:
        """The tagger's arousal: its contrast ``tags`` through the calibration line, in [-1, 1]."""
        if self.tag_arousal is None:
            raise ModelError("this music emotion checkpoint has no calibration for the tagger "
                             "(python -m analysis.music.train_emotion)")
        scale, offset = self.tag_arousal
        return np.clip(scale * np.asarray(tags, float) + offset, -1.0, 1.0)

    def save(self, path: Path, **meta: str) -> None:
        names = ("mean", "std", "w1", "b1", "w2", "b2", "scale", "offset", "z_clip", "tag_arousal")
        arrays = {k: getattr(self, k) for k in names if getattr(self, k) is not None}
        extra = {f"meta_{k}": np.array(v) for k, v in meta.items()}
        np.savez_compressed(path, features=np.array(FEATURE_NAMES), **arrays, **extra)


def model_stamp(checkpoint: str | Path | None = None) -> str:
    """This model's feature version and hashes of its and the tagger's weights (part of
    :func:`analysis.music.audio.reader_stamp`)."""
    weights, tagger = _hash_of(str(checkpoint or CHECKPOINT)), _hash_of(str(TAGGER_CHECKPOINT))[:8]
    return f"features v{FEATURE_VERSION}, weights {weights}, tagger {tagger}"


@cached("music_emotion_stamp", maxsize=4)
def _hash_of(path: str) -> str:
    """Hashed once per process and path, as the weights are read once: a library stores the
    stamp with every track it adds, and it describes the weights this process reads with."""
    p = Path(path)
    return hashlib.sha256(p.read_bytes()).hexdigest()[:16] if p.is_file() else "none"


@cached("music_emotion_model", maxsize=2)
def load_model(path: str = str(CHECKPOINT)) -> EmotionModel:
    """The trained reader (loaded once per process and path)."""
    data = read_weights(path, "features", FEATURE_NAMES, what="the music emotion checkpoint",
                        remedy="python -m analysis.music.train_emotion")
    clip = float(data["z_clip"]) if "z_clip" in data else np.inf  # the first version has none
    tags = data.get("tag_arousal")  # nor had versions before the tagger
    return EmotionModel(**{k: data[k] for k in ("mean", "std", "w1", "b1", "w2", "b2", "scale", "offset")},
                        z_clip=clip, tag_arousal=tags)


def music_emotion(
    y: np.ndarray, sr: int, *, hop: float = 0.5, window: float = 3.0, key_window: float = 8.0,
    checkpoint: str | Path | None = None, tags: bool = True, progress: Progress | None = None,
) -> EmotionArc:
    """Per-window valence/arousal of mono audio ``y`` at rate ``sr`` on ``grid(duration, hop)``.

    Valence is the model's; arousal the mean of the model's and the tagger's (the model's alone
    with ``tags=False``, or when the checkpoint does not calibrate the tagger). Track analysis
    (:func:`analysis.music.audio.analyze_audio`, reader "model") keeps this arousal and takes
    valence from its hand-built cues, which rank real recordings better (``checkpoints/README.md``).
    Meant for music: callers gate out speech and silence first. ``progress`` hears ``(fraction done,
    stage)`` a stretch of the recording at a time.
    """
    model = load_model(str(checkpoint or CHECKPOINT))
    tagged = tags and model.tag_arousal is not None
    timbre = TIMBRE_SHARE if tagged else 1.0
    t, x = window_features(y, sr, hop=hop, window=window, key_window=key_window,
                           progress=stage(progress, 0.0, timbre, "reading timbre"))
    contrast = None
    if tagged:
        contrast = arousal_contrast(window_logits(y, sr, t, window=window,
                                                  progress=stage(progress, timbre, 1.0, "tagging")))
    va = model.predict(x, contrast)
    return EmotionArc.from_va(t, va[:, 0], va[:, 1])
