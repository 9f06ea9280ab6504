"""Hostile inputs on the page's service layer: folders, uploads, identities, numbers, lying media.

Each test is one attack from issue 14, run against the real service on a small library.
The command-line attacks are in ``test_cli_errors.py``; the browser ones in
``test_app_browser.py``.
"""

from __future__ import annotations

import stat
import struct
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from test_app import build_small_library, write_midi

from analysis.arc import EmotionArc
from analysis.errors import MediaError, ParameterError
from matching.feedback.identity import IdentitySigner
from soundtrack.service import AppConfig, SoundtrackService


@pytest.fixture(scope="module")
def lib_path(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("seclib")
    build_small_library(root / "library")
    return root / "library" / "lib.db"


def _service(lib_path: Path, tmp: Path, **kw) -> SoundtrackService:
    return SoundtrackService(AppConfig(library=lib_path, work_dir=tmp / "work", k=3, **kw))


def lying_mkv(path: Path, *, seconds: int, claimed: float) -> Path:
    """A tiny MKV holding ``seconds`` of 1 fps video whose header claims ``claimed`` seconds."""
    import av

    with av.open(str(path), "w", format="matroska") as out:
        vs = out.add_stream("libx264", rate=1)
        vs.width, vs.height, vs.pix_fmt = 32, 32, "yuv420p"
        img = np.zeros((32, 32, 3), np.uint8)
        for i in range(seconds):
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, 1)
            out.mux(vs.encode(frame))
        out.mux(vs.encode())
    data = bytearray(path.read_bytes())
    at = data.find(b"\x44\x89\x88")  # Segment Info > Duration, an 8-byte float in milliseconds
    assert at > 0, "no Duration element written"
    data[at + 3 : at + 11] = struct.pack(">d", claimed * 1000.0)
    path.write_bytes(bytes(data))
    return path


def still_as_mp4(path: Path) -> Path:
    from PIL import Image

    Image.fromarray(np.random.default_rng(0).integers(0, 255, (90, 160, 3), dtype=np.uint8)).save(path, "PNG")
    return path


# ---------------------------------------------------------------------- folders
def test_folder_indexing_is_off_without_roots(lib_path, tmp_path):
    service = _service(lib_path, tmp_path)
    before = len(service.library)
    for folder in ("", "/etc", str(lib_path.parent), ".", None, {"a": 1}):
        with pytest.raises(ParameterError, match="switched off"):
            service.add_folder(folder)
    assert len(service.library) == before


def test_folder_indexing_stays_inside_the_roots(lib_path, tmp_path):
    root, outside = tmp_path / "allowed", tmp_path / "outside"
    (root / "music").mkdir(parents=True)
    outside.mkdir()
    write_midi(root / "music" / "inside-tune.mid", pitches=[60, 64, 67], tempo=120, velocity=90, program=0)
    secret = write_midi(outside / "secret-tune.mid", pitches=[57, 60, 64], tempo=70, velocity=50, program=40)
    (root / "escape").symlink_to(outside, target_is_directory=True)  # a folder link out of the root
    (root / "music" / "leak.mid").symlink_to(secret)  # a file link out of the root
    service = _service(lib_path, tmp_path, index_roots=(root,))
    before = len(service.library)
    for folder in ("", "../outside", str(outside), "escape", "music/../../outside", "/", "nonexistent"):
        with pytest.raises(ParameterError) as err:
            service.add_folder(folder)
        assert str(tmp_path) not in str(err.value)
    msg = service.add_folder("music")
    assert msg.startswith("indexed the folder: added 1 track(s) (inside-tune)"), msg
    # the link out of the root is said to be skipped (it said 0), by name (it said only '1 skipped')
    assert msg.endswith("1 skipped (leak.mid: links to a file outside the folders allowed)"), msg
    assert str(tmp_path) not in msg and "/" not in msg
    titles = [r.title for r in service.library.list()]
    assert "inside-tune" in titles and "secret-tune" not in titles and "leak" not in titles
    assert len(service.library) == before + 1
    again = service.add_folder(str(root / "music"))  # an absolute name inside the root is fine
    assert "added 0 track(s), 1 already in the library" in again


