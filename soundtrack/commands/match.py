"""``soundtrack match``: rank library tracks by how well their emotional arc fits a clip's."""

from __future__ import annotations

import argparse
from pathlib import Path

from soundtrack.argtypes import check_library, input_path, print_warnings
from soundtrack.commands.analyze import SOURCES_HELP_DEFAULT

NAME = "match"
HELP = "rank the library's tracks against a video clip's emotional arc"
ORDER = 30


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("clip", type=input_path, help="video file")
    parser.add_argument("--library", default="library.db", help="SQLite path or database URL (default library.db)")
    parser.add_argument("-k", "--k", type=int, default=10, help="number of tracks to list (default 10)")
    parser.add_argument("--content-type", default="general",
                        help="analysis and matching preset (default general, as `score`, `batch` and the page use; "
                             "drama, action, ...)")
    parser.add_argument("--sources", default=SOURCES_HELP_DEFAULT,
                        help=f"comma-separated affect sources for the clip (default all: {SOURCES_HELP_DEFAULT}; "
                             "those without evidence switch themselves off)")
    parser.add_argument("--exhaustive", action="store_true", help="exact DTW on every track (no pruning)")
    parser.add_argument("--sketch-index", default=None, metavar="DIR",
                        help="persistent sketch index to rank with (default: <library>.index when it exists; "
                             "`soundtrack index --sketch-index` builds it)")
    parser.add_argument("--json", action="store_true", help="print the ranking as JSON on stdout")


def run(args: argparse.Namespace) -> int:
    from analysis.errors import MediaError, ParameterError
    from analysis.video import analyze_video
    from matching.feedback.learner import current_weights
    from matching.library.store import Library
    from matching.ranking.ranker import rank
    from soundtrack.cli import CLI_BUSY_TIMEOUT
    from soundtrack.commands.index import update_sketch_index

    if args.k < 1:  # said before the clip is analysed (minutes for a long one), under the option's own name
        raise ParameterError(f"`-k` must be 1 or more (received {args.k})")
    check_library(args.library)
    lib = Library(args.library, busy_timeout=CLI_BUSY_TIMEOUT)
    if len(lib) == 0:
        from matching.db import redacted

        raise ParameterError(f"`--library` {redacted(args.library)} holds no tracks (run `soundtrack index DIR` first)")
    clip = analyze_video(args.clip, sources=tuple(s.strip() for s in args.sources.split(",") if s.strip()),
                         content_type=args.content_type)
    if len(clip.arc) < 2:  # one arc step has no shape to match (matching.ranking.ranker.clip_arc)
        raise MediaError(args.clip, f"is too short to match a track ({clip.duration:.1f} s, one arc step; matching "
                                    "needs two): `soundtrack score` or `soundtrack compose` composes a score for it")
    print_warnings("match", clip.warnings)  # damage skipped, a source left out: as analyze and score say them
    # The blend learned from listeners' feedback in this library (the preset until there is any), for the
    # content type the ratings were logged under: `score`, `batch` and the page read the same.
    weights = current_weights(args.content_type, db=lib)
    index = update_sketch_index(lib, args.sketch_index)  # new tracks appended, removals rebuilt
    hits = rank(clip, lib if index is None else index, k=args.k, content_type=args.content_type, weights=weights,
                fast=not args.exhaustive)
    # Still listed (the catalogue keeps them until `index --prune`), but `score` passes over them: say so.
    print_warnings("match", [f"the file of {m.title or Path(m.path).name!r} ({m.path}) is gone: `soundtrack index` "
                             "finds a moved file again, `soundtrack index --prune` removes the track"
                             for m in hits if not Path(m.path).is_file()])
    if args.json:
        from soundtrack.jsonout import print_json

        print_json({"clip": str(args.clip), "duration": clip.duration, **hits.to_dict()})
        return 0
    for i, m in enumerate(hits, 1):
        print(f"{i:2d}. {m.score:.3f} (dtw {m.dtw_score:.3f}, emb {m.embedding_score:.3f})  "
              f"{m.title or Path(m.path).name}  from {m.start:.1f} s, stretch {m.stretch:.2f}")
    if hits.compose_instead:
        print(f"best score below {hits.threshold:.2f}: compose instead (`soundtrack compose`)")
    return 0
