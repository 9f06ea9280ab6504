"""Train the audio music-emotion reader of :mod:`analysis.music.emotion` (``checkpoints/music_emotion.npz``).

Data: music21 corpus pieces (Bach chorales, Corelli, Schoenberg op. 19, Joplin, Monteverdi)
cropped to ``--seconds``; each piece gives ``--variants`` copies with seeded General MIDI
programs (:data:`PROGRAMS`: keyboards, mallets, plucked and bowed strings, choir, brass,
winds, pads), tempo x[0.55, 1.9], velocity x[0.45, 1.35], transposition [-7, +7], a
major<->minor flip (:func:`analysis.music.symbolic.change_mode`) half the time, a drum kit
on a third of them and shortened (staccato) notes on a quarter. Labels: the symbolic
estimator's per-window valence/arousal (:func:`analysis.music.symbolic.midi_arc`) of the
varied MIDI. Audio: FluidSynth (:func:`analysis.music.audio.render_midi`), then room
reverb, an EQ tilt, noise and a gain change, so that the reader transfers to recordings.

Pieces are split (CRC32 of the name mod 10 == 0 held out); the report gives held-out
window r and pairwise accuracy of piece means. The output calibration (``scale``,
``offset``) makes the spread of training predictions match the spread of training labels;
so does the line (``tag_arousal``) that maps the tagger's arousal contrast
(:func:`analysis.music.tagger.arousal_contrast`, recorded per window) onto arousal.

``--real CSV`` adds real recordings whose games label them (combat, peace, victory...;
:mod:`analysis.music.recordings`, fetched by ``bench/fetch_music_truth.py --manifest CSV``):
each window carries its track's label signs, scaled to the rendered labels' spread, with
``--real-share`` of the training weight; ``--cv`` then reports, for every game, a model
fitted without that game's recordings. Never pass the validation set
(``bench/data/music_truth.csv``) here.

    .venv/bin/python -m analysis.music.train_emotion [--pieces 250] [--variants 5] [--hidden 0] [--l2 0.1]
        [--real bench/data/music_other_games.csv --real-share 0.5 --cv]
"""

from __future__ import annotations

import argparse
import dataclasses
import time
import zlib
from pathlib import Path

import numpy as np

from analysis.music.emotion import CHECKPOINT, FEATURE_VERSION, EmotionModel, window_features
from analysis.music.recordings import pairwise_accuracy
from analysis.music.tagger import arousal_contrast, window_logits

CACHE = Path.home() / ".cache" / "soundtrack" / "music_emotion"
#: The real-recording validation set (bench/data/music_truth.csv): its packages are refused as training data.
VALIDATION = Path(__file__).resolve().parents[2] / "bench" / "data" / "music_truth.csv"
EXTRA = ("corelli/opus3no1/1grave", "schoenberg/opus19/movement2", "schoenberg/opus19/movement6",
         "joplin/maple_leaf_rag", "monteverdi/madrigal.3.1.mxl", "monteverdi/madrigal.4.1.mxl",
         "monteverdi/madrigal.5.3.mxl",
         "webern/opus27/movement2")  # not in music21 10's corpus: skipped, kept so --pieces picks the same list
PROGRAMS = (0, 0, 1, 4, 6, 11, 12, 13, 19, 24, 25, 40, 41, 42, 45, 46, 48, 48, 49, 52, 56, 57, 60, 61, 68, 70, 71,
            73, 89, 91, 105)


def corpus_midis(n_pieces: int) -> list[tuple[str, object]]:
    """``(name, PrettyMIDI)`` of up to ``n_pieces`` corpus pieces, parsed once into the cache."""
    import pretty_midi
    from music21 import corpus

    from analysis.music.symbolic import score_to_midi

    chorales = sorted(str(p) for p in corpus.getComposer("bach") if "bwv" in Path(p).name)
    names = list(EXTRA) + [str(Path(p).relative_to(Path(p).parents[1])) for p in chorales]
    out = []
    (CACHE / "midi").mkdir(parents=True, exist_ok=True)
    for name in names[: n_pieces]:
        file = CACHE / "midi" / (name.replace("/", "__") + ".mid")
        try:
            if not file.is_file():
                score_to_midi(corpus.parse(name)).write(str(file))
            pm = pretty_midi.PrettyMIDI(str(file))
        except Exception as err:  # music21 raises many types on odd corpus files
            print(f"skip {name}: {type(err).__name__}: {err}")
            continue
        if any(i.notes for i in pm.instruments):
            out.append((name, pm))
    return out


