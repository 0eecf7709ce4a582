"""Evaluation stage: evaluator models, the text-to-motion metrics and the evaluation protocol (docs/design.md §10).

- :mod:`.evaluator`: :class:`T2MEvaluator`, the text-motion embedding model and label classifiers of the
  embedded dataset (Guo et al. design over the bundled sentence encoder), ``save_pretrained`` /
  ``from_pretrained``; :func:`load_evaluator` loads the one shipped in the package.
- :mod:`.training`: :func:`train_evaluator` (contrastive phase, then classifiers; resumable).
- :mod:`.metrics`: R-precision, FID, MM-Dist, Diversity, MModality, label accuracy, mean ± CI95.
- :mod:`.official`: the standard HumanML3D / KIT-ML evaluator (``finest.tar``, GloVe, POS tokens).
- :mod:`.protocol`: :func:`evaluate_t2m` with pluggable motion sources, tables and JSON.
- :mod:`.baselines`: :class:`RealBaseline`, :class:`RetrievalBaseline` and :class:`RetrieverNearest` (the
  retrieval-only baseline's look-up with a trained retriever and its database).
The ``remomask train evaluator`` / ``remomask evaluate t2m`` commands live in :mod:`remomask.cli`.

Names are imported lazily, so ``import remomask.evaluation`` does not load torch.
"""

from __future__ import annotations

from .._lazy import lazy_exports

_EXPORTS = {
    "EvaluatorConfig": ".evaluator",
    "EvaluatorError": ".evaluator",
    "T2MEvaluator": ".evaluator",
    "load_evaluator": ".evaluator",
    "DEFAULT_EVALUATOR_DIR": ".evaluator",
    "train_evaluator": ".training",
    "OfficialT2MEvaluator": ".official",
    "WordVectorizer": ".official",
    "evaluate_t2m": ".protocol",
    "evaluate_reconstruction": ".protocol",
    "format_table": ".protocol",
    "write_json": ".protocol",
    "MotionSource": ".protocol",
    "T2MResult": ".protocol",
    "RealBaseline": ".baselines",
    "RetrievalBaseline": ".baselines",
    "RetrieverNearest": ".baselines",
    "DEFAULT_RETRIEVER_DIR": ".baselines",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
