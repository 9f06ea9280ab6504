"""Write a composed piece's files in one call: MIDI, MusicXML, WAV, stems and the clip with its new score.

The one place that turns a :class:`~composer.output.piece.Composition` into files, used by
:func:`composer.score_video` (and so by batch scoring), ``soundtrack compose`` and the page.
Files are named ``<stem>.mid``, ``<stem>.musicxml``, ``<stem>.wav``, ``<stem>.mp4`` and
``<stem>-stems/NN-<part>.wav`` inside ``out_dir`` (the MP4 keeps a clip's dialogue under the music:
:mod:`analysis.media.dialogue`). A run replaces its own set: stems an earlier run left in
``<stem>-stems`` (another style, fewer parts) are removed, and files of the same stem that this
run does not write (the WAV and MP4 beside a ``--no-audio`` run's MIDI) are named by
:func:`stale_outputs`, so a user is told they belong to an earlier piece. The WAV (and so the MP4 muxed from it) is
brought to :data:`analysis.media.loudness.TARGET_LUFS`, the level of the page's library
previews; the stems share the gain that peak-normalises their sum, so they add up to the mix
before its loudness normalisation.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Collection, Iterator, MutableMapping
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager, nullcontext, suppress
from pathlib import Path

from analysis.errors import MediaError, ParameterError, SoundtrackError, make_folder
from analysis.media.dialogue import (
    UNDER_DB,
    ClipSound,
    DialogueMix,
    check_clip_sound,
    check_duck_db,
    mux_soundtrack,
    read_clip_sound,
)
from analysis.media.loudness import TARGET_LUFS
from analysis.media.mux import delivery_rate
from composer.output.piece import Composition, music_file
from composer.output.render import SAMPLE_RATE, delivered_mix, write_wav

log = logging.getLogger(__name__)

#: Every format :func:`write_outputs` knows, in the order they are written.
FORMATS = ("mid", "musicxml", "wav", "mp4", "stems")
#: What is written unless asked otherwise (stems are one WAV per part: opt in).
DEFAULT_FORMATS = ("mid", "musicxml", "wav", "mp4")
#: The name :meth:`Composition.write_stems` gives a stem (``03-pad-warm-pad.wav``): only files named so
#: are removed from a stems folder, never a file a user put there.
STEM_NAME = re.compile(r"\d{2}-[a-z0-9]+(?:-[a-z0-9]+)*\.wav")
#: The files :func:`write_outputs` may write for a stem, by suffix (stems: a folder).
_SUFFIXES = (".mid", ".musicxml", ".wav", ".mp4", "-stems")


def _check_tools(wanted: Collection[str], clip: str | Path | None, soundfont: str | Path | None) -> None:
    """FFmpeg, FluidSynth and the SoundFont, where ``wanted`` needs them, before any file is written: a
    missing one was found after the MIDI, MusicXML and WAV were, leaving a partial set behind."""
    from analysis.media.ffmpeg import ffmpeg_binary
    from analysis.media.synth import fluidsynth_module, soundfont_path

    if "mp4" in wanted and clip is not None:
        ffmpeg_binary(clip, "muxed")
    if {"wav", "stems", "mp4"} & set(wanted):
        soundfont_path(soundfont)
        fluidsynth_module()


def _wanted(formats: Collection[str] | None, clip: str | Path | None) -> list[str]:
    """The formats to write, in :data:`FORMATS` order: ``mp4`` only with a ``clip`` (left out of the
    default set, ``formats`` None, without one; refused when named), or a :class:`ParameterError` naming
    ``formats``."""
    if formats is None:
        return [f for f in DEFAULT_FORMATS if not (f == "mp4" and clip is None)]
    if isinstance(formats, str):  # "mid" was read letter by letter: "(received d, i, m)"
        raise ParameterError(f"`formats` must be a collection of format names, not one string (received {formats!r})")
    unknown = sorted(set(formats) - set(FORMATS))
    if unknown:
        raise ParameterError(f"`formats` must be among {', '.join(FORMATS)} (received {', '.join(unknown)})")
    if "mp4" in formats and clip is None:  # asked for by name: wrote {}
        raise ParameterError("`formats` names mp4, the clip with its new soundtrack, but no `clip` was given")
    return [f for f in FORMATS if f in formats]


def write_outputs(
    piece: Composition,
    out_dir: str | Path,
    stem: str,
    clip: str | Path | None = None,
    formats: Collection[str] | None = None,
    *,
    soundfont: str | Path | None = None,
    optional: Collection[str] = (),
    timings: MutableMapping[str, float] | None = None,
    clip_sound: str = "auto",
    notes: list[str] | None = None,
    speech: tuple[tuple[float, float], ...] | None = None,
    duck_db: float = UNDER_DB,
    progress: Callable[[float, str], None] | None = None,
    title: str | None = None, credit: str | None = None,
) -> dict[str, Path]:
    """Write ``piece`` in ``formats`` (None: :data:`DEFAULT_FORMATS`) into ``out_dir``; returns ``{format: path}``.

    ``mp4`` (the clip with the piece as its soundtrack, video stream copied, or re-encoded to H.264 where MP4
    cannot hold its codec) is written only when ``clip`` is given, from the ``wav`` when that is written too;
    with it, the WAV and stems are rendered at the clip's own sample rate
    (:func:`~analysis.media.mux.delivery_rate`), else at 44.1 kHz; ``clip_sound`` says what becomes of the
    clip's own sound (:mod:`analysis.media.dialogue`: by default a clip's dialogue stays, the music ducked
    under it), and ``notes``, when given, receives one line saying which it was; ``speech`` gives the clip's
    speech stretches when they are known (``VideoAnalysis.speech_regions``), else the mix finds them;
    ``duck_db``, how far the music sits under speech (dB below the dialogue). ``stems`` adds one entry per
    part, ``stem1``, ``stem2``, ... A format named in ``optional`` that fails with a :class:`SoundtrackError`
    (MusicXML export of odd rhythms, say) is logged and left out instead of raising. ``timings``, when given,
    receives the seconds each format took; ``progress``, (fraction of the writing done, what is being
    written) as each format starts. ``title`` and ``credit`` head the MusicXML (default: its own).
    """
    check_clip_sound(clip_sound)
    check_duck_db(duck_db)
    wanted = _wanted(formats, clip)
    if not stem or Path(stem).name != stem:
        raise ParameterError(f"`stem` must be a plain file name without folders (received {stem!r})")
    _check_tools(wanted, clip, soundfont)
    # With a clip, every audio file is rendered at the rate its soundtrack is delivered at (the clip's own):
    # the WAV is muxed as it is, and the clip's sound is mixed in without a change of rate.
    rate = delivery_rate(clip) if "mp4" in wanted and clip is not None else SAMPLE_RATE
    with partial_set_removed(Path(out_dir), stem) as folder:  # an error or Ctrl-C leaves no partial set
        written: dict[str, dict[str, Path]] = {}
        # Rough shares of the time each format takes (the mix's render dominates), for ``progress``.
        share = {f: _SHARE[f] / sum(_SHARE[w] for w in wanted) for f in wanted}
        done = [0.0]

        def write(fmt: str, own: Future[ClipSound] | None = None) -> None:
            if progress is not None and fmt != "mp4":  # the mux runs beside the others: said when it starts
                progress(done[0], _DOING[fmt])
                done[0] += share[fmt]
            t0 = time.perf_counter()
            try:
                if fmt == "mp4":
                    written[fmt], sound = _mux(piece, clip, folder / f"{stem}.mp4", soundfont,
                                               written.get("wav", {}).get("wav"), clip_sound, speech,
                                               own.result() if own is not None else None, duck_db, rate)
                    if notes is not None:
                        notes.append(sound.describe())
                else:
                    written[fmt] = _write_one(piece, fmt, folder, stem, soundfont, rate, (title, credit))
            except SoundtrackError as err:
                if fmt not in optional:
                    raise
                log.warning("%s export left out: %s", fmt, err)
                return
            if timings is not None:
                timings[fmt] = time.perf_counter() - t0

        # The MIDI and the mix first: FluidSynth is fed one event at a time from Python, so beside other
        # Python work it waits for the GIL at every note (beside music21's MusicXML export a minute took
        # 3 s instead of 1.2 s). The MusicXML (0.01 s now) and stems then run while FFmpeg, a process of
        # its own, muxes the clip. The clip's own sound (an FFmpeg decode and a loudness reading) is read
        # meanwhile, while the mix renders.
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="mux") as pool:
            own = None
            if "mp4" in wanted and clip is not None:
                own = pool.submit(read_clip_sound, clip, clip_sound, speech=speech, sr=rate)
            for fmt in wanted:
                if fmt in ("mid", "wav"):
                    write(fmt)
            if progress is not None and "mp4" in wanted:
                progress(done[0], _DOING["mp4"])
                done[0] += share["mp4"]
            mux = pool.submit(write, "mp4", own) if "mp4" in wanted else None
            for fmt in wanted:
                if fmt in ("musicxml", "stems"):
                    write(fmt)
            if mux is not None:
                mux.result()
    if progress is not None:
        progress(1.0, "written")
    files = {key: path for fmt in wanted for key, path in written.get(fmt, {}).items()}
    stale = stale_outputs(folder, stem, files)
    if stale:
        log.warning("%s", stale_note(stale, files))
    return files


@contextmanager
def partial_set_removed(out_dir: Path, stem: str) -> Iterator[Path]:
    """``out_dir``, made; if the block fails, the files of ``stem``'s set it wrote are removed
    (:func:`remove_partial`) before the error goes on."""
    existed = out_dir.is_dir()
    since_ns = time.time_ns() - 100_000_000  # file times come from the kernel's coarse clock: a margin
    folder = make_folder(out_dir)
    try:
        yield folder
    except BaseException:
        remove_partial(folder, stem, since_ns, created=not existed)
        raise


def remove_partial(folder: Path, stem: str, since_ns: int, *, created: bool) -> None:
    """Remove what a failed or interrupted :func:`write_outputs` run wrote of ``stem``'s set (the MIDI and WAV
    of a run stopped while muxing, a WAV cut short): the files of its names touched since ``since_ns``, so an
    earlier run's file this run never reached stays; then the folders, when this run made them and they
    are empty. The MP4 needs nothing: it is renamed into place only when whole."""
    def fresh(path: Path) -> bool:
        return path.is_file() and path.stat().st_mtime_ns >= since_ns

    stems = folder / f"{stem}-stems"
    doomed = [folder / f"{stem}{suffix}" for suffix in _SUFFIXES if suffix != "-stems"]
    doomed += _stems_in(stems) if stems.is_dir() else []
    for path in filter(fresh, doomed):
        path.unlink(missing_ok=True)
        log.info("removed %s, written by the run that failed", path)
    for made in (stems, folder) if created else (stems,):
        if made.is_dir() and made.stat().st_mtime_ns >= since_ns and not any(made.iterdir()):
            made.rmdir()


def stale_outputs(folder: Path, stem: str, files: dict[str, Path]) -> list[Path]:
    """The files named as :func:`write_outputs` names ``stem``'s outputs in ``folder`` that are not among
    ``files`` (what a run wrote): an earlier run's, of another piece. A stems folder counts when it
    holds stems (:data:`STEM_NAME`) and this run wrote none."""
    written = {Path(p) for p in files.values()}
    stale = []
    for suffix in _SUFFIXES:
        path = folder / f"{stem}{suffix}"
        if suffix == "-stems":
            if path.is_dir() and not any(p.parent == path for p in written) and _stems_in(path):
                stale.append(path)
        elif path.is_file() and path not in written:
            stale.append(path)
    return stale


def stale_note(stale: list[Path], files: dict[str, Path]) -> str:
    """One line telling a user that ``stale`` files are not of the piece just written (``files``)."""
    names = ", ".join(p.name + ("/" if p.is_dir() else "") for p in stale)
    wrote = ", ".join(p.name for k, p in files.items() if not k.startswith("stem") or k == "stem1")
    return (f"{names} in {stale[0].parent} {'is' if len(stale) == 1 else 'are'} from an earlier run, not of this "
            f"piece (this run wrote {wrote or 'nothing'}); remove or rename {'it' if len(stale) == 1 else 'them'}")


def _stems_in(folder: Path) -> list[Path]:
    """The stems (files named as :data:`STEM_NAME`) in ``folder``."""
    return sorted(p for p in folder.iterdir() if p.is_file() and STEM_NAME.fullmatch(p.name))


def _drop_old_stems(folder: Path, kept: tuple[Path, ...]) -> None:
    """Remove the stems an earlier run left in ``folder`` (another style has other parts): the folder
    holds this piece's stems alone. Files not named as stems are left."""
    for old in set(_stems_in(folder)) - set(kept):
        try:
            old.unlink()
        except OSError as err:
            raise MediaError(old, f"an earlier run's stem cannot be removed ({err.strerror})") from None
        log.info("removed %s, a stem of an earlier run", old)


