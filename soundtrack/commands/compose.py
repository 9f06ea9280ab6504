"""``soundtrack compose``: compose a score for an arc JSON or a clip; write MIDI, MusicXML, WAV (and MP4)."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from soundtrack.argtypes import (
    add_clip_sound,
    add_progress,
    counted,
    input_path,
    print_warnings,
    progress_bar,
    safe_stem,
)

NAME = "compose"
HELP = "compose music that follows an emotion arc (from ARC.json or a clip), with chord changes on the cuts"
ORDER = 40


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("clip", nargs="?", type=input_path, help="video to analyse and score (omit with --arc)")
    parser.add_argument("--arc", type=input_path, metavar="ARC.json",
                        help="arc JSON (EmotionArc.to_json, or a whole `soundtrack analyze --json` output)")
    parser.add_argument("--cuts", default=None, help="comma-separated cut times in seconds (default: the clip's)")
    parser.add_argument("--duration", type=float, default=None, help="seconds (default: the clip's or the arc's)")
    parser.add_argument("--style", default="cinematic",
                        help="cinematic, ambient, piano_solo, indian_raga, arabic_maqam, west_african, celtic")
    parser.add_argument("--instrument", default=None, help="lead instrument: GM name (violin, sitar) or 0-127")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--tempo", type=float, default=None, help="base tempo in BPM (default: from the arc)")
    parser.add_argument("--energy", type=float, default=None, help="-1..1 added to arousal (default 0)")
    parser.add_argument("--seed-melody", type=input_path, default=None, metavar="MIDI",
                        help="a short melody to develop")
    parser.add_argument("--source", default="auto", help="note source: auto, rules or learned (default auto)")
    parser.add_argument("--out", type=input_path, default=Path("."), metavar="DIR", help="output folder (default .)")
    parser.add_argument("--no-audio", action="store_true", help="write MIDI and MusicXML only")
    add_clip_sound(parser)
    parser.add_argument("--stems", action="store_true", help="also write one WAV per instrument")
    parser.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    add_progress(parser)


def _cuts(text: str | None) -> tuple[float, ...] | None:
    from analysis.errors import ParameterError

    if text is None:
        return None
    try:
        cuts = tuple(float(x) for x in text.split(",") if x.strip())
    except ValueError:
        cuts = (math.nan,)
    if not all(math.isfinite(c) for c in cuts):
        raise ParameterError(f"`--cuts` must be comma-separated seconds (received {text!r})")
    if any(c < 0 for c in cuts):
        raise ParameterError(f"`--cuts` must not be negative (received {min(cuts):g})")
    return cuts


def run(args: argparse.Namespace) -> int:
    from analysis.errors import ParameterError
    from composer.output.write import write_outputs
    from composer.pipeline.compose import check_choices, compose

    if (args.arc is None) == (args.clip is None):
        raise ParameterError("give either --arc ARC.json or a clip to analyse (received "
                             f"{'both' if args.arc else 'neither'})")
    cuts = _cuts(args.cuts)
    check_choices(args.style, args.instrument, args.source)  # before the clip's analysis, not after it
    duration = args.duration
    speech = None
    args.out = Path(args.out).absolute()  # no derived name can start with a dash
    if args.arc is not None:
        from soundtrack.arcfile import read_arc_file

        given = read_arc_file(args.arc)  # refuses every wrong shape in one sentence
        arc = given.arc
        cuts = given.cuts if cuts is None else cuts  # a whole analysis JSON carries its cuts
        duration = given.duration if duration is None else duration
        stem = safe_stem(args.arc.stem, fallback="arc")
    else:
        from analysis.video import analyze_video
        from composer.pipeline.compose import check_clip_length

        if duration is None:
            check_clip_length(args.clip, "give --duration to score its start")
        with progress_bar("analyse", not args.no_progress) as progress:
            clip = analyze_video(args.clip, progress=progress)
        print_warnings("compose", clip.warnings)
        arc, speech = clip.arc, clip.speech_regions  # the mix keeps the dialogue where the analysis heard it
        cuts = clip.cuts if cuts is None else cuts
        duration = clip.duration if duration is None else duration
        stem = safe_stem(args.clip.stem)
    if duration is None and len(arc) < 2:
        raise ParameterError("a one-point arc has no length of its own: give --duration")
    if duration is None and args.arc is not None:
        from composer.pipeline.compose import MAX_DURATION

        if arc.duration > MAX_DURATION:  # was "`duration` must be at most one hour (received 10799.949999999999 s)"
            raise ParameterError(f"{args.arc.name} runs {arc.duration:.0f} s and a composed score is at most "
                                 f"{MAX_DURATION:.0f} s (one hour): give --duration to score its start")
    if duration is None and args.arc is not None and len(arc) > 1 and arc.times[0] == 0:
        # an analysis's times are the middles of its steps (the first at half a step): times from 0 are points
        # written by hand, and a piece of 0 to 10 s came out 12.5 s long, past the clip it was for
        print_warnings("compose", [f"the arc's times are the middles of its steps, so times 0 to "
                                   f"{arc.times[-1]:g} s cover {arc.duration:g} s: give --duration "
                                   f"{arc.times[-1]:g} for a piece that ends at the last point"])
    end = duration if duration is not None else arc.duration
    if len(arc) > 1 and end > arc.duration + max(1.0, arc.hop):  # a wrong or short arc file: one mood for long
        print_warnings("compose", [f"the arc ends at {arc.duration:g} s: its last mood is held from there to "
                                   f"the end ({end:g} s)"])
    late = [c for c in cuts or () if c >= end]
    if late:
        print_warnings("compose", [f"{counted(len(late), 'cut')} at or past the end ({end:g} s) left out: "
                                   + ", ".join(f"{c:g} s" for c in late)])
    formats = ["mid", "musicxml"]
    if not args.no_audio:
        formats += ["wav"] + (["mp4"] if args.clip is not None else []) + (["stems"] if args.stems else [])
    notes: list[str] = []
    with progress_bar("compose", not args.no_progress) as progress:
        progress(0.0, "composing")
        piece = compose(arc, cuts or (), duration, style=args.style, instrument=args.instrument, seed=args.seed,
                        tempo=args.tempo, energy=args.energy, seed_melody=args.seed_melody, source=args.source)
        files = write_outputs(piece, args.out, f"{stem}-score", args.clip, formats, clip_sound=args.clip_sound,
                              notes=notes, speech=speech, duck_db=args.duck_db,
                              progress=lambda f, m: progress(0.1 + 0.9 * f, m))
    if args.json:
        from soundtrack.jsonout import print_json

        print_json({**piece.to_dict(), "outputs": {k: str(v) for k, v in files.items()},
                    "clip_sound": notes[0] if notes else None})
        return 0
    plan = piece.plan
    print(f"composed {piece.duration:.1f} s of {piece.style} led by {piece.instrument_name} ({piece.source} source), "
          f"{plan.base_tempo:.0f} BPM, {counted(len(piece.chord_times), 'chord')}, {counted(len(plan.cuts), 'cut')}")
    if plan.cuts:
        # the chords change on the cuts themselves; this says how far off the beat each one falls
        print("nearest beat to each cut (ms): " + ", ".join(f"{s * 1000:+.0f}" for s in plan.cut_shifts))
    for line in notes:
        print(line)
    for kind, p in files.items():
        print(f"{kind}: {p}")
    return 0
