"""File names derived from a user's file name: safe to hand to FFmpeg and to any file system."""

from __future__ import annotations

import re
import unicodedata

#: Anything but letters and digits of any script, ``.``, ``_``, ``+`` and ``-``: path separators,
#: spaces, quotes, wildcards and control characters.
_UNSAFE = re.compile(r"[^\w.+-]+")


#: The longest stem, in UTF-8 bytes: a file name may have 255, and suffixes such as ``-score.musicxml``
#: or a batch folder's ``-<hash8>-<settings6>`` follow it. (100 *characters* of a CJK title are 300 bytes.)
MAX_STEM_BYTES = 100


def safe_stem(name: str, *, fallback: str = "clip") -> str:
    """``name`` fit for a derived file name: no leading ``-`` or ``.``, no separators, at most
    :data:`MAX_STEM_BYTES` bytes (whole characters).

    Letters of every script stay (``場面一``, ``Szene Über`` -> ``Szene_Über``): an ASCII-only rule
    named ``場面一.mp4`` and ``場面二.mp4`` both ``_``, so one clip's files replaced the other's.
    """
    stem = _UNSAFE.sub("_", unicodedata.normalize("NFC", name)).lstrip("-._")
    stem = stem.encode()[:MAX_STEM_BYTES].decode("utf-8", "ignore")  # a character cut in two is left out
    return stem or fallback
