"""Every command-line error path: one sentence on stderr, exit status 2, never a traceback.

The attacks of issue 14: a ``--library`` that is not a database or is locked, ``compose
--arc`` JSON of the wrong shape, a clip whose name starts with a dash, a still image
posing as a video.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from test_app import write_midi
from test_security import still_as_mp4

from soundtrack.cli import CLI_BUSY_TIMEOUT, main

ROOT = Path(__file__).parent.parent


def _one_sentence(capsys, argv: list[str]) -> str:
    rc = main(argv)
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip() and "warning:" not in line]
    assert rc == 2, (rc, err)
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith(f"soundtrack {argv[0]}: error: "), err
    return lines[0]


@pytest.fixture()
def not_databases(tmp_path) -> dict[str, Path]:
    noise = tmp_path / "noise.db"
    noise.write_bytes(os.urandom(8192))
    text = tmp_path / "notes.db"
    text.write_text("shopping list: eggs, milk\n" * 100)
    return {"noise": noise, "text": text}


@pytest.mark.parametrize("kind", ["noise", "text"])
def test_a_library_that_is_not_a_database(capsys, tmp_path, not_databases, kind):
    db = str(not_databases[kind])
    music = tmp_path / "music"
    music.mkdir()
    for argv in (["index", str(music), "--library", db, "--no-progress"],
                 ["feedback", "export", "--user", "someone", "--library", db],
                 ["feedback", "stats", "--library", db],
                 ["batch", str(music), "--library", db, "--out", str(tmp_path / "out"), "--workers", "0"],
                 ["serve", "--library", db, "--port", "1"]):
        line = _one_sentence(capsys, argv)
        assert f"{db} is not an SQLite database" in line


def test_a_locked_library_fails_fast(capsys, tmp_path):
    db = tmp_path / "lib.db"
    sqlite3.connect(db).execute("CREATE TABLE t (x)").connection.close()
    music = tmp_path / "music"
    music.mkdir()
    write_midi(music / "a.mid", pitches=[60, 64, 67], tempo=120, velocity=90, program=0)
    locked, release = threading.Event(), threading.Event()

    def hold() -> None:
        conn = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
        conn.execute("BEGIN EXCLUSIVE")
        locked.set()
        release.wait(60)
        conn.close()

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        locked.wait(10)
        t0 = time.monotonic()
        line = _one_sentence(capsys, ["index", str(music), "--library", str(db), "--workers", "0", "--no-progress"])
        waited = time.monotonic() - t0
        assert "locked by another process" in line
        assert CLI_BUSY_TIMEOUT <= waited < CLI_BUSY_TIMEOUT + 15, waited  # not the library's 30 s
        line = _one_sentence(capsys, ["feedback", "delete", "--user", "someone", "--library", str(db)])
        assert "locked by another process" in line
    finally:
        release.set()
        holder.join()


ARCS = {
    "a list": ("[1, 2, 3]", "must hold a JSON object with times, valence and arousal (received a list of 3"),
    "null": ("null", "must hold a JSON object with times, valence and arousal (received None)"),
    "strings for numbers": ('{"times": ["0.25", "0.75"], "valence": [0, 0], "arousal": [0, 0]}',
                            "field 'times' must hold only finite numbers (item 0 is '0.25')"),
    "null among the cuts": ('{"arc": {"times": [0.25, 0.75], "valence": [0, 0], "arousal": [0, 0]}, '
                            '"cuts": [1.0, null], "duration": 2}', "field 'cuts' must hold only finite numbers"),
    "deep nesting": ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
    "deep inside a field": ('{"times": ' + "[" * 5000 + "]" * 5000 + ', "valence": [0], "arousal": [0]}',
                            "nested too deeply"),
    "unequal lengths": ('{"times": [0.25, 0.75], "valence": [0], "arousal": [0, 0]}', "equally long"),
    "a string duration": ('{"arc": {"times": [0.25], "valence": [0], "arousal": [0]}, "duration": "ten"}',
                          "'duration' must be a positive number"),
    "not JSON": ("{times: 1}", "is not valid JSON"),
    "other names for the fields": ('{"t": [0.25], "v": [0], "a": [0]}',
                                   "has no 'times', 'valence' or 'arousal' (an arc holds times, valence and arousal; "
                                   "this one holds 't', 'v', 'a')"),
    "unsorted times": ('{"times": [0.25, 0.75, 0.5, 1.0], "valence": [0, 0, 0, 0], "arousal": [0, 0, 0, 0]}',
                       "`--arc` times must rise from each point to the next (item 2 is 0.5, after 0.75): sort the "
                       "points by time and give each time once"),
    "a time given twice": ('{"times": [0.25, 0.75, 0.75], "valence": [0, 0, 0], "arousal": [0, 0, 0]}',
                           "(item 2 is 0.75, after 0.75)"),
    "no arousal": ('{"arc": {"times": [0.25], "valence": [0]}, "duration": 2}',
                   "has no 'arousal' (an arc holds times, valence and arousal; this one holds 'times', 'valence')"),
    "an empty file": ("", "arc.json: is empty (0 bytes): not an arc file"),
}


@pytest.mark.parametrize("name", list(ARCS))
def test_compose_arc_of_the_wrong_shape(capsys, tmp_path, name):
    text, expected = ARCS[name]
    arc = tmp_path / "arc.json"
    arc.write_text(text)
    line = _one_sentence(capsys, ["compose", "--arc", str(arc), "--no-audio", "--out", str(tmp_path / "out")])
    assert expected in line
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16", "utf-32"])
def test_compose_reads_an_arc_saved_with_a_byte_order_mark(capsys, tmp_path, encoding):
    """Notepad's "UTF-8 with BOM" was "`--arc` is not valid JSON (Unexpected UTF-8 BOM ...)", and Windows
    PowerShell's `soundtrack analyze clip.mp4 --json > arc.json` (UTF-16) "is not a text file": the same
    arc in any of them composes the same piece as in plain UTF-8. Bytes that are no text are still refused."""
    text = json.dumps({"times": [0.25, 0.75, 1.25, 1.75], "valence": [0.1, 0.2, 0.3, 0.4],
                       "arousal": [0, 0.1, 0.2, 0.3]})
    plain, marked = tmp_path / "plain" / "arc.json", tmp_path / "marked" / "arc.json"
    for path, enc in ((plain, "utf-8"), (marked, encoding)):
        path.parent.mkdir()
        path.write_text(text, encoding=enc)
        assert main(["compose", "--arc", str(path), "--no-audio", "--out", str(path.parent), "--no-progress"]) == 0
    assert "composed 2.0 s" in capsys.readouterr().out
    assert (marked.parent / "arc-score.mid").read_bytes() == (plain.parent / "arc-score.mid").read_bytes()
    junk = tmp_path / "junk.json"
    junk.write_bytes(b"\x00\x01\x02 not text \xff")
    assert "junk.json: is not a text file" in _one_sentence(
        capsys, ["compose", "--arc", str(junk), "--no-audio", "--out", str(tmp_path / "out")])


def test_compose_arc_that_is_a_folder_is_not_said_to_be_missing(capsys, tmp_path):
    folder = tmp_path / "arc.json"
    folder.mkdir()
    line = _one_sentence(capsys, ["compose", "--arc", str(folder), "--no-audio", "--out", str(tmp_path / "out")])
    assert "arc.json: is a folder, not an arc file" in line


def test_compose_cuts_must_be_numbers(capsys, tmp_path):
    arc = tmp_path / "arc.json"
    arc.write_text(json.dumps({"times": [0.25, 0.75], "valence": [0, 0], "arousal": [0, 0]}))
    for cuts in ("1,nan", "1,x"):
        assert "`--cuts` must be comma-separated seconds" in _one_sentence(
            capsys, ["compose", "--arc", str(arc), "--cuts", cuts, "--no-audio", "--out", str(tmp_path)])
    assert "`--cuts` must not be negative (received -1)" in _one_sentence(
        capsys, ["compose", "--arc", str(arc), "--cuts=-1,2", "--no-audio", "--out", str(tmp_path)])


def test_compose_says_what_an_arc_or_its_cuts_cannot_mean(capsys, tmp_path):
    """Values off the [-1, 1] plane, a one-point arc with no length, cuts past the end (which were dropped
    in silence)."""
    big, one = tmp_path / "big.json", tmp_path / "one.json"
    big.write_text(json.dumps({"times": [0.25, 0.75], "valence": [50, 0], "arousal": [0, 0]}))
    one.write_text(json.dumps({"times": [0.25], "valence": [0.2], "arousal": [0.1]}))
    out = ["--no-audio", "--out", str(tmp_path / "out")]
    assert "valence must lie within -1 and 1 (received 50)" in _one_sentence(
        capsys, ["compose", "--arc", str(big), *out])
    assert "one-point arc has no length of its own: give --duration" in _one_sentence(
        capsys, ["compose", "--arc", str(one), *out])
    assert main(["compose", "--arc", str(one), "--duration", "6", "--cuts", "1,8,20", *out]) == 0
    said = capsys.readouterr()
    assert "warning: 2 cuts at or past the end (6 s) left out: 8 s, 20 s" in said.err and "1 cut" in said.out
    assert "its last mood is held" not in said.err  # one point asks for a duration: nothing to warn of


def test_compose_says_how_long_an_arc_of_points_from_zero_runs(capsys, tmp_path):
    """An arc written by hand with times 0, 5, 10 composed 12.5 s for a 10 s clip without a word (the times are
    the middles of the arc's steps); it is said with the --duration that ends the piece at the last point. An
    analysis's arc (times from half a step) and one given a duration are not warned of."""
    points, centres = tmp_path / "points.json", tmp_path / "centres.json"
    points.write_text(json.dumps({"times": [0, 5, 10], "valence": [0.5] * 3, "arousal": [-0.5] * 3}))
    centres.write_text(json.dumps({"times": [2.5, 7.5], "valence": [0.5] * 2, "arousal": [-0.5] * 2}))
    out = ["--no-audio", "--out", str(tmp_path / "out"), "--no-progress"]
    assert main(["compose", "--arc", str(points), *out]) == 0
    said = capsys.readouterr()
    assert ("warning: the arc's times are the middles of its steps, so times 0 to 10 s cover 12.5 s: give "
            "--duration 10 for a piece that ends at the last point") in said.err
    assert "composed 12.5 s" in said.out
    assert main(["compose", "--arc", str(points), "--duration", "10", *out]) == 0
    assert main(["compose", "--arc", str(centres), *out]) == 0
    said = capsys.readouterr()
    assert "warning" not in said.err and "composed 10.0 s" in said.out


def test_compose_warns_when_the_duration_runs_far_past_the_arc(capsys, tmp_path):
    """An arc of 12 s with --duration 120 (the wrong arc file, or one cut short) held its last mood for 108 s in
    silence; it is said, and a duration within the arc's last step is not."""
    arc = tmp_path / "arc.json"
    times = [0.25 + 0.5 * i for i in range(24)]
    arc.write_text(json.dumps({"times": times, "valence": [0.3] * 24, "arousal": [0.1] * 24}))
    out = ["--no-audio", "--out", str(tmp_path / "out"), "--no-progress"]
    assert main(["compose", "--arc", str(arc), "--duration", "120", *out]) == 0
    said = capsys.readouterr().err
    assert "warning: the arc ends at 12 s: its last mood is held from there to the end (120 s)" in said
    assert main(["compose", "--arc", str(arc), "--duration", "12.5", *out]) == 0
    assert "warning" not in capsys.readouterr().err


def test_compose_an_arc_longer_than_an_hour_says_how_to_score_its_start(capsys, tmp_path):
    """A three-hour arc was "`duration` must be at most one hour (received 10799.949999999999 s)": a duration
    the user never gave, and no way out. It names the arc's length and --duration, which composes its start."""
    long = tmp_path / "film.json"
    times = [0.25 + 0.5 * i for i in range(6 * 3600)]
    long.write_text(json.dumps({"times": times, "valence": [0.1] * len(times), "arousal": [0.2] * len(times)}))
    out = ["--no-audio", "--out", str(tmp_path / "out"), "--no-progress"]
    line = _one_sentence(capsys, ["compose", "--arc", str(long), *out])
    assert line.endswith("film.json runs 10800 s and a composed score is at most 3600 s (one hour): "
                         "give --duration to score its start")
    assert "`duration` must be at most 3600 s, one hour (received 5000 s)" in _one_sentence(
        capsys, ["compose", "--arc", str(long), "--duration", "5000", *out])
    assert main(["compose", "--arc", str(long), "--duration", "8", *out]) == 0
    assert "composed 8.0 s" in capsys.readouterr().out


def test_a_plot_name_and_a_missing_folder_are_refused_before_any_work(capsys, tmp_path):
    with pytest.raises(SystemExit) as stop:  # the parser says it, before the clip is even looked at
        main(["analyze", str(tmp_path / "clip.mp4"), "--plot", str(tmp_path / "arc.txt")])
    assert stop.value.code == 2 and "the plot is an image: name it .png" in capsys.readouterr().err
    assert "nowhere: is neither a folder nor a file" in _one_sentence(
        capsys, ["index", str(tmp_path / "nowhere"), "--library", str(tmp_path / "lib.db"), "--no-progress"])
    assert not list(tmp_path.glob("lib.db*"))  # no library made for nothing


def test_compose_counts_one_cut_in_the_singular(capsys, tmp_path):
    arc = tmp_path / "arc.json"
    arc.write_text(json.dumps({"times": [0.25, 7.75], "valence": [0, 0], "arousal": [0, 0]}))
    argv = ["compose", "--arc", str(arc), "--cuts", "3.5", "--no-audio", "--source", "rules", "--out", str(tmp_path)]
    assert main(argv) == 0
    line = capsys.readouterr().out.splitlines()[0]
    assert line.startswith("composed ") and line.endswith(", 1 cut"), line
    assert re.search(r", (1 chord|\d+ chords), 1 cut$", line), line


def test_a_batch_name_needs_a_manifest_database(capsys, tmp_path):
    line = _one_sentence(capsys, ["batch", str(tmp_path), "--out", str(tmp_path / "out"), "--batch-name", "nightly"])
    assert "`--batch-name` names a batch in `--manifest-db`" in line


def test_a_clip_named_like_an_option_is_composed_end_to_end(tmp_path, bright_clip):
    """``soundtrack compose ./-rf.mp4``: FFmpeg must see file names, never options."""
    work = tmp_path / "work"
    work.mkdir()
    (work / "-rf.mp4").write_bytes(bright_clip.path.read_bytes())
    # CI=1: pyfluidsynth then prints where it found libfluidsynth; --json stdout must stay JSON.
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CI": "1"}
    done = subprocess.run([sys.executable, "-m", "soundtrack.cli", "compose", "./-rf.mp4", "--json"], cwd=work,
                          env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    outputs = json.loads(done.stdout)["outputs"]
    assert {Path(p).name for p in outputs.values()} == {"rf-score.mid", "rf-score.musicxml", "rf-score.wav",
                                                        "rf-score.mp4"}
    assert all(Path(p).is_absolute() and Path(p).stat().st_size > 0 for p in outputs.values())
    assert sorted(p.name for p in work.iterdir() if p.name.startswith("-")) == ["-rf.mp4"]


@pytest.mark.parametrize("argv", [["analyze", "-take1.mp4"], ["batch", "-take1.mp4", "--out", "scores"]])
def test_a_clip_named_like_an_option_without_dot_slash_is_pointed_out(capsys, tmp_path, monkeypatch, argv):
    """``soundtrack analyze -take1.mp4`` said only "the following arguments are required: clip"."""
    monkeypatch.chdir(tmp_path)
    still_as_mp4(tmp_path / "-take1.mp4")
    with pytest.raises(SystemExit) as stop:
        main(argv)
    err = capsys.readouterr().err
    assert stop.value.code == 2 and "Traceback" not in err
    assert err.splitlines()[-1] == ("soundtrack: -take1.mp4 was read as an option; for the file, write ./-take1.mp4 "
                                    "or put -- before it")
    assert not (tmp_path / "scores").exists()


def test_a_still_image_posing_as_video_is_refused_by_the_cli(capsys, tmp_path):
    still = still_as_mp4(tmp_path / "photo.mp4")
    line = _one_sentence(capsys, ["analyze", str(still)])
    assert "no video stream with more than one frame" in line


def test_match_says_a_clip_is_too_short_to_match_naming_it(capsys, tmp_path):
    """A half-second clip got "`clip` arc needs at least 2 steps to be matched (received 1): the clip is shorter
    than two arc steps": not which file, nor what to do instead."""
    from mediagen import Shot, make_clip
    from test_app import build_small_library

    build_small_library(tmp_path / "library")
    clip = make_clip(tmp_path / "blink.mp4", shots=[Shot(12, (200, 100, 50), motion=0.2)], fps=25)
    line = _one_sentence(capsys, ["match", str(clip), "--library", str(tmp_path / "library" / "lib.db")])
    assert line == (f"soundtrack match: error: {clip}: is too short to match a track (0.5 s, one arc step; matching "
                    "needs two): `soundtrack score` or `soundtrack compose` composes a score for it")


def test_a_broken_link_is_said_to_be_one(capsys, tmp_path):
    """A link to a clip on a volume that went away was "file not found", though `ls` shows the file."""
    (tmp_path / "away.mp4").symlink_to(tmp_path / "volume" / "clip.mp4")
    (tmp_path / "loop.mp4").symlink_to("loop.mp4")
    for command in ("analyze", "score"):
        line = _one_sentence(capsys, [command, str(tmp_path / "away.mp4")])
        assert line.endswith(f"away.mp4: is a link to {tmp_path / 'volume' / 'clip.mp4'}, which does not exist")
        line = _one_sentence(capsys, [command, str(tmp_path / "loop.mp4")])
        assert line.endswith("loop.mp4: is a link that loops back on itself")


@pytest.mark.parametrize("command", ["score", "compose", "batch"])
@pytest.mark.parametrize("depth", ["5", "31", "loud"])
def test_a_duck_depth_out_of_range_is_refused_before_any_work(capsys, tmp_path, command, depth):
    extra = ["--out", str(tmp_path)] if command == "batch" else []  # batch's one required option
    argv = [command, str(tmp_path / "clip.mp4"), "--duck", depth, *extra]
    with pytest.raises(SystemExit) as stop:
        main(argv)
    err = capsys.readouterr().err
    assert stop.value.code == 2 and "Traceback" not in err
    assert f"argument --duck: must be within 6 and 30 dB below the dialogue (received '{depth}')" in err


def test_read_only_commands_name_a_missing_library_and_make_none(capsys, tmp_path):
    """A mistyped `--library` is refused in one line; before, `match` opened it and left an empty
    SQLite database (and its -wal and -shm files) under the mistyped name."""
    clip = still_as_mp4(tmp_path / "clip.mp4")
    for command in ("match", "score", "batch"):
        extra = ["--out", str(tmp_path / "out")] if command == "batch" else []
        line = _one_sentence(capsys, [command, str(clip), "--library", str(tmp_path / "libary.db"), *extra])
        assert "libary.db: library database not found" in line
    assert not list(tmp_path.glob("libary.db*"))


def test_an_empty_folder_is_said_to_hold_nothing(capsys, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    line = _one_sentence(capsys, ["batch", str(empty), "--out", str(tmp_path / "out")])
    assert "empty: holds no video clips (looked for .3gp" in line
    assert not (tmp_path / "out").exists()  # no output folder or manifest for a batch of nothing
    assert main(["index", str(empty), "--library", str(tmp_path / "lib.db"), "--no-progress"]) == 0
    out, err = capsys.readouterr()
    assert "holds no audio or MIDI files (looked for .aac" in err and "indexing" not in err
    assert "added 0" in out and "holds 0 tracks" in out


def test_counted_names_one_in_the_singular() -> None:
    from soundtrack.argtypes import counted

    assert [counted(n, "track") for n in (0, 1, 2)] == ["0 tracks", "1 track", "2 tracks"]


def test_a_batch_where_every_clip_failed_gives_no_speed(capsys, tmp_path):
    """A rate over clips that only failed (23,690 clips/min for one missing file) says nothing."""
    rc = main(["batch", str(tmp_path / "gone.mp4"), "--out", str(tmp_path / "out"), "--no-progress"])
    out = capsys.readouterr().out
    assert rc == 1 and "1 clip(s) scored (0 ok, 1 with errors)" in out and "clips/min" not in out


def test_serve_names_its_flags_and_a_taken_port_before_loading_anything(capsys, tmp_path):
    import socket

    for argv, said in ((["-k", "0"], "`-k` must be within 1 and 100"),
                       (["--max-duration", "0"], "`--max-duration` must be positive"),
                       (["--cleanup-hours", "-1"], "`--cleanup-hours` must be positive"),
                       (["--max-upload-mb", "0"], "`--max-upload-mb` must be positive")):
        assert said in _one_sentence(capsys, ["serve", "--library", str(tmp_path / "none.db"), *argv])
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        said = _one_sentence(capsys, ["serve", "--port", str(port)])
        assert f"port {port} on 127.0.0.1 cannot be listened on" in said


@pytest.mark.parametrize("host", ["no-such-host.invalid", "192.0.2.1"])
def test_serve_blames_a_host_it_cannot_listen_on_not_the_port(capsys, host):
    """A host name that does not resolve, or another machine's address (192.0.2.1 is TEST-NET-1), was said as
    "port 7860 ... cannot be listened on: choose another with --port", which no port mends."""
    said = _one_sentence(capsys, ["serve", "--host", host, "--port", "7860"])
    assert f"host {host!r} is not an address of this machine" in said and "--port" not in said


def test_feedback_stats_checks_the_user_id_as_export_does(capsys, tmp_path):
    from matching.library.store import Library

    Library(tmp_path / "lib.db").engine.dispose()
    for action in ("stats", "export"):
        assert "`user_id` must be 1-64 characters" in _one_sentence(
            capsys, ["feedback", action, "--user", "bad id!", "--library", str(tmp_path / "lib.db")])


def test_python_dash_m_soundtrack_runs_the_command() -> None:
    done = subprocess.run([sys.executable, "-m", "soundtrack", "compose", "--help"], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0 and done.stdout.startswith("usage: soundtrack compose"), done.stderr


def test_index_names_each_skipped_file_once_with_its_reason(capsys, caplog, tmp_path):
    """A file that is not music is said once, in the summary, not also as a logged warning."""
    folder = tmp_path / "music"
    folder.mkdir()
    write_midi(folder / "tune.mid", pitches=[60, 64, 67], tempo=120.0, velocity=90, program=0, bars=2)
    (folder / "notes.mp3").write_text("not a recording")
    with caplog.at_level("WARNING"):
        assert main(["index", str(folder), "--library", str(tmp_path / "lib.db"), "--workers", "0",
                     "--no-progress"]) == 0
    out, err = capsys.readouterr()
    said = out + err + caplog.text
    assert said.count("notes.mp3") == 1 and "skipped 1" in out
    assert re.search(r"skipped .*notes\.mp3: is not readable audio", out)


def test_match_warns_of_a_listed_track_whose_file_is_gone(tmp_path: Path, bright_clip, capsys) -> None:
    """`match` listed a track whose file had been deleted as if it could be used (`score` passes over it)."""
    from test_app import write_midi

    music, db = tmp_path / "music", str(tmp_path / "lib.db")
    music.mkdir()
    kept = write_midi(music / "kept.mid", pitches=[60, 64, 67], tempo=90, velocity=70, program=0)
    gone = write_midi(music / "gone.mid", pitches=[57, 60, 64], tempo=70, velocity=90, program=0)
    assert main(["index", str(music), "--library", db, "--workers", "0", "--no-progress"]) == 0
    gone.unlink()
    capsys.readouterr()
    assert main(["match", str(bright_clip.path), "--library", db, "--sources", "visual", "--json"]) == 0
    out = capsys.readouterr()
    assert len(json.loads(out.out)["matches"]) == 2  # still ranked: the catalogue keeps it until --prune
    warned = [line for line in out.err.splitlines() if "warning:" in line]
    assert len(warned) == 1 and f"({gone}) is gone" in warned[0] and str(kept) not in out.err


def test_a_clip_too_long_to_compose_for_is_refused_before_its_analysis(capsys, tmp_path, monkeypatch):
    """`compose film.mp4` and `score film.mp4` (no library) on a two-hour clip analysed it for 144 s and 6.9 GB,
    then refused a score over one hour. A probe refuses it first; `--duration` still scores its start."""
    from fractions import Fraction

    import av
    import numpy as np

    import analysis.video
    import composer.pipeline.score_video as score_video

    film = tmp_path / "film.mp4"
    with av.open(str(film), "w") as out:  # two frames 3700 s apart: a long clip in a few bytes
        stream = out.add_stream("libx264", rate=1)
        stream.width = stream.height = 16
        stream.pix_fmt, stream.codec_context.time_base = "yuv420p", Fraction(1, 1)
        for pts in (0, 3700):
            frame = av.VideoFrame.from_ndarray(np.zeros((16, 16, 3), np.uint8), format="rgb24")
            frame.pts, frame.time_base = pts, Fraction(1, 1)
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)

    def analysed(*_a, **_k):
        raise AssertionError("analysed before its length was checked")

    monkeypatch.setattr(analysis.video, "analyze_video", analysed)
    monkeypatch.setattr(score_video, "analyze_video", analysed, raising=False)
    for argv, advice in ((["compose", str(film), "--no-audio"], "give --duration to score its start"),
                         (["score", str(film)], "a library track can still be fitted")):
        said = _one_sentence(capsys, [*argv, "--out", str(tmp_path / "out")])
        assert "film.mp4 runs 3701 s and a composed score is at most 3600 s (one hour)" in said and advice in said
    assert not (tmp_path / "out").exists()
    said = _one_sentence(capsys, ["compose", str(film), "--duration", "60", "--no-audio", "--out", str(tmp_path)])
    assert "analysed before" in said  # with --duration it goes on to the analysis (stubbed here)


def test_demo_path_that_is_a_file_is_said_in_a_sentence(capsys, tmp_path):
    """`soundtrack demo --path song.wav` said only "song.wav: File exists"."""
    song = tmp_path / "song.wav"
    song.write_bytes(b"RIFF")
    said = _one_sentence(capsys, ["demo", "--path", str(song)])
    assert f"{song}: cannot create the demo library folder (File exists)" in said


def test_compose_names_the_seed_melody_file_that_cannot_be_one(capsys, tmp_path):
    """A folder was "seed melody file not found"; a MIDI of drums alone was "`seed_melody` has no pitched
    notes", naming neither the file nor the flag."""
    import pretty_midi

    arc = tmp_path / "arc.json"
    arc.write_text(json.dumps({"times": [0.25, 0.75], "valence": [0, 0], "arousal": [0, 0]}))
    drums = tmp_path / "drums.mid"
    pm = pretty_midi.PrettyMIDI()
    kit = pretty_midi.Instrument(0, is_drum=True)
    kit.notes.append(pretty_midi.Note(100, 36, 0.0, 0.5))
    pm.instruments.append(kit)
    pm.write(str(drums))
    (tmp_path / "tune.mid").mkdir()
    for seed, said in ((drums, "drums.mid: holds no pitched notes to develop as a seed melody"),
                       (tmp_path / "tune.mid", "tune.mid: is a folder, not a seed melody MIDI file")):
        line = _one_sentence(capsys, ["compose", "--arc", str(arc), "--seed-melody", str(seed), "--no-audio",
                                      "--out", str(tmp_path / "out")])
        assert said in line


@pytest.mark.parametrize("k", ["0", "-3"])
def test_match_refuses_a_k_below_one_before_analysing_the_clip(capsys, tmp_path, monkeypatch, bright_clip, k):
    """`match clip.mp4 -k 0` analysed the whole clip (minutes for a long one), then said "`k` must be a positive
    integer (received 0)", naming no option the command has. It is now said at once, as the option is spelt."""
    from test_app import write_midi

    music, db = tmp_path / "music", str(tmp_path / "lib.db")
    music.mkdir()
    write_midi(music / "tune.mid", pitches=[60, 64, 67], tempo=90, velocity=70, program=0)
    assert main(["index", str(music), "--library", db, "--workers", "0", "--no-progress"]) == 0
    capsys.readouterr()
    monkeypatch.setattr("analysis.video.analyze_video", lambda *a, **kw: pytest.fail("the clip was analysed"))
    line = _one_sentence(capsys, ["match", str(bright_clip.path), "--library", db, "-k", k])
    assert line == f"soundtrack match: error: `-k` must be 1 or more (received {k})"
