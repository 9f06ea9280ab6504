"""The real page in headless Chromium: upload, arc plot, ranked table, preview, rating, errors.

The app runs in a subprocess (``soundtrack serve``) on a free port with a three-track
library, so these tests exercise the CLI, the Gradio wiring and the database together.
A screenshot of the results page is saved to ``test-artifacts/app-results.png``.
"""

from __future__ import annotations

import os
import re
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from mediagen import Shot, corrupt_copy, make_audio_file, make_clip, talking_clip
from test_app import build_small_library

pytestmark = pytest.mark.browser

ROOT = Path(__file__).parent.parent
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_http(url: str, proc: subprocess.Popen, log: Path, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the app exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"the app did not answer on {url} within {timeout} s:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    if not CHROMIUM.exists():
        pytest.skip("Debian chromium is not installed at /usr/bin/chromium")
    root = tmp_path_factory.mktemp("browser")
    lib = build_small_library(root / "library")
    db = Path(lib.url)
    port = _free_port()
    log = root / "server.log"
    env = {**os.environ, "SOUNDTRACK_HOME": str(root / "home"), "GRADIO_ANALYTICS_ENABLED": "False"}
    cmd = [sys.executable, "-m", "soundtrack.cli", "serve", "--library", str(db), "--port", str(port),
           "--work-dir", str(root / "work"), "-k", "3"]
    with log.open("w") as fh:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=fh, stderr=subprocess.STDOUT)
    try:
        _wait_http(f"http://127.0.0.1:{port}/", proc, log)
        yield {"url": f"http://127.0.0.1:{port}/", "db": db, "root": root}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


def _upload(page, path: Path) -> None:
    page.locator("#clip input[type=file]").set_input_files(str(path))
    page.locator("#clip video").first.wait_for(state="attached", timeout=20_000)


def test_upload_rank_preview_and_rate(server, browser, tmp_path):
    from playwright.sync_api import expect

    clip = tmp_path / "clip.mp4"
    make_clip(clip, shots=[Shot(50, (30, 40, 120), motion=0.1), Shot(50, (250, 160, 40), motion=1.0)],
              fps=25, audio="percussion")
    page = browser.new_page(viewport={"width": 1280, "height": 1400})
    outside: list[str] = []
    local = ("http://127.0.0.1", "data:", "blob:")
    page.on("request", lambda r: None if r.url.startswith(local) else outside.append(r.url))
    page.goto(server["url"])
    page.locator("#user-note").get_by_text("anonymous id").wait_for(timeout=20_000)
    _upload(page, clip)
    page.locator("#subtitles input[type=file]").set_input_files(str(ROOT / "tests" / "data" / "joy_then_grim.srt"))
    # Gradio shows the name as two spans, stem and suffix; the text between them may read as a space
    expect(page.locator("#subtitles")).to_contain_text(re.compile(r"joy_then_grim\s*\.srt"), timeout=20_000)
    page.locator("#analyse").click()
    page.locator("#arc-plot img").wait_for(timeout=60_000)
    table = page.locator("#ranked")
    for title in ("bright-march", "slow-lament", "steady-walk"):
        expect(table).to_contain_text(title, timeout=10_000)
    expect(page.locator("#summary")).to_contain_text("cut")
    expect(page.locator("#summary")).to_contain_text(re.compile(r"Read from: [a-z, ]*subtitles"))  # the upload spoke
    page.locator("#rate-btn").click()  # no stars yet: said under the rating...
    expect(page.locator("#feedback-note")).to_contain_text("pick a rating (1 to 5) first", timeout=10_000)

    page.locator("#preview-btn").click()
    video = page.locator("#preview video")
    video.wait_for(timeout=60_000)
    expect(page.locator("#feedback-note")).to_have_text("", timeout=10_000)  # ...and gone once another button answers
    page.wait_for_function("() => { const v = document.querySelector('#preview video'); return v && v.src; }")
    page.evaluate("() => { const v = document.querySelector('#preview video'); v.muted = true; return v.play(); }")
    page.wait_for_function("() => document.querySelector('#preview video').currentTime > 0.2", timeout=20_000)
    first_src = video.get_attribute("src")
    page.locator("#rating").get_by_text("2", exact=True).click()
    page.locator("#skip-btn").click()
    expect(page.locator("#feedback-note")).to_contain_text("Skipped at", timeout=10_000)
    # Skip moves on (issue 15): the next track is chosen, previewed, and the old rating is cleared.
    expect(page.locator("#choice input")).to_have_value(re.compile(r"^2\. "), timeout=20_000)
    page.wait_for_function("(src) => { const v = document.querySelector('#preview video'); "
                           "return v && v.src && v.getAttribute('src') !== src; }", arg=first_src, timeout=30_000)
    assert page.locator("#rating input:checked").count() == 0
    # Play the next track to the end, fast: a play and a completion.
    page.evaluate("""() => { const v = document.querySelector('#preview video');
        v.muted = true; v.currentTime = 0; v.playbackRate = 8; return v.play(); }""")
    page.wait_for_function("() => document.querySelector('#preview video').ended", timeout=20_000)

    page.locator("#rating").get_by_text("4", exact=True).click()
    page.locator("#rate-btn").click()
    page.locator("#feedback-note").get_by_text("rated 4/5").wait_for(timeout=20_000)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "app-results.png"), full_page=True)

    with sqlite3.connect(server["db"]) as conn:
        kinds = [r[0] for r in conn.execute("SELECT kind FROM feedback_events ORDER BY id")]
        rating = conn.execute("SELECT value, position FROM feedback_events WHERE kind='rating'").fetchall()
        shown = conn.execute("SELECT COUNT(*) FROM feedback_candidates").fetchone()[0]
        skip = conn.execute("SELECT value, duration FROM feedback_events WHERE kind='skip'").fetchall()
    assert rating == [(4.0, 1)]  # on the track skip moved to
    assert outside == []  # the page fetched nothing from outside this machine
    assert kinds[0] == "play" and {"skip", "complete", "rating"} <= set(kinds) and shown == 3, kinds
    assert len(skip) == 1 and 0.2 < skip[0][0] < 4.0 and abs(skip[0][1] - 4.0) < 0.2
    page.close()


