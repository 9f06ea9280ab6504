"""Does the product feel a scene and a track the way people do? Three checks in one report.

1. **Speech**: a still grey picture with a happy spoken sentence, and the same picture with
   a sad one (espeak-ng), analysed under the default settings (every source, content type
   ``general``): per source and fused, the confidence-weighted mean valence of each clip and
   the happy-minus-sad gap. A source without evidence in a clip shows ``-``.
2. **Music**: pairwise accuracy of track-mean valence and arousal, and the spread (standard
   deviation) of track-mean arousal, on the real recordings of ``bench/data/music_truth.csv``
   (labels from the games that ship them; fetch with ``bench/fetch_music_truth.py``), for the
   hand-built features (``today``), the trained reader ``analysis.music.emotion`` where it
   is installed (``model``, both axes) and what track analysis returns by default where a
   checkout has the reader switch (``shipped``); ``n/a`` where a reader or the recordings are
   missing. The scoring is ``bench/music_truth.py``'s.
3. **Ranking**: the top five of the built-in demo library (``matching.demo_library``, built
   on first use) for a tense clip (dark red, fast cuts and motion, loud fast percussion) and
   a calm one (soft blue-green still, quiet drone), with each track's tags.

    .venv/bin/python bench/affect_truth.py [--content-type general] [--music-seconds 30] [--skip-music]

Written to run against older checkouts too (``PYTHONPATH=<old checkout>``), so a before and
after can be compared: attributes added later are read with ``getattr``.
"""

from __future__ import annotations

import argparse
import importlib.util
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _shared import load_module, mediagen

HERE = Path(__file__).resolve().parent
HAPPY = "What a wonderful day. I am so happy and delighted to see all my friends again."
SAD = "My dog died yesterday. I feel terribly sad, lonely and miserable."
SOURCES = ("visual", "audio", "faces", "speech", "subtitles")


