"""The evaluator of the embedded dataset: a text-motion embedding model and label classifiers (docs/design.md §10.1).

It is used only to score motions, never to generate them. The design follows Guo et al. 2022 (docs/design.md
§10.1), shrunk for a small dataset, with the GloVe + POS word input replaced by the token features of the
frozen bundled sentence encoder (all-MiniLM-L6-v2):

- movement encoder: features[..., :-4] (no foot contacts) -> Conv1d(k4 s2 p1) -> Dropout -> LeakyReLU
  -> Conv1d(k4 s2 p1) -> Dropout -> LeakyReLU -> Linear: T/4 steps;
- motion encoder: Linear -> BiGRU (packed by length // 4, learned initial state) -> [h_fwd ; h_bwd]
  -> Linear -> LayerNorm -> LeakyReLU -> Linear;
- text encoder: MiniLM tokens (L, 384) -> Linear -> BiGRU (packed by token count, learned initial state)
  -> the same output head;
- both embeddings are L2-normalised and scaled to ``embed_radius``, so distances lie in
  ``[0, 2 * embed_radius]`` and FID / diversity land in the same range as the published HumanML3D
  numbers (radius 10). Training is contrastive (InfoNCE on cosine similarity, see :mod:`.training`).

It differs from the retriever (six transformer part encoders and a transformer layer over the text
tokens, docs/design.md §4.2) in architecture, training seed and loss weighting, so a generator is not scored by
the network that fed it.

**Normalisation (docs/design.md §15.3).** The evaluator takes *de-normalised* 263-d features and normalises them
itself with its own ``mean``/``std`` buffers (the statistics of the data it was trained on, stored in
``model.safetensors``). A generator must therefore undo its own normalisation before its motions are
scored; nothing assumes that two normalisations coincide.

The label classifiers (one per label, e.g. ``action`` and ``style``) are small convolutional networks
over all 263 normalised features with masked mean + max pooling; they give the recognition accuracy
of generated motions against the labels of their prompts.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from .._pretrained import atomic_write, cpu_state
from ..bundled import EVALUATOR_DIR
from ..errors import RemomaskError

__all__ = [
    "EvaluatorConfig",
    "EvaluatorError",
    "MovementEncoder",
    "SequenceEncoder",
    "LabelClassifier",
    "T2MEvaluator",
    "DEFAULT_EVALUATOR_DIR",
    "load_evaluator",
]

DEFAULT_EVALUATOR_DIR = EVALUATOR_DIR
"""Folder of the evaluator shipped with the package (trained on the embedded dataset)."""

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
CARD_NAME = "README.md"


class EvaluatorError(RemomaskError, RuntimeError):
    """The evaluator cannot be built, loaded or used with the given input (the message gives the fix)."""


@dataclass
class EvaluatorConfig:
    """Every setting of the embedded-dataset evaluator and its training. Frames are at 20 fps.

    Model (docs/design.md §10.1, shrunk):
        feature_dim: motion feature size (263 HumanML3D layout); the movement encoder sees
            ``feature_dim - 4`` (no foot contacts).
        movement_hidden, movement_latent: conv width and output size of the movement encoder.
        motion_hidden: BiGRU hidden size per direction of the motion encoder.
        text_encoder: frozen sentence encoder name (``"minilm"``); text_dim: its token width (384).
        text_hidden: BiGRU hidden size per direction of the text encoder.
        coemb_hidden: width of the output heads; embed_dim: embedding size.
        embed_radius: norm of every embedding (distances are in [0, 2 * radius]).
        dropout: dropout of the movement encoder and the classifiers.
        unit_length: temporal downsampling of the movement encoder (4).
        max_frames: frame canvas every motion is zero-padded to before encoding (196, docs/design.md §2.4).
        classifier_hidden: conv width of the label classifiers.
        classes: ``{label name: [class names]}``; filled from the train split by the trainer.

    Training (:mod:`.training`):
        dataset, train_split, val_split: data (``"embedded"`` or a HumanML3D-layout folder).
        seed: training seed (the retriever uses 42; this must differ).
        batch_size, epochs, lr, weight_decay, grad_clip: contrastive phase (AdamW, cosine decay).
        temperature: InfoNCE temperature on cosine similarities.
        label_false_negatives: drop from the denominators the batch items whose labels (all of
            ``classes``' names) equal the query's; identical captions are always dropped.
        classifier_epochs, classifier_lr, label_smoothing: classifier phase.
        val_repeats: evaluation seeds averaged for model selection on ``val_split``.
    """

    feature_dim: int = 263
    movement_hidden: int = 128
    movement_latent: int = 128
    motion_hidden: int = 128
    text_encoder: str = "minilm"
    text_dim: int = 384
    text_hidden: int = 128
    coemb_hidden: int = 256
    embed_dim: int = 256
    embed_radius: float = 10.0
    dropout: float = 0.2
    unit_length: int = 4
    max_frames: int = 196
    classifier_hidden: int = 128
    classes: dict = field(default_factory=dict)
    # training
    dataset: str = "embedded"
    train_split: str = "train"
    val_split: str = "val"
    seed: int = 2718
    batch_size: int = 64
    epochs: int = 8
    lr: float = 1e-3
    weight_decay: float = 1e-4
    grad_clip: float = 1.0
    temperature: float = 0.07
    label_false_negatives: bool = True
    classifier_epochs: int = 10
    classifier_lr: float = 1e-3
    label_smoothing: float = 0.1
    val_repeats: int = 3

    def __post_init__(self) -> None:
        if self.feature_dim <= 4:
            raise EvaluatorError(f"feature_dim must exceed the 4 foot-contact features, got {self.feature_dim}")
        for name in ("movement_hidden", "movement_latent", "motion_hidden", "text_dim", "text_hidden",
                     "coemb_hidden", "embed_dim", "classifier_hidden", "unit_length"):
            if int(getattr(self, name)) < 1:
                raise EvaluatorError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.max_frames < 4 or self.max_frames % 4:
            raise EvaluatorError(f"max_frames must be a positive multiple of 4, got {self.max_frames}")
        if self.unit_length != 4:
            raise EvaluatorError("unit_length must be 4: the movement encoder has two stride-2 convolutions")
        if self.embed_radius <= 0 or self.temperature <= 0:
            raise EvaluatorError("embed_radius and temperature must be > 0")
        self.classes = {str(k): [str(c) for c in v] for k, v in dict(self.classes).items()}

    def to_dict(self) -> dict:
        """JSON-ready dict of every field."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping) -> "EvaluatorConfig":
        """Build from a dict; unknown keys raise (so a typo in config.json is not silently ignored).

        Raises:
            EvaluatorError: unknown keys.
        """
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise EvaluatorError(f"unknown evaluator config keys {unknown}; known: {sorted(known)}")
        return cls(**dict(data))


def _on_canvas(features: torch.Tensor, lengths: torch.Tensor, canvas: int) -> torch.Tensor:
    """Pad or cut (B, T, D) to ``canvas`` frames (or to the longest length rounded up to 4 if longer).

    The last valid steps of the strided convolutions see a few frames past a sample's length, so an
    embedding depends on the padded size; a fixed canvas makes it depend on the sample only, whatever
    batch it is in (the reference evaluator always sees 196-frame tensors, docs/design.md §2.4).
    """
    size = max(canvas, -(-int(lengths.max()) // 4) * 4)
    features = features[:, :size]
    if features.shape[1] < size:
        features = F.pad(features, (0, 0, 0, size - features.shape[1]))
    return features


def _valid_steps(lengths: torch.Tensor, unit: int, steps: int) -> torch.Tensor:
    """Valid output steps of the two stride-2 convolutions for ``lengths`` frames: clamp(len // unit, 1, steps)."""
    return torch.clamp(torch.div(lengths, unit, rounding_mode="floor"), 1, steps)


def _step_mask(valid: torch.Tensor, steps: int) -> torch.Tensor:
    return torch.arange(steps, device=valid.device)[None, :] < valid[:, None]


class MovementEncoder(nn.Module):
    """Two stride-2 convolutions over time then a linear map (docs/design.md §10.1 movement encoder).

    Input (B, T, C) -> output (B, T // 4, latent) for T a multiple of 4 (``floor(floor(T/2)/2)`` steps).
    Submodule names (``main.0``, ``main.3``, ``out_net``) follow the reference layout.
    """

    def __init__(self, in_dim: int, hidden: int, latent: int, dropout: float = 0.2) -> None:
        super().__init__()
        self.main = nn.Sequential(
            nn.Conv1d(in_dim, hidden, 4, 2, 1), nn.Dropout(dropout), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv1d(hidden, latent, 4, 2, 1), nn.Dropout(dropout), nn.LeakyReLU(0.2, inplace=True),
        )
        self.out_net = nn.Linear(latent, latent)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, C) -> (B, T', latent)."""
        h = self.main(x.transpose(1, 2)).transpose(1, 2)  # (B, T', latent)
        return self.out_net(h)


class SequenceEncoder(nn.Module):
    """Linear -> packed BiGRU with a learned initial state -> last states -> MLP head (docs/design.md §10.1).

    Used for both the motion encoder (input: movement steps) and the text encoder (input: tokens).
    Submodule names (``input_emb``, ``gru``, ``output_net``, ``hidden``) follow the reference layout.

    Args:
        in_dim, hidden: input size and GRU hidden size per direction.
        head_hidden, out_dim: width of the output MLP and the output size.
    """

    def __init__(self, in_dim: int, hidden: int, head_hidden: int, out_dim: int) -> None:
        super().__init__()
        self.input_emb = nn.Linear(in_dim, hidden)
        self.gru = nn.GRU(hidden, hidden, batch_first=True, bidirectional=True)
        self.output_net = nn.Sequential(
            nn.Linear(2 * hidden, head_hidden), nn.LayerNorm(head_hidden), nn.LeakyReLU(0.2, inplace=True),
            nn.Linear(head_hidden, out_dim),
        )
        self.hidden = nn.Parameter(torch.randn(2, 1, hidden) * 0.1)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """x (B, S, in_dim), lengths (B,) valid steps (>= 1) -> (B, out_dim)."""
        h = self.input_emb(x)  # (B, S, hidden)
        packed = pack_padded_sequence(h, lengths.detach().cpu().long(), batch_first=True, enforce_sorted=False)
        h0 = self.hidden.expand(-1, x.shape[0], -1).contiguous()  # (2, B, hidden)
        _, last = self.gru(packed, h0)  # (2, B, hidden), in the caller's batch order
        return self.output_net(torch.cat([last[0], last[1]], dim=-1))


class LabelClassifier(nn.Module):
    """Motion -> class logits for one label (recognition accuracy of generated motions).

    Two stride-2 convolutions over the normalised 263-d features, masked mean and max pooling over the
    valid steps, and a two-layer head. Input (B, T, D) normalised, lengths (B,) frames -> (B, classes).
    """

    def __init__(self, in_dim: int, hidden: int, num_classes: int, dropout: float = 0.2) -> None:
        super().__init__()
        if num_classes < 2:
            raise EvaluatorError(f"a classifier needs at least 2 classes, got {num_classes}")
        self.conv = nn.Sequential(
            nn.Conv1d(in_dim, hidden, 4, 2, 1), nn.LeakyReLU(0.2, inplace=True), nn.Dropout(dropout),
            nn.Conv1d(hidden, hidden, 4, 2, 1), nn.LeakyReLU(0.2, inplace=True),
        )
        self.head = nn.Sequential(nn.Linear(2 * hidden, hidden), nn.LeakyReLU(0.2, inplace=True),
                                  nn.Dropout(dropout), nn.Linear(hidden, num_classes))

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        h = self.conv(x.transpose(1, 2)).transpose(1, 2)  # (B, T', hidden)
        valid = _valid_steps(lengths, 4, h.shape[1])
        mask = _step_mask(valid, h.shape[1])[..., None]  # (B, T', 1)
        mean = (h * mask).sum(1) / valid[:, None].to(h.dtype)
        peak = h.masked_fill(~mask, float("-inf")).amax(1)
        return self.head(torch.cat([mean, peak], dim=-1))


class T2MEvaluator(nn.Module):
    """Text-motion evaluator of the embedded dataset with its label classifiers (docs/design.md §10.1, §10.2).

    Args:
        config: :class:`EvaluatorConfig`; ``config.classes`` decides the classifiers.
        mean, std: (feature_dim,) statistics used to normalise the de-normalised input features; None =
            zeros / ones (set them before training: the trainer uses the training data's Mean/Std).

    Inputs everywhere are de-normalised features (B, T, feature_dim) zero-padded after ``lengths``
    (B,) frames (20 fps); T is a multiple of 4 (196 in the protocol). Embeddings are (B, embed_dim)
    with norm ``embed_radius``.
    """

    def __init__(self, config: EvaluatorConfig, mean=None, std=None) -> None:
        super().__init__()
        self.config = config
        c = config
        self.movement_encoder = MovementEncoder(c.feature_dim - 4, c.movement_hidden, c.movement_latent, c.dropout)
        self.motion_encoder = SequenceEncoder(c.movement_latent, c.motion_hidden, c.coemb_hidden, c.embed_dim)
        self.text_encoder = SequenceEncoder(c.text_dim, c.text_hidden, c.coemb_hidden, c.embed_dim)
        self.classifiers = nn.ModuleDict({
            name: LabelClassifier(c.feature_dim, c.classifier_hidden, len(classes), c.dropout)
            for name, classes in c.classes.items()
        })
        mean = torch.zeros(c.feature_dim) if mean is None else torch.as_tensor(mean, dtype=torch.float32)
        std = torch.ones(c.feature_dim) if std is None else torch.as_tensor(std, dtype=torch.float32)
        if mean.shape != (c.feature_dim,) or std.shape != (c.feature_dim,):
            raise EvaluatorError(f"mean/std must have shape ({c.feature_dim},), got {tuple(mean.shape)} / "
                                 f"{tuple(std.shape)}")
        self.register_buffer("mean", mean.clone())
        self.register_buffer("std", torch.where(std.abs() <= 1e-8, torch.ones_like(std), std).clone())
        # The frozen sentence encoder is loaded on first use and kept outside the module tree, so its
        # weights are neither trained nor saved with the evaluator's.
        object.__setattr__(self, "_text_model", None)

    # -- inputs ------------------------------------------------------------------------------------

    @property
    def device(self) -> torch.device:
        return self.mean.device

    def _check_motion(self, features: torch.Tensor, lengths) -> tuple[torch.Tensor, torch.Tensor]:
        if not isinstance(features, torch.Tensor) or features.ndim != 3:
            raise EvaluatorError(f"motion features must be a (B, T, {self.config.feature_dim}) tensor, got "
                                 f"{getattr(features, 'shape', type(features).__name__)}")
        if features.shape[-1] != self.config.feature_dim:
            raise EvaluatorError(f"motion features have {features.shape[-1]} dims; this evaluator takes "
                                 f"{self.config.feature_dim}-d (de-normalised HumanML3D-layout) features")
        lengths = torch.as_tensor(lengths, dtype=torch.long, device=features.device).reshape(-1)
        if lengths.shape[0] != features.shape[0]:
            raise EvaluatorError(f"{lengths.shape[0]} lengths for {features.shape[0]} motions")
        if (lengths < 4).any() or (lengths > features.shape[1]).any():
            raise EvaluatorError(f"lengths must lie in [4, {features.shape[1]}] frames, got "
                                 f"{int(lengths.min())}..{int(lengths.max())}")
        features = _on_canvas(features, lengths, self.config.max_frames)
        return features.to(self.device, torch.float32), lengths.to(self.device)

    def normalize(self, features: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """(B, T, D) de-normalised -> normalised with the evaluator's statistics, zero after ``lengths``."""
        x = (features - self.mean) / self.std
        mask = torch.arange(x.shape[1], device=x.device)[None, :] < lengths[:, None]
        return x * mask[..., None]

    # -- embeddings --------------------------------------------------------------------------------

    def encode_motion(self, features: torch.Tensor, lengths) -> torch.Tensor:
        """Motion embeddings: features (B, T, D) de-normalised, lengths (B,) frames -> (B, embed_dim).

        Raises:
            EvaluatorError: wrong shape, or lengths outside [4, T].
        """
        features, lengths = self._check_motion(features, lengths)
        x = self.normalize(features, lengths)[..., :-4]  # docs/design.md §10.1: no foot contacts
        steps = self.movement_encoder(x)  # (B, T/4, latent)
        valid = _valid_steps(lengths, self.config.unit_length, steps.shape[1])
        return self._project(self.motion_encoder(steps, valid))

    def encode_text_features(self, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Text embeddings from frozen token features (B, L, text_dim) and mask (B, L) -> (B, embed_dim)."""
        if tokens.ndim != 3 or tokens.shape[-1] != self.config.text_dim:
            raise EvaluatorError(f"token features must be (B, L, {self.config.text_dim}), got {tuple(tokens.shape)}")
        lengths = mask.long().sum(1).clamp_min(1)
        return self._project(self.text_encoder(tokens.to(self.device), lengths))

    def text_model(self):
        """The frozen sentence encoder (``config.text_encoder``), loaded on first use."""
        if self._text_model is None:
            from ..text import default_text_encoder, load_text_encoder

            name = self.config.text_encoder
            enc = default_text_encoder() if name == "minilm" else load_text_encoder(name)
            object.__setattr__(self, "_text_model", enc)
            if self._text_model.dim != self.config.text_dim:
                raise EvaluatorError(f"text encoder {name!r} gives {self._text_model.dim}-d tokens, the evaluator "
                                     f"was built for {self.config.text_dim}")
        return self._text_model

    def encode_text(self, captions: Sequence[str]) -> torch.Tensor:
        """Text embeddings of B captions -> (B, embed_dim).

        Raises:
            TextEncoderError: empty captions or the sentence encoder is not installed.
        """
        tokens, mask, _ = self.text_model().encode(list(captions), device=self.device)
        return self.encode_text_features(tokens, mask)

    def _project(self, h: torch.Tensor) -> torch.Tensor:
        return F.normalize(h, dim=-1) * self.config.embed_radius

    # -- labels ------------------------------------------------------------------------------------

    @property
    def label_names(self) -> list[str]:
        """Names of the labels with a classifier (e.g. ``["action", "style"]``)."""
        return list(self.classifiers.keys())

    def classify(self, features: torch.Tensor, lengths) -> dict[str, torch.Tensor]:
        """Class logits per label: ``{name: (B, classes)}`` for de-normalised (B, T, D) features."""
        features, lengths = self._check_motion(features, lengths)
        x = self.normalize(features, lengths)
        return {name: clf(x, lengths) for name, clf in self.classifiers.items()}

    @torch.no_grad()
    def predict_labels(self, features: torch.Tensor, lengths) -> dict[str, list[str]]:
        """Predicted class names per label: ``{name: [B names]}``."""
        return {name: [self.config.classes[name][i] for i in logits.argmax(-1).tolist()]
                for name, logits in self.classify(features, lengths).items()}

    # -- the evaluation protocol's embedder interface ----------------------------------------------

    @property
    def name(self) -> str:
        return "remomask-embedded-evaluator"

    @torch.no_grad()
    def text_embeddings(self, batch: Mapping) -> torch.Tensor:
        """Protocol hook: (B, embed_dim) embeddings of ``batch["caption"]``."""
        return self.encode_text(batch["caption"])

    @torch.no_grad()
    def motion_embeddings(self, features: torch.Tensor, lengths) -> torch.Tensor:
        """Protocol hook: (B, embed_dim) embeddings of de-normalised features."""
        return self.encode_motion(features, lengths)

    # -- files -------------------------------------------------------------------------------------

    def save_pretrained(self, directory: str | os.PathLike, card: str | None = None) -> Path:
        """Write ``config.json``, ``model.safetensors`` (and ``README.md`` when ``card`` is given).

        Each file is written to a temporary file in ``directory`` and renamed into place.
        """
        from safetensors.torch import save_file

        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        state = cpu_state(self)
        # files readable by everyone (0644): the evaluator is shipped in the package
        atomic_write(out / WEIGHTS_NAME, lambda p: save_file(state, str(p), metadata={"format": "pt"}))
        text = json.dumps(self.config.to_dict(), indent=1, sort_keys=True) + "\n"
        atomic_write(out / CONFIG_NAME, lambda p: Path(p).write_text(text, encoding="utf-8"))
        if card is not None:
            atomic_write(out / CARD_NAME, lambda p: Path(p).write_text(card, encoding="utf-8"))
        return out

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike | None = None, *, device=None) -> "T2MEvaluator":
        """Load an evaluator folder written by :meth:`save_pretrained` (None = the bundled one), in eval mode.

        Raises:
            EvaluatorError: the folder or a file is missing, or the weights do not fit the config.
        """
        from safetensors.torch import load_file

        folder = Path(directory) if directory is not None else DEFAULT_EVALUATOR_DIR
        cfg_path, w_path = folder / CONFIG_NAME, folder / WEIGHTS_NAME
        for p in (cfg_path, w_path):
            if not p.is_file():
                raise EvaluatorError(f"{p} not found: {folder} is not an evaluator folder; train one with "
                                     "`remomask train evaluator --out DIR` or reinstall remomask")
        try:
            config = EvaluatorConfig.from_dict(json.loads(cfg_path.read_text(encoding="utf-8")))
        except (json.JSONDecodeError, TypeError) as exc:
            raise EvaluatorError(f"cannot read {cfg_path}: {exc}") from exc
        model = cls(config)
        state = load_file(str(w_path))
        missing, unexpected = model.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise EvaluatorError(f"{w_path} does not fit {cfg_path}: missing {missing[:5]}, unexpected "
                                 f"{unexpected[:5]}")
        model.eval()
        return model.to(device) if device is not None else model


def load_evaluator(directory: str | os.PathLike | None = None, *, device=None) -> T2MEvaluator:
    """Load the evaluator from ``directory`` (None = the one shipped in the package), frozen, eval mode.

    Raises:
        EvaluatorError: see :meth:`T2MEvaluator.from_pretrained`.
    """
    model = T2MEvaluator.from_pretrained(directory, device=device)
    for p in model.parameters():
        p.requires_grad_(False)
    return model
