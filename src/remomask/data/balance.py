"""Per-action balanced sampling of training items (docs/data.md "Every action learned").

The embedded dataset is very unbalanced (``raise-up-both-hands`` has 536 train segments, ``respond`` 2).
Every stage draws its training items uniformly (over windows for the tokenizer, over samples for the
retriever and the generators); with balancing, an item of label value ``a`` with ``n_a`` items is drawn with
probability ``n_a ** (alpha - 1) / sum_b n_b ** alpha``, so the frequency of ``a`` is proportional to
``n_a ** alpha``:

- ``alpha = 1``: uniform over items (the unbalanced default);
- ``alpha = 0``: every label value equally often;
- in between: the usual tempered sampling (e.g. 0.5: square-root frequencies).

Items without the label form one group of their own (key None). The exponent is a config field
(``balance_alpha``) of the tokenizer, retriever and generation trainers; it is to be chosen on ``val``.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Hashable, Sequence

import numpy as np

__all__ = ["check_alpha", "balanced_probabilities", "label_frequencies"]


def check_alpha(alpha: float) -> float:
    """``alpha`` as a float after checking that it is finite and in [0, 1].

    Raises:
        ValueError: any other value.
    """
    try:
        value = float(alpha)
    except (TypeError, ValueError):
        raise ValueError(f"balance_alpha must be a number in [0, 1], got {alpha!r}") from None
    if not math.isfinite(value) or not 0.0 <= value <= 1.0:
        raise ValueError(f"balance_alpha must be in [0, 1] (1 = uniform over items, 0 = equal per action), "
                         f"got {alpha!r}")
    return value


def balanced_probabilities(labels: Sequence[Hashable], alpha: float) -> np.ndarray:
    """Per-item draw probabilities that make label ``a`` appear with frequency proportional to ``n_a ** alpha``.

    Args:
        labels: the label value of every item (N,), e.g. the action of each window or sample; None allowed.
        alpha: in [0, 1] (module docstring).

    Returns:
        (N,) float64 probabilities summing to 1.

    Raises:
        ValueError: no items, or ``alpha`` outside [0, 1].
    """
    alpha = check_alpha(alpha)
    labels = list(labels)
    if not labels:
        raise ValueError("no items to balance")
    counts = Counter(labels)
    n = np.array([counts[a] for a in labels], dtype=np.float64)
    w = n ** (alpha - 1.0)
    return w / w.sum()


def label_frequencies(labels: Sequence[Hashable], alpha: float) -> dict:
    """``{label: expected share of draws}`` under :func:`balanced_probabilities` (sums to 1)."""
    p = balanced_probabilities(labels, alpha)
    out: dict = {}
    for a, q in zip(labels, p):
        out[a] = out.get(a, 0.0) + float(q)
    return out
