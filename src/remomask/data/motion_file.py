"""One loader for every command that takes a motion file (render, export, evaluate, ...).

A *motion* is HumanML3D's: 22 joints (SMPL order, :data:`remomask.data.skeleton.HUMANML3D`) in
metres, Y up, at 20 frames per second, stored either as joint positions ``(T, 22, 3)`` or as the
263-d HumanML3D features ``(T, 263)`` (docs/design.md §2, the data format). This module reads

* ``.npy``: one array, joints ``(T, 22, 3)`` or features ``(T, 263)`` (any float or integer dtype);
* ``.npz``: the array named by ``array=``, else the first of ``joints``, ``features``, ``motion``,
  ``poses`` present, else the only array of the archive;
* ``.bvh``: any skeleton the mocap importer knows (Bandai-Namco, CMU conversions), retargeted to the
  22 joints and resampled to 20 fps by :func:`remomask.data.mocap.import_mocap` (as
  ``remomask data build`` does for the raw corpora),

and returns a :class:`MotionFile` whose ``joints`` are always ``(T, 22, 3)`` float32 metres
(features are turned into joints with :func:`remomask.data.features.joints_from_features`).

Every failure is a :class:`~remomask.errors.RemomaskError` with a one-line message naming the file
and the fix (the command line prints it as ``error: ...``): a missing path
(:class:`~remomask.errors.MissingFileError`), a directory, an unknown extension, a file that is not
a valid ``.npy`` / ``.npz`` (arrays are always read with ``allow_pickle=False``), object / string /
structured dtypes, a shape that is neither joints nor features, NaN or inf, absurd values, zero
frames (:class:`~remomask.errors.InputFileError`), and a malformed BVH
(:class:`~remomask.data.mocap.MocapFormatError`, with its line).

Bounds (absurd values are corrupt data or another unit, not a pose):

* :data:`MAX_POSITION_M` = 1000 m: no joint may be farther from the origin. Capture volumes are
  tens of metres and HumanML3D clips (<= 10 s) travel under 100 m; 1 km leaves room for long walks
  of inertial capture while catching joints in millimetres (a standing person is ~1700 mm tall).
* :data:`MAX_BODY_EXTENT_M` = 10 m: no joint may be farther from the pelvis in its frame. A human
  spans under 2.5 m, so this catches joints in centimetres (pelvis to foot ~90 cm) whatever the
  position of the body in the world.
* :data:`MAX_FEATURE_VALUE` = 1000: no feature value may exceed it in magnitude. HumanML3D features
  are metres, metres per frame, 6D rotation entries (<= 1) and contact flags (0/1), all within
  +-10 for a human motion; a normalised (z-scored) feature rarely exceeds +-50.
"""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Union

import numpy as np

from ..constants import FPS as _FPS
from ..errors import InputFileError, MissingFileError, RemomaskError, UsageError

__all__ = [
    "MotionFile",
    "load_motion_file",
    "motion_from_array",
    "to_joints",
    "MOTION_SUFFIXES",
    "NPZ_ARRAY_NAMES",
    "MAX_POSITION_M",
    "MAX_BODY_EXTENT_M",
    "MAX_FEATURE_VALUE",
    "FPS",
]

FPS = _FPS
"""Frame rate of every motion this module returns (HumanML3D's, docs/design.md §2)."""
NUM_JOINTS = 22
FEATURE_DIM = 263
MOTION_SUFFIXES = (".npy", ".npz", ".bvh")
"""File extensions :func:`load_motion_file` reads (case-insensitive)."""
NPZ_ARRAY_NAMES = ("joints", "features", "motion", "poses")
"""Names looked for, in this order, in an ``.npz`` read without ``array=``."""
MAX_POSITION_M = 1000.0
"""Largest accepted distance of a joint from the origin, metres (see the module docstring)."""
MAX_BODY_EXTENT_M = 10.0
"""Largest accepted distance of a joint from the pelvis in its frame, metres."""
MAX_FEATURE_VALUE = 1000.0
"""Largest accepted |value| of a HumanML3D feature."""

