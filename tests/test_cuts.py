"""Cut detection on generated clips with known cut frames, and pace."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from mediagen import (
    Shot,
    Take,
    cut_frames,
    flashed_copy,
    grainy_copy,
    handheld,
    held_copy,
    make_clip,
    make_takes,
    strobed_copy,
)

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


def _ffmpeg(out: Path, *args: str) -> Path:
    """Run ffmpeg with ``args`` (inputs and filters) writing ``out``; skip without ffmpeg."""
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        pytest.skip("ffmpeg is not installed")
    subprocess.run([ffmpeg, "-nostdin", "-v", "error", *args, str(out)], check=True, timeout=120)
    return out


_H264 = ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]
_VP8 = ["-c:v", "libvpx", "-deadline", "realtime", "-cpu-used", "8", "-b:v", "150k", "-g", "50"]


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


def test_a_picture_held_for_seconds_in_a_variable_frame_rate_clip_is_a_shot(tmp_path: Path) -> None:
    """A screen recording or a slideshow stores a still picture once and shows it for seconds. The detector
    saw it as one frame between two cuts, a flash: the cut out of it was lost (and neither cut was found when
    the two shots either side looked alike). Both cuts are found at the times players show them."""
    shots = [Shot(25, (200, 60, 50), motion=0.5), Shot(1, (40, 90, 180)), Shot(25, (60, 200, 60), motion=0.8)]
    clip = held_copy(make_clip(tmp_path / "cfr.mp4", shots=shots), tmp_path / "held.mp4", hold={25: 4.0})
    assert list(detect_cuts(clip)) == pytest.approx([1.0, 5.0], abs=0.01)


def test_a_flash_is_no_cut_and_a_cut_after_it_is(tmp_path: Path) -> None:
    # Two white frames at 1.0 s; the picture then returns. A hard cut follows at 2.0 s.
    clip = _ffmpeg(
        tmp_path / "flash.mp4",
        "-f", "lavfi", "-i", "testsrc2=s=320x240:r=25:d=2", "-f", "lavfi", "-i", "smptebars=s=320x240:r=25:d=2",
        "-filter_complex",
        "[0:v]drawbox=x=0:y=0:w=iw:h=ih:t=fill:color=white:enable='between(n,25,26)'[a];[a][1:v]concat=n=2:v=1[v]",
        "-map", "[v]", *_H264,
    )
    assert list(detect_cuts(clip)) == pytest.approx([2.0])


def test_no_cut_inside_a_fade_from_or_to_black_at_the_ends(tmp_path: Path) -> None:
    # 0.5 s black, fade in over 1 s, ... fade out over 1 s from 4.5 s, black from 5.5 s to the end.
    clip = _ffmpeg(
        tmp_path / "fades.mp4", "-f", "lavfi", "-i", "testsrc2=s=320x240:r=25:d=6",
        "-vf", "fade=t=in:st=0.5:d=1,fade=t=out:st=4.5:d=1", *_H264,
    )
    assert detect_cuts(clip) == ()


def test_a_fade_through_black_between_two_scenes_keeps_one_cut(tmp_path: Path) -> None:
    # A scene change an editor scores like a cut: kept, at the black frame (2.0 s).
    clip = _ffmpeg(
        tmp_path / "through.mp4",
        "-f", "lavfi", "-i", "testsrc2=s=320x240:r=25:d=2", "-f", "lavfi", "-i", "smptebars=s=320x240:r=25:d=2",
        "-filter_complex", "[0:v]fade=t=out:st=1:d=1[a];[1:v]fade=t=in:st=0:d=1[b];[a][b]concat=n=2:v=1[v]",
        "-map", "[v]", *_H264,
    )
    cuts = detect_cuts(clip)
    assert len(cuts) == 1 and abs(cuts[0] - 2.0) <= 2 / 25


def test_vp8_keyframes_in_a_still_picture_are_no_cuts(tmp_path: Path) -> None:
    # Each keyframe (every 2 s) sharpens the picture for a frame; it is no cut.
    still = _ffmpeg(tmp_path / "still.webm", "-f", "lavfi", "-i", "smptebars=s=320x240:r=25:d=10", *_VP8)
    assert detect_cuts(still) == ()
    # ... while real cuts in the same encoding are all found.
    cut = _ffmpeg(
        tmp_path / "cuts.webm",
        "-f", "lavfi", "-i", "smptebars=s=320x240:r=25:d=3", "-f", "lavfi", "-i", "testsrc2=s=320x240:r=25:d=3",
        "-f", "lavfi", "-i", "rgbtestsrc=s=320x240:r=25:d=3",
        "-filter_complex", "[0:v][1:v][2:v]concat=n=3:v=1[v]", "-map", "[v]", *_VP8,
    )
    assert list(detect_cuts(cut)) == pytest.approx([3.0, 6.0])


# --- awkward footage: grain ------------------------------------------------------------------------

#: Four shots of muted, nearby colours (a dull interior, a window, a lamp, a wall): the cuts are real but
#: not loud, as between shots of one scene.
_MUTED = [Shot(30, (120, 110, 100), 0.3), Shot(30, (100, 115, 130), 0.3), Shot(30, (150, 125, 90), 0.3),
          Shot(30, (95, 100, 95), 0.3)]


@pytest.mark.parametrize("sd", [30.0, 45.0])
def test_heavy_grain_neither_hides_cuts_nor_makes_them(tmp_path: Path, sd: float) -> None:
    clean = make_clip(tmp_path / "clean.mp4", shots=_MUTED)
    grainy = grainy_copy(clean, tmp_path / "grainy.mp4", sd=sd)
    # Before: grain raised every frame's change and the adaptive detector found [2.4, 3.6] at sd 30, nothing at 45.
    assert list(detect_cuts(grainy)) == pytest.approx([f / 25 for f in cut_frames(_MUTED)])
    one_shot = make_clip(tmp_path / "one.mp4", shots=[Shot(100, (110, 105, 100), 0.8)])
    assert detect_cuts(grainy_copy(one_shot, tmp_path / "one_grainy.mp4", sd=sd)) == ()


# --- awkward footage: quick dips to black -----------------------------------------------------------


@pytest.mark.parametrize("dip", [0.3, 0.4])
def test_a_quick_dip_to_black_between_two_scenes_is_a_cut(tmp_path: Path, dip: float) -> None:
    # Out over ``dip`` s into black at 2.0 s and in again: the editor's dip to black, scored like a cut.
    clip = _ffmpeg(
        tmp_path / "dip.mp4",
        "-f", "lavfi", "-i", "testsrc2=s=320x240:r=25:d=2", "-f", "lavfi", "-i", "smptebars=s=320x240:r=25:d=2",
        "-filter_complex",
        f"[0:v]fade=t=out:st={2 - dip}:d={dip}[a];[1:v]fade=t=in:st=0:d={dip}[b];[a][b]concat=n=2:v=1[v]",
        "-map", "[v]", *_H264,
    )
    # Before: the dim frames either side of the black compared alike against a step inflated by black's
    # noisy hue, so the cut was taken for a flash and dropped.
    cuts = detect_cuts(clip)
    assert len(cuts) == 1 and abs(cuts[0] - 2.0) <= 2 / 25


def test_quick_fades_at_the_ends_and_a_flash_in_the_dark_are_no_cuts(tmp_path: Path) -> None:
    ends = _ffmpeg(
        tmp_path / "ends.mp4", "-f", "lavfi", "-i", "testsrc2=s=320x240:r=25:d=3",
        "-vf", "fade=t=in:st=0:d=0.3,fade=t=out:st=2.6:d=0.3", *_H264,
    )
    assert detect_cuts(ends) == ()
    lightning = _ffmpeg(
        tmp_path / "lightning.mp4", "-f", "lavfi", "-i", "color=c=black:s=320x240:r=25:d=3",
        "-vf", "drawbox=x=0:y=0:w=iw:h=ih:t=fill:color=white:enable='between(n,35,36)'", *_H264,
    )
    assert detect_cuts(lightning) == ()


# --- awkward footage: a flashing light ----------------------------------------------------------------


@pytest.mark.parametrize(("period", "lit"), [(16, 8), (24, 12), (4, 1), (8, 4)])
def test_a_flashing_light_is_no_cut_and_the_cuts_under_it_are_found(tmp_path: Path, period: int, lit: int) -> None:
    # A light on for 8 or 12 frames (longer than a flash may last) and off as long, or flashing every 4 or
    # 8 frames (each switch a change as large as a cut's, so no cut stood out), over four still shots
    # (mediagen's moving shapes wrap round the frame edge now and then: a change of picture).
    shots = [Shot(s.frames, s.color) for s in _MUTED]
    clean = make_clip(tmp_path / "clean.mp4", shots=shots)
    strobed = strobed_copy(clean, tmp_path / "strobed.mp4", period=period, lit=lit)
    # Before: every switch of a slow light was a cut and they crowded out real ones; a fast one hid the cuts.
    assert list(detect_cuts(strobed)) == pytest.approx([f / 25 for f in cut_frames(shots)], abs=2 / 25)


# --- awkward footage: a white flash over a moving picture ---------------------------------------------


@pytest.mark.parametrize("length", [1, 2, 3])
@pytest.mark.parametrize("scene", ["shapes", "pan"])
def test_a_white_flash_over_a_moving_picture_is_no_cut(tmp_path: Path, scene: str, length: int) -> None:
    # Two shots, a hard cut at frame 75; in each a flash blows ``length`` frames out to white (at 45 and 110).
    # Behind the flash the shapes move on (2.4 and 4 % of the width a frame) or the camera pans (4 px a frame).
    if scene == "shapes":
        src = make_clip(tmp_path / "src.mp4", shots=[Shot(75, (120, 110, 100), 0.6), Shot(75, (60, 120, 160), 1.0)])
    else:
        src = make_takes(tmp_path / "src.mp4", [Take(75, 1, drift=4.0), Take(75, 2, drift=-4.0)])
    clip = flashed_copy(src, tmp_path / "flash.mp4", at=[45, 110], length=length)
    # Before: the frames either side of the flash, 2 to 4 frames apart, no longer showed one pattern, so the
    # flash was taken for a cut. (Not at 30 or 60: a shape wraps round the frame edge there, a change of picture.)
    assert list(detect_cuts(clip)) == pytest.approx([3.0])


def test_a_cut_under_a_white_flash_is_kept(tmp_path: Path) -> None:
    # The flash blows out the last frame of one panning shot and the first of the next: a cut, not a flash.
    src = make_takes(tmp_path / "src.mp4", [Take(75, 1, drift=4.0), Take(75, 2, drift=-4.0)])
    cuts = detect_cuts(flashed_copy(src, tmp_path / "under.mp4", at=[74], length=2))
    assert len(cuts) == 1 and abs(cuts[0] - 3.0) <= 2 / 25


# --- awkward footage: jump cuts ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "takes",
    [
        [Take(50, 3), Take(50, 3, 0.02), Take(50, 3, 0.04), Take(50, 4)],
        # a slow pan (0.3 px a frame, from the start of each take): jumps of 2.6 % and 1.6 % of the width
        [Take(50, 5, drift=0.3), Take(50, 5, 0.02, drift=0.3), Take(50, 5, 0.05, drift=0.3), Take(50, 6)],
    ],
    ids=["2pc-steps", "in-a-slow-pan"],
)
def test_a_jump_cut_of_a_few_percent_is_a_cut(tmp_path: Path, takes: list[Take]) -> None:
    # One scene reframed at frames 50 and 100 (the same shot a few seconds on), another scene from frame 150.
    clip = make_takes(tmp_path / "jumps.mp4", takes)
    # Before: the frames either side of a jump cut still correlated >= 0.85 at 32x18, so it was dropped as a
    # change of light ([6.0] and [2.0, 6.0] found).
    assert list(detect_cuts(clip)) == pytest.approx([2.0, 4.0, 6.0])


def test_a_flashing_light_over_a_pan_is_no_jump_cut(tmp_path: Path) -> None:
    # The light changes every frame or four while the camera pans 1 px a frame: the move at a switch of the
    # light is the pan's, as before and after it, so nothing there is taken for a jump cut.
    takes = [Take(40, 7, drift=1.0), Take(40, 8, drift=1.0), Take(40, 9, drift=-1.0), Take(40, 10, drift=1.0)]
    src = make_takes(tmp_path / "pan.mp4", takes)
    for period, lit in ((8, 4), (4, 1)):
        strobed = strobed_copy(src, tmp_path / f"strobed{period}.mp4", period=period, lit=lit)
        assert list(detect_cuts(strobed)) == pytest.approx([1.6, 3.2, 4.8])


# --- awkward footage: a handheld camera ----------------------------------------------------------------


@pytest.mark.parametrize("sd", [0.02, 0.04])
def test_cuts_in_handheld_footage_are_found(tmp_path: Path, sd: float) -> None:
    # A camera shaken afresh every frame, sd of the frame width (x and y): a textured take, then two takes that
    # look alike (one base colour), cuts at frames 40 and 80. Before: every shaken frame changed nearly as much
    # as a cut (ContentDetector score 40-45), so neither cut stood out at 2 and 4 % jitter ([] found).
    takes = [Take(40, 13), Take(40, 16, look=1), Take(40, 17, look=1)]
    clip = make_takes(tmp_path / "shaken.mp4", takes, shake=handheld(120, sd=sd, kind="jitter"))
    assert list(detect_cuts(clip)) == pytest.approx([1.6, 3.2])


def test_a_shaken_shot_is_no_cut_even_where_it_jumps_far(tmp_path: Path) -> None:
    # One take shaken 4 % afresh every frame: at frames 35 and 83 it jumps further than the move undone (10 % of
    # the height), yet the frames two apart show the picture again: no cut.
    clip = make_takes(tmp_path / "one.mp4", [Take(120, 19)], shake=handheld(120, sd=0.04, kind="jitter"))
    assert detect_cuts(clip) == ()
