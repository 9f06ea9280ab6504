"""Score many clips: one task per clip, on this machine or a Dask cluster, resumable.

>>> report = composer.score_videos("clips/", library="library.db", out_dir="scores/")
>>> report.ok, report.errors, report.manifest        # manifest.jsonl (+ manifest.csv) in out_dir

Each clip is one task (:func:`matching.cluster.run_tasks`). Its record goes to the
manifest (:mod:`composer.pipeline.manifest`) the moment it finishes, written by this process
only. A rerun with the same settings skips every clip whose *content* is already
recorded, so an interrupted batch picks up where it stopped; a clip that fails is
recorded with its error and the batch goes on.

Workers open the library read-only, once per worker (:func:`matching.cluster.worker_cache`),
and write only their own clip's output folder ``out_dir/clips/<stem>-<hash8>-<settings6>/`` (the clip's
name made safe by :func:`~composer.output.names.safe_stem`, its content hash and the settings digest, so
that batches with other settings into the same folder keep their own files).
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import numbers
import shutil
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from analysis.errors import MediaError, ParameterError, as_path, is_number, make_folder
from analysis.media.dialogue import UNDER_DB, check_clip_sound, check_duck_db
from analysis.media.hashing import content_hash
from composer.output.names import safe_stem
from composer.pipeline.clips import clips_of
from composer.pipeline.manifest import Manifest, Record, TaskResult, settings_digest
from matching.cluster import TaskOutcome, readonly_url, run_tasks, worker_cache

if TYPE_CHECKING:
    from distributed import Client

    from composer.pipeline.score_video import ScoreResult

log = logging.getLogger(__name__)

@dataclass(frozen=True)
class ScoreSettings:
    """Everything a scoring task needs besides its clip; all of it but ``out_dir`` keys the resume."""

    out_dir: str
    library: str | None = None
    threshold: float | None = None
    style: str = "cinematic"
    instrument: str | None = None
    content_type: str = "general"
    seed: int = 0
    clip_sound: str = "auto"
    duck_db: float = UNDER_DB
    #: The blend learned from the library's feedback (``MatchWeights.to_dict()``), read once by the
    #: submitting process so that every clip ranks with the same weights; None: the content type's preset.
    weights: tuple[tuple[str, float], ...] | None = None

    def resume_fields(self) -> dict[str, Any]:
        fields = asdict(self)
        del fields["out_dir"]
        if fields["duck_db"] == UNDER_DB:  # the depth before it could be chosen: older manifests still resume
            del fields["duck_db"]
        # The learned blend ranks the clips still to do, but does not key the resume: ratings arriving on the
        # page during a long batch would otherwise make a resumed run score its finished clips again.
        del fields["weights"]
        return fields

    def match_weights(self) -> Any:
        """The :class:`~matching.ranking.weights.MatchWeights` to rank with (None: the content type's preset)."""
        from matching.ranking.weights import MatchWeights

        return None if self.weights is None else MatchWeights.from_dict(dict(self.weights))


@dataclass(frozen=True)
class ClipJob:
    """One clip to score: where it is, its content hash, and the folder its outputs go to."""

    path: str
    content_hash: str
    out_dir: str

    def __str__(self) -> str:
        return self.path


#: A task: (job, settings) -> TaskResult. Must be a picklable module-level function for a cluster.
ClipTask = Callable[[ClipJob, ScoreSettings], TaskResult]


@dataclass(frozen=True)
class BatchReport:
    """What one call did. ``records`` are this run's records in finishing order."""

    manifest: Path
    csv: Path | None
    total: int  # clips given (after expanding folders)
    ran: int  # tasks run this time
    ok: int
    errors: int
    skipped: int  # already in the manifest with these settings
    duplicates: tuple[str, ...]  # same content as another clip of this batch: run once
    seconds: float
    records: tuple[Record, ...] = field(default=(), repr=False)
    #: Skipped clips whose last record is an error (``retry_errors`` runs them again).
    failed_before: tuple[Record, ...] = field(default=(), repr=False)

    @property
    def failing(self) -> int:
        """Clips of this batch whose latest outcome is an error: this run's and the skipped earlier ones."""
        return self.errors + len(self.failed_before)

    @property
    def clips_per_minute(self) -> float:
        """Clips done well per minute of this run (a clip that failed in a moment is not speed)."""
        return 60.0 * self.ok / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "manifest": str(self.manifest),
            "csv": None if self.csv is None else str(self.csv),
            "total": self.total,
            "ran": self.ran,
            "ok": self.ok,
            "errors": self.errors,
            "skipped": self.skipped,
            "failed_before": [r.to_dict() for r in self.failed_before],
            "duplicates": list(self.duplicates),
            "seconds": round(self.seconds, 3),
            "clips_per_minute": round(self.clips_per_minute, 2),
            "records": [r.to_dict() for r in self.records],
        }


