"""The library catalogue: idempotent adds, resumable indexing, bad files, tags, catalogue loading.

A small stand-in analyser reads real WAV files with soundfile (so a corrupt file
really fails to decode) and derives a TrackAnalysis-like result from their loudness;
the real ``analysis.analyze_track`` is used in ``test_rank.py``'s rendered library.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from analysis.arc import EmotionArc
from analysis.errors import MediaError, ParameterError
from matching.library.store import Library
from matching.ranking.catalog import SUMMARY_DIMS, Catalog, arc_summary

SR = 8000
CALLS: list[str] = []
INTERRUPT_AFTER: list[int] = []


@dataclass(frozen=True)
class FakeTrack:
    path: Path
    kind: str
    duration: float
    arc: EmotionArc
    tempo: float
    key: str
    mode: str
    loudness: float
    embedding: np.ndarray


def loudness_analyzer(path: Path, *, hop: float = 0.5) -> FakeTrack:
    """Arousal follows the RMS of each ``hop`` window; valence rises with pitch (zero crossings)."""
    CALLS.append(Path(path).name)
    if INTERRUPT_AFTER and len(CALLS) > INTERRUPT_AFTER[0]:
        raise KeyboardInterrupt
    try:
        y, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError) as err:
        raise MediaError(path, f"cannot be decoded as audio ({err})") from None
    y = y.mean(axis=1)
    if y.size == 0:
        raise MediaError(path, "has no audio samples")
    w = int(hop * sr)
    n = max(1, y.size // w)
    frames = y[: n * w].reshape(n, w)
    rms = np.sqrt((frames**2).mean(axis=1))
    zc = (np.diff(np.sign(frames), axis=1) != 0).mean(axis=1)
    t = (np.arange(n) + 0.5) * hop
    arc = EmotionArc.from_va(t, np.clip(zc * 20 - 0.5, -1, 1), np.clip(rms * 4 - 1, -1, 1))
    loud = float(20 * np.log10(rms.mean() + 1e-9))
    emb = np.array([rms.mean(), zc.mean()], dtype=np.float32)
    return FakeTrack(Path(path), "audio", y.size / sr, arc, 100.0, "C", "major", loud, emb)


def _write_tone(path: Path, freq: float, amp_from: float, amp_to: float, seconds: float = 3.0) -> Path:
    t = np.arange(int(seconds * SR)) / SR
    sf.write(str(path), np.sin(2 * np.pi * freq * t) * np.linspace(amp_from, amp_to, t.size), SR)
    return path


@pytest.fixture()
def music(tmp_path: Path) -> Path:
    folder = tmp_path / "music"
    (folder / "sub").mkdir(parents=True)
    _write_tone(folder / "rising.wav", 220, 0.05, 0.5)
    _write_tone(folder / "falling.wav", 440, 0.5, 0.05)
    _write_tone(folder / "sub" / "steady.wav", 330, 0.2, 0.2)
    (folder / "notes.txt").write_text("not music")
    CALLS.clear()
    INTERRUPT_AFTER.clear()
    return folder


def test_add_is_idempotent_by_content(music: Path, tmp_path: Path) -> None:
    lib = Library(tmp_path / "lib.db", analyzer=loudness_analyzer)
    a = lib.add(music / "rising.wav", title="Rise", tags=["Calm", "build"], licence="CC0")
    copy = tmp_path / "copy.wav"
    copy.write_bytes((music / "rising.wav").read_bytes())
    b = lib.add(copy)
    assert a == b and len(lib) == 1 and CALLS == ["rising.wav"]
    assert a.title == "Rise" and a.tags == ("build", "calm") and a.licence == "CC0"
    assert a.duration == pytest.approx(3.0) and a.kind == "audio"
    arc = lib.arc(a.id)
    assert len(arc) == 6 and arc.arousal[-1] > arc.arousal[0]  # the tone gets louder
    assert lib.get(a.id) == a


def test_a_track_id_is_an_integer_or_a_parameter_error(music: Path, tmp_path: Path) -> None:
    """``lib.get(None)`` was Python's "int() argument must be ... not 'NoneType'", and ``get(True)`` or
    ``get(1.7)`` quietly gave track 1; a NumPy id (from an array of ids) and its digits are the track."""
    lib = Library(tmp_path / "lib.db", analyzer=loudness_analyzer)
    a = lib.add(music / "rising.wav")
    assert lib.get(np.int64(a.id)) == lib.get(str(a.id)) == a
    assert len(lib.arc(np.uint32(a.id))) == len(lib.arc(a.id))
    for bad in (None, True, 1.7, "one"):
        for call in (lib.get, lib.arc, lib.remove):
            with pytest.raises(ParameterError, match=r"^`track_id` must be an integer \(received "):
                call(bad)
    assert len(lib) == 1


def test_a_key_is_set_only_as_the_catalogue_spells_one(music: Path, tmp_path: Path) -> None:
    """``set_key`` took any one or two characters ("H", "c#", "Z9") into the catalogue's key column."""
    lib = Library(tmp_path / "lib.db", analyzer=loudness_analyzer)
    a = lib.add(music / "rising.wav")
    for key, mode in (("F#", "minor"), ("Bb", "major"), ("E", "minor")):
        assert (lib.set_key(a.id, key, mode).key, lib.get(a.id).mode) == (key, mode)
    for key, mode in (("H", "major"), ("c#", "minor"), ("Z9", "major"), ("", "major"), ("C", "dorian"), (1, "major")):
        with pytest.raises(ParameterError, match="a key is a tonic name"):
            lib.set_key(a.id, key, mode)
    assert (lib.get(a.id).key, lib.get(a.id).mode) == ("E", "minor")


