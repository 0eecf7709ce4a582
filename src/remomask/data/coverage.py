"""Which actions reach which stage's training set (docs/data.md "Every action learned").

:func:`stage_coverage` builds the training set of every stage with the functions the trainers themselves
call, and counts its items per ``action`` label:

| stage | training set | items |
|---|---|---|
| ``tokenizer`` | :func:`remomask.tokenizer.train.training_windows` | windows |
| ``retriever`` | :class:`~remomask.data.datasets.TextMotionDataset` ``mode="retriever"`` | samples |
| ``mask``, ``residual``, ``length`` | :func:`remomask.generation.data.load_generation_records` | samples |
| ``evaluator`` | :func:`remomask.evaluation.training.training_dataset` | samples |
| ``classifiers`` | the evaluator's samples whose action is one of its classes (:func:`~remomask.evaluation.training.label_classes`) | samples |

The invariant (``tests/test_coverage.py``): every action of the train split has at least one item in every
stage. This module is an audit across the stages, so unlike the rest of :mod:`remomask.data` it imports
the stages' loader functions (inside :func:`stage_coverage`, never at import time).
"""

from __future__ import annotations

import os
from collections import Counter

import numpy as np

__all__ = ["STAGES", "stage_coverage", "missing_actions", "coverage_table"]

STAGES = ("tokenizer", "retriever", "mask", "residual", "length", "evaluator", "classifiers")
"""Stage names of :func:`stage_coverage`, in pipeline order."""


def _count(records, weights=None, label: str = "action") -> Counter:
    c: Counter = Counter()
    for i, r in enumerate(records):
        c[r.labels.get(label)] += 1 if weights is None else int(weights[i])
    return c


def stage_coverage(dataset: str | os.PathLike = "embedded", split: str = "train", *, window_size: int = 64,
                   label: str = "action", short_clips: str = "hold") -> dict[str, dict[str, int]]:
    """Items per action in every stage's training set built from ``split``.

    Args:
        dataset: ``"embedded"`` or a HumanML3D-layout folder with ``labels.json``.
        split: the split the stages train on (``train``).
        window_size: the tokenizer's window, frames (64, docs/design.md §3.4).
        label: the label counted (``action``).
        short_clips: ``"hold"`` (today's loaders) or ``"drop"`` (the HumanML3D convention the stages used
            before: the "before" column of docs/data.md's coverage table).

    Returns:
        ``{"split": {action: samples of the split (no length filter)}, <stage>: {action: items}}`` for the
        stages of :data:`STAGES`; every dict has every action of the split as a key (0 when absent).
        Samples without the label are counted under ``"(none)"``.

    Raises:
        DatasetError: the dataset or split cannot be read.
    """
    from ..evaluation.training import label_classes, training_dataset, training_layout
    from ..generation.data import load_generation_records
    from ..tokenizer.train import tokenizer_stats, training_windows
    from .datasets import TextMotionDataset
    from .embedded import resolve_dataset
    from .layout import MotionLayout

    root = resolve_dataset(dataset, progress=False)
    whole = MotionLayout(root, split, min_length=0, max_length=None, progress=False)
    out: dict[str, Counter] = {"split": _count(whole, label=label)}

    tok_layout = MotionLayout(root, split, min_length=0, max_length=None, require_captions=False, subclips=False,
                              progress=False)
    mean, std = tokenizer_stats(tok_layout.mean, tok_layout.std)
    windows = training_windows(tok_layout, mean, std, window_size, short_clips=short_clips)
    per_clip = np.diff(np.concatenate([[0], windows._ends]))
    out["tokenizer"] = _count(windows.records, per_clip, label)

    out["retriever"] = _count(TextMotionDataset(root, split, mode="retriever").records, label=label)
    gen = _count(load_generation_records(root, split, short_clips=short_clips), label=label)
    for stage in ("mask", "residual", "length"):
        out[stage] = gen

    ev_layout = training_layout(root, split) if short_clips == "hold" else MotionLayout(root, split, progress=False)
    ev = training_dataset(ev_layout, ev_layout.skeleton.feature_dim, short_clips=short_clips)
    out["evaluator"] = _count(ev.records, label=label)
    classes = set(label_classes(ev_layout).get(label, []))
    out["classifiers"] = Counter({a: n for a, n in out["evaluator"].items() if a in classes})

    actions = sorted(out["split"], key=lambda a: (a is None, str(a)))
    name = lambda a: "(none)" if a is None else str(a)  # noqa: E731
    return {stage: {name(a): int(c.get(a, 0)) for a in actions} for stage, c in out.items()}


def missing_actions(coverage: dict[str, dict[str, int]]) -> dict[str, list[str]]:
    """``{stage: [actions of the split with 0 items in that stage]}`` (stages with none missing included)."""
    split = coverage["split"]
    return {stage: [a for a, n in split.items() if n > 0 and counts.get(a, 0) == 0]
            for stage, counts in coverage.items() if stage != "split"}


def coverage_table(before: dict[str, dict[str, int]], after: dict[str, dict[str, int]] | None = None) -> str:
    """A markdown table: one row per action, one column per stage (``before -> after`` when both given)."""
    stages = [s for s in before if s != "split"]
    lines = ["| action | split | " + " | ".join(stages) + " |", "|---" * (len(stages) + 2) + "|"]
    for a, n in before["split"].items():
        cells = []
        for s in stages:
            b = before[s].get(a, 0)
            if after is None or after[s].get(a, 0) == b:
                cells.append(str(b) if b else "**0**")
            else:
                cells.append(f"{b if b else '**0**'} → {after[s].get(a, 0)}")
        lines.append(f"| {a} | {n} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
