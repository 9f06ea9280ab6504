"""analysis.filters equals the SciPy functions it replaces, and the analysis path no longer imports
scipy.signal or scipy.ndimage."""

from __future__ import annotations

import subprocess
import sys
from itertools import pairwise

import numpy as np
import pytest
from scipy.ndimage import maximum_filter1d, uniform_filter1d
from scipy.signal import butter, savgol_filter
from scipy.signal import resample_poly as scipy_resample_poly
from scipy.signal import sosfilt as scipy_sosfilt

import analysis.filters
from analysis.filters import (
    frame_spans,
    moving_average,
    moving_max,
    resample_poly,
    savgol,
    sosfilt,
    streamed_window_sums,
    window_sums,
)
from analysis.media.loudness import _k_weighting

LENGTHS = (1, 2, 3, 4, 7, 10, 33, 500)
SIZES = (1, 2, 3, 4, 5, 8, 11, 40)  # even and odd, several longer than the shorter inputs
MODES = ("reflect", "nearest")


def _series(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed + n).standard_normal(n) * 3 + 1


def _close(ours: np.ndarray, theirs: np.ndarray) -> None:
    assert ours.shape == theirs.shape
    assert ours.dtype == theirs.dtype
    np.testing.assert_allclose(ours, theirs, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("n", LENGTHS)
@pytest.mark.parametrize("mode", MODES)
def test_moving_average_equals_uniform_filter1d(n: int, mode: str) -> None:
    x = _series(n)
    for size in SIZES:
        _close(moving_average(x, size, mode=mode), uniform_filter1d(x, size=size, mode=mode))
    _close(moving_average(x, 3), uniform_filter1d(x, size=3))  # default mode: reflect
    x32 = x.astype(np.float32)
    np.testing.assert_allclose(moving_average(x32, 4, mode), uniform_filter1d(x32, 4, mode=mode), rtol=1e-6)
    assert moving_average(x32, 4, mode).dtype == np.float32


@pytest.mark.parametrize("n", LENGTHS)
@pytest.mark.parametrize("mode", MODES)
def test_moving_max_equals_maximum_filter1d(n: int, mode: str) -> None:
    x = _series(n)
    for size in SIZES:
        np.testing.assert_array_equal(moving_max(x, size, mode=mode), maximum_filter1d(x, size=size, mode=mode))
    np.testing.assert_array_equal(moving_max(x, 4), maximum_filter1d(x, size=4))


@pytest.mark.parametrize("n", (1, 2, 3, 5, 8, 21, 100, 1001))
def test_savgol_equals_savgol_filter_interp(n: int) -> None:
    x = _series(n)
    for window in (1, 2, 3, 4, 5, 7, 8, 21):
        for order in range(min(window, 5)):
            if window <= n:
                _close(savgol(x, window, order), savgol_filter(x, window_length=window, polyorder=order, mode="interp"))


def test_savgol_rejects_what_scipy_rejects() -> None:
    with pytest.raises(ValueError):
        savgol(np.zeros(4), 5, 2)  # window longer than the series
    with pytest.raises(ValueError):
        savgol(np.zeros(9), 3, 3)  # polyorder not below the window


@pytest.mark.parametrize("n", (0, 1, 2, 5, 100, 4410, 22050))
@pytest.mark.parametrize("up,down", [(320, 441), (160, 441), (1, 3), (2, 1), (1, 1), (3, 2), (640, 2205)])
def test_resample_poly_equals_scipy(n: int, up: int, down: int) -> None:
    x = np.random.default_rng(n + up).uniform(-1, 1, n)
    ours, theirs = resample_poly(x, up, down), scipy_resample_poly(x, up, down)
    assert ours.shape == theirs.shape
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-6)


def test_resample_poly_across_blocks_and_float32(monkeypatch: pytest.MonkeyPatch) -> None:
    import analysis.filters

    monkeypatch.setattr(analysis.filters, "_CHUNK", 1000)  # many small blocks, some not full
    x = np.random.default_rng(1).uniform(-1, 1, 12345).astype(np.float32)
    for up, down in ((320, 441), (1, 3), (40, 147), (2, 1)):
        np.testing.assert_allclose(resample_poly(x, up, down), scipy_resample_poly(x, up, down), rtol=0, atol=1e-6)


BLOCK = analysis.filters._SOS_BLOCK
SPAN = BLOCK * analysis.filters._SOS_GROUP  # samples per group of blocks
SOS_LENGTHS = (0, 1, 5, BLOCK - 1, BLOCK, BLOCK + 1, 3 * BLOCK + 17, SPAN - 1, SPAN, SPAN + 1, 3 * SPAN + 17, 100_000)
FILTERS = {
    "k22050": _k_weighting(22050),
    "k44100": _k_weighting(44100),
    "k48000": _k_weighting(48000),
    "butter6": butter(6, 0.1, output="sos"),  # three sections
}