# ---------------------------------------------------------------------- uploads
def test_uploads_are_copied_into_storage_and_duplicates_reported(lib_path, tmp_path):
    service = _service(lib_path, tmp_path)
    upload = write_midi(tmp_path / "upload-tune.mid", pitches=[62, 66, 69], tempo=132, velocity=100, program=56)
    msg = service.add_tracks([upload])
    assert msg == "added 1 track(s): upload-tune", msg
    record = next(r for r in service.library.list() if r.title == "upload-tune")
    stored = Path(record.path)
    assert stored.is_relative_to(service.storage) and stored.name == f"{record.checksum}.mid"
    assert service.storage.parent == lib_path.parent  # beside the database
    upload.unlink()  # the web server empties its upload folder
    restarted = _service(lib_path, tmp_path)
    assert Path(restarted.library.get(record.id).path).is_file()
    again = write_midi(tmp_path / "same-bytes.mid", pitches=[62, 66, 69], tempo=132, velocity=100, program=56)
    assert restarted.add_tracks([again]) == "added 0 track(s); already in the library (duplicates): upload-tune"


def test_two_visitors_adding_the_same_bytes_at_once_hear_it_was_one_track(lib_path, tmp_path, monkeypatch):
    """The second visitor's check ran before the first visitor's track was stored (simulated: the
    library answers that it does not know the bytes yet): it is told of a duplicate, not of a new track."""
    service = _service(lib_path, tmp_path)
    first = write_midi(tmp_path / "race-a.mid", pitches=[60, 63, 67], tempo=100, velocity=90, program=5)
    assert service.add_tracks([first]) == "added 1 track(s): race-a"
    second = write_midi(tmp_path / "race-b.mid", pitches=[60, 63, 67], tempo=100, velocity=90, program=5)
    monkeypatch.setattr(service.library, "by_checksum", lambda checksum: None)
    assert "added 0 track(s); already in the library (duplicates): race-a" in service.add_tracks([second])


def test_a_track_catalogued_under_a_vanished_upload_path_is_repaired(lib_path, tmp_path):
    service = _service(lib_path, tmp_path)
    old = write_midi(tmp_path / "tmp-upload.mid", pitches=[64, 67, 71], tempo=96, velocity=70, program=11)
    legacy = service.library.add(old, title="legacy-tune")  # how uploads were catalogued before
    old.unlink()
    fresh = write_midi(tmp_path / "again.mid", pitches=[64, 67, 71], tempo=96, velocity=70, program=11)
    assert "duplicates): legacy-tune" in service.add_tracks([fresh])
    moved = service.library.get(legacy.id)
    assert Path(moved.path).is_file() and Path(moved.path).is_relative_to(service.storage)


def test_upload_failures_name_the_file_not_the_server_folder(lib_path, tmp_path):
    service = _service(lib_path, tmp_path)
    bad = tmp_path / "noise.mid"
    bad.write_bytes(b"not midi at all")
    script = tmp_path / "evil.sh"
    script.write_text("rm -rf /")
    kept = set(service.storage.rglob("*"))
    msg = service.add_tracks([bad, script])
    assert msg.startswith("added 0 track(s); skipped: noise.mid: ") and "evil.sh: is not an audio or MIDI" in msg
    assert str(tmp_path) not in msg and str(service.storage) not in msg
    assert {p for p in service.storage.rglob("*") if p.is_file()} <= kept  # no orphan bytes kept


def test_a_tiny_midi_holding_hours_is_refused_before_it_is_catalogued(lib_path, tmp_path):
    """71 bytes of MIDI holding a note at ten hours: catalogued, its excerpt rendered the whole ten
    hours (RSS past 2.8 GB before it was stopped). Now it is measured first and refused."""
    import pretty_midi

    pm = pretty_midi.PrettyMIDI(initial_tempo=4)  # slow: ten hours in few ticks
    inst = pretty_midi.Instrument(0)
    inst.notes += [pretty_midi.Note(80, 60, 0.0, 1.0), pretty_midi.Note(80, 64, 36000.0, 36001.0)]
    pm.instruments.append(inst)
    bomb = tmp_path / "ten-hours.mid"
    pm.write(str(bomb))
    assert bomb.stat().st_size < 200
    service = _service(lib_path, tmp_path)
    before = [r.id for r in service.library.list()]
    msg = service.add_tracks([bomb])
    assert msg.startswith("added 0 track(s); skipped: ten-hours.mid: lasts more than 1800 s"), msg
    assert [r.id for r in service.library.list()] == before
    assert not any(p.is_file() for p in service.storage.rglob("*.mid") if "ten-hours" in p.name)


