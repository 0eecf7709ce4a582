"""One call from a mocap file to 22 HumanML3D joints in metres, Y-up, at 20 fps (docs/design.md §2.1, §2.2).

``import_mocap`` reads a BVH (Bandai-Namco or CMU) or an AMC with its ASF (CMU, HDM05), runs
forward kinematics, maps the skeleton to the 22 SMPL-order joints (``mapping.py``), converts to
metres and resamples:

* integer ratio (120 -> 20 fps): keep every 6th frame, starting with the first (for an AMC only
  those frames' values are parsed).
* otherwise (Bandai-Namco 30 -> 20 fps): slerp of the local joint rotations and linear
  interpolation of the local translations, then forward kinematics again, so every bone keeps its
  length exactly (interpolating joint positions would shorten bones).

Some CMU BVH conversions (01_01.bvh) begin with a T-pose frame before the capture; it is dropped
(``_has_rest_frame``), so such a BVH and its AMC give the same frames.

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
from .mapping import detect_source, get_mapping, to_humanml3d

__all__ = ["MocapImport", "import_mocap", "find_asf"]


@dataclass(frozen=True)
class MocapImport:
    """A mocap clip as 22 HumanML3D joints.

    Attributes:
        joints: (T, 22, 3) float32 world positions in metres, Y-up, HumanML3D joint order.
        fps: frame rate of ``joints`` (20.0 by default).
        source: ``"bandai"``, ``"cmu_bvh"``, ``"cmu_asf"`` or ``"humanml3d"`` (a BVH written by
            ``remomask export bvh``).
        name: file name (without folders).
        source_fps: frame rate of the file.
        source_frames: number of frames of the file used (a CMU BVH's leading rest pose, when
            present, is dropped and not counted).
    """

    joints: np.ndarray
    fps: float
    source: str
    name: str
    source_fps: float
    source_frames: int

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
                 name: str | None = None, fps: float | None = None) -> MocapImport:
    """Import a BVH or AMC clip as (T, 22, 3) HumanML3D joints in metres, Y-up, at ``target_fps``.

    Args:
        path: a ``.bvh`` / ``.amc`` path, or the file's bytes or an open file object (e.g. a member
            of a tar archive; give ``name`` so the format and messages are right).
        source: ``"bandai"``, ``"cmu_bvh"``, ``"cmu_asf"`` or ``"humanml3d"`` (remomask's own BVH
            export, unit inferred from its rest leg); detected from the joint names when
            ``None`` (every AMC is ``"cmu_asf"``, which also serves HDM05).
        asf: for an AMC: its ASF (path, bytes, file object or a parsed :class:`AsfSkeleton`, which
            lets a builder parse each actor's skeleton once). Default: :func:`find_asf`.
        target_fps: output frame rate (default 20, HumanML3D's); ``None`` keeps the file's.
        name: name used for format detection and messages (default: the path's name).
        fps: frame rate of an AMC (default: from ``_<fps>.amc`` in the name, else 120); BVH files
            carry their own (``Frame Time``).

    Returns:
        :class:`MocapImport`.

    Raises:
        MocapFormatError: malformed file (names the file, line and fix), unknown skeleton, AMC
            without a findable ASF.
        FileNotFoundError: a path that does not exist.
    """
    text, label = read_text(path, name)
    fmt = _detect_format(label, text[:4096])
    if fmt == "bvh":
        bvh, motion, file_fps = _read_bvh(text, label)
        if source is None:
            source = detect_source(motion.names)
            if source is None:
                raise MocapFormatError(
                    f"{label}: unknown BVH skeleton (joints {list(motion.names[:8])}...); no joint "
                    "table matches it: pass source='bandai', 'cmu_bvh' or 'humanml3d' if it is one "
                    "of those, or add a JointMap in remomask/data/mocap/mapping.py")
        if source == "cmu_bvh" and _has_rest_frame(bvh):
            motion = motion.select_frames(slice(1, None))
        file_frames = motion.num_frames
        metres = get_mapping(source, label).metres_per_unit
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
                       float(file_fps), int(file_frames))


def _read_bvh(text: str, label: str) -> tuple[BvhFile, SkeletonMotion, float]:
    bvh = parse_bvh(io.StringIO(text), name=label)
    file_fps = _snap_fps(bvh.fps)
    return bvh, dataclasses.replace(bvh_motion(bvh), fps=file_fps), file_fps


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
