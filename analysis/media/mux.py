"""Put a new soundtrack on a clip: one ``ffmpeg`` call, audio encoded as AAC, video copied where MP4 can hold it.

A clip whose video codec the MP4 container cannot hold (ProRes or DNxHD from an edit suite, VP8
WebM, Theora, FFV1, WMV, FLV, GIF, raw video) has its picture re-encoded to H.264 instead of
failing at the last step of a job; every other clip keeps its picture bit for bit. ``ffmpeg`` gets
an argument list (never a shell string) and only absolute paths, so a file name that starts with a
dash can never be read as an option.
"""

from __future__ import annotations

import logging
import os
import subprocess
import threading
from pathlib import Path

from analysis.errors import MediaError, ParameterError, make_folder
from analysis.media.ffmpeg import ffmpeg_binary, first_complaint
from analysis.media.probe import codec_name, container_duration, main_video, open_media, picture_start

log = logging.getLogger(__name__)

#: AAC bit rate of the new soundtrack.
AUDIO_BITRATE = "192k"
#: FFmpeg's AAC coder. "fast" encodes a minute in half the time of the default "twoloop"
#: (0.75 s against 1.43 s here) and, at 192 kb/s, decodes as close to the WAV (SNR 32.7 dB
#: against 30.6 dB on a composed piece).
AAC_CODER = "fast"
#: Samples of silence FFmpeg's AAC encoder puts before the first sample of the sound it encodes.
AAC_PRIMING = 1024
#: How far (s) the picture may land from where the sound was delayed to before :func:`mux` muxes again:
#: over Matroska's rounding of times to the millisecond, under anything heard.
SYNC_TOLERANCE = 0.002
#: Video codecs (FFmpeg decoder names) copied into the MP4 as they are. FFmpeg's MP4 muxer refuses
#: prores, dnxhd, vp8, theora, ffv1, wmv*, flv1, gif, rawvideo, h263 and more; png it takes, but
#: players do not play it.
MP4_VIDEO = frozenset({"h264", "hevc", "av1", "vp9", "mpeg4", "mpeg2video", "mpeg1video", "mjpeg"})
#: The picture of any other clip: H.264 in 4:2:0 as every player takes it, CRF 18 (visually
#: lossless for a review copy), even dimensions (4:2:0 needs them), each frame kept at its own time
#: (no frame repeated to fill the length, a GIF's uneven frame times kept).
REENCODE = (
    "-c:v", "libx264", "-preset", "veryfast", "-crf", "18", "-pix_fmt", "yuv420p", "-fps_mode", "passthrough",
    "-vf", "scale=trunc(iw/2)*2:trunc(ih/2)*2",
)  # fmt: skip


#: The new soundtrack's sample rate (Hz) where the clip has no sound, or one under 44.1 kHz (the music
#: would lose its top octave) or over :data:`MAX_RATE`: video's own rate.
VIDEO_RATE = 48000
#: The highest rate the new soundtrack is written at: AAC's highest.
MAX_RATE = 96000
#: Resampling, where the soundtrack's file is at another rate (a library track, a user's WAV): the SoX
#: resampler at its very high quality (28 bits), not FFmpeg's default, whose filter leaves images of the
#: top octave about 70 dB down.
RESAMPLER = "resampler=soxr:precision=28"

#: Containers the new soundtrack (AAC) and the picture (copied, or H.264) can be written to.
CONTAINERS = (".mp4", ".m4v", ".mov", ".mkv")
#: MP4 and QuickTime outputs are written with their index (``moov``) before the media (``mdat``), so a
#: browser or a web player starts playing the scored clip while it downloads instead of after it.
FASTSTART = ("-movflags", "+faststart")
#: Subtitle codecs written as text: MP4 and QuickTime hold them as mov_text, Matroska as they are
#: (mov_text, which Matroska cannot hold, as SubRip).
TEXT_SUBTITLES = frozenset({"subrip", "srt", "ass", "ssa", "mov_text", "webvtt", "text"})
#: Picture subtitles (DVD, Blu-ray, DVB) that Matroska holds as they are; MP4 holds none of them.
BITMAP_SUBTITLES = frozenset({"dvd_subtitle", "hdmv_pgs_subtitle", "dvb_subtitle"})
#: Audio codecs an extra track (commentary, another language) is copied in when the output is MP4 or
#: QuickTime; any other is encoded to AAC. Matroska copies every one.
MP4_AUDIO = frozenset({"aac", "mp3", "ac3", "eac3", "alac"})


def video_args(codec: str) -> list[str]:
    """FFmpeg's video output arguments for a clip whose video codec is ``codec``: copied when MP4 holds it."""
    if codec not in MP4_VIDEO:
        return list(REENCODE)
    if codec == "hevc":  # Apple's players want HEVC tagged hvc1 (FFmpeg writes hev1)
        return ["-c:v", "copy", "-tag:v", "hvc1"]
    return ["-c:v", "copy"]


