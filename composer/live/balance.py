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
  and -40 in piano_solo. The gain is not held back by the trial's peak (it was, to 0.7, and a
  learned west_african session stayed 6 LU under the others): the session's output runs
  through a true-peak limiter (:class:`analysis.media.loudness.StreamLimiter`) instead, which
  also keeps targets louder than the trial's under -1 dBTP.

Both are set before the first note and never change, so nothing steps at a chunk seam and
the response to targets is untouched. A trial costs 0.3-0.7 s (rules, on a busy 2-core machine) and is
kept per style, lead, source and SoundFont, so later sessions of the kind start without one.
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
#: Loudness of the calm trial bars after the level gain (the middle of what the styles measured before).
CALM_LUFS = -33.0
#: The most the level gain moves a session (dB).
MAX_LEVEL_DB = 12.0
#: Sample rate of the trial (the balance and loudness hardly depend on it; half of 44.1 kHz renders twice as fast).
TRIAL_RATE = 22050
#: FluidSynth's CC7 at power-on; its volume curve is 40 log10(cc / 127) dB.
DEFAULT_VOLUME = 100


@dataclass(frozen=True)
class Mix:
    """Per session: CC7 of the lead and of every other channel, and the output gain (linear)."""

    lead_volume: int = DEFAULT_VOLUME
    bed_volume: int = DEFAULT_VOLUME
    gain: float = 1.0


def volume_for(db: float) -> int:
    """The CC7 that plays ``db`` (<= 0) relative to :data:`DEFAULT_VOLUME` on FluidSynth's curve."""
    return int(np.clip(round(DEFAULT_VOLUME * 10 ** (db / 40)), 1, 127))


def _cc_db(volume: int) -> float:
    return 40 * math.log10(volume / DEFAULT_VOLUME)


_TrialNote = tuple[str, bool, tuple[float, float, int, int]]


def _trial_notes(planner: BarPlanner) -> tuple[list[_TrialNote], float, float]:
    """``(role, is_drum, (on s, off s, pitch, velocity))`` of the trial's notes, its length and where calm ends."""
    notes: list[_TrialNote] = []
    state, bpm, start, calm_end = HarmonicState(valence=TRIAL_TARGETS[0][0]), None, 0.0, 0.0
    index = 0
    for k, (val, aro) in enumerate(TRIAL_TARGETS):
        for _ in range(TRIAL_BARS):
            bpm = planner.next_bpm(bpm, aro)
            bar = planner.plan(index, state, val, aro, bpm)
            for part in bar.parts:
                notes += [(part.name, part.is_drum, (start + n.start, start + n.end, n.pitch, n.velocity))
                          for n in part.notes]
            state, index, start = bar.state_after, index + 1, start + bar.duration
        if k == 0:
            calm_end = start
    return notes, start, calm_end


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
    notes, length, calm_end = _trial_notes(planner)
    lead = _render_trial(channels, notes, length, soundfont, sr, True)
    bed = _render_trial(channels, notes, length, soundfont, sr, False)
    # as offline (render._balanced): a lead that plays no note gets no boost (lead_boost reads silence as a
    # lead far under the rest, and the other channels would all go down by the most there is)
    played = any(role == "lead" for role, _, _ in notes)
    boost_db = 20 * math.log10(lead_boost(lead, bed, sr)) if played else 0.0
    bed_volume = volume_for(-boost_db)
    mix = lead + bed * np.float32(10 ** (_cc_db(bed_volume) / 20))
    calm = integrated_loudness(mix[: round(calm_end * sr)], sr)
    level_db = float(np.clip(CALM_LUFS - calm, -MAX_LEVEL_DB, MAX_LEVEL_DB)) if math.isfinite(calm) else 0.0
    return Mix(DEFAULT_VOLUME, bed_volume, float(10 ** (level_db / 20)))


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
