"""Shared helpers of the model folders that remomask writes and reads (private to the package).

Every stage stores a trained model as a folder (``config.json`` + ``model.safetensors``, HuggingFace
convention) or, for the retrieval database and the pipeline, as a folder replaced as a whole. The pieces
they have in common live here:

- :func:`atomic_write`: write one file under a temporary name in its folder, then rename it into place;
- :func:`replaced_folder`: build a whole folder in a temporary sibling, then swap it in for the old one;
- :func:`read_format_json`: parse a ``{"format": ..., "version": ...}`` JSON file and check both fields;
- :func:`cpu_state`: a module's state dict as contiguous CPU tensors, ready for safetensors;
- :func:`load_safetensors`: read a weights file with a clear error when it is missing or corrupt;
- :func:`state_mismatch`: describe missing, unexpected and mis-shaped tensors of a state dict;
- :func:`folder_fingerprint`: a SHA-256 of a model folder's weights and configs.

Each stage keeps its own exception class and message wording; the helpers take them as arguments.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable, Iterator, Mapping

__all__ = ["atomic_write", "replaced_folder", "read_format_json", "cpu_state", "load_safetensors",
           "state_mismatch", "folder_fingerprint", "VERSION_MESSAGE"]

VERSION_MESSAGE = "{path} has format version {got}; this remomask reads version {version}"
"""Default ``wrong_version`` message of :func:`read_format_json`."""


def atomic_write(path: str | os.PathLike, write: Callable[[str], object], *, mode: int | None = 0o644) -> None:
    """Write ``path`` through a temporary file in the same folder, renamed into place when complete.

    An interrupted write never leaves a half-written file under the final name, and the temporary file is
    removed whatever happens.

    Args:
        path: the destination file; its folder must exist.
        write: called with the temporary file's name (a ``str``) and writes the content there.
        mode: permission bits given to the file before the rename (``0o644``: readable by everyone), or
            None to keep the ``0o600`` of :func:`tempfile.mkstemp`.

    Raises:
        OSError: the folder does not exist or is not writable; anything ``write`` raises is passed on.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


@contextlib.contextmanager
def replaced_folder(folder: str | os.PathLike, *, mode: int | None = None) -> Iterator[Path]:
    """Context manager: yield an empty temporary folder that replaces ``folder`` when the block succeeds.

    The temporary folder is a hidden sibling of ``folder`` (same file system). On success an existing
    ``folder`` is first renamed aside (``.<name>.old-<pid>``), the new one renamed into place and the old
    one deleted, so readers see either the old or the new folder, never a mix. When the block raises,
    the temporary folder is deleted and ``folder`` is left as it was.

    Args:
        folder: the destination folder; its parent is created if needed.
        mode: permission bits given to the new folder before it is renamed into place, or None to keep
            the ``0o700`` of :func:`tempfile.mkdtemp`.

    Yields:
        The temporary folder (a :class:`~pathlib.Path`) to fill.

    Raises:
        OSError: the parent folder cannot be created or written; anything the block raises is passed on.
    """
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        yield work
        if mode is not None:
            os.chmod(work, mode)
        old = None
        if folder.exists():
            old = folder.with_name(f".{folder.name}.old-{os.getpid()}")
            os.replace(folder, old)
        os.replace(work, folder)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)


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
