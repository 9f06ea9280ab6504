"""Argument types and names shared by the subcommands: paths that cannot pass for options, the
progress bar of long commands, and SIGTERM taken as an interrupt.

A file named ``-rf.mp4`` given as ``./-rf.mp4`` becomes ``Path("-rf.mp4")`` (pathlib
drops the ``./``), and a name derived from it (``-rf-score.mp4``) would reach FFmpeg
as an option. Every path the CLI takes is made absolute on the way in, and every output
name it derives from an input's name goes through :func:`safe_stem`.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from composer.output.names import safe_stem


def input_path(text: str) -> Path:
    """An argparse ``type``: the path made absolute (``~`` expanded, links kept)."""
    return Path(text).expanduser().absolute()


def duck_depth(text: str) -> float:
    """An argparse ``type``: the music's depth under speech (dB), refused outside the range the mix allows."""
    from analysis.errors import ParameterError
    from analysis.media.dialogue import MAX_DUCK_DB, MIN_DUCK_DB, check_duck_db

    try:
        return check_duck_db(float(text))
    except (ValueError, ParameterError):
        raise argparse.ArgumentTypeError(
            f"must be within {MIN_DUCK_DB:g} and {MAX_DUCK_DB:g} dB below the dialogue (received {text!r})") from None


def check_library(library: str) -> None:
    """A ``--library`` that a command only reads must exist: opening a mistyped SQLite path would make an
    empty database there. A database URL (``://``) is left to the database to refuse."""
    from analysis.errors import MediaError

    if "://" not in library and not Path(library).is_file():
        raise MediaError(library, "library database not found (`soundtrack index DIR --library FILE` makes one)")
    others = [] if "://" in library else _tables_without_tracks(Path(library))
    if others:  # opening it would have written the library's tables into another program's database
        shown = ", ".join(others[:5]) + (", ..." if len(others) > 5 else "")
        raise MediaError(library, f"is a database of something else, not a music library (its tables: {shown}; "
                                  "`soundtrack index DIR --library FILE` makes a library in a file of its own)")


def _tables_without_tracks(path: Path) -> list[str]:
    """The tables of the SQLite file ``path`` when it has some and no ``tracks`` table (read without writing
    anything); [] for a library, a file with no tables yet, or a file that is not SQLite (the library says so)."""
    import contextlib
    import sqlite3

    try:
        with contextlib.closing(sqlite3.connect(f"{path.absolute().as_uri()}?mode=ro", uri=True)) as conn:
            names = sorted(r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'"))
    except sqlite3.Error:
        return []
    return [] if "tracks" in names else names


def add_clip_sound(parser: argparse.ArgumentParser) -> None:
    """``--clip-sound``: what becomes of the clip's own sound under its new soundtrack; ``--duck``: how far
    the music sits under the clip's speech."""
    from analysis.media.dialogue import CLIP_SOUNDS, MAX_DUCK_DB, MIN_DUCK_DB, UNDER_DB

    parser.add_argument("--clip-sound", choices=CLIP_SOUNDS, default="auto",
                        help="the clip's own sound: auto (default) keeps its dialogue with the music ducked under "
                             "it and replaces a sound without speech; keep keeps any sound; replace drops it")
    parser.add_argument("--duck", type=duck_depth, default=UNDER_DB, metavar="DECIBELS", dest="duck_db",
                        help=f"music under speech: this many dB below the dialogue ({MIN_DUCK_DB:g} to "
                             f"{MAX_DUCK_DB:g}, default {UNDER_DB:g})")


def print_warnings(command: str, notes: Iterable[str]) -> None:
    """Each note on stderr as ``soundtrack COMMAND: warning: NOTE``, the way errors are said."""
    for note in notes:
        print(f"soundtrack {command}: warning: {note}", file=sys.stderr)


def counted(n: int, noun: str) -> str:
    """``"1 track"``, ``"3 tracks"``: the count with its noun, for report lines (the CLI's and the page's)."""
    return f"{n} {noun}" + ("" if n == 1 else "s")


def add_progress(parser: argparse.ArgumentParser) -> None:
    """``--no-progress``: no bar on stderr (there is none anyway when stderr is not a terminal)."""
    parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")


def wants_bar(args: argparse.Namespace) -> bool:
    """Whether a command draws progress bars: not asked not to, and stderr is a terminal (a log file
    would fill with redrawn bars)."""
    return not args.no_progress and sys.stderr.isatty()


@contextmanager
def progress_bar(desc: str, enabled: bool) -> Iterator[Callable[[float, str], None]]:
    """A ``(fraction done, what is happening)`` callback that draws a bar on stderr while the block runs,
    when ``enabled`` and stderr is a terminal; a callback that does nothing otherwise."""
    if not enabled or not sys.stderr.isatty():
        yield lambda _f, _m: None
        return
    from tqdm import tqdm

    bar = tqdm(total=100, desc=desc, unit="%", file=sys.stderr, leave=False)
    said = [""]

    def report(fraction: float, message: str) -> None:
        bar.set_postfix_str(message, refresh=False)
        bar.update(max(0, round(100 * fraction) - bar.n))
        if message != said[0]:  # a new stage shows at once: tqdm skips draws within 0.1 s of the last one,
            said[0] = message  # and the stage after them may run for minutes (rendering an hour of music)
            bar.refresh()

    try:
        yield report
    finally:
        bar.close()



class Terminated(KeyboardInterrupt):
    """SIGTERM (``kill``, a job scheduler's time limit, ``docker stop``) raised where it arrives, as Ctrl-C is.

    The default action ended the process on the spot: a batch on a local cluster left the folders of the
    clips it was scoring half-written and "resource_tracker: There appear to be 12 leaked semaphore objects".
    As an interrupt, it takes the same way out as Ctrl-C: workers stopped, unfinished outputs removed.
    """


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Raise :class:`Terminated` on the first SIGTERM while the block runs (a second one ends the process)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, _frame: object) -> None:
        signal.signal(signum, signal.SIG_DFL)
        raise Terminated

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def stopped(stop: KeyboardInterrupt) -> str:
    """How a command was stopped, in a word."""
    return "terminated" if isinstance(stop, Terminated) else "interrupted"


def exit_status(stop: KeyboardInterrupt) -> int:
    """The shell's status for a process ended by the signal: 128 + its number (130 Ctrl-C, 143 SIGTERM)."""
    return 128 + (signal.SIGTERM if isinstance(stop, Terminated) else signal.SIGINT)


__all__ = ["Terminated", "add_clip_sound", "add_progress", "check_library", "counted", "duck_depth", "exit_status",
           "input_path", "print_warnings", "progress_bar", "safe_stem", "sigterm_as_interrupt", "stopped", "wants_bar"]
