"""Baseline motion sources scored by the same protocol as the generators (issue "evaluation suite", design §10.2).

A *motion source* is any callable ``source(captions, lengths, labels)`` that answers B prompts with
de-normalised 263-d features (see :class:`remomask.evaluation.protocol.MotionSource`).

- :class:`RealBaseline` answers with **real** motions. Two modes:

  - ``"disjoint"`` (the ceiling we report): each prompt gets a real motion of the *same evaluation split*
    that comes from **another source clip** than the prompt's ground truth (its mirrored copy counts as
    the same clip) and carries the same labels (``action`` and ``style``). It is what a perfect generator
    could produce: a correct, real motion that is not a copy of the test clip. FID is then measured
    between two disjoint sets of real clips, so it shows the floor that sampling noise and clip-to-clip
    variation put under any generator; the paper convention (below) hides that floor.
    Why the same split and not the train split: the ``test_unseen`` split of the embedded dataset holds
    (content, style) pairs that appear in no other split, so only the split itself has real motions for
    its prompts; and a train motion for a test prompt is exactly the retrieval-only baseline.
    When no other clip has both labels, a clip with the same ``action`` is used, then any other clip;
    :attr:`RealBaseline.fallbacks` counts these cases. Needs ``labels.json`` (the embedded dataset).
  - ``"resample"``: the paper convention for the "Real motion" row (Guo et al. 2022): the prompt's own
    ground-truth sample with an independent random crop. Works on any dataset (HumanML3D, KIT-ML).

- :class:`RetrievalBaseline` answers with the nearest *train* motion of a retriever, cropped to the
  requested length (issue 6: "a strong baseline that a retrieval-augmented generator must beat"). It takes
  the look-up function; :class:`RetrieverNearest` is that function for a trained retriever folder and its
  retrieval database (``remomask evaluate t2m --baseline retrieval``): one text encoding per batch of
  captions, a FAISS search of the database (docs/design.md §4.7), and the top-1 entry's motion id and segment bounds
  mapped back to the de-normalised features of the database's split (the train split) of its dataset.
"""

from __future__ import annotations

import os
from collections import defaultdict
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np
import torch
from ..bundled import DATABASE_DIR, RETRIEVER_DIR
from ..errors import RemomaskError

__all__ = ["RealBaseline", "RetrievalBaseline", "RetrieverNearest", "BaselineError", "source_clip",
           "DEFAULT_RETRIEVER_DIR"]

DEFAULT_RETRIEVER_DIR = RETRIEVER_DIR  # the bundled pipeline's retriever; its database is DATABASE_DIR
"""The ``cpu``-preset retriever shipped in the package (it has no database folder: build one with
``remomask retriever build-db --model DIR``)."""


class BaselineError(RemomaskError, ValueError):
    """A baseline cannot be built for this dataset or cannot answer a prompt."""


def source_clip(labels: Mapping, motion_id: str) -> str:
    """Identity of the source recording of a sample: ``labels["clip"]`` when present, else the motion id
    without the mirror prefix ``M`` (HumanML3D names the mirror of ``000123`` ``M000123``)."""
    clip = labels.get("clip")
    if clip:
        return str(clip)
    return motion_id[1:] if motion_id.startswith("M") else motion_id


def _crop(motion: np.ndarray, length: int, rng: np.random.Generator | None) -> tuple[np.ndarray, int]:
    """A window of ``length`` frames (random start when ``rng`` is given, else frame 0); shorter motions whole."""
    if len(motion) <= length:
        return motion, len(motion)
    start = int(rng.integers(0, len(motion) - length + 1)) if rng is not None else 0
    return motion[start: start + length], length


def _stack(motions: Sequence[np.ndarray], lengths: Sequence[int], total: int, dim: int):
    out = torch.zeros(len(motions), total, dim)
    for i, (m, n) in enumerate(zip(motions, lengths)):
        out[i, :n] = torch.as_tensor(np.asarray(m[:n], dtype=np.float32))
    return out, torch.tensor(list(lengths), dtype=torch.long)


