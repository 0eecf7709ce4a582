"""Click commands of the generation stage: ``remomask train mask-transformer``, ``remomask train
residual-transformer`` and ``remomask train length-estimator`` (spec 5.7, 6.3, 7).

Only ``click`` is imported at module level; torch and the models are imported inside the commands. For
DDP (and before the commands are registered in ``remomask.cli``) the module runs on its own::

    torchrun --nproc_per_node 2 -m remomask.generation.commands mask-transformer --out runs/mtrans_ddp
    python -m remomask.generation.commands length-estimator --iterations 100

User errors (missing tokenizer / retriever / dataset, bad options) print one line ``error: ...`` and
exit with code 2.
"""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

import click

from ..cli import UsageFailure as _UsageError  # user errors: one line ``error: ...``, exit code 2

__all__ = ["train_mask_transformer", "train_residual_transformer", "train_length_estimator", "assemble_pipeline"]


def _user_errors():
    from ..data.layout import DatasetError
    from ..retrieval.database import DatabaseError
    from ..retrieval.model import RetrieverLoadError
    from ..text import TextEncoderError
    from .pretrained import CheckpointError

    return (FileNotFoundError, ValueError, DatasetError, DatabaseError, RetrieverLoadError, TextEncoderError,
            CheckpointError)


def _parse_sets(items: tuple[str, ...]) -> dict:
    """``("latent_dim=256", "ssta_layers=4")`` -> {"latent_dim": 256, "ssta_layers": 4} (values read as JSON)."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise _UsageError(f"--set takes KEY=VALUE (a model config field), got {item!r}")
        try:
            out[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            out[key.strip()] = value
    return out


def _command_line() -> str:
    return " ".join(shlex.quote(a) for a in [Path(sys.argv[0]).name, *sys.argv[1:]])


def _common(fn):
    """Options shared by the three training commands."""
    options = [
        click.option("--dataset", default="embedded", show_default=True,
                     help="'embedded' or a HumanML3D-layout folder."),
        click.option("--out", type=click.Path(path_type=Path), default=None,
                     help="Run folder: checkpoint.pt, tb/ (TensorBoard), model/ (selected on val) [preset]."),
        click.option("--preset", type=click.Choice(["cpu", "paper"]), default="cpu", show_default=True,
                     help="Model size and schedule."),
        click.option("--iterations", type=int, default=None, help="Total iterations [preset]."),
        click.option("--batch-size", type=int, default=None, help="Crops per process per step [preset]."),
        click.option("--lr", type=float, default=None, help="Peak learning rate [preset]."),
        click.option("--warmup", type=int, default=None, help="Warm-up iterations [preset]."),
        click.option("--milestones", default=None, help="Comma-separated decay iterations [preset]."),
        click.option("--eval-every", type=int, default=None, help="Validate every N iterations [preset]."),
        click.option("--checkpoint-every", type=int, default=None, help="Checkpoint every N iterations [preset]."),
        click.option("--val-max-samples", type=int, default=None, help="Validate on at most N val samples."),
        click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
                     help="Override a model config field (repeatable), e.g. --set latent_dim=256."),
        click.option("--seed", type=int, default=3407, show_default=True),
        click.option("--device", default="cpu", show_default=True, help="cpu or cuda."),
        click.option("--amp/--no-amp", default=False, show_default=True, help="bf16 autocast on CUDA."),
        click.option("--threads", type=int, default=None,
                     help="torch CPU threads per process (1 is fastest on a shared CPU) [torch default]."),
        click.option("--resume/--no-resume", default=True, show_default=True,
                     help="Continue from <out>/checkpoint.pt when it exists."),
        click.option("--progress/--no-progress", default=True, show_default=True),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def _tokenizer_options(fn):
    fn = click.option("--token-cache-dir", type=click.Path(path_type=Path), default=None,
                      help="Folder of the crop-token caches [default: $REMOMASK_CACHE/generation_tokens].")(fn)
    fn = click.option("--tokens", type=click.Choice(["cache", "online"]), default=None,
                      help="Crop tokens from a phase cache (CPU) or encoded online (GPU) [preset].")(fn)
    fn = click.option("--tokenizer", type=click.Path(path_type=Path), default=Path("runs/tokenizer_cpu/model"),
                      show_default=True, help="Trained tokenizer folder.")(fn)
    return fn


def _run(kind: str, *, preset, out, milestones, sets, **fields) -> None:
    try:
        from .train import GenerationTrainConfig, train_generation

        ms = tuple(int(m) for m in milestones.split(",")) if milestones else None
        for key in ("tokenizer", "retriever", "database", "token_cache_dir"):
            if fields.get(key) is not None:
                fields[key] = str(fields[key])
        cfg = GenerationTrainConfig.preset_defaults(kind, preset, out=str(out) if out else None, milestones=ms,
                                                    model_overrides=_parse_sets(sets), command=_command_line(),
                                                    **fields)
        model_dir = train_generation(cfg)
    except _user_errors() as exc:
        raise _UsageError(str(exc)) from exc
    click.echo(f"model selected on val: {model_dir}")


@click.command("mask-transformer")
@_common
@_tokenizer_options
@click.option("--retriever", type=click.Path(path_type=Path), default=Path("runs/retriever_cpu/model"),
              show_default=True, help="Trained retriever folder (its database in <retriever>/database).")
@click.option("--database", type=click.Path(path_type=Path), default=None,
              help="Retrieval database folder [default: <retriever>/database].")
@click.option("--retrieval/--no-retrieval", default=True, show_default=True,
              help="--no-retrieval trains the MoMask-style baseline with the same architecture.")
@click.option("--exclude-self/--no-exclude-self", default=True, show_default=True,
              help="At training time the database skips the sample's own motion (remomask default).")
@click.option("--retrieval-k", type=int, default=1, show_default=True, help="Retrieved entries per prompt.")
@click.option("--ssta", type=click.Choice(["eccv", "linear"]), default="eccv", show_default=True,
              help="SSTA form: the paper's softmax attention or the public code's linear attention.")
@click.option("--text-value/--no-text-value", default=False, show_default=True,
              help="ECCV SSTA: also put the text token in the values.")
def train_mask_transformer(dataset, out, preset, iterations, batch_size, lr, warmup, milestones, eval_every,
                           checkpoint_every, val_max_samples, sets, seed, device, amp, threads, resume, progress,
                           tokenizer, tokens, token_cache_dir, retriever, database, retrieval, exclude_self,
                           retrieval_k, ssta, text_value) -> None:
    """Train the retrieval-augmented masked transformer of the base token layer (spec 5)."""
    if out is None and not retrieval:
        out = Path(f"runs/mask_transformer_norag_{preset}")
    _run("mask", preset=preset, out=out, milestones=milestones, sets=sets, dataset=dataset, iterations=iterations,
         batch_size=batch_size, lr=lr, warmup=warmup, eval_every=eval_every, checkpoint_every=checkpoint_every,
         val_max_samples=val_max_samples, seed=seed, device=device, amp=amp, threads=threads, resume=resume,
         progress=progress, tokenizer=tokenizer, tokens=tokens, token_cache_dir=token_cache_dir,
         retriever=retriever if retrieval else None,
         database=database, use_retrieval=retrieval, exclude_self=exclude_self, retrieval_k=retrieval_k,
         ssta=ssta, text_value=text_value)


@click.command("residual-transformer")
@_common
@_tokenizer_options
@click.option("--text-encoder", type=click.Choice(["minilm", "clip"]), default="minilm", show_default=True,
              help="Frozen text encoder (the one the retriever uses).")
@click.option("--init-from-codebooks/--no-init-from-codebooks", default=False, show_default=True,
              help="Start the embedding tables from the tokenizer codebooks (code_dim = the tokenizer's).")
def train_residual_transformer(dataset, out, preset, iterations, batch_size, lr, warmup, milestones, eval_every,
                               checkpoint_every, val_max_samples, sets, seed, device, amp, threads, resume, progress,
                               tokenizer, tokens, token_cache_dir, text_encoder, init_from_codebooks) -> None:
    """Train the residual transformer of quantiser layers 1..Q-1 (spec 6)."""
    _run("residual", preset=preset, out=out, milestones=milestones, sets=sets, dataset=dataset,
         iterations=iterations, batch_size=batch_size, lr=lr, warmup=warmup, eval_every=eval_every,
         checkpoint_every=checkpoint_every, val_max_samples=val_max_samples, seed=seed, device=device, amp=amp,
         threads=threads, resume=resume, progress=progress, tokenizer=tokenizer, tokens=tokens,
         token_cache_dir=token_cache_dir, text_encoder=text_encoder, init_from_codebooks=init_from_codebooks)


@click.command("length-estimator")
@_common
@click.option("--text-encoder", type=click.Choice(["minilm", "clip"]), default="minilm", show_default=True,
              help="Frozen text encoder (the one the retriever uses).")
def train_length_estimator(dataset, out, preset, iterations, batch_size, lr, warmup, milestones, eval_every,
                           checkpoint_every, val_max_samples, sets, seed, device, amp, threads, resume, progress,
                           text_encoder) -> None:
    """Train the length estimator: caption -> motion length in tokens (spec 7)."""
    _run("length", preset=preset, out=out, milestones=milestones, sets=sets, dataset=dataset,
         iterations=iterations, batch_size=batch_size, lr=lr, warmup=warmup, eval_every=eval_every,
         checkpoint_every=checkpoint_every, val_max_samples=val_max_samples, seed=seed, device=device, amp=amp,
         threads=threads, resume=resume, progress=progress, text_encoder=text_encoder)


@click.command("assemble")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Pipeline folder to write.")
@click.option("--tokenizer", type=click.Path(path_type=Path), default=Path("runs/tokenizer_cpu/model"),
              show_default=True)
@click.option("--retriever", type=click.Path(path_type=Path), default=Path("runs/retriever_cpu/model"),
              show_default=True, help="Retriever folder (ignored for a no-retrieval mask transformer).")
@click.option("--database", type=click.Path(path_type=Path), default=None,
              help="[default: <retriever>/database]")
@click.option("--mask-transformer", type=click.Path(path_type=Path),
              default=Path("runs/mask_transformer_cpu/model"), show_default=True)
@click.option("--residual-transformer", type=click.Path(path_type=Path),
              default=Path("runs/residual_transformer_cpu/model"), show_default=True)
@click.option("--length-estimator", type=click.Path(path_type=Path),
              default=Path("runs/length_estimator_cpu/model"), show_default=True)
@click.option("--db-dtype", type=click.Choice(["float32", "float16"]), default="float32", show_default=True,
              help="Storage precision of the database embeddings (float16: half the size, for bundling).")
@click.option("--steps", type=int, default=None, help="Default masked-decoding steps of the folder [10].")
@click.option("--cond-scale", type=float, default=None, help="Default RAG-CFG scale of the folder [4].")
@click.option("--residual-cond-scale", type=float, default=None, help="Default residual CFG scale [5].")
def assemble_pipeline(out, tokenizer, retriever, database, mask_transformer, residual_transformer,
                      length_estimator, db_dtype, steps, cond_scale, residual_cond_scale) -> None:
    """Put trained components into one pipeline folder for `remomask generate --model`."""
    try:
        from ..pipeline import ReMoMaskPipeline

        pipe = ReMoMaskPipeline.from_components(
            tokenizer=tokenizer, retriever=retriever, database=database, mask_transformer=mask_transformer,
            residual_transformer=residual_transformer, length_estimator=length_estimator)
        pipe.set_sampling_defaults(**{k: v for k, v in (("steps", steps), ("cond_scale", cond_scale),
                                                         ("residual_cond_scale", residual_cond_scale))
                                      if v is not None})
        pipe.save_pretrained(out, db_dtype=db_dtype)
    except _user_errors() as exc:
        raise _UsageError(str(exc)) from exc
    click.echo(str(out))


@click.group()
def _standalone() -> None:
    """Generation training commands (standalone entry point, e.g. under torchrun)."""


for _cmd in (train_mask_transformer, train_residual_transformer, train_length_estimator, assemble_pipeline):
    _standalone.add_command(_cmd)

if __name__ == "__main__":
    _standalone()
