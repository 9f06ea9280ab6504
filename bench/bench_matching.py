"""Matching benchmark: exhaustive DTW vs the sketch-shortlist fast path, recall@10, index throughput.

Synthetic libraries of smoothed random-walk arcs (30-240 steps at 1 s, i.e. 0.5-4 min
tracks). Queries: two in three are time-warped, noisy sections (12 to 90 steps) of a
random track, one in three an unrelated random walk of 15 to 90 steps. For every query
that is ranked exhaustively, every track's exact blended score is computed (what
``rank(fast=False)`` does); recall@10 of ``rank(fast=True)`` is the share of the exact
top 10 it returns. Exhaustive time is measured on the queries ranked exhaustively
(``--exhaustive-limit``, ``--exhaustive-queries``), otherwise extrapolated from a
timed 2,000-track sample (the output says which). Fast-path times exclude the one-off
sketch-table build, which is reported separately with the tables' memory.

``--sweep`` also reports, for the exhaustively ranked queries, the recall of other
shortlist sizes (exact: the fast path's top 10 is the exact top 10 of its shortlist).
Index throughput: ``Library.add_folder`` with the real ``analysis.analyze_track`` on
small generated WAV files.

    .venv/bin/python bench/bench_matching.py            # 1k, 10k, 100k
    .venv/bin/python bench/bench_matching.py --sizes 1000 --queries 6 --index-files 0
    .venv/bin/python bench/bench_matching.py --sizes 100000 --exhaustive-limit 100000 --exhaustive-queries 3
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from analysis.arc import EmotionArc
from matching.ranking import sketches as fastmod
from matching.ranking.catalog import Catalog, arc_summary
from matching.ranking.index import SketchIndex, create_index
from matching.ranking.ranker import (
    align_tracks,
    comparison_va,
    embedding_scores,
    estimated_scores,
    rank,
    shortlist_size,
)
from matching.ranking.weights import MatchWeights

HOP = 1.0
W = MatchWeights()


def synthetic_catalog(n: int, rng: np.random.Generator) -> Catalog:
    """Smoothed random walks (5-step moving average, zero-padded at the ends), centred on a random level.

    Generated in vectorised chunks straight into float32, so a million tracks cost about
    1 GB and a few seconds.
    """
    lengths = rng.integers(30, 241, n)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    va = np.empty((int(offsets[-1]), 2), dtype=np.float32)
    for lo in range(0, n, 65536):
        hi = min(n, lo + 65536)
        m = lengths[lo:hi]
        starts = offsets[lo:hi] - offsets[lo]
        seg = np.repeat(np.arange(hi - lo), m)
        x = np.cumsum(rng.normal(0, 0.08, (int(m.sum()), 2)), axis=0)
        x -= np.repeat(np.where(starts[:, None] > 0, x[np.maximum(starts - 1, 0)], 0.0), m, axis=0)  # per track
        pos = np.arange(x.shape[0]) - starts[seg]
        cum = np.concatenate([np.zeros((1, 2)), np.cumsum(x, axis=0)])
        a = starts[seg] + np.maximum(pos - 2, 0)
        b = starts[seg] + np.minimum(pos + 2, m[seg] - 1) + 1
        x = (cum[b] - cum[a]) / 5  # np.convolve(x, ones(5) / 5, "same") inside each track
        mean = np.add.reduceat(x, starts, axis=0) / m[:, None]
        level = rng.uniform(-0.5, 0.5, (hi - lo, 2))
        va[offsets[lo] : offsets[hi]] = np.clip(x - np.repeat(mean - level, m, axis=0), -1, 1)
    return Catalog(
        ids=np.arange(1, n + 1, dtype=np.int64),
        paths=tuple(f"synthetic/{i}" for i in range(1, n + 1)),
        titles=(None,) * n,
        durations=lengths * HOP,
        hops=np.full(n, HOP),
        offsets=offsets,
        va=va,
        embeddings=None,
    )


def _arc(q: np.ndarray) -> EmotionArc:
    return EmotionArc.from_va((np.arange(len(q)) + 0.5) * HOP, q[:, 0], q[:, 1])


def query(cat: Catalog, rng: np.random.Generator, kind: str) -> EmotionArc:
    """A warped noisy section of a random track (``kind="section"``) or an unrelated walk."""
    if kind == "random":
        m = int(rng.integers(15, 91))
        x = np.cumsum(rng.normal(0, 0.08, (m, 2)), axis=0)
        x = np.stack([np.convolve(x[:, c], np.ones(5) / 5, mode="same") for c in range(2)], axis=1)
        return _arc(np.clip(x - x.mean(axis=0) + rng.uniform(-0.5, 0.5, 2), -1, 1))
    i = int(rng.integers(0, len(cat)))
    va = cat.track_va(i)
    length = min(int(rng.integers(12, 91)), len(va))
    a = int(rng.integers(0, len(va) - length + 1))
    sec = va[a : a + length]
    n = max(4, round(length * rng.uniform(0.85, 1.15)))
    x = np.linspace(0, 1, n) ** rng.uniform(0.85, 1.2) * (len(sec) - 1)
    q = np.stack([np.interp(x, np.arange(len(sec)), sec[:, c]) for c in range(2)], axis=1)
    return _arc(np.clip(q + rng.normal(0, 0.03, q.shape), -1, 1))


def exact_scores(cat: Catalog, clip: EmotionArc, w: MatchWeights = W) -> np.ndarray:
    """Every track's exact blended score, as ``rank(fast=False)`` computes it (compiled, on every core): on the
    clip's compared steps, both parts scaled by the share of the clip a track covers."""
    q, hop = comparison_va(clip)
    w_dtw, w_emb = w.blend
    emb = embedding_scores(arc_summary(clip), cat.summaries)
    al = align_tracks(cat, np.arange(len(cat)), q, hop, w)  # al.score carries the coverage already
    return w_dtw * al.score + w_emb * al.coverage * emb


