"""Shortlisting for large libraries: tiny section sketches compared by a compiled scan.

Exact ranking (:func:`matching.ranking.dtw.align_series`) costs tens of microseconds per
track on every core, so a million tracks take seconds. The fast path estimates every
track's DTW distance from small *sketches* and runs the exact alignment only on a
shortlist (:mod:`matching.ranking.ranker`).

**Sketches.** A track's candidate sections are windows of a few lengths on a geometric
ladder (``BASE_SECONDS * RATIO**j``: 4, 4.8, 5.7, 6.7, 8, ... 32, 38, 45, ... s), starting every
``stride`` window lengths and always including one that ends with the track; a track
shorter than the window gets one row, the whole track (the exact path clamps a section
to the track too). Each window is reduced to ``P`` piecewise aggregate (PAA) means of
valence and of arousal, stored as ``2P`` signed bytes (``round(127 * x)``: VA lies in
[-1, 1], so a step of 0.008, far below what separates a fit from a miss). A clip is
reduced the same way, whole, to ``P`` bins. Fitting stretches a section to the clip,
so in the clip's time base both sketches are ``P`` bins of ``D / P`` seconds (``D``
the clip duration).

**Estimate.** With ``e = u - y`` the clip's minus a window's sketch (per channel) on
``K`` compared bins and ``S`` the central difference between bins (one-sided at the
ends, like :func:`matching.ranking.dtw._slope`), the estimated mean squared step cost is

    d2 = (w_v |e_v|^2 + w_a |e_a|^2) / K + w_t (|S e_v|^2 + |S e_a|^2) / (K * (D / P)^2)

the same weighted levels and changes per second that DTW compares. A section rarely
starts on a window, so each window is compared three ways (:data:`SHIFTS`): aligned, and
with the clip shifted one bin either way (``K = P - 1``). With ``P = 6`` and a stride of
half a window (three bins), the shifts cover every start between two windows. A
compiled scan (:func:`_scan`, over the windows of a block in SIMD lanes, blocks spread
over the cores by :mod:`matching.ranking.threads`) takes the smallest ``d2`` over a
track's windows and shifts. Only ladder lengths near the section lengths the
exact search produces are read (:func:`lengths_for`).

It is an estimate, not a bound (no warping inside a bin, sections on a stride grid): the
shortlist size trades recall against time, measured by ``bench/bench_matching.py``.

**Memory.** Tables are built lazily per window length, kept per catalogue (a new
:class:`~matching.ranking.catalog.Catalog`, as ``Library.catalog()`` returns after any write,
gets new tables) and at most ``MAX_TABLES`` lengths per catalogue. A window costs
``2P`` = 12 bytes; a track of ``T`` seconds has about ``(T - L) / (stride * L) + 1``
windows of length ``L``: at a million tracks of 0.5-4 min, 0.25 GB for 13 s windows.
A catalogue opened from a persistent index (:mod:`matching.ranking.index`) keeps its
tables on disk instead, memory-mapped, built once per length and appended to as tracks
are added.
"""

from __future__ import annotations

import mmap
import threading
import weakref
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np
from numba import njit

from analysis.errors import ParameterError
from matching.ranking.catalog import Catalog, chunks
from matching.ranking.threads import run_parts
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
POINTS = 6
#: Window start spacing as a fraction of the window length.
STRIDE = 0.5
#: How a clip is laid over a window: (clip bins skipped at the start, window bins skipped at the
#: start); a shifted comparison covers ``P - 1`` bins. (1, 0): the section starts a bin before the
#: window; (0, 1): a bin into it.
SHIFTS: tuple[tuple[int, int], ...] = ((0, 0), (1, 0), (0, 1))
#: Sketch values are stored as ``round(QUANT * x)`` in a signed byte.
QUANT = 127
#: Window lengths kept per catalogue (least recently used dropped first).
MAX_TABLES = 4
#: Tracks per build chunk (and at most :data:`~matching.ranking.catalog.CHUNK_STEPS` steps: bounds the
#: temporary float64 prefix sums, which had peaked at 450 MB to sketch 10,000 tracks of 20 s - 10 min).
_CHUNK = 16384