_SHARE = {"mid": 0.02, "musicxml": 0.05, "wav": 0.6, "mp4": 0.15, "stems": 0.6}
_DOING = {"mid": "writing the MIDI", "musicxml": "writing the MusicXML", "wav": "rendering the audio",
          "mp4": "putting the score on the clip", "stems": "rendering the stems"}


def _mux(piece: Composition, clip: str | Path | None, out: Path, soundfont: str | Path | None, wav: Path | None,
         clip_sound: str, speech: tuple[tuple[float, float], ...] | None,
         sound: ClipSound | None, duck_db: float, rate: int) -> tuple[dict[str, Path], DialogueMix]:
    """The clip with ``piece`` as its soundtrack, muxed from ``wav`` (the mix already written) or a fresh render
    at ``rate`` Hz; ``sound``: the clip's own sound, read already."""
    if clip is None:
        raise ParameterError("an mp4 needs a clip to put the piece on")
    # the WAV written above, or (the mix was not asked for) one rendered for the clip alone; both at the
    # outputs' one loudness
    with nullcontext(wav) if wav is not None else music_file(piece, out, soundfont, rate=rate) as audio:
        path, report = mux_soundtrack(clip, audio, out, clip_sound=clip_sound, speech=speech, sound=sound,
                                      music_lufs=TARGET_LUFS, duck_db=duck_db)
    return {"mp4": path}, report


