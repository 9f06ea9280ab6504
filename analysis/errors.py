"""One small error hierarchy shared by every package of the product.

``analysis`` sits at the bottom of the dependency graph, so the errors live here and
``matching``/``composer`` re-raise the same types. Messages name the argument or file
and echo what was received, so a user can act on them.
"""

from __future__ import annotations

import errno
import numbers
import os
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


def is_number(value: object) -> bool:
    """An int, float or NumPy number, not a bool (``True`` passes ``isinstance(x, int)``)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_seed(seed: object) -> int:
    """``seed`` as a Python int, or a :class:`ParameterError` naming it. A NumPy integer is converted, so a
    ``np.uint8`` seed does not overflow where an offset is added to it (``seed + 7919`` raised NumPy's
    OverflowError from the arranger)."""
    if not isinstance(seed, numbers.Integral) or isinstance(seed, bool) or seed < 0:
        raise ParameterError(f"`seed` must be a non-negative integer (received {seed!r})")
    return int(seed)


def as_path(value: object, name: str = "path") -> Path:
    """``value`` as a :class:`Path`, or a :class:`ParameterError` naming ``name`` when it is not a path
    (``analyze_video(None)`` should not surface as pathlib's TypeError)."""
    if isinstance(value, str | os.PathLike) and str(value):
        return Path(value)
    raise ParameterError(f"`{name}` must be a path, a str or os.PathLike (received {value!r})")


def make_folder(folder: str | os.PathLike, *, what: str = "output folder") -> Path:
    """``folder``, created with its parents; a :class:`MediaError` naming it (as ``what``) when it cannot be
    (a file in the way, no permission, a read-only file system)."""
    path = Path(folder)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise MediaError(path, f"cannot create the {what} ({err.strerror or err})") from None
    return path


def output_file(value: object, name: str = "path") -> Path:
    """``value`` as a file path to write: a :class:`ParameterError` naming ``name`` when it is not a path, a
    :class:`MediaError` when a folder is in its place, its folder created (:func:`make_folder`)."""
    path = as_path(value, name)
    if path.is_dir():
        raise MediaError(path, "is a directory, expected a file path to write")
    make_folder(path.parent, what="folder")
    return path


def not_found(path: Path) -> MediaError:
    """The error for a ``path`` that names nothing readable: a link says where it points, as a studio's
    folder of links to clips on another volume is broken by that volume going away, not by a missing file."""
    if path.is_symlink():
        try:
            path.resolve(strict=True)
        except RuntimeError:  # Python < 3.13 on a loop
            return MediaError(path, "is a link that loops back on itself")
        except OSError as err:
            if err.errno == errno.ELOOP:
                return MediaError(path, "is a link that loops back on itself")
            return MediaError(path, f"is a link to {os.readlink(path)}, which does not exist")
    return MediaError(path, "file not found")
