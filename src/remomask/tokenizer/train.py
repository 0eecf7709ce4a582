"""Training of the motion tokenizer (docs/design.md §3.4), single process or DDP under ``torchrun``.

Loss per reconstruction x_hat of a normalised window x (docs/design.md §3.4)::

    SmoothL1(x_hat, x) + 0.5 * SmoothL1(x_hat[ric], x[ric]) + 0.02 * commitment

With the dual branch the fused, 1D and 2D reconstructions each get the first two terms (the reference's
loss1 + loss2 + loss, with the full 263-d target for the 2D branch because our root row carries root
and contacts) and the commitment term is 0.02 * 1.5 * (commit_1d + commit_2d), as the reference sums it.

Schedule: AdamW (0.9, 0.99), linear warm-up ``lr * (it + 1) / (warmup + 1)``, then a step decay by
``gamma`` at each milestone. Model selection: the full-depth MPJPE on the ``val`` split, evaluated every
``eval_every`` iterations; the best model is written to ``<out>/model`` (never chosen on ``test``).
``<out>/checkpoint.pt`` holds everything needed to resume (weights, codebooks, optimiser, step, best
score; batches and sampling noise are seeded from the step); a restarted run with the same ``out`` continues from it. TensorBoard logs go to ``<out>/tb``.

DDP: run with ``torchrun --nproc_per_node N -m remomask.cli train tokenizer ...``; each process draws
its own batches, gradients are averaged by DDP, codebook statistics by the quantiser (see
``quantizer.py``), and only rank 0 evaluates, logs and writes files.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .. import _training
from ..data.features import feature_layout
from .config import TokenizerConfig

__all__ = ["TrainConfig", "TRAIN_PRESETS", "tokenizer_stats", "tokenizer_loss", "learning_rate", "train_tokenizer",
           "training_windows", "window_probabilities"]


@dataclass
class TrainConfig:
    """Options of :func:`train_tokenizer`.

    Attributes:
        dataset: ``"embedded"`` or a HumanML3D-layout folder. out: run folder (checkpoint, tb, model).
        preset: model preset (``cpu`` / ``paper``); model_overrides: TokenizerConfig fields to change.
        branches: ``["1d", "2d"]`` (default) or ``["2d"]``.
        iterations, batch_size (per process), lr, warmup (iterations), milestones (iterations), gamma,
        weight_decay: optimisation (docs/design.md §3.4).
        pos_weight (0.5), commit_weight (0.02): loss weights.
        seed: seeds model init, batches (per rank) and sampling.
        eval_every, log_every, checkpoint_every: iterations. val_split: model-selection split.
        val_max_clips: evaluate on at most this many val clips (None = all).
        short_clips: ``"hold"`` (default): clips shorter than the window give one window each, extended
            with holds of their first and last pose; ``"drop"``: skipped (the reference; docs/data.md
            "Every action learned").
        balance_alpha: windows are drawn so that each action's share is proportional to its window count
            to the power alpha (1 = uniform over windows, the default; 0 = every action equally often;
            :mod:`remomask.data.balance`).
        device: ``cpu`` / ``cuda``. threads: torch CPU threads per process (None = torch's default; 1
            is much faster than 2 on a CPU shared with other jobs). resume: continue from ``<out>/checkpoint.pt`` if present.
        progress: tqdm bar on rank 0. command: the command line, for the model card.
    """

    dataset: str = "embedded"
    out: str = "runs/tokenizer_cpu"
    preset: str = "cpu"
    branches: tuple[str, ...] = ("1d", "2d")
    model_overrides: dict = field(default_factory=dict)
    iterations: int = 5000
    batch_size: int = 64
    lr: float = 2e-4
    warmup: int = 2000
    milestones: tuple[int, ...] = (150_000, 250_000)
    gamma: float = 0.1
    weight_decay: float = 0.0
    pos_weight: float = 0.5
    commit_weight: float = 0.02
    seed: int = 3407
    eval_every: int = 500
    log_every: int = 25
    checkpoint_every: int = 250
    val_split: str = "val"
    val_max_clips: int | None = None
    short_clips: str = "hold"
    balance_alpha: float = 1.0
    device: str = "cpu"
    threads: int | None = None
    resume: bool = True
    progress: bool = True
    command: str = ""

    @classmethod
    def preset_defaults(cls, preset: str, **overrides) -> "TrainConfig":
        """Defaults of a named preset (see :data:`TRAIN_PRESETS`) with overrides; None values are ignored."""
        if preset not in TRAIN_PRESETS:
            raise ValueError(f"unknown tokenizer preset {preset!r}; choose one of {sorted(TRAIN_PRESETS)}")
        values = dict(TRAIN_PRESETS[preset], preset=preset)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


TRAIN_PRESETS: dict[str, dict] = {
    # The README run of the reference code (docs/design.md §3.4): batch 256, warm-up 2k, milestones 150k/250k.
    "paper": dict(iterations=300_000, batch_size=256, lr=2e-4, warmup=2000, milestones=(150_000, 250_000),
                  eval_every=5000, checkpoint_every=1000),
    # About an hour on an idle 2-core CPU (benchmarks/bench_tokenizer.py measures it/s); with so few
    # steps a higher learning rate and an earlier decay pay off.
    "cpu": dict(iterations=6000, batch_size=32, lr=4e-4, warmup=300, milestones=(4500, 5500),
                eval_every=500, checkpoint_every=250),
}


def tokenizer_stats(mean: np.ndarray, std: np.ndarray, feat_bias: float = 5.0) -> tuple[np.ndarray, np.ndarray]:
    """The tokenizer's statistics from a dataset's Mean/Std (docs/design.md §2.3, decision for 15.3).

    The std of the root dims (0:4) and foot contacts (last 4) is divided by ``feat_bias`` once (not
    twice, as the reference's in-place edit does). Returns new (D,) float32 arrays.
    """
    mean = np.asarray(mean, dtype=np.float32).copy()
    std = np.asarray(std, dtype=np.float32).copy()
    std[0:4] /= feat_bias
    std[-4:] /= feat_bias
    return mean, std


def tokenizer_loss(out, target: torch.Tensor, ric: slice, pos_weight: float = 0.5,
                   commit_weight: float = 0.02) -> tuple[torch.Tensor, dict]:
    """docs/design.md §3.4 loss of a :class:`~remomask.tokenizer.model.TokenizerOutput` against (B, T, D) target.

    Returns ``(loss, parts)`` with float parts ``recon``, ``pos``, ``commit`` for logging.
    """
    recons = [out.motion] + [out.branch_motion[k] for k in sorted(out.branch_motion)]
    recon = sum(F.smooth_l1_loss(r, target) for r in recons)
    pos = sum(F.smooth_l1_loss(r[..., ric], target[..., ric]) for r in recons)
    commit = out.commit * (3.0 if out.branch_motion else 1.0)  # 0.02 * 1.5 * (c1 + c2) with two branches
    loss = recon + pos_weight * pos + commit_weight * commit
    return loss, {"recon": recon.item(), "pos": pos.item(), "commit": out.commit.item()}


def learning_rate(cfg: TrainConfig, it: int) -> float:
    """Learning rate at iteration ``it`` (0-based): linear warm-up, then multi-step decay (docs/design.md §3.4)."""
    return _training.warmup_step_lr(cfg.lr, cfg.warmup, cfg.gamma, cfg.milestones, it)


def training_windows(layout, mean, std, window_size: int, short_clips: str = "hold"):
    """The tokenizer's training set: a :class:`~remomask.data.datasets.MotionWindowDataset` of ``layout``.

    Args:
        layout: :class:`~remomask.data.layout.MotionLayout` of the train split loaded without a minimum
            length (``min_length=0, max_length=None, require_captions=False, subclips=False``).
        mean, std: (D,) tokenizer statistics (docs/design.md §2.3). window_size: frames (64).
        short_clips: ``"hold"`` or ``"drop"`` (:class:`TrainConfig`).

    Raises:
        DatasetError: no usable clip. ValueError: a bad policy.
    """
    from ..data.datasets import MotionWindowDataset

    return MotionWindowDataset(layout, layout.split, mean, std, window_size=window_size, short_clips=short_clips)


def window_probabilities(dataset, balance_alpha: float) -> np.ndarray | None:
    """Per-window draw probabilities balancing the clips' ``action`` labels (None for ``balance_alpha`` 1).

    Returns:
        None (uniform, the unbalanced draw) or (len(dataset),) float64 probabilities
        (:func:`remomask.data.balance.balanced_probabilities` over the windows' actions).

    Raises:
        ValueError: ``balance_alpha`` outside [0, 1].
    """
    from ..data.balance import balanced_probabilities, check_alpha

    if check_alpha(balance_alpha) == 1.0:
        return None
    actions = [r.labels.get("action") for r in dataset.records]
    per_window = dataset.window_records()
    return balanced_probabilities([actions[i] for i in per_window], balance_alpha)


def _batch(dataset, cfg: TrainConfig, rank: int, step: int, probabilities=None) -> torch.Tensor:
    # Batch indices depend only on (seed, rank, step): a resumed run draws exactly the same batches.
    g = torch.Generator().manual_seed(cfg.seed * 1_000_003 + rank * 7919 + step)
    if probabilities is None:
        idx = torch.randint(len(dataset), (cfg.batch_size,), generator=g).tolist()
    else:
        idx = torch.multinomial(probabilities, cfg.batch_size, replacement=True, generator=g).tolist()
    return torch.stack([dataset[i]["motion"] for i in idx])


def train_tokenizer(cfg: TrainConfig) -> Path:
    """Train (or resume) a tokenizer; returns the selected model folder ``<out>/model``.

    Raises:
        ValueError: bad options. DatasetError (from ``remomask.data``): dataset problems.
    """
    from tqdm.auto import tqdm

    from ..data.embedded import resolve_dataset
    from ..data.layout import MotionLayout
    from .evaluate import evaluate_model
    from .model import MotionTokenizer

    if cfg.iterations < 1 or cfg.batch_size < 1:
        raise ValueError(f"iterations ({cfg.iterations}) and batch_size ({cfg.batch_size}) must be >= 1")
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    rank, world, device = _training.setup_distributed(cfg.device)
    out = Path(cfg.out)
    root = resolve_dataset(cfg.dataset, progress=rank == 0) if rank == 0 else None
    root = _training.share_path(root, world)
    model_cfg = TokenizerConfig.preset(cfg.preset, branches=tuple(cfg.branches), **cfg.model_overrides)
    train_layout = MotionLayout(root, "train", min_length=0 if cfg.short_clips == "hold" else model_cfg.window_size,
                                max_length=None, require_captions=False, subclips=False, progress=False)
    if train_layout.mean is None:
        raise ValueError(f"{root} has no Mean.npy/Std.npy to build the tokenizer statistics from")
    if train_layout.mean.shape[0] != model_cfg.feature_dim:
        model_cfg = dataclasses.replace(model_cfg, feature_dim=int(train_layout.mean.shape[0]))
    mean, std = tokenizer_stats(train_layout.mean, train_layout.std, model_cfg.feat_bias)
    data = training_windows(train_layout, mean, std, model_cfg.window_size, cfg.short_clips)
    probs = window_probabilities(data, cfg.balance_alpha)
    probs = None if probs is None else torch.from_numpy(probs)
    val_records = None
    if rank == 0:
        val_layout = MotionLayout(root, cfg.val_split, min_length=0, max_length=None, require_captions=False,
                                  subclips=False, progress=False)
        val_records = list(val_layout)[: cfg.val_max_clips]

    torch.manual_seed(cfg.seed)
    model = MotionTokenizer(model_cfg, mean, std).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, betas=(0.9, 0.99), weight_decay=cfg.weight_decay)
    step, best, best_step = 0, math.inf, -1
    ckpt_path = out / "checkpoint.pt"
    if cfg.resume and ckpt_path.is_file():
        ckpt = torch.load(ckpt_path, map_location=device, weights_only=True)
        if ckpt["model_config"] != model_cfg.to_dict():
            raise ValueError(f"{ckpt_path} was written for another model config; use a new --out or --no-resume")
        step, best, best_step = _training.restore_checkpoint(ckpt, model, opt)
    torch.manual_seed(cfg.seed + 100_003 * rank + step)  # sampling noise differs per rank and per resume point
    net = _training.wrap_ddp(model, world, device)
    writer = _training.open_run_folder(out, cfg) if rank == 0 else None
    ric = feature_layout("humanml3d" if model_cfg.feature_dim == 263 else "kit").ric

    def save_checkpoint() -> None:
        if rank != 0:
            return
        _training.atomic_torch_save({
            "model": model.state_dict(), "optimizer": opt.state_dict(), "step": step, "best": best,
            "best_step": best_step, "model_config": model_cfg.to_dict(),
            "train_config": _training.config_record(cfg),
        }, ckpt_path)

    def card(metrics: dict) -> dict:
        return {"dataset": f"{cfg.dataset} (`{Path(root).name}`), split `train`, {len(data)} windows of "
                           f"{model_cfg.window_size} frames", "command": cfg.command, "iterations": cfg.iterations,
                "batch_size": cfg.batch_size * world, "seed": cfg.seed, "selected_step": step,
                "metrics": {cfg.val_split: metrics}}

    def validate() -> None:  # rank 0: score the val split, keep the best model
        nonlocal best, best_step
        model.eval()
        metrics = evaluate_model(model, val_records, depths=[model_cfg.num_quantizers],
                                 batch_size=32, progress=False)
        model.train()
        score = metrics["mpjpe_mm"][str(model_cfg.num_quantizers)]
        writer.add_scalar("val/mpjpe_mm", score, step)
        writer.add_scalar("val/root_error_5s_m", metrics["root_error_5s_m"], step)
        writer.add_scalar("val/foot_contact_accuracy", metrics["foot_contact_accuracy"], step)
        bar.write(f"step {step}: val MPJPE {score:.1f} mm, root error at 5 s "
                  f"{metrics['root_error_5s_m']:.3f} m, contacts {metrics['foot_contact_accuracy']:.3f}")
        if score < best:
            best, best_step = score, step
            summary = {k: metrics[k] for k in ("mpjpe_mm", "root_error_5s_m", "foot_contact_accuracy")}
            model.save_pretrained(out / "model", card=card(summary))

    bar = tqdm(total=cfg.iterations, initial=step, desc="tokenizer", disable=not (cfg.progress and rank == 0),
               dynamic_ncols=True)
    model.train()
    t0, seen = time.time(), 0
    while step < cfg.iterations:
        for group in opt.param_groups:
            group["lr"] = learning_rate(cfg, step)
        x = _batch(data, cfg, rank, step, probs).to(device)
        result = net(x)
        loss, parts = tokenizer_loss(result, x, ric, cfg.pos_weight, cfg.commit_weight)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        seen += 1
        bar.update(1)
        if rank == 0 and (step % cfg.log_every == 0 or step == cfg.iterations):
            bar.set_postfix(loss=f"{loss.item():.4f}", ppl=f"{result.perplexity.item():.0f}")
            writer.add_scalar("train/loss", loss.item(), step)
            for k, v in parts.items():
                writer.add_scalar(f"train/{k}", v, step)
            writer.add_scalar("train/perplexity", result.perplexity.item(), step)
            writer.add_scalar("train/lr", opt.param_groups[0]["lr"], step)
            writer.add_scalar("train/it_per_s", seen / max(time.time() - t0, 1e-9), step)
        _training.validate_and_checkpoint(step, cfg, rank, world, validate, save_checkpoint)
    _training.close_run(bar, writer, world)
    return out / "model"
