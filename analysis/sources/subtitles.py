"""Subtitles source: the emotion of a user's .srt/.vtt cues, aligned to their timestamps.

The cues run through the same text-emotion path as the speech transcript
(:mod:`analysis.text.emotion`), so a subtitle file and speech recognition of the same
dialogue give comparable readings. Windows without a cue have confidence 0.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import numpy as np

from analysis.arc import grid
from analysis.sources.base import MediaStreams, SourceArc
from analysis.text.captions import Subtitles, read_subtitles
from analysis.text.emotion import Method, TextEmotion, align_to_grid, shared
from analysis.text.language import not_english

#: Why the source is off when there is no subtitle file at all (the page words it its own way).
NO_SUBTITLES = "no readable subtitles given or beside the clip"


class SubtitleSource:
    """Reads ``path`` (or ``media.subtitles`` when ``path`` is None) into a :class:`SourceArc`.

    Without any subtitle file every window has confidence 0: the source is simply silent.
    """

    name: ClassVar[str] = "subtitles"

    def __init__(self, path: str | Path | None = None, *, method: Method = "embedding") -> None:
        self.path = Path(path) if path is not None else None
        self.method = method
        self._text: TextEmotion | None = None  # loaded on first use: a clip may have no subtitles

    def _reader(self) -> TextEmotion:
        if self._text is None:
            self._text = shared(self.method)
        return self._text

    def read(self, subtitles: Subtitles, *, duration: float, hop: float) -> SourceArc:
        """The arc of already-parsed ``subtitles`` over ``duration`` seconds."""
        times = grid(duration, hop)
        cues = [c for c in subtitles.cues if c.text and c.start < duration]
        said = [c for c in subtitles.cues if c.text]
        if not said:
            return _silent(self.name, times, "the file holds no cue with text")
        if not cues:  # a whole film's subtitles for an excerpt, or times counted from a timecode such as 01:00:00
            return _silent(self.name, times, f"every cue starts after the clip ends (the first at "
                                             f"{_clock(said[0].start)}; the clip lasts {duration:.1f} s): "
                                             "are they the subtitles of this clip, timed from its start?")
        share = not_english(c.text for c in said)
        if share is not None:  # read as English, another language is noise with full confidence
            return _silent(self.name, times, f"not in English: only {share:.0%} of their words are common English "
                                             "ones, and the emotion reading reads English only")
        readings = self._reader().read([c.text for c in cues]) if cues else []
        w = align_to_grid(times, hop, [(c.start, c.end, r) for c, r in zip(cues, readings, strict=True)])
        return SourceArc(
            name=self.name,
            times=times,
            valence=w.valence,
            arousal=w.arousal,
            confidence=w.confidence,
            emotions=w.emotions,
            features={"coverage": w.coverage, "cue_count": np.full(times.size, float(len(cues)))},
        )

    def analyze(self, media: MediaStreams, *, hop: float) -> SourceArc:
        path = self.path or media.subtitles
        if path is None:
            return _silent(self.name, grid(media.duration, hop), NO_SUBTITLES)
        subs = path if isinstance(path, Subtitles) else read_subtitles(path)
        return self.read(subs, duration=media.duration, hop=hop)


def _silent(name: str, times: np.ndarray, why: str) -> SourceArc:
    zeros = np.zeros(times.size)
    return SourceArc(name, times, zeros, zeros.copy(), zeros.copy(), features={"coverage": zeros.copy()},
                     switched_off=why)


def _clock(seconds: float) -> str:
    """``seconds`` as a player shows a time: 1:02:03.5, 2:03.5."""
    h, rest = divmod(seconds, 3600)
    m, sec = divmod(rest, 60)
    return f"{int(h)}:{int(m):02d}:{sec:04.1f}" if h else f"{int(m)}:{sec:04.1f}"
