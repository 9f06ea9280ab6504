"""Parallel, resumable indexing of many files into a :class:`matching.Library`.

Checksums are computed here first, so files already catalogued are never analysed
again (that is what makes an interrupted run resume). The analysis of each new file
runs in a process pool (or on a Dask client) through :func:`analyze_one`, and the
parent stores each result as it arrives, one transaction per track.

The library follows the folder as a user edits it: known bytes found at a new path whose
old file is gone are the same track moved (the record points at the new path); new bytes at
a path the library already holds are that track edited (it is analysed again in place,
keeping its id, title, tags and ratings).
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from analysis.errors import MediaError, SoundtrackError
from matching.library.records import TrackRecord

log = logging.getLogger(__name__)
#: ``(path, fraction of that file done, stage)``: a file's progress as its analysis reports it.
_Tick = Callable[[str, float, str], None]


class TrackStore(Protocol):
    """What indexing needs of a library (:class:`matching.Library` is one)."""

    hop: float

    def by_checksum(self, checksum: str) -> TrackRecord | None: ...

    def at_paths(self, paths: Sequence[str]) -> dict[str, TrackRecord]: ...

    def store_new(self, path: Path, analysis: Any, *, checksum: str, tags: tuple[str, ...],
                  licence: str | None) -> tuple[TrackRecord, bool]: ...

    def update(self, track_id: int, path: str | Path, analysis: Any, *, checksum: str) -> TrackRecord: ...

    def relocate(self, track_id: int, path: str | Path) -> TrackRecord: ...


@dataclass(frozen=True)
class Skipped:
    """A file that was not indexed, and why (in :attr:`IndexReport.warned`: a file indexed, and what its
    analysis warned of)."""

    path: str
    reason: str


@dataclass(frozen=True)
class IndexReport:
    """What one ``add_folder`` call did."""

    added: tuple[TrackRecord, ...]
    #: Files whose bytes were already in the library (not analysed again).
    existing: int
    skipped: tuple[Skipped, ...]
    seconds: float
    #: Tracks whose file changed on disk, analysed again in place.
    updated: tuple[TrackRecord, ...] = ()
    #: Tracks found at a new path (their old file gone), now pointing there.
    moved: tuple[TrackRecord, ...] = ()
    #: Files indexed whose analysis warned of something (a file cut off, damaged packets skipped).
    warned: tuple[Skipped, ...] = ()
    #: Files holding the same bytes as another path of the library (counted in ``existing``, stored once).
    copies: tuple[Skipped, ...] = ()

    @property
    def tracks_per_second(self) -> float:
        """Newly analysed and stored tracks per wall-clock second."""
        return len(self.added) / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "added": [r.to_dict() for r in self.added],
            "updated": [r.to_dict() for r in self.updated],
            "moved": [r.to_dict() for r in self.moved],
            "existing": self.existing,
            "skipped": [s.__dict__ for s in self.skipped],
            "warned": [w.__dict__ for w in self.warned],
            "copies": [c.__dict__ for c in self.copies],
            "seconds": round(self.seconds, 3),
            "tracks_per_second": round(self.tracks_per_second, 3),
        }


@dataclass(frozen=True)
class _Outcome:
    path: str
    analysis: Any = None
    error: str | None = None
    warnings: tuple[str, ...] = ()


def analyze_one(
    analyzer: Callable[..., Any], path: str, hop: float, progress: Callable[[float, str], None] | None = None,
    *, quiet: bool = False,
) -> _Outcome:
    """Analyse one file; any failure becomes a reason string (runs in a worker). ``progress`` hears the
    analysis's ``(fraction done, stage)`` when ``analyzer`` takes a ``progress`` argument. What the analysis
    warns of is kept in the outcome, and with ``quiet`` not logged as well (a caller that shows the report)."""
    hears = progress is not None and _takes_progress(analyzer)
    with _warnings_kept(quiet) as warned:
        try:
            analysis = analyzer(Path(path), hop=hop, progress=progress) if hears else analyzer(Path(path), hop=hop)
        except MediaError as err:
            return _Outcome(path, error=err.problem)
        except (SoundtrackError, OSError, ValueError, RuntimeError, EOFError) as err:
            return _Outcome(path, error=f"{type(err).__name__}: {err}")
    return _Outcome(path, analysis=analysis, warnings=tuple(m.removeprefix(f"{path}: ") for m in warned))


class _Kept(logging.Handler):
    """Warnings logged by this thread (a server analyses other files in other threads meanwhile)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []
        self.thread = threading.get_ident()

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread == self.thread:
            self.messages.append(record.getMessage())

    def hidden(self, record: logging.LogRecord) -> bool:
        """A filter for the root logger's handlers: False for the records this handler keeps."""
        return not (record.levelno >= logging.WARNING and record.thread == self.thread
                    and record.name.split(".")[0] == "analysis")


