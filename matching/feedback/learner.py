"""Online learning of the ranking weights from the feedback log.

Two things are learned, per content type and optionally per user:

1. **Blend weight** ``w_dtw`` (arc fit) against ``w_emb = 1 - w_dtw`` (embedding): a
   Bayesian linear regression of reward on the candidate's component scores,
   ``reward ~ b0 + b_dtw * dtw_score + b_emb * embedding_score``, with a Gaussian prior
   centred on the default weights. The learned blend is the most probable ``w`` of
   ``reward ~ b0 + s * (w * dtw_score + (1 - w) * embedding_score)`` on a grid
   (:mod:`matching.feedback.blend`), not the ratio of the two coefficients, which is noise
   when ratings follow neither score. The posterior updates in closed form from
   sufficient statistics (X^T W X and X^T W y), summed over each batch of new events at
   once, so learning is online and cheap: 100k events fold in a fraction of a second.
   The ratings of one list share an offset (the listener's mood and generosity), so the
   regression learns mostly from contrasts *within* a list, and a list whose tracks all got
   the same reward teaches nothing about the blend (see :func:`matching.feedback.evidence.list_evidence`).
2. **DTW transition weight** (how much the derivative channels count in the DTW cost):
   the log only holds DTW scores computed under the weight that was used, so this one is
   a bandit over a small grid of settings: a Gaussian posterior of the reward per arm.

A track rated again counts once, with its latest rating: the earlier one is taken back out of
the sums (its transition-arm residual as recomputed then, a close approximation).

Rewards come from ratings (1..5 mapped to 0..1, full weight) and engagement, which is
noisier and so counts less: completion, replay and download up; a skip scores by how far
into the preview it came (an early skip is near 0). "Compose instead" lowers the reward
of the transition setting that produced the list. Play events carry no reward.

Exploration is bounded: :meth:`WeightLearner.sample_weights` draws from the posterior
(Thompson sampling) but never strays more than ``max_explore`` from the posterior mean
blend, nor more than one grid step from the best transition weight, so a listener still
sees good results while the learner keeps learning.

A per-user posterior starts from the content type's posterior *without that user's events*
(its covariance widened by ``user_prior_inflation``) and adds the user's events, so each of
them counts once. That prior on the user's blend is never narrower than ``user_blend_sd``:
everyone's posterior says where the *average* listener stands, ever more precisely as the
audience grows, not how far one listener may stand from it.

Deleted data stops counting without a restart: :meth:`WeightLearner.refresh` notices when
events it has read are gone from the log (``soundtrack feedback delete`` run beside a
running app, say) and re-reads the whole log, and :func:`delete_user` also drops the
database's cached learner (the ``feedback-learners`` cache of :mod:`analysis.caches`).
"""

from __future__ import annotations

import dataclasses
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa

from analysis.caches import Cache
from analysis.errors import ParameterError
from matching.db import ReadOnlyDatabase, server_url
from matching.feedback import blend
from matching.feedback.evidence import (
    LIST_WIDTH,
    Batch,
    Stats,
    event_terms,
    floats,
    group,
    list_evidence,
    list_rows,
    reward,
    rewards,
    scaled_sum,
    sum_by,
    user_share,
)
from matching.feedback.log import FeedbackLog, Observation, check_user, event_table, rec_table
from matching.ranking.weights import PRESETS, MatchWeights, weights_for


