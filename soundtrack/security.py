"""What a visitor may ask of the server, checked in one place: folders, ids, numbers, messages.

The page is reachable by anyone the operator lets in (``--share-lan``), so every value
it receives is treated as hostile: folder names must resolve (links and ``..``
followed) inside a root the operator named; numbers must be numbers in range; and what
goes back never shows where on the server a file lives.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import numbers
import os
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from analysis.errors import MediaError, ParameterError, SoundtrackError

log = logging.getLogger(__name__)

#: The largest seed the composer's random generators take.
MAX_SEED = 2**32 - 1


def resolve_under_roots(folder: object, roots: Sequence[Path]) -> Path:
    """The real folder ``folder`` names, which must lie inside one of ``roots``.

    A relative name is looked up under each root in turn; an absolute one must resolve
    inside a root. Links and ``..`` are resolved first, so neither leads out. Messages
    never echo a server path.
    """
    if not roots:
        raise ParameterError("indexing a folder from the page is switched off on this server "
                             "(the operator can allow folders with `soundtrack serve --index-root DIR`)")
    if not isinstance(folder, str) or not folder.strip():
        raise ParameterError("name a folder inside the folders this server allows (received an empty name)")
    if len(folder) > 1024 or "\x00" in folder:
        raise ParameterError("the folder name is not a usable path")
    name = Path(folder.strip())
    real_roots = [Path(r).resolve() for r in roots]
    candidates = [name] if name.is_absolute() else [root / name for root in real_roots]
    for candidate in candidates:
        try:
            real = candidate.resolve(strict=True)
        except (OSError, RuntimeError):  # missing, unreadable, or a link loop
            continue
        if real.is_dir() and any(real.is_relative_to(root) for root in real_roots):
            return real
    raise ParameterError("the folder named is not a folder inside the folders this server allows")


def root_of(folder: Path, roots: Sequence[Path]) -> Path:
    """The allowed root holding the (resolved) ``folder``."""
    return next(r for r in (Path(x).resolve() for x in roots) if folder.is_relative_to(r))


def _echo(value: Any) -> str:
    """``value`` as a refusal quotes it: its ``repr`` cut to 60 characters, so a megabyte sent as a number
    is not sent back (nor logged) whole."""
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:57]}..."


def check_seed(seed: Any) -> int:
    """A seed the composer takes: a whole number within 0 and 2**32 - 1."""
    # an int is never passed to math.isfinite: JSON's 10**400 is one, and too large for a float
    whole = isinstance(seed, int) or (isinstance(seed, float) and math.isfinite(seed) and seed == int(seed))
    if isinstance(seed, bool) or not whole:
        raise ParameterError(f"`seed` must be a whole number (received {_echo(seed)})")
    if not 0 <= seed <= MAX_SEED:
        raise ParameterError(f"`seed` must be within 0 and {MAX_SEED} (received {_echo(int(seed))})")
    return int(seed)


def check_rating(rating: Any) -> int:
    """Stars as the page sends them (the text ``"1"`` .. ``"5"``) or a caller passes them (an int), from 1 to 5.
    A bool is refused, not read as 1 or 0 (``int(True)`` is 1), and so is a float (``int(3.7)`` is 3). The
    range is checked here, where the message can echo what was sent: past here a "6" read "(received 6.0)"
    and 10**20 "`value` must be within -1e+09 and 1e+09"."""
    if rating is None or rating == "":
        raise ParameterError("pick a rating (1 to 5) first")
    stars = None
    if isinstance(rating, numbers.Integral) and not isinstance(rating, bool):
        stars = int(rating)
    elif isinstance(rating, str):
        with contextlib.suppress(ValueError):
            stars = int(rating)
    if stars is None or not 1 <= stars <= 5:
        raise ParameterError(f"choose a rating from 1 to 5 (received {_echo(rating)})")
    return stars


def optional_number(name: str, value: Any, low: float, high: float, *, zero_means_none: bool = True) -> float | None:
    """``None`` for empty (and for 0, the page's 'automatic', unless told otherwise), else a finite number
    within [low, high]."""
    if value is None or value == "" or (zero_means_none and isinstance(value, int | float) and value == 0):
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or (isinstance(value, float)
                                                                          and not math.isfinite(value)):
        raise ParameterError(f"`{name}` must be a number (received {_echo(value)})")
    if not low <= value <= high:
        raise ParameterError(f"`{name}` must be within {low:g} and {high:g} (received {_echo(value)})")
    return float(value)


_ABS_PATH = re.compile(r"(?<![\w.])/(?:[^\s/:'\"]+/)+([^\s/:'\"]+)")


def public_message(err: SoundtrackError) -> str:
    """``err`` as a visitor may read it: file names, never the folders they live in."""
    if isinstance(err, MediaError):
        return f"{err.path.name}: {_strip_folders(err.problem)}"
    return _strip_folders(str(err))


def public_files(files: Sequence[Any], most: int = 10) -> str:
    """`` (a.mp3: is empty (0 bytes); ...)``: the first ``most`` of an index report's skipped or warned
    files (``.path``, ``.reason``) by name and reason, their folders left out; "" for none."""
    said = "; ".join(public_message(MediaError(Path(f.path), f.reason)) for f in files[:most])
    return f" ({said}{'; ...' if len(files) > most else ''})" if said else ""


def _strip_folders(text: str) -> str:
    return _ABS_PATH.sub(r"\1", text)


__all__ = ["MAX_SEED", "QueueShare", "check_rating", "check_seed", "optional_number", "private_copy", "public_files",
           "public_message", "resolve_under_roots", "root_of"]


def private_copy(path: str) -> str:
    """``path`` (a copy handed to one browser in Gradio's cache) readable by the server's account only.

    Gradio copies a handed-out file with its mode (0644) into a folder it makes 0755, so any
    account on the server could read every visitor's clip copies, plots, scores and data
    exports there. The copy becomes 0600 and its hash-named folder 0700; the cache's own root
    is left alone (it may be a shared folder such as /tmp).
    """
    copy = Path(path)
    try:
        copy.chmod(0o600)
        copy.parent.chmod(0o700)
    except OSError:  # another account's file (a shared cache): say so in the log, hand it out anyway
        log.warning("could not make %s private", copy.name)
    return path


#: Addresses only this machine can reach: there, visitors may add tracks without --allow-uploads.
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


def address(host: str | None = None, port: int | None = None, *, share_lan: bool = False) -> tuple[str, int]:
    """(host, port): the flags, else ``GRADIO_SERVER_NAME`` / ``GRADIO_SERVER_PORT``, else 127.0.0.1:7860."""
    env_port = os.environ.get("GRADIO_SERVER_PORT", "").strip()
    if port is None and env_port:
        try:
            port = int(env_port)
        except ValueError:
            raise ParameterError(f"`GRADIO_SERVER_PORT` must be a port number (received {env_port!r})") from None
    port = 7860 if port is None else port
    if not 0 < port < 65536:
        raise ParameterError(f"`--port` must be within 1 and 65535 (received {port})")
    if share_lan:
        return "0.0.0.0", port
    return (host or os.environ.get("GRADIO_SERVER_NAME", "").strip() or "127.0.0.1"), port


def start_lines(host: str, port: int, *, allow_uploads: bool, lan: str | None = None) -> list[str]:
    """What ``soundtrack serve`` prints once the page answers: where to open it and, off the loopback, who can
    reach it (Gradio printed "Running on local URL:  http://0.0.0.0:7860", an address no browser opens, and
    "To create a public link, set `share=True` in `launch()`"). ``lan``: this machine's address on its
    network (default :func:`lan_address`)."""
    def url(name: str) -> str:
        return f"http://[{name}]:{port}/" if ":" in name else f"http://{name}:{port}/"

    if host in LOOPBACK:
        return [f"The page: {url(host)} (this machine only; `--share-lan` lets other machines connect)"]
    if host in ("0.0.0.0", "::"):
        lan = lan or lan_address()
        lines = [f"The page: {url('127.0.0.1')} on this machine; other machines open "
                 + (url(lan) if lan else f"this machine's network address, port {port}")]
    else:
        lines = [f"The page: {url(host)}"]
    return [*lines, f"Anyone who can reach port {port} can use it: there is no login and no encryption "
                    "(SECURITY.md says what to set first). Visitors "
                    + ("can add tracks to the library (`--allow-uploads`)." if allow_uploads else
                       "cannot add tracks to the library (`--allow-uploads` lets them).")]


def lan_address() -> str | None:
    """This machine's address on its network: the one it would send from (nothing is sent); None offline."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # TEST-NET-1: the route is looked up, no packet leaves
            return str(probe.getsockname()[0])
        except OSError:
            return None


#: Heavy requests (analyse, compose, preview, add tracks...) one client address may have queued or running:
#: room for a page's own burst (an upload fires three events, then Analyse) while others' analyses run.
PER_CLIENT = 6


class QueueShare:
    """ASGI middleware: each client address may have at most ``limit`` heavy events waiting or running.

    Gradio's queue is first come, first served across browser sessions, and a visitor can open
    as many sessions as they like: one client queueing twelve analyses put the next visitor
    tenth in line. A join past the limit is refused (HTTP 503, as Gradio refuses a full queue)
    with a sentence; light events (those with no concurrency limit: the id, a rating) are not
    counted. Clients behind one proxy share an address, and so a share (see SECURITY.md).
    """

    def __init__(self, app: Any, limit: int = PER_CLIENT, *, visitors: int = 1) -> None:
        """``visitors``: how many visitors one address stands for (behind a proxy): ``limit`` each, as
        :class:`IdIssueLimit` counts them."""
        self.app, self.limit = app, limit * visitors
        self._ids: dict[str, set[str]] = {}  # per address: its heavy events Gradio still holds
        self._joining: dict[str, int] = {}  # per address: joins on their way in (not yet given an id)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or not scope["path"].endswith("/queue/join"):
            return await self.app(scope, receive, send)
        body = await _whole_body(receive)
        held_ids, heavy = _held_and_weight(scope, body)
        if not heavy or held_ids is None:
            return await self.app(scope, _replay(body), send)
        host = str((scope.get("client") or ("unknown",))[0])
        live = self._ids.pop(host, set()) & held_ids  # finished events leave Gradio's table
        if live:
            self._ids[host] = live
        held = len(live) + self._joining.get(host, 0)
        if held >= self.limit:
            return await _refuse(send, f"you already have {held} requests waiting or running on this server "
                                       f"(the limit per visitor is {self.limit}): wait for them to finish")
        sent: list[bytes] = []

        async def keep(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.body":
                sent.append(message.get("body", b""))
            await send(message)

        self._joining[host] = self._joining.get(host, 0) + 1
        try:
            await self.app(scope, _replay(body), keep)
        finally:
            self._joining[host] -= 1
            if not self._joining[host]:
                del self._joining[host]
        event_id = _event_id(b"".join(sent))
        if event_id:
            self._ids.setdefault(host, set()).add(event_id)


async def _whole_body(receive: Any) -> bytes:
    chunks, more = [], True
    while more:
        message = await receive()
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
        if sum(map(len, chunks)) > 4 * 2**20:  # a join names files; it never carries them
            break
    return b"".join(chunks)


def _replay(body: bytes) -> Any:
    done = False

    async def receive() -> dict[str, Any]:
        nonlocal done
        if done:
            return {"type": "http.disconnect"}
        done = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


def _held_and_weight(scope: dict[str, Any], body: bytes) -> tuple[set[str] | None, bool]:
    """(the ids of the events Gradio's queue still holds, whether the joined event is heavy); (None, False)
    when either cannot be told: not a Gradio app, a malformed join, or a Gradio whose queue keeps them
    elsewhere (``gradio>=5`` is all the project pins), so the middleware then stands aside."""
    try:
        blocks = scope["app"].get_blocks()
        fn = blocks.fns[int(json.loads(body)["fn_index"])]
        return set(blocks._queue.event_ids_to_events), fn.concurrency_limit is not None
    except Exception:  # Gradio answers the join as it would
        return None, False


def _event_id(body: bytes) -> str | None:
    try:
        return str(json.loads(body)["event_id"])
    except Exception:
        return None


async def _refuse(send: Any, message: str) -> None:
    payload = json.dumps({"detail": message}).encode()
    await send({"type": "http.response.start", "status": 503,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]})
    await send({"type": "http.response.body", "body": payload})


#: New visitor ids one client address may be issued per ``ID_WINDOW_S``. Each id's ratings count towards the
#: feedback learner up to a cap, so ids free for the asking would let one script outvote every visitor.
IDS_PER_ADDRESS = 20
ID_WINDOW_S = 3600.0
#: Addresses remembered at most; past it those with no id inside the window are forgotten.
MAX_ADDRESSES = 10_000


class IdIssueLimit:
    """A sliding-window count of the ids issued to each client address (thread-safe)."""

    def __init__(self, limit: int = IDS_PER_ADDRESS, window_s: float = ID_WINDOW_S,
                 clock: Callable[[], float] = time.monotonic, *, visitors: int = 1) -> None:
        """``visitors``: how many visitors one address stands for (behind a proxy): ``limit`` each."""
        self.limit, self.window_s, self._clock = limit * visitors, window_s, clock
        self._issued: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def take(self, address: str) -> None:
        """Count one new id for ``address``; a :class:`ParameterError` when it had ``limit`` in the window."""
        now = self._clock()
        with self._lock:
            stamps = self._issued.setdefault(address, deque())
            while stamps and stamps[0] <= now - self.window_s:
                stamps.popleft()
            if len(stamps) >= self.limit:
                raise ParameterError(f"this address was given {len(stamps)} new ids in the last "
                                     f"{self.window_s / 60:g} minutes (the limit is {self.limit}): "
                                     "keep the id this browser has, or try again later")
            stamps.append(now)
            if len(self._issued) > MAX_ADDRESSES:
                self._issued = {a: t for a, t in self._issued.items() if t and t[-1] > now - self.window_s}


#: What the page says when asked to act with no id: its load was given none (IdIssueLimit refused one).
NO_ID = ("this page has no anonymous id yet, and the lists of tracks it shows are kept under one: reload the page "
         "(when the line at the top says this address has had its new ids for the hour, reload it later)")


def page_user(signer: Any, token: object) -> str:
    """The user id inside a page's ``token`` (``IdentitySigner.verify``); a page given no id hears
    :data:`NO_ID` ("`user_id` is not an id issued by this server (received a NoneType)" gave no way on)."""
    if token is None:
        raise ParameterError(NO_ID)
    return signer.verify(token)


def client_address(request: Any) -> str | None:
    """The client host of a Gradio request (``"unknown"`` when it has none); None for no request at all
    (a call from this process, which issues ids uncounted)."""
    if request is None:
        return None
    client = getattr(request, "client", None)
    return str(getattr(client, "host", None) or "unknown")
