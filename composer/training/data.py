"""Stage 2 of the training data: cached MIDI -> labelled, augmented token arrays.

Per piece (one MIDI file written by :mod:`composer.training.corpus`):

1. instruments with the same program are merged (chorale voices become one track, so
   ``PROGRAM`` tokens stay rare) and same-pitch overlaps are cut;
2. augmented copies are made (transposition, tempo and velocity scaling), each
   relabelled from scratch so labels match what the copy sounds like;
3. chords are read per beat (:func:`composer.training.chords.beat_chords`) and their changes become ``CHORD``
   tokens; bars are the MIDI's downbeats;
4. valence/arousal per bar come from the symbolic estimator
   (:func:`analysis.music.symbolic.bar_va`) and are spread to every token of the bar.

With ``DataConfig(mode_flip=True)`` each training piece also gets a copy moved to the
other mode (:func:`mode_flipped`), and with ``mode_turn=True`` one that turns to the other
mode at a seeded point 30-70 % through, relabelled like the others.  A turn is where the
notes so far mislead and only the condition tells what comes next. With ``accompany=True``
one more copy sounds the piece's harmony as block chords for a seeded stretch
(:mod:`composer.training.voicing`), so the valence label also moves within one plan.

Held-out pieces (a committed list, made by a fixed hash of the piece name) get no augmentation. Everything lands
in one ``.npz`` under ``data-cache/`` keyed by the tokenizer config, the augmentation
settings and the list of parsed files, so a second run loads in a second.

Boundary offsets are not stored: at batch time a random subset of the chord changes is
taken as stand-in "cuts" and each token gets the seconds to the next one
(:meth:`TokenData.batch`), so the model sees cuts at varied spacings.
"""

from __future__ import annotations

import hashlib
import io
import logging
import zlib
from collections.abc import Collection
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import pretty_midi

from analysis.errors import ParameterError
from analysis.music.symbolic import Key, bar_va, change_mode, estimate_key, music_va
from composer.model.tokens import DRUMS, N_KEYS, Tokenizer, TokenizerConfig
from composer.training.chords import beat_chords
from composer.training.layout import CACHE, is_heldout, midi_dir
from composer.training.voicing import accompaniment

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DataConfig:
    """How the corpus becomes training arrays (part of the cache key)."""

    augment_copies: int = 2
    max_transpose: int = 5
    tempo_range: tuple[float, float] = (0.8, 1.25)
    velocity_range: tuple[float, float] = (0.7, 1.3)
    heldout_percent: int = 5
    max_seconds: float = 600.0
    version: int = 3  # 2: a drums-only piece keeps its copies; 3: plan arrays (key, chord ids, pitched)
    mode_flip: bool = False  # one extra copy per training piece moved to the other mode (major <-> minor)
    mode_turn: bool = False  # one extra copy per training piece that turns to the other mode part-way
    valence_sigma: float = 0.0  # seconds of Gaussian smoothing of the per-bar valence labels (label_piece)
    accompany: bool = False  # one extra copy per training piece with block chords for a stretch (voicing.py)
    key_chords: bool = False  # chord labels break ties toward the piece's key (chords.py), not by table order
    blind_turn: bool = False  # one extra mode-turned copy whose plan (chords, key) stays the original's
    valence_ahead: float = 0.0  # seconds: each bar's valence label is the reading this far ahead (label_piece)


# --------------------------------------------------------------------------- piece prep


def clean(pm: pretty_midi.PrettyMIDI) -> pretty_midi.PrettyMIDI:
    """Merge instruments by program (drums apart) and cut same-pitch overlaps."""
    groups: dict[tuple[int, bool], list[pretty_midi.Note]] = {}
    for inst in pm.instruments:
        groups.setdefault((int(inst.program), bool(inst.is_drum)), []).extend(inst.notes)
    out = pretty_midi.PrettyMIDI(io.BytesIO(_to_bytes(pm)))  # same tempo map and metre, own notes
    out.instruments = []
    for (program, drum), notes in sorted(groups.items()):
        notes = sorted(notes, key=lambda n: (n.pitch, n.start, -n.end))
        kept: list[pretty_midi.Note] = []
        for n in notes:
            if n.end - n.start < 1e-3:
                continue
            if kept and kept[-1].pitch == n.pitch and n.start < kept[-1].end:
                if n.start - kept[-1].start < 1e-3:
                    continue
                kept[-1].end = n.start
            kept.append(pretty_midi.Note(n.velocity, n.pitch, n.start, n.end))
        inst = pretty_midi.Instrument(program=program, is_drum=drum)
        inst.notes = sorted(kept, key=lambda n: (n.start, n.pitch))
        out.instruments.append(inst)
    return out


