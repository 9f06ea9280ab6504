"""The feedback log: every recommendation shown and every action a listener takes on it.

The log lives in the same embedded database as the :class:`matching.Library` (SQLite in
WAL mode by default, or any SQLAlchemy URL), in three tables of its own:

- ``feedback_recommendations``: one row per ranked list shown (anonymous user id, clip
  fingerprint, content type, the weights the ranker used, timestamp);
- ``feedback_candidates``: the tracks of that list with their component scores
  (combined, DTW, embedding), section start and stretch;
- ``feedback_events``: what the listener did: ``rating`` (1-5), ``play``, ``skip`` (with
  the position in seconds), ``replay``, ``complete``, ``download``, ``compose_instead``.

Privacy: user ids are random tokens, never names or addresses, and nothing is sent
anywhere; the data stays in this database file. The page's ids are issued and signed by
the server (:mod:`matching.feedback.identity`), so a visitor cannot write under another's.
One user's data can be exported as JSON with :meth:`FeedbackLog.export_user` (CLI: ``soundtrack feedback export
--user ID``) and deleted with :meth:`FeedbackLog.delete_user` (``soundtrack feedback
delete --user ID``), which removes their recommendations, candidates and events.
"""

from __future__ import annotations

import json
import math
import numbers
import re
import reprlib
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, is_dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from analysis.errors import ParameterError
from analysis.media.hashing import content_hash
from matching.db import create_tables, make_engine
from matching.ranking.weights import PRESETS

#: The actions a listener can take on a recommendation.
EVENT_KINDS: tuple[str, ...] = ("rating", "play", "skip", "replay", "complete", "download", "compose_instead")

_SCORE_SLACK = 1e-9  # floating-point rounding of a score computed as 1.0
_USER_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
_MAX_ID = 2**63 - 1  # SQLite's largest INTEGER
_short = reprlib.Repr()
_short.maxstring = _short.maxother = 60
_echo = _short.repr  # a hostile payload's echo in a message stays short

_meta = sa.MetaData()

rec_table = sa.Table(
    "feedback_recommendations",
    _meta,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("user_id", sa.String(64), nullable=False, index=True),
    sa.Column("clip_fingerprint", sa.String(64), nullable=False),
    sa.Column("content_type", sa.String(32), nullable=False, index=True),
    sa.Column("weights", sa.Text, nullable=False),  # JSON object of the weights the ranker used
    sa.Column("created_at", sa.Float, nullable=False),
)

