"""BVH reader and the kinematic core shared by the mocap parsers.

A :class:`SkeletonMotion` holds what every mocap format reduces to: a joint tree, per-frame local
rotations and per-frame local translations. :func:`forward_kinematics` turns it into world joint
positions, looping over joints and vectorised over frames. :meth:`SkeletonMotion.resample` changes
the frame rate in rotation space, so bone lengths stay exactly those of the source (the importer
uses this for the 30 -> 20 fps Bandai-Namco conversion, docs/design.md §2.2: HumanML3D is 20 fps).

BVH semantics followed here (Biovision, as written by the Bandai-Namco and CMU exports):

* Each ``JOINT`` sits at ``OFFSET`` in its parent's frame. Position channels, where a joint has them,
  *replace* the offset for that frame (the Bandai-Namco files give all six channels on every joint;
  the non-root values equal the offsets).
* Rotation channels compose in the order they are listed, as intrinsic rotations:
  ``Zrotation Xrotation Yrotation`` gives ``R = Rz @ Rx @ Ry`` (column vectors), which is
  ``scipy.spatial.transform.Rotation.from_euler("ZXY", ...)``. Each joint's own order is respected.
* ``End Site`` blocks become joints named ``<parent>_End`` with no channels, so the end of a
  chain (e.g. the top of the head) is available to the joint mapping.

Hostile and corrupt files fail with a :class:`MocapFormatError` naming the file and line, never
with a RecursionError or NaN joints: the HIERARCHY is parsed iteratively and limited to
:data:`MAX_BVH_DEPTH` (128) nested joints and :data:`MAX_BVH_JOINTS` (2048) joints; OFFSETs and
position channels must be finite and within :data:`MAX_BVH_POSITION` (1e5 file units), rotation
channels within :data:`MAX_BVH_ANGLE` (1e5 degrees); ``Frames: 0`` is rejected. The ASF/AMC reader
applies the same value bounds.

Why this module has its own parser (decision; timings on one core of the 2-core build machine,
which other jobs shared, so they vary by up to 2x):
``bvhio`` 1.5.4 was evaluated first. Its world positions agree with :func:`forward_kinematics`
to 1e-3 cm (``tests/test_mocap.py`` checks this on a Bandai-Namco clip), but it parses the MOTION
section one frame and one joint at a time in Python with glm objects, and it reads only from a
path. On ``dataset-1_walk_normal_001.bvh`` (195 frames, 22 joints) ``readAsHierarchy`` plus posing
every frame took 0.41-0.63 s, i.e. 300-475 frames/s: 15-23 minutes for the 417k Bandai-Namco
frames, against a 5-minute budget for the whole dataset build. This reader parses HIERARCHY token
by token (a few hundred lines) and the MOTION section with numpy in one call: the same clip takes
17-19 ms to parse and pose (25-40 ms for the full ``import_mocap`` at 20 fps), and all 174
Bandai-Namco-1 clips (31,914 frames) import in 4.8-7.2 s. It also reads bytes and open files, so
the dataset builder can read straight from the tar archives. scipy's ``Rotation`` is used where its
per-call overhead does not matter; the per-frame Euler, product and slerp maths are small numpy
functions below (scipy 1.17 spends ~5 us per rotation in ``from_euler`` here), checked against
scipy in the tests.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Union

import numpy as np
from scipy.spatial.transform import Rotation
from ...errors import InputFileError

__all__ = [
    "MAX_BVH_DEPTH",
    "MAX_BVH_JOINTS",
    "MAX_BVH_POSITION",
    "MAX_BVH_ANGLE",
    "MocapFormatError",
    "SkeletonMotion",
    "BvhJoint",
    "BvhFile",
    "forward_kinematics",
    "quat_from_euler",
    "quat_multiply",
    "quat_slerp",
    "read_text",
    "parse_bvh",
    "bvh_motion",
]

Source = Union[str, os.PathLike, bytes, bytearray, IO[str], IO[bytes]]


class MocapFormatError(InputFileError):
    """A mocap file that cannot be read: the message names the file, the line and the fix."""


def read_text(source: Source, name: str | None = None) -> tuple[str, str]:
    """Return ``(text, name)`` for a path, raw bytes or an open (text or binary) file.

    Args:
        source: a path (``str`` / ``PathLike``), the file's bytes, or a file object.
        name: the name used in error messages; defaults to the path or ``<bytes>``.

    Raises:
        MocapFormatError: the bytes are not text (UTF-8 or Latin-1).
        FileNotFoundError: the path does not exist.
    """
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        name = name or str(path)
        data: bytes | str = path.read_bytes()
    elif isinstance(source, (bytes, bytearray)):
        name = name or "<bytes>"
        data = bytes(source)
    elif hasattr(source, "read"):
        name = name or str(getattr(source, "name", "<file object>"))
        data = source.read()
    else:
        raise TypeError(f"expected a path, bytes or a file object, got {type(source).__name__}")
    if isinstance(data, str):
        return data, name
    if b"\x00" in data[:4096]:
        raise MocapFormatError(f"{name}: binary data, not a text mocap file; pass a .bvh/.asf/.amc file")
    try:
        return data.decode("utf-8"), name
    except UnicodeDecodeError:
        # HDM05 AMC headers carry Latin-1 path names (e.g. "f\xfcr Bonn").
        return data.decode("latin-1"), name


@dataclass(frozen=True)
class SkeletonMotion:
    """A joint tree with per-frame local rotations and translations, in source units.

    Attributes:
        names: (J,) joint names; parents precede children.
        parents: (J,) int64 parent index, -1 for the root(s).
        rotations: (T, J, 4) float64 local rotation quaternions, scipy order (x, y, z, w):
            the rotation of each joint's frame relative to its parent's frame.
        translations: (T, J, 3) float64 position of each joint in its parent's frame, source
            units (the root's is its world position).
        fps: frames per second.
    """

    names: tuple[str, ...]
    parents: np.ndarray
    rotations: np.ndarray
    translations: np.ndarray
    fps: float

    @property
    def num_frames(self) -> int:
        """Number of frames T."""
        return int(self.rotations.shape[0])

    def index(self, name: str) -> int:
        """Index of joint ``name``; raises ``KeyError`` if absent."""
        return self.names.index(name)

    def positions(self) -> np.ndarray:
        """World joint positions by forward kinematics: (T, J, 3) float64, source units."""
        matrices = Rotation.from_quat(self.rotations.reshape(-1, 4)).as_matrix()
        matrices = matrices.reshape(self.num_frames, len(self.names), 3, 3)
        return forward_kinematics(self.parents, matrices, self.translations)

    def select_frames(self, frames: np.ndarray | slice) -> "SkeletonMotion":
        """The motion restricted to ``frames`` (indices or a slice), same fps."""
        return SkeletonMotion(self.names, self.parents, self.rotations[frames],
                              self.translations[frames], self.fps)

    def resample(self, fps: float) -> "SkeletonMotion":
        """The motion at ``fps`` frames per second, sampled at times ``k / fps`` from 0.

        The output has ``floor((T - 1) * fps / self.fps) + 1`` frames (the last sample is at or
        before the last source frame). When ``self.fps / fps`` is an integer the frames are
        subsampled; otherwise local rotations are slerped and translations interpolated
        linearly between the two neighbouring source frames, so that forward kinematics on the
        result keeps every bone length of the source (docs/design.md §2.2: HumanML3D is 20 fps).

        Raises:
            ValueError: ``fps`` is not positive.
        """
        if not fps > 0:
            raise ValueError(f"target fps must be positive, got {fps}")
        ratio = self.fps / fps
        if abs(ratio - 1.0) < 1e-9:
            return self
        count = int(np.floor((self.num_frames - 1) / ratio + 1e-6)) + 1
        step = round(ratio)
        if abs(ratio - step) < 1e-6:
            kept = slice(0, (count - 1) * step + 1, step)
            return SkeletonMotion(self.names, self.parents, self.rotations[kept],
                                  self.translations[kept], fps)
        new_t = np.minimum(np.arange(count, dtype=np.float64) * ratio, self.num_frames - 1)
        lo = np.clip(np.floor(new_t).astype(np.int64), 0, max(self.num_frames - 2, 0))
        hi = np.minimum(lo + 1, self.num_frames - 1)
        w = new_t - lo  # (count,) in [0, 1]
        rotations = quat_slerp(self.rotations[lo], self.rotations[hi], w[:, None])
        w3 = w[:, None, None]
        translations = (1.0 - w3) * self.translations[lo] + w3 * self.translations[hi]
        return SkeletonMotion(self.names, self.parents, rotations, translations, fps)


def quat_multiply(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton product ``a * b`` of (..., 4) quaternions in scipy order (x, y, z, w).

    As rotations, ``a * b`` applies ``b`` first, then ``a`` (matrix ``A @ B``).
    """
    ax, ay, az, aw = a[..., 0], a[..., 1], a[..., 2], a[..., 3]
    bx, by, bz, bw = b[..., 0], b[..., 1], b[..., 2], b[..., 3]
    out = np.empty(np.broadcast_shapes(a.shape, b.shape))
    out[..., 0] = aw * bx + ax * bw + ay * bz - az * by
    out[..., 1] = aw * by - ax * bz + ay * bw + az * bx
    out[..., 2] = aw * bz + ax * by - ay * bx + az * bw
    out[..., 3] = aw * bw - ax * bx - ay * by - az * bz
    return out


def quat_from_euler(order: str, angles: np.ndarray, degrees: bool = True) -> np.ndarray:
    """Quaternions (x, y, z, w) from Euler angles, with ``scipy.spatial.transform`` semantics.

    Upper-case ``order`` (``"ZXY"``) is intrinsic: ``R = R_Z(a0) @ R_X(a1) @ R_Y(a2)``; lower-case
    (``"xyz"``) is extrinsic: ``R = R_z(a2) @ R_y(a1) @ R_x(a0)``. Same result as
    ``Rotation.from_euler(order, angles).as_quat()`` (checked in ``tests/test_mocap.py``) but
    about 50x faster on this machine, because scipy 1.17 spends ~5 us per rotation here.

    Args:
        order: 1 to 3 distinct axis letters, all upper- or all lower-case.
        angles: (..., len(order)) angles.
        degrees: angles are in degrees (else radians).

    Returns:
        (..., 4) float64 unit quaternions.
    """
    angles = np.asarray(angles, dtype=np.float64)
    if degrees:
        angles = np.deg2rad(angles)
    half = 0.5 * angles
    result = np.zeros(angles.shape[:-1] + (4,))
    result[..., 3] = 1.0
    for k, axis in enumerate(order):
        elementary = np.zeros(angles.shape[:-1] + (4,))
        elementary[..., "xyz".index(axis.lower())] = np.sin(half[..., k])
        elementary[..., 3] = np.cos(half[..., k])
        if order.isupper():  # intrinsic: later rotations act in the rotated frame, on the right
            result = quat_multiply(result, elementary)
        else:  # extrinsic: later rotations act in the fixed frame, on the left
            result = quat_multiply(elementary, result)
    return result


def quat_slerp(q0: np.ndarray, q1: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Spherical linear interpolation between (..., 4) unit quaternions along the shorter arc.

    ``weight`` (broadcast to ``q0.shape[:-1]``) is 0 at ``q0`` and 1 at ``q1``. Returns (..., 4)
    unit quaternions. Same result as ``scipy.spatial.transform.Slerp`` (checked in the tests),
    batched over any number of joints and frames.
    """
    weight = np.asarray(weight, dtype=np.float64)[..., None]
    dot = np.sum(q0 * q1, axis=-1, keepdims=True)
    q1 = np.where(dot < 0.0, -q1, q1)  # q and -q are the same rotation: take the short way
    dot = np.clip(np.abs(dot), 0.0, 1.0)
    theta = np.arccos(dot)
    sin_theta = np.sin(theta)
    small = sin_theta < 1e-8
    safe = np.where(small, 1.0, sin_theta)
    w0 = np.where(small, 1.0 - weight, np.sin((1.0 - weight) * theta) / safe)
    w1 = np.where(small, weight, np.sin(weight * theta) / safe)
    out = w0 * q0 + w1 * q1
    return out / np.linalg.norm(out, axis=-1, keepdims=True)


def forward_kinematics(parents: np.ndarray, rotations: np.ndarray,
                       translations: np.ndarray) -> np.ndarray:
    """World joint positions from local rotation matrices and translations.

    ``world_R[j] = world_R[p] @ R[j]`` and ``world_p[j] = world_p[p] + world_R[p] @ t[j]`` with
    ``p = parents[j]``; a root (``p = -1``) takes ``R[j]`` and ``t[j]`` as its world values.

    Args:
        parents: (J,) parent indices, each smaller than its child's index, -1 for roots.
        rotations: (T, J, 3, 3) local rotation matrices.
        translations: (T, J, 3) local translations (any length unit).

    Returns:
        (T, J, 3) world positions, same unit as ``translations``.

    Raises:
        ValueError: a parent does not precede its child, or shapes disagree.
    """
    num_frames, num_joints = translations.shape[:2]
    if rotations.shape != (num_frames, num_joints, 3, 3) or len(parents) != num_joints:
        raise ValueError(f"shape mismatch: parents {len(parents)}, rotations {rotations.shape}, "
                         f"translations {translations.shape}; expected (T, J, 3, 3) and (T, J, 3)")
    world_r = np.empty_like(rotations)
    world_p = np.empty_like(translations)
    for j, p in enumerate(parents):
        if p < 0:
            world_r[:, j] = rotations[:, j]
            world_p[:, j] = translations[:, j]
            continue
        if p >= j:
            raise ValueError(f"joint {j} has parent {p}: parents must precede children")
        world_p[:, j] = world_p[:, p] + np.einsum("tab,tb->ta", world_r[:, p], translations[:, j])
        world_r[:, j] = world_r[:, p] @ rotations[:, j]
    return world_p


@dataclass(frozen=True)
class BvhJoint:
    """One BVH joint: name, parent index (-1 for ROOT), rest offset (3,), channel names."""

    name: str
    parent: int
    offset: tuple[float, float, float]
    channels: tuple[str, ...]


@dataclass(frozen=True)
class BvhFile:
    """A parsed BVH file.

    Attributes:
        name: the file name used in messages.
        joints: joints in file order (parents first); End Sites are joints ``<parent>_End``
            without channels.
        frame_time: seconds per frame (``Frame Time``).
        motion: (T, C) float64 channel values, columns in the HIERARCHY's channel order.
    """

    name: str
    joints: tuple[BvhJoint, ...]
    frame_time: float
    motion: np.ndarray

    @property
    def fps(self) -> float:
        """Frames per second, ``1 / frame_time``."""
        return 1.0 / self.frame_time

    @property
    def joint_names(self) -> tuple[str, ...]:
        """(J,) joint names, End Sites included."""
        return tuple(j.name for j in self.joints)


MAX_BVH_DEPTH = 128
"""Deepest joint nesting accepted (ROOT is depth 1). Real rigs are 5-30 deep (a CMU arm chain with
fingers is about 12); a deeper file is broken (unbalanced braces) or hostile."""
MAX_BVH_JOINTS = 2048
"""Most joints accepted, End Sites included (CMU: 38, Bandai-Namco: 27, full facial rigs: a few hundred)."""
MAX_BVH_POSITION = 1e5
"""Largest accepted |value| of an OFFSET or position channel, in file units (1 km in centimetres;
a capture volume is tens of metres): a larger one is a corrupt number, not a pose."""
MAX_BVH_ANGLE = 1e5
"""Largest accepted |value| of a rotation channel, in degrees (about 280 turns: exporters may
unwrap Euler angles past 360, but not this far); a larger one is a corrupt number."""

_CHANNELS = {"Xposition", "Yposition", "Zposition", "Xrotation", "Yrotation", "Zrotation"}
_MOTION_RE = re.compile(r"^[ \t]*MOTION[ \t]*\r?$", re.MULTILINE)


def parse_bvh(source: Source, name: str | None = None) -> BvhFile:
    """Parse a BVH file (path, bytes or file object) into a :class:`BvhFile`.

    Raises:
        MocapFormatError: malformed HIERARCHY (with the line), a frame with the wrong number of
            values or a truncated MOTION section (with the line and the declared counts).
    """
    text, name = read_text(source, name)
    match = _MOTION_RE.search(text)
    if match is None:
        raise MocapFormatError(f"{name}: no MOTION line; a BVH file has a HIERARCHY section and "
                               "then a MOTION section (the file may be truncated)")
    header_lines = text[:match.start()].splitlines()
    joints = _parse_hierarchy(header_lines, name)
    first_motion_line = len(header_lines) + 1
    frame_count, frame_time, data_line, data = _parse_motion_header(
        text[match.end():], first_motion_line, name)
    if frame_count == 0:
        raise MocapFormatError(f"{name}: line {first_motion_line + 1}: 'Frames: 0': the file holds "
                               "no motion; export at least one frame")
    num_channels = sum(len(j.channels) for j in joints)
    motion = _parse_motion_values(data, frame_count, num_channels, data_line, name)
    _check_motion_values(motion, joints, data, data_line, name)
    return BvhFile(name, tuple(joints), frame_time, motion)


def _check_motion_values(motion: np.ndarray, joints: list[BvhJoint], data: str, first_line: int,
                         name: str) -> None:
    """Reject NaN / inf and absurd channel values, naming the line, frame, joint and channel.

    Bounds: :data:`MAX_BVH_POSITION` file units for position channels, :data:`MAX_BVH_ANGLE`
    degrees for rotation channels.
    """
    if motion.size == 0:
        return
    bounds = np.array([MAX_BVH_POSITION if c.endswith("position") else MAX_BVH_ANGLE
                       for j in joints for c in j.channels])
    bad = ~(np.abs(motion) <= bounds)  # NaN compares False: caught too
    if not bad.any():
        return
    frame, column = (int(v) for v in np.argwhere(bad)[0])
    owner = [(j.name, c) for j in joints for c in j.channels][column]
    value = motion[frame, column]
    # Line of the value: count the values of each data line until reaching it.
    flat, seen, line_no = frame * motion.shape[1] + column, 0, first_line
    for offset, line in enumerate(data.splitlines()):
        seen += len(line.split())
        if seen > flat:
            line_no = first_line + offset
            break
    unit = "units" if owner[1].endswith("position") else "degrees"
    what = ("not a finite number" if not np.isfinite(value)
            else f"beyond the accepted +-{bounds[column]:g} {unit}")
    raise MocapFormatError(f"{name}: line {line_no}: frame {frame}, joint {owner[0]} {owner[1]} is "
                           f"{value:g}, {what}; the file is corrupt: repair or re-export it")


def _parse_hierarchy(lines: list[str], name: str) -> list[BvhJoint]:
    """Parse the HIERARCHY tokens into joints, parents first.

    Iterative (an explicit stack of open joints), so a deep or hostile file cannot exhaust
    Python's recursion limit; a nesting deeper than :data:`MAX_BVH_DEPTH` or more than
    :data:`MAX_BVH_JOINTS` joints is rejected with the line of the offending joint.
    """
    tokens: list[tuple[str, int]] = []
    for number, line in enumerate(lines, start=1):
        tokens.extend((tok, number) for tok in line.split())
    if not tokens or tokens[0][0] != "HIERARCHY":
        raise MocapFormatError(f"{name}: line 1: expected 'HIERARCHY'; this is not a BVH file")

    joints: list[BvhJoint] = []
    pos = 1

    def fail(message: str, at: int) -> MocapFormatError:
        line = tokens[min(at, len(tokens) - 1)][1] if tokens else 1
        return MocapFormatError(f"{name}: line {line}: {message}; fix or re-export the HIERARCHY")

    def take(expected: str | None = None) -> str:
        nonlocal pos
        if pos >= len(tokens):
            raise fail("HIERARCHY ends early (unbalanced braces?)", pos)
        tok = tokens[pos][0]
        if expected is not None and tok != expected:
            raise fail(f"expected {expected!r}, found {tok!r}", pos)
        pos += 1
        return tok

    def take_floats(count: int, what: str) -> tuple[float, ...]:
        values = []
        for _ in range(count):
            tok = take()
            try:
                value = float(tok)
            except ValueError:
                raise fail(f"{what}: {tok!r} is not a number", pos - 1) from None
            if not abs(value) <= MAX_BVH_POSITION:  # also NaN and inf
                raise fail(f"{what}: {tok!r} is not a finite length of at most {MAX_BVH_POSITION:g} "
                           "units", pos - 1)
            values.append(value)
        return tuple(values)

    def add_joint(parent: int, keyword: str, depth: int) -> int | None:
        """Read one joint's header (and a whole End Site); return its index if it has a body."""
        at = pos - 1  # the JOINT / ROOT / End keyword
        if len(joints) >= MAX_BVH_JOINTS:
            raise fail(f"more than {MAX_BVH_JOINTS} joints (End Sites included); this is not a "
                       "character skeleton", at)
        if depth > MAX_BVH_DEPTH:
            raise fail(f"joints nested more than {MAX_BVH_DEPTH} deep; this is not a character "
                       "skeleton (missing '}' braces?)", at)
        if keyword == "End":
            take("Site")
            take("{")
            take("OFFSET")
            offset = take_floats(3, "End Site OFFSET")
            take("}")
            joints.append(BvhJoint(f"{joints[parent].name}_End", parent, offset, ()))
            return None
        joint_name = take()
        take("{")
        take("OFFSET")
        offset = take_floats(3, f"OFFSET of {joint_name}")
        channels: tuple[str, ...] = ()
        if pos < len(tokens) and tokens[pos][0] == "CHANNELS":
            take()
            count_tok = take()
            if not count_tok.isdigit() or int(count_tok) > 6:
                raise fail(f"CHANNELS of {joint_name}: count {count_tok!r} is not an integer "
                           "from 0 to 6", pos - 1)
            channels = tuple(take() for _ in range(int(count_tok)))
            bad = [c for c in channels if c not in _CHANNELS]
            if bad:
                raise fail(f"CHANNELS of {joint_name}: unknown channel(s) {bad} (count "
                           f"{count_tok} may not match the names listed)", pos - 1)
        joints.append(BvhJoint(joint_name, parent, offset, channels))
        return len(joints) - 1

    while pos < len(tokens):  # one pass per ROOT (rarely more than one)
        take("ROOT")
        root = add_joint(-1, "ROOT", 1)
        open_joints: list[int] = [root]  # the stack of joints whose '}' is still to come
        while open_joints:
            current = open_joints[-1]
            if pos >= len(tokens):
                raise fail(f"joint {joints[current].name} is not closed with '}}'", pos)
            tok = take()
            if tok == "}":
                open_joints.pop()
            elif tok in ("JOINT", "End"):
                child = add_joint(current, tok, len(open_joints) + 1)
                if child is not None:
                    open_joints.append(child)
            else:
                raise fail(f"unexpected {tok!r} inside joint {joints[current].name}", pos - 1)
    return joints


def _parse_motion_header(rest: str, motion_line: int, name: str) -> tuple[int, float, int, str]:
    # rest starts right after "MOTION"; expect "Frames: N" and "Frame Time: dt" lines.
    lines = rest.split("\n", 3)
    # lines[0] is the remainder of the MOTION line (usually "" or "\r").
    if len(lines) < 3:
        raise MocapFormatError(f"{name}: line {motion_line}: MOTION section truncated before "
                               "'Frames:' and 'Frame Time:'; the file is incomplete, re-export it")
    frames_line, time_line = lines[1].split(), lines[2].split()
    if len(frames_line) != 2 or frames_line[0] != "Frames:" or not frames_line[1].isdigit():
        raise MocapFormatError(f"{name}: line {motion_line + 1}: expected 'Frames: <count>', "
                               f"found {lines[1].strip()!r}")
    if len(time_line) != 3 or time_line[:2] != ["Frame", "Time:"]:
        raise MocapFormatError(f"{name}: line {motion_line + 2}: expected 'Frame Time: <seconds>', "
                               f"found {lines[2].strip()!r}")
    try:
        frame_time = float(time_line[2])
    except ValueError:
        frame_time = -1.0
    if not 0 < frame_time < 3600:  # also NaN and inf
        raise MocapFormatError(f"{name}: line {motion_line + 2}: frame time {time_line[2]!r} must be "
                               "a positive number of seconds (under an hour)")
    return int(frames_line[1]), frame_time, motion_line + 3, lines[3] if len(lines) > 3 else ""


def _parse_motion_values(data: str, frame_count: int, num_channels: int, first_line: int,
                         name: str) -> np.ndarray:
    try:
        values = np.array(data.split(), dtype=np.float64)
    except ValueError:
        values = None
    if values is not None and values.size == frame_count * num_channels:
        return values.reshape(frame_count, num_channels)
    # Slow path, only for broken files: find the first offending line.
    rows = 0
    for offset, line in enumerate(data.splitlines()):
        fields = line.split()
        if not fields:
            continue
        line_no = first_line + offset
        if len(fields) < num_channels and not data[data.index(line) + len(line):].strip():
            raise MocapFormatError(
                f"{name}: line {line_no}: the file is truncated: the last line holds {len(fields)} "
                f"of {num_channels} values (frame {rows} of the {frame_count} declared); "
                "re-download or re-export it")
        if len(fields) != num_channels:
            raise MocapFormatError(
                f"{name}: line {line_no}: frame {rows} has {len(fields)} values but the HIERARCHY "
                f"declares {num_channels} channels; the MOTION data does not match the skeleton "
                "(wrong channel count or a cut line): re-export the file")
        try:
            [float(f) for f in fields]
        except ValueError:
            raise MocapFormatError(f"{name}: line {line_no}: non-numeric value in frame {rows}; "
                                   "fix or re-export the file") from None
        rows += 1
    raise MocapFormatError(
        f"{name}: line {first_line + len(data.splitlines())}: 'Frames:' declares {frame_count} "
        f"frames but the file holds {rows}; the file is truncated (or the count is wrong): "
        "re-download or re-export it, or correct the 'Frames:' line")


def bvh_motion(bvh: BvhFile, add_root_offset: bool = False) -> SkeletonMotion:
    """Local rotations and translations of every joint of a parsed BVH, per frame.

    Position channels replace the joint's OFFSET (see the module notes), except that with
    ``add_root_offset`` a *root* joint's position channels are added to its OFFSET: the iClone and
    ReActIdle exporters write the root translation relative to the rest pose, with the rest hip
    height in the root OFFSET (``mapping.JointMap.root_offset_added``).

    Returns:
        :class:`SkeletonMotion` in the file's units and frame rate; End Sites are included as
        joints with identity rotation.
    """
    num_frames = bvh.motion.shape[0]
    num_joints = len(bvh.joints)
    rotations = np.zeros((num_frames, num_joints, 4))
    rotations[..., 3] = 1.0
    translations = np.empty((num_frames, num_joints, 3))
    by_order: dict[str, list[tuple[int, list[int]]]] = {}
    column = 0
    for j, joint in enumerate(bvh.joints):
        translations[:, j] = joint.offset
        order, rot_cols = "", []
        for channel in joint.channels:
            axis = "XYZ".index(channel[0])
            if channel.endswith("position"):
                base = joint.offset[axis] if add_root_offset and joint.parent < 0 else 0.0
                translations[:, j, axis] = base + bvh.motion[:, column]
            else:
                order += channel[0]
                rot_cols.append(column)
            column += 1
        if order:
            if len(order) != len(set(order)):
                raise MocapFormatError(f"{bvh.name}: joint {joint.name} repeats a rotation axis "
                                       f"({order}); each of X, Y, Z may appear once")
            by_order.setdefault(order, []).append((j, rot_cols))
    # One call per distinct channel order. Upper-case order = intrinsic:
    # "Zrotation Xrotation Yrotation" -> Rz @ Rx @ Ry.
    for order, members in by_order.items():
        index = [j for j, _ in members]
        angles = bvh.motion[:, [cols for _, cols in members]]  # (T, n, len(order))
        rotations[:, index] = quat_from_euler(order, angles, degrees=True)
    parents = np.array([joint.parent for joint in bvh.joints], dtype=np.int64)
    return SkeletonMotion(bvh.joint_names, parents, rotations, translations, bvh.fps)
