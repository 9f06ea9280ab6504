"""Matching benchmark: exhaustive DTW vs the pruned fast path, recall@10, index throughput.

Synthetic libraries of smoothed random-walk arcs (30-240 steps at 1 s, i.e. 0.5-4 min
tracks); each query clip is a time-warped, noisy 30-step section of a random track.
Exhaustive ranking is timed on every track where ``--exhaustive-limit`` allows and
otherwise extrapolated from a timed sample (the output says so); recall@10 of the
fast path is measured only where the exhaustive ranking was really computed.
Index throughput: ``Library.add_folder`` with the real ``analysis.analyze_track`` on
small generated WAV files.

    .venv/bin/python bench/bench_matching.py            # 1k, 10k, 100k
    .venv/bin/python bench/bench_matching.py --sizes 1000 --queries 3
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from matching.catalog import Catalog
from matching.fast import FastIndex
from matching.rank import rank

HOP = 1.0


def synthetic_catalog(n: int, rng: np.random.Generator) -> Catalog:
    lengths = rng.integers(30, 241, n)
    kernel = np.ones(5) / 5
    vas = []
    for m in lengths:
        x = np.cumsum(rng.normal(0, 0.08, (m, 2)), axis=0)
        x = np.stack([np.convolve(x[:, c], kernel, mode="same") for c in range(2)], axis=1)
        vas.append(np.clip(x - x.mean(axis=0) + rng.uniform(-0.5, 0.5, 2), -1, 1))
    return Catalog(
        ids=np.arange(1, n + 1, dtype=np.int64),
        paths=tuple(f"synthetic/{i}" for i in range(1, n + 1)),
        titles=(None,) * n,
        durations=lengths * HOP,
        hops=np.full(n, HOP),
        offsets=np.concatenate([[0], np.cumsum(lengths)]),
        va=np.concatenate(vas).astype(np.float32),
        embeddings=None,
    )


def query(cat: Catalog, rng: np.random.Generator):
    from analysis.arc import EmotionArc

    i = int(rng.integers(0, len(cat)))
    va = cat.track_va(i)
    a = int(rng.integers(0, max(1, len(va) - 30)))
    sec = va[a : a + 30]
    x = np.linspace(0, 1, 34) ** 1.15 * (len(sec) - 1)
    q = np.stack([np.interp(x, np.arange(len(sec)), sec[:, c]) for c in range(2)], axis=1)
    q = np.clip(q + rng.normal(0, 0.03, q.shape), -1, 1)
    return EmotionArc.from_va((np.arange(len(q)) + 0.5) * HOP, q[:, 0], q[:, 1])


def bench_size(n: int, queries: int, exhaustive_limit: int, rng: np.random.Generator) -> None:
    t = time.perf_counter()
    cat = synthetic_catalog(n, rng)
    t_cat = time.perf_counter() - t
    t = time.perf_counter()
    FastIndex.for_catalog(cat)
    t_index = time.perf_counter() - t
    clips = [query(cat, rng) for _ in range(queries)]
    fast_times, recalls, ex_times = [], [], []
    for clip in clips:
        t = time.perf_counter()
        fast = rank(clip, cat, k=10, fast=True)
        fast_times.append(time.perf_counter() - t)
        if n <= exhaustive_limit:
            t = time.perf_counter()
            ex = rank(clip, cat, k=10, fast=False)
            ex_times.append(time.perf_counter() - t)
            recalls.append(len({m.track_id for m in fast} & {m.track_id for m in ex}) / 10)
    if ex_times:
        ex_note = f"{np.mean(ex_times):.2f} s (measured)"
    else:
        sample = Catalog(
            ids=cat.ids[:2000], paths=cat.paths[:2000], titles=cat.titles[:2000], durations=cat.durations[:2000],
            hops=cat.hops[:2000], offsets=cat.offsets[:2001], va=cat.va[: cat.offsets[2000]], embeddings=None,
        )  # fmt: skip
        t = time.perf_counter()
        rank(clips[0], sample, k=10, fast=False)
        per_track = (time.perf_counter() - t) / 2000
        ex_note = f"{per_track * n:.1f} s (EXTRAPOLATED from 2,000 tracks timed: {per_track * 1e6:.0f} us/track)"
    recall = f"{np.mean(recalls):.3f} over {len(recalls)} queries" if recalls else "not measured (no exhaustive run)"
    print(f"N={n:>7,d}: catalogue {t_cat:.1f} s, fast index build {t_index:.2f} s")
    print(f"   exhaustive DTW per query: {ex_note}")
    print(f"   fast path per query: mean {np.mean(fast_times):.3f} s, max {np.max(fast_times):.3f} s")
    print(f"   fast path recall@10 vs exhaustive: {recall}")


def bench_index(files: int) -> None:
    import soundfile as sf

    from matching.library import Library

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "music"
        folder.mkdir()
        sr = 22050
        rng = np.random.default_rng(0)
        for i in range(files):
            t = np.arange(int(6 * sr)) / sr
            f = 110 * 2 ** (rng.integers(0, 24) / 12)
            env = np.linspace(rng.uniform(0.05, 0.5), rng.uniform(0.05, 0.5), t.size)
            sf.write(str(folder / f"t{i:03d}.wav"), np.sin(2 * np.pi * f * t) * env, sr)
        lib = Library(Path(tmp) / "lib.db")
        report = lib.add_folder(folder, workers=2, progress=False)
        again = lib.add_folder(folder, workers=2, progress=False)
    print(f"index: {len(report.added)} x 6 s WAV with analysis.analyze_track, 2 workers: "
          f"{report.tracks_per_second:.2f} tracks/s ({report.seconds:.1f} s); "
          f"re-run (all known): {again.existing} skipped by checksum in {again.seconds:.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000])
    parser.add_argument("--queries", type=int, default=5)
    parser.add_argument("--exhaustive-limit", type=int, default=10000, help="largest N ranked exhaustively")
    parser.add_argument("--index-files", type=int, default=12)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    for n in args.sizes:
        bench_size(n, args.queries, args.exhaustive_limit, rng)
    if args.index_files:
        bench_index(args.index_files)


if __name__ == "__main__":
    main()
