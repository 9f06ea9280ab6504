"""How the picture moves between frames: small global moves found by template matching on grey
thumbnails, for jump cuts, shaken cameras and the steadied adaptive detector."""

from __future__ import annotations

import functools

import numpy as np

#: Size (width, height) of the grey frames kept to tell a jump cut from a change of light: one pixel is 1.25 %
#: of the width, and a jump cut that reframes by 2 % moves the picture by 1.6 of them.
GREY = (80, 45)
#: Largest reframing looked for, in pixels of :data:`GREY` either way: 6 % of the width, 7 % of the height.
REFRAME = (5, 3)
#: Largest move of a shaken camera undone before a frame's change is scored (:func:`steadied_adaptive`), in
#: pixels of :data:`GREY` either way: 10 % of the width, 13 % of the height. A hand shaking 4 % of the width
#: (standard deviation) afresh every frame moves the picture 5.7 % from one frame to the next (sd), 7 % of the
#: height where it shakes as many pixels up and down.
SHAKE = (8, 6)
#: A frame that changes less than this (ContentDetector's score, mean HSV difference of 255) is scored without
#: looking for a camera move: neighbours that change this little cannot hide a cut (AdaptiveDetector wants 3
#: times their mean and at least 15); a shaken textured shot changed 40 to 45 a frame, 1 to 5 once steadied.
STEADY_FROM = 8.0


def grey_frame(frame_bgr: np.ndarray) -> np.ndarray:
    """``frame_bgr`` as a float32 grey picture of :data:`GREY` pixels."""
    import cv2

    small = cv2.resize(frame_bgr, GREY, interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(small, cv2.COLOR_BGR2GRAY).astype(np.float32)


def move_scores(a: np.ndarray, b: np.ndarray, reach: tuple[int, int] = REFRAME) -> np.ndarray:
    """Correlation (normalised: a change of gain or offset leaves it be) of grey frame ``b``'s middle with ``a``
    at every move up to ``reach`` (x, y): ``(2 my + 1, 2 mx + 1)``, the unmoved match in the middle."""
    import cv2

    mx, my = reach
    scores = cv2.matchTemplate(a, b[my:-my, mx:-mx], cv2.TM_CCOEFF_NORMED)  # (2 my + 1, 2 mx + 1)
    return np.nan_to_num(scores, nan=0.0)  # a flat middle has no pattern to place


def best_move(a: np.ndarray, b: np.ndarray) -> tuple[tuple[int, int], float, float]:
    """How far (x, y pixels, up to :data:`REFRAME`) grey frame ``b``'s middle lies moved from where it lies in
    ``a``, with the correlation (normalised: a change of gain or offset leaves it be) at that move and unmoved."""
    mx, my = REFRAME
    scores = move_scores(a, b)
    y, x = np.unravel_index(int(np.argmax(scores)), scores.shape)
    return (int(x) - mx, int(y) - my), float(scores[y, x]), float(scores[my, mx])


def fine_move(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """:func:`best_move`'s move, up to :data:`SHAKE`, to a fraction of a pixel (a parabola through the best
    score and its neighbours along each axis): a camera shaken by a hand moves by fractions of these pixels."""
    mx, my = SHAKE
    scores = move_scores(a, b, SHAKE)
    y, x = np.unravel_index(int(np.argmax(scores)), scores.shape)

    def vertex(line: np.ndarray, i: int) -> float:
        if not 0 < i < line.size - 1:
            return float(i)
        lo, mid, hi = float(line[i - 1]), float(line[i]), float(line[i + 1])
        bend = lo - 2 * mid + hi
        return i + (0.5 * (lo - hi) / bend if bend < 0 else 0.0)

    return vertex(scores[y], int(x)) - mx, vertex(scores[:, x], int(y)) - my


@functools.cache
def steadied_adaptive() -> type:
    """``AdaptiveDetector`` that scores each frame's change after undoing the camera's small global move.

    A handheld camera moves the whole picture a little every frame, so every frame of a textured shot changes
    a lot and a real cut no longer stands out from its neighbours (with a shake of 2-4 % of the width the cut
    scored under the adaptive threshold of 3 times its neighbours' mean). This detector finds the move from the
    previous frame (:func:`fine_move` on :data:`GREY` brightness pictures), shifts the previous frame by it
    (in whole pixels of the detector's frame) and scores ContentDetector's mean HSV difference over the overlap;
    the frame's score is the lower of that and the unmoved score. A different picture stays different however
    it is moved; the picture of a shaken shot comes back. Frames that change less than :data:`STEADY_FROM` are
    scored as they are (nothing to undo; most frames of a steady shot, at no cost). The unmoved score is kept as
    ``raw_score``: a jump cut (the same shot reframed) is such a move too, and :class:`CutDetector` still looks
    for cuts in it as before. It hooks ContentDetector's ``_calculate_frame_score`` and reads its ``_last_frame``
    planes (internal; written against the installed scenedetect 0.7.2), so the HSV planes are made once.
    """
    import cv2
    from scenedetect.detectors import AdaptiveDetector

    class SteadiedAdaptive(AdaptiveDetector):
        def __init__(self, **params: float | int) -> None:
            super().__init__(**params)
            self.raw_score = 0.0
            self._small: tuple[int, np.ndarray | None] = (-2, None)  # the latest frame's :data:`GREY` picture

        def _calculate_frame_score(self, timecode, frame_img: np.ndarray) -> float:
            before = self._last_frame
            raw = self.raw_score = float(super()._calculate_frame_score(timecode, frame_img))
            now = self._last_frame  # the planes ContentDetector just made (hue, sat, lum, edges)
            if before is None or raw < STEADY_FROM or self._weights[3] != 0:
                return raw

            def small(lum: np.ndarray) -> np.ndarray:
                return cv2.resize(lum, GREY, interpolation=cv2.INTER_AREA).astype(np.float32)

            index = timecode.frame_num  # the previous frame's small picture is kept when it was made
            prev = self._small[1] if self._small[0] == index - 1 else small(before.lum)
            self._small = (index, small(now.lum))
            fx, fy = fine_move(prev, self._small[1])
            h, w = now.lum.shape
            dx, dy = round(fx * w / GREY[0]), round(fy * h / GREY[1])
            if (dx, dy) == (0, 0):
                return raw
            # now[r, c] shows what before[r + dy, c + dx] showed
            cur = (slice(max(0, -dy), h - max(0, dy)), slice(max(0, -dx), w - max(0, dx)))
            old = (slice(max(0, dy), h - max(0, -dy)), slice(max(0, dx), w - max(0, -dx)))
            planes = zip((now.hue, now.sat, now.lum), (before.hue, before.sat, before.lum), self._weights[:3],
                         strict=True)
            moved = sum(wt * cv2.norm(a[cur], b[old], cv2.NORM_L1) / a[cur].size for a, b, wt in planes)
            return min(raw, moved / sum(abs(wt) for wt in self._weights))

    return SteadiedAdaptive


__all__ = ["GREY", "REFRAME", "SHAKE", "STEADY_FROM", "best_move", "fine_move", "grey_frame", "move_scores",
           "steadied_adaptive"]
