"""A persistent sketch index beside the catalogue: memory-mapped arrays that survive restarts.

Without it every process loads the whole library from the database and builds the
sketch tables (:mod:`matching.ranking.sketches`) of each clip length it meets, in memory.
The index keeps both on disk, in a folder (``library.db.index/`` beside an SQLite
library by default):

- ``index.json``: format, sizes, which tracks are in (count, last id, id sum, and the
  library's revisions and moves: its stamp) and which tables exist;
- the catalogue as raw little-endian arrays (``ids``, ``offsets``, ``durations``,
  ``hops``, ``va``, ``summaries``, ``embeddings``) and ``names.jsonl`` (path and title);
- one table per window length: blocks of ``(2P, n)`` int8 columns (windows sorted by
  track; a block per append) and each track's first window.

Opening maps the arrays (nothing is read until used; a million tracks open in about a
second, ``bench/bench_matching.py`` prints it), so a restart costs no rebuild. A
table missing when a query needs it is built once and stored (in the querying process's memory only,
when the folder cannot be written: a read-only mount). Adding tracks appends
their rows to every array file and a block of windows to every table file; only a
removal rebuilds. An index of an older format is rebuilt by :func:`sync_index`. Writers
take a lock file; readers see the tracks that ``index.json`` counted when they opened.

Per-query memory: the query reads each table block by block and gives the pages of a
large table back after each block (:func:`matching.ranking.sketches.release_block`).
"""

from __future__ import annotations

import fcntl
import json
import os
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from analysis.errors import ParameterError
from matching.db import writable
from matching.ranking import sketches
from matching.ranking.catalog import Catalog

FORMAT = 2  # 2: int8 six-bin sketches (1 held float32 twelve-bin ones)
_ARRAYS = {  # name: (dtype, columns or 0 for a vector)
    "ids": ("<i8", 0), "durations": ("<f8", 0), "hops": ("<f8", 0), "va": ("<f4", 2), "summaries": ("<f8", 8),
}  # fmt: skip


def default_folder(library: str | Path) -> Path:
    """``<file>.index`` beside an SQLite library; a server URL needs a folder of its own."""
    text = str(library)
    if "://" in text:
        raise ParameterError(f"`folder` is required for an index of a database server (received {text!r})")
    return Path(text).expanduser().with_name(Path(text).name + ".index")


#: The files an index folder holds (its arrays, tables and their temporary files): the only ones
#: :func:`create_index` removes.
_OWN_FILE = re.compile(r"(?:index\.json|offsets|embeddings|names\.jsonl|" + "|".join(_ARRAYS)
                       + r"|L[0-9.]+-P\d+-S[0-9.e+-]+\.(?:rows|first))(?:\.\d+\.tmp)?|\.lock")


def _own_files(folder: Path) -> list[Path]:
    """The index's files in ``folder``; a :class:`ParameterError` when it is a file or holds other files (a
    music folder named by mistake, say), which replacing the index there would delete."""
    if folder.exists() and not folder.is_dir():
        raise ParameterError(f"the sketch index needs a folder (received the file {str(folder)!r})")
    files = [p for p in folder.iterdir() if not p.is_dir()] if folder.is_dir() else []
    other = sorted(p.name for p in files if not _OWN_FILE.fullmatch(p.name))
    if other:
        raise ParameterError(f"the sketch index folder {str(folder)!r} holds files that are not the index's "
                             f"(such as {other[0]!r}): give the index a folder of its own")
    return files


def _table_name(length: float, points: int, stride: float) -> str:
    return f"L{length:.6f}-P{points}-S{stride:g}"


