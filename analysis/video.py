"""``analyze_video``: one call from a clip to its emotion arc, cuts, pace and a suggested tempo.

Pipeline: probe -> one decode pass (every frame to the cut detector, sampled frames and
mono audio kept) -> each affect source -> confidence-weighted fusion -> pace. Source
instances are created once per process and reused (:func:`get_source`, held in the
``affect-sources`` cache of :mod:`analysis.caches`), so batch use does not reload models.

With the speech source asked for and an audio stream in the clip, the audio is decoded
first, on its own (:func:`analysis.media.decode.decode_audio`, a few hundredths of a second),
and the speech source's audio-only work, voice activity and Whisper, starts at once on a
second thread (:class:`_SpeechLane`) while the video is decoded and the other sources run;
the speech arc is read on the clip's window grid last. The result is the same as running
the sources one after another.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_for
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from analysis.arc import EmotionArc, grid
from analysis.caches import Cache
from analysis.cuts import CutDetector, Pace, pace
from analysis.errors import MediaError, ModelError, ParameterError, as_path, is_number
from analysis.fusion import fuse
from analysis.media.decode import AudioTrack, decode_audio, decode_report
from analysis.media.probe import VideoInfo, probe
from analysis.presets import source_weights
from analysis.sources import DEFAULT_SOURCES, REGISTRY, AffectSource, MediaStreams, SourceArc, source_class, vad

if TYPE_CHECKING:
    from analysis.sources.speech import Heard, SpeechSource
    from analysis.text.captions import Subtitles

log = logging.getLogger(__name__)

#: Called with (fraction done in [0, 1], what is happening).
Progress = Callable[[float, str], None]

_SOURCES = Cache("affect-sources")
#: ``subtitles`` default of :func:`analyze_video`: the file beside the clip, else its own text track.
AUTO = "auto"


def get_source(name: str) -> AffectSource:
    """The process-wide instance of source ``name`` (created on first use)."""
    return _SOURCES.get(name, lambda: source_class(name)())


def _quiet_reason(name: str, arc: SourceArc, has_audio: bool) -> str:
    """Why a source that ran found nothing to read anywhere in the clip."""
    if name == "audio":
        if not has_audio:
            return "the clip has no sound"
        speech = arc.features.get("speech_share")
        if speech is not None and np.size(speech) and float(np.mean(speech)) >= 0.5:
            return "speech throughout, which the speech source reads"
        return "too quiet to read"
    return "no evidence in any window"


def _rounded(a: np.ndarray, nd: int = 4) -> list[float]:
    return [round(float(x), nd) for x in a]


@dataclass(frozen=True, eq=False)
class VideoAnalysis:
    """Everything ``analyze_video`` learnt about a clip."""

    path: Path
    duration: float
    cuts: tuple[float, ...]
    arc: EmotionArc
    source_arcs: Mapping[str, SourceArc]
    pace: Pace
    suggested_tempo: float
    has_audio: bool
    warnings: tuple[str, ...] = ()
    coverage: float = 1.0  # share of arc windows where some source had evidence
    info: VideoInfo | None = field(default=None, repr=False)
    #: sources asked for that switched themselves off for want of evidence, with the reason
    sources_off: Mapping[str, str] = field(default_factory=dict)
    #: where the clip's audio holds speech (s), as the voice activity detector found it; none when the
    #: speech source ran and Whisper heard no words there (a bunny's squeaks are not dialogue); None when
    #: no source looked (or the clip has no audio). Mixing keeps the dialogue by it (analysis.media.dialogue).
    speech_regions: tuple[tuple[float, float], ...] | None = None
    #: the subtitles read: a file's path (given, or found beside the clip) or the clip's own track
    #: ("clip.mkv (subtitle track 2, subrip)"); None when none was
    subtitles: str | None = None

    @property
    def sources_used(self) -> tuple[str, ...]:
        """The sources that spoke: some window of theirs had evidence (confidence above 0)."""
        return tuple(name for name, s in self.source_arcs.items() if s.spoke)

    @property
    def sources_quiet(self) -> dict[str, str]:
        """Sources that ran but had no evidence in any window (their arcs stay, at confidence 0), with why:
        neither used nor switched off, they would otherwise go unmentioned."""
        return {name: _quiet_reason(name, s, self.has_audio) for name, s in self.source_arcs.items() if not s.spoke}

    def silent_sources(self, reasons: Mapping[str, str] | None = None) -> str:
        """The sources that did not speak, for a summary line: ``"; faces off (why); audio found nothing
        (why)"``. ``reasons`` replaces a switched-off source's own reason (the page words some its way)."""
        reasons = reasons or {}
        off = "".join(f"; {name} off ({reasons.get(name, why)})" for name, why in self.sources_off.items())
        return off + "".join(f"; {name} found nothing ({why})" for name, why in self.sources_quiet.items())

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary: arc, cuts, pace, per-source readings, warnings."""
        return {
            "path": str(self.path),
            "duration": round(self.duration, 4),
            "cuts": list(self.cuts),
            "suggested_tempo": self.suggested_tempo,
            "has_audio": self.has_audio,
            "coverage": round(self.coverage, 4),
            "warnings": list(self.warnings),
            "sources_used": list(self.sources_used),
            "sources_off": dict(self.sources_off),
            "sources_quiet": self.sources_quiet,
            "subtitles": self.subtitles,
            "speech_regions": None if self.speech_regions is None else [
                [round(s, 3), round(e, 3)] for s, e in self.speech_regions],
            "arc": self.arc.to_dict(),
            "pace": self.pace.to_dict(),
            "sources": {
                name: {
                    "valence": _rounded(s.valence),
                    "arousal": _rounded(s.arousal),
                    "confidence": _rounded(s.confidence, 3),
                    "features": {k: _rounded(np.asarray(v), 3) for k, v in s.features.items() if np.ndim(v) == 1},
                }
                for name, s in self.source_arcs.items()
            },
            "video": None
            if self.info is None
            else {
                "width": self.info.shown_size[0],  # as players show it
                "height": self.info.shown_size[1],
                "rotation": self.info.rotation,
                "fps": round(self.info.fps, 3),
                "video_codec": self.info.video_codec,
                "audio_codec": self.info.audio_codec,
                "container": self.info.container,
            },
        }


def suggested_tempo(arc: EmotionArc, cuts_per_minute: float) -> float:
    """BPM for a score: 60..120 from mean arousal, plus up to 20 for fast cutting.

    Calm scenes suit slow music and excited ones fast music (Gabrielsson & Lindström
    2010); quick cutting reads as a faster pulse. Clipped to 50..180 BPM.
    """
    a = float(np.mean(arc.arousal)) if len(arc) else 0.0
    bpm = 60.0 + 30.0 * (a + 1.0) + min(20.0, 0.4 * cuts_per_minute)
    return float(round(np.clip(bpm, 50.0, 180.0)))


def _source_names(
    sources: Sequence[str], subtitles: str | Path | Subtitles | None
) -> tuple[list[str], Subtitles | None]:
    """The sources to run, in order without repeats (``subtitles`` added when subtitles are given), and
    the subtitles read; unknown names, an empty list and a subtitle file that does not read are refused."""
    from analysis.text.captions import Subtitles, read_subtitles

    if isinstance(sources, str):
        raise ParameterError(f"`sources` must be a sequence of names, not one string (received {sources!r})")
    if not isinstance(sources, Iterable):  # None was Python's "'NoneType' object is not iterable"
        raise ParameterError(f"`sources` must be a sequence of names (received {sources!r})")
    names = list(dict.fromkeys(sources))
    if subtitles is not None:
        if not isinstance(subtitles, Subtitles):
            subtitles = read_subtitles(as_path(subtitles, "subtitles"))  # before any decoding: a bad file fails at once
        if "subtitles" not in names:
            names.append("subtitles")
    if not names:
        raise ParameterError("`sources` must name at least one source (received none)")
    unknown = [n for n in names if n not in REGISTRY]
    if unknown:
        raise ParameterError(f"unknown source(s) {unknown} (known: {', '.join(REGISTRY)})")
    return names, subtitles


@dataclass(frozen=True, eq=False)
class _SpeechLane:
    """The speech source's audio-only work, started before the video is decoded.

    ``track`` is the clip's audio, decoded first; ``voice`` (Silero VAD) and then ``heard``
    (Whisper on the speech stretches) run in that order on one worker thread. The voice
    activity is found for the clip ending where its video packets say; once the video is
    decoded it is cut at the real end (:meth:`VoiceActivity.until`), and should that move
    the samples Whisper reads, the transcript is made again, so the result is always that
    of the sources run one after another.
    """

    track: AudioTrack
    speech: SpeechSource
    voice: Future[vad.VoiceActivity]
    heard: Future[Heard]

    @staticmethod
    @contextmanager
    def open(
        path: Path, info: VideoInfo, names: Sequence[str], max_duration: float | None
    ) -> Iterator[_SpeechLane | None]:
        """A lane when the speech source is asked for and the clip has an audio stream, else None
        (and no extra pass); its thread is waited for on leaving."""
        from analysis.sources.speech import SpeechSource

        if "speech" not in names or info.audio_codec is None:
            yield None
            return
        try:
            speech = get_source("speech")
            track = decode_audio(path, max_duration=max_duration)
        except (ModelError, ImportError, MediaError, ParameterError):  # the plain path says so, as it always has
            yield None
            return
        if not isinstance(speech, SpeechSource) or track.samples is None:
            yield None
            return
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="speech-lane") as pool:
            voice = pool.submit(vad.detect, track.samples, track.sample_rate, duration=track.video_end)
            heard = pool.submit(lambda: speech.hear(voice.result()))
            try:
                yield _SpeechLane(track, speech, voice, heard)
            finally:
                heard.cancel()  # not yet started: not needed after all (an error on the way)

    def share_voice(self, media: MediaStreams) -> None:
        """Put the lane's voice activity, cut at the clip's decoded end, where the audio source finds it.

        Nothing when the decode read other audio (it stopped on a garbled stretch) or the VAD
        model did not load: each source then asks for its own, as without the lane.
        """
        if media.audio is not self.track.samples:
            return
        try:
            voice = self.voice.result()
        except (ModelError, ImportError):
            return
        media.memo["voice"] = voice.until(media.duration)

    def analyze(self, media: MediaStreams, *, hop: float) -> SourceArc:
        """The speech source's arc of ``media``, as ``SpeechSource.analyze`` would give it."""
        if media.audio is not self.track.samples or "voice" not in media.memo:
            wait_for([self.heard])  # one Whisper at a time
            return self.speech.analyze(media, hop=hop)
        voice = media.memo["voice"]
        heard = self.heard.result().for_voice(voice)
        if heard is None:
            log.info("%s: the clip ends at %.3f s, not where its packets said; transcribing again",
                     media.path, media.duration)
            heard = self.speech.hear(voice)
        return self.speech.finish(heard, times=grid(media.duration, hop), hop=hop)


