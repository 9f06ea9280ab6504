"""Keep a clip's dialogue under its new soundtrack: the music steps back where people speak.

A vlog, an interview or a scene with lines loses its point when the new score replaces the
sound. With ``clip_sound="auto"`` (the default of every user-facing call) a clip whose audio
holds speech keeps its own sound, and the music is laid under it, as an editor's auto-ducking does:

* **the dialogue** is brought to :data:`analysis.media.loudness.TARGET_LUFS`, measured over the
  speech alone (dialogue-anchored, as broadcast loudness rules measure programmes with speech),
  but raised by :data:`MAX_BOOST_DB` at most: a whisper recorded far from the microphone would
  otherwise bring its room hiss up with it, and the music is then set against the dialogue's
  level as raised;
* **between lines** the music sits :data:`GAP_DB` under it;
* **under speech** (the Silero VAD stretches the speech source reads, :mod:`analysis.sources.vad`)
  it sits :data:`UNDER_DB` under it, the usual distance of a music bed from dialogue (``duck_db``
  chooses another, :data:`MIN_DUCK_DB` to :data:`MAX_DUCK_DB`, as an editor's ducking control does). The
  stretches are known before the mix, so the dip leads the first word by :data:`ATTACK_S` and
  comes back over :data:`RELEASE_S` after the last; a pause shorter than :data:`HOLD_S` stays
  down, so the music does not pump between sentences;
* true peaks are soft-limited under -1 dBTP like every other output's.

A clip without speech has its sound replaced (``auto``): camera noise or a temp track under a new
score only muddies it. ``keep`` keeps the clip's sound always (music at its own level where nobody
speaks); ``replace`` writes the music alone.

The clip's audio is decoded by ``ffmpeg`` at the rate its new soundtrack is delivered at (its own, unless
under 44.1 kHz: :func:`analysis.media.mux.delivery_rate`), in stereo, with an argument list (never a
shell string); ``aresample=async`` fills a damaged packet's gap with silence (any gap over
10 ms: its default, 0.1 s, let a lost 46 ms AAC packet pull the rest early), so the dialogue
stays in sync with the picture after it.
"""

from __future__ import annotations

import logging
import math
import os
import subprocess
import threading
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

import numpy as np

from analysis.errors import MediaError, ParameterError, is_number
from analysis.media.ffmpeg import ffmpeg_binary
from analysis.media.loudness import TARGET_LUFS, integrated_loudness, limit_true_peak, normalize_loudness
from analysis.media.probe import open_media, picture_start
from analysis.media.wavio import write_wav_file

log = logging.getLogger(__name__)

ClipSoundChoice = Literal["auto", "keep", "replace"]
#: What a clip's own sound can become under its new soundtrack.
CLIP_SOUNDS: tuple[str, ...] = ("auto", "keep", "replace")
#: Music between lines: this many LU under the dialogue's loudness.
GAP_DB = 4.0
#: Music under speech: this many LU under the dialogue's loudness (the default of ``duck_db``).
UNDER_DB = 14.0
#: The depths a user may choose for the music under speech (dB): under 6 the words fight the music
#: (and never under GAP_DB: the music would swell as people speak), past 30 it is as good as gone
#: (``replace`` says that better).
MIN_DUCK_DB, MAX_DUCK_DB = max(6.0, GAP_DB), 30.0
#: The most quiet dialogue is raised (dB): 12 dB takes a -28 LUFS recording to -16; a quieter
#: one stays quieter, the music still under it by GAP_DB and duck_db.
MAX_BOOST_DB = 12.0
#: The dip starts this long before a speech stretch and is full at its start (s).
ATTACK_S = 0.3
#: After a speech stretch the music comes back over this long (s).
RELEASE_S = 0.8
#: Pauses shorter than this stay ducked (s).
HOLD_S = 1.5
_CONTROL_HZ = 200  # the gain curve's rate before it is spread to samples
_BLOCK = 1 << 20  # samples mixed at a time


