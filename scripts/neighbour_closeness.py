"""How close the retrieved neighbours are at training time against `val` time (docs/results.md, session 13).

Usage::

    python scripts/neighbour_closeness.py [--model src/remomask/assets/models/default] [--train-samples 800]

For a seeded sample of train database entries (their own motion and its mirror excluded, as the generators'
training does, docs/design.md §15.5) and for every `val` caption, the multi-modal top-1 text-to-motion and
text-to-text neighbours (k = 1 + 1, docs/design.md §4.9) are compared with the query's own motion: same action,
same (action, style), same source clip (labels.json of the embedded dataset) and the cosine between the
retriever's motion embeddings (unit vectors, no units). Prints one line per split. A training-time neighbour much
closer than a `val` one would mean the generator learns to copy what it cannot copy at test time.

Raises (exit 2, one line): a missing model folder or dataset file.
"""

from __future__ import annotations

import argparse
import collections
import json
import random
import sys
from pathlib import Path


def _unit_by_motion(db) -> dict:
    """``{motion_id: unit motion embedding (E,)}`` of a database (first entry of each motion)."""
    import numpy as np

    out = {}
    for i, m in enumerate(db.motion_ids):
        if m not in out:
            out[m] = db.motion_emb[i] / np.linalg.norm(db.motion_emb[i])
    return out


def closeness(db, queries, labels: dict, emb: dict, *, exclude: bool) -> dict:
    """Label agreement and motion cosine of the top-1 t2m and t2t neighbours.

    Args:
        db: the train :class:`~remomask.retrieval.database.RetrievalDatabase`. queries: list of
            (motion_id, text embedding (E,)). labels: the dataset's labels.json. emb: unit motion embeddings by id.
        exclude: exclude each query's own motion and its mirror (training time).

    Returns:
        ``{"t2m/action": fraction, ..., "t2t/motion cos": mean}``.
    """
    import numpy as np
    import torch

    from remomask.retrieval.multimodal import search_multimodal

    ids = [m for m, _ in queries]
    q = torch.as_tensor(np.stack([t for _, t in queries]))
    res = search_multimodal(db, q, 1, 1, exclude=[[m] for m in ids] if exclude else None, exclude_mirrors=exclude)
    stats = collections.defaultdict(list)
    for b, m in enumerate(ids):
        for slot, name in ((0, "t2m"), (1, "t2t")):
            hit = db.motion_ids[int(res.indices[b, slot])]
            a, h = labels[m], labels[hit]
            stats[f"{name}/action"].append(a["action"] == h["action"])
            stats[f"{name}/action+style"].append(a["action"] == h["action"] and a["style"] == h["style"])
            stats[f"{name}/same clip"].append(a["clip"] == h["clip"])
            stats[f"{name}/motion cos"].append(float(emb[m] @ emb[hit]))
    return {k: round(float(np.mean(v)), 3) for k, v in stats.items()}


def main(argv: list[str] | None = None) -> int:
    """Command line entry point; returns the exit code."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="src/remomask/assets/models/default", help="pipeline folder")
    ap.add_argument("--train-samples", type=int, default=800)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    import torch

    import remomask
    from remomask.retrieval import PartRetriever
    from remomask.retrieval.database import RetrievalDatabase
    from remomask.retrieval.encode import build_database

    torch.set_num_threads(1)
    model = Path(args.model)
    try:
        retriever = PartRetriever.from_pretrained(model / "retriever").eval()
        db = RetrievalDatabase.load(model / "database")
        labels = json.loads((Path(remomask.__file__).parent / "assets/datasets/embedded/labels.json").read_text())
    except (OSError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    vdb = build_database(retriever, "embedded", "val", progress=False)
    emb = {**_unit_by_motion(db), **_unit_by_motion(vdb)}
    rows = list(range(len(db.motion_ids)))
    random.Random(args.seed).shuffle(rows)
    train_q = [(db.motion_ids[i], db.text_emb[i]) for i in rows[: args.train_samples]]
    val_q = [(vdb.motion_ids[i], vdb.text_emb[i]) for i in range(len(vdb.motion_ids))]
    print(f"train, own motion excluded ({len(train_q)}):", closeness(db, train_q, labels, emb, exclude=True))
    print(f"val ({len(val_q)}):", closeness(db, val_q, labels, emb, exclude=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
