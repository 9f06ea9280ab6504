"""Small synthetic media for tests and benchmarks, written with PyAV.

A clip is a list of :class:`Shot`; each shot has a frame count, a base colour and a
motion amount, so its cut frames, brightness, saturation and motion are known by
construction. Import it from any test (pytest puts ``tests/`` on ``sys.path``)::

    from mediagen import Shot, make_clip, cut_frames

    shots = [Shot(25, (200, 40, 40), motion=1.0), Shot(25, (30, 30, 30))]
    make_clip(tmp_path / "a.mp4", shots=shots, audio="percussion")
    cut_frames(shots)  # [25]: index of the first frame of every shot after the first

API: :class:`Shot`, :class:`KnownClip`, :func:`make_clip`, :func:`make_audio_file`, :func:`cut_frames`,
:func:`tone`, :func:`drone`, :func:`percussion`, :func:`corrupt_copy`, :func:`sideways_copy`,
:func:`boxed_copy`, :func:`grainy_copy`, :func:`strobed_copy`, :class:`Take`, :func:`make_takes`,
:func:`take_cut_frames`, :func:`textured_scene`, :func:`handheld`, :func:`flashed_copy`, :func:`held_copy`,
:func:`video_packets`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Literal

import av
import cv2
import numpy as np

#: Friendly codec names -> FFmpeg encoder names.
VIDEO_ENCODERS = {"h264": "libx264", "hevc": "libx265", "vp9": "libvpx-vp9", "vp8": "libvpx", "mpeg4": "mpeg4"}
AUDIO_ENCODERS = {"aac": "aac", "mp3": "libmp3lame", "ac3": "ac3", "opus": "libopus", "vorbis": "libvorbis"}
#: Codec of an audio-only file (:func:`make_audio_file`) by suffix: what a reader expects inside that container
#: (AAC written into a .wav read as 0.23 s of a 3 s file, and soundfile refused it).
AUDIO_FILE_CODECS = {".wav": "pcm_s16le", ".flac": "flac", ".mp3": "mp3", ".opus": "opus", ".ogg": "vorbis",
                     ".m4a": "aac", ".aac": "aac"}
#: Audio codec picked when ``audio_codec`` is None, by container suffix.
DEFAULT_AUDIO = {".mp4": "aac", ".mov": "aac", ".mkv": "aac", ".avi": "mp3", ".webm": "opus", ".m4a": "aac"}

AudioSpec = Literal["none", "drone", "percussion"] | np.ndarray


@dataclass(frozen=True)
class Shot:
    """One shot: ``frames`` frames of a scene in base colour ``color`` (RGB 0..255).

    The scene is the flat base colour with a few darker/lighter rectangles on it.
    ``motion`` in [0, 1] scales how fast the rectangles move and how much per-frame
    noise there is (0: a perfectly still picture). Brightness and saturation are those
    of ``color``; a grey colour gives saturation 0.
    """

    frames: int
    color: tuple[int, int, int] = (128, 128, 128)
    motion: float = 0.0


@dataclass(frozen=True)
class KnownClip:
    """A generated clip and what is known about it by construction."""

    path: Path
    shots: tuple[Shot, ...]
    fps: int
    has_audio: bool

    @property
    def cut_frames(self) -> list[int]:
        return cut_frames(self.shots)

    @property
    def cut_times(self) -> list[float]:
        return [f / self.fps for f in self.cut_frames]

    @property
    def duration(self) -> float:
        return sum(s.frames for s in self.shots) / self.fps


def cut_frames(shots: Sequence[Shot]) -> list[int]:
    """Index of the first frame of every shot after the first: the true cut frames."""
    return [int(x) for x in np.cumsum([s.frames for s in shots])[:-1]]


def _render_shot(shot: Shot, index: int, size: tuple[int, int], rng: np.random.Generator):
    """Yield the RGB frames of one shot."""
    w, h = size
    base = np.array(shot.color, dtype=np.float32)
    # Four rectangles, 1/6 of the frame each, half darker and half lighter than the base
    # so the mean brightness stays near the base colour.
    srng = np.random.default_rng(1000 + index)
    rw, rh = w // 6, h // 6
    pos = srng.uniform([0, 0], [w - rw, h - rh], size=(4, 2))
    vel = srng.uniform(-1, 1, size=(4, 2)) * np.array([w, h]) * 0.04  # pixels per frame at motion=1
    tints = [0.55, 1.45, 0.55, 1.45]
    rects = [np.clip(base * t + (20 if t > 1 else 0), 0, 255).astype(np.uint8) for t in tints]
    background = np.empty((h, w, 3), dtype=np.uint8)
    background[:] = np.clip(base, 0, 255).astype(np.uint8)
    for f in range(shot.frames):
        img = background.copy()
        for k in range(4):
            x, y = pos[k] + vel[k] * f * shot.motion
            x = int(x % (w - rw))
            y = int(y % (h - rh))
            img[y : y + rh, x : x + rw] = rects[k]
        if shot.motion > 0:
            # Per-frame noise in 4x4 blocks (codecs keep it; it reads as busy motion).
            small = rng.normal(0.0, 25.0 * shot.motion, size=(-(-h // 4), -(-w // 4)))
            up = np.clip(small, 0, 255).astype(np.uint8), np.clip(-small, 0, 255).astype(np.uint8)
            plus, minus = (cv2.cvtColor(cv2.resize(x, (w, h), interpolation=cv2.INTER_NEAREST), cv2.COLOR_GRAY2RGB)
                        for x in up)
            img = cv2.subtract(cv2.add(img, plus), minus)  # saturating uint8 arithmetic
        yield img


def tone(freqs: Sequence[float], seconds: float, *, sample_rate: int = 44100, amplitude: float = 0.1) -> np.ndarray:
    """A sum of sines (float32 mono), peak ``amplitude``."""
    t = np.arange(round(seconds * sample_rate)) / sample_rate
    y = sum(np.sin(2 * np.pi * f * t) for f in freqs)
    y = y / max(1, len(freqs)) * amplitude
    return np.asarray(y, dtype=np.float32)


def drone(seconds: float, *, sample_rate: int = 44100) -> np.ndarray:
    """A quiet, steady low drone (A2 + E3, peak 0.05): low arousal."""
    return tone([110.0, 164.8], seconds, sample_rate=sample_rate, amplitude=0.05)


def percussion(seconds: float, *, sample_rate: int = 44100, bpm: float = 150.0, seed: int = 0) -> np.ndarray:
    """Loud, fast percussion: a noise hit with a low thump every eighth note at ``bpm``.

    Peak about 0.9, five hits a second at 150 BPM: high arousal.
    """
    rng = np.random.default_rng(seed)
    n = round(seconds * sample_rate)
    y = np.zeros(n, dtype=np.float32)
    step = int(sample_rate * 60.0 / bpm / 2)
    hit_len = min(step, int(0.12 * sample_rate))
    t = np.arange(hit_len) / sample_rate
    env = np.exp(-t * 35.0)
    for i, start in enumerate(range(0, n, step)):
        m = min(hit_len, n - start)
        noise = rng.uniform(-1, 1, m) * env[:m] * (0.7 if i % 2 else 0.5)
        thump = np.sin(2 * np.pi * 60 * t[:m]) * env[:m] * (0.5 if i % 2 == 0 else 0.0)
        y[start : start + m] += (noise + thump).astype(np.float32)
    return np.clip(y, -0.95, 0.95)


def _audio_samples(audio: AudioSpec, seconds: float, sample_rate: int) -> np.ndarray | None:
    if isinstance(audio, np.ndarray):
        return np.asarray(audio, dtype=np.float32).reshape(-1)
    if audio == "none":
        return None
    if audio == "drone":
        return drone(seconds, sample_rate=sample_rate)
    if audio == "percussion":
        return percussion(seconds, sample_rate=sample_rate)
    raise ValueError(f"`audio` must be 'none', 'drone', 'percussion' or an array (received {audio!r})")


def _add_audio_stream(container, codec: str, sample_rate: int):
    name = AUDIO_ENCODERS.get(codec, codec)
    if name == "libopus":
        sample_rate = 48000  # Opus only runs at 48 kHz (and a few lower rates)
    stream = container.add_stream(name, rate=sample_rate)
    stream.layout = "mono"
    return stream, sample_rate


def _encode_audio(container, stream, samples: np.ndarray, src_rate: int) -> None:
    """Encode mono float32 ``samples`` (at ``src_rate``) in 1024-sample frames."""
    resampler = av.AudioResampler(
        format=stream.codec_context.format, layout="mono", rate=stream.codec_context.sample_rate
    )
    chunk = 1024
    pts = 0
    for start in range(0, samples.size, chunk):
        block = samples[start : start + chunk][None, :]
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(block), format="flt", layout="mono")
        frame.sample_rate = src_rate
        frame.pts = pts
        frame.time_base = Fraction(1, src_rate)
        pts += block.shape[1]
        for rf in resampler.resample(frame):
            container.mux(stream.encode(rf))
    for rf in resampler.resample(None):
        container.mux(stream.encode(rf))
    container.mux(stream.encode(None))


def make_clip(
    path: str | Path,
    *,
    shots: Sequence[Shot],
    fps: int = 25,
    size: tuple[int, int] = (320, 180),
    codec: str = "h264",
    audio: AudioSpec = "none",
    audio_codec: str | None = None,
    sample_rate: int = 44100,
    seed: int = 0,
) -> Path:
    """Write a clip of ``shots`` at ``fps`` and ``size`` (width, height; even numbers).

    ``codec`` is ``h264``, ``hevc``, ``mpeg4``, ``vp9``, ``vp8`` or any FFmpeg encoder
    name; ``audio`` is ``"none"`` (no audio stream at all), ``"drone"``,
    ``"percussion"`` or a mono float array at ``sample_rate`` (any length). The audio
    codec defaults by container (aac for mp4/mov/mkv, mp3 for avi, opus for webm).
    ``shots=[]`` writes a container with a video stream and no frames. Returns ``path``.
    """
    path = Path(path)
    rng = np.random.default_rng(seed)
    n_frames = sum(s.frames for s in shots)
    seconds = n_frames / fps
    samples = _audio_samples(audio, seconds, sample_rate)
    with av.open(str(path), mode="w") as container:
        vstream = container.add_stream(VIDEO_ENCODERS.get(codec, codec), rate=fps)
        vstream.width, vstream.height = size
        vstream.pix_fmt = "yuv420p"
        if vstream.codec_context.name == "libx264":
            vstream.options = {"preset": "ultrafast"}
        elif vstream.codec_context.name == "libx265":
            vstream.options = {"preset": "ultrafast", "x265-params": "log-level=error"}
        elif vstream.codec_context.name.startswith("libvpx"):
            vstream.options = {"deadline": "realtime", "cpu-used": "8"}
        elif vstream.codec_context.name == "mpeg4":
            vstream.bit_rate = 2_000_000
        astream = None
        if samples is not None:
            acodec = audio_codec or DEFAULT_AUDIO.get(path.suffix.lower(), "aac")
            astream, _ = _add_audio_stream(container, acodec, sample_rate)
        container.start_encoding()  # writes the header even when there are no frames
        for i, shot in enumerate(shots):
            for img in _render_shot(shot, i, size, rng):
                container.mux(vstream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
        container.mux(vstream.encode(None))
        if astream is not None and samples is not None:
            _encode_audio(container, astream, samples, sample_rate)
    return path


def make_audio_file(
    path: str | Path,
    *,
    audio: AudioSpec = "drone",
    seconds: float = 2.0,
    codec: str | None = None,
    sample_rate: int = 44100,
) -> Path:
    """An audio-only file (no video stream), e.g. ``.m4a`` (aac) or ``.mp3``; ``codec`` None: the
    suffix's own (:data:`AUDIO_FILE_CODECS`), so a ``.wav`` holds PCM."""
    path = Path(path)
    samples = _audio_samples(audio, seconds, sample_rate)
    if samples is None:
        raise ValueError("an audio-only file needs audio (received 'none')")
    acodec = codec or AUDIO_FILE_CODECS.get(path.suffix.lower())
    if acodec is None:
        known = ", ".join(sorted(AUDIO_FILE_CODECS))
        raise ValueError(f"no default audio codec for {path.suffix!r} (known: {known}): pass codec=")
    with av.open(str(path), mode="w") as container:
        stream, _ = _add_audio_stream(container, acodec, sample_rate)
        _encode_audio(container, stream, samples, sample_rate)
    return path


