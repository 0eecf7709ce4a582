"""Training of the embedded-dataset evaluator and its label classifiers (design §10.1; issue "evaluation suite").

Two phases, one process, resumable:

1. **Embedder** (movement, motion and text encoders): symmetric InfoNCE on the cosine similarity of the
   text and motion embeddings of a batch, temperature ``config.temperature``. Batch items whose caption
   is identical to the query's, or (``label_false_negatives``) whose labels all equal the query's, are
   removed from its denominator: in the embedded dataset many clips share a (content, style) pair and
   their captions are paraphrases of one another, so they are not negatives. Samples follow the
   generation loader (docs/design.md §2.4: random caption, coin crop, 40 <= T < 200), de-normalised; the model
   normalises them with the training split's Mean/Std, which become its own statistics. Samples shorter
   than 40 frames are kept, extended to 40 with holds of their first and last pose, so every action of
   the training split has a class and training items (docs/data.md "Every action learned";
   :func:`training_layout`, :func:`training_dataset`).
2. **Classifiers** (one per label of ``labels.json``: ``action``, ``style``): cross-entropy with label
   smoothing on the same random crops; samples without the label (HDM05 style) are ignored.

Model selection uses ``config.val_split`` only (never test): the epoch with the best mean of R-precision
top-1/2/3 (batches of 32, ``val_repeats`` seeds) for the embedder, and the best mean label accuracy for
the classifiers. After each epoch the state goes to ``<work_dir>/checkpoint.pt`` (tensors and plain
values only, re-read with ``weights_only=True``), so ``resume=True`` continues where a run stopped.
TensorBoard logs go to ``<work_dir>/tb``.
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from .._training import atomic_torch_save
from .evaluator import EvaluatorConfig, EvaluatorError, T2MEvaluator
from .metrics import R_PRECISION_BATCH, r_precision

__all__ = ["train_evaluator", "label_classes", "training_layout", "training_dataset", "contrastive_loss",
           "validate_embedder", "validate_classifiers", "model_card"]

LABEL_NAMES = ("action", "style")
"""Labels of ``labels.json`` that get a classifier when the training split has them."""


def label_classes(layout, names=LABEL_NAMES) -> dict[str, list[str]]:
    """``{label: sorted class names}`` over a split's records; labels with fewer than 2 classes are left out."""
    out = {}
    for name in names:
        values = sorted({str(r.labels[name]) for r in layout if r.labels.get(name) is not None})
        if len(values) >= 2:
            out[name] = values
    return out


def training_layout(root, split: str, progress: bool = False):
    """The :class:`~remomask.data.layout.MotionLayout` the evaluator trains (or validates) on: captioned
    samples of ``T < 200`` frames with no minimum (short ones are hold-extended by :func:`training_dataset`).

    Raises:
        DatasetError: the dataset or the split cannot be read.
    """
    from ..data.layout import MotionLayout

    return MotionLayout(root, split, min_length=0, progress=progress)


def training_dataset(layout, feature_dim: int, short_clips: str = "hold"):
    """The evaluator's training items: random caption / coin crop of every sample of ``layout``,
    de-normalised, samples shorter than the skeleton's minimum extended with holds (module docstring;
    ``short_clips="drop"``: left out, the HumanML3D convention).

    Returns:
        :class:`~remomask.data.datasets.TextMotionDataset` in training mode.
    """
    from ..data.datasets import TextMotionDataset

    mean, std = _raw_stats(feature_dim)
    return TextMotionDataset(layout, mean=mean, std=std, mode="generation", train=True, short_clips=short_clips)


def contrastive_loss(text: torch.Tensor, motion: torch.Tensor, same: torch.Tensor, temperature: float) -> torch.Tensor:
    """Symmetric InfoNCE with false negatives removed.

    Args:
        text, motion: (B, E) embeddings of B pairs (any norm; cosine similarity is used).
        same: (B, B) bool, True where item j is not a negative for item i (the diagonal is ignored).
        temperature: softmax temperature.

    Returns:
        Scalar loss: mean of the text->motion and motion->text cross-entropies.
    """
    logits = F.normalize(text, dim=-1) @ F.normalize(motion, dim=-1).T / temperature  # (B, B)
    eye = torch.eye(len(logits), dtype=torch.bool, device=logits.device)
    logits = logits.masked_fill(same & ~eye, float("-inf"))
    target = torch.arange(len(logits), device=logits.device)
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))


