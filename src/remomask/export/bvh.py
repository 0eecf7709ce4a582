"""BVH export of 22-joint HumanML3D motions (project issue 7, item 3).

A motion given as joint positions ``(T, 22, 3)`` in metres (or as HumanML3D features ``(T, 263)``,
whose joints are recovered with :func:`remomask.data.features.joints_from_features`) is written as a
Biovision BVH file on the same 22-joint skeleton (HumanML3D / SMPL joint order and names), one BVH
frame per motion frame (20 fps for HumanML3D).

How the rotations are obtained (inverse kinematics on the joint positions):

* **Rest pose.** A T-pose built from the skeleton's rest directions (:func:`rest_directions`: the
  HumanML3D ``raw_offsets`` with the arms along +-X and the head up), each bone scaled to the mean
  length of that bone over the motion. The children of a joint with several children (pelvis: both
  hips and spine1; spine3: neck and both collars) cannot all follow axis-aligned directions exactly
  (a real pelvis is not a right-angled cross), so their rest offsets are the motion's own mean
  geometry of that group, expressed in the frame that best aligns it (Kabsch) with the T-pose
  directions. Without this, a rigid pelvis could not be fitted and every joint would be off by
  several centimetres.
* **Joints with one child** get the shortest-arc (swing-only, zero twist) rotation, in the parent's
  frame, that turns the rest offset of the child onto its observed direction.
* **Joints with several children** get the least-squares rotation (Kabsch / SVD) that maps the
  rest offsets of all children onto their observed offsets, so the twist is defined.
* **Leaf joints** (feet, head, wrists) keep the parent's orientation (identity local rotation); their
  ``End Site`` is cosmetic: half the leaf bone's length along its rest direction.

Position channels (``positions``): with rotations alone, the file's forward kinematics reproduces
the input only if every bone keeps its length and every multi-child group is rigid. That holds for
HumanML3D (SMPL) and Bandai-Namco clips, but not for the HDM05 clips of the embedded dataset (their
spine1 and collars hang off rotating ASF bones: the first HDM05 clip is 4.9 cm off with rotations
only) nor for generated motions (bone lengths vary from frame to frame). So by default (``"auto"``)
a joint whose offset from its parent, in the parent's frame, moves by more than 1 mm over the motion
also gets ``Xposition Yposition Zposition`` channels carrying that per-frame offset (as in the
Bandai-Namco files, which give them to every joint). Rigid real mocap is written with rotation
channels only (root excepted) and its forward kinematics matches the joints to < 0.01 cm; in general
each rotation-only bone of a chain may add up to 1 mm (generated test motions: 0.11-0.14 cm).
``"root"`` forces the classic rotation-only layout (for tools that ignore non-root positions; the
error is then reported, not bounded) and ``"all"`` gives every joint position channels.
:attr:`BvhExport.max_error_m` reports the forward kinematics error of what is written. Measured
round trips: ``tests/test_export_bvh.py``.

File conventions:

* Units: OFFSETs and position channels are in metres times ``scale``; the default ``scale=100``
  writes **centimetres** (what most BVH tools assume; Blender imports in the units given, so scale
  its import by 0.01 or write ``scale=1`` for metres). Y is up, the character faces +Z at rest,
  left is +X (HumanML3D conventions).
* Channels: the root has ``Xposition Yposition Zposition`` then three rotations, every other joint
  three rotations, all in the same Euler ``order`` (default ``"ZXY"``: ``Zrotation Xrotation
  Yrotation``, the CMU / Bandai-Namco convention), intrinsic, in degrees: ``R = Rz @ Rx @ Ry``.
  Each angle channel is unwrapped over time (no 360-degree jumps).
* Root OFFSET is zero; the root's position channels carry its world position.
* Files are written atomically (:func:`remomask.data.storage.atomic_path`): a failure never leaves
  a partial file.

Rotation and Euler conversions use ``scipy.spatial.transform.Rotation``.
"""

from __future__ import annotations

import io
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy.spatial.transform import Rotation

from ..data.skeleton import HUMANML3D, Skeleton, get_skeleton
from ..errors import RemomaskError

__all__ = [
    "BvhExportError",
    "BvhExport",
    "rest_directions",
    "solve_bvh",
    "write_bvh",
    "export_bvh",
    "motion_to_joints",
]

