"""Evaluate a checkpoint: ``python -m composer.training.evaluate [--checkpoint checkpoints/composer.pt]``.

Conditions come from held-out pieces: each piece's per-bar valence/arousal (first
``duration`` seconds) is the target arc, and cuts fall at seeded random times 3-8 s
apart. These systems are run on the same conditions:

* ``model+plan``: the conditioned model, unaided, told the plan that
  :func:`composer.music.harmony.plan_harmony` makes for the target arc and cuts (key,
  chord of each moment, seconds to the next change): the product's use of a model with
  plan input. Nothing is forced or snapped;
* ``model``: the conditioned model, unaided, without a plan (the model alone decides where chords change);
* ``model+force``: the same with chord changes forced onto cuts it misses (``--force``);
* ``model+cfgG``: conditioned, unaided, with classifier-free guidance of strength G (``--guidance G``);
* ``null``: the same weights on the null condition (no VA, no cut information, no plan);
* ``rules``: :class:`composer.music.rules.RuleSource` melody over a fixed I-IV-V-vi block-chord
  plan (major if the arc's valence is >= 0, else minor) that changes chord on every cut.

Metrics: chord following of ``model+plan`` (the share of its notes whose pitch class lies
in the planned chord, and in the planned scale, at the note's onset, before any snapping);
control error (mean |target - measured| per bar of valence and arousal, each
normalised to [0, 1] by dividing by the range 2, measured by
:func:`analysis.music.symbolic.bar_va`); cut hit rate (share of cuts with a chord change,
i.e. a ``CHORD`` token, within 0.1 s); musical statistics per piece (pitch-class entropy,
scale consistency, groove consistency, note density) compared with the held-out real
pieces as the overlapping area (OA, 1 = same distribution) of Gaussian KDEs; and speed.
Groove consistency compares onset patterns across the piece's bars: for ``model+plan`` the
plan's downbeats, as for ``rules`` (the model's own ``BAR`` tokens, read as well, are
``OA_groove_consistency_bar_tokens``); elsewhere the ``BAR`` tokens.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pretty_midi

from analysis.arc import EmotionArc
from composer.model import checkpoint
from composer.model.plan import plan_following
from composer.model.tokens import Tokenizer
from composer.music.harmony import HarmonyPlan, plan_harmony
from composer.music.notes import ChordSpan, MaterialRequest
from composer.music.rules import RuleSource
from composer.music.styles import AEOLIAN, IONIAN, get_style
from composer.training.data import DataConfig, TokenData, build


@dataclass(frozen=True)
class Condition:
    name: str
    arc: EmotionArc
    cuts: tuple[float, ...]
    duration: float


@dataclass(frozen=True)
class PieceStats:
    pc_entropy: float
    scale_consistency: float
    groove_consistency: float
    note_density: float


# --------------------------------------------------------------------------- metrics


def piece_stats(pm: pretty_midi.PrettyMIDI, bar_times: np.ndarray, duration: float) -> PieceStats:
    """Musical statistics of one piece (pitched notes; bars from ``bar_times``)."""
    notes = [n for i in pm.instruments if not i.is_drum for n in i.notes if n.start < duration]
    if not notes:
        return PieceStats(0.0, 0.0, 0.0, 0.0)
    hist = np.zeros(12)
    for n in notes:
        hist[n.pitch % 12] += n.end - n.start
    p = hist / hist.sum()
    entropy = float(-(p[p > 0] * np.log2(p[p > 0])).sum())
    counts = np.bincount([n.pitch % 12 for n in notes], minlength=12)
    scale = max(counts[[(r + i) % 12 for i in s]].sum() for r in range(12) for s in (IONIAN, AEOLIAN)) / counts.sum()
    onsets = np.array(sorted(n.start for n in notes))
    bars = np.asarray(bar_times, float)
    bars = bars[bars < duration]
    patterns = []
    for a, b in zip(bars, np.append(bars[1:], duration), strict=False):
        if b - a < 0.2:
            continue
        o = onsets[(onsets >= a) & (onsets < b)]
        pat = np.zeros(16, bool)
        pat[np.minimum((16 * (o - a) / (b - a)).astype(int), 15)] = True
        patterns.append(pat)
    if len(patterns) > 1:
        pats = np.array(patterns)
        diffs = [np.mean(pats[i] != pats[j]) for i in range(len(pats)) for j in range(i + 1, len(pats))]
        groove = float(1.0 - np.mean(diffs))
    else:
        groove = 1.0
    return PieceStats(entropy, float(scale), groove, len(notes) / duration)


def _window_chord(notes: list[pretty_midi.Note], a: float, b: float) -> tuple[int, str] | None:
    """Best root x quality template of the pitch classes sounding in [a, b) (the training labels'
    scoring, :func:`composer.training.chords.best_chords`); None if silent."""
    from composer.training.chords import TEMPLATES, best_chords

    hist = np.zeros((1, 12))
    for n in notes:
        hist[0, n.pitch % 12] += max(0.0, min(n.end, b) - max(n.start, a))
    return best_chords(hist, tuple(TEMPLATES))[0]


def note_cut_hits(pm: pretty_midi.PrettyMIDI, cuts: tuple[float, ...], *, span: float = 0.6) -> list[bool]:
    """Cut hits read from the notes, not the CHORD tokens: a note starts within 0.1 s of the cut and the
    best-matching chord of the ``span`` seconds after it differs from that of the ``span`` seconds before."""
    notes = [n for i in pm.instruments if not i.is_drum for n in i.notes]
    onsets = np.array(sorted(n.start for n in notes)) if notes else np.zeros(0)
    out = []
    for c in cuts:
        near = onsets.size > 0 and float(np.min(np.abs(onsets - c))) <= 0.1
        out.append(bool(near and _window_chord(notes, c - span, c) != _window_chord(notes, c, c + span)))
    return out


def control_error(pm: pretty_midi.PrettyMIDI, arc: EmotionArc) -> tuple[float, float]:
    """Mean |target - measured| per bar of (valence, arousal), each on [0, 1]."""
    from analysis.music.symbolic import bar_va

    if not any(i.notes for i in pm.instruments):
        return 0.5, 0.5
    bars = bar_va(pm)
    mid = (bars.starts + bars.ends) / 2
    tv, ta = np.interp(mid, arc.times, arc.valence), np.interp(mid, arc.times, arc.arousal)
    return float(np.mean(np.abs(tv - bars.valence)) / 2), float(np.mean(np.abs(ta - bars.arousal)) / 2)


def overlap(a: list[float], b: list[float]) -> float:
    """Overlapping area of two Gaussian KDEs (1 = identical distributions)."""
    from scipy.stats import gaussian_kde

    a, b = np.asarray(a, float), np.asarray(b, float)
    lo, hi = min(a.min(), b.min()), max(a.max(), b.max())
    span = max(hi - lo, 1e-3)
    x = np.linspace(lo - 2 * span, hi + 2 * span, 1024)
    jitter = lambda v: v + np.random.default_rng(0).normal(0, 1e-3 * span, v.size)  # noqa: E731 -- singular KDEs
    pa, pb = gaussian_kde(jitter(a))(x), gaussian_kde(jitter(b))(x)
    return float(np.trapezoid(np.minimum(pa, pb), x))


# --------------------------------------------------------------------------- conditions and baselines


def conditions(data: TokenData, *, n: int, duration: float, seed: int = 0) -> list[Condition]:
    """Target arcs (per-bar VA of held-out pieces) and random cuts, reproducible for ``seed``."""
    rng = np.random.default_rng(seed)
    out = []
    lengths = [float(data.times[data.offsets[i + 1] - 1]) for i in range(len(data))]
    order = [i for i in np.argsort([-x for x in lengths]) if lengths[i] >= duration * 0.5][:n]
    for i in sorted(order):
        s, e = int(data.offsets[i]), int(data.offsets[i + 1])
        t, va = data.times[s:e], data.va[s:e].astype(float)
        grid = np.arange(0.25, duration, 0.5)
        idx = np.clip(np.searchsorted(t, np.minimum(grid, t[-1]), side="right") - 1, 0, t.size - 1)
        arc = EmotionArc.from_va(grid, va[idx, 0], va[idx, 1])
        cuts, c = [], float(rng.uniform(2.0, 5.0))
        while c < duration - 1.0:
            cuts.append(round(c, 2))
            c += float(rng.uniform(3.0, 8.0))
        out.append(Condition(data.names[i], arc, tuple(cuts), duration))
    return out


def plan_for(cond: Condition, seed: int, style: str = "cinematic") -> HarmonyPlan:
    """The harmony planner's plan for a condition: what the product gives a model with plan input."""
    return plan_harmony(cond.arc, cond.cuts, cond.duration, style=get_style(style), seed=seed)


