"""The page's Live tab: the analysed clip plays with a soundtrack composed live from its arc.

:class:`LiveService` holds the handlers (plain Python, testable without a browser);
:func:`build_live_tab` wires them to Gradio components inside the page's ``Blocks``.

* **Streamed score.** "Play live" starts a :class:`composer.live.LiveComposer` and a
  generator that, every ``CHUNK_S`` of music, sets the target to the clip's arc at that
  moment (plus the nudges below) and yields the chunk to a streaming ``gr.Audio``. The
  generator keeps at most ``AHEAD_S`` ahead of the wall clock, so a nudge reaches the
  music within about ``AHEAD_S`` + one beat of generated audio; the browser's buffering
  of the stream (Gradio encodes the chunks to MP3 segments) adds its own delay. The clip
  and the stream start together but are not locked to each other.
* **Follow my reactions** (opt-in, off by default). Only while the switch is on, the
  webcam component streams frames to this server every ``FRAME_EVERY_S``; each frame is
  read in memory with the faces source's expression model
  (:meth:`analysis.sources.faces.FaceExpression.faces`) and dropped. What is kept is one
  smoothed (valence, arousal) pair per browser session, forgotten after
  ``REACTION_TTL_S`` without a face and when the switch goes off. A red "camera on"
  indicator shows while the switch is on. The reaction moves the target by
  ``REACTION_WEIGHT`` times the viewer's expression (valence and arousal).
* **The clip's own sound** follows the first tab's choice, as the file mix does: ``auto`` plays a
  clip with speech (the analysis's speech stretches) with its own sound and mutes one without;
  ``keep`` always plays it; ``replace`` never. Where its speech plays, the live score steps back
  under it by ``duck_db - GAP_DB`` dB (the first tab's "Music under speech" slider; 10 dB at its
  default), with the file mix's ramps (:func:`analysis.media.dialogue.duck_curve`). The clip's
  level is the browser's, so the dip is relative to the music between lines, as in the file mix.
* **Taste.** What the viewer's ratings taught shifts the music lighter or darker: the
  mean over their rated tracks of (stars - 3) / 2 x the track's mean valence, times
  ``TASTE_GAIN``, capped at +-``TASTE_MAX``, is added to the valence target (positive:
  they rate bright tracks up and dark ones down). No ratings, no shift.
"""

from __future__ import annotations

import io
import logging
import threading
import time
import uuid
import wave
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from analysis.errors import ParameterError, SoundtrackError
from analysis.media.dialogue import GAP_DB, UNDER_DB, check_duck_db, duck_curve, keeps_clip_sound
from soundtrack.security import public_message
from soundtrack.service import SoundtrackService
from soundtrack.session import Session

log = logging.getLogger("soundtrack.live")

CHUNK_S = 0.5
AHEAD_S = 1.0
SAMPLE_RATE = 22050
FRAME_EVERY_S = 0.5
#: How far the live score dips under the clip's speech by default, against where nobody speaks (dB).
DIALOGUE_DIP_DB = UNDER_DB - GAP_DB
REACTION_WEIGHT = 0.35
REACTION_TTL_S = 3.0
TASTE_GAIN = 0.5
TASTE_MAX = 0.2
CAMERA_ON = ('<div id="camera-indicator" role="status" style="color:#b00020;font-weight:600">'
             '&#9679; Camera on: frames go only to this server, are read for expression and discarded. {detail}</div>')
CAMERA_OFF = '<div id="camera-indicator-off">Camera off.</div>'
#: The Live tab's status after Stop.
STOPPED = "Live: stopped. Press **Play live** to start again from the beginning."
#: ...and after a Stop with nothing playing (it said "stopped" before anything had played).
NOTHING_PLAYING = "Live: nothing is playing. Press **Play live** to play the analysed clip with a live score."
#: ...and once the score has played to the clip's end (the last chunk's "4.0 / 4.0 s" stayed on show).
PLAYED = "Live: played to the end ({duration:.1f} s). Press **Play live** to play it again."
#: How long Stop waits for the stream to take it (the stream looks between chunks, every ``CHUNK_S`` of music).
STOP_WAIT_S = 3.0
#: A run that Play live prepared but whose stream never began (the page was closed) is forgotten after this.
RUN_TTL_S = 120.0


