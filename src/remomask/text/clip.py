"""CLIP ViT-B/32 text encoder from a local weights file (optional; docs/design.md §0.2 item 4, docs/design.md §4.2).

The paper's released retriever uses a frozen CLIP ViT-B/32 text tower (512-d). remomask never downloads
it: the user passes the path of a weights file and has one of the two CLIP packages installed:

- ``open_clip`` (``pip install open_clip_torch``): ``open_clip.create_model(arch, pretrained=PATH)``;
- ``clip`` from ``clip-anytorch`` (OpenAI's code): ``clip.load(PATH)`` with a TorchScript or state-dict file.

Token features are the final-LayerNorm outputs of the text transformer (B, 77, 512), real up to and
including the end-of-text token; the sentence embedding is the end-of-text feature times
``text_projection``, L2-normalised (CLIP's ``encode_text``, normalised).
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from .base import TextEncoder, TextEncoderError, TextFeatures

__all__ = ["ClipTextEncoder"]


def _import_backend(backend: str):
    if backend not in ("auto", "open_clip", "clip"):
        raise TextEncoderError(f"CLIP backend must be 'auto', 'open_clip' or 'clip', not {backend!r}")
    order = ["open_clip", "clip"] if backend == "auto" else [backend]
    for name in order:
        try:
            return name, __import__(name)
        except ImportError:
            continue
    raise TextEncoderError(
        "the CLIP text encoder needs `open_clip` (`pip install open_clip_torch`) or OpenAI's `clip` "
        "(`pip install clip-anytorch`); neither is installed. The default encoder (minilm) needs neither."
    )


class ClipTextEncoder(TextEncoder):
    """Frozen CLIP text tower (ViT-B/32: D = 512 tokens and sentence) from a local weights file.

    Args:
        weights: path of the CLIP checkpoint (``.pt`` / ``.bin`` / ``.safetensors`` as the backend accepts).
        arch: open_clip architecture name (``"ViT-B-32"``); ignored by the ``clip`` backend.
        backend: ``"auto"`` (open_clip, else clip), ``"open_clip"`` or ``"clip"``.
        cache_size: see :class:`TextEncoder`.

    Raises:
        TextEncoderError: no weights path, a missing file, no CLIP package, or a file the backend
            cannot load; each message says what to install or pass.
    """

    name = "clip"
    max_tokens = 77

    def __init__(self, weights: str | Path | None, *, arch: str = "ViT-B-32", backend: str = "auto",
                 cache_size: int = 100_000) -> None:
        super().__init__(cache_size=cache_size)
        if weights is None:
            raise TextEncoderError("the CLIP text encoder needs a local weights file: pass clip_weights=PATH "
                                   "(remomask does not download CLIP)")
        path = Path(weights).expanduser()
        if not path.is_file():
            raise TextEncoderError(f"CLIP weights file {path} does not exist; pass the path of a ViT-B/32 "
                                   "checkpoint you have downloaded")
        self.backend, module = _import_backend(backend)
        try:
            if self.backend == "open_clip":
                model = module.create_model(arch, pretrained=str(path), device="cpu")
                self._tokenize = module.get_tokenizer(arch)
            else:
                model, _ = module.load(str(path), device="cpu", jit=False)
                self._tokenize = module.tokenize
        except Exception as exc:  # noqa: BLE001 - any backend failure becomes one clear error
            raise TextEncoderError(f"{self.backend} could not load CLIP weights from {path}: {exc}") from exc
        # Keep only the text tower; the image tower is never used.
        self.token_embedding = model.token_embedding
        self.positional_embedding = model.positional_embedding
        self.transformer = model.transformer
        self.ln_final = model.ln_final
        self.text_projection = model.text_projection
        self.register_buffer("attn_mask", getattr(model, "attn_mask", None), persistent=False)
        self._batch_first = bool(getattr(model.transformer, "batch_first", False))
        self.dim = int(self.ln_final.weight.shape[0])
        self.weights_path = path
        self.eval().requires_grad_(False)

    def _encode_batch(self, texts: list[str]) -> TextFeatures:
        ids = self._tokenize(texts).to(self.device)  # (B, 77), zero-padded
        x = self.token_embedding(ids) + self.positional_embedding[: ids.shape[1]]
        if self._batch_first:
            x = self.transformer(x, attn_mask=self.attn_mask)
        else:  # OpenAI's code is sequence-first
            x = self.transformer(x.permute(1, 0, 2), attn_mask=self.attn_mask).permute(1, 0, 2)
        x = self.ln_final(x)  # (B, 77, D)
        eot = ids.argmax(dim=-1)  # the end-of-text token has the largest id
        mask = torch.arange(ids.shape[1], device=ids.device)[None, :] <= eot[:, None]
        sentence = x[torch.arange(len(texts)), eot] @ self.text_projection
        return TextFeatures(x * mask[..., None], mask, F.normalize(sentence, dim=-1))
