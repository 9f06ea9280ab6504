"""Sampling's NumPy decoder (composer.model.infer, chosen by composer.model.decode.decoder_for): its logits
are the torch forward's to rounding, with and without a plan, under guidance and across context refills;
sampling through it draws the tokens the forward path draws; the nucleus draws from the right set with the
right odds."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import composer
from analysis.arc import EmotionArc
from analysis.errors import ParameterError
from composer.model import checkpoint
from composer.model.decode import ForwardDecoder, decoder_for, forward_window
from composer.model.generate import _nucleus, _Sampler, _Target
from composer.model.infer import NumpyDecoder
from composer.model.plan import PlanTrack
from composer.model.tokens import BOS, EOS, Tokenizer
from composer.model.transformer import ModelConfig, MusicTransformer, Plan
from composer.music.sources import LEARNED_CHECKPOINT

BLOCK = 16  # a tiny context, so sampling refills it every few tokens
TOL = {"rtol": 1e-5, "atol": 2e-4}  # float32 sums in another order; the tiny models' logits reach ~100


def _close(got: np.ndarray, want: torch.Tensor) -> None:
    np.testing.assert_allclose(got, want.numpy(), **TOL)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tok() -> Tokenizer:
    return Tokenizer()


def _tiny(tok: Tokenizer, *, plan: bool, seed: int) -> checkpoint.Loaded:
    """An untrained model whose condition weighs on the logits (scaled up), so a wrong embedding shows."""
    torch.manual_seed(seed)
    cfg = ModelConfig(
        vocab_size=tok.vocab_size,
        block_size=BLOCK,
        n_layer=2,
        n_head=2,
        n_embd=32,
        fine_boundary=plan,
        plan_chords=tok.n_chords if plan else 0,
    )
    net = MusicTransformer(cfg).eval()
    with torch.no_grad():
        net.va_proj[2].weight.mul_(50.0)
        net.boundary.weight.mul_(20.0)
        if plan:
            for emb in (net.plan_chord, net.plan_key, net.plan_change):
                emb.weight.mul_(20.0)
    return checkpoint.Loaded(model=net, tokenizer=tok, meta={})


@pytest.fixture(scope="module", params=["plain", "plan"])
def tiny(request, tok) -> checkpoint.Loaded:
    return _tiny(tok, plan=request.param == "plan", seed=0)


class _ForwardPath:
    """The sampler's logits through the torch forward: the tokens not yet in a ``torch.cat`` KV cache, the
    last half-context re-read when it fills. The reference the NumPy decoder is held to."""

    def __init__(self, sampler: _Sampler) -> None:
        self.s, self.cache, self.n_cached, self.window_start = sampler, None, 0, 0

    def logits(self) -> torch.Tensor:
        s, block = self.s, self.s.net.config.block_size
        if self.cache is None or len(s.tokens) - self.window_start > block:
            self.window_start = max(0, len(s.tokens) - (block if self.cache is None else block // 2))
            self.cache, self.n_cached = None, 0
        new = slice(self.window_start + self.n_cached, len(s.tokens))
        rows, mask = s.mask.shape[0], torch.tensor(s.mask)
        idx = torch.tensor([s.tokens[new]] * rows)
        c = torch.tensor([s.conds[new]] * rows, dtype=torch.float64)  # (rows, T, 6)
        plan = Plan(c[..., 3].long(), c[..., 4].long(), c[..., 5].float())
        out, _, self.cache = s.net(
            idx,
            c[..., :2].float(),
            c[..., 2].float(),
            cond_mask=mask,
            plan=plan,
            plan_mask=mask & (s.target.plan is not None),
            past=self.cache,
            start=self.n_cached,
        )
        self.n_cached += idx.shape[1]
        logits = out[0, -1] if rows == 1 else out[1, -1] + s.guidance * (out[0, -1] - out[1, -1])
        logits[0] = logits[EOS] = logits[BOS] = float("-inf")
        return logits


def _forward_logits(self: _Sampler) -> np.ndarray:
    """``_Sampler._logits`` through the forward path (for monkeypatching)."""
    with torch.inference_mode():
        return self.__dict__.setdefault("_reference", _ForwardPath(self)).logits().numpy()


def _conditions(n: int, rng: np.random.Generator) -> list[tuple[float, float, float, int, int, float]]:
    """Conditions that change at every token, as the sampler's target gives them."""
    return [
        (
            float(rng.uniform(-1, 1)),
            float(rng.uniform(-1, 1)),
            float(rng.choice([0.0, 0.01, 0.37, 2.5, 4.0])),
            int(rng.integers(0, 61)),
            int(rng.integers(0, 24)),
            float(rng.uniform(0, 4)),
        )
        for _ in range(n)
    ]


