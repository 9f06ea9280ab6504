"""Demo library: a small subset builds from the music21 corpus, records its sources, and is idempotent."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
from mediagen import Shot, make_clip

from analysis.errors import ParameterError
from analysis.music.symbolic import estimate_key, midi_arc
from matching.library.demo import PIECES, demo_home, demo_library, make_midi
from matching.library.store import arcs as arcs_table
from matching.library.store import blob, track_readers

pytest.importorskip("music21")


def test_small_demo_library_builds_once(tmp_path):
    calls: list[tuple[int, int, str]] = []
    lib = demo_library(tmp_path, pieces=2, progress=lambda done, total, title: calls.append((done, total, title)))
    records = lib.list()
    corpus_tracks = [r for r in records if "recording" not in r.tags]
    assert [r.title for r in corpus_tracks] == [PIECES[0].title, PIECES[1].title]
    assert len(calls) == len(records) and calls[-1][0] == calls[-1][1] == len(records)
    for piece, rec in zip(PIECES[:2], corpus_tracks, strict=True):
        assert Path(rec.path) == (tmp_path / f"{piece.slug}.ogg").resolve()
        assert (tmp_path / f"{piece.slug}.mid").is_file()
        assert "demo" in rec.tags and f"corpus:{piece.corpus}" in rec.tags
        assert "music21 corpus" in rec.licence and rec.artist == "J. S. Bach"
        assert rec.kind == "audio" and rec.duration > 10
        assert len(lib.arc(rec.id)) > 20
    for rec in records:
        if "recording" in rec.tags:
            assert "shipped with" in rec.licence
    # The catalogue's key is the score's (heard from the audio, 9 of 24 read a fifth high), and a library
    # whose key says otherwise (built before, or analysed again) is mended when it opens.
    for piece, rec in zip(PIECES[:2], corpus_tracks, strict=True):
        assert f"{rec.key} {rec.mode}" == estimate_key(make_midi(piece)).name
    lib.set_key(corpus_tracks[0].id, "C", "major")
    stamps = {p: p.stat().st_mtime_ns for p in tmp_path.glob("*.ogg")}
    again = demo_library(tmp_path, pieces=2, progress=False)
    assert again.get(corpus_tracks[0].id).key == corpus_tracks[0].key != "C"
    assert [r.id for r in again.list()] == [r.id for r in records]
    assert {p: p.stat().st_mtime_ns for p in tmp_path.glob("*.ogg")} == stamps  # nothing re-rendered

    # arcs stored by an older music reader are read again by this one, in place; the renders stay
    current = again.arc(corpus_tracks[0].id).arousal
    with again.engine.begin() as conn:
        conn.execute(sa.update(arcs_table).values(arousal=blob(np.zeros_like(current))))
    assert not again.stale()
    assert np.all(demo_library(tmp_path, pieces=2, progress=False).arc(corpus_tracks[0].id).arousal == 0)
    with again.engine.begin() as conn:
        conn.execute(sa.update(track_readers).values(reader="features v0, weights old"))
    assert [r.id for r in again.stale()] == [r.id for r in records]
    fresh = demo_library(tmp_path, pieces=2, progress=False)
    assert [(r.id, r.title, r.tags) for r in fresh.list()] == [(r.id, r.title, r.tags) for r in records]
    assert np.allclose(fresh.arc(corpus_tracks[0].id).arousal, current) and not fresh.stale()
    assert {p: p.stat().st_mtime_ns for p in tmp_path.glob("*.ogg")} == stamps


def test_home_follows_env_at_call_time(tmp_path, monkeypatch):
    monkeypatch.setenv("SOUNDTRACK_HOME", str(tmp_path))
    assert demo_home() == tmp_path / "demo"
    monkeypatch.delenv("SOUNDTRACK_HOME")
    assert demo_home() == Path.home() / ".cache" / "soundtrack" / "demo"


def _piece(slug: str):
    return next(p for p in PIECES if p.slug == slug)


def test_mode_changes_and_turns_show_in_the_arc():
    hopeful, sad = make_midi(_piece("chorale-hopeful")), make_midi(_piece("chorale-sad"))
    assert estimate_key(hopeful).mode == "major" and estimate_key(sad).mode == "minor"
    assert midi_arc(hopeful).valence.mean() > midi_arc(sad).valence.mean() + 0.5
    assert midi_arc(hopeful).arousal.mean() > midi_arc(sad).arousal.mean() + 0.3  # slower and softer
    turn = midi_arc(make_midi(_piece("chorale-grief-to-hope")))
    third = len(turn) // 3
    assert turn.valence[-third:].mean() > turn.valence[:third].mean() + 0.5
    rise = midi_arc(make_midi(_piece("chorale-rising")))
    assert rise.arousal[-third:].mean() > rise.arousal[:third].mean()


def test_demo_pieces_are_varied():
    assert 20 <= len(PIECES) <= 30
    assert len({p.slug for p in PIECES}) == len(PIECES)
    assert len({p.program for p in PIECES}) >= 8
    tempi = np.array([p.tempo for p in PIECES])
    assert tempi.min() < 0.7 and tempi.max() > 1.5


def test_bad_subset_size(tmp_path):
    with pytest.raises(ParameterError, match="`pieces` must be within 0 and"):
        demo_library(tmp_path, pieces=-1)


#: (valence sign, arousal sign) -> the mood word of that quadrant, and the fewest tracks each must hold
QUADRANTS = {(1, 1): "joyful", (1, -1): "serene", (-1, -1): "sad", (-1, 1): "tense"}
PER_QUADRANT = 4


@pytest.fixture(scope="module")
def full_demo(tmp_path_factory):
    """The whole demo library (every piece rendered and analysed, about a minute), built once for this module."""
    return demo_library(tmp_path_factory.mktemp("demo"), recordings=False, progress=False)


@pytest.mark.slow
def test_the_demo_library_spans_every_quadrant(full_demo):
    """A creator's clip may be joyful, serene, sad or tense: the demo holds several tracks that read as each.
    (Before: none read tense by 0.15 on both axes, 11 of 26 joyful, the rest crowded round 0 arousal.)"""
    from soundtrack.results import mood

    found: dict[tuple[int, int], list[str]] = {q: [] for q in QUADRANTS}
    for rec in full_demo.list():
        arc = full_demo.arc(rec.id)
        v, a = float(arc.valence.mean()), float(arc.arousal.mean())
        if min(abs(v), abs(a)) > 0.15:
            found[(int(np.sign(v)), int(np.sign(a)))].append(rec.title)
            assert mood(arc.va()) == QUADRANTS[(int(np.sign(v)), int(np.sign(a)))], rec.title
    assert min(len(t) for t in found.values()) >= PER_QUADRANT, found


#: Clips of clear mood (shots of known colour and motion) -> the quadrant their visual arc reads.
MOOD_CLIPS = {
    "dark, cold, fast cuts": ([Shot(12, c, motion=1.0) for c in [(10, 25, 70), (45, 70, 120), (5, 10, 35),
                                                                  (30, 55, 100)] * 4], (-1, 1)),
    "bright, warm, still": ([Shot(200, (240, 200, 120))], (1, -1)),
    "bright, fast cuts": ([Shot(15, c, motion=1.0) for c in [(250, 210, 80), (250, 150, 60), (255, 230, 140),
                                                              (240, 120, 90)] * 3], (1, 1)),
    "dark, still": ([Shot(200, (35, 30, 40))], (-1, -1)),
}


@pytest.mark.slow
def test_clips_of_each_mood_rank_tracks_of_that_mood_first(full_demo, tmp_path):
    """The top three for a dark, fast-cut clip are tense tracks, for a bright still one serene ones, and so on:
    four different lists. (Before: a dark, cold, fast-cut clip got the Maple Leaf Rag second.)"""
    import matching
    from analysis.video import analyze_video

    tops = {}
    for name, (shots, quadrant) in MOOD_CLIPS.items():
        clip = analyze_video(make_clip(tmp_path / f"{len(tops)}.mp4", shots=shots), sources=("visual",))
        assert (np.sign(clip.arc.valence.mean()), np.sign(clip.arc.arousal.mean())) == quadrant, name
        tops[name] = [m.track_id for m in matching.rank(clip, full_demo, k=3)]
        for track in tops[name]:
            arc = full_demo.arc(track)
            assert (np.sign(arc.valence.mean()), np.sign(arc.arousal.mean())) == quadrant, (
                name, full_demo.get(track).title)
    assert len({t for top in tops.values() for t in top}) == 3 * len(MOOD_CLIPS)


def test_a_changed_or_retired_recipe_is_not_kept_from_an_earlier_build(tmp_path, monkeypatch):
    """A cache built by an earlier release: a piece whose recipe changed is rendered again under its new title
    and tags, and a piece no longer listed leaves the catalogue and the folder (before, both stayed as they
    were: an upgraded page showed the old demo, plus whatever was new)."""
    import dataclasses

    import matching.library.demo as demo

    first, second = PIECES[0], PIECES[1]
    monkeypatch.setattr(demo, "PIECES", (first, second))
    before = demo_library(tmp_path, recordings=False, progress=False)
    old_arousal = before.arc(before.list()[0].id).arousal.mean()
    softer = dataclasses.replace(first, title="Softer", tags=("softer",), velocity=(0.3, 0.3))
    monkeypatch.setattr(demo, "PIECES", (softer,))
    after = demo_library(tmp_path, recordings=False, progress=False)
    records = after.list()
    assert [r.title for r in records] == ["Softer"] and "softer" in records[0].tags
    assert after.arc(records[0].id).arousal.mean() < old_arousal - 0.2  # the new render, analysed
    assert not (tmp_path / f"{second.slug}.ogg").exists()
    stamp = (tmp_path / f"{first.slug}.ogg").stat().st_mtime_ns
    assert [r.id for r in demo_library(tmp_path, recordings=False, progress=False).list()] == [records[0].id]
    assert (tmp_path / f"{first.slug}.ogg").stat().st_mtime_ns == stamp  # the same recipe: nothing redone


def test_a_loud_demo_track_is_limited_not_clipped(tmp_path):
    """The loudest recipe (brass at 1.3-1.35 velocity) had 0.18 % of its samples flat at full scale, and its
    Vorbis file swung 0.5 dB past it: the render people hear is bent under -1 dBTP and encoded so that it
    stays under full scale."""
    import soundfile as sf

    from analysis.media.loudness import CEILING, true_peak
    from matching.library.demo import _render

    piece = next(p for p in PIECES if p.slug == "chorale-alarm")
    audio, rendered = _render(piece, tmp_path)
    assert rendered
    y, _ = sf.read(audio, dtype="float32")
    assert np.abs(y).max() < 0.99  # nothing at or past full scale once decoded
    assert true_peak(y) < 1.0  # nor between samples
    assert true_peak(y) > 0.5 * CEILING  # still a loud track: limited, not turned down


def test_two_builds_at_once_share_one_render(tmp_path, monkeypatch):
    """``soundtrack demo`` beside the app's first start (or two apps) on one cache: before, both rendered the
    same track into one temporary file, so one stopped with '.chorale-hopeful.partial.ogg: No such file or
    directory' and the other catalogued bytes that the second render had replaced. Now the second waits for
    the first and finds the track done: both finish, and the catalogue holds the file that is on disk."""
    import contextlib
    import threading

    import analysis.music.audio
    from analysis.media.hashing import content_hash

    start, rendering = threading.Barrier(2), threading.Barrier(2)
    render = analysis.music.audio.render_midi
    renders: list[int] = []

    def render_in_step(*args, **kwargs):  # the real render, begun by both builds together where both render
        renders.append(1)
        with contextlib.suppress(threading.BrokenBarrierError):  # the other build is not rendering: it waits
            rendering.wait(timeout=3)
        return render(*args, **kwargs)

    monkeypatch.setattr(analysis.music.audio, "render_midi", render_in_step)
    results: list[object] = []

    def build() -> None:
        start.wait()
        try:
            results.append(demo_library(tmp_path, pieces=1, recordings=False, progress=False))
        except Exception as err:  # the failure is what the test looks for
            results.append(err)

    threads = [threading.Thread(target=build) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not [r for r in results if isinstance(r, Exception)], results
    records = demo_library(tmp_path, pieces=1, recordings=False, progress=False).list()
    assert len(records) == 1 and len(renders) == 1
    assert records[0].checksum == content_hash(tmp_path / f"{PIECES[0].slug}.ogg")


def test_a_full_disk_is_said_in_words_and_leaves_no_partial_track(tmp_path, monkeypatch):
    """On a full disk libsndfile stops with "System error.": the build ended in "unexpected LibsndfileError:
    System error." and left a half-written .partial.ogg behind. Now it says which track, how much room is left
    and what to do, and removes the partial file."""
    import soundfile as sf

    from analysis.errors import MediaError

    def disk_full(path, *_args, **_kwargs):
        Path(path).write_bytes(b"OggS" + bytes(100))  # what was written before the disk filled
        raise sf.LibsndfileError(2)  # libsndfile's "System error."

    monkeypatch.setattr(sf, "write", disk_full)
    with pytest.raises(MediaError, match=r"could not write the demo track \S+\.ogg \(System error\.; [\d.]+ MB free "
                                         r"there\): free some space, or build it elsewhere"):
        demo_library(tmp_path, pieces=1, recordings=False)
    assert not list(tmp_path.glob(".*.partial.ogg"))