@contextlib.contextmanager
def _warnings_kept(quiet: bool) -> Iterator[list[str]]:
    """The warnings the analysis logs meanwhile; with ``quiet`` not printed by the root logger's handlers
    as well (its lesser records, as ``-v`` shows them, still are)."""
    logger, kept = logging.getLogger("analysis"), _Kept()
    shown = list(logging.getLogger().handlers) if quiet else []
    logger.addHandler(kept)
    for handler in shown:
        handler.addFilter(kept.hidden)
    try:
        yield kept.messages
    finally:
        logger.removeHandler(kept)
        for handler in shown:
            handler.removeFilter(kept.hidden)


def _takes_progress(analyzer: Callable[..., Any]) -> bool:
    try:
        return "progress" in inspect.signature(analyzer).parameters
    except (TypeError, ValueError):  # a callable without a signature Python can read
        return False


#: Where a pool worker sends its file's progress (set in each worker by :func:`_report_to`).
_progress_queue: Any = None


def _report_to(queue: Any) -> None:
    """A pool worker's initializer: progress goes to ``queue``, and Ctrl-C in the terminal, which reaches
    every process, is left to the parent to answer."""
    global _progress_queue
    _progress_queue = queue
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _analyze_reporting(analyzer: Callable[..., Any], path: str, hop: float, quiet: bool) -> _Outcome:
    """:func:`analyze_one` in a pool worker, its progress sent to the parent as ``(path, fraction, stage)``."""
    queue = _progress_queue
    return analyze_one(analyzer, path, hop, None if queue is None else lambda f, m: queue.put((path, f, m)),
                       quiet=quiet)


#: How often (s) the parent looks for the workers' progress while it waits for a file to finish.
POLL_S = 0.5


def _pooled(
    analyzer: Callable[..., Any], paths: Sequence[str], hop: float, workers: int, tick: _Tick, quiet: bool
) -> Iterator[_Outcome]:
    """Each file's outcome from a process pool, in finishing order, hearing the workers' progress meanwhile
    (a pipe each worker writes to as it goes, so a file's reports are there before its result).

    Stopped early (Ctrl-C, the caller's error), the pool's processes are ended at once: the pool's own
    shutdown waited for the analyses already started, and at exit for every one still queued.
    """
    context = multiprocessing.get_context()
    queue = context.SimpleQueue()
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_report_to, initargs=(queue,))
    pending: set[Future[_Outcome]] = {pool.submit(_analyze_reporting, analyzer, p, hop, quiet) for p in paths}
    try:
        while pending:
            done, pending = wait(pending, timeout=POLL_S, return_when=FIRST_COMPLETED)
            while not queue.empty():
                tick(*queue.get())
            yield from (fut.result() for fut in done)
    except BaseException:
        for proc in list((getattr(pool, "_processes", None) or {}).values()):
            proc.terminate()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _results(
    analyzer: Callable[..., Any], paths: Sequence[str], hop: float, workers: int, client: Any, tick: _Tick,
    quiet: bool = False,
) -> Iterator[_Outcome]:
    if client is not None:
        # A distributed.Client or a scheduler address; matching.cluster streams results in
        # finishing order and records a file that kills its worker instead of failing the run.
        from matching.cluster import run_tasks

        task = functools.partial(analyze_one, analyzer, hop=hop)
        address, dask_client = (client, None) if isinstance(client, str) else (None, client)
        for done in run_tasks(task, paths, client=dask_client, scheduler=address, progress=False, desc="indexing"):
            yield done.value if done.ok else _Outcome(done.item, error=done.error)
    elif workers <= 1 or len(paths) <= 1:
        for p in paths:
            yield analyze_one(analyzer, p, hop, functools.partial(tick, p), quiet=quiet)
    else:
        yield from _pooled(analyzer, paths, hop, workers, tick, quiet)


