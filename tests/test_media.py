"""Decoding: container/codec combinations, sampling, audio, and every kind of bad input."""

from __future__ import annotations

import warnings
from pathlib import Path

import av
import numpy as np
import pytest
from mediagen import Shot, corrupt_copy, drone, held_copy, make_audio_file, make_clip, video_packets

from analysis.errors import MediaError, ParameterError
from analysis.media.decode import MediaWarning, decode, decode_audio, decode_report
from analysis.media.probe import probe

SHOTS = [Shot(20, (200, 60, 50), motion=0.5), Shot(20, (40, 90, 180), motion=0.2)]

# (suffix, video codec, audio codec): every container, video and audio codec the issue names.
COMBOS = [
    (".mp4", "h264", "aac"),
    (".mov", "hevc", "aac"),
    (".avi", "mpeg4", "mp3"),
    (".mkv", "h264", "ac3"),
    (".mkv", "hevc", "opus"),
    (".webm", "vp9", "opus"),
    (".mp4", "mpeg4", "mp3"),
]


def _has_encoder(name: str) -> bool:
    try:
        av.codec.Codec(name, "w")
    except Exception:
        return False
    return True


@pytest.mark.parametrize(("suffix", "vcodec", "acodec"), COMBOS, ids=["-".join(c).lstrip(".") for c in COMBOS])
def test_decodes_container_codec_combo(tmp_path: Path, suffix: str, vcodec: str, acodec: str) -> None:
    from mediagen import AUDIO_ENCODERS, VIDEO_ENCODERS

    for enc in (VIDEO_ENCODERS[vcodec], AUDIO_ENCODERS[acodec]):
        if not _has_encoder(enc):
            pytest.skip(f"this FFmpeg build has no {enc} encoder")
    path = make_clip(tmp_path / f"clip{suffix}", shots=SHOTS, codec=vcodec, audio="drone", audio_codec=acodec)
    info = probe(path)
    assert (info.width, info.height) == (320, 180)
    assert info.fps == pytest.approx(25, abs=0.1)
    seen: list[int] = []
    res = decode_report(path, sample_fps=5, width=160, frame_sink=lambda i, t, img: seen.append(i))
    media = res.media
    assert res.frame_count == 40 and seen == list(range(40))  # every frame went to the sink
    assert media.duration == pytest.approx(1.6, abs=0.05)
    assert media.frames.shape[1:] == (90, 160, 3)
    assert media.frames.shape[0] == pytest.approx(8, abs=1)  # 1.6 s at 5 fps
    assert np.all(np.diff(media.frame_times) > 0.15)
    assert media.audio is not None and media.audio.dtype == np.float32 and media.sample_rate == 22050
    assert media.audio.size / 22050 == pytest.approx(1.6, abs=0.1)
    # the first shot is red, the second blue: the sampled frames say so
    first, last = media.frames[0].reshape(-1, 3).mean(0), media.frames[-1].reshape(-1, 3).mean(0)
    assert first[0] > first[2] and last[2] > last[0]
    # The audio alone, then the video alone: the same samples, frames and clip end as one pass.
    track = decode_audio(path)
    np.testing.assert_array_equal(track.samples, media.audio)
    assert track.video_end == media.duration and track.warnings == ()
    split = decode_report(path, sample_fps=5, width=160, audio=track)
    assert split.media.audio is track.samples and split.media.duration == media.duration
    np.testing.assert_array_equal(split.media.frames, media.frames)
    assert split.warnings == res.warnings and split.frame_count == 40


