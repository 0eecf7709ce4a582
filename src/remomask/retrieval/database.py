"""The retrieval (RAG) database: stored text/motion embeddings searched with FAISS (docs/design.md §4.6, §4.7).

One entry per (motion sample, caption) of a split (the train split by default): the L2-normalised motion
embedding (E = 512), the L2-normalised text embedding of the caption, the caption, the entry id
``<sample key>_<caption index>``, the motion id (the file the sample comes from), the segment bounds in
that file (frames at 20 fps) and the labels.

Search (docs/design.md §4.7, with the remomask decision to exclude a sample's own motion at training time):
inner product (= cosine) of the query embeddings with the stored motion embeddings (or text embeddings,
``target="text"``), walked in descending order, skipping entries whose motion id was already taken
(de-duplication of captions and sub-clips of one motion) and excluded motion ids, until k are found.
All captions of a motion share its motion embedding, so text-to-motion scores tie between them; of
these entries the one whose caption embedding is closest to the query is returned (the reference
returns an arbitrary one).

Indexes: ``"flat"`` (exact, default), ``"ivf"`` (IVF-Flat, ``nlist`` cells, default sqrt(N), of which
``nprobe`` are probed, default nlist / 8) and ``"hnsw"`` (HNSW-Flat, ``M`` links (32), ``ef_construction``
(64), ``ef_search`` (128)). Approximate indexes trade recall for speed on
databases of 10^5 entries and more (see ``benchmarks/bench_retrieval.py``).

On disk a database is a folder (``meta.json``, ``embeddings.safetensors``, ``entries.json`` and, for
approximate indexes, ``index.faiss``), usually ``<model folder>/database``. ``meta.json`` records the
format version, size, dimension, the model hash and a SHA-256 of every file; :meth:`RetrievalDatabase.load`
checks all of them. Optionally the folder also holds ``tokens.safetensors``, the frozen tokenizer's base-layer
token grids of the entries' motions for generators that read retrieved motions as tokens
(:mod:`remomask.retrieval.tokens`, docs/design.md §4.8); searches then return them too.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from .._pretrained import read_format_json, replaced_folder
from ..errors import RemomaskError
from ..files import file_mode

__all__ = ["DatabaseError", "RetrievalHit", "RetrievalResult", "RetrievalDatabase", "INDEX_KINDS", "mirror_base"]

FORMAT = "remomask-retrieval-db"
VERSION = 1
INDEX_KINDS = ("flat", "ivf", "hnsw")
_REBUILD = "rebuild it with `remomask retriever build-db --model MODEL_DIR`"


class DatabaseError(RemomaskError, ValueError):
    """A database folder is missing, corrupt, or does not belong to the model it is used with."""


def mirror_base(motion_id: str) -> str:
    """The id a mirrored HumanML3D copy ``M<id>`` comes from (``"M000441"`` -> ``"000441"``); others unchanged."""
    return motion_id[1:] if motion_id.startswith("M") and len(motion_id) > 1 else motion_id


@dataclass
class RetrievalHit:
    """One retrieved entry.

    Attributes:
        index: row in the database. score: inner product with the query (cosine, in [-1, 1]).
        entry_id, motion_id, key, caption: identifiers and caption (see the module docstring).
        start, end: segment bounds in the motion file, frames (20 fps). labels: dict (action, style, ...).
        motion_emb, text_emb: (E,) float32 stored embeddings.
    """

    index: int
    score: float
    entry_id: str
    motion_id: str
    key: str
    caption: str
    start: int
    end: int
    labels: dict
    motion_emb: torch.Tensor = field(repr=False)
    text_emb: torch.Tensor = field(repr=False)

    def to_dict(self) -> dict:
        """JSON-friendly dict (embeddings left out)."""
        return {"index": self.index, "score": self.score, "entry_id": self.entry_id, "motion_id": self.motion_id,
                "key": self.key, "caption": self.caption, "start": self.start, "end": self.end,
                "labels": self.labels}


@dataclass
class RetrievalResult:
    """Batched search result for B queries and k slots (what the generator consumes, docs/design.md §4.7 re_dict).

    Attributes:
        motion_emb: (B, k, E) float32 stored motion embeddings of the hits (zeros in empty slots).
        text_emb: (B, k, E) float32 stored text embeddings of the hits (zeros in empty slots).
        scores: (B, k) float32 inner products (-inf in empty slots).
        indices: (B, k) int64 database rows (-1 in empty slots: fewer than k distinct motions remained).
        hits: B lists of :class:`RetrievalHit`, best first (no entries for empty slots).
        tokens: (B, k, n, J') int64 base-layer token grids of the hits (-1 after a grid's length and in empty
            slots; n the longest), or None when the database has no token grids (docs/design.md §4.8).
    """

    motion_emb: torch.Tensor
    text_emb: torch.Tensor
    scores: torch.Tensor
    indices: torch.Tensor
    hits: list[list[RetrievalHit]]
    tokens: torch.Tensor | None = None

    def to(self, device) -> "RetrievalResult":
        """The tensors moved to ``device``."""
        return RetrievalResult(self.motion_emb.to(device), self.text_emb.to(device), self.scores.to(device),
                               self.indices.to(device), self.hits,
                               None if self.tokens is None else self.tokens.to(device))


def _faiss():
    try:
        import faiss
    except ImportError as exc:  # pragma: no cover - faiss-cpu is a dependency
        raise DatabaseError("the retrieval database needs FAISS: `pip install faiss-cpu`") from exc
    return faiss


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _unit_rows(a: np.ndarray) -> np.ndarray:
    """L2-normalise the rows of ``a`` (N, E) that are not unit length already; unit rows keep their bits.

    Dividing an already normalised float32 row by its norm again is not the identity: the computed norm is
    1 +- 1 ulp, so about a quarter of the values move by up to 6e-8. That made a float32 database differ from
    itself after a save / load round trip (the constructor normalised the loaded rows a second time). Rows
    whose norm is within 4 ulp of 1 are therefore left as they are (docs/design.md, retrieval database).
    """
    norms = np.linalg.norm(a, axis=1, keepdims=True)
    unit = np.abs(norms - 1.0) <= 4 * np.finfo(np.float32).eps
    return np.where(unit, a, a / np.maximum(norms, 1e-12)).astype(np.float32, copy=False)


def _as_matrix(x, name: str, dim: int | None = None) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().float().numpy()
    a = np.ascontiguousarray(np.asarray(x, dtype=np.float32))
    if a.ndim == 1:
        a = a[None]
    if a.ndim != 2 or (dim is not None and a.shape[1] != dim):
        want = f"(N, {dim})" if dim is not None else "(N, E)"
        raise DatabaseError(f"{name} must be {want}, got shape {a.shape}")
    if not np.isfinite(a).all():
        raise DatabaseError(f"{name} contains NaN or inf")
    return a


class RetrievalDatabase:
    """Searchable store of (motion, caption) entries (docs/design.md §4.6, §4.7).

    Args:
        motion_emb, text_emb: (N, E) embeddings (tensors or arrays); normalised here (L2) if they are not.
        captions, motion_ids: N strings each.
        entry_ids, keys: N strings (default: ``"<i>"`` and the motion ids).
        starts, ends: N segment bounds, frames (default 0 and 0).
        labels: N dicts (default empty).
        model_hash: hash of the retriever that made the embeddings (checked on load).
        index: ``"flat"`` | ``"ivf"`` | ``"hnsw"``; index_params: ``nlist``/``nprobe`` (IVF),
            ``M``/``ef_construction``/``ef_search`` (HNSW).
        info: free-form provenance (dataset, split, ...) saved in ``meta.json``.
        tokens: optional :class:`~remomask.retrieval.tokens.DatabaseTokens`, the entries' base-layer token
            grids (docs/design.md §4.8); also settable later (:func:`~remomask.retrieval.tokens.add_tokens`).

    Raises:
        DatabaseError: inconsistent sizes, NaN, an empty database or an unknown index kind.
    """

    def __init__(self, motion_emb, text_emb, captions: Sequence[str], motion_ids: Sequence[str], *,
                 entry_ids: Sequence[str] | None = None, keys: Sequence[str] | None = None,
                 starts: Sequence[int] | None = None, ends: Sequence[int] | None = None,
                 labels: Sequence[dict] | None = None, model_hash: str | None = None, index: str = "flat",
                 index_params: dict | None = None, info: dict | None = None, tokens=None) -> None:
        m = _as_matrix(motion_emb, "motion_emb")
        t = _as_matrix(text_emb, "text_emb", m.shape[1])
        n = m.shape[0]
        if n == 0:
            raise DatabaseError("a retrieval database needs at least one entry")
        if t.shape[0] != n:
            raise DatabaseError(f"motion_emb has {n} rows but text_emb has {t.shape[0]}")
        self.motion_emb = _unit_rows(m)
        self.text_emb = _unit_rows(t)
        self.captions = [str(c) for c in captions]
        self.motion_ids = [str(i) for i in motion_ids]
        self.entry_ids = [str(i) for i in entry_ids] if entry_ids is not None else [str(i) for i in range(n)]
        self.keys = [str(k) for k in keys] if keys is not None else list(self.motion_ids)
        self.starts = np.asarray(starts if starts is not None else np.zeros(n), dtype=np.int64)
        self.ends = np.asarray(ends if ends is not None else np.zeros(n), dtype=np.int64)
        self.labels = [dict(x) for x in labels] if labels is not None else [{} for _ in range(n)]
        for name, seq in (("captions", self.captions), ("motion_ids", self.motion_ids), ("entry_ids", self.entry_ids),
                          ("keys", self.keys), ("starts", self.starts), ("ends", self.ends), ("labels", self.labels)):
            if len(seq) != n:
                raise DatabaseError(f"{name} has {len(seq)} entries, the embeddings {n}")
        if index not in INDEX_KINDS:
            raise DatabaseError(f"unknown index kind {index!r}; choose one of {', '.join(INDEX_KINDS)}")
        self.model_hash = model_hash
        self.index_kind = index
        self.index_params = dict(index_params or {})
        self.info = dict(info or {})
        if tokens is not None and len(tokens.row) != n:
            raise DatabaseError(f"the token grids cover {len(tokens.row)} entries, the embeddings {n}")
        self.tokens = tokens
        # motion id -> small int, for de-duplication and exclusion
        self._group_of: dict[str, int] = {}
        self.groups = np.array([self._group_of.setdefault(i, len(self._group_of)) for i in self.motion_ids],
                               dtype=np.int64)
        self._indexes: dict[str, object] = {}
        order = np.argsort(self.groups, kind="stable")
        bounds = np.searchsorted(self.groups[order], np.arange(len(self._group_of) + 1))
        self._rows = [order[bounds[g]: bounds[g + 1]] for g in range(len(self._group_of))]  # entries per motion
        self._max_group = max(len(r) for r in self._rows)

    # -- basic properties --------------------------------------------------------------------------------
    def __len__(self) -> int:
        return self.motion_emb.shape[0]

    @property
    def dim(self) -> int:
        """E, the embedding size."""
        return self.motion_emb.shape[1]

    @property
    def num_motions(self) -> int:
        """Distinct motion ids."""
        return len(self._group_of)

    def __repr__(self) -> str:
        return (f"RetrievalDatabase({len(self)} entries, {self.num_motions} motions, dim={self.dim}, "
                f"index={self.index_kind!r}, model_hash={self.model_hash!r})")

    # -- indexes -----------------------------------------------------------------------------------------
    def _build_index(self, data: np.ndarray):
        faiss = _faiss()
        n, d = data.shape
        p = self.index_params
        if self.index_kind == "flat" or n < 2:
            index = faiss.IndexFlatIP(d)
        elif self.index_kind == "ivf":
            nlist = int(p.get("nlist", max(1, min(n // 39, int(math.sqrt(n))))))
            quantizer = faiss.IndexFlatIP(d)
            index = faiss.IndexIVFFlat(quantizer, d, nlist, faiss.METRIC_INNER_PRODUCT)
            index.cp.niter = int(p.get("niter", 10))  # k-means iterations (FAISS default 25)
            train = data
            if n > 64 * nlist:  # k-means needs >= 39 points per cell; 64 keeps training fast at 10^6
                train = data[np.random.default_rng(0).choice(n, 64 * nlist, replace=False)]
            index.train(train)
            index.nprobe = int(p.get("nprobe", max(1, nlist // 8)))
        else:
            index = faiss.IndexHNSWFlat(d, int(p.get("M", 32)), faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = int(p.get("ef_construction", 64))
            index.hnsw.efSearch = int(p.get("ef_search", 128))
        index.add(data)
        return index

    def index(self, target: str = "motion"):
        """The FAISS index over the stored ``"motion"`` or ``"text"`` embeddings (built on first use)."""
        if target not in ("motion", "text"):
            raise ValueError(f"target must be 'motion' or 'text', not {target!r}")
        if target not in self._indexes:
            self._indexes[target] = self._build_index(self.motion_emb if target == "motion" else self.text_emb)
        return self._indexes[target]

    def _raw_search(self, index, q: np.ndarray, kk: int) -> tuple[np.ndarray, np.ndarray]:
        if self.index_kind == "hnsw" and hasattr(index, "hnsw"):
            index.hnsw.efSearch = max(int(self.index_params.get("ef_search", 128)), kk)
        return index.search(q, kk)

    # -- search ------------------------------------------------------------------------------------------
    def search(self, queries, k: int = 1, *, exclude: Sequence | None = None, target: str = "motion",
               exclude_mirrors: bool = False) -> RetrievalResult:
        """Top-k entries with distinct motion ids for each query embedding (docs/design.md §4.7).

        Args:
            queries: (B, E) or (E,) query embeddings (L2-normalised here), tensor or array.
            k: hits per query (>= 1).
            exclude: None, or B items; item i is None, a motion id, or a collection of motion ids that
                query i must not retrieve (at training time: the sample's own motion).
            target: search the stored ``"motion"`` embeddings (text-to-motion, default) or ``"text"`` ones.
            exclude_mirrors: also exclude the mirrored twin of every excluded id (``M<id>`` <-> ``<id>``).

        Returns:
            :class:`RetrievalResult` with (B, k) slots; fewer than k distinct motions leave empty slots.

        Raises:
            DatabaseError: wrong query width, NaN, ``k < 1``, or ``exclude`` of the wrong length.
        """
        q = _as_matrix(queries, "queries", self.dim)
        q = q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)
        B = q.shape[0]
        if int(k) < 1:
            raise DatabaseError(f"k must be >= 1, got {k}")
        k = int(k)
        excl = self._exclusions(exclude, B, exclude_mirrors)
        index = self.index(target)
        n = len(self)
        slots: list[list[tuple[int, float]]] = [[] for _ in range(B)]
        todo = np.arange(B)
        # enough candidates for k distinct motions even when every motion has its full set of captions
        kk = min(n, (k + max((len(e) for e in excl), default=0)) * self._max_group + 16)
        while len(todo):
            scores, ids = self._raw_search(index, q[todo], kk)
            again = []
            for row, b in enumerate(todo):
                taken: set[int] = set()
                found: list[tuple[int, float]] = []
                for j, s in zip(ids[row], scores[row]):
                    if j < 0:
                        continue
                    g = int(self.groups[j])
                    if g in taken or g in excl[b]:
                        continue
                    taken.add(g)
                    if target == "motion" and len(self._rows[g]) > 1:
                        # every caption of a motion shares its motion embedding (a tie): return the
                        # caption whose text embedding is closest to the query
                        rows = self._rows[g]
                        j = rows[int(np.argmax(self.text_emb[rows] @ q[b]))]
                    found.append((int(j), float(s)))
                    if len(found) == k:
                        break
                slots[b] = found
                if len(found) < k and kk < n:
                    again.append(b)
            todo = np.array(again, dtype=np.int64)
            kk = min(n, kk * 4)
        return self._result(slots, k)

    def _exclusions(self, exclude, B: int, mirrors: bool) -> list[set[int]]:
        if exclude is None:
            return [set() for _ in range(B)]
        if isinstance(exclude, str) or len(exclude) != B:
            raise DatabaseError(f"exclude must hold one entry per query ({B}): None, a motion id or a list of ids")
        out = []
        for item in exclude:
            ids = [] if item is None else [item] if isinstance(item, str) else list(item)
            if mirrors:
                ids = ids + [mirror_base(i) for i in ids] + ["M" + mirror_base(i) for i in ids]
            out.append({self._group_of[i] for i in ids if i in self._group_of})
        return out

    def _result(self, slots: list[list[tuple[int, float]]], k: int) -> RetrievalResult:
        B = len(slots)
        idx = torch.full((B, k), -1, dtype=torch.long)
        scores = torch.full((B, k), float("-inf"))
        for b, found in enumerate(slots):
            for s, (j, sc) in enumerate(found):
                idx[b, s], scores[b, s] = j, sc
        safe = idx.clamp_min(0).numpy()
        valid = (idx >= 0)[..., None]
        motion = torch.from_numpy(self.motion_emb[safe]) * valid
        text = torch.from_numpy(self.text_emb[safe]) * valid
        hits = [[self._hit(j, sc) for j, sc in found] for found in slots]
        tokens = None if self.tokens is None else self.tokens.grids(idx)
        return RetrievalResult(motion.float(), text.float(), scores, idx, hits, tokens)

    def _hit(self, j: int, score: float) -> RetrievalHit:
        return RetrievalHit(index=j, score=score, entry_id=self.entry_ids[j], motion_id=self.motion_ids[j],
                            key=self.keys[j], caption=self.captions[j], start=int(self.starts[j]),
                            end=int(self.ends[j]), labels=self.labels[j],
                            motion_emb=torch.from_numpy(self.motion_emb[j].copy()),
                            text_emb=torch.from_numpy(self.text_emb[j].copy()))

    def search_text(self, texts: str | Sequence[str], model, k: int = 1, **kwargs) -> RetrievalResult:
        """Encode captions with the retriever ``model`` (its text side) and :meth:`search`.

        Raises:
            DatabaseError: the model's hash or embedding size differs from the database's.
        """
        self.check_model(model)
        was = model.training
        model.eval()
        try:
            emb = model.encode_text(texts)
        finally:
            model.train(was)
        return self.search(emb, k, **kwargs)

    def check_model(self, model) -> None:
        """Raise :class:`DatabaseError` unless the database was built by ``model`` (same size and hash)."""
        if model.config.embed_dim != self.dim:
            raise DatabaseError(f"the database holds {self.dim}-d embeddings but the model makes "
                                f"{model.config.embed_dim}-d ones; {_REBUILD}")
        if self.model_hash is not None:
            h = model.model_hash()
            if h != self.model_hash:
                raise DatabaseError(f"the database was built by model {self.model_hash}, not by this model ({h}); "
                                    f"{_REBUILD}")

    def check_tokens(self, fingerprint: str) -> None:
        """Raise :class:`DatabaseError` unless the database has token grids made by the tokenizer with
        ``fingerprint`` (:func:`~remomask.generation.data.tokenizer_fingerprint`; docs/design.md §4.8)."""
        if self.tokens is None:
            raise DatabaseError("the retrieval database has no token grids, which this generator reads; add them "
                                "with `remomask retriever build-db --model MODEL_DIR --tokenizer TOKENIZER_DIR`")
        self.tokens.check_tokenizer(fingerprint)

    # -- files -------------------------------------------------------------------------------------------
    def save(self, folder: str | os.PathLike, *, dtype: str = "float32") -> Path:
        """Write the database folder (see the module docstring). The folder is replaced atomically.

        Args:
            folder: destination folder (replaced when it exists).
            dtype: storage precision of the embeddings, ``"float32"`` (exact) or ``"float16"`` (half the
                size; :meth:`load` converts back to float32 and re-normalises, cosine error ~1e-3). Motion
                embeddings repeated over a motion's captions are stored once (``motion_unique`` plus a row
                index) whatever the dtype.

        Returns:
            The folder path.

        Raises:
            DatabaseError: unknown ``dtype``.
        """
        from safetensors.numpy import save_file

        if dtype not in ("float32", "float16"):
            raise DatabaseError(f"dtype must be 'float32' or 'float16', got {dtype!r}")
        folder = Path(folder)
        with replaced_folder(folder) as work:  # the folder follows the umask (remomask.files)
            unique, row = np.unique(self.motion_emb, axis=0, return_inverse=True)
            arrays = {"text": self.text_emb.astype(dtype), "start": self.starts, "end": self.ends}
            if len(unique) < len(self):
                arrays.update(motion_unique=unique.astype(dtype), motion_row=row.reshape(-1).astype(np.int64))
            else:
                arrays["motion"] = self.motion_emb.astype(dtype)
            save_file(arrays, str(work / "embeddings.safetensors"))
            os.chmod(work / "embeddings.safetensors", file_mode())  # safetensors writes 0600
            entries = {"entry_ids": self.entry_ids, "captions": self.captions, "motion_ids": self.motion_ids,
                       "keys": self.keys, "labels": self.labels}
            (work / "entries.json").write_text(json.dumps(entries))
            files = ["embeddings.safetensors", "entries.json"]
            if self.tokens is not None:
                from .tokens import TOKENS_FILE

                save_file(self.tokens.arrays(), str(work / TOKENS_FILE))
                os.chmod(work / TOKENS_FILE, file_mode())
                files.append(TOKENS_FILE)
            if self.index_kind != "flat":
                _faiss().write_index(self.index("motion"), str(work / "index.faiss"))
                files.append("index.faiss")
            meta = {"format": FORMAT, "version": VERSION, "count": len(self), "dim": self.dim, "dtype": dtype,
                    "model_hash": self.model_hash, "index": {"kind": self.index_kind, **self.index_params},
                    "info": self.info, "sha256": {f: _sha256(work / f) for f in files}}
            if self.tokens is not None:
                meta["tokens"] = self.tokens.meta()
            (work / "meta.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
        return folder

    @classmethod
    def load(cls, folder: str | os.PathLike, *, model=None, expected_hash: str | None = None,
             expected_dim: int | None = None, expected_tokenizer: str | None = None) -> "RetrievalDatabase":
        """Read a database folder and check it.

        Args:
            folder: the folder written by :meth:`save`.
            model: the retriever it will be used with (checks dim and model hash), or None.
            expected_hash, expected_dim: explicit checks instead of / besides ``model``.
            expected_tokenizer: a tokenizer fingerprint: the database must hold token grids made by it
                (:meth:`check_tokens`). None: token grids are loaded when present, unchecked.

        Raises:
            DatabaseError: missing folder or file, unreadable or tampered files (checksum), wrong format
                version, inconsistent sizes, or a dim / model hash different from the expected one; each
                message says to rebuild.
        """
        from safetensors import SafetensorError
        from safetensors.numpy import load_file

        folder = Path(folder)
        meta_path = folder / "meta.json"
        if not meta_path.is_file():
            raise DatabaseError(f"no retrieval database at {folder} ({meta_path.name} missing); {_REBUILD}")
        meta = read_format_json(
            meta_path, FORMAT, VERSION, DatabaseError, invalid="{path} is corrupt ({exc}); " + _REBUILD,
            wrong_format="{path} is not a remomask retrieval database; " + _REBUILD,
            wrong_version="{folder} has database format version {got}, this remomask reads version {version}; "
            + _REBUILD)
        for name, digest in meta.get("sha256", {}).items():
            path = folder / name
            if not path.is_file():
                raise DatabaseError(f"{path} is missing; {_REBUILD}")
            if _sha256(path) != digest:
                raise DatabaseError(f"{path} is corrupt (checksum mismatch); {_REBUILD}")
        try:
            arrays = load_file(str(folder / "embeddings.safetensors"))
            entries = json.loads((folder / "entries.json").read_text())
        except (SafetensorError, OSError, ValueError, KeyError) as exc:
            raise DatabaseError(f"cannot read the database at {folder} ({exc}); {_REBUILD}") from exc
        n, dim = int(meta.get("count", -1)), int(meta.get("dim", -1))
        if "motion" not in arrays and "motion_unique" in arrays and "motion_row" in arrays:
            row = arrays["motion_row"]
            if row.shape != (n,) or row.min(initial=0) < 0 or row.max(initial=0) >= len(arrays["motion_unique"]):
                raise DatabaseError(f"{folder}: motion_row does not index motion_unique; {_REBUILD}")
            arrays["motion"] = arrays["motion_unique"][row]
        if "motion" not in arrays or "text" not in arrays:
            raise DatabaseError(f"{folder}: embeddings.safetensors lacks the motion or text embeddings; {_REBUILD}")
        arrays["motion"] = arrays["motion"].astype(np.float32)
        arrays["text"] = arrays["text"].astype(np.float32)
        if arrays["motion"].shape != (n, dim) or arrays["text"].shape != (n, dim):
            raise DatabaseError(f"{folder}: embeddings {arrays['motion'].shape} do not match meta.json "
                                f"({n}, {dim}); {_REBUILD}")
        want_dim = expected_dim if expected_dim is not None else (model.config.embed_dim if model is not None else None)
        if want_dim is not None and want_dim != dim:
            raise DatabaseError(f"{folder} holds {dim}-d embeddings but the model makes {want_dim}-d ones; {_REBUILD}")
        want_hash = expected_hash if expected_hash is not None else (model.model_hash() if model is not None else None)
        if want_hash is not None and meta.get("model_hash") != want_hash:
            raise DatabaseError(f"{folder} was built by model {meta.get('model_hash')}, not by this model "
                                f"({want_hash}); {_REBUILD}")
        index = dict(meta.get("index", {"kind": "flat"}))
        kind = index.pop("kind", "flat")
        try:
            db = cls(arrays["motion"], arrays["text"], entries["captions"], entries["motion_ids"],
                     entry_ids=entries["entry_ids"], keys=entries["keys"], starts=arrays["start"],
                     ends=arrays["end"], labels=entries["labels"], model_hash=meta.get("model_hash"),
                     index=kind, index_params=index, info=meta.get("info"))
        except (KeyError, TypeError) as exc:
            raise DatabaseError(f"{folder / 'entries.json'} lacks field {exc}; {_REBUILD}") from exc
        if "tokens" in meta:
            from .tokens import DatabaseTokens

            tmeta = dict(meta["tokens"])
            try:
                tarrays = load_file(str(folder / tmeta.get("file", "tokens.safetensors")))
            except (SafetensorError, OSError) as exc:
                raise DatabaseError(f"cannot read the token grids of {folder} ({exc}); {_REBUILD}") from exc
            db.tokens = DatabaseTokens.from_arrays(tarrays, tmeta, n)
        if expected_tokenizer is not None:
            db.check_tokens(expected_tokenizer)
        if kind != "flat":
            try:
                idx = _faiss().read_index(str(folder / "index.faiss"))
            except RuntimeError as exc:
                raise DatabaseError(f"{folder / 'index.faiss'} is unreadable ({exc}); {_REBUILD}") from exc
            if idx.ntotal != n or idx.d != dim:
                raise DatabaseError(f"{folder / 'index.faiss'} holds {idx.ntotal} x {idx.d}, expected {n} x {dim}; "
                                    f"{_REBUILD}")
            db._indexes["motion"] = idx
        return db
