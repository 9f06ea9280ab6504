"""The library, the feedback log and batch manifests on SQLite and on a real PostgreSQL server.

Every test runs twice through the ``db_url`` fixture (tests/conftest.py): on an SQLite
file and on a fresh database of the session's PostgreSQL server (tests/dbfixtures.py).
Concurrency is tested with separate processes, each opening its own engine, as the
page's workers and a batch's client do.
"""

from __future__ import annotations

import multiprocessing as mp
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from analysis.arc import EmotionArc
from analysis.errors import ParameterError
from composer.pipeline.manifest import Manifest, Record, read_csv, read_jsonl
from matching.db import make_engine, server_url
from matching.feedback.log import FeedbackLog
from matching.library.store import Library

SR = 8000
RATERS = 50


@dataclass(frozen=True)
class Analysis:
    kind: str
    duration: float
    arc: EmotionArc
    tempo: float
    key: str
    mode: str
    loudness: float
    embedding: np.ndarray


def level_analyzer(path: Path, *, hop: float = 0.5) -> Analysis:
    """Arousal follows each ``hop`` window's RMS, valence its zero-crossing rate (real decoding)."""
    y, sr = sf.read(str(path), dtype="float32")
    w = int(hop * sr)
    frames = y[: len(y) // w * w].reshape(-1, w)
    rms = np.sqrt((frames**2).mean(axis=1))
    zc = (np.diff(np.sign(frames), axis=1) != 0).mean(axis=1)
    arc = EmotionArc.from_va((np.arange(len(rms)) + 0.5) * hop, np.clip(zc * 20 - 0.5, -1, 1), rms * 2 - 0.5)
    return Analysis("audio", len(y) / sr, arc, 90.0, "A", "minor", -20.0, np.array([rms.mean(), zc.mean()], "f4"))


def _tone(path: Path, freq: float, amp_from: float, amp_to: float) -> Path:
    t = np.arange(3 * SR) / SR
    sf.write(str(path), np.sin(2 * np.pi * freq * t) * np.linspace(amp_from, amp_to, t.size), SR)
    return path


@pytest.fixture()
def music(tmp_path: Path) -> Path:
    folder = tmp_path / "music"
    folder.mkdir()
    for i, (freq, a, b) in enumerate([(220, 0.05, 0.5), (440, 0.5, 0.05), (330, 0.2, 0.2), (550, 0.3, 0.1)]):
        _tone(folder / f"t{i}.wav", freq, a, b)
    return folder


def test_server_url_names_the_installed_driver() -> None:
    assert server_url("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"
    assert server_url("postgres://u:pw@h:5433/db") == "postgresql+psycopg://u:pw@h:5433/db"
    assert server_url("postgresql+psycopg2://u@h/db") == "postgresql+psycopg2://u@h/db"
    with pytest.raises(ParameterError, match=r"not a usable database URL \(received 'nosuchdb://u:\*\*\*@h/x'"):
        make_engine("nosuchdb://u:secret@h/x")


def test_library_round_trip(db_url: str, music: Path) -> None:
    lib = Library(db_url, analyzer=level_analyzer)
    report = lib.add_folder(music, workers=2, progress=False, tags=["Demo"])  # a process pool beside the engine
    assert len(report.added) == 4 and report.skipped == ()
    again = lib.add(music / "t0.wav")
    assert again in report.added and len(lib) == 4
    rising = next(r for r in report.added if r.path.endswith("t0.wav"))
    assert rising.tags == ("demo",) and rising.key == "A" and rising.duration == pytest.approx(3.0)
    arc = lib.arc(rising.id)
    assert len(arc) == 6 and arc.arousal[-1] > arc.arousal[0]
    cat = lib.catalog()
    assert len(cat) == 4 and cat.embeddings is not None and cat.embeddings.shape == (4, 2)
    assert [t.id for t in lib.search("demo")] == sorted(r.id for r in report.added)
    lib.remove(rising.id)
    assert len(lib) == 3 and len(lib.catalog()) == 3 and lib.by_checksum(rising.checksum) is None


#: A child that cannot reach the start line fails instead of keeping the others (and the run) waiting.
BARRIER_S = 60.0


def _join_all(procs: list, seconds: float) -> None:
    """Join every process within one shared deadline; stop the ones still running after it."""
    deadline = time.monotonic() + seconds
    for p in procs:
        p.join(timeout=max(0.0, deadline - time.monotonic()))
    for p in procs:
        if p.is_alive():
            p.terminate()
            p.join(timeout=5)


def _add_same(url: str, path: str, barrier: mp.Barrier, out: mp.Queue) -> None:
    lib = Library(url, analyzer=level_analyzer)
    barrier.wait(timeout=BARRIER_S)
    out.put(lib.add(Path(path)).id)


def test_processes_adding_the_same_file_get_one_record(db_url: str, music: Path) -> None:
    Library(db_url).engine.dispose()  # tables first, as a deployed library has them
    ctx = mp.get_context("fork")
    barrier, out = ctx.Barrier(4), ctx.Queue()
    procs = [ctx.Process(target=_add_same, args=(db_url, str(music / "t1.wav"), barrier, out)) for _ in range(4)]
    for p in procs:
        p.start()
    ids = [out.get(timeout=120) for _ in procs]
    _join_all(procs, 60.0)
    assert [p.exitcode for p in procs] == [0] * 4
    assert len(set(ids)) == 1 and len(Library(db_url)) == 1


def _open_new(path: str, barrier: mp.Barrier, out: mp.Queue) -> None:
    barrier.wait(timeout=BARRIER_S)
    try:
        Library(path)
        FeedbackLog(path)  # the page opens both: the feedback tables are created on the same path
        out.put("ok")
    except Exception as err:  # reported to the test, which names it
        out.put(f"{type(err).__name__}: {str(err)[:120]}")


def test_processes_opening_a_new_sqlite_library_at_once_all_succeed(tmp_path: Path) -> None:
    """Two `soundtrack index` on a new file: "table tracks already exists" in about half the rounds."""
    ctx = mp.get_context("fork")
    said: list[str] = []
    for round_ in range(6):
        path = str(tmp_path / f"new{round_}.db")
        barrier, out = ctx.Barrier(4), ctx.Queue()
        procs = [ctx.Process(target=_open_new, args=(path, barrier, out)) for _ in range(4)]
        for p in procs:
            p.start()
        said += [out.get(timeout=120) for _ in procs]
        _join_all(procs, 60.0)
    assert said == ["ok"] * 24


def _rate(url: str, rec: int, i: int, barrier: mp.Barrier) -> None:
    log = FeedbackLog(url)
    barrier.wait(timeout=BARRIER_S)
    log.rate(rec, i % 2, 1 + i % 5)
    log.log_event(rec, "play", position=i % 2)


def test_fifty_raters_in_separate_processes_lose_nothing(db_url: str) -> None:
    log = FeedbackLog(db_url)
    cands = [{"score": 0.9, "dtw_score": 0.9, "embedding_score": 0.8, "title": "x" * 300},
             {"score": 0.5, "dtw_score": 0.4, "embedding_score": 0.7}]  # fmt: skip
    rec = log.log_recommendation(user_id="crowd", clip_fingerprint="f" * 64, candidates=cands)
    ctx = mp.get_context("fork")  # fork: starts in a blink, and the parent's open engine must survive it
    barrier = ctx.Barrier(RATERS)
    procs = [ctx.Process(target=_rate, args=(db_url, rec, i, barrier)) for i in range(RATERS)]
    for p in procs:
        p.start()
    _join_all(procs, 180.0)
    assert [p.exitcode for p in procs] == [0] * RATERS
    obs = log.observations()  # the parent's pooled connection still works after the forks
    ratings = sorted(o.value for o in obs if o.kind == "rating")
    assert ratings == sorted(float(1 + i % 5) for i in range(RATERS))
    assert log.counts()["play"] == RATERS
    assert log.export_user("crowd")["recommendations"][0]["candidates"][0]["title"] == "x" * 256
    assert log.delete_user("crowd") == {"recommendations": 1, "candidates": 2, "events": 2 * RATERS}
    assert log.observations() == []


def test_manifest_in_the_database_resumes_from_another_folder(db_url: str, tmp_path: Path) -> None:
    first = Manifest(tmp_path / "a", database=db_url, batch="nightly")
    done = [Record(input=f"clip{i}.mp4", content_hash=f"{i:064x}", settings="s1", status="ok",
                   result={"chosen": "match", "score": 0.5 + i / 10}) for i in range(3)]  # fmt: skip
    first.extend(done)
    first.append(Record(input="bad.mp4", content_hash="e" * 64, settings="s1", status="error", error="no video"))
    other_machine = Manifest(tmp_path / "b", database=db_url, batch="nightly")
    assert [r.input for r in other_machine.records()] == ["clip0.mp4", "clip1.mp4", "clip2.mp4", "bad.mp4"]
    assert other_machine.records()[1].result["score"] == pytest.approx(0.6)
    assert other_machine.completed(retry_errors=True) == {(f"{i:064x}", "s1") for i in range(3)}
    assert Manifest(tmp_path / "c", database=db_url, batch="another").records() == []
    assert len(first.records()) == len(Manifest(tmp_path / "a").records()) == 4  # the files hold them too


def test_batch_rerun_elsewhere_resumes_from_the_database(db_url: str, tmp_path: Path) -> None:
    """`score_videos(manifest_db=...)`: a second machine (another output folder) skips what the first did."""
    from test_batch import make_batch, probe_task

    from composer.pipeline.batch import score_videos

    clips = make_batch(tmp_path / "clips")
    first = score_videos(clips, out_dir=tmp_path / "a", workers=0, progress=False, task=probe_task,
                         manifest_db=db_url, batch="nightly")  # fmt: skip
    assert (first.ran, first.ok, first.errors) == (6, 4, 2)
    again = score_videos(clips, out_dir=tmp_path / "b", workers=0, progress=False, task=probe_task,
                         manifest_db=db_url, batch="nightly", retry_errors=True)  # fmt: skip
    assert (again.ran, again.skipped) == (2, 4)  # only the two clips that failed ran again
    assert {r.status for r in again.records} == {"error"}
    # The new folder's files show the whole batch, the JSON Lines as well as the CSV (it held 2 of 8).
    assert len(read_jsonl(tmp_path / "b" / "manifest.jsonl")) == 8 == len(read_csv(tmp_path / "b" / "manifest.csv"))
    fresh = score_videos(clips, out_dir=tmp_path / "c", workers=0, progress=False, task=probe_task,
                         manifest_db=db_url, batch="another")  # fmt: skip
    assert fresh.ran == 6
    stored = Manifest(tmp_path / "x", database=db_url, batch="nightly").records()
    assert len(stored) == 8 and {r.result["frames"] for r in stored if r.status == "ok"} == {12, 15, 10, 14}



def _with_password(url: str) -> str:
    import sqlalchemy as sa

    return sa.engine.make_url(url).set(password="hunter2").render_as_string(hide_password=False)


def test_the_cli_does_not_print_a_library_urls_password(postgres_admin_url: str, music: Path, capsys) -> None:
    """`soundtrack index --library postgresql://me:secret@...` said the URL back, password and all, on stdout
    (CI logs keep it); `match` did in an error. The server's trust login accepts the password given."""
    from dbfixtures import new_database

    from soundtrack.cli import main

    url = _with_password(new_database(postgres_admin_url))
    assert main(["index", str(music / "t0.wav"), "--library", url, "--workers", "0", "--no-progress"]) == 0
    assert main(["index", str(music / "t0.wav"), "--library", url, "--workers", "0", "--no-progress", "--json"]) == 0
    out = capsys.readouterr().out
    assert "holds 1 track" in out and '"tracks": 1' in out and "***" in out
    assert "hunter2" not in out
    empty = _with_password(new_database(postgres_admin_url))
    Library(empty)  # a library with no tracks yet, which `match` refuses
    assert main(["match", str(music / "t0.wav"), "--library", empty]) == 2
    err = capsys.readouterr().err
    assert "holds no tracks" in err and "hunter2" not in err