def rule_piece(cond: Condition, seed: int) -> tuple[pretty_midi.PrettyMIDI, np.ndarray, np.ndarray]:
    """The rule-based baseline: (MIDI, chord times, bar times) at 100 bpm in 4/4."""
    beat = 0.6
    beats = np.arange(0.0, cond.duration, beat)
    downbeats = beats[::4]
    major = float(np.mean(cond.arc.valence)) >= 0
    scale = IONIAN if major else AEOLIAN
    degrees = (0, 3, 4, 5)
    changes = sorted({*np.round(downbeats[::2], 3).tolist(), *cond.cuts})
    spans = []
    for k, (a, b) in enumerate(zip(changes, [*changes[1:], cond.duration], strict=False)):
        d = degrees[k % 4]
        root = scale[d]
        triad = tuple(scale[(d + j) % 7] for j in (0, 2, 4))
        spans.append(ChordSpan(a, b, root, triad, scale, "", d, "bright" if major else "dark", a in cond.cuts))
    req = MaterialRequest(arc=cond.arc, duration=cond.duration, cuts=cond.cuts, beats=beats, downbeats=downbeats,
                          chords=tuple(spans), tonic=0, seed=seed)
    mat = RuleSource().generate(req)
    pm = pretty_midi.PrettyMIDI(initial_tempo=60.0 / beat)
    lead, pad = pretty_midi.Instrument(program=0), pretty_midi.Instrument(program=48)
    lead.notes = [pretty_midi.Note(n.velocity, n.pitch, n.start, n.end) for n in mat.melody]
    for s in spans:
        aro = float(np.interp((s.start + s.end) / 2, cond.arc.times, cond.arc.arousal))
        vel = int(np.clip(60 + 40 * aro, 1, 127))
        pad.notes += [pretty_midi.Note(vel, 48 + p, s.start, s.end) for p in s.pitches]
    pm.instruments += [lead, pad]
    return pm, np.array(changes), downbeats