@pytest.mark.parametrize("workers", [float("nan"), -1, 2.5, "2"])
def test_a_worker_count_that_is_no_count_is_named_before_any_file_is_read(music: Path, tmp_path: Path,
                                                                           workers) -> None:
    """``add_folder(workers=float("nan"))`` hashed every file and then raised NumPy's bare "cannot convert
    float NaN to integer"; -1 was taken."""
    lib = Library(tmp_path / "lib.db", analyzer=loudness_analyzer)
    with pytest.raises(ParameterError, match=r"^`workers` must be a whole number >= 0 or None"):
        lib.add_folder(music, workers=workers, progress=False)
    assert len(lib) == 0
    assert len(lib.add_folder(music, workers=np.int64(0), progress=False).added) == 3


def test_a_database_that_cannot_be_opened_is_named(tmp_path: Path) -> None:
    """An ``sqlite:///`` URL into a missing folder raised SQLAlchemy's OperationalError ("unable to open database
    file") where the same path without ``sqlite:///`` was named; a PostgreSQL server that refuses the connection
    raised psycopg's OperationalError from inside SQLAlchemy."""
    with pytest.raises(ParameterError, match=r"^the database's folder does not exist \(received 'sqlite:///"):
        Library(f"sqlite:///{tmp_path / 'nope' / 'lib.db'}")
    with pytest.raises(ParameterError, match=r"^cannot connect to the database postgresql\+psycopg://me:\*\*\*@"
                                             r"127\.0\.0\.1:1/music \(connection failed"):
        Library("postgresql://me:secret@127.0.0.1:1/music")  # port 1: nothing listens, refused at once
    assert len(Library(f"sqlite:///{tmp_path / 'lib.db'}")) == 0


def test_add_folder_tags_search_remove(music: Path, tmp_path: Path) -> None:
    lib = Library(tmp_path / "lib.db", analyzer=loudness_analyzer)
    report = lib.add_folder(music, workers=2, progress=False, tags=["demo"])
    assert len(report.added) == 3 and report.skipped == () and report.existing == 0
    assert report.tracks_per_second > 0
    assert {r.title for r in lib.search("DEMO")} == {"rising", "falling", "steady"}
    lib.add(music / "rising.wav")  # no new track
    steady = next(r for r in lib.list() if r.title == "steady")
    assert lib.remove(steady.id) == steady and len(lib) == 2
    with pytest.raises(ParameterError, match=str(steady.id)):
        lib.get(steady.id)
    assert lib.list(tag="nope") == []
    flat = lib.add_folder(music, recursive=False, progress=False)
    assert len(flat.added) == 0 and flat.existing == 2  # sub/steady.wav not visited


def test_interrupted_index_resumes(music: Path, tmp_path: Path) -> None:
    db = tmp_path / "lib.db"
    lib = Library(db, analyzer=loudness_analyzer)
    INTERRUPT_AFTER.append(2)
    with pytest.raises(KeyboardInterrupt):
        lib.add_folder(music, workers=0, progress=False)
    assert len(Library(db, analyzer=loudness_analyzer)) == 2  # each finished track was committed
    INTERRUPT_AFTER.clear()
    CALLS.clear()
    report = Library(db, analyzer=loudness_analyzer).add_folder(music, workers=0, progress=False)
    assert len(report.added) == 1 and report.existing == 2 and len(CALLS) == 1
    assert len(lib) == 3


