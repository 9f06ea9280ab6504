"""``composer.generate``: the learned model alone, for research and evaluation.

:func:`composer.compose` hides the model's own contribution: the harmony planner
supplies valence, forcing puts the chord changes on the cuts, and the arranger snaps
every note to the planned scale. :func:`generate` returns what the model writes by
itself (no forcing unless asked, no snapping), so its following of the arc and its
landing on cuts can be heard and measured.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pretty_midi

from analysis.arc import EmotionArc
from analysis.errors import MediaError, ParameterError, output_file
from composer.model import checkpoint
from composer.model import generate as sampling
from composer.model.plan import plan_following
from composer.music.harmony import HarmonyPlan, check_cuts, plan_harmony
from composer.music.midi import check_holds_notes
from composer.music.styles import get_style

#: What a model reads at every token: every checkpoint reads the first three; one with plan
#: input (``ModelConfig.plan_chords``) also reads the last three when it is given a plan.
CONDITIONED_ON: tuple[str, ...] = ("valence", "arousal", "seconds to the next cut")
PLAN_INPUTS: tuple[str, ...] = ("key", "chord", "seconds to the next chord change")


@dataclass(frozen=True, eq=False)
class RawPiece:
    """The model's own output for one call of :func:`generate`.

    ``chord_times`` are the seconds where the model wrote a chord change (its ``CHORD``
    tokens) and ``chords`` their labels; ``cut_hits[i]`` says whether one lies within
    0.1 s of ``cuts[i]``; ``forced`` counts the chords forced onto cuts (0 unless
    ``force_cuts``); ``tokens`` the number of tokens sampled; ``source`` the note
    source (``"learned"``) and ``checkpoint`` the checkpoint's file name;
    ``conditioned_on`` what the model was told; ``plan`` the harmony plan given, if any.
    """

    midi: pretty_midi.PrettyMIDI
    chord_times: tuple[float, ...]
    chords: tuple[str, ...]
    cuts: tuple[float, ...]
    cut_hits: tuple[bool, ...]
    forced: int
    tokens: int
    duration: float
    seed: int
    source: str
    checkpoint: str
    conditioned_on: tuple[str, ...]
    plan: HarmonyPlan | None
    compute_seconds: float

    @property
    def cut_hit_rate(self) -> float:
        """Share of cuts with a chord change within 0.1 s (NaN without cuts)."""
        return float(np.mean(self.cut_hits)) if self.cut_hits else float("nan")

    def pitches(self) -> np.ndarray:
        """MIDI pitches of the pitched notes, in onset order."""
        notes = sorted((n.start, n.pitch) for i in self.midi.instruments if not i.is_drum for n in i.notes)
        return np.array([p for _, p in notes], dtype=np.int64)

    def plan_following(self) -> dict[str, float] | None:
        """Share of the model's notes whose pitch class lies in the planned chord, and in its scale,
        at the note's onset (``None`` without a plan). Nothing is snapped, so these measure the model."""
        if self.plan is None:
            return None
        in_chord, in_scale, n = plan_following(self.midi, self.plan)
        if not n:
            return {"in_chord": float("nan"), "in_scale": float("nan"), "notes": 0}
        return {"in_chord": in_chord / n, "in_scale": in_scale / n, "notes": n}

    def to_dict(self) -> dict[str, Any]:
        r = lambda x: round(float(x), 4)  # noqa: E731
        return {
            "duration": r(self.duration),
            "seed": self.seed,
            "source": self.source,
            "checkpoint": self.checkpoint,
            "conditioned_on": list(self.conditioned_on),
            "tokens": self.tokens,
            "notes": int(self.pitches().size),
            "chord_times": [r(t) for t in self.chord_times],
            "chords": list(self.chords),
            "cuts": [r(c) for c in self.cuts],
            "cut_hits": list(self.cut_hits),
            "forced": self.forced,
            "plan_following": self.plan_following(),
            "compute_seconds": r(self.compute_seconds),
        }

    def write_midi(self, path: str | Path) -> Path:
        """The piece as a standard MIDI file: the plan's tempo map and 4/4 bars, or without a plan the
        model's own 120 bpm in the meter of its bars."""
        out = output_file(path)  # a folder in the way is named, as Composition.write_midi names it
        try:
            self.midi.write(str(out))
        except OSError as err:
            raise MediaError(out, f"cannot be written ({err.strerror or err})") from None
        return out


