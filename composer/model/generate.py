"""Sampling the conditional generator: a VA arc and cut times in, MIDI with chord times out.

At every step the model sees the target (valence, arousal) at the current time and the
boundary offset (seconds to the next cut at or after now, clamped), exactly as in
training, and the next token is drawn with temperature and nucleus (top-p) sampling
from a seeded NumPy generator, with a KV cache (the context slides by re-reading the last
half when it fills). The model runs in NumPy (:class:`~composer.model.infer.NumpyDecoder`):
the shipped weights load without torch, and a torch module from training is read through
views of its parameters (:func:`composer.model.decode.decoder_for`), so composing never
imports torch. ``EOS`` is masked until the target duration is reached.

Unaided, the model alone decides whether it changes chord on a cut. With
``force_cuts=True`` a time shift that would jump over a cut is shortened to land on it,
and if the model then writes no ``CHORD`` at the cut one is drawn from the chord tokens
only; :attr:`Generated.forced` counts those interventions so the unaided hit rate can
be reported apart.
"""

from __future__ import annotations

import io
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pretty_midi

from analysis.arc import EmotionArc
from analysis.caches import cached
from analysis.errors import MediaError, ParameterError, is_number
from composer.model import checkpoint
from composer.model.infer import NumpyDecoder, Weights
from composer.model.plan import IDENTITY, MODEL_BEAT, ChordPlan, PlanTrack, TimeWarp, beat_warp, plan_track
from composer.model.tokens import BAR, BOS, EOS, Decoded
from composer.music.midi import tempo_midi
from composer.music.notes import Material, MaterialRequest, Note, voice_line

CUT_TOLERANCE = 0.1  # seconds: a chord change this close to a cut counts as landing on it


@dataclass(frozen=True, eq=False)
class Generated:
    """A sampled piece. ``cut_hits[i]`` is whether a chord change lies within 0.1 s of ``cuts[i]``."""

    midi: pretty_midi.PrettyMIDI
    chord_times: tuple[float, ...]
    chords: tuple[str, ...]
    bar_times: tuple[float, ...]
    cuts: tuple[float, ...]
    cut_hits: tuple[bool, ...]
    forced: int
    tokens: np.ndarray
    duration: float
    compute_seconds: float

    @property
    def cut_hit_rate(self) -> float:
        return float(np.mean(self.cut_hits)) if self.cut_hits else float("nan")

    def notes(self) -> list[Note]:
        pitched = [i for i in self.midi.instruments if not i.is_drum]
        return [Note(n.start, n.end, n.pitch, n.velocity) for i in pitched for n in i.notes]


def _nucleus(logits: np.ndarray, temperature: float, top_p: float, rng: np.random.Generator) -> int:
    """Draw from the smallest set of most probable tokens holding ``top_p`` of the mass, at ``temperature``.

    One uniform number per draw, read against the cumulative probabilities of the kept tokens in
    vocabulary order (a token outside the set, or masked to -inf, adds nothing and is never drawn).
    """
    z = logits.astype(np.float64) / temperature
    p = np.exp(z - z.max())
    p /= p.sum()
    if top_p < 1.0:
        order = np.argsort(-p, kind="stable")
        sorted_p = p[order]
        p[order[np.cumsum(sorted_p) - sorted_p >= top_p]] = 0.0
    cdf = np.cumsum(p)
    return int(min(np.searchsorted(cdf, rng.random() * cdf[-1], side="right"), p.size - 1))


def _seed_tokens(
    seed_midi: pretty_midi.PrettyMIDI | str | Path, tok, warp: TimeWarp, *, key_chords: bool = False
) -> tuple[list[int], list[float]]:
    """The seed's tokens and times, its chords labelled as the model's training data were (with
    ties toward the seed's estimated key when ``key_chords``, the checkpoint's data setting)."""
    from composer.training.chords import beat_chords
    from composer.training.data import clean, piece_key

    if not isinstance(seed_midi, pretty_midi.PrettyMIDI):
        try:
            seed_midi = pretty_midi.PrettyMIDI(str(seed_midi))
        except Exception as err:
            raise MediaError(seed_midi, f"not a readable MIDI file ({type(err).__name__})") from None
    if seed_midi.get_end_time() <= 0:
        raise MediaError("seed_midi", "the seed MIDI has no notes")
    pm = clean(seed_midi)
    if warp is not IDENTITY:  # the seed's seconds into the model's time
        for inst in pm.instruments:
            for n in inst.notes:
                n.start, n.end = float(warp.to_model(n.start)), float(warp.to_model(n.end))
    enc = tok.encode(pm, chords=beat_chords(pm, tok, piece_key(pm) if key_chords else None), eos=False)
    return enc.tokens.tolist(), enc.times.tolist()


