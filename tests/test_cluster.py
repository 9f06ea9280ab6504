"""The same batch on a real Dask LocalCluster (2 worker processes on loopback) as in this process.

Uses the generated batch and the real decoding task of ``test_batch.py``. One cluster
is shared by the module to keep the run short; one test starts its own through the
default path (no client, ``workers=2``).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dask
import numpy as np
import pytest
import soundfile as sf
from mediagen import drone, percussion
from test_batch import BAD, GOOD, make_batch, probe_task

from analysis.arc import EmotionArc
from analysis.errors import MediaError
from composer.pipeline.batch import ClipJob, ScoreSettings, score_videos
from composer.pipeline.manifest import Manifest, TaskResult
from matching.cluster import ClusterError, cache_info, cluster_session, get_client, run_tasks, worker_cache

distributed = pytest.importorskip("distributed")


def _comparable(manifest: Manifest) -> dict[str, tuple]:
    """Per input: everything that must not depend on where the task ran."""
    return {
        Path(r.input).name: (r.content_hash, r.settings, r.status, r.error, dict(r.result),
                             tuple(Path(p).relative_to(manifest.folder).as_posix() for p in r.outputs))
        for r in manifest.latest().values()
    }


def crashing_task(job: ClipJob, settings: ScoreSettings) -> TaskResult:
    """Takes its worker process down on the 'dark' clip, as a decoder segfault would."""
    if Path(job.path).stem == "dark":
        os._exit(3)
    return probe_task(job, settings)


def slow_task(job: ClipJob, settings: ScoreSettings) -> TaskResult:
    """:func:`probe_task` a second later, so that a batch can be interrupted mid-way; meanwhile a half-written
    file lies in the clip's folder, as a render's does."""
    (Path(job.out_dir) / "render.part").write_bytes(b"RIFF")
    time.sleep(1.0)
    (Path(job.out_dir) / "render.part").unlink()
    return probe_task(job, settings)


def _preload_probe() -> None:
    worker_cache("preloaded", lambda: "ready")


def _pid(_item: object) -> int:
    return os.getpid()


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_batch(tmp_path_factory.mktemp("cluster") / "clips")


@pytest.fixture(scope="module")
def client() -> Iterator[object]:
    # No retries of a task whose worker died, so the crash test does not kill 4 workers.
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        cluster = distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", scheduler_port=0,
            dashboard_address=None,
        )
    cl = distributed.Client(cluster, set_as_default=False)
    try:
        yield cl
    finally:
        cl.close()
        cluster.close()


@pytest.fixture(scope="module")
def local_run(clips: Path, tmp_path_factory: pytest.TempPathFactory) -> Manifest:
    out = tmp_path_factory.mktemp("local")
    score_videos(clips, out_dir=out, workers=0, progress=False, task=probe_task)
    return Manifest(out)


def test_own_local_cluster_gives_the_same_results_as_in_process(clips: Path, local_run: Manifest,
                                                                 tmp_path: Path) -> None:
    report = score_videos(clips, out_dir=tmp_path, workers=2, progress=False, task=probe_task)
    assert (report.ran, report.ok, report.errors) == (6, 4, 2)
    assert _comparable(Manifest(tmp_path)) == _comparable(local_run)
    assert all(r.worker != local_run.records()[0].worker for r in report.records)  # not this process


def test_scheduler_address_runs_on_that_cluster_once_model_per_worker(client, clips: Path, local_run: Manifest,
                                                                      tmp_path: Path) -> None:
    address = client.scheduler.address
    assert address.startswith("tcp://127.0.0.1:")
    report = score_videos(clips, out_dir=tmp_path, scheduler=address, progress=False, task=probe_task)
    assert _comparable(Manifest(tmp_path)) == _comparable(local_run)
    workers = {r.worker for r in report.records}
    worker_pids = set(client.run(os.getpid).values())
    assert {int(w.rsplit(":", 1)[1]) for w in workers} <= worker_pids
    # Six tasks, the "model" built once per worker process, never per task.
    loads = client.run(cache_info)
    assert all(info.get("'probe-model'", 0) <= 1 for info in loads.values())
    assert sum(info.get("'probe-model'", 0) for info in loads.values()) == len(workers)


def test_resume_on_the_cluster_skips_what_the_local_run_did(client, clips: Path, tmp_path: Path) -> None:
    first = score_videos([clips / "dark.mp4", clips / "garbled.mp4"], out_dir=tmp_path, workers=0,
                         progress=False, task=probe_task)
    assert first.ran == 2
    rest = score_videos(clips, out_dir=tmp_path, client=client, progress=False, task=probe_task)
    assert (rest.ran, rest.skipped) == (4, 2)
    assert len(Manifest(tmp_path).records()) == len({*GOOD, *BAD})


def test_preload_plugin_loads_on_every_worker_before_tasks(client) -> None:
    outcomes = list(run_tasks(_pid, [1], client=client, progress=False, preload=[_preload_probe]))
    assert outcomes[0].ok
    infos = client.run(cache_info)
    assert len(infos) == 2 and all(info.get("'preloaded'") == 1 for info in infos.values())


def test_task_that_kills_its_worker_is_recorded_and_batch_goes_on(client, clips: Path, tmp_path: Path) -> None:
    report = score_videos(clips, out_dir=tmp_path, client=client, progress=False, task=crashing_task)
    recs = {Path(r.input).stem: r for r in report.records}
    assert sorted(recs) == sorted([*GOOD, *BAD])
    assert recs["dark"].status == "error" and "killed its worker" in recs["dark"].error
    assert all(recs[n].status == "ok" for n in GOOD if n != "dark")
    assert all(recs[n].status == "error" for n in BAD)


def test_a_local_cluster_keeps_its_info_lines_to_itself() -> None:
    """A quiet application (root at WARNING, as the CLI without -v) gets none of the cluster's INFO
    lines: some 45 per batch (nannies, workers, client connections starting and closing) came through."""
    import logging

    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    root, distributed = logging.getLogger(), logging.getLogger("distributed")
    levels = root.level, distributed.level
    root.addHandler(handler)
    root.setLevel(logging.WARNING)
    try:
        get_client(workers=1).close()
    finally:
        root.removeHandler(handler)
        root.setLevel(levels[0])
        distributed.setLevel(levels[1])
    assert not [r.getMessage() for r in records if r.name.startswith("distributed") and r.levelno < logging.WARNING]


#: Seconds a worker takes to close with :class:`SlowExit` registered: past the 4 s a plain close allows.
EXIT_SECONDS = 6.0


class SlowExit(distributed.WorkerPlugin):
    """Makes its worker take :data:`EXIT_SECONDS` to close, as a worker that had loaded librosa, numba and
    torch did on a busy machine (its plugins are torn down as it closes; ``atexit`` never runs there), and
    then writes ``done``: a worker killed before it finished closing leaves no such file."""

    def __init__(self, done: Path) -> None:
        self.done = done

    async def teardown(self, worker: object) -> None:
        import asyncio

        await asyncio.sleep(EXIT_SECONDS)
        self.done.write_text("closed")


def test_a_finished_local_batch_lets_its_workers_exit_without_killing_them(tmp_path: Path) -> None:
    """A plain close gave each worker 4 s to exit, and busy batches ended with Dask's "Worker process still
    alive after 4.0 seconds, killing"; a session that ends normally now closes its nannies with CLOSE_TIMEOUT first."""
    import logging

    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = records.append  # type: ignore[method-assign]
    nanny = logging.getLogger("distributed.nanny")
    nanny.addHandler(handler)
    try:
        with cluster_session(workers=1) as cl:
            cl.register_plugin(SlowExit(tmp_path / "done"), name="slow-exit")
            assert cl.submit(_pid, None, pure=False).result() != os.getpid()
    finally:
        nanny.removeHandler(handler)
    assert not [r.getMessage() for r in records if "still alive" in r.getMessage()]
    assert (tmp_path / "done").read_text() == "closed"