@dataclass(frozen=True)
class DialogueMix:
    """What became of a clip's own sound: ``kept`` or replaced (``why``: ``"asked"``, ``"no speech"``,
    ``"no sound"``), the speech stretches found (s) and the dialogue's loudness (LUFS, NaN without
    speech); the music sits :data:`GAP_DB` under it between lines and ``duck_db`` under speech."""

    kept: bool
    regions: tuple[tuple[float, float], ...]
    speech_lufs: float = math.nan
    why: str = ""
    duck_db: float = UNDER_DB
    #: The clip's tracks the output could not hold (:func:`analysis.media.mux.kept_streams`), one line each.
    left_out: tuple[str, ...] = ()

    @property
    def speech_seconds(self) -> float:
        return float(sum(e - s for s, e in self.regions))

    def describe(self) -> str:
        """One line for a user: what happened to the clip's sound (and to tracks the output could not hold)."""
        return "; ".join((self._sound(), *self.left_out))

    def _sound(self) -> str:
        if not self.kept:
            if self.why == "no sound":
                return "the clip has no sound of its own (no audio track, or none that decodes): only the music"
            return "the clip's own sound is replaced by the music" + (
                " (no speech in it)" if self.why == "no speech" else "")
        if not self.regions:
            return "the clip's own sound is kept under the music (no speech in it)"
        quiet = TARGET_LUFS - self.speech_lufs > MAX_BOOST_DB
        raised = f", raised {MAX_BOOST_DB:.0f} dB as the most for a quiet recording" if quiet else ""
        return (f"the clip's dialogue is kept ({self.speech_seconds:.1f} s of speech{raised}); the music sits "
                f"{self.duck_db:g} dB under it while people speak, {GAP_DB:.0f} dB between lines")


def check_clip_sound(clip_sound: str) -> ClipSoundChoice:
    """``clip_sound`` checked against :data:`CLIP_SOUNDS` (a :class:`ParameterError` names the choices)."""
    if clip_sound not in CLIP_SOUNDS:
        raise ParameterError(f"`clip_sound` must be one of {', '.join(CLIP_SOUNDS)} (received {clip_sound!r})")
    return clip_sound  # type: ignore[return-value]


def keeps_clip_sound(clip_sound: str, has_speech: bool) -> bool:
    """Whether a clip's own sound stays under its new music: ``keep`` always, ``auto`` where people speak
    in it, ``replace`` never (the one rule of the file mix and the page's Live tab)."""
    mode = check_clip_sound(clip_sound)
    return mode == "keep" or (mode == "auto" and has_speech)


def check_duck_db(duck_db: float) -> float:
    """``duck_db`` (the music under speech, dB below the dialogue) checked to lie within
    :data:`MIN_DUCK_DB` and :data:`MAX_DUCK_DB`, and so never above the music between lines."""
    if not (is_number(duck_db) and MIN_DUCK_DB <= duck_db <= MAX_DUCK_DB):
        raise ParameterError(f"`duck_db` (the music under speech) must be within {MIN_DUCK_DB:g} and "
                             f"{MAX_DUCK_DB:g} dB below the dialogue (received {duck_db!r})")
    return float(duck_db)