#: Drops a file (its bytes in base64) on an element as a browser does: drag enter, over, drop.
DROP_JS = """([selector, name, type, data]) => {
    const file = new File([Uint8Array.from(atob(data), ch => ch.charCodeAt(0))], name, {type});
    const dt = new DataTransfer(); dt.items.add(file); const target = document.querySelector(selector);
    for (const kind of ['dragenter', 'dragover', 'drop'])
        target.dispatchEvent(new DragEvent(kind, {dataTransfer: dt, bubbles: true, cancelable: true})); }"""


def _drop(page, selector: str, path: Path, mime: str) -> None:
    import base64

    page.evaluate(DROP_JS, [selector, path.name, mime, base64.b64encode(path.read_bytes()).decode()])


def test_corrupt_upload_shows_error_and_app_keeps_serving(server, browser, tmp_path):
    from playwright.sync_api import expect

    good = tmp_path / "good.mp4"
    make_clip(good, shots=[Shot(40, (120, 120, 120), motion=0.5)], fps=25, audio="drone")
    broken = corrupt_copy(good, tmp_path / "broken.mp4", mode="garble")
    page = browser.new_page()
    page.goto(server["url"])
    page.locator("#user-note").get_by_text("anonymous id").wait_for(timeout=20_000)
    # Not a video: the page says in its own words what goes where (Gradio's pop-up said "Invalid file type:
    # tone.wav. Only video/x-m4v,video/* allowed.")
    _drop(page, "#clip [data-testid=file-upload]", make_audio_file(tmp_path / "tone.wav", seconds=0.5), "audio/wav")
    expect(page.locator("#clip-note")).to_contain_text("tone.wav is music, not a video", timeout=10_000)
    expect(page.locator("#clip-note")).to_contain_text("Library tab")
    (tmp_path / "notes.txt").write_text("not a clip")
    page.locator("#clip input[type=file]").set_input_files(str(tmp_path / "notes.txt"))  # picked, not dropped
    expect(page.locator("#clip-note")).to_contain_text("notes.txt is not a video: upload a video clip", timeout=10_000)
    # The subtitles box answers the same way (it showed "Invalid file type: tone.wav. Only .srt, .vtt, .ass, .ssa
    # allowed."), dropped or picked, and a subtitle file it takes clears the answer
    _drop(page, "#subtitles [data-testid=file-upload]", tmp_path / "tone.wav", "audio/wav")
    expect(page.locator("#subtitles-note")).to_contain_text("tone.wav is music, not subtitles", timeout=10_000)
    page.locator("#subtitles input[type=file]").set_input_files(str(good))
    expect(page.locator("#subtitles-note")).to_contain_text("good.mp4 is a video: put it in the Clip box",
                                                            timeout=10_000)
    assert page.locator(".toast-body").count() == 0
    page.locator("#subtitles input[type=file]").set_input_files(str(ROOT / "tests" / "data" / "joy_then_grim.srt"))
    expect(page.locator("#subtitles")).to_contain_text(re.compile(r"joy_then_grim\s*\.srt"), timeout=20_000)
    expect(page.locator("#subtitles-note")).to_have_text("", timeout=10_000)
    page.locator("#clip input[type=file]").set_input_files(str(broken))
    page.wait_for_timeout(1000)
    page.locator("#analyse").click()
    err = page.locator("#error")
    err.get_by_text("broken.mp4").wait_for(timeout=30_000)
    assert "Error" in err.inner_text()
    with urllib.request.urlopen(server["url"], timeout=5) as resp:  # still serving
        assert resp.status == 200
    page.close()


