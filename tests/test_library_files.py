"""A studio's own music folder indexed as it is edited, moved and littered: what the catalogue calls each
file (its tags), which copy a record follows when a folder holding duplicates moves, and how the report names
files cut off, copied, dangling or gone. Titles and cut-off files use the real track analysis; the folder
bookkeeping uses test_library's small stand-in analyser."""

from __future__ import annotations

from pathlib import Path

import av
import pytest
import soundfile as sf
from mediagen import make_audio_file, percussion, tone

from analysis.errors import MediaError
from matching.library.store import Library


def _tagged(path: Path, **tags: str) -> Path:
    """A copy of ``path`` whose container carries ``tags`` (ID3 for MP3, Vorbis comments for FLAC)."""
    out = path.with_name(f"{path.stem}-tagged{path.suffix}")
    with av.open(str(path)) as src, av.open(str(out), "w") as dst:
        dst.metadata.update(tags)
        stream = dst.add_stream_from_template(src.streams.audio[0])
        for packet in src.demux(src.streams.audio[0]):
            if packet.dts is not None:
                packet.stream = stream
                dst.mux(packet)
    return out


@pytest.mark.parametrize("suffix", [".mp3", ".flac"])
def test_a_tracks_title_and_artist_come_from_its_tags_else_its_name(tmp_path: Path, suffix: str) -> None:
    """An MP3 named ``01 - cue_v3`` whose ID3 title is 'Harbour at Dawn' was catalogued as '01 - cue_v3-tagged'
    with no artist: tags were never read. The tag wins; a file without tags keeps its name; a title given
    to ``add`` wins over both."""
    folder = tmp_path / "music"
    folder.mkdir()
    plain = make_audio_file(folder / f"01 - cue_v3{suffix}", audio=percussion(4.0, sample_rate=22050),
                            seconds=4.0, sample_rate=22050)
    tagged = _tagged(plain, title="Harbour at Dawn", artist="Studio\nBand ")
    untagged = folder / "plain tone.wav"
    sf.write(untagged, tone([220.0, 330.0], 4.0, sample_rate=22050, amplitude=0.3), 22050)
    lib = Library(tmp_path / "lib.db")
    report = lib.add_folder(folder, workers=0, progress=False)
    assert report.skipped == ()
    by_path = {Path(r.path).name: r for r in lib.list()}
    assert (by_path[tagged.name].title, by_path[tagged.name].artist) == ("Harbour at Dawn", "Studio Band")
    assert (by_path[plain.name].title, by_path[plain.name].artist) == ("01 - cue_v3", None)
    assert (by_path[untagged.name].title, by_path[untagged.name].artist) == ("plain tone", None)

    named = Library(tmp_path / "other.db").add(tagged, title="Cue 1")
    assert named.title == "Cue 1" and named.artist == "Studio Band"


def test_an_uploaded_track_is_named_by_its_tag_else_its_upload_name(tmp_path: Path) -> None:
    """The page stores an upload under its checksum; it named the track by the upload's file name even
    when the file's tags said its title."""
    from matching.library.uploads import import_track

    plain = make_audio_file(tmp_path / "take 2.mp3", audio=percussion(4.0, sample_rate=22050), seconds=4.0,
                            sample_rate=22050)
    tagged = _tagged(plain, title="Night Drive", artist="Studio Band")
    lib = Library(tmp_path / "lib.db")
    record, new = import_track(lib, tagged, storage=tmp_path / "store")
    assert new and (record.title, record.artist) == ("Night Drive", "Studio Band")
    assert Path(record.path).parent.parent == tmp_path / "store"
    record, new = import_track(lib, plain, storage=tmp_path / "store")
    assert new and (record.title, record.artist) == ("take 2", None)


