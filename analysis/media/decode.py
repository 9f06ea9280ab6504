"""Decode a clip once: sampled small frames for the sources, every frame for a sink, mono audio.

One demux pass over video and audio with PyAV (FFmpeg inside the wheel, codec
threading on). Every video frame is downscaled by swscale to ``sink_width`` and handed
to an optional ``frame_sink`` (the cut detector needs every frame, at low resolution);
frames at ``sample_fps`` are kept at ``width`` for the affect sources; the audio is
resampled to mono float32. Nothing is decoded twice.

Bad media never escapes as a decoder traceback: a missing, empty, non-media, corrupt,
zero-length, video-less or absurdly large file raises :class:`MediaError` naming the
file and the problem. A file that breaks off part-way (truncated, damaged packets)
gives what could be decoded, with a warning in :attr:`Decoded.warnings`.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import av
import cv2
import numpy as np

from analysis.errors import MediaError, ParameterError
from analysis.sources.base import MediaStreams

log = logging.getLogger(__name__)

#: Called with (frame index, time in seconds, image) for every decoded video frame.
FrameSink = Callable[[int, float, np.ndarray], None]

#: Pixel count above which a video is refused (16K x 16K). FFmpeg would try to allocate it.
MAX_PIXELS = 16384 * 16384
#: Give up after this many undecodable packets in a row (a garbled file, not a glitch).
_MAX_BAD_PACKETS = 200


class MediaWarning(UserWarning):
    """A clip could only be read in part (issued by :func:`decode`)."""


@dataclass(frozen=True)
class VideoInfo:
    """What the container says about a clip, before decoding."""

    path: Path
    duration: float  # seconds; 0.0 when the container does not say
    width: int
    height: int
    fps: float
    video_codec: str
    frame_count: int  # 0 when the container does not say
    audio_codec: str | None  # None: no audio stream
    sample_rate: int  # 0 without audio
    container: str


@dataclass(frozen=True)
class Decoded:
    """A decoded clip plus the container facts and any warnings about partial reads."""

    media: MediaStreams
    info: VideoInfo
    frame_count: int  # video frames actually decoded (all of them went to the sink)
    warnings: tuple[str, ...]


def _open(path: Path) -> av.container.InputContainer:
    if not path.exists():
        raise MediaError(path, "file not found")
    if not path.is_file():
        raise MediaError(path, "is not a file")
    if path.stat().st_size == 0:
        raise MediaError(path, "file is empty (0 bytes)")
    try:
        # timeout (open, read) in seconds guards against a read that never returns.
        return av.open(str(path), mode="r", timeout=(30.0, 30.0))
    except av.error.FFmpegError as err:
        raise MediaError(path, f"not a readable video file ({_reason(err)})") from None
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise MediaError(path, f"cannot be opened ({err})") from None


def _reason(err: Exception) -> str:
    msg = getattr(err, "strerror", None) or str(err)
    return str(msg).split(":")[0].strip() or type(err).__name__


def _info(path: Path, container: av.container.InputContainer, *, max_pixels: int) -> VideoInfo:
    if not container.streams:
        raise MediaError(path, "contains no streams at all (zero-length or unfinished file)")
    if not container.streams.video:
        kinds = sorted({s.type for s in container.streams})
        raise MediaError(path, f"has no video stream (found only: {', '.join(kinds)})")
    v = container.streams.video[0]
    w, h = int(v.codec_context.width or 0), int(v.codec_context.height or 0)
    if w <= 0 or h <= 0:
        raise MediaError(path, f"video stream has no usable frame size (received {w}x{h})")
    if w * h > max_pixels:
        raise MediaError(path, f"resolution {w}x{h} is too large to analyse (limit {max_pixels} pixels)")
    rate = v.average_rate or v.guessed_rate or v.base_rate
    fps = float(rate) if rate else 0.0
    if container.duration:
        duration = container.duration / av.time_base
    elif v.duration and v.time_base:
        duration = float(v.duration * v.time_base)
    else:
        duration = 0.0
    a = container.streams.audio[0] if container.streams.audio else None
    return VideoInfo(
        path=path,
        duration=max(0.0, float(duration)),
        width=w,
        height=h,
        fps=fps,
        video_codec=v.codec_context.name,
        frame_count=int(v.frames or 0),
        audio_codec=a.codec_context.name if a is not None else None,
        sample_rate=int(a.codec_context.sample_rate or 0) if a is not None else 0,
        container=container.format.name,
    )


def probe(path: str | Path, *, max_pixels: int = MAX_PIXELS) -> VideoInfo:
    """Container facts (size, frame rate, duration, codecs) without decoding."""
    path = Path(path)
    with _open(path) as container:
        return _info(path, container, max_pixels=max_pixels)


# Limited-range (16..235 / 16..240) to full-range lookup tables for 8-bit YCbCr.
_LIMITED_Y = np.clip((np.arange(256) - 16) * 255.0 / 219.0, 0, 255).round().astype(np.uint8)
_LIMITED_C = np.clip((np.arange(256) - 128) * 255.0 / 224.0 + 128, 0, 255).round().astype(np.uint8)
#: The same as one 3-channel table for cv2.LUT, channel order (Y, Cr, Cb).
_LIMITED_YCC = np.dstack([_LIMITED_Y, _LIMITED_C, _LIMITED_C]).reshape(1, 256, 3)
_AVCOL_RANGE_JPEG = 2


def _plane(frame: av.VideoFrame, i: int, h: int, w: int) -> np.ndarray:
    p = frame.planes[i]
    return np.frombuffer(p, np.uint8).reshape(-1, p.line_size)[:h, :w]


def _fast_small_bgr(frame: av.VideoFrame, target: int) -> np.ndarray | None:
    """A BGR image between ``target`` and ``2 * target`` wide, by strided sampling of the
    8-bit 4:2:0 planes (no filtering), or None when that does not apply.

    Much cheaper than swscale at 720p and above, and the cut detector and the colour
    statistics do not need filtered pixels. Other pixel formats take the swscale path.
    """
    name = frame.format.name
    if name not in ("yuv420p", "yuvj420p"):
        return None
    w, h = frame.width, frame.height
    k = w // (2 * target)
    if k < 1:
        return None
    y = _plane(frame, 0, h, w)[:: 2 * k, :: 2 * k]
    u = _plane(frame, 1, (h + 1) // 2, (w + 1) // 2)[::k, ::k]
    v = _plane(frame, 2, (h + 1) // 2, (w + 1) // 2)[::k, ::k]
    hh, ww = min(y.shape[0], u.shape[0]), min(y.shape[1], u.shape[1])
    ycc = np.dstack([y[:hh, :ww], v[:hh, :ww], u[:hh, :ww]])
    if name == "yuv420p" and getattr(frame, "color_range", 0) != _AVCOL_RANGE_JPEG:
        ycc = cv2.LUT(ycc, _LIMITED_YCC)  # limited (TV) range -> full range
    return cv2.cvtColor(ycc, cv2.COLOR_YCrCb2BGR)  # BT.601


def _scaled_size(w: int, h: int, width: int) -> tuple[int, int]:
    """(width, height) no wider than ``width``, aspect kept, both even."""
    tw = min(width, w)
    th = max(2, round(h * tw / w / 2) * 2)
    return max(2, tw // 2 * 2), th


def decode_report(
    path: str | Path,
    *,
    sample_fps: float = 5.0,
    width: int = 160,
    audio_rate: int = 22050,
    max_pixels: int = MAX_PIXELS,
    frame_sink: FrameSink | None = None,
    sink_width: int = 160,
    sink_format: str = "bgr",
    progress: Callable[[float], None] | None = None,
) -> Decoded:
    """Decode ``path`` in one pass; see the module docstring. Warnings are returned, not issued.

    ``frame_sink`` gets every frame about ``sink_width`` wide (between it and twice it
    for large 4:2:0 video, which is sampled by strides instead of filtered) in
    ``sink_format`` ``"bgr"`` (what OpenCV-based detectors expect) or ``"rgb"``. Sampled
    frames are RGB, about ``width`` wide in the same way. ``progress`` gets the fraction
    of the container duration decoded so far.
    """
    path = Path(path)
    if sample_fps <= 0:
        raise ParameterError(f"`sample_fps` must be positive (received {sample_fps})")
    if width < 8 or sink_width < 8:
        raise ParameterError(f"`width` and `sink_width` must be at least 8 (received {width}, {sink_width})")
    if sink_format not in ("bgr", "rgb"):
        raise ParameterError(f"`sink_format` must be 'bgr' or 'rgb' (received {sink_format!r})")
    if audio_rate < 1000:
        raise ParameterError(f"`audio_rate` must be at least 1000 Hz (received {audio_rate})")
    notes: list[str] = []
    with _open(path) as container:
        info = _info(path, container, max_pixels=max_pixels)
        vstream = container.streams.video[0]
        vstream.thread_type = "AUTO"  # frame + slice threads: the decode is the bulk of the work
        astream = container.streams.audio[0] if container.streams.audio else None
        size = _scaled_size(info.width, info.height, width)
        sink_size = _scaled_size(info.width, info.height, sink_width)
        resampler = av.AudioResampler(format="flt", layout="mono", rate=audio_rate) if astream else None
        v_start = float(vstream.start_time * vstream.time_base) if vstream.start_time is not None else 0.0
        fps_guess = info.fps or 25.0

        frames: list[np.ndarray] = []
        times: list[float] = []
        chunks: list[np.ndarray] = []
        n_video = 0
        last_t = -1.0
        next_sample = 0.0
        bad_in_row = 0
        bad_total = 0
        next_report = 0.0
        streams = [vstream] + ([astream] if astream is not None else [])
        try:
            for packet in container.demux(streams):
                try:
                    decoded = packet.decode()
                    bad_in_row = 0
                except (av.error.InvalidDataError, av.error.ValueError, av.error.UndefinedError) as err:
                    bad_in_row += 1
                    bad_total += 1
                    if bad_in_row == 1:
                        log.info("%s: skipping an undecodable %s packet (%s)", path, packet.stream.type, _reason(err))
                    if bad_in_row > _MAX_BAD_PACKETS:
                        notes.append(f"stopped after {bad_in_row} undecodable packets in a row")
                        break
                    continue
                for frame in decoded:
                    if packet.stream.type == "video":
                        t = float(frame.time) - v_start if frame.time is not None else n_video / fps_guess
                        if t <= last_t:  # missing or repeated timestamps: fall back to frame counting
                            t = last_t + 1.0 / fps_guess
                        last_t = t
                        sample = t + 1e-6 >= next_sample
                        small = _fast_small_bgr(frame, sink_width) if frame_sink is not None else None
                        if frame_sink is not None:
                            if small is None:
                                small = frame.to_ndarray(width=sink_size[0], height=sink_size[1], format="bgr24",
                                                         interpolation="FAST_BILINEAR")
                            frame_sink(n_video, t, small if sink_format == "bgr" else small[..., ::-1])
                        if sample:
                            if width == sink_width and small is not None:
                                rgb = cv2.cvtColor(small, cv2.COLOR_BGR2RGB)
                            else:
                                rgb = _fast_small_bgr(frame, width)
                                rgb = (cv2.cvtColor(rgb, cv2.COLOR_BGR2RGB) if rgb is not None else
                                       frame.to_ndarray(width=size[0], height=size[1], format="rgb24",
                                                        interpolation="AREA"))
                            frames.append(rgb)
                            times.append(t)
                            next_sample = max(next_sample + 1.0 / sample_fps, t - 0.5 / sample_fps)
                        n_video += 1
                        if progress is not None and info.duration > 0 and t >= next_report:
                            progress(min(1.0, t / info.duration))
                            next_report = t + info.duration / 50
                    elif resampler is not None:
                        for rf in resampler.resample(frame):
                            chunks.append(rf.to_ndarray().reshape(-1))
            if resampler is not None:
                for rf in resampler.resample(None):
                    chunks.append(rf.to_ndarray().reshape(-1))
        except av.error.FFmpegError as err:
            notes.append(f"reading stopped early ({_reason(err)})")
        if bad_total:
            notes.append(f"skipped {bad_total} undecodable packet(s)")

    if n_video == 0:
        raise MediaError(path, "contains no decodable video frames (empty, corrupt or truncated)")
    frame_dt = 1.0 / fps_guess
    video_end = last_t + frame_dt
    audio = np.concatenate(chunks).astype(np.float32, copy=False) if chunks else None
    if astream is not None and (audio is None or audio.size == 0):
        notes.append("the audio stream could not be decoded; analysing without audio")
        audio = None
    if info.duration > 0 and video_end < 0.9 * info.duration - 1.0:
        notes.append(f"decoded {video_end:.1f} s of the {info.duration:.1f} s the container announces (truncated?)")
    media = MediaStreams(
        path=path,
        duration=float(video_end),
        fps=float(info.fps or n_video / max(video_end, frame_dt)),
        frame_times=np.asarray(times, dtype=np.float64),
        frames=np.stack(frames) if frames else np.zeros((0, size[1], size[0], 3), np.uint8),
        audio=audio,
        sample_rate=audio_rate,
    )
    if progress is not None:
        progress(1.0)
    return Decoded(media=media, info=info, frame_count=n_video, warnings=tuple(notes))


def decode(
    path: str | Path,
    *,
    sample_fps: float = 5.0,
    width: int = 160,
    audio_rate: int = 22050,
    max_pixels: int = MAX_PIXELS,
    frame_sink: FrameSink | None = None,
    sink_width: int = 160,
) -> MediaStreams:
    """Decode ``path`` into :class:`MediaStreams` (``audio`` is None without an audio stream).

    Partial reads are reported as :class:`MediaWarning`; use :func:`decode_report` to get
    them as data instead.
    """
    result = decode_report(
        path, sample_fps=sample_fps, width=width, audio_rate=audio_rate, max_pixels=max_pixels,
        frame_sink=frame_sink, sink_width=sink_width,
    )
    for note in result.warnings:
        warnings.warn(f"{result.media.path}: {note}", MediaWarning, stacklevel=2)
    return result.media