def test_no_audio_stream_gives_none(silent_clip) -> None:
    media = decode(silent_clip.path)
    assert media.audio is None
    assert media.frames.shape[0] > 0


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("missing", "file not found"),
        ("directory", "is not a file"),
        ("empty_bytes", "empty"),
        ("text", "not a readable video"),
        ("random", "not a readable video"),
        ("zero_length", "no streams"),
        ("audio_only", "no video stream"),
        ("truncated_mp4", "not a readable video"),
        ("garbled", "not a readable video"),
    ],
)
def test_bad_input_raises_one_media_error(tmp_path: Path, four_shot_clip, case: str, message: str) -> None:
    p = tmp_path / f"{case}.mp4"
    if case == "directory":
        p.mkdir()
    elif case == "empty_bytes":
        p.write_bytes(b"")
    elif case == "text":
        p.write_text("this is not a video\n" * 50)
    elif case == "random":
        p.write_bytes(np.random.default_rng(0).integers(0, 256, 50_000, dtype=np.uint8).tobytes())
    elif case == "zero_length":
        make_clip(p, shots=[])
    elif case == "audio_only":
        p = make_audio_file(tmp_path / "sound.m4a", seconds=1.0)
    elif case == "truncated_mp4":  # mp4 index (moov) sits at the end: a cut-off file has none
        corrupt_copy(four_shot_clip.path, p, keep=0.5)
    elif case == "garbled":
        corrupt_copy(four_shot_clip.path, p, mode="garble")
    with pytest.raises(MediaError, match=message) as err:
        decode(p)
    assert str(p.name) in str(err.value)


def test_truncated_mkv_gives_partial_result_with_warning(tmp_path: Path) -> None:
    full = make_clip(tmp_path / "full.mkv", shots=[Shot(100, (100, 150, 200), motion=0.5)], audio="drone")
    cut = corrupt_copy(full, tmp_path / "cut.mkv", keep=0.5)
    res = decode_report(cut)
    assert 0.5 < res.media.duration < 3.5
    assert any("truncated" in w for w in res.warnings)
    split = decode_report(cut, audio=decode_audio(cut))  # the audio decoded first: the same partial read
    np.testing.assert_array_equal(split.media.audio, res.media.audio)
    assert split.warnings == res.warnings and split.media.duration == res.media.duration
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        decode(cut)
    assert any(issubclass(w.category, MediaWarning) for w in caught)


def test_absurd_resolution_refused_before_decoding(tmp_path: Path) -> None:
    # Encoding a truly absurd frame would itself take minutes; the check is the same
    # pixel-count test, so lower the limit instead.
    p = make_clip(tmp_path / "big.mp4", shots=[Shot(3, (10, 10, 10))], size=(640, 360))
    with pytest.raises(MediaError, match="640x360 is too large"):
        decode(p, max_pixels=320 * 180)


def test_bad_parameters() -> None:
    with pytest.raises(ParameterError, match="sample_fps"):
        decode_report("x.mp4", sample_fps=0)


def test_media_duration_reads_the_container(four_shot_clip, tmp_path: Path) -> None:
    from analysis.media.probe import media_duration

    assert media_duration(four_shot_clip.path) == pytest.approx(four_shot_clip.duration, abs=0.05)
    sound = make_audio_file(tmp_path / "sound.m4a", seconds=1.5)
    assert media_duration(sound) == pytest.approx(1.5, abs=0.05)  # any media file, not only video
    with pytest.raises(MediaError, match="file not found"):
        media_duration(tmp_path / "missing.mp4")


def test_mux_takes_file_names_that_start_with_a_dash(four_shot_clip, tmp_path: Path, monkeypatch) -> None:
    """Relative names like ``-y.mp4`` reach ffmpeg as absolute paths, never as options."""
    import shutil

    import soundfile

    from analysis.media.mux import mux
    from analysis.media.probe import media_duration

    monkeypatch.chdir(tmp_path)
    shutil.copyfile(four_shot_clip.path, tmp_path / "-i.mp4")
    tone = 0.2 * np.sin(2 * np.pi * 440 * np.arange(3 * 44100) / 44100)  # 3 s, shorter than the 6.8 s clip
    soundfile.write(tmp_path / "-y.wav", np.stack([tone, tone], 1), 44100)
    out = mux("-i.mp4", "-y.wav", "-out.mp4")
    assert out == Path("-out.mp4") and (tmp_path / "-out.mp4").is_file()
    assert media_duration(out) == pytest.approx(four_shot_clip.duration, abs=0.1)  # the clip's length by default
    with av.open("-out.mp4") as c:
        assert c.streams.audio[0].codec_context.name == "aac"
        assert c.streams.video[0].codec_context.name == "h264"
    assert video_packets("-out.mp4") == video_packets("-i.mp4")  # copied
    short = mux("-i.mp4", "-y.wav", "short.mp4", duration=2.0)
    assert media_duration(short) == pytest.approx(2.0, abs=0.1)
    with pytest.raises(MediaError, match="audio file not found"):
        mux("-i.mp4", "-missing.wav", "x.mp4")


