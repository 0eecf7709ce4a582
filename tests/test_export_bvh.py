"""BVH export (project issue 7, item 3): ``write_bvh`` / ``export_bvh``, ``remomask export-bvh`` and
``remomask generate --bvh``.

The issue's test: write the BVH, parse it back with a BVH library and compare its forward-kinematics
positions with the input joints, within 2 cm. Done here on real motions (the HumanML3D fixture clip
012314 as joints and as features, and embedded-dataset clips from Bandai-Namco 1 and 2 and HDM05),
with two independent readers: the ``bvhio`` library (its own parser and glm maths, float32) and our
parser ``remomask.data.mocap.bvh``. The measured errors are printed (``pytest -s``) and asserted with
the observed margin, far inside the issue's 2 cm.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from remomask.cli import main
from remomask.data.mocap.bvh import bvh_motion, parse_bvh
from remomask.data.skeleton import HUMANML3D
from remomask.export import BvhExportError, export_bvh, rest_directions, solve_bvh, write_bvh
from test_pipeline import parts, pipe_dir  # noqa: F401  (the cheap real-component pipeline of the generate tests)

NAMES = HUMANML3D.joint_names
LEAVES = ("left_foot", "right_foot", "head", "left_wrist", "right_wrist")


# ---- real motions ----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def fixture_joints(fixtures_dir) -> np.ndarray:
    """HumanML3D clip 012314, (170, 22, 3) metres, 20 fps (the released new_joints)."""
    return np.load(fixtures_dir / "humanml3d" / "new_joints__012314.npy")


@pytest.fixture(scope="module")
def fixture_features(fixtures_dir) -> np.ndarray:
    """HumanML3D clip 012314 as released 263-d features (T, 263)."""
    return np.load(fixtures_dir / "humanml3d" / "new_joint_vecs__012314.npy")


@pytest.fixture(scope="module")
def embedded_clips() -> dict[str, np.ndarray]:
    """The first segment of >= 60 frames of each source of the embedded dataset: {source: (T, 22, 3)}."""
    from remomask.data.embedded import EMBEDDED_DIR
    from remomask.data.storage import load_joint_archive

    labels = json.loads((EMBEDDED_DIR / "labels.json").read_text())
    archive = load_joint_archive(EMBEDDED_DIR / "joints.npz")
    clips: dict[str, np.ndarray] = {}
    for sid in sorted(archive):
        source = labels[sid]["source"]
        if source not in clips and not labels[sid]["mirrored"] and len(archive[sid]) >= 60:
            clips[source] = archive[sid]
    assert {"bandai1", "bandai2", "hdm05"} <= set(clips), sorted(clips)
    return clips


def _fk_ours(path, scale: float = 100.0) -> np.ndarray:
    """World positions (T, 22, 3) in metres of the HumanML3D joints of a BVH, by our parser's FK."""
    motion = bvh_motion(parse_bvh(path))
    return motion.positions()[:, [motion.index(n) for n in NAMES]] / scale


def _fk_bvhio(path, scale: float = 100.0) -> np.ndarray:
    """World positions (T, 22, 3) in metres of the HumanML3D joints of a BVH, by the bvhio library."""
    bvhio = pytest.importorskip("bvhio")
    root = bvhio.readAsHierarchy(str(path))
    joints = {joint.Name: joint for joint, _, _ in root.layout()}
    frames = len(parse_bvh(path).motion)
    out = np.empty((frames, len(NAMES), 3))
    for t in range(frames):
        root.loadPose(t)
        for k, name in enumerate(NAMES):
            out[t, k] = np.array(joints[name].PositionWorld, dtype=np.float64)
    return out / scale


def _errors(fk: np.ndarray, joints: np.ndarray) -> tuple[float, float]:
    dist = np.linalg.norm(fk - np.asarray(joints, dtype=np.float64), axis=-1)
    return float(dist.max()), float(dist.mean())