@dataclass(frozen=True)
class LearnerConfig:
    """How strongly the learner trusts its prior and each kind of evidence."""

    noise_var: float = 0.04  # variance of a rating's reward on the 0..1 scale (about 0.8 stars)
    prior_precision: float = 10.0  # on b_dtw - b_emb (which sets the blend); ~ a dozen ratings' worth
    prior_scale_precision: float = 50.0  # on b_dtw + b_emb around 1 (reward ~ combined score), see _posterior
    user_prior_inflation: float = 4.0  # a user's prior = content type's posterior, covariance x this
    user_blend_sd: float = 0.2  # ...and on the blend never narrower than this: how far one listener's taste may lie
    max_explore: float = 0.1  # sampled w_dtw stays within this of the posterior mean
    transition_grid: tuple[float, ...] = (0.5, 1.0, 1.5, 2.0, 3.0, 4.0)
    arm_prior_count: float = 5.0  # pseudo-observations of zero residual reward, per transition arm
    switch_z: float = 1.0  # an arm replaces the default only when better by this many posterior sds
    implicit_weight: float = 1.0  # multiplies the engagement weights (evidence._ENGAGEMENT) and skips
    list_offset_var: float = 0.02  # variance of a list's shared reward offset (mood, generosity), see list_evidence
    prior_w_dtw: float | None = None  # centre of the prior blend; None: the content type's preset
    prior_blend_sd: float = 0.2  # sd of the prior on w_dtw itself (matching.feedback.blend)
    max_user_weight: float = 20.0  # one user counts at most as this many ratings in everyone's weights
    min_users: int = 2  # everyone's weights stay the preset until this many users gave evidence

    def __post_init__(self) -> None:
        if not 0 < self.max_explore <= 0.5:
            raise ParameterError(f"`max_explore` must be in (0, 0.5] (received {self.max_explore})")
        if self.list_offset_var < 0:
            raise ParameterError(f"`list_offset_var` must be 0 or more (received {self.list_offset_var})")
        if self.noise_var <= 0 or self.prior_precision <= 0:
            raise ParameterError(
                f"`noise_var` and `prior_precision` must be positive (received {self.noise_var}, "
                f"{self.prior_precision})"
            )
        if not self.max_user_weight > 0 or not isinstance(self.min_users, int) or self.min_users < 1:
            raise ParameterError(
                f"`max_user_weight` must be positive and `min_users` a whole number from 1 (received "
                f"{self.max_user_weight}, {self.min_users!r})"
            )
        for name in ("prior_blend_sd", "user_blend_sd"):
            if not 0 < getattr(self, name) <= 1:
                raise ParameterError(f"`{name}` must be in (0, 1] (received {getattr(self, name)})")
        if self.prior_w_dtw is not None and not 0 <= self.prior_w_dtw <= 1:
            raise ParameterError(f"`prior_w_dtw` must be within 0 and 1 (received {self.prior_w_dtw})")
        if not self.transition_grid or list(self.transition_grid) != sorted(set(self.transition_grid)):
            raise ParameterError(f"`transition_grid` must be increasing (received {self.transition_grid})")


@dataclass(frozen=True)
class WeightEstimate:
    """The learned weights for one content type (and user), with the evidence behind them."""

    content_type: str
    user: str | None
    w_dtw: float
    w_emb: float
    transition: float
    n_events: int  # events that carried a reward
    n_ratings: int
    n_users: int
    w_dtw_sd: float  # posterior standard deviation of w_dtw (by sampling)

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def base_weights(content_type: str) -> MatchWeights:
    """The preset of ``content_type`` in :mod:`matching.ranking.weights` (``default`` when it has none)."""
    return weights_for(content_type if content_type in PRESETS else None)


def _default_blend(content_type: str) -> tuple[float, float]:
    """Default ``(w_dtw, transition)`` of a content type."""
    base = base_weights(content_type)
    return base.blend[0], float(base.transition)


def make_weights(content_type: str, *, w_dtw: float, transition: float) -> MatchWeights:
    """The content type's preset with the learned blend and transition weight."""
    w = float(np.clip(w_dtw, 0.0, 1.0))
    return dataclasses.replace(base_weights(content_type), dtw=w, embedding=1.0 - w, transition=float(transition))


