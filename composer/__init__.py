"""Conditional generator, harmony and arrangement, rendering, and the match-or-compose decision."""

from __future__ import annotations

from importlib import import_module
from typing import Any

_LAZY = {
    "compose": "composer.composing",  # not composer/compose.py: a submodule named like the function shadows it
    "Composition": "composer.composition",
    "score_video": "composer.score",
    "ScoreResult": "composer.score",
    "score_videos": "composer.batch",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'composer' has no attribute {name!r}")


__all__ = list(_LAZY)
