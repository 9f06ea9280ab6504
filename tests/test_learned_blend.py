"""One learned blend everywhere: ``soundtrack match``, ``soundtrack score``, ``batch`` and the page rank a clip
with the weights learned from the ratings logged under its content type ("general" unless chosen)."""

from __future__ import annotations

import json
import types
from pathlib import Path

import numpy as np
import pytest
from test_shards import section, walks

from composer.pipeline.batch import ClipJob, ScoreSettings, learned_weights, score_videos
from composer.pipeline.manifest import TaskResult
from matching.feedback.learner import current_weights
from matching.feedback.log import FeedbackLog
from matching.library.store import Library
from matching.ranking.ranker import rank
from matching.ranking.weights import weights_for


def _library(db: Path, n: int = 12) -> tuple[Library, list]:
    arcs = walks(n, seed=3)
    lib = Library(db)
    for i, arc in enumerate(arcs):
        analysis = types.SimpleNamespace(arc=arc, duration=arc.duration, kind="audio", embedding=np.zeros(4))
        lib.store(db.parent / f"t{i}.wav", analysis, checksum=f"{i:064x}")
    return lib, arcs


def _rate_embedding_fan(db: Path, n: int = 15) -> None:
    """Lists rated on the page (logged under "general"): 5 stars to a strong embedding match, 1 to an arc fit."""
    log = FeedbackLog(db)
    for i in range(n):  # two listeners: one alone does not move everyone's blend (LearnerConfig.min_users)
        rec = log.log_recommendation(user_id=f"fan{i % 2}", clip_fingerprint="clip", candidates=[
            {"score": 0.5, "dtw_score": 0.9, "embedding_score": 0.1},
            {"score": 0.5, "dtw_score": 0.1, "embedding_score": 0.9},
        ])  # fmt: skip
        log.rate(rec, 0, 1)
        log.rate(rec, 1, 5)
    log.engine.dispose()


@pytest.fixture()
def rated(tmp_path: Path) -> tuple[Library, list]:
    lib, arcs = _library(tmp_path / "lib.db")
    _rate_embedding_fan(tmp_path / "lib.db")
    learned = current_weights("general", db=lib)
    assert learned.blend[0] < weights_for("general").blend[0] - 0.05  # the ratings moved the blend
    return lib, arcs


def test_match_ranks_with_the_blend_learned_under_general_by_default(rated, tmp_path: Path, capsys,
                                                                       monkeypatch) -> None:
    """`match` defaulted to no content type, so it never read the ratings the page logs under "general"."""
    import analysis.video
    from soundtrack.cli import main

    lib, arcs = rated
    clip = types.SimpleNamespace(arc=section(arcs[4], 2, 30), duration=15.0, warnings=())
    seen: dict[str, object] = {}

    def fake_analysis(path, **kwargs):
        seen.update(kwargs)
        return clip

    monkeypatch.setattr(analysis.video, "analyze_video", fake_analysis)
    clip_file = tmp_path / "clip.mp4"
    clip_file.write_bytes(b"not decoded")
    assert main(["match", str(clip_file), "--library", lib.url, "--json", "-k", "3"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["weights"] == current_weights("general", db=lib).to_dict()
    assert seen.get("content_type", "general") == "general"
    same = rank(clip, lib, k=3, weights=current_weights("general", db=lib))  # as `score` and the page rank
    assert [m["score"] for m in shown["matches"]] == [round(m.score, 4) for m in same]


def weights_task(job: ClipJob, settings: ScoreSettings) -> TaskResult:
    """Records the blend the default task would rank with."""
    w = settings.match_weights()
    return TaskResult(result={"chosen": "probe", "choice": Path(job.path).stem,
                              "w_dtw": None if w is None else w.blend[0]})


def test_batch_ranks_with_the_learned_blend_and_a_resume_keeps_what_it_finished(tmp_path: Path) -> None:
    from mediagen import Shot, make_clip

    db = tmp_path / "lib.db"
    lib, _ = _library(db)
    lib.engine.dispose()
    (tmp_path / "clips").mkdir()
    for name, grey in (("a", 90), ("b", 160)):  # other bytes: not one clip twice
        make_clip(tmp_path / "clips" / f"{name}.mp4", shots=[Shot(10, (grey,) * 3)], fps=10, size=(64, 48))
    kwargs = dict(library=db, out_dir=tmp_path / "out", workers=0, progress=False, task=weights_task)
    before = score_videos(tmp_path / "clips" / "a.mp4", **kwargs)
    assert before.records[0].result["w_dtw"] is None  # no ratings: the preset
    _rate_embedding_fan(db)
    learned = current_weights("general", db=db)
    assert learned_weights(str(db), "general") == tuple(sorted(learned.to_dict().items()))
    after = score_videos(tmp_path / "clips", **kwargs)  # ratings arrived meanwhile: resumed, not redone
    assert (after.ran, after.skipped) == (1, 1)
    done = {Path(r.input).stem: r.result["w_dtw"] for r in after.records if r.result}
    assert done["b"] == pytest.approx(learned.blend[0])  # the clip still to do ranks with the learned blend


def test_the_batch_reads_the_weights_without_writing_the_library(tmp_path: Path) -> None:
    db = tmp_path / "lib.db"
    Library(db).engine.dispose()  # no feedback tables yet
    before = db.read_bytes()
    assert learned_weights(str(db), "drama") is None
    assert db.read_bytes() == before
