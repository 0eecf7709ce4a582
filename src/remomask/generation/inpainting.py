"""Token-level inpainting: sample only some positions of a token grid, keep the others as given.

Editing (arXiv 2508.02605 builds on MoMask's masked generation, whose temporal in-painting regenerates a masked
span of the base layer; MoMask then re-samples the residual layers of the *whole* sequence). Here every kept
position keeps **all** its quantiser layers:

- base layer: the iterative masked decoding of :func:`~remomask.generation.sampling.generate_base` restricted
  to the edited positions. At step i of S (tau = i / (S - 1)), the ``max(1, round(cos(pi tau / 2) E_b))``
  least confident *edited* positions of sample b (E_b edited positions) are masked again and re-sampled with
  the guided logits (RAG-CFG, :func:`~remomask.generation.sampling.guided_logits`); kept positions carry their
  given ids in every pass and are never masked;
- residual layers q = 1..Q-1: the residual transformer's guided logits are sampled at the edited positions
  only; kept positions keep their given layer-q ids, so later layers see the true history there.

A position can be edited even where the given grid holds -1 (an extension past the source's end): it is
generated like any masked position. Positions that are -1 and not edited are padding.
"""

from __future__ import annotations

import math

import torch

from .conditions import as_retrieved, check_text
from .sampling import (SamplingConfig, default_top_k, guided_logits, guided_residual_logits, make_generator,
                       sample_tokens, top_k_filter)

__all__ = ["inpaint_base", "inpaint_residual", "inpaint_tokens"]


def _device(model) -> torch.device:
    return next(model.parameters()).device


def _check_edit(ids: torch.Tensor, edit, layers: bool) -> tuple[torch.Tensor, torch.Tensor]:
    want = 4 if layers else 3
    if not isinstance(ids, torch.Tensor) or ids.ndim != want:
        shape = tuple(ids.shape) if isinstance(ids, torch.Tensor) else type(ids).__name__
        raise ValueError(f"ids must be a {'(B, n, J, Q)' if layers else '(B, n, J)'} long tensor, got {shape}")
    edit = torch.as_tensor(edit, dtype=torch.bool, device=ids.device)
    grid = ids.shape[:3]
    if edit.shape != grid:
        raise ValueError(f"edit mask must be {tuple(grid)} (B, n, J) bool, got {tuple(edit.shape)}")
    return ids.long(), edit


@torch.no_grad()
def inpaint_base(model, base_ids: torch.Tensor, edit, text, retrieval=None, *, steps: int = 10,
                 cond_scale: float = 4.0, text_scale: float = 0.0, retrieval_scale: float = 0.0,
                 top_k: int | None = None, temperature: float = 1.0, gumbel: bool = False,
                 generator=None) -> torch.Tensor:
    """Regenerate the edited positions of the base layer, keeping the others (module docstring).

    Args:
        model: :class:`~remomask.generation.mask_transformer.MaskTransformer`.
        base_ids: (B, n, J') long layer-0 ids; -1 = padding where not edited (any value where edited).
        edit: (B, n, J') bool, True = regenerate. A valid position is ``base_ids >= 0`` or edited.
        text: (B, text_dim) sentence embeddings or None. retrieval: retrieval input for the B prompts or None.
        steps, cond_scale, text_scale, retrieval_scale, top_k, temperature, gumbel: as in
            :class:`~remomask.generation.sampling.SamplingConfig`.
        generator: ``torch.Generator``, int seed or None.

    Returns:
        (B, n, J') long ids: kept positions equal ``base_ids`` exactly, edited ones in [0, K), -1 at padding.

    Raises:
        ValueError: bad shapes, steps < 1, more than ``max_tokens`` rows, the model's input errors.

    Source: arXiv 2508.02605 Sec. 3 (masked generation with RAG-CFG); MoMask (temporal in-painting).
    """
    c = model.config
    dev = _device(model)
    ids, edit = _check_edit(base_ids.to(dev), edit, layers=False)
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    b, n, j = ids.shape
    if n > c.max_tokens:
        raise ValueError(f"{n} token rows exceed the model's {c.max_tokens}; edit a shorter window")
    if j != c.num_columns:
        raise ValueError(f"ids have {j} columns, the model {c.num_columns}")
    gen = make_generator(generator, dev)
    k = default_top_k(c.num_codes) if top_k is None else int(top_k)
    text = check_text(text, b, c.text_dim, dev)
    if retrieval is not None and c.use_retrieval:
        retrieval = as_retrieved(retrieval, b, c.retrieval_k, c.retrieval_dim, dev)
    valid = (ids >= 0) | edit
    flat_edit = edit.reshape(b, n * j)
    cur = torch.where(valid, ids.clamp(min=0), torch.full_like(ids, c.pad_id)).reshape(b, n * j)
    cur = cur.masked_fill(flat_edit, c.mask_id)
    scores = torch.full((b, n * j), math.inf, device=dev).masked_fill(flat_edit, 0.0)
    edited = flat_edit.sum(1)
    for step in range(steps):
        tau = step / (steps - 1) if steps > 1 else 0.0
        count = torch.round(edited.float() * math.cos(math.pi * tau / 2)).long()
        count = torch.where(edited > 0, count.clamp(min=1), count)
        rank = scores.argsort(dim=1, stable=True).argsort(dim=1)
        remask = (rank < count[:, None]) & flat_edit
        cur = cur.masked_fill(remask, c.mask_id)
        logits = guided_logits(model, cur.reshape(b, n, j), text, retrieval, cond_scale=cond_scale,
                               text_scale=text_scale, retrieval_scale=retrieval_scale)
        drawn = sample_tokens(top_k_filter(logits, k), temperature=temperature, gumbel=gumbel, generator=gen)
        cur = torch.where(remask, drawn, cur)
        prob = torch.softmax(logits, -1).gather(-1, drawn[..., None]).squeeze(-1)
        scores = torch.where(remask, prob, scores)
    out = torch.where(flat_edit, cur, ids.reshape(b, n * j))
    return out.masked_fill(~valid.reshape(b, n * j), -1).reshape(b, n, j)