def vary(pm, rng: np.random.Generator, seconds: float):
    """A seeded variant of ``pm`` (programs, tempo, velocity, transposition, mode, drums, staccato), cropped."""
    import pretty_midi

    from analysis.errors import ParameterError
    from analysis.music.symbolic import change_mode, estimate_key

    tempo = float(rng.uniform(0.55, 1.9))
    vel = float(rng.uniform(0.45, 1.35))
    transpose = int(rng.integers(-7, 8))
    stacc = rng.random() < 0.25
    start_bpm = float(pm.get_tempo_changes()[1][0]) if len(pm.get_tempo_changes()[1]) else 120.0
    out = pretty_midi.PrettyMIDI(initial_tempo=start_bpm * tempo)
    for inst in pm.instruments:
        if inst.is_drum:
            continue
        new = pretty_midi.Instrument(program=int(rng.choice(PROGRAMS)))
        for n in inst.notes:
            s, e = n.start / tempo, n.end / tempo
            if s >= seconds:
                continue
            e = s + 0.4 * (e - s) if stacc else e
            new.notes.append(pretty_midi.Note(
                velocity=int(np.clip(round(n.velocity * vel * rng.uniform(0.9, 1.1)), 1, 127)),
                pitch=int(np.clip(n.pitch + transpose, 21, 108)), start=s, end=min(e, seconds)))
        if new.notes:
            out.instruments.append(new)
    if rng.random() < 0.5:
        try:
            key = estimate_key(out)
            change_mode(out, to="minor" if key.mode == "major" else "major", key=key)
        except ParameterError:
            pass
    if rng.random() < 0.33:
        out.instruments.append(_drums(start_bpm * tempo, min(seconds, out.get_end_time()), rng))
    return out


def _drums(bpm: float, seconds: float, rng: np.random.Generator):
    """A plain kit: kick on 1 and 3, snare on 2 and 4, hi-hat eighths (or toms/timpani-like hits)."""
    import pretty_midi

    kit = pretty_midi.Instrument(program=0, is_drum=True)
    beat = 60.0 / max(bpm, 30.0)
    level = float(rng.uniform(0.5, 1.0))
    toms = rng.random() < 0.4
    t, i = 0.0, 0
    while t < seconds:
        hits = [(36, 110)] if i % 2 == 0 else [(38 if not toms else 45, 100)]
        hits.append((42, 70) if not toms else (41, 85))
        for pitch, v in hits:
            kit.notes.append(pretty_midi.Note(velocity=int(v * level), pitch=pitch, start=t, end=t + 0.1))
        if not toms:
            kit.notes.append(pretty_midi.Note(velocity=int(55 * level), pitch=42, start=t + beat / 2,
                                              end=t + beat / 2 + 0.05))
        t += beat
        i += 1
    return kit


def augment(y: np.ndarray, sr: int, rng: np.random.Generator) -> np.ndarray:
    """Room reverb, an EQ tilt, noise and a gain change (seeded)."""
    from scipy.signal import fftconvolve

    y = y.astype(np.float64)
    if rng.random() < 0.7:
        rt60 = rng.uniform(0.3, 2.5)
        n = int(sr * min(rt60, 1.5))
        ir = rng.standard_normal(n) * np.exp(-6.9 * np.arange(n) / (rt60 * sr))
        wet = fftconvolve(y, ir / np.sqrt(np.sum(ir ** 2)))[: y.size]
        mix = rng.uniform(0.1, 0.5)
        y = (1 - mix) * y + mix * wet
    spec = np.fft.rfft(y)
    f = np.fft.rfftfreq(y.size, 1.0 / sr)
    tilt = rng.uniform(-4.0, 4.0)  # dB per octave around 1 kHz
    spec *= 10 ** (tilt * np.log2(np.maximum(f, 30.0) / 1000.0) / 20)
    y = np.fft.irfft(spec, n=y.size)
    if rng.random() < 0.5:
        pink = np.fft.irfft(np.fft.rfft(rng.standard_normal(y.size)) / np.sqrt(np.maximum(f, 20.0)), n=y.size)
        snr = rng.uniform(20.0, 45.0)
        y = y + pink * np.sqrt(np.mean(y ** 2) / max(np.mean(pink ** 2), 1e-12)) * 10 ** (-snr / 20)
    y = y * 10 ** (rng.uniform(-8.0, 6.0) / 20)
    return np.clip(y, -1.0, 1.0).astype(np.float32)