def _same_mask(batch: dict, names) -> torch.Tensor:
    caps = [c.strip().lower() for c in batch["caption"]]
    n = len(caps)
    same = torch.tensor([[caps[i] == caps[j] for j in range(n)] for i in range(n)])
    if names:
        keys = [tuple(lab.get(k) for k in names) for lab in batch["labels"]]
        same |= torch.tensor([[keys[i] == keys[j] for j in range(n)] for i in range(n)])
    return same


def _targets(batch: dict, name: str, classes: list[str]) -> torch.Tensor:
    index = {c: i for i, c in enumerate(classes)}
    return torch.tensor([index.get(str(lab.get(name)), -100) if lab.get(name) is not None else -100
                         for lab in batch["labels"]], dtype=torch.long)


def _raw_stats(dim: int) -> tuple[np.ndarray, np.ndarray]:
    # The loaders return de-normalised features: the evaluator normalises with its own statistics.
    return np.zeros(dim, np.float32), np.ones(dim, np.float32)


@torch.no_grad()
def validate_embedder(model: T2MEvaluator, layout, repeats: int = 3, seed: int = 0) -> dict:
    """R-precision top-1/2/3 and MM-Dist of real (text, motion) pairs of a split, batches of 32.

    Uses the deterministic evaluation loader (seed ``seed + r`` for repeat r, shuffled, last partial
    batch dropped). Returns ``{"top1", "top2", "top3", "mm_dist", "score"}`` with ``score`` the mean of
    the three R-precisions (the selection metric).
    """
    from ..data.datasets import EvalTextMotionDataset, collate

    was = model.training
    model.eval()
    mean, std = _raw_stats(model.config.feature_dim)
    ds = EvalTextMotionDataset(layout, mean=mean, std=std, short_clips="hold")
    tops, dists = [], []
    for r in range(repeats):
        ds.seed = seed + r
        gen = torch.Generator().manual_seed(seed + r)
        for batch in DataLoader(ds, R_PRECISION_BATCH, shuffle=True, drop_last=True, collate_fn=collate,
                                generator=gen):
            t = model.encode_text(batch["caption"])
            m = model.encode_motion(batch["motion"], batch["length"])
            tops.append(r_precision(t, m))
            dists.append(float((t - m).norm(dim=-1).mean()))
    model.train(was)
    top = np.mean(tops, axis=0)
    return {"top1": float(top[0]), "top2": float(top[1]), "top3": float(top[2]),
            "mm_dist": float(np.mean(dists)), "score": float(top.mean())}


@torch.no_grad()
def validate_classifiers(model: T2MEvaluator, layout, repeats: int = 3, seed: int = 0) -> dict:
    """Accuracy of every label classifier on a split (deterministic crops, ``repeats`` seeds).

    Returns ``{"<label>_acc": float, ..., "score": mean of them}``; samples without the label are skipped.
    """
    from ..data.datasets import EvalTextMotionDataset, collate

    was = model.training
    model.eval()
    mean, std = _raw_stats(model.config.feature_dim)
    ds = EvalTextMotionDataset(layout, mean=mean, std=std, short_clips="hold")
    hits = {n: 0 for n in model.label_names}
    counts = {n: 0 for n in model.label_names}
    for r in range(repeats):
        ds.seed = seed + r
        for batch in DataLoader(ds, 64, shuffle=False, collate_fn=collate):
            logits = model.classify(batch["motion"], batch["length"])
            for name, lg in logits.items():
                tgt = _targets(batch, name, model.config.classes[name])
                ok = tgt >= 0
                hits[name] += int((lg.argmax(-1)[ok] == tgt[ok]).sum())
                counts[name] += int(ok.sum())
    model.train(was)
    out = {f"{n}_acc": hits[n] / counts[n] if counts[n] else float("nan") for n in model.label_names}
    finite = [v for v in out.values() if math.isfinite(v)]
    out["score"] = float(np.mean(finite)) if finite else float("nan")
    return out


