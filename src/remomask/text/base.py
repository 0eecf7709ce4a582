"""The interface every frozen text encoder implements, with an embedding cache for repeated captions.

docs/design.md §4.2 (text side of the retriever) and the decisions table of docs/design.md §0.3: the retriever's text
encoder is a frozen pretrained model; only what sits on top of it is trained. Captions repeat a lot
(HumanML3D's "a person walks forward", the templated captions of the embedded dataset), so each distinct
caption is encoded once and then served from an in-memory LRU cache.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from typing import NamedTuple, Sequence

import torch
from torch import nn
from ..errors import RemomaskError

__all__ = ["TextFeatures", "TextEncoder", "TextEncoderError", "caption_key"]


class TextEncoderError(RemomaskError, RuntimeError):
    """A text encoder cannot be loaded (missing package or weights file) or used (bad input)."""


class TextFeatures(NamedTuple):
    """Output of :meth:`TextEncoder.encode`; unpacks as ``tokens, mask, sentence``.

    Attributes:
        tokens: (B, L, D) float32 per-token features of the frozen encoder, zeros after each text's length.
        mask: (B, L) bool, True on real tokens (including the model's special tokens).
        sentence: (B, D) float32 pooled sentence embedding, L2-normalised.
    """

    tokens: torch.Tensor
    mask: torch.Tensor
    sentence: torch.Tensor


def caption_key(text: str) -> int:
    """Stable signed 64-bit id of a caption (whitespace-trimmed, lower-cased), for false-negative filtering.

    Identical captions (up to case and surrounding spaces) get identical ids in every process and run.
    """
    digest = hashlib.blake2b(text.strip().lower().encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "little", signed=True)


class TextEncoder(nn.Module):
    """Base class of the frozen text encoders (docs/design.md §4.2): ``encode(texts) -> TextFeatures``.

    Subclasses set ``dim`` (D) and ``name`` and implement :meth:`_encode_batch`. The module is frozen
    (eval mode, no gradients); move it with ``.to(device)`` and :meth:`encode` returns tensors on that
    device (or on ``device=`` when given).

    Args:
        cache_size: distinct captions kept in the LRU cache (0 disables it). Entries live on the CPU in
            float32: about ``L * D * 4`` bytes each (~25 kB for a 16-token caption at D = 384).
    """

    dim: int = 0
    name: str = "text-encoder"
    max_tokens: int = 128

    def __init__(self, cache_size: int = 100_000) -> None:
        super().__init__()
        self.cache_size = int(cache_size)
        self._cache: OrderedDict[str, tuple[torch.Tensor, torch.Tensor]] = OrderedDict()
        self.cache_hits = 0
        self.cache_misses = 0

    # -- to implement ----------------------------------------------------------------------------------
    def _encode_batch(self, texts: list[str]) -> TextFeatures:  # pragma: no cover - abstract
        raise NotImplementedError

    # -- public ----------------------------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        """Device of the encoder's weights."""
        for p in self.parameters():
            return p.device
        return torch.device("cpu")

    def train(self, mode: bool = True) -> "TextEncoder":
        """The encoder is frozen: it always stays in eval mode (dropout off)."""
        return super().train(False)

    def clear_cache(self) -> None:
        """Drop every cached caption embedding."""
        self._cache.clear()

    @torch.no_grad()
    def encode(self, texts: str | Sequence[str], *, device: torch.device | str | None = None,
               batch_size: int = 256) -> TextFeatures:
        """Encode captions with the frozen model.

        Args:
            texts: one caption or a sequence of B captions (non-empty strings).
            device: where the outputs go; None = the encoder's device.
            batch_size: captions per forward pass for the ones not in the cache.

        Returns:
            :class:`TextFeatures` ``(tokens (B, L, D), mask (B, L), sentence (B, D))``; L is the longest
            caption of this call in tokens (at most ``max_tokens``; longer captions are truncated).

        Raises:
            TextEncoderError: an empty list, a non-string or an empty caption.
        """
        if isinstance(texts, str):
            texts = [texts]
        texts = list(texts)
        if not texts:
            raise TextEncoderError("encode() needs at least one caption")
        for i, t in enumerate(texts):
            if not isinstance(t, str) or not t.strip():
                raise TextEncoderError(f"caption {i} is {t!r}; every caption must be a non-empty string")
        out_device = torch.device(device) if device is not None else self.device
        missing = list(dict.fromkeys(t for t in texts if t not in self._cache))
        fresh: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        for s in range(0, len(missing), batch_size):
            chunk = missing[s: s + batch_size]
            tok, mask, sent = self._encode_batch(chunk)
            tok, mask, sent = tok.float().cpu(), mask.cpu(), sent.float().cpu()
            for j, text in enumerate(chunk):
                n = int(mask[j].sum())
                fresh[text] = (tok[j, :n].clone(), sent[j].clone())
        self.cache_misses += len(missing)
        self.cache_hits += len(texts) - len(missing)
        rows = []
        for t in texts:
            entry = fresh.get(t)
            if entry is None:
                entry = self._cache[t]
                self._cache.move_to_end(t)
            rows.append(entry)
        if self.cache_size > 0:
            for t, entry in fresh.items():
                self._cache[t] = entry
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        lengths = [r[0].shape[0] for r in rows]
        L = max(lengths)
        tokens = torch.zeros(len(rows), L, self.dim)
        for i, (tok, _) in enumerate(rows):
            tokens[i, : tok.shape[0]] = tok
        mask = torch.arange(L)[None, :] < torch.tensor(lengths)[:, None]
        sentence = torch.stack([r[1] for r in rows])
        return TextFeatures(tokens.to(out_device), mask.to(out_device), sentence.to(out_device))

    def forward(self, texts: str | Sequence[str]) -> TextFeatures:
        """Same as :meth:`encode`."""
        return self.encode(texts)

    def extra_repr(self) -> str:
        return f"name={self.name!r}, dim={self.dim}, cached={len(self._cache)}"
