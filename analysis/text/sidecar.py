"""Where a clip's subtitles come from when nobody names a file: beside the clip, or inside it.

:func:`find_subtitles` looks as players do: a file beside the clip (``clip.srt``, ``clip.vtt``,
``clip.ass``, then a language-tagged ``clip.en.srt``), else the clip's own first text subtitle track
(``mov_text`` in MP4, SubRip or ASS in Matroska, WebVTT in WebM), which FFmpeg turns into
SubRip text on a pipe: nothing is written to disk. Picture subtitles (DVD, Blu-ray) cannot be
read as text and are left out with a note. Nobody asked for these subtitles, so one that
does not parse is a note too, never an error.
"""

from __future__ import annotations

import glob
import subprocess
from pathlib import Path

from av.stream import Disposition

from analysis.errors import MediaError
from analysis.media.ffmpeg import ffmpeg_binary, first_complaint
from analysis.media.probe import open_media
from analysis.text.captions import Subtitles, parse_subtitles, read_subtitles

#: Subtitle codecs (FFmpeg names) FFmpeg can turn into SubRip text.
TEXT_CODECS = frozenset({"subrip", "srt", "mov_text", "ass", "ssa", "webvtt", "text", "microdvd", "sami", "jacosub"})
#: Seconds FFmpeg may take to pull the subtitle track out of a clip (it reads the whole file).
EXTRACT_TIMEOUT = 120.0


#: Subtitle files found beside a clip (ASS/SSA, as fansubs and Aegisub write them, go through FFmpeg:
#: :func:`analysis.text.captions.read_subtitles`).
SIDECAR_SUFFIXES = (".srt", ".vtt", ".ass", ".ssa")


def sidecar_subtitles(clip: str | Path) -> Path | None:
    """The subtitle file beside ``clip`` as video players find one, or None.

    ``<stem>.srt``, ``.vtt``, ``.ass`` or ``.ssa`` (any case) first, else a language-tagged
    ``<stem>.<tag>.srt`` and so on (``clip.en.srt``, as downloaders write them; the first by name).
    """
    clip = Path(clip)
    for suffix in SIDECAR_SUFFIXES:
        for case in (suffix, suffix.upper()):
            exact = clip.with_suffix(case)
            if exact.is_file():
                return exact
    try:
        tagged = sorted(p for p in clip.parent.glob(f"{glob.escape(clip.stem)}.*.*")
                        if p.suffix.lower() in SIDECAR_SUFFIXES and p.is_file())
    except OSError:  # an unreadable folder has no sidecar to offer
        return None
    return tagged[0] if tagged else None


def as_srt(source: Path, stream: str, name: str, notes: list[str]) -> Subtitles | None:
    """Subtitle stream ``stream`` (``-map`` syntax) of ``source`` as SubRip text on FFmpeg's pipe, parsed;
    None, and ``notes`` says why, when that does not work."""
    try:
        ffmpeg = ffmpeg_binary(source, "read")
    except MediaError:
        notes.append(f"{name} was left out: ffmpeg is not installed (Debian package ffmpeg)")
        return None
    cmd = [ffmpeg, "-nostdin", "-v", "error", "-i", str(source.resolve()), "-map", stream, "-f", "srt", "pipe:1"]
    try:
        proc = subprocess.run(cmd, capture_output=True, timeout=EXTRACT_TIMEOUT, check=False)
    except subprocess.TimeoutExpired:
        notes.append(f"{name} was left out: reading it took over {EXTRACT_TIMEOUT:.0f} s")
        return None
    srt = proc.stdout.decode("utf-8", errors="replace")
    if proc.returncode != 0 or not srt.strip():
        notes.append(f"{name} was left out ({first_complaint(proc.stderr, default='it holds no cue')})")
        return None
    try:
        return parse_subtitles(srt, kind="srt", name=name)
    except MediaError as err:
        notes.append(f"{name} was left out ({err.problem})")
        return None


def embedded_subtitles(clip: str | Path, notes: list[str]) -> Subtitles | None:
    """The clip's first text subtitle track (a default-flagged one first), read; None when there is none,
    and then ``notes`` gets why a track that is there was not read."""
    clip = Path(clip)
    with open_media(clip) as container:
        tracks = sorted(container.streams.subtitles, key=lambda s: (not s.disposition & Disposition.default, s.index))
        found = [(s.index, s.codec_context.name if s.codec_context else "unknown") for s in tracks]
    if not found:
        return None
    text = [(i, codec) for i, codec in found if codec in TEXT_CODECS]
    if not text:
        notes.append(f"the clip's subtitle track is pictures ({found[0][1]}), not text: left out")
        return None
    index, codec = text[0]
    return as_srt(clip, f"0:{index}", f"{clip.name} (subtitle track {index}, {codec})", notes)


def find_subtitles(clip: str | Path, notes: list[str]) -> Subtitles | None:
    """The subtitles a player would show with ``clip``, read: the file beside it, else its own text track,
    else None. What was there but could not be read goes to ``notes``."""
    beside = sidecar_subtitles(clip)
    if beside is not None:
        try:
            return read_subtitles(beside)
        except MediaError as err:
            notes.append(f"the subtitles beside the clip were left out ({err})")
    return embedded_subtitles(clip, notes)
