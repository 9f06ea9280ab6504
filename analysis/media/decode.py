"""Decode a clip once: sampled small frames for the sources, every frame for a sink, mono audio.

One demux pass over video and audio with PyAV (FFmpeg inside the wheel, codec
threading on). Every video frame is downscaled by swscale to ``sink_width`` and handed
to an optional ``frame_sink`` (the cut detector needs every frame, at low resolution);
frames at ``sample_fps`` are kept at ``width`` for the affect sources; the audio is
resampled to mono float32. Nothing is decoded twice. Container facts come from
:mod:`analysis.media.probe`.

The audio can also come first, on its own: :func:`decode_audio` decodes only the audio
(the video packets are read, not decoded: a few hundredths of a second for a minute of
720p), so work on it can start at once, and ``decode_report(..., audio=track)`` then
decodes the video alone and reports what the one pass would have.

Bad media never escapes as a decoder traceback: a missing, empty, non-media, corrupt,
zero-length, video-less, single-image or absurdly large file raises :class:`MediaError`
naming the file and the problem, and so does a clip that decodes past ``max_duration``
seconds, whatever its header claims. A file that breaks off part-way (truncated, damaged
packets) gives what could be decoded: each packet that does not decode is skipped and
counted, with a warning in :attr:`Decoded.warnings`.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import av
import cv2
import numpy as np

from analysis.errors import MediaError, ParameterError, is_number
from analysis.media.buffers import GrowingRows
from analysis.media.hdr import hdr_to_sdr, hdr_transfer
from analysis.media.probe import MAX_PIXELS, VideoInfo, main_video, open_media, read_info, reason
from analysis.sources.base import MediaStreams

log = logging.getLogger(__name__)

#: Called with (frame index, time in seconds, image) for every decoded video frame.
FrameSink = Callable[[int, float, np.ndarray], None]

#: Give up after this many undecodable packets in a row (a garbled file, not a glitch).
MAX_BAD_PACKETS = 200
#: What a packet that does not decode raises (PyAV's FFmpeg errors are ValueErrors or OSErrors).
PACKET_ERRORS = (av.error.FFmpegError, ValueError)
#: Audio missing for more than 1/this of a second (a late start, lost packets) is filled with silence,
#: so the sound stays on the picture's clock; shorter jitter of the timestamps is left alone.
GAP_FRACTION = 20
#: Seconds of sound a clip of a single picture needs to be read as that picture held while the sound plays
#: (a cover or a slide under a voice-over); a picture with less, or none, is a still image, not a clip.
MIN_HELD = 1.0


class MediaWarning(UserWarning):
    """A clip could only be read in part (issued by :func:`decode`)."""


@dataclass(frozen=True)
class Decoded:
    """A decoded clip plus the container facts and any warnings about partial reads."""

    media: MediaStreams
    info: VideoInfo
    frame_count: int  # video frames actually decoded (all of them went to the sink)
    warnings: tuple[str, ...]
    #: Packets skipped because they did not decode, by stream type ("video", "audio").
    skipped_packets: tuple[tuple[str, int], ...] = ()


# Limited-range (16..235 / 16..240) to full-range lookup tables for 8-bit YCbCr.
_LIMITED_Y = np.clip((np.arange(256) - 16) * 255.0 / 219.0, 0, 255).round().astype(np.uint8)
_LIMITED_C = np.clip((np.arange(256) - 128) * 255.0 / 224.0 + 128, 0, 255).round().astype(np.uint8)
#: The same as one 3-channel table for cv2.LUT, channel order (Y, Cr, Cb).
_LIMITED_YCC = np.dstack([_LIMITED_Y, _LIMITED_C, _LIMITED_C]).reshape(1, 256, 3)
_AVCOL_RANGE_JPEG = 2


def _plane(frame: av.VideoFrame, i: int, h: int, w: int) -> np.ndarray:
    p = frame.planes[i]
    return np.frombuffer(p, np.uint8).reshape(-1, p.line_size)[:h, :w]


def _fast_small_bgr(frame: av.VideoFrame, target: int) -> np.ndarray | None:
    """A BGR image between ``target`` and ``2 * target`` wide, by strided sampling of the
    8-bit 4:2:0 planes (no filtering), or None when that does not apply.

    Much cheaper than swscale at 720p and above, and the cut detector and the colour
    statistics do not need filtered pixels. Other pixel formats take the swscale path.
    """
    name = frame.format.name
    if name not in ("yuv420p", "yuvj420p"):
        return None
    w, h = frame.width, frame.height
    k = w // (2 * target)
    if k < 1:
        return None
    y = _plane(frame, 0, h, w)[:: 2 * k, :: 2 * k]
    u = _plane(frame, 1, (h + 1) // 2, (w + 1) // 2)[::k, ::k]
    v = _plane(frame, 2, (h + 1) // 2, (w + 1) // 2)[::k, ::k]
    hh, ww = min(y.shape[0], u.shape[0]), min(y.shape[1], u.shape[1])
    ycc = np.dstack([y[:hh, :ww], v[:hh, :ww], u[:hh, :ww]])
    if name == "yuv420p" and getattr(frame, "color_range", 0) != _AVCOL_RANGE_JPEG:
        ycc = cv2.LUT(ycc, _LIMITED_YCC)  # limited (TV) range -> full range
    return cv2.cvtColor(ycc, cv2.COLOR_YCrCb2BGR)  # BT.601


#: ``cv2.rotate`` codes by quarter turns counter-clockwise.
_ROTATIONS = {1: cv2.ROTATE_90_COUNTERCLOCKWISE, 2: cv2.ROTATE_180, 3: cv2.ROTATE_90_CLOCKWISE}


def quarter_turns(frame: av.VideoFrame) -> int:
    """Quarter turns counter-clockwise (0-3) that show ``frame`` as players do: the rotation of its
    display matrix (what a phone writes when it films held upright), to the nearest quarter."""
    degrees = getattr(frame, "rotation", 0) or 0
    return round(float(degrees) / 90.0) % 4


def _scaled_size(w: int, h: int, width: int) -> tuple[int, int]:
    """(width, height) no wider than ``width``, aspect kept, both even."""
    tw = min(width, w)
    th = max(2, round(h * tw / w / 2) * 2)
    return max(2, tw // 2 * 2), th


@dataclass(frozen=True)
class _Options:
    """The checked parameters of one decode pass."""

    sample_fps: float = 5.0
    width: int = 160
    audio_rate: int = 22050
    sink_width: int = 160
    sink_format: str = "bgr"
    max_duration: float | None = None

    def check(self) -> None:
        if self.sample_fps <= 0:
            raise ParameterError(f"`sample_fps` must be positive (received {self.sample_fps})")
        if self.width < 8 or self.sink_width < 8:
            raise ParameterError(
                f"`width` and `sink_width` must be at least 8 (received {self.width}, {self.sink_width})"
            )
        if self.sink_format not in ("bgr", "rgb"):
            raise ParameterError(f"`sink_format` must be 'bgr' or 'rgb' (received {self.sink_format!r})")
        if self.audio_rate < 1000:
            raise ParameterError(f"`audio_rate` must be at least 1000 Hz (received {self.audio_rate})")
        limit = self.max_duration
        if limit is not None and not (is_number(limit) and np.isfinite(limit) and limit > 0):
            raise ParameterError(f"`max_duration` must be a positive number of seconds or None (received {limit!r})")


@dataclass(frozen=True, eq=False)
class AudioTrack:
    """A clip's audio decoded on its own by :func:`decode_audio`, to hand to :func:`decode_report` later.

    ``samples`` is mono float32 at ``sample_rate``, None when the clip has no audio stream
    or none of it decodes; ``warnings`` are what this pass alone would report. The rest
    lets the later video pass report exactly what one pass over both streams would:
    ``packets`` is how many packets (of both streams, in demux order) were read before
    the pass ended, ``bad_packets`` the positions in that order of the audio packets that
    did not decode, ``unresampled`` the decoded audio frames the resampler refused.
    ``video_end`` is where the decoded video will end (seconds, as
    :attr:`MediaStreams.duration`) going by the video packets' timestamps, which the video
    is not decoded for here; None without video timestamps.
    """

    samples: np.ndarray | None
    sample_rate: int
    warnings: tuple[str, ...]
    video_end: float | None
    packets: int
    bad_packets: frozenset[int]
    unresampled: int

    @property
    def skipped_packets(self) -> int:
        """Audio packets (and frames) skipped because they did not decode."""
        return len(self.bad_packets) + self.unresampled


class _Undecodable(ValueError):
    """An audio packet the audio pass already found undecodable (see :class:`AudioTrack`)."""


class _Pass:
    """The state of one demux pass: frames and audio kept so far, clocks, skipped packets.

    Every pass demuxes the video and the audio stream together, so each sees the packets
    in the same order, and decodes those in ``decodes``. A pass for the audio alone
    (:func:`decode_audio`) only notes the video packets' timestamps; a video pass handed an
    :class:`AudioTrack` takes its samples and counts the audio packets that track found
    undecodable where they come. Either way the runs of bad packets, the early stops and
    the skipped counts come out as in one pass decoding both streams.
    """

    def __init__(self, path: Path, info: VideoInfo, opts: _Options, vstream: av.VideoStream,
                 astream: av.AudioStream | None, *, decodes: frozenset[str], track: AudioTrack | None = None,
                 frame_sink: FrameSink | None = None, progress: Callable[[float], None] | None = None) -> None:
        self.path, self.info, self.opts, self.decodes = path, info, opts, decodes
        self.frame_sink, self.progress = frame_sink, progress
        self.turn: int | None = None  # quarter turns counter-clockwise that show the picture upright
        self.size = _scaled_size(info.width, info.height, opts.width)
        self.sink_size = _scaled_size(info.width, info.height, opts.sink_width)
        self.has_audio = astream is not None
        self.track = track if self.has_audio else None
        resample = self.has_audio and "audio" in decodes and self.track is None
        self.resampler = av.AudioResampler(format="flt", layout="mono", rate=opts.audio_rate) if resample else None
        self.v_start = float(vstream.start_time * vstream.time_base) if vstream.start_time is not None else 0.0
        self.fps = info.fps or 25.0
        self.frames = GrowingRows(round(info.duration * opts.sample_fps) + 2 if info.duration > 0 else 256)
        seconds = info.duration + 1.0 if info.duration > 0 else 60.0  # and a second for the mux order
        self.audio = GrowingRows(round(seconds * opts.audio_rate), np.float32)
        self.audio_began = False  # whether a sample (or a chunk trimmed to none) was put
        self.times: list[float] = []
        self.trim = 0  # samples still to drop: the audio stream starts before the picture
        self.n_video = 0
        self.last_t = -1.0
        self.last_gap: float | None = None  # seconds between the last two frames
        self.last_packet_t: float | None = None  # latest video packet time, where video is not decoded
        self.next_sample = 0.0
        self.next_report = 0.0
        self.packets = 0
        self.bad_in_row = 0
        self.bad_packets: set[int] = set()
        self.skipped = {"video": 0, "audio": 0}
        self.unresampled = 0
        self.notes: list[str] = []

    # ---------------------------------------------------------------- the demux loop
    def run(self, container: av.container.InputContainer, streams: list[av.stream.Stream], *,
            until: int | None = None) -> None:
        """Demux and decode every packet (the first ``until``); stops early (with a note) on a garbled
        or broken-off file."""
        try:
            for packet in container.demux(streams):
                if until is not None and self.packets >= until:
                    break
                decoded = self._decode(packet)
                if decoded is None:
                    if self.bad_in_row > MAX_BAD_PACKETS:
                        self.notes.append(f"stopped after {self.bad_in_row} undecodable packets in a row")
                        break
                    continue
                for frame in decoded:
                    if packet.stream.type == "video":
                        self._video(frame)
                    else:
                        self._audio(frame)
        except av.error.FFmpegError as err:  # the demuxer itself gave up (cut-off or garbled container)
            self.notes.append(f"reading stopped early ({reason(err)})")
        self._audio(None)

    def _decode(self, packet: av.Packet) -> list[av.frame.Frame] | None:
        """The packet's frames, or None (counted and logged) when it does not decode."""
        index, kind = self.packets, packet.stream.type
        self.packets += 1
        try:
            if kind not in self.decodes:
                return self._pass_over(packet, index)
            frames = packet.decode()
        except PACKET_ERRORS as err:
            self.bad_in_row += 1
            self.skipped[kind] = self.skipped.get(kind, 0) + 1
            self.bad_packets.add(index)
            if self.bad_in_row == 1 and not isinstance(err, _Undecodable):  # the audio pass logged those
                log.info("%s: skipping an undecodable %s packet (%s)", self.path, kind, reason(err))
            return None
        self.bad_in_row = 0
        return frames

    def _pass_over(self, packet: av.Packet, index: int) -> list[av.frame.Frame]:
        """A packet of the stream this pass does not decode: undecodable if the audio track says
        so; a video packet's time is noted for :attr:`AudioTrack.video_end`."""
        if self.track is not None and index in self.track.bad_packets:
            raise _Undecodable("did not decode in the audio pass")
        self.bad_in_row = 0
        if packet.stream.type == "video" and packet.pts is not None:
            tb = packet.time_base
            t = float(packet.pts) * tb.numerator / tb.denominator - self.v_start  # as Frame.time computes it
            self.last_packet_t = t if self.last_packet_t is None else max(self.last_packet_t, t)
        return []

    # ---------------------------------------------------------------- per frame
    def _check_limit(self, seconds: float) -> None:
        limit = self.opts.max_duration
        if limit is not None and seconds > limit:
            announced = f"{self.info.duration:.1f} s" if self.info.duration > 0 else "no duration"
            raise MediaError(self.path, f"lasts longer than the {limit:g} s limit (decoding stopped at "
                                        f"{seconds:.2f} s; the container announces {announced})")

    def _video(self, frame: av.VideoFrame) -> None:
        t = float(frame.time) - self.v_start if frame.time is not None else self.n_video / self.fps
        if t <= self.last_t:  # missing or repeated timestamps: fall back to frame counting
            t = self.last_t + 1.0 / self.fps
        self._check_limit(t)
        if self.n_video:
            self.last_gap = t - self.last_t
        self.last_t = t
        opts = self.opts
        small = None
        if self.frame_sink is not None:
            small = _fast_small_bgr(frame, opts.sink_width)
            if small is None:
                small = frame.to_ndarray(width=self.sink_size[0], height=self.sink_size[1], format="bgr24",
                                         interpolation="FAST_BILINEAR")
            self.frame_sink(self.n_video, t, small if opts.sink_format == "bgr" else small[..., ::-1])
        if t + 1e-6 >= self.next_sample:
            self.frames.append(self._sample(frame, small))
            self.times.append(t)
            self.next_sample = max(self.next_sample + 1.0 / opts.sample_fps, t - 0.5 / opts.sample_fps)
        self.n_video += 1
        duration = self.info.duration
        if self.progress is not None and duration > 0 and t >= self.next_report:
            self.progress(min(1.0, t / duration))
            self.next_report = t + duration / 50

    def _sample(self, frame: av.VideoFrame, small: np.ndarray | None) -> np.ndarray:
        """The RGB frame kept for the sources, ``width`` wide as the clip is shown (reusing the sink's image
        when it fits): a phone clip stored sideways with a rotation to show it upright is turned upright,
        as players turn it, or the face detector would look for faces lying on their side. An HDR frame
        (PQ or HLG) is converted to SDR as a player shows it (:mod:`analysis.media.hdr`)."""
        if self.turn is None:
            self.turn = quarter_turns(frame)
        trc = hdr_transfer(frame)
        if trc is None and self.turn == 0 and self.opts.width == self.opts.sink_width and small is not None:
            return cv2.cvtColor(small, cv2.COLOR_BGR2RGB)
        if self.turn % 2 == 0:
            w, h = self.size
        else:  # `width` wide once turned: the stored picture scaled to that height
            h, w = _scaled_size(self.info.height, self.info.width, self.opts.width)
        if trc is not None:  # PQ or HLG: as an SDR player shows it, not its HDR code values
            rgb = hdr_to_sdr(frame, trc, w, h)
        else:
            bgr = _fast_small_bgr(frame, w)
            rgb = (cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB) if bgr is not None
                   else frame.to_ndarray(width=w, height=h, format="rgb24", interpolation="AREA"))
        return rgb if self.turn == 0 else cv2.rotate(rgb, _ROTATIONS[self.turn])

    def _audio(self, frame: av.AudioFrame | None) -> None:
        """Resample one audio frame (None: flush the resampler) into the mono samples."""
        if self.resampler is None:
            return
        try:
            resampled = self.resampler.resample(frame)
        except PACKET_ERRORS as err:  # a damaged frame the resampler refuses: skip it like a bad packet
            self.skipped["audio"] += 1
            self.unresampled += 1
            log.info("%s: skipping an audio frame that does not resample (%s)", self.path, reason(err))
            return
        if frame is not None:
            self._fill_to(frame)
        for rf in resampled:
            chunk = rf.to_ndarray().reshape(-1)
            if self.trim:  # sound from before the picture starts
                cut, self.trim = min(self.trim, chunk.size), self.trim - min(self.trim, chunk.size)
                chunk = chunk[cut:]
            self.audio.extend(chunk)
            self.audio_began = True
        self._check_limit(len(self.audio) / self.opts.audio_rate - 1.0)  # a second of slack for the mux order

    def _fill_to(self, frame: av.AudioFrame) -> None:
        """Place ``frame`` at its own time on the picture's clock, as players do: silence for a stream
        that starts late or a stretch of lost packets; sound from before the first picture is dropped."""
        if frame.time is None:
            return
        at = round((float(frame.time) - self.v_start) * self.opts.audio_rate)
        if not self.audio_began and at < 0:
            self.trim = -at
        gap = at - len(self.audio)
        if gap > self.opts.audio_rate // GAP_FRACTION:
            self.audio.extend(np.zeros(gap, np.float32))
            self.audio_began = True

    # ---------------------------------------------------------------- the result
    def _samples(self) -> np.ndarray | None:
        """The mono audio of this pass (or of the audio track it was handed); None when there is none."""
        if self.track is not None:
            return self.track.samples
        return self.audio.array(()) if len(self.audio) else None

    def _notes(self, audio: np.ndarray | None) -> tuple[list[str], tuple[tuple[str, int], ...]]:
        """The notes about the streams read (the video's length aside) and the skipped packets by type."""
        skipped = dict(self.skipped)
        if self.track is not None:
            skipped["audio"] += self.track.unresampled
        counted = tuple((k, n) for k, n in skipped.items() if n)
        notes = list(self.notes)
        if counted:
            counts = " and ".join(f"{n} {k}" for k, n in counted)
            notes.append(f"skipped {counts} packet(s) that did not decode; the rest was analysed")
        if self.has_audio and audio is None:
            notes.append("the audio stream could not be decoded; analysing without audio")
        return notes, counted

    def audio_track(self) -> AudioTrack:
        """What a pass over the audio alone found (see :class:`AudioTrack`)."""
        audio = self._samples()
        notes, _ = self._notes(audio)
        end = None if self.last_packet_t is None else self.last_packet_t + 1.0 / self.fps
        return AudioTrack(samples=audio, sample_rate=self.opts.audio_rate, warnings=tuple(notes), video_end=end,
                          packets=self.packets, bad_packets=frozenset(self.bad_packets), unresampled=self.unresampled)

    def result(self) -> Decoded:
        path, info, opts = self.path, self.info, self.opts
        if self.n_video == 0:
            raise MediaError(path, "contains no decodable video frames (empty, corrupt or truncated)")
        audio = self._samples()
        frame_dt = 1.0 / self.fps
        # the last frame lasts a frame period: the one before it, where the average rate of a variable-rate clip
        # (a screen recording that holds still pictures) would make it last longer than the frames do
        video_end = self.last_t + min(frame_dt, self.last_gap or frame_dt)
        if self.n_video == 1:  # a picture with sound (a cover, a slide under a voice-over) is shown while it plays
            heard = 0.0 if audio is None else audio.size / opts.audio_rate
            if heard < max(2 * frame_dt, MIN_HELD):
                raise MediaError(path, "has no video stream with more than one frame (a still image is not a clip)")
            video_end = min(heard, info.duration) if info.duration > 0 else heard  # not the codec's padding
        notes, skipped = self._notes(audio)
        # The video's own announced length where its header counts frames: a clip whose sound runs on past
        # the picture announces the longer length, and is not truncated.
        announced = info.frame_count / info.fps if info.frame_count > 0 and info.fps > 0 else info.duration
        if announced > 0 and video_end < 0.9 * announced - 1.0:
            notes.append(f"decoded {video_end:.1f} s of the {announced:.1f} s the container announces "
                         "(truncated?)")
        media = MediaStreams(
            path=path,
            duration=float(video_end),
            fps=float(info.fps or self.n_video / max(video_end, frame_dt)),
            frame_times=np.asarray(self.times, dtype=np.float64),
            frames=self.frames.array((self.size[1], self.size[0], 3)),
            audio=audio,
            sample_rate=opts.audio_rate,
        )
        return Decoded(media=media, info=replace(info, rotation=90 * (self.turn or 0)), frame_count=self.n_video,
                       warnings=tuple(notes), skipped_packets=skipped)