def test_no_folder_box_without_index_root_and_no_session_file_by_path(server, browser, tmp_path):
    """Issue 14: the folder box is absent unless the operator names --index-root, the API has no such
    endpoint, and files under the work folder are not served by path (only the copies a page was shown)."""
    import json

    page = browser.new_page()
    page.goto(server["url"])
    page.locator("#user-note").get_by_text("anonymous id").wait_for(timeout=20_000)
    page.get_by_role("tab", name="Library").click()
    page.locator("#track-upload").wait_for(timeout=10_000)  # on loopback, uploads stay on
    assert page.locator("#index-folder").count() == 0 and page.get_by_text("index a folder").count() == 0
    with urllib.request.urlopen(server["url"] + "config", timeout=5) as resp:
        names = {d.get("api_name") for d in json.load(resp)["dependencies"]}
    assert "index_folder" not in names and "identify" in names

    clip = tmp_path / "mine.mp4"
    make_clip(clip, shots=[Shot(30, (200, 90, 40), motion=0.6)], fps=25, audio="drone")
    page.get_by_role("tab", name="Score a clip").click()
    _upload(page, clip)
    page.locator("#analyse").click()
    img = page.locator("#arc-plot img")
    img.wait_for(timeout=60_000)
    shown = urllib.parse.urljoin(server["url"], img.get_attribute("src"))
    with urllib.request.urlopen(shown, timeout=5) as resp:  # what this page was shown: served
        assert resp.status == 200 and resp.read(4) == b"\x89PNG"
    session_files = sorted((server["root"] / "work" / "sessions").rglob("*.*"))
    assert session_files, "the analysis left no session files to probe"
    for path in session_files:  # by path: refused
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(f"{server['url']}gradio_api/file={path}", timeout=5)
        assert err.value.code == 403, path
    page.close()


def _analysed(browser, server, clip: Path, *, viewport: dict, theme: str = ""):
    page = browser.new_page(viewport=viewport)
    page.goto(server["url"] + theme)
    page.locator("#user-note").get_by_text("anonymous id").wait_for(timeout=20_000)
    _upload(page, clip)
    page.locator("#analyse").click()
    page.locator("#arc-plot img").wait_for(timeout=60_000)
    from playwright.sync_api import expect

    expect(page.locator("#ranked")).to_contain_text("bright-march", timeout=20_000)
    return page


def _fit_cells(page) -> list[str]:
    return [page.get_by_test_id(f"cell-{row}-0").inner_text().strip() for row in range(3)]


@pytest.fixture(scope="module")
def two_shots(tmp_path_factory):
    clip = tmp_path_factory.mktemp("shots") / "harbour-at-dusk.mp4"
    make_clip(clip, shots=[Shot(50, (30, 40, 120), motion=0.1), Shot(50, (250, 160, 40), motion=1.0)],
              fps=25, audio="percussion")
    return clip


