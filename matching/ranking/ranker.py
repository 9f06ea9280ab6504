"""Rank library tracks by how well their emotional flow fits a clip's.

``score = w_dtw * dtw_score + w_emb * embedding_score`` (weights renormalised to sum
to one, from :class:`matching.ranking.weights.MatchWeights`, per content type):

* ``dtw_score``: the best section of the track, fitted to the clip's length, compared
  by length-normalised windowed DTW with transition channels
  (:func:`matching.ranking.dtw.align`).
* ``embedding_score``: the clip's and the track's 8-number arc summaries
  (:mod:`matching.ranking.catalog`: levels, spreads, trends, rates of change), compared as
  ``1 / (1 + mean(((x - y) / scale)^2))`` with the per-dimension ``EMBED_SCALE``.
  Both sides use the same summary of their arcs, so they share every dimension.

A clip of more than :data:`MAX_STEPS` arc steps (5 min at 0.5 s) is compared on averaged steps
(:func:`comparison_va`): an hour-long clip ranks in about a second, not minutes.

Both parts of a track too short to stretch over the clip are scaled down by the share of the clip
it covers (``coverage``), so the whole blend is: a 1 s sting on a 20 s clip covers 6 % of it and
cannot rank as a good match on its mood summary alone. ``score`` stays exactly the blend of the
two scores a :class:`Match` reports (the page re-blends them with an exploration draw, and the
feedback learner learns the blend from them).

:func:`rank` returns a :class:`Ranking`: a ``list[Match]``, best first, that also
carries ``compose_instead`` (True when even the best score is below the weights'
``compose_threshold``, or the library is empty).
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from dataclasses import dataclass
from typing import Any

import numpy as np
from numba import njit

from analysis.arc import EmotionArc
from analysis.errors import ParameterError
from analysis.jit import build_once
from matching.ranking.catalog import Catalog, arc_summary
from matching.ranking.dtw import Alignments, align_series, distance_to_score, features
from matching.ranking.sketches import estimate, release_pages
from matching.ranking.threads import run_parts
from matching.ranking.weights import MatchWeights, weights_for

#: Per-dimension scale of the arc-summary comparison (means, spreads, trends, rates per s).
EMBED_SCALE = np.array([0.5, 0.5, 0.3, 0.3, 0.5, 0.5, 0.1, 0.1])
#: Fewest tracks the fast path scores exactly; it scores ``max(CANDIDATES, 10 * sqrt(N))`` of N
#: (the shortlist must grow with the library for the same recall: ``bench/bench_matching.py``).
#: Exact alignment is compiled and parallel, so a large shortlist is cheap: 10,000 tracks at a
#: million take about 0.15 s on two cores.
CANDIDATES = 1000
#: Most steps a clip's arc is compared in (:func:`comparison_va`): 5 min at the analysis' 0.5 s hop.
#: Exact alignment costs about the square of the clip's steps per track, so at 0.5 s a 1 h clip
#: (7,200 steps) took 0.11 s a track, five minutes for a 2,000-track library; at 600 steps it
#: compares the arc every 6 s, finer than the moods of an hour-long film move.
MAX_STEPS = 600


def shortlist_size(n_tracks: int) -> int:
    """Default number of tracks the fast path scores exactly in a library of ``n_tracks``."""
    return max(CANDIDATES, math.ceil(10 * math.sqrt(n_tracks)))


@dataclass(frozen=True)
class Match:
    """One ranked track."""

    track_id: int
    path: str
    title: str | None
    #: Blended score in [0, 1].
    score: float
    #: Arc-flow score, scaled by ``coverage``.
    dtw_score: float
    #: Arc-summary score, scaled by ``coverage``.
    embedding_score: float
    #: Start and end of the best section in the track, seconds.
    start: float
    end: float
    #: Clip duration / section duration (> 1: the section is slowed down to fit).
    stretch: float
    #: Share of the clip the stretched section covers (1.0 unless the track is too short).
    coverage: float
    #: Length-normalised DTW distance behind ``dtw_score``.
    distance: float

    def to_dict(self) -> dict[str, Any]:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in self.__dict__.items()}


class Ranking(list[Match]):
    """``list[Match]`` best first, plus the verdict of the "compose instead" threshold."""

    def __init__(self, matches: list[Match], *, compose_instead: bool, threshold: float, weights: MatchWeights):
        super().__init__(matches)
        self.compose_instead = compose_instead
        self.threshold = threshold
        self.weights = weights

    @property
    def matches(self) -> list[Match]:
        return list(self)

    def to_dict(self) -> dict[str, Any]:
        return {
            "matches": [m.to_dict() for m in self],
            "compose_instead": self.compose_instead,
            "threshold": self.threshold,
            "weights": self.weights.to_dict(),
        }


def clip_arc(clip: Any) -> EmotionArc:
    """The arc of a VideoAnalysis (anything with ``.arc``) or an EmotionArc itself."""
    arc = clip if isinstance(clip, EmotionArc) else getattr(clip, "arc", None)
    if not isinstance(arc, EmotionArc):
        raise ParameterError(f"`clip` must be an EmotionArc or have an .arc (received {type(clip).__name__})")
    if len(arc) < 2:  # one point has no shape: DTW against it would call nearly any track a fit
        raise ParameterError(f"`clip` arc needs at least 2 steps to be matched (received {len(arc)}): "
                             "the clip is shorter than two arc steps")
    return arc


def comparison_va(arc: EmotionArc) -> tuple[np.ndarray, float]:
    """``(va, hop)``: the clip's arc as the ranking compares it, on at most :data:`MAX_STEPS` steps.

    A longer arc is averaged over runs of ``ceil(n / MAX_STEPS)`` steps (the last run may be shorter) and
    compared at that multiple of its hop; library tracks are resampled to it as to any clip hop.
    """
    hop = arc.hop or 0.5
    va = arc.va()
    factor = math.ceil(va.shape[0] / MAX_STEPS)
    if factor <= 1:
        return va, hop
    starts = np.arange(0, va.shape[0], factor)
    sums = np.add.reduceat(va, starts, axis=0)
    counts = np.diff(np.append(starts, va.shape[0]))
    return sums / counts[:, None], hop * factor


def embedding_scores(clip_summary: np.ndarray, summaries: np.ndarray) -> np.ndarray:
    """``(N,)`` arc-summary similarity in (0, 1] of the clip against every track."""
    summaries = np.asarray(summaries, dtype=np.float64)
    if summaries.ndim != 2 or summaries.shape[1] != EMBED_SCALE.size:
        raise ParameterError(f"`summaries` must be (N, {EMBED_SCALE.size}) (received shape {summaries.shape})")
    clip = np.asarray(clip_summary, dtype=np.float64)
    out = np.empty(summaries.shape[0])
    run_parts(lambda lo, hi: _embedding_scores(clip, summaries, EMBED_SCALE, out, lo, hi), len(out), least=8192)
    return out


@njit(cache=True, nogil=True)
def _embedding_scores(clip: np.ndarray, summaries: np.ndarray, scale: np.ndarray, out: np.ndarray, lo: int,
                      hi: int) -> None:  # fmt: skip
    for i in range(lo, hi):
        acc = 0.0
        for j in range(clip.size):
            z = (summaries[i, j] - clip[j]) / scale[j]
            acc += z * z
        out[i] = 1.0 / (1.0 + acc / clip.size)


def steps_at(m: np.ndarray | int, track_hop: np.ndarray | float, hop: float) -> np.ndarray:
    """Steps of a track of ``m`` steps at ``track_hop`` after resampling to ``hop``."""
    m = np.asarray(m)
    return np.where(np.abs(track_hop - hop) < 1e-9, m, np.maximum(1, np.round((m - 1) * track_hop / hop) + 1))


def track_va_at(catalog: Catalog, i: int, hop: float) -> np.ndarray:
    """Track ``i``'s VA resampled to the clip's ``hop``."""
    va = catalog.track_va(i)
    m_new = int(steps_at(va.shape[0], float(catalog.hops[i]), hop))
    if m_new == va.shape[0]:
        return va
    x = np.linspace(0.0, va.shape[0] - 1.0, m_new)
    xp = np.arange(va.shape[0], dtype=np.float64)
    return np.stack([np.interp(x, xp, va[:, 0]), np.interp(x, xp, va[:, 1])], axis=1)


def _catalog(library: Any) -> Catalog:
    if isinstance(library, Catalog):
        return library
    cat = getattr(library, "catalog", None)
    if isinstance(cat, Catalog):  # a persistent index (matching.ranking.index.SketchIndex)
        return cat
    if callable(cat):
        return cat()
    raise ParameterError(
        f"`library` must be a matching.Library, a SketchIndex or a Catalog (received {type(library).__name__})"
    )


def positive_count(name: str, value: Any) -> int:
    """A positive whole number as an ``int``: numpy integers too (a ``k`` computed with numpy), never a bool."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ParameterError(f"`{name}` must be a positive integer (received {value!r})")
    return int(value)


