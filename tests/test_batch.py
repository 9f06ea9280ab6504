"""Batch scoring machinery on generated clips: manifest with errors, resume, interruption, a real kill.

The batch runs a real task injected through ``task=``: :func:`probe_task` decodes every
frame of a clip with PyAV and reports its frame count and mean brightness, which are
known by construction, so a wrong or mixed-up record is caught. Runs here are in this
process (``workers=0``); the same batch on a real Dask cluster is in ``test_cluster.py``.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import numpy as np
import pytest
from mediagen import Shot, corrupt_copy, make_clip

from analysis.errors import MediaError, ParameterError
from composer.pipeline.batch import ClipJob, ScoreSettings, score_videos
from composer.pipeline.clips import find_clips
from composer.pipeline.manifest import Manifest, TaskResult, read_csv
from matching.cluster import worker_cache

HERE = Path(__file__).parent
#: name -> (frames, grey level) of the good clips
GOOD = {"dark": (12, 40), "mid": (15, 120), "bright": (10, 220), "cut": (14, 90)}
BAD = ("truncated", "garbled")


def _probe_model() -> dict[str, float]:
    """Stands in for a heavy model: slow to build, so building it per task would show."""
    time.sleep(0.05)
    return {"scale": 1.0}


#: Set by tests running in one process: Ctrl-C arrives when this clip (stem) is reached.
INTERRUPT_AT: str | None = None
#: Seconds each task waits first (the SIGKILL test slows the batch down to kill it mid-way).
DELAY = 0.0


def probe_task(job: ClipJob, settings: ScoreSettings) -> TaskResult:
    """Decode every frame; frame count and mean grey level. Bad media raises MediaError."""
    if Path(job.path).stem == INTERRUPT_AT:
        raise KeyboardInterrupt
    time.sleep(DELAY)
    model = worker_cache("probe-model", _probe_model)
    try:
        with av.open(job.path) as container:
            levels = [f.to_ndarray(format="gray").mean() for f in container.decode(video=0)]
    except (av.error.FFmpegError, UnicodeDecodeError) as err:
        raise MediaError(job.path, f"cannot be decoded ({type(err).__name__})") from None
    if not levels:
        raise MediaError(job.path, "has no video frames")
    out = Path(job.out_dir) / "probe.json"
    out.write_text(json.dumps({"frames": len(levels)}))
    result = {"chosen": "probe", "choice": Path(job.path).stem, "score": float(np.mean(levels)) * model["scale"] / 255,
              "frames": len(levels)}
    return TaskResult(result=result, outputs=(str(out),), timings={"decode": 0.0})


def make_batch(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, (frames, grey) in GOOD.items():
        shots = [Shot(frames, (grey, grey, grey))]
        if name == "cut":
            shots = [Shot(7, (grey, grey, grey)), Shot(frames - 7, (grey, grey, grey))]
        make_clip(folder / f"{name}.mp4", shots=shots, fps=10, size=(64, 48))
    make_clip(folder / "tmp_src.mkv", shots=[Shot(30, (90, 30, 30), motion=1.0)], fps=10, size=(64, 48))
    corrupt_copy(folder / "tmp_src.mkv", folder / "truncated.mp4", mode="truncate", keep=0.02)
    corrupt_copy(folder / "tmp_src.mkv", folder / "garbled.mp4", mode="garble")
    (folder / "tmp_src.mkv").unlink()
    (folder / "notes.txt").write_text("not a clip")
    return folder


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_batch(tmp_path_factory.mktemp("batch") / "clips")


def _by_stem(manifest: Manifest) -> dict[str, object]:
    return {Path(r.input).stem: r for r in manifest.latest().values()}


def test_find_clips_takes_videos_only(clips: Path) -> None:
    assert sorted(p.stem for p in find_clips(clips)) == sorted([*GOOD, *BAD])
    with pytest.raises(MediaError, match="not a folder"):
        find_clips(clips / "notes.txt")


def test_find_clips_takes_camera_and_broadcast_files(tmp_path: Path) -> None:
    """AVCHD camcorders (.MTS, .m2ts), pro cameras (.mxf), old phones (.3gp), DVDs (.vob) and DV tape."""
    names = ["a.MTS", "b.m2ts", "c.mxf", "d.3gp", "e.vob", "f.dv", "g.flv", "h.ogv", "notes.txt", "song.flac"]
    for name in names:
        (tmp_path / name).write_bytes(b"x")
    assert sorted(p.name for p in find_clips(tmp_path)) == sorted(names[:8])


def test_batch_with_corrupt_clips_writes_complete_manifest(clips: Path, tmp_path: Path) -> None:
    report = score_videos(clips, out_dir=tmp_path, workers=0, progress=False, task=probe_task)
    assert (report.total, report.ran, report.ok, report.errors, report.skipped) == (6, 6, 4, 2, 0)
    manifest = Manifest(tmp_path)
    recs = _by_stem(manifest)
    assert sorted(recs) == sorted([*GOOD, *BAD])
    for name, (frames, grey) in GOOD.items():
        r = recs[name]
        assert r.status == "ok" and r.error is None
        assert r.result["frames"] == frames
        assert r.result["score"] == pytest.approx(grey / 255, abs=0.03)  # lossy codec: within a few levels
        assert r.result["chosen"] == "probe" and r.result["choice"] == name
        assert len(r.content_hash) == 64 and r.outputs and Path(r.outputs[0]).is_file()
        assert Path(r.outputs[0]).parent.name.startswith(f"{name}-{r.content_hash[:8]}")
    for name in BAD:
        r = recs[name]
        assert r.status == "error" and f"{name}.mp4" in r.error and not r.outputs
    # The CSV says the same, row for row.
    rows = read_csv(report.csv)
    assert [(r.input, r.status, r.error) for r in rows] == [(r.input, r.status, r.error) for r in manifest.records()]
    assert report.to_dict()["errors"] == 2 and len(report.to_dict()["records"]) == 6


def test_rerun_skips_done_and_retry_errors_reruns_only_errors(clips: Path, tmp_path: Path) -> None:
    score_videos(clips, out_dir=tmp_path, workers=0, progress=False, task=probe_task)
    again = score_videos(clips, out_dir=tmp_path, workers=0, progress=False, task=probe_task)
    assert (again.ran, again.skipped) == (0, 6)
    retry = score_videos(clips, out_dir=tmp_path, workers=0, progress=False, task=probe_task, retry_errors=True)
    assert (retry.ran, retry.skipped) == (2, 4)
    assert sorted(Path(r.input).stem for r in retry.records) == sorted(BAD)
    # Other settings are another job: nothing is skipped.
    other = score_videos(clips, out_dir=tmp_path, workers=0, progress=False, task=probe_task, style="ambient")
    assert (other.ran, other.skipped) == (6, 0)
    assert len(Manifest(tmp_path).records()) == 6 + 2 + 6


def test_numpy_integers_for_seed_and_workers_are_the_ints_they_hold(clips: Path, tmp_path: Path) -> None:
    """``score_videos(..., seed=np.uint8(2), workers=np.int64(0))`` was refused ("`workers` must be 0 (this
    process) or more (received np.int64(0))"), though score_video and compose take NumPy integers; a rerun with
    the plain ints is the same batch (resume key), everything skipped."""
    first = score_videos(clips, out_dir=tmp_path, workers=np.int64(0), seed=np.uint8(2), progress=False,
                         task=probe_task)
    assert (first.ran, first.ok) == (6, 4)
    again = score_videos(clips, out_dir=tmp_path, workers=0, seed=2, progress=False, task=probe_task)
    assert (again.ran, again.skipped) == (0, 6)


def depth_task(job: ClipJob, settings: ScoreSettings) -> TaskResult:
    """Records the music's depth under speech that the task was given."""
    return TaskResult(result={"chosen": "probe", "choice": Path(job.path).stem, "duck_db": settings.duck_db})


