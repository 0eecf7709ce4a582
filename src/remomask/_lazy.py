"""Lazy package exports (PEP 562): a package names its public objects and the submodule of each, and a
submodule is imported on first access, so ``import remomask`` and ``remomask --help`` stay fast (docs/design.md,
the command layer)."""

from __future__ import annotations

import importlib
import sys
from typing import Callable, Mapping

__all__ = ["lazy_exports"]


def lazy_exports(package: str, where: Mapping[str, str]) -> tuple[Callable[[str], object], Callable[[], list]]:
    """The module-level ``__getattr__`` and ``__dir__`` of ``package``.

    Args:
        package: the package's ``__name__``.
        where: ``{public name: submodule}``; a submodule is relative to the package, with or without its
            leading dot (``"metrics"`` or ``".metrics"``).

    Returns:
        ``(__getattr__, __dir__)`` to assign at module level.

    Raises (from ``__getattr__``):
        AttributeError: a name the package does not export (as Python's own attribute lookup would).
    """

    def __getattr__(name: str):
        if name in where:
            return getattr(importlib.import_module("." + where[name].lstrip("."), package), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list:
        return sorted(set(vars(sys.modules[package])) | set(where))

    return __getattr__, __dir__
