"""Keyframes and in-betweening (docs/generation.md, "Keyframes and in-betweening"; remomask.pipeline.keyframes):
the output meets every keyframe pose exactly (0.0 m), is finite, the frames in between are generated (neither the
source nor the linear placeholder) without a jump beyond the source's own per-frame speed, and the errors are one
line. Real data: the bundled model and the embedded dataset (000110 "a person walks backwards", 170 frames;
000122, another clip whose poses serve as keyframes)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from remomask.cli import main
from remomask.errors import UsageError
from test_editing import pipe, source  # noqa: F401  (the bundled pipeline and clip 000110, shared)

SOURCE, OTHER = "000110", "000122"
TOL_M = 0.0
"""Keyframe tolerance (metres): the keyframe frame is spliced, not generated (keyframes.py, step 2)."""




def _moved(frame_other, frame_source, source):
    """Frame ``frame_other`` of 000122 moved (XZ) onto the source's root at ``frame_source``."""
    from remomask.pipeline.editing import load_source

    pose = load_source(OTHER).joints[frame_other].copy()
    pose[:, [0, 2]] += source.joints[frame_source, 0, [0, 2]] - pose[0, [0, 2]]
    return pose


@pytest.fixture(scope="module")
def other_pose(source):
    return _moved(40, 85, source)


def _max_step(j):
    return np.linalg.norm(np.diff(j, axis=0), axis=-1).max(-1)


