"""Bar-by-bar planning for live scoring: one bar of harmony, melody and arrangement at a time.

Where :func:`composer.music.harmony.plan_harmony` fixes a whole piece before a note is
written, live scoring cannot know the future arc. :class:`BarPlanner` therefore keeps a
small harmonic state across bars (the chord that sounds, how long it has been held, its
slot in a four-chord phrase) and, for each bar, builds a one-bar
:class:`~composer.music.harmony.HarmonyPlan` for the current target, asks the note
source for the lead line and hands both to the same arranger as :func:`composer.compose`.

Rules (the harmony planner's, read per bar rather than per piece):

* **Mode** from valence with hysteresis: ``bright`` at +0.15 and above, ``dark`` at
  -0.15 and below, ``tense`` below -0.5 or when valence fell by more than 0.3 since the
  last bar into negative ground; in between the previous mood holds.
* **Harmonic rhythm** from arousal (plus the style's texture bias): a chord lasts 8 beats
  when calm, 4 in between, 2 when intense; a change of mood always starts a new chord.
* **Chords** follow the planner's functional cycle (tonic, free, pre-dominant, dominant)
  with its degree weights, sevenths and ninths; a new chord never repeats the last one.
* **Tempo** from arousal (:func:`composer.music.harmony.base_tempo`), gliding at most
  ``MAX_BPM_STEP`` per bar so the pulse never jumps.

Every random choice draws from a generator seeded by (seed, bar, slot), so replanning a
bar for a new target keeps the chords that the new target does not change.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from analysis.arc import EmotionArc
from composer.music.arranger import Part, arrange
from composer.music.harmony import (
    DEGREE_WEIGHTS,
    FUNCTIONS,
    HarmonyPlan,
    base_tempo,
    build_chord,
    chord_symbol,
)
from composer.music.notes import ChordSpan, MaterialRequest, NoteSource
from composer.music.styles import Style

BEATS_PER_BAR = 4
MAX_BPM_STEP = 12.0


@dataclass(frozen=True)
class HarmonicState:
    """What carries from one bar to the next: the sounding chord and the phrase position."""

    chord: ChordSpan | None = None
    held_beats: int = 0
    slot: int = 0  # position in the four-chord functional cycle; 0 = tonic
    valence: float = 0.0  # the last bar's valence (to hear a fall)


@dataclass(frozen=True, eq=False)
class Bar:
    """One planned bar: parts with times relative to the bar's start, and the state after it."""

    index: int
    bpm: float
    duration: float
    parts: tuple[Part, ...]
    chords: tuple[ChordSpan, ...]
    state_after: HarmonicState


def choose_mood(valence: float, previous: str | None, fallen: bool) -> str:
    """The mood of a chord from valence, with hysteresis between -0.15 and +0.15."""
    if valence < -0.5 or (fallen and valence < 0.0):
        return "tense"
    if valence >= 0.15:
        return "bright"
    if valence <= -0.15:
        return "dark"
    return previous if previous in ("bright", "dark") else ("bright" if valence >= 0 else "dark")


def bar_mood(state: HarmonicState, valence: float) -> str:
    """The mood of a bar planned for ``valence`` after ``state`` (a fall of more than 0.3 into negative ground
    is heard as tense)."""
    prev = state.chord.mood if state.chord else None
    return choose_mood(valence, prev, valence - state.valence < -0.3)


def chord_every(arousal: float, style: Style) -> int:
    """Harmonic rhythm in beats: 8 calm, 4 in between, 2 intense."""
    a = arousal + style.texture_bias * 0.5
    return 8 if a < -0.35 else (4 if a < 0.3 else 2)


