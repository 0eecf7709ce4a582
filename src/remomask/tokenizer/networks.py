"""Convolutional encoders and decoders of the tokenizer (docs/design.md §3.2).

2D: input (B, 12, T, J') with time as height and padded joints as width; two stride-2 4x4 convs give
(B, code_dim, T/4, J'/4). 1D (optional dual branch): (B, D, T) -> (B, code_dim_1d, T/4). Residual blocks
are ReLU -> dilated 3-conv -> ReLU -> 1-conv -> dropout -> + x, no normalisation, dilations
``growth**k`` for k = depth-1..0 (9, 3, 1), the same dilation on both axes in 2D.
"""

from __future__ import annotations

from torch import nn

__all__ = ["ResBlock", "ResStack", "Encoder", "Decoder"]


def _conv(ndim: int):
    return nn.Conv2d if ndim == 2 else nn.Conv1d


class ResBlock(nn.Module):
    """x + Dropout(Conv_k1(ReLU(Conv_k3,dilation d(ReLU(x))))); shape-preserving (B, C, *spatial)."""

    def __init__(self, ndim: int, channels: int, dilation: int, dropout: float) -> None:
        super().__init__()
        conv = _conv(ndim)
        self.body = nn.Sequential(
            nn.ReLU(), conv(channels, channels, 3, padding=dilation, dilation=dilation),
            nn.ReLU(), conv(channels, channels, 1), nn.Dropout(dropout),
        )

    def forward(self, x):
        return x + self.body(x)


class ResStack(nn.Sequential):
    """``depth`` :class:`ResBlock` with dilations growth**(depth-1), ..., growth**0 (docs/design.md §3.2)."""

    def __init__(self, ndim: int, channels: int, depth: int, growth: int, dropout: float) -> None:
        super().__init__(*(ResBlock(ndim, channels, growth ** k, dropout) for k in reversed(range(depth))))


class Encoder(nn.Sequential):
    """(B, in_ch, T, J') -> (B, out_ch, T/4, J'/4) in 2D, (B, in_ch, T) -> (B, out_ch, T/4) in 1D.

    Conv3 -> ReLU, then 2 x [Conv4 stride 2 -> ResStack], then Conv3 to ``out_ch`` (docs/design.md §3.2).
    """

    def __init__(self, ndim: int, in_ch: int, width: int, out_ch: int, depth: int, growth: int,
                 dropout: float) -> None:
        conv = _conv(ndim)
        layers: list[nn.Module] = [conv(in_ch, width, 3, padding=1), nn.ReLU()]
        for _ in range(2):
            layers += [conv(width, width, 4, stride=2, padding=1), ResStack(ndim, width, depth, growth, dropout)]
        layers.append(conv(width, out_ch, 3, padding=1))
        super().__init__(*layers)


class Decoder(nn.Sequential):
    """(B, in_ch, T/4, J'/4) -> (B, out_ch, T, J') in 2D (1D: (B, in_ch, T/4) -> (B, out_ch, T)).

    Conv3 -> ReLU, then 2 x [ResStack -> nearest Upsample x2 -> Conv3], then Conv3 -> ReLU -> Conv3
    (docs/design.md §3.2).
    """

    def __init__(self, ndim: int, in_ch: int, width: int, out_ch: int, depth: int, growth: int,
                 dropout: float) -> None:
        conv = _conv(ndim)
        layers: list[nn.Module] = [conv(in_ch, width, 3, padding=1), nn.ReLU()]
        for _ in range(2):
            layers += [ResStack(ndim, width, depth, growth, dropout), nn.Upsample(scale_factor=2, mode="nearest"),
                       conv(width, width, 3, padding=1)]
        layers += [conv(width, width, 3, padding=1), nn.ReLU(), conv(width, out_ch, 3, padding=1)]
        super().__init__(*layers)
