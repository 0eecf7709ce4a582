"""``remomask train tokenizer | retriever | evaluator | mask-transformer | residual-transformer |
length-estimator`` (docs/design.md §3-§7, §10).

Every run is resumable (``<out>/checkpoint.pt``), seeded, and selects its model on ``val``. Components a
stage depends on (tokenizer, retriever, database) default to the bundled model's. For DDP run the same
command line under torchrun: ``torchrun --nproc_per_node 2 -m remomask.cli train tokenizer --out DIR``.
"""

from __future__ import annotations

import os
from pathlib import Path

import click

from ._core import (POSITIVE, SEED, check_device, command_line, device_option, finite, group, int_range, parse_sets,
                    set_threads, threads_option)

__all__ = ["train"]


@group("train")
def train() -> None:
    """Train a stage (resumable, seeded; DDP under torchrun)."""


def _balance_option(fn):
    return click.option("--balance-alpha", type=finite(0.0), default=None,
                        help="Draw train samples by action in proportion to count ** ALPHA (0-1; 1 = uniform over "
                             "samples, 0 = every action equally often) [1].")(fn)


def _run_options(fn):
    """--seed, --balance-alpha, --device, --threads, --resume/--no-resume and --progress/--no-progress."""
    for option in reversed([
            click.option("--seed", type=SEED, default=3407, show_default=True), _balance_option, device_option(),
            threads_option(), click.option("--resume/--no-resume", default=True, show_default=True,
                                           help="Continue from <out>/checkpoint.pt when it exists."),
            click.option("--progress/--no-progress", default=True, show_default=True)]):
        fn = option(fn)
    return fn


def _milestones(text: str | None) -> tuple[int, ...] | None:
    from ..errors import UsageError

    if not text:
        return None
    try:
        return tuple(int(m) for m in text.split(","))
    except ValueError:
        raise UsageError(f"--milestones takes comma-separated iterations, e.g. 4500,5500; got {text!r}") from None


# -- tokenizer -------------------------------------------------------------------------------------------------
@train.command("tokenizer")
@click.option("--dataset", default="embedded", show_default=True, help="'embedded' or a HumanML3D-layout folder.")
@click.option("--out", type=click.Path(path_type=Path), default=Path("runs/tokenizer_cpu"), show_default=True,
              help="Run folder: checkpoint.pt, tb/ (TensorBoard), model/ (selected on val).")
@click.option("--preset", type=click.Choice(["cpu", "paper"]), default="cpu", show_default=True)
@click.option("--branches", type=click.Choice(["1d,2d", "2d"]), default="1d,2d", show_default=True,
              help="Dual 1D + 2D branch (default; measured better) or a single 2D branch.")
@click.option("--iterations", type=POSITIVE, default=None, help="Total iterations [preset].")
@click.option("--batch-size", type=POSITIVE, default=None, help="Windows per process per step [preset].")
@click.option("--lr", type=finite(0.0), default=None, help="Peak learning rate [preset].")
@click.option("--warmup", type=int_range(0), default=None, help="Warm-up iterations [preset].")
@click.option("--milestones", default=None, help="Comma-separated decay iterations [preset].")
@click.option("--eval-every", type=POSITIVE, default=None, help="Validate every N iterations [preset].")
@click.option("--val-max-clips", type=POSITIVE, default=None, help="Validate on at most N val clips.")
@click.option("--width", type=POSITIVE, default=None, help="Override the preset's conv width.")
@_run_options
def train_tokenizer(dataset, out, preset, branches, iterations, batch_size, lr, warmup, milestones, eval_every,
                    val_max_clips, width, seed, balance_alpha, device, threads, resume, progress) -> None:
    """Train the 2D residual VQ-VAE motion tokenizer (docs/design.md §3)."""
    from ..tokenizer.train import TrainConfig, train_tokenizer as run

    check_device(device)
    cfg = TrainConfig.preset_defaults(
        preset, dataset=dataset, out=str(out), branches=tuple(branches.split(",")), iterations=iterations,
        batch_size=batch_size, lr=lr, warmup=warmup, milestones=_milestones(milestones), eval_every=eval_every,
        val_max_clips=val_max_clips, seed=seed, balance_alpha=balance_alpha, device=device, threads=threads,
        resume=resume, progress=progress, model_overrides={"width": width} if width else None,
        command=command_line("remomask train tokenizer"))
    click.echo(f"model selected on val: {run(cfg)}")


