"""Feature normalisation ``(x - mean) / std`` and its inverse (docs/design.md §2.3).

Which statistics to use depends on the stage (docs/design.md §2.3: dataset Mean/Std for the retriever, the tokenizer's
own statistics for the tokenizer and transformers, the evaluator's for evaluation); these helpers only
apply a given pair. A std entry of 0 (a feature constant over the whole dataset) would divide by zero;
it is replaced by 1, so that feature is only centred.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import torch

from .layout import DatasetFormatError, DatasetNotFoundError, DatasetWarning

__all__ = ["ZERO_STD_EPS", "check_stats", "load_stats", "normalize", "denormalize"]

ZERO_STD_EPS = 1e-8
"""Std entries with absolute value at or below this are treated as zero and replaced by 1."""


def _np(a) -> np.ndarray:
    if isinstance(a, torch.Tensor):
        a = a.detach().cpu().numpy()
    return np.asarray(a, dtype=np.float32)


def check_stats(mean, std, dim: int | None = None, *, name: str = "statistics") -> tuple[np.ndarray, np.ndarray]:
    """Validate a mean/std pair and make it safe to divide by.

    Args:
        mean, std: (D,) arrays, tensors or sequences.
        dim: expected D (263 HumanML3D, 251 KIT), or None to skip the check.
        name: what the pair is, for messages (e.g. the file it came from).

    Returns:
        ``(mean, std)`` as (D,) float32 numpy arrays; std entries ``<= ZERO_STD_EPS`` set to 1.

    Raises:
        DatasetFormatError: shapes differ or are not (D,), D != ``dim``, non-finite values, negative std.

    Warns:
        DatasetWarning: when zero std entries were replaced (lists up to five indices).
    """
    mean, std = _np(mean), _np(std).copy()
    if mean.ndim != 1 or mean.shape != std.shape:
        raise DatasetFormatError(f"{name}: mean {mean.shape} and std {std.shape} must both be (D,)")
    if dim is not None and mean.shape[0] != dim:
        raise DatasetFormatError(
            f"{name}: size {mean.shape[0]} does not match the {dim}-d motion features; use the statistics "
            "of this dataset"
        )
    if not (np.isfinite(mean).all() and np.isfinite(std).all()):
        raise DatasetFormatError(f"{name}: mean/std contain NaN or inf; recompute them")
    if (std < 0).any():
        raise DatasetFormatError(f"{name}: std has negative entries (e.g. index {int(np.argmax(std < 0))})")
    zero = np.flatnonzero(std <= ZERO_STD_EPS)
    if zero.size:
        warnings.warn(
            f"{name}: {zero.size} std entries are 0 (indices {zero[:5].tolist()}"
            f"{'...' if zero.size > 5 else ''}); replaced by 1 so those features are only centred",
            DatasetWarning, stacklevel=2,
        )
        std[zero] = 1.0
    return mean, std


def load_stats(mean_path: str | os.PathLike, std_path: str | os.PathLike, dim: int | None = None):
    """Load a ``mean.npy``/``std.npy`` pair and pass it through :func:`check_stats`.

    Raises:
        DatasetNotFoundError: a file is missing.
        DatasetFormatError: see :func:`check_stats`.
    """
    arrays = []
    for p in (Path(mean_path), Path(std_path)):
        if not p.is_file():
            raise DatasetNotFoundError(f"statistics file {p} not found")
        arrays.append(np.load(p))
    return check_stats(arrays[0], arrays[1], dim, name=f"{mean_path} / {std_path}")


def _like(stat: np.ndarray, x):
    if isinstance(x, torch.Tensor):
        return torch.as_tensor(stat, dtype=x.dtype if x.is_floating_point() else torch.float32, device=x.device)
    return stat


def normalize(x, mean, std):
    """``(x - mean) / std`` over the last axis; std entries ``<= ZERO_STD_EPS`` count as 1.

    Args:
        x: (..., D) numpy array or torch tensor of raw features.
        mean, std: (D,) statistics (preferably from :func:`check_stats`).

    Returns:
        Same type, shape and (float) dtype as ``x``.
    """
    mean, std = _np(mean), _np(std)
    std = np.where(np.abs(std) <= ZERO_STD_EPS, np.float32(1.0), std)
    if isinstance(x, np.ndarray) and x.dtype == np.float64:
        return (x - mean.astype(np.float64)) / std.astype(np.float64)
    return (x - _like(mean, x)) / _like(std, x)


def denormalize(x, mean, std):
    """Inverse of :func:`normalize`: ``x * std + mean`` over the last axis (zero std counts as 1).

    Args:
        x: (..., D) numpy array or torch tensor in normalised space.
        mean, std: the (D,) statistics used to normalise.
    """
    mean, std = _np(mean), _np(std)
    std = np.where(np.abs(std) <= ZERO_STD_EPS, np.float32(1.0), std)
    if isinstance(x, np.ndarray) and x.dtype == np.float64:
        return x * std.astype(np.float64) + mean.astype(np.float64)
    return x * _like(std, x) + _like(mean, x)
