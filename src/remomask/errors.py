"""The package's error hierarchy (docs/design.md §11, "Errors and the command line").

Every error that the user can fix (a bad option, a missing or corrupt file, an impossible request)
derives from :class:`RemomaskError`. The command line turns each of them into one line on stderr and
exit code 2 (:mod:`remomask.cli`); Python callers can catch ``RemomaskError`` for all of them, or the
standard base each subclass also has (``ValueError``, ``FileNotFoundError``, ``RuntimeError``,
``OSError``), so existing ``except ValueError`` code keeps working.

The hierarchy::

    RemomaskError(Exception)
    ├── UsageError(ValueError)            an argument or request that cannot be served
    ├── InputFileError(ValueError)        a user file that cannot be read as what it should be
    │   └── MocapFormatError              a malformed BVH / ASF / AMC file (with file and line)
    ├── MissingFileError(FileNotFoundError)  a file or folder that is not there
    ├── CheckpointError(ValueError)       a model folder or checkpoint that cannot be loaded
    ├── DeviceError(RuntimeError)         a device (cuda, mps) this machine does not have
    ├── OutputError(OSError)              an output that cannot be written (read-only folder, full disk)
    └── TrainingError(RuntimeError)       a training run that cannot continue (e.g. non-finite loss)

Stage-specific errors (``DatasetError``, ``DatabaseError``, ``TextEncoderError``, ...) subclass one of these.
"""

from __future__ import annotations

__all__ = [
    "RemomaskError",
    "UsageError",
    "InputFileError",
    "MissingFileError",
    "CheckpointError",
    "DeviceError",
    "OutputError",
    "TrainingError",
]


class RemomaskError(Exception):
    """Base of every error of this package that the user can act on (one line, no traceback)."""


class UsageError(RemomaskError, ValueError):
    """An argument or request that cannot be served (empty prompt, impossible length, bad count)."""


class InputFileError(RemomaskError, ValueError):
    """A user-given file exists but cannot be read as what it should be (the message names the file)."""


class MissingFileError(RemomaskError, FileNotFoundError):
    """A required file or folder does not exist (the message names it and what would create it)."""


class CheckpointError(RemomaskError, ValueError):
    """A model folder or checkpoint that is missing a file, corrupt, or of another format or version."""


class DeviceError(RemomaskError, RuntimeError):
    """The requested torch device is not available on this machine."""


class OutputError(RemomaskError, OSError):
    """An output file or folder cannot be written (read-only folder, a file in the way, full disk)."""


class TrainingError(RemomaskError, RuntimeError):
    """A training run that cannot start or continue (bad config, non-finite loss, foreign checkpoint)."""
