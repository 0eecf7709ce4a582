"""The command line's one error path and its shared options (docs/design.md §11).

Every remomask command is a :class:`Command` (groups are :class:`Group`), whose ``main`` and ``invoke``
implement the contract of the command line:

- an error of the package (:class:`remomask.errors.RemomaskError`), a missing file, an unwritable output
  or a bad option value prints **one line** ``error: ...`` on stderr and exits with code **2**, without a
  traceback (set ``REMOMASK_DEBUG=1`` to see it);
- Ctrl-C prints ``interrupted`` and exits with **130** (128 + SIGINT), as shells expect.

Only ``click`` is imported here, so that ``remomask --help`` answers without importing torch.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
from pathlib import Path

import click

from ..constants import MAX_SEED
from ..errors import DeviceError, RemomaskError, UsageError

__all__ = ["UsageFailure", "error_line", "Command", "Group", "LazyGroup", "command", "group", "fail", "parse_sets",
           "command_line", "set_threads", "check_device", "SEED", "POSITIVE", "NON_NEGATIVE", "FINITE", "DEVICE",
           "int_range", "finite",
           "device_option", "threads_option"]


class UsageFailure(click.ClickException):
    """A user error already phrased for the user: printed as ``error: <message>``, exit code 2."""

    exit_code = 2

    def show(self, file=None) -> None:  # noqa: D102 - one clear line, no traceback
        click.echo(f"error: {self.format_message()}", err=True)


def fail(message: str) -> UsageFailure:
    """The exception to raise for a user error found by a command itself: ``raise fail("...")``."""
    return UsageFailure(message)


def error_line(exc: BaseException) -> str:
    """The user-facing line of an exception of the package or of the operating system: the message on one line,
    or ``<file>: <reason>`` for an OSError that names a file (shared by the CLI and the studio; docs/design.md §11)."""
    if isinstance(exc, OSError) and not isinstance(exc, RemomaskError) and exc.filename is not None:
        what = {2: "does not exist", 13: "permission denied", 17: "already exists", 20: "a path component is a file",
                21: "is a directory", 28: "no space left on the device", 30: "the file system is read-only",
                36: "the name is too long"}.get(exc.errno or 0, exc.strerror or str(exc))
        return f"{exc.filename}: {what}"
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text


def _user_errors() -> tuple[type[BaseException], ...]:
    # ValueError: the library's argument checks (e.g. an impossible length) raise plain ValueErrors too
    return (RemomaskError, OSError, ValueError)


def _guarded(call, *args):
    """Run ``call(*args)``, mapping user errors to :class:`UsageFailure` and Ctrl-C to exit 130."""
    try:
        return call(*args)
    except click.exceptions.Exit:
        raise
    except click.ClickException:
        raise
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        raise click.exceptions.Exit(130) from None
    except _user_errors() as exc:
        if os.environ.get("REMOMASK_DEBUG"):
            raise
        raise UsageFailure(error_line(exc)) from exc


def _main(self, super_main, args, prog_name, complete_var, standalone_mode, extra):
    """Click's ``main`` with one-line usage errors (``error: ... (see 'CMD --help')``) in standalone mode."""
    if not standalone_mode:
        return super_main(args, prog_name, complete_var, False, **extra)
    try:
        rv = super_main(args, prog_name, complete_var, False, **extra)
    except click.exceptions.Abort:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except click.BadParameter as exc:
        click.echo(f"error: {_bad_parameter(exc)}", err=True)
        sys.exit(2)
    except click.UsageError as exc:
        hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
        click.echo(f"error: {exc.format_message()}{hint}", err=True)
        sys.exit(2)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    sys.exit(rv if isinstance(rv, int) and not isinstance(rv, bool) else 0)


def _bad_parameter(exc: click.BadParameter) -> str:
    """``--seed must be in 0..N, got X`` for an option, ``TEXT ...`` for an argument."""
    param = exc.param
    if param is None:
        return exc.format_message()
    if isinstance(param, click.Option):
        name = max(param.opts, key=len)
    else:
        name = (param.name or "argument").upper()
    message = exc.message
    if isinstance(param.type, (_Int, _Finite, _Device)):
        return f"{name} {message}"
    return f"{name}: {message}"


