"""Fit a ranked track to a clip: cut its section, time-stretch it to end with the clip, mux.

``stretch`` follows :class:`matching.ranking.ranker.Match`: clip duration / section duration, so
the section taken from the track lasts ``duration / stretch`` seconds and is played at
``librosa.effects.time_stretch`` rate ``1 / stretch``. The factor is clamped to
``[1 / max_stretch, max_stretch]``; if the track ends early, the rest is silence (the
fade-out still lands at the clip's end). The fitted audio is brought to one loudness,
:data:`analysis.media.loudness.TARGET_LUFS` (EBU R128), like composed pieces. MIDI tracks are rendered first by the one
renderer, :mod:`analysis.media.synth`. Muxing is :func:`analysis.media.mux.mux`: the video
stream is copied, never re-encoded.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from analysis.errors import MediaError, ParameterError, as_path, is_number, output_file
from analysis.jit import load_librosa
from analysis.media.dialogue import UNDER_DB, DialogueMix, check_clip_sound, check_duck_db, mux_soundtrack
from analysis.media.loudness import TARGET_LUFS, normalize_loudness
from analysis.media.mux import check_mux
from analysis.music.formats import MIDI_SUFFIXES
from analysis.music.track import load_audio


@dataclass(frozen=True)
class FitResult:
    """What :func:`fit_track` / :func:`fit_to_clip` wrote."""

    wav: Path
    #: The clip muxed with the fitted audio (None when no clip was given).
    video: Path | None
    duration: float
    start: float
    #: The stretch actually applied (clip / section duration) after clamping.
    stretch: float
    pitch_shift: float
    #: What became of the clip's own sound (:mod:`analysis.media.dialogue`); None without a clip.
    clip_sound: DialogueMix | None = None


def load_track_audio(path: Path, *, sr: int, until: float | None = None) -> np.ndarray:
    """``(channels, samples)`` float32 audio of a track (one or two channels); MIDI is rendered (mono,
    peak 0.8), only up to ``until`` seconds when given (a preview of a MIDI file of hours renders seconds).
    Read as the analysis reads it (:func:`analysis.music.track.load_audio`, keeping the
    channels), so a damaged packet that the analysis skipped is skipped here too, its time kept as
    silence, and the fitted section starts where the arc said."""
    if not path.is_file():
        raise MediaError(path, "is not a file")
    if path.suffix.lower() in MIDI_SUFFIXES:
        import pretty_midi

        try:
            pm = pretty_midi.PrettyMIDI(str(path))
        except (OSError, ValueError, EOFError, KeyError, IndexError) as err:
            raise MediaError(path, f"cannot be read as MIDI ({err})") from None
        from analysis.media.synth import end_time, render_mono

        whole = end_time(pm.instruments) + 1.0  # render's own length: the last note and its release
        audio = render_mono(pm.instruments, until if until is not None and until < whole else None, fs=sr)
        peak = float(np.abs(audio).max()) if audio.size else 0.0
        return (audio / peak * 0.8 if peak > 0 else audio).astype(np.float32)[None, :]
    return load_audio(path, sr=sr, mono=False)


def _check_section(start: object, stretch: object, max_stretch: object) -> None:
    """A :class:`ParameterError` naming ``start``, ``stretch`` or ``max_stretch`` when it is no finite number in
    range: NaN passed the ``< 0`` checks and reached NumPy's "cannot convert float NaN to integer"."""
    if not (is_number(start) and 0 <= start < math.inf):
        raise ParameterError(f"`start` must not be negative (received {start!r})" if is_number(start) and start < 0
                             else f"`start` must be finite seconds, 0 or more (received {start!r})")
    if not (is_number(stretch) and 0 < stretch < math.inf and is_number(max_stretch) and 1 <= max_stretch < math.inf):
        raise ParameterError("`stretch` must be positive and `max_stretch` >= 1, both finite "
                             f"(received {stretch!r}, {max_stretch!r})")


