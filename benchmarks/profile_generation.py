"""Where the generation time goes: seconds per pipeline stage for N prompts at test ground-truth lengths.

Usage::

    python benchmarks/profile_generation.py --model src/remomask/assets/models/default [--split test] [--prompts 256] [--threads 1]

One pipeline call with ``--prompts`` captions of the embedded split (one seeded shuffle, whole tokens, at
most 196 frames), as the evaluation protocol sends a pass. The masked transformer, the residual
transformer, the tokenizer's decoder and the condition step (text encoding + retrieval + lengths) are
timed by wrapping them; "the rest" is sampling (top-k, re-masking), joint recovery and bookkeeping.
Prints one table.

``--ops`` (issue 20) instead profiles pipeline calls of ``--batch`` prompts of 196 frames (guidance on, as
``bench_generation.py``) with the torch profiler and prints, per batch size and sampling path, the seconds per
motion of each stage and the operators with the most self time, in milliseconds per motion::

    python benchmarks/profile_generation.py --ops --preset momask --batch 1 --batch 32 --steps 2 --paths old,new

``--preset`` builds random weights (``bench_generation.build_random_pipeline``), ``--model`` loads a folder;
``--steps`` shortens the decoding (the operators of one step do not depend on the number of steps).
"""

from __future__ import annotations

import argparse
import collections
import time


def _stage_timers(pipe, seconds) -> None:
    """Wrap the stages of ``pipe`` so that their wall time adds up in ``seconds`` (label -> s)."""
    import time

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


def profile_ops(args) -> None:
    """The ``--ops`` tables (module docstring)."""
    import sys
    from pathlib import Path

    import torch
    from torch.profiler import ProfilerActivity, profile

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_generation import PROMPTS, _clear_caches, build_random_pipeline

    from remomask.pipeline import ReMoMaskPipeline

    pipe = (ReMoMaskPipeline.from_pretrained(args.model) if args.model else
            build_random_pipeline(args.preset, "cpu"))
    what = args.model or f"{args.preset} preset, random weights"
    seconds: dict[str, float] = collections.defaultdict(float)
    _stage_timers(pipe, seconds)
    print(f"{what}; {torch.get_num_threads()} thread(s); 196 frames, {args.steps} steps, cond_scale 4")
    pipe(["warm-up"], frames=196, seed=0, steps=1, cond_scale=4.0)
    for batch in args.batch or [1, 32]:
        texts = [PROMPTS[i % len(PROMPTS)] + f" {i}" for i in range(batch)]
        for path in args.paths.split(","):
            for model in (pipe.mask_transformer, pipe.residual_transformer):
                model.chunk_tokens = 0 if path == "old" else type(model).chunk_tokens
            _clear_caches(pipe)
            seconds.clear()
            start = time.perf_counter()
            with profile(activities=[ProfilerActivity.CPU]) as prof:
                pipe(texts, frames=196, seed=0, steps=args.steps, cond_scale=4.0)
            total = time.perf_counter() - start
            stages = ", ".join(f"{k} {v / batch:.3f}" for k, v in seconds.items())
            print(f"\n#### batch {batch}, {path} path: {total / batch:.3f} s per motion (profiled)\n\n"
                  f"Stages (s per motion): {stages}, the rest {(total - sum(seconds.values())) / batch:.3f}\n")
            events = sorted(prof.key_averages(), key=lambda e: -e.self_cpu_time_total)
            whole = sum(e.self_cpu_time_total for e in events)
            print("| operator | calls | self ms per motion | share |")
            print("|---|---|---|---|")
            for e in events[: args.rows]:
                print(f"| `{e.key}` | {e.count} | {e.self_cpu_time_total / 1e3 / batch:.1f} | "
                      f"{e.self_cpu_time_total / whole:.1%} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="Pipeline folder [default: the bundled model].")
    parser.add_argument("--split", default="test")
    parser.add_argument("--prompts", type=int, default=256)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--ops", action="store_true", help="Operator tables per batch size (module docstring).")
    parser.add_argument("--preset", choices=["cpu", "paper", "momask"], default="momask",
                        help="--ops without --model: random weights at these sizes.")
    parser.add_argument("--batch", type=int, action="append", default=None, help="--ops: batch sizes [1, 32].")
    parser.add_argument("--steps", type=int, default=10, help="--ops: decoding steps.")
    parser.add_argument("--paths", default="old,new", help="--ops: sampling paths (bench_generation.py --paths).")
    parser.add_argument("--rows", type=int, default=12, help="--ops: operators listed.")
    args = parser.parse_args()

    import numpy as np
    import torch

    torch.set_num_threads(args.threads)
    if args.ops:
        profile_ops(args)
        return
    from _prompts import protocol_prompts
    from remomask.pipeline import ReMoMaskPipeline

    pipe = ReMoMaskPipeline.from_pretrained(args.model)
    seconds: dict[str, float] = collections.defaultdict(float)
    _stage_timers(pipe, seconds)

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