@pytest.mark.parametrize("name", FILTERS)
@pytest.mark.parametrize("channels", (None, 1, 2))
def test_sosfilt_equals_scipy(name: str, channels: int | None) -> None:
    sos = FILTERS[name]
    rng = np.random.default_rng(len(name) + (channels or 0))
    for n in SOS_LENGTHS:
        x = rng.uniform(-1, 1, n if channels is None else (n, channels))
        ours = sosfilt(sos, x)
        assert ours.shape == x.shape and ours.dtype == np.float64
        if n == 0:  # scipy cannot filter an empty array
            continue
        theirs = scipy_sosfilt(sos, x, axis=0)
        assert np.abs(ours - theirs).max() <= 1e-10 * np.abs(theirs).max(), (name, n)


def test_sosfilt_input_checks() -> None:
    sos = FILTERS["butter6"]
    x = np.arange(3000) % 7 - 3  # integers: filtered as float64
    np.testing.assert_allclose(sosfilt(sos, x), scipy_sosfilt(sos, x.astype(np.float64)), rtol=0, atol=1e-12)
    for bad_sos in (sos[:, :5], np.zeros((0, 6)), sos * 2):
        with pytest.raises(ValueError):
            sosfilt(bad_sos, x)
    with pytest.raises(ValueError):
        sosfilt(sos, np.zeros((4, 2, 2)))


def test_analysis_and_rendering_import_neither_scipy_signal_nor_ndimage() -> None:
    code = (
        "import sys, numpy as np\n"
        "import soundtrack.cli\n"
        "from composer.pipeline.score_video import score_video\n"
        "import analysis.video\n"
        "from analysis.sources.vad import to_16k\n"
        "audio = np.random.default_rng(0).uniform(-1, 1, 22050).astype(np.float32)\n"
        "for sr in (22050, 44100, 48000):\n"
        "    assert to_16k(audio, sr).size == -(-audio.size * 16000 // sr)\n"
        "from analysis.media.loudness import normalize_loudness\n"  # what rendering does
        "stereo = np.random.default_rng(1).uniform(-0.5, 0.5, (44100, 2))\n"
        "assert normalize_loudness(stereo, 44100).shape == stereo.shape\n"
        "bad = [m for m in ('scipy.signal', 'scipy.ndimage') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]


def test_only_1d_input() -> None:
    for call in (
        lambda x: moving_average(x, 3),
        lambda x: moving_max(x, 3),
        lambda x: savgol(x, 3, 1),
        lambda x: resample_poly(x, 2, 1),
    ):
        with pytest.raises(ValueError):
            call(np.zeros((4, 4)))


def test_frame_spans_clip_to_the_signal_and_are_never_empty():
    # 10 frames at 4 per second: windows before, inside, across and past the end of 2.5 s
    lo, hi = frame_spans(np.array([-1.0, 0.5, 2.0, 3.0]), np.array([0.0, 1.0, 3.0, 4.0]), 4.0, 10)
    assert lo.tolist() == [0, 2, 8, 9] and hi.tolist() == [1, 4, 10, 10]
    assert np.all(hi > lo) and np.all(hi <= 10)
    x = np.arange(10.0)
    assert window_sums(x, lo, hi).tolist() == [0.0, 5.0, 17.0, 9.0]



def test_window_sums_of_a_signal_made_in_parts_are_the_sums_of_the_whole() -> None:
    """The prefix sum carried from part to part adds the same numbers in the same order: equal to the bit."""
    rng = np.random.default_rng(4)
    x = rng.standard_normal((1000, 5)).astype(np.float32) * 1e3
    lo = rng.integers(0, 999, 300)
    hi = np.minimum(lo + rng.integers(1, 80, 300), 1000)
    cuts = [0, 1, 64, 300, 301, 777, 1000]
    parts = (x[a:b] for a, b in pairwise(cuts))
    np.testing.assert_array_equal(streamed_window_sums(parts, lo, hi), window_sums(x, lo, hi))
    with pytest.raises(ValueError, match="no rows"):
        streamed_window_sums([], lo, hi)

def test_sosfilt_carries_its_state_across_stretches_and_keeps_memory_flat() -> None:
    """The whole signal went through float64 work space at once (an hour of stereo: 9 GB while rendering);
    it now goes through in stretches with the state carried across, to the same samples."""
    import tracemalloc

    from analysis.filters import _SOS_STRETCH

    sos = FILTERS["butter6"]
    x = np.random.default_rng(1).uniform(-1, 1, (3 * _SOS_STRETCH + 1234, 2)).astype(np.float32)
    ours = sosfilt(sos, x, dtype=np.float32)
    theirs = scipy_sosfilt(sos, x.astype(np.float64), axis=0)
    assert ours.dtype == np.float32 and np.abs(ours - theirs).max() <= 1e-6
    long = np.zeros((40 * _SOS_STRETCH, 2), np.float32)  # 27 MB of float32 samples in and out
    tracemalloc.start()
    sosfilt(sos, long, dtype=np.float32)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 3 * long.nbytes  # the output plus a stretch's work space, not float64 copies of it all
