"""Building blocks of the generators: 2D position encoding, pre-norm attention blocks and the two SSTA
variants (docs/design.md §5.2, §5.3, §5.6).

Shapes: B batch, n token rows (time, 4 frames each), J columns (joint groups), N = n * J flattened
time-major (index t * J + j), D latent width, H heads, k retrieved entries, E retrieval width.
Validity masks are bool, True on real tokens; a query never attends to a False key.
"""

from __future__ import annotations

import math
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .config import MEMORY_FUSIONS

__all__ = [
    "sinusoid_2d",
    "attention",
    "FeedForward",
    "SelfAttentionBlock",
    "SSTAConditions",
    "SSTABlock",
    "LinearSSTALayer",
    "ensure_some_valid",
    "CHUNK_TOKENS",
    "chunk_rows",
    "run_chunks",
]

CHUNK_TOKENS = 4096
"""Grid tokens per chunk of a batched forward pass without autograd (``docs/benchmarks.md``, issue 20): at
latent 384 a chunk's activations (tokens x FFN width x 4 bytes, 16 MiB) stay in this CPU's 32 MiB L3 cache,
where a whole batch of 64 rows x 343 tokens (90 MiB) made the element-wise steps and the GEMMs' bias copies
wait on memory."""


def chunk_rows(batch: int, tokens_per_row: int, chunk_tokens: int) -> int:
    """Batch rows per chunk of a forward pass without autograd: ``max(1, chunk_tokens // tokens_per_row)``,
    or the whole batch while autograd records (training keeps one pass) or when ``chunk_tokens`` <= 0 (then
    the pass is also not spread over threads, and the residual transformer skips none of its work either:
    the code path before issue 20, kept for ``benchmarks/bench_generation.py --paths old``).

    Every row is computed on its own (attention never mixes rows; row-wise GEMMs), so the chunking changes
    no row's result beyond the GEMM library's own choice of kernel per shape (docs/benchmarks.md).

    Returns:
        int >= 1 rows (>= ``batch`` means one pass).
    """
    if torch.is_grad_enabled() or chunk_tokens <= 0:
        return batch
    return max(1, chunk_tokens // max(1, tokens_per_row))


def _sinusoid(positions: torch.Tensor, dim: int) -> torch.Tensor:
    """(P,) positions -> (P, dim): even channels sin, odd cos, frequencies exp(-2i ln(1e4) / dim)."""
    freq = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
    angles = positions.float()[:, None] * freq[None, :]
    out = torch.zeros(len(positions), dim)
    out[:, 0::2] = torch.sin(angles)
    out[:, 1::2] = torch.cos(angles)
    return out


def sinusoid_2d(rows: int, columns: int, dim: int) -> torch.Tensor:
    """Fixed 2D sinusoidal position encoding (docs/design.md §5.2 step 2).

    Channels ``[0, dim/2)`` encode the joint-column index, channels ``[dim/2, dim)`` the time row.

    Returns:
        (rows, columns, dim) float32.

    Raises:
        ValueError: ``dim`` not a multiple of 4.
    """
    if dim % 4:
        raise ValueError(f"2D position encoding needs dim % 4 == 0, got {dim}")
    half = dim // 2
    col = _sinusoid(torch.arange(columns), half)             # (J, D/2)
    row = _sinusoid(torch.arange(rows), half)                # (n, D/2)
    return torch.cat([col[None].expand(rows, -1, -1), row[:, None].expand(-1, columns, -1)], dim=-1)


def ensure_some_valid(valid: torch.Tensor) -> torch.Tensor:
    """Rows of a (..., S) key mask with no True entry become all True.

    Such rows belong to fully padded sequences (e.g. a padded time step in the joint-wise stack); letting
    them attend among themselves keeps softmax finite, and their outputs never reach real tokens.
    """
    return valid | ~valid.any(-1, keepdim=True)


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, key_valid: torch.Tensor | None,
              heads: int, dropout: float = 0.0) -> torch.Tensor:
    """Multi-head softmax attention via ``F.scaled_dot_product_attention``.

    Args:
        q: (B, N, D) projected queries. k, v: (B, S, D) projected keys / values.
        key_valid: (B, S) bool, True = may be attended; every row must have a True entry
            (see :func:`ensure_some_valid`). None = all valid.
        heads: H (D % H == 0). dropout: attention-weight dropout (training only).

    Returns:
        (B, N, D).
    """
    b, n, d = q.shape
    s = k.shape[1]
    hd = d // heads
    q = q.view(b, n, heads, hd).transpose(1, 2)              # (B, H, N, hd)
    k = k.view(b, s, heads, hd).transpose(1, 2)              # (B, H, S, hd)
    v = v.view(b, s, heads, hd).transpose(1, 2)
    mask = None if key_valid is None else key_valid[:, None, None, :]   # (B, 1, 1, S)
    y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout)
    return y.transpose(1, 2).reshape(b, n, d)


