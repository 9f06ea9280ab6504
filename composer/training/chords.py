"""Chord labels of the training data: one root x quality template per beat.

A beat's duration-weighted pitch-class histogram is scored against every template (weight
inside, over the square root of the template's size, minus half the weight outside). A beat
of one note fits six triads equally well. Without a key, such ties go by table order, so
most one-note beats read as a major chord. With a key, ties go first to the key's diatonic
chords, then to its tonic chord, then to the chord before. Each tie-break is worth a
twentieth of the beat's weight, so it decides only between chords that fit the notes
(nearly) equally well.
"""

from __future__ import annotations

import functools

import numpy as np
import pretty_midi

from analysis.music.symbolic import Key
from composer.model.tokens import Tokenizer
from composer.music.styles import AEOLIAN, HARMONIC_MINOR, IONIAN

TEMPLATES = {
    "maj": (0, 4, 7),
    "min": (0, 3, 7),
    "dim": (0, 3, 6),
    "aug": (0, 4, 8),
    "dom7": (0, 4, 7, 10),
}
_SCALES = {"major": set(IONIAN), "minor": set(AEOLIAN) | set(HARMONIC_MINOR)}  # minor: natural and harmonic V


def beat_histograms(pm: pretty_midi.PrettyMIDI) -> tuple[np.ndarray, np.ndarray]:
    """Beat edges (``beats + 1``,) and each beat's duration-weighted pitch-class histogram (drums left out)."""
    end = pm.get_end_time()
    beats = np.asarray(pm.get_beats(), float)
    edges = np.append(beats[beats < end], end)
    hist = np.zeros((edges.size - 1, 12))
    for inst in pm.instruments:
        if inst.is_drum:
            continue
        for n in inst.notes:
            i0 = max(int(np.searchsorted(edges, n.start, side="right")) - 1, 0)
            i1 = min(int(np.searchsorted(edges, n.end, side="left")), hist.shape[0])
            for i in range(i0, i1):
                hist[i, n.pitch % 12] += min(n.end, edges[i + 1]) - max(n.start, edges[i])
    return edges, hist


@functools.lru_cache(maxsize=8)
def _chord_masks(qualities: tuple[str, ...]) -> tuple[tuple[tuple[int, str], ...], np.ndarray]:
    """Every ``(root, quality)`` of ``qualities`` and its pitch-class mask ``(n, 12)`` (built once
    per quality list: labelling a corpus calls :func:`best_chords` once per piece and copy)."""
    names = tuple((r, q) for q in qualities for r in range(12))
    masks = np.zeros((len(names), 12))
    for i, (r, q) in enumerate(names):
        masks[i, [(r + s) % 12 for s in TEMPLATES[q]]] = 1.0
    masks.flags.writeable = False
    return names, masks


def _key_bonus(names: tuple[tuple[int, str], ...], masks: np.ndarray, key: Key) -> np.ndarray:
    scale = {(key.tonic + d) % 12 for d in _SCALES[key.mode]}
    bonus = 2.0 * np.array([all(p in scale for p in np.flatnonzero(m)) for m in masks])
    bonus[names.index((key.tonic, "min" if key.mode == "minor" else "maj"))] += 1.0
    return bonus


def best_chords(
    hist: np.ndarray, qualities: tuple[str, ...], key: Key | None = None, *, turn: int | None = None
) -> list[tuple[int, str] | None]:
    """The ``(root, quality)`` of each row of ``hist`` (None where it is silent); from row ``turn`` on,
    ties go toward the other mode of ``key`` (a mode-turned copy)."""
    names, masks = _chord_masks(tuple(qualities))
    total = hist.sum(1)
    score = hist @ (masks / masks.sum(1, keepdims=True) ** 0.5).T - 0.5 * (total[:, None] - hist @ masks.T)
    if key is None:
        return [None if total[i] <= 0 else names[b] for i, b in enumerate(score.argmax(1))]
    bonus = _key_bonus(names, masks, key)
    if turn is not None:
        other = _key_bonus(names, masks, Key(key.tonic, "major" if key.mode == "minor" else "minor", key.correlation))
    out: list[tuple[int, str] | None] = []
    prev: int | None = None
    for i in range(hist.shape[0]):
        if total[i] <= 0:
            out.append(None)
            continue
        s = score[i] + 0.05 * total[i] * (other if turn is not None and i >= turn else bonus)
        if prev is not None:
            s[prev] += 0.05 * total[i]
        prev = int(s.argmax())
        out.append(names[prev])
    return out


def beat_chords(
    pm: pretty_midi.PrettyMIDI, tokenizer: Tokenizer, key: Key | None = None, *, turn: float | None = None
) -> list[tuple[float, int]]:
    """Chord changes ``(time, chord token)`` of ``pm`` by :func:`best_chords` (ties toward ``key`` if
    given, toward its other mode for beats from ``turn`` seconds on); the label is repeated until it
    changes, and a beat with no pitched note reads as ``CHORD_N``."""
    edges, hist = beat_histograms(pm)
    quals = tuple(q for q in tokenizer.config.chord_qualities if q in TEMPLATES)
    row = None if turn is None else int(np.searchsorted(edges[:-1], turn - 1e-6))
    changes: list[tuple[float, int]] = []
    last = -1
    for t, chord in zip(edges[:-1], best_chords(hist, quals, key, turn=row), strict=True):
        tok = tokenizer.chord_token(None, None) if chord is None else tokenizer.chord_token(*chord)
        if tok != last:
            changes.append((float(t), tok))
            last = tok
    return changes
