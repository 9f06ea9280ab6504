"""``soundtrack demo``: build (once) the built-in demo library and list it."""

from __future__ import annotations

import argparse
from pathlib import Path

NAME = "demo"
HELP = "build the built-in demo library (music21 corpus rendered with FluidSynth) once, and list its tracks"
ORDER = 15


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--path", metavar="DIR", type=Path, default=None,
                        help="folder of the demo library (default: $SOUNDTRACK_HOME/demo or ~/.cache/soundtrack/demo)")
    parser.add_argument("--pieces", metavar="N", type=int, default=None, help="build only the first N corpus pieces")
    parser.add_argument("--json", action="store_true", help="print the track list as JSON on stdout")


def run(args: argparse.Namespace) -> int:
    from matching.library.demo import demo_library
    from soundtrack.jsonout import print_json

    lib = demo_library(args.path, pieces=args.pieces, progress=not args.json)
    records = lib.list()
    if args.json:
        print_json({"library": lib.url, "tracks": [r.to_dict() for r in records]})
    else:
        print(f"{lib.url}: {len(records)} tracks")
        for r in records:
            print(f"  {r.id:3d}  {r.title}  [{', '.join(r.tags)}]")
    return 0
