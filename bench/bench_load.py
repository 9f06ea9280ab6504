"""A bounded load test of the page on loopback: N users at once, each analysing a clip and rating.

    .venv/bin/python bench/bench_load.py                    # 20 users, 2 s clips
    .venv/bin/python bench/bench_load.py --users 5 --seconds 1

Starts ``soundtrack serve`` on 127.0.0.1 (a free port, a three-track MIDI library, a
temporary work folder), then runs ``--users`` threads, each with its own standard
Gradio client (its own session): take the id the server issues, upload and analyse a
clip of its own, rate the first track. Afterwards the feedback tables are read back:
every user must have exactly one recommendation and one rating with the value it sent
(no event lost, none duplicated). Prints p50/p95/max latency of each step and of the
whole visit. The page runs two analyses at a time (``queue(default_concurrency_limit=2)``),
so the later users wait in the queue: the p95 includes that wait. Nothing leaves the
machine.
"""

from __future__ import annotations

import argparse
import os
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from _shared import mediagen

ROOT = Path(__file__).resolve().parent.parent


def _midi(path: Path, pitches: list[int], tempo: float, velocity: int, program: int) -> Path:
    import pretty_midi

    pm = pretty_midi.PrettyMIDI(initial_tempo=tempo)
    inst = pretty_midi.Instrument(program=program)
    beat = 60.0 / tempo
    for i in range(32):
        for p in pitches:
            inst.notes.append(pretty_midi.Note(velocity=velocity, pitch=p, start=i * beat, end=(i + 0.9) * beat))
    pm.instruments.append(inst)
    pm.write(str(path))
    return path


def build_library(folder: Path) -> Path:
    import matching

    folder.mkdir(parents=True, exist_ok=True)
    lib = matching.Library(folder / "lib.db")
    for title, spec in {"bright-march": ([60, 64, 67], 150.0, 110, 0), "slow-lament": ([57, 60, 64], 60.0, 45, 48),
                        "steady-walk": ([62, 65, 69], 100.0, 80, 24)}.items():
        lib.add(_midi(folder / f"{title}.mid", *spec), title=title)
    return folder / "lib.db"


