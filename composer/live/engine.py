"""A persistent FluidSynth voice for live scoring: notes scheduled in samples, rendered chunk by chunk.

One :class:`fluidsynth.Synth` lives as long as its :class:`LiveSynth`, so a note struck
near the end of one chunk keeps sounding (and its reverb tail keeps ringing) into the
next; nothing is written to a file. Notes are scheduled by absolute sample index;
:meth:`LiveSynth.cut_at` withdraws everything planned from a sample on and shortens the
notes that would still sound then, which is how a change of target turns the music at
the next beat without restarting it.

Every note is recorded when it ends (role, start, end, pitch, velocity) in flat typed
arrays (21 bytes a note), so a long session's history stays compact.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from analysis.errors import MediaError
from analysis.media.synth import fluidsynth_module

#: FluidSynth settings for real time on one core: chorus off, and at most 64 voices (FluidSynth then
#: ends the oldest release tails first). Rendering speed depends mostly on the voices that sound;
#: with its default 256 voices an intense cinematic texture renders at ~5x real time, with 64 at ~15x.
SETTINGS = {"synth.chorus.active": 0, "synth.polyphony": 64}
TIE_S = 0.002  # a note starting this close to where the same key on the same channel ends continues it
#: ... if its velocity is within this of the held note's: a drone struck forte in an intense bar was tied
#: on through the calm bars after it (velocity 80 where they ask 38, 11 dB over the same calm target
#: played before it); a louder or softer note is struck again instead.
TIE_VELOCITY = 6


@dataclass(frozen=True)
class Channel:
    """One role (``"lead"``, ``"pad"``, ...) on a MIDI channel with a GM program; ``tie`` joins held notes."""

    role: str
    channel: int
    program: int
    is_drum: bool = False
    tie: bool = False


class NoteRecord:
    """Finished notes in typed arrays: role index, start and end (s), pitch, velocity."""

    def __init__(self) -> None:
        self.role, self.pitch, self.velocity = array("B"), array("B"), array("B")
        self.start, self.end = array("d"), array("d")

    def add(self, role: int, start: float, end: float, pitch: int, velocity: int) -> None:
        self.role.append(role)
        self.start.append(start)
        self.end.append(end)
        self.pitch.append(pitch)
        self.velocity.append(velocity)

    def __len__(self) -> int:
        return len(self.role)

    @property
    def nbytes(self) -> int:
        return sum(a.itemsize * len(a) for a in (self.role, self.start, self.end, self.pitch, self.velocity))


class LiveSynth:
    """FluidSynth with a note schedule; renders stereo float32 in chunks."""

    def __init__(self, channels: Sequence[Channel], *, soundfont: Path, sample_rate: int, gain: float = 0.6) -> None:
        """``soundfont`` is an existing file (:func:`analysis.media.synth.soundfont_path` checks it)."""
        fluidsynth = fluidsynth_module()
        self.sample_rate = int(sample_rate)
        self.channels = tuple(channels)
        self._synth = fluidsynth.Synth(gain=gain, samplerate=float(sample_rate), **SETTINGS)
        sfid = self._synth.sfload(str(soundfont))
        if sfid < 0:
            raise MediaError(soundfont, "FluidSynth could not load this SoundFont")
        for ch in self.channels:
            self._synth.program_select(ch.channel, sfid, 128 if ch.is_drum else 0, 0 if ch.is_drum else ch.program)
        # pending: [on, off, channel, pitch, velocity, role] by onset; sounding: (channel, pitch) -> same list
        self._pending: list[list[int]] = []
        self._sounding: dict[tuple[int, int], list[int]] = {}
        self.position = 0  # samples rendered so far
        self.record = NoteRecord()
        # output level (linear), set once before the first note (composer.live.balance); not FluidSynth's `gain`
        self.output_gain = 1.0

    def set_volume(self, role: int, volume: int) -> None:
        """Channel volume (MIDI CC7, 0-127; FluidSynth plays 40 log10(cc / 127) dB) of channel ``role``."""
        self._synth.cc(self.channels[role].channel, 7, int(volume))

    def schedule(self, notes: Sequence[tuple[int, int, int, int]], role: int) -> None:
        """Add ``(on_sample, off_sample, pitch, velocity)`` notes for channel ``role`` (index in ``channels``)."""
        ch = self.channels[role]
        for on, off, pitch, vel in notes:
            on = max(on, self.position)
            if off - on < 1:
                continue
            if ch.tie and self._extend(ch.channel, pitch, on, off, vel):
                continue
            self._pending.append([on, off, ch.channel, pitch, vel, role])
        self._pending.sort(key=lambda e: e[0])

    def _extend(self, channel: int, pitch: int, on: int, off: int, velocity: int) -> bool:
        """Lengthen a held note that ends where this one starts, at about its ``velocity`` (a tie), instead
        of striking again."""
        tol = round(TIE_S * self.sample_rate)
        held = self._sounding.get((channel, pitch))
        candidates = [held] if held is not None else []
        candidates += [e for e in self._pending if e[2] == channel and e[3] == pitch]
        for e in candidates:
            if abs(e[1] - on) <= tol and abs(e[4] - velocity) <= TIE_VELOCITY:
                e[1] = max(e[1], off)
                return True
        return False

    def cut_at(self, sample: int) -> None:
        """Withdraw notes starting at or after ``sample``; notes sounding then end there."""
        sample = max(sample, self.position)
        self._pending = [e for e in self._pending if e[0] < sample]
        for e in (*self._pending, *self._sounding.values()):
            e[1] = min(e[1], sample)

    def _off(self, key: tuple[int, int], at: int) -> None:
        e = self._sounding.pop(key)
        self._synth.noteoff(e[2], e[3])
        self.record.add(e[5], e[0] / self.sample_rate, at / self.sample_rate, e[3], e[4])

    def _events_at(self, t: int) -> None:
        for key in [k for k, e in self._sounding.items() if e[1] <= t]:
            self._off(key, t)
        while self._pending and self._pending[0][0] <= t:
            e = self._pending.pop(0)
            key = (e[2], e[3])
            if key in self._sounding:  # the same key again: end the old note first
                self._off(key, t)
            e[0] = t
            self._synth.noteon(e[2], e[3], e[4])
            self._sounding[key] = e

    def render(self, n: int) -> np.ndarray:
        """The next ``n`` frames as float32 ``(n, 2)``."""
        end = self.position + n
        out = np.empty((n, 2), np.float32)
        scale = np.float32(self.output_gain / 32768.0)
        filled = 0
        while True:
            next_on = self._pending[0][0] if self._pending else math.inf
            next_off = min((e[1] for e in self._sounding.values()), default=math.inf)
            t = int(min(next_on, next_off, end))
            if t > self.position:
                k = t - self.position
                block = np.asarray(self._synth.get_samples(k), np.int16).reshape(-1, 2)
                out[filled:filled + k] = block * scale
                filled += k
                self.position = t
            if t >= end:
                return out
            self._events_at(t)

    def sounding_notes(self) -> list[tuple[int, float, float, int, int]]:
        """Notes still held: (role, start s, now s, pitch, velocity)."""
        now = self.position / self.sample_rate
        return [(e[5], e[0] / self.sample_rate, now, e[3], e[4]) for e in self._sounding.values()]

    def close(self) -> None:
        synth, self._synth = getattr(self, "_synth", None), None
        if synth is not None:
            synth.delete()