@train.command("tokenizer-decoder")
@click.option("--tokenizer", type=click.Path(path_type=Path), default=None,
              help="Trained tokenizer folder to refine [default: the bundled model's].")
@click.option("--out", type=click.Path(path_type=Path), default=Path("runs/tokenizer_refined"), show_default=True,
              help="Run folder: checkpoint.pt, tb/ (TensorBoard), model/ (selected on val).")
@click.option("--dataset", default="embedded", show_default=True, help="'embedded' or a HumanML3D-layout folder.")
@click.option("--iterations", type=POSITIVE, default=3000, show_default=True)
@click.option("--batch-size", type=POSITIVE, default=32, show_default=True)
@click.option("--lr", type=finite(positive=True), default=1e-4, show_default=True, help="Start of the cosine decay.")
@click.option("--window", "window_size", type=int_range(4), default=196, show_default=True,
              help="Frames per training window.")
@click.option("--joint-weight", type=finite(0.0), default=15.0, show_default=True,
              help="Weight of the pelvis-aligned joint error (metres).")
@click.option("--depth-dropout", type=finite(0.0), default=0.0, show_default=True,
              help="Probability of decoding a window from its first q < Q layers only (robustness for generation).")
@click.option("--id-noise", type=finite(0.0), default=0.0, show_default=True,
              help="Probability of replacing each id after the first layer by a random code.")
@click.option("--generated-from", type=click.Path(path_type=Path), default=None,
              help="Pipeline folder whose residual transformer samples the fine layers of --generated-rate.")
@click.option("--generated-rate", type=finite(0.0), default=0.0, show_default=True,
              help="Share of every batch decoded from generated fine layers (needs --generated-from).")
@click.option("--generated-pool", type=POSITIVE, default=3000, show_default=True,
              help="Windows with generated fine layers, drawn once (2 samples each).")
@click.option("--eval-every", type=POSITIVE, default=250, show_default=True)
@_run_options
def train_tokenizer_decoder(tokenizer, out, dataset, iterations, batch_size, lr, window_size, joint_weight, depth_dropout,
                            id_noise, generated_from, generated_rate, generated_pool, eval_every,
                            seed, balance_alpha, device, threads, resume, progress) -> None:
    """Refine a trained tokenizer's decoder; the token ids stay the same (docs/design.md §3.5).

    Encoders and codebooks are frozen, so generators, the database's token grids and the captioner trained on
    the tokenizer's ids stay valid; only the reconstruction of the ids improves.
    """
    from ..bundled import TOKENIZER_DIR
    from ..tokenizer.refine import RefineConfig, refine_decoder

    check_device(device)
    if generated_rate > 1:
        raise click.BadParameter(f"{generated_rate} is not in [0, 1]", param_hint="--generated-rate")
    if generated_rate > 0 and generated_from is None:
        raise click.UsageError("--generated-rate needs --generated-from PIPELINE (its residual transformer)")
    sampler = None
    if generated_rate > 0:  # the pipeline layer builds the sampler; the tokenizer stage only calls it
        from ..generation.data import tokenizer_fingerprint
        from ..pipeline import ReMoMaskPipeline
        from ..pipeline.refine import residual_sampler
        from ..tokenizer import MotionTokenizer

        pipe = ReMoMaskPipeline.from_pretrained(generated_from).to(device)
        if tokenizer_fingerprint(pipe.tokenizer) != tokenizer_fingerprint(
                MotionTokenizer.from_pretrained(tokenizer or TOKENIZER_DIR)):
            raise click.UsageError(f"{generated_from} generates the ids of another tokenizer than the one refined")
        sampler = residual_sampler(pipe)
    cfg = RefineConfig(tokenizer=str(tokenizer or TOKENIZER_DIR), dataset=dataset, out=str(out), iterations=iterations,
                       batch_size=batch_size, lr=lr, window_size=window_size, joint_weight=joint_weight,
                       depth_dropout=depth_dropout, id_noise=id_noise, generated_rate=generated_rate,
                       generated_pool=generated_pool, generated_from=str(generated_from or ""),
                       balance_alpha=0.5 if balance_alpha is None else balance_alpha, eval_every=eval_every,
                       checkpoint_every=eval_every, seed=seed, device=device, threads=threads, resume=resume,
                       progress=progress, command=command_line("remomask train tokenizer-decoder"))
    click.echo(f"model selected on val: {refine_decoder(cfg, sampler)}")