@dataclass(frozen=True, eq=False)
class _Target:
    """What the model is asked for at each time step: valence, arousal, seconds to the next cut
    and, with a plan, the planned chord class, key class and seconds to the next chord change."""

    arc: EmotionArc | None  # None: the null condition
    cut_steps: np.ndarray  # cut times in time steps, sorted
    step: float  # seconds per time step
    max_boundary: float
    plan: PlanTrack | None = None
    limits: tuple[tuple[float, float], tuple[float, float]] = ((-1.0, 1.0), (-1.0, 1.0))  # valence, arousal
    warp: TimeWarp = IDENTITY  # steps count model time; the arc is read at the matching second

    def next_cut(self, now: int) -> int:
        """Index in ``cut_steps`` of the first cut at or after step ``now``."""
        return int(np.searchsorted(self.cut_steps, now, side="left"))

    def at(self, now: int) -> tuple[float, float, float, int, int, float]:
        t = float(self.warp.to_real(now * self.step)) if self.warp is not IDENTITY else now * self.step
        v = float(np.interp(t, self.arc.times, self.arc.valence)) if self.arc is not None else 0.0
        a = float(np.interp(t, self.arc.times, self.arc.arousal)) if self.arc is not None else 0.0
        v, a = float(np.clip(v, *self.limits[0])), float(np.clip(a, *self.limits[1]))
        k = self.next_cut(now)
        b = (self.cut_steps[k] - now) * self.step if k < self.cut_steps.size else self.max_boundary
        chord, key, change = self.plan.at(now, self.max_boundary) if self.plan is not None else (0, 0, 0.0)
        return v, a, min(float(b), self.max_boundary), chord, key, change


def _decoder(model: Any, cond_mask: np.ndarray, plan_mask: np.ndarray) -> Any:
    """The decoder for ``model``: NumPy weights directly; a torch module through
    :func:`composer.model.decode.decoder_for` (torch is imported only then)."""
    if isinstance(model, Weights):
        return NumpyDecoder(model, cond_mask, plan_mask)
    from composer.model.decode import decoder_for

    return decoder_for(model, cond_mask, plan_mask)