_ACCEPTED = (f"joints (T, {NUM_JOINTS}, 3) in metres or HumanML3D features (T, {FEATURE_DIM}), "
             "T >= 1 frames")
_NPY_MAGIC = b"\x93NUMPY"
_ZIP_MAGIC = b"PK\x03\x04"

PathLike = Union[str, os.PathLike]
Kind = Literal["joints", "features", "bvh"]


@dataclass(frozen=True)
class MotionFile:
    """A motion read by :func:`load_motion_file` (or checked by :func:`motion_from_array`).

    Attributes:
        joints: (T, 22, 3) float32 joint positions in metres, Y up, HumanML3D joint order, T >= 1.
        features: (T, 263) float32 HumanML3D features when the file held features (then ``joints``
            were recovered from them and have the same T), else ``None``.
        fps: frames per second of ``joints`` and ``features``: always 20.0 (HumanML3D's; ``.npy`` /
            ``.npz`` files carry no rate and are taken to be at 20 fps, a BVH is resampled to it).
        source: the path read (as given), or ``"<array>"`` for an in-memory array.
        kind: ``"joints"``, ``"features"`` (a ``.npy`` / ``.npz`` array of that shape) or ``"bvh"``.

    Source: docs/design.md §2 (the data format: joints, features, 20 fps).
    """

    joints: np.ndarray
    features: np.ndarray | None
    fps: float
    source: str
    kind: Kind

    @property
    def num_frames(self) -> int:
        """Number of frames T."""
        return int(self.joints.shape[0])


def load_motion_file(path: PathLike, *, array: str | None = None) -> MotionFile:
    """Read a motion file: ``.npy`` / ``.npz`` joints or features, or a ``.bvh``.

    Args:
        path: the file. ``.npy``: joints (T, 22, 3) metres or features (T, 263). ``.npz``: the
            array ``array``, else the first of ``joints``, ``features``, ``motion``, ``poses``, else
            its only array. ``.bvh``: imported with :func:`remomask.data.mocap.import_mocap`
            (retargeted to the 22 joints, metres, 20 fps).
        array: for an ``.npz``, the name of the array to read.

    Returns:
        :class:`MotionFile` with ``joints`` (T, 22, 3) float32 metres at 20 fps, and ``features``
        (T, 263) float32 when the file held features.

    Raises:
        MissingFileError: ``path`` does not exist.
        InputFileError: ``path`` is a directory, has an unknown extension, is not a valid ``.npy``
            / ``.npz`` (or an ``.npz`` without the array asked for, or with several arrays and none
            of the known names), holds an object / string / structured array, a shape other than
            joints or features, 0 frames, NaN / inf, or values beyond :data:`MAX_POSITION_M`,
            :data:`MAX_BODY_EXTENT_M` or :data:`MAX_FEATURE_VALUE`.
        MocapFormatError: a malformed or unsupported BVH (an ``InputFileError``; names the line).
        UsageError: ``array`` given for a file that is not an ``.npz``.

    Source: docs/design.md §2 (the data format).
    """
    path = Path(path).expanduser()
    label = str(path)
    if not path.exists():
        raise MissingFileError(f"{label} does not exist; pass a motion file: .npy or .npz with "
                               f"{_ACCEPTED}, or a .bvh")
    if path.is_dir():
        raise InputFileError(f"{label} is a directory, not a motion file; pass a .npy, .npz or .bvh "
                             "file inside it")
    suffix = path.suffix.lower()
    if suffix not in MOTION_SUFFIXES:
        raise InputFileError(f"{label}: unknown motion file extension {path.suffix or '(none)'!r}; "
                             f"pass a .npy or .npz with {_ACCEPTED}, or a .bvh")
    if array is not None and suffix != ".npz":
        raise UsageError(f"{label}: array={array!r} names an array inside an .npz file, but this is "
                         f"a {suffix} file; drop the array name")
    if suffix == ".bvh":
        return _read_bvh(path, label)
    head = _head(path, label)
    if suffix == ".npy":
        if head.startswith(_ZIP_MAGIC):
            raise InputFileError(f"{label} is an .npz archive (zip), not an .npy array; rename it to "
                                 ".npz")
        if not head.startswith(_NPY_MAGIC):
            raise InputFileError(f"{label} is not a readable .npy file (no NumPy header; empty, text or "
                                 f"another format); save the motion with numpy.save as {_ACCEPTED}")
        data = _load_npy(path, label)
        return _check(data, label, InputFileError)
    if head.startswith(_NPY_MAGIC):
        raise InputFileError(f"{label} is a .npy array, not an .npz archive; rename it to .npy")
    if not head.startswith(_ZIP_MAGIC):
        raise InputFileError(f"{label} is not an .npz file (not a zip archive; empty, text or "
                             "another format); save the motion with numpy.savez")
    name, data = _load_npz(path, label, array)
    return _check(data, f"{label} (array {name!r})", InputFileError, source=label)


