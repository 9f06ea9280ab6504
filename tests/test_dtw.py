"""DTW on tiny hand-checked arcs, and the subsequence section search."""

from __future__ import annotations

import math

import numpy as np
import pytest

from analysis.errors import ParameterError
from matching.ranking.dtw import Section, align, arc_distance, best_section, clamp_section, distance_to_score, features
from matching.ranking.weights import MatchWeights, weights_for

LEVELS_ONLY = MatchWeights(transition=0.0, arousal=0.0, window=1.0)


def _va(valence, arousal=None) -> np.ndarray:
    v = np.asarray(valence, dtype=float)
    a = np.zeros_like(v) if arousal is None else np.asarray(arousal, dtype=float)
    return np.stack([v, a], axis=1)


def test_dtaidistance_sqrt2_example_length_normalised() -> None:
    # dtaidistance's own example: DTW distance sqrt(2) on 9 samples; we divide by sqrt(n).
    s1 = [0, 0, 1, 2, 1, 0, 1, 0, 0]
    s2 = [0, 1, 2, 0, 0, 0, 0, 0, 0]
    d = arc_distance(_va(s1), _va(s2), hop=1.0, weights=LEVELS_ONLY)
    assert d == pytest.approx(math.sqrt(2) / 3)


def test_constant_offset_gives_offset() -> None:
    # Every step differs by 0.3 in valence and nothing else: RMS distance is 0.3 exactly.
    v = np.full(20, -0.2)
    d = arc_distance(_va(v), _va(v + 0.3), hop=0.5, weights=MatchWeights(transition=1.0))
    assert d == pytest.approx(0.3)
    assert arc_distance(_va(v), _va(v), hop=0.5) == 0.0


def test_transition_channel_weights_changes() -> None:
    # A step from sadness to joy against a flat arc at the mean: the level cost is the
    # same with or without the transition weight, the change adds cost only with it.
    step = _va(np.r_[np.full(10, -0.6), np.full(10, 0.6)])
    flat = _va(np.zeros(20))
    plain = arc_distance(step, flat, hop=1.0, weights=MatchWeights(transition=0.0, arousal=0.0))
    heavy = arc_distance(step, flat, hop=1.0, weights=MatchWeights(transition=4.0, arousal=0.0))
    assert plain == pytest.approx(0.6)
    # The two central differences at the step are (1.2 / 2) per second each: 2 * 0.6^2 * 4 extra.
    assert heavy == pytest.approx(math.sqrt((20 * 0.36 + 2 * 0.36 * 4) / 20))


def test_time_warped_copy_is_closer_than_decoy() -> None:
    t = np.linspace(0, 1, 40)
    arc = _va(np.sin(2 * np.pi * t) * 0.7, np.cos(2 * np.pi * t) * 0.5)
    warped_t = t**1.3  # a non-linear warp of the same flow
    warped = _va(np.sin(2 * np.pi * warped_t) * 0.7, np.cos(2 * np.pi * warped_t) * 0.5)
    decoy = _va(-np.sin(2 * np.pi * t) * 0.7, np.cos(2 * np.pi * t) * 0.5)
    assert arc_distance(arc, warped, hop=0.5) < 0.5 * arc_distance(arc, decoy, hop=0.5)


def test_distance_to_score_is_documented_mapping() -> None:
    assert distance_to_score(0.0) == 1.0
    assert distance_to_score(0.25, 0.25) == pytest.approx(0.5)
    assert distance_to_score(0.5, 0.25) == pytest.approx(0.2)
    arr = distance_to_score(np.array([0.0, 1.0, 10.0]))
    assert np.all(np.diff(arr) < 0) and np.all((arr > 0) & (arr <= 1))


@pytest.mark.parametrize("offset", [0, 17, 40, 63])
def test_best_section_finds_embedded_clip(offset: int) -> None:
    rng = np.random.default_rng(offset)
    hop = 0.5
    clip = np.clip(np.cumsum(rng.normal(0, 0.15, (24, 2)), axis=0), -1, 1)
    before = np.clip(np.cumsum(rng.normal(0, 0.15, (offset, 2)), axis=0), -1, 1) if offset else np.zeros((0, 2))
    after = np.clip(np.cumsum(rng.normal(0, 0.15, (40, 2)), axis=0), -1, 1)
    track = np.concatenate([before, clip, after])
    sec = best_section(clip, track, hop=hop)
    assert abs(sec.start - offset) <= 1
    assert abs(sec.end - (offset + 23)) <= 1
    result = align(clip, track, hop=hop)
    assert abs(result.start - offset * hop) <= hop
    assert result.stretch == pytest.approx(24 / ((result.end - result.start) / hop))
    assert result.score > 0.95 and result.coverage == 1.0


def test_clamp_section_bounds_stretch() -> None:
    s = clamp_section(Section(10, 12, 0.0), n=20, m=100, max_stretch=1.25)
    assert s.length == 16 and s.start >= 0
    s = clamp_section(Section(0, 99, 0.0), n=20, m=100, max_stretch=1.25)
    assert s.length == 25
    s = clamp_section(Section(0, 4, 0.0), n=20, m=5, max_stretch=1.25)
    assert (s.start, s.end) == (0, 4)


def test_short_track_is_penalised_by_coverage() -> None:
    v = _va(np.linspace(-0.5, 0.5, 40))
    short = v[::4]  # 10 steps: would need a 4x stretch
    res = align(v, short, hop=0.5, weights=MatchWeights(max_stretch=1.25))
    assert res.stretch == pytest.approx(1.25)
    assert res.coverage == pytest.approx(10 * 1.25 / 40)
    assert res.score <= res.coverage


def test_bad_input_raises_parameter_error() -> None:
    with pytest.raises(ParameterError, match="hop"):
        features(np.zeros((3, 2)), 0.0)
    with pytest.raises(ParameterError, match="shape"):
        features(np.zeros((3, 3)), 0.5)
    with pytest.raises(ParameterError, match="max_stretch"):
        MatchWeights(max_stretch=0.5)
    with pytest.raises(ParameterError, match="content_type"):
        weights_for("opera")
    w = MatchWeights(transition=3.0)
    assert MatchWeights.from_dict(w.to_dict()) == w


def test_a_slowly_moving_arc_is_fitted_unstretched() -> None:
    """The search can rest many clip steps on a few track steps, so on a nearly flat arc it found a short
    section and the clamp slowed it by the largest stretch (1.25 on 18 of 20 real matches): the music
    played a fifth slower for an arc no closer than the unstretched one."""
    rng = np.random.default_rng(0)
    flat = lambda n: np.stack([-0.5 + 0.01 * rng.standard_normal(n), 0.4 + 0.01 * rng.standard_normal(n)], 1)  # noqa: E731
    track = flat(120)
    for n in (40, 80, 120):
        fitted = align(flat(n), track, hop=0.5)
        assert fitted.stretch == 1.0 and fitted.end - fitted.start == pytest.approx(n * 0.5), n
        assert fitted.score > 0.98


@pytest.mark.parametrize("true", [0.8, 1.25])
def test_a_real_change_of_pace_is_still_fitted_stretched(true: float) -> None:
    from matching.ranking.dtw import resample_va

    t = np.linspace(0, 1, 150)
    track = np.stack([np.sin(6 * t), 0.8 * np.cos(4 * t)], 1)
    clip = resample_va(track[40:90], round(50 * true))  # the section at 0.8x or 1.25x its pace
    fitted = align(clip, track, hop=0.5)
    assert fitted.stretch == pytest.approx(true, abs=0.02) and fitted.start == pytest.approx(20.0, abs=0.5)
