"""Cut detection on generated clips with known cut frames, and pace."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from mediagen import Shot, cut_frames, make_clip

from analysis.cuts import DETECTORS, CutDetector, detect_cuts, min_shot_frames, pace
from analysis.errors import ParameterError


def test_adaptive_finds_every_cut_within_two_frames(four_shot_clip) -> None:
    cuts = detect_cuts(four_shot_clip.path)
    assert len(cuts) == len(four_shot_clip.cut_frames)
    for found, true in zip(cuts, four_shot_clip.cut_times, strict=True):
        assert abs(found - true) * four_shot_clip.fps <= 2


@pytest.mark.parametrize("detector", ["content", "hash", "histogram"])
def test_other_detectors_find_the_cuts(four_shot_clip, detector: str) -> None:
    cuts = detect_cuts(four_shot_clip.path, detector=detector)
    assert len(cuts) == len(four_shot_clip.cut_frames)  # no false cut inside a shot
    for found, true in zip(cuts, four_shot_clip.cut_frames, strict=True):
        assert abs(found * four_shot_clip.fps - true) <= 2


def test_single_still_shot_has_no_cuts(dark_clip) -> None:
    assert detect_cuts(dark_clip.path) == ()


def test_threshold_is_configurable(four_shot_clip) -> None:
    # An absurdly high content threshold sees no cut at all.
    assert detect_cuts(four_shot_clip.path, detector="content", threshold=250.0) == ()


def test_unknown_detector_and_bad_threshold() -> None:
    with pytest.raises(ParameterError, match="unknown cut detector 'fancy'"):
        CutDetector(fps=25, detector="fancy")
    with pytest.raises(ParameterError, match="received -1"):
        CutDetector(fps=25, threshold=-1)
    assert set(DETECTORS) >= {"adaptive", "content", "threshold", "hash"}


def test_pace_counts_cuts_per_minute() -> None:
    # 6 cuts evenly in 60 s: 6 per minute; a 10 s window around t = 30 s holds one.
    cuts = [5.0, 15.0, 25.0, 35.0, 45.0, 55.0]
    p = pace(cuts, 60.0, hop=0.5, window=10.0)
    assert p.mean == pytest.approx(6.0)
    assert p.times.size == 120
    i = int(np.argmin(np.abs(p.times - 30.25)))
    assert p.cuts_per_minute[i] == pytest.approx(6.0)
    # near the start the window is clipped to [0, 5.25): one cut at 5.0 in 5.25 s
    assert p.cuts_per_minute[0] == pytest.approx(60 / 5.25)
    assert pace([], 10.0).mean == 0.0


# --- minimum shot length, flashes, fades, keyframe pops -------------------------------------------

_COLOURS = [(200, 40, 40), (40, 90, 200), (60, 170, 60), (150, 150, 150),
            (220, 200, 40), (140, 50, 160), (230, 120, 30), (30, 160, 160)]


def _shots(*frames: int) -> list[Shot]:
    return [Shot(n, _COLOURS[i % len(_COLOURS)]) for i, n in enumerate(frames)]


@pytest.mark.parametrize(
    ("fps", "frames"),
    [(1, (4, 4, 4)), (5, (10, 10, 10)), (25, (10,) * 8)],
    ids=["1fps-4s-shots", "5fps-2s-shots", "25fps-0.4s-shots"],
)
def test_cuts_at_low_frame_rates_and_in_fast_cutting(tmp_path: Path, fps: int, frames: tuple[int, ...]) -> None:
    shots = _shots(*frames)
    clip = make_clip(tmp_path / "c.mp4", shots=shots, fps=fps)
    assert list(detect_cuts(clip)) == pytest.approx([f / fps for f in cut_frames(shots)])


def test_first_and_last_shot_obey_the_same_minimum(tmp_path: Path) -> None:
    # 8 frames (0.32 s) at either end make a shot; 3 frames (0.12 s) do not, at either end.
    long_ends = make_clip(tmp_path / "long.mp4", shots=_shots(8, 50, 8))
    assert list(detect_cuts(long_ends)) == pytest.approx([0.32, 2.32])
    short_ends = make_clip(tmp_path / "short.mp4", shots=_shots(3, 50, 3))
    assert detect_cuts(short_ends) == ()


def test_min_shot_is_seconds_converted_per_frame_rate() -> None:
    assert [min_shot_frames(fps) for fps in (1, 5, 24, 25, 60)] == [1, 2, 6, 7, 15]
    with pytest.raises(ParameterError, match="min_shot"):
        CutDetector(fps=25, min_shot=0)