def _read_clip(
    path: Path,
    info: VideoInfo,
    *,
    subtitles: Subtitles | None,
    sample_fps: float,
    frame_width: int,
    cut_detector: str,
    cut_threshold: float | None,
    max_duration: float | None,
    report: Progress,
    audio: AudioTrack | None = None,
) -> tuple[MediaStreams, list[str], VideoInfo]:
    """One decode pass (of the video alone when ``audio`` was decoded already): every frame to the
    cut detector, sampled frames and mono audio kept. ``(streams with their cuts and subtitle file,
    the decoder's warnings, the container facts with the picture's rotation)``."""
    detector = CutDetector(fps=info.fps or 25.0, detector=cut_detector, threshold=cut_threshold)
    decoded = decode_report(
        path,
        sample_fps=sample_fps,
        width=frame_width,
        frame_sink=detector.feed,
        progress=lambda f: report(0.75 * f, "decoding and detecting cuts"),
        max_duration=max_duration,
        audio=audio,
    )
    media = replace(decoded.media, cuts=detector.cuts(), subtitles=subtitles)
    return media, list(decoded.warnings), decoded.info


def _run_sources(
    names: Sequence[str], media: MediaStreams, *, hop: float, report: Progress, notes: list[str],
    lane: _SpeechLane | None = None,
) -> tuple[dict[str, SourceArc], dict[str, str]]:
    """Each source's reading of ``media``: ``(arcs of the sources that spoke, {switched off: why})``.

    A source whose model cannot load is left out with a note in ``notes``. With a speech
    ``lane`` the speech source is read last (its transcript is being made meanwhile); the
    results are still given in the order of ``names``.
    """
    if lane is not None:
        lane.share_voice(media)
    order = [n for n in names if lane is None or n != "speech"] + (["speech"] if lane is not None else [])
    outcome: dict[str, SourceArc | str] = {}
    for i, name in enumerate(order):
        report(0.75 + 0.2 * i / len(names), f"source {name}")
        try:
            if lane is not None and name == "speech":
                outcome[name] = lane.analyze(media, hop=hop)
            else:
                outcome[name] = get_source(name).analyze(media, hop=hop)
        except (ModelError, ImportError) as err:
            outcome[name] = f"source {name!r} unavailable and left out ({err})"
    arcs: dict[str, SourceArc] = {}
    off: dict[str, str] = {}
    for name in names:
        result = outcome[name]
        if isinstance(result, str):
            notes.append(result)
        elif result.switched_off is not None:
            off[name] = result.switched_off
        else:
            arcs[name] = result
    return arcs, off


