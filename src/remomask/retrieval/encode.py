"""Encode dataset splits with a trained retriever: evaluation pools and the retrieval database (design §4.6, §10.3).

Motions are taken from frame 0 and cropped to ``max_motion_length`` (224) frames, normalised with the
statistics stored in the model, and padded only to the longest motion of each batch (the key-padding masks
make the padding irrelevant).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from .database import RetrievalDatabase
from .model import PartRetriever

__all__ = ["SplitEmbeddings", "load_records", "encode_motions", "encode_split", "build_database"]


@dataclass
class SplitEmbeddings:
    """Embeddings of an evaluation pool: one item per sample with its first caption (docs/design.md §10.3).

    Attributes:
        text, motion: (N, E) float32 L2-normalised. parts: (N, 6, E). sentence: (N, Dc) frozen
        sentence embeddings of the captions. captions, keys, motion_ids: N strings. labels: N dicts.
    """

    text: torch.Tensor
    motion: torch.Tensor
    parts: torch.Tensor
    sentence: torch.Tensor
    captions: list[str]
    keys: list[str]
    motion_ids: list[str]
    labels: list[dict]


def load_records(dataset: str, split: str):
    """Captioned samples of a split (no length filter), as :class:`remomask.data.layout.MotionRecord` list.

    Raises:
        DatasetError / DatasetNotFound: from the data layer, with the fix.
    """
    from ..data.embedded import resolve_dataset
    from ..data.layout import MotionLayout

    root = resolve_dataset(dataset)
    layout = MotionLayout(root, split, min_length=0, max_length=None)
    return [r for r in layout if r.captions], root


def _motion_batch(model: PartRetriever, records, device) -> tuple[torch.Tensor, torch.Tensor]:
    cap = model.config.max_motion_length
    lengths = [min(r.length, cap) for r in records]
    T = max(lengths)
    out = torch.zeros(len(records), T, model.feature_mean.shape[0])
    for i, r in enumerate(records):
        out[i, : lengths[i]] = torch.from_numpy(np.asarray(r.motion[: lengths[i]], dtype=np.float32))
    out = out.to(device)
    frames = torch.arange(T, device=device)[None, :] < torch.tensor(lengths, device=device)[:, None]
    out = model.normalize(out) * frames[..., None]  # padding stays exactly zero
    return out, torch.tensor(lengths, device=device)


@torch.no_grad()
def encode_motions(model: PartRetriever, records: Sequence, *, batch_size: int = 64,
                   progress: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """(instance (N, E), parts (N, 6, E)) of records' first ``max_motion_length`` frames, on the CPU.

    Records are batched by length (sorted) to keep padding small; the output is in input order.
    """
    from tqdm.auto import tqdm

    device = model.feature_mean.device
    order = np.argsort([r.length for r in records], kind="stable")
    inst = torch.zeros(len(records), model.config.embed_dim)
    parts = torch.zeros(len(records), 6, model.config.embed_dim)
    for s in tqdm(range(0, len(order), batch_size), desc="encode motions", disable=not progress):
        idx = order[s: s + batch_size]
        motion, lengths = _motion_batch(model, [records[i] for i in idx], device)
        g, p = model.encode_motion(motion, lengths)
        inst[idx], parts[idx] = g.float().cpu(), p.float().cpu()
    return inst, parts


@torch.no_grad()
def _encode_texts(model: PartRetriever, texts: list[str], batch_size: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
    device = model.feature_mean.device
    out, sent = [], []
    for s in range(0, len(texts), batch_size):
        tokens, mask, sentence = model.text_encoder.encode(texts[s: s + batch_size], device=device)
        out.append(model.encode_text_features(tokens, mask).float().cpu())
        sent.append(sentence.float().cpu())
    return torch.cat(out), torch.cat(sent)


@torch.no_grad()
def encode_split(model: PartRetriever, dataset: str = "embedded", split: str = "test", *,
                 batch_size: int = 64, progress: bool = False, records=None) -> SplitEmbeddings:
    """Encode the evaluation pool of a split: every captioned sample with its first caption (docs/design.md §10.3).

    Args:
        model: trained retriever (put in eval mode here and restored after).
        dataset: ``"embedded"`` or a HumanML3D-layout folder. split: split name.
        records: optional pre-loaded records (then ``dataset``/``split`` are ignored).

    Raises:
        DatasetError: from the data layer.
    """
    if records is None:
        records, _ = load_records(dataset, split)
    was = model.training
    model.eval()
    try:
        motion, parts = encode_motions(model, records, batch_size=batch_size, progress=progress)
        captions = [r.captions[0].text for r in records]
        text, sentence = _encode_texts(model, captions)
    finally:
        model.train(was)
    return SplitEmbeddings(text, motion, parts, sentence, captions, [r.key for r in records],
                           [r.motion_id for r in records], [dict(r.labels) for r in records])


@torch.no_grad()
def build_database(model: PartRetriever, dataset: str = "embedded", split: str = "train", *,
                   index: str = "flat", index_params: dict | None = None, batch_size: int = 64,
                   min_length: int = 0, progress: bool = True) -> RetrievalDatabase:
    """Build the retrieval database of a split (docs/design.md §4.6): one entry per (sample, caption).

    Args:
        model: trained retriever.
        dataset, split: the data (the generator's database is the train split).
        index, index_params: FAISS index kind and parameters (see :class:`RetrievalDatabase`).
        min_length: drop samples shorter than this many frames (the reference keeps >= 40; 0 keeps all).

    Raises:
        DatasetError: from the data layer; ValueError: no sample left after ``min_length``.
    """
    records, root = load_records(dataset, split)
    records = [r for r in records if r.length >= min_length]
    if not records:
        raise ValueError(f"no sample of split {split!r} has >= {min_length} frames")
    was = model.training
    model.eval()
    try:
        motion, _ = encode_motions(model, records, batch_size=batch_size, progress=progress)
        rows = [(i, c) for i, r in enumerate(records) for c in range(len(r.captions))]
        texts = [records[i].captions[c].text for i, c in rows]
        text, _ = _encode_texts(model, texts)
    finally:
        model.train(was)
    rec = [records[i] for i, _ in rows]
    cap = model.config.max_motion_length
    return RetrievalDatabase(
        motion[[i for i, _ in rows]], text, texts, [r.motion_id for r in rec],
        entry_ids=[f"{r.key}_{c}" for r, (_, c) in zip(rec, rows)], keys=[r.key for r in rec],
        starts=[r.start_frame for r in rec], ends=[r.start_frame + r.length for r in rec],
        labels=[dict(r.labels) for r in rec], model_hash=model.model_hash(), index=index,
        index_params=index_params,
        info={"dataset": str(dataset), "root": str(root), "split": split, "min_length": min_length,
              "max_motion_length": cap, "motions": len(records)},
    )
