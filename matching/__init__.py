"""Library catalogue, DTW + embedding ranking, fitting a track to a clip, feedback learner."""

from __future__ import annotations

from importlib import import_module
from typing import Any

_LAZY = {
    "Library": "matching.library.store",
    "Match": "matching.ranking.ranker",
    "rank": "matching.ranking.ranker",
    "demo_library": "matching.library.demo",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'matching' has no attribute {name!r}")


__all__ = list(_LAZY)