def test_desktop_reads_at_a_glance_and_compose_opens_when_nothing_fits(server, browser, two_shots, tmp_path):
    """Issue 15 at 1280 px: fit words, plain names, errors beside their control, stems and a titled score."""
    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    page.goto(server["url"])
    page.locator("#user-note").get_by_text("anonymous id").wait_for(timeout=20_000)
    expect(page.locator("#user-note")).to_contain_text("what you did with them")
    page.locator("#preview-btn").click()  # nothing analysed yet: the error shows beside the preview button
    expect(page.locator("#preview-error")).to_contain_text("analyse a clip first", timeout=10_000)
    assert page.locator("#error").inner_text().strip() == ""
    page.close()

    page = _analysed(browser, server, two_shots, viewport={"width": 1280, "height": 1000})
    expect(page.locator("#ranked")).to_contain_text("fit")
    assert not page.locator("#plot-hint").is_visible()  # the whole plot fits: no swipe hint
    assert not page.locator("#ranked-hint").is_visible()  # nor the table's
    button, player = page.locator("#preview-btn").bounding_box(), page.locator("#preview").bounding_box()
    assert button and player and player["x"] > button["x"] + button["width"], (button, player)  # side by side
    cells = _fit_cells(page)
    assert all(re.fullmatch(r"\d{1,3} (great|good|weak)", c) for c in cells), cells
    # the small library fits this clip badly: the summary says so and the compose box is open by itself
    expect(page.locator("#summary")).to_contain_text("no track fits well")
    expect(page.locator("#compose-btn")).to_be_visible(timeout=10_000)
    page.locator("#instrument input").click()  # as a creator does: click, then type
    page.keyboard.type("viol")
    expect(page.get_by_role("option", name="Violin", exact=True)).to_be_visible(timeout=10_000)
    page.get_by_role("option", name="Violin", exact=True).click()
    page.locator("#compose-btn").click()
    page.locator("#composed video").wait_for(timeout=120_000)
    files = page.locator("#downloads")
    for suffix in (".mid", ".musicxml", ".wav", ".mp4", "-stems", ".zip"):
        expect(files).to_contain_text(suffix, timeout=30_000)
    expect(files).to_contain_text(re.compile(r"harbour-at-dusk-cinematic-0\s*\.mid"))  # named after its clip
    # no remove button (×) beside a composed file: a click took it off the list, and nothing brought it back
    assert page.locator("#downloads button[aria-label='Remove this file']:visible").count() == 0
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "app-desktop.png"), full_page=True)
    # Another clip: nothing made for the last one stays on show (its score, files, list and summary).
    other = tmp_path / "second.mp4"
    make_clip(other, shots=[Shot(40, (200, 200, 60), motion=0.5)], fps=25, audio="percussion")
    page.locator("#clip").get_by_role("button", name=re.compile("clear", re.I)).first.click()
    expect(page.locator("#composed video")).to_have_count(0, timeout=10_000)  # clearing the clip is enough
    _upload(page, other)
    expect(page.locator("#downloads")).not_to_contain_text(".mid")
    expect(page.locator("#summary")).to_have_text("")
    assert _fit_cells_or_none(page) is None
    page.locator("#preview-btn").click()  # the old list cannot be previewed on the new clip
    expect(page.locator("#preview-error")).to_contain_text("analyse a clip first", timeout=10_000)
    page.screenshot(path=str(ARTIFACTS / "app-new-clip.png"), full_page=True)
    page.close()


def _fit_cells_or_none(page):
    return None if page.get_by_test_id("cell-0-0").count() == 0 else _fit_cells(page)


def _whole_columns_in_view(page, table: str, names: list[str]) -> None:
    """The first ``len(names)`` columns of ``table``: named so, and header and first row inside the viewport."""
    width = page.viewport_size["width"]
    for i, name in enumerate(names):
        header = page.locator(f"{table} th[data-testid=header-{i}]")
        assert header.inner_text().strip() == name
        for box in (header.bounding_box(), page.locator(f"{table} [data-testid=cell-0-{i}]").bounding_box()):
            assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width, (name, box)