def _write_one(piece: Composition, fmt: str, folder: Path, stem: str, soundfont: str | Path | None, rate: int,
               heading: tuple[str | None, str | None] = (None, None)) -> dict[str, Path]:
    """One format's files, the clip aside (:func:`_mux`); audio at ``rate`` Hz; ``heading``: the MusicXML's
    (title, composer)."""
    if fmt == "mid":
        return {"mid": piece.write_midi(folder / f"{stem}.mid")}
    if fmt == "musicxml":
        return {"musicxml": piece.write_musicxml(folder / f"{stem}.musicxml", title=heading[0], composer=heading[1])}
    if fmt == "wav":
        audio = delivered_mix(piece.parts, piece.duration, soundfont=soundfont, fs=rate)
        return {"wav": write_wav(folder / f"{stem}.wav", audio, rate)}
    stems = piece.write_stems(folder / f"{stem}-stems", soundfont=soundfont, sample_rate=rate)
    _drop_old_stems(folder / f"{stem}-stems", stems)
    return {f"stem{i}": p for i, p in enumerate(stems, 1)}


def zip_stems(files: dict[str, Path], out: Path, *, move: bool = False) -> Path | None:
    """``out``, a zip of the stems among ``files`` (what :func:`write_outputs` returned); None when it wrote
    none (they were left out). ``move``: the parts and their folder are removed once zipped (the page offers
    only the zip: a composed score's folder held every stem twice, 4.2 MB beside a 3.6 MB zip for 4 s)."""
    import zipfile

    parts = [p for k, p in files.items() if k.startswith("stem")]
    if not parts:
        return None
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for part in parts:
            z.write(part, arcname=part.name)
    for part in parts if move else ():
        part.unlink(missing_ok=True)
        with suppress(OSError):  # a folder holding anything else stays
            part.parent.rmdir()
    return out