def rank(
    clip: Any,
    library: Any,
    k: int = 10,
    *,
    weights: MatchWeights | None = None,
    content_type: str | None = None,
    fast: bool = True,
    candidates: int | None = None,
) -> Ranking:
    """The ``k`` tracks of ``library`` whose arcs fit ``clip``'s best (see module docstring).

    ``clip`` is a VideoAnalysis or an EmotionArc; ``library`` a :class:`matching.Library`
    or a :class:`matching.ranking.catalog.Catalog`. ``fast`` scores exactly only the
    ``candidates`` tracks (default :func:`shortlist_size`) whose sketches
    (:mod:`matching.ranking.sketches`) fit best; ``fast=False`` scores every track.
    """
    k = positive_count("k", k)
    candidates = None if candidates is None else positive_count("candidates", candidates)
    build_once("ranking", build_kernels)  # one process compiles them, the others read them
    w = weights_for(content_type, weights)
    arc = clip_arc(clip)
    cat = _catalog(library)
    q, hop = comparison_va(arc)
    w_dtw, w_emb = w.blend
    emb = embedding_scores(arc_summary(arc), cat.summaries) if len(cat) else np.zeros(0)

    fq = features(q, hop, w)  # once per clip, not per track

    def exact(chosen: np.ndarray) -> list[Match]:
        al = align_tracks(cat, chosen, q, hop, w, fq)
        covered_emb = al.coverage * emb[chosen]  # al.score carries the coverage already
        score = w_dtw * al.score + w_emb * covered_emb
        order = np.lexsort((np.asarray(cat.ids)[chosen], -score))[:k]  # best first, ties by track id
        return [_match(cat, int(chosen[r]), float(score[r]), al, r, float(covered_emb[r])) for r in order]

    if not fast or len(cat) <= k:
        best = exact(np.arange(len(cat)))
    else:
        size = candidates if candidates is not None else shortlist_size(len(cat))
        best = exact(_shortlist(cat, q, hop, k, w, emb, size))
    top = best[0].score if best else 0.0
    return Ranking(best, compose_instead=top < w.compose_threshold, threshold=w.compose_threshold, weights=w)


