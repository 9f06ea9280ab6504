"""Shared fixtures: small generated clips with known cuts, brightness, motion and audio.

Clips are written once per test session with :mod:`mediagen` (next to this file) into
a session temporary folder. Each fixture returns a :class:`mediagen.KnownClip`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from dbfixtures import URL_ENV, PostgresServer, PostgresUnavailable, new_database
from mediagen import KnownClip, Shot, make_clip

FPS = 25


def _known(tmp_path_factory: pytest.TempPathFactory, name: str, shots: list[Shot], audio: str) -> KnownClip:
    path = tmp_path_factory.mktemp("clips") / name
    make_clip(path, shots=shots, fps=FPS, audio=audio)
    return KnownClip(path=path, shots=tuple(shots), fps=FPS, has_audio=audio != "none")


@pytest.fixture(scope="session")
def four_shot_clip(tmp_path_factory: pytest.TempPathFactory) -> KnownClip:
    """6.8 s, 4 shots of different colour and motion, cuts at frames 40, 75, 125; drone audio."""
    shots = [
        Shot(40, (200, 60, 50), motion=0.6),
        Shot(35, (40, 90, 180), motion=0.3),
        Shot(50, (70, 160, 70), motion=0.8),
        Shot(45, (150, 150, 150), motion=0.1),
    ]
    return _known(tmp_path_factory, "four_shots.mp4", shots, "drone")


@pytest.fixture(scope="session")
def bright_clip(tmp_path_factory: pytest.TempPathFactory) -> KnownClip:
    """4 s bright, saturated, warm, fast-moving picture in 4 short shots; loud percussion."""
    colors = [(250, 200, 40), (240, 50, 60), (250, 130, 20), (230, 60, 170)]
    shots = [Shot(25, c, motion=1.0) for c in colors]
    return _known(tmp_path_factory, "bright.mp4", shots, "percussion")


@pytest.fixture(scope="session")
def dark_clip(tmp_path_factory: pytest.TempPathFactory) -> KnownClip:
    """4 s dark, grey, perfectly still single shot; quiet drone."""
    return _known(tmp_path_factory, "dark.mp4", [Shot(100, (35, 35, 38), motion=0.0)], "drone")


@pytest.fixture(scope="session")
def silent_clip(tmp_path_factory: pytest.TempPathFactory) -> KnownClip:
    """3 s mid-grey clip with some motion and no audio stream at all."""
    return _known(tmp_path_factory, "silent.mp4", [Shot(75, (120, 120, 120), motion=0.4)], "none")


@pytest.fixture(scope="session")
def percussion_clip(tmp_path_factory: pytest.TempPathFactory) -> KnownClip:
    """4 s neutral picture with loud, fast percussion (150 BPM eighth notes)."""
    return _known(tmp_path_factory, "percussion.mp4", [Shot(100, (120, 120, 120), motion=0.3)], "percussion")


@pytest.fixture(scope="session")
def drone_clip(tmp_path_factory: pytest.TempPathFactory) -> KnownClip:
    """4 s neutral picture (same as ``percussion_clip``) with a quiet low drone."""
    return _known(tmp_path_factory, "drone.mp4", [Shot(100, (120, 120, 120), motion=0.3)], "drone")


# --------------------------------------------------------------------------- databases


@pytest.fixture(scope="session")
def postgres_admin_url() -> Iterator[str]:
    """URL of a PostgreSQL server for this session: ``SOUNDTRACK_TEST_POSTGRES_URL``, or one started here.

    Skipped, with the reason, only where PostgreSQL is not installed.
    """
    if os.environ.get(URL_ENV):
        yield os.environ[URL_ENV]
        return
    try:
        server = PostgresServer()
    except PostgresUnavailable as err:
        pytest.skip(str(err))
    server.start()
    try:
        yield server.url()
    finally:
        server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty database: an SQLite file path, or a new database on the session's PostgreSQL."""
    if request.param == "sqlite":
        return str(tmp_path / "lib.db")
    return new_database(request.getfixturevalue("postgres_admin_url"))


@pytest.fixture
def quiet_service(monkeypatch: pytest.MonkeyPatch) -> type:
    """``app.serve`` with a stand-in for its service: no models, no library, no cleanup thread."""
    import app

    class QuietService:
        def __init__(self, config, **_kw):
            pass

        def warm_up(self):
            return 0.0

        def cleanup(self):
            pass

        def start_sweeper(self):
            pass

    monkeypatch.setattr(app, "SoundtrackService", QuietService)
    return QuietService