def motion_from_array(data: Any, *, source: str = "<array>") -> MotionFile:
    """Check an in-memory motion and return it as a :class:`MotionFile` (``kind`` joints / features).

    Args:
        data: joints (T, 22, 3) in metres or HumanML3D features (T, 263): a numpy array, or a torch
            tensor (moved to the CPU), of a float or integer dtype.
        source: how messages name the array.

    Returns:
        :class:`MotionFile` with float32 ``joints`` (and ``features`` for a features array), 20 fps.

    Raises:
        UsageError: a non-numeric dtype, another shape, 0 frames, NaN / inf or absurd values (the
            same checks and bounds as :func:`load_motion_file`).

    Source: docs/design.md §2 (the data format).
    """
    if hasattr(data, "detach"):  # a torch tensor
        data = data.detach().cpu().numpy()
    if not isinstance(data, np.ndarray):
        try:
            data = np.asarray(data)
        except (TypeError, ValueError) as exc:
            raise UsageError(f"{source}: not an array ({exc}); pass {_ACCEPTED}") from None
    return _check(data, source, UsageError)


def to_joints(path_or_array: PathLike | Any) -> np.ndarray:
    """Joints of a motion file or array: (T, 22, 3) float32 metres, 20 fps.

    Args:
        path_or_array: a path (anything :func:`load_motion_file` reads), or an in-memory array /
            tensor of joints (T, 22, 3) or HumanML3D features (T, 263) (features are turned into
            joints with :func:`remomask.data.features.joints_from_features`).

    Returns:
        (T, 22, 3) float32 joint positions in metres, Y up.

    Raises:
        The errors of :func:`load_motion_file` for a path, of :func:`motion_from_array` for an array.

    Source: docs/design.md §2 (the data format).
    """
    if isinstance(path_or_array, (str, os.PathLike)):
        return load_motion_file(path_or_array).joints
    return motion_from_array(path_or_array).joints


# --------------------------------------------------------------------------- readers

def _head(path: Path, label: str) -> bytes:
    try:
        with open(path, "rb") as fh:
            return fh.read(8)
    except OSError as exc:
        raise InputFileError(f"{label} cannot be read ({exc.strerror or exc}); check its "
                             "permissions") from None


def _load_npy(path: Path, label: str) -> np.ndarray:
    try:
        with open(path, "rb") as fh:
            version = np.lib.format.read_magic(fh)
            if version == (1, 0):
                shape, _, dtype = np.lib.format.read_array_header_1_0(fh)
            elif version == (2, 0):
                shape, _, dtype = np.lib.format.read_array_header_2_0(fh)
            else:
                dtype = None
    except (ValueError, OSError, EOFError, SyntaxError) as exc:
        raise InputFileError(f"{label} is not a valid .npy file (damaged header: "
                             f"{_short(exc)}); save the motion again with numpy.save") from None
    if dtype is not None:
        _check_dtype(dtype, label, InputFileError)
    try:
        return np.load(path, allow_pickle=False)
    except ValueError as exc:
        if "pickle" in str(exc).lower() or "object" in str(exc).lower():
            raise InputFileError(f"{label} holds Python objects, not numbers; save a float array of "
                                 f"{_ACCEPTED}") from None
        raise InputFileError(f"{label} is not a valid .npy file (truncated or damaged: "
                             f"{_short(exc)}); save the motion again with numpy.save") from None
    except (OSError, EOFError) as exc:
        raise InputFileError(f"{label} is not a valid .npy file (truncated or damaged: "
                             f"{_short(exc)}); save the motion again with numpy.save") from None


