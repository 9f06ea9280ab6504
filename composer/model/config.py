"""The generator's shape (:class:`ModelConfig`), importable without torch (sampling needs no torch)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from analysis.errors import ParameterError

FINE_BELOW = 100  # fine boundary bins: 0..99 are 0.00..0.99 s in 10 ms steps


@dataclass(frozen=True)
class ModelConfig:
    vocab_size: int
    block_size: int = 512
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 256
    dropout: float = 0.0
    boundary_bins: int = 32
    max_boundary: float = 4.0
    fine_boundary: bool = False  # 10 ms bins below 1 s, 0.1 s above (boundary_bins is then derived)
    plan_chords: int = 0  # chord classes of the plan condition; 0 = no plan input (checkpoints before issue 12)

    def __post_init__(self) -> None:
        if self.fine_boundary:
            object.__setattr__(self, "boundary_bins", FINE_BELOW + round((self.max_boundary - 1.0) / 0.1) + 1)
        self._check()

    def _check(self) -> None:
        if self.n_embd % self.n_head:
            raise ParameterError(f"`n_embd` must be a multiple of `n_head` (received {self.n_embd}, {self.n_head})")
        for name in ("vocab_size", "block_size", "n_layer", "n_head", "boundary_bins"):
            if getattr(self, name) < 1:
                raise ParameterError(f"`{name}` must be at least 1 (received {getattr(self, name)})")

    def to_dict(self) -> dict:
        return asdict(self)
