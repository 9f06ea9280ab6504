"""The one database engine factory: the library, the feedback log and batch manifests share it.

A plain path means an SQLite file, opened in WAL mode (readers never block the writer)
with a busy timeout, so concurrent raters and indexers wait for each other instead of
failing. A file that cannot be written (read-only media or permissions) is opened read-only
and immutable, so ranking from a mounted catalogue works. Anything with ``://`` is an
SQLAlchemy URL and is passed through; a PostgreSQL URL without a driver
(``postgresql://user@host/db``, ``postgres://...``) gets psycopg 3, the driver this project
installs, so the URL a server's documentation shows works as is.

PostgreSQL engines check each pooled connection before use (a restarted server costs one
retry, not an error) and are made safe across ``fork``: a child process (a process pool
of the indexer, a forked rater) drops the pool it inherited without closing the parent's
sockets, and opens its own connections.

:func:`create_tables` creates a component's tables once even when many processes start
at the same moment (on PostgreSQL two concurrent ``CREATE TABLE`` of one name fail).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sqlite3
import time
import weakref
from pathlib import Path
from typing import Any
from urllib.parse import quote

import sqlalchemy as sa

from analysis.errors import ParameterError

#: Seconds a writer waits on a locked SQLite database before giving up.
BUSY_TIMEOUT = 30.0
#: Seconds to wait for a database server to accept a connection.
CONNECT_TIMEOUT = 20

_forked_engines: weakref.WeakSet[sa.Engine] = weakref.WeakSet()
_sqlite_files: weakref.WeakSet[sa.Engine] = weakref.WeakSet()
_read_only_files: weakref.WeakSet[sa.Engine] = weakref.WeakSet()


class ReadOnlyDatabase(ParameterError):
    """A read-only database lacks tables that a component would create (the feedback log, a manifest)."""


@atexit.register
def _close_sqlite_files() -> None:
    """Close every SQLite file's connections as the process ends: the last close folds the WAL into
    the database file, so ``library.db`` alone (copied, mounted read-only) holds every track."""
    for engine in list(_sqlite_files):
        with contextlib.suppress(sa.exc.SQLAlchemyError):  # too late to report; SQLite recovers the WAL on open
            engine.dispose()


def _after_fork_in_child() -> None:
    for engine in list(_forked_engines):
        engine.dispose(close=False)  # the parent keeps using those sockets


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def server_url(url: str) -> str:
    """``url`` with psycopg 3 as the driver when a PostgreSQL URL names none."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def redacted(url: str) -> str:
    """``url`` with any password hidden, for messages."""
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return url


def make_engine(url_or_path: str | Path, *, busy_timeout: float = BUSY_TIMEOUT) -> sa.Engine:
    """An engine for a database URL, or for an SQLite file path (WAL, ``busy_timeout`` seconds)."""
    if not isinstance(url_or_path, str | os.PathLike) or not str(url_or_path):
        raise ParameterError(f"`url_or_path` must be a database path or URL (received {url_or_path!r})")
    text = str(url_or_path)
    if "://" in text and not text.startswith("sqlite"):
        return _server_engine(server_url(text))
    if "://" in text:
        url = text
        database = _sqlite_file(url)
        if database is not None and not database.parent.is_dir():  # was sqlite3's "unable to open database file"
            raise ParameterError(f"the database's folder does not exist (received {text!r})")
    else:
        path = Path(text).expanduser()
        if not path.parent.exists():
            raise ParameterError(f"the database's folder does not exist (received {text!r})")
        if path.is_dir():
            raise ParameterError(f"a database path must name a file, not a folder (received {text!r})")
        url = sqlite_url(path, read_only=path.is_file() and not writable(path))
    query = sa.engine.make_url(url).query
    read_only = query.get("mode") == "ro" or query.get("immutable") == "1"
    in_memory = ":memory:" in url or url in ("sqlite://", "sqlite:///")
    engine = sa.create_engine(url, connect_args={"check_same_thread": False, "timeout": busy_timeout})
    if not in_memory:
        (_read_only_files if read_only else _sqlite_files).add(engine)

    @sa.event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        if not in_memory and not read_only:
            _journal_wal(cur, busy_timeout)
            cur.execute("PRAGMA synchronous=NORMAL")  # safe with WAL; an OS crash may lose the last commits
        cur.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    return engine


