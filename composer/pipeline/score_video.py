"""``score_video()``: analyse a clip, rank the library, then fit the best track or compose.

The decision is one threshold on the best match's blended score (``matching.ranking.ranker``'s
score in [0, 1]): at or above it the track's best section is fitted to the clip
(``matching.fit.fit_to_clip``: section cut, stretched, muxed); below it, or with no library or an empty one, a new
score is composed for the clip's arc and cuts. The result says which path was taken
and why (the scores and the threshold), and lists the files written.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from analysis.arc import EmotionArc
from analysis.errors import MediaError, ParameterError, as_path, is_number
from analysis.media.dialogue import UNDER_DB, check_clip_sound, check_duck_db
from composer.output.names import safe_stem
from composer.output.piece import Composition

CHOICES = ("match", "compose")


@dataclass(frozen=True, eq=False)
class ScoreResult:
    """What :func:`score_video` chose for a clip, why, and what it wrote.

    ``chosen`` is ``"match"`` or ``"compose"``; ``reason`` one sentence with the numbers;
    ``score`` the best match's score (``None`` when the library was empty or absent);
    ``candidates`` the ranked matches shown to the decision; ``outputs`` maps ``wav``,
    ``mp4`` (and, when composing, ``mid`` and ``musicxml``) to files; ``timings`` the
    seconds spent in ``analysis``, ``ranking``, ``composing``/``fitting`` and ``rendering``.
    """

    path: Path
    chosen: str
    reason: str
    threshold: float
    score: float | None
    match: Any | None
    candidates: tuple[Any, ...]
    outputs: Mapping[str, Path]
    timings: Mapping[str, float]
    duration: float
    composition: Composition | None = field(default=None, repr=False)
    #: What became of the clip's own sound under the new soundtrack, in a sentence.
    clip_sound: str | None = None
    #: How far the music was asked to sit under the clip's speech (dB below the dialogue).
    duck_db: float = UNDER_DB
    #: The subtitles the analysis read (a file given or beside the clip, or the clip's own track); None if none.
    subtitles: str | None = None
    #: What the analysis warned of (a damaged stretch skipped, subtitles left out, ...).
    warnings: tuple[str, ...] = ()

    @property
    def choice(self) -> str:
        """The matched track's path, or ``"composed"``."""
        return str(self.match.path) if self.match is not None else "composed"

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "chosen": self.chosen,
            "choice": self.choice,
            "reason": self.reason,
            "threshold": self.threshold,
            "score": None if self.score is None else round(self.score, 4),
            "match": None if self.match is None else self.match.to_dict(),
            "candidates": [m.to_dict() for m in self.candidates],
            "outputs": {k: str(v) for k, v in self.outputs.items()},
            "timings": {k: round(v, 3) for k, v in self.timings.items()},
            "duration": round(self.duration, 4),
            "composition": None if self.composition is None else self.composition.to_dict(),
            "clip_sound": self.clip_sound,
            "duck_db": self.duck_db,
            "subtitles": self.subtitles,
            "warnings": list(self.warnings),
        }


def open_library(library: Any) -> Any:
    """A ``matching.Library`` for a path or URL (an existing one is passed through)."""
    if library is None or not isinstance(library, str | Path):
        return library
    from matching.library.store import Library

    p = Path(library)
    if "://" not in str(library) and not p.is_file():
        raise MediaError(p, "library database not found")
    return Library(str(library))


