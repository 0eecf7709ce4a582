"""The part-level text-motion retriever (docs/design.md §4.2, ECCV HBM version of 4.4).

Motion side: six part encoders -> concatenated CLS states (6 * d_model) -> instance projection head ->
L2-normalised instance embedding g (512). Each part's CLS state also gives a part embedding p_k (raw CLS
when d_model equals embed_dim, as in the paper; a linear map to embed_dim otherwise).
Text side: frozen text encoder (not part of this module's weights) -> one trainable transformer layer
-> masked mean -> projection head -> L2-normalised text embedding t (512).

A trained model is a folder (Hugging Face convention): ``config.json`` + ``model.safetensors`` +
``README.md`` (model card), written by :meth:`PartRetriever.save_pretrained` and read by
:meth:`PartRetriever.from_pretrained`.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import NamedTuple, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .._pretrained import atomic_write, cpu_state
from ..files import atomic_write_text
from .config import RetrieverConfig
from .encoders import PartMotionEncoder, ProjectionHead, TextTransformer
from ..errors import RemomaskError

__all__ = ["TEXT_DIMS", "RetrieverOutput", "PartRetriever", "RetrieverLoadError"]

TEXT_DIMS = {"minilm": 384, "clip": 512}
"""Token-feature width of each frozen text encoder."""


class RetrieverLoadError(RemomaskError, RuntimeError):
    """A model folder is missing, incomplete or inconsistent."""


class RetrieverOutput(NamedTuple):
    """L2-normalised embeddings of one batch (docs/design.md §4.4 notation).

    Attributes:
        text: (B, E) t_i. motion: (B, E) instance motion embedding g_i. parts: (B, 6, E) p_{i,k}.
    """

    text: torch.Tensor
    motion: torch.Tensor
    parts: torch.Tensor


class PartRetriever(nn.Module):
    """Part-level text-motion retriever (docs/design.md §4.2).

    Args:
        config: :class:`RetrieverConfig` (sizes, skeleton, text encoder name).
        mean, std: (D,) feature statistics the motions are normalised with (stored with the weights so
            the model folder is self-contained); None = zeros / ones.

    Main methods (all embeddings L2-normalised, E = ``config.embed_dim``):
        ``forward(motion (B, T, D), lengths (B,), tokens (B, L, Dt), token_mask (B, L)) -> RetrieverOutput``;
        ``encode_motion(motion, lengths) -> (instance (B, E), parts (B, 6, E))``;
        ``encode_text_features(tokens, token_mask) -> (B, E)``;
        ``encode_text(texts) -> (B, E)`` (runs the frozen text encoder, loaded on first use).
    """

    def __init__(self, config: RetrieverConfig, mean=None, std=None) -> None:
        super().__init__()
        from ..data.parts import part_dims

        self.config = config
        c = config
        dims = part_dims(c.skeleton)
        self.motion_encoder = PartMotionEncoder(dims, c.d_model, c.num_heads, c.ff_size, c.dropout,
                                                c.num_layers, c.max_motion_length, c.skeleton,
                                                attn_dropout=c.attn_dropout, frames_per_token=c.frames_per_token)
        self.motion_head = ProjectionHead(len(dims) * c.d_model, c.embed_dim, c.head_dropout)
        self.part_heads = nn.ModuleList(
            nn.Identity() if c.d_model == c.embed_dim else nn.Linear(c.d_model, c.embed_dim) for _ in dims
        )
        text_dim = TEXT_DIMS[c.text_encoder]
        self.text_transformer = TextTransformer(text_dim, c.text_heads, c.text_ff_size, c.dropout, c.text_layers,
                                                attn_dropout=c.attn_dropout)
        self.text_head = ProjectionHead(text_dim, c.embed_dim, c.head_dropout)
        feat = _feature_dim(c.skeleton)
        self.register_buffer("feature_mean", torch.zeros(feat) if mean is None else torch.as_tensor(mean, dtype=torch.float32))
        self.register_buffer("feature_std", torch.ones(feat) if std is None else torch.as_tensor(std, dtype=torch.float32))
        self._text_encoder: list = []  # kept out of the module tree: frozen, not saved with the weights

    # -- encoding --------------------------------------------------------------------------------------
    def encode_motion(self, motion: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Normalised motion features (B, T, D) and lengths (B,) frames -> (instance (B, E), parts (B, 6, E)).

        Raises:
            ValueError: bad shapes or lengths (see :class:`PartMotionEncoder`).
        """
        cls = self.motion_encoder(motion, lengths)  # (B, 6, d)
        instance = self.motion_head(cls.flatten(1))  # (B, E)
        parts = torch.stack([head(cls[:, k]) for k, head in enumerate(self.part_heads)], dim=1)  # (B, 6, E)
        return F.normalize(instance, dim=-1), F.normalize(parts, dim=-1)

    def encode_text_features(self, tokens: torch.Tensor, token_mask: torch.Tensor) -> torch.Tensor:
        """Frozen token features (B, L, Dt) and mask (B, L) -> text embeddings (B, E)."""
        if tokens.shape[-1] != self.text_head.proj.in_features:
            raise ValueError(f"token features have width {tokens.shape[-1]}, the model expects "
                             f"{self.text_head.proj.in_features} ({self.config.text_encoder})")
        return F.normalize(self.text_head(self.text_transformer(tokens, token_mask)), dim=-1)

    def forward(self, motion: torch.Tensor, lengths: torch.Tensor, tokens: torch.Tensor,
                token_mask: torch.Tensor) -> RetrieverOutput:
        """Both sides at once (one call, as DDP needs): see the class docstring for shapes."""
        text = self.encode_text_features(tokens, token_mask)
        instance, parts = self.encode_motion(motion, lengths)
        return RetrieverOutput(text, instance, parts)

    @property
    def text_encoder(self):
        """The frozen text encoder named in the config, loaded on first use (on this model's device)."""
        if not self._text_encoder:
            from ..text import load_text_encoder

            self._text_encoder.append(load_text_encoder(self.config.text_encoder,
                                                        clip_weights=self.config.clip_weights))
        enc = self._text_encoder[0]
        dev = self.feature_mean.device
        if enc.device != dev:
            enc.to(dev)
        return enc

    def attach_text_encoder(self, encoder) -> None:
        """Use an already loaded frozen encoder (shares its cache).

        Raises:
            ValueError: its width does not match the config's encoder.
        """
        if encoder.dim != TEXT_DIMS[self.config.text_encoder]:
            raise ValueError(f"text encoder width {encoder.dim} does not match {self.config.text_encoder} "
                             f"({TEXT_DIMS[self.config.text_encoder]})")
        self._text_encoder[:] = [encoder]

    @torch.no_grad()
    def encode_text(self, texts: str | Sequence[str]) -> torch.Tensor:
        """Captions -> L2-normalised text embeddings (B, E) on the model's device (eval mode is the caller's)."""
        tokens, mask, _ = self.text_encoder.encode(texts, device=self.feature_mean.device)
        return self.encode_text_features(tokens, mask)

    def normalize(self, features: torch.Tensor) -> torch.Tensor:
        """Raw (..., D) features -> normalised with the stored mean/std."""
        return (features - self.feature_mean) / self.feature_std

    # -- identity and files ----------------------------------------------------------------------------
    def model_hash(self) -> str:
        """SHA-256 (hex, 16 chars) of the config and every weight: names a trained model for the database."""
        h = hashlib.sha256(json.dumps(self.config.to_dict(), sort_keys=True).encode())
        for name, tensor in sorted(self.state_dict().items()):
            h.update(name.encode())
            h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
        return h.hexdigest()[:16]

    def save_pretrained(self, folder: str | os.PathLike, *, card: str | None = None) -> Path:
        """Write ``config.json``, ``model.safetensors`` and ``README.md`` (model card) into ``folder``.

        Files are written to temporary names and renamed, so a crash leaves the previous files intact.
        Returns the folder.
        """
        from safetensors.torch import save_file

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        state = cpu_state(self)
        atomic_write(folder / "model.safetensors",
                     lambda p: save_file(state, p, metadata={"format": "pt", "model_hash": self.model_hash()}))
        self.config.save(folder / "config.json")
        atomic_write_text(folder / "README.md", card if card is not None else model_card(self))
        return folder

    @classmethod
    def from_pretrained(cls, folder: str | os.PathLike, *, device: torch.device | str = "cpu") -> "PartRetriever":
        """Load a model folder written by :meth:`save_pretrained`; returns it in eval mode.

        Raises:
            RetrieverLoadError: folder or files missing, config invalid, or weights that do not fit it.
        """
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        folder = Path(folder)
        for name in ("config.json", "model.safetensors"):
            if not (folder / name).is_file():
                raise RetrieverLoadError(f"{folder / name} is missing; train a retriever with "
                                         "`remomask train retriever` or pass the right --model folder")
        try:
            config = RetrieverConfig.from_dict(json.loads((folder / "config.json").read_text()))
        except (ValueError, TypeError) as exc:
            raise RetrieverLoadError(f"{folder / 'config.json'} is invalid: {exc}") from exc
        model = cls(config)
        try:
            state = load_file(str(folder / "model.safetensors"))
        except (SafetensorError, OSError, ValueError) as exc:
            raise RetrieverLoadError(f"{folder / 'model.safetensors'} is corrupt ({exc}); re-save or retrain") from exc
        try:
            model.load_state_dict(state)
        except RuntimeError as exc:
            raise RetrieverLoadError(f"{folder / 'model.safetensors'} does not match {folder / 'config.json'}: "
                                     f"{str(exc).splitlines()[0]}") from exc
        return model.to(device).eval()

    def num_parameters(self) -> int:
        """Trainable parameters (the frozen text encoder is not counted)."""
        return sum(p.numel() for p in self.parameters())


