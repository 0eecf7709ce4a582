"""Reconstruction metrics of a trained tokenizer on whole clips of a split (issue 4, docs/design.md §3).

For every clip (un-normalised (T, D) features): normalise with the model's statistics, encode, decode with
the first q = 1..Q quantiser layers, de-normalise, recover joints (``joints_from_features``) and compare
with the joints recovered from the ground-truth features.

Metrics (JSON-ready dict from :func:`evaluate_model`):

- ``mpjpe_mm``: {q: MPJPE}, millimetres, after pelvis alignment (joint 0 subtracted per frame), mean over
  all J joints and all real frames of the split (frame-weighted; :func:`remomask.evaluation.mpjpe.per_frame_error`).
- ``root_error_5s_m``: metres; the distance between reconstructed and true root positions at frame
  100 (5 s at 20 fps), mean over clips of at least 100 frames (full depth). The trajectory is integrated
  from velocities, so this measures drift. ``root_ade_5s_m``: the same averaged over frames 0..99.
- ``foot_contact_accuracy``: reconstructed contacts thresholded at 0.5 vs the true ones, over real frames.
- ``codebooks``: per branch, per layer: ``used`` codes, ``usage`` (fraction of the codebook) and
  ``perplexity`` (exp of the entropy of the code histogram) of the split's tokens.

Reconstruction FID (docs/design.md §10.2, eval_vq; issue 6) is computed by :func:`reconstruction_fid` with the
bundled T2M evaluator: the protocol's evaluation loader (captioned samples, 40 <= T < 200, random crops to
multiples of 4) is encoded and decoded at full depth and scored with
:func:`remomask.evaluation.protocol.evaluate_reconstruction`, ``repeats`` passes, mean ± CI95.
:func:`evaluate_tokenizer` adds it under ``"fid"`` / ``"reconstruction"`` (``"fid_skipped"`` says why
when the data cannot support it, e.g. a split without captions).
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch

__all__ = ["ROOT_HORIZON", "FID_REPEATS", "evaluate_model", "evaluate_tokenizer", "make_reconstructor",
           "reconstruction_fid", "reconstruction_action_accuracy"]

ROOT_HORIZON = 100
"""Frames after which the root error is measured: 5 s at 20 fps."""
FID_REPEATS = 3
"""Default passes of the reconstruction-FID protocol. The paper protocol uses 20; one pass over the
embedded test split (768 samples) takes about 24 s with one CPU thread, so 3 keep
``remomask evaluate tokenizer`` under two minutes (measured 105 s in all, 71 s of FID, on a busy 2-core CPU)."""


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
    from ..evaluation.mpjpe import per_frame_error

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
        real = (torch.arange(t_max, device=device)[None, :] < lengths[:, None])  # (B, T)
        for q in depths:
            rec = model.denormalize(model.decode(ids, num_layers=q)[:, :t_max]).double()
            rec = rec * real[..., None]
            joints = joints_from_features(rec)
            per_frame = per_frame_error(gt_joints, joints)                     # (B, T) metres
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


def make_reconstructor(model, num_layers: int | None = None):
    """A ``reconstruct(features, lengths)`` function of a tokenizer for the evaluation protocol (docs/design.md §10.2).

    Args:
        model: :class:`~remomask.tokenizer.model.MotionTokenizer` (put in eval mode here).
        num_layers: quantiser depth used to decode (None = all Q layers).

    Returns:
        ``reconstruct(features (B, T, D) de-normalised float, lengths (B,) frames) -> (B, T, D)``:
        normalise with the model's statistics, encode (tokens after a clip's length are masked), decode
        with ``num_layers`` layers, de-normalise; frames at and after each length are zero (as the
        loader's padding). Runs on the model's device under ``torch.no_grad``; the result is on the CPU.
        The batch is encoded and decoded at once, padded to its longest clip (as :func:`evaluate_model`
        and the reference eval_vq do), so the non-causal convolutions let a clip's last frames depend a
        little on the padding (mean |difference| about 4 % of the reconstruction error on real clips).

    Raises:
        ValueError (when called): features of the wrong size, lengths outside 1..T.
    """
    device = next(model.parameters()).device
    model.eval()

    @torch.no_grad()
    def reconstruct(features: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        lengths = torch.as_tensor(lengths, dtype=torch.long)
        if features.ndim != 3 or lengths.shape != (features.shape[0],):
            raise ValueError(f"expected features (B, T, D) and lengths (B,), got {tuple(features.shape)} and "
                             f"{tuple(lengths.shape)}")
        total = features.shape[1]
        t = int(lengths.max())  # trim the loader's padding: fewer frames to encode
        raw = features[:, :t].to(device=device, dtype=torch.float32)
        lens = lengths.to(device)
        ids = model.encode(model.normalize(raw), lens)
        rec = model.denormalize(model.decode(ids, num_layers=num_layers)[:, :t])
        real = torch.arange(t, device=device)[None, :] < lens[:, None]
        out = torch.zeros(features.shape[0], total, features.shape[2])
        out[:, :t] = (rec * real[..., None]).float().cpu()
        return out

    return reconstruct


def reconstruction_fid(model, *, dataset: str = "embedded", split: str = "test", repeats: int = FID_REPEATS,
                       seed: int | None = None, evaluator=None, layout=None, progress: bool = False) -> dict:
    """Reconstruction FID of a tokenizer with the T2M evaluator (docs/design.md §10.2 eval_vq; issue 6).

    Runs :func:`remomask.evaluation.protocol.evaluate_reconstruction` with :func:`make_reconstructor`
    (full depth) on the protocol's evaluation loader of ``split``: captioned samples with
    40 <= T < 200 frames, crops to multiples of 4, batches of 32 (last partial batch dropped), shuffled
    with seed ``seed + r`` in repeat r.

    Args:
        model: :class:`~remomask.tokenizer.model.MotionTokenizer`.
        dataset: ``"embedded"`` or a HumanML3D-layout folder with captions (``texts/``); ignored when
            ``layout`` is given. split: split name.
        repeats: passes (>= 1), reported as mean ± 1.96 std / sqrt(repeats).
        seed: protocol seed (None = 10107, the reference).
        evaluator: None (the evaluator shipped with remomask), an evaluator folder or object.
        layout: a ready :class:`~remomask.data.layout.MotionLayout` of the split (protocol filters).
        progress: tqdm bar over repeats.

    Returns:
        ``{"fid", "mpjpe_mm", "top1", "top2", "top3", "mm_dist", "diversity", "<label>_acc": {mean,
        ci95}, "reference": {the same for the real samples}, "split", "repeats", "seed",
        "samples_per_repeat", "evaluator", "seconds"}``. FID is between evaluator embeddings of the real
        and the reconstructed samples (unitless; 0 = identical distributions). ``mpjpe_mm`` here is on the
        protocol's crops (millimetres), not the whole clips of :func:`evaluate_model`.

    Raises:
        ValueError: ``repeats < 1``, or an evaluator whose feature size differs from the model's.
        ProtocolError: a split with fewer than 32 usable samples. EvaluatorError / DatasetError: the
        evaluator or the data (e.g. a split without captions) cannot be loaded.
    """
    from ..evaluation.protocol import (DEFAULT_SEED, evaluate_reconstruction, json_safe, load_split_layout,
                                       resolve_evaluator)

    if repeats < 1:
        raise ValueError(f"FID repeats must be >= 1, got {repeats}")
    seed = DEFAULT_SEED if seed is None else int(seed)
    layout = load_split_layout(dataset, split, layout)  # the data first: its errors are the cheap ones
    evaluator = resolve_evaluator(evaluator)
    want = getattr(getattr(evaluator, "config", None), "feature_dim", None)
    if want is not None and want != model.config.feature_dim:
        raise ValueError(f"the evaluator scores {want}-d features but the tokenizer makes "
                         f"{model.config.feature_dim}-d ones; pass a matching evaluator or skip FID (--no-fid)")
    res = evaluate_reconstruction(make_reconstructor(model), split, repeats, seed, dataset=dataset,
                                  evaluator=evaluator, layout=layout, name="reconstruction", progress=progress)
    pick = lambda stats: {k: {"mean": v["mean"], "ci95": v["ci95"]} for k, v in stats.items()}  # noqa: E731
    return json_safe({**pick(res.metrics), "reference": pick(res.reference), "split": split, "repeats": repeats,
                      "seed": seed, "samples_per_repeat": res.info["samples_per_repeat"],
                      "evaluator": res.info["evaluator"], "seconds": res.info["seconds"]})


@torch.no_grad()
def reconstruction_action_accuracy(model, records: Sequence, evaluator, *, train_counts: dict,
                                   threshold: int, batch_size: int = 32, label: str = "action") -> dict:
    """Does a tokenizer keep the action of real clips? Per-action accuracy of the evaluator's action
    classifier on each whole clip and on its reconstruction (docs/data.md "Every action learned").

    Every record is reconstructed whole at full depth (:func:`make_reconstructor`); both the real clip and
    its reconstruction are then cut to the evaluator's canvas (first ``max_frames`` = 196 frames) and, when
    shorter than 40 frames, hold-extended to 40 (centred, :func:`remomask.data.datasets.hold_extend`, as the
    evaluator's training data was), and classified.

    Args:
        model: :class:`~remomask.tokenizer.model.MotionTokenizer`.
        records: :class:`~remomask.data.layout.MotionRecord` s with ``labels[label]`` (un-normalised features).
        evaluator: a :class:`~remomask.evaluation.evaluator.T2MEvaluator` with a ``label`` classifier.
        train_counts: ``{action: train segments}``; an action with fewer than ``threshold`` is *rare*.
        threshold: rare-action threshold, train segments.

    Returns:
        ``{"per_action": {action: {"clips", "train", "real_acc", "reconstruction_acc", "ratio"}},
        "overall": {...}, "rare": {...}, "frequent": {...}, "threshold", "unknown_actions"}``: accuracies in
        [0, 1] over clips (the rows pool clips, not actions); ``ratio`` = reconstruction / real accuracy
        (None when the real accuracy is 0). Actions the classifier does not know are listed in
        ``unknown_actions`` and left out.

    Raises:
        EvaluatorError: an evaluator without a ``label`` classifier.
    """
    from ..data.datasets import hold_extend
    from ..evaluation.evaluator import EvaluatorError

    if label not in evaluator.label_names:
        raise EvaluatorError(f"the evaluator has no {label!r} classifier (it has {evaluator.label_names})")
    known = set(evaluator.config.classes[label])
    canvas, minimum = int(evaluator.config.max_frames), 40
    reconstruct = make_reconstructor(model)
    keep = [r for r in records if r.labels.get(label) in known]
    unknown = sorted({str(r.labels.get(label)) for r in records} - known)
    hits: dict[str, list[tuple[bool, bool]]] = {}

    def prepared(x: np.ndarray) -> np.ndarray:
        x = x[:canvas]
        if len(x) < minimum:
            before = (minimum - len(x)) // 2
            x = hold_extend(x, before, minimum - len(x) - before)
        return x

    for batch in _batches(keep, batch_size):
        t = max(r.length for r in batch)
        feats = torch.zeros(len(batch), t, batch[0].motion.shape[1])
        for k, r in enumerate(batch):
            feats[k, :r.length] = torch.as_tensor(np.asarray(r.motion[:r.length], dtype=np.float32))
        lengths = torch.tensor([r.length for r in batch])
        rec = reconstruct(feats, lengths)
        for name, source in (("real", feats), ("rec", rec)):
            clips = [prepared(source[k, :r.length].numpy()) for k, r in enumerate(batch)]
            tt = max(len(c) for c in clips)
            x = torch.zeros(len(clips), tt, clips[0].shape[1])
            for k, c in enumerate(clips):
                x[k, :len(c)] = torch.as_tensor(c)
            pred = evaluator.predict_labels(x, torch.tensor([len(c) for c in clips]))[label]
            for k, r in enumerate(batch):
                hits.setdefault(r.key, [r.labels[label], None, None])
                hits[r.key][1 if name == "real" else 2] = pred[k] == r.labels[label]

    def row(items: list) -> dict:
        n = len(items)
        real = sum(h[1] for h in items) / n if n else float("nan")
        recon = sum(h[2] for h in items) / n if n else float("nan")
        return {"clips": n, "real_acc": real, "reconstruction_acc": recon,
                "ratio": (recon / real) if n and real > 0 else None}

    by_action: dict[str, list] = {}
    for h in hits.values():
        by_action.setdefault(h[0], []).append(h)
    per_action = {a: {**row(v), "train": int(train_counts.get(a, 0))} for a, v in sorted(by_action.items())}
    everything = list(hits.values())
    rare = [h for h in everything if train_counts.get(h[0], 0) < threshold]
    frequent = [h for h in everything if train_counts.get(h[0], 0) >= threshold]
    return {"per_action": per_action, "overall": row(everything), "rare": row(rare), "frequent": row(frequent),
            "threshold": threshold, "unknown_actions": unknown}


def evaluate_tokenizer(model_dir, *, dataset: str = "embedded", split: str = "test", batch_size: int = 32,
                       device: str = "cpu", depths: Sequence[int] | None = None, max_clips: int | None = None,
                       progress: bool = True, fid: bool | None = None, fid_repeats: int = FID_REPEATS,
                       fid_seed: int | None = None, evaluator=None, per_action: bool = False,
                       rare_threshold: int | None = None) -> dict:
    """Load a tokenizer folder and evaluate it on every clip of ``split`` of ``dataset`` (issue 4, 6).

    Args:
        model_dir: tokenizer folder. dataset: ``"embedded"`` or a HumanML3D-layout folder. split: split.
        batch_size, depths, max_clips: see :func:`evaluate_model` (``max_clips`` limits those metrics only).
        device: torch device. progress: tqdm bars.
        fid: reconstruction FID (:func:`reconstruction_fid`): True computes it (errors propagate), False
            skips it, None (default) computes it when the data allows and otherwise records why not under
            ``"fid_skipped"`` (a split without captions, fewer than 32 samples of 40-199 frames, or an
            evaluator for another feature size).
        fid_repeats, fid_seed, evaluator: its passes, seed (None = 10107) and evaluator (None = bundled).
        per_action: also :func:`reconstruction_action_accuracy` on every clip of the split (``max_clips``
            applies; under
            ``"per_action"``), with the evaluator's action classifier; ``rare_threshold`` train segments
            (None = :data:`remomask.evaluation.protocol.RARE_SEGMENTS`).

    Returns:
        :func:`evaluate_model`'s dict plus ``model``, ``dataset``, ``split`` and, when computed, ``"fid"``
        ({mean, ci95}) and ``"reconstruction"`` (the whole :func:`reconstruction_fid` dict).

    Raises:
        FileNotFoundError / CheckpointError: bad model folder; DatasetError: bad dataset or split;
        ValueError: bad depths or FID settings; EvaluatorError: the evaluator cannot be loaded;
        DatasetError / ProtocolError / ValueError from the FID protocol when ``fid`` is True.
    """
    from ..data.embedded import resolve_dataset
    from ..data.layout import MotionLayout
    from .model import MotionTokenizer

    if fid and fid_repeats < 1:
        raise ValueError(f"FID repeats must be >= 1, got {fid_repeats}")
    model = MotionTokenizer.from_pretrained(model_dir, map_location=device)
    root = resolve_dataset(dataset, progress=progress)
    layout = MotionLayout(root, split, min_length=0, max_length=None, require_captions=False, subclips=False,
                          progress=False)
    if layout.skeleton.feature_dim != model.config.feature_dim:
        raise ValueError(f"the model takes {model.config.feature_dim}-d features but {root} has "
                         f"{layout.skeleton.feature_dim}-d ones")
    records = list(layout)[:max_clips]
    metrics = evaluate_model(model, records, depths=depths, batch_size=batch_size, progress=progress)
    out = {"model": str(model_dir), "dataset": str(root), "split": split, **metrics}
    if fid is not False:
        from ..data.layout import DatasetError
        from ..evaluation.protocol import ProtocolError

        try:
            rec = reconstruction_fid(model, dataset=root, split=split, repeats=fid_repeats, seed=fid_seed,
                                     evaluator=evaluator, progress=progress)
        except (DatasetError, ProtocolError, ValueError) as exc:
            if fid:
                raise
            out["fid_skipped"] = str(exc)
        else:
            out["fid"] = rec["fid"]
            out["reconstruction"] = rec
    if per_action:
        from collections import Counter

        from ..evaluation.protocol import RARE_SEGMENTS, resolve_evaluator

        train = MotionLayout(root, "train", min_length=0, max_length=None, require_captions=False,
                             subclips=False, progress=False)
        counts = dict(Counter(r.labels.get("action") for r in train))
        out["per_action"] = reconstruction_action_accuracy(
            model, records, resolve_evaluator(evaluator), train_counts=counts,
            threshold=RARE_SEGMENTS if rare_threshold is None else int(rare_threshold), batch_size=batch_size)
    return out
