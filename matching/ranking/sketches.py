"""Shortlisting for large libraries: section sketches compared in one BLAS product.

Exact ranking (:func:`matching.ranking.dtw.align`) costs about a millisecond per track, so
100,000 tracks take minutes. The fast path estimates every track's DTW distance from
small *sketches* and runs the exact alignment only on a shortlist (:mod:`matching.ranking.ranker`).

**Sketches.** A track's candidate sections are windows of a few lengths on a geometric
ladder (``BASE_SECONDS * RATIO**j``: 4, 4.8, 5.7, 6.7, 8, ... 32, 38, 45, ... s), starting every
``stride`` window lengths and always including one that ends with the track; a track
shorter than the window gets one row, the whole track (the exact path clamps a section
to the track too). Each window is reduced to ``P`` piecewise aggregate (PAA) means of
valence and of arousal (``2P`` numbers). A clip is reduced the same
way, whole, to ``P`` bins. Fitting stretches a section to the clip, so in the clip's
time base both sketches are ``P`` bins of ``D / P`` seconds (``D`` the clip duration).

**Estimate.** With ``e = u - y`` the clip's minus a window's sketch (per channel) and
``S`` the central difference between bins (one-sided at the ends, like
:func:`matching.ranking.dtw._slope`), the estimated mean squared step cost is

    d2 = (w_v |e_v|^2 + w_a |e_a|^2) / P + w_t (|S e_v|^2 + |S e_a|^2) / (P * (D / P)^2)

the same weighted levels and changes per second that DTW compares. It is a quadratic
form ``e' M e`` with ``M`` fixed for the query, so ``d2 = u'Mu - 2 (Mu)'y + y'My``, and
``y'My`` needs only three stored norms per window. A section rarely sits exactly on a
window, so each window is also compared on sub-ranges (:data:`MASKS`: one or two bins
dropped at either end) with the clip shifted or squeezed onto them
(:func:`query_variants`); each sub-range stores its own three norms. Every variant is a
row of one ``(K, 2P + 3 * len(MASKS))`` matrix: one float32 product with the table gives
all ``K x R`` estimates, a minimum over variants and ``np.minimum.reduceat`` each
track's best, and any weights can be used without rebuilding. Only ladder lengths near
the section lengths the exact search produces are read (:func:`lengths_for`).

It is an estimate, not a bound (no warping inside a bin, sections on a stride grid): the
shortlist size trades recall against time, measured by ``bench/bench_matching.py``.

**Memory.** Tables are built lazily per window length, kept per catalogue (a new
:class:`~matching.ranking.catalog.Catalog`, as ``Library.catalog()`` returns after any write,
gets new tables) and at most ``MAX_TABLES`` lengths per catalogue. A window costs
``4 * (2P + 3 * len(MASKS))`` bytes (156 at the defaults); a track of ``T`` seconds has
about ``(T - L) / (stride * L) + 1`` windows of length ``L``. Measured on 100,000
synthetic tracks of 0.5-4 min (``bench/bench_matching.py``): 0.85 GB for 10 s windows,
0.49 GB for 16 s, 0.22 GB for 32 s, 0.06 GB for 91 s; a query reads two or three
lengths. Short clips against large libraries are the expensive case. A catalogue opened
from a persistent index (:mod:`matching.ranking.index`) keeps its tables on disk instead,
memory-mapped, built once per length and appended to as tracks are added.
"""

from __future__ import annotations

import mmap
import threading
import weakref
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np

from analysis.errors import ParameterError
from matching.ranking.catalog import Catalog
from matching.ranking.weights import MatchWeights

