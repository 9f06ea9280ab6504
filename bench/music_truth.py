"""Music emotion against real recordings whose moods the games that ship them assign.

Reads the validation set of ``bench/data/music_truth.csv`` (fetch it first with
``bench/fetch_music_truth.py``) and prints one table: per candidate reader, the pairwise
accuracy of track-mean valence over pairs whose valence labels differ, the same for
arousal, and the standard deviation of track-mean arousal. Candidates:

* ``today``: the hand-built audio features (:func:`analysis.music.audio.analyze_audio`);
* ``model``: both heads of the trained model of :mod:`analysis.music.emotion` (``checkpoints/music_emotion.npz``)
  alone, without the tagger;
* ``before``: the hand-built valence with the model's arousal alone (shipped until the tagger joined);
* ``tagger``: the hand-built valence with the tagger's calibrated arousal contrast alone
  (:mod:`analysis.music.tagger`);
* ``shipped``: what :func:`analysis.music.audio.analyze_audio` (hence :func:`analysis.analyze_track`)
  returns by default: the hand-built valence with the mean of the model's and the tagger's arousal;
* ``analyze_track``: :func:`analysis.analyze_track` itself on the whole files (slow);
* ``transcribed``: the MIDI estimator's features of the notes the Basic Pitch network hears
  (``bench/transcribed.py``; needs ``pip install --no-deps basic-pitch``), loudness and tempo as ``today``.

Each recording is decoded once and cut to its first ``--seconds`` (default 60; 0 = whole
track) for ``today`` and ``model``, to keep the run to minutes on a shared 2-core machine.
The set is for validation only: nothing here is fitted on it.

    .venv/bin/python bench/music_truth.py [--candidates today,model,before,tagger,shipped] [--seconds 60]
        [--per-track]
        [--checkpoint NAME=PATH ...]
"""

from __future__ import annotations

import argparse
import functools
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from fetch_music_truth import MANIFEST

from analysis.music.recordings import Recording, pairwise_accuracy, read_manifest

Reader = Callable[[Recording, np.ndarray], tuple[float, float]]


def read_today(track: Recording, y: np.ndarray) -> tuple[float, float]:
    from analysis.music.audio import SR, analyze_audio

    arc = analyze_audio(y, SR, reader="features").arc
    return float(arc.valence.mean()), float(arc.arousal.mean())


def read_model(track: Recording, y: np.ndarray, checkpoint: str | None = None) -> tuple[float, float]:
    from analysis.music.audio import SR
    from analysis.music.emotion import music_emotion

    arc = music_emotion(y, SR, checkpoint=checkpoint, tags=False)
    return float(arc.valence.mean()), float(arc.arousal.mean())


def read_before(track: Recording, y: np.ndarray) -> tuple[float, float]:
    from analysis.music.audio import SR, analyze_audio
    from analysis.music.emotion import music_emotion

    valence = analyze_audio(y, SR, reader="features").arc.valence
    return float(valence.mean()), float(music_emotion(y, SR, tags=False).arousal.mean())


def read_tagger(track: Recording, y: np.ndarray) -> tuple[float, float]:
    from analysis.arc import grid
    from analysis.music.audio import SR, analyze_audio
    from analysis.music.emotion import load_model
    from analysis.music.tagger import arousal_contrast, window_logits

    valence = analyze_audio(y, SR, reader="features").arc.valence
    arousal = load_model().tag_reading(arousal_contrast(window_logits(y, SR, grid(len(y) / SR, 0.5))))
    return float(valence.mean()), float(arousal.mean())


def read_shipped(track: Recording, y: np.ndarray) -> tuple[float, float]:
    from analysis.music.audio import SR, analyze_audio

    arc = analyze_audio(y, SR).arc
    return float(arc.valence.mean()), float(arc.arousal.mean())


def read_transcribed(track: Recording, y: np.ndarray) -> tuple[float, float]:
    from transcribed import posteriorgrams, window_features

    from analysis.music.audio import SR, analyze_audio

    f = analyze_audio(y, SR, reader="features").features
    heard = window_features(posteriorgrams(y, SR), f.starts, f.ends, key_window=8.0, tempo=f.tempo,
                            velocity=f.velocity)
    v, a = heard.va()
    return float(v.mean()), float(a.mean())


def read_analyze_track(track: Recording, y: np.ndarray) -> tuple[float, float]:
    import analysis

    arc = analysis.analyze_track(track.local).arc
    return float(arc.valence.mean()), float(arc.arousal.mean())


