"""Stage 1 of the training data: the music21 corpus parsed once into MIDI files.

music21 parsing is the slow part (0.05-1 s per score, a few seconds per multi-tune
ABC file), so each score is written as ``<cache>/midi-<music21 version>/<name>.mid``
as soon as it is parsed: an interrupted run resumes where it stopped and a second run
costs nothing. Multi-tune files (Essen, O'Neill's, ...) contribute at most
``max_tunes`` tunes each.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import signal
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

CACHE = Path(__file__).resolve().parents[2] / "data-cache"


def midi_dir(cache: Path = CACHE) -> Path:
    import music21

    return cache / f"midi-{music21.VERSION_STR}"


def piece_name(path: Path, index: int | None) -> str:
    """A file-system-safe, stable name of one score (or one tune of a multi-tune file)."""
    rel = str(path).split("corpus/", 1)[-1]
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", rel)[-80:]
    digest = hashlib.sha1(rel.encode()).hexdigest()[:6]
    return f"{stem}-{digest}" + ("" if index is None else f"-{index:04d}")


def _timeout(signum: int, frame: object) -> None:
    raise TimeoutError


def _parse_file(job: tuple[str, str, int, float]) -> tuple[str, int, str]:
    """Worker: parse one corpus file, write its MIDI file(s); returns (path, written, error)."""
    from music21 import converter, midi, stream

    path, out, max_tunes, limit = job
    signal.signal(signal.SIGALRM, _timeout)
    signal.alarm(int(limit))
    written = 0
    try:
        parsed = converter.parse(path)
        scores = list(parsed.scores)[:max_tunes] if isinstance(parsed, stream.Opus) else [parsed]
        for i, score in enumerate(scores):
            name = piece_name(Path(path), i if isinstance(parsed, stream.Opus) else None)
            try:
                mf = midi.translate.music21ObjectToMidiFile(score)
            except Exception:
                continue
            (Path(out) / f"{name}.mid").write_bytes(mf.writestr())
            written += 1
        return path, written, ""
    except Exception as err:
        return path, written, f"{type(err).__name__}: {str(err)[:120]}"
    finally:
        signal.alarm(0)


def parse_corpus(
    *,
    cache: Path = CACHE,
    workers: int = 2,
    max_tunes: int = 40,
    per_file_limit: float = 60.0,
    skip: tuple[str, ...] = (),
    only: set[str] | None = None,
    verbose: bool = True,
) -> Path:
    """Parse every corpus file not parsed yet (except folders named in ``skip``); returns the MIDI folder.

    ``only``: MIDI file names (as in a checkpoint's ``composer-files.txt``); then only
    the corpus files that produce one of them are parsed, so a checkpoint's data can be
    rebuilt without parsing the whole corpus.
    """
    from music21 import corpus

    out = midi_dir(cache)
    out.mkdir(parents=True, exist_ok=True)
    done_log = out / "_done.txt"
    done = set(done_log.read_text().splitlines()) if done_log.exists() else set()
    paths = [str(p) for p in corpus.getPaths() if p.suffix in {".mxl", ".xml", ".musicxml", ".krn", ".abc", ".mid"}]
    todo = [p for p in paths if p not in done and not any(f"/corpus/{s}/" in p for s in skip)]
    if only is not None:
        # "<stem>-<digest>" for a whole score, plus "-<tune index>" for one tune of a multi-tune file
        wanted = {re.sub(r"-\d{4}$", "", name.removesuffix(".mid")) for name in only}
        todo = [p for p in todo if piece_name(Path(p), None) in wanted]
    todo.sort(key=lambda p: Path(p).stat().st_size)  # small (fast) files first: most pieces per minute
    t0 = time.time()
    with ProcessPoolExecutor(max_workers=workers) as pool, done_log.open("a") as log:
        jobs = [(p, str(out), max_tunes, per_file_limit) for p in todo]
        for k, (path, written, error) in enumerate(pool.map(_parse_file, jobs, chunksize=4)):
            log.write(path + "\n")
            log.flush()
            if verbose and (error or k % 100 == 0):
                print(f"[{k + 1}/{len(todo)} {time.time() - t0:.0f}s] {Path(path).name}: {written} {error}", flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description="Parse the music21 corpus into cached MIDI files.")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--max-tunes", type=int, default=40)
    ap.add_argument("--limit", type=float, default=60.0, help="seconds allowed per file")
    ap.add_argument("--skip", nargs="*", default=[], help="corpus folders to leave out, e.g. essenFolksong")
    ap.add_argument("--files-from", type=Path, default=None,
                    help="parse only the files behind these MIDI names (e.g. checkpoints/composer-files.txt)")
    args = ap.parse_args()
    only = set(args.files_from.read_text().split()) if args.files_from else None
    out = parse_corpus(workers=args.workers, max_tunes=args.max_tunes, per_file_limit=args.limit,
                       skip=tuple(args.skip), only=only)
    print(f"{len(list(out.glob('*.mid')))} MIDI files in {out}")


if __name__ == "__main__":
    main()
