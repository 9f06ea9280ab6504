"""The generator evaluation's bars (composer.training.evaluate.run_system) with the shipped checkpoint."""

from __future__ import annotations

import numpy as np
import pytest

import composer.training.evaluate as ev
from analysis.arc import EmotionArc
from composer.model import checkpoint


@pytest.fixture(scope="module")
def shipped() -> checkpoint.Loaded:
    return checkpoint.load(checkpoint.DEFAULT)


def test_model_plan_grooves_are_read_on_the_plans_bars_and_the_models_bar_tokens(shipped, monkeypatch) -> None:
    conds = [ev.Condition(f"c{k}", EmotionArc.constant(12.0, valence=0.3, arousal=0.5), (4.0, 8.5), 12.0)
             for k in range(2)]  # the overlap's density estimate needs two pieces
    seen: list[np.ndarray] = []
    piece_stats = ev.piece_stats

    def stats(pm, bar_times, duration):
        seen.append(np.asarray(bar_times, float))
        return piece_stats(pm, bar_times, duration)

    monkeypatch.setattr(ev, "piece_stats", stats)
    real = [ev.PieceStats(3.0, 0.9, g, 2.0) for g in (0.8, 0.85, 0.9)]
    row = ev.run_system("model+plan", conds, real, shipped, seed=0, guidance=1.0)
    assert len(seen) == 4  # per piece the model's BAR tokens, then the plan's downbeats
    for k, c in enumerate(conds):
        np.testing.assert_array_equal(seen[2 * k + 1], np.asarray(ev.plan_for(c, k).downbeats, float))
    assert row["OA_groove_consistency_bar_tokens"] is not None
    seen.clear()
    row = ev.run_system("model", conds, real, shipped, seed=0, guidance=1.0)
    assert len(seen) == 2 and row["OA_groove_consistency_bar_tokens"] is None  # no plan: its own bars
