"""Benchmark of the retrieval stage: query latency, batch throughput, approximate-index recall, training speed.

Usage::

    PYTHONPATH=src python benchmarks/bench_retrieval.py [--model runs/retriever_cpu/model]
        [--sizes 1e4,1e5,1e6] [--kinds flat,ivf,hnsw] [--threads 1] [--train-steps 10] [--device cpu]
        [--json out.json]

What is measured (docs/design.md §4.7; issue 3 "Benchmarks"):

1. **Query latency** (one caption, end to end): frozen MiniLM + the retriever's text layer and head +
   ``RetrievalDatabase.search(k=10)`` with de-duplication, median over distinct captions (so the text
   cache never answers). Database sizes 10^4, 10^5, 10^6 entries of synthetic 512-d unit vectors drawn
   around 2,000 random centres (real embeddings cluster by motion; uniform random vectors would make
   approximate indexes look worse than they are), 5 captions per motion as in the real database.
2. **Batch throughput**: queries per second for batches of 256 query embeddings (search only).
3. **Recall@10** of the approximate indexes (IVF-Flat, HNSW) against exact search, over 200 queries.
4. **Training throughput** of the ``cpu`` preset (or ``--preset``) in samples/s on real batches of the
   embedded train split (forward, momentum keys, HBM loss, backward, Adam).

The model is ``--model`` if given, else a randomly initialised ``cpu``-preset retriever (the same
compute). Prints a table; ``--json`` also writes the numbers.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

NOISE = 0.5  # norm of the Gaussian offset of each vector from its centre (cosine to the centre ~0.9)
CAPTIONS = [
    "a person walks forward", "someone waves the right hand", "a man jumps twice", "the person bows",
    "a woman runs in a circle", "someone kicks with the left leg", "a person sits down", "a man dances",
    "someone raises both arms", "the person turns left while walking", "a person squats down and stands up",
    "someone throws a ball", "a tired person walks slowly", "a person sneaks forward", "someone lies down",
]


def synthetic(n: int, dim: int, centres: int, rng: np.random.Generator,
              per_motion: int = 5) -> tuple[np.ndarray, list[str], np.ndarray]:
    """A synthetic database of ``n`` entries: ``n / per_motion`` motion vectors (unit, around ``centres``
    random unit directions, offset norm ~``NOISE``), each repeated ``per_motion`` times as the captions
    of one motion share its motion embedding. Returns (entries (n, dim), motion ids, centres)."""
    c = rng.standard_normal((centres, dim)).astype(np.float32)
    c /= np.linalg.norm(c, axis=1, keepdims=True)
    motions = -(-n // per_motion)
    vec = np.empty((motions, dim), dtype=np.float32)
    for s in range(0, motions, 100_000):  # in chunks to bound temporary memory
        m = min(motions, s + 100_000) - s
        x = c[rng.integers(0, centres, m)] + NOISE / np.sqrt(dim) * rng.standard_normal((m, dim)).astype(np.float32)
        vec[s: s + m] = x / np.linalg.norm(x, axis=1, keepdims=True)
    rows = np.arange(n) // per_motion
    return vec[rows], [str(i) for i in rows], c


def bench_database(model, sizes, kinds, dim, rng, queries_n=200, hnsw_max=10**6) -> list[dict]:
    from remomask.retrieval.database import RetrievalDatabase

    rows = []
    for n in sizes:
        data, mids, centres = synthetic(n, dim, 2000, rng)
        q = centres[rng.integers(0, len(centres), queries_n)]
        q = q + NOISE / np.sqrt(dim) * rng.standard_normal(q.shape).astype(np.float32)
        q /= np.linalg.norm(q, axis=1, keepdims=True)
        exact_ids = None
        for kind in kinds:
            if kind == "hnsw" and n > hnsw_max:
                print(f"  {n:>9,} hnsw  skipped: building takes too long on this machine (--hnsw-max {hnsw_max:,})")
                continue
            t0 = time.perf_counter()
            db = RetrievalDatabase(data, data, [""] * n, mids, index=kind)
            db.index("motion")
            build = time.perf_counter() - t0
            res = db.search(q, k=10)
            ids = res.indices.numpy()
            if kind == "flat":
                exact_ids = ids
            recall = float(np.mean([len(set(ids[i]) & set(exact_ids[i])) / 10 for i in range(queries_n)])) \
                if exact_ids is not None else float("nan")
            # single-query latency: encode one new caption + search
            lat = []
            model.text_encoder.clear_cache()
            for i in range(30):
                text = f"{CAPTIONS[i % len(CAPTIONS)]} {i}"
                t0 = time.perf_counter()
                emb = model.encode_text([text])
                db.search(emb, k=10)
                lat.append(time.perf_counter() - t0)
            search_only = []
            for i in range(30):
                t0 = time.perf_counter()
                db.search(q[i], k=10)
                search_only.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            reps = 0
            while time.perf_counter() - t0 < 2.0 or reps < 1:
                db.search(np.resize(q, (256, dim)), k=10)
                reps += 1
            qps = 256 * reps / (time.perf_counter() - t0)
            rows.append({"entries": n, "index": kind, "build_s": build,
                         "query_ms": 1000 * statistics.median(lat), "search_ms": 1000 * statistics.median(search_only),
                         "batch256_qps": qps, "recall@10": recall})
            print(f"  {n:>9,} {kind:<5} build {build:7.2f} s  query {rows[-1]['query_ms']:7.2f} ms  "
                  f"search {rows[-1]['search_ms']:7.2f} ms  {qps:9.0f} q/s  recall@10 {recall:.3f}", flush=True)
            del db
        del data
    return rows


def bench_training(preset: str, steps: int, device: str) -> dict:
    from remomask.data.datasets import TextMotionDataset, collate
    from remomask.data.embedded import resolve_dataset
    from remomask.retrieval.config import RetrieverConfig
    from remomask.retrieval.hbm import HBMLoss
    from remomask.retrieval.model import PartRetriever
    from remomask.retrieval.train import _EpochSampler, _optimizer, train_step
    from remomask.text import load_text_encoder

    c = RetrieverConfig.preset_config(preset)
    dev = torch.device(device)
    ds = TextMotionDataset(resolve_dataset("embedded", progress=False), "train", mode="retriever",
                           max_motion_length=c.max_motion_length)
    enc = load_text_encoder(c.text_encoder, device=dev)
    enc.encode(sorted({cap.text for r in ds.records for cap in r.captions}))  # warm the caption cache
    model = PartRetriever(c, ds.mean, ds.std).to(dev)
    import copy

    momentum = copy.deepcopy(model).eval().requires_grad_(False)
    hbm = HBMLoss(c, caption_dim=enc.dim).to(dev)
    opt = _optimizer(model, c)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)
    sampler = _EpochSampler(len(ds), c.batch_size, 0, 1, 0, [r.length for r in ds.records] if c.length_bucketing else None)
    batches = sampler.batches()[: steps + 2]
    times = []
    for i, idx in enumerate(batches):
        batch = collate([ds[j] for j in idx.tolist()])
        if dev.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        train_step(model, model, momentum, hbm, opt, sched, enc, batch, c, dev)
        if dev.type == "cuda":
            torch.cuda.synchronize()
        if i >= 2:  # the first steps warm up allocators
            times.append(time.perf_counter() - t0)
    per_step = statistics.median(times)
    return {"preset": preset, "device": device, "batch_size": c.batch_size, "steps": len(times),
            "step_s": per_step, "samples_per_s": c.batch_size / per_step}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", type=Path, default=None)
    ap.add_argument("--sizes", default="1e4,1e5,1e6")
    ap.add_argument("--kinds", default="flat,ivf,hnsw")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--hnsw-max", type=float, default=1e6, help="Skip HNSW above this many entries.")
    ap.add_argument("--train-steps", type=int, default=10)
    ap.add_argument("--preset", default="cpu")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
        import faiss

        faiss.omp_set_num_threads(args.threads)
    from remomask.retrieval.config import RetrieverConfig
    from remomask.retrieval.model import PartRetriever

    if args.model is not None:
        model = PartRetriever.from_pretrained(args.model)
    else:
        torch.manual_seed(0)
        model = PartRetriever(RetrieverConfig.preset_config("cpu")).eval()
    sizes = [int(float(s)) for s in args.sizes.split(",") if s]
    kinds = [k for k in args.kinds.split(",") if k]
    if "flat" in kinds:
        kinds = ["flat"] + [k for k in kinds if k != "flat"]  # exact first: the recall reference
    print(f"torch threads {torch.get_num_threads()}; model {'random cpu preset' if args.model is None else args.model}")
    print("database (synthetic 512-d, 5 entries per motion, k = 10 distinct motions):")
    rows = bench_database(model, sizes, kinds, model.config.embed_dim, np.random.default_rng(0),
                          hnsw_max=int(args.hnsw_max))
    train = None
    if args.train_steps > 0:
        print("training:")
        train = bench_training(args.preset, args.train_steps, args.device)
        print(f"  {train['preset']} preset on {train['device']}: {train['step_s']:.2f} s/step, "
              f"{train['samples_per_s']:.1f} samples/s (batch {train['batch_size']})")
    print()
    print("| entries | index | build (s) | query: encode + search (ms) | search only (ms) | batch-256 (queries/s) | recall@10 |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['entries']:,} | {r['index']} | {r['build_s']:.2f} | {r['query_ms']:.2f} | {r['search_ms']:.2f} | "
              f"{r['batch256_qps']:.0f} | {r['recall@10']:.3f} |")
    if args.json is not None:
        args.json.write_text(json.dumps({"database": rows, "training": train}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