CANDIDATES: dict[str, Reader] = {
    "today": read_today, "model": read_model, "before": read_before, "tagger": read_tagger, "shipped": read_shipped,
    "analyze_track": read_analyze_track, "transcribed": read_transcribed,
}


def evaluate(name: str, va: np.ndarray, seconds: float, tracks: list[Recording], per_track: bool) -> dict:
    """The table row of one candidate from its ``(n, 2)`` track means."""
    if per_track:
        for t, (v, a) in zip(tracks, va, strict=True):
            print(f"  {name:14s} {t.source:5s} {t.label:16s} {v:+.3f} {a:+.3f}  {Path(t.path).name}")
    lv = np.array([t.valence for t in tracks])
    la = np.array([t.arousal for t in tracks])
    acc_v, n_v = pairwise_accuracy(va[:, 0], lv)
    acc_a, n_a = pairwise_accuracy(va[:, 1], la)
    # valence pairs whose arousal labels agree: valence not confounded with arousal
    same = [(i, j) for i in range(len(tracks)) for j in range(i + 1, len(tracks))
            if lv[i] * lv[j] < 0 and la[i] == la[j] != 0]
    acc_vs = float(np.mean([0.5 if va[i, 0] == va[j, 0] else float((va[i, 0] - va[j, 0]) * (lv[i] - lv[j]) > 0)
                            for i, j in same])) if same else float("nan")
    return {"val_acc": acc_v, "val_pairs": n_v, "aro_acc": acc_a, "aro_pairs": n_a,
            "val_acc_same_aro": acc_vs, "same_pairs": len(same),
            "aro_std": float(va[:, 1].std()), "val_std": float(va[:, 0].std()), "seconds": seconds}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--candidates", default="today,model,before,tagger,shipped",
                    help=f"comma list of {', '.join(CANDIDATES)}")
    ap.add_argument("--seconds", type=float, default=60.0, help="analyse the first SECONDS of each track (0: all)")
    ap.add_argument("--per-track", action="store_true", help="print every track's means")
    ap.add_argument("--manifest", type=Path, default=MANIFEST,
                    help="recordings to score (default: the validation set; eight other "
                         "games are bench/data/music_other_games.csv)")
    ap.add_argument("--checkpoint", action="append", default=[], metavar="NAME=PATH",
                    help="also run the model reader with another checkpoint (repeatable)")
    args = ap.parse_args()
    for spec in args.checkpoint:
        name, _, path = spec.partition("=")
        CANDIDATES[name] = functools.partial(read_model, checkpoint=path)
        args.candidates += f",{name}"
    tracks = [t for t in read_manifest(args.manifest) if t.local.is_file()]
    total = len(read_manifest(args.manifest))
    if len(tracks) < total:
        print(f"warning: {total - len(tracks)} of {total} recordings are not fetched "
              f"(bench/fetch_music_truth.py --manifest {args.manifest})")
    srcs = sorted({t.source for t in tracks})
    print(f"{len(tracks)} real recordings from {', '.join(srcs)}")
    print(f"{'candidate':14s} {'valence acc':>12s} {'(pairs)':>8s} {'arousal acc':>12s} {'(pairs)':>8s} "
          f"{'val acc, same arousal':>22s} {'arousal std':>12s} {'valence std':>12s} {'s':>6s}")
    from analysis.music.audio import SR
    from analysis.music.track import load_audio

    names = args.candidates.split(",")
    means = {n: np.zeros((len(tracks), 2)) for n in names}
    spent = dict.fromkeys(names, 0.0)
    for i, t in enumerate(tracks):
        y = load_audio(t.local, sr=SR)
        y = y[: int(args.seconds * SR)] if args.seconds > 0 else y
        for n in names:
            t0 = time.perf_counter()
            means[n][i] = CANDIDATES[n](t, y)
            spent[n] += time.perf_counter() - t0
    for name in names:
        r = evaluate(name, means[name], spent[name], tracks, args.per_track)
        print(f"{name:14s} {r['val_acc']:12.3f} {r['val_pairs']:8d} {r['aro_acc']:12.3f} {r['aro_pairs']:8d} "
              f"{r['val_acc_same_aro']:15.3f} ({r['same_pairs']:3d}) {r['aro_std']:12.3f} {r['val_std']:12.3f} "
              f"{r['seconds']:6.0f}", flush=True)


if __name__ == "__main__":
    main()
