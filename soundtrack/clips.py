"""Clips the page handles itself: the example clip, and the checks an upload (a clip, its subtitles)
passes before analysis.

:func:`probe_video` measures a clip from its packets, not from its container header: a
file whose header claims 10 s but holds 20 minutes is stopped once the packets pass the
limit, and a still image posing as a video (one frame, no sound to hold it on screen) is refused.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from analysis.errors import MediaError, ParameterError
from soundtrack.results import plain

if TYPE_CHECKING:
    from analysis.text.captions import Subtitles
    from soundtrack.session import Session

log = logging.getLogger(__name__)


def make_example_clip(path: Path, *, seconds_per_shot: float = 3.0, fps: int = 25) -> Path:
    """A small synthetic clip (three shots: calm blue, bright busy orange, dim grey, with a drone)."""
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".part.mp4")
    w, h, sr = 320, 180, 22050
    shots = [((30, 60, 140), 0.1), ((250, 150, 40), 1.0), ((70, 70, 70), 0.0)]
    rng = np.random.default_rng(0)
    with av.open(str(tmp), "w") as out:
        vs = out.add_stream("libx264", rate=fps)
        vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
        aus = out.add_stream("aac", rate=sr)
        n = int(seconds_per_shot * fps)
        for s, (colour, motion) in enumerate(shots):
            for i in range(n):
                img = np.empty((h, w, 3), np.uint8)
                img[:] = colour
                x = int((i * motion * 8 + 40 * s) % (w - 60))
                img[60:120, x : x + 60] = np.clip(np.array(colour) * 0.4, 0, 255)
                if motion:
                    img = np.clip(img + rng.normal(0, 12 * motion, img.shape), 0, 255).astype(np.uint8)
                out.mux(vs.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
        out.mux(vs.encode())
        t = np.arange(int(sr * seconds_per_shot * len(shots))) / sr
        tone = (0.2 * np.sin(2 * np.pi * 110 * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 0.5 * t))).astype(np.float32)
        for start in range(0, tone.size, 1024):
            frame = av.AudioFrame.from_ndarray(tone[None, start : start + 1024], format="fltp", layout="mono")
            frame.sample_rate = sr
            frame.time_base = Fraction(1, sr)
            frame.pts = start
            out.mux(aus.encode(frame))
        out.mux(aus.encode())
    tmp.replace(path)
    return path


#: The largest picture the page accepts (8K UHD): an 8192x8192 clip of three flat frames (198 kB) took
#: 737 MB to analyse, and the decoders' own bound (16K x 16K) is four times that picture.
PAGE_MAX_PIXELS = 7680 * 4320


def probe_video(path: Path, *, max_duration: float | None = None, max_pixels: int | None = None) -> float:
    """Seconds of video in ``path``, counted from its packets; :class:`MediaError` naming the problem.

    Demuxing (no decoding) stops as soon as the packets pass ``max_duration`` seconds,
    whatever the header claims; a stream of fewer than two frames is refused, and so is a
    picture of more than ``max_pixels`` pixels, before anything is decoded.
    """
    import av

    from analysis.media.probe import main_video

    try:
        with av.open(str(path), timeout=(30.0, 30.0)) as container:
            if not container.streams.video:  # a voice memo or a song saved as .mp4 said only "no video stream"
                raise MediaError(path.name, "has sound but no picture (a voice memo or a song?): upload a video clip"
                                 if container.streams.audio else "has no video stream (is it a video file?)")
            stream = main_video(container)
            width, height = int(stream.codec_context.width or 0), int(stream.codec_context.height or 0)
            if max_pixels is not None and width * height > max_pixels:
                raise MediaError(path.name, f"is {width}x{height} pixels; the largest picture accepted here is "
                                            f"{max_pixels:,} pixels (8K)")
            return _packet_duration(path, container, stream, max_duration)
    except MediaError:
        raise
    except (av.error.FFmpegError, OSError, ValueError):
        raise MediaError(path.name, "is not a readable video (FFmpeg cannot open it as one)") from None


def _packet_duration(path: Path, container: Any, stream: Any, max_duration: float | None) -> float:
    """Seconds of ``stream`` counted from its packets. A single picture with sound (a cover, a slide under
    a voice-over) is shown while its sound plays, as analysis reads it: its sound's packets are counted."""
    from analysis.media.decode import MIN_HELD

    frames, seconds = _packet_seconds(path, container, stream, max_duration)
    if frames < 2 and container.streams.audio:
        container.seek(0)
        seconds = max(seconds, _packet_seconds(path, container, container.streams.audio[0], max_duration)[1])
    if frames < 2 and seconds < MIN_HELD:
        raise MediaError(path.name, "has no video stream with more than one frame (is it a still image?)")
    return seconds


