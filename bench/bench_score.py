"""End-to-end ``soundtrack score`` on a 60 s 720p clip against the demo library.

Prints seconds per stage (analysis / ranking / composing / rendering, or fitting when a
track is chosen) for the default decision, a forced match (threshold 0) and a forced compose (threshold 1),
plus plain FFmpeg decoding of the same clip for scale. Wall seconds depend on what
else runs on the (shared) machine, so CPU seconds (this process, its threads and its
ffmpeg children) are printed beside them. The clip (12 shots of 5 s with
known cuts, moving shapes, a percussion track) and the demo library are built once
under ``--work`` and reused; building them is not timed.

    .venv/bin/python bench/bench_score.py [--work DIR] [--json]
    .venv/bin/python bench/bench_score.py --control   # compose() control error only

``--control`` measures instead how well ``composer.compose`` (rule source) follows an
arc: on 8 random smooth 60 s arcs with 10 random cuts, in two styles, the symbolic
estimator (``analysis.music.symbolic.bar_va``) reads valence/arousal per bar back from the
MIDI; control error = mean |target - measured| / 2 (so in [0, 1]), beside the same
measure for an unconditioned baseline (the same calls with a flat neutral arc), and
the cut hit rate (share of cuts with a chord change within 0.1 s).
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import numpy as np


def make_clip(path: Path, *, seconds: int = 60, fps: int = 25, size: tuple[int, int] = (1280, 720)) -> Path:
    """A synthetic clip: a cut every 5 s, colour and motion rising, drums under it."""
    import av

    if path.exists():
        return path
    rng = np.random.default_rng(0)
    w, h = size
    sr = 44100
    tmp = path.with_suffix(".partial.mp4")
    with av.open(str(tmp), mode="w") as c:
        v = c.add_stream("libx264", rate=fps)
        v.width, v.height, v.pix_fmt = w, h, "yuv420p"
        v.options = {"preset": "ultrafast"}
        a = c.add_stream("aac", rate=sr)
        a.layout = "mono"
        for shot in range(seconds // 5):
            level = shot / (seconds // 5 - 1)
            base = np.array([40 + 200 * level, 60 + 80 * rng.random(), 200 - 150 * level], np.uint8)
            for f in range(5 * fps):
                img = np.empty((h, w, 3), np.uint8)
                img[:] = base
                x = int((f * (4 + 40 * level)) % (w - 200))
                img[200:400, x : x + 200] = 255 - base
                for pkt in v.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                    c.mux(pkt)
        for pkt in v.encode(None):
            c.mux(pkt)
        t = np.arange(seconds * sr) / sr
        beat = 60.0 / 120.0
        audio = (0.3 * np.exp(-30 * (t % beat)) * np.sin(2 * np.pi * 80 * t)).astype(np.float32)
        frame_len = 1024
        for i in range(0, audio.size, frame_len):
            frame = av.AudioFrame.from_ndarray(audio[None, i : i + frame_len], format="flt", layout="mono")
            frame.sample_rate = sr
            frame.pts = i
            frame.time_base = Fraction(1, sr)
            for pkt in a.encode(frame):
                c.mux(pkt)
        for pkt in a.encode(None):
            c.mux(pkt)
    tmp.replace(path)
    return path


def _cpu() -> float:
    """CPU seconds of this process and its finished children (ffmpeg), all threads."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def ffmpeg_decode_seconds(path: Path) -> float:
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        return float("nan")
    t0 = time.perf_counter()
    subprocess.run([ffmpeg, "-nostdin", "-v", "error", "-i", str(path), "-f", "null", "-"], check=True)
    return time.perf_counter() - t0


