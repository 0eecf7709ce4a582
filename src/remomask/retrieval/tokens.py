"""Token grids of a retrieval database's motions, for generators that read retrieved motions as tokens
(docs/design.md §4.8, §5.8).

A database may carry, beside its embeddings, the frozen tokenizer's base-layer (quantiser layer 0) ids of
every entry's motion: the first ``min(T, 196)`` frames of the sample (rounded down to whole tokens of 4
frames, the generation crop rule's "single" crop at start 0), ``n = frames / 4`` rows of J' columns. The
captions of one sample share its grid, so grids are stored once per sample key:

======================  ================================================================================
``ids``                 (U, n_max, J') int16 base-layer ids, -1 after each grid's length
``lengths``             (U,) int64 token rows of each grid (1..n_max)
``row``                 (N,) int64 grid of each database entry
======================  ================================================================================

They live in ``tokens.safetensors`` in the database folder; ``meta.json`` records the tokenizer's
fingerprint (:func:`remomask.generation.data.tokenizer_fingerprint`) and name, so a generator refuses grids
made by another tokenizer (:meth:`DatabaseTokens.check_tokenizer`). Databases without the file load as
before (``RetrievalDatabase.tokens`` is None). Size: about 3 MB for the 4,500 motions of the shipped
database (49 rows x 7 columns x 2 bytes each).

Source: the issue "Retrieved motions as token sequences" (remomask issue 14); ReMoMask itself feeds only
embeddings to its generator (docs/design.md §4.7).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from .database import DatabaseError

__all__ = ["TOKENS_FILE", "TOKEN_MAX_FRAMES", "DatabaseTokens", "encode_database_tokens", "add_tokens"]

TOKENS_FILE = "tokens.safetensors"
TOKEN_MAX_FRAMES = 196
"""Frames of an entry's motion that are tokenised: the generators' longest crop (49 token rows)."""
_ADD = "add them with `remomask retriever build-db --model MODEL_DIR --tokenizer TOKENIZER_DIR`"


@dataclass
class DatabaseTokens:
    """Base-layer token grids of a database's entries (module docstring).

    Attributes:
        ids: (U, n_max, J') int16 ids, -1 after each grid's length.
        lengths: (U,) int64 token rows per grid (>= 1).
        row: (N,) int64 grid index of each database entry.
        tokenizer_hash: fingerprint of the tokenizer that made the ids
            (:func:`~remomask.generation.data.tokenizer_fingerprint`).
        tokenizer_name: where that tokenizer came from (a folder name; informative only).

    Raises:
        DatabaseError: inconsistent shapes or indices.
    """

    ids: np.ndarray
    lengths: np.ndarray
    row: np.ndarray
    tokenizer_hash: str
    tokenizer_name: str = ""

    def __post_init__(self) -> None:
        self.ids = np.ascontiguousarray(self.ids, dtype=np.int16)
        self.lengths = np.asarray(self.lengths, dtype=np.int64)
        self.row = np.asarray(self.row, dtype=np.int64)
        if self.ids.ndim != 3 or self.lengths.shape != (self.ids.shape[0],) or self.row.ndim != 1:
            raise DatabaseError(f"token grids must be ids (U, n, J'), lengths (U,) and row (N,); got "
                                f"{self.ids.shape}, {self.lengths.shape}, {self.row.shape}")
        if len(self.lengths) and (self.lengths.min() < 1 or self.lengths.max() > self.ids.shape[1]):
            raise DatabaseError(f"token grid lengths must be in 1..{self.ids.shape[1]}")
        if len(self.row) and (self.row.min() < 0 or self.row.max() >= self.ids.shape[0]):
            raise DatabaseError("token grid rows do not index the stored grids")

    @property
    def num_columns(self) -> int:
        """J', token columns per row."""
        return int(self.ids.shape[2])

    def grids(self, indices) -> torch.Tensor:
        """Token grids of database rows.

        Args:
            indices: (B, k) int database rows, -1 for an empty slot.

        Returns:
            (B, k, n, J') int64 ids with n the longest selected grid (1 when every slot is empty); -1 after a
            grid's length and in empty slots.
        """
        idx = torch.as_tensor(indices, dtype=torch.long).cpu().numpy()
        grid = np.where(idx >= 0, self.row[np.clip(idx, 0, None)], -1)              # (B, k)
        lengths = np.where(grid >= 0, self.lengths[np.clip(grid, 0, None)], 0)
        n = max(1, int(lengths.max(initial=0)))
        out = np.where(grid[..., None, None] >= 0, self.ids[np.clip(grid, 0, None), :n], -1)
        return torch.from_numpy(out.astype(np.int64))

    def check_tokenizer(self, fingerprint: str) -> None:
        """Raise :class:`DatabaseError` unless the grids were made by the tokenizer with ``fingerprint``."""
        if fingerprint != self.tokenizer_hash:
            raise DatabaseError(f"the database's token grids were made by tokenizer {self.tokenizer_hash} "
                                f"({self.tokenizer_name or 'unnamed'}), not by this one ({fingerprint}); re-add "
                                f"them for this tokenizer: {_ADD}")

    # -- files ---------------------------------------------------------------------------------------------
    def arrays(self) -> dict[str, np.ndarray]:
        """The arrays of ``tokens.safetensors``."""
        return {"ids": self.ids, "lengths": self.lengths, "row": self.row}

    def meta(self) -> dict:
        """The ``meta.json`` record of the grids."""
        return {"file": TOKENS_FILE, "tokenizer_hash": self.tokenizer_hash, "tokenizer": self.tokenizer_name,
                "columns": self.num_columns, "max_rows": int(self.ids.shape[1]), "grids": int(self.ids.shape[0]),
                "max_frames": TOKEN_MAX_FRAMES, "layer": 0}

    @classmethod
    def from_arrays(cls, arrays: dict, meta: dict, entries: int) -> "DatabaseTokens":
        """Rebuild from :meth:`arrays` and :meth:`meta` of a database with ``entries`` rows.

        Raises:
            DatabaseError: missing arrays, or a ``row`` that does not cover the entries.
        """
        try:
            tokens = cls(arrays["ids"], arrays["lengths"], arrays["row"], str(meta["tokenizer_hash"]),
                         str(meta.get("tokenizer", "")))
        except KeyError as exc:
            raise DatabaseError(f"the database's token grids lack {exc}; {_ADD}") from exc
        if len(tokens.row) != entries:
            raise DatabaseError(f"the token grids cover {len(tokens.row)} entries, the database has {entries}; {_ADD}")
        return tokens


def _frames(length: int) -> int:
    """Frames of an entry's motion that are tokenised: whole tokens of the first 196 frames."""
    m = min(length, TOKEN_MAX_FRAMES)
    return m - m % 4 if m >= 4 else m


@torch.no_grad()
def encode_database_tokens(database, tokenizer, records: Sequence | None = None, *, batch_size: int = 64,
                           tokenizer_name: str = "", progress: bool = False) -> DatabaseTokens:
    """Base-layer token grids of every entry of ``database``, from the frozen ``tokenizer``.

    Motions are found by the entries' sample keys in ``records`` (default: the database's dataset and split,
    ``database.info``), normalised with the tokenizer's statistics, cut to :func:`_frames` frames and encoded in
    groups of equal length (as the generators' crop cache, ``generation/data.py``, so a grid does not depend
    on its batch).

    Args:
        database: :class:`~remomask.retrieval.database.RetrievalDatabase`.
        tokenizer: frozen ``MotionTokenizer`` (its device is used).
        records: the samples the database was built from (``MotionRecord``), or None.
        batch_size: motions per tokenizer call. tokenizer_name: recorded in ``meta.json``.
        progress: tqdm bar.

    Returns:
        :class:`DatabaseTokens` for the database's entries.

    Raises:
        DatabaseError: an entry whose sample key is not among the records, or no dataset to read.
    """
    from tqdm.auto import tqdm

    from ..data.normalization import normalize
    from ..generation.data import tokenizer_fingerprint

    if records is None:
        from .encode import load_records

        if "dataset" not in database.info or "split" not in database.info:
            raise DatabaseError("the database does not record its dataset and split; pass records=")
        records, _ = load_records(database.info["dataset"], database.info["split"])
    by_key = {r.key: r for r in records}
    keys = list(dict.fromkeys(database.keys))
    missing = [k for k in keys if k not in by_key]
    if missing:
        raise DatabaseError(f"{len(missing)} database entries (e.g. {missing[:3]}) have no sample in the dataset; "
                            "token grids need the dataset the database was built from")
    grid_of = {k: g for g, k in enumerate(keys)}
    frames = np.array([_frames(by_key[k].length) for k in keys])
    rows = -(-frames // 4)
    ids = np.full((len(keys), int(rows.max()), tokenizer.num_columns), -1, dtype=np.int16)
    dev = tokenizer.mean.device
    mean, std = tokenizer.mean.cpu().numpy(), tokenizer.std.cpu().numpy()
    order = np.argsort(frames, kind="stable")
    groups = [order[frames[order] == f] for f in np.unique(frames)]
    jobs = [g[s: s + batch_size] for g in groups for s in range(0, len(g), batch_size)]
    for job in tqdm(jobs, desc="token grids", disable=not progress):
        f = int(frames[job[0]])
        x = np.stack([normalize(np.asarray(by_key[keys[g]].motion[:f], dtype=np.float32), mean, std) for g in job])
        out = tokenizer.encode(torch.from_numpy(x.astype(np.float32)).to(dev))[..., 0].cpu().numpy()
        ids[job, : out.shape[1]] = out.astype(np.int16)
    return DatabaseTokens(ids, rows, np.array([grid_of[k] for k in database.keys]), tokenizer_fingerprint(tokenizer),
                          tokenizer_name)


def add_tokens(database, tokenizer, records: Sequence | None = None, **kwargs):
    """Attach the token grids of :func:`encode_database_tokens` to ``database`` (replacing any) and return it;
    :meth:`RetrievalDatabase.save` then writes ``tokens.safetensors``."""
    database.tokens = encode_database_tokens(database, tokenizer, records, **kwargs)
    return database