_POSITIONS = ("auto", "root", "all")
_AUTO_TOLERANCE_M = 1e-3  # positions="auto": a joint whose offset moves more than this gets position channels


class BvhExportError(RemomaskError, ValueError):
    """A motion (or an option) that cannot be exported as BVH; the message names the problem and the fix."""


# ---------------------------------------------------------------------------------------------
# input checks
# ---------------------------------------------------------------------------------------------
def _check_options(fps: Any, scale: Any, order: Any, positions: Any) -> tuple[float, float, str]:
    try:
        fps_value = float(fps)
    except (TypeError, ValueError):
        fps_value = float("nan")
    if not (np.isfinite(fps_value) and fps_value > 0):
        raise BvhExportError(f"fps must be a positive number of frames per second, got {fps!r} "
                             "(HumanML3D motions are 20 fps)")
    try:
        scale_value = float(scale)
    except (TypeError, ValueError):
        scale_value = float("nan")
    if not (np.isfinite(scale_value) and scale_value > 0):
        raise BvhExportError(f"scale (BVH units per metre) must be a positive number, got {scale!r}; "
                             "use 100 for centimetres or 1 for metres")
    if not isinstance(order, str) or sorted(order.upper()) != ["X", "Y", "Z"]:
        raise BvhExportError(f"rotation order must be a permutation of 'XYZ' (e.g. 'ZXY' or 'ZYX'), got {order!r}")
    if positions not in _POSITIONS:
        raise BvhExportError(f"positions must be 'auto' (position channels where the skeleton is not rigid), "
                             f"'root' (on the root only) or 'all' (on every joint), got {positions!r}")
    return fps_value, scale_value, order.upper()


