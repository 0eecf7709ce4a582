"""The embedded dataset: its builder on real raw clips, and the committed build (issue: data)."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from remomask.data.build import (
    BuildConfig,
    build_embedded_dataset,
    choose_unseen_pairs,
    segment_bounds,
)
from remomask.data.embedded import EMBEDDED_DIR, materialize
from remomask.data.labels import mirror_label
from remomask.data.storage import load_joint_archive, quantize_joints

from conftest import SHARED

RAW = SHARED / "data" / "raw"


def _read_split(root: Path, name: str) -> list[str]:
    return [ln for ln in (root / f"{name}.txt").read_text().split() if ln]


@pytest.fixture(scope="module")
def small_build(tmp_path_factory):
    """A real build of a few Bandai-Namco 1 and HDM05 clips, straight from the .tar.xz archives."""
    out = tmp_path_factory.mktemp("emb")
    cfg = BuildConfig(raw=RAW, out=out, workers=1, limit=5, sources=("bandai1", "hdm05"))
    stats = build_embedded_dataset(cfg, progress=False)
    return out, stats, cfg


def test_segment_bounds():
    assert segment_bounds(20) == []                      # under 1 s: dropped
    assert segment_bounds(60) == [(0, 60)]
    for n in (198, 400, 1901):
        segs = segment_bounds(n)
        assert segs[0][0] == 0 and segs[-1][1] == n
        assert all(end - 1 == start for (_, end), (start, _) in zip(segs[:-1], segs[1:]))  # share a frame
        assert all(98 <= b - a <= 197 for a, b in segs)  # 4.9 .. 9.8 s of features


def test_unseen_pairs_closed_under_mirroring():
    contents = ["walk", "run", "wave-left-hand", "wave-right-hand", "bow"]
    styles = ["happy", "sad", "tired", "old"]
    pairs = [(c, s) for c in contents for s in styles]
    held = choose_unseen_pairs(pairs, 0.25)
    assert 0 < len(held) < len(pairs)
    for c, s in held:
        assert (mirror_label(c), s) in held
    # every content and style keeps pairs outside the held-out set
    assert {c for c, _ in pairs} == {c for c, s in pairs if (c, s) not in held}
    assert {s for _, s in pairs} == {s for c, s in pairs if (c, s) not in held}


def test_quantisation_error_is_sub_millimetre():
    rng = np.random.default_rng(0)
    joints = rng.uniform(-5, 5, size=(100, 22, 3))
    data, offset, scale = quantize_joints(joints)
    back = data.astype(np.float64) * scale + offset
    assert np.abs(back - joints).max() < 1e-4


def test_small_build_layout(small_build):
    out, stats, _ = small_build
    for name in ("joints.npz", "Mean.npy", "Std.npy", "labels.json", "README.md", "stats.json",
                 "train.txt", "all.txt"):
        assert (out / name).is_file(), name
    ids = _read_split(out, "all")
    originals = [i for i in ids if not i.startswith("M")]
    assert sorted(ids) == sorted(originals + ["M" + i for i in originals])
    labels = json.loads((out / "labels.json").read_text())
    for i in originals:
        lines = (out / "texts" / f"{i}.txt").read_text().splitlines()
        mirrored = (out / "texts" / f"M{i}.txt").read_text().splitlines()
        assert len(lines) >= 3 and len(set(lines)) == len(lines)
        for a, b in zip(lines, mirrored):
            cap_a, cap_b = a.split("#")[0], b.split("#")[0]
            if "left" in cap_a or "right" in cap_a:
                assert cap_a != cap_b
            assert cap_a.replace("left", "X").replace("right", "X") == \
                cap_b.replace("left", "X").replace("right", "X")
        assert labels["M" + i]["action"] == mirror_label(labels[i]["action"])
        assert labels["M" + i]["mirrored"] and not labels[i]["mirrored"]
    assert stats["captions"] == sum(len((out / "texts" / f"{i}.txt").read_text().splitlines())
                                    for i in ids)
    mean, std = np.load(out / "Mean.npy"), np.load(out / "Std.npy")
    assert mean.shape == std.shape == (263,) and (std > 0).all()


def test_small_build_is_deterministic(small_build, tmp_path):
    out, stats, cfg = small_build
    again = build_embedded_dataset(BuildConfig(**{**cfg.__dict__, "out": tmp_path}), progress=False)
    assert again["content_hash"] == stats["content_hash"]


def test_small_build_materialises_to_humanml3d_layout(small_build, tmp_path):
    from remomask.data.features import joints_from_features
    from remomask.data.layout import MotionLayout

    out, _, _ = small_build
    root = materialize(out, cache=tmp_path, workers=1, progress=False)
    assert materialize(out, cache=tmp_path, workers=1, progress=False) == root  # cached
    archive = load_joint_archive(out / "joints.npz")
    layout = MotionLayout(root, "all", min_length=0, max_length=None)
    assert len(layout.ids) == 2 * len(archive)
    for sid in list(archive)[:3]:
        feats = np.load(root / "new_joint_vecs" / f"{sid}.npy")
        assert feats.shape == (len(archive[sid]) - 1, 263)
        joints = joints_from_features(feats)
        # same motion up to retargeting: root height trajectory within 5 cm of the stored clip
        stored = archive[sid]
        h_ours = joints[:, 0, 1] - joints[:, :, 1].min()
        h_stored = stored[:-1, 0, 1] - stored[:, :, 1].min()
        scale = np.median(h_ours / h_stored)
        assert np.abs(h_ours - scale * h_stored).max() < 0.05
        mirrored = np.load(root / "new_joint_vecs" / f"M{sid}.npy")
        # mirroring keeps the root height and speed and negates the total turn, up to the asymmetry
        # of the reference skeleton both are retargeted to (left/right bones differ by millimetres,
        # which shifts the facing direction by ~1e-3 rad/frame and the height by ~1 mm)
        np.testing.assert_allclose(mirrored[:, 3], feats[:, 3], atol=3e-3)
        speed = np.linalg.norm(feats[:, 1:3], axis=1)
        np.testing.assert_allclose(np.linalg.norm(mirrored[:, 1:3], axis=1), speed, atol=2e-3)
        assert abs(mirrored[:, 0].sum() + feats[:, 0].sum()) < 0.15


# ----------------------------------------------------------------------------------------------
# The committed embedded dataset
# ----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def committed():
    if not (EMBEDDED_DIR / "stats.json").is_file():
        pytest.fail(f"the embedded dataset is missing at {EMBEDDED_DIR}")
    return EMBEDDED_DIR, json.loads((EMBEDDED_DIR / "stats.json").read_text()), \
        json.loads((EMBEDDED_DIR / "labels.json").read_text())


def test_committed_dataset_meets_the_issue(committed):
    root, stats, _ = committed
    assert stats["clips"] >= 3000
    assert len(stats["labels"]) >= 45
    for split in ("train", "val", "test", "test_unseen", "test_human"):
        assert len(_read_split(root, split)) > 0, split
    size = sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
    assert size < 60 * 2**20


def test_committed_splits_are_by_clip_and_mirror_consistent(committed):
    root, _, labels = committed
    split_of = {}
    for split in ("train", "val", "test", "test_unseen", "test_human"):
        for i in _read_split(root, split):
            assert i not in split_of
            split_of[i] = split
    assert sorted(split_of) == sorted(_read_split(root, "all"))
    clip_splits = defaultdict(set)
    for i, s in split_of.items():
        clip_splits[labels[i]["clip"]].add(s)
        if i.startswith("M"):
            assert split_of[i[1:]] == s
    # one split per clip; a test_human trial's items without human captions sit in test
    assert all(len(v) == 1 or v == {"test", "test_human"} for v in clip_splits.values())


def test_committed_unseen_pairs_are_held_out(committed):
    root, _, labels = committed
    pairs = defaultdict(set)
    for split in ("train", "val", "test", "test_unseen"):
        for i in _read_split(root, split):
            if labels[i]["style"]:
                pairs[split].add((labels[i]["action"], labels[i]["style"]))
    seen = pairs["train"] | pairs["val"] | pairs["test"]
    assert pairs["test_unseen"] and not (pairs["test_unseen"] & seen)
    for c, s in pairs["test_unseen"]:
        assert (mirror_label(c), s) in pairs["test_unseen"]
    train_actions = {c for c, _ in pairs["train"]}
    train_styles = {s for _, s in pairs["train"]}
    assert {c for c, _ in pairs["test_unseen"]} <= train_actions
    assert {s for _, s in pairs["test_unseen"]} <= train_styles


def test_committed_joints_are_plausible(committed):
    """Every original item (all five sources): finite, 1-9.8 s (a CMU whole-trial item may be longer),
    and upright: the head stands over the lowest foot joint by a standing adult's height."""
    root, _, labels = committed
    archive = load_joint_archive(root / "joints.npz")
    by_action = defaultdict(list)
    for sid, j in archive.items():
        assert np.isfinite(j).all(), sid
        if labels[sid]["item"] == "whole_trial":
            assert 197 < len(j) <= 41 * 20, sid  # the longest KIT-ML trial is 40.3 s
        else:
            assert 21 <= len(j) <= 197, sid
        height = float(np.median(j[:, 15, 1] - j[:, [7, 8, 10, 11], 1].min(axis=1)))
        by_action[labels[sid]["action"]].append(height)
        if labels[sid]["action"] not in ("lieDownFloor", "depositFloorR"):
            assert height > 0.9, (sid, labels[sid])  # metres
    for action, heights in by_action.items():
        if action != "lieDownFloor":
            assert np.median(heights) > 1.2, action  # a standing person, in metres


def test_feature_cache_build_says_where_and_cleans_an_interrupted_one(small_build, tmp_path, caplog):
    """Issue 19: the first build of the feature cache is announced (path and size); the ~250 MB half-built copy
    a killed build leaves is removed by the next build."""
    import logging
    import subprocess
    import sys

    out, _, _ = small_build
    dead = int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                              text=True, check=True).stdout)
    (tmp_path / "datasets").mkdir()
    orphan = tmp_path / "datasets" / f".{out.name}-0123456789ab.partial-{dead}"
    (orphan / "new_joint_vecs").mkdir(parents=True)
    with caplog.at_level(logging.WARNING, logger="remomask.data.embedded"):
        root = materialize(out, cache=tmp_path, workers=1, progress=False)
    assert not orphan.exists()
    assert [p.name for p in (tmp_path / "datasets").iterdir()] == [root.name]
    said = " ".join(r.getMessage() for r in caplog.records)
    assert "building the feature cache" in said and str(root) in said and " MB" in said
