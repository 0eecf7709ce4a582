"""Retrieved motions as token sequences: the key/value memory of ``retrieval_form="tokens"`` (docs/design.md §5.8).

The k retrieved entries' base-layer token grids (B, k, n_r, J') become one memory sequence per prompt::

    e[b, i, t, j] = W_in E[id] + P_time[t] + P_col[j] + e_retr                 (D)
    memory (B, k n_r J', D),   memory_valid (B, k n_r J') = id is a code AND slot i on

E and W_in are the masked transformer's own token table and input projection (the grids hold codes of the
same codebook as the generated tokens, so sharing puts both in one space at no extra parameters); P_time
(max_tokens, D) and P_col (J', D) are learned positions (the generated tokens use the fixed 2D sinusoid,
so the memory's positions are its own), e_retr a learned "retrieved" type vector. Flattening order:
slot-major, then time, then column (index ``((i n_r) + t) J' + j``).

Source: remomask issue 14 ("Retrieved motions as token sequences"); ReMoMask feeds its generator only the
retrieved embeddings (docs/design.md §4.7, §5.6).
"""

from __future__ import annotations

import torch
from torch import nn

from .conditions import token_valid

__all__ = ["RetrievedTokenEmbedding"]


class RetrievedTokenEmbedding(nn.Module):
    """Positions and type embedding of retrieved token grids (module docstring).

    Args:
        max_tokens: rows of the time table (grids are cut to this many rows).
        num_columns: J'. dim: D. dropout: on the memory embeddings.
    """

    def __init__(self, max_tokens: int, num_columns: int, dim: int, dropout: float) -> None:
        super().__init__()
        self.time = nn.Embedding(max_tokens, dim)
        self.column = nn.Embedding(num_columns, dim)
        self.kind = nn.Embedding(1, dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, ids: torch.Tensor, slot_on: torch.Tensor, token_emb: nn.Embedding, in_proj: nn.Module,
                num_codes: int, pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Embed retrieved grids.

        Args:
            ids: (B, k, n_r, J') long base-layer ids, -1 (or ``pad_id``) at padding; rows beyond ``max_tokens``
                are cut.
            slot_on: (B, k) bool, False for an empty or dropped slot (RAG-CFG, docs/design.md §5.5).
            token_emb, in_proj: the masked transformer's token table (K + 2, token_dim) and projection to D.
            num_codes: K. pad_id: K + 1.

        Returns:
            memory (B, k n_r J', D) (exact zeros where not valid) and memory_valid (B, k n_r J') bool.

        Raises:
            ValueError: ids that are not (B, k, n_r, J') with this module's J', or not codes / padding.
        """
        b, k = slot_on.shape
        if ids.ndim != 4 or ids.shape[:2] != (b, k) or ids.shape[3] != self.column.num_embeddings:
            raise ValueError(f"retrieved token grids must be (B={b}, k={k}, n, J'={self.column.num_embeddings}), "
                             f"got {tuple(ids.shape)}")
        ids = ids[:, :, : self.time.num_embeddings]
        valid = token_valid(ids, num_codes, pad_id, allow_mask=False) & slot_on[:, :, None, None]
        n, j = ids.shape[2], ids.shape[3]
        x = in_proj(token_emb(ids.masked_fill(~valid, pad_id)))                     # (B, k, n, J', D)
        x = x + self.time.weight[:n, None] + self.column.weight + self.kind.weight[0]
        x = self.drop(x) * valid[..., None].to(x.dtype)
        return x.reshape(b, k * n * j, -1), valid.reshape(b, k * n * j)
