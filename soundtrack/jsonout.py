"""``--json`` output: the JSON alone on stdout, whatever else writes there.

Libraries print on import (pyfluidsynth says where it found libfluidsynth when ``CI`` is
set, and pretty_midi imports it); one such line would break a JSON pipe. While
:func:`json_stdout` is active, stdout goes to stderr and :func:`print_json` writes to the
real stdout. The state lives here rather than in :mod:`soundtrack.cli`, which also runs
as ``__main__`` (``python -m soundtrack.cli``) and would then exist twice.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from typing import Any, TextIO

#: The real stdout while :func:`json_stdout` sends everything else to stderr.
_json_out: TextIO | None = None


def print_json(data: Any) -> None:
    """Write ``data`` as JSON on stdout (the only thing ``--json`` prints there)."""
    out = _json_out or sys.stdout
    json.dump(data, out, indent=2, default=str)
    out.write("\n")


@contextlib.contextmanager
def json_stdout(enabled: bool) -> Iterator[None]:
    """With ``enabled``, anything but :func:`print_json` that writes to stdout goes to stderr."""
    global _json_out
    if not enabled:
        yield
        return
    _json_out = sys.stdout
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        _json_out = None
