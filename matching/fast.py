"""Pruning for large libraries: a lower bound on every track's DTW distance, exact DTW on few.

**The bound.** In any DTW alignment every clip step is matched to at least one step of
the (fitted) section, and step costs are non-negative, so

    DTW^2 >= sum_i min_j |q_i - s_j|^2 >= min(w_v, w_a) * sum_i dist^2(q_i, track's VA path)

(the derivative channels only add cost, and the section is part of the track's path in
the valence-arousal plane). The path of every track is rasterised once on a
``G x G`` grid over [-1, 1]^2 (the polyline densified between steps); for each cell
the squared distance to the nearest occupied cell, less one cell per axis (the
positions inside both cells are unknown), is stored as a float32 ``(N, G*G)`` table.
A query sums one column per clip step: one matrix-vector product for all tracks.

**The search.** The bound on the distance gives an upper bound on each track's blended
score (the embedding part is computed exactly for all tracks, vectorised). Tracks are
visited best upper bound first and scored exactly (:func:`matching.dtw.align`); the
search stops when the next upper bound cannot beat the k-th best exact score. The
result equals the exhaustive ranking up to rasterisation of the densified path, which
the benchmark measures as recall@10 (``bench/bench_matching.py``).
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from matching.catalog import Catalog

#: Grid cells per axis over [-1, 1].
GRID = 16
#: Points inserted between consecutive arc steps when rasterising a track's path.
DENSIFY = 4
_CHUNK = 8192

_cache: weakref.WeakKeyDictionary[Catalog, FastIndex] = weakref.WeakKeyDictionary()


@dataclass(frozen=True, eq=False)
class FastIndex:
    """Per-track shrunk squared distance tables in units of VA (see module docstring)."""

    grid: int
    #: (N, grid * grid) float32: lower bound of the squared distance from any point of a
    #: cell to the track's VA path.
    table: np.ndarray

    @classmethod
    def for_catalog(cls, catalog: Catalog, *, grid: int = GRID) -> FastIndex:
        """Build (or fetch the cached) index of ``catalog``."""
        cached = _cache.get(catalog)
        if cached is not None and cached.grid == grid:
            return cached
        index = cls(grid=grid, table=_build_table(catalog, grid))
        _cache[catalog] = index
        return index

    def cells(self, va: np.ndarray) -> np.ndarray:
        """Flat grid cell of each ``(n, 2)`` VA point."""
        ij = np.clip(np.floor((np.asarray(va, dtype=np.float64) + 1.0) / 2.0 * self.grid), 0, self.grid - 1)
        ij = ij.astype(np.int64)
        return ij[:, 0] * self.grid + ij[:, 1]

    def lower_bound(self, query_va: np.ndarray, *, level_weight: float) -> np.ndarray:
        """``(N,)`` lower bound of the length-normalised DTW distance of every track (see module docstring)."""
        cells, counts = np.unique(self.cells(query_va), return_counts=True)
        total = self.table[:, cells] @ counts.astype(np.float32)  # (N,)
        n = len(query_va)
        return np.sqrt(np.maximum(total, 0.0) * level_weight / n).astype(np.float64)


def _build_table(catalog: Catalog, grid: int) -> np.ndarray:
    n_tracks = len(catalog)
    table = np.empty((n_tracks, grid * grid), dtype=np.float32)
    cell = 2.0 / grid
    for lo in range(0, n_tracks, _CHUNK):
        hi = min(n_tracks, lo + _CHUNK)
        occ = _occupancy(catalog, lo, hi, grid)
        # Dilate by one cell per axis: the distance from cell c to the nearest dilated
        # cell is, per axis, max(0, |c - o| - 1) cells: a bound valid anywhere in both cells.
        occ = ndimage.binary_dilation(occ, structure=np.ones((1, 3, 3), dtype=bool))
        # Tracks are stacked along axis 0 at a distance far beyond any in-plane one, so
        # one EDT over the chunk never takes a nearest cell from a neighbouring track.
        d = ndimage.distance_transform_edt(~occ, sampling=(4.0 * grid, 1.0, 1.0))
        table[lo:hi] = ((d * cell) ** 2).reshape(hi - lo, grid * grid)
    return table


def _occupancy(catalog: Catalog, lo: int, hi: int, grid: int) -> np.ndarray:
    """``(hi - lo, grid, grid)`` cells touched by each track's densified VA path."""
    start, end = catalog.offsets[lo], catalog.offsets[hi]
    va = catalog.va[start:end].astype(np.float64)
    row = np.repeat(np.arange(hi - lo), np.diff(catalog.offsets[lo : hi + 1]))
    pts = [va]
    rows = [row]
    if va.shape[0] > 1:
        same = row[1:] == row[:-1]  # segments inside one track
        a, b, r = va[:-1][same], va[1:][same], row[1:][same]
        for f in np.arange(1, DENSIFY + 1) / (DENSIFY + 1):
            pts.append(a + (b - a) * f)
            rows.append(r)
    p = np.concatenate(pts)
    rr = np.concatenate(rows)
    ij = np.clip(np.floor((p + 1.0) / 2.0 * grid), 0, grid - 1).astype(np.int64)
    occ = np.zeros((hi - lo, grid, grid), dtype=bool)
    occ[rr, ij[:, 0], ij[:, 1]] = True
    return occ
