"""Decoder refinement of a trained tokenizer: better reconstructions, the same token ids (docs/design.md §3.5).

The encoders and codebooks of a trained :class:`~remomask.tokenizer.model.MotionTokenizer` stay frozen, so
:meth:`~remomask.tokenizer.model.MotionTokenizer.encode` returns exactly the ids it returned before, and every
model trained on those ids (masked and residual transformers, the retrieval database's token grids, the
captioner) stays valid. Only the parts after the codebooks train: the 2D branch's ``merge`` and ``decoder``,
the 1D branch's ``decoder_1d`` and the ``fuse`` layer. They learn from the nearest-code ids at full depth
(what generation decodes), on long windows, with a loss on the recovered joints added to the feature loss::

    SmoothL1(x_hat, x) + pos_weight * SmoothL1(x_hat[ric], x[ric]) + joint_weight * MPJPE_pelvis(x_hat, x)

where ``MPJPE_pelvis`` is :func:`remomask.evaluation.mpjpe.per_frame_error` (metres) on the joints recovered
from the de-normalised features (:func:`remomask.data.features.joints_from_features`). The feature loss alone
never sees the root's yaw as the integral of its angular velocity; the joint term does, and the heading
drift it removes was a third of the tokenizer's pelvis-aligned MPJPE (docs/results.md "Decoder refinement").

Schedule: AdamW (0.9, 0.99), cosine decay from ``lr`` to 0 over ``iterations``. Selection: full-depth MPJPE on
``val`` every ``eval_every`` iterations, starting from the input model's own score at step 0, so the written
model is never worse on ``val`` than the one refined. ``<out>/checkpoint.pt`` resumes an interrupted run;
batches depend only on (seed, step).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from .. import _training

__all__ = ["RefineConfig", "DECODER_MODULES", "decoder_parameters", "frozen_state", "refine_loss",
           "generated_pool", "refine_decoder"]

DECODER_MODULES = ("merge", "decoder", "decoder_1d", "fuse")
"""The submodules that refinement trains (those a model has); everything else is frozen."""


@dataclass
class RefineConfig:
    """Options of :func:`refine_decoder`.

    Attributes:
        tokenizer: the trained tokenizer folder to refine (read only).
        dataset: ``"embedded"`` or a HumanML3D-layout folder. out: run folder (checkpoint, tb, model).
        iterations, batch_size, lr: optimisation (cosine decay to 0, no warm-up).
        window_size: frames per training window (196 = 9.8 s, the longest generated motion; clips shorter
            than it are held at their first and last pose, as in the tokenizer's training).
        joint_weight: weight of the pelvis-aligned joint error (metres). pos_weight: weight of the ``ric`` term.
        balance_alpha: action balancing of the windows (:mod:`remomask.data.balance`; 1 = uniform).
        depth_dropout: probability that a training window is decoded from only its first q quantiser layers
            (q uniform in 1..Q-1), as the quantiser dropout of §3.4 does; keeps the decoder usable on the coarse
            layers that carry a generated motion (docs/design.md §3.5).
        id_noise: probability that each id of the layers after the first is replaced by a uniformly drawn code
            (the residual transformer's ids are samples, not the encoder's exact residuals).
        generated_rate: share of every batch whose layers after the first are the residual transformer's
            samples instead of the encoder's residuals (docs/design.md §3.5, "Decoding generated layers"): the
            decoder then learns to read the fine layers a generated motion really has. Needs ``fine_sampler``
            in :func:`refine_decoder`. generated_pool: windows of the pool those batch entries come from (drawn
            once, with the batches' action balancing). generated_samples: residual samples per pool window.
        seed: seeds the batches. eval_every, checkpoint_every, log_every: iterations. val_split: selection split.
        device: ``cpu`` / ``cuda``. threads: torch CPU threads (None = torch's default). resume: continue from
            ``<out>/checkpoint.pt``.
        generated_from: where the residual samples come from (the pipeline folder; for the card and to check a
            resumed pool). progress: tqdm bar. command: the command line, for the model card.
    """

    tokenizer: str
    dataset: str = "embedded"
    out: str = "runs/tokenizer_refined"
    iterations: int = 3000
    batch_size: int = 32
    lr: float = 1e-4
    window_size: int = 196
    joint_weight: float = 15.0
    pos_weight: float = 0.5
    balance_alpha: float = 0.5
    depth_dropout: float = 0.0
    id_noise: float = 0.0
    generated_rate: float = 0.0
    generated_pool: int = 3000
    generated_samples: int = 2
    generated_from: str = ""
    seed: int = 3407
    eval_every: int = 250
    checkpoint_every: int = 250
    log_every: int = 25
    val_split: str = "val"
    device: str = "cpu"
    threads: int | None = None
    resume: bool = True
    progress: bool = True
    command: str = ""


def decoder_parameters(model) -> list[torch.nn.Parameter]:
    """The parameters refinement trains: those of :data:`DECODER_MODULES` that ``model`` has.

    Args:
        model: a :class:`~remomask.tokenizer.model.MotionTokenizer`.

    Returns:
        A list of parameters (merge, 2D decoder, and with the dual branch the 1D decoder and the fusion).
    """
    params = []
    for name in DECODER_MODULES:
        module = getattr(model, name, None)
        if module is not None:
            params.extend(module.parameters())
    return params


def frozen_state(model) -> dict[str, torch.Tensor]:
    """Copies of every tensor of ``model``'s state outside :data:`DECODER_MODULES` (encoders, codebooks,
    statistics): what decides the token ids. Used to check that refinement left them untouched.

    Returns:
        ``{state_dict key: tensor copy}``.
    """
    prefixes = tuple(f"{name}." for name in DECODER_MODULES)
    return {k: v.detach().clone() for k, v in model.state_dict().items() if not k.startswith(prefixes)}


def refine_loss(model, rec: torch.Tensor, target: torch.Tensor, ric: slice, pos_weight: float = 0.5,
                joint_weight: float = 15.0) -> tuple[torch.Tensor, dict]:
    """The refinement loss (module docstring) of a (B, T, D) normalised reconstruction against its target.

    Args:
        model: the tokenizer (for :meth:`~remomask.tokenizer.model.MotionTokenizer.denormalize`).
        rec, target: (B, T, D) normalised features. ric: the ``ric`` slice of the feature layout.
        pos_weight, joint_weight: term weights (joint error in metres).

    Returns:
        ``(loss, parts)``; parts are floats ``recon``, ``pos`` and ``joint_mm`` (the joint error in mm).

    Raises:
        ValueError: shapes differ.
    """
    from ..data.features import joints_from_features
    from ..evaluation.mpjpe import per_frame_error

    if rec.shape != target.shape:
        raise ValueError(f"reconstruction {tuple(rec.shape)} and target {tuple(target.shape)} differ")
    recon = F.smooth_l1_loss(rec, target)
    pos = F.smooth_l1_loss(rec[..., ric], target[..., ric])
    joint = per_frame_error(joints_from_features(model.denormalize(target)),
                            joints_from_features(model.denormalize(rec))).mean()
    loss = recon + pos_weight * pos + joint_weight * joint
    return loss, {"recon": recon.item(), "pos": pos.item(), "joint_mm": joint.item() * 1000.0}


def _perturb(ids: torch.Tensor, cfg: RefineConfig, g: torch.Generator, model) -> torch.Tensor:
    """Training-time corruption of (B, T', columns, Q) ids: ``depth_dropout`` and ``id_noise`` (RefineConfig)."""
    if cfg.depth_dropout <= 0 and cfg.id_noise <= 0:
        return ids
    ids = ids.clone()
    b, _, cols, q = ids.shape
    real = ids >= 0
    if cfg.id_noise > 0 and q > 1:
        sizes = torch.full((cols,), model.config.num_codes, dtype=torch.long)
        if model.dual:
            sizes[-1] = model.config.num_codes_1d
        draw = (torch.rand(ids.shape, generator=g) * sizes[None, None, :, None]).long().to(ids.device)
        hit = (torch.rand(ids.shape, generator=g) < cfg.id_noise).to(ids.device)
        hit[..., 0] = False
        ids = torch.where(hit & real, draw, ids)
    if cfg.depth_dropout > 0 and q > 1:
        drop = torch.rand(b, generator=g) < cfg.depth_dropout
        keep = torch.randint(1, q, (b,), generator=g)
        layer = torch.arange(q)[None, :]
        cut = (drop[:, None] & (layer >= keep[:, None])).to(ids.device)        # (B, Q)
        ids = ids.masked_fill(cut[:, None, None, :], -1)
    return ids


def generated_pool(data, probs, cfg: RefineConfig, tokenizer, fine_sampler, *, progress: bool = True) -> dict:
    """The pool of training windows with generated fine layers (``RefineConfig.generated_rate``).

    Draws ``cfg.generated_pool`` windows of ``data`` (with the batches' balancing ``probs``, seeded by
    ``cfg.seed``) from clips that have a caption, encodes them with the frozen ``tokenizer`` and asks
    ``fine_sampler`` for ``cfg.generated_samples`` samples of their layers 1..Q-1 given the exact base layer
    and one of the clip's captions.

    Args:
        data: the refinement's :class:`~remomask.data.datasets.MotionWindowDataset`. probs: (len(data),)
            draw probabilities or None (uniform).
        tokenizer: the model being refined (eval mode; its encoder is frozen).
        fine_sampler: ``f(base_ids, texts, generator) -> ids``: (B, n, J') long base ids and B captions in,
            (B, n, J', Q) long ids out (e.g. :func:`remomask.pipeline.refine.residual_sampler`).
        progress: tqdm bar.

    Returns:
        ``{"motion": (P, T, D) float16 normalised windows, "ids": (S, P, n, J', Q) int16, "keys": P clip keys,
        "texts": P captions}``.

    Raises:
        ValueError: no training clip has a caption, or the sampler changed the base layer or the shape.
    """
    from tqdm.auto import tqdm

    g = torch.Generator().manual_seed(cfg.seed * 7_368_787 + 11)
    per_window = data.window_records()
    captioned = torch.tensor([bool(data.records[r].captions) for r in per_window], dtype=torch.bool)
    if not bool(captioned.any()):
        raise ValueError("no training clip has a caption: generated layers need the text")
    weights = (torch.ones(len(data), dtype=torch.float64) if probs is None else probs.double().clone())
    weights[~captioned] = 0.0
    picks = torch.multinomial(weights, cfg.generated_pool, replacement=True, generator=g).tolist()
    state = torch.get_rng_state()
    torch.manual_seed(cfg.seed + 17)  # the random hold of short clips in MotionWindowDataset.__getitem__
    items = [data[i] for i in picks]
    torch.set_rng_state(state)
    texts = []
    for i in picks:
        caps = data.records[int(per_window[i])].captions
        texts.append(caps[int(torch.randint(len(caps), (1,), generator=g))].text)
    motion = torch.stack([it["motion"] for it in items])
    batch, device = 32, next(tokenizer.parameters()).device
    samples = []
    bar = tqdm(total=cfg.generated_samples * len(picks), desc="generated layers", disable=not progress,
               dynamic_ncols=True)
    with torch.no_grad():
        for s in range(cfg.generated_samples):
            chunks = []
            for b in range(0, len(picks), batch):
                x = motion[b: b + batch].to(device)
                exact = tokenizer.encode(x)
                gen = torch.Generator().manual_seed(cfg.seed * 1009 + s * 100_003 + b)
                ids = fine_sampler(exact[..., 0], texts[b: b + batch], gen)
                if ids.shape != exact.shape or not torch.equal(ids[..., 0].cpu(), exact[..., 0].cpu()):
                    raise ValueError("the fine-layer sampler must keep the base layer and the id grid's shape")
                chunks.append(ids.cpu().to(torch.int16))
                bar.update(len(x))
            samples.append(torch.cat(chunks))
    bar.close()
    return {"motion": motion.half(), "ids": torch.stack(samples), "keys": [it["key"] for it in items],
            "texts": texts}


def _cosine_lr(cfg: RefineConfig, step: int) -> float:
    return cfg.lr * 0.5 * (1.0 + math.cos(math.pi * step / cfg.iterations))


def refine_decoder(cfg: RefineConfig, fine_sampler=None) -> Path:
    """Refine (or resume refining) the decoder of ``cfg.tokenizer``; returns the model folder ``<out>/model``.

    The returned folder is a complete tokenizer folder (config, weights, statistics, card) whose
    :meth:`~remomask.tokenizer.model.MotionTokenizer.encode` gives the same ids as the input's.

    Args:
        cfg: the options. fine_sampler: for ``cfg.generated_rate > 0``, the residual sampler of
            :func:`generated_pool` (the pool is kept in ``<out>/generated_pool.pt`` for a resumed run).

    Raises:
        ValueError: bad options (a ``generated_rate`` without a sampler), or a checkpoint of another tokenizer
            in ``out``. FileNotFoundError,
            CheckpointError: the tokenizer folder is missing or corrupt. DatasetError: dataset problems.
        RuntimeError: a frozen tensor changed (a bug; nothing is written then).
    """
    from tqdm.auto import tqdm

    from ..data.balance import check_alpha
    from ..data.embedded import resolve_dataset
    from ..data.features import feature_layout
    from ..data.layout import MotionLayout
    from .evaluate import evaluate_model
    from .model import MotionTokenizer
    from .pretrained import read_config
    from .train import training_windows, window_probabilities

    if cfg.iterations < 1 or cfg.batch_size < 1 or cfg.window_size < 4 or cfg.lr <= 0:
        raise ValueError(f"iterations ({cfg.iterations}), batch_size ({cfg.batch_size}) must be >= 1, window_size "
                         f"({cfg.window_size}) >= 4 and lr ({cfg.lr}) > 0")
    if cfg.joint_weight < 0 or cfg.pos_weight < 0:
        raise ValueError("joint_weight and pos_weight must be >= 0")
    if not (0 <= cfg.depth_dropout <= 1 and 0 <= cfg.id_noise <= 1):
        raise ValueError(f"depth_dropout ({cfg.depth_dropout}) and id_noise ({cfg.id_noise}) must be in [0, 1]")
    if not 0 <= cfg.generated_rate <= 1 or cfg.generated_pool < 1 or cfg.generated_samples < 1:
        raise ValueError(f"generated_rate ({cfg.generated_rate}) must be in [0, 1], generated_pool "
                         f"({cfg.generated_pool}) and generated_samples ({cfg.generated_samples}) >= 1")
    if cfg.generated_rate > 0 and fine_sampler is None:
        raise ValueError("generated_rate > 0 needs a fine-layer sampler (remomask train tokenizer-decoder "
                         "--generated-from PIPELINE)")
    check_alpha(cfg.balance_alpha)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = torch.device(cfg.device)
    model = MotionTokenizer.from_pretrained(cfg.tokenizer).to(device)
    _, source_card = read_config(cfg.tokenizer)
    model.eval()  # no codebook updates, no quantiser dropout: ids are the nearest codes, as in generation
    for p in model.parameters():
        p.requires_grad_(False)
    params = decoder_parameters(model)
    for p in params:
        p.requires_grad_(True)
    frozen = frozen_state(model)

    root = resolve_dataset(cfg.dataset, progress=cfg.progress)
    train_layout = MotionLayout(root, "train", min_length=0, max_length=None, require_captions=False,
                                subclips=False, progress=False)
    data = training_windows(train_layout, model.mean.cpu().numpy(), model.std.cpu().numpy(), cfg.window_size, "hold")
    probs = window_probabilities(data, cfg.balance_alpha)
    probs = None if probs is None else torch.from_numpy(probs)
    val_records = list(MotionLayout(root, cfg.val_split, min_length=0, max_length=None, require_captions=False,
                                    subclips=False, progress=False))
    ric = feature_layout("humanml3d" if model.config.feature_dim == 263 else "kit").ric
    full = str(model.config.num_quantizers)

    opt = torch.optim.AdamW(params, lr=cfg.lr, betas=(0.9, 0.99), weight_decay=0.0)
    out = Path(cfg.out)
    ckpt_path = out / "checkpoint.pt"
    source = str(Path(cfg.tokenizer).resolve())
    step, best, best_step = 0, math.inf, -1
    if cfg.resume and ckpt_path.is_file():
        ckpt = torch.load(ckpt_path, map_location=device, weights_only=True)
        if ckpt.get("source") != source or ckpt.get("model_config") != model.config.to_dict():
            raise ValueError(f"{ckpt_path} refines another tokenizer; use a new --out or --no-resume")
        step, best, best_step = _training.restore_checkpoint(ckpt, model, opt)
    writer = _training.open_run_folder(out, cfg)
    pool, n_gen = None, int(round(cfg.batch_size * cfg.generated_rate))
    if n_gen:
        pool_path = out / "generated_pool.pt"
        want = {"generated_from": cfg.generated_from, "pool": cfg.generated_pool, "samples": cfg.generated_samples,
                "seed": cfg.seed, "source": source, "window_size": cfg.window_size}
        if pool_path.is_file():
            pool = torch.load(pool_path, weights_only=False)
            if pool.get("made_with") != want:
                pool = None
        if pool is None:
            pool = generated_pool(data, probs, cfg, model, fine_sampler, progress=cfg.progress)
            pool["made_with"] = want
            _training.atomic_torch_save(pool, pool_path)

    def save_checkpoint() -> None:
        _training.atomic_torch_save({
            "model": model.state_dict(), "optimizer": opt.state_dict(), "step": step, "best": best,
            "best_step": best_step, "model_config": model.config.to_dict(), "source": source,
            "train_config": _training.config_record(cfg)}, ckpt_path)

    def card(metrics: dict) -> dict:
        base = dict(source_card)
        notes = (f"Decoder refined (docs/design.md §3.5) from `{cfg.tokenizer}` for {cfg.iterations} iterations "
                 f"(selected at step {step}): encoders and codebooks frozen, so the token ids equal the "
                 f"source's. Refinement command: `{cfg.command}`. The source's training command is above.")
        base.update({"metrics": {cfg.val_split: metrics},
                     "notes": (str(base["notes"]) + "\n\n" if base.get("notes") else "") + notes,
                     "refinement": {"command": cfg.command, "iterations": cfg.iterations, "selected_step": step,
                                    "window_size": cfg.window_size, "joint_weight": cfg.joint_weight,
                                    "lr": cfg.lr, "batch_size": cfg.batch_size,
                                    "balance_alpha": cfg.balance_alpha, "depth_dropout": cfg.depth_dropout,
                                    "id_noise": cfg.id_noise, "generated_rate": cfg.generated_rate,
                                    "generated_from": cfg.generated_from}})
        return base

    def validate() -> None:
        nonlocal best, best_step
        metrics = evaluate_model(model, val_records, depths=[model.config.num_quantizers], batch_size=32)
        score = metrics["mpjpe_mm"][full]
        writer.add_scalar("val/mpjpe_mm", score, step)
        writer.add_scalar("val/root_error_5s_m", metrics["root_error_5s_m"], step)
        writer.add_scalar("val/foot_contact_accuracy", metrics["foot_contact_accuracy"], step)
        bar.write(f"step {step}: val MPJPE {score:.1f} mm, root error at 5 s {metrics['root_error_5s_m']:.3f} m")
        if score < best:
            best, best_step = score, step
            for name, tensor in frozen_state(model).items():
                if not torch.equal(tensor, frozen[name]):
                    raise RuntimeError(f"refinement changed the frozen tensor {name}")
            summary = {k: metrics[k] for k in ("mpjpe_mm", "root_error_5s_m", "foot_contact_accuracy")}
            model.save_pretrained(out / "model", card=card(summary))

    bar = tqdm(total=cfg.iterations, initial=step, desc="refine decoder", disable=not cfg.progress,
               dynamic_ncols=True)
    if step == 0:
        validate()  # the source model's own score: the refined model must beat it to be written
    t0, seen = time.time(), 0
    while step < cfg.iterations:
        for group in opt.param_groups:
            group["lr"] = _cosine_lr(cfg, step)
        g = torch.Generator().manual_seed(cfg.seed * 1_000_003 + step)
        if probs is None:
            idx = torch.randint(len(data), (cfg.batch_size,), generator=g).tolist()
        else:
            idx = torch.multinomial(probs, cfg.batch_size, replacement=True, generator=g).tolist()
        xs, id_parts = [], []
        if n_gen:  # the first n_gen entries: pool windows with the residual transformer's fine layers
            which = torch.randint(len(pool["keys"]), (n_gen,), generator=g)
            sample = torch.randint(pool["ids"].shape[0], (n_gen,), generator=g)
            xs.append(pool["motion"][which].float().to(device))
            id_parts.append(pool["ids"][sample, which].long().to(device))
        if n_gen < cfg.batch_size:
            exact_x = torch.stack([data[i]["motion"] for i in idx[n_gen:]]).to(device)
            xs.append(exact_x)
            id_parts.append(_perturb(model.encode(exact_x), cfg, g, model))
        x, ids = torch.cat(xs), torch.cat(id_parts)
        rec = model.decode(ids)[:, : x.shape[1]]
        loss, parts = refine_loss(model, rec, x, ric, cfg.pos_weight, cfg.joint_weight)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        seen += 1
        bar.update(1)
        if step % cfg.log_every == 0 or step == cfg.iterations:
            bar.set_postfix(loss=f"{loss.item():.4f}", joint=f"{parts['joint_mm']:.1f}mm")
            writer.add_scalar("train/loss", loss.item(), step)
            for k, v in parts.items():
                writer.add_scalar(f"train/{k}", v, step)
            writer.add_scalar("train/lr", opt.param_groups[0]["lr"], step)
            writer.add_scalar("train/it_per_s", seen / max(time.time() - t0, 1e-9), step)
        _training.validate_and_checkpoint(step, cfg, 0, 1, validate, save_checkpoint)
    _training.close_run(bar, writer, 1)
    return out / "model"
