"""Where the generation time goes: seconds per pipeline stage for N prompts at test ground-truth lengths.

Usage::

    python benchmarks/profile_generation.py --model src/remomask/assets/models/default [--split test] [--prompts 256] [--threads 1]

One pipeline call with ``--prompts`` captions of the embedded split (one seeded shuffle, whole tokens, at
most 196 frames), as the evaluation protocol sends a pass. The masked transformer, the residual
transformer, the tokenizer's decoder and the condition step (text encoding + retrieval + lengths) are
timed by wrapping them; "the rest" is sampling (top-k, re-masking), joint recovery and bookkeeping.
Prints one table.
"""

from __future__ import annotations

import argparse
import collections
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="Pipeline folder [default: the bundled model].")
    parser.add_argument("--split", default="test")
    parser.add_argument("--prompts", type=int, default=256)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    import numpy as np
    import torch

    torch.set_num_threads(args.threads)
    from _prompts import protocol_prompts
    from remomask.pipeline import ReMoMaskPipeline

    pipe = ReMoMaskPipeline.from_pretrained(args.model)
    seconds: dict[str, float] = collections.defaultdict(float)

    def timed(obj, attr: str, label: str) -> None:
        inner = getattr(obj, attr)

        def call(*a, **k):
            start = time.perf_counter()
            try:
                return inner(*a, **k)
            finally:
                seconds[label] += time.perf_counter() - start

        setattr(obj, attr, call)

    timed(pipe.mask_transformer, "forward", "masked transformer forwards")
    timed(pipe.residual_transformer, "forward", "residual transformer forwards")
    timed(pipe.tokenizer, "decode", "tokenizer decoding")
    timed(pipe, "_conditions", "text encoding, retrieval, lengths")

    captions, frames = protocol_prompts(args.split)
    captions, frames = captions[: args.prompts], frames[: args.prompts]
    start = time.perf_counter()
    pipe(captions, frames=frames, seed=0, min_frames=4)
    total = time.perf_counter() - start
    print(f"{len(captions)} `{args.split}` prompts, {np.mean(frames):.1f} frames on average, "
          f"sampling defaults {pipe.sampling_defaults}, {torch.get_num_threads()} thread(s)")
    print("| stage | seconds | share |")
    print("|---|---|---|")
    for label, sec in seconds.items():
        print(f"| {label} | {sec:.2f} | {sec / total:.0%} |")
    rest = total - sum(seconds.values())
    print(f"| the rest (sampling, joints, bookkeeping) | {rest:.2f} | {rest / total:.0%} |")
    print(f"| total | {total:.2f} | 100% |")


if __name__ == "__main__":
    main()