class Command(click.Command):
    """A click command with remomask's error contract (module docstring)."""

    def invoke(self, ctx: click.Context):  # noqa: D102
        return _guarded(super().invoke, ctx)

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):  # noqa: D102
        return _main(self, super().main, args, prog_name, complete_var, standalone_mode, extra)


class Group(click.Group):
    """A click group whose subcommands are :class:`Command` s and whose errors follow the same contract."""

    command_class = Command

    def invoke(self, ctx: click.Context):  # noqa: D102
        return _guarded(super().invoke, ctx)

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):  # noqa: D102
        return _main(self, super().main, args, prog_name, complete_var, standalone_mode, extra)


Group.group_class = Group


class LazyGroup(Group):
    """A group whose subcommands live in modules imported only when one of them runs.

    ``lazy`` maps a command name to ``("module:attribute", short help)``. Listing the commands
    (``--help``) imports nothing; running one imports its module alone.
    """

    def __init__(self, *args, lazy: dict[str, tuple[str, str]] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.lazy = dict(lazy or {})

    def list_commands(self, ctx: click.Context) -> list[str]:  # noqa: D102
        return sorted(set(super().list_commands(ctx)) | set(self.lazy))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:  # noqa: D102
        if name in self.lazy:
            import importlib

            module, attr = self.lazy[name][0].split(":")
            return getattr(importlib.import_module(module), attr)
        return super().get_command(ctx, name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:  # noqa: D102
        rows = [(name, short) for name, (_, short) in self.lazy.items()]
        rows += [(name, cmd.get_short_help_str()) for name, cmd in
                 ((n, Group.get_command(self, ctx, n)) for n in Group.list_commands(self, ctx)) if cmd is not None]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(sorted(rows))


def command(name: str | None = None, **kwargs):
    """``click.command`` with :class:`Command` (the error contract)."""
    return click.command(name, cls=Command, **kwargs)


def group(name: str | None = None, **kwargs):
    """``click.group`` with :class:`Group` (or ``cls=LazyGroup``)."""
    kwargs.setdefault("cls", Group)
    return click.group(name, **kwargs)


# -- parameter types ---------------------------------------------------------------------------------------
# Their messages read "must be ..., got X": the error line becomes "error: --option must be ..., got X".
class _Int(click.ParamType):
    """An integer in [``min``, ``max``] (either bound optional)."""

    name = "integer"

    def __init__(self, min: int | None = None, max: int | None = None) -> None:
        self.min, self.max = min, max

    def convert(self, value, param, ctx):  # noqa: D102
        if isinstance(value, bool):
            self.fail(f"must be an integer, got {value!r}", param, ctx)
        try:
            number = int(str(value).strip()) if not isinstance(value, int) else value
        except ValueError:
            self.fail(f"must be an integer, got {value!r}", param, ctx)
        if self.min is not None and self.max is not None and not self.min <= number <= self.max:
            self.fail(f"must be in {self.min}..{self.max}, got {number}", param, ctx)
        if self.min is not None and number < self.min:
            self.fail(f"must be >= {self.min}, got {number}", param, ctx)
        if self.max is not None and number > self.max:
            self.fail(f"must be <= {self.max}, got {number}", param, ctx)
        return number


def int_range(min: int | None = None, max: int | None = None) -> click.ParamType:
    """An integer option type bounded by ``min`` / ``max`` (inclusive)."""
    return _Int(min, max)


SEED = _Int(0, MAX_SEED)
"""A random seed: an integer in [0, 2**63 - 1]."""

POSITIVE = _Int(1)
"""A count of at least 1 (batch sizes, repeats, steps, threads)."""

NON_NEGATIVE = _Int(0)
"""A count of at least 0."""


class _Finite(click.ParamType):
    """A finite float (rejects nan and inf); ``min`` / ``max`` bound it, ``positive`` requires > 0."""

    name = "float"

    def __init__(self, min: float | None = None, positive: bool = False, max: float | None = None) -> None:
        self.min, self.positive, self.max = min, positive, max

    def convert(self, value, param, ctx):  # noqa: D102
        import math

        try:
            number = float(value)
        except (TypeError, ValueError):
            self.fail(f"must be a number, got {value!r}", param, ctx)
        if not math.isfinite(number):
            self.fail(f"must be a finite number, got {value}", param, ctx)
        if self.positive and number <= 0:
            self.fail(f"must be a positive number, got {number:g}", param, ctx)
        if self.min is not None and number < self.min:
            self.fail(f"must be >= {self.min:g}, got {number:g}", param, ctx)
        if self.max is not None and number > self.max:
            self.fail(f"must be <= {self.max:g}, got {number:g}", param, ctx)
        return number


FINITE = _Finite()
"""A finite float."""


def finite(min: float | None = None, positive: bool = False, max: float | None = None) -> click.ParamType:
    """A finite float option type, at least ``min`` and at most ``max`` (when given), > 0 when ``positive``."""
    return _Finite(min, positive, max)


class _Device(click.ParamType):
    """A torch device name: ``cpu``, ``cuda`` or ``cuda:N`` (availability is checked by :func:`check_device`)."""

    name = "device"

    def convert(self, value, param, ctx):  # noqa: D102
        text = str(value).strip().lower()
        head, _, index = text.partition(":")
        if head == "cpu" and not index or head == "cuda" and (not index or index.isdigit()):
            return text
        self.fail(f"must be cpu or cuda (cuda:N), got {value!r}", param, ctx)


DEVICE = _Device()
"""A device name, checked syntactically without importing torch."""


def check_device(device: str) -> str:
    """Check that ``device`` exists on this machine before any model loads.

    Raises:
        DeviceError: ``cuda`` on a machine (or torch build) without a CUDA GPU, or a GPU index out of range.
    """
    if not device.startswith("cuda"):
        return device
    import torch

    if not torch.cuda.is_available():
        raise DeviceError(f"--device {device}: this machine has no CUDA GPU that torch {torch.__version__} can use; "
                          "use --device cpu")
    _, _, index = device.partition(":")
    if index and int(index) >= torch.cuda.device_count():
        raise DeviceError(f"--device {device}: this machine has {torch.cuda.device_count()} CUDA GPU(s)")
    return device


def device_option(default: str = "cpu", help: str = "cpu or cuda (cuda:N).") -> click.Option:
    """The ``--device`` option (checked syntactically; call :func:`check_device` before loading models)."""
    return click.option("--device", type=DEVICE, default=default, show_default=True, help=help)


def threads_option(help: str = "torch CPU threads (1 is fastest on a shared CPU) [torch default].") -> click.Option:
    """The ``--threads`` option (>= 1)."""
    return click.option("--threads", type=POSITIVE, default=None, help=help)


def set_threads(threads: int | None) -> None:
    """Limit torch's CPU threads when ``threads`` is given."""
    if threads is not None:
        import torch

        torch.set_num_threads(int(threads))


def parse_sets(items: tuple[str, ...] | list[str]) -> dict:
    """``("latent_dim=256", "ssta=\\"linear\\"")`` -> ``{"latent_dim": 256, "ssta": "linear"}`` (values read as
    JSON, else kept as text).

    Raises:
        UsageError: an item without ``=`` or with an empty key.
    """
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--set takes KEY=VALUE (a config field), got {item!r}")
        try:
            out[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            out[key.strip()] = value
    return out


def command_line(canonical: str | None = None) -> str:
    """The command line that is running, for model cards: ``canonical`` (e.g. ``"remomask train tokenizer"``)
    followed by this command's own arguments, or ``argv`` as typed when ``canonical`` is None."""
    if canonical is None:
        return " ".join(shlex.quote(a) for a in [Path(sys.argv[0]).name, *sys.argv[1:]])
    ctx = click.get_current_context(silent=True)
    args = sys.argv[1:]
    if ctx is not None and ctx.info_name in args:
        args = args[args.index(ctx.info_name) + 1:]
    return " ".join([canonical, *(shlex.quote(a) for a in args)])