def _read(path: Path, opts: _Options, max_pixels: int, *, decodes: frozenset[str], track: AudioTrack | None = None,
          frame_sink: FrameSink | None = None, progress: Callable[[float], None] | None = None,
          until: int | None = None) -> _Pass:
    """Open ``path``, check it, and run one :class:`_Pass` over its video and audio streams
    (over their first ``until`` packets in demux order, when given)."""
    opts.check()
    with open_media(path) as container:
        info = read_info(path, container, max_pixels=max_pixels)
        if opts.max_duration is not None and info.duration > opts.max_duration:
            raise MediaError(path, f"lasts {info.duration:.1f} s; the limit is {opts.max_duration:g} s")
        vstream = main_video(container)
        if "video" in decodes:
            vstream.thread_type = "AUTO"  # frame + slice threads: the decode is the bulk of the work
        astream = container.streams.audio[0] if container.streams.audio else None
        state = _Pass(path, info, opts, vstream, astream, decodes=decodes, track=track, frame_sink=frame_sink,
                      progress=progress)
        state.run(container, [vstream] + ([astream] if astream is not None else []), until=until)
    return state


def decode_audio(
    path: str | Path,
    *,
    audio_rate: int = 22050,
    max_pixels: int = MAX_PIXELS,
    max_duration: float | None = None,
) -> AudioTrack:
    """The mono audio of the clip ``path``, without decoding its video (a small part of the time).

    The same samples, checks and warnings as :func:`decode_report` for the audio: the file
    must be a clip it accepts (a video stream; ``max_duration`` as there). Hand the result to
    ``decode_report(path, audio=...)`` to decode the video without decoding the audio again,
    e.g. to start work on the audio while the video decodes.
    """
    state = _read(Path(path), _Options(audio_rate=audio_rate, max_duration=max_duration), max_pixels,
                  decodes=frozenset({"audio"}))
    return state.audio_track()


