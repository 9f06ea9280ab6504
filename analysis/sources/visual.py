"""Visual affect: colour, light, motion and shot rhythm of the sampled frames -> valence/arousal.

Each feature is put on a fixed, absolute scale in [-1, 1] (not rescaled per clip, so a
dark film reads darker than a bright one), then mixed with fixed signed weights. The
directions follow the affective-video literature:

* **motion** (mean absolute frame difference, cuts excluded, film grain and sensor noise
  discounted: :func:`frame_motion`) -> arousal +. Hanjalic & Xu (2005) model arousal from
  motion activity, rhythm and sound energy; fast action excites.
* **shot rhythm** (cuts per minute around the window) -> arousal +. Short shots make
  the tempo of a film (Hanjalic & Xu 2005; Wang & Cheong 2006).
* **brightness** (mean luma) -> valence +, a little arousal -. Valdez & Mehrabian
  (1994): pleasure rises with brightness (0.69 B), arousal falls a little with it; low-key
  lighting signals sad or threatening scenes (Wang & Cheong 2006).
* **saturation** -> valence + and arousal +. Valdez & Mehrabian (1994): arousal rises
  strongly with saturation (0.60 S), pleasure somewhat (0.22 S).
* **colourfulness** (Hasler & Süsstrunk 2003, opponent-channel statistics) -> valence
  + and arousal +: vivid scenes read lively and pleasant, grey scenes dull and sad
  (Machajdik & Hanbury 2010 use it for affective image classification).
* **warm/cool balance** (share of saturated red-yellow pixels minus blue-cyan ones)
  -> arousal + and a little valence +: warm hues are exciting, cool hues calming
  (Valdez & Mehrabian 1994 on hue; Wang & Cheong 2006 colour energy).
* **contrast** (RMS contrast of luma) -> arousal +: high-contrast lighting is tense and
  dramatic, flat lighting calm (Wang & Cheong 2006, lighting key).

Only brightness, warmth, motion and shot rhythm have two poles (dark/bright, cool/warm, still/
busy, long takes/quick cuts). Saturation, colourfulness and contrast are amounts of stimulation:
more than an ordinary picture has raises valence and arousal, less is not the opposite feeling (a
grey, flat frame is neither unpleasant nor asleep), so they read 0 at and below an ordinary
picture's amount (:func:`_excess`). Warmth counts in full only once a picture holds some colour: a
grey with a codec's faint tint has no hue to speak of.

Black bars (letterbox, pillarbox) are not picture: edge rows and columns that stay black in
every sampled frame are left out of every feature (:func:`picture_box`), or a film framed
2.39:1 inside 16:9 would read darker, greyer and stiller than the same picture full frame.

Confidence is 1 where frames were seen, lower for near-black frames (colour is
meaningless there) and for windows that had to be interpolated between samples.
"""

from __future__ import annotations

from typing import ClassVar

import cv2
import numpy as np

from analysis.arc import grid
from analysis.sources.base import CueWeights, MediaStreams, SourceArc, weighted_va

#: feature -> (valence weight, arousal weight). Each row's feature is in [-1, 1].
WEIGHTS: CueWeights = {
    "brightness": (0.35, -0.05),
    "saturation": (0.20, 0.15),
    "colourfulness": (0.25, 0.10),
    "warmth": (0.10, 0.10),
    "contrast": (0.0, 0.10),
    "motion": (0.05, 0.35),
    "rhythm": (0.05, 0.20),
}


#: Mean colour weight (saturation times value) a frame needs for its warm/cool balance to count in
#: full; below it the balance shrinks in proportion (a pale pastel is 0.15, a codec's tint on grey 0.01).
PALE = 0.15
#: An edge row or column is a black bar while the mean of its pixels' brightest channel stays below this
#: (of 255) in every sampled frame: about ffmpeg's cropdetect limit, above a codec's noise in digital black.
BAR_LEVEL = 24
#: Bars are cut away only while the picture left holds at least this share of the frame.
MIN_PICTURE = 0.5


