"""``compose()``: an emotion arc (and cuts) in, a :class:`~composer.output.piece.Composition` out.

Plan harmony and tempo (:mod:`composer.music.harmony`), ask a note source for the lead line
(:mod:`composer.music.notes`), arrange (:mod:`composer.music.arranger`), and build the MIDI.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pretty_midi

from analysis.arc import EmotionArc
from analysis.errors import MediaError, ParameterError, check_seed, is_number
from composer.music.arranger import arrange
from composer.music.harmony import plan_harmony
from composer.music.midi import check_holds_notes
from composer.music.notes import MaterialRequest, Note, NoteSource
from composer.music.sources import check_source, get_source
from composer.music.styles import Style, get_style, resolve_instrument
from composer.output.piece import Composition, build_midi

SeedMelody = str | Path | pretty_midi.PrettyMIDI | Sequence[Note]
log = logging.getLogger(__name__)

#: With ``source="auto"``, a learned melody that sounds for less than this share of the piece is
#: replaced by the rule source's: a cue whose lead is silent most of the time has no tune to follow.
MIN_LEAD_SHARE = 0.5


def lead_share(melody: Sequence[Note], duration: float) -> float:
    """The share of ``duration`` during which some note of ``melody`` sounds."""
    spans = sorted((max(0.0, n.start), min(duration, n.end)) for n in melody if n.end > n.start)
    covered, reach = 0.0, 0.0
    for a, b in spans:
        a = max(a, reach)
        if b > a:
            covered, reach = covered + b - a, b
    return covered / duration if duration > 0 else 0.0


#: ... or that leaves more than this many bars (of the plan's beats, four to a bar) without a new note: a
#: calm West African cue of 50 s had ten lead notes and six bars without one, heard as a lead gone missing.
MAX_LEAD_GAP_BARS = 4.0
#: The longest piece :func:`compose` writes, in seconds.
MAX_DURATION = 3600.0


def longest_lead_gap(melody: Sequence[Note], beats: np.ndarray, duration: float) -> float:
    """The longest stretch of the piece without a note onset in ``melody``, in bars of the plan's ``beats``
    (from the start to the first onset and from the last onset to the end count as well)."""
    b = np.asarray(beats, float)
    if b.size < 2:
        return 0.0
    times = np.array([0.0, *sorted(n.start for n in melody if 0.0 <= n.start < duration), duration])
    beat_of = np.interp(times, b, np.arange(b.size), left=0.0, right=b.size - 1 + (duration - b[-1]) / (b[-1] - b[-2]))
    return float(np.max(np.diff(beat_of))) / 4.0


def load_seed_melody(seed: SeedMelody) -> tuple[Note, ...]:
    """A seed melody as notes in *beats* from its first onset (at most 16 notes, top voice).

    Accepts a MIDI path, a PrettyMIDI, or :class:`Note` objects in seconds at 120 bpm.
    """
    if isinstance(seed, str | os.PathLike):
        path = Path(seed)
        if path.is_dir():
            raise MediaError(path, "is a folder, not a seed melody MIDI file")
        if not path.is_file():
            raise MediaError(path, "seed melody file not found")
        try:
            pm = pretty_midi.PrettyMIDI(str(path))
        except Exception as err:  # mido/pretty_midi raise many types on a corrupt file
            raise MediaError(path, f"not a readable MIDI file ({type(err).__name__})") from None
        if not any(inst.notes for inst in pm.instruments if not inst.is_drum):
            raise MediaError(path, "holds no pitched notes to develop as a seed melody")
        seed = pm
    if isinstance(seed, pretty_midi.PrettyMIDI):
        _, bpms = seed.get_tempo_changes()
        beat = 60.0 / float(bpms[0]) if len(bpms) else 0.5
        raw = [n for inst in seed.instruments if not inst.is_drum for n in inst.notes]
        notes = [Note(n.start, n.end, n.pitch, n.velocity) for n in raw]
    else:
        beat = 0.5
        # an int here was Python's "'int' object is not iterable"; a list of numbers its AttributeError
        fields = ("start", "end", "pitch", "velocity")
        if isinstance(seed, str | bytes) or not isinstance(seed, Iterable):
            raise ParameterError(f"`seed_melody` must be a MIDI file path, a PrettyMIDI or notes (received {seed!r})")
        notes = list(seed)
        if not all(all(hasattr(n, f) for f in fields) for n in notes):
            raise ParameterError("`seed_melody` notes must each have a start, end, pitch and velocity "
                                 f"(received {notes[:3]!r})")
    if not notes:
        raise ParameterError("`seed_melody` has no pitched notes")
    # keep the top voice: the highest note of each onset
    by_onset: dict[float, Note] = {}
    for n in notes:
        key = round(n.start, 3)
        if key not in by_onset or n.pitch > by_onset[key].pitch:
            by_onset[key] = n
    top = sorted(by_onset.values(), key=lambda n: n.start)[:16]
    t0 = top[0].start
    return tuple(Note((n.start - t0) / beat, (n.end - t0) / beat, n.pitch, n.velocity) for n in top)


def check_clip_length(clip: Path, advice: str) -> None:
    """A :class:`ParameterError` when ``clip`` runs longer than a composed piece may (:data:`MAX_DURATION`),
    said from a probe before its analysis (minutes and gigabytes for a two-hour film) rather than after it;
    ``advice`` says what the caller can do instead. A clip the probe cannot read is left to the analysis,
    which names its problem."""
    from analysis.media.probe import media_duration

    try:
        seconds = media_duration(clip)
    except MediaError:
        return
    if seconds > MAX_DURATION:
        raise ParameterError(f"{clip} runs {seconds:.0f} s and a composed score is at most {MAX_DURATION:.0f} s "
                             f"(one hour): {advice}")


def check_choices(style: str | Style, instrument: str | int | None, source: str | NoteSource = "auto") -> None:
    """A :class:`ParameterError` for an unknown ``style``, ``instrument`` or ``source`` name, said at once:
    callers that analyse a clip first check these before the analysis, not minutes after it."""
    get_style(style)
    if instrument is not None:
        resolve_instrument(instrument)
    check_source(source)


def compose(
    arc: EmotionArc,
    cuts: Sequence[float] = (),
    duration: float | None = None,
    *,
    style: str | Style = "cinematic",
    instrument: str | int | None = None,
    seed: int = 0,
    tempo: float | None = None,
    energy: float | None = None,
    seed_melody: SeedMelody | None = None,
    source: str | NoteSource = "auto",
) -> Composition:
    """Compose music that follows ``arc`` with a chord change on every cut.

    ``cuts`` are seconds, none negative (a :class:`ParameterError`); cuts within 0.3 s of either end, or
    past it, are left out. ``duration`` defaults to the arc's; ``instrument`` (GM name or number, default the
    style's lead) plays the lead line; ``energy`` in [-1, 1] shifts arousal for tempo
    and texture; ``tempo`` (bpm) replaces the derived base tempo; ``seed_melody`` (MIDI
    path, PrettyMIDI or notes) is developed through the piece; ``source`` picks the
    note source (``"auto"``: the learned model when available, else rules, and rules too where the
    model's melody would sound for less than half the piece or rest more than four bars; or a
    :class:`~composer.music.notes.NoteSource` instance).
    """
    if not isinstance(arc, EmotionArc):
        raise ParameterError(f"`arc` must be an EmotionArc (received {type(arc).__name__})")
    if len(arc) == 0:
        raise ParameterError("`arc` is empty (received an arc with no time steps)")
    if duration is not None and not is_number(duration):
        raise ParameterError(f"`duration` must be a number of seconds (received {duration!r})")
    if duration is None and len(arc) < 2:  # its duration is 0: "`duration` must be positive (received 0.0)"
        raise ParameterError("a one-point arc has no length of its own: give `duration`")
    dur = float(arc.duration if duration is None else duration)
    if not np.isfinite(dur) or dur <= 0:
        raise ParameterError(f"`duration` must be positive (received {dur if duration is None else duration})")
    if dur > MAX_DURATION and duration is None:  # "(received 10799.949999999999 s)", of a duration never given
        raise ParameterError(f"the arc runs {dur:.0f} s and a composed piece is at most {MAX_DURATION:.0f} s (one "
                             "hour): give `duration` to compose its start")
    if dur > MAX_DURATION:
        raise ParameterError(f"`duration` must be at most {MAX_DURATION:.0f} s, one hour (received {dur:g} s)")
    seed = check_seed(seed)
    sty = get_style(style)
    program = sty.lead if instrument is None else resolve_instrument(instrument)
    plan = plan_harmony(arc, cuts, dur, style=sty, seed=seed, tempo=tempo, energy=energy)
    motif = load_seed_melody(seed_melody) if seed_melody is not None else ()
    request = MaterialRequest(
        arc=arc,
        duration=dur,
        cuts=plan.cuts,
        beats=plan.beats,
        downbeats=plan.downbeats,
        chords=plan.chords,
        tonic=plan.tonic,
        seed=seed,
        seed_melody=motif,
    )
    note_source = get_source(source)
    material = note_source.generate(request)
    share, gap = lead_share(material.melody, dur), longest_lead_gap(material.melody, plan.beats, dur)
    if source == "auto" and material.source != "rules" and (share < MIN_LEAD_SHARE or gap > MAX_LEAD_GAP_BARS):
        # The model wrote almost no melody for this plan (West African calm plans, whose quartal chords
        # it seldom saw: 2 of 24 empty, 12 of 24 with two notes or fewer): the rule source writes one.
        log.info("the model's melody sounds for %.0f %% of the piece and rests %.1f bars at most; the rule "
                 "source's is used", 100 * share, gap)
        material = get_source("rules").generate(request)
    parts = arrange(plan, material, arc=arc, style=sty, lead_program=program, energy=energy, seed=seed)
    check_holds_notes(sum(len(part.notes) for part in parts), dur, plan.base_tempo)
    return Composition(
        midi=build_midi(parts, plan),
        chord_times=plan.chord_times,
        chords=tuple(c.symbol for c in plan.chords),
        tempo_map=plan.tempo_map,
        style=sty.name,
        instrument=program,
        plan=plan,
        parts=parts,
        duration=dur,
        source=material.source,
    )
