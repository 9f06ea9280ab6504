"""The app's handlers, called directly (no browser): analyse, rank, preview, rate, compose, limits."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from types import SimpleNamespace

import pretty_midi
import pytest
from mediagen import Shot, corrupt_copy, make_clip, talking_clip

from analysis.errors import MediaError, ParameterError
from soundtrack.clips import not_a_clip, not_subtitles
from soundtrack.results import EXPLORE_MARK
from soundtrack.service import AppConfig, SoundtrackService, make_example_clip, probe_video

HERE = Path(__file__).parent


def write_midi(path: Path, *, pitches: list[int], tempo: float, velocity: int, program: int, bars: int = 8) -> Path:
    """A short MIDI piece: a repeating arpeggio over ``pitches`` at ``tempo`` bpm."""
    pm = pretty_midi.PrettyMIDI(initial_tempo=tempo)
    inst = pretty_midi.Instrument(program=program)
    beat = 60.0 / tempo
    t = 0.0
    for i in range(bars * 4):
        for j, p in enumerate(pitches):
            inst.notes.append(pretty_midi.Note(velocity=velocity, pitch=p + 12 * (i % 2 and j == 0), start=t,
                                               end=t + beat * 0.9))
        t += beat
    pm.instruments.append(inst)
    pm.write(str(path))
    return path


def build_small_library(folder: Path):
    """Three MIDI tracks of different moods (fast major, slow minor, mid), analysed into a Library."""
    import matching

    folder.mkdir(parents=True, exist_ok=True)
    lib = matching.Library(folder / "lib.db")
    specs = {
        "bright-march": ([60, 64, 67], 150.0, 110, 0),
        "slow-lament": ([57, 60, 64], 60.0, 45, 48),
        "steady-walk": ([62, 65, 69], 100.0, 80, 24),
    }
    for title, (pitches, tempo, vel, prog) in specs.items():
        lib.add(write_midi(folder / f"{title}.mid", pitches=pitches, tempo=tempo, velocity=vel, program=prog),
                title=title)
    return lib


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    root = tmp_path_factory.mktemp("app")
    build_small_library(root / "library")
    return SoundtrackService(AppConfig(library=root / "library" / "lib.db", work_dir=root / "work", k=3))


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    path = tmp_path_factory.mktemp("clip") / "clip.mp4"
    shots = [Shot(50, (30, 40, 120), motion=0.1), Shot(50, (250, 160, 40), motion=1.0)]
    make_clip(path, shots=shots, fps=25, audio="percussion")
    return path


def test_analyse_rank_preview_rate_and_log(service, clip):
    session = service.new_session()
    steps = []
    token = service.signer.sign("tester")
    view = service.analyse(session, clip, user=token, progress=lambda f, m: steps.append((f, m)))
    assert view.plot.is_file() and view.plot.stat().st_size > 5000
    titles = [row[1].split(". ", 1)[1].removesuffix(EXPLORE_MARK) for row in view.table]
    assert len(view.table) == 3 and set(titles) == {"bright-march", "slow-lament", "steady-walk"}
    fits = [int(row[0].split()[0]) for row in view.table]
    assert sorted(fits, reverse=True) == [100, 50, 0]  # percentiles among the three tracks for this clip
    assert all(row[0].split()[1] in {"great", "good", "weak"} for row in view.table)
    # best fit is below the calibrated line (soundtrack/fitscale.py): compose instead, and the box opens
    assert "4.0 s, 1 cut," in view.summary and "try **Compose instead**" in view.summary and view.compose_instead
    fractions = [f for f, _ in steps]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0 and len(steps) >= 3

    mp4 = service.preview(session, view.choices[0])
    assert mp4.parent == session.folder and abs(probe_video(mp4) - 4.0) < 0.2
    service.event(session, "play", view.choices[0])
    service.event(session, "complete", view.choices[0])
    service.event(session, "play", view.choices[0])  # played again after the end: a replay
    service.event(session, "skip", view.choices[1], value=0.5, duration=4.0)
    assert "rated 4/5" in service.rate(session, view.choices[0], "4")

    kinds = [(o.kind, o.position, o.value) for o in service.feedback.observations()
             if o.recommendation_id == view.recommendation_id]
    assert kinds == [("play", 0, None), ("complete", 0, None), ("replay", 0, None), ("skip", 1, 0.5),
                     ("rating", 0, 4.0)]
    export = service.feedback.export_user("tester")
    rec = next(r for r in export["recommendations"] if r["id"] == view.recommendation_id)
    assert [c["title"] for c in rec["candidates"]] == titles
    assert set(rec["weights"]) >= {"dtw", "embedding", "transition"}



def test_a_preview_paused_and_resumed_is_one_listen_not_replays(service, clip):
    """The page's player reports a play at every start, a resume after a pause too: a preview paused twice
    logged a play and two replays, each counted by the learner as the listener liking the track (0.85
    reward). A replay is a listen begun again: after the end, after another track, or in a new preview."""
    session = service.new_session()
    view = service.analyse(session, clip, user=service.signer.sign("pauser"))
    first, second = view.choices[0], view.choices[1]
    for _ in range(3):  # play, pause, resume, pause, resume
        service.event(session, "play", first)
    service.event(session, "complete", first)
    service.event(session, "play", first)  # again after the end
    service.event(session, "play", second)
    service.event(session, "play", first)  # back from another track
    service.preview(session, first, "replace")
    service.event(session, "play", first)  # a new preview of it, from its start
    kinds = [(o.kind, o.position) for o in service.feedback.observations()
             if o.recommendation_id == view.recommendation_id]
    assert kinds == [("play", 0), ("complete", 0), ("replay", 0), ("play", 1), ("replay", 0), ("replay", 0)]

def test_sessions_are_separate_and_old_ones_are_swept(service, clip):
    a, b = service.new_session(), service.new_session()
    assert a.folder != b.folder and a.folder.parent == b.folder.parent
    (a.folder / "x.wav").write_bytes(b"1")
    old = time.time() - 2 * service.config.cleanup_age_s
    os.utime(a.folder / "x.wav", (old, old))
    os.utime(a.folder, (old, old))
    assert service.cleanup() >= 1
    assert not a.folder.exists() and b.folder.exists()
    assert service.ensure_session(None).folder.is_dir()


def test_bad_uploads_give_readable_errors(service, clip, tmp_path):
    session = service.new_session()
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video")
    with pytest.raises(MediaError, match=r"notes\.mp4: is not a readable video"):
        service.analyse(session, text, user=service.signer.sign("tester"))
    broken = corrupt_copy(clip, tmp_path / "broken.mp4", mode="garble")
    with pytest.raises(MediaError, match=r"broken\.mp4"):
        service.analyse(session, broken, user=service.signer.sign("tester"))
    small = SoundtrackService(AppConfig(library=service.config.library, work_dir=service.work, max_duration_s=2.0))
    with pytest.raises(MediaError, match=r"lasts more than 2 s"):
        small.check_upload(clip)
    tiny = SoundtrackService(AppConfig(library=service.config.library, work_dir=service.work, max_upload_mb=0.001))
    with pytest.raises(MediaError, match=r"\d\.\d MB; the limit is 0\.001 MB"):
        tiny.check_upload(clip)
    service.analyse(session, clip, user=service.signer.sign("tester"))
    with pytest.raises(ParameterError, match="upload a clip"):
        service.analyse(session, None, user=service.signer.sign("tester"))
    with pytest.raises(ParameterError, match="analyse a clip first"):  # the failed upload left no stale list
        service.rate(session, 0, 3)
    with pytest.raises(ParameterError, match="analyse a clip first"):
        service.rate(service.new_session(), "1. x", 3)
    with pytest.raises(ParameterError, match="max_upload_mb"):
        AppConfig(max_upload_mb=0)


def test_submit_rating_before_any_analysis_says_to_analyse_first(service, clip):
    """The page's "Submit rating" with no list and no stars said "pick a rating (1 to 5) first": the stars
    were not what was missing."""
    for session in (None, service.new_session()):
        with pytest.raises(ParameterError, match="analyse a clip first"):
            service.rate(session, "(none)", None)  # what the page sends before any analysis
    session = service.new_session()
    view = service.analyse(session, clip, user=service.signer.sign("tester"))
    with pytest.raises(ParameterError, match=r"pick a rating \(1 to 5\) first"):  # a list, no stars yet
        service.rate(session, view.choices[0], None)


def test_a_file_that_is_not_a_video_is_answered_in_the_pages_words():
    """What the clip box says of a file it refuses: music goes to the Library tab (when this server takes
    uploads), subtitles to their own box, and the name shows as typed."""
    assert "use the **Library** tab" in not_a_clip("tone.wav") and "MP4" in not_a_clip("tone.wav")
    assert "Library" not in not_a_clip("tone.wav", library_uploads=False)
    assert "does not take new music" in not_a_clip("song.MID", library_uploads=False)
    assert "**Subtitles** box" in not_a_clip("/home/me/joy.srt") and "/home" not in not_a_clip("/home/me/joy.srt")
    assert not_a_clip("a_b*c.txt").startswith(r"**a\_b\*c.txt** is not a video: upload a video clip")


def test_a_file_that_is_not_subtitles_is_answered_in_the_pages_words():
    """What the subtitles box says of a file it refuses (it showed Gradio's pop-up "Invalid file type:
    tone.wav. Only .srt, .vtt, .ass, .ssa allowed."): a clip goes to the clip box, music to the Library tab."""
    assert not_subtitles("tone.wav").startswith("**tone.wav** is music, not subtitles: ")
    assert "**Library** tab" in not_subtitles("tone.wav") and ".srt" in not_subtitles("tone.wav")
    assert "does not take new music" in not_subtitles("song.mid", library_uploads=False)
    assert "**Clip** box" in not_subtitles("/home/me/holiday.MP4") and "/home" not in not_subtitles("/x/a.mp4")
    assert not_subtitles("a_b*c.pdf").startswith(r"**a\_b\*c.pdf** is not a subtitle file: upload a subtitle file")


def test_compose_instead_writes_all_downloads(service, clip):
    session = service.new_session()
    view = service.analyse(session, clip, user=service.signer.sign("composer-fan"))
    out = service.compose(session, style="cinematic", instrument="violin", tempo=90, energy=0.3)
    assert out.midi.suffix == ".mid" and out.wav.suffix == ".wav" and out.video.suffix == ".mp4"
    assert all(p.parent == session.folder and p.stat().st_size > 0 for p in (out.midi, out.wav, out.video))
    assert out.musicxml is not None and out.musicxml.stat().st_size > 0
    assert abs(probe_video(out.video) - 4.0) < 0.2
    assert "violin" in out.summary.lower()
    # "1 chord", "3 chords": the opening chord counts, as in `soundtrack compose` (it said "1 chord change"
    # of a piece that never changed chord)
    chords = re.search(r", (\d+) (chord|chords), ", out.summary)
    assert chords and (chords[2] == "chord") == (chords[1] == "1")
    assert out.summary.startswith("Cinematic, ")  # the style's name, not its key
    assert ", seed 0, " in out.summary  # the seed used (the page's field may show what it rounded)
    assert out.midi.name == "clip-cinematic-0.mid"  # named after the uploaded clip
    kinds = [o.kind for o in service.feedback.observations() if o.recommendation_id == view.recommendation_id]
    assert kinds == ["compose_instead"]


def test_library_tab_adds_tracks_and_lists_catalogue(service, tmp_path):
    before = len(service.catalogue())
    extra = write_midi(tmp_path / "new-tune.mid", pitches=[65, 69, 72], tempo=120, velocity=90, program=73)
    bad = tmp_path / "noise.mid"
    bad.write_bytes(b"not midi at all")
    msg = service.add_tracks([extra, bad])
    assert msg.startswith("added 1 track") and "noise.mid" in msg
    rows = service.catalogue()
    assert len(rows) == before + 1 and rows[-1][1] == "new-tune"


def test_example_clip_is_a_readable_video(tmp_path):
    path = make_example_clip(tmp_path / "ex.mp4", seconds_per_shot=1.0)
    assert abs(probe_video(path) - 3.0) < 0.2


def test_two_users_at_once_keep_their_own_files_and_logs(service, clip):
    from concurrent.futures import ThreadPoolExecutor

    sessions = {user: service.new_session() for user in ("alice", "bob")}
    with ThreadPoolExecutor(2) as pool:
        def run(u: str):
            return service.analyse(sessions[u], clip, user=service.signer.sign(u))

        views = dict(zip(sessions, pool.map(run, sessions), strict=True))
    for user, view in views.items():
        assert view.plot.parent == sessions[user].folder
        assert sessions[user].video.parent == sessions[user].folder
    assert views["alice"].recommendation_id != views["bob"].recommendation_id
    service.rate(sessions["alice"], 0, 5)
    alice = service.feedback.export_user("alice")
    assert [e["kind"] for e in alice["events"]] == ["rating"]
    assert service.feedback.export_user("bob")["events"] == []


def test_serve_command_parses_limits_and_lan_flag(monkeypatch, tmp_path):
    import app
    from soundtrack.cli import main

    calls = []
    monkeypatch.setattr(app, "serve", lambda config, *, host, port: calls.append((config, host, port)))
    import matching

    matching.Library(tmp_path / "l.db")  # an existing library; a missing one is refused (below)
    assert main(["serve", "--library", str(tmp_path / "l.db"), "--port", "7999", "--max-upload-mb", "50",
                 "--max-duration", "120", "--cleanup-hours", "2", "-k", "5"]) == 0
    assert main(["serve", "--share-lan"]) == 0
    (cfg, host, port), (cfg2, host2, _) = calls
    assert (host, port, host2) == ("127.0.0.1", 7999, "0.0.0.0")
    assert (cfg.max_upload_mb, cfg.max_duration_s, cfg.cleanup_age_s, cfg.k) == (50, 120, 7200, 5)
    assert cfg2.library is None  # no --library: the built-in demo library
    assert main(["serve", "--port", "70000"]) == 2


def test_serve_refuses_a_library_path_that_does_not_exist(monkeypatch, tmp_path, capsys):
    """A mistyped ``--library`` is refused naming the path, as `match` and `score` refuse it, instead of
    being served as a new, empty library made there."""
    import app
    from soundtrack.cli import main

    calls = []
    monkeypatch.setattr(app, "serve", lambda config, *, host, port: calls.append(config))
    typo = tmp_path / "typo.db"
    assert main(["serve", "--library", str(typo), "--port", "7999"]) == 2
    assert "typo.db: library database not found" in capsys.readouterr().err
    assert calls == [] and not typo.exists()


def test_uploaded_subtitles_reach_the_subtitles_source_and_nothing_else_does(service, clip, tmp_path):
    """An .srt uploaded beside the clip is read while the subtitles source is on; a file that lies beside the
    session's copy is not (the page reads only uploads); a bad upload is an error naming it."""
    token = service.signer.sign("captions")
    session = service.new_session()
    plain = service.analyse(session, clip, user=token)
    assert "subtitles off (no subtitle file uploaded)" in plain.summary
    (session.folder / "clip.srt").write_text((HERE / "data" / "joy_then_grim.srt").read_text())  # not an upload
    assert "subtitles off" in service.analyse(session, clip, user=token).summary

    view = service.analyse(session, clip, user=token, subtitles=HERE / "data" / "joy_then_grim.srt")
    assert "Read from: " in view.summary and "subtitles" in view.summary.split("Read from: ")[1].split(";")[0]
    assert session.clip.subtitles == str(session.folder / "subtitles.srt")
    switched_off = service.analyse(session, clip, user=token, sources=["visual", "audio"],
                                   subtitles=HERE / "data" / "joy_then_grim.srt")
    assert "subtitles" not in switched_off.summary and session.clip.subtitles is None

    bad = tmp_path / "my captions.srt"
    bad.write_text("1\nnot a timing line\nhello\n")
    with pytest.raises(MediaError, match=r"^my captions\.srt: line 2"):
        service.analyse(session, clip, user=token, subtitles=bad)
    with pytest.raises(MediaError, match=r"upload an \.srt, \.vtt or \.ass"):
        service.analyse(session, clip, user=token, subtitles=HERE / "data" / "0-f1-su-ph.jpg")
    fake = tmp_path / "fansub.ass"
    fake.write_text("no dialogue lines here")
    with pytest.raises(MediaError, match=r"^fansub\.ass: could not be read as ASS/SSA subtitles"):
        service.analyse(session, clip, user=token, subtitles=fake)
    import subprocess

    ass = tmp_path / "real.ass"
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", str(HERE / "data" / "joy_then_grim.srt"), str(ass)],
                   check=True)
    view = service.analyse(session, clip, user=token, subtitles=ass)
    assert "subtitles" in view.summary.split("Read from: ")[1].split(";")[0]