def top10(scores: np.ndarray, cat: Catalog) -> set[int]:
    order = np.lexsort((cat.ids, -scores))  # score descending, then id, like rank()
    return {int(cat.ids[i]) for i in order[:10]}


def shortlist_recall(cat: Catalog, clip: EmotionArc, exact: np.ndarray, sizes: list[int]) -> list[float]:
    """recall@10 of shortlists of each size in ``sizes`` against exact scores."""
    q, hop = comparison_va(clip)
    emb = embedding_scores(arc_summary(clip), cat.summaries)
    order = np.argsort(-estimated_scores(cat, q, hop, W, emb), kind="stable")
    out = []
    for size in sizes:
        sub = np.full(len(cat), -np.inf)
        sub[order[:size]] = exact[order[:size]]
        out.append(len(top10(sub, cat) & top10(exact, cat)) / 10)
    return out


def bench_size(n: int, args: argparse.Namespace, rng: np.random.Generator) -> None:
    t = time.perf_counter()
    made = synthetic_catalog(n, rng)
    t_cat = time.perf_counter() - t
    folder = Path(tempfile.mkdtemp(prefix="bench-index-", dir=args.index_dir))
    t = time.perf_counter()
    create_index(folder, made)
    t_write = time.perf_counter() - t
    del made
    t = time.perf_counter()
    index = SketchIndex(folder)  # what a restarted process does (the page cache may hold the files)
    t_open = time.perf_counter() - t
    cat = index.catalog
    kinds = ["section", "section", "random"] * args.queries
    clips = [query(cat, rng, kinds[j]) for j in range(args.queries)]
    print(f"N={n:>7,d}: catalogue {t_cat:.1f} s, {cat.va.nbytes / 1e6:.0f} MB of arcs; persistent index written in "
          f"{t_write:.1f} s, opened in {t_open:.2f} s (memory-mapped, {folder})")
    try:
        _bench_queries(n, cat, clips, kinds, args, index)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _bench_queries(n: int, cat: Catalog, clips: list[EmotionArc], kinds: list[str], args: argparse.Namespace,
                   index: SketchIndex) -> None:
    built: dict[float, tuple[float, int, int]] = {}  # length -> (build seconds, bytes, windows)
    fast_times, recalls, ex_times, kinds_done = [], [], [], []
    t = time.perf_counter()  # a process's first query loads the compiled kernels: not a warm query
    rank(clips[0], create_index(index.folder / "warm", cat.subset(np.arange(min(n, 300)))), k=10, candidates=50)
    print(f"   first query of the process (loads the compiled kernels, on a 300-track index): "
          f"{time.perf_counter() - t:.2f} s, not counted below")
    sweeps: list[list[float]] = []
    for j, clip in enumerate(clips):
        t_tables = time.perf_counter()
        for length in fastmod.lengths_for(clip.duration, W.max_stretch):  # one-off builds, timed apart
            t = time.perf_counter()
            table = fastmod.sketch_table(cat, length)  # built and stored in the index on first use
            if length not in built:
                built[length] = (time.perf_counter() - t, table.nbytes, table.n_rows)
        del table
        t_tables = time.perf_counter() - t_tables
        t = time.perf_counter()
        hits = rank(clip, cat, k=10, fast=True, candidates=args.candidates)
        fast_times.append(time.perf_counter() - t)
        note = ""
        if n <= args.exhaustive_limit and j < args.exhaustive_queries:
            t = time.perf_counter()
            ex = exact_scores(cat, clip)
            ex_times.append(time.perf_counter() - t)
            recalls.append(len({m.track_id for m in hits} & top10(ex, cat)) / 10)
            kinds_done.append(kinds[j])
            note = f", exhaustive {ex_times[-1]:.1f} s, recall@10 {recalls[-1]:.1f}"
        print(f"   . query {j + 1} ({kinds[j]}, {clip.duration:.0f} s): tables {t_tables:.1f} s, "
              f"fast path {fast_times[-1]:.3f} s{note}", flush=True)
        if note:
            if args.sweep:  # while this query's tables are cached
                sweeps.append(shortlist_recall(cat, clip, ex, args.sweep_candidates))
            if n <= 2000:  # the helper agrees with rank(fast=False)
                ids = {m.track_id for m in rank(clip, cat, k=10, fast=False)}
                assert ids == top10(ex, cat), "exact_scores disagrees with rank(fast=False)"
    ex_note = _exhaustive_note(n, ex_times, cat, clips)
    _report(n, args, built, ex_note, fast_times, recalls, kinds_done, sweeps, clips)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
    print(f"   persistent index on disk: {index.nbytes_on_disk() / 1e9:.2f} GB ({len(index.lengths())} tables); "
          f"peak memory of this process so far (max RSS): {peak:.2f} GB")


