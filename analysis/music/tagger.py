"""A music auto-tagger trained on real recordings (musicnn, MagnaTagATune), run in NumPy.

``musicnn`` 0.1.0 (Pons and Serra, 2019; ISC licence, Music Technology Group, Universitat
Pompeu Fabra; notice in ``checkpoints/MUSICNN-LICENSE.md``) ships its trained TensorFlow
checkpoints inside the wheel. ``scripts/musicnn_weights.py`` reads the MagnaTagATune model's
tensors straight from that wheel (no TensorFlow) into ``checkpoints/musicnn_mtt.npz``; this
module is its forward pass, which matches the TensorFlow graph to 1e-6 on the tag
probabilities of a 3 s patch (``scripts/musicnn_weights.py --check`` where TensorFlow is
installed).

The network, on a 96-band log-compressed mel spectrogram at 16 kHz (hop 256, 62.5 frames/s):

* front end: timbral filters (7 frames x 38 and x 67 bands) and temporal filters (128, 64
  and 32 frames x 1 band), each max-pooled over frequency: 561 features per frame;
* mid end: three 7-frame convolutions of 64 channels with residual connections;
* back end: max and mean over the window's frames, two dense layers, 50 tag logits.

The front and mid ends are convolutions, so they run once over the whole recording and each
analysis window only pools its own frames (the published extractor cuts 3 s patches; on a
rendered chorale the two agree to r 0.997 on the tag probabilities, the patch edges being
the only difference).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from analysis.caches import cached
from analysis.errors import ParameterError
from analysis.filters import frame_spans
from analysis.jit import load_librosa
from analysis.music.spectra import Tick, resampled_blocks, resampled_length, stream_power_stretches, within
from analysis.music.weights import read_weights

SR = 16000
HOP = 256
N_FFT = 512
N_MELS = 96
FRAME_RATE = SR / HOP
CHECKPOINT = Path(__file__).resolve().parents[2] / "checkpoints" / "musicnn_mtt.npz"
TAGS = (
    "guitar", "classical", "slow", "techno", "strings", "drums", "electronic", "rock", "fast", "piano", "ambient",
    "beat", "violin", "vocal", "synth", "female", "indian", "opera", "male", "singing", "vocals", "no vocals",
    "harpsichord", "loud", "quiet", "flute", "woman", "male vocal", "no vocal", "pop", "soft", "sitar", "solo", "man",
    "classic", "choir", "voice", "new age", "dance", "male voice", "female vocal", "beats", "harp", "cello",
    "no voice", "weird", "country", "metal", "female voice", "choral",
)
#: Front-end filters: (kernel name, batch-norm name, frames[, bands]); "same" padding in time.
TIMBRAL = (("conv0", "bn1", 7, 38), ("conv1", "bn2", 7, 67))
TEMPORAL = (("conv2", "bn3", 128), ("conv3", "bn4", 64), ("conv4", "bn5", 32))
MIDEND = (("conv5", "bn6"), ("conv6", "bn7"), ("conv7", "bn8"))
CHUNK = 256  # frames per front-end block (bounds the working memory to ~40 MB)
#: Frames of windows tagged at once (about 4 minutes): the per-frame features take 3 KB a frame.
SPAN = 1 << 14
#: Share of :meth:`Tagger.frames`' time its front end takes (for progress reports only).
FRONT_SHARE = 0.8
#: Frames either side a stretch's features depend on: the widest kernel's reach (the 128-frame temporal
#: one, 64) and the three 7-frame mid-end layers' (9), rounded up. Computed with it, a stretch's features
#: equal the whole track's.
HALO = 80
#: Tags that name high and low arousal, chosen by their names before any figure was measured
#: (``checkpoints/README.md``); :func:`arousal_contrast` is the gap between their mean logits.
AROUSAL_UP = ("fast", "loud", "beat", "beats", "drums", "techno", "rock", "metal", "dance", "electronic")
AROUSAL_DOWN = ("slow", "quiet", "soft", "ambient", "new age")


def _same(x: np.ndarray, frames: int) -> np.ndarray:
    """``x`` zero-padded in time as TensorFlow's "same" does for a ``frames``-long kernel (the
    extra frame of an even kernel goes after)."""
    before = (frames - 1) // 2
    return np.pad(x, ((before, frames - 1 - before), (0, 0)))


def logmel(y: np.ndarray, sr: int = SR) -> np.ndarray:
    """``(T, 96)`` log10(1 + 10^4 mel power) of mono audio ``y`` at rate ``sr`` taken to 16 kHz, as the
    network was trained on.

    Librosa's resampling and centred mel spectrogram, both a stretch at a time
    (:func:`~analysis.music.spectra.resampled_blocks`, :func:`~analysis.music.spectra.stream_power_stretches`):
    the 16 kHz copy and the STFT of a whole track took 0.04 and 0.1 GB for 10 minutes."""
    librosa = load_librosa()

    y = np.asarray(y, np.float32)
    length = resampled_length(len(y), sr, SR)
    out = np.empty((1 + length // HOP, N_MELS), np.float32)  # the centred STFT's frames
    at = 0
    for power in stream_power_stretches(resampled_blocks(y, sr, SR), length, N_FFT, HOP):
        mel = librosa.feature.melspectrogram(S=power, sr=SR, n_fft=N_FFT, n_mels=N_MELS).T
        out[at : at + len(mel)] = np.log10(1.0 + 10000.0 * mel.astype(np.float32))
        at += len(mel)
    return out


@dataclass(frozen=True, eq=False)
class Tagger:
    """The network's tensors: kernels ``conv*`` and biases ``conv*_b``, batch norms as
    per-channel ``bn*_scale`` / ``bn*_shift``, dense layers ``dense*`` / ``dense*_b``."""

    w: dict[str, np.ndarray]

    def _bn(self, name: str, x: np.ndarray) -> np.ndarray:
        return x * self.w[f"{name}_scale"] + self.w[f"{name}_shift"]

    def _bn_max(self, name: str, x: np.ndarray) -> np.ndarray:
        """``_bn(name, x).max(1)`` for ``x`` ``(T, F, C)``, with the batch norm applied after the
        pooling: max of a per-channel affine map is the map of the max (of the min where the
        scale is negative), which spares the affine map over every band."""
        scale = self.w[f"{name}_scale"]
        return self._bn(name, np.where(scale >= 0, x.max(1), x.min(1)))

    def _front(self, x: np.ndarray, progress: Tick) -> np.ndarray:
        """Normalised spectrogram ``(T, 96)`` -> front-end features ``(T, 561)`` (``progress`` hears the share
        of its filters done)."""
        t = len(x)
        out = []
        for conv, bn, kt, kf in TIMBRAL:
            k, b = self.w[conv], self.w[f"{conv}_b"]  # (kt, kf, C)
            # every (kt x kf) patch as one row, so the convolution is one matrix product per block
            patches = np.lib.stride_tricks.sliding_window_view(_same(x, kt), (kt, kf), axis=(0, 1))  # (T, F', kt, kf)
            kernel = k.reshape(kt * kf, -1)
            feats = np.empty((t, k.shape[2]), np.float32)
            for s in range(0, t, CHUNK):
                e = min(s + CHUNK, t)
                acc = (patches[s:e].reshape(-1, kt * kf) @ kernel).reshape(e - s, patches.shape[1], -1) + b
                feats[s:e] = self._bn_max(bn, np.maximum(acc, 0))
            out.append(feats)
            progress(len(out) / (len(TIMBRAL) + len(TEMPORAL)))
        for conv, bn, kt in TEMPORAL:
            k, b = self.w[conv], self.w[f"{conv}_b"]  # (kt, C)
            frames = np.lib.stride_tricks.sliding_window_view(_same(x, kt), kt, axis=0)  # (T, 96, kt)
            feats = np.empty((t, k.shape[1]), np.float32)
            for s in range(0, t, CHUNK):
                e = min(s + CHUNK, t)
                feats[s:e] = self._bn_max(bn, np.maximum(frames[s:e] @ k + b, 0))
            out.append(feats)
            progress(len(out) / (len(TIMBRAL) + len(TEMPORAL)))
        return np.concatenate(out, axis=1)

    def frames(self, spec: np.ndarray, progress: Tick | None = None) -> np.ndarray:
        """Log-mel ``(T, 96)`` -> per-frame features ``(T, 753)``: front end and the three mid-end layers
        (``progress`` hears the share done, after each filter bank and layer)."""
        x = self._bn("bn0", np.asarray(spec, np.float32))
        h = self._front(x, within(progress, 0.0, FRONT_SHARE))
        mid = within(progress, FRONT_SHARE, 1.0)
        layers = [h]
        for i, (conv, bn) in enumerate(MIDEND):
            k = self.w[conv]  # (7, C_in, C_out)
            pad = _same(h, len(k))
            y = self._bn(bn, np.maximum(sum(pad[j:j + len(h)] @ k[j] for j in range(len(k))) + self.w[f"{conv}_b"], 0))
            h = y if i == 0 else y + h
            layers.append(h)
            mid((i + 1) / len(MIDEND))
        return np.concatenate(layers, axis=1)

    def logits(self, frames: np.ndarray, spans: Sequence[tuple[int, int]]) -> np.ndarray:
        """Tag logits ``(n, 50)`` of the frame ranges ``spans`` (each pooled by max and mean)."""
        pooled = np.stack([np.stack([frames[a:b].max(0), frames[a:b].mean(0)], 1).reshape(-1) for a, b in spans])
        h = self._bn("bn10", np.maximum(self._bn("bn9", pooled) @ self.w["dense0"] + self.w["dense0_b"], 0))
        return h @ self.w["dense1"] + self.w["dense1_b"]


def arousal_contrast(logits: np.ndarray) -> np.ndarray:
    """Mean logit of :data:`AROUSAL_UP` minus that of :data:`AROUSAL_DOWN`, per row of ``(n, 50)`` logits.

    Uncalibrated: :mod:`analysis.music.emotion` maps it onto the symbolic arousal scale."""
    up = [TAGS.index(t) for t in AROUSAL_UP]
    down = [TAGS.index(t) for t in AROUSAL_DOWN]
    return logits[:, up].mean(1) - logits[:, down].mean(1)


@cached("musicnn_tagger", maxsize=1)
def load_tagger(path: str = str(CHECKPOINT)) -> Tagger:
    """The tagger's weights (loaded once per process)."""
    return Tagger(read_weights(path, "tags", TAGS, what="the music tagger's weights",
                               remedy="python scripts/musicnn_weights.py"))


