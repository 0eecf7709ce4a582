"""Part-level text-motion retriever with HBM learning, and the retrieval database (docs/design.md §4.1-§4.7, §10.3).

Public API (imported lazily, so ``import remomask.retrieval`` stays light)::

    from remomask.retrieval import PartRetriever, RetrievalDatabase, build_database

    from remomask.bundled import DATABASE_DIR, RETRIEVER_DIR

    model = PartRetriever.from_pretrained(RETRIEVER_DIR)
    db = RetrievalDatabase.load(DATABASE_DIR, model=model)
    res = db.search(model.encode_text(["a person waves"]), k=1, exclude=[["000441"]])
    res.motion_emb, res.text_emb   # (B, k, 512) each: the generator's re_motion / re_text
    res.hits[0][0].caption, res.hits[0][0].motion_id, res.scores

Modules: ``config`` (RetrieverConfig, presets), ``encoders`` and ``model`` (PartRetriever), ``hbm``
(HBMLoss, queues, filtering), ``train`` (train_retriever), ``encode`` (encode_split, build_database),
``database`` (RetrievalDatabase), ``tokens`` (token grids of the entries, design §4.8), ``multimodal``
(text-to-motion + text-to-text search, design §4.9), ``metrics`` and ``evaluate``. Commands: :mod:`remomask.cli`.
"""

from __future__ import annotations

from .._lazy import lazy_exports

__all__ = [
    "RetrieverConfig", "PRESETS", "load_config",
    "PartRetriever", "RetrieverOutput", "RetrieverLoadError",
    "HBMLoss", "BatchMeta", "NegativeQueue", "false_negative_mask", "info_nce", "momentum_update",
    "RetrievalDatabase", "RetrievalResult", "RetrievalHit", "DatabaseError",
    "encode_split", "build_database", "SplitEmbeddings",
    "DatabaseTokens", "add_tokens", "encode_database_tokens", "search_multimodal",
    "retrieval_metrics", "batched_retrieval_metrics", "label_precision",
    "evaluate_retriever", "text_to_text_baseline",
    "train_retriever", "TrainingError",
]

_WHERE = {
    "RetrieverConfig": "config", "PRESETS": "config", "load_config": "config",
    "PartRetriever": "model", "RetrieverOutput": "model", "RetrieverLoadError": "model",
    "HBMLoss": "hbm", "BatchMeta": "hbm", "NegativeQueue": "hbm", "false_negative_mask": "hbm",
    "info_nce": "hbm", "momentum_update": "hbm",
    "RetrievalDatabase": "database", "RetrievalResult": "database", "RetrievalHit": "database",
    "DatabaseError": "database",
    "encode_split": "encode", "build_database": "encode", "SplitEmbeddings": "encode",
    "DatabaseTokens": "tokens", "add_tokens": "tokens", "encode_database_tokens": "tokens",
    "search_multimodal": "multimodal",
    "retrieval_metrics": "metrics", "batched_retrieval_metrics": "metrics", "label_precision": "metrics",
    "evaluate_retriever": "evaluate", "text_to_text_baseline": "evaluate",
    "train_retriever": "train", "TrainingError": "train",
}


__getattr__, __dir__ = lazy_exports(__name__, _WHERE)
