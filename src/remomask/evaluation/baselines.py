"""Baseline motion sources scored by the same protocol as the generators (issue "evaluation suite", spec 10.2).

A *motion source* is any callable ``source(captions, lengths, labels)`` that answers B prompts with
de-normalised 263-d features (see :class:`remomask.evaluation.protocol.MotionSource`).

- :class:`RealBaseline` answers with **real** motions. Two modes:

  - ``"disjoint"`` (the ceiling we report): each prompt gets a real motion of the *same evaluation split*
    that comes from **another source clip** than the prompt's ground truth (its mirrored copy counts as
    the same clip) and carries the same labels (``action`` and ``style``). It is what a perfect generator
    could produce: a correct, real motion that is not a copy of the test clip. FID is then measured
    between two disjoint sets of real clips, so it shows the floor that sampling noise and clip-to-clip
    variation put under any generator; the paper convention (below) hides that floor.
    Why the same split and not the train split: the ``test_unseen`` split of the embedded dataset holds
    (content, style) pairs that appear in no other split, so only the split itself has real motions for
    its prompts; and a train motion for a test prompt is exactly the retrieval-only baseline.
    When no other clip has both labels, a clip with the same ``action`` is used, then any other clip;
    :attr:`RealBaseline.fallbacks` counts these cases. Needs ``labels.json`` (the embedded dataset).
  - ``"resample"``: the paper convention for the "Real motion" row (Guo et al. 2022): the prompt's own
    ground-truth sample with an independent random crop. Works on any dataset (HumanML3D, KIT-ML).

- :class:`RetrievalBaseline` answers with the nearest *train* motion of a retriever, cropped to the
  requested length. It takes the look-up function, so it is wired to the retriever where that exists.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Callable, Mapping, Sequence

import numpy as np
import torch

__all__ = ["RealBaseline", "RetrievalBaseline", "BaselineError", "source_clip"]


class BaselineError(ValueError):
    """A baseline cannot be built for this dataset or cannot answer a prompt."""


def source_clip(labels: Mapping, motion_id: str) -> str:
    """Identity of the source recording of a sample: ``labels["clip"]`` when present, else the motion id
    without the mirror prefix ``M`` (HumanML3D names the mirror of ``000123`` ``M000123``)."""
    clip = labels.get("clip")
    if clip:
        return str(clip)
    return motion_id[1:] if motion_id.startswith("M") else motion_id


def _crop(motion: np.ndarray, length: int, rng: np.random.Generator | None) -> tuple[np.ndarray, int]:
    """A window of ``length`` frames (random start when ``rng`` is given, else frame 0); shorter motions whole."""
    if len(motion) <= length:
        return motion, len(motion)
    start = int(rng.integers(0, len(motion) - length + 1)) if rng is not None else 0
    return motion[start: start + length], length


def _stack(motions: Sequence[np.ndarray], lengths: Sequence[int], total: int, dim: int):
    out = torch.zeros(len(motions), total, dim)
    for i, (m, n) in enumerate(zip(motions, lengths)):
        out[i, :n] = torch.as_tensor(np.asarray(m[:n], dtype=np.float32))
    return out, torch.tensor(list(lengths), dtype=torch.long)


class RealBaseline:
    """Real motions as the answer to each prompt (the ceiling row); see the module docstring.

    Args:
        layout: :class:`remomask.data.layout.MotionLayout` of the evaluation split (the same filters as
            the protocol's loader), or a dataset folder together with ``split``.
        mode: ``"disjoint"`` (default) or ``"resample"``.
        split: split name when ``layout`` is a folder.
        match: labels that must agree in ``"disjoint"`` mode.
        seed: seed of the choice of clip and crop; the protocol calls :meth:`set_seed` every repeat.

    Call: ``(captions (B strings), lengths LongTensor (B,) frames, labels (B dicts with the dataset's labels
    plus "key" and "motion_id")) -> (features (B, max(lengths), D) de-normalised, lengths (B,))``.

    Raises:
        BaselineError: unknown mode; ``"disjoint"`` on a dataset without the ``match`` labels; a prompt
            whose ``key`` is not in the split (``"resample"``).
    """

    stochastic = False

    def __init__(self, layout, mode: str = "disjoint", *, split: str | None = None,
                 match: Sequence[str] = ("action", "style"), seed: int = 0) -> None:
        if mode not in ("disjoint", "resample"):
            raise BaselineError(f"mode must be 'disjoint' or 'resample', got {mode!r}")
        if not hasattr(layout, "records"):
            from ..data.layout import MotionLayout

            if split is None:
                raise BaselineError("give split= together with a dataset folder")
            layout = MotionLayout(layout, split, progress=False)
        self.mode, self.match = mode, tuple(match)
        self.records = list(layout.records)
        self.dim = int(self.records[0].motion.shape[1])
        self.by_key = {r.key: r for r in self.records}
        self.name = "Real (disjoint clips)" if mode == "disjoint" else "Real (resampled crop)"
        self.fallbacks = {"same_action": 0, "any": 0, "short": 0}
        if mode == "disjoint":
            if not any(all(r.labels.get(k) is not None for k in self.match[:1]) for r in self.records):
                raise BaselineError(f"the 'disjoint' real baseline needs the labels {list(self.match)} "
                                    "(labels.json of the embedded dataset); use mode='resample' on datasets "
                                    "without labels")
            self.groups: dict[tuple, list] = defaultdict(list)
            self.by_action: dict = defaultdict(list)
            for r in self.records:
                self.groups[tuple(r.labels.get(k) for k in self.match)].append(r)
                self.by_action[r.labels.get(self.match[0])].append(r)
        self.set_seed(seed)

    def set_seed(self, seed: int) -> None:
        """Restart the choice of clips and crops (called by the protocol at every repeat)."""
        self.rng = np.random.default_rng([int(seed), 0x5EA1])

    def _pick(self, pool: list, clip: str, length: int):
        other = [r for r in pool if source_clip(r.labels, r.motion_id) != clip]
        if not other:
            return None
        long_enough = [r for r in other if r.length >= length]
        choice = long_enough or other
        return choice[int(self.rng.integers(len(choice)))]

    def _disjoint(self, lab: Mapping, length: int):
        clip = source_clip(lab, str(lab.get("motion_id", "")))
        rec = self._pick(self.groups.get(tuple(lab.get(k) for k in self.match), []), clip, length)
        if rec is None:
            rec = self._pick(self.by_action.get(lab.get(self.match[0]), []), clip, length)
            if rec is not None:
                self.fallbacks["same_action"] += 1
        if rec is None:
            rec = self._pick(self.records, clip, length)
            self.fallbacks["any"] += 1
        if rec is None:
            raise BaselineError("the split has a single source clip: no disjoint real motion exists")
        if rec.length < length:
            self.fallbacks["short"] += 1
        return rec

    def __call__(self, captions: Sequence[str], lengths: torch.Tensor, labels: Sequence[Mapping]):
        lengths = torch.as_tensor(lengths).long().tolist()
        if len(captions) != len(lengths) or len(labels) != len(lengths):
            raise BaselineError(f"{len(captions)} captions, {len(lengths)} lengths, {len(labels)} labels")
        motions, used = [], []
        for lab, n in zip(labels, lengths):
            if self.mode == "resample":
                rec = self.by_key.get(lab.get("key"))
                if rec is None:
                    raise BaselineError(f"prompt key {lab.get('key')!r} is not a sample of this split; the "
                                        "resample baseline must be built on the evaluated split")
            else:
                rec = self._disjoint(lab, n)
            m, k = _crop(rec.motion, n, self.rng)
            motions.append(m)
            used.append(k)
        return _stack(motions, used, max(lengths), self.dim)


class RetrievalBaseline:
    """Retrieval-only baseline: the nearest train motion of a retriever, cropped to the requested length.

    Args:
        nearest: ``nearest(captions) -> B arrays (T_i, D)``: the de-normalised features of the train motion
            the retriever ranks first for each caption (the retrieval database's motion).
        name: row name in the tables.
        crop: ``"start"`` (frames ``0..L``, deterministic) or ``"random"`` (a random window, seeded).
        seed: seed of the random crops.

    Call: as :class:`RealBaseline`. A retrieved motion shorter than the requested length is returned
    whole, with its own length.

    Raises:
        BaselineError: ``nearest`` returns the wrong number of motions or a bad shape.
    """

    stochastic = False

    def __init__(self, nearest: Callable[[list[str]], Sequence], *, name: str = "Retrieval-only",
                 crop: str = "start", seed: int = 0) -> None:
        if crop not in ("start", "random"):
            raise BaselineError(f"crop must be 'start' or 'random', got {crop!r}")
        self.nearest, self.name, self.crop = nearest, name, crop
        self.set_seed(seed)

    def set_seed(self, seed: int) -> None:
        """Restart the random crops."""
        self.rng = np.random.default_rng([int(seed), 0x7E7])

    def __call__(self, captions: Sequence[str], lengths: torch.Tensor, labels: Sequence[Mapping] = ()):
        lengths = torch.as_tensor(lengths).long().tolist()
        found = list(self.nearest(list(captions)))
        if len(found) != len(captions):
            raise BaselineError(f"nearest() returned {len(found)} motions for {len(captions)} captions")
        motions, used, dim = [], [], None
        for i, (m, n) in enumerate(zip(found, lengths)):
            m = m.detach().cpu().numpy() if isinstance(m, torch.Tensor) else np.asarray(m)
            if m.ndim != 2 or (dim is not None and m.shape[1] != dim) or len(m) == 0:
                raise BaselineError(f"nearest() motion {i} has shape {m.shape}; expected (T, D), D fixed")
            dim = m.shape[1]
            m, k = _crop(m, n, self.rng if self.crop == "random" else None)
            motions.append(m)
            used.append(k)
        return _stack(motions, used, max(lengths), dim)