def _exhaustive_note(n: int, ex_times: list[float], cat: Catalog, clips: list[EmotionArc]) -> str:
    if ex_times:
        return f"{np.mean(ex_times):.2f} s (measured on {len(ex_times)} queries)"
    s = min(2000, n)
    sample = cat.subset(np.arange(s))
    t = time.perf_counter()
    exact_scores(sample, clips[0])
    per_track = (time.perf_counter() - t) / s
    return f"{per_track * n:.1f} s (EXTRAPOLATED from {s:,d} tracks timed: {per_track * 1e6:.0f} us/track)"


def _report(n, args, built, ex_note, fast_times, recalls, kinds_done, sweeps, clips) -> None:
    build_s = np.array([b[0] for b in built.values()])
    print(f"   sketch tables (P={fastmod.POINTS} int8, stride {fastmod.STRIDE}, {len(fastmod.SHIFTS)} shifts, "
          f"persistent, memory-mapped): {len(built)} lengths used, build {build_s.mean():.2f} s per length "
          f"(max {build_s.max():.2f} s)")
    print("     " + ", ".join(f"{length:.0f} s: {b[2] / 1e6:.2f}M windows {b[1] / 1e6:.0f} MB"
                            for length, b in sorted(built.items())))
    print(f"   exhaustive DTW per query: {ex_note}")
    c_used = args.candidates or shortlist_size(n)
    print(f"   fast path per query (C={c_used}): mean {np.mean(fast_times):.3f} s, "
          f"median {np.median(fast_times):.3f} s, max {np.max(fast_times):.3f} s over {len(clips)} queries")
    if recalls:
        r = np.array(recalls)
        sec = r[np.array(kinds_done) == "section"]
        rnd = r[np.array(kinds_done) == "random"]
        print(f"   fast path recall@10 vs exhaustive: mean {r.mean():.3f}, min {r.min():.1f} over {len(r)} queries "
              f"(sections {sec.mean() if sec.size else float('nan'):.3f} x{sec.size}, "
              f"unrelated {rnd.mean() if rnd.size else float('nan'):.3f} x{rnd.size})")
    else:
        print("   fast path recall@10 vs exhaustive: not measured (no exhaustive run)")
    if sweeps:
        for c, rec in zip(args.sweep_candidates, np.array(sweeps).T, strict=True):
            print(f"     shortlist C={c:>4d}: recall@10 mean {rec.mean():.3f} min {rec.min():.1f}")


