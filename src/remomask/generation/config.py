"""Sizes and switches of the generation models, with ``cpu`` and ``paper`` presets (design §5.2, §5.5, §6.1, §7, §9).

Three dataclasses, one per model: :class:`MaskTransformerConfig` (base layer, SSTA, RAG-CFG),
:class:`ResidualTransformerConfig` (quantiser layers 1..Q-1) and :class:`LengthEstimatorConfig` (text ->
token length). Each is JSON-round-trippable (``to_dict`` / ``from_dict``) and is the only constructor
argument of its model.

Presets:

- ``paper``: the README run of the reference code (docs/design.md §5.2, §6.1, §9): masked transformer latent 512,
  8 heads, 8 SSTA + 8 joint-wise + 8 time-wise layers, FF 1024, dropout 0.2, token table 258 x 1024;
  residual transformer latent 384, 6 heads, 8 + 8 + 8 layers, shared weights, text drop 0.01.
- ``cpu``: small models for the bundled dataset on a 2-core CPU (``benchmarks`` measure the step time;
  see the numbers in the docstring of :data:`PRESETS`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

__all__ = [
    "SSTA_KINDS",
    "RETRIEVAL_FORMS",
    "MEMORY_FUSIONS",
    "MaskTransformerConfig",
    "ResidualTransformerConfig",
    "LengthEstimatorConfig",
    "PRESETS",
]

SSTA_KINDS = ("eccv", "linear")
"""``eccv``: softmax SSTA of the ECCV paper (docs/design.md §5.6), remomask default. ``linear``: the public code's
linear-attention variant (docs/design.md §5.3)."""

RETRIEVAL_FORMS = ("embedding", "tokens")
"""How retrieved motions reach the masked transformer: ``embedding`` (the paper's R_m / R_t vectors in SSTA,
docs/design.md §5.6) or ``tokens`` (additionally their base-layer token grids as key/value memory, §5.8)."""
MEMORY_FUSIONS = ("joint", "gated")
"""How a ``tokens``-form model reads the retrieved-token memory (docs/design.md §5.9): ``joint`` (the memory joins the
keys and values of each SSTA block's one softmax, §5.8) or ``gated`` (its own cross-attention per SSTA block, added
through a tanh gate that starts at zero, so the untrained model equals its no-memory self)."""


class _ConfigMixin:
    """``to_dict`` / ``from_dict`` / ``preset`` shared by the configs."""

    _preset_key: str = ""

    def to_dict(self) -> dict:
        """JSON-ready dict of every field."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict):
        """Inverse of :meth:`to_dict`.

        Raises:
            ValueError: unknown keys (names them) or bad values.
        """
        if not isinstance(d, dict):
            raise ValueError(f"{cls.__name__}.from_dict expects a dict, got {type(d).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown {cls.__name__} keys {unknown}; known keys are {sorted(known)}")
        return cls(**d)

    @classmethod
    def preset(cls, name: str, **overrides):
        """The named preset (``cpu`` or ``paper``) with optional field overrides.

        Raises:
            ValueError: unknown preset or field.
        """
        if name not in PRESETS:
            raise ValueError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}")
        fields = dict(PRESETS[name][cls._preset_key])
        fields.update(overrides)
        return cls.from_dict(fields)


def _check_positive(obj, names) -> None:
    for name in names:
        value = getattr(obj, name)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {value!r}")


def _check_nonneg(obj, names) -> None:
    for name in names:
        value = getattr(obj, name)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ValueError(f"{name} must be an integer >= 0, got {value!r}")


def _check_prob(obj, names) -> None:
    for name in names:
        value = getattr(obj, name)
        if not 0.0 <= float(value) < 1.0:
            raise ValueError(f"{name} must be a probability in [0, 1), got {value!r}")


def _check_heads(dim: int, heads: int, what: str) -> None:
    if dim % heads:
        raise ValueError(f"{what}: latent_dim {dim} is not divisible by num_heads {heads}")
    if dim % 4:
        raise ValueError(f"{what}: latent_dim {dim} must be a multiple of 4 (2D sinusoidal position encoding)")