def window_logits(
    y: np.ndarray, sr: int, centres: np.ndarray, *, window: float = 3.0, checkpoint: str | Path | None = None,
    progress: Tick | None = None,
) -> np.ndarray:
    """Tag logits ``(len(centres), 50)`` of mono audio ``y`` (rate ``sr``) in ``window``-second windows;
    ``progress`` hears the share of windows tagged, a stretch of them at a time."""
    y = np.asarray(y, np.float32)
    if y.ndim != 1 or y.size == 0:
        raise ParameterError(f"`y` must be non-empty mono audio (received shape {y.shape})")
    if window <= 0:
        raise ParameterError(f"`window` must be positive (received {window})")
    tagger = load_tagger(str(checkpoint or CHECKPOINT))
    spec = logmel(y, sr)
    c = np.asarray(centres, float)
    a, b = frame_spans(c - window / 2, c + window / 2, FRAME_RATE, len(spec))
    out = np.empty((len(c), len(TAGS)), np.float32)
    i = 0
    while i < len(c):  # windows in stretches of SPAN frames: the features of a whole track took 5.5 GB an hour
        lo, j = int(a[i]), i + 1
        while j < len(c) and b[j] - lo <= SPAN and a[j] >= lo:
            j += 1
        hi = int(b[i:j].max())
        first, last = max(0, lo - HALO), min(len(spec), hi + HALO)  # context the convolutions reach into
        feats = tagger.frames(spec[first:last], within(progress, i / len(c), j / len(c)))
        out[i:j] = tagger.logits(feats[lo - first : hi - first],
                                 [(int(s) - lo, int(e) - lo) for s, e in zip(a[i:j], b[i:j], strict=True)])
        i = j
    return out
