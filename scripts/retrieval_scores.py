"""Best-neighbour retrieval scores per split: the calibration of the similarity gate (docs/design.md §4.10).

For every caption of every motion of each split, the pipeline's retrieval (its own k slots, text-to-motion and
text-to-text) and the best slot's score (cosine). Prints percentiles per split, so that the gate's threshold
can be read off ``val`` (a low percentile: retrieval kept for nearly every val prompt) and its reach on the
other splits seen before anything is generated::

    python scripts/retrieval_scores.py --model src/remomask/assets/models/default \\
        --split val --split test --split test_unseen --split test_human --percentile 1 --percentile 5

``--json`` writes the percentiles. Exit code 2 with one line for a missing split file or a model without
retrieval.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np


def split_captions(root: Path, split: str) -> list[str]:
    """All captions of the motions listed in ``<root>/<split>.txt`` (HumanML3D layout, ``texts/<id>.txt``, read
    with :func:`remomask.data.captions.read_captions`).

    Raises:
        FileNotFoundError: no such split file.
    """
    from remomask.data.captions import read_captions

    path = root / f"{split}.txt"
    if not path.is_file():
        raise FileNotFoundError(f"no split file {path}")
    out = []
    for motion_id in path.read_text().split():
        text = root / "texts" / f"{motion_id}.txt"
        if text.is_file():
            out.extend(c.text for c in read_captions(text)[0] if c.text.strip())
    return out


def best_scores(pipe, captions: list[str], batch: int = 128) -> np.ndarray:
    """(N,) the best slot score of each caption's neighbours (the gate's statistic, docs/design.md §4.10)."""
    scores = []
    for s in range(0, len(captions), batch):
        cond = pipe.conditions(captions[s: s + batch], keep_hits=True)
        scores.extend(max(h["score"] for h in hits) for hits in cond.hits)
    return np.asarray(scores, dtype=np.float64)


def main(argv: list[str] | None = None) -> int:
    """Command line entry point; returns the exit code."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="pipeline folder [the bundled one]")
    ap.add_argument("--dataset", default="embedded")
    ap.add_argument("--split", action="append", default=None, help="repeatable [val]")
    ap.add_argument("--percentile", action="append", type=float, default=None, help="repeatable [1, 5, 25, 50]")
    ap.add_argument("--threshold", action="append", type=float, default=[],
                    help="also print the share of each split's captions below this score (repeatable)")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)

    import torch

    from remomask.data.embedded import resolve_dataset
    from remomask.pipeline import ReMoMaskPipeline

    torch.set_num_threads(1)
    pipe = ReMoMaskPipeline.from_pretrained(args.model)
    if pipe.retriever is None:
        print("error: this pipeline has no retrieval; there is nothing to gate", file=sys.stderr)
        return 2
    root = Path(resolve_dataset(args.dataset, progress=False))
    pcts = args.percentile or [1.0, 5.0, 25.0, 50.0]
    result = {}
    print("| split | captions | " + " | ".join(f"p{p:g}" for p in pcts)
          + "".join(f" | below {t:g}" for t in args.threshold) + " |")
    print("|---|---|" + "---|" * (len(pcts) + len(args.threshold)))
    for split in args.split or ["val"]:
        try:
            captions = split_captions(root, split)
        except FileNotFoundError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        best = best_scores(pipe, captions)
        row = {"captions": len(captions), "percentiles": {f"{p:g}": float(np.percentile(best, p)) for p in pcts},
               "below": {f"{t:g}": float((best < t).mean()) for t in args.threshold}}
        result[split] = row
        print(f"| {split} | {len(captions)} | " + " | ".join(f"{v:.3f}" for v in row["percentiles"].values())
              + "".join(f" | {v:.1%}" for v in row["below"].values()) + " |")
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