def _check_request(clip: Path, threshold: float | None, choices: tuple[Any, Any, Any], clip_analysis: Any, *,
                   library: Any, musicxml: object = True) -> None:
    """Refuse before the analysis a ``threshold`` off [0, 1], an unknown (style, instrument, source) in
    ``choices``, a ``clip_analysis`` that is none and, when a score will be composed (no library, no
    analysis), a clip too long for one (:func:`composer.pipeline.compose.check_clip_length`)."""
    from composer.pipeline.compose import check_choices, check_clip_length

    check_choices(*choices)
    if not isinstance(musicxml, bool):  # "no" is true: the MusicXML was written
        raise ParameterError(f"`musicxml` must be True or False (received {musicxml!r})")
    if threshold is not None and not (is_number(threshold) and 0 <= threshold <= 1):  # np.float32 was refused
        raise ParameterError(f"`threshold` must be within 0 and 1 (received {threshold!r})")
    if clip_analysis is not None and not isinstance(getattr(clip_analysis, "arc", None), EmotionArc):
        # 5 here was "'int' object has no attribute 'arc'" after the library was opened
        raise ParameterError(f"`clip_analysis` must be an analysis.VideoAnalysis of the clip or None "
                             f"(received {type(clip_analysis).__name__})")
    if library is None and clip_analysis is None:
        check_clip_length(clip, "a library track can still be fitted to it (`library`, --library)")


def score_video(
    path: str | Path,
    *,
    library: Any = None,
    threshold: float | None = None,
    out_dir: str | Path | None = None,
    style: str = "cinematic",
    instrument: str | int | None = None,
    content_type: str = "general",
    seed: int = 0,
    k: int = 5,
    source: str = "auto",
    musicxml: bool = True,
    soundfont: str | Path | None = None,
    clip_analysis: Any = None,
    weights: Any = None,
    clip_sound: str = "auto",
    duck_db: float = UNDER_DB,
    subtitles: str | Path | None = "auto",
    progress: Callable[[float, str], None] | None = None,
) -> ScoreResult:
    """Give ``path`` a soundtrack: the best library track when it fits well enough, else a new score.

    ``library`` is a :class:`matching.Library`, a database path/URL, or ``None`` (always
    compose); ``threshold`` in [0, 1] defaults to the content type's
    ``compose_threshold`` (``matching.ranking.weights``); ``out_dir`` defaults to
    ``<clip stem>-score/`` beside the clip. ``style``, ``instrument``, ``seed`` and
    ``source`` go to :func:`composer.compose`. ``clip_analysis`` reuses an
    ``analysis.VideoAnalysis`` of this clip (the app and the benchmark have one already).
    ``weights`` (a ``matching.ranking.weights.MatchWeights``, e.g. learned from feedback by
    ``matching.feedback.learner.current_weights``) overrides the content type's preset blend.
    ``clip_sound`` says what becomes of the clip's own sound: ``"auto"`` keeps a clip's dialogue, the
    music ``duck_db`` dB under its speech (6 to 30), ``"keep"`` any sound, ``"replace"`` none
    (:mod:`analysis.media.dialogue`). ``subtitles`` is :func:`analysis.analyze_video`'s: by default what a
    player would show (a subtitle file beside the clip, else its own text track). ``progress`` is called
    with (fraction done, what is happening), as :func:`analysis.analyze_video` calls it.
    """
    from analysis.video import analyze_video
    from composer.music.sources import get_source
    from composer.output.write import partial_set_removed
    from composer.pipeline.compose import compose

    check_clip_sound(clip_sound)
    duck_db = check_duck_db(duck_db)
    clip_path = as_path(path)
    _check_request(clip_path, threshold, (style, instrument, source), clip_analysis, library=library, musicxml=musicxml)
    stem = safe_stem(clip_path.stem)
    out = Path(out_dir) if out_dir is not None else clip_path.with_name(f"{stem}-score")
    timings: dict[str, float] = {}
    report = progress or (lambda _f, _m: None)
    t0 = time.perf_counter()
    # When nothing can match, the note source (the learned model: torch and the checkpoint, about
    # 1.5 s) loads while the clip is analysed, beside the decoder, instead of after it. (Imported
    # above, the analysis's own modules do not queue behind torch's import for the GIL.)
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="note-source")
    note_source = pool.submit(get_source, source) if library is None or threshold == 1 else None
    try:
        clip = clip_analysis if clip_analysis is not None else analyze_video(
            clip_path, content_type=content_type, subtitles=subtitles,
            progress=lambda f, m: report(0.7 * f, f"analysing: {m}"))
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    timings["analysis"] = time.perf_counter() - t0
    read = {"subtitles": getattr(clip, "subtitles", None), "warnings": tuple(getattr(clip, "warnings", ()))}
    t0 = time.perf_counter()
    lib = open_library(library)
    too_short = lib is not None and len(clip.arc) < 2  # one arc step has no shape to match
    ranking = None if lib is None or too_short else _rank(clip, lib, k, content_type, weights, report)
    timings["ranking"] = time.perf_counter() - t0
    candidates = tuple(ranking) if ranking is not None else ()
    limit = float(threshold) if threshold is not None else (ranking.threshold if ranking is not None else 0.55)
    best = candidates[0] if candidates else None
    with partial_set_removed(out, f"{stem}-score"):  # a failure or Ctrl-C leaves no folder it made empty
        chosen, passed = _usable_match(candidates, limit, lib)
        read["warnings"] += tuple(passed)
        if chosen is not None:
            report(0.75, f"fitting {chosen.title or Path(chosen.path).name} to the clip")
            outputs, sound = _fit_match(chosen, clip_path, out, timings, clip_sound, clip.speech_regions, duck_db)
            report(1.0, "done")
            reason = f"{'best' if chosen is best else 'best usable'} match {chosen.title or chosen.path} scored " \
                     f"{chosen.score:.3f} >= threshold {limit:.3f}"
            return ScoreResult(clip_path, "match", reason, limit, best.score, chosen, candidates, outputs, timings,
                               clip.duration, clip_sound=sound, duck_db=duck_db, **read)
        reason = _why_composed(best, lib is None, limit, passed=len(passed),
                               too_short=clip.duration if too_short else None)
        t0 = time.perf_counter()
        report(0.75, "composing")
        chosen_source = note_source.result() if note_source is not None else source
        piece = compose(clip.arc, clip.cuts, clip.duration, style=style, instrument=instrument, seed=seed,
                        source=chosen_source)
        timings["composing"] = time.perf_counter() - t0
        notes: list[str] = []
        report(0.8, "rendering the score and putting it on the clip")
        outputs = _write_composition(piece, clip_path, out, timings, musicxml=musicxml, soundfont=soundfont,
                                     clip_sound=clip_sound, notes=notes, speech=clip.speech_regions, duck_db=duck_db,
                                     progress=lambda f, m: report(0.8 + 0.2 * f, m))
        report(1.0, "done")
        return ScoreResult(clip_path, "compose", reason, limit, None if best is None else best.score, None, candidates,
                           outputs, timings, clip.duration, composition=piece, clip_sound=notes[0] if notes else None,
                           duck_db=duck_db, **read)


