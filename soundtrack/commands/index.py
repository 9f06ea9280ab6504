"""``soundtrack index``: analyse audio/MIDI files into a music library database."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from soundtrack.argtypes import counted, input_path, print_warnings, wants_bar

NAME = "index"
HELP = "analyse a folder (or one file) of audio/MIDI tracks into a music library"
ORDER = 20


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", type=input_path, metavar="DIR|FILE", help="folder to scan (recursively) or one track")
    parser.add_argument("--library", default="library.db", help="SQLite path or database URL (default library.db)")
    parser.add_argument("--tag", action="append", default=[], help="tag every new track (repeatable)")
    parser.add_argument("--licence", default=None, help="licence recorded for every new track")
    parser.add_argument("--workers", type=int, default=None, help="analysis processes (default up to 4; 0: none)")
    parser.add_argument("--scheduler", metavar="ADDR", default=None,
                        help="Dask scheduler address (tcp://host:8786): analyse on that cluster; the library is "
                        "written here only")
    parser.add_argument("--no-recursive", action="store_true", help="do not descend into sub-folders")
    parser.add_argument("--sketch-index", nargs="?", const="", default=None, metavar="DIR",
                        help="keep a persistent sketch index of the library for fast matching in large catalogues "
                             "(default folder: <library>.index beside an SQLite file); an existing one is always "
                             "brought up to date")
    parser.add_argument("--reanalyse", action="store_true",
                        help="also analyse again, in place, every track of the library that an earlier music "
                             "reader analysed (ids, titles and tags stay)")
    parser.add_argument("--prune", action="store_true",
                        help="remove from the library the tracks stored under DIR whose files are gone "
                             "(a moved file is found again by its bytes and needs no pruning); DIR may be a folder "
                             "that is gone")
    parser.add_argument("--json", action="store_true", help="print the index report as JSON on stdout")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")


def run(args: argparse.Namespace) -> int:
    from analysis.music.formats import TRACK_SUFFIXES
    from matching.db import redacted
    from matching.library.store import Library
    from soundtrack.cli import CLI_BUSY_TIMEOUT

    gone_folder = not args.source.exists()
    if gone_folder and not ("://" in args.library or Path(args.library).is_file()):
        raise _not_there(args.source)  # said before a library file is created for nothing
    lib = Library(args.library, busy_timeout=CLI_BUSY_TIMEOUT)
    report = prune_only(lib, args.source, args.prune) if gone_folder else lib.add_folder(
        args.source,
        recursive=not args.no_recursive,
        workers=args.workers,
        progress=wants_bar(args),
        client=args.scheduler,
        tags=args.tag,
        licence=args.licence,
        log_skips=False,  # the report names each skipped file and why, once
    )
    if Path(args.source).is_dir() and not (report.added or report.existing or report.skipped):
        print_warnings("index", [f"{args.source} holds no audio or MIDI files (looked for "
                                 f"{', '.join(sorted(TRACK_SUFFIXES))})"])
    redone, kept = reanalyse(lib, progress=wants_bar(args)) if args.reanalyse else ([], [])
    gone = lib.missing(under=args.source)
    pruned = [lib.remove(r.id) for r in gone] if args.prune else []
    stale = len(lib.stale())
    index = update_sketch_index(lib, args.sketch_index)
    if args.json:
        from soundtrack.jsonout import print_json

        print_json({**report.to_dict(), "library": redacted(args.library), "tracks": len(lib),
                    "reanalysed": len(redone), "kept": [k.__dict__ for k in kept], "stale": stale,
                    "missing": [r.path for r in gone], "pruned": len(pruned),
                    "sketch_index": None if index is None else str(index.folder)})  # fmt: skip
    else:
        changed = "".join(f", {what} {len(records)}" for what, records in
                          (("updated", report.updated), ("moved", report.moved)) if records)
        print(f"added {len(report.added)}{changed}, already there {report.existing}, skipped {len(report.skipped)} "
              f"in {report.seconds:.1f} s; library {redacted(args.library)} holds {counted(len(lib), 'track')}")
        for r in report.updated:
            print(f"  {r.path} changed on disk: analysed again (its title and tags stay)")
        for r in report.moved:
            print(f"  moved: {r.title or r.id} is now {r.path}")
        for s in report.skipped:
            print(f"  skipped {s.path}: {s.reason}")
        for w in report.warned:
            print(f"  indexed {w.path}, but {w.reason}")
        for c in report.copies[:10]:
            print(f"  {c.path} {c.reason} (catalogued once)")
        if len(report.copies) > 10:
            print(f"  ... and {len(report.copies) - 10} more copies")
        print_gone(gone, pruned=bool(pruned))
        if args.reanalyse:
            print(f"analysed again with the current music reader: {len(redone)}")
            for s in kept:
                print(f"  kept the old analysis of {s.path}: {s.reason}")
        if stale and args.reanalyse:
            print(f"an earlier music reader's analysis stays on {counted(stale, 'track')} that could not be "
                  f"analysed again", file=sys.stderr)
        elif stale:
            print(f"an earlier music reader analysed {counted(stale, 'track')}: not comparable with the new arcs "
                  f"until you run this command again with --reanalyse", file=sys.stderr)
        if index is not None:
            print(f"sketch index {index.folder} holds {counted(len(index), 'track')}")
    return 0


def _not_there(path: Path) -> Exception:
    """The error for a source that is not there: a link says where it points (a drive not mounted)."""
    from analysis.errors import MediaError, not_found

    return not_found(path) if path.is_symlink() else MediaError(path, "is neither a folder nor a file")


def prune_only(lib: Any, folder: Path, prune: bool) -> Any:
    """The empty report of indexing a folder that is gone, so that ``--prune`` removes the tracks stored
    under it (after a folder is moved, the tracks whose files were deleted before stay under the old
    path: indexing the new one never names them); an error without ``--prune`` or tracks there."""
    from analysis.errors import MediaError
    from matching.library.indexing import IndexReport

    gone = len(lib.missing(under=folder))
    if not gone:
        raise _not_there(folder)
    if not prune:
        raise MediaError(folder, f"is neither a folder nor a file; the library holds {counted(gone, 'track')} "
                                 f"stored under it (--prune removes them)")
    return IndexReport(added=(), existing=0, skipped=(), seconds=0.0)


def print_gone(gone: list[Any], *, pruned: bool) -> None:
    """Name the tracks whose files are gone: removed (``--prune``), or still listed (matching skips them)."""
    if not gone:
        return
    if pruned:
        print(f"removed {counted(len(gone), 'track')} whose file is gone")
        return
    print(f"the files of {counted(len(gone), 'track')} stored under this folder are gone (scoring passes over "
          f"them; --prune removes them):", file=sys.stderr)
    for r in gone[:10]:
        print(f"  {r.path}", file=sys.stderr)
    if len(gone) > 10:
        print(f"  ... and {len(gone) - 10} more", file=sys.stderr)


def reanalyse(lib: Any, *, progress: bool) -> tuple[list[Any], list[Any]]:
    """:meth:`Library.reanalyse` of every stale track, with a progress bar on stderr."""
    stale = lib.stale()
    if not stale:
        return [], []
    if not progress:
        return lib.reanalyse(stale)
    from tqdm import tqdm

    with tqdm(total=len(stale), desc="analysing again", unit="track") as bar:
        return lib.reanalyse(stale, progress=lambda done, total, title: bar.update(1))


def sketch_index_folder(library: str, option: str | None) -> Path | None:
    """The folder ``--sketch-index DIR`` names; with a bare ``--sketch-index`` (``""``) the default
    one beside an SQLite library; without the option, that default only if an index is there."""
    from matching.ranking.index import default_folder

    if option:
        return Path(option)
    if "://" in library:
        if option == "":
            from analysis.errors import ParameterError

            raise ParameterError("`--sketch-index` needs a folder for a database server library")
        return None
    folder = default_folder(library)
    return folder if option == "" or (folder / "index.json").is_file() else None


def update_sketch_index(lib: Any, option: str | None) -> Any:
    """Bring the library's sketch index up to date (see :func:`sketch_index_folder`); None if it has none."""
    from matching.ranking.index import sync_index

    folder = sketch_index_folder(str(lib.url), option)
    return None if folder is None else sync_index(lib, folder)