@pytest.mark.parametrize(("name", "codec"), [("clip.webm", "vp8"), ("clip.mkv", "ffv1")])
def test_mux_reencodes_a_picture_that_mp4_cannot_hold(tmp_path: Path, name: str, codec: str) -> None:
    """VP8 WebM or FFV1 (as ProRes, WMV, GIF ...): FFmpeg's MP4 muxer refuses the codec, so the picture
    becomes H.264 4:2:0 with the same frames, instead of the job failing at its last step."""
    import soundfile

    from analysis.media.mux import mux

    shots = [Shot(25, (200, 60, 50)), Shot(25, (40, 90, 180))]
    clip = make_clip(tmp_path / name, shots=shots, codec=codec, size=(160, 90), audio="drone")
    soundfile.write(tmp_path / "music.wav", 0.1 * np.ones((2 * 44100, 2)), 44100)
    out = mux(clip, tmp_path / "music.wav", tmp_path / "out.mp4")
    with av.open(str(out)) as c:
        video = c.streams.video[0]
        assert (video.codec_context.name, video.codec_context.pix_fmt) == ("h264", "yuv420p")
        assert c.streams.audio[0].codec_context.name == "aac"
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video)]
    assert len(frames) == 50
    for i, shot in ((10, shots[0]), (40, shots[1])):  # each shot's colour, through two lossy encodes
        assert np.abs(frames[i].reshape(-1, 3).mean(0) - shot.color).max() < 12


def _top_boxes(path: Path) -> list[str]:
    """The names of an MP4/QuickTime file's top-level boxes, in file order."""
    import struct

    data, names, i = path.read_bytes(), [], 0
    while i + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[i : i + 8])
        size = struct.unpack(">Q", data[i + 8 : i + 16])[0] if size == 1 else size or len(data) - i
        names.append(kind.decode("latin-1"))
        i += size
    return names


@pytest.mark.parametrize("suffix", [".mp4", ".mov", ".m4v"])
def test_a_scored_clip_streams_on_the_web(tmp_path: Path, suffix: str) -> None:
    """The scored clip's index (moov) was written after its media (mdat), so a browser had to fetch the
    whole file before playing it; it comes first now."""
    import soundfile

    from analysis.media.mux import mux

    clip = make_clip(tmp_path / "clip.mp4", shots=[Shot(25, (90, 90, 90))], size=(160, 90), audio="drone")
    soundfile.write(tmp_path / "music.wav", 0.1 * np.ones((44100, 2)), 44100)
    boxes = _top_boxes(mux(clip, tmp_path / "music.wav", tmp_path / f"out{suffix}"))
    assert "moov" in boxes and "mdat" in boxes
    assert boxes.index("moov") < boxes.index("mdat"), boxes


def test_mux_copies_hevc_tagged_for_apple_players(tmp_path: Path) -> None:
    import soundfile

    from analysis.media.mux import mux

    clip = make_clip(tmp_path / "clip.mp4", shots=[Shot(10, (90, 90, 90))], codec="hevc", size=(160, 90))
    soundfile.write(tmp_path / "music.wav", np.zeros((44100, 2)), 44100)
    out = mux(clip, tmp_path / "music.wav", tmp_path / "out.mp4")
    with av.open(str(out)) as b:
        assert b.streams.video[0].codec_context.name == "hevc"
        assert b.streams.video[0].codec_tag == "hvc1"
    assert video_packets(out) == video_packets(clip)  # not re-encoded