def test_bad_files_are_skipped_with_reason(music: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (music / "broken.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunkjunkjunk")
    (music / "empty.flac").write_bytes(b"")
    lib = Library(tmp_path / "lib.db", analyzer=loudness_analyzer)
    with caplog.at_level("WARNING", logger="matching.library.indexing"):
        report = lib.add_folder(music, workers=2, progress=False)
    assert len(report.added) == 3
    reasons = {Path(s.path).name: s.reason for s in report.skipped}
    assert set(reasons) == {"broken.wav", "empty.flac"}
    assert all("decoded" in r for r in reasons.values())
    assert "broken.wav" in caplog.text
    with pytest.raises(MediaError, match=r"missing\.wav"):
        lib.add(music / "missing.wav")


def test_a_caller_that_shows_the_skips_itself_can_leave_them_unlogged(
    music: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """``soundtrack index`` lists each skipped file itself; it hid the library's warnings with a logging
    filter matching their text. ``log_skips=False`` leaves them unlogged, and the report still names them."""
    (music / "broken.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunkjunkjunk")
    (music / "empty.flac").write_bytes(b"")
    lib = Library(tmp_path / "lib.db", analyzer=loudness_analyzer)
    with caplog.at_level("WARNING", logger="matching.library.indexing"):
        report = lib.add_folder(music, workers=0, progress=False, log_skips=False)
    assert {Path(s.path).name for s in report.skipped} == {"broken.wav", "empty.flac"}
    assert len(report.added) == 3 and "skipped" not in caplog.text


def test_catalog_loads_all_arcs_and_is_invalidated(music: Path, tmp_path: Path) -> None:
    lib = Library(tmp_path / "lib.db", analyzer=loudness_analyzer)
    lib.add_folder(music, workers=0, progress=False)
    cat = lib.catalog()
    assert lib.catalog() is cat and len(cat) == 3
    for i, tid in enumerate(cat.ids):
        np.testing.assert_allclose(cat.track_va(i), lib.arc(int(tid)).va(), atol=1e-6)
    assert cat.embeddings is not None and cat.embeddings.shape == (3, 2)
    assert cat.summaries.shape == (3, len(SUMMARY_DIMS))
    lib.remove(int(cat.ids[0]))
    assert len(lib.catalog()) == 2


def test_arc_summary_matches_definition() -> None:
    t = np.arange(9) * 0.5 + 0.25
    arc = EmotionArc.from_va(t, np.linspace(-0.4, 0.4, 9), np.r_[np.zeros(6), np.ones(3) * 0.6])
    s = dict(zip(SUMMARY_DIMS, arc_summary(arc), strict=True))
    assert s["valence_mean"] == pytest.approx(0.0, abs=1e-6)
    assert s["arousal_mean"] == pytest.approx(0.2)
    assert s["valence_trend"] == pytest.approx(0.6)  # thirds of 3 steps: mean 0.3 - mean -0.3
    assert s["arousal_trend"] == pytest.approx(0.6)
    assert s["valence_rate"] == pytest.approx(0.2)  # 0.1 per 0.5 s step
    assert s["arousal_rate"] == pytest.approx(0.6 / 8 / 0.5)
    # The vectorised summaries of a catalogue equal the one-arc function.
    cat = Catalog.from_arcs([arc, EmotionArc.constant(4.0, 0.3, -0.2)])
    np.testing.assert_allclose(cat.summaries[0], arc_summary(arc), atol=1e-6)
    assert cat.summaries[1][2:].tolist() == pytest.approx([0] * 6, abs=1e-6)


def test_a_folder_scan_takes_every_type_a_track_may_be(tmp_path: Path) -> None:
    """What add_folder picks up is what analyze_track reads (one list): AIFF from a studio library and
    Opus WebM as downloaders save music were skipped or passed over before."""
    import shutil
    import subprocess

    from analysis.music.formats import TRACK_SUFFIXES
    from matching.library.uploads import UPLOAD_SUFFIXES

    assert UPLOAD_SUFFIXES == TRACK_SUFFIXES and {".aiff", ".aif", ".webm", ".opus", ".mid"} <= TRACK_SUFFIXES
    folder = tmp_path / "music"
    folder.mkdir()
    t = np.arange(2 * 22050) / 22050
    sf.write(folder / "studio.aiff", 0.3 * np.sin(2 * np.pi * 220 * t), 22050)
    if shutil.which("ffmpeg"):
        subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", str(folder / "studio.aiff"), "-c:a", "libopus",
                        str(folder / "download.webm")], check=True)
    (folder / "notes.txt").write_text("not music")
    report = Library(tmp_path / "lib.db").add_folder(folder, workers=0, progress=False)  # the real track reader
    assert not report.skipped
    assert sorted(Path(r.path).name for r in report.added) == sorted(p.name for p in folder.iterdir()
                                                                      if p.suffix != ".txt")


