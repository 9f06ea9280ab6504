"""Batch manifest: one record per finished task, appended as it finishes, in JSON Lines and CSV.

The JSON Lines file is the source of truth; the CSV beside it holds the same records
flattened for spreadsheets. Every record is written, flushed and fsynced the moment its
task finishes, so a batch killed at any point loses at most the line being written; a
torn last line (the process died mid-write) is skipped by the reader and the next
append starts on a fresh line.

A rerun resumes by *content*: a record is keyed by the SHA-256 of the input file and a
digest of the task settings, so a renamed file is still recognised as done, while the
same file scored with other settings (threshold, style, ...) is not. When a key has
several records (an error retried later), the last one wins.

Only one process may append to a manifest at a time: in a distributed batch that is the
client, which receives every result and writes it (workers never touch the manifest).
:meth:`Manifest.hold` makes that so: it locks the folder's ``.manifest.lock`` for as long as a
batch runs, and a second batch on the same folder is refused at once, before it runs any clip
(two batches there would each score every clip, into the same files, and record each twice).
The operating system drops the lock when its holder ends, however it ends (even ``kill -9``).

With ``database=`` (an SQLite path or a database URL such as ``postgresql://host/db``,
opened by :func:`matching.db.make_engine`) every record is also stored in the table
``batch_records`` under the batch's name (the output folder's absolute path unless
``batch=`` names it), and the database becomes the source of truth for resuming: a
batch rerun from another machine against the same database skips what is done there.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import os
import socket
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import sqlalchemy as sa

from analysis.errors import MediaError, ParameterError

log = logging.getLogger(__name__)

JSONL_NAME = "manifest.jsonl"
CSV_NAME = "manifest.csv"
#: Held (``flock``) by the one process writing the folder's manifest; it names that process.
LOCK_NAME = ".manifest.lock"
#: CSV columns, in order. ``outputs``, ``timings`` and ``result`` hold JSON text.
CSV_COLUMNS = (
    "input",
    "content_hash",
    "settings",
    "status",
    "chosen",
    "choice",
    "score",
    "outputs",
    "seconds",
    "timings",
    "error",
    "worker",
    "finished_at",
    "result",
)
Status = Literal["ok", "error"]


def settings_digest(settings: Mapping[str, Any]) -> str:
    """A short, stable digest of JSON-ready task settings (key order does not matter)."""
    text = json.dumps(dict(settings), sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class TaskResult:
    """What a batch task returns to the client: JSON-ready fields, files written, step timings."""

    result: Mapping[str, Any] = field(default_factory=dict)
    outputs: tuple[str, ...] = ()
    timings: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Record:
    """What one task produced: its input, key, outcome, outputs and timings.

    ``result`` holds the task's own JSON-ready fields; by convention ``chosen`` (e.g.
    ``"match"``/``"compose"``/``"indexed"``), ``choice`` (track or piece) and ``score``
    are lifted into their own CSV columns. ``error`` is one sentence when ``status`` is
    ``"error"``; ``worker`` names the process that ran the task.
    """

    input: str
    content_hash: str
    settings: str
    status: Status
    result: Mapping[str, Any] = field(default_factory=dict)
    outputs: tuple[str, ...] = ()
    seconds: float = 0.0
    timings: Mapping[str, float] = field(default_factory=dict)
    error: str | None = None
    worker: str = ""
    finished_at: str = ""

    def __post_init__(self) -> None:
        if self.status not in ("ok", "error"):
            raise ParameterError(f"`status` must be 'ok' or 'error' (received {self.status!r})")

    @property
    def key(self) -> tuple[str, str]:
        """The resume key: (content hash, settings digest)."""
        return (self.content_hash, self.settings)

    def to_dict(self) -> dict[str, Any]:
        return {
            "input": self.input,
            "content_hash": self.content_hash,
            "settings": self.settings,
            "status": self.status,
            "result": dict(self.result),
            "outputs": list(self.outputs),
            "seconds": self.seconds,
            "timings": dict(self.timings),
            "error": self.error,
            "worker": self.worker,
            "finished_at": self.finished_at,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Record:
        return cls(
            input=str(data["input"]),
            content_hash=str(data["content_hash"]),
            settings=str(data.get("settings", "")),
            status=data["status"],
            result=dict(data.get("result") or {}),
            outputs=tuple(str(p) for p in data.get("outputs") or ()),
            seconds=float(data.get("seconds") or 0.0),
            timings={str(k): float(v) for k, v in (data.get("timings") or {}).items()},
            error=data.get("error") or None,
            worker=str(data.get("worker") or ""),
            finished_at=str(data.get("finished_at") or ""),
        )

    def csv_row(self) -> dict[str, str]:
        score = self.result.get("score")
        return {
            "input": self.input,
            "content_hash": self.content_hash,
            "settings": self.settings,
            "status": self.status,
            "chosen": str(self.result.get("chosen") or ""),
            "choice": str(self.result.get("choice") or ""),
            "score": "" if score is None else f"{float(score):.6g}",
            "outputs": json.dumps(list(self.outputs)),
            "seconds": f"{self.seconds:.3f}",
            "timings": json.dumps(dict(self.timings)),
            "error": self.error or "",
            "worker": self.worker,
            "finished_at": self.finished_at,
            "result": json.dumps(dict(self.result), default=str),
        }

    @classmethod
    def from_csv_row(cls, row: Mapping[str, str]) -> Record:
        return cls(
            input=row["input"],
            content_hash=row["content_hash"],
            settings=row["settings"],
            status=row["status"],  # type: ignore[arg-type]
            result=json.loads(row["result"] or "{}"),
            outputs=tuple(json.loads(row["outputs"] or "[]")),
            seconds=float(row["seconds"] or 0.0),
            timings=json.loads(row["timings"] or "{}"),
            error=row["error"] or None,
            worker=row["worker"],
            finished_at=row["finished_at"],
        )


def _append_line(path: Path, text: str) -> None:
    """Append ``text`` (one line, no newline) durably, starting a fresh line after a torn one."""
    with path.open("a+b") as fh:
        fh.seek(0, os.SEEK_END)
        prefix = b""
        if fh.tell() > 0:
            fh.seek(-1, os.SEEK_END)
            if fh.read(1) != b"\n":
                prefix = b"\n"
        fh.write(prefix + text.encode() + b"\n")
        fh.flush()
        os.fsync(fh.fileno())


def _csv_line(row: Mapping[str, str]) -> str:
    import io

    buf = io.StringIO()
    csv.DictWriter(buf, fieldnames=CSV_COLUMNS, lineterminator="\n").writerow(row)
    return buf.getvalue().rstrip("\n")


def read_jsonl(path: str | Path) -> list[Record]:
    """Every record in a JSON Lines manifest, in order; a torn or foreign line is skipped."""
    path = Path(path)
    if not path.exists():
        return []
    records = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            records.append(Record.from_dict(json.loads(line)))
        except (ValueError, KeyError, TypeError) as err:
            log.warning("%s line %d is not a manifest record, skipped (%s)", path, n, err)
    return records


def read_csv(path: str | Path) -> list[Record]:
    """Every record in a CSV manifest, in order; a torn or foreign row is skipped."""
    path = Path(path)
    if not path.exists():
        return []
    records = []
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        if reader.fieldnames is not None and tuple(reader.fieldnames) != CSV_COLUMNS:
            raise MediaError(path, f"is not a manifest CSV (columns {reader.fieldnames!r})")
        for n, row in enumerate(reader, start=2):
            try:
                records.append(Record.from_csv_row(row))
            except (ValueError, KeyError, TypeError) as err:
                log.warning("%s row %d is not a manifest record, skipped (%s)", path, n, err)
    return records


_meta = sa.MetaData()
records_table = sa.Table(
    "batch_records",
    _meta,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("batch", sa.Text, nullable=False, index=True),
    sa.Column("input", sa.Text, nullable=False),
    sa.Column("content_hash", sa.String(64), nullable=False),
    sa.Column("settings", sa.String(64), nullable=False),
    sa.Column("status", sa.String(8), nullable=False),
    sa.Column("record", sa.Text, nullable=False),  # the JSON Lines text of the record
)


class RecordTable:
    """The records of one batch in a database table (see the module docstring)."""

    def __init__(self, database: str | Path, batch: str) -> None:
        from matching.db import create_tables, make_engine

        self.engine = make_engine(database)
        self.batch = batch
        create_tables(_meta, self.engine)

    def append(self, record: Record) -> None:
        with self.engine.begin() as conn:
            conn.execute(records_table.insert().values(
                batch=self.batch, input=record.input, content_hash=record.content_hash, settings=record.settings,
                status=record.status, record=json.dumps(record.to_dict(), default=str),
            ))  # fmt: skip

    def records(self) -> list[Record]:
        q = sa.select(records_table.c.record).where(records_table.c.batch == self.batch).order_by(records_table.c.id)
        with self.engine.connect() as conn:
            return [Record.from_dict(json.loads(text)) for (text,) in conn.execute(q)]


def _read_or_empty(read: Callable[[Path], list[Record]], path: Path) -> list[Record]:
    """The records a manifest file holds; none when it cannot be read (it is then written anew)."""
    try:
        return read(path)
    except MediaError:
        return []


def _replace_lines(path: Path, lines: list[str]) -> None:
    """``path`` rewritten with ``lines`` at once (a kill mid-write leaves the old file)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    os.replace(tmp, path)