def clip_audio(video: str | Path, sr: int, *, channels: int = 2) -> np.ndarray | None:
    """The clip's first audio stream as float32 ``(channels, n)`` at ``sr``; None when it has none.

    Sample 0 is the first frame's time (sound from before the picture dropped, a late start padded
    with silence), the clock of the analysis' speech stretches and of the music, which
    :func:`analysis.media.mux.mux` delays to the first frame. Damaged packets are skipped and their
    time filled with silence, so what follows stays in sync.
    """
    src = Path(video).resolve()
    with open_media(src) as container:  # a MediaError names a missing or unreadable clip
        if not container.streams.audio:
            return None
        before = round(picture_start(container) * sr)
    ffmpeg = ffmpeg_binary(video, "mixed")
    cmd = [
        ffmpeg, "-nostdin", "-v", "error", "-err_detect", "ignore_err", "-i", str(src), "-map", "0:a:0?", "-vn",
        "-af", "aresample=async=1:min_hard_comp=0.01:first_pts=0", "-ac", str(channels), "-ar", str(sr),
        "-f", "f32le", "-",
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, check=False)
    raw = np.frombuffer(proc.stdout, dtype="<f4")
    if raw.size < channels:
        if proc.returncode != 0:
            log.warning("%s: its audio could not be decoded; the music replaces it", video)
        return None
    raw = raw[: raw.size // channels * channels].reshape(-1, channels)[before:]
    return np.ascontiguousarray(raw.T) if raw.size else None


def _duck_control(regions: tuple[tuple[float, float], ...], seconds: float) -> tuple[np.ndarray, np.ndarray]:
    """The duck curve at :data:`_CONTROL_HZ`: its times (s) and values (see :func:`duck_curve`)."""
    merged: list[tuple[float, float]] = []
    for s, e in sorted(regions):
        if merged and s - merged[-1][1] < HOLD_S:
            merged[-1] = (merged[-1][0], max(merged[-1][1], e))
        else:
            merged.append((s, e))
    t = np.arange(math.ceil(seconds * _CONTROL_HZ) + 2) / _CONTROL_HZ
    duck = np.zeros(t.size)
    for s, e in merged:
        rise = np.clip((t - (s - ATTACK_S)) / ATTACK_S, 0.0, 1.0)
        fall = np.clip(((e + RELEASE_S) - t) / RELEASE_S, 0.0, 1.0)
        duck = np.maximum(duck, np.minimum(rise, fall))
    return t, duck


def duck_curve(regions: tuple[tuple[float, float], ...], n: int, sr: int) -> np.ndarray:
    """How far the music is ducked at each of ``n`` samples: 1 under speech, 0 away from it,
    ramps of :data:`ATTACK_S` before and :data:`RELEASE_S` after each stretch; pauses shorter
    than :data:`HOLD_S` are bridged."""
    t, duck = _duck_control(regions, n / sr)
    return np.interp(np.arange(n) / sr, t, duck)


@dataclass(frozen=True, eq=False)
class ClipSound:
    """A clip's own sound, read once for the mix (:func:`read_clip_sound`; it can be read while the
    music renders): ``samples`` (channels, n) float32 at ``sr`` when it is kept, else None, with
    the speech stretches and their loudness; ``report`` says what becomes of it."""

    samples: np.ndarray | None
    sr: int
    report: DialogueMix


def read_clip_sound(video: str | Path, clip_sound: str = "auto", *,
                    speech: tuple[tuple[float, float], ...] | None = None, sr: int = 44100,
                    channels: int = 2) -> ClipSound:
    """Decide what becomes of ``video``'s own sound and read it when it stays. ``speech``: its speech
    stretches when known already (``VideoAnalysis.speech_regions``), else found here."""
    mode = check_clip_sound(clip_sound)
    if mode == "replace":
        return ClipSound(None, sr, DialogueMix(False, (), why="asked"))
    own = clip_audio(video, sr, channels=channels)
    if own is None:
        return ClipSound(None, sr, DialogueMix(False, (), why="no sound"))
    regions = tuple(speech) if speech is not None else dialogue_regions(own, sr)
    if not keeps_clip_sound(mode, bool(regions)):
        return ClipSound(None, sr, DialogueMix(False, (), why="no speech"))
    lufs = math.nan
    if regions:
        said = np.concatenate([own[:, int(s * sr) : int(e * sr)] for s, e in regions], axis=1)
        lufs = integrated_loudness(said, sr, channels_first=True)
    return ClipSound(own, sr, DialogueMix(True, regions, lufs))


def mix_under_dialogue(music: np.ndarray, sound: ClipSound, *, music_lufs: float | None = None,
                       duck_db: float = UNDER_DB) -> np.ndarray:
    """``music`` (channels, n at ``sound.sr``) laid under the clip's kept sound (trimmed or padded
    to n): dialogue at :data:`TARGET_LUFS`, the music :data:`GAP_DB` under it between lines and
    ``duck_db`` under speech. Without speech (``keep``) each keeps its own level and the sum is
    brought to :data:`TARGET_LUFS`. ``music_lufs``: the music's integrated loudness when known (the
    writers bring it to :data:`TARGET_LUFS`), else measured."""
    duck_db = check_duck_db(duck_db)
    music = np.asarray(music, dtype=np.float32)
    if sound.samples is None:
        raise ParameterError("the clip's own sound is not kept: there is nothing to mix")
    n, sr, regions = music.shape[1], sound.sr, sound.report.regions
    own = np.zeros_like(music)
    m = min(n, sound.samples.shape[1])
    own[:, :m] = sound.samples[:, :m] if sound.samples.shape[0] == music.shape[0] else (
        np.broadcast_to(sound.samples[:, :m].mean(axis=0), (music.shape[0], m)))
    speech_lufs = sound.report.speech_lufs
    if music_lufs is None:
        music_lufs = integrated_loudness(music, sr, channels_first=True) if regions else math.nan
    if not (math.isfinite(speech_lufs) and math.isfinite(music_lufs)):
        return normalize_loudness(own + music, sr, target=TARGET_LUFS, channels_first=True)
    boost = min(TARGET_LUFS - speech_lufs, MAX_BOOST_DB)
    own *= np.float32(10 ** (boost / 20))
    dialogue = speech_lufs + boost  # TARGET_LUFS unless the dialogue is too quiet to raise that far
    gap, under = dialogue - GAP_DB - music_lufs, dialogue - duck_db - music_lufs
    t, duck = _duck_control(regions, n / sr)
    gain_t = 10 ** ((gap + (under - gap) * duck) / 20)
    for i in range(0, n, _BLOCK):  # in blocks: an hour of stereo is 1.3 GB, its gain curve need not be
        j = min(n, i + _BLOCK)
        own[:, i:j] += music[:, i:j] * np.interp(np.arange(i, j) / sr, t, gain_t).astype(np.float32)
    return limit_true_peak(own, channels_first=True)


def dialogue_regions(clip: np.ndarray, sr: int) -> tuple[tuple[float, float], ...]:
    """The speech stretches (s) of the clip's sound, by the speech source's voice activity detector."""
    from analysis.sources.vad import detect

    return detect(clip.mean(axis=0), sr, duration=clip.shape[1] / sr).regions


def mux_soundtrack(video: str | Path, audio: str | Path, out: str | Path, *, duration: float | None = None,
                   clip_sound: str = "auto", speech: tuple[tuple[float, float], ...] | None = None,
                   sound: ClipSound | None = None, music_lufs: float | None = None,
                   duck_db: float = UNDER_DB) -> tuple[Path, DialogueMix]:
    """Write ``out``: ``video``'s picture with ``audio`` (a WAV) as its soundtrack, the clip's own
    sound kept under it as ``clip_sound`` asks, the music ``duck_db`` under its speech (dB below the
    dialogue, :data:`MIN_DUCK_DB` to :data:`MAX_DUCK_DB`); returns ``out`` and what became of that sound.
    ``speech``: the clip's speech stretches when known (``VideoAnalysis.speech_regions``);
    ``sound``: the clip's sound when it was read already (:func:`read_clip_sound`); ``music_lufs``:
    the loudness of ``audio`` when known (else it is measured).

    The sound is delivered at the clip's own rate (:func:`~analysis.media.mux.delivery_rate`): ``audio`` at
    another is resampled (SoX's very high quality), and the clip's sound is read at its rate, unchanged.
    A kept sound is mixed into a WAV beside ``out`` that is removed once muxed.
    """
    import soundfile
    import soxr

    from analysis.media.mux import delivery_rate, mux

    check_clip_sound(clip_sound)
    duck_db = check_duck_db(duck_db)
    rate = delivery_rate(video)

    def muxed(track: str | Path, report: DialogueMix) -> tuple[Path, DialogueMix]:
        """``out`` with ``track`` as its sound, and ``report`` with the depth (read before it was known)
        and the clip's tracks the output could not hold."""
        notes: list[str] = []
        path = mux(video, track, out, duration=duration, notes=notes, rate=rate, clip_tags=report.kept)
        return path, replace(report, duck_db=duck_db, left_out=tuple(notes))

    if sound is None and clip_sound == "replace":
        return muxed(audio, DialogueMix(False, (), why="asked"))
    if sound is not None and sound.samples is None:  # read already, and nothing of it to mix
        return muxed(audio, sound.report)
    try:
        music, sr = soundfile.read(str(audio), dtype="float32", always_2d=True)
    except (OSError, RuntimeError) as err:  # soundfile raises LibsndfileError (a RuntimeError) on bad files
        raise MediaError(audio, f"cannot be read as audio ({err})") from None
    if sr != rate:
        music, sr = soxr.resample(music, sr, rate, quality="VHQ").astype(np.float32, copy=False), rate
    if sound is None or sound.sr != sr:
        sound = read_clip_sound(video, clip_sound, speech=speech, sr=sr, channels=music.shape[1])
    if sound.samples is None:
        return muxed(audio, sound.report)
    mixed = mix_under_dialogue(music.T, sound, music_lufs=music_lufs, duck_db=duck_db)
    dst = Path(out)
    tmp = dst.with_name(f".{dst.stem}.{os.getpid()}.{threading.get_ident()}.mix.wav")
    try:
        write_wav_file(tmp, mixed.T, sr)
        path, report = muxed(tmp, sound.report)
    finally:
        tmp.unlink(missing_ok=True)
    log.info("%s: %s", video, report.describe())
    return path, report
