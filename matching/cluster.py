"""Run one task per file on this machine or on a Dask cluster, and cache heavy models per worker.

Shared by batch scoring (``composer.pipeline.batch``) and catalogue indexing
(``matching.library.store``); it lives in ``matching`` because ``matching`` may not import
``composer``.

Where tasks run (:func:`run_tasks`):

- ``client=`` a :class:`distributed.Client`: on that cluster, left open afterwards.
- ``scheduler="tcp://host:8786"``: connect to a running scheduler (``dask scheduler`` +
  ``dask worker ADDR``), disconnect afterwards.
- neither: a :class:`distributed.LocalCluster` on loopback, one single-threaded worker
  *process* per core (``workers=`` to override), closed afterwards. Processes, because
  decoding, analysis and generation hold the GIL for long stretches; a LocalCluster
  rather than a bare process pool, so that the local and the distributed runs are one
  code path (same futures, same per-worker cache, same retry of a task whose worker
  died) and a bug found on a laptop is the bug seen on the cluster.
- ``workers=0``: in this process, one task after another (debugging, tiny batches).

Results stream back to the calling process as they finish (:class:`TaskOutcome`,
finishing order); the caller does every write (manifest lines, library rows), so
workers only read. A task that raises gives an outcome with ``error`` set and never
stops the others; so does a file that kills its worker process every time it is tried
(Dask's ``KilledWorker``). A dying worker also fails the tasks queued beside it, so every
task that comes back ``KilledWorker`` is rerun alone after the others: the innocent ones
then succeed, and only a task that kills its worker on its own is recorded as an error.
Losing the scheduler itself raises :class:`ClusterError`.

Heavy models: :func:`worker_cache` keeps one instance per key per worker process, so a
model loads once per worker, not once per task; :class:`Preload` is a worker plugin
that loads them as each worker starts.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Hashable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from analysis.errors import ParameterError, SoundtrackError

if TYPE_CHECKING:
    from distributed import Client

log = logging.getLogger(__name__)
T = TypeVar("T")

#: Seconds to wait for a remote scheduler to answer.
CONNECT_TIMEOUT = 20.0
#: Seconds an address that refuses connections is tried before it is called unreachable: a scheduler
#: started a moment before the batch (``dask scheduler &`` in the same script) takes a second or two to
#: listen. One that accepts gets the whole :data:`CONNECT_TIMEOUT`.
REFUSED_FOR = 5.0

#: Close timeout (seconds) for the nannies of a finished batch's local cluster: each worker process gets 0.8 of it
#: (24 s) to exit before its nanny kills it. A plain close gives it 4 s (0.8 of the nanny's default 5), and a worker
#: that had loaded librosa, numba and torch often took longer on a busy machine: the batch ended with Dask's
#: "Worker process still alive after 4.0 seconds, killing".
CLOSE_TIMEOUT = 30.0
#: Seconds a finished local batch waits for its scheduler to let go of the delivered results before its
#: workers are closed (:func:`_wait_released`); it takes some milliseconds.
RELEASE_TIMEOUT = 2.0

#: Run by each worker process of a local cluster as it starts (a Dask preload given as its text): Ctrl-C in
#: the terminal reaches the whole process group, and the client alone should answer it, by closing the
#: cluster. A worker left to answer it too died printing some 15 lines of traceback.
IGNORE_CTRL_C = "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\n"


class ClusterError(SoundtrackError):
    """The Dask scheduler could not be reached or was lost during a batch."""


# --------------------------------------------------------------------------- worker cache

_CACHE: dict[Hashable, Any] = {}
_LOADS: Counter[str] = Counter()
_LOCK = threading.RLock()


def worker_cache(key: Hashable, factory: Callable[[], T]) -> T:
    """The object cached under ``key`` in this process, built by ``factory()`` on first use.

    In a Dask worker process the cache lives as long as the worker, so a model built
    here loads once per worker however many tasks use it. ``factory`` must not be
    cheap to call twice by accident: the lock makes concurrent first uses build once.
    """
    with _LOCK:
        if key not in _CACHE:
            _CACHE[key] = factory()
            _LOADS[repr(key)] += 1
        return _CACHE[key]


def cache_info() -> dict[str, int]:
    """How many times each key was loaded in this process (1 each when the cache works)."""
    with _LOCK:
        return dict(_LOADS)


def worker_name() -> str:
    """``host:pid`` of this process: which worker ran a task."""
    return f"{socket.gethostname()}:{os.getpid()}"


try:  # distributed is a declared dependency; keep the import error readable if it is missing
    from distributed import WorkerPlugin as _WorkerPluginBase
except ImportError:  # pragma: no cover
    _WorkerPluginBase = object  # type: ignore[assignment,misc]


class Preload(_WorkerPluginBase):  # type: ignore[misc,valid-type]
    """Worker plugin: call each loader once when a worker starts (and on workers that join later).

    ``loaders`` are importable module-level functions that fill :func:`worker_cache`,
    so the first task on a worker does not pay for model loading. A loader that fails
    is logged, not fatal: the task that needs the model will raise a clear error itself.
    """

    idempotent = True

    def __init__(self, loaders: Sequence[Callable[[], object]]) -> None:
        self.loaders = tuple(loaders)

    def setup(self, worker: object) -> None:
        for load in self.loaders:
            try:
                load()
            except Exception as err:
                log.warning("preloading %s on %s failed: %s", getattr(load, "__name__", load), worker, err)


def readonly_url(library: str) -> str:
    """A database URL that opens ``library`` read-only: workers read the catalogue, only the client writes.

    An SQLite file path becomes an SQLite URI with ``mode=ro`` (``immutable=1`` on read-only media;
    :func:`matching.db.sqlite_url`), so any write fails with "attempt to write a readonly database"; a
    database URL is returned as is, since read-only there is a matter of the account's grants.
    """
    if "://" in library:
        return library
    from pathlib import Path

    from matching.db import sqlite_url

    return sqlite_url(Path(library).expanduser(), read_only=True)


# --------------------------------------------------------------------------- clients


def default_workers() -> int:
    """Worker processes for a local cluster: the cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not on Linux
        return max(1, os.cpu_count() or 1)


