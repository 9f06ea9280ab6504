"""Gradio's page state of visits that are over is forgotten while the server runs (soundtrack/page/visits.py)."""

from __future__ import annotations

import datetime
import json
import socket
import time
import urllib.request
import uuid

import gradio as gr

import app
from soundtrack.page import visits
from soundtrack.session import AppConfig


def _page() -> gr.Blocks:
    with gr.Blocks() as demo:
        note = gr.Markdown()
        demo.load(lambda: "hello", None, note, api_name="hello")
    return demo


def test_visits_closed_an_hour_ago_or_unused_past_the_cleanup_age_are_forgotten():
    from gradio.state_holder import StateHolder

    holder = StateHolder()
    holder.set_blocks(_page())
    now = datetime.datetime(2026, 12, 5, 12, 0)
    ages = {"open, used a minute ago": (False, 60), "open, unused for 7 h": (False, 7 * 3600),
            "closed 10 min ago": (True, 600), "closed 2 h ago": (True, 2 * 3600)}
    for visit, (closed, age_s) in ages.items():
        holder[visit].is_closed = closed
        holder.time_last_used[visit] = now - datetime.timedelta(seconds=age_s)
    assert visits.forget_gone(holder, now, idle_s=6 * 3600) == 2
    assert sorted(holder.session_data) == ["closed 10 min ago", "open, used a minute ago"]
    assert set(holder.time_last_used) == set(holder.session_data)


def test_the_running_server_forgets_visits_that_are_over(monkeypatch, quiet_service):
    """Gradio kept each visit's page state (a copy of every component's settings, ~180 KB for the real page)
    until 10,000 visits: 2,000 page loads took a test server from 933 to 1,289 MB, none of it given back.
    The server now sweeps the visits unused for the cleanup age (and closed tabs after an hour)."""

    monkeypatch.setattr(app, "build_ui", lambda _service: _page())
    monkeypatch.setattr(visits, "EVERY_S", 0.05)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/"
    demo = app.serve(AppConfig(cleanup_age_s=3600.0), host="127.0.0.1", port=port, block=False)
    try:
        with urllib.request.urlopen(url + "config", timeout=10) as resp:
            fn = next(d["id"] for d in json.load(resp)["dependencies"] if d.get("api_name") == "hello")
        for _ in range(3):  # three visits, as three page loads make them
            visit = uuid.uuid4().hex[:11]
            body = json.dumps({"data": [], "fn_index": fn, "session_hash": visit}).encode()
            request = urllib.request.Request(url + "gradio_api/queue/join", body, {"Content-Type": "application/json"})
            urllib.request.urlopen(request, timeout=10).read()
            with urllib.request.urlopen(url + f"gradio_api/queue/data?session_hash={visit}", timeout=10) as resp:
                next(line for line in resp if b"process_completed" in line)
        holder = demo.state_holder
        assert len(holder.session_data) == 3
        with holder.lock:  # unused for two hours, past the cleanup age of one
            for visit in holder.time_last_used:
                holder.time_last_used[visit] -= datetime.timedelta(hours=2)
        deadline = time.monotonic() + 30
        while holder.session_data and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(holder.session_data) == 0
    finally:
        demo.close()
