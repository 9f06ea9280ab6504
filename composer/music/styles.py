"""Style presets: scales, instruments and rhythm patterns, one frozen dataclass each.

A style says *which* scales the harmony may draw from (by mood: ``bright`` for positive
valence, ``dark`` for negative, ``tense`` where valence falls or is very low), which
General MIDI programs play each layer, and the rhythm patterns of arpeggios, ostinati
and percussion. The harmony planner and the arranger read nothing else, so a new
style is one more entry in :data:`STYLES`.

Scales are pitch classes relative to the tonic (0). Regional colours are 12-TET
approximations: Arabic maqamat use quarter tones (Rast's third and seventh, Bayati's
second sit a quarter tone flat) that General MIDI cannot play without pitch bends, so
they are rounded to the nearest semitone; raga scales are the thaat pitch sets and
leave out the ornaments (meend, gamaka) that characterise a raga in performance.
"""

from __future__ import annotations

import numbers
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import pretty_midi

from analysis.errors import ParameterError

MOODS: tuple[str, ...] = ("bright", "dark", "tense")


@dataclass(frozen=True)
class DrumPattern:
    """One GM percussion voice: ``hits`` are step indices in a cycle of ``steps`` steps
    spanning ``cycle_beats`` beats; it plays only where local arousal >= ``level``."""

    note: int
    hits: tuple[int, ...]
    steps: int = 16
    cycle_beats: float = 4.0
    level: float = 0.3
    velocity: int = 90


@dataclass(frozen=True)
class Style:
    """A documented preset.

    ``scales`` maps each mood of :data:`MOODS` to pitch classes relative to the tonic.
    Programs are General MIDI numbers (0-127); ``None`` leaves a layer out. ``drone``
    makes the pad hold tonic and fifth instead of the chord (raga, Celtic harmonium).
    ``arp`` indexes the ascending chord tones per arpeggio step (``arp_rate`` steps
    per beat); ``ostinato`` lists onsets in sixteenths of a bar. ``texture_bias`` is
    added to arousal when choosing texture (negative keeps a style sparse);
    ``tempo_scale`` multiplies the tempo the planner derives from the arc. ``minor_cuts``: a cut in
    a dark span moves to a minor chord (i -> iv, v) rather than to one keeping no tone (i -> VII),
    for styles whose slow chords each fill a key-reading window (ambient).
    """

    name: str
    description: str
    scales: Mapping[str, tuple[int, ...]]
    tonic: int
    lead: int
    pad: int | None
    arp: int | None
    bass: int | None
    counter: int | None
    ostinato: int | None
    brass: int | None
    drums: tuple[DrumPattern, ...] = ()
    drone: bool = False
    arp_pattern: tuple[int, ...] = (0, 1, 2, 3, 2, 1)
    arp_rate: int = 2
    ostinato_steps: tuple[int, ...] = (0, 2, 3, 4, 6, 8, 10, 11, 12, 14)
    texture_bias: float = 0.0
    tempo_scale: float = 1.0
    minor_cuts: bool = False
    extra: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if set(self.scales) != set(MOODS):
            raise ParameterError(f"style {self.name!r} must give scales for {list(MOODS)} (got {sorted(self.scales)})")
        for mood, sc in self.scales.items():
            if 0 not in sc or any(not 0 <= p < 12 for p in sc) or len(set(sc)) != len(sc):
                raise ParameterError(f"style {self.name!r} scale {mood!r} must hold 0 and distinct classes 0..11")
        object.__setattr__(self, "scales", MappingProxyType({k: tuple(sorted(v)) for k, v in self.scales.items()}))

    def scale(self, mood: str, tonic: int | None = None) -> tuple[int, ...]:
        """Absolute pitch classes of the ``mood`` scale on ``tonic`` (the style's by default)."""
        t = self.tonic if tonic is None else tonic
        return tuple(sorted((p + t) % 12 for p in self.scales[mood]))


IONIAN = (0, 2, 4, 5, 7, 9, 11)
AEOLIAN = (0, 2, 3, 5, 7, 8, 10)
HARMONIC_MINOR = (0, 2, 3, 5, 7, 8, 11)
DORIAN = (0, 2, 3, 5, 7, 9, 10)
MIXOLYDIAN = (0, 2, 4, 5, 7, 9, 10)
LYDIAN = (0, 2, 4, 6, 7, 9, 11)
PHRYGIAN = (0, 1, 3, 5, 7, 8, 10)