def _warm_text_cache(model: T2MEvaluator, layouts, progress: bool) -> None:
    from tqdm.auto import tqdm

    caps = sorted({c.text for lay in layouts for r in lay for c in r.captions})
    enc = model.text_model()
    for s in tqdm(range(0, len(caps), 256), desc="sentence encoder", disable=not progress, unit="batch"):
        enc.encode(caps[s: s + 256])


def model_card(config: EvaluatorConfig, metrics: dict, *, command: str | None, data_hash: str | None,
               seconds: float, params: int) -> str:
    """The README.md written beside the evaluator weights (data, training, scores, licence)."""
    cfg = json.dumps(config.to_dict(), indent=1, sort_keys=True)
    emb = metrics.get("embedder", {})
    clf = metrics.get("classifiers", {})
    lines = [
        "# remomask evaluator (embedded dataset)",
        "",
        "Text-motion embedding model and label classifiers used **only to score motions** (R-precision, FID,",
        "MM-Dist, Diversity, MModality, label accuracy; docs/design.md §10.1, §10.2). Guo et al. 2022 design (movement",
        "convolutions, BiGRU motion encoder, BiGRU text encoder) over the frozen all-MiniLM-L6-v2 token",
        "features instead of GloVe + POS; another architecture and seed than the retriever. It takes",
        "**de-normalised** 263-d features and normalises them with its own `mean`/`std` buffers (the train",
        "split's Mean/Std), so generators must hand over de-normalised motions (docs/design.md §15.3).",
        "",
        f"- **Data:** remomask embedded dataset, content hash `{data_hash}`; trained on `{config.train_split}`,",
        f"  selected on `{config.val_split}` (never on test).",
        f"- **Command:** `{command}`" if command else "- **Command:** (library call)",
        f"- **Parameters:** {params:,}; training time {seconds / 60:.1f} min on CPU.",
        "- **Labels:** " + ", ".join(f"{k} ({len(v)} classes)" for k, v in config.classes.items()),
        "",
        "## Validation scores (selected epoch)",
        "",
        "| metric | value |",
        "|---|---|",
    ]
    for key in ("top1", "top2", "top3", "mm_dist"):
        if key in emb:
            lines.append(f"| R-precision {key} (batches of 32)" if key.startswith("top") else "| MM-Dist")
            lines[-1] += f" | {emb[key]:.3f} |"
    for key, value in clf.items():
        if key.endswith("_acc"):
            lines.append(f"| {key[:-4]} accuracy | {value:.3f} |")
    lines += [
        f"| embedder epoch | {emb.get('epoch', '-')} |",
        f"| classifier epoch | {clf.get('epoch', '-')} |",
        "",
        "## Config",
        "",
        "```json",
        cfg,
        "```",
        "",
        "## Licence",
        "",
        "Trained on data derived from Bandai-Namco-Research-Motiondataset (CC BY-NC 4.0, non-commercial) and",
        "HDM05 (CC BY-SA 3.0); these weights carry the same terms. Code: MIT.",
        "",
    ]
    return "\n".join(lines)


