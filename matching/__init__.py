"""Library catalogue, DTW + embedding ranking, fitting a track to a clip, feedback learner."""

from __future__ import annotations

from importlib import import_module
from typing import Any

_LAZY = {
    "Library": "matching.library",
    "Match": "matching.ranking",
    "rank": "matching.ranking",
    "demo_library": "matching.demo",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'matching' has no attribute {name!r}")


__all__ = list(_LAZY)