def test_the_frame_store_grows_past_its_estimate_and_caps_what_it_reserves(monkeypatch) -> None:
    """Sampled frames go into one array sized from the announced duration: a clip that runs longer than
    announced grows it with every frame kept; an absurd announcement reserves at most MAX_RESERVE bytes."""
    from analysis.media import buffers

    store = buffers.GrowingRows(expected=2)
    frames = [np.full((4, 6, 3), i, np.uint8) for i in range(7)]
    for f in frames:
        store.append(f)
    out = store.array((4, 6, 3))
    assert len(store) == 7 and out.shape == (7, 4, 6, 3)
    assert [int(f[0, 0, 0]) for f in out] == list(range(7))
    assert buffers.GrowingRows(3).array((4, 6, 3)).shape == (0, 4, 6, 3)
    monkeypatch.setattr(buffers, "MAX_RESERVE", 10 * 72)  # ten frames of 4 x 6 x 3
    huge = buffers.GrowingRows(expected=10**12)  # a header that claims a millennium
    huge.append(frames[0])
    assert len(huge.buffer) == 10


@pytest.mark.parametrize(("offset", "onset"), [(3.0, 4.5), (-1.0, 0.5)])
def test_sound_is_placed_on_the_pictures_clock(tmp_path: Path, offset: float, onset: float) -> None:
    """An audio stream that starts after the picture (a camera's, an editor's export) was read from 0 s, so
    the arc and the speech stretches came early; one that starts before it keeps only what plays with it."""
    import subprocess

    import soundfile

    picture = make_clip(tmp_path / "picture.mp4", shots=[Shot(200, (90, 90, 90))])  # 8 s, no sound
    sr = 22050
    burst = np.zeros(int(3.0 * sr), np.float32)
    burst[int(1.5 * sr) : int(2.5 * sr)] = 0.3 * np.sin(2 * np.pi * 440 * np.arange(sr) / sr)  # 1.5-2.5 s
    soundfile.write(tmp_path / "burst.wav", burst, sr)
    clip = tmp_path / "offset.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(picture), "-itsoffset", str(offset), "-i",
                    str(tmp_path / "burst.wav"), "-map", "0:v", "-map", "1:a", "-c:v", "copy", "-c:a", "aac",
                    str(clip)], check=True)
    media = decode(clip)
    hop = media.sample_rate // 100
    loud = np.flatnonzero([np.abs(media.audio[i : i + hop]).max() > 0.05 for i in range(0, media.audio.size, hop)])
    assert loud[0] / 100 == pytest.approx(onset, abs=0.05)  # where a player sounds it
    assert (loud[-1] - loud[0]) / 100 == pytest.approx(1.0, abs=0.05)


def test_the_clips_picture_is_found_beside_a_cover_or_a_thumbnail_track(tmp_path: Path) -> None:
    """The first video stream was taken: a file whose first track is its cover art was refused as "a still
    image", and one whose first track is a small preview was analysed at the preview's size."""
    import subprocess

    import cv2

    from analysis.video import analyze_video

    shots = [Shot(50, (200, 60, 50)), Shot(50, (40, 90, 180))]
    main = make_clip(tmp_path / "main.mp4", shots=shots, size=(320, 180), audio="drone")
    thumb = make_clip(tmp_path / "thumb.mp4", shots=[Shot(100, (90, 90, 90))], size=(160, 90))
    cv2.imwrite(str(tmp_path / "cover.png"), np.full((180, 320, 3), 128, np.uint8))
    ff = ["ffmpeg", "-v", "error", "-y"]
    subprocess.run([*ff, "-i", str(tmp_path / "cover.png"), "-i", str(main), "-map", "0", "-map", "1",
                    "-c:v:0", "mjpeg", "-c:v:1", "copy", "-c:a", "copy", str(tmp_path / "cover_first.mkv")], check=True)
    subprocess.run([*ff, "-i", str(thumb), "-i", str(main), "-map", "0:v", "-map", "1:v", "-map", "1:a", "-c", "copy",
                    str(tmp_path / "preview_first.mp4")], check=True)
    for name in ("cover_first.mkv", "preview_first.mp4"):
        res = analyze_video(tmp_path / name, sources=["visual", "audio"], subtitles=None)
        assert (res.info.width, res.info.height) == (320, 180), name
        assert res.cuts == pytest.approx([2.0], abs=0.05), name
    import soundfile

    from analysis.media.mux import mux

    soundfile.write(tmp_path / "music.wav", np.zeros((4 * 44100, 2)), 44100)
    scored = mux(tmp_path / "preview_first.mp4", tmp_path / "music.wav", tmp_path / "scored.mp4")
    assert video_packets(scored) == video_packets(main)  # the scored clip carries the same picture


