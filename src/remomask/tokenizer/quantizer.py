"""Residual vector quantiser with EMA codebooks and dead-code reset (docs/design.md §3.3, MoMask ``QuantizeEMAReset``).

Written here rather than taken from ``vector-quantize-pytorch`` (1.32.0): that library's EMA codebook
uses Laplace-smoothed cluster sizes, replaces dead codes by a threshold on the EMA count with samples
drawn per call, initialises by k-means or at random and draws quantiser dropout per call with its own
rules; reproducing docs/design.md §3.3 exactly (first-batch initialisation with tiling noise, Gumbel assignment at
temperature 0.5 during training, reset of every code whose EMA count falls below 1 to random current
vectors, dropout of all layers above a uniform layer index) would need most of it overridden.

Under ``torch.distributed`` the batch statistics are summed over processes and the random choices
(initial codebook, reset vectors, dropout depth) come from rank 0, so every process keeps the same
codebooks; wrap the model in DDP with ``broadcast_buffers=False``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

__all__ = ["QuantizeEMAReset", "ResidualVQ", "RVQOutput"]


def _distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def _all_reduce(t: torch.Tensor) -> torch.Tensor:
    if _distributed():
        dist.all_reduce(t)
    return t


def _broadcast(t: torch.Tensor) -> torch.Tensor:
    if _distributed():
        dist.broadcast(t, src=0)
    return t


class QuantizeEMAReset(nn.Module):
    """One codebook of ``num_codes`` vectors of ``dim``, updated by EMA, dead codes reset (docs/design.md §3.3).

    The codebook is a buffer, not a parameter. It is initialised from the first training batch (tiled
    with noise of std ``0.01 / sqrt(dim)`` when the batch has fewer vectors than codes). Training:
    assignment samples ``argmax(-dist / temperature + Gumbel)``, then ``code_sum`` and ``code_count``
    follow ``ema <- mu * ema + (1 - mu) * batch``; codes with EMA count < 1 are reset to random vectors of
    the current batch, the others become ``code_sum / code_count``. Evaluation: nearest code.

    Args:
        num_codes: K. dim: code size d. mu: EMA decay (0.99). sample_temperature: Gumbel temperature
            for training assignment (0.5; 0 = nearest code also in training).
    """

    def __init__(self, num_codes: int, dim: int, mu: float = 0.99, sample_temperature: float = 0.5) -> None:
        super().__init__()
        if num_codes < 1 or dim < 1:
            raise ValueError(f"num_codes ({num_codes}) and dim ({dim}) must be >= 1")
        self.num_codes, self.dim, self.mu, self.sample_temperature = num_codes, dim, mu, sample_temperature
        self.register_buffer("codebook", torch.zeros(num_codes, dim))
        self.register_buffer("code_sum", torch.zeros(num_codes, dim))
        self.register_buffer("code_count", torch.zeros(num_codes))
        self.register_buffer("initialized", torch.zeros((), dtype=torch.bool))

    def _tile(self, x: torch.Tensor) -> torch.Tensor:
        """(N, d) -> (>= K, d): repeat with small noise when N < K (docs/design.md §3.3)."""
        n = x.shape[0]
        if n >= self.num_codes:
            return x
        reps = -(-self.num_codes // n)
        out = x.repeat(reps, 1)
        return out + torch.randn_like(out) * (0.01 / self.dim ** 0.5)

    def _random_codes(self, x: torch.Tensor) -> torch.Tensor:
        """K random rows of the (tiled) batch, identical on every process. (N, d) -> (K, d)."""
        tiled = self._tile(x)
        pick = tiled[torch.randperm(tiled.shape[0], device=x.device)[: self.num_codes]].contiguous()
        return _broadcast(pick)

    @torch.no_grad()
    def _init(self, x: torch.Tensor) -> None:
        codes = self._random_codes(x)
        self.codebook.copy_(codes)
        self.code_sum.copy_(codes)
        self.code_count.fill_(1.0)
        self.initialized.fill_(True)

    def distances(self, x: torch.Tensor) -> torch.Tensor:
        """Squared distances (N, K) = |x|^2 - 2 x.c + |c|^2 of (N, d) vectors to the codes."""
        return (x.pow(2).sum(-1, keepdim=True) - 2 * x @ self.codebook.t()
                + self.codebook.pow(2).sum(-1)[None, :])

    def assign(self, x: torch.Tensor, sample: bool = False) -> torch.Tensor:
        """Code index (N,) long for each (N, d) vector: nearest, or Gumbel-sampled when ``sample``."""
        logits = -self.distances(x)
        if sample and self.sample_temperature > 0:
            u = torch.rand_like(logits).clamp(1e-20, 1 - 1e-7)
            gumbel = -torch.log(-torch.log(u))
            logits = logits / self.sample_temperature + gumbel
        return logits.argmax(-1)

    def lookup(self, idx: torch.Tensor) -> torch.Tensor:
        """Codes for indices (...,) long -> (..., d); index -1 gives a zero vector (docs/design.md §3.3)."""
        valid = idx >= 0
        out = F.embedding(idx.clamp_min(0), self.codebook)
        return out * valid[..., None].to(out.dtype)

    @torch.no_grad()
    def _ema_update(self, x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        onehot = F.one_hot(idx, self.num_codes).to(x.dtype)                         # (N, K)
        batch_sum = _all_reduce(onehot.t() @ x)                                     # (K, d)
        batch_count = _all_reduce(onehot.sum(0))                                    # (K,)
        self.code_sum.mul_(self.mu).add_(batch_sum, alpha=1 - self.mu)
        self.code_count.mul_(self.mu).add_(batch_count, alpha=1 - self.mu)
        alive = (self.code_count >= 1.0)[:, None].to(x.dtype)
        updated = self.code_sum / self.code_count.clamp_min(1e-12)[:, None]
        self.codebook.copy_(alive * updated + (1 - alive) * self._random_codes(x))
        return batch_count

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Quantise (N, d) vectors (N may be 0 on a process only in evaluation).

        Returns:
            ``(x_q, idx, commit, perplexity)``: straight-through quantised (N, d), indices (N,) long,
            commitment loss ``MSE(x, sg(x_q))`` (scalar) and the batch code perplexity (scalar).
        """
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(f"quantiser expects (N, {self.dim}) vectors, got {tuple(x.shape)}")
        if self.training and not bool(self.initialized):
            self._init(x.detach())
        idx = self.assign(x.detach(), sample=self.training)
        if self.training:
            counts = self._ema_update(x.detach(), idx)
        else:
            counts = torch.bincount(idx, minlength=self.num_codes).to(x.dtype)
        x_q = F.embedding(idx, self.codebook)
        commit = F.mse_loss(x, x_q.detach()) if x.numel() else x.new_zeros(())
        prob = counts / counts.sum().clamp_min(1.0)
        perplexity = torch.exp(-(prob * torch.log(prob + 1e-7)).sum())
        return x + (x_q - x).detach(), idx, commit, perplexity