@pytest.mark.parametrize("key_tokens", [True, False])
def test_edit_meets_keyframes(pipe, source, other_pose, key_tokens):
    from remomask.pipeline.editing import edit_motion
    from remomask.pipeline.keyframes import placeholder_joints

    keys = {85: other_pose, 104: _moved(60, 104, source)}
    res = edit_motion(pipe, SOURCE, "a person jumps up and down", (60, 120), keyframes=keys, seed=0,
                      key_tokens=key_tokens)
    assert res.joints.shape == source.joints.shape and np.isfinite(res.joints).all()
    assert np.abs(res.joints[85] - other_pose).max() <= TOL_M
    assert np.abs(res.joints[104] - res.keyframes[104]).max() <= TOL_M
    assert sorted(res.keyframes) == [85, 104] and set(res.settings["keyframe_offsets_m"]) == {85, 104}
    keep = np.r_[0:60, 120:len(source)]
    assert np.array_equal(res.joints[keep], source.joints[keep])
    # in between: generated, not a copy of the source nor of the linear placeholder
    gen = np.r_[62:83, 88:102, 106:118]
    ph = placeholder_joints(source.joints, 60, 120, res.keyframes)
    assert not np.allclose(res.joints[gen], source.joints[gen], atol=1e-2)
    assert np.abs(res.joints[gen] - ph[gen]).max() > 0.05
    # no jump around the keyframes beyond the source's own per-frame speed (+ 2 cm)
    own = _max_step(source.joints).max()
    assert _max_step(res.joints)[59:120].max() <= own + 0.02
    # the kept token row of a keyframe is not regenerated
    rows = [k // 4 - res.window[0] for k in (85, 104)]
    assert (not res.edited_tokens[rows].any()) if key_tokens else res.edited_tokens[rows].all()


def test_inbetween_two_poses(pipe, source, other_pose):
    from remomask.pipeline.keyframes import inbetween

    start = source.joints[40]
    res = inbetween(pipe, start, other_pose, "a person walks forward", 50, seed=1)
    assert len(res) == 52 and res.frames == (1, 51) and np.isfinite(res.joints).all()
    assert np.abs(res.joints[0] - start).max() <= TOL_M
    assert np.abs(res.joints[-1] - other_pose).max() <= TOL_M
    assert sorted(res.keyframes) == [0, 51]
    lin = np.linspace(0, 1, 52)[:, None, None]
    linear = (1 - lin) * start[None] + lin * other_pose[None]
    assert np.abs(res.joints[5:47] - linear[5:47]).max() > 0.05            # generated, not interpolated
    assert _max_step(res.joints).max() <= _max_step(source.joints).max() + 0.02


def test_inbetween_motions_continue_placement(pipe, source):
    from remomask.pipeline.editing import load_source
    from remomask.pipeline.keyframes import inbetween

    other = load_source(OTHER)
    res = inbetween(pipe, SOURCE, OTHER, "a person turns around", 40, seed=2, place_end="continue", trim=False)
    t = len(source)
    assert len(res) == t + 40 + len(other) and res.frames == (t, t + 40)
    assert np.array_equal(res.joints[:t], source.joints)
    tail = res.joints[t + 40:]
    # the target is moved rigidly: same shape (pairwise distances), not where it was recorded
    d = lambda j: np.linalg.norm(j[:, :, None] - j[:, None], axis=-1)  # noqa: E731
    assert np.allclose(d(tail[::20]), d(other.joints[::20]), atol=1e-4)
    assert np.abs(res.joints[t + 40] - res.keyframes[t + 40]).max() <= TOL_M
    assert np.isfinite(res.joints).all()


def test_keyframe_errors(pipe, other_pose):
    from remomask.pipeline.editing import edit_motion
    from remomask.pipeline.keyframes import inbetween

    with pytest.raises(UsageError, match="outside the edited range"):
        edit_motion(pipe, SOURCE, "a person jumps", (60, 120), keyframes={130: other_pose})
    with pytest.raises(UsageError, match="closer than one token"):
        edit_motion(pipe, SOURCE, "a person jumps", (60, 120), keyframes={80: other_pose, 82: other_pose})
    with pytest.raises(UsageError, match="body-part"):
        edit_motion(pipe, SOURCE, "a person jumps", (60, 120), parts="arms", keyframes={80: other_pose})
    with pytest.raises(UsageError, match="NaN"):
        edit_motion(pipe, SOURCE, "a person jumps", (60, 120), keyframes={80: np.full((22, 3), np.nan)})
    with pytest.raises(UsageError, match="frames must be"):
        inbetween(pipe, other_pose, other_pose, "a person jumps", 0)
    with pytest.raises(UsageError, match="place_end"):
        inbetween(pipe, other_pose, other_pose, "a person jumps", 10, place_end="nowhere")


def _error(args, *needles):
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exit_code == 2, (result.exit_code, result.output)
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    for n in needles:
        assert n in lines[0], (n, lines[0])


def test_cli_keyframe_and_to(tmp_path, other_pose):
    pose = tmp_path / "pose.npy"
    np.save(pose, other_pose)
    out = tmp_path / "k"
    r = CliRunner().invoke(main, ["edit", SOURCE, "a person jumps", "--frames", "60:120", "--keyframe",
                                  f"85:{pose}", "--keyframe", f"104:{OTHER}@60", "--out", str(out), "--no-video",
                                  "--seed", "0"])
    assert r.exit_code == 0, r.output
    summary = json.loads((out / "result.json").read_text())
    assert summary["keyframes"] == [85, 104]
    assert np.abs(np.load(out / "edit_0.joints.npy")[85] - other_pose).max() <= TOL_M
    out2 = tmp_path / "t"
    r = CliRunner().invoke(main, ["edit", SOURCE, "a person walks forward", "--to", str(pose), "--extend", "1",
                                  "--to-in-place", "--out", str(out2), "--no-video", "--seed", "0"])
    assert r.exit_code == 0, r.output
    joints = np.load(out2 / "edit_0.joints.npy")
    assert joints.shape == (170 + 20 + 8, 22, 3) and np.abs(joints[190] - other_pose).max() <= TOL_M
    assert json.loads((out2 / "result.json").read_text())["frames"] == [170, 190]


@pytest.mark.parametrize("args,needle", [
    (["--frames", "60:120", "--keyframe", "130:000122"], "outside the edited range"),
    (["--frames", "60:120", "--keyframe", "85"], "--keyframe"),
    (["--frames", "60:120", "--keyframe", "85:000122", "--parts", "arms"], "--parts"),
    (["--to", "000122", "--frames", "0:40"], "--to"),
    (["--to-in-place"], "--to"),
    (["--to", "no_such_target"], "no_such_target"),
])
def test_cli_keyframe_errors(args, needle):
    _error(["edit", SOURCE, "a person jumps", *args, "--no-video"], needle)
