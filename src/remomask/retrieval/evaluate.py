"""Retrieval evaluation (docs/design.md §10.3) of a trained retriever, and the text-to-text baseline.

Two protocols:

- **pool** (docs/design.md §10.3): the whole split, one caption per sample; R@1, 2, 3, 5, 10 and MedR in both
  directions with identical captions counting as correct, optionally in batches of 32; label
  precision@k of text-to-motion retrieval inside the pool.
- **database**: every split caption queries the retrieval database (the train split), as the generator
  does; label precision@k of the retrieved training motions. This is also the protocol of the
  text-to-text baseline (ReMoDiffuse's approach: frozen sentence embeddings of the query and of the
  database captions, no training), for which the pool protocol is undefined (the query's own caption
  is in the pool).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from .database import RetrievalDatabase
from .encode import encode_split, load_records
from .metrics import LABEL_KS, batched_retrieval_metrics, retrieval_metrics
from .model import PartRetriever

__all__ = ["evaluate_retriever", "database_label_precision", "text_to_text_baseline", "rsum"]


def rsum(metrics: dict) -> float:
    """Sum of R@1, R@5 and R@10 in both directions (a selection score in [0, 600])."""
    return float(sum(metrics[d][f"R@{k}"] for d in ("t2m", "m2t") for k in (1, 5, 10)))


def database_label_precision(db: RetrievalDatabase, queries, query_labels: Sequence[dict], *,
                             ks: Sequence[int] = LABEL_KS, exclude: Sequence | None = None,
                             target: str = "motion") -> dict:
    """Label precision@k (percent) of database search results (distinct motions per query).

    Args:
        db: the database. queries: (Q, E) embeddings. query_labels: Q label dicts.
        exclude: per-query motion ids to skip (see :meth:`RetrievalDatabase.search`).
        target: ``"motion"`` (text-to-motion) or ``"text"`` (text-to-text).

    Returns:
        ``{"action": {"P@k": ..}, "action_style": {..}}``; an empty slot counts as a miss.
    """
    res = db.search(queries, max(ks), exclude=exclude, target=target)
    out = {}
    for name, fn in (("action", lambda d: d.get("action")),
                     ("action_style", lambda d: (d.get("action"), d.get("style")))):
        hit = np.zeros((len(query_labels), max(ks)), dtype=bool)
        for i, hits in enumerate(res.hits):
            want = fn(query_labels[i])
            for s, h in enumerate(hits):
                hit[i, s] = fn(h.labels) == want
        out[name] = {f"P@{k}": float(100.0 * hit[:, :k].mean()) for k in ks}
    return out


@torch.no_grad()
def evaluate_retriever(model: PartRetriever, dataset: str = "embedded", split: str = "test", *,
                       protocol: str = "full", batch_size: int = 32, seed: int = 0,
                       database: RetrievalDatabase | None = None, progress: bool = False) -> dict:
    """Evaluate a retriever on a split (docs/design.md §10.3).

    Args:
        model: the trained retriever.
        dataset, split: the evaluation data.
        protocol: ``"full"`` (whole split as one pool) or ``"batch"`` (pools of ``batch_size``, seeded).
        database: optional retrieval database (train split); adds ``"database"`` label precision.

    Returns:
        dict with ``split``, ``protocol``, ``n``, ``t2m``/``m2t`` ({"R@k": %, "MedR": rank}), ``rsum``,
        ``label_precision`` (full protocol) and ``database`` (when given).

    Raises:
        ValueError: unknown protocol; DatasetError from the data layer; DatabaseError for a database
        that does not belong to the model.
    """
    if protocol not in ("full", "batch"):
        raise ValueError(f"protocol must be 'full' or 'batch', got {protocol!r}")
    if database is not None:
        database.check_model(model)
    emb = encode_split(model, dataset, split, progress=progress)
    out: dict = {"dataset": str(dataset), "split": split, "protocol": protocol, "model_hash": model.model_hash()}
    if protocol == "full":
        out.update(retrieval_metrics(emb.text, emb.motion, emb.captions, emb.labels))
    else:
        out.update(batched_retrieval_metrics(emb.text, emb.motion, emb.captions, batch_size=batch_size, seed=seed))
    out["rsum"] = rsum(out)
    if database is not None:
        out["database"] = {"entries": len(database), "split": database.info.get("split"),
                           **database_label_precision(database, emb.text, emb.labels)}
    return out


@torch.no_grad()
def text_to_text_baseline(dataset: str = "embedded", split: str = "test", *, db_split: str = "train",
                          encoder=None, ks: Sequence[int] = LABEL_KS) -> dict:
    """ReMoDiffuse-style text-to-text retrieval with the frozen sentence encoder alone (no training).

    Every (sample, caption) of ``db_split`` is an entry keyed by its frozen sentence embedding; each
    sample of ``split`` queries with its first caption; results are de-duplicated by motion id.

    Returns:
        ``{"method": "text-to-text", "split", "n", "database": {"entries", "action": {"P@k"}, ...}}``.
    """
    from ..text import load_text_encoder

    enc = encoder if encoder is not None else load_text_encoder("minilm")
    db_records, _ = load_records(dataset, db_split)
    rows = [(r, c) for r in db_records for c in r.captions]
    sent = torch.cat([enc.encode([c.text for _, c in rows[s: s + 512]]).sentence for s in range(0, len(rows), 512)])
    db = RetrievalDatabase(sent, sent, [c.text for _, c in rows], [r.motion_id for r, _ in rows],
                           labels=[dict(r.labels) for r, _ in rows], info={"split": db_split})
    q_records, _ = load_records(dataset, split)
    queries = torch.cat([enc.encode([r.captions[0].text for r in q_records[s: s + 512]]).sentence
                         for s in range(0, len(q_records), 512)])
    labels = [dict(r.labels) for r in q_records]
    return {"method": "text-to-text", "encoder": enc.name, "dataset": str(dataset), "split": split,
            "n": len(q_records), "t2m": None, "m2t": None,
            "database": {"entries": len(db), "split": db_split,
                         **database_label_precision(db, queries, labels, ks=ks, target="text")}}
