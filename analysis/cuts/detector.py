"""The cut detector: PySceneDetect fed every frame, and the checks that keep light, flashes and fades out."""


from __future__ import annotations

import math
from collections import deque
from pathlib import Path

import numpy as np

from analysis.cuts.motion import SHAKE, best_move, grey_frame, move_scores, steadied_adaptive
from analysis.errors import ParameterError

#: Detector name -> (scenedetect class, name of its threshold argument).
DETECTORS: dict[str, tuple[str, str]] = {
    "adaptive": ("AdaptiveDetector", "adaptive_threshold"),
    "content": ("ContentDetector", "threshold"),
    "threshold": ("ThresholdDetector", "threshold"),
    "hash": ("HashDetector", "threshold"),
    "histogram": ("HistogramDetector", "threshold"),
}


#: Detectors that compare each frame with the one before against a fixed threshold. Their
#: candidates must also stand out from the neighbouring frames' changes (as AdaptiveDetector's
#: do by construction), else motion and noise that cross the threshold become cuts once shots
#: as short as ``MIN_SHOT`` are allowed. ThresholdDetector (fades, on brightness) is left as is.
_FIXED_THRESHOLD = frozenset({"content", "hash", "histogram"})
#: How many times the mean change of the two frames either side a candidate's change must be.
_STANDS_OUT = 2.0
#: Detectors that look for changes of brightness itself (fades), which must see the light as it is.
_BY_BRIGHTNESS = frozenset({"threshold"})

#: Shortest shot that gets its own cut, in seconds: a chord per shot stops making sense
#: much below a quarter second (an eighth note at 120 BPM). Converted to frames per clip.
MIN_SHOT = 0.25
#: Frame periods a frame may stay on screen before it is fed again as a held picture (:meth:`CutDetector.feed`):
#: a dropped frame or two in a phone clip is not a hold.
HELD = 3
#: A frame whose mean HSV value (0..255) is below this is black: hue and saturation of
#: near-black pixels are noise, so a fade's last step to pure black scores like a hard cut.
BLACK = 12.0
#: Size (width, height) of the thumbnails kept to compare frames a few apart (flash check).
_THUMB = (32, 18)
#: Two frames show one shot moved when they correlate at least this well (normalised, :func:`move_scores`) at
#: some move up to :data:`SHAKE`. A shot shaken 4 % of the width afresh every frame, whose move at one frame lay
#: beyond :data:`SHAKE`, matched 0.99 two frames on; across cuts between textured and look-alike takes under
#: every generated shake the best match was -0.25 to 0.27.
SAME_SHOT = 0.8
#: A candidate whose two frames show one pattern is a jump cut (the same shot reframed a little, a few seconds
#: removed), not a change of light, when the second frame matches the first moved by a pixel or more with at
#: most this share left of what the unmoved match leaves unexplained (1 - correlation), and the motion just
#: before and just after it is another. On generated jump cuts of 2 to 5 % the share was 0.02 to 0.2; the light
#: of a strobe or a lamp moves nothing, and the best move stays 0.
JUMP_RESIDUAL = 0.5
#: A change is one of light, not of picture, when the brightness patterns of the two frames still
#: correlate this well (Pearson, over the pixels lit in either): a strobe, a lamp switched on. On
#: generated clips one shot under a flashing light correlates 0.94 to 1 (0.84 to 0.88 where the light
#: blows the highlights out), different shots below 0.2, and a jump cut that shifts the framing by 4%
#: of its width 0.82 (by 2 %: 0.95; :data:`JUMP_RESIDUAL` tells those from a change of light).
RELIT = 0.85
#: A change of light between two frames is abrupt (a strobe, a switch) from this jump in mean level (of
#: 255) or this change of log contrast (42%). A fade or a dip to black over 0.3 s or more moves less per
#: frame while the frames are lit (its last, dim frames are not levelled), exposure drift far less.
LIGHT_JUMP = (25.0, 0.35)
#: Mean HSV value (of 255) under which a frame is too dim to level (:class:`_Leveller`).
_DIM = 64.0
#: A thumbnail whose lit pixels vary by less than this (standard deviation of HSV value) has no
#: pattern to compare: a flat card, a black frame.
_FLAT = 4.0
#: Gaussian blur (sigma, in pixels of the detector's frame) before the detector sees a frame. Film grain
#: and sensor noise are fresh in every frame, so they raise every frame's change score, and an adaptive
#: detector, which wants a cut to stand out from its neighbours' changes, stops seeing real cuts (a 30-level
#: grain hid two of three). A shot change is a change of large areas, which the blur keeps.
GRAIN_SIGMA = 1.5
#: A frame whose mean HSV value (of 255) is at least this is blown out: a flash's white frame (a photographer's
#: flash, a muzzle flash, lightning), with at most a faint trace of the picture left.
BLOWN = 200.0
#: Longest white flash in frames: the blown-out frames of a flash last 1 to 3 frames at 24 to 30 fps.
FLASH_FRAMES = 3
#: A flash hides a shot's motion for its frames: the frames either side of it still show one shot when their
#: brightness patterns correlate at most this much less (Pearson) than frames as far apart just before or
#: after the flash do (:data:`_KEEPS_PATTERN`). Behind 1-3 frame flashes over generated pans of 2 and 4 px a
#: frame and moving shapes the shortfall was at most 0.01; a cut under a 2-frame flash fell short by 0.41 to 0.98.
FLASH_MOTION = 0.1
#: Where the shot keeps no pattern over that span (busy, noisy), the frames either side of the flash show one
#: shot when they differ (:func:`_distance`) at most this many times as much as the frames around it do:
#: 0.89 to 0.93 times behind flashes in a busy generated shot, 7.3 times across a cut under a flash there.
FLASH_MOVED = 2.0
#: Correlation over a flash's span from which a shot keeps its pattern; below it the pattern is mostly noise
#: or fast motion (a busy, noisy generated shot: 0.07 to 0.42 over 2 to 4 frames).
_KEEPS_PATTERN = 0.5


