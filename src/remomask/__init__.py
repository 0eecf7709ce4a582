"""remomask: retrieval-augmented masked text-to-motion generation (ReMoMask) in PyTorch.

Heavy modules (torch, the models) are imported lazily so that ``remomask --help`` stays fast:
``from remomask import ReMoMaskPipeline`` imports :mod:`remomask.pipeline` only when the name is used.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__", "ReMoMaskPipeline", "GenerationOutput"]

_LAZY = {"ReMoMaskPipeline": "pipeline", "GenerationOutput": "pipeline"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + __all__)