def _check_column_codes(column_codes, num_codes: int, num_columns: int) -> tuple[int, ...] | None:
    """Validate a config's ``column_codes`` (None, or one code count per column, each in 1..K).

    Returns:
        The counts as a tuple of ints, or None.

    Raises:
        ValueError: wrong length, non-integer counts, or counts outside 1..``num_codes``.
    """
    if column_codes is None:
        return None
    codes = tuple(column_codes)
    if len(codes) != num_columns or any(not isinstance(x, int) or isinstance(x, bool) or not 1 <= x <= num_codes
                                        for x in codes):
        raise ValueError(f"column_codes must be None or {num_columns} integers in 1..{num_codes} (codes of each "
                         f"token column), got {list(codes)}")
    return codes


@dataclass
class MaskTransformerConfig(_ConfigMixin):
    """Architecture of :class:`~remomask.generation.mask_transformer.MaskTransformer` (docs/design.md §5.1-§5.6).

    Attributes:
        num_codes: K, codes per quantiser layer (256). Special ids: mask ``K``, pad ``K + 1``.
        num_columns: J', token columns per time step (6).
        max_tokens: time rows the position encoding covers (50 >= 196 frames / 4).
        token_dim: width of the token embedding table (1024 in the reference; not tied to the VQ codebook),
            followed by Linear(token_dim -> latent_dim) unless equal.
        latent_dim, num_heads, ff_size, dropout: transformer width, heads, feed-forward width, dropout (on the
            embeddings and the residual branches).
        attn_dropout: dropout on the attention weights (0.2 as ``nn.TransformerEncoder`` in the reference;
            0 lets the CPU use the fused attention kernel, about 2x faster training there).
        ssta_layers: SSTA blocks (8). joint_layers: joint-wise ("attnj") blocks over the J' columns of one
            time step (8; 0 = off). time_layers: time-wise ("attnt") blocks over the rows of one column
            (8; 0 = off).
        ssta: ``"eccv"`` (default: pre-norm residual softmax attention with FFN; K = [z; MLP([t; R_t; R_m])],
            V = [z; R_m], design §5.6) or ``"linear"`` (public code, design §5.3: linear attention, the layer output
            replaces the hidden state, no FFN).
        text_dim: width of the sentence embedding the model is conditioned on (384 for all-MiniLM-L6-v2).
        retrieval_dim: E, width of the retrieved motion / text embeddings (512).
        retrieval_k: k, retrieved entries used per prompt (1).
        retrieval_k_t2t: of the k entries, how many are text-to-text neighbours (the caption's closest stored
            captions, of other motions than the text-to-motion ones; docs/design.md §4.9, after ReMoGPT); the
            other ``k - retrieval_k_t2t`` are text-to-motion neighbours. 0 (default): text-to-motion only.
        retrieval_form: ``"embedding"`` (default, the paper's form, docs/design.md §5.6) or ``"tokens"``: the
            retrieved entries' base-layer token grids, embedded with this model's token table plus learned time,
            column and "retrieved" type embeddings, are also keys and values of every SSTA block (§5.8; ECCV
            SSTA with retrieval only). Needs a database with token grids of the same tokenizer.
        memory_fusion: ``tokens`` form only: ``"joint"`` (default; the memory joins the SSTA softmax, §5.8) or
            ``"gated"`` (a separate cross-attention to the memory in every SSTA block, scaled by tanh of a learned
            gate initialised at 0, after Flamingo; docs/design.md §5.9).
        use_retrieval: False gives the MoMask-style no-RAG baseline with the same blocks: no retrieval input,
            and the text becomes a key/value token of the attention (as MoMask's prepended text token).
        text_value: ECCV form only: also put the text token in the values (arXiv routing K = (z, t, ...),
            V = (z, t, R_m)); the ECCV default keeps t only in the keys (inside h_sem).
        text_drop, retrieval_drop: RAG-CFG training drop probabilities, drawn independently per sample (0.1
            each, docs/design.md §5.5).
        column_codes: codes of each token column's codebook, or None (all ``num_codes``). The dual tokenizer's
            2D columns have fewer codes than its 1D column (256 and 512 in the ``paper`` preset); the logits of
            ids a column does not have are -inf in the loss and in sampling
            (:func:`~remomask.generation.conditions.column_codes_of`).
    """

    _preset_key = "mask"

    num_codes: int = 256
    num_columns: int = 6
    max_tokens: int = 50
    token_dim: int = 1024
    latent_dim: int = 512
    num_heads: int = 8
    ff_size: int = 1024
    dropout: float = 0.2
    attn_dropout: float = 0.2
    ssta_layers: int = 8
    joint_layers: int = 8
    time_layers: int = 8
    ssta: str = "eccv"
    text_dim: int = 384
    retrieval_dim: int = 512
    retrieval_k: int = 1
    retrieval_k_t2t: int = 0
    retrieval_form: str = "embedding"
    memory_fusion: str = "joint"
    use_retrieval: bool = True
    text_value: bool = False
    text_drop: float = 0.1
    retrieval_drop: float = 0.1
    column_codes: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        _check_positive(self, ("num_codes", "num_columns", "max_tokens", "token_dim", "latent_dim", "num_heads",
                               "ff_size", "ssta_layers", "text_dim", "retrieval_dim", "retrieval_k"))
        self.column_codes = _check_column_codes(self.column_codes, self.num_codes, self.num_columns)
        _check_nonneg(self, ("joint_layers", "time_layers"))
        _check_prob(self, ("dropout", "attn_dropout", "text_drop", "retrieval_drop"))
        if self.ssta not in SSTA_KINDS:
            raise ValueError(f"ssta must be one of {SSTA_KINDS}, got {self.ssta!r}")
        _check_nonneg(self, ("retrieval_k_t2t",))
        if self.retrieval_k_t2t > self.retrieval_k:
            raise ValueError(f"retrieval_k_t2t ({self.retrieval_k_t2t}) cannot exceed retrieval_k ({self.retrieval_k})")
        if self.retrieval_form not in RETRIEVAL_FORMS:
            raise ValueError(f"retrieval_form must be one of {RETRIEVAL_FORMS}, got {self.retrieval_form!r}")
        if self.retrieval_form == "tokens" and (self.ssta != "eccv" or not self.use_retrieval):
            raise ValueError("retrieval_form='tokens' needs the ECCV SSTA (ssta='eccv') and use_retrieval=True")
        if self.memory_fusion not in MEMORY_FUSIONS:
            raise ValueError(f"memory_fusion must be one of {MEMORY_FUSIONS}, got {self.memory_fusion!r}")
        if self.memory_fusion != "joint" and self.retrieval_form != "tokens":
            raise ValueError(f"memory_fusion={self.memory_fusion!r} reads retrieved token grids: it needs "
                             "retrieval_form='tokens'")
        _check_heads(self.latent_dim, self.num_heads, "MaskTransformerConfig")

    @property
    def mask_id(self) -> int:
        """Id of the [MASK] token: K."""
        return self.num_codes

    @property
    def pad_id(self) -> int:
        """Id of the padding token: K + 1."""
        return self.num_codes + 1