def test_a_long_audio_track_is_measured_by_its_packets_and_refused(lib_path, tmp_path):
    import soundfile as sf

    silence = tmp_path / "long-silence.flac"
    with sf.SoundFile(str(silence), "w", samplerate=8000, channels=1, format="FLAC") as f:
        for _ in range(3):
            f.write(np.zeros(8000 * 60, np.int16))  # three minutes of silence: a few kB
    service = _service(lib_path, tmp_path, max_track_s=120.0)
    before = [r.id for r in service.library.list()]
    msg = service.add_tracks([silence])
    assert "long-silence.flac: lasts more than 120 s" in msg, msg
    assert [r.id for r in service.library.list()] == before


def test_the_upload_limit_is_one_number_of_bytes_and_its_message_never_contradicts(lib_path, tmp_path,
                                                                                  monkeypatch, quiet_service):
    """Gradio's max_file_size and the service's check count the same decimal megabytes; a file just over the
    limit reads as more than it, never as the limit itself."""
    import app

    service = _service(lib_path, tmp_path, max_upload_mb=5)
    over = tmp_path / "over.mp4"
    with over.open("wb") as f:
        f.truncate(5_000_001)
    with pytest.raises(MediaError, match=r"over\.mp4: is 5\.1 MB; the limit is 5 MB"):
        service.check_upload(over)
    assert "over.mp4: is 5.1 MB; the limit is 5 MB" in service.add_tracks([over])
    at = tmp_path / "at.mp4"
    with at.open("wb") as f:
        f.truncate(5_000_000)
    with pytest.raises(MediaError, match="not a readable video"):  # past the size check
        service.check_upload(at)

    launched = {}

    class Page:
        def queue(self, **_kw):
            pass

        def launch(self, **kw):
            launched.update(kw)

    monkeypatch.setattr(app, "build_ui", lambda _service: Page())
    app.serve(AppConfig(max_upload_mb=5), block=False)
    assert launched["max_file_size"] == 5_000_000


def test_serve_says_where_to_open_the_page_and_opens_no_public_link(monkeypatch, capsys, quiet_service):
    """With --share-lan the server printed Gradio's "Running on local URL:  http://0.0.0.0:7860" (no browser
    opens that) and "To create a public link, set `share=True` in `launch()`", and said nothing of who could
    reach it; $GRADIO_SHARE=true asked Gradio for a public tunnel. Now it names the addresses to open, says
    that anyone reaching the port can use the page, and never opens a public link."""
    import socket
    import urllib.request

    import gradio as gr

    import app

    def page(_service):
        with gr.Blocks() as demo:
            gr.Markdown("a page")
        return demo

    monkeypatch.setattr(app, "build_ui", page)
    monkeypatch.setenv("GRADIO_SHARE", "true")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    demo = app.serve(AppConfig(allow_uploads=False), host="0.0.0.0", port=port, block=False)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as resp:
            assert resp.status == 200
        assert demo.share is False
    finally:
        demo.close()
    out = capsys.readouterr().out
    assert f"The page: http://127.0.0.1:{port}/ on this machine; other machines open http://" in out
    assert f"Anyone who can reach port {port} can use it: there is no login" in out
    assert "Visitors cannot add tracks to the library (`--allow-uploads` lets them)." in out
    assert "0.0.0.0" not in out and "share=True" not in out


def test_uploads_can_be_switched_off(lib_path, tmp_path):
    service = _service(lib_path, tmp_path, allow_uploads=False)
    upload = write_midi(tmp_path / "x.mid", pitches=[60], tempo=100, velocity=80, program=0)
    with pytest.raises(ParameterError, match="switched off"):
        service.add_tracks([upload])


