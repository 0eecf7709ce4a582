"""Hierarchical Bidirectional Momentum (HBM) loss with false-negative filtering (docs/design.md §4.4).

    L_HBM = (t->g + g->t) + lambda_P * (mean_k t->p_k + mean_k p_k->t)

Each arrow is InfoNCE over cosine similarities / tau. With the queue on (default), the positive key is the
momentum-encoder output of the paired sample, and the negatives are the other momentum keys of the batch
plus the queue of the key's kind (text, instance motion, or part k). With the queue off (TMR-style), keys
are the online embeddings of the batch and there is no momentum copy.

False negatives (remomask decision, after TMR): from every denominator, in-batch and queue alike, drop the
negatives whose caption is the query's caption, whose caption embedding (the frozen sentence embedding)
has cosine above ``filter_threshold`` with the query's, or which come from the same sample. The queue keeps
the caption id, sample id and caption embedding of every entry for this.

Direction guard (remomask option ``filter_direction_guard``): a sentence encoder scores "raises the left
hand" and "raises the right hand" at cosine 0.99, so the threshold rule drops mirror-image actions from each
other's denominators and the retriever is never asked to tell left from right. With the guard, a
close-caption negative is dropped only when both captions name the same directions (:func:`direction_code`:
left / right / both / forward / backward / sideways / clockwise / counterclockwise); identical captions
and the same sample are always dropped.

Deviations from the public code, on purpose: every vector is L2-normalised (docs/design.md §4.3 quirk); the momentum
update runs once per training step, not in validation; queue entries not yet written are excluded rather
than being random vectors; the momentum copies compute keys in eval mode (no dropout) (inferred choice).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from .model import RetrieverOutput

__all__ = ["BatchMeta", "direction_code", "false_negative_mask", "info_nce", "momentum_update", "NegativeQueue",
           "HBMLoss"]


@dataclass
class BatchMeta:
    """What the filter needs to know about each sample of a batch.

    Attributes:
        caption_ids: (B,) int64 :func:`remomask.text.caption_key` of each caption.
        sample_ids: (B,) int64 id of each sample (same motion sample = same id).
        caption_emb: (B, Dc) L2-normalised frozen sentence embeddings of the captions.
        directions: (B,) int64 :func:`direction_code` of each caption, or None (no direction guard).
    """

    caption_ids: torch.Tensor
    sample_ids: torch.Tensor
    caption_emb: torch.Tensor
    directions: torch.Tensor | None = None


_DIRECTION_WORDS = {
    "left": 1, "leftward": 1, "leftwards": 1, "right": 2, "rightward": 2, "rightwards": 2, "both": 4,
    "forward": 8, "forwards": 8, "backward": 16, "backwards": 16, "sideways": 32, "sideward": 32,
    "sidewards": 32, "clockwise": 64, "counterclockwise": 128, "anticlockwise": 128,
}


def direction_code(caption: str) -> int:
    """Bitmask of the direction words in a caption (the direction guard of the false-negative filter).

    Bits: left 1, right 2, both 4, forward 8, backward 16, sideways 32, clockwise 64, counterclockwise 128
    (with the plural / "-ward(s)" forms and "anticlockwise"; "counter-clockwise" counts as
    counterclockwise). Case and punctuation are ignored.

    Args:
        caption: one caption (any case).

    Returns:
        The bitmask, 0 when the caption names no direction. Example: ``direction_code("A person raises the
        LEFT hand.") == 1``; ``direction_code("walks") == 0``.

    Source: remomask's direction guard (module docstring; measured in ``docs/results.md``, retriever).
    """
    text = re.sub(r"\b(counter|anti)-clockwise", r"\1clockwise", caption.lower())
    code = 0
    for word in re.findall(r"[a-z]+", text):
        code |= _DIRECTION_WORDS.get(word, 0)
    return code


def false_negative_mask(query: BatchMeta, keys: BatchMeta, threshold: float,
                        key_valid: torch.Tensor | None = None) -> torch.Tensor:
    """(B, N) bool, True where key j is a false negative of query i and must leave i's denominator.

    A key is dropped when its caption id equals the query's, its sample id equals the query's, or the
    cosine of the caption embeddings exceeds ``threshold`` (with the direction guard, when both carry
    ``directions``: only if the two captions also name the same directions); with ``key_valid`` (N,) also
    when invalid. The caller keeps the positive itself.
    """
    same = (query.caption_ids[:, None] == keys.caption_ids[None, :]) | \
           (query.sample_ids[:, None] == keys.sample_ids[None, :])
    close = query.caption_emb @ keys.caption_emb.T > threshold  # (B, N)
    if query.directions is not None and keys.directions is not None:
        close &= query.directions[:, None] == keys.directions[None, :]
    drop = same | close
    if key_valid is not None:
        drop |= ~key_valid[None, :]
    return drop


def info_nce(query: torch.Tensor, batch_keys: torch.Tensor, queue: torch.Tensor | None,
             drop: torch.Tensor | None, temperature: float) -> torch.Tensor:
    """Mean InfoNCE with the positive of query i at key column i (docs/design.md §4.4).

    Args:
        query: (B, E) L2-normalised queries.
        batch_keys: (B, E) L2-normalised keys of the same batch; key i is query i's positive, the others
            are negatives.
        queue: (K, E) extra negatives, or None.
        drop: (B, B + K) bool, True = leave out of the denominator, or None. It must be False on the
            diagonal (the positives); :meth:`HBMLoss.forward` clears it once for all terms.
        temperature: tau.

    Returns:
        scalar loss, ``-mean_i log softmax(logits_i)[i]`` with ``logits = q @ [keys; queue]^T / tau``.
    """
    keys = batch_keys if queue is None else torch.cat([batch_keys, queue], dim=0)
    logits = query @ keys.T / temperature  # (B, B + K)
    B = query.shape[0]
    if drop is not None:
        logits = logits.masked_fill(drop, float("-inf"))
    return F.cross_entropy(logits, torch.arange(B, device=query.device))


@torch.no_grad()
def momentum_update(online: nn.Module, momentum: nn.Module, m: float) -> None:
    """EMA of parameters: ``theta_m <- m * theta_m + (1 - m) * theta`` (design §4.2, §4.4). Buffers are copied."""
    p_m = [p for p in momentum.parameters()]
    p_o = [p.detach() for p in online.parameters()]
    if len(p_m) != len(p_o):
        raise ValueError("online and momentum models have different parameter lists")
    torch._foreach_lerp_(p_m, p_o, 1.0 - m)
    for b_m, b_o in zip(momentum.buffers(), online.buffers()):
        b_m.copy_(b_o)


def _gather(x: torch.Tensor) -> torch.Tensor:
    """Concatenate ``x`` over DDP ranks (no gradient); identity when not distributed."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return x
    out = [torch.empty_like(x) for _ in range(dist.get_world_size())]
    dist.all_gather(out, x.contiguous())
    return torch.cat(out, dim=0)


class NegativeQueue(nn.Module):
    """FIFO queues of momentum keys with their filtering metadata (docs/design.md §4.2 "Queues", 4.4).

    Buffers (K = size, E = embed dim, P = parts, Dc = caption-embedding dim):
        text (K, E), motion (K, E), parts (P, K, E), caption_ids (K,), sample_ids (K,), caption_emb (K, Dc),
        valid (K,) bool (False until written), ptr () next write position.

    ``enqueue`` writes a batch (gathered over DDP ranks) at ``ptr`` and wraps around, so the batch size
    need not divide K. Batches larger than K keep their last K rows.
    """

    def __init__(self, size: int, embed_dim: int, num_parts: int, caption_dim: int,
                 directions: bool = False) -> None:
        super().__init__()
        self.size = size
        if directions:  # only with the direction guard, so that older checkpoints keep their buffers
            self.register_buffer("directions", torch.zeros(size, dtype=torch.long))
        else:
            self.directions = None
        self.register_buffer("text", torch.zeros(size, embed_dim))
        self.register_buffer("motion", torch.zeros(size, embed_dim))
        self.register_buffer("parts", torch.zeros(num_parts, size, embed_dim))
        self.register_buffer("caption_ids", torch.zeros(size, dtype=torch.long))
        self.register_buffer("sample_ids", torch.zeros(size, dtype=torch.long))
        self.register_buffer("caption_emb", torch.zeros(size, caption_dim))
        self.register_buffer("valid", torch.zeros(size, dtype=torch.bool))
        self.register_buffer("ptr", torch.zeros((), dtype=torch.long))

    def meta(self) -> BatchMeta:
        """The queue's metadata as a :class:`BatchMeta` of N = K entries."""
        return BatchMeta(self.caption_ids, self.sample_ids, self.caption_emb, self.directions)

    @torch.no_grad()
    def enqueue(self, keys: RetrieverOutput, meta: BatchMeta) -> None:
        """Write keys (B, E) / parts (B, P, E) and their metadata (all ranks' batches under DDP)."""
        if self.directions is not None and meta.directions is None:
            raise ValueError("this queue keeps direction codes (direction guard on); the batch has none")
        rows = [keys.text, keys.motion, keys.parts, meta.caption_ids, meta.sample_ids, meta.caption_emb]
        if self.directions is not None:
            rows.append(meta.directions)
        rows = [_gather(t)[-self.size:] for t in rows]  # batches larger than K keep their last K rows
        text, motion, parts, cap, smp, emb = rows[:6]
        n = text.shape[0]
        idx = (self.ptr + torch.arange(n, device=self.ptr.device)) % self.size
        self.text[idx] = text
        self.motion[idx] = motion
        self.parts[:, idx] = parts.transpose(0, 1)
        self.caption_ids[idx] = cap
        self.sample_ids[idx] = smp
        self.caption_emb[idx] = emb.to(self.caption_emb.dtype)
        if self.directions is not None:
            self.directions[idx] = rows[6]
        self.valid[idx] = True
        self.ptr.copy_((self.ptr + n) % self.size)


class HBMLoss(nn.Module):
    """The HBM objective with its switches (docs/design.md §4.4; decisions table of docs/design.md §0.3).

    Args:
        config: :class:`RetrieverConfig` (temperature, part_loss, part_weight, use_queue, queue_size,
            filter_false_negatives, filter_threshold, embed_dim).
        caption_dim: width of the frozen sentence embeddings used for filtering (384 MiniLM, 512 CLIP).
        num_parts: 6.

    ``forward(online, keys, meta)``:
        online: :class:`RetrieverOutput` of the online model (with gradients).
        keys: momentum-model :class:`RetrieverOutput` (no gradients); ignored (may be None) with the queue off.
        meta: :class:`BatchMeta` of the batch.
    Returns ``(loss, stats)``: the scalar loss and a dict of floats (each term, in-batch top-1 accuracy,
    share of dropped negatives). With the queue on, the keys are then enqueued.
    """

    def __init__(self, config, caption_dim: int, num_parts: int = 6) -> None:
        super().__init__()
        self.config = config
        self.queue = NegativeQueue(config.queue_size, config.embed_dim, num_parts, caption_dim,
                                   directions=config.filter_direction_guard) \
            if config.use_queue else None

    def forward(self, online: RetrieverOutput, keys: RetrieverOutput | None,
                meta: BatchMeta) -> tuple[torch.Tensor, dict]:
        c = self.config
        tau = c.temperature
        if self.queue is None:
            keys = online  # TMR-style: online keys, in-batch negatives only
            q_text = q_motion = None
            q_parts = [None] * online.parts.shape[1]
        elif keys is None:
            raise ValueError("HBMLoss with use_queue=True needs the momentum keys")
        else:
            q_text, q_motion = self.queue.text, self.queue.motion
            q_parts = list(self.queue.parts)
        drop = None
        if c.filter_false_negatives:
            drop = false_negative_mask(meta, meta, c.filter_threshold)  # (B, B)
            if self.queue is not None:
                drop = torch.cat([drop, false_negative_mask(meta, self.queue.meta(), c.filter_threshold,
                                                            self.queue.valid)], dim=1)
        elif self.queue is not None:  # unfilled queue slots are never negatives
            B = meta.caption_ids.shape[0]
            drop = torch.cat([torch.zeros(B, B, dtype=torch.bool, device=online.text.device),
                              (~self.queue.valid)[None].expand(B, -1)], dim=1)

        if drop is not None:
            B = drop.shape[0]
            drop[torch.arange(B), torch.arange(B)] = False  # a positive is never dropped
        t2m = info_nce(online.text, keys.motion, q_motion, drop, tau)
        m2t = info_nce(online.motion, keys.text, q_text, drop, tau)
        loss = t2m + m2t
        stats = {"t2m": t2m.item(), "m2t": m2t.item()}
        if c.part_loss:
            P = online.parts.shape[1]
            t2p = sum(info_nce(online.text, keys.parts[:, k], q_parts[k], drop, tau) for k in range(P)) / P
            p2t = sum(info_nce(online.parts[:, k], keys.text, q_text, drop, tau) for k in range(P)) / P
            loss = loss + c.part_weight * (t2p + p2t)
            stats.update(t2p=t2p.item(), p2t=p2t.item())
        with torch.no_grad():
            sim = online.text @ keys.motion.T
            stats["acc_t2m"] = (sim.argmax(1) == torch.arange(len(sim), device=sim.device)).float().mean().item()
            if drop is not None:
                stats["dropped"] = drop.float().mean().item()
        stats["loss"] = loss.item()
        if self.queue is not None:
            self.queue.enqueue(RetrieverOutput(keys.text.detach(), keys.motion.detach(), keys.parts.detach()), meta)
        return loss, stats