def spoken(text: str, *, sample_rate: int = 44100) -> np.ndarray | None:
    """``text`` said by espeak-ng (Debian package), mono float32 at ``sample_rate``; None without espeak-ng."""
    import shutil
    import subprocess
    import tempfile

    import soundfile as sf

    if shutil.which("espeak-ng") is None:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "said.wav"
        subprocess.run(["espeak-ng", "-w", str(wav), text], check=True, capture_output=True, timeout=60)
        audio, sr = sf.read(wav, dtype="float32")
    n = round(audio.size * sample_rate / sr)
    return np.interp(np.arange(n) * sr / sample_rate, np.arange(audio.size), audio).astype(np.float32)


def talking_clip(path: str | Path, lines: Sequence[tuple[float, str]], *, shots: Sequence[Shot],
                 fps: int = 25, sample_rate: int = 44100) -> tuple[Path, tuple[tuple[float, float], ...]] | None:
    """A clip of ``shots`` whose sound is faint room noise with each ``(start s, sentence)`` of ``lines``
    said over it (at half scale); returns the clip and where each sentence is (s). None without espeak-ng."""
    seconds = sum(s.frames for s in shots) / fps
    sound = np.random.default_rng(0).normal(0.0, 0.003, round(seconds * sample_rate)).astype(np.float32)
    spans = []
    for start, text in lines:
        said = spoken(text, sample_rate=sample_rate)
        if said is None:
            return None
        i = round(start * sample_rate)
        said = said[: sound.size - i] * 0.5
        sound[i : i + said.size] += said
        spans.append((start, start + said.size / sample_rate))
    return make_clip(path, shots=shots, fps=fps, audio=sound, sample_rate=sample_rate), tuple(spans)