def build_kernels() -> None:
    """Rank a tiny clip in tiny catalogues the ways :func:`rank` can go: a shortlist (sketches) or every
    track, library tracks at the clip's hop (float32 arcs) or at another (float64), so that each kernel
    is compiled, or read from numba's cache, for every type it is called with."""
    steps = np.arange(24, dtype=np.float64)
    clip = EmotionArc(steps[:8] * 0.5, 0.5 * np.sin(steps[:8]), 0.5 * np.cos(steps[:8] / 2))
    for hop in (0.5, 0.25):
        arcs = [EmotionArc(steps * hop, 0.5 * np.sin(steps * hop + i), 0.5 * np.cos(steps + i)) for i in range(3)]
        cat = Catalog.from_arcs(arcs)
        rank(clip, cat, k=1)
        rank(clip, cat, k=1, fast=False)


def _match(cat: Catalog, i: int, score: float, al: Alignments, r: int, emb: float) -> Match:
    a = al[r]
    # The arc's last step covers the track's last part-hop (or compared step) in full: the section ends with
    # the track, not up to a step past it.
    duration = float(cat.durations[i])
    end = min(a.end, duration) if a.start < duration else a.end
    return Match(track_id=int(cat.ids[i]), path=cat.paths[i], title=cat.titles[i], score=score, dtw_score=a.score,
                 embedding_score=emb, start=a.start, end=end, stretch=a.stretch, coverage=a.coverage,
                 distance=a.distance)  # fmt: skip