def _load_npz(path: Path, label: str, array: str | None) -> tuple[str, np.ndarray]:
    bad_file = (f"{label} is not a valid .npz file (truncated or damaged zip); save the motion "
                "again with numpy.savez")
    try:
        archive = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile):
        raise InputFileError(bad_file) from None
    with archive:
        names = list(archive.files)
        if array is not None:
            if array not in names:
                raise InputFileError(f"{label} has no array {array!r}; it holds {_names(names)}: pass "
                                     "one of those")
            name = array
        else:
            name = next((n for n in NPZ_ARRAY_NAMES if n in names), None)
            if name is None:
                if len(names) != 1:
                    raise InputFileError(f"{label} holds {_names(names)} and none is named "
                                         f"{' / '.join(NPZ_ARRAY_NAMES)}; name the motion's array "
                                         "(array=..., --array)")
                name = names[0]
        try:
            data = archive[name]
        except ValueError as exc:
            if "pickle" in str(exc).lower() or "object" in str(exc).lower():
                raise InputFileError(f"{label} (array {name!r}) holds Python objects, not numbers; "
                                     f"save a float array of {_ACCEPTED}") from None
            raise InputFileError(bad_file) from None
        except (OSError, EOFError, KeyError, zipfile.BadZipFile):
            raise InputFileError(bad_file) from None
    return name, data


def _read_bvh(path: Path, label: str) -> MotionFile:
    from .mocap import import_mocap
    from .mocap.bvh import MocapFormatError

    try:
        imported = import_mocap(path, target_fps=FPS)
    except RemomaskError:
        raise
    except OSError as exc:
        raise InputFileError(f"{label} cannot be read ({exc.strerror or exc})") from None
    except (ValueError, ArithmeticError, RecursionError) as exc:  # should not happen: keep one line
        raise MocapFormatError(f"{label}: {type(exc).__name__}: {_short(exc)}; the BVH cannot be "
                               "imported: repair or re-export it") from None
    joints = imported.joints
    _check_joints(joints, label, InputFileError)
    return MotionFile(np.ascontiguousarray(joints, dtype=np.float32), None, FPS, label, "bvh")


# --------------------------------------------------------------------------- checks

def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return (text[:160] + "...") if len(text) > 160 else (text or type(exc).__name__)


def _names(names: list[str]) -> str:
    return "no arrays" if not names else "arrays " + ", ".join(repr(n) for n in names)


def _check_dtype(dtype: np.dtype, label: str, error: type[RemomaskError]) -> None:
    if dtype.kind == "O":
        raise error(f"{label} holds Python objects (dtype object), not numbers; save a float array "
                    f"of {_ACCEPTED}")
    if dtype.kind in "USa":
        raise error(f"{label} holds strings (dtype {dtype.str}), not numbers; save a float array of "
                    f"{_ACCEPTED}")
    if dtype.kind not in "fiu":
        what = "a structured record array" if dtype.kind == "V" else f"dtype {dtype}"
        raise error(f"{label} holds {what}, not real numbers; save a float array of {_ACCEPTED}")


