"""``soundtrack batch``: score a folder of clips, on this machine or a Dask cluster, resumable.

Every finished clip is appended to ``OUT/manifest.jsonl`` and ``OUT/manifest.csv``;
running the same command again skips clips already recorded (by content), so an
interrupted batch resumes. Exit status 0 when every clip of this run succeeded, 1 when
some were recorded with an error (the batch itself still finished), 2 on a usage error.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from soundtrack.argtypes import add_clip_sound, check_library, exit_status, sigterm_as_interrupt, stopped, wants_bar

NAME = "batch"
HELP = "score many clips (match or compose each), locally or on a Dask cluster; resumable via a manifest"
ORDER = 60
EPILOG = ("Running the same command again resumes: a clip already in OUT's manifest with the same settings is "
          "skipped, found by its content (a renamed file too); --retry-errors runs the failed ones again. Clips "
          "with the same bytes are scored once. One batch at a time may write to an output folder. Exit status: "
          "0 when every clip is ok; 1 when some clip's latest record is an error (this run's or an earlier one's, "
          "each listed with its reason); 2 on a usage error, before any clip runs; 130 when interrupted, 143 when "
          "terminated (SIGTERM; the finished clips are kept either way).")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("clips", nargs="+", type=Path, metavar="CLIPS_DIR",
                        help="folder(s) of clips (searched recursively) and/or clip files")
    parser.add_argument("--library", metavar="DB", default=None,
                        help="library database (SQLite path or URL), opened read-only by the workers; without it, "
                             "each clip gets a composed score")
    parser.add_argument("--out", metavar="OUT", type=Path, required=True,
                        help="output folder: one sub-folder per clip, plus manifest.jsonl and manifest.csv")
    parser.add_argument("--scheduler", metavar="ADDR", default=None,
                        help="Dask scheduler address (tcp://host:8786); default: a local cluster on this machine")
    parser.add_argument("--workers", metavar="N", type=int, default=None,
                        help="local worker processes (default: one per core; 0 = run in this process); ignored with "
                             "--scheduler")
    parser.add_argument("--threshold", type=float, default=None,
                        help="best-match score (0..1) needed to use a library track, else a score is composed "
                             "(default: the --content-type preset's)")
    parser.add_argument("--style", default="cinematic", help="composition style preset (default cinematic)")
    parser.add_argument("--instrument", default=None, help="lead instrument for composed pieces")
    parser.add_argument("--content-type", default="general",
                        help="content-type preset for analysis and matching (default general)")
    parser.add_argument("--seed", type=int, default=0, help="random seed of composed pieces (default 0)")
    add_clip_sound(parser)
    parser.add_argument("--analyze-only", action="store_true",
                        help="only analyse each clip (arc, cuts, pace) into "
                             "OUT/clips/<clip>-<hash>-<settings>/analysis.json")
    parser.add_argument("--manifest-db", metavar="DB", default=None,
                        help="also keep the manifest in this database (SQLite path or postgresql:// URL), so a "
                             "rerun elsewhere against it resumes")
    parser.add_argument("--batch-name", metavar="NAME", default=None,
                        help="the batch's name in --manifest-db (default: the --out folder's absolute path)")
    parser.add_argument("--no-recursive", action="store_true", help="only the top level of each folder")
    parser.add_argument("--retry-errors", action="store_true", help="run again the clips recorded with an error")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    parser.add_argument("--json", action="store_true", help="print the batch report as JSON on stdout")


def run(args: argparse.Namespace) -> int:
    from analysis.errors import ParameterError
    from composer.pipeline.batch import analyze_clip, named_error, score_clip

    if args.workers is not None and args.workers < 0:
        raise ParameterError(f"`--workers` must be 0 or more (received {args.workers})")
    if args.batch_name is not None and args.manifest_db is None:
        raise ParameterError("`--batch-name` names a batch in `--manifest-db`; give that too")
    if args.library is not None:  # a library that cannot be read fails the batch once, not every clip
        from matching.library.store import Library
        from soundtrack.cli import CLI_BUSY_TIMEOUT

        check_library(args.library)
        Library(args.library, busy_timeout=CLI_BUSY_TIMEOUT).engine.dispose()
    try:
        with sigterm_as_interrupt():  # a job scheduler's stop leaves the output folder as Ctrl-C does
            report = _run_batch(args, task=analyze_clip if args.analyze_only else score_clip)
    except KeyboardInterrupt as stop:  # Ctrl-C or SIGTERM
        manifest = args.out / "manifest.jsonl"
        kept = (f"; the clips that finished are recorded in {manifest}: run the same command again to do the rest"
                if manifest.is_file() else "")
        print(f"soundtrack batch: {stopped(stop)}{kept}", file=sys.stderr)
        return exit_status(stop)
    if args.json:
        from soundtrack.jsonout import print_json

        print_json(report.to_dict())
    else:
        rate = f"; {report.clips_per_minute:.1f} clips/min" if report.ok else ""  # not the speed of failing
        failed = f" ({len(report.failed_before)} of them failed)" if report.failed_before else ""
        done = "analysed" if args.analyze_only else "scored"
        print(
            f"{report.ran} clip(s) {done} ({report.ok} ok, {report.errors} with errors), {report.skipped} already done"
            f"{failed}, {len(report.duplicates)} duplicate(s){rate}"
        )
        print(f"manifest: {report.manifest}" + (f" and {report.csv}" if report.csv else ""))
        for rec in report.records:
            if rec.error:
                print(f"  error: {named_error(rec)}", file=sys.stderr)
            for note in (rec.result or {}).get("warnings") or ():  # a damaged packet skipped: only the manifest said
                print(f"  warning: {rec.input}: {note}", file=sys.stderr)
        for rec in report.failed_before:
            print(f"  error (an earlier run): {named_error(rec)}", file=sys.stderr)
        if report.failed_before:
            print("  --retry-errors runs the clips that failed before again", file=sys.stderr)
    return 1 if report.failing else 0


def _run_batch(args: argparse.Namespace, *, task: Any) -> Any:
    """:func:`composer.score_videos` with the command line's settings."""
    from composer.pipeline.batch import score_videos

    return score_videos(
        args.clips,
        library=args.library,
        out_dir=args.out,
        scheduler=args.scheduler,
        workers=args.workers,
        progress=wants_bar(args),
        threshold=args.threshold,
        style=args.style,
        instrument=args.instrument,
        content_type=args.content_type,
        seed=args.seed,
        recursive=not args.no_recursive,
        retry_errors=args.retry_errors,
        task=task,
        manifest_db=args.manifest_db,
        batch=args.batch_name,
        clip_sound=args.clip_sound,
        duck_db=args.duck_db,
    )