_cache: weakref.WeakKeyDictionary[Catalog, OrderedDict[tuple[float, int, float], SketchTable]] = (
    weakref.WeakKeyDictionary()
)
_lock = threading.Lock()
#: Held while a table is built (tens of milliseconds to seconds): a thread that needs the same table waits.
_build_lock = threading.RLock()
#: Catalogues opened from a persistent index, and that index (see :func:`sketch_table`).
_indexes: weakref.WeakKeyDictionary[Catalog, Any] = weakref.WeakKeyDictionary()


@dataclass(frozen=True, eq=False)
class SketchTable:
    """Sketches of every track's windows of one length (see module docstring)."""

    #: Window length, seconds.
    length: float
    points: int
    stride: float
    #: Consecutive blocks of windows (sorted by track), each ``(2P, n)`` int8 and column-major:
    #: ``P`` valence bin means, then ``P`` arousal bin means, times :data:`QUANT`. Columns let the
    #: scan run over windows in SIMD lanes; blocks let a persistent table grow by appending one.
    blocks: tuple[np.ndarray, ...]
    #: (N,) int64: first window of each track (every track has at least one).
    first_row: np.ndarray

    @property
    def n_rows(self) -> int:
        return sum(int(b.shape[1]) for b in self.blocks)

    @property
    def nbytes(self) -> int:
        return int(sum(b.nbytes for b in self.blocks) + self.first_row.nbytes)

    def values(self) -> np.ndarray:
        """(R, 2P) float64: every window's sketch in VA units, one row per window."""
        if not self.blocks:
            return np.zeros((0, 2 * self.points))
        return np.concatenate([b.T for b in self.blocks]).astype(np.float64) / QUANT


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


def _check_sketch(points: int, stride: float) -> None:
    if not isinstance(points, int) or points < 3:  # a shifted comparison keeps at least 2 bins
        raise ParameterError(f"`points` must be an integer >= 3 (received {points!r})")
    if not 0 < stride <= 1:
        raise ParameterError(f"`stride` must be within 0 and 1 (received {stride})")


def _check_table(length: float, points: int, stride: float) -> None:
    if not length > 0:
        raise ParameterError(f"`length` must be positive (received {length})")
    _check_sketch(points, stride)


def table_layout(catalog: Catalog, length: float, stride: float) -> np.ndarray:
    """``(N + 1,)`` first window of each track at ``length`` seconds, and the total last."""
    m_all = np.diff(catalog.offsets).astype(np.int64)
    w_all = length / np.asarray(catalog.hops)  # window width in each track's steps
    counts = np.where(m_all > w_all, np.ceil((m_all - w_all) / (stride * w_all) - 1e-9).astype(np.int64) + 1, 1)
    return np.concatenate([[0], np.cumsum(counts)])


def sketch_columns(catalog: Catalog, length: float, points: int, stride: float, first_row: np.ndarray) -> np.ndarray:
    """Every window's sketch (see :class:`SketchTable`) as one ``(2P, R)`` int8 block."""
    m_all = np.diff(catalog.offsets).astype(np.int64)
    w_all = length / np.asarray(catalog.hops)
    counts = np.diff(first_row)
    out = np.empty((2 * points, int(first_row[-1])), dtype=np.int8)
    for lo, hi in chunks(catalog.offsets, tracks=_CHUNK):
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
        out[:, int(first_row[lo]) : int(first_row[hi])] = np.rint(np.clip(sk, -1.0, 1.0) * QUANT).T
    return out


