"""Output folders that never mix runs (docs/design.md §11).

A command that writes a folder of results (``remomask generate``, ``remomask edit``, ...) writes into a
hidden staging folder beside the destination, ``.<name>.partial-<pid>``, and renames it into place when
everything, ``result.json`` last, is written. So:

- a folder with a ``result.json`` is always complete, and lists exactly the files beside it;
- without ``--out``, each run gets a fresh numbered folder (``outputs/generate/001``, ``002``, ...);
- with ``--out DIR``, a previous remomask result in DIR is replaced as a whole; a DIR holding other files
  is refused before any work starts;
- a killed run leaves only its hidden staging folder, which the next run in the same place removes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
from pathlib import Path
from typing import Iterator

from ..errors import OutputError, UsageError
from ..files import partial_name, remove_stale

__all__ = ["staged_output", "OutputStage", "is_result_folder", "next_numbered"]

def is_result_folder(folder: Path) -> bool:
    """True when ``folder`` holds only what a remomask run writes (``result.json``, ``sample_*``, ``segment_*``
    files and hidden temporaries), so that replacing it loses nothing of the user's."""
    for path in folder.iterdir():
        name = path.name
        if name.startswith(".") or name == "result.json":
            continue
        if path.is_file() and name.startswith(("sample_", "segment_", "edit_", "source_", "timeline_")):
            continue
        return False
    return True


def next_numbered(parent: Path) -> Path:
    """The next free numbered folder under ``parent`` (``001``, ``002``, ...; after the highest number)."""
    numbers = [int(p.name) for p in parent.iterdir() if p.name.isdigit()] if parent.is_dir() else []
    return parent / f"{max(numbers, default=0) + 1:03d}"


def _check_destination(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file; give a folder")
    if out.is_dir() and any(out.iterdir()) and not is_result_folder(out):
        raise UsageError(f"--out {out} holds files that are not remomask outputs; choose a new or empty folder "
                         "(a previous remomask result there would be replaced)")


@contextlib.contextmanager
def staged_output(out: Path | None, default_parent: Path) -> Iterator[Path]:
    """Stage a run's output folder; on success it becomes ``out`` (or the next numbered folder).

    Args:
        out: the destination folder, or None for a fresh numbered folder under ``default_parent``.
        default_parent: parent of the numbered folders (e.g. ``outputs/generate``).

    Yields:
        An :class:`OutputStage`: write into ``stage.path``; after the ``with`` block ends without an error,
        ``stage.final`` is the folder the results now live in.

    Raises:
        UsageError: ``out`` is a file, or a folder with files that remomask did not write (checked first).
        OutputError: the parent folder cannot be created or written (read-only, no space).
    """
    if out is not None:
        out = Path(out)
        _check_destination(out)
        parent = out.parent
    else:
        parent = Path(default_parent)
    try:
        parent.mkdir(parents=True, exist_ok=True)
        remove_stale(parent)
        stage = OutputStage(parent / partial_name(out.name if out is not None else "run"))
        if stage.path.exists():
            shutil.rmtree(stage.path)
        stage.path.mkdir(mode=0o777)
    except OSError as exc:
        raise OutputError(f"cannot write to {parent}: {exc.strerror or exc}") from exc
    try:
        yield stage
        stage.final = _commit(stage.path, out, parent)
    finally:
        if stage.path.exists():
            shutil.rmtree(stage.path, ignore_errors=True)


@dataclasses.dataclass
class OutputStage:
    """A run's staging folder (``path``) and, once committed, its destination (``final``)."""

    path: Path
    final: Path | None = None


def _commit(stage: Path, out: Path | None, parent: Path) -> Path:
    try:
        if out is None:
            for _ in range(100):
                target = next_numbered(parent)
                try:
                    target.mkdir()  # claim the number (fails when a concurrent run took it)
                except FileExistsError:
                    continue
                os.replace(stage, target)  # onto our own empty folder
                return target
            raise OutputError(f"cannot find a free numbered folder under {parent}")
        if out.is_dir() and any(out.iterdir()):
            _check_destination(out)  # still only remomask outputs
            old = out.with_name(partial_name(out.name) + ".old")
            os.replace(out, old)
            os.replace(stage, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            if out.is_dir():
                out.rmdir()
            os.replace(stage, out)
        return out
    except OSError as exc:
        raise OutputError(f"cannot move the results into {out or parent}: {exc.strerror or exc}") from exc
