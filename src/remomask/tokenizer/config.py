"""Tokenizer sizes and their presets (docs/design.md §3.2, §3.3, §9).

``paper``: the README run of the reference code (width 512, 2D codebook 256 x 1024-d, 6 quantiser
layers). ``cpu``: a small model whose training finishes in about an hour on a 2-core CPU
(``benchmarks/bench_tokenizer.py`` measures it).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

__all__ = ["BRANCHES", "TokenizerConfig", "PRESETS"]

BRANCHES = ("1d", "2d")


@dataclass
class TokenizerConfig:
    """Architecture of :class:`~remomask.tokenizer.model.MotionTokenizer`.

    Attributes:
        feature_dim: D, 263 (HumanML3D) or 251 (KIT-ML).
        branches: ``("1d", "2d")`` (default: the reference dual branch, fused by a Linear(2D -> D)) or
            ``("2d",)`` (a single 2D branch whose root row carries the root data and contacts). The dual
            branch is the default because it measured better on the same budget (val MPJPE 37.0 vs 42.5 mm,
            root error at 5 s 0.44 vs 0.48 m; ``docs/results.md``, tokenizer section).
        width: conv channels of encoder/decoder (512).
        depth: residual blocks per stage (3), dilations ``growth**k`` in reverse order (9, 3, 1).
        dilation_growth: 3.
        resblock_dropout: dropout inside residual blocks (0.2).
        code_dim, num_codes: 2D codebook vector size and codes per layer (1024, 256).
        code_dim_1d, num_codes_1d: the 1D branch's (512, 512); unused without it.
        num_quantizers: Q, residual layers (6).
        mu: EMA decay (0.99). quantizer_dropout: 0.2. sample_temperature: training Gumbel temperature (0.5).
        feat_bias: the root (0:4) and foot-contact std are divided by this once when the training
            statistics are made (docs/design.md §2.3, §15.3; see ``train.tokenizer_stats``).
        window_size: training window, frames (64).
    """

    feature_dim: int = 263
    branches: tuple[str, ...] = ("1d", "2d")
    width: int = 512
    depth: int = 3
    dilation_growth: int = 3
    resblock_dropout: float = 0.2
    code_dim: int = 1024
    num_codes: int = 256
    code_dim_1d: int = 512
    num_codes_1d: int = 512
    num_quantizers: int = 6
    mu: float = 0.99
    quantizer_dropout: float = 0.2
    sample_temperature: float = 0.5
    feat_bias: float = 5.0
    window_size: int = 64

    def __post_init__(self) -> None:
        self.branches = tuple(self.branches)
        if not self.branches or set(self.branches) - set(BRANCHES) or "2d" not in self.branches:
            raise ValueError(f"branches must be ['2d'] or ['1d', '2d'], got {list(self.branches)}")
        self.branches = tuple(b for b in BRANCHES if b in self.branches)
        for name in ("width", "depth", "code_dim", "num_codes", "num_quantizers", "window_size",
                     "code_dim_1d", "num_codes_1d", "dilation_growth"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not 0 <= self.quantizer_dropout < 1 or not 0 < self.mu < 1:
            raise ValueError("quantizer_dropout must be in [0, 1) and mu in (0, 1)")
        if self.window_size % 4:
            raise ValueError(f"window_size must be a multiple of 4 frames, got {self.window_size}")

    def to_dict(self) -> dict:
        """JSON-ready dict (branches as a list)."""
        d = dataclasses.asdict(self)
        d["branches"] = list(self.branches)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "TokenizerConfig":
        """Inverse of :meth:`to_dict`. Raises ValueError on unknown keys or bad values."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown tokenizer config keys {unknown}")
        return cls(**d)

    @classmethod
    def preset(cls, name: str, **overrides) -> "TokenizerConfig":
        """A named preset (``cpu`` or ``paper``) with optional field overrides.

        Raises:
            ValueError: unknown preset name or field.
        """
        if name not in PRESETS:
            raise ValueError(f"unknown tokenizer preset {name!r}; choose one of {sorted(PRESETS)}")
        base = dict(PRESETS[name])
        base.update(overrides)
        return cls.from_dict(base)


PRESETS: dict[str, dict] = {
    "paper": dict(width=512, code_dim=1024, num_codes=256, num_quantizers=6),
    # Width 32: the full-resolution convs dominate the cost (width 64 measured ~2x slower per step);
    # no residual dropout: an hour of CPU training underfits rather than overfits, and dropout alone
    # cost ~9% of a step.
    "cpu": dict(width=32, code_dim=64, num_codes=256, num_quantizers=6, resblock_dropout=0.0,
                code_dim_1d=64, num_codes_1d=256),
}
"""Preset name -> :class:`TokenizerConfig` fields. The ``cpu`` sizes are set from measured it/s."""

