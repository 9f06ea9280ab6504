"""The mix of a live session: the lead over the other parts as offline, and one level per target across styles.

Offline, :func:`composer.output.render.lead_boost` lifts the lead measured on the whole piece
and the piece is peak-normalised; live has neither the whole piece nor its peak. So a session
first plays a short trial (two bars at each of :data:`TRIAL_TARGETS`, on a
:class:`~composer.live.engine.LiveSynth` like its own, lead and the other parts rendered
apart) and takes from it:

* **balance**: the offline ``lead_boost`` of the trial, applied by *lowering* the other
  channels' volume (MIDI CC7) rather than raising the lead, since FluidSynth's 16-bit
  output could clip. Before, a west_african session's lead sat a median 10 dB under the
  rest (70 % of frames more than 6 dB under);
* **level**: one output gain that brings the trial's calm bars to :data:`CALM_LUFS`, at most
  :data:`MAX_LEVEL_DB` either way. Before, one calm target measured -30 LUFS in arabic_maqam
  and -40 in piano_solo. The neutral and intense bars are brought to :data:`TARGET_LUFS` too, by a
  gain relative to the calm one that the session follows by arousal (:meth:`Mix.level_at`): with
  the calm gain alone one intense target measured -11.6 LUFS in indian_raga and -19.4 in celtic
  (rules; -11.6 to -23.4 with the learned source). The gain is not held back by the trial's
  peak (it was, to 0.7, and a learned west_african session stayed 6 LU under the others): the
  session's output runs through a true-peak limiter
  (:class:`analysis.media.loudness.StreamLimiter`) instead, which also keeps targets louder
  than the trial's under -1 dBTP.

Both are set before the first note and never change; the level by arousal glides at each bar
(:data:`GLIDE_S`), so nothing steps at a chunk seam. A trial costs 0.3-0.7 s (rules, on a busy
2-core machine) and is kept per style, lead, source and SoundFont, so later sessions of the
kind start without one.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from analysis.media.loudness import integrated_loudness
from composer.live.engine import Channel, LiveSynth
from composer.live.planner import BarPlanner, HarmonicState
from composer.output.render import dc_blocked, lead_boost

#: Targets the trial plays, two bars each: calm first (the level is set on it), then neutral and intense.
TRIAL_TARGETS = ((0.5, -0.6), (0.0, 0.0), (-0.6, 0.8))
TRIAL_BARS = 2
#: Loudness the trial's calm, neutral and intense bars are brought to (LUFS): the middle of what the styles
#: measured before (calm, with no level gain); neutral -27.7 to -22.0 and intense -23.4 to -11.6 over the
#: rules and learned sources with the calm gain alone.
TARGET_LUFS = (-33.0, -26.0, -18.0)
CALM_LUFS = TARGET_LUFS[0]
#: How long the level takes to move to a new bar's (s): under a beat, and far over a sample.
GLIDE_S = 0.1
#: The most the level gain moves a session (dB).
MAX_LEVEL_DB = 12.0
#: Sample rate of the trial (the balance and loudness hardly depend on it; half of 44.1 kHz renders twice as fast).
TRIAL_RATE = 22050
#: FluidSynth's CC7 at power-on; its volume curve is 40 log10(cc / 127) dB.
DEFAULT_VOLUME = 100


@dataclass(frozen=True)
class Mix:
    """Per session: CC7 of the lead and of every other channel, the output gain at the calm target (linear),
    and ``levels``: (arousal, dB over ``gain``) of the trial's targets, by arousal."""

    lead_volume: int = DEFAULT_VOLUME
    bed_volume: int = DEFAULT_VOLUME
    gain: float = 1.0
    levels: tuple[tuple[float, float], ...] = ()

    def level_at(self, arousal: float) -> float:
        """The linear gain over ``gain`` for music planned at ``arousal`` (dB interpolated between the trial's
        targets, held beyond them)."""
        if not self.levels:
            return 1.0
        at, db = zip(*self.levels, strict=True)
        return float(10 ** (np.interp(arousal, at, db) / 20))


def volume_for(db: float) -> int:
    """The CC7 that plays ``db`` (<= 0) relative to :data:`DEFAULT_VOLUME` on FluidSynth's curve."""
    return int(np.clip(round(DEFAULT_VOLUME * 10 ** (db / 40)), 1, 127))


def _cc_db(volume: int) -> float:
    return 40 * math.log10(volume / DEFAULT_VOLUME)


_TrialNote = tuple[str, bool, tuple[float, float, int, int]]


def _trial_notes(planner: BarPlanner) -> tuple[list[_TrialNote], list[float]]:
    """``(role, is_drum, (on s, off s, pitch, velocity))`` of the trial's notes, and where each target's bars end."""
    notes: list[_TrialNote] = []
    state, bpm, start, ends = HarmonicState(valence=TRIAL_TARGETS[0][0]), None, 0.0, []
    index = 0
    for val, aro in TRIAL_TARGETS:
        for _ in range(TRIAL_BARS):
            bpm = planner.next_bpm(bpm, aro)
            bar = planner.plan(index, state, val, aro, bpm)
            for part in bar.parts:
                notes += [(part.name, part.is_drum, (start + n.start, start + n.end, n.pitch, n.velocity))
                          for n in part.notes]
            state, index, start = bar.state_after, index + 1, start + bar.duration
        ends.append(start)
    return notes, ends


