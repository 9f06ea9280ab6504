"""Keep a clip's dialogue under its new soundtrack: the music steps back where people speak.

A vlog, an interview or a scene with lines loses its point when the new score replaces the
sound. With ``clip_sound="auto"`` (the default of every user-facing call) a clip whose audio
holds speech keeps its own sound, and the music is laid under it, as an editor's auto-ducking does:

* **between lines** the music sits :data:`GAP_DB` under the dialogue's loudness;
* **under speech** (the Silero VAD stretches the speech source reads, :mod:`analysis.sources.vad`)
  it sits :data:`UNDER_DB` under it, the usual distance of a music bed from dialogue. The
  stretches are known before the mix, so the dip leads the first word by :data:`ATTACK_S` and
  comes back over :data:`RELEASE_S` after the last; a pause shorter than :data:`HOLD_S` stays
  down, so the music does not pump between sentences;
* the sum is brought to :data:`analysis.media.loudness.TARGET_LUFS` like every other output.

A clip without speech has its sound replaced (``auto``): camera noise or a temp track under a new
score only muddies it. ``keep`` keeps the clip's sound always (music at its own level where nobody
speaks); ``replace`` writes the music alone.

The clip's audio is decoded by ``ffmpeg`` to 44.1 kHz stereo with an argument list (never a
shell string); ``aresample=async`` fills a damaged packet's gap with silence (any gap over
10 ms: its default, 0.1 s, let a lost 46 ms AAC packet pull the rest early), so the dialogue
stays in sync with the picture after it.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from analysis.errors import MediaError, ParameterError
from analysis.media.loudness import TARGET_LUFS, integrated_loudness, normalize_loudness

log = logging.getLogger(__name__)

ClipSound = Literal["auto", "keep", "replace"]
#: What a clip's own sound can become under its new soundtrack.
CLIP_SOUNDS: tuple[str, ...] = ("auto", "keep", "replace")
#: Music between lines: this many LU under the dialogue's loudness.
GAP_DB = 4.0
#: Music under speech: this many LU under the dialogue's loudness.
UNDER_DB = 14.0
#: The dip starts this long before a speech stretch and is full at its start (s).
ATTACK_S = 0.3
#: After a speech stretch the music comes back over this long (s).
RELEASE_S = 0.8
#: Pauses shorter than this stay ducked (s).
HOLD_S = 1.5
_CONTROL_HZ = 200  # the gain curve's rate before it is spread to samples


@dataclass(frozen=True)
class DialogueMix:
    """What became of a clip's own sound: ``kept`` or replaced (``why``: ``"asked"``, ``"no speech"``,
    ``"no sound"``), the speech stretches found (s), the dialogue's loudness (LUFS, NaN without
    speech) and the music's level between lines and under speech relative to it (LU)."""

    kept: bool
    regions: tuple[tuple[float, float], ...]
    speech_lufs: float = math.nan
    why: str = ""
    gap_db: float = -GAP_DB
    under_db: float = -UNDER_DB

    @property
    def speech_seconds(self) -> float:
        return float(sum(e - s for s, e in self.regions))

    def describe(self) -> str:
        """One line for a user: what happened to the clip's sound."""
        if not self.kept:
            if self.why == "no sound":
                return "the clip has no sound of its own that decodes; the music is all it has"
            return "the clip's own sound is replaced by the music" + (
                " (no speech in it)" if self.why == "no speech" else "")
        if not self.regions:
            return "the clip's own sound is kept under the music (no speech in it)"
        return (f"the clip's dialogue is kept ({self.speech_seconds:.1f} s of speech); the music sits "
                f"{-self.under_db:.0f} dB under it while people speak, {-self.gap_db:.0f} dB between lines")


def check_clip_sound(clip_sound: str) -> ClipSound:
    """``clip_sound`` checked against :data:`CLIP_SOUNDS` (a :class:`ParameterError` names the choices)."""
    if clip_sound not in CLIP_SOUNDS:
        raise ParameterError(f"`clip_sound` must be one of {', '.join(CLIP_SOUNDS)} (received {clip_sound!r})")
    return clip_sound  # type: ignore[return-value]


