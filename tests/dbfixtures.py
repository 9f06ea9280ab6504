"""A throw-away PostgreSQL server for the database tests, started once per test session.

Debian's ``postgresql`` package (scripts/bootstrap.sh installs it) puts ``initdb`` and
``pg_ctl`` under ``/usr/lib/postgresql/<version>/bin``. The server gets a fresh cluster
in a temporary folder, listens only on a unix socket in that folder (no TCP port to
collide with), runs without fsync (test data need not survive a crash) and is stopped
and deleted at the end of the session. PostgreSQL refuses to run as root, so under root
the two commands run as the ``postgres`` user through ``runuser``.

``SOUNDTRACK_TEST_POSTGRES_URL`` (e.g. ``postgresql://me@localhost/scratch``) points the
tests at an existing server instead; each test still gets a database of its own.
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

#: Environment variable naming an existing server to test against.
URL_ENV = "SOUNDTRACK_TEST_POSTGRES_URL"
_counter = itertools.count()


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL binaries here (the message says how to get them)."""


def pg_bindir() -> Path:
    """The folder holding ``initdb`` and ``pg_ctl`` (newest Debian version, else on PATH)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("initdb")
    if on_path:
        return Path(on_path).parent
    raise PostgresUnavailable(
        "PostgreSQL is not installed (no initdb under /usr/lib/postgresql/*/bin or on PATH): "
        "`apt-get install postgresql` (scripts/bootstrap.sh does) to run the database tests on it"
    )


class PostgresServer:
    """One temporary PostgreSQL cluster on a unix socket; :meth:`new_database` gives a fresh URL."""

    def __init__(self) -> None:
        self.bindir = pg_bindir()
        self.root = Path(tempfile.mkdtemp(prefix="soundtrack-pg-"))
        self.data = self.root / "data"
        self.port = 5432
        self._runas: list[str] = []
        if os.geteuid() == 0:
            try:
                user = pwd.getpwnam("postgres")
            except KeyError:
                raise PostgresUnavailable("running as root and there is no `postgres` user to run the server") from None
            os.chown(self.root, user.pw_uid, user.pw_gid)
            self._runas = ["runuser", "-u", "postgres", "--"]
        os.chmod(self.root, 0o755)

    def _run(self, *args: str) -> None:
        done = subprocess.run([*self._runas, *args], capture_output=True, text=True, timeout=120, check=False)
        if done.returncode != 0:
            log = (self.root / "server.log").read_text() if (self.root / "server.log").exists() else ""
            raise RuntimeError(f"{args[0]} failed ({done.returncode}): {done.stderr.strip()}\n{log[-2000:]}")

    def start(self) -> None:
        self._run(str(self.bindir / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust",
                  "-E", "UTF8", "--locale=C")  # fmt: skip
        settings = (
            f"-k {self.root} -c listen_addresses= -p {self.port} -c fsync=off -c synchronous_commit=off "
            "-c full_page_writes=off -c max_connections=300 -c shared_buffers=64MB"
        )
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-l", str(self.root / "server.log"),
                  "-o", settings, "-w", "-t", "60", "start")  # fmt: skip

    def stop(self) -> None:
        try:
            self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@/{database}?host={self.root}&port={self.port}"

    def new_database(self) -> str:
        return new_database(self.url())


def new_database(admin_url: str) -> str:
    """Create an empty database beside ``admin_url``'s and return its URL."""
    import sqlalchemy as sa

    from matching.db import make_engine

    name = f"soundtrack_test_{os.getpid()}_{next(_counter)}"
    engine = make_engine(admin_url)
    try:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    finally:
        engine.dispose()
    url = sa.engine.make_url(admin_url)
    return url.set(database=name).render_as_string(hide_password=False)