def _packet_seconds(path: Path, container: Any, stream: Any, max_duration: float | None) -> tuple[int, float]:
    """``(packets, seconds)`` of ``stream``; :class:`MediaError` once they pass ``max_duration``."""
    if stream.type == "audio":  # packets a second, where they carry no times
        rate = float(stream.codec_context.sample_rate or 44100) / float(stream.codec_context.frame_size or 1024)
    else:
        rate = float(stream.average_rate or stream.guessed_rate or 25)
    frames, first, last = 0, None, 0.0
    for packet in container.demux(stream):
        if packet.size == 0:  # the flush packet at the end
            continue
        frames += 1
        if packet.pts is not None and packet.time_base:
            t = float(packet.pts * packet.time_base)
            first = t if first is None else min(first, t)
            # a frame's own length, at most a frame period (as analysis ends the picture): with B-frames a
            # packet's length runs to the next one in decoding order, across a picture held for seconds
            # (a 6 s screen recording was counted 9.04 s)
            last = max(last, t + min(float((packet.duration or 0) * packet.time_base), 1.0 / rate))
        seconds = max(last - (first or 0.0), frames / rate)
        if max_duration is not None and seconds > max_duration:
            raise MediaError(path.name, f"lasts more than {max_duration:.0f} s, the longest clip this server takes: "
                                        "trim it and upload it again")  # counted from packets: a header may lie
    return frames, max(last - (first or 0.0), frames / rate)


def read_subtitle_upload(upload: object, folder: Path) -> Subtitles:
    """An uploaded .srt/.vtt/.ass file, checked, copied into the session's ``folder`` and read; every error
    names the upload as the user knows it (its file name), not the server's copy."""
    from analysis.text.captions import MAX_BYTES, read_subtitles
    from analysis.text.sidecar import SIDECAR_SUFFIXES

    if not isinstance(upload, str | Path):
        raise ParameterError(f"`subtitles` must be an uploaded file (received {type(upload).__name__})")
    src = Path(upload)
    suffix = src.suffix.lower()
    if not src.is_file():
        raise MediaError(src.name, "was not received (upload it again)")
    if suffix not in SIDECAR_SUFFIXES:
        raise MediaError(src.name, "is not a subtitle file: upload an .srt, .vtt or .ass file")
    if src.stat().st_size > MAX_BYTES:
        raise MediaError(src.name, f"is larger than the {MAX_BYTES // 2**20} MB a subtitle file may be")
    local = folder / f"subtitles{suffix}"
    shutil.copyfile(src, local)
    try:
        return read_subtitles(local)
    except MediaError as err:
        raise MediaError(src.name, err.problem) from None


#: The look-only copy of an upload the browser cannot play: no taller than this (pixels), so it is quick.
VIEW_HEIGHT = 360


def playable_view(session: Session, upload: Path, progress: Callable[[float], None] | None = None,
                  seconds: float = 0.0) -> tuple[Path, str] | None:
    """(a small browser-playable copy of ``upload`` in the session's folder, why it is needed), or None when
    the browser plays the upload as it is, or another clip was uploaded while the copy was made.

    The session remembers which upload the copy stands for (:meth:`Session.original`), so analysis and
    muxing read the upload itself. ``progress`` hears the share made of the upload's ``seconds``.
    """
    import secrets

    from analysis.media.proxy import browser_proxy, proxy_reason
    from composer.output.names import safe_stem

    session.upload = upload
    why = proxy_reason(upload)
    if why is None:
        return None
    # a random part: the copy's name alone says which upload it stands for, and no two copies share one
    view = session.folder / f"{safe_stem(upload.stem, fallback='clip')}-view-{secrets.token_hex(4)}.mp4"
    browser_proxy(upload, view, max_height=VIEW_HEIGHT, progress=progress, seconds=seconds)
    if session.upload != upload:
        return None
    session.add_view(view, upload)
    session.quick = (upload, view, why)
    return view, why


def shown_copy(session: Session, upload: Path, local: Path) -> tuple[Path | None, str | None]:
    """(the copy players show and previews are muxed onto, why) when browsers may not play ``local``, the
    session's copy of ``upload``, else (None, None); sets what the session's players show.

    The small copy :func:`playable_view` made when ``upload`` arrived serves when there is one, else one like
    it is made here: a preview is for looking. Only a composed score's MP4 gets a full-size copy
    (:func:`delivery_copy`).
    """
    from analysis.media.proxy import browser_proxy, proxy_reason

    made = session.quick
    if made is not None and made[0] == upload and made[1].is_file():
        proxy, why = made[1], made[2]
    else:
        why = proxy_reason(local)
        proxy = browser_proxy(local, session.folder / "clip-play.mp4", max_height=VIEW_HEIGHT) if why else None
    session.display = proxy or local
    return proxy, why


