"""Put a new soundtrack on a clip: one ``ffmpeg`` call, audio encoded as AAC, video copied where MP4 can hold it.

A clip whose video codec the MP4 container cannot hold (ProRes or DNxHD from an edit suite, VP8
WebM, Theora, FFV1, WMV, FLV, GIF, raw video) has its picture re-encoded to H.264 instead of
failing at the last step of a job; every other clip keeps its picture bit for bit. ``ffmpeg`` gets
an argument list (never a shell string) and only absolute paths, so a file name that starts with a
dash can never be read as an option.
"""

from __future__ import annotations

import logging
import os
import subprocess
import threading
from pathlib import Path

from analysis.errors import MediaError, ParameterError
from analysis.media.ffmpeg import ffmpeg_binary, first_complaint
from analysis.media.probe import container_duration, open_media, picture_start

log = logging.getLogger(__name__)

#: AAC bit rate of the new soundtrack.
AUDIO_BITRATE = "192k"
#: FFmpeg's AAC coder. "fast" encodes a minute in half the time of the default "twoloop"
#: (0.75 s against 1.43 s here) and, at 192 kb/s, decodes as close to the WAV (SNR 32.7 dB
#: against 30.6 dB on a composed piece).
AAC_CODER = "fast"
#: Video codecs (FFmpeg decoder names) copied into the MP4 as they are. FFmpeg's MP4 muxer refuses
#: prores, dnxhd, vp8, theora, ffv1, wmv*, flv1, gif, rawvideo, h263 and more; png it takes, but
#: players do not play it.
MP4_VIDEO = frozenset({"h264", "hevc", "av1", "vp9", "mpeg4", "mpeg2video", "mpeg1video", "mjpeg"})
#: The picture of any other clip: H.264 in 4:2:0 as every player takes it, CRF 18 (visually
#: lossless for a review copy), even dimensions (4:2:0 needs them), each frame kept at its own time
#: (no frame repeated to fill the length, a GIF's uneven frame times kept).
REENCODE = (
    "-c:v", "libx264", "-preset", "veryfast", "-crf", "18", "-pix_fmt", "yuv420p", "-fps_mode", "passthrough",
    "-vf", "scale=trunc(iw/2)*2:trunc(ih/2)*2",
)  # fmt: skip


#: Containers the new soundtrack (AAC) and the picture (copied, or H.264) can be written to.
CONTAINERS = (".mp4", ".m4v", ".mov", ".mkv")


def video_args(codec: str) -> list[str]:
    """FFmpeg's video output arguments for a clip whose video codec is ``codec``: copied when MP4 holds it."""
    if codec not in MP4_VIDEO:
        return list(REENCODE)
    if codec == "hevc":  # Apple's players want HEVC tagged hvc1 (FFmpeg writes hev1)
        return ["-c:v", "copy", "-tag:v", "hvc1"]
    return ["-c:v", "copy"]


def _video_facts(path: Path) -> tuple[str, float, float]:
    """``(video codec, duration in seconds, start of the picture in seconds)`` of ``path``
    (:func:`~analysis.media.probe.picture_start`); :class:`MediaError` without a video stream."""
    with open_media(path) as container:
        if not container.streams.video:
            raise MediaError(path, "has no video stream to put the soundtrack on")
        codec = container.streams.video[0].codec_context.name
        return codec, container_duration(container), picture_start(container)


def _delayed(start: float) -> list[str]:
    """The new sound's filter that puts it ``start`` seconds late on the output's timeline, with the
    copied picture's first frame (silence before it; ``adelay`` rounds to the sample)."""
    if start < 0.0005:
        return []
    return ["-filter:a:0", f"adelay=delays={start * 1000:.3f}:all=1"]


def check_mux(video: str | Path, out: str | Path) -> tuple[str, float]:
    """``(video codec, duration)`` when ``video`` can take a soundtrack into ``out``; else a clear error
    before any work (a render, a mix) is spent on it."""
    if Path(out).suffix.lower() not in CONTAINERS:
        raise ParameterError(f"the scored video must be one of {', '.join(CONTAINERS)} (received {str(out)!r})")
    src = Path(video)
    if not src.is_file():
        raise MediaError(video, "file not found")
    return _video_facts(src.resolve())[:2]


def mux(video: str | Path, audio: str | Path, out: str | Path, *, duration: float | None = None) -> Path:
    """Write ``out``: ``video``'s picture with ``audio`` as its only sound, ``duration`` seconds long.

    ``duration`` defaults to the clip's own, so the result lasts as long as the clip
    whatever the audio's length. ``audio`` starts with the first frame: where the picture starts
    late on the clip's timeline (the copied video keeps its start), the sound is delayed by as much,
    with silence before it. The picture is copied, or re-encoded to H.264 when MP4
    cannot hold the clip's codec (:data:`MP4_VIDEO`). Returns ``out``; raises
    :class:`MediaError` naming the clip when a file is missing or ffmpeg fails.
    """
    src, sound, dst = Path(video).resolve(), Path(audio).resolve(), Path(out).resolve()
    check_mux(src, dst)
    codec, own, start = _video_facts(src)
    if not sound.is_file():
        raise MediaError(audio, "audio file not found")
    length = own if duration is None else start + float(duration)
    if not length > 0:
        if duration is None:
            raise MediaError(video, "has no known duration")
        raise ParameterError(f"`duration` must be positive (received {duration})")
    ffmpeg = ffmpeg_binary(video, "muxed")
    if codec not in MP4_VIDEO:
        log.info("%s: MP4 cannot hold %s video; re-encoding the picture to H.264", video, codec)
    try:
        dst.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise MediaError(dst.parent, f"cannot create the output folder ({err.strerror or err})") from None
    # Written under a passing name and renamed when whole: a failure leaves no broken file at ``out``.
    part = dst.with_name(f".{dst.stem}.{os.getpid()}.{threading.get_ident()}.part{dst.suffix}")
    cmd = [
        ffmpeg, "-nostdin", "-y", "-v", "error", "-i", str(src), "-i", str(sound),
        "-map", "0:v:0", "-map", "1:a:0", *video_args(codec), *_delayed(start),
        "-c:a", "aac", "-aac_coder", AAC_CODER, "-b:a", AUDIO_BITRATE, "-t", f"{length:.3f}", str(part),
    ]  # fmt: skip
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise MediaError(video, f"ffmpeg could not mux the soundtrack ({first_complaint(proc.stderr)})")
        part.replace(dst)
    finally:
        part.unlink(missing_ok=True)
    return Path(out)
