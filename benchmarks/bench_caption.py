"""Motion captioning time (issue: captioning, part 1): one motion, and a folder of 100, on this CPU.

Usage: python benchmarks/bench_caption.py [--clips 100] [--repeat 3] [--threads 1] [--cli] [--trained [--beam 3]]

The retrieval baseline (:class:`remomask.captioning.RetrievalCaptioner`, the bundled retriever and database);
with ``--trained`` also the trained captioner (:class:`remomask.captioning.MotionCaptioner`, ``models/v2/captioner``
or ``--model DIR``: tokenizer + retriever + database search + transformer decoding), greedy and with ``--beam``.
Real data: the first ``--clips`` clips of the embedded dataset's test split, written as joints files
``(T, 22, 3)`` into a temporary folder, so that each caption includes reading the file and computing the
features, as ``remomask caption FOLDER`` does; and one CMU BVH file of the shared fixtures
(``$REMOMASK_SHARED/data/fixtures/cmu/131_01.bvh``, 8.3 s) for the mocap importer. Timings are the best
of ``--repeat`` runs (wall clock and this process's CPU time). ``--cli`` also times the whole command
``remomask caption FOLDER`` in a new process (start-up and model loading included).
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _timed(fn, repeat: int) -> tuple[float, float, object]:
    """(best wall s, CPU s of that run, result) over ``repeat`` calls."""
    best = None
    for _ in range(repeat):
        w, c = time.perf_counter(), time.process_time()
        out = fn()
        run = (time.perf_counter() - w, time.process_time() - c, out)
        if best is None or run[0] < best[0]:
            best = run
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--cli", action="store_true", help="also time `remomask caption FOLDER` end to end")
    parser.add_argument("--trained", action="store_true", help="also time the trained captioner")
    parser.add_argument("--model", default=None, help="trained captioner folder [models/v2/captioner]")
    parser.add_argument("--beam", type=int, default=3, help="beam size timed for the trained captioner")
    args = parser.parse_args()

    import numpy as np
    import torch

    from remomask.captioning import RetrievalCaptioner, motion_paths
    from remomask.data.embedded import resolve_dataset
    from remomask.data.motion_file import load_motion_file

    torch.set_num_threads(args.threads)
    rows = []
    wall, cpu, captioner = _timed(RetrievalCaptioner.from_pretrained, 1)
    rows.append(("load retriever + database", 1, wall, cpu))

    root = resolve_dataset("embedded", progress=False)
    ids = (root / "test.txt").read_text().split()[: args.clips]
    shared = Path(os.environ.get("REMOMASK_SHARED", Path(__file__).resolve().parents[2] / "shared"))
    bvh = shared / "data" / "fixtures" / "cmu" / "131_01.bvh"
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "motions"
        folder.mkdir()
        for i in ids:
            np.save(folder / f"{i}.npy", np.load(root / "new_joints" / f"{i}.npy").astype(np.float32))
        one = folder / f"{ids[0]}.npy"
        seconds = sum(len(np.load(p, mmap_mode="r")) for p in folder.iterdir()) / 20.0
        captioner.caption(one)  # warm-up

        wall, cpu, _ = _timed(lambda: captioner.caption(one), args.repeat)
        rows.append((f"1 motion (.npy joints, {len(np.load(one)) / 20:.1f} s)", 1, wall, cpu))
        feats = np.load(root / "new_joint_vecs" / f"{ids[0]}.npy")
        wall, cpu, _ = _timed(lambda: captioner.caption(feats), args.repeat)
        rows.append(("1 motion (features array in memory)", 1, wall, cpu))
        if bvh.is_file():
            wall, cpu, _ = _timed(lambda: captioner.caption(bvh), args.repeat)
            rows.append((f"1 motion (CMU BVH, {load_motion_file(bvh).num_frames / 20:.1f} s)", 1, wall, cpu))

        def folder_run():
            loaded = [load_motion_file(p) for p in motion_paths([folder])]
            return captioner.caption_results(loaded)

        wall, cpu, results = _timed(folder_run, args.repeat)
        rows.append((f"folder of {len(ids)} (.npy joints, {seconds:.0f} s)", len(ids), wall, cpu))
        if args.trained:
            from remomask.captioning import MotionCaptioner

            wall, cpu, trained = _timed(lambda: MotionCaptioner.from_pretrained(args.model), 1)
            rows.append(("trained: load (tokenizer, retriever, db, model)", 1, wall, cpu))
            trained.caption(one)  # warm-up
            for beam in (1, args.beam):
                tag = "greedy" if beam == 1 else f"beam {beam}"
                wall, cpu, _ = _timed(lambda: trained.caption(one, beam=beam), args.repeat)
                rows.append((f"trained {tag}: 1 motion (.npy joints)", 1, wall, cpu))
                wall, cpu, _ = _timed(lambda: trained.caption([load_motion_file(p) for p in motion_paths([folder])],
                                                              beam=beam), args.repeat)
                rows.append((f"trained {tag}: folder of {len(ids)}", len(ids), wall, cpu))
        cli = None
        if args.cli:
            cmd = [sys.executable, "-m", "remomask.cli", "caption", str(folder), "--threads", str(args.threads),
                   "--out", str(Path(tmp) / "captions.jsonl")]
            w = time.perf_counter()
            subprocess.run(cmd, check=True, capture_output=True)
            cli = time.perf_counter() - w

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, python "
          f"{platform.python_version()}, torch {torch.__version__}, {args.threads} torch thread(s); "
          f"load average {os.getloadavg()[0]:.1f}")
    print(f"{'what':<48} {'motions':>7} {'wall s':>8} {'cpu s':>8} {'ms/motion (wall)':>17}")
    for name, n, wall, cpu in rows:
        print(f"{name:<48} {n:>7} {wall:>8.3f} {cpu:>8.3f} {1000 * wall / n:>17.1f}")
    if cli is not None:
        print(f"{'remomask caption FOLDER --out (new process)':<42} {len(ids):>7} {cli:>8.2f}")
    print(f"captions of the folder: {len({r.caption for r in results})} distinct sentences")


if __name__ == "__main__":
    main()