def _coverage_notes(coverage: float) -> list[str]:
    """A warning when some windows (or all) had no evidence from any source."""
    if coverage == 0.0:
        return ["no source had any evidence: the arc is neutral (0, 0) throughout"]
    if coverage < 1.0:
        return [f"{100 * (1 - coverage):.0f}% of windows had no evidence and were interpolated"]
    return []


def _check_options(*, hop: object, sample_fps: object, frame_width: object, cut_threshold: object) -> None:
    """A :class:`ParameterError` naming the first option of :func:`analyze_video` out of range, by the name the
    caller used: ``hop=np.float32(0.25)`` was refused and ``hop=True`` read as 1 s, ``sample_fps=nan`` reached
    NumPy's "cannot convert float NaN to integer", ``cut_threshold=-5`` was named `threshold`."""
    if not (is_number(hop) and 0.05 <= hop <= 60):
        raise ParameterError(f"`hop` must be between 0.05 and 60 seconds (received {hop!r})")
    if not (is_number(sample_fps) and math.isfinite(sample_fps) and sample_fps > 0):
        raise ParameterError(f"`sample_fps` must be a positive, finite number (received {sample_fps!r})")
    if not (isinstance(frame_width, int | np.integer) and not isinstance(frame_width, bool) and frame_width >= 8):
        raise ParameterError(f"`frame_width` must be a whole number of pixels, at least 8 (received {frame_width!r})")
    if cut_threshold is not None and not (is_number(cut_threshold) and math.isfinite(cut_threshold)
                                          and cut_threshold > 0):
        raise ParameterError(f"`cut_threshold` must be positive or None (received {cut_threshold!r})")


