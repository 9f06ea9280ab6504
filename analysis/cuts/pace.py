"""Pace: cuts per minute over time."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from analysis.arc import grid
from analysis.errors import ParameterError


@dataclass(frozen=True, eq=False)
class Pace:
    """Cuts per minute over time: ``cuts_per_minute[i]`` counts cuts within ``window``
    seconds centred on ``times[i]`` (the arc grid), scaled to a minute."""

    times: np.ndarray
    cuts_per_minute: np.ndarray
    mean: float  # cuts per minute over the whole clip
    window: float

    def to_dict(self) -> dict[str, object]:
        return {
            "times": [round(float(t), 4) for t in self.times],
            "cuts_per_minute": [round(float(x), 3) for x in self.cuts_per_minute],
            "mean": round(self.mean, 3),
            "window": self.window,
        }


def pace(cuts: tuple[float, ...] | list[float], duration: float, *, hop: float = 0.5, window: float = 10.0) -> Pace:
    """Cuts per minute in a sliding ``window`` (seconds) on ``grid(duration, hop)``.

    Near the clip's ends the window is clipped to the clip, and the count is divided
    by the part of the window that lies inside it, so the rate is not biased low there.
    """
    if not window > 0:
        raise ParameterError(f"`window` must be positive (received {window})")
    t = grid(duration, hop)
    c = np.sort(np.asarray(cuts, dtype=float))
    lo = np.clip(t - window / 2, 0.0, duration)
    hi = np.clip(t + window / 2, 0.0, duration)
    counts = np.searchsorted(c, hi, side="left") - np.searchsorted(c, lo, side="left")
    span = np.maximum(hi - lo, 1e-9)
    cpm = counts / span * 60.0
    return Pace(times=t, cuts_per_minute=cpm, mean=float(c.size / duration * 60.0), window=float(window))