def spoken_clip(folder: Path, name: str, text: str) -> Path:
    """A grey still (10 fps) with ``text`` said by espeak-ng, half a second of silence either side."""
    import soundfile as sf

    mg = mediagen()
    wav = folder / f"{name}.wav"
    subprocess.run(["espeak-ng", "-w", str(wav), text], check=True, capture_output=True, timeout=60)
    audio, sr = sf.read(wav, dtype="float32")
    pad = np.zeros(sr // 2, np.float32)
    audio = np.concatenate([pad, audio, pad])
    return mg.make_clip(folder / f"{name}.mp4", shots=[mg.Shot(int(np.ceil(audio.size / sr * 10)))], fps=10,
                        audio=audio, sample_rate=sr)


def _source_valence(result, name: str) -> float:
    arc = result.source_arcs.get(name)
    if arc is None or not np.any(arc.confidence > 0):
        return float("nan")
    return float(np.average(arc.valence, weights=arc.confidence))


def speech_table(folder: Path, content_type: str) -> None:
    from analysis.video import analyze_video

    rows = {}
    for name, text in (("happy", HAPPY), ("sad", SAD)):
        res = analyze_video(spoken_clip(folder, name, text), content_type=content_type)
        rows[name] = {s: _source_valence(res, s) for s in SOURCES} | {"fused": float(res.arc.valence.mean())}
        used = getattr(res, "sources_used", tuple(res.source_arcs))
        print(f"  {name} clip: sources that spoke: {', '.join(used)}")
    fmt = lambda x: "       -" if np.isnan(x) else f"{x:+8.3f}"  # noqa: E731
    print(f"  {'':10s}" + "".join(f"{s:>10s}" for s in (*SOURCES, "fused")))
    for name in ("happy", "sad"):
        print(f"  {name:10s}" + "".join(f"  {fmt(rows[name][s])}" for s in (*SOURCES, "fused")))
    gap = {s: rows["happy"][s] - rows["sad"][s] for s in (*SOURCES, "fused")}
    print(f"  {'gap':10s}" + "".join(f"  {fmt(gap[s])}" for s in (*SOURCES, "fused")))


def _music_readers() -> dict:
    """name -> (track, audio) -> (valence, arousal), for the readers this checkout has."""
    readers = {}
    from analysis.music import audio as music_audio

    try:
        music_audio.analyze_audio(np.zeros(music_audio.SR, np.float32), music_audio.SR, reader="features")
        readers["today"] = lambda t, y: _means(music_audio.analyze_audio(y, music_audio.SR, reader="features").arc)
        readers["shipped"] = lambda t, y: _means(music_audio.analyze_audio(y, music_audio.SR).arc)
    except TypeError:  # a checkout from before the `reader` switch: its one reader is today's features
        readers["today"] = lambda t, y: _means(music_audio.analyze_audio(y, music_audio.SR).arc)
    if importlib.util.find_spec("analysis.music.emotion") is not None:
        from analysis.music.emotion import music_emotion

        readers["model"] = lambda t, y: _means(music_emotion(y, music_audio.SR))
    return readers


def _means(arc) -> tuple[float, float]:
    return float(np.mean(arc.valence)), float(np.mean(arc.arousal))


def music_table(seconds: float) -> None:
    names = ("today", "model", "shipped")
    header = f"  {'reader':10s}{'valence acc':>13s}{'arousal acc':>13s}{'arousal std':>13s}{'tracks':>8s}"
    truth_py = HERE / "music_truth.py"
    if not truth_py.is_file():
        print(header + "\n" + "".join(f"  {n:10s}{'n/a':>13s}{'n/a':>13s}{'n/a':>13s}\n" for n in names), end="")
        return
    truth = load_module("music_truth", truth_py)
    tracks = [t for t in truth.read_manifest(truth.MANIFEST) if t.local.is_file()]
    readers = _music_readers() if tracks else {}
    print(header)
    if not tracks:
        print("  (recordings not fetched: bench/fetch_music_truth.py)")
    from analysis.music.audio import SR
    from analysis.music.track import load_audio

    means = {n: np.zeros((len(tracks), 2)) for n in readers}
    for i, t in enumerate(tracks):
        y = load_audio(t.local, sr=SR)
        y = y[: int(seconds * SR)] if seconds > 0 else y
        for n, read in readers.items():
            means[n][i] = read(t, y)
    for n in names:
        if n not in readers:
            print(f"  {n:10s}{'n/a':>13s}{'n/a':>13s}{'n/a':>13s}")
            continue
        r = truth.evaluate(n, means[n], 0.0, tracks, False)
        print(f"  {n:10s}{r['val_acc']:13.3f}{r['aro_acc']:13.3f}{r['aro_std']:13.3f}{len(tracks):8d}")
    print("  (goal: valence acc >= 0.8, arousal acc >= 0.9, arousal std >= 0.3)")


def mood_clips(folder: Path) -> dict[str, Path]:
    mg = mediagen()
    tense_colours = [(90, 10, 10), (20, 10, 15), (120, 20, 10), (30, 25, 30)]
    tense = [mg.Shot(25, tense_colours[i % 4], motion=1.0) for i in range(12)]  # 12 one-second shots
    calm = [mg.Shot(300, (120, 170, 190), motion=0.0)]
    return {
        "tense": mg.make_clip(folder / "tense.mp4", shots=tense, fps=25, audio="percussion"),
        "calm": mg.make_clip(folder / "calm.mp4", shots=calm, fps=25, audio="drone"),
    }


def ranking_table(folder: Path) -> None:
    import matching
    from analysis.video import analyze_video

    lib = matching.demo_library(progress=False)
    for mood, path in mood_clips(folder).items():
        clip = analyze_video(path)
        print(f"  {mood} clip: mean valence {clip.arc.valence.mean():+.2f}, arousal {clip.arc.arousal.mean():+.2f}")
        for i, m in enumerate(matching.rank(clip, lib, k=5), 1):
            rec = lib.get(m.track_id) if hasattr(lib, "get") else None
            tags = ", ".join(t for t in getattr(rec, "tags", ()) if not t.startswith("corpus:") and t != "demo")
            print(f"    {i}. {m.score:.3f}  {m.title}  [{tags}]")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--content-type", default="general", help="preset for the speech check (default general)")
    ap.add_argument("--music-seconds", type=float, default=30.0, help="read the first SECONDS of each recording")
    ap.add_argument("--skip-music", action="store_true", help="leave out the music check (minutes on 2 cores)")
    args = ap.parse_args(argv)
    if shutil.which("espeak-ng") is None:
        raise SystemExit("affect_truth: espeak-ng is needed (Debian package espeak-ng)")
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="affect_truth_") as d:
        folder = Path(d)
        print(f"1. speech, happy minus sad, mean valence (content type {args.content_type}, default sources)")
        speech_table(folder, args.content_type)
        print(f"2. music on the real-recording validation set (first {args.music_seconds:.0f} s of each)")
        if args.skip_music:
            print("  skipped (--skip-music)")
        else:
            music_table(args.music_seconds)
        print("3. top five of the demo library")
        ranking_table(folder)
    print(f"({time.perf_counter() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
