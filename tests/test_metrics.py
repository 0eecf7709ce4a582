"""Known-answer tests of the text-to-motion metrics (docs/design.md §10.2).

Embedding sets are either built so the answer is known in closed form, or taken from real HumanML3D
features (the fixture clip 012314, one 263-d point per frame) so the linear algebra runs on real data.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from remomask.evaluation import metrics as M


@pytest.fixture(scope="module")
def real_points(fixtures_dir):
    """(170, 263) real HumanML3D feature frames, float64."""
    return np.load(fixtures_dir / "humanml3d" / "new_joint_vecs__012314.npy").astype(np.float64)


# -- FID ---------------------------------------------------------------------------------------------

def test_fid_of_identical_real_sets_is_zero(real_points):
    # 170 points in 263 dims: the covariance is singular, the case the epsilon fallback exists for.
    assert abs(M.fid(real_points, real_points)) < 1e-6 * np.trace(np.cov(real_points, rowvar=False))


def test_fid_of_a_mean_shift_is_its_squared_length(real_points):
    points = real_points[:, :67]  # root and joint positions (ric): a full-rank covariance
    rng = np.random.default_rng(0)
    direction = rng.normal(size=points.shape[1])
    for d in (0.5, 3.0):
        shift = direction / np.linalg.norm(direction) * d
        assert M.fid(points, points + shift) == pytest.approx(d * d, rel=1e-4, abs=1e-4)


def test_frechet_distance_of_diagonal_gaussians_matches_closed_form():
    # FID(N(m1, diag a), N(m2, diag b)) = |m1 - m2|^2 + sum (sqrt a - sqrt b)^2
    a = np.array([1.0, 4.0, 9.0])
    b = np.array([4.0, 1.0, 9.0])
    m1, m2 = np.zeros(3), np.array([1.0, 2.0, 0.0])
    expected = 5.0 + (1 - 2) ** 2 + (2 - 1) ** 2 + 0.0
    assert M.frechet_distance(m1, np.diag(a), m2, np.diag(b)) == pytest.approx(expected, abs=1e-9)


def test_fid_grows_with_a_scale_change():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(4000, 4))
    # same mean, covariance I vs 4I: sum over 4 dims of (1 - 2)^2 = 4, up to sampling error
    assert M.fid(x, 2 * x) == pytest.approx(4.0, rel=0.05)


def test_fid_rejects_bad_input():
    with pytest.raises(M.MetricError, match="at least 2"):
        M.fid(np.zeros((1, 3)), np.zeros((5, 3)))
    with pytest.raises(M.MetricError, match="NaN"):
        M.fid(np.full((4, 3), np.nan), np.zeros((5, 3)))


# -- R-precision, MM-Dist -----------------------------------------------------------------------------

def test_perfectly_matched_pairs_give_top1_of_one(real_points):
    emb = real_points[:32]
    np.testing.assert_array_equal(M.r_precision(emb, emb), [1.0, 1.0, 1.0])


def test_constructed_ranking_gives_known_top_k():
    # Motions on a line 10 apart; each text sits 6 past its motion, so its nearest motion is the next one
    # (4 away) and its own is second (6 away), except the last text, whose own motion is the nearest.
    motions = np.arange(32, dtype=np.float64)[:, None] * 10.0
    texts = motions + 6.0
    top = M.r_precision(texts, motions)
    np.testing.assert_allclose(top, [1 / 32, 1.0, 1.0])


def test_shuffled_pairs_drop_r_precision_to_chance():
    rng = np.random.default_rng(2)
    hits = []
    for _ in range(400):
        text = rng.normal(size=(32, 16))
        motion = text[rng.permutation(32)] + 0.01 * rng.normal(size=(32, 16))
        hits.append(M.r_precision(text, motion))
    np.testing.assert_allclose(np.mean(hits, axis=0), [1 / 32, 2 / 32, 3 / 32], atol=0.01)


def test_matching_distance_of_a_constant_offset():
    rng = np.random.default_rng(3)
    motion = rng.normal(size=(50, 8))
    offset = np.zeros(8)
    offset[2] = 2.5
    assert M.matching_distance(motion + offset, motion) == pytest.approx(2.5)


def test_r_precision_shape_errors():
    with pytest.raises(M.MetricError, match="same shape"):
        M.r_precision(np.zeros((32, 4)), np.zeros((31, 4)))
    with pytest.raises(M.MetricError, match="at least 3"):
        M.r_precision(np.zeros((2, 4)), np.zeros((2, 4)))


# -- Diversity, MModality -------------------------------------------------------------------------------

def test_diversity_of_equidistant_points():
    # Scaled one-hot vectors: every two distinct points are exactly d apart. A pair drawn twice is 0 apart,
    # so the value is d * (1 - coincidences / 300); with 1000 points coincidences are rare.
    d = 7.0
    points = np.eye(1000) * d / math.sqrt(2)
    value = M.diversity(points, rng=0)
    assert d * (1 - 3 / 300) <= value <= d + 1e-9


def test_diversity_of_two_clusters():
    # Half the points at 0, half at 10 (in 1-D): a pair is 10 apart when it straddles the clusters, which
    # happens half the time on average.
    points = np.concatenate([np.zeros((500, 1)), np.full((500, 1), 10.0)])
    values = [M.diversity(points, rng=s) for s in range(50)]
    assert np.mean(values) == pytest.approx(5.0, rel=0.03)


def test_diversity_needs_enough_samples():
    with pytest.raises(M.MetricError, match="at least 300"):
        M.diversity(np.zeros((299, 4)))


def test_multimodality_known_answers():
    rng = np.random.default_rng(4)
    prompts = rng.normal(size=(96, 1, 16))
    assert M.multimodality(np.repeat(prompts, 30, axis=1), rng=0) == pytest.approx(0.0)
    # 30 equidistant generations per prompt (distinct ones d apart): expected d * (1 - 1/30) over draws.
    d = 3.0
    reps = np.broadcast_to(np.eye(30) * d / math.sqrt(2), (96, 30, 30))
    values = [M.multimodality(reps, rng=s) for s in range(300)]
    assert np.mean(values) == pytest.approx(d * (1 - 1 / 30), rel=0.02)


def test_multimodality_rejects_too_few_generations():
    with pytest.raises(M.MetricError, match="at least 10"):
        M.multimodality(np.zeros((3, 9, 4)))


# -- label accuracy, summary ------------------------------------------------------------------------------

def test_label_accuracy_skips_unknown_targets():
    acc, n = M.label_accuracy(["walk", "run", "bow", "run"], ["walk", "walk", None, "run"])
    assert (acc, n) == (pytest.approx(2 / 3), 3)
    assert math.isnan(M.label_accuracy(["a"], [None])[0])


def test_summary_is_mean_and_ci95():
    s = M.summarize([1.0, 2.0, 3.0, 4.0])
    # population std of 1..4 is sqrt(1.25) = 1.1180340; 1.96 * 1.1180340 / sqrt(4) = 1.0956733
    assert s["mean"] == pytest.approx(2.5)
    assert s["ci95"] == pytest.approx(1.0956733, abs=1e-6)
    assert s["n"] == 4
    assert M.summarize([0.3] * 20)["ci95"] == pytest.approx(0.0, abs=1e-12)
    assert M.summarize([float("nan"), 1.0])["n"] == 1
