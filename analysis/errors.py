"""One small error hierarchy shared by every package of the product.

``analysis`` sits at the bottom of the dependency graph, so the errors live here and
``matching``/``composer`` re-raise the same types. Messages name the argument or file
and echo what was received, so a user can act on them.
"""

from __future__ import annotations

from pathlib import Path


class SoundtrackError(Exception):
    """Base class of every error the product raises on purpose."""


class ParameterError(SoundtrackError, ValueError):
    """A caller passed an argument outside its valid range or of the wrong kind."""


class MediaError(SoundtrackError):
    """A media file is missing, unreadable, corrupt, empty or otherwise unusable.

    ``str(err)`` is one sentence naming the file and the problem.
    """

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class ModelError(SoundtrackError):
    """A model or checkpoint could not be loaded or does not fit its config."""