@dataclass
class _Listener:
    """One browser session's live state: the smoothed reaction and when it was last read."""

    reaction: tuple[float, float] | None = None
    seen_at: float = 0.0
    camera: bool = False


@dataclass
class _Run:
    """One press of Play live: Stop's flag, and whether its stream has begun and has ended."""

    stop: threading.Event = field(default_factory=threading.Event)
    ended: threading.Event = field(default_factory=threading.Event)
    made: float = field(default_factory=time.monotonic)
    began: bool = False


def wav_bytes(audio: np.ndarray, sample_rate: int) -> bytes:
    """A stereo float chunk as 16-bit PCM WAV bytes, in memory."""
    pcm = (np.clip(audio, -1.0, 1.0) * 32767).astype("<i2")
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(pcm.shape[1] if pcm.ndim == 2 else 1)
        w.setsampwidth(2)
        w.setframerate(sample_rate)
        w.writeframes(pcm.tobytes())
    return buf.getvalue()


class LiveService:
    """Handlers of the Live tab over a :class:`SoundtrackService` (its library and feedback log)."""

    def __init__(self, service: SoundtrackService) -> None:
        self.service = service
        self._listeners: dict[str, _Listener] = {}
        self._lock = threading.Lock()
        self._faces: Any = None
        self._runs: dict[str, _Run] = {}

    def listener(self, key: str | None) -> tuple[str, _Listener]:
        with self._lock:
            key = key if key in self._listeners else uuid.uuid4().hex
            return key, self._listeners.setdefault(key, _Listener())

    # ------------------------------------------------------------------ the nudges
    def taste(self, token: object) -> float:
        """Valence shift learned from the ratings of the token's user (see the module docstring)."""
        try:
            data = self.service.feedback.export_user(self.service.user_of(token))
        except SoundtrackError:  # no valid id yet: no ratings to learn from
            return 0.0
        tracks = {(r["id"], c["position"]): c.get("track_id") for r in data["recommendations"] for c in r["candidates"]}
        terms = []
        for e in data["events"]:
            track = tracks.get((e["recommendation_id"], e["position"]))
            if e["kind"] != "rating" or track is None or e["value"] is None:
                continue
            try:
                mood = float(np.mean(self.service.library.arc(int(track)).valence))
            except (SoundtrackError, KeyError):
                continue  # the track left the library
            terms.append((float(e["value"]) - 3.0) / 2.0 * mood)
        return float(np.clip(TASTE_GAIN * np.mean(terms), -TASTE_MAX, TASTE_MAX)) if terms else 0.0

    def set_camera(self, key: str | None, on: bool) -> tuple[str, str]:
        """The switch: returns the session key and the indicator's HTML; off forgets the reaction."""
        key, who = self.listener(key)
        who.camera = bool(on)
        if not on:
            with self._lock:
                self._listeners.pop(key, None)  # forget the reaction (and the entry)
        return key, CAMERA_ON.format(detail="Waiting for a face.") if on else CAMERA_OFF

    def read_frame(self, key: str | None, frame: np.ndarray | None) -> str:
        """Read one webcam frame's expression into the session's reaction; the frame is not kept."""
        key, who = self.listener(key)
        if not who.camera:
            return CAMERA_OFF
        if frame is None or not isinstance(frame, np.ndarray) or frame.ndim not in (2, 3):
            return CAMERA_ON.format(detail="No frame yet.")
        if self._faces is None:
            from analysis.sources.faces import FaceExpression

            self._faces = FaceExpression()
        faces = self._faces.faces(np.ascontiguousarray(frame[..., :3]) if frame.ndim == 3 else frame)
        del frame
        if not faces:
            return CAMERA_ON.format(detail="No face in view.")
        face = max(faces, key=lambda f: f.weight)
        v, a = face.va
        with self._lock:
            old = who.reaction
            who.reaction = (v, a) if old is None else (0.5 * old[0] + 0.5 * v, 0.5 * old[1] + 0.5 * a)
            who.seen_at = time.monotonic()
        return CAMERA_ON.format(detail=f"You look: {face.expression}.")

    def target(self, clip: Any, t: float, key: str | None, taste: float) -> tuple[float, float]:
        """The clip's arc at ``t`` plus the taste and reaction nudges, within [-1, 1]."""
        arc = clip.arc
        v = float(np.interp(t, arc.times, arc.valence)) + taste
        a = float(np.interp(t, arc.times, arc.arousal))
        who = self._listeners.get(key or "")
        if who is not None and who.reaction is not None and time.monotonic() - who.seen_at < REACTION_TTL_S:
            v += REACTION_WEIGHT * who.reaction[0]
            a += REACTION_WEIGHT * who.reaction[1]
        return float(np.clip(v, -1, 1)), float(np.clip(a, -1, 1))

    # ------------------------------------------------------------------ the stream
    def begin(self) -> str:
        """A new run id for a Play live that found a clip (its stream takes it; Stop names it)."""
        now = time.monotonic()
        with self._lock:
            for old in [k for k, r in self._runs.items() if not r.began and now - r.made > RUN_TTL_S]:
                del self._runs[old]
            run = uuid.uuid4().hex
            self._runs[run] = _Run()
        return run

    def stop(self, run: str | None) -> bool:
        """Stop the run's stream; False when nothing of it is playing (it ended, or no such run).

        The stream takes it between chunks and sends :data:`STOPPED` as its last status; this waits
        (up to ``STOP_WAIT_S``) until it has. Stop's answer and the stream's chunks are separate
        events, and the page applies each event's messages in its own order: a chunk the page had
        not yet applied put its status over Stop's "stopped" (the live browser test failed so in
        full-suite runs). Now the stream's own last word is "stopped" too.
        """
        with self._lock:
            r = self._runs.get(run or "")
        if r is None or r.stop.is_set():  # it played to its end, was stopped already, or never was
            return False
        r.stop.set()  # a stream that has not begun yet begins stopped, and ends at once
        r.ended.wait(STOP_WAIT_S) if r.began else None
        return True

    def prepare(self, session: Session | None, clip_sound: str = "auto") -> tuple[str, bool]:
        """The clip to play beside the live score (the one analysed in the first tab, as players show it:
        its browser-playable copy when it needed one), and whether it plays with its own sound
        (``clip_sound``: ``auto`` only when people speak in it)."""
        if session is None or session.clip is None or session.video is None:
            raise ParameterError("analyse a clip in the first tab, then come back to play it live")
        return str(session.display or session.video), keeps_clip_sound(clip_sound, bool(_speech(session.clip)))

    def stream(self, session: Session | None, key: str | None, style: str, token: object, *, pace: bool = True,
               clip_sound: str = "auto", duck_db: float = UNDER_DB, run: str | None = None
               ) -> Iterator[tuple[bytes | None, str]]:
        """WAV chunks of the live score for the session's clip, with a one-line status. ``clip_sound`` and
        ``duck_db`` as the file mix takes them (the dip under speech is ``duck_db`` less GAP_DB); ``run``,
        the id :meth:`begin` gave (None: no Stop reaches this stream; it ends with the clip). It ends
        with ``(None, STOPPED)`` when stopped, else ``(None, PLAYED...)``: no audio, the last status."""
        with self._lock:
            mine = self._runs.get(run) if run else None
        if mine is None:
            yield from self._play(session, key, style, token, pace, clip_sound, duck_db, threading.Event())
            return
        mine.began = True
        try:
            yield from self._play(session, key, style, token, pace, clip_sound, duck_db, mine.stop)
        finally:  # ended, stopped, failed or closed by Gradio: Stop stops waiting, the run is forgotten
            mine.ended.set()
            with self._lock:
                self._runs.pop(run or "", None)

    def _play(self, session: Session | None, key: str | None, style: str, token: object, pace: bool,
              clip_sound: str, duck_db: float, halt: threading.Event) -> Iterator[tuple[bytes | None, str]]:
        from composer.live import LiveComposer

        dip = check_duck_db(duck_db) - GAP_DB
        _, with_sound = self.prepare(session, clip_sound)
        clip = session.clip
        taste = self.taste(token)
        live = LiveComposer(style=style or "cinematic", seed=0, sample_rate=SAMPLE_RATE)
        lean = "lighter" if taste > 0.01 else "darker" if taste < -0.01 else "neutral"
        speech = _speech(clip) if with_sound else ()
        dialogue = (f"; the clip's dialogue plays, the music {dip:g} dB down under it" if speech
                    else "; the clip's own sound plays with it" if with_sound else "")
        t0 = time.monotonic()
        try:
            while live.time < clip.duration - 1e-6 and not halt.is_set():
                v, a = self.target(clip, live.time, key, taste)
                live.update(v, a)
                start = live.time
                audio = live.render_next(min(CHUNK_S, clip.duration - live.time))
                if speech:
                    audio = duck_under(audio, speech, start, dip)
                status = (f"Live: {live.time:.1f} / {clip.duration:.1f} s, target valence {v:+.2f}, "
                          f"arousal {a:+.2f}; your ratings lean {lean} ({taste:+.2f}){dialogue}")
                yield wav_bytes(audio, SAMPLE_RATE), status
                if pace:  # a Stop wakes it
                    halt.wait(max(0.0, live.time - AHEAD_S - (time.monotonic() - t0)))
            yield None, STOPPED if halt.is_set() else PLAYED.format(duration=clip.duration)
        finally:
            live.close()