def min_shot_frames(fps: float, seconds: float = MIN_SHOT) -> int:
    """``seconds`` as a whole number of frames at ``fps``, rounded up, at least 1."""
    return max(1, math.ceil(seconds * fps - 1e-6))


def _hsv_thumb(frame_bgr: np.ndarray) -> np.ndarray:
    import cv2

    small = cv2.resize(frame_bgr, _THUMB, interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(small, cv2.COLOR_BGR2HSV).astype(np.int16)


def _degrain(frame_bgr: np.ndarray) -> np.ndarray:
    """``frame_bgr`` with its grain smoothed away (:data:`GRAIN_SIGMA`)."""
    import cv2

    return cv2.GaussianBlur(frame_bgr, (7, 7), GRAIN_SIGMA)  # +-2 sigma: the default 11 taps cost twice


def _jump(grey: list[np.ndarray]) -> bool:
    """Whether grey frames ``c - 2 .. c + 1`` show a jump cut at ``c``: the picture at ``c`` is the one before
    it moved as a whole, the best small move explaining nearly all the change (:data:`JUMP_RESIDUAL`), and that
    move is not the move of the frames just before and just after (a pan under a flashing light)."""
    move, best, still = best_move(grey[1], grey[2])
    if move == (0, 0) or 1 - best > JUMP_RESIDUAL * (1 - still):
        return False
    usual = [best_move(grey[0], grey[1])[0], best_move(grey[2], grey[3])[0]]
    return all(max(abs(move[0] - u[0]), abs(move[1] - u[1])) >= 1 for u in usual)


def _distance(a: np.ndarray, b: np.ndarray) -> float:
    """ContentDetector's score (mean of the hue, saturation and value differences) of two thumbnails."""
    return float(np.mean(np.abs(a - b)))


def _pattern_match(a: np.ndarray, b: np.ndarray) -> float | None:
    """Correlation of two thumbnails' brightness patterns over the pixels lit in either (black bars
    and black areas are left out: they would correlate for any two shots); None when either is flat."""
    va, vb = a[..., 2].astype(np.float64), b[..., 2].astype(np.float64)
    lit = (va >= BLACK) | (vb >= BLACK)
    if not lit.any():
        return None
    x, y = va[lit] - va[lit].mean(), vb[lit] - vb[lit].mean()
    sx, sy = float(x.std()), float(y.std())
    if sx < _FLAT or sy < _FLAT:
        return None
    return float(np.mean(x * y) / (sx * sy))


class _Leveller:
    """Undoes abrupt changes of light on one picture for a picture-comparing detector.

    A light that flashes every few frames makes every frame change a lot, so an adaptive detector
    no longer sees the real cuts among them stand out. When a frame shows the previous one's
    pattern (:func:`_pattern_match` >= :data:`RELIT`) but its level or contrast jumped
    (:data:`LIGHT_JUMP`), its levels are mapped onto the previous frame's as the detector saw it; the
    mapping holds while the light stays and ends at a cut or in a dim frame (below :data:`_DIM`).
    Gradual changes (fades, exposure drift) never start one, so fades reach the detector as they are.
    """

    def __init__(self) -> None:
        self._thumb: np.ndarray | None = None
        self._stats = (0.0, 0.0)  # mean and spread of the previous frame's levels
        self._map = (1.0, 0.0)  # gain and offset applied to the previous frame

    def __call__(self, frame_bgr: np.ndarray, thumb: np.ndarray) -> np.ndarray:
        import cv2

        mean, std = cv2.meanStdDev(frame_bgr.reshape(-1))  # one pass in C, no float copy of the frame
        stats = (float(mean[0, 0]), max(float(std[0, 0]), 1e-3))
        prev, (pm, ps), (g0, o0) = self._thumb, self._stats, self._map
        jump = prev is not None and (
            abs(stats[0] - pm) >= LIGHT_JUMP[0] or abs(math.log(stats[1] / ps)) >= LIGHT_JUMP[1]
        )
        if jump or self._map != (1.0, 0.0):  # only then can the pattern change what is done
            match = _pattern_match(prev, thumb)
            if float(thumb[..., 2].mean()) < _DIM or match is None or match < RELIT:
                self._map = (1.0, 0.0)
            elif jump:
                gain = float(np.clip(g0 * ps / stats[1], 1 / 3, 3))
                self._map = (gain, g0 * pm + o0 - gain * stats[0])
        self._thumb, self._stats = thumb, stats
        gain, offset = self._map
        if (gain, offset) == (1.0, 0.0):
            return frame_bgr
        return np.clip(frame_bgr.astype(np.float32) * gain + offset, 0, 255).astype(np.uint8)


class CutDetector:
    """Feeds frames to one PySceneDetect detector and collects cut times in seconds.

    ``threshold`` None keeps the detector's own default (adaptive 3.0, content 27,
    threshold 12, hash 0.35, histogram 0.2). ``min_shot`` is the shortest shot in seconds
    (converted to frames at ``fps``); it holds for the first and last shot too. The
    detector sees each frame with its grain smoothed (:data:`GRAIN_SIGMA`) and, unless it is
    the threshold detector, a strobe's light levelled (:class:`_Leveller`). It reports every
    candidate; this class then drops

    * changes of light: a candidate whose two frames still show one brightness pattern (a strobe,
      a lamp switched on; :data:`RELIT`), however long the light stays, unless the second shows the
      first moved as a whole where the frames around it did not move so (a jump cut; :data:`JUMP_RESIDUAL`);
    * flashes: a candidate inside a stretch shorter than ``min_shot`` after which the
      picture returns to what it was (a white flash, a codec's keyframe pop);
    * fades to or from black at the clip's ends: a candidate between two black frames
      with no picture before it or none after it. A fade through black between two
      pictures keeps its cut (a scene change, scored like a cut);
    * cuts that leave a shot shorter than ``min_shot`` (the earlier cut is kept).

    One instance serves one clip; make a new one per clip.
    """

    def __init__(
        self, *, fps: float, detector: str = "adaptive", threshold: float | None = None, min_shot: float = MIN_SHOT
    ) -> None:
        if detector not in DETECTORS:
            raise ParameterError(f"unknown cut detector {detector!r} (known: {', '.join(DETECTORS)})")
        if threshold is not None and not threshold > 0:
            raise ParameterError(f"`threshold` must be positive (received {threshold})")
        if not fps > 0:
            raise ParameterError(f"`fps` must be positive (received {fps})")
        if not min_shot > 0:
            raise ParameterError(f"`min_shot` must be positive seconds (received {min_shot})")
        import scenedetect.detectors as sd  # imported here: it pulls in OpenCV

        cls_name, arg = DETECTORS[detector]
        params: dict[str, float | int] = {"min_scene_len": 0}  # every candidate: the length rule is ours
        if threshold is not None:
            params[arg] = threshold
        self.name = detector
        self._detector = (steadied_adaptive() if detector == "adaptive" else getattr(sd, cls_name))(**params)
        self._raw: list[float] = []  # the adaptive detector's scores without undoing the camera's move
        self._steady_only: set[int] = set()  # candidates only the steadied scores show (:meth:`_shaken`)
        self._fps = float(fps)
        self._min_frames = min_shot_frames(self._fps, min_shot)
        self._times: list[float] = []
        self._brightness: list[float] = []  # mean HSV value of every frame
        self._thumbs: deque[np.ndarray] = deque(maxlen=2 * self._min_frames + 16)  # the latest frames
        # the same frames as the detector saw them before levelling, kept by reference (no copy, no work per
        # frame): the jump-cut check turns the few it needs grey
        self._seen: deque[np.ndarray] = deque(maxlen=self._thumbs.maxlen)
        self._pending: list[int] = []  # candidates whose following frames are not all in yet
        self._candidates: list[int] = []  # candidates that passed the checks
        self._done = False
        self._leveller = _Leveller()
        self._last: np.ndarray | None = None  # the latest frame fed, shown until the next one

    def _timecode(self, index: int):
        from scenedetect import FrameTimecode

        return FrameTimecode(index, fps=self._fps)

    def feed(self, index: int, time: float, frame_bgr: np.ndarray) -> None:
        """Process frame ``index`` (0-based, consecutive) shown at ``time`` seconds.

        A frame held on screen for longer than :data:`HELD` frames (a screen recording or a slideshow
        stores a still picture once, with variable frame rate) is fed again, a frame period apart, as a
        player keeps showing it (at most as many times as the checks look back), so a shot held for
        seconds is seen as a shot and not as a one-frame flash between two cuts."""
        if self._times and self._last is not None:
            held = min(round((time - self._times[-1]) * self._fps) - 1, self._thumbs.maxlen or 0)
            if held >= HELD:
                for _ in range(held):
                    self._feed(self._times[-1] + 1.0 / self._fps, self._last)
        self._last = frame_bgr
        self._feed(time, frame_bgr)

    def _feed(self, time: float, frame_bgr: np.ndarray) -> None:
        index = len(self._times)
        thumb = _hsv_thumb(frame_bgr)
        self._times.append(time)
        self._brightness.append(float(thumb[..., 2].mean()))
        self._thumbs.append(thumb)
        seen = _degrain(frame_bgr)
        self._seen.append(seen)
        if self.name not in _BY_BRIGHTNESS:
            seen = self._leveller(seen, thumb)
        found = [tc.frame_num for tc in self._detector.process_frame(self._timecode(index), seen)]
        if self.name == "adaptive":  # the frame it judged also as it would have unsteadied (jump cuts move too)
            self._raw.append(self._detector.raw_score)
            judged = len(self._raw) - 3  # two frames each side
            unsteadied = [judged] if judged >= 2 and self._raw_stands_out(judged) else []
            self._steady_only.update(set(found) - set(unsteadied))
            found = sorted(set(found) | set(unsteadied))
        self._pending += found
        self._check_pending(final=False)

    def _raw_stands_out(self, c: int) -> bool:
        """Whether frame ``c``'s change before undoing the camera's move passes AdaptiveDetector's test (at least
        its threshold times the mean of the two frames either side, and its minimum change)."""
        d, around = self._detector, self._raw[c - 2 : c] + self._raw[c + 1 : c + 3]
        mean = sum(around) / len(around)
        return self._raw[c] >= d.min_content_val and self._raw[c] >= d.adaptive_threshold * mean

    def _thumb(self, index: int) -> np.ndarray:
        return self._thumbs[index - (len(self._times) - len(self._thumbs))]

    def _check_pending(self, *, final: bool) -> None:
        """Check the candidates whose following ``min_shot`` has been fed (all when ``final``)."""
        n, k = len(self._times), self._min_frames
        ready = [c for c in self._pending if final or c + k < n]
        self._pending = [c for c in self._pending if c not in ready]
        self._candidates += [c for c in ready if 0 < c < n and self._stands_out(c) and not self._relit(c)
                             and (c not in self._steady_only or not self._shaken(c))
                             and (self._between_black(c) or not self._is_flash(c))]

    def _relit(self, c: int) -> bool:
        """Whether candidate ``c`` changes the light on the same picture (a strobe, a lamp), not the picture."""
        match = _pattern_match(self._thumb(c - 1), self._thumb(c))
        return match is not None and match >= RELIT and not self._reframed(c)

    def _greys_around(self, c: int) -> list[np.ndarray] | None:
        """Frames ``c - 2 .. c + 1`` as the detector saw them, grey (:func:`grey_frame`); None when they are not
        all held."""
        n, oldest = len(self._times), len(self._times) - len(self._seen)
        if c - 2 < oldest or c + 1 >= n:
            return None
        return [grey_frame(self._seen[i - oldest]) for i in (c - 2, c - 1, c, c + 1)]

    def _reframed(self, c: int) -> bool:
        """Whether candidate ``c`` shows the picture before it moved as a whole (a jump cut; :func:`_jump`)."""
        grey = self._greys_around(c)
        return grey is not None and _jump(grey)

    def _shaken(self, c: int) -> bool:
        """Whether candidate ``c``, seen only once the camera's move is undone, is one shot shaken further than
        :data:`SHAKE` from one frame to the next: a frame of the two before it shows the picture of one of the
        two after it, moved up to :data:`SHAKE` (:data:`SAME_SHOT`), and it is no jump cut (:func:`_jump`)."""
        grey = self._greys_around(c)
        if grey is None:
            return False
        same = any(float(move_scores(grey[a], grey[b], SHAKE).max()) >= SAME_SHOT for a in (0, 1) for b in (2, 3))
        return same and not _jump(grey)

    def _same_picture(self, a: int, b: int, step: float) -> bool:
        """Whether frames ``a`` and ``b`` differ by less than half of ``step`` and, where both have a
        pattern, show the same one: two frames lit alike by a strobe are not the same picture."""
        if _distance(self._thumb(a), self._thumb(b)) >= 0.5 * step:
            return False
        match = _pattern_match(self._thumb(a), self._thumb(b))
        return match is None or match >= RELIT

    def _step(self, i: int) -> float:
        return _distance(self._thumb(i - 1), self._thumb(i))

    def _stands_out(self, c: int) -> bool:
        """Whether candidate ``c`` changes the picture at least ``_STANDS_OUT`` times as much as the
        two frames either side do (always true for the detectors that see to it themselves)."""
        if self.name not in _FIXED_THRESHOLD:
            return True
        n, oldest = len(self._times), len(self._times) - len(self._thumbs)
        around = [self._step(i) for i in (c - 2, c - 1, c + 1, c + 2) if oldest < i < n]
        return not around or self._step(c) >= _STANDS_OUT * float(np.mean(around))

    def _between_black(self, c: int) -> bool:
        """Whether the frames either side of candidate ``c`` are both black. The flash check leaves
        these to :meth:`_in_black`: two dark frames of a fade through black compare alike."""
        return self._brightness[c - 1] < BLACK and self._brightness[c] < BLACK

    def _touches_black(self, c: int) -> bool:
        """Whether candidate ``c`` leads out of a black frame or into one."""
        return self._brightness[c - 1] < BLACK or self._brightness[c] < BLACK

    def _change_at(self, c: int) -> float:
        """How much the picture changes at candidate ``c``: the thumbnails' distance, or only their
        brightness change where one side is black (a black frame's hue and saturation are noise, which
        would make a dim frame leaving black look like a leap; the flash check needs the true size)."""
        if not self._touches_black(c):
            return self._step(c)
        return float(np.mean(np.abs(self._thumb(c - 1)[..., 2] - self._thumb(c)[..., 2])))

    def _is_flash(self, c: int) -> bool:
        """Whether the picture comes back within ``min_shot`` to what it was before candidate ``c``.

        Frames ``a < c <= b`` with fewer than ``min_shot`` frames between them are compared; the
        picture has come back when they differ by less than half the change at ``c`` and show the
        same pattern (:meth:`_same_picture`).
        """
        n, k = len(self._times), self._min_frames
        first = max(0, c - k, n - len(self._thumbs))
        step = self._change_at(c)
        return self._white_flash(c, step) or any(
            self._same_picture(a, b, step)
            for a in range(first, c)
            for b in range(c, min(n, a + k + 1))
            if (a, b) != (c - 1, c)
        )

    def _flash_around(self, c: int) -> tuple[int, int] | None:
        """The frames ``(a, b)`` either side of a white flash that candidate ``c`` leads into or out of: the
        1 to :data:`FLASH_FRAMES` frames between them are blown out, at least :data:`BLOWN` and a light jump
        (:data:`LIGHT_JUMP`) brighter than both (a bright shot is no flash); None when there is none."""
        oldest, n = len(self._times) - len(self._thumbs), len(self._times)
        v = self._brightness
        for a in range(c - 1, max(oldest, c - 1 - FLASH_FRAMES) - 1, -1):
            for b in range(max(c, a + 2), min(n, a + FLASH_FRAMES + 2)):
                level = max(v[a], v[b]) + LIGHT_JUMP[0]
                if all(v[i] >= max(BLOWN, level) for i in range(a + 1, b)):
                    return a, b
        return None

    def _white_flash(self, c: int, step: float) -> bool:
        """Whether candidate ``c`` leads into or out of a white flash (:meth:`_flash_around`) with one shot
        either side of it. The frames either side are as far apart as the flash is long, so in a shot that
        moves (a pan, people walking) they differ by that motion too; they show one shot when they differ by
        less than half the change at ``c`` and either correlate nearly as well as frames as far apart just
        before or just after the flash do (:data:`FLASH_MOTION`) or, in a shot that keeps no pattern over as
        many frames, differ not much more than those do (:data:`FLASH_MOVED`)."""
        around_flash = self._flash_around(c)
        if around_flash is None:
            return False
        a, b = around_flash
        if _distance(self._thumb(a), self._thumb(b)) >= 0.5 * step:
            return False
        match = _pattern_match(self._thumb(a), self._thumb(b))
        if match is None or match >= RELIT:
            return True
        oldest, n, span = len(self._times) - len(self._thumbs), len(self._times), b - a
        v = self._brightness
        around = [(x, y) for x, y in ((a - span, a), (b, b + span))  # the same span, lit alike at both ends
                  if x >= oldest and y < n and abs(v[x] - v[y]) < LIGHT_JUMP[0]]
        usual = [_pattern_match(self._thumb(x), self._thumb(y)) for x, y in around]
        usual = [m for m in usual if m is not None and m >= _KEEPS_PATTERN]
        if usual:  # the shot keeps its pattern over as many frames: the frames either side must keep it too
            return match >= min(usual) - FLASH_MOTION
        moved = max((_distance(self._thumb(x), self._thumb(y)) for x, y in around), default=0.0)
        return _distance(self._thumb(a), self._thumb(b)) <= FLASH_MOVED * moved  # a busy shot: compare how much

    def _in_black(self, frames: list[int]) -> set[int]:
        """The candidates among ``frames`` that touch a black frame with no picture before them or
        none after (in or at the edge of a fade from black at the start or to black at the end)."""
        lit = [i for i, v in enumerate(self._brightness) if v >= BLACK]
        return {
            c for c in frames if self._touches_black(c) and (not lit or c <= lit[0] or c > lit[-1])
        }

    def _spaced(self, frames: list[int]) -> list[int]:
        """``frames`` (sorted) without those that leave a shot shorter than ``min_shot``, the first and
        last shot included; of two cuts too close together the earlier is kept."""
        k, n = self._min_frames, len(self._times)
        kept: list[int] = []
        for f in frames:
            if f - (kept[-1] if kept else 0) >= k and n - f >= k:
                kept.append(f)
        return kept

    def cuts(self) -> tuple[float, ...]:
        """Cut times (seconds, the first frame of each new shot), after the last frame was fed."""
        if not self._done and self._times:
            self._pending += [tc.frame_num for tc in self._detector.post_process(self._timecode(len(self._times) - 1))]
            self._check_pending(final=True)
            self._done = True
        frames = sorted(set(self._candidates))
        black = self._in_black(frames)
        frames = [c for c in frames if c not in black]
        return tuple(round(self._times[f], 4) for f in self._spaced(frames))


def detect_cuts(
    path: str | Path, *, detector: str = "adaptive", threshold: float | None = None, width: int = 160
) -> tuple[float, ...]:
    """Cut times in ``path`` (one decode pass at ``width`` pixels wide)."""
    from analysis.media.decode import decode_report
    from analysis.media.probe import probe

    info = probe(path)
    cd = CutDetector(fps=info.fps or 25.0, detector=detector, threshold=threshold)
    decode_report(path, sample_fps=1.0, width=32, frame_sink=cd.feed, sink_width=width)
    return cd.cuts()


