"""An empty MIDI on a tempo map: what the arranged piece and the model's raw output are written into.

``pretty_midi`` builds files with a single tempo, so :func:`tempo_midi` sets its tick scales
(``_tick_scales``, the attribute its own reader fills from a file's tempo events) and rebuilds the
tick-to-time table; ``write()`` then emits one set-tempo event per change and places notes in ticks
on the bent grid, so a DAW shows the beats where the music has them.
"""

from __future__ import annotations

from collections.abc import Sequence

import pretty_midi

from analysis.errors import ParameterError

RESOLUTION = 480


def tempo_midi(
    tempo_map: Sequence[tuple[float, float]], end: float, *, beats_per_bar: int = 4, resolution: int = RESOLUTION
) -> pretty_midi.PrettyMIDI:
    """A PrettyMIDI with no instruments whose tempo follows ``tempo_map`` (``(start_s, bpm)`` pairs,
    the first at 0) up to ``end`` seconds, in ``beats_per_bar``/4."""
    first = tempo_map[0][1]
    pm = pretty_midi.PrettyMIDI(resolution=resolution, initial_tempo=first)
    scales: list[tuple[int, float]] = []
    tick, prev_t, prev_bpm = 0, 0.0, first
    for t, bpm in tempo_map:
        tick += round((t - prev_t) * prev_bpm / 60.0 * resolution)
        scales.append((tick, 60.0 / (bpm * resolution)))
        prev_t, prev_bpm = t, bpm
    pm._tick_scales = scales
    pm._update_tick_to_time(tick + round((end - prev_t + 1.0) * prev_bpm / 60.0 * resolution))
    pm.time_signature_changes.append(pretty_midi.TimeSignature(beats_per_bar, 4, 0.0))
    return pm


def check_holds_notes(notes: int, duration: float, bpm: float) -> None:
    """A :class:`ParameterError` naming ``duration`` when a piece shorter than one beat came out without a
    note: ``compose(arc, duration=0.002)`` returned an empty MIDI without a word (the rule source wrote
    none under about 0.04 s, the model none under about 0.01 s)."""
    beat = 60.0 / bpm
    if notes == 0 and duration < beat:
        raise ParameterError(f"`duration` is too short to hold a note: a beat lasts {beat:.2f} s at {bpm:.0f} bpm "
                             f"(received {duration:g} s)")
