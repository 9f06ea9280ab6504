"""``analyze_video``: one call from a clip to its emotion arc, cuts, pace and a suggested tempo.

Pipeline: probe -> one decode pass (every frame to the cut detector, sampled frames and
mono audio kept) -> each affect source -> confidence-weighted fusion -> pace. Source
instances are created once per process and reused (:func:`get_source`, held in the
``affect-sources`` cache of :mod:`analysis.caches`), so batch use does not reload models.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from analysis.arc import EmotionArc, grid
from analysis.caches import Cache
from analysis.cuts import CutDetector, Pace, pace
from analysis.errors import MediaError, ModelError, ParameterError
from analysis.fusion import fuse
from analysis.media.decode import decode_report
from analysis.media.probe import VideoInfo, probe
from analysis.presets import source_weights
from analysis.sources import DEFAULT_SOURCES, REGISTRY, AffectSource, MediaStreams, SourceArc, source_class

#: Called with (fraction done in [0, 1], what is happening).
Progress = Callable[[float, str], None]

_SOURCES = Cache("affect-sources")


def get_source(name: str) -> AffectSource:
    """The process-wide instance of source ``name`` (created on first use)."""
    return _SOURCES.get(name, lambda: source_class(name)())


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

    @property
    def sources_used(self) -> tuple[str, ...]:
        """The sources that spoke: some window of theirs had evidence (confidence above 0)."""
        return tuple(name for name, s in self.source_arcs.items() if s.spoke)

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
                "width": self.info.width,
                "height": self.info.height,
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


def _source_names(sources: Sequence[str], subtitles: str | Path | None) -> tuple[list[str], Path | None]:
    """The sources to run, in order without repeats (``subtitles`` added when a file is given), and
    the subtitle file; unknown names, an empty list and a missing subtitle file are refused."""
    if isinstance(sources, str):
        raise ParameterError(f"`sources` must be a sequence of names, not one string (received {sources!r})")
    names = list(dict.fromkeys(sources))
    if subtitles is not None:
        subtitles = Path(subtitles)
        if not subtitles.is_file():
            raise MediaError(subtitles, "subtitle file not found")
        if "subtitles" not in names:
            names.append("subtitles")
    if not names:
        raise ParameterError("`sources` must name at least one source (received none)")
    unknown = [n for n in names if n not in REGISTRY]
    if unknown:
        raise ParameterError(f"unknown source(s) {unknown} (known: {', '.join(REGISTRY)})")
    return names, subtitles


def _read_clip(
    path: Path,
    *,
    subtitles: Path | None,
    sample_fps: float,
    frame_width: int,
    cut_detector: str,
    cut_threshold: float | None,
    max_duration: float | None,
    report: Progress,
) -> tuple[VideoInfo, MediaStreams, list[str]]:
    """Probe, then one decode pass: every frame to the cut detector, sampled frames and mono audio
    kept. ``(info, streams with their cuts and subtitle file, the decoder's warnings)``."""
    report(0.0, "probing")
    info = probe(path)
    detector = CutDetector(fps=info.fps or 25.0, detector=cut_detector, threshold=cut_threshold)
    decoded = decode_report(
        path,
        sample_fps=sample_fps,
        width=frame_width,
        frame_sink=detector.feed,
        progress=lambda f: report(0.75 * f, "decoding and detecting cuts"),
        max_duration=max_duration,
    )
    media = replace(decoded.media, cuts=detector.cuts(), subtitles=subtitles)
    return info, media, list(decoded.warnings)


def _run_sources(
    names: Sequence[str], media: MediaStreams, *, hop: float, report: Progress, notes: list[str]
) -> tuple[dict[str, SourceArc], dict[str, str]]:
    """Each source's reading of ``media``: ``(arcs of the sources that spoke, {switched off: why})``.

    A source whose model cannot load is left out with a note in ``notes``.
    """
    arcs: dict[str, SourceArc] = {}
    off: dict[str, str] = {}
    for i, name in enumerate(names):
        report(0.75 + 0.2 * i / len(names), f"source {name}")
        try:
            src = get_source(name)
            arc = src.analyze(media, hop=hop)
        except (ModelError, ImportError) as err:
            notes.append(f"source {name!r} unavailable and left out ({err})")
            continue
        if arc.switched_off is not None:
            off[name] = arc.switched_off
        else:
            arcs[name] = arc
    return arcs, off


def _coverage_notes(coverage: float) -> list[str]:
    """A warning when some windows (or all) had no evidence from any source."""
    if coverage == 0.0:
        return ["no source had any evidence: the arc is neutral (0, 0) throughout"]
    if coverage < 1.0:
        return [f"{100 * (1 - coverage):.0f}% of windows had no evidence and were interpolated"]
    return []


def analyze_video(
    path: str | Path,
    *,
    hop: float = 0.5,
    sources: Sequence[str] = DEFAULT_SOURCES,
    content_type: str = "general",
    weights: Mapping[str, float] | None = None,
    subtitles: str | Path | None = None,
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
    .srt/.vtt file) adds the ``subtitles`` source. ``content_type`` picks a preset of
    source weights (``analysis.presets``), ``weights`` overrides single ones. Frames for
    the sources are sampled at ``sample_fps`` and ``frame_width`` pixels wide; the cut
    detector sees every frame. Bad media raises :class:`MediaError`; a partial read
    gives a result with ``warnings``. ``max_duration`` (seconds) refuses a clip that
    decodes past it, whatever its header claims (the page's limit).
    """
    if not (isinstance(hop, int | float) and 0.05 <= hop <= 60):
        raise ParameterError(f"`hop` must be between 0.05 and 60 seconds (received {hop!r})")
    names, subtitles = _source_names(sources, subtitles)
    preset = source_weights(content_type, weights)
    report = progress or (lambda _f, _m: None)

    path = Path(path)
    info, media, notes = _read_clip(
        path,
        subtitles=subtitles,
        sample_fps=sample_fps,
        frame_width=frame_width,
        cut_detector=cut_detector,
        cut_threshold=cut_threshold,
        max_duration=max_duration,
        report=report,
    )
    cuts = media.cuts
    if media.audio is None and "audio" in names:
        notes.append("no audio track: the arc comes from the other sources alone")
    arcs, off = _run_sources(names, media, hop=hop, report=report, notes=notes)

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
    )
