"""Every action of the train split reaches every stage's training set (docs/data.md "Every action learned"),
and per-action balancing (alpha = 0) draws the actions equally often. Real data: the embedded dataset."""

from __future__ import annotations

import json
import warnings
from collections import Counter

import numpy as np
import pytest
import torch

from remomask.data.balance import balanced_probabilities, check_alpha, label_frequencies
from remomask.data.coverage import STAGES, missing_actions, stage_coverage
from remomask.data.embedded import EMBEDDED_DIR


@pytest.fixture(scope="module")
def coverage():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return stage_coverage("embedded", "train")


@pytest.fixture(scope="module")
def train_layout():
    from remomask.data.embedded import resolve_dataset
    from remomask.data.layout import MotionLayout

    return MotionLayout(resolve_dataset("embedded", progress=False), "train", min_length=0, max_length=None,
                        progress=False)


def test_every_train_action_reaches_every_stage(coverage):
    split = coverage["split"]
    stats = json.loads((EMBEDDED_DIR / "stats.json").read_text())
    assert set(split) == set(stats["labels"]) and len(split) >= 45  # dataset v2: every action has train data
    assert min(split.values()) >= 2
    assert set(coverage) == {"split", *STAGES}
    missing = {s: a for s, a in missing_actions(coverage).items() if a}
    assert not missing, f"actions with no training item: {missing}"
    # every sample, not only every action; the generation-style loaders drop only the CMU whole-trial
    # items (longer than 9.8 s, as HumanML3D's loaders drop theirs; each has windows of its trial too)
    labels = json.loads((EMBEDDED_DIR / "labels.json").read_text())
    train = (EMBEDDED_DIR / "train.txt").read_text().split()
    whole = Counter(labels[i]["action"] for i in train if labels[i]["item"] == "whole_trial")
    assert whole and set(whole) <= {"climb", "pick-up", "jump", "indian-dance", "wash", "karate", "karate-kick"}
    short = {a: n - whole.get(a, 0) for a, n in split.items()}
    assert coverage["retriever"] == split
    for stage in ("mask", "residual", "length", "evaluator", "classifiers"):
        assert coverage[stage] == short, stage
    # The tokenizer counts windows: at least one per clip.
    assert all(coverage["tokenizer"][a] >= n for a, n in split.items())


def test_hold_extension_of_a_real_short_clip(train_layout):
    """A 1-s squat becomes a 2-s sample: first pose held, the clip unchanged, last pose held; the held
    frames stand still when recovered to joints."""
    from remomask.data.datasets import HeldRecord, extend_short_records, hold_extend
    from remomask.data.features import joints_from_features
    from remomask.generation.data import load_generation_records

    short = [r for r in train_layout if r.labels.get("action") == "squat1Reps"]
    assert short and max(r.length for r in short) < 40
    rec = min(short, key=lambda r: r.length)
    (held,) = extend_short_records([rec], 40)
    assert isinstance(held, HeldRecord) and held.length == 40 == len(held.motion)
    b, a = held.hold_before, held.hold_after
    assert b + a + rec.length == 40 and a - b in (0, 1) and held.source_length == rec.length
    assert np.array_equal(held.motion[b: b + rec.length], rec.motion)
    joints = joints_from_features(held.motion)
    assert np.abs(joints[:b + 1] - joints[b]).max() < 1e-4            # stands in the first pose
    assert np.abs(joints[b + rec.length:] - joints[-1]).max() < 1e-4  # stands in the last pose
    assert np.abs(joints[b: b + rec.length] - joints[b]).max() > 0.1  # the squat itself moves
    with pytest.raises(ValueError):
        hold_extend(rec.motion, -1, 0)
    records = load_generation_records(train_layout.root, "train")
    assert min(r.length for r in records) == 40
    assert {r.key for r in records} >= {r.key for r in short}


def test_tokenizer_windows_of_short_clips(train_layout):
    from remomask.tokenizer.train import tokenizer_stats, training_windows

    layout = train_layout
    mean, std = tokenizer_stats(layout.mean, layout.std)
    ds = training_windows(layout, mean, std, 64)
    owner = ds.window_records()
    idx = next(w for w, r in enumerate(owner) if ds.records[r].length < 64)
    assert ds.records[owner[idx]].labels.get("action")
    torch.manual_seed(0)
    starts = {ds[int(idx)]["start"] for _ in range(12)}
    assert len(starts) > 1 and all(s <= 0 for s in starts)             # random place of the clip in the window
    assert ds[int(idx)]["motion"].shape == (64, 263)
    assert len(ds) == len(ds.window_records())


def test_balance_alpha_zero_gives_equal_action_frequencies(train_layout):
    from remomask.generation.data import sample_indices

    records = [r for r in train_layout if r.captions]
    actions = [r.labels.get("action") for r in records]
    k = len(set(actions))
    rng = np.random.default_rng(7)
    idx = sample_indices(records, 41_000, rng, balance_alpha=0.0)
    freq = Counter(actions[i] for i in idx)
    assert len(freq) == k
    expected = 41_000 / k
    # Binomial sd of a count is about sqrt(1000) = 32: every action within 5 sd of 1000.
    assert all(abs(n - expected) < 5 * np.sqrt(expected) for n in freq.values()), freq
    # alpha = 1 is the uniform draw (same numbers as rng.integers), 0.5 lies in between.
    assert np.array_equal(sample_indices(records, 50, np.random.default_rng(3)),
                          np.random.default_rng(3).integers(len(records), size=50))
    half = label_frequencies(actions, 0.5)
    counts = Counter(actions)
    ratio = half["raise-up-both-hands"] / half["respond"]
    assert ratio == pytest.approx(np.sqrt(counts["raise-up-both-hands"] / counts["respond"]))
    p = balanced_probabilities(actions, 0.0)
    assert p.sum() == pytest.approx(1.0)
    for bad in (-0.1, 1.5, float("nan")):
        with pytest.raises(ValueError):
            check_alpha(bad)
