"""Content-type presets: how much the fuser trusts each affect source, by kind of video.

A preset is a weight per source name of :data:`analysis.sources.REGISTRY`; the fuser
multiplies it with each source's per-window confidence. Weights are relative (only
their ratios matter). The reasoning: drama is carried by faces, documentary and
court-room by what is said, action, sports and trailers by motion and sound (a trailer's voice-over
a little more than an action scene's lines), music videos by the music. The faces/speech/subtitles
numbers are first guesses for their owners to tune.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from analysis.errors import ParameterError
from analysis.sources import REGISTRY

_P = dict[str, float]

PRESETS: Mapping[str, Mapping[str, float]] = MappingProxyType(
    {
        name: MappingProxyType(w)
        for name, w in {
            "general": _P(visual=1.0, audio=1.0, faces=1.0, speech=0.8, subtitles=0.8),
            "drama": _P(visual=0.7, audio=0.8, faces=1.6, speech=1.0, subtitles=1.0),
            "documentary": _P(visual=0.8, audio=0.6, faces=0.6, speech=1.5, subtitles=1.5),
            "interview": _P(visual=0.4, audio=0.5, faces=1.3, speech=1.6, subtitles=1.4),
            "courtroom": _P(visual=0.3, audio=0.5, faces=1.0, speech=1.8, subtitles=1.6),
            "action": _P(visual=1.6, audio=1.3, faces=0.5, speech=0.4, subtitles=0.4),
            "sports": _P(visual=1.5, audio=1.4, faces=0.4, speech=0.6, subtitles=0.4),
            "music_video": _P(visual=1.0, audio=1.8, faces=0.6, speech=0.2, subtitles=0.3),
            "trailer": _P(visual=1.6, audio=1.3, faces=0.5, speech=0.6, subtitles=0.4),
        }.items()
    }
)


def source_weights(content_type: str = "general", weights: Mapping[str, float] | None = None) -> dict[str, float]:
    """Per-source weights: the preset for ``content_type``, overridden by ``weights``.

    ``weights`` may name any registered source; a source missing from both gets 1.0.
    Weights must be finite and non-negative.
    """
    if content_type not in PRESETS:
        raise ParameterError(f"unknown content type {content_type!r} (known: {', '.join(PRESETS)})")
    out = {name: float(PRESETS[content_type].get(name, 1.0)) for name in REGISTRY}
    for name, w in (weights or {}).items():
        if name not in REGISTRY:
            raise ParameterError(f"`weights` names unknown source {name!r} (known: {', '.join(REGISTRY)})")
        try:
            value = float(w)
        except (TypeError, ValueError):
            raise ParameterError(f"weight of {name!r} must be a number (received {w!r})") from None
        if not 0.0 <= value < float("inf"):
            raise ParameterError(f"weight of {name!r} must be finite and >= 0 (received {w!r})")
        out[name] = value
    return out