def test_a_clip_whose_outputs_were_deleted_is_made_again(clips: Path, tmp_path: Path) -> None:
    """Deleting a clip's folder to have it made again: the rerun said "already done" and left it without files."""
    first = score_videos(clips, out_dir=tmp_path, workers=0, progress=False, task=probe_task)
    mid = next(r for r in first.records if Path(r.input).stem == "mid")
    shutil.rmtree(Path(mid.outputs[0]).parent)
    again = score_videos(clips, out_dir=tmp_path, workers=0, progress=False, task=probe_task)
    assert (again.ran, again.ok, again.skipped) == (1, 1, 5)
    assert again.records[0].input == mid.input and Path(mid.outputs[0]).is_file()
    assert json.loads(Path(mid.outputs[0]).read_text()) == {"frames": GOOD["mid"][0]}
    assert score_videos(clips, out_dir=tmp_path, workers=0, progress=False, task=probe_task).ran == 0


def test_the_duck_depth_reaches_the_task_and_keys_the_resume_only_when_chosen(clips: Path, tmp_path: Path) -> None:
    from composer.pipeline.batch import summarize_score
    from composer.pipeline.score_video import ScoreResult

    assert "duck_db" not in ScoreSettings("o").resume_fields()  # a manifest from before the choice still resumes
    clip = clips / "dark.mp4"
    deep = score_videos(clip, out_dir=tmp_path, workers=0, progress=False, task=depth_task, duck_db=20)
    assert deep.records[0].result["duck_db"] == 20.0
    again = score_videos(clip, out_dir=tmp_path, workers=0, progress=False, task=depth_task, duck_db=20)
    assert (again.ran, again.skipped) == (0, 1)
    usual = score_videos(clip, out_dir=tmp_path, workers=0, progress=False, task=depth_task)  # another depth
    assert (usual.ran, usual.records[0].result["duck_db"]) == (1, 14.0)
    with pytest.raises(ParameterError, match="within 6 and 30 dB"):
        score_videos(clip, out_dir=tmp_path, workers=0, progress=False, task=depth_task, duck_db=40)
    scored = ScoreResult(clip, "compose", "why", 0.5, None, None, (), {}, {}, 1.0, duck_db=20.0)
    assert summarize_score(scored).result["duck_db"] == 20.0  # the default task's manifest record


