"""Configuration of the part-level retriever, its HBM loss and its training (docs/design.md §4.2, §4.4, §4.5).

One dataclass, :class:`RetrieverConfig`, holds everything; the model, the loss and the trainer take it
as their only configuration. Two presets:

- ``paper``: the ECCV/journal retriever (docs/design.md §4.2, §4.4, §4.5): six 4-layer 512-wide part encoders,
  512-d embeddings, queue 65,536, momentum 0.999, batch 128, 200 epochs.
- ``cpu``: the same model family shrunk to train on a shared 2-core CPU in a few hours: 128-wide, 2-layer
  part encoders over tokens of 4 frames (0.2 s), dropout only in the projection heads (random masks cost
  about as much as the matrix products on a CPU), length-bucketed batches, queue 2,048, batch 32,
  20 epochs, momentum 0.99 (0.999 lags ~1,000 steps, a large share of a short run).

Both keep 512-d output embeddings, which is what the retrieval database and the generator expect.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

from ..files import atomic_write_text

__all__ = ["RetrieverConfig", "PRESETS", "load_config"]


@dataclass
class RetrieverConfig:
    """Every setting of the retriever. Units: frames at 20 fps, learning rates per step.

    Model (docs/design.md §4.2):
        skeleton: ``"humanml3d"`` (263-d features, parts 7/50/50/60/60/60) or ``"kit"``.
        d_model, num_layers, num_heads, ff_size, dropout: each of the six part encoders (post-LN, GELU).
        attn_dropout: dropout on attention probabilities (0.1 in the reference; slow on CPUs).
        frames_per_token: consecutive frames grouped into one token of each part encoder (1 = paper).
        embed_dim: size of the joint text-motion space (512 in the paper and the RAG database).
        head_dropout: dropout inside the projection heads (0.5 HumanML3D, 0.0 KIT).
        text_encoder: frozen encoder name (``"minilm"`` or ``"clip"``); clip_weights: CLIP weights file.
        text_layers, text_heads, text_ff_size: trainable transformer layer(s) over the frozen token
            features (ECCV text; 1 layer). text_heads must divide the encoder width (384 MiniLM, 512 CLIP).
        max_motion_length: frames per sample (224); longer samples are cropped (a random window in
            training, the first window in evaluation).

    HBM loss (docs/design.md §4.4):
        temperature: tau of InfoNCE on cosine similarities (0.07).
        momentum: EMA factor of the momentum encoders (0.999).
        queue_size: negatives kept per queue (text, instance motion, each part).
        part_loss, part_weight: part-level InfoNCE on/off and lambda_P (1).
        use_queue: False = TMR-style in-batch negatives only (online keys, no momentum copies).
        filter_false_negatives, filter_threshold: drop from every denominator negatives whose caption
            equals the query's, whose caption embedding has cosine > threshold (0.95, as TMR), or which
            come from the same sample.
        filter_direction_guard: keep a close-caption negative when the two captions name different
            directions (left / right / forward / ...; :func:`remomask.retrieval.hbm.direction_code`), so
            mirror-image actions stay negatives of each other (remomask option; off = the TMR rule).

    Training (docs/design.md §4.5):
        dataset, train_split, val_split: data (``"embedded"`` or a HumanML3D-layout folder).
        batch_size (per process), epochs, lr_motion (part encoders), lr_text (trainable text layer),
        lr_heads (projection heads), weight_decay, grad_clip (0 = off), cosine_factor (CosineAnnealing
        T_max = cosine_factor * total steps; 2 traverses half the cosine as the reference code does),
        seed, num_workers, length_bucketing (batches of similar lengths, less padding), balance_alpha (draw train
        samples by action in proportion to count ** alpha; 1 = uniform over samples, 0 = every action
        equally often; docs/data.md "Every action learned"), select_metric (validation metric for the best model; ``"rsum"`` = sum of
        R@1, R@5, R@10 in both directions), checkpoint_every (steps; 0 = end of epoch only),
        log_every (steps).
    """

    # model
    skeleton: str = "humanml3d"
    d_model: int = 512
    num_layers: int = 4
    num_heads: int = 4
    ff_size: int = 1024
    dropout: float = 0.1
    attn_dropout: float = 0.1
    frames_per_token: int = 1
    embed_dim: int = 512
    head_dropout: float = 0.5
    text_encoder: str = "minilm"
    clip_weights: str | None = None
    text_layers: int = 1
    text_heads: int = 6
    text_ff_size: int = 1536
    max_motion_length: int = 224
    # loss
    temperature: float = 0.07
    momentum: float = 0.999
    queue_size: int = 65536
    part_loss: bool = True
    part_weight: float = 1.0
    use_queue: bool = True
    filter_false_negatives: bool = True
    filter_threshold: float = 0.95
    filter_direction_guard: bool = False
    # training
    dataset: str = "embedded"
    train_split: str = "train"
    val_split: str = "val"
    batch_size: int = 128
    epochs: int = 200
    lr_motion: float = 1e-4
    lr_text: float = 1e-4
    lr_heads: float = 1e-4
    weight_decay: float = 0.0
    grad_clip: float = 0.0
    cosine_factor: float = 2.0
    seed: int = 42
    num_workers: int = 0
    length_bucketing: bool = False
    balance_alpha: float = 1.0
    select_metric: str = "rsum"
    checkpoint_every: int = 0
    log_every: int = 20
    preset: str = field(default="custom", compare=False)

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Check ranges and combinations.

        Raises:
            ValueError: naming the field, its value and the allowed range.
        """
        def need(ok: bool, msg: str) -> None:
            if not ok:
                raise ValueError(f"retriever config: {msg}")

        need(self.d_model > 0 and self.d_model % self.num_heads == 0,
             f"d_model ({self.d_model}) must be a positive multiple of num_heads ({self.num_heads})")
        need(self.num_layers >= 1 and self.text_layers >= 0, "num_layers must be >= 1 and text_layers >= 0")
        need(self.embed_dim > 0 and self.ff_size > 0 and self.text_ff_size > 0, "sizes must be positive")
        need(0 <= self.dropout < 1 and 0 <= self.head_dropout < 1 and 0 <= self.attn_dropout < 1,
             "dropouts must lie in [0, 1)")
        need(1 <= self.frames_per_token <= self.max_motion_length, "frames_per_token must lie in [1, max_motion_length]")
        need(self.text_encoder in ("minilm", "clip"), f"text_encoder {self.text_encoder!r} is not 'minilm' or 'clip'")
        need(self.text_encoder != "clip" or self.clip_weights is not None,
             "text_encoder 'clip' needs clip_weights (a local weights file)")
        need(self.temperature > 0, f"temperature must be > 0, got {self.temperature}")
        need(0 <= self.momentum < 1, f"momentum must lie in [0, 1), got {self.momentum}")
        need(self.queue_size >= 1, f"queue_size must be >= 1, got {self.queue_size}")
        need(-1 <= self.filter_threshold <= 1, f"filter_threshold must lie in [-1, 1], got {self.filter_threshold}")
        need(self.part_weight >= 0, "part_weight must be >= 0")
        need(self.batch_size >= 2, f"batch_size must be >= 2 (contrastive loss), got {self.batch_size}")
        need(self.epochs >= 1, "epochs must be >= 1")
        need(min(self.lr_motion, self.lr_text, self.lr_heads) > 0, "learning rates must be > 0")
        need(self.cosine_factor >= 1, "cosine_factor must be >= 1")
        need(self.max_motion_length >= 1, "max_motion_length must be >= 1")
        need(self.select_metric == "rsum" or self.select_metric.startswith(("t2m_", "m2t_")),
             f"select_metric {self.select_metric!r}: use 'rsum' or a metric name such as 't2m_R@1'")

    # -- presets and files ---------------------------------------------------------------------------
    @classmethod
    def preset_config(cls, name: str, **overrides) -> "RetrieverConfig":
        """A preset (``"cpu"`` or ``"paper"``) with fields overridden.

        Raises:
            ValueError: unknown preset or field.
        """
        if name not in PRESETS:
            raise ValueError(f"unknown retriever preset {name!r}; choose one of {', '.join(PRESETS)}")
        return _with(PRESETS[name], **overrides)

    def to_dict(self) -> dict:
        """Plain dict (JSON-serialisable).

        ``filter_direction_guard`` (while off) and ``balance_alpha`` (while 1) are left out, so models trained
        before the options existed keep their ``config.json`` and model hash (the database check).
        """
        out = asdict(self)
        if not out["filter_direction_guard"]:
            del out["filter_direction_guard"]
        if out["balance_alpha"] == 1.0:
            del out["balance_alpha"]
        return out

    @classmethod
    def from_dict(cls, data: dict) -> "RetrieverConfig":
        """Build from a dict such as ``config.json``'s.

        Raises:
            ValueError: unknown keys (with their names) or bad values.
        """
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"retriever config: unknown keys {unknown}; known keys are {sorted(names)}")
        return cls(**data)

    def save(self, path: str | os.PathLike) -> None:
        """Write as JSON (atomically)."""
        atomic_write_text(path, json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n")


def _with(cfg: RetrieverConfig, **overrides) -> RetrieverConfig:
    names = {f.name for f in fields(RetrieverConfig)}
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise ValueError(f"retriever config: unknown keys {unknown}")
    return replace(cfg, **overrides)


_atomic_text = atomic_write_text
"""Former name of :func:`remomask.files.atomic_write_text` (still imported by the retriever's model and CLI)."""


PRESETS: dict[str, RetrieverConfig] = {
    "paper": RetrieverConfig(preset="paper"),
    "cpu": RetrieverConfig(
        d_model=128, num_layers=2, num_heads=4, ff_size=256, dropout=0.0, attn_dropout=0.0, frames_per_token=4,
        text_ff_size=768, queue_size=2048, length_bucketing=True,
        momentum=0.99, batch_size=32, epochs=20, lr_motion=2e-4, lr_text=2e-4, lr_heads=2e-4,
        grad_clip=1.0, checkpoint_every=50, log_every=10, preset="cpu",
    ),
}
"""The named presets (see the module docstring)."""


def load_config(path: str | os.PathLike | None = None, preset: str | None = None,
                **overrides) -> RetrieverConfig:
    """Config from a JSON file and/or a preset, then ``overrides`` (None values are ignored).

    The file's keys override the preset's; with neither, the ``cpu`` preset is used.

    Raises:
        FileNotFoundError: the file does not exist. ValueError: bad JSON, unknown keys or values.
    """
    base = RetrieverConfig.preset_config(preset or "cpu")
    data: dict = {}
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise FileNotFoundError(f"retriever config file {p} does not exist")
        try:
            data = json.loads(p.read_text())
        except json.JSONDecodeError as exc:
            raise ValueError(f"{p} is not valid JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise ValueError(f"{p} must hold a JSON object of config fields")
    data.update({k: v for k, v in overrides.items() if v is not None})
    return _with(base, **data)