def _video_facts(path: Path) -> tuple[str, float, float, int]:
    """``(video codec, duration in seconds, start of the picture in seconds, its stream index)`` of
    ``path``'s picture (:func:`~analysis.media.probe.main_video`, :func:`~analysis.media.probe.picture_start`);
    :class:`MediaError` without a video stream."""
    with open_media(path) as container:
        if not container.streams.video:
            raise MediaError(path, "has no video stream to put the soundtrack on")
        video = main_video(container)
        return codec_name(video), container_duration(container), picture_start(container), video.index


def delivery_rate(video: str | Path) -> int:
    """The sample rate (Hz) of ``video``'s new soundtrack: its first audio track's own, so the clip's sound
    is mixed in at the rate it was recorded at, within 44.1 kHz to :data:`MAX_RATE`; else :data:`VIDEO_RATE`."""
    rate = _sound_rate(Path(video).resolve())
    return rate if 44100 <= rate <= MAX_RATE else VIDEO_RATE


def _sound_rate(sound: Path) -> int:
    """The sample rate of ``sound``'s first audio stream (0 when it has none)."""
    with open_media(sound) as container:
        audio = container.streams.audio
        return int(audio[0].codec_context.sample_rate or 0) if audio else 0


def kept_streams(video: str | Path, out: str | Path) -> tuple[list[str], list[str]]:
    """FFmpeg's arguments that carry ``video``'s other streams into ``out`` after the picture and the
    new soundtrack (input 0 is the clip), and a note for each left out.

    Extra audio tracks (``0:a:1`` on: a commentary, another language) follow the new soundtrack,
    which stays the first and default one; subtitle tracks are copied, or converted between text
    formats where the container needs another (:data:`TEXT_SUBTITLES`); a track the container
    cannot hold (a DVD's picture subtitles in MP4) is left out with a note, not a failure. The
    clip's metadata (``creation_time``, title) is copied too (FFmpeg drops ``creation_time`` unless told).
    """
    matroska = Path(out).suffix.lower() == ".mkv"
    args, notes, n_audio, n_subs = ["-map_metadata", "0", "-disposition:a:0", "default"], [], 1, 0
    with open_media(Path(video)) as container:
        extras = [s for s in container.streams if s.type in ("audio", "subtitle")]
        first_audio = container.streams.audio[0].index if container.streams.audio else None
        for stream in extras:
            name = codec_name(stream)
            if stream.type == "audio" and stream.index != first_audio:
                copy = matroska or name in MP4_AUDIO
                args += ["-map", f"0:{stream.index}", f"-c:a:{n_audio}", "copy" if copy else "aac",
                         *([] if copy else [f"-b:a:{n_audio}", AUDIO_BITRATE]), f"-disposition:a:{n_audio}", "0"]
                n_audio += 1
            elif stream.type == "subtitle":
                codec = _subtitle_codec(name, matroska)
                if codec is None:
                    notes.append(f"the clip's {name} subtitle track {stream.index} is left out: "
                                 f"{Path(out).suffix.lower()} cannot hold it")
                    continue
                args += ["-map", f"0:{stream.index}", f"-c:s:{n_subs}", codec]
                n_subs += 1
    return args, notes


def _subtitle_codec(name: str, matroska: bool) -> str | None:
    """How a ``name`` subtitle track goes into the output: ``copy``, the text encoder to convert it
    with, or None when the container cannot hold it."""
    if matroska:
        if name == "mov_text":
            return "srt"
        return "copy" if name in TEXT_SUBTITLES | BITMAP_SUBTITLES else None
    return "mov_text" if name in TEXT_SUBTITLES else None


def _audio_filter(start: float, rate: int, own_rate: int) -> list[str]:
    """The new sound's filters: resampled from ``own_rate`` to ``rate`` where they differ (:data:`RESAMPLER`),
    and put ``start`` seconds late on the output's timeline, with the copied picture's first frame
    (silence before it; ``adelay`` rounds to the sample)."""
    chain = [f"aresample={rate}:{RESAMPLER}"] if own_rate != rate else []
    if start >= 0.0005:
        chain.append(f"adelay=delays={start * 1000:.3f}:all=1")
    return ["-filter:a:0", ",".join(chain), "-ar:a:0", str(rate)] if chain else ["-ar:a:0", str(rate)]


def check_mux(video: str | Path, out: str | Path) -> tuple[str, float]:
    """``(video codec, duration)`` when ``video`` can take a soundtrack into ``out``; else a clear error
    before any work (a render, a mix) is spent on it."""
    return _checked_facts(video, out)[:2]


def _checked_facts(video: str | Path, out: str | Path) -> tuple[str, float, float, int]:
    """:func:`_video_facts` of ``video`` once :func:`check_mux`'s checks pass."""
    if Path(out).suffix.lower() not in CONTAINERS:
        raise ParameterError(f"the scored video must be one of {', '.join(CONTAINERS)} (received {str(out)!r})")
    src, dst = Path(video), Path(out)
    if src.is_dir():
        raise MediaError(video, "is a folder, not a clip")
    if not src.is_file():
        raise MediaError(video, "file not found")
    if dst.exists() and os.path.samefile(src, dst):  # the scored copy would replace the clip, its own sound lost
        raise ParameterError(f"the scored video must be another file than the clip (received {str(out)!r} for both)")
    return _video_facts(src.resolve())


