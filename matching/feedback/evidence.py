"""The evidence the feedback learner reads, as arrays: each event's reward and weight, and the per-list
sums from which the blend's regression is updated in closed form (:mod:`matching.feedback.learner`).

Kept apart from the learner so that the arithmetic of one batch of events (vectorised: 100k events
fold in a fraction of a second) reads on its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from matching.feedback.log import Observation

#: Implicit signals: (reward, evidence weight) of a listener who played a track through, replayed or downloaded it.
_ENGAGEMENT = {"complete": (0.8, 0.3), "replay": (0.85, 0.3), "download": (0.9, 0.5)}


def reward(obs: Observation, *, implicit_weight: float = 1.0) -> tuple[float, float] | None:
    """``(reward in [0, 1], evidence weight)`` of one event, or ``None`` if it says nothing."""
    y, w = rewards(
        np.array([obs.kind]), floats([obs.value]), floats([obs.duration]), implicit_weight=implicit_weight
    )
    return None if np.isnan(y[0]) else (float(y[0]), float(w[0]))


def floats(values: list[Any]) -> np.ndarray:
    """A float array with NaN for ``None``."""
    return np.array([np.nan if v is None else v for v in values], dtype=np.float64)


def rewards(
    kind: np.ndarray, value: np.ndarray, duration: np.ndarray, *, implicit_weight: float
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`reward` of many events at once: ``(reward, weight)`` arrays, reward NaN where none."""
    y, w = np.full(len(kind), np.nan), np.zeros(len(kind))
    rated = (kind == "rating") & ~np.isnan(value)
    y[rated], w[rated] = (value[rated] - 1.0) / 4.0, 1.0
    for k, (yk, wk) in _ENGAGEMENT.items():
        m = kind == k
        y[m], w[m] = yk, wk * implicit_weight
    skip = kind == "skip"
    known = skip & (duration > 0) & ~np.isnan(value)  # NaN compares False
    frac = np.full(len(kind), 0.5)
    frac[known] = np.clip(value[known] / duration[known], 0.0, 1.0)
    y[skip], w[skip] = 0.6 * frac[skip], 0.3 * implicit_weight
    other = kind == "compose_instead"
    y[other], w[other] = 0.1, 0.2 * implicit_weight
    return y, w


@dataclass
class Stats:
    """Sufficient statistics of the weighted regression and of the transition arms."""

    xtx: np.ndarray = field(default_factory=lambda: np.zeros((3, 3)))
    xty: np.ndarray = field(default_factory=lambda: np.zeros(3))
    arm_w: dict[float, float] = field(default_factory=dict)
    arm_wr: dict[float, float] = field(default_factory=dict)  # weighted residual rewards
    sum_w: float = 0.0
    sum_wy: float = 0.0
    n_events: int = 0
    n_ratings: int = 0
    users: set[str] = field(default_factory=set)

    def add_blend(self, sums: np.ndarray) -> None:
        """Add one row of summed terms: ``xtx`` (9), ``xty`` (3), ``sum_w``, ``sum_wy``, events, ratings."""
        self.xtx += sums[:9].reshape(3, 3)
        self.xty += sums[9:12]
        self.sum_w += float(sums[12])
        self.sum_wy += float(sums[13])
        self.n_events += int(sums[14])
        self.n_ratings += int(sums[15])

    def add_arms(self, grid: tuple[float, ...], arm_w: np.ndarray, arm_wr: np.ndarray) -> None:
        for a, aw, awr in zip(grid, arm_w, arm_wr, strict=True):
            if aw:
                self.arm_w[a] = self.arm_w.get(a, 0.0) + float(aw)
                self.arm_wr[a] = self.arm_wr.get(a, 0.0) + float(awr)


@dataclass(frozen=True)
class Batch:
    """The events of one read that carry a reward, as arrays (one entry per event)."""

    content_type: np.ndarray  # str
    user: np.ndarray  # str
    rec: np.ndarray  # recommendation (list) id
    y: np.ndarray  # reward
    w: np.ndarray  # evidence weight
    x: np.ndarray  # (n, 3): 1, dtw_score, embedding_score; NaN rows for list-wide events
    has_x: np.ndarray  # bool
    rating: np.ndarray  # bool
    arm: np.ndarray  # index into the transition grid, -1 where the weights used are unknown
    sign: np.ndarray  # 1, or -1 for a rating taken back (the listener rated the same track again)