# ---------------------------------------------------------------------- identity
def test_the_server_issues_signed_ids_and_refuses_others(lib_path, tmp_path, bright_clip):
    service = _service(lib_path, tmp_path)
    token, uid = service.identify(None)
    assert token.startswith(uid + ".") and service.user_of(token) == uid
    assert service.identify(token) == (token, uid)  # a returning browser keeps its id
    key = next(service.storage.parent.glob("*-identity.key"))
    assert stat.S_IMODE(key.stat().st_mode) == 0o600 and len(key.read_bytes()) == 32
    assert _service(lib_path, tmp_path).user_of(token) == uid  # the key survives a restart
    other = IdentitySigner(b"another server's key, 32 bytes..").sign("victim")
    forged = ["victim", f"{uid}x.{token.rsplit('.', 1)[1]}", "victim." + "0" * 32, other, {"id": "victim"},
              ["victim"], 7, "", "." * 200]
    session = service.new_session()
    before = service.feedback.counts()["recommendations"]
    for bad in forged:
        with pytest.raises(ParameterError, match=r"not an id issued by this server|user_id"):
            service.analyse(session, bright_clip.path, user=bad)
        token2, uid2 = service.identify(bad)  # the page replaces it with a fresh id
        assert uid2 != "victim" and service.user_of(token2) == uid2
    assert service.feedback.counts()["recommendations"] == before  # nothing was logged


def test_a_page_given_no_id_is_told_what_to_do(lib_path, tmp_path, bright_clip):
    """Past the per-address limit a page loads with no id; its Analyse then said "`user_id` is not an id issued
    by this server (received a NoneType)". Now it says, in words, to reload (later, past the limit)."""
    from soundtrack.security import IdIssueLimit

    service = _service(lib_path, tmp_path)
    service.id_limit = IdIssueLimit(limit=1)
    service.identify(None, client="203.0.113.9")
    with pytest.raises(ParameterError, match="new ids"):  # the next page's load: the line at its top
        service.identify(None, client="203.0.113.9")
    session = service.new_session()
    before = service.feedback.counts()["recommendations"]
    for act in (lambda: service.analyse(session, bright_clip.path, user=None),
                lambda: service.export_my_data(session, None), lambda: service.delete_my_data(None)):
        with pytest.raises(ParameterError, match=r"^this page has no anonymous id yet, .*: reload the page"):
            act()
    assert service.feedback.counts()["recommendations"] == before


def test_one_address_cannot_mint_ids_without_end(lib_path, tmp_path):
    """Each id's ratings count up to a cap, so ids free for the asking let one script outvote everyone: new
    ids are bounded per client address in a sliding window; a returning browser keeps its id regardless."""
    from soundtrack.security import IDS_PER_ADDRESS, IdIssueLimit

    service = _service(lib_path, tmp_path)
    now = [0.0]
    service.id_limit = IdIssueLimit(window_s=3600.0, clock=lambda: now[0])
    tokens = [service.identify(None, client="203.0.113.9")[0] for _ in range(IDS_PER_ADDRESS)]
    assert len({service.user_of(t) for t in tokens}) == IDS_PER_ADDRESS
    with pytest.raises(ParameterError, match=rf"given {IDS_PER_ADDRESS} new ids.*the limit is {IDS_PER_ADDRESS}"):
        service.identify(None, client="203.0.113.9")
    with pytest.raises(ParameterError, match="limit"):  # a forged token is no way around it
        service.identify("victim." + "0" * 32, client="203.0.113.9")
    assert service.identify(tokens[0], client="203.0.113.9")[0] == tokens[0]
    service.identify(None, client="198.51.100.4")  # another address has its own count
    now[0] = 3600.5  # the window slides past the first ids
    service.identify(None, client="203.0.113.9")


