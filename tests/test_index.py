"""The persistent sketch index: same rankings as in memory, survives reopening, grows by appending."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from test_shards import section, walks

from analysis.errors import ParameterError
from matching.library.store import Library
from matching.ranking import sketches
from matching.ranking.catalog import Catalog
from matching.ranking.index import SketchIndex, append_tracks, create_index, sync_index
from matching.ranking.ranker import rank
from matching.ranking.weights import MatchWeights


@pytest.fixture(scope="module")
def arcs():
    return walks(600, seed=5)


def queries(arcs):
    return [section(arcs[11], 3, 18), section(arcs[420], 10, 40), walks(1, seed=77)[0]]


def test_index_ranks_like_the_catalogue_and_survives_reopening(arcs, tmp_path: Path) -> None:
    cat = Catalog.from_arcs(arcs)
    create_index(tmp_path / "idx", cat)
    index = SketchIndex(tmp_path / "idx")  # a fresh process would do just this
    assert len(index) == 600 and index.lengths() == []
    assert np.array_equal(index.catalog.va, cat.va) and index.catalog.paths == cat.paths
    assert np.allclose(index.catalog.summaries, cat.summaries)
    for clip in queries(arcs):
        one, two = rank(clip, cat, k=10), rank(clip, index, k=10)
        assert [m.track_id for m in two] == [m.track_id for m in one]
        assert [m.score for m in two] == [m.score for m in one]
    built = index.lengths()
    assert built and all(isinstance(b, np.memmap) for x in built for b in index.table(x).blocks)
    again = SketchIndex(tmp_path / "idx")
    assert again.lengths() == built  # stored, not rebuilt
    table = again.table(built[0])
    fresh = sketches.build_table(cat, built[0])
    assert np.array_equal(table.values(), fresh.values())
    assert np.array_equal(table.first_row, fresh.first_row)


def test_appending_tracks_equals_indexing_them_all(arcs, tmp_path: Path) -> None:
    cat = Catalog.from_arcs(arcs)
    first = cat.subset(np.arange(400))
    create_index(tmp_path / "idx", first, lengths=[9.513656920021768, 32.0])
    grown = append_tracks(tmp_path / "idx", cat.subset(np.arange(400, 600)))
    assert len(grown) == 600 and np.array_equal(grown.catalog.ids, cat.ids)
    for length in (9.513656920021768, 32.0):
        table, full = grown.table(length), sketches.build_table(cat, length)
        assert len(table.blocks) == 2  # one block per append
        # Prefix sums start apart: a sketch may round to the neighbouring byte.
        assert np.allclose(table.values(), full.values(), atol=1.01 / sketches.QUANT)
        assert np.mean(table.values() == full.values()) > 0.99
        assert np.array_equal(table.first_row, full.first_row)
    with pytest.raises(Exception, match="must exceed the last indexed id 600"):
        append_tracks(tmp_path / "idx", cat.subset(np.arange(3)))


def test_a_query_gives_the_pages_of_a_large_table_back(arcs, tmp_path: Path, monkeypatch) -> None:
    cat = Catalog.from_arcs(arcs)
    index = create_index(tmp_path / "idx", cat)
    clip = queries(arcs)[1]
    w = MatchWeights()
    expected = sketches.estimate(cat, clip.va(), hop=1.0, weights=w).distance
    released = []
    monkeypatch.setattr(sketches, "RESIDENT_LIMIT", 0)
    monkeypatch.setattr(sketches, "release_block", lambda block: released.append(block.shape))
    got = sketches.estimate(index.catalog, clip.va(), hop=1.0, weights=w).distance
    assert np.array_equal(got, expected)
    assert len(released) == len(index.lengths()) and all(shape[0] == 2 * sketches.POINTS for shape in released)


@dataclass(frozen=True)
class Stored:
    arc: object
    duration: float
    kind: str = "audio"


def test_sync_follows_the_library(arcs, db_url: str, tmp_path: Path) -> None:
    lib = Library(db_url)

    def add(i: int) -> None:
        lib.store(tmp_path / f"t{i}.wav", Stored(arcs[i], arcs[i].duration), checksum=f"{i:064x}")

    for i in range(50):
        add(i)
    index = sync_index(lib, tmp_path / "idx", lengths=[16.0])
    assert len(index) == 50 and index.lengths() == [16.0]
    for i in range(50, 80):
        add(i)
    index = sync_index(lib, tmp_path / "idx")
    assert len(index) == 80 and index.meta["tables"][next(iter(index.meta["tables"]))]["tracks"] == 80
    clip = section(arcs[65], 0, 20)
    assert [m.track_id for m in rank(clip, index)] == [m.track_id for m in rank(clip, lib)]
    lib.remove(index.catalog.ids[3])
    index = sync_index(lib, tmp_path / "idx")
    assert len(index) == 79 and int(index.catalog.ids[3]) == 5
    assert [m.track_id for m in rank(clip, index)] == [m.track_id for m in rank(clip, lib)]


def test_sync_follows_a_moved_file(arcs, tmp_path: Path) -> None:
    """A move (found again by its bytes) changes no count, id sum or revision: the index kept the old path."""
    import json

    lib = Library(tmp_path / "lib.db")
    for i in range(30):
        lib.store(tmp_path / f"t{i}.wav", Stored(arcs[i], arcs[i].duration), checksum=f"{i:064x}")
    index = sync_index(lib, tmp_path / "idx", lengths=[16.0])
    moved = int(index.catalog.ids[7])
    lib.relocate(moved, tmp_path / "moved" / "t7_new.wav")
    other = Library(tmp_path / "lib.db")  # the process that matches next
    index = sync_index(other, tmp_path / "idx")
    want = str((tmp_path / "moved" / "t7_new.wav").resolve())
    assert index.catalog.paths[7] == want and index.lengths() == [16.0]  # names re-read, sketches kept
    clip = section(arcs[7], 0, 20)
    assert rank(clip, index, k=1)[0].path == want == rank(clip, other, k=1)[0].path
    meta = json.loads((index.folder / "index.json").read_text())
    del meta["moves"]  # an index built before moves were counted may hold a stale path: read them once
    (index.folder / "index.json").write_text(json.dumps(meta))
    (index.folder / "names.jsonl").write_text("".join(json.dumps(["/stale", None]) + "\n" for _ in range(30)))
    assert sync_index(other, tmp_path / "idx").catalog.paths[7] == want


def test_the_cli_keeps_the_index_up_to_date_and_matches_with_it(tmp_path: Path, bright_clip, capsys) -> None:
    """`soundtrack index --sketch-index` builds it, a later `index` appends to it, `match` ranks with it."""
    import json

    from test_app import write_midi

    from soundtrack.cli import main

    music, db = tmp_path / "music", str(tmp_path / "lib.db")
    music.mkdir()
    for i, (pitches, tempo) in enumerate([([60, 64, 67], 90), ([57, 60, 64], 70), ([62, 66, 69], 140)]):
        write_midi(music / f"t{i}.mid", pitches=pitches, tempo=tempo, velocity=60 + 20 * i, program=0)
    assert main(["index", str(music), "--library", db, "--workers", "0", "--no-progress", "--sketch-index"]) == 0
    assert len(SketchIndex(tmp_path / "lib.db.index")) == 3
    write_midi(music / "t3.mid", pitches=[55, 59, 62], tempo=120, velocity=100, program=0)
    assert main(["index", str(music), "--library", db, "--workers", "0", "--no-progress"]) == 0  # no flag: kept up
    index = SketchIndex(tmp_path / "lib.db.index")
    assert len(index) == 4 and sorted(index.catalog.paths) == sorted(r.path for r in Library(db).list())
    capsys.readouterr()
    assert main(["match", str(bright_clip.path), "--library", db, "--sources", "visual,audio", "--json"]) == 0
    via_index = json.loads(capsys.readouterr().out)["matches"]
    assert main(["match", str(bright_clip.path), "--library", db, "--sources", "visual,audio", "--json",
                 "--exhaustive"]) == 0  # fmt: skip
    exact = json.loads(capsys.readouterr().out)["matches"]
    assert [m["track_id"] for m in via_index] == [m["track_id"] for m in exact] and len(exact) == 4


def test_an_index_of_an_older_format_is_rebuilt(arcs, db_url: str, tmp_path: Path) -> None:
    import json

    lib = Library(db_url)
    for i in range(20):
        lib.store(tmp_path / f"t{i}.wav", Stored(arcs[i], arcs[i].duration), checksum=f"{i:064x}")
    index = sync_index(lib, tmp_path / "idx", lengths=[16.0])
    meta = json.loads((index.folder / "index.json").read_text())
    (index.folder / "index.json").write_text(json.dumps({**meta, "format": 1}))
    with pytest.raises(ParameterError, match="format 1"):
        SketchIndex(index.folder)
    again = sync_index(lib, tmp_path / "idx")
    assert again.meta["format"] == 2 and len(again) == 20 and again.lengths() == []


def test_an_index_is_never_made_in_a_folder_of_other_files(arcs, db_url: str, tmp_path: Path) -> None:
    """`soundtrack match clip.mp4 --sketch-index music` deleted every file in music/ (a new index empties its
    folder), and `--sketch-index song.wav` said only "File exists". Both are refused, nothing removed."""
    lib = Library(db_url)
    for i in range(5):
        lib.store(tmp_path / f"t{i}.wav", Stored(arcs[i], arcs[i].duration), checksum=f"{i:064x}")
    music = tmp_path / "music"
    music.mkdir()
    song = music / "song.wav"
    song.write_bytes(b"RIFF" + bytes(100))
    with pytest.raises(ParameterError, match=r"holds files that are not the index's \(such as 'song.wav'\)"):
        sync_index(lib, music)
    with pytest.raises(ParameterError, match="needs a folder"):
        sync_index(lib, song)
    assert sorted(p.name for p in music.iterdir()) == ["song.wav"] and song.stat().st_size == 104
    index = sync_index(lib, tmp_path / "idx", lengths=[16.0])  # its own folder: rebuilt in place as before
    meta = json.loads((index.folder / "index.json").read_text())
    (index.folder / "index.json").write_text(json.dumps({**meta, "format": 1}))
    assert len(sync_index(lib, tmp_path / "idx")) == 5


def test_an_index_on_read_only_media_ranks_with_a_table_it_lacks(arcs, tmp_path: Path, monkeypatch) -> None:
    """A library and its index copied to a read-only mount (batch workers): `soundtrack match` with a clip
    whose window lengths the index had no table for stopped with "<index>/.lock: Read-only file system"
    (simulated: tests run as root). The table is built in memory instead; nothing is written."""
    import errno
    import os

    from matching.ranking import index as index_module

    lib = Library(tmp_path / "lib.db")
    for i in range(60):
        lib.store(tmp_path / f"t{i}.wav", Stored(arcs[i], arcs[i].duration), checksum=f"{i:064x}")
    sync_index(lib, tmp_path / "idx", lengths=[16.0])
    before = sorted(os.listdir(tmp_path / "idx"))

    def read_only_mount(folder: Path) -> None:
        raise OSError(errno.EROFS, "Read-only file system", str(folder / ".lock"))

    monkeypatch.setattr(index_module, "writable", lambda path: not Path(path).is_relative_to(tmp_path / "idx"),
                        raising=False)
    monkeypatch.setattr(index_module, "_locked", read_only_mount)
    index = sync_index(lib, tmp_path / "idx")  # up to date: only read
    clip = section(arcs[30], 5, 45)
    assert not set(sketches.lengths_for(clip.duration, MatchWeights().max_stretch)) <= set(index.lengths())
    assert [m.track_id for m in rank(clip, index)] == [m.track_id for m in rank(clip, lib)]
    assert [m.track_id for m in rank(clip, index)] == [m.track_id for m in rank(clip, lib)]  # its memory copy
    assert sorted(os.listdir(tmp_path / "idx")) == before
