"""What a visitor may ask of the server, checked in one place: folders, ids, numbers, messages.

The page is reachable by anyone the operator lets in (``--share-lan``), so every value
it receives is treated as hostile: folder names must resolve (links and ``..``
followed) inside a root the operator named; numbers must be numbers in range; and what
goes back never shows where on the server a file lives.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from analysis.errors import MediaError, ParameterError, SoundtrackError

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


def check_seed(seed: Any) -> int:
    """A seed the composer takes: a whole number within 0 and 2**32 - 1."""
    if isinstance(seed, bool) or not isinstance(seed, int | float) or not math.isfinite(seed) or seed != int(seed):
        raise ParameterError(f"`seed` must be a whole number (received {seed!r})")
    if not 0 <= int(seed) <= MAX_SEED:
        raise ParameterError(f"`seed` must be within 0 and {MAX_SEED} (received {int(seed)})")
    return int(seed)


def optional_number(name: str, value: Any, low: float, high: float, *, zero_means_none: bool = True) -> float | None:
    """``None`` for empty (and for 0, the page's 'automatic', unless told otherwise), else a finite number
    within [low, high]."""
    if value is None or value == "" or (zero_means_none and isinstance(value, int | float) and value == 0):
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ParameterError(f"`{name}` must be a number (received {value!r})")
    if not low <= value <= high:
        raise ParameterError(f"`{name}` must be within {low:g} and {high:g} (received {value!r})")
    return float(value)


_ABS_PATH = re.compile(r"(?<![\w.])/(?:[^\s/:'\"]+/)+([^\s/:'\"]+)")


def public_message(err: SoundtrackError) -> str:
    """``err`` as a visitor may read it: file names, never the folders they live in."""
    if isinstance(err, MediaError):
        return f"{err.path.name}: {_strip_folders(err.problem)}"
    return _strip_folders(str(err))


def _strip_folders(text: str) -> str:
    return _ABS_PATH.sub(r"\1", text)


__all__ = ["MAX_SEED", "check_seed", "optional_number", "public_message", "resolve_under_roots", "root_of"]


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
