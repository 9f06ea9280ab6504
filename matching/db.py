"""The one database engine factory: the library, the feedback log and batch manifests share it.

A plain path means an SQLite file, opened in WAL mode (readers never block the writer)
with a busy timeout, so concurrent raters and indexers wait for each other instead of
failing. Anything with ``://`` is an SQLAlchemy URL (PostgreSQL, for example) and is
passed through.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa

from analysis.errors import ParameterError

#: Seconds a writer waits on a locked SQLite database before giving up.
BUSY_TIMEOUT = 30.0


def make_engine(url_or_path: str | Path, *, busy_timeout: float = BUSY_TIMEOUT) -> sa.Engine:
    """An engine for a database URL, or for an SQLite file path (WAL, ``busy_timeout`` seconds)."""
    text = str(url_or_path)
    if "://" in text and not text.startswith("sqlite"):
        return sa.create_engine(text)
    if "://" in text:
        url = text
    else:
        path = Path(text).expanduser()
        if not path.parent.exists():
            raise ParameterError(f"`url_or_path` folder does not exist (received {text!r})")
        url = f"sqlite:///{path}"
    in_memory = ":memory:" in url or url in ("sqlite://", "sqlite:///")
    engine = sa.create_engine(url, connect_args={"check_same_thread": False, "timeout": busy_timeout})

    @sa.event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        if not in_memory:
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")  # safe with WAL; an OS crash may lose the last commits
        cur.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    return engine
