"""Training of the trained captioner (docs/captioning.md "Training"; ``remomask train captioner``).

Data: every (motion, caption) pair of the train split, read from the retrieval database itself (the database
is built over the train split: one entry per caption, human captions included, with the motion's embedding and
its base-layer token grid, docs/design.md §4.6, §4.8), so training needs no motion files. Each sample's
context (top-1 m2t caption, top-1 m2m token grid) is searched once, **excluding the sample's own motion and
its mirrored twin** (:func:`~remomask.captioning.trained_captioner.retrieval_context`), so the model cannot
learn to copy its own caption. The context of a random ``context_dropout`` share of each batch is dropped
(masked out), which trains the "without retrieval" path of the same model.

Validation (model selection): the ``val`` split, greedy captions with retrieval against all captions of each
clip, CIDEr (:mod:`remomask.evaluation.captioning`); the best step's weights are the model. ``test`` splits
are never read here.

Loop: AdamW, linear warm-up then cosine decay, label smoothing, seeded (``torch.Generator`` for the batches;
its state is in the checkpoint), resumable from ``OUT/checkpoint.pt`` (model, optimiser, batch generator, torch RNG,
best score), TensorBoard in ``OUT/tb``, a tqdm bar, and an optional wall-time budget (``max_minutes``) after which
it validates once more and stops.

Source: TM2T / ReMoGPT training of a token-to-text model with teacher forcing; docs/design.md §4.7 (self-exclusion).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..bundled import DATABASE_DIR, RETRIEVER_DIR, TOKENIZER_DIR
from ..errors import TrainingError, UsageError
from .model import CaptionerConfig, CaptionTransformer
from .trained_captioner import MotionCaptioner, batch_inputs, retrieval_context
from .vocab import PAD, Vocabulary

__all__ = ["CaptionerTrainConfig", "train_captioner", "training_samples"]


@dataclass
class CaptionerTrainConfig:
    """Settings of :func:`train_captioner` (saved in ``OUT/train_config.json`` and the checkpoint).

    Attributes:
        dataset: ``"embedded"`` or a HumanML3D-layout folder (its ``val`` split is read for selection).
        retriever, database, tokenizer: the frozen component folders (default: the bundle's).
        iterations: optimiser steps. batch_size: pairs per step. lr: peak learning rate. warmup: warm-up steps.
        weight_decay: AdamW decay. label_smoothing: of the word cross-entropy.
        context_dropout: share of samples trained without their retrieval context.
        min_count: vocabulary threshold. dim, heads, enc_layers, dec_layers, ff_mult, dropout: model sizes.
        max_words: longest caption kept (tokens incl. markers).
        eval_every: validate every N steps. checkpoint_every: checkpoint every N steps.
        val_max_clips: validate on at most N val clips (None = all). max_minutes: wall-time budget (None = none).
        seed: seed of the initialisation and the batches.
    """

    dataset: str = "embedded"
    retriever: str = str(RETRIEVER_DIR)
    database: str = str(DATABASE_DIR)
    tokenizer: str = str(TOKENIZER_DIR)
    iterations: int = 6000
    batch_size: int = 64
    lr: float = 5e-4
    warmup: int = 200
    weight_decay: float = 0.01
    label_smoothing: float = 0.1
    context_dropout: float = 0.25
    min_count: int = 2
    dim: int = 160
    heads: int = 4
    enc_layers: int = 2
    dec_layers: int = 2
    ff_mult: int = 3
    dropout: float = 0.1
    max_words: int = 32
    eval_every: int = 500
    checkpoint_every: int = 250
    val_max_clips: int | None = None
    max_minutes: float | None = None
    seed: int = 1234


def training_samples(database, vocab: Vocabulary, max_words: int):
    """The train pairs of a database with their self-excluded context.

    Returns:
        dict with ``grid_row`` (N,) the sample's own grid row, ``caption`` (N, max_words) long ids,
        ``ctx_caption`` (U,) m2t captions and ``ctx_row`` (U,) m2m grid rows per sample key, ``key_of`` (N,)
        the key index of each entry, ``ctx_motion`` / ``own_motion`` (U,) motion ids (for the self-exclusion check).
    """
    keys = list(dict.fromkeys(database.keys))
    key_index = {k: i for i, k in enumerate(keys)}
    first = {}
    for j, k in enumerate(database.keys):
        first.setdefault(k, j)
    rows = [first[k] for k in keys]
    own = [database.motion_ids[j] for j in rows]
    emb = database.motion_emb[rows]
    caps, _, cap_ids, grid_ids = retrieval_context(database, emb, exclude=own, exclude_mirrors=True)
    m = database.search(emb, 1, target="motion", exclude=[[o] for o in own], exclude_mirrors=True)
    ctx_row = np.array([int(database.tokens.row[h[0].index]) for h in m.hits])  # same search as the grids above
    y = torch.full((len(database), max_words), PAD, dtype=torch.long)
    for j, c in enumerate(database.captions):
        ids = vocab.encode(c, max_words)
        y[j, : len(ids)] = torch.tensor(ids)
    return {"grid_row": np.asarray(database.tokens.row), "caption": y, "ctx_caption": caps, "ctx_row": ctx_row,
            "key_of": np.array([key_index[k] for k in database.keys]), "ctx_motion": cap_ids, "ctx_grid_motion":
            grid_ids, "own_motion": own}


def _val_set(cfg: CaptionerTrainConfig, captioner: MotionCaptioner):
    from ..retrieval.encode import load_records

    records, _ = load_records(cfg.dataset, "val")
    records = [r for r in records if r.length >= 4]
    if cfg.val_max_clips:
        records = records[: cfg.val_max_clips]
    if not records:
        raise TrainingError(f"the {cfg.dataset} dataset has no val clips to select the captioner on")
    feats = [np.asarray(r.motion, dtype=np.float32) for r in records]
    refs = [[c.text for c in r.captions] for r in records]
    return feats, refs, captioner.contexts(feats)


def _lr(cfg: CaptionerTrainConfig, step: int) -> float:
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    t = (step - cfg.warmup) / max(1, cfg.iterations - cfg.warmup)
    return cfg.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(1.0, t))))


def train_captioner(cfg: CaptionerTrainConfig, out: str | Path, *, model_out: str | Path | None = None,
                    resume: bool = True, progress: bool = True, command: str = "") -> dict:
    """Train the captioner, select it on ``val`` and write the model folder (module docstring).

    Args:
        cfg: :class:`CaptionerTrainConfig`.
        out: run folder (``checkpoint.pt``, ``best.safetensors``, ``log.jsonl``, ``tb/``).
        model_out: the model folder to write (default ``OUT/model``).
        resume: continue from ``OUT/checkpoint.pt`` when it exists (same config required).
        progress: tqdm bar. command: the command line, for the card.

    Returns:
        A summary dict: best step, val scores, wall time, model folder.

    Raises:
        UsageError: bad settings. TrainingError: a checkpoint of another config, or no val clips.
        Load errors of the component folders.
    """
    from safetensors.torch import load_file, save_file
    from torch.utils.tensorboard import SummaryWriter
    from tqdm.auto import tqdm

    from .._pretrained import cpu_state
    from .._training import atomic_torch_save, config_record
    from ..evaluation.captioning import caption_scores
    from ..files import atomic_write_text
    from ..retrieval.database import RetrievalDatabase
    from ..retrieval.model import PartRetriever
    from ..tokenizer.model import MotionTokenizer

    if cfg.iterations < 1 or cfg.batch_size < 1 or not 0 <= cfg.context_dropout <= 1:
        raise UsageError("iterations and batch size must be >= 1 and context_dropout in [0, 1]")
    out = Path(out)
    model_out = Path(model_out) if model_out is not None else out / "model"
    out.mkdir(parents=True, exist_ok=True)
    start_wall = time.time()
    torch.manual_seed(cfg.seed)

    retriever = PartRetriever.from_pretrained(cfg.retriever)
    database = RetrievalDatabase.load(cfg.database, model=retriever)
    tokenizer = MotionTokenizer.from_pretrained(cfg.tokenizer)
    vocab = Vocabulary.build(database.captions, cfg.min_count)
    mcfg = CaptionerConfig(vocab_size=len(vocab), num_codes=int(max(tokenizer.config.num_codes,
                                                                     tokenizer.config.num_codes_1d)),
                           num_columns=tokenizer.num_columns, max_rows=int(database.tokens.ids.shape[1]),
                           max_words=cfg.max_words, context_words=cfg.max_words, dim=cfg.dim, heads=cfg.heads,
                           enc_layers=cfg.enc_layers, dec_layers=cfg.dec_layers, ff_mult=cfg.ff_mult,
                           dropout=cfg.dropout)
    model = CaptionTransformer(mcfg)
    captioner = MotionCaptioner(model, vocab, tokenizer, retriever, database)
    data = training_samples(database, vocab, cfg.max_words)
    from ..retrieval.database import mirror_base

    own_hits = sum(mirror_base(a) == mirror_base(o) or mirror_base(b) == mirror_base(o)
                   for a, b, o in zip(data["ctx_motion"], data["ctx_grid_motion"], data["own_motion"]))
    if own_hits:  # pragma: no cover - guarded by the database's exclusion
        raise TrainingError(f"{own_hits} samples retrieved their own motion despite the exclusion")
    val_feats, val_refs, val_ctx = _val_set(cfg, captioner)
    grids = database.tokens.ids.astype(np.int64)
    lengths = np.asarray(database.tokens.lengths)

    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, betas=(0.9, 0.98))
    gen = torch.Generator().manual_seed(cfg.seed)
    step, best, best_step = 0, -1.0, 0
    ckpt_path = out / "checkpoint.pt"
    record = config_record(cfg)
    if resume and ckpt_path.is_file():
        ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=False)
        if {k: v for k, v in ckpt["config"].items() if k != "max_minutes"} != \
                {k: v for k, v in record.items() if k != "max_minutes"}:
            raise TrainingError(f"{ckpt_path} was written with other settings; use another --out or --no-resume")
        model.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
        gen.set_state(ckpt["generator"])
        torch.set_rng_state(ckpt["torch_rng"])  # dropout draws continue as in an uninterrupted run
        step, best, best_step = int(ckpt["step"]), float(ckpt["best"]), int(ckpt["best_step"])
        elapsed_before = float(ckpt.get("wall_s", 0.0))
    else:
        elapsed_before = 0.0
    atomic_write_text(out / "train_config.json", json.dumps(record, indent=1) + "\n")
    writer = SummaryWriter(str(out / "tb"))
    log = (out / "log.jsonl").open("a")

    def validate() -> dict:
        model.eval()
        res = captioner.caption_features(val_feats, context=val_ctx)
        scores = caption_scores([r[0] for r in res], val_refs)
        model.train()
        return scores

    def checkpoint() -> None:
        atomic_torch_save({"model": cpu_state(model), "optimizer": opt.state_dict(), "generator": gen.get_state(),
                           "torch_rng": torch.get_rng_state(), "step": step, "best": best, "best_step": best_step,
                           "config": record,
                           "wall_s": elapsed_before + time.time() - start_wall}, ckpt_path)

    n = len(database)
    model.train()
    bar = tqdm(total=cfg.iterations, initial=step, desc="captioner", unit="step", disable=not progress)
    stop = False
    while step < cfg.iterations and not stop:
        idx = torch.randint(n, (cfg.batch_size,), generator=gen).numpy()
        keep = torch.rand(cfg.batch_size, generator=gen) >= cfg.context_dropout
        key = data["key_of"][idx]
        own = [grids[r, : lengths[r]] for r in data["grid_row"][idx]]
        ctx = [grids[r, : lengths[r]] for r in data["ctx_row"][key]]
        motion, ret_motion, ret_words = batch_inputs(own, ctx, [data["ctx_caption"][k] for k in key], vocab,
                                                     mcfg.context_words)
        y = data["caption"][idx]
        y = y[:, : int((y != PAD).sum(1).max())]
        for g in opt.param_groups:
            g["lr"] = _lr(cfg, step)
        loss = model.loss(motion, ret_motion, ret_words, y, keep, cfg.label_smoothing)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        bar.update(1)
        bar.set_postfix(loss=f"{loss.item():.3f}", best=f"{best:.3f}")
        writer.add_scalar("train/loss", loss.item(), step)
        over = cfg.max_minutes is not None and (elapsed_before + time.time() - start_wall) > 60 * cfg.max_minutes
        if step % cfg.eval_every == 0 or step == cfg.iterations or over:
            scores = validate()
            for k, v in scores.items():
                writer.add_scalar(f"val/{k}", v, step)
            if scores["cider"] > best:
                best, best_step = scores["cider"], step
                save_file(cpu_state(model), str(out / "best.safetensors"))
            log.write(json.dumps({"step": step, "loss": round(loss.item(), 4), **{k: round(v, 4) for k, v in
                                                                                   scores.items()},
                                  "wall_s": round(elapsed_before + time.time() - start_wall, 1)}) + "\n")
            log.flush()
            checkpoint()
            stop = over
        elif step % cfg.checkpoint_every == 0:
            checkpoint()
    bar.close()
    writer.close()
    log.close()
    wall = elapsed_before + time.time() - start_wall

    model.load_state_dict(load_file(str(out / "best.safetensors")))
    model.eval()
    val = validate()
    val_noret = caption_scores([r[0] for r in captioner.caption_features(val_feats, context=val_ctx,
                                                                           retrieval=False)], val_refs)
    summary = {"best_step": best_step, "steps": step, "val": val, "val_without_retrieval": val_noret,
               "val_clips": len(val_feats), "wall_s": round(wall, 1), "dataset": cfg.dataset,
               "dataset_hash": _dataset_hash(cfg.dataset),
               "train_pairs": n, "train_motions": len(data["ctx_caption"]), "vocab": len(vocab),
               "parameters": sum(p.numel() for p in model.parameters()), "command": command, "config": record}
    captioner.save_pretrained(model_out, components={"retriever": cfg.retriever, "database": cfg.database,
                                                     "tokenizer": cfg.tokenizer},
                              card=model_card(summary), record=summary)
    atomic_write_text(out / "summary.json", json.dumps(summary, indent=1) + "\n")
    summary["model"] = str(model_out)
    return summary


def _dataset_hash(dataset: str) -> str:
    """Content hash of the dataset (of its shipped joints file; ``"unknown"`` for a folder without one)."""
    from ..data.build import content_hash
    from ..data.embedded import resolve_dataset

    try:
        return content_hash(resolve_dataset(dataset, materialise=False, progress=False))
    except (OSError, ValueError):
        return "unknown"


def model_card(s: dict) -> str:
    """The ``README.md`` of a trained captioner folder from a training summary."""
    c = s["config"]
    v, w = s["val"], s["val_without_retrieval"]
    return "\n".join([
        "# Trained motion captioner (retrieval-augmented, ReMoGPT-style context)",
        "",
        "Motion -> caption: the v2 tokenizer's base-layer token grid of the motion, plus the top-1 caption "
        "(motion-to-text) and the top-1 motion's token grid (motion-to-motion) retrieved from the v2 database, "
        "into a small encoder-decoder transformer over a word vocabulary built from the train captions "
        "(docs/captioning.md). No pretrained language model.",
        "",
        f"- command: `{s['command'] or 'remomask train captioner'}`",
        f"- data: dataset `{s['dataset']}` version 2, content hash `{s['dataset_hash']}`, split `train`: "
        f"{s['train_pairs']} (motion, caption) pairs of {s['train_motions']} motions (all captions, human ones "
        "included); neighbours exclude the sample's own motion and its mirror",
        f"- model: d = {c['dim']}, {c['enc_layers']} encoder + {c['dec_layers']} decoder layers, {c['heads']} heads, "
        f"vocabulary {s['vocab']} words (min count {c['min_count']}), {s['parameters']:,} parameters; context "
        f"dropout {c['context_dropout']} (the same model decodes without retrieval)",
        f"- training: {s['steps']} steps of {c['batch_size']}, AdamW lr {c['lr']}, seed {c['seed']}, "
        f"wall time {s['wall_s'] / 60:.1f} min (2-core CPU shared with other jobs, 1 thread, nice 10)"
        + (f"; stopped by the wall-time budget (`--max-minutes`) after {s['steps']} of {c['iterations']} planned "
           "steps, before the cosine decay ended" if s["steps"] < c["iterations"] else ""),
        f"- selection: `val` ({s['val_clips']} clips), greedy captions, CIDEr; selected step {s['best_step']}",
        "",
        "| val (greedy) | BLEU@1 | BLEU@4 | ROUGE-L | CIDEr |",
        "|---|---|---|---|---|",
        f"| with retrieval | {v['bleu1']:.3f} | {v['bleu4']:.3f} | {v['rouge_l']:.3f} | {v['cider']:.3f} |",
        f"| without retrieval | {w['bleu1']:.3f} | {w['bleu4']:.3f} | {w['rouge_l']:.3f} | {w['cider']:.3f} |",
        "",
        "Test scores: docs/captioning.md (`remomask evaluate captioning`).",
        "",
        "## Licence",
        "",
        "Code: MIT. The weights derive from the training data: Bandai-Namco Research Motiondataset (CC BY-NC 4.0, "
        "non-commercial), HDM05 (CC BY-SA 3.0), CMU Graphics Lab Motion Capture Database (\"The data used in this "
        "project was obtained from mocap.cs.cmu.edu. The database was created with funding from NSF EIA-0196217.\"; "
        "KIT-ML and HumanML3D captions, MIT), ReActIdle (MIT). Use them for non-commercial purposes and credit the "
        "datasets.",
        "",
    ])