#: Shortest ladder window, seconds.
BASE_SECONDS = 4.0
#: Ratio between consecutive window lengths.
RATIO = 2 ** (1 / 4)
#: Slack below the shortest and above the clip's own length when choosing ladder lengths.
LOW_SLACK = 2 ** (1 / 8)
HIGH_SLACK = 2 ** (1 / 8)
#: Ladder steps (the longest window is ``BASE_SECONDS * RATIO**(LADDER - 1)``, ~ 1 h).
LADDER = 40
#: PAA bins per sketch.
POINTS = 12
#: Window start spacing as a fraction of the window length.
STRIDE = 0.25
#: Window sub-ranges compared (bins dropped at the start, at the end): see :func:`query_variants`.
MASKS: tuple[tuple[int, int], ...] = ((0, 0), (1, 0), (2, 0), (0, 1), (0, 2))
#: Windows per block of the product (bounds the (variants, windows) temporary).
_ROWS = 1 << 20
#: Window lengths kept per catalogue (least recently used dropped first).
MAX_TABLES = 4
#: Tracks per build chunk (bounds the temporary float64 prefix sums).
_CHUNK = 16384

_cache: weakref.WeakKeyDictionary[Catalog, OrderedDict[tuple[float, int, float], SketchTable]] = (
    weakref.WeakKeyDictionary()
)
_lock = threading.Lock()
#: Catalogues opened from a persistent index, and that index (see :func:`sketch_table`).
_indexes: weakref.WeakKeyDictionary[Catalog, Any] = weakref.WeakKeyDictionary()


@dataclass(frozen=True, eq=False)
class SketchTable:
    """Sketches of every track's windows of one length (see module docstring)."""

    #: Window length, seconds.
    length: float
    points: int
    stride: float
    #: (2P + 3 * len(MASKS), R) float32, one column per window (sorted by track): P valence
    #: bin means, P arousal bin means, then for each sub-range of MASKS |y_v|^2, |y_a|^2 and
    #: |S y_v|^2 + |S y_a|^2 on it. It is the transposed view of row-major ``(R, width)``
    #: storage, so a persistent table grows by appending rows to its file.
    matrix: np.ndarray
    #: (N,) int64: first window of each track (every track has at least one).
    first_row: np.ndarray

    @property
    def rows(self) -> np.ndarray:
        """(R, 2P) view: the sketches."""
        return self.matrix[: 2 * self.points].T

    @property
    def norms(self) -> np.ndarray:
        """(R, 3 * len(MASKS)) view: the stored norms (the whole window's first)."""
        return self.matrix[2 * self.points :].T

    @property
    def nbytes(self) -> int:
        return int(self.matrix.nbytes + self.first_row.nbytes)


@dataclass(frozen=True)
class Estimate:
    """Every track's estimated DTW distance to one clip."""

    #: (N,) estimated RMS step distance (comparable with :attr:`matching.ranking.dtw.Alignment.distance`).
    distance: np.ndarray
    #: Window lengths (seconds) that were compared.
    lengths: tuple[float, ...]


def ladder() -> np.ndarray:
    """All window lengths of the ladder, seconds."""
    return BASE_SECONDS * RATIO ** np.arange(LADDER)


def lengths_for(duration: float, max_stretch: float) -> tuple[float, ...]:
    """Ladder lengths for a clip of ``duration`` seconds (the nearest one if none).

    The exact section search compresses more often than it stretches: sections run
    from ``duration / max_stretch`` (the clamp) to a little over ``duration``, so the
    lengths read lie in ``[duration / max_stretch / LOW_SLACK, duration * HIGH_SLACK]``.
    """
    if not duration > 0:
        raise ParameterError(f"`duration` must be positive (received {duration})")
    lad = ladder()
    lo, hi = duration / max_stretch / LOW_SLACK, duration * HIGH_SLACK
    inside = lad[(lad >= lo - 1e-9) & (lad <= hi + 1e-9)]
    if inside.size:
        return tuple(float(x) for x in inside)
    return (float(lad[np.argmin(np.abs(np.log(lad / duration)))]),)


def diff_operator(points: int) -> np.ndarray:
    """``(P, P)`` central difference between bins (one-sided at the ends), in units per bin."""
    s = np.zeros((points, points))
    if points < 2:
        return s
    idx = np.arange(points)
    hi = np.minimum(idx + 1, points - 1)
    lo = np.maximum(idx - 1, 0)
    s[idx, hi] += 1.0 / (hi - lo)
    s[idx, lo] -= 1.0 / (hi - lo)
    return s


