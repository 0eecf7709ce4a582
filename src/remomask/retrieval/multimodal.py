"""Multi-modal retrieval: text-to-motion and text-to-text neighbours of a query, de-duplicated by motion
(docs/design.md §4.9).

ReMoGPT (part-level retrieval-augmented motion-language models) retrieves by more than one modality; remomask
offers the two its database can answer from a caption: the stored *motion* embeddings closest to the query
(text-to-motion, the ReMoMask default, docs/design.md §4.7) and the stored *caption* embeddings closest to it
(text-to-text). A query gets ``k_t2m`` slots of the first kind, then ``k_t2t`` slots of the second whose motion
ids are not among its text-to-motion hits; the exclusions (a training sample's own motion and its mirrored
twin) apply to both.
"""

from __future__ import annotations

from typing import Sequence

from .database import DatabaseError, RetrievalDatabase, RetrievalResult

__all__ = ["search_multimodal"]


def search_multimodal(database: RetrievalDatabase, queries, k_t2m: int = 1, k_t2t: int = 0, *,
                      exclude: Sequence | None = None, exclude_mirrors: bool = False) -> RetrievalResult:
    """Top text-to-motion and text-to-text entries with distinct motion ids for each query.

    Args:
        database: the database. queries: (B, E) or (E,) text query embeddings.
        k_t2m: text-to-motion slots (>= 0). k_t2t: text-to-text slots (>= 0); k_t2m + k_t2t >= 1.
        exclude, exclude_mirrors: as :meth:`RetrievalDatabase.search` (applied to both searches).

    Returns:
        :class:`RetrievalResult` with k = k_t2m + k_t2t slots per query: its text-to-motion hits (best first),
        then its text-to-text hits of other motions (best first); empty slots (-1) last. With ``k_t2t == 0``
        it equals ``database.search(queries, k_t2m, ...)``.

    Raises:
        DatabaseError: negative k, k_t2m + k_t2t < 1, or the errors of :meth:`RetrievalDatabase.search`.
    """
    k_t2m, k_t2t = int(k_t2m), int(k_t2t)
    if k_t2m < 0 or k_t2t < 0 or k_t2m + k_t2t < 1:
        raise DatabaseError(f"k_t2m and k_t2t must be >= 0 with a sum >= 1, got {k_t2m} and {k_t2t}")
    kw = dict(exclude=exclude, exclude_mirrors=exclude_mirrors)
    if k_t2t == 0:
        return database.search(queries, k_t2m, target="motion", **kw)
    by_text = database.search(queries, k_t2m + k_t2t, target="text", **kw)   # >= k_t2t motions not in t2m
    if k_t2m == 0:
        by_motion = None
    else:
        by_motion = database.search(queries, k_t2m, target="motion", **kw)
    slots = []
    for b in range(len(by_text.hits)):
        first = [] if by_motion is None else [(h.index, h.score) for h in by_motion.hits[b]]
        taken = {database.motion_ids[j] for j, _ in first}
        second = [(h.index, h.score) for h in by_text.hits[b] if h.motion_id not in taken][:k_t2t]
        slots.append(first + second)
    return database._result(slots, k_t2m + k_t2t)