def _journal_wal(cur: Any, busy_timeout: float) -> None:
    """``PRAGMA journal_mode=WAL``, retried on "database is locked" until ``busy_timeout`` seconds pass.

    Switching a new file to WAL takes an exclusive lock, and SQLite fails at once instead of calling the
    busy handler where waiting could deadlock: processes opening a new library together got the error in
    about one round of 40 (four processes each).
    """
    deadline = time.monotonic() + busy_timeout
    while True:
        try:
            cur.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as err:
            if "locked" not in str(err) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def _sqlite_file(url: str) -> Path | None:
    """The file an ``sqlite:///...`` URL names (None for another dialect, memory or a URL that does not parse)."""
    try:
        parsed = sa.engine.make_url(url)
    except sa.exc.ArgumentError:
        return None
    name = parsed.database
    if parsed.get_backend_name() != "sqlite" or not name or name == ":memory:" or name.startswith("file:"):
        return None
    return Path(name).expanduser()


def sqlite_url(path: Path, *, read_only: bool = False) -> str:
    """The URL of an SQLite file; read-only, an SQLite URI with ``mode=ro``, or ``immutable=1`` where
    the file cannot be written at all (read-only media: no WAL or lock files can be made there, so SQLite
    could not open it otherwise). Writing through a read-only URL fails with SQLite's own error."""
    if not read_only:
        return f"sqlite:///{path}"
    # Quoted for the SQLite URI, then its "%" quoted again because SQLAlchemy unquotes the URL once.
    quoted = quote(str(path.resolve())).replace("%", "%25")
    return f"sqlite:///file:{quoted}?{'mode=ro' if writable(path) else 'immutable=1'}&uri=true"


def writable(path: Path) -> bool:
    """Whether an SQLite file and its folder (where the WAL and lock files go) can be written."""
    return os.access(path, os.W_OK) and os.access(path.parent, os.W_OK)


def _server_engine(url: str) -> sa.Engine:
    """A pooled engine for a database server (PostgreSQL, or any other SQLAlchemy dialect)."""
    try:
        parsed = sa.engine.make_url(url)
        args: dict[str, Any] = {}
        if parsed.get_backend_name() == "postgresql":
            args["connect_args"] = {"connect_timeout": CONNECT_TIMEOUT}
        engine = sa.create_engine(parsed, pool_pre_ping=True, **args)
    except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError, ImportError) as err:
        shown = redacted(url)
        raise ParameterError(f"`url_or_path` is not a usable database URL (received {shown!r}: {err})") from None
    _forked_engines.add(engine)
    return engine


def create_tables(metadata: sa.MetaData, engine: sa.Engine) -> None:
    """Create ``metadata``'s missing tables, once, even if many processes start together.

    On PostgreSQL a transaction-scoped advisory lock serialises the creators: the first
    creates, the others then find the tables. On SQLite the check and the creation run in one
    ``BEGIN IMMEDIATE`` transaction, which takes the write lock first (waiting up to the busy
    timeout): without it, two processes opening a new file both found no table and the second
    ``CREATE TABLE`` failed with "table tracks already exists" (the driver opens no transaction
    for schema statements). On a read-only SQLite file, missing tables raise :class:`ReadOnlyDatabase`.
    """
    if engine in _read_only_files:  # nothing can be created: the tables are there, or they are not
        missing = sorted(set(metadata.tables) - set(sa.inspect(engine).get_table_names()))
        if missing:
            raise ReadOnlyDatabase(f"the database {engine.url.database} is read-only and has no {', '.join(missing)} "
                                   "table yet")
        return
    try:
        with engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(726354001)"))
            elif conn.dialect.name == "sqlite":
                conn.exec_driver_sql("BEGIN IMMEDIATE")  # committed when the block ends
            metadata.create_all(conn)
    except sa.exc.DatabaseError as err:
        if engine.dialect.name == "sqlite" and "not a database" in str(err.orig):
            raise ParameterError(f"{engine.url.database} is not an SQLite database (received a file of another "
                                 "kind)") from None
        said = str(err.orig).strip().splitlines()[0] if str(err.orig).strip() else type(err.orig).__name__
        if engine.dialect.name != "sqlite" and said.startswith("connection"):  # psycopg: "connection failed: ..."
            shown = engine.url.render_as_string(hide_password=True)
            raise ParameterError(f"cannot connect to the database {shown} ({said})") from None
        raise
