"""What a media file is, before decoding: open it safely, read its container facts, its duration.

Every reader of the product opens media through :func:`open_media`, so a missing, empty
or unreadable file gives one :class:`MediaError` naming the file and the problem, never
a decoder traceback. :func:`probe` reads a video's facts (size, frame rate, duration,
codecs); :func:`media_duration` the duration of any media file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import av

from analysis.errors import MediaError, not_found

#: Pixel count above which a video is refused (16K x 16K). FFmpeg would try to allocate it.
MAX_PIXELS = 16384 * 16384


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
    #: Degrees counter-clockwise that show the stored picture upright (a phone filming held upright
    #: stores it sideways); read from the first frame, so 0 until the clip is decoded.
    rotation: int = 0

    @property
    def shown_size(self) -> tuple[int, int]:
        """(width, height) as players show the picture: the stored size, swapped by a quarter turn."""
        return (self.height, self.width) if self.rotation % 180 == 90 else (self.width, self.height)


def reason(err: Exception) -> str:
    """The short cause of a PyAV/FFmpeg error (its message without the call details)."""
    msg = getattr(err, "strerror", None) or str(err)
    return str(msg).split(":")[0].strip() or type(err).__name__


def open_media(path: Path) -> av.container.InputContainer:
    """``path`` opened for reading by PyAV, or a :class:`MediaError` saying why not."""
    if not path.exists():
        raise not_found(path)
    if not path.is_file():
        raise MediaError(path, "is not a file")
    if path.stat().st_size == 0:
        raise MediaError(path, "file is empty (0 bytes)")
    try:
        # timeout (open, read) in seconds guards against a read that never returns.
        return av.open(str(path), mode="r", timeout=(30.0, 30.0))
    except av.error.FFmpegError as err:
        raise MediaError(path, f"not a readable video file ({reason(err)})") from None
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise MediaError(path, f"cannot be opened ({err})") from None


def _stream_seconds(stream: av.stream.Stream) -> float | None:
    """Seconds a stream says it lasts: its duration, else Matroska's ``DURATION`` tag; None when neither says."""
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    tag = next((v for k, v in stream.metadata.items() if k.upper().startswith("DURATION")), None)
    parts = str(tag).split(":") if tag else []
    try:
        return float(parts[0]) * 3600 + float(parts[1]) * 60 + float(parts[2]) if len(parts) == 3 else None
    except ValueError:
        return None


def container_duration(container: av.container.InputContainer) -> float:
    """Seconds of the clip's picture and sound: what the container announces (else its longest stream);
    0.0 when nothing says.

    A container holding a subtitle or data track counts the picture and sound streams alone where
    they say how long they are: Matroska's duration runs to the last subtitle, which may come long
    after the picture ends.
    """
    picture_sound = [s for s in container.streams if s.type in ("video", "audio")]
    if len(picture_sound) < len(container.streams):
        known = [d for d in map(_stream_seconds, picture_sound) if d]
        if known:
            return max(known)
    if container.duration:
        return max(0.0, float(container.duration / av.time_base))
    durations = [float(s.duration * s.time_base) for s in container.streams if s.duration and s.time_base]
    return max(0.0, max(durations, default=0.0))


def codec_name(stream: av.stream.Stream) -> str:
    """FFmpeg's name of ``stream``'s codec ("av1", "mp3"), the name containers and players go by; not the
    name of the decoder PyAV opened for it ("libdav1d", "mp3float"), which made an AV1 clip's picture
    look foreign to MP4 and get re-encoded to H.264 when scored."""
    ctx = stream.codec_context
    return ctx.codec.canonical_name if ctx is not None else "unknown"


#: Codecs of still pictures: a stream of one of them is a cover or a thumbnail beside the clip's video.
_STILL_CODECS = frozenset({"mjpeg", "png", "bmp", "tiff", "webp", "jpeg2000"})


def main_video(container: av.container.InputContainer) -> av.VideoStream:
    """The clip's picture among its video streams, as players choose it: no attached picture (cover art),
    a video codec before a still-picture one, then the largest frame, then the first. The first video
    stream was taken before, so a file whose first track is its cover was refused as "a still image"."""
    def rank(s: av.VideoStream) -> tuple[bool, bool, int, int]:
        attached = bool(s.disposition & av.stream.Disposition.attached_pic)
        area = int(s.codec_context.width or 0) * int(s.codec_context.height or 0)
        return attached, codec_name(s) in _STILL_CODECS, -area, s.index

    return min(container.streams.video, key=rank)


def main_video_map(path: str | Path) -> str:
    """FFmpeg's ``-map`` for ``path``'s :func:`main_video` (``0:<index>``), so FFmpeg's picture is the one analysed."""
    with open_media(Path(path)) as container:
        return f"0:{main_video(container).index}" if container.streams.video else "0:v:0"


def picture_start(container: av.container.InputContainer) -> float:
    """Seconds from the start of ``container``'s timeline (its earliest stream, where FFmpeg puts 0 s) to
    its first picture: a clip whose video starts late (``-itsoffset``, a camera's audio pre-roll) is
    seen from its first frame, so everything timed against the picture is shifted by this much in it."""
    if not container.streams.video:
        return 0.0
    video = main_video(container)
    if video.start_time is None or not video.time_base:
        return 0.0
    origin = container.start_time / av.time_base if container.start_time is not None else 0.0
    return max(0.0, float(video.start_time * video.time_base) - origin)


def read_info(path: Path, container: av.container.InputContainer, *, max_pixels: int = MAX_PIXELS) -> VideoInfo:
    """The :class:`VideoInfo` of an open container; :class:`MediaError` when it holds no usable video."""
    if not container.streams:
        raise MediaError(path, "contains no streams at all (zero-length or unfinished file)")
    if not container.streams.video:
        kinds = sorted({s.type for s in container.streams})
        raise MediaError(path, f"has no video stream (found only: {', '.join(kinds)})")
    v = main_video(container)
    w, h = int(v.codec_context.width or 0), int(v.codec_context.height or 0)
    if w <= 0 or h <= 0:
        raise MediaError(path, f"video stream has no usable frame size (received {w}x{h})")
    if w * h > max_pixels:
        raise MediaError(path, f"resolution {w}x{h} is too large to analyse (limit {max_pixels} pixels)")
    rate = v.average_rate or v.guessed_rate or v.base_rate
    duration = container_duration(container)
    a = container.streams.audio[0] if container.streams.audio else None
    return VideoInfo(
        path=path,
        duration=max(0.0, float(duration)),
        width=w,
        height=h,
        fps=float(rate) if rate else 0.0,
        video_codec=codec_name(v),
        frame_count=int(v.frames or 0),
        audio_codec=codec_name(a) if a is not None else None,
        sample_rate=int(a.codec_context.sample_rate or 0) if a is not None else 0,
        container=container.format.name,
    )


def probe(path: str | Path, *, max_pixels: int = MAX_PIXELS) -> VideoInfo:
    """Container facts of a video (size, frame rate, duration, codecs) without decoding."""
    path = Path(path)
    with open_media(path) as container:
        return read_info(path, container, max_pixels=max_pixels)


def media_duration(path: str | Path) -> float:
    """Duration in seconds of any media file: the container's, else its longest stream's.

    Raises :class:`MediaError` when the file cannot be read or nothing in it says how long it is.
    """
    path = Path(path)
    with open_media(path) as container:
        duration = container_duration(container)
    if duration <= 0:
        raise MediaError(path, "has no known duration")
    return duration
