"""The audio reader's global tempo of rendered MIDI with a known tempo (``bench/bench_tempo.py`` reads more)."""

from __future__ import annotations

import pretty_midi
import pytest

from analysis.music.audio import SR, analyze_audio, render_midi


def _strings_with_melody(bpm: float, seconds: float = 24.0) -> pretty_midi.PrettyMIDI:
    """Sustained string chords, one a bar, under a legato melody note a beat: a soft-attack slow piece."""
    beat = 60.0 / bpm
    pm = pretty_midi.PrettyMIDI(initial_tempo=bpm)
    strings = pretty_midi.Instrument(program=48)
    chords = [(60, 64, 67), (57, 60, 64), (53, 57, 60), (55, 59, 62)]
    melody = [72, 74, 76, 74, 72, 71, 72, 67]
    for b in range(int(seconds / beat)):
        t = b * beat
        if b % 4 == 0:
            for p in chords[b // 4 % 4]:
                strings.notes.append(pretty_midi.Note(velocity=60, pitch=p, start=t, end=t + 4 * beat))
        strings.notes.append(pretty_midi.Note(velocity=85, pitch=melody[b % 8], start=t, end=t + 0.95 * beat))
    pm.instruments.append(strings)
    return pm


def _plodding_bass(bpm: float, seconds: float = 24.0) -> pretty_midi.PrettyMIDI:
    beat = 60.0 / bpm
    pm = pretty_midi.PrettyMIDI(initial_tempo=bpm)
    bass = pretty_midi.Instrument(program=32)
    for b in range(int(seconds / beat)):
        bass.notes.append(pretty_midi.Note(velocity=90, pitch=(36, 33, 29, 31)[b // 4 % 4], start=b * beat,
                                           end=(b + 0.8) * beat))
    pm.instruments.append(bass)
    return pm


@pytest.mark.parametrize("bpm", [60.0, 70.0])
def test_a_slow_soft_attack_piece_reads_its_written_tempo(bpm: float) -> None:
    """A 60 bpm string piece read 129 bpm (its onset envelope stands well above zero throughout, so the
    tempo prior around 120 bpm outweighed the beat); read from the envelope's swings it reads its own."""
    tempo = analyze_audio(render_midi(_strings_with_melody(bpm)), SR, reader="features").tempo
    assert tempo == pytest.approx(bpm, rel=0.04)


def test_a_fast_plodding_bass_still_reads_its_written_tempo() -> None:
    tempo = analyze_audio(render_midi(_plodding_bass(140.0)), SR, reader="features").tempo
    assert tempo == pytest.approx(140.0, rel=0.04)
