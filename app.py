"""The web page: upload a clip, see its emotional arc, hear ranked tracks on the video, rate them.

``soundtrack serve`` starts it (127.0.0.1:7860 by default; ``--share-lan`` listens on
0.0.0.0). Everything that loads once and every handler lives in
:class:`soundtrack.service.SoundtrackService`; this module only lays out Gradio
components and wires them to it. Gradio is imported only here.

Files: nothing under the work folder is served by path. A file a handler returns is
copied into Gradio's upload cache under a folder named by the hash of its bytes
(:func:`_publish`), so a visitor can fetch only the files their own session was shown.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from analysis.errors import ParameterError, SoundtrackError
from soundtrack import results
from soundtrack.argtypes import safe_stem
from soundtrack.clips import not_a_clip, not_subtitles, too_big
from soundtrack.page.assets import CLEAR_ERRORS_JS, CSS, DISMISS_JS, REFUSED_JS, SKIP_JS, upload_guard_js
from soundtrack.page.live import build_live_tab
from soundtrack.page.visits import sweeper
from soundtrack.security import client_address, private_copy, public_message, start_lines
from soundtrack.service import TABLE_HEADERS, SoundtrackService
from soundtrack.session import (
    CATALOGUE_HEADERS,
    EXAMPLE_CREDIT,
    EXCERPT_S,
    AppConfig,
    catalogue_table,
    excerpt_label,
    export_name,
    shipped_example,
)

log = logging.getLogger("soundtrack.app")

#: The page's choices for the clip's own sound under a preview or a composed score.
CLIP_SOUND_CHOICES = [("Keep its dialogue, music ducked under speech", "auto"),
                      ("Keep all of it under the music", "keep"), ("Replace it with the music", "replace")]
#: The track list's value while no clip is analysed (a cleared value would leave the last pick on show).
NO_TRACK = "(none)"
UNEXPECTED = "**Error:** the server could not do that (it has been logged); try again or reload the page."


def _error(err: Exception) -> str:
    return f"**Error:** {public_message(err)}" if isinstance(err, SoundtrackError) else UNEXPECTED


def _publish(path: str | Path | None, as_name: str | None = None) -> str | None:
    """A copy of ``path`` in Gradio's cache, in a folder named by the hash of its bytes (see module doc),
    under the name ``as_name`` when given: what a download of it is called (Session.download_name)."""
    if path is None:
        return None
    from gradio import processing_utils, utils

    if as_name and Path(as_name).name == as_name and as_name != Path(path).name:
        with tempfile.TemporaryDirectory(dir=Path(path).parent) as named:  # the same bytes under that name
            try:
                os.link(path, Path(named) / as_name)
            except OSError:  # a file system without hard links
                shutil.copyfile(path, Path(named) / as_name)
            return _publish(Path(named) / as_name)
    return private_copy(processing_utils.save_file_to_cache(path, utils.get_upload_folder()))  # 0600: security.py


def _unpublish(name: str) -> None:
    """Remove every copy named ``name`` that :func:`_publish` handed out (a data export whose data was deleted),
    with its hash-named folder when nothing else is in it."""
    from gradio import utils

    for copy in Path(utils.get_upload_folder()).glob(f"*/{name}"):
        copy.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            copy.parent.rmdir()


def _guard(on_error: Callable[[str], Any]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Turn any exception of a handler into ``on_error(message)``: no traceback reaches the page."""

    def wrap(handler: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(handler)
        def run(*args: Any, **kwargs: Any) -> Any:
            try:
                return handler(*args, **kwargs)
            except Exception as err:
                if not isinstance(err, SoundtrackError):
                    log.exception("handler %s failed", handler.__name__)
                return on_error(_error(err))

        return run

    return wrap


def _score_tab(gr: Any) -> dict[str, Any]:
    from analysis.media.dialogue import MAX_DUCK_DB, MIN_DUCK_DB, UNDER_DB
    from analysis.presets import PRESETS as CONTENT_PRESETS
    from analysis.sources import DEFAULT_SOURCES
    from analysis.text.sidecar import SIDECAR_SUFFIXES

    c: dict[str, Any] = {}
    with gr.Row():
        with gr.Column(scale=1):
            c["video"] = gr.Video(label="Clip", sources=["upload"], elem_id="clip")
            c["clip_note"] = gr.Markdown(elem_id="clip-note")  # what the player shows, when not the upload
            c["refused"] = gr.Textbox(visible="hidden", elem_id="clip-refused")  # a file an upload box refused,
            c["refused_size"] = gr.Number(visible="hidden", elem_id="clip-refused-size")  # (its size: too big)
            c["clip_refuse_btn"] = gr.Button(visible="hidden", elem_id="clip-refuse-btn")  # named by the guard
            c["example"] = gr.Button("Use the example clip", size="sm", elem_id="example-btn")
            if shipped_example() is not None:
                gr.Markdown(f"<small>Example: {EXAMPLE_CREDIT}.</small>")
            c["subtitles"] = gr.File(label="Subtitles (optional .srt, .vtt or .ass)", type="filepath", height=130,
                                     file_types=list(SIDECAR_SUFFIXES), elem_id="subtitles")
            c["subtitles_note"] = gr.Markdown(elem_id="subtitles-note")  # a file the box refused (REFUSALS)
            c["subtitles_refuse_btn"] = gr.Button(visible="hidden", elem_id="subtitles-refuse-btn")
            c["content_type"] = gr.Dropdown([(results.readable(n, results.CONTENT_NAMES), n) for n in CONTENT_PRESETS],
                                            value="general", label="Content type")
            c["sources"] = gr.CheckboxGroup(list(DEFAULT_SOURCES), value=list(DEFAULT_SOURCES), elem_id="sources",
                                            label="Read from (faces, speech, subtitles switch off without evidence)")
            c["clip_sound"] = gr.Radio(CLIP_SOUND_CHOICES, value="auto", label="The clip's own sound",
                                       info="a clip without speech has its sound replaced unless you keep all of it",
                                       elem_id="clip-sound")
            c["duck"] = gr.Slider(MIN_DUCK_DB, MAX_DUCK_DB, value=UNDER_DB, step=1, elem_id="duck",
                                  label="Music under speech (dB below the dialogue)",
                                  info="how far the music steps back while people speak, when their dialogue is kept")
            c["analyse"] = gr.Button("Analyse and rank", variant="primary", elem_id="analyse")
            c["error"] = gr.Markdown(elem_id="error")  # next to the button it answers
        with gr.Column(scale=2):
            c["summary"] = gr.Markdown(elem_id="summary")
            gr.Markdown("**Why it fits:** the clip's valence and arousal (solid) and the chosen track's section "
                        "(dashed, warped onto the clip), with the section marked on the track's own timeline.")
            gr.Markdown("<small>Swipe the plot sideways for the rest of it (the later scenes and the legend), or "
                        "open it full screen with its corner button.</small>", elem_id="plot-hint")  # phone only
            c["plot"] = gr.Image(show_label=False, type="filepath", elem_id="arc-plot")
    # Pixel widths: all six columns on a laptop; a phone scrolls the table sideways.
    gr.Markdown("<small>Swipe the table sideways for each track's tags, the section used and the speed change."
                "</small>", elem_id="ranked-hint")  # phone only (CSS)
    c["table"] = gr.Dataframe(headers=TABLE_HEADERS, label="Ranked tracks (fit: 0-100 against the library for "
                              "this clip, and how well it fits)", interactive=False, wrap=True, elem_id="ranked",
                              column_widths=["100px", "270px", "180px", "260px", "130px", "120px"])
    c["ranked_note"] = gr.Markdown(elem_id="ranked-note")  # a track the list lifted one place, and why
    with gr.Row():
        with gr.Column(scale=1, elem_id="pick-col"):  # on a phone: the player after the preview button (CSS)
            c["choice"] = gr.Dropdown([], label="Track", elem_id="choice", allow_custom_value=True)  # a stale pick is
            # answered by the handler ("analyse a clip first"), not by a Gradio toast
            c["preview_btn"] = gr.Button("Preview on the video", elem_id="preview-btn")
            c["preview_error"] = gr.Markdown(elem_id="preview-error")
            c["skip"] = gr.Button("Skip to the next track", size="sm", elem_id="skip-btn")
            c["alone_btn"] = gr.Button("Hear the track alone", size="sm", elem_id="alone-btn")
            c["alone"] = gr.Audio(label="The track alone (the section used)", type="filepath", interactive=False,
                                  autoplay=True, elem_id="alone")  # "Hear": it plays (it only loaded)
            c["rating"] = gr.Radio(["1", "2", "3", "4", "5"], label="Your rating", elem_id="rating")
            c["rate_btn"] = gr.Button("Submit rating", elem_id="rate-btn")
            c["feedback_note"] = gr.Markdown(elem_id="feedback-note")
        with gr.Column(scale=2, elem_id="preview-col"):
            c["preview"] = gr.Video(label="Preview", interactive=False, elem_id="preview")
    return c


def _compose_box(gr: Any) -> dict[str, Any]:
    import pretty_midi

    from composer.music.styles import STYLES

    gm = [pretty_midi.program_to_instrument_name(p) for p in range(128)]
    c: dict[str, Any] = {}
    with gr.Accordion("Compose instead", open=False, elem_id="compose-box") as box:
        c["compose_box"] = box
        with gr.Row():
            c["style"] = gr.Dropdown([(results.readable(n, results.STYLE_NAMES), n) for n in STYLES],
                                     value="cinematic", label="Style", info=STYLES["cinematic"].description,
                                     elem_id="style")
            # Empty by default: a default shown as text took the typing ("The style's own leadcello" found
            # nothing, and the piece was composed with the style's lead).
            c["instrument"] = gr.Dropdown([("The style's own lead", "")] + [(n, n) for n in gm], value=None,
                                          filterable=True, label="Lead instrument (type to search)",
                                          info="Empty: the style's own lead", elem_id="instrument")
            c["tempo"] = gr.Number(0, label="Tempo bpm (0: from the clip)")
            c["energy"] = gr.Slider(-1, 1, 0, step=0.1, label="Energy",
                                    info="-1 calmer and sparser, +1 busier and faster than the clip alone suggests")
            # no minimum: Gradio refused -1 in a pop-up of its own, the last compose's note left on show beside it
            c["seed"] = gr.Number(0, label="Seed", precision=0, step=1,
                                  info="the same seed gives the same piece; change it for another take")
        c["compose_btn"] = gr.Button("Compose", elem_id="compose-btn")
        c["compose_note"] = gr.Markdown(elem_id="compose-note")
        c["composed"] = gr.Video(label="Composed score on the video", interactive=False, elem_id="composed")
        c["downloads"] = gr.File(label="MIDI, MusicXML, WAV, MP4 and the stems (one WAV per part, zipped)",
                                 file_count="multiple", elem_id="downloads")
    return c


def _library_tab(gr: Any, service: SoundtrackService) -> dict[str, Any]:
    c: dict[str, Any] = {"lib_note": gr.Markdown(elem_id="lib-note")}
    if service.config.allow_uploads:
        c["uploads"] = gr.File(label="Add audio or MIDI tracks", file_count="multiple", elem_id="track-upload")
        c["add_btn"] = gr.Button("Add uploaded tracks", elem_id="add-btn")
    else:
        gr.Markdown("Adding tracks is switched off on this server.")
    if service.config.index_roots:  # absent unless the operator named folders (`serve --index-root`)
        c["folder"] = gr.Textbox(label="Or index a folder (inside the folders this server allows)",
                                 elem_id="index-folder")
        c["folder_btn"] = gr.Button("Index folder", elem_id="index-btn")
    gr.Markdown("<small>Swipe the table sideways for each track's duration, tempo, key, mode and tags.</small>",
                elem_id="catalogue-hint")  # phone only (CSS)
    c["catalogue"] = gr.Dataframe(headers=CATALOGUE_HEADERS, label="Catalogue (click a row to hear the track)",
                                  interactive=False, elem_id="catalogue")
    # autoplay: "click a row to hear the track" (a click only loaded the player, below the table and off screen)
    c["lib_audio"] = gr.Audio(label=f"The track you click (its first {EXCERPT_S:g} s)", type="filepath",
                              interactive=False, autoplay=True, elem_id="lib-audio")
    return c


def _data_box(gr: Any) -> dict[str, Any]:
    c: dict[str, Any] = {}
    with gr.Accordion("Your data", open=False):
        gr.Markdown("Everything this server stored about your anonymous id: the lists shown to you and what "
                    "you did with them.")
        with gr.Row():
            c["export_btn"] = gr.Button("Download my data", elem_id="export-btn")
            c["confirm"] = gr.Checkbox(label="Yes, delete everything stored about my id", elem_id="delete-confirm")
            c["delete_btn"] = gr.Button("Delete my data", variant="stop", elem_id="delete-btn")
        c["data_note"] = gr.Markdown(elem_id="data-note")
        c["data_file"] = gr.File(label="Your data (JSON)", elem_id="data-file")
    return c


def _no_list(gr: Any) -> Any:
    return gr.update(choices=[("no tracks listed: analyse a clip", NO_TRACK)], value=NO_TRACK)


#: The upload boxes whose wrong files the page answers itself, in place of Gradio's pop-up (element id -> the
#: note under the box and the answer's words); what each box takes is in build_ui (page.assets.upload_guard_js).
REFUSALS = {"clip": ("clip_note", not_a_clip), "subtitles": ("subtitles_note", not_subtitles)}


#: The composed score, its files and the track heard alone belong to one clip: cleared when another
#: is chosen or analysed, so nothing of the last clip stays on show.
GONE = (None, None, None)


def _wire_new_clip(gr: Any, service: SoundtrackService, c: dict[str, Any]) -> None:
    """A clip uploaded, the example chosen or the clip cleared: the old results go, and an upload the
    browser cannot play is shown through a small copy."""
    no_list, gone = _no_list(gr), GONE

    @_guard(lambda msg: ("", None, None, no_list, "", None, "", "", None, "", "", *gone, ""))
    def on_new_clip(session, video):  # an upload, the example, or the clip cleared: the old results go
        if session is not None:
            session.put_on_page(video)  # an analysis of another clip still running is not shown
        if session is not None and session.is_view(video):  # the upload's look-only copy, put in its place
            return (gr.update(),) * 15
        service.forget_clip(session)
        # The note under an upload is the upload handler's (its problem, or ""): this event runs beside it, and
        # its "" came last for a clip over the length limit, which then said nothing until Analyse was pressed.
        note = "" if video is None else gr.update()
        return ("", None, None, no_list, "", None, "", "", None, "", note, *gone, "")

    def no_pick(session, video):  # the new clip's track box reads "(none)", unless its list came first
        # (a quick analysis on a busy server ended before this step: the list showed with "(none)" picked)
        if session is not None and (session.is_view(video) or session.lists(video)):
            return gr.update()
        return gr.update(value=NO_TRACK)

    @_guard(lambda msg: (gr.update(), gr.update(), msg))
    def on_upload(session, video, progress=gr.Progress()):  # noqa: B008  # a clip the browser cannot play:
        session = service.ensure_session(session)  # a small copy to look at in its place, its making shown
        shown = service.show_upload(session, video, progress=lambda f, m: progress(f, desc=m)) if video else None
        if shown is None:
            return session, gr.update(), ""
        return session, _publish(shown[0]), (f"Your browser cannot play this clip ({shown[1]}): shown as a small "
                                              "copy; the analysis reads the clip itself.")

    c["example"].click(_guard(lambda msg: (None, msg))(lambda: (_publish(service.example_clip()), "")), None,
                       [c["video"], c["clip_note"]])  # the last upload's note goes with it
    uploads = service.config.allow_uploads
    most_mb = service.config.max_upload_mb

    def refused(name: str, size: float | None, answer: Callable[..., str]) -> str:  # a file too big, else wrong
        return too_big(name, size, most_mb) if size else answer(name, library_uploads=uploads)

    for box, (note, answer) in REFUSALS.items():  # a wrong file in an upload box: said under it
        on_refused = _guard(lambda msg: msg)(functools.partial(refused, answer=answer))
        c[f"{box}_refuse_btn"].click(on_refused, [c["refused"], c["refused_size"]], c[note], js=REFUSED_JS,
                                     queue=False)
    c["subtitles"].change(lambda: "", None, c["subtitles_note"], queue=False)  # another file: the note is stale
    c["video"].change(on_new_clip, [c["session"], c["video"]],
                      [c["error"], c["plot"], c["table"], c["choice"], c["summary"], c["preview"], c["feedback_note"],
                       c["preview_error"], c["rating"], c["compose_note"], c["clip_note"], c["composed"],
                       c["downloads"], c["alone"], c["ranked_note"]]
                      ).then(no_pick, [c["session"], c["video"]], c["choice"])  # after the choices, or the page
    # would keep showing the last pick
    c["video"].upload(on_upload, [c["session"], c["video"]], [c["session"], c["video"], c["clip_note"]],
                      trigger_mode="always_last").then(None, None, None, js=DISMISS_JS)


def _wire_clip(gr: Any, service: SoundtrackService, c: dict[str, Any]) -> None:
    """Analyse, preview, listen, skip and rate; every success clears the messages it makes stale. The preview
    player holds only a track on the video: the clip alone is in the clip's player (its small copy when the
    browser cannot play the upload), and a play in the preview player is logged as a play of the track."""
    no_list, gone = _no_list(gr), GONE

    @_guard(lambda msg: (None, msg, None, None, no_list, "", None, "", "", "", gr.update(), None, *gone, gr.update(),
                         ""))
    def on_analyse(video, subtitles, content_type, sources, token, session, progress=gr.Progress()):  # noqa: B008
        session = service.ensure_session(session)
        progress(0.0, desc="checking the upload")
        try:
            view = service.analyse(session, video, user=token, content_type=content_type, sources=sources,
                                   subtitles=subtitles, progress=lambda f, m: progress(f, desc=m))
        except SoundtrackError as err:
            return (session, _error(err), None, None, no_list, "", None, "", "", "", gr.update(), None, *gone,
                    gr.update(), "")
        first = view.choices[0] if view.choices else None
        return (session, "", _publish(view.plot), view.table, gr.update(choices=view.choices, value=first),
                view.summary, None, "", "", "", gr.update(open=view.compose_instead), None,
                *gone, session.key, view.table_note)  # the browser keeps the key: a reload brings the list back

    @_guard(lambda msg: (msg, None))
    def on_preview(session, choice, clip_sound, duck_db):
        session = service.ensure_session(session)
        made = service.preview(session, choice, clip_sound, duck_db)
        return "", _publish(made, session.download_name(made))  # "harbour-bright-march-auto.mp4"

    @_guard(lambda msg: (msg, gr.update(), None, None, None))
    def on_choose(session, choice):  # a new track: its own plot, no old rating, no other track's preview or audio
        return "", _publish(service.why(session, choice)), None, None, None

    @_guard(lambda msg: None)
    def on_listen(session, choice, kind):
        service.event(session, kind, choice)

    @_guard(lambda msg: (msg, gr.update(), gr.update(), gr.update(), gr.update(), gr.update()))
    def on_skip(session, choice, position, length, clip_sound, duck_db):
        service.event(session, "skip", choice, value=position or 0.0, duration=length or None)
        note = f"Skipped at {float(position or 0):.1f} s."
        choices = [f"{i + 1}. {m.title}" for i, m in enumerate(session.matches)]
        pos = choices.index(choice) if choice in choices else len(choices) - 1
        if pos + 1 >= len(choices):
            return note + " That was the last track: try **Compose instead** below.", gr.update(), None, None, \
                gr.update(), None
        nxt = choices[pos + 1]
        made = service.preview(session, nxt, clip_sound, duck_db)
        preview = _publish(made, session.download_name(made))
        return (note + f" Now: {nxt}.", gr.update(value=nxt), None, preview, _publish(service.why(session, nxt)),
                None)

    @_guard(lambda msg: (msg, None))
    def on_alone(session, choice):
        session = service.ensure_session(session)
        made = service.hear_alone(session, choice)
        return "", _publish(made, session.download_name(made))

    @_guard(lambda msg: msg)
    def on_rate(session, choice, rating):
        return service.rate(session, choice, rating)

    c["analyse"].click(on_analyse, [c["video"], c["subtitles"], c["content_type"], c["sources"], c["token"],
                                    c["session"]],
                       [c["session"], c["error"], c["plot"], c["table"], c["choice"], c["summary"], c["preview"],
                        c["feedback_note"], c["preview_error"], c["compose_note"], c["compose_box"], c["rating"],
                        c["composed"], c["downloads"], c["alone"], c["saved"], c["ranked_note"]],
                       api_name="analyse", trigger_mode="always_last")  # a press while it runs: its settings
    # next ("once" dropped it, and the first list stayed under the settings of the second press)
    # the depth under speech means nothing when the clip's sound is replaced
    c["clip_sound"].change(lambda choice: gr.update(interactive=choice != "replace"), c["clip_sound"], c["duck"])
    c["preview_btn"].click(on_preview, [c["session"], c["choice"], c["clip_sound"], c["duck"]],
                           [c["preview_error"], c["preview"]], api_name="preview")
    c["choice"].input(on_choose, [c["session"], c["choice"]], [c["preview_error"], c["plot"], c["rating"],
                                                               c["preview"], c["alone"]])
    c["preview"].play(lambda s, ch: on_listen(s, ch, "play"), [c["session"], c["choice"]], None)
    c["preview"].end(lambda s, ch: on_listen(s, ch, "complete"), [c["session"], c["choice"]], None)
    pos, length = gr.Number(visible=False), gr.Number(visible=False)
    c["skip"].click(on_skip, [c["session"], c["choice"], pos, length, c["clip_sound"], c["duck"]],
                    [c["feedback_note"], c["choice"], c["rating"], c["preview"], c["plot"], c["alone"]], js=SKIP_JS)
    c["alone_btn"].click(on_alone, [c["session"], c["choice"]], [c["preview_error"], c["alone"]])
    c["rate_btn"].click(on_rate, [c["session"], c["choice"], c["rating"]], c["feedback_note"], api_name="rate",
                        concurrency_limit=None)  # one short write: no need to queue behind analyses


def _wire_restore(gr: Any, service: SoundtrackService, c: dict[str, Any], loaded: Any) -> None:
    """After ``loaded`` (the page's load): the clip, plot, table, summary and the settings of this browser's
    last list, when the server still holds them (a reload otherwise starts afresh)."""
    outputs = [c["session"], c["video"], c["plot"], c["table"], c["choice"], c["summary"], c["preview"],
               c["compose_box"], c["content_type"], c["sources"], c["ranked_note"]]

    @_guard(lambda msg: (gr.update(),) * len(outputs))
    def on_restore(saved, token):
        found = service.restore(saved, token)
        if found is None:
            return (gr.update(),) * len(outputs)
        session, view, clip = found
        first = view.choices[0] if view.choices else None
        return (session, _publish(clip), _publish(view.plot), view.table, gr.update(choices=view.choices, value=first),
                view.summary, None, gr.update(open=view.compose_instead), view.asked[0],
                list(view.asked[1]), view.table_note)  # a list: Gradio reads a tuple as no box ticked

    loaded.then(on_restore, [c["saved"], c["token"]], outputs)


def _wire_compose_and_data(gr: Any, service: SoundtrackService, c: dict[str, Any]) -> None:
    from composer.music.styles import STYLES

    @_guard(lambda msg: (msg, None, None))
    def on_compose(session, style, instrument, tempo, energy, seed, clip_sound, duck_db,
                   progress=gr.Progress()):  # noqa: B008
        view = service.compose(service.ensure_session(session), style=style, instrument=instrument or None,
                               tempo=tempo, energy=energy, seed=seed if seed is not None else 0,
                               progress=lambda f, m: progress(f, desc=m), clip_sound=clip_sound, duck_db=duck_db)
        files = [_publish(p) for p in (view.midi, view.musicxml, view.wav, view.video, view.stems) if p is not None]
        return view.summary, _publish(view.video), files

    @_guard(lambda msg: None)
    def on_download(session):
        if session and session.recommendation_id is not None:
            service.event(session, "download")  # a composed file

    @_guard(lambda msg: (msg, None))
    def on_export(session, token):
        path = service.export_my_data(service.ensure_session(session), token)
        return "Your data is ready below.", _publish(path)

    @_guard(lambda msg: (msg, gr.update(), gr.update()))
    def on_delete(token, confirmed, session):
        if not confirmed:
            return "Tick the box first: deleting cannot be undone.", gr.update(), gr.update()
        note = service.delete_my_data(token, session)
        _unpublish(export_name(service.user_of(token)))  # an export handed out before stays no download
        return note, False, None  # the next deletion asks again

    c["compose_btn"].click(on_compose, [c["session"], c["style"], c["instrument"], c["tempo"], c["energy"],
                                        c["seed"], c["clip_sound"], c["duck"]],
                           [c["compose_note"], c["composed"], c["downloads"]],
                           api_name="compose")
    c["downloads"].download(on_download, [c["session"]], None)
    c["style"].change(lambda s: gr.update(info=STYLES[s].description if s in STYLES else ""), c["style"],
                      c["style"])
    c["export_btn"].click(on_export, [c["session"], c["token"]], [c["data_note"], c["data_file"]],
                          api_name="export_my_data")
    c["delete_btn"].click(on_delete, [c["token"], c["confirm"], c["session"]],
                          [c["data_note"], c["confirm"], c["data_file"]], api_name="delete_my_data")


def _wire_library(gr: Any, service: SoundtrackService, c: dict[str, Any]) -> None:
    def pick(session, evt):  # a click on a catalogue row: hear that track, named in the player's label
        session, row = service.ensure_session(session), evt.row_value or [None]
        made = service.excerpt(session, row[0], seconds=EXCERPT_S)  # named after the track, not "track-2-30s"
        return session, "", gr.update(value=_publish(made, f"{safe_stem(str(row[1]), fallback='track')}{made.suffix}"),
                                      label=excerpt_label(row))

    # Gradio finds the event argument by its annotation; a real class, since this module's are strings
    pick.__annotations__ = {"evt": gr.SelectData}
    on_pick = _guard(lambda msg: (gr.update(), msg, None))(pick)
    c["catalogue"].select(on_pick, [c["session"]], [c["session"], c["lib_note"], c["lib_audio"]])

    def table() -> Any:  # one decimal for every duration, sortable by number (session.catalogue_table)
        return catalogue_table(service.catalogue())

    @_guard(lambda msg: (msg, table()))
    def on_add(files):
        if not files:  # the button with nothing uploaded answered "added 0 track(s)", as if it had worked
            raise ParameterError("choose audio or MIDI files in the box above first, then add them")
        return service.add_tracks([f if isinstance(f, str) else f.name for f in files]), table()

    @_guard(lambda msg: (msg, table()))
    def on_folder(folder, progress=gr.Progress()):  # noqa: B008
        return service.add_folder(folder, progress=lambda f, m: progress(f, desc=m)), table()

    if "add_btn" in c:
        c["add_btn"].click(on_add, [c["uploads"]], [c["lib_note"], c["catalogue"]], api_name="add_tracks")
    if "folder_btn" in c:
        c["folder_btn"].click(on_folder, [c["folder"]], [c["lib_note"], c["catalogue"]], api_name="index_folder")


#: The score tab's messages, each beside the controls it answers, and the (control, event) pairs that answer
#: in each. A press of one control clears an error left by another (it stayed on show: "pick a rating" under
#: the rating while the preview played); a message that is not an error stays.
MESSAGES = {"error": (("analyse", "click"),),
            "preview_error": (("preview_btn", "click"), ("alone_btn", "click"), ("choice", "input")),
            "feedback_note": (("skip", "click"), ("rate_btn", "click")),
            "compose_note": (("compose_btn", "click"),),
            "data_note": (("export_btn", "click"), ("delete_btn", "click"))}


def _wire_stale_errors(c: dict[str, Any]) -> None:
    """Each control of :data:`MESSAGES` clears the errors shown in the other messages when pressed."""
    for own, controls in MESSAGES.items():
        others = [c[name] for name in MESSAGES if name != own]
        for control, event in controls:
            getattr(c[control], event)(None, others, others, js=CLEAR_ERRORS_JS, queue=False)


def build_ui(service: SoundtrackService) -> Any:
    """The Gradio Blocks page; every handler is a thin call into ``service``."""
    import gradio as gr

    from analysis.text.sidecar import SIDECAR_SUFFIXES

    # The page's session is made as it loads: an upload's handler and an Analyse clicked before it returns
    # then share one (each made its own, and the one returned last, the upload's, showed no list).
    @_guard(lambda msg: (None, gr.update(), msg))
    def on_load(token, session, request=None):
        token, uid = service.identify(token, client=client_address(request))  # new ids: a few per address
        note = (f"Your anonymous id: `{uid}`. Under it this server keeps the lists of tracks it showed you and what "
                "you did with them (plays, skips, ratings, downloads), to learn what fits; your clips and files are "
                f"deleted after {service.config.cleanup_age_s / 3600:g} hours. Download or delete what is kept under "
                "**Your data** below.")
        return token, service.ensure_session(session), note

    on_load.__annotations__["request"] = gr.Request | None  # the hint (a class, not a string) Gradio fills in

    # analytics_enabled=False: no telemetry leaves the machine (Gradio's default sends some).
    with gr.Blocks(
        title="Soundtrack composer", delete_cache=(3600, int(service.config.cleanup_age_s)), analytics_enabled=False
    ) as demo:
        c: dict[str, Any] = {"token": gr.BrowserState(None, storage_key="soundtrack-user"), "session": gr.State(None),
                             # the key of this browser's last list on the server (a reload brings it back)
                             "saved": gr.BrowserState(None, storage_key="soundtrack-session")}
        gr.Markdown("# Soundtrack composer\nUpload a clip: see its emotional arc, hear library tracks fitted to it, "
                    "rate them, or compose a new score.")
        who = gr.Markdown(elem_id="user-note")
        with gr.Tab("Score a clip"):
            c.update(_score_tab(gr))
            c.update(_compose_box(gr))
            c.update(_data_box(gr))
        with gr.Tab("Library"):
            c.update(_library_tab(gr, service))
        build_live_tab(service, c["session"], c["token"], _publish, (c["clip_sound"], c["duck"]))  # page/live.py
        loaded = demo.load(on_load, [c["token"], c["session"]], [c["token"], c["session"], who], api_name="identify",
                           concurrency_limit=None)
        loaded.then(lambda: catalogue_table(service.catalogue()), None, c["catalogue"])
        demo.load(None, None, None, js=upload_guard_js({"clip": ("video/",), "subtitles": SIDECAR_SUFFIXES},
                                                       service.config.max_upload_bytes))
        _wire_restore(gr, service, c, loaded)
        _wire_new_clip(gr, service, c)
        _wire_clip(gr, service, c)
        _wire_compose_and_data(gr, service, c)
        _wire_library(gr, service, c)
        _wire_stale_errors(c)
    return demo


def _queue_share(visitors_per_address: int) -> Any:
    from starlette.middleware import Middleware

    from soundtrack.security import QueueShare

    return Middleware(QueueShare, visitors=visitors_per_address)


def serve(
    config: AppConfig | None = None, *, host: str = "127.0.0.1", port: int = 7860, block: bool = True
) -> Any:
    """Load everything once, start the cleanup sweeper, and serve the page."""
    cfg = config or AppConfig()
    service = SoundtrackService(cfg, progress=lambda f, m: print(m, flush=True))
    print(f"loaded models and caches in {service.warm_up():.1f} s", flush=True)
    service.cleanup()
    service.start_sweeper()
    demo = build_ui(service)
    demo.queue(default_concurrency_limit=2)
    demo.launch(  # Gradio's default theme serves its fonts locally; the browser test checks no outside request
        server_name=host,
        server_port=port,
        max_file_size=cfg.max_upload_bytes,  # bytes, decimal MB as the service counts them
        allowed_paths=[],  # nothing by path: handlers publish copies (see _publish)
        prevent_thread_lock=True,
        show_error=True,
        css=CSS,  # Gradio 6 takes page CSS at launch
        app_kwargs={"middleware": [_queue_share(cfg.visitors_per_address)],  # a few heavy requests per visitor
                    "lifespan": sweeper(cfg.cleanup_age_s)},  # Gradio's state of visits that are over goes
        share=False,  # never a public tunnel, whatever $GRADIO_SHARE says (SECURITY.md)
        quiet=True,  # its lines named 0.0.0.0 as a URL and advised share=True: start_lines says where instead
    )
    for line in start_lines(host, port, allow_uploads=cfg.allow_uploads):
        print(line, flush=True)
    if block:
        demo.block_thread()
    return demo


def main() -> None:
    """``python app.py``: the demo library on ``GRADIO_SERVER_NAME``:``GRADIO_SERVER_PORT`` (else 127.0.0.1:7860)."""
    from soundtrack.security import LOOPBACK, address

    host, port = address()
    serve(AppConfig(allow_uploads=host in LOOPBACK), host=host, port=port)  # off the loopback: --share-lan defaults


if __name__ == "__main__":
    main()
