"""Tokenizer model folders: ``config.json`` + ``model.safetensors`` + statistics + model card.

Layout of a folder written by :func:`save_pretrained`::

    config.json        {"format": "remomask-tokenizer", "version": 1, "config": {...}, "card": {...}}
    model.safetensors  every parameter and buffer, including "mean"/"std" (D,) and the codebooks
    mean.npy, std.npy  the (D,) normalisation statistics, for the data loaders of later stages
    README.md          model card: data, training, normalisation decision (docs/design.md §15.3), metrics, licence

Every file is written to a temporary name in the folder and renamed into place.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .._pretrained import atomic_write, cpu_state, load_safetensors, read_format_json, state_mismatch
from .config import TokenizerConfig
from ..errors import CheckpointError

__all__ = ["FORMAT", "VERSION", "CheckpointError", "save_pretrained", "load_pretrained", "model_card"]

FORMAT = "remomask-tokenizer"
VERSION = 1

NORMALISATION_NOTE = (
    "Normalisation (docs/design.md §2.3, open question §15.3). The model works on features normalised with its own "
    "`mean.npy`/`std.npy`: the training dataset's Mean/Std (HumanML3D group-wise std), with the std of the "
    "root dims 0:4 and of the foot contacts 259:263 divided by `feat_bias` = {feat_bias:g} exactly once "
    "(the reference code divides twice, by 25, through an in-place edit of a shared array; we take the "
    "stated intent, 5). Dividing the std up-weights root and contact errors in the loss, which the root "
    "trajectory needs. Later stages normalise their data with these statistics, and `decode` output must "
    "be de-normalised with them (`model.denormalize`) before joints are recovered or before an evaluator "
    "that uses its own statistics sees it; VQ-space motion is never fed to an evaluator unchanged."
)


def _save_npy(path: str, array: np.ndarray) -> None:
    with open(path, "wb") as fh:  # np.save(path) would append ".npy" to the temporary name
        np.save(fh, array)


def _card_value(value) -> str:
    """A metric for the card: floats to 4 significant digits, {depth: mm} dicts as ``depth 6: 37.0``."""
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dict):
        return ", ".join(f"depth {k}: {_card_value(v)}" if str(k).isdigit() else f"{k}: {_card_value(v)}"
                         for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return ", ".join(_card_value(v) for v in value)
    return str(value)


def model_card(config: TokenizerConfig, card: dict | None = None) -> str:
    """Markdown model card for a tokenizer with ``config``; ``card`` adds free fields:
    ``dataset``, ``command``, ``iterations``, ``metrics`` (dict: split -> {name: value}), ``notes``."""
    card = card or {}
    lines = ["# remomask motion tokenizer (2D residual VQ-VAE)", "",
             "A ReMoMask-style 2D residual VQ-VAE (design §3.1-§3.4) trained by `remomask train tokenizer`.", "",
             "## Architecture", "",
             f"- branches: {', '.join(config.branches)}; the 2D grid root row carries the root data and foot contacts"
             + ("; the 1D branch encodes the whole feature vector and the two reconstructions are fused"
                if "1d" in config.branches else ""),
             f"- width {config.width}, depth {config.depth}, dilation growth {config.dilation_growth}",
             f"- residual VQ: {config.num_quantizers} layers x {config.num_codes} codes of {config.code_dim}-d "
             f"(EMA mu {config.mu}, dead-code reset, quantiser dropout {config.quantizer_dropout})",
             f"- features: {config.feature_dim}-d, 20 fps, 4 frames per token, window {config.window_size}", "",
             "## Normalisation", "", NORMALISATION_NOTE.format(feat_bias=config.feat_bias), ""]
    if card.get("dataset"):
        lines += ["## Training data", "", str(card["dataset"]), ""]
    if card.get("command") or card.get("iterations"):
        lines += ["## Training", ""]
        if card.get("command"):
            lines += [f"    {card['command']}", ""]
        for key in ("iterations", "batch_size", "seed", "selected_step", "train_seconds"):
            if key in card:
                lines.append(f"- {key.replace('_', ' ')}: {card[key]}")
        lines.append("- model selection: best full-depth MPJPE on the `val` split (never `test`)")
        lines.append("")
    metrics = card.get("metrics") or {}
    if metrics:
        lines += ["## Metrics", "", "MPJPE in mm after pelvis alignment on joints recovered from the "
                  "de-normalised reconstruction (`remomask evaluate tokenizer`).", ""]
        for split, vals in metrics.items():
            lines.append(f"**{split}**")
            lines.append("")
            for name, value in vals.items():
                lines.append(f"- {name}: {_card_value(value)}")
            lines.append("")
    if card.get("notes"):
        lines += ["## Notes", "", str(card["notes"]), ""]
    lines += ["## Licence", "",
              "Code MIT. Weights trained on the bundled remomask dataset (Bandai-Namco motion dataset, "
              "CC BY-NC 4.0; HDM05, CC BY-SA 3.0; CMU Graphics Lab Motion Capture Database with KIT-ML and "
              "HumanML3D captions; ReActIdle, MIT): non-commercial use, see the dataset card for attribution.", ""]
    return "\n".join(lines)


def save_pretrained(model, directory, *, card: dict | None = None) -> Path:
    """Write ``model`` (a :class:`~remomask.tokenizer.model.MotionTokenizer`) to ``directory``.

    Args:
        model: the tokenizer (its ``mean``/``std`` buffers are the statistics saved).
        directory: folder, created if needed; existing files of the same names are replaced.
        card: optional model-card fields (see :func:`model_card`), also stored in ``config.json``.

    Returns:
        The folder path.
    """
    from safetensors.torch import save_file

    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    state = cpu_state(model)
    meta = {"format": FORMAT, "version": VERSION, "config": model.config.to_dict(), "card": card or {}}
    atomic_write(out / "model.safetensors", lambda p: save_file(state, p, metadata={"format": FORMAT}))
    for name in ("mean", "std"):
        arr = state[name].numpy().astype(np.float32)
        atomic_write(out / f"{name}.npy", lambda p, a=arr: _save_npy(p, a))
    atomic_write(out / "config.json", lambda p: Path(p).write_text(json.dumps(meta, indent=1, sort_keys=True)))
    atomic_write(out / "README.md", lambda p: Path(p).write_text(model_card(model.config, card)))
    return out


def read_config(directory) -> tuple[TokenizerConfig, dict]:
    """``(config, card)`` from ``<directory>/config.json``.

    Raises:
        FileNotFoundError: no such folder or file. CheckpointError: not valid JSON or not a tokenizer config.
    """
    path = Path(directory) / "config.json"
    if not Path(directory).is_dir():
        raise FileNotFoundError(f"tokenizer folder {directory} does not exist; train one with "
                                "`remomask train tokenizer` or pass --model")
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: {directory} is not a tokenizer folder")
    meta = read_format_json(path, FORMAT, VERSION, CheckpointError,
                            invalid="{path} is not valid JSON ({exc}); the folder is corrupt, re-save the model",
                            wrong_format="{path} is not a {fmt} config (format={got!r})")
    try:
        config = TokenizerConfig.from_dict(meta["config"])
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}: bad tokenizer config ({exc})") from exc
    return config, meta.get("card") or {}


def load_pretrained(directory, map_location="cpu"):
    """Load a tokenizer folder; returns the model in eval mode.

    Raises:
        FileNotFoundError: folder, ``config.json`` or ``model.safetensors`` missing.
        CheckpointError: unreadable/corrupt weights, missing or unexpected tensors, or tensor shapes that
            do not match ``config.json`` (names the first few offending keys).
    """
    from .model import MotionTokenizer

    config, card = read_config(directory)
    weights = Path(directory) / "model.safetensors"
    state = load_safetensors(weights, CheckpointError, device=map_location, folder="tokenizer folder",
                             advice="re-save or re-train the model")
    model = MotionTokenizer(config)
    problems = state_mismatch(state, model.state_dict(), versus="vs config")
    if problems:
        raise CheckpointError(f"{weights} does not match {Path(directory) / 'config.json'}: {problems}")
    model.load_state_dict(state)
    model.card = card
    return model.to(map_location).eval()
