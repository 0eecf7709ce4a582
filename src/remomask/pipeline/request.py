"""Prompts and durations of a generation request (arXiv 2508.02605, Sec. 3, length selection; docs/design.md).

The generators make motions of :data:`~remomask.constants.MIN_FRAMES` to :data:`~remomask.constants.MAX_FRAMES`
frames at :data:`~remomask.constants.FPS` (2-9.8 s, the range of the HumanML3D training crops), in whole
tokens of :data:`~remomask.constants.FRAMES_PER_TOKEN` frames.
"""

from __future__ import annotations

import math
from typing import Sequence

from ..constants import FPS, FRAMES_PER_TOKEN, MAX_FRAMES, MIN_FRAMES

__all__ = ["MIN_SECONDS", "MAX_SECONDS", "frames_from_request", "check_prompts", "check_min_frames"]

MIN_SECONDS = MIN_FRAMES / FPS
"""Shortest duration a user may ask for, seconds (2.0 = 40 frames)."""
MAX_SECONDS = MAX_FRAMES / FPS
"""Longest duration a user may ask for, seconds (9.8 = 196 frames)."""


def frames_from_request(count: int, seconds=None, frames=None, *, min_frames: int = MIN_FRAMES) -> list[int | None]:
    """Requested frames per prompt from ``seconds`` or ``frames`` (a scalar or one value per prompt; None
    entries mean "estimate"). ``min_frames`` lowers the 40-frame floor of ``frames`` (evaluation only: the
    embedded dataset holds 1-2 s clips, and the protocol generates at the ground-truth length).

    Source: arXiv 2508.02605, Sec. 3 (a given length, else the length estimator); docs/design.md.

    Args:
        count: number of prompts B.
        seconds: durations in seconds (2-9.8), a number or B numbers / None; rounded to frames at 20 fps.
        frames: durations in frames at 20 fps (``min_frames``-196, whole numbers), a number or B values.
        min_frames: shortest ``frames`` accepted (40 for users).

    Returns:
        B entries: frames (int) or None (to estimate).

    Raises:
        ValueError: both given, wrong list length, non-numbers, or a length outside 2-9.8 s (40-196 frames).
    """
    if seconds is not None and frames is not None:
        raise ValueError("give the duration as seconds or as frames, not both")
    values = seconds if seconds is not None else frames
    if values is None:
        return [None] * count
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) and not hasattr(values, "__len__"):
        values = [values] * count
    values = list(values)
    if len(values) != count:
        raise ValueError(f"give one duration per prompt ({count}), got {len(values)}")
    out: list[int | None] = []
    for i, v in enumerate(values):
        if v is None:
            out.append(None)
            continue
        try:
            x = float(v)
        except (TypeError, ValueError):
            raise ValueError(f"duration {v!r} of prompt {i} is not a number") from None
        if seconds is not None:
            if not (MIN_SECONDS - 1e-9 <= x <= MAX_SECONDS + 1e-9) or math.isnan(x):
                raise ValueError(f"length {x:g} s of prompt {i} is outside {MIN_SECONDS:g}-{MAX_SECONDS:g} s; "
                                 "choose a duration in that range")
            out.append(int(round(x * FPS)))
        else:
            if x != int(x) or not min_frames <= x <= MAX_FRAMES:
                raise ValueError(f"length {v!r} frames of prompt {i} is outside {min_frames}-{MAX_FRAMES} frames "
                                 f"({MIN_SECONDS:g}-{MAX_SECONDS:g} s at {FPS:g} fps); choose a whole number in "
                                 "that range")
            out.append(int(x))
    return out


def check_prompts(texts) -> list[str]:
    """The prompts of a request as a list of stripped, non-empty strings (docs/design.md).

    Args:
        texts: one prompt (str) or a sequence of B prompts.

    Returns:
        B stripped prompts.

    Raises:
        ValueError: no prompt, or an empty / non-string prompt (the message names its index).
    """
    if isinstance(texts, str):
        texts = [texts]
    if not isinstance(texts, Sequence) or not texts:
        raise ValueError("give at least one prompt (a non-empty sentence such as 'a person walks forward')")
    out = []
    for i, t in enumerate(texts):
        if not isinstance(t, str) or not t.strip():
            raise ValueError(f"prompt {i} is empty; give a sentence such as 'a person walks forward'")
        out.append(t.strip())
    return out


def check_min_frames(min_frames: int) -> int:
    """Check the ``min_frames`` floor of a call: one token (4 frames) to 40 frames (docs/design.md).

    Args:
        min_frames: the shortest ``frames`` a call accepts.

    Returns:
        ``min_frames``.

    Raises:
        ValueError: outside 4-40.
    """
    if not FRAMES_PER_TOKEN <= min_frames <= MIN_FRAMES:
        raise ValueError(f"min_frames must be in {FRAMES_PER_TOKEN}-{MIN_FRAMES}, got {min_frames}")
    return min_frames