def _rank(clip: Any, lib: Any, k: int, content_type: str, weights: Any, report: Callable[[float, str], None]) -> Any:
    from matching.ranking.ranker import rank

    report(0.7, "ranking the library")
    return rank(clip, lib, k=k, content_type=content_type, weights=weights)


#: Least share of the clip a fitted track must cover (stretched at most ``max_stretch``): below it
#: the music would stop well before the picture does.
MIN_COVERAGE = 0.98


def _usable_match(candidates: tuple[Any, ...], limit: float, lib: Any) -> tuple[Any | None, list[str]]:
    """The best candidate at or above ``limit`` that can be fitted, and why each better one could not."""
    passed: list[str] = []
    for match in candidates:
        if match.score < limit:
            break
        why = _unusable(match, lib)
        if why is None:
            return match, passed
        passed.append(f"passed over {match.title or match.path}: {why}")
    return None, passed


def _unusable(match: Any, lib: Any) -> str | None:
    """Why a ranked track cannot be fitted to the clip (None when it can): too short, its file gone or
    changed since it was analysed (the ranking read its stored arc, not the file)."""
    from analysis.media.hashing import content_hash

    if getattr(match, "coverage", 1.0) < MIN_COVERAGE:
        return f"too short, even slowed down it covers {match.coverage:.0%} of the clip"
    path = Path(match.path)
    if not path.is_file():
        return f"its file {path} is gone (`soundtrack index` finds a moved file again)"
    stored = getattr(lib.get(match.track_id), "checksum", None) if hasattr(lib, "get") else None
    try:
        changed = stored is not None and content_hash(path) != stored
    except MediaError as err:
        return f"{path} {err.problem}"
    return f"{path} changed since it was analysed (`soundtrack index` analyses it again)" if changed else None


