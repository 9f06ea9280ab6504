"""Harmony planner: tempo map, beats, phrases and a chord on every cut.

The plan is fixed before any note is written, so every note source and the arranger
share it:

* **Tempo** from mean arousal (60 bpm calm .. 130 bpm excited), plus up to 20 bpm for a
  high cut rate, times the style's ``tempo_scale``. **Tempo map**: between consecutive
  cuts the planner picks the whole number of beats nearest the base tempo and bends the
  tempo of that segment so the cut falls exactly on a beat, as long as the bend stays
  within ``MAX_BEND`` (12 %). A cut that would need more (two cuts a fraction of a beat
  apart) is left off the grid and its shift is reported; the chord still changes exactly
  on it. A constant tempo would land most cuts between beats; a bent map keeps the pulse
  within a tempo a listener hears as one, and DAWs read it from the MIDI file.
* **Harmonic rhythm** from local arousal: a chord every 8 beats when calm, 4 in between,
  2 when intense (halved again above 20 cuts per minute). Every cut starts a new chord
  that differs from the one before it and keeps at most one of its tones whenever a chord
  of the scale can (a root a third away keeps two and sounds like the same harmony going on;
  this outranks the phrase's functional slot, so a phrase that starts on a cut may start
  off the tonic). In a bright span a cut first draws a major chord that keeps no tone (IV -> V,
  V -> IV, ii -> I), then one that moves the bass by a fourth or fifth keeping one (I -> IV, V):
  the chords that keep no tone of a major tonic are ii and vii°, and a bright cue cut every few
  seconds read minor. A span that turns bright (from a dark or tense chord) opens on the tonic, or where
  the tonic would keep two tones at a cut, on another major chord (after Bbmaj7 in D the cut had drawn Em).
  A calm cut (arousal below ``CALM``) in a dark span moves among the minor chords (i -> iv, v), as the
  ``minor_cuts`` styles' do: a calm chord fills a key-reading window, and the chords keeping no tone
  of a minor chord are mostly major (i -> VII, iv -> III).
* **Phrases** start at the biggest turns of the (smoothed) arc; each phrase returns to
  the tonic; a chord takes its mode from valence (0.6 x its own + 0.4 x its phrase's
  mean): ``bright`` scale above +0.15, ``dark`` below -0.15, modal mixture in between
  (chords borrowed from the dark scale).
  Where valence falls steeply or is very low, chords come from the ``tense`` scale with
  sevenths (diminished, half-diminished and dominant colours); very positive spans get
  added ninths.
* **An ending**: the last chord is the tonic, in the mode valence gives it there, so the piece
  comes home as the clip ends (the render fades it out over its last second); when the chord
  before is the tonic already, it holds to the end. A last chord that starts on a cut follows
  the cut's rule first: it keeps its own chord when the tonic would repeat the chord before or
  share two of its tones (vi -> I goes on sounding like one harmony).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from analysis.arc import EmotionArc
from analysis.errors import ParameterError, check_seed, is_number
from composer.music.chords import PITCH_NAMES, build_chord, chord_symbol
from composer.music.notes import ChordSpan
from composer.music.styles import Style, get_style

MAX_BEND = 0.12
#: Weight factor of a dark or tense chord without a minor third in a gapped (pentatonic) scale: in G minor
#: pentatonic only G-Bb-D and D-F-C read minor (C-F-Bb reads F major, Bb-D-F Bb major), and a calm dark
#: West African cue that drew them evenly read major.
GAPPED_OFF_MODE = 0.1

#: Degree weights (scale index of the chord root) for 7-note scales, by mood.
DEGREE_WEIGHTS = {
    "bright": (0.24, 0.10, 0.05, 0.22, 0.21, 0.18, 0.0),
    "dark": (0.24, 0.03, 0.12, 0.20, 0.12, 0.16, 0.13),
    "tense": (0.22, 0.12, 0.02, 0.20, 0.20, 0.12, 0.12),
}

#: Allowed degrees by slot of the four-chord cycle in a phrase (7-note scales):
#: tonic; anything; pre-dominant (ii, IV, vi); dominant (V, vii).
FUNCTIONS = {0: (0,), 1: tuple(range(7)), 2: (1, 3, 5), 3: (4, 6)}


@dataclass(frozen=True, eq=False)
class HarmonyPlan:
    """The harmonic frame of a piece.

    ``tempo_map`` holds ``(time_s, bpm)`` pairs, first at 0; ``beats``/``downbeats`` are
    times in seconds; ``cut_shifts[i]`` is the nearest beat minus ``cuts[i]`` (0 where
    the map put a beat on the cut); ``phrases`` are phrase start times.
    """

    duration: float
    tonic: int
    style: str
    base_tempo: float
    tempo_map: tuple[tuple[float, float], ...]
    beats: np.ndarray
    downbeats: np.ndarray
    chords: tuple[ChordSpan, ...]
    cuts: tuple[float, ...]
    cut_shifts: tuple[float, ...]
    phrases: tuple[float, ...]

    @property
    def chord_times(self) -> tuple[float, ...]:
        return tuple(c.start for c in self.chords)

    def chord_at(self, t: float) -> ChordSpan:
        starts = [c.start for c in self.chords]
        return self.chords[max(0, int(np.searchsorted(starts, t, side="right")) - 1)]

    def to_dict(self) -> dict[str, Any]:
        r = lambda x: round(float(x), 4)  # noqa: E731
        return {
            "duration": r(self.duration),
            "tonic": PITCH_NAMES[self.tonic],
            "style": self.style,
            "base_tempo": r(self.base_tempo),
            "tempo_map": [[r(t), r(b)] for t, b in self.tempo_map],
            "cuts": [r(c) for c in self.cuts],
            "cut_shifts": [r(s) for s in self.cut_shifts],
            "phrases": [r(p) for p in self.phrases],
            "chords": [
                {"time": r(c.start), "symbol": c.symbol, "mood": c.mood, "cut": c.cut, "scale": list(c.scale)}
                for c in self.chords
            ],
        }


def key_sections(plan: HarmonyPlan, *, min_bars: int = 4) -> list[tuple[int, str]]:
    """``(first bar, "major" | "minor")`` of each stretch one key signature should hold.

    A bar (from one of ``plan.downbeats`` to the next) is major when its chords come mostly
    from the style's bright scale. A stretch shorter than ``min_bars`` joins the stretch before
    it (the first joins the next), so modal mixture within a phrase is written with
    accidentals and only a lasting turn, an arc going from grief to hope, changes the signature.
    """
    if len(plan.downbeats) == 0:  # no bar to read: the first chord's mode
        return [(0, "minor" if plan.chords and plan.chords[0].mood != "bright" else "major")]
    runs: list[list[Any]] = []  # [first bar, bars, mode]
    for bar, (a, b) in enumerate(zip(plan.downbeats, [*plan.downbeats[1:], plan.duration], strict=True)):
        bright = sum(max(0.0, min(b, c.end) - max(a, c.start)) for c in plan.chords if c.mood == "bright")
        mode = "major" if bright >= 0.5 * (b - a) else "minor"
        if runs and runs[-1][2] == mode:
            runs[-1][1] += 1
        else:
            runs.append([bar, 1, mode])
    while len(runs) > 1 and (short := next((i for i, r in enumerate(runs) if r[1] < min_bars), None)) is not None:
        keep = short - 1 if short > 0 else 1
        runs[keep][0] = min(runs[keep][0], runs[short][0])
        runs[keep][1] += runs.pop(short)[1]
        merged: list[list[Any]] = []
        for run in runs:  # neighbours of one mode become one stretch
            if merged and merged[-1][2] == run[2]:
                merged[-1][1] += run[1]
            else:
                merged.append(run)
        runs = merged
    return [(first, mode) for first, _, mode in runs]


def base_tempo(arousal: float, cuts_per_minute: float, style: Style) -> float:
    """Tempo (bpm) from mean arousal and cut rate, scaled by the style."""
    bpm = (60.0 + 35.0 * (float(np.clip(arousal, -1, 1)) + 1.0) + min(20.0, 0.4 * cuts_per_minute)) * style.tempo_scale
    return float(np.clip(bpm, 40.0, 180.0))


def tempo_map(
    cuts: Sequence[float], duration: float, bpm: float, *, max_bend: float = MAX_BEND
) -> tuple[tuple[tuple[float, float], ...], np.ndarray]:
    """Piecewise-constant tempo putting beats on cuts where a bend of ``max_bend`` allows.

    Returns the map ``((start_s, bpm), ...)`` and the beat times.
    """
    segments: list[tuple[float, float]] = []
    anchor = 0.0
    for c in cuts:
        gap = c - anchor
        n = round(gap * bpm / 60.0)
        if n >= 1 and abs(n * 60.0 / gap - bpm) / bpm <= max_bend:
            segments.append((anchor, n * 60.0 / gap))
            anchor = c
    segments.append((anchor, bpm))
    merged: list[tuple[float, float]] = []
    for t, b in segments:
        if merged and abs(merged[-1][1] - b) < 1e-6:
            continue
        merged.append((t, b))
    beats: list[float] = []
    ends = [t for t, _ in merged[1:]] + [duration]
    for (start, b), end in zip(merged, ends, strict=True):
        step = 60.0 / b
        k = np.arange(0, max(1, int(np.ceil((end - start) / step - 1e-6))))
        beats.extend(start + k * step)
    beat_arr = np.asarray(beats, float)
    beat_arr = beat_arr[beat_arr < duration - 1e-6]
    return tuple((round(t, 6), b) for t, b in merged), beat_arr


def phrase_starts(arc: EmotionArc, duration: float, *, every: float = 16.0) -> list[float]:
    """Phrase starts: 0 plus the biggest turns of the smoothed arc, at most one per ``every`` s."""
    if len(arc) < 5:
        return [0.0]
    k = max(1, round(2.0 / max(arc.hop, 1e-3)))
    kernel = np.ones(2 * k + 1) / (2 * k + 1)
    va = np.stack([np.convolve(np.pad(x, k, mode="edge"), kernel, "valid") for x in (arc.valence, arc.arousal)], 1)
    slope = np.gradient(va, arc.times, axis=0)
    turn = np.linalg.norm(np.gradient(slope, arc.times, axis=0), axis=1)
    n_max = int(duration // every)
    picked: list[float] = []
    for i in np.argsort(-turn):
        t = float(arc.times[i])
        if len(picked) >= n_max or turn[i] <= 1e-3:
            break
        if t < every / 2 or t > duration - every / 4 or any(abs(t - p) < every / 2 for p in picked):
            continue
        picked.append(t)
    return [0.0, *sorted(picked)]


def _chord(scale: Sequence[int], degree: int, rel_degree: int, mood: str, valence: float, arousal: float):
    """Chord colour: sevenths on tense (and intense non-bright) non-tonic chords, added
    ninths on bright tonic and subdominant chords when valence is high, if they have a perfect fifth
    (a Lydian scale's fourth degree is a diminished triad: with its ninth, a cluster of a minor
    second and two tritones held for a whole calm chord)."""
    seventh = rel_degree != 0 and (mood == "tense" or (arousal > 0.3 and mood != "bright"))
    triad = build_chord(scale, degree, seventh=False, ninth=False)
    fifth = len(triad) == 3 and (triad[2] - triad[0]) % 12 == 7
    ninth = mood == "bright" and valence > 0.4 and rel_degree in (0, 3) and fifth
    return build_chord(scale, degree, seventh=seventh, ninth=ninth)


@dataclass(frozen=True)
class _Contour:
    """The arc read at any time: arousal (shifted by the energy bias, clipped) and valence."""

    arc: EmotionArc
    bias: float

    def arousal(self, t: float) -> float:
        return float(np.clip(np.interp(t, self.arc.times, self.arc.arousal) + self.bias, -1, 1))

    def valence(self, t: float) -> float:
        return float(np.interp(t, self.arc.times, self.arc.valence))


def _check_plan(duration: float, tempo: float | None, energy: float | None, seed: int) -> None:
    if duration <= 0:
        raise ParameterError(f"`duration` must be positive (received {duration})")
    if tempo is not None and not (is_number(tempo) and 30 <= tempo <= 240):
        raise ParameterError(f"`tempo` must be within 30 and 240 bpm (received {tempo!r})")
    if energy is not None and not (is_number(energy) and -1 <= energy <= 1):
        raise ParameterError(f"`energy` must be within -1 and 1 (received {energy!r})")
    check_seed(seed)


#: Cuts this close (s) to the start or the end are part of the opening or the ending: a chord changed
#: 0.1 s in struck every part twice (a flam), and one 0.2 s before the end left the cue on a diminished
#: seventh inside its fade instead of its tonic.
EDGE = 0.3


def check_cuts(cuts: Sequence[float]) -> tuple[float, ...]:
    """``cuts`` as seconds, or a :class:`ParameterError` naming the argument: each a finite number, none
    negative (as the CLI's ``--cuts`` is checked). Cuts at or past the end are left to the caller to drop."""
    try:
        times = tuple(float(c) for c in cuts)
    except (TypeError, ValueError):
        raise ParameterError(f"`cuts` must be a sequence of seconds (received {cuts!r})") from None
    if not all(np.isfinite(times)):
        raise ParameterError(f"`cuts` must be finite seconds (received {list(cuts)})")
    if times and min(times) < 0:
        raise ParameterError(f"`cuts` must not be negative (received {min(times):g})")
    return times


def usable_cuts(cuts: Sequence[float], duration: float) -> list[float]:
    """The cuts a chord changes on: sorted, inside ``(EDGE, duration - EDGE)`` s, none within 50 ms
    of the one before. A cut that is not a finite, non-negative number is a :class:`ParameterError`."""
    clean: list[float] = []
    for c in sorted(check_cuts(cuts)):
        if EDGE < c < duration - EDGE and (not clean or c - clean[-1] > 0.05):
            clean.append(c)
    return clean


def beats_per_chord(arousal: float, cuts_per_minute: float) -> int:
    """Harmonic rhythm: a chord every 8 beats when calm, 4 in between, 2 when intense (halved
    again, to no fewer than 2, above 20 cuts per minute)."""
    every = 8 if arousal < -0.35 else (4 if arousal < 0.3 else 2)
    if cuts_per_minute > 20:
        every = max(2, every // 2)
    return every


def _chord_starts(
    beats: np.ndarray,
    phrases: Sequence[float],
    cuts: Sequence[float],
    *,
    duration: float,
    bpm: float,
    cuts_per_minute: float,
    contour: _Contour,
    style: Style,
) -> dict[float, str]:
    """Chord boundaries, each marked ``phrase``, ``cut`` or ``rhythm``: 0, every phrase start and
    cut, and beats by harmonic rhythm wherever no boundary lies within half a beat."""
    beat_len = 60.0 / bpm
    marks: dict[float, str] = {0.0: "phrase"}
    for p in phrases:
        marks.setdefault(p, "phrase")
    for c in cuts:
        marks[c] = "cut"
    anchors = np.asarray(sorted(marks))
    last = 0.0
    for b in beats[1:]:
        if b > duration - beat_len:
            break
        near = anchors[np.abs(anchors - b) < 0.5 * beat_len]
        passed = anchors[(anchors > last) & (anchors <= b)]
        if near.size or passed.size:
            last = float(near[0]) if near.size else float(passed[-1])
            continue
        every = beats_per_chord(contour.arousal(b) + style.texture_bias * 0.5, cuts_per_minute)
        if round((b - last) / beat_len) >= every:
            marks[float(b)] = "rhythm"
            last = float(b)
    return marks


#: Below this arousal a very negative valence is grief, not threat: ``dark`` harmony, not ``tense``
#: (a calm sad cue alternated a minor tonic with diminished sevenths).
CALM = -0.2


def _mood(valence: float, phrase_valence: float, falling: bool, rng: np.random.Generator, arousal: float = 0.0) -> str:
    """``tense`` where valence is very low (and the moment is not calm) or falls steeply, else
    ``bright``/``dark`` by the blend of the chord's and its phrase's valence; modal mixture (a draw
    leaning with valence) in between."""
    if (valence < -0.5 and arousal >= CALM) or (falling and valence < 0.1):
        return "tense"
    if valence < -0.5:
        return "dark"
    if 0.6 * valence + 0.4 * phrase_valence >= 0.15:
        return "bright"
    if 0.6 * valence + 0.4 * phrase_valence <= -0.15:
        return "dark"
    blend = 0.6 * valence + 0.4 * phrase_valence
    return "bright" if rng.random() < 0.5 + 2.5 * blend else "dark"


def _degree_weights(
    mood: str, scale: Sequence[int], n: int, tonic_idx: int, valence: float, slot: int
) -> tuple[np.ndarray, ...]:
    """Weights of the chord degrees (relative to the tonic) to draw from, best first: the
    functional slot's degrees, then any degree, then any degree equally."""
    weights = np.asarray(DEGREE_WEIGHTS[mood], float) if n == 7 else np.array([2.0] + [1.0] * (n - 1))
    # functional cycle within a phrase: tonic, free, pre-dominant, dominant
    allowed = (FUNCTIONS[slot] if n == 7 else ((0,) if slot == 0 else tuple(range(n))))
    # colour by valence: the brighter, the fewer minor chords (and the darker, the fewer major ones)
    triads = [build_chord(scale, tonic_idx + d, seventh=False, ninth=False) for d in range(n)]
    thirds = np.array([(t[1] - t[0]) % 12 for t in triads])
    fifths = np.array([(t[2] - t[0]) % 12 for t in triads])
    if mood == "bright":
        weights = weights * np.where(thirds == 3, 1.0 - 0.8 * max(valence, 0.0), 1.0)
        if valence > 0.3:  # no diminished chord in a clearly bright cue (a Lydian scale's fourth degree)
            weights = weights * (fifths != 6)
    else:
        weights = weights * np.where(thirds == 4, 1.0 - 0.6 * min(1.0, max(-valence, 0.0)), 1.0)
    if n < 7 and mood != "bright":  # a gapped scale's quartal and major chords read the relative major
        weights = weights * np.where(thirds == 3, 1.0, GAPPED_OFF_MODE)
    w = np.zeros(n)
    w[list(allowed)] = weights[list(allowed)] + (1.0 if slot == 0 else 0.0)
    return w, weights.copy(), np.ones(n)


def _pick_degree(
    attempts: tuple[np.ndarray, ...],
    *,
    scale: Sequence[int],
    tonic_idx: int,
    mood: str,
    valence: float,
    arousal: float,
    prev: ChordSpan | None,
    rng: np.random.Generator,
    at_cut: bool = False,
    minor_cuts: bool = False,
) -> int:
    """Draw a degree (relative to the tonic) from the first weights that leave a chord sounding
    different from ``prev`` (another root and other pitches).

    ``at_cut``: the chord starts on a scene cut, where the change must be heard. A root a third
    away keeps two of the three tones (I -> vi, I -> iii) and sounds like the same harmony going on,
    and a melody that dwells on one shared tone (I -> V keeps the fifth) hides the change as well.
    So a cut first draws among chords sharing no pitch class with ``prev`` (I -> ii, IV -> V, V -> vi)
    by the style's weights, then among those sharing at most one (I -> IV, V) by any weights,
    before it allows the rest. In a bright span it draws first among the major chords of
    :func:`_clear_move` (none kept, then one), by the style's weights. ``minor_cuts`` (the style's
    :attr:`~composer.music.styles.Style.minor_cuts`, or a calm moment): a dark span's cut first draws a
    minor chord of :func:`_clear_move`.
    """
    n = len(attempts[0])
    allowed, shared, bright, minor = np.ones(n), np.zeros(n, int), np.zeros((2, n)), np.zeros(n)
    if prev is not None:
        for d in range(n):
            deg = (tonic_idx + d) % n
            cand = _chord(scale, deg, d, mood, valence, arousal)
            shared[d] = len(set(cand) & set(prev.pitches))
            if scale[deg] == prev.root or set(cand) == set(prev.pitches):
                allowed[d] = 0.0  # a new chord must sound different
            triad = build_chord(scale, deg, seventh=False, ninth=False)
            bright[:, d], minor[d] = _clear_move(triad, prev, 4), any(_clear_move(triad, prev, 3))
    tries = [(allowed, attempts)]
    if at_cut:  # no tone kept where the style's own weights allow it, else one (any weights)
        tries = [(allowed * (shared == 0), attempts[:-1]), (allowed * (shared <= 1), attempts), *tries]
        if mood == "bright":  # a major chord that moves the bass clearly first (see _clear_move)
            tries = [(allowed * bright[0], attempts[:-1]), (allowed * bright[1], attempts[:-1]), *tries]
        if mood == "dark" and minor_cuts:
            tries = [(allowed * minor, attempts[:-1]), *tries]
    # the last weights are uniform and a scale has more than one root, so some weights always remain
    cand_w = next(w for mask, tried in tries for attempt in tried if (w := attempt * mask).sum() > 0)
    return int(rng.choice(n, p=cand_w / cand_w.sum()))


def _clear_move(triad: Sequence[int], prev: ChordSpan, third: int) -> tuple[bool, bool]:
    """Whether a cut may move from ``prev`` to ``triad`` when it is a major (``third`` 4) or minor (3) triad:
    (keeping none of ``prev``'s tones, keeping one with the root a fourth or fifth away, so the bass moves
    clearly).

    Bright spans draw major chords so (judged on the triad, as an added ninth is colour, see
    :func:`_cut_pitches`): from Iadd9 no coloured major chord keeps one tone or fewer, so a bright cue cut
    every few seconds walked I-ii-I-ii and read minor; a kept tone comes second, as the model's few notes
    around a cut may dwell on it. Dark spans of ``minor_cuts`` styles draw minor ones (i -> iv, v), either
    kind alike: the chord keeping no tone of a minor tonic is the major VII (or ii°), and a calm dark
    ambient cue went i -> VII on every cut, held it for 7 s, and read major in those windows."""
    if len(triad) < 3 or (triad[1] - triad[0]) % 12 != third or (triad[2] - triad[0]) % 12 != 7:
        return False, False
    kept = len(set(triad) & set(prev.pitches))
    return kept == 0, kept == 1 and (triad[0] - prev.root) % 12 in (5, 7)


def _cut_pitches(pitches: tuple[int, ...], triad: tuple[int, ...], prev: ChordSpan | None) -> tuple[int, ...]:
    """A bright cut chord's pitches: its colour, or its plain triad where the colour keeps more of
    ``prev``'s tones than the triad does (G -> Fadd9 keeps G, G -> F none)."""
    if prev is not None and len(set(triad) & set(prev.pitches)) < len(set(pitches) & set(prev.pitches)):
        return triad
    return pitches


def _home(prev: ChordSpan, at_cut: bool, scale: Sequence[int], tonic_idx: int, mood: str, valence: float,
          arousal: float) -> tuple[int, ...] | None:
    """The last chord as the tonic (its colour, else the plain triad) when that sounds different from
    ``prev`` and, on a cut, keeps at most one of its tones (A -> Dadd9 keeps A and E, A -> D only A);
    None when neither does."""
    if prev.root == scale[tonic_idx]:
        return None
    for home in (_chord(scale, tonic_idx, 0, mood, valence, arousal),
                 build_chord(scale, tonic_idx, seventh=False, ninth=False)):
        if not at_cut or len(set(home) & set(prev.pitches)) <= 1:
            return home
    return None


def _bright_opening(prev: ChordSpan, at_cut: bool, scale: Sequence[int], tonic_idx: int,
                    rng: np.random.Generator) -> int | None:
    """The degree (relative to the tonic) that opens a span turning bright after ``prev`` (dark or
    tense): the tonic, else a major chord of the scale (IV, V by the bright weights), each one that
    sounds different from ``prev`` and, on a cut, keeps at most one of its tones (judged on the triad,
    as :func:`_cut_pitches` plays it without its ninth where that keeps more); None when none does.

    The plain draw took the chord keeping no tone of the dark chord before, which after Bbmaj7 in
    D is Em (ii), and a cinematic cue's first 8 s after its turn to bright read minor."""
    n = len(scale)
    ok = []
    for d in range(n):
        triad = build_chord(scale, (tonic_idx + d) % n, seventh=False, ninth=False)
        major = len(triad) == 3 and (triad[1] - triad[0]) % 12 == 4 and (triad[2] - triad[0]) % 12 == 7
        kept = len(set(triad) & set(prev.pitches))
        ok.append(major and triad[0] != prev.root and (not at_cut or kept <= 1))
    if ok[0]:
        return 0
    weights = np.asarray(DEGREE_WEIGHTS["bright"], float) if n == 7 else np.ones(n)
    w = weights * np.asarray(ok, float)
    return int(rng.choice(n, p=w / w.sum())) if w.sum() > 0 else None


def _plan_chords(
    marks: dict[float, str],
    phrases: Sequence[float],
    *,
    duration: float,
    contour: _Contour,
    style: Style,
    key: int,
    rng: np.random.Generator,
) -> list[ChordSpan]:
    """One chord per span between consecutive boundaries in ``marks``."""
    times = sorted(marks)
    ends = [*times[1:], duration]
    chords: list[ChordSpan] = []
    phrase_arr = np.asarray(phrases)
    k_in_phrase, last_phrase = 0, -1
    for start, end in zip(times, ends, strict=True):
        if end - start < 1e-3:
            continue
        ph = int(np.searchsorted(phrase_arr, start, side="right")) - 1
        ph_end = phrase_arr[ph + 1] if ph + 1 < len(phrase_arr) else duration
        ph_val = float(np.mean([contour.valence(t) for t in np.linspace(phrase_arr[ph], ph_end, 9)]))
        mid = 0.5 * (start + end)
        v = contour.valence(mid)
        falling = v - contour.valence(max(0.0, mid - 3.0)) < -0.15  # valence falling over the last 3 s
        mood = _mood(v, ph_val, falling, rng, contour.arousal(mid))
        scale = style.scale(mood, key)
        n = len(style.scales[mood])
        k_in_phrase = 0 if marks[start] == "phrase" or ph != last_phrase else k_in_phrase + 1
        last_phrase = ph
        tonic_idx = scale.index(key % 12)
        arousal = contour.arousal(start)
        rel_degree = _pick_degree(
            _degree_weights(mood, scale, n, tonic_idx, v, k_in_phrase % 4),
            scale=scale, tonic_idx=tonic_idx, mood=mood, valence=v, arousal=arousal,
            prev=chords[-1] if chords else None, rng=rng, at_cut=marks[start] == "cut",
            minor_cuts=style.minor_cuts or arousal < CALM,  # a calm chord fills a key-reading window
        )
        # a span turning bright (not a modal-mixture draw) opens on the tonic or another major chord
        if mood == "bright" and chords and chords[-1].mood != "bright" and 0.6 * v + 0.4 * ph_val >= 0.15:
            opening = _bright_opening(chords[-1], marks[start] == "cut", scale, tonic_idx, rng)
            rel_degree = rel_degree if opening is None else opening
        home = None
        if end >= duration - 1e-6 and chords:  # the ending comes home (see the module docstring)
            if chords[-1].root == key % 12 and marks[start] != "cut":
                chords[-1] = replace(chords[-1], end=float(end))
                continue
            home = _home(chords[-1], marks[start] == "cut", scale, tonic_idx, mood, v, arousal)
            rel_degree = 0 if home is not None else rel_degree
        degree = (tonic_idx + rel_degree) % n
        pitches = home or _chord(scale, degree, rel_degree, mood, v, arousal)
        if marks[start] == "cut" and home is None and mood == "bright":
            triad = build_chord(scale, degree, seventh=False, ninth=False)
            pitches = _cut_pitches(pitches, triad, chords[-1] if chords else None)
        chords.append(
            ChordSpan(
                start=float(start),
                end=float(end),
                root=scale[degree],
                pitches=pitches,
                scale=scale,
                symbol=chord_symbol(scale[degree], pitches),
                degree=rel_degree,
                mood=mood,
                cut=marks[start] == "cut",
            )
        )
    return chords


def plan_harmony(
    arc: EmotionArc,
    cuts: Sequence[float],
    duration: float,
    *,
    style: Style | str,
    seed: int = 0,
    tempo: float | None = None,
    energy: float | None = None,
    tonic: int | None = None,
) -> HarmonyPlan:
    """The chord plan of a ``duration``-second piece following ``arc`` with a chord change on every cut.

    Cuts within :data:`EDGE` (0.3 s) of either end are ignored (a change there is the start
    or end of the piece), as is a cut within 50 ms of the previous one.

    ``energy`` (in [-1, 1]) is added to the arc's arousal; ``tempo`` (bpm) replaces the
    derived base tempo (the map still bends it towards the cuts). ``style`` is a :class:`Style` or
    its name, as :func:`composer.compose` takes it.
    """
    style = get_style(style)
    _check_plan(duration, tempo, energy, seed)
    clean = usable_cuts(cuts, duration)
    bias = float(energy or 0.0)
    contour = _Contour(arc, bias)
    cpm = 60.0 * len(clean) / duration
    rng = np.random.default_rng(seed)
    bpm = float(tempo) if tempo is not None else base_tempo(float(np.mean(arc.arousal)) + bias, cpm, style)
    tmap, beats = tempo_map(clean, duration, bpm)
    shifts = tuple(float(beats[np.argmin(np.abs(beats - c))] - c) for c in clean)
    phrases = [float(beats[np.argmin(np.abs(beats - p))]) if p > 0 else 0.0 for p in phrase_starts(arc, duration)]
    marks = _chord_starts(
        beats, phrases, clean, duration=duration, bpm=bpm, cuts_per_minute=cpm, contour=contour, style=style
    )
    key = style.tonic if tonic is None else tonic
    chords = _plan_chords(marks, phrases, duration=duration, contour=contour, style=style, key=key, rng=rng)
    return HarmonyPlan(
        duration=float(duration),
        tonic=key % 12,
        style=style.name,
        base_tempo=bpm,
        tempo_map=tmap,
        beats=beats,
        downbeats=beats[::4],
        chords=tuple(chords),
        cuts=tuple(clean),
        cut_shifts=shifts,
        phrases=tuple(phrases),
    )