def _lit_span(lit: np.ndarray) -> tuple[int, int]:
    """(first, end) of the lit lines between bars on both ends, less the line at each bar's edge (bar
    and picture blended by scaling and chroma subsampling); the whole length unless both ends are
    dark (a dark sky at the top alone is picture, not a letterbox)."""
    idx = np.flatnonzero(lit)
    first, end = int(idx[0]), int(idx[-1]) + 1
    if first == 0 or end == lit.size or end - first < 3:
        return 0, lit.size
    return first + 1, end - 1


#: Frames whose brightness :func:`picture_box` holds at once (a pass over all of them held a byte per
#: pixel of every sampled frame: 1.3 GB for two hours at 256x144).
BOX_CHUNK = 256


def _lit_lines(frames: np.ndarray, rows: slice, cols: slice, *, axis: int) -> np.ndarray:
    """Whether each row (``axis=2``) or column (``axis=1``) of ``frames[:, rows, cols]`` reaches
    :data:`BAR_LEVEL` in some frame: the mean of its pixels' brightest channel, :data:`BOX_CHUNK`
    frames at a time."""
    lit = None
    for i in range(0, frames.shape[0], BOX_CHUNK):
        f = frames[i : i + BOX_CHUNK, rows, cols]
        # (k, h, w) uint8, each pixel's brightest channel: np.maximum over the channel planes, as max(axis=-1)
        # reduces an axis of 3 per pixel, twenty times slower (0.95 s for 300 frames of 320x180)
        bright = np.maximum(np.maximum(f[..., 0], f[..., 1]), f[..., 2])
        top = bright.mean(axis=axis, dtype=np.float32).max(axis=0)
        lit = top if lit is None else np.maximum(lit, top)
    return lit >= BAR_LEVEL


def picture_box(frames: np.ndarray) -> tuple[slice, slice]:
    """(rows, columns) of RGB ``frames`` ``(n, h, w, 3)`` inside black bars, as ffmpeg's cropdetect
    finds them: edge lines whose mean stays under :data:`BAR_LEVEL` in all frames. A mean, not every
    pixel: grain or sensor noise over the bars (a film scan, a camera's own letterbox) puts single
    pixels well above the level in almost every frame. Rows are judged between the side bars and
    columns between the top and bottom ones, so neither dilutes the other.

    The whole frame when there are no bars, when the clip is dark throughout (a dark scene is not
    a letterbox), or when the bars would leave less than :data:`MIN_PICTURE` of it or not its centre.
    """
    n, h, w = frames.shape[:3]
    whole = (slice(0, h), slice(0, w))
    if n == 0 or h == 0 or w == 0:
        return whole
    rows = _lit_lines(frames, slice(0, h), slice(0, w), axis=2)
    if not rows.any():
        return whole
    top, bottom = _lit_span(rows)
    left, right = _lit_span(_lit_lines(frames, slice(top, bottom), slice(0, w), axis=1))
    top, bottom = _lit_span(_lit_lines(frames, slice(0, h), slice(left, right), axis=2))
    centred = top <= h // 2 < bottom and left <= w // 2 < right
    if not centred or (bottom - top) * (right - left) < MIN_PICTURE * h * w:
        return whole
    return slice(top, bottom), slice(left, right)


def _unit(x: np.ndarray, mid: float, half_range: float) -> np.ndarray:
    return np.clip((x - mid) / half_range, -1.0, 1.0)


def _excess(x: np.ndarray, ordinary: float, half_range: float) -> np.ndarray:
    """How far an amount cue lies above an ordinary picture's, in [0, 1]: 0 at or below ``ordinary``."""
    return np.clip((x - ordinary) / half_range, 0.0, 1.0)


def _one_frame(img: np.ndarray) -> tuple[float, float, float, float, float]:
    """(brightness, saturation, colourfulness, warmth, contrast) of one RGB uint8 image."""
    grey = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
    hsv = cv2.cvtColor(img, cv2.COLOR_RGB2HSV)  # H 0..179 (degrees / 2), S and V 0..255
    g_mean, g_std = cv2.meanStdDev(grey)
    sat = hsv[..., 1].astype(np.float32) / 255.0
    f = img.astype(np.float32)
    rg = f[..., 0] - f[..., 1]
    yb = 0.5 * (f[..., 0] + f[..., 1]) - f[..., 2]
    colourful = np.sqrt(rg.std() ** 2 + yb.std() ** 2) + 0.3 * np.sqrt(rg.mean() ** 2 + yb.mean() ** 2)
    hue = hsv[..., 0].astype(np.float32) * 2.0
    weight = sat * (hsv[..., 2].astype(np.float32) / 255.0)  # only coloured, lit pixels have a hue
    warm = weight[(hue < 70) | (hue >= 330)].sum()
    cool = weight[(hue >= 170) & (hue < 270)].sum()
    warmth = (warm - cool) / max(float(weight.sum()), PALE * weight.size)
    return (
        float(g_mean[0, 0]) / 255.0, float(sat.mean()), float(colourful), float(warmth), float(g_std[0, 0]) / 255.0
    )