def get_client(scheduler: str | None = None, workers: int | None = None, *, timeout: float = CONNECT_TIMEOUT) -> Client:
    """A Dask client: connected to ``scheduler`` if given, else owning a new loopback LocalCluster.

    The local cluster has ``workers`` single-threaded worker processes (default: one per
    core), no dashboard, a random scheduler port and a random port for the scheduler's HTTP routes
    (nothing fixed to collide with), all on loopback;
    ``client.close()`` shuts it down. ``timeout`` (seconds) bounds the wait for a remote scheduler.
    """
    from distributed import Client

    if scheduler is not None:
        if workers is not None:
            log.info("`workers` (%s) is ignored with a scheduler: the cluster has its own", workers)
        refused = _refuses(scheduler, min(REFUSED_FOR, timeout))
        if refused:
            raise ClusterError(f"cannot reach the Dask scheduler at {scheduler!r} ({refused})")
        silent = _silent(scheduler, timeout)
        if silent:
            raise ClusterError(f"no Dask scheduler answers at {scheduler!r} ({silent})")
        try:
            return Client(scheduler, timeout=timeout, set_as_default=False)
        except (OSError, TimeoutError) as err:
            raise ClusterError(f"cannot reach the Dask scheduler at {scheduler!r} ({err})") from None
    n = default_workers() if workers is None else workers
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ParameterError(f"`workers` must be a whole number >= 1 for a local cluster (received {workers!r})")
    if not logging.getLogger().isEnabledFor(logging.INFO):
        # `silence_logs` quiets distributed's own handler, but its INFO records (some 45 lines of
        # starting and closing nannies and workers per batch) still reach the application's handler.
        logging.getLogger("distributed").setLevel(logging.WARNING)
    return Client(
        n_workers=n,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        scheduler_port=0,
        dashboard_address=None,
        # the scheduler serves its HTTP routes (health, metrics) even without a dashboard, on 8787
        # unless told otherwise: a second batch running beside the first then warned of a taken port
        scheduler_kwargs={"dashboard": False, "dashboard_address": "127.0.0.1:0"},
        silence_logs=logging.ERROR,
        set_as_default=False,
        preload=[IGNORE_CTRL_C],  # the nanny gives it to every worker it starts, a restarted one too
    )


