"""Audio out for a composed piece: its parts rendered to exactly ``duration`` seconds, and the WAV writer.

Rendering is :func:`analysis.media.synth.render` (one cached FluidSynth and SoundFont per
process); here the piece's audio is peak-normalised to 0.9 and faded out over its last second
(a tenth of a piece shorter than ten seconds), so a WAV and the clip it scores have the same
length and the final chord dies away with the picture instead of stopping on it. Stems share
their mix's gain and fade, so they sum to it.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from analysis.errors import MediaError, ParameterError
from analysis.filters import sosfilt
from analysis.media.synth import render
from analysis.media.wavio import write_wav_file
from composer.music.arranger import Part

SAMPLE_RATE = 44100
#: Peak level of a rendered piece or stem.
PEAK = 0.9
#: Seconds of fade-out at the end of every render (at most a tenth of the piece).
FADE = 1.0
#: Corner of the DC-blocking high-pass every render passes (Hz): below the lowest note a piece plays
#: (an organ's 32 Hz C1 loses 0.1 dB), above the offsets and drifts under 5 Hz.
DC_CUTOFF_HZ = 12.0


def dc_blocked(audio: np.ndarray, fs: int) -> np.ndarray:
    """``audio`` ((n, channels) float32) through a second-order Butterworth high-pass at :data:`DC_CUTOFF_HZ`
    (the audio EQ cookbook's biquad, Q = 1/sqrt 2), from zero state: the render starts in silence."""
    w0 = 2 * math.pi * DC_CUTOFF_HZ / fs
    alpha, cw = math.sin(w0) / math.sqrt(2), math.cos(w0)
    b = [(1 + cw) / 2, -(1 + cw), (1 + cw) / 2]
    a = [1 + alpha, -2 * cw, 1 - alpha]
    sos = np.array([b + a]) / a[0]
    return sosfilt(sos, audio).astype(np.float32) if len(audio) else audio


def synthesize(
    parts: Sequence[Part], duration: float, *, soundfont: str | Path | None = None, fs: int = SAMPLE_RATE
) -> np.ndarray:
    """Stereo float32 audio ``(round(duration * fs), 2)`` of ``parts``, peak-normalised to :data:`PEAK`."""
    audio = dc_blocked(render(parts, duration, fs=fs, soundfont=soundfont), fs)
    gain = peak_gain(audio)
    _remember_gain((tuple(parts), duration, str(soundfont), fs), gain)
    return _faded(audio * gain, fs)


def delivered_mix(
    parts: Sequence[Part], duration: float, *, soundfont: str | Path | None = None, fs: int = SAMPLE_RATE
) -> np.ndarray:
    """:func:`synthesize`'s audio brought to :data:`~analysis.media.loudness.TARGET_LUFS`: the level of
    every WAV and clip the product delivers (the CLI's, the page's, ``Composition.mux``'s)."""
    from analysis.media.loudness import normalize_loudness

    return normalize_loudness(synthesize(parts, duration, soundfont=soundfont, fs=fs), fs)


def stems(
    parts: Sequence[Part], duration: float, *, soundfont: str | Path | None = None, fs: int = SAMPLE_RATE
) -> Iterator[np.ndarray]:
    """Each part's audio in turn, at the gain that peak-normalises the whole piece, so the stems add
    up to its render (each normalised on its own, seven stems at 0.9 peaked at 2.6 together and lost
    the balance). One part at a time: an hour of eight parts would not fit in memory at once."""
    with _GAINS_LOCK:
        gain = _GAINS.get((tuple(parts), duration, str(soundfont), fs))
    if gain is None:  # the mix was not rendered just before (write_outputs renders it first)
        gain = peak_gain(dc_blocked(render(parts, duration, fs=fs, soundfont=soundfont), fs))
    for part in parts:
        yield _faded(dc_blocked(render((part,), duration, fs=fs, soundfont=soundfont), fs) * gain, fs)


#: The peak gains of the last mixes :func:`synthesize` rendered, so their stems need no second render;
#: locked, as the page composes for several visitors at once.
_GAINS: OrderedDict[tuple, float] = OrderedDict()
_GAINS_LOCK = threading.Lock()


def _remember_gain(key: tuple, gain: float) -> None:
    with _GAINS_LOCK:
        _GAINS[key] = gain
        _GAINS.move_to_end(key)
        while len(_GAINS) > 8:
            _GAINS.popitem(last=False)


def peak_gain(audio: np.ndarray) -> float:
    """The factor that brings ``audio``'s peak to :data:`PEAK` (1 for silence)."""
    peak = float(np.abs(audio).max()) if audio.size else 0.0
    return PEAK / peak if peak > 0 else 1.0


def _faded(audio: np.ndarray, fs: int) -> np.ndarray:
    """``audio`` faded out over its last :data:`FADE` seconds (a raised cosine: no corner where it starts)."""
    fade = min(len(audio), int(min(FADE, 0.1 * len(audio) / fs) * fs))
    if fade:
        audio[-fade:] *= (0.5 + 0.5 * np.cos(np.linspace(0.0, np.pi, fade))).astype(np.float32)[:, None]
    return audio


def check_wav_name(path: str | Path) -> Path:
    """``path``, which must end in ``.wav``: soundfile would pick another format by the name and fail
    on .mp3 or .txt only after the render."""
    out = Path(path)
    if out.suffix.lower() != ".wav":
        raise ParameterError(f"the rendered audio is a WAV: name the file .wav (received {str(out)!r})")
    return out


def write_wav(path: str | Path, audio: np.ndarray, fs: int = SAMPLE_RATE) -> Path:
    """``audio`` as a 16-bit PCM WAV at ``path`` (folders created); a folder in the way or one that cannot
    be written (read-only, full) is a :class:`MediaError` naming the file."""
    out = check_wav_name(path)
    if out.is_dir():
        raise MediaError(out, "is a directory, expected a file path to write")
    return write_wav_file(out, audio, fs)
