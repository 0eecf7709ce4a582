"""Training loop of the part-level retriever with HBM learning (docs/design.md §4.4, §4.5).

``train_retriever(config, out_dir)``: seeded, resumable (``<out>/checkpoint.pt``, written every
``checkpoint_every`` steps and at each epoch end), tqdm progress, TensorBoard logs (``<out>/tb``), retrieval
metrics on the validation split after every epoch, and the best model by ``select_metric`` on that split
saved as a model folder ``<out>/model`` (``config.json``, ``model.safetensors``, ``README.md``). Test
splits are never looked at (remomask decision: selection on val only).

Under ``torchrun`` (``WORLD_SIZE > 1``) it runs DDP: NCCL on GPUs, gloo on CPUs; each process reads its
shard of a seeded per-epoch permutation, the queues receive the keys of all processes, and only rank 0
evaluates, logs and writes files::

    torchrun --standalone --nproc_per_node 2 -m remomask.cli train retriever --preset cpu --out runs/retriever_cpu
"""

from __future__ import annotations

import copy
import json
import logging
import math
import os
import random
import time
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

from .._training import atomic_torch_save, setup_distributed
from .config import RetrieverConfig
from .encode import encode_split, load_records
from .evaluate import rsum
from .hbm import BatchMeta, HBMLoss, direction_code, momentum_update
from .metrics import retrieval_metrics
from .model import PartRetriever, model_card
from ..errors import TrainingError
from ..files import atomic_write_text

__all__ = ["train_retriever", "train_step", "TrainingError"]

CHECKPOINT = "checkpoint.pt"

logger = logging.getLogger(__name__)


def _report(message: str) -> None:
    """A progress line of rank 0: to this module's logger (INFO) and to stdout through ``tqdm.write``,
    which keeps the progress bar intact (the tokenizer and generation trainers report with ``bar.write``)."""
    from tqdm.auto import tqdm

    logger.info(message)
    tqdm.write(message)


# -- distributed helpers -------------------------------------------------------------------------------
def _barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


class _EpochSampler(torch.utils.data.Sampler):
    """Seeded per-epoch batches, sharded over ranks, from batch ``start`` on.

    Every epoch draws a permutation from ``(seed, epoch)``. With ``lengths`` given (length bucketing), the
    permutation is cut into chunks of 50 global batches, each chunk is sorted by sample length and cut into
    global batches, and the batch order is shuffled: batches hold samples of similar lengths, so little
    padding is computed. Each rank takes its slice of every global batch; incomplete batches are dropped.

    With ``probabilities`` (per-action balancing, :mod:`remomask.data.balance`) the epoch is ``n`` draws
    with replacement from those per-sample probabilities, seeded the same way, instead of a permutation.
    """

    def __init__(self, n: int, batch_size: int, rank: int, world: int, seed: int,
                 lengths: list[int] | None = None, probabilities=None) -> None:
        self.n, self.batch_size, self.rank, self.world, self.seed = n, batch_size, rank, world, seed
        self.lengths = None if lengths is None else torch.as_tensor(lengths)
        self.probabilities = None if probabilities is None else torch.as_tensor(probabilities, dtype=torch.float64)
        self.epoch, self.start = 0, 0

    def steps_per_epoch(self) -> int:
        return self.n // (self.batch_size * self.world)

    def batches(self) -> torch.Tensor:
        """(steps, batch_size) sample indices of this rank for the current epoch."""
        g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        if self.probabilities is None:
            perm = torch.randperm(self.n, generator=g)
        else:
            perm = torch.multinomial(self.probabilities, self.n, replacement=True, generator=g)
        steps, glob = self.steps_per_epoch(), self.batch_size * self.world
        perm = perm[: steps * glob]
        if self.lengths is not None:
            chunk = 50 * glob
            parts = [p[torch.argsort(self.lengths[p], stable=True)] for p in perm.split(chunk)]
            perm = torch.cat(parts).view(steps, glob)[torch.randperm(steps, generator=g)].flatten()
        return perm.view(steps, self.world, self.batch_size)[:, self.rank]

    def __iter__(self):
        mine = self.batches()
        for step in range(self.start, len(mine)):
            yield mine[step].tolist()

    def __len__(self) -> int:
        return self.steps_per_epoch() - self.start


