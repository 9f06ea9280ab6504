"""Valence/arousal of symbolic music (MIDI) from key/mode, harmony, tempo, density, dynamics, register.

The estimator reads a :class:`pretty_midi.PrettyMIDI` into a 20 Hz piano roll folded to
pitch classes, then measures, over windows (or bars):

* **mode**: Krumhansl-Kessler profile correlation of the duration-weighted pitch-class
  histogram over a wide window (``key_window``); ``mode`` = best major minus best minor
  correlation, squashed to [-1, 1] (+1 clearly major).
* **consonance**: 1 - mean roughness of the pitch-class pairs sounding together
  (interval-class weights after the consonance rankings of Malmberg 1918 and
  Hutchinson & Knopoff 1978: semitone 1.0, tritone 0.75, whole tone 0.55,
  thirds/sixths 0.1, fourth/fifth 0).
* **tempo** (bpm, from the tempo map), **density** (distinct onsets per second),
  **velocity** (mean MIDI velocity of the sounding notes), **register** (mean sounding
  pitch), **articulation** (sounding duration / inter-onset interval: ~1 legato, <0.5
  staccato).

They map to the circumplex by :func:`music_va`, which the audio estimator
(``analysis.music.audio``) shares so that both land on one scale. Directions follow
Gabrielsson & Lindström (2010) and Eerola et al. (2013): major mode, consonance and high
register raise valence (mode is the strongest cue); fast tempo, dense onsets, loud
dynamics, high register and staccato raise arousal. midi-emotion (Sulun et al. 2022)
labels its training data with the same kind of cues.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from analysis.arc import EmotionArc, grid
from analysis.errors import ParameterError
from analysis.filters import window_sums

if TYPE_CHECKING:
    import pretty_midi

#: Roll resolution (frames per second) of the symbolic estimator.
ROLL_RATE = 20.0
PITCH_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")

#: Krumhansl & Kessler (1982) probe-tone profiles, tonic first.
KK_MAJOR = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
KK_MINOR = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])

#: Roughness of an interval class 0..6 (unison, m2, M2, m3, M3, P4, tritone).
IC_ROUGHNESS = np.array([0.0, 1.0, 0.55, 0.1, 0.1, 0.0, 0.75])
_DIFF = np.abs(np.arange(12)[:, None] - np.arange(12)[None, :])
_IC = np.minimum(_DIFF, 12 - _DIFF)
PAIR_ROUGHNESS = IC_ROUGHNESS[_IC]  # (12, 12), zero diagonal


def _profiles() -> np.ndarray:
    """The 24 key profiles, rows 0..11 major on C..B, 12..23 minor, z-scored."""
    rows = [np.roll(KK_MAJOR, k) for k in range(12)] + [np.roll(KK_MINOR, k) for k in range(12)]
    p = np.array(rows)
    return (p - p.mean(1, keepdims=True)) / p.std(1, keepdims=True)


_PROFILES = _profiles()


@dataclass(frozen=True)
class Key:
    """A key estimate: ``tonic`` pitch class (0 = C), ``mode`` "major"/"minor", Pearson r."""

    tonic: int
    mode: str
    correlation: float

    @property
    def name(self) -> str:
        return f"{PITCH_NAMES[self.tonic]} {self.mode}"


def key_correlations(chroma: np.ndarray) -> np.ndarray:
    """Pearson correlation of each pitch-class vector (``(..., 12)``) with the 24 key profiles."""
    c = np.asarray(chroma, float)
    z = c - c.mean(-1, keepdims=True)
    sd = z.std(-1, keepdims=True)
    z = np.divide(z, sd, out=np.zeros_like(z), where=sd > 1e-12)
    return z @ _PROFILES.T / 12.0  # (..., 24)


def key_from_chroma(chroma: np.ndarray) -> Key:
    """Best of the 24 Krumhansl-Kessler keys for one 12-bin pitch-class vector."""
    r = key_correlations(np.asarray(chroma, float).reshape(12))
    best = int(np.argmax(r))
    return Key(tonic=best % 12, mode="major" if best < 12 else "minor", correlation=float(r[best]))


def mode_score(chroma: np.ndarray) -> np.ndarray:
    """Best major minus best minor key correlation, squashed to [-1, 1]; 0 for empty vectors."""
    r = key_correlations(chroma)
    return np.tanh((r[..., :12].max(-1) - r[..., 12:].max(-1)) / 0.15)


def pair_roughness(presence: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Summed roughness and number of distinct pitch-class pairs per frame of a ``(T, 12)`` 0/1 matrix."""
    p = np.asarray(presence, float)
    rough = np.einsum("ti,ij,tj->t", p, PAIR_ROUGHNESS, p) / 2.0
    k = p.sum(1)
    return rough, k * (k - 1) / 2.0


