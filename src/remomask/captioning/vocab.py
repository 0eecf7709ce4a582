"""Word-level caption vocabulary of the trained captioner (docs/captioning.md "Model").

Built from the train captions only, no pretrained language model: a caption is lower-cased and split into
words and punctuation marks (:func:`words`: runs of letters / digits, with an apostrophe inside a word kept,
and every other non-space character as a token of its own), words seen fewer than ``min_count`` times map to
``<unk>``. Ids 0..3 are the specials ``<pad>``, ``<bos>``, ``<eos>``, ``<unk>``. :func:`detokenize` joins the
tokens back into a sentence (punctuation attached to the word before it), so
``detokenize(words(s)) == " ".join(s.lower().split())`` for the dataset's captions (tested).

The folder file is ``vocab.json``: ``{"format": "remomask-caption-vocab", "version": 1, "words": [...],
"min_count": m}``.

Source: the word-level vocabularies of TM2T (Guo et al. 2022) and ReMoGPT, built here from our own train split.
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from pathlib import Path
from typing import Iterable, Sequence

from ..errors import InputFileError

__all__ = ["Vocabulary", "words", "detokenize", "PAD", "BOS", "EOS", "UNK", "SPECIALS", "VOCAB_FILE"]

PAD, BOS, EOS, UNK = 0, 1, 2, 3
SPECIALS = ("<pad>", "<bos>", "<eos>", "<unk>")
VOCAB_FILE = "vocab.json"
_FORMAT, _VERSION = "remomask-caption-vocab", 1
_TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z]+)?|[^\sa-z0-9]")
_ATTACH = set(".,;:!?)'\"")


def words(text: str) -> list[str]:
    """Lower-cased word and punctuation tokens of a caption (``"A man waves, slowly."`` ->
    ``["a", "man", "waves", ",", "slowly", "."]``)."""
    return _TOKEN.findall(str(text).lower())


def detokenize(tokens: Iterable[str]) -> str:
    """Tokens -> a sentence: spaces between words, punctuation attached to the word before it."""
    out = ""
    for t in tokens:
        out += t if (t in _ATTACH or t.startswith("'")) and out else (" " + t if out else t)
    return out


class Vocabulary:
    """Word <-> id table with the four specials first (module docstring).

    Args:
        itos: the id -> word list; it must start with :data:`SPECIALS`.
        min_count: the count threshold it was built with (recorded only).

    Raises:
        InputFileError: a list that does not start with the specials or holds a word twice.
    """

    def __init__(self, itos: Sequence[str], min_count: int = 1) -> None:
        itos = [str(w) for w in itos]
        if tuple(itos[: len(SPECIALS)]) != SPECIALS or len(set(itos)) != len(itos):
            raise InputFileError("a caption vocabulary must start with <pad> <bos> <eos> <unk> and hold each word once")
        self.itos = itos
        self.stoi = {w: i for i, w in enumerate(itos)}
        self.min_count = int(min_count)

    @classmethod
    def build(cls, captions: Iterable[str], min_count: int = 2) -> "Vocabulary":
        """The vocabulary of ``captions``: words seen at least ``min_count`` times, most frequent first
        (ties alphabetical, so the table does not depend on the captions' order)."""
        counts = Counter(w for c in captions for w in words(c))
        kept = sorted((w for w, n in counts.items() if n >= min_count), key=lambda w: (-counts[w], w))
        return cls([*SPECIALS, *kept], min_count)

    def __len__(self) -> int:
        return len(self.itos)

    def encode(self, text: str, max_len: int | None = None) -> list[int]:
        """``[BOS, w1, ..., wn, EOS]`` ids of a caption; unknown words are :data:`UNK`. With ``max_len`` the
        words are cut so that the list (both markers included) has at most ``max_len`` ids."""
        ids = [self.stoi.get(w, UNK) for w in words(text)]
        if max_len is not None:
            ids = ids[: max(0, max_len - 2)]
        return [BOS, *ids, EOS]

    def decode(self, ids: Iterable[int]) -> str:
        """Ids -> sentence: stops at the first :data:`EOS`, skips :data:`PAD` / :data:`BOS`, keeps ``<unk>``."""
        out = []
        for i in ids:
            i = int(i)
            if i == EOS:
                break
            if i in (PAD, BOS):
                continue
            out.append(self.itos[i] if 0 <= i < len(self.itos) else SPECIALS[UNK])
        return detokenize(out)

    def save(self, folder: str | os.PathLike) -> Path:
        """Write ``vocab.json`` into ``folder`` (atomically) and return its path."""
        from ..files import atomic_write_text

        path = Path(folder) / VOCAB_FILE
        atomic_write_text(path, json.dumps({"format": _FORMAT, "version": _VERSION, "min_count": self.min_count,
                                            "words": self.itos}, indent=0) + "\n")
        return path

    @classmethod
    def load(cls, folder: str | os.PathLike) -> "Vocabulary":
        """Read ``vocab.json`` of a model folder.

        Raises:
            MissingFileError: no such file. InputFileError: not a vocabulary file of this format.
        """
        from .._pretrained import read_format_json
        from ..errors import MissingFileError

        path = Path(folder) / VOCAB_FILE
        if not path.is_file():
            raise MissingFileError(f"{path} is missing; {folder} is not a trained captioner folder")
        meta = read_format_json(path, _FORMAT, _VERSION, InputFileError, invalid="{path} is not valid JSON ({exc})",
                                wrong_format="{path} is not a caption vocabulary (format {got!r})")
        if not isinstance(meta.get("words"), list):
            raise InputFileError(f"{path} has no word list")
        return cls(meta["words"], int(meta.get("min_count", 1)))

    def __repr__(self) -> str:
        return f"Vocabulary({len(self)} words, min_count={self.min_count})"
