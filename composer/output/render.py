"""Audio out: FluidSynth rendering of parts, WAV/stem writers, and muxing onto a clip.

The synthesiser and its SoundFont (FluidR3_GM, ~140 MB) load once per process and
SoundFont path and are reused for every render and stem; ``pretty_midi``'s own
``fluidsynth()`` would reload the SoundFont for each instrument. Audio is rendered to
exactly ``duration`` seconds, so a WAV and the clip it scores have the same length.
Muxing runs ``ffmpeg`` with an argument list (never a shell string), copies the video
stream and encodes the new audio as AAC.
"""

from __future__ import annotations

import shutil
import subprocess
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from analysis.errors import MediaError, ModelError
from composer.music.arranger import Part

DEFAULT_SOUNDFONT = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")
SAMPLE_RATE = 44100
_SYNTHS: dict[tuple[str, int], tuple[object, int]] = {}
_LOCK = threading.Lock()


def _synth(soundfont: Path, fs: int) -> tuple[object, int]:
    """The cached (synth, soundfont id) for ``soundfont`` at ``fs`` Hz."""
    key = (str(soundfont), fs)
    if key not in _SYNTHS:
        if not soundfont.is_file():
            raise MediaError(soundfont, "SoundFont not found (install fluid-soundfont-gm or pass `soundfont`)")
        try:
            import fluidsynth
        except ImportError as err:  # pyfluidsynth or libfluidsynth missing
            raise ModelError(f"FluidSynth is not available ({err})") from None
        synth = fluidsynth.Synth(samplerate=float(fs))
        sfid = synth.sfload(str(soundfont))
        if sfid < 0:
            raise MediaError(soundfont, "FluidSynth could not load this SoundFont")
        _SYNTHS[key] = (synth, sfid)
    return _SYNTHS[key]


def synthesize(
    parts: Sequence[Part], duration: float, *, soundfont: str | Path | None = None, fs: int = SAMPLE_RATE
) -> np.ndarray:
    """Stereo float32 audio ``(round(duration * fs), 2)`` of ``parts``, peak-normalised to 0.9."""
    sf = Path(soundfont) if soundfont is not None else DEFAULT_SOUNDFONT
    n_total = round(duration * fs)
    events: list[tuple[int, int, int, int, int]] = []  # (sample, order, channel, pitch, velocity)
    programs: list[tuple[int, int, bool]] = []
    chan = 0
    for part in parts:
        if part.is_drum:
            c = 9
        else:
            if chan == 9:
                chan += 1
            c = chan % 16
            chan += 1
        programs.append((c, part.program, part.is_drum))
        for n in part.notes:
            on, off = round(n.start * fs), round(n.end * fs)
            if on >= n_total:
                continue
            events.append((on, 1, c, n.pitch, n.velocity))
            events.append((min(off, n_total), 0, c, n.pitch, 0))
    events.sort()
    with _LOCK:
        synth, sfid = _synth(sf, fs)
        synth.system_reset()
        for c, program, is_drum in programs:
            synth.program_select(c, sfid, 128 if is_drum else 0, 0 if is_drum else program)
        chunks: list[np.ndarray] = []
        pos = 0
        for sample, order, c, pitch, vel in events:
            if sample > pos:
                chunks.append(np.asarray(synth.get_samples(sample - pos), np.int16).reshape(-1, 2))
                pos = sample
            if order:
                synth.noteon(c, pitch, vel)
            else:
                synth.noteoff(c, pitch)
        if n_total > pos:
            chunks.append(np.asarray(synth.get_samples(n_total - pos), np.int16).reshape(-1, 2))
        for c, _, _ in programs:
            synth.all_sounds_off(c)
    audio = np.concatenate(chunks).astype(np.float32) if chunks else np.zeros((n_total, 2), np.float32)
    audio = audio[:n_total]
    peak = float(np.abs(audio).max()) if audio.size else 0.0
    if peak > 0:
        audio *= 0.9 / peak
    fade = min(len(audio), int(0.05 * fs))
    if fade:
        audio[-fade:] *= np.linspace(1.0, 0.0, fade, dtype=np.float32)[:, None]
    return audio


def write_wav(path: str | Path, audio: np.ndarray, fs: int = SAMPLE_RATE) -> Path:
    import soundfile

    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(str(out), audio, fs, subtype="PCM_16")
    return out


def media_duration(path: str | Path) -> float:
    """Container duration of a media file in seconds (PyAV), as a MediaError when unreadable."""
    import av

    p = Path(path)
    if not p.is_file():
        raise MediaError(p, "file not found")
    try:
        with av.open(str(p)) as c:
            if c.duration is not None:
                return float(c.duration) / 1_000_000
            s = next((s for s in c.streams if s.duration is not None and s.time_base is not None), None)
            if s is None:
                raise MediaError(p, "no duration in the container")
            return float(s.duration * s.time_base)
    except av.error.FFmpegError as err:
        raise MediaError(p, f"cannot be read ({err.strerror or type(err).__name__})") from None


def mux(video: str | Path, audio_wav: str | Path, out: str | Path) -> Path:
    """``video`` with its audio replaced by ``audio_wav`` (video stream copied, AAC audio)."""
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise ModelError("ffmpeg is not installed (needed to mux audio onto the clip)")
    src = Path(video)
    duration = media_duration(src)
    dst = Path(out)
    dst.parent.mkdir(parents=True, exist_ok=True)
    cmd = [ffmpeg, "-nostdin", "-y", "-v", "error", "-i", str(src), "-i", str(audio_wav)]
    cmd += ["-map", "0:v:0", "-map", "1:a:0", "-c:v", "copy", "-c:a", "aac", "-b:a", "192k"]
    cmd += ["-t", f"{duration:.3f}", str(dst)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        lines = proc.stderr.strip().splitlines()
        raise MediaError(src, f"ffmpeg could not mux the soundtrack ({lines[-1] if lines else 'no message'})")
    return dst