# --------------------------------------------------------------------------- main


def run_system(
    system: str, conds: list[Condition], real: list[PieceStats], loaded: checkpoint.Loaded, *, seed: int,
    guidance: float,
) -> dict:
    """One row of the table: ``system`` (see the module docstring) on every condition."""
    from composer.model.generate import CUT_TOLERANCE, generate

    errs, hits, note_hits, stats, forced, secs, music = [], [], [], [], 0, 0.0, 0.0
    token_bar_grooves: list[float] = []  # model+plan: groove read on the model's own BAR tokens as well
    following = np.zeros(3, int)
    for k, c in enumerate(conds):
        if system == "rules":
            pm, chord_times, bar_times = rule_piece(c, seed + k)
            hits += [bool(np.min(np.abs(chord_times - x)) <= CUT_TOLERANCE) for x in c.cuts]
        else:
            plan = plan_for(c, seed + k) if system == "model+plan" else None
            g = generate(c.arc, duration=c.duration, cuts=c.cuts, seed=seed + k, model=loaded,
                         force_cuts=system == "model+force", conditioned=system != "null",
                         guidance=guidance if "cfg" in system else 1.0, plan=plan)
            pm, bar_times = g.midi, np.array(g.bar_times)
            hits += list(g.cut_hits)
            forced += g.forced
            secs += g.compute_seconds
            music += c.duration
            if plan is not None:
                following += plan_following(pm, plan)
                # the piece's bars are the plan's: its tempo map places every note, and the arranger
                # and the score use its downbeats; the model's BAR tokens need not fall on them
                token_bar_grooves.append(piece_stats(pm, bar_times, c.duration).groove_consistency)
                bar_times = np.asarray(plan.downbeats, float)
        note_hits += note_cut_hits(pm, c.cuts)
        errs.append(control_error(pm, c.arc))
        stats.append(piece_stats(pm, bar_times, c.duration))
    e = np.array(errs)
    return {
        "control_error": float(e.mean()),
        "valence_error": float(e[:, 0].mean()),
        "arousal_error": float(e[:, 1].mean()),
        "cut_hit_rate": float(np.mean(hits)),
        "note_cut_hit_rate": float(np.mean(note_hits)),
        "forced_chords": forced,
        "in_chord": float(following[0] / following[2]) if following[2] else None,
        "in_scale": float(following[1] / following[2]) if following[2] else None,
        **{f"OA_{f}": overlap([getattr(s, f) for s in stats], [getattr(r, f) for r in real])
           for f in PieceStats.__dataclass_fields__},
        "speed_x_realtime": music / secs if secs else None,
        "OA_groove_consistency_bar_tokens": overlap(token_bar_grooves, [r.groove_consistency for r in real])
        if token_bar_grooves else None,
    }


