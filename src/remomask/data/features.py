"""HumanML3D motion features: joints (T, J, 3) <-> the 263-d (KIT: 251-d) feature vector.

Implements the HumanML3D ``motion_representation`` processing and ``recover_from_ric`` (docs/design.md §2.1),
vectorised over frames (numpy quaternions; see the note above ``_qmul``).

Per-frame layout for J joints (J = 22 -> 263 dims, J = 21 -> 251 dims), see :class:`FeatureLayout`:

=========================  ============  =====================================================
slice                      size          content
=========================  ============  =====================================================
``root``                   4             root angular velocity about Y (rad/frame, half-angle
                                         convention of the reference), root XZ velocity in the
                                         root frame (m/frame), root height (m)
``ric``                    (J-1)*3       joint positions relative to the root XZ, facing +Z
``cont6d``                 (J-1)*6       joint rotations from IK, first two matrix columns
``local_velocity``         J*3           joint velocities in the root frame (m/frame)
``foot_contact``           4             [L_ankle, L_foot, R_ankle, R_foot] contacts in {0, 1}
=========================  ============  =====================================================
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from scipy.ndimage import gaussian_filter1d

from .skeleton import HUMANML3D, Skeleton, get_skeleton

__all__ = [
    "FeatureLayout",
    "feature_layout",
    "features_from_joints",
    "joints_from_features",
    "retarget_to_skeleton",
    "reference_offsets",
    "mirror_joints",
    "skeleton_offsets",
]

_UP = np.array([0.0, 1.0, 0.0])
_FORWARD = np.array([0.0, 0.0, 1.0])


@dataclass(frozen=True)
class FeatureLayout:
    """Index slices of the HumanML3D feature vector for a skeleton of ``num_joints`` joints (docs/design.md §2.1)."""

    num_joints: int

    @property
    def dim(self) -> int:
        """Total feature size: 263 for 22 joints, 251 for 21."""
        return 4 + (self.num_joints - 1) * 9 + self.num_joints * 3 + 4

    @property
    def root(self) -> slice:
        """Root angular velocity, XZ velocity and height: dims 0:4."""
        return slice(0, 4)

    @property
    def ric(self) -> slice:
        """Root-relative joint positions of joints 1..J-1 (dims 4:67 for HumanML3D)."""
        return slice(4, 4 + (self.num_joints - 1) * 3)

    @property
    def cont6d(self) -> slice:
        """Continuous-6D rotations of joints 1..J-1 (dims 67:193 for HumanML3D)."""
        start = self.ric.stop
        return slice(start, start + (self.num_joints - 1) * 6)

    @property
    def local_velocity(self) -> slice:
        """Root-frame velocities of all joints (dims 193:259 for HumanML3D)."""
        start = self.cont6d.stop
        return slice(start, start + self.num_joints * 3)

    @property
    def foot_contact(self) -> slice:
        """Foot contacts [L_ankle, L_foot, R_ankle, R_foot] (dims 259:263 for HumanML3D)."""
        start = self.local_velocity.stop
        return slice(start, start + 4)


def feature_layout(skeleton: str | Skeleton = "humanml3d") -> FeatureLayout:
    """Return the :class:`FeatureLayout` of a skeleton name or object."""
    return FeatureLayout(get_skeleton(skeleton).num_joints)


# --------------------------------------------------------------------------------------------
# Vector and quaternion helpers in component-first layout: a vector array is (3, ...) and a
# quaternion array (4, ...) scalar-first (w, x, y, z), so each component is contiguous.
# scipy.spatial.transform.Rotation was the first choice, but its composition measured ~1.7 us per
# rotation here (scipy 1.17), capping extraction near 4k frames/s, and numpy's reductions over a
# trailing axis of size 3 are ~20x slower than component arithmetic. These formulas are what the
# 100k frames/s target needs (benchmarks/bench_features.py).
# --------------------------------------------------------------------------------------------


def _dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Dot product of vector arrays (3, ...) -> (...)."""
    return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]


