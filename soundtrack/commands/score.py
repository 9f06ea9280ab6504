"""``soundtrack score``: fit the best library track to a clip, or compose one when none fits."""

from __future__ import annotations

import argparse

from soundtrack.argtypes import (
    add_clip_sound,
    add_progress,
    check_library,
    input_path,
    print_warnings,
    progress_bar,
)

NAME = "score"
HELP = "give a clip a soundtrack: the best-fitting library track, or a newly composed score"
ORDER = 50


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("clip", type=input_path, help="video file to score")
    parser.add_argument("--library", default=None, metavar="DB", help="library database (SQLite path or URL)")
    parser.add_argument("--out", type=input_path, default=None, metavar="DIR",
                        help="output folder (default: <clip>-score beside the clip)")
    parser.add_argument("--threshold", type=float, default=None,
                        help="best-match score (0..1) needed to use a library track (default: the preset's)")
    parser.add_argument("--style", default="cinematic", help="style when composing (default cinematic)")
    parser.add_argument("--instrument", default=None, help="lead instrument when composing (GM name or number)")
    parser.add_argument("--content-type", default="general", help="analysis and matching preset (default general)")
    parser.add_argument("--seed", type=int, default=0, help="random seed when composing (default 0)")
    parser.add_argument("--source", default="auto", help="note source when composing: auto, rules, learned")
    add_clip_sound(parser)
    parser.add_argument("--subtitles", type=input_path, default=None, metavar="FILE",
                        help=".srt/.vtt/.ass subtitles (default: the file beside the clip, such as clip.srt, "
                             "else the clip's own track)")
    parser.add_argument("--no-musicxml", action="store_true", help="skip the MusicXML export when composing")
    parser.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    add_progress(parser)


def run(args: argparse.Namespace) -> int:
    from analysis.errors import MediaError
    from composer.pipeline.score_video import score_video
    from soundtrack.cli import CLI_BUSY_TIMEOUT

    if args.clip.is_dir():
        raise MediaError(args.clip, "is a folder: `soundtrack batch FOLDER` scores every clip in it")
    lib = None
    if args.library is not None:
        from matching.library.store import Library

        check_library(args.library)
        lib = Library(args.library, busy_timeout=CLI_BUSY_TIMEOUT)
    weights = None
    if lib is not None:
        from matching.feedback.learner import current_weights

        # The blend learned from listeners' feedback in this library (the preset until there is any).
        weights = current_weights(args.content_type, db=lib)
    with progress_bar("score", not args.no_progress) as progress:
        result = score_video(args.clip, library=lib, weights=weights, threshold=args.threshold, out_dir=args.out,
                             style=args.style, instrument=args.instrument, content_type=args.content_type,
                             seed=args.seed, source=args.source, musicxml=not args.no_musicxml,
                             clip_sound=args.clip_sound, duck_db=args.duck_db, subtitles=args.subtitles or "auto",
                             progress=progress)
    print_warnings("score", result.warnings)
    if args.json:
        from soundtrack.jsonout import print_json

        print_json(result.to_dict())
        return 0
    print(f"{result.path}: {result.chosen} ({result.reason})")
    if result.composition is not None:
        print(f"notes from the {result.composition.source} source")  # the shipped model, or rules without it
    if result.subtitles is not None:
        print(f"subtitles read: {result.subtitles}")
    if result.clip_sound:
        print(result.clip_sound)
    for kind, p in result.outputs.items():
        print(f"{kind}: {p}")
    print("seconds: " + ", ".join(f"{k} {v:.2f}" for k, v in result.timings.items()))
    return 0
