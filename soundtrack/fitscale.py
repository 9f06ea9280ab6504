"""A fit scale a creator reads: a 0-100 number, a word, and "no track fits" only below a calibrated line.

The ranker's blended score (:mod:`matching.ranking.ranker`) is in [0, 1] but its level depends
on the library and the weights, so a raw 0.41 says little. The page shows instead:

* **Fit, 0-100**: the track's percentile among every library track's score *for the same
  clip*: 100 is the library's best for this clip, 50 its median track (:func:`percentiles`).
* **A word**, from the absolute score against lines calibrated on the library itself
  (:func:`calibrate`): :data:`REFERENCE_CLIPS` reference arcs (seeded smooth valence/arousal
  curves of 8-40 s with cuts, :func:`reference_arcs`) are ranked against the library with the
  same weights, and the best score each one gets is kept. A score at least the median of
  those bests is **great** (as good as the library's best for a typical clip); at least their
  10th percentile is **good**; below that it is **weak**.
* **"No track fits"** when the best track for the clip is weak: the library does worse for
  it than for nine reference clips in ten.

The scale is cached per catalogue and weights (``fit-scales`` in :mod:`analysis.caches`), so
it is computed once per library state. ``python -m soundtrack.fitscale`` prints the
calibrated numbers on the demo library.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from analysis.arc import EmotionArc
from analysis.caches import Cache
from matching.ranking.ranker import rank
from matching.ranking.weights import MatchWeights

#: How many reference arcs calibrate the lines.
REFERENCE_CLIPS = 24
#: Percentile of the reference bests at and above which a score reads "great".
GREAT_PERCENTILE = 50.0
#: Percentile of the reference bests below which a score reads "weak" (and a best: "no track fits").
WEAK_PERCENTILE = 10.0

_SCALES = Cache("fit-scales")


@dataclass(frozen=True)
class FitScale:
    """The calibrated lines on the blended score for one library and weights."""

    great: float
    good: float
    #: The best score of each reference arc, ascending.
    bests: tuple[float, ...]

    def word(self, score: float) -> str:
        return "great" if score >= self.great else "good" if score >= self.good else "weak"

    def fits(self, best: float) -> bool:
        """Whether a clip whose best track scores ``best`` has a track that fits (the calibrated line)."""
        return best >= self.good


def reference_arcs(n: int = REFERENCE_CLIPS, *, hop: float = 0.5, seed: int = 0) -> list[EmotionArc]:
    """``n`` seeded clip-like arcs: smooth valence/arousal walks of 8-40 s with a jump at each cut."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        steps = int(rng.uniform(8.0, 40.0) / hop)
        t = np.arange(steps) * hop
        curves = []
        for _dim in range(2):
            level = rng.uniform(-0.6, 0.6) + np.cumsum(rng.normal(0, 0.04, steps))
            cuts = rng.choice(steps, size=int(rng.integers(0, 4)), replace=False)
            for c in cuts:
                level[c:] += rng.normal(0, 0.3)
            curves.append(np.clip(np.convolve(level, np.ones(3) / 3, mode="same"), -1, 1))
        out.append(EmotionArc.from_va(t + hop / 2, curves[0], curves[1]))
    return out


def calibrate(catalog: Any, weights: MatchWeights, *, n: int = REFERENCE_CLIPS) -> FitScale:
    """The lines for ``catalog`` (a :class:`matching.ranking.catalog.Catalog`) under ``weights``."""
    bests = sorted(float(r[0].score) for r in (rank(a, catalog, k=1, weights=weights) for a in reference_arcs(n))
                   if len(r))
    if not bests:
        return FitScale(great=1.0, good=1.0, bests=())
    return FitScale(great=float(np.percentile(bests, GREAT_PERCENTILE)),
                    good=float(np.percentile(bests, WEAK_PERCENTILE)), bests=tuple(bests))


def scale_for(catalog: Any, weights: MatchWeights) -> FitScale:
    """:func:`calibrate`, once per catalogue object and weights (a library write makes a new catalogue)."""
    key = (id(catalog), len(catalog), round(weights.blend[0], 2), weights.transition, weights.max_stretch)
    return _SCALES.get(key, lambda: calibrate(catalog, weights))


def percentiles(scores: Sequence[float], everyone: Sequence[float]) -> list[int]:
    """Each of ``scores`` as the share (0-100) of the *other* tracks in ``everyone`` that score lower.

    ``everyone`` holds every library track's score for the clip (``scores`` among them); ties
    count half. With one track, its fit is 100.
    """
    pool = np.sort(np.asarray(everyone, dtype=np.float64))
    n = len(pool)
    out = []
    for s in scores:
        below = np.searchsorted(pool, s, side="left")
        ties = np.searchsorted(pool, s, side="right") - below - 1  # the track itself is not its own rival
        out.append(100 if n <= 1 else round(100 * (below + 0.5 * max(ties, 0)) / (n - 1)))
    return out


def main() -> None:
    """Print the calibrated scale on the demo library with the general preset's weights."""
    from matching.library.demo import demo_library
    from matching.ranking.weights import weights_for

    cat = demo_library().catalog()
    w = weights_for("general", None)
    scale = calibrate(cat, w)
    print(f"demo library: {len(cat)} tracks, weights {w.to_dict()}")
    print("best score of each reference arc:", " ".join(f"{b:.3f}" for b in scale.bests))
    print(f"great >= {scale.great:.3f} (p{GREAT_PERCENTILE:.0f} of bests), good >= {scale.good:.3f} "
          f"(p{WEAK_PERCENTILE:.0f}), weak below; 'no track fits' when the best < {scale.good:.3f}")


if __name__ == "__main__":
    main()