def build_table(catalog: Catalog, length: float, *, points: int = POINTS, stride: float = STRIDE) -> SketchTable:
    """Sketch every track's windows of ``length`` seconds (see module docstring), in memory."""
    _check_table(length, points, stride)
    first_row = table_layout(catalog, length, stride)
    cols = sketch_columns(catalog, length, points, stride, first_row)
    return SketchTable(length=float(length), points=points, stride=float(stride), blocks=(cols,),
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
    table = _cached(catalog, key)
    if table is not None:
        return table
    with _build_lock:  # threads ranking clips of one length at once share one build (each built its own)
        table = _cached(catalog, key)
        if table is not None:
            return table
        table = build_table(catalog, length, points=points, stride=stride)
        with _lock:
            tables = _cache.setdefault(catalog, OrderedDict())
            tables[key] = table
            tables.move_to_end(key)
            while len(tables) > MAX_TABLES:
                tables.popitem(last=False)
    return table


def _cached(catalog: Catalog, key: tuple[float, int, float]) -> SketchTable | None:
    with _lock:
        tables = _cache.setdefault(catalog, OrderedDict())
        table = tables.get(key)
        if table is not None:
            tables.move_to_end(key)
        return table


def cached_tables(catalog: Catalog) -> tuple[SketchTable, ...]:
    """The tables currently cached for ``catalog`` (for memory reports and tests)."""
    with _lock:
        return tuple(_cache.get(catalog, OrderedDict()).values())


def window_distance(
    u: np.ndarray, y: np.ndarray, shift: tuple[int, int], *, spacing: float, weights: MatchWeights
) -> float:
    """``d2`` of clip sketch ``u`` laid over window sketch ``y`` (both ``(2P,)``) with ``shift``.

    The formula of the module docstring, written plainly: the reference for the kernel.
    """
    points = u.size // 2
    hu, hy = shift
    keep = points - max(hu, hy)
    ev = u[hu : hu + keep] - y[hy : hy + keep]
    ea = u[points + hu : points + hu + keep] - y[points + hy : points + hy + keep]
    s = diff_operator(keep)
    level = (weights.valence * ev @ ev + weights.arousal * ea @ ea) / keep
    return float(level + weights.transition * (np.sum((s @ ev) ** 2) + np.sum((s @ ea) ** 2)) / (keep * spacing**2))


#: Windows per unit of work of the compiled scan (one thread's pass over its columns).
_BLOCK = 4096


@njit(cache=True, nogil=True, fastmath=True)
def _scan(
    cols: np.ndarray, first: int, last: int, u: np.ndarray, shifts: np.ndarray, wv: float, wa: float, wt: float,
    out: np.ndarray,
) -> None:  # fmt: skip
    """``out[r - first]``: the smallest :func:`window_distance` of window ``r`` (``cols[:, r]``) over
    ``shifts``, for windows ``first`` to ``last`` (whole blocks are passed: one compiled signature).

    ``wt`` is the change weight per bin^2. Each bin adds its level term and its central
    difference (one-sided at both ends, as :func:`diff_operator`), over a run of windows at once.
    """
    p = cols.shape[0] // 2
    n_rows = last - first
    inv = np.float32(1.0 / QUANT)
    uf = u.astype(np.float32)
    wv32, wa32, wt32 = np.float32(wv), np.float32(wa), np.float32(wt)
    for b in range((n_rows + _BLOCK - 1) // _BLOCK):
        lo = first + b * _BLOCK
        hi = min(last, lo + _BLOCK)
        best = np.full(hi - lo, np.inf, np.float32)
        level = np.empty(hi - lo, np.float32)
        change = np.empty(hi - lo, np.float32)
        for j in range(shifts.shape[0]):
            hu, hy = shifts[j, 0], shifts[j, 1]
            keep = p - max(hu, hy)
            level[:] = 0
            change[:] = 0
            for i in range(keep):
                prev, nxt = max(i - 1, 0), min(i + 1, keep - 1)
                f = np.float32(1.0 / (nxt - prev) ** 2)
                yv, ya = cols[hy + i, lo:hi], cols[p + hy + i, lo:hi]
                pv, pa = cols[hy + prev, lo:hi], cols[p + hy + prev, lo:hi]
                nv, na = cols[hy + nxt, lo:hi], cols[p + hy + nxt, lo:hi]
                uv, ua = uf[hu + i], uf[p + hu + i]
                sv, sa = uf[hu + nxt] - uf[hu + prev], uf[p + hu + nxt] - uf[p + hu + prev]
                for r in range(hi - lo):
                    ev = uv - yv[r] * inv
                    ea = ua - ya[r] * inv
                    dv = sv - (nv[r] - pv[r]) * inv
                    da = sa - (na[r] - pa[r]) * inv
                    level[r] += wv32 * ev * ev + wa32 * ea * ea
                    change[r] += f * (dv * dv + da * da)
            scale = np.float32(1.0 / keep)
            for r in range(hi - lo):
                d2 = (level[r] + wt32 * change[r]) * scale
                if d2 < best[r]:
                    best[r] = d2
        out[lo - first : hi - first] = best


@njit(cache=True, nogil=True)
def _lower_to_track_minimum(d2: np.ndarray, first_row: np.ndarray, best: np.ndarray, lo: int, hi: int) -> None:
    """``best[t] = min(best[t], d2 of track t's windows)`` for tracks ``lo`` to ``hi``."""
    n = first_row.size
    for t in range(lo, hi):
        end = first_row[t + 1] if t + 1 < n else d2.size
        m = best[t]
        for r in range(first_row[t], end):
            if d2[r] < m:
                m = d2[r]
        best[t] = m


#: Windows per piece of work of a scan: a thread scans whole pieces (each call of a compiled
#: function costs some microseconds of argument checking, so pieces are not small).
_PIECE = 1 << 18


def _pieces(table: SketchTable, d2: np.ndarray) -> list[tuple[np.ndarray, int, int, np.ndarray, bool]]:
    """``(block, first window, last, their part of d2, whether the piece ends the block)`` covering ``table``."""
    pieces = []
    lo = 0
    for block in table.blocks:
        n = block.shape[1]
        for a in range(0, n, _PIECE):
            b = min(n, a + _PIECE)
            pieces.append((block, a, b, d2[lo + a : lo + b], b == n))
        lo += n
    return pieces


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
    _check_sketch(points, stride)
    duration = q.shape[0] * hop
    if len(catalog) == 0:
        return Estimate(distance=np.zeros(0), lengths=())
    lengths = lengths_for(duration, weights.max_stretch)
    u = np.clip(paa(q, points), -1.0, 1.0)  # what a window holding the clip would store
    shifts = np.array(SHIFTS, dtype=np.int64)
    wt = weights.transition / (duration / points) ** 2
    best = np.full(len(catalog), np.inf)
    for length in lengths:
        table = sketch_table(catalog, length, points=points, stride=stride)
        d2 = np.empty(table.n_rows, dtype=np.float32)
        pieces = _pieces(table, d2)
        release = table.nbytes > RESIDENT_LIMIT  # a persistent table's blocks are given back as they are read

        def scan(i: int, j: int, pieces: list = pieces, release: bool = release) -> None:
            for block, a, b, out, ends in pieces[i:j]:
                _scan(block, a, b, u, shifts, weights.valence, weights.arousal, wt, out)
                if release and ends:
                    release_block(block)

        run_parts(scan, len(pieces), least=1)
        first_row = np.asarray(table.first_row)
        run_parts(lambda a, b, d2=d2, first_row=first_row: _lower_to_track_minimum(d2, first_row, best, a, b),
                  len(catalog), least=4096)  # fmt: skip
    return Estimate(distance=np.sqrt(np.maximum(best, 0.0)), lengths=lengths)


#: Memory-mapped tables larger than this (bytes) give their pages back after each block of a
#: query, so a query holds one block, not the whole table, in memory (re-mapping a page from
#: the page cache costs far less than the scan that reads it).
RESIDENT_LIMIT = 1 << 28


def release_block(block: np.ndarray) -> None:
    """Drop the pages of a memory-mapped block from this process once it has been read (see
    :func:`release_pages`)."""
    release_pages(block)


def release_pages(array: np.ndarray, lo: int = 0, hi: int | None = None) -> None:
    """Drop the pages of a memory-mapped array from this process: its whole mapping, or the
    pages of rows ``[lo, hi)`` of an array mapped from the start of its file.

    They stay in the operating system's page cache (a warm query reads them again without
    touching the disk) but stop counting against this process's memory. In-memory arrays
    are left alone.
    """
    mm = getattr(array, "_mmap", None)
    if mm is None:
        return
    if lo == 0 and hi is None:
        mm.madvise(mmap.MADV_DONTNEED)  # a table block is mapped on its own
        return
    if getattr(array, "offset", None) != 0:
        return  # rows are located from the start of the mapping
    row = array.strides[0]
    start = lo * row // mmap.PAGESIZE * mmap.PAGESIZE
    stop = min(len(mm), (array.shape[0] if hi is None else hi) * row)
    if stop > start:
        mm.madvise(mmap.MADV_DONTNEED, start, stop - start)
