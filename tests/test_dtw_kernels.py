"""The compiled alignment (matching.ranking.dtw_kernels) against dtaidistance's C code.

``align`` and ``align_series`` run the Numba kernels; ``fit_section`` (``best_section``,
``clamp_section`` and ``arc_distance``) is the same steps on dtaidistance. Both must find the same
section and the same distance on every kind of pair: clips longer and shorter than
the track, one-step tracks, half-second hops, other weights.
"""

from __future__ import annotations

import numpy as np
import pytest

from matching.ranking.dtw import align, align_series, fit_section
from matching.ranking.weights import MatchWeights


def _walk(rng: np.random.Generator, n: int) -> np.ndarray:
    return np.clip(np.cumsum(rng.normal(0, 0.1, (n, 2)), axis=0) + rng.uniform(-0.5, 0.5, 2), -1, 1)


def _reference(q: np.ndarray, s: np.ndarray, hop: float, w: MatchWeights) -> tuple[float, int, int]:
    return fit_section(q, s, hop=hop, weights=w)


@pytest.mark.parametrize(
    ("hop", "weights"),
    [(1.0, MatchWeights()), (0.5, MatchWeights(transition=3.0, max_stretch=1.35, penalty=0.05, window=0.1))],
)
def test_kernels_match_dtaidistance(hop: float, weights: MatchWeights) -> None:
    rng = np.random.default_rng(7)
    tracks = [_walk(rng, int(m)) for m in [1, 2, 3, 7, 20, 45, 90, 150, 240]]
    offsets = np.concatenate([[0], np.cumsum([len(t) for t in tracks])])
    va = np.concatenate(tracks).astype(np.float32)
    for n in (2, 5, 12, 40, 91):
        q = _walk(rng, n)
        got = align_series(q, va, offsets, hop=hop, weights=weights)
        for t in range(len(tracks)):
            s = va[offsets[t] : offsets[t + 1]].astype(np.float64)
            dist, start, end = _reference(q, s, hop, weights)
            assert got.distance[t] == pytest.approx(dist, rel=1e-12, abs=1e-12), (n, t)
            assert (got.start[t], got.end[t]) == (start * hop, (end + 1) * hop), (n, t)
            one = align(q, s, hop=hop, weights=weights)
            assert one.distance == got.distance[t] and one.score == got.score[t]


def test_alignment_fields_follow_the_section() -> None:
    # A track shorter than the clip can only cover part of it; a long one covers it all.
    rng = np.random.default_rng(3)
    q = _walk(rng, 40)
    short, long = q[:10], np.concatenate([_walk(rng, 30), q, _walk(rng, 30)])
    va = np.concatenate([short, long])
    got = align_series(q, va, np.array([0, 10, 10 + len(long)]), hop=0.5)
    assert got.coverage[0] == pytest.approx(10 * 1.25 / 40) and got.stretch[0] == 1.25
    assert got.coverage[1] == 1.0 and got.distance[1] < 1e-9
    assert (got.start[1], got.end[1]) == (15.0, 35.0)


def test_bad_offsets_are_refused() -> None:
    with pytest.raises(ValueError, match="offsets"):
        align_series(np.zeros((5, 2)), np.zeros((4, 2)), np.array([0, 2, 2, 4]), hop=1.0)


FORK_AFTER_RANKING = """
import multiprocessing as mp
import numpy as np
from matching.ranking.catalog import Catalog
from matching.ranking.ranker import rank
from analysis.arc import EmotionArc

def arc(va):
    return EmotionArc.from_va(np.arange(len(va)) + 0.5, va[:, 0], va[:, 1])

def child(seed):
    import torch
    rng = np.random.default_rng(seed)
    walks = [np.clip(np.cumsum(rng.normal(0, 0.1, (60, 2)), axis=0), -1, 1) for _ in range(3000)]
    x = torch.randn(600, 600)
    return len(rank(arc(walks[0][5:35]), Catalog.from_arcs([arc(w) for w in walks]), k=3)) + int((x @ x).shape[0])

rng = np.random.default_rng(0)
walks = [np.clip(np.cumsum(rng.normal(0, 0.1, (60, 2)), axis=0), -1, 1) for _ in range(3000)]
rank(arc(walks[0][5:35]), Catalog.from_arcs([arc(w) for w in walks]), k=3)
with mp.get_context("fork").Pool(2) as pool:
    print(pool.map(child, [1, 2]))
"""


def test_a_process_forked_after_ranking_can_rank_and_use_torch() -> None:
    # The library's indexing pool forks. Kernels on an OpenMP pool (Numba's parallel=True)
    # left every forked child that used OpenMP in turn (torch does) hanging.
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", FORK_AFTER_RANKING], capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[603, 603]"