def build(n_pieces: int, variants: int, seconds: float, seed: int) -> dict[str, np.ndarray]:
    """Features, tagger arousal contrast, labels and piece ids of every window of every rendered variant."""
    from analysis.music.audio import SR, render_midi
    from analysis.music.symbolic import midi_arc

    rng = np.random.default_rng(seed)
    xs, tags, ys, ids, held = [], [], [], [], []
    pieces = corpus_midis(n_pieces)
    t0 = time.perf_counter()
    for k, (name, pm) in enumerate(pieces):
        for _ in range(variants):
            var = vary(pm, rng, seconds)
            if not any(i.notes for i in var.instruments if not i.is_drum):
                continue
            arc = midi_arc(var)
            y = augment(render_midi(var, sr=SR), SR, rng)
            t, x = window_features(y, SR)
            n = min(len(x), len(arc.times))
            xs.append(x[:n])
            tags.append(arousal_contrast(window_logits(y, SR, t[:n])))
            ys.append(np.column_stack([arc.valence[:n], arc.arousal[:n]]))
            ids.append(np.full(n, len(held)))
            held.append(zlib.crc32(name.encode()) % 10 == 0)
        if k % 10 == 0:
            print(f"{k + 1}/{len(pieces)} pieces, {time.perf_counter() - t0:.0f} s", flush=True)
    return {"x": np.concatenate(xs), "tags": np.concatenate(tags), "y": np.concatenate(ys),
            "ids": np.concatenate(ids), "held": np.array(held)}


def real_windows(manifest: Path, seconds: float) -> dict[str, np.ndarray]:
    """Features of the first ``seconds`` of every recording of ``manifest``, each window labelled
    with its track's valence/arousal signs; ``ids`` number the tracks, ``held`` marks held-out tracks."""
    import hashlib

    from analysis.music.audio import SR
    from analysis.music.recordings import read_manifest
    from analysis.music.track import load_audio

    tracks = read_manifest(manifest)
    reserved = {r.package for r in read_manifest(VALIDATION)} if VALIDATION.is_file() else set()
    clash = sorted(p for p in {t.package for t in tracks} if p in reserved or "wesnoth" in p)
    if clash:
        raise SystemExit(f"{manifest} lists {', '.join(clash)}: the validation set's packages and Wesnoth's "
                         "recordings are never trained on")
    missing = [t.path for t in tracks if not t.local.is_file()]
    if missing:
        raise SystemExit(f"{len(missing)} recordings of {manifest} are not fetched: "
                         f"bench/fetch_music_truth.py --manifest {manifest}")
    key = hashlib.sha256(manifest.read_bytes()).hexdigest()[:12]
    cache = CACHE / f"real-{key}-{seconds:g}-v{FEATURE_VERSION}.npz"
    if cache.is_file():
        return dict(np.load(cache))
    xs, ys, ids = [], [], []
    for k, t in enumerate(tracks):
        y = load_audio(t.local, sr=SR)[: int(seconds * SR)]
        _, x = window_features(y, SR)
        xs.append(x)
        ys.append(np.tile([float(t.valence), float(t.arousal)], (len(x), 1)))
        ids.append(np.full(len(x), k))
    held = np.array([zlib.crc32(t.path.encode()) % 10 == 0 for t in tracks])
    data = {"x": np.concatenate(xs), "y": np.concatenate(ys), "ids": np.concatenate(ids), "held": held,
            "source": np.array([t.source for t in tracks])}
    np.savez_compressed(cache, **data)
    return data


