"""Stage 1 of the training data: the whole music21 corpus parsed once into MIDI files.

One *job* is one score, or one tune of a multi-tune ABC file (the Essen and O'Neill
collections, Aird's Airs): those files are split into their tunes here (each tune keeps
the file's header lines), so a 1,850-tune book is 1,850 small parses that run in
parallel, resume one by one and cannot time out as a whole. Everything else (the string
quartets included) is parsed as one score, with a generous per-file time limit.

Each piece is written as ``<cache>/midi-<music21 version>/<name>.mid`` as soon as it is
parsed, and its length and token count go to ``_pieces.jsonl`` beside it; every job
finished (written or failed) goes to ``_jobs.txt``, failures with their reason to
``_errors.txt``. An interrupted run resumes where it stopped and a second run costs
nothing. ``python -m composer.training.corpus --report`` prints pieces, tokens and hours
of music per collection; ``--write-heldout`` writes the fixed held-out list
(:data:`HELDOUT_LIST`, committed) from the pieces parsed.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import re
import signal
import time
from collections import defaultdict
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from composer.training.layout import CACHE, HELDOUT_LIST, heldout_by_hash, is_heldout, midi_dir

__all__ = ["CACHE", "HELDOUT_LIST", "midi_dir", "parse_corpus", "piece_name", "report", "split_abc", "write_heldout"]
SUFFIXES = frozenset({".mxl", ".xml", ".musicxml", ".krn", ".abc", ".mid"})
_TUNE = re.compile(r"^X:", re.M)


def piece_name(path: Path, index: int | None) -> str:
    """A file-system-safe, stable name of one score (or one tune of a multi-tune file)."""
    rel = str(path).split("corpus/", 1)[-1]
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", rel)[-80:]
    digest = hashlib.sha1(rel.encode()).hexdigest()[:6]
    return f"{stem}-{digest}" + ("" if index is None else f"-{index:04d}")


def collection(name: str) -> str:
    """The corpus folder a piece comes from (``essenFolksong``, ``bach``, ...)."""
    return name.split("_", 1)[0]


@dataclass(frozen=True)
class Job:
    """One parse: ``path`` whole (``text`` None), or one tune of it given as ABC ``text``."""

    path: str
    index: int | None
    text: str | None
    size: int

    @property
    def name(self) -> str:
        return piece_name(Path(self.path), self.index)


def split_abc(text: str) -> list[str]:
    """The tunes of an ABC file, each with the file header (the lines before the first ``X:``)."""
    starts = [m.start() for m in _TUNE.finditer(text)]
    if not starts:
        return [text]
    header = "\n".join(line for line in text[: starts[0]].splitlines() if line.strip()) + "\n"
    return [header + text[a:b] for a, b in zip(starts, [*starts[1:], len(text)], strict=True)]


def corpus_jobs(paths: list[Path], *, max_tunes: int | None = None) -> Iterator[Job]:
    """Jobs for ``paths``: one per tune of a multi-tune ABC file (at most ``max_tunes``), else one per file."""
    for p in paths:
        size = p.stat().st_size
        tunes = split_abc(p.read_text(errors="replace")) if p.suffix == ".abc" else []
        if len(tunes) > 1:
            for i, tune in enumerate(tunes[:max_tunes]):
                yield Job(str(p), i, tune, len(tune))
        else:
            yield Job(str(p), None, None, size)


def _timeout(signum: int, frame: object) -> None:
    raise TimeoutError


def piece_stats(data: bytes) -> tuple[float, int, int]:
    """(seconds, tokens, notes) of one written MIDI file, tokenized as training sees it (with chords)."""
    import pretty_midi

    from composer.model.tokens import Tokenizer
    from composer.training.chords import beat_chords
    from composer.training.data import clean

    tok = Tokenizer()
    pm = clean(pretty_midi.PrettyMIDI(io.BytesIO(data)))
    notes = sum(len(i.notes) for i in pm.instruments)
    tokens = len(tok.encode(pm, chords=beat_chords(pm, tok)).tokens) if notes else 0
    return float(pm.get_end_time()), int(tokens), int(notes)


def _parse(job: tuple[Job, str, float]) -> tuple[Job, list[dict], str]:
    """Worker: parse one job, write its MIDI file(s); returns the job, the pieces written and an error."""
    from music21 import converter, midi, stream

    item, out, limit = job
    signal.signal(signal.SIGALRM, _timeout)
    signal.alarm(max(1, int(limit)))
    pieces: list[dict] = []
    try:
        parsed = converter.parse(item.path) if item.text is None else converter.parse(item.text, format="abc")
        opus = isinstance(parsed, stream.Opus) and item.text is None  # a non-ABC file holding several scores
        scores = list(parsed.scores) if opus else [parsed]
        failures = []
        for i, score in enumerate(scores):
            name = piece_name(Path(item.path), i) if opus else item.name
            try:
                data = _to_midi(score, midi)
                seconds, tokens, notes = piece_stats(data)
            except Exception as err:  # one untranslatable score should not sink the file
                failures.append(f"{type(err).__name__}: {str(err)[:100]}")
                continue
            (Path(out) / f"{name}.mid").write_bytes(data)
            pieces.append({"name": name, "seconds": round(seconds, 3), "tokens": tokens, "notes": notes})
        return item, pieces, "" if pieces or not failures else f"no piece written ({failures[0]})"
    except Exception as err:  # music21 raises anything on odd files; logged, not fatal
        return item, pieces, f"{type(err).__name__}: {str(err)[:160]}"
    finally:
        signal.alarm(0)


def _to_midi(score: object, midi: object) -> bytes:
    """MIDI bytes of a music21 score. Some Essen tunes come out of music21's ABC reader with one
    TimeSignature object placed in several measures, which its MIDI writer refuses: the repeats
    are removed first; tunes with repeat marks it cannot expand translate once flattened."""
    from music21 import meter, stream

    try:
        return midi.translate.music21ObjectToMidiFile(score).writestr()
    except Exception:
        seen: set[int] = set()
        for measure in list(score.recurse().getElementsByClass(stream.Measure)):
            for ts in list(measure.getElementsByClass(meter.TimeSignature)):
                if id(ts) in seen:
                    measure.remove(ts)
                seen.add(id(ts))
    try:
        return midi.translate.music21ObjectToMidiFile(score).writestr()
    except Exception:
        return midi.translate.music21ObjectToMidiFile(score.flatten()).writestr()


def _unfinished(out: Path, done: set[str]) -> set[str]:
    """The jobs in ``done`` that left no MIDI file (failed, or a file parsed by an older run's rules)."""
    stems = {f.stem for f in out.glob("*.mid")}
    stems |= {re.sub(r"-\d{4}$", "", s) for s in stems}
    return {n for n in done if n not in stems}


def _corpus_paths(skip: tuple[str, ...]) -> list[Path]:
    from music21 import corpus

    paths = [Path(p) for p in corpus.getPaths() if Path(p).suffix in SUFFIXES]
    return [p for p in paths if not any(f"/corpus/{s}/" in str(p) for s in skip)]


def parse_corpus(
    *,
    cache: Path = CACHE,
    workers: int = 2,
    max_tunes: int | None = None,
    per_file_limit: float = 900.0,
    skip: tuple[str, ...] = (),
    only: set[str] | None = None,
    retry_failed: bool = False,
    verbose: bool = True,
) -> Path:
    """Parse every job of the corpus not done yet (except folders named in ``skip``); returns the MIDI folder.

    ``max_tunes`` caps the tunes taken from one multi-tune file (default: all of them);
    ``only``: MIDI file names (as in a checkpoint's ``composer-files.txt``), then only
    the jobs that produce one of them run, so a checkpoint's data can be rebuilt without
    parsing the whole corpus; ``retry_failed`` runs again the jobs that wrote nothing.
    """
    out = midi_dir(cache)
    out.mkdir(parents=True, exist_ok=True)
    done_log = out / "_jobs.txt"
    done = set(done_log.read_text().splitlines()) if done_log.exists() else set()
    if retry_failed:
        done -= _unfinished(out, done)
    todo = [j for j in corpus_jobs(_corpus_paths(skip), max_tunes=max_tunes) if j.name not in done]
    if only is not None:
        wanted = {name.removesuffix(".mid") for name in only}
        todo = [j for j in todo if j.name in wanted or re.sub(r"-\d{4}$", "", j.name) in wanted]
    todo.sort(key=lambda j: j.size)  # small (fast) jobs first: most pieces per minute
    t0, written = time.time(), 0
    with (ProcessPoolExecutor(max_workers=workers) as pool, done_log.open("a") as jobs_log,
          (out / "_pieces.jsonl").open("a") as pieces_log, (out / "_errors.txt").open("a") as errors_log):
        for k, (job, pieces, error) in enumerate(pool.map(_parse, [(j, str(out), per_file_limit) for j in todo],
                                                          chunksize=8)):
            for p in pieces:
                pieces_log.write(json.dumps(p) + "\n")
            pieces_log.flush()
            if error:
                errors_log.write(f"{job.name}\t{error}\n")
                errors_log.flush()
            jobs_log.write(job.name + "\n")
            jobs_log.flush()
            written += len(pieces)
            if verbose and (k % 500 == 0 or k + 1 == len(todo)):
                print(f"[{k + 1}/{len(todo)} {time.time() - t0:.0f}s, {written} pieces] {job.name}: {error or 'ok'}",
                      flush=True)
    return out


def read_pieces(out: Path) -> dict[str, dict]:
    """Every parsed piece's stats by name; MIDI files written without stats (older runs) are measured now."""
    pieces: dict[str, dict] = {}
    log = out / "_pieces.jsonl"
    if log.exists():
        for line in log.read_text().splitlines():
            if line.strip():
                p = json.loads(line)
                pieces[p["name"]] = p
    for f in out.glob("*.mid"):
        if f.stem not in pieces:
            try:
                seconds, tokens, notes = piece_stats(f.read_bytes())
            except Exception:  # an unreadable file counts as no piece
                continue
            pieces[f.stem] = {"name": f.stem, "seconds": seconds, "tokens": tokens, "notes": notes}
    return {n: p for n, p in pieces.items() if (out / f"{n}.mid").exists()}


def report(out: Path) -> str:
    """Pieces, tokens and hours of music, per collection and in all, with the held-out share."""
    pieces = read_pieces(out)
    rows: dict[str, list[float]] = defaultdict(lambda: [0, 0, 0.0, 0])
    for name, p in pieces.items():
        for key in (collection(name), "all"):
            r = rows[key]
            r[0], r[1], r[2], r[3] = r[0] + 1, r[1] + p["tokens"], r[2] + p["seconds"] / 3600, r[3] + is_heldout(name)
    done = set((out / "_jobs.txt").read_text().split()) if (out / "_jobs.txt").exists() else set()
    failed = _unfinished(out, done)
    lines = ["| collection | pieces | tokens | hours | held out |", "| --- | --- | --- | --- | --- |"]
    for key in sorted(rows, key=lambda k: (k == "all", -rows[k][0])):
        n, t, h, held = rows[key]
        lines.append(f"| {key} | {n:,} | {t:,} | {h:.1f} | {held} |")
    lines.append(f"jobs done: {len(done):,}; that wrote nothing: {len(failed):,} (reasons in {out / '_errors.txt'})")
    return "\n".join(lines)


def write_heldout(out: Path, path: Path = HELDOUT_LIST) -> int:
    """Write the held-out names among the parsed pieces (hash rule) to ``path``, merged with those already
    listed (a listed piece stays held out); returns the number listed."""
    listed = set(path.read_text().split()) if path.exists() else set()
    names = listed | {n for n in read_pieces(out) if heldout_by_hash(n)}
    path.write_text("".join(f"{n}\n" for n in sorted(names)))
    return len(names)


def main() -> None:
    ap = argparse.ArgumentParser(description="Parse the whole music21 corpus into cached MIDI files (resumable).")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--max-tunes", type=int, default=None, help="tunes per multi-tune file (default: all)")
    ap.add_argument("--limit", type=float, default=900.0, help="seconds allowed per job")
    ap.add_argument("--skip", nargs="*", default=[], help="corpus folders to leave out, e.g. essenFolksong")
    ap.add_argument("--files-from", type=Path, default=None,
                    help="parse only the files behind these MIDI names (e.g. checkpoints/composer-files.txt)")
    ap.add_argument("--retry-failed", action="store_true", help="run again the jobs that wrote no MIDI file")
    ap.add_argument("--report", action="store_true", help="only print pieces, tokens and hours parsed so far")
    ap.add_argument("--write-heldout", action="store_true", help=f"also write the held-out list ({HELDOUT_LIST})")
    args = ap.parse_args()
    if args.report:
        print(report(midi_dir()))
        return
    only = set(args.files_from.read_text().split()) if args.files_from else None
    out = parse_corpus(workers=args.workers, max_tunes=args.max_tunes, per_file_limit=args.limit,
                       skip=tuple(args.skip), only=only, retry_failed=args.retry_failed)
    if args.write_heldout:
        print(f"{write_heldout(out)} held-out pieces listed in {HELDOUT_LIST}")
    print(report(out))


if __name__ == "__main__":
    main()
