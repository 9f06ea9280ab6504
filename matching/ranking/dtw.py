"""DTW between valence-arousal arcs, with transition channels.

A clip's arc (``n`` steps) is compared with a track's arc in two stages:

1. **Section search** (subsequence alignment, Müller 2015: the series' start and end
   relaxed as dtaidistance's ``psi`` does, on the weighted valence/arousal levels):
   the end of the best-matching section is the argmin of the last row of the
   accumulated-cost matrix; its start is found by the same search on the reversed
   sequences, anchored at that end. The section length is then clamped so that
   fitting it to the clip needs a time-stretch of at most ``max_stretch``. The search
   can rest many clip steps on a few track steps, so on a slowly moving arc it finds a
   short section and the clamp gives the largest slow-down; the window of the clip's own
   length about the same centre is scored too, and kept unless the stretched section fits
   better by more than :data:`STRETCH_COST` per unit of ``|ln stretch|`` (music played
   slower or faster is heard; an arc closer by a hundredth is not).
2. **Scoring** (length-normalised, windowed DTW): the section is resampled to the
   clip's ``n`` steps (exactly what fitting will do to the audio), so long and short
   tracks compare on the same footing, and compared by DTW with a Sakoe-Chiba band of
   ``ceil(window * n)`` steps. The distance is divided by ``sqrt(n)``: the result is a
   root-mean-square step distance in VA units.

Each step is the 4-vector described in :class:`matching.ranking.weights.MatchWeights`
(weighted valence, arousal and their changes per second), so a rise from sadness to
joy costs more to miss than a flat stretch. :func:`distance_to_score` maps a distance
to [0, 1].

:func:`align` and :func:`align_series` run compiled kernels
(:mod:`matching.ranking.dtw_kernels`, many tracks in parallel); :func:`best_section`
and :func:`arc_distance` are the same two stages on dtaidistance's C code, kept as
the reference the kernels are tested against (``tests/test_dtw_kernels.py``).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
from dtaidistance import dtw_ndim

from analysis.errors import ParameterError
from matching.ranking.dtw_kernels import align_many, band
from matching.ranking.weights import STRETCH_COST, MatchWeights

DEFAULT = MatchWeights()


def features(va: np.ndarray, hop: float, weights: MatchWeights = DEFAULT) -> np.ndarray:
    """``(n, 4)`` float64 DTW channels of an ``(n, 2)`` VA array sampled every ``hop`` seconds.

    Channels: ``sqrt(w_v) * v``, ``sqrt(w_a) * a``, and ``sqrt(w_t)`` times the
    change per second of each across ``transition_span`` seconds (zero for one step).
    """
    va = np.asarray(va, dtype=np.float64)
    if va.ndim != 2 or va.shape[1] != 2 or va.shape[0] < 1:
        raise ParameterError(f"`va` must be an (n, 2) array with n >= 1 (received shape {va.shape})")
    if hop <= 0:
        raise ParameterError(f"`hop` must be positive (received {hop})")
    deriv = _slope(va, hop, weights.transition_span)
    scale = np.sqrt([weights.valence, weights.arousal])
    out = np.empty((va.shape[0], 4))
    out[:, :2] = va * scale
    out[:, 2:] = deriv * scale * math.sqrt(weights.transition)
    return out


def _slope(va: np.ndarray, hop: float, span: float) -> np.ndarray:
    """Change per second measured across ``span`` seconds (central, one-sided at the ends).

    A span of a couple of seconds reads the emotional transition, not frame-to-frame
    jitter; it also makes the channel robust to the small resampling of fitting.
    """
    n = va.shape[0]
    if n < 2:
        return np.zeros_like(va)
    k = max(1, round(span / (2 * hop)))
    idx = np.arange(n)
    hi = np.minimum(idx + k, n - 1)
    lo = np.maximum(idx - k, 0)
    return (va[hi] - va[lo]) / ((hi - lo)[:, None] * hop)


def distance_to_score(distance: float | np.ndarray, scale: float = DEFAULT.distance_scale) -> float | np.ndarray:
    """Map an RMS step distance ``d >= 0`` to ``1 / (1 + (d / scale)^2)`` in (0, 1].

    0 gives 1, ``scale`` gives 0.5, ``2 * scale`` gives 0.2; monotone decreasing, so
    a lower bound on the distance gives an upper bound on the score.
    """
    d = np.asarray(distance, dtype=np.float64) / scale
    out = 1.0 / (1.0 + d * d)
    return float(out) if out.ndim == 0 else out


def resample_va(va: np.ndarray, n: int) -> np.ndarray:
    """Linear resampling of an ``(m, c)`` array along time to ``n`` steps (same start and end)."""
    va = np.asarray(va, dtype=np.float64)
    m = va.shape[0]
    if m == n:
        return va
    if m == 1:
        return np.repeat(va, n, axis=0)
    x = np.linspace(0.0, m - 1.0, n)
    xp = np.arange(m, dtype=np.float64)
    return np.stack([np.interp(x, xp, va[:, c]) for c in range(va.shape[1])], axis=1)


def arc_distance(query_va: np.ndarray, series_va: np.ndarray, *, hop: float, weights: MatchWeights = DEFAULT) -> float:
    """Length-normalised windowed DTW distance of two whole arcs.

    ``series_va`` is stretched (linearly resampled) to the length of ``query_va``, as
    fitting stretches the audio, and both are then read in the query's time base of
    ``hop`` seconds per step. A section is scored as it will play, cut out of its
    track: its change channels are computed inside it, like the clip's.
    """
    q = np.asarray(query_va, dtype=np.float64)
    if q.ndim != 2 or q.shape[0] < 1:
        raise ParameterError(f"`query_va` must be an (n, 2) array with n >= 1 (received shape {q.shape})")
    return _fitted_distance(features(q, hop, weights), series_va, hop=hop, weights=weights)


def _fitted_distance(fq: np.ndarray, series_va: np.ndarray, *, hop: float, weights: MatchWeights) -> float:
    """:func:`arc_distance` with the query's features (:func:`features`) given."""
    n = fq.shape[0]
    fs = features(resample_va(series_va, n), hop, weights)
    return float(dtw_ndim.distance_fast(fq, fs, window=band(n, weights))) / math.sqrt(n)