def test_the_clips_own_subtitle_track_and_its_warnings_reach_the_page(service, clip, tmp_path):
    """An uploaded clip's own subtitle track is read without an upload of its own, and what the analysis
    warned of (here: no audio track) is said under the summary."""
    import subprocess

    silent = make_clip(tmp_path / "silent.mp4", shots=[Shot(100, (120, 120, 120))], fps=10)
    subbed = tmp_path / "subbed.mp4"
    srt = HERE / "data" / "joy_then_grim.srt"
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", str(silent), "-i", str(srt), "-map", "0", "-map", "1",
                    "-c", "copy", "-c:s", "mov_text", str(subbed)], check=True)
    session = service.new_session()
    view = service.analyse(session, subbed, user=service.signer.sign("track"))
    assert "subtitles" in view.summary.split("Read from: ")[1].split(";")[0]
    assert session.clip.subtitles == "clip.mp4 (subtitle track 1, mov_text)"
    assert "Note: no audio track" in view.summary


def test_the_music_under_speech_slider_reaches_preview_skip_and_compose(service, tmp_path, monkeypatch):
    """The page's "Music under speech" slider: each handler that mixes the clip's sound, and the Live tab's
    score, gets its value."""
    import gradio as gr

    from app import build_ui
    from soundtrack.session import ComposeView

    demo = build_ui(service)
    slider = next(b for b in demo.blocks.values() if getattr(b, "elem_id", None) == "duck")
    assert (slider.minimum, slider.maximum, slider.value) == (6, 30, 14)
    made = tmp_path / "made.mp4"
    made.write_bytes(b"a file to publish")
    calls = []

    def preview(session, choice, clip_sound="auto", duck_db=14.0):
        calls.append(("preview", clip_sound, duck_db))
        return made

    def compose(session, *, clip_sound="auto", duck_db=14.0, **_):
        calls.append(("compose", clip_sound, duck_db))
        return ComposeView(video=made, midi=made, musicxml=None, wav=made, summary="composed")

    session = service.new_session()
    session.matches = [SimpleNamespace(title="one"), SimpleNamespace(title="two")]  # a skip previews the second
    monkeypatch.setattr(service, "preview", preview)
    monkeypatch.setattr(service, "compose", compose)
    monkeypatch.setattr(service, "event", lambda *a, **kw: 0)
    monkeypatch.setattr(service, "why", lambda *a: made)

    def stream(self, *args, clip_sound="auto", duck_db=14.0, **kw):  # the Live tab's score
        calls.append(("live", clip_sound, duck_db))
        yield b"", "live"

    monkeypatch.setattr("soundtrack.page.live.LiveService.stream", stream)
    page = {"duck": 20.0, "clip-sound": "keep", "choice": "1. one"}  # what the browser sends, by elem_id
    wired = [fn for fn in demo.fns.values() if slider in fn.inputs]
    assert {fn.name for fn in wired} == {"on_preview", "on_skip", "on_compose", "on_stream"}
    for fn in wired:
        out = fn.fn(*[session if isinstance(i, gr.State) else page.get(i.elem_id) for i in fn.inputs])
        list(out) if fn.name == "on_stream" else None  # a generator runs when read
    assert sorted(calls) == [("compose", "keep", 20.0), ("live", "keep", 20.0), ("preview", "keep", 20.0),
                             ("preview", "keep", 20.0)]
    radio = next(b for b in demo.blocks.values() if getattr(b, "elem_id", None) == "clip-sound")
    toggle = next(fn for fn in demo.fns.values() if radio in fn.inputs and slider in fn.outputs)
    assert [toggle.fn(v)["interactive"] for v in ("replace", "auto", "keep")] == [False, True, True]


