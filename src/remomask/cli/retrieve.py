"""``remomask retrieve`` and ``remomask retriever build-db`` (docs/design.md §4.6, §4.7).

``--model`` takes a retriever folder or a pipeline folder (its ``retriever/`` and ``database/``); without
it, the bundled pipeline's retriever and database are used, so ``remomask retrieve "TEXT"`` works from a
fresh install.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from ._core import (POSITIVE, check_device, command, device_option, fail, group, int_range, set_threads,
                    threads_option)

__all__ = ["retrieve", "retriever", "build_db", "resolve_retriever"]

_MODEL_HELP = "Retriever folder, or a pipeline folder holding retriever/ and database/ [default: the bundled model]."


def resolve_retriever(model_dir: Path | None, database: Path | None) -> tuple[Path, Path]:
    """The retriever and database folders for ``--model`` / ``--database``.

    None means the bundled pipeline's; a pipeline folder (``pipeline.json``) means its ``retriever/`` and
    ``database/``; any other folder is a retriever whose database is ``<folder>/database``.
    """
    from ..bundled import DATABASE_DIR, RETRIEVER_DIR

    if model_dir is None:
        return RETRIEVER_DIR, database or DATABASE_DIR
    model_dir = Path(model_dir)
    if (model_dir / "pipeline.json").is_file():
        return model_dir / "retriever", database or model_dir / "database"
    return model_dir, database or model_dir / "database"


def _load(model_dir: Path | None, database: Path | None, device: str):
    from ..retrieval.database import RetrievalDatabase
    from ..retrieval.model import PartRetriever

    retriever_dir, db_dir = resolve_retriever(model_dir, database)
    model = PartRetriever.from_pretrained(retriever_dir, device=device)
    return model, RetrievalDatabase.load(db_dir, model=model)


@group("retriever")
def retriever() -> None:
    """Retrieval database tools."""


@retriever.command("build-db")
@click.option("--model", "model_dir", type=click.Path(path_type=Path), default=None, help=_MODEL_HELP)
@click.option("--dataset", default="embedded", show_default=True)
@click.option("--split", default="train", show_default=True)
@click.option("--index", type=click.Choice(["flat", "ivf", "hnsw"]), default="flat", show_default=True,
              help="flat = exact inner product; ivf / hnsw = approximate (large databases).")
@click.option("--nlist", type=POSITIVE, default=None, help="IVF cells [default: ~4 sqrt(N)].")
@click.option("--nprobe", type=POSITIVE, default=None, help="IVF cells searched.")
@click.option("--ef-search", type=POSITIVE, default=None, help="HNSW search breadth.")
@click.option("--min-length", type=int_range(0), default=0, show_default=True,
              help="Skip samples shorter (frames).")
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Database folder to write [default: MODEL/database; required without --model].")
@click.option("--dtype", type=click.Choice(["float32", "float16"]), default="float32", show_default=True,
              help="Storage precision of the embeddings: float16 halves the folder (cosine error ~1e-3; the "
                   "bundled databases use it).")
@click.option("--tokenizer", "tokenizer_dir", type=click.Path(path_type=Path), default=None,
              help="Trained tokenizer folder: also store its base-layer token grids of the entries' motions, read "
                   "by masked transformers with retrieval_form='tokens' (docs/design.md §4.8).")
@device_option()
@threads_option()
def build_db(model_dir, dataset, split, index, nlist, nprobe, ef_search, min_length, out, dtype, tokenizer_dir,
             device, threads) -> None:
    """Build the retrieval database of a split with a trained retriever (docs/design.md §4.6, §4.8)."""
    from ..retrieval.encode import build_database
    from ..retrieval.model import PartRetriever

    if out is None and model_dir is None:
        raise fail("give --out DIR for the database (the bundled model's folder is not to be overwritten), "
                   "or --model DIR to write DIR/database")
    check_device(device)
    set_threads(threads)
    retriever_dir, _ = resolve_retriever(model_dir, None)
    params = {k: v for k, v in (("nlist", nlist), ("nprobe", nprobe), ("ef_search", ef_search)) if v is not None}
    model = PartRetriever.from_pretrained(retriever_dir, device=device)
    db = build_database(model, dataset, split, index=index, index_params=params, min_length=min_length)
    if tokenizer_dir is not None:
        from ..retrieval.tokens import add_tokens
        from ..tokenizer import MotionTokenizer

        tokenizer = MotionTokenizer.from_pretrained(tokenizer_dir, map_location=device).eval()
        add_tokens(db, tokenizer, tokenizer_name=Path(tokenizer_dir).name)
    folder = db.save(out or resolve_retriever(model_dir, None)[1], dtype=dtype)
    click.echo(f"{len(db)} entries ({db.num_motions} motions, {db.dim}-d, index {index}) -> {folder}")


@command("retrieve")
@click.argument("text")
@click.option("-k", "k", type=POSITIVE, default=5, show_default=True, help="Distinct motions to return.")
@click.option("--model", "model_dir", type=click.Path(path_type=Path), default=None, help=_MODEL_HELP)
@click.option("--database", type=click.Path(path_type=Path), default=None,
              help="Database folder [default: the model's].")
@click.option("--exclude", multiple=True, help="Motion id not to return (repeat).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--render", "render_dir", type=click.Path(path_type=Path), default=None,
              help="Write a stick-figure video of each retrieved motion into this folder.")
@device_option()
def retrieve(text, k, model_dir, database, exclude, as_json, render_dir, device) -> None:
    """Retrieve the K training motions closest to TEXT (docs/design.md §4.7): captions, ids and scores."""
    text = text.replace("\ufeff", "").strip()
    if not text:
        raise fail("TEXT is empty; give a description such as \"a person walks forward\"")
    if render_dir is not None and render_dir.exists() and not render_dir.is_dir():
        raise fail(f"--render {render_dir} is a file; give a folder")
    check_device(device)
    model, db = _load(model_dir, database, device)
    res = db.search_text([text], model, k, exclude=[list(exclude)] if exclude else None)
    hits = res.hits[0]
    videos = _render_hits(hits, db, render_dir) if render_dir is not None else []
    if as_json:
        payload = {"query": text, "k": k, "results": [h.to_dict() for h in hits]}
        for item, v in zip(payload["results"], videos):
            item["video"] = str(v)
        click.echo(json.dumps(payload))
        return
    for rank, h in enumerate(hits, 1):
        click.echo(f"{rank:>2}  {h.score:.3f}  {h.motion_id:<10} {h.caption}")
    for v in videos:
        click.echo(str(v))


def _render_hits(hits, db, out_dir: Path) -> list[Path]:
    """Render each hit's motion segment into ``out_dir`` (``NN_<entry>.mp4``)."""
    import numpy as np

    from ..data.embedded import resolve_dataset
    from ..render import render_motions

    root = Path(db.info.get("root", ""))
    if not (root / "new_joint_vecs").is_dir():
        root = resolve_dataset(db.info.get("dataset", "embedded"))
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for rank, h in enumerate(hits, 1):
        src = root / "new_joint_vecs" / f"{h.motion_id}.npy"
        if not src.is_file():
            raise fail(f"{src} is missing: the database's dataset is not available here")
        feats = np.load(src)[h.start: h.end]
        safe = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in h.entry_id)
        paths.append(render_motions([feats], out_dir / f"{rank:02d}_{safe}.mp4",
                                    titles=[f"#{rank} {h.score:.3f}: {h.caption}"]))
    return paths