def fit_track(
    track: str | Path,
    out_wav: str | Path,
    *,
    start: float,
    duration: float,
    stretch: float = 1.0,
    max_stretch: float = 1.25,
    pitch_shift: float = 0.0,
    fade_in: float = 0.05,
    fade_out: float = 0.5,
    sr: int = 44100,
    target_lufs: float | None = TARGET_LUFS,
) -> FitResult:
    """Write ``duration`` seconds of ``track`` from ``start``, time-stretched by ``stretch``.

    ``target_lufs``: integrated loudness of the written audio (None: the track's own level).
    """
    if not (is_number(duration) and 0 < duration < math.inf):
        raise ParameterError(f"`duration` must be positive, finite seconds (received {duration!r})")
    _check_section(start, stretch, max_stretch)
    track, out_path = as_path(track, "track"), output_file(out_wav, "out_wav")  # a folder there: soundfile's TypeError
    import soundfile as sf

    if out_path.suffix[1:].upper() not in sf.available_formats():  # found out only after the stretch before
        raise ParameterError(f"`out_wav` must name an audio file soundfile writes, such as .wav or .flac "
                             f"(received {str(out_path)!r})")

    librosa = load_librosa()

    applied = float(min(max(stretch, 1.0 / max_stretch), max_stretch))
    a = round(start * sr)
    b = a + int(np.ceil(duration / applied * sr)) + int(0.1 * sr)  # a little spare for the stretcher's edges
    y = load_track_audio(track, sr=sr, until=b / sr)
    section = y[:, a:b]
    if section.shape[1] == 0:
        raise ParameterError(f"`start` {start} s is past the end of {track} ({y.shape[1] / sr:.2f} s)")
    if abs(applied - 1.0) > 1e-6:
        section = librosa.effects.time_stretch(section, rate=1.0 / applied)
    if pitch_shift:
        section = librosa.effects.pitch_shift(section, sr=sr, n_steps=float(pitch_shift))
    n = round(duration * sr)
    out = np.zeros((y.shape[0], n), dtype=np.float32)
    take = min(n, section.shape[1])
    out[:, :take] = section[:, :take]
    fi, fo = min(n, int(fade_in * sr)), min(n, int(fade_out * sr))
    if fi:
        out[:, :fi] *= np.linspace(0.0, 1.0, fi, dtype=np.float32)
    if fo:
        out[:, n - fo :] *= np.linspace(1.0, 0.0, fo, dtype=np.float32)
    if target_lufs is not None:
        out = normalize_loudness(out, sr, target=target_lufs, channels_first=True)
    try:
        sf.write(str(out_path), out.T, sr)
    except (OSError, RuntimeError) as err:  # LibsndfileError is a RuntimeError
        raise MediaError(out_path, f"cannot be written ({err})") from None
    return FitResult(out_path, None, n / sr, float(start), applied, float(pitch_shift))


def fit_to_clip(
    track: str | Path,
    clip: str | Path,
    out_video: str | Path,
    *,
    start: float,
    stretch: float = 1.0,
    max_stretch: float = 1.25,
    pitch_shift: float = 0.0,
    out_wav: str | Path | None = None,
    clip_sound: str = "auto",
    speech: tuple[tuple[float, float], ...] | None = None,
    duck_db: float = UNDER_DB,
) -> FitResult:
    """Fit ``track`` (a section from ``start``) to the clip's duration and mux it with the clip;
    ``clip_sound`` says what becomes of the clip's own sound (:mod:`analysis.media.dialogue`: by
    default its dialogue stays, the music ducked under it); ``speech``: the clip's speech stretches
    when known (``VideoAnalysis.speech_regions``), else the mix finds them; ``duck_db``: how far the
    music sits under speech (dB below the dialogue)."""
    check_clip_sound(clip_sound)
    check_duck_db(duck_db)
    _check_section(start, stretch, max_stretch)  # before the clip is probed and the track read
    clip_path = as_path(clip, "clip")
    if not clip_path.is_file():
        raise MediaError(clip_path, "is not a file")
    out_video = as_path(out_video, "out_video")
    _, duration = check_mux(clip_path, out_video)  # said before the track is cut and stretched
    if duration <= 0:
        raise MediaError(clip_path, "has no known duration")
    wav = Path(out_wav) if out_wav is not None else out_video.with_suffix(".fitted.wav")
    res = fit_track(
        track, wav, start=start, duration=duration, stretch=stretch, max_stretch=max_stretch, pitch_shift=pitch_shift
    )
    _, sound = mux_soundtrack(clip_path, wav, out_video, duration=duration, clip_sound=clip_sound, speech=speech,
                              duck_db=duck_db, music_lufs=TARGET_LUFS)  # fit_track wrote it at that level
    return FitResult(wav, out_video, res.duration, res.start, res.stretch, res.pitch_shift, sound)