def _feature_dim(skeleton: str) -> int:
    from ..data.skeleton import get_skeleton

    return get_skeleton(skeleton).feature_dim


def model_card(model: PartRetriever, *, training: dict | None = None, metrics: dict | None = None) -> str:
    """Markdown model card: architecture, data, training settings, scores and licences."""
    c = model.config
    lines = [
        "# remomask part-level text-motion retriever",
        "",
        "Part-level contrastive text-motion retriever trained with Hierarchical Bidirectional Momentum (HBM) "
        "learning, re-implemented from the ReMoMask paper (docs/design.md §4.2-§4.4).",
        "",
        "## Model",
        f"- six part encoders (Root, R_Leg, L_Leg, Backbone, R_Arm, L_Arm): {c.num_layers} layers, width "
        f"{c.d_model}, {c.num_heads} heads, FF {c.ff_size}, key-padding masks; instance head to {c.embed_dim}-d",
        f"- text: frozen `{c.text_encoder}` encoder + {c.text_layers} trainable transformer layer(s) + projection "
        f"head to {c.embed_dim}-d",
        f"- trainable parameters: {model.num_parameters():,}; model hash `{model.model_hash()}`",
        f"- preset `{c.preset}`; loss: instance InfoNCE both directions"
        + (f" + {c.part_weight} x part InfoNCE" if c.part_loss else "")
        + (f", momentum {c.momentum}, queue {c.queue_size}" if c.use_queue else ", in-batch negatives only")
        + (f", false negatives filtered (same caption or cosine > {c.filter_threshold})"
           if c.filter_false_negatives else "") + f", temperature {c.temperature}",
        "",
        "## Data",
        f"- dataset `{c.dataset}`, trained on split `{c.train_split}`, selected on `{c.val_split}` "
        f"({c.select_metric}); motions normalised with the dataset's Mean/Std (stored in the weights).",
        "",
    ]
    if training:
        lines += ["## Training", ""] + [f"- {k}: {v}" for k, v in training.items()] + [""]
    if metrics:
        lines += ["## Scores", "", "| metric | value |", "|---|---|"]
        lines += [f"| {k} | {v:.2f} |" if isinstance(v, float) else f"| {k} | {v} |" for k, v in metrics.items()]
        lines.append("")
    lines += [
        "## Licence",
        "Code: MIT. The weights are derived from the training data: for the embedded dataset, Bandai-Namco "
        "Research Motiondataset (CC BY-NC 4.0, non-commercial) and HDM05 (CC BY-SA 3.0). The frozen text "
        "encoder all-MiniLM-L6-v2 is Apache-2.0.",
        "",
    ]
    return "\n".join(lines)

