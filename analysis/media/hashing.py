"""File identity: one content hash used by the catalogue, the feedback log and batch manifests."""

from __future__ import annotations

import errno
import hashlib
from pathlib import Path

from analysis.errors import MediaError, not_found


def content_hash(path: str | Path, *, chunk_size: int = 1 << 20) -> str:
    """SHA-256 (hex) of a file's bytes, read in chunks so large files stay out of memory.

    The hash, not the path, identifies a track or clip: a renamed or copied file is
    recognised, an edited one is not.
    """
    path = Path(path)
    digest = hashlib.sha256()
    try:
        with path.open("rb") as fh:
            while block := fh.read(chunk_size):
                digest.update(block)
    except FileNotFoundError:
        raise not_found(path) from None
    except IsADirectoryError:
        raise MediaError(path, "is a directory, not a file") from None
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise not_found(path) from None
        raise MediaError(path, f"cannot be read ({err.strerror or err})") from None
    return digest.hexdigest()
