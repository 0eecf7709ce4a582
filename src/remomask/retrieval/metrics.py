"""Retrieval metrics (docs/design.md §10.3): R@k and MedR in both directions, and label precision@k.

Protocol (docs/design.md §10.3): one caption per item, similarity = cosine of L2-normalised embeddings, and every
item whose caption string is *identical* to the query's counts as a correct match; the best-ranked one
decides the rank. Ties are broken in the query's favour: the rank of a query is the number of items
scoring strictly higher than its best correct item (0 = first). R@k is the percentage of queries with
rank < k; MedR is ``median(rank) + 1`` (1-based).

Label precision@k (remomask): the share (percent) of the top-k retrieved items whose labels equal the
query's labels, averaged over queries.
"""

from __future__ import annotations

from typing import Hashable, Sequence

import numpy as np
import torch

__all__ = [
    "RECALL_KS",
    "LABEL_KS",
    "identical_caption_matrix",
    "best_correct_ranks",
    "recall_summary",
    "label_precision",
    "retrieval_metrics",
    "batched_retrieval_metrics",
]

RECALL_KS = (1, 2, 3, 5, 10)
LABEL_KS = (1, 5, 10)


def _np(x) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().float().numpy()
    return np.asarray(x)


def identical_caption_matrix(query_captions: Sequence[str], item_captions: Sequence[str]) -> np.ndarray:
    """(Q, N) bool, True where the two captions are the same string (after stripping spaces and case)."""
    def norm(s: str) -> str:
        return s.strip().lower()

    ids: dict[str, int] = {}
    q = np.array([ids.setdefault(norm(c), len(ids)) for c in query_captions])
    n = np.array([ids.setdefault(norm(c), len(ids)) for c in item_captions])
    return q[:, None] == n[None, :]


def best_correct_ranks(sim, correct) -> np.ndarray:
    """0-based rank of the best correct item per query.

    Args:
        sim: (Q, N) similarities (higher = better).
        correct: (Q, N) bool, at least one True per row.

    Returns:
        (Q,) int: for each query, the number of items with a strictly higher similarity than its best
        correct item.

    Raises:
        ValueError: shape mismatch or a query with no correct item.
    """
    sim, correct = _np(sim).astype(np.float64), _np(correct).astype(bool)
    if sim.shape != correct.shape or sim.ndim != 2:
        raise ValueError(f"sim {sim.shape} and correct {correct.shape} must be the same (Q, N) shape")
    if not correct.any(axis=1).all():
        raise ValueError(f"query {int(np.argmin(correct.any(axis=1)))} has no correct item")
    best = np.where(correct, sim, -np.inf).max(axis=1)
    return (sim > best[:, None]).sum(axis=1)


def recall_summary(ranks, ks: Sequence[int] = RECALL_KS) -> dict[str, float]:
    """``{"R@k": percent of ranks < k, ..., "MedR": median(rank) + 1}`` for 0-based ranks."""
    ranks = np.asarray(ranks)
    out = {f"R@{k}": float(100.0 * (ranks < k).mean()) for k in ks}
    out["MedR"] = float(np.median(ranks) + 1)
    return out


def label_precision(sim, query_labels: Sequence[Hashable], item_labels: Sequence[Hashable],
                    ks: Sequence[int] = LABEL_KS, exclude=None) -> dict[str, float]:
    """Percent of the top-k items whose label equals the query's, averaged over queries.

    Args:
        sim: (Q, N) similarities.
        query_labels, item_labels: Q and N hashable labels (e.g. ``"walk"`` or ``("walk", "tired")``).
        ks: cut-offs; a k above N uses N.
        exclude: optional (Q, N) bool of items to skip for each query (e.g. the query's own motion).

    Returns:
        ``{"P@k": percent}`` for each k.
    """
    sim = _np(sim).astype(np.float64)
    if exclude is not None:
        sim = np.where(_np(exclude).astype(bool), -np.inf, sim)
    ids: dict = {}
    ql = np.array([ids.setdefault(x, len(ids)) for x in query_labels])
    il = np.array([ids.setdefault(x, len(ids)) for x in item_labels])
    kmax = min(max(ks), sim.shape[1])
    top = np.argsort(-sim, axis=1, kind="stable")[:, :kmax]  # (Q, kmax)
    hit = il[top] == ql[:, None]
    return {f"P@{k}": float(100.0 * hit[:, : min(k, kmax)].mean()) for k in ks}