def pick_chord(style: Style, mood: str, slot: int, prev: ChordSpan | None, valence: float, arousal: float,
               rng: np.random.Generator) -> tuple[int, tuple[int, ...], tuple[int, ...], int]:
    """(root, pitches, scale, relative degree) of a new chord in ``mood`` at cycle ``slot``."""
    scale = style.scale(mood)
    n = len(scale)
    tonic_idx = scale.index(style.tonic % 12)
    weights = np.asarray(DEGREE_WEIGHTS[mood], float) if n == 7 else np.array([2.0] + [1.0] * (n - 1))
    thirds = np.array([(scale[(tonic_idx + d + 2) % n] - scale[(tonic_idx + d) % n]) % 12 for d in range(n)])
    if mood == "bright":
        weights = weights * np.where(thirds == 3, 1.0 - 0.8 * max(valence, 0.0), 1.0)
    else:
        weights = weights * np.where(thirds == 4, 1.0 - 0.6 * min(1.0, max(-valence, 0.0)), 1.0)
    allowed = FUNCTIONS[slot] if n == 7 else ((0,) if slot == 0 else tuple(range(n)))
    first = np.zeros(n)
    first[list(allowed)] = weights[list(allowed)] + (1.0 if slot == 0 else 0.0)

    def colour(rel: int) -> tuple[int, ...]:
        seventh = rel != 0 and (mood == "tense" or (arousal > 0.3 and mood != "bright"))
        ninth = mood == "bright" and valence > 0.4 and rel in (0, 3)
        return build_chord(scale, (tonic_idx + rel) % n, seventh=seventh, ninth=ninth)

    for attempt in (first, weights.copy(), np.ones(n)):
        w = attempt.copy()
        if prev is not None:
            for d in range(n):
                if scale[(tonic_idx + d) % n] == prev.root or set(colour(d)) == set(prev.pitches):
                    w[d] = 0.0  # a new chord must sound different
        if w.sum() > 0:
            break
    rel = int(rng.choice(n, p=w / w.sum()))
    return scale[(tonic_idx + rel) % n], colour(rel), scale, rel


class BarPlanner:
    """Plans bars for a target valence/arousal; one instance per live session."""

    def __init__(self, style: Style, source: NoteSource, lead_program: int, seed: int) -> None:
        self.style, self.source, self.lead_program, self.seed = style, source, lead_program, seed

    def next_bpm(self, previous: float | None, arousal: float) -> float:
        target = base_tempo(arousal, 0.0, self.style)
        if previous is None:
            return round(target, 1)
        return round(previous + float(np.clip(target - previous, -MAX_BPM_STEP, MAX_BPM_STEP)), 1)

    def _chords(self, index: int, state: HarmonicState, valence: float, arousal: float,
                beat: float) -> tuple[list[ChordSpan], HarmonicState]:
        every = chord_every(arousal, self.style)
        prev = state.chord
        mood = bar_mood(state, valence)
        spans: list[ChordSpan] = []
        held, slot = state.held_beats, state.slot
        for k in range(0, BEATS_PER_BAR, min(every, BEATS_PER_BAR)):
            start, end = k * beat, min(BEATS_PER_BAR, k + every) * beat
            keep = prev is not None and prev.mood == mood and held < every
            if keep:
                spans.append(replace(prev, start=start, end=end, cut=False))
                held += min(every, BEATS_PER_BAR)
                continue
            rng = np.random.default_rng([self.seed, index, k])
            root, pitches, scale, rel = pick_chord(self.style, mood, slot, prev, valence, arousal, rng)
            prev = ChordSpan(start=start, end=end, root=root, pitches=pitches, scale=scale,
                             symbol=chord_symbol(root, pitches), degree=rel, mood=mood)
            spans.append(prev)
            held, slot = min(every, BEATS_PER_BAR), (slot + 1) % 4
        return spans, HarmonicState(chord=prev, held_beats=held, slot=slot, valence=valence)

    def plan(self, index: int, state: HarmonicState, valence: float, arousal: float, bpm: float) -> Bar:
        """Bar ``index`` at ``bpm`` for the target (``valence``, ``arousal``), after ``state``."""
        beat = 60.0 / bpm
        duration = BEATS_PER_BAR * beat
        chords, after = self._chords(index, state, valence, arousal, beat)
        arc = EmotionArc(times=np.array([0.0, duration]), valence=np.full(2, valence), arousal=np.full(2, arousal))
        beats = np.arange(BEATS_PER_BAR) * beat
        plan = HarmonyPlan(
            duration=duration, tonic=self.style.tonic % 12, style=self.style.name, base_tempo=bpm,
            tempo_map=((0.0, bpm),), beats=beats, downbeats=beats[:1], chords=tuple(chords), cuts=(),
            cut_shifts=(), phrases=(0.0,),
        )
        bar_seed = int(self.seed) * 100_003 + index
        request = MaterialRequest(arc=arc, duration=duration, cuts=(), beats=beats, downbeats=plan.downbeats,
                                  chords=plan.chords, tonic=plan.tonic, seed=bar_seed)
        material = self.source.generate(request)
        parts = arrange(plan, material, arc=arc, style=self.style, lead_program=self.lead_program, seed=bar_seed)
        return Bar(index=index, bpm=bpm, duration=duration, parts=parts, chords=tuple(chords), state_after=after)
