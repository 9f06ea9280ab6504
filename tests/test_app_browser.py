"""The real page in headless Chromium: upload, arc plot, ranked table, preview, rating, errors.

The app runs in a subprocess (``soundtrack serve``) on a free port with a three-track
library, so these tests exercise the CLI, the Gradio wiring and the database together.
A screenshot of the results page is saved to ``test-artifacts/app-results.png``.
"""

from __future__ import annotations

import os
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
from mediagen import Shot, corrupt_copy, make_clip
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
    page.locator("#analyse").click()
    page.locator("#arc-plot img").wait_for(timeout=60_000)
    table = page.locator("#ranked")
    for title in ("bright-march", "slow-lament", "steady-walk"):
        expect(table).to_contain_text(title, timeout=10_000)
    expect(page.locator("#summary")).to_contain_text("cut")

    page.locator("#preview-btn").click()
    video = page.locator("#preview video")
    video.wait_for(timeout=60_000)
    page.wait_for_function("() => { const v = document.querySelector('#preview video'); return v && v.src; }")
    page.evaluate("() => { const v = document.querySelector('#preview video'); v.muted = true; return v.play(); }")
    page.wait_for_function("() => document.querySelector('#preview video').currentTime > 0.2", timeout=20_000)
    page.locator("#skip-btn").click()
    expect(page.locator("#feedback-note")).to_contain_text("Skipped at", timeout=10_000)
    # Play again to the end, fast: a replay and a completion.
    page.evaluate("""() => { const v = document.querySelector('#preview video');
        v.pause(); v.currentTime = 0; v.playbackRate = 8; return v.play(); }""")
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
    assert rating == [(4.0, 0)]
    assert outside == []  # the page fetched nothing from outside this machine
    assert kinds[0] == "play" and {"skip", "replay", "complete", "rating"} <= set(kinds) and shown == 3, kinds
    assert len(skip) == 1 and 0.2 < skip[0][0] < 4.0 and abs(skip[0][1] - 4.0) < 0.2
    page.close()


def test_corrupt_upload_shows_error_and_app_keeps_serving(server, browser, tmp_path):
    good = tmp_path / "good.mp4"
    make_clip(good, shots=[Shot(40, (120, 120, 120), motion=0.5)], fps=25, audio="drone")
    broken = corrupt_copy(good, tmp_path / "broken.mp4", mode="garble")
    page = browser.new_page()
    page.goto(server["url"])
    page.locator("#user-note").get_by_text("anonymous id").wait_for(timeout=20_000)
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