def test_a_finished_local_batch_ends_without_the_scheduler_warning_of_lost_results() -> None:
    """4 of 5 finished local batches ended with the scheduler's "Removing worker ... caused the cluster to lose
    already computed task(s), which will be recomputed elsewhere": the workers were closed before the scheduler
    heard that the client had dropped the results it had taken. Nothing was lost or recomputed."""
    import logging

    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = records.append  # type: ignore[method-assign]
    scheduler = logging.getLogger("distributed.scheduler")
    level = scheduler.level
    scheduler.addHandler(handler)
    scheduler.setLevel(logging.WARNING)  # as the command line shows it
    try:
        for _ in range(3):
            values = sorted(o.value for o in run_tasks(abs, list(range(-8, 0)), workers=2, progress=False))
            assert values == list(range(1, 9))
    finally:
        scheduler.removeHandler(handler)
        scheduler.setLevel(level)
    assert not [r.getMessage() for r in records if "lose already computed" in r.getMessage()]


def test_a_second_local_cluster_finds_no_port_taken() -> None:
    """A batch beside another (or beside anything on 8787) warned "Port 8787 is already in use": the
    scheduler serves its HTTP routes even without a dashboard. They now take a random loopback port."""
    import socket
    import warnings

    holder = socket.socket()
    try:
        holder.bind(("127.0.0.1", 8787))
        holder.listen()
    except OSError:
        pass  # something holds it already, which is the case to test
    try:
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            client = get_client(workers=1)
            try:
                port = client.scheduler_info()["services"]["dashboard"]
                assert client.submit(abs, -3).result() == 3
            finally:
                client.close()
    finally:
        holder.close()
    assert port != 8787
    assert not [w for w in seen if "already in use" in str(w.message)]


