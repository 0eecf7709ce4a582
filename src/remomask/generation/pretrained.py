"""Model folders of the generation stage: ``config.json`` + ``model.safetensors`` (HuggingFace convention).

``config.json`` holds ``{"format": <model kind>, "version": 1, "config": {...}, "card": {...}}``; the weights
are every parameter and persistent buffer. Each file is written to a temporary name in the same folder and
renamed into place, so an interrupted save never leaves a half-written file under the final name.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import torch

__all__ = ["CheckpointError", "VERSION", "save_model", "load_model", "read_meta"]

VERSION = 1


class CheckpointError(ValueError):
    """A model folder is corrupt, of another kind or version, or does not match its config."""


def _atomic_write(path: Path, write) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


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
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    _atomic_write(out / "model.safetensors", lambda p: save_file(state, p, metadata={"format": fmt}))
    _atomic_write(out / "config.json", lambda p: Path(p).write_text(text))
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
    try:
        meta = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{path} is not valid JSON ({exc}); the folder is corrupt, save the model again") from exc
    if not isinstance(meta, dict) or meta.get("format") != fmt:
        got = meta.get("format") if isinstance(meta, dict) else None
        raise CheckpointError(f"{path} is a {got!r} folder, not {fmt!r}; pass the folder of the right model")
    if meta.get("version") != VERSION:
        raise CheckpointError(f"{path} has format version {meta.get('version')}; this remomask reads version {VERSION}")
    return meta


def load_model(cls, config_cls, directory, fmt: str, map_location="cpu"):
    """Build ``cls(config)`` from a folder written by :func:`save_model` and load its weights (eval mode).

    Raises:
        FileNotFoundError: missing folder, config.json or model.safetensors.
        CheckpointError: bad config, unreadable weights, or missing / unexpected / mis-shaped tensors.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    meta = read_meta(directory, fmt)
    try:
        config = config_cls.from_dict(meta["config"])
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{Path(directory) / 'config.json'}: bad {fmt} config ({exc})") from exc
    weights = Path(directory) / "model.safetensors"
    if not weights.is_file():
        raise FileNotFoundError(f"{weights} is missing; the model folder is incomplete")
    try:
        state = load_file(str(weights), device=str(map_location))
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"cannot read {weights}: {exc}; the file is corrupt or truncated") from exc
    model = cls(config)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = sorted(k for k in set(expected) & set(state) if expected[k].shape != state[k].shape)
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"missing {missing[:4]}")
        if unexpected:
            parts.append(f"unexpected {unexpected[:4]}")
        if wrong:
            parts.append("shape mismatch " + ", ".join(
                f"{k} {tuple(state[k].shape)} vs {tuple(expected[k].shape)}" for k in wrong[:4]))
        raise CheckpointError(f"{weights} does not match its config.json: {'; '.join(parts)}")
    model.load_state_dict(state)
    model.card = meta.get("card") or {}
    return model.to(map_location).eval()
