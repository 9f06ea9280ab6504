"""HDR clips (PQ and HLG, BT.2020, HEVC 10-bit) read as the same picture in SDR does.

The HDR clips are made from one generated SDR clip with FFmpeg's zscale, as the tester made
them; the reference is the same SDR clip through the same HEVC 10-bit encoder, so the
encoder's own losses (it smooths the noise that reads as motion) cancel out.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from mediagen import Shot, make_clip

from analysis.media.decode import decode
from analysis.media.hdr import REFERENCE_WHITE, TRC_HLG, TRC_PQ, to_sdr
from analysis.sources.visual import VisualSource
from analysis.video import analyze_video

FPS = 25
SHOTS = [Shot(25, (200, 60, 50), motion=0.6), Shot(25, (40, 90, 180), motion=0.3), Shot(25, (70, 160, 70), motion=0.8)]
TRANSFERS = {"pq": "smpte2084", "hlg": "arib-std-b67"}


def _ffmpeg_with(encoder: str, filt: str) -> str:
    """The ffmpeg executable, or skip the test saying what is missing."""
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        pytest.skip("ffmpeg is not installed")
    for what, name in (("-encoders", encoder), ("-filters", filt)):
        listing = subprocess.run([ffmpeg, "-hide_banner", what], capture_output=True, text=True, check=False).stdout
        if f" {name} " not in listing:
            pytest.skip(f"this ffmpeg has no {name} ({what[1:-1]})")
    return ffmpeg


def _hevc10(ffmpeg: str, src: Path, dst: Path, transfer: str | None) -> Path:
    """``src`` re-encoded as HEVC 10-bit: as it is (SDR), or taken to HDR ``transfer`` in BT.2020 with
    SDR white at 203 cd/m², the way the tester made the clips."""
    vf, params = "format=yuv420p10le", "log-level=error"
    if transfer is not None:  # mediagen writes untagged BT.601 YCbCr
        vf = f"zscale=tin=bt709:min=170m:pin=bt709:t={transfer}:m=bt2020nc:p=bt2020:npl=203,{vf}"
        params += f":colorprim=bt2020:transfer={transfer}:colormatrix=bt2020nc"
    cmd = [ffmpeg, "-hide_banner", "-loglevel", "error", "-y", "-i", str(src), "-vf", vf,
           "-c:v", "libx265", "-preset", "ultrafast", "-crf", "16", "-x265-params", params, str(dst)]
    subprocess.run(cmd, check=True, capture_output=True)
    return dst


@pytest.fixture(scope="module")
def hdr_clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The SDR reference and its PQ and HLG versions, by name."""
    ffmpeg = _ffmpeg_with("libx265", "zscale")
    folder = tmp_path_factory.mktemp("hdr")
    sdr = make_clip(folder / "sdr.mp4", shots=SHOTS, fps=FPS)
    clips = {"sdr": _hevc10(ffmpeg, sdr, folder / "sdr_hevc.mp4", None)}
    for name, transfer in TRANSFERS.items():
        clips[name] = _hevc10(ffmpeg, sdr, folder / f"{name}.mp4", transfer)
    return clips


def _visual(path: Path):
    return VisualSource().analyze(decode(path), hop=0.5)


@pytest.mark.parametrize("name", list(TRANSFERS))
def test_hdr_clip_reads_as_the_same_picture_in_sdr(hdr_clips: dict[str, Path], name: str) -> None:
    sdr, hdr = _visual(hdr_clips["sdr"]), _visual(hdr_clips[name])
    # Before: PQ read darker and grey (valence -0.38 for +0.25), HLG greyer (-0.07).
    assert hdr.valence.mean() == pytest.approx(sdr.valence.mean(), abs=0.06)
    assert hdr.arousal.mean() == pytest.approx(sdr.arousal.mean(), abs=0.08)
    for key, tol in (("brightness", 0.02), ("saturation", 0.03), ("colourfulness", 3.0)):
        assert hdr.features[key].mean() == pytest.approx(sdr.features[key].mean(), abs=tol), key


@pytest.mark.parametrize("name", list(TRANSFERS))
def test_cuts_are_found_in_hdr_clips(hdr_clips: dict[str, Path], name: str) -> None:
    res = analyze_video(hdr_clips[name], sources=["visual"], subtitles=None)
    assert len(res.cuts) == 2
    for found, true in zip(res.cuts, (1.0, 2.0), strict=True):
        assert abs(found - true) <= 2 / FPS


def _pq_code(nits: float) -> float:
    m1, m2, c1, c2, c3 = 2610 / 16384, 2523 / 4096 * 128, 3424 / 4096, 2413 / 4096 * 32, 2392 / 4096 * 32
    y = (nits / 10000) ** m1
    return ((c1 + c2 * y) / (1 + c3 * y)) ** m2


def test_reference_white_is_sdr_white_and_highlights_roll_off() -> None:
    # Grey in BT.2020 is grey in BT.709: white, 18% grey (of 203 cd/m²), a 1000 cd/m² highlight, black.
    levels = [_pq_code(REFERENCE_WHITE), _pq_code(0.18 * REFERENCE_WHITE), _pq_code(1000.0), 0.0]
    pq = np.array([[[round(v * 65535)] * 3 for v in levels]], np.uint16)
    white, grey, highlight, black = to_sdr(pq, TRC_PQ)[0, :, 0].astype(int)
    assert white >= 245 and highlight == 255 and black == 0
    assert grey == pytest.approx(255 * 0.18 ** (1 / 2.4), abs=2)  # shown at 18% of SDR white
    hlg_white = to_sdr(np.full((1, 1, 3), round(0.75 * 65535), np.uint16), TRC_HLG)  # HLG reference white: 75%
    assert np.all(hlg_white >= 245)
    # A saturated BT.2020 green outside BT.709 stays green, clipped to the BT.709 gamut.
    green = to_sdr(np.array([[[0, round(_pq_code(REFERENCE_WHITE) * 65535), 0]]], np.uint16), TRC_PQ)[0, 0]
    assert green[1] > 200 and green[0] == 0 and green[2] == 0
