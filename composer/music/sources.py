"""Resolve a note source by name: the learned model when its checkpoint loads, else the rules."""

from __future__ import annotations

from analysis.errors import ModelError, ParameterError
from composer.model.shipped import SAMPLING_NAME, shipped_file
from composer.music.notes import NoteSource
from composer.music.rules import RuleSource

SOURCES: tuple[str, ...] = ("auto", "rules", "learned")
#: Where the learned source's weights live (``composer.model.checkpoint.SAMPLING``, the NumPy twin of
#: ``composer.pt``: package data, found by :mod:`importlib.resources`); checked here so that "auto"
#: without a trained model never imports the model's modules.
LEARNED_CHECKPOINT = shipped_file(SAMPLING_NAME)


def check_source(name: str | NoteSource) -> None:
    """A :class:`ParameterError` unless ``name`` is one of :data:`SOURCES` or a :class:`NoteSource`."""
    if (isinstance(name, str) or not isinstance(name, NoteSource)) and name not in SOURCES:
        raise ParameterError(f"`source` must be one of {list(SOURCES)} (received {name!r})")


def get_source(name: str | NoteSource = "auto") -> NoteSource:
    """The note source called ``name``.

    ``"auto"`` uses the learned source when ``composer.model.generate`` imports and its
    checkpoint loads, else :class:`RuleSource`; ``"learned"`` raises
    :class:`ModelError` when the model is unavailable; ``"rules"`` never needs a model.
    A :class:`NoteSource` instance is returned as it is.
    """
    if not isinstance(name, str) and isinstance(name, NoteSource):
        return name
    check_source(name)
    if name == "rules" or (name == "auto" and not LEARNED_CHECKPOINT.is_file()):
        return RuleSource()  # no weights: skip importing the model at all
    try:
        from composer.model.generate import learned_source  # the model's module; absent until trained
    except ImportError as err:
        if name == "learned":
            raise ModelError(f"the learned note source is not available ({err})") from None
        return RuleSource()
    try:
        return learned_source()
    except ModelError:
        if name == "learned":
            raise
        return RuleSource()