def mux(video: str | Path, audio: str | Path, out: str | Path, *, duration: float | None = None,
        notes: list[str] | None = None, rate: int | None = None, clip_tags: bool = False) -> Path:
    """Write ``out``: ``video``'s picture with ``audio`` as its soundtrack, ``duration`` seconds long.

    The clip's first audio track is replaced; its other audio tracks, subtitles and metadata are
    kept (:func:`kept_streams`), and ``notes``, when given, receives a line for each left out.

    ``duration`` defaults to the clip's own, so the result lasts as long as the clip
    whatever the audio's length. ``audio`` starts with the first frame: where the picture starts
    late on the clip's timeline (the copied video keeps its start), the sound is delayed by as much,
    with silence before it; where the muxer moves the picture instead (a camera's MPEG-TS whose B-frames
    are decoded before its sound starts lands at the start of the MP4), the sound follows it
    (:func:`picture_lag`). The sound is written at ``rate`` Hz (default :func:`delivery_rate`: the
    clip's own), resampled by :data:`RESAMPLER` where ``audio`` is at another. The picture is copied,
    or re-encoded to H.264 when MP4 cannot hold the clip's codec (:data:`MP4_VIDEO`); an MP4 or QuickTime
    file is laid out to stream (:data:`FASTSTART`). ``clip_tags``: the soundtrack holds the clip's own
    sound (its dialogue kept under the music), so it carries the tags of the clip's first audio track
    (its language, its name), as players list it by them. Returns ``out``; raises
    :class:`MediaError` naming the clip when a file is missing or ffmpeg fails.
    """
    src, sound, dst = Path(video).resolve(), Path(audio).resolve(), Path(out).resolve()
    codec, own, start, index = _checked_facts(src, dst)  # the clip is opened once for its facts
    if not sound.is_file():
        raise MediaError(audio, "audio file not found")
    own_rate = _sound_rate(sound)
    rate = delivery_rate(src) if rate is None else int(rate)
    if not 8000 <= rate <= MAX_RATE:
        raise ParameterError(f"`rate` must be within 8000 and {MAX_RATE} Hz (received {rate})")
    length = own if duration is None else start + float(duration)
    if not length > 0:
        if duration is None:
            raise MediaError(video, "has no known duration")
        raise ParameterError(f"`duration` must be positive (received {duration})")
    ffmpeg = ffmpeg_binary(video, "muxed")
    others, left_out = kept_streams(src, dst)
    if clip_tags and _sound_rate(src):  # FFmpeg refuses a missing stream here
        others = ["-map_metadata:s:a:0", "0:s:a:0", *others]
    for line in left_out:
        log.warning("%s: %s", video, line)
    if notes is not None:
        notes.extend(left_out)
    if codec not in MP4_VIDEO:
        log.info("%s: MP4 cannot hold %s video; re-encoding the picture to H.264", video, codec)
    make_folder(dst.parent)
    # Written under a passing name and renamed when whole: a failure leaves no broken file at ``out``.
    part = dst.with_name(f".{dst.stem}.{os.getpid()}.{threading.get_ident()}.part{dst.suffix}")

    def run(delay: float) -> None:
        cmd = [
            ffmpeg, "-nostdin", "-y", "-v", "error", "-i", str(src), "-i", str(sound),
            "-map", f"0:{index}", "-map", "1:a:0", *video_args(codec), *_audio_filter(delay, rate, own_rate),
            "-c:a:0", "aac", "-aac_coder", AAC_CODER, "-b:a:0", AUDIO_BITRATE, *others, "-t", f"{length:.3f}",
            *(FASTSTART if dst.suffix.lower() != ".mkv" else ()), str(part),
        ]  # fmt: skip
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise MediaError(video, f"ffmpeg could not mux the soundtrack ({first_complaint(proc.stderr)})")

    try:
        run(start)
        lag = picture_lag(part, rate)
        if abs(lag - start) > SYNC_TOLERANCE:  # the muxer moved the picture: the sound goes where it landed
            log.info("%s: the picture lands %.1f ms after the sound's start, not %.1f ms; muxing again",
                     video, lag * 1000, start * 1000)
            run(max(0.0, lag))
        part.replace(dst)
    finally:
        part.unlink(missing_ok=True)
    return Path(out)


def picture_lag(path: str | Path, rate: int) -> float:
    """Seconds from the new soundtrack's first sample to the first picture in ``path``, a file :func:`mux`
    wrote (the picture its first video stream, the new sound its first audio stream, AAC at ``rate`` Hz).

    The sound's first sample is its first packet's time plus :data:`AAC_PRIMING`: MP4 and QuickTime hide
    the encoder's priming behind an edit list (the packet starts that much before 0), Matroska starts the
    timeline with it (the picture and the sound both that much after 0)."""
    with open_media(Path(path)) as container:
        video, audio = container.streams.video[0], container.streams.audio[0]
        first = next((p.pts for p in container.demux(audio) if p.pts is not None), None)
        if first is None or video.start_time is None:
            return 0.0
        return float(video.start_time * video.time_base) - (float(first * audio.time_base) + AAC_PRIMING / rate)
