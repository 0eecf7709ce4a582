"""Length estimator: sentence embedding -> distribution over motion lengths in tokens (design §7, "Length selection").

An MLP ``text_dim -> 512 -> 256 -> 128 -> 50`` (each hidden layer Linear, LayerNorm, LeakyReLU(0.2);
dropout before every hidden Linear but the first), as MoMask's estimator. Class c means c tokens = 4c
frames at 20 fps. Trained with cross-entropy on ``frames // 4``; used when the user gives no duration.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..constants import FRAMES_PER_TOKEN
from .conditions import check_text
from .config import LengthEstimatorConfig
from .masking import LossOutput
from .pretrained import load_model, save_model

__all__ = ["LengthEstimator", "UNIT_LENGTH"]

FORMAT = "remomask-length-estimator"
UNIT_LENGTH = FRAMES_PER_TOKEN
"""Frames per token (:data:`remomask.constants.FRAMES_PER_TOKEN`)."""


class LengthEstimator(nn.Module):
    """Text -> token-length classifier (docs/design.md §7).

    Args:
        config: :class:`~remomask.generation.config.LengthEstimatorConfig`.
    """

    def __init__(self, config: LengthEstimatorConfig) -> None:
        super().__init__()
        if not isinstance(config, LengthEstimatorConfig):
            raise TypeError(f"LengthEstimator takes a LengthEstimatorConfig, got {type(config).__name__}")
        self.config = c = config
        layers: list[nn.Module] = []
        width = c.text_dim
        for i, h in enumerate(c.hidden):
            if i:
                layers.append(nn.Dropout(c.dropout))
            layers += [nn.Linear(width, h), nn.LayerNorm(h), nn.LeakyReLU(0.2)]
            width = h
        layers.append(nn.Linear(width, c.num_classes))
        self.net = nn.Sequential(*layers)

    def forward(self, text: torch.Tensor) -> torch.Tensor:
        """(B, text_dim) sentence embedding -> (B, num_classes) logits over token lengths.

        Raises:
            ValueError: wrong shape or NaN.
        """
        p = next(self.parameters())
        if not isinstance(text, torch.Tensor) or text.ndim != 2:
            raise ValueError(f"text must be a (B, {self.config.text_dim}) sentence embedding, got "
                             f"{tuple(text.shape) if isinstance(text, torch.Tensor) else type(text).__name__}")
        return self.net(check_text(text, text.shape[0], self.config.text_dim, p.device, p.dtype))

    def loss(self, text: torch.Tensor, frames, *, forward=None) -> LossOutput:
        """Cross-entropy against ``frames // 4`` (clamped to the last class).

        Args:
            text: (B, text_dim). frames: (B,) motion lengths in frames (20 fps).
            forward: the callable that runs the model (the DDP wrapper under DDP); None = ``self``.

        Returns:
            :class:`~remomask.generation.masking.LossOutput`.

        Raises:
            ValueError: lengths of the wrong shape or < 1 frame.
        """
        frames = torch.as_tensor(frames, dtype=torch.long, device=next(self.parameters()).device)
        if frames.shape != (text.shape[0],) or (frames < 1).any():
            raise ValueError(f"frames must be (B,) = ({text.shape[0]},) positive lengths, got {frames.tolist()}")
        target = (frames // UNIT_LENGTH).clamp_max(self.config.num_classes - 1)
        logits = (forward or self)(text)
        loss = F.cross_entropy(logits, target)
        with torch.no_grad():
            acc = (logits.argmax(-1) == target).float().mean()
        return LossOutput(loss, acc, int(target.numel()), {})

    @torch.no_grad()
    def predict(self, text: torch.Tensor, *, mode: str = "sample", min_tokens: int = 1, max_tokens: int | None = None,
                temperature: float = 1.0, generator: torch.Generator | None = None) -> torch.Tensor:
        """Token lengths for B prompts.

        Args:
            text: (B, text_dim) sentence embedding.
            mode: ``"sample"`` (MoMask demo: draw from the softmax) or ``"argmax"``.
            min_tokens, max_tokens: allowed range of lengths in tokens (classes outside get probability 0);
                e.g. 10..49 for 2-9.8 s. max_tokens None = num_classes - 1.
            temperature: softmax temperature for sampling (> 0).
            generator: torch generator for sampling.

        Returns:
            (B,) long token lengths; frames = 4 * tokens.

        Raises:
            ValueError: unknown mode, empty range, temperature <= 0.
        """
        if mode not in ("sample", "argmax"):
            raise ValueError(f"mode must be 'sample' or 'argmax', got {mode!r}")
        hi = self.config.num_classes - 1 if max_tokens is None else int(max_tokens)
        if not 0 <= min_tokens <= hi <= self.config.num_classes - 1:
            raise ValueError(f"need 0 <= min_tokens ({min_tokens}) <= max_tokens ({hi}) "
                             f"<= {self.config.num_classes - 1}")
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        was = self.training
        self.eval()
        try:
            logits = self(text).float()
        finally:
            self.train(was)
        classes = torch.arange(logits.shape[-1], device=logits.device)
        logits = logits.masked_fill((classes < min_tokens) | (classes > hi), float("-inf"))
        if mode == "argmax":
            return logits.argmax(-1)
        probs = torch.softmax(logits / temperature, -1)
        return torch.multinomial(probs, 1, generator=generator).squeeze(-1)

    def save_pretrained(self, directory, *, card: dict | None = None):
        """Write ``config.json`` + ``model.safetensors``. Returns the folder."""
        return save_model(self, directory, FORMAT, card=card)

    @classmethod
    def from_pretrained(cls, directory, map_location="cpu") -> "LengthEstimator":
        """Load a folder written by :meth:`save_pretrained`, in eval mode.

        Raises:
            FileNotFoundError: missing folder or files. CheckpointError: corrupt or mismatched files.
        """
        return load_model(cls, LengthEstimatorConfig, directory, FORMAT, map_location)