def _check_joints(joints: Any, skel: Skeleton) -> np.ndarray:
    try:
        arr = np.asarray(joints, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise BvhExportError(f"joints must be a numeric array of shape (T, {skel.num_joints}, 3) in metres "
                             f"({exc})") from None
    if arr.ndim != 3 or arr.shape[1:] != (skel.num_joints, 3):
        raise BvhExportError(f"joints must have shape (T, {skel.num_joints}, 3) (frames, joints, xyz in metres) "
                             f"for the {skel.name} skeleton, got {tuple(arr.shape)}; pass joint positions "
                             f"or use export_bvh for HumanML3D features (T, {skel.feature_dim})")
    if arr.shape[0] < 1:
        raise BvhExportError("the motion has no frames (T = 0); pass at least one frame")
    bad = ~np.isfinite(arr)
    if bad.any():
        frame, joint, _ = np.argwhere(bad)[0]
        raise BvhExportError(f"joints contain {int(bad.sum())} NaN/inf values (first at frame {frame}, joint "
                             f"{skel.joint_names[joint]}); clean or interpolate the motion before exporting")
    return arr


def motion_to_joints(motion: Any, skeleton: str | Skeleton = HUMANML3D) -> np.ndarray:
    """Joint positions of a motion given as joints or as HumanML3D features.

    Args:
        motion: (T, J, 3) joint positions in metres, or (T, D) de-normalised HumanML3D features
            (D = 263 for the 22-joint skeleton), at the skeleton's frame rate (20 fps).
        skeleton: the skeleton (default HumanML3D, 22 joints).

    Returns:
        (T, J, 3) float64 joint positions in metres (features: ``joints_from_features``, docs/design.md §2.1).

    Raises:
        BvhExportError: a shape that is neither, no frames, or NaN/inf values.
    """
    skel = get_skeleton(skeleton)
    try:
        arr = np.asarray(motion, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise BvhExportError(f"the motion must be a numeric array ({exc})") from None
    if arr.ndim == 2 and arr.shape[1] == skel.feature_dim:
        if arr.shape[0] < 1:
            raise BvhExportError("the motion has no frames (T = 0); pass at least one frame")
        bad = ~np.isfinite(arr)
        if bad.any():
            raise BvhExportError(f"features contain {int(bad.sum())} NaN/inf values (first at frame "
                                 f"{np.argwhere(bad)[0][0]}); clean the motion before exporting")
        from ..data.features import joints_from_features

        return np.asarray(joints_from_features(arr, skel), dtype=np.float64)
    if arr.ndim == 3:
        return _check_joints(arr, skel)
    raise BvhExportError(f"expected joints (T, {skel.num_joints}, 3) in metres or {skel.name} features "
                         f"(T, {skel.feature_dim}), got an array of shape {tuple(arr.shape)}")


# ---------------------------------------------------------------------------------------------
# rest pose and inverse kinematics
# ---------------------------------------------------------------------------------------------
_TPOSE_OVERRIDES = {"humanml3d": {15: (0.0, 1.0, 0.0)}}  # the SMPL head joint sits above the neck


def rest_directions(skeleton: str | Skeleton = HUMANML3D) -> np.ndarray:
    """Unit rest (T-pose) direction of each joint's offset from its parent.

    The skeleton's ``raw_offsets`` (docs/design.md §2.1), except that every joint of a chain that branches off
    a non-root joint (the arms) after the collar takes the collar's lateral direction (arms along
    +-X instead of hanging down), and for HumanML3D the head points up (+Y) instead of forward.

    Args:
        skeleton: ``"humanml3d"`` (default) or ``"kit"``, or a :class:`Skeleton`.

    Returns:
        (J, 3) float64; row 0 (the root) is zero.
    """
    skel = get_skeleton(skeleton)
    dirs = np.array(skel.raw_offsets, dtype=np.float64, copy=True)
    for chain in skel.kinematic_chain:
        if chain[0] != 0 and len(chain) > 2:
            dirs[list(chain[2:])] = dirs[chain[1]]
    for joint, direction in _TPOSE_OVERRIDES.get(skel.name, {}).items():
        dirs[joint] = direction
    dirs[0] = 0.0
    return dirs


def _kabsch(rest: np.ndarray, observed: np.ndarray) -> np.ndarray:
    """Rotations (T, 3, 3) minimising sum_k |R rest[k] - observed[t, k]|^2 (rest (K, 3), observed (T, K, 3))."""
    cov = np.einsum("kc,tkd->tdc", rest, observed)  # sum_k observed_k rest_k^T
    u, _, vt = np.linalg.svd(cov)
    det = np.sign(np.linalg.det(u @ vt))
    det[det == 0] = 1.0
    fix = np.ones(u.shape[:-2] + (3,))
    fix[..., 2] = det
    return (u * fix[..., None, :]) @ vt


def _swing(rest_dir: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Shortest-arc rotations (T, 3, 3) taking the direction ``rest_dir`` (3,) onto ``target`` (T, 3).

    A zero-length target gives the identity; an opposite target a half turn about an axis
    perpendicular to ``rest_dir``.
    """
    a = rest_dir / np.linalg.norm(rest_dir)
    norm = np.linalg.norm(target, axis=-1)
    b = target / np.where(norm > 1e-12, norm, 1.0)[:, None]
    cross = np.cross(a, b)
    sin = np.linalg.norm(cross, axis=-1)
    cos = b @ a
    angle = np.arctan2(sin, cos)
    axis = cross / np.where(sin > 1e-12, sin, 1.0)[:, None]
    opposite = (sin <= 1e-12) & (cos < 0)
    if opposite.any():
        helper = np.eye(3)[int(np.argmin(np.abs(a)))]
        perp = np.cross(a, helper)
        axis[opposite] = perp / np.linalg.norm(perp)
        angle[opposite] = np.pi
    angle[norm <= 1e-12] = 0.0
    return Rotation.from_rotvec(axis * angle[:, None]).as_matrix()


def _children(skel: Skeleton) -> list[list[int]]:
    kids: list[list[int]] = [[] for _ in range(skel.num_joints)]
    for j, p in enumerate(skel.parents):
        if p >= 0:
            kids[p].append(j)
    return kids


def _dfs_order(kids: list[list[int]], root: int = 0) -> list[int]:
    order, stack = [], [root]
    while stack:
        j = stack.pop()
        order.append(j)
        stack.extend(reversed(kids[j]))
    return order


@dataclass(frozen=True)
class BvhExport:
    """A motion solved onto a BVH skeleton, ready to be written (see :func:`solve_bvh`).

    Attributes:
        names: (J,) joint names (the skeleton's, e.g. ``pelvis``, ``left_hip``, ...).
        parents: (J,) parent index, -1 for the root (skeleton index order).
        offsets: (J, 3) rest offsets in BVH units (metres x ``scale``); the root's is zero.
        end_sites: ``{leaf joint index: (3,) End Site offset}`` in BVH units.
        order: Euler order of the rotation channels (e.g. ``"ZXY"``), intrinsic.
        translations: (T, J, 3) per-frame local translations in BVH units (row 0: the root's world
            position); written only for the joints flagged in ``position_channels``.
        position_channels: (J,) bool, the joints written with ``Xposition Yposition Zposition``
            channels (always the root).
        angles: (T, J, 3) local rotations, Euler angles in degrees in ``order``, unwrapped over time.
        fps: frames per second (``Frame Time = 1 / fps``).
        scale: BVH units per metre (100 = centimetres).
        error_m: (T, J) distance in metres between the forward kinematics of this BVH and the input
            joints.
    """

    names: tuple[str, ...]
    parents: np.ndarray
    offsets: np.ndarray
    end_sites: dict[int, np.ndarray]
    order: str
    translations: np.ndarray
    position_channels: np.ndarray
    angles: np.ndarray
    fps: float
    scale: float
    error_m: np.ndarray

    @property
    def num_frames(self) -> int:
        """Number of frames T."""
        return int(self.angles.shape[0])

    @property
    def max_error_m(self) -> float:
        """Largest joint distance (metres) between the file's forward kinematics and the input."""
        return float(self.error_m.max())

    @property
    def mean_error_m(self) -> float:
        """Mean joint distance (metres) between the file's forward kinematics and the input."""
        return float(self.error_m.mean())

    def to_text(self) -> str:
        """The BVH file's text: HIERARCHY (joints in depth-first order) and MOTION (one line per frame)."""
        kids = [[] for _ in self.names]
        for j, p in enumerate(self.parents):
            if p >= 0:
                kids[int(p)].append(j)
        rot_channels = " ".join(f"{axis}rotation" for axis in self.order)
        pos_channels = "Xposition Yposition Zposition"
        lines = ["HIERARCHY"]
        columns: list[np.ndarray] = []

        def emit(j: int, depth: int) -> None:
            pad = "\t" * depth
            keyword = "ROOT" if self.parents[j] < 0 else "JOINT"
            lines.append(f"{pad}{keyword} {self.names[j]}")
            lines.append(f"{pad}{{")
            lines.append(f"{pad}\tOFFSET {_fmt(self.offsets[j])}")
            if self.position_channels[j]:
                lines.append(f"{pad}\tCHANNELS 6 {pos_channels} {rot_channels}")
                columns.append(self.translations[:, j])
            else:
                lines.append(f"{pad}\tCHANNELS 3 {rot_channels}")
            columns.append(self.angles[:, j])
            for child in kids[j]:
                emit(child, depth + 1)
            if j in self.end_sites:
                lines.append(f"{pad}\tEnd Site")
                lines.append(f"{pad}\t{{")
                lines.append(f"{pad}\t\tOFFSET {_fmt(self.end_sites[j])}")
                lines.append(f"{pad}\t}}")
            lines.append(f"{pad}}}")

        emit(int(np.flatnonzero(self.parents < 0)[0]), 0)
        lines += ["MOTION", f"Frames: {self.num_frames}", f"Frame Time: {1.0 / self.fps:.9g}"]
        buffer = io.StringIO()
        buffer.write("\n".join(lines) + "\n")
        np.savetxt(buffer, np.concatenate(columns, axis=1), fmt="%.6f", delimiter=" ")
        return buffer.getvalue()


def _fmt(values: np.ndarray) -> str:
    return " ".join(f"{v:.6f}" for v in np.asarray(values, dtype=np.float64))


def solve_bvh(joints: Any, *, fps: float = 20.0, skeleton: str | Skeleton = HUMANML3D, scale: float = 100.0,
              order: str = "ZXY", positions: str = "auto",
              rest: np.ndarray | None = None) -> BvhExport:
    """Inverse kinematics of joint positions onto a BVH skeleton (rest pose, local Euler rotations).

    See the module docstring for the method (T-pose rest with mean bone lengths, swing rotations for
    single-child joints, Kabsch fits for joints with several children).

    Args:
        joints: (T, J, 3) joint positions in metres, Y up, in the skeleton's joint order (HumanML3D:
            22 joints), T >= 1, one row per frame (20 fps for HumanML3D).
        fps: frame rate written to the file (``Frame Time = 1 / fps``).
        skeleton: the skeleton (default HumanML3D, 22 joints; source: docs/design.md §2.1).
        scale: BVH units per metre (100 = centimetres, the default; 1 = metres).
        order: Euler order of every joint's rotation channels, a permutation of ``"XYZ"``.
        positions: which joints get position channels besides rotations: ``"auto"`` (default:
            the root and every joint whose offset in its parent's frame moves by more than 1 mm,
            i.e. non-rigid groups and varying bone lengths), ``"root"`` (the root only: classic
            rotation-only BVH, approximate for non-rigid motions) or ``"all"`` (every joint).
        rest: optional (J, 3) rest directions replacing :func:`rest_directions`.

    Returns:
        :class:`BvhExport`, with ``error_m`` the per-frame, per-joint FK error in metres.

    Raises:
        BvhExportError: wrong shape, no frames, NaN/inf, a bone of zero length in every frame, or a
            bad ``fps`` / ``scale`` / ``order`` / ``positions`` / ``rest``.
    """
    skel = get_skeleton(skeleton)
    fps, scale, order = _check_options(fps, scale, order, positions)
    pos = _check_joints(joints, skel)
    num_frames, num_joints = pos.shape[:2]
    parents = skel.parents
    kids = _children(skel)
    dirs = rest_directions(skel) if rest is None else np.array(rest, dtype=np.float64, copy=True)
    if dirs.shape != (num_joints, 3) or not np.isfinite(dirs).all():
        raise BvhExportError(f"rest directions must be a finite ({num_joints}, 3) array, got shape {dirs.shape}")

    # Rest offsets: rest direction x mean bone length (metres).
    bones = pos[:, 1:] - pos[:, parents[1:]]
    lengths = np.zeros(num_joints)
    lengths[1:] = np.linalg.norm(bones, axis=-1).mean(axis=0)
    for j in range(1, num_joints):
        if lengths[j] < 1e-6:
            raise BvhExportError(f"bone {skel.joint_names[parents[j]]} -> {skel.joint_names[j]} has zero length in "
                                 f"every frame; the joints are not in {skel.name} order (or all at one point)")
        norm = np.linalg.norm(dirs[j])
        if norm < 1e-9:
            raise BvhExportError(f"rest direction of joint {skel.joint_names[j]} is zero; give a unit vector")
        dirs[j] = dirs[j] / norm
    offsets = dirs * lengths[:, None]
    # Children of a joint with several children: the motion's own mean geometry of the group,
    # oriented (Kabsch) to best match the T-pose directions, so that a rigid group fits exactly.
    for j in range(num_joints):
        if len(kids[j]) >= 2:
            observed = pos[:, kids[j]] - pos[:, j:j + 1]  # (T, K, 3)
            frame = _kabsch(offsets[kids[j]], observed)  # frame @ rest ~ observed
            local = np.einsum("tba,tkb->tka", frame, observed).mean(axis=0)  # frame^T @ observed
            local_norm = np.linalg.norm(local, axis=-1, keepdims=True)
            offsets[kids[j]] = local / np.maximum(local_norm, 1e-12) * lengths[kids[j], None]

    # Per-frame rotations: world (W) and local (L) matrices.
    world = np.empty((num_frames, num_joints, 3, 3))
    local_m = np.empty_like(world)
    eye = np.broadcast_to(np.eye(3), (num_frames, 3, 3))
    for j in range(num_joints):  # parents precede children in skeleton index order
        parent_world = eye if parents[j] < 0 else world[:, parents[j]]
        if len(kids[j]) == 0:
            local = np.array(eye)
        elif len(kids[j]) == 1:
            c = kids[j][0]
            target = np.einsum("tba,tb->ta", parent_world, pos[:, c] - pos[:, j])  # parent frame
            local = _swing(offsets[c], target)
        else:
            w = _kabsch(offsets[kids[j]], pos[:, kids[j]] - pos[:, j:j + 1])
            local = np.einsum("tba,tbc->tac", parent_world, w)
        local_m[:, j] = local
        world[:, j] = parent_world @ local

    # Euler angles (degrees), unwrapped per channel; scipy warns at gimbal lock but the angles it
    # returns still describe the same rotation exactly.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        angles = Rotation.from_matrix(local_m.reshape(-1, 3, 3)).as_euler(order, degrees=True)
    angles = np.unwrap(angles.reshape(num_frames, num_joints, 3), period=360.0, axis=0)

    # Local translations in the parent's frame; where one moves (non-rigid groups, varying bone
    # lengths) by more than the tolerance, "auto" gives that joint position channels.
    local_t = np.empty((num_frames, num_joints, 3))
    local_t[:, 0] = pos[:, 0]
    for j in range(1, num_joints):
        local_t[:, j] = np.einsum("tba,tb->ta", world[:, parents[j]], pos[:, j] - pos[:, parents[j]])
    moving = np.linalg.norm(local_t - offsets, axis=-1).max(axis=0) > _AUTO_TOLERANCE_M
    channels = np.full(num_joints, positions == "all") | (moving & (positions == "auto"))
    channels[0] = True
    local_t[:, ~channels] = offsets[~channels]

    # Forward kinematics of what is written (rotations from the Euler angles) against the input.
    from ..data.mocap.bvh import forward_kinematics

    written = Rotation.from_euler(order, angles.reshape(-1, 3), degrees=True).as_matrix()
    fk = forward_kinematics(parents, written.reshape(num_frames, num_joints, 3, 3), local_t)
    error = np.linalg.norm(fk - pos, axis=-1)

    end_sites = {j: dirs[j] * lengths[j] * 0.5 * scale for j in range(1, num_joints) if not kids[j]}
    offsets_out = offsets * scale
    offsets_out[0] = 0.0
    return BvhExport(names=tuple(skel.joint_names), parents=np.asarray(parents), offsets=offsets_out,
                     end_sites=end_sites, order=order, translations=local_t * scale, position_channels=channels,
                     angles=angles, fps=fps, scale=scale, error_m=error)


def write_bvh(path: str | os.PathLike, joints: Any, *, fps: float = 20.0, skeleton: str | Skeleton = HUMANML3D,
              scale: float = 100.0, order: str = "ZXY", positions: str = "auto") -> BvhExport:
    """Write joint positions as a BVH file on the 22-joint HumanML3D skeleton (issue 7, item 3).

    Args:
        path: output file (conventionally ``.bvh``); its folder is created; written atomically.
        joints: (T, 22, 3) joint positions in metres, Y up, HumanML3D joint order, T >= 1 frames.
        fps: frames per second (20 for HumanML3D).
        skeleton: the skeleton (default HumanML3D).
        scale: BVH units per metre: 100 (default) writes centimetres, 1 writes metres.
        order: Euler order of the rotation channels (default ``"ZXY"``).
        positions: ``"auto"`` (default), ``"root"`` or ``"all"`` (see :func:`solve_bvh`).

    Returns:
        The :class:`BvhExport` written (``max_error_m``: FK error of the file against ``joints``).

    Raises:
        BvhExportError: bad input (see :func:`solve_bvh`); nothing is written then.
        OSError: the file cannot be written (no partial file is left).
    """
    solved = solve_bvh(joints, fps=fps, skeleton=skeleton, scale=scale, order=order, positions=positions)
    text = solved.to_text()
    from ..data.storage import atomic_path

    with atomic_path(Path(path)) as tmp:
        tmp.write_text(text, encoding="ascii")
    return solved


def export_bvh(path: str | os.PathLike, motion: Any, *, fps: float = 20.0, skeleton: str | Skeleton = HUMANML3D,
               scale: float = 100.0, order: str = "ZXY", positions: str = "auto") -> BvhExport:
    """Write a motion given as joints (T, 22, 3) metres or HumanML3D features (T, 263) as BVH.

    Features are turned into joints with ``joints_from_features`` (docs/design.md §2.1), then :func:`write_bvh`.

    Raises:
        BvhExportError: a shape that is neither, no frames, NaN/inf, or bad options; no file is written.
        OSError: the file cannot be written.
    """
    _check_options(fps, scale, order, positions)
    joints = motion_to_joints(motion, skeleton)
    return write_bvh(path, joints, fps=fps, skeleton=skeleton, scale=scale, order=order, positions=positions)