def paa(va: np.ndarray, points: int) -> np.ndarray:
    """``(2P,)`` sketch of one whole arc: ``P`` bin means of valence, then of arousal."""
    va = np.asarray(va, dtype=np.float64)
    if va.ndim != 2 or va.shape[1] != 2 or va.shape[0] < 1:
        raise ParameterError(f"`va` must be an (n, 2) array with n >= 1 (received shape {va.shape})")
    cum = np.concatenate([np.zeros((1, 2)), np.cumsum(va, axis=0)])
    m = np.array([va.shape[0]])
    return _bin_means(va, cum, np.zeros(1, np.int64), m, np.zeros(1), m.astype(np.float64), points)[0]


def _bin_means(
    va: np.ndarray,
    cum: np.ndarray,
    base: np.ndarray,
    m: np.ndarray,
    start: np.ndarray,
    width: np.ndarray,
    points: int,
) -> np.ndarray:
    """``(R, 2P)`` bin means of windows ``[start, start + width)`` (steps) of tracks at ``base``.

    Step ``i`` of a track holds its value on ``[i, i + 1)``; ``cum`` is the prefix sum of
    ``va`` with a leading zero row, so the integral up to ``t`` is read in O(1).
    """
    edges = start[:, None] + width[:, None] * (np.arange(points + 1) / points)[None, :]  # (R, P+1)
    edges = np.clip(edges, 0.0, m[:, None].astype(np.float64))
    idx = np.minimum(np.floor(edges).astype(np.int64), (m - 1)[:, None])
    frac = edges - idx
    g = base[:, None] + idx
    out = np.empty((start.size, 2 * points))
    for c in range(2):  # 1-D gathers: much faster than gathering rows of the (total, 2) arrays
        integral = np.take(np.ascontiguousarray(cum[:, c]), g) + frac * np.take(np.ascontiguousarray(va[:, c]), g)
        out[:, c * points : (c + 1) * points] = np.diff(integral, axis=1) / (width / points)[:, None]
    return out


def _check_points(points: int) -> None:
    least = 3 + max(head + tail for head, tail in MASKS)  # every sub-range keeps 3 bins
    if not isinstance(points, int) or points < least:
        raise ParameterError(f"`points` must be an integer >= {least} (received {points!r})")


def table_layout(catalog: Catalog, length: float, stride: float) -> np.ndarray:
    """``(N + 1,)`` first window of each track at ``length`` seconds, and the total last."""
    m_all = np.diff(catalog.offsets).astype(np.int64)
    w_all = length / np.asarray(catalog.hops)  # window width in each track's steps
    counts = np.where(m_all > w_all, np.ceil((m_all - w_all) / (stride * w_all) - 1e-9).astype(np.int64) + 1, 1)
    return np.concatenate([[0], np.cumsum(counts)])


def table_width(points: int) -> int:
    """Numbers stored per window: ``2P`` bin means and three norms per sub-range of :data:`MASKS`."""
    return 2 * points + 3 * len(MASKS)


def _check_table(length: float, points: int, stride: float) -> None:
    if not length > 0:
        raise ParameterError(f"`length` must be positive (received {length})")
    _check_points(points)
    if not 0 < stride <= 1:
        raise ParameterError(f"`stride` must be within 0 and 1 (received {stride})")