def _cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cross product of vector arrays (3, ...) -> (3, ...)."""
    return np.stack([a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]])


def _unit(v: np.ndarray) -> np.ndarray:
    """Normalise vector arrays (3, ...) to unit length (zero vectors stay finite)."""
    return v / np.sqrt(_dot(v, v)).clip(1e-12)


def _qmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton product a*b of quaternion arrays (4, ...)."""
    aw, ax, ay, az = a
    bw, bx, by, bz = b
    return np.stack([aw * bw - ax * bx - ay * by - az * bz,
                     aw * bx + ax * bw + ay * bz - az * by,
                     aw * by - ax * bz + ay * bw + az * bx,
                     aw * bz + ax * by - ay * bx + az * bw])


def _qinv(q: np.ndarray) -> np.ndarray:
    """Inverse of unit quaternion arrays (4, ...)."""
    return np.concatenate([q[:1], -q[1:]])


def _yaw_rotate(q: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Rotate vector arrays v (3, ...) by pure-yaw quaternions q (4, ...) = (w, 0, y, 0) (broadcasting).

    The facing rotations are shortest arcs between horizontal vectors, so they turn about Y only;
    this 2D rotation gives the same result as :func:`_qrot` with a quarter of the arithmetic.
    """
    w, y = q[0], q[2]
    cos, sin = w * w - y * y, 2.0 * w * y
    return np.stack([cos * v[0] + sin * v[2], np.broadcast_to(v[1], np.broadcast_shapes(cos.shape, v[1].shape)),
                     cos * v[2] - sin * v[0]])


def _qbetween(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Shortest-arc unit quaternions (4, ...) taking directions u to v (3, ...) (HumanML3D qbetween)."""
    axis = _cross(u, v)
    w = np.sqrt(_dot(u, u) * _dot(v, v)) + _dot(u, v)
    q = np.concatenate([w[None], axis])
    norm = np.sqrt(w * w + _dot(axis, axis))
    degenerate = norm < 1e-12  # opposite vectors: 180 degrees about Y
    if degenerate.any():
        q[:, degenerate] = np.array([0.0, 0.0, 1.0, 0.0])[:, None]
        norm = np.where(degenerate, 1.0, norm)
    return q / norm


def _qmatrix_columns(q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """First two columns (3, ...) each of the rotation matrices of unit quaternion arrays (4, ...)."""
    w, x, y, z = q
    col0 = np.stack([1 - 2 * (y * y + z * z), 2 * (x * y + w * z), 2 * (x * z - w * y)])
    col1 = np.stack([2 * (x * y - w * z), 1 - 2 * (x * x + z * z), 2 * (y * z + w * x)])
    return col0, col1


def _facing_rotation(pos: np.ndarray, face_joints: tuple[int, int, int, int],
                     sigma: float | None) -> np.ndarray:
    """Per-frame yaw quaternions (4, T) that turn the body's forward direction to +Z.

    ``pos`` is (3, T, J). The across vector is (pos[a] - pos[b]) + (pos[c] - pos[d]) for
    ``face_joints = (a, b, c, d)``; forward = up x across, optionally Gaussian-smoothed over time
    (``smooth_forward``, sigma 20 in HumanML3D). Source: docs/design.md §2.1 (face_joint_indx).
    """
    a, b, c, d = face_joints
    across = _unit((pos[:, :, a] - pos[:, :, b]) + (pos[:, :, c] - pos[:, :, d]))
    up = np.zeros_like(across)
    up[1] = 1.0
    forward = _cross(up, across)
    if sigma:
        forward = gaussian_filter1d(forward, sigma, axis=1, mode="nearest")
    forward = _unit(forward)
    target = np.zeros_like(forward)
    target[2] = 1.0
    return _qbetween(forward, target)


@lru_cache(maxsize=None)
def _bone_parents(skeleton: Skeleton) -> tuple[np.ndarray, np.ndarray]:
    """Joints 1..J-1 and, for each, the joint whose bone rotation is its IK parent frame.

    In HumanML3D's IK every chain restarts from the root rotation, so the first bone of each chain
    (including the arm chains branching at spine3) is expressed relative to the root; returns -1 for
    those, else the parent joint (whose bone's global rotation is the parent frame).
    """
    children, frames = [], []
    for chain in skeleton.kinematic_chain:
        for k, (parent, child) in enumerate(zip(chain[:-1], chain[1:])):
            children.append(child)
            frames.append(-1 if k == 0 else parent)
    order = np.argsort(children)
    return np.asarray(children)[order], np.asarray(frames)[order]


def _inverse_kinematics(pos: np.ndarray, skeleton: Skeleton, smooth_sigma: float | None
                        ) -> np.ndarray:
    """HumanML3D inverse kinematics: per-joint local rotations from joint positions.

    Each bone's global rotation is the shortest arc from its raw rest direction to its current
    direction; its local rotation is that relative to the previous bone of its chain, or to the root
    (facing) rotation for the first bone of a chain, as in the reference. Vectorised over frames
    and bones.

    Args:
        pos: (3, T, J) positions (component-first).
    Returns:
        (4, T, J) quaternions: slot 0 is the root (facing) rotation with frame 0 set to identity, as
        in the reference; slot j the local rotation of the bone ending at joint j.
    Source: docs/design.md §2.1 ("IK is done with smooth_forward=True").
    """
    # Reference quirk, replicated so that features match the HumanML3D/KIT releases: inside IK the
    # facing direction is built from (l_hip - r_hip) + (r_shoulder - l_shoulder), i.e. the hip term
    # is reversed relative to the initial-facing step. Verified on fixture 012314: with this order
    # the root yaw of the released features is reproduced to 1e-5 rad away from the clip's end; with
    # the symmetric order it is off by up to 0.6 rad.
    r_hip, l_hip, r_sdr, l_sdr = skeleton.face_joints
    root = _facing_rotation(pos, (l_hip, r_hip, r_sdr, l_sdr), smooth_sigma)
    root[:, 0] = [1.0, 0.0, 0.0, 0.0]
    children, frames = _bone_parents(skeleton)
    bones = _unit(pos[:, :, children] - pos[:, :, skeleton.parents[children]])
    rest = np.ascontiguousarray(np.broadcast_to(skeleton.raw_offsets[children].T[:, None, :], bones.shape))
    global_rot = np.empty((4,) + pos.shape[1:])
    global_rot[:, :, 0] = root
    global_rot[:, :, children] = _qbetween(rest, bones)
    parent_frame = global_rot[:, :, np.where(frames < 0, 0, frames)]
    quats = np.empty_like(global_rot)
    quats[:, :, 0] = root
    quats[:, :, children] = _qmul(_qinv(parent_frame), global_rot[:, :, children])
    return quats


@lru_cache(maxsize=None)
def _tree_depth(skeleton: Skeleton) -> np.ndarray:
    """(J,) depth of each joint below the root."""
    parents = skeleton.parents
    depth = np.zeros(skeleton.num_joints, dtype=np.int64)
    for j in range(skeleton.num_joints):
        k = j
        while parents[k] >= 0:
            depth[j] += 1
            k = parents[k]
    return depth


def skeleton_offsets(joints_frame: np.ndarray, skeleton: str | Skeleton = "humanml3d") -> np.ndarray:
    """Bone offsets (J, 3): each joint's raw unit direction scaled by its bone length in one frame.

    Args:
        joints_frame: (J, 3) joint positions of one frame (metres).
    Source: HumanML3D ``get_offsets_joints`` (docs/design.md §2.1).
    """
    skel = get_skeleton(skeleton)
    parents = skel.parents
    lengths = np.zeros(skel.num_joints)
    lengths[1:] = np.linalg.norm(joints_frame[1:] - joints_frame[parents[1:]], axis=-1)
    return skel.raw_offsets * lengths[:, None]


_REFERENCE_CACHE: dict[str, np.ndarray] = {}


def reference_offsets(path: str | Path | None = None) -> np.ndarray:
    """Bone offsets (22, 3) of HumanML3D's reference skeleton (clip 000021, frame 0), in metres.

    With no ``path``, the copy bundled with remomask (``assets/skeleton_example_000021.npy``) is used.
    Source: docs/design.md §2.1 ("Target skeleton example '000021'").

    Raises:
        FileNotFoundError: if ``path`` does not exist.
    """
    if path is None:
        path = Path(__file__).resolve().parent.parent / "assets" / "skeleton_example_000021.npy"
    key = str(path)
    if key not in _REFERENCE_CACHE:
        example = np.load(path).reshape(-1, 3)[:22].astype(np.float64)
        _REFERENCE_CACHE[key] = skeleton_offsets(example, HUMANML3D)
    return _REFERENCE_CACHE[key].copy()


def retarget_to_skeleton(joints: np.ndarray, target_offsets: np.ndarray,
                         skeleton: str | Skeleton = "humanml3d") -> np.ndarray:
    """Uniform-skeleton retargeting: keep each bone's direction, impose the target bone lengths.

    The root trajectory is scaled by the ratio of leg lengths (target / source; joints ``leg_indices``).
    Equivalent to the reference ``uniform_skeleton`` (IK, then FK with the target offsets).

    Args:
        joints: (T, J, 3) positions (metres).
        target_offsets: (J, 3) offsets of the target skeleton (see :func:`reference_offsets`).
    Returns:
        (T, J, 3) float64 retargeted positions.
    Source: docs/design.md §2.1, processing step 1.
    """
    skel = get_skeleton(skeleton)
    src_offsets = skeleton_offsets(joints[0], skel)
    a, b = skel.leg_indices
    src_leg = np.abs(src_offsets[a]).max() + np.abs(src_offsets[b]).max()
    tgt_leg = np.abs(target_offsets[a]).max() + np.abs(target_offsets[b]).max()
    if src_leg <= 0:
        raise ValueError("retarget_to_skeleton: the source legs have zero length in frame 0; "
                         "check the joint order (it must be the skeleton's order)")
    # IK followed by FK with the target offsets (the reference's uniform_skeleton) reproduces every
    # bone's direction and imposes the target length; computed directly along the tree.
    pos = np.ascontiguousarray(np.moveaxis(np.asarray(joints, dtype=np.float64), -1, 0))  # (3, T, J)
    return np.moveaxis(_retarget_components(pos, target_offsets, tgt_leg / src_leg, skel), 0, -1)


def _retarget_components(pos: np.ndarray, target_offsets: np.ndarray, root_scale: float,
                         skel: Skeleton) -> np.ndarray:
    """:func:`retarget_to_skeleton` on component-first positions (3, T, J)."""
    lengths = np.linalg.norm(target_offsets, axis=-1)
    parents = skel.parents
    children = np.arange(1, skel.num_joints)
    bones = _unit(pos[:, :, children] - pos[:, :, parents[children]]) * lengths[children]
    out = np.empty_like(pos)
    out[:, :, 0] = pos[:, :, 0] * root_scale
    for child in np.argsort(_tree_depth(skel), kind="stable")[1:]:  # parents before children
        out[:, :, child] = out[:, :, parents[child]] + bones[:, :, child - 1]
    return out


def mirror_joints(joints: np.ndarray, skeleton: str | Skeleton = "humanml3d") -> np.ndarray:
    """Mirror a motion left-right: negate X and swap the left/right joints.

    Args:
        joints: (..., J, 3) positions.
    Returns:
        array of the same shape. Source: docs/design.md §2.2 (HumanML3D mirroring, ``M`` ids).
    """
    skel = get_skeleton(skeleton)
    out = np.array(joints, copy=True)[..., skel.mirror_permutation, :]
    out[..., 0] *= -1.0
    return out


def _check_joints(joints: Any, skel: Skeleton) -> np.ndarray:
    arr = np.asarray(joints, dtype=np.float64)
    if arr.ndim != 3 or arr.shape[1:] != (skel.num_joints, 3):
        raise ValueError(f"expected joints of shape (T, {skel.num_joints}, 3) for the {skel.name} "
                         f"skeleton, got {tuple(arr.shape)}")
    if arr.shape[0] < 2:
        raise ValueError(f"need at least 2 frames to compute velocities, got {arr.shape[0]}")
    if not np.isfinite(arr).all():
        raise ValueError("joints contain NaN or inf; clean the clip before extracting features")
    return arr


def features_from_joints(joints: np.ndarray, skeleton: str | Skeleton = "humanml3d", *,
                         retarget: bool = True, target_offsets: np.ndarray | None = None,
                         contact_threshold: float | None = None,
                         smooth_sigma: float = 20.0) -> np.ndarray:
    """HumanML3D features from joint positions.

    Steps (docs/design.md §2.1 "Processing"): uniform-skeleton retargeting to the reference skeleton, put on the
    floor, move the first root to the XZ origin, rotate so the first frame faces +Z, then build root
    velocity/height, ``ric``, ``cont6d`` (IK with smoothed facing), local velocities and foot contacts.

    Args:
        joints: (T, J, 3) joint positions in metres, Y up, J = 22 (HumanML3D) or 21 (KIT), at the
            dataset's frame rate (20 fps for HumanML3D).
        skeleton: ``"humanml3d"`` or ``"kit"``.
        retarget: retarget to ``target_offsets`` first. Defaults to the bundled HumanML3D reference
            skeleton for ``humanml3d``; KIT has no bundled reference, so pass ``target_offsets`` or
            ``retarget=False``.
        contact_threshold: squared per-frame displacement below which a foot is in contact
            (default: the skeleton's, 0.002 m^2 for HumanML3D).
        smooth_sigma: Gaussian sigma (frames) of the facing direction used for root rotations.
    Returns:
        (T-1, D) float32 features, D = 263 (22 joints) or 251 (21 joints).
    Raises:
        ValueError: wrong shape, fewer than 2 frames, non-finite values, or KIT retargeting without
            target offsets.
    """
    skel = get_skeleton(skeleton)
    positions = _check_joints(joints, skel)
    pos = np.ascontiguousarray(np.moveaxis(positions, -1, 0))  # (3, T, J) component-first
    if retarget:
        if target_offsets is None:
            if skel is not HUMANML3D:
                raise ValueError("KIT has no bundled reference skeleton: pass target_offsets=... "
                                 "or retarget=False")
            target_offsets = reference_offsets()
        src_offsets = skeleton_offsets(positions[0], skel)
        a, b = skel.leg_indices
        src_leg = np.abs(src_offsets[a]).max() + np.abs(src_offsets[b]).max()
        tgt_leg = np.abs(target_offsets[a]).max() + np.abs(target_offsets[b]).max()
        if src_leg <= 0:
            raise ValueError("the legs have zero length in frame 0; check the joint order")
        pos = _retarget_components(pos, target_offsets, tgt_leg / src_leg, skel)
    threshold = skel.contact_threshold if contact_threshold is None else contact_threshold

    # Floor, origin and initial facing (docs/design.md §2.1 steps 2-4).
    pos[1] -= pos[1].min()
    pos[0] -= pos[0, 0, 0]
    pos[2] -= pos[2, 0, 0]
    init = _facing_rotation(pos[:, :1], skel.face_joints, sigma=None)  # (4, 1)
    pos = _yaw_rotate(init[:, :, None], pos)
    t, j = pos.shape[1:]

    # Foot contacts: squared displacement per frame under the threshold (height factor unused).
    def contacts(idx: tuple[int, int]) -> np.ndarray:
        step = pos[:, 1:, list(idx)] - pos[:, :-1, list(idx)]
        return (_dot(step, step) < threshold).astype(np.float32)

    feet_l, feet_r = contacts(skel.feet_left), contacts(skel.feet_right)

    # IK with the smoothed facing; the root rotation defines the character frame.
    quats = _inverse_kinematics(pos, skel, smooth_sigma=smooth_sigma)
    root = quats[:, :, 0]  # (4, T)
    col0, col1 = _qmatrix_columns(quats[:, :, 1:])  # (3, T, J-1) each
    cont6d = np.concatenate([col0, col1]).transpose(1, 2, 0).reshape(t, -1)

    root_velocity = _yaw_rotate(root[:, 1:], pos[:, 1:, 0] - pos[:, :-1, 0])  # (3, T-1)
    relative = _qmul(root[:, 1:], _qinv(root[:, :-1]))
    # Deliberate fix of a reference quirk: when the facing yaw crosses +-180 degrees the relative
    # quaternion has w < 0 and arcsin of its y component gets the wrong sign, so the recovered
    # trajectory spins the wrong way. Taking the w >= 0 representative is identical everywhere
    # else (tested on 012314) and makes recover(extract(x)) exact.
    relative *= np.where(relative[0] < 0, -1.0, 1.0)
    angular_velocity = np.arcsin(np.clip(relative[2], -1.0, 1.0))  # y component

    # ric: subtract the root XZ per frame, then rotate into the facing frame.
    local_pos = pos.copy()
    local_pos[0] -= pos[0, :, :1]
    local_pos[2] -= pos[2, :, :1]
    ric = _yaw_rotate(root[:, :, None], local_pos)  # (3, T, J)
    local_velocity = _yaw_rotate(root[:, :-1, None], pos[:, 1:] - pos[:, :-1])  # (3, T-1, J)

    data = np.concatenate([
        angular_velocity[:, None],
        root_velocity[[0, 2]].T,
        pos[1, :-1, :1],
        ric[:, :-1, 1:].transpose(1, 2, 0).reshape(t - 1, -1),
        cont6d[:-1],
        local_velocity.transpose(1, 2, 0).reshape(t - 1, -1),
        feet_l,
        feet_r,
    ], axis=-1)
    return data.astype(np.float32)


def joints_from_features(features: Any, skeleton: str | Skeleton | None = None) -> Any:
    """Recover joint positions from HumanML3D features (``recover_from_ric``, docs/design.md §2.1).

    The root yaw is the cumulative sum of the angular velocity (half-angle convention), the root XZ
    is the cumulative sum of the de-rotated velocities, the root height is dim 3, and the ``ric``
    positions are de-rotated and moved to the root. Rotation and velocity channels are not used.

    Args:
        features: (..., T, D) numpy array or torch tensor, D = 263 or 251, de-normalised.
        skeleton: defaults to the one implied by D.
    Returns:
        (..., T, J, 3) joints in metres, the same type (and torch device/dtype) as the input.
    Raises:
        ValueError: if the last dimension is not a known feature size.
    """
    dim = features.shape[-1]
    if skeleton is None:
        if dim == HUMANML3D.feature_dim:
            skeleton = "humanml3d"
        elif dim == get_skeleton("kit").feature_dim:
            skeleton = "kit"
        else:
            raise ValueError(f"feature size {dim} is neither 263 (HumanML3D) nor 251 (KIT-ML)")
    skel = get_skeleton(skeleton)
    if dim != skel.feature_dim:
        raise ValueError(f"feature size {dim} does not match the {skel.name} skeleton "
                         f"({skel.feature_dim})")
    if isinstance(features, np.ndarray):
        xp_torch = False
        import torch  # local: keep data.features importable without paying torch at CLI start

        data = torch.from_numpy(np.asarray(features, dtype=np.float64))
    else:
        import torch

        xp_torch = True
        data = features
    j = skel.num_joints
    angle = torch.zeros_like(data[..., 0])
    angle[..., 1:] = data[..., :-1, 0]
    angle = torch.cumsum(angle, dim=-1)
    # Quaternion (cos a, 0, sin a, 0) is a yaw of 2a; its inverse rotates by -2a about Y.
    cos2, sin2 = torch.cos(2 * angle), torch.sin(2 * angle)

    def unrotate(x: Any, z: Any, c: Any, s: Any) -> tuple[Any, Any]:
        return x * c - z * s, x * s + z * c

    step_x = torch.zeros_like(angle)
    step_z = torch.zeros_like(angle)
    step_x[..., 1:] = data[..., :-1, 1]
    step_z[..., 1:] = data[..., :-1, 2]
    step_x, step_z = unrotate(step_x, step_z, cos2, sin2)
    root_x = torch.cumsum(step_x, dim=-1)
    root_z = torch.cumsum(step_z, dim=-1)
    root_y = data[..., 3]

    ric = data[..., 4:4 + (j - 1) * 3].reshape(*data.shape[:-1], j - 1, 3)
    px, pz = unrotate(ric[..., 0], ric[..., 2], cos2[..., None], sin2[..., None])
    px = px + root_x[..., None]
    pz = pz + root_z[..., None]
    body = torch.stack([px, ric[..., 1], pz], dim=-1)
    root_pos = torch.stack([root_x, root_y, root_z], dim=-1)[..., None, :]
    joints = torch.cat([root_pos, body], dim=-2)
    if xp_torch:
        return joints
    return joints.numpy().astype(np.asarray(features).dtype, copy=False)
