"""Train the conditional generator on CPU (or whatever torch finds): ``python -m composer.training.train``.

Resumable (``<out>/composer.state.pt`` holds optimiser and RNG state; rerun the same
command to continue), deterministic under ``--seed`` for a given thread count, logs
train loss and held-out loss as JSON lines. Condition dropout: each sequence of a
batch uses the null condition with probability ``cond_dropout``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch

from analysis.errors import ParameterError
from composer.model import checkpoint
from composer.model.tokens import Tokenizer
from composer.model.transformer import ModelConfig, MusicTransformer, Plan
from composer.training.data import DataConfig, TokenData, build

#: Named model sizes for the command line (the tiny test config lives in the tests).
PRESETS: dict[str, dict] = {
    "small": {"n_layer": 4, "n_head": 4, "n_embd": 128, "block_size": 384},
    "base": {"n_layer": 6, "n_head": 8, "n_embd": 256, "block_size": 512},
}


@dataclass(frozen=True)
class TrainConfig:
    steps: int = 2000
    batch_size: int = 8
    block: int = 512
    lr: float = 1e-3
    min_lr: float = 1e-4
    warmup: int = 100
    weight_decay: float = 0.05
    cond_lr_scale: float = 1.0  # != 1: the valence-arousal MLP learns this much faster, without weight decay
    cond_dropout: float = 0.15
    plan_dropout: float = 0.25  # share of sequences trained without a plan (a model with plan input)
    transpose: int = 0  # windows moved by up to this many semitones at batch time
    velocity_shift: int = 0  # windows played up to this many MIDI velocity units louder or softer
    octave_shift: float = 0.0  # share of windows moved an octave up or down
    cut_prob: float = 0.3
    eval_every: int = 100
    eval_batches: int = 8
    save_every: int = 100
    seed: int = 0
    threads: int = 2


@dataclass(frozen=True)
class TrainResult:
    steps: int
    train_loss: float
    heldout_loss: float
    seconds: float
    checkpoint: Path


def lr_at(step: int, cfg: TrainConfig) -> float:
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    frac = min(1.0, (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup))
    return cfg.min_lr + 0.5 * (cfg.lr - cfg.min_lr) * (1 + math.cos(math.pi * frac))


def _tensors(batch: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    return {k: torch.from_numpy(v) for k, v in batch.items()}


def _batch(data: TokenData, rng: np.random.Generator, cfg: TrainConfig, tokenizer: Tokenizer | None,
           augment: bool = False) -> tuple[dict[str, torch.Tensor], Plan]:
    """A batch; with ``augment`` the config's batch-time augmentation (training, not evaluation)."""
    extra = {"transpose": cfg.transpose, "velocity_shift": cfg.velocity_shift,
             "octave_shift": cfg.octave_shift} if augment else {}
    b = _tensors(data.batch(rng, batch_size=cfg.batch_size, block=cfg.block, cut_prob=cfg.cut_prob,
                            tokenizer=tokenizer, **extra))
    return b, Plan(b["chord"], b["key"], b["change"])


@torch.no_grad()
def heldout_loss(
    model: MusicTransformer, data: TokenData, cfg: TrainConfig, *, conditioned: bool = True, plan: bool = True
) -> float:
    """Mean loss over ``eval_batches`` fixed held-out batches (same windows every call).

    ``conditioned=False`` drops the whole condition (VA, boundary and plan); ``plan=False``
    only the plan."""
    rng = np.random.default_rng(12345)
    was = model.training
    model.eval()
    losses = []
    for _ in range(cfg.eval_batches):
        b, given = _batch(data, rng, cfg, None)
        mask = torch.full((cfg.batch_size,), conditioned)
        _, loss, _ = model(b["x"], b["va"], b["boundary"], cond_mask=mask, plan=given, plan_mask=mask & plan,
                           targets=b["y"])
        losses.append(float(loss))
    model.train(was)
    return float(np.mean(losses))


