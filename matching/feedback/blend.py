"""The posterior of the blend weight ``w_dtw`` itself, on a grid, from the regression's sufficient statistics.

The learner's regression ``reward ~ b0 + b_dtw * dtw_score + b_emb * embedding_score`` gives the
blend only as a ratio, ``b_dtw / (b_dtw + b_emb)``. When the ratings follow neither score (random
stars, or a library whose two scores agree), both coefficients shrink to 0 and their ratio is
noise: 900 random ratings from 20 listeners drove ``w_dtw`` from the preset 0.75 to 0.0.

Here the blend is a parameter of its own: ``reward ~ b0 + s * (w * dtw_score + (1 - w) *
embedding_score)``. For each ``w`` on a grid the model is linear in ``(b0, s)``, so their Gaussian
prior integrates out in closed form from X^T W X and X^T W y alone (the ``y^T W y`` term does not
depend on ``w``). Ratings that follow neither score fit every ``w`` alike and leave the prior on
``w`` in charge; ratings that follow one score pick its ``w``.
"""

from __future__ import annotations

import numpy as np

#: Grid of blend weights the posterior is evaluated on (step 0.005).
GRID = np.linspace(0.0, 1.0, 201)
_B0_PRECISION = 1e-2  # the reward's level: free
#: The prior on the scale s, a mixture: listeners whose reward tracks the combined score (s near 1)
#: or that follows neither score (s near 0, where every w fits alike). One loose Gaussian instead
#: either leaves w unidentified when a list's two scores trade off (s (2w - 1) is all such lists
#: tell: 12 clear 5-and-1-star lists moved w only to 0.80) or, held near 1, makes random ratings
#: pick the w whose combined score varies least.
_SCALE_COMPONENTS = ((1.0, 0.25), (0.0, 0.1))  # (mean, sd), equally likely


def _log_evidence(xtx: np.ndarray, xty: np.ndarray, noise_var: float, scale_mean: float, scale_sd: float) -> np.ndarray:
    """Log marginal likelihood of each grid ``w`` under one Gaussian prior on ``(b0, s)`` (up to
    terms common to every ``w`` and component)."""
    a = np.zeros((len(GRID), 3, 2))  # (g, 3, 2): (1, dtw, emb) -> (1, w dtw + (1 - w) emb)
    a[:, 0, 0], a[:, 1, 1], a[:, 2, 1] = 1.0, GRID, 1.0 - GRID
    prec, mean = np.diag([_B0_PRECISION, scale_sd**-2]), np.array([0.0, scale_mean])
    lam = prec + np.einsum("gia,ij,gjb->gab", a, xtx, a) / noise_var  # (g, 2, 2)
    h = prec @ mean + np.einsum("gia,i->ga", a, xty) / noise_var  # (g, 2)
    det = lam[:, 0, 0] * lam[:, 1, 1] - lam[:, 0, 1] * lam[:, 1, 0]
    quad = (lam[:, 1, 1] * h[:, 0] ** 2 - 2 * lam[:, 0, 1] * h[:, 0] * h[:, 1] + lam[:, 0, 0] * h[:, 1] ** 2) / det
    return 0.5 * (quad - mean @ prec @ mean + np.log(np.linalg.det(prec)) - np.log(det))


def log_likelihood(xtx: np.ndarray, xty: np.ndarray, noise_var: float) -> np.ndarray:
    """Log marginal likelihood of each grid ``w`` (up to a constant), ``(b0, s)`` integrated out.

    ``xtx`` (3, 3) and ``xty`` (3) are the weighted sums over ``(1, dtw_score, embedding_score)``.
    """
    parts = [_log_evidence(xtx, xty, noise_var, m, sd) for m, sd in _SCALE_COMPONENTS]
    return np.logaddexp.reduce(np.stack(parts), axis=0)


def log_prior(w0: float, sd: float) -> np.ndarray:
    """A Gaussian prior on ``w`` around ``w0`` (truncated to the grid), as log densities."""
    return -0.5 * ((GRID - w0) / sd) ** 2


def normalise(log_p: np.ndarray) -> np.ndarray:
    """Probabilities over the grid from unnormalised log densities."""
    p = np.exp(log_p - log_p.max())
    return p / p.sum()


def mode(log_p: np.ndarray) -> float:
    """The most probable ``w``, between grid points (a parabola through the best three): with no
    evidence, exactly the prior's centre."""
    i = int(np.argmax(log_p))
    if not 0 < i < len(GRID) - 1:
        return float(GRID[i])
    lo, mid, hi = log_p[i - 1 : i + 2]
    curve = lo - 2 * mid + hi
    shift = 0.5 * (lo - hi) / curve if curve < 0 else 0.0
    return float(GRID[i] + np.clip(shift, -0.5, 0.5) * (GRID[1] - GRID[0]))


def sd(p: np.ndarray) -> float:
    """Posterior standard deviation of ``w`` from grid probabilities ``p``."""
    m = float(p @ GRID)
    return float(np.sqrt(max(p @ (GRID - m) ** 2, 0.0)))


def draw(p: np.ndarray, rng: np.random.Generator) -> float:
    """One Thompson draw of ``w`` from grid probabilities ``p``."""
    return float(GRID[rng.choice(len(GRID), p=p)])


__all__ = ["GRID", "draw", "log_likelihood", "log_prior", "mode", "normalise", "sd"]