def make_clips(folder: Path, n: int, seconds: float) -> list[Path]:
    mg = mediagen()
    frames = max(2, round(seconds * 25))
    clips = []
    for i in range(n):  # each user's clip differs (colour, motion, audio), so each has its own fingerprint
        colour = (40 + 9 * i % 200, 200 - 7 * i % 180, 60 + 11 * i % 190)
        path = folder / f"user{i:02d}.mp4"
        mg.make_clip(path, shots=[mg.Shot(frames, colour, motion=0.1 + 0.04 * i)], fps=25, size=(160, 90),
                     audio="percussion" if i % 2 else "drone", seed=i)
        clips.append(path)
    return clips


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(db: Path, work: Path, log: Path, users: int) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    env = {**os.environ, "SOUNDTRACK_HOME": str(work / "home"), "GRADIO_ANALYTICS_ENABLED": "False"}
    cmd = [sys.executable, "-m", "soundtrack.cli", "serve", "--library", str(db), "--host", "127.0.0.1",
           "--port", str(port), "--work-dir", str(work / "app"), "-k", "3",
           "--visitors-per-address", str(users)]  # every simulated visitor comes from 127.0.0.1
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode}:\n{log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return proc, url
        except OSError:
            time.sleep(0.5)
    proc.terminate()
    raise TimeoutError(f"the server did not answer within 180 s:\n{log.read_text()[-2000:]}")


@dataclass
class Visit:
    """One user's visit: what it sent and how long each step took."""

    user: int
    uid: str = ""
    rating: int = 0
    seconds: dict[str, float] = field(default_factory=dict)
    error: str = ""


def visit(url: str, user: int, clip: Path, sources: list[str] | None) -> Visit:
    from gradio_client import Client, handle_file

    v = Visit(user=user, rating=1 + user % 5)
    t0 = time.perf_counter()
    try:
        client = Client(url, verbose=False)
        token, _ = client.predict(None, api_name="/identify")
        v.uid = token.rsplit(".", 1)[0]
        t1 = time.perf_counter()
        extra = {"sources": sources} if sources is not None else {}
        out = client.predict(video=handle_file(str(clip)), subtitles=None, content_type="general", token=token,
                             api_name="/analyse", **extra)  # no subtitle file: the clip alone
        if out[0]:
            raise RuntimeError(f"analyse answered {out[0]!r}")
        choice = out[3]["value"] if isinstance(out[3], dict) else out[3]
        t2 = time.perf_counter()
        note = client.predict(choice=choice, rating=str(v.rating), api_name="/rate")
        if f"rated {v.rating}/5" not in note:
            raise RuntimeError(f"rate answered {note!r}")
        t3 = time.perf_counter()
        v.seconds = {"identify": t1 - t0, "analyse": t2 - t1, "rate": t3 - t2, "visit": t3 - t0}
    except Exception as err:  # a failed visit is counted and reported, not raised
        v.error = f"{type(err).__name__}: {err}"
    return v


def check_log(db: Path, visits: list[Visit]) -> dict[str, int]:
    """Lost and duplicated recommendations and ratings, read back from the feedback tables."""
    with sqlite3.connect(db) as conn:
        recs = Counter(u for (u,) in conn.execute("SELECT user_id FROM feedback_recommendations"))
        ratings = conn.execute("SELECT user_id, recommendation_id, value FROM feedback_events "
                               "WHERE kind = 'rating'").fetchall()
    by_user = Counter(u for u, _, _ in ratings)
    sent = {v.uid: v.rating for v in visits if not v.error}
    return {
        "visits_ok": len(sent),
        "recommendations_lost": sum(1 for u in sent if recs[u] == 0),
        "recommendations_duplicated": sum(1 for u in sent if recs[u] > 1),
        "ratings_lost": sum(1 for u in sent if by_user[u] == 0),
        "ratings_duplicated": sum(1 for u in sent if by_user[u] > 1),
        "ratings_wrong_value": sum(1 for u, _, value in ratings if u in sent and value != sent[u]),
        "ratings_from_strangers": sum(1 for u, _, _ in ratings if u not in sent),
    }


def _analyse_takes_sources(url: str) -> bool:
    from gradio_client import Client

    api = Client(url, verbose=False).view_api(return_format="dict", print_info=False)
    params = api["named_endpoints"]["/analyse"]["parameters"]
    return any(p.get("parameter_name") == "sources" for p in params)


def run_load(users: int = 20, seconds: float = 2.0, workdir: Path | None = None) -> tuple[list[Visit], dict, float]:
    """Start a server, run ``users`` concurrent visits; returns (visits, log check, wall seconds)."""
    work = Path(workdir or tempfile.mkdtemp(prefix="bench-load-"))
    db = build_library(work / "library")
    clips = make_clips(work, users, seconds)
    proc, url = start_server(db, work, work / "server.log", users)
    try:
        sources = ["visual", "audio"] if _analyse_takes_sources(url) else None
        results: list[Visit] = [Visit(user=i) for i in range(users)]
        start = threading.Barrier(users)

        def one(i: int) -> None:
            start.wait()
            results[i] = visit(url, i, clips[i], sources)

        threads = [threading.Thread(target=one, args=(i,)) for i in range(users)]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - t0
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
    return results, check_log(db, results), wall


def _pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=20, help="concurrent users (default 20)")
    parser.add_argument("--seconds", type=float, default=2.0, help="length of each user's clip (default 2)")
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()[0]:.2f}; {os.cpu_count()} cores")
    visits, check, wall = run_load(args.users, args.seconds)
    ok = [v for v in visits if not v.error]
    print(f"{len(ok)}/{len(visits)} visits completed in {wall:.1f} s wall ({len(ok) / wall * 60:.1f} visits/min)")
    for step in ("identify", "analyse", "rate", "visit"):
        xs = [v.seconds[step] for v in ok]
        print(f"  {step:<9} p50 {_pct(xs, 50):6.2f} s   p95 {_pct(xs, 95):6.2f} s   max {max(xs, default=0):6.2f} s")
    for v in visits:
        if v.error:
            print(f"  user {v.user}: {v.error}")
    print("feedback log: " + ", ".join(f"{k} {n}" for k, n in check.items()))
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    bad = sum(n for k, n in check.items() if k != "visits_ok") + (len(visits) - len(ok))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
