"""Media -> signals: emotion arcs, cuts and pace from video, audio and symbolic music.

Public names import lazily, so ``import analysis`` stays cheap and a heavy
dependency is only loaded by the function that needs it.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from analysis.arc import EMOTION_VA, EMOTIONS, EmotionArc, emotions_to_va, va_to_emotions
from analysis.errors import MediaError, ModelError, ParameterError, SoundtrackError

_LAZY = {
    "analyze_video": "analysis.video",
    "VideoAnalysis": "analysis.video",
    "analyze_track": "analysis.music.track",
    "TrackAnalysis": "analysis.music.track",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'analysis' has no attribute {name!r}")


__all__ = [
    "EMOTIONS",
    "EMOTION_VA",
    "EmotionArc",
    "MediaError",
    "ModelError",
    "ParameterError",
    "SoundtrackError",
    "emotions_to_va",
    "va_to_emotions",
    *_LAZY,
]