def test_the_library_follows_files_edited_moved_and_deleted(music: Path, tmp_path: Path, capsys) -> None:
    """Re-indexing a folder after a user edited, moved and deleted files leaves one true record per file."""
    from soundtrack.cli import main

    db = tmp_path / "lib.db"
    lib = Library(db, analyzer=loudness_analyzer)
    lib.add_folder(music, workers=0, progress=False)
    rising = next(r for r in lib.list() if r.title == "rising")
    falling = next(r for r in lib.list() if r.title == "falling")
    _write_tone(music / "rising.wav", 220, 0.5, 0.05)  # edited: now it falls
    (music / "falling.wav").rename(music / "sub" / "down.wav")  # moved
    CALLS.clear()
    report = lib.add_folder(music, workers=0, progress=False)
    assert report.added == () and CALLS == ["rising.wav"]  # the moved file is not analysed again
    assert [r.id for r in report.updated] == [rising.id] and [r.id for r in report.moved] == [falling.id]
    assert len(lib) == 3
    edited = lib.get(rising.id)
    assert edited.title == "rising" and edited.checksum != rising.checksum and edited.path == rising.path
    arc = lib.arc(rising.id)
    assert arc.arousal[-1] < arc.arousal[0]  # the stored arc is the new file's
    assert lib.get(falling.id).path == str((music / "sub" / "down.wav").resolve())
    assert lib.missing() == []

    # One file at a time does the same.
    _write_tone(music / "rising.wav", 220, 0.2, 0.2)
    again = lib.add(music / "rising.wav")
    assert again.id == rising.id and len(lib) == 3

    (music / "sub" / "steady.wav").unlink()  # deleted
    assert [r.title for r in lib.missing(under=music)] == ["steady"] and lib.missing(under=tmp_path / "x") == []
    assert main(["index", str(music), "--library", str(db), "--no-progress", "--workers", "0"]) == 0
    said = capsys.readouterr()
    assert "files of 1 track stored under this folder are gone" in said.err and "steady.wav" in said.err
    assert len(Library(db)) == 3
    assert main(["index", str(music), "--library", str(db), "--no-progress", "--prune"]) == 0
    assert "removed 1 track whose file is gone" in capsys.readouterr().out
    assert sorted(r.title for r in Library(db).list()) == ["falling", "rising"]


def test_a_library_file_alone_holds_every_track_once_its_writer_exits(music: Path, tmp_path: Path) -> None:
    """The WAL is folded into the file at exit, so copying library.db (as a user ships a catalogue)
    copies the tracks; before, everything sat in library.db-wal and the copy was empty."""
    import shutil
    import subprocess
    import sys

    db = tmp_path / "lib.db"
    code = ("import sys; from matching.library.store import Library; "
            "Library(sys.argv[1]).add_folder(sys.argv[2], workers=0, progress=False)")
    subprocess.run([sys.executable, "-c", code, str(db), str(music / "sub")], check=True, cwd=Path(__file__).parents[1])
    assert not db.with_name("lib.db-wal").exists()
    (tmp_path / "copy").mkdir()
    shutil.copy(db, tmp_path / "copy" / "lib.db")
    assert [r.title for r in Library(tmp_path / "copy" / "lib.db").list()] == ["steady"]


def test_a_library_on_read_only_media_ranks_with_the_preset_blend(music: Path, tmp_path: Path, monkeypatch) -> None:
    """A catalogue that cannot be written (a read-only mount: tests run as root, so it is simulated)
    is opened immutable: ranking and the learned weights work, writing fails with SQLite's error."""
    import sqlalchemy as sa

    from matching import db as dbmod
    from matching.feedback.learner import current_weights
    from matching.ranking.ranker import rank
    from matching.ranking.weights import weights_for

    lib_path = tmp_path / "lib.db"
    writer = Library(lib_path, analyzer=loudness_analyzer)
    writer.add_folder(music, workers=0, progress=False)
    writer.engine.dispose()  # as the indexing process exiting does
    monkeypatch.setattr(dbmod, "writable", lambda path: Path(path).resolve() != lib_path.resolve())
    ro = Library(lib_path, analyzer=loudness_analyzer)
    assert "immutable=1" in str(ro.engine.url) and len(ro) == 3
    clip = ro.arc(ro.list()[0].id)
    assert len(rank(clip, ro, k=3)) == 3
    assert current_weights("general", db=ro) == weights_for("general")  # no feedback tables, none can be made
    with pytest.raises(sa.exc.OperationalError, match="readonly"):
        ro.remove(ro.list()[0].id)


