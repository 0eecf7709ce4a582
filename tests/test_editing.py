"""Editing (docs/generation.md, "Editing"): token in-painting keeps the given tokens, frames outside an edit and
untouched joints of a part edit are the source's bit for bit, and the command line's error cases. Real data: the
bundled model, the embedded dataset (id 000110, "a person walks backwards", 170 frames) and the shared fixtures."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from remomask.cli import main
from remomask.errors import UsageError

SOURCE = "000110"


@pytest.fixture(scope="module")
def pipe(bundled_pipe):
    return bundled_pipe


@pytest.fixture(scope="module")
def source(walk_source):
    return walk_source


def _outside(a, b, total):
    return np.r_[0:a, b:total]


def test_inpaint_tokens_keeps_every_layer_of_kept_positions(pipe, source):
    from remomask.generation.inpainting import inpaint_tokens

    tok = pipe.tokenizer
    with torch.no_grad():
        ids = tok.encode(tok.normalize(torch.from_numpy(source.features[:160]))[None])
    edit = torch.zeros(ids.shape[:3], dtype=torch.bool)
    edit[:, 10:20] = True
    edit[:, 30:35, :3] = True
    cond = pipe.conditions(["a person jumps"], keep_hits=False)
    out = inpaint_tokens(pipe.mask_transformer, pipe.residual_transformer, ids, edit, cond.sentence,
                         cond.retrieval, generator=0)
    assert out.shape == ids.shape
    assert torch.equal(out[~edit], ids[~edit])
    assert (out[edit] >= 0).all() and not torch.equal(out[edit], ids[edit])


@pytest.mark.parametrize("frames", [(60, 110), (0, 48), (100, None)])
def test_frames_outside_an_edit_are_bit_identical(pipe, source, frames):
    res = pipe.edit(SOURCE, "a person jumps up and down", frames, seed=3)
    a, b = res.frames
    total = len(source)
    assert res.joints.shape == source.joints.shape and np.isfinite(res.joints).all()
    keep = _outside(a, b, total)
    assert np.array_equal(res.joints[keep], source.joints[keep])           # 0.0 error, not "close"
    assert np.array_equal(res.features[keep], source.features[keep])
    assert not np.allclose(res.joints[a:b], source.joints[a:b], atol=1e-3)
    # the seams have no jump beyond the motion's own per-frame speed (plus 2 cm slack)
    step = np.linalg.norm(np.diff(res.joints, axis=0), axis=-1).max(-1)
    own = np.linalg.norm(np.diff(source.joints, axis=0), axis=-1).max()
    for s in (a - 1, b - 1):
        if 0 <= s < total - 1:
            assert step[s] <= max(own, step[a:b - 1].max()) + 0.02


def test_continuation_appends_frames_and_keeps_the_source(pipe, source):
    res = pipe.edit(SOURCE, "a person sits down", (len(source), None), extend=40, seed=0)
    assert len(res) == len(source) + 40 and res.frames == (len(source), len(source) + 40)
    assert np.array_equal(res.joints[:len(source)], source.joints)
    assert np.linalg.norm(res.joints[len(source), 0] - source.joints[-1, 0]) < 0.1    # carries on from the end


@pytest.mark.parametrize("parts", ["right_arm", "legs"])
def test_part_edit_keeps_untouched_joints(pipe, source, parts):
    from remomask.pipeline.editing import resolve_parts

    res = pipe.edit(SOURCE, "a person waves with the right hand", (20, 150), parts=parts, seed=1)
    edited = resolve_parts(parts)
    keep = [j for j in range(22) if j not in edited]
    assert np.array_equal(res.joints[:, keep], source.joints[:, keep])
    assert np.array_equal(res.joints[:20], source.joints[:20])
    assert np.array_equal(res.joints[150:], source.joints[150:])
    assert not np.allclose(res.joints[40:130, list(edited)], source.joints[40:130, list(edited)], atol=1e-3)
    # bones of the edited part stay attached: the distance wrist (21) -> elbow (19) stays a bone length
    if parts == "right_arm":
        bone = np.linalg.norm(res.joints[:, 21] - res.joints[:, 19], axis=-1)
        assert bone.std() < 1e-4


def test_joints_file_source(pipe, fixtures_dir, tmp_path):
    path = tmp_path / "walk.npy"
    joints = np.load(fixtures_dir / "humanml3d" / "new_joints__012314.npy")[:80].astype(np.float32)
    np.save(path, joints)
    res = pipe.edit(path, "a person kicks", (30, 60), seed=0)
    assert np.array_equal(res.joints[:30], joints[:30]) and np.array_equal(res.joints[60:], joints[60:])


def test_library_errors(pipe):
    with pytest.raises(UsageError, match="outside the source"):
        pipe.edit(SOURCE, "a person jumps", (100, 400))
    with pytest.raises(UsageError, match="unknown body part"):
        pipe.edit(SOURCE, "a person jumps", (0, 40), parts="tail")
    with pytest.raises(UsageError, match="at most"):
        pipe.edit(SOURCE, "a person jumps", (170, None), extend=200)


def _error(args, *needles):
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exit_code == 2, (result.exit_code, result.output)
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    for n in needles:
        assert n in lines[0], (n, lines[0])


@pytest.mark.parametrize("args,needle", [
    (["--frames", "100:400"], "outside the source"),
    (["--frames", "80:40"], "outside the source"),
    (["--frames", "x:40"], "--frames"),
    (["--frames", "0:40", "--parts", "tail"], "unknown body part 'tail'"),
    (["--frames", "0:40", "--parts", "arms", "--extend", "2"], "--parts"),
])
def test_cli_errors(args, needle):
    _error(["edit", SOURCE, "a person jumps", *args, "--no-video"], needle)


def test_cli_errors_source_and_text(tmp_path):
    _error(["edit", "no_such_motion", "a person jumps", "--no-video"], "no_such_motion")
    _error(["edit", SOURCE, "  ", "--no-video"], "empty")


def test_cli_edit_writes_a_result(tmp_path):
    out = tmp_path / "e"
    result = CliRunner().invoke(main, ["edit", SOURCE, "a person waves with the right hand", "--frames", "40:80",
                                       "--parts", "right_arm", "--out", str(out), "--no-video", "--seed", "2"])
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "result.json").read_text())
    assert summary["frames"] == [40, 80] and summary["parts"] == ["right_arm"] and summary["seed"] == 2
    assert summary["retrieved"] and (out / summary["files"]["joints"]).is_file()
    edited = np.load(out / "edit_0.joints.npy")
    src = np.load(out / "source_0.joints.npy")
    assert np.array_equal(edited[:40], src[:40]) and np.array_equal(edited[80:], src[80:])


def test_no_keyframes_is_the_plain_edit(pipe):
    """keyframes={} / None leave an edit unchanged (same seed -> bit-identical joints and features)."""
    from remomask.pipeline.editing import edit_motion

    plain = pipe.edit(SOURCE, "a person jumps up and down", (60, 110), seed=3)
    none = edit_motion(pipe, SOURCE, "a person jumps up and down", (60, 110), seed=3, keyframes={})
    assert np.array_equal(plain.joints, none.joints) and np.array_equal(plain.features, none.features)
    assert none.keyframes == {} and "keyframe_offsets_m" not in none.settings
