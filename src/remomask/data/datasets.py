"""Torch datasets for the three training stages and evaluation (docs/design.md §2.4).

- :class:`MotionWindowDataset`: fixed windows of normalised motion for the tokenizer (VQ dataset).
- :class:`TextMotionDataset`: (caption, motion) pairs; ``mode="generation"`` crops to a multiple of the
  unit length and pads to 196 frames (masked/residual transformers), ``mode="retriever"`` takes 224-frame
  windows (part-level retriever).
- :class:`EvalTextMotionDataset`: the deterministic evaluation loader (seeded caption/coin/crop).
- :func:`collate`: stacks tensors and numbers, keeps strings and label dicts as lists.
- :func:`hold_extend`, :class:`HeldRecord`, :func:`extend_short_records`: short single-action clips made
  usable by stages with a minimum length, by holding the first and last pose (docs/data.md "Every action
  learned").

Each dataset takes a dataset folder (or a ready :class:`MotionLayout`, to share one load between datasets
or to use other length filters), a split and the mean/std to normalise with. Items are dicts. Randomness:
in training mode every item draws its own numpy generator from torch's RNG, so results follow
``torch.manual_seed`` / the DataLoader's per-worker seeds; in evaluation mode item ``i`` uses
``numpy.random.default_rng([seed, i])`` and is the same on every call and in every worker.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from ..constants import FRAMES_PER_TOKEN, MAX_FRAMES
from .captions import evaluator_tokens
from .layout import DatasetFormatError, DatasetNotFoundError, MotionLayout, MotionRecord
from .normalization import check_stats, normalize

__all__ = [
    "GENERATION_MAX_LENGTH",
    "RETRIEVER_MAX_LENGTH",
    "UNIT_LENGTH",
    "MotionWindowDataset",
    "TextMotionDataset",
    "EvalTextMotionDataset",
    "collate",
    "frame_mask",
    "crop_length",
    "SHORT_CLIP_POLICIES",
    "hold_extend",
    "HeldRecord",
    "extend_short_records",
]

SHORT_CLIP_POLICIES = ("drop", "hold")
"""What a loader with a minimum length does with shorter clips: ``"drop"`` (the HumanML3D convention) or
``"hold"`` (extend them with holds of their first and last pose, :func:`hold_extend`)."""

GENERATION_MAX_LENGTH = MAX_FRAMES
"""Padded length of generation samples, frames (:data:`remomask.constants.MAX_FRAMES`)."""
RETRIEVER_MAX_LENGTH = 224
"""Window / padded length of retriever samples, frames (docs/design.md §2.4 ``max_motion_length``)."""
UNIT_LENGTH = FRAMES_PER_TOKEN
"""Tokenizer downsampling factor: generation crops are multiples of it (:data:`remomask.constants.FRAMES_PER_TOKEN`)."""

def _layout(source, split: str, **kwargs) -> MotionLayout:
    if isinstance(source, MotionLayout):
        return source
    if not isinstance(source, (str, os.PathLike)):
        raise TypeError(f"source must be a dataset folder path or a MotionLayout, not {type(source).__name__}")
    return MotionLayout(source, split, **kwargs)


def _stats(mean, std, layout: MotionLayout) -> tuple[np.ndarray, np.ndarray]:
    if (mean is None) != (std is None):
        raise ValueError("give both mean and std, or neither (then the dataset's Mean.npy/Std.npy are used)")
    name = "mean/std"
    if mean is None:
        if layout.mean is None:
            raise DatasetNotFoundError(
                f"no mean/std given and the layout of {layout.root} was loaded without Mean.npy/Std.npy"
            )
        mean, std, name = layout.mean, layout.std, f"{layout.root}/Mean.npy, Std.npy"
    else:
        if isinstance(mean, (str, os.PathLike)):
            name = f"{mean} / {std}"
            for p in (mean, std):
                if not os.path.isfile(p):
                    raise DatasetNotFoundError(f"statistics file {p} not found")
            mean, std = np.load(mean), np.load(std)
    return check_stats(mean, std, layout.feature_dim, name=name)


def _train_rng() -> np.random.Generator:
    # Seeded from torch so that torch.manual_seed and DataLoader worker seeding both apply.
    return np.random.default_rng(int(torch.randint(0, 2**62, ()).item()))


def crop_length(length: int, coin: str, unit_length: int = UNIT_LENGTH, max_length: int = GENERATION_MAX_LENGTH) -> int:
    """Frames kept from a sample of ``length`` frames by the generation crop (docs/design.md §2.4).

    ``single``: ``(length // unit) * unit``; ``double``: ``(length // unit - 1) * unit``; capped at
    ``(max_length // unit) * unit``. When that leaves no frame (``length < 2 * unit``), the single rule is
    used, and a sample shorter than one unit is kept whole.

    Raises:
        ValueError: unknown coin or ``length < 1``.
    """
    if length < 1:
        raise ValueError(f"length must be >= 1 frame, got {length}")
    if coin not in ("single", "double"):
        raise ValueError(f"coin must be 'single' or 'double', got {coin!r}")
    units = length // unit_length - (1 if coin == "double" else 0)
    if units < 1:
        units = length // unit_length
    if units < 1:
        return min(length, max_length)
    return min(units, max_length // unit_length) * unit_length


def hold_extend(motion: np.ndarray, before: int, after: int) -> np.ndarray:
    """A clip with its first pose held for ``before`` frames and its last pose for ``after`` frames.

    A held frame is the boundary feature frame with every velocity set to zero, as the feature extraction
    of docs/design.md §2.1 gives for a body that stands still: root yaw rate and XZ velocity (dims 0:3) and
    the local joint velocities (193:259) are 0, the foot contacts (259:263) are 1 (a foot that does not move
    is in contact by the HumanML3D rule), the root height, root-relative positions and rotations are those
    of the boundary frame. Recovered joints (``recover_from_ric``) therefore stand still in the first pose
    before the clip and, after it, in the last pose placed where the last frame's root velocity leads
    (one frame, 1/20 s, ahead): a person stands, squats, stands.

    Args:
        motion: (T, D) un-normalised features, D = 263 (HumanML3D) or 251 (KIT-ML), T >= 1.
        before, after: frames of hold, >= 0.

    Returns:
        (before + T + after, D) float32 array (a new array; ``motion`` is not changed).

    Raises:
        ValueError: negative hold lengths, an empty clip, or a feature size that matches no skeleton.
    """
    from .features import feature_layout
    from .layout import infer_skeleton

    motion = np.asarray(motion, dtype=np.float32)
    if before < 0 or after < 0:
        raise ValueError(f"hold lengths must be >= 0, got before={before}, after={after}")
    if motion.ndim != 2 or motion.shape[0] < 1:
        raise ValueError(f"motion must be (T, D) with T >= 1, got shape {motion.shape}")
    fl = feature_layout(infer_skeleton(motion.shape[1]))

    def still(frame: np.ndarray, count: int) -> np.ndarray:
        held = np.repeat(frame[None].copy(), count, axis=0)
        held[:, 0:3] = 0.0
        held[:, fl.local_velocity] = 0.0
        held[:, fl.foot_contact] = 1.0
        return held

    return np.concatenate([still(motion[0], before), motion, still(motion[-1], after)]).astype(np.float32)


@dataclass(frozen=True, eq=False)
class HeldRecord(MotionRecord):
    """A :class:`MotionRecord` extended with holds (:func:`extend_short_records`).

    ``motion`` and ``length`` are those of the extended clip; ``start_frame`` and ``motion_id`` still name
    the real frames in the source file.

    Attributes:
        hold_before, hold_after: frames of the held first / last pose.
        source_length: frames of the real clip (``length - hold_before - hold_after``).
    """

    hold_before: int = 0
    hold_after: int = 0
    source_length: int = 0


def extend_short_records(records: Sequence[MotionRecord], min_length: int) -> list:
    """Records shorter than ``min_length`` frames replaced by hold-extended copies of exactly that length.

    The missing frames are split evenly, the odd frame after the clip (``before = (min_length - T) // 2``),
    so the result is deterministic (the generators' token cache enumerates the crops of every record). The
    other records are returned as they are.

    Args:
        records: :class:`MotionRecord` samples (any order; the order is kept).
        min_length: frames; the generators' minimum (40 HumanML3D, 24 KIT, docs/design.md §2.4).

    Returns:
        A new list, same length and order; extended entries are :class:`HeldRecord`.

    Raises:
        ValueError: ``min_length < 1``.
    """
    if min_length < 1:
        raise ValueError(f"min_length must be >= 1, got {min_length}")
    out = []
    for r in records:
        if r.length >= min_length:
            out.append(r)
            continue
        before = (min_length - r.length) // 2
        after = min_length - r.length - before
        out.append(HeldRecord(r.key, hold_extend(r.motion, before, after), r.captions, min_length, r.labels,
                              r.motion_id, r.start_frame, before, after, r.length))
    return out


def _check_policy(short_clips: str) -> None:
    if short_clips not in SHORT_CLIP_POLICIES:
        raise ValueError(f"short_clips must be one of {SHORT_CLIP_POLICIES}, got {short_clips!r}")


def _padded(motion: np.ndarray, mean: np.ndarray, std: np.ndarray, total: int) -> torch.Tensor:
    out = np.zeros((total, motion.shape[1]), dtype=np.float32)
    out[: len(motion)] = normalize(motion, mean, std)
    return torch.from_numpy(out)


class MotionWindowDataset(Dataset):
    """Fixed-size windows of normalised motion for the tokenizer (docs/design.md §2.4 VQ dataset).

    Every valid window start of every whole clip is a sample: a clip of T frames gives
    ``(T - window_size) // stride + 1`` windows (the reference code counts ``T - window_size``, dropping the
    last start). Captions are not needed.

    Clips shorter than the window (docs/data.md "Every action learned"): with ``short_clips="hold"``
    (default) each gives one window, the clip with its first pose held before it and its last pose held
    after it (:func:`hold_extend`); in training mode the clip's place in the window is drawn uniformly
    (``before`` in ``[0, window_size - T]``), in evaluation mode it is centred. ``short_clips="drop"`` skips
    them (the reference convention, under which the tokenizer never sees a clip shorter than 3.2 s).

    Args:
        source: dataset folder or a :class:`MotionLayout` (with ``"drop"``, records shorter than the window
            are ignored).
        split: split name (``"train"``, ``"val"``, ...).
        mean, std: (D,) statistics (arrays/tensors or two ``.npy`` paths); None = the dataset's
            ``Mean.npy``/``Std.npy``. The tokenizer's own statistics (docs/design.md §2.3) are passed here.
        window_size: frames per window (64).
        stride: spacing of window starts; 1 = every start. In training mode with ``stride > 1`` each start
            is jittered by a random offset in ``[0, stride)`` (kept inside the clip).
        train: False makes items fully deterministic.
        skeleton: forwarded to :class:`MotionLayout` when ``source`` is a path.
        short_clips: ``"hold"`` or ``"drop"`` (above).

    Items:
        ``{"motion": FloatTensor (window_size, D), "key": str, "start": int}``: ``start`` is the frame of the
        clip at which the window begins; negative for a held window (``-start`` frames of hold come first).

    Raises:
        DatasetError: from :class:`MotionLayout`, or no usable clip. ValueError: bad sizes or policy.
    """

    def __init__(self, source, split: str = "train", mean=None, std=None, *, window_size: int = 64,
                 stride: int = 1, train: bool = True, skeleton=None, short_clips: str = "hold") -> None:
        if window_size < 1 or stride < 1:
            raise ValueError(f"window_size ({window_size}) and stride ({stride}) must be >= 1")
        _check_policy(short_clips)
        hold = short_clips == "hold"
        self.layout = _layout(source, split, skeleton=skeleton, min_length=0 if hold else window_size,
                              max_length=None, require_captions=False, subclips=False)
        self.mean, self.std = _stats(mean, std, self.layout)
        self.window_size, self.stride, self.train, self.short_clips = window_size, stride, train, short_clips
        self.records = [r for r in self.layout if hold or r.length >= window_size]
        if not self.records:
            raise DatasetFormatError(
                f"no clip of split {self.layout.split!r} in {self.layout.root} has >= {window_size} frames"
            )
        counts = np.array([max(1, (r.length - window_size) // stride + 1) for r in self.records], dtype=np.int64)
        self._ends = np.cumsum(counts)

    def __len__(self) -> int:
        return int(self._ends[-1])

    def window(self, index: int) -> tuple[MotionRecord, int]:
        """``(record, start)`` of window ``index`` before jitter (``start`` 0 for a clip shorter than the window).

        Raises:
            IndexError: ``index`` outside ``[0, len(self))``.
        """
        if not 0 <= index < len(self):
            raise IndexError(f"window index {index} out of range [0, {len(self)})")
        r = int(np.searchsorted(self._ends, index, side="right"))
        prev = int(self._ends[r - 1]) if r else 0
        return self.records[r], (index - prev) * self.stride

    def window_records(self) -> np.ndarray:
        """(len(self),) int64: the index in ``self.records`` of every window (for per-action balancing)."""
        counts = np.diff(np.concatenate([[0], self._ends]))
        return np.repeat(np.arange(len(self.records), dtype=np.int64), counts)

    def __getitem__(self, index: int) -> dict:
        rec, start = self.window(index)
        if rec.length < self.window_size:
            pad = self.window_size - rec.length
            before = int(torch.randint(0, pad + 1, ()).item()) if self.train else pad // 2
            clip = hold_extend(rec.motion, before, pad - before)
            start = -before
        else:
            if self.train and self.stride > 1:
                room = min(self.stride - 1, rec.length - self.window_size - start)
                start += int(torch.randint(0, room + 1, ()).item())
            clip = rec.motion[start: start + self.window_size]
        return {"motion": torch.from_numpy(normalize(clip, self.mean, self.std).astype(np.float32)),
                "key": rec.key, "start": start}


class TextMotionDataset(Dataset):
    """(caption, motion) samples for the generators and the retriever (docs/design.md §2.4).

    ``mode="generation"`` (masked / residual transformers): a path ``source`` keeps samples with
    ``min_motion_length <= T < 200`` (40 HumanML3D, 24 KIT). Per item: pick a caption, draw
    coin in {single, single, double}, crop ``crop_length(T, coin)`` frames (a multiple of ``unit_length``)
    at a random start, normalise, zero-pad to ``max_motion_length`` (196).

    ``mode="retriever"`` (part-level retriever): a path ``source`` keeps every sample (no length filter).
    Per item: pick a caption; ``T >= 224``: a random 224-frame window (evaluation: the window at frame 0);
    else the whole sample zero-padded to 224. ``length`` tells the encoder which frames are real.

    Short clips (docs/data.md "Every action learned"), generation mode only: ``short_clips="drop"``
    (default, HumanML3D convention) keeps what the layout holds; ``short_clips="hold"`` loads a path
    ``source`` without the minimum and replaces every sample shorter than ``min_motion_length`` by its
    hold-extended copy of exactly that length (:func:`extend_short_records`), for a given layout too.

    Evaluation mode (``train=False``): generation items use ``default_rng([seed, index])`` for caption, coin
    and crop; retriever items use the first caption and the window at 0.

    Args:
        source: dataset folder, or a :class:`MotionLayout` for other filters (used as is).
        split: split name.
        mean, std: (D,) statistics, arrays/tensors or ``.npy`` paths; None = the dataset's ``Mean.npy`` /
            ``Std.npy`` (right for the retriever; the generators pass the tokenizer's, docs/design.md §2.3).
        mode: ``"generation"`` or ``"retriever"``.
        train: random items (True) or deterministic ones (False).
        seed: evaluation seed; change ``self.seed`` between evaluation repeats.
        max_motion_length: padded length; None = 196 (generation) / 224 (retriever).
        unit_length: crop granularity for generation (4).
        skeleton: forwarded to :class:`MotionLayout` when ``source`` is a path.
        short_clips: ``"drop"`` or ``"hold"`` (above). min_motion_length: the generation minimum in frames
            for ``"hold"``; None = the skeleton's (40 HumanML3D, 24 KIT).

    Items:
        ``{"caption": str, "motion": FloatTensor (max_motion_length, D) (zeros after ``length``),
        "length": int frames, "key": str, "motion_id": str, "start": int (crop start in the sample),
        "labels": dict}``

    Raises:
        ValueError: unknown mode or short-clip policy; DatasetError: from :class:`MotionLayout` or the
            statistics.
    """

    def __init__(self, source, split: str = "train", mean=None, std=None, *, mode: str = "generation",
                 train: bool = True, seed: int = 0, max_motion_length: int | None = None,
                 unit_length: int = UNIT_LENGTH, skeleton=None, short_clips: str = "drop",
                 min_motion_length: int | None = None) -> None:
        if mode not in ("generation", "retriever"):
            raise ValueError(f"mode must be 'generation' or 'retriever', got {mode!r}")
        _check_policy(short_clips)
        self.mode, self.train, self.seed, self.unit_length = mode, train, seed, unit_length
        hold = mode == "generation" and short_clips == "hold"
        if mode == "generation":
            self.layout = _layout(source, split, skeleton=skeleton, **({"min_length": 0} if hold else {}))
            self.max_motion_length = GENERATION_MAX_LENGTH if max_motion_length is None else max_motion_length
        else:
            self.layout = _layout(source, split, skeleton=skeleton, min_length=0, max_length=None)
            self.max_motion_length = RETRIEVER_MAX_LENGTH if max_motion_length is None else max_motion_length
        self.mean, self.std = _stats(mean, std, self.layout)
        self.records = [r for r in self.layout if r.captions]
        if not self.records:
            raise DatasetFormatError(f"no captioned sample in split {self.layout.split!r} of {self.layout.root}")
        if hold:
            minimum = self.layout.skeleton.min_motion_length if min_motion_length is None else min_motion_length
            self.records = extend_short_records(self.records, minimum)

    def __len__(self) -> int:
        return len(self.records)

    def _rng(self, index: int) -> np.random.Generator:
        return _train_rng() if self.train else np.random.default_rng([self.seed, index])

    def _record(self, index: int) -> MotionRecord:
        return self.records[index]

    def __getitem__(self, index: int) -> dict:
        return self._item(index)[0]

    def _item(self, index: int):
        if not -len(self) <= index < len(self):
            raise IndexError(f"sample index {index} out of range [0, {len(self)})")
        index %= len(self)
        rec = self._record(index)
        rng = self._rng(index)
        total = self.max_motion_length
        if self.mode == "retriever":
            caption = rec.captions[int(rng.integers(len(rec.captions)))] if self.train else rec.captions[0]
            m_len = min(rec.length, total)
            start = int(rng.integers(0, rec.length - m_len + 1)) if self.train else 0
        else:
            caption = rec.captions[int(rng.integers(len(rec.captions)))]
            coin = "single"
            if self.unit_length < 10:  # docs/design.md §2.4: the coin only applies to small unit lengths
                coin = ("single", "single", "double")[int(rng.integers(3))]
            m_len = crop_length(rec.length, coin, self.unit_length, total)
            start = int(rng.integers(0, rec.length - m_len + 1))
        item = {
            "caption": caption.text,
            "motion": _padded(rec.motion[start: start + m_len], self.mean, self.std, total),
            "length": m_len,
            "key": rec.key,
            "motion_id": rec.motion_id,
            "start": start,
            "labels": dict(rec.labels),
        }
        return item, caption


class EvalTextMotionDataset(TextMotionDataset):
    """Deterministic evaluation loader (docs/design.md §2.4 ``Text2MotionDatasetEval``, docs/design.md §10).

    Generation filtering and coin/crop as :class:`TextMotionDataset` in evaluation mode, normalised with the
    given statistics (the evaluator's, docs/design.md §2.3), padded to 196. Caption, coin and crop of item ``i`` come
    from ``default_rng([seed, i])``: set ``self.seed = r`` for the r-th evaluation repeat.

    Args:
        source, split, mean, std, skeleton, short_clips, min_motion_length: as :class:`TextMotionDataset`.
        seed: see above.
        sort_by_length: order items by sample length, ascending (stable), as the reference loader does.
        max_text_len: tokens kept for the evaluator's text encoder (20).

    Items: those of :class:`TextMotionDataset` plus ``"tokens"`` (``max_text_len + 2`` ``"word/POS"``
    strings: sos, tokens, eos, unk padding) and ``"sent_len"`` (int, before padding).
    """

    def __init__(self, source, split: str = "test", mean=None, std=None, *, seed: int = 0,
                 sort_by_length: bool = False, max_text_len: int = 20,
                 max_motion_length: int = GENERATION_MAX_LENGTH, unit_length: int = UNIT_LENGTH,
                 skeleton=None, short_clips: str = "drop", min_motion_length: int | None = None) -> None:
        super().__init__(source, split, mean, std, mode="generation", train=False, seed=seed,
                         max_motion_length=max_motion_length, unit_length=unit_length, skeleton=skeleton,
                         short_clips=short_clips, min_motion_length=min_motion_length)
        self.max_text_len = max_text_len
        if sort_by_length:
            order = sorted(range(len(self.records)), key=lambda i: self.records[i].length)
            self.records = [self.records[i] for i in order]

    def __getitem__(self, index: int) -> dict:
        item, caption = self._item(index)
        item["tokens"], item["sent_len"] = evaluator_tokens(caption.token_strings, self.max_text_len)
        return item


def collate(batch: Sequence[Mapping]) -> dict:
    """Collate dict items into a batch.

    Tensors of one key are stacked (B, ...); numpy arrays likewise; ints -> LongTensor (B,), floats ->
    FloatTensor (B,), bools -> BoolTensor (B,); everything else (strings, token lists, label dicts,
    other objects) becomes a list of length B.

    Raises:
        ValueError: an empty batch, items with different keys, or tensors of one key with different shapes.
    """
    if not batch:
        raise ValueError("cannot collate an empty batch")
    keys = list(batch[0].keys())
    for i, item in enumerate(batch):
        if set(item) != set(keys):
            raise ValueError(f"batch item {i} has keys {sorted(item)}, item 0 has {sorted(keys)}")
    out: dict = {}
    for k in keys:
        vals = [item[k] for item in batch]
        if all(isinstance(v, torch.Tensor) for v in vals):
            shapes = {tuple(v.shape) for v in vals}
            if len(shapes) > 1:
                raise ValueError(f"cannot stack {k!r}: shapes {sorted(shapes)} differ; pad them first")
            out[k] = torch.stack(vals)
        elif all(isinstance(v, np.ndarray) for v in vals):
            shapes = {v.shape for v in vals}
            if len(shapes) > 1:
                raise ValueError(f"cannot stack {k!r}: shapes {sorted(shapes)} differ; pad them first")
            out[k] = torch.from_numpy(np.stack(vals))
        elif all(isinstance(v, (bool, np.bool_)) for v in vals):
            out[k] = torch.tensor(vals, dtype=torch.bool)
        elif all(isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)) for v in vals):
            out[k] = torch.tensor(vals, dtype=torch.long)
        elif all(isinstance(v, (float, np.floating)) for v in vals):
            out[k] = torch.tensor(vals, dtype=torch.float32)
        else:
            out[k] = list(vals)
    return out


def frame_mask(lengths: torch.Tensor | Sequence[int], max_length: int) -> torch.Tensor:
    """(B, max_length) bool mask, True on real frames (``t < length``), False on padding.

    A key-padding mask for ``nn.MultiheadAttention`` is its negation.
    """
    lengths = torch.as_tensor(lengths, dtype=torch.long)
    return torch.arange(max_length, device=lengths.device)[None, :] < lengths[:, None]