class SketchIndex:
    """An open index folder (see the module docstring); :attr:`catalog` ranks with its tables."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        meta_path = self.folder / "index.json"
        if not meta_path.is_file():
            raise ParameterError(f"`folder` holds no sketch index (received {str(folder)!r})")
        self.meta: dict[str, Any] = json.loads(meta_path.read_text())
        if self.meta.get("format") != FORMAT:
            raise ParameterError(f"`folder` holds an index of format {self.meta.get('format')!r}, not {FORMAT}")
        self._tables: dict[str, sketches.SketchTable] = {}
        self.catalog = self._open_catalog()
        sketches._indexes[self.catalog] = self

    def __len__(self) -> int:
        return int(self.meta["tracks"])

    # ------------------------------------------------------------------ reading
    def _map(self, name: str, dtype: str, shape: tuple[int, ...]) -> np.ndarray:
        if int(np.prod(shape)) == 0:
            return np.zeros(shape, dtype=dtype)
        return np.memmap(self.folder / name, dtype=dtype, mode="r", shape=shape)

    def _open_catalog(self) -> Catalog:
        n, total, dim = len(self), int(self.meta["steps"]), int(self.meta["embedding_dim"])
        arr = {k: self._map(k, dt, (n if k != "va" else total, c) if c else (n,)) for k, (dt, c) in _ARRAYS.items()}
        lines = (self.folder / "names.jsonl").read_text(encoding="utf-8").splitlines()[:n]
        names = json.loads("[" + ",".join(lines) + "]")  # one parse: a million lines in about a second
        return Catalog(
            ids=arr["ids"], paths=tuple(p for p, _ in names), titles=tuple(t for _, t in names),
            durations=arr["durations"], hops=arr["hops"], offsets=self._map("offsets", "<i8", (n + 1,)),
            va=arr["va"], embeddings=self._map("embeddings", "<f4", (n, dim)) if dim else None,
            summaries=arr["summaries"],
        )  # fmt: skip

    def table(self, length: float, *, points: int = sketches.POINTS, stride: float = sketches.STRIDE):
        """The memory-mapped table of ``length`` seconds, built and stored first if missing."""
        name = _table_name(length, points, stride)
        if name in self._tables:
            return self._tables[name]
        info = self.meta["tables"].get(name)
        if (info is None or info["tracks"] < len(self)) and not writable(self.folder / "index.json"):
            # A read-only mount (batch workers, a copied catalogue): built in memory for this process, as a
            # library without an index does; it tried to take the lock and stopped on "Read-only file system".
            table = sketches.build_table(self.catalog, length, points=points, stride=stride)
            self._tables[name] = table
            return table
        if info is None or info["tracks"] < len(self):
            with _locked(self.folder):
                self._reload_meta()
                info = self.meta["tables"].get(name)
                if info is None or info["tracks"] < len(self):
                    info = _extend_table(self.folder, self.catalog, name, length, points, stride, info)
                    self.meta["tables"][name] = info
                    _write_meta(self.folder, self.meta)
        n = len(self)
        first_all = np.asarray(self._map(name + ".first", "<i8", (int(info["tracks"]),)))
        end = int(first_all[n]) if int(info["tracks"]) > n else int(info["rows"])  # tracks added since we opened
        blocks, start = [], 0
        for size in info["blocks"]:
            if start >= end:
                break
            block = np.memmap(self.folder / (name + ".rows"), dtype="i1", mode="r", offset=2 * points * start,
                              shape=(2 * points, size))  # fmt: skip
            blocks.append(block if start + size <= end else block[:, : end - start])
            start += size
        table = sketches.SketchTable(length=float(length), points=points, stride=float(stride), blocks=tuple(blocks),
                                     first_row=first_all[:n])  # fmt: skip
        self._tables[name] = table
        return table

    def _reload_meta(self) -> None:
        fresh = json.loads((self.folder / "index.json").read_text())
        self.meta["tables"] = fresh["tables"]

    def lengths(self) -> list[float]:
        """Window lengths (seconds) with a stored table."""
        return sorted(float(v["length"]) for v in self.meta["tables"].values())

    def nbytes_on_disk(self) -> int:
        return sum(p.stat().st_size for p in self.folder.iterdir() if p.is_file())


@contextmanager
def _locked(folder: Path) -> Iterator[None]:
    with (folder / ".lock").open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _write_meta(folder: Path, meta: dict[str, Any]) -> None:
    tmp = folder / f"index.json.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(meta, indent=1))
    os.replace(tmp, folder / "index.json")


def _append(path: Path, array: np.ndarray, dtype: str) -> None:
    with path.open("ab") as fh:
        fh.write(np.ascontiguousarray(array, dtype=dtype).tobytes())


def _extend_table(
    folder: Path, catalog: Catalog, name: str, length: float, points: int, stride: float, info: dict | None
) -> dict[str, Any]:
    """Append the rows of the tracks a table lacks (all of them for a new table) to its files."""
    done = 0 if info is None else int(info["tracks"])
    rows_before = 0 if info is None else int(info["rows"])
    blocks = [] if info is None else list(info["blocks"])
    if info is None:
        for suffix in (".rows", ".first"):
            (folder / (name + suffix)).unlink(missing_ok=True)
    step = 16384  # tracks per piece: bounds the temporary rows
    for lo in range(done, len(catalog), step):
        part = catalog.subset(np.arange(lo, min(len(catalog), lo + step)))
        first = sketches.table_layout(part, length, stride)
        _append(folder / (name + ".rows"), sketches.sketch_columns(part, length, points, stride, first), "i1")
        _append(folder / (name + ".first"), first[:-1] + rows_before, "<i8")
        rows_before += int(first[-1])
        blocks.append(int(first[-1]))
    return {"length": float(length), "points": points, "stride": float(stride), "rows": rows_before,
            "tracks": len(catalog), "blocks": blocks}  # fmt: skip


def _append_catalog(folder: Path, meta: dict[str, Any], new: Catalog) -> None:
    """Append ``new``'s tracks to the catalogue files (data first, ``index.json`` last)."""
    for key, (dtype, _cols) in _ARRAYS.items():
        _append(folder / key, getattr(new, key), dtype)
    _append(folder / "offsets", np.asarray(new.offsets[1:]) + int(meta["steps"]), "<i8")
    dim = int(meta["embedding_dim"])
    if dim and (new.embeddings is None or new.embeddings.shape[1] != dim):
        raise ParameterError(f"new tracks' embeddings must have {dim} dimensions like the indexed ones")
    if dim:
        _append(folder / "embeddings", new.embeddings, "<f4")
    with (folder / "names.jsonl").open("a", encoding="utf-8") as fh:
        fh.writelines(json.dumps([p, t]) + "\n" for p, t in zip(new.paths, new.titles, strict=True))
    meta["tracks"] = int(meta["tracks"]) + len(new)
    meta["steps"] = int(meta["steps"]) + int(new.offsets[-1])
    if len(new):
        meta["last_id"] = max(int(meta["last_id"]), int(np.max(new.ids)))
        meta["id_sum"] = int(meta["id_sum"]) + int(np.sum(new.ids))