def test_an_address_standing_for_several_visitors_gets_their_limits(lib_path, tmp_path):
    """Behind a proxy or NAT one address is many visitors (the load test's 20 users on loopback were refused
    past six requests): ``visitors_per_address`` scales both per-address limits."""
    from app import _queue_share
    from soundtrack.security import IDS_PER_ADDRESS, PER_CLIENT, QueueShare

    service = _service(lib_path, tmp_path, visitors_per_address=3)
    tokens = {service.identify(None, client="203.0.113.9")[0] for _ in range(3 * IDS_PER_ADDRESS)}
    assert len(tokens) == 3 * IDS_PER_ADDRESS
    with pytest.raises(ParameterError, match="limit"):
        service.identify(None, client="203.0.113.9")
    assert QueueShare(None, **_queue_share(3).kwargs).limit == 3 * PER_CLIENT
    with pytest.raises(ParameterError, match="visitors_per_address"):
        AppConfig(library=lib_path, work_dir=tmp_path / "w2", visitors_per_address=0)


def test_the_page_counts_new_ids_by_the_visitors_address(lib_path, tmp_path):
    from types import SimpleNamespace

    from gradio.helpers import special_args

    from app import build_ui

    service = _service(lib_path, tmp_path)
    service.id_limit.limit = 2
    on_load = next(fn for fn in build_ui(service).fns.values() if fn.name == "on_load")
    request = SimpleNamespace(client=SimpleNamespace(host="203.0.113.9"))
    notes = []
    for _ in range(3):
        args = special_args(on_load.fn, [None, None], request=request)[0]  # as Gradio calls it
        notes.append(on_load.fn(*args)[-1])
    assert "Your anonymous id" in notes[1] and "the limit is 2" in notes[2]


def test_export_and_delete_my_data(lib_path, tmp_path, bright_clip):
    import json

    service = _service(lib_path, tmp_path)
    me, _ = service.identify(None)
    other, other_id = service.identify(None)
    s1, s2 = service.new_session(), service.new_session()
    service.analyse(s1, bright_clip.path, user=me)
    service.rate(s1, 0, 5)
    service.analyse(s2, bright_clip.path, user=other)
    path = service.export_my_data(s1, me)
    data = json.loads(path.read_text())
    assert path.parent == s1.folder and data["user_id"] == service.user_of(me)
    assert len(data["recommendations"]) == 1 and [e["kind"] for e in data["events"]] == ["rating"]
    with pytest.raises(ParameterError):
        service.export_my_data(s1, other_id)  # an id alone is not enough
    service.learner.refresh()
    ratings = sum(r.n_ratings for r in service.learner.stats())
    assert service.delete_my_data(me, s1) == ("Deleted your data: 1 recommendation, 3 candidates, 1 event. The copy "
                                              "of your data made for download is deleted too. Analyse the clip "
                                              "again to rate its tracks.")
    assert not path.exists()
    with pytest.raises(ParameterError, match="analyse a clip first"):  # the list shown was logged under the id
        service.rate(s1, "1. x", 3)
    assert sum(r.n_ratings for r in service.learner.stats()) == ratings - 1  # the weights forget it at once
    assert service.feedback.export_user(service.user_of(me))["recommendations"] == []
    assert len(service.feedback.export_user(other_id)["recommendations"]) == 1



def test_delete_my_data_removes_the_exports_made_for_download(lib_path, tmp_path, bright_clip, monkeypatch):
    # "Download my data", then "Delete my data": the JSON made for the download (in the session folder,
    # in another tab's, and the copy handed to the browser) held every deleted row for hours after, and
    # the page still offered it for download.
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "gradio"))
    from app import build_ui

    service = _service(lib_path, tmp_path)
    handlers = {fn.name: fn.fn for fn in build_ui(service).fns.values()}
    me, uid = service.identify(None)
    other, other_uid = service.identify(None)
    tab, other_tab, theirs = service.new_session(), service.new_session(), service.new_session()
    service.analyse(tab, bright_clip.path, user=me)
    service.rate(tab, 0, 4)
    note, handed_out = handlers["on_export"](tab, me)
    second = service.export_my_data(other_tab, me)
    kept = service.export_my_data(theirs, other)
    assert uid in Path(handed_out).read_text() and second.is_file()

    note, confirm, offered = handlers["on_delete"](me, True, tab)
    assert note == ("Deleted your data: 1 recommendation, 3 candidates, 1 event. The 2 copies of your data made "
                    "for download are deleted too. Analyse the clip again to rate its tracks.")
    assert offered is None and confirm is False  # the page no longer offers the old file
    assert not Path(handed_out).exists() and not tab.export_file(uid).exists() and not second.exists()
    assert kept.is_file() and other_uid in kept.read_text()  # another user's export stays
    assert handlers["on_delete"](me, True, tab)[0] == "Deleted your data: 0 recommendations, 0 candidates, 0 events."