@dataclass
class ResidualTransformerConfig(_ConfigMixin):
    """Architecture of :class:`~remomask.generation.residual_transformer.ResidualTransformer` (docs/design.md §6.1).

    Attributes:
        num_codes: K per layer (256). num_columns: J' (6). num_quantizers: Q (6); the model predicts layers
            1..Q-1. max_tokens: time rows of the position encoding (50).
        code_dim: width C of the per-layer token embedding / classifier tables (1024 in the reference).
        latent_dim, num_heads, ff_size, dropout: transformer sizes (reference run: 384, 6, 1024, 0.2).
        attn_dropout: dropout on the attention weights (0.2; see :class:`MaskTransformerConfig`).
        layers: full 2D self-attention blocks (8). joint_layers, time_layers: joint-wise / time-wise blocks
            (8 each; 0 = off).
        share_weights: tie the embedding table of layer l to the classifier of layer l (l = 1..Q-2), no output
            bias (docs/design.md §6.1 ``--share_weight``). Without it every layer has its own tables and a proper output
            bias (the reference code's ``output += output + bias`` bug is not reproduced).
        text_dim: sentence embedding width (384). text_drop: CFG training drop probability (0.1; the
            reference README run uses 0.01, the ``paper`` preset).
        column_codes: codes of each token column's codebook, or None (all ``num_codes``); see
            :class:`MaskTransformerConfig`.
    """

    _preset_key = "residual"

    num_codes: int = 256
    num_columns: int = 6
    num_quantizers: int = 6
    max_tokens: int = 50
    code_dim: int = 1024
    latent_dim: int = 384
    num_heads: int = 6
    ff_size: int = 1024
    dropout: float = 0.2
    attn_dropout: float = 0.2
    layers: int = 8
    joint_layers: int = 8
    time_layers: int = 8
    share_weights: bool = True
    text_dim: int = 384
    text_drop: float = 0.1
    column_codes: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        _check_positive(self, ("num_codes", "num_columns", "max_tokens", "code_dim", "latent_dim", "num_heads",
                               "ff_size", "layers", "text_dim"))
        self.column_codes = _check_column_codes(self.column_codes, self.num_codes, self.num_columns)
        _check_nonneg(self, ("joint_layers", "time_layers"))
        _check_prob(self, ("dropout", "attn_dropout", "text_drop"))
        if not isinstance(self.num_quantizers, int) or self.num_quantizers < 2:
            raise ValueError(f"num_quantizers must be >= 2 (layer 0 plus at least one residual layer), "
                             f"got {self.num_quantizers!r}")
        _check_heads(self.latent_dim, self.num_heads, "ResidualTransformerConfig")