def control_error(*, pieces: int = 8, seed: int = 0, source: str = "rules") -> dict[str, float]:
    """Control error and cut hit rate of compose() against a flat-arc baseline (see module doc)."""
    from analysis.arc import EmotionArc, grid
    from analysis.music.symbolic import bar_va
    from composer.pipeline.compose import compose

    rng = np.random.default_rng(seed)
    t = grid(60.0, 0.5)
    out: dict[str, list[float]] = {k: [] for k in ("valence", "arousal", "base_valence", "base_arousal", "hits")}

    def smooth() -> np.ndarray:
        waves = [rng.uniform(-0.5, 0.5) * np.sin(2 * np.pi * t / rng.uniform(20, 90) + rng.uniform(0, 6))
                 for _ in range(3)]
        return np.clip(np.sum(waves, axis=0), -1, 1)

    for k in range(pieces):
        v, a = smooth(), smooth()
        cuts = np.sort(rng.uniform(1, 59, 10))
        for style in ("cinematic", "piano_solo"):
            for arc, prefix in ((EmotionArc.from_va(t, v, a), ""), (EmotionArc.constant(60.0, 0.0, 0.0), "base_")):
                piece = compose(arc, cuts, 60.0, style=style, seed=k, source=source)
                bars = bar_va(piece.midi)
                mid = (bars.starts + bars.ends) / 2
                out[prefix + "valence"].append(float(np.mean(np.abs(np.interp(mid, t, v) - bars.valence)) / 2))
                out[prefix + "arousal"].append(float(np.mean(np.abs(np.interp(mid, t, a) - bars.arousal)) / 2))
                if not prefix:
                    starts = np.array(piece.chord_times)
                    out["hits"].append(float(np.mean([np.min(np.abs(starts - c)) <= 0.1 for c in cuts])))
    res = {k: round(float(np.mean(x)), 3) for k, x in out.items()}
    res["mean"] = round((res["valence"] + res["arousal"]) / 2, 3)
    res["base_mean"] = round((res["base_valence"] + res["base_arousal"]) / 2, 3)
    return res


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path.home() / ".cache" / "soundtrack" / "bench")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--control", action="store_true", help="measure compose() control error only")
    parser.add_argument("--source", default="rules", choices=("rules", "learned"), help="note source for --control")
    args = parser.parse_args(argv)
    if args.control:
        res = control_error(source=args.source)
        print(json.dumps(res, indent=2) if args.json else
              f"control error {res['mean']:.3f} (valence {res['valence']:.3f}, arousal {res['arousal']:.3f}); "
              f"flat-arc baseline {res['base_mean']:.3f} (valence {res['base_valence']:.3f}, arousal "
              f"{res['base_arousal']:.3f}); cut hit rate {res['hits']:.3f}")
        return 0
    args.work.mkdir(parents=True, exist_ok=True)

    from matching.library.demo import demo_library

    t0 = time.perf_counter()
    lib = demo_library(progress=False)
    setup_lib = time.perf_counter() - t0
    t0 = time.perf_counter()
    clip = make_clip(args.work / "clip60_720p.mp4")
    setup_clip = time.perf_counter() - t0
    print(f"setup: demo library {len(lib.list())} tracks ({setup_lib:.1f} s), clip ({setup_clip:.1f} s)",
          file=sys.stderr)

    from composer.pipeline.score_video import score_video

    decode = ffmpeg_decode_seconds(clip)
    runs = {}
    for label, threshold in (("default threshold", None), ("forced match", 0.0), ("forced compose", 1.0)):
        t0, c0 = time.perf_counter(), _cpu()
        res = score_video(clip, library=lib, threshold=threshold, out_dir=args.work / label.replace(" ", "_"),
                          source="rules")
        total, cpu = time.perf_counter() - t0, _cpu() - c0
        runs[label] = {"chosen": res.chosen, "reason": res.reason, "total": round(total, 2), "cpu": round(cpu, 2),
                       **{k: round(v, 2) for k, v in res.timings.items()}}
    report = {"clip": str(clip), "tracks": len(lib.list()), "ffmpeg_decode": round(decode, 2), "runs": runs}
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"60 s 720p clip, {report['tracks']} library tracks; plain ffmpeg decode {decode:.2f} s")
    for label, r in runs.items():
        parts = ", ".join(f"{k} {v:.2f}" for k, v in r.items() if k not in ("chosen", "reason", "total", "cpu"))
        print(f"{label}: {r['chosen']} in {r['total']:.2f} s wall, {r['cpu']:.2f} s CPU ({parts}); {r['reason']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
