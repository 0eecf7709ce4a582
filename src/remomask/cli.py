"""The ``remomask`` command line.

It only parses arguments and calls the library; heavy modules (torch, the models) are imported
inside the commands so that ``remomask --help`` answers at once. Bad input ends with one clear line
on stderr and exit code 2.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

_DEFAULT_RAW = "../shared/data/raw"


class UsageFailure(click.ClickException):
    """A user error: printed as one line, exit code 2."""

    exit_code = 2

    def show(self, file=None) -> None:  # noqa: D102 - one clear line, no traceback
        click.echo(f"error: {self.format_message()}", err=True)


def _fail_on(*errors: type[BaseException]):
    """Turn the listed exceptions into one-line usage failures (exit 2)."""

    def wrap(fn):
        import functools

        @functools.wraps(fn)
        def inner(*args, **kwargs):
            try:
                return fn(*args, **kwargs)
            except errors as exc:  # type: ignore[misc]
                raise UsageFailure(str(exc)) from exc

        return inner

    return wrap


class LazyGroup(click.Group):
    """A click group whose subcommands live in stage modules, imported only when invoked.

    ``lazy`` maps a command name to ``("module:attribute", short help)`` of a click command.
    Listing the commands (``--help``) imports nothing; running one imports its module alone.
    """

    def __init__(self, *args, lazy: dict[str, tuple[str, str]] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.lazy = dict(lazy or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(self.lazy))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in self.lazy:
            import importlib

            module, attr = self.lazy[name][0].split(":")
            return getattr(importlib.import_module(module), attr)
        return super().get_command(ctx, name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, short) for name, (_, short) in self.lazy.items()]
        rows += [(name, cmd.get_short_help_str()) for name, cmd in
                 ((n, super(LazyGroup, self).get_command(ctx, n)) for n in super().list_commands(ctx))
                 if cmd is not None]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(sorted(rows))


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]}, lazy={
    "generate": ("remomask.generate_cli:generate", "Text to motion: joints, features, video, result.json."),
    "retrieve": ("remomask.retrieval.commands:retrieve", "Retrieve the database motions nearest to a text."),
    "assemble": ("remomask.generation.commands:assemble_pipeline",
                 "Assemble trained stages into one pipeline folder."),
    "export-bvh": ("remomask.export.commands:export_bvh_command",
                   "Write a motion .npy (joints or features) as a BVH file."),
})
@click.version_option(package_name="remomask")
def main() -> None:
    """remomask: retrieval-augmented masked text-to-motion generation (ReMoMask).

    Data commands work offline on the bundled dataset built from real mocap
    (Bandai-Namco, HDM05); see `remomask data --help`.
    """


# ---------------------------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------------------------
@main.group()
def data() -> None:
    """Build, inspect and export motion datasets (HumanML3D layout)."""


@data.command("build")
@click.option("--raw", type=click.Path(path_type=Path), default=_DEFAULT_RAW, show_default=True,
              help="Folder with bandai-namco-1/2.tar.xz and hdm05-subset.tar.xz (or unpacked).")
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Output folder [default: the package's assets/datasets/embedded].")
@click.option("--workers", type=int, default=2, show_default=True, help="Processes.")
@click.option("--limit", type=int, default=None, help="At most N clips per source (quick tests).")
@_fail_on(FileNotFoundError, ValueError)
def data_build(raw: Path, out: Path | None, workers: int, limit: int | None) -> None:
    """Build the embedded dataset from the raw mocap archives."""
    from .data.build import BuildConfig, build_embedded_dataset
    from .data.embedded import EMBEDDED_DIR

    cfg = BuildConfig(raw=raw, out=out or EMBEDDED_DIR, workers=workers, limit=limit)
    stats = build_embedded_dataset(cfg)
    click.echo(f"built {stats['segments']} segments from {stats['clips']} clips "
               f"({stats['seconds'] / 3600:.2f} h) into {cfg.out}")


@data.command("stats")
@click.option("--dataset", default="embedded", show_default=True,
              help="'embedded' or the path of a HumanML3D / KIT-ML release folder.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@_fail_on(FileNotFoundError, ValueError)
def data_stats(dataset: str, as_json: bool) -> None:
    """Print clips, segments, frames, seconds, captions, label and split counts."""
    from .data.stats import dataset_stats

    stats = dataset_stats(dataset)
    if as_json:
        click.echo(json.dumps(stats, sort_keys=True))
        return
    click.echo(f"dataset   {stats['path']}")
    for key in ("clips", "segments", "frames", "seconds", "captions"):
        click.echo(f"{key:<9} {stats[key]}")
    click.echo("splits    " + ", ".join(f"{k}: {v}" for k, v in stats["splits"].items()))
    labels = stats.get("labels", {})
    click.echo(f"labels    {len(labels)} action labels")
    width = max((len(k) for k in labels), default=0)
    for name, count in labels.items():
        click.echo(f"  {name:<{width}}  {count}")


@data.command("export")
@click.option("--dataset", default="embedded", show_default=True)
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Copy the HumanML3D-layout folder here (default: print the cache path).")
@_fail_on(FileNotFoundError, ValueError)
def data_export(dataset: str, out: Path | None) -> None:
    """Materialise a dataset in the HumanML3D layout (features computed and cached)."""
    import shutil

    from .data.embedded import resolve_dataset

    root = resolve_dataset(dataset)
    if out is None:
        click.echo(str(root))
        return
    if out.exists():
        raise UsageFailure(f"{out} exists; choose a new folder")
    shutil.copytree(root, out)
    click.echo(str(out))


# ---------------------------------------------------------------------------------------------
# stage commands (defined in each stage's `commands` module, imported only when run)
# ---------------------------------------------------------------------------------------------
@main.group(cls=LazyGroup, lazy={
    "tokenizer": ("remomask.tokenizer.commands:train_tokenizer", "2D residual VQ-VAE motion tokenizer."),
    "retriever": ("remomask.retrieval.commands:train_retriever", "Part-level text-motion retriever (HBM)."),
    "evaluator": ("remomask.evaluation.commands:train_evaluator", "Metric evaluator and label classifiers."),
    "mask-transformer": ("remomask.generation.commands:train_mask_transformer", "Masked transformer with SSTA (base layer)."),
    "residual-transformer": ("remomask.generation.commands:train_residual_transformer", "Residual transformer (layers 1..Q-1)."),
    "length-estimator": ("remomask.generation.commands:train_length_estimator", "Text to motion length."),
})
def train() -> None:
    """Train a stage (resumable, seeded; DDP under torchrun)."""


@main.group(cls=LazyGroup, lazy={
    "tokenizer": ("remomask.tokenizer.commands:evaluate_tokenizer", "Reconstruction MPJPE, codebook usage."),
    "retrieval": ("remomask.retrieval.commands:evaluate_retrieval", "R@k, MedR, label precision."),
    "t2m": ("remomask.evaluation.commands:evaluate_t2m", "R-precision, FID, MM-Dist, Diversity, MModality."),
})
def evaluate() -> None:
    """Score a stage with the project's evaluation protocol."""


