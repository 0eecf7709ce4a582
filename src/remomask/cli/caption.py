"""``remomask caption`` and ``remomask data import`` (motion to text; docs/design.md §4.6, §4.7, §11).

Both take motion files or folders (a folder = its ``.bvh``, ``.npy`` and ``.npz`` files, sorted by name),
read every motion and check the outputs **before** any model loads, so a bad file or an unwritable output
is one ``error:`` line (exit 2) without waiting for the model.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import click

from ._core import POSITIVE, check_device, command, device_option, fail, int_range, set_threads, threads_option

__all__ = ["caption", "data_import", "check_output_file"]

_MODEL_HELP = ("Retriever folder, or a pipeline folder holding retriever/ and database/ "
               "[default: the bundled model].")
_DATABASE_HELP = "Database folder whose captions are used [default: the model's]."


def check_output_file(out: Path, option: str = "--out") -> None:
    """Refuse an output file that cannot be written, before any work: a folder, a parent that is a file, or
    a parent folder without write permission.

    Raises:
        UsageFailure: the one-line ``error:`` of the command line.
    """
    if out.is_dir():
        raise fail(f"{option} {out} is a directory; give a file name such as captions.jsonl")
    parent = out.parent if str(out.parent) else Path(".")
    for folder in (parent, *parent.parents):
        if folder.exists():
            if not folder.is_dir():
                raise fail(f"{option} {out}: {folder} is a file, not a folder")
            if not os.access(folder, os.W_OK | os.X_OK):
                raise fail(f"{option} {out}: cannot write to {folder} (permission denied or read-only)")
            break


def _motion_files(motions: tuple[str, ...]):
    """Expanded paths, whether a folder was given, and every motion loaded (all checked before models load)."""
    from tqdm.auto import tqdm

    from ..captioning.library import motion_paths
    from ..data.motion_file import load_motion_file

    paths = motion_paths(list(motions))
    folder = any(Path(m).is_dir() for m in motions)
    # a bar for folders, on a terminal only (tqdm's disable=None)
    loaded = [load_motion_file(p) for p in tqdm(paths, desc="read", unit="file", disable=None if folder else True)]
    return paths, folder, loaded


@command("caption")
@click.argument("motions", nargs=-1, required=True, metavar="MOTION...", type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Write JSON lines here (one object per motion: file, caption, top_k with scores and database "
                   "entries) instead of printing.")
@click.option("--top-k", "top_k", type=POSITIVE, default=1, show_default=True,
              help="Distinct captions per motion (printed separated by ' | ').")
@click.option("--target", type=click.Choice(["text", "motion"]), default="text", show_default=True,
              help="Retrieval captioner: compare with the database's caption embeddings (m2t) or its motion "
                   "embeddings.")
@click.option("--captioner", "kind", type=click.Choice(["retrieval", "trained"]), default="retrieval",
              show_default=True, help="retrieval: the nearest database caption; trained: a new sentence from the "
                                      "trained retrieval-augmented captioner (docs/captioning.md).")
@click.option("--beam", type=POSITIVE, default=1, show_default=True,
              help="Trained captioner: beam size (1 = greedy).")
@click.option("--no-retrieval", is_flag=True, help="Trained captioner: decode without its retrieval context.")
@click.option("--model", "model_dir", type=click.Path(path_type=Path), default=None,
              help=_MODEL_HELP + " With --captioner trained: a trained captioner folder "
                                 "[default: the bundled one].")
@click.option("--database", type=click.Path(path_type=Path), default=None, help=_DATABASE_HELP)
@device_option()
@threads_option()
def caption(motions, out, top_k, target, kind, beam, no_retrieval, model_dir, database, device, threads) -> None:
    """Caption motions: MOTION is a .bvh, a .npy / .npz of joints (T, 22, 3) metres or features (T, 263), or a
    folder of them. Prints 'FILE: CAPTION' per motion, or writes JSON lines with --out.

    The default captioner is the retrieval baseline: the part-level retriever's motion tower and the nearest
    captions of its database (TMR-style motion-to-text retrieval). --captioner trained writes a new sentence
    with the trained captioner (motion tokens + the retrieved caption and motion, ReMoGPT-style). Motions
    longer than 11.2 s are described by their start.
    """
    from tqdm.auto import tqdm

    if out is not None:
        check_output_file(out)
    check_device(device)
    if kind == "trained" and (top_k != 1 or target != "text"):
        raise fail("--top-k and --target belong to --captioner retrieval; the trained captioner writes one caption "
                   "(use --beam N for beam search)")
    if kind == "retrieval" and (beam != 1 or no_retrieval):
        raise fail("--beam and --no-retrieval belong to --captioner trained")
    if kind == "trained" and model_dir is not None and not (Path(model_dir) / "config.json").is_file():
        raise fail(f"--model {model_dir} is not a trained captioner folder (no config.json); train one with "
                   "'remomask train captioner' or leave --model out")
    paths, folder, loaded = _motion_files(motions)
    set_threads(threads)
    if kind == "trained":
        from ..captioning import MotionCaptioner

        captioner = MotionCaptioner.from_pretrained(model_dir, database=database, device=device)
        run = lambda part: captioner.caption_results(part, beam=beam, retrieval=not no_retrieval)  # noqa: E731
    else:
        from ..captioning import RetrievalCaptioner

        captioner = RetrievalCaptioner.from_pretrained(model_dir, database=database, device=device, target=target)
        run = lambda part: captioner.caption_results(part, top_k=top_k)  # noqa: E731
    results = []
    step = 64
    with tqdm(total=len(loaded), desc="caption", unit="motion", disable=None if folder else True) as bar:
        for s in range(0, len(loaded), step):
            results += run(loaded[s: s + step])
            bar.update(len(loaded[s: s + step]))
    if out is not None:
        from ..files import atomic_write_text

        atomic_write_text(out, "".join(json.dumps(r.to_dict()) + "\n" for r in results))
        click.echo(f"{len(results)} caption(s) -> {out}")
        return
    for r in results:
        click.echo(f"{r.source}: {' | '.join(getattr(r, 'captions', None) or [r.caption])}")


@command("import")
@click.argument("motions", nargs=-1, required=True, metavar="MOTION...", type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), required=True,
              help="Dataset folder to write (HumanML3D layout; must not exist).")
@click.option("--captions", "captions_per_motion", type=int_range(1, 20), default=3, show_default=True,
              help="Distinct retrieved captions per motion (or per segment of a long motion).")
@click.option("--segment-seconds", type=click.FloatRange(0.05, 11.2), default=10.0, show_default=True,
              help="Motions longer than 11.2 s are captioned in windows of this length.")
@click.option("--model", "model_dir", type=click.Path(path_type=Path), default=None, help=_MODEL_HELP)
@click.option("--database", type=click.Path(path_type=Path), default=None, help=_DATABASE_HELP)
@device_option()
@threads_option()
def data_import(motions, out, captions_per_motion, segment_seconds, model_dir, database, device, threads) -> None:
    """Import your own motions (BVH files, .npy / .npz joints or features, or folders of them) as a captioned
    dataset in the HumanML3D layout; index it with 'remomask retriever build-db --dataset OUT --split all'.
    """
    from ..captioning import RetrievalCaptioner, import_motions
    from ..constants import FPS

    if out.exists():
        raise fail(f"--out {out} exists; choose a new folder for the dataset")
    check_output_file(out)
    check_device(device)
    _, folder, loaded = _motion_files(motions)
    set_threads(threads)
    captioner = RetrievalCaptioner.from_pretrained(model_dir, database=database, device=device)
    summary = import_motions(loaded, out, captioner=captioner, captions_per_motion=captions_per_motion,
                             segment_frames=max(1, int(round(segment_seconds * FPS))), progress=folder)
    click.echo(f"imported {len(summary.ids)} motion(s), {summary.seconds:.1f} s, {summary.segments} captioned "
               f"span(s) -> {summary.folder}")
    click.echo(f"next: remomask retriever build-db --dataset {summary.folder} --split all --out DB_FOLDER")