class FeedForward(nn.Module):
    """Linear(D -> F) -> GELU -> Dropout -> Linear(F -> D). (B, N, D) -> (B, N, D)."""

    def __init__(self, dim: int, hidden: int, dropout: float) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class SelfAttentionBlock(nn.Module):
    """Pre-norm transformer block: ``x + Attn(LN x)``, then ``x + FFN(LN x)``.

    Used for the joint-wise and time-wise stacks (docs/design.md §5.2 steps 5-6) and the residual transformer's full
    2D stack (docs/design.md §6.1). (The reference uses post-norm ``nn.TransformerEncoder`` layers; pre-norm trains
    more stably with deep stacks and is what the SSTA blocks use too.)

    Args:
        dim, heads, ff_size: D, H, FFN width. dropout: on the residual branches and inside the FFN.
        attn_dropout: on the attention weights (None = ``dropout``).
    """

    def __init__(self, dim: int, heads: int, ff_size: int, dropout: float, attn_dropout: float | None = None) -> None:
        super().__init__()
        self.heads, self.dropout = heads, dropout if attn_dropout is None else attn_dropout
        self.norm1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim)
        self.ff = FeedForward(dim, ff_size, dropout)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, key_valid: torch.Tensor | None = None) -> torch.Tensor:
        """x (B, S, D), key_valid (B, S) bool or None -> (B, S, D)."""
        q, k, v = self.qkv(self.norm1(x)).chunk(3, dim=-1)
        p = self.dropout if self.training else 0.0
        x = x + self.drop(self.proj(attention(q, k, v, key_valid, self.heads, p)))
        return x + self.drop(self.ff(self.norm2(x)))


@dataclass
class SSTAConditions:
    """Condition tokens shared by every SSTA layer of one forward pass (built by the masked transformer).

    Attributes:
        text: (B, D) projected text ``cond_emb(t)``, already multiplied by the text gate (zeros when dropped).
        text_on: (B,) bool text gate.
        text_slot: whether the text is its own key/value token (ECCV ``text_value`` or the no-RAG model).
        retr_motion, retr_text: (B, k, E) retrieved embeddings, already multiplied by ``retr_on`` (or None
            without retrieval).
        retr_on: (B, k) bool: retrieval gate AND slot filled.
        retr_value: (B, k, D) ``P_m(R_m)`` value tokens (ECCV) or None.
        memory: (B, M, D) embedded retrieved token grids, M = k n_r J' (``retrieval_form="tokens"``,
            docs/design.md §5.8), or None.
        memory_on: (B, M) bool: memory token attended (a real code of a slot that is on).
    """

    text: torch.Tensor
    text_on: torch.Tensor
    text_slot: bool
    retr_motion: torch.Tensor | None = None
    retr_text: torch.Tensor | None = None
    retr_on: torch.Tensor | None = None
    retr_value: torch.Tensor | None = None
    memory: torch.Tensor | None = None
    memory_on: torch.Tensor | None = None

    def take(self, rows: slice) -> "SSTAConditions":
        """The conditions of the batch rows ``rows`` (a slice of B), for a forward pass over a chunk."""
        def cut(t):
            return None if t is None else t[rows]

        return SSTAConditions(self.text[rows], self.text_on[rows], self.text_slot, cut(self.retr_motion),
                              cut(self.retr_text), cut(self.retr_on), cut(self.retr_value), cut(self.memory),
                              cut(self.memory_on))


