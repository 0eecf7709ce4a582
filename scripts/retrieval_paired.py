"""Paired comparison of two retrievers on one split: R@1 difference with a bootstrap interval, and what the
top-1 misses are.

Usage: ``python scripts/retrieval_paired.py MODEL_A MODEL_B [--split test] [--split test_unseen]``

Both models encode the same evaluation pool (docs/design.md §10.3: every sample with its first caption; identical
captions count as correct). For each split it prints, per model, R@1 (%), the share of queries whose top-1
motion has the query's action label although its caption differs ("class hit, caption miss"), and the
paired bootstrap (2,000 resamples of the queries, seed 0) 95% interval of R@1(A) - R@1(B). It also prints,
per model, the database action P@1 (top-1 train motion of <model>/database has the query's action) over the
queries whose caption names exactly one side (left or right, :func:`direction_code`), where mirror-image
actions are the likely confusion.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from remomask.retrieval.database import RetrievalDatabase
from remomask.retrieval.encode import encode_split
from remomask.retrieval.evaluate import database_label_precision
from remomask.retrieval.hbm import direction_code
from remomask.retrieval.metrics import best_correct_ranks, identical_caption_matrix
from remomask.retrieval.model import PartRetriever


def _top1(model_dir: str, split: str):
    model = PartRetriever.from_pretrained(model_dir)
    emb = encode_split(model, "embedded", split)
    sim = (emb.text @ emb.motion.T).numpy()
    correct = identical_caption_matrix(emb.captions, emb.captions)
    hit = best_correct_ranks(sim, correct) == 0
    top = sim.argmax(axis=1)
    action = np.array([lab.get("action") for lab in emb.labels], dtype=object)
    class_hit = (action[top] == action) & ~hit
    sided = [i for i, c in enumerate(emb.captions) if direction_code(c) & 3 in (1, 2)]
    db = RetrievalDatabase.load(Path(model_dir) / "database", model=model)
    lateral = database_label_precision(db, emb.text[sided], [emb.labels[i] for i in sided], ks=(1,))
    return hit, class_hit, lateral["action"]["P@1"], len(sided)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model_a")
    ap.add_argument("model_b")
    ap.add_argument("--split", action="append", default=None)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    for split in args.split or ["test", "test_unseen"]:
        (hit_a, cls_a, lat_a, n_lat), (hit_b, cls_b, lat_b, _) = _top1(args.model_a, split), _top1(args.model_b, split)
        rng = np.random.default_rng(0)
        idx = rng.integers(0, len(hit_a), size=(2000, len(hit_a)))
        diff = 100 * (hit_a[idx].mean(axis=1) - hit_b[idx].mean(axis=1))
        lo, hi = np.percentile(diff, [2.5, 97.5])
        print(f"{split} (n={len(hit_a)}): R@1 A {100 * hit_a.mean():.1f} B {100 * hit_b.mean():.1f}; "
              f"class hit, caption miss A {100 * cls_a.mean():.1f} B {100 * cls_b.mean():.1f}; "
              f"R@1 A-B {100 * (hit_a.mean() - hit_b.mean()):+.1f} (95% bootstrap {lo:+.1f} .. {hi:+.1f}); "
              f"queries hit by A only {int((hit_a & ~hit_b).sum())}, by B only {int((hit_b & ~hit_a).sum())}; "
              f"DB action P@1 on the {n_lat} one-sided captions A {lat_a:.1f} B {lat_b:.1f}")


if __name__ == "__main__":
    main()