_ROCK = (
    DrumPattern(36, (0, 8), level=0.35, velocity=96),  # kick on 1 and 3
    DrumPattern(38, (4, 12), level=0.45, velocity=88),  # snare on 2 and 4
    DrumPattern(42, (0, 2, 4, 6, 8, 10, 12, 14), level=0.55, velocity=64),  # closed hat eighths
)

STYLES: Mapping[str, Style] = MappingProxyType(
    {
        s.name: s
        for s in (
            Style(
                name="cinematic",
                description="Orchestral film score: strings, horn, harp; major/minor with harmonic-minor tension.",
                scales={"bright": IONIAN, "dark": AEOLIAN, "tense": HARMONIC_MINOR},
                tonic=2,  # D
                lead=60,  # French horn
                pad=48,  # string ensemble
                arp=46,  # harp
                bass=43,  # contrabass
                counter=42,  # cello
                ostinato=45,  # pizzicato strings
                brass=61,  # brass section
                drums=(
                    DrumPattern(35, (0, 6, 8), level=0.35, velocity=100),  # low kick, taiko-like
                    DrumPattern(45, (4, 12), level=0.45, velocity=90),  # low tom
                    DrumPattern(42, (0, 2, 4, 6, 8, 10, 12, 14), level=0.6, velocity=58),
                ),
            ),
            Style(
                name="ambient",
                description="Slow pads and bells: lydian/aeolian/phrygian colours, no drums, stays sparse.",
                scales={"bright": LYDIAN, "dark": AEOLIAN, "tense": PHRYGIAN},
                tonic=4,  # E
                lead=75,  # pan flute
                pad=89,  # warm pad
                arp=8,  # celesta
                bass=38,  # synth bass
                counter=92,  # bowed pad
                ostinato=None,
                brass=None,
                arp_pattern=(0, 2, 1, 3),
                arp_rate=1,
                texture_bias=-0.35,
                tempo_scale=0.8,
                minor_cuts=True,
            ),
            Style(
                name="piano_solo",
                description="One piano: melody over left-hand arpeggios and bass; major/minor.",
                scales={"bright": IONIAN, "dark": AEOLIAN, "tense": HARMONIC_MINOR},
                tonic=0,  # C
                lead=0,
                pad=None,
                arp=0,
                bass=0,
                counter=None,
                ostinato=None,
                brass=None,
                arp_pattern=(0, 2, 1, 2),
            ),
            Style(
                name="indian_raga",
                description="Raga colours (thaat pitch sets): Yaman bright, Bhairavi dark, Todi tense; "
                "sitar lead over a tonic-fifth drone and tabla-like bongos/congas in teentaal accents.",
                scales={"bright": LYDIAN, "dark": PHRYGIAN, "tense": (0, 1, 3, 6, 7, 8, 11)},
                tonic=1,  # C#, a common sitar Sa
                lead=104,  # sitar
                pad=48,  # strings as tanpura drone
                arp=107,  # koto, plucked
                bass=None,
                counter=110,  # fiddle, sarangi-like
                ostinato=None,
                brass=None,
                drone=True,
                arp_pattern=(0, 1, 2, 1),
                drums=(
                    DrumPattern(60, (0, 3, 4, 7, 8, 11, 12), level=0.2, velocity=84),  # hi bongo: dha dhin dhin dha
                    DrumPattern(61, (0, 4, 12), level=0.3, velocity=92),  # low bongo on sam and khali
                    DrumPattern(63, (2, 6, 10, 14), level=0.55, velocity=70),
                ),
                extra={"scales": "bright=Yaman (Kalyan thaat), dark=Bhairavi, tense=Todi"},
            ),
            Style(
                name="arabic_maqam",
                description="Maqam-like 12-TET approximations: Rast bright, Bayati dark, Hijaz tense; "
                "ney-like flute and oud-like guitar over a maqsum rhythm on congas.",
                scales={"bright": (0, 2, 4, 5, 7, 9, 10), "dark": PHRYGIAN, "tense": (0, 1, 4, 5, 7, 8, 10)},
                tonic=2,  # D, common for Rast/Bayati/Hijaz on D
                lead=73,  # flute (ney)
                pad=49,  # slow strings
                arp=24,  # nylon guitar (oud)
                bass=32,
                counter=41,  # viola
                ostinato=None,
                brass=None,
                arp_pattern=(0, 1, 0, 2),
                drums=(
                    DrumPattern(64, (0, 10), level=0.2, velocity=96),  # dum (low conga)
                    DrumPattern(62, (2, 6, 12), level=0.25, velocity=80),  # tak (muted hi conga)
                    DrumPattern(54, (4, 8, 14), level=0.5, velocity=60),  # tambourine (riq)
                ),
                extra={"approximation": "Rast 3rd/7th and Bayati 2nd are quarter-tone flat in practice"},
            ),
            Style(
                name="west_african",
                description="Pentatonic kalimba and marimba over a 12/8 bell pattern against duple drums "
                "(3:2 polyrhythm).",
                scales={"bright": (0, 2, 4, 7, 9), "dark": (0, 3, 5, 7, 10), "tense": (0, 3, 5, 6, 7, 10)},
                tonic=7,  # G
                lead=108,  # kalimba
                pad=None,
                arp=12,  # marimba
                bass=32,
                counter=13,  # xylophone
                ostinato=12,
                brass=None,
                # a bar of 12 steps whose beats (0, 3, 6, 9) sound every chord tone: calm, only the beats
                # play, and (0, 1, 2, 1, 0, 2) gave them the two lowest tones, a minor tonic's fifth and root
                arp_pattern=(0, 1, 2, 1, 0, 2, 2, 1, 0, 1, 2, 0),
                arp_rate=3,
                ostinato_steps=(0, 3, 6, 8, 11, 14),
                drums=(
                    DrumPattern(56, (0, 2, 4, 5, 7, 9, 11), steps=12, level=0.0, velocity=80),  # standard bell
                    DrumPattern(64, (0, 3, 6, 9), steps=12, level=0.2, velocity=90),  # low conga in four
                    DrumPattern(63, (0, 4, 8), steps=12, level=0.35, velocity=76),  # open conga in three
                    DrumPattern(70, tuple(range(12)), steps=12, level=0.55, velocity=50),  # maracas
                ),
            ),
            Style(
                name="celtic",
                description="Fiddle, wooden flute and harp in mixolydian/dorian/aeolian over a harmonium "
                "drone and a bodhran-like jig pulse.",
                scales={"bright": MIXOLYDIAN, "dark": DORIAN, "tense": AEOLIAN},
                tonic=2,  # D
                lead=110,  # fiddle
                pad=20,  # harmonium (reed organ) drone: a bagpipe patch plays only above G4, over the fiddle
                arp=46,  # harp
                bass=None,
                counter=73,  # wooden flute: a tin whistle (C5 up) cannot go under the fiddle
                ostinato=None,
                brass=None,
                drone=True,
                arp_pattern=(0, 1, 2, 3, 2, 1),
                arp_rate=3,
                drums=(
                    DrumPattern(41, (0, 3, 6, 9), steps=12, level=0.25, velocity=90),  # low floor tom (bodhran)
                    DrumPattern(45, (2, 5, 8, 11), steps=12, level=0.45, velocity=70),
                ),
            ),
        )
    }
)