def music_cues(
    *,
    mode: np.ndarray,
    consonance: np.ndarray,
    register: np.ndarray,
    density: np.ndarray,
    tempo: np.ndarray,
    velocity: np.ndarray,
    articulation: np.ndarray,
) -> dict[str, np.ndarray]:
    """Each music feature on [-1, 1] around a neutral anchor (NaN = unknown = 0).

    Anchors: consonance 0.8 ± 0.2 (a chorale sits near 0.8-0.9, clusters below 0.6),
    register MIDI pitch 62 ± 14, density 2.5 onsets/s (x3 per unit, log scale), tempo
    100 ± 50 bpm, velocity 72 ± 40, articulation ratio 0.85 (staccato ~0.45 gives +1).
    """
    n = lambda x, c, s: np.clip(np.nan_to_num((np.asarray(x, float) - c) / s), -1.0, 1.0)  # noqa: E731
    return {
        "mode": np.clip(np.nan_to_num(np.asarray(mode, float)), -1.0, 1.0),
        "consonance": n(consonance, 0.8, 0.2),
        "register": n(register, 62.0, 14.0),
        "density": n(np.log(np.maximum(np.asarray(density, float), 0.05) / 2.5), 0.0, np.log(3.0)),
        "tempo": n(tempo, 100.0, 50.0),
        "velocity": n(velocity, 72.0, 40.0),
        "staccato": n(articulation, 0.85, -0.4),
    }