# ---- round trips --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["fixture_012314_joints", "fixture_012314_features", "bandai1", "bandai2", "hdm05"])
def test_round_trip_matches_input_joints(name, fixture_joints, fixture_features, embedded_clips, tmp_path):
    """Write, read back with bvhio and with our parser, FK: every joint of every frame within 2 cm.

    Measured (cm, max / mean, both readers agree to 1e-4 cm): fixture joints and features 0.0002 /
    0.00003; Bandai-Namco 0.004 / 0.001 (the dataset's int16 storage); HDM05 0.004 / 0.001 (spine1,
    neck and collars get position channels, see test_hdm05_needs_position_channels).
    """
    path = tmp_path / f"{name}.bvh"
    if name == "fixture_012314_features":
        from remomask.data.features import joints_from_features

        joints = joints_from_features(fixture_features)
        solved = export_bvh(path, fixture_features)
    else:
        joints = fixture_joints if name.startswith("fixture") else embedded_clips[name]
        solved = write_bvh(path, joints)
    ours = _errors(_fk_ours(path), joints)
    lib = _errors(_fk_bvhio(path), joints)
    print(f"\n{name}: T={len(joints)}  bvhio max {lib[0] * 100:.5f} cm mean {lib[1] * 100:.5f} cm | "
          f"ours max {ours[0] * 100:.5f} cm mean {ours[1] * 100:.5f} cm | reported {solved.max_error_m * 100:.5f} cm")
    assert lib[0] < 0.02 and ours[0] < 0.02                       # the bound: 2 cm
    assert lib[0] < 1e-4 and ours[0] < 1e-4                       # measured: < 0.01 cm on all five
    assert abs(ours[0] - solved.max_error_m) < 1e-5               # the reported error is what the file gives


def test_rigid_mocap_needs_no_extra_channels(fixture_joints, embedded_clips, tmp_path):
    """SMPL (HumanML3D) and Bandai-Namco skeletons are rigid: rotation channels only (root excepted), and the
    classic rotation-only file is the same file."""
    for name, joints in (("fixture", fixture_joints), ("bandai1", embedded_clips["bandai1"]),
                         ("bandai2", embedded_clips["bandai2"])):
        auto = write_bvh(tmp_path / f"{name}_auto.bvh", joints)
        root_only = write_bvh(tmp_path / f"{name}_root.bvh", joints, positions="root")
        assert auto.position_channels.tolist() == [True] + [False] * 21, name
        assert (tmp_path / f"{name}_auto.bvh").read_text() == (tmp_path / f"{name}_root.bvh").read_text()
        assert root_only.max_error_m < 1e-4


def test_hdm05_needs_position_channels(embedded_clips, tmp_path):
    """HDM05's spine1 and collars hang off rotating ASF bones, so the 22-joint groups at the pelvis and spine3
    are not rigid: rotations alone miss by centimetres (measured 4.9 cm on this clip); the default adds
    position channels only on the joints that need them and is exact."""
    joints = embedded_clips["hdm05"]
    root_only = write_bvh(tmp_path / "root.bvh", joints, positions="root")
    auto = write_bvh(tmp_path / "auto.bvh", joints)
    measured = _errors(_fk_ours(tmp_path / "root.bvh"), joints)[0]
    print(f"\nhdm05 rotation-only: max {measured * 100:.3f} cm; auto: max {auto.max_error_m * 100:.5f} cm, "
          f"position channels on {[n for n, c in zip(auto.names, auto.position_channels) if c]}")
    assert abs(measured - root_only.max_error_m) < 1e-5          # honestly reported
    assert measured > 2e-3
    flagged = {n for n, c in zip(auto.names, auto.position_channels) if c}
    assert {"pelvis", "spine1"} <= flagged and len(flagged) <= 8
    assert auto.max_error_m < 1e-4
    text = (tmp_path / "auto.bvh").read_text()
    assert text.count("CHANNELS 6") == len(flagged) and text.count("CHANNELS 3") == 22 - len(flagged)


def test_all_positions_is_exact_and_readable(embedded_clips, tmp_path):
    joints = embedded_clips["hdm05"]
    path = tmp_path / "all.bvh"
    solved = write_bvh(path, joints, positions="all")
    assert solved.position_channels.all()
    assert _errors(_fk_bvhio(path), joints)[0] < 1e-4 and _errors(_fk_ours(path), joints)[0] < 1e-4


