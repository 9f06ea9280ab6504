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
exclusive file lock (``fcntl.flock``) kept with the compiled kernels (:func:`lock_for`): the first process
builds and writes the kernels, the others wait and then read finished files. Kernels that numba compiles at
their first call (the ranking's) are built the same way, by :func:`build_once` on tiny data. Later calls
in the same process cost nothing. Every module that imports librosa calls it instead
(``tests/test_jit.py`` checks that the
kernels the product loads are all in :data:`KERNEL_MODULES`). The lock is re-entrant (a thread that holds it
may take it again), and waiting for another process ends after :data:`LOCK_TIMEOUT` with
:class:`KernelLockTimeout` naming the holder.
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

from analysis.caches import cached
from analysis.errors import SoundtrackError

log = logging.getLogger(__name__)

#: librosa's modules whose numba gufuncs the product loads (``librosa.beat`` has more; nothing here uses it).
KERNEL_MODULES = ("librosa.core.audio", "librosa.core.pitch", "librosa.util.utils")


class KernelLockTimeout(SoundtrackError):
    """Another process held the numba kernel lock longer than the wait allowed."""


#: Seconds :func:`kernel_lock` waits for another process: a cold build of every kernel takes one to two
#: minutes on a busy 2-core machine. A dead holder never counts: the system releases its lock at once.
LOCK_TIMEOUT = 600.0
#: Seconds between two tries to take a lock another process holds.
_POLL = 0.1
#: This process's hold: the thread lock that makes the lock re-entrant and the file descriptor of the outermost hold.
_THREADS = threading.RLock()
_HELD: dict[Path, int] = {}


@contextmanager
def kernel_lock(path: Path | None = None, *, timeout: float = LOCK_TIMEOUT) -> Iterator[bool]:
    """Hold the exclusive lock on ``path`` (default: librosa's, :func:`lock_for`); yields False (and holds
    nothing) where it cannot be taken.

    Re-entrant: a thread that holds it may take it again (a kernel built under it may load librosa, which takes
    it too). Another process's hold is waited for ``timeout`` seconds at most, then :class:`KernelLockTimeout`
    says which process holds it.
    """
    path = lock_for("librosa") if path is None else path
    if not _THREADS.acquire(timeout=timeout):
        raise KernelLockTimeout(f"waited {timeout:.0f} s for another thread building numba kernels in this process")
    try:
        if path in _HELD:  # re-entered: this process holds it already
            yield True
            return
        fd = _take(path, timeout)
        if fd is None:
            yield False
            return
        _HELD[path] = fd
        try:
            yield True
        finally:
            del _HELD[path]
            os.close(fd)  # closing releases the lock
    finally:
        _THREADS.release()


def _take(path: Path, timeout: float) -> int | None:
    """A descriptor of ``path`` holding its exclusive ``flock`` (None where no lock can be had: run without)."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock, as before
        return None
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as err:  # e.g. another user's lock file: go on without, as before
        log.warning("cannot open the numba kernel lock %s (%s); building without it", path, err)
        return None
    deadline = time.monotonic() + timeout
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if time.monotonic() >= deadline:
                holder = _holder(fd)
                os.close(fd)
                raise KernelLockTimeout(
                    f"waited {timeout:.0f} s for the numba kernel lock {path}, held by {holder} building "
                    "librosa's and the ranking's kernels; end that process if it is stuck"
                ) from None
            time.sleep(_POLL)
    try:  # name the holder for a process that times out waiting
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
    except OSError:  # another user's file opened read-write but not truncatable: the name is only a courtesy
        pass
    return fd


def _holder(fd: int) -> str:
    try:
        pid = os.pread(fd, 32, 0).decode().strip()
    except (OSError, UnicodeDecodeError):
        pid = ""
    return f"process {pid}" if pid.isdigit() else "another process"


_BUILT: set[str] = set()


def lock_for(name: str) -> Path:
    """The lock file of kernel group ``name``, kept with the compiled kernels it guards: in ``NUMBA_CACHE_DIR``
    where that is set (read now), else in this user's ``~/.cache/soundtrack``. In the shared temporary
    folder, one lock had held back every user's and every cache's builds on the machine: a batch on a fresh
    cache of its own waited for other people's test runs. Groups write different files, so each has its
    own lock and two processes may build two groups at once."""
    folder = Path(os.environ.get("NUMBA_CACHE_DIR") or Path.home() / ".cache" / "soundtrack").expanduser()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:  # a home that cannot be written: the temporary folder, as before
        log.debug("cannot make %s (%s): the kernel lock goes to the temporary folder", folder, err)
        folder = Path(tempfile.gettempdir())
    return folder / f"soundtrack-{name}-kernels.lock"


def build_once(name: str, build: Callable[[], object], *, wait: bool = True) -> bool:
    """Call ``build`` (calls that compile the numba kernels of group ``name``) under the group's
    :func:`kernel_lock`, once per process; True once built. ``wait=False``: False at once, building nothing,
    while another process builds the group.

    A kernel that numba compiles at its first call (``@njit(cache=True)``) is written to the cache by
    whichever process calls it first: the worker processes of a batch all called the ranking's at once on
    a fresh cache, and each compiled them (some 40 s on the 2-core machine) and wrote the same files.
    Built here, the first process compiles and writes them; the others wait, then read them. ``build`` may
    call the function that calls this (its name is taken first); a ``build`` that fails is logged and
    left to the real call.
    """
    if name in _BUILT:
        return True
    try:
        with kernel_lock(lock_for(name), timeout=LOCK_TIMEOUT if wait else 0.0):
            if name in _BUILT:
                return True
            _BUILT.add(name)
            start = time.perf_counter()
            log.debug("building or reading the %s kernels", name)
            try:
                build()
            except Exception as err:  # the real call then compiles what it needs, or says what is wrong
                log.warning("building the %s kernels failed: %s", name, err)
            log.debug("%s kernels built or read in %.1f s", name, time.perf_counter() - start)
    except KernelLockTimeout:
        if wait:
            raise
        log.debug("another process is building the %s kernels", name)
        return False
    return True


def build_all(groups: Mapping[str, Callable[[], object]]) -> None:
    """:func:`build_once` every group, those no other process is building first: the workers of a batch
    on a fresh cache then build different groups side by side, and read the others' afterwards."""
    later = {name: build for name, build in groups.items() if not build_once(name, build, wait=False)}
    for name, build in later.items():
        build_once(name, build)


def librosa_kernels() -> None:
    """Import librosa's modules that build numba kernels (:data:`KERNEL_MODULES`)."""
    import importlib

    for name in KERNEL_MODULES:
        importlib.import_module(name)


@cached("librosa", maxsize=1)
def load_librosa() -> ModuleType:
    """The ``librosa`` module, its numba kernels built or read under :func:`kernel_lock` (once per process)."""
    import librosa

    build_once("librosa", librosa_kernels)
    return librosa