def fill_rows(
    catalog: Catalog, length: float, points: int, stride: float, first_row: np.ndarray, out: np.ndarray
) -> None:
    """Write every window's row (see :class:`SketchTable`) into ``out`` (``(R, width)``, may be a memmap)."""
    n_tracks = len(catalog)
    m_all = np.diff(catalog.offsets).astype(np.int64)
    w_all = length / np.asarray(catalog.hops)
    counts = np.diff(first_row)
    for lo in range(0, n_tracks, _CHUNK):
        hi = min(n_tracks, lo + _CHUNK)
        a, b = int(catalog.offsets[lo]), int(catalog.offsets[hi])
        va = np.asarray(catalog.va[a:b], dtype=np.float64)
        cum = np.concatenate([np.zeros((1, 2)), np.cumsum(va, axis=0)])
        cnt = counts[lo:hi]
        track = np.repeat(np.arange(lo, hi), cnt)
        k = np.arange(track.size) - np.repeat(first_row[lo:hi] - first_row[lo], cnt)  # window number in its track
        m, w = m_all[track], w_all[track]
        whole = m <= w
        width = np.where(whole, m, w).astype(np.float64)
        start = np.where(whole, 0.0, np.minimum(k * stride * w, m - w))
        sk = _bin_means(va, cum, np.asarray(catalog.offsets)[track] - a, m, start, width, points)
        r0, r1 = int(first_row[lo]), int(first_row[hi])
        rows = np.empty((r1 - r0, table_width(points)), dtype=np.float32)
        rows[:, : 2 * points] = sk
        for j, (head, tail) in enumerate(MASKS):  # norms of each window sub-range
            v, ar = sk[:, head : points - tail], sk[:, points + head : 2 * points - tail]
            s_op = diff_operator(points - head - tail)
            col = 2 * points + 3 * j
            rows[:, col] = (v * v).sum(axis=1)
            rows[:, col + 1] = (ar * ar).sum(axis=1)
            rows[:, col + 2] = ((v @ s_op.T) ** 2).sum(axis=1) + ((ar @ s_op.T) ** 2).sum(axis=1)
        out[r0:r1] = rows


def build_table(catalog: Catalog, length: float, *, points: int = POINTS, stride: float = STRIDE) -> SketchTable:
    """Sketch every track's windows of ``length`` seconds (see module docstring), in memory."""
    _check_table(length, points, stride)
    first_row = table_layout(catalog, length, stride)
    rows = np.empty((int(first_row[-1]), table_width(points)), dtype=np.float32)
    fill_rows(catalog, length, points, stride, first_row, rows)
    return SketchTable(length=float(length), points=points, stride=float(stride), matrix=rows.T,
                       first_row=first_row[:-1])  # fmt: skip


def sketch_table(catalog: Catalog, length: float, *, points: int = POINTS, stride: float = STRIDE) -> SketchTable:
    """The cached table of ``catalog`` at ``length`` seconds, built on first use.

    A catalogue opened from a persistent index (:mod:`matching.ranking.index`) reads its
    memory-mapped tables instead, building and storing a missing length once.
    """
    index = _indexes.get(catalog)
    if index is not None:
        return index.table(length, points=points, stride=stride)
    key = (round(float(length), 6), int(points), float(stride))
    with _lock:
        tables = _cache.setdefault(catalog, OrderedDict())
        table = tables.get(key)
        if table is not None:
            tables.move_to_end(key)
            return table
    table = build_table(catalog, length, points=points, stride=stride)
    with _lock:
        tables = _cache.setdefault(catalog, OrderedDict())
        tables[key] = table
        tables.move_to_end(key)
        while len(tables) > MAX_TABLES:
            tables.popitem(last=False)
    return table


def cached_tables(catalog: Catalog) -> tuple[SketchTable, ...]:
    """The tables currently cached for ``catalog`` (for memory reports and tests)."""
    with _lock:
        return tuple(_cache.get(catalog, OrderedDict()).values())


@dataclass(frozen=True)
class Variant:
    """One way of laying a clip over a window: its sketch on window bins ``[head, P - tail)``."""

    head: int
    tail: int
    #: (2 * (P - head - tail),) the clip's bin means on those bins (valence, then arousal).
    sketch: np.ndarray
    #: Clip seconds per bin.
    spacing: float


def query_variants(query_va: np.ndarray, points: int, duration: float) -> list[Variant]:
    """The clip laid over a window in the ways the estimate compares (see the module docstring).

    Whole window; and for each sub-range of :data:`MASKS`, the clip *shifted* (its bins
    kept, the part that falls outside the window dropped: the section starts or ends
    between stride points) or *squeezed* (the whole clip in fewer bins: a shorter section).
    """
    u = paa(query_va, points)
    out = [Variant(0, 0, u, duration / points)]
    for head, tail in MASKS:
        if head == tail == 0:
            continue
        keep = points - head - tail
        lo = tail if head == 0 else 0  # window bin head + j holds clip bin lo + j
        shifted = np.r_[u[lo : lo + keep], u[points + lo : points + lo + keep]]
        out.append(Variant(head, tail, shifted, duration / points))
        out.append(Variant(head, tail, paa(query_va, keep), duration / keep))
    return out


