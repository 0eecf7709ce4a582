"""Mocap import (BVH, ASF/AMC -> 22 HumanML3D joints) on real data.

Data: the CMU fixtures (``shared/data/fixtures/cmu``) and one clip each from the raw archives
``shared/data/raw/bandai-namco-1.tar.xz`` and ``hdm05-subset.tar.xz``, read straight from the
tar files once per session (no unpacked copy is needed).
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import numpy as np
import pytest
from conftest import read_archive_members
from scipy.spatial.transform import Rotation, Slerp

from remomask.data.mocap import (
    MocapFormatError,
    asf_amc_motion,
    bvh_motion,
    find_asf,
    import_mocap,
    parse_amc,
    parse_asf,
    parse_bvh,
    to_humanml3d,
)
from remomask.data.mocap.bvh import quat_from_euler, quat_slerp
from remomask.data.skeleton import HUMANML3D

BANDAI_MEMBER = "Bandai-Namco-Research-Motiondataset-1/data/dataset-1_walk_normal_001.bvh"
HDM05_ASF = "hdm05/train/5/HDM_bd.asf"
HDM05_AMC = "hdm05/train/5/HDM_bd_jogLeftCircle4StepsRstart_001_120.amc"
INCH_PER_ASF_UNIT = 1 / 0.45  # CMU ":units length 0.45"
M_PER_ASF_UNIT = 0.0254 * INCH_PER_ASF_UNIT

# BVH joint of the CMU conversion (01_01.bvh naming) -> ASF bone whose start it is.
CMU_BVH_TO_ASF = {
    "Hips": "root", "LHipJoint": "lhipjoint", "LeftUpLeg": "lfemur", "LeftLeg": "ltibia",
    "LeftFoot": "lfoot", "LeftToeBase": "ltoes", "RHipJoint": "rhipjoint", "RightUpLeg": "rfemur",
    "RightLeg": "rtibia", "RightFoot": "rfoot", "RightToeBase": "rtoes", "LowerBack": "lowerback",
    "Spine": "upperback", "Spine1": "thorax", "Neck": "lowerneck", "Neck1": "upperneck",
    "Head": "head", "Head_End": "head_end", "LeftShoulder": "lclavicle", "LeftArm": "lhumerus",
    "LeftForeArm": "lradius", "LeftHand": "lwrist", "RightShoulder": "rclavicle",
    "RightArm": "rhumerus", "RightForeArm": "rradius", "RightHand": "rwrist",
}
BELOW_THORAX = ("Hips", "LHipJoint", "LeftUpLeg", "LeftLeg", "LeftFoot", "LeftToeBase", "RHipJoint",
                "RightUpLeg", "RightLeg", "RightFoot", "RightToeBase", "LowerBack", "Spine", "Spine1")


@pytest.fixture(scope="session")
def raw_dir(fixtures_dir: Path) -> Path:
    raw = fixtures_dir.parent / "raw"
    if not raw.is_dir():
        pytest.fail(f"raw mocap archives not found at {raw}; set REMOMASK_SHARED")
    return raw


@pytest.fixture(scope="session")
def bandai_bytes(raw_dir: Path) -> bytes:
    return read_archive_members(raw_dir / "bandai-namco-1.tar.xz", {BANDAI_MEMBER})[BANDAI_MEMBER]


@pytest.fixture(scope="session")
def hdm05_bytes(raw_dir: Path) -> dict[str, bytes]:
    return read_archive_members(raw_dir / "hdm05-subset.tar.xz", {HDM05_ASF, HDM05_AMC})


@pytest.fixture(scope="session")
def cmu(fixtures_dir: Path) -> Path:
    return fixtures_dir / "cmu"


@pytest.fixture(scope="session")
def clips(bandai_bytes, hdm05_bytes, cmu) -> dict:
    """One imported clip (20 fps) per source, with its source frame count and rate."""
    hdm_asf = parse_asf(hdm05_bytes[HDM05_ASF], name=HDM05_ASF)
    return {
        "bandai": import_mocap(bandai_bytes, name=BANDAI_MEMBER),
        "hdm05": import_mocap(hdm05_bytes[HDM05_AMC], name=HDM05_AMC, asf=hdm_asf),
        "cmu_bvh_01": import_mocap(cmu / "01_01.bvh"),
        "cmu_bvh_131": import_mocap(cmu / "131_01.bvh"),
        "cmu_asf_11": import_mocap(cmu / "11_01.amc"),
    }


# --------------------------------------------------------------------------- rotation helpers

@pytest.mark.parametrize("order", ["ZXY", "ZYX", "XYZ", "YZX", "xyz", "zyx", "yxz", "xz", "Z"])
def test_quat_from_euler_matches_scipy(order):
    angles = np.random.default_rng(0).uniform(-180, 180, size=(64, len(order)))
    ours = Rotation.from_quat(quat_from_euler(order, angles, degrees=True)).as_matrix()
    ref = Rotation.from_euler(order, angles, degrees=True).as_matrix()
    np.testing.assert_allclose(ours, ref, atol=1e-12)


def test_quat_slerp_matches_scipy():
    rng = np.random.default_rng(1)
    keys = Rotation.random(2, random_state=rng)
    weights = rng.uniform(0, 1, size=32)
    ref = Slerp([0.0, 1.0], keys)(weights).as_matrix()
    q = keys.as_quat()
    q1 = -q[1]  # the same rotation with the opposite sign: slerp must still take the short arc
    ours = Rotation.from_quat(quat_slerp(np.broadcast_to(q[0], (32, 4)), np.broadcast_to(q1, (32, 4)),
                                         weights)).as_matrix()
    np.testing.assert_allclose(ours, ref, atol=1e-10)


# --------------------------------------------------------------------------- forward kinematics

def test_bvh_forward_kinematics_matches_bvhio(bandai_bytes, tmp_path):
    """World positions of every Bandai joint equal those of the bvhio library (independent code)."""
    bvhio = pytest.importorskip("bvhio")
    path = tmp_path / "clip.bvh"
    path.write_bytes(bandai_bytes)
    motion = bvh_motion(parse_bvh(bandai_bytes, name=BANDAI_MEMBER))
    ours = motion.positions()
    root = bvhio.readAsHierarchy(str(path))
    compared = 0
    for frame in (0, motion.num_frames // 2, motion.num_frames - 1):
        root.loadPose(frame)
        for joint, _, _ in root.layout():
            ref = np.array(joint.PositionWorld, dtype=np.float64)
            np.testing.assert_allclose(ours[frame, motion.index(joint.Name)], ref, atol=1e-3)  # cm
            compared += 1
    assert compared == 3 * 22


def test_cmu_trial_01_01_bvh_equals_asf_amc(cmu):
    """CMU 01_01 from its BVH and from its ASF/AMC.

    Frames: both 120 fps; the BVH file has one extra leading frame (a T-pose the conversion adds,
    which ``import_mocap`` drops), so BVH file frame i + 1 is AMC frame i. Alignment: none; both
    are in the same world frame and unit (1/0.45 inch), so positions are compared as they are.
    The BVH conversion drops the ASF thorax bone (its Neck and clavicles sit at the thorax start,
    offset 0), so every joint above the thorax is exactly one thorax vector lower in the BVH;
    with the thorax length set to 0 in the ASF, all 22 joints agree within 1 cm.
    """
    bvh = parse_bvh(cmu / "01_01.bvh")
    skeleton = parse_asf(cmu / "01.asf")
    amc = parse_amc(cmu / "01_01.amc", skeleton)
    assert bvh.fps == pytest.approx(120.0, rel=1e-4)
    assert bvh.motion.shape[0] == amc.num_frames + 1 == 2752
    bvh_pos = bvh_motion(bvh).positions()[1:]
    bvh_names = bvh_motion(bvh).names

    asf_motion = asf_amc_motion(skeleton, amc, 120.0)
    asf_pos = asf_motion.positions()
    thorax = skeleton.bones["thorax"].length
    for bvh_name, bone in CMU_BVH_TO_ASF.items():
        dist = np.linalg.norm(bvh_pos[:, bvh_names.index(bvh_name)] - asf_pos[:, asf_motion.index(bone)],
                              axis=-1) * M_PER_ASF_UNIT
        if bvh_name in BELOW_THORAX:
            assert dist.max() < 0.01, bvh_name
        else:  # exactly the missing thorax bone
            assert np.abs(dist - thorax * M_PER_ASF_UNIT).max() < 0.01, bvh_name

    # All 22 joints: the BVH import vs the same joint table applied to the thorax-less ASF.
    no_thorax = dataclasses.replace(skeleton, bones={
        **skeleton.bones, "thorax": dataclasses.replace(skeleton.bones["thorax"], length=0.0)})
    flat = asf_amc_motion(no_thorax, amc, 120.0)
    bvh_joint_names = list(CMU_BVH_TO_ASF)
    flat_pos = flat.positions()[:, [flat.index(CMU_BVH_TO_ASF[n]) for n in bvh_joint_names]]
    joints_from_asf = to_humanml3d(flat_pos, bvh_joint_names, "cmu_bvh") * M_PER_ASF_UNIT
    joints_from_bvh = import_mocap(cmu / "01_01.bvh", target_fps=None).joints
    assert joints_from_bvh.shape == joints_from_asf.shape == (2751, 22, 3)
    assert np.linalg.norm(joints_from_bvh - joints_from_asf, axis=-1).max() < 0.01

    # The public imports at 20 fps: same frames, and the same position for every joint that
    # does not depend on the thorax.
    same = [HUMANML3D.joint_names.index(n) for n in (
        "pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee", "left_ankle",
        "right_ankle", "left_foot", "right_foot")]
    from_bvh = import_mocap(cmu / "01_01.bvh")
    from_amc = import_mocap(cmu / "01_01.amc")
    assert from_bvh.num_frames == from_amc.num_frames == 459  # floor(2750 / 6) + 1
    dist = np.linalg.norm(from_bvh.joints[:, same] - from_amc.joints[:, same], axis=-1)
    assert dist.max() < 0.01


# --------------------------------------------------------------------------- the 22 joints at 20 fps

@pytest.mark.parametrize("key", ["bandai", "hdm05", "cmu_bvh_131"])
def test_bone_lengths_constant_after_resampling(clips, key):
    joints = clips[key].joints.astype(np.float64)
    parents = HUMANML3D.parents
    lengths = np.linalg.norm(joints[:, 1:] - joints[:, parents[1:]], axis=-1)  # (T, 21)
    assert lengths.min() > 0.02  # no collapsed bone (IK needs a direction)
    assert np.abs(lengths - lengths[0]).max() < 1e-4  # metres


def test_bandai_slerp_keeps_source_bone_lengths(bandai_bytes):
    """30 -> 20 fps goes through rotation space: bone lengths equal those of the 30 fps clip."""
    native = import_mocap(bandai_bytes, name=BANDAI_MEMBER, target_fps=None).joints.astype(np.float64)
    resampled = import_mocap(bandai_bytes, name=BANDAI_MEMBER).joints.astype(np.float64)
    parents = HUMANML3D.parents
    native_len = np.linalg.norm(native[0, 1:] - native[0, parents[1:]], axis=-1)
    res_len = np.linalg.norm(resampled[:, 1:] - resampled[:, parents[1:]], axis=-1)
    assert np.abs(res_len - native_len).max() < 1e-5
    # every second output frame is a source frame (t = 0, 0.1 s, ...): identical poses there
    np.testing.assert_allclose(resampled[::2], native[::3][: len(resampled[::2])], atol=1e-5)


@pytest.mark.parametrize("key", ["bandai", "hdm05", "cmu_bvh_01", "cmu_bvh_131", "cmu_asf_11"])
def test_upright_metres_right_handed_and_20fps(clips, key):
    clip = clips[key]
    joints = clip.joints.astype(np.float64)
    names = HUMANML3D.joint_names
    y = joints[..., 1]
    head, pelvis = y[:, names.index("head")], y[:, names.index("pelvis")]
    ankles = np.maximum(y[:, names.index("left_ankle")], y[:, names.index("right_ankle")])
    assert np.mean((head > pelvis) & (pelvis > ankles)) > 0.95
    # Head joint (SMPL's sits at the skull base, 0.15-0.25 m below the crown) above the lowest
    # foot joint: 1.2-1.9 m for a 1.4-2.0 m person.
    feet = [names.index(n) for n in ("left_ankle", "right_ankle", "left_foot", "right_foot")]
    standing = np.percentile(head - y[:, feet].min(axis=1), 90)
    assert 1.2 < standing < 1.9, standing
    # Right-handed, not mirrored: the left hip lies on up x forward, forward = ankle -> ball.
    forward = (joints[:, names.index("left_foot")] - joints[:, names.index("left_ankle")]
               + joints[:, names.index("right_foot")] - joints[:, names.index("right_ankle")])
    left = np.cross(np.array([0.0, 1.0, 0.0]), forward)
    across = joints[:, names.index("left_hip")] - joints[:, names.index("right_hip")]
    assert np.mean(np.sum(across * left, axis=-1) > 0) > 0.95
    # 20 fps, one frame per 1/20 s of the clip
    assert clip.fps == 20.0 and clip.joints.dtype == np.float32 and clip.joints.shape[1:] == (22, 3)
    assert clip.num_frames == int(np.floor(clip.duration * 20.0 + 1e-6)) + 1
    assert abs(clip.num_frames - clip.source_frames / clip.source_fps * 20.0) <= 1.0


def test_stature_from_head_top(cmu, hdm05_bytes):
    """The ASF head bone ends at the crown: standing height 1.4-2.0 m in metres (units 1/0.45 in)."""
    for asf, amc, name in ((cmu / "01.asf", cmu / "01_01.amc", "01_01"),
                           (hdm05_bytes[HDM05_ASF], hdm05_bytes[HDM05_AMC], HDM05_AMC)):
        skeleton = parse_asf(asf, name=str(name))
        motion = asf_amc_motion(skeleton, parse_amc(amc, skeleton, name=str(name), frame_step=6), 20.0)
        pos = motion.positions() * skeleton.metres_per_unit
        feet = [motion.index(b) for b in ("lfoot", "rfoot", "ltoes", "rtoes")]
        stature = pos[:, motion.index("head_end"), 1] - pos[:, feet, 1].min(axis=1)
        assert 1.4 < np.percentile(stature, 90) < 2.0, (name, np.percentile(stature, 90))


def test_sources_detected_and_bytes_equal_path(cmu):
    from_path = import_mocap(cmu / "131_02.bvh")
    from_bytes = import_mocap((cmu / "131_02.bvh").read_bytes(), name="131_02.bvh")
    assert from_path.source == from_bytes.source == "cmu_bvh"
    np.testing.assert_array_equal(from_path.joints, from_bytes.joints)
    assert find_asf(cmu / "11_01.amc").name == "11.asf"
    assert import_mocap(cmu / "11_01.amc").source == "cmu_asf"


# --------------------------------------------------------------------------- malformed input

def _raises(data, match: str, **kwargs) -> str:
    with pytest.raises(MocapFormatError, match=match) as info:
        import_mocap(data, **kwargs)
    message = str(info.value)
    assert kwargs["name"] in message
    return message


def test_truncated_bvh(bandai_bytes):
    text = bandai_bytes.decode()
    cut = text[: int(len(text) * 0.8)]
    cut = cut[: cut.rindex("\n")]  # whole lines only: 'Frames:' now overstates the count
    message = _raises(cut.encode(), "truncated", name="cut.bvh")
    assert "line" in message and "declares 195 frames" in message


def _line_of(text: str, prefix: str) -> int:
    """1-based number of the first line of ``text`` that starts with ``prefix`` (after spaces)."""
    return next(k for k, line in enumerate(text.splitlines(), 1) if line.lstrip().startswith(prefix))


def test_bvh_wrong_channel_count(bandai_bytes):
    text = bandai_bytes.decode()
    bad = text.replace("CHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation",
                       "CHANNELS 3 Zrotation Xrotation Yrotation", 1)
    message = _raises(bad.encode(), "129 channels", name="bad.bvh")
    first_frame = _line_of(text, "Frame Time:") + 1
    assert f"line {first_frame}:" in message and "132 values" in message


def test_bvh_broken_hierarchy(bandai_bytes):
    text = bandai_bytes.decode()
    bad = text.replace("OFFSET 15.7357 0 0", "OFFSET 15.7357 zero 0", 1)
    message = _raises(bad.encode(), "not a number", name="bad.bvh")
    assert f"line {_line_of(text, 'OFFSET 15.7357 0 0')}:" in message


def test_unknown_skeleton(cmu):
    text = (cmu / "131_01.bvh").read_text()
    renamed = text.replace("Knee", "Shin")
    _raises(renamed.encode(), "unknown BVH skeleton", name="renamed.bvh")
    _raises((cmu / "01_01.bvh").read_bytes(), "does not match the 'bandai'", name="01_01.bvh",
            source="bandai")
    _raises((cmu / "01_01.bvh").read_bytes(), "no joint mapping", name="01_01.bvh", source="kit")


def test_amc_frame_missing_a_bone(cmu):
    lines = (cmu / "11_01.amc").read_text().splitlines()
    frame_5 = lines.index("5")
    del lines[frame_5 + 3]  # a bone line of frame 5
    skeleton = parse_asf(cmu / "11.asf")
    message = _raises("\n".join(lines).encode(), "missing", name="11_01.amc", asf=skeleton)
    assert f"line {frame_5 + 1}" in message and "frame 5" in message


def test_amc_wrong_value_count_and_missing_asf(cmu):
    skeleton = parse_asf(cmu / "11.asf")
    lines = (cmu / "11_01.amc").read_text().splitlines()
    row = next(k for k, line in enumerate(lines) if line.startswith("ltibia ") and k > 100)
    lines[row] += " 0.5"  # ltibia has one dof (rx): now two values
    # target_fps=None reads every frame (at 20 fps only the kept frames' values are read)
    message = _raises("\n".join(lines).encode(), "ltibia", name="11_01.amc", asf=skeleton,
                      target_fps=None)
    assert f"line {row + 1}:" in message and "1 values" in message
    _raises("\n".join(lines).encode(), "needs its skeleton", name="11_01.amc")


# --------------------------------------------------------------------------- hostile / corrupt input
# Each file below is a real clip (Bandai-Namco 1, CMU 11_01) with one edit.

def _after_root_channels(text: str, inserted: str) -> tuple[str, int]:
    """``text`` with ``inserted`` placed right after the ROOT's CHANNELS line; also the 1-based line
    number at which ``inserted`` starts."""
    lines = text.split("\n")
    at = next(k for k, line in enumerate(lines) if line.lstrip().startswith("CHANNELS")) + 1
    return "\n".join(lines[:at] + inserted.rstrip("\n").split("\n") + lines[at:]), at + 1


def test_bvh_5000_deep_hierarchy_is_rejected_not_recursion_error(bandai_bytes):
    from remomask.data.mocap.bvh import MAX_BVH_DEPTH

    depth = 5000
    chain = "".join(f"JOINT deep_{i}\n{{\nOFFSET 0 0 1\n" for i in range(depth)) + "}\n" * depth
    text, first = _after_root_channels(bandai_bytes.decode(), chain)
    message = _raises(text.encode(), f"nested more than {MAX_BVH_DEPTH} deep", name="deep.bvh")
    # ROOT is depth 1, deep_0 depth 2: deep_{MAX - 1} is the first joint too deep (3 lines a joint)
    assert f"deep.bvh: line {first + 3 * (MAX_BVH_DEPTH - 1)}:" in message
    assert "\n" not in message
    with pytest.raises(MocapFormatError, match="nested more than"):
        parse_bvh(text.encode(), name="deep.bvh")


def test_bvh_absurd_joint_count_is_rejected(bandai_bytes):
    from remomask.data.mocap.bvh import MAX_BVH_JOINTS

    wide = "".join(f"JOINT wide_{i}\n{{\nOFFSET 0 0 1\n}}\n" for i in range(MAX_BVH_JOINTS + 10))
    text, first = _after_root_channels(bandai_bytes.decode(), wide)
    message = _raises(text.encode(), f"more than {MAX_BVH_JOINTS} joints", name="wide.bvh")
    # joint_Root is joint 0, wide_0 joint 1: wide_{MAX - 1} is joint MAX + 1, the first too many
    assert f"wide.bvh: line {first + 4 * (MAX_BVH_JOINTS - 1)}:" in message


def _edit_bvh_value(text: str, frame: int, column: int, value: str) -> tuple[str, int]:
    """``text`` with MOTION value ``column`` of ``frame`` replaced; also the 1-based line of that frame."""
    lines = text.split("\n")
    line = _line_of(text, "Frame Time:") + 1 + frame
    fields = lines[line - 1].split()
    fields[column] = value
    lines[line - 1] = " ".join(fields)
    return "\n".join(lines), line


@pytest.mark.parametrize("column, value, match", [
    (3, "nan", "joint joint_Root Zrotation is nan, not a finite number"),
    (8, "inf", "joint Hips Zposition is inf, not a finite number"),
    (6, "1e300", "joint Hips Xposition is 1e\\+300, beyond the accepted \\+-100000 units"),
    (10, "-1e300", "joint Hips Xrotation is -1e\\+300, beyond the accepted \\+-100000 degrees"),
])
def test_bvh_non_finite_and_absurd_values_are_rejected(bandai_bytes, column, value, match):
    text, line = _edit_bvh_value(bandai_bytes.decode(), 57, column, value)
    message = _raises(text.encode(), match, name="corrupt.bvh")
    assert message.startswith(f"corrupt.bvh: line {line}: frame 57,")


def test_bvh_non_finite_offset_and_frame_time_are_rejected(bandai_bytes):
    text = bandai_bytes.decode()
    bad = text.replace("OFFSET 15.7357 0 0", "OFFSET 15.7357 nan 0", 1)
    message = _raises(bad.encode(), "'nan' is not a finite length", name="bad.bvh")
    assert f"line {_line_of(text, 'OFFSET 15.7357 0 0')}:" in message
    bad = re.sub(r"Frame Time:\s*\S+", "Frame Time: inf", text)
    message = _raises(bad.encode(), "frame time 'inf'", name="bad.bvh")
    assert f"line {_line_of(text, 'Frame Time:')}:" in message


def test_bvh_with_zero_frames_is_rejected(bandai_bytes):
    text = bandai_bytes.decode()
    header = text[: text.index("Frame Time:")]
    header = re.sub(r"Frames:\s*\d+", "Frames: 0", header)
    empty = header + "Frame Time: 0.0333333\n"
    message = _raises(empty.encode(), "'Frames: 0': the file holds no motion", name="empty.bvh")
    assert f"empty.bvh: line {_line_of(text, 'Frames:')}:" in message


@pytest.mark.parametrize("bone, index, value, match", [
    ("ltibia", 1, "nan", "ltibia rx is nan, not a finite number"),
    ("root", 1, "1e300", "root TX is 1e\\+300, beyond the accepted \\+-100000 units"),
    ("lfemur", 2, "-inf", "lfemur ry is -inf, not a finite number"),
])
def test_amc_non_finite_and_absurd_values_are_rejected(cmu, bone, index, value, match):
    skeleton = parse_asf(cmu / "11.asf")
    lines = (cmu / "11_01.amc").read_text().splitlines()
    row = next(k for k, line in enumerate(lines) if line.startswith(f"{bone} ") and k > 100)
    fields = lines[row].split()
    fields[index] = value
    lines[row] = " ".join(fields)
    frame = next(lines[k] for k in range(row, -1, -1) if lines[k].strip().isdigit())
    message = _raises("\n".join(lines).encode(), match, name="11_01.amc", asf=skeleton,
                      target_fps=None)
    assert message.startswith(f"11_01.amc: line {row + 1}: frame {frame}, ")


def test_asf_non_finite_bone_is_rejected(cmu):
    text = (cmu / "11.asf").read_text()
    lines = text.splitlines()
    bonedata = lines.index(":bonedata")
    row = next(k for k, line in enumerate(lines) if k > bonedata and line.split()[:1] == ["length"])
    lines[row] = "  length nan"
    begin = max(k for k in range(row) if lines[k].strip() == "begin")
    with pytest.raises(MocapFormatError, match="not finite") as info:
        parse_asf("\n".join(lines).encode(), name="11.asf")
    assert str(info.value).startswith(f"11.asf: line {begin + 1}: bone ")


# --------------------------------------------------------------------------- data build: name the clip

def _bandai_raw(tmp_path: Path, files: dict[str, bytes]) -> Path:
    """A raw folder with an unpacked Bandai-Namco-1 holding ``files`` (name -> BVH bytes)."""
    raw = tmp_path / "raw"
    data = raw / "Bandai-Namco-Research-Motiondataset-1" / "data"
    data.mkdir(parents=True)
    for name, payload in files.items():
        (data / name).write_bytes(payload)
    return raw


@pytest.mark.parametrize("kind", ["deep", "nan"])
def test_data_build_names_the_failing_clip(bandai_bytes, tmp_path, kind):
    """One bad clip among good ones: the build fails with one line naming that clip's file and line."""
    from remomask.data.build import BuildConfig, build_embedded_dataset

    text = bandai_bytes.decode()
    if kind == "deep":
        chain = "".join(f"JOINT deep_{i}\n{{\nOFFSET 0 0 1\n" for i in range(5000)) + "}\n" * 5000
        bad, _ = _after_root_channels(text, chain)
        match = "nested more than"
    else:
        bad, _ = _edit_bvh_value(text, 12, 4, "nan")
        match = "joint_Root Xrotation is nan"
    raw = _bandai_raw(tmp_path, {"dataset-1_walk_normal_001.bvh": bandai_bytes,
                                 "dataset-1_run_happy_001.bvh": bad.encode()})
    cfg = BuildConfig(raw=raw, out=tmp_path / "out", workers=1, sources=("bandai1",))
    with pytest.raises(MocapFormatError, match=match) as info:
        build_embedded_dataset(cfg, progress=False)
    message = str(info.value)
    bad_path = raw / "Bandai-Namco-Research-Motiondataset-1" / "data" / "dataset-1_run_happy_001.bvh"
    assert message.startswith(f"{bad_path}: line ") and "\n" not in message


def test_data_build_clip_errors_name_the_archive_member(bandai_bytes):
    """Inside an archive a clip is named ``<archive>:<member>``; failures that are not format errors
    (here a RecursionError-free but numerically broken clip) keep their message behind that name."""
    from remomask.data.build import SourceClip, _clip_error, _import_clip
    from remomask.data.labels import ClipLabels

    origin = f"bandai-namco-1.tar.xz:{BANDAI_MEMBER}"
    bad, line = _edit_bvh_value(bandai_bytes.decode(), 3, 7, "-inf")
    clip = SourceClip("bandai1", Path(BANDAI_MEMBER).name, ClipLabels("bandai1", "walk", "normal"),
                      bad.encode(), origin=origin)
    with pytest.raises(MocapFormatError) as info:
        _import_clip(clip)
    assert str(info.value).startswith(f"{origin}: line {line}: frame 3, joint Hips Yposition is -inf")
    wrapped = _clip_error(origin, ZeroDivisionError("float division by zero"))
    assert isinstance(wrapped, MocapFormatError)
    assert str(wrapped).startswith(f"{origin}: ZeroDivisionError: float division by zero;")