def create_index(
    folder: str | Path, catalog: Catalog, *, lengths: Sequence[float] = (), points: int = sketches.POINTS,
    stride: float = sketches.STRIDE,
) -> SketchIndex:
    """Write ``catalog`` (replacing any index in ``folder``) and build the tables of ``lengths`` seconds."""
    folder = Path(folder)
    _own_files(folder)  # refused before anything is made or removed
    folder.mkdir(parents=True, exist_ok=True)
    with _locked(folder):
        for p in _own_files(folder):
            if p.name != ".lock":
                p.unlink()
        dim = 0 if catalog.embeddings is None else int(catalog.embeddings.shape[1])
        meta: dict[str, Any] = {"format": FORMAT, "tracks": 0, "steps": 0, "embedding_dim": dim, "last_id": 0,
                                "id_sum": 0, "tables": {}}  # fmt: skip
        (folder / "offsets").write_bytes(np.zeros(1, "<i8").tobytes())
        for key in (*_ARRAYS, "embeddings", "names.jsonl"):
            (folder / key).touch()
        _append_catalog(folder, meta, catalog)
        for length in lengths:
            name = _table_name(length, points, stride)
            meta["tables"][name] = _extend_table(folder, catalog, name, length, points, stride, None)
        _write_meta(folder, meta)
    return SketchIndex(folder)


def append_tracks(folder: str | Path, new: Catalog) -> SketchIndex:
    """Add ``new``'s tracks (ids above every indexed id) to the index and to each of its tables."""
    folder = Path(folder)
    with _locked(folder):
        meta = json.loads((folder / "index.json").read_text())
        if len(new) and int(np.min(new.ids)) <= int(meta["last_id"]):
            raise ParameterError(f"appended track ids must exceed the last indexed id {meta['last_id']}")
        _append_catalog(folder, meta, new)
        _write_meta(folder, meta)
    index = SketchIndex(folder)  # maps the grown catalogue
    with _locked(folder):
        for name, info in list(index.meta["tables"].items()):
            index.meta["tables"][name] = _extend_table(
                folder, index.catalog, name, info["length"], info["points"], info["stride"], info
            )
        _write_meta(folder, index.meta)
    return SketchIndex(folder)