def analyze_video(
    path: str | Path,
    *,
    hop: float = 0.5,
    sources: Sequence[str] = DEFAULT_SOURCES,
    content_type: str = "general",
    weights: Mapping[str, float] | None = None,
    subtitles: str | Path | Subtitles | None = AUTO,
    smoothing: str = "savgol",
    smoothing_window: float = 2.0,
    normalize: str = "calibrated",
    cut_detector: str = "adaptive",
    cut_threshold: float | None = None,
    sample_fps: float = 5.0,
    frame_width: int = 256,
    max_duration: float | None = None,
    progress: Progress | None = None,
) -> VideoAnalysis:
    """Analyse ``path`` into an emotion arc on a ``hop``-second grid, cuts, pace and tempo.

    ``sources`` are names from ``analysis.sources.REGISTRY``, by default all of them: faces,
    speech and subtitles switch themselves off where they find no evidence (no face in the
    sampled frames, no voice, no subtitle file) and then cost only their detector; they are
    left out of ``source_arcs`` and listed in ``sources_off``. Giving ``subtitles`` (an
    .srt/.vtt/.ass file) adds the ``subtitles`` source; by default (``"auto"``) that source reads what a
    player would show: the file beside the clip (``clip.srt``, ``clip.vtt``, ``clip.en.srt``), else
    the clip's own text subtitle track (:mod:`analysis.text.sidecar`; what does not read is left out
    with a warning), and ``None`` reads none; subtitles already read (a
    :class:`~analysis.text.captions.Subtitles`) are taken as they are. ``content_type`` picks a preset of
    source weights (``analysis.presets``), ``weights`` overrides single ones. Frames for
    the sources are sampled at ``sample_fps`` and ``frame_width`` pixels wide; the cut
    detector sees every frame. Bad media raises :class:`MediaError`; a partial read
    gives a result with ``warnings``. ``max_duration`` (seconds) refuses a clip that
    decodes past it, whatever its header claims (the page's limit).
    """
    path = as_path(path)
    _check_options(hop=hop, sample_fps=sample_fps, frame_width=frame_width, cut_threshold=cut_threshold)
    auto = isinstance(subtitles, str) and subtitles == AUTO
    names, subtitles = _source_names(sources, None if auto else subtitles)
    preset = source_weights(content_type, weights)
    report = progress or (lambda _f, _m: None)

    report(0.0, "probing")
    info = probe(path)
    notes_before: list[str] = []
    if auto and "subtitles" in names:
        from analysis.text.sidecar import find_subtitles

        subtitles = find_subtitles(path, notes_before)
    with _SpeechLane.open(path, info, names, max_duration) as lane:
        media, notes, info = _read_clip(
            path,
            info,
            subtitles=subtitles,
            sample_fps=sample_fps,
            frame_width=frame_width,
            cut_detector=cut_detector,
            cut_threshold=cut_threshold,
            max_duration=max_duration,
            report=report,
            audio=lane.track if lane is not None else None,
        )
        notes[:0] = notes_before
        if media.audio is None and "audio" in names:
            notes.append("no audio track: the arc comes from the other sources alone")
        arcs, off = _run_sources(names, media, hop=hop, report=report, notes=notes, lane=lane)
    cuts = media.cuts
    voice = media.memo.get("voice")
    speech = None if voice is None else tuple(voice.regions)
    if speech and "speech" in off:
        from analysis.sources.speech import NO_WORDS  # loaded already: the speech source ran

        speech = () if off["speech"] == NO_WORDS else speech  # Whisper heard no words: not dialogue

    report(0.95, "fusing")
    fusion = fuse(list(arcs.values()), times=grid(media.duration, hop), weights=preset, smoothing=smoothing,
                  smoothing_window=smoothing_window, normalize=normalize)
    notes.extend(_coverage_notes(fusion.coverage))
    p = pace(cuts, media.duration, hop=hop)
    report(1.0, "done")
    return VideoAnalysis(
        path=path,
        duration=media.duration,
        cuts=cuts,
        arc=fusion.arc,
        source_arcs=arcs,
        pace=p,
        suggested_tempo=suggested_tempo(fusion.arc, p.mean),
        has_audio=media.audio is not None,
        warnings=tuple(notes),
        coverage=fusion.coverage,
        info=info,
        sources_off=off,
        speech_regions=speech,
        subtitles=None if subtitles is None else str(subtitles.path),
    )
