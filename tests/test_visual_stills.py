"""Still pictures on the visual source's scale: a plain grey frame is neutral, not the saddest, calmest
picture, and grain on a still is not motion."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
from mediagen import Shot, grainy_copy, make_clip

from analysis.media.decode import decode
from analysis.sources.base import SourceArc
from analysis.sources.visual import VisualSource, frame_features


def _flat_clip(path: Path, rgb: tuple[int, int, int], frames: int = 75) -> Path:
    """A perfectly still, flat-coloured clip (no shapes, no noise) at 25 fps."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 160, 96, "yuv420p"
        img = np.full((96, 160, 3), rgb, np.uint8)
        for _ in range(frames):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
        container.mux(stream.encode(None))
    return path


def _visual(path: Path) -> SourceArc:
    return VisualSource().analyze(decode(path), hop=0.5)


def test_a_grey_still_reads_neutral_and_calm_not_at_the_floor(tmp_path: Path) -> None:
    grey = _visual(_flat_clip(tmp_path / "grey.mp4", (128, 128, 128)))
    # Before: valence -0.80 and arousal -1.00 (no colour and no contrast read as their negative pole).
    assert abs(grey.valence.mean()) < 0.25
    assert -0.95 < grey.arousal.mean() < -0.4


def test_stills_keep_their_order(tmp_path: Path) -> None:
    grey = _visual(_flat_clip(tmp_path / "grey.mp4", (128, 128, 128)))
    dark_cold = _visual(_flat_clip(tmp_path / "dark.mp4", (20, 30, 60)))
    bright_warm = _visual(_flat_clip(tmp_path / "warm.mp4", (240, 190, 110)))
    moving = _visual(make_clip(tmp_path / "moving.mp4", shots=[Shot(75, (128, 128, 128), motion=0.6)]))
    assert dark_cold.valence.mean() < grey.valence.mean() - 0.3 < bright_warm.valence.mean() - 0.6
    assert moving.arousal.mean() > grey.arousal.mean() + 0.5


def test_a_faint_tint_on_grey_has_no_warmth() -> None:
    tinted = np.full((1, 8, 8, 3), (35, 35, 38), np.uint8)  # a codec's blue cast on dark grey
    pastel = np.full((1, 8, 8, 3), (150, 160, 200), np.uint8)  # a pale but clearly cool colour
    # Before: -1.0, a full cool reading from a 3-level tint.
    assert abs(frame_features(tinted)["warmth"][0]) < 0.15
    assert frame_features(pastel)["warmth"][0] < -0.9


@pytest.mark.parametrize("sd", [8.0, 20.0])
def test_grain_is_not_motion(tmp_path: Path, sd: float) -> None:
    still = make_clip(tmp_path / "still.mp4", shots=[Shot(75, (120, 110, 100))])
    moving = make_clip(tmp_path / "moving.mp4", shots=[Shot(75, (120, 110, 100), motion=0.6)])
    clean_still, clean_moving = _visual(still), _visual(moving)
    grainy_still = _visual(grainy_copy(still, tmp_path / "still_g.mp4", sd=sd))
    grainy_moving = _visual(grainy_copy(moving, tmp_path / "moving_g.mp4", sd=sd))
    # Before: grain of 8 levels read as motion 8.2 on a still (a brisk handheld shot), 20 levels as 21.
    assert grainy_still.features["motion"].mean() < 2.0
    assert grainy_still.arousal.mean() < clean_still.arousal.mean() + 0.25
    assert grainy_moving.arousal.mean() == pytest.approx(clean_moving.arousal.mean(), abs=0.15)
    assert grainy_moving.arousal.mean() > grainy_still.arousal.mean() + 0.5