def estimate(
    catalog: Catalog,
    query_va: np.ndarray,
    *,
    hop: float,
    weights: MatchWeights,
    points: int = POINTS,
    stride: float = STRIDE,
) -> Estimate:
    """Estimated RMS DTW distance of a clip (``(n, 2)`` VA every ``hop`` s) to every track."""
    q = np.asarray(query_va, dtype=np.float64)
    if q.ndim != 2 or q.shape[1] != 2 or q.shape[0] < 1:
        raise ParameterError(f"`query_va` must be an (n, 2) array with n >= 1 (received shape {q.shape})")
    if hop <= 0:
        raise ParameterError(f"`hop` must be positive (received {hop})")
    _check_points(points)
    duration = q.shape[0] * hop
    if len(catalog) == 0:
        return Estimate(distance=np.zeros(0), lengths=())
    lengths = lengths_for(duration, weights.max_stretch)
    variants = query_variants(q, points, duration)
    # d2[k, r] = u_k'M_k u_k - 2 (M_k u_k)'y_r + y_r'M_k y_r, with M_k the weighted level and
    # change costs on variant k's bins; y'M_k y is read from the stored sub-range norms.
    a = np.zeros((len(variants), 2 * points + 3 * len(MASKS)))
    umu = np.empty(len(variants))
    for k, var in enumerate(variants):
        keep = points - var.head - var.tail
        sts = diff_operator(keep).T @ diff_operator(keep)
        c_der = weights.transition / (keep * var.spacing**2)
        uv, ua = var.sketch[:keep], var.sketch[keep:]
        mv = weights.valence / keep * uv + c_der * (sts @ uv)
        ma = weights.arousal / keep * ua + c_der * (sts @ ua)
        umu[k] = uv @ mv + ua @ ma
        a[k, var.head : points - var.tail] = -2.0 * mv
        a[k, points + var.head : 2 * points - var.tail] = -2.0 * ma
        j = 2 * points + 3 * MASKS.index((var.head, var.tail))
        a[k, j : j + 3] = (weights.valence / keep, weights.arousal / keep, c_der)
    a = a.astype(np.float32)
    umu = umu.astype(np.float32)
    best = np.full(len(catalog), np.inf)
    for length in lengths:
        table = sketch_table(catalog, length, points=points, stride=stride)
        n_rows = table.matrix.shape[1]
        d2 = np.empty(n_rows, dtype=np.float32)
        for lo in range(0, n_rows, _ROWS):  # bounded temporaries: (K, block) per block
            block = a @ table.matrix[:, lo : lo + _ROWS]
            block += umu[:, None]
            np.min(block, axis=0, out=d2[lo : lo + _ROWS])
            release_rows(table, lo, min(n_rows, lo + _ROWS))
        np.minimum(best, np.minimum.reduceat(d2, table.first_row), out=best)
    return Estimate(distance=np.sqrt(np.maximum(best, 0.0)), lengths=lengths)


#: Memory-mapped tables larger than this (bytes) give their pages back after each block of a
#: query, so a query holds one block, not the whole table, in memory (re-mapping a page from
#: the page cache costs far less than the product that reads it).
RESIDENT_LIMIT = 1 << 28


def release_rows(table: SketchTable, lo: int, hi: int) -> None:
    """Drop the pages of rows ``[lo, hi)`` of a large memory-mapped table from this process.

    They stay in the operating system's page cache (a warm query reads them again without
    touching the disk) but stop counting against this process's memory.
    """
    mm = getattr(table.matrix, "_mmap", None)
    if mm is None or table.matrix.nbytes <= RESIDENT_LIMIT:
        return
    width = table.matrix.shape[0] * table.matrix.itemsize
    page = mmap.PAGESIZE
    start = (lo * width) // page * page
    stop = min(len(mm), -(-(hi * width) // page) * page)
    if stop > start:
        mm.madvise(mmap.MADV_DONTNEED, start, stop - start)
