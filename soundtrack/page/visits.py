"""Forgetting the page state of visits that are over.

Gradio keeps one ``SessionState`` per visit (per page load, or per API client's session): a copy
of every component's settings, about 180 KB for this page, besides the visit's ``gr.State``
values. When a tab closes it deletes the values an hour later, but keeps the rest until 10,000
visits have been made (``state_session_capacity``): on a test server 2,000 page loads took the
server from 933 to 1,289 MB, and nothing came back. :func:`sweeper` drops a visit's state once
its tab has been closed for ``CLOSED_S`` (Gradio's own wait before it deletes the values) or it
has been unused for the page's cleanup age (its clip and files are deleted by then).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
from collections.abc import AsyncIterator, Callable
from typing import Any

#: How long the state of a closed tab is kept, as Gradio keeps its values: time to come back to it.
CLOSED_S = 3600.0
#: How often the sweep runs (seconds).
EVERY_S = 60.0


def forget_gone(holder: Any, now: datetime.datetime, *, idle_s: float, closed_s: float = CLOSED_S) -> int:
    """Drop from Gradio's ``holder`` (a ``StateHolder``) the visits closed over ``closed_s`` ago or unused for
    ``idle_s``; returns how many went. Runs on the server's event loop, where Gradio's own sweep runs."""
    with holder.lock:
        gone = [visit for visit, state in holder.session_data.items()
                if (now - holder.time_last_used.get(visit, now)).total_seconds()
                > (min(closed_s, idle_s) if state.is_closed else idle_s)]
        for visit in gone:
            holder.session_data.pop(visit, None)
            holder.time_last_used.pop(visit, None)
    return len(gone)


def sweeper(idle_s: float) -> Callable[[Any], contextlib.AbstractAsyncContextManager[None]]:
    """A lifespan for Gradio's ``app_kwargs``: :func:`forget_gone` every :data:`EVERY_S` while the server runs."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        async def sweep() -> None:
            while True:
                await asyncio.sleep(EVERY_S)
                forget_gone(app.state_holder, datetime.datetime.now(), idle_s=idle_s)

        task = asyncio.create_task(sweep())
        try:
            yield
        finally:
            task.cancel()

    return lifespan