@pytest.mark.parametrize("order", ["ZYX", "XYZ", "YXZ"])
def test_other_rotation_orders_and_metres(order, fixture_joints, tmp_path):
    path = tmp_path / "m.bvh"
    write_bvh(path, fixture_joints, order=order, scale=1.0, fps=30)
    bvh = parse_bvh(path)
    assert bvh.joints[0].channels[3:] == tuple(f"{a}rotation" for a in order)
    assert bvh.fps == pytest.approx(30.0, rel=1e-6)
    assert _errors(_fk_ours(path, scale=1.0), fixture_joints)[0] < 1e-4
    assert _errors(_fk_bvhio(path, scale=1.0), fixture_joints)[0] < 1e-4


def test_file_layout(fixture_joints, tmp_path):
    """22 joints with the skeleton's names and parents, 5 End Sites, centimetres, 20 fps, one line per frame."""
    path = tmp_path / "x.bvh"
    solved = write_bvh(path, fixture_joints)
    bvh = parse_bvh(path)
    real = [j for j in bvh.joints if not j.name.endswith("_End")]
    assert sorted(j.name for j in real) == sorted(NAMES)
    names = [j.name for j in bvh.joints]
    for joint in real:
        parent = names[joint.parent] if joint.parent >= 0 else None
        expected = HUMANML3D.parents[NAMES.index(joint.name)]
        assert parent == (NAMES[expected] if expected >= 0 else None), joint.name
    assert sorted(j.name for j in bvh.joints if j.name.endswith("_End")) == sorted(f"{n}_End" for n in LEAVES)
    root = bvh.joints[0]
    assert root.name == "pelvis" and root.offset == (0.0, 0.0, 0.0)
    assert root.channels == ("Xposition", "Yposition", "Zposition", "Zrotation", "Xrotation", "Yrotation")
    assert all(j.channels == ("Zrotation", "Xrotation", "Yrotation") for j in real[1:])
    assert bvh.frame_time == 0.05 and bvh.motion.shape == (170, 6 + 21 * 3)
    # centimetres: offsets are the clip's bone lengths x 100, along the T-pose rest directions
    lengths = np.linalg.norm(fixture_joints[:, 1:] - fixture_joints[:, HUMANML3D.parents[1:]], axis=-1).mean(0)
    offsets = np.array([real_j.offset for real_j in sorted(real, key=lambda j: NAMES.index(j.name))])
    np.testing.assert_allclose(np.linalg.norm(offsets[1:], axis=-1), lengths * 100, rtol=1e-5, atol=1e-5)
    knee = offsets[NAMES.index("left_knee")]
    assert knee[1] < -30 and abs(knee[0]) < 1e-6 and abs(knee[2]) < 1e-6       # thigh hangs down, ~40 cm
    assert offsets[NAMES.index("left_elbow")][0] > 20                           # T-pose: left arm along +X
    np.testing.assert_allclose(solved.offsets, offsets, atol=1e-6)
    # root position channels carry the pelvis trajectory in cm
    np.testing.assert_allclose(bvh.motion[:, :3], fixture_joints[:, 0] * 100, atol=1e-5)
    # Euler channels are unwrapped: no jump of more than 180 degrees between frames
    assert np.abs(np.diff(solved.angles, axis=0)).max() < 180


def test_rest_directions_are_a_t_pose():
    dirs = rest_directions()
    assert dirs.shape == (22, 3) and not dirs[0].any()
    for side, sign in (("left", 1.0), ("right", -1.0)):
        for part in ("collar", "shoulder", "elbow", "wrist"):
            np.testing.assert_array_equal(dirs[NAMES.index(f"{side}_{part}")], [sign, 0, 0])
        np.testing.assert_array_equal(dirs[NAMES.index(f"{side}_knee")], [0, -1, 0])
        np.testing.assert_array_equal(dirs[NAMES.index(f"{side}_foot")], [0, 0, 1])
    np.testing.assert_array_equal(dirs[NAMES.index("head")], [0, 1, 0])


def test_single_frame_motion(fixture_joints, tmp_path):
    path = tmp_path / "one.bvh"
    write_bvh(path, fixture_joints[5:6])
    assert parse_bvh(path).motion.shape[0] == 1
    assert _errors(_fk_ours(path), fixture_joints[5:6])[0] < 1e-4


# ---- bad input ----------------------------------------------------------------------------------------------------
def _with_nan(joints: np.ndarray) -> np.ndarray:
    out = np.array(joints, copy=True)
    out[7, 20, 1] = np.nan
    return out


