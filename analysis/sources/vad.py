"""Voice activity of a clip's audio, found once per clip and shared by the sources that need it.

The detector is Silero VAD, the ONNX model that ships inside ``faster-whisper``
(``faster_whisper/assets/silero_vad_v6.onnx``), run through ``faster_whisper.vad``'s
wrapper: one speech probability per 32 ms of 16 kHz audio. It costs about 0.13 s of CPU
per minute of audio, so every clip can afford it. Two sources read it:

* the speech source runs Whisper only on the speech stretches, and not at all (the model
  is not even loaded) when there are none;
* the audio source reads music and ambience only outside them, so dialogue is not read as
  music (a voice's pitch, loudness and rate reach the arc through the speech source).

:func:`voice_activity` memoises the result on the clip's :class:`MediaStreams`, so the
second source to ask gets it for free (``analyze_video`` finds it ahead, from the audio
decoded before the video, and puts it there); the model itself loads once per process
(``analysis.caches`` name ``silero-vad``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from analysis.caches import cached
from analysis.errors import ModelError, ParameterError
from analysis.filters import resample_poly
from analysis.sources.base import MediaStreams

SAMPLE_RATE = 16000  # what Silero VAD (and Whisper) expect
WINDOW = 512  # samples per Silero frame: 32 ms at 16 kHz
FRAME_S = WINDOW / SAMPLE_RATE


@cached("silero-vad", maxsize=1)
def vad_model():
    """faster-whisper's Silero VAD wrapper around the ONNX file inside its wheel (loaded once)."""
    try:
        from faster_whisper.utils import get_assets_path
        from faster_whisper.vad import SileroVADModel
    except ImportError:
        raise ModelError("the package `faster-whisper` (which ships the Silero VAD model) is not installed") from None
    path = Path(get_assets_path()) / "silero_vad_v6.onnx"
    if not path.is_file():
        raise ModelError(f"no Silero VAD model at {path}; reinstall `faster-whisper`")
    try:
        return SileroVADModel(str(path))
    except Exception as err:  # onnxruntime raises its own exception types; the user needs one sentence
        raise ModelError(f"Silero VAD model at {path} could not be loaded ({err})") from None


def to_16k(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """Mono float32 at 16 kHz (polyphase resampling)."""
    if sample_rate <= 0:
        raise ParameterError(f"`sample_rate` must be positive (received {sample_rate})")
    audio = np.asarray(audio, dtype=np.float32).reshape(-1)
    if sample_rate == SAMPLE_RATE:
        return audio
    from math import gcd

    g = gcd(SAMPLE_RATE, int(sample_rate))
    return resample_poly(audio, SAMPLE_RATE // g, int(sample_rate) // g, dtype=np.float32)


def speech_regions(
    probability: np.ndarray,
    *,
    threshold: float = 0.5,
    neg_threshold: float = 0.35,
    min_speech: float = 0.25,
    min_silence: float = 0.3,
    pad: float = 0.15,
    duration: float | None = None,
) -> tuple[tuple[float, float], ...]:
    """Speech stretches (start, end) in seconds from per-frame speech probabilities.

    Silero's own hysteresis (as in ``faster_whisper.vad.get_speech_timestamps``): speech
    starts where the probability reaches ``threshold`` and ends once it has stayed below
    ``neg_threshold`` for ``min_silence`` s; stretches shorter than ``min_speech`` s are
    dropped, the rest padded by ``pad`` s on each side and merged where they touch. The
    pauses are tighter than faster-whisper's transcription defaults (2 s, 0.4 s pad): the
    audio source should hear the room between sentences.
    """
    p = np.asarray(probability, dtype=float)
    end_of_clip = duration if duration is not None else p.size * FRAME_S
    raw: list[tuple[float, float]] = []
    start: int | None = None
    quiet = 0
    need_quiet = max(1, round(min_silence / FRAME_S))
    for i, x in enumerate(p):
        if start is None:
            if x >= threshold:
                start, quiet = i, 0
            continue
        quiet = quiet + 1 if x < neg_threshold else 0
        if quiet >= need_quiet:
            raw.append((start * FRAME_S, (i - quiet + 1) * FRAME_S))
            start = None
    if start is not None:
        raw.append((start * FRAME_S, p.size * FRAME_S))
    out: list[tuple[float, float]] = []
    for s, e in raw:
        if e - s < min_speech:
            continue
        s, e = max(0.0, s - pad), min(end_of_clip, e + pad)
        if out and s <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], e))
        else:
            out.append((s, e))
    return tuple(out)


