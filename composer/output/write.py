"""Write a composed piece's files in one call: MIDI, MusicXML, WAV, stems and the clip with its new score.

The one place that turns a :class:`~composer.output.piece.Composition` into files, used by
:func:`composer.score_video` (and so by batch scoring), ``soundtrack compose`` and the page.
Files are named ``<stem>.mid``, ``<stem>.musicxml``, ``<stem>.wav``, ``<stem>.mp4`` and
``<stem>-stems/NN-<part>.wav`` inside ``out_dir``. The WAV (and so the MP4 muxed from it) is
brought to :data:`analysis.media.loudness.TARGET_LUFS`, the level of the page's library
previews; stems keep the render's peak level so they still sum to the mix's balance.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection, MutableMapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from analysis.errors import MediaError, ParameterError, SoundtrackError
from analysis.media.loudness import normalize_file
from composer.output.piece import Composition

log = logging.getLogger(__name__)

#: Every format :func:`write_outputs` knows, in the order they are written.
FORMATS = ("mid", "musicxml", "wav", "mp4", "stems")
#: What is written unless asked otherwise (stems are one WAV per part: opt in).
DEFAULT_FORMATS = ("mid", "musicxml", "wav", "mp4")


def write_outputs(
    piece: Composition,
    out_dir: str | Path,
    stem: str,
    clip: str | Path | None = None,
    formats: Collection[str] = DEFAULT_FORMATS,
    *,
    soundfont: str | Path | None = None,
    optional: Collection[str] = (),
    timings: MutableMapping[str, float] | None = None,
) -> dict[str, Path]:
    """Write ``piece`` in ``formats`` into ``out_dir``; returns ``{format: path}``.

    ``mp4`` (the clip with the piece as its only audio, video stream copied) is written
    only when ``clip`` is given, from the ``wav`` when that is written too. ``stems`` adds
    one entry per part, ``stem1``, ``stem2``, ... A format named in ``optional`` that fails
    with a :class:`SoundtrackError` (MusicXML export of odd rhythms, say) is logged and left
    out instead of raising. ``timings``, when given, receives the seconds each format took.
    """
    unknown = sorted(set(formats) - set(FORMATS))
    if unknown:
        raise ParameterError(f"`formats` must be among {', '.join(FORMATS)} (received {', '.join(unknown)})")
    if not stem or Path(stem).name != stem:
        raise ParameterError(f"`stem` must be a plain file name without folders (received {stem!r})")
    folder = Path(out_dir)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise MediaError(folder, f"cannot create the output folder ({err.strerror})") from None
    files: dict[str, Path] = {}
    wanted = [f for f in FORMATS if f in formats and not (f == "mp4" and clip is None)]
    with ThreadPoolExecutor(max_workers=1) as pool:
        # MusicXML export is pure Python (music21) while rendering runs in FluidSynth and
        # FFmpeg without the GIL: written side by side, the export's seconds mostly vanish.
        score = pool.submit(_timed, _write_one, piece, "musicxml", folder, stem, clip, soundfont, files) \
            if "musicxml" in wanted else None
        for fmt in (f for f in wanted if f != "musicxml"):
            _collect(fmt, lambda fmt=fmt: _timed(_write_one, piece, fmt, folder, stem, clip, soundfont, files),
                     optional, timings)
        if score is not None:
            _collect("musicxml", score.result, optional, timings)
    return {fmt: files[fmt] for fmt in sorted(files, key=_order)}


def _order(key: str) -> tuple[int, int]:
    """``files`` in :data:`FORMATS` order, stems by number."""
    if key.startswith("stem") and key[4:].isdigit():
        return FORMATS.index("stems"), int(key[4:])
    return FORMATS.index(key), 0


def _timed(fn: Callable[..., None], *args: Any) -> float:
    t0 = time.perf_counter()
    fn(*args)
    return time.perf_counter() - t0


def _collect(fmt: str, run: Callable[[], float], optional: Collection[str],
             timings: MutableMapping[str, float] | None) -> None:
    """Run (or wait for) one format; an optional one that fails is logged and left out."""
    try:
        seconds = run()
    except SoundtrackError as err:
        if fmt not in optional:
            raise
        log.warning("%s export left out: %s", fmt, err)
        return
    if timings is not None:
        timings[fmt] = seconds


def _write_one(piece: Composition, fmt: str, folder: Path, stem: str, clip: str | Path | None,
               soundfont: str | Path | None, files: dict[str, Path]) -> None:
    if fmt == "mid":
        files["mid"] = piece.write_midi(folder / f"{stem}.mid")
    elif fmt == "musicxml":
        files["musicxml"] = piece.write_musicxml(folder / f"{stem}.musicxml")
    elif fmt == "wav":
        files["wav"] = piece.render(folder / f"{stem}.wav", soundfont=soundfont)
        normalize_file(files["wav"])
    elif fmt == "mp4":
        files["mp4"] = piece.mux(clip, folder / f"{stem}.mp4", wav=files.get("wav"), soundfont=soundfont)
    else:
        stems = piece.write_stems(folder / f"{stem}-stems", soundfont=soundfont)
        files.update({f"stem{i}": p for i, p in enumerate(stems, 1)})
