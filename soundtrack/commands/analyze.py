"""``soundtrack analyze``: a clip's emotion arc, cuts, pace and suggested tempo."""

from __future__ import annotations

import argparse
from pathlib import Path

from soundtrack.argtypes import add_progress, input_path, print_warnings, progress_bar

NAME = "analyze"
HELP = "analyse a video into a valence-arousal arc, cuts and pace"
ORDER = 10
#: Every affect source (``analysis.sources.DEFAULT_SOURCES``), spelt out so parsing imports no analysis code.
SOURCES_HELP_DEFAULT = "visual,audio,faces,speech,subtitles"


PLOT_SUFFIXES = (".png", ".svg", ".pdf", ".jpg", ".jpeg", ".webp")


def plot_path(text: str) -> Path:
    """An argparse ``type``: a plot file whose suffix names an image format (checked before the analysis)."""
    path = input_path(text)
    if path.suffix.lower() not in PLOT_SUFFIXES:
        raise argparse.ArgumentTypeError(f"the plot is an image: name it {', '.join(PLOT_SUFFIXES)} "
                                         f"(received {text!r})")
    return path


def check_plot_target(path: Path) -> None:
    """Refuse, before the analysis (minutes for a long clip), a plot path that cannot be written: a folder
    of that name, or a file where one of its folders should be. Missing folders are made when it is written."""
    from analysis.errors import MediaError

    if path.is_dir():
        raise MediaError(path, "is a folder: name the plot's file (such as arc.png)")
    above = next(p for p in path.parents if p.exists())  # the root exists
    if not above.is_dir():
        raise MediaError(path, f"cannot be written: {above} is a file, not a folder")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("clip", type=input_path, help="video file (mp4, mov, avi, mkv, webm, ...)")
    parser.add_argument("--json", action="store_true", help="print the whole analysis as JSON on stdout")
    parser.add_argument("--plot", type=plot_path, metavar="PNG",
                        help="write a plot of the arc with the cuts marked (.png, .svg, .pdf, .jpg or .webp)")
    parser.add_argument("--hop", type=float, default=0.5, help="seconds between arc points (default 0.5)")
    parser.add_argument("--sources", default=SOURCES_HELP_DEFAULT,
                        help=f"comma-separated affect sources (default all: {SOURCES_HELP_DEFAULT}; faces, speech "
                             "and subtitles switch themselves off when they find no face, voice or subtitle file)")
    parser.add_argument("--content-type", default="general",
                        help="source-weight preset: general, drama, documentary, interview, courtroom, action, "
                             "sports, music_video, trailer (default general)")
    parser.add_argument("--subtitles", type=input_path, metavar="FILE",
                        help=".srt/.vtt/.ass subtitles (adds that source; by default the subtitles source reads "
                             "the file beside the clip, such as clip.srt or clip.en.srt, else the clip's own "
                             "subtitle track)")
    parser.add_argument("--cut-detector", default="adaptive",
                        help="adaptive, content, threshold, hash or histogram (default adaptive)")
    parser.add_argument("--cut-threshold", type=float, default=None, help="detector threshold (default: its own)")
    parser.add_argument("--smoothing", default="savgol", help="savgol, moving_average or none (default savgol)")
    add_progress(parser)


def run(args: argparse.Namespace) -> int:
    from analysis.video import analyze_video

    sources = tuple(s.strip() for s in args.sources.split(",") if s.strip())
    if args.plot:
        check_plot_target(args.plot)
    with progress_bar("analyse", not args.no_progress) as progress:
        result = analyze_video(
            args.clip,
            hop=args.hop,
            sources=sources,
            content_type=args.content_type,
            subtitles=args.subtitles or "auto",
            smoothing=args.smoothing,
            cut_detector=args.cut_detector,
            cut_threshold=args.cut_threshold,
            progress=progress,
        )
    print_warnings("analyze", result.warnings)
    if args.plot:
        from analysis.plot import plot_arc

        args.plot.parent.mkdir(parents=True, exist_ok=True)  # as compose's --out and the writers make theirs
        plot_arc(result.arc, args.plot, cuts=result.cuts, title=result.path.name)
    if args.json:
        from soundtrack.jsonout import print_json

        print_json(result.to_dict())
        return 0
    arc = result.arc
    print(f"{result.path}: {result.duration:.1f} s, {len(result.cuts)} cuts ({result.pace.mean:.1f}/min), "
          f"audio: {'yes' if result.has_audio else 'none'}")
    print(f"mean valence {arc.valence.mean():+.2f}, mean arousal {arc.arousal.mean():+.2f}, "
          f"suggested tempo {result.suggested_tempo:.0f} BPM")
    print("cuts (s): " + (", ".join(f"{c:.2f}" for c in result.cuts) or "none"))
    print(f"sources: {', '.join(result.sources_used) or 'none had evidence'}{result.silent_sources()}")
    if result.subtitles is not None:
        print(f"subtitles read: {result.subtitles}")
    if args.plot:
        print(f"plot written to {args.plot}")
    return 0
