"""remomask: retrieval-augmented masked text-to-motion generation (ReMoMask) in PyTorch.

Heavy modules (torch, the models) are imported lazily so that ``remomask --help`` stays fast.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