def frame_features(frames: np.ndarray) -> dict[str, np.ndarray]:
    """Raw per-frame colour features of RGB ``uint8`` frames ``(n, h, w, 3)``.

    brightness (mean luma), saturation (mean HSV saturation), contrast (RMS contrast of
    luma) in [0, 1]; colourfulness on Hasler-Süsstrunk's scale (0 grey .. ~110
    extremely colourful); warmth in [-1, 1]. Frames wider than 160 px are read at every
    second pixel: the statistics do not change, the cost drops fourfold.
    """
    step = 2 if frames.shape[2] > 160 else 1
    rows = np.array([_one_frame(np.ascontiguousarray(f[::step, ::step])) for f in frames]).reshape(-1, 5)
    keys = ("brightness", "saturation", "colourfulness", "warmth", "contrast")
    return {k: rows[:, i] for i, k in enumerate(keys)}


#: Gaussian kernel (7 taps, sigma 1 px) that smooths grain before frames are compared for motion.
_SMOOTH = cv2.getGaussianKernel(7, 1.0).astype(np.float32)
#: How much of white noise's standard deviation the smoothing leaves (the 2-D kernel's L2 norm).
_NOISE_LEFT = float(np.sum(_SMOOTH**2))
#: Immerkaer's (1996) mask: blind to a picture's planes and ramps, it answers to pixel noise.
_NOISE_MASK = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float32)


def noise_level(grey: np.ndarray) -> float:
    """Standard deviation of the pixel noise (grain) in a grey image, by Immerkaer's fast estimate."""
    if min(grey.shape) < 3:
        return 0.0
    response = cv2.filter2D(grey.astype(np.float32), -1, _NOISE_MASK)[1:-1, 1:-1]
    return float(np.sqrt(np.pi / 2) * np.abs(response).mean() / 6.0)


def _change(a: np.ndarray, b: np.ndarray, noise_var: float) -> float:
    """Mean absolute change between smoothed grey images ``a`` and ``b``, less the share of the
    change's energy that the frames' grain (``noise_var``, after smoothing, both frames) explains."""
    d = a - b
    mean_square = float(np.mean(d * d))
    if mean_square <= 0.0:
        return 0.0
    return float(np.abs(d).mean()) * float(np.sqrt(max(0.0, 1.0 - noise_var / mean_square)))


def frame_motion(frames: np.ndarray, times: np.ndarray, cuts: tuple[float, ...]) -> np.ndarray:
    """Mean absolute grey-level change per 0.2 s between consecutive sampled frames.

    Grain and sensor noise are fresh in every frame, so they change every pixel of a still
    picture: the frames are smoothed (sigma 1 px) and the part of each change that their
    estimated noise (:func:`noise_level`) accounts for is taken out, in quadrature, so a
    grainy still reads still and a grainy pan about as fast as a clean one.
    Pairs that straddle a cut are a change of scene, not motion: they take the value of
    their neighbours. The first frame copies the second's value.
    """
    n = frames.shape[0]
    if n < 2:
        return np.zeros(n)
    step = 2 if frames.shape[2] > 160 else 1
    noise: list[float] = []
    diff: list[float] = []  # (n-1,)
    before = None  # the frame before, smoothed: one pair at a time, not the clip's frames in float32
    for f in frames:
        grey = cv2.cvtColor(np.ascontiguousarray(f[::step, ::step]), cv2.COLOR_RGB2GRAY)
        noise.append(noise_level(grey) * _NOISE_LEFT)
        smooth = cv2.sepFilter2D(grey.astype(np.float32), -1, _SMOOTH, _SMOOTH)
        if before is not None:
            diff.append(_change(before, smooth, noise[-2] ** 2 + noise[-1] ** 2))
        before = smooth
    dt = np.maximum(np.diff(times), 1e-3)
    rate = np.asarray(diff) * (0.2 / dt)
    c = np.asarray(cuts, dtype=float)
    straddles = np.array([np.any((c > times[i]) & (c <= times[i + 1])) for i in range(n - 1)]) if c.size else None
    if straddles is not None and straddles.any():
        keep = ~straddles
        rate = np.interp(np.arange(n - 1), np.flatnonzero(keep), rate[keep]) if keep.any() else np.zeros(n - 1)
    return np.concatenate([rate[:1], rate])