# ---------------------------------------------------------------------- numbers and media
def test_hostile_numbers_are_refused_in_one_sentence(lib_path, tmp_path, bright_clip):
    service = _service(lib_path, tmp_path)
    session = service.new_session()
    token, _ = service.identify(None)
    service.analyse(session, bright_clip.path, user=token)
    for kw, pattern in [({"seed": 2**70}, "seed` must be within 0 and"), ({"seed": -1}, "seed"),
                        ({"seed": 1.5}, "whole number"), ({"seed": "7"}, "whole number"),
                        ({"tempo": float("nan")}, "tempo"), ({"tempo": 1e9}, "tempo"), ({"energy": 5}, "energy"),
                        ({"style": {"a": 1}}, "style"), ({"style": "../../etc"}, "style")]:
        with pytest.raises(ParameterError, match=pattern):
            service.compose(session, **kw)
    for rating in (float("inf"), "5; DROP TABLE", None, 6, 0):
        with pytest.raises(ParameterError):
            service.rate(session, 0, rating)
    for value in ("x", float("nan"), [1]):
        with pytest.raises(ParameterError):
            service.event(session, "skip", 0, value=value)
    with pytest.raises(ParameterError, match="content_type"):
        service.analyse(session, bright_clip.path, user=token, content_type=["general"])


def test_a_rating_is_a_whole_number_never_a_bool_or_a_float(lib_path, tmp_path, bright_clip):
    """``int(True)`` is 1 and ``int(3.7)`` is 3: such a rating was logged as 1 or 3 stars (False as 0, refused by
    the log with another sentence). Each is refused as any other bad rating is, and nothing is logged."""
    service = _service(lib_path, tmp_path)
    session = service.new_session()
    token, _ = service.identify(None)
    service.analyse(session, bright_clip.path, user=token)
    for rating in (True, False, 3.7, 4.0, "x"):
        with pytest.raises(ParameterError, match=r"choose a rating from 1 to 5 \(received"):
            service.rate(session, 0, rating)
    # out of range, echoed as sent (they read "(received 6.0)", and 10**20 "`value` must be within -1e+09 ...")
    for rating, echo in (("6", "'6'"), ("0", "'0'"), (-1, "-1"), (10**20, "100000000000000000000")):
        with pytest.raises(ParameterError) as refused:
            service.rate(session, 0, rating)
        assert str(refused.value) == f"choose a rating from 1 to 5 (received {echo})"
    assert "rated 4/5" in service.rate(session, 0, "4")  # as the page sends it
    assert "rated 5/5" in service.rate(session, 0, np.int64(5))
    events = service.feedback.export_user(service.user_of(token))["events"]
    assert [(e["kind"], e["value"]) for e in events] == [("rating", 4), ("rating", 5)]


def test_duration_limit_counts_the_packets_not_the_header(lib_path, tmp_path):
    liar = lying_mkv(tmp_path / "liar.mkv", seconds=1200, claimed=10.0)
    import av

    with av.open(str(liar)) as c:
        assert abs(c.duration / 1e6 - 10.0) < 0.5  # the header does lie
    service = _service(lib_path, tmp_path)
    with pytest.raises(MediaError, match=r"liar\.mkv: lasts more than 600 s"):
        service.check_upload(liar)
    with pytest.raises(MediaError, match="lasts more than"):
        service.analyse(service.new_session(), liar, user=service.identify(None)[0])


def test_a_still_image_posing_as_video_is_refused(lib_path, tmp_path):
    service = _service(lib_path, tmp_path)
    still = still_as_mp4(tmp_path / "photo.mp4")
    with pytest.raises(MediaError, match="no video stream with more than one frame"):
        service.analyse(service.new_session(), still, user=service.identify(None)[0])