cand_table = sa.Table(
    "feedback_candidates",
    _meta,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "recommendation_id",
        sa.Integer,
        sa.ForeignKey("feedback_recommendations.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("position", sa.Integer, nullable=False),  # 0 = shown first
    sa.Column("track_id", sa.Integer, nullable=True),
    sa.Column("title", sa.String(256), nullable=True),
    sa.Column("score", sa.Float, nullable=False),
    sa.Column("dtw_score", sa.Float, nullable=False),
    sa.Column("embedding_score", sa.Float, nullable=False),
    sa.Column("start", sa.Float, nullable=True),
    sa.Column("stretch", sa.Float, nullable=True),
    sa.UniqueConstraint("recommendation_id", "position"),
)

event_table = sa.Table(
    "feedback_events",
    _meta,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "recommendation_id",
        sa.Integer,
        sa.ForeignKey("feedback_recommendations.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("user_id", sa.String(64), nullable=False, index=True),
    sa.Column("position", sa.Integer, nullable=True),  # candidate position; None for list-wide actions
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("value", sa.Float, nullable=True),  # rating 1-5, or skip position in seconds
    sa.Column("duration", sa.Float, nullable=True),  # length of the preview, for skip fractions
    sa.Column("created_at", sa.Float, nullable=False),
)


class _HasEngine(Protocol):
    engine: Engine


@dataclass(frozen=True)
class Candidate:
    """One shown track and its component scores (what the learner regresses on)."""

    score: float
    dtw_score: float
    embedding_score: float
    track_id: int | None = None
    title: str | None = None
    start: float | None = None
    stretch: float | None = None

    @classmethod
    def of(cls, item: Any) -> Candidate:
        """From a :class:`matching.Match`, another object with the same attributes, or a mapping."""
        if isinstance(item, Candidate):
            return item
        get = item.get if isinstance(item, Mapping) else lambda k, d=None: getattr(item, k, d)
        try:
            fields = {
                "score": float(get("score")),
                "dtw_score": float(get("dtw_score")),
                "embedding_score": float(get("embedding_score")),
                "track_id": None if get("track_id") is None else int(get("track_id")),
                "title": None if get("title") is None else str(get("title"))[:256],  # the column's width
                "start": None if get("start") is None else float(get("start")),
                "stretch": None if get("stretch") is None else float(get("stretch")),
            }
        except (TypeError, ValueError):
            raise ParameterError(
                f"candidate needs numeric score, dtw_score and embedding_score (received {_echo(item)})"
            ) from None
        return cls(**fields)

    def __post_init__(self) -> None:
        # The ranker's scores all lie in [0, 1]; anything else (NaN, 1e6) would poison the learner.
        for name in ("score", "dtw_score", "embedding_score"):
            v = getattr(self, name)
            if not (math.isfinite(v) and -_SCORE_SLACK <= v <= 1 + _SCORE_SLACK):
                raise ParameterError(f"candidate `{name}` must be within 0 and 1 (received {v!r})")
        if self.track_id is not None and not 0 <= self.track_id <= _MAX_ID:
            raise ParameterError(f"candidate `track_id` must be a track id, 0 or more (received {self.track_id})")
        for name, low in (("start", 0.0), ("stretch", 1e-9)):
            v = getattr(self, name)
            if v is not None and not (math.isfinite(v) and v >= low):
                raise ParameterError(f"candidate `{name}` must be a finite number of at least {low:g} (received {v!r})")


@dataclass(frozen=True)
class Observation:
    """One event joined with the scores of the candidate it concerns (the learner's input)."""

    event_id: int
    recommendation_id: int
    user_id: str
    content_type: str
    kind: str
    value: float | None
    duration: float | None
    position: int | None
    dtw_score: float | None
    embedding_score: float | None
    weights: Mapping[str, float]


def clip_fingerprint(path: str | Path) -> str:
    """SHA-256 of a clip's bytes (hex), so the log can tell repeated clips apart without storing them."""
    return content_hash(path)


def _weights_dict(weights: Any) -> dict[str, float]:
    if weights is None:
        return {}
    if is_dataclass(weights) and not isinstance(weights, type):
        raw = asdict(weights)
    elif isinstance(weights, Mapping):
        raw = dict(weights)
    else:
        raise ParameterError(f"`weights` must be a dataclass or a mapping (received {type(weights).__name__})")
    out = {k: float(v) for k, v in raw.items() if isinstance(v, int | float) and not isinstance(v, bool)}
    bad = {k: v for k, v in out.items() if not math.isfinite(v)}
    if bad:
        raise ParameterError(f"`weights` must be finite numbers (received {_echo(bad)})")
    return out


def _is_number(x: Any) -> bool:
    return isinstance(x, numbers.Real) and not isinstance(x, bool)


def _check_event(kind: str, position: Any, value: Any, duration: Any) -> None:
    """Refuse an event that could not have happened, before anything is stored."""
    if kind not in EVENT_KINDS:
        raise ParameterError(f"`kind` must be one of {', '.join(EVENT_KINDS)} (received {_echo(kind)})")
    if position is None:
        if kind not in ("compose_instead", "download"):
            raise ParameterError(f"`position` (which candidate) is required for a {kind!r} event")
    elif not isinstance(position, numbers.Integral) or isinstance(position, bool):
        raise ParameterError(f"`position` must be a whole number (received {_echo(position)})")
    for name, x in (("value", value), ("duration", duration)):
        if x is not None and not (_is_number(x) and math.isfinite(x)):
            raise ParameterError(f"`{name}` must be a finite number (received {_echo(x)})")
    if kind == "rating" and (value is None or not 1 <= value <= 5 or value != int(value)):
        raise ParameterError(f"a rating must be a whole number from 1 to 5 (received {value!r})")
    if duration is not None and duration <= 0:
        raise ParameterError(f"`duration` must be positive (received {duration!r})")
    if kind == "skip" and value is not None and value < 0:
        raise ParameterError(f"`value` of a skip is its position in seconds, 0 or more (received {value!r})")


class UnknownRecommendation(ParameterError):
    """An event for a recommendation the log does not hold (never logged, or deleted with its user's data)."""


def check_recommendation_id(recommendation_id: object) -> int:
    """A recommendation id as an ``int``: a whole number (numpy's too), never a bool, a float or a string."""
    if isinstance(recommendation_id, bool) or not isinstance(recommendation_id, numbers.Integral):
        raise ParameterError(f"`recommendation_id` must be a whole number (received {_echo(recommendation_id)})")
    if not 1 <= recommendation_id <= _MAX_ID:
        raise UnknownRecommendation(f"no recommendation with id {recommendation_id} in the feedback log")
    return int(recommendation_id)


def check_user(user_id: str) -> str:
    """Validate an anonymous user id (1-64 characters of letters, digits and ``_.:-``)."""
    if not isinstance(user_id, str) or not _USER_RE.match(user_id):
        raise ParameterError(
            f"`user_id` must be 1-64 characters of letters, digits and _.:- (received {_echo(user_id)})"
        )
    return user_id


class FeedbackLog:
    """Recommendations and listener actions in the library's database.

    ``target`` is a :class:`matching.Library` (its ``engine`` is reused, so the log lives
    beside the catalogue), an SQLAlchemy ``Engine``, a database URL, or an SQLite path.
    Writes are single statements in short transactions, so many threads may log at once.
    """

    def __init__(self, target: str | Path | Engine | _HasEngine = "library.db") -> None:
        if isinstance(target, Engine):
            self.engine = target
        elif isinstance(getattr(target, "engine", None), Engine):
            self.engine = target.engine  # type: ignore[union-attr]
        elif isinstance(target, str | Path):
            self.engine = make_engine(target)
        else:
            raise ParameterError(
                f"`target` must be a Library, an Engine, a URL or a path (received {type(target).__name__})"
            )
        create_tables(_meta, self.engine)

    # ------------------------------------------------------------------ writing
    def log_recommendation(
        self,
        *,
        user_id: str,
        clip_fingerprint: str,
        candidates: Sequence[Any],
        weights: Any = None,
        content_type: str = "general",
    ) -> int:
        """Store a ranked list as shown (best first); returns its recommendation id."""
        check_user(user_id)
        if content_type not in PRESETS:
            raise ParameterError(f"`content_type` must be one of {sorted(PRESETS)} (received {content_type!r})")
        cands = [Candidate.of(c) for c in candidates]
        now = time.time()
        with self.engine.begin() as conn:
            rec_id = conn.execute(
                rec_table.insert().values(
                    user_id=user_id,
                    clip_fingerprint=str(clip_fingerprint)[:64],
                    content_type=str(content_type),
                    weights=json.dumps(_weights_dict(weights)),
                    created_at=now,
                )
            ).inserted_primary_key[0]
            if cands:
                conn.execute(
                    cand_table.insert(),
                    [{"recommendation_id": rec_id, "position": i, **asdict(c)} for i, c in enumerate(cands)],
                )
        return int(rec_id)

    def log_event(
        self,
        recommendation_id: int,
        kind: str,
        *,
        position: int | None = None,
        value: float | None = None,
        duration: float | None = None,
    ) -> int:
        """Record one action on recommendation ``recommendation_id`` (candidate ``position``, 0-based).

        ``rating`` needs ``value`` in 1..5; ``skip`` takes the position in seconds as
        ``value`` and the preview length as ``duration``. ``compose_instead`` concerns the
        whole list, and so does a ``download`` without ``position`` (a composed piece was
        downloaded). Returns the event id.
        """
        _check_event(kind, position, value, duration)
        recommendation_id = check_recommendation_id(recommendation_id)
        # Read the owner first, in its own short transaction, then write in another: a
        # read-then-write transaction could deadlock on SQLite under many writers.
        with self.engine.connect() as conn:
            user_id = conn.execute(
                sa.select(rec_table.c.user_id).where(rec_table.c.id == int(recommendation_id))
            ).scalar_one_or_none()
            n_cands = conn.execute(
                sa.select(sa.func.count()).where(cand_table.c.recommendation_id == int(recommendation_id))
            ).scalar_one()
        if user_id is None:
            raise UnknownRecommendation(f"no recommendation with id {recommendation_id} in the feedback log")
        if position is not None and not 0 <= position < n_cands:
            raise ParameterError(
                f"`position` must be within 0 and {n_cands - 1}, the candidates of recommendation "
                f"{recommendation_id} (received {position})"
            )
        try:
            with self.engine.begin() as conn:
                event_id = conn.execute(
                    event_table.insert().values(
                        recommendation_id=int(recommendation_id),
                        user_id=user_id,
                        position=None if position is None else int(position),
                        kind=kind,
                        value=None if value is None else float(value),
                        duration=None if duration is None else float(duration),
                        created_at=time.time(),
                    )
                ).inserted_primary_key[0]
        except sa.exc.IntegrityError:
            # The list was deleted (its user's data, from another tab or the CLI) between the read and
            # this write: the foreign key refuses the event. Say so as for a list deleted before.
            if self._exists(recommendation_id):
                raise
            raise UnknownRecommendation(
                f"no recommendation with id {recommendation_id} in the feedback log"
            ) from None
        return int(event_id)

    def _exists(self, recommendation_id: int) -> bool:
        with self.engine.connect() as conn:
            found = conn.execute(sa.select(rec_table.c.id).where(rec_table.c.id == recommendation_id)).first()
        return found is not None

    def rate(self, recommendation_id: int, position: int, rating: int) -> int:
        """Shorthand for a ``rating`` event."""
        return self.log_event(recommendation_id, "rating", position=position, value=rating)

    # ------------------------------------------------------------------ reading
    def observations(self, *, since_id: int = 0, content_type: str | None = None) -> list[Observation]:
        """Events after ``since_id`` joined with their candidate's scores and the weights used, oldest first."""
        r, c, e = rec_table, cand_table, event_table
        q = (
            sa.select(
                e.c.id, e.c.recommendation_id, e.c.user_id, r.c.content_type, e.c.kind, e.c.value, e.c.duration,
                e.c.position, c.c.dtw_score, c.c.embedding_score, r.c.weights,
            )
            .select_from(
                e.join(r, r.c.id == e.c.recommendation_id).outerjoin(
                    c, (c.c.recommendation_id == e.c.recommendation_id) & (c.c.position == e.c.position)
                )
            )
            .where(e.c.id > since_id)
            .order_by(e.c.id)
        )
        if content_type is not None:
            q = q.where(r.c.content_type == content_type)
        with self.engine.connect() as conn:
            rows = conn.execute(q).all()
        # Parsed once per distinct weights text (every event of a list shares it), read-only.
        parsed: dict[str, Mapping[str, float]] = {}
        for text in {row[10] for row in rows}:
            parsed[text] = MappingProxyType(json.loads(text or "{}"))
        return [
            Observation(
                event_id=row[0], recommendation_id=row[1], user_id=row[2], content_type=row[3], kind=row[4],
                value=row[5], duration=row[6], position=row[7], dtw_score=row[8], embedding_score=row[9],
                weights=parsed[row[10]],
            )
            for row in rows
        ]

    def counts(self) -> dict[str, int]:
        """Number of recommendations, candidates and events of each kind."""
        with self.engine.connect() as conn:
            out = {
                "recommendations": conn.execute(sa.select(sa.func.count()).select_from(rec_table)).scalar_one(),
                "candidates": conn.execute(sa.select(sa.func.count()).select_from(cand_table)).scalar_one(),
            }
            for kind, n in conn.execute(sa.select(event_table.c.kind, sa.func.count()).group_by(event_table.c.kind)):
                out[kind] = n
        return {k: int(v) for k, v in out.items()}

    # ------------------------------------------------------------------ privacy
    def export_user(self, user_id: str) -> dict[str, Any]:
        """Everything stored about ``user_id``: their recommendations (with candidates) and events."""
        check_user(user_id)
        with self.engine.connect() as conn:
            recs = conn.execute(
                sa.select(rec_table).where(rec_table.c.user_id == user_id).order_by(rec_table.c.id)
            ).mappings().all()
            ids = [r["id"] for r in recs]
            cands = conn.execute(
                sa.select(cand_table).where(cand_table.c.recommendation_id.in_(ids)).order_by(cand_table.c.id)
            ).mappings().all() if ids else []
            evs = conn.execute(
                sa.select(event_table).where(event_table.c.user_id == user_id).order_by(event_table.c.id)
            ).mappings().all()
        by_rec: dict[int, list[dict[str, Any]]] = {}
        for c in cands:
            by_rec.setdefault(c["recommendation_id"], []).append(
                {k: v for k, v in c.items() if k not in ("id", "recommendation_id")}
            )
        return {
            "user_id": user_id,
            "exported_at": time.time(),
            "recommendations": [
                {**{k: v for k, v in r.items() if k != "weights"}, "weights": json.loads(r["weights"] or "{}"),
                 "candidates": by_rec.get(r["id"], [])}
                for r in recs
            ],
            "events": [dict(e) for e in evs],
        }

    def holds_user(self, user_id: str) -> bool:
        """Whether anything is stored about ``user_id`` (a list shown to them, or an event of theirs)."""
        check_user(user_id)
        with self.engine.connect() as conn:
            for table in (rec_table, event_table):
                if conn.execute(sa.select(table.c.id).where(table.c.user_id == user_id).limit(1)).first():
                    return True
        return False

    def export_user_json(self, user_id: str) -> str:
        """:meth:`export_user` as an indented JSON string."""
        return json.dumps(self.export_user(user_id), indent=2)

    def delete_user(self, user_id: str) -> dict[str, int]:
        """Delete every row about ``user_id``; returns how many of each kind were removed."""
        check_user(user_id)
        rec_ids = sa.select(rec_table.c.id).where(rec_table.c.user_id == user_id)
        with self.engine.begin() as conn:
            n_ev = conn.execute(
                event_table.delete().where(
                    (event_table.c.user_id == user_id) | event_table.c.recommendation_id.in_(rec_ids)
                )
            ).rowcount
            n_c = conn.execute(cand_table.delete().where(cand_table.c.recommendation_id.in_(rec_ids))).rowcount
            n_r = conn.execute(rec_table.delete().where(rec_table.c.user_id == user_id)).rowcount
        return {"recommendations": int(n_r), "candidates": int(n_c), "events": int(n_ev)}


__all__ = [
    "EVENT_KINDS",
    "Candidate",
    "FeedbackLog",
    "Observation",
    "check_user",
    "clip_fingerprint",
]
