"""Atomic file and folder writing: the one writer of the package (docs/design.md).

Every file remomask writes (model folders, checkpoints, datasets, captions, videos, results) goes
through this module, so that an interrupted run never leaves half a file under its final name:

- :func:`atomic_path`: a context manager yielding a temporary path in the destination's folder, renamed
  into place when the block succeeds and removed when it raises;
- :func:`atomic_write_text` / :func:`atomic_write_bytes`: the common cases of one string or bytes;
- :func:`replaced_folder`: build a whole folder in a temporary sibling, then swap it in for the old one.

Permissions follow the process umask, as ``open()`` and ``mkdir()`` do: files end up
``0o666 & ~umask`` and folders ``0o777 & ~umask`` (``0o644`` / ``0o755`` under the usual umask 022),
not the ``0o600`` / ``0o700`` of :func:`tempfile.mkstemp` / :func:`tempfile.mkdtemp`.

Temporary names are hidden and carry the writer's process id, ``.<name>.<pid>.<random>.tmp<suffix>``
(folders ``.<name>.<pid>.<random>.tmp``; the old folder set aside ``.<name>.old-<pid>``), so a later run
or a clean-up can tell which ones a dead process left behind (:func:`is_temporary`, :func:`temporary_pid`).
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import threading
from pathlib import Path
from typing import Iterator

__all__ = ["atomic_path", "atomic_write_text", "atomic_write_bytes", "replaced_folder", "file_mode", "folder_mode",
           "is_temporary", "temporary_pid", "partial_name", "pid_alive", "remove_stale"]

_TEMP_RE = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)\.[0-9a-f]{8}\.tmp")
_OLD_RE = re.compile(r"^\.(?P<name>.+)\.old-(?P<pid>\d+)$")
_umask_lock = threading.Lock()
_umask_value: int | None = None


def _read_umask() -> int:
    """The process umask, read once (first use) and cached.

    Linux reports it in ``/proc/self/status`` (no side effect); elsewhere it is read by setting and
    restoring it under a lock, which is safe against other callers of this module.
    """
    global _umask_value
    with _umask_lock:
        if _umask_value is None:
            value = None
            try:
                with open("/proc/self/status", encoding="ascii") as f:
                    for line in f:
                        if line.startswith("Umask:"):
                            value = int(line.split()[1], 8)
                            break
            except (OSError, ValueError):
                value = None
            if value is None:
                value = os.umask(0o022)
                os.umask(value)
            _umask_value = value
        return _umask_value


def file_mode() -> int:
    """Permission bits of a file this module writes: ``0o666 & ~umask`` (``0o644`` under umask 022).

    Returns:
        The mode as an int.
    """
    return 0o666 & ~_read_umask()


def folder_mode() -> int:
    """Permission bits of a folder this module creates: ``0o777 & ~umask`` (``0o755`` under umask 022).

    Returns:
        The mode as an int.
    """
    return 0o777 & ~_read_umask()


def _temp_name(name: str, suffix: str = "") -> str:
    return f".{name}.{os.getpid()}.{secrets.token_hex(4)}.tmp{suffix}"


def is_temporary(path: str | os.PathLike) -> bool:
    """Whether ``path`` is named like a temporary file or set-aside folder of this module.

    Args:
        path: a file or folder name (only the last component counts).

    Returns:
        True for ``.<name>.<pid>.<hex>.tmp...`` and ``.<name>.old-<pid>``.
    """
    return temporary_pid(path) is not None


def temporary_pid(path: str | os.PathLike) -> int | None:
    """The id of the process that made the temporary ``path`` (see :func:`is_temporary`), or None.

    A clean-up may delete a temporary whose process no longer runs.

    Args:
        path: a file or folder name (only the last component counts).

    Returns:
        The process id, or None when ``path`` is not one of this module's temporary names.
    """
    name = Path(path).name
    match = _TEMP_RE.match(name) or _OLD_RE.match(name)
    return int(match["pid"]) if match else None


def _remove(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink()


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None, *, mode: int | None = None) -> Iterator[Path]:
    """Context manager: yield a temporary path next to ``path`` that replaces ``path`` when the block succeeds.

    The temporary file exists (empty) when the block starts; the block writes it by name (``np.save``,
    ``torch.save``, an encoder...). On success its permission bits are set and it is renamed over ``path``
    (:func:`os.replace`, atomic on one file system), so readers see the old file or the new one, never
    half a file. When the block raises, the temporary file is removed and ``path`` is left as it was.

    Args:
        path: the destination file; its folder is created if needed (with the umask's mode).
        suffix: ending of the temporary name (default: ``path``'s suffix), for writers that pick the
            format from the name or append one (``np.savez`` adds ``.npz`` to a name without it).
        mode: permission bits of the file; None (default) = :func:`file_mode`, ``0o666 & ~umask``.

    Yields:
        The temporary path (a :class:`~pathlib.Path`, hidden, named ``.<name>.<pid>.<random>.tmp<suffix>``).

    Raises:
        OSError: the folder cannot be created or written; anything the block raises is passed on.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / _temp_name(path.name, path.suffix if suffix is None else suffix)
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    try:
        yield tmp
        os.chmod(tmp, file_mode() if mode is None else mode)
        os.replace(tmp, path)
    finally:
        if os.path.lexists(tmp):
            _remove(tmp)


def atomic_write_bytes(path: str | os.PathLike, data: bytes, *, mode: int | None = None) -> Path:
    """Write ``data`` to ``path`` atomically (:func:`atomic_path`).

    Args:
        path: the destination file (its folder is created if needed). data: the content.
        mode: permission bits; None = ``0o666 & ~umask``.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        OSError: the folder cannot be created or written.
    """
    with atomic_path(path, mode=mode) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def atomic_write_text(path: str | os.PathLike, text: str, *, encoding: str = "utf-8",
                      mode: int | None = None) -> Path:
    """Write ``text`` to ``path`` atomically (:func:`atomic_path`), encoded with ``encoding``.

    Args:
        path: the destination file (its folder is created if needed). text: the content.
        encoding: text encoding (UTF-8). mode: permission bits; None = ``0o666 & ~umask``.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        OSError: the folder cannot be created or written. UnicodeEncodeError: ``text`` does not fit ``encoding``.
    """
    return atomic_write_bytes(path, text.encode(encoding), mode=mode)


@contextlib.contextmanager
def replaced_folder(folder: str | os.PathLike, *, mode: int | None = None) -> Iterator[Path]:
    """Context manager: yield an empty temporary folder that replaces ``folder`` when the block succeeds.

    The temporary folder is a hidden sibling of ``folder`` (same file system). On success an existing
    ``folder`` is first renamed aside (``.<name>.old-<pid>``), the new one renamed into place and the old
    one deleted, so readers see either the old or the new folder, never a mix. When the block raises,
    the temporary folder is deleted and ``folder`` is left as it was.

    Args:
        folder: the destination folder; its parent is created if needed.
        mode: permission bits of the new folder; None (default) = :func:`folder_mode`, ``0o777 & ~umask``.
            What the block writes inside keeps its own modes.

    Yields:
        The temporary folder (a :class:`~pathlib.Path`) to fill.

    Raises:
        OSError: the parent folder cannot be created or written; anything the block raises is passed on.
    """
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    work = folder.parent / _temp_name(folder.name)
    work.mkdir(mode=0o700)
    try:
        yield work
        os.chmod(work, folder_mode() if mode is None else mode)
        old = None
        if folder.exists():
            old = folder.with_name(f".{folder.name}.old-{os.getpid()}")
            if os.path.lexists(old):
                _remove(old)
            os.replace(folder, old)
        os.replace(work, folder)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if os.path.lexists(work):
            _remove(work)


_PARTIAL = ".partial-"


def partial_name(name: str) -> str:
    """The hidden name of a folder being built for ``name`` by this process: ``.<name>.partial-<pid>``
    (a run's staging folder, a dataset cache being materialised)."""
    return f".{name}{_PARTIAL}{os.getpid()}"


def pid_alive(pid: int) -> bool:
    """Whether a process with id ``pid`` runs on this machine (signal 0; a process of another user counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale(folder: str | os.PathLike) -> list[Path]:
    """Delete, in ``folder``, the partial folders (:func:`partial_name`) and temporaries (:func:`is_temporary`)
    left by processes that no longer run (killed with SIGKILL, a power loss), which could not clean up.

    Returns:
        The paths removed (none when ``folder`` does not exist).
    """
    folder = Path(folder)
    removed: list[Path] = []
    if not folder.is_dir():
        return removed
    for path in folder.iterdir():
        name = path.name
        pid = None
        if name.startswith(".") and _PARTIAL in name and name.rsplit(_PARTIAL, 1)[1].isdigit():
            pid = int(name.rsplit(_PARTIAL, 1)[1])
        elif is_temporary(path):
            pid = temporary_pid(path)
        if pid is not None and pid != os.getpid() and not pid_alive(pid):
            _remove(path)
            removed.append(path)
    return removed
