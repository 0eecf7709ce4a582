"""Motion-to-text by retrieval: the retrieval baseline captioner (docs/design.md §4.2, §4.6, §4.7).

A motion is encoded with the motion tower of the part-level retriever (the instance embedding g, 512-d,
L2-normalised) and compared by inner product (= cosine) with the **text embeddings of the database's
captions** (``RetrievalDatabase.text_emb``, one per (motion sample, caption) entry): the captions of the
nearest entries are the motion's captions. This is the motion-to-text (m2t) direction of contrastive
text-motion retrieval as evaluated by TMR (Petrovich et al. 2023) and used by ReMoGPT; it needs no text
encoder at inference time, because the database already stores the caption embeddings made by the same
retriever. ``target="motion"`` switches to the nearest database *motions* (motion-to-motion) and returns
their captions instead.

Measured on the embedded dataset's test split with the bundled retriever and database (1,108 clips, the
train split as database): the first caption comes from an entry of the same action label for 84.1 % of the
clips with ``target="text"`` and 84.3 % with ``target="motion"`` (the same style: 88.8 % / 90.3 %);
per action, walk 76/80, run 82/88, wave-left-hand 53/54, raise-up-both-hands 100/100; actions absent
from the database (e.g. salsa, 0/32) cannot be captioned right by construction. A caption is always one
of the database's sentences: the baseline cannot describe what no training caption says.

Input motions (docs/design.md §2.1): joints ``(T, 22, 3)`` in metres, Y up, 20 fps (the HumanML3D
skeleton; features are computed with :func:`remomask.data.features.features_from_joints`, which gives
T - 1 frames), or de-normalised HumanML3D features ``(T, 263)``, or a file that
:func:`remomask.data.motion_file.load_motion_file` reads (``.npy``, ``.npz``, ``.bvh``). As for the
database (docs/design.md §4.6), only the first ``max_motion_length`` feature frames (224 = 11.2 s) are
encoded; longer motions are described by their start (cut them into segments to describe the rest, as
:func:`remomask.captioning.library.import_motions` does).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from ..errors import UsageError

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = ["CaptionResult", "RetrievalCaptioner", "resolve_model", "motion_features", "TARGETS"]

TARGETS = ("text", "motion")
"""What a motion is compared with: the database's caption embeddings (m2t, default) or its motion embeddings."""

_OVERFETCH = 8
"""Hits asked from the database per caption wanted, so that repeated sentences can be dropped."""


@dataclass
class CaptionResult:
    """The captions of one motion, best first (``top_k`` distinct sentences).

    Attributes:
        captions: the database captions, best first (``captions[0]`` is :attr:`caption`).
        scores: their cosine similarities to the motion embedding, in [-1, 1].
        entry_ids: the database entries they come from (``<sample key>_<caption index>``).
        motion_ids: the database motions of those entries (``new_joint_vecs/<motion_id>.npy`` of the
            database's dataset).
        labels: the entries' labels (action, style, ... for the embedded dataset; may be empty).
        frames: feature frames that were encoded (at most the retriever's ``max_motion_length``).
        total_frames: feature frames of the input (20 fps).
        source: the file the motion came from, or ``"<array>"``.
    """

    captions: list[str]
    scores: list[float]
    entry_ids: list[str]
    motion_ids: list[str]
    labels: list[dict] = field(default_factory=list)
    frames: int = 0
    total_frames: int = 0
    source: str = "<array>"

    @property
    def caption(self) -> str:
        """The best caption."""
        return self.captions[0]

    def to_dict(self) -> dict:
        """A JSON-friendly dict: ``file``, ``caption``, frame counts and the ranked ``top_k`` entries."""
        return {"file": self.source, "caption": self.caption, "frames": self.frames,
                "total_frames": self.total_frames,
                "top_k": [{"caption": c, "score": round(float(s), 6), "entry_id": e, "motion_id": m, "labels": lab}
                          for c, s, e, m, lab in zip(self.captions, self.scores, self.entry_ids, self.motion_ids,
                                                     self.labels or [{}] * len(self.captions))]}


