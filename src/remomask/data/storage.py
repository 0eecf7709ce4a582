"""Compact joint archive of the embedded dataset (and :func:`atomic_path`, re-exported from :mod:`remomask.files`).

The embedded dataset commits joint positions only (features are recomputed on load and cached,
issue: "joints are enough"). 22 x 3 float32 per frame for ~330k frames would exceed the 60 MB
budget, so each clip is stored as int16 fixed point around its own centre:

    joints = data.astype(float64) * scale + offset        # metres

with ``offset`` the centre of the clip's bounding box and ``scale = half_range / 32767``. For a
clip spanning 10 m the step is 0.15 mm (max error 0.08 mm), far below mocap noise.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

import numpy as np

from ..files import atomic_path  # re-exported: the package's atomic writer (remomask.files)

__all__ = ["save_joint_archive", "load_joint_archive", "atomic_path", "quantize_joints"]

_INT16_MAX = 32767


def quantize_joints(joints: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Fixed-point encode one clip: (T, J, 3) metres -> (int16 data, offset (3,), scale).

    Raises:
        ValueError: for non-finite joints.
    """
    joints = np.asarray(joints, dtype=np.float64)
    if not np.isfinite(joints).all():
        raise ValueError("cannot store joints with NaN/inf")
    lo, hi = joints.reshape(-1, 3).min(0), joints.reshape(-1, 3).max(0)
    offset = (lo + hi) / 2.0
    scale = max(float((hi - lo).max()) / 2.0 / _INT16_MAX, 1e-9)
    data = np.round((joints - offset) / scale).clip(-_INT16_MAX, _INT16_MAX).astype(np.int16)
    return data, offset, scale


def save_joint_archive(path: str | os.PathLike, clips: Mapping[str, np.ndarray]) -> None:
    """Write clips {id: (T, J, 3) metres} to a compressed ``.npz`` archive, atomically."""
    ids = sorted(clips)
    if not ids:
        raise ValueError("no clips to save")
    encoded = [quantize_joints(clips[i]) for i in ids]
    with atomic_path(path, suffix=".npz") as tmp:
        np.savez_compressed(
            tmp,
            ids=np.asarray(ids),
            lengths=np.asarray([len(e[0]) for e in encoded], dtype=np.int64),
            offset=np.stack([e[1] for e in encoded]),
            scale=np.asarray([e[2] for e in encoded]),
            data=np.concatenate([e[0] for e in encoded]),
        )


def load_joint_archive(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read an archive written by :func:`save_joint_archive`: {id: (T, J, 3) float32 metres}.

    Raises:
        FileNotFoundError: missing archive.
        ValueError: corrupt or inconsistent archive (names the file and suggests rebuilding).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"joint archive not found: {path}; rebuild the dataset with "
                                "`remomask data build`")
    try:
        with np.load(path, allow_pickle=False) as z:
            ids, lengths, offset, scale, data = (z[k] for k in ("ids", "lengths", "offset", "scale", "data"))
    except (KeyError, ValueError, OSError, EOFError) as exc:
        raise ValueError(f"corrupt joint archive {path}: {exc}; rebuild it with `remomask data build`") from exc
    if lengths.sum() != len(data) or not (len(ids) == len(lengths) == len(offset) == len(scale)):
        raise ValueError(f"inconsistent joint archive {path}; rebuild it with `remomask data build`")
    out: dict[str, np.ndarray] = {}
    starts = np.concatenate([[0], np.cumsum(lengths)])
    for k, clip_id in enumerate(ids.tolist()):
        chunk = data[starts[k]:starts[k + 1]].astype(np.float64) * scale[k] + offset[k]
        out[clip_id] = chunk.astype(np.float32)
    return out