def _why_composed(best: Any, no_library: bool, limit: float, *, passed: int = 0, too_short: float | None = None) -> str:
    """The one sentence that says why a new score was composed (``too_short``: the clip's length when it
    was too short to match)."""
    if too_short is not None:
        return f"the clip is too short to match a track ({too_short:.1f} s, one arc step): composed a new score"
    if passed:
        return (f"{'the match' if passed == 1 else f'the {passed} matches'} at or above threshold {limit:.3f} "
                f"could not be used (see the warnings): composed")
    if best is not None:
        return f"best match {best.title or best.path} scored {best.score:.3f} < threshold {limit:.3f}: composed"
    why = "no library given" if no_library else "the library has no tracks"
    return f"{why}: composed a new score (threshold {limit:.3f})"


def _fit_match(best: Any, clip_path: Path, out: Path, timings: dict[str, float], clip_sound: str,
               speech: tuple[tuple[float, float], ...] | None, duck_db: float) -> tuple[dict[str, Path], str | None]:
    """The matched track's section fitted to the clip: ``<stem>-match.wav`` and ``.mp4``, and what
    became of the clip's own sound."""
    from matching.fit import fit_to_clip

    t0 = time.perf_counter()
    mp4 = out / f"{safe_stem(clip_path.stem)}-match.mp4"
    fitted = fit_to_clip(best.path, clip_path, mp4, start=best.start, stretch=best.stretch,
                         out_wav=out / f"{safe_stem(clip_path.stem)}-match.wav", clip_sound=clip_sound,
                         speech=speech, duck_db=duck_db)
    timings["fitting"] = time.perf_counter() - t0
    sound = fitted.clip_sound.describe() if fitted.clip_sound is not None else None
    return {"wav": fitted.wav, "mp4": fitted.video or mp4}, sound


def _write_composition(piece: Composition, clip_path: Path, out: Path, timings: dict[str, float], *,
                       musicxml: bool, soundfont: str | Path | None, clip_sound: str, notes: list[str],
                       speech: tuple[tuple[float, float], ...] | None, duck_db: float,
                       progress: Callable[[float, str], None]) -> dict[str, Path]:
    """``<stem>-score.mid/.musicxml/.wav/.mp4``; the MIDI counts as composing, the rest as rendering.

    MusicXML is written beside the audio (:func:`composer.output.write.write_outputs`), so
    ``rendering`` is the wall time of both, not their sum.
    """
    from composer.output.write import write_outputs

    steps: dict[str, float] = {}
    formats = ("mid", "musicxml", "wav", "mp4") if musicxml else ("mid", "wav", "mp4")
    t0 = time.perf_counter()
    outputs = write_outputs(piece, out, f"{safe_stem(clip_path.stem)}-score", clip_path, formats, soundfont=soundfont,
                            timings=steps, clip_sound=clip_sound, notes=notes, speech=speech, duck_db=duck_db,
                            progress=progress)
    timings["composing"] += steps.get("mid", 0.0)
    timings["rendering"] = time.perf_counter() - t0 - steps.get("mid", 0.0)
    return outputs