class _Sampler:
    """The state of one sampling run: the tokens so far with their times and conditions, the KV
    cache and the window it covers, the current time step and the count of forced chords."""

    def __init__(
        self,
        loaded: checkpoint.Loaded,
        target: _Target,
        prompt: tuple[list[int], list[float]],
        *,
        mask: np.ndarray,
        guidance: float,
        temperature: float,
        top_p: float,
        force_cuts: bool,
        rng: np.random.Generator,
    ) -> None:
        self.net, self.tok, self.target = loaded.model, loaded.tokenizer, target
        self.tokens, self.times = prompt
        self.conds = [target.at(round(t / target.step)) for t in self.times]
        self.now = round(self.times[-1] / target.step)
        self.mask = mask  # (rows,): 2 rows (conditioned, null) under guidance
        self.guidance, self.temperature, self.top_p = guidance, temperature, top_p
        self.force_cuts, self.rng = force_cuts, rng
        self.forced = 0
        self.chord_at_now = False
        self.plan_mask = mask & (target.plan is not None)
        self.decoder = _decoder(self.net, mask, self.plan_mask)  # holds the KV cache
        self.window_start = 0  # index in `tokens` of the cache's first token

    def run(self, end_step: int, max_tokens: int) -> None:
        """Sample until step ``end_step`` (or ``max_tokens``, so a stuck model still stops)."""
        while self.now < end_step and len(self.tokens) < max_tokens:
            self._append(self._choose(self._logits()))

    def _logits(self) -> np.ndarray:
        """The next token's logits (PAD, EOS and BOS masked): the newest token through the decoder's step,
        or the whole window through its prefill while the cache is empty or when it is full. The cache
        always holds every token but the newest, so ``decoder.n`` alone says which."""
        if 0 < self.decoder.n < self.net.config.block_size:
            out = self.decoder.step(self.tokens[-1], self.conds[-1])  # (rows, V)
        else:
            out = self._refill()
        logits = out[0].copy() if out.shape[0] == 1 else out[1] + np.float32(self.guidance) * (out[0] - out[1])
        logits[0] = float("-inf")  # PAD
        logits[EOS] = float("-inf")
        logits[BOS] = float("-inf")
        return logits

    def _refill(self) -> np.ndarray:
        """(Re)fill the cache: the whole prompt at first, then the last half-context when it is full;
        the last position's logits (rows, V)."""
        block = self.net.config.block_size
        self.window_start = max(0, len(self.tokens) - (block if self.decoder.n == 0 else block // 2))
        window = slice(self.window_start, len(self.tokens))
        return self.decoder.prefill(self.tokens[window], self.conds[window])

    def _choose(self, logits: np.ndarray) -> int:
        """Draw the next token; under ``force_cuts`` a chord at a cut the model passes by, and a time
        shift that would jump over a cut shortened to land on it."""
        tok, cut_steps = self.tok, self.target.cut_steps
        nxt = _nucleus(logits, self.temperature, self.top_p, self.rng)
        if not self.force_cuts:
            return nxt
        k = self.target.next_cut(self.now)
        at_cut = k < cut_steps.size and cut_steps[k] == self.now
        if at_cut and not self.chord_at_now and nxt != BAR and not tok.is_chord(nxt):
            chord_logits = np.full_like(logits, -np.inf)
            chord_logits[tok.chord_offset : tok.vocab_size] = logits[tok.chord_offset : tok.vocab_size]
            nxt = _nucleus(chord_logits, self.temperature, 1.0, self.rng)
            self.forced += 1
        if tok.is_shift(nxt) and k < cut_steps.size:
            n = nxt - tok.shift_offset + 1
            if self.now < cut_steps[k] < self.now + n:
                nxt = tok.shift_offset + int(cut_steps[k] - self.now) - 1
        return nxt

    def _append(self, nxt: int) -> None:
        shift = self.tok.is_shift(nxt)
        if shift:
            self.now += nxt - self.tok.shift_offset + 1
            self.chord_at_now = False
        elif self.tok.is_chord(nxt):
            self.chord_at_now = True
        self.tokens.append(nxt)
        self.times.append(self.now * self.target.step)
        self.conds.append(self.target.at(self.now) if shift else self.conds[-1])  # only a shift moves time


def _check_sampling(duration: float, temperature: float, top_p: float) -> None:
    if not 0 < duration <= 3600:
        raise ParameterError(f"`duration` must be within 0 and 3600 s (received {duration})")
    # NaN passed `<= 0` and sampled NaN probabilities: no note, a dozen chord tokens all at 0.0 s
    if not (is_number(temperature) and 0 < temperature < float("inf")):
        raise ParameterError(f"`temperature` must be positive and finite (received {temperature!r})")
    if not (is_number(top_p) and 0 < top_p <= 1):
        raise ParameterError(f"`top_p` must be within 0 and 1 (received {top_p!r})")


def generate(
    arc: EmotionArc | None,
    *,
    duration: float,
    cuts: Sequence[float] = (),
    seed: int = 0,
    temperature: float = 1.0,
    top_p: float = 0.95,
    force_cuts: bool = False,
    conditioned: bool = True,
    guidance: float = 1.0,
    seed_midi: pretty_midi.PrettyMIDI | str | Path | None = None,
    model: checkpoint.Loaded | str | Path | None = None,
    plan: ChordPlan | None = None,
) -> Generated:
    """Sample ``duration`` seconds of music following ``arc`` with chord changes meant for ``cuts``.

    ``arc=None`` or ``conditioned=False`` runs the model on its null condition (the
    unconditioned baseline). ``guidance`` > 1 applies classifier-free guidance: logits
    ``null + guidance * (conditioned - null)``, both rows in one batched pass.
    With a plan the model samples in its own clock, the plan's beats at the corpus's 120 bpm,
    and its notes and chord changes are mapped back to seconds by the plan's tempo map
    (:class:`~composer.model.plan.TimeWarp`).
    ``seed_midi`` is encoded as the start of the piece, which the model continues up to
    ``duration``. ``model`` is a loaded checkpoint or a path (default: the shipped weights,
    ``checkpoints/composer.npz``, the NumPy twin of ``composer.pt``); targets beyond the range of its training
    labels (``meta["label_range"]``) are read as the nearest value in it. ``plan`` (a harmony plan, or anything
    with its ``chords`` and ``tonic``) tells a model with plan input the chord, key and next
    change at every token; a model without plan input ignores it. The plan is dropped with
    the rest of the condition when ``conditioned`` is False.
    """
    _check_sampling(duration, temperature, top_p)
    loaded = model if isinstance(model, checkpoint.Loaded) else checkpoint.load(model or checkpoint.SAMPLING)
    tok = loaded.tokenizer
    step = tok.config.time_step
    use_cond = conditioned and arc is not None
    if guidance < 0:
        raise ParameterError(f"`guidance` must be non-negative (received {guidance})")
    guided = use_cond and guidance != 1.0
    planned = plan is not None and use_cond and bool(plan.chords) and bool(loaded.model.config.plan_chords)
    warp = beat_warp(plan.beats) if planned else IDENTITY
    cut_list = sorted(float(c) for c in cuts if 0 < float(c) < duration)
    cut_steps = np.array([round(float(warp.to_model(c)) / step) for c in cut_list], dtype=np.int64)
    reach = loaded.meta.get("label_range", {})
    limits = tuple(tuple(reach.get(axis, (-1.0, 1.0))) for axis in ("valence", "arousal"))
    target = _Target(
        arc if use_cond else None,
        cut_steps,
        step,
        loaded.model.config.max_boundary,
        plan_track(plan, tok, warp) if planned else None,
        limits,
        warp,
    )

    t0 = time.perf_counter()
    key_chords = bool(loaded.meta.get("data_config", {}).get("key_chords", False))
    prompt = ([BOS], [0.0]) if seed_midi is None else _seed_tokens(seed_midi, tok, warp, key_chords=key_chords)
    sampler = _Sampler(
        loaded,
        target,
        prompt,
        mask=np.array([True, False]) if guided else np.array([use_cond]),
        guidance=guidance,
        temperature=temperature,
        top_p=top_p,
        force_cuts=force_cuts,
        rng=np.random.default_rng(int(seed)),
    )
    model_duration = float(warp.to_model(duration))
    sampler.run(round(model_duration / step), len(sampler.tokens) + int(100 * model_duration) + 512)
    tokens = [*sampler.tokens, EOS]
    decoded = _to_real(tok.decode(tokens), warp)
    chord_times = np.asarray(decoded.chord_times)
    hits = tuple(bool(chord_times.size and np.min(np.abs(chord_times - c)) <= CUT_TOLERANCE + 1e-9) for c in cut_list)
    return Generated(
        midi=_with_tempo(decoded, duration, warp, planned),
        chord_times=decoded.chord_times,
        chords=decoded.chords,
        bar_times=decoded.bar_times,
        cuts=tuple(cut_list),
        cut_hits=hits,
        forced=sampler.forced,
        tokens=np.asarray(tokens, np.int32),
        duration=duration,
        compute_seconds=time.perf_counter() - t0,
    )


def _to_real(decoded: Decoded, warp: TimeWarp) -> Decoded:
    """The decoded piece with every time mapped from model time to seconds."""
    if warp is IDENTITY:
        return decoded
    real = lambda ts: tuple(float(x) for x in warp.to_real(np.asarray(ts, float)))  # noqa: E731
    pm = pretty_midi.PrettyMIDI(initial_tempo=120.0)
    for inst in decoded.midi.instruments:
        out = pretty_midi.Instrument(program=inst.program, is_drum=inst.is_drum)
        if inst.notes:
            starts = real([n.start for n in inst.notes])
            ends = real([n.end for n in inst.notes])
            out.notes = [
                pretty_midi.Note(n.velocity, n.pitch, a, b) for n, a, b in zip(inst.notes, starts, ends, strict=True)
            ]
        pm.instruments.append(out)
    return Decoded(
        pm, real(decoded.chord_times), decoded.chords, real(decoded.bar_times), float(warp.to_real(decoded.duration))
    )


def _with_tempo(decoded: Decoded, duration: float, warp: TimeWarp, planned: bool) -> pretty_midi.PrettyMIDI:
    """The decoded notes trimmed to ``duration``, in a MIDI whose beats are the music's: the model's
    quarter notes through ``warp`` (the plan's tempo map, or the 120 bpm music21 wrote the corpus at),
    in the plan's 4/4 bars when it followed a plan, else in the meter of its own ``BAR`` tokens.

    So a DAW shows the beats where the notes have them, and the estimator's tempo cue reads the
    tempo the corpus labels were read at (the tempo read from the bars with 4/4 assumed took a
    piece in 4/2 for half its tempo)."""
    meter = 4
    if not planned:
        bars = np.diff(decoded.bar_times)
        bars = bars[bars > 0.5]
        quarters = round(float(np.median(bars)) / MODEL_BEAT) if bars.size else 4
        meter = quarters if 2 <= quarters <= 12 else 4
    pm = tempo_midi(warp.tempo_map(), duration, beats_per_bar=meter)
    for inst in decoded.midi.instruments:
        keep = pretty_midi.Instrument(program=inst.program, is_drum=inst.is_drum)
        for n in inst.notes:
            if n.start < duration - 1e-6:
                keep.notes.append(pretty_midi.Note(n.velocity, n.pitch, n.start, min(n.end, duration)))
        if keep.notes:
            pm.instruments.append(keep)
    if not pm.instruments:
        pm.instruments.append(pretty_midi.Instrument(program=0))
    # "all notes off" at the requested end, so the file is exactly ``duration`` long even if it ends in a rest
    pm.instruments[0].control_changes.append(pretty_midi.ControlChange(123, 0, duration))
    return pm


def midi_bytes(pm: pretty_midi.PrettyMIDI) -> bytes:
    buf = io.BytesIO()
    pm.write(buf)
    return buf.getvalue()


# --------------------------------------------------------------------------- note-source protocol


class LearnedSource:
    """The transformer as a :class:`composer.music.notes.NoteSource`.

    It samples a piece following the request's arc, told the request's harmony plan (a
    model with plan input writes inside the planned chords and changes chord where the
    plan does), with a chord forced onto any cut the model passes by, then hands the
    arranger its top line as the melody and its own lower voice, if it wrote one, as the counter line (the
    arranger snaps pitches to each span's scale: a safety net for the notes that stray).
    """

    name: ClassVar[str] = "learned"

    def __init__(self, model: checkpoint.Loaded | None = None) -> None:
        self.model = model or checkpoint.load(checkpoint.SAMPLING)

    def generate(self, request: MaterialRequest) -> Material:
        seed_pm = None
        if request.seed_melody:
            beats = np.asarray(request.beats, float)
            beat = float(np.median(np.diff(beats))) if beats.size > 1 else 0.5
            seed_pm = pretty_midi.PrettyMIDI(initial_tempo=60.0 / beat)
            inst = pretty_midi.Instrument(program=0)
            inst.notes = [
                pretty_midi.Note(n.velocity, n.pitch, n.start * beat, n.end * beat) for n in request.seed_melody
            ]
            seed_pm.instruments.append(inst)
        piece = generate(
            request.arc,
            duration=request.duration,
            cuts=request.cuts,
            seed=request.seed,
            force_cuts=True,
            seed_midi=seed_pm,
            model=self.model,
            plan=request,
        )
        notes = sorted(piece.notes(), key=lambda n: (n.start, -n.pitch))
        melody = voice_line(notes, top=True)
        return Material(melody=tuple(melody), source=self.name, counter=tuple(second_voice(notes, melody)))


def second_voice(notes: Sequence[Note], melody: Sequence[Note]) -> list[Note]:
    """The model's lowest voice where it is a voice of its own, else nothing.

    Much of the corpus is one line (Essen, O'Neill), so the model often writes a single voice and
    its lowest line is its melody: handed on as the counter line, it doubled the lead in unison
    (95 % of counter notes over 16 cinematic cues). Notes the melody already plays are left out; when
    most of the lowest line is the melody, none is given, and the arranger writes its own counter line
    on the chord tones.
    """
    lead = {(round(n.start, 3), n.pitch) for n in melody}
    low = voice_line(notes, top=False)
    own = [n for n in low if (round(n.start, 3), n.pitch) not in lead]
    return own if len(own) >= 0.5 * len(low) else []


@cached("learned-source", maxsize=1)
def learned_source() -> LearnedSource:
    """The process-wide learned note source (raises ModelError when no checkpoint loads)."""
    return LearnedSource()