def decode_report(
    path: str | Path,
    *,
    sample_fps: float = 5.0,
    width: int = 160,
    audio_rate: int = 22050,
    max_pixels: int = MAX_PIXELS,
    frame_sink: FrameSink | None = None,
    sink_width: int = 160,
    sink_format: str = "bgr",
    progress: Callable[[float], None] | None = None,
    max_duration: float | None = None,
    audio: AudioTrack | None = None,
) -> Decoded:
    """Decode ``path`` in one pass; see the module docstring. Warnings are returned, not issued.

    ``frame_sink`` gets every frame about ``sink_width`` wide (between it and twice it
    for large 4:2:0 video, which is sampled by strides instead of filtered) in
    ``sink_format`` ``"bgr"`` (what OpenCV-based detectors expect) or ``"rgb"``. Sampled
    frames are RGB, about ``width`` wide in the same way. ``progress`` gets the fraction
    of the container duration decoded so far. ``max_duration`` (seconds) refuses a clip
    whose header announces more, and stops decoding with a :class:`MediaError` as soon as
    the video or audio decoded goes past it, whatever the header says.

    ``audio``, what :func:`decode_audio` gave for the same file at ``audio_rate``, is taken
    as the audio instead of decoding it again: the result (``media.audio`` is
    ``audio.samples``, the warnings, the skipped counts) is what decoding both would give.
    Should this pass stop on a garbled stretch before the audio pass did, the audio up to
    that point is decoded again (one pass would not have read the rest).
    """
    path = Path(path)
    opts = _Options(sample_fps, width, audio_rate, sink_width, sink_format, max_duration)  # _read checks it
    if audio is not None and audio.sample_rate != audio_rate:
        raise ParameterError(f"`audio` was decoded at {audio.sample_rate} Hz, not at `audio_rate` {audio_rate} Hz")
    decodes = frozenset({"video"} if audio is not None else {"video", "audio"})
    state = _read(path, opts, max_pixels, decodes=decodes, track=audio, frame_sink=frame_sink, progress=progress)
    if state.track is not None and state.packets != state.track.packets:
        # This pass stopped on a garbled stretch before the audio pass did; one pass decoding both
        # would not have read the audio past it either.
        state.track = _read(path, opts, max_pixels, decodes=frozenset({"audio"}), until=state.packets).audio_track()
    result = state.result()
    if progress is not None:
        progress(1.0)
    return result


def decode(
    path: str | Path,
    *,
    sample_fps: float = 5.0,
    width: int = 160,
    audio_rate: int = 22050,
    max_pixels: int = MAX_PIXELS,
    frame_sink: FrameSink | None = None,
    sink_width: int = 160,
    max_duration: float | None = None,
) -> MediaStreams:
    """Decode ``path`` into :class:`MediaStreams` (``audio`` is None without an audio stream).

    Partial reads are reported as :class:`MediaWarning`; use :func:`decode_report` to get
    them as data instead.
    """
    result = decode_report(
        path, sample_fps=sample_fps, width=width, audio_rate=audio_rate, max_pixels=max_pixels,
        frame_sink=frame_sink, sink_width=sink_width, max_duration=max_duration,
    )
    for note in result.warnings:
        warnings.warn(f"{result.media.path}: {note}", MediaWarning, stacklevel=2)
    return result.media