# --------------------------------------------------------------------------- the default task


def _open_library(url: str) -> Any:
    from matching.library.store import Library

    return Library(readonly_url(url))


def _build_kernels() -> None:
    """The numba kernels of matching and fitting, compiled by one worker process each on a fresh cache
    (two workers build the two groups side by side) and read by the others (:func:`analysis.jit.build_all`)."""
    from analysis.jit import build_all, librosa_kernels
    from matching.ranking.ranker import build_kernels

    build_all({"ranking": build_kernels, "librosa": librosa_kernels})


def score_clip(job: ClipJob, settings: ScoreSettings) -> TaskResult:
    """Score one clip with :func:`composer.score_video` (the default batch task; runs on a worker)."""
    from composer.pipeline.score_video import score_video

    library = None
    start = time.perf_counter()
    if settings.library is not None:
        _build_kernels()
        library = worker_cache(("library", settings.library), functools.partial(_open_library, settings.library))
    opened = time.perf_counter()
    result = score_video(
        job.path,
        library=library,
        threshold=settings.threshold,
        out_dir=job.out_dir,
        style=settings.style,
        instrument=settings.instrument,
        content_type=settings.content_type,
        seed=settings.seed,
        clip_sound=settings.clip_sound,
        duck_db=settings.duck_db,
        weights=settings.match_weights(),
    )
    return summarize_score(result, library_seconds=opened - start)


def summarize_score(result: ScoreResult, *, library_seconds: float = 0.0) -> TaskResult:
    """A :class:`~composer.pipeline.score_video.ScoreResult` as manifest fields (the piece stays in its files)."""
    data = result.to_dict()
    summary = {
        "chosen": result.chosen,
        "choice": result.choice,
        "score": data["score"],
        "reason": result.reason,
        "clip_sound": result.clip_sound,
        "duck_db": data["duck_db"],
        "subtitles": data["subtitles"],
        "warnings": data["warnings"],
        "threshold": result.threshold,
        "duration": data["duration"],
        "match": data["match"],
        "candidates": [{"path": c.get("path"), "score": c.get("score")} for c in data["candidates"]],
    }
    timings = {"library": round(library_seconds, 4), **{k: float(v) for k, v in data["timings"].items()}}
    return TaskResult(result=summary, outputs=tuple(str(p) for p in result.outputs.values()), timings=timings)


def analyze_clip(job: ClipJob, settings: ScoreSettings) -> TaskResult:
    """Analysis only (``soundtrack batch --analyze-only``): the clip's arc, cuts and pace as JSON.

    Useful to pre-analyse a catalogue of clips, and as a lighter task for benchmarks.
    Affect sources are created once per worker process by :func:`analysis.video.get_source`.
    """
    import json

    from analysis.video import analyze_video

    start = time.perf_counter()
    clip = analyze_video(job.path, content_type=settings.content_type)
    analysed = time.perf_counter()
    out = Path(job.out_dir) / "analysis.json"
    out.write_text(json.dumps(clip.to_dict()), encoding="utf-8")
    result = {
        "chosen": "analysis",
        "choice": None,
        "score": None,
        "duration": round(clip.duration, 3),
        "cuts": list(clip.cuts),
        "valence": round(float(clip.arc.valence.mean()), 4) if len(clip.arc) else None,
        "arousal": round(float(clip.arc.arousal.mean()), 4) if len(clip.arc) else None,
        "suggested_tempo": clip.suggested_tempo,
        "warnings": list(clip.warnings),
    }
    return TaskResult(result=result, outputs=(str(out),), timings={"analysis": analysed - start})


def _task_name(task: ClipTask) -> str:
    return f"{getattr(task, '__module__', '?')}.{getattr(task, '__qualname__', type(task).__name__)}"


# --------------------------------------------------------------------------- the batch


