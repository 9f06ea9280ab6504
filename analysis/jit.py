"""librosa, loaded once per process with its numba kernels built under a lock that every process shares.

librosa builds its generalised ufuncs (zero crossings, pitch interpolation, local maxima, peak
picking) with numba when their modules are imported, and keeps them in numba's on-disk cache.
numba writes each such kernel as two files. When two processes build the same kernels at once,
they can write two files that do not match (numba issue #10128), and from then on every process
that loads them dies with a segmentation fault. On a fresh install, parallel work triggers it: the
worker processes of batch scoring and of indexing, or two commands started together. Measured on this
project's 2-core machine (four analyses started a few tenths of a second apart on fresh caches, then
one more): without the lock, 2 of 11 tries left a cache on which the next run crashed (rc 139), as
every later run would until the files were deleted; with it, none of 12.

:func:`load_librosa` therefore imports the modules that hold those kernels while holding an
exclusive file lock (``fcntl.flock``) in the temporary folder: the first process builds and writes
the kernels, the others wait and then read finished files. Later calls in the same process cost
nothing. Every module that imports librosa calls it instead (``tests/test_jit.py`` checks that the
kernels the product loads are all in :data:`KERNEL_MODULES`).
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

from analysis.caches import cached

log = logging.getLogger(__name__)

#: librosa's modules whose numba gufuncs the product loads (``librosa.beat`` has more; nothing here uses it).
KERNEL_MODULES = ("librosa.core.audio", "librosa.core.pitch", "librosa.util.utils")
LOCK = Path(tempfile.gettempdir()) / "soundtrack-librosa-kernels.lock"


@contextmanager
def kernel_lock(path: Path = LOCK) -> Iterator[bool]:
    """Hold the exclusive lock on ``path``; yields False (and holds nothing) where it cannot be taken."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock, as before
        yield False
        return
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as err:  # e.g. another user's lock file: go on without, as before
        log.warning("cannot open the numba kernel lock %s (%s); building without it", path, err)
        yield False
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield True
    finally:
        os.close(fd)  # closing releases the lock


@cached("librosa", maxsize=1)
def load_librosa() -> ModuleType:
    """The ``librosa`` module, its numba kernels built or read under :func:`kernel_lock` (once per process)."""
    import importlib

    import librosa

    with kernel_lock():
        for name in KERNEL_MODULES:
            importlib.import_module(name)
    return librosa
