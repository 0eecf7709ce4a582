"""Residual transformer: predicts quantiser layer q (1..Q-1) from the sum of the lower layers (design §6.1, §6.3).

Data flow for all-layer ids (B, n, J', Q) and a layer q per sample::

    history = sum_{l < q} E_l[ids_l]                       (B, n, J', C)  (padding contributes zeros)
    --Linear(C -> D) + 2D sinusoidal PE -> dropout--> (B, N, D), N = n J' (time-major)
    --prepend [text token, layer-q token] -> full 2D self-attention blocks -> drop the 2 tokens-->
    --joint-wise blocks over (B n, J', D)--> --time-wise blocks over (B J', 2 + n, D) with the 2 tokens-->
    --LN -> Linear -> GELU -> LN -> Linear(D -> C)--> h (B, N, C)
    logits = h W_q^T (+ b_q)                                (B, N, K)

No retrieval input and no SSTA, as in the reference code (docs/design.md §1, §6.1). Text CFG: the text token is
replaced by a learned null token for samples whose text is dropped (``text_drop``, docs/design.md §6.3 cond_drop).

Weight sharing (``share_weights``, docs/design.md §6.1): parameters E_0 (K, C), S (Q-2, K, C), P_{Q-1} (K, C); the
embedding tables of layers 0..Q-2 are [E_0, S_0, ..., S_{Q-3}] and the classifiers of layers 1..Q-1 are
[S_0, ..., S_{Q-3}, P_{Q-1}], so the embedding of layer l is the classifier of layer l, without bias.
Unshared, each layer has its own tables and an output bias (logits = h W^T + b; the reference's
``output += output + bias`` bug is not reproduced).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .conditions import check_text, resolve_gate, restrict_to_columns, token_valid
from .config import ResidualTransformerConfig
from .layers import CHUNK_TOKENS, SelfAttentionBlock, chunk_rows, ensure_some_valid, run_chunks, sinusoid_2d
from .masking import IGNORE_INDEX, LossOutput, masked_cross_entropy
from .pretrained import load_model, save_model

__all__ = ["ResidualTransformer", "sample_layers"]

FORMAT = "remomask-residual-transformer"


def sample_layers(batch_size: int, num_quantizers: int, device=None,
                  generator: torch.Generator | None = None) -> torch.Tensor:
    """Draw the layer to predict per sample: ``q = round((1 - cos(pi u / 2)) (Q - 2)) + 1``, u ~ U(0, 1).

    Biased to low layers (docs/design.md §6.1 "small-biased" schedule); q is in 1..Q-1.

    Returns:
        (B,) long.

    Raises:
        ValueError: Q < 2.
    """
    if num_quantizers < 2:
        raise ValueError(f"num_quantizers must be >= 2, got {num_quantizers}")
    u = torch.rand(batch_size, device=device, generator=generator)
    return torch.round((1 - torch.cos(u * (math.pi / 2))) * (num_quantizers - 2)).long() + 1


class ResidualTransformer(nn.Module):
    """Text-conditioned transformer for the residual quantiser layers 1..Q-1 (docs/design.md §6.1).

    Args:
        config: :class:`~remomask.generation.config.ResidualTransformerConfig`.

    Attributes:
        chunk_tokens: without autograd (sampling), the batch runs in chunks of about this many grid tokens
            (:func:`~remomask.generation.layers.chunk_rows`); each sample's logits do not depend on the chunking.
    """

    chunk_tokens: int = CHUNK_TOKENS

    def __init__(self, config: ResidualTransformerConfig) -> None:
        super().__init__()
        if not isinstance(config, ResidualTransformerConfig):
            raise TypeError(f"ResidualTransformer takes a ResidualTransformerConfig, got {type(config).__name__}")
        self.config = c = config
        k, cd, q, d = c.num_codes, c.code_dim, c.num_quantizers, c.latent_dim
        if c.share_weights:
            self.embed_first = nn.Parameter(torch.randn(k, cd) * 0.02)               # E_0
            self.shared = nn.Parameter(torch.randn(q - 2, k, cd) * 0.02)             # S_0..S_{Q-3}
            self.classifier_last = nn.Parameter(torch.randn(k, cd) * 0.02)           # P_{Q-1}
        else:
            self.token_embed = nn.Parameter(torch.randn(q - 1, k, cd) * 0.02)        # layers 0..Q-2
            self.classifier = nn.Parameter(torch.randn(q - 1, k, cd) * 0.02)         # layers 1..Q-1
            self.classifier_bias = nn.Parameter(torch.zeros(q - 1, k))
        self.in_proj = nn.Linear(cd, d)
        self.register_buffer("pos", sinusoid_2d(c.max_tokens, c.num_columns, d), persistent=False)
        self.drop = nn.Dropout(c.dropout)
        self.text_proj = nn.Linear(c.text_dim, d)
        self.null_text = nn.Parameter(torch.randn(d) * 0.02)
        self.layer_emb = nn.Embedding(q, d)                                          # one-hot(q) -> D
        self.blocks = nn.ModuleList(SelfAttentionBlock(d, c.num_heads, c.ff_size, c.dropout, c.attn_dropout)
                                    for _ in range(c.layers))
        self.joint_blocks = nn.ModuleList(SelfAttentionBlock(d, c.num_heads, c.ff_size, c.dropout, c.attn_dropout)
                                          for _ in range(c.joint_layers))
        self.time_blocks = nn.ModuleList(SelfAttentionBlock(d, c.num_heads, c.ff_size, c.dropout, c.attn_dropout)
                                         for _ in range(c.time_layers))
        self.out_norm = nn.LayerNorm(d)
        self.head = nn.Sequential(nn.Linear(d, d), nn.GELU(), nn.LayerNorm(d, eps=1e-12), nn.Linear(d, cd))
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, 0.0, 0.02)
                if isinstance(m, nn.Linear) and m.bias is not None:
                    nn.init.zeros_(m.bias)

    # ---- tables ----------------------------------------------------------------------------------
    def embedding_table(self, layer: int) -> torch.Tensor:
        """(K, C) embedding table of quantiser layer ``layer`` (0..Q-2).

        Raises:
            IndexError: layer outside 0..Q-2.
        """
        q = self.config.num_quantizers
        if not 0 <= layer <= q - 2:
            raise IndexError(f"embedding layers are 0..{q - 2}, got {layer}")
        if self.config.share_weights:
            return self.embed_first if layer == 0 else self.shared[layer - 1]
        return self.token_embed[layer]

    def classifier_table(self, layer: int) -> torch.Tensor:
        """(K, C) output table that predicts quantiser layer ``layer`` (1..Q-1).

        Raises:
            IndexError: layer outside 1..Q-1.
        """
        q = self.config.num_quantizers
        if not 1 <= layer <= q - 1:
            raise IndexError(f"predicted layers are 1..{q - 1}, got {layer}")
        if self.config.share_weights:
            return self.classifier_last if layer == q - 1 else self.shared[layer - 1]
        return self.classifier[layer - 1]

    @torch.no_grad()
    def init_from_codebooks(self, codebooks: torch.Tensor) -> None:
        """Copy the tokenizer's codebooks into the embedding tables of layers 0..Q-2 (optional warm start).

        With shared weights this also sets the classifiers of layers 1..Q-2 (they are the same tensors).
        ``codebooks`` comes from :func:`~remomask.generation.conditions.codebooks_of`.

        Raises:
            ValueError: shape other than (>= Q-1, K, C).
        """
        c = self.config
        want = (c.num_codes, c.code_dim)
        if codebooks.ndim != 3 or codebooks.shape[0] < c.num_quantizers - 1 or tuple(codebooks.shape[1:]) != want:
            raise ValueError(f"codebooks must be (Q>={c.num_quantizers - 1}, K={c.num_codes}, C={c.code_dim}), "
                             f"got {tuple(codebooks.shape)}; set code_dim to the tokenizer's code_dim")
        for layer in range(c.num_quantizers - 1):
            self.embedding_table(layer).copy_(codebooks[layer])

    # ---- forward ---------------------------------------------------------------------------------
    def _history(self, ids: torch.Tensor, q: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """(B, n, J, >=q) ids -> (B, n, J, C) sum of the embeddings of layers < q (zeros at padding)."""
        total = 0
        for layer in range(min(ids.shape[-1], self.config.num_quantizers - 1)):
            if layer and self.chunk_tokens > 0 and not torch.is_grad_enabled() and not bool((layer < q).any()):
                break                       # no sample uses this layer or the next (adding zeros changes nothing)
            layer_ids = ids[..., layer]
            use = (layer < q)[:, None, None] & valid & (layer_ids >= 0)
            emb = F.embedding(layer_ids.clamp_min(0), self.embedding_table(layer))
            total = total + emb * use[..., None].to(emb.dtype)
        return total

    def classifier_tables(self) -> torch.Tensor:
        """(Q-1, K, C) output tables of layers 1..Q-1 (with shared weights a concatenation, so that every table
        is in the graph of each step: DDP then never sees an unused parameter)."""
        if self.config.share_weights:
            return torch.cat([self.shared, self.classifier_last[None]], 0)
        return self.classifier

    def _logits(self, h: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        """h (B, N, C), q (B,) -> (B, N, K) with the classifier of each sample's layer."""
        tables = self.classifier_tables().to(h.dtype)
        if self.chunk_tokens > 0 and bool((q == q[0]).all()):   # one layer for the batch: no row gather/scatter
            logits = h @ tables[int(q[0]) - 1].t()
            return logits if self.config.share_weights else logits + self.classifier_bias[int(q[0]) - 1].to(h.dtype)
        out = h.new_empty(*h.shape[:2], self.config.num_codes)
        for layer in torch.unique(q).tolist():
            rows = q == layer
            logits = h[rows] @ tables[layer - 1].t()
            if not self.config.share_weights:
                logits = logits + self.classifier_bias[layer - 1].to(h.dtype)
            out[rows] = logits
        return out

    def forward(self, ids: torch.Tensor, q, text: torch.Tensor | None, *, text_on=None,
                generator: torch.Generator | None = None) -> torch.Tensor:
        """Logits of quantiser layer q at every grid position.

        Args:
            ids: (B, n, J', L) long ids of layers 0..L-1 (L >= q), -1 at padding. Padding is where layer 0
                is -1; layers >= q are ignored.
            q: (B,) long or int, the layer to predict, 1..Q-1.
            text: (B, text_dim) sentence embedding, or None (= dropped).
            text_on: (B,) bool text gate or one bool; None: drawn with ``text_drop`` in training mode, all on
                in eval mode.
            generator: torch generator for the training-time gate draw.

        Returns:
            (B, n J', K) float logits, position index t * J' + j.

        Raises:
            ValueError: bad shapes or ids, q out of range, too few layers given, n > max_tokens.
        """
        c = self.config
        if not isinstance(ids, torch.Tensor) or ids.ndim != 4 or ids.shape[2] != c.num_columns:
            shape = tuple(ids.shape) if isinstance(ids, torch.Tensor) else type(ids).__name__
            raise ValueError(f"ids must be (B, n, J'={c.num_columns}, layers) long, got {shape}")
        b, n, j, have = ids.shape
        if n > c.max_tokens:
            raise ValueError(f"{n} token rows exceed max_tokens={c.max_tokens}; crop the motion or raise max_tokens")
        token_valid(ids, c.num_codes, pad_id=-1, allow_mask=False)
        q = torch.as_tensor(q, dtype=torch.long, device=ids.device)
        if q.ndim == 0:
            q = q.expand(b)
        if q.shape != (b,) or (q < 1).any() or (q > c.num_quantizers - 1).any():
            raise ValueError(f"q must be (B,) layers in 1..{c.num_quantizers - 1}, got {q.tolist()}")
        if int(q.max()) > have:
            raise ValueError(f"predicting layer {int(q.max())} needs ids of layers 0..{int(q.max()) - 1}, "
                             f"but only {have} layers were given")
        valid = ids[..., 0] >= 0                                                    # (B, n, J)
        if not valid.flatten(1).any(1).all():
            raise ValueError("every sample needs at least one non-padding token")
        x = self.in_proj(self._history(ids, q, valid)) + self.pos[:n]
        x = self.drop(x).reshape(b, n * j, -1)
        text = check_text(text, b, c.text_dim, ids.device, x.dtype)
        text_on = resolve_gate(text_on, self.training, c.text_drop, b, ids.device, generator, "text_on")
        if text is None:
            text_on = torch.zeros_like(text_on)
            text = torch.zeros(b, c.text_dim, device=ids.device, dtype=x.dtype)
        g = text_on[:, None].to(x.dtype)
        cond = self.text_proj(text) * g + self.null_text.to(x.dtype) * (1 - g)     # dropped -> null token
        prefix = torch.stack([cond, self.layer_emb(q)], 1)                          # (B, 2, D)
        rows = chunk_rows(b, n * j, self.chunk_tokens)
        if rows >= b and self.chunk_tokens <= 0:
            return self._trunk(x, valid, prefix, q)
        return run_chunks(lambda r: self._trunk(x[r], valid[r], prefix[r], q[r]), b, rows, x.device)

    def _trunk(self, x: torch.Tensor, valid: torch.Tensor, prefix: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        """Blocks, head and classifier: embedded history (B, N, D), validity (B, n, J'), the [text, layer]
        tokens (B, 2, D) and layers q (B,) -> (B, N, K) logits."""
        b, n, j = valid.shape
        d = x.shape[-1]
        v = valid.reshape(b, n * j)
        ones = torch.ones(b, 2, dtype=torch.bool, device=x.device)
        s = torch.cat([prefix, x], 1)
        sv = torch.cat([ones, v], 1)
        for blk in self.blocks:
            s = blk(s, sv)
        x = s[:, 2:]
        if len(self.joint_blocks):
            xj, vj = x.reshape(b * n, j, d), ensure_some_valid(valid.reshape(b * n, j))
            for blk in self.joint_blocks:
                xj = blk(xj, vj)
            x = xj.reshape(b, n * j, d)
        if len(self.time_blocks):
            xt = x.reshape(b, n, j, d).transpose(1, 2).reshape(b * j, n, d)
            vt = valid.transpose(1, 2).reshape(b * j, n)
            st = torch.cat([prefix.repeat_interleave(j, 0), xt], 1)                 # (B J, 2 + n, D)
            svt = torch.cat([ones.repeat_interleave(j, 0), vt], 1)
            for blk in self.time_blocks:
                st = blk(st, svt)
            x = st[:, 2:].reshape(b, j, n, d).transpose(1, 2).reshape(b, n * j, d)
        return self._logits(self.head(self.out_norm(x)), q)

    def loss(self, ids: torch.Tensor, text: torch.Tensor | None, *, q=None,
             generator: torch.Generator | None = None, forward=None) -> LossOutput:
        """Training loss: CE of layer q's true ids at the real positions (docs/design.md §6.1, §6.3).

        Args:
            ids: (B, n, J', Q) long ground-truth ids of all layers, -1 at padding (``tokenizer.encode``).
            text: (B, text_dim) sentence embedding (dropped with ``text_drop`` in training mode).
            q: optional (B,) layers; None draws them with :func:`sample_layers`.
            generator: torch generator for q and the text gate.
            forward: the callable that runs the model (the DDP wrapper under DDP); None = ``self``.

        Returns:
            :class:`~remomask.generation.masking.LossOutput` (``extra["q"]``: mean layer).

        Raises:
            ValueError: fewer than Q layers in ``ids`` or the errors of :meth:`forward`.
        """
        c = self.config
        if ids.ndim != 4 or ids.shape[-1] < c.num_quantizers:
            raise ValueError(f"ids must be (B, n, J', Q={c.num_quantizers}) all-layer ids, got {tuple(ids.shape)}")
        b = ids.shape[0]
        if q is None:
            q = sample_layers(b, c.num_quantizers, ids.device, generator)
        q = torch.as_tensor(q, dtype=torch.long, device=ids.device).expand(b)
        target = ids.gather(-1, q[:, None, None, None].expand(*ids.shape[:3], 1)).squeeze(-1)    # (B, n, J)
        labels = torch.where((ids[..., 0] >= 0) & (target >= 0), target, torch.full_like(target, IGNORE_INDEX))
        logits = (forward or self)(ids, q, text, generator=generator)
        # ids a column's codebook does not have are never the answer (config.column_codes)
        loss, acc, count = masked_cross_entropy(restrict_to_columns(logits, c.column_codes), labels)
        return LossOutput(loss, acc, count, {"q": float(q.float().mean())})

    # ---- persistence -----------------------------------------------------------------------------
    def save_pretrained(self, directory, *, card: dict | None = None):
        """Write ``config.json`` + ``model.safetensors`` (tied tables are stored once). Returns the folder."""
        return save_model(self, directory, FORMAT, card=card)

    @classmethod
    def from_pretrained(cls, directory, map_location="cpu") -> "ResidualTransformer":
        """Load a folder written by :meth:`save_pretrained`, in eval mode.

        Raises:
            FileNotFoundError: missing folder or files. CheckpointError: corrupt or mismatched files.
        """
        return load_model(cls, ResidualTransformerConfig, directory, FORMAT, map_location)
