"""Multi-modal retrieval: text-to-motion and text-to-text neighbours of a query, de-duplicated by motion
(docs/design.md §4.9).

ReMoGPT (part-level retrieval-augmented motion-language models) retrieves by more than one modality; remomask
offers the two its database can answer from a caption: the stored *motion* embeddings closest to the query
(text-to-motion, the ReMoMask default, docs/design.md §4.7) and the stored *caption* embeddings closest to it
(text-to-text). A query gets ``k_t2m`` slots of the first kind, then ``k_t2t`` slots of the second whose motion
ids are not among its text-to-motion hits; the exclusions (a training sample's own motion and its mirrored
twin) apply to both.

Diverse neighbours (``diverse_by=("action", "style")``): each text-to-text slot then holds the best caption
whose motion's labels (the database's stored labels) differ from those of every neighbour taken before it, so
that a prompt of an unseen combination can draw on one neighbour of each kind (the issue "Retrieval that
carries motion"). It is found by searching the captions again with every motion of a taken label excluded;
when no such caption exists the ordinary order fills the slot.
"""

from __future__ import annotations

from typing import Sequence

from .database import DatabaseError, RetrievalDatabase, RetrievalResult

__all__ = ["search_multimodal"]


def search_multimodal(database: RetrievalDatabase, queries, k_t2m: int = 1, k_t2t: int = 0, *,
                      exclude: Sequence | None = None, exclude_mirrors: bool = False,
                      diverse_by: Sequence[str] | None = None) -> RetrievalResult:
    """Top text-to-motion and text-to-text entries with distinct motion ids for each query.

    Args:
        database: the database. queries: (B, E) or (E,) text query embeddings.
        k_t2m: text-to-motion slots (>= 0). k_t2t: text-to-text slots (>= 0); k_t2m + k_t2t >= 1.
        exclude, exclude_mirrors: as :meth:`RetrievalDatabase.search` (applied to both searches).
        diverse_by: None, or label names (e.g. ``("action", "style")``) for diverse neighbours (module
            docstring); needs ``k_t2t >= 1`` and a database with those labels.
    Returns:
        :class:`RetrievalResult` with k = k_t2m + k_t2t slots per query: its text-to-motion hits (best first),
        then its text-to-text hits of other motions (best first); empty slots (-1) last. With ``k_t2t == 0``
        it equals ``database.search(queries, k_t2m, ...)``.

    Raises:
        DatabaseError: negative k, k_t2m + k_t2t < 1, ``diverse_by`` without text-to-text slots or on a database
            without those labels, or the errors of :meth:`RetrievalDatabase.search`.
    """
    k_t2m, k_t2t = int(k_t2m), int(k_t2t)
    if k_t2m < 0 or k_t2t < 0 or k_t2m + k_t2t < 1:
        raise DatabaseError(f"k_t2m and k_t2t must be >= 0 with a sum >= 1, got {k_t2m} and {k_t2t}")
    if diverse_by and k_t2t == 0:
        raise DatabaseError("diverse neighbours choose among text-to-text slots; this model has none (k_t2t = 0)")
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
        if diverse_by:
            own = None if exclude is None else exclude[b]
            second = _diverse(database, queries, b, first, second, k_t2t, tuple(diverse_by), own, exclude_mirrors)
        slots.append(first + second)
    return database._result(slots, k_t2m + k_t2t)



def _label_motions(database: RetrievalDatabase, names: tuple[str, ...]) -> tuple[dict, dict]:
    """``({labels tuple: motion ids}, {motion id: labels tuple})`` of the database, memoised on it per names."""
    cache = database.__dict__.setdefault("_diverse_groups", {})
    if names not in cache:
        groups: dict[tuple, set[str]] = {}
        label_of: dict[str, tuple] = {}
        for mid, lab in zip(database.motion_ids, database.labels):
            key = tuple(lab.get(n) for n in names)   # a missing label (e.g. no style) is a value of its own
            groups.setdefault(key, set()).add(mid)
            label_of[mid] = key
        if set(groups) <= {(None,) * len(names)}:
            raise DatabaseError(f"diverse neighbours need the labels {list(names)} of the database's motions; this "
                                "database stores none (build it from a dataset with labels.json)")
        cache[names] = (groups, label_of)
    return cache[names]


def _diverse(database, queries, b: int, first, ordinary, k: int, names: tuple[str, ...], own, mirrors: bool):
    """The text-to-text slots of query ``b`` with labels new among its neighbours (module docstring); falls back
    to ``ordinary`` (the plain text-to-text picks) slot by slot."""
    import numpy as np

    groups, label_of = _label_motions(database, names)
    q = np.asarray(queries[b] if getattr(queries, "ndim", 1) == 2 else queries, dtype=np.float32)[None]
    base = [] if own is None else ([own] if isinstance(own, str) else list(own))
    if mirrors:
        from .database import mirror_base

        base = base + [mirror_base(i) for i in base] + ["M" + mirror_base(i) for i in base]
    taken = [database.motion_ids[j] for j, _ in first]
    picked: list[tuple[int, float]] = []
    for slot in range(k):
        seen = {label_of[m] for m in taken}
        banned = set(base) | set(taken) | set().union(*(groups.get(lab, set()) for lab in seen))
        hit = database.search(q, 1, target="text", exclude=[sorted(banned)]).hits[0]
        if not hit:
            rest = [p for p in ordinary if database.motion_ids[p[0]] not in set(taken)]
            picked += rest[: k - slot]
            break
        picked.append((hit[0].index, hit[0].score))
        taken.append(hit[0].motion_id)
    return picked
