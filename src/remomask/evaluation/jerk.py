"""Transition smoothness by jerk, as FlowMDM measures compositions of motions (Peak Jerk, Area Under Jerk).

- jerk of a joint: the third finite difference of its positions times fps^3 (m/s^3);
- per-frame jerk: the mean over joints of the jerk magnitude (:func:`frame_jerk`);
- **Peak Jerk (PJ)**: the maximum of the per-frame jerk over a transition window;
- **Area Under Jerk (AUJ)**: the sum over the window's frames of ``|jerk - real|`` where ``real`` is the mean
  per-frame jerk of real motions (:func:`real_jerk`), divided by fps so that it is an area (m/s^2).

A transition window is ``window`` frames centred on a seam frame (30 frames = 1.5 s by default).
"""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np

from ..constants import FPS

__all__ = ["frame_jerk", "peak_jerk", "area_under_jerk", "transition_jerk", "real_jerk", "DEFAULT_WINDOW"]

DEFAULT_WINDOW = 30
"""Frames of a transition window centred on a seam."""


def frame_jerk(joints, fps: float = FPS) -> np.ndarray:
    """Mean jerk magnitude over joints, per frame.

    Args:
        joints: (T, J, 3) positions in metres (T >= 4).
        fps: frames per second.

    Returns:
        (T - 3,) float64, m/s^3; entry i is the jerk around frames i..i+3 (centred at i + 1.5).

    Raises:
        ValueError: wrong shape or fewer than 4 frames.

    Source: FlowMDM (jerk = third derivative of positions, averaged over joints).
    """
    j = np.asarray(joints, dtype=np.float64)
    if j.ndim != 3 or j.shape[-1] != 3 or j.shape[0] < 4:
        raise ValueError(f"joints must be (T >= 4, J, 3), got {j.shape}")
    d3 = np.diff(j, n=3, axis=0) * fps ** 3
    return np.linalg.norm(d3, axis=-1).mean(-1)


def _windows(n: int, seams: Iterable[int], window: int) -> list[np.ndarray]:
    """Indices of ``frame_jerk`` entries in each seam's window (clipped to the motion)."""
    out = []
    for s in seams:
        lo = int(s) - window // 2 - 1           # entry i is centred on frame i + 1.5
        idx = np.arange(max(0, lo), min(n, lo + window))
        if idx.size:
            out.append(idx)
    return out


def _seam_jerk(joints, seams: Sequence[int], window: int, fps: float) -> list[np.ndarray]:
    """The per-frame jerk (m/s^3) inside each seam's window; raises ValueError when no seam is inside."""
    fj = frame_jerk(joints, fps)
    wins = _windows(len(fj), seams, window)
    if not wins:
        raise ValueError("no seam inside the motion")
    return [fj[w] for w in wins]


def peak_jerk(joints, seams: Sequence[int], *, window: int = DEFAULT_WINDOW, fps: float = FPS) -> float:
    """Peak Jerk: the mean over seams of the maximum per-frame jerk in each seam's window (m/s^3).

    Args:
        joints: (T, J, 3) metres. seams: seam frames. window, fps: see the module docstring.

    Raises:
        ValueError: no seam inside the motion, or the errors of :func:`frame_jerk`.

    Source: FlowMDM (PJ).
    """
    return float(np.mean([j.max() for j in _seam_jerk(joints, seams, window, fps)]))


def area_under_jerk(joints, seams: Sequence[int], real: float, *, window: int = DEFAULT_WINDOW,
                    fps: float = FPS) -> float:
    """Area Under Jerk: the mean over seams of ``sum |jerk - real| / fps`` over each seam's window (m/s^2).

    Args:
        joints: (T, J, 3) metres. seams: seam frames. real: the mean per-frame jerk of real motions
            (:func:`real_jerk`), m/s^3. window, fps: see the module docstring.

    Raises:
        ValueError: no seam inside the motion, or the errors of :func:`frame_jerk`.

    Source: FlowMDM (AUJ).
    """
    return float(np.mean([np.abs(j - real).sum() / fps for j in _seam_jerk(joints, seams, window, fps)]))


def transition_jerk(joints, seams: Sequence[int], real: float, *, window: int = DEFAULT_WINDOW,
                    fps: float = FPS) -> dict:
    """``{"peak_jerk": PJ, "area_under_jerk": AUJ}`` of one motion's seams (see the two functions)."""
    return {"peak_jerk": peak_jerk(joints, seams, window=window, fps=fps),
            "area_under_jerk": area_under_jerk(joints, seams, real, window=window, fps=fps)}


def real_jerk(motions: Iterable, fps: float = FPS) -> float:
    """Mean per-frame jerk of real motions (m/s^3), the reference of :func:`area_under_jerk`.

    Args:
        motions: (T, J, 3) joint arrays in metres (those with fewer than 4 frames are skipped).

    Raises:
        ValueError: no motion with at least 4 frames.

    Source: FlowMDM (the real-data jerk of AUJ).
    """
    vals = [frame_jerk(m, fps) for m in motions if np.asarray(m).shape[0] >= 4]
    if not vals:
        raise ValueError("no motion with at least 4 frames")
    return float(np.concatenate(vals).mean())
