"""The library's own copies of tracks added by upload, content-addressed beside the database.

A file uploaded through the page arrives in a temporary folder that the web server
empties; cataloguing that path left a track that still ranked but could no longer be
played after a restart. :func:`import_track` copies the bytes first, to
``<storage>/<first two hex digits>/<sha256><suffix>``, and catalogues the copy. The
same bytes uploaded again are a duplicate: nothing is copied or analysed, and the
caller is told. A catalogued track whose file has vanished (an upload catalogued
before this module existed) gets its bytes back from the new upload.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from analysis.errors import MediaError, ParameterError
from analysis.media.hashing import content_hash
from analysis.music.filetags import read_tags
from analysis.music.formats import MIDI_SUFFIXES, TRACK_SUFFIXES
from matching.library.records import TrackRecord

#: Suffixes an upload may have (what ``Library.add_folder`` indexes).
UPLOAD_SUFFIXES = TRACK_SUFFIXES


def default_storage(library: Any) -> Path | None:
    """``<folder of the database>/<database stem>-files`` for an SQLite file; None for a server or memory."""
    url = str(getattr(library, "url", library))
    if url.startswith("sqlite:///"):
        url = url[len("sqlite:///"):]
    elif "://" in url:
        return None
    if not url or ":memory:" in url:
        return None
    db = Path(url).expanduser()
    return db.parent / f"{db.stem}-files"


def _copy_in(src: Path, dest: Path) -> None:
    """Copy ``src`` to ``dest`` atomically (a crash leaves no half-written track)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=".part-")
    os.close(fd)
    try:
        shutil.copyfile(src, tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def track_seconds(path: Path, limit: float) -> float:
    """Seconds of music in ``path``, measured without decoding or rendering, and refused past ``limit``.

    A few bytes can hold hours: a MIDI note held for ten hours is 71 bytes, and ten hours of
    FLAC silence a few MB, yet hearing either (rendered or decoded whole) takes gigabytes. MIDI
    is measured by its parsed end time; audio by its packets (what the header claims is ignored),
    stopping once past ``limit``.
    """
    if path.suffix.lower() in MIDI_SUFFIXES:
        import pretty_midi

        try:
            seconds = float(pretty_midi.PrettyMIDI(str(path)).get_end_time())
        except Exception as err:  # pretty_midi raises anything on a broken file
            raise MediaError(path.name, f"is not a readable MIDI file ({type(err).__name__})") from None
    else:
        seconds = _audio_packet_seconds(path, limit)
    if seconds > limit:
        raise MediaError(path.name, f"lasts more than {limit:.0f} s (the limit for an added track)")
    return seconds


def _audio_packet_seconds(path: Path, limit: float) -> float:
    """Seconds of ``path``'s first audio stream by its packets, counted until past ``limit``; the file is
    opened by :func:`~analysis.media.probe.open_media` (a file, not empty, reads that time out)."""
    import av

    from analysis.media.probe import open_media

    try:
        opened = open_media(path)
    except MediaError:  # its sentence speaks of a video file, and of the path, not the upload's name
        raise MediaError(path.name, "is not a readable audio file") from None
    try:
        with opened as container:
            if not container.streams.audio:
                raise MediaError(path.name, "has no audio stream")
            stream = container.streams.audio[0]
            seconds = 0.0
            for packet in container.demux(stream):
                if packet.duration and packet.time_base:
                    seconds += float(packet.duration * packet.time_base)
                if seconds > limit:
                    break
            return seconds
    except (av.error.FFmpegError, OSError, ValueError):
        raise MediaError(path.name, "is not a readable audio file") from None


def import_track(
    library: Any,
    path: str | Path,
    *,
    storage: str | Path,
    title: str | None = None,
    tags: Sequence[str] = (),
    max_seconds: float | None = None,
) -> tuple[TrackRecord, bool]:
    """Copy ``path`` into ``storage`` and catalogue the copy; returns (record, newly added).

    ``library`` is a :class:`matching.Library`. A file whose bytes are already catalogued
    returns the existing record and ``False``. ``max_seconds`` refuses a longer track before
    anything is copied or analysed (:func:`track_seconds`).
    """
    src = Path(path)
    suffix = src.suffix.lower()
    if suffix not in UPLOAD_SUFFIXES:
        raise MediaError(src.name, f"is not an audio or MIDI file (suffix {suffix or 'none'!r}; "
                                   f"accepted: {', '.join(sorted(UPLOAD_SUFFIXES))})")
    if max_seconds is not None:
        track_seconds(src, max_seconds)
    checksum = content_hash(src)
    dest = Path(storage) / checksum[:2] / f"{checksum}{suffix}"
    existing = library.by_checksum(checksum)
    if existing is not None:
        if not Path(existing.path).is_file():  # its file is gone: keep these bytes for it
            _copy_in(src, dest)
            existing = library.relocate(existing.id, dest)
        return existing, False
    if not dest.is_file():
        _copy_in(src, dest)
    try:
        # Two visitors adding the same bytes at once: the second finds the first's record, and hears so.
        if title is None:  # the stored copy is named by its bytes: the upload's own tag, else its name
            title = read_tags(src).title or src.stem
        return library.add_new(dest, title=title, tags=tags)
    except BaseException:
        if library.by_checksum(checksum) is None:  # analysis failed: keep no orphan bytes (nobody's record)
            dest.unlink(missing_ok=True)
        raise


def check_storage(storage: str | Path | None) -> Path:
    if storage is None:
        raise ParameterError("`storage` is needed for a library that is not an SQLite file (received None)")
    return Path(storage)


__all__ = ["UPLOAD_SUFFIXES", "check_storage", "default_storage", "import_track", "track_seconds"]