def test_phone_keeps_the_fit_column_in_view(server, browser, two_shots):
    from playwright.sync_api import expect

    page = _analysed(browser, server, two_shots, viewport={"width": 390, "height": 844})
    header = page.locator("#ranked th:visible").first
    box = header.bounding_box()
    assert "fit" in header.inner_text() and box is not None and box["x"] + box["width"] <= 390, box
    first = page.get_by_test_id("cell-0-0")
    assert re.fullmatch(r"\d{1,3} (great|good|weak)", first.inner_text().strip())
    cell = first.bounding_box()
    assert cell is not None and cell["x"] >= 0 and cell["x"] + cell["width"] <= 390, cell
    # fit, track and mood whole in view (only fit and part of the track were: Gradio sets the widths inline);
    # the rest scrolls sideways, as a line above the table says
    _whole_columns_in_view(page, "#ranked", ["fit", "track", "mood"])
    expect(page.locator("#ranked-hint")).to_contain_text("Swipe the table sideways")
    # the plot keeps a readable width (>= 600 px) and starts at its left edge: it scrolls, it is not cut
    plot = page.locator("#arc-plot img").bounding_box()
    frame = page.locator("#arc-plot").bounding_box()
    assert plot is not None and frame is not None and plot["width"] >= 600 and plot["x"] >= frame["x"] - 1, plot
    # ...and a phone shows no scroll bar: a line above the plot says to swipe it (the laptop shows none)
    assert page.locator("#arc-plot .image-container").evaluate("e => e.scrollWidth > e.clientWidth + 100")
    hint = page.locator("#plot-hint")
    assert hint.is_visible() and "Swipe the plot sideways" in hint.inner_text()
    hint_box = hint.bounding_box()
    assert hint_box is not None and hint_box["y"] + hint_box["height"] <= frame["y"] + 1, (hint_box, frame)
    # the preview player comes right after its button, before skip, the track alone and the rating (it came
    # after them all, so a tap on the button changed nothing in view)
    boxes = {k: page.locator(k).bounding_box() for k in ("#preview-btn", "#preview", "#skip-btn", "#rating")}
    assert all(boxes.values()), boxes
    assert boxes["#preview-btn"]["y"] < boxes["#preview"]["y"] < boxes["#skip-btn"]["y"] < boxes["#rating"]["y"], boxes
    page.locator("#alone-btn").click()  # "Hear the track alone": it plays, its clock moves on by itself
    page.wait_for_function("() => { const t = document.querySelector('#alone').innerText.match(/\\d+:\\d\\d/g);"
                           " return t && t.length >= 2 && t[0] !== '0:00'; }", timeout=30_000)  # the clock, first
    stars = [b["y"] for b in (label.bounding_box() for label in page.locator("#rating label").all()) if b]
    assert len(stars) == 5 and len(set(stars)) == 1, stars  # 1 to 5 on one line (the 5 wrapped alone)
    # a file offered for download shows its whole name (Gradio cut it to "my-data-2… .json", "harbo… .wav")
    page.get_by_text("Your data", exact=True).last.click()
    page.locator("#export-btn").click()
    stem = page.locator("#data-file td.filename .stem").first
    stem.wait_for(timeout=20_000)
    assert stem.evaluate("e => e.scrollWidth <= e.clientWidth"), stem.inner_text()
    box = page.locator("#data-file [data-testid=download-link]").first.bounding_box()
    assert box is not None and box["x"] + box["width"] <= 390, box  # the size and link stay in view
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "app-phone.png"), full_page=True)
    page.get_by_role("tab", name="Library").click()  # the catalogue: its id and title whole, the rest swiped to
    page.locator("#catalogue [data-testid=cell-0-1]").wait_for(timeout=20_000)
    _whole_columns_in_view(page, "#catalogue", ["id", "title"])
    expect(page.locator("#catalogue-hint")).to_contain_text("Swipe the table sideways")
    page.close()


def test_dark_mode_plot_is_transparent(server, browser, two_shots):
    page = _analysed(browser, server, two_shots, viewport={"width": 1280, "height": 1000}, theme="?__theme=dark")
    assert "dark" in (page.locator("body").get_attribute("class") or "")
    src = urllib.parse.urljoin(server["url"], page.locator("#arc-plot img").get_attribute("src"))
    with urllib.request.urlopen(src, timeout=5) as resp:
        png = resp.read()
    assert png[25] == 6  # PNG colour type 6: RGBA, so the page's dark background shows through
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "app-dark.png"), full_page=True)
    page.close()


