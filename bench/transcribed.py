"""A candidate music reader for the bench: the notes heard, from the Basic Pitch transcription network.

Tried for issue 11 and not shipped (model card of ``music_emotion.npz``): the MIDI estimator's
features read from a transcription rank other games' recordings no better than the hand-built
audio features. ``bench/music_truth.py --candidates transcribed`` runs it.

Basic Pitch (Spotify, ICASSP 2022; Apache-2.0) is a small convolutional network that turns
audio into three posteriorgrams at 22.05 kHz / 256 = 86.1 frames per second over the 88 piano
keys: the probability that a note *sounds* in each frame, that one *starts* there, and a
finer pitch contour. Its wheel ships the network as ONNX (230 kB); this module reads that
file with onnxruntime (already here for the speech detector) and never imports the
``basic_pitch`` package, whose declared dependencies pull TensorFlow. Install it with
``pip install --no-deps basic-pitch`` (the bench's own need; the product does not use it).

The network reads 2 s windows (43,844 samples); consecutive windows overlap by 30 frames and
each keeps its middle 142 frames, as the package's own inference does. Those frames span 0.5 %
more than the 36,164-sample hop between windows, so the stitched frames run late by about 0.3 s a
minute: negligible for the 3 s windows read here.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from analysis.caches import cached
from analysis.errors import ModelError
from analysis.filters import frame_spans, window_sums
from analysis.music.symbolic import MusicFeatures, mode_score, pair_roughness

SR = 22050
FRAME_HOP = 256
FRAME_RATE = SR / FRAME_HOP
WINDOW = 2 * SR - FRAME_HOP  # samples the network reads at once
OVERLAP = 30  # frames shared by consecutive windows; half of them trimmed from each side
LOWEST_KEY = 21  # MIDI number of the posteriorgrams' first column (A0)
KEYS = 88
_MODEL = "saved_models/icassp_2022/nmp.onnx"
_BATCH = 8
NOTE_THRESHOLD = 0.3  # a key sounds in a frame at this note probability (Basic Pitch's default)
ONSET_THRESHOLD = 0.5  # and starts at this onset probability (its default)


@dataclass(frozen=True, eq=False)
class Posteriorgrams:
    """Per-frame probabilities over the 88 keys (frames at :data:`FRAME_RATE`)."""

    note: np.ndarray  # (T, 88) a note sounds
    onset: np.ndarray  # (T, 88) a note starts

    @property
    def duration(self) -> float:
        return self.note.shape[0] / FRAME_RATE


def model_path() -> Path:
    """The ONNX file inside the installed ``basic-pitch`` wheel (:class:`ModelError` without it)."""
    # find_spec locates the package without running its __init__, which probes for TensorFlow and logs
    spec = importlib.util.find_spec("basic_pitch")
    if spec is None or not spec.submodule_search_locations:
        raise ModelError("the music transcriber needs `pip install --no-deps basic-pitch`")
    path = Path(next(iter(spec.submodule_search_locations))) / _MODEL
    if not path.is_file():
        raise ModelError(f"basic-pitch is installed but its network is missing: {path}")
    return path


@cached("basic_pitch_session", maxsize=1)
def _session():
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(str(model_path()), sess_options=opts, providers=["CPUExecutionProvider"])
    outputs = {o.name: o.shape[-1] for o in sess.get_outputs()}
    # the two 88-wide outputs are, in the exported graph's order, note then onset (checked on a rendered
    # scale: the first stays high through each held note, the second only at its start)
    named = sorted((n for n, width in outputs.items() if width == KEYS), key=_output_index)
    if len(named) != 2:
        raise ModelError(f"unexpected transcriber outputs: {outputs}")
    return sess, sess.get_inputs()[0].name, named


def _output_index(name: str) -> int:
    return int(name.rsplit(":", 1)[-1])


def posteriorgrams(y: np.ndarray, sr: int = SR) -> Posteriorgrams:
    """Note and onset probabilities of mono audio ``y`` (resampled to 22.05 kHz if needed)."""
    y = np.asarray(y, dtype=np.float32).reshape(-1)
    if sr != SR:
        import librosa

        y = librosa.resample(y, orig_sr=sr, target_sr=SR).astype(np.float32)
    sess, input_name, (note_name, onset_name) = _session()
    half = OVERLAP // 2
    step = WINDOW - OVERLAP * FRAME_HOP
    padded = np.concatenate([np.zeros(half * FRAME_HOP, np.float32), y])
    starts = np.arange(0, max(len(padded), 1), step)
    frames = int(np.ceil(len(y) / FRAME_HOP)) if len(y) else 0
    notes, onsets = [], []
    for i in range(0, len(starts), _BATCH):
        batch = np.zeros((len(starts[i : i + _BATCH]), WINDOW, 1), np.float32)
        for j, s in enumerate(starts[i : i + _BATCH]):
            chunk = padded[s : s + WINDOW]
            batch[j, : len(chunk), 0] = chunk
        onset, note = sess.run([onset_name, note_name], {input_name: batch})
        onsets.extend(onset[:, half:-half])
        notes.extend(note[:, half:-half])
    note = np.concatenate(notes)[:frames] if notes else np.zeros((0, KEYS), np.float32)
    onset = np.concatenate(onsets)[:frames] if onsets else np.zeros((0, KEYS), np.float32)
    return Posteriorgrams(note=note, onset=onset)


def onset_times(onset: np.ndarray, *, threshold: float = ONSET_THRESHOLD, merge: float = 0.02) -> np.ndarray:
    """Distinct note-start times (s): peaks in time of each key's onset probability above
    ``threshold``, merged across keys within ``merge`` seconds (as the MIDI estimator counts them)."""
    if onset.shape[0] < 3:
        return np.zeros(0)
    mid = onset[1:-1]
    peak = (mid >= threshold) & (mid >= onset[:-2]) & (mid > onset[2:])
    frames = np.unique(np.nonzero(peak)[0] + 1)
    times = frames / FRAME_RATE
    if times.size == 0:
        return times
    keep = np.concatenate([[True], np.diff(times) > merge])
    return times[keep]


def window_features(
    grams: Posteriorgrams,
    starts: np.ndarray,
    ends: np.ndarray,
    *,
    key_window: float,
    tempo: np.ndarray,
    velocity: np.ndarray,
) -> MusicFeatures:
    """The MIDI estimator's features of each window ``[starts, ends)`` read from the notes heard.

    Mode (key profile over ``key_window`` s), consonance (pair roughness of the pitch classes
    sounding together), register (mean sounding pitch) and density (note starts per second)
    are computed as :mod:`analysis.music.symbolic` computes them from MIDI; tempo and velocity
    (loudness) come from the caller's audio reading; articulation is not read (NaN).
    """
    active = grams.note >= NOTE_THRESHOLD  # (T, 88)
    n = active.shape[0]
    pcs = np.zeros((n, 12))
    for pc in range(12):
        pcs[:, pc] = active[:, (pc - LOWEST_KEY) % 12 :: 12].any(1)
    pitches = np.arange(LOWEST_KEY, LOWEST_KEY + KEYS)
    count, pitch_sum = active.sum(1).astype(float), active.astype(float) @ pitches
    rough, pairs = pair_roughness(pcs)
    a, b = frame_spans(starts, ends, FRAME_RATE, n)
    mid = (np.asarray(starts) + np.asarray(ends)) / 2
    key_lo, key_hi = np.minimum(starts, mid - key_window / 2), np.maximum(ends, mid + key_window / 2)
    ka, kb = frame_spans(key_lo, key_hi, FRAME_RATE, n)
    win = lambda x, lo, hi: window_sums(x, lo, np.minimum(hi, n))  # noqa: E731
    hist = win(pcs, ka, kb)
    mode = np.where(hist.sum(1) > 0, mode_score(hist), 0.0)
    pr = win(pairs, a, b)
    consonance = np.where(pr > 0, 1.0 - win(rough, a, b) / np.maximum(pr, 1e-9), np.nan)
    cnt = win(count, a, b)
    register = np.where(cnt > 0, win(pitch_sum, a, b) / np.maximum(cnt, 1e-9), np.nan)
    onsets = onset_times(grams.onset)
    span = (b - a) / FRAME_RATE
    density = (np.searchsorted(onsets, b / FRAME_RATE) - np.searchsorted(onsets, a / FRAME_RATE)) / span
    return MusicFeatures(
        starts=np.asarray(starts, float),
        ends=np.asarray(ends, float),
        mode=mode,
        consonance=consonance,
        tempo=np.asarray(tempo, float),
        density=density,
        velocity=np.asarray(velocity, float),
        register=register,
        articulation=np.full(len(a), np.nan),
    )
