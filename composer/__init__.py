"""Conditional generator, harmony and arrangement, rendering, and the match-or-compose decision."""

from __future__ import annotations

from importlib import import_module
from typing import Any

_LAZY = {
    "compose": "composer.pipeline.compose",  # never composer/compose.py: a submodule named like the function shadows it
    "Composition": "composer.output.piece",
    "score_video": "composer.pipeline.score_video",
    "ScoreResult": "composer.pipeline.score_video",
    "score_videos": "composer.pipeline.batch",
    "generate": "composer.model.raw",  # the model alone; composer/model/generate.py is nested, so it cannot shadow
    "RawPiece": "composer.model.raw",
    "write_outputs": "composer.output.write",  # every output of a piece in one call, as the CLI writes them
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'composer' has no attribute {name!r}")


__all__ = list(_LAZY)
