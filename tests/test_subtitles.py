"""Subtitles: .srt/.vtt parsing with line-numbered errors, and the subtitle affect source."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from analysis.errors import MediaError
from analysis.sources import source_class
from analysis.sources.base import MediaStreams
from analysis.sources.subtitles import SubtitleSource
from analysis.text.captions import parse_subtitles, read_subtitles

DATA = Path(__file__).parent / "data"


def _media(duration: float, subtitles: Path | None) -> MediaStreams:
    return MediaStreams(
        path=Path("clip.mp4"), duration=duration, fps=25.0, frame_times=np.zeros(0),
        frames=np.zeros((0, 8, 8, 3), np.uint8), audio=None, sample_rate=16000, subtitles=subtitles,
    )


@pytest.mark.parametrize("name", ["joy_then_grim.srt", "joy_then_grim.vtt"])
def test_both_formats_give_the_same_cues(name: str) -> None:
    subs = read_subtitles(DATA / name)
    assert [(c.start, c.end) for c in subs.cues] == [(0.5, 3.5), (6.0, 9.0)]
    assert subs.cues[0].text == "What a glorious morning! I'm so happy to see you all, this is wonderful."
    assert subs.cues[1].text == "He is dead. They killed him, and nothing is left but grief."  # tags stripped
    assert subs.end == 9.0


@pytest.mark.parametrize("name", ["joy_then_grim.srt", "joy_then_grim.vtt"])
def test_valence_moves_from_positive_to_negative_at_the_cue_times(name: str) -> None:
    arc = source_class("subtitles")().analyze(_media(10.0, DATA / name), hop=0.5)
    assert arc.name == "subtitles"
    t = arc.times
    first = (t > 0.5) & (t < 3.5)
    gap = (t > 3.75) & (t < 5.75)
    second = (t > 6.0) & (t < 9.0)
    assert np.all(arc.valence[first] > 0.3)
    assert np.all(arc.valence[second] < -0.3)
    assert np.all(arc.confidence[first] > 0.2) and np.all(arc.confidence[second] > 0.2)
    assert np.all(arc.confidence[gap] == 0.0)  # nothing said: no reading, not a fake neutral
    # The sign changes between the end of the joyful cue and the start of the grim one.
    said = arc.confidence > 0
    signs = np.sign(arc.valence[said])
    flip = t[said][np.flatnonzero(np.diff(signs) != 0)[0] + 1]
    assert 3.5 < flip <= 6.25
    assert arc.emotions["joy"][first].mean() > arc.emotions["joy"][second].mean()
    assert arc.emotions["sadness"][second].mean() > arc.emotions["sadness"][first].mean()


def test_no_subtitle_file_gives_zero_confidence() -> None:
    arc = SubtitleSource().analyze(_media(4.0, None), hop=1.0)
    assert arc.times.tolist() == [0.5, 1.5, 2.5, 3.5]
    assert np.all(arc.confidence == 0.0)


SRT_BAD_TIME = "1\n00:00:01,000 --> 00:00:02,000\nHello.\n\n2\n00:00:0x,000 --> 00:00:04,000\nBye.\n"
SRT_NO_TIMING = "1\n00:00:01,000 --> 00:00:02,000\nHello.\n\n2\nBye without timing.\n"
SRT_BACKWARDS = "1\n00:00:05,000 --> 00:00:02,000\nHello.\n"
VTT_NO_HEADER = "00:01.000 --> 00:02.000\nHello.\n"
VTT_BAD_MINUTES = "WEBVTT\n\n00:01.000 --> 00:02.000\nHi.\n\n00:75.000 --> 00:76.000\nHo.\n"


@pytest.mark.parametrize(
    ("suffix", "text", "line", "phrase"),
    [
        (".srt", SRT_BAD_TIME, 6, "malformed"),
        (".srt", SRT_NO_TIMING, 6, "expected a timing line"),
        (".srt", SRT_BACKWARDS, 2, "ends before it starts"),
        (".vtt", VTT_NO_HEADER, 1, "WEBVTT"),
        (".vtt", VTT_BAD_MINUTES, 6, "below 60"),
    ],
)
def test_malformed_files_name_the_file_and_line(tmp_path: Path, suffix: str, text: str, line: int, phrase: str) -> None:
    path = tmp_path / f"bad{suffix}"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(MediaError) as info:
        read_subtitles(path)
    msg = str(info.value)
    assert msg.startswith(f"{path}: line {line}:"), msg
    assert phrase in msg


def test_unusable_files(tmp_path: Path) -> None:
    with pytest.raises(MediaError, match="not found"):
        read_subtitles(tmp_path / "missing.srt")
    (tmp_path / "empty.srt").write_bytes(b"")
    with pytest.raises(MediaError, match="empty"):
        read_subtitles(tmp_path / "empty.srt")
    (tmp_path / "x.ass").write_text("[Script Info]\n")
    with pytest.raises(MediaError, match="could not be read as ASS/SSA subtitles"):
        read_subtitles(tmp_path / "x.ass")
    (tmp_path / "x.sbv").write_text("0:00:01.000,0:00:02.000\nHi\n")
    with pytest.raises(MediaError, match=r"unknown subtitle format '\.sbv'"):
        read_subtitles(tmp_path / "x.sbv")
    with (tmp_path / "huge.srt").open("wb") as f:  # sparse: no 50 MB written
        f.truncate(50 * 2**20)
    with pytest.raises(MediaError, match=r"huge.srt: is 50 MB, larger than the 20 MB a subtitle file may be"):
        read_subtitles(tmp_path / "huge.srt")
    (tmp_path / "bin.srt").write_bytes(b"\x00\x01\x02")
    with pytest.raises(MediaError, match="not a text file"):
        read_subtitles(tmp_path / "bin.srt")


def test_windows_crlf_and_cp1252_are_read(tmp_path: Path) -> None:
    path = tmp_path / "win.srt"
    path.write_bytes("1\r\n00:00:01,000 --> 00:00:02,500\r\nCaf\u00e9 au lait.\r\n".encode("cp1252"))
    subs = read_subtitles(path)
    assert subs.cues[0].text == "Caf\u00e9 au lait." and subs.cues[0].end == 2.5


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be"])
def test_utf16_with_its_mark_is_read(tmp_path: Path, encoding: str) -> None:
    """Windows Notepad saves "Unicode" as UTF-16 with a byte-order mark: text, though full of NUL bytes."""
    import codecs

    mark = {"utf-16": b"", "utf-16-le": codecs.BOM_UTF16_LE, "utf-16-be": codecs.BOM_UTF16_BE}[encoding]
    path = tmp_path / "notepad.srt"
    path.write_bytes(mark + "1\r\n00:00:01,000 --> 00:00:02,500\r\n\u00c7a va tr\u00e8s bien.\r\n".encode(encoding))
    subs = read_subtitles(path)
    assert subs.cues[0].text == "\u00c7a va tr\u00e8s bien." and subs.cues[0].end == 2.5


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be"])
def test_utf16_without_its_mark_is_read(tmp_path: Path, encoding: str) -> None:
    """Some converters write UTF-16 without a byte-order mark: it was refused as 'not a text file'."""
    path = tmp_path / "converted.srt"
    path.write_bytes("1\r\n00:00:01,000 --> 00:00:02,500\r\n\u00c7a va tr\u00e8s bien.\r\n".encode(encoding))
    subs = read_subtitles(path)
    assert subs.cues[0].text == "\u00c7a va tr\u00e8s bien." and subs.cues[0].end == 2.5
    (tmp_path / "bin.srt").write_bytes(bytes(range(256)) * 8)  # NUL bytes, but not UTF-16 text
    with pytest.raises(MediaError, match="not a text file"):
        read_subtitles(tmp_path / "bin.srt")


def test_parse_from_text_with_hours() -> None:
    subs = parse_subtitles("WEBVTT\n\n01:02:03.5 --> 01:02:04.250\nHi\n", kind="vtt")
    assert subs.cues[0].start == pytest.approx(3723.5) and subs.cues[0].end == pytest.approx(3724.25)


def test_analyze_video_takes_subtitles_and_reports_their_arc(tmp_path: Path) -> None:
    """Through the public API: the fused arc is higher during the joyful cue than the grim one."""
    from mediagen import Shot, make_clip

    import analysis

    clip = make_clip(tmp_path / "grey.mp4", shots=[Shot(100)], fps=10)  # 10 s of a still grey picture
    result = analysis.analyze_video(clip, sources=("visual",), subtitles=DATA / "joy_then_grim.srt")
    assert set(result.source_arcs) == {"visual", "subtitles"}
    t = result.arc.times
    joyful = result.arc.valence[(t > 1.0) & (t < 3.0)].mean()
    grim = result.arc.valence[(t > 6.5) & (t < 8.5)].mean()
    assert joyful > grim + 0.3
    assert result.to_dict()["sources"]["subtitles"]["confidence"][1] > 0


@pytest.mark.parametrize("name", ["faces", "speech", "subtitles"])
def test_people_sources_with_nothing_to_read_are_silent(name: str) -> None:
    """No frames, no audio, no subtitle file: the grid is right and every confidence is 0."""
    from analysis.sources import AffectSource

    source = source_class(name)()
    assert isinstance(source, AffectSource) and source.name == name
    arc = source.analyze(_media(3.2, None), hop=0.5)
    assert arc.name == name
    assert arc.times.tolist() == [0.25, 0.75, 1.25, 1.75, 2.25, 2.75, 3.25]
    for a in (arc.valence, arc.arousal, arc.confidence):
        assert a.shape == arc.times.shape and np.all(np.isfinite(a))
    assert np.all(arc.confidence == 0.0)


def test_sidecar_subtitles_are_found_as_players_find_them(tmp_path: Path) -> None:
    from analysis.text.sidecar import sidecar_subtitles

    clip = tmp_path / "trip [final].mp4"  # glob characters in the name are taken literally
    clip.write_bytes(b"")
    assert sidecar_subtitles(clip) is None
    (tmp_path / "trip [other].srt").write_text("")  # another clip's
    (tmp_path / "trip [final].mp4.txt").write_text("")
    assert sidecar_subtitles(clip) is None
    (tmp_path / "trip [final].fr.vtt").write_text("")
    (tmp_path / "trip [final].en.srt").write_text("")
    assert sidecar_subtitles(clip) == tmp_path / "trip [final].en.srt"  # language-tagged: the first by name
    (tmp_path / "trip [final].VTT").write_text("")
    assert sidecar_subtitles(clip) == tmp_path / "trip [final].VTT"  # the clip's own name first
    (tmp_path / "trip [final].srt").write_text("")
    assert sidecar_subtitles(clip) == tmp_path / "trip [final].srt"


def test_analyze_video_reads_the_subtitles_beside_the_clip(tmp_path: Path) -> None:
    """By default the subtitles source reads ``clip.srt``; ``subtitles=None`` reads none; a sidecar that
    does not parse is left out with a warning (nobody named it); a source list without subtitles ignores it."""
    import shutil

    from mediagen import Shot, make_clip

    import analysis

    clip = make_clip(tmp_path / "grey.mp4", shots=[Shot(100)], fps=10)
    alone = analysis.analyze_video(clip, sources=("visual", "subtitles"))
    assert alone.subtitles is None
    assert alone.sources_off["subtitles"] == "no readable subtitles given or beside the clip"

    shutil.copyfile(DATA / "joy_then_grim.srt", tmp_path / "grey.srt")
    found = analysis.analyze_video(clip, sources=("visual", "subtitles"))
    assert found.subtitles == str(tmp_path / "grey.srt") and "subtitles" in found.sources_used
    t = found.arc.times
    assert found.arc.valence[(t > 1.0) & (t < 3.0)].mean() > found.arc.valence[(t > 6.5) & (t < 8.5)].mean() + 0.3
    assert found.to_dict()["subtitles"] == str(tmp_path / "grey.srt")
    assert "subtitles" not in analysis.analyze_video(clip, sources=("visual", "subtitles"), subtitles=None).source_arcs
    assert "subtitles" not in analysis.analyze_video(clip, sources=("visual",)).source_arcs

    (tmp_path / "grey.srt").write_text("garbage\nnot a cue\n")
    broken = analysis.analyze_video(clip, sources=("visual", "subtitles"))
    assert broken.subtitles is None and "subtitles" not in broken.source_arcs
    assert any("subtitles beside the clip were left out" in w and "line 1" in w for w in broken.warnings)
    with pytest.raises(MediaError, match="line 1"):  # named, the same file is an error
        analysis.analyze_video(clip, sources=("visual",), subtitles=tmp_path / "grey.srt")


@pytest.mark.parametrize(("suffix", "codec"), [(".mkv", "srt"), (".mp4", "mov_text")])
def test_analyze_video_reads_the_clips_own_subtitle_track(tmp_path: Path, suffix: str, codec: str) -> None:
    """Without a file beside it, the clip's own text subtitle track is read (piped through FFmpeg, nothing
    written); a file beside the clip comes first, as players take it."""
    import shutil
    import subprocess

    from mediagen import Shot, make_clip

    import analysis

    grey = make_clip(tmp_path / "grey.mp4", shots=[Shot(100)], fps=10)
    late = tmp_path / "late.srt"  # a last cue 30 s after the 10 s picture ends, as credits can
    late.write_text((DATA / "joy_then_grim.srt").read_text() + "\n3\n00:00:40,000 --> 00:00:41,000\nThe end.\n")
    clip = tmp_path / f"subbed{suffix}"
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", str(grey), "-i", str(late),
                    "-map", "0", "-map", "1", "-c", "copy", "-c:s", codec, str(clip)], check=True)
    late.unlink()
    result = analysis.analyze_video(clip, sources=("visual", "subtitles"))
    assert result.subtitles == f"{clip.name} (subtitle track 1, {codec})"
    # The clip lasts as long as its picture: Matroska's own duration runs to the last cue (41 s).
    assert result.duration == pytest.approx(10.0, abs=0.1) and not result.warnings
    t = result.arc.times
    assert result.arc.valence[(t > 1.0) & (t < 3.0)].mean() > result.arc.valence[(t > 6.5) & (t < 8.5)].mean() + 0.3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["grey.mp4", clip.name]  # nothing written beside it

    shutil.copyfile(DATA / "joy_then_grim.vtt", tmp_path / "subbed.vtt")
    assert analysis.analyze_video(clip, sources=("visual", "subtitles")).subtitles == str(tmp_path / "subbed.vtt")
    assert analysis.analyze_video(clip, sources=("visual", "subtitles"), subtitles=None).subtitles is None


def test_an_ass_file_beside_the_clip_is_read_through_ffmpeg(tmp_path: Path) -> None:
    """ASS/SSA (what Aegisub and fansubs write) beside the clip: FFmpeg turns it into SubRip text."""
    import subprocess

    from mediagen import Shot, make_clip

    import analysis

    clip = make_clip(tmp_path / "anime.mp4", shots=[Shot(100)], fps=10)
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", str(DATA / "joy_then_grim.srt"),
                    str(tmp_path / "anime.ja.ass")], check=True)
    result = analysis.analyze_video(clip, sources=("visual", "subtitles"))
    assert result.subtitles == str(tmp_path / "anime.ja.ass") and "subtitles" in result.sources_used
    t = result.arc.times
    assert result.arc.valence[(t > 1.0) & (t < 3.0)].mean() > result.arc.valence[(t > 6.5) & (t < 8.5)].mean() + 0.3
    (tmp_path / "anime.ja.ass").write_text("not a subtitle file at all")
    broken = analysis.analyze_video(clip, sources=("visual", "subtitles"))
    assert broken.subtitles is None
    assert any("beside the clip were left out" in w and "anime.ja.ass" in w for w in broken.warnings)


def test_cues_without_blank_lines_between_them_stay_apart(tmp_path: Path) -> None:
    """Hand-edited SRT often loses the blank line between cues: each timing line still starts a cue."""
    path = tmp_path / "edited.srt"
    path.write_text("1\n00:00:01,000 --> 00:00:03,000\nWhat a lovely day!\n2\n00:00:04,000 --> 00:00:06,000\n"
                    "This is awful.\n00:00:07,000 --> 00:00:08,000\nBye\n")
    subs = read_subtitles(path)
    assert [(c.start, c.end, c.text, c.line) for c in subs.cues] == [
        (1.0, 3.0, "What a lovely day!", 2), (4.0, 6.0, "This is awful.", 5), (7.0, 8.0, "Bye", 7)]


def test_subtitles_in_another_language_are_left_out_with_a_reason(tmp_path: Path) -> None:
    """The emotion reading reads English: German cues read as noise with full confidence (a joyful line
    as unpleasant), so a file in another language is switched off and says why; English still reads."""
    german = tmp_path / "film.de.srt"
    german.write_text("1\n00:00:00,500 --> 00:00:03,500\nWas für ein herrlicher Morgen! Ich bin so glücklich, "
                      "euch alle zu sehen, das ist wunderbar.\n\n2\n00:00:06,000 --> 00:00:09,000\n"
                      "Er ist tot. Alles ist verloren, und ich bin allein in der Dunkelheit.\n")
    arc = SubtitleSource().analyze(_media(10.0, german), hop=0.5)
    assert np.all(arc.confidence == 0.0)
    assert arc.switched_off is not None and arc.switched_off.startswith("not in English")
    english = SubtitleSource().analyze(_media(10.0, DATA / "joy_then_grim.srt"), hop=0.5)
    assert english.switched_off is None and english.confidence.max() > 0


def test_an_ass_file_given_by_name_is_read_in_any_encoding(tmp_path: Path) -> None:
    """`subtitles="film.ass"` (and `--subtitles film.ass`) reads it, as one found beside the clip is read;
    a Latin-1 file keeps its accented lines (FFmpeg alone drops every line that is not UTF-8)."""
    import subprocess

    from mediagen import Shot, make_clip

    import analysis

    ass = tmp_path / "film.ass"
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", str(DATA / "joy_then_grim.srt"), str(ass)], check=True)
    subs = read_subtitles(ass)
    assert [(c.start, c.end) for c in subs.cues] == [(0.5, 3.5), (6.0, 9.0)]
    ass.write_bytes(ass.read_bytes().replace(b"What a glorious", "Caf\u00e9! What a glorious".encode("latin-1")))
    assert read_subtitles(ass).cues[0].text.startswith("Caf\u00e9! What a glorious")
    clip = make_clip(tmp_path / "grey.mp4", shots=[Shot(100)], fps=10)
    result = analysis.analyze_video(clip, sources=("visual",), subtitles=ass)
    assert result.subtitles == str(ass) and "subtitles" in result.sources_used
    t = result.arc.times
    assert result.arc.valence[(t > 1.0) & (t < 3.0)].mean() > result.arc.valence[(t > 6.5) & (t < 8.5)].mean() + 0.3


def test_subtitles_that_miss_the_clip_say_why_they_were_not_read(tmp_path: Path) -> None:
    """Cues timed from a 01:00:00 timecode, or a whole film's subtitles beside an excerpt, all start after
    the clip ends; a file of empty cues holds nothing to read. Each says so in words, not 'no evidence'."""
    late = tmp_path / "late.srt"
    late.write_text("1\n01:00:01,000 --> 01:00:03,000\nI am so happy today.\n\n"
                    "2\n01:00:04,000 --> 01:00:06,000\nThis is terrible.\n")
    arc = SubtitleSource().analyze(_media(10.0, late), hop=0.5)
    assert np.all(arc.confidence == 0.0)
    assert arc.switched_off == ("every cue starts after the clip ends (the first at 1:00:01.0; the clip lasts 10.0 s): "
                                "are they the subtitles of this clip, timed from its start?")
    empty = tmp_path / "empty.srt"
    empty.write_text("1\n00:00:01,000 --> 00:00:03,000\n<i></i>\n")
    assert SubtitleSource().analyze(_media(10.0, empty), hop=0.5).switched_off == "the file holds no cue with text"


def test_a_webvtt_cue_right_under_its_header_is_read() -> None:
    """Hand-written and converted .vtt files often start a cue on the line after 'WEBVTT'; it was taken for
    header text and the file read as no cue at all."""
    subs = parse_subtitles("WEBVTT\n00:01.000 --> 00:03.000\nWhat a lovely day!\n\n00:04.000 --> 00:05.000\nBye\n",
                           kind="vtt")
    assert [(c.start, c.end, c.text, c.line) for c in subs.cues] == [(1.0, 3.0, "What a lovely day!", 2),
                                                                   (4.0, 5.0, "Bye", 5)]
    assert len(parse_subtitles("WEBVTT\nKind: captions\n\n00:01.000 --> 00:03.000\nHi\n", kind="vtt").cues) == 1


def test_sound_descriptions_and_music_notes_are_not_read_as_feelings(tmp_path: Path) -> None:
    """Subtitles for the hard of hearing: '♪ ♪', '[door slams]' and '...' say nothing of how anyone feels (they
    read unpleasant with full confidence); lyrics between notes and lines after a speaker's label still read."""
    path = tmp_path / "sdh.srt"
    path.write_text("1\n00:00:01,000 --> 00:00:03,000\n\u266a \u266a\n\n"
                    "2\n00:00:04,000 --> 00:00:06,000\n[door slams]\n\n"
                    "3\n00:00:07,000 --> 00:00:09,000\n...\n\n4\n00:00:10,000 --> 00:00:12,000\n"
                    "\u266a What a wonderful day, I am so happy \u266a\n\n"
                    "5\n00:00:13,000 --> 00:00:15,000\nJOHN: My dog died. I am so sad and lonely.\n")
    arc = SubtitleSource().analyze(_media(16.0, path), hop=0.5)
    t = arc.times
    assert np.all(arc.confidence[t < 9.5] == 0.0)
    happy, sad = (t > 10.5) & (t < 11.5), (t > 13.5) & (t < 14.5)
    assert arc.confidence[happy].min() > 0.5 and arc.valence[happy].mean() > 0.5
    assert arc.confidence[sad].min() > 0.5 and arc.valence[sad].mean() < -0.3


@pytest.mark.parametrize(("data", "phrase"), [
    (b"<!DOCTYPE html>\n<html><body>Too many requests</body></html>\n", "is a web page"),
    (b"{\\rtf1\\ansi\\deff0\n1\\par\n00:00:01,000 --> 00:00:02,000\\par\nHello\\par\n}\n", "rich-text (RTF)"),
    (bytes(range(1, 256)) * 16, "is not a text file"),  # binary data without a NUL byte
])
def test_files_that_are_not_subtitles_say_what_they_are(tmp_path: Path, data: bytes, phrase: str) -> None:
    """A web page saved in place of the download, a WordPad document or binary data named .srt: before, each
    was answered 'line 1: expected a cue number or a timing line, received ...' with the file's first bytes."""
    path = tmp_path / "film.srt"
    path.write_bytes(data)
    with pytest.raises(MediaError, match=re.escape(phrase)) as info:
        read_subtitles(path)
    assert "line 1" not in str(info.value)