def evaluate(
    ckpt: Path = checkpoint.DEFAULT,
    *,
    n: int = 12,
    duration: float = 30.0,
    seed: int = 0,
    threads: int = 2,
    guidance: float | None = None,
    force: bool = False,
    files_from: Path | None = None,
    data_like: Path | None = None,
    response_seeds: int = 16,
) -> dict:
    """Run every system on the same held-out conditions; the results as a dict (see :func:`table`).

    ``response_seeds`` pieces per target in the constant-target sweeps (:func:`response`).

    The held-out pieces: :func:`heldout_data`.
    """
    import torch

    from composer.model.generate import generate
    from composer.training.train import TrainConfig, heldout_loss

    torch.set_num_threads(threads)
    loaded = checkpoint.load(ckpt)
    data = heldout_data(ckpt, loaded, files_from=files_from, data_like=data_like)
    saved = loaded.meta.get("train_config", {})
    tc = TrainConfig(**{**{k: v for k, v in saved.items() if k in TrainConfig.__annotations__}, "eval_batches": 32})
    negated = data.va.copy()
    negated[:, 0] = -negated[:, 0]
    losses = {
        "model": heldout_loss(loaded.model, data, tc),
        "null": heldout_loss(loaded.model, data, tc, conditioned=False),
        # the same windows told the opposite valence: no rise means the model ignores valence
        "valence_negated": heldout_loss(loaded.model, replace(data, va=negated), tc),
    }
    has_plan = bool(loaded.model.config.plan_chords)
    if has_plan:
        losses["plan_dropped"] = heldout_loss(loaded.model, data, tc, plan=False)
    conds = conditions(data, n=n, duration=duration, seed=seed)
    tok = loaded.tokenizer
    real = []
    for c in conds:
        i = data.names.index(c.name)
        dec = tok.decode(data.piece(i))
        real.append(piece_stats(dec.midi, np.array(dec.bar_times), min(duration, dec.duration)))
    rows: dict[str, dict] = {}
    systems = [*(["model+plan"] if has_plan else []), "model", *(["model+force"] if force else []),
               *([f"model+cfg{guidance:g}"] if guidance else []), "null", "rules"]
    for system in systems:
        rows[system] = run_system(system, conds, real, loaded, seed=seed, guidance=guidance or 1.0)
    arc60 = EmotionArc.constant(60.0, valence=0.2, arousal=0.2)
    cond60 = Condition("speed", arc60, (12.0, 31.5, 47.0), 60.0)
    t0 = time.perf_counter()
    g60 = generate(arc60, duration=60.0, cuts=cond60.cuts, seed=seed, model=loaded,
                   plan=plan_for(cond60, seed) if has_plan else None)
    speed60 = time.perf_counter() - t0
    sweep = functools.partial(response, loaded, duration=duration, seeds=response_seeds)
    sweeps = {"model": sweep()}
    if has_plan:
        sweeps["model+plan"] = sweep(plan=True)
    if guidance:
        sweeps[f"model+cfg{guidance:g}"] = sweep(guidance=guidance)
    return {"checkpoint": str(ckpt), "pieces": len(conds), "duration": duration, "seed": seed,
            "heldout_loss": losses, "systems": rows, "response": sweeps,
            "seconds_for_60s_piece": speed60, "tokens_60s": int(g60.tokens.size)}


def heldout_data(
    ckpt: Path, loaded: checkpoint.Loaded, *, files_from: Path | None = None, data_like: Path | None = None
) -> TokenData:
    """The held-out pieces of the corpus files in ``files_from`` (default: the list beside the
    checkpoint), labelled with the checkpoint's own data settings, or with those of the checkpoint
    ``data_like`` (to score an older checkpoint on a newer split). Only they need to be parsed."""
    files = files_from or Path(ckpt).with_name("composer-files.txt")
    only = files.read_text().split() if files.exists() else None
    settings = _data_config(checkpoint.load(data_like).meta if data_like else loaded.meta)
    return build(Tokenizer(loaded.tokenizer.config), settings, only=only, heldout_only=True)["heldout"]