def _optimizer(model: MusicTransformer, cfg: TrainConfig) -> torch.optim.AdamW:
    """AdamW with weight decay on the matrices only (not on biases and norms).

    With ``cond_lr_scale`` != 1 the valence-arousal MLP (``va_proj``) is a group of its own, without
    weight decay and at that multiple of the learning rate: the shipped model's valence input had
    shrunk under weight decay (its first-layer column norm 0.13 against 0.77 for arousal), since
    the loss gained little from it.
    """
    apart = cfg.cond_lr_scale != 1.0
    decay, other, cond = [], [], []
    for name, p in model.named_parameters():
        (cond if apart and name.startswith("va_proj.") else decay if p.dim() >= 2 else other).append(p)
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": other, "weight_decay": 0.0}]
    if cond:
        groups.append({"params": cond, "weight_decay": 0.0, "lr_scale": cfg.cond_lr_scale})
    return torch.optim.AdamW(groups, lr=cfg.lr)


def _resume(
    state_path: Path, model: MusicTransformer, opt: torch.optim.Optimizer, rng: np.random.Generator
) -> tuple[int, float]:
    """Restore model, optimiser and both RNGs from ``state_path`` if it exists; ``(step, seconds)`` so far."""
    if not state_path.exists():
        return 0, 0.0
    st = torch.load(state_path, map_location="cpu", weights_only=True)
    model.load_state_dict(st["model"])
    opt.load_state_dict(st["optim"])
    torch.set_rng_state(st["torch_rng"])
    rng.bit_generator.state = json.loads(st["np_rng"])
    return int(st["step"]), float(st["elapsed"])


def _train_step(
    model: MusicTransformer, opt: torch.optim.Optimizer, data: TokenData, cfg: TrainConfig, rng: np.random.Generator,
    step: int, tokenizer: Tokenizer,
) -> float:
    """One optimiser step on a fresh batch; the loss. Each sequence runs on the null condition
    with ``cond_dropout`` and, independently, without its plan with ``plan_dropout``."""
    for g in opt.param_groups:
        g["lr"] = lr_at(step, cfg) * g.get("lr_scale", 1.0)
    b, plan = _batch(data, rng, cfg, tokenizer, augment=True)
    mask = torch.from_numpy(rng.random(cfg.batch_size) >= cfg.cond_dropout)
    plan_mask = torch.from_numpy(rng.random(cfg.batch_size) >= cfg.plan_dropout)
    _, loss, _ = model(b["x"], b["va"], b["boundary"], cond_mask=mask, plan=plan, plan_mask=plan_mask,
                       targets=b["y"])
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    return loss.item()


def _save(
    out: Path,
    model: MusicTransformer,
    opt: torch.optim.Optimizer,
    rng: np.random.Generator,
    tokenizer: Tokenizer,
    *,
    meta: dict,
    step: int,
    elapsed: float,
) -> None:
    """Write the checkpoint (``composer.pt``) and the resume state (``composer.state.pt``)."""
    checkpoint.save(out / "composer.pt", model, tokenizer, meta=meta)
    torch.save({"model": model.state_dict(), "optim": opt.state_dict(), "torch_rng": torch.get_rng_state(),
                "np_rng": json.dumps(rng.bit_generator.state), "step": step,
                "elapsed": elapsed}, out / "composer.state.pt")


def _meta(
    step: int, seconds: float, train_loss: float, heldout: float, cfg: TrainConfig, model: MusicTransformer,
    data: dict[str, TokenData], data_config: DataConfig | None, labels: dict[str, list[float]],
) -> dict:
    """The checkpoint's training metadata (shown in the model card); ``labels`` is :func:`label_range`."""
    return {"steps": step, "train_seconds": round(seconds, 1), "train_loss": train_loss,
            "heldout_loss": heldout, "train_config": asdict(cfg), "n_params": model.n_params(),
            "train_tokens": int(data["train"].tokens.size), "train_pieces": len(data["train"]),
            "heldout_pieces": len(data["heldout"]), "torch": str(torch.__version__),
            "label_range": labels,
            **({"data_config": asdict(data_config)} if data_config else {})}


def label_range(data: TokenData, low: float = 1.0, high: float = 99.0) -> dict[str, list[float]]:
    """The 1st and 99th percentiles of the training labels per axis (every token's bar label).

    Sampling reads a target beyond them as the nearest one (:mod:`composer.model.generate`): the
    symbolic estimator gives the corpus arousal labels from about -0.2 to +0.65, and a model asked
    for -0.7 is asked for music it has never seen (the first plan checkpoint went silent there).
    """
    va = data.va.astype(np.float32)
    return {axis: [round(float(np.percentile(va[:, i], low)), 3), round(float(np.percentile(va[:, i], high)), 3)]
            for i, axis in enumerate(("valence", "arousal"))}