#: Tracks aligned per call when every track is scored: a memory-mapped catalogue gives the
#: pages of each part back, so ranking a million tracks exhaustively holds one part in memory.
_PART = 1 << 17


def align_tracks(
    cat: Catalog, chosen: np.ndarray, q: np.ndarray, hop: float, w: MatchWeights, fq: np.ndarray | None = None
) -> Alignments:
    """:func:`~matching.ranking.dtw.align_series` of clip ``q`` with tracks ``chosen`` (sorted indices)."""
    if chosen.size <= _PART:
        return align_series(q, *series_at(cat, chosen, hop), hop=hop, weights=w, query_features=fq)
    parts = []
    for lo in range(0, chosen.size, _PART):
        part = chosen[lo : lo + _PART]
        parts.append(align_series(q, *series_at(cat, part, hop), hop=hop, weights=w, query_features=fq))
        release_pages(cat.va, int(cat.offsets[part[0]]), int(cat.offsets[part[-1] + 1]))
    return Alignments(*(np.concatenate([getattr(p, f.name) for p in parts]) for f in dataclasses.fields(Alignments)))


def series_at(cat: Catalog, chosen: np.ndarray, hop: float) -> tuple[np.ndarray, np.ndarray]:
    """The VA of tracks ``chosen`` at the clip's ``hop``, as one array and offsets (no copy for all tracks)."""
    hops = np.asarray(cat.hops)[chosen]
    same = np.abs(hops - hop) < 1e-9
    if same.all() and chosen.size and np.array_equal(chosen, np.arange(chosen[0], chosen[0] + chosen.size)):
        lo, hi = int(cat.offsets[chosen[0]]), int(cat.offsets[chosen[-1] + 1])
        return cat.va[lo:hi], np.asarray(cat.offsets[chosen[0] : chosen[-1] + 2]) - lo  # a run: no copy
    if same.all():
        lo, hi = np.asarray(cat.offsets)[chosen], np.asarray(cat.offsets)[chosen + 1]
        m = hi - lo
        offsets = np.concatenate([[0], np.cumsum(m)])
        rows = np.repeat(lo - offsets[:-1], m) + np.arange(int(offsets[-1]))
        return np.asarray(cat.va[rows]), offsets
    parts = [track_va_at(cat, int(i), hop) for i in chosen]
    offsets = np.concatenate([[0], np.cumsum([p.shape[0] for p in parts])])
    return np.concatenate(parts).astype(np.float64), offsets


def estimated_scores(cat: Catalog, q: np.ndarray, hop: float, w: MatchWeights, emb: np.ndarray) -> np.ndarray:
    """``(N,)`` every track's blended score with the sketch estimate in place of exact DTW.

    The estimate (:func:`matching.ranking.sketches.estimate`) replaces the exact DTW distance in the
    blend; the embedding part and the coverage of short tracks (which scales the whole blend, as in
    :func:`rank`) are exact already.
    """
    w_dtw, w_emb = w.blend
    est = estimate(cat, q, hop=hop, weights=w).distance
    return coverages(cat, q.shape[0], hop, w) * (w_dtw * distance_to_score(est, w.distance_scale) + w_emb * emb)


def coverages(cat: Catalog, clip_steps: int, hop: float, w: MatchWeights) -> np.ndarray:
    """``(N,)`` share of a clip of ``clip_steps`` steps each track covers, slowed down ``max_stretch`` at most."""
    m = steps_at(np.diff(cat.offsets), cat.hops, hop)
    return np.minimum(1.0, m * w.max_stretch / clip_steps)


def _shortlist(
    cat: Catalog, q: np.ndarray, hop: float, k: int, w: MatchWeights, emb: np.ndarray, candidates: int
) -> np.ndarray:
    """The ``candidates`` tracks with the best :func:`estimated_scores`, to be scored exactly."""
    guess = estimated_scores(cat, q, hop, w, emb)
    c = min(len(cat), max(candidates, k))
    return np.sort(np.argpartition(-guess, c - 1)[:c]) if c < len(cat) else np.arange(len(cat))