def test_preview_and_compose_put_the_music_as_far_under_speech_as_asked(service, tmp_path):
    import soundfile as sf
    from test_dialogue import LINES, SHOTS, _depths

    from analysis.media.dialogue import read_clip_sound

    made = talking_clip(tmp_path / "talk.mp4", LINES, shots=SHOTS)
    if made is None:
        pytest.skip("espeak-ng (Debian package) is not installed")
    clip, spans = made
    session = service.new_session()
    view = service.analyse(session, clip, user=service.signer.sign("editor"))
    for bad in (5, 31):
        with pytest.raises(ParameterError, match="within 6 and 30 dB"):
            service.preview(session, view.choices[0], "auto", bad)
        with pytest.raises(ParameterError, match="within 6 and 30 dB"):
            service.compose(session, duck_db=bad)
    mp4 = service.preview(session, view.choices[0], "auto", 20)
    assert mp4 != service.preview(session, view.choices[0])  # another depth is another preview, not the cached one
    music = session.folder / "preview-1.fitted.wav"
    own = read_clip_sound(clip, channels=sf.info(str(music)).channels).report  # as the mix read it (mono here)
    under, between = _depths(mp4, music, clip, own, spans)
    assert under == pytest.approx(20.0, abs=1.0) and between == pytest.approx(4.0, abs=1.0)
    assert "sits 20 dB under it while people speak" in service.compose(session, duck_db=20).summary