def _decoded_on_its_timeline(path: Path, sr: int = 8000) -> np.ndarray:
    """The first audio track of ``path`` as mono samples from the file's 0 s (as players place it)."""
    import subprocess

    cmd = ["ffmpeg", "-nostdin", "-v", "error", "-i", str(path), "-map", "0:a:0", "-af", "aresample=first_pts=0",
           "-ac", "1", "-ar", str(sr), "-f", "f32le", "-"]
    return np.frombuffer(subprocess.run(cmd, capture_output=True, check=True).stdout, dtype="<f4")


def _first_frame(path: Path) -> float:
    with av.open(str(path)) as c:
        return float(c.streams.video[0].start_time * c.streams.video[0].time_base)


def _onsets(x: np.ndarray, sr: int) -> list[float]:
    """Where each loud stretch of ``x`` starts (s): 5 ms frames above a tenth of the loudest."""
    hop = sr // 200
    env = np.abs(x[: x.size // hop * hop]).reshape(-1, hop).max(axis=1)
    loud = env > 0.1 * env.max()
    return [i / 200 for i in np.flatnonzero(loud[1:] & ~loud[:-1]) + 1]


@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
def test_mux_starts_the_music_with_the_first_frame_of_a_late_picture(tmp_path: Path, suffix: str) -> None:
    """A clip whose picture starts 0.5 s into its timeline (``-itsoffset``): the copied video keeps that
    start, so the music (timed from the first frame) is delayed by as much, and the clip's own sound
    kept under it stays where it was. Before, the music came 0.5 s early against the picture."""
    import subprocess

    import soundfile

    from analysis.media.dialogue import mux_soundtrack

    sr = 44100
    burst = np.zeros(4 * sr, np.float32)  # the clip's sound: a burst 2.5 s into the file (2.0 s into the picture)
    tone = np.sin(2 * np.pi * 440 * np.arange(int(0.3 * sr)) / sr)
    burst[int(2.5 * sr) : int(2.5 * sr) + tone.size] = 0.3 * tone
    plain = make_clip(tmp_path / "plain.mp4", shots=[Shot(100, (90, 90, 90))], size=(160, 90), audio=burst)
    late = tmp_path / f"late{suffix}"
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-itsoffset", "0.5", "-i", str(plain), "-i", str(plain),
                    "-map", "0:v", "-map", "1:a", "-c", "copy", str(late)], check=True)
    music = np.zeros((4 * sr, 2), np.float32)  # a chord 1.0 s after the first frame
    music[sr : sr + tone.size] = 0.3 * tone[:, None]
    soundfile.write(tmp_path / "music.wav", music, sr)

    alone, _ = mux_soundtrack(late, tmp_path / "music.wav", tmp_path / f"alone{suffix}", clip_sound="replace")
    kept, report = mux_soundtrack(late, tmp_path / "music.wav", tmp_path / f"kept{suffix}", clip_sound="keep",
                                  speech=())
    assert report.kept
    first = _first_frame(late)  # 0.5 s (0.523 in Matroska, which keeps the H.264 frames' delay)
    (said,) = _onsets(_decoded_on_its_timeline(late), 8000)  # the burst: 2.5 s in (2.52 in Matroska)
    assert first >= 0.5 and said == pytest.approx(2.5, abs=0.03)
    for out in (alone, kept):  # the muxer may shift the whole timeline (Matroska: by the AAC priming)
        shift = _first_frame(out) - first
        assert 0 <= shift < 0.03
        heard = _onsets(_decoded_on_its_timeline(out), 8000)
        assert heard[0] == pytest.approx(first + shift + 1.0, abs=0.015)  # the chord, 1 s after the first frame
        if out == kept:  # the clip's burst where it was
            assert heard[1:] == [pytest.approx(said + shift, abs=0.015)]