def test_unplayable_clip_is_shown_through_a_proxy_and_stale_errors_clear(server, browser, two_shots, tmp_path):
    from playwright.sync_api import expect

    odd = tmp_path / "four-four-four.mp4"  # H.264 4:4:4: Chromium cannot play it
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(two_shots), "-c:v", "libx264", "-pix_fmt",
                    "yuv444p", "-c:a", "copy", str(odd)], check=True)
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    page.goto(server["url"])
    page.locator("#user-note").get_by_text("anonymous id").wait_for(timeout=20_000)
    page.locator("#analyse").click()  # no clip yet: the error shows under the button
    expect(page.locator("#error")).to_contain_text("upload a clip", timeout=20_000)
    _upload(page, odd)
    page.locator("#analyse").click()
    expect(page.locator("#summary")).to_contain_text("converted for the browser", timeout=60_000)
    expect(page.locator("#error")).to_have_text("", timeout=10_000)  # the old error went with the success
    # the clip plays in its own player (its small copy); the preview player waits for a track on the clip
    page.evaluate("() => { const v = document.querySelector('#clip video'); v.muted = true; return v.play(); }")
    page.wait_for_function("() => document.querySelector('#clip video').currentTime > 0.2", timeout=20_000)
    assert page.evaluate("() => !document.querySelector('#preview video')?.src")
    page.locator("#preview-btn").click()
    page.wait_for_function("() => { const v = document.querySelector('#preview video'); return v && v.src; }",
                           timeout=60_000)
    page.evaluate("() => { const v = document.querySelector('#preview video'); v.muted = true; return v.play(); }")
    page.wait_for_function("() => document.querySelector('#preview video').currentTime > 0.2", timeout=20_000)
    page.close()


def test_an_upload_the_browser_cannot_play_is_shown_as_a_playable_copy(server, browser, two_shots, tmp_path):
    from playwright.sync_api import expect

    avi = tmp_path / "camera.avi"  # MJPEG in AVI: Chromium cannot play it ("Video not playable")
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(two_shots), "-c:v", "mjpeg", "-q:v", "5",
                    "-c:a", "pcm_s16le", str(avi)], check=True)
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    page.goto(server["url"])
    page.locator("#user-note").get_by_text("anonymous id").wait_for(timeout=20_000)
    _upload(page, avi)
    expect(page.locator("#clip-note")).to_contain_text("video codec mjpeg", timeout=30_000)
    page.wait_for_function("() => { const v = document.querySelector('#clip video');"
                           " return v && v.src.endsWith('.mp4') && v.videoWidth > 0 && !v.error; }", timeout=20_000)
    expect(page.locator(".toast-body")).to_have_count(0, timeout=10_000)  # the stale toast went with the copy
    page.locator("#analyse").click()
    expect(page.locator("#summary")).to_contain_text("cut", timeout=60_000)
    expect(page.locator("#error")).to_have_text("")
    expect(page.locator("#clip-note")).to_contain_text("video codec mjpeg")  # the copy's note stays with it
    page.close()


def test_a_reload_brings_the_last_list_back(server, browser, two_shots):
    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    page.goto(server["url"])
    page.locator("#user-note").get_by_text("anonymous id").wait_for(timeout=20_000)
    _upload(page, two_shots)
    page.locator("#sources").get_by_label("faces").uncheck()  # a setting the list was made with
    page.locator("#analyse").click()
    expect(page.locator("#ranked")).to_contain_text("bright-march", timeout=60_000)
    summary = page.locator("#summary").inner_text()
    page.reload()
    page.locator("#user-note").get_by_text("anonymous id").wait_for(timeout=20_000)
    expect(page.locator("#ranked")).to_contain_text("bright-march", timeout=20_000)
    expect(page.locator("#summary")).to_have_text(summary)
    page.locator("#arc-plot img").wait_for(timeout=10_000)
    page.wait_for_function("() => { const v = document.querySelector('#clip video'); return v && v.videoWidth > 0; }",
                           timeout=20_000)
    expect(page.locator("#choice input")).to_have_value(re.compile(r"^1\. "))
    expect(page.locator("#sources").get_by_label("faces")).not_to_be_checked()
    expect(page.locator("#sources").get_by_label("visual")).to_be_checked()
    page.locator("#preview-btn").click()  # the list answers as before the reload
    page.wait_for_function("() => { const v = document.querySelector('#preview video'); return v && v.src; }",
                           timeout=60_000)
    expect(page.locator("#preview-error")).to_have_text("")
    page.close()