def style_task(job: ClipJob, settings: ScoreSettings) -> TaskResult:
    out = Path(job.out_dir) / "piece.txt"
    out.write_text(settings.style)
    return TaskResult(result={"chosen": "compose"}, outputs=(str(out),))


def test_batches_with_other_settings_into_one_folder_keep_their_own_files(clips: Path, tmp_path: Path) -> None:
    """Clip folders were named by the clip alone: a second batch into the same folder with another style
    wrote over the files that the first style's records name, and rerunning the first then skipped it."""
    for style in ("ambient", "celtic", "ambient"):
        score_videos(clips / "dark.mp4", out_dir=tmp_path, workers=0, progress=False, task=style_task, style=style)
    records = Manifest(tmp_path).records()
    assert len(records) == 2 and records[0].settings != records[1].settings
    assert [Path(r.outputs[0]).read_text() for r in records] == ["ambient", "celtic"]


def test_clip_folders_are_safe_names_even_for_long_titles_in_any_script(clips: Path, tmp_path: Path) -> None:
    """A clip's folder took its raw name: a newline or a leading dash went into it, and an 82-character
    Japanese title (246 bytes) overflowed the 255-byte name limit with the folder's suffixes, so the clip
    failed with "File name too long"."""
    names = ["場" * 82, "-rf", "new\nline"]
    folder = tmp_path / "in"
    folder.mkdir()
    for n, name in enumerate(names):
        (folder / f"{name}.mp4").write_bytes((clips / ("dark.mp4", "mid.mp4", "bright.mp4")[n]).read_bytes())
    report = score_videos(folder, out_dir=tmp_path / "out", workers=0, progress=False, task=probe_task)
    assert (report.ok, report.errors) == (3, 0), [r.error for r in report.records]
    made = sorted(p.name for p in (tmp_path / "out" / "clips").iterdir())
    assert all("\n" not in m and not m.startswith("-") and len(m.encode()) <= 255 for m in made), made
    assert any(m.startswith("場" * 33 + "-") for m in made)  # 100 bytes of the title: 33 whole characters