def augment(pm: pretty_midi.PrettyMIDI, *, transpose: int, tempo: float, velocity: float) -> pretty_midi.PrettyMIDI:
    """A copy transposed by ``transpose`` semitones, played ``tempo`` times faster, louder by ``velocity``."""
    out = _copy(pm)
    for inst in out.instruments:
        for n in inst.notes:
            if not inst.is_drum:
                n.pitch = int(np.clip(n.pitch + transpose, 0, 127))
            n.velocity = int(np.clip(round(n.velocity * velocity), 1, 127))
    if tempo != 1.0:
        end = out.get_end_time() + 1.0
        out.adjust_times([0.0, end], [0.0, end / tempo])
    return out


def mode_flipped(pm: pretty_midi.PrettyMIDI, *, after: float = 0.0, key: Key | None = None) -> pretty_midi.PrettyMIDI:
    """A copy in the other mode (major -> natural minor or minor -> major, by :func:`change_mode`)
    for the notes starting at or after ``after`` seconds; ``key`` is ``pm``'s key if already estimated.

    The corpus mostly keeps one mode per piece, and mode goes with other style features;
    a pair that differs mainly in mode (and so in its valence label) is meant to teach the
    model valence -> mode rather than valence -> style.
    """
    key = key or estimate_key(pm)
    out = _copy(pm)
    change_mode(out, to="minor" if key.mode == "major" else "major", after=after, key=key)
    return out


def accompanied(
    pm: pretty_midi.PrettyMIDI, key: Key, *, start: float = 0.0, end: float = float("inf")
) -> pretty_midi.PrettyMIDI:
    """A copy of ``pm`` with block chords of its own harmony for the beats in ``[start, end)``
    (:func:`composer.training.voicing.accompaniment`); ``pm`` is not changed."""
    out = _copy(pm)
    voice = accompaniment(pm, key, start=start, end=end)
    if voice is not None:
        out.instruments.append(voice)
    return out


def _to_bytes(pm: pretty_midi.PrettyMIDI) -> bytes:
    buf = io.BytesIO()
    pm.write(buf)
    return buf.getvalue()


def _copy(pm: pretty_midi.PrettyMIDI) -> pretty_midi.PrettyMIDI:
    """A deep copy by a MIDI round trip (what a worker would read back from the file)."""
    return pretty_midi.PrettyMIDI(io.BytesIO(_to_bytes(pm)))


@dataclass(frozen=True, eq=False)
class Piece:
    tokens: np.ndarray  # (n,) int16
    times: np.ndarray  # (n,) float32 seconds after each token
    va: np.ndarray  # (n, 2) float16 valence/arousal of each token's bar
    chord_times: np.ndarray  # (k,) float32 chord change times
    chord_ids: np.ndarray  # (k,) int16 chord class of each change (token id - chord_offset)
    key: np.ndarray  # (n,) int8 key at each token, tonic + 12 * minor (24: none, e.g. drums only)
    pitched: np.ndarray  # (n,) bool: a note token of a pitched instrument (moved by transposition)