_INTERRUPTIBLE = """
import sys
from pathlib import Path
import test_cluster
from composer.pipeline.batch import score_videos

try:
    score_videos(Path(sys.argv[1]), out_dir=Path(sys.argv[2]), workers=1, progress=False, task=test_cluster.slow_task)
except KeyboardInterrupt:
    print("interrupted", file=sys.stderr)
    sys.exit(130)
"""


def _group_members(group: int) -> list[int]:
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == group:
            members.append(int(stat.parent.name))
    return members


def test_ctrl_c_on_a_local_cluster_batch_stops_it_quietly_and_it_resumes(clips: Path, tmp_path: Path) -> None:
    """Ctrl-C in a terminal reaches the whole process group. The workers answered it too: each died
    printing a KeyboardInterrupt traceback (some 70 lines for two), and the client waited 4 s for them."""
    here = Path(__file__).parent
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(here), str(here.parent)])}
    proc = subprocess.Popen([sys.executable, "-c", _INTERRUPTIBLE, str(clips), str(tmp_path)], env=env,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    manifest = Manifest(tmp_path)
    deadline = time.monotonic() + 120
    while not [r for r in manifest.records() if r.worker != "client"]:
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"batch subprocess ended early or stalled (rc {proc.returncode})")
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert err.strip() == "interrupted"  # no worker's traceback, no "still alive, killing" warnings
    while _group_members(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _group_members(proc.pid)  # no worker process left behind
    done = {r.key for r in manifest.records()}
    # The clips stopped mid-way leave no folder (their workers were killed before they could clean up):
    # every folder left is a finished clip's, holding just its outputs.
    finished = {Path(p).parent: Path(p).name for r in manifest.records() for p in r.outputs}
    left = {d: sorted(f.name for f in d.iterdir()) for d in (tmp_path / "clips").iterdir()}
    assert left == {d: [finished.get(d)] for d in left}
    rest = score_videos(clips, out_dir=tmp_path, workers=0, progress=False, task=slow_task)
    assert rest.skipped == len(done) and rest.ran == 6 - len(done)


@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
def test_ctrl_c_while_a_local_cluster_starts_stops_it_and_leaves_no_worker(sig: str) -> None:
    """Ctrl-C pressed while the local cluster started broke its start off half-way: the workers it had started
    were left running, closed only at exit, with "Exception ignored in atexit callback: <function close_clusters
    ...> AssertionError: Status.init". The Ctrl-C is now raised once the start is over, and the cluster stopped;
    so is the SIGTERM that `soundtrack batch` takes as an interrupt."""
    import contextlib
    import multiprocessing
    import threading

    from soundtrack.argtypes import Terminated, sigterm_as_interrupt

    raised, taking = {"SIGINT": (KeyboardInterrupt, contextlib.nullcontext()),
                      "SIGTERM": (Terminated, sigterm_as_interrupt())}[sig]
    before = {p.pid for p in multiprocessing.active_children()}
    timer = threading.Timer(0.3, os.kill, (os.getpid(), getattr(signal, sig)))  # the start takes a second or more
    timer.start()
    try:
        with pytest.raises(raised), taking, cluster_session(workers=1) as cl:
            cl.submit(abs, -1).result()
            time.sleep(30)  # not reached when the signal is raised as the session opens
    finally:
        timer.cancel()
    deadline = time.monotonic() + 30
    while {p.pid for p in multiprocessing.active_children()} - before and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not {p.pid for p in multiprocessing.active_children()} - before


def test_unreachable_scheduler_is_a_clear_error() -> None:
    with pytest.raises(ClusterError, match=r"tcp://127\.0\.0\.1:9"):
        get_client("tcp://127.0.0.1:9", timeout=1)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_refusing_address_fails_without_waiting_for_dask(monkeypatch) -> None:
    """Nothing listens there: said at once, not after Dask's 20 s of retries (Dask is never asked)."""
    import distributed

    def no_dask(*args, **kwargs):
        raise AssertionError("Dask was left to retry a refused address for its whole timeout")

    monkeypatch.setattr(distributed, "Client", no_dask)
    port = _free_port()
    with pytest.raises(ClusterError, match=rf"tcp://127\.0\.0\.1:{port}'.*connection refused"):
        get_client(f"tcp://127.0.0.1:{port}")


def test_a_listening_address_is_left_to_dask() -> None:
    """An address that accepts connections is not called refused (a busy scheduler gets Dask's whole timeout)."""
    from matching.cluster import _refuses

    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        assert _refuses(f"tcp://127.0.0.1:{server.getsockname()[1]}", 1.0) is None
    assert "refused" in _refuses(f"tcp://127.0.0.1:{_free_port()}", 0.2)


def test_a_scheduler_that_starts_listening_a_moment_later_is_not_called_refused() -> None:
    """`dask scheduler &` then a batch in the same script: the address refuses for a second or so first."""
    import threading

    from matching.cluster import REFUSED_FOR, _refuses

    port = _free_port()
    server = socket.socket()
    listening = threading.Timer(1.5, lambda: (server.bind(("127.0.0.1", port)), server.listen()))
    listening.start()
    try:
        assert _refuses(f"tcp://127.0.0.1:{port}", REFUSED_FOR) is None
    finally:
        listening.join()
        server.close()


@pytest.fixture()
def silent_address() -> Iterator[str]:
    """A TCP address that accepts every connection and never sends a byte."""
    import threading

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    taken: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                taken.append(server.accept()[0])
            except OSError:  # closed
                return

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield f"tcp://127.0.0.1:{server.getsockname()[1]}"
    finally:
        server.close()
        for conn in taken:
            conn.close()


def test_a_silent_address_is_a_clear_error_not_a_hang(silent_address: str) -> None:
    """Dask waits for the handshake without a limit: the Client had not returned after 5 minutes."""
    with pytest.raises(ClusterError, match=rf"'{silent_address}' .*no Dask handshake within 2 s"):
        get_client(silent_address, timeout=2)


def test_cli_batch_on_a_silent_scheduler_fails_in_one_line(clips: Path, tmp_path: Path, silent_address: str) -> None:
    # Without CI: pyfluidsynth prints where it found libfluidsynth to stdout when CI is set (soundtrack.jsonout).
    env = {k: v for k, v in os.environ.items() if k != "CI"} | {"PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    out = subprocess.run([sys.executable, "-m", "soundtrack", "batch", str(clips), "--out", str(tmp_path / "out"),
                          "--scheduler", silent_address, "--no-progress"], env=env, capture_output=True, text=True,
                         timeout=240)  # the old code was still waiting here
    assert out.returncode == 2
    assert out.stderr.strip().count("\n") == 0 and silent_address in out.stderr, out.stderr
    assert "no Dask handshake" in out.stderr and not out.stdout