def _refuses(scheduler: str, within: float) -> str | None:
    """Why a TCP ``scheduler`` address refused every connection for ``within`` seconds (nothing listens
    there), or None: it accepted one, or it is not a plain host:port to try (Dask then tries it itself).
    Dask retries a refused address until its whole timeout has passed."""
    from distributed.comm.addressing import parse_address, parse_host_port

    try:
        scheme, location = parse_address(scheduler)
        host, port = parse_host_port(location)
    except (TypeError, ValueError):
        return None
    if scheme not in ("tcp", "tls"):
        return None
    deadline = time.monotonic() + within
    while True:
        try:
            with socket.create_connection((host, port), timeout=max(0.1, deadline - time.monotonic())):
                return None
        except ConnectionRefusedError:
            if time.monotonic() >= deadline:
                return f"connection refused: nothing listens at {host}:{port}"
            time.sleep(0.1)
        except OSError:  # slow, unresolved or unroutable: Dask gets its whole timeout and says why
            return None


def _silent(scheduler: str, timeout: float) -> str | None:
    """Why ``scheduler`` sent no Dask handshake within ``timeout`` seconds of a connection, or None: it
    answered, or it failed some other way (the Client then says how).

    Dask's ``connect`` waits for the other side's handshake with no limit at all, so a Client pointed at
    an address that accepts connections and stays silent (a stuck scheduler, another program on the port,
    a proxy) never returned: a batch waited over 5 minutes for it.
    """
    import asyncio

    from distributed.comm import connect
    from distributed.security import Security

    async def shake() -> None:
        comm = await connect(scheduler, timeout=timeout, **Security().get_connection_args("client"))
        await comm.close()

    try:
        asyncio.run(asyncio.wait_for(shake(), timeout))
    except TimeoutError:
        return f"it took a connection but sent no Dask handshake within {timeout:g} s"
    except Exception as err:  # refused meanwhile, a bad address, a running event loop: left to the Client
        log.debug("handshake with %s: %s", scheduler, err)
    return None


@contextmanager
def cluster_session(
    client: Client | None = None, scheduler: str | None = None, workers: int | None = None
) -> Iterator[Client]:
    """Yield ``client`` as is, or a client from :func:`get_client` that is closed afterwards."""
    if client is not None:
        yield client
        return
    own = None
    try:
        with _ctrl_c_held(scheduler is None):  # a Ctrl-C while the cluster starts is raised once it has started
            own = get_client(scheduler=scheduler, workers=workers)
        yield own
    except BaseException:  # Ctrl-C, or the caller stopped early: the running tasks are abandoned
        if scheduler is None and own is not None:
            _stop_local_workers(own)
        raise
    else:
        if scheduler is None:
            _wait_released(own, timeout=RELEASE_TIMEOUT)
            _close_nannies(own, timeout=CLOSE_TIMEOUT, reason="batch-finished")
    finally:
        if own is not None:
            own.close()


def _held_tasks(dask_scheduler: Any) -> int:
    """How many tasks the scheduler still keeps (run on the scheduler by :func:`_wait_released`)."""
    return len(dask_scheduler.tasks)


def _wait_released(client: Client, *, timeout: float) -> None:
    """Wait up to ``timeout`` seconds for the scheduler to let go of the finished tasks' results.

    The client lets go of a result as it drops its future, in a message sent a moment later; workers
    closed before the scheduler had it made it warn that their removal "caused the cluster to lose already
    computed task(s), which will be recomputed elsewhere" (4 of 5 finished local batches), of results that
    had been delivered and nothing would recompute.
    """
    deadline = time.monotonic() + timeout
    try:
        while client.run_on_scheduler(_held_tasks) and time.monotonic() < deadline:
            time.sleep(0.02)
    except Exception as err:  # the close that follows is what matters
        log.debug("waiting for the scheduler to release the results failed: %s", err)


