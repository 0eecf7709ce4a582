"""Masked transformer over the base-layer token grid, with SSTA and RAG-CFG gates (docs/design.md §5.1-§5.6).

Data flow for ids (B, n, J') (n time rows of 4 frames, J' = 6 joint columns)::

    ids --flatten time-major (t * J' + j)--> (B, N = n J')
        --token_emb (K + 2, token_dim) -> Linear -> + 2D sinusoidal PE (columns | time) -> dropout--> (B, N, D)
        --SSTA x ssta_layers (text t, retrieved R_t, R_m; docs/design.md §5.6 / 5.3)--> (B, N, D)
        --joint-wise blocks over (B n, J', D) ("attnj")--> --time-wise blocks over (B J', n, D) ("attnt")-->
        --LN -> Linear -> GELU -> LN -> Linear(D -> K) (BERT-style head)--> logits (B, N, K)

With ``retrieval_form="tokens"`` (docs/design.md §5.8) the retrieved entries' token grids (B, k, n_r, J') are
embedded once per pass (:class:`~remomask.generation.retrieved_tokens.RetrievedTokenEmbedding`, the model's own
token table) into a memory (B, k n_r J', D) that every SSTA block adds to its keys and values.

Padding (id ``K + 1`` or ``-1``) is never attended: it is masked out of every key set. Logits at padding are
computed but meaningless; the loss and the sampler ignore them.

RAG-CFG (docs/design.md §5.5): text and retrieval each have a per-sample gate. In training, when no gates are given,
each is dropped independently with ``text_drop`` / ``retrieval_drop`` (10 %). A dropped source is removed
from the keys and the values, so the output does not depend on it; the unconditional pass drops both.
"""

from __future__ import annotations

import torch
from torch import nn

from .conditions import Retrieved, as_retrieved, check_text, resolve_gate, restrict_to_columns, token_valid
from .config import MaskTransformerConfig
from .layers import (
    LinearSSTALayer,
    SelfAttentionBlock,
    SSTABlock,
    SSTAConditions,
    CHUNK_TOKENS,
    chunk_rows,
    ensure_some_valid,
    run_chunks,
    sinusoid_2d,
)
from .masking import LossOutput, mask_grid, masked_cross_entropy
from .pretrained import load_model, save_model
from .retrieved_tokens import RetrievedTokenEmbedding

__all__ = ["MaskTransformer"]

FORMAT = "remomask-mask-transformer"


