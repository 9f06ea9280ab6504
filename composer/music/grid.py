"""A source's line put on the plan's metric grid: sixteenths or eighth triplets of each beat.

The learned source writes in its own time; where a chord starts off the beat (a cut the tempo map
could not bend onto one), it starts its rhythm there and keeps it, so a whole line can sit a fraction
of a beat late: 45 of 81 lead notes off any sixteenth or triplet after a cut at 0.2 s. A DAW then
shows every note off its grid, and the score's quantiser packs neighbours into one slot (chords in a
solo line). :func:`on_grid` moves each onset to the nearer of the two grids of its beat, chosen per
beat as the score writer chooses it, and keeps onsets on a cut, the sync points, where they are.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from composer.music.notes import Note

#: Onsets this close to a cut (seconds) stay on it.
CUT_TOLERANCE = 0.03
#: The shortest note a line keeps after its onsets moved (seconds).
MIN_NOTE = 0.05


def _beat_positions(times: np.ndarray, beats: np.ndarray) -> np.ndarray:
    """Seconds to beat positions (beat ``i`` at ``i``), straight on past the last beat."""
    step = beats[-1] - beats[-2]
    b = np.append(beats, beats[-1] + step)
    pos = np.interp(times, b, np.arange(b.size, dtype=float))
    past = times > b[-1]
    return np.where(past, b.size - 1 + (times - b[-1]) / step, pos)


def _seconds(pos: np.ndarray, beats: np.ndarray) -> np.ndarray:
    step = beats[-1] - beats[-2]
    b = np.append(beats, beats[-1] + step)
    return np.where(pos > b.size - 1, b[-1] + (pos - (b.size - 1)) * step, np.interp(pos, np.arange(b.size), b))


def on_grid(line: Sequence[Note], beats: Sequence[float], cuts: Sequence[float] = ()) -> tuple[Note, ...]:
    """``line`` (one voice) with its onsets on the grid of ``beats`` (seconds), each beat on sixteenths
    or triplets, whichever fits its onsets better; onsets on ``cuts`` stay. Notes that land on one
    onset become the longer one, and each note ends by the next one's start."""
    b = np.asarray(beats, float)
    if len(line) == 0 or b.size < 2:
        return tuple(line)
    starts = np.array([n.start for n in line])
    pos = _beat_positions(starts, b)
    beat = np.floor(pos).astype(int) - int(np.floor(pos.min()))
    err16 = np.abs(pos * 4 - np.round(pos * 4)) / 4
    err3 = np.abs(pos * 3 - np.round(pos * 3)) / 3
    tri = (np.bincount(beat, err3) < np.bincount(beat, err16) - 1e-9)[beat]
    moved = _seconds(np.where(tri, np.round(pos * 3) / 3, np.round(pos * 4) / 4), b)
    c = np.asarray(cuts, float)
    if c.size:
        keep = np.min(np.abs(starts[:, None] - c[None, :]), axis=1) <= CUT_TOLERANCE
        moved = np.where(keep, starts, moved)
    by_onset: dict[float, Note] = {}
    for n, t in zip(line, moved, strict=True):
        at = round(float(t), 6)
        note = Note(at, max(n.end, at + MIN_NOTE), n.pitch, n.velocity)
        held = by_onset.get(at)
        if held is None or note.end - note.start > held.end - held.start:
            by_onset[at] = note
    notes = [by_onset[k] for k in sorted(by_onset)]
    return tuple(Note(n.start, min(n.end, nxt.start) if nxt else n.end, n.pitch, n.velocity)
                 for n, nxt in zip(notes, [*notes[1:], None], strict=True))
