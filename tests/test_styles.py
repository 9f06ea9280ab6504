"""Style presets: every style's pitches stay in its scales; instruments resolve by name or number."""

from __future__ import annotations

import numpy as np
import pytest

from analysis.arc import EmotionArc, grid
from analysis.errors import ParameterError
from composer import compose
from composer.music import styles as styles_module
from composer.music.styles import MOODS, STYLES, Style, get_style, resolve_instrument


def _journey(duration: float) -> EmotionArc:
    t = grid(duration, 0.5)
    return EmotionArc.from_va(t, 0.85 * np.sin(2 * np.pi * t / duration), np.linspace(-0.8, 0.9, t.size))


@pytest.mark.parametrize("name", sorted(STYLES))
def test_pitches_stay_in_the_styles_scales(name: str) -> None:
    style = STYLES[name]
    piece = compose(_journey(36.0), (6.0, 14.5, 25.0), 36.0, style=name, seed=2, source="rules")
    allowed = {style.scale(m) for m in MOODS}
    starts = np.array(piece.chord_times)
    n_checked = 0
    for inst in piece.midi.instruments:
        if inst.is_drum:
            continue
        for n in inst.notes:
            span = piece.plan.chords[int(np.searchsorted(starts, n.start + 1e-9, side="right")) - 1]
            assert span.scale in allowed
            assert n.pitch % 12 in span.scale, (inst.name, n.pitch, span.symbol, span.scale)
            n_checked += 1
    assert n_checked > 50
    assert {c.mood for c in piece.plan.chords} >= {"bright", "tense"}  # the journey visits both ends


@pytest.mark.parametrize("name", sorted(STYLES))
def test_style_instruments_are_used(name: str) -> None:
    style = STYLES[name]
    piece = compose(EmotionArc.constant(16, 0.3, 0.9), (4.0,), 16.0, style=name, source="rules")
    programs = {(p.name, p.program) for p in piece.parts if not p.is_drum}
    assert ("lead", style.lead) in programs
    for layer in ("pad", "arp", "bass"):
        prog = getattr(style, layer)
        if prog is not None:
            assert prog in {p for _, p in programs}
    assert any(p.is_drum for p in piece.parts) == bool(style.drums)


def test_west_african_bell_against_duple_drums() -> None:
    style = get_style("west_african")
    piece = compose(EmotionArc.constant(12, 0.3, 0.5), (), 12.0, style=style, source="rules")
    drums = next(p for p in piece.parts if p.is_drum)
    beat = 60.0 / piece.plan.base_tempo
    bell = np.array([n.start for n in drums.notes if n.pitch == 56])
    # bell strokes fall on triplet subdivisions (thirds of a beat), 7 per 12 steps
    frac = (bell / (beat / 3)) % 1
    assert np.all(np.minimum(frac, 1 - frac) < 0.02)
    assert len(bell) / (piece.duration / (4 * beat)) == pytest.approx(7, abs=0.6)


def test_regional_scales_are_documented_approximations() -> None:
    assert "12-TET" in styles_module.__doc__
    assert get_style("arabic_maqam").scales["tense"] == (0, 1, 4, 5, 7, 8, 10)  # Hijaz
    assert get_style("indian_raga").scales["bright"] == (0, 2, 4, 6, 7, 9, 11)  # Yaman


@pytest.mark.parametrize(
    ("name", "program"),
    [("violin", 40), ("Flute", 73), ("sitar", 104), ("piano", 0), ("guitar", 24), (25, 25), ("127", 127)],
)
def test_resolve_instrument(name, program: int) -> None:
    assert resolve_instrument(name) == program


@pytest.mark.parametrize("bad", ["kazoo-9000", 128, -1, True])
def test_bad_instrument_is_named(bad) -> None:
    with pytest.raises(ParameterError, match="instrument"):
        resolve_instrument(bad)


@pytest.mark.parametrize("blank", ["", "  ", "-", "()"])
def test_a_blank_instrument_is_refused_not_read_as_a_piano(blank) -> None:
    """`--instrument ""` (an empty form field or shell variable) matched every GM name and led with a piano,
    "-" with a Honky-tonk Piano; the page reads an empty choice as the style's own lead, so the library says
    what to give instead of picking one."""
    from analysis.arc import EmotionArc
    from composer import compose

    with pytest.raises(ParameterError, match=r"^`instrument` must name a General MIDI instrument .* leave it out "
                       r"for the style's own lead \(received "):
        resolve_instrument(blank)
    with pytest.raises(ParameterError, match="instrument"):
        compose(EmotionArc.constant(4.0, 0.2, 0.1), duration=4.0, instrument=blank, source="rules")


def test_bad_style_is_named() -> None:
    with pytest.raises(ParameterError, match="polka"):
        get_style("polka")
    assert get_style("Piano Solo") is STYLES["piano_solo"]
    with pytest.raises(ParameterError, match="scales"):
        Style("x", "", {"bright": (0, 2)}, 0, 0, None, None, None, None, None, None)