def retrieval_metrics(text_emb, motion_emb, captions: Sequence[str], labels: Sequence[dict] | None = None,
                      *, ks: Sequence[int] = RECALL_KS, label_ks: Sequence[int] = LABEL_KS) -> dict:
    """Full-pool retrieval metrics of N paired (text, motion) embeddings (docs/design.md §10.3).

    Args:
        text_emb, motion_emb: (N, E) L2-normalised embeddings; row i of both is one item.
        captions: N caption strings (identical captions count as correct matches).
        labels: optional N label dicts (``action``, ``style``) for label precision.

    Returns:
        ``{"n": N, "t2m": {"R@1": .., "MedR": ..}, "m2t": {..}, "label_precision": {"t2m": {"action": {"P@1": ..},
        "action_style": {..}}}}`` (percent; the label block only when labels are given).

    Raises:
        ValueError: shapes differ or N != len(captions).
    """
    t, m = _np(text_emb).astype(np.float64), _np(motion_emb).astype(np.float64)
    if t.shape != m.shape or t.ndim != 2 or len(captions) != t.shape[0]:
        raise ValueError(f"text {t.shape}, motion {m.shape} and {len(captions)} captions must describe the same N items")
    sim = t @ m.T  # (N texts, N motions)
    correct = identical_caption_matrix(captions, captions)
    out = {
        "n": int(t.shape[0]),
        "t2m": recall_summary(best_correct_ranks(sim, correct), ks),
        "m2t": recall_summary(best_correct_ranks(sim.T, correct.T), ks),
    }
    if labels is not None:
        action = [lab.get("action") for lab in labels]
        both = [(lab.get("action"), lab.get("style")) for lab in labels]
        out["label_precision"] = {"t2m": {
            "action": label_precision(sim, action, action, label_ks),
            "action_style": label_precision(sim, both, both, label_ks),
        }}
    return out


def batched_retrieval_metrics(text_emb, motion_emb, captions: Sequence[str], *, batch_size: int = 32,
                              seed: int = 0, ks: Sequence[int] = (1, 2, 3, 5, 10)) -> dict:
    """The batch-of-32 protocol: shuffle (seeded), cut into batches of ``batch_size`` (last partial batch
    dropped), compute ranks inside each batch, pool the ranks over all batches.

    Returns:
        ``{"n": queries used, "batch_size": .., "t2m": {...}, "m2t": {...}}``.

    Raises:
        ValueError: fewer items than one batch.
    """
    t, m = _np(text_emb).astype(np.float64), _np(motion_emb).astype(np.float64)
    N = t.shape[0]
    if N < batch_size:
        raise ValueError(f"{N} items are fewer than one batch of {batch_size}")
    order = np.random.default_rng(seed).permutation(N)
    r_t2m, r_m2t = [], []
    for s in range(0, N - batch_size + 1, batch_size):
        idx = order[s: s + batch_size]
        sim = t[idx] @ m[idx].T
        correct = identical_caption_matrix([captions[i] for i in idx], [captions[i] for i in idx])
        r_t2m.append(best_correct_ranks(sim, correct))
        r_m2t.append(best_correct_ranks(sim.T, correct.T))
    r_t2m, r_m2t = np.concatenate(r_t2m), np.concatenate(r_m2t)
    return {"n": int(len(r_t2m)), "batch_size": batch_size,
            "t2m": recall_summary(r_t2m, ks), "m2t": recall_summary(r_m2t, ks)}