class SSTABlock(nn.Module):
    """Semantic Spatio-Temporal Attention, ECCV form (docs/design.md §5.6), as a pre-norm residual block with FFN.

    With z' = LN(z) over the N motion tokens and k retrieved entries::

        h_sem_i = MLP([t * g_t ; R_t,i * g_r,i ; R_m,i * g_r,i])            (k semantic key tokens)
        Q = W_q z'          K = W_k [z' ; LN_c(h_sem)]          V = W_v [z' ; LN_c(P_m R_m) * g_r]
        z <- z + W_o softmax(Q K^T / sqrt(d)) V ;  z <- z + FFN(LN z)

    A semantic slot is attended only when its text or its retrieval is on; a dropped source is zero in the
    key MLP input and in the value, so the output does not depend on it (RAG-CFG gates, docs/design.md §5.5). With
    ``text_slot`` the text is also one key/value token ``LN_c(t)``, attended when the text is on. With
    ``memory`` the embedded retrieved token grids m (``cond.memory``, (B, M, D)) are further keys and values,
    ``K = W_k [...; LN_m(m)]``, ``V = W_v [...; LN_m(m)]``, each attended where ``cond.memory_on`` (docs/design.md
    §5.8). With ``memory_fusion="gated"`` the memory is not in that softmax but read by a cross-attention of its
    own after it (docs/design.md §5.9)::

        z <- z + tanh(a) * W_o' softmax(W_q' LN'(z) (W_k' LN_m(m))^T / sqrt(d)) W_v' LN_m(m) * any(memory_on)

    with the scalar gate ``a`` initialised at 0 (Flamingo's gated cross-attention), so the untrained block equals the
    block without memory, and a prompt whose memory is all dropped gets exactly zero from it.

    Args:
        dim, heads, ff_size, dropout: D, H, FFN width, dropout (residual branches, FFN).
        retrieval_dim: E, or 0 without retrieval (then only the text slot can be added).
        attn_dropout: on the attention weights (None = ``dropout``).
        memory: add the LayerNorm of the retrieved-token memory (``retrieval_form="tokens"``).
        memory_fusion: ``"joint"`` (memory in the SSTA softmax) or ``"gated"`` (own gated cross-attention).

    Raises:
        ValueError: unknown ``memory_fusion``.
    """

    def __init__(self, dim: int, heads: int, ff_size: int, dropout: float, retrieval_dim: int,
                 attn_dropout: float | None = None, memory: bool = False, memory_fusion: str = "joint") -> None:
        super().__init__()
        self.heads, self.dropout = heads, dropout if attn_dropout is None else attn_dropout
        self.norm = nn.LayerNorm(dim)
        self.cond_norm = nn.LayerNorm(dim)
        self.q = nn.Linear(dim, dim)
        self.k = nn.Linear(dim, dim)
        self.v = nn.Linear(dim, dim)
        self.proj = nn.Linear(dim, dim)
        self.sem_mlp = None
        if retrieval_dim:
            self.sem_mlp = nn.Sequential(nn.Linear(dim + 2 * retrieval_dim, dim), nn.GELU(), nn.Linear(dim, dim))
        if memory_fusion not in MEMORY_FUSIONS:
            raise ValueError(f"memory_fusion must be one of {MEMORY_FUSIONS}, got {memory_fusion!r}")
        self.memory_fusion = memory_fusion
        if memory:
            self.mem_norm = nn.LayerNorm(dim)
            if memory_fusion == "gated":
                self.mem_query_norm = nn.LayerNorm(dim)
                self.mem_q, self.mem_k = nn.Linear(dim, dim), nn.Linear(dim, dim)
                self.mem_v, self.mem_proj = nn.Linear(dim, dim), nn.Linear(dim, dim)
                self.mem_gate = nn.Parameter(torch.zeros(()))
        self.norm2 = nn.LayerNorm(dim)
        self.ff = FeedForward(dim, ff_size, dropout)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, valid: torch.Tensor, cond: SSTAConditions) -> torch.Tensor:
        """x (B, N, D), valid (B, N) bool -> (B, N, D)."""
        b = x.shape[0]
        h = self.norm(x)
        keys, values, kv_valid = [self.k(h)], [self.v(h)], [valid]
        if cond.text_slot:
            t = self.cond_norm(cond.text)[:, None]                                   # (B, 1, D)
            keys.append(self.k(t))
            values.append(self.v(t))
            kv_valid.append(cond.text_on[:, None])
        if self.sem_mlp is not None and cond.retr_motion is not None:
            k_slots = cond.retr_motion.shape[1]
            sem_in = torch.cat([cond.text[:, None].expand(b, k_slots, -1), cond.retr_text, cond.retr_motion], -1)
            sem = self.cond_norm(self.sem_mlp(sem_in))                               # (B, k, D)
            keys.append(self.k(sem))
            value = self.v(self.cond_norm(cond.retr_value))
            values.append(value * cond.retr_on[..., None].to(value.dtype))            # dropped R_m -> value 0
            kv_valid.append(cond.text_on[:, None] | cond.retr_on)
        use_memory = cond.memory is not None and hasattr(self, "mem_norm")
        if use_memory and self.memory_fusion == "joint":
            m = self.mem_norm(cond.memory)                                           # (B, M, D)
            keys.append(self.k(m))
            values.append(self.v(m))
            kv_valid.append(cond.memory_on)
        q = self.q(h)
        k = torch.cat([t.to(q.dtype) for t in keys], 1)
        v = torch.cat([t.to(q.dtype) for t in values], 1)
        key_valid = torch.cat(kv_valid, 1)
        p = self.dropout if self.training else 0.0
        x = x + self.drop(self.proj(attention(q, k, v, key_valid, self.heads, p)))
        if use_memory and self.memory_fusion == "gated":
            x = x + self._gated_memory(x, cond.memory, cond.memory_on, p)
        return x + self.drop(self.ff(self.norm2(x)))

    def _gated_memory(self, x: torch.Tensor, memory: torch.Tensor, memory_on: torch.Tensor, p: float) -> torch.Tensor:
        """tanh(a) W_o' Attn(LN'(x), LN_m(m)), zero for prompts without any attended memory token (B, N, D)."""
        m = self.mem_norm(memory)                                                     # (B, M, D)
        q = self.mem_q(self.mem_query_norm(x))
        k, v = self.mem_k(m).to(q.dtype), self.mem_v(m).to(q.dtype)
        has = memory_on.any(-1)                                                       # (B,)
        y = self.mem_proj(attention(q, k, v, ensure_some_valid(memory_on), self.heads, p))
        return self.drop(y) * (torch.tanh(self.mem_gate) * has[:, None, None].to(y.dtype))