#: The full-size browser-playable copy of a clip the browser cannot play, in its session's folder.
FULL_COPY = "clip-full.mp4"


def delivery_copy(session: Session, progress: Callable[[float], None] | None = None) -> Path:
    """The clip a composed score's MP4 is muxed onto: the clip itself when browsers play it, else a
    full-size browser-playable copy, made the first time a score needs it (``progress`` hears its share made)."""
    from analysis.media.proxy import browser_proxy

    video, shown = session.video, session.display  # as they are now: another clip may be chosen meanwhile
    if shown is None or shown == video:
        return video
    full = session.folder / FULL_COPY
    if not full.is_file():  # written under another name first: a failed conversion leaves no half file
        seconds = float(getattr(session.clip, "duration", 0.0) or 0.0)
        part = browser_proxy(video, full.with_suffix(".part.mp4"), progress=progress, seconds=seconds)
        part.replace(full)
    return full


#: What the clip box takes, as a creator names it (the formats the analysis is tested on).
CLIP_KINDS = "a video clip (MP4, MOV, WebM, MKV or AVI)"
CLIP_SUFFIXES = (".mp4", ".m4v", ".mov", ".webm", ".mkv", ".avi")
#: What the subtitles box takes (analysis.text.sidecar.SIDECAR_SUFFIXES).
SUBTITLE_KINDS = "a subtitle file (.srt, .vtt, .ass or .ssa)"


def _refused(name: object, library_uploads: bool) -> tuple[str, str, str]:
    """A refused file's name as shown (bold, as typed: not read as markdown), its lower-case suffix, and
    where music goes instead."""
    base = Path(str(name or "")).name[:120]
    shown = f"**{plain(base)}**" if base else "That file"
    music = ("to add it to the music this page chooses from, use the **Library** tab" if library_uploads
             else "this server does not take new music")
    return shown, Path(base).suffix.lower(), music


def not_a_clip(name: object, *, library_uploads: bool = True) -> str:
    """The page's answer to a file dropped on (or picked for) the clip box that is not a video, in place of
    Gradio's pop-up "Invalid file type: tone.wav. Only video/x-m4v,video/* allowed.": what to upload
    there, and where music (the Library tab, when this server takes uploads) and subtitles go instead."""
    from analysis.music.formats import TRACK_SUFFIXES
    from analysis.text.sidecar import SIDECAR_SUFFIXES

    shown, suffix, music = _refused(name, library_uploads)
    if suffix in TRACK_SUFFIXES:
        return f"{shown} is music, not a video: {music}. Here, upload {CLIP_KINDS}."
    if suffix in SIDECAR_SUFFIXES:
        return f"{shown} is a subtitle file: put it in the **Subtitles** box below; here, upload {CLIP_KINDS}."
    return f"{shown} is not a video: upload {CLIP_KINDS}."


def too_big(name: object, size: float, limit_mb: float) -> str:
    """The page's answer to a file over the server's upload limit (``size`` bytes, ``limit_mb`` decimal MB),
    in place of Gradio's pop-up, which gave the limit in MiB ("190.7 Mb" of a 200 MB limit) and no way on.
    The size is rounded up to a tenth of a MB, so it never reads as the limit (as the service's own check)."""
    shown, _, _ = _refused(name, False)
    tenths = -(-int(size) // 100_000)
    return (f"{shown} is {tenths // 10}.{tenths % 10} MB; this server takes files up to {limit_mb:g} MB. Trim it, "
            "or export it at a lower resolution or bitrate, and upload it again.")


def not_subtitles(name: object, *, library_uploads: bool = True) -> str:
    """The page's answer to a file in the subtitles box that is not subtitles, in place of Gradio's pop-up
    "Invalid file type: tone.wav. Only .srt, .vtt, .ass, .ssa allowed.": where a clip and music go instead."""
    from analysis.music.formats import TRACK_SUFFIXES

    shown, suffix, music = _refused(name, library_uploads)
    if suffix in TRACK_SUFFIXES:
        return f"{shown} is music, not subtitles: {music}. Here, upload {SUBTITLE_KINDS}."
    if suffix in CLIP_SUFFIXES:
        return f"{shown} is a video: put it in the **Clip** box above; here, upload {SUBTITLE_KINDS}."
    return f"{shown} is not a subtitle file: upload {SUBTITLE_KINDS}."
