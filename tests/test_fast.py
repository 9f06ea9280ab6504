"""The sketch shortlist of the fast path: sketches, the compiled estimate, recall, the cache."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from analysis.arc import EmotionArc
from analysis.errors import ParameterError
from matching.ranking import sketches as fast
from matching.ranking.catalog import Catalog
from matching.ranking.ranker import rank
from matching.ranking.weights import MatchWeights

HOP = 1.0


def _walk(rng: np.random.Generator, n: int) -> np.ndarray:
    x = np.cumsum(rng.normal(0, 0.08, (n, 2)), axis=0)
    x = np.stack([np.convolve(x[:, c], np.ones(5) / 5, mode="same") for c in range(2)], axis=1)
    return np.clip(x - x.mean(axis=0) + rng.uniform(-0.5, 0.5, 2), -1, 1)


def _arc(va: np.ndarray, hop: float = HOP) -> EmotionArc:
    return EmotionArc.from_va((np.arange(len(va)) + 0.5) * hop, va[:, 0], va[:, 1])


def _warp(va: np.ndarray, n: int, power: float) -> np.ndarray:
    x = np.linspace(0, 1, n) ** power * (len(va) - 1)
    return np.stack([np.interp(x, np.arange(len(va)), va[:, c]) for c in range(2)], axis=1)


# --------------------------------------------------------------------------- sketches
def test_paa_bin_means_by_hand() -> None:
    va = np.stack([np.arange(10.0), np.full(10, -0.5)], axis=1)
    assert fast.paa(va, 5) == pytest.approx([0.5, 2.5, 4.5, 6.5, 8.5] + [-0.5] * 5)
    # Three steps in four bins: step values held over [i, i + 1), bins 0.75 steps wide.
    three = np.stack([[0.0, 4.0, 8.0], [0.0, 0.0, 0.0]], axis=1)
    assert fast.paa(three, 4)[:4] == pytest.approx([0.0, (0.25 * 0 + 0.5 * 4) / 0.75, (0.5 * 4 + 0.25 * 8) / 0.75, 8.0])
    with pytest.raises(ParameterError, match="va"):
        fast.paa(np.zeros((0, 2)), 4)
    with pytest.raises(ParameterError, match="points"):
        fast.build_table(Catalog.from_arcs([_arc(va)]), 8.0, points=2)


def test_diff_operator_matches_dtw_slope() -> None:
    s = fast.diff_operator(5)
    y = np.array([0.0, 1.0, 4.0, 9.0, 16.0])
    assert s @ y == pytest.approx([1.0, 2.0, 4.0, 6.0, 7.0])  # one-sided at the ends, central inside


def test_windows_cover_the_track_and_short_tracks_are_whole() -> None:
    rng = np.random.default_rng(0)
    long, short = _walk(rng, 40), _walk(rng, 10)
    cat = Catalog.from_arcs([_arc(long), _arc(short)])
    table = fast.build_table(cat, 16.0, points=8, stride=0.25)
    # Track 0: starts 0, 4, ..., 24 (the last ends with the track); track 1: one whole-track row.
    assert table.first_row.tolist() == [0, 7]
    assert table.blocks[0].shape == (16, 8) and table.blocks[0].dtype == np.int8
    rows = table.values()
    half_step = 0.5 / fast.QUANT + 1e-12  # stored as round(127 x)
    for j, start in enumerate(range(0, 25, 4)):
        assert np.abs(rows[j] - fast.paa(long[start : start + 16], 8)).max() <= half_step
    assert np.abs(rows[7] - fast.paa(short, 8)).max() <= half_step


def test_windows_are_in_seconds_whatever_the_track_hop() -> None:
    # The same piecewise-constant arc at hop 1 s and at hop 0.5 s (each step twice): same sketches.
    va = _walk(np.random.default_rng(3), 50)
    cat = Catalog.from_arcs([_arc(va, 1.0), _arc(np.repeat(va, 2, axis=0), 0.5)])
    table = fast.build_table(cat, 22.6, points=12, stride=0.3)
    rows = table.values()
    r0, r1 = table.first_row
    assert r1 == r0 + (rows.shape[0] - r1)
    assert rows[r1:] == pytest.approx(rows[:r1], abs=1.01 / fast.QUANT)


def test_lengths_for_cover_the_section_lengths_exact_alignment_uses() -> None:
    for duration in (12.0, 34.0, 58.0, 95.0, 400.0):
        lengths = np.array(fast.lengths_for(duration, 1.25))
        assert lengths.min() >= duration / 1.25 / fast.LOW_SLACK - 1e-6
        assert lengths.max() <= duration * fast.HIGH_SLACK + 1e-6
        # Every section length from the clamp (duration / 1.25) to the clip's own is within
        # half a ladder step of a compared window length.
        for section in np.linspace(duration / 1.25, duration, 7):
            assert np.min(np.abs(np.log(lengths / section))) <= np.log(fast.RATIO) / 2 + 1e-9
    assert fast.lengths_for(2.0, 1.25) == (fast.BASE_SECONDS,)
    with pytest.raises(ParameterError, match="duration"):
        fast.lengths_for(0.0, 1.25)


# --------------------------------------------------------------------------- the estimate
def test_estimate_equals_the_window_distances_row_by_row() -> None:
    # The compiled scan gives, per track, the smallest weighted distance over its windows and
    # the three shifts, each computed here plainly on the stored sketches.
    rng = np.random.default_rng(5)
    cat = Catalog.from_arcs([_arc(_walk(rng, int(m))) for m in rng.integers(8, 70, 25)])
    q = _walk(rng, 20)
    w = MatchWeights(valence=1.3, arousal=0.7, transition=2.5)
    p = 8
    est = fast.estimate(cat, q, hop=HOP, weights=w, points=p, stride=0.5)
    u = fast.paa(q, p)
    expected = np.full(len(cat), np.inf)
    for length in est.lengths:
        table = fast.build_table(cat, length, points=p, stride=0.5)
        rows = table.values()
        track = np.repeat(np.arange(len(cat)), np.diff(np.r_[table.first_row, rows.shape[0]]))
        for row, i in zip(rows, track, strict=True):
            for shift in fast.SHIFTS:
                d2 = fast.window_distance(u, row, shift, spacing=len(q) * HOP / p, weights=w)
                expected[i] = min(expected[i], d2)
    assert est.distance == pytest.approx(np.sqrt(expected), rel=1e-4, abs=1e-5)  # float32 in the scan


def test_shifts_find_a_section_that_starts_between_windows() -> None:
    # Window bins 0..5 hold 0, 1, ..., 5. A clip holding bins 1..6 of the same ramp is the window
    # shifted by one bin (the section starts a bin into the window): the aligned comparison
    # misses it, the (0, 1) shift sees no difference on the five bins they share, and (1, 0)
    # shifts the wrong way.
    w = MatchWeights(valence=1.0, arousal=1.0, transition=1.0)
    ramp = np.arange(7) / 10
    y = np.r_[ramp[:6], np.zeros(6)]
    u = np.r_[ramp[1:], np.zeros(6)]
    aligned = fast.window_distance(u, y, (0, 0), spacing=1.0, weights=w)
    assert aligned == pytest.approx(0.01)  # every bin 0.1 apart, no change in the differences
    assert fast.window_distance(u, y, (0, 1), spacing=1.0, weights=w) == pytest.approx(0.0, abs=1e-12)
    assert fast.window_distance(u, y, (1, 0), spacing=1.0, weights=w) == pytest.approx(0.04)


def test_estimate_tracks_the_exact_distance_of_a_clean_section() -> None:
    rng = np.random.default_rng(11)
    vas = [_walk(rng, 120) for _ in range(30)]
    cat = Catalog.from_arcs([_arc(v) for v in vas])
    # 32 s windows start every 16 s: a section starting at 32 s is a window, one at 40 s lies
    # half a bin from the nearest shift. Both rank their track first.
    on = fast.estimate(cat, vas[17][32:64], hop=HOP, weights=MatchWeights()).distance
    between = fast.estimate(cat, vas[17][40:72], hop=HOP, weights=MatchWeights()).distance
    assert int(np.argmin(on)) == int(np.argmin(between)) == 17
    assert on[17] < 0.01 < 0.1 < np.sort(on)[1]
    assert between[17] < 0.8 * np.sort(between)[1]


# --------------------------------------------------------------------------- recall of the fast path
@pytest.fixture(scope="module")
def planted() -> tuple[Catalog, list[np.ndarray], np.ndarray, np.ndarray]:
    """600 random tracks; 12 of them carry a warped, noisy copy of one motif at random places."""
    rng = np.random.default_rng(2024)
    motif = _walk(rng, 36)
    vas = [_walk(rng, int(rng.integers(30, 200))) for _ in range(600)]
    hosts = rng.choice(600, 12, replace=False)
    for j, h in enumerate(hosts):
        copy = _warp(motif, int(rng.integers(32, 41)), 0.85 + 0.03 * j) + rng.normal(0, 0.01 + 0.01 * j, (1, 2))
        at = int(rng.integers(0, max(1, len(vas[h]) - len(copy))))
        v = vas[h].copy()
        v[at : at + len(copy)] = copy[: len(v) - at]
        vas[h] = np.clip(v, -1, 1)
    return Catalog.from_arcs([_arc(v) for v in vas]), vas, hosts, motif


def test_fast_top10_equals_exhaustive_with_planted_near_matches(
    planted: tuple[Catalog, list[np.ndarray], np.ndarray, np.ndarray],
) -> None:
    cat, vas, hosts, motif = planted
    rng = np.random.default_rng(9)
    clips = [
        _arc(_warp(motif, 38, 1.1) + rng.normal(0, 0.02, (38, 2))),  # the motif: 12 planted near-matches
        _arc(_walk(rng, 36)),  # an unrelated clip
        _arc(vas[hosts[5]][:50] + rng.normal(0, 0.02, (min(50, len(vas[hosts[5]])), 2))),  # a host's opening
    ]
    for clip in clips:
        exhaustive = rank(clip, cat, k=10, fast=False)
        quick = rank(clip, cat, k=10, fast=True, candidates=60)  # a tenth of the library scored exactly
        assert [m.track_id for m in quick] == [m.track_id for m in exhaustive]
        assert [m.score for m in quick] == pytest.approx([m.score for m in exhaustive])
    # The motif's near-matches are what the exhaustive top 10 is made of.
    motif_top = {m.track_id for m in rank(clips[0], cat, k=10, candidates=60)}
    assert len(motif_top & {int(cat.ids[h]) for h in hosts}) >= 8


def test_planted_time_warped_copy_ranks_first(
    planted: tuple[Catalog, list[np.ndarray], np.ndarray, np.ndarray],
) -> None:
    cat, vas, _, _ = planted
    rng = np.random.default_rng(4)
    for target in (5, 321, 590):
        src = vas[target][: min(len(vas[target]), 70)]
        clip = _arc(_warp(src, round(len(src) * 1.1), 1.2) + rng.normal(0, 0.02, (round(len(src) * 1.1), 2)))
        hits = rank(clip, cat, k=3, candidates=10)
        assert hits[0].track_id == cat.ids[target]
        assert hits[0].score > hits[1].score


def test_candidates_must_be_positive(planted: tuple[Catalog, list[np.ndarray], np.ndarray, np.ndarray]) -> None:
    cat, vas, _, _ = planted
    with pytest.raises(ParameterError, match="candidates"):
        rank(_arc(vas[0][:20]), cat, k=3, candidates=0)


# --------------------------------------------------------------------------- the cache
@dataclass(frozen=True)
class _Analysis:
    arc: EmotionArc
    embedding: np.ndarray


def test_cache_follows_the_library(tmp_path: Path) -> None:
    from matching.library.store import Library

    rng = np.random.default_rng(8)
    lib = Library(tmp_path / "lib.db", hop=HOP)
    for i in range(40):
        lib.store(tmp_path / f"t{i}.wav", _Analysis(_arc(_walk(rng, 80)), np.zeros(2, np.float32)), checksum=f"c{i}")
    target = _walk(rng, 80)
    clip = _arc(target[20:52])
    before = lib.catalog()
    hits = rank(clip, lib, k=3, candidates=5)
    tables = fast.cached_tables(before)
    assert tables and all(t.first_row.size == 40 for t in tables)
    assert fast.cached_tables(lib.catalog()) == tables  # unchanged library: same catalogue, same tables
    new = lib.store(tmp_path / "new.wav", _Analysis(_arc(target), np.zeros(2, np.float32)), checksum="new")
    after = lib.catalog()
    assert after is not before and fast.cached_tables(after) == ()
    hits = rank(clip, lib, k=3, candidates=5)
    assert hits[0].track_id == new.id
    assert all(t.first_row.size == 41 for t in fast.cached_tables(after))


def test_cache_keeps_at_most_max_tables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fast, "MAX_TABLES", 2)
    rng = np.random.default_rng(1)
    cat = Catalog.from_arcs([_arc(_walk(rng, 100)) for _ in range(20)])
    for length in (8.0, 16.0, 32.0):
        fast.sketch_table(cat, length)
    assert [t.length for t in fast.cached_tables(cat)] == [16.0, 32.0]
    assert fast.sketch_table(cat, 16.0) is fast.cached_tables(cat)[-1]


def test_summaries_and_sketches_of_long_tracks_are_computed_a_bounded_run_of_steps_at_a_time() -> None:
    """Arc summaries and sketch tables were computed 65,536 (16,384) tracks at a time whatever their length,
    with float64 temporaries of about 100 bytes a step: 10,000 tracks of 20 s - 10 min (50 MB of arcs) peaked
    at 750 MB to load the catalogue and 450 MB to sketch a clip length. They are now computed a bounded run of
    steps at a time, and come out the same."""
    import itertools
    import tracemalloc

    from matching.ranking.catalog import arc_summaries

    rng = np.random.default_rng(5)
    lengths = rng.integers(40, 1200, 3000)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    va = rng.uniform(-1, 1, (int(offsets[-1]), 2)).astype(np.float32)
    hops = np.full(lengths.size, 0.5)
    tracemalloc.start()
    try:
        cat = Catalog(ids=np.arange(1, lengths.size + 1), paths=("",) * lengths.size, titles=(None,) * lengths.size,
                      durations=lengths * 0.5, hops=hops, offsets=offsets, va=va, embeddings=None)  # fmt: skip
        summaries_peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        fast.build_table(cat, 30.0)
        table_peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert summaries_peak < 4 * va.nbytes and table_peak < 4 * va.nbytes  # before: 12 and 8 times

    from matching.ranking.catalog import CHUNK_STEPS, chunks

    runs = list(chunks(offsets))
    assert runs[0][0] == 0 and runs[-1][1] == lengths.size
    assert all(b == c for (_, b), (c, _) in itertools.pairwise(runs))
    assert all(offsets[b] - offsets[a] <= CHUNK_STEPS for a, b in runs) and len(runs) > 1
    for i in sorted({0, lengths.size - 1, *(a for a, _ in runs), *(b - 1 for _, b in runs)}):  # each run's ends
        alone = arc_summaries(va[offsets[i] : offsets[i + 1]], np.array([0, lengths[i]]), hops[i : i + 1])
        assert cat.summaries[i] == pytest.approx(alone[0])


def test_threads_needing_one_table_share_one_build(monkeypatch: pytest.MonkeyPatch) -> None:
    """Threads ranking clips of one length at once (the page's) each built the same sketch table (up to 450 MB
    at the peak for 10,000 long tracks, each). One builds it; the others wait and share it."""
    import threading

    rng = np.random.default_rng(2)
    cat = Catalog.from_arcs([_arc(_walk(rng, 100)) for _ in range(30)])
    builds: list[float] = []
    second = threading.Event()
    build = fast.build_table

    def slow_build(*args, **kwargs):  # the first build waits for a second one to start alongside it
        builds.append(args[1])
        if len(builds) == 1:
            second.wait(timeout=1.0)
        else:
            second.set()
        return build(*args, **kwargs)

    monkeypatch.setattr(fast, "build_table", slow_build)
    got: list[fast.SketchTable] = []
    threads = [threading.Thread(target=lambda: got.append(fast.sketch_table(cat, 16.0))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert builds == [16.0] and not second.is_set()
    assert len(got) == 4 and all(t is got[0] for t in got)