class RealBaseline:
    """Real motions as the answer to each prompt (the ceiling row); see the module docstring.

    Args:
        layout: :class:`remomask.data.layout.MotionLayout` of the evaluation split (the same filters as
            the protocol's loader), or a dataset folder together with ``split``.
        mode: ``"disjoint"`` (default) or ``"resample"``.
        split: split name when ``layout`` is a folder.
        match: labels that must agree in ``"disjoint"`` mode.
        seed: seed of the choice of clip and crop; the protocol calls :meth:`set_seed` every repeat.

    Call: ``(captions (B strings), lengths LongTensor (B,) frames, labels (B dicts with the dataset's labels
    plus "key" and "motion_id")) -> (features (B, max(lengths), D) de-normalised, lengths (B,))``.

    Raises:
        BaselineError: unknown mode; ``"disjoint"`` on a dataset without the ``match`` labels; a prompt
            whose ``key`` is not in the split (``"resample"``).
    """

    stochastic = False

    def __init__(self, layout, mode: str = "disjoint", *, split: str | None = None,
                 match: Sequence[str] = ("action", "style"), seed: int = 0) -> None:
        if mode not in ("disjoint", "resample"):
            raise BaselineError(f"mode must be 'disjoint' or 'resample', got {mode!r}")
        if not hasattr(layout, "records"):
            from ..data.layout import MotionLayout

            if split is None:
                raise BaselineError("give split= together with a dataset folder")
            layout = MotionLayout(layout, split, progress=False)
        self.mode, self.match = mode, tuple(match)
        self.records = list(layout.records)
        self.dim = int(self.records[0].motion.shape[1])
        self.by_key = {r.key: r for r in self.records}
        self.name = "Real (disjoint clips)" if mode == "disjoint" else "Real (resampled crop)"
        self.fallbacks = {"same_action": 0, "any": 0, "short": 0}
        if mode == "disjoint":
            if not any(all(r.labels.get(k) is not None for k in self.match[:1]) for r in self.records):
                raise BaselineError(f"the 'disjoint' real baseline needs the labels {list(self.match)} "
                                    "(labels.json of the embedded dataset); use mode='resample' on datasets "
                                    "without labels")
            self.groups: dict[tuple, list] = defaultdict(list)
            self.by_action: dict = defaultdict(list)
            for r in self.records:
                self.groups[tuple(r.labels.get(k) for k in self.match)].append(r)
                self.by_action[r.labels.get(self.match[0])].append(r)
        self.set_seed(seed)

    def set_seed(self, seed: int) -> None:
        """Restart the choice of clips and crops (called by the protocol at every repeat)."""
        self.rng = np.random.default_rng([int(seed), 0x5EA1])

    def _pick(self, pool: list, clip: str, length: int):
        other = [r for r in pool if source_clip(r.labels, r.motion_id) != clip]
        if not other:
            return None
        long_enough = [r for r in other if r.length >= length]
        choice = long_enough or other
        return choice[int(self.rng.integers(len(choice)))]

    def _disjoint(self, lab: Mapping, length: int):
        clip = source_clip(lab, str(lab.get("motion_id", "")))
        rec = self._pick(self.groups.get(tuple(lab.get(k) for k in self.match), []), clip, length)
        if rec is None:
            rec = self._pick(self.by_action.get(lab.get(self.match[0]), []), clip, length)
            if rec is not None:
                self.fallbacks["same_action"] += 1
        if rec is None:
            rec = self._pick(self.records, clip, length)
            self.fallbacks["any"] += 1
        if rec is None:
            raise BaselineError("the split has a single source clip: no disjoint real motion exists")
        if rec.length < length:
            self.fallbacks["short"] += 1
        return rec

    def __call__(self, captions: Sequence[str], lengths: torch.Tensor, labels: Sequence[Mapping]):
        lengths = torch.as_tensor(lengths).long().tolist()
        if len(captions) != len(lengths) or len(labels) != len(lengths):
            raise BaselineError(f"{len(captions)} captions, {len(lengths)} lengths, {len(labels)} labels")
        motions, used = [], []
        for lab, n in zip(labels, lengths):
            if self.mode == "resample":
                rec = self.by_key.get(lab.get("key"))
                if rec is None:
                    raise BaselineError(f"prompt key {lab.get('key')!r} is not a sample of this split; the "
                                        "resample baseline must be built on the evaluated split")
            else:
                rec = self._disjoint(lab, n)
            m, k = _crop(rec.motion, n, self.rng)
            motions.append(m)
            used.append(k)
        return _stack(motions, used, max(lengths), self.dim)