@pytest.mark.parametrize("mask", [(True,), (False,), (True, False)], ids=["conditioned", "null", "guided"])
@pytest.mark.parametrize("with_plan", [True, False], ids=["plan", "no-plan"])
def test_numpy_logits_are_the_forwards_with_a_kv_cache(tiny, mask, with_plan) -> None:
    net, rng = tiny.model, np.random.default_rng(1)
    tokens = rng.integers(4, tiny.tokenizer.vocab_size, BLOCK).tolist()
    conds = _conditions(BLOCK, rng)
    cond_mask = torch.tensor(mask)
    plan_mask = cond_mask & with_plan
    rows = len(mask)

    def forward(lo: int, hi: int, past):
        c = torch.tensor([conds[lo:hi]] * rows, dtype=torch.float64)
        plan = Plan(c[..., 3].long(), c[..., 4].long(), c[..., 5].float())
        return net(
            torch.tensor([tokens[lo:hi]] * rows),
            c[..., :2].float(),
            c[..., 2].float(),
            cond_mask=cond_mask,
            plan=plan,
            plan_mask=plan_mask,
            past=past,
            start=lo,
        )

    with torch.inference_mode():
        full, _, _ = forward(0, BLOCK, None)
        decoder = decoder_for(net, cond_mask.tolist(), plan_mask.tolist())
        assert isinstance(decoder, NumpyDecoder)
        _close(decoder.prefill(tokens[:3], conds[:3]), full[:, 2])
        _, _, past = forward(0, 3, None)
        for i in range(3, BLOCK):  # up to a full context
            want, _, past = forward(i, i + 1, past)
            got = decoder.step(tokens[i], conds[i])
            assert got.shape == (rows, tiny.tokenizer.vocab_size) and got.dtype == np.float32
            _close(got, want[:, -1])
            _close(got, full[:, i])  # and the uncached pass
        assert decoder.n == BLOCK
        with pytest.raises(ParameterError, match="block_size"):
            decoder.step(tokens[0], conds[0])
        _close(decoder.prefill(tokens, conds), full[:, -1])  # a full window at once
        assert decoder.n == BLOCK


def test_the_condition_moves_the_step_logits(tiny) -> None:
    """The test above would notice a condition embedded wrongly: each part changes the logits."""
    base = (0.2, 0.5, 1.0, 3, 5, 0.5)
    variants = [(-0.8, *base[1:]), (0.2, 0.5, 0.02, 3, 5, 0.5)]
    if tiny.model.config.plan_chords:
        variants.append((0.2, 0.5, 1.0, 40, 17, 0.5))

    def step(cond):
        decoder = decoder_for(tiny.model, [True], [True])
        decoder.prefill([BOS], [(0.0, 0.0, 0.0, 0, 0, 0.0)])
        return decoder.step(100, cond)

    ref = step(base)
    for cond in variants:
        assert np.abs(step(cond) - ref).max() > 1e-3, cond


class _Doubled(torch.nn.Module):
    """A wrapper with the forward's signature whose logits are twice the model's."""

    def __init__(self, net: MusicTransformer) -> None:
        super().__init__()
        self.net, self.config = net, net.config

    def forward(self, *args, **kwargs):
        logits, loss, cache = self.net(*args, **kwargs)
        return 2 * logits, loss, cache


