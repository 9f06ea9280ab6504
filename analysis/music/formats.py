"""The file types a music track may be, in one place: what ``analyze_track`` reads, what a library
folder scan picks up and what the page accepts as an upload are the same list.

A light module (no decoder imported), so the library and the page can name the types cheaply.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

#: Audio a track may be: libsndfile's formats (WAV, FLAC, Ogg, AIFF) and what only FFmpeg reads
#: (MP3, AAC/M4A/ALAC, Opus, WebM and Matroska audio as downloaders save it, WMA).
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".oga", ".aif", ".aiff", ".aifc", ".mp3", ".m4a", ".aac", ".opus",
                  ".webm", ".mka", ".wma")
#: Standard MIDI files.
MIDI_SUFFIXES = (".mid", ".midi")
#: Every suffix a track may have.
TRACK_SUFFIXES = frozenset(AUDIO_SUFFIXES + MIDI_SUFFIXES)
#: Audio decoded by PyAV (FFmpeg) first: libsndfile does not read these.
AV_FIRST = (".mp3", ".m4a", ".aac", ".opus", ".webm", ".mka", ".wma")


def header_frames(path: Path) -> int | None:
    """Sample frames a WAV or AIFF file's header announces (None: another format, or a length the header
    leaves open, as a WAV written while streaming does).

    libsndfile shortens these files' length to the bytes present without a word, so a download cut off
    part-way reads as a short track; comparing the frames read with this says it was cut.
    """
    with path.open("rb") as fh:
        head = fh.read(12)
        if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
            return _riff_frames(fh)
        if head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
            return _aiff_frames(fh)
    return None


def _chunks(fh: BinaryIO, endian: str) -> Iterator[tuple[bytes, int, int]]:
    """(id, size, position of the data) of each chunk from the file position on."""
    while len(h := fh.read(8)) == 8:
        size = struct.unpack(endian + "I", h[4:])[0]
        yield h[:4], size, fh.tell()
        fh.seek(size + (size & 1), os.SEEK_CUR)  # chunks are padded to an even size


def _riff_frames(fh: BinaryIO) -> int | None:
    block_align = 0
    for cid, size, _at in _chunks(fh, "<"):
        if cid == b"fmt " and size >= 14:
            block_align = struct.unpack("<H", fh.read(14)[12:14])[0]
            fh.seek(-14, os.SEEK_CUR)
        elif cid == b"data":
            open_ended = size in (0, 0xFFFFFFFF)  # streamed: the writer never came back to fill it in
            return None if open_ended or not block_align else size // block_align
    return None


def _aiff_frames(fh: BinaryIO) -> int | None:
    for cid, size, _at in _chunks(fh, ">"):
        if cid == b"COMM" and size >= 6:
            frames = struct.unpack(">I", fh.read(6)[2:6])[0]
            return frames or None
    return None
