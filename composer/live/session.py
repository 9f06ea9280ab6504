"""``LiveComposer``: music that follows a valence/arousal target set at any moment, rendered in chunks.

The piece never restarts. Bars are planned ahead (:mod:`composer.live.planner`) for the
target of the moment and scheduled on one persistent synthesiser
(:mod:`composer.live.engine`). :meth:`LiveComposer.update` with a target that differs
noticeably from the one the planned music follows (by ``TURN_THRESHOLD`` on either
axis, or a change of mood) withdraws everything planned from the next beat on and
replans the current bar from that beat: texture, dynamics and harmony turn within a
beat (at most 1 s at the slowest tempo), and the tempo glides over the next bars.
Smaller changes are taken up by the next bar planned.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from dataclasses import dataclass
from numbers import Real
from pathlib import Path

import numpy as np
import pretty_midi

from analysis.errors import ParameterError, check_seed
from analysis.media.loudness import StreamLimiter
from analysis.media.synth import soundfont_path
from composer.live.balance import LevelGlide, Mix, session_mix
from composer.live.engine import Channel, LiveSynth
from composer.live.planner import Bar, BarPlanner, HarmonicState, bar_mood
from composer.music.arranger import Part
from composer.music.harmony import HarmonyPlan
from composer.music.notes import Note, NoteSource
from composer.music.sources import get_source
from composer.music.styles import Style, get_style, resolve_instrument
from composer.output.piece import build_midi

TURN_THRESHOLD = 0.2  # change of valence or arousal that replans from the next beat
MOOD_MARGIN = 0.05  # a smaller move across a mood's border replans from the next beat only this far past it
LOOKAHEAD_S = 0.5  # music is planned at least this far past the end of each chunk
MAX_CHUNK_S = 600.0
ROLES = ("lead", "pad", "bass", "arpeggio", "counter", "ostinato", "brass")


@dataclass(frozen=True)
class _Placed:
    """A bar placed on the timeline: where it starts, and what it was planned from."""

    start: float
    state_before: HarmonicState
    target: tuple[float, float]
    bar: Bar

    @property
    def end(self) -> float:
        return self.start + self.bar.duration


def _check_va(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, Real):
        raise ParameterError(f"`{name}` must be a number within -1 and 1 (received {value!r})")
    v = float(value)
    if not math.isfinite(v) or not -1.0 <= v <= 1.0:
        raise ParameterError(f"`{name}` must be within -1 and 1 (received {value!r})")
    return v


def _channels(style: Style, lead: int) -> tuple[Channel, ...]:
    programs = {"lead": lead, "pad": style.pad, "bass": style.bass, "arpeggio": style.arp,
                "counter": style.counter, "ostinato": style.ostinato, "brass": style.brass}
    out, chan = [], 0
    for role in ROLES:
        if programs[role] is None:
            continue
        chan += chan == 9  # channel 9 is percussion
        out.append(Channel(role, chan, int(programs[role]), tie=role == "pad"))
        chan += 1
    if style.drums:
        out.append(Channel("drums", 9, 0, is_drum=True))
    return tuple(out)


class LiveComposer:
    """A live score: ``update()`` the target at any time, ``render_next()`` the audio, ``midi_so_far()``.

    ``style`` is one of :data:`composer.music.styles.STYLES`; ``instrument`` (GM name or
    number) plays the lead (default the style's); ``source`` is ``"rules"`` (default),
    ``"learned"`` or ``"auto"`` (as in :func:`composer.compose`). The learned model samples
    each bar afresh; with one torch thread that costs ~0.2 s of compute per 2 s bar, which
    leaves less headroom for real time than the rules (``bench/bench_live.py``). Audio is
    stereo float32 ``(n, 2)`` at :attr:`sample_rate`, its true peak at or under -1 dBTP (a
    stream limiter, 1.6 ms behind the synthesiser at 44.1 kHz). Thread-safe: one thread may
    render while another updates.
    """

    def __init__(
        self,
        style: str | Style = "cinematic",
        seed: int = 0,
        instrument: str | int | None = None,
        *,
        source: str | NoteSource = "rules",
        valence: float = 0.0,
        arousal: float = 0.0,
        sample_rate: int = 44100,
        soundfont: str | Path | None = None,
    ) -> None:
        seed = check_seed(seed)
        rate_ok = isinstance(sample_rate, int | np.integer) and not isinstance(sample_rate, bool)
        if not (rate_ok and 8000 <= sample_rate <= 96000):
            raise ParameterError(f"`sample_rate` must be an integer within 8000 and 96000 (received {sample_rate!r})")
        self.style = get_style(style)
        self.instrument = self.style.lead if instrument is None else resolve_instrument(instrument)
        self.seed = seed
        self.sample_rate = int(sample_rate)  # np.int64(44100) was refused as not an integer
        self._target = (_check_va("valence", valence), _check_va("arousal", arousal))
        self._planner = BarPlanner(self.style, get_source(source), self.instrument, self.seed)
        self.source = self._planner.source.name
        channels = _channels(self.style, self.instrument)
        self._role_of = {c.role: i for i, c in enumerate(channels)}
        font = soundfont_path(soundfont)
        self._synth = LiveSynth(channels, soundfont=font, sample_rate=self.sample_rate)
        self._mix = self._balance(channels, font)
        self._level = LevelGlide(self.sample_rate)  # the level by arousal, bar by bar (Mix.level_at)
        self._limiter = StreamLimiter(self.sample_rate, 2)  # the level gain may lift peaks past -1 dBTP: bend them
        self._closed = False
        self._lock = threading.RLock()
        self._bars: deque[_Placed] = deque()  # planned bars not yet fully played (and the one playing)
        self._next_index, self._next_start = 0, 0.0
        self._state, self._bpm = HarmonicState(valence=self._target[0]), None
        self._tempo: list[tuple[float, float]] = []
        self._chords: list[tuple[float, str, str]] = []
        self._requested = 0.0  # seconds asked for so far

    # ------------------------------------------------------------------ public API
    @property
    def time(self) -> float:
        """Seconds of audio rendered so far."""
        return self._synth.position / self.sample_rate

    @property
    def target(self) -> tuple[float, float]:
        return self._target

    @property
    def chords_so_far(self) -> tuple[tuple[float, str, str], ...]:
        """(time s, chord symbol, mood) of every chord planned up to now and just ahead."""
        with self._lock:
            return tuple(self._chords)

    def update(self, valence: float, arousal: float) -> None:
        """Set the target; a noticeable change turns the music at the next beat."""
        self._check_open()
        target = (_check_va("valence", valence), _check_va("arousal", arousal))
        with self._lock:
            self._check_open()  # close() from another thread may have come in between
            self._target = target
            now = self.time
            current = next((p for p in self._bars if p.start <= now < p.end), None)
            if current is None:
                return
            beat = current.bar.duration / 4
            turn = current.start + math.ceil((now - current.start) / beat - 1e-9) * beat
            # only what would be replanned counts: a bar that ends at the turn plays on as planned
            if not any(self._differs(p, target) for p in self._bars if p.end > turn + 1e-9):
                return
            self._withdraw(turn)
            if self._bars and self._bars[-1] is current and turn < current.end - 1e-9:
                self._bars.pop()  # replan the rest of this bar from the next beat
                self._state, self._next_index, self._next_start = current.state_before, current.bar.index, current.start
                self._place(current.bar.bpm, keep_from=turn)

    def render_next(self, seconds: float) -> np.ndarray:
        """The next ``seconds`` of audio, stereo float32 ``(n, 2)``."""
        self._check_open()
        if isinstance(seconds, bool) or not isinstance(seconds, Real) or not math.isfinite(float(seconds)):
            raise ParameterError(f"`seconds` must be a finite number of seconds (received {seconds!r})")
        if not 0 <= float(seconds) <= MAX_CHUNK_S:
            raise ParameterError(f"`seconds` must be within 0 and {MAX_CHUNK_S:.0f} (received {seconds!r})")
        with self._lock:
            self._check_open()  # close() from another thread may have come in between
            self._requested += float(seconds)  # chunk lengths add up exactly: no drift from rounding
            n = max(0, round(self._requested * self.sample_rate) - self._synth.position)
            end_s = (self._synth.position + n) / self.sample_rate
            while self._next_start < end_s + LOOKAHEAD_S:
                self._place(None)
            pos = self._synth.position
            audio = self._limiter.process(self._level.apply(self._synth.render(n), pos))
            while self._bars and self._bars[0].end <= self.time and len(self._bars) > 1:
                self._bars.popleft()
            return audio

    def midi_so_far(self) -> pretty_midi.PrettyMIDI:
        """Everything played so far (notes still sounding end now), with the tempo map."""
        with self._lock:
            rec = self._synth.record
            rows = [(rec.role[i], rec.start[i], rec.end[i], rec.pitch[i], rec.velocity[i]) for i in range(len(rec))]
            rows += self._synth.sounding_notes()
            now = max(self.time, 1e-3)
            # the tempo of bars planned ahead is not played yet (it put a tempo change past the last note)
            tempo = tuple(t for t in self._tempo if t[0] < now) or ((0.0, self._bpm or 120.0),)
        parts = []
        for i, ch in enumerate(self._synth.channels):
            notes = tuple(Note(s, max(e, s + 1e-3), p, v) for r, s, e, p, v in rows if r == i)
            parts.append(Part(ch.role, ch.program, ch.is_drum, tuple(sorted(notes, key=lambda n: n.start))))
        summary = HarmonyPlan(
            duration=now, tonic=self.style.tonic % 12, style=self.style.name, base_tempo=tempo[0][1],
            tempo_map=tempo, beats=np.empty(0), downbeats=np.empty(0), chords=(), cuts=(), cut_shifts=(),
            phrases=(0.0,),
        )
        return build_midi(tuple(parts), summary)

    def close(self) -> None:
        """Release the synthesiser (also done when the object is collected). Nothing more can be played.

        From another thread, it waits for a chunk being rendered to finish (it deleted the synthesiser under
        it, and the process died of a segmentation fault)."""
        with self._lock:
            self._closed = True
            self._synth.close()

    def _check_open(self) -> None:
        if self._closed:
            raise ParameterError("this live session is closed: start another LiveComposer to play on")

    def __del__(self) -> None:
        synth = getattr(self, "_synth", None)
        if synth is not None:
            synth.close()

    # ------------------------------------------------------------------ internals
    def _balance(self, channels: tuple[Channel, ...], font: Path) -> Mix:
        """The lead over the rest and the level of the style, from a trial (:mod:`composer.live.balance`)."""
        trial = BarPlanner(self.style, self._planner.source, self.instrument, 0)
        key = (repr(self.style), self.instrument, self.source, str(font))  # a Style holds dicts: not hashable
        mix = session_mix(key, trial, channels, font)
        for i, ch in enumerate(channels):
            self._synth.set_volume(i, mix.lead_volume if ch.role == "lead" else mix.bed_volume)
        self._synth.output_gain = mix.gain
        return mix

    @staticmethod
    def _differs(placed: _Placed, target: tuple[float, float]) -> bool:
        """Whether ``target`` would plan ``placed`` noticeably differently: by ``TURN_THRESHOLD`` on an axis, or in
        another mood from the same state, by ``MOOD_MARGIN`` past its border (the same target sent again never
        differs: it replanned the bar at each call, 50 times a second from a game loop, and struck held notes
        again; nor does a valence that jitters across a border: -0.5 +- 0.02 replanned 25 times a second)."""
        planned, state = placed.target, placed.state_before
        if max(abs(planned[0] - target[0]), abs(planned[1] - target[1])) >= TURN_THRESHOLD:
            return True
        mood = bar_mood(state, planned[0])
        back = math.copysign(MOOD_MARGIN, planned[0] - target[0])  # the target moved back toward the plan
        return bar_mood(state, target[0]) != mood and bar_mood(state, target[0] + back) != mood

    def _withdraw(self, turn: float) -> None:
        """Drop what is planned from ``turn`` on: notes, bars starting then or later, tempo and chord entries."""
        self._synth.cut_at(round(turn * self.sample_rate))
        self._level.cut_at(max(round(turn * self.sample_rate), self._synth.position))
        while self._bars and self._bars[-1].start >= turn - 1e-9:
            dropped = self._bars.pop()
            self._state, self._next_index, self._next_start = dropped.state_before, dropped.bar.index, dropped.start
        self._tempo = [t for t in self._tempo if t[0] < turn - 1e-9]
        self._bpm = self._tempo[-1][1] if self._tempo else None
        self._chords = [c for c in self._chords if c[0] < turn - 1e-9]

    def _place(self, bpm: float | None, *, keep_from: float | None = None) -> None:
        """Plan the next bar for the current target and schedule its notes (from ``keep_from`` when replanning)."""
        val, aro = self._target
        if bpm is None:
            bpm = self._planner.next_bpm(self._bpm, aro)
        bar = self._planner.plan(self._next_index, self._state, val, aro, bpm)
        start = self._next_start
        placed = _Placed(start=start, state_before=self._state, target=self._target, bar=bar)
        self._bars.append(placed)
        self._state, self._next_index, self._next_start = bar.state_after, bar.index + 1, placed.end
        if not self._tempo or abs(self._tempo[-1][1] - bpm) > 1e-6:
            self._tempo.append((start, bpm))
        self._bpm = bpm
        cut = keep_from if keep_from is not None else start
        self._level.move_to(max(round(cut * self.sample_rate), self._synth.position), self._mix.level_at(aro))
        for c in bar.chords:
            at = max(start + c.start, cut)
            if start + c.end > cut + 1e-9 and not (at == cut and self._chords and self._chords[-1][1] == c.symbol):
                self._chords.append((at, c.symbol, c.mood))
        min_left = 0.5 * bar.duration / 4  # a note cut by the turn is struck again only with half a beat left
        sr = self.sample_rate
        for part in bar.parts:
            role = self._role_of.get("drums" if part.is_drum else part.name)
            if role is None:
                continue
            notes = []
            for n in part.notes:
                on, off = start + n.start, start + n.end
                if on < cut - 1e-9:
                    if off - cut < min_left:
                        continue
                    on = cut
                notes.append((round(on * sr), round(off * sr), int(n.pitch), int(n.velocity)))
            self._synth.schedule(notes, role)
