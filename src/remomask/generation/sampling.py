"""Batched, seeded sampling: iterative masked decoding of the base layer, then the residual layers (design §6.4, §7).

Base layer (MoMask semantics, docs/design.md §7). For step i of S, tau = i / (S - 1) and r = cos(pi tau / 2):

1. re-mask the max(1, round(r L_b J')) lowest-confidence positions of sample b (L_b real rows). Positions
   kept at an earlier step hold confidence 1e5 and padding is never chosen, so only the tokens sampled in
   the previous step compete;
2. logits with classifier-free guidance: ``uncond + s (cond - uncond)`` where the unconditional pass drops
   text and retrieval (docs/design.md §5.5); optionally ``+ s_t (text_only - uncond) + s_r (retrieval_only - uncond)``;
3. top-k filter, then sample with the temperature applied to the logits (categorical, or Gumbel-max);
   temperature 0 is argmax. (The public 2D code divides probabilities inside ``Categorical``, which cancels
   the temperature; here it acts.)
4. write the samples at the re-masked positions; their confidence is the softmax probability of the sampled
   id under the unfiltered guided logits.

Residual layers (docs/design.md §6.4): for q = 1..Q-1, guided logits (text vs. null text, scale 5), top-k, sample
(Gumbel by default). Padding stays -1 everywhere.

Randomness comes only from the ``generator`` (or ``seed``) given, so a call is reproducible.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import asdict, dataclass

import torch

from .conditions import Retrieved, as_retrieved, check_text, lengths_to_valid, restrict_to_columns

__all__ = [
    "SamplingConfig",
    "default_top_k",
    "combine_guidance",
    "top_k_filter",
    "sample_tokens",
    "make_generator",
    "guided_logits",
    "guided_residual_logits",
    "generate_base",
    "generate_residual",
    "generate_tokens",
]

_KEEP = 1e5  # confidence of positions that must not be re-masked (docs/design.md §7)


@dataclass
class SamplingConfig:
    """Sampling settings (docs/design.md §7, §6.4; defaults: README evaluation).

    Attributes:
        steps: masked-decoding iterations (10).
        cond_scale: s in ``uncond + s (cond - uncond)`` for the base layer (4; 1 = no guidance, 0 = unconditional).
        text_scale, retrieval_scale: extra text-only / retrieval-only guidance terms (0 = off).
        top_k: logits kept per position; None = ceil(0.1 K) (the reference's 0.9 filter), K or more = no filter.
        temperature: softmax temperature on the logits (1; 0 = argmax).
        gumbel: Gumbel-max instead of categorical sampling for the base layer (False).
        residual_cond_scale, residual_top_k, residual_temperature, residual_gumbel: the same for the residual
            layers (5, None, 1, True).
    """

    steps: int = 10
    cond_scale: float = 4.0
    text_scale: float = 0.0
    retrieval_scale: float = 0.0
    top_k: int | None = None
    temperature: float = 1.0
    gumbel: bool = False
    residual_cond_scale: float = 5.0
    residual_top_k: int | None = None
    residual_temperature: float = 1.0
    residual_gumbel: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.steps, int) or self.steps < 1:
            raise ValueError(f"steps must be an integer >= 1, got {self.steps!r}")
        for name in ("temperature", "residual_temperature"):
            if not float(getattr(self, name)) >= 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)!r}")
        for name in ("cond_scale", "text_scale", "retrieval_scale", "residual_cond_scale"):
            if not math.isfinite(float(getattr(self, name))):  # nan / inf reach torch.multinomial otherwise
                raise ValueError(f"{name} must be a finite number, got {getattr(self, name)!r}")
        for name in ("top_k", "residual_top_k"):
            v = getattr(self, name)
            if v is not None and (not isinstance(v, int) or v < 1):
                raise ValueError(f"{name} must be None or an integer >= 1, got {v!r}")

    def to_dict(self) -> dict:
        """JSON-ready dict."""
        return asdict(self)


def default_top_k(num_codes: int) -> int:
    """Logits kept by the reference filter threshold 0.9: ceil(0.1 K) (26 for K = 256)."""
    return max(1, math.ceil(0.1 * num_codes))


def combine_guidance(uncond: torch.Tensor, cond: torch.Tensor | None = None, cond_scale: float = 1.0, *,
                     text_only: torch.Tensor | None = None, text_scale: float = 0.0,
                     retrieval_only: torch.Tensor | None = None, retrieval_scale: float = 0.0) -> torch.Tensor:
    """Classifier-free guidance (docs/design.md §5.5): ``u + s (c - u) + s_t (t - u) + s_r (r - u)``.

    Args:
        uncond: logits with text and retrieval dropped. cond: both on. text_only / retrieval_only: one on.
        cond_scale, text_scale, retrieval_scale: s, s_t, s_r; a term whose scale is 0 may be None.

    Returns:
        Tensor of the logits' shape.

    Raises:
        ValueError: a non-zero scale without its logits.
    """
    out = uncond
    for name, logits, scale in (("cond", cond, cond_scale), ("text_only", text_only, text_scale),
                                ("retrieval_only", retrieval_only, retrieval_scale)):
        if scale == 0:
            continue
        if logits is None:
            raise ValueError(f"{name} logits are needed for a non-zero scale ({scale})")
        out = out + scale * (logits - uncond)
    return out


def top_k_filter(logits: torch.Tensor, k: int) -> torch.Tensor:
    """Keep the k largest logits of the last axis, set the others to -inf (k >= size keeps all).

    Raises:
        ValueError: k < 1.
    """
    if k < 1:
        raise ValueError(f"top_k must be >= 1, got {k}")
    if k >= logits.shape[-1]:
        return logits
    idx = logits.topk(k, dim=-1).indices
    keep = torch.zeros_like(logits, dtype=torch.bool).scatter_(-1, idx, True)
    return logits.masked_fill(~keep, float("-inf"))


def sample_tokens(logits: torch.Tensor, *, temperature: float = 1.0, gumbel: bool = False,
                  generator: torch.Generator | None = None) -> torch.Tensor:
    """Draw one id per position from ``softmax(logits / temperature)``.

    Args:
        logits: (..., K) float; -inf entries are never drawn.
        temperature: > 0 scales the logits; 0 = argmax.
        gumbel: Gumbel-max trick (``argmax(logits / T + G)``) instead of a categorical draw (same distribution).
        generator: torch generator on the logits' device.

    Returns:
        (...) long ids.

    Raises:
        ValueError: temperature < 0.
    """
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    logits = logits.float()
    if temperature == 0:
        return logits.argmax(-1)
    scaled = logits / temperature
    if gumbel:
        u = torch.rand(scaled.shape, device=scaled.device, generator=generator).clamp_(1e-20, 1.0 - 1e-7)
        return (scaled - torch.log(-torch.log(u))).argmax(-1)
    probs = torch.softmax(scaled, dim=-1)
    flat = torch.multinomial(probs.reshape(-1, probs.shape[-1]), 1, generator=generator)
    return flat.reshape(probs.shape[:-1])


def make_generator(seed_or_generator, device) -> torch.Generator | None:
    """A ``torch.Generator`` on ``device`` from an int seed; a generator passes through; None stays None."""
    if seed_or_generator is None or isinstance(seed_or_generator, torch.Generator):
        return seed_or_generator
    gen = torch.Generator(device=torch.device(device))
    gen.manual_seed(int(seed_or_generator))
    return gen


@contextlib.contextmanager
def _eval(*models):
    modes = [m.training for m in models]
    try:
        for m in models:
            m.eval()
        yield
    finally:
        for m, mode in zip(models, modes):
            m.train(mode)


def _device(model) -> torch.device:
    return next(model.parameters()).device


@torch.no_grad()
def guided_logits(model, ids: torch.Tensor, text, retrieval=None, *, cond_scale: float = 4.0, text_scale: float = 0.0,
                  retrieval_scale: float = 0.0) -> torch.Tensor:
    """Guided base-layer logits of a :class:`~remomask.generation.mask_transformer.MaskTransformer` (design §5.5).

    The needed passes (both on / text only / retrieval only / both off) run as one batch.

    Args:
        model: the masked transformer (eval mode expected).
        ids: (B, n, J') current ids (codes, mask, padding). text: (B, text_dim) or None.
        retrieval: retrieval input or None (then "cond" has text only).
        cond_scale, text_scale, retrieval_scale: see :func:`combine_guidance`.

    Returns:
        (B, n J', K) float32 logits; -inf at the ids a column's codebook does not have
        (``config.column_codes``).

    Raises:
        ValueError: ``retrieval_scale`` on a model without retrieval.
    """
    use_r = model.config.use_retrieval
    if retrieval_scale and not use_r:
        raise ValueError("retrieval_scale needs a model trained with retrieval (config.use_retrieval=True)")
    passes = []                                                      # (name, text_on, retrieval_on)
    only_cond = cond_scale == 1 and not text_scale and not retrieval_scale
    if cond_scale:
        passes.append(("cond", True, True))
    if text_scale:
        passes.append(("text_only", True, False))
    if retrieval_scale:
        passes.append(("retrieval_only", False, True))
    if not only_cond:
        passes.append(("uncond", False, False))
    b = ids.shape[0]
    p = len(passes)
    dev = ids.device
    if retrieval is not None and use_r and not isinstance(retrieval, Retrieved):
        c = model.config
        retrieval = as_retrieved(retrieval, b, c.retrieval_k, c.retrieval_dim, dev)
    t_on = torch.tensor([t for _, t, _ in passes], device=dev).repeat_interleave(b)
    r_on = torch.tensor([r for _, _, r in passes], device=dev).repeat_interleave(b)
    text_rep = None if text is None else text.repeat(p, 1)
    retr_rep = retrieval.repeat(p) if isinstance(retrieval, Retrieved) else retrieval
    logits = model(ids.repeat(p, 1, 1), text_rep, retr_rep, text_on=t_on, retrieval_on=r_on).float()
    out = dict(zip((name for name, _, _ in passes), logits.reshape(p, b, *logits.shape[1:])))
    if only_cond:
        return restrict_to_columns(out["cond"], model.config.column_codes)
    guided = combine_guidance(out["uncond"], out.get("cond"), cond_scale, text_only=out.get("text_only"),
                              text_scale=text_scale, retrieval_only=out.get("retrieval_only"),
                              retrieval_scale=retrieval_scale)
    return restrict_to_columns(guided, model.config.column_codes)


@torch.no_grad()
def guided_residual_logits(model, ids: torch.Tensor, q: int, text, *, cond_scale: float = 5.0) -> torch.Tensor:
    """Guided logits of layer ``q`` from a :class:`~remomask.generation.residual_transformer.ResidualTransformer`:
    ``uncond + s (cond - uncond)`` with the null text token as the unconditional pass (docs/design.md §6.4).

    Returns:
        (B, n J', K) float32; -inf at the ids a column's codebook does not have (``config.column_codes``).
    """
    b = ids.shape[0]
    if cond_scale == 1 or text is None:
        logits = model(ids, q, text, text_on=True).float()
    elif cond_scale == 0:
        logits = model(ids, q, text, text_on=False).float()
    else:
        on = torch.cat([torch.ones(b, dtype=torch.bool), torch.zeros(b, dtype=torch.bool)]).to(ids.device)
        both = model(ids.repeat(2, 1, 1, 1), q, text.repeat(2, 1), text_on=on).float()
        logits = combine_guidance(both[b:], both[:b], cond_scale)
    return restrict_to_columns(logits, model.config.column_codes)


@torch.no_grad()
def generate_base(model, text, token_lengths, retrieval=None, *, steps: int = 10, cond_scale: float = 4.0,
                  text_scale: float = 0.0, retrieval_scale: float = 0.0, top_k: int | None = None,
                  temperature: float = 1.0, gumbel: bool = False, generator=None,
                  num_tokens: int | None = None) -> torch.Tensor:
    """Iterative masked decoding of the base quantiser layer (docs/design.md §7).

    Args:
        model: :class:`~remomask.generation.mask_transformer.MaskTransformer` (set to eval mode during the call).
        text: (B, text_dim) sentence embeddings, or None (unconditional).
        token_lengths: (B,) lengths in tokens (frames / 4), 1..max_tokens.
        retrieval: :class:`~remomask.generation.conditions.RetrievalLike` for the B prompts, or None.
        steps, cond_scale, text_scale, retrieval_scale, top_k, temperature, gumbel: see :class:`SamplingConfig`.
        generator: ``torch.Generator`` on the model's device, or an int seed, or None (global RNG).
        num_tokens: grid rows n (>= max length); None = max(token_lengths).

    Returns:
        (B, n, J') long ids in [0, K) on the real rows, -1 on padding rows.

    Raises:
        ValueError: bad lengths, steps < 1, or the model's input errors.
    """
    c = model.config
    dev = _device(model)
    lengths = torch.as_tensor(token_lengths, dtype=torch.long, device=dev)
    if lengths.ndim != 1 or lengths.numel() == 0:
        raise ValueError(f"token_lengths must be a non-empty (B,) vector, got shape {tuple(lengths.shape)}")
    if (lengths < 1).any() or (lengths > c.max_tokens).any():
        raise ValueError(f"token lengths must be in 1..{c.max_tokens} (4 frames each, so at most "
                         f"{4 * c.max_tokens} frames), got {lengths.tolist()}")
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    n = int(lengths.max()) if num_tokens is None else int(num_tokens)
    valid = lengths_to_valid(lengths, n, c.num_columns, dev)                   # (B, n, J)
    b, n, j = valid.shape
    gen = make_generator(generator, dev)
    k = default_top_k(c.num_codes) if top_k is None else int(top_k)
    text = check_text(text, b, c.text_dim, dev)
    if retrieval is not None and c.use_retrieval:
        retrieval = as_retrieved(retrieval, b, c.retrieval_k, c.retrieval_dim, dev)
    flat_valid = valid.reshape(b, n * j)
    ids = torch.full((b, n * j), c.pad_id, dtype=torch.long, device=dev).masked_fill(flat_valid, c.mask_id)
    scores = torch.full((b, n * j), _KEEP, device=dev).masked_fill(flat_valid, 0.0)
    real = lengths * j                                                          # real tokens per sample
    with _eval(model):
        for step in range(steps):
            tau = step / (steps - 1) if steps > 1 else 0.0
            ratio = math.cos(math.pi * tau / 2)
            count = torch.round(real.float() * ratio).long().clamp(min=1)
            rank = scores.argsort(dim=1).argsort(dim=1)
            remask = (rank < count[:, None]) & flat_valid
            ids = ids.masked_fill(remask, c.mask_id)
            logits = guided_logits(model, ids.reshape(b, n, j), text, retrieval, cond_scale=cond_scale,
                                   text_scale=text_scale, retrieval_scale=retrieval_scale)   # (B, N, K)
            sampled = sample_tokens(top_k_filter(logits, k), temperature=temperature, gumbel=gumbel, generator=gen)
            ids = torch.where(remask, sampled, ids)
            prob = torch.softmax(logits, -1).gather(-1, sampled[..., None]).squeeze(-1)
            scores = torch.where(remask, prob, torch.full_like(prob, _KEEP))
    return ids.masked_fill(~flat_valid, -1).reshape(b, n, j)


@torch.no_grad()
def generate_residual(model, base_ids: torch.Tensor, text, *, cond_scale: float = 5.0, top_k: int | None = None,
                      temperature: float = 1.0, gumbel: bool = True, generator=None) -> torch.Tensor:
    """Fill quantiser layers 1..Q-1 given the base layer (docs/design.md §6.4).

    Args:
        model: :class:`~remomask.generation.residual_transformer.ResidualTransformer` (eval mode during the call).
        base_ids: (B, n, J') long base-layer ids, -1 at padding (from :func:`generate_base` or the tokenizer).
        text: (B, text_dim) or None. cond_scale, top_k, temperature, gumbel: see :class:`SamplingConfig`
            (residual fields).
        generator: ``torch.Generator``, int seed or None.

    Returns:
        (B, n, J', Q) long ids, -1 on padding.

    Raises:
        ValueError: bad shapes or ids.
    """
    c = model.config
    dev = _device(model)
    if not isinstance(base_ids, torch.Tensor) or base_ids.ndim != 3:
        raise ValueError(f"base_ids must be (B, n, J') long, got {getattr(base_ids, 'shape', type(base_ids).__name__)}")
    base_ids = base_ids.to(dev)
    b, n, j = base_ids.shape
    gen = make_generator(generator, dev)
    k = default_top_k(c.num_codes) if top_k is None else int(top_k)
    text = check_text(text, b, c.text_dim, dev)
    valid = base_ids >= 0
    ids = torch.full((b, n, j, c.num_quantizers), -1, dtype=torch.long, device=dev)
    ids[..., 0] = base_ids.masked_fill(~valid, -1)
    with _eval(model):
        for q in range(1, c.num_quantizers):
            logits = guided_residual_logits(model, ids, q, text, cond_scale=cond_scale)     # (B, N, K)
            sampled = sample_tokens(top_k_filter(logits, k), temperature=temperature, gumbel=gumbel, generator=gen)
            ids[..., q] = sampled.reshape(b, n, j).masked_fill(~valid, -1)
    return ids


@torch.no_grad()
def generate_tokens(mask_model, residual_model, text, token_lengths, retrieval=None, *,
                    config: SamplingConfig | None = None, generator=None) -> torch.Tensor:
    """Base layer then residual layers: the token half of the generation cascade (docs/design.md §7).

    Args:
        mask_model: :class:`~remomask.generation.mask_transformer.MaskTransformer`.
        residual_model: :class:`~remomask.generation.residual_transformer.ResidualTransformer`, or None (base
            layer only).
        text: (B, text_dim). token_lengths: (B,) tokens. retrieval: retrieval input or None.
        config: :class:`SamplingConfig` (defaults if None).
        generator: ``torch.Generator``, int seed or None; one generator drives both stages.

    Returns:
        (B, n, J', Q) long ids (Q = 1 without a residual model), -1 on padding; decode with the tokenizer.

    Raises:
        ValueError: the two models disagree on K or J', or the errors of the two stages.
    """
    cfg = config or SamplingConfig()
    if residual_model is not None:
        a, r = mask_model.config, residual_model.config
        if (a.num_codes, a.num_columns) != (r.num_codes, r.num_columns):
            raise ValueError(f"mask model (K={a.num_codes}, J'={a.num_columns}) and residual model "
                             f"(K={r.num_codes}, J'={r.num_columns}) were built for different tokenizers")
    gen = make_generator(generator, _device(mask_model))
    base = generate_base(mask_model, text, token_lengths, retrieval, steps=cfg.steps, cond_scale=cfg.cond_scale,
                         text_scale=cfg.text_scale, retrieval_scale=cfg.retrieval_scale, top_k=cfg.top_k,
                         temperature=cfg.temperature, gumbel=cfg.gumbel, generator=gen)
    if residual_model is None:
        return base[..., None]
    return generate_residual(residual_model, base, text, cond_scale=cfg.residual_cond_scale, top_k=cfg.residual_top_k,
                             temperature=cfg.residual_temperature, gumbel=cfg.residual_gumbel, generator=gen)
