"""Black bars (letterbox, pillarbox) are not picture: the visual source reads what is inside them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from mediagen import Shot, boxed_copy, grainy_copy, make_clip

from analysis.media.decode import decode
from analysis.sources.visual import BAR_LEVEL, VisualSource, picture_box

SHOTS = [Shot(25, (200, 60, 50), motion=0.6), Shot(25, (40, 90, 180), motion=0.3), Shot(25, (70, 160, 70), motion=0.8)]


def _visual(path: Path):
    return VisualSource().analyze(decode(path), hop=0.5)


@pytest.mark.parametrize(
    ("picture", "name"),
    [((320, 134), "scope 2.39:1 letterboxed in 16:9"), ((240, 180), "4:3 pillarboxed in 16:9")],
)
def test_boxed_clip_reads_as_the_picture_inside_the_bars(tmp_path: Path, picture: tuple[int, int], name: str) -> None:
    clip = make_clip(tmp_path / "picture.mp4", shots=SHOTS, size=picture)
    boxed = boxed_copy(clip, tmp_path / "boxed.mp4", size=(320, 180))
    bare, barred = _visual(clip), _visual(boxed)
    # Before: the bars counted as picture: brightness 0.30 for 0.41, saturation 0.57 for 0.70, colourfulness
    # 85 for 52 (black beside colour), motion 16 for 21; arousal +0.50 for +0.39.
    assert barred.valence.mean() == pytest.approx(bare.valence.mean(), abs=0.04), name
    assert barred.arousal.mean() == pytest.approx(bare.arousal.mean(), abs=0.04), name
    for key, tol in (("brightness", 0.015), ("saturation", 0.02)):
        assert barred.features[key].mean() == pytest.approx(bare.features[key].mean(), abs=tol), (name, key)
    # Motion is read at another scale (the boxed picture is decoded smaller), so within 10%; bars took a quarter.
    assert barred.features["motion"].mean() == pytest.approx(bare.features["motion"].mean(), rel=0.1), name


@pytest.mark.parametrize("sd", [15.0, 30.0])
def test_grain_over_the_bars_does_not_hide_them(tmp_path: Path, sd: float) -> None:
    # A film scan or a camera's own letterbox: the grain covers the bars as well as the picture.
    clip = make_clip(tmp_path / "picture.mp4", shots=SHOTS, size=(320, 134))
    boxed = boxed_copy(clip, tmp_path / "boxed.mp4", size=(320, 180))
    bare, barred = _visual(grainy_copy(clip, tmp_path / "bare_g.mp4", sd=sd)), decode(
        grainy_copy(boxed, tmp_path / "boxed_g.mp4", sd=sd))
    rows, cols = picture_box(barred.frames)
    # Before: single grain pixels lit every bar line, the whole frame was read: brightness 0.30 for 0.40.
    assert abs(rows.start - 12) <= 1 and abs(rows.stop - 78) <= 1 and (cols.start, cols.stop) == (0, 160)
    arc = VisualSource().analyze(barred, hop=0.5)
    assert arc.features["brightness"].mean() == pytest.approx(bare.features["brightness"].mean(), abs=0.015)
    assert arc.features["saturation"].mean() == pytest.approx(bare.features["saturation"].mean(), abs=0.02)


@pytest.mark.parametrize(("color", "motion"), [((2, 2, 2), 0.0), ((20, 20, 24), 0.3)])
def test_a_dark_clip_is_not_cropped_away(tmp_path: Path, color: tuple[int, int, int], motion: float) -> None:
    dark = decode(make_clip(tmp_path / "dark.mp4", shots=[Shot(50, color, motion=motion)]))
    assert picture_box(dark.frames) == (slice(0, dark.frames.shape[1]), slice(0, dark.frames.shape[2]))
    arc = VisualSource().analyze(dark, hop=0.5)
    assert arc.features["brightness"].max() < 0.12 and arc.valence.mean() < -0.3


def _frames(h: int = 90, w: int = 160, n: int = 3) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(40, 220, size=(n, h, w, 3), dtype=np.uint8)


def test_picture_box_finds_bars_on_both_sides_only() -> None:
    frames = _frames()
    frames[:, :12] = 0
    frames[:, -12:] = 3  # codec noise in digital black
    frames[1, -12:, :5] = BAR_LEVEL - 1
    assert picture_box(frames) == (slice(13, 77), slice(0, 160))  # less the blended line at each edge
    pillar = _frames()
    pillar[:, :, :20] = pillar[:, :, -20:] = 0
    assert picture_box(pillar) == (slice(0, 90), slice(21, 139))


@pytest.mark.parametrize("case", ["dark throughout", "dark sky on top only", "bars most of the frame",
                                  "a caption in the bar"])
def test_picture_box_leaves_what_is_not_a_letterbox(case: str) -> None:
    frames = _frames()
    if case == "dark throughout":
        frames //= 10  # every pixel under the bar level
    elif case == "dark sky on top only":
        frames[:, :30] = 10
    elif case == "bars most of the frame":
        frames[:, :25] = frames[:, -25:] = 0
    else:
        frames[:, :12] = frames[:, -12:] = 0
        frames[2, :4, 40:120] = 200  # a caption at the top edge in one frame: that bar is not black throughout
    assert picture_box(frames) == (slice(0, 90), slice(0, 160))