def resolve_model(path: str | os.PathLike | None = None,
                  database: str | os.PathLike | None = None) -> tuple[Path, Path]:
    """The retriever and database folders of a model argument (the rule of ``remomask retrieve --model``).

    Args:
        path: None for the bundled pipeline's retriever (``remomask.bundled.RETRIEVER_DIR``); a pipeline
            folder (with ``pipeline.json``) for its ``retriever/``; any other folder is a retriever folder.
        database: the database folder; None = the bundled one, ``<pipeline>/database`` or
            ``<retriever>/database``.

    Returns:
        ``(retriever folder, database folder)``; neither is checked here (loading does).
    """
    from ..bundled import DATABASE_DIR, RETRIEVER_DIR

    if path is None:
        return RETRIEVER_DIR, Path(database) if database is not None else DATABASE_DIR
    path = Path(path).expanduser()
    if (path / "pipeline.json").is_file():
        return path / "retriever", Path(database) if database is not None else path / "database"
    return path, Path(database) if database is not None else path / "database"


def motion_features(motion: Any) -> tuple[np.ndarray, str]:
    """De-normalised HumanML3D features (T, 263) float32 of one motion, and its source name.

    Args:
        motion: a path (``.npy``, ``.npz``, ``.bvh``: :func:`~remomask.data.motion_file.load_motion_file`), a
            :class:`~remomask.data.motion_file.MotionFile`, or an array / tensor of joints (T, 22, 3) metres
            or features (T, 263).

    Returns:
        ``(features, source)``: features kept as given for a features input, computed from the joints
        (retargeted to the reference skeleton, T - 1 frames) otherwise.

    Raises:
        MissingFileError / InputFileError / MocapFormatError: a file that cannot be read as a motion.
        UsageError: an array of another shape, NaN / inf, absurd values, or joints of a single frame.

    Source: docs/design.md §2.1 (features from joints).
    """
    from ..data.features import features_from_joints
    from ..data.motion_file import MotionFile, load_motion_file, motion_from_array

    if isinstance(motion, (str, os.PathLike)):
        loaded = load_motion_file(motion)
    elif isinstance(motion, MotionFile):
        loaded = motion
    else:
        loaded = motion_from_array(motion)
    if loaded.features is not None:
        return np.asarray(loaded.features, dtype=np.float32), loaded.source
    if loaded.num_frames < 2:
        raise UsageError(f"{loaded.source} holds 1 frame of joints; captioning needs at least 2 frames "
                         "(0.1 s at 20 fps) to compute velocities")
    return features_from_joints(loaded.joints), loaded.source


def _as_list(motions: Any) -> list:
    """One motion (path, MotionFile, array, tensor) -> [motion]; a list / tuple of them -> a list."""
    if isinstance(motions, (list, tuple)):
        if not motions:
            raise UsageError("no motions to caption: pass a motion or a non-empty list of motions")
        return list(motions)
    return [motions]


