"""Reconstruction metrics of a trained tokenizer on whole clips of a split (issue 4, spec 3).

For every clip (un-normalised (T, D) features): normalise with the model's statistics, encode, decode with
the first q = 1..Q quantiser layers, de-normalise, recover joints (``joints_from_features``) and compare
with the joints recovered from the ground-truth features.

Metrics (JSON-ready dict from :func:`evaluate_model`):

- ``mpjpe_mm``: {q: MPJPE}, millimetres, after pelvis alignment (joint 0 subtracted per frame), mean over
  all J joints and all real frames of the split (frame-weighted).
- ``root_error_5s_m``: metres; the distance between reconstructed and true root positions at frame
  100 (5 s at 20 fps), mean over clips of at least 100 frames (full depth). The trajectory is integrated
  from velocities, so this measures drift. ``root_ade_5s_m``: the same averaged over frames 0..99.
- ``foot_contact_accuracy``: reconstructed contacts thresholded at 0.5 vs the true ones, over real frames.
- ``codebooks``: per branch, per layer: ``used`` codes, ``usage`` (fraction of the codebook) and
  ``perplexity`` (exp of the entropy of the code histogram) of the split's tokens.

FID of reconstructions needs the T2M evaluator and is not computed here.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch

__all__ = ["ROOT_HORIZON", "evaluate_model", "evaluate_tokenizer"]

ROOT_HORIZON = 100
"""Frames after which the root error is measured: 5 s at 20 fps."""


def _batches(records: Sequence, batch_size: int):
    order = sorted(range(len(records)), key=lambda i: records[i].length)
    for k in range(0, len(order), batch_size):
        yield [records[i] for i in order[k:k + batch_size]]


@torch.no_grad()
def evaluate_model(model, records: Sequence, *, depths: Sequence[int] | None = None, batch_size: int = 32,
                   progress: bool = False) -> dict:
    """Metrics of ``model`` (a MotionTokenizer, used in eval mode) on motion records.

    Args:
        model: :class:`~remomask.tokenizer.model.MotionTokenizer`.
        records: objects with ``.motion`` (T, D) un-normalised features and ``.length`` (e.g. a
            :class:`~remomask.data.layout.MotionLayout`).
        depths: quantiser depths q to decode with (default 1..Q); the last one gives the other metrics.
        batch_size: clips per batch (sorted by length, padded).

    Returns:
        dict described in the module docstring, plus ``clips`` and ``frames``.

    Raises:
        ValueError: no records, or a depth outside 1..Q.
    """
    from tqdm.auto import tqdm

    from ..data.features import joints_from_features

    if not records:
        raise ValueError("no clips to evaluate")
    q_max = model.num_quantizers
    depths = list(range(1, q_max + 1)) if depths is None else sorted(set(int(d) for d in depths))
    if not depths or depths[0] < 1 or depths[-1] > q_max:
        raise ValueError(f"depths must be in 1..{q_max}, got {depths}")
    full = depths[-1]
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    err = {q: 0.0 for q in depths}
    frames, contact_hits = 0, 0
    root_end, root_ade = [], []
    cols = model.grid.columns
    hist2d = torch.zeros(q_max, model.config.num_codes, dtype=torch.long)
    hist1d = torch.zeros(q_max, model.config.num_codes_1d, dtype=torch.long) if model.dual else None
    for batch in tqdm(list(_batches(records, batch_size)), desc="evaluate", disable=not progress):
        lengths = torch.tensor([r.length for r in batch], device=device)
        t_max = int(lengths.max())
        raw = torch.zeros(len(batch), t_max, model.config.feature_dim, device=device)
        for i, r in enumerate(batch):
            raw[i, : r.length] = torch.as_tensor(np.asarray(r.motion, dtype=np.float32), device=device)
        ids = model.encode(model.normalize(raw), lengths)
        valid_ids = ids[..., 0] >= 0
        for layer in range(q_max):
            hist2d[layer] += torch.bincount(ids[:, :, :cols, layer][valid_ids[:, :, :cols]].cpu(),
                                            minlength=hist2d.shape[1])
            if hist1d is not None:
                hist1d[layer] += torch.bincount(ids[:, :, cols, layer][valid_ids[:, :, cols]].cpu(),
                                                minlength=hist1d.shape[1])
        gt_joints = joints_from_features(raw.double())                         # (B, T, J, 3)
        gt_local = gt_joints - gt_joints[:, :, :1]
        real = (torch.arange(t_max, device=device)[None, :] < lengths[:, None])  # (B, T)
        for q in depths:
            rec = model.denormalize(model.decode(ids, num_layers=q)[:, :t_max]).double()
            rec = rec * real[..., None]
            joints = joints_from_features(rec)
            local = joints - joints[:, :, :1]
            per_frame = (local - gt_local).norm(dim=-1).mean(-1)               # (B, T) metres
            err[q] += float((per_frame * real).sum())
            if q == full:
                foot = slice(model.config.feature_dim - 4, model.config.feature_dim)
                hit = (rec[..., foot] > 0.5) == (raw[..., foot].double() > 0.5)
                contact_hits += int((hit & real[..., None]).sum())
                dist = (joints[:, :, 0] - gt_joints[:, :, 0]).norm(dim=-1)    # (B, T) metres
                for i, n in enumerate(lengths.tolist()):
                    if n >= ROOT_HORIZON:
                        root_end.append(float(dist[i, ROOT_HORIZON - 1]))
                        root_ade.append(float(dist[i, :ROOT_HORIZON].mean()))
        frames += int(lengths.sum())
    if was_training:
        model.train()

    def usage(hist: torch.Tensor) -> list[dict]:
        out = []
        for row in hist:
            total = int(row.sum())
            p = row.double() / max(total, 1)
            ent = float(-(p[p > 0] * p[p > 0].log()).sum())
            out.append({"used": int((row > 0).sum()), "usage": float((row > 0).double().mean()),
                        "perplexity": math.exp(ent), "tokens": total})
        return out

    codebooks = {"2d": usage(hist2d)}
    if hist1d is not None:
        codebooks["1d"] = usage(hist1d)
    return {
        "clips": len(records),
        "frames": frames,
        "mpjpe_mm": {str(q): 1000.0 * err[q] / frames for q in depths},
        "root_error_5s_m": float(np.mean(root_end)) if root_end else float("nan"),
        "root_ade_5s_m": float(np.mean(root_ade)) if root_ade else float("nan"),
        "root_clips": len(root_end),
        "foot_contact_accuracy": contact_hits / (4 * frames),
        "codebooks": codebooks,
    }


def evaluate_tokenizer(model_dir, *, dataset: str = "embedded", split: str = "test", batch_size: int = 32,
                       device: str = "cpu", depths: Sequence[int] | None = None, max_clips: int | None = None,
                       progress: bool = True) -> dict:
    """Load a tokenizer folder and evaluate it on every clip of ``split`` of ``dataset``.

    Returns:
        :func:`evaluate_model`'s dict plus ``model``, ``dataset``, ``split``.

    Raises:
        FileNotFoundError / CheckpointError: bad model folder; DatasetError: bad dataset or split;
        ValueError: bad depths.
    """
    from ..data.embedded import resolve_dataset
    from ..data.layout import MotionLayout
    from .model import MotionTokenizer

    model = MotionTokenizer.from_pretrained(model_dir, map_location=device)
    root = resolve_dataset(dataset, progress=progress)
    layout = MotionLayout(root, split, min_length=0, max_length=None, require_captions=False, subclips=False,
                          progress=False)
    if layout.skeleton.feature_dim != model.config.feature_dim:
        raise ValueError(f"the model takes {model.config.feature_dim}-d features but {root} has "
                         f"{layout.skeleton.feature_dim}-d ones")
    records = list(layout)[:max_clips]
    metrics = evaluate_model(model, records, depths=depths, batch_size=batch_size, progress=progress)
    return {"model": str(model_dir), "dataset": str(root), "split": split, **metrics}
