"""MIDI to audio, in one place: the SoundFont lookup, the FluidSynth setup, and rendering of parts.

Everything that turns notes into sound (the composer's WAVs and stems, fitting a MIDI
library track to a clip, the demo library and the audio estimator's calibration) renders
here, so they all sound alike. Each render gets a fresh FluidSynth that loads only the
samples it plays (see :func:`synthesizer`), so the same notes always give the same samples.

A *part* is anything with ``program``, ``is_drum`` and ``notes`` (each note with ``start``
and ``end`` in seconds, ``pitch``, ``velocity``): a ``pretty_midi.Instrument`` or the
composer's ``Part``. A part's ``pitch_bends`` and ``control_changes`` (pretty_midi's) are
played too when present. Each part gets its own MIDI channel (drums on the GM drum
channels, 9 + 16 k), so all parts sound together in one synthesizer pass.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from analysis.errors import MediaError, ModelError, ParameterError

#: The General MIDI SoundFont every render uses unless told otherwise (Debian fluid-soundfont-gm).
SOUNDFONT = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")
#: FluidSynth's MIDI channels (its ``synth.midi-channels`` default).
CHANNELS = 256
#: Threads FluidSynth renders voices on (``synth.cpu-cores``): a minute of the composer's
#: orchestra takes 1.3 s on two instead of 2.1 s on one, to the same samples (within 1e-12).
CPU_CORES = max(1, min(4, os.cpu_count() or 1))

# Event order at one sample: note-offs first, then controllers and bends, then note-ons.
_OFF, _CONTROL, _BEND, _ON = 0, 1, 2, 3


class NoteLike(Protocol):
    start: float
    end: float
    pitch: int
    velocity: int


class PartLike(Protocol):
    program: int
    is_drum: bool
    notes: Sequence[NoteLike]


#: Environment variable naming the SoundFont to use instead of :data:`SOUNDFONT` (any General MIDI .sf2),
#: for machines without Debian's fluid-soundfont-gm: the CLI and the page have no option for it.
SOUNDFONT_ENV = "SOUNDTRACK_SOUNDFONT"


def soundfont_path(soundfont: str | Path | None = None) -> Path:
    """``soundfont``, else ``$SOUNDTRACK_SOUNDFONT``, else :data:`SOUNDFONT`, as an existing file, else a
    :class:`MediaError` that says how to get one."""
    path = Path(soundfont or os.environ.get(SOUNDFONT_ENV) or SOUNDFONT)
    if not path.is_file():
        raise MediaError(path, f"SoundFont not found: install Debian's fluid-soundfont-gm, or name a General "
                               f"MIDI .sf2 file in ${SOUNDFONT_ENV} (or the API's `soundfont=`)")
    return path


def fluidsynth_module() -> Any:
    """The ``fluidsynth`` module (pyfluidsynth), or one :class:`ModelError` sentence when it is missing."""
    try:
        import fluidsynth
    except (ImportError, OSError) as err:  # pyfluidsynth or libfluidsynth missing
        raise ModelError(f"FluidSynth is not available ({err}): install Debian's fluidsynth, or write MIDI and "
                         "MusicXML alone (--no-audio)") from None
    return fluidsynth


def synthesizer(soundfont: str | Path | None = None, fs: int = 44100) -> tuple[Any, int]:
    """A new ``(fluidsynth.Synth, soundfont id)`` at ``fs`` Hz; the caller deletes it.

    Samples load on demand (``synth.dynamic-sample-loading``): only the presets a render
    selects are read, so a synthesizer is ready in about 0.1 s instead of the 0.5 s a full
    FluidR3_GM load takes. A fresh one per render rather than one kept per process: a reused
    FluidSynth carries voice state from one render into the next (two renders of one MIDI
    then differ, by up to 0.03 in the audio estimator's valence), a fresh one renders the
    same notes to the same samples.
    """
    path = soundfont_path(soundfont)
    fluidsynth = fluidsynth_module()
    settings = {"synth.dynamic-sample-loading": 1, "synth.cpu-cores": CPU_CORES}
    synth = fluidsynth.Synth(samplerate=float(fs), channels=CHANNELS, **settings)
    sfid = synth.sfload(str(path))
    if sfid < 0:
        synth.delete()
        raise MediaError(path, "FluidSynth could not load this SoundFont")
    return synth, sfid


def _channels(parts: Sequence[PartLike]) -> list[list[tuple[int, PartLike]]]:
    """Groups of ``(channel, part)`` with one channel per part; a new group when channels run out."""
    drum = [c for c in range(CHANNELS) if c % 16 == 9]
    melodic = [c for c in range(CHANNELS) if c % 16 != 9]
    groups: list[list[tuple[int, PartLike]]] = [[]]
    used = {"drum": 0, "melodic": 0}
    for part in parts:
        kind, pool = ("drum", drum) if part.is_drum else ("melodic", melodic)
        if used[kind] == len(pool):
            groups.append([])
            used = {"drum": 0, "melodic": 0}
        groups[-1].append((pool[used[kind]], part))
        used[kind] += 1
    return groups


def _events(group: list[tuple[int, PartLike]], fs: int, n_total: int) -> list[tuple[int, int, int, int, int]]:
    """``(sample, order, channel, a, b)`` of every note, controller and bend before ``n_total``, sorted."""
    events: list[tuple[int, int, int, int, int]] = []
    for c, part in group:
        for n in part.notes:
            on = round(n.start * fs)
            if on >= n_total:
                continue
            events.append((on, _ON, c, int(n.pitch), int(n.velocity)))
            events.append((min(round(n.end * fs), n_total), _OFF, c, int(n.pitch), 0))
        for cc in getattr(part, "control_changes", ()):
            events.append((round(cc.time * fs), _CONTROL, c, int(cc.number), int(cc.value)))
        for bend in getattr(part, "pitch_bends", ()):
            events.append((round(bend.time * fs), _BEND, c, int(bend.pitch), 0))
    return sorted(e for e in events if e[0] < n_total or e[1] == _OFF)


@functools.cache
def _write_float() -> Any:
    """libfluidsynth's ``fluid_synth_write_float`` (pyfluidsynth wraps only the 16-bit writer)."""
    import ctypes

    fn = getattr(getattr(fluidsynth_module(), "_fl", None), "fluid_synth_write_float", None)
    if fn is None:
        raise ModelError("this pyfluidsynth exposes no libfluidsynth handle (`fluidsynth._fl`) to render floats")
    c_int, c_ptr = ctypes.c_int, ctypes.c_void_p
    fn.argtypes = [c_ptr, c_int, c_ptr, c_int, c_int, c_ptr, c_int, c_int]
    fn.restype = c_int
    return fn


def _write(synth: Any, out: np.ndarray, start: int, stop: int) -> None:
    """Render ``out[start:stop]`` (float32, C-contiguous ``(n, 2)``) in place.

    FluidSynth's float output: its 16-bit output (``get_samples``) dithers with a state
    that carries over between renders, so the same notes would not give the same samples.
    """
    n = stop - start
    if n <= 0:
        return
    base = out.ctypes.data + start * out.strides[0]
    rc = _write_float()(synth.synth, n, base, 0, 2, base + out.itemsize, 0, 2)
    if rc != 0:
        raise ModelError(f"FluidSynth failed to render {n} samples (status {rc})")


def _play(synth: Any, sfid: int, group: list[tuple[int, PartLike]], fs: int, n_total: int) -> np.ndarray:
    for c, part in group:
        if part.is_drum and synth.program_select(c, sfid, 128, int(part.program)) == -1:
            synth.program_select(c, sfid, 128, 0)  # no drum kit under this number: the standard kit
        elif not part.is_drum:
            synth.program_select(c, sfid, 0, int(part.program))
    out = np.zeros((n_total, 2), np.float32)
    pos = 0
    for sample, order, c, a, b in _events(group, fs, n_total):
        if sample > pos:
            _write(synth, out, pos, sample)
            pos = sample
        if order == _ON:
            synth.noteon(c, a, b)
        elif order == _OFF:
            synth.noteoff(c, a)
        elif order == _CONTROL:
            synth.cc(c, a, b)
        else:
            synth.pitch_bend(c, a)
    _write(synth, out, pos, n_total)
    return out


def end_time(parts: Sequence[PartLike]) -> float:
    """Seconds until the last note of ``parts`` ends (0.0 without notes)."""
    return max((float(n.end) for p in parts for n in p.notes), default=0.0)


def render(
    parts: Sequence[PartLike],
    duration: float | None = None,
    *,
    fs: int = 44100,
    soundfont: str | Path | None = None,
    tail: float = 1.0,
) -> np.ndarray:
    """Stereo float32 audio ``(samples, 2)`` of ``parts`` at FluidSynth's own level (full scale 1.0).

    The result lasts ``duration`` seconds exactly (notes past it are cut), or by default
    until the last note ends plus ``tail`` seconds of release (no samples at all when
    there is no note). Not normalised: the level
    follows velocity and polyphony, which the audio estimator's calibration relies on.
    """
    if fs < 1000:
        raise ParameterError(f"`fs` must be at least 1000 Hz (received {fs})")
    if duration is None:
        length = end_time(parts) + tail if any(len(p.notes) for p in parts) else 0.0
    else:
        length = float(duration)
    if not np.isfinite(length) or length < 0:
        raise ParameterError(f"`duration` must be a non-negative number of seconds (received {duration})")
    n_total = round(length * fs)
    soundfont_path(soundfont)  # a missing SoundFont is an error even with nothing to play
    audio = None  # the first group's render itself (a zero buffer beside it was 1.3 GB more for an hour)
    for group in _channels(parts):
        if group:
            synth, sfid = synthesizer(soundfont, fs)
            try:
                played = _play(synth, sfid, group, fs, n_total)
            finally:
                synth.delete()
            if audio is None:
                audio = played
            else:
                audio += played
    return np.zeros((n_total, 2), np.float32) if audio is None else audio


def render_mono(
    parts: Sequence[PartLike],
    duration: float | None = None,
    *,
    fs: int = 44100,
    soundfont: str | Path | None = None,
    tail: float = 1.0,
) -> np.ndarray:
    """:func:`render` mixed down to mono ``(samples,)`` (the mean of left and right)."""
    return render(parts, duration, fs=fs, soundfont=soundfont, tail=tail).mean(axis=1)
