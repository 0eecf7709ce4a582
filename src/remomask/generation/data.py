"""Training inputs of the generation stage: token grids of random crops, and text / retrieval conditions
(docs/design.md §2.4, §4.7, §5.7, §6.3).

Crops (docs/design.md §2.4, ``Text2MotionDataset``): for a sample of T frames pick one of its captions, draw
coin in {single, single, double}, keep ``m_len = crop_length(T, coin)`` frames (a multiple of 4) at a
random start s. The draws happen in that order from one numpy generator, as in
:class:`~remomask.data.datasets.TextMotionDataset`, so validation crops drawn with
``default_rng([seed, i])`` are the ones the evaluation loader makes.

Tokens of a crop, two sources that give identical ids:

- ``"online"``: normalise the crop with the tokenizer's statistics and encode it with the frozen tokenizer
  (docs/design.md §5.7: "VQ encoding happens online"); the right choice on a GPU.
- ``"cache"``: a sample of T < 200 frames has at most 12 distinct crops (``single`` keeps all but T mod 4
  frames: T mod 4 + 1 starts; ``double`` one unit less: T mod 4 + 5 starts). Every possible crop of every
  sample is encoded once and stored (int16, ``<cache_dir>/<split>-<signature>.npz``: 18 bytes per frame and
  crop with 6 columns x 6 layers, about 60 MB for the embedded train split); a training crop then costs a
  lookup. On a CPU, online encoding costs a fifth to a third of a training step of the ``cpu`` transformers.

Crops are always encoded in groups of equal length: the tokenizer's convolutions see the zero padding of a
padded batch (their biases make it non-zero after the first layer), so a short motion encoded beside a long
one gets slightly different tokens near its end than alone. Grouping makes a crop's tokens independent of
its batch, and the cache equal to online encoding.

Conditions (docs/design.md §4.7, with the remomask decision to exclude the sample's own motion at training time):
the caption is encoded once by the frozen text encoder; its sentence embedding is the generator's text
input, its token features go through the retriever's text side to query the database (text -> motion);
the top-k entries with distinct motions are kept, skipping the sample's own motion id and its mirrored
twin. Both are cached per caption (and per excluded motion id). Options: ``k_t2t`` of the k entries are
text-to-text neighbours of other motions (docs/design.md §4.9); ``tokens=True`` also returns the entries' token
grids stored in the database (``retrieval_form="tokens"`` generators, §4.8, §5.8), with the same exclusions.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from ..data.datasets import GENERATION_MAX_LENGTH, UNIT_LENGTH, crop_length
from ..data.normalization import normalize
from .conditions import Retrieved, pad_token_grids

__all__ = [
    "TOKEN_SOURCES",
    "Crop",
    "draw_crop",
    "load_generation_records",
    "sample_indices",
    "tokenizer_fingerprint",
    "TokenSource",
    "Conditions",
    "check_min_score",
    "ConditionEncoder",
    "DIVERSE_LABELS",
]

TOKEN_SOURCES = ("cache", "online")
_CACHE_VERSION = 1


@dataclass(frozen=True)
class Crop:
    """One training item before tokenisation.

    Attributes:
        index: record index in the split. caption: the caption text drawn.
        start: first frame of the crop in the sample. length: frames (multiple of 4, at most 196).
        motion_id: the file the sample comes from (excluded from its own retrieval). key: the sample key.
    """

    index: int
    caption: str
    start: int
    length: int
    motion_id: str
    key: str


def draw_crop(record, index: int, rng: np.random.Generator, max_length: int = GENERATION_MAX_LENGTH) -> Crop:
    """Caption, coin and crop of one sample, drawn in the order of ``TextMotionDataset`` (docs/design.md §2.4).

    Args:
        record: a :class:`~remomask.data.layout.MotionRecord` with at least one caption.
        index: its index (kept in the crop). rng: numpy generator. max_length: frames (196).

    Raises:
        ValueError: a record without captions.
    """
    if not record.captions:
        raise ValueError(f"sample {record.key} has no caption")
    caption = record.captions[int(rng.integers(len(record.captions)))].text
    coin = ("single", "single", "double")[int(rng.integers(3))]
    m_len = crop_length(record.length, coin, UNIT_LENGTH, max_length)
    start = int(rng.integers(0, record.length - m_len + 1))
    return Crop(index, caption, start, m_len, record.motion_id, record.key)


def load_generation_records(root, split: str, *, progress: bool = False, short_clips: str = "hold") -> list:
    """Captioned samples of a split for the generators (masked / residual transformers, length estimator).

    The generation length range is ``min <= T < 200`` (40 HumanML3D, 24 KIT; docs/design.md §2.4). With
    ``short_clips="hold"`` (default) samples shorter than the minimum are kept, extended to exactly the
    minimum by holding their first and last pose (:func:`~remomask.data.datasets.extend_short_records`), so
    every action of the split reaches the generators (docs/data.md "Every action learned"); ``"drop"`` is
    the HumanML3D convention (such samples are left out). Extended records are deterministic, so the crop
    cache of :class:`TokenSource` enumerates their crops like any other.

    Raises:
        DatasetError: from :class:`~remomask.data.layout.MotionLayout` (missing folder, empty split, ...).
        ValueError: an unknown ``short_clips``.
    """
    from ..data.datasets import SHORT_CLIP_POLICIES, extend_short_records
    from ..data.layout import MotionLayout

    if short_clips not in SHORT_CLIP_POLICIES:
        raise ValueError(f"short_clips must be one of {SHORT_CLIP_POLICIES}, got {short_clips!r}")
    hold = short_clips == "hold"
    layout = MotionLayout(root, split, progress=progress, **({"min_length": 0} if hold else {}))
    records = [r for r in layout if r.captions]
    return extend_short_records(records, layout.skeleton.min_motion_length) if hold else records


def sample_indices(records: Sequence, size: int, rng: np.random.Generator, balance_alpha: float = 1.0,
                   label: str = "action") -> np.ndarray:
    """Indices of ``size`` training samples drawn with replacement, optionally balanced over actions.

    ``balance_alpha == 1`` draws uniformly over samples with ``rng.integers`` (exactly the draws of the
    unbalanced trainer); otherwise each label value is drawn with probability proportional to
    ``count ** balance_alpha`` (:func:`remomask.data.balance.balanced_probabilities`).

    Args:
        records: the split's samples (their ``labels[label]`` is read; a missing label is its own group).
        size: samples to draw. rng: numpy generator. balance_alpha: in [0, 1]. label: the label to balance.

    Returns:
        (size,) int64 indices into ``records``.

    Raises:
        ValueError: ``balance_alpha`` outside [0, 1] or no records.
    """
    from ..data.balance import balanced_probabilities, check_alpha

    check_alpha(balance_alpha)
    if not len(records):
        raise ValueError("no records to sample from")
    if balance_alpha == 1.0:
        return rng.integers(len(records), size=size)
    p = balanced_probabilities([r.labels.get(label) for r in records], balance_alpha)
    return rng.choice(len(records), size=size, replace=True, p=p)


DIVERSE_LABELS = ("action", "style")
"""The labels that diverse neighbours differ in (:meth:`ConditionEncoder.__call__` ``diverse``)."""


def tokenizer_fingerprint(tokenizer) -> str:
    """SHA-256 (16 hex chars) of what decides a tokenizer's ids: its config and every weight and buffer except
    those of the decoding side (:data:`remomask.tokenizer.refine.DECODER_MODULES`).

    It names the token caches a tokenizer made and is stored with the retrieval database's token grids and in
    the generators' training records. A decoder refinement (docs/design.md §3.5) keeps it, because it keeps the
    ids; any change to the encoders, codebooks, statistics or config changes it.

    Args:
        tokenizer: a :class:`~remomask.tokenizer.model.MotionTokenizer`.

    Returns:
        16 lowercase hex characters.
    """
    from ..tokenizer.refine import DECODER_MODULES

    decoding = tuple(f"{name}." for name in DECODER_MODULES)
    h = hashlib.sha256(json.dumps(tokenizer.config.to_dict(), sort_keys=True, default=list).encode())
    for name, tensor in sorted(tokenizer.state_dict().items()):
        if name.startswith(decoding):
            continue
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


class TokenSource:
    """Token grids of crops from a frozen tokenizer, online or from the crop cache (module docstring).

    Args:
        records: the split's samples (:func:`load_generation_records`).
        tokenizer: frozen :class:`~remomask.tokenizer.model.MotionTokenizer` (eval mode; its device is used).
        mode: ``"cache"`` or ``"online"``.
        cache_dir: folder of the crop caches, needed for ``"cache"``; the file is
            ``<cache_dir>/<name>-<signature>.npz``, the signature hashing the tokenizer and the samples, so a
            changed tokenizer or split gets a new file.
        name: file name prefix (the split name).
        batch_size: crops per tokenizer call while building the cache.
        progress: tqdm bar while building.
        build: False = never build (raise if the cache is missing; used by DDP ranks > 0 after rank 0 built it).

    Raises:
        ValueError: unknown mode, or ``"cache"`` without a cache folder.
        FileNotFoundError: ``build=False`` and no valid cache.
    """

    def __init__(self, records: Sequence, tokenizer, *, mode: str = "cache", cache_dir=None, name: str = "train",
                 batch_size: int = 64, progress: bool = False, build: bool = True) -> None:
        if mode not in TOKEN_SOURCES:
            raise ValueError(f"token source must be one of {TOKEN_SOURCES}, got {mode!r}")
        if mode == "cache" and cache_dir is None:
            raise ValueError("the token cache needs a cache_dir folder")
        self.records, self.tokenizer, self.mode = list(records), tokenizer, mode
        self.num_columns, self.num_quantizers = tokenizer.num_columns, tokenizer.num_quantizers
        self.cache_file: Path | None = None
        self._ids: np.ndarray | None = None
        self._where: dict[tuple[int, int, int], int] = {}
        if mode == "cache":
            self.signature = self._signature()
            self.cache_file = Path(cache_dir) / f"{name}-{self.signature}.npz"
            if not self._load():
                if not build:
                    raise FileNotFoundError(f"token cache {self.cache_file} is missing or stale")
                self._build(batch_size, progress)

    @property
    def device(self) -> torch.device:
        """The tokenizer's device."""
        return self.tokenizer.mean.device

    # ---- cache -------------------------------------------------------------------------------------------
    def _signature(self) -> str:
        h = hashlib.sha256(f"v{_CACHE_VERSION}:{tokenizer_fingerprint(self.tokenizer)}".encode())
        for r in self.records:
            h.update(f"{r.key}:{r.motion_id}:{r.start_frame}:{r.length};".encode())
            h.update(np.ascontiguousarray(r.motion[:: max(1, r.length // 4)], dtype=np.float32).tobytes())
        return h.hexdigest()[:16]

    @staticmethod
    def possible_crops(length: int) -> list[tuple[int, int]]:
        """Every ``(start, m_len)`` the crop rule can draw for a sample of ``length`` frames (docs/design.md §2.4)."""
        out = []
        for m_len in sorted({crop_length(length, coin) for coin in ("single", "double")}):
            out += [(s, m_len) for s in range(length - m_len + 1)]
        return out

    def _load(self) -> bool:
        if not self.cache_file.is_file():
            return False
        try:
            with np.load(self.cache_file, allow_pickle=False) as z:
                if str(z["signature"]) != self.signature:
                    return False
                ids, table = z["ids"], z["table"]
        except (OSError, KeyError, ValueError):
            return False
        self._ids = ids
        self._where = {(int(i), int(s), int(m)): int(p) for i, s, m, p in table}
        return True

    @torch.no_grad()
    def _build(self, batch_size: int, progress: bool) -> None:
        from tqdm.auto import tqdm

        from ..data.storage import atomic_path

        jobs = [Crop(i, "", s, m, r.motion_id, r.key) for i, r in enumerate(self.records)
                for s, m in self.possible_crops(r.length)]
        jobs.sort(key=lambda c: c.length)
        parts, table, pos = [], [], 0
        for s in tqdm(range(0, len(jobs), batch_size), desc="token cache", disable=not progress):
            part = jobs[s: s + batch_size]
            grid = self._encode(part)
            for c, g in zip(part, grid):
                rows = c.length // UNIT_LENGTH
                parts.append(g[:rows].numpy().astype(np.int16))
                table.append((c.index, c.start, c.length, pos))
                pos += rows
        self._ids = np.concatenate(parts) if parts else np.zeros((0, self.num_columns, self.num_quantizers), np.int16)
        table_arr = np.asarray(table, dtype=np.int64).reshape(-1, 4)
        self._where = {(int(i), int(s), int(m)): int(p) for i, s, m, p in table_arr}
        with atomic_path(self.cache_file, suffix=".npz") as tmp:
            np.savez(tmp, ids=self._ids, table=table_arr, signature=np.array(self.signature))

    # ---- encoding ----------------------------------------------------------------------------------------
    @torch.no_grad()
    def _encode(self, crops: Sequence[Crop]) -> torch.Tensor:
        """Encode crops, grouped by length (no batch padding); (B, max rows, J', Q) long on the CPU, -1 after."""
        rows = [c.length // UNIT_LENGTH for c in crops]
        out = torch.full((len(crops), max(rows), self.num_columns, self.num_quantizers), -1, dtype=torch.long)
        dev = self.device
        mean, std = self.tokenizer.mean.cpu().numpy(), self.tokenizer.std.cpu().numpy()
        for length in sorted({c.length for c in crops}):
            members = [b for b, c in enumerate(crops) if c.length == length]
            x = np.stack([normalize(np.asarray(self.records[crops[b].index].motion[crops[b].start:
                                                                                crops[b].start + length],
                                               dtype=np.float32), mean, std) for b in members])
            ids = self.tokenizer.encode(torch.from_numpy(x.astype(np.float32)).to(dev)).cpu()
            out[members, : length // UNIT_LENGTH] = ids[:, : length // UNIT_LENGTH]
        return out

    def tokens(self, crops: Sequence[Crop]) -> torch.Tensor:
        """Token grid of a batch of crops, cropped to the longest one.

        Returns:
            (B, n, J', Q) long ids, n = max(length) / 4, -1 on the rows after each crop.

        Raises:
            KeyError: (cache) a crop the crop rule cannot draw for its sample.
        """
        if self.mode == "online":
            return self._encode(crops)
        rows = [c.length // UNIT_LENGTH for c in crops]
        out = torch.full((len(crops), max(rows), self.num_columns, self.num_quantizers), -1, dtype=torch.long)
        for b, c in enumerate(crops):
            pos = self._where.get((c.index, c.start, c.length))
            if pos is None:
                raise KeyError(f"crop (start {c.start}, {c.length} frames) of sample {c.key} is not in the token "
                               f"cache {self.cache_file}; it was not drawn with the generation crop rule")
            out[b, : rows[b]] = torch.from_numpy(self._ids[pos: pos + rows[b]].astype(np.int64))
        return out


def check_min_score(value, name: str = "retrieval_min_score") -> float:
    """Check a similarity-gate threshold (docs/design.md §4.10): a cosine in [0, 1], 0 = off.

    Returns:
        The value as a float.

    Raises:
        ValueError: not a real number (bools included), NaN, or outside [0, 1]; the message names ``name``.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= float(value) <= 1.0:
        raise ValueError(f"{name} must be a number in [0, 1] (0 = always retrieve), got {value!r}")
    return float(value)


@dataclass
class Conditions:
    """Conditions of a batch of prompts.

    Attributes:
        sentence: (B, Dt) float32 sentence embeddings (the generator's text input).
        retrieval: :class:`~remomask.generation.conditions.Retrieved` with (B, k, E) embeddings, or None
            without a retriever.
        hits: per prompt, the retrieved entries as dicts (``entry_id``, ``motion_id``, ``caption``, ``score``);
            empty lists without a retriever or when not kept.
    """

    sentence: torch.Tensor
    retrieval: Retrieved | None
    hits: list


class ConditionEncoder:
    """Text and retrieval conditions of captions, with caches (docs/design.md §4.7; module docstring).

    Args:
        text_encoder: frozen :class:`~remomask.text.TextEncoder` (its sentence embedding is the text input).
        retriever: :class:`~remomask.retrieval.PartRetriever` (eval mode) or None (no retrieval).
        database: :class:`~remomask.retrieval.RetrievalDatabase` built by ``retriever`` (needed with it).
        k: entries retrieved per prompt.
        exclude_mirrors: with an excluded motion id also exclude its mirrored twin (``M<id>`` <-> ``<id>``).
        cache: keep the conditions of every caption seen (training); False for one-off prompts.
        k_t2t: of the k entries, text-to-text neighbours (0..k; docs/design.md §4.9); the first ``k - k_t2t``
            are text-to-motion neighbours and the rest closest captions of other motions
            (:func:`~remomask.retrieval.multimodal.search_multimodal`).
        tokens: also return the entries' base-layer token grids (``Retrieved.tokens``); the database must hold
            them (docs/design.md §4.8).

    Raises:
        ValueError: a retriever without a database, k < 1 or k_t2t outside 0..k.
        DatabaseError: ``tokens`` with a database without token grids.
    """

    def __init__(self, text_encoder, retriever=None, database=None, *, k: int = 1, exclude_mirrors: bool = True,
                 cache: bool = True, k_t2t: int = 0, tokens: bool = False) -> None:
        if retriever is not None and database is None:
            raise ValueError("a retriever needs its retrieval database (RetrievalDatabase.load(<retriever>/database))")
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        if not 0 <= k_t2t <= k:
            raise ValueError(f"k_t2t must be in 0..k={k}, got {k_t2t}")
        if tokens and database is not None and database.tokens is None:
            from ..retrieval.database import DatabaseError

            raise DatabaseError("the retrieval database has no token grids; add them with `remomask retriever "
                                "build-db --model MODEL_DIR --tokenizer TOKENIZER_DIR`")
        self.text_encoder, self.retriever, self.database = text_encoder, retriever, database
        self.k, self.exclude_mirrors, self.cache = k, exclude_mirrors, cache
        self.k_t2t, self.tokens = k_t2t, tokens
        self._text: dict[str, tuple[torch.Tensor, torch.Tensor | None]] = {}
        self._retr: dict[tuple[str, str | None, bool], tuple[torch.Tensor, torch.Tensor, torch.Tensor, list]] = {}

    @property
    def text_dim(self) -> int:
        """Dt, width of the sentence embedding."""
        return int(self.text_encoder.dim)

    @torch.no_grad()
    def _encode_texts(self, texts: list[str]) -> dict[str, tuple[torch.Tensor, torch.Tensor | None]]:
        todo = [t for t in dict.fromkeys(texts) if t not in self._text]
        fresh = {}
        if todo:
            tokens, mask, sentence = self.text_encoder.encode(todo)
            query = None
            if self.retriever is not None:
                dev = self.retriever.feature_mean.device
                query = self.retriever.encode_text_features(tokens.to(dev), mask.to(dev)).float().cpu()
            for i, t in enumerate(todo):
                fresh[t] = (sentence[i].float().cpu(), None if query is None else query[i])
            if self.cache:
                self._text.update(fresh)
        return {t: self._text[t] if t in self._text else fresh[t] for t in texts}

    def __call__(self, texts: Sequence[str], exclude: Sequence[str | None] | None = None, *,
                 keep_hits: bool = False, retrieve: bool = True, diverse: bool = False,
                 min_score: float = 0.0) -> Conditions:
        """Conditions of B captions.

        Args:
            texts: B non-empty captions.
            exclude: None, or B motion ids (or None) that caption b must not retrieve (training: its own).
            keep_hits: also return the retrieved entries as dicts.
            retrieve: False skips the database search (``retrieval`` None, empty hits), e.g. for text-only
                generation with a retrieval model.
            diverse: fill the text-to-text slots with neighbours of (action, style) labels the other
                neighbours do not have (:func:`~remomask.retrieval.multimodal.search_multimodal`; needs k_t2t >= 1
                and a database with those labels).
            min_score: similarity gate (docs/design.md §4.10): a caption whose best retrieved entry scores below
                this (the highest cosine of its slots, text-to-motion or text-to-text) gets no retrieval: every
                slot invalid, which the masked transformer treats as dropped retrieval, and no hits. 0 = off.

        Returns:
            :class:`Conditions` on the CPU.

        Raises:
            TextEncoderError: empty captions. ValueError: ``exclude`` of the wrong length, ``diverse`` without
                text-to-text slots, or a ``min_score`` that is not a finite number in [0, 1].
                DatabaseError: ``diverse`` on a database without action and style labels.
        """
        texts = list(texts)
        if exclude is not None and len(exclude) != len(texts):
            raise ValueError(f"exclude must hold one motion id (or None) per caption ({len(texts)}), "
                             f"got {len(exclude)}")
        if diverse and retrieve and self.retriever is not None and self.k_t2t < 1:
            raise ValueError("diverse neighbours need a model with text-to-text retrieval slots (retrieval_k_t2t >= 1)")
        check_min_score(min_score, "min_score")
        enc = self._encode_texts(texts)
        sentence = torch.stack([enc[t][0] for t in texts])
        if self.retriever is None or not retrieve:
            return Conditions(sentence, None, [[] for _ in texts])
        excl = list(exclude) if exclude is not None else [None] * len(texts)
        keys = [(t, e, bool(diverse)) for t, e in zip(texts, excl)]
        todo = [key for key in dict.fromkeys(keys) if key not in self._retr]
        fresh = {}
        if todo:
            from ..retrieval.multimodal import search_multimodal

            res = search_multimodal(self.database, torch.stack([enc[t][1] for t, _, _ in todo]),
                                    self.k - self.k_t2t, self.k_t2t,
                                    exclude=[None if e is None else [e] for _, e, _ in todo],
                                    exclude_mirrors=self.exclude_mirrors,
                                    diverse_by=DIVERSE_LABELS if diverse else None)
            for j, key in enumerate(todo):
                hits = [{"entry_id": h.entry_id, "motion_id": h.motion_id, "caption": h.caption,
                         "score": float(h.score)} for h in res.hits[j]]
                grid = None
                if self.tokens:                                  # (k, n_j, J') int16, trimmed to its own rows
                    grid = res.tokens[j]
                    rows_used = int((grid[..., 0] >= 0).any(0).sum())
                    grid = grid[:, : max(1, rows_used)].to(torch.int16)
                fresh[key] = (res.motion_emb[j], res.text_emb[j], res.indices[j] >= 0, hits, grid)
            if self.cache:
                self._retr.update(fresh)
        rows = [self._retr[key] if key in self._retr else fresh[key] for key in keys]
        tokens = pad_token_grids([r[4] for r in rows]) if self.tokens else None
        keep = [not min_score or max((h["score"] for h in r[3]), default=float("-inf")) >= min_score for r in rows]
        valid = torch.stack([r[2] if on else torch.zeros_like(r[2]) for r, on in zip(rows, keep)])
        retrieval = Retrieved(torch.stack([r[0] for r in rows]), torch.stack([r[1] for r in rows]), valid, tokens)
        hits = [list(r[3]) if keep_hits and on else [] for r, on in zip(rows, keep)]
        return Conditions(sentence, retrieval, hits)
