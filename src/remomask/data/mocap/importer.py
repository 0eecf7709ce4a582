"""One call from a mocap file to 22 HumanML3D joints in metres, Y-up, at 20 fps (docs/design.md §2.1, §2.2).

``import_mocap`` reads a BVH (Bandai-Namco or CMU) or an AMC with its ASF (CMU, HDM05), runs
forward kinematics, maps the skeleton to the 22 SMPL-order joints (``mapping.py``), converts to
metres and resamples:

* integer ratio (120 -> 20 fps): keep every 6th frame, starting with the first (for an AMC only
  those frames' values are parsed).
* otherwise (Bandai-Namco 30 -> 20 fps): slerp of the local joint rotations and linear
  interpolation of the local translations, then forward kinematics again, so every bone keeps its
  length exactly (interpolating joint positions would shorten bones).

Leading rest-pose frames are dropped so that a BVH and the AMC of the same trial give the same
frames: CMU's 01_01.bvh begins with a level T-pose (``_has_rest_frame``); every cgspeed Daz BVH
with one T-pose frame (``JointMap.leading_rest_frames``); some iClone CC files with one
(``JointMap.rest_frame_check``, :func:`is_t_pose`). ``import_mocap(rest_frames=)`` overrides the
rule, and ``fps=`` overrides a BVH's ``Frame Time`` (the Daz files say 1/120 s for 60 fps trials).

Output frame ``k`` is the pose at ``k / target_fps`` seconds; a clip of T source frames at f fps
gives ``floor((T - 1) * target_fps / f) + 1`` frames. Positions are world coordinates of the
capture (no floor, facing or origin normalisation: the feature pipeline does that, docs/design.md §2.1).
"""

from __future__ import annotations

import dataclasses
import io
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .asf_amc import AsfSkeleton, amc_frame_rate, asf_amc_motion, parse_amc, parse_asf
from .bvh import BvhFile, MocapFormatError, SkeletonMotion, Source, bvh_motion, parse_bvh, read_text
from ..skeleton import HUMANML3D
from .mapping import BVH_CANDIDATES, detect_source, get_mapping, to_humanml3d

__all__ = ["MocapImport", "import_mocap", "find_asf", "is_t_pose", "T_POSE_TOLERANCE_DEG"]


@dataclass(frozen=True)
class MocapImport:
    """A mocap clip as 22 HumanML3D joints.

    Attributes:
        joints: (T, 22, 3) float32 world positions in metres, Y-up, HumanML3D joint order.
        fps: frame rate of ``joints`` (20.0 by default).
        source: ``"bandai"``, ``"cmu_bvh"``, ``"daz"``, ``"cc"``, ``"rigify"``, ``"cmu_asf"`` or
            ``"humanml3d"`` (a BVH written by ``remomask export bvh``).
        name: file name (without folders).
        source_fps: frame rate of the file (the ``fps=`` override when given).
        source_frames: number of frames of the file used (leading rest-pose frames are dropped
            and not counted).
        rest_frames: number of leading rest-pose frames dropped (0 for an AMC).
    """

    joints: np.ndarray
    fps: float
    source: str
    name: str
    source_fps: float
    source_frames: int
    rest_frames: int = 0

    @property
    def num_frames(self) -> int:
        """Number of frames T."""
        return int(self.joints.shape[0])

    @property
    def duration(self) -> float:
        """Seconds from the first to the last frame of the file, ``(source_frames - 1) / source_fps``."""
        return (self.source_frames - 1) / self.source_fps


def _snap_fps(fps: float) -> float:
    # "Frame Time: 0.0333333" is 30.00003 fps; treat rates within 0.01% of an integer as that integer.
    nearest = round(fps)
    return float(nearest) if nearest > 0 and abs(fps - nearest) < 1e-4 * fps else fps


def _frame_step(fps: float, target_fps: float | None) -> int:
    if target_fps is None:
        return 1
    ratio = fps / target_fps
    step = round(ratio)
    return step if step >= 1 and abs(ratio - step) < 1e-6 else 1


def find_asf(amc_path: str | os.PathLike) -> Path:
    """The ASF skeleton next to an AMC: the ``.asf`` whose name is the longest prefix of the AMC's.

    ``01_01.amc`` -> ``01.asf`` (CMU); ``HDM_bd_kickLFront1Reps_001_120.amc`` -> ``HDM_bd.asf``
    (HDM05); a folder with a single ``.asf`` -> that one.

    Raises:
        MocapFormatError: no matching ASF in the folder.
    """
    amc_path = Path(amc_path)
    candidates = sorted(amc_path.parent.glob("*.asf")) + sorted(amc_path.parent.glob("*.ASF"))
    matching = [c for c in candidates if amc_path.stem.lower().startswith(c.stem.lower())]
    if matching:
        return max(matching, key=lambda c: len(c.stem))
    if len(candidates) == 1:
        return candidates[0]
    raise MocapFormatError(f"{amc_path}: no ASF skeleton found beside this AMC (looked for "
                           f"'<prefix>.asf' in {amc_path.parent}); pass asf=<path to its .asf>")


