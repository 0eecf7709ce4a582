"""Generation stage: retrieval-augmented masked transformer, residual transformer, length estimator, sampling.

docs/design.md §5 (masked transformer, SSTA, masking, RAG-CFG), §6 (residual transformer), §7 (sampling and
length selection). Public API:

- configs: :class:`MaskTransformerConfig`, :class:`ResidualTransformerConfig`, :class:`LengthEstimatorConfig`
  (each with ``.preset("cpu" | "paper", **overrides)``);
- models: :class:`MaskTransformer`, :class:`ResidualTransformer`, :class:`LengthEstimator`, each with
  ``forward``, ``loss``, ``save_pretrained(dir)`` / ``from_pretrained(dir)``;
- training pieces: :func:`mask_grid`, :func:`masked_cross_entropy`, :func:`sample_layers`, :class:`LossOutput`;
- sampling: :class:`SamplingConfig`, :func:`generate_tokens`, :func:`generate_base`, :func:`generate_residual`,
  :func:`guided_logits`, :func:`combine_guidance`, :func:`top_k_filter`, :func:`sample_tokens`;
- inputs from other stages: :class:`RetrievalLike`, :class:`Retrieved`, :func:`codebooks_of`, and the code ranges
  of a tokenizer's columns (:func:`num_codes_of`, :func:`column_codes_of`, :func:`restrict_to_columns`).
"""

from .conditions import (
    CodebookSource,
    RetrievalLike,
    Retrieved,
    as_retrieved,
    codebooks_of,
    column_codes_of,
    draw_gates,
    lengths_to_valid,
    num_codes_of,
    restrict_to_columns,
)
from .config import PRESETS, SSTA_KINDS, LengthEstimatorConfig, MaskTransformerConfig, ResidualTransformerConfig
from .length_estimator import LengthEstimator
from .mask_transformer import MaskTransformer
from .masking import IGNORE_INDEX, LossOutput, MaskedGrid, cosine_schedule, mask_grid, masked_cross_entropy
from .pretrained import CheckpointError
from .residual_transformer import ResidualTransformer, sample_layers
from .sampling import (
    SamplingConfig,
    combine_guidance,
    default_top_k,
    generate_base,
    generate_residual,
    generate_tokens,
    guided_logits,
    guided_residual_logits,
    make_generator,
    sample_tokens,
    top_k_filter,
)

__all__ = [
    "PRESETS", "SSTA_KINDS", "MaskTransformerConfig", "ResidualTransformerConfig", "LengthEstimatorConfig",
    "MaskTransformer", "ResidualTransformer", "LengthEstimator", "CheckpointError",
    "mask_grid", "MaskedGrid", "masked_cross_entropy", "cosine_schedule", "IGNORE_INDEX", "LossOutput",
    "sample_layers", "draw_gates",
    "SamplingConfig", "generate_tokens", "generate_base", "generate_residual", "guided_logits",
    "guided_residual_logits", "combine_guidance", "top_k_filter", "sample_tokens", "default_top_k", "make_generator",
    "RetrievalLike", "CodebookSource", "Retrieved", "as_retrieved", "codebooks_of", "lengths_to_valid",
    "num_codes_of", "column_codes_of", "restrict_to_columns",
]