def test_threads_ranking_after_a_write_wait_for_one_catalogue(music: Path, tmp_path: Path, monkeypatch) -> None:
    """The page ranks from several threads on one Library. After a write each thread found the cached catalogue
    stale and built its own (six threads on a 10,000-track library: six catalogues, 933 MB at the peak), and the
    last to finish could leave an older one standing. One builds it; the others wait and share it."""
    import threading

    from matching.library import store

    lib = Library(tmp_path / "lib.db", analyzer=loudness_analyzer)
    lib.add(music / "rising.wav")
    lib.catalog()
    lib.add(music / "falling.wav")  # the cached catalogue is stale now
    builds: list[int] = []
    second = threading.Event()
    build = store.build_catalog

    def slow_build(*args, **kwargs):  # the first build waits for a second one to start alongside it
        builds.append(threading.get_ident())
        if len(builds) == 1:
            second.wait(timeout=1.0)
        else:
            second.set()
        return build(*args, **kwargs)

    monkeypatch.setattr(store, "build_catalog", slow_build)
    got: list[Catalog] = []
    threads = [threading.Thread(target=lambda: got.append(lib.catalog())) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(builds) == 1 and not second.is_set()
    assert len(got) == 4 and all(c is got[0] for c in got) and len(got[0]) == 2


def test_bytes_another_indexer_stored_meanwhile_count_as_existing(music: Path, tmp_path: Path, monkeypatch) -> None:
    """Two indexers over one library: the second's check ran before the first stored the track (simulated:
    the library answers that it does not know the bytes yet). It reports the track as already there."""
    lib = Library(tmp_path / "lib.db", analyzer=loudness_analyzer)
    lib.add(music / "rising.wav")
    copy = tmp_path / "elsewhere"
    copy.mkdir()
    (copy / "same.wav").write_bytes((music / "rising.wav").read_bytes())
    monkeypatch.setattr(lib, "by_checksum", lambda checksum: None)
    report = lib.add_folder(copy, workers=0, progress=False)
    assert (report.added, report.existing) == ((), 1) and len(lib) == 1


def test_a_loaded_catalogue_follows_a_move_another_process_indexed(music: Path, tmp_path: Path) -> None:
    """The page's Library keeps its catalogue; `soundtrack index` in another process finds a moved file.
    A move changes no count, id or revision, so the cached catalogue kept the old path."""
    import subprocess
    import sys

    db = tmp_path / "lib.db"
    page = Library(db, analyzer=loudness_analyzer)
    page.add_folder(music, workers=0, progress=False)
    assert str((music / "rising.wav").resolve()) in page.catalog().paths  # loaded and cached
    (music / "sub" / "moved").mkdir()
    (music / "rising.wav").rename(music / "sub" / "moved" / "rising_new.wav")
    code = ("import sys; from matching.library.store import Library; "
            "print(len(Library(sys.argv[1]).add_folder(sys.argv[2], workers=0, progress=False).moved))")
    out = subprocess.run([sys.executable, "-c", code, str(db), str(music)], check=True, capture_output=True,
                         text=True, cwd=Path(__file__).parents[1]).stdout  # fmt: skip
    assert out.split()[-1] == "1"
    paths = page.catalog().paths
    assert str((music / "sub" / "moved" / "rising_new.wav").resolve()) in paths
    assert str((music / "rising.wav").resolve()) not in paths


def test_a_read_only_library_from_before_moves_were_recorded_opens(music: Path, tmp_path: Path) -> None:
    import sqlalchemy as sa

    from matching.cluster import readonly_url

    db = tmp_path / "lib.db"
    writer = Library(db, analyzer=loudness_analyzer)
    writer.add_folder(music, workers=0, progress=False)
    with writer.engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE track_moves"))  # as an older version made it
    writer.engine.dispose()
    ro = Library(readonly_url(str(db)))
    assert ro.moves() == 0 and len(ro.catalog()) == 3


def slow_analyzer(path: Path, *, hop: float = 0.5) -> object:
    """Marks ``started-<name>``, takes 5 s, then marks ``done-<name>`` beside the track: an analysis long enough
    to be interrupted in (it never returns a track; the interruption test does not need one)."""
    import time

    (path.parent / f"started-{path.stem}").touch()
    time.sleep(5.0)
    (path.parent / f"done-{path.stem}").touch()
    raise MediaError(path, "only a probe")


_INDEXING = """
import sys
import test_library
from matching.library.store import Library

try:
    Library(sys.argv[2], analyzer=test_library.slow_analyzer).add_folder(sys.argv[1], workers=2, progress=False)
except KeyboardInterrupt:
    sys.exit(130)
"""


def test_ctrl_c_while_indexing_in_processes_stops_the_analyses_under_way(tmp_path: Path) -> None:
    """The pool's shutdown waited for every analysis under way (up to 12 s here with short tracks; one
    run took 365 s), and the pool's workers each took the Ctrl-C too."""
    import os
    import signal
    import subprocess
    import sys
    import time

    music = tmp_path / "music"
    music.mkdir()
    for n in range(4):
        sf.write(music / f"t{n}.wav", np.full(2205, 0.01 * (n + 1), dtype=np.float32), 22050)
    here = Path(__file__).parent
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(here), str(here.parent)])}
    proc = subprocess.Popen([sys.executable, "-c", _INDEXING, str(music), str(tmp_path / "lib.db")], env=env,
                            start_new_session=True)
    deadline = time.monotonic() + 120
    while not list(music.glob("started-*")):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"indexing subprocess ended early or stalled (rc {proc.returncode})")
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGINT)
    assert proc.wait(timeout=120) == 130
    assert not list(music.glob("done-*"))  # no analysis ran on after the interrupt