def _check(arc: Any, cuts: Any, duration: float | None, plan: Any) -> tuple[float, tuple[float, ...]]:
    """The duration and cuts to use, or a ParameterError naming the argument."""
    if not isinstance(arc, EmotionArc):
        raise ParameterError(f"`arc` must be an EmotionArc (received {type(arc).__name__})")
    if len(arc) == 0:
        raise ParameterError("`arc` is empty (received an arc with no time steps)")
    if plan is not None and not isinstance(plan, HarmonyPlan):
        raise ParameterError("`plan` must be a HarmonyPlan from plan_harmony, None or False "
                             f"(received {type(plan).__name__})")
    default = plan.duration if plan is not None else arc.duration
    try:
        dur = float(default if duration is None else duration)
    except (TypeError, ValueError):
        raise ParameterError(f"`duration` must be a number of seconds (received {duration!r})") from None
    if not math.isfinite(dur) or not 0 < dur <= 3600:
        raise ParameterError(f"`duration` must be within 0 and 3600 s (received {duration})")
    if plan is not None and abs(plan.duration - dur) > 1e-6:
        raise ParameterError(f"`plan` covers {plan.duration} s but `duration` is {dur} s (received both)")
    given = (plan.cuts if plan is not None else ()) if cuts is None else cuts
    return dur, check_cuts(given)


def generate(
    arc: EmotionArc,
    cuts: Sequence[float] | None = None,
    duration: float | None = None,
    *,
    seed: int = 0,
    force_cuts: bool = False,
    plan: HarmonyPlan | Literal[False] | None = None,
    style: str = "cinematic",
    temperature: float = 1.0,
    top_p: float = 0.95,
    model: checkpoint.Loaded | str | Path | None = None,
) -> RawPiece:
    """The learned model's own piece for ``arc`` and ``cuts``: no forcing, no snapping.

    At every token the model reads the arc's valence and arousal at that time and the
    seconds to the next cut (clamped to a few seconds) and, if it has plan input (the
    shipped checkpoint does), the plan it must realise: the key, the chord sounding at
    that time and the seconds to the next chord change. ``plan`` is a
    :class:`~composer.music.harmony.HarmonyPlan` from
    :func:`~composer.music.harmony.plan_harmony`; ``None`` (the default) makes the
    planner's plan for ``arc`` and ``cuts`` in ``style`` with ``seed``, as ``compose``
    does; ``False`` runs the model without a plan. The plan is kept on the result so that
    :meth:`RawPiece.plan_following` can measure how many of the model's notes fall inside
    the planned chords and scales (for a model without plan input it is only measured
    against). It also supplies the default ``cuts`` and ``duration``.

    Unaided (``force_cuts=False``) the model decides by itself whether it changes chord
    on a cut; ``force_cuts=True`` shortens time shifts to land on each cut and draws a
    chord there when the model writes none (counted in ``forced``). Pitches are the
    model's: they may leave any scale.

    ``duration`` defaults to the plan's, else the arc's; the same ``seed`` gives the same
    piece; ``model`` is a loaded checkpoint or a path (default: the shipped weights, ``composer.npz``).
    Raises ``ParameterError`` on bad arguments and ``ModelError`` when no checkpoint loads.
    """
    dur, cut_times = _check(arc, cuts, duration, None if plan is False else plan)
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
        raise ParameterError(f"`seed` must be an integer (received {seed!r})")
    if not isinstance(force_cuts, bool | np.bool_):  # bool("False") is True: the string forced every cut
        raise ParameterError(f"`force_cuts` must be True or False (received {force_cuts!r})")
    if plan is None:
        plan = plan_harmony(arc, cut_times, dur, style=get_style(style), seed=int(seed))
    given = None if plan is False else plan
    if isinstance(model, checkpoint.Loaded):
        loaded, name = model, "given model"
    else:
        path = Path(model) if model is not None else checkpoint.SAMPLING
        loaded, name = checkpoint.load(path), path.name
    piece = sampling.generate(arc, duration=dur, cuts=cut_times, seed=int(seed), temperature=temperature,
                              top_p=top_p, force_cuts=bool(force_cuts), model=loaded, plan=given)
    bpm = given.base_tempo if given is not None else 120.0  # the model's own clock without a plan
    check_holds_notes(sum(len(inst.notes) for inst in piece.midi.instruments), dur, bpm)
    reads_plan = bool(loaded.model.config.plan_chords) and given is not None
    return RawPiece(
        midi=piece.midi,
        chord_times=tuple(float(t) for t in piece.chord_times),
        chords=tuple(piece.chords),
        cuts=piece.cuts,
        cut_hits=piece.cut_hits,
        forced=piece.forced,
        tokens=int(piece.tokens.size),
        duration=dur,
        seed=int(seed),
        source=sampling.LearnedSource.name,
        checkpoint=name,
        conditioned_on=CONDITIONED_ON + (PLAN_INPUTS if reads_plan else ()),
        plan=given,
        compute_seconds=piece.compute_seconds,
    )