def fit(
    x: np.ndarray, y: np.ndarray, *, hidden: int, l2: float, steps: int, seed: int, weight: np.ndarray | None = None,
    z_clip: float = np.inf,
) -> EmotionModel:
    """A tanh hidden layer plus a linear skip (ridge alone when ``hidden`` is 0), full-batch Adam on MSE.

    ``weight`` (per window, or per window and axis; ridge only) lets a few long real recordings
    count as much as many short rendered copies, and leaves out an axis a recording has no label for."""
    mean, std = x.mean(0), np.maximum(x.std(0), 1e-6)
    z = np.clip((x - mean) / std, -z_clip, z_clip)
    rng = np.random.default_rng(seed)
    f = z.shape[1]
    if hidden and weight is not None:
        raise ValueError("window weights are supported by the ridge fit only (hidden 0)")
    w = np.ones((len(z), 2)) if weight is None else np.asarray(weight, float).reshape(len(z), -1) * np.ones(2)
    w = w * len(z) / w.sum(0)
    zs = np.column_stack([z, np.ones(len(z))])
    ridge = np.column_stack([
        np.linalg.solve(zs.T @ (zs * w[:, j, None]) + l2 * len(z) * np.diag([1.0] * f + [0.0]),
                        zs.T @ (y[:, j] * w[:, j]))
        for j in range(2)
    ])  # (F+1, 2)
    p = {"w1": rng.normal(0, 1 / np.sqrt(f), (f, hidden)), "b1": np.zeros(hidden),
         "w2": np.concatenate([np.zeros((hidden, 2)), ridge[:f]]), "b2": ridge[f].copy()}
    m = {k: np.zeros_like(v) for k, v in p.items()}
    v = {k: np.zeros_like(val) for k, val in p.items()}
    for step in range(1, steps + 1 if hidden else 1):
        h = np.tanh(z @ p["w1"] + p["b1"])
        hz = np.concatenate([h, z], axis=1)
        err = (hz @ p["w2"] + p["b2"] - y) * (2.0 / len(z))
        g = {"w2": hz.T @ err + 2 * l2 * p["w2"], "b2": err.sum(0)}
        dh = (err @ p["w2"][:hidden].T) * (1 - h ** 2)
        g["w1"], g["b1"] = z.T @ dh + 2 * l2 * p["w1"], dh.sum(0)
        for k in p:
            m[k] = 0.9 * m[k] + 0.1 * g[k]
            v[k] = 0.999 * v[k] + 0.001 * g[k] ** 2
            p[k] -= 3e-3 * (m[k] / (1 - 0.9 ** step)) / (np.sqrt(v[k] / (1 - 0.999 ** step)) + 1e-8)
    model = EmotionModel(mean=mean, std=std, scale=np.ones(2), offset=np.zeros(2), z_clip=z_clip, **p)
    raw = model.predict(x)  # clipped; fine for a spread estimate
    avg = lambda a: (a * w).sum(0) / w.sum(0)  # noqa: E731
    wstd = lambda a: np.sqrt(avg((a - avg(a)) ** 2))  # noqa: E731
    scale = wstd(y) / np.maximum(wstd(raw), 1e-6)
    offset = avg(y) - scale * avg(raw)
    return EmotionModel(mean=mean, std=std, scale=scale, offset=offset, z_clip=z_clip, **p)


def calibrate_tags(contrast: np.ndarray, arousal: np.ndarray) -> np.ndarray:
    """``(scale, offset)`` that give the tagger's arousal contrast the mean and spread of the
    arousal labels (the sign of their correlation, positive on the shipped data)."""
    r = np.corrcoef(contrast, arousal)[0, 1]
    scale = np.sign(r) * arousal.std() / max(contrast.std(), 1e-6)
    return np.array([scale, arousal.mean() - scale * contrast.mean()])


def report(model: EmotionModel, data: dict[str, np.ndarray], mask: np.ndarray, title: str, *,
           tags: bool = True) -> str:
    """Window Pearson r and pairwise accuracy of per-copy means on the windows in ``mask``
    (arousal with the tagger's where the data hold its contrast, unless ``tags`` is false)."""
    contrast = data["tags"][mask] if tags and "tags" in data else None
    pred, y, ids = model.predict(data["x"][mask], contrast), data["y"][mask], data["ids"][mask]
    out = [title]
    for j, axis in enumerate(("valence", "arousal")):
        r = np.corrcoef(pred[:, j], y[:, j])[0, 1] if y[:, j].std() > 0 else float("nan")
        u = np.unique(ids)
        acc, _ = pairwise_accuracy([pred[ids == i, j].mean() for i in u], [y[ids == i, j].mean() for i in u])
        out.append(f"  {axis}: window r {r:.3f}, copy-mean pairwise accuracy {acc:.3f} ({len(u)} copies)")
    return "\n".join(out)


def with_real(data: dict[str, np.ndarray], real: dict[str, np.ndarray], share: float):
    """Training windows, labels and per-axis weights: the rendered copies' plus the real recordings',
    the real labels scaled to the rendered labels' spread and given ``share`` of the total weight
    (none on an axis a recording has no label for)."""
    syn = ~data["held"][data["ids"]]
    keep = ~real["held"][real["ids"]]
    ys, yr = data["y"][syn], real["y"][keep]
    known = yr != 0  # 0: the game gives no label on that axis
    yr = np.sign(yr) * ys.std(0)  # a +-1 label becomes +- one standard deviation of the rendered labels
    w = np.concatenate([np.full((len(ys), 2), (1 - share) / max(len(ys), 1)),
                        known * share / np.maximum(known.sum(0), 1)])
    return np.concatenate([data["x"][syn], real["x"][keep]]), np.concatenate([ys, yr]), w