def _click_after_first_frame(path: Path) -> float:
    """Seconds from ``path``'s first picture to the loudest sample of its first audio track, both as decoded."""
    with av.open(str(path)) as c:
        first = next(c.decode(c.streams.video[0])).time
    with av.open(str(path)) as c:
        frames = list(c.decode(c.streams.audio[0]))
    sound = np.abs(np.concatenate([f.to_ndarray() for f in frames], axis=1)[0])
    return frames[0].time + int(np.argmax(sound)) / frames[0].sample_rate - first


@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
def test_mux_starts_the_music_with_the_first_frame_of_a_camera_transport_stream(tmp_path: Path, suffix: str) -> None:
    """A camera's MPEG-TS (.mts, .m2ts) whose picture has B-frames and whose sound starts a little before it:
    the muxer puts that picture at the very start of the scored file, and the music, delayed by the picture's
    lead in the TS, came as much late (57 ms here; 23 ms from the AAC priming alone). It starts with the
    first frame now."""
    import subprocess

    import soundfile

    from analysis.media.mux import mux
    from analysis.media.probe import picture_start

    plain = make_clip(tmp_path / "plain.mp4", shots=[Shot(60, (90, 90, 90))], fps=30, size=(160, 90), audio="drone")
    cam = tmp_path / "cam.m2ts"
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-itsoffset", "0.03", "-i", str(plain), "-i", str(plain),
                    "-map", "0:v", "-map", "1:a", "-c:v", "libx264", "-preset", "medium", "-bf", "3", "-c:a", "aac",
                    "-f", "mpegts", str(cam)], check=True)
    with av.open(str(cam)) as c:
        assert picture_start(c) > 0.04  # its sound leads its picture
    music = np.zeros((3 * 44100, 2), np.float32)
    music[44100 : 44100 + 40] = 0.8  # a click 1 s after the first frame
    soundfile.write(tmp_path / "music.wav", music, 44100)
    out = mux(cam, tmp_path / "music.wav", tmp_path / f"out{suffix}")
    assert _click_after_first_frame(out) == pytest.approx(1.0, abs=0.003)


def _streams(path: Path) -> list[tuple[str, str, int]]:
    with av.open(str(path)) as c:
        return [(s.type, s.codec_context.name, int(bool(s.disposition & av.stream.Disposition.default)))
                for s in c.streams if s.type != "data"]


