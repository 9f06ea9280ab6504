"""The voice of accompanied training copies: block chords under a piece for part of its length
(the copy itself: :func:`composer.training.data.accompanied`).

The corpus is mostly single-line folk melody, and the symbolic estimator reads a melody's
mode over 8 s only weakly: held-out minor-key pieces read a median valence of -0.14 per
bar. A model that writes like the corpus cannot say "dark" more strongly than that, and
its valence condition carries nothing the plan does not (model card, "Where the valence
and control-error goals stand"). An accompanied copy sounds the piece's own harmony as
triads for a stretch and is labelled again from its notes, so within one plan the label
moves with the voicing: the condition then tells the model how strongly to state the mode.

The chord of each beat is the best-matching triad of the beat's pitch classes, with ties
broken toward the key (:func:`composer.training.chords.best_chords`).
"""

from __future__ import annotations

import numpy as np
import pretty_midi

from analysis.music.symbolic import Key
from composer.training.chords import TEMPLATES, beat_histograms, best_chords

TRIADS = ("maj", "min", "dim")  # what the accompaniment may sound


def key_triads(pm: pretty_midi.PrettyMIDI, key: Key) -> tuple[np.ndarray, list[tuple[int, str] | None]]:
    """Beat edges and the triad ``(root, quality)`` of each beat (None where nothing sounds),
    ties broken toward ``key`` (:func:`composer.training.chords.best_chords`)."""
    edges, hist = beat_histograms(pm)
    return edges, best_chords(hist, TRIADS, key)


def accompaniment(
    pm: pretty_midi.PrettyMIDI, key: Key, *, start: float = 0.0, end: float = float("inf"), velocity: float = 0.8
) -> pretty_midi.Instrument | None:
    """A voice (same program as the first pitched instrument) playing the triad of each beat of ``pm``
    (:func:`key_triads`) that starts in ``[start, end)``, held for the beat, at ``velocity`` times the
    median velocity, the root in the octave below the lowest tenth of the melody less a minor third
    (and below middle C); None where nothing would sound.
    """
    pitched = [(i, n) for i in pm.instruments if not i.is_drum for n in i.notes]
    if not pitched:
        return None
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
                           for s in TEMPLATES[quality])
    return voice if voice.notes else None
