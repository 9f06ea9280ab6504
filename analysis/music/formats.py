"""The file types a music track may be, in one place: what ``analyze_track`` reads, what a library
folder scan picks up and what the page accepts as an upload are the same list.

A light module (no decoder imported), so the library and the page can name the types cheaply.
"""

from __future__ import annotations

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
