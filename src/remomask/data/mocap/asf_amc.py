"""Acclaim ASF (skeleton) and AMC (motion) reader, as used by the CMU and HDM05 databases.

Conventions (Acclaim format; checked against the CMU trial 01_01, whose BVH conversion gives the
same world positions, see ``tests/test_mocap.py``):

* Units: ``:units length L`` means one file unit is ``1/L`` inch, so metres = value ``* 0.0254 / L``
  (CMU and HDM05 write ``length 0.45``: one unit is 5.64 cm; a CMU femur of 7.16 units is 0.40 m).
  ``angle deg`` / ``rad`` sets the unit of ``axis`` and of the AMC values.
* Each bone has a ``direction`` (unit vector in the global rest frame) and a ``length``; its
  vector ``v = direction * length`` goes from its start (the end of its parent, or the root) to
  its end.
* ``axis a b c ORDER`` gives the bone's local frame ``C`` (Euler angles applied in ORDER about the
  fixed axes). AMC ``dof`` values (in the bone's ``dof`` order, also about fixed axes) give a
  rotation ``M`` in that local frame; in the global rest frame the bone turns by ``C M C^-1``.
  World rotation ``W_i = W_parent C_i M_i C_i^-1``; bone start ``p_i = p_parent + W_parent v_parent``.
* The root has ``order`` (the AMC columns, e.g. ``TX TY TZ RX RY RZ``) and an ``axis`` order;
  its translation is ``position`` plus the AMC values.

:func:`asf_amc_motion` produces a :class:`~remomask.data.mocap.bvh.SkeletonMotion` with one joint
per bone placed at the bone's *start* (like the BVH conversions of CMU), named by the bone, a joint
``root``, and ``<bone>_end`` joints at the ends of leaf bones (``head_end`` is the top of the head).

The AMC reader is vectorised over frames: an AMC frame is a fixed block of lines (frame number,
then one line per bone in the same order in every frame), so each bone's column of lines is
joined and parsed by numpy in one call, after optional subsampling (``frame_step``: 120 -> 20 fps
keeps every 6th frame and parses only those).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .bvh import (MAX_BVH_ANGLE, MAX_BVH_POSITION, MocapFormatError, SkeletonMotion, Source,
                  quat_from_euler, quat_multiply, read_text)

__all__ = [
    "AsfBone",
    "AsfSkeleton",
    "AmcMotion",
    "parse_asf",
    "parse_amc",
    "asf_amc_motion",
    "amc_frame_rate",
]

INCH = 0.0254


@dataclass(frozen=True)
class AsfBone:
    """One ASF bone.

    Attributes:
        name: bone name (``lfemur``).
        direction: (3,) unit vector in the global rest frame.
        length: bone length in file units.
        axis: (3,) Euler angles of the bone's local frame, in ``axis_order``, file angle unit.
        axis_order: e.g. ``"XYZ"``: fixed-axis order of ``axis``.
        dofs: AMC columns of this bone in order, e.g. ``("rx", "ry", "rz")``; ``()`` if none.
    """

    name: str
    direction: np.ndarray
    length: float
    axis: np.ndarray
    axis_order: str
    dofs: tuple[str, ...]


@dataclass(frozen=True)
class AsfSkeleton:
    """A parsed ASF file.

    Attributes:
        name: the file name used in messages.
        length_unit: the ``:units length`` value L (one file unit = 1/L inch).
        degrees: angles in degrees (``angle deg``) rather than radians.
        root_order: AMC columns of the root, e.g. ``("TX", "TY", "TZ", "RX", "RY", "RZ")``.
        root_axis: fixed-axis order of the root orientation, e.g. ``"XYZ"``.
        root_position: (3,) rest position, file units.
        root_orientation: (3,) rest orientation angles.
        bones: bones by name.
        parents: parent bone name of each bone (``"root"`` for the root's children).
        order: bone names, parents before children (depth-first from the root).
    """

    name: str
    length_unit: float
    degrees: bool
    root_order: tuple[str, ...]
    root_axis: str
    root_position: np.ndarray
    root_orientation: np.ndarray
    bones: dict[str, AsfBone]
    parents: dict[str, str]
    order: tuple[str, ...]

    @property
    def metres_per_unit(self) -> float:
        """Metres per file length unit: ``0.0254 / length_unit``."""
        return INCH / self.length_unit


@dataclass(frozen=True)
class AmcMotion:
    """A parsed AMC file.

    Attributes:
        name: the file name used in messages.
        frame_numbers: (T,) frame numbers as written in the file (after subsampling).
        total_frames: number of frames in the file (before subsampling).
        root: (T, len(root_order)) root values in the ASF's root order.
        values: per bone, (T, len(dofs)) values in the bone's dof order; bones the AMC does not
            list (no dofs) are absent.
    """

    name: str
    frame_numbers: np.ndarray
    total_frames: int
    root: np.ndarray
    values: dict[str, np.ndarray]

    @property
    def num_frames(self) -> int:
        """Number of frames T."""
        return int(self.frame_numbers.shape[0])


def _fail(name: str, line: int, message: str, fix: str) -> MocapFormatError:
    return MocapFormatError(f"{name}: line {line}: {message}; {fix}")


def parse_asf(source: Source, name: str | None = None) -> AsfSkeleton:
    """Parse an ASF skeleton (path, bytes or file object).

    Raises:
        MocapFormatError: missing sections, a bone without direction/length, a bad axis or dof,
            a hierarchy naming an unknown bone, or a cycle (the message names the line).
    """
    text, name = read_text(source, name)
    lines = text.splitlines()
    fix = "fix the ASF or use the skeleton file that came with the AMC"
    length_unit, degrees = 1.0, True
    root: dict[str, list[str]] = {}
    bones: dict[str, AsfBone] = {}
    parents: dict[str, str] = {}
    children: dict[str, list[str]] = {"root": []}
    section = ""
    bone: dict[str, tuple[int, list[str]]] | None = None
    bone_line = 0

    def finish_bone(at: int) -> None:
        fields = bone or {}
        if "name" not in fields:
            raise _fail(name, bone_line, "bone without a 'name'", fix)
        bname = fields["name"][1][0]
        for key in ("direction", "length"):
            if key not in fields:
                raise _fail(name, bone_line, f"bone {bname!r} has no {key!r}", fix)
        try:
            direction = np.array([float(v) for v in fields["direction"][1][:3]])
            length = float(fields["length"][1][0])
            axis_tokens = fields.get("axis", (at, ["0", "0", "0", "XYZ"]))[1]
            axis = np.array([float(v) for v in axis_tokens[:3]])
        except (ValueError, IndexError):
            raise _fail(name, bone_line, f"bone {bname!r}: direction/length/axis are not numbers",
                        fix) from None
        axis_order = axis_tokens[3].upper() if len(axis_tokens) > 3 else "XYZ"
        angle_bound = MAX_BVH_ANGLE if degrees else np.deg2rad(MAX_BVH_ANGLE)
        if not (abs(length) <= MAX_BVH_POSITION and np.all(np.abs(direction) <= MAX_BVH_POSITION)
                and np.all(np.abs(axis) <= angle_bound)):
            raise _fail(name, bone_line, f"bone {bname!r}: direction {direction}, length {length:g} or "
                        f"axis {axis} is not finite or beyond +-{MAX_BVH_POSITION:g} units / "
                        f"+-{angle_bound:g} angle units", fix)
        norm = np.linalg.norm(direction)
        if direction.shape != (3,) or not norm > 0 or sorted(axis_order) != ["X", "Y", "Z"]:
            raise _fail(name, bone_line, f"bone {bname!r}: bad direction {direction} or axis order "
                        f"{axis_order!r}", fix)
        dofs = tuple(d.lower() for d in fields.get("dof", (at, []))[1])
        bad = [d for d in dofs if d not in ("rx", "ry", "rz", "tx", "ty", "tz", "l")]
        if bad:
            raise _fail(name, fields["dof"][0], f"bone {bname!r}: unknown dof(s) {bad}", fix)
        if any(d in ("tx", "ty", "tz", "l") for d in dofs):
            raise _fail(name, fields["dof"][0], f"bone {bname!r}: translation/length dofs {dofs} are "
                        "not supported (CMU and HDM05 use rotations only)", fix)
        bones[bname] = AsfBone(bname, direction / norm, length, axis, axis_order, dofs)

    for number, raw in enumerate(lines, start=1):
        tokens = raw.split()
        if not tokens or tokens[0].startswith("#"):
            continue
        head = tokens[0]
        if head.startswith(":"):
            section = head[1:].lower()
            if section in ("name", "version", "documentation"):
                continue
            tokens = tokens[1:]
            if not tokens:
                continue
            head = tokens[0]
        if section == "units":
            if head == "length":
                try:
                    length_unit = float(tokens[1])
                except (ValueError, IndexError):
                    raise _fail(name, number, "':units length' needs a number", fix) from None
                if not 1e-6 < length_unit < 1e6:  # also NaN and inf
                    raise _fail(name, number, f"length unit {length_unit} must be a positive number "
                                "(1e-6 to 1e6)", fix)
            elif head == "angle":
                degrees = tokens[1:2] != ["rad"]
        elif section == "root":
            root[head.lower()] = tokens[1:]
        elif section == "bonedata":
            if head == "begin":
                bone, bone_line = {}, number
            elif head == "end":
                finish_bone(number)
                bone = None
            elif bone is not None and head != "limits" and not head.startswith("("):
                bone[head.lower()] = (number, tokens[1:])
        elif section == "hierarchy":
            if head in ("begin", "end"):
                continue
            for child in tokens[1:]:
                if child in parents:
                    raise _fail(name, number, f"bone {child!r} has two parents", fix)
                if child not in bones:
                    raise _fail(name, number, f"hierarchy names unknown bone {child!r}", fix)
                parents[child] = head
                children.setdefault(head, []).append(child)
            if head != "root" and head not in bones:
                raise _fail(name, number, f"hierarchy names unknown bone {head!r}", fix)

    if not bones or not parents:
        raise MocapFormatError(f"{name}: no ':bonedata' or ':hierarchy' section; this is not an ASF "
                               "skeleton file")
    order: list[str] = []
    stack = list(reversed(children.get("root", [])))
    while stack:  # depth-first, children in file order
        bone_name = stack.pop()
        if bone_name in order:
            raise MocapFormatError(f"{name}: the hierarchy has a cycle at {bone_name!r}; {fix}")
        order.append(bone_name)
        stack.extend(reversed(children.get(bone_name, [])))
    unreachable = sorted(set(bones) - set(order))
    if unreachable:
        raise MocapFormatError(f"{name}: bones {unreachable} are not connected to the root in "
                               f"':hierarchy'; {fix}")
    root_order = tuple(t.upper() for t in root.get("order", []))
    if sorted(root_order) != sorted(("TX", "TY", "TZ", "RX", "RY", "RZ")):
        raise MocapFormatError(f"{name}: ':root order' is {root_order}; expected the six channels "
                               f"TX TY TZ RX RY RZ in some order; {fix}")
    root_axis = (root.get("axis") or ["XYZ"])[0].upper()
    try:
        position = np.array([float(v) for v in root.get("position", ["0", "0", "0"])[:3]])
        orientation = np.array([float(v) for v in root.get("orientation", ["0", "0", "0"])[:3]])
    except ValueError:
        raise MocapFormatError(f"{name}: ':root' position/orientation are not numbers; {fix}") from None
    if not np.all(np.abs(position) <= MAX_BVH_POSITION):
        raise MocapFormatError(f"{name}: ':root position' {position} is not finite or beyond "
                               f"+-{MAX_BVH_POSITION:g} units; {fix}")
    if np.any(np.abs(orientation) > 1e-9):
        # CMU and HDM05 write 0 0 0; a rest orientation would need a convention we cannot test.
        raise MocapFormatError(f"{name}: non-zero ':root orientation' {orientation} is not supported; "
                               "re-export the skeleton with orientation 0 0 0")
    return AsfSkeleton(name, length_unit, degrees, root_order, root_axis, position, orientation,
                       bones, parents, tuple(order))


_FRAME_RE = re.compile(r"^\s*\d+\s*$")
_NUMBER_CHARS = set("0123456789.eE+-naifNAIF")


def amc_frame_rate(path: str | Path, default: float = 120.0) -> float:
    """Frame rate of an AMC file: HDM05 names end in ``_<fps>.amc`` (``HDM_bd_squat1Reps_001_120.amc``);
    any other name gives ``default``.

    CMU and HDM05 capture at 120 fps; AMC files carry no frame rate of their own. Only the HDM05
    pattern is trusted, because CMU names (``01_01.amc``) end in a trial number.
    """
    match = re.search(r"^HDM_.*_(\d+)\.amc$", Path(path).name, flags=re.IGNORECASE)
    return float(match.group(1)) if match else default


def parse_amc(source: Source, skeleton: AsfSkeleton, name: str | None = None,
              frame_step: int = 1) -> AmcMotion:
    """Parse an AMC motion for ``skeleton``, keeping every ``frame_step``-th frame from the first.

    The frame layout (frame numbers, one line per bone, same bones in the same order) is checked
    for every frame; the values are read, and so checked, only for the frames kept.

    Raises:
        MocapFormatError: no frames, a frame missing a bone or listing an extra one, bones out of
            order, a bone line with the wrong number of values, or a non-numeric value (the
            message names the line and the bone).
    """
    text, name = read_text(source, name)
    if frame_step < 1:
        raise ValueError(f"frame_step must be >= 1, got {frame_step}")
    lines = text.splitlines()
    start = 0
    while start < len(lines) and not _FRAME_RE.match(lines[start]):
        stripped = lines[start].strip()
        if stripped and not stripped.startswith(("#", ":")):
            raise _fail(name, start + 1, f"unexpected {stripped[:40]!r} before the first frame number",
                        "an AMC file starts with '#'/':' header lines and then '1'")
        start += 1
    body = lines[start:]
    while body and not body[-1].strip():
        body.pop()
    if not body:
        raise MocapFormatError(f"{name}: no frames (no line holding only a frame number); the AMC "
                               "file is empty or truncated")
    block = 1
    while block < len(body) and not _FRAME_RE.match(body[block]):
        block += 1
    slots = [line.split(None, 1)[0] if line.strip() else "" for line in body[1:block]]
    expected = {b for b, bone in skeleton.bones.items() if bone.dofs} | {"root"}
    missing, extra = expected - set(slots), set(slots) - expected
    if missing or extra or len(slots) != len(set(slots)):
        raise _fail(name, start + 1, f"frame {body[0].strip()} lists bones {slots}; the skeleton "
                    f"{Path(skeleton.name).name} expects one line per bone with dofs "
                    f"(missing {sorted(missing)}, unknown {sorted(extra)})",
                    "pass the ASF that belongs to this AMC, or repair the frame")
    frame_lines = body[::block]
    if len(body) % block != 0 or not all(_FRAME_RE.match(f) for f in frame_lines):
        _locate_bad_frame(body, slots, start, name)
    frame_numbers = np.array([int(f) for f in frame_lines[::frame_step]], dtype=np.int64)
    num_frames = len(frame_numbers)
    values: dict[str, np.ndarray] = {}
    root = np.zeros((num_frames, 6))
    # Values beyond these are corrupt numbers, not poses (same bounds as the BVH reader).
    angle_bound = MAX_BVH_ANGLE if skeleton.degrees else float(np.deg2rad(MAX_BVH_ANGLE))
    for slot, bone_name in enumerate(slots, start=1):
        column = body[slot::block][::frame_step]
        count = len(skeleton.root_order) if bone_name == "root" else len(skeleton.bones[bone_name].dofs)
        joined = "\n".join(column)
        parsed = None
        # Fast path: every line of this column names this bone once; strip the names and let
        # numpy parse the rest (a line naming another bone leaves letters and fails to parse).
        if not set(bone_name) <= _NUMBER_CHARS and joined.count(bone_name) == len(column):
            try:
                parsed = np.array(joined.replace(bone_name, " ").split(), dtype=np.float64)
            except ValueError:
                parsed = None
        if parsed is None or parsed.size != num_frames * count:
            for k, line in enumerate(column):
                fields = line.split()
                ok = bool(fields) and fields[0] == bone_name and len(fields) == count + 1
                if ok:
                    try:
                        [float(v) for v in fields[1:]]
                    except ValueError:
                        ok = False
                if not ok:
                    line_no = start + (k * frame_step) * block + slot + 1
                    raise _fail(name, line_no, f"expected {bone_name!r} and {count} values (frame "
                                f"layout of frame 1), found {line.strip()[:60]!r}",
                                "use the ASF that belongs to this AMC, or repair the file")
        parsed = parsed.reshape(num_frames, count)
        columns = skeleton.root_order if bone_name == "root" else skeleton.bones[bone_name].dofs
        bounds = np.array([MAX_BVH_POSITION if c.upper().startswith("T") else angle_bound
                           for c in columns])
        bad = ~(np.abs(parsed) <= bounds)  # NaN compares False: caught too
        if bad.any():
            k, col = (int(v) for v in np.argwhere(bad)[0])
            value = parsed[k, col]
            unit = "units" if columns[col].upper().startswith("T") else ("degrees" if skeleton.degrees
                                                                           else "radians")
            what = ("not a finite number" if not np.isfinite(value)
                    else f"beyond the accepted +-{bounds[col]:g} {unit}")
            line_no = start + (k * frame_step) * block + slot + 1
            raise _fail(name, line_no, f"frame {frame_numbers[k]}, {bone_name} {columns[col]} is "
                        f"{value:g}, {what}", "the file is corrupt: repair or re-export it")
        if bone_name == "root":
            root = parsed
        else:
            values[bone_name] = parsed
    return AmcMotion(name, frame_numbers, len(frame_lines), root, values)


def _locate_bad_frame(body: list[str], slots: list[str], start: int, name: str) -> None:
    """Raise a MocapFormatError for the first frame whose bone lines differ from frame 1's."""
    index = 0
    while index < len(body):
        if not _FRAME_RE.match(body[index]):
            raise _fail(name, start + index + 1, f"expected a frame number, found {body[index][:40]!r}",
                        "repair the AMC file")
        names = []
        k = index + 1
        while k < len(body) and not _FRAME_RE.match(body[k]):
            names.append(body[k].split(None, 1)[0] if body[k].strip() else "")
            k += 1
        if names != slots:
            missing = [s for s in slots if s not in names]
            raise _fail(name, start + index + 1,
                        f"frame {body[index].strip()} lists {len(names)} bones, frame 1 lists "
                        f"{len(slots)} (missing {missing}, order {names[:4]}...)",
                        "every frame must list the same bones in the same order; the file is "
                        "truncated or damaged: re-export it")
        index = k
    raise _fail(name, start + 1, "inconsistent frame layout", "repair the AMC file")


def _euler_quat(order: tuple[str, ...] | str, angles: np.ndarray, degrees: bool) -> np.ndarray:
    # Acclaim rotations are about fixed (global) axes in the listed order: "rx ry rz" means
    # M = Rz @ Ry @ Rx, scipy's extrinsic (lower-case) "xyz".
    letters = "".join(a[-1].lower() for a in order)
    return quat_from_euler(letters, angles, degrees=degrees)


def asf_amc_motion(skeleton: AsfSkeleton, amc: AmcMotion, fps: float) -> SkeletonMotion:
    """Local rotations/translations of an ASF skeleton driven by an AMC motion.

    Args:
        skeleton: the parsed ASF.
        amc: the parsed AMC (frames as kept by ``parse_amc``).
        fps: frame rate of ``amc`` as parsed (120 / frame_step for CMU and HDM05).

    Returns:
        :class:`SkeletonMotion` in file units: joints ``root``, every bone (at its start, in
        ``skeleton.order``) and ``<bone>_end`` for leaf bones; the rest frame is the global frame.
    """
    num_frames = amc.num_frames
    names = ["root"]
    parents = [-1]
    index = {"root": 0}
    for bone_name in skeleton.order:
        index[bone_name] = len(names)
        names.append(bone_name)
        parents.append(index[skeleton.parents[bone_name]])
    has_child = set(skeleton.parents.values())
    leaves = [b for b in skeleton.order if b not in has_child]
    for bone_name in leaves:
        index[f"{bone_name}_end"] = len(names)
        names.append(f"{bone_name}_end")
        parents.append(index[bone_name])

    num_joints = len(names)
    rotations = np.zeros((num_frames, num_joints, 4))
    rotations[..., 3] = 1.0
    translations = np.zeros((num_frames, num_joints, 3))

    # Root: translation = position + AMC T*, rotation from AMC R* in the root order.
    root_cols = {c: k for k, c in enumerate(skeleton.root_order)}
    translations[:, 0] = skeleton.root_position + amc.root[:, [root_cols[c] for c in ("TX", "TY", "TZ")]]
    rot_channels = tuple(c for c in skeleton.root_order if c.startswith("R"))
    rotations[:, 0] = _euler_quat(rot_channels, amc.root[:, [root_cols[c] for c in rot_channels]],
                                  skeleton.degrees)

    def bone_vector(bone_name: str) -> np.ndarray:
        bone = skeleton.bones[bone_name]
        return bone.direction * bone.length

    # Bone rotations C M C^-1, batched: one Euler conversion per distinct dof order.
    by_dofs: dict[tuple[str, ...], list[str]] = {}
    for bone_name in skeleton.order:
        parent = skeleton.parents[bone_name]
        if parent != "root":
            translations[:, index[bone_name]] = bone_vector(parent)  # starts where its parent ends
        if skeleton.bones[bone_name].dofs:  # bones without dofs keep C I C^-1 = I
            by_dofs.setdefault(skeleton.bones[bone_name].dofs, []).append(bone_name)
    for dofs, group in by_dofs.items():
        cols = [index[b] for b in group]
        c = np.stack([_euler_quat(skeleton.bones[b].axis_order, skeleton.bones[b].axis,
                                  skeleton.degrees) for b in group])  # (n, 4)
        c_inv = c * np.array([-1.0, -1.0, -1.0, 1.0])
        m = _euler_quat(dofs, np.stack([amc.values[b] for b in group], axis=1), skeleton.degrees)
        rotations[:, cols] = quat_multiply(quat_multiply(c, m), c_inv)  # (T, n, 4)
    for bone_name in leaves:
        translations[:, index[f"{bone_name}_end"]] = bone_vector(bone_name)
    return SkeletonMotion(tuple(names), np.array(parents, dtype=np.int64), rotations, translations, fps)
