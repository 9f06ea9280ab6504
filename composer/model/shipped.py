"""Where the shipped checkpoint lies: package data of the ``checkpoints`` package, found without torch.

The top-level ``checkpoints/`` folder is a package (``checkpoints/__init__.py``) whose
files are package data, so a plain, non-editable ``pip install .`` installs them beside
``composer`` and :mod:`importlib.resources` resolves them from any working directory.
A checkout that was installed before the folder became a package (an older editable
install) cannot import ``checkpoints`` from elsewhere; there the folder beside the
``composer`` package is used, which is the same place in a checkout and in site-packages.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

CHECKPOINT_NAME = "composer.pt"
#: Its NumPy twin, what composing loads (no torch).
SAMPLING_NAME = "composer.npz"
_SIBLING = Path(__file__).resolve().parents[2] / "checkpoints"


def _from_package(name: str) -> Path | None:
    """``name`` inside the importable ``checkpoints`` package, when that package holds it as a real file."""
    try:
        ref = resources.files("checkpoints").joinpath(name)
    except (ModuleNotFoundError, TypeError):  # not importable, or a namespace package without files
        return None
    path = Path(str(ref))
    return path if path.is_file() else None  # a zipped install has no real file: fall through


def shipped_file(name: str = CHECKPOINT_NAME) -> Path:
    """The shipped file ``name`` (default the generator's ``composer.pt``).

    The path is returned even when the file is missing (callers report that), and then it
    points at the folder beside the ``composer`` package.
    """
    return _from_package(name) or (_SIBLING / name)