@torch.no_grad()
def inpaint_residual(model, ids: torch.Tensor, edit, text, *, cond_scale: float = 5.0, top_k: int | None = None,
                     temperature: float = 1.0, gumbel: bool = True, generator=None) -> torch.Tensor:
    """Fill layers 1..Q-1 at the edited positions; kept positions keep every layer given.

    Args:
        model: :class:`~remomask.generation.residual_transformer.ResidualTransformer`.
        ids: (B, n, J', Q') long; layer 0 complete (-1 = padding); layers 1.. of kept positions given
            (Q' < Q: the missing layers of kept positions are generated too, as are all of edited ones).
        edit: (B, n, J') bool, True = regenerate layers 1..Q-1.
        text: (B, text_dim) or None. cond_scale, top_k, temperature, gumbel: residual sampling settings.
        generator: ``torch.Generator``, int seed or None.

    Returns:
        (B, n, J', Q) long ids, -1 at padding; kept positions equal ``ids`` on every given layer.

    Raises:
        ValueError: bad shapes or ids.

    Source: arXiv 2508.02605 Sec. 3 (residual transformer); MoMask (residual layers).
    """
    c = model.config
    dev = _device(model)
    ids, edit = _check_edit(ids.to(dev), edit, layers=True)
    b, n, j, have = ids.shape
    gen = make_generator(generator, dev)
    k = default_top_k(c.num_codes) if top_k is None else int(top_k)
    text = check_text(text, b, c.text_dim, dev)
    valid = ids[..., 0] >= 0
    out = torch.full((b, n, j, c.num_quantizers), -1, dtype=torch.long, device=dev)
    out[..., :min(have, c.num_quantizers)] = ids[..., :c.num_quantizers]
    out = out.masked_fill(~valid[..., None], -1)
    for q in range(1, c.num_quantizers):
        fill = edit & valid if q < have else valid
        if not bool(fill.any()):
            continue
        logits = guided_residual_logits(model, out, q, text, cond_scale=cond_scale)
        drawn = sample_tokens(top_k_filter(logits, k), temperature=temperature, gumbel=gumbel,
                              generator=gen).reshape(b, n, j)
        out[..., q] = torch.where(fill, drawn, out[..., q])
    return out


@torch.no_grad()
def inpaint_tokens(mask_model, residual_model, ids: torch.Tensor, edit, text, retrieval=None, *,
                   config: SamplingConfig | None = None, generator=None) -> torch.Tensor:
    """Base layer then residual layers, regenerating only the ``edit`` positions of ``ids``.

    Args:
        mask_model, residual_model: the two transformers (``residual_model`` None = base layer only).
        ids: (B, n, J', Q) long source ids (from ``MotionTokenizer.encode``), -1 at padding; edited
            positions may hold anything (e.g. -1 past the end of the source).
        edit: (B, n, J') bool, True = regenerate (all layers).
        text, retrieval: conditions for the new content.
        config: :class:`~remomask.generation.sampling.SamplingConfig`.
        generator: ``torch.Generator``, int seed or None (one generator drives both stages).

    Returns:
        (B, n, J', Q) long ids. ``out[~edit] == ids[~edit]`` on every layer of ``ids``.

    Raises:
        ValueError: bad shapes or the stages' errors.

    Source: arXiv 2508.02605 Sec. 3; MoMask (temporal in-painting), with kept residual layers (this module).
    """
    cfg = config or SamplingConfig()
    dev = _device(mask_model)
    ids, edit = _check_edit(ids.to(dev), edit, layers=True)
    gen = make_generator(generator, dev)
    base = inpaint_base(mask_model, ids[..., 0], edit, text, retrieval, steps=cfg.steps, cond_scale=cfg.cond_scale,
                        text_scale=cfg.text_scale, retrieval_scale=cfg.retrieval_scale, top_k=cfg.top_k,
                        temperature=cfg.temperature, gumbel=cfg.gumbel, generator=gen)
    full = ids.clone()
    full[..., 0] = base
    full = full.masked_fill((base < 0)[..., None], -1)
    if residual_model is None:
        return full[..., :1]
    return inpaint_residual(residual_model, full, edit, text, cond_scale=cfg.residual_cond_scale,
                            top_k=cfg.residual_top_k, temperature=cfg.residual_temperature,
                            gumbel=cfg.residual_gumbel, generator=gen)
