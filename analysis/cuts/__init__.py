"""Hard cuts with PySceneDetect on downscaled frames, and pace (cuts per minute) over time.

:class:`CutDetector` is fed every decoded frame (``analysis.media.decode`` hands them over in
the same pass that samples frames for the sources, so nothing is decoded twice). The
default is ``AdaptiveDetector``: the strongest of PySceneDetect's detectors at their
defaults on its own benchmark (hard-cut F1 91.6 on BBC), because it compares each
frame's change with its neighbours' and so ignores steady camera motion; each frame's change is scored
after undoing the camera's small global move, so a handheld camera's shake does not hide the cuts either.
"""

from analysis.cuts.detector import DETECTORS, MIN_SHOT, CutDetector, detect_cuts, min_shot_frames
from analysis.cuts.pace import Pace, pace

__all__ = ["DETECTORS", "MIN_SHOT", "CutDetector", "Pace", "detect_cuts", "min_shot_frames", "pace"]
