"""Affect sources, one file each, behind :class:`analysis.sources.base.AffectSource`.

``REGISTRY`` maps a source name to ``"module:Class"``; classes import lazily so a
source's heavy model is only loaded when that source is switched on.
"""

from __future__ import annotations

from importlib import import_module

from analysis.errors import ParameterError
from analysis.sources.base import AffectSource, MediaStreams, SourceArc

REGISTRY: dict[str, str] = {
    "visual": "analysis.sources.visual:VisualSource",
    "audio": "analysis.sources.audio:AudioSource",
    "faces": "analysis.sources.faces:FaceSource",
    "speech": "analysis.sources.speech:SpeechSource",
    "subtitles": "analysis.sources.subtitles:SubtitleSource",
}

#: What ``analyze_video`` reads by default: every source. Faces, speech and subtitles switch
#: themselves off without evidence (no face found, no voice detected, no subtitle file).
DEFAULT_SOURCES: tuple[str, ...] = tuple(REGISTRY)


def source_class(name: str) -> type[AffectSource]:
    """The class registered under ``name``."""
    try:
        module, cls = REGISTRY[name].split(":")
    except KeyError:
        raise ParameterError(f"unknown source {name!r} (known: {', '.join(REGISTRY)})") from None
    return getattr(import_module(module), cls)


__all__ = ["DEFAULT_SOURCES", "REGISTRY", "AffectSource", "MediaStreams", "SourceArc", "source_class"]
