"""The one motion-file loader (remomask.data.motion_file) on real data.

Motions: the first clip of the embedded dataset's val split (its joints and features, saved as
``.npy`` and ``.npz``), the HumanML3D reference clip 012314 (features and the joints the reference
pipeline recovered from them) and the CMU BVH fixture 131_01. Every error case is built from these.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from remomask.data.features import joints_from_features
from remomask.data.mocap import MocapFormatError, import_mocap
from remomask.data.motion_file import (
    MAX_BODY_EXTENT_M,
    MAX_POSITION_M,
    MotionFile,
    load_motion_file,
    motion_from_array,
    to_joints,
)
from remomask.errors import InputFileError, MissingFileError, RemomaskError, UsageError


@pytest.fixture(scope="module")
def real() -> dict[str, np.ndarray]:
    """Joints (T, 22, 3) and features (T - 1, 263) of the first val clip of the embedded dataset."""
    from remomask.data.embedded import resolve_dataset

    root = resolve_dataset("embedded", progress=False)
    sid = (root / "val.txt").read_text().split()[0]
    joints = np.load(root / "new_joints" / f"{sid}.npy")
    features = np.load(root / "new_joint_vecs" / f"{sid}.npy")
    assert joints.shape[1:] == (22, 3) and features.shape[1:] == (263,) and len(joints) > 20
    return {"joints": joints.astype(np.float32), "features": features.astype(np.float32)}


def _error(path, exc_type=InputFileError, match: str | None = None, **kwargs) -> str:
    """Load ``path``, expect ``exc_type`` (a RemomaskError), check the one-line message names it."""
    with pytest.raises(exc_type, match=match) as info:
        load_motion_file(path, **kwargs)
    message = str(info.value)
    assert isinstance(info.value, RemomaskError)
    assert str(path) in message, message
    assert "\n" not in message and "allow_pickle" not in message, message
    return message


# --------------------------------------------------------------------------- valid files

def test_joints_npy(real, tmp_path):
    path = tmp_path / "walk.npy"
    np.save(path, real["joints"].astype(np.float64))
    motion = load_motion_file(path)
    assert isinstance(motion, MotionFile)
    assert motion.kind == "joints" and motion.features is None and motion.fps == 20.0
    assert motion.source == str(path) and motion.num_frames == len(real["joints"])
    assert motion.joints.dtype == np.float32 and motion.joints.shape == real["joints"].shape
    np.testing.assert_array_equal(motion.joints, real["joints"])
    np.testing.assert_array_equal(to_joints(path), real["joints"])
    np.testing.assert_array_equal(to_joints(str(path)), real["joints"])


def test_features_npy_gives_recovered_joints(real, tmp_path):
    path = tmp_path / "walk_features.npy"
    np.save(path, real["features"])
    motion = load_motion_file(path)
    assert motion.kind == "features" and motion.fps == 20.0
    assert motion.features.dtype == np.float32
    np.testing.assert_array_equal(motion.features, real["features"])
    assert motion.joints.shape == (len(real["features"]), 22, 3) and motion.joints.dtype == np.float32
    np.testing.assert_allclose(motion.joints, joints_from_features(real["features"]), atol=1e-6)


def test_humanml3d_features_match_reference_joints(fixtures_dir):
    """Features -> joints agrees with the joints the HumanML3D reference pipeline recovered."""
    folder = fixtures_dir / "humanml3d"
    joints = to_joints(folder / "new_joint_vecs__012314.npy")
    reference = np.load(folder / "new_joints__012314.npy")
    assert joints.shape == reference.shape == (170, 22, 3)
    assert np.abs(joints - reference).max() < 1e-4
    # float64 features (a HumanML3D test clip) are accepted and returned as float32
    motion = load_motion_file(folder / "new_joint_vecs__000612.npy")
    assert motion.features.dtype == motion.joints.dtype == np.float32 and motion.num_frames == 199


def test_npz_by_known_name_by_argument_and_single_array(real, tmp_path):
    path = tmp_path / "both.npz"
    np.savez(path, features=real["features"], joints=real["joints"], caption=np.array("a walk"))
    assert load_motion_file(path).kind == "joints"  # 'joints' comes first among the known names
    by_name = load_motion_file(path, array="features")
    assert by_name.kind == "features" and by_name.source == str(path)
    np.testing.assert_array_equal(by_name.features, real["features"])
    single = tmp_path / "single.npz"
    np.savez_compressed(single, sample_0=real["joints"])
    np.testing.assert_array_equal(load_motion_file(single).joints, real["joints"])
    poses = tmp_path / "poses.npz"
    np.savez(poses, poses=real["features"], other=np.zeros(3))
    assert load_motion_file(poses).kind == "features"


def test_bvh_is_imported_at_20_fps(fixtures_dir):
    path = fixtures_dir / "cmu" / "131_01.bvh"
    motion = load_motion_file(path)
    assert motion.kind == "bvh" and motion.features is None and motion.fps == 20.0
    np.testing.assert_array_equal(motion.joints, import_mocap(path).joints)
    assert motion.joints.dtype == np.float32 and motion.joints.shape[1:] == (22, 3)
    np.testing.assert_array_equal(to_joints(path), motion.joints)


@pytest.mark.parametrize("scale", [100.0, 1.0])
def test_bvh_exported_by_remomask_round_trips(fixtures_dir, tmp_path, scale):
    """`remomask export bvh` output (HumanML3D skeleton, cm or m) reads back as the same joints."""
    from remomask.export.bvh import export_bvh

    joints = np.load(fixtures_dir / "humanml3d" / "new_joints__012314.npy")
    path = tmp_path / "exported.bvh"
    export_bvh(path, joints, scale=scale)
    motion = load_motion_file(path)
    assert motion.kind == "bvh" and motion.joints.shape == joints.shape
    assert np.abs(motion.joints - joints).max() < 1e-4  # metres


def test_in_memory_arrays(real):
    torch = pytest.importorskip("torch")
    np.testing.assert_array_equal(to_joints(real["joints"]), real["joints"])
    np.testing.assert_allclose(to_joints(real["features"]), joints_from_features(real["features"]),
                               atol=1e-6)
    np.testing.assert_array_equal(to_joints(torch.from_numpy(real["joints"])), real["joints"])
    assert motion_from_array(real["features"]).kind == "features"
    with pytest.raises(UsageError, match=r"<array>: got an array of shape \(5, 21, 3\)"):
        to_joints(np.zeros((5, 21, 3)))
    with pytest.raises(UsageError, match="non-finite"):
        to_joints(np.full((4, 22, 3), np.nan))


# --------------------------------------------------------------------------- errors

def test_missing_directory_and_extension(real, tmp_path):
    missing = tmp_path / "nope.npy"
    _error(missing, MissingFileError, "does not exist")
    with pytest.raises(FileNotFoundError):
        load_motion_file(missing)
    folder = tmp_path / "motions.npy"
    folder.mkdir()
    message = _error(folder, match="is a directory, not a motion file")
    assert message.startswith(f"{folder} is a directory")
    for name in ("walk.txt", "walk.json", "walk"):
        path = tmp_path / name
        path.write_text("0 0 0\n")
        _error(path, match="unknown motion file extension")
    npy = tmp_path / "walk.npy"
    np.save(npy, real["joints"])
    _error(npy, UsageError, match="array='joints' names an array inside an .npz", array="joints")


def test_not_npy_or_npz(real, tmp_path):
    text = tmp_path / "text.npy"
    text.write_text("frame x y z\n0 0.1 0.9 0.2\n")
    _error(text, match="is not a readable .npy file")
    empty = tmp_path / "empty.npy"
    empty.write_bytes(b"")
    _error(empty, match="is not a readable .npy file")
    zipped = tmp_path / "zipped.npy"
    with open(zipped, "wb") as fh:
        np.savez(fh, joints=real["joints"])
    _error(zipped, match="is an .npz archive")
    plain = tmp_path / "plain.npz"
    with open(plain, "wb") as fh:
        np.save(fh, real["joints"])
    _error(plain, match="is a .npy array, not an .npz")
    truncated = tmp_path / "truncated.npy"
    data = (tmp_path / "plain.npz").read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    _error(truncated, match="is not a valid .npy file")
    bad_header = tmp_path / "bad_header.npy"
    bad_header.write_bytes(data[:10] + b"{'descr': <f4 garbage" + data[40:80])
    _error(bad_header, match="is not a valid .npy file")
    cut_zip = tmp_path / "cut.npz"
    np.savez(cut_zip, joints=real["joints"])
    cut_zip.write_bytes(cut_zip.read_bytes()[:300])
    _error(cut_zip, match="is not a valid .npz file")
    text_npz = tmp_path / "text.npz"
    text_npz.write_text("joints\n")
    _error(text_npz, match="is not an .npz file")


def test_object_and_string_dtypes(real, tmp_path):
    objects = tmp_path / "objects.npy"
    arr = np.empty(2, dtype=object)
    arr[0], arr[1] = real["joints"], "a walk"
    np.save(objects, arr, allow_pickle=True)
    _error(objects, match=r"holds Python objects \(dtype object\), not numbers")
    obj_npz = tmp_path / "objects.npz"
    np.savez(obj_npz, joints=arr)
    _error(obj_npz, match="holds Python objects")
    strings = tmp_path / "strings.npy"
    np.save(strings, np.array(["walk", "run"]))
    _error(strings, match=r"holds strings \(dtype <U4\)")
    str_npz = tmp_path / "strings.npz"
    np.savez(str_npz, motion=np.array(["walk", "jumped"]))
    _error(str_npz, match=r"strings.npz \(array 'motion'\) holds strings \(dtype <U6\)")
    record = tmp_path / "record.npy"
    np.save(record, np.zeros(3, dtype=[("x", "f4"), ("y", "f4")]))
    _error(record, match="structured record array")


@pytest.mark.parametrize("shape, hint", [
    ((40, 21, 3), "21 joints"), ((40, 251), "KIT-ML"), ((40, 66), ""), ((1, 40, 22, 3), "batch of one"),
    ((22, 3), ""), ((), ""),
])
def test_wrong_shapes(tmp_path, shape, hint):
    path = tmp_path / "shape.npy"
    np.save(path, np.zeros(shape, dtype=np.float32))
    message = _error(path, match="expected joints \\(T, 22, 3\\) in metres or HumanML3D features "
                                 "\\(T, 263\\)")
    assert f"got an array of shape {shape}" in message and hint in message


def test_npz_without_a_known_array_lists_names(real, tmp_path):
    path = tmp_path / "many.npz"
    np.savez(path, a=real["joints"], b=real["features"])
    message = _error(path, match="holds arrays 'a', 'b' and none is named joints / features")
    assert "array=" in message
    message = _error(path, match="has no array 'pose'", array="pose")
    assert "'a', 'b'" in message
    np.testing.assert_array_equal(load_motion_file(path, array="a").joints, real["joints"])


def test_zero_frames(tmp_path):
    for shape in ((0, 22, 3), (0, 263)):
        path = tmp_path / f"empty_{len(shape)}.npy"
        np.save(path, np.zeros(shape, dtype=np.float32))
        _error(path, match="holds 0 frames")


def test_non_finite_values(real, tmp_path):
    joints = real["joints"].copy()
    joints[7, 3, 1] = np.nan
    path = tmp_path / "nan.npy"
    np.save(path, joints)
    _error(path, match=r"non-finite value \(NaN/inf: nan at frame 7, joint 3, axis y\)")
    features = real["features"].copy()
    features[5, 100] = np.inf
    path = tmp_path / "inf.npz"
    np.savez(path, features=features)
    _error(path, match=r"non-finite value \(NaN/inf: inf at frame 5, dim 100\)")


def test_absurd_values(real, tmp_path):
    millimetres = tmp_path / "mm.npy"
    np.save(millimetres, real["joints"] * 1000.0 + 10.0)
    _error(millimetres, match=f"from the origin, beyond {MAX_POSITION_M:g} m; joints must be in metres")
    centimetres = tmp_path / "cm.npy"
    np.save(centimetres, real["joints"] * 100.0)
    _error(centimetres, match=f"from the pelvis, beyond {MAX_BODY_EXTENT_M:g} m for a human body")
    features = real["features"].astype(np.float64)  # float64: 1e300 overflows float32
    features[3, 10] = 1e300
    path = tmp_path / "huge.npy"
    np.save(path, features)
    _error(path, match="feature value 1e\\+300 at frame 3, dim 10")


def test_malformed_bvh_names_file_and_line(fixtures_dir, tmp_path):
    text = (fixtures_dir / "cmu" / "131_01.bvh").read_text()
    lines = text.splitlines()
    first = next(k for k, line in enumerate(lines) if line.lstrip().startswith("Frame Time")) + 2
    fields = lines[first - 1].split()
    fields[4] = "nan"
    lines[first - 1] = " ".join(fields)
    path = tmp_path / "corrupt.bvh"
    path.write_text("\n".join(lines) + "\n")
    message = _error(path, MocapFormatError, match=f"line {first}: frame 0, joint")
    assert isinstance(MocapFormatError(message), InputFileError)
    renamed = tmp_path / "renamed.bvh"
    renamed.write_text(text.replace("Knee", "Shin"))
    _error(renamed, MocapFormatError, match="unknown BVH skeleton")