def music_va(
    *,
    mode: np.ndarray,
    consonance: np.ndarray,
    register: np.ndarray,
    density: np.ndarray,
    tempo: np.ndarray,
    velocity: np.ndarray,
    articulation: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Map music features to (valence, arousal) in [-1, 1]; shared by the MIDI and audio estimators.

    valence = 0.6 mode + 0.25 consonance + 0.15 register (mode is the strongest valence
    cue in Gabrielsson & Lindström's review; high register reads brighter/happier);
    arousal = 0.35 density + 0.3 velocity + 0.15 tempo + 0.1 register + 0.1 staccato,
    all on the cue scale of :func:`music_cues`.
    """
    c = music_cues(
        mode=mode, consonance=consonance, register=register, density=density,
        tempo=tempo, velocity=velocity, articulation=articulation,
    )
    valence = 0.6 * c["mode"] + 0.25 * c["consonance"] + 0.15 * c["register"]
    arousal = 0.35 * c["density"] + 0.15 * c["tempo"] + 0.3 * c["velocity"] + 0.1 * c["register"] + 0.1 * c["staccato"]
    return np.clip(valence, -1.0, 1.0), np.clip(arousal, -1.0, 1.0)


_CUE_INPUTS = ("mode", "consonance", "register", "density", "tempo", "velocity", "articulation")


@dataclass(frozen=True, eq=False)
class MusicFeatures:
    """Per-window (or per-bar) music features on intervals ``[starts, ends)`` (seconds).

    ``mode`` in [-1, 1] (+1 major); ``consonance`` in [0, 1] (NaN where nothing sounds
    together); ``tempo`` bpm; ``density`` onsets/s; ``velocity`` mean MIDI velocity of
    the sounding notes (0 in silence; audio gives a loudness-equivalent); ``register``
    mean pitch (MIDI number, NaN in silence); ``articulation`` duration/IOI ratio.
    """

    starts: np.ndarray
    ends: np.ndarray
    mode: np.ndarray
    consonance: np.ndarray
    tempo: np.ndarray
    density: np.ndarray
    velocity: np.ndarray
    register: np.ndarray
    articulation: np.ndarray

    def _cue_inputs(self) -> dict[str, np.ndarray]:
        return {name: getattr(self, name) for name in _CUE_INPUTS}

    def cues(self) -> dict[str, np.ndarray]:
        """The features on the [-1, 1] cue scale of :func:`music_cues`."""
        return music_cues(**self._cue_inputs())

    def va(self) -> tuple[np.ndarray, np.ndarray]:
        return music_va(**self._cue_inputs())


@dataclass(frozen=True, eq=False)
class BarLabels:
    """Valence/arousal per bar: bar ``starts``/``ends`` (seconds) and the features behind them."""

    starts: np.ndarray
    ends: np.ndarray
    valence: np.ndarray
    arousal: np.ndarray
    features: MusicFeatures


@dataclass(frozen=True, eq=False)
class _Roll:
    """Frame-wise sums over sounding notes (frames at ``ROLL_RATE``), plus note onsets."""

    pcs: np.ndarray  # (T, 12) duration-weighted pitch-class presence (0/1 per frame)
    count: np.ndarray  # (T,) sounding pitched notes
    pitch_sum: np.ndarray  # (T,)
    vel_sum: np.ndarray  # (T,) over all sounding notes, drums included
    vel_count: np.ndarray  # (T,)
    onsets: np.ndarray  # sorted distinct onset times (20 ms merge)
    note_starts: np.ndarray  # sorted pitched note starts
    note_ratio: np.ndarray  # duration / IOI of each pitched note, same order
    duration: float


def _roll(pm: pretty_midi.PrettyMIDI) -> _Roll:
    duration = float(pm.get_end_time())
    if duration <= 0:
        raise ParameterError("the MIDI has no notes (end time 0 s)")
    n_frames = int(np.ceil(duration * ROLL_RATE)) + 1
    pcs = np.zeros((n_frames, 12))
    count = np.zeros(n_frames)
    pitch_sum = np.zeros(n_frames)
    vel_sum = np.zeros(n_frames)
    vel_count = np.zeros(n_frames)
    all_starts, starts, ratios = [], [], []
    for inst in pm.instruments:
        if not inst.notes:
            continue
        arr = np.array([(n.start, n.end, n.pitch, n.velocity) for n in inst.notes], float)
        arr = arr[np.argsort(arr[:, 0], kind="stable")]
        i0 = np.round(arr[:, 0] * ROLL_RATE).astype(int)
        i1 = np.maximum(np.round(arr[:, 1] * ROLL_RATE).astype(int), i0 + 1)
        # difference arrays: +x at the first frame, -x after the last
        for target, value in ((vel_sum, arr[:, 3]), (vel_count, np.ones(len(arr)))):
            np.add.at(target, i0, value)
            np.add.at(target, np.minimum(i1, n_frames - 1), -value * (i1 < n_frames))
        all_starts.append(arr[:, 0])
        if inst.is_drum:
            continue
        for target, value in ((count, np.ones(len(arr))), (pitch_sum, arr[:, 2])):
            np.add.at(target, i0, value)
            np.add.at(target, np.minimum(i1, n_frames - 1), -value * (i1 < n_frames))
        pc = arr[:, 2].astype(int) % 12
        np.add.at(pcs, (i0, pc), 1.0)
        np.add.at(pcs, (np.minimum(i1, n_frames - 1), pc), -1.0 * (i1 < n_frames))
        onset_t = np.unique(arr[:, 0])
        nxt = np.searchsorted(onset_t, arr[:, 0], side="right")
        ioi = np.where(nxt < len(onset_t), onset_t[np.minimum(nxt, len(onset_t) - 1)] - arr[:, 0], np.nan)
        starts.append(arr[:, 0])
        ratios.append(np.clip((arr[:, 1] - arr[:, 0]) / np.where(ioi > 0, ioi, np.nan), 0.0, 1.5))
    for a in (pcs, count, pitch_sum, vel_sum, vel_count):
        np.cumsum(a, axis=0, out=a)
    onsets = np.sort(np.concatenate(all_starts)) if all_starts else np.zeros(0)
    if onsets.size:
        onsets = onsets[np.concatenate([[True], np.diff(onsets) > 0.02])]
    st = np.concatenate(starts) if starts else np.zeros(0)
    order = np.argsort(st, kind="stable")
    ratio = np.concatenate(ratios)[order] if ratios else np.zeros(0)
    return _Roll(
        pcs=(pcs > 0.5).astype(float),
        count=np.round(count),
        pitch_sum=pitch_sum,
        vel_sum=vel_sum,
        vel_count=np.round(vel_count),
        onsets=onsets,
        note_starts=st[order],
        note_ratio=ratio,
        duration=duration,
    )


def _features(roll: _Roll, tempo_fn, starts: np.ndarray, ends: np.ndarray, key_window: float) -> MusicFeatures:
    n_frames = roll.count.shape[0]
    frames = lambda t: np.clip(np.round(np.asarray(t) * ROLL_RATE).astype(int), 0, n_frames)  # noqa: E731
    a, b = frames(starts), np.maximum(frames(ends), frames(starts) + 1)
    b = np.minimum(b, n_frames)
    a = np.minimum(a, b - 1)
    rough, pairs = pair_roughness(roll.pcs)
    mid = (np.asarray(starts) + np.asarray(ends)) / 2
    ka = frames(np.maximum(np.minimum(starts, mid - key_window / 2), 0))
    kb = np.maximum(frames(np.maximum(ends, mid + key_window / 2)), ka + 1)
    hist = window_sums(roll.pcs, ka, np.minimum(kb, n_frames))
    mode = np.where(hist.sum(1) > 0, mode_score(hist), 0.0)
    pr = window_sums(pairs, a, b)
    consonance = np.where(pr > 0, 1.0 - window_sums(rough, a, b) / np.maximum(pr, 1e-9), np.nan)
    cnt = window_sums(roll.count, a, b)
    register = np.where(cnt > 0, window_sums(roll.pitch_sum, a, b) / np.maximum(cnt, 1e-9), np.nan)
    vc = window_sums(roll.vel_count, a, b)
    velocity = np.where(vc > 0, window_sums(roll.vel_sum, a, b) / np.maximum(vc, 1e-9), 0.0)
    span = (b - a) / ROLL_RATE
    s_t, e_t = a / ROLL_RATE, b / ROLL_RATE
    density = (np.searchsorted(roll.onsets, e_t) - np.searchsorted(roll.onsets, s_t)) / span
    i0, i1 = np.searchsorted(roll.note_starts, s_t), np.searchsorted(roll.note_starts, e_t)
    ok = np.nan_to_num(roll.note_ratio, nan=0.0)
    has = (~np.isnan(roll.note_ratio)).astype(float)
    nh = window_sums(has, i0, i1)
    articulation = np.where(nh > 0, window_sums(ok, i0, i1) / np.maximum(nh, 1e-9), np.nan)
    return MusicFeatures(
        starts=np.asarray(starts, float),
        ends=np.asarray(ends, float),
        mode=mode,
        consonance=consonance,
        tempo=tempo_fn(mid),
        density=density,
        velocity=velocity,
        register=register,
        articulation=articulation,
    )


def _tempo_fn(pm: pretty_midi.PrettyMIDI):
    times, bpm = pm.get_tempo_changes()
    if len(bpm) == 0:
        return lambda t: np.full(np.shape(t), 120.0)
    return lambda t: bpm[np.clip(np.searchsorted(times, t, side="right") - 1, 0, len(bpm) - 1)]


def midi_features(
    pm: pretty_midi.PrettyMIDI, *, hop: float = 0.5, window: float = 3.0, key_window: float = 8.0
) -> MusicFeatures:
    """Features on windows of ``window`` seconds centred on ``grid(duration, hop)``."""
    for name, value in (("hop", hop), ("window", window), ("key_window", key_window)):
        if value <= 0:
            raise ParameterError(f"`{name}` must be positive (received {value})")
    roll = _roll(pm)
    t = grid(roll.duration, hop)
    return _features(roll, _tempo_fn(pm), np.maximum(t - window / 2, 0.0), t + window / 2, key_window)


def midi_arc(
    pm: pretty_midi.PrettyMIDI, *, hop: float = 0.5, window: float = 3.0, key_window: float = 8.0
) -> EmotionArc:
    """The emotion arc of a MIDI on window centres ``hop/2, 3hop/2, ...``.

    ``window`` is the span (s) over which density, dynamics, register and harmony are
    measured; ``key_window`` the wider span of the key/mode estimate.
    """
    f = midi_features(pm, hop=hop, window=window, key_window=key_window)
    v, a = f.va()
    return EmotionArc.from_va(grid(float(pm.get_end_time()), hop), v, a)


def bar_va(pm: pretty_midi.PrettyMIDI, *, key_window: float = 8.0) -> BarLabels:
    """Valence/arousal of each bar (bars from the MIDI's time signatures and tempo map)."""
    roll = _roll(pm)
    starts = np.asarray(pm.get_downbeats(), float)
    starts = starts[starts < roll.duration]
    if starts.size == 0:
        starts = np.array([0.0])
    ends = np.append(starts[1:], roll.duration)
    f = _features(roll, _tempo_fn(pm), starts, ends, key_window)
    v, a = f.va()
    return BarLabels(starts=starts, ends=ends, valence=v, arousal=a, features=f)


def estimate_key(pm: pretty_midi.PrettyMIDI) -> Key:
    """Global key by Krumhansl-Kessler correlation of the duration-weighted pitch-class histogram."""
    roll = _roll(pm)
    hist = roll.pcs.sum(0)
    if hist.sum() == 0:
        raise ParameterError("the MIDI has no pitched notes to estimate a key from")
    return key_from_chroma(hist)


def score_to_midi(score) -> pretty_midi.PrettyMIDI:
    """A music21 stream as PrettyMIDI, through music21's own MIDI export (in memory)."""
    import pretty_midi
    from music21.midi.translate import streamToMidiFile

    return pretty_midi.PrettyMIDI(io.BytesIO(streamToMidiFile(score).writestr()))


def change_mode(
    pm: pretty_midi.PrettyMIDI, *, to: str, after: float = 0.0, before: float = float("inf"), key: Key | None = None
) -> None:
    """Move scale degrees 3, 6, 7 between major and natural minor, in place, for notes starting in ``[after, before)``.

    The key is ``key`` or else the global estimate (:func:`estimate_key`); nothing changes
    when it is already in mode ``to`` ("major" or "minor"). Drums are left alone.
    """
    if to not in ("major", "minor"):
        raise ParameterError(f"`to` must be 'major' or 'minor' (received {to!r})")
    key = key or estimate_key(pm)
    if to == "minor" and key.mode == "major":
        shift = {4: -1, 9: -1, 11: -1}  # degrees 3, 6, 7 down: natural minor
    elif to == "major" and key.mode == "minor":
        shift = {3: 1, 8: 1, 10: 1}  # degrees 3, 6, 7 up
    else:
        return
    for inst in pm.instruments:
        for n in inst.notes:
            if after <= n.start < before and not inst.is_drum:
                n.pitch += shift.get((n.pitch - key.tonic) % 12, 0)
