"""Ranking: warped copies beat decoys, sections are found, the fast path equals the exhaustive one.

The last test builds a real library from music21 corpus pieces (MIDI, and the same
MIDI rendered through FluidSynth to WAV) analysed by ``analysis.analyze_track``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from analysis.arc import EmotionArc
from analysis.errors import ParameterError
from matching.ranking.catalog import Catalog
from matching.ranking.ranker import Match, Ranking, rank
from matching.ranking.weights import MatchWeights

HOP = 0.5


def _smooth_walk(rng: np.random.Generator, n: int) -> np.ndarray:
    x = np.cumsum(rng.normal(0, 0.08, (n, 2)), axis=0)
    kernel = np.ones(5) / 5
    x = np.stack([np.convolve(x[:, c], kernel, mode="same") for c in range(2)], axis=1)
    return np.clip(x - x.mean(axis=0) + rng.uniform(-0.5, 0.5, 2), -1, 1)


def _arc(va: np.ndarray, hop: float = HOP) -> EmotionArc:
    return EmotionArc.from_va((np.arange(len(va)) + 0.5) * hop, va[:, 0], va[:, 1])


def _warp(va: np.ndarray, n: int, power: float) -> np.ndarray:
    x = np.linspace(0, 1, n) ** power * (len(va) - 1)
    return np.stack([np.interp(x, np.arange(len(va)), va[:, c]) for c in range(2)], axis=1)


@pytest.fixture(scope="module")
def library() -> tuple[Catalog, list[np.ndarray]]:
    rng = np.random.default_rng(42)
    vas = [_smooth_walk(rng, int(rng.integers(40, 160))) for _ in range(300)]
    return Catalog.from_arcs([_arc(v) for v in vas]), vas


def test_time_warped_copy_ranks_first_among_decoys(library: tuple[Catalog, list[np.ndarray]]) -> None:
    cat, vas = library
    rng = np.random.default_rng(1)
    for target in (3, 150, 299):
        source = vas[target]
        clip = _arc(_warp(source, len(source), 1.25) + rng.normal(0, 0.02, (len(source), 2)))
        hits = rank(clip, cat, k=5, fast=False)
        assert hits[0].track_id == cat.ids[target]
        assert hits[0].score > hits[1].score
        assert all(0 <= m.score <= 1 and 0 <= m.dtw_score <= 1 and 0 <= m.embedding_score <= 1 for m in hits)


def test_best_section_start_within_one_hop(library: tuple[Catalog, list[np.ndarray]]) -> None:
    cat, vas = library
    long_tracks = [i for i, v in enumerate(vas) if len(v) >= 120][:3]
    for i in long_tracks:
        start = 37
        clip = _arc(vas[i][start : start + 40])
        hits = rank(clip, cat, k=3)
        assert hits[0].track_id == cat.ids[i]
        assert abs(hits[0].start - start * HOP) <= HOP
        assert hits[0].stretch == pytest.approx(1.0, abs=0.06)
        assert hits[0].end - hits[0].start == pytest.approx(clip.duration, abs=2 * HOP)


def test_fast_path_equals_exhaustive(library: tuple[Catalog, list[np.ndarray]]) -> None:
    cat, vas = library
    rng = np.random.default_rng(7)
    for _ in range(4):
        i = int(rng.integers(0, len(vas)))
        a = int(rng.integers(0, max(1, len(vas[i]) - 30)))
        clip = _arc(_warp(vas[i][a : a + 30], 34, 1.1) + rng.normal(0, 0.03, (34, 2)))
        exhaustive = rank(clip, cat, k=10, fast=False)
        fast = rank(clip, cat, k=10, fast=True)
        assert [m.track_id for m in fast] == [m.track_id for m in exhaustive]
        assert [m.score for m in fast] == pytest.approx([m.score for m in exhaustive])


def test_ranking_is_a_list_with_verdict(library: tuple[Catalog, list[np.ndarray]]) -> None:
    cat, vas = library
    clip = _arc(vas[10][:30])
    hits = rank(clip, cat, k=4)
    assert isinstance(hits, list) and isinstance(hits, Ranking) and len(hits) == 4
    assert all(isinstance(m, Match) for m in hits)
    assert [m.score for m in hits] == sorted((m.score for m in hits), reverse=True)
    assert hits.compose_instead is False
    strict = rank(clip, cat, k=4, weights=MatchWeights(compose_threshold=0.999))
    assert strict.compose_instead is True and strict.to_dict()["compose_instead"] is True
    # A clip far from everything (extreme fast oscillation) gets the flag at default weights.
    t = np.arange(40)
    odd = _arc(np.stack([np.where(t % 2, 1.0, -1.0), np.where(t % 2, -1.0, 1.0)], axis=1))
    assert rank(odd, cat, k=3).compose_instead is True
    assert rank(clip, Catalog.from_arcs([]), k=3).compose_instead is True


def test_content_type_changes_weights(library: tuple[Catalog, list[np.ndarray]]) -> None:
    cat, vas = library
    clip = _arc(vas[5][:30])
    drama = rank(clip, cat, k=2, content_type="drama")
    assert drama.weights.valence == 1.2
    with pytest.raises(ParameterError, match="k"):
        rank(clip, cat, k=0)
    with pytest.raises(ParameterError, match="clip"):
        rank("clip.mp4", cat)


def _flat(level: tuple[float, float], seconds: float, hop: float = HOP) -> np.ndarray:
    return np.tile(np.array(level, dtype=float), (max(1, round(seconds / hop)), 1))


@pytest.mark.parametrize("fast", [True, False])
def test_coverage_scales_the_whole_blend_of_a_short_track(fast: bool) -> None:
    """A 1 s sting of the clip's very mood covered 6 % of a 20 s clip and still ranked first on its full
    embedding credit (0.297 over a 60 s track's 0.166); a 2 s sting scored >= 0.312 on any 30 s clip."""
    from matching.ranking.ranker import estimated_scores
    from matching.ranking.weights import weights_for

    tense, calm = (-0.5, 0.4), (0.4, -0.5)
    sting, long_calm, long_tense = _flat(tense, 1.0), _flat(calm, 60.0), _flat((-0.3, 0.2), 60.0)
    fillers = [_flat((x, -x), 60.0) for x in np.linspace(0.1, 0.8, 12)]  # more than k: the fast path prunes
    cat = Catalog.from_arcs([_arc(v) for v in [sting, long_calm, long_tense, *fillers]])
    clip = _arc(_flat(tense, 20.0))
    hits = rank(clip, cat, k=3, fast=fast)
    by_id = {m.track_id: m for m in rank(clip, cat, k=len(cat), fast=False)}
    short = by_id[int(cat.ids[0])]
    assert short.coverage == pytest.approx(1.25 / 20.0)
    assert short.score <= short.coverage + 1e-9  # a track covering 6 % of the clip scores 6 % at most
    assert hits[0].track_id == int(cat.ids[2]) and int(cat.ids[0]) not in [m.track_id for m in hits]
    w_dtw, w_emb = weights_for("general").blend
    for m in by_id.values():  # the page re-blends these two with an exploration draw: they must add up
        assert m.score == pytest.approx(w_dtw * m.dtw_score + w_emb * m.embedding_score)
    est = estimated_scores(cat, clip.va(), HOP, weights_for("general"), np.ones(len(cat)))
    assert est[0] <= short.coverage + 1e-9  # the sketch estimate that picks the shortlist agrees
    long_clip = _arc(_flat(tense, 3600.0, hop=2.0), hop=2.0)  # an hour
    assert all(m.score <= m.coverage + 1e-9 < 0.03 for m in rank(long_clip, cat, k=3, fast=fast))


# --------------------------------------------------------------------------- a real library
PIECES = {  # music21 corpus piece -> tempo scale (faster = more aroused)
    "bach/bwv66.6": 1.0,
    "essenFolksong/altdeu10": 1.3,
}


@pytest.fixture(scope="module")
def real_library(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pretty_midi = pytest.importorskip("pretty_midi")
    import soundfile as sf
    from music21 import corpus

    folder = tmp_path_factory.mktemp("real_music")
    for name, scale in PIECES.items():
        score = corpus.parse(name)
        if hasattr(score, "scores"):  # an opus: take its first tune
            score = score.scores[0]
        stem = name.replace("/", "_")
        mid = folder / f"{stem}.mid"
        score.write("midi", fp=str(mid))
        pm = pretty_midi.PrettyMIDI(str(mid))
        pm.adjust_times([0, pm.get_end_time()], [0, pm.get_end_time() / scale])
        for inst in pm.instruments:  # keep the test fast: the first 16 s
            inst.notes = [n for n in inst.notes if n.end <= 16.0]
        pm.write(str(mid))
        audio = pm.fluidsynth(fs=16000, synthesizer="/usr/share/sounds/sf2/FluidR3_GM.sf2")
        sf.write(str(folder / f"{stem}.wav"), audio / max(1e-9, np.abs(audio).max()) * 0.8, 16000)
    return folder


@pytest.mark.slow  # ~25 s: music21 parsing, FluidSynth rendering and four track analyses
def test_real_library_neighbours(real_library: Path, tmp_path: Path) -> None:
    from matching.library.store import Library

    lib = Library(tmp_path / "lib.db")
    report = lib.add_folder(real_library, workers=2, progress=False, tags=["corpus"])
    assert len(report.added) == 2 * len(PIECES) and not report.skipped
    assert len(lib.search("corpus")) == 2 * len(PIECES)
    # A clip whose arc is a section of one MIDI piece: that piece ranks first.
    midi = next(r for r in lib.list() if r.kind == "midi")
    arc = lib.arc(midi.id)
    clip = arc.slice(arc.duration * 0.3, arc.duration * 0.3 + arc.duration * 0.5)
    hits = rank(clip, lib, k=len(lib))
    assert hits[0].track_id == midi.id
    assert abs(hits[0].start - arc.duration * 0.3) <= arc.hop + 1e-6
    assert len({m.track_id for m in hits}) == len(lib)


def test_k_and_candidates_take_numpy_integers_but_not_bools(library: tuple[Catalog, list[np.ndarray]]) -> None:
    # A k computed with numpy (np.int64) was refused as "not a positive integer"; True passed as 1.
    cat, vas = library
    clip = _arc(vas[5][:30])
    assert [m.track_id for m in rank(clip, cat, k=np.int64(3), candidates=np.int32(5))] == [
        m.track_id for m in rank(clip, cat, k=3, candidates=5)
    ]
    assert len(rank(clip, cat, k=np.int64(len(cat) + 5))) == len(cat)  # k beyond the library: every track
    for bad in (True, 0, -2, 2.0):
        with pytest.raises(ParameterError, match=r"`k` must be a positive integer"):
            rank(clip, cat, k=bad)
    with pytest.raises(ParameterError, match=r"`candidates` must be a positive integer \(received False\)"):
        rank(clip, cat, k=2, candidates=False)


def _waves(rng: np.random.Generator, n: int, hop: float = HOP) -> np.ndarray:
    """``(n, 2)`` slow sums of sines (periods of 1-10 min): a long track's moods, inside [-1, 1]."""
    t = np.arange(n) * hop
    out = np.zeros((n, 2))
    for c in range(2):
        for period in rng.uniform(60, 600, 3):
            out[:, c] += 0.25 * np.sin(2 * np.pi * t / period + rng.uniform(0, 2 * np.pi))
    return out


def test_an_hour_long_clip_is_compared_on_a_bounded_number_of_steps(monkeypatch: pytest.MonkeyPatch) -> None:
    """A 1 h clip (7,200 steps at 0.5 s) was aligned step for step with every track, at a cost that grows with
    the square of its steps: five minutes for a 2,000-track library. It is compared on averaged steps, at most
    ``MAX_STEPS``, and the hour of a long track it was cut from is still found where it lies."""
    from matching.ranking import dtw, ranker

    rng = np.random.default_rng(11)
    vas = [_waves(rng, 9000)] + [_waves(rng, int(rng.integers(400, 2400))) for _ in range(12)]
    cat = Catalog.from_arcs([_arc(v) for v in vas])
    clip = _arc(vas[0][1000:8200] + rng.normal(0, 0.02, (7200, 2)))
    steps: list[int] = []
    align_many = dtw.align_many

    def counting(query_features: np.ndarray, *args: object, **kwargs: object) -> object:
        steps.append(query_features.shape[0])
        return align_many(query_features, *args, **kwargs)

    monkeypatch.setattr(dtw, "align_many", counting)
    for fast in (True, False):
        hits = rank(clip, cat, k=3, fast=fast)
        assert hits[0].track_id == cat.ids[0]
        assert abs(hits[0].start - 500.0) <= 10.0 and hits[0].stretch == pytest.approx(1.0, abs=0.01)
    assert steps and max(steps) < len(clip) / 10  # before: all 7,200 steps against every track
    assert max(steps) <= ranker.MAX_STEPS
    va, hop = ranker.comparison_va(clip)  # averages of runs of steps: the arc's level and span are kept
    assert va.mean(axis=0) == pytest.approx(clip.va().mean(axis=0), abs=0.01)
    assert abs(len(va) * hop - clip.duration) <= hop


def test_a_section_ends_with_its_track_not_past_it(tmp_path: Path) -> None:
    """A 12.3 s recording's arc has 25 half-second steps, the last covering 12.0-12.5 s: a clip like its end
    was told to use the section up to 12.5 s, past the track's end (a section of a 599.9 s track ended at 606 s
    for an hour-long clip). The section now ends with the track."""
    import soundfile as sf

    from matching.library.store import Library

    sr, seconds = 22050, 12.3
    t = np.arange(int(seconds * sr)) / sr
    rising = np.sin(2 * np.pi * 220 * t * (1 + t / seconds)) * np.linspace(0.05, 0.6, t.size)
    sf.write(str(tmp_path / "rise.wav"), rising, sr)
    lib = Library(tmp_path / "lib.db")
    record = lib.add(tmp_path / "rise.wav")
    assert record.duration == pytest.approx(seconds, abs=0.01)
    arc = lib.arc(record.id)
    clip = _arc(arc.va()[-12:])  # the last 6 s of its arc
    for hit in (rank(clip, lib, k=1)[0], rank(_arc(np.repeat(arc.va(), 400, axis=0)), lib, k=1)[0]):
        assert 0 <= hit.start < hit.end <= record.duration
    assert rank(clip, lib, k=1)[0].end == pytest.approx(record.duration)


@pytest.mark.parametrize("name", ["window", "transition_span", "dtw", "max_stretch", "distance_scale"])
def test_weights_refuse_an_infinite_value_naming_it(library: tuple[Catalog, list[np.ndarray]], name: str) -> None:
    """MatchWeights(window=inf) or (transition_span=inf) was taken, and ranking ended in Python's
    "cannot convert float infinity to integer"; dtw=inf scored every track NaN. Each is refused by name."""
    cat, vas = library
    with pytest.raises(ParameterError, match=rf"`{name}` must be a finite number \(received inf\)"):
        rank(_arc(vas[5][:30]), cat, k=3, weights=MatchWeights(**{name: float("inf")}))
