"""One array that decoded rows are written into as they arrive: a clip's sampled frames, its audio samples,
a music track's samples.

Collected in a list and joined at the end, decoded media was held twice at its peak (a 10-minute clip:
peak RSS 891 MB before, 537 MB with this; 10 minutes of MP3: 0.11 GB, now about the samples alone).
"""

from __future__ import annotations

import numpy as np

#: Most bytes a :class:`GrowingRows` reserves before its rows need them.
MAX_RESERVE = 4 << 30


class GrowingRows:
    """Rows (frames, samples, or sample frames of a few channels) in one array along its first axis, sized
    from an estimate (an announced duration) and doubled when more arrive.

    The array is made when the first rows come, so their shape and size need not be known before. Pages of
    it that no row reaches are never touched, so an estimate too high costs address space, not memory; it is
    capped at :data:`MAX_RESERVE` bytes, so a header that claims days does not ask for more than the machine
    has.
    """

    def __init__(self, expected: int, dtype: type[np.generic] = np.uint8) -> None:
        self.expected, self.dtype = max(1, expected), dtype
        self.buffer: np.ndarray | None = None
        self.n = 0

    def append(self, row: np.ndarray) -> None:
        self.extend(row[None])

    def extend(self, rows: np.ndarray) -> None:
        if not len(rows):
            return
        if self.buffer is None:
            cap = min(self.expected, max(1, MAX_RESERVE // max(1, rows[0].nbytes)))
            self.buffer = np.empty((max(cap, len(rows)), *rows.shape[1:]), self.dtype)
        elif self.n + len(rows) > len(self.buffer):
            grown = np.empty((max(2 * len(self.buffer), self.n + len(rows)), *self.buffer.shape[1:]), self.dtype)
            grown[: self.n] = self.buffer[: self.n]
            self.buffer = grown
        self.buffer[self.n : self.n + len(rows)] = rows
        self.n += len(rows)

    def __len__(self) -> int:
        return self.n

    def array(self, empty_shape: tuple[int, ...]) -> np.ndarray:
        """The rows as one ``(n, ...)`` array (a view, no copy); ``(0, *empty_shape)`` when none."""
        if self.buffer is None:
            return np.zeros((0, *empty_shape), self.dtype)
        return self.buffer[: self.n]


__all__ = ["MAX_RESERVE", "GrowingRows"]