def test_a_one_point_arc_is_never_scored(lib_path):
    import matching

    one = EmotionArc(times=np.array([0.25]), valence=np.array([0.5]), arousal=np.array([0.2]))
    with pytest.raises(ParameterError, match="at least 2 steps"):
        matching.rank(one, matching.Library(lib_path), k=3)


def test_page_messages_never_show_server_folders(lib_path, tmp_path):
    from app import _error

    service = _service(lib_path, tmp_path)
    broken = tmp_path / "deep" / "folder" / "broken.mp4"
    broken.parent.mkdir(parents=True)
    broken.write_bytes(b"\x00" * 100)
    try:
        service.analyse(service.new_session(), broken, user=service.identify(None)[0])
    except MediaError as err:
        shown = _error(err)
    assert shown.startswith("**Error:** broken.mp4: ") and str(tmp_path) not in shown
    assert _error(RuntimeError(f"boom in {tmp_path}")).startswith("**Error:** the server could not do that")


# ---------------------------------------------------------------------- the operator's switches
def _elem_ids(demo) -> set[str]:
    return {c.get("props", {}).get("elem_id") for c in demo.config["components"]} - {None}


def test_the_page_offers_folders_and_uploads_only_when_the_operator_allows(lib_path, tmp_path):
    from app import build_ui

    closed = build_ui(_service(lib_path, tmp_path, allow_uploads=False))
    assert {"index-folder", "track-upload"}.isdisjoint(_elem_ids(closed))
    assert "index_folder" not in {d.get("api_name") for d in closed.config["dependencies"]}
    opened = build_ui(_service(lib_path, tmp_path, index_roots=(tmp_path,)))
    assert {"index-folder", "track-upload", "export-btn", "delete-btn"} <= _elem_ids(opened)


def test_serve_flags_index_roots_and_uploads_on_the_lan(monkeypatch, tmp_path):
    import app
    from soundtrack.cli import main

    calls = []
    monkeypatch.setattr(app, "serve", lambda config, *, host, port: calls.append((config, host)))
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    assert main(["serve", "--index-root", str(tmp_path / "a"), "--index-root", str(tmp_path / "b")]) == 0
    assert main(["serve", "--share-lan"]) == 0
    assert main(["serve", "--share-lan", "--allow-uploads"]) == 0
    (local, _), (lan, host), (lan_open, _) = calls
    assert local.index_roots == (tmp_path / "a", tmp_path / "b") and local.allow_uploads
    assert host == "0.0.0.0" and lan.index_roots == () and not lan.allow_uploads and lan_open.allow_uploads
    assert main(["serve", "--index-root", str(tmp_path / "missing")]) == 2


# ---------------------------------------------------------------------- one visitor, many requests
class _FakeGradio:
    """Just enough of Gradio's app for :class:`QueueShare`: a join queues an event and answers its id."""

    def __init__(self) -> None:
        light, heavy = type("Fn", (), {"concurrency_limit": None}), type("Fn", (), {"concurrency_limit": "default"})
        self.fns = {0: light, 1: heavy}
        self._queue = type("Queue", (), {"event_ids_to_events": {}})()
        self.joined = 0

    def get_blocks(self):
        return self

    async def __call__(self, scope, receive, send):
        import json

        body = json.loads((await receive())["body"])
        self.joined += 1
        event_id = f"e{self.joined}-{body['fn_index']}"
        self._queue.event_ids_to_events[event_id] = object()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": json.dumps({"event_id": event_id}).encode()})


def _join(share, gradio, host: str, fn_index: int) -> int:
    import asyncio
    import json

    body = json.dumps({"fn_index": fn_index, "data": [], "session_hash": host + str(gradio.joined)}).encode()
    scope = {"type": "http", "method": "POST", "path": "/gradio_api/queue/join", "client": (host, 5000),
             "app": gradio}
    statuses = []

    async def receive():
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message):
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    asyncio.run(share(scope, receive, send))
    return statuses[0]