def group(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct ``keys`` and each entry's index among them."""
    return np.unique(keys, return_inverse=True)


def sum_by(index: np.ndarray, n_groups: int, columns: np.ndarray) -> np.ndarray:
    """``(n_groups, k)`` sums of the ``(n, k)`` ``columns`` over the entries of each group."""
    return np.stack([np.bincount(index, weights=c, minlength=n_groups) for c in columns.T], axis=1)


def event_terms(b: Batch) -> np.ndarray:
    """Per event, the columns of :meth:`Stats.add_blend`: 0 for X^T W X and X^T W y (those come per
    list, from :func:`list_evidence`), then w, w y, 1, rating."""
    rest = np.stack([b.w, b.w * b.y, b.sign, b.rating * b.sign], axis=1)
    return np.concatenate([np.zeros((len(b.w), 12)), rest], axis=1)


#: Per list: events, W = sum w, sum w x (3), sum w y, sum w y^2, sum w x x^T (9), sum w x y (3).
LIST_WIDTH = 19


def list_rows(b: Batch) -> np.ndarray:
    """Per event with scores, its terms of the list sums (:data:`LIST_WIDTH` columns)."""
    x, w, y = np.nan_to_num(b.x), b.w, b.y
    wx = w[:, None] * x
    return np.column_stack(
        [b.sign, w, wx, w * y, w * y * y, (wx[:, :, None] * x[:, None, :]).reshape(-1, 9), wx * y[:, None]]
    )


def list_evidence(sums: np.ndarray, noise_var: float, offset_var: float) -> np.ndarray:
    """``(n, 12)``: what lists with these sums ``(n, LIST_WIDTH)`` add to X^T W X (9) and X^T W y (3).

    The rewards of one list share an offset (the listener's mood and generosity, the clip),
    of variance t beside the noise variance s. Generalised least squares with that offset
    takes ``k Sx Sx^T`` out of the list's X^T W X and ``k Sx Sy`` out of its X^T W y, with
    ``k = t / (s + t W)``: the blend is learned from the contrasts within a list, and the
    list's level counts about as much as one more rating (so one rating per list still teaches).

    A list whose several rewards are all equal adds nothing: the listener did not tell its
    tracks apart, which says nothing about which score matters (with such lists counted, one
    listener giving every track the same stars drove both coefficients to 0 and the blend,
    their ratio, to noise: 200 equal ratings moved w_dtw from 0.75 to 0.03).
    """
    n, w, sx, sy, syy = sums[:, 0], sums[:, 1], sums[:, 2:5], sums[:, 5], sums[:, 6]
    spread = syy * w - sy * sy  # W^2 x the weighted variance of the list's rewards
    flat = (n >= 2) & (spread <= 1e-12 * np.maximum(w * w, 1e-300))
    k = offset_var / (noise_var + offset_var * w)
    xtx = sums[:, 7:16] - (k[:, None, None] * sx[:, :, None] * sx[:, None, :]).reshape(-1, 9)
    xty = sums[:, 16:19] - k[:, None] * sx * sy[:, None]
    return np.where(flat[:, None], 0.0, np.concatenate([xtx, xty], axis=1))


def user_share(s: Stats, cap: float) -> float:
    """The factor on one user's evidence in everyone's weights: 1, or less so that it sums to ``cap``
    ratings' worth (a rating weighs 1, engagement less)."""
    return min(1.0, cap / s.sum_w) if s.sum_w > 0 else 1.0


def scaled_sum(parts: list[tuple[float, Stats]]) -> Stats:
    """``sum f * s`` over ``(f, s)`` of the blend and arm statistics (counts and users are not summed)."""
    out = Stats()
    for f, s in parts:
        out.xtx += f * s.xtx
        out.xty += f * s.xty
        out.sum_w += f * s.sum_w
        for a, aw in s.arm_w.items():
            out.arm_w[a] = out.arm_w.get(a, 0.0) + f * aw
            out.arm_wr[a] = out.arm_wr.get(a, 0.0) + f * s.arm_wr.get(a, 0.0)
    return out