class Manifest:
    """The manifest of one batch in ``folder``: ``manifest.jsonl`` and ``manifest.csv``.

    >>> m = Manifest(out_dir)
    >>> m.append(record)              # durable as soon as it returns
    >>> m.completed()                 # resume keys already done
    """

    def __init__(
        self,
        folder: str | Path,
        *,
        write_csv: bool = True,
        database: str | Path | None = None,
        batch: str | None = None,
    ) -> None:
        self.folder = Path(folder)
        if self.folder.exists() and not self.folder.is_dir():
            raise ParameterError(f"`folder` must be a directory for the manifest (received file {str(folder)!r})")
        self.jsonl_path = self.folder / JSONL_NAME
        self.csv_path = self.folder / CSV_NAME
        self.write_csv = write_csv
        name = batch if batch is not None else str(self.folder.resolve())
        self.table = RecordTable(database, name) if database is not None else None

    @contextmanager
    def hold(self) -> Iterator[None]:
        """Be the one writer of this folder's manifest while the block runs (see the module docstring).

        Raises :class:`MediaError` at once when another process holds it, naming that process, or when
        the folder cannot be written (read-only, no permission).
        """
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not on a POSIX system: no lock, as before
            yield
            return
        path = self.folder / LOCK_NAME
        try:
            fh = path.open("a+", encoding="utf-8")
        except OSError as err:
            raise MediaError(self.folder, f"cannot write the manifest there ({err.strerror or err})") from None
        with fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                fh.seek(0)
                holder = fh.read().strip() or "another process"
                raise MediaError(self.folder, f"another batch is writing its manifest ({holder}); wait for it to "
                                              "finish, or give another output folder") from None
            fh.seek(0)
            fh.truncate()
            fh.write(f"process {os.getpid()} on {socket.gethostname()}\n")
            fh.flush()
            yield

    def records(self) -> list[Record]:
        """Every record written so far, in the order written (retries included)."""
        if self.table is not None:
            return self.table.records()
        return read_jsonl(self.jsonl_path)

    def latest(self) -> dict[tuple[str, str], Record]:
        """The last record of every resume key."""
        return {r.key: r for r in self.records()}

    def completed(self, *, retry_errors: bool = False) -> set[tuple[str, str]]:
        """Resume keys a rerun should skip: every recorded key, or only the successes with ``retry_errors``."""
        return set(self.to_skip(retry_errors=retry_errors))

    def to_skip(self, *, retry_errors: bool = False) -> dict[tuple[str, str], Record]:
        """The last record of each key in :meth:`completed` (a rerun reports the errors it skips)."""
        return {k: r for k, r in self.latest().items() if r.status == "ok" or not retry_errors}

    def append(self, record: Record) -> None:
        """Write one record to the database (if any) and both files, flushed and fsynced before returning."""
        if self.table is not None:
            self.table.append(record)
        self.folder.mkdir(parents=True, exist_ok=True)
        _append_line(self.jsonl_path, json.dumps(record.to_dict(), default=str))
        if self.write_csv:
            if not self.csv_path.exists() or self.csv_path.stat().st_size == 0:
                _append_line(self.csv_path, ",".join(CSV_COLUMNS))
            _append_line(self.csv_path, _csv_line(record.csv_row()))

    def sync_jsonl(self) -> bool:
        """With a database, rewrite ``manifest.jsonl`` from its records when the file holds others (a batch
        resumed into a new folder: the folder's manifest files show the whole batch, as the CSV does).

        Returns True when the file was rewritten.
        """
        if self.table is None:
            return False
        records = self.records()
        if [r.to_dict() for r in _read_or_empty(read_jsonl, self.jsonl_path)] == [r.to_dict() for r in records]:
            return False
        self.folder.mkdir(parents=True, exist_ok=True)
        _replace_lines(self.jsonl_path, [json.dumps(r.to_dict(), default=str) for r in records])
        return True

    def sync_csv(self) -> bool:
        """Rewrite the CSV from the JSON Lines file if they disagree (a kill between the two writes).

        Returns True when the CSV was rewritten.
        """
        if not self.write_csv:
            return False
        records = self.records()
        def ident(rs: list[Record]) -> list[tuple[str, str, str, str]]:
            return [(r.input, r.content_hash, r.settings, r.status) for r in rs]

        if ident(_read_or_empty(read_csv, self.csv_path)) == ident(records):
            return False
        _replace_lines(self.csv_path, [",".join(CSV_COLUMNS), *(_csv_line(r.csv_row()) for r in records)])
        return True

    def extend(self, records: Iterable[Record]) -> None:
        for record in records:
            self.append(record)