@main.group(cls=LazyGroup, lazy={"build-db": ("remomask.retrieval.commands:build_db", "Build the FAISS retrieval database of a split.")})
def retriever() -> None:
    """Retrieval database tools."""
# ---------------------------------------------------------------------------------------------
# render
# ---------------------------------------------------------------------------------------------
@main.command("render")
@click.argument("motions", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("-o", "--out", type=click.Path(path_type=Path), required=True,
              help="Output .mp4 or .gif (or .png for a strip of frames).")
@click.option("--title", "titles", multiple=True, help="Caption per motion (repeat).")
@click.option("--fps", type=float, default=20.0, show_default=True)
@_fail_on(FileNotFoundError, ValueError)
def render(motions: tuple[Path, ...], out: Path, titles: tuple[str, ...], fps: float) -> None:
    """Render MOTIONS (.npy joints (T, 22, 3) or features (T, 263)) as a stick-figure video."""
    import numpy as np

    arrays = []
    for path in motions:
        if not path.is_file():
            raise UsageFailure(f"{path} does not exist")
        try:
            arrays.append(np.load(path, allow_pickle=False))
        except (ValueError, OSError) as exc:
            raise UsageFailure(f"{path} is not a readable .npy array ({exc})") from exc
    if titles and len(titles) != len(arrays):
        raise UsageFailure(f"give one --title per motion ({len(arrays)}), got {len(titles)}")
    from .render import render_motions, render_strip

    if out.suffix.lower() == ".png":
        if len(arrays) != 1:
            raise UsageFailure("a .png strip takes exactly one motion")
        render_strip(arrays[0], out, title=titles[0] if titles else None)
    else:
        render_motions(arrays, out, titles=list(titles) or None, fps=fps)
    click.echo(str(out))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