def bench_index(files: int, worker_counts: list[int]) -> None:
    """Index the same generated WAV folder on Dask LocalClusters of each size.

    Neither the cluster's start nor each worker's model loading (one analysis on every
    worker before the clock starts) is timed: what scales is the per-file work.
    """
    import soundfile as sf

    from analysis.music.track import analyze_track
    from matching.cluster import get_client
    from matching.library.store import Library

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
        rates = {}
        for workers in worker_counts:
            lib = Library(Path(tmp) / f"lib{workers}.db")
            client = get_client(workers=workers)
            try:
                client.run(analyze_track, str(folder / "t000.wav"))  # every worker loads its models first
                report = lib.add_folder(folder, progress=False, client=client)
                again = lib.add_folder(folder, progress=False, client=client)
            finally:
                client.close()
            rates[workers] = report.tracks_per_second
            print(f"index: {len(report.added)} x 6 s WAV with analysis.analyze_track on a {workers}-worker Dask "
                  f"LocalCluster: {report.tracks_per_second:.2f} tracks/s ({report.seconds:.1f} s); re-run (all "
                  f"known): {again.existing} skipped by checksum in {again.seconds:.2f} s")
        if len(rates) > 1:
            base = rates[worker_counts[0]]
            print("index scaling: " + ", ".join(f"{w} workers {r / base:.2f}x" for w, r in rates.items())
                  + f" of {worker_counts[0]} (on this machine's {len(os.sched_getaffinity(0))} cores)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000])
    parser.add_argument("--queries", type=int, default=12)
    parser.add_argument("--candidates", type=int, default=None, help="shortlist size (default: rank's rule)")
    parser.add_argument("--exhaustive-limit", type=int, default=10000, help="largest N ranked exhaustively")
    parser.add_argument("--exhaustive-queries", type=int, default=12, help="queries ranked exhaustively per size")
    parser.add_argument("--sweep", action="store_true", help="recall of other shortlist configurations")
    parser.add_argument("--sweep-candidates", type=int, nargs="+", default=[300, 1000, 3000, 10000])
    parser.add_argument("--index-files", type=int, default=12)
    parser.add_argument("--index-workers", type=int, nargs="+", default=[1, 2],
                        help="Dask worker counts to index --index-files files with (scaling)")
    parser.add_argument("--index-dir", default=None, help="folder for the temporary persistent index")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    for n in args.sizes:
        bench_size(n, args, rng)
    if args.index_files:
        bench_index(args.index_files, args.index_workers)


if __name__ == "__main__":
    main()