def _balance_probabilities(records, alpha):
    """Per-sample draw probabilities for ``balance_alpha`` (None at 1: the unbalanced permutation)."""
    from ..data.balance import balanced_probabilities, check_alpha

    if check_alpha(alpha) == 1.0:
        return None
    return balanced_probabilities([r.labels.get("action") for r in records], alpha)


# -- the loop ------------------------------------------------------------------------------------------
def _optimizer(model: PartRetriever, c: RetrieverConfig) -> torch.optim.Optimizer:
    groups = [
        {"params": list(model.motion_encoder.parameters()) + list(model.part_heads.parameters()), "lr": c.lr_motion},
        {"params": list(model.text_transformer.parameters()), "lr": c.lr_text},
        {"params": list(model.motion_head.parameters()) + list(model.text_head.parameters()), "lr": c.lr_heads},
    ]
    return torch.optim.Adam([g for g in groups if g["params"]], weight_decay=c.weight_decay, foreach=True)


def _cosine(total_steps: int, factor: float):
    t_max = max(1.0, factor * total_steps)  # docs/design.md §4.5: CosineAnnealingLR with T_max = 2 x total steps
    return lambda step: 0.5 * (1.0 + math.cos(math.pi * min(step, t_max) / t_max))


def _seed_all(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _meta(batch: dict, sentence: torch.Tensor, device, directions: bool = False) -> BatchMeta:
    from ..text import caption_key

    return BatchMeta(torch.tensor([caption_key(c) for c in batch["caption"]], device=device),
                     torch.tensor([caption_key("sample:" + k) for k in batch["key"]], device=device),
                     sentence,
                     torch.tensor([direction_code(c) for c in batch["caption"]], device=device)
                     if directions else None)


def _validate(model: PartRetriever, val_records) -> dict:
    emb = encode_split(model, records=val_records)
    metrics = retrieval_metrics(emb.text, emb.motion, emb.captions, emb.labels)
    metrics["rsum"] = rsum(metrics)
    return metrics


def _score(metrics: dict, name: str) -> float:
    if name == "rsum":
        return metrics["rsum"]
    direction, key = name.split("_", 1)
    return float(metrics[direction][key])


def train_step(ddp, model: PartRetriever, momentum: PartRetriever | None, hbm: HBMLoss, optimizer, scheduler,
               text_encoder, batch: dict, c: RetrieverConfig, device) -> dict:
    """One optimisation step on a collated retriever batch (docs/design.md §4.4); returns the loss statistics.

    ``ddp`` is the model to run forward (the DDP wrapper, or ``model`` itself); ``momentum`` is the
    momentum copy (None with the queue off). The momentum update runs before the keys are computed.
    """
    lengths = batch["length"].to(device)
    motion = batch["motion"][:, : int(lengths.max())].to(device)  # trim padding beyond the longest
    tokens, tmask, sentence = text_encoder.encode(batch["caption"], device=device)
    meta = _meta(batch, sentence, device, directions=c.filter_direction_guard)
    online = ddp(motion, lengths, tokens, tmask)
    keys = None
    if momentum is not None:
        momentum_update(model, momentum, c.momentum)
        with torch.no_grad():
            keys = momentum(motion, lengths, tokens, tmask)
    loss, stats = hbm(online, keys, meta)
    if math.isfinite(stats["loss"]):
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if c.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), c.grad_clip)
        optimizer.step()
        scheduler.step()
    return stats