def get_style(style: str | Style) -> Style:
    """The preset named ``style`` (or ``style`` itself when already a :class:`Style`)."""
    if isinstance(style, Style):
        return style
    key = str(style).strip().lower().replace("-", "_").replace(" ", "_")
    if key not in STYLES:
        raise ParameterError(f"`style` must be one of {sorted(STYLES)} (received {style!r})")
    return STYLES[key]


def resolve_instrument(instrument: str | int) -> int:
    """A General MIDI program (0-127) from a number or a name.

    Names match the GM list case-insensitively: the exact name ("Violin", "Acoustic
    Grand Piano"), else the lowest program whose name contains the word ("piano" ->
    0, "guitar" -> 24, "sitar" -> 104).
    """
    if isinstance(instrument, bool):
        raise ParameterError(f"`instrument` must be a GM program or name (received {instrument!r})")
    if isinstance(instrument, numbers.Integral) or (isinstance(instrument, str) and instrument.strip().isdigit()):
        prog = int(instrument)
        if not 0 <= prog <= 127:
            raise ParameterError(f"`instrument` program must be within 0 and 127 (received {prog})")
        return prog
    query = str(instrument).strip().lower()
    if not any(ch.isalnum() for ch in query):  # "" matched every name (a piano) and "-" Honky-tonk Piano
        raise ParameterError(f"`instrument` must name a General MIDI instrument (violin, sitar) or program 0-127; "
                             f"leave it out for the style's own lead (received {instrument!r})")
    names = [pretty_midi.program_to_instrument_name(p).lower() for p in range(128)]
    if query in names:
        return names.index(query)
    pattern = re.compile(rf"\b{re.escape(query)}\b")
    hits = [p for p, n in enumerate(names) if pattern.search(n)]
    if not hits:
        hits = [p for p, n in enumerate(names) if query and query in n]
    if not hits:
        raise ParameterError(f"`instrument` is not a General MIDI program name or number (received {instrument!r})")
    return hits[0]
