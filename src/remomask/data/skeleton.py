"""Skeleton definitions: the HumanML3D 22-joint (SMPL order) and KIT-ML 21-joint skeletons,
and the six body parts of the part-level retriever.

Sources: docs/design.md §2.1 (joint order, kinematic chains, raw offsets, foot and facing joints,
leg-length indices) and §4.1 (body parts, ``whole2parts`` / ``parts2whole``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

__all__ = [
    "Skeleton",
    "HUMANML3D",
    "KIT",
    "get_skeleton",
    "BODY_PARTS",
]


@dataclass(frozen=True, eq=False)  # identity equality/hash: skeletons are module constants
class Skeleton:
    """A rooted skeleton as HumanML3D's processing code sees it.

    Attributes:
        name: ``"humanml3d"`` or ``"kit"``.
        joint_names: one name per joint, index order.
        kinematic_chain: chains of joint indices, each starting at its parent (docs/design.md §2.1).
        raw_offsets: (J, 3) unit direction of each joint's rest offset from its parent.
        feet_left / feet_right: joint indices used for foot contacts (``fid_l``, ``fid_r``).
        face_joints: ``[r_hip, l_hip, r_shoulder, l_shoulder]`` (``face_joint_indx``).
        leg_indices: the two joints whose offsets give the leg length for retargeting (``l_idx1/2``).
        fps: native frame rate of the dataset's features (20 for HumanML3D, 12.5 for KIT).
        contact_threshold: squared per-frame foot displacement under which a foot is in contact
            (0.002 HumanML3D in metres, 0.05 KIT in its millimetre-scaled units).
        min_motion_length: shortest clip kept by the loaders, in frames.
        mirror_pairs: left/right joint index pairs swapped when mirroring.
    """

    name: str
    joint_names: tuple[str, ...]
    kinematic_chain: tuple[tuple[int, ...], ...]
    raw_offsets: np.ndarray = field(repr=False)
    feet_left: tuple[int, int]
    feet_right: tuple[int, int]
    face_joints: tuple[int, int, int, int]
    leg_indices: tuple[int, int]
    fps: float
    contact_threshold: float
    min_motion_length: int
    mirror_pairs: tuple[tuple[int, int], ...]

    @property
    def num_joints(self) -> int:
        """Number of joints J."""
        return len(self.joint_names)

    @property
    def feature_dim(self) -> int:
        """Size of the HumanML3D-style feature vector: 4 + (J-1)*3 + (J-1)*6 + J*3 + 4."""
        j = self.num_joints
        return 4 + (j - 1) * 9 + j * 3 + 4

    @cached_property
    def parents(self) -> np.ndarray:
        """(J,) parent index of each joint, -1 for the root, derived from the kinematic chain."""
        parents = np.full(self.num_joints, -1, dtype=np.int64)
        for chain in self.kinematic_chain:
            for parent, child in zip(chain[:-1], chain[1:]):
                parents[child] = parent
        return parents

    @cached_property
    def mirror_permutation(self) -> np.ndarray:
        """(J,) joint permutation that swaps left and right joints."""
        perm = np.arange(self.num_joints)
        for a, b in self.mirror_pairs:
            perm[a], perm[b] = b, a
        return perm


_T2M_NAMES = (
    "pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee", "spine2",
    "left_ankle", "right_ankle", "spine3", "left_foot", "right_foot", "neck",
    "left_collar", "right_collar", "head", "left_shoulder", "right_shoulder",
    "left_elbow", "right_elbow", "left_wrist", "right_wrist",
)

HUMANML3D = Skeleton(
    name="humanml3d",
    joint_names=_T2M_NAMES,
    kinematic_chain=((0, 2, 5, 8, 11), (0, 1, 4, 7, 10), (0, 3, 6, 9, 12, 15),
                     (9, 14, 17, 19, 21), (9, 13, 16, 18, 20)),
    raw_offsets=np.array(
        [[0, 0, 0], [1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, -1, 0], [0, 1, 0],
         [0, -1, 0], [0, -1, 0], [0, 1, 0], [0, 0, 1], [0, 0, 1], [0, 1, 0], [1, 0, 0],
         [-1, 0, 0], [0, 0, 1], [0, -1, 0], [0, -1, 0], [0, -1, 0], [0, -1, 0], [0, -1, 0],
         [0, -1, 0]], dtype=np.float64),
    feet_left=(7, 10),
    feet_right=(8, 11),
    face_joints=(2, 1, 17, 16),
    leg_indices=(5, 8),
    fps=20.0,
    contact_threshold=0.002,
    min_motion_length=40,
    mirror_pairs=((1, 2), (4, 5), (7, 8), (10, 11), (13, 14), (16, 17), (18, 19), (20, 21)),
)

# KIT-ML joint order (docs/design.md §2.1). Sides follow the reference's foot and facing indices
# (fid_r = [14, 15], face_joint_indx = [11, 16, 5, 8] = r_hip, l_hip, r_shoulder, l_shoulder).
_KIT_NAMES = (
    "root", "spine_lower", "spine_upper", "neck", "head",
    "right_shoulder", "right_elbow", "right_wrist", "left_shoulder", "left_elbow", "left_wrist",
    "right_hip", "right_knee", "right_ankle", "right_metatarsal", "right_toe",
    "left_hip", "left_knee", "left_ankle", "left_metatarsal", "left_toe",
)

KIT = Skeleton(
    name="kit",
    joint_names=_KIT_NAMES,
    kinematic_chain=((0, 11, 12, 13, 14, 15), (0, 16, 17, 18, 19, 20), (0, 1, 2, 3, 4),
                     (3, 5, 6, 7), (3, 8, 9, 10)),
    raw_offsets=np.array(
        [[0, 0, 0], [0, 1, 0], [0, 1, 0], [0, 1, 0], [0, 1, 0], [1, 0, 0], [0, -1, 0],
         [0, -1, 0], [-1, 0, 0], [0, -1, 0], [0, -1, 0], [1, 0, 0], [0, -1, 0], [0, -1, 0],
         [0, 0, 1], [0, 0, 1], [-1, 0, 0], [0, -1, 0], [0, -1, 0], [0, 0, 1], [0, 0, 1]],
        dtype=np.float64),
    feet_left=(19, 20),
    feet_right=(14, 15),
    face_joints=(11, 16, 5, 8),
    leg_indices=(17, 18),
    fps=12.5,
    contact_threshold=0.05,
    min_motion_length=24,
    mirror_pairs=((5, 8), (6, 9), (7, 10), (11, 16), (12, 17), (13, 18), (14, 19), (15, 20)),
)


def get_skeleton(name: str | Skeleton) -> Skeleton:
    """Return the skeleton called ``name`` (``"humanml3d"``/``"t2m"`` or ``"kit"``).

    Raises:
        ValueError: for an unknown name.
    """
    if isinstance(name, Skeleton):
        return name
    key = name.lower().replace("-", "").replace("_", "")
    if key in ("humanml3d", "t2m", "hml3d", "smpl22", "embedded"):
        return HUMANML3D
    if key in ("kit", "kitml"):
        return KIT
    raise ValueError(f"unknown skeleton {name!r}: use 'humanml3d' (22 joints) or 'kit' (21 joints)")


BODY_PARTS = ("Root", "R_Leg", "L_Leg", "Backbone", "R_Arm", "L_Arm")
"""Part order used everywhere (docs/design.md §4.1)."""


# Body parts of the part-level retriever (docs/design.md §4.1): joints per part; each joint >= 1 contributes its
# 12-d block [ric (3), cont6d (6), local velocity (3)]. Root is [root data (4), root velocity (3)];
# the legs add their two foot contacts. The shared spine joint appears in the torso and both arms.
PART_JOINTS = {
    "humanml3d": {
        "R_Leg": (2, 5, 8, 11), "L_Leg": (1, 4, 7, 10), "Backbone": (3, 6, 9, 12, 15),
        "R_Arm": (9, 14, 17, 19, 21), "L_Arm": (9, 13, 16, 18, 20),
    },
    "kit": {
        "R_Leg": (11, 12, 13, 14, 15), "L_Leg": (16, 17, 18, 19, 20), "Backbone": (1, 2, 3, 4),
        "R_Arm": (3, 5, 6, 7), "L_Arm": (3, 8, 9, 10),
    },
}
"""Joints of each non-root part per skeleton (docs/design.md §4.1)."""
