"""A browser-playable copy of a clip for display (H.264 yuv420p + AAC in MP4); analysis keeps the original.

Browsers play H.264 only in 4:2:0 and not every codec or container at all, and a clip with
a damaged frame can leave a player blank. :func:`proxy_reason` says why a clip needs a
proxy (None: play it as it is); :func:`browser_proxy` writes one with ``ffmpeg`` given an
argument list and absolute paths only (so no file name is read as an option).
"""

from __future__ import annotations

import logging
import re
import subprocess
from collections.abc import Callable
from pathlib import Path

from analysis.errors import MediaError
from analysis.media.ffmpeg import ffmpeg_binary, first_complaint
from analysis.media.probe import main_video, main_video_map, open_media, read_info

log = logging.getLogger(__name__)

#: What the page's players can play as is.
PLAYABLE_VIDEO = frozenset({"h264", "vp8", "vp9", "av1"})
PLAYABLE_AUDIO = frozenset({"aac", "mp3", "opus", "vorbis"})
PLAYABLE_PIXELS = frozenset({"yuv420p", "yuvj420p"})
PLAYABLE_CONTAINERS = ("mp4", "webm")  # substrings of FFmpeg's format names ("mov,mp4,m4a,...")


#: Seconds of video :func:`decode_errors` decodes looking for damage (a full decode of a long clip is slow).
SCAN_S = 120.0


def decode_errors(path: str | Path, *, seconds: float = SCAN_S) -> str | None:
    """The first decoder complaint about the first ``seconds`` of ``path``'s video stream, or None."""
    src = Path(path).resolve()
    cmd = [ffmpeg_binary(src, "converted"), "-nostdin", "-v", "error", "-t", f"{seconds:.3f}", "-i", str(src),
           "-map", main_video_map(src), "-f", "null", "-"]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    said = proc.stderr.strip()
    return first_complaint(said) if said or proc.returncode else None


def proxy_reason(path: str | Path) -> str | None:
    """Why browsers may not play ``path`` (codec, pixel format, container, damaged frames); None if they will."""
    p = Path(path)
    with open_media(p) as container:
        info = read_info(p, container)
        pix = main_video(container).codec_context.pix_fmt
    if info.video_codec not in PLAYABLE_VIDEO:
        return f"video codec {info.video_codec}"
    if pix not in PLAYABLE_PIXELS:
        return f"pixel format {pix}"
    if info.audio_codec is not None and info.audio_codec not in PLAYABLE_AUDIO:
        return f"audio codec {info.audio_codec}"
    if not any(name in info.container.split(",") for name in PLAYABLE_CONTAINERS):
        return f"container {info.container}"
    damage = decode_errors(p)
    if damage:  # the decoder's own words are for the log; the page says what it means
        log.info("%s: the decoder complains: %s", p, damage)
    return "damaged frames" if damage else None


def browser_proxy(src: str | Path, out: str | Path, *, max_height: int | None = None,
                  progress: Callable[[float], None] | None = None, seconds: float = 0.0) -> Path:
    """Write ``out``: ``src`` as H.264 yuv420p + AAC in MP4, even dimensions, fast start.

    ``max_height`` (pixels) makes a quick look-only copy: no taller than that, encoded at FFmpeg's
    fastest preset (the page shows one while a clip the browser cannot play waits to be analysed).
    ``progress`` hears the share of the clip's ``seconds`` written, as FFmpeg reports it.
    """
    source, dst = Path(src).resolve(), Path(out).resolve()
    if not source.is_file():
        raise MediaError(src, "file not found")
    dst.parent.mkdir(parents=True, exist_ok=True)
    ffmpeg = ffmpeg_binary(source, "converted")
    # -2: the width that keeps the picture's shape, rounded to even (H.264 4:2:0 needs even sides)
    size, preset, crf = (f"scale=-2:min({max_height}\\,trunc(ih/2)*2)", "ultrafast", "28") if max_height else \
        ("scale=trunc(iw/2)*2:trunc(ih/2)*2", "veryfast", "23")
    cmd = [
        ffmpeg, "-nostdin", "-y", "-v", "error", "-err_detect", "ignore_err", "-i", str(source),
        "-map", main_video_map(source), "-map", "0:a:0?", "-c:v", "libx264", "-preset", preset, "-crf", crf,
        "-pix_fmt", "yuv420p", "-vf", size, "-c:a", "aac", "-b:a", "128k", "-movflags", "+faststart",
        "-progress", "pipe:1", "-nostats", str(dst),
    ]  # fmt: skip
    code, said = _run_reporting(cmd, progress if seconds > 0 else None, seconds)
    if code != 0 or not dst.is_file() or dst.stat().st_size == 0:
        lines = said.strip().splitlines()
        raise MediaError(src, f"could not be converted for the browser ({lines[-1] if lines else 'no message'})")
    return Path(out)


#: A line of FFmpeg's ``-progress`` report ("out_time_us=1234567"); anything else it says is a complaint.
_REPORT_LINE = re.compile(r"^(\w+)=(\S*)$")


def _run_reporting(cmd: list[str], progress: Callable[[float], None] | None, seconds: float) -> tuple[int, str]:
    """Run ``cmd`` (FFmpeg with ``-progress pipe:1``): (its exit code, what it said besides its report),
    telling ``progress`` the share of ``seconds`` written. One pipe for both, so neither fills unread."""
    said: list[str] = []
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace") as proc:
        for line in proc.stdout or ():
            found = _REPORT_LINE.match(line.strip())
            if found is None:
                said.append(line)
            elif progress is not None and found[1] == "out_time_us" and found[2].isdigit():
                progress(min(1.0, int(found[2]) / 1e6 / seconds))
    return proc.returncode, "".join(said)