def clip_audio(video: str | Path, sr: int, *, channels: int = 2) -> np.ndarray | None:
    """The clip's first audio stream as float32 ``(channels, n)`` at ``sr``; None when it has none.

    Damaged packets are skipped and their time filled with silence, so what follows stays in sync.
    """
    src = Path(video).resolve()
    if not src.is_file():
        raise MediaError(video, "file not found")
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise MediaError(video, "cannot be mixed: ffmpeg is not installed (Debian package ffmpeg)")
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
    raw = raw[: raw.size // channels * channels]
    return np.ascontiguousarray(raw.reshape(-1, channels).T)


def duck_curve(regions: tuple[tuple[float, float], ...], n: int, sr: int) -> np.ndarray:
    """How far the music is ducked at each of ``n`` samples: 1 under speech, 0 away from it,
    ramps of :data:`ATTACK_S` before and :data:`RELEASE_S` after each stretch; pauses shorter
    than :data:`HOLD_S` are bridged."""
    merged: list[tuple[float, float]] = []
    for s, e in sorted(regions):
        if merged and s - merged[-1][1] < HOLD_S:
            merged[-1] = (merged[-1][0], max(merged[-1][1], e))
        else:
            merged.append((s, e))
    t = np.arange(math.ceil(n / sr * _CONTROL_HZ) + 2) / _CONTROL_HZ
    duck = np.zeros(t.size)
    for s, e in merged:
        rise = np.clip((t - (s - ATTACK_S)) / ATTACK_S, 0.0, 1.0)
        fall = np.clip(((e + RELEASE_S) - t) / RELEASE_S, 0.0, 1.0)
        duck = np.maximum(duck, np.minimum(rise, fall))
    return np.interp(np.arange(n) / sr, t, duck)


def mix_under_dialogue(music: np.ndarray, clip: np.ndarray, sr: int,
                       regions: tuple[tuple[float, float], ...]) -> tuple[np.ndarray, DialogueMix]:
    """``music`` (channels, n) laid under the clip's sound ``clip`` (channels, m, trimmed or padded
    to n), ducked under ``regions``; the sum at :data:`TARGET_LUFS`. Without regions the music
    keeps its own level and the clip's sound its own."""
    music = np.asarray(music, dtype=np.float32)
    n = music.shape[1]
    own = np.zeros_like(music)
    m = min(n, clip.shape[1])
    own[:, :m] = clip[:, :m]
    speech_lufs = math.nan
    gain = np.ones(n, np.float32)
    if regions:
        speech = np.concatenate([own[:, int(s * sr): int(e * sr)] for s, e in regions], axis=1)
        speech_lufs = integrated_loudness(speech, sr, channels_first=True)
        music_lufs = integrated_loudness(music, sr, channels_first=True)
        if math.isfinite(speech_lufs) and math.isfinite(music_lufs):
            gap, under = speech_lufs - GAP_DB - music_lufs, speech_lufs - UNDER_DB - music_lufs
            gain = (10 ** ((gap + (under - gap) * duck_curve(regions, n, sr)) / 20)).astype(np.float32)
    mixed = normalize_loudness(own + music * gain, sr, target=TARGET_LUFS, channels_first=True)
    return mixed, DialogueMix(True, tuple(regions), speech_lufs)


def dialogue_regions(clip: np.ndarray, sr: int) -> tuple[tuple[float, float], ...]:
    """The speech stretches (s) of the clip's sound, by the speech source's voice activity detector."""
    from analysis.sources.vad import detect

    return detect(clip.mean(axis=0), sr, duration=clip.shape[1] / sr).regions


def soundtrack_audio(video: str | Path, music: np.ndarray, sr: int,
                     clip_sound: str = "auto") -> tuple[np.ndarray, DialogueMix]:
    """The audio to put on ``video``: ``music`` (channels, n) alone, or under the clip's own
    sound as ``clip_sound`` asks (see the module docstring)."""
    mode = check_clip_sound(clip_sound)
    if mode == "replace":
        return music, DialogueMix(False, (), why="asked")
    clip = clip_audio(video, sr, channels=music.shape[0])
    if clip is None:
        return music, DialogueMix(False, (), why="no sound")
    regions = dialogue_regions(clip, sr)
    if mode == "auto" and not regions:
        return music, DialogueMix(False, (), why="no speech")
    return mix_under_dialogue(music, clip, sr, regions)


def mux_soundtrack(video: str | Path, audio: str | Path, out: str | Path, *, duration: float | None = None,
                   clip_sound: str = "auto") -> tuple[Path, DialogueMix]:
    """Write ``out``: ``video``'s picture with ``audio`` (a WAV) as its soundtrack, the clip's own
    sound kept under it as ``clip_sound`` asks; returns ``out`` and what became of that sound.

    A kept sound is mixed into a WAV beside ``out`` that is removed once muxed.
    """
    import soundfile

    from analysis.media.mux import mux

    check_clip_sound(clip_sound)
    if clip_sound == "replace":
        return mux(video, audio, out, duration=duration), DialogueMix(False, (), why="asked")
    try:
        music, sr = soundfile.read(str(audio), dtype="float32", always_2d=True)
    except (OSError, RuntimeError) as err:  # soundfile raises LibsndfileError (a RuntimeError) on bad files
        raise MediaError(audio, f"cannot be read as audio ({err})") from None
    mixed, report = soundtrack_audio(video, music.T, sr, clip_sound)
    if not report.kept:
        return mux(video, audio, out, duration=duration), report
    dst = Path(out)
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.stem}.{os.getpid()}.{threading.get_ident()}.mix.wav")
    try:
        soundfile.write(str(tmp), mixed.T, sr, subtype="PCM_16")
        mux(video, tmp, out, duration=duration)
    finally:
        tmp.unlink(missing_ok=True)
    log.info("%s: %s", video, report.describe())
    return dst, report
