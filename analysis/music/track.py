"""Analyse one music track (audio or MIDI) into an emotion arc, tempo, key, loudness and an embedding.

``analyze_track("song.ogg")`` reads wav/flac/ogg with soundfile and mp3/m4a (or
anything soundfile refuses) with PyAV; ``.mid``/``.midi`` with pretty_midi. Audio goes
through :mod:`analysis.music.audio`, MIDI through :mod:`analysis.music.symbolic`; both
produce the same :class:`~analysis.music.symbolic.MusicFeatures`, so arcs and embeddings of
the two kinds compare directly.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from analysis.arc import EmotionArc, grid
from analysis.errors import MediaError, ParameterError, as_path
from analysis.jit import load_librosa
from analysis.media.buffers import GrowingRows
from analysis.media.hashing import content_hash
from analysis.music.filetags import FileTags, read_tags
from analysis.music.formats import AUDIO_SUFFIXES, AV_FIRST, MIDI_SUFFIXES, header_frames
from analysis.music.spectra import Progress, within
from analysis.music.symbolic import MusicFeatures

if TYPE_CHECKING:
    import av

log = logging.getLogger(__name__)


#: Names of the embedding dimensions, in order. Every value lies in [-1, 1]:
#: 0-3 mean and spread of the arc; 4-5 its drift (mean of the last third minus the
#: first, halved); 6-11 the track means of the music cues of
#: :func:`analysis.music.symbolic.music_cues` (mode +1 major, consonance, register, onset
#: density, tempo, dynamics).
EMBEDDING_DIMS = (
    "valence_mean", "arousal_mean", "valence_std", "arousal_std", "valence_drift", "arousal_drift",
    "mode", "consonance", "register", "density", "tempo", "dynamics",
)


@dataclass(frozen=True, eq=False)
class TrackAnalysis:
    """One analysed track. ``key`` like "A minor"; ``loudness`` in dBFS (MIDI: the
    level its render would have, from the velocity calibration of the audio estimator)."""

    path: Path
    kind: str  # "audio" | "midi"
    duration: float
    arc: EmotionArc
    tempo: float
    key: str
    mode: str
    loudness: float
    embedding: np.ndarray  # float32, len(EMBEDDING_DIMS)
    checksum: str
    #: What the file's own tags name it (:mod:`analysis.music.filetags`); None where it has no such tag.
    title: str | None = None
    artist: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "kind": self.kind,
            "duration": round(self.duration, 4),
            "tempo": round(self.tempo, 3),
            "key": self.key,
            "mode": self.mode,
            "loudness": round(self.loudness, 3),
            "embedding": [round(float(x), 6) for x in self.embedding],
            "checksum": self.checksum,
            "arc": self.arc.to_dict(),
            "title": self.title,
            "artist": self.artist,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrackAnalysis:
        try:
            return cls(
                path=Path(data["path"]),
                kind=str(data["kind"]),
                duration=float(data["duration"]),
                arc=EmotionArc.from_dict(data["arc"]),
                tempo=float(data["tempo"]),
                key=str(data["key"]),
                mode=str(data["mode"]),
                loudness=float(data["loudness"]),
                embedding=np.asarray(data["embedding"], dtype=np.float32),
                checksum=str(data["checksum"]),
                title=_opt_str(data.get("title")),
                artist=_opt_str(data.get("artist")),
            )
        except KeyError as err:
            raise ParameterError(f"track data lacks the key {err.args[0]!r}") from None


def _opt_str(value: object) -> str | None:
    return None if value is None else str(value)


def embedding(arc: EmotionArc, features: MusicFeatures) -> np.ndarray:
    """The static embedding of :data:`EMBEDDING_DIMS` (same definition for audio and MIDI)."""
    v, a = arc.valence, arc.arousal
    third = max(1, len(v) // 3)
    cues = features.cues()
    sounding = features.velocity > 0
    m = lambda x: float(np.mean(x[sounding])) if sounding.any() else 0.0  # noqa: E731
    vec = [
        v.mean(), a.mean(), v.std(), a.std(),
        (v[-third:].mean() - v[:third].mean()) / 2, (a[-third:].mean() - a[:third].mean()) / 2,
        m(cues["mode"]), m(cues["consonance"]), m(cues["register"]),
        m(cues["density"]), m(cues["tempo"]), m(cues["velocity"]),
    ]
    return np.clip(np.asarray(vec, dtype=np.float32), -1.0, 1.0)


#: A jump in the decoded frames' times longer than this (s) is filled with silence, so that the
#: music after a skipped packet stays where it was in time.
GAP_S = 0.05


#: A file PyAV decodes this much shorter than its stream announces (seconds, and share of the announced
#: length) was cut off, as an MP3 download stopped half-way whose Xing header still counts every frame.
#: Looser than the WAV check: a VBR MP3 without that header has a length FFmpeg only estimates.
AV_CUT_S, AV_CUT_SHARE = 0.5, 0.05


def _load_av(path: Path, sr: int, *, mono: bool = True) -> np.ndarray:
    """Samples by PyAV at rate ``sr``: ``(n,)`` mono, or with ``mono=False`` ``(channels, n)`` (a mono
    file gives one channel, more than two are mixed down to stereo). A packet that does not decode (a
    bad rip, a damaged download) is skipped with its time kept as silence, as the video decoder does,
    instead of refusing the whole track.

    The time is kept where frames carry their own times (M4A, Matroska, Ogg through PyAV); a raw MP3
    stream's times are counted frame by frame, so after a damaged MP3 stretch the music comes that
    much early (0.8 s for 3 kB of garbage at 128 kb/s).
    """
    import av

    from analysis.media.decode import MAX_BAD_PACKETS
    from analysis.media.decode import PACKET_ERRORS as errors
    from analysis.media.probe import reason

    try:
        container = av.open(str(path))
    except (*errors, OSError, UnicodeDecodeError) as err:
        raise MediaError(path, f"is not readable audio ({reason(err)})") from None
    fed, start, bad, in_row, first_error = 0.0, None, 0, 0, ""  # fed: seconds of audio decoded (or filled)
    with container:
        if not container.streams.audio:
            raise MediaError(path, "has no audio stream")
        stream = container.streams.audio[0]
        announced = float(stream.duration * stream.time_base) if stream.duration and stream.time_base else None
        width = 1 if mono or stream.channels < 2 else 2
        buf = GrowingRows(_announced(container, stream, sr), np.float32)  # rows: sample frames of width channels
        resampler = av.AudioResampler(format="fltp", layout="mono" if width == 1 else "stereo", rate=sr)
        try:
            for packet in container.demux(stream):
                try:
                    frames = packet.decode()
                    out = [(f.time, f.samples / (f.sample_rate or sr), resampler.resample(f)) for f in frames]
                except errors as err:
                    bad, in_row, first_error = bad + 1, in_row + 1, first_error or reason(err)
                    if in_row > MAX_BAD_PACKETS:
                        break
                    continue
                in_row = 0
                for t, seconds, resampled in out:
                    if t is not None:  # counted on the decoder's side: the resampler holds a few samples back
                        start = t if start is None else start
                        gap = (t - start) - fed
                        if gap > GAP_S:
                            buf.extend(np.zeros((round(gap * sr), width), np.float32))
                            fed += gap
                    fed += seconds
                    for f in resampled:
                        buf.extend(f.to_ndarray().T)
            for f in resampler.resample(None):
                buf.extend(f.to_ndarray().T)
        except errors as err:  # the demuxer itself gave up: keep what was read
            first_error = first_error or reason(err)
    if not len(buf):
        raise MediaError(path, f"is not readable audio ({first_error or 'no audio decoded'})")
    if bad:
        log.warning("%s: skipped %d undecodable audio packet(s) (%s); their time is kept as silence",
                    path, bad, first_error)
    if announced is not None and announced - fed > max(AV_CUT_S, AV_CUT_SHARE * announced):
        log.warning("%s: decoded %.1f s of the %.1f s its header announces (truncated?)", path, fed, announced)
    samples = buf.array((width,))
    return samples[:, 0] if mono else np.ascontiguousarray(samples.T)


#: Longest stretch of audio :func:`_announced` sets aside ahead of decoding it (seconds): a header that
#: claims days does not ask for more than a machine has.
MAX_RESERVE_S = 3 * 3600.0


def _announced(container: av.container.InputContainer, stream: av.AudioStream, sr: int) -> int:
    """Sample frames to set aside for ``stream`` at rate ``sr`` (:class:`GrowingRows`): its announced
    length and a second more (an encoder's priming samples), so that the samples are written where they
    stay; a minute where nothing is announced."""
    if stream.duration and stream.time_base:
        seconds = float(stream.duration * stream.time_base)
    elif container.duration:
        seconds = container.duration / 1e6  # av.time_base: microseconds
    else:
        seconds = 60.0
    return int(min(seconds, MAX_RESERVE_S) * sr) + sr


def load_audio(path: str | Path, *, sr: int = 22050, mono: bool = True) -> np.ndarray:
    """Float32 samples of an audio file at rate ``sr``: ``(n,)`` mono, or with ``mono=False``
    ``(channels, n)``, one or two channels (PyAV mixes more down to stereo); :class:`MediaError` when
    unreadable or empty. libsndfile reads what it can, PyAV the rest (:func:`_load_av`)."""
    import soundfile as sf

    librosa = load_librosa()

    p = Path(path)
    y: np.ndarray | None = None
    if p.suffix.lower() not in AV_FIRST:
        try:
            if mono:
                y = _read_mono(p, sr)
            else:
                data, file_sr = sf.read(str(p), dtype="float32", always_2d=True)
                _warn_if_cut(p, data.shape[0], file_sr)
                if data.shape[1] <= 2:
                    y = data.T
                    if file_sr != sr and y.shape[-1]:
                        y = librosa.resample(y, orig_sr=file_sr, target_sr=sr)
        except (sf.LibsndfileError, RuntimeError, ValueError):
            y = None
    if y is None:
        y = _load_av(p, sr, mono=mono)
    if y.shape[-1] == 0:
        raise MediaError(p, "has no audio samples (zero length)")
    if not all(np.isfinite(y[..., i : i + BLOCK]).all() for i in range(0, y.shape[-1], BLOCK)):  # no mask of y
        raise MediaError(p, "has non-finite audio samples")
    return np.ascontiguousarray(y, np.float32)


#: Sample frames :func:`_read_mono` decodes at once (6 s at 44.1 kHz): the whole file at its rate and
#: channels, then its mono mix and the resampled mix, took 0.37 GB for 10 minutes of 44.1 kHz stereo.
BLOCK = 1 << 18


def _read_mono(p: Path, sr: int) -> np.ndarray:
    """The mono mix of a file libsndfile reads, at rate ``sr``, decoded, mixed and resampled a block at a
    time: the samples ``librosa.resample(sf.read(p).mean(axis=1), ...)`` gives
    (:func:`~analysis.music.spectra.resample_stream`), holding only the result whole."""
    import soundfile as sf

    from analysis.music.spectra import resample_stream, resampled_length

    read = [0]

    def mixed(f: sf.SoundFile) -> Iterator[np.ndarray]:
        for block in f.blocks(BLOCK, dtype="float32", always_2d=True):
            read[0] += len(block)
            yield block.mean(axis=1)

    with sf.SoundFile(str(p)) as f:
        file_sr, frames = f.samplerate, f.frames
        out = GrowingRows(resampled_length(frames, file_sr, sr) + 1, np.float32)
        for samples in mixed(f) if file_sr == sr else resample_stream(mixed(f), file_sr, sr):
            out.extend(samples)
    _warn_if_cut(p, read[0], file_sr)
    size = resampled_length(read[0], file_sr, sr)
    out.extend(np.zeros(max(0, size - len(out)), np.float32))
    return out.array(())[:size]


def _warn_if_cut(p: Path, frames: int, sr: int) -> None:
    """Warn when a WAV or AIFF holds fewer frames than its header announces (cut off part-way), as the
    video decoder warns of a clip shorter than its container says; what was read is still used."""
    announced = header_frames(p)
    if announced is not None and announced - frames > max(0.1 * sr, 0.01 * announced):
        log.warning("%s: decoded %.1f s of the %.1f s its header announces (truncated?)", p, frames / sr,
                    announced / sr)


def _analyze_midi(p: Path, hop: float) -> tuple[EmotionArc, MusicFeatures, float, str, str, float, float]:
    import pretty_midi

    from analysis.music.audio import CAL_VELOCITY
    from analysis.music.symbolic import estimate_key, midi_features

    try:
        pm = pretty_midi.PrettyMIDI(str(p))
    except Exception as err:  # mido/pretty_midi raise OSError, EOFError, ValueError, KeySignatureError, ...
        raise MediaError(p, f"is not a readable MIDI file ({type(err).__name__}: {err})") from None
    if not any(inst.notes for inst in pm.instruments) or pm.get_end_time() <= 0:
        raise MediaError(p, "has no notes")
    feats = midi_features(pm, hop=hop)
    v, a = feats.va()
    arc = EmotionArc.from_va(grid(float(pm.get_end_time()), hop), v, a)
    try:
        key = estimate_key(pm)
    except ParameterError:
        key = None  # drums only
    times, bpm = pm.get_tempo_changes()
    spans = np.diff(np.append(times, max(pm.get_end_time(), times[-1]))) if len(bpm) else np.zeros(0)
    if len(bpm) and spans.sum() > 0:
        tempo = float(np.average(bpm, weights=spans))
    else:
        tempo = float(bpm[0]) if len(bpm) else 120.0
    sounding = feats.velocity > 0
    vel = float(feats.velocity[sounding].mean()) if sounding.any() else 1.0
    loudness = (vel - CAL_VELOCITY[0]) / CAL_VELOCITY[1]
    key_name, mode = (key.name, key.mode) if key else ("unknown", "unknown")
    return arc, feats, tempo, key_name, mode, loudness, float(pm.get_end_time())


#: Shortest audio catalogued as a track (seconds).
MIN_SECONDS = 0.5


#: Share of an audio track's analysis its decoding takes (10 minutes of 44.1 kHz WAV: 1 s of 100 s here).
DECODE_SHARE = 0.02


def analyze_track(path: str | Path, *, hop: float = 0.5, progress: Progress | None = None) -> TrackAnalysis:
    """Analyse an audio (wav, flac, ogg, mp3, m4a) or MIDI (.mid/.midi) file.

    ``progress`` hears ``(fraction done, stage)`` as the analysis goes, several times a long recording
    (a stretch of it at a time).

    Raises :class:`MediaError` naming the file for a missing, empty, corrupt or
    unsupported file and for one without sound or notes.
    """
    from analysis.music.audio import SR, analyze_audio

    if hop <= 0:
        raise ParameterError(f"`hop` must be positive (received {hop})")
    p = as_path(path)
    if not p.is_file():
        raise MediaError(p, "does not exist or is not a file")
    if p.stat().st_size == 0:
        raise MediaError(p, "is empty (0 bytes)")
    suffix = p.suffix.lower()
    if suffix in MIDI_SUFFIXES:
        arc, feats, tempo, key, mode, loudness, duration = _analyze_midi(p, hop)
        kind = "midi"
        tags = FileTags()
    elif suffix in AUDIO_SUFFIXES:
        if progress is not None:
            progress(0.0, "decoding")
        y = load_audio(p, sr=SR)
        if y.size < MIN_SECONDS * SR:  # a cut-off download or a click: no arc to match, nothing to fit
            raise MediaError(p, f"is too short to be a track ({y.size / SR:.2f} s; at least {MIN_SECONDS:g} s)")
        if max(float(y.max()), -float(y.min())) < 1e-4:  # no |y| copy of a long track
            raise MediaError(p, "is silent (peak below -80 dBFS)")
        res = analyze_audio(y, SR, hop=hop, progress=within(progress, DECODE_SHARE, 1.0))
        arc, feats, tempo, loudness, duration = res.arc, res.features, res.tempo, res.loudness, res.duration
        key, mode = res.key.name, res.key.mode
        kind = "audio"
        tags = read_tags(p)
    else:
        raise MediaError(p, f"is not a supported audio or MIDI file (suffix {suffix or 'none'!r})")
    return TrackAnalysis(
        path=p,
        kind=kind,
        duration=float(duration),
        arc=arc,
        tempo=float(tempo),
        key=key,
        mode=mode,
        loudness=float(loudness),
        embedding=embedding(arc, feats),
        checksum=content_hash(p),
        title=tags.title,
        artist=tags.artist,
    )