def smooth_bars(values: np.ndarray, mids: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian-weighted average of per-bar ``values`` over bar mid-times, ``sigma`` seconds wide."""
    if sigma <= 0 or values.size < 2:
        return values
    w = np.exp(-0.5 * ((mids[:, None] - mids[None, :]) / sigma) ** 2)  # (bars, bars)
    return (w @ values) / w.sum(1)


def piece_key(pm: pretty_midi.PrettyMIDI) -> Key | None:
    """The piece's key (:func:`~analysis.music.symbolic.estimate_key`); None for drums only, which
    have no key and no mode to move."""
    return estimate_key(pm) if any(i.notes and not i.is_drum for i in pm.instruments) else None


def key_index(key: Key | None, *, flip: bool = False) -> int:
    """``tonic + 12 * minor`` (24 for no key); ``flip`` gives the other mode on the same tonic."""
    if key is None:
        return N_KEYS
    return key.tonic % 12 + 12 * ((key.mode == "minor") != flip)


def pitched_notes(tokens: np.ndarray, tokenizer: Tokenizer) -> np.ndarray:
    """Per token: a NOTE_ON/NOTE_OFF of a pitched (not drum) instrument."""
    prog = np.full(tokens.size, -1, np.int64)
    is_prog = (tokens >= tokenizer.program_offset) & (tokens < tokenizer.velocity_offset)
    prog[is_prog] = tokens[is_prog] - tokenizer.program_offset
    idx = np.maximum.accumulate(np.where(is_prog, np.arange(tokens.size), 0))
    current = np.where(is_prog[idx], prog[idx], 0)  # program 0 until the first PROGRAM token
    notes = (tokens >= tokenizer.note_on_offset) & (tokens < tokenizer.shift_offset)
    return notes & (current != DRUMS)


def label_piece(
    pm: pretty_midi.PrettyMIDI,
    tokenizer: Tokenizer,
    *,
    valence_sigma: float = 0.0,
    valence_ahead: float = 0.0,
    key: Key | None = None,
    turn: float | None = None,
    key_chords: bool = False,
    plan_from: pretty_midi.PrettyMIDI | None = None,
) -> Piece:
    """Tokens of a cleaned piece with per-token bar VA labels, its chord changes and its key.

    ``key`` is the piece's key (None: no key, e.g. drums only); tokens at or after ``turn``
    seconds get the other mode on the same tonic (a mode-turned copy). ``key_chords`` reads the
    chord labels with ties broken toward that key (:func:`composer.training.chords.beat_chords`).
    ``plan_from`` reads the chords (the plan and the ``CHORD`` tokens) from another version of the
    piece, and keeps the key unturned: a mode-turned copy whose plan does not turn, so that only
    its valence labels say the notes turn.

    ``valence_sigma`` > 0 smooths the per-bar valence over that many seconds: the per-bar
    reading jumps from bar to bar (within-piece sd 0.24 against 0.08 for arousal on the
    corpus subset) while a piece's mode holds, and a model learns to ignore an input that
    noisy; the arcs it is given at run time are smooth too.

    ``valence_ahead`` > 0 labels each bar with the valence read that many seconds later (the last
    bar's beyond the end): a reading over 8 s centred on the bar is mostly known from the notes
    before it, one ahead says where the music goes, which the past notes cannot.
    """
    source = pm if plan_from is None else plan_from
    chords = beat_chords(source, tokenizer, key, turn=turn) if key_chords else beat_chords(source, tokenizer)
    enc = tokenizer.encode(pm, chords=chords)
    bars = bar_va(pm)
    centres = (bars.starts + bars.ends) / 2
    valence = smooth_bars(np.asarray(bars.valence, float), centres, valence_sigma)
    if valence_ahead > 0:
        valence = np.interp(centres + valence_ahead, centres, valence)
    idx = np.clip(np.searchsorted(bars.starts, enc.times, side="right") - 1, 0, bars.starts.size - 1)
    va = np.stack([valence[idx], bars.arousal[idx]], axis=1)
    step = tokenizer.config.time_step  # on the token grid, so a cut sits exactly on its CHORD token
    chord_times = np.array([round(t / step) * step for t, _ in chords], np.float32)
    chord_ids = np.array([tok - tokenizer.chord_offset for _, tok in chords], np.int16)
    keys = np.full(enc.tokens.size, key_index(key), np.int8)
    if key is not None and turn is not None and plan_from is None:
        keys[enc.times >= turn - 1e-6] = key_index(key, flip=True)
    pitched = pitched_notes(enc.tokens.astype(np.int64), tokenizer)
    return Piece(enc.tokens.astype(np.int16), enc.times, va.astype(np.float16), chord_times, chord_ids, keys, pitched)


def _prepare(job: tuple[str, dict, dict]) -> list[tuple[str, bool, Piece]]:
    """Worker: one MIDI file -> its labelled original and augmented copies."""
    path, tok_cfg, data_cfg = job
    tokenizer = Tokenizer(TokenizerConfig(**tok_cfg))
    cfg = DataConfig(**data_cfg)
    name = Path(path).stem
    held = is_heldout(name, cfg.heldout_percent)
    try:
        pm = clean(pretty_midi.PrettyMIDI(path))
        if pm.get_end_time() <= 1.0 or pm.get_end_time() > cfg.max_seconds:
            return []
        rng = np.random.default_rng(zlib.crc32(name.encode()))

        key = piece_key(pm)

        def label(piece: pretty_midi.PrettyMIDI, k: Key | None, turn: float | None = None,
                  plan_from: pretty_midi.PrettyMIDI | None = None) -> Piece:
            return label_piece(piece, tokenizer, valence_sigma=cfg.valence_sigma, valence_ahead=cfg.valence_ahead,
                               key=k, turn=turn, key_chords=cfg.key_chords, plan_from=plan_from)

        out = [(name, held, label(pm, key))]
        for _ in range(0 if held else cfg.augment_copies):
            t = int(rng.integers(-cfg.max_transpose, cfg.max_transpose + 1))
            tempo = float(np.exp(rng.uniform(*np.log(cfg.tempo_range))))
            vel = float(rng.uniform(*cfg.velocity_range))
            moved = None if key is None else replace(key, tonic=(key.tonic + t) % 12)
            out.append((name, held, label(augment(pm, transpose=t, tempo=tempo, velocity=vel), moved)))
        if held or key is None:
            return out
        if cfg.mode_flip:
            out.append((name, held, label(mode_flipped(pm, key=key), key, turn=0.0)))
        if cfg.mode_turn:
            turn = float(rng.uniform(0.3, 0.7)) * pm.get_end_time()
            out.append((name, held, label(mode_flipped(pm, after=turn, key=key), key, turn=turn)))
        if cfg.blind_turn:
            turn = float(rng.uniform(0.3, 0.7)) * pm.get_end_time()
            out.append((name, held, label(mode_flipped(pm, after=turn, key=key), key, turn=turn, plan_from=pm)))
        if cfg.accompany:
            start = float(rng.uniform(0.0, 0.4)) * pm.get_end_time()
            end = start + float(rng.uniform(0.3, 0.6)) * pm.get_end_time()
            out.append((name, held, label(clean(accompanied(pm, key, start=start, end=end)), key)))
        return out
    except Exception:
        return []


@dataclass(frozen=True, eq=False)
class TokenData:
    """All pieces of one split, flattened: ``tokens[offsets[i]:offsets[i+1]]`` is piece ``i``."""

    tokens: np.ndarray
    times: np.ndarray
    va: np.ndarray
    offsets: np.ndarray
    chord_times: np.ndarray
    chord_offsets: np.ndarray
    names: tuple[str, ...]
    chord_ids: np.ndarray
    key: np.ndarray
    pitched: np.ndarray

    def __len__(self) -> int:
        return len(self.names)

    def piece(self, i: int) -> np.ndarray:
        return self.tokens[self.offsets[i] : self.offsets[i + 1]]

    def batch(
        self,
        rng: np.random.Generator,
        *,
        batch_size: int,
        block: int,
        cut_prob: float = 0.3,
        clamp: float = 4.0,
        transpose: int = 0,
        velocity_shift: int = 0,
        octave_shift: float = 0.0,
        tokenizer: Tokenizer | None = None,
    ) -> dict[str, np.ndarray]:
        """Random windows of ``block + 1`` tokens (pieces weighted by length; shorter ones padded).

        Returns ``x``/``y`` (B, block) int64 (PAD targets are ignored by the loss), ``va``
        (B, block, 2) float32, ``boundary`` (B, block) float32: seconds from each input
        token to the next stand-in cut, a random ``cut_prob`` share of the chord changes;
        and the plan of each input token: ``chord`` (B, block) int64 chord class sounding at
        its time (the class of the piece's own chord labels), ``key`` (B, block) int64 and
        ``change`` (B, block) float32 seconds to the next chord change.

        ``transpose`` > 0 moves each window by a random number of semitones in
        ``[-transpose, transpose]`` (notes, chord tokens, chords and keys together; 0 where a
        pitch would leave the MIDI range); it needs the ``tokenizer`` the data was made with.

        ``velocity_shift`` > 0 plays each window louder or softer by a random number of MIDI
        velocity units in ``[-velocity_shift, velocity_shift]`` (every ``VELOCITY`` token moves by
        the same number of bins) and moves its arousal label by what the symbolic estimator's
        velocity cue gives for the change (:func:`velocity_arousal`). The corpus plays each part at
        one velocity, so without this the model never sees loudness go with arousal.

        ``octave_shift`` in (0, 1]: that share of windows moves an octave up or down (half each; not
        where a pitch would leave the MIDI range), and its labels move by the estimator's register
        cue (:func:`register_va`): higher reads brighter and a little more aroused.
        """
        lengths = np.diff(self.offsets)
        piece = rng.choice(len(lengths), size=batch_size, p=lengths / lengths.sum())
        x = np.zeros((batch_size, block + 1), np.int64)
        va = np.zeros((batch_size, block + 1, 2), np.float32)
        bnd = np.full((batch_size, block + 1), clamp, np.float32)
        chord = np.zeros((batch_size, block + 1), np.int64)
        key = np.full((batch_size, block + 1), N_KEYS, np.int64)
        change = np.full((batch_size, block + 1), clamp, np.float32)
        spans: list[tuple[int, int]] = []
        for b, i in enumerate(piece):
            n = int(lengths[i])
            start = 0 if n <= block + 1 or rng.random() < 0.1 else int(rng.integers(0, n - block - 1))
            s0 = int(self.offsets[i]) + start
            m = min(block + 1, n - start)
            x[b, :m] = self.tokens[s0 : s0 + m]
            va[b, :m] = self.va[s0 : s0 + m]
            va[b, m:] = va[b, m - 1]
            key[b, :m] = self.key[s0 : s0 + m]
            c0, c1 = self.chord_offsets[i], self.chord_offsets[i + 1]
            chords, ids = self.chord_times[c0:c1], self.chord_ids[c0:c1].astype(np.int64)
            t = self.times[s0 : s0 + m]
            if chords.size:
                # the chord sounding at each token's time (a change at that time already sounds) and the next change
                cur = np.searchsorted(chords, t + 1e-4, side="right")
                chord[b, :m] = ids[np.maximum(cur - 1, 0)]
                ahead = np.where(cur < chords.size, chords[np.minimum(cur, chords.size - 1)] - t, clamp)
                change[b, :m] = np.clip(ahead, 0.0, clamp)
            cuts = chords[rng.random(chords.size) < cut_prob]
            if cuts.size:
                # the next cut at or after each token's time (a cut at the current time is still ahead:
                # its CHORD token has not been read yet when the offset is 0)
                nxt = np.searchsorted(cuts, t - 1e-4, side="left")
                ahead = np.where(nxt < cuts.size, cuts[np.minimum(nxt, cuts.size - 1)] - t, clamp)
                bnd[b, :m] = np.clip(ahead, 0.0, clamp)
            spans.append((s0, m))
        if transpose:  # drawn after the windows, so a seed gives the same windows with or without it
            if tokenizer is None:
                raise ParameterError("`transpose` needs the `tokenizer` the data was made with")
            for b, ((s0, m), k) in enumerate(zip(spans, rng.integers(-transpose, transpose + 1, batch_size),
                                                 strict=True)):
                _transpose(x[b, :m], chord[b, :m], key[b, :m], self.pitched[s0 : s0 + m], int(k), tokenizer)
        if velocity_shift:  # drawn last, so the windows and transpositions of a seed stay as they were
            if tokenizer is None:
                raise ParameterError("`velocity_shift` needs the `tokenizer` the data was made with")
            width = 128 // tokenizer.config.velocity_bins
            bins = rng.integers(-(velocity_shift // width), velocity_shift // width + 1, batch_size)
            for b, ((_, m), k) in enumerate(zip(spans, bins, strict=True)):
                va[b, :, 1] = np.clip(va[b, :, 1] + _shift_velocity(x[b, :m], int(k), tokenizer), -1.0, 1.0)
        if octave_shift:
            if tokenizer is None:
                raise ParameterError("`octave_shift` needs the `tokenizer` the data was made with")
            moves = np.where(rng.random(batch_size) < octave_shift, rng.choice((-12, 12), batch_size), 0)
            for b, ((s0, m), k) in enumerate(zip(spans, moves, strict=True)):
                va[b] = np.clip(va[b] + _shift_octave(x[b, :m], self.pitched[s0 : s0 + m], int(k), tokenizer),
                                -1.0, 1.0)
        return {"x": x[:, :-1], "y": x[:, 1:], "va": va[:, :-1], "boundary": bnd[:, :-1],
                "chord": chord[:, :-1], "key": key[:, :-1], "change": change[:, :-1]}


_FEATURES = ("mode", "consonance", "register", "density", "tempo", "velocity", "articulation")


def _feature_va(feature: str, before: float, after: float) -> np.ndarray:
    """How far :func:`analysis.music.symbolic.music_va` moves (valence, arousal) when one music
    feature goes from ``before`` to ``after`` and the others are unknown (NaN: their neutral cue)."""
    neutral = dict.fromkeys(_FEATURES, np.array([np.nan]))
    va = [np.concatenate(music_va(**{**neutral, feature: np.array([x], float)})) for x in (before, after)]
    return va[1] - va[0]


def velocity_arousal(before: float, after: float) -> float:
    """The arousal change the estimator gives when the mean velocity goes from ``before`` to ``after``."""
    return float(_feature_va("velocity", before, after)[1])


def register_va(before: float, after: float) -> np.ndarray:
    """The (valence, arousal) change the estimator gives when the mean pitch goes from ``before`` to ``after``."""
    return _feature_va("register", before, after)


def _shift_octave(x: np.ndarray, pitched: np.ndarray, k: int, tokenizer: Tokenizer) -> np.ndarray:
    """Move one window's pitched notes by ``k`` semitones in place (nothing when a pitch would leave
    0..127 or the window has no note); the change of (valence, arousal) label that goes with it."""
    on = pitched & (x < tokenizer.note_off_offset)
    if k == 0 or not on.any():
        return np.zeros(2)
    pitch = (x - tokenizer.note_on_offset)[on]
    if pitch.min() + k < 0 or pitch.max() + k > 127:
        return np.zeros(2)
    x[pitched] += k
    return register_va(float(pitch.mean()), float(pitch.mean()) + k)


def _shift_velocity(x: np.ndarray, k: int, tokenizer: Tokenizer) -> float:
    """Move every ``VELOCITY`` token of one window by ``k`` bins in place (clipped to the bins);
    the change of arousal label that goes with it (0 when the window sets no velocity)."""
    lo, n = tokenizer.velocity_offset, tokenizer.config.velocity_bins
    at = (x >= lo) & (x < lo + n)
    if k == 0 or not at.any():
        return 0.0
    old = x[at] - lo
    new = np.clip(old + k, 0, n - 1)
    x[at] = lo + new
    mean = lambda bins: float(np.mean([tokenizer.bin_velocity(int(v)) for v in bins]))  # noqa: E731
    return velocity_arousal(mean(old), mean(new))


def _transpose(x: np.ndarray, chord: np.ndarray, key: np.ndarray, pitched: np.ndarray, k: int,
               tokenizer: Tokenizer) -> None:
    """Move one window by ``k`` semitones in place (nothing when a pitch would leave 0..127)."""
    if k == 0:
        return
    on = pitched & (x < tokenizer.note_off_offset)
    pitch = np.where(on, x - tokenizer.note_on_offset, x - tokenizer.note_off_offset)[pitched]
    if pitch.size and (pitch.min() + k < 0 or pitch.max() + k > 127):
        return
    x[pitched] += k
    none = tokenizer.n_chords - 1
    is_chord = (x >= tokenizer.chord_offset) & (x < tokenizer.chord_offset + none)
    rel = x[is_chord] - tokenizer.chord_offset
    x[is_chord] = tokenizer.chord_offset + rel - rel % 12 + (rel + k) % 12
    real = chord < none
    chord[real] = chord[real] - chord[real] % 12 + (chord[real] + k) % 12
    keyed = key < N_KEYS
    key[keyed] = key[keyed] - key[keyed] % 12 + (key[keyed] + k) % 12


def _stack(pieces: list[tuple[str, Piece]]) -> TokenData:
    if not pieces:
        raise ParameterError("no pieces to stack (is the corpus cache empty?)")
    lens = [len(p.tokens) for _, p in pieces]
    clens = [len(p.chord_times) for _, p in pieces]
    return TokenData(
        tokens=np.concatenate([p.tokens for _, p in pieces]),
        times=np.concatenate([p.times for _, p in pieces]),
        va=np.concatenate([p.va for _, p in pieces]),
        offsets=np.concatenate([[0], np.cumsum(lens)]).astype(np.int64),
        chord_times=np.concatenate([p.chord_times for _, p in pieces]),
        chord_offsets=np.concatenate([[0], np.cumsum(clens)]).astype(np.int64),
        names=tuple(n for n, _ in pieces),
        chord_ids=np.concatenate([p.chord_ids for _, p in pieces]),
        key=np.concatenate([p.key for _, p in pieces]),
        pitched=np.concatenate([p.pitched for _, p in pieces]),
    )


def build(
    tokenizer: Tokenizer,
    config: DataConfig = DataConfig(),
    *,
    source: Path | None = None,
    cache: Path = CACHE,
    workers: int = 2,
    max_files: int | None = None,
    only: Collection[str] | None = None,
    heldout_only: bool = False,
) -> dict[str, TokenData]:
    """``{"train": ..., "heldout": ...}`` from the parsed corpus, cached as one ``.npz``.

    ``only`` restricts the corpus to these MIDI file names (a run's recorded file list).
    ``heldout_only`` labels the held-out pieces alone and returns ``{"heldout": ...}``, the same
    split a full build gives: evaluating needs only those parsed
    (``python -m composer.training.corpus --files-from checkpoints/corpus-heldout.txt``, a minute).
    """
    src = Path(source) if source else midi_dir(cache)
    wanted = lambda name: not heldout_only or is_heldout(Path(name).stem, config.heldout_percent)  # noqa: E731
    if only is not None:
        only = {n for n in only if wanted(n)}
    files = sorted(str(p) for p in src.glob("*.mid") if (only is None or p.name in only) and wanted(p.name))
    files = files[:max_files]
    if only is not None and len(files) < len(set(only)):
        hint = " --files-from checkpoints/corpus-heldout.txt" if heldout_only else ""
        raise ParameterError(f"`only` names {len(set(only))} files but {src} holds {len(files)} of them "
                             f"(run `python -m composer.training.corpus{hint}` to parse the rest)")
    if not files:
        raise ParameterError(f"`source` {src} holds no .mid files (run `python -m composer.training.corpus` first)")
    described = asdict(config)
    if not config.valence_ahead:  # added later: the caches built before it keep their keys
        del described["valence_ahead"]
    key = hashlib.sha1(
        (tokenizer.config.to_json() + repr(described) + "\n".join(Path(f).name for f in files)
         + ("\nheld-out only" if heldout_only else "")).encode()
    ).hexdigest()[:12]
    path = cache / f"tokens-{key}.npz"
    if path.exists():
        with np.load(path) as z:
            return {s: _unpack(z, s) for s in (("heldout",) if heldout_only else ("train", "heldout"))}
    jobs = [(f, asdict(tokenizer.config), asdict(config)) for f in files]
    if workers > 1:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            results = []
            for i, res in enumerate(pool.map(_prepare, jobs, chunksize=16)):
                results.append(res)
                if (i + 1) % 1000 == 0:
                    log.info("labelled %d of %d files", i + 1, len(jobs))
    else:
        results = [_prepare(j) for j in jobs]
    skipped = sum(not res for res in results)
    if skipped:
        log.warning("%d of %d MIDI files gave no sequence (unreadable, shorter than 1 s or longer than %g s)",
                    skipped, len(results), config.max_seconds)
    splits: dict[str, list] = {"heldout": []} if heldout_only else {"train": [], "heldout": []}
    for res in results:
        for name, is_held, piece in res:
            splits["heldout" if is_held else "train"].append((name, piece))
    data = {s: _stack(p) for s, p in splits.items()}
    cache.mkdir(parents=True, exist_ok=True)
    arrays = {f"{s}_{k}": np.asarray(getattr(d, k)) for s, d in data.items() for k in _FIELDS}
    np.savez(path, **arrays)
    return data


_FIELDS = ("tokens", "times", "va", "offsets", "chord_times", "chord_offsets", "names", "chord_ids", "key",
           "pitched")


def _unpack(z: np.lib.npyio.NpzFile, split: str) -> TokenData:
    return TokenData(**{k: (tuple(z[f"{split}_{k}"].tolist()) if k == "names" else z[f"{split}_{k}"]) for k in _FIELDS})
