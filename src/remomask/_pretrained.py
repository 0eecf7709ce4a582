"""Shared helpers of the model folders that remomask writes and reads (private to the package).

Every stage stores a trained model as a folder (``config.json`` + ``model.safetensors``, HuggingFace
convention) or, for the retrieval database and the pipeline, as a folder replaced as a whole. The pieces
they have in common live here:

- :func:`atomic_write`: write one file through a callback, atomically (:mod:`remomask.files`, re-exported
  with :func:`replaced_folder`, which builds a whole folder in a temporary sibling and swaps it in);
- :func:`read_format_json`: parse a ``{"format": ..., "version": ...}`` JSON file and check both fields;
- :func:`cpu_state`: a module's state dict as contiguous CPU tensors, ready for safetensors;
- :func:`load_safetensors`: read a weights file with a clear error when it is missing or corrupt;
- :func:`state_mismatch`: describe missing, unexpected and mis-shaped tensors of a state dict;
- :func:`folder_fingerprint`: a SHA-256 of a model folder's weights and configs.

Each stage keeps its own exception class and message wording; the helpers take them as arguments.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Callable, Mapping

from .files import atomic_path, replaced_folder

__all__ = ["atomic_write", "replaced_folder", "read_format_json", "cpu_state", "load_safetensors",
           "state_mismatch", "folder_fingerprint", "VERSION_MESSAGE"]

VERSION_MESSAGE = "{path} has format version {got}; this remomask reads version {version}"
"""Default ``wrong_version`` message of :func:`read_format_json`."""


def atomic_write(path: str | os.PathLike, write: Callable[[str], object], *, mode: int | None = None) -> None:
    """Write ``path`` by calling ``write(temporary name)`` inside :func:`remomask.files.atomic_path`.

    A thin callback form of the package's one atomic writer, kept for the model folders' savers.

    Args:
        path: the destination file (its folder is created if needed).
        write: called with the temporary file's name (a ``str``) and writes the content there.
        mode: permission bits of the file; None (default) = ``0o666 & ~umask``.

    Raises:
        OSError: the folder is not writable; anything ``write`` raises is passed on (no file is left).
    """
    with atomic_path(path, mode=mode) as tmp:
        write(str(tmp))


def read_format_json(path: str | os.PathLike, fmt: str, version: int, error: type[Exception], *, invalid: str,
                     wrong_format: str, wrong_version: str = VERSION_MESSAGE) -> dict:
    """Parse the JSON file ``path`` and check that it is a dict with ``"format" == fmt`` and ``"version" == version``.

    The messages are :meth:`str.format` templates; they may use ``{path}`` (the file), ``{folder}`` (its
    folder), ``{fmt}`` and ``{version}`` (the expected values), ``{exc}`` (the JSON error, in ``invalid``)
    and ``{got}`` (the value found, in ``wrong_format`` / ``wrong_version``; None when the file does not
    hold a JSON object).

    Args:
        path: the JSON file; the caller checks beforehand that it exists.
        fmt: the expected ``"format"`` value. version: the expected ``"version"`` value.
        error: the exception class raised for a bad file.
        invalid, wrong_format, wrong_version: message templates of the three failures.

    Returns:
        The parsed dict.

    Raises:
        ``error``: the file is not valid JSON (chained to the decoding error), not a JSON object of format
            ``fmt``, or of another version.
        OSError: the file cannot be read.
    """
    path = Path(path)
    fields = {"path": path, "folder": path.parent, "fmt": fmt, "version": version}
    try:
        meta = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise error(invalid.format(exc=exc, **fields)) from exc
    if not isinstance(meta, dict) or meta.get("format") != fmt:
        got = meta.get("format") if isinstance(meta, dict) else None
        raise error(wrong_format.format(got=got, **fields))
    if meta.get("version") != version:
        raise error(wrong_version.format(got=meta.get("version"), **fields))
    return meta


def cpu_state(module) -> dict:
    """``module.state_dict()`` with every tensor detached, on the CPU and contiguous (what safetensors stores).

    Args:
        module: a :class:`torch.nn.Module`.

    Returns:
        ``{name: tensor}``.
    """
    return {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}


def load_safetensors(path: str | os.PathLike, error: type[Exception], *, device="cpu", folder: str = "model folder",
                     advice: str | None = None) -> dict:
    """Read the tensors of a ``.safetensors`` file onto ``device``.

    Args:
        path: the weights file.
        error: the exception class raised for an unreadable file.
        device: where the tensors are loaded (``str(device)`` is passed to safetensors).
        folder: what the file belongs to, for the missing-file message (``"the <folder> is incomplete"``).
        advice: appended to the unreadable-file message after a comma (e.g. ``"re-save the model"``).

    Returns:
        ``{name: tensor}``.

    Raises:
        FileNotFoundError: no such file.
        ``error``: the file is corrupt or truncated (chained to the safetensors / OS error).
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing; the {folder} is incomplete")
    try:
        return load_file(str(path), device=str(device))
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        tail = f", {advice}" if advice else ""
        raise error(f"cannot read {path}: {exc}; the file is corrupt or truncated{tail}") from exc


def state_mismatch(state: Mapping, expected: Mapping, *, versus: str = "vs") -> str:
    """How ``state`` differs from the state dict ``expected`` of the model it should be loaded into.

    Args:
        state: the tensors read from a file. expected: ``model.state_dict()``.
        versus: the word between the found and the expected shape (``"vs"``, ``"vs config"``).

    Returns:
        ``""`` when the names and shapes agree; otherwise ``"missing [...]; unexpected [...]; shape mismatch
        k (found) vs (expected), ..."`` (only the parts that apply, at most four keys each).
    """
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = sorted(k for k in set(expected) & set(state) if expected[k].shape != state[k].shape)
    parts = []
    if missing:
        parts.append(f"missing {missing[:4]}")
    if unexpected:
        parts.append(f"unexpected {unexpected[:4]}")
    if wrong:
        parts.append("shape mismatch " + ", ".join(
            f"{k} {tuple(state[k].shape)} {versus} {tuple(expected[k].shape)}" for k in wrong[:4]))
    return "; ".join(parts)


def folder_fingerprint(folder: str | os.PathLike, suffixes: tuple[str, ...] = (".json", ".safetensors",
                                                                              ".npy", ".faiss")) -> str:
    """SHA-256 over the names and bytes of a model folder's files (recursively) with the given suffixes.

    Two folders with the same fingerprint hold the same weights and configs; used to tell whether a
    partial evaluation was made with the model now at the same path.

    Args:
        folder: a model or pipeline folder. suffixes: file endings that count (weights, configs, statistics).

    Returns:
        The hex digest (64 characters).

    Raises:
        FileNotFoundError: ``folder`` is not a folder.
    """
    import hashlib

    root = Path(folder)
    if not root.is_dir():
        raise FileNotFoundError(f"{root} is not a folder")
    h = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file() and p.name.endswith(suffixes)):
        h.update(path.relative_to(root).as_posix().encode() + b"\0")
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()
