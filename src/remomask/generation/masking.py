"""Training corruption and loss of the masked transformer: temporal + spatial masking (docs/design.md §5.4).

Per sample, draw u ~ U(0, 1) and the cosine mask ratio p = cos(pi u / 2). With n_b real time rows and
T_b = n_b * J' real tokens:

1. temporal pass: max(1, round(n_b p)) random real *time rows* are selected (all their columns);
2. spatial pass, same p: max(1, round(T_b p)) random real *tokens* that the temporal pass did not take
   (fewer when fewer remain), so the selected fraction is p + min(p, 1 - p);
3. BERT corruption of the selection: 10 % get random codes (per temporal row / per spatial token, ids drawn
   per token), 88 % of the rest become [MASK], the remainder keep their code;
4. cross-entropy on the selected positions only (labels elsewhere are ``IGNORE_INDEX``).

Topology Structured Masking (ECCV, docs/design.md §14 item 3) is not implemented: it weights body parts by the
text-to-part similarity of the retriever, but remomask's token columns are positional groups of the padded
joint list (design §3.1, §15.10), not the retriever's six body parts, so there is no faithful part-to-column map.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .conditions import token_valid

__all__ = ["IGNORE_INDEX", "cosine_schedule", "MaskedGrid", "mask_grid", "masked_cross_entropy", "LossOutput"]

IGNORE_INDEX = -100
"""Label of positions that do not count in the loss (``F.cross_entropy``'s default ``ignore_index``)."""


def cosine_schedule(t: torch.Tensor) -> torch.Tensor:
    """Mask ratio ``cos(pi t / 2)`` for t in [0, 1] (1 -> 0): the MaskGIT / MoMask schedule (design §5.4, §7)."""
    return torch.cos(t * (math.pi / 2))


@dataclass
class LossOutput:
    """Loss of one training batch.

    Attributes:
        loss: scalar cross-entropy over the counted positions (differentiable).
        accuracy: scalar fraction of counted positions whose argmax is the label (no gradient).
        count: number of counted positions (int).
        extra: dict of detached diagnostics (e.g. mean mask ratio, layer q).
    """

    loss: torch.Tensor
    accuracy: torch.Tensor
    count: int
    extra: dict


@dataclass
class MaskedGrid:
    """Result of :func:`mask_grid`.

    Attributes:
        inputs: (B, n, J) long model input: codes, random codes, [MASK] (K), and ``K + 1`` at padding.
        labels: (B, n, J) long: the true code at selected positions, ``IGNORE_INDEX`` elsewhere.
        ratio: (B,) float mask ratio p of each sample.
        temporal: (B, n, J) bool positions selected by the temporal pass.
        spatial: (B, n, J) bool positions selected by the spatial pass.
    """

    inputs: torch.Tensor
    labels: torch.Tensor
    ratio: torch.Tensor
    temporal: torch.Tensor
    spatial: torch.Tensor


def _rand(shape, device, generator) -> torch.Tensor:
    return torch.rand(shape, device=device, generator=generator)


def _lowest(scores: torch.Tensor, count: torch.Tensor) -> torch.Tensor:
    """(B, S) scores, (B,) counts -> (B, S) bool: the ``count`` lowest scores of each row."""
    rank = scores.argsort(dim=1).argsort(dim=1)
    return rank < count[:, None]


def mask_grid(ids: torch.Tensor, num_codes: int, *, ratio: torch.Tensor | None = None, random_prob: float = 0.1,
              mask_prob: float = 0.88, temporal: bool = True, spatial: bool = True,
              generator: torch.Generator | None = None, column_codes=None) -> MaskedGrid:
    """Select and corrupt tokens of a base-layer grid for masked-token training (docs/design.md §5.4).

    Args:
        ids: (B, n, J) long base-layer ids in [0, K), ``-1`` (or ``K + 1``) at padding; every sample needs at
            least one real token.
        num_codes: K (mask id K, pad id K + 1).
        ratio: optional (B,) mask ratios p in [0, 1]; None draws p = cos(pi u / 2), u ~ U(0, 1).
        random_prob: fraction of selected rows / tokens given random codes (0.1).
        mask_prob: fraction of the rest given [MASK] (0.88).
        temporal, spatial: run the temporal / spatial pass (both by default; the MoMask 1D scheme is
            ``temporal=False`` with J = 1).
        generator: torch generator for every random draw (None = global RNG).
        column_codes: optional (J,) codes of each column's codebook (``MaskTransformerConfig.column_codes``):
            random replacement codes of column j are drawn from ``0..column_codes[j]-1``; None = ``0..K-1``.

    Returns:
        :class:`MaskedGrid`.

    Raises:
        ValueError: bad ids, a sample without real tokens, ratios outside [0, 1], or both passes off.
    """
    if ids.ndim != 3:
        raise ValueError(f"ids must be a (B, n, J) base-layer grid, got shape {tuple(ids.shape)}")
    if not (temporal or spatial):
        raise ValueError("at least one of the temporal and spatial passes must be on")
    valid = token_valid(ids, num_codes, num_codes + 1, allow_mask=False)
    b, n, j = ids.shape
    dev = ids.device
    tokens = valid.sum((1, 2))
    if (tokens == 0).any():
        raise ValueError(f"samples {torch.nonzero(tokens == 0).flatten().tolist()} have no real token; "
                         "drop empty motions before masking")
    if ratio is None:
        ratio = cosine_schedule(_rand((b,), dev, generator))
    ratio = torch.as_tensor(ratio, dtype=torch.float32, device=dev)
    if ratio.shape != (b,) or (ratio < 0).any() or (ratio > 1).any():
        raise ValueError(f"ratio must be (B,) = ({b},) values in [0, 1], got {ratio.tolist()}")

    row_valid = valid.any(-1)                                                      # (B, n)
    rows = row_valid.sum(1)
    sel_t = torch.zeros_like(valid)
    if temporal:
        count = torch.minimum(torch.round(rows * ratio).long().clamp_min(1), rows)
        scores = _rand((b, n), dev, generator).masked_fill(~row_valid, 2.0)
        sel_t = (_lowest(scores, count) & row_valid)[:, :, None] & valid
    sel_s = torch.zeros_like(valid)
    if spatial:
        eligible = (valid & ~sel_t).reshape(b, n * j)
        count = torch.minimum(torch.round(tokens * ratio).long().clamp_min(1), eligible.sum(1))
        scores = _rand((b, n * j), dev, generator).masked_fill(~eligible, 2.0)
        sel_s = (_lowest(scores, count) & eligible).reshape(b, n, j)

    # BERT corruption: per temporal row and per spatial token
    u_row = _rand((b, n, 2), dev, generator)
    u_tok = _rand((b, n, j, 2), dev, generator)
    rand_t, mask_t = u_row[..., 0] < random_prob, u_row[..., 1] < mask_prob
    rand_s, mask_s = u_tok[..., 0] < random_prob, u_tok[..., 1] < mask_prob
    to_random = (sel_t & rand_t[..., None]) | (sel_s & rand_s)
    to_mask = (sel_t & ~rand_t[..., None] & mask_t[..., None]) | (sel_s & ~rand_s & mask_s)
    if column_codes is None:
        random_ids = torch.randint(0, num_codes, (b, n, j), device=dev, generator=generator)
    else:                                                                          # uniform in each column's codes
        limit = torch.as_tensor(column_codes, dtype=torch.float32, device=dev)
        random_ids = (_rand((b, n, j), dev, generator) * limit).long().clamp_max(limit.long() - 1)

    inputs = torch.where(to_random, random_ids, ids)
    inputs = inputs.masked_fill(to_mask, num_codes).masked_fill(~valid, num_codes + 1)
    labels = torch.where(sel_t | sel_s, ids, torch.full_like(ids, IGNORE_INDEX))
    return MaskedGrid(inputs, labels, ratio, sel_t, sel_s)


def masked_cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Cross-entropy and accuracy over the labelled positions.

    Args:
        logits: (B, N, K) float.
        labels: (B, N) or (B, n, J) long with ``IGNORE_INDEX`` where nothing is predicted.

    Returns:
        ``(loss, accuracy, count)``: scalar mean CE (0 with a gradient path if nothing is labelled),
        scalar accuracy (no gradient) and the number of labelled positions.

    Raises:
        ValueError: shapes that do not line up.
    """
    b, n, k = logits.shape
    labels = labels.reshape(b, -1)
    if labels.shape[1] != n:
        raise ValueError(f"labels have {labels.shape[1]} positions per sample, logits {n}")
    flat_logits = logits.reshape(-1, k).float()
    flat = labels.reshape(-1)
    counted = flat != IGNORE_INDEX
    count = int(counted.sum())
    if count == 0:
        zero = flat_logits.sum() * 0.0
        return zero, zero.detach(), 0
    loss = F.cross_entropy(flat_logits, flat, ignore_index=IGNORE_INDEX)
    with torch.no_grad():
        acc = (flat_logits[counted].argmax(-1) == flat[counted]).float().mean()
    return loss, acc, count