@contextmanager
def _ctrl_c_held(local: bool) -> Iterator[None]:
    """Hold Ctrl-C while a ``local`` cluster starts, and raise it (KeyboardInterrupt) once the start is over.

    Pressed while the cluster started, it broke off the start half-way: the batch said "interrupted", then
    "Exception ignored in atexit callback: <function close_clusters ...> ... AssertionError: Status.init" as
    the half-made cluster was closed at exit. Now the start finishes (or fails: its workers got the Ctrl-C
    too) and the caller stops the cluster it has. A SIGTERM that the program turns into an exception
    (``soundtrack batch``) is held the same way; one left to its default action ends the process as before.
    """
    import signal

    if not local or threading.current_thread() is not threading.main_thread():
        yield
        return
    # Python's Ctrl-C handler, or one of the program's own; not SIG_DFL or SIG_IGN, whose effect stays as it is.
    handlers = {sig: h for sig in (signal.SIGINT, signal.SIGTERM) if callable(h := signal.getsignal(sig))}
    arrived: list[int] = []
    for sig in handlers:
        signal.signal(sig, lambda signum, _frame: arrived.append(signum))
    try:
        yield
    except Exception:
        if arrived:  # "Nanny failed to start": a worker that was still importing Dask took the Ctrl-C as well
            handlers[arrived[0]](arrived[0], None)  # raises KeyboardInterrupt, or what the program's own raises
        raise
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    if arrived:
        handlers[arrived[0]](arrived[0], None)


def _stop_local_workers(client: Client, *, grace: float = 0.5) -> None:
    """Stop the worker processes of this call's own local cluster within about ``grace`` seconds.

    A plain close lets each busy worker finish its task for 4 s before its nanny kills it, and the
    worker then logs a traceback when its heartbeat finds the scheduler gone. Closing the nannies
    first, with a short grace, kills them while the scheduler is still up. Their "still alive, killing"
    warnings, and the scheduler's about results lost with them (the tasks were cancelled), are expected
    here and kept quiet.
    """
    quiet = [logging.getLogger(f"distributed.{name}") for name in ("nanny", "scheduler")]
    levels = [logger.level for logger in quiet]
    for logger in quiet:
        logger.setLevel(logging.ERROR)
    try:
        _close_nannies(client, timeout=grace, reason="batch-interrupted")
    finally:
        for logger, level in zip(quiet, levels, strict=True):
            logger.setLevel(level)


def _close_nannies(client: Client, *, timeout: float, reason: str) -> None:
    """Close the nannies of this call's own local cluster (and so their worker processes), each given
    ``timeout`` seconds before it kills its worker; the scheduler is still up meanwhile."""
    import asyncio

    nannies = list(getattr(client.cluster, "workers", {}).values())

    async def close_all() -> None:
        await asyncio.gather(*(n.close(timeout=timeout, reason=reason) for n in nannies), return_exceptions=True)

    try:
        client.cluster.sync(close_all)
    except Exception as err:  # the plain close that follows still stops them
        log.debug("closing the local workers failed: %s", err)


# --------------------------------------------------------------------------- tasks


@dataclass(frozen=True)
class TaskOutcome:
    """One finished task: its input, the task's return value or an error sentence, time and worker."""

    item: Any
    value: Any = None
    error: str | None = None
    seconds: float = 0.0
    worker: str = ""

    @property
    def ok(self) -> bool:
        return self.error is None


def describe_error(err: BaseException) -> str:
    """One sentence for a manifest: the product's own message, or the exception type and message."""
    if isinstance(err, SoundtrackError):
        return str(err)
    text = str(err).strip().splitlines()[0] if str(err).strip() else ""
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


def run_one(fn: Callable[[Any], Any], item: Any) -> TaskOutcome:
    """Run ``fn(item)`` and catch any error into the outcome (this is what a worker executes)."""
    start = time.perf_counter()
    try:
        value, error = fn(item), None
    except Exception as err:
        log.debug("task %s failed", item, exc_info=True)
        value, error = None, describe_error(err)
    return TaskOutcome(item, value, error, time.perf_counter() - start, worker_name())


@contextmanager
def _progress(total: int, desc: str, unit: str, enabled: bool) -> Iterator[Any]:
    """A tqdm bar on stderr; log lines written meanwhile go above it instead of through it."""
    from tqdm import tqdm
    from tqdm.contrib.logging import logging_redirect_tqdm

    with tqdm(total=total, desc=desc, unit=unit, disable=not enabled, file=sys.stderr, dynamic_ncols=True) as bar:
        if not enabled:
            yield bar
            return
        with logging_redirect_tqdm():
            yield bar