def cross_validate(data: dict[str, np.ndarray], real: dict[str, np.ndarray], share: float, l2: float) -> str:
    """Track-mean pairwise accuracy on real recordings, each predicted by a model fitted without its
    game (leave one source out; five folds by track when there is one source)."""
    sources = real["source"]
    folds = sources if len(set(sources)) > 1 else np.arange(len(sources)) % 5
    pred = np.zeros((len(sources), 2))
    for fold in np.unique(folds):
        out = folds[real["ids"]] == fold
        train = {**real, "held": folds == fold}
        x, y, w = with_real(data, train, share)
        model = fit(x, y, hidden=0, l2=l2, steps=0, seed=0, weight=w)
        for k in np.flatnonzero(folds == fold):
            pred[k] = model.predict(real["x"][out & (real["ids"] == k)]).mean(0)
    labels = np.array([real["y"][real["ids"] == k][0] for k in range(len(sources))])
    lines = [f"cross-validated on real recordings ({'by game' if len(set(sources)) > 1 else 'five folds'})"]
    for j, axis in enumerate(("valence", "arousal")):
        acc, pairs = pairwise_accuracy(pred[:, j], labels[:, j])
        spread = pred[labels[:, j] != 0, j].std()
        lines.append(f"  {axis}: pairwise accuracy of track means {acc:.3f} ({pairs} pairs), std {spread:.3f}")
    for src in sorted(set(sources)):
        m = sources == src
        lines.append(f"  {src}: " + ", ".join(f"{lab} {pred[m & (labels[:, 1] == a)].mean(0).round(2).tolist()}"
                     for lab, a in (("high", 1), ("low", -1)) if (m & (labels[:, 1] == a)).any()))
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pieces", type=int, default=250)
    ap.add_argument("--variants", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--hidden", type=int, default=0)
    ap.add_argument("--l2", type=float, default=0.1)
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--z-clip", type=float, default=float("inf"),
                    help="clip standardised features to +-Z in training and reading (default: no clip)")
    ap.add_argument("--real", default="", metavar="CSV",
                    help="also train on the labelled real recordings of CSV (e.g. bench/data/music_other_games.csv; "
                         "default: rendered copies only, as shipped)")
    ap.add_argument("--real-seconds", type=float, default=120.0, help="first SECONDS of each real recording")
    ap.add_argument("--real-share", type=float, default=0.5, help="share of the training weight on real recordings")
    ap.add_argument("--cv", action="store_true", help="also cross-validate on the real recordings (by game)")
    ap.add_argument("--out", type=Path, default=CHECKPOINT)
    args = ap.parse_args()
    recipe = zlib.crc32(repr(PROGRAMS).encode())  # the cached copies hold these programs' sounds
    name = f"data-{args.pieces}-{args.variants}-{args.seconds:g}-{args.seed}-v{FEATURE_VERSION}-{recipe:08x}.npz"
    cache = CACHE / name
    t0 = time.perf_counter()
    data = dict(np.load(cache)) if cache.is_file() else {}
    if "tags" not in data:  # not built yet, or by a scratch build of the same version without the tagger
        data = build(args.pieces, args.variants, args.seconds, args.seed)
        np.savez_compressed(cache, **data)
    print(f"{len(data['x'])} windows from {len(data['held'])} copies ({time.perf_counter() - t0:.0f} s)")
    test = data["held"][data["ids"]]
    real = real_windows(Path(args.real), args.real_seconds) if args.real else None
    if real is None:
        x, y, w = data["x"][~test], data["y"][~test], None
    else:
        print(f"{len(real['x'])} windows from {len(real['held'])} real recordings, share {args.real_share}")
        x, y, w = with_real(data, real, args.real_share)
    model = fit(x, y, hidden=args.hidden, l2=args.l2, steps=args.steps, seed=args.seed, weight=w, z_clip=args.z_clip)
    model = dataclasses.replace(model, tag_arousal=calibrate_tags(data["tags"][~test], data["y"][~test, 1]))
    print(f"tagger arousal = {model.tag_arousal[0]:.4f} * contrast + {model.tag_arousal[1]:.4f}")
    print(report(model, data, ~test, "train"))
    print(report(model, data, test, "held-out pieces"))
    print(report(model, data, test, "held-out pieces, model alone", tags=False))
    if real is not None:
        rtest = real["held"][real["ids"]]
        print(report(model, real, ~rtest, "real recordings, train"))
        print(report(model, real, rtest, "real recordings, held out"))
        if args.cv:
            print(cross_validate(data, real, args.real_share, args.l2))
    model.save(args.out, pieces=str(args.pieces), variants=str(args.variants), hidden=str(args.hidden),
               l2=str(args.l2), steps=str(args.steps), seed=str(args.seed), windows=str(len(x)),
               real=Path(args.real).name if args.real else "", real_share=str(args.real_share))
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e3:.0f} kB) in {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
