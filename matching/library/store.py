"""The music library: a catalogue of analysed tracks in SQLite (default) or any SQLAlchemy URL.

Tables (SQLAlchemy Core, no ORM): ``tracks`` (metadata, ``checksum`` UNIQUE: the
SHA-256 of the file's bytes), ``track_tags`` (one row per tag, indexed for search),
``arcs`` (the emotion arc as little-endian float32 blobs), ``embeddings`` (the track
analysis' static feature vector, float32 blob) and ``track_readers`` (which music reader
analysed each track, and how often it was analysed again). Each track is committed as soon
as its analysis finishes, so an interrupted :meth:`Library.add_folder` resumes where it
stopped; re-adding a file with the same bytes returns the existing record.

:meth:`Library.catalog` loads every arc and embedding into flat arrays for ranking; it
is cached and rebuilt after any write (by this or another process).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import numbers
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa

from analysis.arc import EMOTIONS, EmotionArc
from analysis.errors import MediaError, ParameterError, as_path, not_found
from analysis.media.hashing import content_hash
from analysis.music.formats import TRACK_SUFFIXES  # what add_folder picks up: what analyze_track reads
from matching.db import BUSY_TIMEOUT, ReadOnlyDatabase, create_tables, make_engine
from matching.library.indexing import IndexReport, Skipped, analyze_files, analyze_one, moved_here
from matching.library.records import TrackRecord
from matching.ranking.catalog import Catalog, build_catalog

log = logging.getLogger(__name__)


metadata = sa.MetaData()
tracks = sa.Table(
    "tracks",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("path", sa.Text, nullable=False),
    sa.Column("title", sa.Text),
    sa.Column("artist", sa.Text),
    sa.Column("tags", sa.Text, nullable=False, default=""),  # comma-joined copy for display
    sa.Column("licence", sa.Text),
    sa.Column("checksum", sa.String(64), nullable=False, unique=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("duration", sa.Float, nullable=False),
    sa.Column("tempo", sa.Float),
    sa.Column("key", sa.String(8)),
    sa.Column("mode", sa.String(8)),
    sa.Column("loudness", sa.Float),
    sa.Column("added_at", sa.Float, nullable=False),
)
track_tags = sa.Table(
    "track_tags",
    metadata,
    sa.Column("track_id", sa.Integer, sa.ForeignKey("tracks.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("tag", sa.String(64), primary_key=True, index=True),
)
arcs = sa.Table(
    "arcs",
    metadata,
    sa.Column("track_id", sa.Integer, sa.ForeignKey("tracks.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("hop", sa.Float, nullable=False),
    sa.Column("times", sa.LargeBinary, nullable=False),
    sa.Column("valence", sa.LargeBinary, nullable=False),
    sa.Column("arousal", sa.LargeBinary, nullable=False),
    sa.Column("emotions", sa.LargeBinary, nullable=False),  # (len(EMOTIONS), n) float32, EMOTIONS order
)
track_readers = sa.Table(
    "track_readers",
    metadata,
    sa.Column("track_id", sa.Integer, sa.ForeignKey("tracks.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("reader", sa.String(80), nullable=False),  # analysis.music.audio.reader_stamp(); "symbolic": MIDI
    sa.Column("revision", sa.Integer, nullable=False, default=0),  # times analysed again (cache stamps sum it)
)
#: Times tracks were analysed again, summed: it changes when an arc is replaced in place.
_REVISIONS = sa.select(sa.func.coalesce(sa.func.sum(track_readers.c.revision), 0))
#: One row per move of a track's file (:meth:`Library.relocate`). The catalogue cache and the sketch
#: index hold paths, and a move changes no count, id or revision, so the largest id here is part of their
#: stamps. Its own metadata: a library made before moves were recorded still opens read-only without it.
moves_metadata = sa.MetaData()
track_moves = sa.Table(
    "track_moves",
    moves_metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("track_id", sa.Integer, nullable=False),
    sa.Column("moved_at", sa.Float, nullable=False),
)
_MOVES = sa.select(sa.func.coalesce(sa.func.max(track_moves.c.id), 0))
embeddings = sa.Table(
    "embeddings",
    metadata,
    sa.Column("track_id", sa.Integer, sa.ForeignKey("tracks.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("dim", sa.Integer, nullable=False),
    sa.Column("vector", sa.LargeBinary, nullable=False),
)


def blob(a: np.ndarray) -> bytes:
    return np.ascontiguousarray(a, dtype="<f4").tobytes()


def unblob(b: bytes) -> np.ndarray:
    return np.frombuffer(b, dtype="<f4").astype(np.float64)


def _clean_tags(tags: Iterable[str]) -> tuple[str, ...]:
    if isinstance(tags, str):
        tags = [tags]
    out = []
    for t in tags:
        t = str(t).strip().lower()
        if not t or len(t) > 64:
            raise ParameterError(f"tags must be 1-64 characters (received {t!r})")
        if t not in out:
            out.append(t)
    return tuple(out)


def _track_id(value: object) -> int:
    """``value`` as a track id: an integer (a NumPy one too) or its digits. ``get(None)`` was Python's
    "int() argument must be ... not 'NoneType'", and ``get(True)`` or ``get(1.7)`` quietly gave track 1."""
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    if isinstance(value, numbers.Integral) and not isinstance(value, bool | np.bool_):
        return int(value)
    raise ParameterError(f"`track_id` must be an integer (received {value!r})")


def _default_analyzer() -> Callable[..., Any]:
    from analysis.music.track import analyze_track

    return analyze_track


class Library:
    """A catalogue of analysed music tracks.

    ``analyzer`` turns a path into a ``TrackAnalysis`` (default
    :func:`analysis.analyze_track`); it must be a picklable module-level function for
    parallel indexing. ``engine`` is public so other components (the feedback log) keep
    their tables in the same database.
    """

    def __init__(
        self,
        url_or_path: str | Path = "library.db",
        *,
        hop: float = 0.5,
        analyzer: Callable[..., Any] | None = None,
        busy_timeout: float = BUSY_TIMEOUT,
    ) -> None:
        if hop <= 0:
            raise ParameterError(f"`hop` must be positive (received {hop})")
        self.url = str(url_or_path)
        self.hop = float(hop)
        self.analyzer = analyzer
        self.engine = make_engine(url_or_path, busy_timeout=busy_timeout)
        create_tables(metadata, self.engine)
        with contextlib.suppress(ReadOnlyDatabase):  # read-only, from before moves were recorded: none are
            create_tables(moves_metadata, self.engine)
        self._catalog: Catalog | None = None
        self._catalog_stamp: tuple[Any, ...] | None = None
        self._catalog_lock = threading.Lock()  # one rebuild at a time: see catalog()

    def __repr__(self) -> str:
        return f"Library({self.url!r}, tracks={len(self)})"

    # ------------------------------------------------------------------ reading
    def __len__(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(tracks)).scalar_one())

    def _records(self, where: Any = None) -> list[TrackRecord]:
        q = sa.select(tracks).order_by(tracks.c.id)
        if where is not None:
            q = q.where(where)
        with self.engine.connect() as conn:
            rows = conn.execute(q).mappings().all()
            ids = [r["id"] for r in rows]
            tag_rows = conn.execute(sa.select(track_tags).where(track_tags.c.track_id.in_(ids))).all() if ids else []
        tag_map: dict[int, list[str]] = {}
        for tid, tag in tag_rows:
            tag_map.setdefault(tid, []).append(tag)
        return [
            TrackRecord(**{**dict(r), "tags": tuple(sorted(tag_map.get(r["id"], [])))})  # type: ignore[arg-type]
            for r in rows
        ]

    def get(self, track_id: int) -> TrackRecord:
        found = self._records(tracks.c.id == _track_id(track_id))
        if not found:
            raise ParameterError(f"`track_id` {track_id} is not in the library {self.url!r}")
        return found[0]

    def by_checksum(self, checksum: str) -> TrackRecord | None:
        found = self._records(tracks.c.checksum == checksum)
        return found[0] if found else None

    def at_paths(self, paths: Iterable[str | Path]) -> dict[str, TrackRecord]:
        """The tracks stored under any of ``paths`` (resolved), keyed by their stored path."""
        wanted = sorted({str(Path(p).resolve()) for p in paths})
        found: dict[str, TrackRecord] = {}
        for lo in range(0, len(wanted), 500):  # a bounded IN list for every database
            found.update((r.path, r) for r in self._records(tracks.c.path.in_(wanted[lo : lo + 500])))
        return found

    def missing(self, under: str | Path | None = None) -> list[TrackRecord]:
        """Tracks whose file is gone (deleted, or moved where no index run has found it), optionally
        only those stored under the folder ``under``."""
        where = None
        if under is not None:
            root = str(Path(under).resolve())
            where = sa.or_(tracks.c.path == root, tracks.c.path.startswith(root.rstrip("/") + "/", autoescape=True))
        return [r for r in self._records(where) if not Path(r.path).is_file()]

    def list(self, tag: str | None = None) -> list[TrackRecord]:
        """All tracks in insertion order, or those carrying ``tag``."""
        if tag is None:
            return self._records()
        (clean,) = _clean_tags([tag])
        sub = sa.select(track_tags.c.track_id).where(track_tags.c.tag == clean)
        return self._records(tracks.c.id.in_(sub))

    def search(self, tag: str) -> list[TrackRecord]:
        """Tracks carrying ``tag`` (case-insensitive)."""
        return self.list(tag=tag)

    def arc(self, track_id: int) -> EmotionArc:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(arcs).where(arcs.c.track_id == _track_id(track_id))).mappings().first()
        if row is None:
            raise ParameterError(f"`track_id` {track_id} is not in the library {self.url!r}")
        emo = unblob(row["emotions"]).reshape(len(EMOTIONS), -1)
        return EmotionArc(
            times=unblob(row["times"]),
            valence=unblob(row["valence"]),
            arousal=unblob(row["arousal"]),
            emotions={e: emo[i] for i, e in enumerate(EMOTIONS)},
        )

    def catalog(self) -> Catalog:
        """Every track's arc, embedding and metadata as flat arrays (cached until the next write, by this
        process or another: tracks added, removed, analysed again or moved).

        Threads that rank at once after a write (the page's) wait for one rebuild: each had built its own
        (six threads on a 10,000-track library, six catalogues and 933 MB at the peak), and the last to
        finish could leave an older catalogue standing under the newer stamp."""
        with self._catalog_lock:
            with self.engine.connect() as conn:
                counts = conn.execute(
                    sa.select(sa.func.count(), sa.func.max(tracks.c.id), sa.func.sum(tracks.c.id),
                              _REVISIONS.scalar_subquery()).select_from(tracks)
                ).one()
                stamp = (*counts, _moves(conn))
            if self._catalog is None or stamp != self._catalog_stamp:
                self._catalog = build_catalog(self.engine, tracks, arcs, embeddings)
                self._catalog_stamp = stamp
            return self._catalog

    # ------------------------------------------------------------------ writing
    def add(
        self,
        path: str | Path,
        *,
        title: str | None = None,
        artist: str | None = None,
        tags: Sequence[str] = (),
        licence: str | None = None,
    ) -> TrackRecord:
        """Analyse and store one audio or MIDI file; the existing record if its bytes are known.

        As :meth:`add_folder` does, known bytes whose stored file is gone move the record to
        ``path``, and new bytes at a path the library holds replace that track's analysis in
        place (its title and tags stay).
        """
        return self.add_new(path, title=title, artist=artist, tags=tags, licence=licence)[0]

    def add_new(
        self,
        path: str | Path,
        *,
        title: str | None = None,
        artist: str | None = None,
        tags: Sequence[str] = (),
        licence: str | None = None,
    ) -> tuple[TrackRecord, bool]:
        """:meth:`add`, and whether this call catalogued a new track (False: its bytes were known, or
        another process stored the same bytes at the same moment: theirs is the record)."""
        p = as_path(path)
        if not p.is_file():
            raise MediaError(p, "is not a file")
        checksum = content_hash(p)
        existing = self.by_checksum(checksum)
        if existing is not None:
            return (self.relocate(existing.id, p) if moved_here(existing, p) else existing), False
        analysis = (self.analyzer or _default_analyzer())(p, hop=self.hop)
        edited = self.at_paths([p]).get(str(p.resolve()))
        if edited is not None:
            return self.update(edited.id, p, analysis, checksum=checksum), False
        return self.store_new(p, analysis, checksum=checksum, title=title, artist=artist, tags=tags,
                              licence=licence)

    def store(
        self,
        path: Path,
        analysis: Any,
        *,
        checksum: str,
        title: str | None = None,
        artist: str | None = None,
        tags: Sequence[str] = (),
        licence: str | None = None,
    ) -> TrackRecord:
        """Insert an already computed ``TrackAnalysis`` in one transaction (idempotent by checksum)."""
        return self.store_new(path, analysis, checksum=checksum, title=title, artist=artist, tags=tags,
                              licence=licence)[0]

    def store_new(
        self, path: Path, analysis: Any, *, checksum: str, title: str | None = None, artist: str | None = None,
        tags: Sequence[str] = (), licence: str | None = None,
    ) -> tuple[TrackRecord, bool]:
        """:meth:`store`, and whether this call inserted the track (False: the bytes were there, or another
        process stored them first)."""
        clean = _clean_tags(tags)
        arc: EmotionArc = analysis.arc
        if len(arc) < 1:
            raise MediaError(path, "analysis produced an empty arc")
        emb = np.asarray(getattr(analysis, "embedding", np.zeros(0)), dtype=np.float32).ravel()
        try:
            track_id, inserted = self._insert(path, analysis, arc, emb, checksum, clean, title, artist, licence)
        except sa.exc.IntegrityError:
            # Another process stored the same bytes between our check and our insert (on a
            # server database both transactions run at once): theirs is the record.
            existing = self.by_checksum(checksum)
            if existing is None:
                raise
            return existing, False
        return self.get(track_id), inserted

    def _insert(
        self, path: Path, analysis: Any, arc: EmotionArc, emb: np.ndarray, checksum: str,
        clean: tuple[str, ...], title: str | None, artist: str | None, licence: str | None,
    ) -> tuple[int, bool]:
        with self.engine.begin() as conn:
            found = conn.execute(sa.select(tracks.c.id).where(tracks.c.checksum == checksum)).first()
            if found is not None:
                return int(found[0]), False
            track_id = conn.execute(
                tracks.insert().values(
                    path=str(Path(path).resolve()),
                    # the caller's title, else the file's own tag, else its name
                    title=title if title is not None else getattr(analysis, "title", None) or Path(path).stem,
                    artist=artist if artist is not None else getattr(analysis, "artist", None),
                    tags=",".join(clean),
                    licence=licence,
                    checksum=checksum,
                    kind=str(getattr(analysis, "kind", "audio")),
                    duration=float(getattr(analysis, "duration", arc.duration)),
                    tempo=_opt_float(getattr(analysis, "tempo", None)),
                    key=getattr(analysis, "key", None),
                    mode=getattr(analysis, "mode", None),
                    loudness=_opt_float(getattr(analysis, "loudness", None)),
                    added_at=time.time(),
                )
            ).inserted_primary_key[0]
            if clean:
                conn.execute(track_tags.insert(), [{"track_id": track_id, "tag": t} for t in clean])
            conn.execute(
                arcs.insert().values(
                    track_id=track_id,
                    hop=arc.hop or self.hop,
                    times=blob(arc.times),
                    valence=blob(arc.valence),
                    arousal=blob(arc.arousal),
                    emotions=blob(np.stack([arc.emotions[e] for e in EMOTIONS])),
                )
            )
            conn.execute(embeddings.insert().values(track_id=track_id, dim=int(emb.size), vector=blob(emb)))
            conn.execute(track_readers.insert().values(track_id=track_id, reader=_reader_of(analysis), revision=0))
        return track_id, True

    def add_folder(
        self,
        folder: str | Path,
        *,
        recursive: bool = True,
        workers: int | None = None,
        progress: bool | Callable[[float, str], None] | None = None,
        client: Any = None,
        tags: Sequence[str] = (),
        licence: str | None = None,
        within: str | Path | None = None,
        log_skips: bool = True,
    ) -> IndexReport:
        """Analyse every audio/MIDI file under ``folder`` (or one file) and store the new ones.

        Files whose bytes are already catalogued are not analysed again; each new track
        commits as soon as it is analysed, so an interrupted run resumes on the next
        call. Files that cannot be read or analysed are skipped, logged, and listed in
        the report. ``workers`` processes analyse in parallel (default: up to 4; 0 or 1
        analyse in this process); a Dask ``client`` (a ``distributed.Client`` or a
        scheduler address such as ``tcp://host:8786``) runs the same per-file function on
        its cluster instead (``matching.cluster.run_tasks``); only this process writes.
        ``within`` drops files whose real path (links resolved) lies outside that folder.
        ``log_skips`` False leaves the skipped files unlogged (a caller that shows ``report.skipped`` itself).
        ``progress`` None (the default) draws a bar on stderr when it is a terminal (none in a log file),
        True always, False never; a ``(fraction, message)`` callback hears the same: the share of the files
        analysed, moving within a long recording too (not on a Dask cluster).
        """
        root = as_path(folder, "folder")
        if workers is not None and not (isinstance(workers, numbers.Integral) and not isinstance(workers, bool)
                                        and workers >= 0):  # nan failed after every file was hashed
            raise ParameterError(f"`workers` must be a whole number >= 0 or None (received {workers!r})")
        outside: list[Skipped] = []
        if root.is_file():
            files = [root]
        elif root.is_dir():
            pattern = root.rglob("*") if recursive else root.glob("*")
            named = sorted(p for p in pattern if p.suffix.lower() in TRACK_SUFFIXES)
            files = [p for p in named if p.is_file()]
            # a link whose target is gone (a drive not mounted) or a pipe was left out without a word
            outside = [Skipped(str(p), _not_a_file(p)) for p in named if not p.is_file() and not p.is_dir()]
        elif not root.exists():  # a link to a drive not mounted says where it points ("neither a folder nor a file")
            raise not_found(root)
        else:
            raise MediaError(root, "is neither a folder nor a file")
        if within is not None:  # links out of an allowed root are not followed, and are said to be skipped
            fence = Path(within).resolve()
            outside += [Skipped(str(p), "links to a file outside the folders allowed") for p in files
                        if not p.resolve().is_relative_to(fence)]
            files = [p for p in files if p.resolve().is_relative_to(fence)]
        report = analyze_files(
            self,
            files,
            analyzer=self.analyzer or _default_analyzer(),
            workers=workers,
            progress=progress,
            client=client,
            tags=_clean_tags(tags),
            licence=licence,
            log_skips=log_skips,
        )
        for s in outside if log_skips else ():
            log.warning("skipped %s: %s", s.path, s.reason)
        return dataclasses.replace(report, skipped=report.skipped + tuple(outside)) if outside else report

    def relocate(self, track_id: int, path: str | Path) -> TrackRecord:
        """Point a track at another copy of its bytes (the caller checked they are the same)."""
        record = self.get(track_id)
        with self.engine.begin() as conn:
            conn.execute(tracks.update().where(tracks.c.id == record.id).values(path=str(Path(path).resolve())))
            conn.execute(track_moves.insert().values(track_id=record.id, moved_at=time.time()))  # the stamps see it
        self._catalog = None
        return self.get(track_id)

    def update(self, track_id: int, path: str | Path, analysis: Any, *, checksum: str) -> TrackRecord:
        """Store new bytes of a track in place: its file at ``path`` was edited (new ``checksum``).

        The id, title, tags and licence stay (ratings refer to the id); the arc, embedding and
        musical facts are ``analysis``'s.
        """
        record = self.get(track_id)
        self._replace(record.id, analysis, path=Path(path).resolve(), checksum=checksum)
        return self.get(record.id)

    def set_key(self, track_id: int, key: str, mode: str) -> TrackRecord:
        """Record a track's key where it is known better than the audio reader hears it (the demo's tracks:
        the score they were rendered from). The next analysis of the track replaces it."""
        # a tonic as the catalogue spells it: a letter A-G and an optional sharp or flat ("H" and "c#" passed)
        if mode not in ("major", "minor") or not isinstance(key, str) or not re.fullmatch(r"[A-G][#b]?", key):
            raise ParameterError(f"a key is a tonic name and major or minor (received {key!r} {mode!r})")
        record = self.get(track_id)
        with self.engine.begin() as conn:
            conn.execute(tracks.update().where(tracks.c.id == record.id).values(key=key, mode=mode))
        return self.get(record.id)

    def remove(self, track_id: int) -> TrackRecord:
        """Delete one track (and its arc, embedding and tags); returns what was removed."""
        record = self.get(track_id)
        with self.engine.begin() as conn:
            for table in (track_tags, arcs, embeddings, track_readers):
                conn.execute(table.delete().where(table.c.track_id == record.id))
            conn.execute(tracks.delete().where(tracks.c.id == record.id))
        return record

    def moves(self) -> int:
        """A number that changes whenever a track's file is moved (:meth:`relocate`): part of the cache stamps."""
        with self.engine.connect() as conn:
            return _moves(conn)

    # ------------------------------------------------------------------ re-analysis
    def revisions(self) -> int:
        """How many times tracks were analysed again in all (part of the cache stamps)."""
        with self.engine.connect() as conn:
            return int(conn.execute(_REVISIONS).scalar_one())

    def stale(self) -> list[TrackRecord]:
        """Audio tracks that another music reader analysed (or one from before readers were recorded)."""
        from analysis.music.audio import reader_stamp

        current = sa.select(track_readers.c.track_id).where(track_readers.c.reader == reader_stamp())
        return self._records(sa.and_(tracks.c.kind != "midi", tracks.c.id.not_in(current)))

    def reanalyse(
        self, records: Sequence[TrackRecord] | None = None, *, progress: Callable[[int, int, str], None] | None = None,
    ) -> tuple[list[TrackRecord], list[Skipped]]:
        """Analyse ``records`` (default: :meth:`stale`) again in place: same ids, titles, tags and
        licences, new arcs, embeddings and musical facts. A file that is gone or unreadable is
        skipped and keeps its old analysis. Returns ``(done, skipped)``."""
        todo = self.stale() if records is None else list(records)
        analyzer = self.analyzer or _default_analyzer()
        done: list[TrackRecord] = []
        skipped: list[Skipped] = []
        for i, rec in enumerate(todo, 1):
            outcome = analyze_one(analyzer, rec.path, self.hop)
            if outcome.error is None:
                self._replace(rec.id, outcome.analysis)
                done.append(self.get(rec.id))
            else:
                log.warning("kept the old analysis of %s: %s", rec.path, outcome.error)
                skipped.append(Skipped(path=rec.path, reason=outcome.error))
            if progress is not None:
                progress(i, len(todo), rec.title or rec.path)
        return done, skipped

    def _replace(self, track_id: int, analysis: Any, *, path: Path | None = None, checksum: str | None = None) -> None:
        arc: EmotionArc = analysis.arc
        if len(arc) < 1:
            raise MediaError(path or Path(self.get(track_id).path), "analysis produced an empty arc")
        emb = np.asarray(getattr(analysis, "embedding", np.zeros(0)), dtype=np.float32).ravel()
        where = lambda table: table.c.track_id == track_id  # noqa: E731
        new_bytes = {} if checksum is None else {"checksum": checksum, "path": str(path),
                                                 "kind": str(getattr(analysis, "kind", "audio"))}
        with self.engine.begin() as conn:
            conn.execute(tracks.update().where(tracks.c.id == track_id).values(
                **new_bytes, duration=float(getattr(analysis, "duration", arc.duration)),
                tempo=_opt_float(getattr(analysis, "tempo", None)), key=getattr(analysis, "key", None),
                mode=getattr(analysis, "mode", None), loudness=_opt_float(getattr(analysis, "loudness", None))))
            conn.execute(arcs.update().where(where(arcs)).values(
                hop=arc.hop or self.hop, times=blob(arc.times), valence=blob(arc.valence), arousal=blob(arc.arousal),
                emotions=blob(np.stack([arc.emotions[e] for e in EMOTIONS]))))
            conn.execute(embeddings.update().where(where(embeddings)).values(dim=int(emb.size), vector=blob(emb)))
            reader = _reader_of(analysis)
            bumped = conn.execute(track_readers.update().where(where(track_readers)).values(
                reader=reader, revision=track_readers.c.revision + 1))
            if not bumped.rowcount:  # a track stored before readers were recorded
                conn.execute(track_readers.insert().values(track_id=track_id, reader=reader, revision=1))


def _not_a_file(p: Path) -> str:
    """Why ``p``, named like a track, is neither a file nor a folder."""
    if p.is_symlink() and not p.exists():
        return f"is a link to {os.readlink(p)}, which is not there"
    return "is not a regular file (a pipe, socket or device)"


def _moves(conn: sa.Connection) -> int:
    """The moves stamp (0 in a read-only library from before moves were recorded: it has no table)."""
    if not sa.inspect(conn).has_table(track_moves.name):
        return 0
    return int(conn.execute(_MOVES).scalar_one())


def _reader_of(analysis: Any) -> str:
    """The reader stamp stored with a new track: MIDI arcs come from the score, not the audio reader."""
    if str(getattr(analysis, "kind", "audio")) == "midi":
        return "symbolic"
    from analysis.music.audio import reader_stamp

    return reader_stamp()


def _opt_float(x: Any) -> float | None:
    return None if x is None else float(x)


__all__ = ["IndexReport", "Library", "Skipped", "TrackRecord"]
