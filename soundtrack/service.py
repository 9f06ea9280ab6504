"""The app's request handlers as plain Python over the public API, loaded once per process.

:class:`SoundtrackService` holds everything that loads once (library, feedback log,
learner) and one method per user action; ``app.py`` only wires Gradio components to
these methods, so they are testable without a browser.

Limits and hygiene: uploads larger than ``max_upload_mb`` or longer than
``max_duration_s`` are refused with a message; a file that is not a readable video
raises a readable error; each browser session works in its own folder under
``work_dir/sessions``; a background sweeper removes session folders older than
``cleanup_age_s`` (never a shared folder, never per request).
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

import analysis
import matching
from analysis.errors import MediaError, ParameterError, SoundtrackError
from matching.feedback.learner import WeightLearner
from matching.feedback.log import FeedbackLog, clip_fingerprint
from matching.ranking.ranker import rank

log = logging.getLogger("soundtrack.service")

Progress = Callable[[float, str], None]


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
    cleanup_age_s: float = 6 * 3600.0
    k: int = 8
    hop: float = 0.5
    sources: tuple[str, ...] = ("visual", "audio")

    def __post_init__(self) -> None:
        for name in ("max_upload_mb", "max_duration_s", "cleanup_age_s", "hop"):
            if not getattr(self, name) > 0:
                raise ParameterError(f"`{name}` must be positive (received {getattr(self, name)})")
        if not 1 <= self.k <= 100:
            raise ParameterError(f"`k` must be within 1 and 100 (received {self.k})")

    @property
    def work(self) -> Path:
        return Path(self.work_dir) if self.work_dir is not None else default_home() / "app"


@dataclass
class Session:
    """One browser session's state: its folder and what it has been shown."""

    folder: Path
    video: Path | None = None
    clip: Any = None  # analysis.VideoAnalysis
    matches: list[Any] = field(default_factory=list)
    recommendation_id: int | None = None
    played: set[int] = field(default_factory=set)
    max_stretch: float = 1.25


@dataclass(frozen=True)
class AnalysisView:
    """What the results page shows after analysing and ranking a clip."""

    plot: Path
    table: list[list[Any]]
    choices: list[str]
    summary: str
    recommendation_id: int


@dataclass(frozen=True)
class ComposeView:
    """A composed score: the preview and the downloads."""

    video: Path
    midi: Path
    musicxml: Path | None
    wav: Path
    summary: str


TABLE_HEADERS = ["#", "title", "score", "DTW", "embedding", "start (s)", "stretch"]


def make_example_clip(path: Path, *, seconds_per_shot: float = 3.0, fps: int = 25) -> Path:
    """A small synthetic clip (three shots: calm blue, bright busy orange, dim grey, with a drone)."""
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".part.mp4")
    w, h, sr = 320, 180, 22050
    shots = [((30, 60, 140), 0.1), ((250, 150, 40), 1.0), ((70, 70, 70), 0.0)]
    rng = np.random.default_rng(0)
    with av.open(str(tmp), "w") as out:
        vs = out.add_stream("libx264", rate=fps)
        vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
        aus = out.add_stream("aac", rate=sr)
        n = int(seconds_per_shot * fps)
        for s, (colour, motion) in enumerate(shots):
            for i in range(n):
                img = np.empty((h, w, 3), np.uint8)
                img[:] = colour
                x = int((i * motion * 8 + 40 * s) % (w - 60))
                img[60:120, x : x + 60] = np.clip(np.array(colour) * 0.4, 0, 255)
                if motion:
                    img = np.clip(img + rng.normal(0, 12 * motion, img.shape), 0, 255).astype(np.uint8)
                out.mux(vs.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
        out.mux(vs.encode())
        t = np.arange(int(sr * seconds_per_shot * len(shots))) / sr
        tone = (0.2 * np.sin(2 * np.pi * 110 * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 0.5 * t))).astype(np.float32)
        for start in range(0, tone.size, 1024):
            frame = av.AudioFrame.from_ndarray(tone[None, start : start + 1024], format="fltp", layout="mono")
            frame.sample_rate = sr
            frame.time_base = Fraction(1, sr)
            frame.pts = start
            out.mux(aus.encode(frame))
        out.mux(aus.encode())
    tmp.replace(path)
    return path


