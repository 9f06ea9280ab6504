"""The web page: upload a clip, see its emotional arc, hear ranked tracks on the video, rate them.

``soundtrack serve`` starts it (127.0.0.1:7860 by default; ``--share-lan`` listens on
0.0.0.0). Everything that loads once and every handler lives in
:class:`soundtrack.service.SoundtrackService`; :func:`build_ui` only wires Gradio
components to it. Gradio is imported only here.
"""

from __future__ import annotations

import contextlib
import uuid
from typing import Any

from analysis.errors import SoundtrackError
from soundtrack.service import CATALOGUE_HEADERS, TABLE_HEADERS, AppConfig, SoundtrackService


def _error(err: Exception) -> str:
    return f"**Error:** {err}"


def build_ui(service: SoundtrackService) -> Any:
    """The Gradio Blocks page; every handler is a thin call into ``service``."""
    import gradio as gr

    from analysis.presets import PRESETS as CONTENT_PRESETS
    from composer.music.styles import STYLES

    def on_load(user_id: str | None) -> tuple[str, str]:
        uid = user_id or uuid.uuid4().hex[:16]
        note = f"Your anonymous id: `{uid}` (your data: `soundtrack feedback export|delete --user {uid}`)"
        return uid, note

    def on_example() -> str:
        return str(service.example_clip())

    def on_analyse(video, content_type, user_id, session, progress=gr.Progress()):  # noqa: B008 - Gradio's idiom
        session = service.ensure_session(session)
        progress(0.0, desc="checking the upload")
        try:
            view = service.analyse(session, video, user_id=user_id or "anonymous", content_type=content_type,
                                   progress=lambda f, m: progress(f, desc=m))
        except SoundtrackError as err:
            return (session, _error(err), None, None, gr.update(choices=[], value=None), "", None)
        first = view.choices[0] if view.choices else None
        return (session, "", str(view.plot), view.table, gr.update(choices=view.choices, value=first), view.summary,
                None)

    def on_preview(session, choice):
        try:
            path = service.preview(service.ensure_session(session), choice)
        except SoundtrackError as err:
            return _error(err), None
        return "", str(path)

    def on_play(session, choice):
        with contextlib.suppress(SoundtrackError):
            service.event(session, "play", choice)

    def on_end(session, choice):
        with contextlib.suppress(SoundtrackError):
            service.event(session, "complete", choice)

    def on_skip(session, choice, position, length):
        try:
            service.event(session, "skip", choice, value=position, duration=length or None)
            return f"Skipped at {position or 0:.1f} s."
        except SoundtrackError as err:
            return _error(err)

    def on_rate(session, choice, rating):
        try:
            return service.rate(session, choice, rating)
        except SoundtrackError as err:
            return _error(err)

    def on_compose(session, style, instrument, tempo, energy, seed, progress=gr.Progress()):  # noqa: B008
        progress(0.1, desc="composing")
        try:
            view = service.compose(service.ensure_session(session), style=style, instrument=instrument or None,
                                   tempo=tempo or None, energy=energy, seed=int(seed or 0))
        except SoundtrackError as err:
            return _error(err), None, None
        files = [str(p) for p in (view.midi, view.musicxml, view.wav, view.video) if p is not None]
        return view.summary, str(view.video), files

    def on_download(session):
        try:
            if session and session.recommendation_id is not None:
                service.feedback.log_event(session.recommendation_id, "download")  # a composed file
        except SoundtrackError:
            pass

    def on_add(files):
        try:
            msg = service.add_tracks([f if isinstance(f, str) else f.name for f in files or []])
        except SoundtrackError as err:
            msg = _error(err)
        return msg, service.catalogue()

    def on_folder(folder):
        try:
            msg = service.add_folder(folder)
        except SoundtrackError as err:
            msg = _error(err)
        return msg, service.catalogue()

    skip_js = """(s, c, p, l) => { const v = document.querySelector('#preview video');
        return [s, c, v ? v.currentTime : 0, v ? v.duration : 0]; }"""

    # analytics_enabled=False: no telemetry leaves the machine (Gradio's default sends some).
    with gr.Blocks(
        title="Soundtrack composer", delete_cache=(3600, int(service.config.cleanup_age_s)), analytics_enabled=False
    ) as demo:
        user_id = gr.BrowserState(None, storage_key="soundtrack-user")
        session = gr.State(None)
        gr.Markdown("# Soundtrack composer\nUpload a clip: see its emotional arc, hear library tracks fitted to it, "
                    "rate them, or compose a new score.")
        who = gr.Markdown(elem_id="user-note")
        with gr.Tab("Score a clip"):
            with gr.Row():
                with gr.Column(scale=1):
                    video = gr.Video(label="Clip", sources=["upload"], elem_id="clip")
                    example = gr.Button("Use the example clip", size="sm")
                    content_type = gr.Dropdown(sorted(CONTENT_PRESETS), value="general", label="Content type")
                    analyse = gr.Button("Analyse and rank", variant="primary", elem_id="analyse")
                with gr.Column(scale=2):
                    error = gr.Markdown(elem_id="error")
                    summary = gr.Markdown(elem_id="summary")
                    plot = gr.Image(label="Valence and arousal over time (cuts dashed)", type="filepath",
                                    elem_id="arc-plot")
            table = gr.Dataframe(headers=TABLE_HEADERS, label="Ranked tracks", interactive=False, elem_id="ranked")
            with gr.Row():
                with gr.Column(scale=1):
                    choice = gr.Dropdown([], label="Track", elem_id="choice")
                    preview_btn = gr.Button("Preview on the video", elem_id="preview-btn")
                    skip = gr.Button("Skip this track", size="sm", elem_id="skip-btn")
                    rating = gr.Radio(["1", "2", "3", "4", "5"], label="Your rating", elem_id="rating")
                    rate_btn = gr.Button("Submit rating", elem_id="rate-btn")
                    feedback_note = gr.Markdown(elem_id="feedback-note")
                with gr.Column(scale=2):
                    preview = gr.Video(label="Preview", interactive=False, elem_id="preview")
            with gr.Accordion("Compose instead", open=False):
                with gr.Row():
                    style = gr.Dropdown(sorted(STYLES), value="cinematic", label="Style")
                    instrument = gr.Textbox(label="Lead instrument (GM name or number; empty: the style's)")
                    tempo = gr.Number(0, label="Tempo bpm (0: from the clip)")
                    energy = gr.Slider(-1, 1, 0, step=0.1, label="Energy")
                    seed = gr.Number(0, label="Seed", precision=0)
                compose_btn = gr.Button("Compose", elem_id="compose-btn")
                compose_note = gr.Markdown()
                composed = gr.Video(label="Composed score on the video", interactive=False)
                downloads = gr.File(label="MIDI, MusicXML, WAV, MP4", file_count="multiple")
        with gr.Tab("Library"):
            lib_note = gr.Markdown()
            uploads = gr.File(label="Add audio or MIDI tracks", file_count="multiple")
            add_btn = gr.Button("Add uploaded tracks")
            folder = gr.Textbox(label="Or index a folder on the server")
            folder_btn = gr.Button("Index folder")
            catalogue = gr.Dataframe(headers=CATALOGUE_HEADERS, label="Catalogue", interactive=False)

        demo.load(on_load, [user_id], [user_id, who]).then(service.catalogue, None, catalogue)
        example.click(on_example, None, video)
        analyse.click(on_analyse, [video, content_type, user_id, session],
                      [session, error, plot, table, choice, summary, preview])
        preview_btn.click(on_preview, [session, choice], [error, preview])
        preview.play(on_play, [session, choice], None)
        preview.end(on_end, [session, choice], None)
        pos, length = gr.Number(visible=False), gr.Number(visible=False)
        skip.click(on_skip, [session, choice, pos, length], feedback_note, js=skip_js)
        rate_btn.click(on_rate, [session, choice, rating], feedback_note)
        compose_btn.click(on_compose, [session, style, instrument, tempo, energy, seed],
                          [compose_note, composed, downloads])
        downloads.download(on_download, [session], None)
        add_btn.click(on_add, [uploads], [lib_note, catalogue])
        folder_btn.click(on_folder, [folder], [lib_note, catalogue])
    return demo


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
        max_file_size=f"{int(cfg.max_upload_mb)}mb",
        allowed_paths=[str(service.work)],
        prevent_thread_lock=not block,
        show_error=True,
    )
    return demo


if __name__ == "__main__":
    serve()
