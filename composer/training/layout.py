"""Where the training data lies and which pieces are held out (shared by the corpus and data steps).

The held-out split is by piece: the committed list :data:`HELDOUT_LIST` (written from the
whole parsed corpus by ``python -m composer.training.corpus --write-heldout``) names the
pieces held out; a piece not on it is held out by the rule that made the list, CRC32 of its
name mod 100 below 5. Either way the same pieces are held out on every machine and run.
"""

from __future__ import annotations

import zlib
from pathlib import Path

from analysis.caches import cached

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / "data-cache"
#: The fixed held-out pieces (by name), committed beside the checkpoint.
HELDOUT_LIST = ROOT / "checkpoints" / "corpus-heldout.txt"


def midi_dir(cache: Path = CACHE) -> Path:
    """The parsed corpus for this music21 version: ``<cache>/midi-<version>``."""
    import music21

    return cache / f"midi-{music21.VERSION_STR}"


def heldout_by_hash(name: str, percent: int = 5) -> bool:
    """The rule that made :data:`HELDOUT_LIST`: CRC32 of the piece name mod 100 below ``percent``."""
    return zlib.crc32(name.encode()) % 100 < percent


def is_heldout(name: str, percent: int = 5) -> bool:
    """Whether piece ``name`` is held out: on the committed list, or by :func:`heldout_by_hash`."""
    return name in _listed() or heldout_by_hash(name, percent)


@cached("heldout-list", maxsize=1)
def _listed() -> frozenset[str]:
    return frozenset(HELDOUT_LIST.read_text().split()) if HELDOUT_LIST.is_file() else frozenset()
