"""``soundtrack index``: analyse audio/MIDI files into a music library database."""

from __future__ import annotations

import argparse

from soundtrack.argtypes import input_path

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
    parser.add_argument("--json", action="store_true", help="print the index report as JSON on stdout")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")


def run(args: argparse.Namespace) -> int:
    from matching.library.store import Library
    from soundtrack.cli import CLI_BUSY_TIMEOUT

    lib = Library(args.library, busy_timeout=CLI_BUSY_TIMEOUT)
    report = lib.add_folder(
        args.source,
        recursive=not args.no_recursive,
        workers=args.workers,
        progress=not args.no_progress,
        client=args.scheduler,
        tags=args.tag,
        licence=args.licence,
    )
    if args.json:
        from soundtrack.cli import print_json

        print_json({**report.to_dict(), "library": args.library, "tracks": len(lib)})
    else:
        print(f"added {len(report.added)}, already there {report.existing}, skipped {len(report.skipped)} "
              f"in {report.seconds:.1f} s; library {args.library} holds {len(lib)} tracks")
        for s in report.skipped:
            print(f"  skipped {s.path}: {s.reason}")
    return 0
