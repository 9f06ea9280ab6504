"""EmotionArc: circumplex mapping, validation, resampling, slicing and JSON."""

from __future__ import annotations

import re

import numpy as np
import pytest

from analysis.arc import EMOTION_VA, EMOTIONS, EmotionArc, emotions_to_va, grid, va_to_emotions
from analysis.errors import ParameterError


def test_emotion_prototypes_map_back_to_themselves():
    for name in EMOTIONS:
        v, a = EMOTION_VA[name]
        probs = va_to_emotions(v, a)
        assert max(probs, key=lambda k: probs[k][0]) == name


def test_emotions_to_va_is_weighted_mean():
    v, a = emotions_to_va({"joy": 0.5, "sadness": 0.5})
    assert v[0] == pytest.approx((0.76 - 0.63) / 2)
    assert a[0] == pytest.approx((0.48 - 0.27) / 2)
    with pytest.raises(ParameterError, match="unknown emotions"):
        emotions_to_va({"glee": 1.0})


def test_arc_derives_emotions_and_clips_values():
    arc = EmotionArc.from_va([0.25, 0.75], [2.0, -0.7], [0.5, -0.3])
    assert arc.valence.tolist() == [1.0, -0.7]
    assert set(arc.emotions) == set(EMOTIONS)
    assert arc.dominant_emotion() == ["joy", "sadness"]
    with pytest.raises(ValueError):
        arc.valence[0] = 0.0  # read-only


@pytest.mark.parametrize(
    "times, val, aro, match",
    [([0, 1], [0], [0, 0], "equal length"), ([1, 0], [0, 0], [0, 0], "strictly increasing"),
     ([0, 1], [np.nan, 0], [0, 0], "finite")],
)
def test_arc_rejects_bad_input(times, val, aro, match):
    with pytest.raises(ParameterError, match=match):
        EmotionArc.from_va(times, val, aro)


@pytest.mark.parametrize("duration", [float("nan"), float("inf"), -1.0, 0.0, "8", None])
def test_a_constant_arc_names_a_duration_it_cannot_cover(duration):
    """NaN reached NumPy's "cannot convert float NaN to integer" (a ValueError of no name), inf "cannot
    convert float infinity to integer"."""
    with pytest.raises(ParameterError, match=r"^`duration` must be positive, finite seconds \(received "):
        EmotionArc.constant(duration, valence=0.0, arousal=0.0)
    with pytest.raises(ParameterError, match=r"^`hop` must be positive"):
        EmotionArc.constant(4.0, valence=0.0, arousal=0.0, hop=float("nan"))
    assert len(EmotionArc.constant(np.float32(4.0), valence=0.0, arousal=0.0)) == 8


def test_resample_and_slice_name_what_is_no_number():
    """``resample(hop=nan)`` reached NumPy's "arange: cannot compute length", ``resample(n=2.5)`` linspace's
    TypeError, a one-step arc resampled to 4 points "`times` must be strictly increasing" (an argument the
    caller never gave), and ``slice(nan, 2)`` an empty arc without a word."""
    arc = EmotionArc.constant(8.0, valence=0.3, arousal=-0.2)
    with pytest.raises(ParameterError, match=r"^`hop` must be positive, finite seconds \(received nan\)"):
        arc.resample(float("nan"))
    with pytest.raises(ParameterError, match=r"^`n` must be a whole number, at least 1 \(received 2.5\)"):
        arc.resample(n=2.5)
    with pytest.raises(ParameterError, match=r"^an arc of one time step resamples to one point only"):
        EmotionArc.from_va([0.0], [0.1], [0.2]).resample(n=4)
    with pytest.raises(ParameterError, match=r"^`start` and `end` must be seconds"):
        arc.slice(float("nan"), 2.0)
    assert len(arc.resample(n=np.int64(4))) == 4 and len(arc.resample(np.float32(0.25))) == 31
    assert len(arc.slice(0.0, float("inf"))) == len(arc)


@pytest.mark.parametrize(("text", "message"), [
    ("[]", "arc data must be a mapping with times, valence and arousal (received list)"),
    ('{"arc": 5}', "arc data must be a mapping with times, valence and arousal (received int)"),
    ('{"times": [0, 1], "valence": [0, "x"], "arousal": [0, 0]}', "arc data's `valence` must be numbers"),
    ('{"times": [0, 1], "valence": [0, 0], "arousal": [0, 0], "emotions": [1]}', "arc data's `emotions` must be a"),
])
def test_arc_json_of_the_wrong_shape_is_named(text, message):
    """A JSON list was "list indices must be integers or slices, not str", a string value NumPy's "could not
    convert string to float"."""
    with pytest.raises(ParameterError, match=f"^{re.escape(message)}"):
        EmotionArc.from_json(text)


def test_the_circumplex_maps_refuse_what_is_no_probability_or_point():
    """``emotions_to_va({"joy": -1, "sadness": 1})`` gave valence -1.39, off the circumplex, and NaN went
    through both maps as NaN."""
    with pytest.raises(ParameterError, match=r"^`probs` must be finite and not negative \(received joy: -1"):
        emotions_to_va({"joy": -1.0, "sadness": 1.0})
    with pytest.raises(ParameterError, match=r"^`probs` must be finite and not negative \(received fear: nan"):
        emotions_to_va({"joy": 0.5, "fear": float("nan")})
    with pytest.raises(ParameterError, match=r"^`valence` and `arousal` must be finite"):
        va_to_emotions(float("nan"), 0.0)
    v, a = emotions_to_va({"joy": np.float32(1.0), "sadness": 0.0})
    assert (v[0], a[0]) == pytest.approx(EMOTION_VA["joy"])


def test_grid_resample_slice_roundtrip():
    t = grid(10.0, 0.5)
    assert t[0] == 0.25 and t[-1] == 9.75 and t.size == 20
    arc = EmotionArc.from_va(t, np.linspace(-1, 1, t.size), np.zeros(t.size))
    assert arc.hop == pytest.approx(0.5)
    assert arc.duration == pytest.approx(10.0)
    fine = arc.resample(0.25)
    assert fine.valence[0] == pytest.approx(-1) and fine.valence[-1] == pytest.approx(1)
    assert np.all(np.diff(fine.valence) > 0)
    part = arc.slice(5.0, 7.5)
    assert len(part) == 5 and part.times[0] == pytest.approx(0.25)
    assert part.valence[0] == pytest.approx(arc.valence[10])
    back = EmotionArc.from_json(arc.to_json())
    np.testing.assert_allclose(back.valence, arc.valence, atol=1e-4)
    np.testing.assert_allclose(back.emotions["joy"], arc.emotions["joy"], atol=1e-4)
