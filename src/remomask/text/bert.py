"""A small BERT encoder that reads Hugging Face ``BertModel`` weights (config.json + model.safetensors).

It exists so that the bundled sentence encoder (all-MiniLM-L6-v2, a 6-layer, 384-wide BERT) loads in a
fraction of a second and without the ``transformers`` package. The architecture is the standard post-LN
BERT encoder (Devlin et al. 2019): word + position + token-type embeddings, LayerNorm, then N blocks of
self-attention and a GELU feed-forward network, each followed by a residual LayerNorm. Weight names are
mapped explicitly in :func:`load_bert`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["BertConfig", "BertEncoder", "load_bert"]


@dataclass(frozen=True)
class BertConfig:
    """The fields of a Hugging Face BERT ``config.json`` that the encoder uses."""

    vocab_size: int = 30522
    hidden_size: int = 384
    num_hidden_layers: int = 6
    num_attention_heads: int = 12
    intermediate_size: int = 1536
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12
    hidden_act: str = "gelu"

    @classmethod
    def from_json(cls, path: str | Path) -> "BertConfig":
        """Read ``config.json``; unknown keys are ignored.

        Raises:
            ValueError: not a BERT config, or an activation other than ``gelu``.
        """
        raw = json.loads(Path(path).read_text())
        if raw.get("model_type", "bert") != "bert":
            raise ValueError(f"{path} describes a {raw.get('model_type')!r} model, not a BERT encoder")
        cfg = cls(**{f.name: raw[f.name] for f in fields(cls) if f.name in raw})
        if cfg.hidden_act != "gelu":
            raise ValueError(f"{path}: activation {cfg.hidden_act!r} is not supported (only 'gelu')")
        return cfg


class _Block(nn.Module):
    """One post-LN encoder block: x = LN(x + Attn(x)); x = LN(x + FFN(x))."""

    def __init__(self, cfg: BertConfig) -> None:
        super().__init__()
        h = cfg.hidden_size
        self.heads = cfg.num_attention_heads
        self.query, self.key, self.value, self.attn_out = (nn.Linear(h, h) for _ in range(4))
        self.attn_norm = nn.LayerNorm(h, eps=cfg.layer_norm_eps)
        self.ff_in = nn.Linear(h, cfg.intermediate_size)
        self.ff_out = nn.Linear(cfg.intermediate_size, h)
        self.ff_norm = nn.LayerNorm(h, eps=cfg.layer_norm_eps)

    def forward(self, x: torch.Tensor, attend: torch.Tensor) -> torch.Tensor:
        B, L, H = x.shape
        hs = H // self.heads

        def split(t: torch.Tensor) -> torch.Tensor:
            return t.view(B, L, self.heads, hs).transpose(1, 2)  # (B, nh, L, hs)

        q, k, v = split(self.query(x)), split(self.key(x)), split(self.value(x))
        a = F.scaled_dot_product_attention(q, k, v, attn_mask=attend[:, None, None, :])  # (B, nh, L, hs)
        a = a.transpose(1, 2).reshape(B, L, H)
        x = self.attn_norm(x + self.attn_out(a))
        return self.ff_norm(x + self.ff_out(F.gelu(self.ff_in(x))))


class BertEncoder(nn.Module):
    """BERT token encoder: ``input_ids (B, L)``, ``attention_mask (B, L)`` -> hidden states (B, L, H).

    ``attention_mask`` is 1/True on real tokens; padded positions are never attended to, so a token's
    output does not depend on how much padding follows it. Token-type ids are all 0 (single sentences).
    """

    def __init__(self, cfg: BertConfig) -> None:
        super().__init__()
        self.config = cfg
        h = cfg.hidden_size
        self.word = nn.Embedding(cfg.vocab_size, h)
        self.position = nn.Embedding(cfg.max_position_embeddings, h)
        self.token_type = nn.Embedding(cfg.type_vocab_size, h)
        self.embed_norm = nn.LayerNorm(h, eps=cfg.layer_norm_eps)
        self.blocks = nn.ModuleList(_Block(cfg) for _ in range(cfg.num_hidden_layers))

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """(B, L) ids and mask -> (B, L, H) last hidden states.

        Raises:
            ValueError: L exceeds ``max_position_embeddings``.
        """
        B, L = input_ids.shape
        if L > self.config.max_position_embeddings:
            raise ValueError(f"{L} tokens exceed the encoder's {self.config.max_position_embeddings} positions")
        pos = torch.arange(L, device=input_ids.device)
        x = self.word(input_ids) + self.position(pos)[None] + self.token_type.weight[0]
        x = self.embed_norm(x)
        attend = attention_mask.bool()
        for block in self.blocks:
            x = block(x, attend)
        return x


def _hf_name(name: str) -> str:
    """Map a :class:`BertEncoder` parameter name to its Hugging Face ``BertModel`` name."""
    fixed = {
        "word.weight": "embeddings.word_embeddings.weight",
        "position.weight": "embeddings.position_embeddings.weight",
        "token_type.weight": "embeddings.token_type_embeddings.weight",
        "embed_norm.weight": "embeddings.LayerNorm.weight",
        "embed_norm.bias": "embeddings.LayerNorm.bias",
    }
    if name in fixed:
        return fixed[name]
    _, i, module, param = name.split(".")
    table = {
        "query": "attention.self.query", "key": "attention.self.key", "value": "attention.self.value",
        "attn_out": "attention.output.dense", "attn_norm": "attention.output.LayerNorm",
        "ff_in": "intermediate.dense", "ff_out": "output.dense", "ff_norm": "output.LayerNorm",
    }
    return f"encoder.layer.{i}.{table[module]}.{param}"


def load_bert(folder: str | Path) -> BertEncoder:
    """Load a BERT encoder from a Hugging Face folder (``config.json`` + ``model.safetensors``).

    Returns the encoder in eval mode with ``requires_grad`` off (it is used frozen). The pooler weights,
    if present, are ignored.

    Raises:
        FileNotFoundError: a file is missing.
        ValueError: the weights miss a tensor or have a wrong shape (not the model the config describes).
    """
    from safetensors.torch import load_file

    folder = Path(folder)
    for name in ("config.json", "model.safetensors"):
        if not (folder / name).is_file():
            raise FileNotFoundError(f"{folder / name} is missing; reinstall the text encoder package")
    model = BertEncoder(BertConfig.from_json(folder / "config.json"))
    weights = load_file(str(folder / "model.safetensors"))
    # Some exports prefix every key with "bert.".
    weights = {k.removeprefix("bert."): v for k, v in weights.items()}
    state = {}
    for name, param in model.state_dict().items():
        hf = _hf_name(name)
        if hf not in weights:
            raise ValueError(f"{folder / 'model.safetensors'} has no tensor {hf!r}; not a BERT checkpoint")
        if weights[hf].shape != param.shape:
            raise ValueError(f"{hf}: shape {tuple(weights[hf].shape)} in the file, {tuple(param.shape)} expected")
        state[name] = weights[hf].to(param.dtype)
    model.load_state_dict(state)
    model.eval().requires_grad_(False)
    return model