class LinearSSTALayer(nn.Module):
    """The public code's SSTA: linear "semantics-modulated" attention (docs/design.md §5.3), kept for the ablation.

    Keys and values over [text token; k retrieval tokens; N motion tokens]::

        Q = q(LN x) * valid                                   softmax over each head's channels
        K = [k_t(LN_t t) ; k_r(LN_r1 [R_m | R_t]) ; k_m(LN x)]  softmax over the 1 + k + N sequence,
                                                              dropped / padded entries excluded
        V = [v_t(LN_t t) g_t ; v_r(LN_r2 R_m) g_r ; v_m(LN x) valid]    (v_r zero-initialised)
        y = Q (K^T V) per head

    As in the public code the output *replaces* the hidden state (no residual, no FFN, no output
    projection; the dropout argument is unused).

    Args:
        dim, heads: D, H. retrieval_dim: E, or 0 without retrieval.
    """

    def __init__(self, dim: int, heads: int, retrieval_dim: int) -> None:
        super().__init__()
        self.heads = heads
        self.norm = nn.LayerNorm(dim)
        self.text_norm = nn.LayerNorm(dim)
        self.q = nn.Linear(dim, dim)
        self.k_motion = nn.Linear(dim, dim)
        self.v_motion = nn.Linear(dim, dim)
        self.k_text = nn.Linear(dim, dim)
        self.v_text = nn.Linear(dim, dim)
        self.retrieval_dim = retrieval_dim
        if retrieval_dim:
            self.retr_key_norm = nn.LayerNorm(2 * retrieval_dim)
            self.retr_value_norm = nn.LayerNorm(retrieval_dim)
            self.k_retr = nn.Linear(2 * retrieval_dim, dim)
            self.v_retr = nn.Linear(retrieval_dim, dim)
            nn.init.zeros_(self.v_retr.weight)
            nn.init.zeros_(self.v_retr.bias)

    def forward(self, x: torch.Tensor, valid: torch.Tensor, cond: SSTAConditions) -> torch.Tensor:
        """x (B, N, D), valid (B, N) bool -> (B, N, D)."""
        b, n, d = x.shape
        hd = d // self.heads
        h = self.norm(x)
        t = self.text_norm(cond.text)[:, None]                                       # (B, 1, D)
        keys, values, kv_valid = [self.k_text(t)], [self.v_text(t)], [cond.text_on[:, None]]
        if self.retrieval_dim and cond.retr_motion is not None:
            keys.append(self.k_retr(self.retr_key_norm(torch.cat([cond.retr_motion, cond.retr_text], -1))))
            values.append(self.v_retr(self.retr_value_norm(cond.retr_motion)))
            kv_valid.append(cond.retr_on)
        keys.append(self.k_motion(h))
        values.append(self.v_motion(h))
        kv_valid.append(valid)
        key_valid = torch.cat(kv_valid, 1)                                           # (B, S)
        # float32 for the two softmaxes: the masked entries use a large negative number
        k = torch.cat(keys, 1).float().masked_fill(~key_valid[..., None], -1e30)
        v = torch.cat(values, 1).float() * key_valid[..., None]
        q = self.q(h).float() * valid[..., None]
        s = k.shape[1]
        q = q.view(b, n, self.heads, hd).softmax(-1).transpose(1, 2)                 # (B, H, N, hd)
        k = k.view(b, s, self.heads, hd).softmax(1).transpose(1, 2)                  # (B, H, S, hd)
        v = v.view(b, s, self.heads, hd).transpose(1, 2)                             # (B, H, S, hd)
        y = q @ (k.transpose(-1, -2) @ v)                                            # (B, H, N, hd)
        return y.transpose(1, 2).reshape(b, n, d).to(x.dtype)