def test_library_tab_plays_a_track_alone(server, browser):
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    page.goto(server["url"])
    page.locator("#user-note").get_by_text("anonymous id").wait_for(timeout=20_000)
    page.get_by_role("tab", name="Library").click()
    from playwright.sync_api import expect

    durations = page.locator("#catalogue [data-testid$='-3'][data-testid^='cell-']").all_inner_texts()
    assert len(durations) == 3 and all(re.fullmatch(r"\d+\.\d", d) for d in durations), durations
    page.locator("#catalogue").get_by_text("slow-lament").first.click()
    page.locator("#lib-audio button.play-pause-button").wait_for(timeout=30_000)  # a player with the track
    expect(page.locator("#lib-audio")).to_contain_text(re.compile(r"slow-lament \((its first 30|all [\d.]+) s\)"))
    # it plays at the click (the player sits under the table, off screen on a laptop and a phone): the
    # player's clock moves on by itself
    page.wait_for_function("() => { const t = document.querySelector('#lib-audio').innerText.match(/\\d+:\\d\\d/g);"
                           " return t && t.length >= 2 && t[0] !== '0:00'; }", timeout=20_000)
    assert page.locator("#lib-note").inner_text().strip() == ""
    page.close()


def test_the_clip_sound_choice_reaches_preview_and_compose(server, browser, tmp_path):
    """A clip with a spoken line keeps it under a composed score, the music as far under its speech as
    the slider says; "replace" drops it."""
    from playwright.sync_api import expect

    shots = [Shot(100, (30, 40, 120), motion=0.2), Shot(100, (250, 160, 40), motion=0.6)]
    made = talking_clip(tmp_path / "interview.mp4", [(1.0, "I am so happy to see all my friends again.")], shots=shots)
    if made is None:
        pytest.skip("espeak-ng (Debian package) is not installed")
    page = _analysed(browser, server, made[0], viewport={"width": 1280, "height": 1000})
    if not page.locator("#compose-btn").is_visible():  # the box opens by itself when no track fits
        page.locator("#compose-box").get_by_text("Compose instead").first.click()
    page.locator("#duck input[type=number]").fill("20")
    page.locator("#duck input[type=number]").press("Enter")
    page.locator("#compose-btn").click()
    expect(page.locator("#compose-note")).to_contain_text("dialogue is kept", timeout=120_000)
    expect(page.locator("#compose-note")).to_contain_text("sits 20 dB under it while people speak")
    page.locator("#clip-sound").get_by_text("Replace it with the music").click()
    page.locator("#preview-btn").click()
    page.wait_for_function("() => { const v = document.querySelector('#preview video'); "
                           "return v && (v.getAttribute('src') || '').includes('-replace'); }", timeout=60_000)
    page.locator("#compose-btn").click()
    expect(page.locator("#compose-note")).to_contain_text("replaced by the music", timeout=120_000)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "app-clip-sound.png"), full_page=True)
    page.close()


def test_live_tab_refuses_without_a_clip_and_plays_after_one(server, browser, two_shots):
    """Play live before any analysis said so, but still started the score's stream: its player showed
    "playing" at 0:00 / 0:00 beside the error. The refusal now starts nothing; after an analysis it plays."""
    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": 390, "height": 844})
    page.goto(server["url"])
    page.locator("#user-note").get_by_text("anonymous id").wait_for(timeout=20_000)
    page.get_by_role("tab", name="Live").click()
    page.locator("#live-stop").click()  # nothing has played: Stop says so (it said "stopped")
    expect(page.locator("#live-status")).to_contain_text("nothing is playing", timeout=20_000)
    page.locator("#live-start").click()
    expect(page.locator("#live-status")).to_contain_text("analyse a clip in the first tab", timeout=20_000)
    page.wait_for_timeout(2000)  # the old chain went on to the stream here
    assert page.locator("#live-audio audio").count() == 0
    expect(page.locator("#live-status")).to_contain_text("analyse a clip in the first tab")
    assert page.locator(".toast-body").count() == 0  # the stop is silent: the status line says it all
    page.close()

    page = _analysed(browser, server, two_shots, viewport={"width": 390, "height": 844})
    page.get_by_role("tab", name="Live").click()
    page.locator("#live-start").click()
    expect(page.locator("#live-status")).to_contain_text(re.compile(r"Live: \d+\.\d / \d+\.\d s"), timeout=60_000)
    page.locator("#live-audio audio").wait_for(state="attached", timeout=20_000)
    page.locator("#live-stop").click()
    expect(page.locator("#live-status")).to_contain_text("Live: stopped", timeout=10_000)
    page.close()