def probe_video(path: Path) -> float:
    """Duration in seconds of a readable video, or a :class:`MediaError` naming the problem."""
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise MediaError(path.name, "has no video stream (is it a video file?)")
            stream = container.streams.video[0]
            if container.duration:
                return container.duration / 1_000_000
            if stream.duration and stream.time_base:
                return float(stream.duration * stream.time_base)
            frames = sum(1 for _ in container.decode(stream))
            return frames / float(stream.average_rate or 25)
    except MediaError:
        raise
    except (av.error.FFmpegError, OSError, ValueError) as err:
        raise MediaError(path.name, f"is not a readable video ({type(err).__name__})") from None


class SoundtrackService:
    """Loads the library, feedback log and learner once; handles every request of the page."""

    def __init__(self, config: AppConfig | None = None, *, progress: Progress | None = None) -> None:
        self.config = config or AppConfig()
        self.work = self.config.work
        (self.work / "sessions").mkdir(parents=True, exist_ok=True)
        if self.config.library is None:
            from matching.library.demo import demo_library

            report = progress or (lambda f, m: None)
            report(0.0, "opening the demo library (built on first start; this takes a minute or two)")

            def tick(done: int, total: int, title: str) -> None:
                report(done / total, f"demo library {done}/{total}: {title}")

            self.library = demo_library(progress=tick)
        else:
            self.library = matching.Library(self.config.library)
        self.feedback = FeedbackLog(self.library)
        self.learner = WeightLearner(self.feedback)
        self.learner.refresh()
        self._plot_lock = threading.Lock()
        self._sweeper: threading.Thread | None = None
        self._stop = threading.Event()

    # ------------------------------------------------------------------ sessions and hygiene
    def new_session(self) -> Session:
        folder = Path(tempfile.mkdtemp(prefix="s-", dir=self.work / "sessions"))
        return Session(folder=folder)

    def ensure_session(self, session: Session | None) -> Session:
        if session is None or not session.folder.is_dir():
            return self.new_session()
        return session

    def cleanup(self, *, now: float | None = None) -> int:
        """Remove session folders untouched for ``cleanup_age_s``; returns how many went."""
        cutoff = (now or time.time()) - self.config.cleanup_age_s
        removed = 0
        for folder in (self.work / "sessions").iterdir():
            try:
                newest = max([folder.stat().st_mtime, *(p.stat().st_mtime for p in folder.rglob("*"))])
            except FileNotFoundError:
                continue
            if folder.is_dir() and newest < cutoff:
                shutil.rmtree(folder, ignore_errors=True)
                removed += 1
        return removed

    def start_sweeper(self, every_s: float = 300.0) -> None:
        def loop() -> None:
            while not self._stop.wait(every_s):
                try:
                    self.cleanup()
                except OSError as err:  # a folder vanishing under us must not kill the sweeper
                    log.warning("cleanup failed: %s", err)

        self._sweeper = threading.Thread(target=loop, name="soundtrack-cleanup", daemon=True)
        self._sweeper.start()

    def example_clip(self) -> Path:
        path = self.work / "examples" / "three-shots.mp4"
        if not path.exists():
            make_example_clip(path)
        return path

    def warm_up(self) -> float:
        """Load every model and cache once (analysis sources, plotting, fitting) on the example clip.

        Nothing is logged to the feedback tables; the throwaway session folder is removed.
        Returns the seconds it took.
        """
        t0 = time.perf_counter()
        session = self.new_session()
        try:
            clip = analysis.analyze_video(self.example_clip(), hop=self.config.hop, sources=self.config.sources)
            from analysis.plot import plot_arc

            plot_arc(clip.arc, session.folder / "arc.png", cuts=tuple(clip.cuts))
            hits = rank(clip, self.library, k=1)
            if hits:
                from matching.fit import fit_to_clip

                fit_to_clip(hits[0].path, self.example_clip(), session.folder / "warm.mp4", start=hits[0].start,
                            stretch=hits[0].stretch)
        except SoundtrackError as err:  # a broken library track must not stop the app from starting
            log.warning("warm-up incomplete: %s", err)
        finally:
            shutil.rmtree(session.folder, ignore_errors=True)
        return time.perf_counter() - t0

    # ------------------------------------------------------------------ the clip
    def check_upload(self, path: str | Path) -> float:
        """Size and duration limits; returns the duration."""
        p = Path(path)
        if not p.is_file():
            raise MediaError(p.name, "was not received (upload it again)")
        mb = p.stat().st_size / 1e6
        if mb > self.config.max_upload_mb:
            raise MediaError(p.name, f"is {mb:.0f} MB; the limit is {self.config.max_upload_mb:.0f} MB")
        duration = probe_video(p)
        if duration > self.config.max_duration_s:
            raise MediaError(p.name, f"lasts {duration:.0f} s; the limit is {self.config.max_duration_s:.0f} s")
        if duration <= 0:
            raise MediaError(p.name, "has no frames")
        return duration

    def analyse(
        self,
        session: Session,
        video: str | Path,
        *,
        user_id: str,
        content_type: str = "general",
        progress: Progress | None = None,
    ) -> AnalysisView:
        """Analyse the clip, rank the library with the learner's weights, log what is shown."""
        report = progress or (lambda f, m: None)
        # Forget the previous clip first, so an error leaves no stale list to rate.
        session.clip, session.matches, session.recommendation_id, session.played = None, [], None, set()
        if not video:
            raise ParameterError("upload a clip (or use the example clip) first")
        self.check_upload(video)
        src = Path(video)
        local = session.folder / f"clip{src.suffix.lower() or '.mp4'}"
        shutil.copyfile(src, local)
        clip = analysis.analyze_video(
            local,
            hop=self.config.hop,
            sources=self.config.sources,
            content_type=content_type,
            progress=lambda f, m: report(0.7 * f, f"analysing: {m}"),
        )
        report(0.75, "ranking the library")
        self.learner.refresh()
        weights = self.learner.sample_weights(content_type, user_id)
        ranking = rank(clip, self.library, k=self.config.k, weights=weights)
        matches = list(ranking)
        report(0.9, "drawing the arc")
        from analysis.plot import plot_arc

        with self._plot_lock:  # pyplot keeps global state: one figure at a time
            plot = plot_arc(clip.arc, session.folder / "arc.png", cuts=tuple(clip.cuts), title=src.name)
        rec = self.feedback.log_recommendation(
            user_id=user_id,
            clip_fingerprint=clip_fingerprint(local),
            candidates=matches,
            weights=weights.to_dict(),
            content_type=content_type,
        )
        session.max_stretch = weights.max_stretch
        session.video, session.clip, session.matches = local, clip, matches
        session.recommendation_id, session.played = rec, set()
        table = [
            [i + 1, m.title, round(m.score, 3), round(m.dtw_score, 3), round(m.embedding_score, 3),
             round(m.start, 2), round(m.stretch, 3)]
            for i, m in enumerate(matches)
        ]
        choices = [f"{i + 1}. {m.title}" for i, m in enumerate(matches)]
        best = f"best fit {matches[0].score:.2f}" if matches else "the library is empty"
        if getattr(ranking, "compose_instead", False):
            best += " (no track fits well: try **Compose instead** below)"
        dominant = clip.arc.dominant_emotion()
        n_cuts = len(clip.cuts)
        summary = (
            f"{clip.duration:.1f} s, {n_cuts} cut{'s' * (n_cuts != 1)}, mostly "
            f"{max(set(dominant), key=dominant.count)}; {best}"
        )
        report(1.0, "done")
        return AnalysisView(plot=Path(plot), table=table, choices=choices, summary=summary, recommendation_id=rec)

    def _position(self, session: Session | None, choice: str | int | None) -> int:
        if session is None or not session.matches:
            raise ParameterError("analyse a clip first (no ranked tracks yet)")
        try:
            pos = int(choice) if isinstance(choice, int) else int(str(choice).split(".", 1)[0]) - 1
        except ValueError:
            raise ParameterError(f"pick a track from the list (received {choice!r})") from None
        if not 0 <= pos < len(session.matches):
            raise ParameterError(f"track number must be within 1 and {len(session.matches)} (received {pos + 1})")
        return pos

    def preview(self, session: Session, choice: str | int) -> Path:
        """The clip with the chosen track's fitted section as its soundtrack."""
        pos = self._position(session, choice)
        from matching.fit import fit_to_clip

        m = session.matches[pos]
        out = session.folder / f"preview-{pos + 1}.mp4"
        if not out.exists():
            fit_to_clip(m.path, session.video, out, start=m.start, stretch=m.stretch, max_stretch=session.max_stretch)
        return out

    def event(self, session: Session | None, kind: str, choice: str | int | None = None, *,
              value: float | None = None, duration: float | None = None) -> int:
        """Log a listener action on the current recommendation; ``play`` of a played track is a replay."""
        if session is None or session.recommendation_id is None:
            raise ParameterError("analyse a clip first (nothing to rate yet)")
        pos = None if choice is None else self._position(session, choice)
        if kind == "play" and pos is not None:
            kind = "replay" if pos in session.played else "play"
            session.played.add(pos)
        return self.feedback.log_event(session.recommendation_id, kind, position=pos, value=value, duration=duration)

    def rate(self, session: Session | None, choice: str | int, rating: int | str) -> str:
        try:
            stars = int(rating)
        except (TypeError, ValueError):
            raise ParameterError(f"choose a rating from 1 to 5 (received {rating!r})") from None
        self.event(session, "rating", choice, value=stars)
        return f"Thanks: {session.matches[self._position(session, choice)].title} rated {stars}/5."

    def compose(
        self,
        session: Session,
        *,
        style: str = "cinematic",
        instrument: str | None = None,
        tempo: float | None = None,
        energy: float | None = None,
        seed: int = 0,
    ) -> ComposeView:
        """Compose for the current clip; logs "compose instead" against the shown list."""
        import composer

        if session.clip is None:
            raise ParameterError("analyse a clip first (nothing to compose for)")
        if session.recommendation_id is not None:
            self.feedback.log_event(session.recommendation_id, "compose_instead")
        clip = session.clip
        piece = composer.compose(
            clip.arc, cuts=clip.cuts, duration=clip.duration, style=style, instrument=instrument or None,
            seed=int(seed), tempo=tempo or None, energy=energy,
        )
        stem = session.folder / f"composed-{style}-{int(seed)}"
        midi = piece.write_midi(stem.with_suffix(".mid"))
        try:
            xml: Path | None = piece.write_musicxml(stem.with_suffix(".musicxml"))
        except SoundtrackError as err:
            log.warning("MusicXML export failed: %s", err)
            xml = None
        wav = piece.render(stem.with_suffix(".wav"))
        mp4 = piece.mux(session.video, stem.with_suffix(".mp4"), wav=wav)
        return ComposeView(video=mp4, midi=midi, musicxml=xml, wav=wav,
                           summary=f"{piece.style}, {piece.instrument_name}, {len(piece.chord_times)} chord changes")

    # ------------------------------------------------------------------ the library
    def add_tracks(self, paths: Sequence[str | Path]) -> str:
        added, failed = [], []
        for p in paths:
            try:
                added.append(self.library.add(p, title=Path(p).stem).title)
            except SoundtrackError as err:
                failed.append(str(err))
        return f"added {len(added)} track(s)" + (f"; skipped: {'; '.join(failed)}" if failed else "")

    def add_folder(self, folder: str) -> str:
        report = self.library.add_folder(Path(folder).expanduser(), progress=False)
        return str(getattr(report, "summary", report))

    def catalogue(self) -> list[list[Any]]:
        return [
            [r.id, r.title, r.kind, round(r.duration, 1), r.tempo and round(r.tempo), r.key, r.mode, ", ".join(r.tags)]
            for r in self.library.list()
        ]


CATALOGUE_HEADERS = ["id", "title", "kind", "duration (s)", "tempo", "key", "mode", "tags"]
