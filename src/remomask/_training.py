"""Shared pieces of the remomask training loops (private to the package).

The tokenizer (:mod:`remomask.tokenizer.train`) and the generation models (:mod:`remomask.generation.train`)
train with the same loop skeleton: single process or DDP under ``torchrun``, a linear warm-up then
multi-step learning-rate decay, rank 0 validating every ``eval_every`` iterations and writing
``<out>/checkpoint.pt`` atomically, TensorBoard logs in ``<out>/tb``. The retriever and the evaluator
trainings use :func:`atomic_torch_save` only.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Callable, Sequence

import torch
import torch.distributed as dist

from .files import atomic_path, atomic_write_text

__all__ = ["setup_distributed", "share_path", "wrap_ddp", "warmup_step_lr", "atomic_torch_save", "config_record",
           "restore_checkpoint", "open_run_folder", "validate_and_checkpoint", "close_run"]


def setup_distributed(device: str) -> tuple[int, int, torch.device]:
    """Join the ``torchrun`` process group when ``WORLD_SIZE > 1`` and pick this process's device.

    Args:
        device: ``"cpu"`` or ``"cuda"``; with CUDA each process takes the GPU ``LOCAL_RANK`` (NCCL backend),
            otherwise the processes talk over gloo.

    Returns:
        ``(rank, world size, device)``; ``(0, 1, device)`` outside ``torchrun``.

    Raises:
        RuntimeError / ValueError: from :func:`torch.distributed.init_process_group` or an unknown device.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
    rank = dist.get_rank() if dist.is_initialized() else 0
    dev = torch.device(device)
    if dev.type == "cuda":
        dev = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(dev)
    return rank, world, dev


def share_path(path, world: int):
    """Rank 0's ``path`` on every rank (a broadcast when ``world > 1``; ``path`` itself otherwise).

    Args:
        path: the value on rank 0 (other ranks may pass None). world: the world size.

    Returns:
        ``path`` unchanged when ``world == 1``, else rank 0's value as a :class:`~pathlib.Path`.
    """
    if world > 1:
        holder = [str(path)]
        dist.broadcast_object_list(holder, src=0)
        return Path(holder[0])
    return path


def wrap_ddp(model: torch.nn.Module, world: int, device: torch.device) -> torch.nn.Module:
    """``model`` wrapped in :class:`~torch.nn.parallel.DistributedDataParallel` when ``world > 1``, else itself.

    Buffers are not broadcast (the quantiser and the models keep their own in sync).

    Args:
        model: the module, already on ``device``. world: the world size. device: this process's device.

    Returns:
        The module to run forward.
    """
    if world > 1:
        return torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None, broadcast_buffers=False)
    return model


def warmup_step_lr(lr: float, warmup: int, gamma: float, milestones: Sequence[int], it: int) -> float:
    """Learning rate at iteration ``it`` (0-based): ``lr * (it + 1) / (warmup + 1)`` during the first ``warmup``
    iterations, then ``lr`` times ``gamma`` for every milestone reached (``it >= m``).

    Args:
        lr: peak learning rate. warmup: warm-up iterations (0 = none). gamma: decay factor.
        milestones: iterations at which the rate is multiplied by ``gamma``. it: the iteration.

    Returns:
        The learning rate.
    """
    if it < warmup:
        return lr * (it + 1) / (warmup + 1)
    return lr * gamma ** sum(it >= m for m in milestones)


def atomic_torch_save(obj, path: str | os.PathLike, *, mode: int | None = None) -> None:
    """:func:`torch.save` ``obj`` to ``path`` through :func:`remomask.files.atomic_path` (a temporary file
    renamed into place): an interrupted save never leaves half a checkpoint.

    Args:
        obj: what to save. path: the checkpoint file (its folder is created if needed).
        mode: permission bits of the file; None (default) = ``0o666 & ~umask``.

    Raises:
        OSError: the folder is not writable; pickling errors of ``obj`` (no file is left).
    """
    with atomic_path(path, mode=mode) as tmp:
        torch.save(obj, tmp)


def config_record(cfg) -> dict:
    """The dataclass ``cfg`` as plain JSON values (tuples become lists), as stored in checkpoints.

    Args:
        cfg: a dataclass instance (a training config).

    Returns:
        A dict of JSON types.

    Raises:
        TypeError: a field that is neither JSON-serialisable nor iterable.
    """
    return json.loads(json.dumps(dataclasses.asdict(cfg), default=list))


def restore_checkpoint(ckpt: dict, model: torch.nn.Module, optimizer) -> tuple[int, float, int]:
    """Load the model and optimiser states of a training checkpoint (already checked by the caller).

    Args:
        ckpt: the loaded checkpoint with ``model``, ``optimizer``, ``step``, ``best`` and ``best_step``.
        model: the module. optimizer: its optimiser.

    Returns:
        ``(step, best score, step of the best score)``.

    Raises:
        KeyError: a missing entry. RuntimeError: states that do not fit the model or the optimiser.
    """
    model.load_state_dict(ckpt["model"])
    optimizer.load_state_dict(ckpt["optimizer"])
    return int(ckpt["step"]), float(ckpt["best"]), int(ckpt["best_step"])


def open_run_folder(out: Path, cfg):
    """Create the run folder ``out``, write ``train_config.json`` (``cfg`` as JSON) and open the TensorBoard
    writer of ``out/tb``. Rank 0 only.

    Args:
        out: the run folder. cfg: the training config (a dataclass).

    Returns:
        The :class:`torch.utils.tensorboard.SummaryWriter`.

    Raises:
        OSError: the folder cannot be created or written.
    """
    from torch.utils.tensorboard import SummaryWriter

    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "train_config.json", json.dumps(dataclasses.asdict(cfg), indent=1, default=list))
    return SummaryWriter(str(out / "tb"))


def validate_and_checkpoint(step: int, cfg, rank: int, world: int, validate: Callable[[], None],
                            checkpoint: Callable[[], None]) -> None:
    """After iteration ``step``: validate (rank 0) and checkpoint every ``cfg.eval_every`` iterations and at
    the last one, checkpoint alone every ``cfg.checkpoint_every`` iterations, then wait for all ranks when
    either happened (DDP).

    Args:
        step: iterations done. cfg: a training config with ``iterations``, ``eval_every`` and
            ``checkpoint_every``. rank, world: this process and the world size.
        validate: rank 0's validation (and model selection). checkpoint: writes the checkpoint (it checks
            the rank itself).
    """
    if step % cfg.eval_every == 0 or step == cfg.iterations:
        if rank == 0:
            validate()
        checkpoint()
    elif step % cfg.checkpoint_every == 0:
        checkpoint()
    if world > 1 and (step % cfg.eval_every == 0 or step % cfg.checkpoint_every == 0):
        dist.barrier()


def close_run(bar, writer, world: int) -> None:
    """End a training loop: close the progress bar and the TensorBoard writer (None on ranks > 0) and, under
    DDP, wait for every rank and leave the process group.

    Args:
        bar: the tqdm bar. writer: the SummaryWriter or None. world: the world size.
    """
    bar.close()
    if writer is not None:
        writer.close()
    if world > 1:
        dist.barrier()
        dist.destroy_process_group()
