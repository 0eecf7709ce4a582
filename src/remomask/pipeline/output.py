"""The result of one pipeline call: :class:`GenerationOutput` (arXiv 2508.02605, Sec. 3; docs/design.md)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..constants import FPS

__all__ = ["GenerationOutput"]


@dataclass
class GenerationOutput:
    """Result of one :class:`~remomask.pipeline.ReMoMaskPipeline` call (B = prompts x num_samples, prompt-major
    order). Source: arXiv 2508.02605, Sec. 3 (the cascade's outputs); docs/design.md.

    Attributes:
        texts: B prompts.
        joints: (B, T, 22, 3) float32 joint positions in metres (Y up, 20 fps); zeros after each length.
        features: (B, T, 263) float32 de-normalised HumanML3D features; zeros after each length.
        lengths: (B,) int64 frames of each motion (a multiple of 4, within the requested length).
        retrieved: per sample, the retrieved database entries (``entry_id``, ``motion_id``, ``caption``,
            ``score``), best first; empty lists without retrieval.
        length_source: per sample ``"given"`` or ``"estimated"`` (length estimator).
        token_ids: (B, n, J', Q) int64 generated token ids, -1 on padding rows.
        settings: the sampling settings used, including the seed.
    """

    texts: list
    joints: np.ndarray
    features: np.ndarray
    lengths: np.ndarray
    retrieved: list
    length_source: list
    token_ids: np.ndarray
    settings: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.texts)

    @property
    def seconds(self) -> np.ndarray:
        """(B,) float durations in seconds (``lengths / 20``)."""
        return self.lengths / FPS

    def sample(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """``(joints (L, 22, 3) metres, features (L, 263))`` of sample ``i`` cut to its length L (frames).

        Raises:
            IndexError: ``i`` outside ``0..B-1``.
        """
        n = int(self.lengths[i])
        return self.joints[i, :n], self.features[i, :n]