@dataclass(frozen=True)
class RmsTrack:
    kind: str
    duration: float
    arc: EmotionArc
    embedding: np.ndarray


def rms_analyzer(path: Path, *, hop: float = 0.5) -> RmsTrack:
    """A light track analyzer for indexing tests: arousal follows the RMS of each window."""
    try:
        y, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError) as err:
        raise MediaError(path, f"cannot be decoded as audio ({err})") from None
    y = y.mean(axis=1)
    w = int(hop * sr)
    n = max(1, y.size // w)
    rms = np.sqrt((y[: n * w].reshape(n, w) ** 2).mean(axis=1))
    arc = EmotionArc.from_va((np.arange(n) + 0.5) * hop, np.zeros(n), np.clip(rms * 4 - 1, -1, 1))
    return RmsTrack("audio", y.size / sr, arc, np.array([rms.mean()], dtype=np.float32))


def _index_both_ways(client, tmp_path: Path, analyzer) -> None:
    from matching.library.store import Library

    music = tmp_path / "music"
    music.mkdir()
    sf.write(music / "calm.wav", drone(2.0), 22050)
    sf.write(music / "busy.flac", percussion(2.0), 22050)
    (music / "broken.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    local = Library(tmp_path / "local.db", analyzer=analyzer)
    here = local.add_folder(music, workers=0, progress=False)
    remote = Library(tmp_path / "remote.db", analyzer=analyzer)
    there = remote.add_folder(music, client=client, progress=False)
    assert len(here.added) == len(there.added) == 2
    assert [s.path for s in here.skipped] == [s.path for s in there.skipped] == [str(music / "broken.wav")]
    by_sum = {r.checksum: r for r in local.list()}
    for rec in remote.list():
        twin = by_sum[rec.checksum]
        assert np.allclose(remote.arc(rec.id).arousal, local.arc(twin.id).arousal)
    assert {r.checksum for r in remote.list()} == set(by_sum)
    # A scheduler address works too, and nothing is analysed twice.
    again = remote.add_folder(music, client=client.scheduler.address, progress=False)
    assert (len(again.added), again.existing) == (0, 2)


def test_index_folder_on_the_cluster_matches_in_process(client, tmp_path: Path) -> None:
    _index_both_ways(client, tmp_path, rms_analyzer)


@pytest.mark.slow
def test_index_folder_on_the_cluster_with_the_real_track_analysis(client, tmp_path: Path) -> None:
    from analysis.music.track import analyze_track

    _index_both_ways(client, tmp_path, analyze_track)


@pytest.mark.slow
def test_readme_recipe_dask_scheduler_and_worker_cli(clips: Path, tmp_path: Path) -> None:
    """`dask scheduler` + `dask worker ADDR` as separate processes, then `soundtrack batch/index --scheduler`."""
    import json
    import subprocess
    import sys
    import time

    import soundfile as sf

    bin_dir = Path(sys.executable).parent
    info = tmp_path / "scheduler.json"
    procs = [subprocess.Popen([str(bin_dir / "dask"), "scheduler", "--host", "127.0.0.1", "--port", "0",
                               "--no-dashboard", "--scheduler-file", str(info)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        deadline = time.monotonic() + 60
        while not info.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        address = json.loads(info.read_text())["address"]
        procs.append(subprocess.Popen([str(bin_dir / "dask"), "worker", address, "--nworkers", "2", "--nthreads", "1",
                                       "--no-dashboard"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        out = tmp_path / "out"
        done = subprocess.run([str(bin_dir / "soundtrack"), "batch", str(clips), "--out", str(out), "--scheduler",
                               address, "--analyze-only", "--json", "--no-progress"],
                              capture_output=True, text=True, timeout=300)
        report = json.loads(done.stdout)
        assert done.returncode == 1 and (report["ok"], report["errors"]) == (4, 2), done.stderr
        assert {r["worker"] for r in report["records"]} and all(
            int(r["worker"].rsplit(":", 1)[1]) != os.getpid() for r in report["records"])
        music = tmp_path / "music"
        music.mkdir()
        sf.write(music / "calm.wav", drone(2.0), 22050)
        sf.write(music / "busy.wav", percussion(2.0), 22050)
        db = tmp_path / "lib.db"
        idx = subprocess.run([str(bin_dir / "soundtrack"), "index", str(music), "--library", str(db), "--scheduler",
                              address, "--json", "--no-progress"], capture_output=True, text=True, timeout=300)
        assert idx.returncode == 0, idx.stderr
        assert json.loads(idx.stdout)["tracks"] == 2
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in procs:
            p.wait(timeout=30)
