"""Live scoring: how soon a new target is heard, and how much faster than real time it renders.

**Latency.** For each trial a :class:`composer.live.LiveComposer` plays 8 s (plus a
trial-dependent fraction of a bar, so the update lands at different beat phases) at one
target, then gets ``update()`` to another and plays 6 s more in 0.25 s chunks. Printed per
direction (calm -> tense, tense -> calm), median and worst over the trials:

* ``turn``: seconds from the update to the first note planned for the new target (the
  next beat);
* ``density``: note onsets per second in the 2 s before and the 2 s after the update
  (from ``midi_so_far()``);
* ``rms``: audio RMS in the 2 s before and the 2 s after;
* ``level latency``: seconds from the update until the RMS of a sliding 0.25 s window
  first crosses halfway between the old level (4 s before) and the new one (2..6 s
  after): when the change is *heard*;
* ``mode``: the mood of the chords after the update.

**Speed.** 60 s rendered in 0.5 s chunks with the target moving every 5 s, on one core
(the process pins itself to one CPU and torch to one thread), as seconds of audio per
second of wall time; and CPU seconds for the same, since the machine may be shared.

    .venv/bin/python bench/bench_live.py [--trials 5] [--style cinematic] [--source rules|learned] [--rate 44100]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from composer.live import LiveComposer

CALM, TENSE = (0.5, -0.8), (-0.6, 0.8)


def _rms(audio: np.ndarray, sr: int, t0: float, t1: float) -> float:
    seg = audio[max(0, round(t0 * sr)):round(t1 * sr)]
    return float(np.sqrt(np.mean(seg.astype(np.float64) ** 2))) if seg.size else 0.0


def level_latency(audio: np.ndarray, sr: int, t: float) -> float:
    """Seconds after ``t`` until a 0.25 s RMS window crosses halfway from the old level to the new."""
    old, new = _rms(audio, sr, t - 4, t), _rms(audio, sr, t + 2, t + 6)
    half = 0.5 * (old + new)
    for k in range(0, round(6 / 0.05)):
        w0 = t + k * 0.05
        level = _rms(audio, sr, w0, w0 + 0.25)
        if (new > old and level >= half) or (new < old and level <= half):
            return w0 + 0.25 - t
    return float("nan")


def trial(start: tuple[float, float], end: tuple[float, float], *, seed: int, offset: float, args) -> dict:
    live = LiveComposer(args.style, seed=seed, source=args.source, sample_rate=args.rate,
                        valence=start[0], arousal=start[1])
    chunks = [live.render_next(0.25) for _ in range(32)]
    chunks.append(live.render_next(offset))
    t = live.time
    live.update(*end)
    chunks += [live.render_next(0.25) for _ in range(24)]
    audio = np.concatenate(chunks)
    onsets = np.sort([n.start for inst in live.midi_so_far().instruments for n in inst.notes])
    after = [c for c in live.chords_so_far if c[0] >= t - 1e-9]
    live.close()
    return {
        "turn": after[0][0] - t if after else float("nan"),
        "density": (np.sum((onsets >= t - 2) & (onsets < t)) / 2, np.sum((onsets >= t) & (onsets < t + 2)) / 2),
        "rms": (_rms(audio, args.rate, t - 2, t), _rms(audio, args.rate, t, t + 2)),
        "latency": level_latency(audio, args.rate, t),
        "modes": sorted({c[2] for c in after}),
    }


def latency(args) -> None:
    for name, a, b in (("calm -> tense", CALM, TENSE), ("tense -> calm", TENSE, CALM)):
        rows = [trial(a, b, seed=k, offset=0.1 + 0.37 * k, args=args) for k in range(args.trials)]
        turn = [r["turn"] for r in rows]
        lat = [r["latency"] for r in rows]
        d0, d1 = np.mean([r["density"][0] for r in rows]), np.mean([r["density"][1] for r in rows])
        r0, r1 = np.mean([r["rms"][0] for r in rows]), np.mean([r["rms"][1] for r in rows])
        modes = sorted({m for r in rows for m in r["modes"]})
        print(f"{name}: turn after {np.median(turn):.2f} s (worst {max(turn):.2f}); level heard after "
              f"{np.nanmedian(lat):.2f} s (worst {np.nanmax(lat):.2f}); density {d0:.1f} -> {d1:.1f} notes/s "
              f"(x{d1 / max(d0, 1e-9):.1f}); rms {r0:.3f} -> {r1:.3f} (x{r1 / max(r0, 1e-9):.1f}); "
              f"moods after {modes}  [{args.trials} trials]")


def speed(args) -> None:
    rng = np.random.default_rng(0)
    live = LiveComposer(args.style, seed=1, source=args.source, sample_rate=args.rate)
    live.render_next(0.5)  # first bar planned, synth warmed up
    cpu0, t0 = time.process_time(), time.perf_counter()
    for i in range(120):
        if i % 10 == 0:
            live.update(*(float(x) for x in rng.uniform(-1, 1, 2)))
        live.render_next(0.5)
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    print(f"speed: 60 s rendered in {wall:.2f} s wall ({60 / wall:.1f}x real time), {cpu:.2f} s CPU "
          f"({60 / cpu:.1f}x); {args.style}, {args.source} source, {args.rate} Hz, one core")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials", type=int, default=5)
    ap.add_argument("--style", default="cinematic")
    ap.add_argument("--source", default="rules", choices=("rules", "learned", "auto"))
    ap.add_argument("--rate", type=int, default=44100)
    args = ap.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    if args.source != "rules":
        import torch

        torch.set_num_threads(1)
    latency(args)
    speed(args)


if __name__ == "__main__":
    main()
