"""Cut detection per case on generated clips with known cuts: precision, recall and what was found.

Every case is built on the fly (``tests/mediagen.py``) with its true cut frames known by construction:
white flashes (1, 2, 3 frames blown out) inside one shot over a textured and a flat scene, with and without
grain; jump cuts (the same scene framed 2 %, 3 %, 5 % of the width apart, one with a small zoom); and the
older cases (hard cuts, a dissolve, a flashing light over muted shots, grain); handheld footage (the camera
shaken 1, 2, 4 % of the width (standard deviation): jitter fresh every frame, a smooth sway, a walker's bounce;
cuts between textured takes, between takes that look alike, and one take with no cut; with and without grain).
A found cut is right within 2 frames of a true one (each true cut matched once). ``detect_cuts`` with its defaults.

    .venv/bin/python bench/bench_cuts.py [--keep DIR] [--only SUBSTRING]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import av
import numpy as np
from _shared import mediagen

FPS = 25
TOLERANCE = 2  # frames


def _dissolve(mg, a: Path, b: Path, dst: Path, frames: int) -> Path:
    """``a`` then ``b`` with their last / first ``frames`` frames cross-faded (H.264)."""
    def read(p: Path) -> list[np.ndarray]:
        with av.open(str(p)) as c:
            return [f.to_ndarray(format="rgb24") for f in c.decode(c.streams.video[0])]

    fa, fb = read(a), read(b)
    mix = [((1 - w) * x.astype(np.float32) + w * y).astype(np.uint8)
           for w, x, y in zip(np.linspace(0, 1, frames + 2)[1:-1], fa[-frames:], fb[:frames], strict=True)]
    images = fa[:-frames] + mix + fb[frames:]
    with av.open(str(dst), mode="w") as c:
        out = c.add_stream("libx264", rate=FPS)
        out.width, out.height = images[0].shape[1], images[0].shape[0]
        out.pix_fmt, out.options = "yuv420p", {"preset": "ultrafast"}
        for img in images:
            c.mux(out.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
        c.mux(out.encode(None))
    return dst


def cases(mg, folder: Path) -> list[tuple[str, Callable[[], tuple[Path, list[int]]]]]:
    """``(name, build)``: ``build()`` writes the clip and returns it with its true cut frames."""
    T, S = mg.Take, mg.Shot
    out: list[tuple[str, Callable[[], tuple[Path, list[int]]]]] = []

    # Flashes: two shots (a hard cut at 75), a flash in each at 30 and 110, the picture the same after it.
    two_textured = [T(75, 1, drift=0.2), T(75, 2, drift=-0.2)]
    two_flat = [S(75, (120, 110, 100)), S(75, (60, 120, 160))]
    for length in (1, 2, 3):
        for scene in ("textured", "flat"):
            for grain in (0.0, 20.0):
                for ghost in (0.0, 0.2):
                    name = f"flash {length}f {scene}{' grain' if grain else ''}{' ghost' if ghost else ' white'}"

                    def build(length=length, scene=scene, grain=grain, ghost=ghost, name=name):
                        stem = folder / name.replace(" ", "_")
                        if scene == "textured":
                            src = mg.make_takes(stem.with_suffix(".src.mp4"), two_textured, fps=FPS)
                        else:
                            src = mg.make_clip(stem.with_suffix(".src.mp4"), shots=two_flat, fps=FPS)
                        if grain:
                            src = mg.grainy_copy(src, stem.with_suffix(".grain.mp4"), sd=grain)
                        clip = mg.flashed_copy(src, stem.with_suffix(".mp4"), at=[30, 110], length=length, ghost=ghost)
                        return clip, [75]

                    out.append((name, build))

    # Flashes over moving pictures (shapes that move, a pan), and a cut hidden under a flash (kept). The first
    # flash is at 45: at 30 and 60 a shape wraps round the frame's edge (a change of picture, see mediagen).
    moving = {
        "shapes moving": lambda stem: mg.make_clip(
            stem, shots=[S(75, (120, 110, 100), 0.6), S(75, (60, 120, 160), 1.0)], fps=FPS),
        "pan 2px/f": lambda stem: mg.make_takes(stem, [T(75, 1, drift=2.0), T(75, 2, drift=-2.0)], fps=FPS),
        "pan 4px/f": lambda stem: mg.make_takes(stem, [T(75, 1, drift=4.0), T(75, 2, drift=-4.0)], fps=FPS),
    }
    for label, make in moving.items():
        for length in (1, 2, 3):
            name = f"flash {length}f {label}"

            def build(make=make, length=length, name=name):
                stem = folder / name.replace(" ", "_").replace("/", "")
                src = make(stem.with_suffix(".src.mp4"))
                return mg.flashed_copy(src, stem.with_suffix(".mp4"), at=[45, 110], length=length), [75]

            out.append((name, build))
        name = f"cut under a 2f flash, {label}"

        def under(make=make, name=name):
            stem = folder / name.replace(" ", "_").replace("/", "").replace(",", "")
            src = make(stem.with_suffix(".src.mp4"))
            return mg.flashed_copy(src, stem.with_suffix(".mp4"), at=[74], length=2), [75]

        out.append((name, under))

    # Jump cuts: one scene, reframed at 50 and 100 (shift apart), a different scene from 150.
    jumps = {
        "jump 2%": [T(50, 3), T(50, 3, 0.02), T(50, 3, 0.04), T(50, 4)],
        "jump 3%": [T(50, 3), T(50, 3, 0.03), T(50, 3, 0.0), T(50, 4)],
        "jump 5%": [T(50, 3), T(50, 3, 0.05), T(50, 3, 0.0), T(50, 4)],
        "jump 3% + zoom 4%": [T(50, 3), T(50, 3, 0.03, 1.04), T(50, 3, 0.0), T(50, 4)],
        # drift restarts with each take: the pan's 14.7 px per take make the jumps 2.6 % and 1.6 % of the width
        "jump 2.6%, 1.6% in a slow pan": [T(50, 5, drift=0.3), T(50, 5, 0.02, drift=0.3), T(50, 5, 0.05, drift=0.3),
                                          T(50, 6)],
    }
    for name, takes in jumps.items():
        for grain in (0.0, 20.0):
            label = name + (" grain" if grain else "")

            def build(takes=takes, grain=grain, label=label):
                stem = folder / label.replace(" ", "_").replace("%", "pc").replace("+", "")
                clip = mg.make_takes(stem.with_suffix(".mp4"), takes, fps=FPS)
                if grain:
                    clip = mg.grainy_copy(clip, stem.with_suffix(".grain.mp4"), sd=grain)
                return clip, mg.take_cut_frames(takes)

            out.append((label, build))

    four = [S(40, (200, 60, 50), 0.6), S(35, (40, 90, 180), 0.3), S(50, (70, 160, 70), 0.8),
            S(45, (150, 150, 150), 0.1)]
    out.append(("hard cuts, moving shots", lambda: (mg.make_clip(folder / "four.mp4", shots=four, fps=FPS),
                                                    mg.cut_frames(four))))
    textured = [T(40, 7, drift=1.0), T(40, 8, drift=1.0), T(40, 9, drift=-1.0), T(40, 10, drift=1.0)]
    out.append(("hard cuts, textured", lambda: (mg.make_takes(folder / "tex.mp4", textured, fps=FPS),
                                                mg.take_cut_frames(textured))))
    muted = [S(30, (120, 110, 100), 0.3), S(30, (100, 115, 130), 0.3), S(30, (150, 125, 90), 0.3),
             S(30, (95, 100, 95), 0.3)]

    def dissolve():
        a = mg.make_takes(folder / "da.mp4", [T(60, 11)], fps=FPS)
        b = mg.make_takes(folder / "db.mp4", [T(60, 12)], fps=FPS)
        return _dissolve(mg, a, b, folder / "dissolve.mp4", 12), []

    out.append(("dissolve 12f (no hard cut)", dissolve))
    for period, lit in ((16, 8), (4, 1), (8, 4)):
        still = [S(s.frames, s.color) for s in muted]

        def strobe(period=period, lit=lit, still=still):
            clean = mg.make_clip(folder / f"clean{period}.mp4", shots=still, fps=FPS)
            return mg.strobed_copy(clean, folder / f"strobe{period}.mp4", period=period, lit=lit), mg.cut_frames(still)

        out.append((f"strobe {lit}/{period}, muted shots", strobe))
    # A flashing light over moving pictures: the light changes, the picture moves as it did (no jump cut).
    for period, lit in ((8, 4), (4, 1)):
        for label, make in (("textured pan 1px/f", lambda stem: mg.make_takes(stem, textured, fps=FPS)),
                            ("moving shapes", lambda stem: mg.make_clip(stem, shots=four, fps=FPS))):
            def strobe_moving(period=period, lit=lit, make=make, label=label):
                stem = folder / f"strobe{period}_{label.replace(' ', '_').replace('/', '')}"
                src = make(stem.with_suffix(".src.mp4"))
                truth = mg.take_cut_frames(textured) if label.startswith("textured") else mg.cut_frames(four)
                return mg.strobed_copy(src, stem.with_suffix(".mp4"), period=period, lit=lit), truth

            out.append((f"strobe {lit}/{period}, {label}", strobe_moving))
    out += _handheld_cases(mg, folder)
    out.append(("grain 30, muted shots", lambda: (
        mg.grainy_copy(mg.make_clip(folder / "muted.mp4", shots=muted, fps=FPS), folder / "mg.mp4", sd=30.0),
        mg.cut_frames(muted))))
    return out


def _handheld_cases(mg, folder: Path) -> list[tuple[str, Callable[[], tuple[Path, list[int]]]]]:
    """A handheld camera (:func:`mediagen.handheld`) over three takes of 40 frames (cuts at 40 and 80)."""
    T = mg.Take
    pairs = {
        "textured": [T(40, 13), T(40, 14), T(40, 15)],
        "look-alike": [T(40, 16, look=1), T(40, 17, look=1), T(40, 18, look=1)],
        "one take": [T(120, 19)],
    }
    shakes = [("jitter", sd) for sd in (0.01, 0.02, 0.04)] + [("smooth", sd) for sd in (0.01, 0.02, 0.04)]
    shakes += [("walk", sd) for sd in (0.02, 0.04)]
    out: list[tuple[str, Callable[[], tuple[Path, list[int]]]]] = []
    for kind, sd in shakes:
        for pair, takes in pairs.items():
            for grain in (0.0, 20.0):
                name = f"handheld {kind} {sd:.0%}, {pair}{' grain' if grain else ''}"

                def build(kind=kind, sd=sd, takes=takes, grain=grain, name=name):
                    stem = folder / name.replace(" ", "_").replace("%", "pc").replace(",", "")
                    shake = mg.handheld(sum(t.frames for t in takes), sd=sd, kind=kind)
                    clip = mg.make_takes(stem.with_suffix(".mp4"), takes, fps=FPS, shake=shake)
                    if grain:
                        clip = mg.grainy_copy(clip, stem.with_suffix(".grain.mp4"), sd=grain)
                    return clip, mg.take_cut_frames(takes)

                out.append((name, build))
    return out


def score(found: list[int], truth: list[int]) -> tuple[int, int]:
    """Correct detections (each true cut used once, within :data:`TOLERANCE` frames) and their count."""
    left, hits = list(truth), 0
    for f in found:
        near = [t for t in left if abs(t - f) <= TOLERANCE]
        if near:
            left.remove(min(near, key=lambda t: abs(t - f)))
            hits += 1
    return hits, len(found)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, default=None, help="write the clips into this folder and keep them")
    parser.add_argument("--only", default="", help="run only the cases whose name holds this")
    args = parser.parse_args(argv)
    from analysis.cuts import detect_cuts

    mg = mediagen()
    tmp = None if args.keep else tempfile.TemporaryDirectory(prefix="bench_cuts_")
    folder = args.keep or Path(tmp.name)
    folder.mkdir(parents=True, exist_ok=True)
    total = [0, 0, 0]
    print(f"{'case':40}{'P':>6}{'R':>6}  found / true (frames)")
    try:
        for name, build in cases(mg, folder):
            if args.only not in name:
                continue
            clip, truth = build()
            found = [round(t * FPS) for t in detect_cuts(clip)]
            hits, n = score(found, truth)
            total[0] += hits
            total[1] += n
            total[2] += len(truth)
            p = hits / n if n else 1.0
            r = hits / len(truth) if truth else 1.0
            print(f"{name:40}{p:6.2f}{r:6.2f}  {found} / {truth}")
    finally:
        if tmp is not None:
            tmp.cleanup()
    hits, n, t = total
    p, r = (hits / n if n else 1.0), (hits / t if t else 1.0)
    f1 = 2 * p * r / (p + r) if p + r else 0.0
    print(f"{'all':40}{p:6.2f}{r:6.2f}  F1 {f1:.3f}  ({hits} right of {n} found, {t} true)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
