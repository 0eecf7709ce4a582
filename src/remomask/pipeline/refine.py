"""The residual transformer as a source of fine layers for decoder refinement (docs/design.md §3.5).

A generated motion's quantiser layers after the first are samples of the residual transformer, not the
encoder's exact residuals. :func:`residual_sampler` wraps a pipeline's text encoder and residual transformer
into the ``fine_sampler`` that :func:`remomask.tokenizer.refine.refine_decoder` (option ``generated_rate``)
uses to show the decoder those layers. It lives here, above both stages, because it needs the generation
stage and the tokenizer stage must not import it.
"""

from __future__ import annotations

__all__ = ["residual_sampler"]


def residual_sampler(pipe, *, cond_scale: float | None = None):
    """A ``fine_sampler(base_ids, texts, generator) -> ids`` drawing layers 1..Q-1 as generation does.

    Args:
        pipe: a :class:`~remomask.pipeline.cascade.ReMoMaskPipeline` with a residual transformer.
        cond_scale: residual classifier-free guidance (None: the pipeline's ``residual_cond_scale``); the
            other residual sampling settings are :class:`~remomask.generation.sampling.SamplingConfig`'s
            defaults, as in :meth:`~remomask.pipeline.cascade.ReMoMaskPipeline.__call__`.

    Returns:
        A callable: ``base_ids`` (B, n, J') long (-1 at padding), ``texts`` B captions and a
        ``torch.Generator``; returns (B, n, J', Q) long ids on the residual transformer's device.

    Raises:
        ValueError: the pipeline has no residual transformer.
    """
    import torch

    from ..generation.sampling import SamplingConfig, generate_residual

    if pipe.residual_transformer is None:
        raise ValueError("the pipeline has no residual transformer to sample fine layers with")
    defaults = SamplingConfig()
    scale = pipe.sampling_defaults["residual_cond_scale"] if cond_scale is None else float(cond_scale)

    device = next(pipe.residual_transformer.parameters()).device

    def sample(base_ids, texts, generator):
        with torch.no_grad():
            sentence = pipe.conditions(list(texts), retrieve=False).sentence.to(device)
            return generate_residual(pipe.residual_transformer, base_ids.to(device), sentence,
                                     cond_scale=scale, top_k=defaults.residual_top_k,
                                     temperature=defaults.residual_temperature, gumbel=defaults.residual_gumbel,
                                     generator=generator)

    return sample