@dataclass(frozen=True)
class Section:
    """Where a query fits best inside a series, in steps of the series (``end`` inclusive)."""

    start: int
    end: int
    #: Accumulated squared cost of the subsequence alignment divided by the query length.
    search_cost: float

    @property
    def length(self) -> int:
        return self.end - self.start + 1


def best_section(
    query_va: np.ndarray, series_va: np.ndarray, *, hop: float, weights: MatchWeights = DEFAULT
) -> Section:
    """Best-matching section of ``series_va`` for ``query_va`` by subsequence DTW.

    The series may be shorter than the query; then the section is usually all of it.
    """
    return section_search(features(query_va, hop, weights), features(series_va, hop, weights), weights=weights)


def section_search(fq: np.ndarray, fs: np.ndarray, *, weights: MatchWeights = DEFAULT) -> Section:
    """:func:`best_section` on feature arrays (see :func:`features`).

    The search reads the level channels only: a section's derivative channels near its
    edges depend on what lies outside it, which pulls the found edges inwards; the
    transitions are weighed when the fitted section is scored.
    """
    fq = np.ascontiguousarray(fq[:, :2])
    fs = np.ascontiguousarray(fs[:, :2])
    n, m = fq.shape[0], fs.shape[0]
    if m == 1:
        return Section(0, 0, float(((fq - fs) ** 2).sum()) / n)
    _, paths = dtw_ndim.warping_paths_fast(
        fq, fs, penalty=weights.penalty, psi=(0, 0, m, m), compact=False, psi_neg=False
    )
    last = paths[n, 1:] ** 2  # accumulated squared cost for every end step
    end = int(np.argmin(last))
    cost = float(last[end]) / n
    # The start: the same search on reversed sequences, pinned at `end`, free at the other side.
    rq = np.ascontiguousarray(fq[::-1])
    rs = np.ascontiguousarray(fs[: end + 1][::-1])
    if rs.shape[0] == 1:
        return Section(end, end, cost)
    _, rpaths = dtw_ndim.warping_paths_fast(
        rq, rs, penalty=weights.penalty, psi=(0, 0, 0, rs.shape[0]), compact=False, psi_neg=False
    )
    k = int(np.argmin(rpaths[n, 1:]))
    return Section(end - k, end, cost)


def clamp_section(section: Section, *, n: int, m: int, max_stretch: float) -> Section:
    """Grow or shrink ``section`` about its centre to ``[n / max_stretch, n * max_stretch]`` steps.

    The result stays inside ``[0, m)``.
    """
    lo = max(1, math.ceil(n / max_stretch - 1e-9))
    hi = max(lo, math.floor(n * max_stretch + 1e-9))
    length = min(max(section.length, lo), hi, m)
    centre = (section.start + section.end) / 2
    start = round(centre - (length - 1) / 2)
    start = min(max(0, start), m - length)
    return Section(start, start + length - 1, section.search_cost)


