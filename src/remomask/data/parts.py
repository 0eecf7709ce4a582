"""Body-part split of HumanML3D features for the part-level retriever (docs/design.md §4.1, ``whole2parts``).

Six parts in the order of :data:`~remomask.data.skeleton.BODY_PARTS`:
Root (7), R_Leg (50), L_Leg (50), Backbone (60), R_Arm (60), L_Arm (60) for HumanML3D (287 dims,
covering all 263 with spine3 three times); KIT: 7, 62, 62, 48, 48, 48.

Both directions are index gathers / one matrix product, so they work on numpy arrays and torch
tensors alike and are differentiable.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np

from .features import FeatureLayout
from .skeleton import BODY_PARTS, PART_JOINTS, Skeleton, get_skeleton

__all__ = ["part_indices", "part_dims", "whole_to_parts", "parts_to_whole"]


@lru_cache(maxsize=None)
def _tables(name: str) -> tuple[tuple[np.ndarray, ...], np.ndarray]:
    skel = get_skeleton(name)
    lay = FeatureLayout(skel.num_joints)

    def joint_block(j: int) -> list[int]:
        ric = list(range(lay.ric.start + 3 * (j - 1), lay.ric.start + 3 * j))
        rot = list(range(lay.cont6d.start + 6 * (j - 1), lay.cont6d.start + 6 * j))
        vel = list(range(lay.local_velocity.start + 3 * j, lay.local_velocity.start + 3 * j + 3))
        return ric + rot + vel

    feet = list(range(lay.foot_contact.start, lay.foot_contact.stop))  # [L_ankle, L_foot, R_*]
    parts: dict[str, list[int]] = {
        "Root": list(range(4)) + list(range(lay.local_velocity.start, lay.local_velocity.start + 3)),
    }
    for part, joints in PART_JOINTS[skel.name].items():
        idx = [i for j in joints for i in joint_block(j)]
        if part == "R_Leg":
            idx += feet[2:4]
        elif part == "L_Leg":
            idx += feet[0:2]
        parts[part] = idx
    indices = tuple(np.asarray(parts[p], dtype=np.int64) for p in BODY_PARTS)
    flat = np.concatenate(indices)
    counts = np.bincount(flat, minlength=lay.dim)
    if (counts == 0).any():  # pragma: no cover - guards the tables above
        raise AssertionError(f"parts do not cover dims {np.where(counts == 0)[0]}")
    # merge[k, d] = 1/count(d) where concatenated-part position k holds whole dim d
    merge = np.zeros((flat.size, lay.dim), dtype=np.float64)
    merge[np.arange(flat.size), flat] = 1.0 / counts[flat]
    return indices, merge


def part_indices(skeleton: str | Skeleton = "humanml3d") -> tuple[np.ndarray, ...]:
    """Feature indices of each part, in :data:`BODY_PARTS` order (docs/design.md §4.1)."""
    return _tables(get_skeleton(skeleton).name)[0]


def part_dims(skeleton: str | Skeleton = "humanml3d") -> tuple[int, ...]:
    """Size of each part: (7, 50, 50, 60, 60, 60) for HumanML3D, (7, 62, 62, 48, 48, 48) for KIT."""
    return tuple(len(i) for i in part_indices(skeleton))


def whole_to_parts(features: Any, skeleton: str | Skeleton = "humanml3d") -> list[Any]:
    """Split features (..., D) into the six parts [(..., d_k)] (docs/design.md §4.1 ``whole2parts``).

    Works on numpy arrays and torch tensors. Raises ValueError if D does not match the skeleton.
    """
    skel = get_skeleton(skeleton)
    if features.shape[-1] != skel.feature_dim:
        raise ValueError(f"expected {skel.feature_dim}-d {skel.name} features, got {features.shape[-1]}")
    out = []
    for idx in part_indices(skel):
        if isinstance(features, np.ndarray):
            out.append(features[..., idx])
        else:
            import torch

            out.append(features.index_select(-1, torch.as_tensor(idx, device=features.device)))
    return out


def parts_to_whole(parts: list[Any], skeleton: str | Skeleton = "humanml3d") -> Any:
    """Inverse of :func:`whole_to_parts`: six parts [(..., d_k)] -> (..., D).

    Dims present in several parts (the shared spine joint) are averaged (docs/design.md §4.1 ``parts2whole``).
    Raises ValueError on a wrong number of parts or part sizes.
    """
    skel = get_skeleton(skeleton)
    dims = part_dims(skel)
    if len(parts) != len(dims) or tuple(p.shape[-1] for p in parts) != dims:
        raise ValueError(f"expected parts of sizes {dims}, got {[p.shape[-1] for p in parts]}")
    merge = _tables(skel.name)[1]
    if isinstance(parts[0], np.ndarray):
        return np.concatenate(parts, axis=-1) @ merge.astype(parts[0].dtype)
    import torch

    cat = torch.cat(parts, dim=-1)
    return cat @ torch.as_tensor(merge, dtype=cat.dtype, device=cat.device)
