"""``remomask assemble``: put trained stages into one pipeline folder (docs/design.md §8).

Every component defaults to the bundled model's, so a run replaces only the stages it names, e.g.
``remomask assemble --mask-transformer runs/mtrans/model --out my_pipeline``.
"""

from __future__ import annotations

from pathlib import Path

import click

from ._core import POSITIVE, command, fail, finite

__all__ = ["assemble"]


@command("assemble")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Pipeline folder to write.")
@click.option("--tokenizer", type=click.Path(path_type=Path), default=None, help="[default: the bundled model's]")
@click.option("--retriever", type=click.Path(path_type=Path), default=None,
              help="Retriever folder (ignored for a no-retrieval mask transformer) [default: the bundled model's].")
@click.option("--database", type=click.Path(path_type=Path), default=None,
              help="[default: the bundled model's with the bundled retriever, else <retriever>/database]")
@click.option("--mask-transformer", type=click.Path(path_type=Path), default=None,
              help="[default: the bundled model's]")
@click.option("--residual-transformer", type=click.Path(path_type=Path), default=None,
              help="[default: the bundled model's]")
@click.option("--length-estimator", type=click.Path(path_type=Path), default=None,
              help="[default: the bundled model's]")
@click.option("--captioner", type=click.Path(path_type=Path), default=None,
              help="A trained captioner folder (`remomask train captioner`) over the same tokenizer, retriever "
                   "and database, for `pipe.caption` and `remomask caption --captioner trained` [none].")
@click.option("--db-dtype", type=click.Choice(["float32", "float16"]), default="float32", show_default=True,
              help="Storage precision of the database embeddings (float16: half the size, for bundling).")
@click.option("--steps", type=POSITIVE, default=None, help="Default masked-decoding steps of the folder [10].")
@click.option("--cond-scale", type=finite(0.0), default=None, help="Default RAG-CFG scale of the folder [4].")
@click.option("--residual-cond-scale", type=finite(0.0), default=None, help="Default residual CFG scale [5].")
@click.option("--text-scale", type=finite(0.0), default=None,
              help="Default text-only guidance term of RAG-CFG's four-way form (docs/design.md §5.5) [0].")
@click.option("--retrieval-scale", type=finite(0.0), default=None,
              help="Default retrieval-only guidance term (docs/design.md §5.5) [0].")
@click.option("--retrieval-min-score", type=finite(0.0, max=1.0), default=None,
              help="Default similarity gate: prompts whose best neighbour scores below this cosine are generated "
                   "without retrieval (docs/design.md §4.10) [0 = off].")
def assemble(out, tokenizer, retriever, database, mask_transformer, residual_transformer, length_estimator, captioner,
             db_dtype,
             steps, cond_scale, residual_cond_scale, text_scale, retrieval_scale, retrieval_min_score) -> None:
    """Put trained components into one pipeline folder for `remomask generate --model`."""
    from ..bundled import PIPELINE_DIR
    from ..pipeline import ReMoMaskPipeline
    from .retrieve import resolve_retriever

    retriever, database = resolve_retriever(retriever, database)
    pipe = ReMoMaskPipeline.from_components(
        tokenizer=tokenizer or PIPELINE_DIR / "tokenizer", retriever=retriever, database=database,
        mask_transformer=mask_transformer or PIPELINE_DIR / "mask_transformer",
        residual_transformer=residual_transformer or PIPELINE_DIR / "residual_transformer",
        length_estimator=length_estimator or PIPELINE_DIR / "length_estimator")
    pipe.set_sampling_defaults(**{k: v for k, v in (("steps", steps), ("cond_scale", cond_scale),
                                                     ("residual_cond_scale", residual_cond_scale), ("text_scale", text_scale),
                                                     ("retrieval_scale", retrieval_scale),
                                                     ("retrieval_min_score", retrieval_min_score)) if v is not None})
    if captioner is not None:
        from ..captioning.trained_captioner import MotionCaptioner, load_captioner_model

        if pipe.retriever is None:
            raise fail("--captioner needs a retrieval pipeline (its retriever and database give the context)")
        model, vocab, meta = load_captioner_model(captioner)   # clear errors before anything is written
        MotionCaptioner(model, vocab, pipe.tokenizer, pipe.retriever, pipe.database, meta)   # fits these parts
        pipe.captioner_dir = captioner
    pipe.save_pretrained(out, db_dtype=db_dtype)
    click.echo(str(out))
