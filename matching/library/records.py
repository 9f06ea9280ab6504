"""What the library stores about one track, shared by the store and the indexer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class TrackRecord:
    """One catalogued track's metadata (its arc: :meth:`Library.arc`)."""

    id: int
    path: str
    title: str | None
    artist: str | None
    tags: tuple[str, ...]
    licence: str | None
    checksum: str
    kind: str
    duration: float
    tempo: float | None
    key: str | None
    mode: str | None
    loudness: float | None
    added_at: float

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "tags": list(self.tags)}
