"""Run a compiled kernel over parts of a range on every core, from plain Python threads.

The ranking kernels (:mod:`matching.ranking.dtw_kernels`, :mod:`matching.ranking.sketches`)
are serial Numba functions that release the GIL (``nogil=True``); this module splits
their work over a small pool of threads. Numba's own ``parallel=True`` would start an
OpenMP thread pool, and a process that has run OpenMP threads hangs in any child it
forks that uses OpenMP in turn (torch does): the library's process pool for indexing
forks. Python threads leave nothing behind in a fork.
"""

from __future__ import annotations

import itertools
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

#: Threads the kernels use (the cores this process may run on).
WORKERS = max(1, len(os.sched_getaffinity(0)))
#: Parts per thread: short ones balance kernels whose items differ in cost.
_PARTS_PER_WORKER = 8

_pool: ThreadPoolExecutor | None = None
_lock = threading.Lock()


def _executor() -> ThreadPoolExecutor:
    global _pool
    with _lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="rank-kernel")
        return _pool


def _forget_pool() -> None:
    global _pool
    _pool = None  # a forked child has none of the parent's threads: it starts its own


os.register_at_fork(after_in_child=_forget_pool)


def run_parts(kernel: Callable[[int, int], None], n: int, *, least: int = 1024) -> None:
    """Call ``kernel(lo, hi)`` over consecutive parts covering ``range(n)``, on every core.

    Parts hold at least ``least`` items; a range of fewer runs in this thread.
    """
    parts = min(WORKERS * _PARTS_PER_WORKER, n // max(1, least))
    if WORKERS == 1 or parts <= 1:
        if n > 0:
            kernel(0, n)
        return
    edges = [n * i // parts for i in range(parts + 1)]
    for future in [_executor().submit(kernel, a, b) for a, b in itertools.pairwise(edges)]:
        future.result()