class WeightLearner:
    """Learns blend and DTW-transition weights from a :class:`FeedbackLog`, online.

    :meth:`refresh` reads only the events logged since the last call. It is thread-safe,
    so one learner can serve every request of the app.
    """

    def __init__(self, log: FeedbackLog, *, config: LearnerConfig | None = None) -> None:
        self.log = log
        self.config = config or LearnerConfig()
        self._ct: dict[str, Stats] = {}
        self._user: dict[tuple[str, str], Stats] = {}
        self._lists: dict[int, np.ndarray] = {}  # per list id, its sums (see LIST_WIDTH)
        self._shared_sums: dict[str, tuple[Stats, int]] = {}  # per content type, see _shared
        self._rated: dict[tuple[int, int], Observation] = {}  # the latest rating of each (list, position)
        self._last_id = 0
        self._n_read = 0  # events read so far (all with ids up to _last_id)
        self._read_at = 0.0  # time.time() when the last read began
        self._lock = threading.RLock()  # refresh() may run while another request reads

    # ------------------------------------------------------------------ updating
    def refresh(self) -> int:
        """Fold new events of the log into the posteriors; returns how many were read.

        When events already read have left the log since (a user's data was deleted, by
        this process or another), everything is forgotten and the whole log re-read first.
        """
        with self._lock:
            if self._last_id and self._log_rewritten():
                self._forget()
            started = time.time()
            obs = self.log.observations(since_id=self._last_id)
            self._fold(obs)
            if obs:
                self._last_id = max(self._last_id, max(o.event_id for o in obs))
            self._n_read += len(obs)
            self._read_at = started
            return len(obs)

    def rebuild(self) -> int:
        """Forget everything and re-read the whole log."""
        with self._lock:
            self._forget()
            return self.refresh()

    def _forget(self) -> None:
        self._ct.clear()
        self._user.clear()
        self._lists.clear()
        self._shared_sums.clear()
        self._rated.clear()
        self._last_id, self._n_read, self._read_at = 0, 0, 0.0

    def _log_rewritten(self) -> bool:
        """Whether the events up to the last one read differ from those read: fewer (deleted)
        or any newer than the last read (SQLite reuses the ids of deleted rows at the end)."""
        e, r = event_table, rec_table
        query = (
            sa.select(sa.func.count(), sa.func.max(e.c.created_at))
            .select_from(e.join(r, r.c.id == e.c.recommendation_id))
            .where(e.c.id <= self._last_id)
        )
        with self.log.engine.connect() as conn:
            n, newest = conn.execute(query).one()
        return int(n) != self._n_read or (newest is not None and float(newest) > self._read_at)

    def _retracted(self, obs: list[Observation]) -> list[Observation]:
        """The ratings that those in ``obs`` replace: a listener's latest rating of a track is the one
        that counts (re-rating one list's two tracks 10 times counted 20 ratings)."""
        out = []
        for o in obs:
            if o.kind == "rating" and o.position is not None:
                earlier = self._rated.get((o.recommendation_id, o.position))
                if earlier is not None:
                    out.append(earlier)
                self._rated[(o.recommendation_id, o.position)] = o
        return out

    def _batch(self, obs: list[Observation]) -> Batch:
        """The events of ``obs`` that say something about the ranking, as arrays; the ratings they
        replace come last, with weight and counts negated, to take them back out of the sums."""
        back = self._retracted(obs)
        sign = np.concatenate([np.ones(len(obs)), -np.ones(len(back))])
        obs = obs + back
        kind = np.array([o.kind for o in obs], dtype=str)
        y, w = rewards(
            kind, floats([o.value for o in obs]), floats([o.duration for o in obs]),
            implicit_weight=self.config.implicit_weight,
        )  # fmt: skip
        w = w * sign
        x = np.stack(
            [np.ones(len(obs)), floats([o.dtw_score for o in obs]), floats([o.embedding_score for o in obs])], axis=1
        )
        has_x = ~np.isnan(x).any(axis=1)
        # A list-wide event without scores (the download of a composed piece) says nothing about
        # the ranking; "compose instead" still counts against the transition setting used.
        keep = ~np.isnan(y) & (has_x | (kind == "compose_instead"))
        grid = np.asarray(self.config.transition_grid)
        used = floats([o.weights.get("transition") for o in obs])
        arm = np.where(np.isnan(used), -1, np.argmin(np.abs(grid[None, :] - used[:, None]), axis=1))
        return Batch(
            content_type=np.array([o.content_type for o in obs], dtype=str)[keep],
            user=np.array([o.user_id for o in obs], dtype=str)[keep],
            rec=np.array([o.recommendation_id for o in obs], dtype=np.int64)[keep],
            y=y[keep], w=w[keep], x=x[keep], has_x=has_x[keep], rating=(kind == "rating")[keep], arm=arm[keep],
            sign=sign[keep],
        )  # fmt: skip

    def _fold(self, obs: list[Observation]) -> None:
        """Add a batch of events to the sufficient statistics, all at once.

        Blend evidence first; then each event's transition arm learns from its *residual*: the
        reward minus what the component scores predict under the content type's posterior
        after this batch. Raw rewards would credit whichever arm happened to be used after
        the blend had been learned, since ratings rise as the blend improves.
        """
        if not obs:
            return
        b = self._batch(obs)
        if not len(b.y):
            return
        cts, ct_index = group(b.content_type)
        users, user_index = group(b.user)
        pairs, pair_index = group(ct_index * len(users) + user_index)
        terms, ct_of, pair_of = self._list_terms(b, ct_index, pair_index)
        ct_sums, pair_sums = sum_by(ct_of, len(cts), terms), sum_by(pair_of, len(pairs), terms)
        for g, ct in enumerate(cts):
            s = self._ct.setdefault(str(ct), Stats())
            s.add_blend(ct_sums[g])
            s.users.update(np.unique(b.user[ct_index == g]).tolist())
        pair_stats = []
        for g, key in enumerate(pairs):
            ct, user = str(cts[key // len(users)]), str(users[key % len(users)])
            s = self._user.setdefault((ct, user), Stats())
            s.add_blend(pair_sums[g])
            s.users.add(user)
            pair_stats.append(s)
        self._shared_sums.clear()  # the blend sums changed; _fold_arms reads them (via _posterior)
        self._fold_arms(b, cts, ct_index, pair_stats, pair_index)
        self._shared_sums.clear()  # and the arm sums

    def _list_terms(
        self, b: Batch, ct_index: np.ndarray, pair_index: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The batch's per-event terms, plus per list it touches the change of that list's
        evidence (:func:`list_evidence`), as rows to sum by content type and by user."""
        events = event_terms(b)
        scored = np.flatnonzero(b.has_x)
        lists, list_index = group(b.rec[scored])
        added = sum_by(list_index, len(lists), list_rows(b)[scored])
        first = np.zeros(len(lists), dtype=np.int64)
        first[list_index[::-1]] = scored[::-1]  # an event of each list: its content type and user
        old = np.array([self._lists.get(int(r), np.zeros(LIST_WIDTH)) for r in lists]).reshape(-1, LIST_WIDTH)
        new = old + added
        self._lists.update(zip(lists.tolist(), new, strict=True))
        cfg = self.config
        rows = np.zeros((len(lists), events.shape[1]))
        rows[:, :12] = list_evidence(new, cfg.noise_var, cfg.list_offset_var)
        rows[:, :12] -= list_evidence(old, cfg.noise_var, cfg.list_offset_var)
        terms = np.concatenate([events, rows])
        return terms, np.concatenate([ct_index, ct_index[first]]), np.concatenate([pair_index, pair_index[first]])

    def _fold_arms(
        self, b: Batch, cts: np.ndarray, ct_index: np.ndarray, pair_stats: list[Stats], pair_index: np.ndarray
    ) -> None:
        """Add the batch's residual rewards to the transition arms of each content type and user."""
        means = np.stack([self._posterior(str(ct), None)[0] for ct in cts])
        level = np.array([s.sum_wy / s.sum_w if s.sum_w else 0.5 for s in (self._ct[str(ct)] for ct in cts)])
        predicted = np.where(b.has_x, np.einsum("ij,ij->i", np.nan_to_num(b.x), means[ct_index]), level[ct_index])
        residual = b.y - predicted
        tried = b.arm >= 0
        n_arms = len(self.config.transition_grid)
        cols = np.stack([b.w, b.w * residual], axis=1)[tried]
        for stats, index in ((None, ct_index), (pair_stats, pair_index)):
            n = len(cts) if stats is None else len(stats)
            sums = sum_by(index[tried] * n_arms + b.arm[tried], n * n_arms, cols).reshape(n, n_arms, 2)
            for g in range(n):
                s = self._ct[str(cts[g])] if stats is None else stats[g]
                s.add_arms(self.config.transition_grid, sums[g, :, 0], sums[g, :, 1])

    def _arm_of(self, value: Any) -> float | None:
        if value is None:
            return None
        grid = np.asarray(self.config.transition_grid)
        return float(grid[np.argmin(np.abs(grid - float(value)))])

    # ------------------------------------------------------------------ posteriors
    def _posterior(self, content_type: str, user: str | None) -> tuple[np.ndarray, np.ndarray]:
        """Mean and covariance of ``(b0, b_dtw, b_emb)``."""
        cfg = self.config
        w0, _ = _default_blend(content_type)
        w0 = w0 if cfg.prior_w_dtw is None else cfg.prior_w_dtw
        # Prior on (b0, b_dtw, b_emb): b0 free; the sum b_dtw + b_emb held near 1 (a reward
        # on the 0..1 scale tracks the combined score), the difference, which decides the
        # blend, loose. Without the sum anchor, top-ranked candidates (whose two scores
        # trade off, so dtw + emb is nearly constant) leave the scale unidentified.
        u, v = np.array([0.0, 1.0, 1.0]) / np.sqrt(2), np.array([0.0, 1.0, -1.0]) / np.sqrt(2)
        prec = np.diag([1e-2, 0.0, 0.0]) + cfg.prior_scale_precision * np.outer(u, u)
        prec += cfg.prior_precision * np.outer(v, v)
        mean0 = np.array([0.0, w0, 1.0 - w0])
        s = self._shared(content_type, user)
        u = self._user.get((content_type, user), Stats()) if user is not None else Stats()
        # A user's prior is what *everyone else* taught (the content type's statistics less
        # the user's own), so each of the user's ratings counts once, in the user's part.
        prec_ct = prec + s.xtx / cfg.noise_var
        cov_ct = np.linalg.inv(prec_ct)
        mean_ct = cov_ct @ (prec @ mean0 + s.xty / cfg.noise_var)
        if user is None:
            return mean_ct, cov_ct
        prec_u0 = np.linalg.inv(cov_ct * cfg.user_prior_inflation)
        prec_u = prec_u0 + u.xtx / cfg.noise_var
        cov_u = np.linalg.inv(prec_u)
        return cov_u @ (prec_u0 @ mean_ct + u.xty / cfg.noise_var), cov_u

    def _shared(self, content_type: str, user: str | None) -> Stats:
        """Everyone's evidence of ``content_type`` (less ``user``'s own), each user's scaled by
        :func:`user_share` so that no one counts for more than ``max_user_weight`` ratings; none at
        all while fewer than ``min_users`` users gave any. One listener (or one scripted client)
        flooding ratings moved everyone's blend from 0.76 to 0.13 after 1,000 ratings."""
        cfg = self.config
        if content_type not in self._shared_sums:
            mine = [s for (ct, _), s in self._user.items() if ct == content_type and s.sum_w > 0]
            total = scaled_sum([(user_share(s, cfg.max_user_weight), s) for s in mine])
            self._shared_sums[content_type] = (total, len(mine))
        total, n = self._shared_sums[content_type]
        own = self._user.get((content_type, user)) if user is not None else None
        if own is not None and own.sum_w > 0:
            total, n = scaled_sum([(1.0, total), (-user_share(own, cfg.max_user_weight), own)]), n - 1
        return total if n >= cfg.min_users else Stats()

    def _blend_posterior(self, content_type: str, user: str | None) -> np.ndarray:
        """Log densities (unnormalised) of the grid's blend weights (:mod:`matching.feedback.blend`).

        A user's prior is the content type's posterior without the user's own evidence, tempered
        by ``user_prior_inflation`` (as :meth:`_posterior` widens its covariance).
        """
        cfg = self.config
        w0 = _default_blend(content_type)[0] if cfg.prior_w_dtw is None else cfg.prior_w_dtw
        s = self._shared(content_type, user)
        u = self._user.get((content_type, user), Stats()) if user is not None else Stats()
        log_p = blend.log_prior(w0, cfg.prior_blend_sd)
        if s.xtx.any():
            log_p = log_p + blend.log_likelihood(s.xtx, s.xty, cfg.noise_var)
        if user is not None and u.xtx.any():
            log_p = self._user_prior(log_p) + blend.log_likelihood(u.xtx, u.xty, cfg.noise_var)
        return log_p

    def _user_prior(self, log_p: np.ndarray) -> np.ndarray:
        """A user's prior on the blend from everyone else's posterior ``log_p``: tempered by
        ``user_prior_inflation``, or, where that is narrower than ``user_blend_sd``, a Gaussian of that sd
        around its mode. Tempering alone let the audience's size outweigh any one listener: with 1,000
        listeners who rated 60 tracks each, half preferring the arc fit (0.9) and half the embedding (0.2),
        everyone's sd was 0.004 and each listener's own blend stayed within 0.01 of everyone's 0.55."""
        cfg = self.config
        tempered = log_p / cfg.user_prior_inflation
        if blend.sd(blend.normalise(tempered)) >= cfg.user_blend_sd:
            return tempered
        return blend.log_prior(blend.mode(log_p), cfg.user_blend_sd)

    def _arms(self, content_type: str, user: str | None) -> dict[float, tuple[float, float]]:
        """Posterior ``(mean, variance)`` of the residual reward per transition arm.

        A user's arms take as their prior the content type's posterior without the user's own
        events (as the blend does, see :meth:`_posterior`).
        """
        cfg = self.config
        s = self._shared(content_type, user)
        us = (self._user.get((content_type, user)) if user is not None else None) or Stats()
        out = {}
        for a in cfg.transition_grid:
            n = cfg.arm_prior_count + s.arm_w.get(a, 0.0)
            out[a] = (s.arm_wr.get(a, 0.0) / n, cfg.noise_var / n)
        if user is None:
            return out
        for a, (m, var) in out.items():
            prec = 1.0 / var + us.arm_w.get(a, 0.0) / cfg.noise_var
            out[a] = ((m / var + us.arm_wr.get(a, 0.0) / cfg.noise_var) / prec, 1.0 / prec)
        return out

    def _best_arm(self, content_type: str, user: str | None) -> float:
        """The best tried arm by posterior mean, if it beats the default by ``switch_z`` sds; else the default.

        Only arms with evidence of their own may replace the default: an untried arm keeps its
        prior mean 0, and a few poor ratings under the default (its mean below 0) must not hand
        the list to a setting no one has heard, nor flip it back with the next rating.
        """
        _, default_t = _default_blend(content_type)
        arms = self._arms(content_type, user)
        default = self._arm_of(default_t)
        tried = self._tried_arms(content_type, user)
        if default not in arms:
            return max(tried or arms, key=lambda a: arms[a][0])
        challengers = [a for a in tried if a != default]
        if not challengers:
            return default
        best = max(challengers, key=lambda a: arms[a][0])
        gap = arms[best][0] - arms[default][0]
        return best if gap > self.config.switch_z * np.sqrt(arms[best][1] + arms[default][1]) else default

    def _tried_arms(self, content_type: str, user: str | None) -> list[float]:
        """The arms that any event of ``content_type`` was logged under (a user's arms build on these)."""
        s = self._ct.get(content_type) or Stats()
        return [a for a in self.config.transition_grid if s.arm_w.get(a, 0.0) > 0]

    # ------------------------------------------------------------------ reading
    def estimate(self, content_type: str = "general", user: str | None = None) -> WeightEstimate:
        """Posterior-mean weights and the evidence they rest on."""
        with self._lock:
            self._check(content_type, user)
            return self._estimate(content_type, user)

    def _check(self, content_type: object, user: object) -> None:
        """A preset (or a content type the log holds) and a valid user id: a typo ("dramma", "Alice Smith")
        silently got the default preset's blend, or everyone's instead of the user's own."""
        if not isinstance(content_type, str) or content_type not in PRESETS.keys() | self._ct.keys():
            raise ParameterError(f"`content_type` must be one of {sorted(PRESETS)} (received {content_type!r})")
        if user is not None:
            check_user(user)  # type: ignore[arg-type]

    def _estimate(self, content_type: str, user: str | None) -> WeightEstimate:
        log_p = self._blend_posterior(content_type, user)
        w, sd = blend.mode(log_p), blend.sd(blend.normalise(log_p))
        s = (self._user.get((content_type, user)) if user else self._ct.get(content_type)) or Stats()
        return WeightEstimate(
            content_type=content_type,
            user=user,
            w_dtw=round(w, 4),
            w_emb=round(1.0 - w, 4),
            transition=self._best_arm(content_type, user),
            n_events=s.n_events,
            n_ratings=s.n_ratings,
            n_users=len(s.users),
            w_dtw_sd=round(sd, 4),
        )

    def current_weights(self, content_type: str = "general", user: str | None = None) -> MatchWeights:
        """The weights the ranker should use now (posterior mean), as :mod:`matching.ranking.weights`' dataclass."""
        est = self.estimate(content_type, user)
        return make_weights(content_type, w_dtw=est.w_dtw, transition=est.transition)

    def sample_weights(
        self, content_type: str = "general", user: str | None = None, *, rng: np.random.Generator | None = None
    ) -> MatchWeights:
        """Thompson draw for exploration, bounded to stay near the posterior mean (see module doc)."""
        with self._lock:
            self._check(content_type, user)
            return self._sample(content_type, user, rng or np.random.default_rng())

    def _sample(self, content_type: str, user: str | None, rng: np.random.Generator) -> MatchWeights:
        log_p = self._blend_posterior(content_type, user)
        w_mean, w = blend.mode(log_p), blend.draw(blend.normalise(log_p), rng)
        lim = self.config.max_explore
        w = float(np.clip(w, max(0.0, w_mean - lim), min(1.0, w_mean + lim)))
        grid = list(self.config.transition_grid)
        best = grid.index(self._best_arm(content_type, user))
        near = grid[max(0, best - 1) : best + 2]
        arms = self._arms(content_type, user)
        draws = {a: rng.normal(arms[a][0], np.sqrt(arms[a][1])) for a in near}
        return make_weights(content_type, w_dtw=w, transition=max(draws, key=lambda a: draws[a]))

    def stats(self) -> list[WeightEstimate]:
        """One estimate per content type seen in the log (``general`` always included)."""
        with self._lock:
            return [self._estimate(ct, None) for ct in sorted(set(self._ct) | {"general"})]


_LEARNERS = Cache("feedback-learners")


def database_key(db: Any) -> str:
    """One name per database however it is given (a FeedbackLog, Library, Engine, URL or SQLite path):
    an SQLite file by its resolved path, a server by its URL (password hidden)."""
    engine = getattr(db, "engine", db)
    if isinstance(engine, sa.Engine):
        url = engine.url
        if url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:"):
            return f"sqlite-memory-{id(engine)}"  # every in-memory engine is a database of its own
    elif "://" in str(db):
        try:
            url = sa.engine.make_url(server_url(str(db)))
        except sa.exc.ArgumentError:
            return str(db)  # opening it will say what is wrong
    else:
        return str(Path(db).expanduser().resolve())
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        return str(Path(url.database).expanduser().resolve())
    return url.render_as_string(hide_password=True)


def learner_for(db: Any) -> WeightLearner:
    """One cached learner per database (a FeedbackLog, Library, Engine, URL or SQLite path)."""
    return _LEARNERS.get(
        database_key(db), lambda: WeightLearner(db if isinstance(db, FeedbackLog) else FeedbackLog(db))
    )


def forget_learner(db: Any) -> None:
    """Drop the cached learner of ``db``; the next :func:`learner_for` reads the whole log anew."""
    _LEARNERS.pop(database_key(db))


def delete_user(db: Any, user_id: str) -> dict[str, int]:
    """Delete everything stored about ``user_id`` in ``db``'s feedback log and drop its cached learner,
    so the learned weights stop reflecting that user at once; returns the removed row counts."""
    log = db if isinstance(db, FeedbackLog) else FeedbackLog(db)
    removed = log.delete_user(user_id)
    forget_learner(db)
    return removed


def current_weights(content_type: str = "general", user: str | None = None, *, db: Any) -> MatchWeights:
    """The learned weights for ``content_type`` (and ``user``) from the feedback in ``db``.

    ``db`` is the library's database (a Library, FeedbackLog, Engine, URL or SQLite path);
    the learner is cached per database and reads only new events on each call, so a
    ranker can call this per request: ``rank(clip, lib, weights=current_weights(ct, db=lib))``.
    """
    try:
        learner = learner_for(db)
    except ReadOnlyDatabase:  # a catalogue on read-only media that no one has rated: the preset blend
        return weights_for(content_type)
    learner.refresh()
    return learner.current_weights(content_type, user)


__all__ = [
    "LearnerConfig",
    "WeightEstimate",
    "WeightLearner",
    "current_weights",
    "database_key",
    "delete_user",
    "forget_learner",
    "learner_for",
    "reward",
]
