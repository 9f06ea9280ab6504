"""Native libraries' own prints to stderr, sifted.

Some runtimes print from C++ straight to file descriptor 2, with no switch to turn a line off:
the TFLite runtime of the faces source says ``INFO: Created TensorFlow Lite XNNPACK delegate for
CPU.`` whenever its model loads, so that line led every ``soundtrack analyze|score`` run.
:func:`sifted_stderr` sends fd 2 to a temporary file while such a call runs, then passes on
everything but the lines it was told to drop, so a real complaint (a model that does not load)
still reaches the user. Python's own ``sys.stderr`` is flushed first, so nothing written before
the call is held back; a line another thread writes to stderr during the call comes out after it.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_LOCK = threading.Lock()  # one redirection of fd 2 at a time


@contextmanager
def sifted_stderr(drop: re.Pattern[str]) -> Iterator[None]:
    """Run the ``with`` body with fd 2 in a temporary file; afterwards write to stderr every line it
    received that ``drop`` does not match (at the start of the line)."""
    with _LOCK, tempfile.TemporaryFile() as held:
        sys.stderr.flush()
        saved = os.dup(2)
        os.dup2(held.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            kept = [line for line in held.read().decode(errors="replace").splitlines(keepends=True)
                    if not drop.match(line)]
            if kept:
                sys.stderr.write("".join(kept))
                sys.stderr.flush()
