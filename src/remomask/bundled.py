"""Folders of the models that ship inside the package (docs/design.md §9, "Release").

The default pipeline bundle holds every trained stage; commands that need one stage (the retriever and
its database for ``remomask retrieve``, the tokenizer for ``remomask evaluate tokenizer``) use the
bundle's copy, so no model ships twice. The evaluator ships on its own: it is used only for metrics.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["MODELS_DIR", "PIPELINE_DIR", "RETRIEVER_DIR", "DATABASE_DIR", "TOKENIZER_DIR", "LENGTH_ESTIMATOR_DIR",
           "CAPTIONER_DIR", "EVALUATOR_DIR"]

MODELS_DIR = Path(__file__).resolve().parent / "assets" / "models"
"""The package's model folder."""

PIPELINE_DIR = MODELS_DIR / "default"
"""The default pipeline bundle (``ReMoMaskPipeline.from_pretrained()`` with no folder)."""

RETRIEVER_DIR = PIPELINE_DIR / "retriever"
"""The bundle's part-level retriever."""

DATABASE_DIR = PIPELINE_DIR / "database"
"""The bundle's retrieval database (train split, float16 embeddings)."""

TOKENIZER_DIR = PIPELINE_DIR / "tokenizer"
"""The bundle's 2D residual VQ-VAE (dual 1D + 2D branch, ``cpu`` preset)."""

LENGTH_ESTIMATOR_DIR = PIPELINE_DIR / "length_estimator"
"""The bundle's length estimator (caption -> duration)."""

CAPTIONER_DIR = PIPELINE_DIR / "captioner"
"""The bundle's trained motion-to-text captioner, over the bundle's tokenizer, retriever and database
(docs/captioning.md)."""

EVALUATOR_DIR = MODELS_DIR / "evaluator"
"""The metric evaluator and its label classifiers."""