@pytest.mark.parametrize("make, kwargs, message", [
    (lambda j: j[:, :21], {}, "shape (T, 22, 3)"),
    (lambda j: j[:, :, :2], {}, "shape (T, 22, 3)"),
    (lambda j: j.reshape(len(j), -1), {}, "shape (T, 22, 3)"),
    (lambda j: j[:0], {}, "no frames"),
    (_with_nan, {}, "NaN/inf values (first at frame 7, joint left_wrist)"),
    (lambda j: np.where(np.arange(22)[None, :, None] == 3, np.inf, j), {}, "NaN/inf"),
    (lambda j: np.zeros_like(j), {}, "zero length in every frame"),
    (lambda j: j, {"fps": 0}, "fps must be a positive"),
    (lambda j: j, {"scale": -1.0}, "scale (BVH units per metre)"),
    (lambda j: j, {"order": "XXY"}, "permutation of 'XYZ'"),
    (lambda j: j, {"positions": "some"}, "positions must be"),
])
def test_bad_input_is_a_clear_error_and_writes_nothing(make, kwargs, message, fixture_joints, tmp_path):
    path = tmp_path / "out" / "bad.bvh"
    with pytest.raises(BvhExportError) as info:
        write_bvh(path, make(fixture_joints), **kwargs)
    assert message in str(info.value)
    assert isinstance(info.value, ValueError)
    assert not path.exists() and not (tmp_path / "out").exists()