def test_renamed_and_duplicate_clips_are_recognised_by_content(clips: Path, tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a.mp4").write_bytes((clips / "mid.mp4").read_bytes())
    (folder / "b.mp4").write_bytes((clips / "mid.mp4").read_bytes())
    first = score_videos(folder, out_dir=tmp_path / "out", workers=0, progress=False, task=probe_task)
    assert first.ran == 1 and first.duplicates == (str(folder / "b.mp4"),)
    # Each clip given can be looked up in the manifest: the duplicate with its twin's outputs.
    rows = {Path(r.input).name: r for r in Manifest(tmp_path / "out").records()}
    assert set(rows) == {"a.mp4", "b.mp4"} and rows["b.mp4"].outputs == rows["a.mp4"].outputs
    assert rows["b.mp4"].result["same_as"] == str(folder / "a.mp4") and rows["b.mp4"].status == "ok"
    (folder / "a.mp4").rename(folder / "renamed.mp4")
    (folder / "b.mp4").unlink()
    second = score_videos(folder, out_dir=tmp_path / "out", workers=0, progress=False, task=probe_task)
    assert (second.ran, second.skipped) == (0, 1)


def test_a_clip_named_twice_is_one_clip_not_its_own_duplicate(clips: Path, tmp_path: Path) -> None:
    """`soundtrack batch clips clips/mid.mp4` (a folder and a file in it, or overlapping globs) counted the
    file as a duplicate of itself and wrote it to the manifest twice, the second row "same_as" itself."""
    report = score_videos([clips, clips / "mid.mp4", clips / ".." / clips.name / "dark.mp4"], out_dir=tmp_path,
                          workers=0, progress=False, task=probe_task)
    assert (report.total, report.ran, report.duplicates) == (6, 6, ())
    inputs = [r.input for r in Manifest(tmp_path).records()]
    assert sorted(inputs) == sorted(set(inputs)) and len(inputs) == 6


def test_missing_file_is_recorded_not_fatal(clips: Path, tmp_path: Path) -> None:
    report = score_videos([clips / "mid.mp4", tmp_path / "gone.mp4"], out_dir=tmp_path / "o", workers=0,
                          progress=False, task=probe_task)
    assert (report.ok, report.errors) == (1, 1)
    gone = next(r for r in report.records if r.status == "error")
    assert "gone.mp4: file not found" in gone.error and gone.content_hash == ""


def test_broken_links_in_a_folder_of_clips_are_recorded_not_passed_over(clips: Path, tmp_path: Path) -> None:
    """A folder of links to clips on a volume that went away (or a link that loops) was scored as fewer clips
    without a word, and a loop stopped the whole batch with "unexpected RuntimeError: Symlink loop"."""
    folder = tmp_path / "links"
    folder.mkdir()
    (folder / "mid.mp4").symlink_to(clips / "mid.mp4")
    (folder / "away.mp4").symlink_to(tmp_path / "unmounted" / "away.mp4")
    (folder / "loop-a.mov").symlink_to("loop-b.mov")
    (folder / "loop-b.mov").symlink_to("loop-a.mov")
    report = score_videos(folder, out_dir=tmp_path / "o", workers=0, progress=False, task=probe_task)
    assert (report.total, report.ok, report.errors) == (4, 1, 3)
    errors = {Path(r.input).name: r.error for r in report.records if r.status == "error"}
    assert errors["away.mp4"].endswith(f"away.mp4: is a link to {tmp_path / 'unmounted' / 'away.mp4'}, "
                                       "which does not exist")
    assert errors["loop-a.mov"].endswith("loop-a.mov: is a link that loops back on itself")
    assert errors["loop-b.mov"].endswith("loop-b.mov: is a link that loops back on itself")
    ok = next(r for r in report.records if r.status == "ok")
    assert ok.result["frames"] == GOOD["mid"][0]
    # Named one by one, as a shell's `links/*.mp4 links/*.mov` names them.
    named = score_videos(sorted(folder.iterdir()), out_dir=tmp_path / "o2", workers=0, progress=False, task=probe_task)
    assert (named.total, named.ok, named.errors) == (4, 1, 3)


def test_interrupted_batch_resumes_with_only_the_rest(clips: Path, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    order = [clips / f"{n}.mp4" for n in ("dark", "mid", "truncated", "bright", "cut", "garbled")]
    monkeypatch.setattr(sys.modules[__name__], "INTERRUPT_AT", "bright")
    with pytest.raises(KeyboardInterrupt):
        score_videos(order, out_dir=tmp_path, workers=0, progress=False, task=probe_task)
    monkeypatch.setattr(sys.modules[__name__], "INTERRUPT_AT", None)
    assert sorted(_by_stem(Manifest(tmp_path))) == ["dark", "mid", "truncated"]
    rest = score_videos(order, out_dir=tmp_path, workers=0, progress=False, task=probe_task)
    assert sorted(Path(r.input).stem for r in rest.records) == ["bright", "cut", "garbled"]
    assert rest.skipped == 3
    keys = [r.key for r in Manifest(tmp_path).records()]
    assert len(keys) == len(set(keys)) == 6  # nothing lost, nothing twice


_KILLABLE = """
import sys
from pathlib import Path
import test_batch
from composer.pipeline.batch import score_videos

test_batch.DELAY = 0.4
score_videos(Path(sys.argv[1]), out_dir=Path(sys.argv[2]), workers=0, progress=False, task=test_batch.probe_task)
"""


def test_cli_batch_interrupted_says_where_the_finished_clips_are_and_how_to_go_on(
        clips: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """Ctrl-C said only "soundtrack batch: interrupted": not that the finished clips were kept, nor how to go on."""
    import composer.pipeline.batch as batch_module
    from soundtrack.cli import main

    monkeypatch.setattr(batch_module, "score_clip", probe_task)
    monkeypatch.setattr(sys.modules[__name__], "INTERRUPT_AT", "mid")  # the fifth clip, by name
    argv = ["batch", str(clips), "--out", str(tmp_path), "--workers", "0", "--no-progress"]
    assert main(argv) == 130
    err = capsys.readouterr().err.strip()
    manifest = tmp_path / "manifest.jsonl"
    assert err == (f"soundtrack batch: interrupted; the clips that finished are recorded in {manifest}: "
                   "run the same command again to do the rest")
    assert sorted(_by_stem(Manifest(tmp_path))) == ["bright", "cut", "dark", "garbled"]
    monkeypatch.setattr(sys.modules[__name__], "INTERRUPT_AT", None)
    assert main(argv) == 1  # the rest done; garbled and truncated are errors
    assert sorted(_by_stem(Manifest(tmp_path))) == sorted([*GOOD, *BAD])


_TERMINATED = """
import os, signal, sys, time
from pathlib import Path
import composer.pipeline.batch as batch_module
import test_batch
from soundtrack.cli import main

def task(job, settings):
    if Path(job.path).stem == "mid":  # the fifth clip, by name
        (Path(job.out_dir) / "render.part").write_bytes(b"RIFF")
        os.kill(os.getpid(), signal.SIGTERM)  # as `kill PID` or a job scheduler's time limit does
        time.sleep(30)
    return test_batch.probe_task(job, settings)

batch_module.score_clip = task
sys.exit(main(["batch", sys.argv[1], "--out", sys.argv[2], "--workers", "0", "--no-progress"]))
"""


def test_cli_batch_terminated_stops_as_ctrl_c_does(clips: Path, tmp_path: Path) -> None:
    """SIGTERM ended the batch on the spot (status -15), leaving the clip it was on half-written in its folder
    (and, on a local cluster, "resource_tracker: There appear to be 12 leaked semaphore objects")."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), str(HERE.parent)])}
    done = subprocess.run([sys.executable, "-c", _TERMINATED, str(clips), str(tmp_path)], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 143, done.stderr
    assert done.stderr.strip() == (f"soundtrack batch: terminated; the clips that finished are recorded in "
                                   f"{tmp_path / 'manifest.jsonl'}: run the same command again to do the rest")
    assert sorted(_by_stem(Manifest(tmp_path))) == ["bright", "cut", "dark", "garbled"]
    assert not list((tmp_path / "clips").glob("mid-*"))  # the half-written clip left nothing


def test_killed_batch_process_resumes_with_only_the_rest(clips: Path, tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), str(HERE.parent)])}
    proc = subprocess.Popen([sys.executable, "-c", _KILLABLE, str(clips), str(tmp_path)], env=env)
    manifest = Manifest(tmp_path)
    deadline = time.monotonic() + 60
    try:
        while len(manifest.records()) < 2:
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"batch subprocess ended early or stalled (rc {proc.returncode})")
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    done_before = {Path(r.input).stem for r in manifest.records()}
    assert 2 <= len(done_before) < 6
    rest = score_videos(clips, out_dir=tmp_path, workers=0, progress=False, task=probe_task)
    assert {Path(r.input).stem for r in rest.records} == {*GOOD, *BAD} - done_before
    assert rest.skipped == len(done_before)
    keys = [r.key for r in manifest.records()]
    assert len(keys) == len(set(keys)) == 6
    assert len(read_csv(manifest.csv_path)) == 6


def test_a_second_batch_on_the_same_folder_is_refused_while_the_first_runs(clips: Path, tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), str(HERE.parent)])}
    slow = _KILLABLE.replace("DELAY = 0.4", "DELAY = 1.0")
    first = subprocess.Popen([sys.executable, "-c", slow, str(clips), str(tmp_path)], env=env)
    manifest = Manifest(tmp_path)
    deadline = time.monotonic() + 60
    try:
        while not manifest.records():
            if first.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"batch subprocess ended early or stalled (rc {first.returncode})")
            time.sleep(0.05)
        with pytest.raises(MediaError, match=f"another batch is writing its manifest \\(process {first.pid} on"):
            score_videos(clips, out_dir=tmp_path, workers=0, progress=False, task=probe_task)
    finally:
        assert first.wait(timeout=60) == 0
    keys = [r.key for r in manifest.records()]
    assert len(keys) == len(set(keys)) == 6  # every clip scored once, by the first batch
    again = score_videos(clips, out_dir=tmp_path, workers=0, progress=False, task=probe_task)
    assert (again.ran, again.skipped) == (0, 6)  # the lock went with the first batch


def test_cli_batch_reports_a_missing_library_in_one_line(clips: Path, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    from soundtrack.cli import main

    rc = main(["batch", str(clips), "--out", str(tmp_path / "o"), "--library", str(tmp_path / "none.db")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and err.count("\n") == 0 and "none.db: library database not found" in err


def test_cli_batch_help_states_its_exit_status_and_names_decibels_apart_from_databases(
        clips: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The help named `--library DB`, `--duck DB` and `--manifest-db DB` alike, gave the threshold's default
    as "score_video's", and said nothing of the exit status that scripts test."""
    from soundtrack.cli import main

    with pytest.raises(SystemExit):
        main(["batch", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--duck DECIBELS" in text and "--duck DB" not in text
    assert "score_video" not in text and "(0..1)" in text
    status = text[text.index("Exit status:"):]
    # what it says, as the command does it: 1 when some clip failed, 2 on a usage error
    assert "0 when every clip is ok; 1 when some clip's latest record is an error" in status
    assert main(["batch", str(clips), "--out", str(tmp_path), "--workers", "0", "--no-progress",
                 "--analyze-only"]) == 1
    assert main(["batch", str(clips), "--out", str(tmp_path), "--threshold", "2"]) == 2


def test_workers_on_the_library_cannot_write(tmp_path: Path) -> None:
    import sqlalchemy as sa

    from matching.cluster import readonly_url
    from matching.library.store import Library

    db = tmp_path / "odd name #1%.db"
    Library(db).engine.dispose()
    ro = Library(readonly_url(str(db)))
    assert len(ro) == 0
    with pytest.raises(sa.exc.OperationalError, match="readonly"), ro.engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO track_tags VALUES (1, 'x')"))


def test_cli_analyze_only_on_real_clips(four_shot_clip, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from soundtrack.cli import main

    bad = corrupt_copy(four_shot_clip.path, tmp_path / "bad.mp4", mode="garble")
    out = tmp_path / "out"
    argv = ["batch", str(four_shot_clip.path), str(bad), "--out", str(out), "--workers", "0", "--analyze-only",
            "--json", "--no-progress"]
    rc = main(argv)
    report = json.loads(capsys.readouterr().out)
    assert rc == 1 and (report["ok"], report["errors"]) == (1, 1)
    good = next(r for r in report["records"] if r["status"] == "ok")
    assert good["result"]["cuts"] == pytest.approx(four_shot_clip.cut_times, abs=2 / four_shot_clip.fps)
    assert good["result"]["duration"] == pytest.approx(four_shot_clip.duration, abs=0.1)
    assert json.loads(Path(good["outputs"][0]).read_text())["cuts"] == good["result"]["cuts"]
    assert "bad.mp4" in next(r for r in report["records"] if r["status"] == "error")["error"]
    # A second run skips both clips (the error too, unless --retry-errors), and still fails: the
    # batch's bad clip stands as an error, which the report names.
    assert main(argv) == 1
    again = json.loads(capsys.readouterr().out)
    assert (again["ran"], again["skipped"], again["errors"]) == (0, 2, 0)
    assert [Path(r["input"]).name for r in again["failed_before"]] == ["bad.mp4"]
    assert main([a for a in argv if a != "--json"]) == 1
    said = capsys.readouterr()
    assert "2 already done (1 of them failed)" in said.out
    assert "error (an earlier run):" in said.err and "bad.mp4" in said.err and "--retry-errors" in said.err


def test_an_analysis_batch_says_analysing_on_its_progress_bar(four_shot_clip, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    """`soundtrack batch --analyze-only` drew "scoring: 100%|...| 20/20" while it scored nothing."""
    from composer.pipeline.batch import analyze_clip

    report = score_videos(four_shot_clip.path, out_dir=tmp_path, workers=0, progress=True, task=analyze_clip)
    bar = capsys.readouterr().err
    assert report.ok == 1 and "analysing: 100%" in bar and "scoring" not in bar


@pytest.mark.slow
def test_real_scoring_batch_matches_from_a_read_only_library(four_shot_clip, tmp_path: Path) -> None:
    """The default task end to end: analysis, ranking on the library, fitting the match to the clip."""
    import soundfile as sf
    from mediagen import percussion

    from matching.library.store import Library

    song = tmp_path / "song.wav"
    sf.write(song, percussion(8.0), 22050)
    db = tmp_path / "lib.db"
    writer = Library(db)
    writer.add(song)
    writer.engine.dispose()  # as the indexing process ending does: its WAL folds into the file now, not when
    # the garbage collector happens to free the engine during the batch (which failed the comparison below)
    bad = corrupt_copy(four_shot_clip.path, tmp_path / "bad.mp4", mode="garble")
    before = db.read_bytes()
    report = score_videos([four_shot_clip.path, bad], library=db, out_dir=tmp_path / "out", workers=0,
                          progress=False, threshold=0.0)
    assert (report.ok, report.errors) == (1, 1)
    rec = next(r for r in report.records if r.status == "ok")
    assert rec.result["chosen"] == "match" and Path(rec.result["choice"]) == song.resolve()
    assert 0.0 <= rec.result["score"] <= 1.0 and rec.result["duration"] == pytest.approx(four_shot_clip.duration, 0.05)
    assert {Path(p).suffix for p in rec.outputs} == {".wav", ".mp4"} and all(Path(p).is_file() for p in rec.outputs)
    assert {"analysis", "ranking", "fitting"} <= set(rec.timings)
    assert db.read_bytes() == before  # workers only read the library


def test_a_batch_of_no_clips_is_refused_before_any_output(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    (a / "notes.txt").write_text("not a clip")
    with pytest.raises(MediaError, match="holds no video clips"):
        score_videos(a, out_dir=tmp_path / "out", workers=0, progress=False)
    with pytest.raises(ParameterError, match=r"no video clips in .*a, .*b \(looked for .3gp"):
        score_videos(iter([a, b]), out_dir=tmp_path / "out", workers=0, progress=False)  # an iterator is read once
    assert not (tmp_path / "out").exists()


def test_a_batch_resumes_however_its_paths_are_spelt_and_skips_its_own_outputs(clips: Path, tmp_path: Path,
                                                                                 monkeypatch) -> None:
    """Relative paths become absolute (workers elsewhere read them), ``lib.db`` and ``./lib.db`` are one
    library, the preset's own threshold given explicitly is the default, and an output folder inside the
    clips folder is not searched for clips."""
    import shutil

    from matching.library.store import Library

    folder = tmp_path / "work"
    shutil.copytree(clips, folder / "clips")
    Library(folder / "lib.db").engine.dispose()
    monkeypatch.chdir(folder)
    first = score_videos("clips", library="lib.db", out_dir="clips/scores", workers=0, progress=False, task=probe_task)
    assert first.ran == 6 and all(Path(r.input).is_absolute() for r in first.records)
    (folder / "clips" / "scores" / "clips" / "made-by-the-batch.mp4").write_bytes((clips / "dark.mp4").read_bytes())
    again = score_videos(["./clips"], library="./lib.db", out_dir="clips/scores", workers=0, progress=False,
                         task=probe_task, threshold=0.55)
    assert (again.total, again.ran, again.skipped) == (6, 0, 6)


def test_settings_every_clip_would_fail_on_are_refused_before_any_clip_runs(clips: Path, tmp_path: Path) -> None:
    for bad, said in ((dict(style="nope"), "style"), (dict(threshold=2), "threshold"), (dict(seed=-5), "seed"),
                      (dict(instrument="kazooo"), "instrument"), (dict(content_type="nope"), "content_type"),
                      (dict(workers=-1), "workers"), (dict(batch="x"), "manifest_db")):
        with pytest.raises(ParameterError, match=said):
            score_videos(clips, out_dir=tmp_path / "out", progress=False, task=probe_task, **bad)
        assert not (tmp_path / "out").exists()  # no folder, no manifest, no clip run
    (tmp_path / "a-file").write_text("")
    with pytest.raises(MediaError, match="cannot create the output folder"):
        score_videos(clips, out_dir=tmp_path / "a-file", workers=0, progress=False, task=probe_task)


def rank_task(job: ClipJob, settings: ScoreSettings) -> TaskResult:
    """Rank an arc made of the clip's grey levels in a small catalogue (the ranking's numba kernels)."""
    from analysis.arc import EmotionArc
    from matching.ranking.catalog import Catalog
    from matching.ranking.ranker import rank

    with av.open(job.path) as container:
        levels = np.array([f.to_ndarray(format="gray").mean() / 255 for f in container.decode(video=0)])
    steps = np.arange(levels.size, dtype=np.float64)
    clip = EmotionArc(steps * 0.5, levels - 0.5, np.linspace(-0.5, 0.5, levels.size))
    library = Catalog.from_arcs([EmotionArc(np.arange(30) * 0.5, np.sin(np.arange(30) / (i + 2)) * 0.8,
                                            np.cos(np.arange(30) / (i + 3)) * 0.8) for i in range(4)])
    best = rank(clip, library, k=2)[0]
    return TaskResult(result={"chosen": "match", "choice": best.path, "score": best.score}, outputs=(),
                      timings={"ranking": 0.0})


_COLD_BATCH = """
import sys
from pathlib import Path
import test_batch
from composer.pipeline.batch import score_videos
score_videos(Path(sys.argv[1]), out_dir=Path(sys.argv[2]), workers=2, progress=False, task=test_batch.rank_task)
"""


@pytest.mark.slow  # builds the ranking's kernels from nothing: about 100 s on the 2-core machine
def test_workers_on_a_fresh_kernel_cache_compile_each_ranking_kernel_once(clips: Path, tmp_path: Path) -> None:
    """Both workers of a batch on a fresh numba cache compiled the ranking's kernels and wrote the same files
    (numba's cache log showed each of them saved twice): one process compiles them now, the other reads them."""
    good = tmp_path / "clips"
    good.mkdir()
    for stem in GOOD:
        (good / f"{stem}.mp4").symlink_to(clips / f"{stem}.mp4")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), str(HERE.parent)]),
           "NUMBA_CACHE_DIR": str(tmp_path / "numba"), "NUMBA_DEBUG_CACHE": "1"}
    out = subprocess.run([sys.executable, "-c", _COLD_BATCH, str(good), str(tmp_path / "out")], env=env,
                         capture_output=True, text=True, timeout=600, check=True)
    records = Manifest(tmp_path / "out").records()
    assert [r.status for r in records] == ["ok"] * len(GOOD)
    assert len({r.worker for r in records}) == 2, "one worker ran every clip: nothing was compiled side by side"
    saved = [line.split(" saved to ")[1] for line in out.stdout.splitlines() if "data saved to" in line]
    assert any("_align_range" in name for name in saved), out.stdout[-2000:]
    twice = sorted({name for name in saved if saved.count(name) > 1})
    assert not twice, f"compiled and written by more than one process: {twice}"