def _data_config(meta: dict) -> DataConfig:
    """The data settings a checkpoint was trained with (so its held-out split loads from the same cache)."""
    saved = meta.get("data_config") or {}
    fields = DataConfig.__dataclass_fields__
    return DataConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in saved.items() if k in fields})


def response(
    loaded: checkpoint.Loaded, *, duration: float = 30.0, seeds: int = 16, guidance: float = 1.0, plan: bool = False
) -> dict:
    """How far the measured valence and arousal move when the target does, one axis at a time.

    Constant targets (valence -0.6 / 0 / +0.6 at arousal 0.1; arousal -0.4 / +0.2 / +0.7 at
    valence 0.2), ``seeds`` pieces each, no cuts; per target the mean of
    :func:`analysis.music.symbolic.bar_va` over the bars of every piece. ``slope`` is the least-squares
    slope of measured on target (1 = follows exactly, 0 = ignores the condition). With ``plan``
    each piece is told the harmony planner's plan for its target (:func:`plan_for`, no cuts).
    """
    from analysis.music.symbolic import bar_va
    from composer.model.generate import generate

    sweeps = {"valence": [(v, 0.1) for v in (-0.6, 0.0, 0.6)], "arousal": [(0.2, a) for a in (-0.4, 0.2, 0.7)]}
    out: dict[str, dict] = {}
    for col, (axis, targets) in enumerate(sweeps.items()):
        measured = []
        for v, a in targets:
            arc = EmotionArc.constant(duration, valence=v, arousal=a)
            vals = []
            for k in range(seeds):
                p = plan_for(Condition("response", arc, (), duration), k) if plan else None
                pm = generate(arc, duration=duration, seed=k, model=loaded, guidance=guidance, plan=p).midi
                if any(i.notes for i in pm.instruments):
                    vals.append(float(np.mean(getattr(bar_va(pm), axis))))
            measured.append(float(np.mean(vals)) if vals else float("nan"))
        x = np.array([t[col] for t in targets])
        out[axis] = {"targets": x.tolist(), "measured": measured,
                     "slope": float(np.polyfit(x, np.array(measured), 1)[0])}
    return out


def table(res: dict) -> str:
    cols = ["control_error", "valence_error", "arousal_error", "cut_hit_rate", "note_cut_hit_rate", "in_chord",
            "in_scale", "OA_pc_entropy", "OA_scale_consistency", "OA_groove_consistency", "OA_note_density"]
    lines = ["| system | " + " | ".join(cols) + " |", "|" + " --- |" * (len(cols) + 1)]
    for name, row in res["systems"].items():
        cells = ("-" if row[c] is None else f"{row[c]:.3f}" for c in cols)
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Evaluate the conditional generator against its baselines.")
    ap.add_argument("--checkpoint", type=Path, default=checkpoint.DEFAULT)
    ap.add_argument("--pieces", type=int, default=12)
    ap.add_argument("--duration", type=float, default=30.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--guidance", type=float, default=None, help="also run classifier-free guidance of this strength")
    ap.add_argument("--force", action="store_true", help="also run the model with chords forced onto missed cuts")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--files-from", type=Path, default=None, help="corpus file list (default: beside the checkpoint)")
    ap.add_argument("--data-like", type=Path, default=None,
                    help="load the held-out split with this checkpoint's data settings (compare an older model)")
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    ap.add_argument("--response-seeds", type=int, default=16,
                    help="pieces per target in the constant-target sweeps (4 before 2026-12-03: too noisy)")
    args = ap.parse_args(argv)
    res = evaluate(args.checkpoint, n=args.pieces, duration=args.duration, seed=args.seed, threads=args.threads,
                   guidance=args.guidance, force=args.force, files_from=args.files_from, data_like=args.data_like,
                   response_seeds=args.response_seeds)
    loss = res["heldout_loss"]
    print("held-out loss: " + ", ".join(f"{k.replace('_', ' ')} {v:.4f}" for k, v in loss.items()))
    print(table(res))
    for system, sweeps in res["response"].items():
        for axis, r in sweeps.items():
            pairs = ", ".join(f"{t:+.1f} -> {m:+.2f}" for t, m in zip(r["targets"], r["measured"], strict=True))
            print(f"{system} {axis} response (target -> measured): {pairs}; slope {r['slope']:.2f}")
    print(f"60 s piece in {res['seconds_for_60s_piece']:.2f} s ({res['tokens_60s']} tokens)")
    if args.json:
        args.json.write_text(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
