"""Generation speed: latency of one prompt, batched throughput, peak memory, training step time (issue 5).

Usage::

    python benchmarks/bench_generation.py                       # cpu preset, random weights, CPU
    python benchmarks/bench_generation.py --model runs/pipeline_cpu
    python benchmarks/bench_generation.py --preset paper --device cuda --batch 32 --batch 256

What is timed (whole pipeline, ``ReMoMaskPipeline.__call__``): text encoding (the caches are emptied before
every call), retrieval from the database, 10 masked-decoding steps with guidance on (``--cond-scale 4``:
two passes each, conditional and unconditional; ``--cond-scale model`` uses the folder's default, one
pass a step when it is 1), the residual layers with guidance, decoding by the tokenizer and the
recovery of joints. Every motion is 196 frames (9.8 s). Latency target (issue): one prompt <= 1.0 s on the
2-core CPU with the ``cpu`` preset.

Without ``--model`` the components are built with random weights at the preset's sizes (speed does not
depend on the weights): the ``cpu`` / ``paper`` tokenizer, retriever, both transformers and the length
estimator, and a database of 10,806 random entries (the size of the embedded train split's). Peak memory
is the process's maximum resident set (CPU) or ``torch.cuda.max_memory_allocated`` (CUDA).

``--protocol SPLIT`` also times batches of 32 prompts at the ground-truth lengths of an embedded split, as
the evaluation protocol generates them: length-aware batching of the pipeline off and on, and all the
batches in one call (what the protocol does for a pipeline, ``request_size``).

``--train-steps`` also times training steps of both transformers (batch 32 crops of up to 196 frames,
forward + backward + AdamW), which is what the ``cpu`` training presets are sized from.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import time

PROMPTS = ["a person walks forward, turns around and walks back", "someone waves with the right hand"]


MOMASK_MASK = dict(token_dim=512, latent_dim=384, num_heads=6, ff_size=1024)
"""``--preset momask``: the ``paper`` pipeline with a masked transformer of MoMask's size (latent 384, 6 heads,
FFN 1024, 8 + 8 + 8 layers; the residual transformer of ``paper`` already has it), on the 2D token grid."""


def build_random_pipeline(preset: str, device: str, entries: int = 10_806):
    """A pipeline with random weights at the preset's sizes (the cost does not depend on the weights):
    ``cpu``, ``paper``, or ``momask`` (:data:`MOMASK_MASK`)."""
    import numpy as np
    import torch

    from remomask.generation import (
        LengthEstimator,
        LengthEstimatorConfig,
        MaskTransformer,
        MaskTransformerConfig,
        ResidualTransformer,
        ResidualTransformerConfig,
        column_codes_of,
        num_codes_of,
    )
    from remomask.pipeline import ReMoMaskPipeline
    from remomask.retrieval import PartRetriever, RetrievalDatabase, RetrieverConfig
    from remomask.tokenizer import MotionTokenizer, TokenizerConfig

    over = MOMASK_MASK if preset == "momask" else {}
    preset = "paper" if preset == "momask" else preset
    torch.manual_seed(0)
    tok = MotionTokenizer(TokenizerConfig.preset(preset)).eval()
    ret = PartRetriever(RetrieverConfig.preset_config(preset)).eval()
    rng = np.random.default_rng(0)
    e = ret.config.embed_dim
    db = RetrievalDatabase(rng.normal(size=(entries, e)), rng.normal(size=(entries, e)),
                           [f"caption {i}" for i in range(entries)], [f"{i // 3:06d}" for i in range(entries)],
                           model_hash=ret.model_hash())
    # as generation/train.py: one id range over all columns, the larger of the two codebooks with the dual
    # tokenizer; each column keeps to its own codebook's ids (``column_codes``)
    common = dict(num_codes=num_codes_of(tok), column_codes=column_codes_of(tok), num_columns=tok.num_columns,
                  text_dim=384)
    mask = MaskTransformer(MaskTransformerConfig.preset(preset, retrieval_dim=e, **common, **over)).eval()
    res = ResidualTransformer(ResidualTransformerConfig.preset(preset, num_quantizers=tok.num_quantizers,
                                                               **common)).eval()
    length = LengthEstimator(LengthEstimatorConfig.preset(preset, text_dim=384)).eval()
    return ReMoMaskPipeline(tok, mask, res, length, retriever=ret, database=db, device=device)


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _clear_caches(pipe) -> None:
    pipe.conditions._text.clear()
    pipe.conditions._retr.clear()
    pipe.text_encoder.clear_cache()


CPU_SECONDS: list[float] = []
"""Process CPU seconds of each timed call of :func:`time_call` (all threads): on a shared machine the CPU
time of a one-thread run does not count the time the process waited for a core."""


def time_call(pipe, batch: int, repeats: int, device: str, cond_scale: float | None = 4.0,
              warmup: bool = True, precision: str | None = None) -> list[float]:
    """Seconds per pipeline call for ``batch`` prompts of 196 frames (first call = warm-up, not counted, unless
    ``warmup`` is False); ``cond_scale`` None = the model's default (``pipeline.json``). The similarity gate is off
    (``retrieval_min_score=0``), so every prompt takes the full cascade with retrieval, the slower path
    (docs/design.md §4.10; the numbered prompts below would fall under the bundle's gate)."""
    texts = [PROMPTS[i % len(PROMPTS)] + f" {i}" for i in range(batch)]
    times = []
    for r in range(0 if warmup else 1, repeats + 1):
        _clear_caches(pipe)
        _sync(device)
        start, cpu = time.perf_counter(), time.process_time()
        pipe(texts, frames=196, seed=r, steps=10, cond_scale=cond_scale, precision=precision,
             retrieval_min_score=0.0)
        _sync(device)
        if r:
            times.append(time.perf_counter() - start)
            CPU_SECONDS.append(time.process_time() - cpu)
    return times


def time_protocol(pipe, split: str, batches: int, length_batching: bool,
                  per_call: int = 1) -> tuple[float, int]:
    """Seconds for ``batches`` batches of 32 prompts at the ground-truth lengths of ``split`` of the embedded
    dataset (consecutive slices of one seeded shuffle, like the protocol's random batches; whole tokens, at
    most 196 frames), sent ``per_call`` batches per pipeline call (the protocol's ``request_size`` / 32),
    and the frames generated."""
    from _prompts import protocol_prompts

    captions, lengths = protocol_prompts(split)
    total, frames = 0.0, 0
    for b in range(0, batches, per_call):
        part = slice(32 * b, 32 * min(batches, b + per_call))
        start = time.perf_counter()
        pipe(captions[part], frames=lengths[part], seed=b, min_frames=4, length_batching=length_batching)
        total += time.perf_counter() - start
        frames += sum(lengths[part])
    return total, frames


def peak_memory_mb(device: str) -> float:
    import torch

    if device.startswith("cuda"):
        return torch.cuda.max_memory_allocated() / 2 ** 20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def time_train_steps(pipe, steps: int = 3, batch: int = 32) -> dict[str, float]:
    """Median seconds per training step (forward + backward + AdamW) of each transformer."""
    import torch

    from remomask.generation import Retrieved

    dev = pipe.device
    gen = torch.Generator().manual_seed(0)
    q = pipe.tokenizer.num_quantizers
    k = pipe.mask_transformer.config.num_codes
    lengths = torch.randint(10, 50, (batch,), generator=gen)
    lengths[0] = 49
    ids = torch.randint(0, k, (batch, 49, pipe.tokenizer.num_columns, q), generator=gen)
    for b, n in enumerate(lengths.tolist()):
        ids[b, n:] = -1
    ids = ids.to(dev)
    text = torch.randn(batch, 384, device=dev)
    e = pipe.mask_transformer.config.retrieval_dim
    retr = Retrieved(torch.randn(batch, 1, e), torch.randn(batch, 1, e), torch.ones(batch, 1, dtype=torch.bool))
    out = {}
    models = (("mask transformer", pipe.mask_transformer), ("residual transformer", pipe.residual_transformer))
    for name, model in models:
        model.train()
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
        times = []
        for _ in range(steps + 1):
            _sync(str(dev))
            start = time.perf_counter()
            if name == "mask transformer":
                loss = model.loss(ids[..., 0], text, retr, generator=None).loss
            else:
                loss = model.loss(ids, text).loss
            opt.zero_grad()
            loss.backward()
            opt.step()
            _sync(str(dev))
            times.append(time.perf_counter() - start)
        model.eval()
        out[name] = statistics.median(times[1:])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="Pipeline folder (default: random weights at --preset sizes).")
    parser.add_argument("--preset", choices=["cpu", "paper", "momask"], default="cpu",
                        help="Sizes of the random-weight pipeline; momask = paper with a MoMask-size masked "
                             "transformer (latent 384, 6 heads).")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice).")
    parser.add_argument("--batch", type=int, action="append", default=None, help="Batch sizes (repeat) [1, 32].")
    parser.add_argument("--repeats", type=int, default=5, help="Timed calls per batch size.")
    parser.add_argument("--cond-scale", default="4",
                        help="RAG-CFG scale of the timed calls [4: guidance on, two passes a step]; 'model' = the "
                             "folder's default (1 = one pass a step).")
    parser.add_argument("--warmup", choices=["each", "once"], default="each",
                        help="each: an uncounted call before every batch size [default]; once: one uncounted "
                             "call with one prompt before all (for large models, where a warm-up at batch 32 "
                             "costs minutes).")
    parser.add_argument("--paths", default="new",
                        help="Comma list of sampling paths, timed in turn at every batch size: new = chunked "
                             "passes (generation.layers.CHUNK_TOKENS, threads as one-thread workers); old = one "
                             "pass over the whole batch (chunk_tokens 0), the code before issue 20.")
    parser.add_argument("--precision", choices=["fp32", "bf16"], default=None,
                        help="Pipeline precision of the timed calls (default: the pipeline's, fp32 on the CPU); "
                             "bf16 = autocast, not exact.")
    parser.add_argument("--train-steps", action="store_true", help="Also time training steps of the transformers.")
    parser.add_argument("--protocol", default=None, metavar="SPLIT",
                        help="Also time --protocol-batches evaluation batches (32 prompts at the ground-truth "
                             "lengths of SPLIT of the embedded dataset), with and without length batching.")
    parser.add_argument("--protocol-batches", type=int, default=6)
    args = parser.parse_args()

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from remomask.pipeline import ReMoMaskPipeline

    if args.model:
        pipe = ReMoMaskPipeline.from_pretrained(args.model, device=args.device)
        what = args.model
    else:
        pipe = build_random_pipeline(args.preset, args.device)
        what = f"{args.preset} preset, random weights"
    params = {name: sum(p.numel() for p in getattr(pipe, name).parameters()) / 1e6
              for name in ("mask_transformer", "residual_transformer")}
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, device {args.device}"
          + (f" ({torch.cuda.get_device_name()})" if args.device.startswith("cuda") else ""))
    print(f"model: {what}; mask transformer {params['mask_transformer']:.2f} M, residual transformer "
          f"{params['residual_transformer']:.2f} M parameters; database {len(pipe.database) if pipe.database else 0} "
          "entries")
    cond_scale = None if args.cond_scale == "model" else float(args.cond_scale)
    shown = pipe.sampling_defaults["cond_scale"] if cond_scale is None else cond_scale
    print(f"196 frames per motion, 10 steps, cond_scale {shown:g} (residual "
          f"{pipe.sampling_defaults['residual_cond_scale']:g}), text encoding + retrieval + decoding included")
    paths = args.paths.split(",")
    if set(paths) - {"new", "old"}:
        parser.error(f"--paths takes new and/or old, got {args.paths!r}")
    if args.warmup == "once":
        time_call(pipe, 1, 0, args.device, cond_scale, precision=args.precision)
    print(f"{'batch':>5} {'path':>4} {'median s':>9} {'min s':>7} {'s/motion':>9} {'motions/s':>10} "
          f"{'CPU s/motion':>12} {'peak MB':>8}")
    for batch in args.batch or [1, 32]:
        for path in paths:
            for model in (pipe.mask_transformer, pipe.residual_transformer):
                model.chunk_tokens = 0 if path == "old" else type(model).chunk_tokens
            if args.device.startswith("cuda"):
                torch.cuda.reset_peak_memory_stats()
            CPU_SECONDS.clear()
            times = time_call(pipe, batch, args.repeats if batch == 1 else max(1, args.repeats // 2), args.device,
                              cond_scale, warmup=args.warmup == "each", precision=args.precision)
            med = statistics.median(times)
            cpu = statistics.median(CPU_SECONDS) / batch
            print(f"{batch:>5} {path:>4} {med:>9.3f} {min(times):>7.3f} {med / batch:>9.3f} {batch / med:>10.2f} "
                  f"{cpu:>12.3f} {peak_memory_mb(args.device):>8.0f}", flush=True)
    if args.protocol:
        print(f"evaluation batches of 32 at the ground-truth lengths of `{args.protocol}` "
              f"({args.protocol_batches} batches, model's sampling defaults)")
        modes = (("length batching off, one batch per call", False, 1),
                 ("length batching on, one batch per call", True, 1),
                 (f"length batching on, all {args.protocol_batches} batches in one call (request_size)", True,
                  args.protocol_batches))
        for label, flag, per_call in modes:
            sec, frames = time_protocol(pipe, args.protocol, args.protocol_batches, flag, per_call)
            print(f"{label}: {sec / args.protocol_batches:.2f} s per batch, "
                  f"{32 * args.protocol_batches / sec:.2f} motions/s, {frames / sec:.0f} frames/s")
    if args.train_steps:
        for name, sec in time_train_steps(pipe).items():
            print(f"training step, {name}, batch 32 x 196 frames: {sec:.2f} s")


if __name__ == "__main__":
    main()
