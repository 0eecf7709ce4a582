"""The standard text-to-motion metrics on evaluator embeddings (docs/design.md §10.2).

All functions take plain arrays of embeddings produced by an evaluator (ours or the official one) and
return floats; they know nothing about models. Distances are Euclidean in the evaluator's embedding
space (its units: ours lies on a sphere of radius ``EvaluatorConfig.embed_radius``).

- :func:`r_precision`: top-k matching accuracy inside one batch (32 in the protocol). Each text ranks
  the batch's motions by distance (rows of the text x motion distance matrix, as the reference
  evaluation code does; docs/design.md §10.2 words it from the motion side).
- :func:`matching_distance`: MM-Dist, the mean distance of the paired text and motion embeddings.
- :func:`fid`: Frechet distance of Gaussian fits, with scipy's ``sqrtm`` and an epsilon fallback.
- :func:`diversity`: mean distance of 300 random pairs (two independent index draws).
- :func:`multimodality`: mean distance of 10 random pairs among the repeated generations of a prompt.
- :func:`label_accuracy`: share of motions whose predicted label equals the prompt's label.
- :func:`summarize`: mean and 95% confidence half-width ``1.96 * std / sqrt(N)`` over N repeats.

Per-sample and rare-motion helpers (docs/data.md "Every action learned"; ReMoGPT's rare-motion protocol):
:func:`r_precision_hits` and :func:`matching_distances` keep one value per pair so that the protocol can
group them by action; :func:`rareness` (1 - the largest cosine similarity of a prompt to the train
captions), :func:`rarest` and :func:`balanced_matching_distance` score the rare prompts.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
from scipy import linalg
from ..errors import RemomaskError

__all__ = [
    "MetricError",
    "distance_matrix",
    "r_precision",
    "matching_distance",
    "gaussian_stats",
    "frechet_distance",
    "fid",
    "diversity",
    "multimodality",
    "label_accuracy",
    "summarize",
    "r_precision_hits",
    "matching_distances",
    "rareness",
    "rarest",
    "balanced_matching_distance",
    "RARENESS_BINS",
    "RAREST_SHARE",
    "R_PRECISION_BATCH",
    "DIVERSITY_PAIRS",
    "MULTIMODALITY_PAIRS",
]

R_PRECISION_BATCH = 32
"""Batch size inside which R-precision ranks (docs/design.md §10.2)."""
DIVERSITY_PAIRS = 300
"""Random pairs averaged by :func:`diversity` (docs/design.md §10.2)."""
MULTIMODALITY_PAIRS = 10
"""Random pairs per prompt averaged by :func:`multimodality` (docs/design.md §10.2)."""


class MetricError(RemomaskError, ValueError):
    """A metric cannot be computed from the given input (wrong shape, too few samples)."""


def _as2d(x, name: str) -> np.ndarray:
    try:
        import torch

        if isinstance(x, torch.Tensor):
            x = x.detach().cpu().numpy()
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 2:
        raise MetricError(f"{name} must be a 2-D array (N, D) of embeddings, got shape {a.shape}")
    if not np.isfinite(a).all():
        raise MetricError(f"{name} contains NaN or inf; check the model that produced these embeddings")
    return a


def distance_matrix(a, b) -> np.ndarray:
    """Euclidean distances between every row of ``a`` (N, D) and every row of ``b`` (M, D) -> (N, M).

    Computed as ``sqrt(|a|^2 + |b|^2 - 2 a.b)`` clipped at 0, in float64.

    Raises:
        MetricError: not 2-D, different D, or non-finite values.
    """
    a, b = _as2d(a, "a"), _as2d(b, "b")
    if a.shape[1] != b.shape[1]:
        raise MetricError(f"embedding sizes differ: {a.shape[1]} vs {b.shape[1]}")
    sq = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
    return np.sqrt(np.maximum(sq, 0.0))


def r_precision(text_emb, motion_emb, top_k: int = 3) -> np.ndarray:
    """Top-1..top-k matching accuracy inside one batch (docs/design.md §10.2).

    Text ``i`` and motion ``i`` are a pair. For every text, the batch's motions are ranked by distance
    (ties keep index order); the pair counts as a hit at k when motion ``i`` is among the k nearest.

    Args:
        text_emb: (B, D) text embeddings.
        motion_emb: (B, D) motion embeddings, row-aligned with ``text_emb``.
        top_k: largest k.

    Returns:
        (top_k,) float64: share of hits at k = 1..top_k (cumulative, non-decreasing), over the B texts.

    Raises:
        MetricError: shapes differ, B < top_k, or non-finite values.
    """
    t, m = _as2d(text_emb, "text_emb"), _as2d(motion_emb, "motion_emb")
    if t.shape != m.shape:
        raise MetricError(f"text {t.shape} and motion {m.shape} embeddings must have the same shape (B, D)")
    if t.shape[0] < top_k:
        raise MetricError(f"R-precision top-{top_k} needs at least {top_k} pairs, got {t.shape[0]}")
    order = np.argsort(distance_matrix(t, m), axis=1, kind="stable")  # (B, B) motions by distance
    rank = np.argmax(order == np.arange(len(t))[:, None], axis=1)  # position of the true motion
    return np.array([(rank < k).mean() for k in range(1, top_k + 1)])


def matching_distance(text_emb, motion_emb) -> float:
    """MM-Dist: mean Euclidean distance between paired rows of (N, D) text and motion embeddings.

    Raises:
        MetricError: shapes differ or non-finite values.
    """
    t, m = _as2d(text_emb, "text_emb"), _as2d(motion_emb, "motion_emb")
    if t.shape != m.shape:
        raise MetricError(f"text {t.shape} and motion {m.shape} embeddings must have the same shape (N, D)")
    return float(np.linalg.norm(t - m, axis=1).mean())


def gaussian_stats(emb) -> tuple[np.ndarray, np.ndarray]:
    """Mean (D,) and covariance (D, D) (unbiased, ``np.cov``) of (N, D) embeddings.

    Raises:
        MetricError: fewer than 2 rows.
    """
    e = _as2d(emb, "embeddings")
    if e.shape[0] < 2:
        raise MetricError(f"a covariance needs at least 2 embeddings, got {e.shape[0]}")
    return e.mean(0), np.cov(e, rowvar=False)


def frechet_distance(mu1, sigma1, mu2, sigma2, eps: float = 1e-6) -> float:
    """Frechet distance of two Gaussians: ``|mu1-mu2|^2 + tr(S1 + S2 - 2 sqrt(S1 S2))`` (docs/design.md §10.2).

    ``sqrt`` is ``scipy.linalg.sqrtm``. If the product is singular enough that sqrtm returns non-finite
    values, ``eps * I`` is added to both covariances and it is recomputed. A tiny imaginary part from
    numerical error is dropped; a large one is an error.

    Args:
        mu1, mu2: (D,) means. sigma1, sigma2: (D, D) covariances.
        eps: diagonal offset of the fallback.

    Raises:
        MetricError: shape mismatch, or an imaginary component above 1e-3 (the covariances are not
            valid, e.g. computed from NaN embeddings).
    """
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    s1, s2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    if mu1.shape != mu2.shape or s1.shape != s2.shape or s1.shape != (mu1.shape[0],) * 2:
        raise MetricError(f"Gaussian shapes do not fit: mu {mu1.shape}/{mu2.shape}, sigma {s1.shape}/{s2.shape}")
    diff = mu1 - mu2
    covmean = linalg.sqrtm(s1 @ s2)
    if not np.isfinite(covmean).all():
        offset = np.eye(s1.shape[0]) * eps
        covmean = linalg.sqrtm((s1 + offset) @ (s2 + offset))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            raise MetricError(f"sqrtm has an imaginary component {np.max(np.abs(covmean.imag)):.3g}; "
                              "the covariances are not positive semi-definite")
        covmean = covmean.real
    value = diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * np.trace(covmean)
    return float(value)


def fid(real_emb, gen_emb, eps: float = 1e-6) -> float:
    """FID between (N, D) real and (M, D) generated embeddings (docs/design.md §10.2); see :func:`frechet_distance`.

    Raises:
        MetricError: fewer than 2 rows in a set, different D, or invalid covariances.
    """
    mu1, s1 = gaussian_stats(real_emb)
    mu2, s2 = gaussian_stats(gen_emb)
    return frechet_distance(mu1, s1, mu2, s2, eps=eps)


def diversity(emb, pairs: int = DIVERSITY_PAIRS, rng: np.random.Generator | int | None = None) -> float:
    """Diversity: mean distance between ``pairs`` random pairs of (N, D) embeddings (docs/design.md §10.2).

    Two index sets of size ``pairs`` are drawn independently, each without replacement, and paired
    position by position (a pair may be the same row twice, as in the reference protocol).

    Args:
        emb: (N, D) embeddings with N >= ``pairs``.
        pairs: number of pairs (300).
        rng: numpy Generator or seed.

    Raises:
        MetricError: N < pairs.
    """
    e = _as2d(emb, "embeddings")
    if e.shape[0] < pairs:
        raise MetricError(f"diversity with {pairs} pairs needs at least {pairs} embeddings, got {e.shape[0]}; "
                          "evaluate on more samples or lower `pairs`")
    rng = np.random.default_rng(rng)
    first = rng.choice(e.shape[0], pairs, replace=False)
    second = rng.choice(e.shape[0], pairs, replace=False)
    return float(np.linalg.norm(e[first] - e[second], axis=1).mean())


def multimodality(emb, pairs: int = MULTIMODALITY_PAIRS, rng: np.random.Generator | int | None = None) -> float:
    """MModality: spread of repeated generations of one prompt (docs/design.md §10.2).

    For each prompt, ``pairs`` pairs of its R generations are drawn (two independent index sets without
    replacement, paired by position); the distances are averaged over pairs and prompts.

    Args:
        emb: (P, R, D) embeddings: P prompts, R >= ``pairs`` generations each (30 in the protocol).
        pairs: pairs per prompt (10).
        rng: numpy Generator or seed.

    Raises:
        MetricError: not 3-D, R < pairs, or non-finite values.
    """
    try:
        import torch

        if isinstance(emb, torch.Tensor):
            emb = emb.detach().cpu().numpy()
    except ImportError:  # pragma: no cover
        pass
    e = np.asarray(emb, dtype=np.float64)
    if e.ndim != 3:
        raise MetricError(f"multimodality needs (prompts, repeats, D) embeddings, got shape {e.shape}")
    if e.shape[1] < pairs:
        raise MetricError(f"multimodality with {pairs} pairs needs at least {pairs} generations per prompt, "
                          f"got {e.shape[1]}")
    if not np.isfinite(e).all():
        raise MetricError("multimodality embeddings contain NaN or inf")
    rng = np.random.default_rng(rng)
    first = rng.choice(e.shape[1], pairs, replace=False)
    second = rng.choice(e.shape[1], pairs, replace=False)
    return float(np.linalg.norm(e[:, first] - e[:, second], axis=-1).mean())


def label_accuracy(predicted: Sequence, target: Sequence) -> tuple[float, int]:
    """Share of samples whose predicted label equals the target label (recognition accuracy).

    Samples whose target is ``None`` (no such label, e.g. the style of an HDM05 clip) are skipped.

    Args:
        predicted: N predicted labels (class names or ids).
        target: N target labels, ``None`` where unknown.

    Returns:
        ``(accuracy, counted)``: accuracy in [0, 1] (NaN when nothing is counted) and the number of
        samples counted.

    Raises:
        MetricError: the sequences have different lengths.
    """
    if len(predicted) != len(target):
        raise MetricError(f"{len(predicted)} predictions for {len(target)} targets")
    pairs = [(p, t) for p, t in zip(predicted, target) if t is not None]
    if not pairs:
        return float("nan"), 0
    return sum(p == t for p, t in pairs) / len(pairs), len(pairs)


def summarize(values: Sequence[float]) -> dict:
    """Mean and 95% confidence half-width over N repeats (docs/design.md §10.2).

    ``ci95 = 1.96 * std / sqrt(N)`` with the population std (``ddof=0``), as the reference protocol
    computes it. NaN values (a metric that did not apply in a repeat) are dropped first.

    Returns:
        ``{"mean": float, "ci95": float, "std": float, "n": int}``; mean/ci95/std are NaN when no value
        is left.
    """
    v = np.asarray([float(x) for x in values], dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return {"mean": float("nan"), "ci95": float("nan"), "std": float("nan"), "n": 0}
    std = float(v.std())
    return {"mean": float(v.mean()), "ci95": 1.96 * std / math.sqrt(v.size), "std": std, "n": int(v.size)}


RARENESS_BINS = 10
"""Equal-width rareness bins of the Balanced MM-Dist (over the evaluated split's range of rareness)."""
RAREST_SHARE = 0.05
"""Share of the rarest prompts on which MM-Dist and Diversity are reported (ReMoGPT: the rarest 5 %)."""


def r_precision_hits(text_emb, motion_emb, top_k: int = 3) -> np.ndarray:
    """Per-pair hits of :func:`r_precision`: (B, top_k) bool, row i column k-1 True when motion i is among
    the k nearest motions of text i in the batch (``r_precision == hits.mean(0)``).

    Raises:
        MetricError: as :func:`r_precision`.
    """
    t, m = _as2d(text_emb, "text_emb"), _as2d(motion_emb, "motion_emb")
    if t.shape != m.shape:
        raise MetricError(f"text {t.shape} and motion {m.shape} embeddings must have the same shape (B, D)")
    if t.shape[0] < top_k:
        raise MetricError(f"R-precision top-{top_k} needs at least {top_k} pairs, got {t.shape[0]}")
    order = np.argsort(distance_matrix(t, m), axis=1, kind="stable")
    rank = np.argmax(order == np.arange(len(t))[:, None], axis=1)
    return rank[:, None] < np.arange(1, top_k + 1)[None, :]


def matching_distances(text_emb, motion_emb) -> np.ndarray:
    """Per-pair distances of :func:`matching_distance`: (N,) float64 (their mean is MM-Dist).

    Raises:
        MetricError: shapes differ or non-finite values.
    """
    t, m = _as2d(text_emb, "text_emb"), _as2d(motion_emb, "motion_emb")
    if t.shape != m.shape:
        raise MetricError(f"text {t.shape} and motion {m.shape} embeddings must have the same shape (N, D)")
    return np.linalg.norm(t - m, axis=1)


def rareness(prompt_emb, train_emb) -> np.ndarray:
    """Rareness of prompts (ReMoGPT's rare-motion protocol): 1 - the largest cosine similarity of each
    prompt's sentence embedding to the sentence embeddings of the training captions.

    Args:
        prompt_emb: (N, E) sentence embeddings of the prompts. train_emb: (M, E) of the train captions.

    Returns:
        (N,) float64 in [0, 2]; 0 for a prompt that is a training caption.

    Raises:
        MetricError: widths differ or non-finite values.
    """
    p, t = _as2d(prompt_emb, "prompt_emb"), _as2d(train_emb, "train_emb")
    if p.shape[1] != t.shape[1]:
        raise MetricError(f"prompt ({p.shape[1]}) and train ({t.shape[1]}) embeddings differ in width")
    p = p / np.linalg.norm(p, axis=1, keepdims=True).clip(1e-12)
    t = t / np.linalg.norm(t, axis=1, keepdims=True).clip(1e-12)
    best = np.full(len(p), -1.0)
    for s in range(0, len(t), 4096):
        best = np.maximum(best, (p @ t[s: s + 4096].T).max(axis=1))
    return 1.0 - best


def rarest(values, share: float = RAREST_SHARE, minimum: int = 2) -> np.ndarray:
    """Indices of the ``ceil(share * N)`` largest values (at least ``minimum``, at most N), rarest first.

    Raises:
        MetricError: ``share`` outside (0, 1].
    """
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    if not 0.0 < share <= 1.0:
        raise MetricError(f"share must be in (0, 1], got {share}")
    k = min(len(v), max(minimum, math.ceil(share * len(v))))
    return np.argsort(-v, kind="stable")[:k]


def balanced_matching_distance(distances, rare, low: float, high: float, bins: int = RARENESS_BINS) -> float:
    """Balanced MM-Dist: the mean over rareness bins of each bin's mean matching distance.

    ``bins`` equal-width bins over ``[low, high]`` (the evaluated split's rareness range); empty bins are
    skipped, so frequent and rare prompts weigh the same whatever their numbers.

    Args:
        distances: (N,) per-pair matching distances. rare: (N,) rareness of the pairs' prompts.
        low, high: rareness range of the bins (values outside are clipped into the end bins).

    Returns:
        The balanced distance (NaN for N = 0).

    Raises:
        MetricError: lengths differ or ``bins < 1``.
    """
    d = np.asarray(distances, dtype=np.float64).reshape(-1)
    r = np.asarray(rare, dtype=np.float64).reshape(-1)
    if d.shape != r.shape:
        raise MetricError(f"{d.size} distances for {r.size} rareness values")
    if bins < 1:
        raise MetricError(f"bins must be >= 1, got {bins}")
    if d.size == 0:
        return float("nan")
    width = (high - low) / bins if high > low else 1.0
    which = np.clip(((r - low) / width).astype(np.int64), 0, bins - 1)
    return float(np.mean([d[which == b].mean() for b in np.unique(which)]))
