"""Feature-extraction throughput: frames/s of features_from_joints on one core (issue: data).

Usage: python benchmarks/bench_features.py [--clips N] [--repeat R]

Runs on real clips of the embedded dataset (joints at 20 fps), one clip per call as the dataset
materialisation does, in a single process with numpy/BLAS limited to one thread. Prints a table.
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import platform  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clips", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    from remomask.data.embedded import EMBEDDED_DIR
    from remomask.data.features import features_from_joints, joints_from_features
    from remomask.data.storage import load_joint_archive

    archive = load_joint_archive(EMBEDDED_DIR / "joints.npz")
    ids = sorted(archive)[:: max(1, len(archive) // args.clips)][: args.clips]
    clips = [archive[i] for i in ids]
    frames = sum(len(c) for c in clips)
    features_from_joints(clips[0])  # warm-up

    rows = []
    best = min((_timed(lambda: [features_from_joints(c) for c in clips]) for _ in range(args.repeat)),
               key=lambda t: t[1])
    rows.append(("features_from_joints (per clip)", len(clips), frames, *best))
    feats = [features_from_joints(c) for c in clips]
    best = min((_timed(lambda: [joints_from_features(f) for f in feats]) for _ in range(args.repeat)),
               key=lambda t: t[1])
    rows.append(("joints_from_features (per clip)", len(clips), sum(len(f) for f in feats), *best))

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"python {platform.python_version()}, numpy {np.__version__}; 1 thread")
    print("frames/s (CPU) uses this process's CPU time, which a busy machine does not inflate; "
          "frames/s (wall) uses the wall clock")
    print(f"{'operation':<34} {'clips':>6} {'frames':>8} {'wall s':>7} {'cpu s':>7} "
          f"{'frames/s (wall)':>16} {'frames/s (CPU)':>15}")
    for name, n, f, wall, cpu in rows:
        print(f"{name:<34} {n:>6} {f:>8} {wall:>7.2f} {cpu:>7.2f} {f / wall:>16.0f} {f / cpu:>15.0f}")


def _timed(fn) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


if __name__ == "__main__":
    main()
