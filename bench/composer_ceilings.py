"""How far the generator's valence and control-error goals are reachable under their own measure.

Prints three figures for the model card of ``checkpoints/composer.pt``:

1. **Valence response ceilings.** The constant-target sweep of ``composer.training.evaluate``
   (valence -0.6 / 0 / +0.6 at arousal 0.1, the planner's plan, ``--seeds`` pieces per target), read
   by ``bar_va`` for: the model as it writes; the same notes with every note outside the planned
   chord moved to the nearest tone of it (perfect chord following); the same notes with half of
   those on a chord's root or fifth moved to its third; the model's notes over the plan's chord
   roots as a bass line; the plan's chords alone as block chords. With each row, the means of the
   three valence cues (mode, consonance, register on [-1, 1]) at the three targets.
2. **Control-error floor.** The held-out pieces of the evaluation (``--pieces`` longest, first
   30 s) against their own per-bar arcs: the pieces themselves, and their top line alone.
3. **What the corpus's minor and major pieces read.** Per-bar valence labels of the held-out
   pieces by the key their labelling found.

Needs the held-out pieces parsed (``python -m composer.training.corpus --files-from
checkpoints/corpus-heldout.txt``).

    .venv/bin/python bench/composer_ceilings.py [--seeds 16] [--pieces 16]
"""

from __future__ import annotations

import argparse
import copy
from pathlib import Path

import numpy as np
import pretty_midi

from analysis.arc import EmotionArc
from analysis.music.symbolic import bar_va, music_cues
from composer.model import checkpoint
from composer.model.generate import generate
from composer.music.harmony import HarmonyPlan
from composer.music.notes import Note, snap_to_scale, voice_line
from composer.training.evaluate import Condition, conditions, control_error, heldout_data, plan_for


def in_chord(pm: pretty_midi.PrettyMIDI, plan: HarmonyPlan) -> pretty_midi.PrettyMIDI:
    """``pm`` with every pitched note outside the chord planned at its onset moved to the nearest chord tone."""
    out = copy.deepcopy(pm)
    for inst in (i for i in out.instruments if not i.is_drum):
        for note in inst.notes:
            note.pitch = snap_to_scale(note.pitch, {p % 12 for p in plan.chord_at(note.start).pitches})
    return out


def more_thirds(pm: pretty_midi.PrettyMIDI, plan: HarmonyPlan, share: float, seed: int) -> pretty_midi.PrettyMIDI:
    """``pm`` with ``share`` of its notes on the planned chord's root or fifth moved to the nearest third."""
    out = copy.deepcopy(pm)
    rng = np.random.default_rng(seed)
    for inst in (i for i in out.instruments if not i.is_drum):
        for note in inst.notes:
            chord = [p % 12 for p in plan.chord_at(note.start).pitches]
            if len(chord) >= 3 and note.pitch % 12 in (chord[0], chord[2]) and rng.random() < share:
                note.pitch = min((q for q in range(note.pitch - 6, note.pitch + 7) if q % 12 == chord[1]),
                                 key=lambda q: abs(q - note.pitch))
    return out


def cues(pm: pretty_midi.PrettyMIDI) -> tuple[float, float, float]:
    """Mean mode, consonance and register cues of ``pm``'s bars (unknown reads 0, as in ``music_va``)."""
    f = bar_va(pm).features
    c = music_cues(mode=f.mode, consonance=f.consonance, register=f.register, density=f.density, tempo=f.tempo,
                   velocity=f.velocity, articulation=f.articulation)
    return float(c["mode"].mean()), float(c["consonance"].mean()), float(c["register"].mean())


def with_bass(pm: pretty_midi.PrettyMIDI, plan: HarmonyPlan) -> pretty_midi.PrettyMIDI:
    """``pm`` plus the root of each planned chord held an octave below middle C."""
    out = copy.deepcopy(pm)
    bass = pretty_midi.Instrument(program=32)
    bass.notes = [pretty_midi.Note(80, 36 + c.root % 12, c.start, c.end) for c in plan.chords]
    out.instruments.append(bass)
    return out


def block_chords(plan: HarmonyPlan) -> pretty_midi.PrettyMIDI:
    """The plan's chords as sustained block chords around middle C."""
    pm = pretty_midi.PrettyMIDI()
    inst = pretty_midi.Instrument(program=0)
    for c in plan.chords:
        inst.notes += [pretty_midi.Note(80, 48 + p % 12, c.start, c.end) for p in c.pitches]
    pm.instruments.append(inst)
    return pm