class RetrievalBaseline:
    """Retrieval-only baseline: the nearest train motion of a retriever, cropped to the requested length.

    Args:
        nearest: ``nearest(captions) -> B arrays (T_i, D)``: the de-normalised features of the train motion
            the retriever ranks first for each caption (the retrieval database's motion), e.g. a
            :class:`RetrieverNearest`.
        name: row name in the tables.
        crop: ``"start"`` (frames ``0..L``, deterministic) or ``"random"`` (a random window, seeded).
        seed: seed of the random crops.
        pass_labels: call ``nearest(captions, labels)`` with the prompts' label dicts (``"motion_id"``,
            ``"clip"``, ...), so that it can leave out the prompt's own clip (:class:`RetrieverNearest`).

    Call: as :class:`RealBaseline`. A retrieved motion shorter than the requested length is returned
    whole, with its own length (counted in ``fallbacks["short"]``).

    Attributes:
        fallbacks: ``{"short": retrieved motions shorter than the requested length}`` (summed over calls;
            the protocol reports it). provenance: ``nearest.provenance`` when it has one, else None.

    Raises:
        BaselineError: ``nearest`` returns the wrong number of motions or a bad shape.
    """

    stochastic = False

    def __init__(self, nearest: Callable[..., Sequence], *, name: str = "Retrieval-only",
                 crop: str = "start", seed: int = 0, pass_labels: bool = False) -> None:
        if crop not in ("start", "random"):
            raise BaselineError(f"crop must be 'start' or 'random', got {crop!r}")
        self.nearest, self.name, self.crop, self.pass_labels = nearest, name, crop, pass_labels
        self.fallbacks = {"short": 0}
        self.set_seed(seed)

    @property
    def provenance(self) -> dict | None:
        """Where the retrieved motions come from (``nearest.provenance``), or None."""
        prov = getattr(self.nearest, "provenance", None)
        return dict(prov) if prov else None

    def set_seed(self, seed: int) -> None:
        """Restart the random crops."""
        self.rng = np.random.default_rng([int(seed), 0x7E7])

    def __call__(self, captions: Sequence[str], lengths: torch.Tensor, labels: Sequence[Mapping] = ()):
        lengths = torch.as_tensor(lengths).long().tolist()
        if self.pass_labels:
            if len(labels) != len(captions):
                raise BaselineError(f"{len(captions)} captions but {len(labels)} label dicts")
            found = list(self.nearest(list(captions), list(labels)))
        else:
            found = list(self.nearest(list(captions)))
        if len(found) != len(captions):
            raise BaselineError(f"nearest() returned {len(found)} motions for {len(captions)} captions")
        motions, used, dim = [], [], None
        for i, (m, n) in enumerate(zip(found, lengths)):
            m = m.detach().cpu().numpy() if isinstance(m, torch.Tensor) else np.asarray(m)
            if m.ndim != 2 or (dim is not None and m.shape[1] != dim) or len(m) == 0:
                raise BaselineError(f"nearest() motion {i} has shape {m.shape}; expected (T, D), D fixed")
            dim = m.shape[1]
            m, k = _crop(m, n, self.rng if self.crop == "random" else None)
            if k < n:
                self.fallbacks["short"] += 1
            motions.append(m)
            used.append(k)
        return _stack(motions, used, max(lengths), dim)


