"""The ``ffmpeg`` binary, found in one place, and its complaints read in one way.

Every module that runs ``ffmpeg`` (muxing, the browser proxy, the clip's own sound, subtitle
tracks) gives it an argument list, never a shell string; this module only says where it is and
what its stderr meant.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from analysis.errors import MediaError


def ffmpeg_binary(path: str | Path, doing: str) -> str:
    """The ``ffmpeg`` executable; else a :class:`MediaError` naming ``path``: it "cannot be ``doing``"."""
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise MediaError(path, f"cannot be {doing}: ffmpeg is not installed (Debian package ffmpeg)")
    return ffmpeg


def first_complaint(stderr: str | bytes, *, default: str = "no message") -> str:
    """FFmpeg's first complaint, without its ``[muxer @ 0x...]`` prefix (its last line often only says
    that it stopped); ``default`` when it said nothing."""
    text = stderr.decode("utf-8", errors="replace") if isinstance(stderr, bytes) else stderr
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if not lines:
        return default
    first = lines[0]
    return first.split("] ", 1)[1] if first.startswith("[") and "] " in first else first
