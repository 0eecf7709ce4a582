"""The 2D residual VQ-VAE motion tokenizer (docs/design.md §3.1-§3.3).

Data flow of the 2D branch (shapes for T frames, J' = 24 padded joints, C = code_dim)::

    motion (B, T, D) --to_grid--> (B, T, J', 12) --> (B, 12, T, J') --Encoder--> (B, C, T/4, J'/4)
    --> vectors (B, T/4, J'/4, C) --ResidualVQ (one codebook set shared by all columns)--> ids (B, T/4, J'/4, Q)
    --> sum of layer codes (B, T/4, J'/4 * C) --merge Linear--> (B, C, T/4, J'/4) --Decoder--> (B, 12, T, J')
    --from_grid--> (B, T, D)

The 1D branch (on by default, ``branches=("1d", "2d")``; off with ``("2d",)``) encodes (B, D, T) to
(B, C1, T/4) with its own residual quantiser and decoder; the two reconstructions are fused by
Linear(2D -> D). Its ids travel as one extra column: ``ids[:, :, J'/4, :]`` indexes the 1D codebooks.

All motion tensors here are normalised with the tokenizer's own statistics (``model.mean`` / ``model.std``,
see :meth:`MotionTokenizer.normalize`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from ..constants import FRAMES_PER_TOKEN
from .config import TokenizerConfig
from .grid import GRID_CHANNELS, from_grid, grid_layout, to_grid
from .networks import Decoder, Encoder
from .quantizer import ResidualVQ

__all__ = ["MotionTokenizer", "TokenizerOutput", "token_mask", "UNIT_LENGTH"]

UNIT_LENGTH = FRAMES_PER_TOKEN
"""Frames per token along time (two stride-2 down-samplings)."""


def token_mask(lengths: torch.Tensor, num_tokens: int) -> torch.Tensor:
    """(B, num_tokens) bool, True where token t covers a real frame: ``t < ceil(length / 4)``."""
    tok_len = (lengths + UNIT_LENGTH - 1) // UNIT_LENGTH
    return torch.arange(num_tokens, device=lengths.device)[None, :] < tok_len[:, None]


@dataclass
class TokenizerOutput:
    """Result of :meth:`MotionTokenizer.forward`.

    Attributes:
        motion: (B, T, D) reconstruction (the fused one with two branches).
        branch_motion: {"1d": (B, T, D), "2d": (B, T, D)} per-branch reconstructions (only with two branches).
        ids: (B, T/4, columns, Q) long, -1 at padding and for dropped layers.
        commit: scalar commitment loss (mean over branches). perplexity: scalar (mean over branches).
        perplexities: {branch: (Q,) per-layer perplexity}.
    """

    motion: torch.Tensor
    ids: torch.Tensor
    commit: torch.Tensor
    perplexity: torch.Tensor
    perplexities: dict = field(default_factory=dict)
    branch_motion: dict = field(default_factory=dict)


class MotionTokenizer(nn.Module):
    """2D residual VQ-VAE (docs/design.md §3.2, §3.3), the dual 1D + 2D branch (default) or a single 2D one.

    Args:
        config: :class:`TokenizerConfig`.
        mean, std: (D,) normalisation statistics the model is trained with (stored as buffers and saved
            with the weights); default zeros / ones.

    Raises:
        ValueError: bad config or statistics of the wrong size.
    """

    def __init__(self, config: TokenizerConfig, mean=None, std=None) -> None:
        super().__init__()
        self.config = config
        self.grid = grid_layout(config.feature_dim)
        c, w = config.code_dim, config.width
        args = dict(depth=config.depth, growth=config.dilation_growth, dropout=config.resblock_dropout)
        self.encoder = Encoder(2, GRID_CHANNELS, w, c, **args)
        self.decoder = Decoder(2, c, w, GRID_CHANNELS, **args)
        self.quantizer = ResidualVQ(config.num_quantizers, config.num_codes, c, mu=config.mu,
                                    dropout_prob=config.quantizer_dropout,
                                    sample_temperature=config.sample_temperature)
        cols = self.grid.columns
        self.merge = nn.Linear(cols * c, cols * c)  # cross-column merge (docs/design.md §3.2)
        if "1d" in config.branches:
            d, c1 = config.feature_dim, config.code_dim_1d
            self.encoder_1d = Encoder(1, d, w, c1, **args)
            self.decoder_1d = Decoder(1, c1, w, d, **args)
            self.quantizer_1d = ResidualVQ(config.num_quantizers, config.num_codes_1d, c1, mu=config.mu,
                                           dropout_prob=config.quantizer_dropout,
                                           sample_temperature=config.sample_temperature)
            self.fuse = nn.Linear(2 * d, d)
        d = config.feature_dim
        self.register_buffer("mean", torch.zeros(d) if mean is None else torch.as_tensor(mean, dtype=torch.float32))
        self.register_buffer("std", torch.ones(d) if std is None else torch.as_tensor(std, dtype=torch.float32))
        if self.mean.shape != (d,) or self.std.shape != (d,):
            raise ValueError(f"mean/std must be ({d},), got {tuple(self.mean.shape)} / {tuple(self.std.shape)}")

    # ---- sizes -------------------------------------------------------------------------------
    @property
    def dual(self) -> bool:
        """True with the 1D + 2D branches."""
        return "1d" in self.config.branches

    @property
    def num_columns(self) -> int:
        """Token columns per time step: J'/4 (6), plus one for the 1D branch."""
        return self.grid.columns + int(self.dual)

    @property
    def num_quantizers(self) -> int:
        """Q."""
        return self.config.num_quantizers

    # ---- normalisation ------------------------------------------------------------------------
    def normalize(self, motion: torch.Tensor) -> torch.Tensor:
        """Raw features (..., D) -> the normalised space the model works in."""
        return (motion - self.mean) / self.std

    def denormalize(self, motion: torch.Tensor) -> torch.Tensor:
        """Inverse of :meth:`normalize`."""
        return motion * self.std + self.mean

    # ---- pieces --------------------------------------------------------------------------------
    def _check_motion(self, motion: torch.Tensor, lengths) -> tuple[torch.Tensor, torch.Tensor, int]:
        if not isinstance(motion, torch.Tensor) or motion.ndim != 3 or motion.shape[-1] != self.config.feature_dim:
            shape = tuple(motion.shape) if isinstance(motion, torch.Tensor) else type(motion).__name__
            raise ValueError(f"motion must be a (B, T, {self.config.feature_dim}) tensor, got {shape}")
        b, t, _ = motion.shape
        if t < 1:
            raise ValueError("motion has no frames")
        if lengths is None:
            lengths = torch.full((b,), t, dtype=torch.long, device=motion.device)
        lengths = torch.as_tensor(lengths, dtype=torch.long, device=motion.device)
        if lengths.shape != (b,) or (lengths < 1).any() or (lengths > t).any():
            raise ValueError(f"lengths must be (B,) = ({b},) with 1 <= length <= T = {t}, got {lengths.tolist()}")
        t_pad = -(-t // UNIT_LENGTH) * UNIT_LENGTH
        real = torch.arange(t_pad, device=motion.device)[None, :] < lengths[:, None]
        motion = nn.functional.pad(motion, (0, 0, 0, t_pad - t)) * real[..., None].to(motion.dtype)
        return motion, lengths, t

    def _latent_2d(self, motion: torch.Tensor) -> torch.Tensor:
        """(B, T, D) -> encoder vectors (B, T/4, J'/4, C)."""
        x = to_grid(motion).permute(0, 3, 1, 2)                     # (B, 12, T, J')
        return self.encoder(x).permute(0, 2, 3, 1)                  # (B, T/4, J'/4, C)

    def _decode_2d(self, quantized: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """Summed codes (B, T', J'/4, C) -> (B, 4T', D) through the merge and the decoder.

        Merged latents of padding tokens (``valid`` (B, T') False) are zeroed, so padding looks to the
        decoder like the zero padding at a window's end in training.
        """
        b, tq, cols, c = quantized.shape
        z = self.merge(quantized.reshape(b, tq, cols * c)) * valid[..., None].to(quantized.dtype)
        z = z.reshape(b, tq, cols, c)
        y = self.decoder(z.permute(0, 3, 1, 2))                     # (B, 12, T, J')
        return from_grid(y.permute(0, 2, 3, 1), self.grid.num_joints)

    def _quantize(self, rvq: ResidualVQ, latent: torch.Tensor, valid: torch.Tensor):
        """Quantise the vectors of real tokens. latent (B, T', [cols,] C), valid (B, T')."""
        mask = valid if latent.ndim == 3 else valid[:, :, None].expand(latent.shape[:3])
        out = rvq(latent[mask])
        quantized = latent.new_zeros(latent.shape)
        quantized[mask] = out.quantized
        ids = latent.new_full((*latent.shape[:-1], rvq.num_layers), -1, dtype=torch.long)
        ids[mask] = out.indices
        return quantized, ids, out

    # ---- public API ----------------------------------------------------------------------------
    def forward(self, motion: torch.Tensor, lengths=None) -> TokenizerOutput:
        """Encode, quantise (EMA updates and quantiser dropout in training mode) and decode.

        Args:
            motion: (B, T, D) normalised features; frames at and after ``lengths`` are ignored.
            lengths: (B,) frames, or None for all T.

        Returns:
            :class:`TokenizerOutput` with a (B, T, D) reconstruction (zero after each length).

        Raises:
            ValueError: wrong shapes or lengths.
        """
        x, lengths, t = self._check_motion(motion, lengths)
        valid = token_mask(lengths, x.shape[1] // UNIT_LENGTH)
        quantized, ids, out2 = self._quantize(self.quantizer, self._latent_2d(x), valid)
        rec = self._decode_2d(quantized, valid)
        commit, perp, perps = out2.commit, out2.perplexity, {"2d": out2.perplexities}
        branch = {}
        if self.dual:
            lat1 = self.encoder_1d(x.transpose(1, 2)).transpose(1, 2)           # (B, T/4, C1)
            q1, ids1, out1 = self._quantize(self.quantizer_1d, lat1, valid)
            rec1 = self.decoder_1d(q1.transpose(1, 2)).transpose(1, 2)            # (B, T, D)
            branch = {"1d": rec1[:, :t], "2d": rec[:, :t]}
            rec = self.fuse(torch.cat([rec1, rec], dim=-1))
            ids = torch.cat([ids, ids1[:, :, None, :]], dim=2)
            commit, perp = (commit + out1.commit) / 2, (perp + out1.perplexity) / 2
            perps["1d"] = out1.perplexities
        real = (torch.arange(t, device=x.device)[None, :] < lengths[:, None])[..., None]
        return TokenizerOutput(rec[:, :t] * real, ids, commit, perp, perps, branch)

    @torch.no_grad()
    def encode(self, motion: torch.Tensor, lengths=None) -> torch.Tensor:
        """Token ids of normalised motion (nearest codes, no codebook update).

        Args:
            motion: (B, T, D) normalised features (any T; it is zero-padded to a multiple of 4).
            lengths: (B,) frames, or None for all T.

        Returns:
            (B, ceil(T/4), columns, Q) long ids; -1 for tokens after ``ceil(length / 4)``. ``columns`` is
            J'/4 (6), plus a last column for the 1D branch.

        Raises:
            ValueError: wrong shapes or lengths.
        """
        x, lengths, _ = self._check_motion(motion, lengths)
        valid = token_mask(lengths, x.shape[1] // UNIT_LENGTH)
        lat = self._latent_2d(x)
        ids = self.quantizer.encode(lat.reshape(-1, lat.shape[-1])).reshape(*lat.shape[:3], -1)
        if self.dual:
            lat1 = self.encoder_1d(x.transpose(1, 2)).transpose(1, 2)
            ids1 = self.quantizer_1d.encode(lat1.reshape(-1, lat1.shape[-1])).reshape(*lat1.shape[:2], 1, -1)
            ids = torch.cat([ids, ids1], dim=2)
        return ids.masked_fill(~valid[:, :, None, None], -1)

    def decode(self, ids: torch.Tensor, num_layers: int | None = None) -> torch.Tensor:
        """Normalised motion from token ids, using the first ``num_layers`` quantiser layers.

        Args:
            ids: (B, T', columns, q) long, q <= Q; -1 (padding, dropped layer) contributes a zero code.
            num_layers: use only layers ``0..num_layers-1``; None = all q given.

        Returns:
            (B, 4 T', D) normalised features. Frames of all -1 tokens are not meaningful.

        Raises:
            ValueError: wrong shape, column count, layer count, or ids outside the codebooks.
        """
        if not isinstance(ids, torch.Tensor) or ids.ndim != 4 or ids.shape[2] != self.num_columns:
            shape = tuple(ids.shape) if isinstance(ids, torch.Tensor) else type(ids).__name__
            raise ValueError(f"ids must be (B, T', {self.num_columns}, q) long, got {shape}")
        q = ids.shape[-1] if num_layers is None else num_layers
        if not 1 <= q <= min(ids.shape[-1], self.num_quantizers):
            raise ValueError(f"num_layers must be in 1..{min(ids.shape[-1], self.num_quantizers)}, got {q}")
        ids = ids[..., :q].long()
        cols = self.grid.columns
        ids2 = ids[:, :, :cols]
        if (ids2 >= self.config.num_codes).any() or (ids < -1).any():
            raise ValueError(f"ids must be -1 or in [0, {self.config.num_codes}) for the 2D codebooks")
        valid = (ids2[..., 0] >= 0).any(dim=2)                        # (B, T') tokens with any code
        rec = self._decode_2d(self.quantizer.decode(ids2), valid)
        if self.dual:
            ids1 = ids[:, :, cols]
            if (ids1 >= self.config.num_codes_1d).any():
                raise ValueError(f"1D-branch ids must be -1 or in [0, {self.config.num_codes_1d})")
            rec1 = self.decoder_1d(self.quantizer_1d.decode(ids1).transpose(1, 2)).transpose(1, 2)
            rec = self.fuse(torch.cat([rec1, rec], dim=-1))
        return rec

    # ---- persistence ---------------------------------------------------------------------------
    def save_pretrained(self, directory, *, card: dict | None = None) -> None:
        """Write ``config.json``, ``model.safetensors``, ``mean.npy``/``std.npy`` and ``README.md``.

        See :func:`remomask.tokenizer.pretrained.save_pretrained`.
        """
        from .pretrained import save_pretrained

        save_pretrained(self, directory, card=card)

    @classmethod
    def from_pretrained(cls, directory, map_location="cpu") -> "MotionTokenizer":
        """Load a model folder written by :meth:`save_pretrained` (in eval mode).

        See :func:`remomask.tokenizer.pretrained.load_pretrained` for the errors raised.
        """
        from .pretrained import load_pretrained

        return load_pretrained(directory, map_location=map_location)
