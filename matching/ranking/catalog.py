"""The whole library in memory for ranking: flat arc arrays, arc summaries, embeddings.

Arcs of all tracks are concatenated into one float32 ``(total, 2)`` valence/arousal
array with offsets, so loading 100,000 tracks costs one query and a few copies, and
:func:`arc_summaries` computes the static arc-summary embedding of every track with
vectorised segment sums (no per-track Python loop).

**Arc summary** (the static embedding compared with a clip's): 8 numbers per arc,
mean valence, mean arousal, their standard deviations, their trend (mean of the last
third minus mean of the first third) and their mean absolute change per second. The
clip side uses the same function on the clip's arc, so the two always share every
dimension, whatever extra dimensions the track analysis' own embedding carries.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sqlalchemy as sa

from analysis.arc import EmotionArc

#: Names of the arc-summary dimensions, in order.
SUMMARY_DIMS: tuple[str, ...] = (
    "valence_mean",
    "arousal_mean",
    "valence_std",
    "arousal_std",
    "valence_trend",
    "arousal_trend",
    "valence_rate",
    "arousal_rate",
)


@dataclass(frozen=True, eq=False)
class Catalog:
    """Every track of a library as flat arrays, row ``i`` for track ``ids[i]``."""

    ids: np.ndarray  # (N,) int64
    paths: tuple[str, ...]
    titles: tuple[str | None, ...]
    durations: np.ndarray  # (N,) seconds
    hops: np.ndarray  # (N,) arc hop of each track, seconds
    offsets: np.ndarray  # (N + 1,) track i's steps are va[offsets[i]:offsets[i + 1]]
    va: np.ndarray  # (total, 2) float32 valence/arousal of all tracks
    embeddings: np.ndarray | None  # (N, D) float32 track-analysis embeddings when all share one D
    #: (N, 8) arc summaries (module docstring); computed from the arcs unless given (a persistent index has them).
    summaries: np.ndarray | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.summaries is None:
            object.__setattr__(self, "summaries", arc_summaries(self.va, self.offsets, self.hops))

    def __len__(self) -> int:
        return int(self.ids.size)

    def track_va(self, i: int) -> np.ndarray:
        """``(m, 2)`` float64 VA of the track in row ``i``."""
        return self.va[self.offsets[i] : self.offsets[i + 1]].astype(np.float64)

    def subset(self, rows: np.ndarray | Sequence[int]) -> Catalog:
        """The catalogue of rows ``rows`` (in that order): a shard, a tag's tracks."""
        rows = np.asarray(rows, dtype=np.int64)
        lengths = np.diff(self.offsets)[rows]
        offsets = np.concatenate([[0], np.cumsum(lengths)])
        steps = np.arange(int(offsets[-1])) + np.repeat(self.offsets[rows] - offsets[:-1], lengths)
        return Catalog(
            ids=self.ids[rows],
            paths=tuple(self.paths[i] for i in rows),
            titles=tuple(self.titles[i] for i in rows),
            durations=self.durations[rows],
            hops=self.hops[rows],
            offsets=offsets,
            va=self.va[steps],
            embeddings=None if self.embeddings is None else self.embeddings[rows],
        )

    @classmethod
    def from_arcs(
        cls,
        arcs: Sequence[EmotionArc],
        *,
        ids: Sequence[int] | None = None,
        paths: Sequence[str] | None = None,
        titles: Sequence[str | None] | None = None,
        embeddings: np.ndarray | None = None,
    ) -> Catalog:
        """A catalogue straight from arcs (synthetic libraries, benchmarks)."""
        n = len(arcs)
        lengths = np.array([len(a) for a in arcs], dtype=np.int64)
        return cls(
            ids=np.asarray(ids if ids is not None else np.arange(1, n + 1), dtype=np.int64),
            paths=tuple(paths) if paths is not None else tuple(f"track{i + 1}" for i in range(n)),
            titles=tuple(titles) if titles is not None else (None,) * n,
            durations=np.array([a.duration for a in arcs], dtype=np.float64),
            hops=np.array([a.hop or 0.5 for a in arcs], dtype=np.float64),
            offsets=np.concatenate([[0], np.cumsum(lengths)]),
            va=np.concatenate([a.va() for a in arcs]).astype(np.float32) if n else np.zeros((0, 2), np.float32),
            embeddings=embeddings,
        )


#: Tracks summarised at a time (bounds the per-track temporaries for a million tracks).
_CHUNK = 65536
#: Arc steps summarised at a time: the float64 temporaries cost about 100 bytes a step, so a chunk of
#: 65,536 tracks of 5 min at 0.5 s (39M steps) had peaked near 4 GB; 10,000 such tracks at 750 MB.
CHUNK_STEPS = 1 << 19