def _check(data: np.ndarray, label: str, error: type[RemomaskError],
           source: str | None = None) -> MotionFile:
    """Shape, frame count, finiteness and bounds of a joints or features array -> MotionFile."""
    _check_dtype(data.dtype, label, error)
    shape = tuple(data.shape)
    if len(shape) == 3 and shape[1:] == (NUM_JOINTS, 3):
        kind: Kind = "joints"
    elif len(shape) == 2 and shape[1] == FEATURE_DIM:
        kind = "features"
    else:
        hint = ""
        if len(shape) == 3 and shape[2] == 3:
            hint = f" ({shape[1]} joints: only the {NUM_JOINTS}-joint HumanML3D skeleton is accepted)"
        elif len(shape) == 2 and shape[1] == 251:
            hint = " (KIT-ML features: only HumanML3D's 263 are accepted)"
        elif len(shape) == 4 and shape[0] == 1:
            hint = " (a batch of one: save motion[0])"
        raise error(f"{label}: got an array of shape {shape}{hint}; expected {_ACCEPTED}")
    if shape[0] == 0:
        raise error(f"{label} holds 0 frames; a motion needs at least one frame ({_ACCEPTED})")
    values = data.astype(np.float64, copy=False)
    finite = np.isfinite(values)
    if not finite.all():
        where = _where(np.argwhere(~finite)[0], kind)
        raise error(f"{label} holds a non-finite value (NaN/inf: {values[tuple(np.argwhere(~finite)[0])]:g} "
                    f"at {where}); the motion is corrupt: regenerate or re-export it")
    features = None
    if kind == "features":
        big = np.abs(values) > MAX_FEATURE_VALUE
        if big.any():
            at = tuple(np.argwhere(big)[0])
            raise error(f"{label} holds feature value {values[at]:g} at {_where(at, kind)}, beyond "
                        f"+-{MAX_FEATURE_VALUE:g}; these are not HumanML3D features (263-d, "
                        "de-normalised)")
        from .features import joints_from_features

        features = np.ascontiguousarray(data, dtype=np.float32)
        joints = joints_from_features(features.astype(np.float64)).astype(np.float32)
    else:
        joints = np.ascontiguousarray(data, dtype=np.float32)
    _check_joints(joints, label, error, from_features=kind == "features")
    return MotionFile(joints, features, FPS, source or label, kind)


def _check_joints(joints: np.ndarray, label: str, error: type[RemomaskError],
                  from_features: bool = False) -> None:
    """Joints within :data:`MAX_POSITION_M` of the origin and :data:`MAX_BODY_EXTENT_M` of the pelvis."""
    if joints.shape[0] == 0:
        raise error(f"{label} holds 0 frames at {FPS:g} fps; a motion needs at least one frame")
    values = joints.astype(np.float64)
    recovered = " (joints recovered from the features)" if from_features else ""
    if not np.isfinite(values).all():
        raise error(f"{label}: the joints{recovered} are not finite; the motion is corrupt")
    distance = np.linalg.norm(values, axis=-1)
    if distance.max() > MAX_POSITION_M:
        at = np.unravel_index(int(np.argmax(distance)), distance.shape)
        raise error(f"{label}: joint {at[1]} of frame {at[0]}{recovered} is {distance[at]:.4g} m from "
                    f"the origin, beyond {MAX_POSITION_M:g} m; joints must be in metres (a file in "
                    "millimetres or centimetres? divide by 1000 or 100)")
    extent = np.linalg.norm(values - values[:, :1], axis=-1)
    if extent.max() > MAX_BODY_EXTENT_M:
        at = np.unravel_index(int(np.argmax(extent)), extent.shape)
        raise error(f"{label}: joint {at[1]} of frame {at[0]}{recovered} is {extent[at]:.4g} m from "
                    f"the pelvis, beyond {MAX_BODY_EXTENT_M:g} m for a human body; joints must be in "
                    "metres (a file in centimetres? divide by 100)")


def _where(index: Any, kind: str) -> str:
    index = [int(i) for i in index]
    if kind == "joints":
        return f"frame {index[0]}, joint {index[1]}, axis {'xyz'[index[2]]}"
    return f"frame {index[0]}, dim {index[1]}"