def fit_section(
    query_va: np.ndarray, series_va: np.ndarray, *, hop: float, weights: MatchWeights = DEFAULT
) -> tuple[float, int, int]:
    """``(distance, first, last)``: the section :func:`align` fits, on dtaidistance (the reference).

    The searched section clamped to ``max_stretch`` (:func:`best_section`, :func:`clamp_section`),
    or the unstretched window about its centre when that fits within :data:`STRETCH_COST`.
    """
    q, s = np.asarray(query_va, dtype=np.float64), np.asarray(series_va, dtype=np.float64)
    n, m = len(q), len(s)
    sec = clamp_section(best_section(q, s, hop=hop, weights=weights), n=n, m=m, max_stretch=weights.max_stretch)
    dist = arc_distance(q, s[sec.start : sec.end + 1], hop=hop, weights=weights)
    if sec.length == n or n > m:
        return dist, sec.start, sec.end
    first = min(max(0, round((sec.start + sec.end) / 2 - (n - 1) / 2)), m - n)
    plain = arc_distance(q, s[first : first + n], hop=hop, weights=weights)
    if plain <= dist + STRETCH_COST * abs(math.log(n / sec.length)):
        return plain, first, first + n - 1
    return dist, sec.start, sec.end


@dataclass(frozen=True)
class Alignment:
    """The exact comparison of a clip with one track (see the module docstring)."""

    #: RMS step distance of the clip against the fitted section.
    distance: float
    #: ``distance_to_score(distance) * coverage``, in [0, 1].
    score: float
    #: Section start and end in the track, seconds.
    start: float
    end: float
    #: Clip duration / section duration: > 1 means the section is slowed down to fit.
    stretch: float
    #: Share of the clip the fitted section covers (< 1 only for tracks too short to stretch).
    coverage: float


@dataclass(frozen=True)
class Alignments:
    """:class:`Alignment` of one clip with many series, one array per field."""

    distance: np.ndarray
    score: np.ndarray
    start: np.ndarray
    end: np.ndarray
    stretch: np.ndarray
    coverage: np.ndarray

    def __getitem__(self, i: int) -> Alignment:
        return Alignment(*(float(getattr(self, f.name)[i]) for f in dataclasses.fields(self)))


def _query(query_va: np.ndarray) -> np.ndarray:
    q = np.asarray(query_va, dtype=np.float64)
    if q.ndim != 2 or q.shape[1] != 2 or q.shape[0] < 1:
        raise ParameterError(f"`query_va` must be an (n, 2) array with n >= 1 (received shape {q.shape})")
    return q


def align_series(
    query_va: np.ndarray,
    va: np.ndarray,
    offsets: np.ndarray,
    *,
    hop: float,
    weights: MatchWeights = DEFAULT,
    query_features: np.ndarray | None = None,
) -> Alignments:
    """:func:`align` a clip with every series of ``va`` (series ``t`` is ``va[offsets[t]:offsets[t + 1]]``).

    All are sampled every ``hop`` seconds from time 0; they are aligned on every core.
    """
    q = _query(query_va)
    n = q.shape[0]
    offsets = np.asarray(offsets, dtype=np.int64)
    if offsets.ndim != 1 or offsets.size < 1 or np.any(np.diff(offsets) < 1):
        raise ParameterError("`offsets` must be increasing: every series needs at least one step")
    fq = features(q, hop, weights) if query_features is None else query_features
    dist, first, last = align_many(fq, va, offsets, hop=hop, weights=weights)
    raw_stretch = n / (last - first + 1)
    stretch = np.minimum(raw_stretch, weights.max_stretch)
    coverage = np.minimum(1.0, stretch / raw_stretch)
    score = distance_to_score(dist, weights.distance_scale) * coverage
    return Alignments(distance=dist, score=np.asarray(score, dtype=np.float64), start=first * hop,
                      end=(last + 1) * hop, stretch=stretch, coverage=coverage)  # fmt: skip


def align(
    query_va: np.ndarray,
    series_va: np.ndarray,
    *,
    hop: float,
    weights: MatchWeights = DEFAULT,
    query_features: np.ndarray | None = None,
) -> Alignment:
    """Find, fit and score the best section of a track (``series_va``) for a clip (``query_va``).

    Both arrays are sampled every ``hop`` seconds from time 0. ``query_features``, the
    clip's :func:`features` at ``hop`` and ``weights``, saves computing them per track when
    one clip is aligned with many (the result is the same).
    """
    s = np.asarray(series_va, dtype=np.float64)
    if s.ndim != 2 or s.shape[1] != 2 or s.shape[0] < 1:
        raise ParameterError(f"`series_va` must be an (m, 2) array with m >= 1 (received shape {s.shape})")
    return align_series(query_va, s, np.array([0, s.shape[0]]), hop=hop, weights=weights,
                        query_features=query_features)[0]  # fmt: skip
