"""Model folders of the generation stage: ``config.json`` + ``model.safetensors`` (HuggingFace convention).

``config.json`` holds ``{"format": <model kind>, "version": 1, "config": {...}, "card": {...}}``; the weights
are every parameter and persistent buffer. Each file is written to a temporary name in the same folder and
renamed into place, so an interrupted save never leaves a half-written file under the final name.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from .._pretrained import atomic_write, cpu_state, load_safetensors, read_format_json, state_mismatch
from ..errors import CheckpointError

__all__ = ["CheckpointError", "VERSION", "save_model", "load_model", "read_meta"]

VERSION = 1


def save_model(model: torch.nn.Module, directory, fmt: str, *, card: dict | None = None) -> Path:
    """Write ``model`` (with a ``config`` that has ``to_dict``) to ``directory``.

    Args:
        model: the module. directory: folder, created if needed. fmt: format name stored in config.json.
        card: optional JSON-serialisable facts (data, training command, metrics) kept in config.json.

    Returns:
        The folder path.

    Raises:
        TypeError: ``card`` is not JSON-serialisable.
    """
    from safetensors.torch import save_file

    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    meta = {"format": fmt, "version": VERSION, "config": model.config.to_dict(), "card": card or {}}
    text = json.dumps(meta, indent=1, sort_keys=True)
    state = cpu_state(model)
    atomic_write(out / "model.safetensors", lambda p: save_file(state, p, metadata={"format": fmt}))
    atomic_write(out / "config.json", lambda p: Path(p).write_text(text))
    return out


def read_meta(directory, fmt: str) -> dict:
    """The parsed ``config.json`` of a model folder of kind ``fmt``.

    Raises:
        FileNotFoundError: no folder or no config.json (names the fix).
        CheckpointError: invalid JSON, another model kind or another format version.
    """
    folder = Path(directory)
    if not folder.is_dir():
        raise FileNotFoundError(f"model folder {folder} does not exist; train the model first or pass the right path")
    path = folder / "config.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: {folder} is not a saved {fmt} folder")
    return read_format_json(path, fmt, VERSION, CheckpointError,
                            invalid="{path} is not valid JSON ({exc}); the folder is corrupt, save the model again",
                            wrong_format="{path} is a {got!r} folder, not {fmt!r}; pass the folder of the right model")


def load_model(cls, config_cls, directory, fmt: str, map_location="cpu"):
    """Build ``cls(config)`` from a folder written by :func:`save_model` and load its weights (eval mode).

    Raises:
        FileNotFoundError: missing folder, config.json or model.safetensors.
        CheckpointError: bad config, unreadable weights, or missing / unexpected / mis-shaped tensors.
    """
    meta = read_meta(directory, fmt)
    try:
        config = config_cls.from_dict(meta["config"])
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{Path(directory) / 'config.json'}: bad {fmt} config ({exc})") from exc
    weights = Path(directory) / "model.safetensors"
    state = load_safetensors(weights, CheckpointError, device=map_location)
    model = cls(config)
    problems = state_mismatch(state, model.state_dict())
    if problems:
        raise CheckpointError(f"{weights} does not match its config.json: {problems}")
    model.load_state_dict(state)
    model.card = meta.get("card") or {}
    return model.to(map_location).eval()