def _speech(clip: Any) -> tuple[tuple[float, float], ...]:
    return tuple(getattr(clip, "speech_regions", None) or ())


def duck_under(audio: np.ndarray, speech: tuple[tuple[float, float], ...], start: float,
               dip_db: float = DIALOGUE_DIP_DB) -> np.ndarray:
    """A chunk (n, channels) that starts ``start`` s into the clip, dipped by ``dip_db`` where ``speech``
    is (the curve is the file mix's, read from the chunk's start)."""
    shifted = tuple((s - start, e - start) for s, e in speech)
    duck = duck_curve(shifted, audio.shape[0], SAMPLE_RATE)
    gain = (10.0 ** (-dip_db * duck / 20.0)).astype(np.float32)
    return audio * (gain[:, None] if audio.ndim == 2 else gain)


def _message(err: Exception) -> str:
    if isinstance(err, SoundtrackError):
        return f"**Error:** {public_message(err)}"
    log.exception("live tab handler failed")
    return "**Error:** the server could not do that (it has been logged); try again or reload the page."


def build_live_tab(service: SoundtrackService, session: Any, token: Any, publish: Callable[[str], Any],
                   sound: tuple[Any, Any] | None = None) -> Any:
    """The Live tab, built inside the page's ``gr.Blocks`` (call it within ``with gr.Blocks()``).

    ``session`` and ``token`` are the page's ``gr.State`` and ``gr.BrowserState``; ``sound``, its
    clip-sound choice and "Music under speech" slider (None: their defaults);
    ``publish`` makes a server file fetchable by the page (the app's copy-to-cache policy).
    """
    import gradio as gr

    from composer.music.styles import STYLES
    from soundtrack.results import STYLE_NAMES, readable

    live = LiveService(service)

    def on_start(sess, clip_sound="auto"):
        try:
            video, with_sound = live.prepare(sess, clip_sound)
            return "", publish(video), with_sound, live.begin()
        except Exception as err:
            return _message(err), None, False, None

    def go_on(run):  # Play live refused (its message is on show): stop here, start no stream (the score's
        if not run:  # player was left showing "playing" at 0:00 / 0:00 beside the error)
            raise gr.Error("", visible=False, print_exception=False)

    def on_stream(sess, key, style, tok, run, clip_sound="auto", duck_db=UNDER_DB):
        try:
            for chunk, said in live.stream(sess, key, style, tok, clip_sound=clip_sound, duck_db=duck_db, run=run):
                yield gr.skip() if chunk is None else chunk, said
        except Exception as err:
            yield None, _message(err)

    def on_switch(key, on):
        key, html = live.set_camera(key, on)
        return key, html, gr.update(visible=bool(on))

    with gr.Tab("Live", elem_id="live-tab") as tab:
        gr.Markdown("Play the analysed clip with a score composed **live** from its arc. Optionally let the "
                    "music follow your reactions: your webcam frames go only to this server, are read for "
                    "facial expression and discarded; nothing is stored.")
        key = gr.State(None)
        with gr.Row():
            with gr.Column(scale=2):
                video = gr.Video(label="Clip", interactive=False, autoplay=True, elem_id="live-video")
                audio = gr.Audio(label="Live score", streaming=True, autoplay=True, interactive=False,
                                 elem_id="live-audio")
                status = gr.Markdown(elem_id="live-status")
            with gr.Column(scale=1):
                style = gr.Dropdown([(readable(n, STYLE_NAMES), n) for n in STYLES], value="cinematic", label="Style")
                start = gr.Button("Play live", variant="primary", elem_id="live-start")
                stop = gr.Button("Stop", elem_id="live-stop")
                follow = gr.Checkbox(False, label="Follow my reactions (uses your webcam)", elem_id="live-follow")
                indicator = gr.HTML(CAMERA_OFF, elem_id="live-indicator")
                cam = gr.Image(sources=["webcam"], streaming=True, type="numpy", label="Your camera (not stored)",
                               visible=False, elem_id="live-cam")
        with_sound = gr.Checkbox(False, visible=False, elem_id="live-clip-sound")  # the clip's dialogue plays
        mute = "(keep) => { const v = document.querySelector('#live-video video'); if (v) { v.muted = !keep; } }"
        controls = list(sound or ())
        run = gr.State(None)  # the id of the last Play live that found a clip (LiveService.begin)
        started = start.click(on_start, [session, *controls[:1]], [status, video, with_sound, run])
        checked = started.then(go_on, [run], None, concurrency_limit=None)  # light: see Stop below
        streaming = checked.success(None, [with_sound], None, js=mute).then(
            on_stream, [session, key, style, token, run, *controls], [audio, status], concurrency_limit=4)
        # Stop halts the clip as well as the score (the clip played on, with its dialogue), and says so;
        # with nothing playing it says that (it said "stopped"). The stream itself takes the stop before
        # the answer comes (LiveService.stop): Gradio cancels a stream only after this event has answered,
        # and a chunk in between put its status over "stopped".
        halt = ("(run) => { for (const m of document.querySelectorAll('#live-video video, #live-audio audio')) "
                "{ m.pause(); } return run; }")
        # light (no concurrency limit): a Stop must get through while camera frames fill the address's share of
        # the queue (security.QueueShare counts limited events; on a loaded machine Stop was refused, and the
        # score played on)
        stop.click(lambda r: STOPPED if live.stop(r) else NOTHING_PLAYING, [run], [status],
                   cancels=[streaming], js=halt, concurrency_limit=None)
        follow.change(on_switch, [key, follow], [key, indicator, cam])
        cam.stream(live.read_frame, [key, cam], [indicator], stream_every=FRAME_EVERY_S, concurrency_limit=4,
                   show_progress="hidden")
    return tab
