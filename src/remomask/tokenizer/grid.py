"""The 2D motion grid: 263-d (251-d) features <-> a (T, J', 12) per-joint tensor (docs/design.md §3.1).

Each joint row holds 12 channels. Joints 1..J-1: ``ric`` position (0:3), ``cont6d`` rotation (3:9),
local velocity (9:12). The root row (joint 0) has no ric/cont6d; remomask's default (docs/design.md §0.3 "Decisions",
tokenizer row) fills it with the root data (dims 0:4 -> channels 0:4) and the four foot contacts
(dims 259:263 -> channels 4:8); channel 8 stays zero and channels 9:12 are the root's local velocity.
So one 2D branch carries the whole feature vector and :func:`from_grid` inverts :func:`to_grid` exactly.
(The public code leaves root channels 0:9 empty and needs a 1D branch for root and contacts.)

The joint axis is padded with zero rows to a multiple of 4 so that two stride-2 down-samplings give
whole "joint columns": one row before the skeleton and the rest after (HumanML3D 1 + 22 + 1 = 24,
KIT-ML 1 + 21 + 2 = 24), as the reference code does.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["GRID_CHANNELS", "GridLayout", "grid_layout", "to_grid", "from_grid"]

GRID_CHANNELS = 12
"""Channels per joint row: ric 3 + cont6d 6 + local velocity 3 (docs/design.md §3.1)."""

_MULTIPLE = 4  # two stride-2 down-samplings of the joint axis


@dataclass(frozen=True)
class GridLayout:
    """Where the D-d features go in the padded (J', 12) grid.

    Attributes:
        num_joints: J (22 HumanML3D, 21 KIT-ML).
        pad_before, pad_after: zero rows before / after the skeleton rows.
    """

    num_joints: int
    pad_before: int
    pad_after: int

    @property
    def feature_dim(self) -> int:
        """D = 4 + 9 (J - 1) + 3 J + 4 = 12 J - 1 (263 for 22 joints, 251 for 21)."""
        return 12 * self.num_joints - 1

    @property
    def rows(self) -> int:
        """J', the padded joint axis (24 for both HumanML3D and KIT-ML)."""
        return self.pad_before + self.num_joints + self.pad_after

    @property
    def columns(self) -> int:
        """Joint columns after two stride-2 down-samplings: J' / 4 (6)."""
        return self.rows // _MULTIPLE


def grid_layout(feature_dim: int) -> GridLayout:
    """The :class:`GridLayout` of D-d features (D = 12 J - 1).

    Raises:
        ValueError: D is not of the form 12 J - 1 with J >= 2.
    """
    if (feature_dim + 1) % 12 or feature_dim < 23:
        raise ValueError(f"feature size {feature_dim} is not a HumanML3D-layout size 12*J - 1 "
                         "(263 for HumanML3D, 251 for KIT-ML)")
    j = (feature_dim + 1) // 12
    rows = -(-(j + 1) // _MULTIPLE) * _MULTIPLE  # at least one row before the root
    return GridLayout(num_joints=j, pad_before=1, pad_after=rows - j - 1)


def _slices(j: int) -> tuple[slice, slice, slice, slice]:
    ric = slice(4, 4 + (j - 1) * 3)
    rot = slice(ric.stop, ric.stop + (j - 1) * 6)
    vel = slice(rot.stop, rot.stop + j * 3)
    feet = slice(vel.stop, vel.stop + 4)
    return ric, rot, vel, feet


def to_grid(motion: torch.Tensor) -> torch.Tensor:
    """Features (..., T, D) -> padded per-joint grid (..., T, J', 12) (docs/design.md §3.1, remomask root row).

    Args:
        motion: (..., T, D) tensor, D = 263 or 251, normalised or not (the map is linear and lossless).

    Returns:
        (..., T, J', 12) tensor of the same dtype/device; padding rows and root channel 8 are zero.

    Raises:
        TypeError: not a tensor. ValueError: D is not a HumanML3D-layout size.
    """
    if not isinstance(motion, torch.Tensor):
        raise TypeError(f"to_grid expects a torch tensor (..., T, D), got {type(motion).__name__}")
    lay = grid_layout(motion.shape[-1])
    j = lay.num_joints
    ric, rot, vel, feet = _slices(j)
    lead = motion.shape[:-1]
    body = torch.cat([motion[..., ric].reshape(*lead, j - 1, 3),
                      motion[..., rot].reshape(*lead, j - 1, 6)], dim=-1)           # (..., T, J-1, 9)
    root = torch.cat([motion[..., 0:4], motion[..., feet],
                      motion.new_zeros(*lead, 1)], dim=-1)[..., None, :]           # (..., T, 1, 9)
    rows = torch.cat([torch.cat([root, body], dim=-2),
                      motion[..., vel].reshape(*lead, j, 3)], dim=-1)              # (..., T, J, 12)
    pad = (0, 0, lay.pad_before, lay.pad_after)
    return torch.nn.functional.pad(rows, pad)


def from_grid(grid: torch.Tensor, num_joints: int | None = None) -> torch.Tensor:
    """Inverse of :func:`to_grid`: (..., T, J', 12) -> (..., T, D); padding rows and root channel 8
    are ignored.

    Args:
        grid: (..., T, J', 12) tensor.
        num_joints: J; None infers 22 from J' = 24 (pass 21 for KIT-ML, whose J' is also 24).

    Raises:
        ValueError: wrong channel count, or J' does not fit J.
    """
    if not isinstance(grid, torch.Tensor) or grid.ndim < 3 or grid.shape[-1] != GRID_CHANNELS:
        shape = tuple(grid.shape) if isinstance(grid, torch.Tensor) else type(grid).__name__
        raise ValueError(f"from_grid expects a (..., T, J', {GRID_CHANNELS}) tensor, got {shape}")
    j = num_joints if num_joints is not None else grid.shape[-2] - 2
    lay = grid_layout(12 * j - 1)
    if grid.shape[-2] != lay.rows:
        raise ValueError(f"grid has {grid.shape[-2]} joint rows but {j} joints pad to {lay.rows}; "
                         "pass num_joints")
    rows = grid[..., lay.pad_before: lay.pad_before + j, :]                         # (..., T, J, 12)
    lead = rows.shape[:-2]
    root = rows[..., 0, :]
    return torch.cat([
        root[..., 0:4],
        rows[..., 1:, 0:3].reshape(*lead, (j - 1) * 3),
        rows[..., 1:, 3:9].reshape(*lead, (j - 1) * 6),
        rows[..., 9:12].reshape(*lead, j * 3),
        root[..., 4:8],
    ], dim=-1)
