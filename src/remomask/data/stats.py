"""Dataset statistics for ``remomask data stats`` (clips, segments, frames, seconds, captions, labels,
splits)."""

from __future__ import annotations

import json
import os
from collections import Counter

import numpy as np

from ..constants import FPS

__all__ = ["dataset_stats"]

KIT_FPS = 12.5
"""Frame rate of KIT-ML (251-d features), the one dataset layout not at :data:`remomask.constants.FPS`."""


def dataset_stats(name_or_path: str | os.PathLike | None = None) -> dict:
    """Statistics of a dataset: the embedded one (read from its ``stats.json``) or a HumanML3D-layout
    folder (counted from its split files, ``texts/`` and ``new_joint_vecs/`` headers).

    Returns a dict with at least ``clips``, ``segments``, ``frames``, ``seconds``, ``captions``,
    ``labels`` (label -> count) and ``splits`` (split -> count).

    Raises:
        DatasetNotFound: unknown name / missing folder. ValueError: a folder with no split files.
    """
    from .embedded import resolve_dataset

    root = resolve_dataset(name_or_path, materialise=False)
    if (root / "stats.json").is_file():
        stats = json.loads((root / "stats.json").read_text())
        stats.pop("labels_per_split", None)
        stats["path"] = str(root)
        return stats
    splits = {}
    for name in ("train", "val", "test", "test_unseen"):
        path = root / f"{name}.txt"
        if path.is_file():
            splits[name] = [ln.strip() for ln in path.read_text().splitlines() if ln.strip()]
    if not splits:
        raise ValueError(f"{root} has no split files (train.txt, val.txt, test.txt); is it a "
                         "HumanML3D-layout folder?")
    ids = sorted({i for members in splits.values() for i in members})
    frames, captions = 0, 0
    fps = FPS
    for i in ids:
        vec = root / "new_joint_vecs" / f"{i}.npy"
        if vec.is_file():
            arr = np.load(vec, mmap_mode="r")
            frames += arr.shape[0]
            if arr.shape[-1] == 251:
                fps = KIT_FPS
        txt = root / "texts" / f"{i}.txt"
        if txt.is_file():
            captions += sum(1 for ln in txt.read_text().splitlines() if ln.strip())
    labels: Counter = Counter()
    if (root / "labels.json").is_file():
        for meta in json.loads((root / "labels.json").read_text()).values():
            if meta.get("action"):
                labels[meta["action"]] += 1
    return {
        "path": str(root),
        "clips": len({i.lstrip("M") for i in ids}),
        "segments": len(ids),
        "frames": int(frames),
        "seconds": round(frames / fps, 1),
        "captions": captions,
        "labels": dict(sorted(labels.items())),
        "splits": {k: len(v) for k, v in splits.items()},
    }