def test_a_wrapped_model_is_stepped_through_its_own_forward(tiny) -> None:
    mask = [True, False]
    plain, wrapped = decoder_for(tiny.model, mask, mask), decoder_for(_Doubled(tiny.model), mask, mask)
    assert isinstance(plain, NumpyDecoder) and isinstance(wrapped, ForwardDecoder)
    training = _tiny(tiny.tokenizer, plan=False, seed=5).model.train()
    assert isinstance(decoder_for(training, mask, mask), ForwardDecoder)  # dropout: the forward's own
    conds = _conditions(8, np.random.default_rng(2))
    np.testing.assert_allclose(wrapped.prefill([BOS, 200], conds[:2]), 2 * plain.prefill([BOS, 200], conds[:2]),
                               rtol=1e-5, atol=4e-4)
    for i, cond in enumerate(conds[2:]):
        np.testing.assert_allclose(wrapped.step(300 + i, cond), 2 * plain.step(300 + i, cond), rtol=1e-5, atol=4e-4)
    assert plain.n == wrapped.n == 8
    with torch.inference_mode():
        want, _ = forward_window(tiny.model, [BOS, 200], conds[:2], torch.tensor(mask), torch.tensor(mask))
    _close(plain.prefill([BOS, 200], conds[:2]), want)