def _open_current(folder: Path) -> SketchIndex | None:
    """The index in ``folder``, or None when there is none or it has an older format (to be rebuilt)."""
    meta = folder / "index.json"
    if not meta.is_file() or json.loads(meta.read_text()).get("format") != FORMAT:
        return None
    return SketchIndex(folder)


def _rewrite_names(folder: Path, library: Any, index: SketchIndex) -> SketchIndex | None:
    """The index with ``names.jsonl`` read anew from the library (tracks were moved: their paths changed,
    their arcs and sketches did not); None when the library no longer holds the indexed tracks (rebuild)."""
    import sqlalchemy as sa

    from matching.library.store import tracks

    with library.engine.connect() as conn:
        rows = conn.execute(sa.select(tracks.c.id, tracks.c.path, tracks.c.title)
                            .where(tracks.c.id <= int(index.meta["last_id"])).order_by(tracks.c.id)).all()
    if not np.array_equal(np.array([r.id for r in rows], dtype=np.int64), np.asarray(index.catalog.ids)):
        return None
    with _locked(folder):
        tmp = folder / f"names.jsonl.{os.getpid()}.tmp"
        with tmp.open("w", encoding="utf-8") as fh:
            fh.writelines(json.dumps([r.path, r.title]) + "\n" for r in rows)
        os.replace(tmp, folder / "names.jsonl")  # readers that opened the index keep the names they read
    return SketchIndex(folder)


def sync_index(library: Any, folder: str | Path | None = None, *, lengths: Sequence[float] = ()) -> SketchIndex:
    """The index of a :class:`matching.Library`, brought up to date with its database.

    New tracks (ids above the last indexed one) are appended; if any indexed track was
    removed or analysed again (:meth:`matching.Library.reanalyse`), the index is rebuilt;
    if any was moved (:meth:`matching.Library.relocate`), its paths are read again.
    ``lengths`` are tables to build now (at index time) rather than on a query's first use.
    """
    import sqlalchemy as sa

    from matching.library.store import arcs, embeddings, tracks
    from matching.ranking.catalog import build_catalog

    folder = Path(folder) if folder is not None else default_folder(library.url)
    index = _open_current(folder)
    moves = library.moves()  # before the paths are read: a move after this is seen by the next call
    revisions = library.revisions()
    if index is not None and int(index.meta.get("revisions", 0)) != revisions:
        index = None  # tracks were analysed again: their sketches changed
    if index is not None:
        known = int(index.meta["last_id"])
        with library.engine.connect() as conn:
            count, total = conn.execute(
                sa.select(sa.func.count(), sa.func.sum(tracks.c.id)).select_from(tracks).where(tracks.c.id <= known)
            ).one()
            newest = conn.execute(sa.select(sa.func.max(tracks.c.id))).scalar()
        if (int(count), int(total or 0)) != (len(index), int(index.meta["id_sum"])):
            index = None  # an indexed track was removed: rebuild
        elif int(newest or 0) > known:
            new = build_catalog(library.engine, tracks, arcs, embeddings, where=tracks.c.id > known)
            index = append_tracks(folder, new)
    if index is not None and index.meta.get("moves") != moves:  # no "moves": an index from before they counted
        index = _rewrite_names(folder, library, index)
    if index is None:
        index = create_index(folder, library.catalog(), lengths=lengths)
    if int(index.meta.get("revisions", 0)) != revisions or index.meta.get("moves") != moves:
        with _locked(folder):  # another process may be storing a table's entry
            meta = json.loads((folder / "index.json").read_text())
            meta["revisions"], meta["moves"] = revisions, moves
            _write_meta(folder, meta)
        index.meta["revisions"], index.meta["moves"] = revisions, moves
    for length in lengths:
        index.table(length)
    return index