def _render_trial(channels: tuple[Channel, ...], notes: list[_TrialNote], length: float, soundfont: Path,
                  sr: int, lead: bool) -> np.ndarray:
    """The trial's lead (``lead``) or all its other parts, at FluidSynth's default volume, DC-blocked as offline."""
    synth = LiveSynth(channels, soundfont=soundfont, sample_rate=sr)
    try:
        for i, ch in enumerate(channels):
            on = (ch.role == "lead") == lead
            synth.set_volume(i, DEFAULT_VOLUME if on else 0)
            mine = [(round(a * sr), round(b * sr), int(p), int(v)) for role, drum, (a, b, p, v) in notes
                    if (role == ch.role and not drum) or (drum and ch.is_drum)]
            synth.schedule(mine, i)
        return dc_blocked(synth.render(round((length + 1.0) * sr)), sr)
    finally:
        synth.close()


def measure_mix(planner: BarPlanner, channels: tuple[Channel, ...], soundfont: Path, sr: int = TRIAL_RATE) -> Mix:
    """The :class:`Mix` of a session of ``channels`` planned by ``planner``, from a trial render at ``sr`` Hz."""
    if not any(ch.role == "lead" for ch in channels) or len(channels) < 2:
        return Mix()
    notes, ends = _trial_notes(planner)
    lead = _render_trial(channels, notes, ends[-1], soundfont, sr, True)
    bed = _render_trial(channels, notes, ends[-1], soundfont, sr, False)
    # as offline (render._balanced): a lead that plays no note gets no boost (lead_boost reads silence as a
    # lead far under the rest, and the other channels would all go down by the most there is)
    played = any(role == "lead" for role, _, _ in notes)
    boost_db = 20 * math.log10(lead_boost(lead, bed, sr)) if played else 0.0
    bed_volume = volume_for(-boost_db)
    mix = lead + bed * np.float32(10 ** (_cc_db(bed_volume) / 20))
    level_db = []
    for want, lo, hi in zip(TARGET_LUFS, [0.0, *ends[:-1]], ends, strict=True):
        got = integrated_loudness(mix[round(lo * sr):round(hi * sr)], sr)
        level_db.append(float(np.clip(want - got, -MAX_LEVEL_DB, MAX_LEVEL_DB)) if math.isfinite(got) else 0.0)
    levels = tuple((aro, db - level_db[0]) for (_, aro), db in zip(TRIAL_TARGETS, level_db, strict=True))
    return Mix(DEFAULT_VOLUME, bed_volume, float(10 ** (level_db[0] / 20)), tuple(sorted(levels)))


#: Trial results by (style, lead program, source, SoundFont): one trial per kind of session.
_MIXES: dict[tuple, Mix] = {}
_MIXES_LOCK = threading.Lock()


def session_mix(key: tuple, planner: BarPlanner, channels: tuple[Channel, ...], soundfont: Path) -> Mix:
    """:func:`measure_mix`, remembered under ``key``."""
    with _MIXES_LOCK:
        known = _MIXES.get(key)
    if known is None:
        known = measure_mix(planner, channels, soundfont)
        with _MIXES_LOCK:
            _MIXES[key] = known
    return known


class LevelGlide:
    """A session's level by arousal over time (:meth:`Mix.level_at`): breakpoints (sample, linear gain), straight
    lines between them, held after the last."""

    def __init__(self, sample_rate: int) -> None:
        self._glide = max(1, round(GLIDE_S * sample_rate))
        self._at: list[int] = []
        self._gain: list[float] = []

    def value(self, sample: int) -> float:
        return float(np.interp(sample, self._at, self._gain)) if self._at else 1.0

    def move_to(self, sample: int, gain: float) -> None:
        """Glide to ``gain`` from ``sample`` on (what was planned from then is withdrawn); the first bar starts
        at it."""
        if not self._at:
            self._at, self._gain = [sample], [gain]
            return
        start = self.value(sample)
        self.cut_at(sample)
        if abs(gain - start) > 1e-9:
            self._at += [sample + self._glide]
            self._gain += [gain]

    def cut_at(self, sample: int) -> None:
        """Hold the level at ``sample`` from then on: breakpoints after it are dropped."""
        held = self.value(sample)
        keep = int(np.searchsorted(self._at, sample, side="left"))
        self._at, self._gain = [*self._at[:keep], sample], [*self._gain[:keep], held]

    def apply(self, audio: np.ndarray, position: int) -> np.ndarray:
        """``audio`` (frames from ``position`` on) times the level, in place (breakpoints before it are let go)."""
        keep = max(0, int(np.searchsorted(self._at, position, side="right")) - 1)
        self._at, self._gain = self._at[keep:], self._gain[keep:]
        if not self._at:
            return audio
        gliding = min(len(audio), max(0, self._at[-1] - position))  # frames before the last breakpoint
        if gliding:
            audio[:gliding] *= np.interp(np.arange(position, position + gliding), self._at, self._gain)[:, None]
        audio[gliding:] *= np.float32(self._gain[-1])
        return audio