def test_a_moved_folder_holding_a_track_twice_keeps_the_record_on_its_own_file(tmp_path: Path) -> None:
    """A folder with 'zeta/theme.wav' and a later copy 'alpha/theme copy.wav' was moved: the record of
    'theme' then pointed at 'alpha/theme copy.wav', the first copy in name order. It follows the file
    whose path ends as its old one did."""
    from test_library import loudness_analyzer

    music = tmp_path / "music"
    (music / "zeta").mkdir(parents=True)
    sf.write(music / "zeta" / "theme.wav", tone([220.0], 2.0, sample_rate=8000, amplitude=0.3), 8000)
    sf.write(music / "zeta" / "other.wav", tone([330.0], 2.0, sample_rate=8000, amplitude=0.3), 8000)
    lib = Library(tmp_path / "lib.db", analyzer=loudness_analyzer)
    lib.add_folder(music, workers=0, progress=False)
    (music / "alpha").mkdir()
    (music / "alpha" / "theme copy.wav").write_bytes((music / "zeta" / "theme.wav").read_bytes())
    assert lib.add_folder(music, workers=0, progress=False).existing == 3
    moved_to = tmp_path / "moved"
    music.rename(moved_to)
    report = lib.add_folder(moved_to, workers=0, progress=False)
    assert sorted(r.path for r in report.moved) == [str(moved_to / "zeta" / "other.wav"),
                                                    str(moved_to / "zeta" / "theme.wav")]
    assert report.existing == 1 and report.added == ()
    assert {r.title: r.path for r in lib.list()}["theme"] == str(moved_to / "zeta" / "theme.wav")