def _sampler(loaded: checkpoint.Loaded, *, guided: bool, prompt: int = 1, force_cuts: bool = False) -> _Sampler:
    tok, cfg = loaded.tokenizer, loaded.model.config
    arc = EmotionArc.from_va(np.arange(0.25, 10, 0.5), np.linspace(-0.9, 0.9, 20), np.linspace(0.8, -0.6, 20))
    track = PlanTrack(np.array([0, 40, 95, 200]), np.array([0, 17, 33, 60]), np.array([0, 0, 21, 9]), 0.01)
    target = _Target(arc, np.array([30, 77, 150]), 0.01, cfg.max_boundary, track if cfg.plan_chords else None)
    head = [BOS] + [tok.note_on_offset + 60 + i % 5 if i % 2 else tok.shift_offset + 2 for i in range(prompt - 1)]
    times = [0.0] + [0.03 * ((i + 2) // 2) for i in range(prompt - 1)]
    return _Sampler(
        loaded,
        target,
        (head, times),
        mask=np.array([True, False] if guided else [True]),
        guidance=1.7 if guided else 1.0,
        temperature=0.9,
        top_p=0.95,
        force_cuts=force_cuts,
        rng=np.random.default_rng(3),
    )


@pytest.mark.parametrize(("guided", "prompt"), [(False, 1), (True, 1), (False, 23)], ids=["one", "guided", "long"])
def test_sampler_logits_equal_the_forward_path_across_context_refills(tiny, guided, prompt) -> None:
    sampler = _sampler(tiny, guided=guided, prompt=prompt)
    reference = _ForwardPath(sampler)
    starts = set()
    with torch.inference_mode():
        for i in range(5 * BLOCK):
            got, want = sampler._logits(), reference.logits()
            np.testing.assert_allclose(got, want.numpy(), rtol=1e-5, atol=1e-3)  # guidance scales differences
            assert sampler.window_start == reference.window_start
            assert i or sampler.window_start == max(0, prompt - BLOCK)  # a long prompt: its last full context
            starts.add(sampler.window_start)
            sampler._append(sampler._choose(got))
    assert len(starts) >= 5  # the context was refilled several times


def test_the_condition_is_read_anew_only_when_time_moves(tiny) -> None:
    sampler = _sampler(tiny, guided=False, force_cuts=True)
    sampler.run(end_step=300, max_tokens=200)
    assert sampler.now > 30  # time moved past cuts
    step = sampler.target.step
    assert sampler.conds == [sampler.target.at(round(t / step)) for t in sampler.times]


def _tokens_both_ways(monkeypatch, **kwargs) -> list[np.ndarray]:
    """The tokens ``composer.generate(**kwargs)`` samples through the NumPy decoder, then through the forward
    path (``composer.generate`` reports only their count, so the sampler's result is caught on its way)."""
    from composer.model import generate as sampling

    seen: list[np.ndarray] = []
    inner = sampling.generate

    def spy(*args, **kw):
        piece = inner(*args, **kw)
        seen.append(piece.tokens)
        return piece

    monkeypatch.setattr(sampling, "generate", spy)
    composer.generate(**kwargs)
    with monkeypatch.context() as m:
        m.setattr(_Sampler, "_logits", _forward_logits)
        composer.generate(**kwargs)
    return seen


@pytest.mark.parametrize(
    "kwargs",
    [
        {"seed": 0},
        {"seed": 1, "force_cuts": True},
        {"seed": 2, "plan": False, "temperature": 1.3, "top_p": 1.0},
    ],
    ids=["plan", "forced", "no-plan-t1.3"],
)
def test_generate_draws_the_forward_paths_tokens(monkeypatch, tok, kwargs) -> None:
    loaded = _tiny(tok, plan=True, seed=4)
    arc = EmotionArc.from_va(np.arange(0.25, 15, 0.5), np.linspace(-0.5, 0.9, 30), np.linspace(0.9, 0.1, 30))
    fast, slow = _tokens_both_ways(monkeypatch, arc=arc, cuts=(1.2, 6.5, 9.0), duration=15.0, model=loaded, **kwargs)
    assert fast.size > 3 * BLOCK  # several refills
    np.testing.assert_array_equal(fast, slow)


@pytest.mark.skipif(not LEARNED_CHECKPOINT.is_file(), reason="no shipped checkpoint in this checkout")
def test_the_shipped_model_draws_the_forward_paths_tokens_past_a_refill(monkeypatch) -> None:
    arc = EmotionArc.constant(20.0, 0.3, 0.7)
    module = checkpoint.load(checkpoint.DEFAULT)  # the torch checkpoint, so the forward path can run it
    fast, slow = _tokens_both_ways(monkeypatch, arc=arc, cuts=(5.0, 10.0, 15.0), duration=20.0, seed=0, model=module)
    assert fast.size > module.model.config.block_size  # the context was refilled
    np.testing.assert_array_equal(fast, slow)


def test_the_nucleus_draws_the_top_p_set_at_its_odds() -> None:
    probs = np.array([0.0, 0.1, 0.4, 0.2, 0.3])  # token 0 masked to -inf below
    logits = np.log(np.where(probs > 0, probs, 1.0)).astype(np.float32)
    logits[0] = -np.inf
    rng = np.random.default_rng(0)
    n = 20000
    cases = [
        (1.0, 0.5, {2: 4 / 7, 4: 3 / 7}),  # 0.4, then 0.3: mass before it 0.4 < 0.5; 0.2 is past it
        (1.0, 1.0, {1: 0.1, 2: 0.4, 3: 0.2, 4: 0.3}),
        (1.0, 0.95, {1: 0.1, 2: 0.4, 3: 0.2, 4: 0.3}),  # the last token starts at 0.9 < 0.95: kept
        (0.5, 1.0, {k: p**2 / 0.3 for k, p in {1: 0.1, 2: 0.4, 3: 0.2, 4: 0.3}.items()}),  # temperature 0.5
    ]
    for temperature, top_p, want in cases:
        draws = np.bincount([_nucleus(logits.copy(), temperature, top_p, rng) for _ in range(n)], minlength=5) / n
        assert set(np.flatnonzero(draws)) == set(want), (temperature, top_p)
        for k, p in want.items():
            assert abs(draws[k] - p) < 0.015, (temperature, top_p, k)
    a, b = np.random.default_rng(7), np.random.default_rng(7)
    assert [_nucleus(logits, 1.0, 0.9, a) for _ in range(50)] == [_nucleus(logits, 1.0, 0.9, b) for _ in range(50)]
