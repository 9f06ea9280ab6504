"""The bench scripts that write synthetic media load ``tests/mediagen.py`` through one helper,
``bench/_shared.py``, and still load as a test loads them: by file location, with bench/ first on the path."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import av
import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"
# Every bench script that calls a mediagen loader.
USERS = sorted(p for p in BENCH.glob("*.py") if p.name != "_shared.py" and "mediagen()" in p.read_text())


def _load_script(path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.syspath_prepend(str(BENCH))
    for name in ("_shared", "mediagen"):  # put back afterwards: the other tests share conftest's mediagen
        monkeypatch.delitem(sys.modules, name, raising=False)
    spec = importlib.util.spec_from_file_location(f"_bench_{path.stem}", path)
    mod = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, mod)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("script", USERS, ids=lambda p: p.name)
def test_bench_script_writes_clips_with_the_shared_mediagen(script, monkeypatch, tmp_path):
    mod = _load_script(script, monkeypatch)
    shared = sys.modules.get("_shared")
    assert shared is not None, f"{script.name} does not use bench/_shared.py"
    assert mod.mediagen is shared.mediagen  # no copy of the loader of its own
    mg = mod.mediagen()
    shots = [mg.Shot(6, (200, 60, 50)), mg.Shot(4, (40, 90, 180))]
    clip = mg.make_clip(tmp_path / "two_shots.mp4", shots=shots, fps=10, size=(64, 48))
    with av.open(str(clip)) as c:
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(c.streams.video[0])]
    assert len(frames) == 10
    assert mg.cut_frames(shots) == [6]
    assert frames[5][..., 0].mean() > frames[6][..., 0].mean() + 80  # red shot, then blue: the cut at frame 6


def test_bench_batch_makes_clips_without_tests_on_the_path(monkeypatch, tmp_path):
    """``bench_batch.make_clips`` used to import mediagen from ``tests/``, which only ``main()`` put on
    ``sys.path``: called from elsewhere it raised ModuleNotFoundError."""
    tests = Path(__file__).resolve().parent
    # bench/ first, before sys.path is swapped: monkeypatch saves the path at its first prepend and writes that
    # back into sys.path when it undoes, so a save taken after the swap left every later test without tests/
    # (Dask workers spawned later could not import the tests' task functions)
    monkeypatch.syspath_prepend(str(BENCH))
    monkeypatch.setattr(sys, "path", [p for p in sys.path if Path(p or ".").resolve() != tests])
    mod = _load_script(BENCH / "bench_batch.py", monkeypatch)
    clips = mod.make_clips(tmp_path, 2, 0.4)
    assert [c.name for c in clips] == ["clip00.mp4", "clip01.mp4"]
    for clip in clips:
        with av.open(str(clip)) as c:
            assert sum(1 for _ in c.decode(c.streams.video[0])) == 10  # 0.4 s at 25 fps
            assert len(c.streams.audio) == 1  # drone, then percussion


def test_matching_bench_scores_every_track_as_rank_does(monkeypatch):
    """The matching bench's exhaustive scores, the truth its recall@10 is measured against, left the embedding part
    of a track shorter than the clip unscaled by the share it covers (rank scales both parts): on its 2,000-track
    library a short track entered the "exact" top 10 that rank(fast=False) rightly left out, and the bench stopped
    with "exact_scores disagrees with rank(fast=False)". They now equal rank's scores, a long clip's too."""
    import numpy as np

    from analysis.arc import EmotionArc
    from matching.ranking.catalog import Catalog
    from matching.ranking.ranker import rank

    bench = _load_script(BENCH / "bench_matching.py", monkeypatch)
    rng = np.random.default_rng(3)
    arcs = [EmotionArc.from_va((np.arange(m) + 0.5) * 0.5, *rng.uniform(-0.6, 0.6, (2, 1)) + 0.1 * np.sin(
        np.arange(m)[None, :] / rng.uniform(3, 30, (2, 1)))) for m in rng.integers(8, 1500, 40)]  # 4 s to 12 min
    cat = Catalog.from_arcs(arcs)
    for clip in (arcs[5].slice(0.0, 30.0), EmotionArc.constant(60.0, 0.2, -0.1), EmotionArc.constant(900.0, 0.0, 0.3)):
        exact = bench.exact_scores(cat, clip)
        ranked = rank(clip, cat, k=len(cat), fast=False)
        assert {m.track_id: m.score for m in ranked} == pytest.approx(dict(zip(cat.ids.tolist(), exact, strict=True)))
