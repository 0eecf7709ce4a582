"""Body-part split (docs/design.md §4.1)."""

from __future__ import annotations

import numpy as np
import pytest

from remomask.data.parts import part_dims, part_indices, parts_to_whole, whole_to_parts


def test_part_dims():
    assert part_dims("humanml3d") == (7, 50, 50, 60, 60, 60)
    assert part_dims("kit") == (7, 62, 62, 48, 48, 48)


@pytest.mark.parametrize("skeleton,dim", [("humanml3d", 263), ("kit", 251)])
def test_whole_parts_whole_roundtrip(fixtures_dir, skeleton, dim):
    if dim == 263:
        x = np.load(fixtures_dir / "humanml3d" / "new_joint_vecs__012314.npy")
    else:
        x = np.random.default_rng(0).normal(size=(50, 251)).astype(np.float32)
    parts = whole_to_parts(x, skeleton)
    assert [p.shape[-1] for p in parts] == list(part_dims(skeleton))
    np.testing.assert_allclose(parts_to_whole(parts, skeleton), x, atol=1e-6)


def test_parts_hold_the_right_joints(fixtures_dir):
    idx = part_indices("humanml3d")
    # R_Leg: right hip (2) ric x at 4 + 3*(2-1) = 7; and the right foot contacts 261, 262
    assert 7 in idx[1] and {261, 262} <= set(idx[1].tolist()) and 259 not in idx[1]
    # L_Leg has the left contacts; Root has dims 0..3 and the root velocity 193..195
    assert {259, 260} <= set(idx[2].tolist())
    assert idx[0].tolist() == [0, 1, 2, 3, 193, 194, 195]
    # spine3 (joint 9) ric dims 28..30 appear in Backbone and both arms
    for k in (3, 4, 5):
        assert 28 in idx[k]


def test_parts_to_whole_averages_shared_joint():
    x = np.zeros((1, 263))
    parts = whole_to_parts(x)
    parts[4][..., 0] = 3.0  # R_Arm's copy of spine3 ric x (dim 28)
    assert parts_to_whole(parts)[0, 28] == pytest.approx(1.0)


def test_parts_reject_wrong_sizes():
    with pytest.raises(ValueError):
        whole_to_parts(np.zeros((3, 100)))
    with pytest.raises(ValueError):
        parts_to_whole([np.zeros((1, 7))])
