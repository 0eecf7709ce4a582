"""What the generators consume from the other stages, as small Protocols, and input checks (docs/design.md §4.7, §5.1).

The generation stage does not import the tokenizer, the text encoder or the retriever. It needs:

- token grids: ``(B, n, J')`` base-layer ids or ``(B, n, J', Q)`` all-layer ids, long, ``-1`` at padding
  (what ``MotionTokenizer.encode`` returns), n = frames / 4;
- the sentence embedding of each prompt: ``(B, text_dim)`` float (``TextFeatures.sentence``);
- the top-k retrieved entries: any object with ``motion_emb`` and ``text_emb`` ``(B, k, E)`` and optionally
  ``indices`` ``(B, k)`` (-1 = empty slot) and ``tokens`` ``(B, k, n_r, J')`` (their base-layer token grids, -1
  at padding; read by ``retrieval_form="tokens"`` models, docs/design.md §5.8), i.e. :class:`RetrievalLike`
  (``RetrievalResult`` fits);
- optionally the tokenizer codebooks ``(Q, K, C)`` to initialise the residual transformer's tables
  (:func:`codebooks_of` reads them from a :class:`CodebookSource`).

It also holds the RAG-CFG gate helpers (:func:`draw_gates`, :func:`resolve_gate`) shared by both transformers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, Sequence, runtime_checkable

import torch

__all__ = [
    "RetrievalLike",
    "CodebookSource",
    "Retrieved",
    "as_retrieved",
    "check_text",
    "token_valid",
    "codebooks_of",
    "num_codes_of",
    "column_codes_of",
    "column_code_mask",
    "restrict_to_columns",
    "lengths_to_valid",
    "pad_token_grids",
    "draw_gates",
    "resolve_gate",
]


@runtime_checkable
class RetrievalLike(Protocol):
    """Top-k retrieval result for B prompts (docs/design.md §4.7 ``re_dict``).

    Attributes:
        motion_emb: (B, k, E) float stored motion embeddings (L2-normalised, E = 512).
        text_emb: (B, k, E) float stored text embeddings of the same entries.
        indices: optional (B, k) long database rows, -1 for an empty slot (fewer than k distinct motions).
    """

    motion_emb: torch.Tensor
    text_emb: torch.Tensor


class CodebookSource(Protocol):
    """A residual VQ whose layers expose their codebooks: ``quantizer.layers[l].codebook`` (K, C).

    ``remomask.tokenizer.MotionTokenizer`` satisfies it.
    """

    quantizer: Any


@dataclass
class Retrieved:
    """Retrieval inputs in the layout the models use.

    Attributes:
        motion: (B, k, E) float motion embeddings (zeros in empty slots).
        text: (B, k, E) float text embeddings (zeros in empty slots).
        valid: (B, k) bool, False for empty slots (they are treated like dropped retrieval).
        tokens: (B, k, n_r, J') long base-layer token grids of the entries (-1 after each grid's length and
            in empty slots), or None (embedding-form models do not read them; docs/design.md §5.8).
    """

    motion: torch.Tensor
    text: torch.Tensor
    valid: torch.Tensor
    tokens: torch.Tensor | None = None

    def repeat(self, times: int) -> "Retrieved":
        """The batch repeated ``times`` times along B (for batched guidance passes)."""
        tokens = None if self.tokens is None else self.tokens.repeat(times, 1, 1, 1)
        return Retrieved(self.motion.repeat(times, 1, 1), self.text.repeat(times, 1, 1), self.valid.repeat(times, 1),
                         tokens)

    def take(self, index: torch.Tensor) -> "Retrieved":
        """The rows ``index`` ((m,) long, on this object's device) of the batch: (m, k, E) / (m, k)."""
        tokens = None if self.tokens is None else self.tokens[index]
        return Retrieved(self.motion[index], self.text[index], self.valid[index], tokens)

    @staticmethod
    def cat(parts: Sequence["Retrieved"]) -> "Retrieved":
        """The batches of ``parts`` (same k and E) joined along B; token grids are padded to the longest
        (all parts need them, or none)."""
        have = [r.tokens is not None for r in parts]
        if any(have) and not all(have):
            raise ValueError("cannot join retrieval batches with and without token grids")
        tokens = pad_token_grids([g for r in parts for g in r.tokens]) if all(have) and parts else None
        return Retrieved(torch.cat([r.motion for r in parts]), torch.cat([r.text for r in parts]),
                         torch.cat([r.valid for r in parts]), tokens)


def pad_token_grids(grids: Sequence[torch.Tensor]) -> torch.Tensor:
    """Stack per-prompt token grids of different lengths.

    Args:
        grids: B tensors (k, n_b, J') of integer ids (-1 = padding), same k and J'.

    Returns:
        (B, k, max n_b, J') long, -1 after each grid's own rows.

    Raises:
        ValueError: no grids, or grids whose k or J' differ.
    """
    if not len(grids):
        raise ValueError("no token grids to stack")
    k, _, j = grids[0].shape
    if any(g.ndim != 3 or g.shape[0] != k or g.shape[2] != j for g in grids):
        raise ValueError(f"token grids must all be (k={k}, n, J'={j}), got {[tuple(g.shape) for g in grids]}")
    n = max(g.shape[1] for g in grids)
    out = torch.full((len(grids), k, n, j), -1, dtype=torch.long, device=grids[0].device)
    for b, g in enumerate(grids):
        out[b, :, : g.shape[1]] = g.long()
    return out


def as_retrieved(obj, batch_size: int, k: int, dim: int, device, dtype=torch.float32) -> Retrieved:
    """Turn a :class:`RetrievalLike` (or :class:`Retrieved`, or a dict with ``motion_emb``/``text_emb``) into
    :class:`Retrieved` with exactly ``k`` slots.

    Extra slots are cut (the first k, best first, are kept); missing slots are added as empty. Token grids
    (``tokens``, (B, k', n_r, J')) are carried along when present, -1 in empty slots.

    Raises:
        TypeError: an object without the two embedding tensors.
        ValueError: wrong batch size or width, NaN embeddings (names the fix), or token grids whose (B, k') differ
            from the embeddings'.
    """
    tokens = None
    if isinstance(obj, Retrieved):
        motion, text, valid, tokens = obj.motion, obj.text, obj.valid, obj.tokens
    else:
        get = obj.get if isinstance(obj, dict) else (lambda name, default=None: getattr(obj, name, default))
        motion, text = get("motion_emb"), get("text_emb")
        if not isinstance(motion, torch.Tensor) or not isinstance(text, torch.Tensor):
            raise TypeError("retrieval input must have tensors motion_emb and text_emb of shape (B, k, E) "
                            f"(a RetrievalResult from RetrievalDatabase.search), got {type(obj).__name__}")
        indices = get("indices")
        valid = (torch.as_tensor(indices) >= 0) if indices is not None else get("valid")
        if valid is None:
            valid = torch.ones(motion.shape[:2], dtype=torch.bool)
        tokens = get("tokens")
    for name, t in (("motion_emb", motion), ("text_emb", text)):
        if t.ndim == 2:
            raise ValueError(f"retrieval {name} must be (B, k, E); got (B, E) = {tuple(t.shape)}: add the k axis "
                             "with .unsqueeze(1)")
        if t.ndim != 3 or t.shape[0] != batch_size or t.shape[2] != dim:
            raise ValueError(f"retrieval {name} must be (B={batch_size}, k, E={dim}), got {tuple(t.shape)}")
    if motion.shape != text.shape:
        raise ValueError(f"retrieval motion_emb {tuple(motion.shape)} and text_emb {tuple(text.shape)} differ")
    valid = torch.as_tensor(valid, device=motion.device).bool()
    if valid.shape != motion.shape[:2]:
        raise ValueError(f"retrieval validity must be (B, k) = {tuple(motion.shape[:2])}, got {tuple(valid.shape)}")
    if torch.isnan(motion).any() or torch.isnan(text).any():
        raise ValueError("retrieval embeddings contain NaN; rebuild the retrieval database")
    have = motion.shape[1]
    motion, text, valid = motion[:, :k], text[:, :k], valid[:, :k]
    if have < k:
        pad = k - have
        motion = torch.cat([motion, motion.new_zeros(batch_size, pad, dim)], 1)
        text = torch.cat([text, text.new_zeros(batch_size, pad, dim)], 1)
        valid = torch.cat([valid, valid.new_zeros(batch_size, pad)], 1)
    motion = motion.to(device=device, dtype=dtype) * valid.to(device)[..., None]
    text = text.to(device=device, dtype=dtype) * valid.to(device)[..., None]
    if tokens is not None:
        tokens = torch.as_tensor(tokens)
        if tokens.ndim != 4 or tokens.shape[:2] != (batch_size, have):
            raise ValueError(f"retrieval tokens must be (B={batch_size}, k={have}, n, J'), got {tuple(tokens.shape)}")
        tokens = tokens[:, :k].to(device=device, dtype=torch.long)
        if have < k:
            tokens = torch.cat([tokens, tokens.new_full((batch_size, k - have, *tokens.shape[2:]), -1)], 1)
        tokens = tokens.masked_fill(~valid.to(device)[..., None, None], -1)
    return Retrieved(motion, text, valid.to(device), tokens)


def check_text(text, batch_size: int, dim: int, device, dtype=torch.float32) -> torch.Tensor | None:
    """Validate a ``(B, text_dim)`` sentence embedding (None passes through: "no text").

    Raises:
        ValueError: wrong shape or NaN, with the expected shape.
    """
    if text is None:
        return None
    if hasattr(text, "sentence") and not isinstance(text, torch.Tensor):
        text = text.sentence  # a TextFeatures tuple
    if not isinstance(text, torch.Tensor) or text.shape != (batch_size, dim):
        shape = tuple(text.shape) if isinstance(text, torch.Tensor) else type(text).__name__
        raise ValueError(f"text must be the (B, text_dim) = ({batch_size}, {dim}) sentence embedding "
                         f"(TextFeatures.sentence), got {shape}")
    if torch.isnan(text).any():
        raise ValueError("text embedding contains NaN")
    return text.to(device=device, dtype=dtype)


def token_valid(ids: torch.Tensor, num_codes: int, pad_id: int, allow_mask: bool = True) -> torch.Tensor:
    """Validity mask of a token grid: True where ``ids`` is a code (or [MASK]), False at padding.

    Args:
        ids: integer tensor, any shape; padding is ``-1`` or ``pad_id``.
        num_codes: K; codes are ``0..K-1`` and [MASK] is K.
        pad_id: K + 1 for the masked transformer.
        allow_mask: accept the [MASK] id K.

    Raises:
        ValueError: non-integer ids or ids outside ``{-1} U [0, K) U {K (mask), pad_id}``.
    """
    if not isinstance(ids, torch.Tensor) or ids.is_floating_point() or ids.dtype == torch.bool:
        raise ValueError(f"token ids must be an integer tensor, got {getattr(ids, 'dtype', type(ids).__name__)}")
    top = num_codes + (1 if allow_mask else 0)
    bad = (ids < -1) | ((ids >= top) & (ids != pad_id))
    if bad.any():
        raise ValueError(f"token ids must be -1 (padding), 0..{num_codes - 1} (codes)"
                         f"{f', {num_codes} (mask)' if allow_mask else ''} or {pad_id} (pad); found "
                         f"{ids[bad][:4].tolist()}. Is the model's num_codes ({num_codes}) the tokenizer's?")
    return (ids >= 0) & (ids != pad_id)


def lengths_to_valid(token_lengths, num_tokens: int, num_columns: int, device=None) -> torch.Tensor:
    """(B,) token lengths -> (B, num_tokens, num_columns) bool grid, True on the first ``length`` rows.

    Raises:
        ValueError: lengths not 1-D, < 1 or > num_tokens.
    """
    lengths = torch.as_tensor(token_lengths, dtype=torch.long, device=device)
    if lengths.ndim != 1 or lengths.numel() == 0:
        raise ValueError(f"token lengths must be a non-empty (B,) vector, got shape {tuple(lengths.shape)}")
    if (lengths < 1).any() or (lengths > num_tokens).any():
        raise ValueError(f"token lengths must be in 1..{num_tokens} (4 frames per token), got {lengths.tolist()}")
    rows = torch.arange(num_tokens, device=lengths.device)[None, :] < lengths[:, None]
    return rows[:, :, None].expand(-1, -1, num_columns)


def codebooks_of(tokenizer: CodebookSource) -> torch.Tensor:
    """Stack a tokenizer's residual codebooks into (Q, K, C).

    Raises:
        TypeError: the object has no ``quantizer.layers[*].codebook``.
    """
    try:
        books = [layer.codebook for layer in tokenizer.quantizer.layers]
    except AttributeError as exc:
        raise TypeError("expected a tokenizer whose quantizer.layers[l].codebook are (K, C) tensors "
                        f"(MotionTokenizer), got {type(tokenizer).__name__}") from exc
    return torch.stack([b.detach() for b in books])


def num_codes_of(tokenizer) -> int:
    """K of the generators for a tokenizer: one id range over every token column, so the larger of the two
    codebooks with the dual-branch tokenizer (its 1D column has ``num_codes_1d`` codes), else ``num_codes``
    (``docs/generation.md``, "Token columns").

    Raises:
        AttributeError: not a ``MotionTokenizer``-like object (``config.num_codes``, ``dual``).
    """
    c = tokenizer.config
    return max(c.num_codes, c.num_codes_1d) if tokenizer.dual else c.num_codes


def column_codes_of(tokenizer) -> tuple[int, ...] | None:
    """Codes each token column of a tokenizer has: the 2D columns ``num_codes``, the dual tokenizer's last (1D)
    column ``num_codes_1d``. None when every column has :func:`num_codes_of` codes (nothing to restrict).

    Returns:
        (J',) tuple of ints, or None.
    """
    c = tokenizer.config
    codes = (c.num_codes,) * tokenizer.grid.columns + ((c.num_codes_1d,) if tokenizer.dual else ())
    return None if len(set(codes)) == 1 and codes[0] == num_codes_of(tokenizer) else tuple(codes)


def column_code_mask(column_codes, num_codes: int, positions: int, device=None) -> torch.Tensor | None:
    """Which ids each grid position may take: position p (index ``t * J' + j``) has column ``j = p % J'``.

    Args:
        column_codes: (J',) code counts per column, or None (all K everywhere).
        num_codes: K. positions: N = n J'. device: torch device.

    Returns:
        (N, K) bool, True where id k < ``column_codes[p % J']``; None without ``column_codes``.
    """
    if column_codes is None:
        return None
    limit = torch.as_tensor(column_codes, dtype=torch.long, device=device)
    cols = torch.arange(positions, device=device) % len(column_codes)
    return torch.arange(num_codes, device=device)[None, :] < limit[cols][:, None]


def restrict_to_columns(logits: torch.Tensor, column_codes) -> torch.Tensor:
    """Logits of ids a column's codebook does not have set to -inf, so they are never sampled or predicted
    (the dual tokenizer's 2D columns have fewer codes than its 1D column; ``docs/generation.md``,
    "Token columns").

    Args:
        logits: (B, N, K) float, position index ``t * J' + j``. column_codes: (J',) counts or None.

    Returns:
        (B, N, K): a masked copy, or ``logits`` itself when ``column_codes`` is None.
    """
    mask = column_code_mask(column_codes, logits.shape[-1], logits.shape[1], logits.device)
    return logits if mask is None else logits.masked_fill(~mask, float("-inf"))


def draw_gates(batch_size: int, drop_prob: float, device, generator: torch.Generator | None = None) -> torch.Tensor:
    """(B,) bool gates, each False (dropped) with probability ``drop_prob`` (docs/design.md §5.5)."""
    return torch.rand(batch_size, device=device, generator=generator) >= drop_prob


def resolve_gate(value, training: bool, drop_prob: float, batch_size: int, device, generator,
                 name: str) -> torch.Tensor:
    """A (B,) bool RAG-CFG gate: ``value`` (a bool or (B,) tensor) when given; else drawn with ``drop_prob``
    in training mode (:func:`draw_gates`) and all on in eval mode.

    Raises:
        ValueError: a gate of the wrong shape (``name`` says which).
    """
    if value is None:
        if training:
            return draw_gates(batch_size, drop_prob, device, generator)
        return torch.ones(batch_size, dtype=torch.bool, device=device)
    return _gate(value, batch_size, device, name)


def _gate(value, batch_size: int, device, name: str) -> torch.Tensor:
    gate = torch.as_tensor(value, device=device)
    if gate.ndim == 0:
        gate = gate.expand(batch_size)
    if gate.shape != (batch_size,):
        raise ValueError(f"{name} must be a bool or a (B,) = ({batch_size},) bool tensor, "
                         f"got shape {tuple(gate.shape)}")
    return gate.bool()
