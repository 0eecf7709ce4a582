"""Mocap import: BVH (Bandai-Namco, CMU and its Daz / Character Creator retargets, ReActIdle's
Rigify rig) and ASF/AMC (CMU, HDM05) -> 22 HumanML3D joints.

``import_mocap(path)`` gives (T, 22, 3) float32 joints in metres, Y-up, at 20 fps (docs/design.md §2.1, §2.2).
Modules: ``bvh`` (BVH reader, forward kinematics, resampling), ``asf_amc`` (ASF/AMC reader),
``mapping`` (joint tables per source skeleton, including the 22-joint skeleton of remomask's own
BVH export), ``importer`` (the one-call import). Motion files in general (``.npy`` / ``.npz`` /
``.bvh``) are read by :mod:`remomask.data.motion_file`.
"""

from .asf_amc import AmcMotion, AsfSkeleton, asf_amc_motion, parse_amc, parse_asf
from .bvh import BvhFile, MocapFormatError, SkeletonMotion, bvh_motion, forward_kinematics, parse_bvh
from .importer import MocapImport, find_asf, import_mocap, is_t_pose
from .mapping import MAPPINGS, JointMap, detect_source, get_mapping, to_humanml3d

__all__ = [
    "MocapImport",
    "import_mocap",
    "find_asf",
    "is_t_pose",
    "MocapFormatError",
    "SkeletonMotion",
    "forward_kinematics",
    "BvhFile",
    "parse_bvh",
    "bvh_motion",
    "AsfSkeleton",
    "AmcMotion",
    "parse_asf",
    "parse_amc",
    "asf_amc_motion",
    "JointMap",
    "MAPPINGS",
    "get_mapping",
    "detect_source",
    "to_humanml3d",
]
