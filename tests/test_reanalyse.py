"""Tracks analysed by another music reader are found and analysed again in place (Library.stale/reanalyse)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import sqlalchemy as sa
from test_library import _write_tone, loudness_analyzer

from analysis.music.audio import reader_stamp
from matching.library.store import Library, track_readers
from matching.ranking.index import sync_index


def louder_analyzer(path: Path, *, hop: float = 0.5):
    """The stand-in analyser as a 'new reader' would: every arousal value 0.3 higher."""
    t = loudness_analyzer(path, hop=hop)
    arc = type(t.arc).from_va(t.arc.times, t.arc.valence, np.clip(t.arc.arousal + 0.3, -1, 1))
    return type(t)(t.path, t.kind, t.duration, arc, 120.0, t.key, t.mode, t.loudness, t.embedding * 2)


def _library(where: Path | str, analyzer=loudness_analyzer) -> Library:
    """A library in ``where``: a folder (SQLite file inside) or a database URL."""
    return Library(where / "lib.db" if isinstance(where, Path) else where, analyzer=analyzer)


def _age(lib: Library, reader: str = "features v0, weights old") -> None:
    with lib.engine.begin() as conn:
        conn.execute(sa.update(track_readers).values(reader=reader))


def test_new_tracks_carry_the_current_reader_and_old_ones_are_stale(tmp_path):
    music = tmp_path / "m"
    music.mkdir()
    for i, f in enumerate((220, 330, 440)):
        _write_tone(music / f"t{i}.wav", f, 0.1, 0.4)
    lib = _library(tmp_path)
    lib.add_folder(music, workers=0, progress=False)
    assert lib.stale() == []
    with lib.engine.connect() as conn:
        assert {r for (r,) in conn.execute(sa.select(track_readers.c.reader))} == {reader_stamp()}
    _age(lib)
    assert [r.title for r in lib.stale()] == ["t0", "t1", "t2"]
    with lib.engine.begin() as conn:  # a library from before readers were recorded has no rows at all
        conn.execute(track_readers.delete())
    assert len(lib.stale()) == 3
    done, _ = lib.reanalyse()  # analysed again, such a library records its reader
    assert len(done) == 3 and lib.stale() == []
    with lib.engine.connect() as conn:
        assert sorted(conn.execute(sa.select(track_readers.c.revision))) == [(1,), (1,), (1,)]


def test_reanalyse_keeps_ids_titles_and_tags_and_refreshes_every_cache(tmp_path, db_url):
    music = tmp_path / "m"
    music.mkdir()
    _write_tone(music / "rise.wav", 220, 0.05, 0.5)
    _write_tone(music / "fall.wav", 440, 0.5, 0.05)
    old = _library(db_url)
    old.add_folder(music, workers=0, progress=False, tags=["calm"])
    before = old.list()
    arousal = {r.id: old.arc(r.id).arousal for r in before}
    index = sync_index(old, tmp_path / "idx")
    cat = old.catalog()
    _age(old)

    new = _library(db_url, analyzer=louder_analyzer)  # the upgraded process
    seen: list[tuple[int, int]] = []
    done, skipped = new.reanalyse(progress=lambda i, n, title: seen.append((i, n)))
    assert skipped == [] and seen == [(1, 2), (2, 2)]
    assert [(r.id, r.title, r.tags) for r in new.list()] == [(r.id, r.title, r.tags) for r in before]
    assert [r.tempo for r in done] == [120.0, 120.0] and new.stale() == []
    for rec in before:
        np.testing.assert_allclose(old.arc(rec.id).arousal, np.clip(arousal[rec.id] + 0.3, -1, 1), atol=1e-6)
    assert old.catalog() is not cat  # another Library on the same database sees the new arcs
    np.testing.assert_allclose(old.catalog().embeddings, cat.embeddings * 2, atol=1e-6)
    rebuilt = sync_index(old, tmp_path / "idx")
    assert rebuilt.meta["revisions"] == 2 and index.meta.get("revisions", 0) == 0


def test_a_missing_file_keeps_its_old_analysis(tmp_path):
    music = tmp_path / "m"
    music.mkdir()
    gone = _write_tone(music / "gone.wav", 220, 0.1, 0.3)
    _write_tone(music / "here.wav", 330, 0.1, 0.3)
    lib = _library(tmp_path)
    lib.add_folder(music, workers=0, progress=False)
    arc = lib.arc(lib.list()[0].id).arousal
    gone.unlink()
    _age(lib)
    done, skipped = _library(tmp_path, analyzer=louder_analyzer).reanalyse()
    assert [r.title for r in done] == ["here"] and [Path(s.path).name for s in skipped] == ["gone.wav"]
    np.testing.assert_allclose(lib.arc(lib.list()[0].id).arousal, arc)
    assert [r.title for r in lib.stale()] == ["gone"]  # still stale: it is found again next time


def test_the_cli_names_stale_tracks_and_reanalyses_them(tmp_path, capsys):
    import json

    from soundtrack.cli import main

    music, db = tmp_path / "music", str(tmp_path / "lib.db")
    music.mkdir()
    _write_tone(music / "a.wav", 220, 0.05, 0.5)
    _write_tone(music / "b.wav", 330, 0.5, 0.05)
    args = ["index", str(music), "--library", db, "--workers", "0", "--no-progress", "--json"]
    assert main(args) == 0
    ids = [r.id for r in Library(db).list()]
    _age(Library(db))
    capsys.readouterr()
    assert main(args[:-1]) == 0
    assert "an earlier music reader analysed 2 tracks" in capsys.readouterr().err
    assert main([*args, "--reanalyse"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["reanalysed"] == 2 and out["stale"] == 0 and out["added"] == [] and out["kept"] == []
    assert [r.id for r in Library(db).list()] == ids and Library(db).stale() == []
    (music / "a.wav").unlink()  # a file that is gone keeps its old analysis, and the command says so
    _age(Library(db))
    assert main([*args[:-1], "--reanalyse"]) == 0
    captured = capsys.readouterr()
    assert "kept the old analysis of" in captured.out and "a.wav" in captured.out
    assert "an earlier music reader's analysis stays on 1 track that" in captured.err


def test_a_new_cue_version_or_new_weights_make_tracks_stale(tmp_path, monkeypatch):
    from analysis.music import audio, emotion

    music = tmp_path / "m"
    music.mkdir()
    _write_tone(music / "t.wav", 220, 0.1, 0.4)
    lib = _library(tmp_path)
    lib.add_folder(music, workers=0, progress=False)
    assert lib.stale() == []
    monkeypatch.setattr(audio, "CUES_VERSION", audio.CUES_VERSION + 1)
    assert [r.title for r in lib.stale()] == ["t"]
    monkeypatch.undo()
    other = tmp_path / "other.npz"
    other.write_bytes(emotion.CHECKPOINT.read_bytes() + b"\0")  # other weights, same features
    monkeypatch.setattr(emotion, "CHECKPOINT", other)
    assert [r.title for r in lib.stale()] == ["t"]