def stepping_analyzer(path: Path, *, hop: float = 0.5, progress=None) -> FakeTrack:
    """The stand-in analyser, saying how far it got a quarter at a time, as a long recording's analysis does."""
    for fraction in (0.25, 0.5, 0.75):
        if progress is not None:
            progress(fraction, "reading")
    return loudness_analyzer(path, hop=hop)


@pytest.mark.parametrize("workers", [0, 2])
def test_indexing_progress_moves_within_each_file(music: Path, tmp_path: Path, workers: int) -> None:
    """The bar moved once a file was analysed: a folder with one long recording stood still for minutes. Each
    file's own reports now move it, from this process and from a pool's workers alike."""
    heard: list[tuple[float, str]] = []
    report = Library(tmp_path / "lib.db", analyzer=stepping_analyzer).add_folder(
        music, workers=workers, progress=lambda f, m: heard.append((f, m)))
    assert len(report.added) == 3
    fractions = [f for f, _ in heard]
    assert fractions == sorted(fractions) and fractions[-1] == pytest.approx(1.0)
    inside = [f for f in fractions if not float(3 * f).is_integer()]  # between two whole files
    assert len(inside) == 9  # three reports a file
    assert any(m.endswith(": reading") for _, m in heard)


def test_the_index_bar_shows_the_file_and_its_stage(capsys) -> None:
    from matching.library.indexing import IndexProgress

    bar = IndexProgress(2, True)
    bar.tick("/music/long.wav", 0.5, "tagging")
    bar.finished("/music/long.wav")
    bar.tick("/music/long.wav", 0.9, "late report")  # after the file's result: changes nothing
    assert bar.done + bar.share == 1
    bar.close()
    err = capsys.readouterr().err
    assert "long.wav: tagging" in err and "0.5/2 tracks" in err


def test_add_folder_draws_its_bar_by_default_only_on_a_terminal(music: Path, tmp_path: Path, capsys,
                                                                 monkeypatch) -> None:
    """An API script whose stderr is a log file gets no bar redraws there by default; on a terminal the
    default draws one, and ``progress=True`` draws one anywhere."""
    import sys

    Library(tmp_path / "a.db", analyzer=loudness_analyzer).add_folder(music, workers=0)
    assert "indexing" not in capsys.readouterr().err  # captured: not a terminal
    Library(tmp_path / "b.db", analyzer=loudness_analyzer).add_folder(music, workers=0, progress=True)
    assert "3.0/3 tracks" in capsys.readouterr().err
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    Library(tmp_path / "c.db", analyzer=loudness_analyzer).add_folder(music, workers=0)
    assert "3.0/3 tracks" in capsys.readouterr().err