def train(
    model_cfg: ModelConfig,
    cfg: TrainConfig,
    data: dict[str, TokenData],
    tokenizer: Tokenizer,
    out: str | Path,
    *,
    log: bool = True,
    until: int | None = None,
    max_seconds: float | None = None,
    data_config: DataConfig | None = None,
    init: checkpoint.Loaded | None = None,
) -> TrainResult:
    """Train (or resume) to ``cfg.steps``; writes ``<out>/composer.pt`` and the log ``<out>/train.jsonl``.

    ``data_config``, the settings ``data`` was built with, is recorded in the checkpoint's metadata.
    ``init`` starts from that checkpoint's weights (fine-tuning; its steps and training metadata are
    recorded as ``meta["init"]``) instead of random ones; a resume state in ``out`` still wins.

    ``until`` stops (after saving) at that step and ``max_seconds`` after that much time in
    this call, as an interruption would; the same call again resumes on the same schedule.
    """
    if model_cfg.vocab_size != tokenizer.vocab_size:
        raise ParameterError(f"`vocab_size` {model_cfg.vocab_size} != tokenizer vocabulary {tokenizer.vocab_size}")
    if cfg.block > model_cfg.block_size:
        raise ParameterError(f"`block` must be at most `block_size` {model_cfg.block_size} (received {cfg.block})")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    model = MusicTransformer(model_cfg)
    if init is not None:
        model.load_state_dict(init.model.state_dict())
    opt = _optimizer(model, cfg)
    rng = np.random.default_rng(cfg.seed)
    step, elapsed = _resume(out / "composer.state.pt", model, opt, rng)
    model.train()
    t0 = time.time() - elapsed
    train_loss = ho = float("nan")
    recent: list[float] = []
    stop = min(cfg.steps, until or cfg.steps)
    labels = label_range(data["train"])  # percentiles over every training token: once, not at every save
    t_call = time.time()
    with (out / "train.jsonl").open("a") as logf:
        while step < stop:
            recent.append(_train_step(model, opt, data["train"], cfg, rng, step, tokenizer))
            step += 1
            out_of_time = max_seconds is not None and time.time() - t_call > max_seconds
            last = step == stop or out_of_time
            if step % cfg.eval_every == 0 or last:
                train_loss = float(np.mean(recent))
                recent = []
                ho = heldout_loss(model, data["heldout"], cfg)
                rec = {"step": step, "train_loss": round(train_loss, 4), "heldout_loss": round(ho, 4),
                       "lr": lr_at(step - 1, cfg), "seconds": round(time.time() - t0, 1)}
                logf.write(json.dumps(rec) + "\n")
                logf.flush()
                if log:
                    print(json.dumps(rec), flush=True)
            if step % cfg.save_every == 0 or last:
                meta = _meta(step, time.time() - t0, train_loss, ho, cfg, model, data, data_config, labels)
                if init is not None:
                    meta["init"] = {k: init.meta.get(k) for k in ("steps", "train_seconds", "train_config", "init")}
                _save(out, model, opt, rng, tokenizer, meta=meta, step=step, elapsed=time.time() - t0)
            if out_of_time:
                break
    return TrainResult(step, train_loss, ho, time.time() - t0, out / "composer.pt")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Train the conditional MIDI generator on the music21 corpus.")
    ap.add_argument("--config", choices=sorted(PRESETS), default="small")
    ap.add_argument("--out", type=Path, default=Path("checkpoints"))
    ap.add_argument("--steps", type=int, default=TrainConfig.steps)
    ap.add_argument("--batch-size", type=int, default=TrainConfig.batch_size)
    ap.add_argument("--block", type=int, default=None, help="training window (default: the preset's block_size)")
    ap.add_argument("--lr", type=float, default=TrainConfig.lr)
    ap.add_argument("--cond-lr-scale", type=float, default=TrainConfig.cond_lr_scale,
                    help="the valence-arousal MLP learns this much faster and without weight decay (default 1: as "
                         "the rest)")
    ap.add_argument("--plan-dropout", type=float, default=TrainConfig.plan_dropout,
                    help="share of training sequences without their plan (default 0.25)")
    ap.add_argument("--min-lr", type=float, default=TrainConfig.min_lr, help="learning rate at the end of the cosine")
    ap.add_argument("--warmup", type=int, default=TrainConfig.warmup)
    ap.add_argument("--init", type=Path, default=None,
                    help="fine-tune: start from this checkpoint's weights (its model and tokenizer settings)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--dropout", type=float, default=0.0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--eval-every", type=int, default=TrainConfig.eval_every)
    ap.add_argument("--workers", type=int, default=2, help="processes for preprocessing")
    ap.add_argument("--max-minutes", type=float, default=None, help="stop (resumably) after this long")
    ap.add_argument("--max-files", type=int, default=None, help="use only the first N parsed files")
    ap.add_argument("--files-from", type=Path, default=None, help="use only the MIDI files named in this list")
    ap.add_argument("--mode-flip", action="store_true", help="add a major<->minor flipped copy of each training piece")
    ap.add_argument("--mode-turn", action="store_true",
                    help="add a copy of each training piece that turns to the other mode part-way")
    ap.add_argument("--blind-turn", action="store_true",
                    help="add a mode-turned copy whose plan stays the original's: only valence says it turns")
    ap.add_argument("--accompany", action="store_true",
                    help="add a copy of each training piece with block chords of its harmony for a stretch")
    ap.add_argument("--key-chords", action="store_true",
                    help="chord labels break ties toward the piece's key (one-note beats read as the key's chords)")
    ap.add_argument("--valence-ahead", type=float, default=0.0,
                    help="label each bar with the valence read this many seconds later (default 0)")
    ap.add_argument("--valence-sigma", type=float, default=0.0,
                    help="seconds of Gaussian smoothing of the per-bar valence labels")
    ap.add_argument("--augment-copies", type=int, default=DataConfig.augment_copies,
                    help="transposed, tempo- and velocity-scaled copies of each training piece, labelled ahead")
    ap.add_argument("--transpose", type=int, default=0, help="move each training window by up to N semitones")
    ap.add_argument("--octave-shift", type=float, default=0.0,
                    help="move this share of training windows an octave up or down (valence/arousal labels moved)")
    ap.add_argument("--velocity-shift", type=int, default=0,
                    help="play each training window up to N MIDI velocity units louder or softer (arousal label moved)")
    ap.add_argument("--no-plan", action="store_true",
                    help="no plan input (key, chords, next change) and coarse boundary bins: the pre-issue-12 model")
    args = ap.parse_args(argv)
    parent = checkpoint.load(args.init) if args.init else None
    tokenizer = parent.tokenizer if parent else Tokenizer()
    t = time.time()
    only = args.files_from.read_text().split() if args.files_from else None
    data_cfg = DataConfig(mode_flip=args.mode_flip, mode_turn=args.mode_turn, valence_sigma=args.valence_sigma,
                          valence_ahead=args.valence_ahead,
                          augment_copies=args.augment_copies, accompany=args.accompany,
                          key_chords=args.key_chords, blind_turn=args.blind_turn)
    data = build(tokenizer, data_cfg, workers=args.workers, max_files=args.max_files, only=only)
    print(f"data: {len(data['train'])} train / {len(data['heldout'])} held-out sequences, "
          f"{data['train'].tokens.size} train tokens ({time.time() - t:.1f}s)", flush=True)
    plan = {} if args.no_plan else {"plan_chords": tokenizer.n_chords, "fine_boundary": True}
    if parent:  # the parent's architecture; --config and --no-plan do not apply
        model_cfg = replace(parent.model.config, dropout=args.dropout)
    else:
        model_cfg = ModelConfig(vocab_size=tokenizer.vocab_size, dropout=args.dropout, **PRESETS[args.config], **plan)
    cfg = replace(TrainConfig(), steps=args.steps, batch_size=args.batch_size, lr=args.lr, min_lr=args.min_lr,
                  warmup=args.warmup, seed=args.seed, threads=args.threads, block=args.block or model_cfg.block_size,
                  eval_every=args.eval_every, save_every=args.eval_every, transpose=args.transpose,
                  velocity_shift=args.velocity_shift, octave_shift=args.octave_shift, cond_lr_scale=args.cond_lr_scale,
                  plan_dropout=args.plan_dropout)
    res = train(model_cfg, cfg, data, tokenizer, args.out, data_config=data_cfg, init=parent,
                max_seconds=None if args.max_minutes is None else 60 * args.max_minutes)
    print(f"done: {res.steps} steps, held-out loss {res.heldout_loss:.4f}, {res.seconds:.0f}s -> {res.checkpoint}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