def run_tasks(
    fn: Callable[[Any], Any],
    items: Sequence[Any],
    *,
    client: Client | None = None,
    scheduler: str | None = None,
    workers: int | None = None,
    progress: bool = True,
    desc: str = "tasks",
    unit: str = "file",
    preload: Sequence[Callable[[], object]] = (),
) -> Iterator[TaskOutcome]:
    """Yield one :class:`TaskOutcome` per item as tasks finish (see the module docstring for where).

    ``items`` are any picklable values (paths, small job records); ``fn`` must be
    picklable for a cluster (a module-level function, or a :func:`functools.partial`
    of one). ``preload`` loaders run once per worker before
    its first task. Closing the generator early (``break``, Ctrl-C) cancels the tasks
    not yet finished and closes a cluster this call started.
    """
    items = list(items)
    if workers == 0 and client is None and scheduler is None:
        yield from _run_inline(fn, items, progress=progress, desc=desc, unit=unit, preload=preload)
        return
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 0):
        raise ParameterError(f"`workers` must be a whole number >= 0 (received {workers!r})")
    if not items:
        return
    with cluster_session(client, scheduler, workers) as cl:
        yield from _run_dask(cl, fn, items, progress=progress, desc=desc, unit=unit, preload=preload)


def _run_inline(
    fn: Callable[[Any], Any],
    items: list[Any],
    *,
    progress: bool,
    desc: str,
    unit: str,
    preload: Sequence[Callable[[], object]],
) -> Iterator[TaskOutcome]:
    Preload(preload).setup(worker="this process")
    with _progress(len(items), desc, unit, progress) as bar:
        for item in items:
            outcome = run_one(fn, item)
            bar.update(1)
            yield outcome


def _run_dask(
    client: Client,
    fn: Callable[[Any], Any],
    items: list[Any],
    *,
    progress: bool,
    desc: str,
    unit: str,
    preload: Sequence[Callable[[], object]],
) -> Iterator[TaskOutcome]:
    from distributed import as_completed
    from distributed.scheduler import KilledWorker

    if preload:
        client.register_plugin(Preload(preload), name=f"soundtrack-preload-{abs(hash(tuple(preload)))}")
    # pure=False: two items never share a key, and a rerun is never served a stale result.
    futures = {client.submit(run_one, fn, item, pure=False): item for item in items}
    suspects: list[Any] = []
    finished = False
    try:
        with _progress(len(items), desc, unit, progress) as bar:
            for future in as_completed(list(futures), loop=client.loop):
                item = futures.pop(future)
                try:
                    outcome = _result(future, item)
                except KilledWorker:
                    # Its worker died under it, but a dying worker also fails the tasks
                    # queued beside it: rerun it alone once the others are done.
                    suspects.append(item)
                    continue
                bar.update(1)
                yield outcome
            for item in suspects:
                future = client.submit(run_one, fn, item, pure=False)
                futures[future] = item  # cancelled in `finally` if the caller stops here
                try:
                    outcome = _result(future, item)
                except KilledWorker as err:
                    # Alone, so its own doing: a file that crashes the decoder or runs it out of memory.
                    error = f"the task killed its worker process, also when run alone ({err})"
                    outcome = TaskOutcome(item, None, error)
                del futures[future]
                bar.update(1)
                yield outcome
        finished = True
    except KeyboardInterrupt:
        yield from _finished_already(futures)  # kept, not lost with the workers the interrupt stops
        raise
    finally:
        if not finished and futures:
            client.cancel(list(futures))


def _finished_already(futures: dict[Any, Any]) -> Iterator[TaskOutcome]:
    """The outcomes of the tasks in ``futures`` that have finished but were not yet taken, taken out of it."""
    for future in [f for f in futures if f.status == "finished"]:
        item = futures.pop(future)
        try:
            outcome = future.result(timeout=CONNECT_TIMEOUT)
        except Exception as err:  # its worker went meanwhile: the clip runs again next time
            log.debug("the finished task %s could not be fetched: %s", item, err)
            continue
        future.release()
        yield outcome


def _result(future: Any, item: Any) -> TaskOutcome:
    """The task's outcome; ``KilledWorker`` passes through, any other failure means the cluster is lost."""
    from distributed.scheduler import KilledWorker

    try:
        return future.result()
    except KilledWorker:
        raise
    except Exception as err:
        raise ClusterError(f"lost the Dask cluster while running {item}: {describe_error(err)}") from err