@dataclass(frozen=True, eq=False)
class VoiceActivity:
    """Where a clip's audio holds speech.

    ``probability`` is Silero's speech probability per 32 ms frame, ``regions`` the speech
    stretches in seconds, ``audio16`` the 16 kHz mono audio both were read from (kept so
    the speech source does not resample again).
    """

    probability: np.ndarray
    regions: tuple[tuple[float, float], ...]
    audio16: np.ndarray

    @property
    def any(self) -> bool:
        return bool(self.regions)

    @property
    def seconds(self) -> float:
        return float(sum(e - s for s, e in self.regions))

    def mask(self, times: np.ndarray) -> np.ndarray:
        """True for each time (s) that falls inside a speech stretch."""
        t = np.asarray(times, dtype=float)
        inside = np.zeros(t.shape, dtype=bool)
        for s, e in self.regions:
            inside |= (t >= s) & (t < e)
        return inside

    def until(self, duration: float | None) -> VoiceActivity:
        """The voice activity of the same audio in a clip that ends at ``duration`` s: what
        ``detect(..., duration=duration)`` gives, the last stretch cut at the clip's end."""
        regions = speech_regions(self.probability, duration=duration)
        return self if regions == self.regions else VoiceActivity(self.probability, regions, self.audio16)

    def coverage(self, times: np.ndarray, hop: float) -> np.ndarray:
        """Share in [0, 1] of each window ``[c - hop/2, c + hop/2)`` that is speech."""
        c = np.asarray(times, dtype=float)
        lo, hi = c - hop / 2, c + hop / 2
        out = np.zeros(c.shape)
        for s, e in self.regions:
            out += np.clip(np.minimum(hi, e) - np.maximum(lo, s), 0.0, None)
        return np.clip(out / hop, 0.0, 1.0)


#: Silero windows per ONNX run, as ``faster_whisper.vad.SileroVADModel`` batches them (its state is carried
#: from one run to the next, so the runs must be the same for the same probabilities).
BATCH = 10000
CONTEXT = 64  # samples of the window before that each window is given, as faster-whisper gives them


def _batches(audio16: np.ndarray) -> Iterator[np.ndarray]:
    """The model's input ``(k, CONTEXT + WINDOW)``, :data:`BATCH` windows at a time, as faster-whisper's
    wrapper builds it for the whole clip at once (the clip zero-padded to whole windows; each window led by
    the last ``CONTEXT`` samples of the one before, zeros for the first; the last window's own last
    ``CONTEXT`` samples zeroed, as its wrapper does): only one batch is copied at a time."""
    n = -(-audio16.size // WINDOW)
    for w0 in range(0, n, BATCH):
        w1 = min(n, w0 + BATCH)
        rows = np.zeros((w1 - w0, CONTEXT + WINDOW), np.float32)
        part = audio16[w0 * WINDOW : w1 * WINDOW]
        full = part.size // WINDOW
        rows[:full, CONTEXT:] = part[: full * WINDOW].reshape(full, WINDOW)
        if full < len(rows):  # the clip's last window, part of it (the rest stays zero)
            rows[full, CONTEXT : CONTEXT + part.size - full * WINDOW] = part[full * WINDOW :]
        if w1 == n:
            rows[-1, -CONTEXT:] = 0.0
        rows[1:, :CONTEXT] = rows[:-1, -CONTEXT:]
        if w0 > 0:
            rows[0, :CONTEXT] = audio16[w0 * WINDOW - CONTEXT : w0 * WINDOW]
        yield rows


def _probabilities(audio16: np.ndarray) -> np.ndarray:
    """Silero's speech probability per window of ``audio16`` (what ``vad_model()(padded)`` gives), run a
    batch at a time on the wrapper's ONNX session: the wrapper itself copies the whole clip twice."""
    model = vad_model()
    session = getattr(model, "session", None)
    if session is None:  # a faster-whisper whose wrapper keeps its session elsewhere: the wrapper, whole clip
        return np.asarray(model(np.pad(audio16, (0, (-audio16.size) % WINDOW))), dtype=float).reshape(-1)
    h = np.zeros((1, 1, 128), dtype="float32")
    c = np.zeros((1, 1, 128), dtype="float32")
    out = []
    for batch in _batches(audio16):
        p, h, c = session.run(None, {"input": batch, "h": h, "c": c})
        out.append(np.asarray(p, dtype=float).reshape(-1))
    return np.concatenate(out)


def detect(audio: np.ndarray, sample_rate: int, *, duration: float | None = None) -> VoiceActivity:
    """Voice activity of mono ``audio`` at ``sample_rate`` (see :func:`speech_regions`)."""
    audio16 = to_16k(audio, sample_rate)
    if audio16.size < WINDOW:
        return VoiceActivity(np.zeros(0), (), audio16)
    probability = _probabilities(audio16)
    return VoiceActivity(probability, speech_regions(probability, duration=duration), audio16)


def voice_activity(media: MediaStreams) -> VoiceActivity | None:
    """The clip's voice activity, computed on the first call and memoised on ``media``; None without audio."""
    if media.audio is None or media.audio.size == 0:
        return None
    if "voice" not in media.memo:
        media.memo["voice"] = detect(media.audio, media.sample_rate, duration=media.duration)
    return media.memo["voice"]