def train_evaluator(config: EvaluatorConfig, out_dir: str | os.PathLike, *, work_dir: str | os.PathLike | None = None,
                    resume: bool = False, progress: bool = True, command: str | None = None,
                    log: Callable[[str], None] = print) -> dict:
    """Train the evaluator and its classifiers, and save the selected model to ``out_dir``.

    Args:
        config: :class:`EvaluatorConfig` (``classes`` is filled from the training split's labels).
        out_dir: folder for ``config.json``, ``model.safetensors`` and ``README.md``.
        work_dir: checkpoint and TensorBoard folder; None = ``runs/evaluator`` under the current directory.
        resume: continue from ``<work_dir>/checkpoint.pt``.
        progress: tqdm bars.
        command: the command line, written to the model card.
        log: where one-line epoch summaries go.

    Returns:
        ``{"embedder": {... val metrics, "epoch"}, "classifiers": {...}, "seconds": float}``.

    Raises:
        EvaluatorError: resuming without a checkpoint, or with a checkpoint of another config.
        DatasetError: the dataset cannot be read.
    """
    from tqdm.auto import tqdm

    from ..data.datasets import collate
    from ..data.embedded import resolve_dataset

    work = Path(work_dir) if work_dir is not None else Path("runs") / "evaluator"
    work.mkdir(parents=True, exist_ok=True)
    ckpt_path = work / "checkpoint.pt"
    start = time.time()

    root = resolve_dataset(config.dataset, progress=progress)
    train_layout = training_layout(root, config.train_split, progress=progress)
    val_layout = training_layout(root, config.val_split)
    config.classes = label_classes(train_layout)
    data_hash = None
    if (root / "stats.json").is_file():
        data_hash = json.loads((root / "stats.json").read_text()).get("content_hash")

    state = None
    if resume:
        if not ckpt_path.is_file():
            raise EvaluatorError(f"--resume: no checkpoint at {ckpt_path}; start without --resume")
        state = torch.load(ckpt_path, map_location="cpu", weights_only=True)
        saved = json.loads(state["config"])
        if saved != json.loads(json.dumps(config.to_dict())):
            diff = sorted(k for k in saved if saved.get(k) != config.to_dict().get(k))
            raise EvaluatorError(f"{ckpt_path} was written with another config (differs in {diff}); "
                                 "resume with the same options or use a new --work-dir")

    torch.manual_seed(config.seed)
    np.random.seed(config.seed)
    model = T2MEvaluator(config, mean=train_layout.mean, std=train_layout.std)
    model.train()
    _warm_text_cache(model, [train_layout, val_layout], progress)
    train_ds = training_dataset(train_layout, config.feature_dim)
    loader = DataLoader(train_ds, config.batch_size, shuffle=True, drop_last=True, collate_fn=collate,
                        generator=torch.Generator().manual_seed(config.seed))
    steps_per_epoch = len(loader)

    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(str(work / "tb"))

    embed_params = [p for n, p in model.named_parameters() if not n.startswith("classifiers.")]
    clf_params = [p for n, p in model.named_parameters() if n.startswith("classifiers.")]
    phases = [("embedder", config.epochs, embed_params, config.lr)]
    if clf_params:
        phases.append(("classifiers", config.classifier_epochs, clf_params, config.classifier_lr))

    results: dict = {"embedder": {}, "classifiers": {}}
    history: list = []
    phase_index, epoch = 0, 0
    best_score, best_state = -math.inf, None
    elapsed_before = 0.0
    if state is not None:
        elapsed_before = float(state.get("seconds", 0.0))
        model.load_state_dict(state["model"])
        phase_index, epoch = int(state["phase_index"]), int(state["epoch"])
        best_score = float(state["best_score"])
        best_state = state["best_state"] or None
        results = json.loads(state["results"])
        history = json.loads(state["history"])
        torch.set_rng_state(state["torch_rng"])
        log(f"resumed from {ckpt_path}: phase {phases[min(phase_index, len(phases) - 1)][0]}, epoch {epoch}")

    while phase_index < len(phases):
        name, epochs, params, lr = phases[phase_index]
        opt = torch.optim.AdamW(params, lr=lr, weight_decay=config.weight_decay)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, epochs * steps_per_epoch))
        if state is not None and int(state["phase_index"]) == phase_index and state.get("optimizer"):
            opt.load_state_dict(state["optimizer"])
            sched.load_state_dict(state["scheduler"])
        state = None
        while epoch < epochs:
            tick = time.time()
            model.train()
            total, count = 0.0, 0
            bar = tqdm(loader, desc=f"{name} {epoch + 1}/{epochs}", disable=not progress, leave=False)
            for batch in bar:
                if name == "embedder":
                    t = model.encode_text(batch["caption"])
                    m = model.encode_motion(batch["motion"], batch["length"])
                    names = list(config.classes) if config.label_false_negatives else []
                    loss = contrastive_loss(t, m, _same_mask(batch, names), config.temperature)
                else:
                    logits = model.classify(batch["motion"], batch["length"])
                    losses = []
                    for lname, lg in logits.items():
                        tgt = _targets(batch, lname, config.classes[lname])
                        if (tgt >= 0).any():
                            losses.append(F.cross_entropy(lg, tgt, ignore_index=-100,
                                                          label_smoothing=config.label_smoothing))
                    loss = torch.stack(losses).sum()
                opt.zero_grad(set_to_none=True)
                loss.backward()
                if config.grad_clip > 0:
                    torch.nn.utils.clip_grad_norm_(params, config.grad_clip)
                opt.step()
                sched.step()
                total += loss.item() * len(batch["length"])
                count += len(batch["length"])
                bar.set_postfix(loss=f"{loss.item():.3f}")
            epoch += 1
            val = (validate_embedder(model, val_layout, config.val_repeats) if name == "embedder"
                   else validate_classifiers(model, val_layout, config.val_repeats))
            row = {"phase": name, "epoch": epoch, "train_loss": total / max(count, 1), **val,
                   "seconds": time.time() - tick}
            history.append(row)
            if writer is not None:
                step = epoch * steps_per_epoch
                writer.add_scalar(f"{name}/train_loss", row["train_loss"], step)
                writer.add_scalar(f"{name}/lr", sched.get_last_lr()[0], step)
                for k, v in val.items():
                    writer.add_scalar(f"{name}/val_{k}", v, step)
            improved = val["score"] > best_score
            if improved:
                best_score = val["score"]
                prefix = "classifiers." if name == "classifiers" else None
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()
                              if (prefix is None and not k.startswith("classifiers.")) or
                              (prefix is not None and k.startswith(prefix))}
                results[name] = {**{k: v for k, v in val.items()}, "epoch": epoch}
            log(f"{name} epoch {epoch}/{epochs} ({row['seconds']:.0f} s): loss {row['train_loss']:.4f}, "
                + ", ".join(f"val {k} {v:.3f}" for k, v in val.items()) + (" *" if improved else ""))
            atomic_torch_save({
                "config": json.dumps(config.to_dict()), "phase_index": phase_index, "epoch": epoch,
                "model": model.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                "best_score": best_score, "best_state": best_state or {}, "results": json.dumps(results),
                "history": json.dumps(history), "torch_rng": torch.get_rng_state(),
                "seconds": time.time() - start + elapsed_before,
            }, ckpt_path, mode=None)  # mode=None: the checkpoint stays 0600, as it always was
        # End of a phase: keep the selected epoch's weights of this phase.
        if best_state:
            model.load_state_dict(best_state, strict=False)
        phase_index, epoch = phase_index + 1, 0
        best_score, best_state = -math.inf, None
        atomic_torch_save({
            "config": json.dumps(config.to_dict()), "phase_index": phase_index, "epoch": 0,
            "model": model.state_dict(), "optimizer": {}, "scheduler": {}, "best_score": best_score,
            "best_state": {}, "results": json.dumps(results), "history": json.dumps(history),
            "torch_rng": torch.get_rng_state(), "seconds": time.time() - start + elapsed_before,
        }, ckpt_path, mode=None)
    if writer is not None:
        writer.close()

    seconds = time.time() - start + elapsed_before
    results["seconds"] = seconds
    model.eval()
    params = sum(p.numel() for p in model.parameters())
    card = model_card(config, results, command=command, data_hash=data_hash, seconds=seconds, params=params)
    model.save_pretrained(out_dir, card=card)
    (work / "history.json").write_text(json.dumps(history, indent=1) + "\n")
    log(f"saved the evaluator to {out_dir} ({params:,} parameters, {seconds / 60:.1f} min)")
    return results
