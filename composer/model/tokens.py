"""Event tokens for multi-instrument MIDI: the generator's vocabulary.

A piece becomes one stream of events in time order (midi-emotion / Oore et al. style):

==================  =====================================================================
token family        meaning
==================  =====================================================================
``PAD BOS EOS``     padding, start and end of a piece
``BAR``             a downbeat at the current time
``PROGRAM_p``       following note events belong to GM program ``p`` (0..127); ``p=128``
                    is the drum kit. Emitted only when the instrument changes.
``VELOCITY_b``      following note-ons use velocity bin ``b`` (``velocity_bins`` equal bins
                    over 0..127); emitted only when the bin changes
``NOTE_ON_k``       start pitch ``k`` (0..127) on the current instrument
``NOTE_OFF_k``      end pitch ``k`` on the current instrument
``SHIFT_n``         advance time by ``n * time_step`` seconds, ``n`` in 1..``max_shift``
                    (10 ms .. 1 s by default); longer gaps use several shifts
``CHORD_r_q``       the harmony changes here to root ``r`` (pitch class) and quality ``q``;
                    ``CHORD_N`` means no recognisable chord. Annotations only: decoding
                    reports their times as chord changes, they make no sound.
==================  =====================================================================

At one time step the order is BAR, CHORD, note-offs, note-ons, with note events grouped
by instrument so ``PROGRAM`` tokens stay rare. Notes on the ``time_step`` grid with
velocities at bin values survive MIDI -> tokens -> MIDI exactly.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pretty_midi

from analysis.errors import ParameterError

SPECIALS = ("PAD", "BOS", "EOS", "BAR")
PAD, BOS, EOS, BAR = range(4)
N_PROGRAMS = 129  # 128 GM programs + drums
DRUMS = 128
N_KEYS = 24  # keys of the plan condition: 12 tonics x (major, minor), index tonic + 12 * minor
ROOTS = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")


@dataclass(frozen=True)
class TokenizerConfig:
    """Resolution of the vocabulary; saved beside every checkpoint as JSON."""

    time_step: float = 0.01
    max_shift: int = 100
    velocity_bins: int = 32
    chord_qualities: tuple[str, ...] = ("maj", "min", "dim", "aug", "dom7")
    version: int = 1

    def __post_init__(self) -> None:
        if not 0.001 <= self.time_step <= 0.1:
            raise ParameterError(f"`time_step` must be within 0.001 and 0.1 s (received {self.time_step})")
        if not 1 <= self.max_shift <= 1000:
            raise ParameterError(f"`max_shift` must be within 1 and 1000 (received {self.max_shift})")
        if not 1 <= self.velocity_bins <= 128:
            raise ParameterError(f"`velocity_bins` must be within 1 and 128 (received {self.velocity_bins})")
        object.__setattr__(self, "chord_qualities", tuple(self.chord_qualities))

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_json(cls, text: str) -> TokenizerConfig:
        try:
            data = json.loads(text)
            return cls(**data)
        except (json.JSONDecodeError, TypeError) as err:
            raise ParameterError(f"not a tokenizer config: {err}") from err

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.to_json())

    @classmethod
    def load(cls, path: str | Path) -> TokenizerConfig:
        return cls.from_json(Path(path).read_text())


@dataclass(frozen=True, eq=False)
class Encoding:
    """Tokens of one piece and, per token, the time in seconds after it is read."""

    tokens: np.ndarray  # (n,) int32
    times: np.ndarray  # (n,) float32


@dataclass(frozen=True, eq=False)
class Decoded:
    """A token stream turned back into MIDI, with the annotations it carried."""

    midi: pretty_midi.PrettyMIDI
    chord_times: tuple[float, ...]
    chords: tuple[str, ...]
    bar_times: tuple[float, ...]
    duration: float


@dataclass(frozen=True)
class Tokenizer:
    """Encodes PrettyMIDI <-> token ids under a :class:`TokenizerConfig`."""

    config: TokenizerConfig = field(default_factory=TokenizerConfig)

    # ----------------------------------------------------------------- layout
    @property
    def program_offset(self) -> int:
        return len(SPECIALS)

    @property
    def velocity_offset(self) -> int:
        return self.program_offset + N_PROGRAMS

    @property
    def note_on_offset(self) -> int:
        return self.velocity_offset + self.config.velocity_bins

    @property
    def note_off_offset(self) -> int:
        return self.note_on_offset + 128

    @property
    def shift_offset(self) -> int:
        """Token ``shift_offset + n - 1`` advances time by ``n`` steps."""
        return self.note_off_offset + 128

    @property
    def chord_offset(self) -> int:
        return self.shift_offset + self.config.max_shift

    @property
    def n_chords(self) -> int:
        return 12 * len(self.config.chord_qualities) + 1  # last one is CHORD_N

    @property
    def vocab_size(self) -> int:
        return self.chord_offset + self.n_chords

    def chord_token(self, root: int | None, quality: str | None) -> int:
        """Token of a chord; ``root=None`` gives ``CHORD_N``."""
        if root is None or quality is None:
            return self.chord_offset + self.n_chords - 1
        q = self.config.chord_qualities.index(quality)
        return self.chord_offset + q * 12 + int(root) % 12

    def token_name(self, tok: int) -> str:
        """Readable name of one token id, e.g. ``NOTE_ON_60`` or ``CHORD_A_min``."""
        tok = int(tok)
        if 0 <= tok < len(SPECIALS):
            return SPECIALS[tok]
        for start, size, name in self._families():
            if start <= tok < start + size:
                i = tok - start
                if name == "PROGRAM":
                    return "PROGRAM_drums" if i == DRUMS else f"PROGRAM_{i}"
                if name == "SHIFT":
                    return f"SHIFT_{i + 1}"
                if name == "CHORD":
                    if i == self.n_chords - 1:
                        return "CHORD_N"
                    return f"CHORD_{ROOTS[i % 12]}_{self.config.chord_qualities[i // 12]}"
                return f"{name}_{i}"
        raise ParameterError(f"token id must be within 0 and {self.vocab_size - 1} (received {tok})")

    def _families(self) -> list[tuple[int, int, str]]:
        c = self.config
        return [
            (self.program_offset, N_PROGRAMS, "PROGRAM"),
            (self.velocity_offset, c.velocity_bins, "VELOCITY"),
            (self.note_on_offset, 128, "NOTE_ON"),
            (self.note_off_offset, 128, "NOTE_OFF"),
            (self.shift_offset, c.max_shift, "SHIFT"),
            (self.chord_offset, self.n_chords, "CHORD"),
        ]

    def velocity_bin(self, velocity: int) -> int:
        return min(self.config.velocity_bins - 1, int(velocity) * self.config.velocity_bins // 128)

    def bin_velocity(self, b: int) -> int:
        width = 128 // self.config.velocity_bins
        return max(1, min(127, int(b) * 128 // self.config.velocity_bins + width // 2))

    def is_shift(self, tok: int) -> bool:
        return self.shift_offset <= tok < self.chord_offset

    def is_chord(self, tok: int) -> bool:
        return self.chord_offset <= tok < self.vocab_size

    # ----------------------------------------------------------------- encode
    def encode(
        self,
        midi: pretty_midi.PrettyMIDI,
        *,
        chords: list[tuple[float, int]] | None = None,
        bar_times: np.ndarray | None = None,
        bos: bool = True,
        eos: bool = True,
    ) -> Encoding:
        """Tokens of ``midi``. ``chords`` are ``(time, chord token)`` pairs; ``bar_times``
        default to the MIDI's downbeats (within the notes' span)."""
        step = self.config.time_step
        q = lambda t: round(float(t) / step)  # noqa: E731
        events: list[tuple[int, int, int, int]] = []  # (time step, order, program key, token)
        end = 0
        for inst in midi.instruments:
            key = DRUMS if inst.is_drum else int(inst.program)
            seen: dict[tuple[int, int], int] = {}
            for note in inst.notes:
                s, e = q(note.start), q(note.end)
                e = max(e, s + 1)
                if seen.get((s, note.pitch), -1) >= e:
                    continue  # duplicate onset: keep the longest
                seen[(s, note.pitch)] = e
                v = self.velocity_bin(note.velocity)
                events.append((e, 2, key, self.note_off_offset + note.pitch))
                events.append((s, 3, key, -(v * 128 + note.pitch) - 1))  # velocity packed until emitted
                end = max(end, e)
        if bar_times is None:
            bar_times = midi.get_downbeats() if end else np.zeros(0)
        for t in bar_times:
            if q(t) <= end:
                events.append((q(t), 0, -1, BAR))
        for t, tok in chords or []:
            if not self.is_chord(tok):
                raise ParameterError(f"`chords` must hold chord tokens (received {tok})")
            if q(t) <= end:
                events.append((q(t), 1, -1, int(tok)))
        events.sort(key=lambda ev: (ev[0], ev[1], ev[2], ev[3] if ev[3] >= 0 else (-ev[3] - 1) % 128))
        tokens: list[int] = [BOS] if bos else []
        times: list[int] = [0] if bos else []
        now, program, vel_bin = 0, -1, -1
        for t, _, key, tok in events:
            while t > now:
                n = min(self.config.max_shift, t - now)
                now += n
                tokens.append(self.shift_offset + n - 1)
                times.append(now)
            if key >= 0 and key != program:
                program = key
                tokens.append(self.program_offset + key)
                times.append(now)
            if tok < 0:
                v, pitch = divmod(-tok - 1, 128)
                if v != vel_bin:
                    vel_bin = v
                    tokens.append(self.velocity_offset + v)
                    times.append(now)
                tok = self.note_on_offset + pitch
            tokens.append(tok)
            times.append(now)
        if eos:
            tokens.append(EOS)
            times.append(now)
        return Encoding(np.asarray(tokens, np.int32), np.asarray(times, np.float32) * np.float32(step))

    # ----------------------------------------------------------------- decode
    def decode(self, tokens: list[int] | np.ndarray) -> Decoded:
        """MIDI of a token stream; notes still sounding at the end are closed there."""
        step = self.config.time_step
        now, program, velocity = 0, 0, self.bin_velocity(self.config.velocity_bins // 2)
        active: dict[tuple[int, int], tuple[int, int]] = {}
        notes: dict[int, list[pretty_midi.Note]] = {}
        chord_times: list[float] = []
        chords: list[str] = []
        bars: list[float] = []

        def close(key: int, pitch: int) -> None:
            start, vel = active.pop((key, pitch))
            notes.setdefault(key, []).append(pretty_midi.Note(vel, pitch, start * step, max(now, start + 1) * step))

        for tok in (int(t) for t in tokens):
            if tok == EOS:
                break
            if tok == BAR:
                bars.append(now * step)
            elif self.is_shift(tok):
                now += tok - self.shift_offset + 1
            elif self.program_offset <= tok < self.velocity_offset:
                program = tok - self.program_offset
            elif self.velocity_offset <= tok < self.note_on_offset:
                velocity = self.bin_velocity(tok - self.velocity_offset)
            elif self.note_on_offset <= tok < self.note_off_offset:
                pitch = tok - self.note_on_offset
                if (program, pitch) in active:
                    close(program, pitch)
                active[(program, pitch)] = (now, velocity)
            elif self.note_off_offset <= tok < self.shift_offset:
                if (program, tok - self.note_off_offset) in active:
                    close(program, tok - self.note_off_offset)
            elif self.is_chord(tok):
                chord_times.append(now * step)
                chords.append(self.token_name(tok)[len("CHORD_") :])
        for key, pitch in list(active):
            close(key, pitch)
        pm = pretty_midi.PrettyMIDI(initial_tempo=120.0)
        for key in sorted(notes):
            inst = pretty_midi.Instrument(program=0 if key == DRUMS else key, is_drum=key == DRUMS)
            inst.notes = sorted(notes[key], key=lambda n: (n.start, n.pitch))
            pm.instruments.append(inst)
        return Decoded(pm, tuple(chord_times), tuple(chords), tuple(bars), now * step)