@pytest.mark.parametrize("suffix", [".mp3", ".ogg"])
def test_an_mp3_cut_in_half_is_said_to_be_truncated(tmp_path: Path, suffix: str,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    """An MP3 download stopped half-way was catalogued as a 4.7 s track without a word, though its Xing
    header counts 9.4 s (a WAV cut the same way was warned of). Decoded audio shorter than the stream
    announces is warned of, as for a WAV; what is there is still read. An Ogg file announces no length
    of its own (its last page says where it ends), so a cut one says nothing."""
    from analysis.music.track import load_audio

    whole = tmp_path / f"whole{suffix}"
    if suffix == ".ogg":  # PyAV here has no Vorbis encoder; libsndfile has
        sf.write(whole, percussion(10.0, sample_rate=22050), 22050)
    else:
        make_audio_file(whole, audio=percussion(10.0, sample_rate=22050), seconds=10.0, sample_rate=22050)
    load_audio(whole)
    assert "truncated" not in caplog.text  # a whole file says nothing
    cut = tmp_path / f"cut{suffix}"
    data = whole.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    y = load_audio(cut)
    assert 3.0 < y.size / 22050 < 7.0  # what is there is still read
    said = f"cut{suffix}: decoded" in caplog.text and "(truncated?)" in caplog.text
    assert said == (suffix == ".mp3")


def test_the_tracks_of_a_folder_that_is_gone_can_be_pruned(tmp_path: Path, capsys) -> None:
    """A track deleted before its folder was moved stayed in the library for good: indexing the new folder
    never names it, `match` warned of it on every run and advised `soundtrack index --prune`, but
    `index OLD --prune` answered 'is neither a folder nor a file'. It now removes the tracks stored under
    the folder that is gone; without --prune the error says how many there are."""
    from test_app import write_midi

    from soundtrack.cli import main

    music, db = tmp_path / "music", str(tmp_path / "lib.db")
    music.mkdir()
    write_midi(music / "kept.mid", pitches=[60, 64, 67], tempo=90, velocity=70, program=0, bars=2)
    write_midi(music / "deleted.mid", pitches=[57, 60, 64], tempo=70, velocity=90, program=0, bars=2)
    assert main(["index", str(music), "--library", db, "--workers", "0", "--no-progress"]) == 0
    (music / "deleted.mid").unlink()
    music.rename(tmp_path / "moved")
    assert main(["index", str(tmp_path / "moved"), "--library", db, "--workers", "0", "--no-progress",
                 "--prune"]) == 0
    assert sorted(r.title for r in Library(db).list()) == ["deleted", "kept"]  # stored under the old folder
    capsys.readouterr()
    assert main(["index", str(music), "--library", db, "--no-progress"]) == 2
    assert "the library holds 1 track stored under it (--prune removes them)" in capsys.readouterr().err
    assert main(["index", str(music), "--library", db, "--no-progress", "--prune"]) == 0
    assert "removed 1 track whose file is gone" in capsys.readouterr().out
    assert [r.title for r in Library(db).list()] == ["kept"]
    assert main(["index", str(tmp_path / "nowhere"), "--library", str(tmp_path / "new.db"), "--prune"]) == 2
    assert not (tmp_path / "new.db").exists()  # no library made for a folder that is not there


def test_a_dangling_link_or_a_pipe_named_like_a_track_is_said_to_be_skipped(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    """A link to a track on a drive that is not mounted, and a pipe named 'live.wav', were left out of the
    index without a word (the report said 'skipped 0'). Each is one skipped line naming why."""
    import os

    from test_library import loudness_analyzer

    music = tmp_path / "music"
    music.mkdir()
    sf.write(music / "theme.wav", tone([220.0], 2.0, sample_rate=8000, amplitude=0.3), 8000)
    (music / "on-nas.wav").symlink_to(tmp_path / "unmounted" / "cue.wav")
    os.mkfifo(music / "live.wav")
    (music / "folder.wav").mkdir()  # a folder named like a track is a folder: scanned, not skipped
    lib = Library(tmp_path / "lib.db", analyzer=loudness_analyzer)
    report = lib.add_folder(music, workers=0, progress=False)
    assert len(report.added) == 1
    assert {Path(s.path).name: s.reason for s in report.skipped} == {
        "on-nas.wav": f"is a link to {tmp_path / 'unmounted' / 'cue.wav'}, which is not there",
        "live.wav": "is not a regular file (a pipe, socket or device)",
    }
    assert caplog.text.count("skipped ") == 2
    with pytest.raises(MediaError, match=r"on-nas.wav: is a link to .*cue.wav, which does not exist"):
        lib.add_folder(music / "on-nas.wav", workers=0, progress=False)  # given itself: "neither a folder nor a file"
    from soundtrack.cli import main

    assert main(["index", str(music / "on-nas.wav"), "--library", str(tmp_path / "new.db"), "--no-progress"]) == 2
    assert "on-nas.wav: is a link to" in capsys.readouterr().err and not (tmp_path / "new.db").exists()


@pytest.mark.parametrize("workers", ["0", "2"])
def test_index_names_the_files_cut_off_once_in_its_report(tmp_path: Path, capfd, caplog: pytest.LogCaptureFixture,
                                                          workers: str) -> None:
    """A WAV or MP3 cut off part-way was indexed with a log line from the analysis only: printed amid the
    progress bar by a worker process, absent from the report and from `--json`. The report names each such
    file once, with what its analysis warned of."""
    import json

    from soundtrack.cli import main

    music = tmp_path / "music"
    music.mkdir()
    for name in ("whole.wav", "cut.wav", "cut.mp3"):
        make_audio_file(tmp_path / name, audio=percussion(6.0, sample_rate=22050), seconds=6.0, sample_rate=22050)
        data = (tmp_path / name).read_bytes()
        (music / name).write_bytes(data if name.startswith("whole") else data[: len(data) // 2])
    db = str(tmp_path / "lib.db")
    with caplog.at_level("WARNING"):
        assert main(["index", str(music), "--library", db, "--workers", workers, "--no-progress"]) == 0
    out, err = capfd.readouterr()
    said = out + err + caplog.text
    for name in ("cut.wav", "cut.mp3"):
        assert said.count(name) == 1 and f"indexed {music / name}, but decoded 3.0 s of the 6.0 s" in out
    assert "whole.wav" not in said
    (tmp_path / "again.db").unlink(missing_ok=True)
    assert main(["index", str(music), "--library", str(tmp_path / "again.db"), "--workers", workers,
                 "--no-progress", "--json"]) == 0
    warned = json.loads(capfd.readouterr().out)["warned"]
    assert sorted(Path(w["path"]).name for w in warned) == ["cut.mp3", "cut.wav"]
    assert all(w["reason"].endswith("its header announces (truncated?)") for w in warned)


def test_a_reports_warnings_are_its_own_files_not_another_threads(tmp_path: Path) -> None:
    """On the page a folder is indexed in one thread while other visitors' clips are analysed in others:
    what those analyses warn of meanwhile is not this folder's."""
    import logging
    import threading

    from test_library import loudness_analyzer

    def analyzer(path: Path, *, hop: float = 0.5):
        other = threading.Thread(target=logging.getLogger("analysis.video").warning, args=("clip.mp4: cut off",))
        other.start()
        other.join()
        logging.getLogger("analysis.music.track").warning("%s: decoded 1.0 s of the 2.0 s", path)
        return loudness_analyzer(path, hop=hop)

    music = tmp_path / "music"
    music.mkdir()
    sf.write(music / "theme.wav", tone([220.0], 2.0, sample_rate=8000, amplitude=0.3), 8000)
    report = Library(tmp_path / "lib.db", analyzer=analyzer).add_folder(music, workers=0, progress=False)
    assert [(Path(w.path).name, w.reason) for w in report.warned] == [("theme.wav", "decoded 1.0 s of the 2.0 s")]


def test_the_library_tab_names_the_files_it_skipped_or_read_with_a_warning(tmp_path: Path) -> None:
    """The page's 'index a folder' said '2 skipped' and nothing of which files or why, nor of a file cut
    off. It names them (no folders: a visitor learns no server paths)."""
    from soundtrack.service import AppConfig, SoundtrackService

    root = tmp_path / "roots" / "music"
    root.mkdir(parents=True)
    make_audio_file(root / "good.wav", audio=percussion(4.0, sample_rate=22050), seconds=4.0, sample_rate=22050)
    (root / "empty.mp3").write_bytes(b"")
    (root / "notes.wav").write_text("not audio")
    make_audio_file(tmp_path / "whole.mp3", audio=percussion(6.0, sample_rate=22050), seconds=6.0, sample_rate=22050)
    data = (tmp_path / "whole.mp3").read_bytes()
    (root / "cut.mp3").write_bytes(data[: len(data) // 2])
    service = SoundtrackService(AppConfig(library=tmp_path / "lib.db", work_dir=tmp_path / "work",
                                          index_roots=(tmp_path / "roots",)))
    msg = service.add_folder("music")
    assert "added 2 track(s)" in msg and "2 skipped (empty.mp3: is empty (0 bytes); notes.wav: is not readable" in msg
    assert "; read with a warning: 1 (cut.mp3: decoded 3.0 s of the 6.0 s its header announces (truncated?))" in msg
    assert str(tmp_path) not in msg


def test_a_caller_showing_the_report_hears_the_analysis_details_but_not_its_warnings_twice(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """`soundtrack -v index` shows the analysis's details as it goes; its warnings come once, in the report."""
    import logging

    from test_library import loudness_analyzer

    def analyzer(path: Path, *, hop: float = 0.5):
        logging.getLogger("analysis.music.track").info("%s: reading", path)
        logging.getLogger("analysis.music.track").warning("%s: decoded 1.0 s of the 2.0 s", path)
        return loudness_analyzer(path, hop=hop)

    music = tmp_path / "music"
    music.mkdir()
    sf.write(music / "theme.wav", tone([220.0], 2.0, sample_rate=8000, amplitude=0.3), 8000)
    with caplog.at_level("INFO"):
        report = Library(tmp_path / "lib.db", analyzer=analyzer).add_folder(music, workers=0, progress=False,
                                                                            log_skips=False)
    assert [w.reason for w in report.warned] == ["decoded 1.0 s of the 2.0 s"]
    assert "theme.wav: reading" in caplog.text and "decoded" not in caplog.text


def test_a_copy_of_a_catalogued_track_is_named_with_the_file_it_copies(tmp_path: Path, capsys) -> None:
    """The same audio under two names was counted 'already there 1' and nothing more: which file, a copy of
    which, was not said. The report names each copy and the path the track is catalogued under; a link to
    the catalogued file is that file, not a copy."""
    import json

    from test_library import loudness_analyzer

    from soundtrack.cli import main

    music = tmp_path / "music"
    (music / "old").mkdir(parents=True)
    sf.write(music / "theme.wav", tone([220.0], 2.0, sample_rate=8000, amplitude=0.3), 8000)
    (music / "old" / "theme (1).wav").write_bytes((music / "theme.wav").read_bytes())
    (music / "link.wav").symlink_to(music / "theme.wav")
    lib = Library(tmp_path / "lib.db", analyzer=loudness_analyzer)
    first = lib.add_folder(music, workers=0, progress=False)
    assert len(first.added) == 1 and first.existing == 2
    catalogued = lib.list()[0].path
    assert catalogued == str(music / "theme.wav")  # by link.wav, the first in name order: links are resolved
    said = [(Path(c.path).name, c.reason) for c in first.copies]
    assert said == [("theme (1).wav", f"holds the same audio as {catalogued}")]
    again = lib.add_folder(music, workers=0, progress=False)
    assert [(Path(c.path).name, c.reason) for c in again.copies] == said
    assert main(["index", str(music), "--library", str(tmp_path / "lib.db"), "--no-progress"]) == 0
    copy = music / "old" / "theme (1).wav"
    assert f"  {copy} holds the same audio as {catalogued} (catalogued once)" in capsys.readouterr().out
    assert main(["index", str(music), "--library", str(tmp_path / "lib.db"), "--no-progress", "--json"]) == 0
    assert [c["path"] for c in json.loads(capsys.readouterr().out)["copies"]] == [str(copy)]
