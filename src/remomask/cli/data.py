"""``remomask data build | stats | export | import`` (docs/design.md §2; ``import`` lives in
:mod:`remomask.cli.caption`)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ._core import POSITIVE, fail, group

__all__ = ["data"]


@group("data")
def data() -> None:
    """Build, inspect and export motion datasets (HumanML3D layout)."""


@data.command("build")
@click.option("--raw", type=click.Path(path_type=Path), default=None,
              help="Folder with the raw mocap archives (bandai-namco-1/2.tar.xz, hdm05-subset.tar.xz, or unpacked) "
                   "[default: $REMOMASK_RAW].")
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Output folder [default: the package's assets/datasets/embedded].")
@click.option("--workers", type=POSITIVE, default=2, show_default=True, help="Processes.")
@click.option("--limit", type=POSITIVE, default=None, help="At most N clips per source (quick tests).")
def data_build(raw: Path | None, out: Path | None, workers: int, limit: int | None) -> None:
    """Build the embedded dataset from the raw mocap archives."""
    import os

    from ..data.build import BuildConfig, build_embedded_dataset
    from ..data.embedded import EMBEDDED_DIR

    if raw is None:
        if not os.environ.get("REMOMASK_RAW"):
            raise fail("pass --raw DIR, the folder with the raw mocap archives (Bandai-Namco, HDM05; listed in the "
                       "dataset card, assets/datasets/embedded/README.md), or set REMOMASK_RAW")
        raw = Path(os.environ["REMOMASK_RAW"])
    cfg = BuildConfig(raw=raw, out=out or EMBEDDED_DIR, workers=workers, limit=limit)
    stats = build_embedded_dataset(cfg)
    click.echo(f"built {stats['segments']} segments from {stats['clips']} clips "
               f"({stats['seconds'] / 3600:.2f} h) into {cfg.out}")


@data.command("stats")
@click.option("--dataset", default="embedded", show_default=True,
              help="'embedded' or the path of a HumanML3D / KIT-ML release folder.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def data_stats(dataset: str, as_json: bool) -> None:
    """Print clips, segments, frames, seconds, captions, label and split counts."""
    from ..data.stats import dataset_stats

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
def data_export(dataset: str, out: Path | None) -> None:
    """Materialise a dataset in the HumanML3D layout (features computed and cached)."""
    import shutil

    from ..data.embedded import resolve_dataset
    from ..files import replaced_folder

    if out is not None and out.exists():
        raise fail(f"{out} exists; choose a new folder")
    root = resolve_dataset(dataset)
    if out is None:
        click.echo(str(root))
        return
    with replaced_folder(out) as work:
        shutil.copytree(root, work, dirs_exist_ok=True)
    click.echo(str(out))


from .caption import data_import  # noqa: E402 - registered here, defined with the other captioning command

data.add_command(data_import, "import")
