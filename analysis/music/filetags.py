"""A track's title and artist as its own file names them: ID3 (MP3), MP4 atoms (M4A), Vorbis comments
(FLAC, Ogg, Opus) and RIFF INFO (WAV), all read by FFmpeg through PyAV.

A studio's music folder is full of names like ``01 - cue_final_v3.mp3`` whose tags say the piece's
real title; the library shows the tag, and the file name where there is none.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

#: Longest title or artist kept (characters): a tag is free text and may be anything.
MAX_CHARS = 200


@dataclass(frozen=True)
class FileTags:
    """What a file's tags say (None: no such tag, or an empty one)."""

    title: str | None = None
    artist: str | None = None


def read_tags(path: str | Path) -> FileTags:
    """The ``title`` and ``artist`` tags of an audio file (the container's, else its first audio stream's,
    as Ogg keeps them); no tags for a file FFmpeg cannot open (the analysis says what is wrong with it)."""
    import av

    try:
        with av.open(str(path)) as container:
            found = {k.lower(): v for s in container.streams.audio[:1] for k, v in s.metadata.items()}
            found.update({k.lower(): v for k, v in container.metadata.items() if _clean(v)})
    except (av.error.FFmpegError, OSError, UnicodeDecodeError, ValueError):
        return FileTags()
    return FileTags(title=_clean(found.get("title")), artist=_clean(found.get("artist")))


def _clean(value: object) -> str | None:
    """One line of printable text, at most :data:`MAX_CHARS` long; None when nothing is left."""
    if not isinstance(value, str):
        return None
    text = " ".join("".join(c if c.isprintable() else " " for c in value).split())
    return text[:MAX_CHARS] or None
