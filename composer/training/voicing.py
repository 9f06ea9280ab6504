"""Accompanied training copies: block chords under a piece for part of its length.

The corpus is mostly single-line folk melody, and the symbolic estimator reads a melody's
mode over 8 s only weakly: held-out minor-key pieces read a median valence of -0.14 per
bar. A model that writes like the corpus cannot say "dark" more strongly than that, and
its valence condition carries nothing the plan does not (model card, "Where the valence
and control-error goals stand"). An accompanied copy sounds the piece's own harmony as
triads for a stretch and is labelled again from its notes, so within one plan the label
moves with the voicing: the condition then tells the model how strongly to state the mode.

The chord of each beat is the best-matching triad of the beat's pitch classes, with ties
(a one-note beat fits six triads) broken toward the key's diatonic chords, then its tonic,
then the chord before; the plain template labels of :func:`composer.training.data.beat_chords`
break ties by table order and so call most one-note beats major.
"""

from __future__ import annotations

import numpy as np
import pretty_midi

from analysis.music.symbolic import Key

#: Triads the accompaniment may sound, as semitones above the root.
TRIADS = {"maj": (0, 4, 7), "min": (0, 3, 7), "dim": (0, 3, 6)}
_MAJOR_SCALE = (0, 2, 4, 5, 7, 9, 11)
_MINOR_SCALE = (0, 2, 3, 5, 7, 8, 10, 11)  # natural minor and the leading tone (harmonic V)


def _beat_histograms(pm: pretty_midi.PrettyMIDI) -> tuple[np.ndarray, np.ndarray]:
    """Beat edges (``beats + 1``,) and each beat's duration-weighted pitch-class histogram."""
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


def key_triads(pm: pretty_midi.PrettyMIDI, key: Key) -> tuple[np.ndarray, list[tuple[int, str] | None]]:
    """Beat edges and the triad ``(root, quality)`` of each beat (None where nothing sounds).

    Score as in ``beat_chords`` (weight inside the triad minus half the weight outside);
    the tie-breaks are worth a twentieth of the beat's weight each, so they decide only
    between triads that fit the notes (nearly) equally well.
    """
    edges, hist = _beat_histograms(pm)
    names = [(r, q) for q in TRIADS for r in range(12)]
    masks = np.zeros((len(names), 12))
    for i, (r, q) in enumerate(names):
        masks[i, [(r + s) % 12 for s in TRIADS[q]]] = 1.0
    scale = {(key.tonic + d) % 12 for d in (_MINOR_SCALE if key.mode == "minor" else _MAJOR_SCALE)}
    bonus = 2.0 * np.array([all(p in scale for p in np.flatnonzero(m)) for m in masks])
    bonus[names.index((key.tonic, "min" if key.mode == "minor" else "maj"))] += 1.0
    total = hist.sum(1)
    score = hist @ masks.T / np.sqrt(3.0) - 0.5 * (total[:, None] - hist @ masks.T)
    out: list[tuple[int, str] | None] = []
    prev: int | None = None
    for i in range(hist.shape[0]):
        if total[i] <= 0:
            out.append(None)
            continue
        s = score[i] + 0.05 * total[i] * bonus
        if prev is not None:
            s[prev] += 0.05 * total[i]
        prev = int(s.argmax())
        out.append(names[prev])
    return edges, out


def accompanied(
    pm: pretty_midi.PrettyMIDI, key: Key, *, start: float = 0.0, end: float = float("inf"), velocity: float = 0.8
) -> pretty_midi.PrettyMIDI:
    """``pm`` with one more instrument (same program as the first pitched one) playing the triad
    of each beat (:func:`key_triads`) that starts in ``[start, end)``, held for the beat, at
    ``velocity`` times the median velocity, the root in the octave below the lowest tenth of
    the melody less a minor third (and below middle C). A new object; ``pm`` is not changed.
    """
    out = pretty_midi.PrettyMIDI(resolution=pm.resolution)
    out.time_signature_changes = list(pm.time_signature_changes)
    out.key_signature_changes = list(pm.key_signature_changes)
    out._tick_scales = list(pm._tick_scales)  # the tempo map: same bars, same beats
    out._update_tick_to_time(pm.time_to_tick(pm.get_end_time()) + 1)
    for inst in pm.instruments:
        copy = pretty_midi.Instrument(inst.program, is_drum=inst.is_drum, name=inst.name)
        copy.notes = [pretty_midi.Note(n.velocity, n.pitch, n.start, n.end) for n in inst.notes]
        out.instruments.append(copy)
    pitched = [(i, n) for i in pm.instruments if not i.is_drum for n in i.notes]
    if not pitched:
        return out
    vel = int(np.clip(round(np.median([n.velocity for _, n in pitched]) * velocity), 1, 127))
    floor = min(60, int(np.percentile([n.pitch for _, n in pitched], 10)) - 3) - 12  # lowest root allowed
    voice = pretty_midi.Instrument(pitched[0][0].program, name="accompaniment")
    edges, triads = key_triads(pm, key)
    for i, triad in enumerate(triads):
        if triad is None or not start <= edges[i] < end:
            continue
        root, quality = triad
        low = floor + (root - floor) % 12
        voice.notes.extend(pretty_midi.Note(vel, low + s, float(edges[i]), float(edges[i + 1]))
                           for s in TRIADS[quality])
    if voice.notes:
        out.instruments.append(voice)
    return out