def train_retriever(config: RetrieverConfig, out_dir: str | os.PathLike, *, resume: bool = True,
                    max_steps: int | None = None, max_train_samples: int | None = None,
                    max_val_samples: int | None = None, progress: bool = True) -> Path:
    """Train a retriever; returns the best model folder ``<out_dir>/model``.

    Args:
        config: the settings (see :class:`RetrieverConfig`; presets ``cpu``/``paper``).
        out_dir: run folder: ``checkpoint.pt``, ``history.json``, ``tb/`` and ``model/``.
        resume: continue from ``<out_dir>/checkpoint.pt`` when present (its config must match, except for
            ``epochs``, which may be raised).
        max_steps: stop after this many optimisation steps in total (smoke tests); the run is then
            validated and saved as if an epoch had ended.
        max_train_samples, max_val_samples: use only the first N samples of each split (quick runs).
        progress: tqdm bar on rank 0.

    Raises:
        TrainingError: unreadable checkpoint, a checkpoint from another config, or fewer training samples
            than one global batch.
        DatasetError / TextEncoderError: from the data or text layers.
    """
    from tqdm.auto import tqdm

    from ..data.datasets import TextMotionDataset, collate
    from ..data.embedded import resolve_dataset
    from ..text import load_text_encoder

    c = config
    out = Path(out_dir)
    rank, world, device = setup_distributed("cuda" if torch.cuda.is_available() else "cpu")
    main = rank == 0
    if main:
        out.mkdir(parents=True, exist_ok=True)
        root = resolve_dataset(c.dataset)  # materialises the embedded dataset once
    _barrier()
    root = resolve_dataset(c.dataset, progress=False)
    _seed_all(c.seed)  # the same on every rank: identical initial weights for the model and its momentum copy

    train_ds = TextMotionDataset(root, c.train_split, mode="retriever", train=True,
                                 max_motion_length=c.max_motion_length)
    if max_train_samples:
        train_ds.records = train_ds.records[:max_train_samples]
    val_records = load_records(str(root), c.val_split)[0] if main else None
    if main and max_val_samples:
        val_records = val_records[:max_val_samples]
    sampler = _EpochSampler(len(train_ds), c.batch_size, rank, world, c.seed,
                            [r.length for r in train_ds.records] if c.length_bucketing else None,
                            _balance_probabilities(train_ds.records, c.balance_alpha))
    steps_per_epoch = sampler.steps_per_epoch()
    if steps_per_epoch < 1:
        raise TrainingError(f"{len(train_ds)} training samples are fewer than one global batch "
                            f"({c.batch_size} x {world} processes); lower batch_size")

    text_encoder = load_text_encoder(c.text_encoder, clip_weights=c.clip_weights, device=device)
    model = PartRetriever(c, mean=train_ds.mean, std=train_ds.std).to(device)
    momentum = copy.deepcopy(model).eval().requires_grad_(False) if c.use_queue else None
    model.attach_text_encoder(text_encoder)  # after the copy: the frozen encoder is shared, not copied
    hbm = HBMLoss(c, caption_dim=text_encoder.dim).to(device)
    optimizer = _optimizer(model, c)
    total_steps = steps_per_epoch * c.epochs
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _cosine(total_steps, c.cosine_factor))

    epoch, step_in_epoch, global_step, best, history = 0, 0, 0, -float("inf"), []
    ckpt_path = out / CHECKPOINT
    if resume and ckpt_path.is_file():
        try:
            ckpt = torch.load(ckpt_path, map_location=device, weights_only=True)
        except Exception as exc:  # noqa: BLE001 - any unpickling failure is one clear error
            raise TrainingError(f"{ckpt_path} is unreadable ({exc}); delete it or pass --no-resume") from exc
        saved = dict(ckpt["config"])
        mine = c.to_dict()
        diff = sorted(k for k in mine if k not in ("epochs", "preset", "num_workers", "log_every",
                                                    "checkpoint_every") and saved.get(k) != mine[k])
        if diff:
            raise TrainingError(f"{ckpt_path} was made with a different config ({', '.join(diff)}); use the same "
                                "config, another --out folder, or --no-resume")
        model.load_state_dict(ckpt["model"])
        if momentum is not None:
            momentum.load_state_dict(ckpt["momentum"])
        hbm.load_state_dict(ckpt["hbm"])
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _cosine(total_steps, c.cosine_factor))
        scheduler.load_state_dict(ckpt["scheduler"])
        epoch, step_in_epoch, global_step = ckpt["epoch"], ckpt["step_in_epoch"], ckpt["global_step"]
        best, history = ckpt["best"], json.loads(ckpt["history"])
        if main:
            _report(f"resumed from {ckpt_path}: epoch {epoch}, step {global_step}")

    ddp = model
    if world > 1:
        # Without the part loss the part heads get no gradient; DDP must be told.
        ddp = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None,
            find_unused_parameters=not c.part_loss)

    writer = None
    if main:
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(str(out / "tb"))
        c.save(out / "config.json")

    def checkpoint(next_epoch: int, next_step: int) -> None:
        if not main:
            return
        atomic_torch_save({
            "config": c.to_dict(), "model": model.state_dict(),
            "momentum": momentum.state_dict() if momentum is not None else {},
            "hbm": hbm.state_dict(), "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
            "epoch": next_epoch, "step_in_epoch": next_step, "global_step": global_step, "best": best,
            "history": json.dumps(history),
        }, ckpt_path)

    def end_of_epoch(ep: int, seconds: float, samples: int) -> None:
        nonlocal best
        if main:
            metrics = _validate(model, val_records)
            score = _score(metrics, c.select_metric)
            entry = {"epoch": ep + 1, "step": global_step, "val": metrics, "score": score,
                     "samples_per_s": samples / max(seconds, 1e-9)}
            history.append(entry)
            if writer is not None:
                for d in ("t2m", "m2t"):
                    for k, v in metrics[d].items():
                        writer.add_scalar(f"val/{d}_{k}", v, global_step)
                writer.add_scalar("val/rsum", metrics["rsum"], global_step)
                writer.add_scalar("train/samples_per_s", entry["samples_per_s"], global_step)
            _report(f"epoch {ep + 1}: val t2m R@1 {metrics['t2m']['R@1']:.2f} R@5 {metrics['t2m']['R@5']:.2f} "
                  f"m2t R@1 {metrics['m2t']['R@1']:.2f} rsum {metrics['rsum']:.1f} "
                  f"({entry['samples_per_s']:.1f} samples/s)")
            if score > best:
                best = score
                card_metrics = {f"val {d} {k}": v for d in ("t2m", "m2t") for k, v in metrics[d].items()}
                training = {"epoch": ep + 1, "steps": global_step, "processes": world,
                            "global batch": c.batch_size * world, "device": device.type}
                model.save_pretrained(out / "model", card=model_card(model, training=training, metrics=card_metrics))
            atomic_write_text(out / "history.json", json.dumps(history, indent=2) + "\n")
        _barrier()

    stop = False
    while epoch < c.epochs and not stop:
        sampler.epoch, sampler.start = epoch, step_in_epoch
        torch.manual_seed(c.seed * 7919 + epoch * 101 + step_in_epoch * 13 + rank)  # item crops/captions
        loader = torch.utils.data.DataLoader(train_ds, batch_sampler=sampler, collate_fn=collate,
                                             num_workers=c.num_workers)
        model.train()
        bar = tqdm(loader, desc=f"epoch {epoch + 1}/{c.epochs}", disable=not (main and progress),
                   initial=step_in_epoch, total=steps_per_epoch)
        t0, seen = time.perf_counter(), 0
        for batch in bar:
            stats = train_step(ddp, model, momentum, hbm, optimizer, scheduler, text_encoder, batch, c, device)
            if not math.isfinite(stats["loss"]):
                raise TrainingError(f"loss became {stats['loss']} at step {global_step}; lower the learning rates")
            global_step += 1
            step_in_epoch += 1
            seen += len(batch["length"]) * world
            if main:
                bar.set_postfix(loss=f"{stats['loss']:.3f}", acc=f"{stats['acc_t2m']:.2f}")
                if writer is not None and global_step % c.log_every == 0:
                    for k, v in stats.items():
                        writer.add_scalar(f"train/{k}", v, global_step)
                    writer.add_scalar("train/lr_motion", optimizer.param_groups[0]["lr"], global_step)
            if c.checkpoint_every and global_step % c.checkpoint_every == 0 and step_in_epoch < steps_per_epoch:
                checkpoint(epoch, step_in_epoch)
            if max_steps is not None and global_step >= max_steps:
                stop = True
                break
        bar.close()
        end_of_epoch(epoch, time.perf_counter() - t0, seen)
        if step_in_epoch >= steps_per_epoch:
            epoch, step_in_epoch = epoch + 1, 0
        checkpoint(epoch, step_in_epoch)
    if writer is not None:
        writer.close()
    if main and not (out / "model" / "model.safetensors").is_file():
        model.save_pretrained(out / "model")
    _barrier()
    return out / "model"
