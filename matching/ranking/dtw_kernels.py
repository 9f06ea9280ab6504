"""The exact comparison of :mod:`matching.ranking.dtw`, compiled, for many tracks at once.

:func:`matching.ranking.dtw.align` drives dtaidistance's C code from Python: about 0.3 ms
a track, most of it call overhead, and the GIL keeps it on one core. Ranking scores a
shortlist (a thousand tracks at a million) or, exhaustively, every track, so the same
steps are written here as Numba kernels: section search (subsequence DTW on the level
channels, then the reversed search for the start), the clamp to ``max_stretch``, the
linear resampling of the section to the clip's length and the banded DTW that scores
it. :func:`align_many` runs them over tracks on every core (:mod:`matching.ranking.threads`).

The recurrences are dtaidistance's (squared Euclidean step cost, ``penalty**2`` on
non-diagonal steps, ``psi`` relaxation of the series' start and end, the Sakoe-Chiba
band of ``distance_fast``), and the resampling is ``np.linspace`` + ``np.interp``;
``tests/test_dtw_kernels.py`` checks the results against :func:`~matching.ranking.dtw.align`.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from matching.ranking.threads import run_parts
from matching.ranking.weights import STRETCH_COST, MatchWeights

_INF = np.inf


@njit(cache=True, nogil=True)
def _features(va: np.ndarray, hop: float, k: int, sv: float, sa: float, st: float) -> np.ndarray:
    """:func:`matching.ranking.dtw.features` with ``k`` its slope half-span in steps."""
    n = va.shape[0]
    out = np.empty((n, 4))
    for i in range(n):
        out[i, 0] = va[i, 0] * sv
        out[i, 1] = va[i, 1] * sa
        if n < 2:
            out[i, 2] = 0.0
            out[i, 3] = 0.0
        else:
            hi = min(i + k, n - 1)
            lo = max(i - k, 0)
            span = (hi - lo) * hop
            out[i, 2] = (va[hi, 0] - va[lo, 0]) / span * sv * st
            out[i, 3] = (va[hi, 1] - va[lo, 1]) / span * sa * st
    return out


@njit(cache=True, nogil=True)
def _resample(va: np.ndarray, n: int) -> np.ndarray:
    """:func:`matching.ranking.dtw.resample_va`: ``np.interp`` at ``np.linspace(0, m - 1, n)``."""
    m = va.shape[0]
    if m == n:
        return va.copy()
    out = np.empty((n, va.shape[1]))
    if m == 1:
        for i in range(n):
            out[i, :] = va[0, :]
        return out
    step = (m - 1.0) / (n - 1.0) if n > 1 else 0.0
    for i in range(n):
        x = i * step
        if i == n - 1 and n > 1:
            x = m - 1.0
        if x >= m - 1.0:
            out[i, :] = va[m - 1, :]
            continue
        j = int(x)  # x >= 0: the floor
        for c in range(va.shape[1]):
            out[i, c] = (va[j + 1, c] - va[j, c]) * (x - j) + va[j, c]
    return out


@njit(cache=True, nogil=True)
def _last_row(fq: np.ndarray, fs: np.ndarray, m: int, pen2: float, free_start: bool) -> np.ndarray:
    """Last row of the accumulated squared cost on the level channels (``fs[:m]``).

    ``free_start``: the series may start anywhere (``psi`` on its start), else at 0.
    """
    n = fq.shape[0]
    prev = np.empty(m + 1)
    row = np.empty(m + 1)
    prev[0] = 0.0
    for j in range(1, m + 1):
        prev[j] = 0.0 if free_start else _INF
    for i in range(n):
        row[0] = _INF
        a0, a1 = fq[i, 0], fq[i, 1]
        for j in range(m):
            d0 = a0 - fs[j, 0]
            d1 = a1 - fs[j, 1]
            best = prev[j]
            up = prev[j + 1] + pen2
            left = row[j] + pen2
            if up < best:
                best = up
            if left < best:
                best = left
            row[j + 1] = d0 * d0 + d1 * d1 + best
        prev, row = row, prev
    return prev[1:]


@njit(cache=True, nogil=True)
def _section(fq: np.ndarray, fs: np.ndarray, pen2: float) -> tuple[int, int]:
    """:func:`matching.ranking.dtw.section_search`: (start, end) in steps of the series."""
    m = fs.shape[0]
    if m == 1:
        return 0, 0
    # argmin over square roots, as over dtaidistance's paths: two costs one ulp apart tie alike.
    end = int(np.argmin(np.sqrt(_last_row(fq, fs, m, pen2, True))))
    if end == 0:
        return 0, 0
    rq = fq[::-1].copy()
    rs = fs[: end + 1][::-1].copy()
    k = int(np.argmin(np.sqrt(_last_row(rq, rs, end + 1, pen2, False))))
    return end - k, end


@njit(cache=True, nogil=True)
def _banded(fq: np.ndarray, fs: np.ndarray, window: int) -> float:
    """``dtw_ndim.distance_fast`` of two equal-length series, Sakoe-Chiba ``window``."""
    n = fq.shape[0]
    prev = np.full(n + 1, _INF)
    row = np.full(n + 1, _INF)
    prev[0] = 0.0
    for i in range(n):
        lo = max(0, i - window + 1)
        hi = min(n, i + window)
        # Only the cells next to the band are read outside it (the band moves right one step a row at
        # most): resetting them, not the whole row, keeps a row's cost to the band's width.
        row[lo] = _INF
        if hi < n:
            row[hi + 1] = _INF
        for j in range(lo, hi):
            d = 0.0
            for c in range(4):
                x = fq[i, c] - fs[j, c]
                d += x * x
            best = prev[j]
            if prev[j + 1] < best:
                best = prev[j + 1]
            if row[j] < best:
                best = row[j]
            row[j + 1] = d + best
        prev, row = row, prev
    return math.sqrt(prev[n])


@njit(cache=True, nogil=True)
def _align_one(
    fq: np.ndarray, s: np.ndarray, hop: float, k: int, sv: float, sa: float, st: float, pen2: float,
    max_stretch: float, window: int, stretch_cost: float,
) -> tuple[float, int, int]:  # fmt: skip
    """One track: (RMS distance, section start, section end) as :func:`matching.ranking.dtw.align`."""
    n, m = fq.shape[0], s.shape[0]
    fs = _features(s, hop, k, sv, sa, st)
    start, end = _section(fq, fs, pen2)
    lo = max(1, math.ceil(n / max_stretch - 1e-9))
    hi = max(lo, math.floor(n * max_stretch + 1e-9))
    length = min(max(end - start + 1, lo), hi, m)
    centre = (start + end) / 2
    first = int(np.rint(centre - (length - 1) / 2))
    first = min(max(0, first), m - length)
    fitted = _features(_resample(s[first : first + length], n), hop, k, sv, sa, st)
    dist = _banded(fq, fitted, window) / math.sqrt(n)
    if length != n and n <= m:  # the unstretched window about the same centre (dtw.fit_section)
        plain_first = min(max(0, int(np.rint(first + (length - 1) / 2 - (n - 1) / 2))), m - n)
        plain = _features(s[plain_first : plain_first + n], hop, k, sv, sa, st)
        plain_dist = _banded(fq, plain, window) / math.sqrt(n)
        if plain_dist <= dist + stretch_cost * abs(math.log(n / length)):
            return plain_dist, plain_first, plain_first + n - 1
    return dist, first, first + length - 1


@njit(cache=True, nogil=True)
def _align_range(
    fq: np.ndarray, va: np.ndarray, offsets: np.ndarray, lo: int, hi: int, hop: float, k: int, sv: float, sa: float,
    st: float, pen2: float, max_stretch: float, window: int, stretch_cost: float, dist: np.ndarray,
    start: np.ndarray, end: np.ndarray,
) -> None:  # fmt: skip
    """Series ``lo`` to ``hi`` of :func:`align_many`, written into ``dist``, ``start`` and ``end``."""
    for t in range(lo, hi):
        s = va[offsets[t] : offsets[t + 1]].astype(np.float64)
        dist[t], start[t], end[t] = _align_one(fq, s, hop, k, sv, sa, st, pen2, max_stretch, window, stretch_cost)


def band(n: int, weights: MatchWeights) -> int:
    """Sakoe-Chiba band in steps for a length-``n`` comparison (at least 2, so a step can warp)."""
    return max(2, math.ceil(weights.window * n))


def align_many(
    query_features: np.ndarray, va: np.ndarray, offsets: np.ndarray, *, hop: float, weights: MatchWeights
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Align a clip with every series of ``va`` (``(total, 2)``, series ``t`` at ``offsets[t:t+2]``).

    ``query_features`` are the clip's :func:`matching.ranking.dtw.features` at ``hop`` and
    ``weights``; every series is sampled every ``hop`` seconds. Returns the RMS distances
    and each fitted section's first and last step (inclusive). Runs on every core.
    """
    fq = np.ascontiguousarray(query_features, dtype=np.float64)
    va = np.ascontiguousarray(va)
    offsets = np.ascontiguousarray(offsets, dtype=np.int64)
    count = offsets.size - 1
    dist, start, end = np.empty(count), np.empty(count, np.int64), np.empty(count, np.int64)
    args = (float(hop), max(1, round(weights.transition_span / (2 * hop))), math.sqrt(weights.valence),
            math.sqrt(weights.arousal), math.sqrt(weights.transition), float(weights.penalty) ** 2,
            float(weights.max_stretch), band(fq.shape[0], weights), STRETCH_COST)  # fmt: skip
    run_parts(lambda lo, hi: _align_range(fq, va, offsets, lo, hi, *args, dist, start, end), count, least=16)
    return dist, start, end