@dataclass
class RVQOutput:
    """Result of :meth:`ResidualVQ.forward`.

    Attributes:
        quantized: (N, d) sum of the layer outputs (straight-through).
        indices: (N, Q) long; -1 for layers dropped by quantiser dropout.
        commit: scalar commitment loss, mean over the active layers.
        perplexity: scalar, mean over the active layers.
        perplexities: (Q,) per-layer perplexity (0 for dropped layers).
    """

    quantized: torch.Tensor
    indices: torch.Tensor
    commit: torch.Tensor
    perplexity: torch.Tensor
    perplexities: torch.Tensor


class ResidualVQ(nn.Module):
    """``num_layers`` :class:`QuantizeEMAReset` layers applied to successive residuals (docs/design.md §3.3).

    ``residual <- residual - sg(q_i)``, output ``sum_i q_i``. Quantiser dropout (training only): with
    probability ``dropout_prob`` draw s uniform in {0..Q-1} and skip every layer with index > s (their
    indices are -1).

    Args:
        num_layers: Q (6). num_codes: K per layer. dim: d. mu: EMA decay. dropout_prob: 0.2.
        sample_temperature: training Gumbel temperature (0.5).
    """

    def __init__(self, num_layers: int, num_codes: int, dim: int, *, mu: float = 0.99,
                 dropout_prob: float = 0.2, sample_temperature: float = 0.5) -> None:
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        self.layers = nn.ModuleList(QuantizeEMAReset(num_codes, dim, mu, sample_temperature)
                                    for _ in range(num_layers))
        self.dropout_prob = dropout_prob
        self.num_codes, self.dim = num_codes, dim

    @property
    def num_layers(self) -> int:
        """Q."""
        return len(self.layers)

    def _active_layers(self, device: torch.device) -> int:
        if not self.training or self.dropout_prob <= 0:
            return self.num_layers
        draw = torch.tensor([float(torch.rand(()) < self.dropout_prob),
                             float(torch.randint(0, self.num_layers, ()))], device=device)
        drop, s = _broadcast(draw).tolist()  # same depth on every process: collectives must match
        return int(s) + 1 if drop else self.num_layers

    def forward(self, x: torch.Tensor) -> RVQOutput:
        """Quantise (N, d) vectors with all (or, under dropout, the first s+1) layers."""
        active = self._active_layers(x.device)
        residual, out = x, torch.zeros_like(x)
        indices = x.new_full((x.shape[0], self.num_layers), -1, dtype=torch.long)
        commits, perps = [], x.new_zeros(self.num_layers)
        for i, layer in enumerate(self.layers[:active]):
            q, idx, commit, perp = layer(residual)
            residual = residual - q.detach()
            out = out + q
            indices[:, i] = idx
            commits.append(commit)
            perps[i] = perp
        return RVQOutput(out, indices, torch.stack(commits).mean(), perps[:active].mean(), perps)

    @torch.no_grad()
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Nearest-code indices (N, Q) long of (N, d) vectors, all layers, no update."""
        residual = x
        out = []
        for layer in self.layers:
            idx = layer.assign(residual)
            residual = residual - layer.lookup(idx)
            out.append(idx)
        return torch.stack(out, dim=-1)

    def decode(self, indices: torch.Tensor) -> torch.Tensor:
        """Sum of codes for indices (..., q), q <= Q (the first q layers); -1 -> zero. Returns (..., d)."""
        q = indices.shape[-1]
        if q < 1 or q > self.num_layers:
            raise ValueError(f"indices have {q} layers; this quantiser has 1..{self.num_layers}")
        out = 0
        for i in range(q):
            out = out + self.layers[i].lookup(indices[..., i])
        return out
