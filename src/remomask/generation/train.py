"""Training of the generation models (docs/design.md §5.4-§5.7, §6.3, §7): masked transformer, residual transformer,
length estimator. Single process or DDP under ``torchrun``.

Per step, every process draws its own batch: ``batch_size`` samples of the train split with replacement,
each with a random caption and crop (docs/design.md §2.4, :func:`~remomask.generation.data.draw_crop`); indices,
crops, masks and RAG-CFG gates come from generators seeded with ``(seed, rank, step)``, so a resumed run
draws exactly what the uninterrupted one would have. Batches are cropped to their longest sample.

- ``mask``: base-layer ids of the crop (frozen tokenizer), sentence embedding of the caption, top-k
  retrieval (the database excludes the sample's own motion unless ``exclude_self`` is off); loss
  :meth:`MaskTransformer.loss` (cosine temporal + spatial masking, BERT corruption, text / retrieval drop).
  ``use_retrieval=False`` trains the MoMask-style no-RAG baseline with the same blocks.
- ``residual``: all-layer ids and the sentence embedding; loss :meth:`ResidualTransformer.loss`.
- ``length``: the sentence embedding and the crop length; loss :meth:`LengthEstimator.loss`.

Optimiser (docs/design.md §5.7, §6.3): AdamW (0.9, 0.99), weight decay 1e-5, linear warm-up
``lr * (it + 1) / (warmup + 1)``, then a step decay by ``gamma`` at each milestone. The length estimator
uses Adam with gradient clipping 0.5 (MoMask's ``LengthEstTrainer``).

Model selection (never on ``test``): every ``eval_every`` steps rank 0 scores the ``val`` split with fixed
crops (``default_rng([val_seed, i])``), fixed masks and all conditions on, and keeps the model with the
lowest validation cross-entropy: masked-token CE (``mask``), CE averaged over layers 1..Q-1 given the
true lower layers (``residual``), CE over token lengths (``length``). Accuracies are logged beside it.

Files in ``out``: ``checkpoint.pt`` (weights, optimiser, step, best score: resume), ``model/`` (the
selected model, ``save_pretrained`` format), ``tb/`` (TensorBoard), ``train_config.json``.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

from .. import _training
from ..errors import TrainingError

__all__ = [
    "KINDS",
    "TRAIN_PRESETS",
    "GenerationTrainConfig",
    "learning_rate",
    "train_generation",
    "train_mask_transformer",
    "train_residual_transformer",
    "train_length_estimator",
    "TrainingError",
]

KINDS = ("mask", "residual", "length")
"""Model kinds: masked transformer, residual transformer, length estimator."""


@dataclass
class GenerationTrainConfig:
    """Options of :func:`train_generation`.

    Attributes:
        kind: ``"mask"``, ``"residual"`` or ``"length"``.
        dataset: ``"embedded"`` or a HumanML3D-layout folder. train_split, val_split: split names.
        out: run folder (checkpoint.pt, model/, tb/).
        preset: model and schedule preset (``cpu`` / ``paper``); model_overrides: config fields to change.
        tokenizer: trained tokenizer folder (mask / residual).
        retriever: trained retriever folder (mask with retrieval); database: its database folder
            (None = ``<retriever>/database``).
        use_retrieval: False = MoMask-style no-RAG baseline (mask only; no retriever is loaded).
        exclude_self: at training time the database skips the sample's own motion (and its mirror).
        retrieval_k: entries retrieved per prompt (1). ssta: ``"eccv"`` or ``"linear"``. text_value: ECCV
            SSTA with the text token also in the values.
        retrieval_k_t2t: of the ``retrieval_k`` entries, text-to-text neighbours (0; docs/design.md §4.9).
        retrieval_form: ``"embedding"`` (default) or ``"tokens"`` (docs/design.md §5.8: the database must hold
            token grids of ``tokenizer``; they are fed with the same self-exclusion as the embeddings).
        text_encoder: frozen text encoder when no retriever is loaded (``minilm``); with a retriever its own
            encoder is used, so the text input matches the retrieval queries.
        init_from_codebooks: residual only: copy the tokenizer codebooks into the embedding tables (sets
            ``code_dim`` to the tokenizer's); off in the reference.
        tokens: ``"cache"`` (phase cache, CPU) or ``"online"`` (encode every crop; GPU); see ``data.py``.
        token_cache_dir: where the phase caches live (None = ``$REMOMASK_CACHE/generation_tokens``).
        iterations, batch_size (per process), lr, warmup, milestones, gamma, weight_decay, grad_clip (0 = off):
            optimisation.
        amp: bf16 autocast on CUDA.
        seed: model init, batches, masks and gates. val_seed: the fixed validation crops and masks.
        balance_alpha: draw train samples by action in proportion to count ** alpha (1 = uniform over samples,
            0 = every action equally often; docs/data.md "Every action learned").
        eval_every, log_every, checkpoint_every: iterations. val_max_samples: score at most this many val
            samples (None = all).
        device: ``cpu`` / ``cuda``. threads: torch CPU threads per process (None = torch's default).
        resume: continue from ``<out>/checkpoint.pt``. progress: tqdm bar on rank 0. command: for the card.
    """

    kind: str = "mask"
    dataset: str = "embedded"
    train_split: str = "train"
    val_split: str = "val"
    out: str = "runs/mask_transformer_cpu"
    preset: str = "cpu"
    model_overrides: dict = field(default_factory=dict)
    tokenizer: str = "runs/tokenizer_cpu/model"
    retriever: str | None = "runs/retriever_cpu/model"
    database: str | None = None
    use_retrieval: bool = True
    exclude_self: bool = True
    retrieval_k: int = 1
    retrieval_k_t2t: int = 0
    retrieval_form: str = "embedding"
    ssta: str = "eccv"
    text_value: bool = False
    text_encoder: str = "minilm"
    init_from_codebooks: bool = False
    tokens: str = "cache"
    token_cache_dir: str | None = None
    iterations: int = 2000
    batch_size: int = 32
    lr: float = 2e-4
    warmup: int = 2000
    milestones: tuple[int, ...] = (1_000_000,)
    gamma: float = 0.1
    weight_decay: float = 1e-5
    grad_clip: float = 0.0
    amp: bool = False
    seed: int = 3407
    val_seed: int = 0
    balance_alpha: float = 1.0
    eval_every: int = 250
    log_every: int = 25
    checkpoint_every: int = 250
    val_max_samples: int | None = None
    device: str = "cpu"
    threads: int | None = None
    resume: bool = True
    progress: bool = True
    command: str = ""

    @classmethod
    def preset_defaults(cls, kind: str, preset: str, **overrides) -> "GenerationTrainConfig":
        """Defaults of ``TRAIN_PRESETS[kind][preset]`` with overrides; None values are ignored.

        Raises:
            TrainingError: unknown kind or preset.
        """
        if kind not in TRAIN_PRESETS:
            raise TrainingError(f"unknown model kind {kind!r}; choose one of {', '.join(KINDS)}")
        if preset not in TRAIN_PRESETS[kind]:
            raise TrainingError(f"unknown preset {preset!r}; choose one of {sorted(TRAIN_PRESETS[kind])}")
        values = dict(TRAIN_PRESETS[kind][preset], kind=kind, preset=preset)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


# paper: 64 crops per process; under `torchrun --nproc_per_node 8` that is the reference's 8 x 64 batch, and
# 100k iterations are ~2000 epochs of HumanML3D's ~23k training samples (docs/design.md §5.7).
_PAPER_TRANSFORMER = dict(iterations=100_000, batch_size=64, lr=2e-4, warmup=2000, milestones=(1_000_000,),
                          gamma=0.1, weight_decay=1e-5, eval_every=2000, checkpoint_every=1000, log_every=50,
                          tokens="online")
# The cpu runs are sized from `benchmarks/bench_generation.py --train-steps`: 3.8-4.0 s per step of 32 crops
# (one thread) for either cpu-preset transformer while two other trainings shared the 2-core CPU (load ~4.5);
# an estimated ~2 s on a free machine (not measured), so 2000 steps take roughly 70-90 min. With so few steps
# a larger learning rate, a short warm-up and two late decays are used.
_CPU_TRANSFORMER = dict(iterations=2000, batch_size=32, lr=6e-4, warmup=150, milestones=(1400, 1800), gamma=0.3,
                        weight_decay=1e-5, eval_every=250, checkpoint_every=125, log_every=25, tokens="cache")

TRAIN_PRESETS: dict[str, dict[str, dict]] = {
    # docs/design.md §5.7: AdamW (0.9, 0.99), wd 1e-5, lr 2e-4, warm-up 2k, batch 64 per GPU, effectively constant lr.
    "mask": {"paper": dict(_PAPER_TRANSFORMER, out="runs/mask_transformer_paper"),
             "cpu": dict(_CPU_TRANSFORMER, out="runs/mask_transformer_cpu")},
    # docs/design.md §6.3: the same optimiser and schedule as the masked transformer.
    "residual": {"paper": dict(_PAPER_TRANSFORMER, out="runs/residual_transformer_paper"),
                 "cpu": dict(_CPU_TRANSFORMER, out="runs/residual_transformer_cpu")},
    # docs/design.md §7: MoMask's LengthEstTrainer (CE on frames // 4, Adam 1e-4, grad clip 0.5). An MLP on cached
    # sentence embeddings: thousands of steps per minute on a CPU.
    "length": {"paper": dict(iterations=30_000, batch_size=64, lr=1e-4, warmup=0, milestones=(1_000_000,),
                             weight_decay=0.0, grad_clip=0.5, eval_every=1000, checkpoint_every=1000, log_every=100,
                             out="runs/length_estimator_paper"),
               "cpu": dict(iterations=4000, batch_size=64, lr=5e-4, warmup=0, milestones=(3000,), gamma=0.3,
                           weight_decay=0.0, grad_clip=0.5, eval_every=250, checkpoint_every=500, log_every=50,
                           out="runs/length_estimator_cpu")},
}
"""kind -> preset -> :class:`GenerationTrainConfig` fields."""


def learning_rate(cfg: GenerationTrainConfig, it: int) -> float:
    """Learning rate at iteration ``it`` (0-based): linear warm-up, then multi-step decay (docs/design.md §5.7)."""
    return _training.warmup_step_lr(cfg.lr, cfg.warmup, cfg.gamma, cfg.milestones, it)


# ---- set-up ----------------------------------------------------------------------------------------------
def _check(cfg: GenerationTrainConfig) -> None:
    from .data import TOKEN_SOURCES

    if cfg.kind not in KINDS:
        raise TrainingError(f"unknown model kind {cfg.kind!r}; choose one of {', '.join(KINDS)}")
    if cfg.iterations < 1 or cfg.batch_size < 1:
        raise TrainingError(f"iterations ({cfg.iterations}) and batch_size ({cfg.batch_size}) must be >= 1")
    if cfg.eval_every < 1 or cfg.log_every < 1 or cfg.checkpoint_every < 1:
        raise TrainingError("eval_every, log_every and checkpoint_every must be >= 1")
    if cfg.tokens not in TOKEN_SOURCES:
        raise TrainingError(f"tokens must be one of {TOKEN_SOURCES}, got {cfg.tokens!r}")
    if cfg.retrieval_k < 1:
        raise TrainingError(f"retrieval_k must be >= 1, got {cfg.retrieval_k}")
    if not 0 <= cfg.retrieval_k_t2t <= cfg.retrieval_k:
        raise TrainingError(f"retrieval_k_t2t must be in 0..retrieval_k={cfg.retrieval_k}, got {cfg.retrieval_k_t2t}")
    if cfg.retrieval_form not in ("embedding", "tokens"):
        raise TrainingError(f"retrieval_form must be 'embedding' or 'tokens', got {cfg.retrieval_form!r}")


def _preflight(cfg: GenerationTrainConfig) -> None:
    """Fail fast, before loading anything, when a component folder is missing."""
    if cfg.kind != "length" and not (Path(cfg.tokenizer) / "config.json").is_file():
        raise TrainingError(f"no trained tokenizer at {cfg.tokenizer}; train one with `remomask train tokenizer` "
                            "and pass its model folder with --tokenizer")
    if cfg.kind == "mask" and cfg.use_retrieval:
        if cfg.retriever is None:
            raise TrainingError("the retrieval-augmented model needs --retriever MODEL_DIR (a trained retriever "
                                "with its database); pass --no-retrieval for the MoMask-style baseline")
        folder = Path(cfg.retriever)
        if not (folder / "config.json").is_file():
            raise TrainingError(f"no trained retriever at {folder}; train one with `remomask train retriever`, "
                                "build its database with `remomask retriever build-db`, or pass --no-retrieval")
        db_dir = Path(cfg.database) if cfg.database else folder / "database"
        if not (db_dir / "meta.json").is_file():
            raise TrainingError(f"no retrieval database at {db_dir}; build it with `remomask retriever build-db "
                                f"--model {folder}` (or pass --database DIR / --no-retrieval)")


def _load_tokenizer(cfg: GenerationTrainConfig, device):
    from ..tokenizer import MotionTokenizer

    return MotionTokenizer.from_pretrained(Path(cfg.tokenizer), map_location=device).eval()


def _load_retrieval(cfg: GenerationTrainConfig, device):
    from ..retrieval import PartRetriever, RetrievalDatabase

    folder = Path(cfg.retriever)
    retriever = PartRetriever.from_pretrained(folder, device=device).eval()
    database = RetrievalDatabase.load(Path(cfg.database) if cfg.database else folder / "database", model=retriever)
    return retriever, database


def _text_encoder(name: str, device):
    from ..text import load_text_encoder

    return load_text_encoder(name, device=device)


# ---- tasks: what differs between the three models --------------------------------------------------------
class _Task:
    """Model, batch loss and validation of one model kind."""

    def __init__(self, cfg: GenerationTrainConfig, root: Path, rank: int, world: int, device) -> None:
        from .data import ConditionEncoder, load_generation_records

        self.cfg, self.rank, self.device = cfg, rank, device
        self.records = load_generation_records(root, cfg.train_split, progress=rank == 0 and cfg.progress)
        self.val_records = (load_generation_records(root, cfg.val_split) if rank == 0 else [])
        if cfg.val_max_samples is not None:
            self.val_records = self.val_records[: cfg.val_max_samples]
        self.retriever = self.database = self.tokenizer = None
        self.info: dict = {}
        if cfg.kind == "mask" and cfg.use_retrieval:
            self.retriever, self.database = _load_retrieval(cfg, device)
            text_encoder = self.retriever.text_encoder
            self.info["retriever"] = {"path": str(cfg.retriever), "model_hash": self.retriever.model_hash(),
                                      "database_entries": len(self.database)}
            self.info["exclude_self"] = cfg.exclude_self
        else:
            text_encoder = _text_encoder(cfg.text_encoder, device)
        self.info["text_encoder"] = text_encoder.name
        tokens_form = cfg.kind == "mask" and cfg.use_retrieval and cfg.retrieval_form == "tokens"
        self.conditions = ConditionEncoder(text_encoder, self.retriever, self.database, k=cfg.retrieval_k,
                                           k_t2t=cfg.retrieval_k_t2t if self.retriever is not None else 0,
                                           tokens=tokens_form)
        if cfg.kind != "length":
            from .data import TokenSource, tokenizer_fingerprint

            self.tokenizer = _load_tokenizer(cfg, device)
            self.info["tokenizer"] = {"path": str(cfg.tokenizer), "fingerprint": tokenizer_fingerprint(self.tokenizer)}
            if tokens_form:                                      # grids of another tokenizer: DatabaseError
                self.database.check_tokens(self.info["tokenizer"]["fingerprint"])
            self.info["tokens"] = cfg.tokens
            cache = Path(cfg.token_cache_dir) if cfg.token_cache_dir else _default_token_cache()

            def source(records, name, build):
                return TokenSource(records, self.tokenizer, mode=cfg.tokens, cache_dir=cache, name=name,
                                   progress=rank == 0 and cfg.progress, build=build)

            if rank == 0:
                self.tokens = source(self.records, cfg.train_split, True)
                self.val_tokens = source(self.val_records, cfg.val_split, True)
            if world > 1:
                dist.barrier()                                   # rank 0 built the caches
            if rank != 0:
                self.tokens = source(self.records, cfg.train_split, False)
        self.model = self._build_model(text_encoder.dim)

    def _build_model(self, text_dim: int):
        from .config import LengthEstimatorConfig, MaskTransformerConfig, ResidualTransformerConfig
        from .conditions import codebooks_of, column_codes_of, num_codes_of
        from .length_estimator import LengthEstimator
        from .mask_transformer import MaskTransformer
        from .residual_transformer import ResidualTransformer

        cfg = self.cfg
        over = dict(cfg.model_overrides)
        torch.manual_seed(cfg.seed)
        if cfg.kind == "mask":
            fields = dict(num_codes=num_codes_of(self.tokenizer), column_codes=column_codes_of(self.tokenizer),
                          num_columns=self.tokenizer.num_columns, text_dim=text_dim, retrieval_k=cfg.retrieval_k,
                          use_retrieval=cfg.use_retrieval, ssta=cfg.ssta, text_value=cfg.text_value)
            if cfg.use_retrieval:
                fields.update(retrieval_k_t2t=cfg.retrieval_k_t2t, retrieval_form=cfg.retrieval_form)
            if self.database is not None:
                fields["retrieval_dim"] = self.database.dim
            model = MaskTransformer(MaskTransformerConfig.preset(cfg.preset, **{**fields, **over}))
        elif cfg.kind == "residual":
            fields = dict(num_codes=num_codes_of(self.tokenizer), column_codes=column_codes_of(self.tokenizer),
                          num_columns=self.tokenizer.num_columns, num_quantizers=self.tokenizer.num_quantizers,
                          text_dim=text_dim)
            if cfg.init_from_codebooks:
                fields["code_dim"] = self.tokenizer.config.code_dim
            model = ResidualTransformer(ResidualTransformerConfig.preset(cfg.preset, **{**fields, **over}))
            if cfg.init_from_codebooks:
                model.init_from_codebooks(codebooks_of(self.tokenizer).cpu())
        else:
            model = LengthEstimator(LengthEstimatorConfig.preset(cfg.preset, **{"text_dim": text_dim, **over}))
        return model.to(self.device)

    # -- batches -------------------------------------------------------------------------------------------
    def crops(self, step: int):
        from .data import draw_crop, sample_indices

        rng = np.random.default_rng([self.cfg.seed, self.rank, step])
        idx = sample_indices(self.records, self.cfg.batch_size, rng, self.cfg.balance_alpha)
        return [draw_crop(self.records[i], int(i), rng) for i in idx]

    def inputs(self, crops, tokens_source=None, exclude: bool = True):
        """(ids or frames, sentence, retrieval) of crops, on the device."""
        excl = [c.motion_id for c in crops] if (exclude and self.cfg.exclude_self) else None
        cond = self.conditions([c.caption for c in crops], excl)
        sentence = cond.sentence.to(self.device)
        if self.cfg.kind == "length":
            return torch.tensor([c.length for c in crops], device=self.device), sentence, None
        ids = (tokens_source or self.tokens).tokens(crops).to(self.device)
        return ids, sentence, cond.retrieval

    def loss(self, net, batch, generator):
        ids, sentence, retrieval = batch
        if self.cfg.kind == "mask":
            return self.model.loss(ids[..., 0], sentence, retrieval, generator=generator, forward=net)
        if self.cfg.kind == "residual":
            return self.model.loss(ids, sentence, generator=generator, forward=net)
        return self.model.loss(sentence, ids, forward=net)

    # -- validation ----------------------------------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self) -> dict:
        """Validation metrics (module docstring); ``"ce"`` is the selection score (lower is better)."""
        import torch.nn.functional as F

        from .data import draw_crop

        cfg = self.cfg
        crops = [draw_crop(r, i, np.random.default_rng([cfg.val_seed, i])) for i, r in enumerate(self.val_records)]
        crops.sort(key=lambda c: c.length)
        size = max(cfg.batch_size, 32)
        was = self.model.training
        self.model.eval()
        totals: dict[str, float] = {}
        counts: dict[str, float] = {}

        def add(name: str, value: float, count: float) -> None:
            totals[name] = totals.get(name, 0.0) + value * count
            counts[name] = counts.get(name, 0.0) + count

        try:
            for b, s in enumerate(range(0, len(crops), size)):
                part = crops[s: s + size]
                ids, sentence, retrieval = self.inputs(part, getattr(self, "val_tokens", None))
                with self._autocast():
                    if cfg.kind == "mask":
                        gen = torch.Generator(device=self.device).manual_seed(cfg.val_seed * 7919 + b)
                        out = self.model.loss(ids[..., 0], sentence, retrieval, generator=gen)
                        add("ce", float(out.loss), out.count)
                        add("accuracy", float(out.accuracy), out.count)
                    elif cfg.kind == "residual":
                        for q in range(1, self.model.config.num_quantizers):
                            out = self.model.loss(ids, sentence, q=q)
                            for name in ("ce", f"ce_q{q}"):
                                add(name, float(out.loss), out.count)
                            add("accuracy", float(out.accuracy), out.count)
                    else:
                        logits = self.model(sentence).float()
                        target = (ids // 4).clamp_max(logits.shape[-1] - 1)
                        n = len(part)
                        add("ce", float(F.cross_entropy(logits, target)), n)
                        add("accuracy", float((logits.argmax(-1) == target).float().mean()), n)
                        add("mae_frames", float((logits.argmax(-1) * 4 - ids).abs().float().mean()), n)
        finally:
            self.model.train(was)
        # residual: "ce" sums every layer's positions, so it is the mean over layers (equal counts per layer)
        return {k: totals[k] / max(counts[k], 1e-9) for k in totals}

    def _autocast(self):
        import contextlib

        if self.cfg.amp and self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def card(self, cfg: GenerationTrainConfig, root: Path, world: int, step: int, metrics: dict) -> dict:
        selection = {"mask": "lowest masked-token cross-entropy on the val split (all conditions on)",
                     "residual": "lowest cross-entropy of layers 1..Q-1 on the val split, given the true lower layers",
                     "length": "lowest token-length cross-entropy on the val split"}[cfg.kind]
        return {"dataset": f"{cfg.dataset} (`{Path(root).name}`), split `{cfg.train_split}`, {len(self.records)} "
                           f"captioned samples, random crops (docs/design.md §2.4)",
                "command": cfg.command, "preset": cfg.preset, "iterations": cfg.iterations,
                "batch_size": cfg.batch_size * world, "seed": cfg.seed, "selected_step": step, "selection": selection,
                "use_retrieval": bool(cfg.kind == "mask" and cfg.use_retrieval), **self.info,
                "metrics": {cfg.val_split: metrics}}


def _default_token_cache() -> Path:
    from ..data.embedded import cache_dir

    return cache_dir() / "generation_tokens"


# ---- the loop ----------------------------------------------------------------------------------------------
def _config_of(model, saved) -> dict | None:
    """A checkpoint's model config with the fields added since it was written at their defaults (so that a run
    started before a new option resumes), or None when it is not a config of ``model``'s class."""
    try:
        return type(model.config).from_dict(dict(saved)).to_dict()
    except (TypeError, ValueError):
        return None


def train_generation(cfg: GenerationTrainConfig) -> Path:
    """Train (or resume) one generation model; returns the selected model folder ``<out>/model``.

    Raises:
        TrainingError: bad options, missing tokenizer / retriever, a checkpoint of another config.
        DatasetError, DatabaseError, RetrieverLoadError, CheckpointError: from the other stages.
    """
    from tqdm.auto import tqdm

    from ..data.embedded import resolve_dataset

    _check(cfg)
    _preflight(cfg)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    rank, world, device = _training.setup_distributed(cfg.device)
    out = Path(cfg.out)
    root = resolve_dataset(cfg.dataset, progress=rank == 0 and cfg.progress) if rank == 0 else None
    root = _training.share_path(root, world)
    task = _Task(cfg, root, rank, world, device)
    model = task.model
    model_cfg = model.config.to_dict()
    if cfg.kind == "length":
        opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    else:
        opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, betas=(0.9, 0.99), weight_decay=cfg.weight_decay)
    step, best, best_step = 0, math.inf, -1
    ckpt_path = out / "checkpoint.pt"
    if cfg.resume and ckpt_path.is_file():
        ckpt = torch.load(ckpt_path, map_location=device, weights_only=True)
        if ckpt.get("kind") != cfg.kind or _config_of(model, ckpt.get("model_config")) != model_cfg:
            raise TrainingError(f"{ckpt_path} was written for another model ({ckpt.get('kind')}, other config); "
                                "use a new --out or --no-resume")
        step, best, best_step = _training.restore_checkpoint(ckpt, model, opt)
    net = _training.wrap_ddp(model, world, device)
    writer = _training.open_run_folder(out, cfg) if rank == 0 else None

    def save_checkpoint() -> None:
        if rank == 0:
            _training.atomic_torch_save({
                "kind": cfg.kind, "model": model.state_dict(), "optimizer": opt.state_dict(), "step": step,
                "best": best, "best_step": best_step, "model_config": model_cfg,
                "train_config": _training.config_record(cfg)}, ckpt_path)

    def validate() -> None:  # rank 0: score the val split, keep the model of the lowest cross-entropy
        nonlocal best, best_step
        metrics = task.evaluate()
        for k, v in metrics.items():
            writer.add_scalar(f"val/{k}", v, step)
        bar.write(f"step {step}: val " + ", ".join(f"{k} {v:.4f}" for k, v in metrics.items()))
        if metrics["ce"] < best:
            best, best_step = metrics["ce"], step
            model.save_pretrained(out / "model", card=task.card(cfg, root, world, step, metrics))

    names = {"mask": "mask transformer", "residual": "residual transformer", "length": "length estimator"}
    bar = tqdm(total=cfg.iterations, initial=step, desc=names[cfg.kind], dynamic_ncols=True,
               disable=not (cfg.progress and rank == 0))
    model.train()
    t0, seen = time.time(), 0
    while step < cfg.iterations:
        for group in opt.param_groups:
            group["lr"] = learning_rate(cfg, step)
        batch = task.inputs(task.crops(step))
        gen = torch.Generator(device=device).manual_seed((cfg.seed * 1_000_003 + rank * 7919 + step) % (2 ** 63))
        with task._autocast():
            result = task.loss(net, batch, gen)
        opt.zero_grad(set_to_none=True)
        result.loss.backward()
        if cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        step += 1
        seen += 1
        bar.update(1)
        if rank == 0 and (step % cfg.log_every == 0 or step == cfg.iterations):
            loss, acc = result.loss.item(), float(result.accuracy)
            bar.set_postfix(loss=f"{loss:.3f}", acc=f"{acc:.3f}")
            writer.add_scalar("train/loss", loss, step)
            writer.add_scalar("train/accuracy", acc, step)
            for k, v in result.extra.items():
                writer.add_scalar(f"train/{k}", v, step)
            writer.add_scalar("train/lr", opt.param_groups[0]["lr"], step)
            writer.add_scalar("train/it_per_s", seen / max(time.time() - t0, 1e-9), step)
        _training.validate_and_checkpoint(step, cfg, rank, world, validate, save_checkpoint)
    _training.close_run(bar, writer, world)
    return out / "model"


def train_mask_transformer(cfg: GenerationTrainConfig) -> Path:
    """:func:`train_generation` with ``kind="mask"``."""
    return train_generation(dataclasses.replace(cfg, kind="mask"))


def train_residual_transformer(cfg: GenerationTrainConfig) -> Path:
    """:func:`train_generation` with ``kind="residual"``."""
    return train_generation(dataclasses.replace(cfg, kind="residual"))


def train_length_estimator(cfg: GenerationTrainConfig) -> Path:
    """:func:`train_generation` with ``kind="length"``."""
    return train_generation(dataclasses.replace(cfg, kind="length"))