def test_the_upload_guard_refuses_a_clip_over_the_limit_and_names_its_size(browser):
    """The guard (page.assets.upload_guard_js) on a bare page: a video over the limit is refused with its
    size (Gradio's pop-up said "File(s) exceed the maximum allowed size of 190.7 Mb"), one under it passes."""
    from soundtrack.page.assets import REFUSED_JS, upload_guard_js

    page = browser.new_page()
    page.set_content('<div id="clip"><input type="file"></div>'
                     '<button id="clip-refuse-btn" onclick="window.refusals = (window.refusals || 0) + 1">')
    page.evaluate(upload_guard_js({"clip": ("video/",)}, 1000))
    box = page.locator("#clip input[type=file]")
    box.set_input_files(files=[{"name": "holiday.mp4", "mimeType": "video/mp4", "buffer": b"\0" * 1500}])
    assert page.evaluate("window.refusals") == 1 and page.evaluate(REFUSED_JS) == ["holiday.mp4", 1500]
    assert page.evaluate("document.querySelector('#clip input').value") == ""  # Gradio never gets it
    box.set_input_files(files=[{"name": "short.mp4", "mimeType": "video/mp4", "buffer": b"\0" * 900}])
    assert page.evaluate("window.refusals") == 1  # under the limit: the box takes it
    box.set_input_files(files=[{"name": "tone.wav", "mimeType": "audio/wav", "buffer": b"\0" * 1500}])
    assert page.evaluate("window.refusals") == 2 and page.evaluate(REFUSED_JS) == ["tone.wav", 0]  # its kind
    page.close()


def test_a_portrait_clip_fits_the_window_in_each_player(server, browser, tmp_path):
    """A 9:16 clip filled each player's width: on a 1366x768 laptop the clip was 398x708 px, the preview
    798x1419 and the composed score 1188x2112, so no player showed the whole frame. Each now stays within
    70 % of the window's height, the picture whole inside it."""
    clip = tmp_path / "vertical.mp4"
    make_clip(clip, shots=[Shot(50, (30, 40, 120), motion=0.1), Shot(50, (250, 160, 40), motion=1.0)], fps=25,
              size=(180, 320), audio="percussion")
    page = _analysed(browser, server, clip, viewport={"width": 1366, "height": 768})
    page.locator("#preview-btn").click()
    page.locator("#preview video").wait_for(timeout=60_000)
    if not page.locator("#compose-btn").is_visible():  # the box opens by itself when no track fits
        page.locator("#compose-box").get_by_text("Compose instead").first.click()
    page.locator("#compose-btn").click()
    page.locator("#composed video").wait_for(timeout=120_000)
    for player in ("#clip video", "#preview video", "#composed video"):
        box = page.locator(player).first.bounding_box()
        assert box is not None and box["height"] <= 0.7 * 768 + 1, (player, box)
        assert page.locator(player).first.evaluate("v => getComputedStyle(v).objectFit") == "contain", player
    page.close()


def test_analyse_pressed_again_while_it_runs_answers_the_last_settings(server, browser, tmp_path):
    """Analyse pressed, audio switched off, Analyse pressed again while the first ran: the second press was
    dropped (Gradio's 'once'), and the page showed the first list ("Read from: visual, audio") under a
    box that read audio off. The last press now runs once the first is done, and its list stays."""
    from playwright.sync_api import expect

    clip = tmp_path / "minute.mp4"
    make_clip(clip, shots=[Shot(750, (30, 40, 120), motion=0.3), Shot(750, (250, 160, 40), motion=0.8)],
              size=(160, 90), audio="percussion")
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    page.goto(server["url"])
    page.locator("#user-note").get_by_text("anonymous id").wait_for(timeout=20_000)
    _upload(page, clip)
    page.locator("#analyse").click()
    expect(page.locator("#summary")).to_contain_text("analysing", timeout=30_000)  # the first is running
    page.locator("#sources").get_by_label("audio").uncheck()
    page.locator("#analyse").click()
    expect(page.locator("#summary")).to_contain_text(re.compile(r"Read from: visual;"), timeout=120_000)
    expect(page.locator("#error")).to_have_text("")
    page.close()