@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
def test_mux_keeps_subtitles_extra_audio_and_creation_time(tmp_path: Path, suffix: str) -> None:
    """The scored clip dropped the clip's subtitles (mov_text in MP4, SubRip in Matroska), its commentary
    track and its creation_time: they are kept, converted where the container needs another text
    format, and the new soundtrack stays the first, default audio."""
    import subprocess

    import soundfile

    from analysis.media.mux import mux

    plain = make_clip(tmp_path / "plain.mp4", shots=[Shot(50, (90, 90, 90))], size=(160, 90), audio="drone")
    (tmp_path / "subs.srt").write_text("1\n00:00:00,500 --> 00:00:01,500\nHello there\n")
    for src_suffix, sub_codec in ((".mp4", "mov_text"), (".mkv", "srt")):
        rich = tmp_path / f"rich{src_suffix}"
        subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", str(plain), "-i", str(plain),
                        "-i", str(tmp_path / "subs.srt"), "-map", "0:v", "-map", "0:a", "-map", "1:a", "-map", "2:s",
                        "-c:v", "copy", "-c:a", "copy", "-c:s", sub_codec,
                        "-metadata", "creation_time=2024-05-01T10:00:00Z", str(rich)], check=True)
        soundfile.write(tmp_path / "music.wav", 0.1 * np.ones((2 * 44100, 2)), 44100)
        out = mux(rich, tmp_path / "music.wav", tmp_path / f"out-{src_suffix[1:]}{suffix}")
        want_sub = ("mov_text",) if suffix == ".mp4" else ("subrip", "srt")
        kinds = [(t, c) for t, c, _ in _streams(out)]
        assert kinds[:3] == [("video", "h264"), ("audio", "aac"), ("audio", "aac")], src_suffix
        assert len(kinds) == 4 and kinds[3][0] == "subtitle" and kinds[3][1] in want_sub, kinds
        assert [d for t, _, d in _streams(out) if t == "audio"] == [1, 0]  # the new soundtrack plays by default
        with av.open(str(out)) as c:
            assert c.metadata.get("creation_time", "").startswith("2024-05-01T10:00:00")
            said = [str(s) for p in c.demux(c.streams.subtitles[0]) for s in p.decode()]
        assert any("Hello there" in s for s in said)
        assert video_packets(out) == video_packets(rich)
    from analysis.media.mux import _subtitle_codec

    assert _subtitle_codec("hdmv_pgs_subtitle", matroska=False) is None  # MP4 holds no picture subtitles
    assert _subtitle_codec("hdmv_pgs_subtitle", matroska=True) == "copy"
    from analysis.media.dialogue import DialogueMix  # a track left out is said in the result's one line

    assert DialogueMix(False, (), why="asked", left_out=("the clip's x track is left out",)).describe().endswith(
        "replaced by the music; the clip's x track is left out")


def test_a_clips_audio_is_decoded_into_one_array_not_a_list_joined_after(tmp_path: Path) -> None:
    """The audio of a pass was kept as a list of chunks and joined at the end: 2.0 times the audio at the
    peak (0.1 GB for 10 minutes). Written into one array sized from the announced duration, it is held once."""
    import shutil
    import subprocess
    import tracemalloc

    from analysis.media.decode import decode_audio

    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        pytest.skip("ffmpeg is not installed")
    clip = tmp_path / "clip.mp4"
    subprocess.run([ffmpeg, "-loglevel", "error", "-y", "-f", "lavfi", "-i", "testsrc=size=64x48:rate=5",
                    "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100", "-t", "90", "-c:v", "libx264",
                    "-c:a", "aac", str(clip)], check=True)
    decode_audio(clip)  # the decoders' modules load outside the count
    tracemalloc.start()
    try:
        track = decode_audio(clip)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert track.samples is not None and abs(track.samples.size - 90 * 22050) < 0.1 * 22050
    assert peak < 1.3 * track.samples.nbytes  # was 2.0 times


@pytest.mark.parametrize("suffix", [".wav", ".flac"])
def test_audio_file_default_codec_follows_suffix(tmp_path: Path, suffix: str) -> None:
    """mediagen's audio file holds what its suffix promises: a .wav written as AAC (the old default) read
    as 0.23 s of a 3 s file, and soundfile refused it."""
    import soundfile as sf

    path = make_audio_file(tmp_path / f"tone{suffix}", seconds=3.0, sample_rate=22050)
    samples, sr = sf.read(str(path), dtype="float32")
    assert sr == 22050
    assert len(samples) == 3 * 22050
    assert float(np.sqrt(np.mean(samples**2))) > 0.01  # the drone, not silence


@pytest.mark.skipif(not _has_encoder("libsvtav1"), reason="this FFmpeg has no SVT-AV1 encoder")
def test_an_av1_clip_with_mp3_sound_is_played_and_scored_as_it_is(tmp_path: Path) -> None:
    """PyAV opens AV1 with the libdav1d decoder and MP3 with mp3float; those decoder names were taken for
    the codecs, so the page made a browser copy of a clip it plays as it is ("video codec libdav1d") and a
    scored AV1 clip had its picture re-encoded to H.264."""
    import soundfile

    from analysis.media.mux import mux
    from analysis.media.proxy import proxy_reason

    clip = make_clip(tmp_path / "clip.mp4", shots=[Shot(10, (90, 90, 90))], codec="libsvtav1", size=(160, 90),
                     audio="drone", audio_codec="mp3")
    info = probe(clip)
    assert (info.video_codec, info.audio_codec) == ("av1", "mp3")
    assert proxy_reason(clip) is None
    soundfile.write(tmp_path / "music.wav", np.zeros((44100, 2)), 44100)
    out = mux(clip, tmp_path / "music.wav", tmp_path / "out.mp4")
    assert probe(out).video_codec == "av1"
    assert video_packets(out) == video_packets(clip)  # the picture copied, not re-encoded


