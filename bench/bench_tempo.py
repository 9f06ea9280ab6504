"""Written vs read tempo of rendered MIDI (several textures, 50..160 bpm): how often the audio reader's
global tempo (:func:`analysis.music.audio.analyze_audio`) is exact (within 4 %), an octave error
(x2, x1/2, x3/2, x2/3, x3, x1/3) or other; "before" reads the same onset envelope as the reader did
before ``detrend`` (librosa's tempo of the raw envelope), "after" as the reader does now.

    .venv/bin/python bench/bench_tempo.py [--seconds 30] [--chorales 4]

``--chorales N`` adds N music21 Bach chorales (``bench/music_audio_agreement.py``'s pieces; the written
tempo is their MIDI's quarter-note tempo) at 0.6x, 1x and 1.7x, on piano and on strings.
"""

from __future__ import annotations

import argparse
from collections import Counter

import numpy as np
import pretty_midi

import analysis.music.audio as audio
from analysis.music.audio import SR, analyze_audio, render_midi
from analysis.music.spectra import global_tempo

TEMPOS = (50, 60, 70, 80, 100, 120, 140, 160)
RATIOS = {"x2": 2.0, "x1/2": 0.5, "x3/2": 1.5, "x2/3": 2 / 3, "x3": 3.0, "x1/3": 1 / 3}


def _note(inst: pretty_midi.Instrument, pitch: int, start: float, end: float, vel: int = 80) -> None:
    inst.notes.append(pretty_midi.Note(velocity=vel, pitch=pitch, start=start, end=end))


def texture(name: str, bpm: float, seconds: float) -> pretty_midi.PrettyMIDI:
    """One texture at ``bpm`` for ``seconds``: 'chords' (a sustained chord a bar, a melody note a beat),
    'bass' (a plodding bass note a beat), 'arpeggio' (four notes a beat), suffix '+drums' for a kick on
    beats 1 and 3, snare on 2 and 4, hi-hat on eighths."""
    beat = 60.0 / bpm
    pm = pretty_midi.PrettyMIDI(initial_tempo=float(bpm))
    base = name.split("+")[0]
    prog = {"chords": 48, "bass": 32, "arpeggio": 0}[base]
    inst = pretty_midi.Instrument(program=prog)
    chords = [(60, 64, 67), (57, 60, 64), (53, 57, 60), (55, 59, 62)]
    melody = [72, 74, 76, 74, 72, 71, 72, 67]
    n_beats = int(seconds / beat)
    for b in range(n_beats):
        t = b * beat
        bar, pos = divmod(b, 4)
        ch = chords[bar % 4]
        if base == "chords":
            if pos == 0:
                for p in ch:
                    _note(inst, p, t, t + 4 * beat, 60)
            _note(inst, melody[b % 8], t, t + beat * 0.95, 85)
        elif base == "bass":
            _note(inst, ch[0] - 24, t, t + beat * 0.8, 95 if pos == 0 else 80)
        else:
            for k in range(4):
                _note(inst, ch[k % 3] + 12 * (k // 3), t + k * beat / 4, t + (k + 1) * beat / 4, 75)
    pm.instruments.append(inst)
    if name.endswith("+drums"):
        dr = pretty_midi.Instrument(program=0, is_drum=True)
        for b in range(n_beats):
            t = b * beat
            _note(dr, 36 if b % 2 == 0 else 38, t, t + 0.1, 100)
            for k in range(2):
                _note(dr, 42, t + k * beat / 2, t + k * beat / 2 + 0.05, 60)
        pm.instruments.append(dr)
    return pm


def verdict(written: float, read: float) -> str:
    """'exact' within 4 %, else the octave ratio within 4 % or 'other'."""
    r = read / written
    if abs(r - 1) <= 0.04:
        return "exact"
    for label, q in RATIOS.items():
        if abs(r / q - 1) <= 0.04:
            return label
    return "other"


def read_tempos(pm: pretty_midi.PrettyMIDI) -> tuple[float, float]:
    """The global tempo of ``pm`` rendered, read from the reader's onset envelope without and with
    ``detrend`` (the stored one is the second)."""
    seen: list[float] = []

    def both(env: np.ndarray, sr: float, hop: int, **kw: object) -> float:
        seen.append(global_tempo(env, sr, hop, detrend=False))
        return global_tempo(env, sr, hop, detrend=True)

    audio.global_tempo, kept = both, audio.global_tempo
    try:
        stored = analyze_audio(render_midi(pm), SR, reader="features").tempo
    finally:
        audio.global_tempo = kept
    return seen[0], stored


def _summary(label: str, verdicts: list[tuple[float, str]]) -> None:
    for name, keep in (("all", lambda b: True), ("slow <= 80", lambda b: b <= 80), ("fast >= 100", lambda b: b >= 100)):
        c = Counter(v for b, v in verdicts if keep(b))
        print(f"  {label:6} {name:11} {sum(c.values()):2}: " + ", ".join(f"{k} {n}" for k, n in c.most_common()))


def _cases(seconds: float, chorales: int) -> list[tuple[str, float, pretty_midi.PrettyMIDI]]:
    names = ("chords", "bass", "arpeggio", "chords+drums", "bass+drums", "arpeggio+drums")
    out = [(name, float(bpm), texture(name, bpm, seconds)) for bpm in TEMPOS for name in names]
    if chorales:
        import music21
        from music_audio_agreement import PIECES, variant

        from analysis.music.symbolic import score_to_midi

        for piece in PIECES[:chorales]:
            base = score_to_midi(music21.corpus.parse(piece))
            bpm = float(base.get_tempo_changes()[1][0])
            for factor in (0.6, 1.0, 1.7):
                for prog in (0, 48):
                    pm = variant(base, tempo=factor, velocity=1.0, transpose=0, program=prog)
                    out.append((f"{piece.split('/')[-1]} p{prog}", bpm * factor, pm))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--chorales", type=int, default=0)
    args = ap.parse_args()
    before: list[tuple[float, str]] = []
    after: list[tuple[float, str]] = []
    print(f"{'piece':16} {'written':>7} {'before':>7} {'verdict':>7} {'after':>7} {'verdict':>7}")
    for name, bpm, pm in _cases(args.seconds, args.chorales):
        old, new = read_tempos(pm)
        before.append((bpm, verdict(bpm, old)))
        after.append((bpm, verdict(bpm, new)))
        print(f"{name:16} {bpm:7.1f} {old:7.1f} {before[-1][1]:>7} {new:7.1f} {after[-1][1]:>7}", flush=True)
    _summary("before", before)
    _summary("after", after)


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