def analyze_files(
    library: TrackStore,
    files: Sequence[Path],
    *,
    analyzer: Callable[..., Any],
    workers: int | None,
    progress: bool | Callable[[float, str], None] | None,
    client: Any,
    tags: tuple[str, ...],
    licence: str | None,
    log_skips: bool = True,
) -> IndexReport:
    """See :meth:`matching.Library.add_folder`."""
    from analysis.media.hashing import content_hash

    t0 = time.perf_counter()
    skipped: list[Skipped] = []

    def skip(path: str | Path, reason: str) -> None:
        skipped.append(Skipped(str(path), reason))
        if log_skips:
            log.warning("skipped %s: %s", path, reason)

    todo: dict[str, str] = {}  # path -> checksum
    existing = 0
    moved: list[TrackRecord] = []
    hashed: list[tuple[Path, str]] = []
    for f in files:
        try:
            hashed.append((f, content_hash(f)))
        except MediaError as err:
            skip(f, err.problem)
    copies: dict[str, list[Path]] = {}
    for f, checksum in hashed:
        copies.setdefault(checksum, []).append(f)
    holder: dict[str, str] = {}  # checksum -> the path its record has (or will have)
    same: list[Skipped] = []
    for f, checksum in hashed:
        known = None if checksum in holder else library.by_checksum(checksum)
        if known is not None and moved_here(known, f):
            target = likeliest_copy(known.path, copies[checksum])
            moved.append(library.relocate(known.id, target))
            log.info("%s moved to %s", known.path, target)  # f, if not target, is a copy: counted there
            holder[checksum] = str(target.resolve())
        elif checksum in holder or known is not None:
            existing += 1
            holder.setdefault(checksum, known.path if known is not None else "")
        else:
            todo[str(f)] = checksum
            holder[checksum] = str(f.resolve())
        if str(f.resolve()) != holder[checksum]:
            same.append(Skipped(str(f), f"holds the same audio as {holder[checksum]}"))
    edited = library.at_paths(list(todo)) if todo else {}
    n_workers = min(4, os.cpu_count() or 1) if workers is None else int(workers)
    added: list[TrackRecord] = []
    updated: list[TrackRecord] = []
    warned: list[Skipped] = []
    bar = IndexProgress(len(todo), progress)
    try:
        for out in _results(analyzer, list(todo), library.hop, n_workers, client, bar.tick, not log_skips):
            bar.finished(out.path)
            if out.error is not None:
                skip(out.path, out.error)
                continue
            try:
                old = edited.get(str(Path(out.path).resolve()))
                if old is not None:  # the file at a known path has new bytes: the same track, edited
                    updated.append(library.update(old.id, out.path, out.analysis, checksum=todo[out.path]))
                else:
                    record, inserted = library.store_new(Path(out.path), out.analysis, checksum=todo[out.path],
                                                         tags=tags, licence=licence)
                    if inserted:
                        added.append(record)
                    else:  # another process catalogued the same bytes meanwhile: theirs is the record
                        existing += 1
            except MediaError as err:
                skip(out.path, err.problem)
                continue
            warned += [Skipped(out.path, w) for w in out.warnings]
    finally:
        bar.close()
    return IndexReport(tuple(added), existing, tuple(skipped), time.perf_counter() - t0, tuple(updated), tuple(moved),
                       tuple(warned), tuple(same))


class IndexProgress:
    """How far indexing got: whole tracks done plus the share done of each track in analysis, as its
    analysis reports it (a long recording moves the bar several times). Drawn as a tqdm bar on stderr
    (``progress`` True; None: when stderr is a terminal, as a log file would fill with redrawn bars), told
    to a ``(fraction, message)`` callback, or neither (False)."""

    def __init__(self, total: int, progress: bool | Callable[[float, str], None] | None) -> None:
        from tqdm import tqdm

        draw = progress is True or (progress is None and sys.stderr.isatty())

        self.total, self.done = total, 0
        self.partial: dict[str, float] = {}  # path -> share done, of the files in analysis
        self.ended: set[str] = set()
        self.callback = progress if callable(progress) else None
        self.bar = tqdm(total=total, desc="indexing", disable=not draw or not total,
                        bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.1f}/{total_fmt} tracks "
                                   "[{elapsed}<{remaining}{postfix}]")

    @property
    def share(self) -> float:
        """The summed share done of the files in analysis."""
        return sum(self.partial.values())

    def tick(self, path: str, fraction: float, message: str) -> None:
        """File ``path`` is ``fraction`` done, at stage ``message`` (ignored once it is finished: a pool
        worker's last report may come after its result)."""
        old = self.partial.get(path, 0.0)
        if path in self.ended or fraction < old:
            return
        self.partial[path] = min(fraction, 0.99)
        self._show(f"{Path(path).name}: {message}")

    def finished(self, path: str) -> None:
        self.done += 1
        self.partial.pop(path, None)
        self.ended.add(path)
        self._show(Path(path).name)

    def _show(self, message: str) -> None:
        now = self.done + self.share
        if self.callback is not None:
            self.callback(now / max(self.total, 1), message)
        self.bar.n = now
        self.bar.set_postfix_str(message, refresh=False)
        self.bar.refresh()

    def close(self) -> None:
        self.bar.close()


def likeliest_copy(old_path: str, copies: Sequence[Path]) -> Path:
    """Of the files holding a moved track's bytes, the one whose path ends most like its old one (the same
    name, then the same folder...): a moved folder that holds the same audio twice keeps each record on
    its own file. The first of ``copies`` where none is closer."""
    old = Path(old_path).parts[::-1]

    def shared(p: Path) -> int:
        parts = p.resolve().parts[::-1]
        return next((i for i, (a, b) in enumerate(zip(old, parts, strict=False)) if a != b), min(len(old), len(parts)))

    return max(copies, key=shared)  # max keeps the first of equals


def moved_here(known: TrackRecord, found: Path) -> bool:
    """Whether ``found`` holds a catalogued track's bytes because the track moved there: its
    stored file is gone. (With the stored file still there, ``found`` is a copy.)"""
    return known.path != str(found.resolve()) and not Path(known.path).is_file()