def test_one_picture_with_sound_is_the_picture_held_while_the_sound_plays(tmp_path: Path) -> None:
    """A cover or a slide under a voice-over, as ``ffmpeg -i cover.png -i talk.wav`` writes it, stores the
    picture once; players show it while the sound plays. It was refused as "a still image"; now it lasts
    as long as its sound, and soundtrack score gives it music that long. A picture without sound is refused."""
    import soundfile

    from analysis import analyze_video
    from analysis.media.mux import mux
    from soundtrack.clips import probe_video

    clip = make_clip(tmp_path / "cover.mp4", shots=[Shot(1, (200, 60, 50))], audio=drone(3.0))
    assert probe(clip).frame_count == 1
    result = analyze_video(clip, sources=("visual", "audio"))
    assert result.duration == pytest.approx(3.0, abs=0.05)
    assert result.arc.times[-1] == pytest.approx(2.75, abs=0.26) and result.cuts == ()
    assert probe_video(clip, max_duration=60.0) == pytest.approx(3.0, abs=0.05)  # the page takes it too
    soundfile.write(tmp_path / "music.wav", np.zeros((3 * 44100, 2)), 44100)
    with av.open(str(mux(clip, tmp_path / "music.wav", tmp_path / "scored.mp4"))) as c:
        assert c.duration / 1e6 == pytest.approx(3.0, abs=0.05) and len(c.streams.video) == 1
    silent = make_clip(tmp_path / "photo.mp4", shots=[Shot(1, (200, 60, 50))])
    with pytest.raises(MediaError, match="no video stream with more than one frame"):
        analyze_video(silent, sources=("visual",))
    with pytest.raises(MediaError, match="no video stream with more than one frame"):
        probe_video(silent, max_duration=60.0)


def test_the_page_measures_a_held_picture_with_b_frames_at_its_length(tmp_path: Path) -> None:
    """With B-frames a packet's length runs to the next packet in decoding order, so the one before a picture
    held for 4 s carried the hold as well: the page counted a 6 s screen recording as 9.04 s (and refused
    one under its length limit). The length is the last frame shown plus its own length."""
    import subprocess

    from soundtrack.clips import probe_video

    shots = [Shot(25, (200, 60, 50), motion=0.5), Shot(1, (40, 90, 180)), Shot(25, (60, 200, 60), motion=0.8)]
    held = held_copy(make_clip(tmp_path / "cfr.mp4", shots=shots), tmp_path / "held.mp4", hold={25: 4.0})
    b_frames = tmp_path / "b-frames.mp4"  # x264's default preset reorders frames (ultrafast does not)
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", str(held), "-c:v", "libx264", "-fps_mode", "passthrough",
                    str(b_frames)], check=True)
    assert probe_video(b_frames, max_duration=8.0) == pytest.approx(6.0, abs=0.05)


def test_a_held_picture_does_not_lengthen_the_last_frame(tmp_path: Path) -> None:
    """The last frame lasted one period of the clip's average rate, which a picture held for 4 s lowers
    (51 frames in 6 s): the clip read 6.08 s, and its score ran past the picture. It lasts a frame period."""
    from analysis import analyze_video

    shots = [Shot(25, (200, 60, 50), motion=0.5), Shot(1, (40, 90, 180)), Shot(25, (60, 200, 60), motion=0.8)]
    held = held_copy(make_clip(tmp_path / "cfr.mp4", shots=shots), tmp_path / "held.mp4", hold={25: 4.0})
    assert analyze_video(held, sources=("visual",)).duration == pytest.approx(6.0, abs=0.005)
