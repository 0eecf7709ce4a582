"""remomask: retrieval-augmented masked text-to-motion generation (ReMoMask) in PyTorch.

Heavy modules (torch, the models) are imported lazily so that ``remomask --help`` stays fast:
``from remomask import ReMoMaskPipeline`` imports :mod:`remomask.pipeline` only when the name is used.
"""

from __future__ import annotations

from ._lazy import lazy_exports

__version__ = "0.1.0"

__all__ = ["__version__", "ReMoMaskPipeline", "GenerationOutput"]

_LAZY = {"ReMoMaskPipeline": "pipeline", "GenerationOutput": "pipeline"}


__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