class MaskTransformer(nn.Module):
    """Text- and retrieval-conditioned masked transformer for the base quantiser layer (docs/design.md §5.2, §5.6).

    Args:
        config: :class:`~remomask.generation.config.MaskTransformerConfig` (``.preset("cpu" | "paper")``).

    Attributes:
        config: the config. mask_id: K. pad_id: K + 1.
        chunk_tokens: without autograd (sampling), the batch runs in chunks of about this many grid tokens
            (:func:`~remomask.generation.layers.chunk_rows`); each sample's logits do not depend on the chunking.
    """

    chunk_tokens: int = CHUNK_TOKENS

    def __init__(self, config: MaskTransformerConfig) -> None:
        super().__init__()
        if not isinstance(config, MaskTransformerConfig):
            raise TypeError(f"MaskTransformer takes a MaskTransformerConfig, got {type(config).__name__}")
        self.config = c = config
        d = c.latent_dim
        self.token_emb = nn.Embedding(c.num_codes + 2, c.token_dim)
        self.in_proj = nn.Identity() if c.token_dim == d else nn.Linear(c.token_dim, d)
        self.register_buffer("pos", sinusoid_2d(c.max_tokens, c.num_columns, d), persistent=False)
        self.drop = nn.Dropout(c.dropout)
        self.text_proj = nn.Linear(c.text_dim, d)                     # cond_emb
        e = c.retrieval_dim if c.use_retrieval else 0
        tokens_form = c.retrieval_form == "tokens"
        if c.ssta == "eccv":
            self.retr_value_proj = nn.Linear(c.retrieval_dim, d) if c.use_retrieval else None   # P_m
            self.ssta = nn.ModuleList(SSTABlock(d, c.num_heads, c.ff_size, c.dropout, e, c.attn_dropout,
                                                memory=tokens_form, memory_fusion=c.memory_fusion)
                                       for _ in range(c.ssta_layers))
        else:
            self.retr_value_proj = None
            self.ssta = nn.ModuleList(LinearSSTALayer(d, c.num_heads, e) for _ in range(c.ssta_layers))
        self.joint_blocks = nn.ModuleList(SelfAttentionBlock(d, c.num_heads, c.ff_size, c.dropout, c.attn_dropout)
                                          for _ in range(c.joint_layers))
        self.time_blocks = nn.ModuleList(SelfAttentionBlock(d, c.num_heads, c.ff_size, c.dropout, c.attn_dropout)
                                         for _ in range(c.time_layers))
        self.out_norm = nn.LayerNorm(d)
        self.head = nn.Sequential(nn.Linear(d, d), nn.GELU(), nn.LayerNorm(d, eps=1e-12), nn.Linear(d, c.num_codes))
        if tokens_form:                                               # docs/design.md §5.8
            self.retr_tokens = RetrievedTokenEmbedding(c.max_tokens, c.num_columns, d, c.dropout)
        self.apply(self._init)
        if c.ssta == "linear" and c.use_retrieval:
            for layer in self.ssta:                                   # zero-init v_retr (docs/design.md §5.3)
                nn.init.zeros_(layer.v_retr.weight)
                nn.init.zeros_(layer.v_retr.bias)

    @staticmethod
    def _init(m: nn.Module) -> None:
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if isinstance(m, nn.Linear) and m.bias is not None:
                nn.init.zeros_(m.bias)

    # ---- properties ------------------------------------------------------------------------------
    @property
    def mask_id(self) -> int:
        """[MASK] id: K."""
        return self.config.mask_id

    @property
    def pad_id(self) -> int:
        """Padding id: K + 1."""
        return self.config.pad_id

    # ---- conditions ------------------------------------------------------------------------------
    def _conditions(self, text, retrieval, text_on, retrieval_on, b: int, device, dtype, generator) -> SSTAConditions:
        c = self.config
        text = check_text(text, b, c.text_dim, device, dtype)
        text_on = resolve_gate(text_on, self.training, c.text_drop, b, device, generator, "text_on")
        if text is None:
            text_on = torch.zeros_like(text_on)
            text = torch.zeros(b, c.text_dim, device=device, dtype=dtype)
        t = self.text_proj(text) * text_on[:, None].to(dtype)        # dropped text -> exact zeros
        text_slot = c.ssta == "eccv" and (c.text_value or not c.use_retrieval)
        cond = SSTAConditions(text=t, text_on=text_on, text_slot=text_slot)
        if not c.use_retrieval:
            return cond
        retrieval_on = resolve_gate(retrieval_on, self.training, c.retrieval_drop, b, device, generator,
                                     "retrieval_on")
        tokens_form = c.retrieval_form == "tokens"
        if retrieval is None:
            r = Retrieved(torch.zeros(b, c.retrieval_k, c.retrieval_dim, device=device, dtype=dtype),
                          torch.zeros(b, c.retrieval_k, c.retrieval_dim, device=device, dtype=dtype),
                          torch.zeros(b, c.retrieval_k, dtype=torch.bool, device=device))
            if tokens_form:
                r.tokens = torch.full((b, c.retrieval_k, 1, c.num_columns), -1, dtype=torch.long, device=device)
        else:
            r = as_retrieved(retrieval, b, c.retrieval_k, c.retrieval_dim, device, dtype)
            if tokens_form and r.tokens is None:
                raise ValueError("this masked transformer reads retrieved motions as token grids "
                                 "(retrieval_form='tokens'): the retrieval input needs `tokens` (B, k, n, J'), i.e. a "
                                 "database with token grids (`remomask retriever build-db --tokenizer DIR`)")
        on = r.valid & retrieval_on[:, None]                          # (B, k)
        gate = on[..., None].to(dtype)
        cond.retr_motion, cond.retr_text, cond.retr_on = r.motion * gate, r.text * gate, on
        if self.retr_value_proj is not None:
            cond.retr_value = self.retr_value_proj(cond.retr_motion)
        if tokens_form:
            cond.memory, cond.memory_on = self.retr_tokens(r.tokens, on, self.token_emb, self.in_proj, c.num_codes,
                                                           c.pad_id)
        return cond

    # ---- forward ---------------------------------------------------------------------------------
    def forward(self, ids: torch.Tensor, text: torch.Tensor | None, retrieval=None, *,
                text_on=None, retrieval_on=None, generator: torch.Generator | None = None) -> torch.Tensor:
        """Logits of every grid position.

        Args:
            ids: (B, n, J') long: codes 0..K-1, [MASK] = K, padding = K + 1 or -1. n <= ``max_tokens``;
                every sample needs at least one non-padding position.
            text: (B, text_dim) sentence embedding (``TextFeatures.sentence``), or None = no text (dropped).
            retrieval: :class:`~remomask.generation.conditions.RetrievalLike` with (B, k, E) embeddings, or None
                (= dropped). Ignored when ``config.use_retrieval`` is False. With ``retrieval_form="tokens"`` it
                also needs ``tokens`` (B, k, n_r, J') long grids (-1 = padding), which become a (B, k n_r J', D)
                key/value memory of the SSTA blocks (docs/design.md §5.8).
            text_on, retrieval_on: (B,) bool gates (or one bool). None: in training mode drawn with
                ``text_drop`` / ``retrieval_drop``; in eval mode all on.
            generator: torch generator for the training-time gate draws.

        Returns:
            (B, n J', K) float logits over the K codes, position index t * J' + j.

        Raises:
            ValueError: bad ids / shapes, a sample with no real token, n > max_tokens, wrong text or
                retrieval shapes.
        """
        c = self.config
        if not isinstance(ids, torch.Tensor) or ids.ndim != 3 or ids.shape[2] != c.num_columns:
            shape = tuple(ids.shape) if isinstance(ids, torch.Tensor) else type(ids).__name__
            raise ValueError(f"ids must be (B, n, J'={c.num_columns}) base-layer ids, got {shape}")
        b, n, j = ids.shape
        if n > c.max_tokens:
            raise ValueError(f"{n} token rows exceed max_tokens={c.max_tokens} ({4 * c.max_tokens} frames); "
                             "crop the motion or raise max_tokens")
        valid = token_valid(ids, c.num_codes, c.pad_id)                # (B, n, J)
        if not valid.flatten(1).any(1).all():
            raise ValueError("every sample needs at least one non-padding token")
        x_ids = ids.masked_fill(~valid, c.pad_id)
        x = self.in_proj(self.token_emb(x_ids)) + self.pos[:n].to(self.token_emb.weight.dtype)
        x = self.drop(x).reshape(b, n * j, -1)                          # (B, N, D)
        cond = self._conditions(text, retrieval, text_on, retrieval_on, b, ids.device, x.dtype, generator)
        rows = chunk_rows(b, n * j, self.chunk_tokens)
        if rows >= b and self.chunk_tokens <= 0:
            return self._trunk(x, valid, cond)
        return run_chunks(lambda r: self._trunk(x[r], valid[r], cond.take(r)), b, rows, x.device)

    def _trunk(self, x: torch.Tensor, valid: torch.Tensor, cond: SSTAConditions) -> torch.Tensor:
        """SSTA, joint-wise and time-wise blocks and head: embedded tokens (B, N, D) with validity (B, n, J')
        and the batch's conditions -> (B, N, K) logits."""
        b, n, j = valid.shape
        v = valid.reshape(b, n * j)
        for layer in self.ssta:
            x = layer(x, v, cond)
        d = x.shape[-1]
        if len(self.joint_blocks):                                      # attnj: the J' columns of one time step
            xj, vj = x.reshape(b * n, j, d), ensure_some_valid(valid.reshape(b * n, j))
            for blk in self.joint_blocks:
                xj = blk(xj, vj)
            x = xj.reshape(b, n * j, d)
        if len(self.time_blocks):                                       # attnt: the n rows of one column
            xt = x.reshape(b, n, j, d).transpose(1, 2).reshape(b * j, n, d)
            vt = ensure_some_valid(valid.transpose(1, 2).reshape(b * j, n))
            for blk in self.time_blocks:
                xt = blk(xt, vt)
            x = xt.reshape(b, j, n, d).transpose(1, 2).reshape(b, n * j, d)
        return self.head(self.out_norm(x))

    def loss(self, ids: torch.Tensor, text: torch.Tensor | None, retrieval=None, *,
             generator: torch.Generator | None = None, forward=None, **mask_kwargs) -> LossOutput:
        """Masked-token training loss of a batch (docs/design.md §5.4, §5.5).

        Args:
            ids: (B, n, J') long ground-truth base-layer ids, -1 at padding (``tokenizer.encode(...)[..., 0]``).
            text, retrieval: as :meth:`forward`; RAG-CFG gates are drawn in training mode.
            generator: torch generator for masks, corruption and gates.
            forward: the callable that runs the model; pass the ``DistributedDataParallel`` wrapper under DDP
                (calling the bare module would skip DDP's gradient synchronisation). None = ``self``.
            **mask_kwargs: forwarded to :func:`~remomask.generation.masking.mask_grid` (``ratio``, ...).

        With ``config.column_codes`` the logits of ids a column's codebook lacks are -inf in the loss, and the
        random replacement codes of the corruption stay inside each column's codebook.

        Returns:
            :class:`~remomask.generation.masking.LossOutput` (``extra["ratio"]``: mean mask ratio).
        """
        c = self.config
        m = mask_grid(ids, c.num_codes, generator=generator, column_codes=c.column_codes, **mask_kwargs)
        logits = (forward or self)(m.inputs, text, retrieval, generator=generator)
        # ids a column's codebook does not have are never the answer (config.column_codes)
        loss, acc, count = masked_cross_entropy(restrict_to_columns(logits, c.column_codes), m.labels)
        return LossOutput(loss, acc, count, {"ratio": float(m.ratio.mean())})

    # ---- persistence -----------------------------------------------------------------------------
    def save_pretrained(self, directory, *, card: dict | None = None):
        """Write ``config.json`` + ``model.safetensors`` to ``directory`` (created; files replaced atomically).

        Returns:
            The folder path.
        """
        return save_model(self, directory, FORMAT, card=card)

    @classmethod
    def from_pretrained(cls, directory, map_location="cpu") -> "MaskTransformer":
        """Load a folder written by :meth:`save_pretrained`, in eval mode.

        Raises:
            FileNotFoundError: missing folder or files. CheckpointError: corrupt or mismatched files.
        """
        return load_model(cls, MaskTransformerConfig, directory, FORMAT, map_location)