def test_export_bvh_bad_motions(fixture_features, tmp_path):
    path = tmp_path / "bad.bvh"
    for motion, message in ((fixture_features[:, :200], "got an array of shape (170, 200)"),
                            (np.full((4, 263), np.nan), "features contain"),
                            (np.zeros((0, 263)), "no frames"),
                            (np.zeros((3, 22)), "got an array of shape (3, 22)")):
        with pytest.raises(BvhExportError) as info:
            export_bvh(path, motion)
        assert message in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_failed_write_leaves_no_partial_file(fixture_joints, tmp_path, monkeypatch):
    """An error while writing (disk full) leaves neither the file nor a temporary; an old file stays intact."""
    import pathlib

    path = tmp_path / "x.bvh"
    path.write_text("old")
    real_write = pathlib.Path.write_text

    def half_then_fail(self, text, *args, **kwargs):
        real_write(self, text[: len(text) // 2], *args, **kwargs)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pathlib.Path, "write_text", half_then_fail)
    with pytest.raises(OSError):
        write_bvh(path, fixture_joints)
    monkeypatch.undo()
    assert path.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["x.bvh"]


def test_solve_does_not_touch_its_inputs(fixture_joints):
    joints = np.array(fixture_joints, copy=True)
    rest = rest_directions()
    rest_copy = rest.copy()
    solve_bvh(joints, rest=rest)
    np.testing.assert_array_equal(joints, fixture_joints)
    np.testing.assert_array_equal(rest, rest_copy)


def test_export_module_import_is_light():
    code = "import sys, remomask.export; print('torch' in sys.modules, 'matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


# ---- remomask export-bvh ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["joints", "features"])
def test_cli_export_bvh(kind, fixture_joints, fixture_features, tmp_path):
    src = tmp_path / f"m_{kind}.npy"
    np.save(src, fixture_joints if kind == "joints" else fixture_features)
    out = tmp_path / "m.bvh"
    res = CliRunner().invoke(main, ["export-bvh", str(src), "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert res.output.startswith(f"wrote {out}: 170 frames at 20 fps, 22 joints, units cm")
    if kind == "joints":
        expected = fixture_joints
    else:
        from remomask.data.features import joints_from_features

        expected = joints_from_features(fixture_features)
    assert _errors(_fk_ours(out), expected)[0] < 1e-4
    assert _errors(_fk_bvhio(out), expected)[0] < 1e-4


def test_cli_export_bvh_options(fixture_joints, tmp_path):
    src = tmp_path / "m.npy"
    np.save(src, fixture_joints[:40])
    out = tmp_path / "m.bvh"
    res = CliRunner().invoke(main, ["export-bvh", str(src), "-o", str(out), "--fps", "30", "--scale", "1",
                                    "--order", "ZYX", "--positions", "all"])
    assert res.exit_code == 0, res.output
    assert "units m," in res.output
    bvh = parse_bvh(out)
    assert bvh.fps == pytest.approx(30.0, rel=1e-6) and bvh.joints[0].channels[3] == "Zrotation"
    assert sum(len(j.channels) == 6 for j in bvh.joints) == 22
    assert _errors(_fk_ours(out, scale=1.0), fixture_joints[:40])[0] < 1e-4


@pytest.mark.parametrize("case, message", [
    ("missing", "does not exist"),
    ("garbage", "not a readable .npy"),
    ("shape", "got an array of shape (10, 22)"),
    ("nan", "NaN/inf"),
    ("suffix", "must end in .bvh"),
    ("fps", "fps must be a positive"),
])
def test_cli_export_bvh_bad_input_is_one_line_exit_2(case, message, fixture_joints, tmp_path):
    src = tmp_path / "m.npy"
    out = tmp_path / "m.bvh"
    extra: list[str] = []
    if case == "garbage":
        src.write_bytes(b"not an array")
    elif case == "shape":
        np.save(src, np.zeros((10, 22)))
    elif case == "nan":
        np.save(src, _with_nan(fixture_joints))
    elif case != "missing":
        np.save(src, fixture_joints)
    if case == "suffix":
        out = tmp_path / "m.txt"
    if case == "fps":
        extra = ["--fps", "0"]
    res = CliRunner().invoke(main, ["export-bvh", str(src), "-o", str(out)] + extra)
    assert res.exit_code == 2, res.output
    assert res.output.startswith("error: ") and message in res.output, res.output
    assert len(res.output.strip().splitlines()) == 1 and "Traceback" not in res.output
    assert not out.exists()


def test_export_bvh_is_listed_in_help():
    res = CliRunner().invoke(main, ["--help"])
    assert res.exit_code == 0 and "export-bvh" in res.output
    res = CliRunner().invoke(main, ["export-bvh", "--help"])
    assert res.exit_code == 0 and "--scale" in res.output


# ---- remomask generate --bvh ---------------------------------------------------------------------------------------
def test_generate_writes_bvh_per_sample(pipe_dir, tmp_path):  # noqa: F811
    """The issue's check on generated motion: the BVH of every sample matches its joints within 2 cm.

    The test pipeline is untrained, so its bone lengths vary from frame to frame: joints whose offset
    moves by more than 1 mm get position channels, the others stay within 1 mm per bone."""
    from remomask.cli.generate import generate

    out = tmp_path / "gen"
    res = CliRunner().invoke(generate, ["a person waves with the left hand", "--seconds", "2", "--seed", "4",
                                        "--num-samples", "2", "--steps", "2", "--model", str(pipe_dir),
                                        "--out", str(out), "--no-video", "--bvh"])
    assert res.exit_code == 0, res.output
    result = json.loads((out / "result.json").read_text())
    for i, sample in enumerate(result["samples"]):
        assert sample["files"] == {"joints": f"sample_{i}.joints.npy", "features": f"sample_{i}.features.npy",
                                   "bvh": f"sample_{i}.bvh"}
        joints = np.load(out / sample["files"]["joints"])
        bvh = parse_bvh(out / sample["files"]["bvh"])
        assert bvh.motion.shape[0] == sample["frames"] == 40 and bvh.frame_time == 0.05
        path = out / sample["files"]["bvh"]
        lib, ours = _errors(_fk_bvhio(path), joints), _errors(_fk_ours(path), joints)
        print(f"\ngenerated sample {i}: bvhio max {lib[0] * 100:.5f} cm, ours max {ours[0] * 100:.5f} cm")
        assert lib[0] < 0.02 and ours[0] < 0.02                   # the bound: 2 cm
        # rotation-only bones may each be off by up to 1 mm (the "auto" tolerance): measured 0.11 cm
        assert lib[0] < 0.005 and abs(ours[0] - lib[0]) < 1e-5
    assert "sample_0.bvh" in res.output
    # without --bvh nothing changes
    res = CliRunner().invoke(generate, ["a person waves", "--seconds", "2", "--seed", "4", "--steps", "2",
                                        "--model", str(pipe_dir), "--out", str(tmp_path / "plain"), "--no-video"])
    assert res.exit_code == 0 and not list((tmp_path / "plain").glob("*.bvh"))