def chunks(offsets: np.ndarray, *, steps: int = CHUNK_STEPS, tracks: int = _CHUNK) -> Iterator[tuple[int, int]]:
    """Consecutive ``(lo, hi)`` runs of the tracks of ``offsets``, each of at most ``tracks`` tracks and
    ``steps`` steps (a longer track alone), covering them all."""
    offsets = np.asarray(offsets)
    n_tracks, lo = offsets.size - 1, 0
    while lo < n_tracks:
        hi = int(np.searchsorted(offsets, offsets[lo] + steps, side="right")) - 1
        hi = min(n_tracks, lo + tracks, max(lo + 1, hi))
        yield lo, hi
        lo = hi


def arc_summaries(va: np.ndarray, offsets: np.ndarray, hops: np.ndarray) -> np.ndarray:
    """``(N, 8)`` arc summaries of the segments ``va[offsets[i]:offsets[i+1]]`` (see module docstring)."""
    n_tracks = offsets.size - 1
    if n_tracks == 0:
        return np.zeros((0, len(SUMMARY_DIMS)))
    out = np.empty((n_tracks, len(SUMMARY_DIMS)))
    for lo, hi in chunks(offsets):
        a, b = int(offsets[lo]), int(offsets[hi])
        out[lo:hi] = _summaries(va[a:b], np.asarray(offsets[lo : hi + 1]) - a, np.asarray(hops[lo:hi]))
    return out


def _summaries(va: np.ndarray, offsets: np.ndarray, hops: np.ndarray) -> np.ndarray:
    x = va.astype(np.float64)
    lengths = np.diff(offsets).astype(np.float64)
    safe_len = np.maximum(lengths, 1.0)[:, None]
    cs = np.concatenate([np.zeros((1, 2)), np.cumsum(x, axis=0)])
    cs2 = np.concatenate([np.zeros((1, 2)), np.cumsum(x * x, axis=0)])

    def seg_sum(c: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return c[b] - c[a]

    start, end = offsets[:-1], offsets[1:]
    mean = seg_sum(cs, start, end) / safe_len
    var = np.maximum(seg_sum(cs2, start, end) / safe_len - mean**2, 0.0)
    third = np.maximum(np.floor(lengths / 3).astype(np.int64), 1)
    head = seg_sum(cs, start, np.minimum(start + third, end)) / third[:, None]
    tail = seg_sum(cs, np.maximum(end - third, start), end) / third[:, None]
    d = np.abs(np.diff(x, axis=0))  # (total - 1, 2), includes jumps across tracks: excluded below
    cd = np.concatenate([np.zeros((1, 2)), np.cumsum(d, axis=0)])
    steps = np.maximum(lengths - 1, 1.0)[:, None]
    rate = np.where(lengths[:, None] > 1, seg_sum(cd, start, np.maximum(end - 1, start)) / steps, 0.0)
    rate = rate / hops[:, None]
    return np.concatenate([mean, np.sqrt(var), tail - head, rate], axis=1)


def arc_summary(arc: EmotionArc) -> np.ndarray:
    """The 8-number arc summary of one arc."""
    va = arc.va().astype(np.float32)
    return arc_summaries(va, np.array([0, len(arc)]), np.array([arc.hop or 0.5]))[0]


def build_catalog(
    engine: sa.Engine, tracks: sa.Table, arcs: sa.Table, embeddings: sa.Table, *, where: Any = None
) -> Catalog:
    """Load every track of a library database (those matching ``where``, if given) in one query."""
    q = (
        sa.select(
            tracks.c.id, tracks.c.path, tracks.c.title, tracks.c.duration, arcs.c.hop,
            arcs.c.valence, arcs.c.arousal, embeddings.c.vector,
        )
        .join(arcs, arcs.c.track_id == tracks.c.id)
        .outerjoin(embeddings, embeddings.c.track_id == tracks.c.id)
        .order_by(tracks.c.id)
    )  # fmt: skip
    if where is not None:
        q = q.where(where)
    with engine.connect() as conn:
        rows = conn.execute(q).all()
    vals = [np.frombuffer(r.valence, dtype="<f4") for r in rows]
    aros = [np.frombuffer(r.arousal, dtype="<f4") for r in rows]
    lengths = np.array([v.size for v in vals], dtype=np.int64)
    va = np.stack([np.concatenate(vals), np.concatenate(aros)], axis=1) if rows else np.zeros((0, 2), np.float32)
    embs = [np.frombuffer(r.vector, dtype="<f4") if r.vector is not None else None for r in rows]
    dims = {e.size for e in embs if e is not None}
    emb = np.stack(embs) if rows and len(dims) == 1 and all(e is not None for e in embs) else None
    fields = {"ids": np.array([r.id for r in rows], dtype=np.int64), "paths": tuple(r.path for r in rows),
              "titles": tuple(r.title for r in rows), "hops": np.array([r.hop for r in rows], dtype=np.float64),
              "durations": np.array([r.duration for r in rows], dtype=np.float64)}
    del rows, vals, aros, embs  # the fetched blobs go before the summaries are computed
    return Catalog(**fields, offsets=np.concatenate([[0], np.cumsum(lengths)]), va=va.astype(np.float32, copy=False),
                   embeddings=emb)  # fmt: skip
