"""Padding waste of evaluation batches, with and without the pipeline's length-aware batching.

Usage::

    python benchmarks/bench_padding.py --split test --split test_unseen [--batches 480]

The evaluation protocol generates random batches of 32 prompts at their ground-truth lengths. A batch
padded to its longest motion costs ``32 * n_max`` token rows; :func:`remomask.generation.batching.
plan_length_batches` regroups the same prompts by length. For ``--batches`` random batches of each split
of the embedded dataset (seed 0), the table gives the ground-truth lengths (frames, as generated: whole
tokens, at most 196) and the padded token rows per real token row of both ways. No model is run; the
time this saves is measured by ``bench_generation.py --protocol``.
"""

from __future__ import annotations

import argparse

import numpy as np


def padding(split: str, batches: int, batch_size: int = 32) -> dict:
    """Lengths and padded-per-real token rows for ``batches`` random batches of ``split``."""
    from _prompts import protocol_prompts
    from remomask.generation.batching import plan_length_batches

    frames = np.array(protocol_prompts(split)[1])
    tokens = frames // 4
    rng = np.random.default_rng(0)
    real = padded = planned = 0
    for _ in range(batches):
        batch = rng.choice(tokens, batch_size, replace=False).tolist()
        real += sum(batch)
        padded += batch_size * max(batch)
        planned += sum(len(g) * max(batch[i] for i in g) for g in plan_length_batches(batch, batch_size))
    return {"prompts": len(frames), "mean": frames.mean(), "min": frames.min(), "max": frames.max(),
            "padded": padded / real, "planned": planned / real}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--split", action="append", default=None, help="Embedded split (repeat) [test].")
    ap.add_argument("--batches", type=int, default=480, help="Random batches of 32 per split.")
    args = ap.parse_args()
    print("| split | prompts | frames: mean (min-max) | token rows per real row: one padded batch | "
          "length batching |")
    print("|---|---|---|---|---|")
    for split in args.split or ["test"]:
        r = padding(split, args.batches)
        print(f"| {split} | {r['prompts']} | {r['mean']:.0f} ({r['min']}-{r['max']}) | {r['padded']:.2f} | "
              f"{r['planned']:.2f} |")


if __name__ == "__main__":
    main()