class RetrieverNearest:
    """``nearest(captions[, labels])`` of :class:`RetrievalBaseline` for a trained retriever and its database.

    For a batch of B captions: one text encoding with the retriever (B, E), one FAISS search of the
    retrieval database (text-to-motion, docs/design.md §4.7), and for each caption the best entry whose segment has at
    least ``min_frames`` frames (the top-1 unless it is shorter; ``provenance["skipped_short"]`` counts
    the others) is read back as de-normalised features
    ``<root>/new_joint_vecs/<motion_id>.npy[start:end]``: the sample of the database's split (train) of
    its dataset, the same array :class:`remomask.data.layout.MotionLayout` gives for that key.

    With ``labels`` (B dicts with ``"motion_id"`` and optionally ``"clip"``) every database motion of the
    prompt's source clip (its mirror included) is excluded, so the answer is never the prompt's own
    motion; for test prompts against a train database nothing is excluded.

    Args:
        model: :class:`remomask.retrieval.PartRetriever` (its text side is used, in eval mode).
        database: :class:`remomask.retrieval.RetrievalDatabase` built by ``model``.
        root: dataset folder holding the database's motions (None: ``database.info["root"]`` when it
            exists, else ``database.info["dataset"]`` resolved like ``--dataset``).
        min_frames: shortest usable segment (the protocol accepts lengths >= 4).
        candidates: hits searched per caption for the ``min_frames`` rule.

    Call: ``(captions: B strings, labels: B dicts or None) -> B float32 arrays (T_i, D)``, de-normalised
    (T_i = the segment's frames, 20 fps).

    Attributes:
        provenance: dict of the retriever / database / dataset used and counters (queries, distinct
            motions, mean top-1 cosine score, skipped short segments); updated at every call.
        last_hits: the :class:`remomask.retrieval.RetrievalHit` of each caption of the last call.

    Raises:
        BaselineError: the database was not built by ``model``, its dataset cannot be found, it lists
            motions that the dataset's split does not hold, a segment outside its file, or no entry of
            ``min_frames`` frames among the candidates.
    """

    def __init__(self, model, database, *, root: str | os.PathLike | None = None, min_frames: int = 4,
                 candidates: int = 4) -> None:
        from ..retrieval.database import DatabaseError

        try:
            database.check_model(model)
        except DatabaseError as exc:
            raise BaselineError(str(exc)) from exc
        self.model, self.db = model.eval(), database
        self.min_frames, self.candidates = int(min_frames), max(1, int(candidates))
        self.root = self._root(database, root)
        self.split = str(database.info.get("split", "train"))
        split_file = self.root / f"{self.split}.txt"
        if split_file.is_file():
            listed = set(split_file.read_text().split())
            missing = sorted(set(database.motion_ids) - listed)
            if missing:
                raise BaselineError(f"the retrieval database lists {len(missing)} motions that split "
                                    f"{self.split!r} of {self.root} does not hold (e.g. {missing[0]}); the "
                                    "dataset changed since `remomask retriever build-db`: rebuild the database")
        self._db_ids = set(database.motion_ids)
        self.sources: dict[str, set[str]] = defaultdict(set)  # source clip -> database motion ids
        for lab, mid in zip(database.labels, database.motion_ids):
            self.sources[source_clip(lab, mid)].add(mid)
        self._cache: dict[int, np.ndarray] = {}
        self._motions: set[str] = set()
        self._queries, self._score_sum, self._skipped, self._excluded = 0, 0.0, 0, 0
        self.last_hits: list = []

    @staticmethod
    def _root(database, root) -> Path:
        if root is not None:
            path = Path(root)
        else:
            path = Path(str(database.info.get("root", "")))
            if not str(database.info.get("root", "")) or not (path / "new_joint_vecs").is_dir():
                from ..data.embedded import resolve_dataset

                name = database.info.get("dataset", "embedded")
                try:
                    path = resolve_dataset(name, progress=False)
                except FileNotFoundError as exc:
                    raise BaselineError(f"the retrieval database's dataset {name!r} is not available here "
                                        f"({exc})") from exc
        if not (path / "new_joint_vecs").is_dir():
            raise BaselineError(f"{path / 'new_joint_vecs'} not found: the retrieval database's motions cannot "
                                "be read")
        return path

    @classmethod
    def from_folders(cls, retriever: str | os.PathLike | None = None, database: str | os.PathLike | None = None,
                     *, device: str = "cpu", **kwargs) -> "RetrieverNearest":
        """Load a retriever folder (None = :data:`DEFAULT_RETRIEVER_DIR`, the bundled model's) and its database
        folder (None = the bundled database for the bundled retriever, else ``<retriever>/database``);
        ``kwargs`` go to the constructor.

        Raises:
            BaselineError: the retriever cannot be loaded, or the database folder is missing (the message
                names the ``remomask retriever build-db`` command that builds it), corrupt or from another
                model.
        """
        from ..retrieval.database import DatabaseError, RetrievalDatabase
        from ..retrieval.model import PartRetriever, RetrieverLoadError

        default_db = DATABASE_DIR if retriever is None else Path(retriever) / "database"
        retriever = Path(retriever) if retriever is not None else DEFAULT_RETRIEVER_DIR
        folder = Path(database) if database is not None else default_db
        try:
            model = PartRetriever.from_pretrained(retriever, device=device)
        except RetrieverLoadError as exc:
            raise BaselineError(str(exc)) from exc
        if not (folder / "meta.json").is_file():
            raise BaselineError(f"no retrieval database at {folder}; build it with `remomask retriever build-db "
                                f"--model {retriever}`" + ("" if database is None else f" --out {folder}")
                                + " (or pass --database DIR)")
        try:
            db = RetrievalDatabase.load(folder, model=model)
        except DatabaseError as exc:
            raise BaselineError(str(exc)) from exc
        out = cls(model, db, **kwargs)
        out.retriever_dir, out.database_dir = str(retriever), str(folder)
        return out

    @property
    def provenance(self) -> dict:
        """Retriever, database and dataset used, and counters over all calls so far."""
        info = self.db.info
        return {"retriever": getattr(self, "retriever_dir", None), "database": getattr(self, "database_dir", None),
                "model_hash": self.db.model_hash, "database_entries": len(self.db),
                "database_motions": self.db.num_motions, "database_split": self.split,
                "database_dataset": info.get("dataset"), "motions_root": str(self.root),
                "queries": self._queries, "distinct_motions": len(self._motions),
                "mean_top1_score": self._score_sum / self._queries if self._queries else None,
                "skipped_short": self._skipped, "queries_with_exclusions": self._excluded}

    def _exclusions(self, labels: Sequence[Mapping] | None, n: int):
        if labels is None:
            return None
        if len(labels) != n:
            raise BaselineError(f"{n} captions but {len(labels)} label dicts")
        out = []
        for lab in labels:
            mid = str(lab.get("motion_id", "") or "")
            ids = set(self.sources.get(source_clip(lab, mid), ()))
            if mid:
                ids.add(mid)
            self._excluded += any(i in self._db_ids for i in ids)
            out.append(sorted(ids))
        return out

    def _features(self, hit) -> np.ndarray:
        seg = self._cache.get(hit.index)
        if seg is None:
            path = self.root / "new_joint_vecs" / f"{hit.motion_id}.npy"
            if not path.is_file():
                raise BaselineError(f"{path} is missing: the retrieval database's dataset is incomplete")
            arr = np.load(path, mmap_mode="r")
            if hit.end > len(arr) or hit.start < 0 or hit.end <= hit.start:
                raise BaselineError(f"database entry {hit.entry_id} spans frames {hit.start}..{hit.end} but "
                                    f"{path} has {len(arr)}; rebuild the database")
            seg = np.array(arr[hit.start: hit.end], dtype=np.float32)  # a copy, not a read-only memmap view
            self._cache[hit.index] = seg
        return seg

    @torch.no_grad()
    def __call__(self, captions: Sequence[str], labels: Sequence[Mapping] | None = None) -> list[np.ndarray]:
        captions = [str(c) for c in captions]
        if not captions:
            return []
        exclude = self._exclusions(labels, len(captions))
        emb = self.model.encode_text(captions)  # one encoding for the whole batch: (B, E)
        res = self.db.search(emb.float().cpu(), k=min(self.candidates, self.db.num_motions), exclude=exclude,
                             exclude_mirrors=True)
        out, self.last_hits = [], []
        for i, hits in enumerate(res.hits):
            rank = next((r for r, h in enumerate(hits) if h.end - h.start >= self.min_frames), None)
            if rank is None:
                raise BaselineError(f"no retrieved motion of {self.min_frames}+ frames for caption {captions[i]!r}")
            self._skipped += rank
            hit = hits[rank]
            self.last_hits.append(hit)
            self._motions.add(hit.motion_id)
            self._queries += 1
            self._score_sum += hit.score
            out.append(self._features(hit))
        return out
