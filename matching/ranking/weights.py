"""The tunable numbers of arc matching, one frozen dataclass per content type.

The ranker reads every weight from a :class:`MatchWeights`; the feedback learner
produces new instances (``dataclasses.replace``), and the feedback log stores them
as a flat mapping of floats (:meth:`MatchWeights.to_dict`). All fields are floats on
purpose, so that a stored row round-trips without a schema.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from analysis.errors import ParameterError

#: RMS step distance a time-stretch must win per unit of ``|ln stretch|`` to be chosen over the
#: unstretched section (:func:`matching.ranking.dtw.fit_section`): 0.022 for the largest default
#: stretch, 1.25, a tenth of the distance at which the DTW score is 0.5. Arcs that close differ by
#: less than the analysis can tell, while music played a fifth slower is heard.
STRETCH_COST = 0.1


@dataclass(frozen=True)
class MatchWeights:
    """Blend weights, DTW cost weights and limits of the arc matcher.

    ``score = dtw * dtw_score + embedding * embedding_score`` (the two blend weights
    are renormalised to sum to one). Inside DTW each time step is the vector
    ``(sqrt(valence) * v, sqrt(arousal) * a, sqrt(transition) * dv/dt * 1 s,
    sqrt(transition) * da/dt * 1 s)``, so the squared Euclidean step cost weights the
    three terms linearly; ``transition`` is the weight of emotional *changes*
    (derivative channels) against levels.
    """

    #: Blend weight of the DTW (arc flow) score.
    dtw: float = 0.75
    #: Blend weight of the static (arc-summary) embedding score.
    embedding: float = 0.25
    #: Step-cost weight of the valence channel.
    valence: float = 1.0
    #: Step-cost weight of the arousal channel.
    arousal: float = 1.0
    #: Step-cost weight of the derivative channels (change per second).
    transition: float = 2.0
    #: Seconds across which the derivative channels measure change.
    transition_span: float = 2.0
    #: Sakoe-Chiba band half-width as a fraction of the clip's length in steps.
    window: float = 0.2
    #: Largest time-stretch factor (and its inverse) allowed when fitting a section.
    max_stretch: float = 1.25
    #: RMS step distance at which the DTW score is 0.5 (see :func:`matching.ranking.dtw.distance_to_score`).
    distance_scale: float = 0.25
    #: Penalty for non-diagonal steps in the subsequence search (per step, squared units).
    penalty: float = 0.01
    #: Below this best score, ``rank`` flags "compose instead".
    compose_threshold: float = 0.55

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            # NaN and infinity: `window=inf` or `transition_span=inf` ended ranking in Python's OverflowError
            # "cannot convert float infinity to integer", and `dtw=inf` scored every track NaN
            if not isinstance(value, int | float) or not math.isfinite(value):
                raise ParameterError(f"`{f.name}` must be a finite number (received {value!r})")
            if value < 0:
                raise ParameterError(f"`{f.name}` must not be negative (received {value})")
        if self.dtw + self.embedding <= 0:
            raise ParameterError(f"`dtw` + `embedding` must be positive (received {self.dtw} + {self.embedding})")
        if self.valence + self.arousal <= 0:
            raise ParameterError("`valence` + `arousal` must be positive (received 0)")
        if self.max_stretch < 1:
            raise ParameterError(f"`max_stretch` must be at least 1 (received {self.max_stretch})")
        if self.distance_scale <= 0:
            raise ParameterError(f"`distance_scale` must be positive (received {self.distance_scale})")
        if not 0 <= self.compose_threshold <= 1:
            raise ParameterError(f"`compose_threshold` must be within 0 and 1 (received {self.compose_threshold})")

    @property
    def blend(self) -> tuple[float, float]:
        """``(w_dtw, w_embedding)`` renormalised to sum to one."""
        total = self.dtw + self.embedding
        return self.dtw / total, self.embedding / total

    def to_dict(self) -> dict[str, float]:
        return {f.name: float(getattr(self, f.name)) for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MatchWeights:
        """Inverse of :meth:`to_dict`; unknown keys raise, missing keys take defaults."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise ParameterError(f"unknown weight names {sorted(unknown)} (known: {sorted(names)})")
        return cls(**{k: float(v) for k, v in data.items()})


#: Presets per content type: drama and documentary follow slow emotional development
#: (levels matter, transitions a bit less); action and trailers live on changes.
#: The names follow the analysis' content-type presets (``analysis.presets``), plus "trailer".
PRESETS: Mapping[str, MatchWeights] = {
    "default": MatchWeights(),
    "general": MatchWeights(),
    "drama": MatchWeights(transition=1.5, valence=1.2),
    "documentary": MatchWeights(transition=1.0, dtw=0.6, embedding=0.4),
    "interview": MatchWeights(transition=1.0, dtw=0.6, embedding=0.4),
    "courtroom": MatchWeights(transition=1.0, dtw=0.6, embedding=0.4),
    "action": MatchWeights(transition=3.0, arousal=1.3),
    "sports": MatchWeights(transition=3.0, arousal=1.3),
    "music_video": MatchWeights(transition=2.5, arousal=1.2),
    "trailer": MatchWeights(transition=3.0, max_stretch=1.35),
}


def weights_for(content_type: str | None = None, weights: MatchWeights | None = None) -> MatchWeights:
    """The weights to use: explicit ``weights`` win, else the preset of ``content_type``."""
    if weights is not None:
        if not isinstance(weights, MatchWeights):
            raise ParameterError(f"`weights` must be a MatchWeights (received {type(weights).__name__})")
        return weights
    key = content_type or "default"
    if key not in PRESETS:
        raise ParameterError(f"`content_type` must be one of {sorted(PRESETS)} (received {content_type!r})")
    return PRESETS[key]
