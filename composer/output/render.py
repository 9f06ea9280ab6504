"""Audio out for a composed piece: its parts rendered to exactly ``duration`` seconds, and the WAV writer.

Rendering is :func:`analysis.media.synth.render` (one cached FluidSynth and SoundFont per
process); here the piece's audio is normalised to a true peak of -1 dBTP (:data:`PEAK`) and faded
out over its last second (a tenth of a piece shorter than ten seconds), so a WAV and the clip it scores have the same
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
from analysis.filters import sosfilt_stretches
from analysis.media.loudness import CEILING, true_peak
from analysis.media.synth import render
from analysis.media.wavio import write_wav_file
from composer.music.arranger import Part

SAMPLE_RATE = 44100
#: True peak (:func:`analysis.media.loudness.true_peak`, linear) of a rendered piece: -1 dBTP, the delivery
#: limit. A sample peak of 0.9 (what it was) left the waveform swinging to -0.86 dBTP between samples.
PEAK = CEILING
#: Seconds of fade-out at the end of every render (at most a tenth of the piece).
FADE = 1.0
#: Corner of the DC-blocking high-pass every render passes (Hz): below the lowest note a piece plays
#: (an organ's 32 Hz C1 loses 0.1 dB), above the offsets and drifts under 5 Hz.
DC_CUTOFF_HZ = 12.0
#: Where the lead sits against the other parts together (dB, median while it sounds): level with them.
LEAD_OVER_DB = 0.0
#: The most the lead is lifted (dB).
MAX_LEAD_BOOST_DB = 12.0


def dc_blocked(audio: np.ndarray, fs: int) -> np.ndarray:
    """``audio`` ((n, channels) float32, a render of its own) through a second-order Butterworth high-pass at
    :data:`DC_CUTOFF_HZ` (the audio EQ cookbook's biquad, Q = 1/sqrt 2), from zero state (the render starts
    in silence), filtered in place and returned: a filtered copy beside it was 1.3 GB more for an hour."""
    w0 = 2 * math.pi * DC_CUTOFF_HZ / fs
    alpha, cw = math.sin(w0) / math.sqrt(2), math.cos(w0)
    b = [(1 + cw) / 2, -(1 + cw), (1 + cw) / 2]
    a = [1 + alpha, -2 * cw, 1 - alpha]
    done = 0
    for part in sosfilt_stretches(np.array([b + a]) / a[0], audio):  # each stretch is read before it is written
        audio[done : done + len(part)] = part
        done += len(part)
    return audio


def lead_boost(lead: np.ndarray, bed: np.ndarray, fs: int) -> float:
    """The gain that lifts ``lead`` to :data:`LEAD_OVER_DB` over ``bed`` (the other parts together), compared
    as the median level of 100 ms frames while the lead sounds; 1 when it is there already, at most
    :data:`MAX_LEAD_BOOST_DB`. GM patches differ by 15 dB and more in loudness, so velocities alone left a
    plucked or bowed lead 7-14 dB under a sustained pad or brass."""
    hop = max(1, int(0.1 * fs))
    n = min(len(lead), len(bed)) // hop
    if n == 0:
        return 1.0
    level = [20 * np.log10(np.sqrt(_frame_power(x[: n * hop].reshape(n, hop, -1))) + 1e-12) for x in (lead, bed)]
    sounding = level[0] > level[0].max() - 30.0
    gap = float(np.median(level[1][sounding]) + LEAD_OVER_DB - np.median(level[0][sounding]))
    return float(10 ** (np.clip(gap, 0.0, MAX_LEAD_BOOST_DB) / 20))


def _frame_power(frames: np.ndarray) -> np.ndarray:
    """The mean square of each of ``frames`` ((n, samples, channels)), a hundred frames at a time: the squares
    of a whole render at once were 1.3 GB more for an hour."""
    return np.concatenate([(frames[a : a + 100] ** 2).mean(axis=(1, 2)) for a in range(0, len(frames), 100)])


def _balanced(
    parts: Sequence[Part], duration: float, soundfont: str | Path | None, fs: int
) -> tuple[np.ndarray, float]:
    """The render of ``parts`` with the lead at :func:`lead_boost`, and that boost."""
    lead = [p for p in parts if p.name == "lead" and p.notes]
    bed = [p for p in parts if p not in lead]
    if not lead or not bed:
        return dc_blocked(render(parts, duration, fs=fs, soundfont=soundfont), fs), 1.0
    lead_audio = dc_blocked(render(lead, duration, fs=fs, soundfont=soundfont), fs)
    bed_audio = dc_blocked(render(bed, duration, fs=fs, soundfont=soundfont), fs)
    boost = lead_boost(lead_audio, bed_audio, fs)
    bed_audio += lead_audio * np.float32(boost)  # in place: an hour of audio is 1.3 GB a copy
    return bed_audio, boost


def synthesize(
    parts: Sequence[Part], duration: float, *, soundfont: str | Path | None = None, fs: int = SAMPLE_RATE
) -> np.ndarray:
    """Stereo float32 audio ``(round(duration * fs), 2)`` of ``parts``, the lead lifted over the others where
    it would sit under them (:func:`lead_boost`), normalised to the true peak :data:`PEAK`."""
    audio, boost = _balanced(parts, duration, soundfont, fs)
    gain = peak_gain(audio)
    _remember_gain((tuple(parts), duration, str(soundfont), fs), (gain, boost))
    audio *= gain  # in place: the render is this call's own
    return _faded(audio, fs)


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
    """Each part's audio in turn, at the gain that peak-normalises the whole piece (:func:`peak_gain`), so the stems add
    up to its render (each normalised on its own, seven stems at 0.9 peaked at 2.6 together and lost
    the balance). One part at a time: an hour of eight parts would not fit in memory at once."""
    with _GAINS_LOCK:
        gains = _GAINS.get((tuple(parts), duration, str(soundfont), fs))
    if gains is None:  # the mix was not rendered just before (write_outputs renders it first)
        audio, boost = _balanced(parts, duration, soundfont, fs)
        gains = (peak_gain(audio), boost)
    gain, boost = gains
    for part in parts:
        lifted = boost if part.name == "lead" else 1.0
        audio = dc_blocked(render((part,), duration, fs=fs, soundfont=soundfont), fs)
        audio *= gain * lifted
        yield _faded(audio, fs)


#: The peak gains and lead boosts of the last mixes :func:`synthesize` rendered, so their stems need no
#: second render; locked, as the page composes for several visitors at once.
_GAINS: OrderedDict[tuple, tuple[float, float]] = OrderedDict()
_GAINS_LOCK = threading.Lock()


def _remember_gain(key: tuple, gain: tuple[float, float]) -> None:
    with _GAINS_LOCK:
        _GAINS[key] = gain
        _GAINS.move_to_end(key)
        while len(_GAINS) > 8:
            _GAINS.popitem(last=False)


def peak_gain(audio: np.ndarray) -> float:
    """The factor that brings ``audio``'s true peak ((frames, channels)) to :data:`PEAK` (1 for silence)."""
    peak = true_peak(audio)
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
