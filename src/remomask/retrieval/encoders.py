"""Building blocks of the part-level retriever (docs/design.md §4.2).

- :class:`PartEncoder`: one body part's motion features (B, T, d_k) -> its CLS output (B, d_model).
- :class:`PartMotionEncoder`: the six part encoders, no weight sharing -> (B, 6, d_model).
- :class:`ProjectionHead`: ``LN(Linear(GELU(p)) + p)`` with ``p = Linear(x)``; the instance-motion and text heads.
- :class:`TextTransformer`: the trainable transformer layer(s) over frozen token features, mean-pooled.

Unlike the public code (docs/design.md §4.2 "No key-padding mask"), every attention here takes a key-padding mask,
so zero-padded frames and padded tokens never influence an output.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["sinusoidal_table", "EncoderLayer", "Encoder", "PartEncoder", "PartMotionEncoder", "ProjectionHead", "TextTransformer"]


def sinusoidal_table(length: int, dim: int) -> torch.Tensor:
    """(length, dim) sinusoidal position table (Vaswani et al. 2017): sin on even, cos on odd channels."""
    pos = torch.arange(length, dtype=torch.float32)[:, None]
    freq = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
    table = torch.zeros(length, dim)
    table[:, 0::2] = torch.sin(pos * freq)
    table[:, 1::2] = torch.cos(pos * freq[: dim // 2])
    return table


class EncoderLayer(nn.Module):
    """Post-LN transformer encoder layer with GELU (the layout of ``nn.TransformerEncoderLayer``, docs/design.md §4.2).

    ``x = LN(x + Drop(Attn(x)))``; ``x = LN(x + Drop(W2 Drop(GELU(W1 x))))``. Attention is
    ``F.scaled_dot_product_attention`` with a boolean key mask and its own dropout ``attn_dropout``:
    dropout on the attention probabilities is ~10x slower on a CPU than attention itself, so the ``cpu``
    preset turns it off while keeping the other dropouts.

    Shapes: ``forward(x (B, L, d), attend (B, L) bool True on real positions) -> (B, L, d)``.
    """

    def __init__(self, d_model: int, num_heads: int, ff_size: int, dropout: float, attn_dropout: float) -> None:
        super().__init__()
        if d_model % num_heads:
            raise ValueError(f"num_heads ({num_heads}) must divide the width ({d_model})")
        self.heads, self.attn_dropout = num_heads, attn_dropout
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.out = nn.Linear(d_model, d_model)
        self.ff_in = nn.Linear(d_model, ff_size)
        self.ff_out = nn.Linear(ff_size, d_model)
        self.norm1, self.norm2 = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, attend: torch.Tensor) -> torch.Tensor:
        B, L, d = x.shape
        q, k, v = self.qkv(x).view(B, L, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)  # (B, nh, L, hs)
        a = F.scaled_dot_product_attention(q, k, v, attn_mask=attend[:, None, None, :],
                                           dropout_p=self.attn_dropout if self.training else 0.0)
        x = self.norm1(x + self.drop(self.out(a.transpose(1, 2).reshape(B, L, d))))
        return self.norm2(x + self.drop(self.ff_out(self.drop(F.gelu(self.ff_in(x))))))


class Encoder(nn.Module):
    """A stack of :class:`EncoderLayer` sharing one key mask."""

    def __init__(self, d_model: int, num_heads: int, ff_size: int, dropout: float, attn_dropout: float,
                 num_layers: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList(EncoderLayer(d_model, num_heads, ff_size, dropout, attn_dropout)
                                    for _ in range(num_layers))

    def forward(self, x: torch.Tensor, attend: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x, attend)
        return x


class PartEncoder(nn.Module):
    """Transformer encoder of one body part with a CLS token (docs/design.md §4.2, one of six).

    Steps: zero the padded frames; group ``frames_per_token`` consecutive frames into one token (1 = one
    frame per token, as the paper); Linear(frames_per_token * part_dim -> d_model); prepend a learned CLS
    token; add sinusoidal positions (CLS at position 0) and dropout; ``num_layers`` post-LN GELU layers
    attending only to real tokens; output the CLS state. A token is real when its first frame is.

    Args:
        part_dim: features per frame of this part (7, 50 or 60 for HumanML3D).
        d_model, num_heads, ff_size, dropout, attn_dropout, num_layers: transformer sizes.
        max_length: longest input in frames (224). frames_per_token: frames grouped per token.

    Shapes: ``forward(x (B, T, part_dim), frames (B, T) bool True on real frames) -> (B, d_model)``.
    The output does not depend on the values of padded frames.
    """

    def __init__(self, part_dim: int, d_model: int, num_heads: int, ff_size: int, dropout: float,
                 num_layers: int, max_length: int = 224, *, attn_dropout: float | None = None,
                 frames_per_token: int = 1) -> None:
        super().__init__()
        self.frames_per_token = int(frames_per_token)
        self.inp = nn.Linear(part_dim * self.frames_per_token, d_model)
        self.cls = nn.Parameter(torch.randn(1, 1, d_model) * 0.02)
        tokens = -(-max_length // self.frames_per_token)
        self.register_buffer("pos", sinusoidal_table(tokens + 1, d_model), persistent=False)
        self.drop = nn.Dropout(dropout)
        self.encoder = Encoder(d_model, num_heads, ff_size, dropout,
                               dropout if attn_dropout is None else attn_dropout, num_layers)

    def forward(self, x: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
        B, T, D = x.shape
        p = self.frames_per_token
        x = x * frames[..., None].to(x.dtype)  # padded frames are exactly zero, whatever they held
        if T % p:
            x = F.pad(x, (0, 0, 0, p - T % p))
            frames = F.pad(frames, (0, p - T % p))
        n = x.shape[1] // p
        if n + 1 > self.pos.shape[0]:
            raise ValueError(f"{T} frames exceed the encoder's maximum of {(self.pos.shape[0] - 1) * p}")
        tokens = self.inp(x.reshape(B, n, p * D))  # (B, n, d)
        h = self.drop(torch.cat([self.cls.expand(B, -1, -1), tokens], dim=1) + self.pos[: n + 1])
        attend = torch.cat([frames.new_ones(B, 1), frames[:, ::p]], dim=1)  # (B, 1 + n); CLS always real
        return self.encoder(h, attend)[:, 0]  # (B, d)


class PartMotionEncoder(nn.Module):
    """Six independent part encoders (docs/design.md §4.2; Root, R_Leg, L_Leg, Backbone, R_Arm, L_Arm).

    ``forward(motion (B, T, D) normalised features, lengths (B,) frames) -> (B, 6, d_model)`` CLS outputs.
    Frames at or after ``lengths[b]`` are padding and do not affect the output.

    Raises:
        ValueError: wrong feature size, a length outside [1, T].
    """

    def __init__(self, part_dims: tuple[int, ...], d_model: int, num_heads: int, ff_size: int,
                 dropout: float, num_layers: int, max_length: int, skeleton: str = "humanml3d", *,
                 attn_dropout: float | None = None, frames_per_token: int = 1) -> None:
        super().__init__()
        self.skeleton = skeleton
        self.parts = nn.ModuleList(
            PartEncoder(d, d_model, num_heads, ff_size, dropout, num_layers, max_length,
                        attn_dropout=attn_dropout, frames_per_token=frames_per_token)
            for d in part_dims
        )

    def forward(self, motion: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        from ..data.parts import whole_to_parts

        if motion.ndim != 3:
            raise ValueError(f"motion must be (B, T, D), got shape {tuple(motion.shape)}")
        lengths = torch.as_tensor(lengths, device=motion.device)
        T = motion.shape[1]
        if lengths.shape != (motion.shape[0],) or bool((lengths < 1).any()) or bool((lengths > T).any()):
            raise ValueError(f"lengths must be (B,) = ({motion.shape[0]},) values in [1, {T}] frames, "
                             f"got {lengths.tolist()}")
        frames = torch.arange(T, device=motion.device)[None, :] < lengths[:, None]  # (B, T)
        parts = whole_to_parts(motion, self.skeleton)
        return torch.stack([enc(p, frames) for enc, p in zip(self.parts, parts)], dim=1)  # (B, 6, d)


class ProjectionHead(nn.Module):
    """Projection head (docs/design.md §4.2): ``p = Linear(x)``; ``out = LN(Dropout(Linear(GELU(p))) + p)``.

    Shapes: (..., in_dim) -> (..., out_dim).
    """

    def __init__(self, in_dim: int, out_dim: int, dropout: float) -> None:
        super().__init__()
        self.proj = nn.Linear(in_dim, out_dim)
        self.fc = nn.Linear(out_dim, out_dim)
        self.drop = nn.Dropout(dropout)
        self.norm = nn.LayerNorm(out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = self.proj(x)
        return self.norm(self.drop(self.fc(F.gelu(p))) + p)


class TextTransformer(nn.Module):
    """Trainable transformer layer(s) over frozen token features, then a masked mean (docs/design.md §4.4, ECCV text).

    ``forward(tokens (B, L, D), mask (B, L) True on real tokens) -> (B, D)``. With ``num_layers = 0`` it is
    the masked mean of the frozen features. Mean pooling matches how the frozen MiniLM pools (inferred:
    the paper does not say how the layer's output is pooled).
    """

    def __init__(self, dim: int, num_heads: int, ff_size: int, dropout: float, num_layers: int,
                 attn_dropout: float | None = None) -> None:
        super().__init__()
        if num_layers and dim % num_heads:
            raise ValueError(f"text_heads ({num_heads}) must divide the text encoder width ({dim})")
        self.encoder = Encoder(dim, num_heads, ff_size, dropout, dropout if attn_dropout is None else attn_dropout,
                               num_layers) if num_layers else None

    def forward(self, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        h = tokens if self.encoder is None else self.encoder(tokens, mask)
        m = mask[..., None].to(h.dtype)
        return (h * m).sum(1) / m.sum(1).clamp_min(1.0)
