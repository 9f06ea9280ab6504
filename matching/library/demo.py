"""The built-in demo library: music21 corpus scores rendered through FluidSynth in several moods.

``demo_library()`` builds it once into ``$SOUNDTRACK_HOME/demo`` (default
``~/.cache/soundtrack/demo``) and reuses it afterwards: each piece is a public-domain
score from the music21 corpus, varied in mode (major <-> minor by moving scale degrees
3, 6, 7), tempo, dynamics (including crescendi and a minor-to-major turn, so that arcs
*flow*), transposition and General MIDI instrument, written as ``.mid`` and rendered
with the FluidR3_GM soundfont to ``.ogg``. Two real recordings that ship inside
installed packages are added when present (see :data:`RECORDINGS`). Every track
records where it comes from in its tags (``corpus:...``) and licence.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from analysis.errors import MediaError, ParameterError, make_folder
from matching.library.records import TrackRecord
from matching.library.store import Library

log = logging.getLogger(__name__)

SCORE_LICENCE = "public-domain composition, music21 corpus (BSD-3-Clause); rendered with FluidR3_GM (MIT)"


@dataclass(frozen=True)
class DemoPiece:
    """How one demo track is made from a corpus score.

    ``mode``: "keep", "minor", "major", "minor-to-major" (first half minor, second half
    major) or "major-to-minor". ``velocity`` is a (start, end) factor ramp over the piece.
    """

    slug: str
    corpus: str
    title: str
    tags: tuple[str, ...]
    program: int = 0
    tempo: float = 1.0
    velocity: tuple[float, float] = (1.0, 1.0)
    transpose: int = 0
    mode: str = "keep"
    number: int | None = None  # work number inside a corpus opus (ABC/Essen collections)
    max_seconds: float = 40.0  # of audio: the slow (calm, sad) renders reach it; keeps the build near a minute


#: Five or six pieces in each quadrant of the valence-arousal plane, as the music reader hears the renders
#: (joyful +/+, serene +/-, sad -/-, tense -/+), and three whose arcs turn. Each recipe was checked against
#: the analysed track. What moved the reader there: velocity moves arousal most (one chorale at 0.5 and 1.0:
#: -0.14 and +0.18), tempo much less; a major chorale turned minor reads dark (-0.36 to -0.59 valence) where
#: minor chorales slowed down read bright (bwv66.6 +0.37, bwv244.3 +0.26); a lone flute tune reads calm even
#: at 1.5x (-0.37 arousal); atonal Schoenberg reads anywhere (op. 19/2 slowed: +0.57 valence).
PIECES: tuple[DemoPiece, ...] = (
    # joyful (+ valence, + arousal)
    DemoPiece("chorale-hopeful", "bach/bwv86.6", "Chorale in E, hopeful strings", ("hopeful", "strings"), 48, 1.1,
              (1.15, 1.15)),
    DemoPiece("chorale-triumph", "bach/bwv57.8", "Chorale, brass in triumph", ("triumphant", "energetic", "brass"),
              61, 1.5, (1.2, 1.35), 2),
    DemoPiece("joplin-rag", "joplin/maple_leaf_rag", "Joplin, Maple Leaf Rag", ("joyful", "energetic", "piano"), 0,
              1.0, (1.05, 1.05), 0, "keep", None, 40.0),
    DemoPiece("joplin-marimba", "joplin/maple_leaf_rag", "Joplin on marimba, light", ("playful", "light",
              "marimba"), 12, 0.7, (0.8, 0.8), 0, "keep", None, 40.0),
    DemoPiece("air-lively", "airdsAirs/book1.abc", "Scottish air, lively fiddle", ("lively", "folk", "violin"), 40,
              1.6, (1.1, 1.1), 0, "keep", 5),
    # serene (+ valence, - arousal)
    DemoPiece("chorale-calm", "bach/bwv1.6", "Chorale in F, calm organ", ("calm", "warm", "organ"), 19, 0.75,
              (0.55, 0.55)),
    DemoPiece("chorale-bright-harp", "bach/bwv255", "Chorale on harp, bright", ("tender", "bright", "harp"), 46,
              0.7, (0.45, 0.45), 12),
    DemoPiece("air-gentle", "airdsAirs/book1.abc", "Scottish air, gentle guitar", ("gentle", "calm", "guitar"), 24,
              0.7, (0.3, 0.3), 0, "keep", 5),
    DemoPiece("corelli-grave", "corelli/opus3no1/1grave", "Corelli, Grave on harp", ("serene", "calm", "harp"), 46,
              0.8, (0.45, 0.45)),
    DemoPiece("folk-gentle", "essenFolksong/altdeu10", "German folk tune, gentle clarinet", ("gentle", "folk",
              "clarinet"), 71, 0.7, (0.5, 0.5), 0, "keep", 3),
    DemoPiece("madrigal", "monteverdi/madrigal.3.1.mxl", "Monteverdi madrigal, gentle choir", ("tender", "calm",
              "choir"), 52, 0.8, (0.55, 0.55), 0, "keep", None, 40.0),
    # sad (- valence, - arousal)
    DemoPiece("chorale-sad", "bach/bwv86.6", "Chorale turned minor, slow strings", ("sad", "strings"), 48, 0.6,
              (0.45, 0.4), -5, "minor"),
    DemoPiece("chorale-lament", "bach/bwv269", "Chorale turned minor, cello lament", ("sad", "dark", "cello"), 42,
              0.65, (0.5, 0.45), -12, "minor"),
    DemoPiece("chorale-fading", "bach/bwv1.6", "Chorale in F minor, fading organ", ("sad", "fading", "organ"), 19,
              0.7, (0.6, 0.3), 0, "minor"),
    DemoPiece("corelli-grave-minor", "corelli/opus3no1/1grave", "Corelli, Grave in minor", ("sad", "solemn",
              "organ"), 19, 0.75, (0.4, 0.4), 0, "minor"),
    DemoPiece("joplin-lament", "joplin/maple_leaf_rag", "Joplin turned minor, slow and sad", ("sad", "slow",
              "piano"), 0, 0.5, (0.25, 0.25), -2, "minor", None, 40.0),
    # tense (- valence, + arousal)
    DemoPiece("chorale-tense-fast", "bach/bwv86.6", "Chorale turned minor, urgent piano", ("tense", "urgent",
              "piano"), 0, 1.8, (1.3, 1.35), -5, "minor"),
    DemoPiece("chorale-alarm", "bach/bwv1.6", "Chorale in F minor, brass alarm", ("tense", "alarm", "brass"), 61,
              1.8, (1.3, 1.35), 0, "minor"),
    DemoPiece("joplin-menace", "joplin/maple_leaf_rag", "Joplin turned minor, menacing", ("tense", "dark", "piano"),
              0, 1.2, (1.2, 1.2), -2, "minor", None, 40.0),
    DemoPiece("air-driving", "airdsAirs/book1.abc", "Scottish air in minor, driving fiddle", ("tense", "driving",
              "violin"), 40, 1.6, (1.25, 1.25), 0, "minor", 5),
    DemoPiece("schoenberg-threat", "schoenberg/opus19/movement2", "Schoenberg op. 19/2, threat", ("tense", "fear",
              "strings"), 48, 1.6, (1.4, 1.5), -12),
    # arcs that turn
    DemoPiece("chorale-grief-to-hope", "bach/bwv57.8", "Chorale: from grief to hope", ("sad", "hopeful", "turn"),
              48, 0.8, (0.6, 1.0), 0, "minor-to-major"),
    DemoPiece("chorale-hope-to-grief", "bach/bwv269", "Chorale: hope darkening", ("hopeful", "sad", "turn"),
              0, 0.9, (1.0, 0.55), 0, "major-to-minor"),
    DemoPiece("chorale-rising", "bach/bwv255", "Chorale, rising choir", ("building", "hopeful", "choir"), 52, 1.0,
              (0.45, 1.3)),
)

#: Real recordings shipped inside installed Python packages: (package, file, title, tags, licence).
#: Found by searching site-packages for audio: gradio's sax.wav (16 s saxophone) and music21's
#: audioSearch test_audio.wav (20 s). gradio's cantina.wav (a film-score excerpt) and its
#: speech clips are left out.
RECORDINGS = (
    ("gradio", "media_assets/audio/sax.wav", "Saxophone phrase (gradio sample)", ("recording", "saxophone"),
     "shipped with gradio (Apache-2.0)"),
    ("music21", "audioSearch/test_audio.wav", "Recorder melody (music21 sample)", ("recording", "folk"),
     "shipped with music21 (BSD-3-Clause)"),
)


def demo_home() -> Path:
    """``$SOUNDTRACK_HOME/demo`` if that variable is set (read at call time), else ``~/.cache/soundtrack/demo``."""
    home = os.environ.get("SOUNDTRACK_HOME")
    return (Path(home).expanduser() if home else Path.home() / ".cache" / "soundtrack") / "demo"


def make_midi(piece: DemoPiece):
    """The varied PrettyMIDI of one demo piece."""
    import music21
    import pretty_midi

    from analysis.music.symbolic import change_mode, score_to_midi

    score = music21.corpus.parse(piece.corpus, number=piece.number) if piece.number else music21.corpus.parse(
        piece.corpus)
    if isinstance(score, music21.stream.Opus):
        score = score.scores[0]
    src = score_to_midi(score)
    tempos = src.get_tempo_changes()[1]
    end = min(src.get_end_time(), piece.max_seconds * piece.tempo)
    pm = pretty_midi.PrettyMIDI(initial_tempo=float(tempos[0] if len(tempos) else 120.0) * piece.tempo)
    v0, v1 = piece.velocity
    for inst in src.instruments:
        new = pretty_midi.Instrument(program=piece.program, is_drum=inst.is_drum, name=inst.name)
        for n in inst.notes:
            if n.start >= end:
                continue
            ramp = v0 + (v1 - v0) * n.start / max(end, 1e-9)
            new.notes.append(pretty_midi.Note(
                velocity=int(np.clip(round(n.velocity * ramp), 1, 127)),
                pitch=int(np.clip(n.pitch + piece.transpose, 12, 115)),
                start=n.start / piece.tempo,
                end=min(n.end, end) / piece.tempo,
            ))
        pm.instruments.append(new)
    half = end / piece.tempo / 2
    if piece.mode in ("minor", "major"):
        change_mode(pm, to=piece.mode)
    elif piece.mode == "minor-to-major":
        change_mode(pm, to="minor", before=half)
    elif piece.mode == "major-to-minor":
        change_mode(pm, to="minor", after=half)
    elif piece.mode != "keep":
        raise ParameterError(f"`mode` of demo piece {piece.slug!r} is unknown (received {piece.mode!r})")
    return pm


def _render(piece: DemoPiece, folder: Path) -> tuple[Path, bool]:
    """Write ``<slug>.mid`` and ``<slug>.ogg`` unless the .ogg exists from this very recipe (so checksums stay
    stable); returns the audio and whether it was rendered now.

    The recipe (``repr(piece)`` and :data:`RENDERING`) is kept beside the render: a slug whose recipe changed
    is rendered again (a renderer's bytes differ from run to run, so a render without a recipe, from before,
    is redone once).
    """
    import soundfile as sf

    from analysis.music.audio import SR, render_midi

    audio, recipe = folder / f"{piece.slug}.ogg", folder / f".{piece.slug}.recipe"
    if audio.exists() and audio.stat().st_size > 0 and recipe.is_file() and recipe.read_text() == _recipe(piece):
        return audio, False
    pm = make_midi(piece)
    tmp = folder / f".{piece.slug}.partial.ogg"
    try:
        pm.write(str(folder / f"{piece.slug}.mid"))
        # peaks bent under -1 dBTP, not clipped; Vorbis at its default quality then still swung 0.5 dB past full
        # scale on a loud brass chorale, at compression 0.3 it stays 0.3 dB under (files a third larger)
        sf.write(tmp, render_midi(pm, limited=True), SR, format="OGG", subtype="VORBIS", compression_level=0.3)
    except (OSError, sf.SoundFileRuntimeError) as err:  # a full disk: libsndfile says only "System error."
        tmp.unlink(missing_ok=True)
        raise _unwritable(folder, audio.name, err) from None
    tmp.replace(audio)  # atomic: an interrupted build never leaves a half-written track
    recipe.write_text(_recipe(piece))
    return audio, True


def _unwritable(folder: Path, name: str, err: Exception) -> MediaError:
    """Why the demo track ``name`` could not be written in ``folder``, in words (with the free space: a full disk
    read "unexpected LibsndfileError: System error." and left a partial file behind)."""
    import shutil

    try:
        free = f"{shutil.disk_usage(folder).free / 1e6:.1f} MB free there"
    except OSError:
        free = "its free space unknown"
    why = getattr(err, "strerror", None) or err
    return MediaError(folder, f"could not write the demo track {name} ({why}; {free}): free some space, or build "
                              "it elsewhere (soundtrack demo --path DIR; $SOUNDTRACK_HOME for the app)")


#: How the renders are made, kept in each recipe so that a change renders the demo again: 2 bends peaks under
#: -1 dBTP and encodes Vorbis at compression 0.3 (1 clipped them at full scale).
RENDERING = 2


def _recipe(piece: DemoPiece) -> str:
    return f"{piece!r} rendering {RENDERING}"


def _forget(lib: Library, paths: list[Path]) -> None:
    """Remove the tracks catalogued at ``paths``: a render of another recipe, whose title and tags were that
    recipe's (:meth:`Library.add` keeps a known path's title and tags when its bytes change)."""
    for record in lib.at_paths(paths).values():
        lib.remove(record.id)


def _drop_retired(lib: Library, folder: Path) -> None:
    """Remove the renders in ``folder`` of slugs no longer in :data:`PIECES`, from the catalogue and the disk."""
    current = {piece.slug for piece in PIECES}
    for record in lib.list():
        path = Path(record.path)
        if path.parent == folder.resolve() and path.stem not in current:
            lib.remove(record.id)
            for stale in (path, path.with_suffix(".mid"), folder / f".{path.stem}.recipe"):
                stale.unlink(missing_ok=True)


def demo_library(
    path: str | Path | None = None,
    *,
    pieces: int | None = None,
    recordings: bool = True,
    include_midi: bool = False,
    progress: bool | Callable[[int, int, str], None] = True,
) -> Library:
    """Build (once) and open the demo library in folder ``path`` (default :func:`demo_home`).

    ``pieces`` limits the build to the first N of :data:`PIECES` (tests use a few). A piece whose recipe
    changed since its render is rendered and catalogued again, and a full build drops the tracks of pieces
    no longer listed, so a library built by an earlier release shows this one's demo.
    ``include_midi`` also catalogues each ``.mid``; ``progress`` is True for a tqdm bar,
    False for none, or a callback ``(done, total, title)``. A second call re-renders
    nothing and re-analyses nothing (tracks are known by content hash), unless the music
    reader changed since (:meth:`Library.stale`): then those tracks are analysed again, in
    place, as a shipped demo must show what the current reader hears.
    """
    if pieces is not None and not 0 <= pieces <= len(PIECES):
        raise ParameterError(f"`pieces` must be within 0 and {len(PIECES)} (received {pieces})")
    folder = make_folder(Path(path).expanduser() if path is not None else demo_home(), what="demo library folder")
    with _building(folder):
        return _build(folder, pieces=pieces, recordings=recordings, include_midi=include_midi, progress=progress)


@contextmanager
def _building(folder: Path) -> Iterator[None]:
    """Hold ``folder``'s build lock (``fcntl.flock`` on ``.build.lock``) while the demo library is built there.

    Two builds at once (``soundtrack demo`` beside the app's first start, or two apps) rendered the same track
    into one temporary file: one stopped with "...partial.ogg: No such file or directory" and the other
    catalogued bytes that another render had replaced. The second build now waits, saying so, then finds the
    tracks done. Where no lock can be had (not POSIX, a folder that cannot be written) it builds without.
    """
    try:
        import fcntl
    except ImportError:
        yield
        return
    try:
        fd = os.open(folder / ".build.lock", os.O_RDWR | os.O_CREAT, 0o666)
    except OSError:
        yield
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip()
            log.warning("the demo library in %s is being built by %s; waiting for it to finish", folder,
                        f"process {holder}" if holder.isdigit() else "another process")
            fcntl.flock(fd, fcntl.LOCK_EX)
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _build(
    folder: Path, *, pieces: int | None, recordings: bool, include_midi: bool,
    progress: bool | Callable[[int, int, str], None],
) -> Library:
    """:func:`demo_library`'s work, in ``folder``, under its build lock."""
    lib = Library(folder / "library.db")
    stale = lib.stale()
    if stale:  # analysed by an earlier music reader: the page must show what this one hears
        log.info("analysing %d demo tracks again with the current music reader", len(stale))
        lib.reanalyse(stale, progress=progress if callable(progress) else None)
    chosen = PIECES[: len(PIECES) if pieces is None else pieces]
    found = _recordings() if recordings else []
    total = len(chosen) + len(found)
    bar = None
    if progress is True:
        from tqdm import tqdm

        bar = tqdm(total=total, desc="demo library", unit="track")
    for i, piece in enumerate(chosen):
        audio, rendered = _render(piece, folder)
        if rendered:
            _forget(lib, [audio, audio.with_suffix(".mid")])
        tags = (*piece.tags, "demo", f"corpus:{piece.corpus}")
        record = lib.add(audio, title=piece.title, artist=_composer(piece.corpus), tags=tags, licence=SCORE_LICENCE)
        _score_key(lib, record, folder / f"{piece.slug}.mid")
        if include_midi:
            lib.add(folder / f"{piece.slug}.mid", title=f"{piece.title} (MIDI)", artist=_composer(piece.corpus),
                    tags=(*tags, "midi"), licence=SCORE_LICENCE)
        _tick(bar, progress, i + 1, total, piece.title)
    for j, (file, title, tags, licence) in enumerate(found):
        lib.add(file, title=title, tags=(*tags, "demo"), licence=licence)
        _tick(bar, progress, len(chosen) + j + 1, total, title)
    if bar is not None:
        bar.close()
    if pieces is None:
        _drop_retired(lib, folder)
    return lib


def _score_key(lib: Library, record: TrackRecord, midi: Path) -> None:
    """The key of the MIDI a demo track was rendered from, in the catalogue (when it says otherwise).

    Read from the audio, 9 of the 24 tracks' keys came out wrong, most a fifth high (a note's third
    harmonic counts for its fifth), and the Library tab contradicted the titles; the score's key is
    what the track plays. A library built before this, or analysed again, is mended on the next start.
    """
    import pretty_midi

    from analysis.music.symbolic import PITCH_NAMES, estimate_key

    if not midi.is_file():
        return
    key = estimate_key(pretty_midi.PrettyMIDI(str(midi)))
    if (record.key, record.mode) != (PITCH_NAMES[key.tonic], key.mode):
        lib.set_key(record.id, PITCH_NAMES[key.tonic], key.mode)


def _tick(bar, progress, done: int, total: int, title: str) -> None:
    if bar is not None:
        bar.update(1)
    elif callable(progress):
        progress(done, total, title)


def _composer(corpus: str) -> str:
    names = {"bach": "J. S. Bach", "corelli": "A. Corelli", "schoenberg": "A. Schoenberg", "joplin": "S. Joplin",
             "monteverdi": "C. Monteverdi", "essenFolksong": "Traditional (German)",
             "airdsAirs": "Traditional (Scottish)"}
    return names.get(corpus.split("/")[0], corpus.split("/")[0])


def _recordings() -> list[tuple[Path, str, tuple[str, ...], str]]:
    """The :data:`RECORDINGS` present in this environment, located through their packages."""
    from importlib.util import find_spec

    out = []
    for package, rel, title, tags, licence in RECORDINGS:
        spec = find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            continue
        file = Path(next(iter(spec.submodule_search_locations))) / rel
        if file.is_file():
            out.append((file, title, tags, licence))
        else:
            log.info("demo recording %s/%s is not installed; skipped", package, rel)
    return out