_POOL: ThreadPoolExecutor | None = None
_POOL_LOCK = threading.Lock()


def _pool(workers: int) -> ThreadPoolExecutor:
    global _POOL
    with _POOL_LOCK:
        if _POOL is None or _POOL._max_workers != workers:
            _POOL = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="remomask-chunk")
        return _POOL


def _one_thread(fn, *args):
    torch.set_num_threads(1)                 # this worker's own OpenMP / MKL threads: one each
    with torch.no_grad():                    # grad mode is thread-local; chunks only run without autograd
        return fn(*args)


def run_chunks(fn, batch: int, rows: int, device: torch.device) -> torch.Tensor:
    """``fn`` over the batch in chunks of at most ``rows`` rows, joined: ``torch.cat([fn(slice(s, s + rows)),
    ...])``, with the chunks spread over the CPU's threads (``docs/benchmarks.md``, issue 20).

    With more than one torch thread, on the CPU, outside autocast and with at least two rows, each of
    ``torch.get_num_threads()`` workers runs whole chunks on one thread (the chunks are then at most
    ``ceil(B / threads)`` rows, so that every worker has one): independent chunks keep both cores busy
    without the per-operator thread barriers of intra-op parallelism, which wait long on small operators and
    on a shared machine. Each chunk's result is the one-thread result, so a call's output does not depend on
    the scheduling. Otherwise the chunks run in order on the calling thread; on an accelerator the batch is
    one pass (the chunk size is tuned to this CPU's cache).

    Args:
        fn: ``fn(rows: slice) -> Tensor`` of shape (len(rows), ...). batch: B. rows: largest chunk (>= 1).
        device: the tensors' device.

    Returns:
        (B, ...) the chunks' results, in order.
    """
    if torch.device(device).type != "cpu":
        return fn(slice(0, batch))           # accelerators: one pass (their memory and batching differ)
    threads = torch.get_num_threads()
    parallel = batch > 1 and threads > 1 and not torch.is_grad_enabled() and not torch.is_autocast_enabled("cpu")
    if parallel:
        rows = min(rows, -(-batch // threads))
    parts = [slice(s, min(batch, s + rows)) for s in range(0, batch, rows)]
    if len(parts) == 1:
        return fn(parts[0])
    if not parallel:
        return torch.cat([fn(p) for p in parts])
    try:
        results = list(_pool(threads).map(lambda p: _one_thread(fn, p), parts))
    finally:
        torch.set_num_threads(threads)       # the workers' setting is process-wide for MKL: restore it
    return torch.cat(results)
