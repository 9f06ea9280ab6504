"""Batch throughput: clips per minute with 1 and 2 Dask workers on this machine, and the scaling ratio.

    .venv/bin/python bench/bench_batch.py                 # score_video on 8 generated clips
    .venv/bin/python bench/bench_batch.py --task analyze --clips 12 --seconds 6

Generates ``--clips`` clips of ``--seconds`` seconds (320x180, 25 fps, 3 shots, drone or
percussion audio) with ``tests/mediagen.py``, then for each worker count starts a
loopback LocalCluster (one single-threaded process per worker), warms every worker up
on one clip each (imports, models), and times the batch proper. Cold figures include
cluster start and warm-up. ``--workers 0`` rows run in this process, for reference.
A load average is printed before and after: the machine may be shared.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from _shared import mediagen


def make_clips(folder: Path, n: int, seconds: float) -> list[Path]:
    mg = mediagen()
    fps = 25
    frames = round(seconds * fps)
    colors = [(200, 60, 50), (40, 90, 180), (70, 160, 70), (150, 150, 150), (230, 200, 60), (30, 30, 40)]
    paths = []
    for i in range(n):
        a, b = frames // 3, frames // 3
        shots = [mg.Shot(a, colors[i % 6], 0.2 + 0.1 * (i % 5)), mg.Shot(b, colors[(i + 1) % 6], 0.5),
                 mg.Shot(frames - a - b, colors[(i + 2) % 6], 0.1 * (i % 3))]
        path = folder / f"clip{i:02d}.mp4"
        mg.make_clip(path, shots=shots, fps=fps, size=(320, 180), audio="percussion" if i % 2 else "drone", seed=i)
        paths.append(path)
    return paths


def run_once(task_name: str, clips: list[Path], warm: list[Path], workers: int, work: Path) -> dict[str, float]:
    from composer.pipeline.batch import analyze_clip, score_clip, score_videos
    from matching.cluster import get_client

    task = analyze_clip if task_name == "analyze" else score_clip
    t0 = time.perf_counter()
    if workers == 0:
        score_videos(warm[:1], out_dir=work / "warm", workers=0, progress=False, task=task)
        t1 = time.perf_counter()
        report = score_videos(clips, out_dir=work / "main", workers=0, progress=False, task=task)
    else:
        client = get_client(workers=workers)
        try:
            client.wait_for_workers(workers)
            score_videos(warm[:workers], out_dir=work / "warm", client=client, progress=False, task=task)
            t1 = time.perf_counter()
            report = score_videos(clips, out_dir=work / "main", client=client, progress=False, task=task)
        finally:
            client.close()
    t2 = time.perf_counter()
    if report.errors:
        raise SystemExit(f"{report.errors} clip(s) failed: {[r.error for r in report.records if r.error][:3]}")
    task_s = sum(r.seconds for r in report.records)
    return {
        "workers": workers,
        "clips": report.ran,
        "batch_s": round(t2 - t1, 2),
        "clips_per_min": round(60 * report.ran / (t2 - t1), 2),
        "cold_clips_per_min": round(60 * report.ran / (t2 - t0), 2),
        "startup_and_warmup_s": round(t1 - t0, 2),
        "mean_task_s": round(task_s / max(1, report.ran), 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", choices=("score", "analyze"), default="score")
    parser.add_argument("--clips", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="bench_batch_") as tmp:
        tmp_path = Path(tmp)
        (tmp_path / "clips").mkdir()
        (tmp_path / "warm").mkdir()
        clips = make_clips(tmp_path / "clips", args.clips, args.seconds)
        warm = make_clips(tmp_path / "warm", 2, args.seconds)
        for w in warm:  # other bytes than the batch clips, so nothing is skipped by content
            w.rename(w.with_name("warm_" + w.name))
        warm = sorted((tmp_path / "warm").glob("*.mp4"))
        load_before = os.getloadavg()
        rows = [run_once(args.task, clips, warm, w, tmp_path / f"run{w}") for w in args.workers]
        load_after = os.getloadavg()
    by_w = {r["workers"]: r for r in rows}
    result = {
        "task": args.task,
        "clip_seconds": args.seconds,
        "cores": len(os.sched_getaffinity(0)),
        "load_before": [round(x, 2) for x in load_before],
        "load_after": [round(x, 2) for x in load_after],
        "rows": rows,
    }
    if 1 in by_w and 2 in by_w:
        result["scaling_2_over_1"] = round(by_w[2]["clips_per_min"] / by_w[1]["clips_per_min"], 3)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"task={args.task} clips={args.clips}x{args.seconds:g}s cores={result['cores']} "
              f"load before {result['load_before']} after {result['load_after']}")
        for r in rows:
            print(f"  workers={r['workers']}: {r['clips_per_min']:.1f} clips/min warm "
                  f"({r['batch_s']:.1f} s for {r['clips']}), {r['cold_clips_per_min']:.1f} cold "
                  f"(start+warm-up {r['startup_and_warmup_s']:.1f} s), {r['mean_task_s']:.2f} s per clip")
        if "scaling_2_over_1" in result:
            print(f"  scaling 2 workers / 1 worker: {result['scaling_2_over_1']:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
