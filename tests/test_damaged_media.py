"""Damaged real files through ``analysis.analyze_video``: bad packets are skipped and counted, the rest analysed.

Each file is a generated clip damaged the way files get damaged: payload bytes of one
packet overwritten in place (container framing intact), a fast-start mp4 cut short, an
image renamed ``.mp4``, a Matroska header whose duration lies or is missing. Packet
positions come from PyAV's demuxer, so the damage lands inside the stream it aims at.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from mediagen import Shot, make_clip

import analysis
import analysis.media.decode as decode_mod
from analysis.errors import MediaError, ParameterError
from analysis.media.decode import decode_audio, decode_report
from analysis.media.probe import probe

SHOTS = [Shot(50, (200, 60, 50), motion=0.5), Shot(50, (40, 90, 180), motion=0.3)]  # 4.0 s at 25 fps, cut at 2 s
SOURCES = ("visual", "audio")


def _packets(path: Path, kind: str) -> list[tuple[int, int]]:
    """(byte position, size) of every non-empty ``kind`` packet, in file order."""
    with av.open(str(path)) as container:
        return [(p.pos, p.size) for p in container.demux() if p.size and p.stream.type == kind and p.pos is not None]


def _overwrite(src: Path, dst: Path, packets: list[tuple[int, int]]) -> Path:
    """Copy ``src`` with the payload of ``packets`` overwritten by a fixed byte pattern."""
    data = bytearray(src.read_bytes())
    for pos, size in packets:
        n = size - 12
        data[pos + 8 : pos + 8 + n] = bytes((i * 37 + 11) % 256 for i in range(n))
    dst.write_bytes(bytes(data))
    return dst


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("damaged")
    return {  # h264 + aac in Matroska; MPEG-4 Part 2 + mp3, the usual AVI
        ".mkv": make_clip(folder / "full.mkv", shots=SHOTS, audio="drone"),
        ".avi": make_clip(folder / "full.avi", shots=SHOTS, audio="drone", codec="mpeg4"),
    }


@pytest.mark.parametrize("kind", ["video", "audio"])
def test_one_damaged_packet_in_mkv_is_skipped_and_counted(clips, tmp_path: Path, kind: str) -> None:
    full = clips[".mkv"]
    packets = _packets(full, kind)
    # a quarter in: inside the first shot, so the keyframe of the cut at 2 s is intact
    damaged = _overwrite(full, tmp_path / f"damaged-{kind}.mkv", [packets[len(packets) // 4]])
    decoded = decode_report(damaged)
    assert dict(decoded.skipped_packets) == {kind: 1}
    assert any(f"skipped 1 {kind} packet" in w for w in decoded.warnings)
    # The audio decoded on its own first, then the video: the same samples, counts and wording, once.
    track = decode_audio(damaged)
    assert track.skipped_packets == (kind == "audio")
    split = decode_report(damaged, audio=track)
    np.testing.assert_array_equal(split.media.audio, decoded.media.audio)
    assert split.warnings == decoded.warnings and split.skipped_packets == decoded.skipped_packets
    assert sum("did not decode" in w for w in split.warnings) == 1
    clip = analysis.analyze_video(damaged, sources=SOURCES)
    assert clip.duration == pytest.approx(4.0, abs=0.1)  # the arc covers the rest of the clip
    assert clip.arc.times[-1] > 3.0 and clip.has_audio
    assert any("did not decode" in w for w in clip.warnings)
    assert clip.cuts and clip.cuts[0] == pytest.approx(2.0, abs=0.1)


@pytest.mark.parametrize("kind", ["video", "audio"])
def test_damaged_packets_in_avi_leave_a_whole_arc(clips, tmp_path: Path, kind: str) -> None:
    full = clips[".avi"]
    packets = _packets(full, kind)
    middle = len(packets) // 2
    damaged = _overwrite(full, tmp_path / f"damaged-{kind}.avi", packets[middle : middle + 3])
    decoded = decode_report(damaged)
    if kind == "video":  # the MPEG-4 decoder rejects the first damaged frame and conceals the next two
        assert dict(decoded.skipped_packets) == {"video": 1} and decoded.frame_count == 99
    else:  # the mp3 decoder conceals damage: nothing to skip, and no sample lost
        assert decoded.skipped_packets == () and decoded.media.audio.size / 22050 == pytest.approx(4.05, abs=0.05)
    clip = analysis.analyze_video(damaged, sources=SOURCES)
    assert clip.duration == pytest.approx(4.0, abs=0.1)
    assert clip.has_audio and len(clip.arc) >= 7


def test_a_garbled_stretch_stops_the_video_pass_where_one_pass_stops(clips, tmp_path: Path, monkeypatch) -> None:
    """Video and audio packets garbled together for longer than the decoder puts up with: one pass
    stops there and reads no audio past it, and so does the video pass handed the audio decoded first."""
    monkeypatch.setattr(decode_mod, "MAX_BAD_PACKETS", 20)
    full = clips[".mkv"]
    video, audio = _packets(full, "video"), _packets(full, "audio")
    damaged = _overwrite(full, tmp_path / "garbled.mkv", video[40:70] + audio[60:110])
    one = decode_report(damaged)
    assert "stopped after 21 undecodable packets in a row" in one.warnings
    track = decode_audio(damaged)
    assert track.samples.size > one.media.audio.size  # the audio pass alone read on past the garbled stretch
    split = decode_report(damaged, audio=track)
    np.testing.assert_array_equal(split.media.audio, one.media.audio)
    assert split.warnings == one.warnings and split.skipped_packets == one.skipped_packets
    assert split.media.duration == one.media.duration


def test_no_decodable_video_is_one_media_error(clips, tmp_path: Path) -> None:
    full = clips[".mkv"]
    damaged = _overwrite(full, tmp_path / "no-video.mkv", _packets(full, "video"))
    with pytest.raises(MediaError, match="no decodable video frames") as err:
        analysis.analyze_video(damaged, sources=SOURCES)
    assert "no-video.mkv" in str(err.value)


def test_fast_start_mp4_cut_short_gives_the_part_before_the_cut(tmp_path: Path) -> None:
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        pytest.skip("ffmpeg is not installed")
    plain = make_clip(tmp_path / "plain.mp4", shots=SHOTS, audio="drone")
    fast = tmp_path / "fast.mp4"
    cmd = [ffmpeg, "-nostdin", "-v", "error", "-i", str(plain.resolve()), "-c", "copy", "-movflags", "+faststart",
           str(fast.resolve())]
    subprocess.run(cmd, check=True)
    data = fast.read_bytes()
    assert data.find(b"moov") < data.find(b"mdat")  # the index sits before the media: a cut file still opens
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: int(len(data) * 0.6)])
    clip = analysis.analyze_video(cut, sources=SOURCES)
    assert 1.5 < clip.duration < 3.5
    assert any("truncated" in w for w in clip.warnings)


def test_sound_that_runs_past_the_picture_is_not_called_truncated(tmp_path: Path) -> None:
    """The container announces its longest stream; a clip whose sound outlasts its picture is whole."""
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        pytest.skip("ffmpeg is not installed")
    clip = tmp_path / "long-sound.mp4"
    cmd = [ffmpeg, "-nostdin", "-v", "error", "-f", "lavfi", "-i", "testsrc=size=160x120:rate=15:duration=4",
           "-f", "lavfi", "-i", "sine=f=440:duration=8", "-c:v", "libx264", "-pix_fmt", "yuv420p", str(clip)]
    subprocess.run(cmd, check=True)
    assert probe(clip).duration > 7.5
    result = analysis.analyze_video(clip, sources=SOURCES)
    assert result.duration == pytest.approx(4.0, abs=0.1)
    assert not any("truncated" in w for w in result.warnings), result.warnings


def test_image_renamed_mp4_is_refused(tmp_path: Path) -> None:
    png = tmp_path / "still.png"
    cv2.imwrite(str(png), np.full((90, 160, 3), 128, np.uint8))
    fake = tmp_path / "still.mp4"
    fake.write_bytes(png.read_bytes())
    with pytest.raises(MediaError, match="no video stream with more than one frame") as err:
        analysis.analyze_video(fake, sources=SOURCES)
    assert "still.mp4" in str(err.value)


def _patch_mkv_duration(src: Path, dst: Path, seconds: float | None) -> Path:
    """Copy ``src`` with its Segment Duration set to ``seconds``, or blanked to a Void element (None)."""
    data = bytearray(src.read_bytes())
    at = data.find(b"\x44\x89\x88")  # Duration, an 8-byte float in timecode units (ms)
    assert at > 0, "no 8-byte Duration element in the Matroska header"
    if seconds is None:
        data[at : at + 11] = b"\xec\x89" + bytes(9)  # Void element of the same size
    else:
        data[at + 3 : at + 11] = struct.pack(">d", seconds * 1000.0)
    dst.write_bytes(bytes(data))
    return dst


@pytest.mark.parametrize("header", [1.0, None], ids=["header-says-1s", "no-duration"])
def test_max_duration_stops_decoding_whatever_the_header_says(clips, tmp_path: Path, header: float | None) -> None:
    patched = _patch_mkv_duration(clips[".mkv"], tmp_path / "patched.mkv", header)
    assert probe(patched).duration == (header or 0.0)  # the header really says so
    with pytest.raises(MediaError, match="longer than the 2 s limit") as err:
        analysis.analyze_video(patched, sources=SOURCES, max_duration=2.0)
    assert "decoding stopped at 2.0" in str(err.value)
    clip = analysis.analyze_video(patched, sources=SOURCES, max_duration=10.0)
    assert clip.duration == pytest.approx(4.0, abs=0.1)


def test_max_duration_refuses_a_long_header_before_decoding(clips) -> None:
    seen: list[int] = []
    with pytest.raises(MediaError, match=r"lasts 4\.0 s; the limit is 3 s"):
        decode_report(clips[".mkv"], max_duration=3, frame_sink=lambda i, t, img: seen.append(i))
    assert seen == []


@pytest.mark.parametrize("bad", [0, -1.0, float("nan"), "10", True])
def test_max_duration_must_be_positive(clips, bad) -> None:
    with pytest.raises(ParameterError, match="max_duration"):
        decode_report(clips[".mkv"], max_duration=bad)


def test_a_batch_says_which_clips_had_damage_skipped(clips, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A batch went on past a damaged packet, as it should, but said so only in its manifest: its summary read
    "2 clip(s) analysed (2 ok, ...)" and a studio never heard that one clip's audio had a gap."""
    from soundtrack.cli import main

    folder = tmp_path / "clips"
    folder.mkdir()
    shutil.copy(clips[".mkv"], folder / "good.mkv")
    packets = _packets(clips[".mkv"], "audio")
    damaged = _overwrite(clips[".mkv"], folder / "damaged.mkv", [packets[len(packets) // 4]])
    rc = main(["batch", str(folder), "--out", str(tmp_path / "out"), "--analyze-only", "--workers", "0",
               "--no-progress"])
    out, err = capsys.readouterr()
    assert rc == 0 and "2 clip(s) analysed (2 ok, 0 with errors)" in out
    warned = [line for line in err.splitlines() if "warning:" in line]
    assert warned and all(str(damaged) in line for line in warned), err
    assert any("skipped 1 audio packet" in line for line in warned), err


def test_match_says_what_damage_it_skipped(clips, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`soundtrack match` ranked a damaged clip without a word of the skipped packet (analyze and score said it)."""
    from test_app import build_small_library

    from soundtrack.cli import main

    library = build_small_library(tmp_path / "library").url
    packets = _packets(clips[".mkv"], "video")
    damaged = _overwrite(clips[".mkv"], tmp_path / "damaged.mkv", [packets[len(packets) // 4]])
    assert main(["match", str(damaged), "--library", library, "--sources", "visual,audio"]) == 0
    err = capsys.readouterr().err
    assert "soundtrack match: warning:" in err and "skipped 1 video packet" in err, err