def _detect_format(name: str, head: str) -> str:
    suffix = Path(name).suffix.lower()
    if suffix in (".bvh", ".amc"):
        return suffix[1:]
    if suffix == ".asf":
        raise MocapFormatError(f"{name}: an ASF file holds only a skeleton; import the .amc motion "
                               "and pass this file as asf=")
    stripped = head.lstrip()
    if stripped.startswith("HIERARCHY"):
        return "bvh"
    if re.search(r"^:(FULLY-SPECIFIED|DEGREES|RADIANS)", head, flags=re.MULTILINE):
        return "amc"
    raise MocapFormatError(f"{name}: not a BVH or AMC file (no 'HIERARCHY' or ':FULLY-SPECIFIED' "
                           "header); pass a .bvh, or an .amc with its asf=")


def import_mocap(path: Source, *, source: str | None = None,
                 asf: Source | AsfSkeleton | None = None, target_fps: float | None = 20.0,
                 name: str | None = None, fps: float | None = None,
                 rest_frames: int | None = None) -> MocapImport:
    """Import a BVH or AMC clip as (T, 22, 3) HumanML3D joints in metres, Y-up, at ``target_fps``.

    Args:
        path: a ``.bvh`` / ``.amc`` path, or the file's bytes or an open file object (e.g. a member
            of a tar archive; give ``name`` so the format and messages are right).
        source: ``"bandai"``, ``"cmu_bvh"``, ``"daz"``, ``"cc"``, ``"rigify"``, ``"cmu_asf"`` or
            ``"humanml3d"`` (remomask's own BVH export, unit inferred from its rest leg); detected
            from the joint names when ``None`` (every AMC is ``"cmu_asf"``, which also serves HDM05).
        asf: for an AMC: its ASF (path, bytes, file object or a parsed :class:`AsfSkeleton`, which
            lets a builder parse each actor's skeleton once). Default: :func:`find_asf`.
        target_fps: output frame rate (default 20, HumanML3D's); ``None`` keeps the file's.
        name: name used for format detection and messages (default: the path's name).
        fps: the file's true frame rate. For an AMC the default is ``_<fps>.amc`` in the name, else
            120. For a BVH the default is its ``Frame Time``; pass ``fps`` to override a wrong header
            (the cgspeed Daz BVH of CMU say 1/120 s also for 60 fps trials: the dataset builder
            passes the CMU trial's rate from ``cmu/manifest.json``).
        rest_frames: number of leading non-capture frames to drop from a BVH; ``None`` (default)
            uses the rig's rule: ``JointMap.leading_rest_frames`` (``daz``: always 1), frame 0
            when :func:`is_t_pose` holds for a rig with ``rest_frame_check`` (``cc``), and for
            ``cmu_bvh`` the level-root rest frame of 01_01.bvh. Counts as file frames, before
            resampling.

    Returns:
        :class:`MocapImport`.

    Raises:
        MocapFormatError: malformed file (names the file, line and fix), unknown skeleton, AMC
            without a findable ASF, a BVH with no frames left after its rest frames.
        FileNotFoundError: a path that does not exist.
        ValueError: ``fps`` or ``rest_frames`` out of range.
    """
    if fps is not None and not 0 < fps < 1e4:
        raise ValueError(f"fps must be a positive frame rate, got {fps}")
    if rest_frames is not None and rest_frames < 0:
        raise ValueError(f"rest_frames must be >= 0, got {rest_frames}")
    text, label = read_text(path, name)
    fmt = _detect_format(label, text[:4096])
    dropped = 0
    if fmt == "bvh":
        bvh = parse_bvh(io.StringIO(text), name=label)
        file_fps = float(fps) if fps is not None else _snap_fps(bvh.fps)
        if source is None:
            source = detect_source(bvh.joint_names)
            if source is None:
                raise MocapFormatError(
                    f"{label}: unknown BVH skeleton (joints {list(bvh.joint_names[:8])}...); no joint "
                    f"table matches it: pass source= one of {list(BVH_CANDIDATES)} if it is one of "
                    "those, or add a JointMap in remomask/data/mocap/mapping.py")
        mapping = get_mapping(source, label)
        motion = dataclasses.replace(bvh_motion(bvh, mapping.root_offset_added), fps=file_fps)
        dropped = rest_frames if rest_frames is not None else _rest_frame_count(bvh, motion, source)
        if dropped:
            if dropped >= motion.num_frames:
                raise MocapFormatError(
                    f"{label}: the file holds {motion.num_frames} frame(s), all of them rest-pose "
                    f"frames to drop ({dropped}); no captured motion is left: re-export the clip")
            motion = motion.select_frames(slice(dropped, None))
        file_frames = motion.num_frames
        metres = mapping.metres_per_unit
        if metres is None and source == "humanml3d":
            metres = _rest_leg_unit(bvh, label)
    else:
        skeleton = _load_asf(asf, path, label)
        file_fps = fps if fps is not None else amc_frame_rate(label)
        step = _frame_step(file_fps, target_fps)
        amc = parse_amc(io.StringIO(text), skeleton, name=label, frame_step=step)
        file_frames = amc.total_frames
        motion = asf_amc_motion(skeleton, amc, file_fps / step)
        source = source or "cmu_asf"
        metres = skeleton.metres_per_unit
    if metres is None:
        raise MocapFormatError(f"{label}: source {source!r} has no length unit for this format; "
                               "import BVH files with a BVH source")
    if target_fps is not None:
        motion = motion.resample(target_fps)
    joints = to_humanml3d(motion.positions(), motion.names, source, label) * metres
    return MocapImport(joints.astype(np.float32), float(motion.fps), source, Path(label).name,
                       float(file_fps), int(file_frames), int(dropped))