# -- retriever -------------------------------------------------------------------------------------------------
@train.command("retriever")
@click.option("--config", "config_path", type=click.Path(path_type=Path), default=None,
              help="JSON file of RetrieverConfig fields (overrides the preset).")
@click.option("--preset", type=click.Choice(["cpu", "paper"]), default=None, help="Base settings [default: cpu].")
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Run folder [default: runs/retriever_<preset>].")
@click.option("--dataset", default=None, help="'embedded' or a HumanML3D-layout folder.")
@click.option("--epochs", type=POSITIVE, default=None)
@click.option("--batch-size", type=POSITIVE, default=None, help="Per process.")
@click.option("--seed", type=SEED, default=None)
@_balance_option
@click.option("--no-part-loss", is_flag=True, help="Ablation: instance loss only.")
@click.option("--no-queue", is_flag=True, help="Ablation: in-batch negatives only (TMR-style).")
@click.option("--no-filter", is_flag=True, help="Ablation: keep false negatives in the denominators.")
@click.option("--direction-guard", is_flag=True,
              help="Filter: keep close-caption negatives whose captions name other directions (left/right...).")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="Any other config field (repeat).")
@click.option("--no-resume", is_flag=True, help="Start over even if OUT/checkpoint.pt exists.")
@click.option("--max-steps", type=POSITIVE, default=None, help="Stop after N steps (smoke runs).")
@click.option("--max-train-samples", type=POSITIVE, default=None, help="Use only the first N training samples.")
@click.option("--max-val-samples", type=POSITIVE, default=None, help="Use only the first N validation samples.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@threads_option()
def train_retriever(config_path, preset, out, dataset, epochs, batch_size, seed, balance_alpha, no_part_loss, no_queue,
                    no_filter, direction_guard, sets, no_resume, max_steps, max_train_samples, max_val_samples, quiet,
                    threads) -> None:
    """Train the part-level text-motion retriever with HBM learning (docs/design.md §4.4, §4.5).

    Selects the best epoch on the validation split and writes OUT/model (config.json,
    model.safetensors, README.md). Resumes from OUT/checkpoint.pt. Runs DDP under torchrun.
    """
    from ..retrieval.config import load_config
    from ..retrieval.train import train_retriever as run

    set_threads(threads)
    overrides = parse_sets(sets)
    for key, value in (("dataset", dataset), ("epochs", epochs), ("batch_size", batch_size), ("seed", seed),
                       ("balance_alpha", balance_alpha)):
        if value is not None:
            overrides[key] = value
    for flag, key, value in ((no_part_loss, "part_loss", False), (no_queue, "use_queue", False),
                             (no_filter, "filter_false_negatives", False),
                             (direction_guard, "filter_direction_guard", True)):
        if flag:
            overrides[key] = value
    cfg = load_config(config_path, preset, **overrides)
    out = out or Path("runs") / f"retriever_{cfg.preset}"
    folder = run(cfg, out, resume=not no_resume, max_steps=max_steps, max_train_samples=max_train_samples,
                 max_val_samples=max_val_samples, progress=not quiet)
    if int(os.environ.get("RANK", "0")) == 0:
        click.echo(str(folder))


# -- evaluator -------------------------------------------------------------------------------------------------
@train.command("evaluator")
@click.option("--out", type=click.Path(), default=None,
              help="Folder for the trained evaluator [default: the package's assets/models/evaluator].")
@click.option("--work-dir", type=click.Path(), default="runs/evaluator", show_default=True,
              help="Checkpoints (resume) and TensorBoard logs.")
@click.option("--dataset", default="embedded", show_default=True, help="'embedded' or a HumanML3D-layout folder.")
@click.option("--epochs", type=POSITIVE, default=None, help="Contrastive epochs [default: config, 8].")
@click.option("--classifier-epochs", type=POSITIVE, default=None, help="Label classifier epochs [default: config, 10].")
@click.option("--batch-size", type=POSITIVE, default=None, help="Batch size [default: config, 64].")
@click.option("--seed", type=SEED, default=None, help="Training seed [default: config, 2718].")
@threads_option()
@click.option("--resume", is_flag=True, help="Continue from <work-dir>/checkpoint.pt.")
@click.option("--no-progress", is_flag=True, help="No tqdm bars.")
def train_evaluator(out, work_dir, dataset, epochs, classifier_epochs, batch_size, seed, threads, resume,
                    no_progress) -> None:
    """Train the text-motion evaluator and the action/style classifiers (used only for metrics)."""
    from ..evaluation.evaluator import DEFAULT_EVALUATOR_DIR, EvaluatorConfig
    from ..evaluation.training import train_evaluator as run

    set_threads(threads)
    overrides = {k: v for k, v in dict(dataset=dataset, epochs=epochs, classifier_epochs=classifier_epochs,
                                       batch_size=batch_size, seed=seed).items() if v is not None}
    run(EvaluatorConfig(**overrides), out or DEFAULT_EVALUATOR_DIR, work_dir=work_dir, resume=resume,
        progress=not no_progress, command=command_line("remomask train evaluator"), log=click.echo)


# -- generation stages -------------------------------------------------------------------------------------------
def _common(fn):
    """Options shared by the three generation training commands."""
    options = [
        click.option("--dataset", default="embedded", show_default=True,
                     help="'embedded' or a HumanML3D-layout folder."),
        click.option("--out", type=click.Path(path_type=Path), default=None,
                     help="Run folder: checkpoint.pt, tb/ (TensorBoard), model/ (selected on val) [preset]."),
        click.option("--preset", type=click.Choice(["cpu", "paper"]), default="cpu", show_default=True,
                     help="Model size and schedule."),
        click.option("--iterations", type=POSITIVE, default=None, help="Total iterations [preset]."),
        click.option("--batch-size", type=POSITIVE, default=None, help="Crops per process per step [preset]."),
        click.option("--lr", type=finite(0.0), default=None, help="Peak learning rate [preset]."),
        click.option("--warmup", type=int_range(0), default=None, help="Warm-up iterations [preset]."),
        click.option("--milestones", default=None, help="Comma-separated decay iterations [preset]."),
        click.option("--eval-every", type=POSITIVE, default=None, help="Validate every N iterations [preset]."),
        click.option("--checkpoint-every", type=POSITIVE, default=None, help="Checkpoint every N iterations [preset]."),
        click.option("--val-max-samples", type=POSITIVE, default=None, help="Validate on at most N val samples."),
        click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
                     help="Override a model config field (repeatable), e.g. --set latent_dim=256."),
        click.option("--seed", type=SEED, default=3407, show_default=True),
        _balance_option,
        device_option(),
        click.option("--amp/--no-amp", default=False, show_default=True, help="bf16 autocast on CUDA."),
        threads_option(),
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
    fn = click.option("--tokenizer", type=click.Path(path_type=Path), default=None,
                      help="Trained tokenizer folder [default: the bundled model's].")(fn)
    return fn


def _run(kind: str, *, preset, out, milestones, sets, **fields) -> None:
    from ..bundled import TOKENIZER_DIR
    from ..generation.train import GenerationTrainConfig, train_generation

    check_device(fields["device"])
    if "tokenizer" in fields and fields["tokenizer"] is None:
        fields["tokenizer"] = TOKENIZER_DIR
    for key in ("tokenizer", "retriever", "database", "token_cache_dir"):
        if fields.get(key) is not None:
            fields[key] = str(fields[key])
    cfg = GenerationTrainConfig.preset_defaults(kind, preset, out=str(out) if out else None,
                                                milestones=_milestones(milestones), model_overrides=parse_sets(sets),
                                                command=command_line(), **fields)
    click.echo(f"model selected on val: {train_generation(cfg)}")


@train.command("mask-transformer")
@_common
@_tokenizer_options
@click.option("--retriever", type=click.Path(path_type=Path), default=None,
              help="Trained retriever folder [default: the bundled model's, with its database].")
@click.option("--database", type=click.Path(path_type=Path), default=None,
              help="Retrieval database folder [default: the retriever's].")
@click.option("--retrieval/--no-retrieval", default=True, show_default=True,
              help="--no-retrieval trains the MoMask-style baseline with the same architecture.")
@click.option("--exclude-self/--no-exclude-self", default=True, show_default=True,
              help="At training time the database skips the sample's own motion (remomask default).")
@click.option("--retrieval-k", type=POSITIVE, default=1, show_default=True, help="Retrieved entries per prompt.")
@click.option("--ssta", type=click.Choice(["eccv", "linear"]), default="eccv", show_default=True,
              help="SSTA form: the paper's softmax attention or the public code's linear attention.")
@click.option("--text-value/--no-text-value", default=False, show_default=True,
              help="ECCV SSTA: also put the text token in the values.")
@click.option("--retrieval-form", type=click.Choice(["embedding", "tokens"]), default="embedding",
              show_default=True, help="tokens: also read the retrieved motions' token grids (the database needs "
                                      "them: `remomask retriever build-db --tokenizer DIR`; docs/design.md §5.8).")
@click.option("--k-t2t", "k_t2t", type=int_range(0), default=0, show_default=True,
              help="Of the --retrieval-k entries, text-to-text neighbours (docs/design.md §4.9).")
def train_mask_transformer(dataset, out, preset, iterations, batch_size, lr, warmup, milestones, eval_every,
                           checkpoint_every, val_max_samples, sets, seed, balance_alpha, device, amp, threads, resume,
                           progress, tokenizer, tokens, token_cache_dir, retriever, database, retrieval, exclude_self,
                           retrieval_k, ssta, text_value, retrieval_form, k_t2t) -> None:
    """Train the retrieval-augmented masked transformer of the base token layer (docs/design.md §5)."""
    from .retrieve import resolve_retriever

    if out is None and not retrieval:
        out = Path(f"runs/mask_transformer_norag_{preset}")
    if retrieval:
        retriever, database = resolve_retriever(retriever, database)
    _run("mask", preset=preset, out=out, milestones=milestones, sets=sets, dataset=dataset, iterations=iterations,
         batch_size=batch_size, lr=lr, warmup=warmup, eval_every=eval_every, checkpoint_every=checkpoint_every,
         val_max_samples=val_max_samples, seed=seed, balance_alpha=balance_alpha, device=device, amp=amp,
         threads=threads, resume=resume, progress=progress, tokenizer=tokenizer, tokens=tokens,
         token_cache_dir=token_cache_dir, retriever=retriever if retrieval else None,
         database=database if retrieval else None, use_retrieval=retrieval, exclude_self=exclude_self, retrieval_k=retrieval_k, ssta=ssta,
         text_value=text_value, retrieval_form=retrieval_form, retrieval_k_t2t=k_t2t)


@train.command("residual-transformer")
@_common
@_tokenizer_options
@click.option("--text-encoder", type=click.Choice(["minilm", "clip"]), default="minilm", show_default=True,
              help="Frozen text encoder (the one the retriever uses).")
@click.option("--init-from-codebooks/--no-init-from-codebooks", default=False, show_default=True,
              help="Start the embedding tables from the tokenizer codebooks (code_dim = the tokenizer's).")
def train_residual_transformer(dataset, out, preset, iterations, batch_size, lr, warmup, milestones, eval_every,
                               checkpoint_every, val_max_samples, sets, seed, balance_alpha, device, amp, threads,
                               resume, progress, tokenizer, tokens, token_cache_dir, text_encoder,
                               init_from_codebooks) -> None:
    """Train the residual transformer of quantiser layers 1..Q-1 (docs/design.md §6)."""
    _run("residual", preset=preset, out=out, milestones=milestones, sets=sets, dataset=dataset,
         iterations=iterations, batch_size=batch_size, lr=lr, warmup=warmup, eval_every=eval_every,
         checkpoint_every=checkpoint_every, val_max_samples=val_max_samples, seed=seed, balance_alpha=balance_alpha,
         device=device, amp=amp, threads=threads, resume=resume, progress=progress, tokenizer=tokenizer, tokens=tokens,
         token_cache_dir=token_cache_dir, text_encoder=text_encoder, init_from_codebooks=init_from_codebooks)


@train.command("length-estimator")
@_common
@click.option("--text-encoder", type=click.Choice(["minilm", "clip"]), default="minilm", show_default=True,
              help="Frozen text encoder (the one the retriever uses).")
def train_length_estimator(dataset, out, preset, iterations, batch_size, lr, warmup, milestones, eval_every,
                           checkpoint_every, val_max_samples, sets, seed, balance_alpha, device, amp, threads, resume,
                           progress, text_encoder) -> None:
    """Train the length estimator: caption -> motion length in tokens (docs/design.md §7)."""
    _run("length", preset=preset, out=out, milestones=milestones, sets=sets, dataset=dataset,
         iterations=iterations, batch_size=batch_size, lr=lr, warmup=warmup, eval_every=eval_every,
         checkpoint_every=checkpoint_every, val_max_samples=val_max_samples, seed=seed, balance_alpha=balance_alpha,
         device=device, amp=amp, threads=threads, resume=resume, progress=progress, text_encoder=text_encoder)


@train.command("captioner")
@click.option("--out", type=click.Path(path_type=Path), default=Path("runs/captioner_v2"), show_default=True,
              help="Run folder (checkpoint, log, TensorBoard).")
@click.option("--model-out", type=click.Path(path_type=Path), default=None,
              help="Model folder to write [default: OUT/model].")
@click.option("--dataset", default="embedded", show_default=True, help="'embedded' or a HumanML3D-layout folder.")
@click.option("--retriever", type=click.Path(path_type=Path), default=None, help="Retriever folder [the bundle's].")
@click.option("--database", type=click.Path(path_type=Path), default=None,
              help="Its database with token grids [the bundle's].")
@click.option("--tokenizer", type=click.Path(path_type=Path), default=None, help="Tokenizer folder [the bundle's].")
@click.option("--iterations", type=POSITIVE, default=3000, show_default=True)
@click.option("--batch-size", type=POSITIVE, default=64, show_default=True)
@click.option("--lr", type=finite(0.0), default=5e-4, show_default=True)
@click.option("--dim", type=POSITIVE, default=128, show_default=True, help="Model width.")
@click.option("--layers", type=POSITIVE, default=2, show_default=True, help="Encoder and decoder layers (each).")
@click.option("--context-dropout", type=click.FloatRange(0, 1), default=0.25, show_default=True,
              help="Share of samples trained without their retrieval context.")
@click.option("--eval-every", type=POSITIVE, default=300, show_default=True, help="Validate every N steps.")
@click.option("--val-max-clips", type=POSITIVE, default=None, help="Validate on at most N val clips.")
@click.option("--max-minutes", type=finite(0.0), default=None, help="Stop after this wall time (validates first).")
@click.option("--seed", type=SEED, default=1234, show_default=True)
@threads_option()
@click.option("--resume/--no-resume", default=True, show_default=True,
              help="Continue from OUT/checkpoint.pt when it exists.")
@click.option("--progress/--no-progress", default=True, show_default=True)
def train_captioner(out, model_out, dataset, retriever, database, tokenizer, iterations, batch_size, lr, dim, layers,
                    context_dropout, eval_every, val_max_clips, max_minutes, seed, threads, resume, progress) -> None:
    """Train the retrieval-augmented captioner: motion tokens + top-1 m2t caption and m2m motion -> caption
    (docs/captioning.md). Selected on val (CIDEr)."""
    from ..captioning.train import CaptionerTrainConfig
    from ..captioning.train import train_captioner as run

    set_threads(threads)
    cfg = CaptionerTrainConfig(dataset=dataset, iterations=iterations, batch_size=batch_size, lr=lr, dim=dim,
                               enc_layers=layers, dec_layers=layers, context_dropout=context_dropout,
                               eval_every=eval_every, val_max_clips=val_max_clips, max_minutes=max_minutes,
                               seed=seed)
    for name, value in (("retriever", retriever), ("database", database), ("tokenizer", tokenizer)):
        if value is not None:
            setattr(cfg, name, str(value))
    s = run(cfg, out, model_out=model_out, resume=resume, progress=progress,
            command=command_line("remomask train captioner"))
    v, w = s["val"], s["val_without_retrieval"]
    click.echo(f"selected step {s['best_step']} of {s['steps']}: val CIDEr {v['cider']:.3f} BLEU@4 {v['bleu4']:.3f} "
               f"(without retrieval {w['cider']:.3f} / {w['bleu4']:.3f}), {s['wall_s'] / 60:.1f} min -> {s['model']}")