def _run_job(job: ClipJob, *, task: ClipTask, settings: ScoreSettings) -> TaskResult:
    folder = Path(job.out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    try:
        return task(job, settings)
    except BaseException:
        if not any(folder.iterdir()):  # a failed clip leaves no empty folder behind
            folder.rmdir()
        raise


def _now() -> str:
    """A record's finishing time: UTC, to the second."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def named_error(record: Record) -> str:
    """A record's error with its clip named (a parameter error does not say which clip it came from)."""
    error = record.error or ""
    return error if record.input in error else f"{record.input}: {error}"


def _record(outcome: TaskOutcome, digest: str) -> Record:
    job: ClipJob = outcome.item
    value: TaskResult | None = outcome.value
    if outcome.ok and not isinstance(value, TaskResult):
        value, error = None, f"the batch task returned {type(outcome.value).__name__}, not a TaskResult"
    else:
        error = outcome.error
    return Record(
        input=job.path,
        content_hash=job.content_hash,
        settings=digest,
        status="ok" if error is None else "error",
        result=dict(value.result) if value else {},
        outputs=tuple(value.outputs) if value else (),
        seconds=round(outcome.seconds, 4),
        timings=dict(value.timings) if value else {},
        error=error,
        worker=outcome.worker,
        finished_at=_now(),
    )


def _same_as(duplicates: list[tuple[str, str]], records: list[Record]) -> list[Record]:
    """A manifest row for each clip whose bytes another clip of the batch has: that clip's outcome and
    outputs, with ``result["same_as"]`` naming it (so every clip given can be looked up in the manifest)."""
    by_hash = {r.content_hash: r for r in records}
    rows = []
    for path, digest_hex in duplicates:
        twin = by_hash.get(digest_hex)
        if twin is not None:
            rows.append(dataclasses.replace(twin, input=path, result={**twin.result, "same_as": twin.input},
                                            seconds=0.0, timings={}, worker="client"))
    return rows


def _check_settings(threshold: float | None, style: str, instrument: str | int | None, content_type: str,
                    seed: int, workers: int | None, batch: str | None, manifest_db: str | Path | None) -> float | None:
    """Refuse settings every clip would fail on, before any clip runs; returns the threshold as the resume key
    reads it (the content type's own line given explicitly is the default, None)."""
    from composer.music.styles import get_style, resolve_instrument
    from matching.ranking.weights import weights_for

    get_style(style)
    if instrument is not None:
        resolve_instrument(instrument)
    default = weights_for(content_type).compose_threshold
    if threshold is not None and not (is_number(threshold) and 0 <= threshold <= 1):
        raise ParameterError(f"`threshold` must be within 0 and 1 (received {threshold!r})")
    # A NumPy integer (np.int64(0), as score_video and compose take it) was refused; the caller goes on with
    # the int, so the resume key and the manifest's JSON hold a plain number.
    if not (isinstance(seed, numbers.Integral) and not isinstance(seed, bool) and seed >= 0):
        raise ParameterError(f"`seed` must be a whole number, 0 or more (received {seed!r})")
    if workers is not None and not (isinstance(workers, numbers.Integral) and not isinstance(workers, bool)
                                    and workers >= 0):
        raise ParameterError(f"`workers` must be 0 (this process) or more (received {workers!r})")
    if batch is not None and manifest_db is None:
        raise ParameterError("`batch` names a batch in `manifest_db`; give that too")
    return None if threshold is not None and float(threshold) == default else threshold


def _library_key(library: str | Path | None) -> str | None:
    """The library as workers open it and the resume key names it: a file by its absolute path
    (``lib.db`` and ``./lib.db`` are one library, read from any folder), a URL as it is."""
    if library is None:
        return None
    text = str(library)
    return text if "://" in text else str(Path(text).expanduser().resolve())


def learned_weights(library: str | None, content_type: str) -> tuple[tuple[str, float], ...] | None:
    """The blend learned from the feedback in ``library`` (a :func:`_library_key`) for ``content_type``, as
    ``soundtrack match``, ``soundtrack score`` and the page read it; None while it is the preset's.

    Read here, once, through a read-only connection (the batch does not write the library): workers
    then rank every clip with the same weights even if ratings arrive during the batch. They do not
    key the resume (:meth:`ScoreSettings.resume_fields`): a resumed batch keeps the clips it finished.
    """
    if library is None:
        return None
    from matching.feedback.learner import current_weights
    from matching.ranking.weights import weights_for

    learned = current_weights(content_type, db=readonly_url(library))
    return None if learned == weights_for(content_type) else tuple(sorted(learned.to_dict().items()))


def _check_library(library: Any) -> None:
    """A batch takes the library as a path or URL (workers open it themselves), and it must exist."""
    if library is not None and not isinstance(library, str | Path):
        raise ParameterError(
            f"`library` must be a database path or URL, so that workers can open it (received {type(library).__name__})"
        )
    if library is not None and "://" not in str(library) and not Path(library).is_file():
        raise MediaError(Path(library), "library database not found (index tracks with `soundtrack index` first)")


@dataclass(frozen=True)
class _JobPlan:
    """What a run does with each clip: a job, a skip (done before), a duplicate, or an unreadable record."""

    jobs: list[ClipJob]
    skipped: int
    duplicates: list[tuple[str, str]]  # (clip, content hash): another clip of the batch has its bytes
    unreadable: list[Record]
    failed_before: list[Record]


def _outputs_gone(record: Record, out: Path) -> bool:
    """Whether a clip done before must run again: files its record names in this output folder are gone.

    A studio deletes a clip's folder to have it made again; the rerun said the clip was done and left it
    without outputs. Outputs elsewhere (a batch resumed from another folder or machine through
    ``manifest_db``) are not looked for: they are where that batch wrote them.
    """
    return record.status == "ok" and any(
        Path(p).is_relative_to(out) and not Path(p).exists() for p in record.outputs
    )


def _plan_jobs(clips: list[Path], *, out: Path, digest: str, done: Mapping[tuple[str, str], Record]) -> _JobPlan:
    """One job per distinct clip content not done before under these settings (``digest``); ``done``
    holds the last record of each key to skip."""
    jobs: list[ClipJob] = []
    seen: dict[str, str] = {}
    duplicates: list[tuple[str, str]] = []
    unreadable: list[Record] = []
    failed_before: list[Record] = []
    skipped = 0
    for clip in clips:
        try:
            digest_hex = content_hash(clip)
        except MediaError as err:
            # Nothing to hash, so nothing to resume by: recorded now, tried again next run.
            unreadable.append(Record(str(clip), "", digest, "error", error=str(err), worker="client",
                                     finished_at=_now()))
            continue
        if (digest_hex, digest) in done and not _outputs_gone(done[digest_hex, digest], out):
            skipped += 1
            if done[digest_hex, digest].status == "error":
                failed_before.append(done[digest_hex, digest])
        elif digest_hex in seen:
            duplicates.append((str(clip), digest_hex))
        else:
            seen[digest_hex] = str(clip)
            # The settings name the folder too: a batch into the same OUT with other settings (another style)
            # wrote over the files that the first settings' records name.
            folder = out / "clips" / f"{safe_stem(clip.stem)}-{digest_hex[:8]}-{digest[:6]}"
            jobs.append(ClipJob(str(clip), digest_hex, str(folder)))
    return _JobPlan(jobs, skipped, duplicates, unreadable, failed_before)


def _run_plan(manifest: Manifest, plan: _JobPlan, fn: Callable[[ClipJob], TaskResult], digest: str,
              tasks: Callable[..., Iterable[TaskOutcome]], *, own_workers: bool) -> list[Record]:
    """Run ``plan``'s jobs through ``tasks`` (:func:`run_tasks`, bound to where they run), recording each
    outcome in ``manifest`` as it comes; returns this run's records (the duplicates' rows are written, not
    returned)."""
    records: list[Record] = []
    for rec in plan.unreadable:
        manifest.append(rec)
        records.append(rec)
    try:
        for outcome in tasks(fn, plan.jobs):
            rec = _record(outcome, digest)
            manifest.append(rec)
            records.append(rec)
            if rec.error:
                log.info("%s", named_error(rec))  # the report lists every error; the CLI prints them once
    except BaseException:  # Ctrl-C, a lost cluster: what the unfinished clips wrote is not an output
        if own_workers:  # stopped by now; a cluster's own workers finish the task they run, and its files
            _discard_unfinished(plan.jobs, records)
        raise
    for rec in _same_as(plan.duplicates, records):
        manifest.append(rec)
    return records


def _discard_unfinished(jobs: list[ClipJob], records: list[Record]) -> None:
    """Remove the output folders of ``jobs`` that have no record: clips stopped mid-way.

    A local cluster's workers are killed at Ctrl-C, so their own clean-up never runs, and the half-written
    files (an empty folder, a WAV without its MP4) looked like outputs in ``out/clips/``. Each folder belongs to
    one clip content and these settings, and the manifest lock keeps other batches out, so it holds nothing else.
    Only for workers that are stopped by now (this process's, a local cluster's): a task running on a cluster
    given by address goes on after the batch has gone, and removing its folder under it left a partial set.
    """
    recorded = {r.input for r in records}
    for job in jobs:
        if job.path not in recorded and Path(job.out_dir).exists():
            log.debug("removing %s: its clip did not finish", job.out_dir)
            shutil.rmtree(job.out_dir, ignore_errors=True)


def score_videos(
    paths: str | Path | Iterable[str | Path],
    *,
    out_dir: str | Path,
    library: str | Path | None = None,
    client: Client | None = None,
    scheduler: str | None = None,
    workers: int | None = None,
    progress: bool = True,
    threshold: float | None = None,
    style: str = "cinematic",
    instrument: str | None = None,
    content_type: str = "general",
    seed: int = 0,
    recursive: bool = True,
    retry_errors: bool = False,
    task: ClipTask = score_clip,
    manifest_db: str | Path | None = None,
    batch: str | None = None,
    clip_sound: str = "auto",
    duck_db: float = UNDER_DB,
) -> BatchReport:
    """Score every clip in ``paths`` (files and/or folders) into ``out_dir``; see the module docstring.

    ``library`` is a database path or URL, opened read-only on each worker (a
    :class:`matching.Library` object cannot travel to other processes; its path can).
    ``client``/``scheduler``/``workers`` pick where tasks run
    (:func:`matching.cluster.run_tasks`: none of them means a local cluster with one
    worker per core, ``workers=0`` this process). ``retry_errors`` reruns clips whose
    last record is an error. ``task`` replaces :func:`score_clip` (e.g. analysis only).
    ``manifest_db`` (an SQLite path or a URL such as ``postgresql://host/db``) keeps the
    manifest in a database table as well, under the name ``batch`` (default: the output
    folder's absolute path): a rerun from another machine or folder against the same
    database and batch name skips the clips done there
    (:class:`composer.pipeline.manifest.Manifest`). ``clip_sound`` and ``duck_db`` are
    :func:`composer.score_video`'s: by default a clip's dialogue stays under its new soundtrack, the
    music :data:`~analysis.media.dialogue.UNDER_DB` under its speech.
    """
    check_clip_sound(clip_sound)
    duck_db = check_duck_db(duck_db)
    start = time.perf_counter()
    _check_library(library)
    threshold = _check_settings(threshold, style, instrument, content_type, seed, workers, batch, manifest_db)
    seed, workers = int(seed), None if workers is None else int(workers)
    out = as_path(out_dir, "out_dir").absolute()
    clips = clips_of(paths, recursive, out)
    make_folder(out)
    settings = ScoreSettings(
        out_dir=str(out),
        library=_library_key(library),
        threshold=threshold,
        style=style,
        instrument=instrument,
        content_type=content_type,
        seed=seed,
        clip_sound=clip_sound,
        duck_db=duck_db,
        weights=None if task is analyze_clip else learned_weights(_library_key(library), content_type),
    )
    # The task is part of the key: analysing a clip does not make it scored.
    digest = settings_digest({**settings.resume_fields(), "task": _task_name(task)})
    manifest = Manifest(out, database=manifest_db, batch=batch)
    with manifest.hold():  # a second batch on this folder is refused here, before it runs any clip
        manifest.sync_jsonl()
        manifest.sync_csv()
        plan = _plan_jobs(clips, out=out, digest=digest, done=manifest.to_skip(retry_errors=retry_errors))
        fn = functools.partial(_run_job, task=task, settings=settings)
        tasks = functools.partial(run_tasks, client=client, scheduler=scheduler, workers=workers, progress=progress,
                                  desc="analysing" if task is analyze_clip else "scoring", unit="clip")
        records = _run_plan(manifest, plan, fn, digest, tasks, own_workers=client is None and scheduler is None)
    n_err = sum(r.status == "error" for r in records)
    return BatchReport(
        manifest=manifest.jsonl_path,
        csv=manifest.csv_path if manifest.write_csv else None,
        total=len(clips),
        ran=len(records),
        ok=len(records) - n_err,
        errors=n_err,
        skipped=plan.skipped,
        duplicates=tuple(path for path, _ in plan.duplicates),
        seconds=time.perf_counter() - start,
        records=tuple(records),
        failed_before=tuple(plan.failed_before),
    )