def top_line(pm: pretty_midi.PrettyMIDI) -> pretty_midi.PrettyMIDI:
    """The highest note of every onset (:func:`composer.music.notes.voice_line`, the learned source's melody)."""
    notes = [Note(n.start, n.end, n.pitch, n.velocity) for i in pm.instruments if not i.is_drum for n in i.notes]
    line = pretty_midi.Instrument(program=0)
    line.notes = [pretty_midi.Note(n.velocity, n.pitch, n.start, n.end) for n in voice_line(notes)]
    out = pretty_midi.PrettyMIDI()
    out.instruments.append(line)
    return out


def valence_ceilings(loaded: checkpoint.Loaded, seeds: int) -> None:
    targets = (-0.6, 0.0, 0.6)
    names = ("model", "model, off-chord notes moved into the chord", "model, half its roots and fifths as thirds",
             "model, with the plan's roots as a bass line", "the plan's chords alone")
    reads: dict[str, list[float]] = {k: [] for k in names}
    parts: dict[str, list[np.ndarray]] = {k: [] for k in names}
    for v in targets:
        arc = EmotionArc.constant(30.0, valence=v, arousal=0.1)
        got: dict[str, list[float]] = {k: [] for k in names}
        cue: dict[str, list[tuple[float, float, float]]] = {k: [] for k in names}
        for k in range(seeds):
            plan = plan_for(Condition("response", arc, (), 30.0), k)
            pm = generate(arc, duration=30.0, seed=k, model=loaded, plan=plan).midi
            pieces = (pm, in_chord(pm, plan), more_thirds(pm, plan, 0.5, k), with_bass(pm, plan), block_chords(plan))
            for name, piece in zip(names, pieces, strict=True):
                got[name].append(float(np.mean(bar_va(piece).valence)))
                cue[name].append(cues(piece))
        for name in names:
            reads[name].append(float(np.mean(got[name])))
            parts[name].append(np.mean(cue[name], axis=0))
    print(f"valence response, {seeds} pieces per target ({' / '.join(f'{t:+.1f}' for t in targets)}):")
    for name, r in reads.items():
        slope = np.polyfit(targets, r, 1)[0]
        print(f"  {name:46s} {' / '.join(f'{x:+.2f}' for x in r)}  slope {slope:.2f}")
        for i, cue_name in enumerate(("mode", "consonance", "register")):
            print(f"    {cue_name:12s} {' / '.join(f'{p[i]:+.2f}' for p in parts[name])}")


def control_floor(ckpt: Path, loaded: checkpoint.Loaded, pieces: int) -> None:
    data = heldout_data(ckpt, loaded)
    conds = conditions(data, n=pieces, duration=30.0, seed=0)
    rows: dict[str, list[tuple[float, float]]] = {"held-out pieces themselves": [], "their top line alone": []}
    for c in conds:
        pm = loaded.tokenizer.decode(data.piece(data.names.index(c.name))).midi
        for inst in pm.instruments:  # the first 30 s, as the target arc
            inst.notes = [n for n in inst.notes if n.start < c.duration]
            for n in inst.notes:
                n.end = min(n.end, c.duration)
        rows["held-out pieces themselves"].append(control_error(pm, c.arc))
        rows["their top line alone"].append(control_error(top_line(pm), c.arc))
    print(f"control error against their own arcs ({len(conds)} held-out pieces, first 30 s):")
    for name, errs in rows.items():
        e = np.array(errs)
        print(f"  {name:28s} {e.mean():.3f} (valence {e[:, 0].mean():.3f}, arousal {e[:, 1].mean():.3f})")
    print("per-bar valence labels of the held-out pieces, by the key their labelling found:")
    for mode, test in (("minor", lambda k: k >= 12), ("major", lambda k: k < 12)):
        vals = [data.va[s:e, 0] for s, e in zip(data.offsets[:-1], data.offsets[1:], strict=True) if test(data.key[s])]
        allv = np.concatenate(vals).astype(float)
        p10, p50, p90 = np.percentile(allv, [10, 50, 90])
        print(f"  {mode}: {len(vals)} pieces, median of piece means {np.median([v.mean() for v in vals]):+.2f}, "
              f"token percentiles 10/50/90 {p10:+.2f} / {p50:+.2f} / {p90:+.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", type=Path, default=checkpoint.DEFAULT)
    ap.add_argument("--seeds", type=int, default=16, help="pieces per target in the valence sweep")
    ap.add_argument("--pieces", type=int, default=16, help="held-out pieces for the control-error floor")
    args = ap.parse_args()
    loaded = checkpoint.load(args.checkpoint)
    valence_ceilings(loaded, args.seeds)
    control_floor(args.checkpoint, loaded, args.pieces)


if __name__ == "__main__":
    main()
