"""Agreement of the audio and MIDI music estimators on music21 corpus pieces rendered with FluidSynth.

Each piece is varied (tempo, velocity, transposition, GM instrument), rendered with
``analysis.music.audio.render_midi``, and both estimators read it on the same 0.5 s
grid. Prints per-piece and pooled agreement (Pearson r and mean |diff| of valence and
arousal), and with ``--fit`` the least-squares calibration of the raw audio readings
(register, dBFS, consonance, onset rate) against their symbolic counterparts, to paste
into ``analysis/music/audio.py``.

    .venv/bin/python bench/music_audio_agreement.py [--fit] [--pieces N]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pretty_midi

from analysis.music.audio import SR, analyze_audio, render_midi
from analysis.music.symbolic import midi_features, score_to_midi

PIECES = (
    "bach/bwv66.6", "bach/bwv1.6", "bach/bwv10.7", "bach/bwv269", "bach/bwv255",
    "bach/bwv84.5", "bach/bwv244.3", "bach/bwv281",
)
# (tempo factor, velocity factor, transpose, GM program)
VARIANTS = ((1.0, 1.0, 0, 0), (0.6, 0.55, -12, 48), (1.7, 1.25, 12, 0), (1.2, 0.8, 0, 73), (0.8, 1.1, 0, 19))


def variant(pm: pretty_midi.PrettyMIDI, *, tempo: float, velocity: float, transpose: int, program: int):
    out = pretty_midi.PrettyMIDI(initial_tempo=float(pm.get_tempo_changes()[1][0]) * tempo)
    for inst in pm.instruments:
        new = pretty_midi.Instrument(program=program, is_drum=inst.is_drum)
        for n in inst.notes:
            new.notes.append(pretty_midi.Note(
                velocity=int(np.clip(round(n.velocity * velocity), 1, 127)),
                pitch=int(np.clip(n.pitch + transpose, 0, 127)),
                start=n.start / tempo, end=n.end / tempo))
        out.instruments.append(new)
    return out


def main() -> None:
    import music21

    ap = argparse.ArgumentParser()
    ap.add_argument("--fit", action="store_true", help="print calibration fits of the raw readings")
    ap.add_argument("--pieces", type=int, default=len(PIECES))
    args = ap.parse_args()
    pooled: dict[str, list] = {k: [] for k in ("mv", "ma", "av", "aa")}
    pairs: dict[str, list] = {k: [] for k in ("register", "db", "consonance", "onset_rate")}
    t_midi = t_audio = 0.0
    for name in PIECES[: args.pieces]:
        base = score_to_midi(music21.corpus.parse(name))
        for tf, vf, tr, prog in VARIANTS:
            pm = variant(base, tempo=tf, velocity=vf, transpose=tr, program=prog)
            t0 = time.perf_counter()
            mf = midi_features(pm)
            mv, ma = mf.va()
            t_midi += time.perf_counter() - t0
            y = render_midi(pm)
            t0 = time.perf_counter()
            au = analyze_audio(y, SR)
            t_audio += time.perf_counter() - t0
            n = min(len(mv), len(au.arc))
            av, aa = au.arc.valence[:n], au.arc.arousal[:n]
            for k, x in zip(("mv", "ma", "av", "aa"), (mv[:n], ma[:n], av, aa), strict=True):
                pooled[k].append(x)
            for k, sym in (("register", mf.register), ("db", mf.velocity), ("consonance", mf.consonance),
                           ("onset_rate", mf.density)):
                pairs[k].append(np.stack([au.raw[k][:n], sym[:n]], 1))
            print(f"{name:14s} t{tf:.1f} v{vf:.2f} {tr:+3d} p{prog:<3d} "
                  f"V r={np.corrcoef(mv[:n], av)[0, 1]:+.2f} |d|={np.abs(mv[:n] - av).mean():.2f}  "
                  f"A r={np.corrcoef(ma[:n], aa)[0, 1]:+.2f} |d|={np.abs(ma[:n] - aa).mean():.2f}  "
                  f"mean V midi {mv.mean():+.2f} audio {av.mean():+.2f} A midi {ma.mean():+.2f} audio {aa.mean():+.2f}")
    cat = {k: np.concatenate(v) for k, v in pooled.items()}
    print(f"\npooled over {len(pooled['mv'])} renders, {cat['mv'].size} windows:")
    for axis, m, a in (("valence", cat["mv"], cat["av"]), ("arousal", cat["ma"], cat["aa"])):
        print(f"  {axis} r={np.corrcoef(m, a)[0, 1]:.3f} mean|diff|={np.abs(m - a).mean():.3f}")
    print(f"  mean valence midi {cat['mv'].mean():+.3f} audio {cat['av'].mean():+.3f}; "
          f"mean arousal midi {cat['ma'].mean():+.3f} audio {cat['aa'].mean():+.3f}")
    print(f"  estimator time: midi {t_midi:.2f} s, audio {t_audio:.2f} s")
    if args.fit:
        for k, v in pairs.items():
            xy = np.concatenate(v)
            xy = xy[np.all(np.isfinite(xy), 1)]
            if k == "db":
                xy = xy[xy[:, 1] > 0]
            b, a = np.polyfit(xy[:, 0], xy[:, 1], 1)
            r = np.corrcoef(xy[:, 0], xy[:, 1])[0, 1]
            print(f"  fit {k}: sym = {a:.3f} + {b:.4f} * raw   (r={r:.3f}, n={len(xy)})")


if __name__ == "__main__":
    main()
