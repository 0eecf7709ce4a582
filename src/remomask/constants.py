"""Constants shared by every stage (docs/design.md §2, the HumanML3D conventions).

One place for each: the frame rate, the tokenizer's temporal down-sampling, and the length range
of the generators (HumanML3D's 40-196 frames at 20 fps).
"""

from __future__ import annotations

__all__ = ["FPS", "FRAMES_PER_TOKEN", "MIN_FRAMES", "MAX_FRAMES", "NUM_JOINTS", "MAX_SEED"]

FPS: float = 20.0
"""Frames per second of every motion in the package (HumanML3D)."""

FRAMES_PER_TOKEN: int = 4
"""Feature frames per token row of the tokenizer (temporal down-sampling x4; HumanML3D's unit length)."""

MIN_FRAMES: int = 40
"""Shortest motion the generators make: 40 frames = 2.0 s."""

MAX_FRAMES: int = 196
"""Longest motion the generators make in one window: 196 frames = 9.8 s."""

NUM_JOINTS: int = 22
"""Joints of the HumanML3D skeleton."""

MAX_SEED: int = 2**63 - 1
"""Largest random seed accepted (torch.manual_seed takes a signed 64-bit integer)."""