T_POSE_TOLERANCE_DEG = 2.0
"""Largest elevation (degrees above or below horizontal) of each of the four arm bones
(shoulder -> elbow, elbow -> wrist, both sides) for :func:`is_t_pose`. Measured on the first
frames of all 61 CMU clips of the ``cc`` rig: the 10 T-poses (007_03-007_12) have at most 0.59
degrees; of the 51 captured first frames the most level has 5.1 degrees (003_02), the next 24.9."""


def is_t_pose(joints: np.ndarray, tolerance_deg: float = T_POSE_TOLERANCE_DEG) -> bool:
    """True when one frame of HumanML3D joints (22, 3), Y-up, is a T-pose.

    A T-pose here has both upper arms and both forearms horizontal within ``tolerance_deg``
    (a rig's bind pose written as a frame: at most 0.59 degrees in the CC files; a captured first
    frame with all four arm bones level within 2 degrees does not occur in the CMU data, see
    :data:`T_POSE_TOLERANCE_DEG`). Any length unit; ``False`` for a zero-length arm bone.
    Source: docs/design.md §2.1 (mocap import, ``mapping.py``).
    """
    names = HUMANML3D.joint_names
    worst = 0.0
    for a, b in (("left_shoulder", "left_elbow"), ("left_elbow", "left_wrist"),
                 ("right_shoulder", "right_elbow"), ("right_elbow", "right_wrist")):
        bone = joints[names.index(b)] - joints[names.index(a)]
        length = float(np.linalg.norm(bone))
        if not length > 0:
            return False
        worst = max(worst, abs(float(np.degrees(np.arcsin(np.clip(bone[1] / length, -1, 1))))))
    return worst <= tolerance_deg


def _rest_frame_count(bvh: BvhFile, motion: SkeletonMotion, source: str) -> int:
    """Leading rest frames to drop by the rig's rule (see ``import_mocap(rest_frames=)``)."""
    mapping = get_mapping(source, bvh.name)
    if mapping.leading_rest_frames:
        return mapping.leading_rest_frames
    if mapping.rest_frame_check == "t_pose":
        first = motion.select_frames(slice(0, 1))
        return int(is_t_pose(to_humanml3d(first.positions(), first.names, source, bvh.name)[0]))
    if source == "cmu_bvh" and _has_rest_frame(bvh):
        return 1
    return 0


def _rest_leg_unit(bvh: BvhFile, label: str) -> float:
    """Metres per unit of a HumanML3D-skeleton BVH (``remomask export bvh``), from its rest leg.

    The exporter writes centimetres by default (``--scale 100``) or metres (``--scale 1``); the
    rest hip -> knee -> ankle length of an adult is 0.6-1.0 m, so the unit is the power of ten
    that brings it nearest to 0.8 m (1 for metres, 0.01 for centimetres, 0.001 for millimetres).
    """
    offsets = {j.name: np.asarray(j.offset, dtype=np.float64) for j in bvh.joints}
    leg = sum(float(np.linalg.norm(offsets.get(n, np.zeros(3)))) for n in ("left_knee", "left_ankle"))
    if not leg > 0:
        raise MocapFormatError(f"{label}: the rest leg (left_hip -> left_knee -> left_ankle OFFSETs) "
                               "has length 0, so the length unit cannot be inferred; re-export it")
    return float(10.0 ** round(np.log10(0.8 / leg)))


def _has_rest_frame(bvh: BvhFile) -> bool:
    """True when frame 0 is a rest pose added by the conversion, not a captured frame.

    The CMU BVH conversion of 01_01 starts with a T-pose whose root rotation is exactly 0 0 0,
    followed by the 2751 AMC frames; a captured root is never exactly level and unrotated.
    """
    root_rot = [k for k, c in enumerate(bvh.joints[0].channels) if c.endswith("rotation")]
    if bvh.motion.shape[0] < 2 or not root_rot:
        return False
    return bool(np.all(bvh.motion[0, root_rot] == 0.0) and np.any(bvh.motion[1, root_rot] != 0.0))


def _load_asf(asf: Source | AsfSkeleton | None, path: Source, label: str) -> AsfSkeleton:
    if isinstance(asf, AsfSkeleton):
        return asf
    if asf is None:
        if not isinstance(path, (str, os.PathLike)):
            raise MocapFormatError(f"{label}: an AMC read from bytes or a file object needs its "
                                   "skeleton: pass asf=<.asf path, bytes or parsed AsfSkeleton>")
        asf = find_asf(path)
    return parse_asf(asf)