@dataclass
class LengthEstimatorConfig(_ConfigMixin):
    """Architecture of :class:`~remomask.generation.length_estimator.LengthEstimator` (design §7, "Length selection").

    Attributes:
        text_dim: sentence embedding width (384).
        hidden: widths of the hidden layers (512, 256, 128), each Linear -> LayerNorm -> LeakyReLU(0.2).
        num_classes: token lengths 0..num_classes-1 (50; 4 frames per token, so up to 196 frames).
        dropout: before every hidden Linear but the first (0.2; MoMask: before the 2nd and 3rd).
    """

    _preset_key = "length"

    text_dim: int = 384
    hidden: tuple = (512, 256, 128)
    num_classes: int = 50
    dropout: float = 0.2

    def __post_init__(self) -> None:
        self.hidden = tuple(int(h) for h in self.hidden)
        if not self.hidden or min(self.hidden) < 1:
            raise ValueError(f"hidden must be a non-empty list of positive widths, got {list(self.hidden)}")
        _check_positive(self, ("text_dim", "num_classes"))
        _check_prob(self, ("dropout",))

    def to_dict(self) -> dict:
        """JSON-ready dict (``hidden`` as a list)."""
        d = dataclasses.asdict(self)
        d["hidden"] = list(self.hidden)
        return d


PRESETS: dict[str, dict[str, dict]] = {
    "paper": {
        "mask": dict(token_dim=1024, latent_dim=512, num_heads=8, ff_size=1024, dropout=0.2,
                     ssta_layers=8, joint_layers=8, time_layers=8),
        "residual": dict(code_dim=1024, latent_dim=384, num_heads=6, ff_size=1024, dropout=0.2,
                         layers=8, joint_layers=8, time_layers=8, share_weights=True, text_drop=0.01),
        "length": dict(hidden=(512, 256, 128), dropout=0.2),
    },
    "cpu": {
        "mask": dict(token_dim=128, latent_dim=128, num_heads=4, ff_size=256, dropout=0.0, attn_dropout=0.0,
                     ssta_layers=2, joint_layers=1, time_layers=1),
        "residual": dict(code_dim=128, latent_dim=128, num_heads=4, ff_size=256, dropout=0.0, attn_dropout=0.0,
                         layers=2, joint_layers=1, time_layers=1, share_weights=True, text_drop=0.1),
        "length": dict(hidden=(256, 128, 64), dropout=0.2),
    },
}
"""Preset name -> {"mask" | "residual" | "length": config fields}. Dataset-dependent sizes (num_codes,
num_columns, num_quantizers, text_dim) keep their defaults and are overridden from the tokenizer and the
text encoder by the caller."""