def corrupt_copy(
    src: str | Path, dst: str | Path, *, mode: Literal["truncate", "garble"] = "truncate", keep: float = 0.3,
    seed: int = 0,
) -> Path:
    """Copy ``src`` to ``dst`` damaged: ``truncate`` keeps the first ``keep`` share of the
    bytes; ``garble`` keeps the first 64 bytes and overwrites everything after them with
    random bytes (a file that still starts like a video but is not one)."""
    data = bytearray(Path(src).read_bytes())
    if mode == "truncate":
        data = data[: max(1, int(len(data) * keep))]
    elif mode == "garble":
        rng = np.random.default_rng(seed)
        data[64:] = rng.integers(0, 256, len(data) - 64, dtype=np.uint8).tobytes()
    else:
        raise ValueError(f"`mode` must be 'truncate' or 'garble' (received {mode!r})")
    dst = Path(dst)
    dst.write_bytes(bytes(data))
    return dst


def sideways_copy(src: str | Path, dst: str | Path, *, degrees: int = 90) -> Path:
    """Copy ``src``'s picture (H.264, no sound) stored turned ``degrees`` clockwise, with a display
    rotation of ``degrees`` counter-clockwise that shows it upright again: what a phone writes
    when it films held upright (players, FFmpeg and browsers show it as ``src``)."""
    turns = {90: -1, 180: 2, 270: 1}[degrees]  # np.rot90's counter-clockwise quarter turns
    with av.open(str(src)) as a, av.open(str(dst), mode="w") as b:
        vs = a.streams.video[0]
        images = [np.ascontiguousarray(np.rot90(f.to_ndarray(format="rgb24"), turns)) for f in a.decode(vs)]
        out = b.add_stream("libx264", rate=vs.average_rate)
        out.height, out.width = images[0].shape[:2]
        out.pix_fmt, out.options = "yuv420p", {"preset": "ultrafast"}
        out.set_display_rotation(degrees)
        for img in images:
            b.mux(out.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
        b.mux(out.encode(None))
    return Path(dst)


def boxed_copy(src: str | Path, dst: str | Path, *, size: tuple[int, int] = (320, 180)) -> Path:
    """Copy ``src``'s picture (H.264, no sound) centred on black in a frame of ``size`` (width, height):
    letterboxed when ``src`` is wider than ``size``'s aspect, pillarboxed when narrower."""
    w, h = size
    with av.open(str(src)) as a, av.open(str(dst), mode="w") as b:
        vs = a.streams.video[0]
        out = b.add_stream("libx264", rate=vs.average_rate)
        out.width, out.height = w, h
        out.pix_fmt, out.options = "yuv420p", {"preset": "ultrafast"}
        for f in a.decode(vs):
            img = f.to_ndarray(format="rgb24")
            top, left = (h - img.shape[0]) // 2, (w - img.shape[1]) // 2
            boxed = np.zeros((h, w, 3), np.uint8)
            boxed[top : top + img.shape[0], left : left + img.shape[1]] = img
            b.mux(out.encode(av.VideoFrame.from_ndarray(boxed, format="rgb24")))
        b.mux(out.encode(None))
    return Path(dst)


def video_packets(path: str | Path) -> list[bytes]:
    """The bytes of every packet of the first video stream: equal lists mean the picture was copied,
    not re-encoded (a re-encode to the same codec keeps its name and frame count)."""
    with av.open(str(path)) as c:
        return [bytes(p) for p in c.demux(c.streams.video[0]) if p.size]


def grainy_copy(src: str | Path, dst: str | Path, *, sd: float = 30.0, seed: int = 0) -> Path:
    """Copy ``src``'s picture (H.264, no sound) with heavy film grain: fresh Gaussian noise of ``sd`` levels
    in every frame, mostly in luma with a third of it per channel (the chroma speckle of a high-ISO sensor)."""
    rng = np.random.default_rng(seed)
    with av.open(str(src)) as a, av.open(str(dst), mode="w") as b:
        vs = a.streams.video[0]
        out = b.add_stream("libx264", rate=vs.average_rate)
        out.width, out.height = vs.codec_context.width, vs.codec_context.height
        out.pix_fmt, out.options = "yuv420p", {"preset": "ultrafast"}
        for f in a.decode(vs):
            img = f.to_ndarray(format="rgb24").astype(np.float32)
            img += rng.normal(0.0, sd, (*img.shape[:2], 1)) + rng.normal(0.0, sd / 3, img.shape)
            b.mux(out.encode(av.VideoFrame.from_ndarray(np.clip(img, 0, 255).astype(np.uint8), format="rgb24")))
        b.mux(out.encode(None))
    return Path(dst)


def strobed_copy(src: str | Path, dst: str | Path, *, period: int = 16, lit: int = 8) -> Path:
    """Copy ``src``'s picture (H.264, no sound) under a flashing light: the first ``lit`` frames of every
    ``period`` get white light added (``0.6 * pixel + 90``: brighter and paler, highlights not blown out)."""
    with av.open(str(src)) as a, av.open(str(dst), mode="w") as b:
        vs = a.streams.video[0]
        out = b.add_stream("libx264", rate=vs.average_rate)
        out.width, out.height = vs.codec_context.width, vs.codec_context.height
        out.pix_fmt, out.options = "yuv420p", {"preset": "ultrafast"}
        for i, f in enumerate(a.decode(vs)):
            img = f.to_ndarray(format="rgb24")
            if i % period < lit:
                img = np.clip(img.astype(np.float32) * 0.6 + 90.0, 0, 255).astype(np.uint8)
            b.mux(out.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
        b.mux(out.encode(None))
    return Path(dst)


# --- textured scenes seen through a moving frame (jump cuts), blown-out flashes ---------------------


@dataclass(frozen=True)
class Take:
    """``frames`` frames of textured scene ``scene`` (a seed: equal seeds, one scene) framed ``shift`` of the
    frame width right of centre and zoomed in by ``zoom``, drifting ``drift`` pixels a frame to the right (a slow
    pan). Two takes of one scene with a small ``shift`` between them make a jump cut; of two scenes, a hard cut."""

    frames: int
    scene: int = 0
    shift: float = 0.0
    zoom: float = 1.0
    drift: float = 0.0
    #: scenes of one ``look`` (a seed) share their base colour: two different places that look alike at a glance
    look: int | None = None


def textured_scene(seed: int, size: tuple[int, int], *, look: int | None = None) -> np.ndarray:
    """An RGB picture ``size`` (width, height) of detail at every scale: coloured noise summed over octaves
    from a quarter of the picture down to 4 pixels, with a few sharp-edged blocks (walls, windows). Scenes of
    one ``look`` have one base colour (else each seed draws its own)."""
    w, h = size
    rng = np.random.default_rng(5000 + seed)
    base = np.random.default_rng(9000 + look).uniform(70, 170, 3) if look is not None else None
    img = np.zeros((h, w, 3), np.float32)
    for cell, amp in ((w // 4, 60.0), (w // 16, 35.0), (16, 25.0), (4, 15.0)):
        grid = rng.normal(0.0, 1.0, (max(2, h // cell + 2), max(2, w // cell + 2), 3)).astype(np.float32)
        img += amp * cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC)
    drawn = rng.uniform(70, 170, 3)
    img += (drawn if base is None else base).astype(np.float32)
    for _ in range(6):
        x, y = int(rng.integers(0, w - w // 8)), int(rng.integers(0, h - h // 8))
        bh, bw = int(rng.integers(h // 10, h // 4)), int(rng.integers(w // 12, w // 5))
        img[y : y + bh, x : x + bw] += rng.uniform(-60, 60, 3)
    return np.clip(img, 0, 255).astype(np.uint8)


def handheld(frames: int, *, sd: float, kind: str = "smooth", width: int = 320, seed: int = 0) -> np.ndarray:
    """A handheld camera's offsets ``(frames, 2)`` (x, y pixels) for :func:`make_takes`: ``"jitter"`` an
    independent random position every frame, ``"smooth"`` that jitter low-pass filtered (Gaussian, sigma 3
    frames: a hand's sway), ``"walk"`` a walker's bounce (up-down at 2 steps a second, side to side at 1, at
    25 fps) with a little smooth sway; the x offsets have a standard deviation of ``sd`` of the frame width."""
    rng = np.random.default_rng(7000 + seed)
    if kind not in ("jitter", "smooth", "walk"):
        raise ValueError(f"unknown handheld kind {kind!r}")
    raw = rng.normal(0.0, 1.0, (frames, 2))
    if kind != "jitter":
        taps = np.exp(-0.5 * (np.arange(-9, 10) / 3.0) ** 2)
        raw = np.stack([np.convolve(np.pad(c, 9, mode="reflect"), taps / taps.sum(), "valid") for c in raw.T], 1)
    if kind == "walk":
        t = np.arange(frames) / 25.0
        phase = rng.uniform(0, 2 * np.pi)
        raw = 0.3 * raw / raw.std(0) + np.stack([np.sin(2 * np.pi * t + phase), np.abs(np.sin(2 * np.pi * t + phase))
                                                 * 2.0 - 1.0], 1)
    return raw / raw[:, 0].std() * sd * width


def make_takes(path: str | Path, takes: Sequence[Take], *, fps: int = 25, size: tuple[int, int] = (320, 180),
               shake: np.ndarray | None = None) -> Path:
    """Write ``takes`` one after another (H.264, no sound): each frame a view of its take's scene (see
    :class:`Take`), cut out of a picture a third larger than the frame so that shifts and drift stay inside it.
    ``shake`` (x, y pixels per frame of the clip, :func:`handheld`) moves the view further: a handheld camera."""
    w, h = size
    big = (w * 4 // 3, h * 4 // 3)
    scenes = {t.scene: textured_scene(t.scene, big, look=t.look) for t in takes}
    n = 0
    with av.open(str(path), mode="w") as container:
        out = container.add_stream("libx264", rate=fps)
        out.width, out.height = w, h
        out.pix_fmt, out.options = "yuv420p", {"preset": "ultrafast"}
        for t in takes:
            for f in range(t.frames):
                dx, dy = (0.0, 0.0) if shake is None else shake[n]
                n += 1
                cx, cy = big[0] / 2 + t.shift * w + t.drift * f + dx, big[1] / 2 + dy
                m = np.float32([[t.zoom, 0, w / 2 - t.zoom * cx], [0, t.zoom, h / 2 - t.zoom * cy]])
                img = cv2.warpAffine(scenes[t.scene], m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
                container.mux(out.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
        container.mux(out.encode(None))
    return Path(path)


def take_cut_frames(takes: Sequence[Take]) -> list[int]:
    """The first frame of every take after the first: hard cuts and jump cuts alike."""
    return [int(x) for x in np.cumsum([t.frames for t in takes])[:-1]]


def flashed_copy(src: str | Path, dst: str | Path, *, at: Sequence[int], length: int = 1, ghost: float = 0.0) -> Path:
    """Copy ``src``'s picture (H.264, no sound) with a white flash of ``length`` frames starting at each frame of
    ``at``: the picture blown out to ``ghost * pixel + (1 - ghost) * 255`` (0: pure white; 0.2: a faint trace of
    the picture left, as a photographer's flash leaves), the last frame of a longer flash a little less so."""
    starts = set(at)
    with av.open(str(src)) as a, av.open(str(dst), mode="w") as b:
        vs = a.streams.video[0]
        out = b.add_stream("libx264", rate=vs.average_rate)
        out.width, out.height = vs.codec_context.width, vs.codec_context.height
        out.pix_fmt, out.options = "yuv420p", {"preset": "ultrafast"}
        left = 0
        for i, f in enumerate(a.decode(vs)):
            img = f.to_ndarray(format="rgb24")
            if i in starts:
                left = length
            if left:
                g = ghost if left > 1 or length == 1 else min(1.0, ghost + 0.15)
                img = np.clip(img.astype(np.float32) * g + (1.0 - g) * 255.0, 0, 255).astype(np.uint8)
                left -= 1
            b.mux(out.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
        b.mux(out.encode(None))
    return Path(dst)


def held_copy(src: str | Path, dst: str | Path, *, hold: dict[int, float], audio: AudioSpec = "none") -> Path:
    """Copy ``src``'s picture (H.264) with variable frame rate, as a screen recording or a slideshow stores a
    still: frame ``i`` of ``hold`` is written once and stays on screen ``hold[i]`` seconds, every later frame
    that much later. ``audio`` (as in :func:`make_clip`) runs over the whole new length."""
    tb = Fraction(1, 1000)
    with av.open(str(src)) as a:
        vs = a.streams.video[0]
        period = 1.0 / float(vs.average_rate)
        frames = [f.to_ndarray(format="rgb24") for f in a.decode(vs)]
    times = np.cumsum([0.0] + [hold.get(i, period) for i in range(len(frames) - 1)])
    samples = _audio_samples(audio, float(times[-1]) + period, 44100)
    with av.open(str(dst), mode="w") as b:
        out = b.add_stream("libx264", rate=round(1.0 / period))
        out.width, out.height = frames[0].shape[1], frames[0].shape[0]
        out.pix_fmt, out.options, out.codec_context.time_base = "yuv420p", {"preset": "ultrafast"}, tb
        astream = _add_audio_stream(b, "aac", 44100)[0] if samples is not None else None
        for img, t in zip(frames, times, strict=True):
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts, frame.time_base = round(t * 1000), tb
            b.mux(out.encode(frame))
        b.mux(out.encode(None))
        if astream is not None and samples is not None:
            _encode_audio(b, astream, samples, 44100)
    return Path(dst)