def test_one_visitor_cannot_fill_the_queue_ahead_of_others():
    """Before: one client queued twelve analyses and the next visitor was tenth in line."""
    from soundtrack.security import PER_CLIENT, QueueShare

    gradio = _FakeGradio()
    share = QueueShare(gradio)
    flood = [_join(share, gradio, "10.0.0.9", 1) for _ in range(PER_CLIENT + 3)]
    assert flood == [200] * PER_CLIENT + [503] * 3
    assert _join(share, gradio, "10.0.0.9", 0) == 200  # a light event (an id, a rating) still goes through
    assert _join(share, gradio, "10.0.0.7", 1) == 200  # another visitor is not held back
    gradio._queue.event_ids_to_events.clear()  # the flood's events finished
    assert _join(share, gradio, "10.0.0.9", 1) == 200


# ---------------------------------------------------------------------- files other visitors were shown
def test_copies_handed_to_a_browser_are_private_to_the_server_account(tmp_path, monkeypatch):
    """Before: a visitor's data export, clip copies and scores lay 0644 in 0755 folders of Gradio's
    cache, readable by every account on the server."""
    import app

    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "cache"))
    (tmp_path / "session").mkdir()
    score = write_midi(tmp_path / "session" / "score.mid", pitches=[60, 64, 67], tempo=100, velocity=80, program=0)
    score.chmod(0o644)
    shown = Path(app._publish(score))
    assert shown.is_relative_to(tmp_path / "cache") and shown.read_bytes() == score.read_bytes()
    assert stat.S_IMODE(shown.stat().st_mode) == 0o600
    assert stat.S_IMODE(shown.parent.stat().st_mode) == 0o700


def test_a_giant_picture_is_refused_before_it_is_decoded(lib_path, tmp_path):
    """Three flat 8192x8192 frames are a 198 kB file that took 737 MB to analyse; past 8K the page
    now refuses the clip from its stream header, before a frame is decoded or a proxy is made."""
    import av

    giant = tmp_path / "giant.mp4"
    with av.open(str(giant), "w") as out:
        stream = out.add_stream("libx264", rate=1)
        stream.width, stream.height, stream.pix_fmt = 8192, 4352, "yuv420p"
        stream.options = {"preset": "ultrafast"}
        frame = np.full((4352, 8192, 3), 90, np.uint8)
        for _ in range(3):
            out.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        out.mux(stream.encode())
    assert giant.stat().st_size < 2_000_000
    service = _service(lib_path, tmp_path)
    with pytest.raises(MediaError, match=r"is 8192x4352 pixels; the largest picture accepted here"):
        service.check_upload(giant)
    with pytest.raises(MediaError, match="pixels"):
        service.show_upload(service.new_session(), giant)


def test_a_hostile_value_is_echoed_short_in_its_refusal():
    """A megabyte of text sent as a seed, a rating or a number was echoed whole in the refusal (1,000,043
    characters): the sentence a visitor reads, and the log, now show its first characters only."""
    from soundtrack.security import check_rating, check_seed, optional_number

    payload = "7x" * 500_000
    for check in (lambda: check_seed(payload), lambda: check_rating(payload),
                  lambda: optional_number("tempo", payload, 1, 300)):
        with pytest.raises(ParameterError) as err:
            check()
        assert "received '7x7x" in str(err.value) and len(str(err.value)) < 200, len(str(err.value))



def test_a_whole_number_too_large_for_a_float_is_refused_as_out_of_range():
    """Python (and its json module) carry integers of hundreds of digits: 10**400 as a seed or a number raised
    OverflowError ("int too large to convert to float") where 2**70 got the sentence saying the range."""
    from soundtrack.security import MAX_SEED, check_seed, optional_number

    for huge in (10**400, -(10**400)):
        with pytest.raises(ParameterError, match=f"`seed` must be within 0 and {MAX_SEED}"):
            check_seed(huge)
        with pytest.raises(ParameterError, match="`tempo` must be within 1 and 300"):
            optional_number("tempo", huge, 1, 300)
    assert check_seed(7.0) == 7 and optional_number("tempo", 120, 1, 300) == 120.0