def _to_windows(
    times: np.ndarray, values: np.ndarray, centres: np.ndarray, hop: float
) -> tuple[np.ndarray, np.ndarray]:
    """Mean of ``values`` per window around ``centres``; empty windows interpolated.

    Returns (window values, bool mask of windows that held at least one sample).
    """
    idx = np.floor(times / hop).astype(int)
    n = centres.size
    ok = (idx >= 0) & (idx < n)
    sums = np.bincount(idx[ok], weights=values[ok], minlength=n)
    counts = np.bincount(idx[ok], minlength=n)
    filled = counts > 0
    out = np.interp(centres, times, values)
    out[filled] = sums[filled] / counts[filled]
    return out, filled


def _rhythm(cuts: tuple[float, ...], centres: np.ndarray, duration: float, window: float = 10.0) -> np.ndarray:
    """Cuts per minute within ``window`` seconds around each centre (window clipped to the clip)."""
    c = np.asarray(cuts, dtype=float)
    lo = np.clip(centres - window / 2, 0, duration)
    hi = np.clip(centres + window / 2, 0, duration)
    counts = np.searchsorted(c, hi) - np.searchsorted(c, lo)
    return counts / np.maximum(hi - lo, 1.0) * 60.0


class VisualSource:
    """Valence/arousal from the picture alone; see the module docstring for the features."""

    name: ClassVar[str] = "visual"

    def analyze(self, media: MediaStreams, *, hop: float) -> SourceArc:
        centres = grid(media.duration, hop)
        n = centres.size
        if media.frames.shape[0] == 0:
            z = np.zeros(n)
            return SourceArc(self.name, centres, z, z.copy(), z.copy())
        times = np.asarray(media.frame_times, dtype=float)
        rows, cols = picture_box(media.frames)
        frames = media.frames[:, rows, cols]  # a view: black bars left out
        raw = frame_features(frames)
        raw["motion"] = frame_motion(frames, times, media.cuts)
        windows: dict[str, np.ndarray] = {}
        filled = np.ones(n, dtype=bool)
        for key, vals in raw.items():
            windows[key], filled = _to_windows(times, vals, centres, hop)
        windows["rhythm"] = _rhythm(media.cuts, centres, media.duration)

        scaled = {
            "brightness": _unit(windows["brightness"], 0.45, 0.35),
            "saturation": _excess(windows["saturation"], 0.30, 0.30),
            "colourfulness": _excess(windows["colourfulness"], 35.0, 35.0),
            "warmth": np.clip(windows["warmth"], -1.0, 1.0),
            "contrast": _excess(windows["contrast"], 0.18, 0.15),
            # Saturating maps: 0 -> -1, a calm handheld shot (~3) -> about -0.3, action (>15) -> near +1.
            "motion": 2.0 * (1.0 - np.exp(-windows["motion"] / 6.0)) - 1.0,
            # 0 cuts/min -> -1, 15 -> about 0, 45+ -> near +1.
            "rhythm": 2.0 * (1.0 - np.exp(-windows["rhythm"] / 20.0)) - 1.0,
        }
        valence, arousal = weighted_va(WEIGHTS, scaled)

        confidence = np.where(filled, 1.0, 0.7)
        dark = windows["brightness"] < 0.04  # near-black (fades): colour says little
        confidence = np.where(dark, 0.3 * confidence, confidence)
        return SourceArc(
            name=self.name,
            times=centres,
            valence=valence,
            arousal=arousal,
            confidence=confidence,
            emotions=None,
            features=windows,
        )