def test_a_double_clicked_analyse_or_compose_logs_and_runs_once(service, clip):
    """Two clicks a moment apart reach the server as two requests: the second waits for the first and
    gets its answer, so the learner sees one list and one "compose instead"."""
    import threading

    session, token = service.new_session(), service.signer.sign("double-clicker")
    start = threading.Barrier(2)

    def twice(call):
        answers: list = []

        def click():
            start.wait()
            answers.append(call())

        threads = [threading.Thread(target=click) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return answers

    views = twice(lambda: service.analyse(session, str(clip), user=token, sources=["visual", "audio"]))
    lists = service.feedback.export_user("double-clicker")["recommendations"]
    assert len(lists) == 1 and {v.recommendation_id for v in views} == {lists[0]["id"]}
    composed = twice(lambda: service.compose(session, style="ambient", seed=3))
    assert composed[0] == composed[1]
    kinds = [o.kind for o in service.feedback.observations() if o.recommendation_id == lists[0]["id"]]
    assert kinds == ["compose_instead"]
    # another request is answered anew: other settings, or the same clip asked for again after a new one
    service.analyse(session, str(clip), user=token, sources=["visual"])
    assert len(service.feedback.export_user("double-clicker")["recommendations"]) == 2


def test_a_reload_gets_the_last_list_back_for_its_own_user_only(service, clip, tmp_path):
    token = service.signer.sign("reloader")
    session = service.new_session()
    view = service.analyse(session, str(clip), user=token, content_type="music_video", sources=["visual", "audio"])
    assert view.asked == ("music_video", ("visual", "audio"))  # the page shows the settings again with the list
    assert service.restore(session.key, service.signer.sign("someone-else")) is None  # a key alone is not enough
    assert service.restore("no-such-key", token) is None
    found, again, shown = service.restore(session.key, token)
    assert found is session and again == view and shown.parent == session.folder and shown.name != "clip.mp4"
    assert shown.read_bytes() == clip.read_bytes()  # the clip itself, under a name not taken for an upload
    assert session.is_view(shown) and session.original(shown) == clip
    relisted = service.analyse(found, str(shown), user=token, sources=["visual"])  # re-analysing it reads the clip
    assert relisted.recommendation_id != view.recommendation_id and session.name == clip.name
    service.forget_clip(session)  # another clip chosen on the page: nothing to bring back
    assert service.restore(session.key, token) is None


def test_the_session_store_keeps_the_newest_sessions(tmp_path):
    from soundtrack.session import Session, SessionStore

    store = SessionStore(limit=2)
    sessions = [Session(folder=tmp_path) for _ in range(3)]
    keys = [store.keep(s, "u") for s in sessions]
    assert len(set(keys)) == 3 and store.keep(sessions[2], "u") == keys[2]  # one key per session
    assert store.get(keys[0], "u") is None and store.get(keys[2], "u") is sessions[2]


def test_the_same_request_after_the_library_changed_is_ranked_again(service, clip, tmp_path):
    session, token = service.new_session(), service.signer.sign("library-watcher")
    first = service.analyse(session, str(clip), user=token)
    assert service.analyse(session, str(clip), user=token) == first  # nothing changed: the same list
    write_midi(tmp_path / "new-waltz.mid", pitches=[65, 69, 72], tempo=90.0, velocity=70, program=0)
    assert "added 1 track" in service.add_tracks([tmp_path / "new-waltz.mid"])
    again = service.analyse(session, str(clip), user=token)
    assert again.recommendation_id != first.recommendation_id
    assert len(service.feedback.export_user("library-watcher")["recommendations"]) == 2


def test_composing_again_logs_no_earlier_run_warning(service, clip, caplog):
    """The page writes its files in one go: no file it wrote a moment ago is called an earlier run's."""
    import logging

    session = service.new_session()
    service.analyse(session, clip, user=service.signer.sign("recomposer"))
    steps: list[float] = []
    with caplog.at_level(logging.WARNING):
        first = service.compose(session, style="ambient", seed=5, progress=lambda f, m: steps.append(f))
        again = service.compose(session, style="ambient", seed=5, clip_sound="replace")  # not the cached answer
    assert not [r for r in caplog.records if "earlier run" in r.getMessage()]
    assert steps == sorted(steps) and steps[-1] == 1.0
    for out in (first, again):
        assert all(p.is_file() and p.stat().st_size > 0 for p in (out.midi, out.wav, out.video, out.stems))
    assert "<movement-title>Score for clip</movement-title>" in again.musicxml.read_text()


@pytest.mark.parametrize(("flags", "said"), [
    (["--cleanup-hours", "inf"], "`--cleanup-hours` must be a number of hours (received inf)"),
    (["--max-upload-mb", "inf"], "`--max-upload-mb` must be at most 1e+06 (received inf)"),
    (["--max-upload-mb", "1e300"], "`--max-upload-mb` must be at most 1e+06 (received 1e+300)"),
    (["--visitors-per-address", "0"], "`--visitors-per-address` must be at least 1 (received 0)"),
])
def test_serve_refuses_limits_the_server_cannot_take_before_loading(monkeypatch, tmp_path, capsys, flags, said):
    """Each was taken, the models loaded, and then the server stopped: "unexpected OverflowError: cannot convert
    float infinity to integer" (Gradio keeps the upload limit in bytes and the cleanup age in whole seconds);
    the visitors' flag was named `visitors_per_address`. Now each is refused first, naming its flag."""
    import app
    import matching
    from soundtrack.cli import main

    calls = []
    monkeypatch.setattr(app, "serve", lambda config, *, host, port: calls.append(config))
    matching.Library(tmp_path / "l.db")
    assert main(["serve", "--library", str(tmp_path / "l.db"), "--port", "7999", *flags]) == 2
    assert said in capsys.readouterr().err
    assert calls == []


def test_serve_refuses_a_work_dir_that_is_a_file(monkeypatch, tmp_path, capsys):
    import app
    import matching
    from soundtrack.cli import main

    calls = []
    monkeypatch.setattr(app, "serve", lambda config, *, host, port: calls.append(config))
    matching.Library(tmp_path / "l.db")
    (tmp_path / "notes.txt").write_text("mine")
    assert main(["serve", "--library", str(tmp_path / "l.db"), "--port", "7999",
                 "--work-dir", str(tmp_path / "notes.txt")]) == 2
    assert "`--work-dir` must be a folder this server can write" in capsys.readouterr().err
    assert calls == [] and (tmp_path / "notes.txt").read_text() == "mine"


def test_serve_refuses_another_programs_database_and_leaves_it_as_it_was(monkeypatch, tmp_path, capsys):
    """An SQLite file of something else given as --library was served as an empty library, and the library's
    nine tables were written into it; now it is refused, naming its tables, and nothing is written."""
    import sqlite3

    import app
    from soundtrack.cli import main

    calls = []
    monkeypatch.setattr(app, "serve", lambda config, *, host, port: calls.append(config))
    other = tmp_path / "notes.db"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE notes (body TEXT)")
    assert main(["serve", "--library", str(other), "--port", "7999"]) == 2
    assert "notes.db: is a database of something else, not a music library (its tables: notes;" \
        in capsys.readouterr().err
    with sqlite3.connect(other) as conn:
        assert [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")] == ["notes"]
    assert calls == []


def test_a_list_that_ends_before_the_new_clip_step_keeps_its_pick(service, clip):
    """A new clip's events end by setting the track box to "(none)". On a busy server a quick analysis ended
    first (3 of 10 two-user runs in Chromium): the page showed the list with "(none)" picked, and Preview said
    "pick a track from the list (received '(none)')". The handlers here run in that order."""
    import gradio as gr

    from app import NO_TRACK, build_ui

    demo = build_ui(service)
    fns = {fn.name: fn for fn in demo.fns.values()}
    new_clip = fns["on_new_clip"]
    session_box, video_box = new_clip.inputs
    last_step = next(fn for fn in demo.fns.values() if fn.inputs == [session_box, video_box]
                     and [o.elem_id for o in fn.outputs] == ["choice"])
    token = service.identify(None)[0]
    session = service.new_session()
    new_clip.fn(session, str(clip))  # the upload's change
    out = fns["on_analyse"].fn(str(clip), None, "general", ["visual", "audio"], token, session,
                               progress=lambda *a, **k: None)
    pick = dict(zip([o.elem_id for o in fns["on_analyse"].outputs], out, strict=True))["choice"]["value"]
    assert pick.startswith("1. ")
    update = last_step.fn(session, str(clip))  # the change's last step, after the list
    assert update.get("value", pick) == pick
    assert fns["on_preview"].fn(session, update.get("value", pick), "replace", 14)[0] == ""
    # a clip not yet analysed still starts with no pick
    other = service.new_session()
    new_clip.fn(other, str(clip))
    assert last_step.fn(other, str(clip)) == gr.update(value=NO_TRACK)
def test_an_uploaded_file_that_is_not_read_says_why_on_the_page(service, clip, tmp_path):
    """The page put 'no subtitle file uploaded' in place of any reason the subtitles were off, so an uploaded
    German file read as if nothing had been uploaded; now the page says why it was left out."""
    token = service.signer.sign("captions")
    session = service.new_session()
    german = tmp_path / "film.de.srt"
    german.write_text("1\n00:00:00,500 --> 00:00:03,500\nWas für ein herrlicher Morgen! Ich bin so glücklich, "
                      "euch alle zu sehen, das ist wunderbar.\n\n2\n00:00:06,000 --> 00:00:09,000\n"
                      "Er ist tot. Alles ist verloren, und ich bin allein in der Dunkelheit.\n")
    view = service.analyse(session, clip, user=token, subtitles=german)
    assert "subtitles off (not in English: only" in view.summary, view.summary
    assert "no subtitle file uploaded" not in view.summary