class RetrievalCaptioner:
    """Caption motions with the nearest captions of a retrieval database (module docstring; TMR-style m2t).

    Args:
        retriever: a trained :class:`~remomask.retrieval.model.PartRetriever` (only its motion tower runs).
        database: a :class:`~remomask.retrieval.database.RetrievalDatabase` built by that retriever.
        target: ``"text"`` (default): compare with the stored caption embeddings; ``"motion"``: with the
            stored motion embeddings (nearest database motions).
        batch_size: motions encoded per forward pass.

    Raises:
        DatabaseError: the database was built by another retriever (size or model hash).
        UsageError: an unknown ``target`` or a batch size below 1.

    Source: docs/design.md §4.2 (motion tower), §4.6 (database fields), §4.7 (search); TMR's m2t protocol.
    """

    def __init__(self, retriever, database, *, target: str = "text", batch_size: int = 64) -> None:
        if target not in TARGETS:
            raise UsageError(f"target must be one of {', '.join(TARGETS)}, got {target!r}")
        if int(batch_size) < 1:
            raise UsageError(f"batch_size must be >= 1, got {batch_size}")
        database.check_model(retriever)
        self.retriever = retriever.eval()
        self.database = database
        self.target = target
        self.batch_size = int(batch_size)

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike | None = None, *, database: str | os.PathLike | None = None,
                        device: str = "cpu", target: str = "text", batch_size: int = 64) -> "RetrievalCaptioner":
        """Load a retriever and its database (default: the bundled pipeline's, ``remomask.bundled``).

        Args:
            path: None, a pipeline folder or a retriever folder (see :func:`resolve_model`).
            database: a database folder (e.g. one built over your own motions); None = the model's.
            device: torch device of the motion tower. target, batch_size: as for the constructor.

        Raises:
            RetrieverLoadError: a missing or corrupt retriever folder.
            DatabaseError: a missing or corrupt database, or one built by another retriever.
        """
        from ..retrieval.database import RetrievalDatabase
        from ..retrieval.model import PartRetriever

        retriever_dir, database_dir = resolve_model(path, database)
        model = PartRetriever.from_pretrained(retriever_dir, device=device)
        return cls(model, RetrievalDatabase.load(database_dir, model=model), target=target, batch_size=batch_size)

    @property
    def max_frames(self) -> int:
        """Feature frames encoded per motion (the retriever's ``max_motion_length``, 224 = 11.2 s)."""
        return int(self.retriever.config.max_motion_length)

    def embed(self, motions: Any) -> "torch.Tensor":
        """Instance motion embeddings (N, E) float32 on the CPU, L2-normalised, in input order.

        Args:
            motions: one motion or a list (see :func:`motion_features` for the accepted forms).

        Raises:
            The errors of :func:`motion_features`.
        """
        feats = [motion_features(m)[0] for m in _as_list(motions)]
        return self._embed_features(feats)

    def _embed_features(self, feats: Sequence[np.ndarray]):
        import torch

        model = self.retriever
        device = model.feature_mean.device
        cap = self.max_frames
        lengths = np.array([min(len(f), cap) for f in feats])
        out = torch.zeros(len(feats), model.config.embed_dim)
        order = np.argsort(lengths, kind="stable")  # similar lengths share a batch: little padding
        with torch.no_grad():
            for s in range(0, len(order), self.batch_size):
                idx = order[s: s + self.batch_size]
                T = int(lengths[idx].max())
                x = torch.zeros(len(idx), T, model.feature_mean.shape[0])
                for row, i in enumerate(idx):
                    x[row, : lengths[i]] = torch.from_numpy(np.asarray(feats[i][: lengths[i]], dtype=np.float32))
                x = x.to(device)
                lens = torch.as_tensor(lengths[idx], device=device)
                valid = torch.arange(T, device=device)[None, :] < lens[:, None]
                g, _ = model.encode_motion(model.normalize(x) * valid[..., None], lens)  # padding stays zero
                out[torch.as_tensor(idx)] = g.float().cpu()
        return out

    def caption_results(self, motions: Any, top_k: int = 1) -> list[CaptionResult]:
        """The ``top_k`` best distinct captions of each motion, with scores and database entries.

        Args:
            motions: one motion or a list: paths, ``MotionFile`` s, joints (T, 22, 3) metres or features
                (T, 263) (see :func:`motion_features`).
            top_k: distinct sentences per motion (>= 1). Entries of one database motion count once, and a
                sentence shared by several motions is returned once, at its best score; fewer than
                ``top_k`` come back only when the database holds fewer distinct sentences.

        Returns:
            One :class:`CaptionResult` per motion, in input order.

        Raises:
            UsageError: ``top_k < 1`` or an empty list; the errors of :func:`motion_features`.
        """
        if isinstance(top_k, bool) or int(top_k) < 1:
            raise UsageError(f"top_k must be >= 1, got {top_k}")
        top_k = int(top_k)
        loaded = [motion_features(m) for m in _as_list(motions)]
        emb = self._embed_features([f for f, _ in loaded])
        res = self.database.search(emb, min(len(self.database), top_k * _OVERFETCH), target=self.target)
        out = []
        for (feats, source), hits in zip(loaded, res.hits):
            seen: set[str] = set()
            kept = []
            for h in hits:
                key = " ".join(h.caption.lower().split()).rstrip(".")
                if key in seen:
                    continue
                seen.add(key)
                kept.append(h)
                if len(kept) == top_k:
                    break
            out.append(CaptionResult([h.caption for h in kept], [float(h.score) for h in kept],
                                     [h.entry_id for h in kept], [h.motion_id for h in kept],
                                     [dict(h.labels) for h in kept], frames=min(len(feats), self.max_frames),
                                     total_frames=len(feats), source=source))
        return out

    def caption(self, motions: Any) -> list[str]:
        """The best caption of each motion, in input order (:meth:`caption_results` gives the top k).

        Args and errors: as :meth:`caption_results`.
        """
        return [r.caption for r in self.caption_results(motions, 1)]

    def __repr__(self) -> str:
        return f"RetrievalCaptioner(target={self.target!r}, database={self.database!r})"
